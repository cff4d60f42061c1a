/* QR codes in the terminal and as PNG (kurer/qr.h). */
#include "kurer/qr.h"
#include "kurer/util.h"

#include <png.h>
#include <qrencode.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SGR_ON  "\033[30;47m"
#define SGR_OFF "\033[0m"

int kurer_qr_modules(const char *text, uint8_t **modules, size_t *size)
{
    *modules = NULL;
    *size = 0;
    size_t n = strlen(text);
    if (n == 0 || n > KURER_QR_TEXT_MAX)
        return KURER_EINVAL;
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (q == NULL)
        return KURER_ENOMEM;
    size_t w = (size_t)q->width;
    uint8_t *m = malloc(w * w);
    if (m == NULL) {
        QRcode_free(q);
        return KURER_ENOMEM;
    }
    for (size_t i = 0; i < w * w; i++)
        m[i] = q->data[i] & 1; /* bit 0: dark; the other bits say what the module is */
    QRcode_free(q);
    *modules = m;
    *size = w;
    return 0;
}

/* Module (x, y) of the code with its quiet zone around it: 1 dark, 0 light. */
static int dark(const uint8_t *m, size_t w, size_t x, size_t y)
{
    if (x < KURER_QR_QUIET || y < KURER_QR_QUIET || x >= w + KURER_QR_QUIET ||
        y >= w + KURER_QR_QUIET)
        return 0;
    return m[(y - KURER_QR_QUIET) * w + (x - KURER_QR_QUIET)];
}

int kurer_qr_terminal(const char *text, kurer_buf *out)
{
    static const char *const cell[4] = {" ", "\xe2\x96\x84", "\xe2\x96\x80", "\xe2\x96\x88"};
    uint8_t *m;
    size_t w, start = out->len;
    int rc = kurer_qr_modules(text, &m, &w);
    if (rc != 0)
        return rc;
    size_t all = w + 2 * KURER_QR_QUIET;
    for (size_t y = 0; y < all && rc == 0; y += 2) {
        rc = kurer_buf_put(out, SGR_ON, sizeof(SGR_ON) - 1);
        for (size_t x = 0; x < all && rc == 0; x++) {
            const char *c = cell[dark(m, w, x, y) << 1 | dark(m, w, x, y + 1)];
            rc = kurer_buf_put(out, c, strlen(c));
        }
        if (rc == 0)
            rc = kurer_buf_put(out, SGR_OFF "\n", sizeof(SGR_OFF));
    }
    free(m);
    if (rc != 0)
        out->len = start;
    return rc;
}

static void png_to_buf(png_structp p, png_bytep d, png_size_t n)
{
    kurer_buf *b = png_get_io_ptr(p);
    if (kurer_buf_put(b, d, n) != 0)
        png_error(p, "too large");
}

static void png_no_flush(png_structp p)
{
    (void)p;
}

/* The image in b; 0 or KURER_ENOMEM. */
static int encode_png(const uint8_t *m, size_t w, kurer_buf *b)
{
    size_t side = (w + 2 * KURER_QR_QUIET) * KURER_QR_PNG_SCALE;
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = p != NULL ? png_create_info_struct(p) : NULL;
    uint8_t *row = malloc(side);
    int rc = KURER_ENOMEM;
    if (p == NULL || info == NULL || row == NULL)
        goto out;
    if (setjmp(png_jmpbuf(p)))
        goto out;
    png_set_write_fn(p, b, png_to_buf, png_no_flush);
    png_set_IHDR(p, info, (png_uint_32)side, (png_uint_32)side, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    for (size_t y = 0; y < side; y++) {
        for (size_t x = 0; x < side; x++)
            row[x] = dark(m, w, x / KURER_QR_PNG_SCALE, y / KURER_QR_PNG_SCALE) ? 0 : 255;
        png_write_row(p, row);
    }
    png_write_end(p, NULL);
    rc = 0;
out:
    png_destroy_write_struct(p != NULL ? &p : NULL, info != NULL ? &info : NULL);
    free(row);
    return rc;
}

int kurer_qr_png(const char *text, const char *path, unsigned mode, int overwrite)
{
    uint8_t *m;
    size_t w;
    kurer_buf b;
    struct stat st;
    if ((mode & ~0777u) != 0 || (mode & 0600u) != 0600u)
        return KURER_EINVAL;
    /* a link is refused, never followed or replaced (the writer itself writes a new file
     * beside it and moves it in place: nothing is written through a link either way) */
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return KURER_EPERM;
    int rc = kurer_qr_modules(text, &m, &w);
    if (rc != 0)
        return rc;
    kurer_buf_init(&b, (size_t)4 * 1024 * 1024);
    rc = encode_png(m, w, &b);
    free(m);
    if (rc == 0)
        rc = kurer_file_write(path, b.data, b.len, mode, overwrite);
    kurer_buf_release(&b);
    return rc;
}
