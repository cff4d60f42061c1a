/* Sessions: our module in front of libsignal-protocol-c (X3DH, Double Ratchet), so that the
 * protocol library can be replaced without touching the rest of libkurer.
 *
 * All libsignal state lives in the device store (store.h). Identity trust comes from
 * certificates only: a peer device's identity key is trusted when it is the key in a valid,
 * unrevoked certificate chain for that device address that the store holds (no trust on first
 * use). libsignal asks about trust only while building a session, so every encrypt and decrypt
 * here checks the peer's chain again (validity now, revocation) and that the session's remote
 * identity is the certified key.
 *
 * A session engine belongs to one thread at a time, like its store and its libsignal context.
 * Internal (kurer__*): not part of libkurer's API. */
#ifndef KURER_CLIENT_SESSION_H
#define KURER_CLIENT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/cert.h"
#include "kurer/error.h"
#include "kurer/frame.h"
#include "store.h"

#define KURER__PREKEY_BATCH         100 /* one-time prekeys per upload */
#define KURER__FINGERPRINT_ITER     5200
#define KURER__FINGERPRINT_TEXT_MAX 64 /* 60 digits and the NUL */
#define KURER__FINGERPRINT_SCAN_MAX 256
#define KURER__CIPHERTEXT_MAX       KURER_ENVELOPE_CONTENT_MAX

typedef struct kurer__session kurer__session;

/* Wall-clock seconds; the engine asks it on every certificate check. */
typedef int64_t (*kurer__clock_fn)(void *ud);

/* A session engine over st for the identity own (both borrowed: they must outlive it), checking
 * peers against trust (borrowed). clock may be NULL (kurer_time_unix). */
KURER_MUST_CHECK int kurer__session_new(kurer__store *st, const kurer__identity *own,
                                        const kurer_trust *trust, kurer__clock_fn clock,
                                        void *clock_ud, kurer__session **out);
void kurer__session_free(kurer__session *s);

/* Verifies a peer's chain now, and stores it as that device's certificate. *out (may be NULL)
 * is what the chain says. The caller's own chain is refused (KURER_EINVAL), one issued before
 * the held one too (KURER_ESTALE: no rollback). A chain with another identity key than the held
 * one is a key change: recorded with the chain, in one transaction, the old session deleted. */
KURER_MUST_CHECK int kurer__session_peer_add(kurer__session *s, const kurer_chain *chain,
                                             kurer_verified *out);
/* 1 if peer_add recorded a key change (a held address with a new identity key: store.h) since
 * the last call, else 0; the note is cleared. */
int kurer__session_take_key_changed(kurer__session *s);
/* Loads the stored chain of user/device and verifies it now: KURER_ENOTFOUND if none is held,
 * else what kurer_trust_verify_chain says (KURER_EREVOKED, KURER_EEXPIRED, ...). */
KURER_MUST_CHECK int kurer__session_peer_check(kurer__session *s, const char *user,
                                               uint32_t device_id, kurer_verified *out);

/* What a device uploads to the relay. */
typedef struct kurer__prekeys {
    uint32_t registration_id;
    kurer_signed_prekey signed_prekey;
    kurer_one_time_prekey one_time[KURER_ONE_TIME_PREKEYS_MAX];
    size_t n_one_time;
} kurer__prekeys;

/* Makes a new signed prekey (signed by the identity key with XEdDSA) and n one-time prekeys
 * (n <= KURER_ONE_TIME_PREKEYS_MAX), stores the private halves in one transaction and fills
 * *out with the public halves. Ids come from counters in the store and never repeat. */
KURER_MUST_CHECK int kurer__session_generate_prekeys(kurer__session *s, size_t n,
                                                     kurer__prekeys *out);

/* X3DH from a peer's bundle: verifies the bundle's chain now (and that it names the bundle's
 * address), stores it, checks the signed prekey's signature and builds the session. */
KURER_MUST_CHECK int kurer__session_process_bundle(kurer__session *s, const kurer_prekey_bundle *b);
/* 1 if a session with user/device exists, 0 if not, negative on error. */
int kurer__session_exists(kurer__session *s, const char *user, uint32_t device_id);

/* Encrypts pt for user/device: checks the device's certificate now and the session's identity,
 * then appends the ciphertext to ct and sets *type (PREKEY or MESSAGE). KURER_ESTATE without a
 * session (fetch a bundle first). */
KURER_MUST_CHECK int kurer__session_encrypt(kurer__session *s, const char *user, uint32_t device_id,
                                            const uint8_t *pt, size_t n, kurer_buf *ct,
                                            kurer_envelope_type *type);

/* Called with the plaintext inside the decrypting transaction; sender is the verified
 * certificate. Whatever it writes to the store commits with the ratchet step, or neither does
 * (a non-zero return rolls both back and is returned by kurer__session_decrypt). */
typedef int (*kurer__plaintext_fn)(void *ud, const kurer_verified *sender, const uint8_t *pt,
                                   size_t n);

/* Decrypts an envelope from user/device in one store transaction with fn's writes.
 * KURER_EDUPLICATE when the envelope id is stored already or libsignal has seen the message
 * (nothing changes: ack it). Sender refused: KURER_ENOTFOUND (no certificate held),
 * KURER_EREVOKED, KURER_EEXPIRED, ... from the chain check; KURER_EKEYMISMATCH if the message or
 * session names another identity key. KURER_EDECRYPT for a message that does not decrypt;
 * KURER_ESTATE without a session for a plain message. Failures leave the session untouched. */
KURER_MUST_CHECK int kurer__session_decrypt(kurer__session *s,
                                            const uint8_t envelope_id[KURER_ENVELOPE_ID_LEN],
                                            const char *user, uint32_t device_id,
                                            kurer_envelope_type type, const uint8_t *ct, size_t n,
                                            kurer__plaintext_fn fn, void *ud);

/* The safety number between us and user/device (the certified key), for people to compare:
 * text gets the 60 digits; scan (may be NULL) the scannable version-1 encoding. */
KURER_MUST_CHECK int kurer__session_fingerprint(kurer__session *s, const char *user,
                                                uint32_t device_id,
                                                char text[KURER__FINGERPRINT_TEXT_MAX],
                                                uint8_t *scan, size_t scan_cap, size_t *scan_len);

#endif
