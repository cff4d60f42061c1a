/* QR codes for enrolment (libqrencode), drawn in a terminal or written as PNG (libpng). A
 * library of its own (kurer_qr), linked by the command-line tools only: neither libkurer nor
 * the relay carries libqrencode or libpng.
 *
 * Both forms have the quiet zone of 4 modules the standard asks for and error correction level
 * M. The terminal form draws two rows of modules per line with the half blocks U+2580 (upper),
 * U+2584 (lower), U+2588 (full) and spaces, between explicit colour codes (black foreground on
 * white background, SGR 30;47, reset at the end of every line): it is the same on a dark and a
 * light terminal, which is why it is only for terminals (the caller checks isatty). */
#ifndef KURER_QR_H
#define KURER_QR_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/error.h"

#define KURER_QR_QUIET     4   /* modules of white around the code */
#define KURER_QR_PNG_SCALE 8   /* pixels per module */
#define KURER_QR_TEXT_MAX  256 /* bytes of text encoded */

/* The modules of text's QR code: *size x *size bytes, 1 for dark, row by row, malloc'd (the
 * caller frees it). KURER_EINVAL for empty text or longer than KURER_QR_TEXT_MAX, KURER_ENOMEM. */
KURER_EXPORT KURER_MUST_CHECK int kurer_qr_modules(const char *text, uint8_t **modules,
                                                   size_t *size);
/* Appends text's QR code for a terminal to out (UTF-8 lines, each ending in a reset and \n). */
KURER_EXPORT KURER_MUST_CHECK int kurer_qr_terminal(const char *text, kurer_buf *out);
/* Writes text's QR code as a PNG (8-bit greyscale, KURER_QR_PNG_SCALE pixels a module) to path
 * with mode (0600 for a secret such as an invitation code, 0644 for a fingerprint; KURER_EINVAL
 * for other bits or one the owner cannot read and write), atomically; an existing file is
 * KURER_EEXIST unless overwrite, a symbolic link at path KURER_EPERM (never followed). */
KURER_EXPORT KURER_MUST_CHECK int kurer_qr_png(const char *text, const char *path, unsigned mode,
                                               int overwrite);

#endif
