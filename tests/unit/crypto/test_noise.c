/* crypto/noise.c beyond the vectors: round trips with random keys and negative tests that expect
 * the exact error (tampering, truncation, wrong keys, low-order points, wrong turns, limits,
 * nonce exhaustion). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/buf.h"
#include "kurer/crypto.h"
#include "kurer/noise.h"

static const uint8_t prologue[] = "kurer/1";
#define PROLOGUE_LEN (sizeof(prologue) - 1)

typedef struct keys {
    uint8_t init_sk[32], init_pk[32];
    uint8_t resp_sk[32], resp_pk[32];
    uint8_t init_e[32], resp_e[32];
} keys;

static void make_keys(keys *k)
{
    uint8_t pk[32];
    assert_int_equal(kurer_noise_keypair(k->init_pk, k->init_sk), 0);
    assert_int_equal(kurer_noise_keypair(k->resp_pk, k->resp_sk), 0);
    assert_int_equal(kurer_noise_keypair(pk, k->init_e), 0);
    assert_int_equal(kurer_noise_keypair(pk, k->resp_e), 0);
}

static kurer_noise_hs *new_initiator(const keys *k, kurer_noise_pattern p, const uint8_t *resp_pk)
{
    kurer_noise_hs *hs = NULL;
    assert_int_equal(kurer_noise_hs_new(&hs, p, 1, prologue, PROLOGUE_LEN,
                                        p == KURER_NOISE_IK ? k->init_sk : NULL, resp_pk),
                     0);
    assert_int_equal(kurer_noise_hs_set_ephemeral(hs, k->init_e), 0);
    return hs;
}

static kurer_noise_hs *new_responder(const keys *k, kurer_noise_pattern p)
{
    kurer_noise_hs *hs = NULL;
    assert_int_equal(kurer_noise_hs_new(&hs, p, 0, prologue, PROLOGUE_LEN, k->resp_sk, NULL), 0);
    assert_int_equal(kurer_noise_hs_set_ephemeral(hs, k->resp_e), 0);
    return hs;
}

/* Message 1 and message 2 of a handshake with fixed keys (so that they can be rebuilt). */
static void make_messages(const keys *k, kurer_noise_pattern p, kurer_buf *m1, kurer_buf *m2)
{
    kurer_noise_hs *ini = new_initiator(k, p, k->resp_pk);
    kurer_noise_hs *res = new_responder(k, p);
    kurer_buf pl;
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    assert_int_equal(kurer_noise_hs_write_message(ini, (const uint8_t *)"hello", 5, m1), 0);
    assert_int_equal(kurer_noise_hs_read_message(res, m1->data, m1->len, &pl), 0);
    assert_int_equal(kurer_noise_hs_write_message(res, (const uint8_t *)"welcome", 7, m2), 0);
    assert_int_equal(kurer_noise_hs_read_message(ini, m2->data, m2->len, &pl), 0);
    kurer_buf_release(&pl);
    kurer_noise_hs_free(ini);
    kurer_noise_hs_free(res);
}

/* An initiator that has written message 1 and waits for message 2. */
static kurer_noise_hs *initiator_after_m1(const keys *k, kurer_noise_pattern p)
{
    kurer_noise_hs *ini = new_initiator(k, p, k->resp_pk);
    kurer_buf m1;
    kurer_buf_init(&m1, KURER_NOISE_MAX_MSG);
    assert_int_equal(kurer_noise_hs_write_message(ini, (const uint8_t *)"hello", 5, &m1), 0);
    kurer_buf_release(&m1);
    return ini;
}

/* with_public: the responder is made with its public key precomputed, as the relay does. */
static void round_trip_as(kurer_noise_pattern p, int with_public)
{
    keys k;
    kurer_noise_hs *ini = NULL, *res = NULL;
    kurer_buf m, pl;
    uint8_t h1[64], h2[64];
    kurer_noise_cipher is, ir, rs, rr;
    int i;

    make_keys(&k);
    /* Random ephemerals this time: no set_ephemeral. */
    assert_int_equal(kurer_noise_hs_new(&ini, p, 1, prologue, PROLOGUE_LEN,
                                        p == KURER_NOISE_IK ? k.init_sk : NULL, k.resp_pk),
                     0);
    if (with_public)
        assert_int_equal(kurer_noise_hs_new_with_public(&res, p, 0, prologue, PROLOGUE_LEN,
                                                        k.resp_sk, k.resp_pk, NULL),
                         0);
    else
        assert_int_equal(kurer_noise_hs_new(&res, p, 0, prologue, PROLOGUE_LEN, k.resp_sk, NULL),
                         0);
    kurer_buf_init(&m, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);

    assert_int_equal(
        kurer_noise_hs_write_message(ini, (const uint8_t *)"certificate chain", 17, &m), 0);
    assert_int_equal(m.len, (p == KURER_NOISE_IK ? 96u : 48u) + 17u);
    assert_int_equal(kurer_noise_hs_read_message(res, m.data, m.len, &pl), 0);
    assert_int_equal(pl.len, 17);
    assert_memory_equal(pl.data, "certificate chain", 17);
    if (p == KURER_NOISE_IK)
        assert_memory_equal(kurer_noise_hs_remote_static(res), k.init_pk, 32);
    else
        assert_null(kurer_noise_hs_remote_static(res));
    kurer_buf_reset(&m);
    kurer_buf_reset(&pl);
    /* An empty payload still carries a tag. */
    assert_int_equal(kurer_noise_hs_write_message(res, NULL, 0, &m), 0);
    assert_int_equal(m.len, 48);
    assert_int_equal(kurer_noise_hs_read_message(ini, m.data, m.len, &pl), 0);
    assert_int_equal(pl.len, 0);

    assert_int_equal(kurer_noise_hs_handshake_hash(ini, h1), 0);
    assert_int_equal(kurer_noise_hs_handshake_hash(res, h2), 0);
    assert_memory_equal(h1, h2, 64);
    assert_int_equal(kurer_noise_hs_split(ini, &is, &ir), 0);
    assert_int_equal(kurer_noise_hs_split(res, &rs, &rr), 0);
    /* The two directions use different keys. */
    assert_memory_not_equal(is.k, ir.k, 32);

    for (i = 0; i < 20; i++) {
        uint8_t msg[300], rec[320];
        size_t n = (size_t)i * 13, ptlen;
        kurer_random(msg, n);
        kurer_buf_reset(&m);
        kurer_buf_reset(&pl);
        if (i % 2 == 0) {
            assert_int_equal(kurer_noise_encrypt(&is, NULL, 0, msg, n, &m), 0);
            assert_int_equal(kurer_noise_decrypt(&rr, NULL, 0, m.data, m.len, &pl), 0);
        } else {
            /* In place one way, through buffers the other. */
            memcpy(rec, msg, n);
            assert_int_equal(kurer_noise_encrypt_inplace(&rs, NULL, 0, rec, n, sizeof(rec)), 0);
            assert_int_equal(kurer_noise_decrypt(&ir, NULL, 0, rec, n + 16, &pl), 0);
            assert_int_equal(kurer_noise_encrypt(&is, (const uint8_t *)"ad", 2, msg, n, &m), 0);
            memcpy(rec, m.data, m.len);
            assert_int_equal(
                kurer_noise_decrypt_inplace(&rr, (const uint8_t *)"ad", 2, rec, m.len, &ptlen), 0);
            assert_int_equal(ptlen, n);
            assert_memory_equal(rec, msg, n);
        }
        assert_int_equal(pl.len, n);
        if (n > 0)
            assert_memory_equal(pl.data, msg, n);
    }

    kurer_noise_cipher_wipe(&is);
    kurer_noise_cipher_wipe(&ir);
    kurer_noise_cipher_wipe(&rs);
    kurer_noise_cipher_wipe(&rr);
    kurer_buf_release(&m);
    kurer_buf_release(&pl);
    kurer_noise_hs_free(ini);
    kurer_noise_hs_free(res);
}

static void test_round_trip_ik(void **state)
{
    (void)state;
    round_trip_as(KURER_NOISE_IK, 0);
    round_trip_as(KURER_NOISE_IK, 1);
}

static void test_round_trip_nk(void **state)
{
    (void)state;
    round_trip_as(KURER_NOISE_NK, 0);
    round_trip_as(KURER_NOISE_NK, 1);
}

static void test_with_public_arguments(void **state)
{
    (void)state;
    keys k;
    kurer_noise_hs *hs = NULL;
    make_keys(&k);
    /* A public key without its private key is a caller error. */
    assert_int_equal(kurer_noise_hs_new_with_public(&hs, KURER_NOISE_NK, 1, prologue, PROLOGUE_LEN,
                                                    NULL, k.init_pk, k.resp_pk),
                     KURER_EINVAL);
    assert_null(hs);
}

/* Every bit position class at every offset of both handshake messages. */
static void tamper(kurer_noise_pattern p)
{
    keys k;
    kurer_buf m1, m2, pl;
    size_t off;
    static const uint8_t flips[] = {0x01, 0x80};
    size_t f;

    make_keys(&k);
    kurer_buf_init(&m1, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&m2, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    make_messages(&k, p, &m1, &m2);

    for (f = 0; f < sizeof(flips); f++) {
        for (off = 0; off < m1.len; off++) {
            kurer_noise_hs *res = new_responder(&k, p);
            m1.data[off] ^= flips[f];
            /* Even the top bit of e, which X25519 ignores, changes h and so the AD. */
            assert_int_equal(kurer_noise_hs_read_message(res, m1.data, m1.len, &pl),
                             KURER_EDECRYPT);
            assert_int_equal(pl.len, 0);
            m1.data[off] ^= flips[f];
            /* A failed handshake stays failed. */
            assert_int_equal(kurer_noise_hs_read_message(res, m1.data, m1.len, &pl), KURER_ESTATE);
            assert_int_equal(kurer_noise_hs_write_message(res, NULL, 0, &pl), KURER_ESTATE);
            assert_null(kurer_noise_hs_remote_static(res));
            kurer_noise_hs_free(res);
        }
        for (off = 0; off < m2.len; off++) {
            kurer_noise_hs *ini = initiator_after_m1(&k, p);
            m2.data[off] ^= flips[f];
            assert_int_equal(kurer_noise_hs_read_message(ini, m2.data, m2.len, &pl),
                             KURER_EDECRYPT);
            assert_int_equal(pl.len, 0);
            m2.data[off] ^= flips[f];
            kurer_noise_hs_free(ini);
        }
    }
    kurer_buf_release(&m1);
    kurer_buf_release(&m2);
    kurer_buf_release(&pl);
}

static void test_tamper_handshake(void **state)
{
    (void)state;
    tamper(KURER_NOISE_IK);
    tamper(KURER_NOISE_NK);
}

static void split_pair(kurer_noise_pattern p, kurer_noise_cipher *i_send,
                       kurer_noise_cipher *r_recv)
{
    keys k;
    kurer_noise_hs *ini, *res;
    kurer_noise_cipher i_recv, r_send;
    kurer_buf m, pl;
    make_keys(&k);
    ini = new_initiator(&k, p, k.resp_pk);
    res = new_responder(&k, p);
    kurer_buf_init(&m, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    assert_int_equal(kurer_noise_hs_write_message(ini, NULL, 0, &m), 0);
    assert_int_equal(kurer_noise_hs_read_message(res, m.data, m.len, &pl), 0);
    kurer_buf_reset(&m);
    assert_int_equal(kurer_noise_hs_write_message(res, NULL, 0, &m), 0);
    assert_int_equal(kurer_noise_hs_read_message(ini, m.data, m.len, &pl), 0);
    assert_int_equal(kurer_noise_hs_split(ini, i_send, &i_recv), 0);
    assert_int_equal(kurer_noise_hs_split(res, &r_send, r_recv), 0);
    kurer_noise_cipher_wipe(&i_recv);
    kurer_noise_cipher_wipe(&r_send);
    kurer_buf_release(&m);
    kurer_buf_release(&pl);
    kurer_noise_hs_free(ini);
    kurer_noise_hs_free(res);
}

static void test_tamper_transport(void **state)
{
    kurer_noise_cipher s, r;
    kurer_buf m, pl;
    uint8_t copy[64 + 16];
    size_t off, ptlen;
    uint8_t text[64];
    (void)state;
    kurer_random(text, sizeof(text));

    split_pair(KURER_NOISE_IK, &s, &r);
    kurer_buf_init(&m, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    assert_int_equal(kurer_noise_encrypt(&s, NULL, 0, text, sizeof(text), &m), 0);
    assert_int_equal(m.len, sizeof(copy));
    for (off = 0; off < m.len; off += 7) {
        m.data[off] ^= 0x20;
        assert_int_equal(kurer_noise_decrypt(&r, NULL, 0, m.data, m.len, &pl), KURER_EDECRYPT);
        assert_int_equal(pl.len, 0);
        memcpy(copy, m.data, m.len);
        assert_int_equal(kurer_noise_decrypt_inplace(&r, NULL, 0, copy, m.len, &ptlen),
                         KURER_EDECRYPT);
        assert_int_equal(ptlen, 0);
        m.data[off] ^= 0x20;
    }
    /* The tag (last byte) too, and a wrong AD. */
    m.data[m.len - 1] ^= 1;
    assert_int_equal(kurer_noise_decrypt(&r, NULL, 0, m.data, m.len, &pl), KURER_EDECRYPT);
    m.data[m.len - 1] ^= 1;
    assert_int_equal(kurer_noise_decrypt(&r, (const uint8_t *)"x", 1, m.data, m.len, &pl),
                     KURER_EDECRYPT);
    /* Failures did not move the nonce: the genuine message still opens. */
    assert_true(r.n == 0);
    assert_int_equal(kurer_noise_decrypt(&r, NULL, 0, m.data, m.len, &pl), 0);
    assert_memory_equal(pl.data, text, sizeof(text));
    /* A replay does not (the nonce has moved on). */
    kurer_buf_reset(&pl);
    assert_int_equal(kurer_noise_decrypt(&r, NULL, 0, m.data, m.len, &pl), KURER_EDECRYPT);
    /* Too short for a tag. */
    for (off = 0; off < 16; off++)
        assert_int_equal(kurer_noise_decrypt(&r, NULL, 0, m.data, off, &pl), KURER_ETRUNC);
    assert_int_equal(kurer_noise_decrypt_inplace(&r, NULL, 0, copy, 15, &ptlen), KURER_ETRUNC);

    kurer_noise_cipher_wipe(&s);
    kurer_noise_cipher_wipe(&r);
    kurer_buf_release(&m);
    kurer_buf_release(&pl);
}

static void truncate_messages(kurer_noise_pattern p)
{
    keys k;
    kurer_buf m1, m2, pl;
    size_t len, overhead1, overhead2;

    make_keys(&k);
    kurer_buf_init(&m1, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&m2, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    make_messages(&k, p, &m1, &m2);
    overhead1 = m1.len - 5;
    overhead2 = m2.len - 7;

    for (len = 0; len < m1.len; len++) {
        kurer_noise_hs *res = new_responder(&k, p);
        /* A copy of exactly len bytes, so that ASan sees any read past the end. */
        uint8_t *cut = malloc(len > 0 ? len : 1);
        assert_non_null(cut);
        memcpy(cut, m1.data, len);
        assert_int_equal(kurer_noise_hs_read_message(res, len > 0 ? cut : NULL, len, &pl),
                         len < overhead1 ? KURER_ETRUNC : KURER_EDECRYPT);
        assert_int_equal(pl.len, 0);
        free(cut);
        kurer_noise_hs_free(res);
    }
    for (len = 0; len < m2.len; len++) {
        kurer_noise_hs *ini = initiator_after_m1(&k, p);
        uint8_t *cut = malloc(len > 0 ? len : 1);
        assert_non_null(cut);
        memcpy(cut, m2.data, len);
        assert_int_equal(kurer_noise_hs_read_message(ini, len > 0 ? cut : NULL, len, &pl),
                         len < overhead2 ? KURER_ETRUNC : KURER_EDECRYPT);
        assert_int_equal(pl.len, 0);
        free(cut);
        kurer_noise_hs_free(ini);
    }
    /* One byte too many is a wrong payload, not a crash. */
    {
        kurer_noise_hs *res = new_responder(&k, p);
        assert_int_equal(kurer_buf_put_u8(&m1, 0), 0);
        assert_int_equal(kurer_noise_hs_read_message(res, m1.data, m1.len, &pl), KURER_EDECRYPT);
        kurer_noise_hs_free(res);
    }
    kurer_buf_release(&m1);
    kurer_buf_release(&m2);
    kurer_buf_release(&pl);
}

static void test_truncated(void **state)
{
    (void)state;
    truncate_messages(KURER_NOISE_IK);
    truncate_messages(KURER_NOISE_NK);
}

static void test_wrong_responder_key(void **state)
{
    keys k, other;
    kurer_noise_pattern patterns[] = {KURER_NOISE_IK, KURER_NOISE_NK};
    size_t i;
    (void)state;
    make_keys(&k);
    make_keys(&other);
    for (i = 0; i < 2; i++) {
        kurer_noise_hs *ini = new_initiator(&k, patterns[i], other.resp_pk);
        kurer_noise_hs *res = new_responder(&k, patterns[i]);
        kurer_buf m, pl;
        kurer_buf_init(&m, KURER_NOISE_MAX_MSG);
        kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
        assert_int_equal(kurer_noise_hs_write_message(ini, (const uint8_t *)"chain", 5, &m), 0);
        assert_int_equal(kurer_noise_hs_read_message(res, m.data, m.len, &pl), KURER_EDECRYPT);
        assert_int_equal(pl.len, 0);
        kurer_buf_release(&m);
        kurer_buf_release(&pl);
        kurer_noise_hs_free(ini);
        kurer_noise_hs_free(res);
    }
}

/* Public keys whose X25519 product with any clamped scalar is zero. */
static const uint8_t low_order[][32] = {
    {0}, /* 0 */
    {1}, /* 1 */
    /* 2^255 - 19 (p, i.e. 0 again, non-canonical) */
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    /* a point of order 8 */
    {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
     0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
     0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
};

static void test_weak_dh(void **state)
{
    keys k;
    kurer_buf m1, m2, pl;
    size_t i;
    int pi;
    (void)state;
    make_keys(&k);
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    for (pi = 0; pi < 2; pi++) {
        kurer_noise_pattern p = pi == 0 ? KURER_NOISE_IK : KURER_NOISE_NK;
        kurer_buf_init(&m1, KURER_NOISE_MAX_MSG);
        kurer_buf_init(&m2, KURER_NOISE_MAX_MSG);
        make_messages(&k, p, &m1, &m2);
        for (i = 0; i < sizeof(low_order) / sizeof(low_order[0]); i++) {
            kurer_noise_hs *res = new_responder(&k, p);
            kurer_noise_hs *ini = initiator_after_m1(&k, p);
            kurer_noise_hs *bad = NULL;
            /* A low-order ephemeral key in message 1 (es) and in message 2 (ee). */
            memcpy(m1.data, low_order[i], 32);
            assert_int_equal(kurer_noise_hs_read_message(res, m1.data, m1.len, &pl), KURER_EWEAKDH);
            memcpy(m2.data, low_order[i], 32);
            assert_int_equal(kurer_noise_hs_read_message(ini, m2.data, m2.len, &pl), KURER_EWEAKDH);
            assert_int_equal(pl.len, 0);
            /* An initiator configured with a low-order responder key fails at es. */
            assert_int_equal(kurer_noise_hs_new(&bad, p, 1, NULL, 0,
                                                p == KURER_NOISE_IK ? k.init_sk : NULL,
                                                low_order[i]),
                             0);
            assert_int_equal(kurer_noise_hs_write_message(bad, NULL, 0, &m2), KURER_EWEAKDH);
            assert_int_equal(kurer_noise_hs_write_message(bad, NULL, 0, &m2), KURER_ESTATE);
            kurer_noise_hs_free(bad);
            kurer_noise_hs_free(res);
            kurer_noise_hs_free(ini);
        }
        kurer_buf_release(&m1);
        kurer_buf_release(&m2);
    }
    kurer_buf_release(&pl);
}

static void test_wrong_turn(void **state)
{
    keys k;
    kurer_noise_hs *ini, *res;
    kurer_buf m, pl;
    kurer_noise_cipher a, b;
    uint8_t h[64];
    (void)state;
    make_keys(&k);
    ini = new_initiator(&k, KURER_NOISE_IK, k.resp_pk);
    res = new_responder(&k, KURER_NOISE_IK);
    kurer_buf_init(&m, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);

    assert_int_equal(kurer_noise_hs_write_message(res, NULL, 0, &m), KURER_ESTATE);
    assert_int_equal(kurer_noise_hs_read_message(ini, (const uint8_t *)"x", 1, &pl), KURER_ESTATE);
    assert_int_equal(kurer_noise_hs_handshake_hash(ini, h), KURER_ESTATE);
    assert_int_equal(kurer_noise_hs_split(ini, &a, &b), KURER_ESTATE);
    assert_int_equal(m.len, 0);

    assert_int_equal(kurer_noise_hs_write_message(ini, NULL, 0, &m), 0);
    /* Wrong-turn errors do not spoil the handshake. */
    assert_int_equal(kurer_noise_hs_write_message(ini, NULL, 0, &m), KURER_ESTATE);
    assert_int_equal(kurer_noise_hs_set_ephemeral(ini, k.init_e), KURER_ESTATE);
    assert_int_equal(kurer_noise_hs_read_message(res, m.data, m.len, &pl), 0);
    assert_int_equal(kurer_noise_hs_read_message(res, m.data, m.len, &pl), KURER_ESTATE);
    kurer_buf_reset(&m);
    assert_int_equal(kurer_noise_hs_write_message(res, NULL, 0, &m), 0);
    assert_int_equal(kurer_noise_hs_read_message(ini, m.data, m.len, &pl), 0);

    /* Finished: no more handshake messages, one split. */
    assert_int_equal(kurer_noise_hs_write_message(ini, NULL, 0, &m), KURER_ESTATE);
    assert_int_equal(kurer_noise_hs_write_message(res, NULL, 0, &m), KURER_ESTATE);
    assert_int_equal(kurer_noise_hs_read_message(ini, m.data, m.len, &pl), KURER_ESTATE);
    assert_int_equal(kurer_noise_hs_split(ini, &a, &a), KURER_EINVAL);
    assert_int_equal(kurer_noise_hs_split(ini, &a, &b), 0);
    assert_int_equal(kurer_noise_hs_split(ini, &a, &b), KURER_ESTATE);
    assert_int_equal(kurer_noise_hs_handshake_hash(ini, h), 0);

    kurer_noise_cipher_wipe(&a);
    kurer_noise_cipher_wipe(&b);
    /* A wiped cipher has no key. */
    assert_int_equal(kurer_noise_encrypt(&a, NULL, 0, h, 1, &m), KURER_ESTATE);
    assert_int_equal(kurer_noise_decrypt(&a, NULL, 0, m.data, m.len, &pl), KURER_ESTATE);
    kurer_buf_release(&m);
    kurer_buf_release(&pl);
    kurer_noise_hs_free(ini);
    kurer_noise_hs_free(res);
    kurer_noise_hs_free(NULL);
    kurer_noise_cipher_wipe(NULL);
}

static void test_bad_arguments(void **state)
{
    keys k;
    kurer_noise_hs *hs = (kurer_noise_hs *)&k; /* must be reset to NULL on error */
    (void)state;
    make_keys(&k);
    /* IK initiator needs both keys; NK initiator no local key; responders no remote key. */
    assert_int_equal(kurer_noise_hs_new(&hs, KURER_NOISE_IK, 1, NULL, 0, NULL, k.resp_pk),
                     KURER_EINVAL);
    assert_null(hs);
    assert_int_equal(kurer_noise_hs_new(&hs, KURER_NOISE_IK, 1, NULL, 0, k.init_sk, NULL),
                     KURER_EINVAL);
    assert_int_equal(kurer_noise_hs_new(&hs, KURER_NOISE_NK, 1, NULL, 0, k.init_sk, k.resp_pk),
                     KURER_EINVAL);
    assert_int_equal(kurer_noise_hs_new(&hs, KURER_NOISE_IK, 0, NULL, 0, k.resp_sk, k.init_pk),
                     KURER_EINVAL);
    assert_int_equal(kurer_noise_hs_new(&hs, KURER_NOISE_NK, 0, NULL, 0, NULL, NULL), KURER_EINVAL);
    assert_int_equal(kurer_noise_hs_new(&hs, (kurer_noise_pattern)7, 0, NULL, 0, k.resp_sk, NULL),
                     KURER_EINVAL);
    assert_int_equal(kurer_noise_hs_new(&hs, KURER_NOISE_NK, 0, NULL, 5, k.resp_sk, NULL),
                     KURER_EINVAL);
    assert_null(hs);
    assert_int_equal(kurer_noise_hs_new(NULL, KURER_NOISE_NK, 0, NULL, 0, k.resp_sk, NULL),
                     KURER_EINVAL);
}

/* Different prologues make different handshakes: the responder cannot decrypt. */
static void test_prologue_mismatch(void **state)
{
    keys k;
    kurer_noise_hs *ini = NULL, *res;
    kurer_buf m, pl;
    (void)state;
    make_keys(&k);
    assert_int_equal(kurer_noise_hs_new(&ini, KURER_NOISE_IK, 1, (const uint8_t *)"kurer/2", 7,
                                        k.init_sk, k.resp_pk),
                     0);
    res = new_responder(&k, KURER_NOISE_IK);
    kurer_buf_init(&m, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    assert_int_equal(kurer_noise_hs_write_message(ini, NULL, 0, &m), 0);
    assert_int_equal(kurer_noise_hs_read_message(res, m.data, m.len, &pl), KURER_EDECRYPT);
    kurer_buf_release(&m);
    kurer_buf_release(&pl);
    kurer_noise_hs_free(ini);
    kurer_noise_hs_free(res);
}

static void test_size_limits(void **state)
{
    keys k;
    kurer_noise_hs *ini, *res;
    kurer_noise_cipher s, r;
    kurer_buf m, pl, small;
    uint8_t *big = calloc(1, KURER_NOISE_MAX_MSG + 1);
    uint8_t fixed[40];
    (void)state;
    assert_non_null(big);
    make_keys(&k);
    kurer_buf_init(&m, 2 * KURER_NOISE_MAX_MSG);
    kurer_buf_init(&pl, 2 * KURER_NOISE_MAX_MSG);

    /* IK message 1 is 96 bytes plus the payload: one byte too many fails, and kills the state. */
    ini = new_initiator(&k, KURER_NOISE_IK, k.resp_pk);
    assert_int_equal(kurer_noise_hs_write_message(ini, big, KURER_NOISE_MAX_MSG - 96 + 1, &m),
                     KURER_ELIMIT);
    assert_int_equal(m.len, 0);
    kurer_noise_hs_free(ini);
    /* Exactly the maximum works. */
    ini = new_initiator(&k, KURER_NOISE_IK, k.resp_pk);
    res = new_responder(&k, KURER_NOISE_IK);
    assert_int_equal(kurer_noise_hs_write_message(ini, big, KURER_NOISE_MAX_MSG - 96, &m), 0);
    assert_int_equal(m.len, KURER_NOISE_MAX_MSG);
    assert_int_equal(kurer_noise_hs_read_message(res, m.data, m.len, &pl), 0);
    assert_int_equal(pl.len, KURER_NOISE_MAX_MSG - 96);
    kurer_noise_hs_free(res);
    /* A received message longer than the maximum is refused before any work. */
    res = new_responder(&k, KURER_NOISE_IK);
    assert_int_equal(kurer_noise_hs_read_message(res, big, KURER_NOISE_MAX_MSG + 1, &pl),
                     KURER_ELIMIT);
    kurer_noise_hs_free(res);
    /* An output buffer too small: ELIMIT, buffer unchanged. */
    res = new_responder(&k, KURER_NOISE_IK);
    kurer_buf_init_fixed(&small, fixed, sizeof(fixed));
    assert_int_equal(kurer_noise_hs_read_message(res, m.data, m.len, &small), KURER_ELIMIT);
    assert_int_equal(small.len, 0);
    kurer_noise_hs_free(res);
    kurer_noise_hs_free(ini);

    split_pair(KURER_NOISE_NK, &s, &r);
    kurer_buf_reset(&m);
    kurer_buf_reset(&pl);
    assert_int_equal(kurer_noise_encrypt(&s, NULL, 0, big, KURER_NOISE_MAX_PLAINTEXT + 1, &m),
                     KURER_ELIMIT);
    assert_true(s.n == 0);
    assert_int_equal(kurer_noise_encrypt(&s, NULL, 0, big, KURER_NOISE_MAX_PLAINTEXT, &m), 0);
    assert_int_equal(m.len, KURER_NOISE_MAX_MSG);
    assert_int_equal(kurer_noise_decrypt(&r, NULL, 0, m.data, m.len, &pl), 0);
    assert_int_equal(kurer_noise_decrypt(&r, NULL, 0, big, KURER_NOISE_MAX_MSG + 1, &pl),
                     KURER_ELIMIT);
    /* In place: the caller's room must hold the tag. */
    assert_int_equal(kurer_noise_encrypt_inplace(&s, NULL, 0, fixed, 30, sizeof(fixed)),
                     KURER_ELIMIT);
    assert_int_equal(kurer_noise_encrypt_inplace(&s, NULL, 0, fixed, 24, sizeof(fixed)), 0);

    kurer_noise_cipher_wipe(&s);
    kurer_noise_cipher_wipe(&r);
    kurer_buf_release(&m);
    kurer_buf_release(&pl);
    free(big);
}

/* The nonce counter is a public field so that this can be tested without 2^64 messages. */
static void test_nonce_exhaustion(void **state)
{
    kurer_noise_cipher s, r;
    kurer_buf m, pl;
    uint8_t rec[1 + 16];
    size_t ptlen;
    (void)state;
    split_pair(KURER_NOISE_IK, &s, &r);
    kurer_buf_init(&m, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    s.n = UINT64_MAX - 1;
    r.n = UINT64_MAX - 1;
    /* The last usable nonce, 2^64-2, works on both sides. */
    assert_int_equal(kurer_noise_encrypt(&s, NULL, 0, (const uint8_t *)"a", 1, &m), 0);
    assert_int_equal(kurer_noise_decrypt(&r, NULL, 0, m.data, m.len, &pl), 0);
    assert_int_equal(pl.len, 1);
    assert_true(s.n == UINT64_MAX && r.n == UINT64_MAX);
    /* 2^64-1 is reserved: everything refuses, and nothing changes. */
    assert_int_equal(kurer_noise_encrypt(&s, NULL, 0, (const uint8_t *)"b", 1, &m), KURER_ELIMIT);
    assert_int_equal(m.len, 17);
    assert_int_equal(kurer_noise_decrypt(&r, NULL, 0, m.data, m.len, &pl), KURER_ELIMIT);
    assert_int_equal(pl.len, 1);
    rec[0] = 'c';
    assert_int_equal(kurer_noise_encrypt_inplace(&s, NULL, 0, rec, 1, sizeof(rec)), KURER_ELIMIT);
    memcpy(rec, m.data, sizeof(rec));
    assert_int_equal(kurer_noise_decrypt_inplace(&r, NULL, 0, rec, sizeof(rec), &ptlen),
                     KURER_ELIMIT);
    assert_true(s.n == UINT64_MAX && r.n == UINT64_MAX);
    kurer_noise_cipher_wipe(&s);
    kurer_noise_cipher_wipe(&r);
    kurer_buf_release(&m);
    kurer_buf_release(&pl);
}

static int setup(void **state)
{
    (void)state;
    return kurer_crypto_init();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_ik),
        cmocka_unit_test(test_round_trip_nk),
        cmocka_unit_test(test_tamper_handshake),
        cmocka_unit_test(test_tamper_transport),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_wrong_responder_key),
        cmocka_unit_test(test_weak_dh),
        cmocka_unit_test(test_wrong_turn),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_prologue_mismatch),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_nonce_exhaustion),
        cmocka_unit_test(test_with_public_arguments),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
