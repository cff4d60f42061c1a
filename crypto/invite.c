/* Invitation codes, their keys and MACs, and the signatures around them (kurer/invite.h). */
#include "kurer/invite.h"
#include "kurer/crypto.h"

#include <sodium.h>
#include <string.h>

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* BLAKE2b-256(label 0x00 data) truncated to n bytes, optionally keyed. */
static void labelled(uint8_t *out, size_t n, const uint8_t *key, const char *label,
                     const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    crypto_generichash_state st;
    uint8_t h[32];
    crypto_generichash_init(&st, key, key ? 32 : 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
    crypto_generichash_update(&st, a, an);
    if (bn > 0)
        crypto_generichash_update(&st, b, bn);
    crypto_generichash_final(&st, h, sizeof(h));
    memcpy(out, h, n);
    sodium_memzero(h, sizeof(h));
    sodium_memzero(&st, sizeof(st));
}

static char check_char(const uint8_t s[KURER_INVITE_SECRET_LEN])
{
    uint8_t c;
    labelled(&c, 1, NULL, "kurer invite check v1", s, KURER_INVITE_SECRET_LEN, NULL, 0);
    return b32[c & 31];
}

void kurer_invite_derive(const uint8_t s[KURER_INVITE_SECRET_LEN], kurer_invite_keys *k)
{
    labelled(k->id, sizeof(k->id), NULL, "kurer invite id v1", s, KURER_INVITE_SECRET_LEN, NULL, 0);
    labelled(k->verifier, 32, NULL, "kurer invite verifier v1", s, KURER_INVITE_SECRET_LEN, NULL,
             0);
    labelled(k->authority_key, 32, NULL, "kurer invite authority v1", s, KURER_INVITE_SECRET_LEN,
             NULL, 0);
}

/* 10 bytes -> 16 base32 digits and the check digit, grouped by four. */
static void format_code(const uint8_t s[KURER_INVITE_SECRET_LEN],
                        char out[KURER_INVITE_CODE_LEN + 1])
{
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        size_t bit = i * 5, byte = bit / 8, shift = bit % 8;
        unsigned v =
            (unsigned)s[byte] << 8 | (byte + 1 < KURER_INVITE_SECRET_LEN ? s[byte + 1] : 0);
        if (i > 0 && i % 4 == 0)
            out[o++] = '-';
        out[o++] = b32[(v >> (11 - shift)) & 31];
    }
    out[o++] = '-';
    out[o++] = check_char(s);
    out[o] = '\0';
}

void kurer_invite_new(char code[KURER_INVITE_CODE_LEN + 1], kurer_invite_keys *keys)
{
    uint8_t s[KURER_INVITE_SECRET_LEN];
    kurer_random(s, sizeof(s));
    format_code(s, code);
    kurer_invite_derive(s, keys);
    sodium_memzero(s, sizeof(s));
}

/* A typed character's value, or -1. */
static int digit(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    if (c == 'O')
        c = '0';
    if (c == 'I' || c == 'L')
        c = '1';
    const char *p = c != '\0' ? strchr(b32, c) : NULL;
    return p != NULL ? (int)(p - b32) : -1;
}

int kurer_invite_parse(const char *typed, char canon[KURER_INVITE_CODE_LEN + 1],
                       kurer_invite_keys *keys)
{
    uint8_t d[17], s[KURER_INVITE_SECRET_LEN];
    size_t n = 0;
    int rc = 0;
    for (const char *p = typed; *p && rc == 0; p++) {
        if (*p == '-' || *p == ' ')
            continue;
        int v = digit(*p);
        if (v < 0 || n == sizeof(d))
            rc = KURER_EINVAL;
        else
            d[n++] = (uint8_t)v;
    }
    if (rc == 0 && n != sizeof(d))
        rc = KURER_EINVAL;
    if (rc == 0) {
        memset(s, 0, sizeof(s));
        for (size_t i = 0; i < 16; i++)
            for (int b = 4; b >= 0; b--) {
                size_t bit = i * 5 + (size_t)(4 - b);
                if (d[i] >> b & 1)
                    s[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
            }
        if (b32[d[16]] != check_char(s))
            rc = KURER_ECHECKDIGIT;
    }
    if (rc == 0) {
        format_code(s, canon);
        kurer_invite_derive(s, keys);
    }
    sodium_memzero(s, sizeof(s));
    sodium_memzero(d, sizeof(d));
    return rc;
}

void kurer_invite_relay_mac(const uint8_t verifier[32], const uint8_t id[16], const uint8_t *req,
                            size_t n, uint8_t mac[32])
{
    labelled(mac, 32, verifier, "kurer enrol relay mac v1", id, 16, req, n);
}

void kurer_invite_authority_mac(const uint8_t key[32], const uint8_t id[16], const uint8_t *req,
                                size_t n, uint8_t mac[32])
{
    labelled(mac, 32, key, "kurer enrol authority mac v1", id, 16, req, n);
}

void kurer_invite_poll_proof(const uint8_t verifier[32], const uint8_t id[16], uint8_t proof[32])
{
    labelled(proof, 32, verifier, "kurer enrol poll v1", id, 16, NULL, 0);
}

static int put_be(kurer_buf *b, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        if (kurer_buf_put_u8(b, (uint8_t)(v >> (8 * i))) != 0)
            return KURER_ELIMIT;
    return 0;
}

/* The bytes an invitation's signature covers. */
static int invite_tbs(const kurer_enrol_invitation *inv, kurer_buf *b)
{
    static const char label[] = "kurer invitation v1";
    size_t ul = strnlen(inv->user, sizeof(inv->user));
    if (ul == sizeof(inv->user))
        return KURER_EINVAL;
    if (kurer_buf_put(b, label, sizeof(label)) != 0 || kurer_buf_put(b, inv->id, 16) != 0 ||
        kurer_buf_put(b, inv->verifier, 32) != 0 || put_be(b, ul, 2) != 0 ||
        kurer_buf_put(b, inv->user, ul) != 0 || put_be(b, inv->device_id, 4) != 0 ||
        put_be(b, (uint64_t)inv->created_at, 8) != 0 || put_be(b, (uint64_t)inv->expires_at, 8))
        return KURER_ELIMIT;
    return 0;
}

int kurer_invite_sign(kurer_enrol_invitation *inv, const kurer_signing_key *k)
{
    uint8_t mem[512];
    kurer_buf b;
    kurer_buf_init_fixed(&b, mem, sizeof(mem));
    int rc = invite_tbs(inv, &b);
    return rc != 0 ? rc : kurer_sign(k, b.data, b.len, inv->signature);
}

int kurer_invite_verify(const kurer_enrol_invitation *inv, const uint8_t pk[32])
{
    uint8_t mem[512];
    kurer_buf b;
    kurer_buf_init_fixed(&b, mem, sizeof(mem));
    int rc = invite_tbs(inv, &b);
    return rc != 0 ? rc : kurer_verify(pk, b.data, b.len, inv->signature);
}

/* The bytes an administrator's proof covers. */
static int proof_tbs(const kurer_enrol_request *r, kurer_buf *b)
{
    static const char label[] = "kurer enrol admin v1";
    uint8_t h[32];
    if (kurer_buf_put(b, label, sizeof(label)) != 0 || kurer_buf_put_u8(b, (uint8_t)r->body) ||
        put_be(b, (uint64_t)r->auth.time, 8) != 0)
        return KURER_ELIMIT;
    if (r->body == KURER_ENROL_LIST)
        return r->has_after && kurer_buf_put(b, r->after, 16) != 0 ? KURER_ELIMIT : 0;
    if (r->body != KURER_ENROL_DECIDE)
        return KURER_EINVAL;
    kurer_hash256(h, r->chain, r->approve ? r->chain_len : 0);
    if (kurer_buf_put(b, r->id, 16) != 0 || kurer_buf_put_u8(b, r->approve ? 1 : 0) != 0 ||
        kurer_buf_put(b, h, sizeof(h)) != 0)
        return KURER_ELIMIT;
    return 0;
}

int kurer_enrol_proof_sign(kurer_enrol_request *r, int64_t now, const kurer_signing_key *k)
{
    uint8_t mem[256];
    kurer_buf b;
    kurer_buf_init_fixed(&b, mem, sizeof(mem));
    r->auth.time = now;
    int rc = proof_tbs(r, &b);
    return rc != 0 ? rc : kurer_sign(k, b.data, b.len, r->auth.signature);
}

int kurer_enrol_proof_verify(const kurer_enrol_request *r, const uint8_t pk[32])
{
    uint8_t mem[256];
    kurer_buf b;
    kurer_buf_init_fixed(&b, mem, sizeof(mem));
    int rc = proof_tbs(r, &b);
    return rc != 0 ? rc : kurer_verify(pk, b.data, b.len, r->auth.signature);
}
