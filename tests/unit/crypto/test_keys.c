#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kurer/crypto.h"
#include "kurer/keys.h"

static const char pass[] = "correct horse battery staple";

static void test_keyfile_roundtrip(void **state)
{
    (void)state;
    kurer_signing_key k;
    kurer_kdf_params p = kurer_kdf_minimum();
    kurer_buf f;
    uint8_t pub[32], *sk = kurer_secure_alloc(64);
    kurer_key_kind kind;
    size_t publen;
    assert_int_equal(kurer_crypto_init(), 0);
    assert_int_equal(kurer_signing_key_generate(&k), 0);
    kurer_buf_init(&f, KURER_KEYFILE_MAX);
    assert_int_equal(
        kurer_keyfile_seal(&f, KURER_KEY_ED25519, k.pk, 32, k.sk, 64, pass, strlen(pass), &p), 0);
    assert_int_equal(
        kurer_keyfile_open(f.data, f.len, KURER_KEY_ED25519, pub, 32, sk, 64, pass, strlen(pass)),
        0);
    assert_memory_equal(pub, k.pk, 32);
    assert_memory_equal(sk, k.sk, 64);
    assert_int_equal(kurer_keyfile_peek(f.data, f.len, &kind, pub, sizeof(pub), &publen), 0);
    assert_int_equal(kind, KURER_KEY_ED25519);

    /* Wrong passphrase. */
    assert_int_equal(
        kurer_keyfile_open(f.data, f.len, KURER_KEY_ED25519, pub, 32, sk, 64, "wrong", 5),
        KURER_EPASSPHRASE);
    /* Wrong kind requested. */
    assert_int_equal(
        kurer_keyfile_open(f.data, f.len, KURER_KEY_X25519, pub, 32, sk, 32, pass, strlen(pass)),
        KURER_EINVAL);
    /* The public key is authenticated: swapping it is caught. */
    uint8_t *copy = malloc(f.len);
    memcpy(copy, f.data, f.len);
    copy[f.len - 64 - 18 - 1] ^= 1; /* inside the public key */
    assert_int_equal(
        kurer_keyfile_open(copy, f.len, KURER_KEY_ED25519, pub, 32, sk, 64, pass, strlen(pass)),
        KURER_EPASSPHRASE);
    /* Truncated at every length: a format error, never a KDF run or a crash. */
    for (size_t cut = 0; cut < f.len; cut++)
        assert_int_not_equal(kurer_keyfile_peek(f.data, cut, &kind, pub, sizeof(pub), &publen), 0);
    /* KDF parameters in the file are bounded before anything is derived. */
    memcpy(copy, f.data, f.len);
    copy[8 + 3 + 4] = 0xff; /* memlimit's top byte */
    assert_int_equal(kurer_keyfile_peek(copy, f.len, &kind, pub, sizeof(pub), &publen),
                     KURER_ELIMIT);
    memcpy(copy, f.data, f.len);
    copy[8] = 2; /* format version */
    assert_int_equal(kurer_keyfile_peek(copy, f.len, &kind, pub, sizeof(pub), &publen),
                     KURER_EVERSION);
    free(copy);
    kurer_buf_release(&f);
    kurer_secure_free(sk);
    kurer_signing_key_release(&k);
}

static void test_keyfile_on_disk(void **state)
{
    (void)state;
    char dir[] = "/tmp/kurer-keys-XXXXXX", path[256];
    kurer_signing_key k, back;
    kurer_kdf_params p = kurer_kdf_minimum();
    struct stat st;
    uint8_t msg[3] = {1, 2, 3}, sig[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/root.key", dir);
    assert_int_equal(kurer_signing_key_generate(&k), 0);
    assert_int_equal(kurer_signing_key_save(&k, path, pass, strlen(pass), &p, 0), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(kurer_signing_key_save(&k, path, pass, strlen(pass), &p, 0), KURER_EEXIST);
    assert_int_equal(kurer_signing_key_load(&back, path, "nope", 4), KURER_EPASSPHRASE);
    assert_null(back.sk);
    assert_int_equal(kurer_signing_key_load(&back, path, pass, strlen(pass)), 0);
    assert_int_equal(kurer_sign(&back, msg, 3, sig), 0);
    assert_int_equal(kurer_verify(k.pk, msg, 3, sig), 0);
    sig[0] ^= 1;
    assert_int_equal(kurer_verify(k.pk, msg, 3, sig), KURER_EBADSIG);
    kurer_signing_key_release(&back);
    kurer_signing_key_release(&k);
    unlink(path);
    rmdir(dir);
}

static void test_kdf(void **state)
{
    (void)state;
    uint8_t salt[KURER_SALT_LEN] = {1}, a[32], b[32], salt2[KURER_SALT_LEN];
    kurer_kdf_params p = kurer_kdf_minimum(), q, low = {1, KURER_KDF_MEM_MIN};
    kurer_buf rec;
    assert_int_equal(kurer_kdf_derive(a, "pw", 2, salt, &p), 0);
    assert_int_equal(kurer_kdf_derive(b, "pw", 2, salt, &p), 0);
    assert_memory_equal(a, b, 32);
    assert_int_equal(kurer_kdf_derive(b, "pX", 2, salt, &p), 0);
    assert_memory_not_equal(a, b, 32);
    assert_int_equal(kurer_kdf_derive(b, "pw", 2, salt, &low), KURER_EINVAL);
    kurer_buf_init(&rec, 128);
    assert_int_equal(kurer_kdf_record_encode(&rec, &p, salt), 0);
    assert_int_equal(kurer_kdf_record_decode(rec.data, rec.len, &q, salt2), 0);
    assert_int_equal(q.opslimit, p.opslimit);
    assert_true(q.memlimit == p.memlimit);
    assert_memory_equal(salt, salt2, KURER_SALT_LEN);
    for (size_t cut = 0; cut < rec.len; cut++)
        assert_int_equal(kurer_kdf_record_decode(rec.data, cut, &q, salt2), KURER_ETRUNC);
    kurer_buf_release(&rec);
}

/* kurer_shorthash is SipHash-2-4: the reference vector of Aumasson and Bernstein's paper (key
 * 00..0f, message 00..0e, 0xa129ca6149be45e5), and a different key gives a different hash. */
static void test_shorthash(void **state)
{
    uint8_t key[KURER_SHORTHASH_KEY_LEN], msg[15];
    (void)state;
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    assert_true(kurer_shorthash(key, msg, sizeof(msg)) == 0xa129ca6149be45e5ULL);
    key[0] ^= 1;
    assert_true(kurer_shorthash(key, msg, sizeof(msg)) != 0xa129ca6149be45e5ULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyfile_roundtrip),
        cmocka_unit_test(test_keyfile_on_disk),
        cmocka_unit_test(test_kdf),
        cmocka_unit_test(test_shorthash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
