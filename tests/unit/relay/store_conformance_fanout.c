/* The conformance case of fan-out puts (kurer_store_put_fanout): the shared bytes once, a
 * reference per device with that device's own seq, fetched as the whole envelope (exactly what
 * kurer_envelope_encode gives for that device) among the device's other envelopes, counted by
 * the mailbox limits, removed by the device's ack, and the shared bytes gone with the last
 * reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SQLITE_HAS_CODEC 1
#include <sqlite3.h>

#include "kurer/util.h"
#include "store.h"
#include "store_conformance.h"

typedef struct fo_fx {
    fx *f;
    uint64_t seqs[8];
    size_t n_seqs;
    uint8_t env[4][2048]; /* the rows of the last fetch, whole */
    size_t len[4];
    uint64_t row_seq[4];
    size_t n_rows;
    uint64_t total;
} fo_fx;

static void fo_seqs(void *arg, const uint64_t *seqs, const uint64_t *prev, size_t n)
{
    fo_fx *t = arg;
    (void)prev;
    t->n_seqs = n < 8 ? n : 8;
    memcpy(t->seqs, seqs, t->n_seqs * sizeof(*seqs));
}

static void fo_put(void *arg, int err, const uint64_t *seqs, size_t n, size_t cancelled)
{
    fo_fx *t = arg;
    (void)seqs;
    (void)n;
    (void)cancelled;
    t->f->err = err;
    t->f->done++;
}

static void fo_fetch(void *arg, int err, const kurer_store_row *rows, size_t n, uint64_t total,
                     uint64_t high)
{
    fo_fx *t = arg;
    (void)high;
    t->f->err = err;
    t->total = total;
    t->n_rows = n < 4 ? n : 4;
    for (size_t i = 0; i < t->n_rows; i++) {
        assert_true(rows[i].len <= sizeof(t->env[i]));
        memcpy(t->env[i], rows[i].env, rows[i].len);
        t->len[i] = rows[i].len;
        t->row_seq[i] = rows[i].seq;
    }
    t->f->done++;
}

static void fo_done(void *arg, int err)
{
    fo_fx *t = arg;
    t->f->err = err;
    t->f->done++;
}

static int put_fanout(fo_fx *t, const kurer_store_item *items, size_t n, const kurer_buf *shared,
                      const kurer_store_limits *lim)
{
    kurer_store_put_req req = {items, n, {0, 0}, 0, fo_seqs, fo_put, t};
    if (lim != NULL)
        req.lim = *lim;
    int want = t->f->done + 1;
    assert_int_equal(kurer_store_put_fanout(t->f->s, &req, shared->data, shared->len), 0);
    wait_done(t->f, want);
    return t->f->err;
}

static void fetch_all(fo_fx *t, const char *user, uint32_t dev)
{
    kurer_device_address a = addr(user, dev);
    int want = t->f->done + 1;
    assert_int_equal(kurer_store_fetch(t->f->s, &a, 0, 4, fo_fetch, t), 0);
    wait_done(t->f, want);
    assert_int_equal(t->f->err, 0);
}

static void ack_one(fo_fx *t, const char *user, uint32_t dev, uint64_t seq)
{
    kurer_device_address a = addr(user, dev);
    int want = t->f->done + 1;
    assert_int_equal(kurer_store_ack(t->f->s, &a, &seq, 1, fo_done, t), 0);
    wait_done(t->f, want);
    assert_int_equal(t->f->err, 0);
}

/* The rows of fanout_payloads in the case's store (the store closed first for sqlite, which
 * holds its file exclusively). */
static long payload_rows(fx *f)
{
    long n = -1;
    if (is_pg(f)) {
        /* pg_sql fails the case on an error: a division by zero says "not empty" */
        pg_sql(f->dir, "SELECT 1 / (CASE WHEN (SELECT count(*) FROM fanout_payloads) = 0 THEN 1 "
                       "ELSE 0 END)");
        return 0;
    }
    char path[300], raw[2 * 32 + 4];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    kurer_store_close(f->s);
    f->s = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    snprintf(path, sizeof(path), "%s/relay.db", f->dir);
    raw[0] = 'x';
    raw[1] = '\'';
    kurer_hex_encode(raw + 2, f->key, 32);
    raw[66] = '\'';
    raw[67] = 0;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_key(db, raw, (int)strlen(raw)), SQLITE_OK);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM fanout_payloads", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

void test_fanout(void **state)
{
    fx *f = *state;
    fo_fx t;
    static uint8_t content[1000];
    memset(&t, 0, sizeof(t));
    t.f = f;
    memset(content, 'q', sizeof(content));
    kurer_envelope e;
    memset(&e, 0, sizeof(e));
    memset(e.id, 7, sizeof(e.id));
    e.to = addr("ana@x", 1);
    e.has_from = 1;
    e.from = addr("bo@x", 1);
    e.type = KURER_ENVELOPE_SENDER_KEY;
    e.content = content;
    e.content_len = sizeof(content);
    e.server_ts = 1800000000000;
    kurer_buf shared;
    kurer_buf_init(&shared, KURER_FRAME_MAX);
    assert_int_equal(kurer_fanout_shared_encode(&e, &shared), 0);
    uint64_t own;
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', NULL, &own), 0);

    kurer_store_item items[3];
    memset(items, 0, sizeof(items));
    const char *users[3] = {"ana@x", "ana@x", "cy@x"};
    uint32_t devs[3] = {1, 2, 1};
    for (int i = 0; i < 3; i++) {
        items[i].to = addr(users[i], devs[i]);
        items[i].from = addr("bo@x", 1);
    }
    assert_int_equal(put_fanout(&t, items, 3, &shared, NULL), 0);
    assert_int_equal(t.n_seqs, 3);
    uint64_t s[3];
    memcpy(s, t.seqs, sizeof(s));
    assert_true(s[0] > own); /* ana's device 1: after its own envelope */

    /* each device sees the whole envelope, addressed to itself, in seq order */
    fetch_all(&t, "ana@x", 1);
    assert_int_equal(t.total, 2);
    assert_int_equal(t.n_rows, 2);
    assert_int_equal(t.row_seq[0], own);
    assert_int_equal(t.row_seq[1], s[0]);
    for (int i = 0; i < 3; i++) {
        kurer_buf want;
        kurer_buf_init(&want, KURER_FRAME_MAX);
        e.to = items[i].to;
        assert_int_equal(kurer_envelope_encode(&e, &want), 0);
        fetch_all(&t, users[i], devs[i]);
        size_t r = t.n_rows - 1;
        assert_int_equal(t.row_seq[r], s[i]);
        assert_int_equal(t.len[r], want.len);
        assert_memory_equal(t.env[r], want.data, want.len);
        kurer_buf_release(&want);
    }

    /* a reference counts in the mailbox, and in its sender's share */
    kurer_store_limits full = {2, 0}, share = {0, 1};
    assert_int_equal(put_fanout(&t, items, 1, &shared, &full), KURER_ELIMIT);
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'b', &full, NULL), KURER_ELIMIT);
    assert_int_equal(put_fanout(&t, items + 2, 1, &shared, &share), KURER_ELIMIT);
    assert_int_equal(put_one(f, "cy@x", 1, "dan@x", 'd', &share, NULL), 0); /* another sender */

    /* acks: each device's own reference only; the shared bytes stay until the last */
    ack_one(&t, "ana@x", 1, s[0] + 1000); /* a seq it does not hold: nothing */
    ack_one(&t, "ana@x", 1, s[0]);
    fetch_all(&t, "ana@x", 1);
    assert_int_equal(t.total, 1);
    ack_one(&t, "ana@x", 2, s[1]);
    fetch_all(&t, "cy@x", 1);
    assert_int_equal(t.total, 2);
    assert_int_equal(t.row_seq[0], s[2]);
    ack_one(&t, "cy@x", 1, s[2]);
    fetch_all(&t, "cy@x", 1);
    assert_int_equal(t.total, 1);
    kurer_buf_release(&shared);
    assert_int_equal(payload_rows(f), 0);
}
