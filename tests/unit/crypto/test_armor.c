/* Armoured text (crypto/armor.c): a known-answer vector, round trips of every kind and size
 * around the line length, and each malformation refused with its own error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/armor.h"
#include "kurer/crypto.h"

/* The bytes 0..99 as a revocation list, computed once outside our code (Python's base64 and
 * hashlib.blake2b):
 *   d = bytes(range(100)); base64.b64encode(d) in lines of 64;
 *   base64.b64encode(blake2b(b"kurer armor v1\0" + b"REVOCATION LIST\0" + d,
 *                            digest_size=32).digest()[:3]) == "11yi" */
static const char vector[] = "-----BEGIN KURER REVOCATION LIST-----\n"
                             "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\n"
                             "MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f\n"
                             "YGFiYw==\n"
                             "=11yi"
                             "\n"
                             "-----END KURER REVOCATION LIST-----\n";

static void bytes(uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)i;
}

static int decode_str(const char *s, kurer_buf *out, kurer_armor_kind *k)
{
    return kurer_armor_decode((const uint8_t *)s, strlen(s), out, k);
}

static void test_vector(void **state)
{
    uint8_t d[100];
    kurer_buf b;
    kurer_armor_kind k;
    (void)state;
    bytes(d, sizeof(d));
    kurer_buf_init(&b, 1 << 20);
    assert_int_equal(kurer_armor_encode(KURER_ARMOR_CRL, d, sizeof(d), &b), 0);
    assert_int_equal(b.len, strlen(vector));
    assert_memory_equal(b.data, vector, b.len);
    assert_int_equal(decode_str(vector, &b, &k), 0);
    assert_int_equal(k, KURER_ARMOR_CRL);
    assert_int_equal(b.len, sizeof(d));
    assert_memory_equal(b.data, d, sizeof(d));
    kurer_buf_release(&b);
}

static void test_round_trip(void **state)
{
    static const size_t sizes[] = {1, 2, 3, 47, 48, 49, 95, 96, 97, 1000, 65536};
    uint8_t *d = malloc(65536);
    kurer_buf t, b;
    kurer_armor_kind k;
    (void)state;
    assert_non_null(d);
    kurer_random(d, 65536);
    kurer_buf_init(&t, 1 << 20);
    kurer_buf_init(&b, 1 << 20);
    for (int kind = KURER_ARMOR_REQUEST; kind <= KURER_ARMOR_CRL; kind++)
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            kurer_buf_reset(&t);
            assert_int_equal(kurer_armor_encode((kurer_armor_kind)kind, d, sizes[i], &t), 0);
            assert_true(kurer_armor_is(t.data, t.len));
            /* Every line at most 64 characters but the frame lines. */
            for (size_t s = 0, e; s < t.len; s = e + 1) {
                e = (size_t)((uint8_t *)memchr(t.data + s, '\n', t.len - s) - t.data);
                assert_true(e - s <= KURER_ARMOR_LINE || t.data[s] == '-');
            }
            assert_int_equal(kurer_armor_decode(t.data, t.len, &b, &k), 0);
            assert_int_equal(k, kind);
            assert_int_equal(b.len, sizes[i]);
            assert_memory_equal(b.data, d, sizes[i]);
        }
    kurer_buf_release(&t);
    kurer_buf_release(&b);
    free(d);
}

/* CRLF line ends, blank lines before, whitespace after: as mail delivers it. */
static void test_mail_forms(void **state)
{
    kurer_buf b;
    kurer_armor_kind k;
    char crlf[1024];
    size_t j = 0;
    (void)state;
    kurer_buf_init(&b, 1 << 20);
    j += (size_t)snprintf(crlf, sizeof(crlf), "\r\n  \n");
    for (const char *p = vector; *p; p++) {
        if (*p == '\n')
            crlf[j++] = '\r';
        crlf[j++] = *p;
    }
    memcpy(crlf + j, "\r\n\t \n", 6);
    assert_true(kurer_armor_is((const uint8_t *)crlf, strlen(crlf)));
    assert_int_equal(decode_str(crlf, &b, &k), 0);
    assert_int_equal(b.len, 100);
    kurer_buf_release(&b);
}

/* vector with the first occurrence of from replaced by to. */
static int decode_edited(const char *from, const char *to, kurer_buf *b)
{
    char s[1024];
    kurer_armor_kind k;
    const char *at = strstr(vector, from);
    assert_non_null(at);
    snprintf(s, sizeof(s), "%.*s%s%s", (int)(at - vector), vector, to, at + strlen(from));
    int rc = decode_str(s, b, &k);
    if (rc != 0) {
        assert_int_equal(b->len, 0);
        assert_int_equal(k, KURER_ARMOR_NONE);
    }
    return rc;
}

static void test_refusals(void **state)
{
    kurer_buf b;
    (void)state;
    kurer_buf_init(&b, 1 << 20);
    /* the frame */
    assert_int_equal(decode_edited("-----BEGIN KURER", "----BEGIN KURER", &b), KURER_EARMOR);
    assert_int_equal(decode_edited("REVOCATION LIST-----\nAAEC", "REVOCATION LISTS-----\nAAEC", &b),
                     KURER_EARMORLABEL);
    assert_int_equal(decode_edited("END KURER REVOCATION LIST", "END KURER CERTIFICATE", &b),
                     KURER_EARMORLABEL);
    assert_int_equal(decode_edited("-----END KURER REVOCATION LIST-----\n", "", &b), KURER_EARMOR);
    assert_int_equal(decode_edited("END KURER REVOCATION LIST-----\n",
                                   "END KURER REVOCATION LIST-----\ntrailing junk\n", &b),
                     KURER_EARMOR);
    assert_int_equal(decode_edited("=11yi\n", "", &b), KURER_EARMOR);
    /* the lines: a lost middle line, a line too long, a short line before a full one */
    assert_int_equal(
        decode_edited("MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f\n", "", &b),
        KURER_EARMORSUM);
    assert_int_equal(decode_edited("LS4v\nMDEy", "LS4vMDEy", &b), KURER_EARMOR);
    assert_int_equal(decode_edited("JCUm", "\nJCUm", &b), KURER_EARMOR);
    assert_int_equal(decode_edited("YGFiYw==\n", "\nYGFiYw==\n", &b), KURER_EARMOR);
    /* the base64: a character outside the alphabet, wrong padding, nonzero padding bits */
    assert_int_equal(decode_edited("YGFiYw==", "YGFi*w==", &b), KURER_EARMOR);
    assert_int_equal(decode_edited("YGFiYw==", "YGFiYw=", &b), KURER_EARMOR);
    assert_int_equal(decode_edited("YGFiYw==", "YGFiYx==", &b), KURER_EARMOR);
    /* one character changed: still base64, caught by the checksum */
    assert_int_equal(decode_edited("AAEC", "AAED", &b), KURER_EARMORSUM);
    assert_int_equal(decode_edited("=11yi", "=AAAA", &b), KURER_EARMORSUM);
    assert_int_equal(decode_edited("=11yi", "=AAAAA", &b), KURER_EARMOR);
    /* not armoured at all */
    assert_false(kurer_armor_is((const uint8_t *)"\x0a\x20\x08\x01", 4));
    kurer_armor_kind k;
    assert_int_equal(kurer_armor_decode((const uint8_t *)"", 0, &b, &k), KURER_EARMOR);
    assert_int_equal(kurer_armor_encode(KURER_ARMOR_NONE, (const uint8_t *)"x", 1, &b),
                     KURER_EINVAL);
    assert_int_equal(kurer_armor_encode(KURER_ARMOR_CRL, (const uint8_t *)"x", 0, &b),
                     KURER_EINVAL);
    kurer_buf_release(&b);
}

static void test_unwrap(void **state)
{
    size_t n = strlen(vector);
    uint8_t *d = malloc(n);
    kurer_armor_kind k;
    (void)state;
    assert_non_null(d);
    memcpy(d, vector, n);
    assert_int_equal(kurer_armor_unwrap(&d, &n, &k), 0);
    assert_int_equal(k, KURER_ARMOR_CRL);
    assert_int_equal(n, 100);
    /* binary stays as it is */
    assert_int_equal(kurer_armor_unwrap(&d, &n, &k), 0);
    assert_int_equal(k, KURER_ARMOR_NONE);
    assert_int_equal(n, 100);
    assert_int_equal(d[99], 99);
    free(d);
}

int main(void)
{
    if (kurer_crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector),     cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_mail_forms), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_unwrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
