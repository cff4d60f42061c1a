/* Host names for "HOST:PORT" addresses: syntax checks and a blocking getaddrinfo for the
 * command-line tools and the client's connect (IP literals never reach the resolver). Kept
 * apart from net.c, which holds the transport. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "kurer/net.h"
#include "kurer/util.h"

#include <uv.h>

/* Splits "HOST:PORT" / "[V6]:PORT" into host (without brackets) and port. */
static int split_host_port(const char *s, char *host, size_t hostlen, uint64_t *port)
{
    const char *colon, *h;
    size_t n;
    if (s == NULL)
        return KURER_EINVAL;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            return KURER_EINVAL;
        h = s + 1;
        n = (size_t)(end - s - 1);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return KURER_EINVAL;
        h = s;
        n = (size_t)(colon - s);
        if (memchr(h, ':', n) != NULL)
            return KURER_EINVAL; /* an IPv6 literal needs brackets */
    }
    if (n == 0 || n >= hostlen)
        return KURER_EINVAL;
    memcpy(host, h, n);
    host[n] = '\0';
    return kurer_parse_u64(colon + 1, 65535, port) != 0 ? KURER_EINVAL : 0;
}

/* A DNS name: labels of letters, digits, '-' and '_' separated by dots (at most 253). */
static int host_name_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return 0;
    for (const char *p = h; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(c == '.' || c == '-' || c == '_' || (c >= '0' && c <= '9') ||
              ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')))
            return 0;
    }
    return 1;
}

int kurer_net_addr_check(const char *s)
{
    char host[256];
    uint64_t port;
    struct sockaddr_storage ss;
    if (kurer_net_parse_addr(s, &ss) == 0)
        return 0;
    if (split_host_port(s, host, sizeof(host), &port) != 0 || s[0] == '[' || !host_name_ok(host))
        return KURER_EINVAL;
    return 0;
}

int kurer_net_resolve(const char *s, struct sockaddr_storage *addr)
{
    char host[256], port_s[8];
    uint64_t port;
    struct addrinfo hints, *res = NULL;
    if (kurer_net_parse_addr(s, addr) == 0)
        return 0; /* an IP literal: no resolver */
    memset(addr, 0, sizeof(*addr));
    if (kurer_net_addr_check(s) != 0 || split_host_port(s, host, sizeof(host), &port) != 0)
        return KURER_EINVAL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port_s, sizeof(port_s), "%u", (unsigned)port);
    if (getaddrinfo(host, port_s, &hints, &res) != 0 || res == NULL)
        return KURER_ERESOLVE;
    int rc = KURER_ERESOLVE;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            ai->ai_addrlen <= sizeof(*addr)) {
            memcpy(addr, ai->ai_addr, ai->ai_addrlen);
            rc = 0;
            break;
        }
    freeaddrinfo(res);
    return rc;
}

int kurer_net_uv_error(int status)
{
    switch (status) {
    case 0:
        return 0;
    case UV_ECONNREFUSED:
        return KURER_ECONNREFUSED;
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_ENETDOWN:
    case UV_EHOSTDOWN:
    case UV_EADDRNOTAVAIL:
        return KURER_EUNREACHABLE;
    case UV_ETIMEDOUT:
        return KURER_ETIMEOUT;
    case UV_EADDRINUSE:
        return KURER_EADDRINUSE;
    case UV_EACCES:
    case UV_EPERM:
        return KURER_EPERM;
    case UV_EAI_NONAME:
    case UV_EAI_AGAIN:
    case UV_EAI_FAIL:
    case UV_EAI_NODATA:
        return KURER_ERESOLVE;
    case UV_ENOMEM:
    case UV_ENOBUFS:
        return KURER_ENOMEM;
    case UV_ECONNRESET:
    case UV_EPIPE:
    case UV_EOF:
        return KURER_ECLOSED;
    default:
        return KURER_EIO;
    }
}
