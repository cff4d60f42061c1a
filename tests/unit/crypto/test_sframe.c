/* crypto/sframe.c's rules beyond the known answers (test_sframe_vectors.c): the replay window,
 * typed refusals, counter exhaustion, and the per-call keys. One ctest entry per case
 * (crypto_sframe_<case>). */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/crypto.h"
#include "kurer/sframe.h"
#include "sframe_internal.h"

#define KID 0x1234u

static const uint8_t base[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t meta[] = "call 7";

typedef struct pair {
    kurer_sframe_send *s;
    kurer_sframe_recv *r;
} pair;

static void pair_new(pair *p, unsigned suite)
{
    assert_int_equal(kurer_sframe_send_new(&p->s, suite, KID, base, sizeof base), 0);
    assert_int_equal(kurer_sframe_recv_new(&p->r), 0);
    assert_int_equal(kurer_sframe_recv_add_key(p->r, suite, KID, base, sizeof base), 0);
}

static void pair_free(pair *p)
{
    kurer_sframe_send_free(p->s);
    kurer_sframe_recv_free(p->r);
}

/* A 160-byte frame with counter ctr (the send context is set to it). */
static size_t frame_at(pair *p, uint64_t ctr, uint8_t out[256])
{
    uint8_t pt[160];
    size_t n = 0;
    memset(pt, (int)(ctr & 0xff), sizeof pt);
    kurer__sframe_send_set_counter(p->s, ctr);
    assert_int_equal(kurer_sframe_protect(p->s, meta, sizeof meta, pt, sizeof pt, out, 256, &n), 0);
    return n;
}

static int unprotect(pair *p, const uint8_t *f, size_t n)
{
    uint8_t pt[256];
    size_t len = 0;
    return kurer_sframe_unprotect(p->r, meta, sizeof meta, f, n, pt, sizeof pt, &len, NULL);
}

static void test_roundtrip(void **state)
{
    static const unsigned suites[] = {1, 2, 3, 4, 5};
    (void)state;
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        pair p;
        pair_new(&p, suites[s]);
        for (uint64_t i = 0; i < 300; i++) {
            uint8_t pt[200], f[256], back[256];
            size_t n = 0, len = 0, ptn = (size_t)(i % 200);
            kurer_sframe_header h;
            memset(pt, (int)i, sizeof pt);
            assert_true(kurer_sframe_send_counter(p.s) == i);
            assert_int_equal(kurer_sframe_protect(p.s, NULL, 0, pt, ptn, f, sizeof f, &n), 0);
            assert_int_equal(n, kurer_sframe_header_len(KID, i) + ptn +
                                    kurer_sframe_tag_len(suites[s]));
            assert_int_equal(
                kurer_sframe_unprotect(p.r, NULL, 0, f, n, back, sizeof back, &len, &h), 0);
            assert_int_equal(len, ptn);
            assert_memory_equal(back, pt, ptn);
            assert_true(h.kid == KID && h.ctr == i);
            /* No plaintext byte run survives in the frame. */
            if (ptn >= 16)
                assert_null(memmem(f, n, pt, 16));
        }
        pair_free(&p);
    }
}

static void test_replay(void **state)
{
    pair p;
    uint8_t f[256];
    size_t n;
    (void)state;
    pair_new(&p, KURER_SFRAME_AES_256_GCM_SHA512_128);
    n = frame_at(&p, 5, f);
    assert_int_equal(unprotect(&p, f, n), 0);
    assert_int_equal(unprotect(&p, f, n), KURER_EREPLAY);
    /* Out of order inside the window is accepted once. */
    uint8_t g[256];
    size_t m = frame_at(&p, 2, g);
    n = frame_at(&p, 900, f);
    assert_int_equal(unprotect(&p, f, n), 0);
    assert_int_equal(unprotect(&p, g, m), 0);
    assert_int_equal(unprotect(&p, g, m), KURER_EREPLAY);
    assert_int_equal(unprotect(&p, f, n), KURER_EREPLAY);
    /* Every counter below the top and inside the window, in any order, exactly once. */
    for (uint64_t c = 899; c > 899 - 300; c -= 3) {
        n = frame_at(&p, c, f);
        assert_int_equal(unprotect(&p, f, n), c == 5 ? KURER_EREPLAY : 0);
        assert_int_equal(unprotect(&p, f, n), KURER_EREPLAY);
    }
    pair_free(&p);
}

static void test_too_old(void **state)
{
    pair p;
    uint8_t f[256], old[256], edge[256];
    size_t n, on, en;
    (void)state;
    pair_new(&p, KURER_SFRAME_AES_256_GCM_SHA512_128);
    on = frame_at(&p, 100, old);
    en = frame_at(&p, 101, edge);
    n = frame_at(&p, 100 + KURER_SFRAME_REPLAY_WINDOW, f);
    assert_int_equal(unprotect(&p, f, n), 0);
    /* top - 1024 is outside the window, top - 1023 is its last slot. */
    assert_int_equal(unprotect(&p, old, on), KURER_ETOOOLD);
    assert_int_equal(unprotect(&p, edge, en), 0);
    assert_int_equal(unprotect(&p, edge, en), KURER_EREPLAY);
    /* A jump far ahead forgets the whole window: what was in it is now too old. */
    n = frame_at(&p, 1u << 20, f);
    assert_int_equal(unprotect(&p, f, n), 0);
    assert_int_equal(unprotect(&p, edge, en), KURER_ETOOOLD);
    kurer_sframe_recv_counts cn;
    kurer_sframe_recv_get_counts(p.r, &cn);
    assert_true(cn.accepted == 3 && cn.too_old == 2 && cn.replayed == 1);
    assert_true(cn.malformed == 0 && cn.unknown_key == 0 && cn.bad_tag == 0);
    /* A shift across word boundaries keeps the bits: accept ten in a row, jump by 70. */
    for (uint64_t c = 2000000; c < 2000010; c++) {
        n = frame_at(&p, c, f);
        assert_int_equal(unprotect(&p, f, n), 0);
    }
    n = frame_at(&p, 2000079, f);
    assert_int_equal(unprotect(&p, f, n), 0);
    for (uint64_t c = 2000000; c < 2000079; c++) {
        n = frame_at(&p, c, f);
        assert_int_equal(unprotect(&p, f, n), c < 2000010 ? KURER_EREPLAY : 0);
    }
    pair_free(&p);
}

static void test_unknown_kid(void **state)
{
    pair p;
    kurer_sframe_send *other;
    uint8_t f[256], pt[16] = {0}, back[64];
    size_t n = 0, len = 0;
    kurer_sframe_header h;
    (void)state;
    pair_new(&p, KURER_SFRAME_AES_256_GCM_SHA512_128);
    assert_int_equal(kurer_sframe_send_new(&other, KURER_SFRAME_AES_256_GCM_SHA512_128, KID + 1,
                                           base, sizeof base),
                     0);
    assert_int_equal(kurer_sframe_protect(other, NULL, 0, pt, sizeof pt, f, sizeof f, &n), 0);
    assert_int_equal(kurer_sframe_unprotect(p.r, NULL, 0, f, n, back, sizeof back, &len, &h),
                     KURER_EUNKNOWNKEY);
    assert_true(h.kid == KID + 1); /* the header is reported for the refusal */
    /* After the key is added it opens; after it is removed it is unknown again. */
    assert_int_equal(kurer_sframe_recv_add_key(p.r, KURER_SFRAME_AES_256_GCM_SHA512_128, KID + 1,
                                               base, sizeof base),
                     0);
    assert_int_equal(kurer_sframe_unprotect(p.r, NULL, 0, f, n, back, sizeof back, &len, NULL), 0);
    assert_int_equal(kurer_sframe_recv_remove_key(p.r, KID + 1), 0);
    assert_int_equal(kurer_sframe_recv_remove_key(p.r, KID + 1), KURER_ENOENT);
    assert_int_equal(kurer_sframe_unprotect(p.r, NULL, 0, f, n, back, sizeof back, &len, NULL),
                     KURER_EUNKNOWNKEY);
    kurer_sframe_send_free(other);
    pair_free(&p);
}

static void test_bad_tag(void **state)
{
    static const unsigned suites[] = {1, 3, 4, 5};
    (void)state;
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        pair p;
        uint8_t f[256], back[256];
        size_t n, len = 99;
        pair_new(&p, suites[s]);
        n = frame_at(&p, 300, f); /* header 0x99 0x12 0x34 0x01 0x2c */
        /* Every single bit flip (header, ciphertext, tag) is refused, and refused as a bad tag
         * when it keeps the KID: the window has not moved, so the genuine frame still opens. */
        for (size_t i = 0; i < n; i++) {
            for (int b = 0; b < 8; b++) {
                int rc;
                f[i] ^= (uint8_t)(1 << b);
                rc = kurer_sframe_unprotect(p.r, meta, sizeof meta, f, n, back, sizeof back, &len,
                                            NULL);
                if (i >= 1 && i <= 2)
                    assert_true(rc == KURER_EUNKNOWNKEY);
                else if (i == 0)
                    assert_true(rc == KURER_EDECRYPT || rc == KURER_EUNKNOWNKEY ||
                                rc == KURER_ETRUNC);
                else
                    assert_int_equal(rc, KURER_EDECRYPT);
                assert_int_equal(len, 0);
                f[i] ^= (uint8_t)(1 << b);
            }
        }
        /* A wrong key under the right KID. */
        kurer_sframe_recv *wrong;
        uint8_t other[32];
        memcpy(other, base, sizeof other);
        other[31] ^= 0x80;
        assert_int_equal(kurer_sframe_recv_new(&wrong), 0);
        assert_int_equal(kurer_sframe_recv_add_key(wrong, suites[s], KID, other, sizeof other), 0);
        assert_int_equal(
            kurer_sframe_unprotect(wrong, meta, sizeof meta, f, n, back, sizeof back, &len, NULL),
            KURER_EDECRYPT);
        kurer_sframe_recv_free(wrong);
        assert_int_equal(unprotect(&p, f, n), 0);
        pair_free(&p);
    }
}

static void test_truncated(void **state)
{
    pair p;
    uint8_t f[256], back[256];
    size_t n, len;
    (void)state;
    pair_new(&p, KURER_SFRAME_AES_256_GCM_SHA512_128);
    n = frame_at(&p, 7, f); /* 3-byte header (KID 0x1234, CTR 7 in the config byte) */
    assert_int_equal(
        kurer_sframe_unprotect(p.r, meta, sizeof meta, f, 0, back, sizeof back, &len, NULL),
        KURER_ETRUNC);
    assert_int_equal(
        kurer_sframe_unprotect(p.r, meta, sizeof meta, f, 2, back, sizeof back, &len, NULL),
        KURER_ETRUNC);
    /* Header and less than a tag. */
    assert_int_equal(
        kurer_sframe_unprotect(p.r, meta, sizeof meta, f, 3 + 15, back, sizeof back, &len, NULL),
        KURER_ETRUNC);
    /* Header and exactly a tag: an empty plaintext, whose tag is wrong here. */
    assert_int_equal(
        kurer_sframe_unprotect(p.r, meta, sizeof meta, f, 3 + 16, back, sizeof back, &len, NULL),
        KURER_EDECRYPT);
    /* Output too small. */
    assert_int_equal(kurer_sframe_unprotect(p.r, meta, sizeof meta, f, n, back, 159, &len, NULL),
                     KURER_EINVAL);
    assert_int_equal(unprotect(&p, f, n), 0);
    /* Too long a frame or metadata. */
    uint8_t *big = calloc(1, KURER_SFRAME_MAX_FRAME + 1);
    assert_non_null(big);
    assert_int_equal(kurer_sframe_unprotect(p.r, NULL, 0, big, KURER_SFRAME_MAX_FRAME + 1, big,
                                            KURER_SFRAME_MAX_FRAME + 1, &len, NULL),
                     KURER_ELIMIT);
    assert_int_equal(kurer_sframe_protect(p.s, big, KURER_SFRAME_MAX_METADATA + 1, f, 1, back,
                                          sizeof back, &len),
                     KURER_ELIMIT);
    assert_int_equal(kurer_sframe_protect(p.s, NULL, 0, big, KURER_SFRAME_MAX_FRAME, big,
                                          KURER_SFRAME_MAX_FRAME + 1, &len),
                     KURER_ELIMIT);
    assert_int_equal(kurer_sframe_protect(p.s, NULL, 0, f, 160, back, 160, &len), KURER_EINVAL);
    free(big);
    pair_free(&p);
}

static void test_exhaustion(void **state)
{
    pair p;
    uint8_t f[256];
    size_t n = 0;
    uint64_t before;
    (void)state;
    pair_new(&p, KURER_SFRAME_AES_256_GCM_SHA512_128);
    n = frame_at(&p, UINT64_MAX - 1, f);
    assert_int_equal(unprotect(&p, f, n), 0);
    assert_true(kurer_sframe_send_counter(p.s) == UINT64_MAX);
    /* The last counter is used once (header: config, 2-byte KID, 8-byte CTR) and then no more. */
    assert_int_equal(kurer_sframe_protect(p.s, meta, sizeof meta, f, 10, f + 100, 150, &n), 0);
    assert_int_equal(n, 1 + 2 + 8 + 10 + 16);
    assert_int_equal(unprotect(&p, f + 100, n), 0);
    before = kurer_sframe_send_counter(p.s);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(kurer_sframe_protect(p.s, meta, sizeof meta, f, 10, f + 100, 150, &n),
                         KURER_ELIMIT);
        assert_int_equal(n, 0);
    }
    assert_true(kurer_sframe_send_counter(p.s) == before);
    pair_free(&p);
}

static void test_call_keys(void **state)
{
    uint8_t a[32], b[32], k1[32], k2[32], k3[32], zero[32] = {0};
    uint64_t kid1, kid2, kid3;
    (void)state;
    kurer_random(a, sizeof a);
    kurer_random(b, sizeof b);
    assert_int_equal(kurer_sframe_call_key_ids(42, a, b, KURER_SFRAME_CALLER_TO_CALLEE, &kid1, k1),
                     0);
    assert_int_equal(kurer_sframe_call_key_ids(42, a, b, KURER_SFRAME_CALLEE_TO_CALLER, &kid2, k2),
                     0);
    assert_true(kid1 != kid2);
    assert_true((kid1 & 1) == 0 && (kid2 & 1) == 1 && kid1 < 65536 && kid2 < 65536);
    assert_false(kurer_ct_equal(k1, k2, 32));
    /* Deterministic, and bound to the call id and to both base keys in their roles. */
    assert_int_equal(kurer_sframe_call_key_ids(42, a, b, KURER_SFRAME_CALLER_TO_CALLEE, &kid3, k3),
                     0);
    assert_true(kid3 == kid1 && kurer_ct_equal(k3, k1, 32));
    assert_int_equal(kurer_sframe_call_key_ids(43, a, b, KURER_SFRAME_CALLER_TO_CALLEE, &kid3, k3),
                     0);
    assert_false(kurer_ct_equal(k3, k1, 32));
    assert_int_equal(kurer_sframe_call_key_ids(42, b, a, KURER_SFRAME_CALLER_TO_CALLEE, &kid3, k3),
                     0);
    assert_false(kurer_ct_equal(k3, k1, 32) || kurer_ct_equal(k3, k2, 32));
    assert_int_equal(
        kurer_sframe_call_key_ids(42, zero, b, KURER_SFRAME_CALLER_TO_CALLEE, &kid3, k3),
        KURER_EBADKEY);
    assert_int_equal(
        kurer_sframe_call_key_ids(42, a, zero, KURER_SFRAME_CALLEE_TO_CALLER, &kid3, k3),
        KURER_EBADKEY);
    assert_int_equal(kurer_sframe_call_key_ids(42, a, b, (kurer_sframe_direction)2, &kid3, k3),
                     KURER_EINVAL);
}

/* Both sides' contexts: each side opens what the other sends, never its own frames. */
static void test_call_contexts(void **state)
{
    uint8_t a[32], b[32], f[256], g[256], back[256], pt[40] = "twenty ms of opus, more or less";
    kurer_sframe_send *cs, *es;
    kurer_sframe_recv *cr, *er;
    size_t n = 0, m = 0, len = 0;
    (void)state;
    kurer_random(a, sizeof a);
    kurer_random(b, sizeof b);
    assert_int_equal(kurer_sframe_call_contexts(9, a, b, 1, &cs, &cr), 0);
    assert_int_equal(kurer_sframe_call_contexts(9, a, b, 0, &es, &er), 0);
    assert_int_equal(kurer_sframe_protect(cs, NULL, 0, pt, sizeof pt, f, sizeof f, &n), 0);
    assert_int_equal(kurer_sframe_protect(es, NULL, 0, pt, sizeof pt, g, sizeof g, &m), 0);
    assert_int_equal(kurer_sframe_unprotect(er, NULL, 0, f, n, back, sizeof back, &len, NULL), 0);
    assert_memory_equal(back, pt, sizeof pt);
    assert_int_equal(kurer_sframe_unprotect(cr, NULL, 0, g, m, back, sizeof back, &len, NULL), 0);
    /* A reflected frame (our own, sent back to us) names a KID we do not receive under. */
    assert_int_equal(kurer_sframe_unprotect(cr, NULL, 0, f, n, back, sizeof back, &len, NULL),
                     KURER_EUNKNOWNKEY);
    assert_int_equal(kurer_sframe_unprotect(er, NULL, 0, g, m, back, sizeof back, &len, NULL),
                     KURER_EUNKNOWNKEY);
    kurer_sframe_send_free(cs);
    kurer_sframe_send_free(es);
    kurer_sframe_recv_free(cr);
    kurer_sframe_recv_free(er);
}

static void test_keys_and_args(void **state)
{
    kurer_sframe_send *s = (kurer_sframe_send *)1;
    kurer_sframe_recv *r;
    kurer_sframe_header h;
    static const uint8_t long_form[] = {0x88, 0x00, 0x00}; /* KID 0 and CTR 0 in long forms */
    (void)state;
    assert_int_equal(kurer_sframe_send_new(&s, 6, 1, base, sizeof base), KURER_EUNSUPPORTED);
    assert_null(s);
    assert_int_equal(kurer_sframe_send_new(&s, 5, 1, base, 15), KURER_EINVAL);
    assert_int_equal(kurer_sframe_send_new(&s, 5, 1, base, 65), KURER_EINVAL);
    assert_int_equal(kurer_sframe_send_new(&s, 5, 1, NULL, 32), KURER_EINVAL);
    assert_int_equal(kurer_sframe_recv_new(&r), 0);
    for (uint64_t k = 0; k < KURER_SFRAME_MAX_RECV_KEYS; k++)
        assert_int_equal(kurer_sframe_recv_add_key(r, 5, k * 1000, base, sizeof base), 0);
    assert_int_equal(kurer_sframe_recv_add_key(r, 5, 1000, base, sizeof base), KURER_EEXIST);
    assert_int_equal(kurer_sframe_recv_add_key(r, 5, 77, base, sizeof base), KURER_ELIMIT);
    assert_int_equal(kurer_sframe_recv_remove_key(r, 0), 0);
    assert_int_equal(kurer_sframe_recv_add_key(r, 5, 77, base, sizeof base), 0);
    kurer_sframe_recv_free(r);
    kurer_sframe_send_free(NULL);
    kurer_sframe_recv_free(NULL);
    /* A longer encoding than needed parses (the tag covers the header bytes as sent). */
    assert_int_equal(kurer_sframe_header_decode(long_form, sizeof long_form, &h), 0);
    assert_true(h.kid == 0 && h.ctr == 0 && h.len == 3);
    assert_int_equal(kurer_sframe_header_decode(long_form, 2, &h), KURER_ETRUNC);
    assert_true(h.len == 0);
    assert_int_equal(kurer_sframe_tag_len(3), 4);
    assert_int_equal(kurer_sframe_tag_len(0), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),     cmocka_unit_test(test_replay),
        cmocka_unit_test(test_too_old),       cmocka_unit_test(test_unknown_kid),
        cmocka_unit_test(test_bad_tag),       cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_exhaustion),    cmocka_unit_test(test_call_keys),
        cmocka_unit_test(test_call_contexts), cmocka_unit_test(test_keys_and_args),
    };
    if (kurer_crypto_init() != 0)
        return 1;
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
