/* Online enrolment's guards (relay/enrol_rate.c; review of issue 16, M2, L2, L4): the table of
 * refused attempts per address evicts the oldest when full instead of refusing everyone, keys
 * IPv6 per /64, counts every charge; an invitation's lifetime is checked without overflow; one
 * function decides expiry, at one boundary. */
#include "relay_units.h"

#include <string.h>

#include "enrol_rate.h"
#include "kurer/error.h"

static void ip4(uint8_t ip[16], uint32_t v)
{
    memset(ip, 0, 16);
    ip[10] = ip[11] = 0xff;
    ip[12] = (uint8_t)(v >> 24);
    ip[13] = (uint8_t)(v >> 16);
    ip[14] = (uint8_t)(v >> 8);
    ip[15] = (uint8_t)v;
}

/* A full table: a new address evicts the one whose minute began first and may try; the
 * others keep their counts. */
void test_enrol_rate_full(void **state)
{
    (void)state;
    static kurer__enrol_addr tab[KURER__ENROL_ADDRS];
    uint8_t ip[16];
    memset(tab, 0, sizeof(tab));
    for (uint32_t i = 0; i < KURER__ENROL_ADDRS; i++) {
        ip4(ip, 0x0a000000u + i);
        for (int f = 0; f < 3; f++)
            kurer__enrol_rate_failed(tab, KURER__ENROL_ADDRS, ip, 1000 + i);
        assert_false(kurer__enrol_rate_may_try(tab, KURER__ENROL_ADDRS, ip, 3, 1000 + i));
    }
    /* every slot live (all within the minute): a newcomer is not refused */
    ip4(ip, 0x0b000001u);
    assert_true(kurer__enrol_rate_may_try(tab, KURER__ENROL_ADDRS, ip, 3, 3000));
    /* ... it took the oldest (10.0.0.0, minute begun at 1000; the others began up to 2023), which
     * starts afresh */
    ip4(ip, 0x0a000000u);
    assert_true(kurer__enrol_rate_may_try(tab, KURER__ENROL_ADDRS, ip, 3, 3001));
    /* the rest keep their counts: 10.0.0.5 is still over */
    ip4(ip, 0x0a000005u);
    assert_false(kurer__enrol_rate_may_try(tab, KURER__ENROL_ADDRS, ip, 3, 3002));
    /* and its minute ends */
    assert_true(
        kurer__enrol_rate_may_try(tab, KURER__ENROL_ADDRS, ip, 3, 1005 + KURER__ENROL_WINDOW_MS));
    /* rate 0: no limit; no table: refused */
    assert_true(kurer__enrol_rate_may_try(tab, KURER__ENROL_ADDRS, ip, 0, 3000));
    assert_false(kurer__enrol_rate_may_try(NULL, 0, ip, 3, 3000));
}

/* IPv6: the addresses of one /64 share a count; another /64 has its own; IPv4 stays whole. */
void test_enrol_rate_v6(void **state)
{
    (void)state;
    static kurer__enrol_addr tab[8];
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t b[16], c[16], k[16];
    memset(tab, 0, sizeof(tab));
    memcpy(b, a, 16);
    memset(b + 8, 0xab, 8); /* same /64, another host */
    memcpy(c, a, 16);
    c[7] = 3; /* the next /64 */
    kurer__enrol_rate_failed(tab, 8, a, 10);
    kurer__enrol_rate_failed(tab, 8, b, 11);
    assert_false(kurer__enrol_rate_may_try(tab, 8, a, 2, 12));
    assert_false(kurer__enrol_rate_may_try(tab, 8, b, 2, 12));
    assert_true(kurer__enrol_rate_may_try(tab, 8, c, 2, 12));
    kurer__enrol_rate_key(b, k);
    assert_memory_equal(k, a, 8);
    assert_memory_equal(k + 8, (uint8_t[8]){0}, 8);
    uint8_t v4[16], v4b[16];
    ip4(v4, 0xc0a80001u);
    ip4(v4b, 0xc0a80002u);
    kurer__enrol_rate_key(v4, k);
    assert_memory_equal(k, v4, 16);
    kurer__enrol_rate_failed(tab, 8, v4, 20);
    kurer__enrol_rate_failed(tab, 8, v4, 21);
    assert_false(kurer__enrol_rate_may_try(tab, 8, v4, 2, 22));
    assert_true(kurer__enrol_rate_may_try(tab, 8, v4b, 2, 22)); /* its neighbour is not it */
}

/* L2: a lifetime that would overflow as expires_at - created_at is refused, not wrapped. */
void test_invite_times(void **state)
{
    (void)state;
    int64_t now = 1800000000;
    assert_int_equal(kurer__invite_times_check(now, now + 86400, now), 0);
    assert_int_equal(kurer__invite_times_check(now, now + KURER__INVITE_LIFE_MAX, now), 0);
    assert_int_equal(kurer__invite_times_check(now, now + KURER__INVITE_LIFE_MAX + 1, now),
                     KURER_EINVAL);
    /* INT64_MAX - INT64_MIN overflows; so does anything from a very negative creation */
    assert_int_equal(kurer__invite_times_check(INT64_MIN, INT64_MAX, now), KURER_EINVAL);
    assert_int_equal(kurer__invite_times_check(INT64_MIN + 1, now + 60, now), KURER_EINVAL);
    assert_int_equal(kurer__invite_times_check(-1, now + 60, now), KURER_EINVAL);
    assert_int_equal(kurer__invite_times_check(0, now + 60, now), KURER_EINVAL);
    assert_int_equal(kurer__invite_times_check(now + 120, now + 60, now), KURER_EINVAL);
    assert_int_equal(kurer__invite_times_check(now + KURER__INVITE_SKEW_S + 1, now + 3600, now),
                     KURER_EINVAL);
    assert_int_equal(kurer__invite_times_check(now + KURER__INVITE_SKEW_S, now + 3600, now), 0);
    assert_int_equal(kurer__invite_times_check(now - 60, now - 1, now), KURER_EINVITEEXPIRED);
    /* a clock at the end of time does not overflow either */
    assert_int_equal(kurer__invite_times_check(INT64_MAX - 10, INT64_MAX, INT64_MAX - 20), 0);
}

/* L4: expired from the second expires_at on, for registration and use alike. */
void test_invite_expiry(void **state)
{
    (void)state;
    int64_t now = 1800000000;
    assert_false(kurer__invite_expired(now + 1, now));
    assert_true(kurer__invite_expired(now, now));
    assert_true(kurer__invite_expired(now - 1, now));
    /* registration says expired exactly when use does */
    assert_int_equal(kurer__invite_times_check(now - 100, now, now), KURER_EINVITEEXPIRED);
    assert_int_equal(kurer__invite_times_check(now - 100, now + 1, now), 0);
}
