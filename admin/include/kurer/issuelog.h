/* The issuance log of a root or an authority, and its serial state.
 *
 * Every certificate an issuer signs (and every revocation it makes) is recorded in an
 * append-only log in its directory. Each entry is signed by the issuer's Ed25519 key and names
 * the BLAKE2b-256 hash of the entry before it (the first entry names the issuer's key id), so
 * changing, removing or reordering entries breaks a signature or a link. The format
 * (docs/admin.md, "File formats"):
 *
 *   file   := "KURERLOG" u32be(1) entry*
 *   entry  := u32be(len) body signature[64]          len = |body| + 64, at most 2048
 *   body   := u8 version(1) u8 kind u64be seq prev[32] i64be time u64be serial u8 role
 *             lv16 subject u32be device_id u8 clearance i64be not_after cert_fp[32]
 *             key_fp[32] noise_fp[32] u8 reason
 *   signature = Ed25519(issuer, "kurer-admin issuance log v1" 0x00 || body)
 *   hash(entry) = BLAKE2b-256(u32be(len) || body || signature)
 *
 * The serial state is a separate small file ("KURERSER" u32be(1) u64be next_serial
 * u64be log_entries): the next serial to use (advanced before a certificate is written, so a
 * crash can waste a serial but never reuse one) and how many log entries there were at the
 * last update (a log shorter than that has lost entries).
 *
 * Nothing here is thread-safe; one process owns a directory at a time. */
#ifndef KURER_ISSUELOG_H
#define KURER_ISSUELOG_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/certmsg.h"
#include "kurer/error.h"
#include "kurer/keys.h"

#define KURER_LOG_ENTRY_MAX 2048
#define KURER_LOG_FILE_MAX  ((size_t)64 * 1024 * 1024)

typedef enum kurer_log_kind {
    KURER_LOGK_ISSUE = 1,  /* a certificate was signed */
    KURER_LOGK_REVOKE = 2, /* a serial was put on the revocation list */
} kurer_log_kind;

typedef struct kurer_log_entry {
    kurer_log_kind kind;
    uint64_t seq;
    uint8_t prev[32];
    int64_t time;
    uint64_t serial;
    kurer_role role;
    char subject[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
    kurer_level clearance;
    int64_t not_after;
    uint8_t cert_fp[32];  /* BLAKE2b-256 of the certificate's tbs (ISSUE), zero for REVOKE */
    uint8_t key_fp[32];   /* BLAKE2b-256 of the identity key (DEVICE) or signing key */
    uint8_t noise_fp[32]; /* BLAKE2b-256 of the Noise key (DEVICE), else zero */
    kurer_revocation_reason reason; /* REVOKE */
    uint8_t hash[32];               /* filled by parsing/appending: this entry's hash */
} kurer_log_entry;

typedef struct kurer_issuelog {
    kurer_log_entry *entries;
    size_t n;
    size_t cap;
    uint8_t head[32]; /* hash of the last entry, or the issuer's key id when empty */
    uint8_t issuer_pk[32];
} kurer_issuelog;

/* Parses and verifies a whole log file against the issuer's public key. On success *log holds
 * every entry (release with kurer_issuelog_release). On failure *bad_entry (if not NULL) is the
 * index of the first bad entry (or SIZE_MAX for a bad file header) and the log is released:
 * KURER_EMALFORMED / KURER_ETRUNC / KURER_EVERSION for damage, KURER_EBADSIG for a bad
 * signature, KURER_ECORRUPT for a broken link or sequence number. An empty file (0 bytes) is
 * not a log: KURER_ETRUNC. */
KURER_EXPORT KURER_MUST_CHECK int kurer_issuelog_parse(const uint8_t *data, size_t len,
                                                       const uint8_t issuer_pk[32],
                                                       kurer_issuelog *log, size_t *bad_entry);
/* An empty log for issuer_pk, and its file image (the header) in out. */
KURER_EXPORT KURER_MUST_CHECK int kurer_issuelog_init(kurer_issuelog *log,
                                                      const uint8_t issuer_pk[32], kurer_buf *out);
/* Signs e (its seq and prev are set from the log), appends it to the log in memory and its
 * bytes to out (which must hold the file image so far). e->hash is set. */
KURER_EXPORT KURER_MUST_CHECK int kurer_issuelog_append(kurer_issuelog *log, kurer_log_entry *e,
                                                        const kurer_signing_key *issuer,
                                                        kurer_buf *out);
KURER_EXPORT void kurer_issuelog_release(kurer_issuelog *log);
/* The highest serial of any ISSUE entry, 0 if none. */
KURER_EXPORT uint64_t kurer_issuelog_max_serial(const kurer_issuelog *log);
/* The ISSUE entry of serial, or NULL. */
KURER_EXPORT const kurer_log_entry *kurer_issuelog_find_serial(const kurer_issuelog *log,
                                                               uint64_t serial);
KURER_EXPORT const char *kurer_log_kind_name(int kind);
/* The ISSUE entry for a certificate c signed at now (any role: the fingerprints of a device's
 * identity and Noise keys, or the key id of a root's or authority's signing key). */
KURER_EXPORT void kurer_log_entry_for_cert(kurer_log_entry *e, const kurer_cert *c, int64_t now);
/* The REVOKE entry for the certificate whose ISSUE entry is issued, revoked at now. */
KURER_EXPORT void kurer_log_entry_for_revocation(kurer_log_entry *e, const kurer_log_entry *issued,
                                                 kurer_revocation_reason reason, int64_t now);

typedef struct kurer_serial_state {
    uint64_t next_serial;
    uint64_t log_entries;
} kurer_serial_state;

#define KURER_SERIAL_STATE_LEN 28

KURER_EXPORT KURER_MUST_CHECK int kurer_serial_state_encode(const kurer_serial_state *s,
                                                            uint8_t out[KURER_SERIAL_STATE_LEN]);
/* KURER_EMALFORMED / KURER_ETRUNC / KURER_ETRAILING / KURER_EVERSION for a damaged file. */
KURER_EXPORT KURER_MUST_CHECK int kurer_serial_state_decode(const uint8_t *data, size_t len,
                                                            kurer_serial_state *s);

#endif
