/* media_relay (issue 14, item 7): N calls through the relay's media relay, each leg sending
 * 120-byte datagrams every 20 ms, beside the same load through coturn (turnserver, TURN between
 * two allocations per call) in the same run; then a saturation run (as fast as the generator
 * can send). Figures: delivered packets per second, loss, and CPU seconds of the relay process
 * (and of turnserver) per million delivered packets, from /proc/PID/stat. bench/README.md. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <math.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "common.h"
#include "kurer/crypto.h"
#include "kurer/net.h"
#include "kurer/util.h"
#include "turn.h"

#define DGRAM 120

typedef struct leg {
    int fd;      /* connected to where it sends (the relay's media port, or coturn) */
    size_t hlen; /* bytes before the payload: 0 (ours: the datagram is MEDIA), 4 (ChannelData) */
} leg;

/* One run of the load: 2 * calls legs, leg 2k and 2k+1 one call. */
typedef struct load {
    leg *legs;
    size_t n;
    int period_ms; /* 20, or 0: as fast as possible */
    double warmup_s, seconds;
    pid_t server;    /* whose CPU is measured */
    atomic_int stop; /* the sender is done: the receiver drains and stops */
    /* figures */
    uint64_t sent_window, recv_window, sent_failed;
    double window_s, cpu_s;
} load;

/* The payload of every datagram: 0x03 (MEDIA for ours, plain data inside ChannelData), the
 * sequence number, the sending leg and whether it was sent in the measured window. */
static size_t fill(uint8_t *b, const leg *l, uint32_t id, uint32_t seq, int in_window)
{
    memset(b, 0, DGRAM);
    if (l->hlen == 4) {
        b[0] = TURN_CHANNEL >> 8;
        b[1] = TURN_CHANNEL & 0xff;
        b[2] = 0;
        b[3] = DGRAM - 4;
    }
    uint8_t *p = b + l->hlen;
    p[0] = 0x03;
    memcpy(p + 1, &seq, 4);
    memcpy(p + 5, &id, 4);
    p[9] = (uint8_t)in_window;
    return DGRAM;
}

static void sleep_until(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Sends on every leg once per period (spread over 1 ms slots), or round-robin without pause. */
static void *sender(void *arg)
{
    load *ld = arg;
    uint8_t b[DGRAM];
    uint64_t t0 = bench_now_ns(), w0 = t0 + (uint64_t)(ld->warmup_s * 1e9),
             w1 = w0 + (uint64_t)(ld->seconds * 1e9);
    uint64_t period = (uint64_t)ld->period_ms * 1000000u, slots = ld->period_ms ? 20 : 1;
    double cpu0 = 0;
    int phase = 0; /* 0 warm-up, 1 measured, 2 done */
    for (uint32_t seq = 0; phase < 2; seq++) {
        for (uint64_t s = 0; s < slots; s++) {
            if (period != 0)
                sleep_until(t0 + seq * period + s * (period / slots));
            uint64_t now = bench_now_ns();
            if (phase == 0 && now >= w0) {
                phase = 1;
                cpu0 = bench_proc_cpu_s(ld->server);
            } else if (phase == 1 && now >= w1) {
                phase = 2;
                ld->cpu_s = bench_proc_cpu_s(ld->server) - cpu0;
                ld->window_s = (double)(now - w0) / 1e9;
                break;
            }
            for (size_t i = s; i < ld->n; i += slots) {
                size_t len = fill(b, &ld->legs[i], (uint32_t)i, seq, phase == 1);
                if (send(ld->legs[i].fd, b, len, MSG_DONTWAIT) != (ssize_t)len)
                    ld->sent_failed += phase == 1;
                else
                    ld->sent_window += phase == 1;
            }
        }
    }
    atomic_store(&ld->stop, 1);
    return NULL;
}

/* Counts what arrives on every leg (epoll, recvmmsg) until 500 ms after the sender stopped. */
static void *receiver(void *arg)
{
    load *ld = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event evs[256];
    static __thread uint8_t bufs[32][256];
    struct mmsghdr mm[32];
    struct iovec iov[32];
    for (size_t i = 0; i < ld->n; i++) {
        struct epoll_event e = {EPOLLIN, {.u64 = i}};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, ld->legs[i].fd, &e) != 0)
            bench_die("epoll_ctl: %s", strerror(errno));
    }
    uint64_t stop_at = 0;
    for (;;) {
        if (stop_at == 0 && atomic_load(&ld->stop))
            stop_at = bench_now_ns() + 500000000u;
        if (stop_at != 0 && bench_now_ns() >= stop_at)
            break;
        int k = epoll_wait(ep, evs, 256, 50);
        for (int e = 0; e < k; e++) {
            const leg *l = &ld->legs[evs[e].data.u64];
            for (;;) {
                for (int j = 0; j < 32; j++) {
                    iov[j] = (struct iovec){bufs[j], sizeof(bufs[j])};
                    memset(&mm[j].msg_hdr, 0, sizeof(mm[j].msg_hdr));
                    mm[j].msg_hdr.msg_iov = &iov[j];
                    mm[j].msg_hdr.msg_iovlen = 1;
                }
                int got = recvmmsg(l->fd, mm, 32, MSG_DONTWAIT, NULL);
                if (got <= 0)
                    break;
                for (int j = 0; j < got; j++)
                    if (mm[j].msg_len == DGRAM && bufs[j][l->hlen] == 0x03)
                        ld->recv_window += bufs[j][l->hlen + 9];
                if (got < 32)
                    break;
            }
        }
    }
    close(ep);
    return NULL;
}

static void run_load(load *ld)
{
    pthread_t s, r;
    atomic_store(&ld->stop, 0);
    ld->sent_window = ld->recv_window = ld->sent_failed = 0;
    if (pthread_create(&r, NULL, receiver, ld) != 0 || pthread_create(&s, NULL, sender, ld) != 0)
        bench_die("pthread_create");
    pthread_join(s, NULL);
    pthread_join(r, NULL);
}

/* ---- kurer-relay: allocation over an authenticated connection, then BIND ---------------- */

typedef struct alloc_run {
    uv_loop_t loop;
    kurer_conn *c;
    size_t want, got, errors;
    kurer_media_allocation *calls;
    int failed;
} alloc_run;

static void send_frame(alloc_run *a, kurer_client_frame *f)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    if (kurer_client_frame_encode(f, &b) != 0 || kurer_conn_send(a->c, b.data, b.len) != 0)
        bench_die("cannot send a frame");
    kurer_buf_release(&b);
}

static void al_on_est(kurer_conn *c, const uint8_t *p, size_t n)
{
    alloc_run *a = kurer_conn_data(c);
    kurer_handshake_accept acc;
    kurer_client_frame f;
    if (kurer_handshake_accept_decode(p, n, &acc) != 0 || acc.has_error)
        bench_die("the relay refused the benchmark's device");
    memset(&f, 0, sizeof(f));
    f.request_id = 1;
    f.body = KURER_CLIENT_PING; /* the device is the relay's once a record arrived */
    send_frame(a, &f);
}

static void al_on_rec(kurer_conn *c, uint8_t *data, size_t n)
{
    alloc_run *a = kurer_conn_data(c);
    kurer_server_frame f;
    if (kurer_server_frame_decode(data, n, &f) != 0)
        bench_die("undecodable frame from the relay");
    if (f.body == KURER_SERVER_PONG) {
        kurer_client_frame q;
        memset(&q, 0, sizeof(q));
        q.body = KURER_CLIENT_MEDIA_ALLOCATE;
        for (size_t i = 0; i < a->want; i++) {
            q.request_id = 2 + i;
            send_frame(a, &q);
        }
    } else if (f.body == KURER_SERVER_MEDIA_ALLOCATION && f.request_id >= 2 &&
               f.request_id < 2 + a->want) {
        a->calls[f.request_id - 2] = f.u.media_allocation;
        a->got++;
    } else if (f.body == KURER_SERVER_ERROR) {
        fprintf(stderr, "bench: MediaAllocate: %s\n", kurer_err_name(f.u.error.code));
        a->errors++;
    }
    kurer_server_frame_release(&f);
    if (a->got + a->errors == a->want)
        uv_stop(&a->loop);
}

static void al_on_close(kurer_conn *c, int err)
{
    alloc_run *a = kurer_conn_data(c);
    (void)err;
    a->c = NULL;
    a->failed = 1;
    uv_stop(&a->loop);
}

static const kurer_conn_cbs al_cbs = {NULL, al_on_est, al_on_rec, NULL, NULL, al_on_close};

static void al_timeout(uv_timer_t *t)
{
    ((alloc_run *)t->data)->failed = 1;
    uv_stop(t->loop);
}

/* calls allocations on one device's connection (which stays open: the calls are its). */
static void allocate(alloc_run *a, const bench_server *srv, const bench_device *d, size_t calls)
{
    uv_timer_t t;
    memset(a, 0, sizeof(*a));
    a->want = calls;
    a->calls = calloc(calls, sizeof(*a->calls));
    if (a->calls == NULL || uv_loop_init(&a->loop) != 0)
        bench_die("no memory");
    if (kurer_conn_connect(&a->c, &a->loop, (const struct sockaddr *)&srv->addr, NULL, &al_cbs,
                           KURER_NOISE_IK, d->sk, srv->pk, d->hello, d->hello_len, a) != 0)
        bench_die("kurer_conn_connect failed");
    uv_timer_init(&a->loop, &t);
    t.data = a;
    uv_timer_start(&t, al_timeout, 20000, 0);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&a->loop, UV_RUN_NOWAIT);
    if (a->failed || a->got != calls)
        bench_die("allocated %zu of %zu calls", a->got, calls);
}

static void alloc_close(alloc_run *a)
{
    if (a->c != NULL)
        kurer_conn_close(a->c, 0);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&a->loop);
    free(a->calls);
}

static int udp_connected(const struct sockaddr_storage *to)
{
    struct sockaddr_in me = {0};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    me.sin_family = AF_INET;
    me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
        connect(fd, (const struct sockaddr *)to, sizeof(struct sockaddr_in)) != 0)
        bench_die("udp socket: %s", strerror(errno));
    return fd;
}

/* BIND every leg (resent every 250 ms to those without BOUND, 20 rounds at most). */
static void bind_legs(load *ld, const kurer_media_allocation *calls)
{
    uint8_t msg[1 + KURER_MEDIA_RELAY_TICKET_MAX], in[64];
    char *bound = calloc(ld->n, 1);
    size_t left = ld->n;
    for (int round = 0; round < 20 && left > 0; round++) {
        for (size_t i = 0; i < ld->n; i++) {
            if (bound[i])
                continue;
            const kurer_media_allocation *c = &calls[i / 2];
            size_t tl = i % 2 ? c->ticket_b_len : c->ticket_a_len;
            msg[0] = 0x01;
            memcpy(msg + 1, i % 2 ? c->ticket_b : c->ticket_a, tl);
            (void)send(ld->legs[i].fd, msg, 1 + tl, 0);
        }
        uint64_t end = kurer_time_mono_ms() + 250;
        while (left > 0 && kurer_time_mono_ms() < end) {
            for (size_t i = 0; i < ld->n; i++)
                if (!bound[i] && recv(ld->legs[i].fd, in, sizeof(in), MSG_DONTWAIT) == 2 &&
                    in[0] == 0x02) {
                    bound[i] = 1;
                    left--;
                }
            usleep(1000);
        }
    }
    free(bound);
    if (left > 0)
        bench_die("%zu legs got no BOUND", left);
}

typedef struct figures {
    double pps, loss, cpu_per_mpkt, offered_pps;
    int ok;
} figures;

static void figures_of(const load *ld, figures *f)
{
    memset(f, 0, sizeof(*f));
    f->ok = ld->sent_window > 0 && ld->window_s > 0;
    if (!f->ok)
        return;
    f->pps = (double)ld->recv_window / ld->window_s;
    f->offered_pps = (double)(ld->sent_window + ld->sent_failed) / ld->window_s;
    uint64_t sent = ld->sent_window + ld->sent_failed;
    f->loss = sent > ld->recv_window ? (double)(sent - ld->recv_window) / (double)sent : 0;
    f->cpu_per_mpkt = ld->recv_window > 0 ? ld->cpu_s / ((double)ld->recv_window / 1e6) : 0;
}

static void measure_kurer(bench_pki *pki, size_t calls, load *ld, figures *f)
{
    bench_server srv;
    bench_device d;
    alloc_run a;
    const char *conf = ld->period_ms != 0
                           ? "media_listen = 127.0.0.1:0\nmedia_calls_per_device = 1000\n"
                             "media_calls_max = 100000\nping_rate = 0\n"
                           : "media_listen = 127.0.0.1:0\nmedia_calls_per_device = 1000\n"
                             "media_calls_max = 100000\nping_rate = 0\n"
                             "media_leg_packet_rate = 0\nmedia_leg_byte_rate = 0\n";
    if (bench_relay_start_config(&srv, pki, conf) != 0 || !srv.have_media)
        bench_die("the relay did not start with its media relay");
    bench_device_make(pki, &d, "anna@mof", 10);
    allocate(&a, &srv, &d, calls);
    ld->n = 2 * calls;
    ld->legs = calloc(ld->n, sizeof(*ld->legs));
    for (size_t i = 0; i < ld->n; i++)
        ld->legs[i].fd = udp_connected(&srv.media);
    bind_legs(ld, a.calls);
    ld->server = srv.pid;
    run_load(ld);
    figures_of(ld, f);
    for (size_t i = 0; i < ld->n; i++)
        close(ld->legs[i].fd);
    free(ld->legs);
    alloc_close(&a);
    bench_device_free(&d);
    bench_server_stop(&srv);
}

static void measure_coturn(size_t calls, load *ld, figures *f)
{
    turn_server ts;
    memset(f, 0, sizeof(*f));
    if (turn_start(&ts, 2 * calls) != 0) {
        char cmd[400];
        fprintf(stderr, "bench: turnserver did not start; its log:\n");
        snprintf(cmd, sizeof(cmd), "tail -n 20 %s/turn*.log >&2", ts.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: (no log)\n");
        turn_stop(&ts);
        return;
    }
    turn_leg *tl = calloc(2 * calls, sizeof(*tl));
    ld->n = 2 * calls;
    ld->legs = calloc(ld->n, sizeof(*ld->legs));
    for (size_t i = 0; i < ld->n; i++)
        turn_allocate(&ts, &tl[i]);
    for (size_t i = 0; i < ld->n; i++) {
        turn_bind_peer(&tl[i], &tl[i ^ 1].relayed);
        ld->legs[i].fd = tl[i].fd;
        ld->legs[i].hlen = 4;
    }
    ld->server = ts.pid;
    run_load(ld);
    figures_of(ld, f);
    for (size_t i = 0; i < ld->n; i++)
        close(ld->legs[i].fd);
    free(ld->legs);
    free(tl);
    turn_stop(&ts);
}

static void put_figures(bench_json *j, const char *prefix, const figures *f)
{
    static const char *const names[] = {"pps", "loss", "cpu_s_per_mpkt", "offered_pps"};
    const double v[] = {f->pps, f->loss, f->cpu_per_mpkt, f->offered_pps};
    char k[64];
    for (size_t i = 0; i < 4; i++) {
        snprintf(k, sizeof(k), "%s%s", prefix, names[i]);
        bench_json_num(j, k, f->ok ? v[i] : NAN); /* null: not measured (no turnserver) */
    }
}

static void one_line(bench_pki *pki, size_t calls, int period_ms, double seconds, int argc,
                     char **argv)
{
    load ld;
    figures ours, theirs;
    memset(&ld, 0, sizeof(ld));
    ld.period_ms = period_ms;
    ld.warmup_s = 1;
    ld.seconds = seconds;
    measure_kurer(pki, calls, &ld, &ours);
    measure_coturn(calls, &ld, &theirs);
    bench_json j;
    bench_json_begin(&j, "media_relay");
    bench_json_int(&j, "calls", calls);
    bench_json_str(&j, "mode", period_ms ? "paced_20ms" : "saturation");
    bench_json_int(&j, "datagram_bytes", DGRAM);
    put_figures(&j, "", &ours);
    put_figures(&j, "coturn_", &theirs);
    bench_json_num(&j, "seconds", seconds);
    bench_json_end(&j, argc, argv);
    printf("# media_relay %s, %zu calls: ours %.0f pkt/s, loss %.4f%%, %.2f CPU s/Mpkt; coturn "
           "%.0f pkt/s, loss %.4f%%, %.2f CPU s/Mpkt\n",
           period_ms ? "20 ms pacing" : "saturation", calls, ours.pps, ours.loss * 100,
           ours.cpu_per_mpkt, theirs.pps, theirs.loss * 100, theirs.cpu_per_mpkt);
    fflush(stdout);
}

static size_t parse_list(const char *s, size_t *out, size_t cap)
{
    size_t n = 0;
    for (char *end; *s != '\0' && n < cap; s = *end == ',' ? end + 1 : end) {
        out[n++] = strtoull(s, &end, 10);
        if (end == s)
            bench_die("bad list: %s", s);
    }
    return n;
}

int main(int argc, char **argv)
{
    size_t calls[8] = {100, 500, 1000}, n_calls = 3, sat_calls = 100;
    double seconds = 3, sat_seconds = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0) {
            calls[0] = 4, n_calls = 1, sat_calls = 4, seconds = 1, sat_seconds = 0.5;
        } else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc) {
            n_calls = parse_list(argv[++i], calls, 8);
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--saturate-calls") == 0 && i + 1 < argc) {
            sat_calls = strtoull(argv[++i], NULL, 10); /* 0: no saturation run */
        } else if (strcmp(argv[i], "--saturate-seconds") == 0 && i + 1 < argc) {
            sat_seconds = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_media_relay [--smoke] [--calls 100,500,1000] "
                            "[--seconds 3] [--saturate-calls 100] [--saturate-seconds 2]\n");
            return 2;
        }
    }
    if (kurer_crypto_init() != 0)
        bench_die("crypto init");
    bench_raise_nofile();
    bench_pki pki;
    bench_pki_init(&pki);
    for (size_t i = 0; i < n_calls; i++)
        one_line(&pki, calls[i], 20, seconds, argc, argv);
    if (sat_calls > 0)
        one_line(&pki, sat_calls, 0, sat_seconds, argc, argv);
    bench_pki_free(&pki);
    return 0;
}
