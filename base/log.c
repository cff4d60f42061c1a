#include "kurer/log.h"
#include "kurer/buf.h"
#include "kurer/json.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static FILE *log_sink;
static kurer_log_level log_min = KURER_LOG_INFO;
static kurer_log_line_fn log_fn;
static void *log_fn_ud;

void kurer_log_set(FILE *sink, kurer_log_level min)
{
    log_sink = sink;
    log_min = min;
}

void kurer_log_set_fn(kurer_log_line_fn fn, void *ud, kurer_log_level min)
{
    log_fn = fn;
    log_fn_ud = ud;
    log_min = min;
}

kurer_log_level kurer_log_level_get(void)
{
    return log_min;
}

int kurer_log_level_parse(const char *s, kurer_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (kurer_log_level)i;
            return 0;
        }
    return KURER_EINVAL;
}

static int put_str(kurer_buf *b, const char *s)
{
    return kurer_buf_put(b, s, strlen(s));
}

/* Formats the line into mem (2048 bytes); returns its length without the closing "}". */
static size_t format_line(uint8_t *mem, size_t cap, kurer_log_level level, const char *component,
                          const char *event, const kurer_log_field *fields, size_t nfields);

void kurer_log_to(FILE *f, kurer_log_level level, const char *component, const char *event,
                  const kurer_log_field *fields, size_t nfields)
{
    uint8_t mem[2048];
    if (f == NULL || level < KURER_LOG_DEBUG || level >= KURER_LOG_OFF)
        return;
    size_t n = format_line(mem, sizeof(mem), level, component, event, fields, nfields);
    mem[n] = '}';
    mem[n + 1] = '\n';
    fwrite(mem, 1, n + 2, f);
    fflush(f);
}

void kurer_log(kurer_log_level level, const char *component, const char *event,
               const kurer_log_field *fields, size_t nfields)
{
    uint8_t mem[2048];
    if (level < log_min || level >= KURER_LOG_OFF)
        return;
    size_t n = format_line(mem, sizeof(mem), level, component, event, fields, nfields);
    mem[n] = '}';
    kurer_log_line_fn fn = log_fn;
    if (fn != NULL) {
        mem[n + 1] = '\0';
        fn(log_fn_ud, level, (const char *)mem);
        return;
    }
    mem[n + 1] = '\n';
    fwrite(mem, 1, n + 2, log_sink != NULL ? log_sink : stderr);
}

static size_t format_line(uint8_t *mem, size_t cap, kurer_log_level level, const char *component,
                          const char *event, const kurer_log_field *fields, size_t nfields)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char ts[40], num[32];
    kurer_buf b;
    struct timeval tv;
    struct tm tm;
    int rc;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ldZ", (long)(tv.tv_usec / 1000));

    kurer_buf_init_fixed(&b, mem, cap - 2); /* room for "}\n" */
    rc = put_str(&b, "{\"ts\":\"");
    rc = rc ? rc : put_str(&b, ts);
    rc = rc ? rc : put_str(&b, "\",\"level\":\"");
    rc = rc ? rc : put_str(&b, names[level]);
    rc = rc ? rc : put_str(&b, "\",\"component\":");
    rc = rc ? rc : kurer_json_put_string(&b, component);
    rc = rc ? rc : put_str(&b, ",\"event\":");
    rc = rc ? rc : kurer_json_put_string(&b, event);
    for (size_t i = 0; rc == 0 && i < nfields; i++) {
        rc = kurer_buf_put_u8(&b, ',');
        rc = rc ? rc : kurer_json_put_string(&b, fields[i].key);
        rc = rc ? rc : kurer_buf_put_u8(&b, ':');
        if (rc == 0 && fields[i].str != NULL) {
            rc = kurer_json_put_string(&b, fields[i].str);
        } else if (rc == 0) {
            snprintf(num, sizeof(num), "%lld", (long long)fields[i].num);
            rc = put_str(&b, num);
        }
    }
    if (rc != 0) {
        /* Too long: keep what is well-formed up to the event and say so. */
        kurer_buf_reset(&b);
        (void)(put_str(&b, "{\"ts\":\"") || put_str(&b, ts) ||
               put_str(&b, "\",\"level\":\"error\",\"component\":\"log\","
                           "\"event\":\"log_line_too_long\""));
    }
    return b.len;
}
