/* Known-answer tests for crypto/sframe.c from tests/vectors/sframe-rfc9605.json (the test
 * vectors of RFC 9605, appendix C, copied from ../shared/vectors/).
 *
 *   header:        every (kid, ctr) encodes to exactly the vector's bytes and decodes back;
 *   aes_ctr_hmac:  the AES-CTR+HMAC AEAD of suites 1-3 with the vector's key and nonce gives the
 *                  vector's ciphertext and tag, and opens it again;
 *   sframe:        for every suite: the labels, sframe_secret, sframe_key and sframe_salt of the
 *                  derivation, the nonce, and the whole frame: a send context with the vector's
 *                  kid, base key and counter protects pt with the metadata into exactly ct, and a
 *                  receive context unprotects ct back into pt.
 * A vector of a suite this build does not implement fails the test (every suite of the file is
 * claimed), and so does a section without vectors for a claimed suite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_reader.h"
#include "kurer/crypto.h"
#include "kurer/sframe.h"
#include "kurer/util.h"
#include "sframe_internal.h"

#define N_SUITES 6 /* suite ids 1..5 */

static const unsigned claimed[] = {1, 2, 3, 4, 5};

static jval *root;

static int setup(void **state)
{
    uint8_t *text;
    size_t len;
    (void)state;
    assert_int_equal(kurer_crypto_init(), 0);
    assert_int_equal(
        kurer_file_read(KURER_VECTORS_DIR "/sframe-rfc9605.json", 4 * 1024 * 1024, &text, &len), 0);
    root = jparse((const char *)text, len);
    free(text);
    assert_non_null(root);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    jfree(root);
    return 0;
}

static const jval *section(const char *name)
{
    const jval *v = jget(root, name);
    if (v == NULL || v->type != J_ARR || v->n == 0)
        fail_msg("vector section %s missing or empty", name);
    return v;
}

static uint64_t u64_field(const jval *obj, const char *key)
{
    const jval *v = jget(obj, key);
    char *end = NULL;
    unsigned long long x;
    if (v == NULL || v->type != J_NUM || v->str[0] == '-')
        fail_msg("vector field %s missing or not an unsigned number", key);
    x = strtoull(v->str, &end, 10);
    assert_true(end != NULL && *end == '\0');
    return (uint64_t)x;
}

/* Hex field key of obj, decoded into a new buffer (at least one byte); *n its length. */
static uint8_t *hex_field(const jval *obj, const char *key, size_t *n)
{
    const char *hex = jget_str(obj, key);
    uint8_t *out;
    if (hex == NULL)
        fail_msg("vector field %s missing", key);
    assert_int_equal(strlen(hex) % 2, 0);
    *n = strlen(hex) / 2;
    out = malloc(*n + 1);
    assert_non_null(out);
    assert_int_equal(kurer_hex_decode(out, *n, hex), 0);
    return out;
}

static void assert_hex(const jval *obj, const char *key, const uint8_t *got, size_t got_len)
{
    size_t n;
    uint8_t *want = hex_field(obj, key, &n);
    assert_int_equal(got_len, n);
    assert_memory_equal(got, want, n);
    free(want);
}

/* A suite from the file: it must be one we claim. */
static unsigned suite_field(const jval *v, size_t counts[N_SUITES])
{
    uint64_t s = u64_field(v, "cipher_suite");
    if (s >= N_SUITES || !kurer_sframe_suite_supported((unsigned)s))
        fail_msg("a vector of cipher suite %llu, which this build does not implement",
                 (unsigned long long)s);
    counts[s]++;
    return (unsigned)s;
}

static void test_header(void **state)
{
    const jval *hs = section("header");
    size_t i;
    (void)state;
    for (i = 0; i < hs->n; i++) {
        const jval *v = hs->items[i];
        uint64_t kid = u64_field(v, "kid"), ctr = u64_field(v, "ctr");
        uint8_t enc[KURER_SFRAME_MAX_HEADER], *want;
        size_t n, wn;
        kurer_sframe_header h;
        n = kurer_sframe_header_encode(enc, kid, ctr);
        assert_int_equal(n, kurer_sframe_header_len(kid, ctr));
        assert_hex(v, "encoded", enc, n);
        want = hex_field(v, "encoded", &wn);
        assert_int_equal(kurer_sframe_header_decode(want, wn, &h), 0);
        assert_true(h.kid == kid);
        assert_true(h.ctr == ctr);
        assert_int_equal(h.len, wn);
        /* Every shorter prefix ends inside the header. */
        while (wn-- > 0)
            assert_int_equal(kurer_sframe_header_decode(want, wn, &h), KURER_ETRUNC);
        free(want);
    }
    print_message("sframe header vectors: %zu passed\n", hs->n);
}

static void test_aes_ctr_hmac(void **state)
{
    const jval *vs = section("aes_ctr_hmac");
    size_t counts[N_SUITES] = {0}, i;
    (void)state;
    for (i = 0; i < vs->n; i++) {
        const jval *v = vs->items[i];
        unsigned s = suite_field(v, counts);
        size_t kn, nn, an, pn, cn, nt = kurer_sframe_tag_len(s);
        uint8_t *key = hex_field(v, "key", &kn), *nonce = hex_field(v, "nonce", &nn);
        uint8_t *aad = hex_field(v, "aad", &an), *pt = hex_field(v, "pt", &pn);
        uint8_t *ct = hex_field(v, "ct", &cn), *out = malloc(cn + 1);
        kurer__sframe_aead *seal, *open;
        assert_non_null(out);
        assert_int_equal(kn, kurer__sframe_suite(s)->nk);
        assert_int_equal(nn, 12);
        assert_int_equal(cn, pn + nt);
        assert_hex(v, "enc_key", key, kurer__sframe_suite(s)->nka);
        assert_hex(v, "auth_key", key + kurer__sframe_suite(s)->nka,
                   kn - kurer__sframe_suite(s)->nka);
        /* The nonce as the salt with counter 0: nonce = salt XOR 0. */
        assert_int_equal(kurer__sframe_aead_from_key(&seal, s, key, nonce, 1), 0);
        assert_int_equal(kurer__sframe_aead_from_key(&open, s, key, nonce, 0), 0);
        assert_int_equal(kurer__sframe_seal(seal, 0, aad, an, NULL, 0, pt, pn, out), 0);
        assert_memory_equal(out, ct, cn);
        memset(out, 0, cn);
        assert_int_equal(kurer__sframe_open(open, 0, aad, an, NULL, 0, ct, pn, ct + pn, out), 0);
        assert_memory_equal(out, pt, pn);
        ct[pn] ^= 1; /* a damaged tag */
        assert_int_equal(kurer__sframe_open(open, 0, aad, an, NULL, 0, ct, pn, ct + pn, out),
                         KURER_EDECRYPT);
        kurer__sframe_aead_free(seal);
        kurer__sframe_aead_free(open);
        free(key), free(nonce), free(aad), free(pt), free(ct), free(out);
    }
    for (i = 1; i <= 3; i++)
        if (counts[i] == 0)
            fail_msg("no aes_ctr_hmac vector for suite %zu", i);
    print_message("sframe aes_ctr_hmac vectors: %zu passed\n", vs->n);
}

/* The derivation of one vector: labels, secret, key, salt, nonce. */
static void check_derivation(const jval *v, unsigned s, uint64_t kid, uint64_t ctr,
                             const uint8_t *base, size_t bn, kurer_sframe_send *snd)
{
    const kurer__sframe_suite_info *si = kurer__sframe_suite(s);
    uint8_t label[40], secret[64], nonce[12];
    const uint8_t *key, *salt;
    size_t n;
    n = kurer__sframe_label(label, "SFrame 1.0 Secret key ", kid, s);
    assert_hex(v, "sframe_key_label", label, n);
    n = kurer__sframe_label(label, "SFrame 1.0 Secret salt ", kid, s);
    assert_hex(v, "sframe_salt_label", label, n);
    assert_int_equal(kurer__hkdf_extract(si->sha512, NULL, 0, base, bn, secret), 0);
    assert_hex(v, "sframe_secret", secret, si->nh);
    kurer__sframe_aead_secrets(kurer__sframe_send_aead(snd), &key, &salt);
    assert_hex(v, "sframe_key", key, si->nk);
    assert_hex(v, "sframe_salt", salt, 12);
    memcpy(nonce, salt, 12);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] ^= (uint8_t)(ctr >> (56 - 8 * i));
    assert_hex(v, "nonce", nonce, 12);
}

static void run_frame(const jval *v, unsigned s)
{
    uint64_t kid = u64_field(v, "kid"), ctr = u64_field(v, "ctr");
    size_t bn, mn, an, pn, cn, out_len = 0;
    uint8_t *base = hex_field(v, "base_key", &bn), *meta = hex_field(v, "metadata", &mn);
    uint8_t *aad = hex_field(v, "aad", &an), *pt = hex_field(v, "pt", &pn);
    uint8_t *ct = hex_field(v, "ct", &cn), *out = malloc(cn + 1);
    kurer_sframe_send *snd;
    kurer_sframe_recv *rcv;
    kurer_sframe_header h;
    assert_non_null(out);
    assert_int_equal(kurer_sframe_send_new(&snd, s, kid, base, bn), 0);
    check_derivation(v, s, kid, ctr, base, bn, snd);
    /* aad = header || metadata, and the frame starts with that header. */
    assert_true(an == mn + kurer_sframe_header_len(kid, ctr));
    assert_memory_equal(aad + an - mn, meta, mn);
    assert_memory_equal(ct, aad, an - mn);

    kurer__sframe_send_set_counter(snd, ctr);
    assert_int_equal(kurer_sframe_protect(snd, meta, mn, pt, pn, out, cn, &out_len), 0);
    assert_int_equal(out_len, cn);
    assert_memory_equal(out, ct, cn);
    assert_true(kurer_sframe_send_counter(snd) == ctr + 1);

    assert_int_equal(kurer_sframe_recv_new(&rcv), 0);
    assert_int_equal(kurer_sframe_recv_add_key(rcv, s, kid, base, bn), 0);
    /* Other metadata is other associated data: the tag fails (and the window does not move). */
    assert_int_equal(kurer_sframe_unprotect(rcv, meta, mn - 1, ct, cn, out, cn, &out_len, NULL),
                     KURER_EDECRYPT);
    memset(out, 0, cn);
    assert_int_equal(kurer_sframe_unprotect(rcv, meta, mn, ct, cn, out, cn, &out_len, &h), 0);
    assert_int_equal(out_len, pn);
    assert_memory_equal(out, pt, pn);
    assert_true(h.kid == kid && h.ctr == ctr && h.len == an - mn);
    assert_int_equal(kurer_sframe_unprotect(rcv, meta, mn, ct, cn, out, cn, &out_len, NULL),
                     KURER_EREPLAY);
    kurer_sframe_send_free(snd);
    kurer_sframe_recv_free(rcv);
    free(base), free(meta), free(aad), free(pt), free(ct), free(out);
}

static void test_frames(void **state)
{
    const jval *vs = section("sframe");
    size_t counts[N_SUITES] = {0}, i;
    (void)state;
    for (i = 0; i < vs->n; i++)
        run_frame(vs->items[i], suite_field(vs->items[i], counts));
    for (i = 0; i < sizeof claimed / sizeof claimed[0]; i++)
        if (counts[claimed[i]] == 0)
            fail_msg("no sframe vector for claimed suite %u", claimed[i]);
    print_message("sframe frame vectors: %zu passed\n", vs->n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_aes_ctr_hmac),
        cmocka_unit_test(test_frames),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
