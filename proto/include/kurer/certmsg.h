/* Certificates, certificate requests and revocation lists as validated plain structs.
 *
 * This is the decode layer for proto/cert.proto: the only code that touches the generated
 * types. Decoding checks structure (sizes, required fields, enum ranges, per-role keys, subject
 * syntax); it checks no signature and no policy: that is crypto/cert.h's work.
 * Certificates are fixed-size values (no heap); revocation lists own heap memory. */
#ifndef KURER_CERTMSG_H
#define KURER_CERTMSG_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/error.h"
#include "kurer/level.h"
#include "kurer/sizes.h" /* KURER_SUBJECT_MAX, KURER_IDENTITY_KEY_LEN, KURER_DEVICE_ID_MAX */

#define KURER_KEY_ID_LEN       32 /* BLAKE2b-256 of an Ed25519 public key */
#define KURER_ED25519_PK_LEN   32
#define KURER_SIG_LEN          64
#define KURER_X25519_LEN       32
#define KURER_AUTHORITY_ID_MAX 63
#define KURER_NAME_MAX         128
#define KURER_TBS_MAX          1024 /* a serialized body */
#define KURER_CERT_MAX         1280 /* a serialized SignedCertificate */
#define KURER_CHAIN_MAX        3    /* certificates in a chain: device, authority (root pinned) */
#define KURER_CHAIN_BYTES_MAX  4096 /* a serialized CertificateChain */
#define KURER_CRL_MAX_ENTRIES  100000
#define KURER_CRL_BYTES_MAX    (4u * 1024 * 1024)

typedef enum kurer_role {
    KURER_ROLE_ROOT = 1,
    KURER_ROLE_AUTHORITY = 2,
    KURER_ROLE_DEVICE = 3,
} kurer_role;

KURER_EXPORT const char *kurer_role_name(int role);

typedef struct kurer_cert_body {
    uint32_t version; /* 1 */
    uint64_t serial;
    kurer_role role;
    char subject[KURER_SUBJECT_MAX + 1];
    char display_name[KURER_NAME_MAX + 1];
    uint32_t device_id; /* DEVICE only */
    kurer_level clearance;
    int64_t not_before;
    int64_t not_after;
    uint8_t issuer_key_id[KURER_KEY_ID_LEN];
    uint8_t signing_key[KURER_ED25519_PK_LEN];    /* ROOT, AUTHORITY */
    uint8_t identity_key[KURER_IDENTITY_KEY_LEN]; /* DEVICE */
    uint8_t noise_key[KURER_X25519_LEN];          /* DEVICE */
} kurer_cert_body;

/* A decoded certificate: the body, and the signed bytes exactly as received. */
typedef struct kurer_cert {
    kurer_cert_body body;
    uint8_t tbs[KURER_TBS_MAX];
    size_t tbs_len;
    uint8_t signature[KURER_SIG_LEN];
} kurer_cert;

typedef struct kurer_chain {
    kurer_cert certs[KURER_CHAIN_MAX]; /* leaf first */
    size_t n;
} kurer_chain;

/* Subject syntax. Authority ids: 1..63 of [a-z0-9-.], starting with a letter or digit.
 * Users: local part 1..64 of [a-z0-9._-], '@', an authority id. 0 or KURER_ESUBJECT. */
KURER_EXPORT KURER_MUST_CHECK int kurer_authority_id_check(const char *s);
KURER_EXPORT KURER_MUST_CHECK int kurer_user_check(const char *s);
/* The authority part of user@authority (pointer into s), or NULL if s is not a valid user. */
KURER_EXPORT const char *kurer_user_authority(const char *s);

/* Body <-> bytes. Encoding validates first (same rules as decoding). */
KURER_EXPORT KURER_MUST_CHECK int kurer_cert_body_encode(const kurer_cert_body *body,
                                                         kurer_buf *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_cert_body_decode(const uint8_t *tbs, size_t len,
                                                         kurer_cert_body *out);

/* A certificate from its two parts (as found inside other messages). Copies tbs. */
KURER_EXPORT KURER_MUST_CHECK int kurer_cert_from_parts(const uint8_t *tbs, size_t tbs_len,
                                                        const uint8_t *sig, size_t sig_len,
                                                        kurer_cert *out);
/* SignedCertificate bytes <-> kurer_cert. */
KURER_EXPORT KURER_MUST_CHECK int kurer_cert_decode(const uint8_t *data, size_t len,
                                                    kurer_cert *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_cert_encode(const kurer_cert *cert, kurer_buf *out);

/* CertificateChain bytes <-> kurer_chain (1..KURER_CHAIN_MAX certificates). */
KURER_EXPORT KURER_MUST_CHECK int kurer_chain_decode(const uint8_t *data, size_t len,
                                                     kurer_chain *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_chain_encode(const kurer_chain *chain, kurer_buf *out);

typedef struct kurer_csr_body {
    uint32_t version; /* 1 */
    char subject[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
    char display_name[KURER_NAME_MAX + 1];
    uint8_t identity_key[KURER_IDENTITY_KEY_LEN];
    uint8_t noise_key[KURER_X25519_LEN];
    int64_t created_at;
} kurer_csr_body;

typedef struct kurer_csr {
    kurer_csr_body body;
    uint8_t tbs[KURER_TBS_MAX];
    size_t tbs_len;
    uint8_t signature[KURER_SIG_LEN];
} kurer_csr;

KURER_EXPORT KURER_MUST_CHECK int kurer_csr_body_encode(const kurer_csr_body *body, kurer_buf *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_csr_decode(const uint8_t *data, size_t len, kurer_csr *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_csr_encode(const kurer_csr *csr, kurer_buf *out);

typedef enum kurer_revocation_reason {
    KURER_REASON_UNSPECIFIED = 0,
    KURER_REASON_KEY_COMPROMISE = 1,
    KURER_REASON_DEVICE_LOST = 2,
    KURER_REASON_SUPERSEDED = 3,
    KURER_REASON_LEFT_AUTHORITY = 4,
} kurer_revocation_reason;

KURER_EXPORT const char *kurer_reason_name(int reason);
KURER_EXPORT KURER_MUST_CHECK int kurer_reason_parse(const char *s, kurer_revocation_reason *out);

typedef struct kurer_revoked {
    uint64_t serial;
    int64_t revoked_at;
    kurer_revocation_reason reason;
} kurer_revoked;

typedef struct kurer_crl {
    char issuer[KURER_AUTHORITY_ID_MAX + 1];
    uint8_t issuer_key_id[KURER_KEY_ID_LEN];
    uint64_t version;
    int64_t issued_at;
    int64_t next_update;
    kurer_revoked *revoked; /* heap, sorted by serial, no duplicates */
    size_t n_revoked;
    uint8_t *tbs; /* heap: the signed bytes as received */
    size_t tbs_len;
    uint8_t signature[KURER_SIG_LEN];
    kurer_cert issuer_cert; /* the authority's certificate carried with the list */
} kurer_crl;

/* Body encoding for signing: version, entries (sorted, unique) etc. from crl; tbs ignored. */
KURER_EXPORT KURER_MUST_CHECK int kurer_crl_body_encode(const kurer_crl *crl, kurer_buf *out);
/* SignedRevocationList bytes -> kurer_crl (release with kurer_crl_release). Entries out of order
 * or repeated are KURER_EMALFORMED. */
KURER_EXPORT KURER_MUST_CHECK int kurer_crl_decode(const uint8_t *data, size_t len, kurer_crl *out);
/* kurer_crl (with tbs, signature and issuer_cert set) -> SignedRevocationList bytes. */
KURER_EXPORT KURER_MUST_CHECK int kurer_crl_encode(const kurer_crl *crl, kurer_buf *out);
KURER_EXPORT void kurer_crl_release(kurer_crl *crl);
/* 1 if serial is listed (binary search). */
KURER_EXPORT int kurer_crl_contains(const kurer_crl *crl, uint64_t serial);

#endif
