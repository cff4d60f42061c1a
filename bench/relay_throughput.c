/* bench_relay: relay_throughput, forward_limit and durable_limit (bench/README.md).
 *
 *   bench_relay [--smoke] [--senders 1,10,100,1000] [--seconds D] [--window W]
 *               [--half-load S]
 *
 * For each S, in one run: the reference forwarder, the durable reference forwarder, and a real
 * kurer-relay (sqlite backend, synchronous FULL) are started in turn as child processes, and
 * this process (the load generator, libuv) drives S sending and S receiving devices against
 * each: sender i sends 1 KiB envelopes to receiver i, keeping W sends outstanding (closed loop);
 * receivers ack what they get, once per loop iteration. Against the relay the devices are real
 * clients of our protocol code: Noise IK through net/, certificate chains made here, frames of
 * proto/. Against the reference servers the same generator speaks plain.h (no crypto).
 * With --half-load S, the relay is measured once more at S senders with an open-loop offered
 * rate of half the throughput just measured, for the latency target. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <uv.h>

#include "common.h"
#include "kurer/crypto.h"
#include "kurer/net.h"
#include "kurer/util.h"
#include "plain.h"

#define CONTENT_LEN 1024
#define RING        8192
#define ACKQ        64

enum target { T_FORWARD, T_DURABLE, T_RELAY, T_PG_LIMIT };
static const char *target_name[] = {"forward_limit", "durable_limit", "relay_throughput",
                                    "pg_limit"};

/* --backend postgres: the cluster's connection string (NULL: sqlite, one relay) */
static const char *g_pg;

typedef struct gen gen;

typedef struct dev {
    gen *g;
    int idx, sender, up, closed;
    uint32_t to; /* index of the receiver (senders) */
    kurer_conn *kc;
    pconn pc;
    uint64_t next_req;
    uint64_t sent_ns[RING];
    uint32_t inflight;
    uint64_t *acks;
    size_t n_acks;
    int dirty;
    struct dev *next_dirty;
    uint64_t ack_req[ACKQ];
    uint32_t ack_n[ACKQ];
    size_t ack_head, ack_tail;
} dev;

struct gen {
    uv_loop_t loop;
    enum target t;
    size_t S;
    uint32_t window;
    double rate;        /* 0: closed loop */
    bench_device *devs; /* 2S: receivers first */
    bench_server *srv;  /* nodes of them */
    int nodes;
    dev *d;
    size_t n_up, n_closed, n_connecting, next_connect;
    int running, measuring, draining;
    uint64_t t_start, t_meas, t_end_meas, t_up;
    uint64_t sent, accepted, delivered, acked, errors;
    uint64_t m_accepted, m_delivered, m_acked; /* within the window */
    bench_hist h_accept, h_deliver;
    dev *dirty;
    uv_timer_t tick;
    uv_check_t check;
    double warm_s, meas_s;
    double cpu0, cpu1;
    uint8_t content[CONTENT_LEN];
    size_t rr; /* round robin for the open loop */
};

/* ---- metrics sampler (relay only) ---------------------------------------------------------- */

typedef struct sampler {
    pthread_t th;
    atomic_int stop;
    struct sockaddr_storage addr;
    bench_hist batches; /* sampled kurer_store_commit_batch after each change of commits */
    double commits0, commits1;
    int ok;
} sampler;

static void *sampler_main(void *arg)
{
    sampler *s = arg;
    static char text[65536];
    double last = -1;
    while (!atomic_load(&s->stop)) {
        if (bench_metrics_fetch(&s->addr, text, sizeof(text)) == 0) {
            double commits = bench_metric(text, "kurer_store_commits_total");
            double batch = bench_metric(text, "kurer_store_commit_batch");
            if (commits >= 0 && batch >= 0) {
                s->ok = 1;
                if (s->commits0 < 0)
                    s->commits0 = commits;
                if (last >= 0 && commits != last)
                    bench_hist_add(&s->batches, (uint64_t)batch);
                last = commits;
                s->commits1 = commits;
            }
        }
        usleep(10000);
    }
    return NULL;
}

/* ---- the generator ------------------------------------------------------------------------ */

static void connect_more(gen *g);

static void mark_dirty(dev *d)
{
    if (d->dirty)
        return;
    d->dirty = 1;
    d->next_dirty = d->g->dirty;
    d->g->dirty = d;
}

static void dev_send_raw(dev *d, const uint8_t *p, size_t n)
{
    if (d->kc != NULL) {
        if (kurer_conn_send(d->kc, p, n) != 0)
            d->g->errors++;
    } else {
        pconn_send2(&d->pc, p, n, NULL, 0);
    }
}

static void send_one(dev *d)
{
    gen *g = d->g;
    uint64_t now = bench_now_ns();
    uint64_t req = d->next_req++;
    memcpy(g->content, &now, sizeof(now));
    d->sent_ns[req % RING] = now;
    d->inflight++;
    g->sent++;
    if (g->t != T_RELAY) {
        uint8_t hdr[13];
        hdr[0] = 'S';
        plain_put_u64(hdr + 1, req);
        plain_put_u32(hdr + 9, d->to);
        pconn_send2(&d->pc, hdr, sizeof(hdr), g->content, CONTENT_LEN);
        return;
    }
    kurer_client_frame f;
    kurer_envelope e;
    uint8_t buf[CONTENT_LEN + 512];
    kurer_buf b;
    memset(&f, 0, sizeof(f));
    memset(&e, 0, sizeof(e));
    kurer_random(e.id, sizeof(e.id));
    snprintf(e.to.user, sizeof(e.to.user), "%s", g->devs[d->to].user);
    e.to.device_id = 1;
    e.type = KURER_ENVELOPE_MESSAGE;
    e.content = g->content;
    e.content_len = CONTENT_LEN;
    f.request_id = req;
    f.body = KURER_CLIENT_SEND;
    f.u.send.envelopes = &e;
    f.u.send.n = 1;
    kurer_buf_init_fixed(&b, buf, sizeof(buf));
    if (kurer_client_frame_encode(&f, &b) != 0)
        bench_die("send frame encoding failed");
    dev_send_raw(d, b.data, b.len);
}

static void refill(dev *d)
{
    gen *g = d->g;
    if (g->rate > 0)
        return;
    while (g->running && d->up && !d->closed && d->inflight < g->window)
        send_one(d);
}

static void got_accept(dev *d, uint64_t req)
{
    gen *g = d->g;
    uint64_t now = bench_now_ns(), t = d->sent_ns[req % RING];
    if (d->inflight > 0)
        d->inflight--;
    g->accepted++;
    if (g->measuring) {
        g->m_accepted++;
        if (t >= g->t_meas)
            bench_hist_add(&g->h_accept, (now - t) / 1000);
    }
    refill(d);
}

static void got_deliver(dev *d, uint64_t seq, const uint8_t *content, size_t n)
{
    gen *g = d->g;
    uint64_t now = bench_now_ns(), t = 0;
    if (n >= sizeof(t))
        memcpy(&t, content, sizeof(t));
    g->delivered++;
    if (g->measuring) {
        g->m_delivered++;
        if (t >= g->t_meas && t <= now)
            bench_hist_add(&g->h_deliver, (now - t) / 1000);
    }
    if (d->n_acks % 1024 == 0) {
        uint64_t *p = realloc(d->acks, (d->n_acks + 1024) * sizeof(*p));
        if (p == NULL)
            abort();
        d->acks = p;
    }
    d->acks[d->n_acks++] = seq;
    mark_dirty(d);
}

static void got_acked(dev *d, uint64_t n)
{
    gen *g = d->g;
    g->acked += n;
    if (g->measuring)
        g->m_acked += n;
}

/* Once per loop iteration: every receiver that got something acks it in one frame. */
static void on_check(uv_check_t *h)
{
    gen *g = h->data;
    dev *d = g->dirty;
    g->dirty = NULL;
    for (; d != NULL; d = d->next_dirty) {
        d->dirty = 0;
        size_t off = 0;
        while (!d->closed && off < d->n_acks) {
            size_t k = d->n_acks - off > KURER_ACK_SEQS_MAX ? KURER_ACK_SEQS_MAX : d->n_acks - off;
            if (g->t != T_RELAY) {
                uint8_t buf[1 + 8 * KURER_ACK_SEQS_MAX];
                buf[0] = 'K';
                for (size_t i = 0; i < k; i++)
                    plain_put_u64(buf + 1 + 8 * i, d->acks[off + i]);
                pconn_send2(&d->pc, buf, 1 + 8 * k, NULL, 0);
            } else {
                kurer_client_frame f;
                uint8_t buf[16 * KURER_ACK_SEQS_MAX];
                kurer_buf b;
                memset(&f, 0, sizeof(f));
                f.request_id = d->next_req++;
                f.body = KURER_CLIENT_ACK;
                f.u.ack.seqs = d->acks + off;
                f.u.ack.n = k;
                kurer_buf_init_fixed(&b, buf, sizeof(buf));
                if (kurer_client_frame_encode(&f, &b) != 0)
                    bench_die("ack frame encoding failed");
                dev_send_raw(d, b.data, b.len);
                if (d->ack_tail - d->ack_head < ACKQ) {
                    d->ack_req[d->ack_tail % ACKQ] = f.request_id;
                    d->ack_n[d->ack_tail % ACKQ] = (uint32_t)k;
                    d->ack_tail++;
                }
            }
            off += k;
        }
        d->n_acks = 0;
    }
}

static void dev_up(dev *d)
{
    gen *g = d->g;
    d->up = 1;
    g->n_up++;
    g->n_connecting--;
    connect_more(g);
}

static void dev_closed(dev *d)
{
    gen *g = d->g;
    if (!d->up)
        g->n_connecting--;
    d->closed = 1;
    d->kc = NULL;
    g->n_closed++;
    if (!d->up && g->running == 0 && !g->draining)
        bench_die("device %d could not connect to %s", d->idx, target_name[g->t]);
}

/* relay mode callbacks */
static void k_idle(kurer_conn *c);

static void k_est(kurer_conn *c, const uint8_t *p, size_t n)
{
    dev *d = kurer_conn_data(c);
    kurer_handshake_accept acc;
    if (kurer_handshake_accept_decode(p, n, &acc) != 0 || acc.has_error)
        bench_die("relay refused device %d", d->idx);
    k_idle(c); /* a first record: the relay counts the connection as the device's from then */
    dev_up(d);
}

static void k_rec(kurer_conn *c, uint8_t *p, size_t n)
{
    dev *d = kurer_conn_data(c);
    kurer_server_frame f;
    if (kurer_server_frame_decode(p, n, &f) != 0) {
        d->g->errors++;
        return;
    }
    switch (f.body) {
    case KURER_SERVER_SEND_RESULT:
        if (f.u.send_result.n == 1 && f.u.send_result.users[0].status == KURER_SEND_ACCEPTED)
            got_accept(d, f.request_id);
        else
            d->g->errors++;
        break;
    case KURER_SERVER_DELIVER:
        got_deliver(d, f.u.deliver.seq, f.u.deliver.envelope.content,
                    f.u.deliver.envelope.content_len);
        break;
    case KURER_SERVER_OK:
        for (size_t i = d->ack_head; i < d->ack_tail; i++)
            if (d->ack_req[i % ACKQ] == f.request_id) {
                got_acked(d, d->ack_n[i % ACKQ]);
                d->ack_head = i + 1;
                break;
            }
        break;
    case KURER_SERVER_ERROR:
        d->g->errors++;
        if (d->g->errors < 5)
            fprintf(stderr, "bench: relay error %s\n", kurer_err_name(f.u.error.code));
        if (f.request_id != 0 && d->inflight > 0 && d->sender) {
            d->inflight--;
            refill(d);
        }
        break;
    default:
        break;
    }
    kurer_server_frame_release(&f);
}

static void k_idle(kurer_conn *c)
{
    uint8_t buf[64];
    kurer_buf b;
    kurer_client_frame f;
    dev *d = kurer_conn_data(c);
    memset(&f, 0, sizeof(f));
    f.request_id = d->next_req++;
    f.body = KURER_CLIENT_PING;
    kurer_buf_init_fixed(&b, buf, sizeof(buf));
    if (kurer_client_frame_encode(&f, &b) == 0)
        dev_send_raw(d, b.data, b.len);
}

static void k_close(kurer_conn *c, int err)
{
    (void)err;
    dev_closed(kurer_conn_data(c));
}

static const kurer_conn_cbs kcbs = {NULL, k_est, k_rec, NULL, k_idle, k_close};

/* plain mode callbacks */
static void p_connect(pconn *pc, int status)
{
    dev *d = pc->data;
    if (status != 0) {
        pconn_close(pc);
        return;
    }
    uint8_t h[5];
    h[0] = 'H';
    plain_put_u32(h + 1, (uint32_t)d->idx);
    pconn_send2(pc, h, sizeof(h), NULL, 0);
}

static void p_rec(pconn *pc, const uint8_t *p, size_t n)
{
    dev *d = pc->data;
    switch (p[0]) {
    case 'W':
        dev_up(d);
        break;
    case 'A':
        if (n >= 9)
            got_accept(d, plain_get_u64(p + 1));
        break;
    case 'D':
        if (n >= 13)
            got_deliver(d, plain_get_u64(p + 1), p + 13, n - 13);
        break;
    case 'O':
        if (n >= 5)
            got_acked(d, plain_get_u32(p + 1));
        break;
    default:
        d->g->errors++;
    }
}

static void p_close(pconn *pc)
{
    dev_closed(pc->data);
}

static const pconn_cbs pcbs = {p_connect, p_rec, p_close};

/* Receivers first (so every recipient is known), then senders; at most 128 connecting. */
static void connect_more(gen *g)
{
    size_t n = 2 * g->S;
    while (g->next_connect < n && g->n_connecting < 128) {
        if (g->next_connect == g->S && g->n_up < g->S)
            return; /* all receivers before the first sender */
        dev *d = &g->d[g->next_connect++];
        g->n_connecting++;
        int err;
        if (g->t == T_RELAY) {
            bench_device *bd = &g->devs[d->idx];
            /* receiver i on node i % 2, its sender on the other node: every envelope crosses */
            bench_server *sv =
                &g->srv[(d->sender ? d->to + 1 : (uint32_t)d->idx) % (uint32_t)g->nodes];
            err = kurer_conn_connect(&d->kc, &g->loop, (struct sockaddr *)&sv->addr, NULL, &kcbs,
                                     KURER_NOISE_IK, bd->sk, sv->pk, bd->hello, bd->hello_len, d);
        } else {
            err = pconn_connect(&d->pc, &g->loop, (struct sockaddr *)&g->srv->addr, &pcbs, d);
        }
        if (err != 0)
            bench_die("connect: %d", err);
    }
}

static void close_all(gen *g)
{
    for (size_t i = 0; i < 2 * g->S; i++) {
        dev *d = &g->d[i];
        if (d->closed)
            continue;
        if (g->t == T_RELAY) {
            if (d->kc != NULL)
                kurer_conn_close(d->kc, 0);
        } else {
            pconn_close(&d->pc);
        }
    }
}

/* CPU seconds of the relay nodes (0 for the reference servers) */
static double relay_cpu(const gen *g)
{
    double cpu = 0;
    for (int i = 0; g->t == T_RELAY && i < g->nodes; i++)
        cpu += bench_proc_cpu_s(g->srv[i].pid);
    return cpu;
}

static void on_tick(uv_timer_t *t)
{
    gen *g = t->data;
    uint64_t now = bench_now_ns();
    if (!g->running && !g->draining && g->n_up == 2 * g->S && g->t_up == 0)
        g->t_up = now;
    /* Over two nodes a receiver's directory row is its node's to commit and the other node's to
     * learn: the senders start 1 s after every device is up, not at once. */
    if (!g->running && !g->draining && g->t_up != 0 &&
        now - g->t_up >= (g->nodes > 1 ? 1000000000ull : 0)) {
        g->running = 1;
        g->t_start = now;
        for (size_t i = g->S; i < 2 * g->S; i++)
            refill(&g->d[i]);
    }
    if (!g->running && !g->draining)
        return;
    double el = (double)(now - g->t_start) / 1e9;
    if (g->running && g->rate > 0) {
        uint64_t due = (uint64_t)(g->rate * el);
        while (g->sent < due) {
            dev *d = &g->d[g->S + g->rr++ % g->S];
            if (d->inflight >= RING / 2)
                break; /* saturated: the offered rate is not being absorbed */
            send_one(d);
        }
    }
    if (g->running && !g->measuring && g->t_meas == 0 && el >= g->warm_s) {
        g->measuring = 1;
        g->t_meas = now;
        g->cpu0 = relay_cpu(g);
    }
    if (g->measuring && el >= g->warm_s + g->meas_s) {
        g->measuring = 0;
        g->t_end_meas = now;
        g->cpu1 = relay_cpu(g);
        g->running = 0;
        g->draining = 1;
    }
    if (g->draining) {
        uint64_t out = 0;
        for (size_t i = g->S; i < 2 * g->S; i++)
            out += g->d[i].inflight;
        if (out == 0 || el >= g->warm_s + g->meas_s + 3) {
            g->draining = 0;
            uv_timer_stop(t);
            uv_close((uv_handle_t *)&g->tick, NULL);
            uv_close((uv_handle_t *)&g->check, NULL);
            close_all(g);
        }
    }
}

typedef struct result {
    double accepted_s, delivered_s, acked_s;
    double p50_accept, p99_accept, p999_accept, p50_deliver, p99_deliver, p999_deliver;
    double cpu_per_100k;
    uint64_t errors;
    int have_batches;
    double batch_p50, batch_p90, batch_max, env_per_commit;
} result;

/* The servers of one run: the reference forwarder, pg_limit's, or the relay node(s). */
static void servers_start(gen *g, bench_pki *pki)
{
    size_t S = g->S;
    if (g->t != T_RELAY) {
        if (g->t == T_PG_LIMIT)
            bench_fwd_start_pg(&g->srv[0], g_pg);
        else
            bench_fwd_start(&g->srv[0], g->t == T_DURABLE);
        return;
    }
    g->devs = calloc(2 * S, sizeof(bench_device));
    if (g->devs == NULL)
        abort();
    for (size_t i = 0; i < 2 * S; i++) {
        char user[64];
        snprintf(user, sizeof(user), "d%zu@mof", i);
        bench_device_make(pki, &g->devs[i], user, 1000 + i);
    }
    if (g_pg == NULL) {
        bench_relay_start(&g->srv[0], pki);
        return;
    }
    char extra[1200];
    int n = snprintf(extra, sizeof(extra), "store = postgres\npg_conninfo = %s\n", g_pg);
    if (n < 0 || (size_t)n >= sizeof(extra))
        bench_die("conninfo too long");
    for (int i = 0; i < g->nodes; i++)
        bench_relay_start_extra(&g->srv[i], pki, extra);
}

static void take_figures(gen *g, const sampler *smp, result *res)
{
    double span = (double)(g->t_end_meas - g->t_meas) / 1e9;
    if (span <= 0)
        span = 1e-9;
    res->accepted_s = (double)g->m_accepted / span;
    res->delivered_s = (double)g->m_delivered / span;
    res->acked_s = (double)g->m_acked / span;
    res->p50_accept = bench_hist_ms(&g->h_accept, 0.5);
    res->p99_accept = bench_hist_ms(&g->h_accept, 0.99);
    res->p999_accept = bench_hist_ms(&g->h_accept, 0.999);
    res->p50_deliver = bench_hist_ms(&g->h_deliver, 0.5);
    res->p99_deliver = bench_hist_ms(&g->h_deliver, 0.99);
    res->p999_deliver = bench_hist_ms(&g->h_deliver, 0.999);
    res->errors = g->errors;
    if (g->t != T_RELAY)
        return;
    res->cpu_per_100k = g->m_accepted ? (g->cpu1 - g->cpu0) / (double)g->m_accepted * 100000.0 : 0;
    bench_hist all;
    double commits = 0;
    int ok = 1;
    memset(&all, 0, sizeof(all));
    for (int i = 0; i < g->nodes; i++) {
        ok = ok && smp[i].ok;
        bench_hist_merge(&all, &smp[i].batches);
        commits += smp[i].commits1 - smp[i].commits0;
    }
    if (ok && all.n > 0) {
        res->have_batches = 1;
        res->batch_p50 = bench_hist_ms(&all, 0.5) * 1000;
        res->batch_p90 = bench_hist_ms(&all, 0.9) * 1000;
        res->batch_max = (double)all.max;
        res->env_per_commit = commits > 0 ? (double)g->accepted / commits : 0;
    }
}

static void run(enum target t, size_t S, uint32_t window, double rate, double warm, double meas,
                bench_pki *pki, result *res)
{
    gen *g = calloc(1, sizeof(*g));
    bench_server srv[2];
    sampler smp[2];
    if (g == NULL)
        abort();
    memset(res, 0, sizeof(*res));
    memset(smp, 0, sizeof(smp));
    g->t = t;
    g->S = S;
    g->window = window;
    g->rate = rate;
    g->warm_s = warm;
    g->meas_s = meas;
    g->srv = srv;
    g->nodes = t == T_RELAY && g_pg != NULL ? 2 : 1;
    memset(g->content, 0xab, sizeof(g->content));
    g->d = calloc(2 * S, sizeof(dev));
    if (g->d == NULL)
        abort();
    for (size_t i = 0; i < 2 * S; i++) {
        g->d[i].g = g;
        g->d[i].idx = (int)i;
        g->d[i].sender = i >= S;
        g->d[i].to = (uint32_t)(i - S);
        g->d[i].next_req = 1;
    }
    servers_start(g, pki);
    if (uv_loop_init(&g->loop) != 0)
        bench_die("uv_loop_init");
    plain_loop_init(&g->loop);
    uv_timer_init(&g->loop, &g->tick);
    g->tick.data = g;
    uv_timer_start(&g->tick, on_tick, 1, 1);
    uv_check_init(&g->loop, &g->check);
    g->check.data = g;
    uv_check_start(&g->check, on_check);
    for (int i = 0; t == T_RELAY && i < g->nodes && srv[i].have_metrics; i++) {
        smp[i].addr = srv[i].maddr;
        smp[i].commits0 = -1;
        if (pthread_create(&smp[i].th, NULL, sampler_main, &smp[i]) != 0)
            bench_die("pthread_create");
    }
    connect_more(g);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    for (int i = 0; t == T_RELAY && i < g->nodes && srv[i].have_metrics; i++) {
        atomic_store(&smp[i].stop, 1);
        pthread_join(smp[i].th, NULL);
    }
    take_figures(g, smp, res);
    plain_loop_close(&g->loop);
    if (uv_loop_close(&g->loop) != 0)
        fprintf(stderr, "bench: loop not closed\n");
    for (int i = 0; i < g->nodes; i++)
        bench_server_stop(&srv[i]);
    for (size_t i = 0; i < 2 * S; i++)
        free(g->d[i].acks);
    if (g->devs != NULL) {
        for (size_t i = 0; i < 2 * S; i++)
            bench_device_free(&g->devs[i]);
        free(g->devs);
    }
    free(g->d);
    free(g);
}

/* The figures every line has (after "bench" and what comes before "senders"). */
static void put_common(bench_json *j, size_t S, const result *r)
{
    bench_json_int(j, "senders", S);
    bench_json_num(j, "envelopes_per_s", r->accepted_s);
    bench_json_num(j, "delivered_per_s", r->delivered_s);
    bench_json_num(j, "acked_per_s", r->acked_s);
    bench_json_num(j, "p50_accept_ms", r->p50_accept);
    bench_json_num(j, "p99_accept_ms", r->p99_accept);
    bench_json_num(j, "p999_accept_ms", r->p999_accept);
    bench_json_num(j, "p50_deliver_ms", r->p50_deliver);
    bench_json_num(j, "p99_deliver_ms", r->p99_deliver);
    bench_json_num(j, "p999_deliver_ms", r->p999_deliver);
}

static void put_batches(bench_json *j, const result *r)
{
    if (r->have_batches) {
        bench_json_num(j, "commit_batch_p50", r->batch_p50);
        bench_json_num(j, "commit_batch_p90", r->batch_p90);
        bench_json_num(j, "commit_batch_max", r->batch_max);
        bench_json_num(j, "envelopes_per_commit", r->env_per_commit);
        bench_json_str(j, "commit_batch_source",
                       "sampled kurer_store_commit_batch gauge (last commit), every 10 ms");
    } else {
        bench_json_str(j, "commit_batch_source", "unavailable");
    }
}

/* --backend postgres: relay_throughput of two nodes, or pg_limit (lim == NULL) */
static void print_pg_line(size_t S, const result *r, const result *lim, int argc, char **argv)
{
    bench_json j;
    bench_json_begin(&j, lim != NULL ? "relay_throughput" : "pg_limit");
    bench_json_str(&j, "backend", "postgres");
    if (lim != NULL)
        bench_json_int(&j, "nodes", 2);
    put_common(&j, S, r);
    if (lim != NULL) {
        bench_json_num(&j, "ratio_to_pg_limit",
                       lim->accepted_s > 0 ? r->accepted_s / lim->accepted_s : 0);
        bench_json_num(&j, "relay_cpu_s_per_100k", r->cpu_per_100k);
        put_batches(&j, r);
        bench_json_str(&j, "mode", "closed_loop");
    }
    bench_json_str(&j, "cluster", "primary + synchronous standby (ANY 1), synchronous_commit on");
    bench_json_int(&j, "errors", r->errors);
    bench_json_int(&j, "content_bytes", CONTENT_LEN);
    bench_json_end(&j, argc, argv);
}

static void print_line(const char *name, size_t S, const result *r, double ratio_fwd,
                       double ratio_dur, double offered, int argc, char **argv)
{
    bench_json j;
    bench_json_begin(&j, name);
    if (strcmp(name, "relay_throughput") == 0)
        bench_json_str(&j, "backend", "sqlite");
    put_common(&j, S, r);
    if (strcmp(name, "relay_throughput") == 0) {
        bench_json_num(&j, "ratio_to_limit", ratio_fwd);
        bench_json_num(&j, "ratio_to_durable", ratio_dur);
        bench_json_num(&j, "relay_cpu_s_per_100k", r->cpu_per_100k);
        put_batches(&j, r);
        bench_json_str(&j, "mode", offered > 0 ? "open_loop" : "closed_loop");
        if (offered > 0)
            bench_json_num(&j, "offered_per_s", offered);
    }
    bench_json_int(&j, "errors", r->errors);
    bench_json_int(&j, "content_bytes", CONTENT_LEN);
    bench_json_end(&j, argc, argv);
}

/* tests/pg/pg_cluster.sh COMMAND DIR [SQL]; its output goes to stderr. */
static int pgc(const char *cmd, const char *dir, const char *sql)
{
    char line[1400];
    int n = snprintf(line, sizeof(line), "%s %s %s %s%s%s >&2", KURER_PG_CLUSTER_SH, cmd, dir,
                     sql != NULL ? "\"" : "", sql != NULL ? sql : "", sql != NULL ? "\"" : "");
    if (n < 0 || (size_t)n >= sizeof(line))
        bench_die("pg_cluster command too long");
    return system(line);
}

/* --backend postgres: one primary with its synchronous standby for the whole run; for each S
 * two relay nodes over it, then pg_limit against the same cluster (the tables emptied after
 * each run). */
static void pg_series(const size_t *senders, size_t n_senders, uint32_t window, double warm,
                      double meas, bench_pki *pki, int argc, char **argv)
{
    char dir[] = "/tmp/kurer-bench-pg-XXXXXX", path[64], conninfo[1024];
    if (mkdtemp(dir) == NULL || chmod(dir, 0755) != 0)
        bench_die("mkdtemp");
    if (pgc("start", dir, NULL) != 0)
        bench_die("pg_cluster.sh start failed");
    snprintf(path, sizeof(path), "%s/conninfo", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        bench_die("no %s", path);
        return; /* not reached (cppcheck does not see _Noreturn) */
    }
    if (fgets(conninfo, sizeof(conninfo), f) == NULL)
        bench_die("empty %s", path);
    fclose(f);
    conninfo[strcspn(conninfo, "\n")] = '\0';
    g_pg = conninfo;
    result rel[8], lim[8];
    for (size_t k = 0; k < n_senders; k++) {
        run(T_RELAY, senders[k], window, 0, warm, meas, pki, &rel[k]);
        if (pgc("sql", dir, "TRUNCATE mailbox, device_seqs") != 0)
            bench_die("truncate failed");
        run(T_PG_LIMIT, senders[k], window, 0, warm, meas, pki, &lim[k]);
        if (pgc("sql", dir, "TRUNCATE mailbox, device_seqs") != 0)
            bench_die("truncate failed");
        print_pg_line(senders[k], &lim[k], NULL, argc, argv);
        print_pg_line(senders[k], &rel[k], &lim[k], argc, argv);
    }
    pgc("stop", dir, NULL);
    rmdir(dir);
    g_pg = NULL;
    printf("# relay_throughput, postgres (2 nodes, primary + synchronous standby; 1 KiB, window "
           "%u, %.1f s each)\n",
           window, meas);
    printf("# %6s %12s %12s %9s %9s %12s %10s %10s\n", "S", "pg_limit/s", "relay/s", "x_pg",
           "p99acc_ms", "cpu_s/100k", "batch_p50", "env/commit");
    for (size_t k = 0; k < n_senders; k++)
        printf("# %6zu %12.0f %12.0f %9.3f %9.2f %12.2f %10.0f %10.1f\n", senders[k],
               lim[k].accepted_s, rel[k].accepted_s,
               lim[k].accepted_s > 0 ? rel[k].accepted_s / lim[k].accepted_s : 0, rel[k].p99_accept,
               rel[k].cpu_per_100k, rel[k].batch_p50, rel[k].env_per_commit);
}

int main(int argc, char **argv)
{
    size_t senders[8] = {1, 10, 100, 1000};
    size_t n_senders = 4, half_at = 100;
    uint32_t window = 8;
    double meas = 5, warm = 1;
    int smoke = 0, postgres = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0) {
            smoke = 1;
        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc &&
                   (strcmp(argv[i + 1], "sqlite") == 0 || strcmp(argv[i + 1], "postgres") == 0)) {
            postgres = strcmp(argv[++i], "postgres") == 0;
        } else if (strcmp(argv[i], "--senders") == 0 && i + 1 < argc) {
            n_senders = 0;
            for (char *p = argv[++i]; *p && n_senders < 8;) {
                senders[n_senders++] = strtoul(p, &p, 10);
                if (*p == ',')
                    p++;
            }
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            meas = atof(argv[++i]);
        } else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc) {
            window = (uint32_t)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--half-load") == 0 && i + 1 < argc) {
            half_at = strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: bench_relay [--smoke] [--backend sqlite|postgres] "
                            "[--senders 1,10,100,1000] [--seconds D] [--window W] "
                            "[--half-load S]\n");
            return 2;
        }
    }
    if (smoke) {
        senders[0] = 2;
        n_senders = 1;
        half_at = 2;
        meas = 0.2;
        warm = 0.1;
    }
    signal(SIGPIPE, SIG_IGN);
    uint64_t nofile = bench_raise_nofile();
    bench_pki pki;
    bench_pki_init(&pki);
    if (postgres) {
        if (4 * senders[n_senders - 1] + 64 > nofile)
            bench_die("S=%zu needs more open files", senders[n_senders - 1]);
        pg_series(senders, n_senders, window, warm, meas, &pki, argc, argv);
        bench_pki_free(&pki);
        return 0;
    }
    result fwd[8], dur[8], rel[8], half;
    double half_offered = 0;
    int have_half = 0;
    for (size_t k = 0; k < n_senders; k++) {
        size_t S = senders[k];
        if (4 * S + 64 > nofile) {
            fprintf(stderr, "bench: S=%zu needs %zu open files, the limit is %" PRIu64 "\n", S,
                    4 * S + 64, nofile);
            continue;
        }
        run(T_FORWARD, S, window, 0, warm, meas, &pki, &fwd[k]);
        print_line("forward_limit", S, &fwd[k], 0, 0, 0, argc, argv);
        run(T_DURABLE, S, window, 0, warm, meas, &pki, &dur[k]);
        print_line("durable_limit", S, &dur[k], 0, 0, 0, argc, argv);
        run(T_RELAY, S, window, 0, warm, meas, &pki, &rel[k]);
        print_line("relay_throughput", S, &rel[k], rel[k].accepted_s / fwd[k].accepted_s,
                   rel[k].accepted_s / dur[k].accepted_s, 0, argc, argv);
        if (S == half_at && rel[k].accepted_s > 0) {
            half_offered = rel[k].accepted_s / 2;
            run(T_RELAY, S, window, half_offered, warm, meas, &pki, &half);
            print_line("relay_throughput", S, &half, half.accepted_s / fwd[k].accepted_s,
                       half.accepted_s / dur[k].accepted_s, half_offered, argc, argv);
            have_half = 1;
        }
    }
    printf("# relay_throughput summary (1 KiB envelopes, window %u per sender, %.1f s each)\n",
           window, meas);
    printf("# %6s %12s %12s %12s %10s %10s %9s %9s %12s\n", "S", "forward/s", "durable/s",
           "relay/s", "x_forward", "x_durable", "p99acc_ms", "p99del_ms", "cpu_s/100k");
    for (size_t k = 0; k < n_senders; k++)
        printf("# %6zu %12.0f %12.0f %12.0f %10.3f %10.3f %9.2f %9.2f %12.2f\n", senders[k],
               fwd[k].accepted_s, dur[k].accepted_s, rel[k].accepted_s,
               rel[k].accepted_s / fwd[k].accepted_s, rel[k].accepted_s / dur[k].accepted_s,
               rel[k].p99_accept, rel[k].p99_deliver, rel[k].cpu_per_100k);
    if (have_half)
        printf("# half load at S=%zu: offered %.0f/s, accepted %.0f/s, p50/p99/p999 accept "
               "%.2f/%.2f/%.2f ms, p99 deliver %.2f ms\n",
               half_at, half_offered, half.accepted_s, half.p50_accept, half.p99_accept,
               half.p999_accept, half.p99_deliver);
    bench_pki_free(&pki);
    return 0;
}
