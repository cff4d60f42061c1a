/* Kurér error codes: one list, one place.
 *
 * Every function that can fail returns 0 or one of the negative codes below. Each code has a
 * name, a message that is safe to show and log (it never carries data), and a category that
 * bindings and the wire protocol map to their own error types. */
#ifndef KURER_ERROR_H
#define KURER_ERROR_H

#include <stdint.h>

#include "kurer/annot.h"

#if defined(__GNUC__)
#define KURER_MUST_CHECK __attribute__((warn_unused_result))
#define KURER_EXPORT     __attribute__((visibility("default")))
#else
#define KURER_MUST_CHECK
#define KURER_EXPORT
#endif

typedef enum kurer_error_category {
    KURER_CAT_NONE = 0,
    KURER_CAT_USAGE,   /* the caller passed something wrong */
    KURER_CAT_IO,      /* files, sockets */
    KURER_CAT_PROTO,   /* malformed or unexpected bytes */
    KURER_CAT_CRYPTO,  /* a check that involves a key or signature failed */
    KURER_CAT_STORAGE, /* a database refused or failed */
    KURER_CAT_POLICY,  /* well-formed, but not allowed */
    KURER_CAT_AGAIN,   /* temporary: retry later */
} kurer_error_category;

/* X(NAME, value, category, message). Values are stable: they cross the network in error frames
 * and are recorded in logs. Never renumber; only append. */
#define KURER_ERRORS(X)                                                                            \
    X(OK, 0, NONE, "success")                                                                      \
    X(EINVAL, -1, USAGE, "invalid argument")                                                       \
    X(ENOMEM, -2, AGAIN, "out of memory")                                                          \
    X(ELIMIT, -3, POLICY, "a size or count limit was exceeded")                                    \
    X(ETRUNC, -4, PROTO, "input ended too early")                                                  \
    X(EMALFORMED, -5, PROTO, "malformed input")                                                    \
    X(ETRAILING, -6, PROTO, "unexpected bytes after the end of a message")                         \
    X(EVERSION, -7, PROTO, "unsupported version")                                                  \
    X(EIO, -8, IO, "input/output error")                                                           \
    X(ENOENT, -9, IO, "no such file or object")                                                    \
    X(EEXIST, -10, IO, "already exists")                                                           \
    X(EPERM, -11, IO, "permission denied or unsafe file permissions")                              \
    X(ECRYPTO, -12, CRYPTO, "a cryptographic operation failed")                                    \
    X(EDECRYPT, -13, CRYPTO, "decryption or authentication failed")                                \
    X(EBADSIG, -14, CRYPTO, "bad signature")                                                       \
    X(EPASSPHRASE, -15, CRYPTO, "wrong passphrase or key")                                         \
    X(EBADKEY, -16, CRYPTO, "invalid key")                                                         \
    X(EWEAKDH, -17, CRYPTO, "Diffie-Hellman produced an all-zero result")                          \
    X(ESTATE, -18, USAGE, "operation not valid in the current state")                              \
    X(EEXPIRED, -19, POLICY, "certificate expired")                                                \
    X(ENOTYETVALID, -20, POLICY, "certificate not yet valid")                                      \
    X(EISSUER, -21, POLICY, "certificate not issued by the expected issuer")                       \
    X(EROLE, -22, POLICY, "certificate role not allowed here")                                     \
    X(ECLEARANCE, -23, POLICY, "classification level not allowed")                                 \
    X(EREVOKED, -24, POLICY, "certificate revoked")                                                \
    X(EUNTRUSTED, -25, POLICY, "not signed by a trusted root")                                     \
    X(ESTALE, -26, POLICY, "older than what is already known")                                     \
    X(ESUBJECT, -27, POLICY, "subject name not allowed")                                           \
    X(EKEYMISMATCH, -28, POLICY, "key does not match the certificate")                             \
    X(ESTORAGE, -29, STORAGE, "storage error")                                                     \
    X(ECORRUPT, -30, STORAGE, "stored data is corrupt")                                            \
    X(ETIMEOUT, -31, AGAIN, "timed out")                                                           \
    X(ECLOSED, -32, IO, "connection closed")                                                       \
    X(ERATE, -33, AGAIN, "rate limit exceeded")                                                    \
    X(EBUSY, -34, AGAIN, "busy, try again")                                                        \
    X(EUNKNOWNUSER, -35, POLICY, "unknown user")                                                   \
    X(ESTALEDEVICES, -36, POLICY, "device list is stale")                                          \
    X(EDUPLICATE, -37, PROTO, "duplicate")                                                         \
    X(ENOTFOUND, -38, POLICY, "not found")                                                         \
    X(EUNSUPPORTED, -39, USAGE, "not supported")                                                   \
    X(ELINKAGE, -40, USAGE, "libraries are linked in the wrong order or clash")                    \
    X(EINTERNAL, -41, USAGE, "internal error")                                                     \
    X(ERESOLVE, -42, IO, "host name could not be resolved")                                        \
    X(ECONNREFUSED, -43, IO, "connection refused")                                                 \
    X(EUNREACHABLE, -44, IO, "network or host unreachable")                                        \
    X(EHANDSHAKE, -45, IO, "the peer closed the connection during the handshake")                  \
    X(EADDRINUSE, -46, IO, "address already in use")                                               \
    X(ECRLSTALE, -47, POLICY, "revocation list is past its next update")                           \
    X(ELOCKED, -48, AGAIN, "the device home is open in another handle or process")                 \
    X(ECLONED, -49, POLICY, "this device's identity is in use by another copy of this home")       \
    X(EREPLAY, -50, CRYPTO, "replayed: this frame was accepted before")                            \
    X(ETOOOLD, -51, CRYPTO, "too old: the frame's counter is below the replay window")             \
    X(EUNKNOWNKEY, -52, CRYPTO, "no key is held for the frame's key id")                           \
    X(EARMOR, -53, PROTO, "malformed armoured text")                                               \
    X(EARMORLABEL, -54, PROTO, "armoured text has an unknown or mismatched label")                 \
    X(EARMORSUM, -55, PROTO, "armoured text is damaged: its checksum does not match")              \
    X(ECHECKDIGIT, -56, USAGE, "mistyped code: its check character does not match")                \
    X(EINVITE, -57, POLICY, "no such invitation, or the code is wrong")                            \
    X(EINVITEUSED, -58, POLICY, "the invitation has already been used")                            \
    X(EINVITEEXPIRED, -59, POLICY, "the invitation has expired")                                   \
    X(EINVITEMAC, -60, CRYPTO, "the request is not bound to the invitation code (altered?)")       \
    X(EREJECTED, -61, POLICY, "the administrator rejected the request")                            \
    X(ECANCELLED, -62, USAGE, "cancelled by the user")                                             \
    X(EBLOBTAG, -65, CRYPTO, "an attachment chunk failed authentication (altered or reordered)")   \
    X(EBLOBTRUNC, -66, CRYPTO, "an attachment is truncated: its final chunk is missing")           \
    X(EBLOBDIGEST, -67, CRYPTO, "an attachment's digest does not match its pointer")               \
    X(EQUOTA, -68, POLICY, "the device's blob storage quota is used up")                           \
    X(EUNKNOWNGROUP, -69, USAGE, "no such group")                                                  \
    X(ENOTMEMBER, -70, POLICY, "not a member of the group")                                        \
    X(ENOTADMIN, -71, POLICY, "not an admin of the group at the revision the change builds on")    \
    X(EGROUPGAP, -72, AGAIN, "the group change builds on a revision not held yet")

typedef enum kurer_err {
#define KURER__ERR_ENUM(name, value, cat, msg) KURER_##name = (value),
    KURER_ERRORS(KURER__ERR_ENUM)
#undef KURER__ERR_ENUM
} kurer_err;

KURER_ASSUME_NONNULL_BEGIN

/* The message for an error code; never NULL. Unknown codes give "unknown error". */
KURER_EXPORT const char *kurer_strerror(int err);
/* The symbolic name ("EINVAL"); never NULL. */
KURER_EXPORT const char *kurer_err_name(int err);
/* The category of an error code; KURER_CAT_NONE for 0 and unknown codes. */
KURER_EXPORT kurer_error_category kurer_err_category(int err);
/* True if err is one of the codes above. Used when decoding error codes from the wire. */
KURER_EXPORT int kurer_err_known(int err);

KURER_ASSUME_NONNULL_END

#endif
