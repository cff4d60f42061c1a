/* Attachment sealing (crypto/blobseal.c): a sealed blob opens to its plaintext with its digest;
 * an altered byte, a dropped chunk, reordered chunks, a truncated blob, a wrong key, trailing
 * bytes and a wrong digest are each refused with their typed error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/blobseal.h"
#include "kurer/crypto.h"

typedef struct sealed {
    uint8_t *b;
    size_t len;
    uint8_t digest[KURER_SEAL_DIGEST_LEN];
} sealed;

static uint8_t key[KURER_SEAL_KEY_LEN];

static uint8_t *plain_of(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + (i >> 9));
    return p;
}

static sealed seal(const uint8_t *pt, size_t n)
{
    sealed s;
    kurer_blobseal *c;
    s.len = (size_t)kurer_seal_size(n);
    s.b = malloc(s.len);
    assert_non_null(s.b);
    assert_int_equal(kurer_blobseal_push_new(key, n, s.b, &c), 0);
    size_t at = KURER_SEAL_HEADER_LEN, off = 0, m, got;
    while ((m = kurer_blobseal_next_len(c)) != 0 || off == 0) {
        assert_int_equal(kurer_blobseal_push(c, pt + off, m, s.b + at, &got), 0);
        assert_int_equal(got, m + KURER_SEAL_ABYTES);
        at += got;
        off += m;
        if (m == 0)
            break; /* the empty file's one chunk */
    }
    assert_int_equal(at, s.len);
    assert_int_equal(kurer_blobseal_digest(c, s.digest), 0);
    kurer_blobseal_free(c);
    return s;
}

/* Opens b (len bytes) as a blob of n plaintext bytes; the first error, or 0 with the plaintext
 * equal to pt. */
static int open_blob(const uint8_t *k, const uint8_t *b, size_t len, size_t n,
                     const uint8_t *digest, const uint8_t *pt)
{
    kurer_blobseal *c;
    int rc = kurer_blobseal_pull_new(k, n, len, b, &c);
    if (rc != 0)
        return rc;
    uint8_t *out = malloc(KURER_SEAL_CHUNK);
    assert_non_null(out);
    size_t at = KURER_SEAL_HEADER_LEN, off = 0, m, got;
    while (rc == 0 && (m = kurer_blobseal_next_len(c)) != 0) {
        rc = kurer_blobseal_pull(c, b + at, m, out, &got);
        if (rc == 0 && pt != NULL)
            assert_memory_equal(out, pt + off, got);
        at += m;
        off += got;
    }
    if (rc == 0)
        rc = kurer_blobseal_verify(c, digest);
    if (rc == 0)
        assert_int_equal(off, n);
    free(out);
    kurer_blobseal_free(c);
    return rc;
}

/* The digest a hostile sender would put in its pointer for the bytes it made. */
static void digest_of(const uint8_t *b, size_t len, uint8_t d[KURER_SEAL_DIGEST_LEN])
{
    kurer_hash256(d, b, len); /* BLAKE2b-256, as the sealing context computes it */
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(kurer_crypto_init(), 0);
    kurer_random(key, sizeof(key));
    return 0;
}

static void test_round_trip_sizes(void **state)
{
    (void)state;
    const size_t sizes[] = {0,
                            1,
                            KURER_SEAL_CHUNK - 1,
                            KURER_SEAL_CHUNK,
                            KURER_SEAL_CHUNK + 1,
                            3 * KURER_SEAL_CHUNK + 100};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *pt = plain_of(sizes[i]);
        sealed s = seal(pt, sizes[i]);
        assert_int_equal(s.len, kurer_seal_size(sizes[i]));
        uint8_t d[KURER_SEAL_DIGEST_LEN];
        digest_of(s.b, s.len, d);
        assert_memory_equal(d, s.digest, sizeof(d)); /* the digest is BLAKE2b-256 of the blob */
        assert_int_equal(open_blob(key, s.b, s.len, sizes[i], s.digest, pt), 0);
        free(s.b);
        free(pt);
    }
    assert_int_equal(kurer_seal_chunks(0), 1);
    assert_int_equal(kurer_seal_chunks(KURER_SEAL_CHUNK), 1);
    assert_int_equal(kurer_seal_chunks(KURER_SEAL_CHUNK + 1), 2);
}

static void test_altered_byte(void **state)
{
    (void)state;
    size_t n = 2 * KURER_SEAL_CHUNK + 5;
    uint8_t *pt = plain_of(n);
    sealed s = seal(pt, n);
    s.b[KURER_SEAL_HEADER_LEN + KURER_SEAL_SEALED_CHUNK + 100] ^= 1;
    /* against the sender's digest, the chunk's tag refuses first */
    assert_int_equal(open_blob(key, s.b, s.len, n, s.digest, NULL), KURER_EBLOBTAG);
    /* a sender who made the digest fit is refused by the tag as well */
    uint8_t d[KURER_SEAL_DIGEST_LEN];
    digest_of(s.b, s.len, d);
    assert_int_equal(open_blob(key, s.b, s.len, n, d, NULL), KURER_EBLOBTAG);
    free(s.b);
    free(pt);
}

static void test_dropped_chunk(void **state)
{
    (void)state;
    size_t n = 3 * KURER_SEAL_CHUNK + 9;
    uint8_t *pt = plain_of(n);
    sealed s = seal(pt, n);
    /* chunk 1 removed */
    size_t c0 = KURER_SEAL_HEADER_LEN + KURER_SEAL_SEALED_CHUNK;
    memmove(s.b + c0, s.b + c0 + KURER_SEAL_SEALED_CHUNK, s.len - c0 - KURER_SEAL_SEALED_CHUNK);
    size_t len = s.len - KURER_SEAL_SEALED_CHUNK;
    /* the pointer's size says a chunk is missing */
    assert_int_equal(open_blob(key, s.b, len, n, s.digest, NULL), KURER_EBLOBTRUNC);
    /* a pointer made to fit (size and digest): the next chunk is out of place */
    uint8_t d[KURER_SEAL_DIGEST_LEN];
    digest_of(s.b, len, d);
    assert_int_equal(open_blob(key, s.b, len, n - KURER_SEAL_CHUNK, d, NULL), KURER_EBLOBTAG);
    free(s.b);
    free(pt);
}

static void test_reordered_chunks(void **state)
{
    (void)state;
    size_t n = 3 * KURER_SEAL_CHUNK;
    uint8_t *pt = plain_of(n);
    sealed s = seal(pt, n);
    uint8_t *tmp = malloc(KURER_SEAL_SEALED_CHUNK);
    assert_non_null(tmp);
    uint8_t *a = s.b + KURER_SEAL_HEADER_LEN, *b = a + KURER_SEAL_SEALED_CHUNK;
    memcpy(tmp, a, KURER_SEAL_SEALED_CHUNK);
    memcpy(a, b, KURER_SEAL_SEALED_CHUNK);
    memcpy(b, tmp, KURER_SEAL_SEALED_CHUNK);
    uint8_t d[KURER_SEAL_DIGEST_LEN];
    digest_of(s.b, s.len, d);
    assert_int_equal(open_blob(key, s.b, s.len, n, d, NULL), KURER_EBLOBTAG);
    free(tmp);
    free(s.b);
    free(pt);
}

static void test_truncated(void **state)
{
    (void)state;
    size_t n = 2 * KURER_SEAL_CHUNK + 1000;
    uint8_t *pt = plain_of(n);
    sealed s = seal(pt, n);
    /* shorter than its pointer says, by one byte or by the whole last chunk */
    assert_int_equal(open_blob(key, s.b, s.len - 1, n, s.digest, NULL), KURER_EBLOBTRUNC);
    size_t cut = KURER_SEAL_HEADER_LEN + 2 * KURER_SEAL_SEALED_CHUNK;
    assert_int_equal(open_blob(key, s.b, cut, n, s.digest, NULL), KURER_EBLOBTRUNC);
    /* a pointer made to fit the cut: the last chunk left is not the stream's final one */
    uint8_t d[KURER_SEAL_DIGEST_LEN];
    digest_of(s.b, cut, d);
    assert_int_equal(open_blob(key, s.b, cut, 2 * KURER_SEAL_CHUNK, d, NULL), KURER_EBLOBTRUNC);
    free(s.b);
    free(pt);
}

static void test_trailing(void **state)
{
    (void)state;
    size_t n = 100;
    uint8_t *pt = plain_of(n);
    sealed s = seal(pt, n);
    uint8_t *longer = calloc(1, s.len + 1);
    assert_non_null(longer);
    memcpy(longer, s.b, s.len);
    assert_int_equal(open_blob(key, longer, s.len + 1, n, s.digest, NULL), KURER_ETRAILING);
    /* a FINAL chunk with more after it: a short blob of a sender claiming a longer size */
    uint8_t *pt2 = plain_of(2 * KURER_SEAL_CHUNK);
    sealed two = seal(pt2, 2 * KURER_SEAL_CHUNK);
    sealed one = seal(pt2, KURER_SEAL_CHUNK); /* its only chunk is FINAL */
    memcpy(two.b, one.b, one.len);            /* header and FINAL chunk in front */
    uint8_t d[KURER_SEAL_DIGEST_LEN];
    digest_of(two.b, two.len, d);
    assert_int_equal(open_blob(key, two.b, two.len, 2 * KURER_SEAL_CHUNK, d, NULL),
                     KURER_ETRAILING);
    free(one.b);
    free(two.b);
    free(pt2);
    free(longer);
    free(s.b);
    free(pt);
}

static void test_wrong_key(void **state)
{
    (void)state;
    size_t n = 5000;
    uint8_t *pt = plain_of(n);
    sealed s = seal(pt, n);
    uint8_t other[KURER_SEAL_KEY_LEN];
    memcpy(other, key, sizeof(other));
    other[0] ^= 0x80;
    assert_int_equal(open_blob(other, s.b, s.len, n, s.digest, NULL), KURER_EBLOBTAG);
    free(s.b);
    free(pt);
}

static void test_digest_mismatch(void **state)
{
    (void)state;
    size_t n = KURER_SEAL_CHUNK + 3;
    uint8_t *pt = plain_of(n);
    sealed s = seal(pt, n);
    /* every tag is right; the pointer names another blob */
    s.digest[31] ^= 1;
    assert_int_equal(open_blob(key, s.b, s.len, n, s.digest, pt), KURER_EBLOBDIGEST);
    free(s.b);
    free(pt);
}

static void test_misuse(void **state)
{
    (void)state;
    kurer_blobseal *c;
    uint8_t hdr[KURER_SEAL_HEADER_LEN], out[64], d[KURER_SEAL_DIGEST_LEN];
    size_t got;
    assert_int_equal(kurer_blobseal_push_new(key, 10, hdr, &c), 0);
    assert_int_equal(kurer_blobseal_push(c, out, 9, out, &got), KURER_EINVAL); /* wrong length */
    assert_int_equal(kurer_blobseal_digest(c, d), KURER_ESTATE);               /* chunks left */
    assert_int_equal(kurer_blobseal_pull(c, out, 27, out, &got), KURER_ESTATE);
    kurer_blobseal_free(c);
    kurer_blobseal_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_sizes), cmocka_unit_test(test_altered_byte),
        cmocka_unit_test(test_dropped_chunk),    cmocka_unit_test(test_reordered_chunks),
        cmocka_unit_test(test_truncated),        cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_wrong_key),        cmocka_unit_test(test_digest_mismatch),
        cmocka_unit_test(test_misuse),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
