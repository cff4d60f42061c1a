/* Fan-out sends through a real kurer-relay (docs/protocol.md 3.7), relay_fanout_<case>:
 *  - delivery: one FanoutSend in two parts to users with several devices, some online, some
 *    offline, an unknown user and a device whose certificate serial is stale: every recipient
 *    gets an ordinary Deliver of a SENDER_KEY envelope, the results are per user, and the shared
 *    bytes are deleted with the last ack (read from the stopped relay's own store);
 *  - all_online: every device acks at once; nothing of the send is ever written;
 *  - refused: parts out of order, a user in two parts, too many devices and a full mailbox are
 *    refused whole with their typed errors and counted;
 *  - bound: 1,000 users with one device each; after one fan-out send the store holds at most the
 *    payload plus 64 bytes per device more than before (the figures are printed). */
#define SQLITE_HAS_CODEC 1 /* declares sqlite3_key (SQLCipher) */
#include <sqlite3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay_harness.h"

/* ---- the stopped relay's store ------------------------------------------------------------ */

static sqlite3 *open_store(world *w)
{
    char path[400], raw[2 * 32 + 4];
    uint8_t *key = NULL;
    size_t n = 0;
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/relay/store.key", w->dir);
    assert_int_equal(kurer_file_read(path, 64, &key, &n), 0);
    assert_int_equal(n, 32);
    raw[0] = 'x';
    raw[1] = '\'';
    kurer_hex_encode(raw + 2, key, 32);
    raw[66] = '\'';
    raw[67] = 0;
    kurer_memzero(key, n);
    free(key);
    snprintf(path, sizeof(path), "%s/relay/relay.db", w->dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_key(db, raw, (int)strlen(raw)), SQLITE_OK);
    kurer_memzero(raw, sizeof(raw));
    return db;
}

/* One integer from a query (-1 if it fails: for dbstat, which a build may lack). */
static int64_t query(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Bytes of the pages in use (page_count - freelist_count, times the page size). */
static int64_t used_bytes(sqlite3 *db)
{
    return (query(db, "PRAGMA page_count") - query(db, "PRAGMA freelist_count")) *
           query(db, "PRAGMA page_size");
}

/* ---- the sender's side -------------------------------------------------------------------- */

static kurer_client_frame part(const uint8_t id[16], uint32_t n, const uint8_t *content, size_t len,
                               const kurer_fanout_user *users, size_t n_users, int final)
{
    kurer_client_frame f;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_FANOUT;
    memcpy(f.u.fanout.id, id, 16);
    f.u.fanout.part = n;
    if (n == 0) {
        f.u.fanout.type = KURER_ENVELOPE_SENDER_KEY;
        f.u.fanout.content = content;
        f.u.fanout.content_len = len;
    }
    f.u.fanout.users = users;
    f.u.fanout.n_users = n_users;
    f.u.fanout.final = final;
    return f;
}

/* Sends a part and returns its answer's body (the Error's code as a negative number). */
static int send_part(client *cl, kurer_client_frame *q, kurer_server_frame *r)
{
    wait_answer(cl, cl_send(cl, q), r);
    return r->body == KURER_SERVER_ERROR ? r->u.error.code : (int)r->body;
}

/* The next Deliver of cl: the fan-out's envelope, addressed to the device itself. */
static uint64_t expect_fanout(client *cl, const device *me, const uint8_t id[16],
                              const uint8_t *content, size_t len)
{
    kurer_server_frame f;
    expect_body(cl, &f, KURER_SERVER_DELIVER);
    const kurer_envelope *e = &f.u.deliver.envelope;
    assert_memory_equal(e->id, id, 16);
    assert_int_equal(e->type, KURER_ENVELOPE_SENDER_KEY);
    assert_string_equal(e->to.user, me->addr.user);
    assert_int_equal(e->to.device_id, me->addr.device_id);
    assert_string_equal(e->from.user, "anna@mof"); /* set by the relay */
    assert_int_equal(e->from.device_id, 1);
    assert_true(e->server_ts > 0);
    assert_int_equal(e->content_len, len);
    assert_memory_equal(e->content, content, len);
    uint64_t seq = f.u.deliver.seq;
    kurer_server_frame_release(&f);
    return seq;
}

static void ack_seq(client *cl, uint64_t seq)
{
    kurer_client_frame a;
    kurer_server_frame r;
    memset(&a, 0, sizeof(a));
    a.body = KURER_CLIENT_ACK;
    a.u.ack.seqs = &seq;
    a.u.ack.n = 1;
    wait_answer(cl, cl_send(cl, &a), &r);
    assert_int_equal(r.body, KURER_SERVER_OK);
    kurer_server_frame_release(&r);
}

/* Connects d once so that the relay's directory holds it. */
static void enrol(world *w, const device *d)
{
    client c;
    assert_int_equal(cl_connect(w, &c, d), 0);
    cl_free(&c);
}

static void drain_empty(client *cl)
{
    kurer_server_frame f;
    expect_body(cl, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
}

static void test_delivery(void **state)
{
    world *w = *state;
    device a, bo1, bo2, cy, dan, eve, ghost;
    client ca, cbo1, ccy, c;
    kurer_server_frame r;
    static uint8_t content[3000];
    uint8_t id[16];
    for (size_t i = 0; i < sizeof(content); i++)
        content[i] = (uint8_t)(i * 13 + 1);
    kurer_random(id, sizeof(id));
    start_relay(w, NULL, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &bo1, "bo@mof", 1, 11, 0, 0, 0);
    make_device(w, &bo2, "bo@mof", 2, 12, 0, 0, 0);
    make_device(w, &cy, "cy@mof", 1, 13, 0, 0, 0);
    make_device(w, &dan, "dan@mof", 1, 14, 0, 0, 0);
    make_device(w, &eve, "eve@mof", 1, 15, 0, 0, 0);
    make_device(w, &ghost, "ghost@mof", 1, 16, 0, 0, 0); /* never connects: unknown */
    enrol(w, &bo2);
    enrol(w, &dan);
    enrol(w, &eve);
    assert_int_equal(cl_connect(w, &cbo1, &bo1), 0);
    drain_empty(&cbo1);
    assert_int_equal(cl_connect(w, &ccy, &cy), 0);
    drain_empty(&ccy);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    drain_empty(&ca);

    kurer_fanout_device d_bo[2] = {{1, 11}, {2, 12}}, d_cy = {1, 13}, d_dan = {1, 0};
    kurer_fanout_device d_eve = {1, 99}, d_ghost = {1, 16}; /* eve: another certificate */
    kurer_fanout_user first[2] = {{"bo@mof", d_bo, 2}, {"cy@mof", &d_cy, 1}};
    kurer_fanout_user second[3] = {
        {"dan@mof", &d_dan, 1}, {"ghost@mof", &d_ghost, 1}, {"eve@mof", &d_eve, 1}};
    kurer_client_frame q = part(id, 0, content, sizeof(content), first, 2, 0);
    assert_int_equal(send_part(&ca, &q, &r), KURER_SERVER_OK);
    kurer_server_frame_release(&r);
    q = part(id, 1, NULL, 0, second, 3, 1);
    assert_int_equal(send_part(&ca, &q, &r), KURER_SERVER_FANOUT_RESULT);
    assert_memory_equal(r.u.fanout_result.id, id, 16);
    assert_int_equal(r.u.fanout_result.accepted, 3); /* bo, cy, dan */
    assert_int_equal(r.u.fanout_result.n_refused, 2);
    assert_int_equal(r.u.fanout_result.lists_omitted, 0);
    for (size_t i = 0; i < 2; i++) {
        const kurer_user_result *u = &r.u.fanout_result.refused[i];
        if (strcmp(u->user, "ghost@mof") == 0) {
            assert_int_equal(u->status, KURER_SEND_UNKNOWN_USER);
        } else {
            assert_string_equal(u->user, "eve@mof");
            assert_int_equal(u->status, KURER_SEND_STALE_DEVICES);
            assert_int_equal(u->current.n_devices, 1); /* the current list */
        }
    }
    kurer_server_frame_release(&r);
    printf("fanout delivery: 3 users accepted (4 devices), ghost unknown, eve stale\n");

    /* the online devices: at once, as ordinary envelopes */
    ack_seq(&cbo1, expect_fanout(&cbo1, &bo1, id, content, sizeof(content)));
    ack_seq(&ccy, expect_fanout(&ccy, &cy, id, content, sizeof(content)));
    cl_free(&cbo1);
    cl_free(&ccy);
    cl_free(&ca);
    assert_int_equal(stop_relay(w, SIGTERM), 0);
    sqlite3 *db = open_store(w);
    assert_int_equal(query(db, "SELECT count(*) FROM fanout_payloads"), 1);
    assert_int_equal(query(db, "SELECT count(*) FROM fanout_refs"), 2); /* bo's 2nd, dan */
    sqlite3_close(db);

    /* the offline devices, after a restart, from the store */
    start_relay(w, NULL, NULL);
    assert_int_equal(cl_connect(w, &c, &bo2), 0);
    assert_int_equal(c.acc.queued, 1);
    ack_seq(&c, expect_fanout(&c, &bo2, id, content, sizeof(content)));
    cl_free(&c);
    assert_int_equal(cl_connect(w, &c, &dan), 0);
    uint64_t seq = expect_fanout(&c, &dan, id, content, sizeof(content));
    drain_empty(&c);
    ack_seq(&c, seq);
    cl_free(&c);
    assert_int_equal(stop_relay(w, SIGTERM), 0);
    db = open_store(w);
    assert_int_equal(query(db, "SELECT count(*) FROM fanout_refs"), 0);
    assert_int_equal(query(db, "SELECT count(*) FROM fanout_payloads"), 0); /* the last ack */
    sqlite3_close(db);
}

/* Every recipient online and acking at once: the references meet their acks in the store
 * (ack_hold_us) and neither they nor the shared bytes are ever written; the sender is told
 * ACCEPTED all the same (durable at the recipients). */
static void test_all_online(void **state)
{
    world *w = *state;
    device a, bo, cy;
    client ca, cbo, ccy;
    kurer_server_frame r;
    uint8_t id[16], content[200];
    kurer_random(id, sizeof(id));
    memset(content, 0x33, sizeof(content));
    const char *extra[] = {"--metrics", "127.0.0.1:0"};
    start_relay_v(w, extra, 2);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &bo, "bo@mof", 1, 11, 0, 0, 0);
    make_device(w, &cy, "cy@mof", 1, 12, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cbo, &bo), 0);
    drain_empty(&cbo);
    assert_int_equal(cl_connect(w, &ccy, &cy), 0);
    drain_empty(&ccy);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    drain_empty(&ca); /* its connect's fetch is done: no fetch makes the store write the put */
    kurer_fanout_device d_bo = {1, 11}, d_cy = {1, 12};
    kurer_fanout_user u[2] = {{"bo@mof", &d_bo, 1}, {"cy@mof", &d_cy, 1}};
    kurer_client_frame q = part(id, 0, content, sizeof(content), u, 2, 1);
    uint64_t rid = cl_send(&ca, &q);
    ack_seq(&cbo, expect_fanout(&cbo, &bo, id, content, sizeof(content)));
    ack_seq(&ccy, expect_fanout(&ccy, &cy, id, content, sizeof(content)));
    wait_answer(&ca, rid, &r);
    assert_int_equal(r.body, KURER_SERVER_FANOUT_RESULT);
    assert_int_equal(r.u.fanout_result.accepted, 2);
    kurer_server_frame_release(&r);
    char *page = scrape(w);
    uint64_t skipped = metric(page, "kurer_envelopes_write_skipped_total");
    free(page);
    cl_free(&ca);
    cl_free(&cbo);
    cl_free(&ccy);
    assert_int_equal(stop_relay(w, SIGTERM), 0);
    sqlite3 *db = open_store(w);
    int64_t payloads = query(db, "SELECT count(*) FROM fanout_payloads");
    sqlite3_close(db);
    printf("fanout all online: %llu references never written, %lld payload rows\n",
           (unsigned long long)skipped, (long long)payloads);
    assert_int_equal(payloads, 0);
    assert_int_equal(skipped, 2);
}

static void test_refused(void **state)
{
    world *w = *state;
    device a, bo;
    client ca;
    kurer_server_frame r;
    static uint8_t content[100];
    static kurer_fanout_device devs[KURER_USER_DEVICES_MAX];
    static kurer_fanout_user many[KURER_FANOUT_DEVICES_MAX / KURER_USER_DEVICES_MAX];
    static char names[KURER_FANOUT_DEVICES_MAX / KURER_USER_DEVICES_MAX][24];
    uint8_t id[16] = {1}, other[16] = {2};
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "mailbox_max = 1\n";
    write_file(cfg, conf, strlen(conf));
    const char *extra[] = {"--metrics", "127.0.0.1:0", "--config", cfg};
    start_relay_v(w, extra, 4);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &bo, "bo@mof", 1, 11, 0, 0, 0);
    enrol(w, &bo);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    kurer_fanout_device d = {1, 0};
    kurer_fanout_user u = {"bo@mof", &d, 1};

    /* a later part without its first */
    kurer_client_frame q = part(id, 1, NULL, 0, &u, 1, 1);
    assert_int_equal(send_part(&ca, &q, &r), KURER_EMALFORMED);
    kurer_server_frame_release(&r);
    /* a part of another send, and one out of order */
    q = part(id, 0, content, sizeof(content), &u, 1, 0);
    assert_int_equal(send_part(&ca, &q, &r), KURER_SERVER_OK);
    kurer_server_frame_release(&r);
    q = part(other, 1, NULL, 0, &u, 1, 1);
    assert_int_equal(send_part(&ca, &q, &r), KURER_EMALFORMED);
    kurer_server_frame_release(&r);
    /* one user in two parts */
    q = part(id, 0, content, sizeof(content), &u, 1, 0);
    assert_int_equal(send_part(&ca, &q, &r), KURER_SERVER_OK);
    kurer_server_frame_release(&r);
    q = part(id, 1, NULL, 0, &u, 1, 1);
    assert_int_equal(send_part(&ca, &q, &r), KURER_EDUPLICATE);
    kurer_server_frame_release(&r);
    /* more devices than KURER_FANOUT_DEVICES_MAX over two parts */
    for (uint32_t i = 0; i < KURER_USER_DEVICES_MAX; i++)
        devs[i].device_id = i + 1;
    size_t n_many = KURER_FANOUT_DEVICES_MAX / KURER_USER_DEVICES_MAX;
    for (size_t i = 0; i < n_many; i++) {
        snprintf(names[i], sizeof(names[i]), "m%zu@mof", i);
        many[i] = (kurer_fanout_user){names[i], devs, KURER_USER_DEVICES_MAX};
    }
    q = part(id, 0, content, sizeof(content), many, n_many, 0); /* 4000: at the bound */
    assert_int_equal(send_part(&ca, &q, &r), KURER_SERVER_OK);
    kurer_server_frame_release(&r);
    q = part(id, 1, NULL, 0, &u, 1, 1);
    assert_int_equal(send_part(&ca, &q, &r), KURER_ELIMIT);
    kurer_server_frame_release(&r);
    /* still served: a good send after all of it */
    q = part(id, 0, content, sizeof(content), &u, 1, 1);
    assert_int_equal(send_part(&ca, &q, &r), KURER_SERVER_FANOUT_RESULT);
    assert_int_equal(r.u.fanout_result.accepted, 1);
    kurer_server_frame_release(&r);
    /* bo's mailbox (mailbox_max 1) is full now: the store refuses the next one */
    assert_int_equal(send_part(&ca, &q, &r), KURER_ELIMIT);
    kurer_server_frame_release(&r);
    cl_free(&ca);
    char *page = scrape(w);
    assert_int_equal(metric(page, "kurer_fanout_sends_refused_total"), 5);
    assert_int_equal(metric(page, "kurer_mailbox_full_refused_total"), 1);
    assert_int_equal(metric(page, "kurer_fanout_sends_accepted_total"), 1);
    assert_int_equal(metric(page, "kurer_fanout_references_total"), 1);
    printf("fanout refused: 5 sends refused whole, counted\n");
    free(page);
}

#define BOUND_N 1000

static void test_bound(void **state)
{
    world *w = *state;
    static device devs[BOUND_N];
    static kurer_fanout_device fd[BOUND_N];
    static kurer_fanout_user users[BOUND_N];
    static uint8_t content[1000];
    device a;
    client ca;
    kurer_server_frame r;
    uint8_t id[16];
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "handshake_rate = 100000\n";
    write_file(cfg, conf, strlen(conf));
    const char *extra[] = {"--config", cfg};
    kurer_random(content, sizeof(content));
    kurer_random(id, sizeof(id));
    start_relay_v(w, extra, 2);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    enrol(w, &a);
    for (uint32_t i = 0; i < BOUND_N; i++) {
        char user[32];
        snprintf(user, sizeof(user), "m%04u@mof", i);
        make_device(w, &devs[i], user, 1, 1000 + i, 0, 0, 0);
        enrol(w, &devs[i]);
        fd[i] = (kurer_fanout_device){1, 1000 + i};
        users[i] = (kurer_fanout_user){devs[i].addr.user, &fd[i], 1};
    }
    assert_int_equal(stop_relay(w, SIGTERM), 0);
    sqlite3 *db = open_store(w);
    int64_t before = used_bytes(db);
    sqlite3_close(db);

    start_relay_v(w, extra, 2);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    kurer_client_frame q = part(id, 0, content, sizeof(content), users, BOUND_N / 2, 0);
    assert_int_equal(send_part(&ca, &q, &r), KURER_SERVER_OK);
    kurer_server_frame_release(&r);
    q = part(id, 1, NULL, 0, users + BOUND_N / 2, BOUND_N - BOUND_N / 2, 1);
    uint64_t t0 = kurer_time_mono_ms();
    assert_int_equal(send_part(&ca, &q, &r), KURER_SERVER_FANOUT_RESULT);
    printf("fanout bound: the final part answered (1,000 devices checked, stored, committed) "
           "in %llu ms\n",
           (unsigned long long)(kurer_time_mono_ms() - t0));
    assert_int_equal(r.u.fanout_result.accepted, BOUND_N);
    assert_int_equal(r.u.fanout_result.n_refused, 0);
    kurer_server_frame_release(&r);
    cl_free(&ca);
    assert_int_equal(stop_relay(w, SIGTERM), 0);

    db = open_store(w);
    int64_t after = used_bytes(db);
    int64_t shared = query(db, "SELECT sum(length(env)) FROM fanout_payloads");
    int64_t refs = query(db, "SELECT count(*) FROM fanout_refs");
    int64_t stat = query(db, "SELECT sum(pgsize) FROM dbstat WHERE name IN ('fanout_refs', "
                             "'fanout_payloads')");
    sqlite3_close(db);
    int64_t grown = after - before, bound = (int64_t)sizeof(content) + 64 * BOUND_N;
    printf("fanout bound: N=%d devices, payload %zu bytes (stored with its envelope fields: "
           "%lld), references %lld; store pages in use grew %lld bytes (%lld before, %lld "
           "after; %.1f bytes per device over the payload); dbstat: %lld; bound payload + 64 "
           "per device = %lld\n",
           BOUND_N, sizeof(content), (long long)shared, (long long)refs, (long long)grown,
           (long long)before, (long long)after,
           (double)(grown - (int64_t)sizeof(content)) / BOUND_N, (long long)stat, (long long)bound);
    assert_int_equal(refs, BOUND_N);
    assert_true(grown > 0);
    assert_true(grown <= bound);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_online, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
