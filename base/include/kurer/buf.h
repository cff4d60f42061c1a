/* Bounds-checked byte reader and writer.
 *
 * Every parser of bytes that come from outside the process reads them through a kurer_reader.
 * Invariants (checked by the functions, not assumed by callers):
 *   reader: off <= len; a read that would pass len fails with KURER_ETRUNC and leaves the
 *           cursor where it was, so a failed parse never consumes half a field.
 *   writer: len <= cap <= max; a write that would pass max fails with KURER_ELIMIT and leaves
 *           the buffer unchanged.
 * Neither is thread-safe; each belongs to one thread at a time. */
#ifndef KURER_BUF_H
#define KURER_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/error.h"

/* No writer may hold more than this, whatever max it was given. */
#define KURER_BUF_HARD_MAX ((size_t)64 * 1024 * 1024)

typedef struct kurer_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
} kurer_reader;

/* Borrow len bytes at data; the reader never writes or frees them. */
KURER_EXPORT void kurer_reader_init(kurer_reader *r, const void *data, size_t len);
KURER_EXPORT size_t kurer_reader_remaining(const kurer_reader *r);
/* The unread bytes (valid while the underlying data lives). */
KURER_EXPORT const uint8_t *kurer_reader_ptr(const kurer_reader *r);

KURER_EXPORT KURER_MUST_CHECK int kurer_reader_u8(kurer_reader *r, uint8_t *v);
KURER_EXPORT KURER_MUST_CHECK int kurer_reader_u16be(kurer_reader *r, uint16_t *v);
KURER_EXPORT KURER_MUST_CHECK int kurer_reader_u32be(kurer_reader *r, uint32_t *v);
KURER_EXPORT KURER_MUST_CHECK int kurer_reader_u64be(kurer_reader *r, uint64_t *v);
/* A little-endian base-128 varint of at most 10 bytes. Over-long encodings and values above
 * 2^64-1 are KURER_EMALFORMED. */
KURER_EXPORT KURER_MUST_CHECK int kurer_reader_varint(kurer_reader *r, uint64_t *v);
/* A view of the next n bytes; *out points into the reader's data. */
KURER_EXPORT KURER_MUST_CHECK int kurer_reader_view(kurer_reader *r, size_t n, const uint8_t **out);
KURER_EXPORT KURER_MUST_CHECK int kurer_reader_copy(kurer_reader *r, void *dst, size_t n);
KURER_EXPORT KURER_MUST_CHECK int kurer_reader_skip(kurer_reader *r, size_t n);
/* A 16- or 32-bit big-endian length, then that many bytes. A length above max is
 * KURER_ELIMIT (checked before anything else is read). */
KURER_EXPORT KURER_MUST_CHECK int kurer_reader_lv16(kurer_reader *r, size_t max,
                                                    const uint8_t **out, size_t *n);
KURER_EXPORT KURER_MUST_CHECK int kurer_reader_lv32(kurer_reader *r, size_t max,
                                                    const uint8_t **out, size_t *n);
/* KURER_ETRAILING unless every byte has been read. */
KURER_EXPORT KURER_MUST_CHECK int kurer_reader_end(const kurer_reader *r);

typedef struct kurer_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max;
    unsigned fixed : 1;  /* memory belongs to the caller; never grown or freed */
    unsigned secret : 1; /* wiped before it is freed or grown */
} kurer_buf;

/* A growable heap buffer that never holds more than max bytes (capped at KURER_BUF_HARD_MAX).
 * Nothing is allocated until the first write. */
KURER_EXPORT void kurer_buf_init(kurer_buf *b, size_t max);
/* Like kurer_buf_init, but old memory is wiped whenever it is released: for secrets. */
KURER_EXPORT void kurer_buf_init_secret(kurer_buf *b, size_t max);
/* A writer over caller memory of cap bytes; it never grows. */
KURER_EXPORT void kurer_buf_init_fixed(kurer_buf *b, void *mem, size_t cap);
/* Frees heap memory (wiping it first for secret buffers) and resets to empty. NULL-safe. */
KURER_EXPORT void kurer_buf_release(kurer_buf *b);
/* Empties the buffer, keeping its memory. */
KURER_EXPORT void kurer_buf_reset(kurer_buf *b);
/* Drops the first n bytes (n <= len), moving the rest to the front. */
KURER_EXPORT void kurer_buf_consume(kurer_buf *b, size_t n);
/* Hands the heap memory to the caller (who frees it with free()) and resets the buffer.
 * Returns NULL for an empty or fixed buffer. */
KURER_EXPORT uint8_t *kurer_buf_steal(kurer_buf *b, size_t *len);

/* Appends n bytes and returns a pointer to them for the caller to fill. */
KURER_EXPORT KURER_MUST_CHECK int kurer_buf_reserve(kurer_buf *b, size_t n, uint8_t **out);
KURER_EXPORT KURER_MUST_CHECK int kurer_buf_put(kurer_buf *b, const void *data, size_t n);
KURER_EXPORT KURER_MUST_CHECK int kurer_buf_put_u8(kurer_buf *b, uint8_t v);
KURER_EXPORT KURER_MUST_CHECK int kurer_buf_put_u16be(kurer_buf *b, uint16_t v);
KURER_EXPORT KURER_MUST_CHECK int kurer_buf_put_u32be(kurer_buf *b, uint32_t v);
KURER_EXPORT KURER_MUST_CHECK int kurer_buf_put_u64be(kurer_buf *b, uint64_t v);
KURER_EXPORT KURER_MUST_CHECK int kurer_buf_put_varint(kurer_buf *b, uint64_t v);
/* A 16/32-bit big-endian length, then the bytes. KURER_ELIMIT if n does not fit the prefix. */
KURER_EXPORT KURER_MUST_CHECK int kurer_buf_put_lv16(kurer_buf *b, const void *data, size_t n);
KURER_EXPORT KURER_MUST_CHECK int kurer_buf_put_lv32(kurer_buf *b, const void *data, size_t n);

/* Wipes n bytes in a way the compiler may not remove. */
KURER_EXPORT void kurer_wipe(void *p, size_t n);

#endif
