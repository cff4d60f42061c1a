/* Relay unit tests (issue 10, item 4) of what integration tests reach only through processes:
 * the token bucket, the source-address table (/64 for IPv6, idle entries forgotten), the
 * one-time prekey take bound, the hash table, and the dispatch table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "kurer/crypto.h"
#include "relay_internal.h"

static void test_bucket(void **state)
{
    kurer__bucket b;
    (void)state;
    kurer__bucket_init(&b, 10, 1000); /* 10/s, burst 40 */
    assert_true(kurer__bucket_take(&b, 10, 40, 1000));
    assert_false(kurer__bucket_take(&b, 10, 1, 1000));
    assert_false(kurer__bucket_full(&b, 10, 1000));
    assert_true(kurer__bucket_take(&b, 10, 1, 1100)); /* 100 ms: one token */
    assert_false(kurer__bucket_take(&b, 10, 1, 1100));
    assert_true(kurer__bucket_full(&b, 10, 1000000)); /* refills to its burst, not beyond */
    assert_true(kurer__bucket_take(&b, 10, 40, 1000000));
    assert_false(kurer__bucket_take(&b, 10, 1, 1000000));
    assert_true(kurer__bucket_take(&b, 0, 1000000, 0));    /* rate 0: no limit */
    assert_false(kurer__bucket_take(&b, 10, 41, 5000000)); /* more than the burst: never */
}

static void addr6(const char *s, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)(void *)ss;
    a->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
}

static void test_addr_table(void **state)
{
    kurer__addr_table t;
    struct sockaddr_storage ss;
    uint8_t a[16], b[16], c[16];
    (void)state;
    assert_int_equal(kurer__addr_table_init(&t, 2, 5), 0);
    addr6("2001:db8:1:2::1", &ss);
    assert_int_equal(kurer__addr_key(&ss, a), 0);
    addr6("2001:db8:1:2:ffff::9", &ss); /* the same /64 */
    assert_int_equal(kurer__addr_key(&ss, b), 0);
    assert_memory_equal(a, b, 16);
    addr6("::ffff:10.0.0.1", &ss); /* IPv4-mapped: whole */
    assert_int_equal(kurer__addr_key(&ss, c), 0);
    assert_int_equal(c[15], 1);
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    assert_int_equal(kurer__addr_key(&ss, c), KURER_EINVAL);
    kurer__peer_addr *pa = kurer__addr_get(&t, a, 4, 0);
    assert_non_null(pa);
    assert_ptr_equal(kurer__addr_get(&t, b, 4, 0), pa);
    pa->preauth = 1;
    uint8_t d[16] = {1}, e[16] = {2};
    kurer__peer_addr *pd = kurer__addr_get(&t, d, 4, 0);
    assert_non_null(pd);
    /* full: an idle entry is forgotten to make room, a busy one never */
    assert_true(kurer__bucket_take(&pd->nk, 4, 16, 0));
    assert_null(kurer__addr_get(&t, e, 4, 0));         /* pd's bucket is not full again yet */
    assert_non_null(kurer__addr_get(&t, e, 4, 60000)); /* a minute later it is: pd goes */
    assert_ptr_equal(kurer__addr_get(&t, a, 4, 60000), pa);
    kurer__addr_table_free(&t);
}

static void test_take(void **state)
{
    kurer__take_table tt;
    kurer_device_address taker;
    (void)state;
    memset(&taker, 0, sizeof(taker));
    strcpy(taker.user, "eve@mof");
    taker.device_id = 1;
    assert_int_equal(kurer__take_table_init(&tt, 1), 0);
    assert_int_equal(kurer__take_grant(&tt, &taker, "ana@mof", 3, 4, 1000, 0), 3);
    assert_int_equal(kurer__take_grant(&tt, &taker, "ana@mof", 3, 4, 1000, 10), 1);
    assert_int_equal(kurer__take_grant(&tt, &taker, "ana@mof", 3, 4, 1000, 20), 0);
    assert_int_equal(kurer__take_grant(&tt, &taker, "ana@mof", 3, 4, 1000, 1000),
                     3); /* new window */
    /* the table is full (1 entry): another victim gets nothing (fail closed)... */
    assert_int_equal(kurer__take_grant(&tt, &taker, "bo@mof", 1, 4, 1000, 1500), 0);
    /* ...unless the old entry's window has passed; an unknown user (want 0) takes no entry */
    assert_int_equal(kurer__take_grant(&tt, &taker, "nobody@mof", 0, 4, 1000, 2500), 0);
    assert_int_equal(kurer__take_grant(&tt, &taker, "bo@mof", 1, 4, 1000, 2500), 1);
    kurer__take_table_free(&tt);
}

typedef struct item {
    hnode node;
    int key;
} item;

static void test_htab(void **state)
{
    htab t;
    static item items[1000];
    (void)state;
    assert_int_equal(htab_init(&t), 0);
    for (int i = 0; i < 1000; i++) {
        items[i].key = i;
        htab_insert(&t, &items[i].node, htab_hash(&t, &items[i].key, sizeof(int)));
    }
    assert_int_equal(t.n, 1000);
    assert_true(t.mask + 1 >= 1000); /* grew */
    for (int i = 0; i < 1000; i += 7) {
        uint64_t h = htab_hash(&t, &i, sizeof(i));
        int found = 0;
        for (hnode *n = htab_first(&t, h); n != NULL; n = htab_next(n, h))
            found |= HTAB_ENTRY(n, item, node)->key == i;
        assert_true(found);
    }
    for (int i = 0; i < 1000; i += 2)
        htab_remove(&t, &items[i].node);
    assert_int_equal(t.n, 500);
    int k = 4;
    uint64_t h = htab_hash(&t, &k, sizeof(k));
    for (hnode *n = htab_first(&t, h); n != NULL; n = htab_next(n, h))
        assert_int_not_equal(HTAB_ENTRY(n, item, node)->key, 4);
    /* keyed: another table hashes the same key differently (with overwhelming probability) */
    htab t2;
    assert_int_equal(htab_init(&t2), 0);
    assert_true(htab_hash(&t2, &k, sizeof(k)) != htab_hash(&t, &k, sizeof(k)));
    assert_true(htab_hash_dev(&t, "ana@mof", 1) != htab_hash_dev(&t, "ana@mof", 2));
    htab_free(&t2);
    htab_free(&t);
}

static void test_dispatch(void **state)
{
    (void)state;
    static const kurer_client_body all[] = {KURER_CLIENT_SEND,
                                            KURER_CLIENT_ACK,
                                            KURER_CLIENT_LOOKUP,
                                            KURER_CLIENT_PREKEYS,
                                            KURER_CLIENT_FETCH_PREKEYS,
                                            KURER_CLIENT_PING,
                                            KURER_CLIENT_REVOCATION,
                                            KURER_CLIENT_REVOCATIONS,
                                            KURER_CLIENT_REVOCATION_CHUNK,
                                            KURER_CLIENT_REVOCATION_CHUNK_FETCH};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_true(kurer__dispatch_allowed(all[i], 0)); /* every kind has a handler */
        int upload = all[i] == KURER_CLIENT_REVOCATION || all[i] == KURER_CLIENT_REVOCATION_CHUNK;
        assert_int_equal(kurer__dispatch_allowed(all[i], 1), upload); /* NK: uploads only */
    }
    assert_false(kurer__dispatch_allowed(KURER_CLIENT_NONE, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),   cmocka_unit_test(test_addr_table),
        cmocka_unit_test(test_take),     cmocka_unit_test(test_htab),
        cmocka_unit_test(test_dispatch),
    };
    if (kurer_crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
