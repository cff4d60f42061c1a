/* client_store_receipts: the store's receipts, read marks, timers and expiry
 * (client/store_receipts.c, schema v6), on a real SQLCipher store, with the clock given to each
 * call (the engine passes the handle's kurer_clock_fn time). One ctest entry per case
 * (client_store_receipts_<case>). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kurer/crypto.h"
#include "kurer/kurer.h"
#include "kurer/util.h"
#include "store.h"

#define PASS "correct horse battery staple"

typedef struct fixture {
    char home[256];
    kurer__store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(kurer_crypto_init(), 0);
    strcpy(f->home, "/tmp/kurer-receipts-XXXXXX");
    assert_non_null(mkdtemp(f->home));
    kurer_kdf_params p = kurer_kdf_minimum();
    assert_int_equal(kurer__store_create_pass(f->home, PASS, strlen(PASS), &p, &f->st), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    const char *names[] = {"store.db", "store.db-wal", "store.db-shm", "store.kdf"};
    char p[512];
    kurer__store_close(f->st);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", f->home, names[i]);
        unlink(p);
    }
    rmdir(f->home);
    free(f);
    return 0;
}

static int64_t add(kurer__store *st, int direction, const char *peer, int state, int64_t sent_at,
                   const char *body, uint32_t timer)
{
    kurer__msg m;
    memset(&m, 0, sizeof(m));
    kurer_random(m.envelope_id, sizeof(m.envelope_id));
    m.direction = direction;
    snprintf(m.peer, sizeof(m.peer), "%s", peer);
    m.peer_device = direction == KURER__DIR_IN ? 1 : 0;
    m.level = 1;
    m.body = body;
    m.body_len = strlen(body);
    m.sent_at = sent_at;
    m.received_at = sent_at;
    m.state = state;
    assert_int_equal(kurer__store_message_insert(st, &m), 0);
    if (timer > 0) {
        kurer__msg_extra x = {timer, 0, 0, KURER__KIND_TEXT};
        assert_int_equal(kurer__store_message_set_extra(st, m.rowid, &x), 0);
    }
    return m.rowid;
}

static int count_row(void *ud, const kurer__msg *m)
{
    (void)m;
    (*(int *)ud)++;
    return 0;
}

static int messages(kurer__store *st)
{
    int n = 0;
    assert_int_equal(kurer__store_message_each(st, NULL, count_row, &n), 0);
    return n;
}

/* A received message with a 60 s timer does not count down until it is read; read at T it
 * is there at T + 59.999 s and gone at T + 60 s, with its receipts. */
static void test_expire_after_read(void **state)
{
    fixture *f = *state;
    const int64_t t0 = 1796422365000, t_read = t0 + 5000;
    int64_t id = add(f->st, KURER__DIR_IN, "anna@mof", KURER__MSG_RECEIVED, t0, "snart vaek", 60);
    add(f->st, KURER__DIR_IN, "anna@mof", KURER__MSG_RECEIVED, t0 + 1, "bliver", 0);
    size_t n = 99;
    assert_int_equal(kurer__store_expire(f->st, INT64_MAX, &n), 0);
    assert_int_equal(n, 0); /* unread: no countdown */
    kurer__msg_extra x;
    assert_int_equal(kurer__store_message_extra(f->st, id, &x), 0);
    assert_int_equal(x.expire_timer, 60);
    assert_int_equal(x.expires_at, 0);
    const int64_t ts[] = {t0};
    size_t marked = 0;
    assert_int_equal(kurer__store_mark_read(f->st, "anna@mof", ts, 1, t_read, &marked), 0);
    assert_int_equal(marked, 1);
    assert_int_equal(kurer__store_message_extra(f->st, id, &x), 0);
    assert_int_equal(x.read_at, t_read);
    assert_int_equal(x.expires_at, t_read + 60000);
    /* Our other device's read of the same message later does not restart the countdown. */
    assert_int_equal(kurer__store_receipt_add(f->st, KURER__DIR_IN, "anna@mof", t0, "bob@mof", 2,
                                              KURER__RECEIPT_READ, t_read + 1000, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(kurer__store_message_extra(f->st, id, &x), 0);
    assert_int_equal(x.expires_at, t_read + 60000);
    assert_int_equal(kurer__store_expire(f->st, t_read + 59999, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(messages(f->st), 2);
    assert_int_equal(kurer__store_expire(f->st, t_read + 60000, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(messages(f->st), 1);
    assert_int_equal(kurer__store_message_extra(f->st, id, &x), KURER_ENOTFOUND);
    /* A read receipt owed for it stays owed (its sender is told), the message is gone. */
    kurer__receipt_out owed[8];
    assert_int_equal(kurer__store_receipts_owed(f->st, owed, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(owed[0].type, KURER__RECEIPT_READ);
    assert_int_equal(owed[0].sent_at, t0);
}

typedef struct rows {
    int n, read;
    uint32_t devices[8];
} rows;

static int collect(void *ud, const kurer__receipt_row *r)
{
    rows *x = ud;
    if (x->n < 8)
        x->devices[x->n] = r->device_id;
    x->n++;
    x->read += r->type == KURER__RECEIPT_READ;
    return 0;
}

/* Receipts land per device and type on the outgoing messages they name, once each; never on a
 * quarantined message or another peer's. */
static void test_receipts_per_device(void **state)
{
    fixture *f = *state;
    const int64_t t0 = 1796422365000;
    int64_t out = add(f->st, KURER__DIR_OUT, "bob@mof", KURER__MSG_SENT, t0, "til bob", 0);
    int64_t other = add(f->st, KURER__DIR_OUT, "carl@mof", KURER__MSG_SENT, t0, "til carl", 0);
    int64_t q = add(f->st, KURER__DIR_IN, "bob@mof", KURER__MSG_QUARANTINED, t0, "", 0);
    size_t n = 0;
    for (uint32_t d = 1; d <= 2; d++)
        assert_int_equal(kurer__store_receipt_add(f->st, KURER__DIR_OUT, "bob@mof", t0, "bob@mof",
                                                  d, KURER__RECEIPT_DELIVERED, t0 + d, &n),
                         0);
    assert_int_equal(kurer__store_receipt_add(f->st, KURER__DIR_OUT, "bob@mof", t0, "bob@mof", 1,
                                              KURER__RECEIPT_DELIVERED, t0 + 9, &n),
                     0); /* again: kept once */
    assert_int_equal(kurer__store_receipt_add(f->st, KURER__DIR_OUT, "bob@mof", t0, "bob@mof", 1,
                                              KURER__RECEIPT_READ, t0 + 10, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(kurer__store_receipt_add(f->st, KURER__DIR_IN, "bob@mof", t0, "anna@mof", 2,
                                              KURER__RECEIPT_READ, t0 + 10, &n),
                     0);
    assert_int_equal(n, 0); /* the quarantined one is never receipted */
    assert_int_equal(kurer__store_receipt_add(f->st, KURER__DIR_OUT, "bob@mof", t0 + 1, "bob@mof",
                                              1, KURER__RECEIPT_READ, t0 + 10, &n),
                     0);
    assert_int_equal(n, 0); /* names nothing */
    rows r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(kurer__store_receipt_each(f->st, out, collect, &r), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.read, 1);
    assert_int_equal(r.devices[0], 1);
    assert_int_equal(r.devices[2], 2);
    memset(&r, 0, sizeof(r));
    assert_int_equal(kurer__store_receipt_each(f->st, other, collect, &r), 0);
    assert_int_equal(r.n, 0);
    memset(&r, 0, sizeof(r));
    assert_int_equal(kurer__store_receipt_each(f->st, q, collect, &r), 0);
    assert_int_equal(r.n, 0);
    /* A quarantined message is never marked read, so never owes a read receipt. */
    size_t marked = 9;
    assert_int_equal(kurer__store_mark_read(f->st, NULL, NULL, 0, t0 + 20, &marked), 0);
    assert_int_equal(marked, 0);
}

/* The sender's countdown, set when it is queued, and the conversation's timer. */
static void test_timer_and_sender(void **state)
{
    fixture *f = *state;
    uint32_t s = 7;
    assert_int_equal(kurer__store_timer_get(f->st, "bob@mof", &s), 0);
    assert_int_equal(s, 0);
    assert_int_equal(kurer__store_timer_set(f->st, "bob@mof", 3600, 1), 0);
    assert_int_equal(kurer__store_timer_set(f->st, "bob@mof", 30, 2), 0);
    assert_int_equal(kurer__store_timer_get(f->st, "bob@mof", &s), 0);
    assert_int_equal(s, 30);
    const int64_t t0 = 1796422365000;
    int64_t id = add(f->st, KURER__DIR_OUT, "bob@mof", KURER__MSG_SENT, t0, "ud", 0);
    kurer__msg_extra x = {30, t0 + 30000, 0, KURER__KIND_TEXT};
    assert_int_equal(kurer__store_message_set_extra(f->st, id, &x), 0);
    size_t n = 0;
    assert_int_equal(kurer__store_expire(f->st, t0 + 29999, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(kurer__store_expire(f->st, t0 + 30000, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(messages(f->st), 0);
    /* Not inside a transaction: the checkpoint after it must see everything committed. */
    assert_int_equal(kurer__store_begin(f->st), 0);
    assert_int_equal(kurer__store_expire(f->st, t0, &n), KURER_ESTATE);
    kurer__store_rollback(f->st);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_expire_after_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipts_per_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_and_sender, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
