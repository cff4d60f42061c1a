/* Online enrolment messages (proto/enrol.proto) as validated plain structs: what a device or an
 * administrator and the relay say in a Noise NK enrolment session (docs/protocol.md 3.6).
 *
 * Every field is bounded and held in the struct itself (no arena, nothing to release). Decoders
 * check the length before unpacking and every field's size; a struct the decoder would refuse
 * the encoder refuses with the same error (it decodes what it packed). Errors: KURER_EMALFORMED
 * for a missing body, a wrong fixed size, a bad user name, an unknown state; KURER_ELIMIT for
 * input or a field over its bound; KURER_EVERSION for a hello of another version. The request's,
 * chain's and certificates' bytes are checked by their own decoders (certmsg.h) where used. */
#ifndef KURER_ENROL_H
#define KURER_ENROL_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/certmsg.h"
#include "kurer/error.h"

#define KURER_ENROL_VERSION     1
#define KURER_ENROL_ID_LEN      16
#define KURER_ENROL_MAC_LEN     32
#define KURER_ENROL_SIG_LEN     64
#define KURER_ENROL_REQUEST_MAX 1024 /* bytes of a SignedCertificateRequest */
#define KURER_ENROL_PAGE        4    /* pending requests per list reply */
/* What one enrolment record may hold: under a relay's pre-authentication record bound. */
#define KURER_ENROL_RECORD_MAX 4592

typedef enum kurer_enrol_body {
    KURER_ENROL_INVITE = 1,
    KURER_ENROL_SUBMIT,
    KURER_ENROL_POLL,
    KURER_ENROL_LIST,
    KURER_ENROL_DECIDE,
} kurer_enrol_body;

typedef enum kurer_enrol_state {
    KURER_ENROL_NONE = 0,
    KURER_ENROL_OPEN,
    KURER_ENROL_WAITING,
    KURER_ENROL_APPROVED,
    KURER_ENROL_REJECTED,
} kurer_enrol_state;

typedef struct kurer_enrol_proof {
    uint8_t authority[KURER_CERT_MAX]; /* SignedCertificate bytes */
    size_t authority_len;
    int64_t time;
    uint8_t signature[KURER_ENROL_SIG_LEN];
} kurer_enrol_proof;

typedef struct kurer_enrol_invitation {
    uint8_t id[KURER_ENROL_ID_LEN];
    uint8_t verifier[KURER_ENROL_MAC_LEN];
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
    int64_t created_at, expires_at;
    uint8_t authority[KURER_CERT_MAX];
    size_t authority_len;
    uint8_t signature[KURER_ENROL_SIG_LEN];
} kurer_enrol_invitation;

/* One request; which fields mean something depends on body. */
typedef struct kurer_enrol_request {
    uint64_t request_id;
    kurer_enrol_body body;
    kurer_enrol_invitation invite;            /* INVITE */
    uint8_t id[KURER_ENROL_ID_LEN];           /* SUBMIT, POLL, DECIDE */
    uint8_t request[KURER_ENROL_REQUEST_MAX]; /* SUBMIT */
    size_t request_len;
    uint8_t mac[KURER_ENROL_MAC_LEN];           /* SUBMIT: relay_mac; POLL: proof */
    uint8_t authority_mac[KURER_ENROL_MAC_LEN]; /* SUBMIT */
    kurer_enrol_proof auth;                     /* LIST, DECIDE */
    int has_after;                              /* LIST */
    uint8_t after[KURER_ENROL_ID_LEN];
    int approve;                          /* DECIDE */
    uint8_t chain[KURER_CHAIN_BYTES_MAX]; /* DECIDE, approved */
    size_t chain_len;
} kurer_enrol_request;

typedef struct kurer_enrol_pending {
    uint8_t id[KURER_ENROL_ID_LEN];
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
    uint8_t request[KURER_ENROL_REQUEST_MAX];
    size_t request_len;
    uint8_t authority_mac[KURER_ENROL_MAC_LEN];
    int64_t submitted_at, expires_at;
} kurer_enrol_pending;

typedef struct kurer_enrol_reply {
    uint64_t request_id;
    int error;
    kurer_enrol_state state;
    uint8_t chain[KURER_CHAIN_BYTES_MAX];
    size_t chain_len;
    kurer_enrol_pending pending[KURER_ENROL_PAGE];
    size_t n_pending;
    int more;
} kurer_enrol_reply;

KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_hello_encode(kurer_buf *out);
/* 0 if data is an EnrolHello of this version. */
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_hello_decode(const uint8_t *data, size_t len);
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_request_encode(const kurer_enrol_request *r,
                                                             kurer_buf *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_request_decode(const uint8_t *data, size_t len,
                                                             kurer_enrol_request *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_reply_encode(const kurer_enrol_reply *r,
                                                           kurer_buf *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_reply_decode(const uint8_t *data, size_t len,
                                                           kurer_enrol_reply *out);

#endif
