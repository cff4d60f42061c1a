/* Armoured text: certificate requests, chains, certificates and revocation lists as base64
 * between BEGIN and END lines, which mail and chat carry without damage.
 *
 *   -----BEGIN KURER CERTIFICATE REQUEST-----
 *   <base64 of the binary file, standard alphabet with padding, 64 characters a line>
 *   =<4 base64 characters: the first 3 bytes of BLAKE2b-256("kurer armor v1" || label || data)>
 *   -----END KURER CERTIFICATE REQUEST-----
 *
 * The checksum line catches text damaged in transit (a wrong character, a line lost) with a
 * typed error before the bytes reach a decoder; it is not a security check (the contents carry
 * their own signatures). Lines end in LF or CRLF; blank lines and spaces before BEGIN and
 * whitespace after END are allowed, anything else is not. Base64 is libsodium's
 * (sodium_bin2base64 / sodium_base642bin). Format: docs/protocol.md, "Armoured text". */
#ifndef KURER_ARMOR_H
#define KURER_ARMOR_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/error.h"

typedef enum kurer_armor_kind {
    KURER_ARMOR_NONE = 0,
    KURER_ARMOR_REQUEST,     /* "CERTIFICATE REQUEST" */
    KURER_ARMOR_CHAIN,       /* "CERTIFICATE CHAIN" */
    KURER_ARMOR_CERTIFICATE, /* "CERTIFICATE" */
    KURER_ARMOR_CRL,         /* "REVOCATION LIST" */
} kurer_armor_kind;

#define KURER_ARMOR_LINE 64 /* base64 characters per line */
/* The largest binary file armoured or dearmoured (the largest revocation list, and more). */
#define KURER_ARMOR_DATA_MAX ((size_t)8 * 1024 * 1024)

/* "CERTIFICATE REQUEST", ...; NULL for KURER_ARMOR_NONE and unknown values. */
KURER_EXPORT const char *kurer_armor_label(kurer_armor_kind kind);
/* 1 if d (after blank lines and spaces) begins with "-----BEGIN KURER ": armoured text, to be
 * given to kurer_armor_decode; 0 for anything else (a binary file). */
KURER_EXPORT int kurer_armor_is(const uint8_t *d, size_t n);
/* Appends the armoured form of the n bytes at d (1..KURER_ARMOR_DATA_MAX) to out, with a final
 * newline. KURER_EINVAL for an unknown kind or empty data, KURER_ELIMIT if it does not fit. */
KURER_EXPORT KURER_MUST_CHECK int kurer_armor_encode(kurer_armor_kind kind, const uint8_t *d,
                                                     size_t n, kurer_buf *out);
/* Decodes armoured text into out (reset first) and its kind. Errors: KURER_EARMOR (no BEGIN
 * line, a line too long or in the wrong place, bad base64, no checksum or END line, or
 * anything but whitespace after END), KURER_EARMORLABEL (a label this version does not know,
 * or END naming another than BEGIN), KURER_EARMORSUM (the checksum does not match),
 * KURER_ELIMIT (more than KURER_ARMOR_DATA_MAX bytes). out is empty on failure. */
KURER_EXPORT KURER_MUST_CHECK int kurer_armor_decode(const uint8_t *d, size_t n, kurer_buf *out,
                                                     kurer_armor_kind *kind);
/* For readers of files that may be binary or armoured: if *d (of *n bytes, malloc'd) is
 * armoured, it is replaced by the decoded bytes (the old buffer freed) and *kind says what the
 * label was; else nothing changes and *kind is KURER_ARMOR_NONE. On failure *d is unchanged. */
KURER_EXPORT KURER_MUST_CHECK int kurer_armor_unwrap(uint8_t **d, size_t *n,
                                                     kurer_armor_kind *kind);

#endif
