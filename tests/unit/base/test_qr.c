/* QR codes (base/qr/qr.c): the terminal drawing and the PNG are both the modules libqrencode
 * made, with the 4-module quiet zone, read back cell by cell and pixel by pixel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <png.h>

#include "kurer/qr.h"

static const char text[] =
    "KURER-REQUEST:8B57A796A5D07CB04CC1614DFC2ACB3F73EDC712D7F433619CA3BBE66BB15F49";

static int module(const uint8_t *m, size_t w, size_t x, size_t y)
{
    if (x < KURER_QR_QUIET || y < KURER_QR_QUIET || x >= w + KURER_QR_QUIET ||
        y >= w + KURER_QR_QUIET)
        return 0;
    return m[(y - KURER_QR_QUIET) * w + x - KURER_QR_QUIET];
}

static void test_terminal(void **state)
{
    static const char *const cell[4] = {" ", "\xe2\x96\x84", "\xe2\x96\x80", "\xe2\x96\x88"};
    uint8_t *m;
    size_t w;
    kurer_buf b;
    (void)state;
    assert_int_equal(kurer_qr_modules(text, &m, &w), 0);
    assert_true(w >= 21 && (w - 17) % 4 == 0); /* a QR version's size */
    /* finder pattern: the top-left corner is dark, its 7x7 ring too */
    assert_int_equal(m[0], 1);
    assert_int_equal(m[6], 1);
    assert_int_equal(m[6 * w], 1);
    assert_int_equal(m[1 * w + 1], 0);
    kurer_buf_init(&b, 1 << 20);
    assert_int_equal(kurer_qr_terminal(text, &b), 0);
    size_t all = w + 2 * KURER_QR_QUIET, off = 0, lines = 0;
    for (size_t y = 0; y < all; y += 2, lines++) {
        assert_memory_equal(b.data + off, "\033[30;47m", 8);
        off += 8;
        for (size_t x = 0; x < all; x++) {
            const char *c = cell[module(m, w, x, y) << 1 | module(m, w, x, y + 1)];
            assert_true(off + strlen(c) <= b.len);
            assert_memory_equal(b.data + off, c, strlen(c));
            off += strlen(c);
        }
        assert_memory_equal(b.data + off, "\033[0m\n", 5);
        off += 5;
    }
    assert_int_equal(off, b.len);
    assert_int_equal(lines, (all + 1) / 2);
    kurer_buf_release(&b);
    free(m);
}

static void test_png(void **state)
{
    char path[] = "/tmp/kurer-qr-XXXXXX";
    uint8_t *m;
    size_t w;
    struct stat st;
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(kurer_qr_png(text, path, 0644, 0), KURER_EEXIST);
    assert_int_equal(kurer_qr_png(text, path, 0644, 1), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(kurer_qr_modules(text, &m, &w), 0);
    png_image img;
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_file(&img, path));
    img.format = PNG_FORMAT_GRAY;
    size_t side = (w + 2 * KURER_QR_QUIET) * KURER_QR_PNG_SCALE;
    assert_int_equal(img.width, side);
    assert_int_equal(img.height, side);
    uint8_t *px = malloc(side * side);
    assert_non_null(px);
    assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));
    for (size_t y = 0; y < side; y++)
        for (size_t x = 0; x < side; x++)
            assert_int_equal(px[y * side + x],
                             module(m, w, x / KURER_QR_PNG_SCALE, y / KURER_QR_PNG_SCALE) ? 0
                                                                                          : 255);
    free(px);
    free(m);
    unlink(path);
}

/* A secret (an invitation code) is written 0600, whatever the umask lets through, and never
 * through or over a symbolic link, with or without overwrite. */
static void test_png_secret(void **state)
{
    char dir[] = "/tmp/kurer-qr-XXXXXX", path[64], target[64], link[64];
    struct stat st;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/code.png", dir);
    snprintf(target, sizeof(target), "%s/target", dir);
    snprintf(link, sizeof(link), "%s/link.png", dir);
    mode_t old = umask(0);
    assert_int_equal(kurer_qr_png(text, path, 0600, 0), 0);
    umask(old);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(symlink(target, link), 0); /* dangling: would create target */
    assert_int_equal(kurer_qr_png(text, link, 0600, 0), KURER_EPERM);
    assert_int_equal(kurer_qr_png(text, link, 0600, 1), KURER_EPERM);
    assert_int_equal(lstat(target, &st), -1);
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    unlink(link);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

static void test_refusals(void **state)
{
    uint8_t *m = (uint8_t *)1;
    size_t w = 1;
    char big[KURER_QR_TEXT_MAX + 2];
    (void)state;
    assert_int_equal(kurer_qr_modules("", &m, &w), KURER_EINVAL);
    assert_null(m);
    assert_int_equal(w, 0);
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(kurer_qr_modules(big, &m, &w), KURER_EINVAL);
    assert_int_equal(kurer_qr_png(text, "/nonexistent-dir/x.png", 0600, 0), KURER_ENOENT);
    assert_int_equal(kurer_qr_png(text, "/tmp/kurer-qr-mode.png", 0400, 0), KURER_EINVAL);
    assert_int_equal(kurer_qr_png(text, "/tmp/kurer-qr-mode.png", 01600, 0), KURER_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_terminal), cmocka_unit_test(test_png),
                                       cmocka_unit_test(test_png_secret),
                                       cmocka_unit_test(test_refusals)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
