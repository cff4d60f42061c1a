/* bench_preauth: preauth_memory and lookup_cpu (bench/README.md), the figures of issue 9.
 *
 *   bench_preauth [--smoke] [--only memory|lookup] [--n 256,1024]
 *                 [--kinds idle,partial_record,nk,partial_record_max] [--config FILE]
 *                 [--limit-kind partial_record] [--limit-conns 1100] [--hold S]
 *                 [--users 64] [--lookups 2000] [--window 1]
 *
 * The relay is $KURER_BENCH_RELAY if set (e.g. a build of an older tree), else the one of this
 * build. A relay from before issue 9 refuses the config keys it does not know (it has neither
 * max_preauth_per_address, nk_rate nor lookup_rate): the benchmark asks the binary which it is
 * and leaves them out of its config.
 *
 * preauth_memory: for each kind and N, a fresh relay; N raw TCP connections from 127.0.0.1 that
 * never authenticate, then the relay's RSS growth over the connections it still holds:
 *   idle                TCP connected, nothing sent;
 *   partial_record      a 2-byte length of 4608 (max_preauth_record's default) and 4000 bytes of
 *                       it: a first handshake message that never completes;
 *   nk                  a Noise NK handshake (raw initiator), then 4000 bytes of a record of 4600;
 *   partial_record_max  a length of 65535 (the old pre-authentication bound, max_record) and
 *                       60000 bytes of it.
 * The relay's config lifts the bounds (max_handshakes and max_preauth_per_address 100000,
 * deadlines 600 s, nk_rate 0) so that the memory of N connections is what is measured. Then one
 * line at the limits: the relay's defaults (only max_preauth_per_address raised, since every
 * connection comes from one address) and --limit-conns partial_record connections.
 *
 * lookup_cpu: for each kind a fresh relay; --users devices (one per user) connect once each so that
 * the relay has them in its directory, then one more device sends --lookups DirectoryLookups of
 * --users names, --window outstanding, for "known" (the registered users) and "unknown" (names
 * nobody has), with lookup_rate = 0. Figures: the relay's utime + stime (/proc/PID/stat) per
 * lookup, the frame sizes and the relay's peak RSS (VmHWM, reset first) over its RSS at the start.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <uv.h>

#include "common.h"
#include "kurer/crypto.h"
#include "kurer/net.h"
#include "kurer/noise.h"
#include "kurer/util.h"

#define METRICS_CAP (256 * 1024)

static int legacy;             /* the relay predates issue 9's config keys */
static char *config_file_text; /* --config FILE: replaces the unbounded config */
static double hold_s;          /* --hold S */
static char metrics[METRICS_CAP];

/* A metric of the page just fetched; NAN when the relay has no such metric. */
static double metric(const char *name)
{
    double v = bench_metric(metrics, name);
    return v < 0 ? NAN : v;
}

static int fetch_metrics(const bench_server *s)
{
    return bench_metrics_fetch(&s->maddr, metrics, sizeof(metrics));
}

/* ---- preauth_memory ----------------------------------------------------------------------- */

enum { K_IDLE, K_PARTIAL, K_NK, K_PARTIAL_MAX, K_COUNT };
static const char *const kind_names[K_COUNT] = {"idle", "partial_record", "nk",
                                                "partial_record_max"};

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int recv_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The 2-byte length of a record of announced bytes, and sent bytes of it (never complete). */
static int send_partial(int fd, size_t announced, size_t sent)
{
    static uint8_t buf[2 + 65535];
    buf[0] = (uint8_t)(announced >> 8);
    buf[1] = (uint8_t)announced;
    kurer_random(buf + 2, sent);
    return send_all(fd, buf, 2 + sent);
}

/* Noise NK as initiator over a blocking socket: message 1 without payload, message 2 with the
 * relay's HandshakeAccept. 0, -1 (transport or Noise failure), or -2 (the relay refused, e.g.
 * ERATE). */
static int nk_handshake(int fd, const uint8_t relay_pk[32])
{
    kurer_noise_hs *hs = NULL;
    kurer_buf out, pl;
    uint8_t hdr[2], msg[65535];
    int rc = -1;
    kurer_buf_init(&out, 70000);
    kurer_buf_init(&pl, 70000);
    if (kurer_noise_hs_new(&hs, KURER_NOISE_NK, 1, (const uint8_t *)KURER_NET_PROLOGUE,
                           strlen(KURER_NET_PROLOGUE), NULL, relay_pk) != 0)
        goto out;
    if (kurer_buf_put_u8(&out, 0) != 0 || kurer_buf_put_u8(&out, 0) != 0 ||
        kurer_noise_hs_write_message(hs, NULL, 0, &out) != 0)
        goto out;
    out.data[0] = (uint8_t)((out.len - 2) >> 8);
    out.data[1] = (uint8_t)(out.len - 2);
    if (send_all(fd, out.data, out.len) != 0 || recv_all(fd, hdr, 2) != 0)
        goto out;
    size_t n = (size_t)hdr[0] << 8 | hdr[1];
    if (n == 0 || recv_all(fd, msg, n) != 0 || kurer_noise_hs_read_message(hs, msg, n, &pl) != 0)
        goto out;
    kurer_handshake_accept acc;
    if (kurer_handshake_accept_decode(pl.data, pl.len, &acc) != 0)
        goto out;
    rc = acc.has_error ? -2 : 0;
out:
    kurer_noise_hs_free(hs);
    kurer_buf_release(&out);
    kurer_buf_release(&pl);
    return rc;
}

typedef struct conn_result {
    size_t opened, failed, nk_refused;
} conn_result;

/* One pre-authentication connection of kind k; its socket, or -1. */
static int open_conn(const bench_server *srv, int k, conn_result *cr)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        bench_die("socket: %s", strerror(errno));
    struct timeval tv = {5, 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)&srv->addr, sizeof(struct sockaddr_in)) != 0) {
        close(fd);
        cr->failed++;
        return -1;
    }
    cr->opened++;
    switch (k) {
    case K_PARTIAL:
        (void)send_partial(fd, KURER_NET_PREAUTH_RECORD, 4000);
        break;
    case K_PARTIAL_MAX:
        /* the current relay closes at the length: the rest may meet a reset */
        (void)send_partial(fd, 65535, 60000);
        break;
    case K_NK: {
        int rc = nk_handshake(fd, srv->pk);
        if (rc == -2)
            cr->nk_refused++;
        if (rc == 0)
            (void)send_partial(fd, 4600, 4000);
        break;
    }
    default:
        break;
    }
    return fd;
}

/* Sockets the relay has closed (EOF, reset or unread input) as this side sees them. */
static size_t closed_by_peer(const int *fds, size_t n)
{
    size_t closed = 0;
    for (size_t i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        struct pollfd pf = {fds[i], POLLIN, 0};
        if (poll(&pf, 1, 0) == 1 && (pf.revents & (POLLIN | POLLHUP | POLLERR)))
            closed++;
    }
    return closed;
}

typedef struct mem_fig {
    int kind;
    size_t n;
    const char *config; /* "unbounded" or "defaults" */
    conn_result cr;
    uint64_t rss0, rss1;                /* KiB */
    double kept, handshaking, total;    /* gauges and kurer_connections_total */
    double ref_hs, ref_addr, ref_conns; /* kurer_connections_refused_total{reason=...} */
    double elim;                        /* kurer_rejections_total{reason="ELIMIT"} */
    size_t closed_seen;
    double settle_s;
    double kept_after_hold; /* --hold: the gauge S seconds later */
} mem_fig;

static void measure_memory(const bench_pki *pki, int kind, size_t n, int at_limits, mem_fig *out)
{
    bench_server srv;
    const char *conf;
    if (at_limits == 2) /* --smoke: the refusal path, with a bound a few connections reach */
        conf = legacy
                   ? "max_handshakes = 4\n"
                   : "max_handshakes = 4\nmax_preauth_per_address = 100000\nhandshake_rate = 0\n";
    else if (at_limits)
        conf = legacy ? NULL
                      : "# the defaults; every client comes from 127.0.0.1\n"
                        "max_preauth_per_address = 100000\nhandshake_rate = 0\n";
    else if (config_file_text != NULL)
        conf = config_file_text;
    else
        conf =
            legacy
                ? "max_handshakes = 100000\nmax_connections = 100000\n"
                  "handshake_timeout_ms = 600000\nidle_timeout_ms = 600000\n"
                : "max_handshakes = 100000\nmax_preauth_per_address = 100000\nhandshake_rate = 0\n"
                  "max_connections = 100000\nhandshake_timeout_ms = 600000\n"
                  "idle_timeout_ms = 600000\nnk_rate = 0\n";
    memset(out, 0, sizeof(*out));
    out->kind = kind;
    out->n = n;
    out->config = at_limits == 2             ? "max_handshakes_4"
                  : at_limits                ? "defaults"
                  : config_file_text != NULL ? "file"
                                             : "unbounded";
    if (bench_relay_start_config(&srv, pki, conf) != 0)
        bench_die("the relay did not start");
    usleep(500000);
    (void)fetch_metrics(&srv); /* the metrics page's own allocations, before the baseline */
    usleep(200000);
    out->rss0 = bench_proc_status_kib(srv.pid, "VmRSS");
    int *fds = malloc(n * sizeof(*fds));
    if (fds == NULL)
        abort();
    double t0 = bench_now_s();
    for (size_t i = 0; i < n; i++)
        fds[i] = open_conn(&srv, kind, &out->cr);
    /* Until the gauge shows them all, or stops moving for a second (some were refused). */
    double last = -1, stable_since = bench_now_s();
    for (double end = bench_now_s() + 20; bench_now_s() < end;) {
        usleep(100000);
        if (fetch_metrics(&srv) != 0)
            continue;
        double g = metric("kurer_connections");
        if (g == (double)n)
            break;
        if (g != last) {
            last = g;
            stable_since = bench_now_s();
        } else if (bench_now_s() - stable_since >= 1.0) {
            break;
        }
    }
    usleep(300000); /* the last reads */
    out->rss1 = bench_proc_status_kib(srv.pid, "VmRSS");
    out->settle_s = bench_now_s() - t0;
    if (fetch_metrics(&srv) != 0)
        metrics[0] = '\0';
    out->kept = metric("kurer_connections");
    out->handshaking = metric("kurer_connections_handshaking");
    out->total = metric("kurer_connections_total");
    out->ref_hs = metric("kurer_connections_refused_total{reason=\"max_handshakes\"}");
    out->ref_addr = metric("kurer_connections_refused_total{reason=\"per_address\"}");
    out->ref_conns = metric("kurer_connections_refused_total{reason=\"max_connections\"}");
    out->elim = metric("kurer_rejections_total{reason=\"ELIMIT\"}");
    out->closed_seen = closed_by_peer(fds, n);
    out->kept_after_hold = NAN;
    if (hold_s > 0) {
        usleep((useconds_t)(hold_s * 1e6));
        if (fetch_metrics(&srv) == 0)
            out->kept_after_hold = metric("kurer_connections");
    }
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    bench_server_stop(&srv);
}

static void print_memory(const mem_fig *f, int argc, char **argv)
{
    bench_json j;
    double growth = ((double)f->rss1 - (double)f->rss0) * 1024.0;
    bench_json_begin(&j, "preauth_memory");
    bench_json_str(&j, "kind", kind_names[f->kind]);
    bench_json_str(&j, "config", f->config);
    bench_json_str(&j, "relay", legacy ? "legacy" : "current");
    bench_json_int(&j, "connections", f->n);
    bench_json_int(&j, "opened", f->cr.opened);
    bench_json_num(&j, "kept", f->kept);
    bench_json_num(&j, "handshaking", f->handshaking);
    bench_json_int(&j, "all_kept", f->kept == (double)f->n);
    bench_json_int(&j, "closed_seen_by_client", f->closed_seen);
    bench_json_int(&j, "nk_refused", f->cr.nk_refused);
    bench_json_num(&j, "connections_total", f->total);
    bench_json_num(&j, "refused_max_handshakes", f->ref_hs);
    bench_json_num(&j, "refused_per_address", f->ref_addr);
    bench_json_num(&j, "refused_max_connections", f->ref_conns);
    bench_json_num(&j, "rejected_elimit", f->elim);
    bench_json_int(&j, "rss_before_kib", f->rss0);
    bench_json_int(&j, "rss_after_kib", f->rss1);
    bench_json_num(&j, "rss_growth_kib", growth / 1024.0);
    bench_json_num(&j, "bytes_per_conn", f->kept > 0 ? growth / f->kept : NAN);
    bench_json_num(&j, "settle_s", f->settle_s);
    bench_json_num(&j, "kept_after_hold", f->kept_after_hold);
    bench_json_str(&j, "relay_bin", bench_relay_bin());
    bench_json_end(&j, argc, argv);
}

/* ---- lookup_cpu --------------------------------------------------------------------------- */

typedef struct lk_phase {
    const char *kind;
    const char *const *names;
    size_t lookups, warmup;
    /* figures */
    double cpu_s;
    uint64_t rss0, hwm, answer_bytes, request_bytes, answer_users, errors, undecodable;
    int peak_reset;
    double wall_s;
} lk_phase;

typedef struct lk_client {
    struct lk_run *run;
    kurer_conn *c;
    bench_device *dev;
    int up, done;
    uint64_t next_req;
} lk_client;

typedef struct lk_run {
    uv_loop_t loop;
    uv_timer_t timeout;
    const bench_server *srv;
    size_t n_users, window;
    lk_client *reg;  /* registration clients */
    size_t reg_done; /* answered their ping */
    lk_client looker;
    lk_phase *phases;
    size_t n_phases, phase;
    size_t sent, answered; /* within the phase, warm-up included */
    double t0;
    int failed;
} lk_run;

static int lk_send(lk_client *lc, kurer_client_frame *f)
{
    static uint8_t buf[KURER_FRAME_MAX];
    kurer_buf b;
    f->request_id = lc->next_req++;
    kurer_buf_init_fixed(&b, buf, sizeof(buf));
    if (kurer_client_frame_encode(f, &b) != 0 || lc->c == NULL ||
        kurer_conn_send(lc->c, b.data, b.len) != 0)
        return -1;
    return (int)b.len;
}

static void lk_ping(lk_client *lc)
{
    kurer_client_frame f;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_PING;
    (void)lk_send(lc, &f);
}

static void phase_begin(lk_run *r);

static void lookup_more(lk_run *r)
{
    lk_phase *p = &r->phases[r->phase];
    size_t total = p->warmup + p->lookups;
    while (r->sent < total && r->sent - r->answered < r->window) {
        kurer_client_frame f;
        memset(&f, 0, sizeof(f));
        f.body = KURER_CLIENT_LOOKUP;
        f.u.lookup.users = p->names;
        f.u.lookup.n = r->n_users;
        int len = lk_send(&r->looker, &f);
        if (len < 0) {
            r->failed = 1;
            kurer_conn_close(r->looker.c, 0);
            return;
        }
        p->request_bytes = (uint64_t)len;
        if (r->sent == p->warmup) {
            /* the measured CPU time starts with this lookup */
            p->cpu_s = bench_proc_cpu_s(r->srv->pid);
            r->t0 = bench_now_s();
        }
        r->sent++;
    }
}

static void phase_end(lk_run *r)
{
    lk_phase *p = &r->phases[r->phase];
    p->cpu_s = bench_proc_cpu_s(r->srv->pid) - p->cpu_s;
    p->wall_s = bench_now_s() - r->t0;
    p->hwm = bench_proc_status_kib(r->srv->pid, "VmHWM");
    r->phase++;
    if (r->phase == r->n_phases) {
        kurer_conn_close(r->looker.c, 0);
        return;
    }
    phase_begin(r);
}

static void phase_begin(lk_run *r)
{
    lk_phase *p = &r->phases[r->phase];
    /* the peak RSS is over the whole phase, warm-up included: the first lookups grow the heap */
    p->peak_reset = bench_proc_reset_peak(r->srv->pid) == 0;
    p->rss0 = bench_proc_status_kib(r->srv->pid, "VmRSS");
    r->sent = r->answered = 0;
    lookup_more(r);
}

static void lk_on_est(kurer_conn *c, const uint8_t *p, size_t n)
{
    lk_client *lc = kurer_conn_data(c);
    kurer_handshake_accept acc;
    if (kurer_handshake_accept_decode(p, n, &acc) != 0 || acc.has_error) {
        lc->run->failed = 1;
        kurer_conn_close(c, KURER_EUNTRUSTED);
        return;
    }
    lc->up = 1;
    /* The current relay counts the connection as the device's once a record has arrived. */
    lk_ping(lc);
}

static void lk_on_rec(kurer_conn *c, uint8_t *data, size_t n)
{
    lk_client *lc = kurer_conn_data(c);
    lk_run *r = lc->run;
    kurer_server_frame f;
    int ok = kurer_server_frame_decode(data, n, &f) == 0;
    if (lc != &r->looker) {
        /* registration: the Pong says the relay has taken us as the device */
        if (ok && f.body == KURER_SERVER_PONG && !lc->done) {
            lc->done = 1;
            r->reg_done++;
            kurer_conn_close(c, 0);
        }
        if (ok)
            kurer_server_frame_release(&f);
        return;
    }
    if (!lc->done) {
        if (ok && f.body == KURER_SERVER_PONG) {
            lc->done = 1;
            phase_begin(r);
        }
        if (ok)
            kurer_server_frame_release(&f);
        return;
    }
    if (r->phase >= r->n_phases) {
        if (ok)
            kurer_server_frame_release(&f);
        return;
    }
    lk_phase *p = &r->phases[r->phase];
    int answer = 0;
    if (!ok) {
        p->undecodable++; /* counted as the answer: nothing else is outstanding */
        answer = 1;
    } else if (f.body == KURER_SERVER_DIRECTORY) {
        p->answer_bytes = n;
        p->answer_users = f.u.directory.n;
        answer = 1;
    } else if (f.body == KURER_SERVER_ERROR) {
        p->errors++;
        answer = 1;
    }
    if (ok)
        kurer_server_frame_release(&f);
    if (!answer)
        return; /* a push */
    r->answered++;
    if (r->answered == p->warmup + p->lookups)
        phase_end(r);
    else
        lookup_more(r);
}

static void lk_on_close(kurer_conn *c, int err)
{
    lk_client *lc = kurer_conn_data(c);
    lk_run *r = lc->run;
    lc->c = NULL;
    if (err != 0 && err != KURER_ECLOSED && !lc->done) {
        fprintf(stderr, "bench: lookup client closed: %s\n", kurer_err_name(err));
        r->failed = 1;
    }
    if (lc == &r->looker && r->phase < r->n_phases)
        r->failed = 1;
}

static const kurer_conn_cbs lk_cbs = {NULL, lk_on_est, lk_on_rec, NULL, NULL, lk_on_close};

static void lk_timeout(uv_timer_t *t)
{
    lk_run *r = t->data;
    r->failed = 1;
    uv_stop(&r->loop);
}

static void lk_connect(lk_run *r, lk_client *lc, bench_device *d)
{
    lc->run = r;
    lc->dev = d;
    lc->next_req = 1;
    if (kurer_conn_connect(&lc->c, &r->loop, (const struct sockaddr *)&r->srv->addr, NULL, &lk_cbs,
                           KURER_NOISE_IK, d->sk, r->srv->pk, d->hello, d->hello_len, lc) != 0)
        bench_die("kurer_conn_connect failed");
}

/* Runs the loop until nothing is left open or timeout_ms pass. */
static void lk_loop(lk_run *r, uint64_t timeout_ms)
{
    uv_timer_start(&r->timeout, lk_timeout, timeout_ms, 0);
    uv_unref((uv_handle_t *)&r->timeout);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&r->timeout);
}

static double measure_lookups(bench_pki *pki, size_t users, size_t window, lk_phase *phases,
                              size_t n_phases)
{
    static lk_run r;
    bench_server srv;
    memset(&r, 0, sizeof(r));
    const char *conf = legacy ? "# lookups are not metered in this relay\n"
                              : "lookup_rate = 0\nping_rate = 0\n"
                                "# the devices register all at once, all from 127.0.0.1\n"
                                "max_preauth_per_address = 100000\nhandshake_rate = 0\n";
    if (bench_relay_start_config(&srv, pki, conf) != 0)
        bench_die("the relay did not start");
    if (uv_loop_init(&r.loop) != 0)
        bench_die("uv_loop_init");
    uv_timer_init(&r.loop, &r.timeout);
    r.timeout.data = &r;
    r.srv = &srv;
    r.n_users = users;
    r.window = window;
    r.phases = phases;
    r.n_phases = n_phases;
    bench_device *devs = calloc(users + 1, sizeof(*devs));
    r.reg = calloc(users, sizeof(*r.reg));
    if (devs == NULL || r.reg == NULL)
        abort();
    for (size_t i = 0; i < users; i++) {
        char user[64];
        snprintf(user, sizeof(user), "u%zu@mof", i);
        bench_device_make(pki, &devs[i], user, 1000 + i);
        lk_connect(&r, &r.reg[i], &devs[i]);
    }
    lk_loop(&r, 60000);
    if (r.failed || r.reg_done != users)
        bench_die("only %zu of %zu devices registered", r.reg_done, users);
    usleep(200000); /* the directory's store writes */
    double dir = NAN;
    if (fetch_metrics(&srv) == 0)
        dir = metric("kurer_directory_devices");
    bench_device_make(pki, &devs[users], "looker@mof", 999);
    lk_connect(&r, &r.looker, &devs[users]);
    lk_loop(&r, 600000);
    if (r.failed || r.phase != n_phases)
        bench_die("the lookups did not finish (phase %zu of %zu)", r.phase, n_phases);
    uv_close((uv_handle_t *)&r.timeout, NULL);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&r.loop);
    bench_server_stop(&srv);
    for (size_t i = 0; i <= users; i++)
        bench_device_free(&devs[i]);
    free(devs);
    free(r.reg);
    return dir;
}

/* ---- main --------------------------------------------------------------------------------- */

static size_t parse_list(const char *s, size_t *out, size_t cap)
{
    size_t n = 0;
    for (char *p = (char *)s; *p != '\0' && n < cap;) {
        out[n++] = strtoul(p, &p, 10);
        if (*p == ',')
            p++;
        else if (*p != '\0')
            return 0;
    }
    return n;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_preauth [--smoke] [--only memory|lookup] [--n 256,1024]\n"
                    "         [--kinds idle,partial_record,nk,partial_record_max] [--config FILE]\n"
                    "         [--limit-kind partial_record] [--limit-conns 1100] [--hold S]\n"
                    "         [--users 64] [--lookups 2000] [--window 1]\n");
    exit(2);
}

/* Both lookup phases (known and unknown names), a fresh relay each, and their JSON lines. */
static void run_lookups(bench_pki *pki, size_t users, size_t window, size_t lookups, lk_phase ph[2],
                        int argc, char **argv)
{
    double dir[2] = {NAN, NAN};
    static const char *known[KURER_LOOKUP_USERS_MAX], *unknown[KURER_LOOKUP_USERS_MAX];
    static char names[2][KURER_LOOKUP_USERS_MAX][32];
    for (size_t i = 0; i < users; i++) {
        snprintf(names[0][i], sizeof(names[0][i]), "u%zu@mof", i);
        snprintf(names[1][i], sizeof(names[1][i]), "nobody%zu@mof", i);
        known[i] = names[0][i];
        unknown[i] = names[1][i];
    }
    memset(ph, 0, 2 * sizeof(*ph));
    size_t warm = lookups / 10 < 100 ? lookups / 10 : 100;
    ph[0] = (lk_phase){.kind = "known", .names = known, .lookups = lookups, .warmup = warm};
    ph[1] = (lk_phase){.kind = "unknown", .names = unknown, .lookups = lookups, .warmup = warm};
    /* a fresh relay for each kind: the peak RSS of one must not hide in the other's heap */
    for (size_t i = 0; i < 2; i++)
        dir[i] = measure_lookups(pki, users, window, &ph[i], 1);
    for (size_t i = 0; i < 2; i++) {
        bench_json j;
        double peak = ph[i].peak_reset ? ((double)ph[i].hwm - (double)ph[i].rss0) : NAN;
        bench_json_begin(&j, "lookup_cpu");
        bench_json_str(&j, "kind", ph[i].kind);
        bench_json_str(&j, "relay", legacy ? "legacy" : "current");
        bench_json_num(&j, "directory_devices", dir[i]);
        bench_json_int(&j, "users_per_lookup", users);
        bench_json_int(&j, "lookups", ph[i].lookups);
        bench_json_int(&j, "window", window);
        bench_json_num(&j, "cpu_us_per_lookup", ph[i].cpu_s * 1e6 / (double)ph[i].lookups);
        bench_json_num(&j, "lookups_per_s", (double)ph[i].lookups / ph[i].wall_s);
        bench_json_int(&j, "request_bytes", ph[i].request_bytes);
        bench_json_int(&j, "answer_bytes", ph[i].answer_bytes);
        bench_json_num(&j, "answer_over_request",
                       (double)ph[i].answer_bytes / (double)ph[i].request_bytes);
        bench_json_int(&j, "answer_users", ph[i].answer_users);
        bench_json_int(&j, "errors", ph[i].errors);
        bench_json_int(&j, "undecodable", ph[i].undecodable);
        bench_json_int(&j, "rss_before_kib", ph[i].rss0);
        bench_json_num(&j, "peak_rss_kib", ph[i].peak_reset ? (double)ph[i].hwm : NAN);
        bench_json_num(&j, "peak_rss_growth_kib", peak);
        bench_json_str(&j, "relay_bin", bench_relay_bin());
        bench_json_end(&j, argc, argv);
    }
}

/* The '#' summary: memory figures, and the lookups when ph is not NULL. */
static void print_summary(const mem_fig *mf, size_t n_mf, const lk_phase *ph, size_t users)
{
    printf("# preauth (%s relay %s)\n", legacy ? "legacy" : "current", bench_relay_bin());
    printf("# %-18s %16s %6s %8s %10s %12s %9s\n", "kind", "config", "N", "kept", "refused_hs",
           "growth_KiB", "B/conn");
    for (size_t i = 0; i < n_mf; i++) {
        const mem_fig *f = &mf[i];
        double g = ((double)f->rss1 - (double)f->rss0);
        printf("# %-18s %16s %6zu %8.0f %10.0f %12.0f %9.0f\n", kind_names[f->kind], f->config,
               f->n, f->kept, f->ref_hs, g, f->kept > 0 ? g * 1024.0 / f->kept : NAN);
    }
    if (ph != NULL)
        for (size_t i = 0; i < 2; i++)
            printf("# lookup %-8s %zu users: %.0f us relay CPU per lookup, request %" PRIu64
                   " B, answer %" PRIu64 " B, peak RSS +%.0f KiB\n",
                   ph[i].kind, users, ph[i].cpu_s * 1e6 / (double)ph[i].lookups,
                   ph[i].request_bytes, ph[i].answer_bytes,
                   ph[i].peak_reset ? (double)ph[i].hwm - (double)ph[i].rss0 : NAN);
}

int main(int argc, char **argv)
{
    size_t ns[8] = {256, 1024}, n_ns = 2, limit_conns = 1100, users = 64, lookups = 2000,
           window = 1;
    int kinds[K_COUNT] = {1, 1, 1, 1};
    int smoke = 0, do_mem = 1, do_lookup = 1, limit_kind = K_PARTIAL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--smoke") == 0) {
            smoke = 1;
            continue;
        }
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--only") == 0 && strcmp(v, "memory") == 0) {
            do_lookup = 0;
        } else if (strcmp(a, "--only") == 0 && strcmp(v, "lookup") == 0) {
            do_mem = 0;
        } else if (strcmp(a, "--n") == 0) {
            if ((n_ns = parse_list(v, ns, 8)) == 0)
                usage();
        } else if (strcmp(a, "--kinds") == 0) {
            memset(kinds, 0, sizeof(kinds));
            char tmp[256];
            snprintf(tmp, sizeof(tmp), "%s", v);
            for (char *t = strtok(tmp, ","); t != NULL; t = strtok(NULL, ",")) {
                int k;
                for (k = 0; k < K_COUNT && strcmp(kind_names[k], t) != 0; k++)
                    ;
                if (k == K_COUNT)
                    usage();
                kinds[k] = 1;
            }
        } else if (strcmp(a, "--config") == 0) {
            uint8_t *data;
            size_t len;
            if (kurer_file_read(v, 1 << 16, &data, &len) != 0)
                bench_die("cannot read %s", v);
            config_file_text = realloc(data, len + 1);
            if (config_file_text == NULL)
                abort();
            config_file_text[len] = '\0';
        } else if (strcmp(a, "--hold") == 0) {
            hold_s = atof(v);
        } else if (strcmp(a, "--limit-kind") == 0) {
            for (limit_kind = 0; limit_kind < K_COUNT && strcmp(kind_names[limit_kind], v) != 0;
                 limit_kind++)
                ;
            if (limit_kind == K_COUNT)
                usage();
        } else if (strcmp(a, "--limit-conns") == 0) {
            limit_conns = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--users") == 0) {
            users = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--lookups") == 0) {
            lookups = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--window") == 0) {
            window = strtoul(v, NULL, 10);
        } else {
            usage();
        }
    }
    if (users < 1 || users > KURER_LOOKUP_USERS_MAX || window < 1 || lookups < 1)
        usage();
    if (smoke) {
        ns[0] = 8;
        n_ns = 1;
        limit_conns = 6;
        users = 4;
        lookups = 20;
    }
    signal(SIGPIPE, SIG_IGN);
    uint64_t nofile = bench_raise_nofile();
    bench_pki pki;
    bench_pki_init(&pki);
    legacy = !bench_relay_knows_key("max_preauth_per_address", "32");
    fprintf(stderr, "bench: relay %s (%s), open files %" PRIu64 "\n", bench_relay_bin(),
            legacy ? "legacy: before issue 9's config keys" : "current", nofile);
    mem_fig mf[8 * K_COUNT + 1];
    size_t n_mf = 0;
    if (do_mem) {
        for (size_t i = 0; i < n_ns; i++)
            for (int k = 0; k < K_COUNT; k++) {
                if (!kinds[k] || ns[i] == 0)
                    continue;
                measure_memory(&pki, k, ns[i], 0, &mf[n_mf]);
                print_memory(&mf[n_mf++], argc, argv);
            }
        if (limit_conns > 0) {
            measure_memory(&pki, limit_kind, limit_conns, smoke ? 2 : 1, &mf[n_mf]);
            print_memory(&mf[n_mf++], argc, argv);
        }
    }
    lk_phase ph[2];
    memset(ph, 0, sizeof(ph));
    if (do_lookup)
        run_lookups(&pki, users, window, lookups, ph, argc, argv);
    print_summary(mf, n_mf, do_lookup ? ph : NULL, users);
    bench_pki_free(&pki);
    free(config_file_text);
    return 0;
}
