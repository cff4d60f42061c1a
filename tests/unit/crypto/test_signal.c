/* crypto_signal: our libsignal crypto provider and identity keys.
 *
 * Known-answer checks go straight through the provider callbacks; the session test runs X3DH and
 * a long interleaved Double Ratchet conversation between two parties with their own contexts
 * and in-memory stores. Identity trust in the test stores compares against the key each side
 * expects for its peer (the real, certificate-based trust lives in client/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sodium.h>

#include <curve.h>
#include <protocol.h>
#include <session_builder.h>
#include <session_cipher.h>
#include <session_pre_key.h>
#include <signal_protocol.h>

#include "kurer/crypto.h"
#include "kurer/signal.h"

/* ---- helpers ---- */

static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void assert_buf_hex(signal_buffer *b, const char *hex)
{
    uint8_t want[256];
    size_t n = unhex(want, sizeof(want), hex);
    assert_non_null(b);
    assert_int_equal(signal_buffer_len(b), n);
    assert_memory_equal(signal_buffer_data(b), want, n);
}

/* ---- known answers through the provider ---- */

static void test_hmac_sha256_kat(void **state)
{
    (void)state;
    signal_crypto_provider p;
    kurer_signal_provider(&p);

    /* RFC 4231 test case 2 */
    void *h = NULL;
    signal_buffer *out = NULL;
    assert_int_equal(p.hmac_sha256_init_func(&h, (const uint8_t *)"Jefe", 4, NULL), 0);
    const char *d = "what do ya want for nothing?";
    assert_int_equal(p.hmac_sha256_update_func(h, (const uint8_t *)d, 10, NULL), 0);
    assert_int_equal(p.hmac_sha256_update_func(h, (const uint8_t *)d + 10, strlen(d) - 10, NULL),
                     0);
    assert_int_equal(p.hmac_sha256_final_func(h, &out, NULL), 0);
    p.hmac_sha256_cleanup_func(h, NULL);
    assert_buf_hex(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    signal_buffer_free(out);

    /* RFC 4231 test case 6: a key longer than the block is hashed first */
    uint8_t key[131];
    memset(key, 0xaa, sizeof(key));
    const char *m = "Test Using Larger Than Block-Size Key - Hash Key First";
    h = NULL;
    out = NULL;
    assert_int_equal(p.hmac_sha256_init_func(&h, key, sizeof(key), NULL), 0);
    assert_int_equal(p.hmac_sha256_update_func(h, (const uint8_t *)m, strlen(m), NULL), 0);
    assert_int_equal(p.hmac_sha256_final_func(h, &out, NULL), 0);
    p.hmac_sha256_cleanup_func(h, NULL);
    assert_buf_hex(out, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    signal_buffer_free(out);

    p.hmac_sha256_cleanup_func(NULL, NULL); /* NULL-safe */
}

static const char SHA512_ABC[] = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                                 "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

static void test_sha512_kat(void **state)
{
    (void)state;
    signal_crypto_provider p;
    kurer_signal_provider(&p);
    void *h = NULL;
    assert_int_equal(p.sha512_digest_init_func(&h, NULL), 0);
    for (int round = 0; round < 3; round++) {
        /* final must leave the context ready for the next digest (fingerprints loop on it) */
        signal_buffer *out = NULL;
        assert_int_equal(p.sha512_digest_update_func(h, (const uint8_t *)"a", 1, NULL), 0);
        assert_int_equal(p.sha512_digest_update_func(h, (const uint8_t *)"bc", 2, NULL), 0);
        assert_int_equal(p.sha512_digest_final_func(h, &out, NULL), 0);
        assert_buf_hex(out, SHA512_ABC);
        signal_buffer_free(out);
    }
    p.sha512_digest_cleanup_func(h, NULL);
}

#define K256 "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"
#define PT4                                                                                        \
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"                             \
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
/* NIST SP 800-38A F.2.5 (CBC-AES256.Encrypt) */
#define CBC_IV "000102030405060708090a0b0c0d0e0f"
#define CBC_CT                                                                                     \
    "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"                             \
    "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"
/* NIST SP 800-38A F.5.5 (CTR-AES256.Encrypt) */
#define CTR_IV "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
#define CTR_CT                                                                                     \
    "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"                             \
    "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"

static void test_aes_cbc_kat(void **state)
{
    (void)state;
    signal_crypto_provider p;
    kurer_signal_provider(&p);
    uint8_t key[32], iv[16], pt[64], ct[64];
    unhex(key, sizeof(key), K256);
    unhex(iv, sizeof(iv), CBC_IV);
    unhex(pt, sizeof(pt), PT4);
    unhex(ct, sizeof(ct), CBC_CT);

    /* PKCS#7 adds a full block to 64 bytes; the first four blocks are the NIST ones. */
    signal_buffer *out = NULL;
    assert_int_equal(p.encrypt_func(&out, SG_CIPHER_AES_CBC_PKCS5, key, 32, iv, 16, pt, 64, NULL),
                     0);
    assert_int_equal(signal_buffer_len(out), 80);
    assert_memory_equal(signal_buffer_data(out), ct, 64);

    signal_buffer *back = NULL;
    assert_int_equal(p.decrypt_func(&back, SG_CIPHER_AES_CBC_PKCS5, key, 32, iv, 16,
                                    signal_buffer_data(out), signal_buffer_len(out), NULL),
                     0);
    assert_int_equal(signal_buffer_len(back), 64);
    assert_memory_equal(signal_buffer_data(back), pt, 64);
    signal_buffer_free(back);

    /* Empty plaintext: one block of padding. */
    signal_buffer *e = NULL;
    assert_int_equal(p.encrypt_func(&e, SG_CIPHER_AES_CBC_PKCS5, key, 32, iv, 16, pt, 0, NULL), 0);
    assert_int_equal(signal_buffer_len(e), 16);
    back = NULL;
    assert_int_equal(p.decrypt_func(&back, SG_CIPHER_AES_CBC_PKCS5, key, 32, iv, 16,
                                    signal_buffer_data(e), 16, NULL),
                     0);
    assert_int_equal(signal_buffer_len(back), 0);
    signal_buffer_free(back);
    signal_buffer_free(e);

    /* Bad padding: the bare NIST ciphertext decrypts to a last block ending in 0x10 that is not
     * sixteen 0x10 bytes. */
    back = NULL;
    assert_int_equal(p.decrypt_func(&back, SG_CIPHER_AES_CBC_PKCS5, key, 32, iv, 16, ct, 64, NULL),
                     KURER_SG_ERR_DECRYPT);
    assert_null(back);
    /* Not a whole number of blocks, empty. */
    assert_int_equal(p.decrypt_func(&back, SG_CIPHER_AES_CBC_PKCS5, key, 32, iv, 16,
                                    signal_buffer_data(out), 79, NULL),
                     KURER_SG_ERR_DECRYPT);
    assert_int_equal(p.decrypt_func(&back, SG_CIPHER_AES_CBC_PKCS5, key, 32, iv, 16, ct, 0, NULL),
                     KURER_SG_ERR_DECRYPT);
    /* Wrong key / IV length, unknown cipher. */
    assert_int_equal(p.encrypt_func(&back, SG_CIPHER_AES_CBC_PKCS5, key, 16, iv, 16, pt, 16, NULL),
                     KURER_SG_ERR_KEYLEN);
    assert_int_equal(p.encrypt_func(&back, SG_CIPHER_AES_CBC_PKCS5, key, 32, iv, 12, pt, 16, NULL),
                     KURER_SG_ERR_IVLEN);
    assert_int_equal(p.decrypt_func(&back, 7, key, 32, iv, 16, ct, 16, NULL), KURER_SG_ERR_CIPHER);
    assert_null(back);
    signal_buffer_free(out);
}

static void test_aes_ctr_kat(void **state)
{
    (void)state;
    signal_crypto_provider p;
    kurer_signal_provider(&p);
    uint8_t key[32], iv[16], pt[64], ct[64];
    unhex(key, sizeof(key), K256);
    unhex(iv, sizeof(iv), CTR_IV);
    unhex(pt, sizeof(pt), PT4);
    unhex(ct, sizeof(ct), CTR_CT);

    signal_buffer *out = NULL;
    assert_int_equal(
        p.encrypt_func(&out, SG_CIPHER_AES_CTR_NOPADDING, key, 32, iv, 16, pt, 64, NULL), 0);
    assert_buf_hex(out, CTR_CT);
    signal_buffer_free(out);

    /* No padding: any length, and decryption is the same keystream. */
    out = NULL;
    assert_int_equal(
        p.decrypt_func(&out, SG_CIPHER_AES_CTR_NOPADDING, key, 32, iv, 16, ct, 37, NULL), 0);
    assert_int_equal(signal_buffer_len(out), 37);
    assert_memory_equal(signal_buffer_data(out), pt, 37);
    signal_buffer_free(out);

    out = NULL;
    assert_int_equal(
        p.encrypt_func(&out, SG_CIPHER_AES_CTR_NOPADDING, key, 31, iv, 16, pt, 64, NULL),
        KURER_SG_ERR_KEYLEN);
    assert_null(out);
}

/* ---- identity keys ---- */

static void test_identity_sign_verify(void **state)
{
    (void)state;
    uint8_t pub[33], priv[32], sig[64];
    const uint8_t msg[] = "signed prekey bytes";
    assert_int_equal(kurer_identity_generate(pub, priv), 0);
    assert_int_equal(pub[0], 0x05);
    /* clamped as X25519 and XEdDSA expect */
    assert_int_equal(priv[0] & 7, 0);
    assert_int_equal(priv[31] & 0xc0, 0x40);

    assert_int_equal(kurer_identity_sign(priv, msg, sizeof(msg), sig), 0);
    assert_int_equal(kurer_identity_verify(pub, msg, sizeof(msg), sig), 0);
    /* empty message */
    uint8_t sig0[64];
    assert_int_equal(kurer_identity_sign(priv, NULL, 0, sig0), 0);
    assert_int_equal(kurer_identity_verify(pub, NULL, 0, sig0), 0);

    /* tampered signature, tampered message, another key */
    sig[10] ^= 0x01;
    assert_int_equal(kurer_identity_verify(pub, msg, sizeof(msg), sig), KURER_EBADSIG);
    sig[10] ^= 0x01;
    uint8_t msg2[sizeof(msg)];
    memcpy(msg2, msg, sizeof(msg));
    msg2[0] ^= 0x20;
    assert_int_equal(kurer_identity_verify(pub, msg2, sizeof(msg2), sig), KURER_EBADSIG);
    uint8_t pub2[33], priv2[32];
    assert_int_equal(kurer_identity_generate(pub2, priv2), 0);
    assert_memory_not_equal(pub, pub2, 33);
    assert_int_equal(kurer_identity_verify(pub2, msg, sizeof(msg), sig), KURER_EBADSIG);

    /* malformed keys */
    uint8_t bad[33];
    memcpy(bad, pub, 33);
    bad[0] = 0x06;
    assert_int_equal(kurer_identity_verify(bad, msg, sizeof(msg), sig), KURER_EBADKEY);
    memset(bad, 0, sizeof(bad));
    bad[0] = 0x05;
    assert_int_equal(kurer_identity_verify(bad, msg, sizeof(msg), sig), KURER_EBADKEY);
    bad[1] = 1; /* u = 1, small order */
    assert_int_equal(kurer_identity_verify(bad, msg, sizeof(msg), sig), KURER_EBADKEY);

    /* the public key from libsignal's agreement matches X25519 of the private key */
    uint8_t u[32];
    assert_int_equal(crypto_scalarmult_curve25519_base(u, priv), 0);
    assert_memory_equal(u, pub + 1, 32);
    kurer_memzero(priv, sizeof(priv));
    kurer_memzero(priv2, sizeof(priv2));
}

/* ---- in-memory stores ---- */

#define MAX_RECS 16

struct rec {
    int used;
    char name[32];
    size_t name_len;
    int32_t dev;
    uint32_t id;
    signal_buffer *data;
};

struct party {
    const char *name;
    kurer_signal_ctx *kctx;
    signal_context *ctx;
    signal_protocol_store_context *store;
    uint8_t id_pub[33], id_priv[32];
    uint32_t reg_id;
    uint8_t expected_peer[33]; /* the identity key this party trusts for its peer */
    struct rec sessions[MAX_RECS], prekeys[MAX_RECS], signed_prekeys[MAX_RECS],
        identities[MAX_RECS];
};

static struct rec *rec_find_addr(struct rec *t, const char *name, size_t len, int32_t dev)
{
    for (int i = 0; i < MAX_RECS; i++)
        if (t[i].used && t[i].name_len == len && memcmp(t[i].name, name, len) == 0 &&
            t[i].dev == dev)
            return &t[i];
    return NULL;
}

static struct rec *rec_find_id(struct rec *t, uint32_t id)
{
    for (int i = 0; i < MAX_RECS; i++)
        if (t[i].used && t[i].id == id)
            return &t[i];
    return NULL;
}

static struct rec *rec_new(struct rec *t)
{
    for (int i = 0; i < MAX_RECS; i++)
        if (!t[i].used) {
            memset(&t[i], 0, sizeof(t[i]));
            t[i].used = 1;
            return &t[i];
        }
    return NULL;
}

static void rec_drop(struct rec *r)
{
    signal_buffer_bzero_free(r->data);
    memset(r, 0, sizeof(*r));
}

static int rec_set(struct rec *r, const uint8_t *data, size_t len)
{
    signal_buffer *b = signal_buffer_create(data, len);
    if (b == NULL)
        return SG_ERR_NOMEM;
    signal_buffer_bzero_free(r->data);
    r->data = b;
    return 0;
}

static struct rec *rec_addr(struct rec *t, const signal_protocol_address *a, int create)
{
    struct rec *r = rec_find_addr(t, a->name, a->name_len, a->device_id);
    if (r == NULL && create && a->name_len <= sizeof(r->name)) {
        r = rec_new(t);
        if (r != NULL) {
            memcpy(r->name, a->name, a->name_len);
            r->name_len = a->name_len;
            r->dev = a->device_id;
        }
    }
    return r;
}

static int ss_load(signal_buffer **record, signal_buffer **user_record,
                   const signal_protocol_address *a, void *ud)
{
    (void)user_record;
    struct rec *r = rec_addr(((struct party *)ud)->sessions, a, 0);
    if (r == NULL)
        return 0;
    *record = signal_buffer_copy(r->data);
    return *record != NULL ? 1 : SG_ERR_NOMEM;
}

static int ss_subdevices(signal_int_list **out, const char *name, size_t len, void *ud)
{
    struct party *p = ud;
    signal_int_list *l = signal_int_list_alloc();
    if (l == NULL)
        return SG_ERR_NOMEM;
    for (int i = 0; i < MAX_RECS; i++)
        if (p->sessions[i].used && p->sessions[i].name_len == len &&
            memcmp(p->sessions[i].name, name, len) == 0)
            signal_int_list_push_back(l, p->sessions[i].dev);
    *out = l;
    return (int)signal_int_list_size(l);
}

static int ss_store(const signal_protocol_address *a, uint8_t *record, size_t len,
                    uint8_t *user_record, size_t user_len, void *ud)
{
    (void)user_record;
    (void)user_len;
    struct rec *r = rec_addr(((struct party *)ud)->sessions, a, 1);
    return r == NULL ? SG_ERR_NOMEM : rec_set(r, record, len);
}

static int ss_contains(const signal_protocol_address *a, void *ud)
{
    return rec_addr(((struct party *)ud)->sessions, a, 0) != NULL;
}

static int ss_delete(const signal_protocol_address *a, void *ud)
{
    struct rec *r = rec_addr(((struct party *)ud)->sessions, a, 0);
    if (r == NULL)
        return 0;
    rec_drop(r);
    return 1;
}

static int ss_delete_all(const char *name, size_t len, void *ud)
{
    struct party *p = ud;
    int n = 0;
    for (int i = 0; i < MAX_RECS; i++)
        if (p->sessions[i].used && p->sessions[i].name_len == len &&
            memcmp(p->sessions[i].name, name, len) == 0) {
            rec_drop(&p->sessions[i]);
            n++;
        }
    return n;
}

static int id_load(struct rec *t, signal_buffer **record, uint32_t id)
{
    struct rec *r = rec_find_id(t, id);
    if (r == NULL)
        return SG_ERR_INVALID_KEY_ID;
    *record = signal_buffer_copy(r->data);
    return *record != NULL ? SG_SUCCESS : SG_ERR_NOMEM;
}

static int id_store(struct rec *t, uint32_t id, const uint8_t *record, size_t len)
{
    struct rec *r = rec_find_id(t, id);
    if (r == NULL) {
        r = rec_new(t);
        if (r == NULL)
            return SG_ERR_NOMEM;
        r->id = id;
    }
    return rec_set(r, record, len);
}

static int id_remove(struct rec *t, uint32_t id)
{
    struct rec *r = rec_find_id(t, id);
    if (r != NULL)
        rec_drop(r);
    return 0;
}

static int pk_load(signal_buffer **record, uint32_t id, void *ud)
{
    return id_load(((struct party *)ud)->prekeys, record, id);
}
static int pk_store(uint32_t id, uint8_t *record, size_t len, void *ud)
{
    return id_store(((struct party *)ud)->prekeys, id, record, len);
}
static int pk_contains(uint32_t id, void *ud)
{
    return rec_find_id(((struct party *)ud)->prekeys, id) != NULL;
}
static int pk_remove(uint32_t id, void *ud)
{
    return id_remove(((struct party *)ud)->prekeys, id);
}
static int spk_load(signal_buffer **record, uint32_t id, void *ud)
{
    return id_load(((struct party *)ud)->signed_prekeys, record, id);
}
static int spk_store(uint32_t id, uint8_t *record, size_t len, void *ud)
{
    return id_store(((struct party *)ud)->signed_prekeys, id, record, len);
}
static int spk_contains(uint32_t id, void *ud)
{
    return rec_find_id(((struct party *)ud)->signed_prekeys, id) != NULL;
}
static int spk_remove(uint32_t id, void *ud)
{
    return id_remove(((struct party *)ud)->signed_prekeys, id);
}

static int ik_get_pair(signal_buffer **pub, signal_buffer **priv, void *ud)
{
    struct party *p = ud;
    *pub = signal_buffer_create(p->id_pub, 33);
    *priv = signal_buffer_create(p->id_priv, 32);
    if (*pub == NULL || *priv == NULL) {
        signal_buffer_free(*pub);
        signal_buffer_bzero_free(*priv);
        return SG_ERR_NOMEM;
    }
    return 0;
}

static int ik_get_reg_id(void *ud, uint32_t *reg_id)
{
    *reg_id = ((struct party *)ud)->reg_id;
    return 0;
}

static int ik_save(const signal_protocol_address *a, uint8_t *key, size_t len, void *ud)
{
    struct rec *r = rec_addr(((struct party *)ud)->identities, a, 1);
    if (r == NULL)
        return SG_ERR_NOMEM;
    if (key == NULL) {
        signal_buffer_free(r->data);
        r->data = NULL;
        return 0;
    }
    return rec_set(r, key, len);
}

/* Trusted only if it is the key this party expects for the peer (stands in for the
 * certificate lookup), never trust on first use. */
static int ik_trusted(const signal_protocol_address *a, uint8_t *key, size_t len, void *ud)
{
    (void)a;
    struct party *p = ud;
    return len == 33 && kurer_ct_equal(key, p->expected_peer, 33);
}

static void party_init(struct party *p, const char *name, uint32_t reg_id)
{
    memset(p, 0, sizeof(*p));
    p->name = name;
    p->reg_id = reg_id;
    assert_int_equal(kurer_signal_context_new(&p->kctx, p), 0);
    assert_ptr_equal(kurer_signal_context_user_data(p->kctx), p);
    p->ctx = kurer_signal_context_get(p->kctx);
    assert_int_equal(kurer_identity_generate(p->id_pub, p->id_priv), 0);
    assert_int_equal(signal_protocol_store_context_create(&p->store, p->ctx), 0);

    signal_protocol_session_store ss = {
        .load_session_func = ss_load,
        .get_sub_device_sessions_func = ss_subdevices,
        .store_session_func = ss_store,
        .contains_session_func = ss_contains,
        .delete_session_func = ss_delete,
        .delete_all_sessions_func = ss_delete_all,
        .user_data = p,
    };
    signal_protocol_pre_key_store pks = {
        .load_pre_key = pk_load,
        .store_pre_key = pk_store,
        .contains_pre_key = pk_contains,
        .remove_pre_key = pk_remove,
        .user_data = p,
    };
    signal_protocol_signed_pre_key_store spks = {
        .load_signed_pre_key = spk_load,
        .store_signed_pre_key = spk_store,
        .contains_signed_pre_key = spk_contains,
        .remove_signed_pre_key = spk_remove,
        .user_data = p,
    };
    signal_protocol_identity_key_store iks = {
        .get_identity_key_pair = ik_get_pair,
        .get_local_registration_id = ik_get_reg_id,
        .save_identity = ik_save,
        .is_trusted_identity = ik_trusted,
        .user_data = p,
    };
    assert_int_equal(signal_protocol_store_context_set_session_store(p->store, &ss), 0);
    assert_int_equal(signal_protocol_store_context_set_pre_key_store(p->store, &pks), 0);
    assert_int_equal(signal_protocol_store_context_set_signed_pre_key_store(p->store, &spks), 0);
    assert_int_equal(signal_protocol_store_context_set_identity_key_store(p->store, &iks), 0);
}

static void party_free(struct party *p)
{
    signal_protocol_store_context_destroy(p->store);
    kurer_signal_context_free(p->kctx);
    struct rec *tables[] = {p->sessions, p->prekeys, p->signed_prekeys, p->identities};
    for (size_t t = 0; t < 4; t++)
        for (int i = 0; i < MAX_RECS; i++)
            if (tables[t][i].used)
                rec_drop(&tables[t][i]);
    kurer_memzero(p->id_priv, sizeof(p->id_priv));
}

/* Bob's prekeys: a signed prekey signed with kurer_identity_sign (so libsignal's own check
 * of the bundle verifies our XEdDSA) and one one-time prekey. Returns the bundle. */
static session_pre_key_bundle *make_bundle(struct party *bob)
{
    ec_key_pair *spk_pair = NULL, *pk_pair = NULL;
    session_signed_pre_key *spk = NULL;
    session_pre_key *pk = NULL;
    signal_buffer *spk_pub = NULL;
    ec_public_key *identity = NULL;
    session_pre_key_bundle *bundle = NULL;
    uint8_t sig[64];

    assert_int_equal(curve_generate_key_pair(bob->ctx, &spk_pair), 0);
    assert_int_equal(ec_public_key_serialize(&spk_pub, ec_key_pair_get_public(spk_pair)), 0);
    assert_int_equal(kurer_identity_sign(bob->id_priv, signal_buffer_data(spk_pub),
                                         signal_buffer_len(spk_pub), sig),
                     0);
    assert_int_equal(kurer_identity_verify(bob->id_pub, signal_buffer_data(spk_pub),
                                           signal_buffer_len(spk_pub), sig),
                     0);
    assert_int_equal(session_signed_pre_key_create(&spk, 7, 1700000000000ULL, spk_pair, sig, 64),
                     0);
    assert_int_equal(signal_protocol_signed_pre_key_store_key(bob->store, spk), 0);

    assert_int_equal(curve_generate_key_pair(bob->ctx, &pk_pair), 0);
    assert_int_equal(session_pre_key_create(&pk, 31, pk_pair), 0);
    assert_int_equal(signal_protocol_pre_key_store_key(bob->store, pk), 0);

    assert_int_equal(curve_decode_point(&identity, bob->id_pub, 33, bob->ctx), 0);
    assert_int_equal(
        session_pre_key_bundle_create(&bundle, bob->reg_id, 1, 31, ec_key_pair_get_public(pk_pair),
                                      7, ec_key_pair_get_public(spk_pair), sig, 64, identity),
        0);
    SIGNAL_UNREF(identity);
    SIGNAL_UNREF(pk);
    SIGNAL_UNREF(pk_pair);
    SIGNAL_UNREF(spk);
    SIGNAL_UNREF(spk_pair);
    signal_buffer_free(spk_pub);
    return bundle;
}

/* ---- the conversation ---- */

struct msg {
    int type; /* CIPHERTEXT_PREKEY_TYPE or CIPHERTEXT_SIGNAL_TYPE */
    signal_buffer *bytes;
    char text[64];
};

#define MAX_FLIGHT 64

struct lane { /* messages in flight to one party */
    struct msg m[MAX_FLIGHT];
    int n;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rng(uint32_t upper)
{
    /* xorshift64*: reproducible delivery orders */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32) % upper;
}

static void send_one(session_cipher *c, struct lane *to, const char *who, int seq, int *prekeys)
{
    struct msg *m = &to->m[to->n];
    assert_true(to->n < MAX_FLIGHT);
    /* varying lengths, so CBC padding sees every remainder */
    int len = snprintf(m->text, sizeof(m->text), "%s #%d %.*s", who, seq, seq % 23,
                       "padding-padding-padding");
    ciphertext_message *ct = NULL;
    assert_int_equal(session_cipher_encrypt(c, (const uint8_t *)m->text, (size_t)len, &ct), 0);
    m->type = ciphertext_message_get_type(ct);
    assert_true(m->type == CIPHERTEXT_PREKEY_TYPE || m->type == CIPHERTEXT_SIGNAL_TYPE);
    if (m->type == CIPHERTEXT_PREKEY_TYPE)
        (*prekeys)++;
    m->bytes = signal_buffer_copy(ciphertext_message_get_serialized(ct));
    assert_non_null(m->bytes);
    SIGNAL_UNREF(ct);
    to->n++;
}

static int decrypt(struct party *p, session_cipher *c, const struct msg *m, signal_buffer **pt)
{
    int rc;
    if (m->type == CIPHERTEXT_PREKEY_TYPE) {
        pre_key_signal_message *pm = NULL;
        rc = pre_key_signal_message_deserialize(&pm, signal_buffer_data(m->bytes),
                                                signal_buffer_len(m->bytes), p->ctx);
        if (rc == 0)
            rc = session_cipher_decrypt_pre_key_signal_message(c, pm, NULL, pt);
        SIGNAL_UNREF(pm);
    } else {
        signal_message *sm = NULL;
        rc = signal_message_deserialize(&sm, signal_buffer_data(m->bytes),
                                        signal_buffer_len(m->bytes), p->ctx);
        if (rc == 0)
            rc = session_cipher_decrypt_signal_message(c, sm, NULL, pt);
        SIGNAL_UNREF(sm);
    }
    return rc;
}

/* Delivers the message at index i of the lane and removes it. */
static void deliver(struct party *p, session_cipher *c, struct lane *l, int i, int *delivered)
{
    struct msg m = l->m[i];
    memmove(&l->m[i], &l->m[i + 1], (size_t)(l->n - i - 1) * sizeof(l->m[0]));
    l->n--;

    signal_buffer *pt = NULL;
    assert_int_equal(decrypt(p, c, &m, &pt), 0);
    assert_int_equal(signal_buffer_len(pt), strlen(m.text));
    assert_memory_equal(signal_buffer_data(pt), m.text, strlen(m.text));
    signal_buffer_bzero_free(pt);

    /* Every so often, a replay: refused, and the session still works afterwards. */
    if (rng(16) == 0) {
        pt = NULL;
        assert_int_equal(decrypt(p, c, &m, &pt), SG_ERR_DUPLICATE_MESSAGE);
        assert_null(pt);
    }
    signal_buffer_free(m.bytes);
    (*delivered)++;
}

/* Delivers what is in flight, in a shuffled order, sometimes holding one back for a later
 * round (so it arrives after the next ratchet step). */
static void deliver_round(struct party *p, session_cipher *c, struct lane *l, int *delivered,
                          int hold_back)
{
    int keep = (hold_back && l->n > 1 && rng(3) == 0) ? 1 : 0;
    while (l->n > keep)
        deliver(p, c, l, l->n > 1 && rng(2) ? (int)rng((uint32_t)l->n) : 0, delivered);
}

static void test_session(void **state)
{
    (void)state;
    struct party alice, bob;
    party_init(&alice, "alice@agency", 1111);
    party_init(&bob, "bob@ministry", 2222);
    memcpy(alice.expected_peer, bob.id_pub, 33);
    memcpy(bob.expected_peer, alice.id_pub, 33);

    /* the addresses must outlive the builder and ciphers */
    const signal_protocol_address bob_addr = {"bob@ministry", 12, 1};
    const signal_protocol_address alice_addr = {"alice@agency", 12, 1};

    /* X3DH: Alice builds from Bob's bundle. */
    session_pre_key_bundle *bundle = make_bundle(&bob);
    session_builder *builder = NULL;
    assert_int_equal(session_builder_create(&builder, alice.store, &bob_addr, alice.ctx), 0);
    assert_int_equal(session_builder_process_pre_key_bundle(builder, bundle), 0);
    session_builder_free(builder);
    SIGNAL_UNREF(bundle);

    session_cipher *a = NULL, *b = NULL;
    assert_int_equal(session_cipher_create(&a, alice.store, &bob_addr, alice.ctx), 0);
    assert_int_equal(session_cipher_create(&b, bob.store, &alice_addr, bob.ctx), 0);

    struct lane to_bob = {.n = 0}, to_alice = {.n = 0};
    int sent_a = 0, sent_b = 0, got_a = 0, got_b = 0, prekey_msgs = 0, ratchet_turns = 0;

    /* Turns alternate; each turn the speaker first reads what has arrived, then sends 1-3
     * messages. A turn after reading the peer's messages is a DH ratchet step. */
    for (int turn = 0; turn < 320; turn++) {
        int alice_speaks = (turn % 2) == 0;
        if (alice_speaks) {
            deliver_round(&alice, a, &to_alice, &got_a, turn < 318);
            int k = 1 + (int)rng(3);
            for (int i = 0; i < k; i++)
                send_one(a, &to_bob, "alice", sent_a++, &prekey_msgs);
        } else {
            deliver_round(&bob, b, &to_bob, &got_b, turn > 1 && turn < 318);
            int k = 1 + (int)rng(3);
            for (int i = 0; i < k; i++)
                send_one(b, &to_alice, "bob", sent_b++, &prekey_msgs);
        }
        ratchet_turns++;
    }
    /* Drain everything still in flight, out of order. */
    deliver_round(&bob, b, &to_bob, &got_b, 0);
    deliver_round(&alice, a, &to_alice, &got_a, 0);

    assert_int_equal(got_b, sent_a);
    assert_int_equal(got_a, sent_b);
    assert_true(ratchet_turns >= 300);
    print_message("%d ratchet turns, %d messages alice->bob, %d bob->alice\n", ratchet_turns,
                  sent_a, sent_b);
    /* Alice's first turn went out as prekey messages; after Bob's reply, normal ones. */
    assert_true(prekey_msgs >= 1 && prekey_msgs <= 3);
    uint32_t v = 0;
    assert_int_equal(session_cipher_get_session_version(a, &v), 0);
    assert_int_equal(v, 3);
    uint32_t rid = 0;
    assert_int_equal(session_cipher_get_remote_registration_id(a, &rid), 0);
    assert_int_equal(rid, 2222);
    /* Bob used the one-time prekey and removed it. */
    assert_null(rec_find_id(bob.prekeys, 31));

    /* A tampered message fails and does not damage the session. */
    struct lane tmp = {.n = 0};
    send_one(a, &tmp, "alice", sent_a++, &prekey_msgs);
    signal_buffer_data(tmp.m[0].bytes)[signal_buffer_len(tmp.m[0].bytes) / 2] ^= 0x01;
    signal_buffer *pt = NULL;
    assert_int_not_equal(decrypt(&bob, b, &tmp.m[0], &pt), 0);
    assert_null(pt);
    signal_buffer_free(tmp.m[0].bytes);
    tmp.n = 0;
    send_one(a, &tmp, "alice", sent_a++, &prekey_msgs);
    deliver(&bob, b, &tmp, 0, &got_b);

    session_cipher_free(a);
    session_cipher_free(b);
    party_free(&alice);
    party_free(&bob);
}

/* Bundles from a key the store does not expect are refused (no trust on first use). */
static void test_untrusted_identity(void **state)
{
    (void)state;
    struct party alice, bob;
    party_init(&alice, "alice@agency", 1);
    party_init(&bob, "bob@ministry", 2);
    uint8_t other_priv[32];
    assert_int_equal(kurer_identity_generate(alice.expected_peer, other_priv), 0);
    kurer_memzero(other_priv, sizeof(other_priv));

    const signal_protocol_address bob_addr = {"bob@ministry", 12, 1};
    session_pre_key_bundle *bundle = make_bundle(&bob);
    session_builder *builder = NULL;
    assert_int_equal(session_builder_create(&builder, alice.store, &bob_addr, alice.ctx), 0);
    assert_int_equal(session_builder_process_pre_key_bundle(builder, bundle),
                     SG_ERR_UNTRUSTED_IDENTITY);
    session_builder_free(builder);
    SIGNAL_UNREF(bundle);
    party_free(&alice);
    party_free(&bob);
}

static void test_context_free_null(void **state)
{
    (void)state;
    kurer_signal_context_free(NULL);
    /* Several contexts at once, independent. */
    kurer_signal_ctx *c[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(kurer_signal_context_new(&c[i], NULL), 0);
    for (int i = 0; i < 4; i++)
        kurer_signal_context_free(c[i]);
}

int main(void)
{
    if (kurer_crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_sha256_kat),      cmocka_unit_test(test_sha512_kat),
        cmocka_unit_test(test_aes_cbc_kat),          cmocka_unit_test(test_aes_ctr_kat),
        cmocka_unit_test(test_identity_sign_verify), cmocka_unit_test(test_context_free_null),
        cmocka_unit_test(test_untrusted_identity),   cmocka_unit_test(test_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
