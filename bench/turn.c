/* See turn.h. Long-term credentials: key = MD5(user:realm:password), MESSAGE-INTEGRITY is
 * HMAC-SHA1 under it (OpenSSL: benchmark code, outside the module layering). */
#include "turn.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

#define USER   "bench"
#define PASS   "bench-password"
#define REALM  "kurer.bench"
#define COOKIE 0x2112A442u

enum {
    BINDING = 0x0001,
    ALLOCATE = 0x0003,
    CREATE_PERMISSION = 0x0008,
    CHANNEL_BIND = 0x0009,
    A_USERNAME = 0x0006,
    A_INTEGRITY = 0x0008,
    A_ERROR = 0x0009,
    A_CHANNEL = 0x000c,
    A_LIFETIME = 0x000d,
    A_PEER = 0x0012,
    A_REALM = 0x0014,
    A_NONCE = 0x0015,
    A_RELAYED = 0x0016,
    A_TRANSPORT = 0x0019,
};

typedef struct msg {
    uint8_t b[512];
    size_t n;
    uint8_t tid[12];
} msg;

const char *turn_bin(void)
{
    const char *b = getenv("KURER_BENCH_TURNSERVER");
    if (b == NULL)
        b = "/usr/bin/turnserver";
    return access(b, X_OK) == 0 ? b : NULL;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static void msg_begin(msg *m, unsigned type)
{
    memset(m, 0, sizeof(*m));
    put16(m->b, type);
    m->b[4] = 0x21, m->b[5] = 0x12, m->b[6] = 0xa4, m->b[7] = 0x42;
    kurer_random(m->tid, sizeof(m->tid));
    memcpy(m->b + 8, m->tid, 12);
    m->n = 20;
}

static void msg_attr(msg *m, unsigned type, const void *v, size_t len)
{
    size_t pad = (4 - len % 4) % 4;
    if (m->n + 4 + len + pad > sizeof(m->b))
        bench_die("turn: message too long");
    put16(m->b + m->n, type);
    put16(m->b + m->n + 2, (unsigned)len);
    memcpy(m->b + m->n + 4, v, len);
    memset(m->b + m->n + 4 + len, 0, pad);
    m->n += 4 + len + pad;
    put16(m->b + 2, (unsigned)(m->n - 20));
}

static void xor_addr(uint8_t out[8], const struct sockaddr_in *a)
{
    uint32_t ip = ntohl(a->sin_addr.s_addr) ^ COOKIE;
    out[0] = 0;
    out[1] = 1; /* IPv4 */
    put16(out + 2, ntohs(a->sin_port) ^ (COOKIE >> 16));
    out[4] = (uint8_t)(ip >> 24), out[5] = (uint8_t)(ip >> 16);
    out[6] = (uint8_t)(ip >> 8), out[7] = (uint8_t)ip;
}

/* USERNAME, REALM, NONCE and MESSAGE-INTEGRITY (the last attribute). */
static void msg_auth(msg *m, const char *nonce)
{
    uint8_t key[16];
    unsigned klen = 0, mlen = 0;
    char ur[256];
    msg_attr(m, A_USERNAME, USER, strlen(USER));
    msg_attr(m, A_REALM, REALM, strlen(REALM));
    msg_attr(m, A_NONCE, nonce, strlen(nonce));
    snprintf(ur, sizeof(ur), "%s:%s:%s", USER, REALM, PASS);
    if (EVP_Digest(ur, strlen(ur), key, &klen, EVP_md5(), NULL) != 1)
        bench_die("turn: md5");
    put16(m->b + 2, (unsigned)(m->n - 20 + 24)); /* the length as if MI were there */
    uint8_t mac[20];
    if (HMAC(EVP_sha1(), key, (int)klen, m->b, m->n, mac, &mlen) == NULL || mlen != 20)
        bench_die("turn: hmac");
    msg_attr(m, A_INTEGRITY, mac, 20);
}

/* Finds attribute type in a response of n bytes: its value and length, or NULL. */
static const uint8_t *find_attr(const uint8_t *r, size_t n, unsigned type, size_t *len)
{
    size_t at = 20;
    while (at + 4 <= n) {
        size_t l = get16(r + at + 2);
        if (at + 4 + l > n)
            return NULL;
        if (get16(r + at) == type) {
            *len = l;
            return r + at + 4;
        }
        at += 4 + l + (4 - l % 4) % 4;
    }
    return NULL;
}

/* Sends m on fd (connected) and waits for the response with its transaction id (4 tries of
 * 500 ms). Returns the response length in r, or dies. */
static size_t txn(int fd, const msg *m, uint8_t *r, size_t cap)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        if (send(fd, m->b, m->n, 0) != (ssize_t)m->n)
            bench_die("turn: send: %s", strerror(errno));
        uint64_t end = kurer_time_mono_ms() + 500;
        for (uint64_t now; (now = kurer_time_mono_ms()) < end;) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, (int)(end - now)) <= 0)
                break;
            ssize_t k = recv(fd, r, cap, 0);
            if (k >= 20 && memcmp(r + 8, m->tid, 12) == 0)
                return (size_t)k;
        }
    }
    bench_die("turn: no answer to a request of type 0x%04x", get16(m->b));
}

static unsigned error_code(const uint8_t *r, size_t n)
{
    size_t l;
    const uint8_t *e = find_attr(r, n, A_ERROR, &l);
    return e != NULL && l >= 4 ? (e[2] & 7u) * 100 + e[3] : 0;
}

static void take_nonce(turn_leg *l, const uint8_t *r, size_t n)
{
    size_t len;
    const uint8_t *v = find_attr(r, n, A_NONCE, &len);
    if (v == NULL || len >= sizeof(l->nonce)) {
        bench_die("turn: no NONCE in a %u answer", error_code(r, n));
        return; /* not reached; said for cppcheck, which does not see _Noreturn */
    }
    memcpy(l->nonce, v, len);
    l->nonce[len] = '\0';
}

/* An authenticated request of type with (attr, value) pairs built by add; a 438 (stale
 * nonce) is retried once with the new nonce. Returns the success response length. */
static size_t auth_txn(turn_leg *l, unsigned type, void (*add)(msg *, const void *),
                       const void *arg, uint8_t *r, size_t cap)
{
    for (int i = 0; i < 2; i++) {
        msg m;
        msg_begin(&m, type);
        add(&m, arg);
        msg_auth(&m, l->nonce);
        size_t n = txn(l->fd, &m, r, cap);
        unsigned cls = get16(r) & 0x0110;
        if (cls == 0x0100)
            return n;
        if (error_code(r, n) == 438) {
            take_nonce(l, r, n);
            continue;
        }
        bench_die("turn: request 0x%04x refused: %u", type, error_code(r, n));
    }
    bench_die("turn: stale nonce twice");
}

static void add_transport(msg *m, const void *arg)
{
    static const uint8_t udp[4] = {17, 0, 0, 0}, life[4] = {0, 0, 0x0e, 0x10}; /* 3600 s */
    (void)arg;
    msg_attr(m, A_TRANSPORT, udp, 4);
    msg_attr(m, A_LIFETIME, life, 4);
}

void turn_allocate(const turn_server *t, turn_leg *l)
{
    uint8_t r[1024];
    msg m;
    struct sockaddr_in me = {0};
    memset(l, 0, sizeof(*l));
    l->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    me.sin_family = AF_INET;
    me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
        connect(l->fd, (const struct sockaddr *)&t->addr, sizeof(t->addr)) != 0)
        bench_die("turn: socket: %s", strerror(errno));
    msg_begin(&m, ALLOCATE);
    add_transport(&m, NULL);
    size_t n = txn(l->fd, &m, r, sizeof(r));
    if (error_code(r, n) != 401)
        bench_die("turn: the first Allocate was answered %u, not 401", error_code(r, n));
    take_nonce(l, r, n);
    n = auth_txn(l, ALLOCATE, add_transport, NULL, r, sizeof(r));
    size_t len;
    const uint8_t *a = find_attr(r, n, A_RELAYED, &len);
    if (a == NULL || len < 8 || a[1] != 1) {
        bench_die("turn: no IPv4 XOR-RELAYED-ADDRESS");
        return; /* not reached (cppcheck) */
    }
    l->relayed.sin_family = AF_INET;
    l->relayed.sin_port = htons((uint16_t)(get16(a + 2) ^ (COOKIE >> 16)));
    uint32_t ip = ((uint32_t)a[4] << 24 | (uint32_t)a[5] << 16 | (uint32_t)a[6] << 8 | a[7]);
    l->relayed.sin_addr.s_addr = htonl(ip ^ COOKIE);
}

static void add_peer(msg *m, const void *arg)
{
    uint8_t x[8];
    xor_addr(x, arg);
    msg_attr(m, A_PEER, x, 8);
}

static void add_channel(msg *m, const void *arg)
{
    uint8_t ch[4] = {TURN_CHANNEL >> 8, TURN_CHANNEL & 0xff, 0, 0};
    msg_attr(m, A_CHANNEL, ch, 4);
    add_peer(m, arg);
}

void turn_bind_peer(turn_leg *l, const struct sockaddr_in *peer)
{
    uint8_t r[1024];
    (void)auth_txn(l, CREATE_PERMISSION, add_peer, peer, r, sizeof(r));
    (void)auth_txn(l, CHANNEL_BIND, add_channel, peer, r, sizeof(r));
}

/* A free UDP port on 127.0.0.1 (bound, then released: the server takes it right after). */
static uint16_t free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        bench_die("free port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* A Binding request answered within 200 ms. */
static int answers(const turn_server *t)
{
    uint8_t r[512];
    msg m;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&t->addr, sizeof(t->addr)) != 0)
        bench_die("turn: probe socket");
    msg_begin(&m, BINDING);
    int ok = 0;
    if (send(fd, m.b, m.n, 0) == (ssize_t)m.n) {
        struct pollfd p = {fd, POLLIN, 0};
        ok = poll(&p, 1, 200) == 1 && recv(fd, r, sizeof(r), 0) >= 20;
    }
    close(fd);
    return ok;
}

int turn_start(turn_server *t, size_t allocations)
{
    char conf[320], log[320], pid[320];
    const char *bin = turn_bin();
    memset(t, 0, sizeof(*t));
    if (bin == NULL)
        return -1;
    snprintf(t->dir, sizeof(t->dir), "/tmp/kurer-bench-turn-XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        bench_die("mkdtemp: %s", strerror(errno));
    uint16_t port = free_port();
    /* relay ports below the ephemeral range the legs' sockets take theirs from */
    unsigned lo = 20000, hi = 20000 + (unsigned)allocations * 2 + 1000;
    snprintf(conf, sizeof(conf), "%s/turnserver.conf", t->dir);
    snprintf(log, sizeof(log), "%s/turn.log", t->dir);
    snprintf(pid, sizeof(pid), "%s/turnserver.pid", t->dir);
    FILE *f = fopen(conf, "w");
    if (f == NULL) {
        bench_die("cannot write %s", conf);
        return -1; /* not reached (cppcheck) */
    }
    fprintf(f,
            "listening-ip=127.0.0.1\nlistening-port=%u\nrelay-ip=127.0.0.1\nmin-port=%u\n"
            "max-port=%u\nlt-cred-mech\nuser=%s:%s\nrealm=%s\nallow-loopback-peers\nno-tls\n"
            "no-dtls\nno-tcp-relay\nno-cli\nno-multicast-peers\nno-rfc5780\n"
            "no-software-attribute\nlog-file=%s\nsimple-log\npidfile=%s\n",
            port, lo, hi, USER, PASS, REALM, log, pid);
    fclose(f);
    pid_t p = fork();
    if (p < 0)
        bench_die("fork: %s", strerror(errno));
    if (p == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    t->pid = p;
    t->addr.sin_family = AF_INET;
    t->addr.sin_port = htons(port);
    t->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 100; i++) { /* 10 s: it reads its config and opens its ports first */
        if (answers(t))
            return 0;
        usleep(100 * 1000); /* a refused probe (ICMP: not listening yet) returns at once */
        if (waitpid(p, NULL, WNOHANG) == p) {
            t->pid = 0;
            return -1;
        }
    }
    return -1;
}

void turn_stop(turn_server *t)
{
    char cmd[320];
    if (t->pid > 0) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
        t->pid = 0;
    }
    if (t->dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: could not remove %s\n", t->dir);
        t->dir[0] = '\0';
    }
}
