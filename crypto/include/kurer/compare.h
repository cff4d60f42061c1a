/* What people compare aloud or by eye during enrolment: a short code for an identity key, and
 * a request's fingerprint.
 *
 * Comparison code: h = BLAKE2b-256("kurer comparison code v1" || 0x00 || identity key, 33 bytes
 * with its 0x05 type byte); the first 8 bytes of h as a big-endian integer, modulo 10^12, as 12
 * decimal digits in three groups of four ("0417 9921 3380"). 12 digits are about 40 bits: enough
 * for a person to notice a substituted key while comparing it with the user (an attacker would
 * need ~2^39 key pairs per attempt to match one), not a substitute for the certificate. The
 * bias of the modulo is below 10^-7. Known-answer vectors: tests/unit/crypto/test_compare.c.
 *
 * Request fingerprint: BLAKE2b-256 of the binary certificate request (the device.csr file,
 * or the bytes of its armoured form), in hex; its QR code holds "KURER-REQUEST:" and the 64
 * hex digits in upper case (QR alphanumeric mode). */
#ifndef KURER_COMPARE_H
#define KURER_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/error.h"

#ifndef KURER_COMPARISON_CODE_LEN
#define KURER_COMPARISON_CODE_LEN 14 /* "dddd dddd dddd" (kurer.h says it too) */
#endif
#define KURER_REQUEST_QR_PREFIX "KURER-REQUEST:"
#define KURER_REQUEST_QR_LEN    (sizeof(KURER_REQUEST_QR_PREFIX) - 1 + 64)

/* The comparison code of a 33-byte identity key, NUL-terminated. */
KURER_EXPORT void kurer_comparison_code(const uint8_t identity_key[33],
                                        char out[KURER_COMPARISON_CODE_LEN + 1]);
/* The fingerprint of a binary certificate request in lower-case hex, and the text of its QR
 * code (KURER_REQUEST_QR_PREFIX and the fingerprint in upper case), both NUL-terminated. */
KURER_EXPORT void kurer_request_fingerprint(const uint8_t *csr, size_t n, char hex[65],
                                            char qr[KURER_REQUEST_QR_LEN + 1]);

#endif
