/* See media_client.h. */
#include "media_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int media_allocate(client *cl, kurer_media_allocation *a)
{
    kurer_client_frame q;
    kurer_server_frame r;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_MEDIA_ALLOCATE;
    wait_answer(cl, cl_send(cl, &q), &r);
    int code = 0;
    if (r.body == KURER_SERVER_ERROR)
        code = r.u.error.code;
    else if (r.body == KURER_SERVER_MEDIA_ALLOCATION)
        *a = r.u.media_allocation;
    else
        fail_msg("MediaAllocate answered with body %d", (int)r.body);
    kurer_server_frame_release(&r);
    return code;
}

int media_socket(void)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

void media_send(world *w, int fd, const void *data, size_t len)
{
    ssize_t n;
    do
        n = sendto(fd, data, len, 0, (const struct sockaddr *)&w->media,
                   sizeof(struct sockaddr_in));
    while (n < 0 && errno == EINTR);
    assert_int_equal(n, (ssize_t)len);
}

int media_recv(int fd, uint8_t *buf, size_t cap, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return -1;
    ssize_t n = recv(fd, buf, cap, 0);
    return n < 0 ? -1 : (int)n;
}

void media_bind(world *w, int fd, const uint8_t *ticket, size_t len, int leg)
{
    uint8_t msg[1 + KURER_MEDIA_RELAY_TICKET_MAX], ans[64];
    assert_true(len <= KURER_MEDIA_RELAY_TICKET_MAX);
    msg[0] = 0x01;
    memcpy(msg + 1, ticket, len);
    for (int i = 0; i < 20; i++) {
        media_send(w, fd, msg, 1 + len);
        int n = media_recv(fd, ans, sizeof(ans), 250);
        if (n < 0)
            continue;
        assert_true((size_t)n <= 1 + len); /* never more than the BIND */
        assert_int_equal(n, 2);
        assert_int_equal(ans[0], 0x02);
        assert_int_equal(ans[1], leg);
        return;
    }
    fail_msg("no BOUND after 20 BINDs");
}

void media_frame(uint8_t *out, size_t len, uint32_t seed)
{
    out[0] = 0x03;
    for (size_t i = 1; i < len; i++)
        out[i] = (uint8_t)(seed * 131u + i * 7u);
}

int media_drain(int fd, int ms)
{
    uint8_t buf[2048];
    int n = 0;
    while (media_recv(fd, buf, sizeof(buf), ms) >= 0)
        n++;
    return n;
}
