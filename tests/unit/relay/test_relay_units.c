/* Relay unit tests (issue 10, item 4) of what integration tests reach only through processes:
 * the token bucket (refill by an injected clock, burst, rate 0, overflow, per device across
 * reconnects), the source-address table (/64 for IPv6, idle entries forgotten) and the one-time
 * prekey take bound. The cases of the other files are listed here too (relay_units.h). */
#include "relay_units.h"

#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "kurer/crypto.h"
#include "kurer/util.h"

void test_bucket(void **state)
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

/* Refill is proportional to the time passed (rate 3: 333 ms is not yet a token, 334 ms is), a
 * refused take takes nothing, a take of 0 always succeeds, and full means back at the burst. */
void test_bucket_refill(void **state)
{
    kurer__bucket b;
    (void)state;
    kurer__bucket_init(&b, 3, 0); /* 3/s, burst 12 */
    assert_true(kurer__bucket_take(&b, 3, 12, 0));
    assert_true(kurer__bucket_take(&b, 3, 0, 0)); /* nothing asked: granted even when empty */
    assert_false(kurer__bucket_take(&b, 3, 1, 333));
    assert_true(kurer__bucket_take(&b, 3, 1, 334));
    assert_false(kurer__bucket_take(&b, 3, 1, 334));
    /* 5 tokens at 500 ms: 6 are refused, and the refusal keeps all 5 */
    kurer__bucket_init(&b, 10, 0);
    assert_true(kurer__bucket_take(&b, 10, 40, 0));
    assert_false(kurer__bucket_take(&b, 10, 6, 500));
    assert_true(kurer__bucket_take(&b, 10, 5, 500));
    assert_false(kurer__bucket_take(&b, 10, 1, 500));
    /* back at its burst exactly after burst/rate seconds; asking does not change the bucket */
    assert_false(kurer__bucket_full(&b, 10, 4499));
    kurer__bucket copy = b;
    assert_true(kurer__bucket_full(&b, 10, 4500));
    assert_memory_equal(&copy, &b, sizeof(b));
    /* 6 s at 10/s would be 60 tokens: the bucket holds its burst of 40, no more */
    kurer__bucket_init(&b, 10, 0);
    assert_true(kurer__bucket_take(&b, 10, 40, 0));
    assert_false(kurer__bucket_take(&b, 10, 41, 6000));
    assert_true(kurer__bucket_take(&b, 10, 40, 6000));
    assert_false(kurer__bucket_take(&b, 10, 1, 6000));
    /* an earlier time than the last (the clock is monotonic: never) adds nothing */
    assert_false(kurer__bucket_take(&b, 10, 1, 100));
    /* the burst is that of the rate asked with: a bucket filled at 10/s holds 4 at 1/s */
    kurer__bucket_init(&b, 10, 0);
    assert_false(kurer__bucket_take(&b, 1, 5, 1));
    assert_true(kurer__bucket_take(&b, 1, 4, 1));
    /* rate 0 is no limit: every take, however large, and always full */
    kurer__bucket_init(&b, 0, 0);
    assert_true(kurer__bucket_take(&b, 0, SIZE_MAX, 0));
    assert_true(kurer__bucket_take(&b, 0, SIZE_MAX, 0));
    assert_true(kurer__bucket_full(&b, 0, 0));
}

/* Extreme clocks, rates and counts neither overflow into a grant nor lose the burst cap. */
void test_bucket_overflow(void **state)
{
    kurer__bucket b;
    (void)state;
    kurer__bucket_init(&b, 1, 0);
    assert_false(kurer__bucket_take(&b, 1, SIZE_MAX, 0));
    assert_true(kurer__bucket_take(&b, 1, 4, 0)); /* the refusal above took nothing */
    /* from 0 to the end of time: refilled to its burst of 4, no further */
    assert_true(kurer__bucket_take(&b, 1, 4, UINT64_MAX));
    assert_false(kurer__bucket_take(&b, 1, 1, UINT64_MAX));
    /* near the end of the clock the difference is still exact: 1000 ms is one token */
    kurer__bucket_init(&b, 1, UINT64_MAX - 2000);
    assert_true(kurer__bucket_take(&b, 1, 4, UINT64_MAX - 2000));
    assert_false(kurer__bucket_take(&b, 1, 1, UINT64_MAX - 1001)); /* 999 ms */
    assert_true(kurer__bucket_take(&b, 1, 1, UINT64_MAX));         /* 2000 ms: 2 tokens */
    assert_true(kurer__bucket_take(&b, 1, 1, UINT64_MAX));
    assert_false(kurer__bucket_take(&b, 1, 1, UINT64_MAX));
    /* the largest rate: its burst (4x) is computed without wrapping */
    kurer__bucket_init(&b, UINT64_MAX, 0);
    assert_true(b.tokens > 1e19);
    assert_true(kurer__bucket_take(&b, UINT64_MAX, (size_t)1 << 40, UINT64_MAX));
    assert_false(kurer__bucket_full(&b, UINT64_MAX, UINT64_MAX)); /* no time passed: short */
    assert_true(b.tokens > 1e19);
}

/* A device's buckets live with its directory entry: a new connection of the device (fresh own
 * buckets) finds them drained; each kind has its own; a device without an entry uses the
 * connection's. */
void test_bucket_per_device(void **state)
{
    (void)state;
    relay *r = fx_relay_new();
    r->cfg.send_rate = 1; /* burst 4 */
    r->cfg.ping_rate = 2; /* burst 8 */
    (void)fx_dir_add(r, "eve@mof", 1, FX_NOW + FX_YEAR);
    uint64_t t = kurer_time_mono_ms();
    rconn a = fx_conn(r, "eve@mof", 1);
    assert_true(kurer__rate_take_at(&a, B_SEND, 4, t));
    assert_false(kurer__rate_take_at(&a, B_SEND, 1, t));
    rconn b = fx_conn(r, "eve@mof", 1); /* the device reconnects */
    assert_false(kurer__rate_take_at(&b, B_SEND, 1, t));
    assert_true(kurer__rate_take_at(&b, B_PING, 8, t)); /* another kind, another bucket */
    assert_false(kurer__rate_take_at(&a, B_PING, 1, t));
    assert_true(kurer__rate_take_at(&b, B_SEND, 1, t + 1000));
    /* no directory entry: each connection meters itself */
    rconn c = fx_conn(r, "bo@mof", 7), d = fx_conn(r, "bo@mof", 7);
    assert_true(kurer__rate_take_at(&c, B_SEND, 4, t));
    assert_false(kurer__rate_take_at(&c, B_SEND, 1, t));
    assert_true(kurer__rate_take_at(&d, B_SEND, 4, t));
    /* rate 0: unlimited */
    r->cfg.send_rate = 0;
    assert_true(kurer__rate_take_at(&a, B_SEND, 1000000, t));
    fx_relay_free(r);
}

static void addr6(const char *s, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)(void *)ss;
    a->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
}

void test_addr_table(void **state)
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

void test_take(void **state)
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

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_bucket_refill),
        cmocka_unit_test(test_bucket_overflow),
        cmocka_unit_test(test_bucket_per_device),
        cmocka_unit_test(test_addr_table),
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_enrol_rate_full),
        cmocka_unit_test(test_enrol_rate_v6),
        cmocka_unit_test(test_invite_times),
        cmocka_unit_test(test_invite_expiry),
        cmocka_unit_test(test_htab),
        cmocka_unit_test(test_htab_growth),
        cmocka_unit_test(test_htab_collisions),
        cmocka_unit_test(test_htab_many),
        cmocka_unit_test(test_htab_remove_iterating),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_dispatch_table),
        cmocka_unit_test(test_match_sets),
        cmocka_unit_test(test_match_unknown),
        cmocka_unit_test(test_classify_accepted),
        cmocka_unit_test(test_classify_stale),
        cmocka_unit_test(test_classify_unknown),
        cmocka_unit_test(test_classify_own_user),
        cmocka_unit_test(test_classify_device_limit),
        cmocka_unit_test(test_policy_envelope_limits),
        cmocka_unit_test(test_policy_deliver_fits),
        cmocka_unit_test(test_policy_bounds_rate),
        cmocka_unit_test(test_policy_result_fits),
        cmocka_unit_test(test_policy_stale_fit),
    };
    if (kurer_crypto_init() != 0)
        return 1;
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
