/* Comparison codes and request fingerprints (crypto/compare.c) against known answers computed
 * once outside our code, with Python's hashlib:
 *   h = blake2b(b"kurer comparison code v1\0" + key, digest_size=32).digest()
 *   "%012d" % (int.from_bytes(h[:8], "big") % 10**12), in groups of four;
 *   blake2b(bytes(range(10)), digest_size=32).hexdigest() for the fingerprint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/compare.h"
#include "kurer/crypto.h"

static void test_codes(void **state)
{
    uint8_t k[33];
    char c[KURER_COMPARISON_CODE_LEN + 1];
    (void)state;
    k[0] = 0x05;
    for (int i = 1; i < 33; i++)
        k[i] = (uint8_t)i;
    kurer_comparison_code(k, c);
    assert_string_equal(c, "5934 3131 2339");
    memset(k + 1, 0, 32);
    kurer_comparison_code(k, c);
    assert_string_equal(c, "5431 0313 4178"); /* a leading zero in a group is kept */
    memset(k + 1, 0xff, 32);
    kurer_comparison_code(k, c);
    assert_string_equal(c, "4637 2563 2191");
    /* one bit of the key changes the code */
    k[32] ^= 1;
    kurer_comparison_code(k, c);
    assert_string_not_equal(c, "4637 2563 2191");
    assert_int_equal(strlen(c), KURER_COMPARISON_CODE_LEN);
}

static void test_fingerprint(void **state)
{
    uint8_t d[10];
    char hex[65], qr[KURER_REQUEST_QR_LEN + 1];
    (void)state;
    for (int i = 0; i < 10; i++)
        d[i] = (uint8_t)i;
    kurer_request_fingerprint(d, sizeof(d), hex, qr);
    assert_string_equal(hex, "8b57a796a5d07cb04cc1614dfc2acb3f73edc712d7f433619ca3bbe66bb15f49");
    assert_string_equal(qr, "KURER-REQUEST:"
                            "8B57A796A5D07CB04CC1614DFC2ACB3F73EDC712D7F433619CA3BBE66BB15F49");
}

int main(void)
{
    if (kurer_crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_codes),
                                       cmocka_unit_test(test_fingerprint)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
