/* Armoured text (kurer/armor.h): the binary files as base64 between BEGIN and END lines. The
 * base64 is libsodium's; this file only frames it and checks the frame strictly, so that what
 * it accepts is exactly what kurer_armor_encode writes (up to line endings and surrounding
 * whitespace). */
#include "kurer/armor.h"
#include "kurer/crypto.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define BEGIN_PREFIX "-----BEGIN KURER "
#define END_PREFIX   "-----END KURER "
#define DASHES       "-----"
#define SUM_DOMAIN   "kurer armor v1"
#define SUM_LEN      3 /* bytes: 4 base64 characters */
#define B64_VARIANT  sodium_base64_VARIANT_ORIGINAL
/* The base64 of the largest file, and its line breaks, with room to spare. */
#define TEXT_MAX (KURER_ARMOR_DATA_MAX / 3 * 4 + 8)

static const char *const labels[] = {
    [KURER_ARMOR_REQUEST] = "CERTIFICATE REQUEST",
    [KURER_ARMOR_CHAIN] = "CERTIFICATE CHAIN",
    [KURER_ARMOR_CERTIFICATE] = "CERTIFICATE",
    [KURER_ARMOR_CRL] = "REVOCATION LIST",
};
#define NLABELS (sizeof(labels) / sizeof(labels[0]))

const char *kurer_armor_label(kurer_armor_kind kind)
{
    if ((size_t)kind == 0 || (size_t)kind >= NLABELS)
        return NULL;
    return labels[kind];
}

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t skip_space(const uint8_t *d, size_t n, size_t i)
{
    while (i < n && is_space(d[i]))
        i++;
    return i;
}

int kurer_armor_is(const uint8_t *d, size_t n)
{
    size_t i = skip_space(d, n, 0);
    size_t k = sizeof(BEGIN_PREFIX) - 1;
    return n - i >= k && memcmp(d + i, BEGIN_PREFIX, k) == 0;
}

/* The checksum of data under label, as 4 base64 characters and a NUL. */
static void checksum(const char *label, const uint8_t *d, size_t n, char out[8])
{
    crypto_generichash_state st;
    uint8_t h[32];
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)SUM_DOMAIN, sizeof(SUM_DOMAIN));
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
    crypto_generichash_update(&st, d, n);
    crypto_generichash_final(&st, h, sizeof(h));
    sodium_bin2base64(out, 8, h, SUM_LEN, B64_VARIANT);
}

static int put_str(kurer_buf *out, const char *s)
{
    return kurer_buf_put(out, s, strlen(s));
}

int kurer_armor_encode(kurer_armor_kind kind, const uint8_t *d, size_t n, kurer_buf *out)
{
    const char *label = kurer_armor_label(kind);
    char sum[8];
    int rc = 0;
    if (label == NULL || n == 0)
        return KURER_EINVAL;
    if (n > KURER_ARMOR_DATA_MAX)
        return KURER_ELIMIT;
    size_t b64_len = sodium_base64_encoded_len(n, B64_VARIANT);
    char *b64 = malloc(b64_len);
    if (b64 == NULL)
        return KURER_ENOMEM;
    sodium_bin2base64(b64, b64_len, d, n, B64_VARIANT);
    b64_len = strlen(b64);
    checksum(label, d, n, sum);
    size_t start = out->len;
    rc = put_str(out, BEGIN_PREFIX) || put_str(out, label) || put_str(out, DASHES "\n");
    for (size_t off = 0; rc == 0 && off < b64_len; off += KURER_ARMOR_LINE) {
        size_t len = b64_len - off < KURER_ARMOR_LINE ? b64_len - off : KURER_ARMOR_LINE;
        rc = kurer_buf_put(out, b64 + off, len) || kurer_buf_put_u8(out, '\n');
    }
    if (rc == 0)
        rc = put_str(out, "=") || put_str(out, sum) || put_str(out, "\n" END_PREFIX) ||
             put_str(out, label) || put_str(out, DASHES "\n");
    free(b64);
    if (rc != 0) {
        out->len = start;
        return KURER_ELIMIT;
    }
    return 0;
}

/* One line from *i: its start and length without the LF or CRLF. 0 if there is none left. */
static int next_line(const uint8_t *d, size_t n, size_t *i, const uint8_t **line, size_t *len)
{
    if (*i >= n)
        return 0;
    const uint8_t *p = d + *i, *nl = memchr(p, '\n', n - *i);
    size_t l = nl != NULL ? (size_t)(nl - p) : n - *i;
    *i += l + (nl != NULL);
    if (l > 0 && p[l - 1] == '\r')
        l--;
    *line = p;
    *len = l;
    return 1;
}

/* A "PREFIX LABEL-----" line: the label's kind, KURER_EARMORLABEL for an unknown label, or
 * KURER_EARMOR if the line is not of that form. */
static int frame_line(const uint8_t *line, size_t len, const char *prefix, kurer_armor_kind *kind)
{
    size_t pl = strlen(prefix), dl = sizeof(DASHES) - 1;
    if (len < pl + dl || memcmp(line, prefix, pl) != 0 || memcmp(line + len - dl, DASHES, dl) != 0)
        return KURER_EARMOR;
    for (size_t k = 1; k < NLABELS; k++)
        if (strlen(labels[k]) == len - pl - dl &&
            memcmp(line + pl, labels[k], len - pl - dl) == 0) {
            *kind = (kurer_armor_kind)k;
            return 0;
        }
    return KURER_EARMORLABEL;
}

/* The base64 lines up to the checksum line, collected into b64 (NUL-terminated), and the
 * checksum's 4 characters. Every line but the last is KURER_ARMOR_LINE long. */
static int body_lines(const uint8_t *d, size_t n, size_t *i, kurer_buf *b64, char sum[8])
{
    const uint8_t *line;
    size_t len, last = KURER_ARMOR_LINE;
    while (next_line(d, n, i, &line, &len)) {
        if (len > 0 && line[0] == '=') {
            if (len != 5 || b64->len == 0)
                return KURER_EARMOR;
            memcpy(sum, line + 1, 4);
            sum[4] = '\0';
            return kurer_buf_put_u8(b64, 0) != 0 ? KURER_ELIMIT : 0;
        }
        /* A short line ends the base64; another after it means a lost or broken line. */
        if (len == 0 || len > KURER_ARMOR_LINE || last != KURER_ARMOR_LINE)
            return KURER_EARMOR;
        if (kurer_buf_put(b64, line, len) != 0)
            return KURER_ELIMIT;
        last = len;
    }
    return KURER_EARMOR;
}

/* The frame around the base64: BEGIN, the lines, the checksum, END with the same label, and
 * nothing but whitespace after. */
static int parse_frame(const uint8_t *d, size_t n, kurer_buf *b64, char sum[8],
                       kurer_armor_kind *kind)
{
    const uint8_t *line;
    size_t len, i = skip_space(d, n, 0);
    kurer_armor_kind end_kind = KURER_ARMOR_NONE;
    int rc;
    if (!next_line(d, n, &i, &line, &len))
        return KURER_EARMOR;
    if ((rc = frame_line(line, len, BEGIN_PREFIX, kind)) != 0)
        return rc;
    if ((rc = body_lines(d, n, &i, b64, sum)) != 0)
        return rc;
    if (!next_line(d, n, &i, &line, &len))
        return KURER_EARMOR;
    if ((rc = frame_line(line, len, END_PREFIX, &end_kind)) != 0)
        return rc;
    if (end_kind != *kind)
        return KURER_EARMORLABEL;
    return skip_space(d, n, i) == n ? 0 : KURER_EARMOR;
}

int kurer_armor_decode(const uint8_t *d, size_t n, kurer_buf *out, kurer_armor_kind *kind)
{
    kurer_buf b64;
    char sum[8], want[8];
    size_t bin_len = 0;
    const char *end = NULL;
    uint8_t *bin;
    int rc;
    *kind = KURER_ARMOR_NONE;
    kurer_buf_reset(out);
    kurer_buf_init(&b64, TEXT_MAX);
    if ((rc = parse_frame(d, n, &b64, sum, kind)) != 0)
        goto out;
    size_t b64_len = b64.len - 1, max = b64_len / 4 * 3;
    if (b64_len % 4 != 0) {
        rc = KURER_EARMOR;
        goto out;
    }
    if (max > KURER_ARMOR_DATA_MAX + 2) {
        rc = KURER_ELIMIT;
        goto out;
    }
    if ((rc = kurer_buf_reserve(out, max, &bin)) != 0)
        goto out;
    if (sodium_base642bin(bin, max, (const char *)b64.data, b64_len, NULL, &bin_len, &end,
                          B64_VARIANT) != 0 ||
        end != (const char *)b64.data + b64_len || bin_len == 0) {
        rc = KURER_EARMOR;
        goto out;
    }
    out->len = bin_len;
    checksum(labels[*kind], out->data, out->len, want);
    if (!kurer_ct_equal(want, sum, 5))
        rc = KURER_EARMORSUM;
out:
    kurer_buf_release(&b64);
    if (rc != 0) {
        kurer_buf_reset(out);
        *kind = KURER_ARMOR_NONE;
    }
    return rc;
}

int kurer_armor_unwrap(uint8_t **d, size_t *n, kurer_armor_kind *kind)
{
    kurer_buf b;
    size_t len;
    int rc;
    *kind = KURER_ARMOR_NONE;
    if (!kurer_armor_is(*d, *n))
        return 0;
    kurer_buf_init(&b, KURER_ARMOR_DATA_MAX + 4);
    if ((rc = kurer_armor_decode(*d, *n, &b, kind)) != 0) {
        kurer_buf_release(&b);
        return rc;
    }
    uint8_t *p = kurer_buf_steal(&b, &len);
    if (p == NULL)
        return KURER_ENOMEM;
    free(*d);
    *d = p;
    *n = len;
    return 0;
}
