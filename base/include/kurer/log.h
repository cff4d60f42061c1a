/* Structured logs: one JSON object per line.
 *
 * Log what happened and to whom in routing terms (device address, sizes, reasons), never
 * message content, keys or passphrases: the field helpers take no byte buffers on purpose.
 * The process-wide sink is set once at start-up, before threads; writing is thread-safe
 * (one fwrite of a whole line). */
#ifndef KURER_LOG_H
#define KURER_LOG_H

#include <stdint.h>
#include <stdio.h>

#include "kurer/error.h"

typedef enum kurer_log_level {
    KURER_LOG_DEBUG = 0,
    KURER_LOG_INFO = 1,
    KURER_LOG_WARN = 2,
    KURER_LOG_ERROR = 3,
    KURER_LOG_OFF = 4,
} kurer_log_level;

typedef struct kurer_log_field {
    const char *key;
    const char *str; /* a string value, or NULL for the integer */
    int64_t num;
} kurer_log_field;

/* NULL logs as "". A function, not a ?: in the macro, so that string literals are not compared
 * with NULL at every call site. */
static inline const char *kurer__log_nonnull(const char *s)
{
    return s != NULL ? s : "";
}
#define KURER_LOG_STR(k, v) ((kurer_log_field){(k), kurer__log_nonnull(v), 0})
#define KURER_LOG_INT(k, v) ((kurer_log_field){(k), NULL, (int64_t)(v)})

/* Where logs go (default: stderr) and from which level (default: INFO). */
KURER_EXPORT void kurer_log_set(FILE *sink, kurer_log_level min);
/* Or: each line (a JSON object, no newline, borrowed for the call) to fn, on the thread that
 * logs; fn NULL: back to the FILE sink. Set before threads, like the sink. */
typedef void (*kurer_log_line_fn)(void *ud, kurer_log_level level, const char *line);
KURER_EXPORT void kurer_log_set_fn(kurer_log_line_fn fn, void *ud, kurer_log_level min);
KURER_EXPORT kurer_log_level kurer_log_level_get(void);
/* Parses "debug", "info", "warn", "error", "off". */
KURER_EXPORT KURER_MUST_CHECK int kurer_log_level_parse(const char *s, kurer_log_level *out);
/* The same line, to f (a log of its own, such as the relay's audit log), whatever the sink and
 * level of the process-wide log. One fwrite and an fflush per line. */
KURER_EXPORT void kurer_log_to(FILE *f, kurer_log_level level, const char *component,
                               const char *event, const kurer_log_field *fields, size_t nfields);
/* Writes {"ts":"…","level":"…","component":"…","event":"…", fields…} as one line. */
KURER_EXPORT void kurer_log(kurer_log_level level, const char *component, const char *event,
                            const kurer_log_field *fields, size_t nfields);

#endif
