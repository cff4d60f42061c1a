/* client_store_group_receipts: receipts of group messages in the store (client/store_receipts.c,
 * schema v9), on a real SQLCipher store: a receipt naming a group lands on that group's message
 * and never on a one-to-one message with the same peer and time, nor the other way round; read
 * marks per conversation; owed receipts kept apart by group. One ctest entry per case. */
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
#include "store_group.h"

#define PASS "correct horse battery staple"
#define ME   "anna@mof"

typedef struct fixture {
    char home[256];
    kurer__store *st;
    uint8_t g1[KURER_GROUP_ID_LEN], g2[KURER_GROUP_ID_LEN];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(kurer_crypto_init(), 0);
    strcpy(f->home, "/tmp/kurer-greceipts-XXXXXX");
    assert_non_null(mkdtemp(f->home));
    kurer_kdf_params p = kurer_kdf_minimum();
    assert_int_equal(kurer__store_create_pass(f->home, PASS, strlen(PASS), &p, &f->st), 0);
    memset(f->g1, 0x11, sizeof(f->g1));
    memset(f->g2, 0x22, sizeof(f->g2));
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

/* A text message; gid non-NULL: of that group. */
static int64_t add(kurer__store *st, int direction, const char *peer, int64_t sent_at,
                   const uint8_t *gid)
{
    kurer__msg m;
    memset(&m, 0, sizeof(m));
    kurer_random(m.envelope_id, sizeof(m.envelope_id));
    m.direction = direction;
    snprintf(m.peer, sizeof(m.peer), "%s", peer);
    m.peer_device = direction == KURER__DIR_IN ? 1 : 0;
    m.level = 1;
    m.body = "tekst";
    m.body_len = strlen(m.body);
    m.sent_at = sent_at;
    m.received_at = sent_at;
    m.state = direction == KURER__DIR_IN ? KURER__MSG_RECEIVED : KURER__MSG_SENT;
    assert_int_equal(kurer__store_message_insert(st, &m), 0);
    if (gid != NULL)
        assert_int_equal(kurer__store_group_message_put(st, m.rowid, gid, KURER__GROUP_MSG_DATA),
                         0);
    return m.rowid;
}

static int count_rows(void *ud, const kurer__receipt_row *r)
{
    (void)r;
    (*(int *)ud)++;
    return 0;
}

static int receipts(kurer__store *st, int64_t rowid)
{
    int n = 0;
    assert_int_equal(kurer__store_receipt_each(st, rowid, count_rows, &n), 0);
    return n;
}

/* Our one-to-one message to bob and our group message sent in the same millisecond: bob's
 * receipts go where they name, a receipt naming another group nowhere. */
static void test_same_time(void **state)
{
    fixture *f = *state;
    const int64_t t0 = 1796422365000;
    int64_t direct = add(f->st, KURER__DIR_OUT, "bob@mof", t0, NULL);
    int64_t group = add(f->st, KURER__DIR_OUT, ME, t0, f->g1);
    size_t n = 9;
    assert_int_equal(kurer__store_receipt_add(f->st, KURER__DIR_OUT, "bob@mof", t0, "bob@mof", 1,
                                              KURER__RECEIPT_DELIVERED, t0 + 1, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(receipts(f->st, direct), 1);
    assert_int_equal(receipts(f->st, group), 0);
    for (uint32_t d = 1; d <= 2; d++)
        assert_int_equal(kurer__store_receipt_add_group(f->st, f->g1, ME, 0, t0, "bob@mof", d,
                                                        KURER__RECEIPT_READ, t0 + 2, &n),
                         0);
    assert_int_equal(n, 1);
    assert_int_equal(receipts(f->st, group), 2);
    assert_int_equal(receipts(f->st, direct), 1);
    kurer__msg_extra x;
    assert_int_equal(kurer__store_message_extra(f->st, group, &x), 0);
    assert_int_equal(x.read_at, 0); /* a member's read is not ours */
    assert_int_equal(kurer__store_receipt_add_group(f->st, f->g2, ME, 0, t0, "bob@mof", 3,
                                                    KURER__RECEIPT_READ, t0 + 2, &n),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(kurer__store_receipt_add_group(f->st, f->g1, ME, 0, t0 + 1, "bob@mof", 3,
                                                    KURER__RECEIPT_READ, t0 + 2, &n),
                     0);
    assert_int_equal(n, 0);
    /* Members counted against. */
    uint32_t m = 9;
    assert_int_equal(kurer__store_group_message_members(f->st, group, &m), 0);
    assert_int_equal(m, 0);
    assert_int_equal(kurer__store_group_message_set_members(f->st, group, 2), 0);
    assert_int_equal(kurer__store_group_message_members(f->st, group, &m), 0);
    assert_int_equal(m, 2);
    assert_int_equal(kurer__store_group_message_members(f->st, direct, &m), 0);
    assert_int_equal(m, 0);
}

/* bob's one-to-one message and his group message in the same millisecond, received: read per
 * conversation, each owing its own receipt; our other device's copies land where they name. */
static void test_read_per_conversation(void **state)
{
    fixture *f = *state;
    const int64_t t0 = 1796422365000;
    int64_t direct = add(f->st, KURER__DIR_IN, "bob@mof", t0, NULL);
    int64_t group = add(f->st, KURER__DIR_IN, "bob@mof", t0, f->g1);
    int64_t other = add(f->st, KURER__DIR_IN, "bob@mof", t0, f->g2);
    size_t marked = 9, n = 0;
    const int64_t ts[] = {t0};
    assert_int_equal(kurer__store_mark_read(f->st, "bob@mof", ts, 1, t0 + 5, &marked), 0);
    assert_int_equal(marked, 1); /* the one-to-one one only */
    kurer__msg_extra x;
    assert_int_equal(kurer__store_message_extra(f->st, group, &x), 0);
    assert_int_equal(x.read_at, 0);
    assert_int_equal(kurer__store_mark_read_in(f->st, NULL, f->g1, NULL, 0, t0 + 6, &marked), 0);
    assert_int_equal(marked, 1);
    assert_int_equal(kurer__store_message_extra(f->st, group, &x), 0);
    assert_int_equal(x.read_at, t0 + 6);
    assert_int_equal(kurer__store_message_extra(f->st, other, &x), 0);
    assert_int_equal(x.read_at, 0);
    kurer__receipt_out owed[8];
    assert_int_equal(kurer__store_receipts_owed(f->st, owed, 8, &n), 0);
    assert_int_equal(n, 2); /* same peer, type and time: kept apart by the group */
    int direct_owed = 0, group_owed = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(owed[i].sent_at, t0);
        assert_int_equal(owed[i].type, KURER__RECEIPT_READ);
        if (owed[i].has_group) {
            assert_memory_equal(owed[i].group_id, f->g1, KURER_GROUP_ID_LEN);
            group_owed++;
        } else {
            direct_owed++;
        }
    }
    assert_int_equal(direct_owed, 1);
    assert_int_equal(group_owed, 1);
    /* Our other device read the message of the other group: its copy names that group. */
    assert_int_equal(kurer__store_receipt_add(f->st, KURER__DIR_IN, "bob@mof", t0, ME, 2,
                                              KURER__RECEIPT_DELIVERED, t0 + 7, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(receipts(f->st, direct), 1);
    assert_int_equal(kurer__store_receipt_add_group(f->st, f->g2, "bob@mof", 1, t0, ME, 2,
                                                    KURER__RECEIPT_READ, t0 + 8, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(kurer__store_message_extra(f->st, other, &x), 0);
    assert_int_equal(x.read_at, t0 + 8);
    assert_int_equal(receipts(f->st, other), 1);
    assert_int_equal(receipts(f->st, group), 0);
    /* Everything at once: nothing unread is left. */
    assert_int_equal(kurer__store_mark_read(f->st, NULL, NULL, 0, t0 + 9, &marked), 0);
    assert_int_equal(marked, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_per_conversation, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
