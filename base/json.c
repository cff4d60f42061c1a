#include "kurer/json.h"

#include <stdio.h>
#include <string.h>

#include "kurer/text.h"

int kurer_json_put_string(kurer_buf *b, const char *str)
{
    const char *s = str;
    size_t start = b->len;
    int rc = kurer_buf_put_u8(b, '"');
    while (rc == 0 && *s != '\0') {
        uint32_t cp = 0;
        size_t n = kurer_utf8_decode(s, &cp);
        char e[8];
        if (n == 0) {
            rc = kurer_buf_put(b, "\\ufffd", 6);
            s++;
            continue;
        }
        if (cp == '"' || cp == '\\') {
            e[0] = '\\';
            e[1] = (char)cp;
            rc = kurer_buf_put(b, e, 2);
        } else if (cp == '\n') {
            rc = kurer_buf_put(b, "\\n", 2);
        } else if (kurer_text_unsafe(cp)) {
            snprintf(e, sizeof(e), "\\u%04x", (unsigned)cp);
            rc = kurer_buf_put(b, e, 6);
        } else {
            rc = kurer_buf_put(b, s, n);
        }
        s += n;
    }
    if (rc == 0)
        rc = kurer_buf_put_u8(b, '"');
    if (rc != 0)
        b->len = start; /* all of the string or nothing */
    return rc;
}

void kurer_json_init(kurer_json *j, kurer_buf *out)
{
    memset(j, 0, sizeof(*j));
    j->out = out;
}

void kurer_json_init_members(kurer_json *j, kurer_buf *out)
{
    kurer_json_init(j, out);
    j->depth = 1;
    j->objects = j->items = 1u << 1;
}

static void put(kurer_json *j, const void *p, size_t n)
{
    if (j->err == 0)
        j->err = kurer_buf_put(j->out, p, n);
}

static uint64_t bit(unsigned d)
{
    return (uint64_t)1 << d;
}

/* Before a value: the comma in an array, the check that an object's value has its key. */
static int value_begins(kurer_json *j)
{
    if (j->err != 0)
        return 0;
    if (j->depth == 0)
        return 1;
    if ((j->objects & bit(j->depth)) != 0) {
        if (!j->after_key) {
            j->err = KURER_ESTATE;
            return 0;
        }
        j->after_key = 0;
        return 1;
    }
    if ((j->items & bit(j->depth)) != 0)
        put(j, ",", 1);
    j->items |= bit(j->depth);
    return j->err == 0;
}

static void begin(kurer_json *j, int object)
{
    if (!value_begins(j))
        return;
    if (j->depth + 1 > KURER_JSON_DEPTH_MAX) {
        j->err = KURER_ELIMIT;
        return;
    }
    j->depth++;
    j->items &= ~bit(j->depth);
    if (object)
        j->objects |= bit(j->depth);
    else
        j->objects &= ~bit(j->depth);
    put(j, object ? "{" : "[", 1);
}

static void end(kurer_json *j, int object)
{
    if (j->err != 0)
        return;
    if (j->depth == 0 || j->after_key || ((j->objects & bit(j->depth)) != 0) != object) {
        j->err = KURER_ESTATE;
        return;
    }
    j->depth--;
    put(j, object ? "}" : "]", 1);
}

void kurer_json_begin_object(kurer_json *j)
{
    begin(j, 1);
}

void kurer_json_end_object(kurer_json *j)
{
    end(j, 1);
}

void kurer_json_begin_array(kurer_json *j)
{
    begin(j, 0);
}

void kurer_json_end_array(kurer_json *j)
{
    end(j, 0);
}

void kurer_json_key(kurer_json *j, const char *key)
{
    if (j->err != 0)
        return;
    if (j->depth == 0 || (j->objects & bit(j->depth)) == 0 || j->after_key) {
        j->err = KURER_ESTATE;
        return;
    }
    if ((j->items & bit(j->depth)) != 0)
        put(j, ",", 1);
    j->items |= bit(j->depth);
    if (j->err == 0)
        j->err = kurer_json_put_string(j->out, key);
    put(j, ":", 1);
    j->after_key = 1;
}

void kurer_json_str(kurer_json *j, const char *s)
{
    if (value_begins(j))
        j->err = kurer_json_put_string(j->out, s);
}

void kurer_json_int(kurer_json *j, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    if (value_begins(j))
        put(j, tmp, (size_t)n);
}

void kurer_json_uint(kurer_json *j, uint64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    if (value_begins(j))
        put(j, tmp, (size_t)n);
}

void kurer_json_bool(kurer_json *j, int v)
{
    if (value_begins(j))
        put(j, v ? "true" : "false", v ? 4 : 5);
}

void kurer_json_null(kurer_json *j)
{
    if (value_begins(j))
        put(j, "null", 4);
}

void kurer_json_raw(kurer_json *j, const void *json, size_t n)
{
    if (value_begins(j))
        put(j, json, n);
}

void kurer_json_kv_str(kurer_json *j, const char *key, const char *s)
{
    kurer_json_key(j, key);
    kurer_json_str(j, s);
}

void kurer_json_kv_int(kurer_json *j, const char *key, int64_t v)
{
    kurer_json_key(j, key);
    kurer_json_int(j, v);
}

void kurer_json_kv_uint(kurer_json *j, const char *key, uint64_t v)
{
    kurer_json_key(j, key);
    kurer_json_uint(j, v);
}

void kurer_json_kv_bool(kurer_json *j, const char *key, int v)
{
    kurer_json_key(j, key);
    kurer_json_bool(j, v);
}

int kurer_json_error(const kurer_json *j)
{
    return j->err;
}
