/* Small helpers every module needs: hex, clocks, whole-file I/O with limits. */
#ifndef KURER_UTIL_H
#define KURER_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/error.h"

/* Lower-case hex of n bytes into out (2n+1 bytes with the NUL). Runs in time that depends only
 * on n, so it may encode keys. */
KURER_EXPORT void kurer_hex_encode(char *out, const void *in, size_t n);
/* Decodes exactly 2*n hex digits (either case) from a NUL-terminated string into n bytes.
 * KURER_EMALFORMED for a wrong length or a non-hex digit; out is zeroed on failure. */
KURER_EXPORT KURER_MUST_CHECK int kurer_hex_decode(void *out, size_t n, const char *hex);

/* Wall-clock time (for certificates, timestamps on the wire) and a monotonic clock (deadlines). */
KURER_EXPORT int64_t kurer_time_unix(void);
KURER_EXPORT uint64_t kurer_time_mono_ms(void);
KURER_EXPORT uint64_t kurer_time_mono_ns(void);
/* Formats a Unix time as UTC ISO 8601 ("2026-11-28T23:55:51Z") into out (at least 21 bytes). */
KURER_EXPORT void kurer_time_format(char *out, size_t outlen, int64_t t);

/* Reads a whole file of at most max bytes. *data (malloc'ed, owned by the caller, NUL-terminated
 * one past *len for convenience) only on success. KURER_ELIMIT if larger than max. */
KURER_EXPORT KURER_MUST_CHECK int kurer_file_read(const char *path, size_t max, uint8_t **data,
                                                  size_t *len);
/* Writes a file atomically (temporary file, fsync, rename, fsync of the folder) with the given
 * mode. With overwrite == 0 an existing file is KURER_EEXIST and nothing is written.
 * KURER_EUNSUPPORTED if the file system cannot set the mode (FAT and the like). */
KURER_EXPORT KURER_MUST_CHECK int kurer_file_write(const char *path, const void *data, size_t len,
                                                   unsigned mode, int overwrite);
/* KURER_ENOENT if missing, 0 if it exists. */
KURER_EXPORT int kurer_file_exists(const char *path);
/* Joins dir and name into out; KURER_ELIMIT if it does not fit. */
KURER_EXPORT KURER_MUST_CHECK int kurer_path_join(char *out, size_t outlen, const char *dir,
                                                  const char *name);

/* Parses a decimal unsigned integer that fits in max; the whole string must be digits. */
KURER_EXPORT KURER_MUST_CHECK int kurer_parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif
