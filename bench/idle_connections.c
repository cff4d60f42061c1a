/* bench_idle: idle_connections (bench/README.md).
 *
 *   bench_idle [--smoke] [--n 1000,10000,18000] [--trickle-rate R] [--trickle-seconds D]
 *
 * For each N: a fresh kurer-relay; N devices (real Noise IK clients with certificate chains)
 * connect and stay idle, spread over ceil(N / 9000) worker processes, since every process here
 * may hold at most 20,000 open files; then a trickle of R envelopes/s for D s goes from one
 * device to devices picked at random while all stay connected. Figures: handshakes/s while
 * connecting (N over the time from the first connect to the last established), the relay's RSS
 * growth per connection (RSS when all are connected and settled, minus RSS before the first,
 * over N), and the p99 of send-to-delivered latency of the trickle. */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "common.h"
#include "kurer/crypto.h"
#include "kurer/net.h"
#include "kurer/util.h"

#define PER_WORKER 9000
#define CONCURRENT 128

typedef struct up_report {
    uint64_t first_ns, last_ns, n_ok, n_failed;
} up_report;

typedef struct w_dev {
    struct worker *w;
    size_t idx; /* global device index */
    kurer_conn *c;
    int up, closed;
    uint64_t next_req;
} w_dev;

typedef struct worker {
    uv_loop_t loop;
    bench_device *devs;
    const bench_server *srv;
    size_t lo, hi, n_total, next, connecting;
    w_dev *d;
    up_report up;
    int reported;
    int cmd_fd, rep_fd;
    uv_poll_t cmd;
    uv_timer_t timer;
    double rate, seconds;
    uint64_t t_trickle, sent, delivered, errors;
    bench_hist h;
} worker;

static void w_connect_more(worker *w);

static void w_report_up(worker *w)
{
    if (w->reported || w->up.n_ok + w->up.n_failed < w->hi - w->lo)
        return;
    w->reported = 1;
    if (write(w->rep_fd, &w->up, sizeof(w->up)) != (ssize_t)sizeof(w->up))
        _exit(3);
}

static void send_frame(w_dev *d, kurer_client_frame *f)
{
    uint8_t buf[2048];
    kurer_buf b;
    f->request_id = d->next_req++;
    kurer_buf_init_fixed(&b, buf, sizeof(buf));
    if (kurer_client_frame_encode(f, &b) != 0 || d->c == NULL ||
        kurer_conn_send(d->c, b.data, b.len) != 0)
        d->w->errors++;
}

static void on_est(kurer_conn *c, const uint8_t *p, size_t n)
{
    w_dev *d = kurer_conn_data(c);
    worker *w = d->w;
    kurer_handshake_accept acc;
    if (kurer_handshake_accept_decode(p, n, &acc) != 0 || acc.has_error) {
        kurer_conn_close(c, KURER_EUNTRUSTED);
        return;
    }
    /* The relay counts the connection as the device's once a record of ours has arrived. */
    kurer_client_frame ping;
    memset(&ping, 0, sizeof(ping));
    ping.body = KURER_CLIENT_PING;
    send_frame(d, &ping);
    d->up = 1;
    w->up.n_ok++;
    w->up.last_ns = bench_now_ns();
    w->connecting--;
    w_connect_more(w);
    w_report_up(w);
}

static void on_rec(kurer_conn *c, uint8_t *p, size_t n)
{
    w_dev *d = kurer_conn_data(c);
    worker *w = d->w;
    kurer_server_frame f;
    if (kurer_server_frame_decode(p, n, &f) != 0) {
        w->errors++;
        return;
    }
    if (f.body == KURER_SERVER_DELIVER) {
        uint64_t t = 0, now = bench_now_ns();
        if (f.u.deliver.envelope.content_len >= sizeof(t))
            memcpy(&t, f.u.deliver.envelope.content, sizeof(t));
        if (t != 0 && t <= now)
            bench_hist_add(&w->h, (now - t) / 1000);
        w->delivered++;
        kurer_client_frame a;
        uint64_t seq = f.u.deliver.seq;
        memset(&a, 0, sizeof(a));
        a.body = KURER_CLIENT_ACK;
        a.u.ack.seqs = &seq;
        a.u.ack.n = 1;
        send_frame(d, &a);
    } else if (f.body == KURER_SERVER_ERROR ||
               (f.body == KURER_SERVER_SEND_RESULT &&
                (f.u.send_result.n != 1 ||
                 f.u.send_result.users[0].status != KURER_SEND_ACCEPTED))) {
        w->errors++;
    }
    kurer_server_frame_release(&f);
}

static void on_idle(kurer_conn *c)
{
    kurer_client_frame f;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_PING;
    send_frame(kurer_conn_data(c), &f);
}

static void on_close(kurer_conn *c, int err)
{
    w_dev *d = kurer_conn_data(c);
    worker *w = d->w;
    (void)err;
    d->c = NULL;
    d->closed = 1;
    if (!d->up) {
        w->up.n_failed++;
        w->connecting--;
        w_connect_more(w);
        w_report_up(w);
    }
}

static const kurer_conn_cbs cbs = {NULL, on_est, on_rec, NULL, on_idle, on_close};

static void w_connect_more(worker *w)
{
    while (w->next < w->hi && w->connecting < CONCURRENT) {
        w_dev *d = &w->d[w->next - w->lo];
        bench_device *bd = &w->devs[w->next];
        w->next++;
        w->connecting++;
        if (w->up.first_ns == 0)
            w->up.first_ns = bench_now_ns();
        if (kurer_conn_connect(&d->c, &w->loop, (const struct sockaddr *)&w->srv->addr, NULL, &cbs,
                               KURER_NOISE_IK, bd->sk, w->srv->pk, bd->hello, bd->hello_len,
                               d) != 0) {
            w->connecting--;
            w->up.n_failed++;
        }
    }
}

static void trickle_tick(uv_timer_t *t)
{
    worker *w = t->data;
    uint64_t now = bench_now_ns();
    double el = (double)(now - w->t_trickle) / 1e9;
    if (el >= w->seconds + 1.5) {
        /* done: report the histogram and the counts, then leave (the relay sees the closes) */
        uint64_t counts[3] = {w->sent, w->delivered, w->errors};
        if (write(w->rep_fd, &w->h, sizeof(w->h)) != (ssize_t)sizeof(w->h) ||
            write(w->rep_fd, counts, sizeof(counts)) != (ssize_t)sizeof(counts))
            _exit(3);
        _exit(0);
    }
    if (w->lo != 0 || el >= w->seconds)
        return;
    /* worker 0 sends, from its first device, to random devices of all workers */
    w_dev *from = &w->d[0];
    uint64_t due = (uint64_t)(w->rate * el);
    while (w->sent < due && from->c != NULL) {
        kurer_client_frame f;
        kurer_envelope e;
        uint8_t content[200];
        memset(&f, 0, sizeof(f));
        memset(&e, 0, sizeof(e));
        memset(content, 0x5a, sizeof(content));
        uint64_t ts = bench_now_ns();
        memcpy(content, &ts, sizeof(ts));
        kurer_random(e.id, sizeof(e.id));
        size_t to = kurer_random_uniform((uint32_t)w->n_total);
        snprintf(e.to.user, sizeof(e.to.user), "%s", w->devs[to].user);
        e.to.device_id = 1;
        e.type = KURER_ENVELOPE_MESSAGE;
        e.content = content;
        e.content_len = sizeof(content);
        f.body = KURER_CLIENT_SEND;
        f.u.send.envelopes = &e;
        f.u.send.n = 1;
        send_frame(from, &f);
        w->sent++;
    }
}

static void on_cmd(uv_poll_t *h, int status, int events)
{
    worker *w = h->data;
    char ch;
    (void)status;
    (void)events;
    if (read(w->cmd_fd, &ch, 1) != 1)
        _exit(0); /* the parent is gone */
    if (ch == 'T') {
        w->t_trickle = bench_now_ns();
        uv_timer_start(&w->timer, trickle_tick, 1, 2);
    }
}

static void worker_main(worker *w)
{
    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&w->loop) != 0)
        _exit(2);
    w->d = calloc(w->hi - w->lo, sizeof(w_dev));
    if (w->d == NULL)
        _exit(2);
    for (size_t i = w->lo; i < w->hi; i++) {
        w->d[i - w->lo].w = w;
        w->d[i - w->lo].idx = i;
        w->d[i - w->lo].next_req = 1;
    }
    uv_poll_init(&w->loop, &w->cmd, w->cmd_fd);
    w->cmd.data = w;
    uv_poll_start(&w->cmd, UV_READABLE, on_cmd);
    uv_timer_init(&w->loop, &w->timer);
    w->timer.data = w;
    w_connect_more(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    _exit(0);
}

static int read_full(int fd, void *p, size_t n, int timeout_ms)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, timeout_ms) <= 0)
            return -1;
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

typedef struct fig {
    size_t n;
    uint64_t ok;
    double hs_per_s, rss_per_conn, p50, p99, p999;
    uint64_t rss0, rss1, sent, delivered, errors;
} fig;

static void measure(bench_pki *pki, bench_device *devs, size_t N, double rate, double seconds,
                    fig *out)
{
    bench_server srv;
    size_t W = (N + PER_WORKER - 1) / PER_WORKER;
    pid_t pids[8];
    int cmd[8], rep[8];
    memset(out, 0, sizeof(*out));
    out->n = N;
    bench_relay_start(&srv, pki);
    usleep(500000);
    out->rss0 = bench_proc_rss(srv.pid);
    for (size_t i = 0; i < W; i++) {
        int c[2], r[2];
        if (pipe(c) != 0 || pipe(r) != 0)
            bench_die("pipe");
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            bench_die("fork");
        if (pid == 0) {
            static worker w;
            close(c[1]);
            close(r[0]);
            memset(&w, 0, sizeof(w));
            w.devs = devs;
            w.srv = &srv;
            w.lo = i * N / W;
            w.hi = (i + 1) * N / W;
            w.next = w.lo;
            w.n_total = N;
            w.cmd_fd = c[0];
            w.rep_fd = r[1];
            w.rate = rate;
            w.seconds = seconds;
            worker_main(&w);
        }
        close(c[0]);
        close(r[1]);
        pids[i] = pid;
        cmd[i] = c[1];
        rep[i] = r[0];
    }
    uint64_t first = UINT64_MAX, last = 0;
    for (size_t i = 0; i < W; i++) {
        up_report u;
        if (read_full(rep[i], &u, sizeof(u), 300000) != 0)
            bench_die("worker %zu did not report", i);
        out->ok += u.n_ok;
        if (u.first_ns < first)
            first = u.first_ns;
        if (u.last_ns > last)
            last = u.last_ns;
    }
    out->hs_per_s = last > first ? (double)out->ok / ((double)(last - first) / 1e9) : 0;
    usleep(1000000); /* let the relay settle (store writes of the directory) */
    out->rss1 = bench_proc_rss(srv.pid);
    out->rss_per_conn = ((double)out->rss1 - (double)out->rss0) / (double)N;
    for (size_t i = 0; i < W; i++)
        if (write(cmd[i], "T", 1) != 1)
            bench_die("worker %zu gone", i);
    bench_hist h;
    memset(&h, 0, sizeof(h));
    for (size_t i = 0; i < W; i++) {
        static bench_hist wh;
        uint64_t counts[3];
        if (read_full(rep[i], &wh, sizeof(wh), (int)(seconds * 1000) + 30000) != 0 ||
            read_full(rep[i], counts, sizeof(counts), 5000) != 0)
            bench_die("worker %zu did not report the trickle", i);
        bench_hist_merge(&h, &wh);
        out->sent += counts[0];
        out->delivered += counts[1];
        out->errors += counts[2];
    }
    for (size_t i = 0; i < W; i++) {
        waitpid(pids[i], NULL, 0);
        close(cmd[i]);
        close(rep[i]);
    }
    out->p50 = bench_hist_ms(&h, 0.5);
    out->p99 = bench_hist_ms(&h, 0.99);
    out->p999 = bench_hist_ms(&h, 0.999);
    bench_server_stop(&srv);
}

int main(int argc, char **argv)
{
    size_t ns[8] = {1000, 10000, 18000};
    size_t n_ns = 3;
    double rate = 200, seconds = 5;
    int smoke = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0) {
            smoke = 1;
        } else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
            n_ns = 0;
            for (char *p = argv[++i]; *p && n_ns < 8;) {
                ns[n_ns++] = strtoul(p, &p, 10);
                if (*p == ',')
                    p++;
            }
        } else if (strcmp(argv[i], "--trickle-rate") == 0 && i + 1 < argc) {
            rate = atof(argv[++i]);
        } else if (strcmp(argv[i], "--trickle-seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_idle [--smoke] [--n 1000,10000,18000] "
                            "[--trickle-rate R] [--trickle-seconds D]\n");
            return 2;
        }
    }
    if (smoke) {
        ns[0] = 40;
        n_ns = 1;
        rate = 100;
        seconds = 0.3;
    }
    signal(SIGPIPE, SIG_IGN);
    uint64_t nofile = bench_raise_nofile();
    size_t max = 0;
    for (size_t i = 0; i < n_ns; i++)
        if (ns[i] > max)
            max = ns[i];
    if (max + 100 > nofile)
        fprintf(stderr, "bench: the relay may hold at most %" PRIu64 " open files\n", nofile);
    bench_pki pki;
    bench_pki_init(&pki);
    bench_device *devs = calloc(max, sizeof(*devs));
    if (devs == NULL)
        abort();
    for (size_t i = 0; i < max; i++) {
        char user[64];
        snprintf(user, sizeof(user), "i%zu@mof", i);
        bench_device_make(&pki, &devs[i], user, 100000 + i);
    }
    fig f[8];
    for (size_t k = 0; k < n_ns; k++) {
        measure(&pki, devs, ns[k], rate, seconds, &f[k]);
        bench_json j;
        bench_json_begin(&j, "idle_connections");
        bench_json_int(&j, "connections", f[k].n);
        bench_json_int(&j, "connected", f[k].ok);
        bench_json_num(&j, "handshakes_per_s", f[k].hs_per_s);
        bench_json_num(&j, "rss_bytes_per_conn", f[k].rss_per_conn);
        bench_json_int(&j, "relay_rss_start", f[k].rss0);
        bench_json_int(&j, "relay_rss_connected", f[k].rss1);
        bench_json_num(&j, "p50_deliver_ms", f[k].p50);
        bench_json_num(&j, "p99_deliver_ms", f[k].p99);
        bench_json_num(&j, "p999_deliver_ms", f[k].p999);
        bench_json_int(&j, "trickle_sent", f[k].sent);
        bench_json_int(&j, "trickle_delivered", f[k].delivered);
        bench_json_int(&j, "errors", f[k].errors);
        bench_json_end(&j, argc, argv);
    }
    printf("# idle_connections summary (trickle %.0f/s for %.1f s to random devices)\n", rate,
           seconds);
    printf("# %8s %10s %12s %14s %12s\n", "N", "connected", "handshake/s", "rss_B_per_conn",
           "p99_del_ms");
    for (size_t k = 0; k < n_ns; k++)
        printf("# %8zu %10" PRIu64 " %12.0f %14.0f %12.2f\n", f[k].n, f[k].ok, f[k].hs_per_s,
               f[k].rss_per_conn, f[k].p99);
    const fig *big = &f[n_ns - 1];
    for (int m = 0; m < 2; m++) {
        double n = m == 0 ? 1e5 : 1e6;
        printf("# %s connections would need: %.1f GiB of relay RSS at %.0f B each (beyond the "
               "start), %.0f open files in the relay (raise the hard limit; here it is "
               "%" PRIu64 "), %.0f s of handshakes at %.0f/s after a restart, and on the client "
               "side %.0f source addresses at about 28,000 ports each\n",
               m == 0 ? "100k" : "1M", n * big->rss_per_conn / (1024.0 * 1024 * 1024),
               big->rss_per_conn, n + 64, nofile, big->hs_per_s > 0 ? n / big->hs_per_s : 0,
               big->hs_per_s, n / 28000.0 < 1 ? 1 : n / 28000.0 + 0.999);
    }
    for (size_t i = 0; i < max; i++)
        bench_device_free(&devs[i]);
    free(devs);
    bench_pki_free(&pki);
    return 0;
}
