/* libsignal-protocol-c glue: the crypto provider and the identity key operations.
 *
 * libsignal calls every provider callback with the provider's user_data, which we leave NULL:
 * the callbacks keep no state outside the contexts they allocate, so they serve any number of
 * signal contexts at once. The lock is per context (see kurer_signal_ctx). */
#include "kurer/signal.h"
#include "kurer/crypto.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include <curve.h>

#define AES256_KEY_LEN 32
#define AES_BLOCK_LEN  16
#define DJB_TYPE       0x05
#define SIGNATURE_LEN  64

struct kurer_signal_ctx {
    signal_context *sg;
    pthread_mutex_t lock;
    void *user_data;
};

/* ---- random ---- */

static int prov_random(uint8_t *data, size_t len, void *user_data)
{
    (void)user_data;
    randombytes_buf(data, len);
    return 0;
}

/* ---- HMAC-SHA256 (libsodium) ---- */

static int prov_hmac_init(void **hmac_context, const uint8_t *key, size_t key_len, void *user_data)
{
    (void)user_data;
    crypto_auth_hmacsha256_state *st = malloc(sizeof(*st));
    if (st == NULL)
        return SG_ERR_NOMEM;
    if (crypto_auth_hmacsha256_init(st, key, key_len) != 0) {
        sodium_memzero(st, sizeof(*st));
        free(st);
        return KURER_SG_ERR_HASH;
    }
    *hmac_context = st;
    return 0;
}

static int prov_hmac_update(void *hmac_context, const uint8_t *data, size_t data_len,
                            void *user_data)
{
    (void)user_data;
    if (crypto_auth_hmacsha256_update(hmac_context, data, data_len) != 0)
        return KURER_SG_ERR_HASH;
    return 0;
}

static int prov_hmac_final(void *hmac_context, signal_buffer **output, void *user_data)
{
    (void)user_data;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    if (crypto_auth_hmacsha256_final(hmac_context, mac) != 0)
        return KURER_SG_ERR_HASH;
    signal_buffer *buf = signal_buffer_create(mac, sizeof(mac));
    /* A MAC is not secret once sent, but the same callback computes derived keys in HKDF. */
    sodium_memzero(mac, sizeof(mac));
    if (buf == NULL)
        return SG_ERR_NOMEM;
    *output = buf;
    return 0;
}

static void prov_hmac_cleanup(void *hmac_context, void *user_data)
{
    (void)user_data;
    if (hmac_context == NULL)
        return;
    sodium_memzero(hmac_context, sizeof(crypto_auth_hmacsha256_state));
    free(hmac_context);
}

/* ---- SHA-512 (libsodium) ---- */

static int prov_sha512_init(void **digest_context, void *user_data)
{
    (void)user_data;
    crypto_hash_sha512_state *st = malloc(sizeof(*st));
    if (st == NULL)
        return SG_ERR_NOMEM;
    if (crypto_hash_sha512_init(st) != 0) {
        free(st);
        return KURER_SG_ERR_HASH;
    }
    *digest_context = st;
    return 0;
}

static int prov_sha512_update(void *digest_context, const uint8_t *data, size_t data_len,
                              void *user_data)
{
    (void)user_data;
    if (crypto_hash_sha512_update(digest_context, data, data_len) != 0)
        return KURER_SG_ERR_HASH;
    return 0;
}

/* libsignal's fingerprint code calls final and then updates the same context again (iterated
 * hashing): the context must be ready for a new digest afterwards. */
static int prov_sha512_final(void *digest_context, signal_buffer **output, void *user_data)
{
    (void)user_data;
    uint8_t md[crypto_hash_sha512_BYTES];
    int rc = crypto_hash_sha512_final(digest_context, md);
    if (crypto_hash_sha512_init(digest_context) != 0 || rc != 0) {
        sodium_memzero(md, sizeof(md));
        return KURER_SG_ERR_HASH;
    }
    signal_buffer *buf = signal_buffer_create(md, sizeof(md));
    sodium_memzero(md, sizeof(md));
    if (buf == NULL)
        return SG_ERR_NOMEM;
    *output = buf;
    return 0;
}

static void prov_sha512_cleanup(void *digest_context, void *user_data)
{
    (void)user_data;
    if (digest_context == NULL)
        return;
    sodium_memzero(digest_context, sizeof(crypto_hash_sha512_state));
    free(digest_context);
}

/* ---- AES-256-CBC / AES-256-CTR (OpenSSL EVP) ---- */

static int aes_crypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                     const uint8_t *iv, size_t iv_len, const uint8_t *in, size_t in_len, int enc)
{
    const EVP_CIPHER *evp;
    switch (cipher) {
    case SG_CIPHER_AES_CBC_PKCS5:
        evp = EVP_aes_256_cbc();
        break;
    case SG_CIPHER_AES_CTR_NOPADDING:
        evp = EVP_aes_256_ctr();
        break;
    default:
        return KURER_SG_ERR_CIPHER;
    }
    if (key == NULL || key_len != AES256_KEY_LEN)
        return KURER_SG_ERR_KEYLEN;
    if (iv == NULL || iv_len != AES_BLOCK_LEN)
        return KURER_SG_ERR_IVLEN;
    /* EVP counts in int; one block of padding may be added. */
    if (in_len > (size_t)INT_MAX - AES_BLOCK_LEN || (in == NULL && in_len != 0))
        return KURER_SG_ERR_LENGTH;
    if (!enc && cipher == SG_CIPHER_AES_CBC_PKCS5 && (in_len == 0 || in_len % AES_BLOCK_LEN != 0))
        return KURER_SG_ERR_DECRYPT;

    int rc = KURER_SG_ERR_EVP;
    signal_buffer *tmp = NULL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        goto out;
    /* One spare block for CBC padding on encryption; EVP may also write up to a block more than
     * the output on decryption before Final strips the padding. */
    tmp = signal_buffer_alloc(in_len + AES_BLOCK_LEN);
    if (tmp == NULL) {
        rc = SG_ERR_NOMEM;
        goto out;
    }
    uint8_t *o = signal_buffer_data(tmp);
    int n1 = 0, n2 = 0;
    static const uint8_t empty[1];
    if (EVP_CipherInit_ex(ctx, evp, NULL, key, iv, enc) != 1)
        goto out;
    if (EVP_CipherUpdate(ctx, o, &n1, in != NULL ? in : empty, (int)in_len) != 1)
        goto out;
    if (EVP_CipherFinal_ex(ctx, o + n1, &n2) != 1) {
        rc = enc ? KURER_SG_ERR_EVP : KURER_SG_ERR_DECRYPT;
        goto out;
    }
    signal_buffer *res = signal_buffer_n_copy(tmp, (size_t)n1 + (size_t)n2);
    if (res == NULL) {
        rc = SG_ERR_NOMEM;
        goto out;
    }
    *output = res;
    rc = 0;
out:
    /* The temporary holds plaintext on decryption; EVP_CIPHER_CTX_free cleanses the key
     * schedule. */
    if (tmp != NULL)
        signal_buffer_bzero_free(tmp);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

static int prov_encrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                        const uint8_t *iv, size_t iv_len, const uint8_t *plaintext,
                        size_t plaintext_len, void *user_data)
{
    (void)user_data;
    return aes_crypt(output, cipher, key, key_len, iv, iv_len, plaintext, plaintext_len, 1);
}

static int prov_decrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                        const uint8_t *iv, size_t iv_len, const uint8_t *ciphertext,
                        size_t ciphertext_len, void *user_data)
{
    (void)user_data;
    return aes_crypt(output, cipher, key, key_len, iv, iv_len, ciphertext, ciphertext_len, 0);
}

void kurer_signal_provider(signal_crypto_provider *p)
{
    memset(p, 0, sizeof(*p));
    p->random_func = prov_random;
    p->hmac_sha256_init_func = prov_hmac_init;
    p->hmac_sha256_update_func = prov_hmac_update;
    p->hmac_sha256_final_func = prov_hmac_final;
    p->hmac_sha256_cleanup_func = prov_hmac_cleanup;
    p->sha512_digest_init_func = prov_sha512_init;
    p->sha512_digest_update_func = prov_sha512_update;
    p->sha512_digest_final_func = prov_sha512_final;
    p->sha512_digest_cleanup_func = prov_sha512_cleanup;
    p->encrypt_func = prov_encrypt;
    p->decrypt_func = prov_decrypt;
    p->user_data = NULL;
}

/* ---- contexts ---- */

/* libsignal hands the lock callbacks its context's user_data, which is our wrapper. */
static void ctx_lock(void *user_data)
{
    struct kurer_signal_ctx *c = user_data;
    int rc = pthread_mutex_lock(&c->lock);
    (void)rc; /* A recursive mutex only fails on misuse (EAGAIN past the recursion limit). */
}

static void ctx_unlock(void *user_data)
{
    struct kurer_signal_ctx *c = user_data;
    (void)pthread_mutex_unlock(&c->lock);
}

int kurer_signal_context_new(kurer_signal_ctx **out, void *user_data)
{
    *out = NULL;
    /* randombytes_buf and the hashes need libsodium started, and a context must never run on
     * libsignal's private copies of libsodium and protobuf-c: kurer_crypto_init checks both. */
    int init = kurer_crypto_init();
    if (init != 0)
        return init;

    struct kurer_signal_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return KURER_ENOMEM;
    c->user_data = user_data;

    pthread_mutexattr_t attr;
    if (pthread_mutexattr_init(&attr) != 0) {
        free(c);
        return KURER_ENOMEM;
    }
    int rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    if (rc == 0)
        rc = pthread_mutex_init(&c->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        free(c);
        return rc == ENOMEM ? KURER_ENOMEM : KURER_EINTERNAL;
    }

    signal_crypto_provider prov;
    kurer_signal_provider(&prov);
    rc = signal_context_create(&c->sg, c);
    if (rc != 0) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return rc == SG_ERR_NOMEM ? KURER_ENOMEM : KURER_EINTERNAL;
    }
    if (signal_context_set_crypto_provider(c->sg, &prov) != 0 ||
        signal_context_set_locking_functions(c->sg, ctx_lock, ctx_unlock) != 0) {
        kurer_signal_context_free(c);
        return KURER_EINTERNAL;
    }
    *out = c;
    return 0;
}

void kurer_signal_context_free(kurer_signal_ctx *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->sg != NULL)
        signal_context_destroy(ctx->sg);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

signal_context *kurer_signal_context_get(const kurer_signal_ctx *ctx)
{
    return ctx->sg;
}

void *kurer_signal_context_user_data(const kurer_signal_ctx *ctx)
{
    return ctx->user_data;
}

/* ---- identity keys ---- */

static int map_sg(int rc)
{
    return rc == SG_ERR_NOMEM ? KURER_ENOMEM : KURER_ECRYPTO;
}

int kurer_identity_generate(uint8_t pub[33], uint8_t priv[32])
{
    memset(pub, 0, 33);
    memset(priv, 0, 32);

    kurer_signal_ctx *c = NULL;
    ec_key_pair *kp = NULL;
    signal_buffer *pb = NULL, *sb = NULL;
    int rc = kurer_signal_context_new(&c, NULL);
    if (rc != 0)
        return rc;

    /* libsignal's own generator: random from our provider, clamped the way its XEdDSA code
     * expects, and the public key serialised as a DJB key (0x05 || u). */
    int sg = curve_generate_key_pair(c->sg, &kp);
    if (sg == 0)
        sg = ec_public_key_serialize(&pb, ec_key_pair_get_public(kp));
    if (sg == 0)
        sg = ec_private_key_serialize(&sb, ec_key_pair_get_private(kp));
    if (sg != 0) {
        rc = map_sg(sg);
        goto out;
    }
    if (signal_buffer_len(pb) != 33 || signal_buffer_data(pb)[0] != DJB_TYPE ||
        signal_buffer_len(sb) != 32) {
        rc = KURER_ECRYPTO;
        goto out;
    }
    memcpy(pub, signal_buffer_data(pb), 33);
    memcpy(priv, signal_buffer_data(sb), 32);
    rc = 0;
out:
    signal_buffer_free(pb);
    signal_buffer_bzero_free(sb);
    SIGNAL_UNREF(kp); /* ec_private_key_destroy wipes the private key */
    kurer_signal_context_free(c);
    return rc;
}

int kurer_identity_sign(const uint8_t priv[32], const uint8_t *msg, size_t n, uint8_t sig[64])
{
    static const uint8_t empty[1];
    memset(sig, 0, SIGNATURE_LEN);
    if (msg == NULL && n != 0)
        return KURER_EINVAL;

    kurer_signal_ctx *c = NULL;
    ec_private_key *key = NULL;
    signal_buffer *sb = NULL;
    uint8_t k[32];
    int rc = kurer_signal_context_new(&c, NULL);
    if (rc != 0)
        return rc;

    /* XEdDSA multiplies by the scalar as given: clamp it as X25519 does, so that the signature
     * matches the public key that X25519 derives from the same 32 bytes. */
    memcpy(k, priv, sizeof(k));
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    int sg = curve_decode_private_point(&key, k, sizeof(k), c->sg);
    sodium_memzero(k, sizeof(k));
    if (sg == 0)
        sg = curve_calculate_signature(c->sg, &sb, key, msg != NULL ? msg : empty, n);
    if (sg != 0) {
        rc = map_sg(sg);
        goto out;
    }
    if (signal_buffer_len(sb) != SIGNATURE_LEN) {
        rc = KURER_ECRYPTO;
        goto out;
    }
    memcpy(sig, signal_buffer_data(sb), SIGNATURE_LEN);
    rc = 0;
out:
    signal_buffer_free(sb);
    SIGNAL_UNREF(key); /* wipes */
    kurer_signal_context_free(c);
    return rc;
}

int kurer_identity_verify(const uint8_t pub[33], const uint8_t *msg, size_t n,
                          const uint8_t sig[64])
{
    static const uint8_t empty[1];
    if (msg == NULL && n != 0)
        return KURER_EINVAL;
    if (pub[0] != DJB_TYPE)
        return KURER_EBADKEY;
    /* Reject points of small order (including 0 and 1): a clamped scalar is a multiple of the
     * cofactor, so it sends them to zero, which crypto_scalarmult reports. No signature could be
     * bound to such a key. */
    {
        static const uint8_t probe[32] = {
            0x40, 0x53, 0x65, 0x87, 0x91, 0x13, 0x25, 0x37, 0x49, 0x5b, 0x6d,
            0x7f, 0x81, 0x93, 0xa5, 0xb7, 0xc9, 0xdb, 0xed, 0xff, 0x01, 0x13,
            0x25, 0x37, 0x49, 0x5b, 0x6d, 0x7f, 0x81, 0x93, 0xa5, 0x57,
        };
        uint8_t q[32];
        int bad = crypto_scalarmult_curve25519(q, probe, pub + 1) != 0;
        sodium_memzero(q, sizeof(q));
        if (bad)
            return KURER_EBADKEY;
    }

    kurer_signal_ctx *c = NULL;
    ec_public_key *key = NULL;
    int rc = kurer_signal_context_new(&c, NULL);
    if (rc != 0)
        return rc;
    int sg = curve_decode_point(&key, pub, 33, c->sg);
    if (sg != 0) {
        rc = sg == SG_ERR_NOMEM ? KURER_ENOMEM : KURER_EBADKEY;
        goto out;
    }
    sg = curve_verify_signature(key, msg != NULL ? msg : empty, n, sig, SIGNATURE_LEN);
    rc = sg == 1 ? 0 : KURER_EBADSIG;
out:
    SIGNAL_UNREF(key);
    kurer_signal_context_free(c);
    return rc;
}
