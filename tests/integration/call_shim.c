/* call_tool shim: a UDP relay between the clients and the relay's media port, for the call
 * tests. Each client source address gets its own upstream socket (so that the relay sees one
 * address per leg, as without the shim). MEDIA datagrams (first byte 0x03) are dropped with
 * probability LOSS percent and held back a uniform 0..JITTER ms each (which also reorders them);
 * BIND, BOUND and KEEPALIVE pass untouched. Every datagram, both ways, is appended to CAPTURE as
 * (direction byte, 16-bit big-endian length, bytes) for the test's plaintext scan. Runs until
 * SIGTERM; prints "shim ready" when it listens and its counts when it stops.
 *
 * And segsnr: the segmental SNR (20 ms segments, each clamped to [-10, 35] dB, silent segments of
 * the sent signal skipped) of a recording against the sent signal, after the lag that maximises
 * their correlation (0..200 ms). */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "call_tool.h"

#define CLIENTS 64
#define HELD    4096
#define DG_MAX  2048

typedef struct held {
    uint64_t at;
    int fd, to_client;
    struct sockaddr_in dst;
    size_t len;
    uint8_t data[DG_MAX];
} held;

typedef struct shim {
    int lfd;
    struct sockaddr_in up;
    struct {
        struct sockaddr_in addr;
        int fd;
    } c[CLIENTS];
    int nc;
    held *q;
    size_t nq;
    unsigned loss, jitter;
    uint64_t rng;
    FILE *cap;
    unsigned long fwd, dropped;
} shim;

static volatile sig_atomic_t g_stop;

static void on_signal(int s)
{
    (void)s;
    g_stop = 1;
}

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static uint32_t rnd(shim *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return (uint32_t)(s->rng >> 32);
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static void capture(shim *s, int dir, const uint8_t *p, size_t n)
{
    uint8_t h[3] = {(uint8_t)dir, (uint8_t)(n >> 8), (uint8_t)n};
    if (fwrite(h, 1, 3, s->cap) != 3 || fwrite(p, 1, n, s->cap) != n)
        fprintf(stderr, "shim: capture write failed\n");
}

/* Passes p on now, or later (MEDIA: jitter), or never (MEDIA: loss). */
static void pass(shim *s, int fd, int to_client, const struct sockaddr_in *dst, const uint8_t *p,
                 size_t n)
{
    uint64_t delay = 0;
    if (n > 0 && p[0] == 0x03) {
        if (rnd(s) % 10000 < s->loss * 100) {
            s->dropped++;
            return;
        }
        delay = s->jitter > 0 ? rnd(s) % (s->jitter + 1) : 0;
    }
    if (delay == 0 || s->nq == HELD) {
        if (to_client)
            (void)sendto(fd, p, n, 0, (const struct sockaddr *)dst, sizeof(*dst));
        else
            (void)send(fd, p, n, 0);
        s->fwd++;
        return;
    }
    held *h = &s->q[s->nq++];
    h->at = now_ms() + delay;
    h->fd = fd;
    h->to_client = to_client;
    h->dst = *dst;
    h->len = n;
    memcpy(h->data, p, n);
}

static void release_due(shim *s)
{
    uint64_t now = now_ms();
    for (size_t i = 0; i < s->nq;) {
        held *h = &s->q[i];
        if (h->at > now) {
            i++;
            continue;
        }
        if (h->to_client)
            (void)sendto(h->fd, h->data, h->len, 0, (const struct sockaddr *)&h->dst,
                         sizeof(h->dst));
        else
            (void)send(h->fd, h->data, h->len, 0);
        s->fwd++;
        s->q[i] = s->q[--s->nq];
    }
}

static int client_of(shim *s, const struct sockaddr_in *from)
{
    for (int i = 0; i < s->nc; i++)
        if (s->c[i].addr.sin_port == from->sin_port &&
            s->c[i].addr.sin_addr.s_addr == from->sin_addr.s_addr)
            return i;
    if (s->nc == CLIENTS)
        return -1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&s->up, sizeof(s->up)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    s->c[s->nc].addr = *from;
    s->c[s->nc].fd = fd;
    return s->nc++;
}

static void pump(shim *s, struct pollfd *p)
{
    uint8_t b[DG_MAX];
    if (p[0].revents & POLLIN) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(s->lfd, b, sizeof(b), 0, (struct sockaddr *)&from, &fl);
        int c = n > 0 ? client_of(s, &from) : -1;
        if (c >= 0) {
            capture(s, 0, b, (size_t)n);
            pass(s, s->c[c].fd, 0, &s->up, b, (size_t)n);
        }
    }
    for (int i = 0; i < s->nc; i++) {
        if (!(p[1 + i].revents & POLLIN))
            continue;
        ssize_t n = recv(s->c[i].fd, b, sizeof(b), 0);
        if (n > 0) {
            capture(s, 1, b, (size_t)n);
            pass(s, s->lfd, 1, &s->c[i].addr, b, (size_t)n);
        }
    }
}

int call_tool_shim(char **argv)
{
    shim s;
    struct sockaddr_in la;
    memset(&s, 0, sizeof(s));
    if (parse_addr(argv[0], &la) != 0 || parse_addr(argv[1], &s.up) != 0)
        return 2;
    s.loss = (unsigned)atoi(argv[2]);
    s.jitter = (unsigned)atoi(argv[3]);
    s.rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)atoll(argv[4]);
    s.cap = fopen(argv[5], "wb");
    s.q = calloc(HELD, sizeof(*s.q));
    s.lfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s.cap == NULL || s.q == NULL || s.lfd < 0 ||
        bind(s.lfd, (const struct sockaddr *)&la, sizeof(la)) != 0) {
        fprintf(stderr, "shim: cannot listen on %s: %s\n", argv[0], strerror(errno));
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("shim ready\n");
    fflush(stdout);
    while (!g_stop) {
        struct pollfd p[1 + CLIENTS];
        p[0] = (struct pollfd){s.lfd, POLLIN, 0};
        for (int i = 0; i < s.nc; i++)
            p[1 + i] = (struct pollfd){s.c[i].fd, POLLIN, 0};
        int wait = 100;
        uint64_t now = now_ms();
        for (size_t i = 0; i < s.nq; i++)
            if (s.q[i].at <= now)
                wait = 0;
            else if (s.q[i].at - now < (uint64_t)wait)
                wait = (int)(s.q[i].at - now);
        if (poll(p, (nfds_t)(1 + s.nc), wait) > 0)
            pump(&s, p);
        release_due(&s);
    }
    printf("shim: forwarded %lu dropped %lu\n", s.fwd, s.dropped);
    fclose(s.cap);
    free(s.q);
    return 0;
}

/* ---- segmental SNR ---- */

#define SEG   960        /* 20 ms */
#define BLOCK (SEG * 25) /* 0.5 s aligned on its own */
#define TRACK 1920       /* a block's lag within two frames of the last block's */

/* SNR of 20 ms segments of sent[s0..s0+len) against rec at lag, into *sum and *segs. */
static void seg_snr(const int16_t *rec, size_t nr, const int16_t *sent, size_t s0, size_t len,
                    size_t lag, double *sum, size_t *segs)
{
    for (size_t s = s0; s + SEG <= s0 + len && s + lag + SEG <= nr; s += SEG) {
        double es = 0, ee = 0;
        for (size_t i = 0; i < SEG; i++) {
            double x = sent[s + i], y = rec[s + lag + i];
            es += x * x;
            ee += (x - y) * (x - y);
        }
        if (es < SEG * 100.0 * 100.0)
            continue; /* silence in what was sent */
        double db = 10 * log10(es / (ee > 1 ? ee : 1));
        *sum += db < -10 ? -10 : db > 35 ? 35 : db;
        (*segs)++;
    }
}

static size_t onset(const int16_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (abs(p[i]) > 500)
            return i;
    return 0;
}

/* The lag in [lo, hi] at which rec best matches sent[s0..s0+len) (normalised correlation). */
static size_t best_lag(const int16_t *rec, size_t nr, const int16_t *sent, size_t s0, size_t len,
                       size_t lo, size_t hi)
{
    size_t best = lo;
    double best_c = -1e300;
    for (size_t lag = lo; lag <= hi && s0 + lag + len <= nr; lag++) {
        double c = 0, e = 1;
        for (size_t i = s0; i < s0 + len; i += 4) {
            c += (double)sent[i] * rec[lag + i];
            e += (double)rec[lag + i] * rec[lag + i];
        }
        c /= sqrt(e);
        if (c > best_c) {
            best_c = c;
            best = lag;
        }
    }
    return best;
}

/* Each half second of what was sent is aligned on its own, within two frames of the last: the
 * jitter buffer may grow or shrink its delay by whole frames during the call, and one lag for
 * the whole recording would count every segment after such a change as noise. */
int call_tool_segsnr(char **argv)
{
    int16_t *rec = NULL, *sent = NULL;
    size_t nr = 0, ns = 0, segs = 0;
    uint32_t r1 = 0, r2 = 0;
    double min_db = atof(argv[2]), sum = 0;
    if (read_wav_any(argv[0], &rec, &nr, &r1) != 0 || read_wav_any(argv[1], &sent, &ns, &r2) != 0) {
        printf("segsnr: cannot read the files\n");
        return 1;
    }
    size_t a = onset(rec, nr), b = onset(sent, ns);
    size_t lag = a > b ? a - b : 0, lag_min = (size_t)-1, lag_max = 0;
    for (size_t s0 = 0; s0 + BLOCK <= ns; s0 += BLOCK) {
        lag = best_lag(rec, nr, sent, s0, BLOCK, lag > TRACK ? lag - TRACK : 0, lag + TRACK);
        lag_min = lag < lag_min ? lag : lag_min;
        lag_max = lag > lag_max ? lag : lag_max;
        seg_snr(rec, nr, sent, s0, BLOCK, lag, &sum, &segs);
    }
    double snr = segs > 0 ? sum / (double)segs : -100;
    printf("segsnr: %.2f dB over %zu segments (lag %zu..%zu samples), budget >= %.2f dB\n", snr,
           segs, lag_min, lag_max, min_db);
    free(rec);
    free(sent);
    return segs > 10 && snr >= min_db ? 0 : 1;
}
