#include "kurer/keys.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t keyfile_magic[8] = {'K', 'U', 'R', 'E', 'R', 'K', 'E', 'Y'};
static const uint8_t kdf_magic[8] = {'K', 'U', 'R', 'E', 'R', 'K', 'D', 'F'};
#define KEYFILE_FORMAT 1
#define KDF_FORMAT     1
#define KDF_ARGON2ID13 1

int kurer_signing_key_generate(kurer_signing_key *k)
{
    memset(k, 0, sizeof(*k));
    k->sk = kurer_secure_alloc(crypto_sign_SECRETKEYBYTES);
    if (k->sk == NULL)
        return KURER_ENOMEM;
    if (crypto_sign_keypair(k->pk, k->sk) != 0) {
        kurer_signing_key_release(k);
        return KURER_ECRYPTO;
    }
    return 0;
}

void kurer_signing_key_release(kurer_signing_key *k)
{
    if (k == NULL)
        return;
    if (k->sk != NULL)
        kurer_secure_free(k->sk);
    memset(k, 0, sizeof(*k));
}

int kurer_sign(const kurer_signing_key *k, const uint8_t *msg, size_t n, uint8_t sig[64])
{
    if (k == NULL || k->sk == NULL)
        return KURER_EINVAL;
    return crypto_sign_detached(sig, NULL, msg, n, k->sk) == 0 ? 0 : KURER_ECRYPTO;
}

int kurer_verify(const uint8_t pk[32], const uint8_t *msg, size_t n, const uint8_t sig[64])
{
    return crypto_sign_verify_detached(sig, msg, n, pk) == 0 ? 0 : KURER_EBADSIG;
}

void kurer_key_id(const uint8_t pk[32], uint8_t id[32])
{
    kurer_hash256(id, pk, 32);
}

void kurer_x25519_generate(uint8_t pk[32], uint8_t sk[32])
{
    crypto_box_keypair(pk, sk);
}

int kurer_x25519_public(uint8_t pk[32], const uint8_t sk[32])
{
    return crypto_scalarmult_base(pk, sk) == 0 ? 0 : KURER_EBADKEY;
}

kurer_kdf_params kurer_kdf_default(void)
{
    return (kurer_kdf_params){KURER_KDF_OPS_DEFAULT, KURER_KDF_MEM_DEFAULT};
}

kurer_kdf_params kurer_kdf_minimum(void)
{
    return (kurer_kdf_params){KURER_KDF_OPS_MIN, KURER_KDF_MEM_MIN};
}

int kurer_kdf_params_check(const kurer_kdf_params *p)
{
    if (p->opslimit < KURER_KDF_OPS_MIN || p->memlimit < KURER_KDF_MEM_MIN)
        return KURER_EINVAL;
    if (p->opslimit > KURER_KDF_OPS_MAX || p->memlimit > KURER_KDF_MEM_MAX)
        return KURER_ELIMIT;
    return 0;
}

int kurer_kdf_derive(uint8_t out[32], const char *pass, size_t pass_len,
                     const uint8_t salt[KURER_SALT_LEN], const kurer_kdf_params *p)
{
    int rc = kurer_kdf_params_check(p);
    if (rc != 0)
        return rc;
    if (crypto_pwhash(out, 32, pass, pass_len, salt, p->opslimit, (size_t)p->memlimit,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        sodium_memzero(out, 32);
        return KURER_ENOMEM; /* libsodium fails here only when it cannot allocate */
    }
    return 0;
}

static int put_kdf(kurer_buf *out, const kurer_kdf_params *p, const uint8_t *salt)
{
    int rc;
    if ((rc = kurer_buf_put_u8(out, KDF_ARGON2ID13)) != 0 ||
        (rc = kurer_buf_put_u32be(out, p->opslimit)) != 0 ||
        (rc = kurer_buf_put_u64be(out, p->memlimit)) != 0 ||
        (rc = kurer_buf_put(out, salt, KURER_SALT_LEN)) != 0)
        return rc;
    return 0;
}

static int get_kdf(kurer_reader *r, kurer_kdf_params *p, uint8_t *salt)
{
    uint8_t alg;
    int rc;
    if ((rc = kurer_reader_u8(r, &alg)) != 0 || (rc = kurer_reader_u32be(r, &p->opslimit)) != 0 ||
        (rc = kurer_reader_u64be(r, &p->memlimit)) != 0 ||
        (rc = kurer_reader_copy(r, salt, KURER_SALT_LEN)) != 0)
        return rc;
    if (alg != KDF_ARGON2ID13)
        return KURER_EUNSUPPORTED;
    rc = kurer_kdf_params_check(p);
    return rc == KURER_EINVAL ? KURER_EMALFORMED : rc;
}

int kurer_kdf_record_encode(kurer_buf *out, const kurer_kdf_params *p,
                            const uint8_t salt[KURER_SALT_LEN])
{
    int rc = kurer_kdf_params_check(p);
    if (rc != 0)
        return rc;
    if ((rc = kurer_buf_put(out, kdf_magic, sizeof(kdf_magic))) != 0 ||
        (rc = kurer_buf_put_u8(out, KDF_FORMAT)) != 0)
        return rc;
    return put_kdf(out, p, salt);
}

int kurer_kdf_record_decode(const uint8_t *data, size_t len, kurer_kdf_params *p,
                            uint8_t salt[KURER_SALT_LEN])
{
    kurer_reader r;
    const uint8_t *magic;
    uint8_t format;
    int rc;
    kurer_reader_init(&r, data, len);
    if ((rc = kurer_reader_view(&r, sizeof(kdf_magic), &magic)) != 0)
        return rc;
    if (memcmp(magic, kdf_magic, sizeof(kdf_magic)) != 0)
        return KURER_EMALFORMED;
    if ((rc = kurer_reader_u8(&r, &format)) != 0)
        return rc;
    if (format != KDF_FORMAT)
        return KURER_EVERSION;
    if ((rc = get_kdf(&r, p, salt)) != 0)
        return rc;
    return kurer_reader_end(&r);
}

static int kind_sizes(kurer_key_kind kind, size_t *pub, size_t *secret)
{
    switch (kind) {
    case KURER_KEY_ED25519:
        *pub = 32;
        *secret = 64;
        return 0;
    case KURER_KEY_X25519:
        *pub = 32;
        *secret = 32;
        return 0;
    case KURER_KEY_IDENTITY:
        *pub = 33;
        *secret = 32;
        return 0;
    }
    return KURER_EINVAL;
}

/* Layout (big-endian): "KURERKEY" | format u8 | kind u8 | alg u8 | opslimit u32 | memlimit u64
 * | salt[16] | nonce[24] | pub (u16 length + bytes) | sealed secret (u16 length + bytes).
 * Everything before the sealed secret is the AEAD's associated data. */
int kurer_keyfile_seal(kurer_buf *out, kurer_key_kind kind, const uint8_t *pub, size_t pub_len,
                       const uint8_t *secret, size_t secret_len, const char *pass, size_t pass_len,
                       const kurer_kdf_params *p)
{
    uint8_t salt[KURER_SALT_LEN], nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    uint8_t *key = NULL, *ct;
    size_t want_pub, want_secret, start = out->len;
    unsigned long long ctlen;
    int rc;

    if ((rc = kind_sizes(kind, &want_pub, &want_secret)) != 0)
        return rc;
    if (pub_len != want_pub || secret_len != want_secret)
        return KURER_EINVAL;
    if ((rc = kurer_kdf_params_check(p)) != 0)
        return rc;
    randombytes_buf(salt, sizeof(salt));
    randombytes_buf(nonce, sizeof(nonce));
    key = kurer_secure_alloc(32);
    if (key == NULL)
        return KURER_ENOMEM;
    if ((rc = kurer_kdf_derive(key, pass, pass_len, salt, p)) != 0)
        goto out;
    if ((rc = kurer_buf_put(out, keyfile_magic, sizeof(keyfile_magic))) != 0 ||
        (rc = kurer_buf_put_u8(out, KEYFILE_FORMAT)) != 0 ||
        (rc = kurer_buf_put_u8(out, (uint8_t)kind)) != 0 || (rc = put_kdf(out, p, salt)) != 0 ||
        (rc = kurer_buf_put(out, nonce, sizeof(nonce))) != 0 ||
        (rc = kurer_buf_put_lv16(out, pub, pub_len)) != 0 ||
        (rc = kurer_buf_put_u16be(out, (uint16_t)(secret_len + 16))) != 0)
        goto out;
    if ((rc = kurer_buf_reserve(out, secret_len + 16, &ct)) != 0)
        goto out;
    /* The AD is the header written above, up to (not including) the ciphertext length. */
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ctlen, secret, secret_len, out->data + start,
                                               out->len - start - secret_len - 16 - 2, NULL, nonce,
                                               key);
out:
    kurer_secure_free(key);
    if (rc != 0 && out->len > start)
        out->len = start;
    return rc;
}

typedef struct keyfile_view {
    kurer_key_kind kind;
    kurer_kdf_params kdf;
    uint8_t salt[KURER_SALT_LEN];
    const uint8_t *nonce;
    const uint8_t *pub;
    size_t pub_len;
    const uint8_t *ct;
    size_t ct_len;
    size_t ad_len;
} keyfile_view;

static int keyfile_parse(const uint8_t *file, size_t len, keyfile_view *v)
{
    kurer_reader r;
    const uint8_t *magic;
    uint8_t format, kind;
    size_t want_pub, want_secret;
    int rc;

    memset(v, 0, sizeof(*v));
    if (len > KURER_KEYFILE_MAX)
        return KURER_ELIMIT;
    kurer_reader_init(&r, file, len);
    if ((rc = kurer_reader_view(&r, sizeof(keyfile_magic), &magic)) != 0)
        return rc;
    if (memcmp(magic, keyfile_magic, sizeof(keyfile_magic)) != 0)
        return KURER_EMALFORMED;
    if ((rc = kurer_reader_u8(&r, &format)) != 0 || (rc = kurer_reader_u8(&r, &kind)) != 0)
        return rc;
    if (format != KEYFILE_FORMAT)
        return KURER_EVERSION;
    v->kind = (kurer_key_kind)kind;
    if (kind_sizes(v->kind, &want_pub, &want_secret) != 0)
        return KURER_EMALFORMED;
    if ((rc = get_kdf(&r, &v->kdf, v->salt)) != 0 ||
        (rc = kurer_reader_view(&r, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &v->nonce)) !=
            0 ||
        (rc = kurer_reader_lv16(&r, 64, &v->pub, &v->pub_len)) != 0)
        return rc;
    v->ad_len = r.off;
    if ((rc = kurer_reader_lv16(&r, 128, &v->ct, &v->ct_len)) != 0)
        return rc;
    if (v->pub_len != want_pub || v->ct_len != want_secret + 16)
        return KURER_EMALFORMED;
    return kurer_reader_end(&r);
}

int kurer_keyfile_peek(const uint8_t *file, size_t len, kurer_key_kind *kind, uint8_t *pub,
                       size_t pub_cap, size_t *pub_len)
{
    keyfile_view v;
    int rc = keyfile_parse(file, len, &v);
    if (rc != 0)
        return rc;
    if (v.pub_len > pub_cap)
        return KURER_ELIMIT;
    *kind = v.kind;
    memcpy(pub, v.pub, v.pub_len);
    *pub_len = v.pub_len;
    return 0;
}

int kurer_keyfile_open(const uint8_t *file, size_t len, kurer_key_kind kind, uint8_t *pub,
                       size_t pub_len, uint8_t *secret, size_t secret_len, const char *pass,
                       size_t pass_len)
{
    keyfile_view v;
    uint8_t *key;
    unsigned long long outlen;
    int rc = keyfile_parse(file, len, &v);
    if (rc != 0)
        return rc;
    if (v.kind != kind || v.pub_len != pub_len || v.ct_len != secret_len + 16)
        return KURER_EINVAL;
    key = kurer_secure_alloc(32);
    if (key == NULL)
        return KURER_ENOMEM;
    rc = kurer_kdf_derive(key, pass, pass_len, v.salt, &v.kdf);
    if (rc == 0 && crypto_aead_xchacha20poly1305_ietf_decrypt(secret, &outlen, NULL, v.ct, v.ct_len,
                                                              file, v.ad_len, v.nonce, key) != 0) {
        sodium_memzero(secret, secret_len);
        rc = KURER_EPASSPHRASE;
    }
    kurer_secure_free(key);
    if (rc == 0)
        memcpy(pub, v.pub, pub_len);
    return rc;
}

int kurer_signing_key_save(const kurer_signing_key *k, const char *path, const char *pass,
                           size_t pass_len, const kurer_kdf_params *p, int overwrite)
{
    kurer_buf b;
    int rc;
    kurer_buf_init(&b, KURER_KEYFILE_MAX);
    rc = kurer_keyfile_seal(&b, KURER_KEY_ED25519, k->pk, 32, k->sk, 64, pass, pass_len, p);
    if (rc == 0)
        rc = kurer_file_write(path, b.data, b.len, 0600, overwrite);
    kurer_buf_release(&b);
    return rc;
}

int kurer_signing_key_load(kurer_signing_key *k, const char *path, const char *pass,
                           size_t pass_len)
{
    uint8_t *data, pk_check[32];
    size_t len;
    int rc;
    memset(k, 0, sizeof(*k));
    if ((rc = kurer_file_read(path, KURER_KEYFILE_MAX, &data, &len)) != 0)
        return rc == KURER_ELIMIT ? KURER_EMALFORMED : rc;
    k->sk = kurer_secure_alloc(64);
    if (k->sk == NULL) {
        free(data);
        return KURER_ENOMEM;
    }
    rc = kurer_keyfile_open(data, len, KURER_KEY_ED25519, k->pk, 32, k->sk, 64, pass, pass_len);
    free(data);
    /* The public half is recorded in clear: make sure it belongs to the private half. */
    if (rc == 0 && (crypto_sign_ed25519_sk_to_pk(pk_check, k->sk) != 0 ||
                    sodium_memcmp(pk_check, k->pk, 32) != 0))
        rc = KURER_ECORRUPT;
    if (rc != 0)
        kurer_signing_key_release(k);
    return rc;
}
