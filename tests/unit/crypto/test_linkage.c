/* crypto_linkage: the linkage check passes in a correctly linked binary and fails once a plain
 * SQLite is in the process. The mis-ordered link (libsignal-protocol-c first) is checked by
 * tests/check_linkage.sh with the linkage_misordered fixture, which must be a separate binary:
 * the order is fixed when the process starts. */
#define _GNU_SOURCE 1

#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kurer/crypto.h"
#include "linkage.h"

static void test_init_ok(void **state)
{
    (void)state;
    assert_int_equal(kurer_crypto_init(), 0);
    assert_int_equal(kurer_crypto_init(), 0); /* idempotent */
    assert_int_equal(kurer__linkage_check(), 0);
}

static void test_plain_sqlite_refused(void **state)
{
    (void)state;
    assert_int_equal(kurer__linkage_check(), 0);
    /* RTLD_LOCAL: not even in the global scope, and still refused by name. */
    void *h = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        skip();
    assert_int_equal(kurer__linkage_check(), KURER_ELINKAGE);
    dlclose(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_ok),
        cmocka_unit_test(test_plain_sqlite_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
