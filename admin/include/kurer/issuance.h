/* The issuance policy: what makes a device's certificate request issuable, and the order in
 * which its certificate is made. `kurer-admin issue` follows it; online enrolment will too.
 *
 * A device certificate is issued in five steps, each only after the one before succeeded:
 *   1. kurer_issuance_check: the request against the authority, its issuance log and the
 *      parameters (no I/O, no private key). It gives the certificate body to sign, or the rule
 *      that refuses it.
 *   2. The caller opens the authority key: a refused request never costs a passphrase.
 *   3. kurer_issuance_reserve: the serial, and the serial state that the caller writes (and
 *      syncs) before anything is signed. A crash after it wastes a serial, never reuses one.
 *   4. kurer_issuance_sign: the certificate, signed and checked against the authority, and
 *      the chain the device needs (its certificate, then the authority's).
 *   5. The caller writes the chain, then appends kurer_log_entry_for_cert of the certificate to
 *      the issuance log and writes the serial state with the log's new length.
 *
 * The rules of step 1, in the order they are checked:
 *   - the issuer is an AUTHORITY certificate valid now;
 *   - the request is signed by the identity key it names;
 *   - its subject is user@ID of this authority;
 *   - its device id is 1..KURER_DEVICE_ID_MAX;
 *   - it is not dated later than now + skew;
 *   - its Noise key is a key of its own: not zero, not the identity key again;
 *   - the clearance (by default the authority's) is not above the authority's;
 *   - its keys (identity or Noise) are not those of a certificate the log records as revoked
 *     for any reason but "superseded" (a lost device's or compromised key's holder is not the
 *     user, even for that very device), and not certified for another device;
 *   - one device id, one valid certificate: when the log records a current certificate for
 *     the same user and device id (issued, not revoked, not expired), the request is refused
 *     unless replace is set: with the same keys it is the same request again (REPEATED: the
 *     existing serial is named, no second certificate is made), with other keys another
 *     device would take the id (DEVICE_TAKEN). With replace the caller revokes the current
 *     ones as superseded (kurer_issuance_current) before the new one is issued: a renewal of
 *     the same keys or a re-enrolment with new ones. replace with no current certificate is
 *     refused (NOTHING_TO_REPLACE): a mistyped device id must not pass unnoticed.
 * The validity is days from now (not before now - skew), cut to the authority's not_after.
 *
 * Nothing here does I/O or keeps state; all of it may run on any thread, on caller memory. */
#ifndef KURER_ISSUANCE_H
#define KURER_ISSUANCE_H

#include <stdint.h>

#include "kurer/cert.h"
#include "kurer/certmsg.h"
#include "kurer/error.h"
#include "kurer/issuelog.h"
#include "kurer/keys.h"

#define KURER_ISSUANCE_SKEW 600 /* seconds: not_before is backdated this much, for late clocks */

typedef struct kurer_issuance_params {
    int64_t now;
    uint64_t days;         /* validity asked for: 1..36500 */
    kurer_level clearance; /* when has_clearance; else the authority's own */
    int has_clearance;
    int replace; /* the device's current certificates are to be superseded by this one */
} kurer_issuance_params;

/* The rule that refused a request. */
typedef enum kurer_issuance_rule {
    KURER_ISSUANCE_OK = 0,
    KURER_ISSUANCE_AUTHORITY,    /* not an authority valid now: EROLE, EEXPIRED, ENOTYETVALID */
    KURER_ISSUANCE_SIGNATURE,    /* not signed by its identity key: EBADSIG (EBADKEY: no key) */
    KURER_ISSUANCE_SUBJECT,      /* not a user of this authority: ESUBJECT */
    KURER_ISSUANCE_DEVICE_ID,    /* 0 or above KURER_DEVICE_ID_MAX: EINVAL */
    KURER_ISSUANCE_DATE,         /* dated after now + skew: ENOTYETVALID */
    KURER_ISSUANCE_NOISE_KEY,    /* zero, or the identity key again: EBADKEY */
    KURER_ISSUANCE_CLEARANCE,    /* above the authority's: ECLEARANCE */
    KURER_ISSUANCE_KEY_REVOKED,  /* keys of a certificate revoked (not superseded): EREVOKED */
    KURER_ISSUANCE_KEY_SHARED,   /* keys certified for another device: EDUPLICATE */
    KURER_ISSUANCE_PARAMS,       /* days out of range: EINVAL */
    KURER_ISSUANCE_REPEATED,     /* the device holds a current certificate of these keys: EEXIST */
    KURER_ISSUANCE_DEVICE_TAKEN, /* the device id holds a current certificate of other keys:
                                  * EEXIST */
    KURER_ISSUANCE_NOTHING_TO_REPLACE, /* replace, but no current certificate: ENOTFOUND */
} kurer_issuance_rule;

typedef struct kurer_issuance_refusal {
    kurer_issuance_rule rule;
    /* KEY_REVOKED: the log's REVOKE entry; KEY_SHARED: the ISSUE entry of the other device;
     * REPEATED, DEVICE_TAKEN: the ISSUE entry of the device's current certificate. Points into
     * the log. */
    const kurer_log_entry *entry;
} kurer_issuance_refusal;

/* Step 1 for csr under authority, whose issuance log is log. 0 with *body the certificate to
 * sign (serial 0 until step 3) and *clamped set when not_after was cut to the authority's; or
 * the error of the rule in why (see kurer_issuance_rule), *body zeroed. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_issuance_check(const kurer_cert *authority, const kurer_issuelog *log, const kurer_csr *csr,
                     const kurer_issuance_params *p, kurer_cert_body *body, int *clamped,
                     kurer_issuance_refusal *why);

/* The ISSUE entries of log for subject/device_id that are current at now: a DEVICE
 * certificate not expired and with no REVOKE entry. At most max pointers (into the log) go to
 * out; the return value is how many there are (which may be more than max). */
KURER_EXPORT size_t kurer_issuance_current(const kurer_issuelog *log, const char *subject,
                                           uint32_t device_id, int64_t now,
                                           const kurer_log_entry **out, size_t max);

/* Step 3: *serial is st's next serial, and st is advanced past it with log's length recorded:
 * the state to write before signing. KURER_ELIMIT when serials are exhausted, KURER_ECORRUPT
 * when st is behind the log (its next serial is already in it); st is unchanged then. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_issuance_reserve(kurer_serial_state *st, const kurer_issuelog *log, uint64_t *serial);

/* Step 4: body (from step 1) with serial, signed by key (the authority's, checked to be
 * authority's key), checked as a device certificate of authority at now; *chain is the
 * device's certificate and the authority's. KURER_EKEYMISMATCH for another key, else the
 * errors of kurer_cert_sign and kurer_device_check. */
KURER_EXPORT KURER_MUST_CHECK int kurer_issuance_sign(kurer_cert_body *body, uint64_t serial,
                                                      const kurer_signing_key *key,
                                                      const kurer_cert *authority, int64_t now,
                                                      kurer_chain *chain);

#endif
