/* bench_group: group (bench/README.md, issue 11 item 9).
 *
 *   bench_group [--smoke] [--members 10,100,1000] [--sends R] [--rate-members N]
 *               [--rate-seconds D] [--window W] [--size B] [--member-dir DIR]
 *
 * One real kurer-relay, one sender (anna) and max(members) - 1 member homes in this process,
 * each a real client of the asynchronous C API (its own library thread and connection), with
 * certificates made here. For each N a group of anna and the first N - 1 members is made
 * (kurer_group_create and kurer_group_update ADD, 256 users a change), every member waits until
 * it holds the group, anna sends a first message (her sender key to every member device), then R
 * messages one at a time, each after the previous one has reached every member and anna's
 * delivered receipts have stopped coming. At N = --rate-members, anna then sends for D seconds
 * with W sends in flight (kurer_group_send_async). Last, every member disconnects and anna sends
 * K messages to each group while they are offline: the relay's store is read before and after
 * (the relay stopped for it and started again). */
#define SQLITE_HAS_CODEC 1 /* declares sqlite3_key (SQLCipher) */
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "homes.h"
#include "kurer/crypto.h"
#include "kurer/kurer.h"
#include "kurer/util.h"

#define PASS       "bench passphrase"
#define GROUPS_MAX 8
#define SEQ_MAX    8192
#define MEMBERS    1000 /* KURER__GROUP_MEMBERS_MAX: anna and 999 */
#define TIMEOUT_MS 120000

typedef struct member {
    bench_home h;
    int connect_err;
} member;

/* Counted on the members' library threads. */
static atomic_uint g_got[GROUPS_MAX][SEQ_MAX];
static atomic_ullong g_done_ns[GROUPS_MAX][SEQ_MAX]; /* when the last member had it */
static unsigned g_need[GROUPS_MAX];                  /* members besides anna */
static atomic_uint g_receipts, g_connected, g_sent, g_send_err, g_queue_empty;
static atomic_ullong g_receipt_ns, g_last_sent_ns;

/* On an exit before the end (bench_die): the relay stopped, the members' homes and anna's
 * removed. */
static bench_server *g_relay;
static const char *g_dirs[2]; /* the members' folder, anna's home */
static int g_finished;        /* main returns: everything closed and removed already */

static void cleanup(void)
{
    char cmd[400];
    if (g_finished)
        return;
    if (g_relay != NULL && g_relay->pid > 0)
        bench_server_stop(g_relay);
    for (size_t i = 0; i < 2; i++)
        if (g_dirs[i] != NULL && g_dirs[i][0] != '\0') {
            snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dirs[i]);
            if (system(cmd) != 0)
                fprintf(stderr, "bench_group: cannot remove %s\n", g_dirs[i]);
        }
    _exit(1); /* not the other atexit work: the homes' threads still run */
}

static int parse(const char *body, unsigned *g, unsigned *seq)
{
    return sscanf(body, "gb %u %u", g, seq) == 2 && *g < GROUPS_MAX && *seq < SEQ_MAX;
}

static void member_message(void *ud, const kurer_message *m)
{
    unsigned g, seq;
    (void)ud;
    if (m->outgoing || m->group[0] == '\0' || !parse(m->body, &g, &seq))
        return;
    if (atomic_fetch_add(&g_got[g][seq], 1) + 1 == g_need[g])
        atomic_store(&g_done_ns[g][seq], bench_now_ns());
}

/* Anna's side: the members' delivered receipts, counted only to let them settle between two
 * timed sends (a receipt names messages by their sent_at, which has whole seconds). */
static void anna_receipt(void *ud, const kurer_receipt_info *r)
{
    (void)ud;
    if (r->outgoing && !r->read) {
        atomic_fetch_add(&g_receipts, 1);
        atomic_store(&g_receipt_ns, bench_now_ns());
    }
}

/* Anna was given everything the relay held for her when she connected. */
static void anna_queue_empty(void *ud)
{
    (void)ud;
    atomic_store(&g_queue_empty, 1);
}

static void connected(void *ud, const kurer_result *r)
{
    member *m = ud;
    m->connect_err = r->err;
    atomic_fetch_add(&g_connected, 1);
}

static void sent(void *ud, const kurer_result *r)
{
    (void)ud;
    if (r->err != 0)
        atomic_fetch_add(&g_send_err, 1);
    atomic_store(&g_last_sent_ns, bench_now_ns());
    atomic_fetch_add(&g_sent, 1);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until *v reaches want (bounded): 0, or -1 after timeout_s. */
static int wait_uint(atomic_uint *v, unsigned want, double timeout_s)
{
    double end = bench_now_s() + timeout_s;
    while (atomic_load(v) < want)
        if (bench_now_s() > end)
            return -1;
        else
            sleep_ms(1);
    return 0;
}

/* ---- the relay's store --------------------------------------------------------------------- */

static int64_t query(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The running relay's store (read-only, the last committed state: the WAL included). */
static sqlite3 *relay_store(const bench_server *s)
{
    char path[400], raw[2 * 32 + 4];
    uint8_t *key = NULL;
    size_t n = 0;
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/relay/store.key", s->dir);
    if (kurer_file_read(path, 64, &key, &n) != 0 || n != 32)
        bench_die("cannot read %s", path);
    raw[0] = 'x';
    raw[1] = '\'';
    kurer_hex_encode(raw + 2, key, 32);
    raw[66] = '\'';
    raw[67] = 0;
    kurer_memzero(key, n);
    free(key);
    snprintf(path, sizeof(path), "%s/relay/relay.db", s->dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_key(db, raw, (int)strlen(raw)) != SQLITE_OK)
        bench_die("cannot open %s", path);
    kurer_memzero(raw, sizeof(raw));
    return db;
}

/* What the stopped relay's store holds: pages in use (page_count - freelist_count, times the
 * page size, as relay_fanout_bound reads them), mailbox rows (ordinary envelopes), fan-out
 * references, and the newest fan-out payload row's length. */
typedef struct store_use {
    int64_t used, mailbox, refs, payload;
} store_use;

static store_use relay_used(const bench_server *s)
{
    store_use u;
    sqlite3 *db = relay_store(s);
    u.used = (query(db, "PRAGMA page_count") - query(db, "PRAGMA freelist_count")) *
             query(db, "PRAGMA page_size");
    u.mailbox = query(db, "SELECT count(*) FROM mailbox");
    u.refs = query(db, "SELECT count(*) FROM fanout_refs");
    u.payload = query(db, "SELECT length(env) FROM fanout_payloads ORDER BY id DESC LIMIT 1");
    sqlite3_close(db);
    if (u.used < 0 || u.mailbox < 0 || u.refs < 0)
        bench_die("cannot read the relay's store");
    return u;
}

/* The fan-out accept histogram's sum (seconds) and count. */
static void fanout_accept(const bench_server *s, double *sum, double *count)
{
    static char page[65536];
    if (bench_metrics_fetch(&s->maddr, page, sizeof(page)) != 0)
        bench_die("metrics");
    *sum = bench_metric(page, "kurer_fanout_accept_seconds_sum");
    *count = bench_metric(page, "kurer_fanout_accept_seconds_count");
}

static double relay_gauge(const bench_server *s, const char *name)
{
    static char page[65536];
    if (bench_metrics_fetch(&s->maddr, page, sizeof(page)) != 0)
        bench_die("metrics");
    return bench_metric(page, name);
}

/* ---- the run ------------------------------------------------------------------------------- */

typedef struct opts {
    size_t sizes[GROUPS_MAX], n_sizes;
    int sends;
    size_t rate_members;
    double rate_seconds;
    int window;
    size_t size;
    size_t stored_refs;
    const char *member_dir;
} opts;

typedef struct figures {
    size_t members;
    double setup_s, first_send_ms, first_deliver_all_ms;
    double client_ms, client_max_ms, relay_accept_ms, deliver_all_ms, deliver_all_max_ms;
    double receipts_all_ms;
    double msgs_per_s, delivered_msgs_per_s;
    double stored_bytes;
    int64_t payload_bytes, stored_refs, stored_other;
    size_t stored_messages;
    size_t content_bytes;
    unsigned errors;
} figures;

typedef struct world {
    char parent[256]; /* the members' homes */
    bench_pki pki;
    bench_server relay;
    member anna;
    member *m;
    size_t n_members;
    char gid[GROUPS_MAX][KURER_GROUP_HEX_MAX + 1];
    unsigned seq[GROUPS_MAX];
    char *text;
    size_t size;
} world;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The text of message seq of group g: "gb G SEQ " and filler up to the size. */
static const char *text_of(world *w, unsigned g, unsigned seq)
{
    int n = snprintf(w->text, w->size + 1, "gb %u %u ", g, seq);
    for (size_t i = (size_t)n; i < w->size; i++)
        w->text[i] = (char)('a' + i % 26);
    w->text[w->size > (size_t)n ? w->size : (size_t)n] = '\0';
    return w->text;
}

typedef struct maker {
    world *w;
    const char *relay;
    size_t from, to;
} maker;

static void *make_some(void *arg)
{
    maker *m = arg;
    char user[32];
    kurer_events ev;
    memset(&ev, 0, sizeof(ev));
    ev.on_message = member_message;
    for (size_t i = m->from; i < m->to; i++) {
        snprintf(user, sizeof(user), "m%04zu@mof", i);
        bench_home_create_at(&m->w->pki, &m->w->m[i].h, user, 100 + i, PASS, kurer_kdf_minimum(),
                             m->relay, m->w->relay.pk, m->w->parent);
        kurer_set_events(m->w->m[i].h.k, &ev);
    }
    return NULL;
}

/* Anna (connected) and n members: made by MAKERS threads, then connected CONNECTS at a time
 * (each connect uploads 100 prekeys, which the relay commits). */
#define MAKERS   4
#define CONNECTS 32
static void homes_make(world *w, size_t n)
{
    char relay[64];
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&w->relay.addr;
    snprintf(relay, sizeof(relay), "127.0.0.1:%u", (unsigned)ntohs(sin->sin_port));
    kurer_events ev;
    memset(&ev, 0, sizeof(ev));
    w->m = calloc(n, sizeof(*w->m));
    if (w->m == NULL)
        bench_die("calloc");
    bench_home_create_at(&w->pki, &w->anna.h, "anna@mof", 10, PASS, kurer_kdf_minimum(), relay,
                         w->relay.pk, NULL);
    ev.on_receipt = anna_receipt;
    ev.on_queue_empty = anna_queue_empty;
    kurer_set_events(w->anna.h.k, &ev);
    if (kurer_connect(w->anna.h.k, TIMEOUT_MS) != 0)
        bench_die("anna did not connect");
    double t0 = bench_now_s();
    pthread_t th[MAKERS];
    maker mk[MAKERS];
    for (size_t t = 0; t < MAKERS; t++) {
        mk[t] = (maker){w, relay, n * t / MAKERS, n * (t + 1) / MAKERS};
        if (pthread_create(&th[t], NULL, make_some, &mk[t]) != 0)
            bench_die("pthread_create");
    }
    for (size_t t = 0; t < MAKERS; t++)
        pthread_join(th[t], NULL);
    w->n_members = n;
    double t1 = bench_now_s();
    for (size_t i = 0; i < n; i++) {
        if (wait_uint(&g_connected, i + 1 > CONNECTS ? (unsigned)(i + 1 - CONNECTS) : 0,
                      TIMEOUT_MS / 1000.0) != 0)
            bench_die("the members did not connect");
        if (kurer_connect_async(w->m[i].h.k, TIMEOUT_MS, connected, &w->m[i]) != 0)
            bench_die("connect_async");
    }
    if (wait_uint(&g_connected, (unsigned)n, TIMEOUT_MS / 1000.0) != 0)
        bench_die("the members did not connect");
    fprintf(stderr, "bench_group: %zu homes made in %.1f s, connected in %.1f s\n", n, t1 - t0,
            bench_now_s() - t1);
    for (size_t i = 0; i < n; i++)
        if (w->m[i].connect_err != 0)
            bench_die("member %zu: connect: %s", i, kurer_strerror(w->m[i].connect_err));
}

static int group_size(void *ud, const kurer_group_info *g)
{
    *(size_t *)ud = g->n_members;
    return 0;
}

/* Group g of anna and the first n - 1 members; every member holds it with n members. */
static void group_make(world *w, unsigned g, size_t n)
{
    const char *users[KURER_GROUP_USERS_MAX];
    kurer_refusal why;
    size_t done = 0;
    char name[32];
    snprintf(name, sizeof(name), "bench %zu", n);
    g_need[g] = (unsigned)(n - 1);
    while (done < n - 1 || done == 0) {
        size_t k = 0;
        while (k < KURER_GROUP_USERS_MAX && done + k < n - 1) {
            users[k] = kurer_own_user(w->m[done + k].h.k);
            k++;
        }
        int rc = done == 0
                     ? kurer_group_create(w->anna.h.k, name, users, k, TIMEOUT_MS, w->gid[g], &why)
                     : kurer_group_update(w->anna.h.k, w->gid[g], KURER_GROUP_OP_ADD, users, k,
                                          NULL, TIMEOUT_MS, &why);
        if (rc != 0)
            bench_die("group of %zu: %s (%s)", n, kurer_strerror(rc), why.user);
        done += k;
        if (k == 0)
            break;
    }
    double end = bench_now_s() + TIMEOUT_MS / 1000.0;
    for (size_t i = 0; i < n - 1; i++) {
        size_t have = 0;
        while (kurer_group_get(w->m[i].h.k, w->gid[g], group_size, &have) != 0 || have != n) {
            if (bench_now_s() > end)
                bench_die("member %zu does not hold the group of %zu", i, n);
            sleep_ms(5);
        }
    }
}

/* Until anna's receipts have stopped coming for 300 ms (at most 20 s). */
static void settle(void)
{
    double end = bench_now_s() + 20;
    for (;;) {
        uint64_t last = atomic_load(&g_receipt_ns), now = bench_now_ns();
        if ((last == 0 || now - last > 300000000ull) || bench_now_s() > end)
            return;
        sleep_ms(20);
    }
}

/* One message of group g, blocking: the client's time (kurer_group_send), the relay's (the
 * fan-out accept histogram around it), and until every member has it (ms; -1: not in 60 s). */
static void send_one(world *w, unsigned g, double *client_ms, double *relay_ms, double *all_ms)
{
    kurer_refusal why;
    double sum0, count0, sum1, count1;
    unsigned seq = w->seq[g]++;
    if (seq >= SEQ_MAX)
        bench_die("too many messages");
    const char *text = text_of(w, g, seq);
    fanout_accept(&w->relay, &sum0, &count0);
    uint64_t t0 = bench_now_ns();
    int rc = kurer_group_send(w->anna.h.k, w->gid[g], KURER_LEVEL_RESTRICTED, text, TIMEOUT_MS,
                              &why, NULL);
    uint64_t t1 = bench_now_ns();
    if (rc != 0)
        bench_die("group send: %s", kurer_strerror(rc));
    fanout_accept(&w->relay, &sum1, &count1);
    *client_ms = (double)(t1 - t0) / 1e6;
    *relay_ms = count1 > count0 ? (sum1 - sum0) / (count1 - count0) * 1e3 : -1;
    double end = bench_now_s() + 60;
    while (atomic_load(&g_done_ns[g][seq]) == 0 && bench_now_s() < end)
        sleep_ms(1);
    uint64_t done = atomic_load(&g_done_ns[g][seq]);
    *all_ms = done != 0 ? (double)(done - t0) / 1e6 : -1;
}

/* D seconds of sends with W in flight: accepted sends per second, and messages that reached
 * every member per second (from the first send to the last such arrival). */
static void sustained(world *w, unsigned g, const opts *o, figures *f)
{
    unsigned first = w->seq[g], issued = 0;
    atomic_store(&g_sent, 0);
    atomic_store(&g_send_err, 0);
    uint64_t t0 = bench_now_ns(), stop = t0 + (uint64_t)(o->rate_seconds * 1e9);
    while (bench_now_ns() < stop && w->seq[g] < SEQ_MAX) {
        if (issued - atomic_load(&g_sent) >= (unsigned)o->window) {
            sleep_ms(1);
            continue;
        }
        const char *text = text_of(w, g, w->seq[g]++);
        if (kurer_group_send_async(w->anna.h.k, w->gid[g], KURER_LEVEL_RESTRICTED, text, TIMEOUT_MS,
                                   sent, NULL) != 0)
            bench_die("group send async");
        issued++;
    }
    if (wait_uint(&g_sent, issued, 120) != 0)
        bench_die("sends did not complete");
    double secs = (double)(atomic_load(&g_last_sent_ns) - t0) / 1e9;
    f->errors += atomic_load(&g_send_err);
    f->msgs_per_s = (double)(issued - atomic_load(&g_send_err)) / secs;
    uint64_t last = 0;
    unsigned all = 0;
    double end = bench_now_s() + 60;
    for (unsigned s = first; s < w->seq[g]; s++) {
        while (atomic_load(&g_done_ns[g][s]) == 0 && bench_now_s() < end)
            sleep_ms(1);
        uint64_t d = atomic_load(&g_done_ns[g][s]);
        all += d != 0;
        if (d > last)
            last = d;
    }
    f->delivered_msgs_per_s = last > t0 ? all / ((double)(last - t0) / 1e9) : 0;
    settle();
}

static void measure(world *w, unsigned g, const opts *o, figures *f)
{
    double client[64] = {0}, relay[64] = {0}, all[64] = {0}, r = 0;
    int n = o->sends < 64 ? o->sends : 64, nr = 0, na = 0;
    double t0 = bench_now_s();
    f->members = o->sizes[g];
    group_make(w, g, o->sizes[g]);
    f->setup_s = bench_now_s() - t0;
    send_one(w, g, &f->first_send_ms, &r, &f->first_deliver_all_ms);
    settle();
    f->client_max_ms = f->deliver_all_max_ms = 0;
    for (int i = 0; i < n; i++) {
        send_one(w, g, &client[i], &r, &all[na]);
        if (r >= 0)
            relay[nr++] = r;
        if (all[na] >= 0 && all[na] > f->deliver_all_max_ms)
            f->deliver_all_max_ms = all[na];
        if (all[na] >= 0)
            na++;
        else
            f->errors++;
        if (client[i] > f->client_max_ms)
            f->client_max_ms = client[i];
        settle();
    }
    f->client_ms = median(client, (size_t)n);
    f->relay_accept_ms = nr > 0 ? median(relay, (size_t)nr) : -1;
    f->deliver_all_ms = na > 0 ? median(all, (size_t)na) : -1;
    f->msgs_per_s = f->delivered_msgs_per_s = -1;
    if (o->sizes[g] == o->rate_members && o->rate_seconds > 0)
        sustained(w, g, o, f);
}

/* The relay stopped (its store closed: it holds the file exclusively while it runs), its use
 * read, and started again on the same port; anna connected again and given what it held for
 * her (her acks then take a moment). */
static store_use relay_read(world *w)
{
    if (bench_relay_term(&w->relay) != 0)
        bench_die("the relay did not stop cleanly");
    store_use u = relay_used(&w->relay);
    if (bench_relay_restart(&w->relay) != 0)
        bench_die("the relay did not start again");
    atomic_store(&g_queue_empty, 0);
    if (kurer_connect(w->anna.h.k, TIMEOUT_MS) != 0 ||
        wait_uint(&g_queue_empty, 1, TIMEOUT_MS / 1000.0) != 0)
        bench_die("anna did not connect again");
    sleep_ms(500);
    return u;
}

/* Every member offline, anna's mailbox drained; then K messages to each group (K =
 * stored_refs / (N - 1), 2..200) that the relay keeps for the offline members: its pages in use
 * before and after, over K. */
static void stored(world *w, const opts *o, figures *f)
{
    kurer_refusal why;
    for (size_t i = 0; i < w->n_members; i++)
        kurer_disconnect_async(w->m[i].h.k);
    double end = bench_now_s() + 60;
    while (relay_gauge(&w->relay, "kurer_connections") > 1 && bench_now_s() < end)
        sleep_ms(50);
    if (relay_gauge(&w->relay, "kurer_connections") > 1)
        bench_die("the members did not disconnect");
    settle();            /* the members' last receipts */
    (void)relay_read(w); /* anna fetches and acks the receipts still held for her */
    store_use before = relay_read(w);
    for (unsigned g = 0; g < o->n_sizes; g++) {
        size_t k = (o->stored_refs + o->sizes[g] - 2) / (o->sizes[g] - 1);
        k = k < 2 ? 2 : k > 200 ? 200 : k;
        for (size_t i = 0; i < k; i++) {
            const char *text = text_of(w, g, w->seq[g]++);
            int rc = kurer_group_send(w->anna.h.k, w->gid[g], KURER_LEVEL_RESTRICTED, text,
                                      TIMEOUT_MS, &why, NULL);
            if (rc != 0)
                bench_die("group send (offline members): %s", kurer_strerror(rc));
        }
        store_use after = relay_read(w);
        f[g].stored_messages = k;
        f[g].stored_bytes = (double)(after.used - before.used) / (double)k;
        f[g].payload_bytes = after.payload;
        f[g].stored_refs = after.refs - before.refs;
        f[g].stored_other = after.mailbox - before.mailbox;
        before = after;
    }
}

static void parse_sizes(opts *o, const char *arg)
{
    o->n_sizes = 0;
    for (const char *p = arg; *p != '\0' && o->n_sizes < GROUPS_MAX;) {
        char *e;
        unsigned long v = strtoul(p, &e, 10);
        if (e == p || v < 2 || v > MEMBERS)
            bench_die("--members: sizes of 2..%d", MEMBERS);
        o->sizes[o->n_sizes++] = v;
        p = *e == ',' ? e + 1 : e;
    }
}

static void num(bench_json *j, const char *key, double v)
{
    bench_json_num(j, key, v < 0 ? NAN : v);
}

/* The JSON lines and the summary. */
static void print_lines(const figures *f, const opts *o, double homes_s, int argc, char **argv)
{
    for (unsigned g = 0; g < o->n_sizes; g++) {
        bench_json j;
        bench_json_begin(&j, "group");
        bench_json_int(&j, "members", f[g].members);
        bench_json_int(&j, "recipients", f[g].members - 1);
        num(&j, "client_ms", f[g].client_ms);
        num(&j, "relay_accept_ms", f[g].relay_accept_ms);
        bench_json_num(&j, "stored_bytes", f[g].stored_bytes);
        bench_json_num(&j, "stored_bytes_per_device",
                       (f[g].stored_bytes - (double)f[g].payload_bytes) /
                           (double)(f[g].members - 1));
        bench_json_int(&j, "payload_bytes", (uint64_t)f[g].payload_bytes);
        bench_json_int(&j, "stored_messages", f[g].stored_messages);
        bench_json_num(&j, "stored_refs", (double)f[g].stored_refs);
        bench_json_num(&j, "stored_mailbox_rows", (double)f[g].stored_other);
        num(&j, "deliver_all_ms", f[g].deliver_all_ms);
        num(&j, "msgs_per_s", f[g].msgs_per_s);
        num(&j, "delivered_msgs_per_s", f[g].delivered_msgs_per_s);
        num(&j, "client_max_ms", f[g].client_max_ms);
        num(&j, "deliver_all_max_ms", f[g].deliver_all_max_ms);
        num(&j, "first_send_ms", f[g].first_send_ms);
        num(&j, "first_deliver_all_ms", f[g].first_deliver_all_ms);
        bench_json_num(&j, "setup_s", f[g].setup_s);
        bench_json_int(&j, "sends", (uint64_t)o->sends);
        bench_json_int(&j, "text_bytes", o->size);
        bench_json_int(&j, "errors", f[g].errors);
        bench_json_num(&j, "homes_s", homes_s);
        bench_json_end(&j, argc, argv);
    }
    for (unsigned g = 0; g < o->n_sizes; g++)
        printf("# group N=%zu: send %.1f ms (relay %.1f ms), every member has it after %.1f ms, "
               "%.0f bytes stored (payload %lld)\n",
               f[g].members, f[g].client_ms, f[g].relay_accept_ms, f[g].deliver_all_ms,
               f[g].stored_bytes, (long long)f[g].payload_bytes);
    for (unsigned g = 0; g < o->n_sizes; g++)
        if (f[g].msgs_per_s >= 0)
            printf("# group N=%zu sustained: %.1f messages/s accepted, %.1f/s reached everyone\n",
                   f[g].members, f[g].msgs_per_s, f[g].delivered_msgs_per_s);
}

int main(int argc, char **argv)
{
    opts o = {{10, 100, 1000}, 3, 5, 100, 5, 4, 200, 2000, NULL};
    o.member_dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0) {
            parse_sizes(&o, "3,6");
            o.sends = 2;
            o.rate_members = 6;
            o.rate_seconds = 0.5;
            o.stored_refs = 10;
        } else if (strcmp(argv[i], "--members") == 0 && i + 1 < argc) {
            parse_sizes(&o, argv[++i]);
        } else if (strcmp(argv[i], "--sends") == 0 && i + 1 < argc) {
            o.sends = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--rate-members") == 0 && i + 1 < argc) {
            o.rate_members = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--rate-seconds") == 0 && i + 1 < argc) {
            o.rate_seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc) {
            o.window = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--member-dir") == 0 && i + 1 < argc) {
            o.member_dir = argv[++i];
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            o.size = strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: bench_group [--smoke] [--members 10,100,1000] [--sends R] "
                            "[--rate-members N] [--rate-seconds D] [--window W] [--size B] "
                            "[--member-dir DIR]\n");
            return 2;
        }
    }
    if (o.n_sizes == 0 || o.sends < 1 || o.window < 1 || o.size < 16 || o.size > 60000)
        bench_die("bad arguments");
    static world w;
    static figures f[GROUPS_MAX];
    size_t most = 0;
    for (size_t i = 0; i < o.n_sizes; i++)
        most = o.sizes[i] > most ? o.sizes[i] : most;
    uint64_t nofile = bench_raise_nofile();
    if (kurer_crypto_init() != 0)
        bench_die("crypto init");
    w.size = o.size;
    if ((w.text = malloc(o.size + 32)) == NULL)
        bench_die("malloc");
    snprintf(w.parent, sizeof(w.parent), "%s/kurer-bench-group-XXXXXX", o.member_dir);
    if (mkdtemp(w.parent) == NULL)
        bench_die("mkdtemp %s", w.parent);
    g_dirs[0] = w.parent;
    g_dirs[1] = w.anna.h.home;
    g_relay = &w.relay;
    atexit(cleanup);
    bench_pki_init(&w.pki);
    /* anna takes 999 prekey bundles while she makes the group (fetch_rate: 20/s by default) */
    bench_relay_start_extra(&w.relay, &w.pki, "fetch_rate = 0\n");
    double t0 = bench_now_s();
    homes_make(&w, most - 1);
    double homes_s = bench_now_s() - t0;
    fprintf(stderr, "bench_group: %zu homes made and connected in %.1f s (open files %llu)\n", most,
            homes_s, (unsigned long long)nofile);
    for (unsigned g = 0; g < o.n_sizes; g++) {
        measure(&w, g, &o, &f[g]);
        fprintf(stderr, "bench_group: %zu members measured\n", o.sizes[g]);
    }
    stored(&w, &o, f);
    print_lines(f, &o, homes_s, argc, argv);
    kurer_close(w.anna.h.k);
    bench_home_remove(&w.anna.h);
    for (size_t i = 0; i < w.n_members; i++) {
        kurer_close(w.m[i].h.k);
        bench_home_remove(&w.m[i].h);
    }
    rmdir(w.parent);
    free(w.m);
    free(w.text);
    bench_server_stop(&w.relay);
    bench_pki_free(&w.pki);
    g_finished = 1;
    return 0;
}
