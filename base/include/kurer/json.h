/* The JSON writer of the command-line programs and the log.
 *
 * Strings are escaped for JSON and for the terminal the JSON may land on: '"' and '\\', a
 * newline as \n, every code point kurer_text_unsafe() names (C0 and C1 controls, DEL, line
 * separators, bidirectional controls) as \uXXXX, and each byte that is not UTF-8 as \ufffd.
 * So the output is always valid JSON, valid UTF-8, and safe to print.
 *
 * A kurer_json writes one value (an object, an array, or a scalar) into a kurer_buf, putting
 * the commas and colons itself. Errors are sticky: after the first failed write (the buffer's
 * limit, out of memory) nothing more is written, and kurer_json_error says why. Nesting is
 * at most KURER_JSON_DEPTH_MAX deep. Not thread-safe; a writer belongs to one thread. */
#ifndef KURER_JSON_H
#define KURER_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/error.h"

#define KURER_JSON_DEPTH_MAX 32

typedef struct kurer_json {
    kurer_buf *out;
    int err;
    unsigned depth;
    uint64_t objects; /* bit d: the container at depth d is an object (else an array) */
    uint64_t items;   /* bit d: the container at depth d holds an item already */
    int after_key;    /* a key was written: the next value is its value */
} kurer_json;

/* A writer that appends one JSON value to out (borrowed; the caller releases it). */
KURER_EXPORT void kurer_json_init(kurer_json *j, kurer_buf *out);
/* A writer of members that go after others in an object written elsewhere: every key is
 * written with a leading comma, and no end is written ("," "k" ":" v "," ...). */
KURER_EXPORT void kurer_json_init_members(kurer_json *j, kurer_buf *out);

KURER_EXPORT void kurer_json_begin_object(kurer_json *j);
KURER_EXPORT void kurer_json_end_object(kurer_json *j);
KURER_EXPORT void kurer_json_begin_array(kurer_json *j);
KURER_EXPORT void kurer_json_end_array(kurer_json *j);
/* In an object: the key of the next value. */
KURER_EXPORT void kurer_json_key(kurer_json *j, const char *key);
KURER_EXPORT void kurer_json_str(kurer_json *j, const char *s);
KURER_EXPORT void kurer_json_int(kurer_json *j, int64_t v);
KURER_EXPORT void kurer_json_uint(kurer_json *j, uint64_t v);
KURER_EXPORT void kurer_json_bool(kurer_json *j, int v);
KURER_EXPORT void kurer_json_null(kurer_json *j);
/* A whole value another writer made (n bytes of JSON, copied as they are). */
KURER_EXPORT void kurer_json_raw(kurer_json *j, const void *json, size_t n);

/* Key and value in one call. */
KURER_EXPORT void kurer_json_kv_str(kurer_json *j, const char *key, const char *s);
KURER_EXPORT void kurer_json_kv_int(kurer_json *j, const char *key, int64_t v);
KURER_EXPORT void kurer_json_kv_uint(kurer_json *j, const char *key, uint64_t v);
KURER_EXPORT void kurer_json_kv_bool(kurer_json *j, const char *key, int v);

/* 0, or the first error: that of kurer_buf_put, or KURER_ELIMIT for nesting too deep,
 * KURER_ESTATE for a call out of place (a value without a key in an object, an end without a
 * begin). */
KURER_EXPORT KURER_MUST_CHECK int kurer_json_error(const kurer_json *j);

/* Appends s as a quoted, escaped JSON string to b: the escaper every writer uses. 0, or the
 * error of kurer_buf_put with b as it was. */
KURER_EXPORT KURER_MUST_CHECK int kurer_json_put_string(kurer_buf *b, const char *s);

#endif
