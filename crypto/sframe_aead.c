/* SFrame's cipher suites (RFC 9605 section 4.5) and key derivation (section 4.4.2) over OpenSSL's
 * libcrypto: AES-GCM through EVP_CIPHER, AES-CTR with truncated HMAC through EVP_CIPHER and
 * EVP_MAC, HKDF through EVP_KDF. Debian's libsodium 1.0.18 has no HKDF, and its AES-GCM needs
 * AES-NI, hence libcrypto.
 *
 * Each keyed AEAD keeps its libcrypto contexts with the key schedule set once: a frame costs one
 * IV set and one pass (plus one HMAC for the CTR suites). The derived key and salt sit in guarded
 * memory; libcrypto's own copy of the key schedule lives in its contexts, which it cleanses when
 * they are freed. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <string.h>

#include "kurer/crypto.h"
#include "sframe_internal.h"

static const kurer__sframe_suite_info suites[] = {
    {KURER_SFRAME_AES_128_CTR_HMAC_SHA256_80, 0, 0, 32, 48, 16, 10},
    {KURER_SFRAME_AES_128_CTR_HMAC_SHA256_64, 0, 0, 32, 48, 16, 8},
    {KURER_SFRAME_AES_128_CTR_HMAC_SHA256_32, 0, 0, 32, 48, 16, 4},
    {KURER_SFRAME_AES_128_GCM_SHA256_128, 1, 0, 32, 16, 0, 16},
    {KURER_SFRAME_AES_256_GCM_SHA512_128, 1, 1, 64, 32, 0, 16},
};

struct kurer__sframe_aead {
    const kurer__sframe_suite_info *s;
    EVP_CIPHER_CTX *cipher;
    EVP_MAC_CTX *mac; /* CTR suites only */
    uint8_t key[KURER__SFRAME_MAX_NK];
    uint8_t salt[KURER__SFRAME_NN];
};

const kurer__sframe_suite_info *kurer__sframe_suite(unsigned id)
{
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        if (suites[i].id == id)
            return &suites[i];
    return NULL;
}

int kurer_sframe_suite_supported(unsigned suite)
{
    return kurer__sframe_suite(suite) != NULL;
}

size_t kurer_sframe_tag_len(unsigned suite)
{
    const kurer__sframe_suite_info *s = kurer__sframe_suite(suite);
    return s != NULL ? s->nt : 0;
}

static int hkdf(int mode, int sha512, const uint8_t *key, size_t key_len, const uint8_t *salt,
                size_t salt_len, const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    OSSL_PARAM params[6], *p = params;
    char digest[8];
    int rc = KURER_ECRYPTO;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (kctx == NULL)
        goto out;
    memcpy(digest, sha512 ? "SHA512" : "SHA256", 7);
    *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)key, key_len);
    if (salt_len > 0)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt,
                                                 salt_len);
    if (info_len > 0)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)info,
                                                 info_len);
    *p = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
        rc = 0;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    if (rc != 0)
        kurer_memzero(out, out_len);
    return rc;
}

int kurer__hkdf_extract(int sha512, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                        size_t ikm_len, uint8_t prk[KURER__SFRAME_MAX_NH])
{
    return hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, sha512, ikm, ikm_len, salt, salt_len, NULL, 0, prk,
                sha512 ? 64 : 32);
}

int kurer__hkdf_expand(int sha512, const uint8_t *prk, const uint8_t *info, size_t info_len,
                       uint8_t *out, size_t out_len)
{
    return hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, sha512, prk, sha512 ? 64 : 32, NULL, 0, info,
                info_len, out, out_len);
}

/* "SFrame 1.0 Secret key " or "... salt " || KID (8 bytes) || cipher suite (2 bytes), all
 * big-endian (RFC 9605 section 4.4.2). Returns the label's length. */
size_t kurer__sframe_label(uint8_t out[40], const char *what, uint64_t kid, unsigned suite)
{
    size_t n = strlen(what);
    memcpy(out, what, n);
    for (int i = 0; i < 8; i++)
        out[n + (size_t)i] = (uint8_t)(kid >> (56 - 8 * i));
    out[n + 8] = (uint8_t)(suite >> 8);
    out[n + 9] = (uint8_t)suite;
    return n + 10;
}

static int derive(kurer__sframe_aead *a, uint64_t kid, const uint8_t *base_key, size_t len)
{
    uint8_t secret[KURER__SFRAME_MAX_NH], info[40];
    size_t n;
    int rc = kurer__hkdf_extract(a->s->sha512, NULL, 0, base_key, len, secret);
    if (rc == 0) {
        n = kurer__sframe_label(info, "SFrame 1.0 Secret key ", kid, a->s->id);
        rc = kurer__hkdf_expand(a->s->sha512, secret, info, n, a->key, a->s->nk);
    }
    if (rc == 0) {
        n = kurer__sframe_label(info, "SFrame 1.0 Secret salt ", kid, a->s->id);
        rc = kurer__hkdf_expand(a->s->sha512, secret, info, n, a->salt, KURER__SFRAME_NN);
    }
    kurer_memzero(secret, sizeof secret);
    return rc;
}

static int key_contexts(kurer__sframe_aead *a, int seal)
{
    const EVP_CIPHER *c;
    OSSL_PARAM params[2];
    char digest[8] = "SHA256";
    EVP_MAC *mac;
    if (a->s->gcm)
        c = a->s->nk == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm();
    else
        c = EVP_aes_128_ctr();
    a->cipher = EVP_CIPHER_CTX_new();
    if (a->cipher == NULL)
        return KURER_ENOMEM;
    /* CTR mode is its own inverse: the CTR suites always "encrypt". */
    if (EVP_CipherInit_ex(a->cipher, c, NULL, a->key, NULL, a->s->gcm ? seal : 1) != 1)
        return KURER_ECRYPTO;
    if (a->s->gcm)
        return 0;
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    a->mac = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (a->mac == NULL)
        return KURER_ECRYPTO;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(a->mac, a->key + a->s->nka, a->s->nk - a->s->nka, params) != 1)
        return KURER_ECRYPTO;
    return 0;
}

void kurer__sframe_aead_free(kurer__sframe_aead *a)
{
    if (a == NULL)
        return;
    EVP_CIPHER_CTX_free(a->cipher);
    EVP_MAC_CTX_free(a->mac);
    kurer_memzero(a, sizeof *a);
    kurer_secure_free(a);
}

int kurer__sframe_aead_new(kurer__sframe_aead **out, unsigned suite, uint64_t kid,
                           const uint8_t *base_key, size_t base_key_len, int seal)
{
    const kurer__sframe_suite_info *s = kurer__sframe_suite(suite);
    kurer__sframe_aead *a;
    int rc;
    *out = NULL;
    if (s == NULL)
        return KURER_EUNSUPPORTED;
    if (base_key == NULL || base_key_len < KURER_SFRAME_MIN_BASE_KEY ||
        base_key_len > KURER_SFRAME_MAX_BASE_KEY)
        return KURER_EINVAL;
    a = kurer_secure_alloc(sizeof *a);
    if (a == NULL)
        return KURER_ENOMEM;
    memset(a, 0, sizeof *a);
    a->s = s;
    rc = derive(a, kid, base_key, base_key_len);
    if (rc == 0)
        rc = key_contexts(a, seal);
    if (rc != 0) {
        kurer__sframe_aead_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int kurer__sframe_aead_from_key(kurer__sframe_aead **out, unsigned suite, const uint8_t *key,
                                const uint8_t *salt, int seal)
{
    const kurer__sframe_suite_info *s = kurer__sframe_suite(suite);
    kurer__sframe_aead *a;
    int rc;
    *out = NULL;
    if (s == NULL)
        return KURER_EUNSUPPORTED;
    a = kurer_secure_alloc(sizeof *a);
    if (a == NULL)
        return KURER_ENOMEM;
    memset(a, 0, sizeof *a);
    a->s = s;
    memcpy(a->key, key, s->nk);
    memcpy(a->salt, salt, KURER__SFRAME_NN);
    rc = key_contexts(a, seal);
    if (rc != 0) {
        kurer__sframe_aead_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void kurer__sframe_aead_secrets(const kurer__sframe_aead *a, const uint8_t **key,
                                const uint8_t **salt)
{
    *key = a->key;
    *salt = a->salt;
}

const kurer__sframe_suite_info *kurer__sframe_aead_suite(const kurer__sframe_aead *a)
{
    return a->s;
}

/* nonce = sframe_salt XOR CTR, the counter left-padded to the nonce's 12 bytes. */
static void nonce_for(const kurer__sframe_aead *a, uint64_t ctr, uint8_t nonce[16])
{
    memcpy(nonce, a->salt, KURER__SFRAME_NN);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] ^= (uint8_t)(ctr >> (56 - 8 * i));
    memset(nonce + KURER__SFRAME_NN, 0, 4); /* the CTR suites' initial block counter */
}

static int gcm_run(kurer__sframe_aead *a, const uint8_t nonce[16], const uint8_t *aad1,
                   size_t aad1_len, const uint8_t *aad2, size_t aad2_len, const uint8_t *in,
                   size_t len, uint8_t *out)
{
    int n = 0;
    if (EVP_CipherInit_ex(a->cipher, NULL, NULL, NULL, nonce, -1) != 1 ||
        EVP_CipherUpdate(a->cipher, NULL, &n, aad1, (int)aad1_len) != 1)
        return KURER_ECRYPTO;
    if (aad2_len > 0 && EVP_CipherUpdate(a->cipher, NULL, &n, aad2, (int)aad2_len) != 1)
        return KURER_ECRYPTO;
    if (len > 0 && (EVP_CipherUpdate(a->cipher, out, &n, in, (int)len) != 1 || (size_t)n != len))
        return KURER_ECRYPTO;
    return 0;
}

/* The CTR suites' tag: HMAC(auth_key, len(AAD) || len(CT) || Nt (8 bytes each, big-endian) ||
 * nonce || AAD || CT), truncated to Nt (RFC 9605 section 4.5.1). */
static int ctr_tag(kurer__sframe_aead *a, const uint8_t nonce[16], const uint8_t *aad1,
                   size_t aad1_len, const uint8_t *aad2, size_t aad2_len, const uint8_t *ct,
                   size_t ct_len, uint8_t tag[KURER__SFRAME_MAX_NH])
{
    uint8_t lens[24];
    uint64_t v[3] = {aad1_len + aad2_len, ct_len, a->s->nt};
    size_t n = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 8; j++)
            lens[8 * i + j] = (uint8_t)(v[i] >> (56 - 8 * j));
    if (EVP_MAC_init(a->mac, NULL, 0, NULL) != 1 || EVP_MAC_update(a->mac, lens, 24) != 1 ||
        EVP_MAC_update(a->mac, nonce, KURER__SFRAME_NN) != 1 ||
        EVP_MAC_update(a->mac, aad1, aad1_len) != 1 ||
        (aad2_len > 0 && EVP_MAC_update(a->mac, aad2, aad2_len) != 1) ||
        (ct_len > 0 && EVP_MAC_update(a->mac, ct, ct_len) != 1) ||
        EVP_MAC_final(a->mac, tag, &n, KURER__SFRAME_MAX_NH) != 1 || n != a->s->nh)
        return KURER_ECRYPTO;
    return 0;
}

static int ctr_xor(kurer__sframe_aead *a, const uint8_t nonce[16], const uint8_t *in, size_t len,
                   uint8_t *out)
{
    int n = 0;
    if (EVP_CipherInit_ex(a->cipher, NULL, NULL, NULL, nonce, -1) != 1)
        return KURER_ECRYPTO;
    if (len > 0 && (EVP_CipherUpdate(a->cipher, out, &n, in, (int)len) != 1 || (size_t)n != len))
        return KURER_ECRYPTO;
    return 0;
}

int kurer__sframe_seal(kurer__sframe_aead *a, uint64_t ctr, const uint8_t *aad1, size_t aad1_len,
                       const uint8_t *aad2, size_t aad2_len, const uint8_t *pt, size_t pt_len,
                       uint8_t *out)
{
    uint8_t nonce[16], tag[KURER__SFRAME_MAX_NH];
    int n = 0, rc;
    nonce_for(a, ctr, nonce);
    if (a->s->gcm) {
        rc = gcm_run(a, nonce, aad1, aad1_len, aad2, aad2_len, pt, pt_len, out);
        if (rc == 0 && (EVP_CipherFinal_ex(a->cipher, out + pt_len, &n) != 1 ||
                        EVP_CIPHER_CTX_ctrl(a->cipher, EVP_CTRL_GCM_GET_TAG, (int)a->s->nt,
                                            out + pt_len) != 1))
            rc = KURER_ECRYPTO;
    } else {
        rc = ctr_xor(a, nonce, pt, pt_len, out);
        if (rc == 0)
            rc = ctr_tag(a, nonce, aad1, aad1_len, aad2, aad2_len, out, pt_len, tag);
        if (rc == 0)
            memcpy(out + pt_len, tag, a->s->nt);
    }
    kurer_memzero(nonce, sizeof nonce);
    kurer_memzero(tag, sizeof tag);
    if (rc != 0)
        kurer_memzero(out, pt_len + a->s->nt);
    return rc;
}

int kurer__sframe_open(kurer__sframe_aead *a, uint64_t ctr, const uint8_t *aad1, size_t aad1_len,
                       const uint8_t *aad2, size_t aad2_len, const uint8_t *ct, size_t ct_len,
                       const uint8_t *tag, uint8_t *out)
{
    uint8_t nonce[16], want[KURER__SFRAME_MAX_NH];
    int n = 0, rc;
    nonce_for(a, ctr, nonce);
    if (a->s->gcm) {
        memcpy(want, tag, a->s->nt);
        rc = gcm_run(a, nonce, aad1, aad1_len, aad2, aad2_len, ct, ct_len, out);
        if (rc == 0 &&
            EVP_CIPHER_CTX_ctrl(a->cipher, EVP_CTRL_GCM_SET_TAG, (int)a->s->nt, want) != 1)
            rc = KURER_ECRYPTO;
        if (rc == 0 && EVP_CipherFinal_ex(a->cipher, out + ct_len, &n) != 1)
            rc = KURER_EDECRYPT;
    } else {
        /* Encrypt-then-MAC: the tag is checked before anything is decrypted. */
        rc = ctr_tag(a, nonce, aad1, aad1_len, aad2, aad2_len, ct, ct_len, want);
        if (rc == 0 && !kurer_ct_equal(want, tag, a->s->nt))
            rc = KURER_EDECRYPT;
        if (rc == 0)
            rc = ctr_xor(a, nonce, ct, ct_len, out);
    }
    kurer_memzero(nonce, sizeof nonce);
    kurer_memzero(want, sizeof want);
    if (rc != 0 && ct_len > 0)
        kurer_memzero(out, ct_len);
    return rc;
}
