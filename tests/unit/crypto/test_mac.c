/* kurer_mac (HMAC-SHA-512-256): RFC 4231's HMAC-SHA-512 test cases 1 and 2, whose first 32
 * bytes are the truncated tag (keys shorter than 32 bytes are zero-padded: HMAC pads them so
 * anyway), and a changed byte of key or message changes the tag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/crypto.h"
#include "kurer/mac.h"
#include "kurer/util.h"

static void check(const uint8_t *key, size_t klen, const char *msg, const char *hex)
{
    uint8_t k[KURER_MAC_KEY_LEN] = {0}, tag[KURER_MAC_LEN], want[KURER_MAC_LEN];
    memcpy(k, key, klen);
    assert_int_equal(kurer_hex_decode(want, sizeof(want), hex), 0);
    kurer_mac(tag, k, msg, strlen(msg));
    assert_memory_equal(tag, want, KURER_MAC_LEN);
}

static void test_rfc4231(void **state)
{
    (void)state;
    uint8_t k1[20];
    memset(k1, 0x0b, sizeof(k1));
    check(k1, sizeof(k1), "Hi There",
          "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde");
    check((const uint8_t *)"Jefe", 4, "what do ya want for nothing?",
          "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554");
}

static void test_changes(void **state)
{
    (void)state;
    uint8_t k[KURER_MAC_KEY_LEN], t1[KURER_MAC_LEN], t2[KURER_MAC_LEN];
    uint8_t msg[18] = {1, 2, 3};
    kurer_random(k, sizeof(k));
    kurer_mac(t1, k, msg, sizeof(msg));
    msg[17] ^= 1;
    kurer_mac(t2, k, msg, sizeof(msg));
    assert_false(kurer_ct_equal(t1, t2, KURER_MAC_LEN));
    msg[17] ^= 1;
    k[0] ^= 1;
    kurer_mac(t2, k, msg, sizeof(msg));
    assert_false(kurer_ct_equal(t1, t2, KURER_MAC_LEN));
    k[0] ^= 1;
    kurer_mac(t2, k, msg, sizeof(msg));
    assert_true(kurer_ct_equal(t1, t2, KURER_MAC_LEN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_changes),
    };
    if (kurer_crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
