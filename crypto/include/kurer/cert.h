/* Certificate policy: signing, chain verification to a pinned root, revocation.
 *
 * The rules (docs/design.md, "Identities and certificates"):
 *   - a ROOT is self-signed, its clearance is the system's ceiling (at most CONFIDENTIAL);
 *   - a root signs AUTHORITY certificates, whose clearance never exceeds the ceiling;
 *   - an authority signs DEVICE certificates of its own users (user@<authority id>), whose
 *     clearance never exceeds the authority's; a root never signs a device;
 *   - every certificate of a chain is inside its validity window now;
 *   - a device is not on its authority's newest revocation list.
 * Signatures are checked over the bytes as received. Nothing here does I/O. */
#ifndef KURER_CERT_H
#define KURER_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/certmsg.h"
#include "kurer/error.h"
#include "kurer/keys.h"

/* Signs body with issuer (filling body->issuer_key_id from the issuer's key) into out. For a
 * root, issuer is the root's own key and body->signing_key must be its public key. */
KURER_EXPORT KURER_MUST_CHECK int kurer_cert_sign(kurer_cert_body *body,
                                                  const kurer_signing_key *issuer, kurer_cert *out);
/* The key id of a ROOT or AUTHORITY certificate's signing key. */
KURER_EXPORT void kurer_cert_key_id(const kurer_cert *c, uint8_t id[KURER_KEY_ID_LEN]);
/* Fingerprint for people: BLAKE2b-256 of the tbs bytes, hex (65 bytes with the NUL). */
KURER_EXPORT void kurer_cert_fingerprint(const kurer_cert *c, char out[65]);

/* Single-certificate checks against the rules above. */
KURER_EXPORT KURER_MUST_CHECK int kurer_cert_check_validity(const kurer_cert *c, int64_t now);
KURER_EXPORT KURER_MUST_CHECK int kurer_root_check(const kurer_cert *root, int64_t now);
KURER_EXPORT KURER_MUST_CHECK int kurer_authority_check(const kurer_cert *auth,
                                                        const kurer_cert *root, int64_t now);
KURER_EXPORT KURER_MUST_CHECK int kurer_device_check(const kurer_cert *dev, const kurer_cert *auth,
                                                     int64_t now);

/* Signs a revocation list: fills crl->issuer, issuer_key_id, tbs, signature and issuer_cert
 * from the authority's key and certificate. crl->revoked must be sorted and unique. */
KURER_EXPORT KURER_MUST_CHECK int kurer_crl_sign(kurer_crl *crl, const kurer_signing_key *auth,
                                                 const kurer_cert *auth_cert);
/* Checks a decoded list: its issuer certificate is an AUTHORITY signed by root (validity not
 * required: a list only takes trust away), the list names that authority and key, and the
 * signature is valid. */
KURER_EXPORT KURER_MUST_CHECK int kurer_crl_verify(const kurer_crl *crl, const kurer_cert *root);

/* What a verified device chain says. */
typedef struct kurer_verified {
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
    uint64_t serial;
    kurer_level clearance; /* the device's; never above its authority's or the ceiling */
    kurer_level ceiling;   /* the root's */
    uint8_t identity_key[KURER_IDENTITY_KEY_LEN];
    uint8_t noise_key[KURER_X25519_LEN];
    uint8_t authority_key_id[KURER_KEY_ID_LEN];
    char authority[KURER_AUTHORITY_ID_MAX + 1];
    int64_t not_after; /* the earliest expiry in the chain */
} kurer_verified;

/* A set of pinned roots and the newest verified revocation list of each authority.
 * Not thread-safe: one thread at a time (the relay's loop; a client's engine). */
typedef struct kurer_trust kurer_trust;

#define KURER_TRUST_MAX_ROOTS 8

KURER_EXPORT KURER_MUST_CHECK int kurer_trust_new(kurer_trust **out);
KURER_EXPORT void kurer_trust_free(kurer_trust *t);
/* Pins a root after kurer_root_check. KURER_ELIMIT past KURER_TRUST_MAX_ROOTS. */
KURER_EXPORT KURER_MUST_CHECK int kurer_trust_add_root(kurer_trust *t, const kurer_cert *root,
                                                       int64_t now);
KURER_EXPORT size_t kurer_trust_root_count(const kurer_trust *t);
KURER_EXPORT const kurer_cert *kurer_trust_root(const kurer_trust *t, size_t i);
/* Decodes and verifies a SignedRevocationList against the pinned roots and keeps it if it is
 * newer than what is held for that authority. KURER_ESTALE if not newer (nothing changes).
 * On success *version_out (if not NULL) is the list's version. */
KURER_EXPORT KURER_MUST_CHECK int kurer_trust_add_crl(kurer_trust *t, const uint8_t *data,
                                                      size_t len, uint64_t *version_out);
KURER_EXPORT size_t kurer_trust_crl_count(const kurer_trust *t);
/* The i-th list held (valid until the next add). */
KURER_EXPORT const kurer_crl *kurer_trust_crl(const kurer_trust *t, size_t i);
/* 1 if serial of the authority with key id is on that authority's newest list. */
KURER_EXPORT int kurer_trust_is_revoked(const kurer_trust *t,
                                        const uint8_t authority_key_id[KURER_KEY_ID_LEN],
                                        uint64_t serial);
/* Verifies a device chain [device, authority] against the pinned roots and held lists. */
KURER_EXPORT KURER_MUST_CHECK int kurer_trust_verify_chain(const kurer_trust *t,
                                                           const kurer_chain *chain, int64_t now,
                                                           kurer_verified *out);
/* Verifies an authority certificate against the pinned roots; *root_out (may be NULL) is the
 * root that signed it. */
KURER_EXPORT KURER_MUST_CHECK int kurer_trust_verify_authority(const kurer_trust *t,
                                                               const kurer_cert *auth, int64_t now,
                                                               const kurer_cert **root_out);

#endif
