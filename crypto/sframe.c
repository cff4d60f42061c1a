/* SFrame (RFC 9605): the header codec, send and receive contexts with the replay window, and
 * the per-call keys. The suites' AEADs are in sframe_aead.c. */
#include "kurer/sframe.h"

#include <string.h>

#include "kurer/crypto.h"
#include "sframe_internal.h"

#define WINDOW_WORDS (KURER_SFRAME_REPLAY_WINDOW / 64)

struct kurer_sframe_send {
    kurer__sframe_aead *aead;
    uint64_t kid;
    uint64_t ctr;
    int exhausted; /* 2^64-1 has been used */
};

/* One receive key and its replay window: bit i of the window (word i / 64, bit i % 64) says
 * whether counter top - i was accepted. */
typedef struct recv_key {
    kurer__sframe_aead *aead;
    uint64_t kid;
    uint64_t top;
    int seen; /* some frame was accepted: top and window mean something */
    uint64_t window[WINDOW_WORDS];
} recv_key;

struct kurer_sframe_recv {
    recv_key keys[KURER_SFRAME_MAX_RECV_KEYS];
    size_t n;
    kurer_sframe_recv_counts counts;
};

/* ---- header (RFC 9605 section 4.3) ---- */

static size_t be_len(uint64_t v)
{
    size_t n = 1;
    while (n < 8 && (v >> (8 * n)) != 0)
        n++;
    return n;
}

static size_t be_put(uint8_t *out, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return n;
}

size_t kurer_sframe_header_len(uint64_t kid, uint64_t ctr)
{
    return 1 + (kid < 8 ? 0 : be_len(kid)) + (ctr < 8 ? 0 : be_len(ctr));
}

size_t kurer_sframe_header_encode(uint8_t out[KURER_SFRAME_MAX_HEADER], uint64_t kid, uint64_t ctr)
{
    size_t n = 1, kl = kid < 8 ? 0 : be_len(kid), cl = ctr < 8 ? 0 : be_len(ctr);
    uint8_t cfg = 0;
    if (kl == 0)
        cfg |= (uint8_t)(kid << 4);
    else
        cfg |= (uint8_t)(0x80 | (kl - 1) << 4);
    if (cl == 0)
        cfg |= (uint8_t)ctr;
    else
        cfg |= (uint8_t)(0x08 | (cl - 1));
    out[0] = cfg;
    if (kl > 0)
        n += be_put(out + n, kid, kl);
    if (cl > 0)
        n += be_put(out + n, ctr, cl);
    return n;
}

int kurer_sframe_header_decode(const uint8_t *in, size_t len, kurer_sframe_header *h)
{
    size_t kl, cl, pos = 1;
    uint64_t kid = 0, ctr = 0;
    memset(h, 0, sizeof *h);
    if (in == NULL || len < 1)
        return KURER_ETRUNC;
    kl = (in[0] & 0x80) ? (size_t)((in[0] >> 4) & 7) + 1 : 0;
    cl = (in[0] & 0x08) ? (size_t)(in[0] & 7) + 1 : 0;
    if (len - 1 < kl + cl)
        return KURER_ETRUNC;
    if (kl == 0)
        kid = (uint64_t)(in[0] >> 4) & 7;
    for (size_t i = 0; i < kl; i++)
        kid = kid << 8 | in[pos++];
    if (cl == 0)
        ctr = (uint64_t)in[0] & 7;
    for (size_t i = 0; i < cl; i++)
        ctr = ctr << 8 | in[pos++];
    h->kid = kid;
    h->ctr = ctr;
    h->len = pos;
    return 0;
}

/* ---- sending ---- */

int kurer_sframe_send_new(kurer_sframe_send **out, unsigned suite, uint64_t kid,
                          const uint8_t *base_key, size_t base_key_len)
{
    kurer_sframe_send *s;
    int rc;
    if (out == NULL)
        return KURER_EINVAL;
    *out = NULL;
    rc = kurer_crypto_init();
    if (rc != 0)
        return rc;
    s = kurer_secure_alloc(sizeof *s);
    if (s == NULL)
        return KURER_ENOMEM;
    memset(s, 0, sizeof *s);
    s->kid = kid;
    rc = kurer__sframe_aead_new(&s->aead, suite, kid, base_key, base_key_len, 1);
    if (rc != 0) {
        kurer_secure_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void kurer_sframe_send_free(kurer_sframe_send *s)
{
    if (s == NULL)
        return;
    kurer__sframe_aead_free(s->aead);
    kurer_memzero(s, sizeof *s);
    kurer_secure_free(s);
}

size_t kurer_sframe_send_frame_len(const kurer_sframe_send *s, size_t pt_len)
{
    return kurer_sframe_header_len(s->kid, s->ctr) + pt_len + kurer__sframe_aead_suite(s->aead)->nt;
}

uint64_t kurer_sframe_send_counter(const kurer_sframe_send *s)
{
    return s->ctr;
}

kurer__sframe_aead *kurer__sframe_send_aead(kurer_sframe_send *s)
{
    return s->aead;
}

void kurer__sframe_send_set_counter(kurer_sframe_send *s, uint64_t ctr)
{
    s->ctr = ctr;
    s->exhausted = 0;
}

int kurer_sframe_protect(kurer_sframe_send *s, const uint8_t *metadata, size_t metadata_len,
                         const uint8_t *pt, size_t pt_len, uint8_t *out, size_t out_cap,
                         size_t *out_len)
{
    size_t hl, need;
    int rc;
    if (s == NULL || out == NULL || out_len == NULL || (pt == NULL && pt_len > 0) ||
        (metadata == NULL && metadata_len > 0))
        return KURER_EINVAL;
    *out_len = 0;
    if (s->exhausted)
        return KURER_ELIMIT;
    if (metadata_len > KURER_SFRAME_MAX_METADATA || pt_len > KURER_SFRAME_MAX_FRAME)
        return KURER_ELIMIT;
    need = kurer_sframe_send_frame_len(s, pt_len);
    if (need > KURER_SFRAME_MAX_FRAME)
        return KURER_ELIMIT;
    if (out_cap < need)
        return KURER_EINVAL;
    hl = kurer_sframe_header_encode(out, s->kid, s->ctr);
    rc = kurer__sframe_seal(s->aead, s->ctr, out, hl, metadata, metadata_len, pt, pt_len, out + hl);
    if (rc != 0) {
        kurer_memzero(out, need);
        return rc;
    }
    if (s->ctr == UINT64_MAX)
        s->exhausted = 1;
    else
        s->ctr++;
    *out_len = need;
    return 0;
}

/* ---- receiving ---- */

int kurer_sframe_recv_new(kurer_sframe_recv **out)
{
    kurer_sframe_recv *r;
    int rc;
    if (out == NULL)
        return KURER_EINVAL;
    *out = NULL;
    rc = kurer_crypto_init();
    if (rc != 0)
        return rc;
    r = kurer_secure_alloc(sizeof *r);
    if (r == NULL)
        return KURER_ENOMEM;
    memset(r, 0, sizeof *r);
    *out = r;
    return 0;
}

void kurer_sframe_recv_free(kurer_sframe_recv *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        kurer__sframe_aead_free(r->keys[i].aead);
    kurer_memzero(r, sizeof *r);
    kurer_secure_free(r);
}

static recv_key *find_key(kurer_sframe_recv *r, uint64_t kid)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->keys[i].kid == kid)
            return &r->keys[i];
    return NULL;
}

int kurer_sframe_recv_add_key(kurer_sframe_recv *r, unsigned suite, uint64_t kid,
                              const uint8_t *base_key, size_t base_key_len)
{
    recv_key *k;
    int rc;
    if (r == NULL)
        return KURER_EINVAL;
    if (find_key(r, kid) != NULL)
        return KURER_EEXIST;
    if (r->n == KURER_SFRAME_MAX_RECV_KEYS)
        return KURER_ELIMIT;
    k = &r->keys[r->n];
    memset(k, 0, sizeof *k);
    rc = kurer__sframe_aead_new(&k->aead, suite, kid, base_key, base_key_len, 0);
    if (rc != 0)
        return rc;
    k->kid = kid;
    r->n++;
    return 0;
}

int kurer_sframe_recv_remove_key(kurer_sframe_recv *r, uint64_t kid)
{
    recv_key *k = r != NULL ? find_key(r, kid) : NULL;
    if (k == NULL)
        return KURER_ENOENT;
    kurer__sframe_aead_free(k->aead);
    r->n--;
    if (k != &r->keys[r->n])
        *k = r->keys[r->n];
    memset(&r->keys[r->n], 0, sizeof r->keys[r->n]);
    return 0;
}

/* 0 if ctr may be accepted by k, else KURER_ETOOOLD or KURER_EREPLAY. */
static int window_check(const recv_key *k, uint64_t ctr)
{
    uint64_t back;
    if (!k->seen || ctr > k->top)
        return 0;
    back = k->top - ctr;
    if (back >= KURER_SFRAME_REPLAY_WINDOW)
        return KURER_ETOOOLD;
    if ((k->window[back / 64] >> (back % 64)) & 1)
        return KURER_EREPLAY;
    return 0;
}

/* Records ctr (which window_check allowed) as accepted. */
static void window_accept(recv_key *k, uint64_t ctr)
{
    uint64_t shift, back;
    if (k->seen && ctr <= k->top) {
        back = k->top - ctr;
        k->window[back / 64] |= (uint64_t)1 << (back % 64);
        return;
    }
    shift = k->seen ? ctr - k->top : KURER_SFRAME_REPLAY_WINDOW;
    if (shift >= KURER_SFRAME_REPLAY_WINDOW) {
        memset(k->window, 0, sizeof k->window);
    } else {
        /* Bit i moves to bit i + shift: whole words first, then the bits within them. */
        size_t words = (size_t)(shift / 64);
        unsigned bits = (unsigned)(shift % 64);
        for (size_t i = WINDOW_WORDS; i-- > 0;) {
            uint64_t hi = i >= words ? k->window[i - words] : 0;
            uint64_t lo = i >= words + 1 ? k->window[i - words - 1] : 0;
            k->window[i] = bits == 0 ? hi : (hi << bits | lo >> (64 - bits));
        }
    }
    k->window[0] |= 1;
    k->top = ctr;
    k->seen = 1;
}

static int unprotect(kurer_sframe_recv *r, const uint8_t *metadata, size_t metadata_len,
                     const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                     size_t *out_len, kurer_sframe_header *h)
{
    kurer_sframe_header hdr;
    recv_key *k;
    size_t nt, ct_len;
    int rc;
    if (in_len > KURER_SFRAME_MAX_FRAME || metadata_len > KURER_SFRAME_MAX_METADATA)
        return KURER_ELIMIT;
    rc = kurer_sframe_header_decode(in, in_len, &hdr);
    if (rc != 0)
        return rc;
    if (h != NULL)
        *h = hdr;
    k = find_key(r, hdr.kid);
    if (k == NULL)
        return KURER_EUNKNOWNKEY;
    nt = kurer__sframe_aead_suite(k->aead)->nt;
    if (in_len - hdr.len < nt)
        return KURER_ETRUNC;
    ct_len = in_len - hdr.len - nt;
    rc = window_check(k, hdr.ctr);
    if (rc != 0)
        return rc;
    if (out_cap < ct_len)
        return KURER_EINVAL;
    rc = kurer__sframe_open(k->aead, hdr.ctr, in, hdr.len, metadata, metadata_len, in + hdr.len,
                            ct_len, in + hdr.len + ct_len, out);
    if (rc != 0)
        return rc;
    window_accept(k, hdr.ctr);
    *out_len = ct_len;
    return 0;
}

int kurer_sframe_unprotect(kurer_sframe_recv *r, const uint8_t *metadata, size_t metadata_len,
                           const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                           size_t *out_len, kurer_sframe_header *h)
{
    int rc;
    if (h != NULL)
        memset(h, 0, sizeof *h);
    if (r == NULL || in == NULL || out == NULL || out_len == NULL ||
        (metadata == NULL && metadata_len > 0))
        return KURER_EINVAL;
    *out_len = 0;
    rc = unprotect(r, metadata, metadata_len, in, in_len, out, out_cap, out_len, h);
    switch (rc) {
    case 0:
        r->counts.accepted++;
        break;
    case KURER_ETRUNC:
    case KURER_ELIMIT:
        r->counts.malformed++;
        break;
    case KURER_EUNKNOWNKEY:
        r->counts.unknown_key++;
        break;
    case KURER_ETOOOLD:
        r->counts.too_old++;
        break;
    case KURER_EREPLAY:
        r->counts.replayed++;
        break;
    case KURER_EDECRYPT:
        r->counts.bad_tag++;
        break;
    default:
        break;
    }
    return rc;
}

void kurer_sframe_recv_get_counts(const kurer_sframe_recv *r, kurer_sframe_recv_counts *out)
{
    *out = r->counts;
}

/* ---- keys for a one-to-one call ---- */

#define CALL_SALT "kurer call sframe 1"

int kurer_sframe_call_key_ids(uint64_t call_id, const uint8_t caller_key[KURER_SFRAME_CALL_KEY_LEN],
                              const uint8_t callee_key[KURER_SFRAME_CALL_KEY_LEN],
                              kurer_sframe_direction dir, uint64_t *kid,
                              uint8_t base_key[KURER_SFRAME_CALL_KEY_LEN])
{
    uint8_t ikm[2 * KURER_SFRAME_CALL_KEY_LEN + 8], prk[KURER__SFRAME_MAX_NH];
    uint8_t okm[KURER_SFRAME_CALL_KEY_LEN + 2];
    const char *info;
    int rc;
    if (caller_key == NULL || callee_key == NULL || kid == NULL || base_key == NULL ||
        (dir != KURER_SFRAME_CALLER_TO_CALLEE && dir != KURER_SFRAME_CALLEE_TO_CALLER))
        return KURER_EINVAL;
    *kid = 0;
    if (kurer_ct_is_zero(caller_key, KURER_SFRAME_CALL_KEY_LEN) ||
        kurer_ct_is_zero(callee_key, KURER_SFRAME_CALL_KEY_LEN))
        return KURER_EBADKEY;
    rc = kurer_crypto_init();
    if (rc != 0)
        return rc;
    info = dir == KURER_SFRAME_CALLER_TO_CALLEE ? "kurer call caller->callee"
                                                : "kurer call callee->caller";
    memcpy(ikm, caller_key, KURER_SFRAME_CALL_KEY_LEN);
    memcpy(ikm + KURER_SFRAME_CALL_KEY_LEN, callee_key, KURER_SFRAME_CALL_KEY_LEN);
    be_put(ikm + 2 * KURER_SFRAME_CALL_KEY_LEN, call_id, 8);
    rc =
        kurer__hkdf_extract(1, (const uint8_t *)CALL_SALT, strlen(CALL_SALT), ikm, sizeof ikm, prk);
    if (rc == 0)
        rc = kurer__hkdf_expand(1, prk, (const uint8_t *)info, strlen(info), okm, sizeof okm);
    if (rc == 0) {
        memcpy(base_key, okm, KURER_SFRAME_CALL_KEY_LEN);
        *kid = ((uint64_t)(((unsigned)okm[32] << 8 | okm[33]) & 0x7fff) << 1) | (uint64_t)dir;
    }
    kurer_memzero(ikm, sizeof ikm);
    kurer_memzero(prk, sizeof prk);
    kurer_memzero(okm, sizeof okm);
    return rc;
}

int kurer_sframe_call_contexts(uint64_t call_id,
                               const uint8_t caller_key[KURER_SFRAME_CALL_KEY_LEN],
                               const uint8_t callee_key[KURER_SFRAME_CALL_KEY_LEN], int we_caller,
                               kurer_sframe_send **send, kurer_sframe_recv **recv)
{
    uint8_t *key;
    uint64_t kid_out = 0, kid_in = 0;
    kurer_sframe_direction out_dir =
        we_caller ? KURER_SFRAME_CALLER_TO_CALLEE : KURER_SFRAME_CALLEE_TO_CALLER;
    kurer_sframe_direction in_dir =
        we_caller ? KURER_SFRAME_CALLEE_TO_CALLER : KURER_SFRAME_CALLER_TO_CALLEE;
    int rc;
    if (send == NULL || recv == NULL)
        return KURER_EINVAL;
    *send = NULL;
    *recv = NULL;
    key = kurer_secure_alloc(KURER_SFRAME_CALL_KEY_LEN);
    if (key == NULL)
        return KURER_ENOMEM;
    rc = kurer_sframe_call_key_ids(call_id, caller_key, callee_key, out_dir, &kid_out, key);
    if (rc == 0)
        rc = kurer_sframe_send_new(send, KURER_SFRAME_CALL_SUITE, kid_out, key,
                                   KURER_SFRAME_CALL_KEY_LEN);
    if (rc == 0)
        rc = kurer_sframe_call_key_ids(call_id, caller_key, callee_key, in_dir, &kid_in, key);
    if (rc == 0)
        rc = kurer_sframe_recv_new(recv);
    if (rc == 0)
        rc = kurer_sframe_recv_add_key(*recv, KURER_SFRAME_CALL_SUITE, kid_in, key,
                                       KURER_SFRAME_CALL_KEY_LEN);
    kurer_memzero(key, KURER_SFRAME_CALL_KEY_LEN);
    kurer_secure_free(key);
    if (rc != 0) {
        kurer_sframe_send_free(*send);
        kurer_sframe_recv_free(*recv);
        *send = NULL;
        *recv = NULL;
    }
    return rc;
}
