/* SFrame's private parts: the cipher suites' AEADs and HKDF over OpenSSL's libcrypto, shared by
 * sframe.c (contexts, header, replay window) and sframe_aead.c. Internal (kurer__*). */
#ifndef KURER_CRYPTO_SFRAME_INTERNAL_H
#define KURER_CRYPTO_SFRAME_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/sframe.h"

#define KURER__SFRAME_NN     12 /* nonce length: every suite */
#define KURER__SFRAME_MAX_NK 48 /* AES-128-CTR key and HMAC-SHA256 key */
#define KURER__SFRAME_MAX_NH 64

/* One suite's parameters (RFC 9605 section 4.5). */
typedef struct kurer__sframe_suite_info {
    unsigned id;
    int gcm;    /* 1: AES-GCM; 0: AES-CTR with HMAC (section 4.5.1) */
    int sha512; /* the HKDF (and HMAC) hash: 1 SHA-512, 0 SHA-256 */
    size_t nh;  /* hash output */
    size_t nk;  /* AEAD key */
    size_t nka; /* the AES part of a CTR+HMAC key */
    size_t nt;  /* tag */
} kurer__sframe_suite_info;

/* The suite's parameters, or NULL if not implemented. */
const kurer__sframe_suite_info *kurer__sframe_suite(unsigned id);

/* A keyed AEAD of one suite: libcrypto contexts with the key schedule set once, and the salt.
 * The sframe_key and sframe_salt live in guarded memory. */
typedef struct kurer__sframe_aead kurer__sframe_aead;

/* Derives sframe_key and sframe_salt from base_key for kid (RFC 9605 section 4.4.2) and keys a
 * new AEAD with them, for sealing (seal != 0) or opening. 0, or KURER_EUNSUPPORTED, KURER_EINVAL,
 * KURER_ENOMEM, KURER_ECRYPTO. */
KURER_MUST_CHECK int kurer__sframe_aead_new(kurer__sframe_aead **out, unsigned suite, uint64_t kid,
                                            const uint8_t *base_key, size_t base_key_len, int seal);
void kurer__sframe_aead_free(kurer__sframe_aead *a);
const kurer__sframe_suite_info *kurer__sframe_aead_suite(const kurer__sframe_aead *a);

/* Seals pt under the nonce for ctr with aad1 || aad2 as associated data: writes the ciphertext
 * (pt_len bytes) and then the tag to out. 0 or KURER_ECRYPTO. */
KURER_MUST_CHECK int kurer__sframe_seal(kurer__sframe_aead *a, uint64_t ctr, const uint8_t *aad1,
                                        size_t aad1_len, const uint8_t *aad2, size_t aad2_len,
                                        const uint8_t *pt, size_t pt_len, uint8_t *out);
/* Opens ct (ct_len bytes, then the tag) into out (ct_len bytes). 0, KURER_EDECRYPT (the tag does
 * not verify; out is wiped), KURER_ECRYPTO. */
KURER_MUST_CHECK int kurer__sframe_open(kurer__sframe_aead *a, uint64_t ctr, const uint8_t *aad1,
                                        size_t aad1_len, const uint8_t *aad2, size_t aad2_len,
                                        const uint8_t *ct, size_t ct_len, const uint8_t *tag,
                                        uint8_t *out);

/* HKDF (RFC 5869) with SHA-512 (sha512 != 0) or SHA-256. Extract: salt may be empty (NULL, 0);
 * prk gets the hash length. Expand: out_len bytes. 0 or KURER_ECRYPTO. */
KURER_MUST_CHECK int kurer__hkdf_extract(int sha512, const uint8_t *salt, size_t salt_len,
                                         const uint8_t *ikm, size_t ikm_len,
                                         uint8_t prk[KURER__SFRAME_MAX_NH]);
KURER_MUST_CHECK int kurer__hkdf_expand(int sha512, const uint8_t *prk, const uint8_t *info,
                                        size_t info_len, uint8_t *out, size_t out_len);

/* Tests only (the known-answer vectors give these directly): an AEAD keyed with sframe_key
 * key[0..suite's Nk) and sframe_salt salt[0..12), without derivation; the derived key and salt
 * of a; the derivation label for kid ("SFrame 1.0 Secret key " or "SFrame 1.0 Secret salt "). */
KURER_MUST_CHECK int kurer__sframe_aead_from_key(kurer__sframe_aead **out, unsigned suite,
                                                 const uint8_t *key, const uint8_t *salt, int seal);
void kurer__sframe_aead_secrets(const kurer__sframe_aead *a, const uint8_t **key,
                                const uint8_t **salt);
size_t kurer__sframe_label(uint8_t out[40], const char *what, uint64_t kid, unsigned suite);
kurer__sframe_aead *kurer__sframe_send_aead(kurer_sframe_send *s);

/* Tests only: sets the next counter of s (to check exhaustion without 2^64 frames). */
void kurer__sframe_send_set_counter(kurer_sframe_send *s, uint64_t ctr);

#endif
