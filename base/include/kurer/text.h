/* Text from outside shown to people: UTF-8 decoding, the code points that are never shown raw,
 * and the one-line form that is safe on a terminal.
 *
 * Message bodies, names and file names may come from a peer or a file: printed raw, an escape
 * sequence (ESC, or the 8-bit CSI and NEL that terminals act on as C1 controls), a newline or a
 * bidirectional override can clear a screen, fake a line or reorder what a line shows. Every
 * program prints such text through this file (terminal) or kurer/json.h (JSON), which escape
 * the same set. Thread-safe: no state. */
#ifndef KURER_TEXT_H
#define KURER_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kurer/buf.h"
#include "kurer/error.h"

/* Decodes one UTF-8 sequence at s (NUL-terminated, or at least 4 readable bytes): its length
 * (1..4) with *cp, or 0 if the byte at s does not start a valid, shortest-form sequence of a
 * scalar value (overlong forms, surrogates, values above U+10FFFF, stray continuation bytes,
 * a sequence cut short by the NUL). */
KURER_EXPORT size_t kurer_utf8_decode(const char *s, uint32_t *cp);
/* 0 if the NUL-terminated s is valid UTF-8, else KURER_EMALFORMED. */
KURER_EXPORT KURER_MUST_CHECK int kurer_utf8_check(const char *s);

/* 1 for the code points never shown raw: C0 controls and DEL, C1 controls (U+0080..U+009F),
 * the line and paragraph separators (U+2028, U+2029) and the bidirectional controls
 * (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069). */
KURER_EXPORT int kurer_text_unsafe(uint32_t cp);

/* Appends s in its terminal form to b: one line, nothing that acts on a terminal. A backslash
 * is doubled, a newline is \n, other unsafe code points below U+0080 are \xNN and the rest
 * \u{XXXX}, each byte that is not UTF-8 is \xNN. Valid, safe text is unchanged. 0, or the
 * error of kurer_buf_put (b then holds a prefix that ends at a whole escape). The output is at
 * most 4 bytes per input byte (KURER_TEXT_TERM_MAX). */
KURER_EXPORT KURER_MUST_CHECK int kurer_text_put_term(kurer_buf *b, const char *s);
#define KURER_TEXT_TERM_MAX(n) (4 * (n) + 1) /* bytes with the NUL for n bytes of input */
/* The terminal form of s in out (cap bytes with the NUL; cut at a whole escape if it does not
 * fit). Returns out, so that it can be an argument of printf. */
KURER_EXPORT const char *kurer_text_term(char *out, size_t cap, const char *s);
/* Writes the terminal form of s to f. 0 or KURER_EIO. */
KURER_EXPORT int kurer_text_fput_term(FILE *f, const char *s);

#endif
