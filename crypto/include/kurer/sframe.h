/* SFrame (RFC 9605): end-to-end protection of call media frames (docs/calls.md).
 *
 * No I/O happens here: the caller moves the bytes. A frame is
 *     header (KID, CTR; 1 to 17 bytes) || ciphertext || tag
 * with the header and the caller's metadata as the AEAD's associated data. Cipher suites are
 * those of RFC 9605 section 4.5 (numbers as in its IANA registry); Kurér's calls use
 * KURER_SFRAME_AES_256_GCM_SHA512_128 (suite 5). All go through OpenSSL's libcrypto (EVP).
 *
 * A send context holds one key (one KID) and a counter that never repeats under that key: the
 * counter starts at 0 and once 2^64-1 has been used every further protect is KURER_ELIMIT.
 * A receive context holds up to KURER_SFRAME_MAX_RECV_KEYS keys by KID, each with its own replay
 * window of KURER_SFRAME_REPLAY_WINDOW counters.
 *
 * Keys for calls: each side of a call picks a random 32-byte base key and sends it in its
 * CallMessage (sframe_key) over the Signal session; kurer_sframe_call_key_ids derives from both
 * and the call id one KID and one base key per direction (caller to callee, callee to caller),
 * so that the two directions never share a key or a KID.
 *
 * Threads: a context belongs to one thread at a time; different contexts may be used
 * concurrently. kurer_crypto_init must have been called first (the _new functions call it).
 *
 * Secrets: the keys and salts live in guarded memory (sodium_malloc) and are wiped when the
 * context is freed. Base keys passed in are copied; the caller wipes its own copy. */
#ifndef KURER_SFRAME_H
#define KURER_SFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/error.h"

/* Cipher suites (RFC 9605 section 8.1). */
typedef enum kurer_sframe_suite {
    KURER_SFRAME_AES_128_CTR_HMAC_SHA256_80 = 0x0001,
    KURER_SFRAME_AES_128_CTR_HMAC_SHA256_64 = 0x0002,
    KURER_SFRAME_AES_128_CTR_HMAC_SHA256_32 = 0x0003,
    KURER_SFRAME_AES_128_GCM_SHA256_128 = 0x0004,
    KURER_SFRAME_AES_256_GCM_SHA512_128 = 0x0005,
} kurer_sframe_suite;

#define KURER_SFRAME_MAX_HEADER   17 /* config byte, 8-byte KID, 8-byte CTR */
#define KURER_SFRAME_MAX_TAG      16
#define KURER_SFRAME_MAX_OVERHEAD (KURER_SFRAME_MAX_HEADER + KURER_SFRAME_MAX_TAG)
/* The largest whole frame (header, ciphertext and tag) either direction accepts: one UDP
 * datagram's payload at most. */
#define KURER_SFRAME_MAX_FRAME     65507
#define KURER_SFRAME_MAX_METADATA  1024 /* associated data besides the header */
#define KURER_SFRAME_MIN_BASE_KEY  16
#define KURER_SFRAME_MAX_BASE_KEY  64
#define KURER_SFRAME_REPLAY_WINDOW 1024 /* counters remembered below the highest one seen */
#define KURER_SFRAME_MAX_RECV_KEYS 16
#define KURER_SFRAME_CALL_KEY_LEN  32 /* a side's random base key in CallMessage.sframe_key */
#define KURER_SFRAME_CALL_SUITE    KURER_SFRAME_AES_256_GCM_SHA512_128

/* A parsed SFrame header. */
typedef struct kurer_sframe_header {
    uint64_t kid;
    uint64_t ctr;
    size_t len; /* bytes the header took */
} kurer_sframe_header;

/* 1 if suite is one this build implements, else 0. */
KURER_EXPORT int kurer_sframe_suite_supported(unsigned suite);
/* The tag length of suite in bytes (4 to 16), 0 for a suite not implemented. */
KURER_EXPORT size_t kurer_sframe_tag_len(unsigned suite);

/* The length of the header for kid and ctr (1 to KURER_SFRAME_MAX_HEADER). */
KURER_EXPORT size_t kurer_sframe_header_len(uint64_t kid, uint64_t ctr);
/* Writes the shortest header for kid and ctr (RFC 9605 section 4.3) to out and returns its
 * length. */
KURER_EXPORT size_t kurer_sframe_header_encode(uint8_t out[KURER_SFRAME_MAX_HEADER], uint64_t kid,
                                               uint64_t ctr);
/* Parses the header at the start of in[0..len). 0 with *h set, or KURER_ETRUNC if in ends
 * inside the header. Any encoding RFC 9605 allows is accepted, including a longer one than
 * needed (the header is authenticated, so a re-encoded header fails the tag). *h is zeroed on
 * error. Bytes after the header are not looked at. */
KURER_EXPORT KURER_MUST_CHECK int kurer_sframe_header_decode(const uint8_t *in, size_t len,
                                                             kurer_sframe_header *h);

/* ---- sending ---- */

typedef struct kurer_sframe_send kurer_sframe_send;

/* A send context for suite with key id kid and base key base_key[0..base_key_len)
 * (KURER_SFRAME_MIN_BASE_KEY to KURER_SFRAME_MAX_BASE_KEY bytes). The sframe_key and
 * sframe_salt are derived as RFC 9605 section 4.4.2 says. 0 with *out set, or KURER_EINVAL (a
 * base key of the wrong size), KURER_EUNSUPPORTED (suite not implemented), KURER_ENOMEM,
 * KURER_ECRYPTO. *out is NULL on error. Free with kurer_sframe_send_free. */
KURER_EXPORT KURER_MUST_CHECK int kurer_sframe_send_new(kurer_sframe_send **out, unsigned suite,
                                                        uint64_t kid, const uint8_t *base_key,
                                                        size_t base_key_len);
/* Wipes and frees s; NULL-safe. */
KURER_EXPORT void kurer_sframe_send_free(kurer_sframe_send *s);

/* Bytes a frame of pt_len plaintext bytes takes with the next counter of s. */
KURER_EXPORT size_t kurer_sframe_send_frame_len(const kurer_sframe_send *s, size_t pt_len);
/* The counter the next protect will use. */
KURER_EXPORT uint64_t kurer_sframe_send_counter(const kurer_sframe_send *s);

/* Protects pt[0..pt_len) with the next counter of s, metadata[0..metadata_len) (NULL with 0 for
 * none) bound into the tag, and writes the frame to out[0..out_cap); *out_len is its length.
 * 0, or KURER_ELIMIT (the counter space is used up, or metadata longer than
 * KURER_SFRAME_MAX_METADATA, or a frame that would exceed KURER_SFRAME_MAX_FRAME), KURER_EINVAL
 * (out_cap below kurer_sframe_send_frame_len), KURER_ECRYPTO. A counter is consumed only by a
 * protect that succeeds. out must not overlap pt. */
KURER_EXPORT KURER_MUST_CHECK int kurer_sframe_protect(kurer_sframe_send *s,
                                                       const uint8_t *metadata, size_t metadata_len,
                                                       const uint8_t *pt, size_t pt_len,
                                                       uint8_t *out, size_t out_cap,
                                                       size_t *out_len);

/* ---- receiving ---- */

typedef struct kurer_sframe_recv kurer_sframe_recv;

/* An empty receive context. 0 with *out set, or KURER_ENOMEM, or the error of
 * kurer_crypto_init. Free with kurer_sframe_recv_free. */
KURER_EXPORT KURER_MUST_CHECK int kurer_sframe_recv_new(kurer_sframe_recv **out);
/* Wipes and frees r; NULL-safe. */
KURER_EXPORT void kurer_sframe_recv_free(kurer_sframe_recv *r);

/* Adds the key kid of suite with base_key (as kurer_sframe_send_new) and a fresh replay window.
 * 0, or KURER_EEXIST (kid is already held), KURER_ELIMIT (KURER_SFRAME_MAX_RECV_KEYS held),
 * KURER_EINVAL, KURER_EUNSUPPORTED, KURER_ENOMEM, KURER_ECRYPTO. */
KURER_EXPORT KURER_MUST_CHECK int kurer_sframe_recv_add_key(kurer_sframe_recv *r, unsigned suite,
                                                            uint64_t kid, const uint8_t *base_key,
                                                            size_t base_key_len);
/* Removes and wipes key kid. 0 or KURER_ENOENT. */
KURER_EXPORT KURER_MUST_CHECK int kurer_sframe_recv_remove_key(kurer_sframe_recv *r, uint64_t kid);

/* Checks and decrypts the frame in[0..in_len) with metadata[0..metadata_len) (as given to
 * protect) into out[0..out_cap); *out_len is the plaintext length. h (may be NULL) gets the
 * frame's header, also on the errors after the header was parsed. 0, or:
 *   KURER_ETRUNC       the frame ends inside the header or is shorter than header and tag
 *   KURER_ELIMIT       a frame longer than KURER_SFRAME_MAX_FRAME or metadata too long
 *   KURER_EUNKNOWNKEY  no key with the frame's KID is held
 *   KURER_ETOOOLD      the counter is below the replay window of that key
 *   KURER_EREPLAY      the counter was accepted before
 *   KURER_EDECRYPT     the tag does not verify (a forged, damaged or mis-keyed frame)
 *   KURER_EINVAL       out_cap too small for the plaintext
 *   KURER_ECRYPTO      libcrypto failed
 * The replay window moves only for a frame whose tag verified. On error no plaintext is left in
 * out (what a failed open wrote is wiped) and *out_len is 0. out must not overlap in. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_sframe_unprotect(kurer_sframe_recv *r, const uint8_t *metadata, size_t metadata_len,
                       const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                       size_t *out_len, kurer_sframe_header *h);

/* What a receive context refused and accepted, for the transport's metrics: every
 * kurer_sframe_unprotect counts once, by its result (malformed: KURER_ETRUNC or KURER_ELIMIT;
 * calls with invalid arguments are not counted). */
typedef struct kurer_sframe_recv_counts {
    uint64_t accepted;
    uint64_t malformed;
    uint64_t unknown_key;
    uint64_t too_old;
    uint64_t replayed;
    uint64_t bad_tag;
} kurer_sframe_recv_counts;

/* A copy of r's counts. */
KURER_EXPORT void kurer_sframe_recv_get_counts(const kurer_sframe_recv *r,
                                               kurer_sframe_recv_counts *out);

/* ---- keys for a one-to-one call ---- */

typedef enum kurer_sframe_direction {
    KURER_SFRAME_CALLER_TO_CALLEE = 0,
    KURER_SFRAME_CALLEE_TO_CALLER = 1,
} kurer_sframe_direction;

/* The KID and base key of direction dir of the call call_id, from the caller's and the callee's
 * random KURER_SFRAME_CALL_KEY_LEN-byte base keys:
 *   PRK     = HKDF-Extract-SHA512(salt "kurer call sframe 1",
 *                                 caller_key || callee_key || call_id as 8 bytes big-endian)
 *   OKM     = HKDF-Expand-SHA512(PRK, "kurer call caller->callee" or "kurer call callee->caller",
 *                                32 + 2 bytes)
 *   base    = OKM[0..32)
 *   kid     = (OKM[32..34) as big-endian & 0x7fff) << 1 | dir
 * so the two directions' KIDs always differ (their lowest bit is the direction) and fit in two
 * header bytes. 0, or KURER_EBADKEY (either base key all zero), KURER_EINVAL, KURER_ECRYPTO.
 * base_key is a secret: the caller keeps it in guarded memory or wipes it at once. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_sframe_call_key_ids(uint64_t call_id, const uint8_t caller_key[KURER_SFRAME_CALL_KEY_LEN],
                          const uint8_t callee_key[KURER_SFRAME_CALL_KEY_LEN],
                          kurer_sframe_direction dir, uint64_t *kid,
                          uint8_t base_key[KURER_SFRAME_CALL_KEY_LEN]);

/* The two contexts of one side of the call call_id with suite KURER_SFRAME_CALL_SUITE: a send
 * context for our direction and a receive context holding the other direction's key. we_caller
 * is non-zero on the caller's side. 0 with *send and *recv set, or the errors of
 * kurer_sframe_call_key_ids, kurer_sframe_send_new and kurer_sframe_recv_add_key; both are NULL
 * on error. No derived key leaves this function. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_sframe_call_contexts(uint64_t call_id, const uint8_t caller_key[KURER_SFRAME_CALL_KEY_LEN],
                           const uint8_t callee_key[KURER_SFRAME_CALL_KEY_LEN], int we_caller,
                           kurer_sframe_send **send, kurer_sframe_recv **recv);

#endif
