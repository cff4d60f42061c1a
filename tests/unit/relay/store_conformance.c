/* The relay store conformance suite (issue 10): what every backend of relay/store.h must do,
 * parametrised by the backend's constructor: `test_store_conformance_sqlite test_<case>
 * [sqlite|postgres]` (ctest: store_conformance_<backend>_<case>). The postgres backend needs a
 * server: KURER_PG_CONNINFO_FILE names a file with a libpq connection string of a role that may
 * create schemas (tests/pg/pg_server.sh writes one); each case's store is a schema of its own.
 *
 * Cases: the operations table (every entry set), order, ack, restart (nothing lost, seqs never
 * reused), per-device seqs (increasing per device, independent, never reused after a reopen,
 * not even those of envelopes never written, on_seqs before on_done with each seq's
 * predecessor, fetch's high), limits (mailbox_max and the per-sender share), put/ack pairing
 * (held puts cancelled by their acks, per device: another device's ack of the same seq cancels
 * nothing; a plain put and its ack in one batch), directory, prekeys handed out once (and the
 * per-taker bound's n_one_time), revocation list versions, the migrations (sqlite: an old file
 * brought up to date; postgres: a database of a newer relay refused), and in
 * store_conformance_rounds.c: two nodes over one database (postgres), a lost connection
 * (postgres), a round larger than a pipeline chunk with limits counted across its puts, a
 * statement failing inside the pipeline (postgres). A case
 * that cannot apply to a backend prints "SKIPPED for <backend>: <why>". (A backend that learns
 * seqs at its commit pairs nothing: the pairing cases then check that the ack deletes.) Every
 * callback runs on the loop, so each case runs the loop until its callbacks came. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* sqlite3_key: the sqlite backend's migration case makes an old store itself */
#define SQLITE_HAS_CODEC 1
#include <sqlite3.h>

#include "kurer/crypto.h"
#include "kurer/util.h"
#include "store.h"
#include "store_conformance.h"

/* ---- backends ------------------------------------------------------------------------------ */

static const backend backends[] = {
    {"sqlite", sqlite_open},
    {"postgres", pg_open},
};
const backend *current = &backends[0];

/* ---- fixture ------------------------------------------------------------------------------- */

static void fx_open(fx *f)
{
    assert_int_equal(f->be->open(&f->s, &f->loop, f->dir, f->key), 0);
    kurer_store_set_commit_delay(f->s, 0);
}

static void fx_close(fx *f)
{
    kurer_store_close(f->s);
    f->s = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the store's async handle closes */
}

static int setup_be(void **state, const backend *be)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(kurer_crypto_init(), 0);
    f->be = be;
    snprintf(f->dir, sizeof(f->dir), "/tmp/kurer-store-conf-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    kurer_random(f->key, sizeof(f->key));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    fx_open(f);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_be(state, current);
}

int is_pg(const void *fxp)
{
    return strcmp(((const fx *)fxp)->be->name, "postgres") == 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    if (f->s != NULL)
        fx_close(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Runs the loop until want callbacks have come (bounded: 10 s). */
void wait_done(fx *f, int want)
{
    uint64_t end = kurer_time_mono_ms() + 10000;
    /* never blocks in the loop: a callback that does not come fails the case */
    while (f->done < want && kurer_time_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (f->done < want)
            usleep(200);
    }
    assert_int_equal(f->done, want);
}

static void on_done(void *arg, int err);

static void on_seqs(void *arg, const uint64_t *seqs, const uint64_t *prev, size_t n)
{
    fx *f = arg;
    f->n_seqs = n < 8 ? n : 8;
    memcpy(f->seqs, seqs, f->n_seqs * sizeof(*seqs));
    memcpy(f->prev, prev, f->n_seqs * sizeof(*prev));
    f->seqs_before_done = 1;
    const kurer_device_address *a = f->ack_from_seqs;
    f->ack_from_seqs = NULL; /* once: on_seqs may run later than the put's submission */
    if (a != NULL)
        assert_int_equal(kurer_store_ack(f->s, a, seqs, 1, on_done, f), 0);
}

static void on_put(void *arg, int err, const uint64_t *seqs, size_t n, size_t cancelled)
{
    fx *f = arg;
    f->err = err;
    f->cancelled = cancelled;
    if (err == 0) {
        /* the seqs on_seqs had */
        assert_true(f->seqs_before_done);
        assert_int_equal(n, f->n_seqs < 8 ? n : 8);
        for (size_t i = 0; i < n && i < 8; i++)
            assert_int_equal(seqs[i], f->seqs[i]);
    }
    f->seqs_before_done = 0;
    f->done++;
}

/* Submits a put of n items (on_seqs, on_put); hold_us as kurer_store_put_req. */
static void submit_put(fx *f, const kurer_store_item *items, size_t n,
                       const kurer_store_limits *lim, uint64_t hold_us)
{
    kurer_store_put_req req = {items, n, {0, 0}, hold_us, on_seqs, on_put, f};
    if (lim != NULL)
        req.lim = *lim;
    f->n_seqs = 0;
    f->seqs_before_done = 0;
    assert_int_equal(kurer_store_put(f->s, &req), 0);
}

static void on_done(void *arg, int err)
{
    fx *f = arg;
    f->err = err;
    f->done++;
}

static void on_fetch(void *arg, int err, const kurer_store_row *rows, size_t n, uint64_t total,
                     uint64_t high)
{
    fx *f = arg;
    f->err = err;
    f->count = total;
    f->high = high;
    f->n_rows = n < 16 ? n : 16;
    for (size_t i = 0; i < f->n_rows; i++) {
        f->rows[i] = rows[i];
        size_t len = rows[i].len < 64 ? rows[i].len : 64;
        memcpy(f->bytes[i], rows[i].env, len);
        f->rows[i].env = f->bytes[i];
        f->rows[i].len = len;
    }
    f->done++;
}

void on_count(void *arg, int err, uint64_t count)
{
    fx *f = arg;
    f->err = err;
    f->count = count;
    f->done++;
}

static void on_bundles(void *arg, int err, const kurer_store_bundle *b, size_t n)
{
    fx *f = arg;
    f->err = err;
    f->n_bundles = n < 4 ? n : 4;
    for (size_t i = 0; i < f->n_bundles; i++)
        f->bundles[i] = b[i];
    f->done++;
}

kurer_device_address addr(const char *user, uint32_t device)
{
    kurer_device_address a;
    memset(&a, 0, sizeof(a));
    snprintf(a.user, sizeof(a.user), "%s", user);
    a.device_id = device;
    return a;
}

/* One envelope for to from `from`, its bytes the letter c repeated. */
int put_one(fx *f, const char *to, uint32_t dev, const char *from, char c,
            const kurer_store_limits *lim, uint64_t *seq_out)
{
    static uint8_t env[16][32];
    static int slot;
    kurer_store_item it;
    uint8_t *e = env[slot++ % 16];
    memset(&it, 0, sizeof(it));
    it.to = addr(to, dev);
    it.from = addr(from, 1);
    memset(e, c, 32);
    it.env = e;
    it.len = 32;
    int want = f->done + 1;
    submit_put(f, &it, 1, lim, 0);
    wait_done(f, want);
    if (seq_out != NULL) {
        /* every put gets its seq, refused ones too: it may have gone out early */
        assert_int_equal(f->n_seqs, 1);
        *seq_out = f->seqs[0];
    }
    return f->err;
}

void fetch(fx *f, const char *user, uint32_t dev, uint64_t after, size_t limit)
{
    kurer_device_address a = addr(user, dev);
    int want = f->done + 1;
    assert_int_equal(kurer_store_fetch(f->s, &a, after, limit, on_fetch, f), 0);
    wait_done(f, want);
    assert_int_equal(f->err, 0);
}

static void ack(fx *f, const char *user, uint32_t dev, const uint64_t *seqs, size_t n)
{
    kurer_device_address a = addr(user, dev);
    int want = f->done + 1;
    assert_int_equal(kurer_store_ack(f->s, &a, seqs, n, on_done, f), 0);
    wait_done(f, want);
    assert_int_equal(f->err, 0);
}

/* ---- cases --------------------------------------------------------------------------------- */

/* A device's envelopes come back in seq order, after a given seq, at most limit of them, and
 * the total is the whole queue. */
static void test_order(void **state)
{
    fx *f = *state;
    uint64_t s1, s2, s3;
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', NULL, &s1), 0);
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'b', NULL, &s2), 0);
    assert_int_equal(put_one(f, "ana@x", 2, "bo@x", 'z', NULL, NULL), 0); /* another device */
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'c', NULL, &s3), 0);
    assert_true(s1 < s2 && s2 < s3);
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 3);
    assert_int_equal(f->count, 3);
    assert_int_equal(f->rows[0].seq, s1);
    assert_int_equal(f->rows[2].seq, s3);
    assert_int_equal(f->bytes[0][0], 'a');
    assert_int_equal(f->bytes[1][0], 'b');
    assert_int_equal(f->bytes[2][0], 'c');
    fetch(f, "ana@x", 1, s1, 1);
    assert_int_equal(f->n_rows, 1);
    assert_int_equal(f->rows[0].seq, s2);
    fetch(f, "nobody@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 0);
    assert_int_equal(f->count, 0);
}

/* An ack deletes the device's own rows only; unknown seqs are ignored. */
static void test_ack(void **state)
{
    fx *f = *state;
    uint64_t s1, s2, other;
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', NULL, &s1), 0);
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'b', NULL, &s2), 0);
    assert_int_equal(put_one(f, "cy@x", 1, "bo@x", 'c', NULL, &other), 0);
    uint64_t mine[] = {s1, 999999};
    ack(f, "ana@x", 1, mine, 2);
    ack(f, "ana@x", 1, &other, 1); /* cy's seq, acked by ana: ignored */
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 1);
    assert_int_equal(f->rows[0].seq, s2);
    fetch(f, "cy@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 1);
}

/* A restart loses nothing accepted and never hands out a seq again. */
static void test_restart(void **state)
{
    fx *f = *state;
    uint64_t s1, s2;
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', NULL, &s1), 0);
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'b', NULL, &s2), 0);
    fx_close(f);
    fx_open(f);
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 2);
    assert_int_equal(f->rows[1].seq, s2);
    uint64_t s3;
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'c', NULL, &s3), 0);
    assert_true(s3 > s2);
}

/* mailbox_max bounds a device's queue; sender_max bounds one sender user's part of it. A put
 * over either is refused whole and counted. */
static void test_limits(void **state)
{
    fx *f = *state;
    kurer_store_limits lim = {3, 2};
    kurer_store_stats st;
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', &lim, NULL), 0);
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'b', &lim, NULL), 0);
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'c', &lim, NULL), KURER_ELIMIT); /* share */
    assert_int_equal(put_one(f, "ana@x", 1, "cy@x", 'd', &lim, NULL), 0);
    assert_int_equal(put_one(f, "ana@x", 1, "di@x", 'e', &lim, NULL), KURER_ELIMIT); /* full */
    assert_int_equal(put_one(f, "ana@x", 2, "bo@x", 'f', &lim, NULL), 0); /* another mailbox */
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 3);
    kurer_store_get_stats(f->s, &st);
    assert_int_equal(st.refused_share, 1);
    assert_int_equal(st.refused_full, 1);
    /* two items of one put for one mailbox count together */
    kurer_store_item its[2];
    static uint8_t e[2][8];
    memset(its, 0, sizeof(its));
    for (int i = 0; i < 2; i++) {
        its[i].to = addr("eve@x", 1);
        its[i].from = addr("bo@x", 1);
        its[i].env = e[i];
        its[i].len = sizeof(e[i]);
    }
    kurer_store_limits one = {0, 1};
    int want = f->done + 1;
    submit_put(f, its, 2, &one, 0);
    wait_done(f, want);
    assert_int_equal(f->err, KURER_ELIMIT);
    fetch(f, "eve@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 0);
}

/* A held put whose ack comes within the hold is never written; one without its ack is written
 * once the hold is over. The ack goes in from on_seqs: the first moment its seq is known. */
static void test_put_ack_pairing(void **state)
{
    fx *f = *state;
    kurer_store_item it;
    static uint8_t e[8] = "held";
    memset(&it, 0, sizeof(it));
    it.to = addr("ana@x", 1);
    it.from = addr("bo@x", 1);
    it.env = e;
    it.len = sizeof(e);
    kurer_device_address a = addr("ana@x", 1);
    int want = f->done + 2;
    f->ack_from_seqs = &a;
    submit_put(f, &it, 1, NULL, 2000000);
    wait_done(f, want);
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 0);
    /* without its ack: written after the hold (50 ms here) */
    want = f->done + 1;
    submit_put(f, &it, 1, NULL, 50000);
    wait_done(f, want);
    assert_int_equal(f->err, 0);
    assert_int_equal(f->cancelled, 0);
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 1);
}

/* Pairing is per device: seqs are, so another device's ack of the same seq cancels nothing; a
 * plain (not held) put and its ack that fall into one batch cancel too. */
static void test_pairing_per_device(void **state)
{
    fx *f = *state;
    kurer_store_item it[1];
    static uint8_t e[8] = "pair";
    memset(it, 0, sizeof(it));
    it[0].to = addr("ana@x", 1);
    it[0].from = addr("cy@x", 1);
    it[0].env = e;
    it[0].len = sizeof(e);
    kurer_device_address b = addr("bo@x", 1);
    int want = f->done + 2;
    f->ack_from_seqs = &b; /* bo acks ana's seq: bo has no envelope of that seq */
    submit_put(f, it, 1, NULL, 100000);
    wait_done(f, want);
    assert_int_equal(f->cancelled, 0); /* held out its time, then written */
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 1);
    /* a plain put and its ack in one batch (the commit delay keeps them together) */
    kurer_store_set_commit_delay(f->s, 200000);
    kurer_device_address a = addr("ana@x", 1);
    want = f->done + 2;
    f->ack_from_seqs = &a;
    submit_put(f, it, 1, NULL, 0);
    wait_done(f, want);
    assert_int_equal(f->err, 0);
    kurer_store_set_commit_delay(f->s, 0);
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 1); /* still only the first */
}

/* Seqs come from the store, per device: increasing per device in submission order (items of one
 * put in item order), with each seq's predecessor; independent (another device's puts use up
 * none); and a fetch reports the device's high mark. */
static void test_seqs_per_device(void **state)
{
    fx *f = *state;
    uint64_t a1, a2, b1, c1, a3, c2;
    fetch(f, "ana@x", 1, 0, 16);
    uint64_t h0 = f->high; /* nothing yet: what a reader counts as pushed */
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', NULL, &a1), 0);
    assert_int_equal(f->prev[0], h0); /* the device's first: nothing between */
    assert_true(a1 > h0);
    assert_int_equal(put_one(f, "cy@x", 1, "bo@x", 'c', NULL, &c1), 0);
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'b', NULL, &a2), 0);
    assert_int_equal(f->prev[0], a1);
    assert_true(a2 > a1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(put_one(f, "ana@x", 2, "bo@x", 'x', NULL, NULL), 0);
    /* a device's first seq does not depend on what other devices got */
    assert_int_equal(put_one(f, "dee@x", 1, "bo@x", 'd', NULL, &b1), 0);
    assert_int_equal(b1, c1);
    /* several items: in item order, per device */
    kurer_store_item its[3];
    static uint8_t e[3][4];
    memset(its, 0, sizeof(its));
    its[0].to = addr("ana@x", 1);
    its[1].to = addr("cy@x", 1);
    its[2].to = addr("ana@x", 1);
    for (int i = 0; i < 3; i++) {
        its[i].from = addr("bo@x", 1);
        its[i].env = e[i];
        its[i].len = sizeof(e[i]);
    }
    int want = f->done + 1;
    submit_put(f, its, 3, NULL, 0);
    wait_done(f, want);
    assert_int_equal(f->err, 0);
    a3 = f->seqs[0];
    c2 = f->seqs[1];
    assert_true(a3 > a2 && f->seqs[2] > a3 && c2 > c1);
    assert_int_equal(f->prev[0], a2);
    assert_int_equal(f->prev[1], c1);
    assert_int_equal(f->prev[2], a3);
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 4);
    assert_int_equal(f->high, f->seqs[2]);
    for (size_t i = 1; i < f->n_rows; i++)
        assert_true(f->rows[i].seq > f->rows[i - 1].seq);
    fetch(f, "nobody@x", 1, 0, 16);
    assert_int_equal(f->high, h0);
}

/* Seqs are never handed out again after a reopen, not even those of envelopes that were never
 * written (cancelled by their ack, refused by a limit) or that were acked. (After a crash too:
 * tests/integration/test_relay.c, accepted_by_ack, kills the relay.) */
static void test_seqs_reopen(void **state)
{
    fx *f = *state;
    kurer_store_item it;
    static uint8_t e[8] = "gone";
    kurer_device_address a = addr("ana@x", 1);
    uint64_t s1, s3;
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', NULL, &s1), 0);
    ack(f, "ana@x", 1, &s1, 1); /* the mailbox is empty again */
    memset(&it, 0, sizeof(it));
    it.to = a;
    it.from = addr("bo@x", 1);
    it.env = e;
    it.len = sizeof(e);
    int want = f->done + 2;
    f->ack_from_seqs = &a;
    submit_put(f, &it, 1, NULL, 2000000); /* cancelled by its ack: never written */
    wait_done(f, want);
    uint64_t s2 = f->seqs[0];
    assert_true(s2 > s1);
    kurer_store_limits lim = {0, 1}; /* cy's share: one envelope */
    uint64_t kept, refused = 0;
    assert_int_equal(put_one(f, "ana@x", 1, "cy@x", 'b', &lim, &kept), 0);
    it.from = addr("cy@x", 1);
    want = f->done + 1;
    submit_put(f, &it, 1, &lim, 0);
    wait_done(f, want);
    assert_int_equal(f->err, KURER_ELIMIT);
    if (f->n_seqs == 1) /* a backend may refuse before it assigns a seq */
        refused = f->seqs[0];
    fx_close(f);
    fx_open(f);
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'c', NULL, &s3), 0);
    assert_true(s3 > s2 && s3 > kept && s3 > refused);
    /* and again, with nothing but that one stored */
    fx_close(f);
    fx_open(f);
    uint64_t s4;
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'd', NULL, &s4), 0);
    assert_true(s4 > s3);
    fetch(f, "ana@x", 1, 0, 16);
    assert_true(f->high >= s4);
}

/* Every entry of the operations table is set. */
static void test_ops_complete(void **state)
{
    fx *f = *state;
    const kurer_store_ops *o = f->s->ops;
    assert_non_null(o->name);
    void (*const entries[])(void) = {
        (void (*)(void))o->close,
        (void (*)(void))o->probe,
        (void (*)(void))o->load_directory,
        (void (*)(void))o->load_crls,
        (void (*)(void))o->put,
        (void (*)(void))o->put_fanout,
        (void (*)(void))o->fetch,
        (void (*)(void))o->ack,
        (void (*)(void))o->put_device,
        (void (*)(void))o->put_prekeys,
        (void (*)(void))o->take_prekeys,
        (void (*)(void))o->count_prekeys,
        (void (*)(void))o->put_crl,
        (void (*)(void))o->backup,
        (void (*)(void))o->invite,
        (void (*)(void))o->blob,
        (void (*)(void))o->set_commit_delay,
        (void (*)(void))o->get_stats,
    };
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
        assert_non_null(entries[i]);
    assert_int_equal(kurer_store_probe(f->s), 0);
}

static int n_loaded;
static uint64_t loaded_serial;

static void on_device(void *arg, const kurer_store_device *d)
{
    (void)arg;
    n_loaded++;
    if (strcmp(d->addr.user, "ana@x") == 0)
        loaded_serial = d->serial;
}

/* Directory entries survive a restart; a device recorded again replaces its entry. */
static void test_directory(void **state)
{
    fx *f = *state;
    static const uint8_t chain[] = "chain bytes";
    kurer_store_device d = {addr("ana@x", 1), 10, chain, sizeof(chain)};
    int want = f->done + 3;
    assert_int_equal(kurer_store_put_device(f->s, &d, on_done, f), 0);
    d.serial = 11;
    assert_int_equal(kurer_store_put_device(f->s, &d, on_done, f), 0);
    kurer_store_device e = {addr("bo@x", 2), 20, chain, sizeof(chain)};
    assert_int_equal(kurer_store_put_device(f->s, &e, on_done, f), 0);
    wait_done(f, want);
    fx_close(f);
    fx_open(f);
    n_loaded = 0;
    assert_int_equal(kurer_store_load_directory(f->s, on_device, f), 0);
    assert_int_equal(n_loaded, 2);
    assert_int_equal(loaded_serial, 11);
}

static void upload_as(fx *f, const char *user, uint32_t reg, uint32_t first, size_t n, uint64_t max,
                      int expect)
{
    kurer_store_prekeys p;
    kurer_one_time_prekey otk[8];
    memset(&p, 0, sizeof(p));
    memset(otk, 0, sizeof(otk));
    p.dev = addr(user, 1);
    p.registration_id = reg;
    p.signed_prekey.id = 1;
    p.signed_prekey.public_key[0] = 0x05;
    for (size_t i = 0; i < n; i++) {
        otk[i].id = first + (uint32_t)i;
        otk[i].public_key[0] = 0x05;
        otk[i].public_key[1] = (uint8_t)i;
    }
    p.one_time = otk;
    p.n_one_time = n;
    p.max_one_time = max;
    int want = f->done + 1;
    assert_int_equal(kurer_store_put_prekeys(f->s, &p, on_count, f), 0);
    wait_done(f, want);
    assert_int_equal(f->err, expect);
}

static void upload(fx *f, const char *user, size_t n, uint64_t max, int expect)
{
    upload_as(f, user, 7, 1, n, max, expect);
}

/* Each one-time prekey is handed out once, also to takes submitted together; n_one_time limits
 * how many devices of a take get one; the pool bound refuses an upload whole. */
static void test_prekeys_once(void **state)
{
    fx *f = *state;
    kurer_device_address a = addr("ana@x", 1);
    upload(f, "ana@x", 3, 0, 0);
    assert_int_equal(f->count, 3);
    uint32_t seen[3] = {0};
    for (int round = 0; round < 2; round++) {
        int want = f->done + 1;
        assert_int_equal(kurer_store_take_prekeys(f->s, &a, 1, 1, on_bundles, f), 0);
        wait_done(f, want);
        assert_int_equal(f->err, 0);
        assert_int_equal(f->n_bundles, 1);
        assert_true(f->bundles[0].has_one_time);
        seen[round] = f->bundles[0].one_time.id;
    }
    assert_int_not_equal(seen[0], seen[1]);
    /* n_one_time 0: the signed prekey only, the pool untouched */
    int want = f->done + 1;
    assert_int_equal(kurer_store_take_prekeys(f->s, &a, 1, 0, on_bundles, f), 0);
    wait_done(f, want);
    assert_int_equal(f->n_bundles, 1);
    assert_false(f->bundles[0].has_one_time);
    assert_int_equal(f->bundles[0].remaining, 1);
    want = f->done + 2;
    assert_int_equal(kurer_store_take_prekeys(f->s, &a, 1, 1, on_bundles, f), 0);
    assert_int_equal(kurer_store_take_prekeys(f->s, &a, 1, 1, on_bundles, f), 0);
    wait_done(f, want);
    assert_false(f->bundles[0].has_one_time); /* the last one went to the first of the two */
    /* a pool bound of 2: an upload of 3 is refused whole */
    upload(f, "bo@x", 3, 2, KURER_ELIMIT);
    want = f->done + 1;
    kurer_device_address b = addr("bo@x", 1);
    assert_int_equal(kurer_store_count_prekeys(f->s, &b, on_count, f), 0);
    wait_done(f, want);
    assert_int_equal(f->err, KURER_ENOTFOUND); /* nothing of it stored */
}

/* A device re-enrolled: its new home (another registration id) uploads, and the old home's
 * one-time prekeys (ids the new one did not replace) are never handed out; the same home's
 * refill keeps its pool. */
static void test_prekeys_reenrolled(void **state)
{
    fx *f = *state;
    kurer_device_address a = addr("ana@x", 1);
    upload_as(f, "ana@x", 7, 1, 6, 0, 0); /* the old home: ids 1..6 */
    assert_int_equal(f->count, 6);
    upload_as(f, "ana@x", 7, 7, 2, 0, 0); /* its refill keeps them */
    assert_int_equal(f->count, 8);
    upload_as(f, "ana@x", 9, 1, 3, 0, 0); /* the new home: ids 1..3, registration id 9 */
    assert_int_equal(f->count, 3);
    for (int i = 0; i < 3; i++) {
        int want = f->done + 1;
        assert_int_equal(kurer_store_take_prekeys(f->s, &a, 1, 1, on_bundles, f), 0);
        wait_done(f, want);
        assert_int_equal(f->n_bundles, 1);
        assert_true(f->bundles[0].has_one_time);
        assert_int_equal(f->bundles[0].registration_id, 9);
        assert_true(f->bundles[0].one_time.id <= 3);
    }
    int want = f->done + 1;
    assert_int_equal(kurer_store_take_prekeys(f->s, &a, 1, 1, on_bundles, f), 0);
    wait_done(f, want);
    assert_false(f->bundles[0].has_one_time); /* none of the old home's */
}

static uint64_t crl_versions[4];
static size_t n_crls;

static void on_crl(void *arg, const uint8_t *list, size_t len)
{
    (void)arg;
    assert_true(len >= 1);
    if (n_crls < 4)
        crl_versions[n_crls] = list[0];
    n_crls++;
}

/* The newest version per issuer is kept: an older one is not stored over it. */
static void test_revocation_versions(void **state)
{
    fx *f = *state;
    uint8_t issuer_a[32], issuer_b[32], v2 = 2, v1 = 1, v5 = 5;
    memset(issuer_a, 0xaa, sizeof(issuer_a));
    memset(issuer_b, 0xbb, sizeof(issuer_b));
    int want = f->done + 3;
    assert_int_equal(kurer_store_put_crl(f->s, issuer_a, 2, &v2, 1, on_done, f), 0);
    assert_int_equal(kurer_store_put_crl(f->s, issuer_a, 1, &v1, 1, on_done, f), 0);
    assert_int_equal(kurer_store_put_crl(f->s, issuer_b, 5, &v5, 1, on_done, f), 0);
    wait_done(f, want);
    fx_close(f);
    fx_open(f);
    n_crls = 0;
    assert_int_equal(kurer_store_load_crls(f->s, on_crl, f), 0);
    assert_int_equal(n_crls, 2);
    assert_true((crl_versions[0] == 2 && crl_versions[1] == 5) ||
                (crl_versions[0] == 5 && crl_versions[1] == 2));
}

/* sqlite backend only: a store written by a relay of schema 3 (no sender column) is brought up
 * to date at open, in one step list, and keeps its envelopes; a store of a newer relay is
 * refused (KURER_EVERSION). */
static void test_migration(void **state)
{
    fx *f = *state;
    char path[300], key[80];
    sqlite3 *db;
    if (is_pg(f)) {
        /* postgres (one schema version so far, nothing older to migrate): a database of a
         * newer relay is refused, and opens again once it is this relay's version */
        fx_close(f);
        pg_sql(f->dir, "CREATE TABLE was AS SELECT version FROM kurer_schema;"
                       "UPDATE kurer_schema SET version = 99");
        assert_int_equal(f->be->open(&f->s, &f->loop, f->dir, f->key), KURER_EVERSION);
        f->s = NULL;
        pg_sql(f->dir, "UPDATE kurer_schema SET version = (SELECT version FROM was)");
        fx_open(f);
        assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', NULL, NULL), 0);
        return;
    }
    fx_close(f);
    snprintf(path, sizeof(path), "%s/relay.db", f->dir);
    unlink(path);
    key[0] = 'x';
    key[1] = '\'';
    kurer_hex_encode(key + 2, f->key, 32);
    key[66] = '\'';
    key[67] = '\0';
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_key(db, key, 67), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE mailbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT "
                     "NULL, device INTEGER NOT NULL, env BLOB NOT NULL);"
                     "CREATE TABLE devices(user TEXT NOT NULL, device INTEGER NOT NULL, serial "
                     "INTEGER NOT NULL, chain BLOB NOT NULL, PRIMARY KEY(user, device));"
                     "CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
                     "INSERT INTO mailbox(seq, user, device, env) VALUES(5, 'ana@x', 1, x'6f6c64');"
                     "PRAGMA user_version = 3;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    fx_open(f);
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 1);
    assert_int_equal(f->rows[0].seq, 5);
    assert_memory_equal(f->bytes[0], "old", 3);
    kurer_store_limits lim = {0, 1}; /* the new column works: a share of 1 for bo */
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', &lim, NULL), 0);
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'b', &lim, NULL), KURER_ELIMIT);
    fx_close(f);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_key(db, key, 67), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    kurer_memzero(key, sizeof(key));
    assert_int_equal(f->be->open(&f->s, &f->loop, f->dir, f->key), KURER_EVERSION);
    f->s = NULL;
}

/* sqlite backend only: a store of schema 4 (the previous version: one seq counter for the whole
 * relay, the reservation in meta) opens, keeps its envelopes with their seqs, and each device's
 * seqs go on above its own rows. */
static void test_migration_v4(void **state)
{
    fx *f = *state;
    char path[300], key[80];
    sqlite3 *db;
    SKIP_UNLESS(!is_pg(f), "a schema-4 SQLCipher file; the postgres schema has no such past");
    fx_close(f);
    snprintf(path, sizeof(path), "%s/relay.db", f->dir);
    unlink(path);
    key[0] = 'x';
    key[1] = '\'';
    kurer_hex_encode(key + 2, f->key, 32);
    key[66] = '\'';
    key[67] = '\0';
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_key(db, key, 67), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE mailbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT "
                     "NULL, device INTEGER NOT NULL, env BLOB NOT NULL, sender TEXT NOT NULL "
                     "DEFAULT '');"
                     "CREATE INDEX mailbox_dev ON mailbox(user, device, seq);"
                     "CREATE INDEX mailbox_sender ON mailbox(user, device, sender);"
                     "CREATE TABLE devices(user TEXT NOT NULL, device INTEGER NOT NULL, serial "
                     "INTEGER NOT NULL, chain BLOB NOT NULL, PRIMARY KEY(user, device));"
                     "CREATE TABLE prekey_devices(user TEXT NOT NULL, device INTEGER NOT NULL, "
                     "registration_id INTEGER NOT NULL, spk_id INTEGER NOT NULL, spk_pub BLOB "
                     "NOT NULL, spk_sig BLOB NOT NULL, spk_created INTEGER NOT NULL, PRIMARY "
                     "KEY(user, device));"
                     "CREATE TABLE one_time_prekeys(user TEXT NOT NULL, device INTEGER NOT NULL, "
                     "id INTEGER NOT NULL, pub BLOB NOT NULL, PRIMARY KEY(user, device, id));"
                     "CREATE TABLE crls(issuer_key_id BLOB PRIMARY KEY, version INTEGER NOT "
                     "NULL, list BLOB NOT NULL);"
                     "CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
                     "INSERT INTO meta VALUES('seq_reserved', 2000000);"
                     "INSERT INTO mailbox VALUES(1048577, 'ana@x', 1, x'6f6c64', 'bo@x');"
                     "INSERT INTO mailbox VALUES(1048580, 'cy@x', 1, x'6f6c65', 'bo@x');"
                     "INSERT INTO mailbox VALUES(1048583, 'ana@x', 1, x'6f6c66', 'cy@x');"
                     "PRAGMA user_version = 4;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    kurer_memzero(key, sizeof(key));
    fx_open(f);
    fetch(f, "ana@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 2);
    assert_int_equal(f->rows[0].seq, 1048577);
    assert_int_equal(f->rows[1].seq, 1048583);
    assert_memory_equal(f->bytes[1], "olf", 3);
    uint64_t a, c;
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'a', NULL, &a), 0);
    assert_int_equal(put_one(f, "cy@x", 1, "bo@x", 'c', NULL, &c), 0);
    assert_true(a > 1048583);
    assert_true(c > 1048580);
    kurer_store_limits lim = {0, 2}; /* the sender column came along: bo has 2 of ana's 3 */
    assert_int_equal(put_one(f, "ana@x", 1, "bo@x", 'b', &lim, NULL), KURER_ELIMIT);
    fetch(f, "cy@x", 1, 0, 16);
    assert_int_equal(f->n_rows, 2);
    assert_int_equal(f->rows[1].seq, c);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_ack_pairing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys_reenrolled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_v4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seqs_per_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seqs_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pairing_per_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ops_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_round, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capped_rounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_sweep, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    for (size_t i = 0; argc > 2 && i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strcmp(argv[2], backends[i].name) == 0)
            current = &backends[i];
    if (argc > 2 && strcmp(argv[2], current->name) != 0) {
        fprintf(stderr, "unknown backend %s\n", argv[2]);
        return 2;
    }
    return cmocka_run_group_tests_name(current->name, tests, NULL, NULL);
}
