/* A fixed test PKI for the fuzz targets that reach signature checks (fuzz_handshake, fuzz_crl)
 * and for fuzz_seeds, which writes their seed corpora. Every key comes from a fixed seed and
 * every date from FUZZ_NOW, and Ed25519 signatures are deterministic, so the targets and the
 * committed seeds agree byte for byte and every run is reproducible.
 *
 *   root "dk" (pinned)        -> authority "mof" (serial FUZZ_AUTH_SERIAL)
 *                             -> authority "mod"
 *                             -> authority "old" (expired before FUZZ_NOW)
 *   root "elsewhere" (never pinned) -> authority "far"
 *
 * "mof" issues the devices; its version-1 list (crl_v1) revokes FUZZ_REVOKED_SERIAL. */
#ifndef KURER_FUZZ_PKI_H
#define KURER_FUZZ_PKI_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/cert.h"

#define FUZZ_NOW            ((int64_t)1800000000)
#define FUZZ_DAY            ((int64_t)86400)
#define FUZZ_AUTH_SERIAL    100u
#define FUZZ_DEVICE_SERIAL  7u
#define FUZZ_REVOKED_SERIAL 8u

typedef struct fuzz_pki {
    kurer_signing_key root_key, auth_key, other_auth_key, old_auth_key;
    kurer_signing_key stranger_root_key, stranger_auth_key;
    kurer_cert root, auth, other_auth, old_auth, stranger_root, stranger_auth;
    kurer_cert device;  /* anna@mof, FUZZ_DEVICE_SERIAL, valid at FUZZ_NOW */
    kurer_chain chain;  /* [device, auth] */
    kurer_buf crl_v1;   /* mof's SignedRevocationList version 1 */
    kurer_trust *trust; /* root pinned, crl_v1 held */
} fuzz_pki;

/* Builds the PKI (kurer_crypto_init included). Aborts on any failure: a target that cannot
 * build its fixtures must not run. */
void fuzz_pki_init(fuzz_pki *p);
void fuzz_pki_free(fuzz_pki *p);

/* A certificate body with the fixed dates (FUZZ_NOW - 1 day .. FUZZ_NOW + 1 year). */
void fuzz_body(kurer_cert_body *b, kurer_role role, const char *subject, uint64_t serial,
               kurer_level level);
/* A DEVICE body for user with keys derived from serial. */
void fuzz_device_body(kurer_cert_body *b, const char *user, uint32_t device_id, uint64_t serial,
                      kurer_level level);
/* Signs body with key into out; aborts on failure. */
void fuzz_sign(kurer_cert_body *b, const kurer_signing_key *key, kurer_cert *out);

/* Appends a SignedRevocationList to out, signed by key and carrying cert as issuer certificate.
 * Unlike kurer_crl_sign this also signs with a ROOT (a root-signed list of authority serials)
 * or with a key that is not cert's, so that seeds can hold the lists the verifier refuses.
 * serials must be sorted and unique. Aborts on failure. */
void fuzz_crl(kurer_buf *out, const kurer_signing_key *key, const kurer_cert *cert,
              uint64_t version, int64_t next_update, const uint64_t *serials, size_t n);

void fuzz_check(int cond);

#endif
