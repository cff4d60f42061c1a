#include "kurer/text.h"

#include <stdio.h>
#include <string.h>

size_t kurer_utf8_decode(const char *str, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

int kurer_utf8_check(const char *s)
{
    while (*s != '\0') {
        uint32_t cp;
        size_t n = kurer_utf8_decode(s, &cp);
        if (n == 0)
            return KURER_EMALFORMED;
        s += n;
    }
    return 0;
}

int kurer_text_unsafe(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
           cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

int kurer_text_put_term(kurer_buf *b, const char *s)
{
    int rc = 0;
    while (rc == 0 && *s != '\0') {
        uint32_t cp = 0;
        size_t n = kurer_utf8_decode(s, &cp);
        char e[16];
        if (n == 0) {
            snprintf(e, sizeof(e), "\\x%02x", (unsigned char)*s);
            rc = kurer_buf_put(b, e, 4);
            s++;
            continue;
        }
        if (cp == '\\')
            rc = kurer_buf_put(b, "\\\\", 2);
        else if (cp == '\n')
            rc = kurer_buf_put(b, "\\n", 2);
        else if (kurer_text_unsafe(cp) && cp < 0x80)
            rc = kurer_buf_put(b, e, (size_t)snprintf(e, sizeof(e), "\\x%02x", (unsigned)cp));
        else if (kurer_text_unsafe(cp))
            rc = kurer_buf_put(b, e, (size_t)snprintf(e, sizeof(e), "\\u{%04x}", (unsigned)cp));
        else
            rc = kurer_buf_put(b, s, n);
        s += n;
    }
    return rc;
}

const char *kurer_text_term(char *out, size_t cap, const char *s)
{
    kurer_buf b;
    if (cap == 0)
        return out;
    kurer_buf_init_fixed(&b, out, cap - 1);
    int rc = kurer_text_put_term(&b, s); /* ELIMIT: cut short, what fits, at a whole escape */
    (void)rc;
    out[b.len] = '\0';
    return out;
}

int kurer_text_fput_term(FILE *f, const char *s)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_BUF_HARD_MAX);
    int rc = kurer_text_put_term(&b, s);
    if (rc == 0 && b.len > 0 && fwrite(b.data, 1, b.len, f) != b.len)
        rc = KURER_EIO;
    kurer_buf_release(&b);
    return rc;
}
