/* Certificate policy: signing, chain verification to a pinned root, revocation.
 *
 * The rules (docs/design.md, "Identities and certificates"):
 *   - a ROOT is self-signed, its clearance is the system's ceiling (at most CONFIDENTIAL);
 *   - a root signs AUTHORITY certificates, whose clearance never exceeds the ceiling;
 *   - an authority signs DEVICE certificates of its own users (user@<authority id>), whose
 *     clearance never exceeds the authority's; a root never signs a device;
 *   - every certificate of a chain is inside its validity window now;
 *   - a device is not on its authority's newest revocation list, and its authority is not on
 *     its root's (a root revokes authorities with a list it signs itself);
 *   - no held list that covers the chain is past its next_update by more than the trust
 *     store's grace period (kurer_trust_set_crl_grace): a verifier that cannot learn of new
 *     revocations stops trusting, instead of trusting forever what a relay shows it.
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
 * from the issuer's key and certificate. The issuer is an AUTHORITY (its list names device
 * serials) or a ROOT (its list names the serials of AUTHORITY certificates it issued).
 * crl->revoked must be sorted and unique. */
KURER_EXPORT KURER_MUST_CHECK int kurer_crl_sign(kurer_crl *crl, const kurer_signing_key *issuer,
                                                 const kurer_cert *issuer_cert);
/* Checks a decoded list against root: its issuer certificate is either an AUTHORITY signed by
 * root, or root itself (a ROOT certificate with root's signing key and a valid self-signature);
 * validity is not required (a list only takes trust away). The list must name that issuer and
 * key, and its signature must be valid. KURER_EROLE for any other issuer certificate,
 * KURER_EISSUER / KURER_EKEYMISMATCH / KURER_ESUBJECT / KURER_EBADSIG as the check fails. */
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
    int64_t not_after;         /* the earliest expiry in the chain */
    uint64_t authority_serial; /* the authority certificate's (on its root's list if revoked) */
    uint8_t root_key_id[KURER_KEY_ID_LEN];
    /* Held lists covering the chain that are past their next_update: on success they are
     * inside the grace period and the caller should warn that revocations may be missing; 0
     * when every such list is current (or none is held). crl_stale_since is the earliest of
     * their next_update (0 if none). On KURER_ECRLSTALE only these two fields are set. */
    unsigned crl_stale; /* KURER_STALE_AUTHORITY_CRL | KURER_STALE_ROOT_CRL */
    int64_t crl_stale_since;
} kurer_verified;

#define KURER_STALE_AUTHORITY_CRL 1u /* the authority's list of devices */
#define KURER_STALE_ROOT_CRL      2u /* the root's list of authorities */

/* A set of pinned roots and the newest verified revocation list of each issuer (authorities
 * and roots), with the freshness policy. Not thread-safe: one thread at a time (the relay's
 * loop; a client's engine). */
typedef struct kurer_trust kurer_trust;

#define KURER_TRUST_MAX_ROOTS 8
/* How long after a list's next_update chains it covers still verify (with crl_stale set). */
#define KURER_TRUST_CRL_GRACE_DEFAULT ((int64_t)7 * 86400)
/* As a grace: stale lists are only ever flagged, never refused. */
#define KURER_TRUST_CRL_GRACE_NEVER ((int64_t)-1)

KURER_EXPORT KURER_MUST_CHECK int kurer_trust_new(kurer_trust **out);
KURER_EXPORT void kurer_trust_free(kurer_trust *t);
/* Pins a root after kurer_root_check. KURER_ELIMIT past KURER_TRUST_MAX_ROOTS. */
KURER_EXPORT KURER_MUST_CHECK int kurer_trust_add_root(kurer_trust *t, const kurer_cert *root,
                                                       int64_t now);
KURER_EXPORT size_t kurer_trust_root_count(const kurer_trust *t);
/* The freshness policy: seconds after a held list's next_update during which the chains it
 * covers still verify (flagged in kurer_verified.crl_stale); later they fail with
 * KURER_ECRLSTALE until a newer list is added. KURER_TRUST_CRL_GRACE_DEFAULT (7 days) until
 * set; KURER_TRUST_CRL_GRACE_NEVER never refuses. Lists whose next_update is 0 never go
 * stale. KURER_EINVAL for any other negative value. */
KURER_EXPORT KURER_MUST_CHECK int kurer_trust_set_crl_grace(kurer_trust *t, int64_t seconds);
KURER_EXPORT int64_t kurer_trust_crl_grace(const kurer_trust *t);
/* Freshness of one list at now under t's policy: 0 current (or next_update 0), 1 past its
 * next_update but inside the grace period, KURER_ECRLSTALE past the grace period. */
KURER_EXPORT int kurer_trust_crl_freshness(const kurer_trust *t, const kurer_crl *crl, int64_t now);
KURER_EXPORT const kurer_cert *kurer_trust_root(const kurer_trust *t, size_t i);
/* Decodes and verifies a SignedRevocationList against the pinned roots (kurer_crl_verify: an
 * authority's list, or a pinned root's own list of authorities) and keeps it if it is newer
 * than what is held for that issuer key. KURER_ESTALE if not newer (nothing changes); a list
 * past its next_update is still kept (it is the newest known). On success *version_out (if
 * not NULL) is the list's version. */
KURER_EXPORT KURER_MUST_CHECK int kurer_trust_add_crl(kurer_trust *t, const uint8_t *data,
                                                      size_t len, uint64_t *version_out);
KURER_EXPORT size_t kurer_trust_crl_count(const kurer_trust *t);
/* The i-th list held (valid until the next add). */
KURER_EXPORT const kurer_crl *kurer_trust_crl(const kurer_trust *t, size_t i);
/* 1 if serial is on the newest list of the issuer (authority or root) with key id. */
KURER_EXPORT int kurer_trust_is_revoked(const kurer_trust *t,
                                        const uint8_t authority_key_id[KURER_KEY_ID_LEN],
                                        uint64_t serial);
/* 1 if the chain v describes is revoked by the lists held now: the device's serial is on its
 * authority's list, or the authority's serial is on its root's list. For verifiers that keep
 * verified chains (the relay's connections, a directory) and re-check them when a list comes. */
KURER_EXPORT int kurer_trust_chain_revoked(const kurer_trust *t, const kurer_verified *v);
/* Verifies a device chain [device, authority] against the pinned roots and held lists:
 * KURER_EREVOKED if the device is on its authority's list or the authority on its root's;
 * KURER_ECRLSTALE if one of those lists is past its next_update by more than the grace. */
KURER_EXPORT KURER_MUST_CHECK int kurer_trust_verify_chain(const kurer_trust *t,
                                                           const kurer_chain *chain, int64_t now,
                                                           kurer_verified *out);
/* Verifies an authority certificate against the pinned roots and the root's list (KURER_EREVOKED,
 * KURER_ECRLSTALE as for chains); *root_out (may be NULL) is the root that signed it. */
KURER_EXPORT KURER_MUST_CHECK int kurer_trust_verify_authority(const kurer_trust *t,
                                                               const kurer_cert *auth, int64_t now,
                                                               const kurer_cert **root_out);

#endif
