/* Noise_IK / Noise_NK with 25519, ChaChaPoly and BLAKE2b (Noise specification revision 34).
 *
 * The names below follow the specification's sections 5.1-5.3 (CipherState, SymmetricState,
 * HandshakeState) so that the code can be read against it. Everything the handshake knows lives in
 * one heap block that kurer_noise_hs_free wipes. It lives for one round trip, so it is ordinary
 * memory, not guarded memory: sodium_malloc costs several mappings and an mlock per call, which
 * capped how many handshakes (and connections) a relay could hold. Long-lived keys stay guarded. */
#include "kurer/noise.h"
#include "kurer/crypto.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define BLOCKLEN 128 /* BLAKE2b block size: HMAC pads its key to this */

static const char protocol_ik[] = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
static const char protocol_nk[] = "Noise_NK_25519_ChaChaPoly_BLAKE2b";
/* Both names are at most HASHLEN bytes, so InitializeSymmetric pads them instead of hashing. */
_Static_assert(sizeof(protocol_ik) - 1 <= KURER_NOISE_HASHLEN, "protocol name fits HASHLEN");
_Static_assert(sizeof(protocol_nk) - 1 <= KURER_NOISE_HASHLEN, "protocol name fits HASHLEN");

/* Message tokens. A pattern is two messages (initiator's, then responder's), each a list of
 * tokens ending with T_END. */
enum { T_END = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS };

static const uint8_t pattern_ik[2][5] = {{T_E, T_ES, T_S, T_SS, T_END},
                                         {T_E, T_EE, T_SE, T_END, T_END}};
static const uint8_t pattern_nk[2][5] = {{T_E, T_ES, T_END, T_END, T_END},
                                         {T_E, T_EE, T_END, T_END, T_END}};

enum hs_phase {
    PHASE_MSG1 = 0, /* message 1 (initiator to responder) is next */
    PHASE_MSG2 = 1, /* message 2 (responder to initiator) is next */
    PHASE_DONE = 2, /* finished: split and handshake hash are allowed */
    PHASE_SPLIT = 3,
    PHASE_FAILED = 4,
};

struct kurer_noise_hs {
    /* SymmetricState */
    uint8_t ck[KURER_NOISE_HASHLEN];
    uint8_t h[KURER_NOISE_HASHLEN];
    kurer_noise_cipher cs; /* has_key == 0 until the first MixKey */
    /* HandshakeState */
    uint8_t s_sk[32], s_pk[32];
    uint8_t e_sk[32], e_pk[32];
    uint8_t rs[32], re[32];
    int has_s, has_rs, has_re;
    int has_e; /* 0: none yet, 2: fixed by set_ephemeral but not sent, 1: sent */
    int initiator;
    const uint8_t (*pattern)[5];
    enum hs_phase phase;
};

/* ---- HASH and HMAC/HKDF ------------------------------------------------------------------ */

/* HASH(a || b) with BLAKE2b-512. */
static void hash2(uint8_t out[64], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    crypto_generichash_blake2b_state st;
    crypto_generichash_blake2b_init(&st, NULL, 0, KURER_NOISE_HASHLEN);
    crypto_generichash_blake2b_update(&st, a, alen);
    if (blen > 0)
        crypto_generichash_blake2b_update(&st, b, blen);
    crypto_generichash_blake2b_final(&st, out, KURER_NOISE_HASHLEN);
    sodium_memzero(&st, sizeof(st));
}

/* HMAC-BLAKE2b (RFC 2104) over d1 || d2 with a 64-byte key. libsodium's keyed BLAKE2b is a
 * different function: Noise's HKDF needs real HMAC, built here on the hash. */
static void hmac_blake2b(uint8_t out[64], const uint8_t key[64], const uint8_t *d1, size_t n1,
                         const uint8_t *d2, size_t n2)
{
    uint8_t pad[BLOCKLEN];
    uint8_t inner[KURER_NOISE_HASHLEN];
    crypto_generichash_blake2b_state st;
    size_t i;

    memset(pad, 0, sizeof(pad));
    memcpy(pad, key, KURER_NOISE_HASHLEN);
    for (i = 0; i < BLOCKLEN; i++)
        pad[i] ^= 0x36;
    crypto_generichash_blake2b_init(&st, NULL, 0, KURER_NOISE_HASHLEN);
    crypto_generichash_blake2b_update(&st, pad, BLOCKLEN);
    if (n1 > 0)
        crypto_generichash_blake2b_update(&st, d1, n1);
    if (n2 > 0)
        crypto_generichash_blake2b_update(&st, d2, n2);
    crypto_generichash_blake2b_final(&st, inner, sizeof(inner));

    for (i = 0; i < BLOCKLEN; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    crypto_generichash_blake2b_init(&st, NULL, 0, KURER_NOISE_HASHLEN);
    crypto_generichash_blake2b_update(&st, pad, BLOCKLEN);
    crypto_generichash_blake2b_update(&st, inner, sizeof(inner));
    crypto_generichash_blake2b_final(&st, out, KURER_NOISE_HASHLEN);

    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
    sodium_memzero(&st, sizeof(st));
}

/* HKDF(chaining_key, input_key_material, 2): the only form this file needs. */
static void hkdf2(const uint8_t ck[64], const uint8_t *ikm, size_t ikm_len, uint8_t out1[64],
                  uint8_t out2[64])
{
    uint8_t temp_key[KURER_NOISE_HASHLEN];
    static const uint8_t one = 0x01, two = 0x02;
    hmac_blake2b(temp_key, ck, ikm, ikm_len, NULL, 0);
    hmac_blake2b(out1, temp_key, &one, 1, NULL, 0);
    hmac_blake2b(out2, temp_key, out1, KURER_NOISE_HASHLEN, &two, 1);
    sodium_memzero(temp_key, sizeof(temp_key));
}

/* ---- CipherState ------------------------------------------------------------------------- */

static void nonce_bytes(uint8_t nonce[12], uint64_t n)
{
    int i;
    memset(nonce, 0, 4);
    for (i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

/* ENCRYPT(k, n, ad, plaintext) into out (n + 16 bytes; out may equal pt). The nonce counter is
 * checked and advanced here. */
static int cipher_encrypt(kurer_noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                          size_t n, uint8_t *out)
{
    uint8_t nonce[12];
    uint8_t dummy = 0;
    if (c->n == UINT64_MAX)
        return KURER_ELIMIT;
    nonce_bytes(nonce, c->n);
    /* Detached mode so that out == pt works: the stream cipher runs first, the MAC is over the
     * ciphertext. libsodium dislikes nothing about empty inputs, but we avoid NULL pointers. */
    if (crypto_aead_chacha20poly1305_ietf_encrypt_detached(
            n > 0 ? out : &dummy, out + n, NULL, n > 0 ? pt : &dummy, n, adlen > 0 ? ad : &dummy,
            adlen, NULL, nonce, c->k) != 0)
        return KURER_ECRYPTO;
    c->n++;
    return 0;
}

/* DECRYPT(k, n, ad, ciphertext): n >= 16 bytes at ct into out (n - 16 bytes; out may equal ct).
 * On failure the nonce does not advance and out is zeroed by libsodium. */
static int cipher_decrypt(kurer_noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                          size_t n, uint8_t *out)
{
    uint8_t nonce[12];
    uint8_t dummy = 0;
    size_t mlen = n - KURER_NOISE_TAGLEN;
    if (c->n == UINT64_MAX)
        return KURER_ELIMIT;
    nonce_bytes(nonce, c->n);
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
            mlen > 0 ? out : &dummy, NULL, mlen > 0 ? ct : &dummy, mlen, ct + mlen,
            adlen > 0 ? ad : &dummy, adlen, nonce, c->k) != 0)
        return KURER_EDECRYPT;
    c->n++;
    return 0;
}

/* ---- SymmetricState ---------------------------------------------------------------------- */

static void mix_hash(kurer_noise_hs *hs, const uint8_t *data, size_t n)
{
    hash2(hs->h, hs->h, sizeof(hs->h), data, n);
}

static void mix_key(kurer_noise_hs *hs, const uint8_t ikm[32])
{
    uint8_t temp_k[KURER_NOISE_HASHLEN];
    hkdf2(hs->ck, ikm, KURER_NOISE_DHLEN, hs->ck, temp_k);
    /* HASHLEN is 64: temp_k is truncated to 32 bytes (InitializeKey). */
    memcpy(hs->cs.k, temp_k, 32);
    hs->cs.n = 0;
    hs->cs.has_key = 1;
    sodium_memzero(temp_k, sizeof(temp_k));
}

/* EncryptAndHash: out receives n bytes, or n + 16 once a key is set. */
static int encrypt_and_hash(kurer_noise_hs *hs, const uint8_t *pt, size_t n, uint8_t *out,
                            size_t *outlen)
{
    int rc;
    if (!hs->cs.has_key) {
        if (n > 0)
            memmove(out, pt, n);
        *outlen = n;
    } else {
        if ((rc = cipher_encrypt(&hs->cs, hs->h, sizeof(hs->h), pt, n, out)) != 0)
            return rc;
        *outlen = n + KURER_NOISE_TAGLEN;
    }
    if (*outlen > 0)
        mix_hash(hs, out, *outlen);
    return 0;
}

/* DecryptAndHash: n bytes of ct (at least 16 once a key is set) into out. */
static int decrypt_and_hash(kurer_noise_hs *hs, const uint8_t *ct, size_t n, uint8_t *out)
{
    int rc;
    uint8_t h_new[KURER_NOISE_HASHLEN];
    /* h for the next step is over the ciphertext, but the AD is the current h. */
    hash2(h_new, hs->h, sizeof(hs->h), ct, n);
    if (!hs->cs.has_key) {
        if (n > 0)
            memmove(out, ct, n);
    } else if ((rc = cipher_decrypt(&hs->cs, hs->h, sizeof(hs->h), ct, n, out)) != 0) {
        return rc;
    }
    memcpy(hs->h, h_new, sizeof(h_new));
    return 0;
}

/* ---- HandshakeState ---------------------------------------------------------------------- */

static int dh(uint8_t out[32], const uint8_t sk[32], const uint8_t pk[32])
{
    /* crypto_scalarmult fails on an all-zero result (low-order points); we check the output
     * ourselves as well, so that the rule does not depend on the libsodium build. */
    if (crypto_scalarmult(out, sk, pk) != 0 || sodium_is_zero(out, 32)) {
        sodium_memzero(out, 32);
        return KURER_EWEAKDH;
    }
    return 0;
}

static int base_point(uint8_t pk[32], const uint8_t sk[32])
{
    if (crypto_scalarmult_base(pk, sk) != 0 || sodium_is_zero(pk, 32))
        return KURER_EWEAKDH;
    return 0;
}

int kurer_noise_keypair(uint8_t pk[32], uint8_t sk[32])
{
    int rc;
    if (pk == NULL || sk == NULL)
        return KURER_EINVAL;
    randombytes_buf(sk, 32);
    if ((rc = base_point(pk, sk)) != 0) {
        sodium_memzero(sk, 32);
        return KURER_ECRYPTO;
    }
    return 0;
}

int kurer_noise_public_key(uint8_t pk[32], const uint8_t sk[32])
{
    if (pk == NULL || sk == NULL)
        return KURER_EINVAL;
    return base_point(pk, sk);
}

int kurer_noise_hs_new(kurer_noise_hs **out, kurer_noise_pattern p, int initiator,
                       const uint8_t *prologue, size_t prologue_len,
                       const uint8_t local_static_sk[32], const uint8_t remote_static_pk[32])
{
    return kurer_noise_hs_new_with_public(out, p, initiator, prologue, prologue_len,
                                          local_static_sk, NULL, remote_static_pk);
}

int kurer_noise_hs_new_with_public(kurer_noise_hs **out, kurer_noise_pattern p, int initiator,
                                   const uint8_t *prologue, size_t prologue_len,
                                   const uint8_t local_static_sk[32],
                                   const uint8_t local_static_pk[32],
                                   const uint8_t remote_static_pk[32])
{
    kurer_noise_hs *hs;
    const char *name;
    size_t name_len;
    int rc;

    if (out == NULL)
        return KURER_EINVAL;
    *out = NULL;
    /* libsodium needs sodium_init; a caller that forgot kurer_crypto_init gets an error here
     * rather than a crash. It is idempotent and cheap after the first call. */
    if ((rc = kurer_crypto_init()) != 0)
        return rc;
    if (prologue == NULL && prologue_len > 0)
        return KURER_EINVAL;
    /* The responder's static key is a pre-message in both patterns: the initiator must know
     * it, the responder must have it. Only IK has an initiator static key. */
    if (initiator) {
        if (remote_static_pk == NULL || (p == KURER_NOISE_IK) != (local_static_sk != NULL))
            return KURER_EINVAL;
    } else if (local_static_sk == NULL || remote_static_pk != NULL) {
        return KURER_EINVAL;
    }
    if (p == KURER_NOISE_IK)
        name = protocol_ik;
    else if (p == KURER_NOISE_NK)
        name = protocol_nk;
    else
        return KURER_EINVAL;

    if (local_static_pk != NULL && local_static_sk == NULL)
        return KURER_EINVAL;
    hs = malloc(sizeof(*hs));
    if (hs == NULL)
        return KURER_ENOMEM;
    memset(hs, 0, sizeof(*hs));
    hs->initiator = initiator != 0;
    hs->pattern = p == KURER_NOISE_IK ? pattern_ik : pattern_nk;
    hs->phase = PHASE_MSG1;

    if (local_static_sk != NULL) {
        memcpy(hs->s_sk, local_static_sk, 32);
        if (local_static_pk != NULL) {
            memcpy(hs->s_pk, local_static_pk, 32);
        } else if ((rc = base_point(hs->s_pk, hs->s_sk)) != 0) {
            kurer_noise_hs_free(hs);
            return rc;
        }
        hs->has_s = 1;
    }
    if (remote_static_pk != NULL) {
        memcpy(hs->rs, remote_static_pk, 32);
        hs->has_rs = 1;
    }

    /* InitializeSymmetric: a name of at most HASHLEN bytes is zero-padded, not hashed. */
    name_len = strlen(name);
    memcpy(hs->h, name, name_len);
    memcpy(hs->ck, hs->h, sizeof(hs->ck));
    mix_hash(hs, prologue_len > 0 ? prologue : (const uint8_t *)"", prologue_len);
    /* Pre-message "<- s": the responder's static public key. */
    mix_hash(hs, hs->initiator ? hs->rs : hs->s_pk, 32);

    *out = hs;
    return 0;
}

void kurer_noise_hs_free(kurer_noise_hs *hs)
{
    if (hs == NULL)
        return;
    sodium_memzero(hs, sizeof(*hs));
    free(hs);
}

int kurer_noise_hs_set_ephemeral(kurer_noise_hs *hs, const uint8_t sk[32])
{
    int rc;
    if (hs == NULL || sk == NULL)
        return KURER_EINVAL;
    if (hs->has_e == 1 || hs->phase >= PHASE_DONE)
        return KURER_ESTATE;
    memcpy(hs->e_sk, sk, 32);
    if ((rc = base_point(hs->e_pk, hs->e_sk)) != 0) {
        sodium_memzero(hs->e_sk, 32);
        return rc;
    }
    hs->has_e = 2; /* set, but not yet sent */
    return 0;
}

int kurer_noise_hs_finished(const kurer_noise_hs *hs)
{
    return hs != NULL && (hs->phase == PHASE_DONE || hs->phase == PHASE_SPLIT);
}

int kurer_noise_hs_my_turn(const kurer_noise_hs *hs)
{
    if (hs == NULL)
        return 0;
    return (hs->phase == PHASE_MSG1 && hs->initiator) ||
           (hs->phase == PHASE_MSG2 && !hs->initiator);
}

/* The bytes a message of the current phase takes beyond its payload, and whether a key is set
 * by the time the payload is encrypted. Computed before anything is touched so that size
 * errors leave the state as it was and junk costs no DH work. */
static size_t message_overhead(const kurer_noise_hs *hs)
{
    const uint8_t *tok = hs->pattern[hs->phase];
    int has_key = hs->cs.has_key;
    size_t n = 0;
    for (; *tok != T_END; tok++) {
        if (*tok == T_E)
            n += 32;
        else if (*tok == T_S)
            n += 32 + (has_key ? (size_t)KURER_NOISE_TAGLEN : 0);
        else
            has_key = 1;
    }
    return n + (has_key ? (size_t)KURER_NOISE_TAGLEN : 0);
}

/* The DH of a token: ee, es, se, ss in the spec's order of (initiator key, responder key). */
static int token_dh(kurer_noise_hs *hs, int tok)
{
    uint8_t shared[32];
    const uint8_t *sk, *pk;
    int rc;
    switch (tok) {
    case T_EE:
        sk = hs->e_sk;
        pk = hs->re;
        break;
    case T_ES:
        sk = hs->initiator ? hs->e_sk : hs->s_sk;
        pk = hs->initiator ? hs->rs : hs->re;
        break;
    case T_SE:
        sk = hs->initiator ? hs->s_sk : hs->e_sk;
        pk = hs->initiator ? hs->re : hs->rs;
        break;
    case T_SS:
        sk = hs->s_sk;
        pk = hs->rs;
        break;
    default:
        return KURER_EINTERNAL;
    }
    if ((rc = dh(shared, sk, pk)) != 0)
        return rc;
    mix_key(hs, shared);
    sodium_memzero(shared, sizeof(shared));
    return 0;
}

static int write_tokens(kurer_noise_hs *hs, const uint8_t *payload, size_t n, uint8_t *msg)
{
    const uint8_t *tok = hs->pattern[hs->phase];
    size_t off = 0, len;
    int rc;
    for (; *tok != T_END; tok++) {
        switch (*tok) {
        case T_E:
            if (hs->has_e != 2) {
                randombytes_buf(hs->e_sk, 32);
                if ((rc = base_point(hs->e_pk, hs->e_sk)) != 0)
                    return rc;
            }
            hs->has_e = 1;
            memcpy(msg + off, hs->e_pk, 32);
            mix_hash(hs, hs->e_pk, 32);
            off += 32;
            break;
        case T_S:
            if ((rc = encrypt_and_hash(hs, hs->s_pk, 32, msg + off, &len)) != 0)
                return rc;
            off += len;
            break;
        default:
            if ((rc = token_dh(hs, *tok)) != 0)
                return rc;
            break;
        }
    }
    return encrypt_and_hash(hs, payload, n, msg + off, &len);
}

static void advance(kurer_noise_hs *hs)
{
    hs->phase = hs->phase == PHASE_MSG1 ? PHASE_MSG2 : PHASE_DONE;
    if (hs->phase == PHASE_DONE) {
        /* Nothing needs the ephemeral keys or the handshake cipher any more. */
        sodium_memzero(hs->e_sk, sizeof(hs->e_sk));
        sodium_memzero(&hs->cs, sizeof(hs->cs));
    }
}

int kurer_noise_hs_write_message(kurer_noise_hs *hs, const uint8_t *payload, size_t n,
                                 kurer_buf *out)
{
    size_t total, old_len;
    uint8_t *msg;
    int rc;

    if (hs == NULL || out == NULL || (payload == NULL && n > 0))
        return KURER_EINVAL;
    if (!kurer_noise_hs_my_turn(hs))
        return KURER_ESTATE;
    total = message_overhead(hs);
    if (n > KURER_NOISE_MAX_MSG - total) {
        hs->phase = PHASE_FAILED;
        return KURER_ELIMIT;
    }
    total += n;
    old_len = out->len;
    if ((rc = kurer_buf_reserve(out, total, &msg)) != 0) {
        hs->phase = PHASE_FAILED;
        return rc;
    }
    if ((rc = write_tokens(hs, payload, n, msg)) != 0) {
        sodium_memzero(msg, total);
        out->len = old_len;
        hs->phase = PHASE_FAILED;
        return rc;
    }
    advance(hs);
    return 0;
}

static int read_tokens(kurer_noise_hs *hs, kurer_reader *r, uint8_t *payload)
{
    const uint8_t *tok = hs->pattern[hs->phase];
    const uint8_t *p;
    size_t len;
    int rc;
    for (; *tok != T_END; tok++) {
        switch (*tok) {
        case T_E:
            if ((rc = kurer_reader_copy(r, hs->re, 32)) != 0)
                return rc;
            hs->has_re = 1;
            mix_hash(hs, hs->re, 32);
            break;
        case T_S:
            len = 32 + (hs->cs.has_key ? KURER_NOISE_TAGLEN : 0);
            if ((rc = kurer_reader_view(r, len, &p)) != 0 ||
                (rc = decrypt_and_hash(hs, p, len, hs->rs)) != 0)
                return rc;
            hs->has_rs = 1;
            break;
        default:
            if ((rc = token_dh(hs, *tok)) != 0)
                return rc;
            break;
        }
    }
    len = kurer_reader_remaining(r);
    if (hs->cs.has_key && len < KURER_NOISE_TAGLEN)
        return KURER_ETRUNC;
    if ((rc = kurer_reader_view(r, len, &p)) != 0)
        return rc;
    return decrypt_and_hash(hs, p, len, payload);
}

int kurer_noise_hs_read_message(kurer_noise_hs *hs, const uint8_t *msg, size_t n,
                                kurer_buf *payload_out)
{
    kurer_reader r;
    size_t overhead, plen, old_len;
    uint8_t *payload, dummy[1];
    int rc;

    if (hs == NULL || payload_out == NULL || (msg == NULL && n > 0))
        return KURER_EINVAL;
    if (hs->phase > PHASE_MSG2 || kurer_noise_hs_my_turn(hs))
        return KURER_ESTATE;
    overhead = message_overhead(hs);
    if (n > KURER_NOISE_MAX_MSG) {
        rc = KURER_ELIMIT;
        goto fail;
    }
    if (n < overhead) {
        rc = KURER_ETRUNC;
        goto fail;
    }
    plen = n - overhead;
    old_len = payload_out->len;
    if (plen > 0) {
        if ((rc = kurer_buf_reserve(payload_out, plen, &payload)) != 0)
            goto fail;
    } else {
        payload = dummy;
    }
    kurer_reader_init(&r, msg, n);
    if ((rc = read_tokens(hs, &r, payload)) != 0 || (rc = kurer_reader_end(&r)) != 0) {
        sodium_memzero(payload, plen);
        payload_out->len = old_len;
        goto fail;
    }
    advance(hs);
    return 0;
fail:
    hs->phase = PHASE_FAILED;
    return rc;
}

const uint8_t *kurer_noise_hs_remote_static(const kurer_noise_hs *hs)
{
    return hs != NULL && hs->has_rs && hs->phase != PHASE_FAILED ? hs->rs : NULL;
}

int kurer_noise_hs_handshake_hash(const kurer_noise_hs *hs, uint8_t out[64])
{
    if (hs == NULL || out == NULL)
        return KURER_EINVAL;
    if (!kurer_noise_hs_finished(hs))
        return KURER_ESTATE;
    memcpy(out, hs->h, KURER_NOISE_HASHLEN);
    return 0;
}

int kurer_noise_hs_split(kurer_noise_hs *hs, kurer_noise_cipher *send, kurer_noise_cipher *recv)
{
    uint8_t k1[KURER_NOISE_HASHLEN], k2[KURER_NOISE_HASHLEN];
    kurer_noise_cipher *c1, *c2;
    if (hs == NULL || send == NULL || recv == NULL || send == recv)
        return KURER_EINVAL;
    if (hs->phase != PHASE_DONE)
        return KURER_ESTATE;
    hkdf2(hs->ck, NULL, 0, k1, k2);
    /* c1 carries initiator-to-responder traffic, c2 the other direction. */
    c1 = hs->initiator ? send : recv;
    c2 = hs->initiator ? recv : send;
    memcpy(c1->k, k1, 32);
    c1->n = 0;
    c1->has_key = 1;
    memcpy(c2->k, k2, 32);
    c2->n = 0;
    c2->has_key = 1;
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
    sodium_memzero(hs->ck, sizeof(hs->ck));
    sodium_memzero(hs->s_sk, sizeof(hs->s_sk));
    hs->phase = PHASE_SPLIT;
    return 0;
}

/* ---- Transport --------------------------------------------------------------------------- */

int kurer_noise_encrypt(kurer_noise_cipher *c, const uint8_t *ad, size_t adlen,
                        const uint8_t *plaintext, size_t n, kurer_buf *out)
{
    size_t old_len;
    uint8_t *p;
    int rc;
    if (c == NULL || out == NULL || (plaintext == NULL && n > 0) || (ad == NULL && adlen > 0))
        return KURER_EINVAL;
    if (!c->has_key)
        return KURER_ESTATE;
    if (n > KURER_NOISE_MAX_PLAINTEXT || c->n == UINT64_MAX)
        return KURER_ELIMIT;
    old_len = out->len;
    if ((rc = kurer_buf_reserve(out, n + KURER_NOISE_TAGLEN, &p)) != 0)
        return rc;
    if ((rc = cipher_encrypt(c, ad, adlen, plaintext, n, p)) != 0) {
        sodium_memzero(p, n + KURER_NOISE_TAGLEN);
        out->len = old_len;
    }
    return rc;
}

int kurer_noise_decrypt(kurer_noise_cipher *c, const uint8_t *ad, size_t adlen,
                        const uint8_t *ciphertext, size_t n, kurer_buf *out)
{
    size_t old_len, plen;
    uint8_t *p, dummy[1];
    int rc;
    if (c == NULL || out == NULL || (ciphertext == NULL && n > 0) || (ad == NULL && adlen > 0))
        return KURER_EINVAL;
    if (!c->has_key)
        return KURER_ESTATE;
    if (n < KURER_NOISE_TAGLEN)
        return KURER_ETRUNC;
    if (n > KURER_NOISE_MAX_MSG || c->n == UINT64_MAX)
        return KURER_ELIMIT;
    plen = n - KURER_NOISE_TAGLEN;
    old_len = out->len;
    if (plen > 0) {
        if ((rc = kurer_buf_reserve(out, plen, &p)) != 0)
            return rc;
    } else {
        p = dummy;
    }
    if ((rc = cipher_decrypt(c, ad, adlen, ciphertext, n, p)) != 0) {
        sodium_memzero(p, plen);
        out->len = old_len;
    }
    return rc;
}

int kurer_noise_encrypt_inplace(kurer_noise_cipher *c, const uint8_t *ad, size_t adlen,
                                uint8_t *buf, size_t n, size_t cap)
{
    if (c == NULL || buf == NULL || (ad == NULL && adlen > 0))
        return KURER_EINVAL;
    if (!c->has_key)
        return KURER_ESTATE;
    if (n > KURER_NOISE_MAX_PLAINTEXT || cap < n + KURER_NOISE_TAGLEN || c->n == UINT64_MAX)
        return KURER_ELIMIT;
    return cipher_encrypt(c, ad, adlen, buf, n, buf);
}

int kurer_noise_decrypt_inplace(kurer_noise_cipher *c, const uint8_t *ad, size_t adlen,
                                uint8_t *buf, size_t n, size_t *ptlen)
{
    int rc;
    if (ptlen == NULL)
        return KURER_EINVAL;
    *ptlen = 0;
    if (c == NULL || buf == NULL || (ad == NULL && adlen > 0))
        return KURER_EINVAL;
    if (!c->has_key)
        return KURER_ESTATE;
    if (n < KURER_NOISE_TAGLEN)
        return KURER_ETRUNC;
    if (n > KURER_NOISE_MAX_MSG || c->n == UINT64_MAX)
        return KURER_ELIMIT;
    if ((rc = cipher_decrypt(c, ad, adlen, buf, n, buf)) != 0) {
        sodium_memzero(buf, n - KURER_NOISE_TAGLEN);
        return rc;
    }
    *ptlen = n - KURER_NOISE_TAGLEN;
    return 0;
}

void kurer_noise_cipher_wipe(kurer_noise_cipher *c)
{
    if (c != NULL)
        sodium_memzero(c, sizeof(*c));
}
