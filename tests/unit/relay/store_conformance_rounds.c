/* Conformance cases of several rounds or stores: two relay nodes over one database, a lost
 * connection, a round larger than a pipeline chunk with limits counted across its puts, a
 * statement that fails inside the pipeline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kurer/util.h"
#include "store.h"
#include "store_queue.h"
#include "store_conformance.h"

typedef struct nodes {
    uint64_t seqs[64];
    uint32_t ids[64];
    size_t n, n_ids, done;
    int err;
} nodes;

static void nodes_put(void *arg, int err, const uint64_t *seqs, size_t n, size_t cancelled)
{
    nodes *t = arg;
    (void)cancelled;
    t->err |= err;
    for (size_t i = 0; i < n && t->n < 64; i++)
        t->seqs[t->n++] = seqs[i];
    t->done++;
}

static void nodes_take(void *arg, int err, const kurer_store_bundle *b, size_t n)
{
    nodes *t = arg;
    t->err |= err;
    for (size_t i = 0; i < n && t->n_ids < 64; i++)
        if (b[i].has_one_time)
            t->ids[t->n_ids++] = b[i].one_time.id;
    t->done++;
}

static void nodes_wait(fx *f, nodes *t, size_t want)
{
    uint64_t end = kurer_time_mono_ms() + 10000;
    while (t->done < want && kurer_time_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (t->done < want)
            usleep(200);
    }
    assert_int_equal(t->done, want);
    assert_int_equal(t->err, 0);
}

static void nodes_wait_flag(fx *f, const size_t *done, size_t want)
{
    uint64_t end = kurer_time_mono_ms() + 10000;
    while (*done < want && kurer_time_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (*done < want)
            usleep(200);
    }
    assert_int_equal(*done, want);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Two relay nodes (two stores over one database, their writers running at once): puts for one
 * device from both get distinct seqs without gaps, and a fetch sees them in seq order; takes
 * from both hand out each one-time prekey once. */
void test_two_nodes(void **state)
{
    fx *f = *state;
    SKIP_UNLESS(is_pg(f), "one relay holds a SQLCipher store (DIR/.lock): no second node");
    kurer_store *s2, *st[2];
    assert_int_equal(f->be->open(&s2, &f->loop, f->dir, f->key), 0);
    kurer_store_set_commit_delay(s2, 0);
    st[0] = f->s;
    st[1] = s2;
    nodes t;
    memset(&t, 0, sizeof(t));
    static uint8_t e[8] = "twonode";
    kurer_store_item it = {addr("ana@x", 1), addr("bo@x", 1), e, sizeof(e)};
    kurer_store_put_req req = {&it, 1, {0, 0}, 0, NULL, nodes_put, &t};
    for (int i = 0; i < 40; i++)
        assert_int_equal(kurer_store_put(st[i % 2], &req), 0);
    nodes_wait(f, &t, 40);
    qsort(t.seqs, t.n, sizeof(t.seqs[0]), cmp_u64);
    for (size_t i = 0; i < t.n; i++)
        assert_int_equal(t.seqs[i], t.seqs[0] + i); /* distinct, no gaps */
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->count, 40);
    assert_int_equal(f->high, t.seqs[39]);
    for (size_t i = 0; i < f->n_rows; i++)
        assert_int_equal(f->rows[i].seq, t.seqs[i]);
    /* 30 one-time prekeys, 40 takes from both nodes at once */
    kurer_one_time_prekey otk[30];
    kurer_store_prekeys p;
    memset(&p, 0, sizeof(p));
    memset(otk, 0, sizeof(otk));
    p.dev = addr("cy@x", 1);
    p.signed_prekey.id = 1;
    for (uint32_t i = 0; i < 30; i++)
        otk[i].id = i + 1;
    p.one_time = otk;
    p.n_one_time = 30;
    int want = f->done + 1;
    assert_int_equal(kurer_store_put_prekeys(f->s, &p, on_count, f), 0);
    wait_done(f, want);
    assert_int_equal(f->count, 30);
    memset(&t, 0, sizeof(t));
    for (int i = 0; i < 40; i++)
        assert_int_equal(kurer_store_take_prekeys(st[i % 2], &p.dev, 1, 1, nodes_take, &t), 0);
    nodes_wait(f, &t, 40);
    assert_int_equal(t.n_ids, 30);
    uint64_t ids[30];
    for (size_t i = 0; i < 30; i++)
        ids[i] = t.ids[i];
    qsort(ids, 30, sizeof(ids[0]), cmp_u64);
    for (size_t i = 0; i < 30; i++)
        assert_int_equal(ids[i], i + 1); /* each once */
    print_message("two nodes: 40 puts, seqs without gaps; 40 takes, 30 prekeys, none twice\n");
    kurer_store_close(s2);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static int round_errs[2];
static size_t round_done;

static void on_round_put(void *arg, int err, const uint64_t *seqs, size_t n, size_t cancelled)
{
    (void)arg, (void)seqs, (void)n, (void)cancelled;
    if (round_done < 2)
        round_errs[round_done] = err;
    round_done++;
}

/* A round larger than a pipeline chunk (300 items, their limit counts too), and limits counted
 * across the puts of one round: the second of two puts that fit alone but not together is
 * refused. */
void test_big_round(void **state)
{
    fx *f = *state;
    static kurer_store_item its[300];
    static uint8_t e[8] = "big";
    static const char *const users[] = {"ana@x", "bo@x", "cy@x"};
    for (size_t i = 0; i < 300; i++) {
        its[i].to = addr(users[i % 3], 1);
        its[i].from = addr("di@x", 1);
        its[i].env = e;
        its[i].len = sizeof(e);
    }
    kurer_store_put_req req = {its, 300, {1000, 1000}, 0, NULL, on_round_put, f};
    round_done = 0;
    assert_int_equal(kurer_store_put(f->s, &req), 0);
    nodes_wait_flag(f, &round_done, 1);
    assert_int_equal(round_errs[0], 0);
    fetch(f, "bo@x", 1, 0, 16);
    assert_int_equal(f->count, 100);
    for (size_t i = 0; i < 100; i++)
        its[i].to = addr("eve@x", 1);
    kurer_store_put_req a = {its, 100, {150, 0}, 0, NULL, on_round_put, f};
    kurer_store_set_commit_delay(f->s, 200000); /* both in one round */
    round_done = 0;
    assert_int_equal(kurer_store_put(f->s, &a), 0);
    assert_int_equal(kurer_store_put(f->s, &a), 0);
    nodes_wait_flag(f, &round_done, 2);
    kurer_store_set_commit_delay(f->s, 0);
    assert_int_equal(round_errs[0], 0);
    assert_int_equal(round_errs[1], KURER_ELIMIT);
    fetch(f, "eve@x", 1, 0, 16);
    assert_int_equal(f->count, 100);
}

#define BACKLOG 2500

typedef struct backlog_put {
    uint64_t seq;
    int err, calls;
} backlog_put;

static void on_backlog_put(void *arg, int err, const uint64_t *seqs, size_t n, size_t cancelled)
{
    backlog_put *b = arg;
    (void)cancelled;
    b->err = err;
    b->seq = err == 0 && n == 1 ? seqs[0] : 0;
    b->calls++;
}

/* The bytes' cap: 80 puts of 60,000 bytes (4.8 MB) at once are more than one round on the loop
 * may hold (KURER__STOREQ_TAKE_BYTES). */
static void capped_bytes(fx *f)
{
    enum { N = 80, LEN = 60000 };
    static backlog_put b[N];
    static uint8_t e[LEN];
    memset(e, 'y', sizeof(e));
    memset(b, 0, sizeof(b));
    kurer_store_item it = {addr("cy@x", 1), addr("bo@x", 1), e, sizeof(e)};
    kurer_store_stats before, after;
    kurer_store_get_stats(f->s, &before);
    kurer_store_set_commit_delay(f->s, 300000);
    for (size_t k = 0; k < N; k++) {
        kurer_store_put_req req = {&it, 1, {0, 0}, 0, NULL, on_backlog_put, &b[k]};
        assert_int_equal(kurer_store_put(f->s, &req), 0);
    }
    uint64_t end = kurer_time_mono_ms() + 30000;
    while (b[N - 1].calls == 0 && kurer_time_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    kurer_store_set_commit_delay(f->s, 0);
    kurer_store_get_stats(f->s, &after);
    print_message("capped rounds: %d puts of %d bytes stored in %llu rounds\n", N, LEN,
                  (unsigned long long)(after.commits - before.commits));
    for (size_t k = 0; k < N; k++) {
        assert_int_equal(b[k].calls, 1);
        assert_int_equal(b[k].err, 0);
        assert_int_equal(b[k].seq, b[0].seq + k);
    }
    if (is_pg(f))
        assert_true(after.commits - before.commits >= 2);
}

/* A backlog larger than a round on the loop may hold (the postgres pool takes at most
 * KURER__STOREQ_TAKE_ITEMS items a round): submitted at once, it is stored in several rounds,
 * every put accepted once, the seqs in submission order without gaps. */
void test_capped_rounds(void **state)
{
    fx *f = *state;
    static backlog_put b[BACKLOG];
    static uint8_t e[8] = "backlog";
    kurer_store_item it = {addr("ana@x", 1), addr("bo@x", 1), e, sizeof(e)};
    kurer_store_stats before, after;
    memset(b, 0, sizeof(b));
    kurer_store_get_stats(f->s, &before);
    kurer_store_set_commit_delay(f->s, 300000); /* all of it waits for the first round */
    for (size_t k = 0; k < BACKLOG; k++) {
        kurer_store_put_req req = {&it, 1, {BACKLOG, BACKLOG}, 0, NULL, on_backlog_put, &b[k]};
        assert_int_equal(kurer_store_put(f->s, &req), 0);
    }
    size_t done = 0;
    uint64_t end = kurer_time_mono_ms() + 30000;
    while (done < BACKLOG && kurer_time_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(200);
        for (done = 0; done < BACKLOG && b[done].calls > 0; done++)
            ;
    }
    kurer_store_set_commit_delay(f->s, 0);
    kurer_store_get_stats(f->s, &after);
    uint64_t rounds = after.commits - before.commits;
    print_message("capped rounds: %d puts stored in %llu rounds, the last of %llu\n", BACKLOG,
                  (unsigned long long)rounds, (unsigned long long)after.last_batch);
    assert_int_equal(done, BACKLOG);
    for (size_t k = 0; k < BACKLOG; k++) {
        assert_int_equal(b[k].calls, 1);
        assert_int_equal(b[k].err, 0);
        assert_int_equal(b[k].seq, b[0].seq + k); /* in submission order, no gaps */
    }
    if (is_pg(f)) {
        assert_true(rounds >= (BACKLOG + KURER__STOREQ_TAKE_ITEMS - 1) / KURER__STOREQ_TAKE_ITEMS);
        assert_true(after.last_batch <= KURER__STOREQ_TAKE_ITEMS);
    }
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->count, BACKLOG);
    assert_int_equal(f->high, b[BACKLOG - 1].seq);
    capped_bytes(f);
}

/* A connection the server ends before the round that meets it sent its COMMIT: the store
 * connects again and runs that round on the new connection (it was not committed), and what was
 * accepted is all there, in seq order. */
void test_reconnect(void **state)
{
    fx *f = *state;
    SKIP_UNLESS(is_pg(f), "an embedded store has no connection to lose");
    uint64_t s1, s2;
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', NULL, &s1), 0);
    uint64_t sb;
    pg_kill_connections(f->dir);
    /* lost before its COMMIT was sent: not committed, so run again on a new connection */
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'b', NULL, &sb), 0);
    assert_true(sb > s1);
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'c', NULL, &s2), 0);
    assert_true(s2 > sb);
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 3);
    assert_int_equal(f->bytes[0][0], 'a');
    assert_int_equal(f->bytes[1][0], 'b');
    assert_int_equal(f->bytes[2][0], 'c');
}

/* A statement that fails inside the pipeline (here a check the test adds to the table) fails
 * its whole round with ESTORAGE, writes nothing of it, and leaves the connection usable. */
void test_pipeline_error(void **state)
{
    fx *f = *state;
    SKIP_UNLESS(is_pg(f), "no pipeline: SQLite runs in the process");
    pg_sql(f->dir, "ALTER TABLE mailbox ADD CONSTRAINT small CHECK (length(env) < 100)");
    static uint8_t small[8] = "small", big[200];
    kurer_store_item a = {addr("ana@x", 1), addr("bo@x", 1), small, sizeof(small)};
    kurer_store_item b = {addr("ana@x", 1), addr("bo@x", 1), big, sizeof(big)};
    kurer_store_put_req ra = {&a, 1, {10, 10}, 0, NULL, on_round_put, f};
    kurer_store_put_req rb = {&b, 1, {10, 10}, 0, NULL, on_round_put, f};
    kurer_store_set_commit_delay(f->s, 200000); /* both in one round */
    round_done = 0;
    assert_int_equal(kurer_store_put(f->s, &ra), 0);
    assert_int_equal(kurer_store_put(f->s, &rb), 0);
    nodes_wait_flag(f, &round_done, 2);
    kurer_store_set_commit_delay(f->s, 0);
    assert_int_equal(round_errs[0], KURER_ESTORAGE);
    assert_int_equal(round_errs[1], KURER_ESTORAGE);
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->count, 0);
    uint64_t s1;
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', NULL, &s1), 0);
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->count, 1);
    assert_int_equal(f->rows[0].seq, s1);
}

/* Runs the loop for ms (the store's connections work meanwhile). */
static void spin(fx *f, uint64_t ms)
{
    uint64_t end = kurer_time_mono_ms() + ms;
    while (kurer_time_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(200);
    }
}

/* A connection lost while its round's COMMIT is in flight (the server ends the backend while
 * the commit waits, here in a deferred trigger that waits for an advisory lock the test holds,
 * as it would wait for a standby's flush): the put is not answered meanwhile; on the new
 * connection the round is found not committed (kurer_rounds) and runs again, and is answered
 * once that commit returned; its envelope is stored once. */
void test_commit_lost(void **state)
{
    fx *f = *state;
    SKIP_UNLESS(is_pg(f), "an embedded store has no connection to lose");
    pg_sql(f->dir, "CREATE FUNCTION kr_slow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN IF "
                   "NEW.usr = 'bo@x'::bytea THEN PERFORM pg_advisory_xact_lock(4243); END IF; "
                   "RETURN NULL; END$$; CREATE CONSTRAINT TRIGGER kr_slow AFTER INSERT ON mailbox "
                   "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kr_slow()");
    void *lock = pg_hold(f->dir, "SELECT pg_advisory_lock(4243)");
    static uint8_t env[32];
    memset(env, 'z', sizeof(env));
    kurer_store_item a = {addr("bo@x", 1), addr("ana@x", 1), env, sizeof(env)};
    kurer_store_put_req req = {&a, 1, {10, 10}, 0, NULL, on_round_put, f};
    round_done = 0;
    assert_int_equal(kurer_store_put(f->s, &req), 0);
    spin(f, 500); /* its COMMIT waits for the lock */
    assert_int_equal(round_done, 0);
    pg_sql(f->dir, "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks WHERE locktype = "
                   "'advisory' AND NOT granted");
    spin(f, 1000); /* reconnected, found not committed, run again: waits for the lock again */
    assert_int_equal(round_done, 0);
    pg_release(lock, "SELECT pg_advisory_unlock(4243)");
    nodes_wait_flag(f, &round_done, 1);
    assert_int_equal(round_errs[0], 0);
    fetch(f, "bo@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 1); /* once */
    assert_int_equal(f->bytes[0][0], 'z');
    fprintf(stderr, "commit_lost: sent 1, accepted %d, stored %zu, lost 0, duplicated 0\n",
            round_errs[0] == 0, f->n_rows);
}
