/* The shared passphrase helper (crypto/secret.c): from the environment into guarded memory,
 * each refusal with its error and reason. (The terminal prompt is driven by admin_flow.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/crypto.h"
#include "kurer/secret.h"
#include "kurer/tty.h"

static void test_from_environment(void **state)
{
    kurer_secret s = {0};
    char why[256] = "unchanged";
    (void)state;
    assert_int_equal(setenv("KURER_TEST_PASS", "correct horse battery", 1), 0);
    assert_int_equal(
        kurer_secret_passphrase("KURER_TEST_PASS", "the test key", 1, &s, why, sizeof(why)), 0);
    assert_non_null(s.p);
    assert_int_equal(s.n, strlen("correct horse battery"));
    assert_string_equal(s.p, "correct horse battery");
    assert_string_equal(why, "");
    kurer_secret_free(&s);
    assert_null(s.p);
    assert_int_equal(s.n, 0);
    kurer_secret_free(&s); /* twice, and NULL: both fine */
    kurer_secret_free(NULL);
}

static void test_refusals(void **state)
{
    kurer_secret s = {0};
    char why[256];
    (void)state;
    assert_int_equal(setenv("KURER_TEST_PASS", "", 1), 0);
    assert_int_equal(
        kurer_secret_passphrase("KURER_TEST_PASS", "the test key", 0, &s, why, sizeof(why)),
        KURER_EINVAL);
    assert_string_equal(why, "environment variable KURER_TEST_PASS is empty");
    assert_null(s.p);
    assert_int_equal(setenv("KURER_TEST_PASS", "short", 1), 0);
    assert_int_equal(
        kurer_secret_passphrase("KURER_TEST_PASS", "the test key", 1, &s, why, sizeof(why)),
        KURER_EINVAL);
    assert_string_equal(why, "the passphrase for the test key is too short (at least 12 "
                             "characters)");
    assert_null(s.p);
    char *long_pass = malloc(KURER_PASSPHRASE_MAX + 2);
    assert_non_null(long_pass);
    memset(long_pass, 'p', KURER_PASSPHRASE_MAX + 1);
    long_pass[KURER_PASSPHRASE_MAX + 1] = '\0';
    assert_int_equal(setenv("KURER_TEST_PASS", long_pass, 1), 0);
    free(long_pass);
    assert_int_equal(
        kurer_secret_passphrase("KURER_TEST_PASS", "the test key", 0, &s, why, sizeof(why)),
        KURER_ELIMIT);
    assert_string_equal(why, "passphrase in KURER_TEST_PASS is longer than 1024 bytes");
    assert_null(s.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_environment),
        cmocka_unit_test(test_refusals),
    };
    if (kurer_crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
