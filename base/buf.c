#include "kurer/buf.h"

#include <stdlib.h>
#include <string.h>

void kurer_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        explicit_bzero(p, n);
}

void kurer_reader_init(kurer_reader *r, const void *data, size_t len)
{
    r->p = data;
    r->len = data != NULL ? len : 0;
    r->off = 0;
}

size_t kurer_reader_remaining(const kurer_reader *r)
{
    return r->len - r->off;
}

const uint8_t *kurer_reader_ptr(const kurer_reader *r)
{
    return r->p != NULL ? r->p + r->off : NULL;
}

int kurer_reader_view(kurer_reader *r, size_t n, const uint8_t **out)
{
    *out = NULL;
    if (n > r->len - r->off)
        return KURER_ETRUNC;
    *out = r->p + r->off;
    r->off += n;
    return 0;
}

int kurer_reader_copy(kurer_reader *r, void *dst, size_t n)
{
    const uint8_t *p;
    int rc = kurer_reader_view(r, n, &p);
    if (rc == 0 && n > 0)
        memcpy(dst, p, n);
    return rc;
}

int kurer_reader_skip(kurer_reader *r, size_t n)
{
    const uint8_t *p;
    return kurer_reader_view(r, n, &p);
}

int kurer_reader_u8(kurer_reader *r, uint8_t *v)
{
    const uint8_t *p;
    int rc = kurer_reader_view(r, 1, &p);
    *v = rc == 0 ? p[0] : 0;
    return rc;
}

int kurer_reader_u16be(kurer_reader *r, uint16_t *v)
{
    const uint8_t *p;
    int rc = kurer_reader_view(r, 2, &p);
    *v = rc == 0 ? (uint16_t)((unsigned)p[0] << 8 | p[1]) : 0;
    return rc;
}

int kurer_reader_u32be(kurer_reader *r, uint32_t *v)
{
    const uint8_t *p;
    int rc = kurer_reader_view(r, 4, &p);
    *v = rc == 0 ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
    return rc;
}

int kurer_reader_u64be(kurer_reader *r, uint64_t *v)
{
    const uint8_t *p;
    int rc = kurer_reader_view(r, 8, &p);
    *v = 0;
    if (rc == 0)
        for (int i = 0; i < 8; i++)
            *v = *v << 8 | p[i];
    return rc;
}

int kurer_reader_varint(kurer_reader *r, uint64_t *v)
{
    uint64_t x = 0;
    size_t avail = r->len - r->off;
    *v = 0;
    for (size_t i = 0; i < 10; i++) {
        if (i >= avail)
            return KURER_ETRUNC;
        uint8_t byte = r->p[r->off + i];
        if (i == 9 && byte > 1)
            return KURER_EMALFORMED; /* more than 64 bits */
        x |= (uint64_t)(byte & 0x7f) << (7 * i);
        if ((byte & 0x80) == 0) {
            if (byte == 0 && i > 0)
                return KURER_EMALFORMED; /* over-long: a trailing zero group */
            r->off += i + 1;
            *v = x;
            return 0;
        }
    }
    return KURER_EMALFORMED;
}

static int reader_lv(kurer_reader *r, size_t width, size_t max, const uint8_t **out, size_t *n)
{
    size_t saved = r->off;
    size_t len;
    int rc;
    *out = NULL;
    *n = 0;
    if (width == 2) {
        uint16_t l16;
        rc = kurer_reader_u16be(r, &l16);
        len = l16;
    } else {
        uint32_t l32;
        rc = kurer_reader_u32be(r, &l32);
        len = l32;
    }
    if (rc == 0 && len > max)
        rc = KURER_ELIMIT;
    if (rc == 0)
        rc = kurer_reader_view(r, len, out);
    if (rc != 0) {
        r->off = saved;
        *out = NULL;
        return rc;
    }
    *n = len;
    return 0;
}

int kurer_reader_lv16(kurer_reader *r, size_t max, const uint8_t **out, size_t *n)
{
    return reader_lv(r, 2, max, out, n);
}

int kurer_reader_lv32(kurer_reader *r, size_t max, const uint8_t **out, size_t *n)
{
    return reader_lv(r, 4, max, out, n);
}

int kurer_reader_end(const kurer_reader *r)
{
    return r->off == r->len ? 0 : KURER_ETRAILING;
}

void kurer_buf_init(kurer_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max < KURER_BUF_HARD_MAX ? max : KURER_BUF_HARD_MAX;
}

void kurer_buf_init_secret(kurer_buf *b, size_t max)
{
    kurer_buf_init(b, max);
    b->secret = 1;
}

void kurer_buf_init_fixed(kurer_buf *b, void *mem, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->data = mem;
    b->cap = cap;
    b->max = cap;
    b->fixed = 1;
}

void kurer_buf_release(kurer_buf *b)
{
    if (b == NULL)
        return;
    if (!b->fixed) {
        if (b->secret)
            kurer_wipe(b->data, b->cap);
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    } else if (b->secret) {
        kurer_wipe(b->data, b->len);
    }
    b->len = 0;
}

void kurer_buf_reset(kurer_buf *b)
{
    if (b->secret)
        kurer_wipe(b->data, b->len);
    b->len = 0;
}

void kurer_buf_consume(kurer_buf *b, size_t n)
{
    if (n >= b->len) {
        kurer_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    if (b->secret)
        kurer_wipe(b->data + b->len, n);
}

uint8_t *kurer_buf_steal(kurer_buf *b, size_t *len)
{
    uint8_t *p = NULL;
    *len = 0;
    if (b->fixed || b->len == 0)
        return NULL;
    p = b->data;
    *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

static int buf_grow(kurer_buf *b, size_t need)
{
    size_t ncap;
    uint8_t *nd;
    if (need <= b->cap)
        return 0;
    if (b->fixed || need > b->max)
        return KURER_ELIMIT;
    ncap = b->cap < 64 ? 64 : b->cap;
    while (ncap < need)
        ncap = ncap > b->max / 2 ? b->max : ncap * 2;
    if (b->secret) {
        /* realloc could leave a copy of the secret behind; move it by hand. */
        nd = malloc(ncap);
        if (nd == NULL)
            return KURER_ENOMEM;
        if (b->len > 0)
            memcpy(nd, b->data, b->len);
        kurer_wipe(b->data, b->cap);
        free(b->data);
    } else {
        nd = realloc(b->data, ncap);
        if (nd == NULL)
            return KURER_ENOMEM;
    }
    b->data = nd;
    b->cap = ncap;
    return 0;
}

int kurer_buf_reserve(kurer_buf *b, size_t n, uint8_t **out)
{
    int rc;
    *out = NULL;
    if (n > b->max - b->len)
        return KURER_ELIMIT;
    if (n == 0)
        return 0; /* nothing to hand out (and no arithmetic on a NULL data pointer) */
    if ((rc = buf_grow(b, b->len + n)) != 0)
        return rc;
    *out = b->data + b->len;
    b->len += n;
    return 0;
}

int kurer_buf_put(kurer_buf *b, const void *data, size_t n)
{
    uint8_t *p;
    int rc = kurer_buf_reserve(b, n, &p);
    if (rc == 0 && n > 0)
        memcpy(p, data, n);
    return rc;
}

int kurer_buf_put_u8(kurer_buf *b, uint8_t v)
{
    return kurer_buf_put(b, &v, 1);
}

int kurer_buf_put_u16be(kurer_buf *b, uint16_t v)
{
    uint8_t t[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return kurer_buf_put(b, t, sizeof(t));
}

int kurer_buf_put_u32be(kurer_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return kurer_buf_put(b, t, sizeof(t));
}

int kurer_buf_put_u64be(kurer_buf *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        t[i] = (uint8_t)v;
    return kurer_buf_put(b, t, sizeof(t));
}

int kurer_buf_put_varint(kurer_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0)
            t[n] |= 0x80;
        n++;
    } while (v != 0);
    return kurer_buf_put(b, t, n);
}

int kurer_buf_put_lv16(kurer_buf *b, const void *data, size_t n)
{
    if (n > UINT16_MAX)
        return KURER_ELIMIT;
    if (2 + n > b->max - b->len)
        return KURER_ELIMIT;
    int rc = kurer_buf_put_u16be(b, (uint16_t)n);
    return rc != 0 ? rc : kurer_buf_put(b, data, n);
}

int kurer_buf_put_lv32(kurer_buf *b, const void *data, size_t n)
{
    if (n > UINT32_MAX)
        return KURER_ELIMIT;
    if (n > b->max - b->len || 4 > b->max - b->len - n)
        return KURER_ELIMIT;
    int rc = kurer_buf_put_u32be(b, (uint32_t)n);
    return rc != 0 ? rc : kurer_buf_put(b, data, n);
}
