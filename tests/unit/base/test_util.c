#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "kurer/error.h"
#include "kurer/util.h"

static void test_hex(void **state)
{
    (void)state;
    uint8_t in[256], back[256];
    char hex[513];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    kurer_hex_encode(hex, in, sizeof(in));
    assert_int_equal(strlen(hex), 512);
    assert_memory_equal(hex, "000102030405060708090a0b0c0d0e0f", 32);
    assert_string_equal(hex + 500, "fafbfcfdfeff");
    assert_int_equal(kurer_hex_decode(back, sizeof(back), hex), 0);
    assert_memory_equal(in, back, sizeof(in));
    assert_int_equal(kurer_hex_decode(back, 2, "ABcd"), 0);
    assert_int_equal(back[0], 0xab);
    assert_int_equal(kurer_hex_decode(back, 2, "abc"), KURER_EMALFORMED);
    assert_int_equal(kurer_hex_decode(back, 2, "abcg"), KURER_EMALFORMED);
    assert_int_equal(back[0], 0);
    assert_int_equal(kurer_hex_decode(back, 2, NULL), KURER_EMALFORMED);
    /* Every character: exactly the 22 hex digits decode. */
    int ok = 0;
    for (int c = 1; c < 256; c++) {
        char two[3] = {(char)c, '0', 0};
        if (kurer_hex_decode(back, 1, two) == 0) {
            ok++;
            assert_true(strchr("0123456789abcdefABCDEF", c) != NULL);
        }
    }
    assert_int_equal(ok, 22);
}

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(kurer_err_name(KURER_ETRUNC), "ETRUNC");
    assert_string_equal(kurer_strerror(0), "success");
    assert_int_equal(kurer_err_category(KURER_EBADSIG), KURER_CAT_CRYPTO);
    assert_string_equal(kurer_strerror(-9999), "unknown error");
    assert_false(kurer_err_known(-9999));
    assert_true(kurer_err_known(KURER_EINTERNAL));
}

static void test_parse_u64(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(kurer_parse_u64("365", 1000, &v), 0);
    assert_int_equal(v, 365);
    assert_int_equal(kurer_parse_u64("1001", 1000, &v), KURER_ELIMIT);
    assert_int_equal(kurer_parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(kurer_parse_u64("18446744073709551616", UINT64_MAX, &v), KURER_ELIMIT);
    assert_int_equal(kurer_parse_u64("-1", 10, &v), KURER_EINVAL);
    assert_int_equal(kurer_parse_u64("", 10, &v), KURER_EINVAL);
    assert_int_equal(kurer_parse_u64("1x", 10, &v), KURER_EINVAL);
    /* A bound below 9: the last digit alone must not slip past it. */
    assert_int_equal(kurer_parse_u64("7", 5, &v), KURER_ELIMIT);
    assert_int_equal(kurer_parse_u64("1", 0, &v), KURER_ELIMIT);
    assert_int_equal(kurer_parse_u64("5", 5, &v), 0);
    assert_int_equal(v, 5);
}

/* fchmod as a FAT file system answers it, when fail_fchmod is set: the executable's definition
 * takes the place of libc's for the statically linked kurer_base. */
static int fail_fchmod;
int fchmod(int fd, mode_t mode);
int fchmod(int fd, mode_t mode)
{
    if (fail_fchmod) {
        errno = EPERM;
        return -1;
    }
    return (int)syscall(SYS_fchmod, fd, mode);
}

static void test_file_system_without_modes(void **state)
{
    (void)state;
    char dir[] = "/tmp/kurer-util-XXXXXX";
    char path[4200];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(kurer_path_join(path, sizeof(path), dir, "k"), 0);
    fail_fchmod = 1;
    assert_int_equal(kurer_file_write(path, "abc", 3, 0600, 0), KURER_EUNSUPPORTED);
    fail_fchmod = 0;
    assert_int_equal(kurer_file_exists(path), KURER_ENOENT); /* nothing left behind */
    assert_int_equal(rmdir(dir), 0);                         /* not even the temporary file */
}

static void test_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/kurer-util-XXXXXX";
    char path[4200];
    uint8_t *data;
    size_t len;
    struct stat st;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(kurer_path_join(path, sizeof(path), dir, "f"), 0);
    assert_int_equal(kurer_file_write(path, "abc", 3, 0600, 0), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(kurer_file_write(path, "xyz", 3, 0600, 0), KURER_EEXIST);
    assert_int_equal(kurer_file_read(path, 100, &data, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "abc", 3);
    free(data);
    assert_int_equal(kurer_file_write(path, "wxyz", 4, 0644, 1), 0);
    assert_int_equal(kurer_file_read(path, 3, &data, &len), KURER_ELIMIT);
    assert_null(data);
    assert_int_equal(kurer_file_read("/nonexistent/x", 3, &data, &len), KURER_ENOENT);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_file_system_without_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
