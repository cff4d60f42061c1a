/* Two relay nodes over PostgreSQL with a synchronous standby, with real failures (issue 13,
 * items 2 to 4): each case starts its own primary and standby (tests/pg/pg_cluster.sh:
 * synchronous_standby_names = 'ANY 1 (standby1)', synchronous_commit = on, the standby made with
 * pg_basebackup -R) and two real kurer-relay processes with the same key and `store = postgres`
 * over the multi-host connection string (target_session_attrs=read-write); clients are the
 * harness's (relay_harness.c), on both nodes.
 *
 * Each case prints sent, accepted, delivered, lost (accepted, never delivered) and duplicated
 * (delivered again after its ack was confirmed) counts; lost and duplicated must be 0. An
 * envelope delivered again whose ack was not confirmed (its node died) is a redelivery, which
 * the protocol allows (the client drops it by envelope id): counted apart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "relay_harness.h"

#define NMAX     4096
#define POLL_MS  5000 /* the nodes' wake_poll_ms: wake-ups must be much faster */
#define WINDOW   16   /* sends in flight per sender under load */
#define REQS_MAX 8192

static world g_n1; /* the second node (the first is the cmocka state's world) */
static char g_pg[300];
static char g_conf[2][400];

/* ---- the database and the nodes ------------------------------------------------------------- */

/* The cluster's script: tests/pg/pg_cluster.sh, or what KURER_PG_CLUSTER_SH names (the case
 * relay_cluster_patroni: tests/pg/patroni_cluster.sh, same commands, Patroni promotes). */
static const char *cluster_sh(void)
{
    const char *s = getenv("KURER_PG_CLUSTER_SH");
    return s != NULL && s[0] != '\0' ? s : KURER_PG_CLUSTER_SH;
}

static int pgc_try(const char *cmd)
{
    char line[900];
    snprintf(line, sizeof(line), "%s %s %s >>%s/cluster.log 2>&1", cluster_sh(), cmd, g_pg, g_pg);
    return system(line);
}

static void pgc(const char *cmd)
{
    if (pgc_try(cmd) != 0) {
        char line[400];
        snprintf(line, sizeof(line), "cat %s/cluster.log >&2", g_pg);
        if (system(line) != 0)
            fprintf(stderr, "no %s/cluster.log\n", g_pg);
        fail_msg("pg_cluster.sh %s failed", cmd);
    }
}

/* Runs SQL on the primary (as postgres, in the database kurer). */
static void pgc_sql(const char *sql)
{
    char cmd[1200];
    int n = snprintf(cmd, sizeof(cmd), "%s sql %s \"%s\" >>%s/cluster.log 2>&1", cluster_sh(), g_pg,
                     sql, g_pg);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    assert_int_equal(system(cmd), 0);
}

static void write_conf(world *nw, int i, const char *extra)
{
    char path[400], base[700], text[1400];
    snprintf(path, sizeof(path), "%s/conninfo", g_pg);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(base, sizeof(base), fp));
    fclose(fp);
    base[strcspn(base, "\n")] = '\0';
    /* wake_poll_ms is POLL_MS unless extra says otherwise (a key may be given once) */
    int poll_given = extra != NULL && strstr(extra, "wake_poll_ms") != NULL;
    int n =
        snprintf(text, sizeof(text), "store = postgres\npg_conninfo = %s\n%s%d\n%s", base,
                 poll_given ? "# not " : "wake_poll_ms = ", POLL_MS, extra != NULL ? extra : "");
    snprintf(g_conf[i], sizeof(g_conf[i]), "%s/node.conf", nw->dir);
    write_file(g_conf[i], text, (size_t)n);
}

static void start_node(world *nw, int i)
{
    const char *extra[] = {"--config", g_conf[i], "--metrics", "127.0.0.1:0"};
    start_relay_v(nw, extra, 4);
}

/* A primary with its synchronous standby, and two nodes (same relay key, one folder each). */
static void two_nodes(world *w, const char *extra)
{
    char cmd[2000];
    snprintf(g_pg, sizeof(g_pg), "/tmp/kurer-pgc-XXXXXX");
    assert_non_null(mkdtemp(g_pg));
    assert_int_equal(chmod(g_pg, 0755), 0);
    pgc("start");
    g_n1 = *w;
    g_n1.relay = 0;
    int n = snprintf(g_n1.dir, sizeof(g_n1.dir), "%s/n1", w->dir);
    assert_true(n > 0 && (size_t)n < sizeof(g_n1.dir));
    n = snprintf(cmd, sizeof(cmd),
                 "mkdir -p %s/relay && cp -p %s/relay/relay.key %s/relay/store.key "
                 "%s/relay/relay.pub %s/relay/ && cp %s/root.crt %s/",
                 g_n1.dir, w->dir, w->dir, w->dir, g_n1.dir, w->dir, g_n1.dir);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    assert_int_equal(system(cmd), 0);
    write_conf(w, 0, extra);
    write_conf(&g_n1, 1, extra);
    start_node(w, 0);
    start_node(&g_n1, 1);
}

static int cluster_teardown(void **state)
{
    stop_relay(&g_n1, SIGKILL);
    if (g_pg[0] != '\0') {
        (void)pgc_try("stop");
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", g_pg);
        if (getenv("KURER_TEST_KEEP") == NULL && system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", g_pg);
        g_pg[0] = '\0';
    }
    return teardown(state);
}

/* Waits until a node's metric reaches at least v (10 s). */
static void wait_metric(world *nw, const char *name, uint64_t v)
{
    uint64_t end = kurer_time_mono_ms() + 10000;
    while (metric_now(nw, name) < v && kurer_time_mono_ms() < end)
        usleep(20000);
    assert_true(metric_now(nw, name) >= v);
}

/* ---- parties: a device's client on a node, and the tally of one case ----------------------------
 */

typedef struct tally {
    size_t sent, accepted, failed, delivered, dup, redelivered;
    unsigned char acc[NMAX], seen[NMAX], acked[NMAX];
    uint64_t t_sent[NMAX], lat_us[NMAX];
} tally;

typedef struct party {
    client cl;
    world *node;
    device *d;
    int up;
    int kicked;                    /* the error code of the close push, once one came */
    uint32_t num_of_req[REQS_MAX]; /* a send's number (+1) by request id */
    int ack_of_req[REQS_MAX];      /* an ack's first number (+1) by request id */
    uint32_t ack_nums[REQS_MAX][8];
    size_t ack_n[REQS_MAX];
    size_t in_flight;
} party;

static void party_connect(party *p, world *node)
{
    uint64_t end = kurer_time_mono_ms() + 20000;
    p->node = node;
    p->kicked = 0;
    for (;;) {
        int rc = cl_connect(node, &p->cl, p->d);
        if (rc == 0)
            break;
        cl_free(&p->cl);
        assert_true(kurer_time_mono_ms() < end);
        usleep(100000);
    }
    p->up = 1;
    p->in_flight = 0;
}

static void party_close(party *p)
{
    if (p->up)
        cl_free(&p->cl);
    p->up = 0;
}

/* Sends envelope k to `to` without waiting for its answer. */
static void party_send(party *p, tally *t, const device *to, uint32_t k)
{
    t->t_sent[k] = kurer_time_mono_ns() / 1000;
    uint64_t id = send_start(&p->cl, to, k, NULL);
    assert_true(id < REQS_MAX);
    p->num_of_req[id] = k + 1;
    p->in_flight++;
    t->sent++;
}

static void on_deliver(party *p, tally *t, const kurer_server_frame *f, uint64_t *seqs,
                       uint32_t *nums, size_t *n)
{
    uint32_t k;
    memcpy(&k, f->u.deliver.envelope.content, 4);
    assert_true(k < NMAX);
    if (t->seen[k] == 0) {
        t->delivered++;
        t->lat_us[k] = kurer_time_mono_ns() / 1000 - t->t_sent[k];
    } else if (t->acked[k]) {
        t->dup++;
    } else {
        t->redelivered++;
    }
    t->seen[k]++;
    (void)p;
    if (*n < 8) {
        seqs[*n] = f->u.deliver.seq;
        nums[(*n)++] = k;
    }
}

static void on_answer(party *p, tally *t, const kurer_server_frame *f)
{
    uint64_t id = f->request_id;
    if (id >= REQS_MAX)
        return;
    if (p->num_of_req[id] != 0) {
        uint32_t k = p->num_of_req[id] - 1;
        p->num_of_req[id] = 0;
        p->in_flight--;
        if (f->body == KURER_SERVER_SEND_RESULT &&
            f->u.send_result.users[0].status == KURER_SEND_ACCEPTED) {
            t->acc[k] = 1;
            t->accepted++;
        } else {
            t->failed++;
        }
    } else if (p->ack_of_req[id] != 0 && f->body == KURER_SERVER_OK) {
        for (size_t i = 0; i < p->ack_n[id]; i++)
            t->acked[p->ack_nums[id][i]] = 1;
        p->ack_of_req[id] = 0;
    }
}

/* Runs the party's loop once and handles what came: answers, deliveries (acked at once, up to 8
 * per ack), the close push. */
static void party_pump(party *p, tally *t)
{
    kurer_server_frame f;
    if (!p->up)
        return;
    uv_run(&p->cl.loop, UV_RUN_NOWAIT);
    for (;;) {
        uint64_t seqs[8];
        uint32_t nums[8];
        size_t n = 0;
        while (n < 8 && cl_next(&p->cl, &f, 0)) {
            if (f.body == KURER_SERVER_DELIVER)
                on_deliver(p, t, &f, seqs, nums, &n);
            else if (f.body == KURER_SERVER_ERROR && f.request_id == 0)
                p->kicked = (int)f.u.error.code;
            else
                on_answer(p, t, &f);
            kurer_server_frame_release(&f);
        }
        if (n > 0 && !p->cl.closed) {
            kurer_client_frame ack;
            memset(&ack, 0, sizeof(ack));
            ack.body = KURER_CLIENT_ACK;
            ack.u.ack.seqs = seqs;
            ack.u.ack.n = n;
            uint64_t id = cl_send(&p->cl, &ack);
            assert_true(id < REQS_MAX);
            p->ack_of_req[id] = 1;
            memcpy(p->ack_nums[id], nums, n * sizeof(nums[0]));
            p->ack_n[id] = n;
        }
        if (n < 8)
            break;
    }
}

static void pump_all(party **ps, size_t n, tally *t, uint64_t ms)
{
    uint64_t end = kurer_time_mono_ms() + ms;
    do {
        for (size_t i = 0; i < n; i++)
            party_pump(ps[i], t);
        usleep(200);
    } while (kurer_time_mono_ms() < end);
}

/* A party whose connection was closed (its node died, or it was replaced) connects to node. */
static void reconnect_if_closed(party *p, world *node, tally *t)
{
    if (!p->up || !p->cl.closed)
        return;
    p->in_flight = 0; /* those answers will not come: not accepted */
    for (size_t i = 0; i < REQS_MAX; i++)
        if (p->num_of_req[i] != 0) {
            p->num_of_req[i] = 0;
            t->failed++;
        }
    party_close(p);
    party_connect(p, node);
}

static size_t count_lost(const tally *t)
{
    size_t lost = 0;
    for (size_t k = 0; k < NMAX; k++)
        lost += t->acc[k] && !t->seen[k];
    return lost;
}

static void report(const char *name, const tally *t)
{
    fprintf(stderr,
            "relay_cluster %s: sent %zu, accepted %zu, delivered %zu, lost %zu, duplicated %zu "
            "(not accepted %zu, redelivered unacked %zu)\n",
            name, t->sent, t->accepted, t->delivered, count_lost(t), t->dup, t->failed,
            t->redelivered);
}

/* Waits until every accepted envelope was delivered (or ms passed). */
static void drain_until_delivered(party **ps, size_t n, tally *t, uint64_t ms)
{
    uint64_t end = kurer_time_mono_ms() + ms;
    while (count_lost(t) > 0 && kurer_time_mono_ms() < end)
        pump_all(ps, n, t, 20);
    pump_all(ps, n, t, 200); /* late duplicates would show here */
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static party *party_new(device *d)
{
    party *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->d = d;
    return p;
}

static void party_free(party *p)
{
    party_close(p);
    free(p);
}

/* One envelope from s to r, pumped until it arrives; its latency (us) into *lat. */
static void one_way(party *s, party *r, tally *t, uint32_t k, uint64_t *lat)
{
    party *ps[2] = {s, r};
    uint64_t end = kurer_time_mono_ms() + 10000;
    party_send(s, t, r->d, k);
    while ((!t->seen[k] || s->in_flight > 0) && kurer_time_mono_ms() < end)
        pump_all(ps, 2, t, 0);
    assert_true(t->seen[k]);
    *lat = t->lat_us[k];
}

static uint64_t median_ms(uint64_t *v, size_t n, uint64_t *max)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    *max = v[n - 1] / 1000;
    return v[n / 2] / 1000;
}

/* Clients on different nodes exchange messages both ways, woken (not polled): delivery well
 * under the poll interval. Then the newest connection of a device wins across nodes, and a
 * revocation published on node A disconnects the device on node B. */
static void test_two_nodes(void **state)
{
    world *w = *state;
    device a, b, c;
    tally *t = calloc(1, sizeof(*t));
    uint64_t lat_ab[20], lat_ba[20], max_ab, max_ba;
    two_nodes(w, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    make_device(w, &c, "carl@mof", 1, 12, 0, 0, 0);
    party *pa = party_new(&a), *pb = party_new(&b), *pc = party_new(&c);
    party_connect(pa, w);     /* node A */
    party_connect(pb, &g_n1); /* node B */
    /* each node learns of the other's device through the store */
    wait_metric(w, "kurer_directory_devices", 2);
    wait_metric(&g_n1, "kurer_directory_devices", 2);
    for (uint32_t i = 0; i < 20; i++) {
        one_way(pa, pb, t, i, &lat_ab[i]);
        one_way(pb, pa, t, 100 + i, &lat_ba[i]);
    }
    uint64_t med_ab = median_ms(lat_ab, 20, &max_ab), med_ba = median_ms(lat_ba, 20, &max_ba);
    fprintf(stderr,
            "relay_cluster two_nodes: delivery latency across nodes A->B median %llu ms, max "
            "%llu ms; B->A median %llu ms, max %llu ms (poll interval %d ms)\n",
            (unsigned long long)med_ab, (unsigned long long)max_ab, (unsigned long long)med_ba,
            (unsigned long long)max_ba, POLL_MS);
    assert_true(max_ab < POLL_MS / 5 && max_ba < POLL_MS / 5);
    assert_true(med_ab < 250 && med_ba < 250);
    /* they came by wake-ups: each node was woken for its own device */
    assert_true(metric_now(&g_n1, "kurer_cluster_wakeups_total") >= 20);
    assert_true(metric_now(w, "kurer_cluster_wakeups_total") >= 20);

    /* the newest connection wins across nodes: b connects to A; its connection on B is closed */
    party *pb2 = party_new(&b);
    party_connect(pb2, w);
    expect_kicked(&pb->cl, KURER_EBUSY);
    party_close(pb);
    wait_metric(&g_n1, "kurer_cluster_connections_replaced_total", 1);
    uint64_t lat;
    one_way(pa, pb2, t, 200, &lat); /* and the new one is served */

    /* a revocation published on A disconnects the device on B */
    party_connect(pc, &g_n1);
    kurer_buf list;
    uint64_t serials[] = {12};
    make_crl(w, 1, serials, 1, NULL, &list);
    uint64_t t0 = kurer_time_mono_ms();
    assert_int_equal(upload_crl(&pa->cl, &list), 0);
    kurer_buf_release(&list);
    expect_kicked(&pc->cl, KURER_EREVOKED);
    uint64_t took = kurer_time_mono_ms() - t0;
    fprintf(stderr, "relay_cluster two_nodes: revocation on A closed the device on B in %llu ms\n",
            (unsigned long long)took);
    assert_true(took < POLL_MS / 2);
    assert_int_equal(metric_now(&g_n1, "kurer_cluster_revocation_lists_total"), 1);
    /* and B refuses it from now on */
    party_close(pc);
    assert_int_equal(cl_connect(&g_n1, &pc->cl, &c), KURER_EREVOKED);
    cl_free(&pc->cl);
    pc->up = 0;
    /* notifications anyone with a connection may send: refused, counted, nothing else */
    pgc_sql("SELECT pg_notify('kurer_wake', 'x 0123456789abcdef 00.1'), "
            "pg_notify('kurer_wake', 'w 0123456789abcdeg 626f406d6f66.1'), "
            "pg_notify('kurer_wake', 'w 0123456789abcdef 626f406d6f6.1'), "
            "pg_notify('kurer_wake', 'c 0123456789abcdef 1.626f406d6f66.99999999999'), "
            "pg_notify('kurer_wake', 'd 0123456789abcdef 00.1'), "
            "pg_notify('kurer_wake', 'r 0123456789abcdef 00.1')");
    wait_metric(w, "kurer_cluster_notifications_rejected_total", 6);
    wait_metric(&g_n1, "kurer_cluster_notifications_rejected_total", 6);
    one_way(pa, pb2, t, 201, &lat); /* both nodes still serve */
    report("two_nodes", t);
    assert_int_equal(t->accepted, 42);
    assert_int_equal(count_lost(t), 0);
    assert_int_equal(t->dup, 0);
    party_free(pa);
    party_free(pb);
    party_free(pb2);
    party_free(pc);
    free(t);
}

/* The listen connections are lost (the server ends them) while envelopes flow from A to B:
 * each node connects again, sends what waited and polls at once, so nothing is late for long
 * and nothing is lost. */
static void test_listen_lost(void **state)
{
    world *w = *state;
    device a, b;
    tally *t = calloc(1, sizeof(*t));
    two_nodes(w, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    party *pa = party_new(&a), *pb = party_new(&b);
    party_connect(pa, w);
    party_connect(pb, &g_n1);
    wait_metric(w, "kurer_directory_devices", 2);
    wait_metric(&g_n1, "kurer_directory_devices", 2);
    party *ps[2] = {pa, pb};
    uint64_t worst = 0;
    for (uint32_t k = 0; k < 3; k++) {
        pgc_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name "
                "= 'kurer-relay-listen'");
        uint64_t lat;
        one_way(pa, pb, t, k, &lat); /* sent while the listen connections come back */
        worst = lat > worst ? lat : worst;
        wait_metric(w, "kurer_cluster_listen_reconnects_total", k + 1);
        wait_metric(&g_n1, "kurer_cluster_listen_reconnects_total", k + 1);
    }
    drain_until_delivered(ps, 2, t, 5000);
    fprintf(stderr,
            "relay_cluster listen_lost: three losses of both listen connections, the slowest "
            "delivery meanwhile %llu ms (poll interval %d ms)\n",
            (unsigned long long)(worst / 1000), POLL_MS);
    report("listen_lost", t);
    assert_true(worst / 1000 < POLL_MS);
    assert_int_equal(t->accepted, 3);
    assert_int_equal(count_lost(t), 0);
    assert_int_equal(t->dup, 0);
    party_free(pa);
    party_free(pb);
    free(t);
}

/* The first value SQL returns on the primary (psql -t -A), into out. */
static void pgc_query(const char *sql, char *out, size_t cap)
{
    char cmd[1200];
    int n = snprintf(cmd, sizeof(cmd), "%s sql %s \"%s\"", cluster_sh(), g_pg, sql);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    FILE *fp = popen(cmd, "r");
    assert_non_null(fp);
    out[0] = '\0';
    if (fgets(out, (int)cap, fp) == NULL)
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    assert_int_equal(pclose(fp), 0);
}

/* A wake-up that never arrives (the listen connections hang: their server processes are
 * stopped, so A's notification does not go out and B would not receive one) is made up for by
 * B's poll: the envelope arrives within wake_poll_ms (here 1 s). */
static void test_poll_safety_net(void **state)
{
    world *w = *state;
    device a, b;
    char pid[32];
    tally *t = calloc(1, sizeof(*t));
    two_nodes(w, "wake_poll_ms = 1s\n");
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    party *pa = party_new(&a), *pb = party_new(&b);
    party_connect(pa, w);
    party_connect(pb, &g_n1);
    wait_metric(w, "kurer_directory_devices", 2);
    wait_metric(&g_n1, "kurer_directory_devices", 2);
    uint64_t lat;
    one_way(pa, pb, t, 0, &lat); /* woken */
    int pids[2];
    pgc_query("SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE application_name "
              "= 'kurer-relay-listen'",
              pid, sizeof(pid));
    assert_int_equal(sscanf(pid, "%d %d", &pids[0], &pids[1]), 2);
    uint64_t woken = metric_now(&g_n1, "kurer_cluster_wakeups_total");
    uint64_t polls = metric_now(&g_n1, "kurer_cluster_polls_total");
    for (int i = 0; i < 2; i++)
        assert_int_equal(kill(pids[i], SIGSTOP), 0);
    one_way(pa, pb, t, 1, &lat);
    /* read before the listen connections go on: then the notification they held back is
     * delivered (late, and harmless: the envelope was delivered by the poll already) */
    uint64_t woken_after = metric_now(&g_n1, "kurer_cluster_wakeups_total");
    for (int i = 0; i < 2; i++)
        assert_int_equal(kill(pids[i], SIGCONT), 0);
    fprintf(stderr,
            "relay_cluster poll_safety_net: with the listen connections hung, delivered by the "
            "poll in %llu ms (wake_poll_ms 1000)\n",
            (unsigned long long)(lat / 1000));
    report("poll_safety_net", t);
    assert_true(lat / 1000 <= 1500);
    assert_int_equal(woken_after, woken);
    assert_true(metric_now(&g_n1, "kurer_cluster_polls_total") > polls);
    assert_int_equal(t->accepted, 2);
    assert_int_equal(count_lost(t), 0);
    assert_int_equal(t->dup, 0);
    party_free(pa);
    party_free(pb);
    free(t);
}

/* Senders keep WINDOW envelopes in flight from s to r until `total` were sent. */
static void load(party **ps, size_t n, party *s, party *r, tally *t, uint32_t *next, uint32_t until)
{
    while (*next < until) {
        if (s->up && !s->cl.closed && s->in_flight < WINDOW)
            party_send(s, t, r->d, (*next)++);
        pump_all(ps, n, t, 0);
    }
}

/* kill -9 of one node under load: its devices reconnect to the other; nothing accepted is
 * lost. a (on B) sends to b (on A), d (on A) sends to c (on B); B dies halfway. */
static void test_kill_node(void **state)
{
    world *w = *state;
    device a, b, c, d;
    tally *t = calloc(1, sizeof(*t));
    two_nodes(w, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    make_device(w, &c, "carl@mof", 1, 12, 0, 0, 0);
    make_device(w, &d, "dora@mof", 1, 13, 0, 0, 0);
    party *pa = party_new(&a), *pb = party_new(&b), *pc = party_new(&c), *pd = party_new(&d);
    party_connect(pa, &g_n1);
    party_connect(pb, w);
    party_connect(pc, &g_n1);
    party_connect(pd, w);
    wait_metric(w, "kurer_directory_devices", 4);
    wait_metric(&g_n1, "kurer_directory_devices", 4);
    party *ps[4] = {pa, pb, pc, pd};
    uint32_t na = 0, nd = 1000;
    for (int round = 0; round < 2; round++) {
        uint32_t until = round == 0 ? 150 : 300;
        while (na < until || nd < 1000 + until) {
            if (na < until && pa->in_flight < WINDOW && !pa->cl.closed)
                party_send(pa, t, &b, na++);
            if (nd < 1000 + until && pd->in_flight < WINDOW)
                party_send(pd, t, &c, nd++);
            pump_all(ps, 4, t, 0);
        }
        if (round == 0) {
            assert_int_equal(stop_relay(&g_n1, SIGKILL) & 0x7f, SIGKILL);
            pump_all(ps, 4, t, 300);
            assert_true(pa->cl.closed && pc->cl.closed);
            reconnect_if_closed(pa, w, t); /* behind a balancer: to the node that is left */
            reconnect_if_closed(pc, w, t);
        }
    }
    drain_until_delivered(ps, 4, t, 20000);
    report("kill_node", t);
    assert_true(t->accepted >= 300 - 2 * WINDOW);
    assert_int_equal(count_lost(t), 0);
    assert_int_equal(t->dup, 0);
    for (int i = 0; i < 4; i++)
        party_free(ps[i]);
    free(t);
}

/* kill -9 of the primary under load, then the standby promoted: both nodes follow (their
 * multi-host connection string finds the new primary), nothing accepted is lost. */
static void test_kill_primary(void **state)
{
    world *w = *state;
    device a, b;
    tally *t = calloc(1, sizeof(*t));
    two_nodes(w, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    party *pa = party_new(&a), *pb = party_new(&b);
    party_connect(pa, w);
    party_connect(pb, &g_n1);
    wait_metric(w, "kurer_directory_devices", 2);
    wait_metric(&g_n1, "kurer_directory_devices", 2);
    party *ps[2] = {pa, pb};
    uint32_t next = 0;
    load(ps, 2, pa, pb, t, &next, 150);
    size_t accepted_before = t->accepted;
    pgc("kill-primary");
    uint64_t t0 = kurer_time_mono_ms();
    for (int k = 0; k < 8; k++) /* these wait for a primary */
        party_send(pa, t, &b, next++);
    pump_all(ps, 2, t, 500);
    pgc("promote");
    uint64_t promoted = kurer_time_mono_ms() - t0, followed = 0;
    size_t accepted_promoted = t->accepted;
    for (int i = 0; i < 2; i++) { /* a node may have closed a connection meanwhile */
        reconnect_if_closed(pa, w, t);
        reconnect_if_closed(pb, &g_n1, t);
    }
    while (next < 300) {
        load(ps, 2, pa, pb, t, &next, next + 1);
        reconnect_if_closed(pa, w, t);
        reconnect_if_closed(pb, &g_n1, t);
        if (followed == 0 && t->accepted > accepted_promoted)
            followed = kurer_time_mono_ms() - t0;
    }
    uint64_t end = kurer_time_mono_ms() + 20000;
    while ((pa->in_flight > 0 || count_lost(t) > 0) && kurer_time_mono_ms() < end) {
        pump_all(ps, 2, t, 20);
        reconnect_if_closed(pb, &g_n1, t);
    }
    drain_until_delivered(ps, 2, t, 5000);
    const char *script = strrchr(cluster_sh(), '/');
    fprintf(stderr,
            "relay_cluster kill_primary (%s): accepted %zu before the kill; standby promoted "
            "%llu ms after it, the first envelope accepted after that %llu ms after it\n",
            script != NULL ? script + 1 : cluster_sh(), accepted_before,
            (unsigned long long)promoted, (unsigned long long)followed);
    report("kill_primary", t);
    assert_true(t->accepted > accepted_before + 100); /* the nodes followed */
    assert_int_equal(count_lost(t), 0);
    assert_int_equal(t->dup, 0);
    party_free(pa);
    party_free(pb);
    free(t);
}

/* With the synchronous standby stopped, sends wait (or fail), never succeed: the accepted count
 * stays where it was until the standby is back; then they complete and are delivered. */
static void test_standby_stopped(void **state)
{
    world *w = *state;
    device a, b;
    tally *t = calloc(1, sizeof(*t));
    two_nodes(w, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    party *pa = party_new(&a), *pb = party_new(&b);
    party_connect(pa, w);
    party_connect(pb, &g_n1);
    wait_metric(w, "kurer_directory_devices", 2);
    wait_metric(&g_n1, "kurer_directory_devices", 2);
    party *ps[2] = {pa, pb};
    uint32_t next = 0;
    load(ps, 2, pa, pb, t, &next, 50);
    while (pa->in_flight > 0)
        pump_all(ps, 2, t, 10);
    size_t before = t->accepted;
    pgc("stop-standby");
    for (uint32_t k = 0; k < 10; k++)
        party_send(pa, t, &b, next++);
    pump_all(ps, 2, t, 3000);
    size_t during = t->accepted, delivered_during = t->delivered;
    uint64_t node_accepted = metric_now(w, "kurer_envelopes_accepted_total");
    fprintf(stderr,
            "relay_cluster standby_stopped: accepted %zu before the stop, %zu after 3 s without "
            "a standby (10 sent meanwhile; %zu failed); the node counts %llu\n",
            before, during, t->failed, (unsigned long long)node_accepted);
    assert_int_equal(during, before);
    assert_int_equal(node_accepted, before);
    assert_int_equal(delivered_during, before); /* nor visible to the recipient's node */
    /* The wait for the standby is cancelled (pg_cancel_backend): PostgreSQL then answers the
     * COMMIT with success and a WARNING ("canceling wait for synchronous replication"), the
     * transaction committed on the primary only. Node A takes the warning as "not known to be
     * replicated" and decides the round by a transaction of its own that waits for a standby
     * too: still nobody is told ACCEPTED (the envelopes are visible on the primary now, and the
     * recipient's node may deliver them: what the sender was not told accepted it sends again,
     * and the recipient drops what it had already). */
    char n_cancel[32];
    pgc_query("SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE wait_event = "
              "'SyncRep'",
              n_cancel, sizeof(n_cancel));
    assert_true(atoi(n_cancel) >= 1);
    pump_all(ps, 2, t, 2000);
    size_t after_cancel = t->accepted;
    uint64_t node_after_cancel = metric_now(w, "kurer_envelopes_accepted_total");
    fprintf(stderr,
            "relay_cluster standby_stopped: after the wait of %d commit(s) for the standby was "
            "cancelled: accepted %zu, the node counts %llu\n",
            atoi(n_cancel), after_cancel, (unsigned long long)node_after_cancel);
    assert_int_equal(after_cancel, before);
    assert_int_equal(node_after_cancel, before);
    /* The server process waiting for the standby is terminated: PostgreSQL keeps that commit
     * locally (visible on the primary, not on any standby). Node A loses its connection with
     * the COMMIT in flight, connects again, finds its round committed, and still tells nobody
     * ACCEPTED until a standby has flushed it. */
    char n_term[32];
    pgc_query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE wait_event = "
              "'SyncRep'",
              n_term, sizeof(n_term));
    assert_true(atoi(n_term) >= 1); /* A's round of puts (and B's of acks, if one waits) */
    pump_all(ps, 2, t, 2000);
    size_t after_term = t->accepted;
    uint64_t node_after_term = metric_now(w, "kurer_envelopes_accepted_total");
    fprintf(stderr,
            "relay_cluster standby_stopped: after the waiting commit's server process was "
            "terminated: accepted %zu, the node counts %llu\n",
            after_term, (unsigned long long)node_after_term);
    assert_int_equal(after_term, before);
    assert_int_equal(node_after_term, before);
    pgc("start-standby");
    uint64_t end = kurer_time_mono_ms() + 20000;
    while (pa->in_flight > 0 && kurer_time_mono_ms() < end)
        pump_all(ps, 2, t, 20);
    drain_until_delivered(ps, 2, t, 10000);
    report("standby_stopped", t);
    /* they waited, and completed with the standby back: the round found committed is not
     * written again (no duplicate), and is accepted */
    assert_int_equal(t->accepted, 60);
    assert_int_equal(t->failed, 0);
    assert_int_equal(count_lost(t), 0);
    assert_int_equal(t->dup, 0);
    party_free(pa);
    party_free(pb);
    free(t);
}

/* Four devices on two nodes take one device's one-time prekeys at once: each one is handed out
 * once, and all of them are (the demand is larger than the pool). */
static void test_prekeys_two_nodes(void **state)
{
    world *w = *state;
    device owner, f[4];
    client co, cf[4];
    kurer_prekey_upload u;
    kurer_one_time_prekey otk[100];
    two_nodes(w, "prekey_take_max = 0\nfetch_rate = 0\n");
    make_device(w, &owner, "otto@mof", 1, 10, 0, 0, 0);
    assert_int_equal(cl_connect(w, &co, &owner), 0);
    make_upload(&owner, &u, otk, 1, 1, 100, 0);
    assert_int_equal(upload(&co, &u), 0);
    unsigned handed[101] = {0};
    size_t got = 0, without = 0, dup = 0;
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "fetcher%d@mof", i);
        make_device(w, &f[i], name, 1, 20 + (uint64_t)i, 0, 0, 0);
        assert_int_equal(cl_connect(i % 2 ? &g_n1 : w, &cf[i], &f[i]), 0);
    }
    uint64_t ids[4][40];
    uint32_t dev1 = 1;
    for (int j = 0; j < 40; j++) /* 160 requests in flight at once, half per node */
        for (int i = 0; i < 4; i++)
            ids[i][j] = send_fetch(&cf[i], "otto@mof", &dev1, 1);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 40; j++) {
            kurer_server_frame r;
            wait_answer(&cf[i], ids[i][j], &r);
            assert_int_equal(r.body, KURER_SERVER_BUNDLES);
            assert_int_equal(r.u.bundles.n, 1);
            if (r.u.bundles.bundles[0].has_one_time) {
                uint32_t id = r.u.bundles.bundles[0].one_time.id;
                if (id < 1 || id > 100)
                    fail_msg("prekey id %u was never uploaded", (unsigned)id);
                else
                    dup += handed[id]++ > 0;
                got++;
            } else {
                without++;
            }
            kurer_server_frame_release(&r);
        }
    fprintf(stderr,
            "relay_cluster prekeys_two_nodes: 160 fetches on two nodes, 100 one-time prekeys: "
            "handed out %zu, without one %zu, handed out twice %zu\n",
            got, without, dup);
    fprintf(stderr,
            "relay_cluster prekeys_two_nodes: sent 160, accepted %zu, delivered %zu, lost %zu, "
            "duplicated %zu (one-time prekeys: asked for, handed out, received, neither handed "
            "out nor left, handed out twice)\n",
            got, got, 100 - got, dup);
    assert_int_equal(dup, 0);
    assert_int_equal(got, 100);
    assert_int_equal(without, 60);
    for (int i = 0; i < 4; i++)
        cl_free(&cf[i]);
    cl_free(&co);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_nodes, setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_listen_lost, setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_poll_safety_net, setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_kill_node, setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_kill_primary, setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_standby_stopped, setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_prekeys_two_nodes, setup, cluster_teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("relay_cluster", tests, NULL, NULL);
}
