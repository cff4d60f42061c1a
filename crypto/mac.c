/* kurer/mac.h: HMAC-SHA-512-256 through libsodium. */
#include "kurer/mac.h"

#include <sodium.h>

_Static_assert(crypto_auth_BYTES == KURER_MAC_LEN, "crypto_auth tag size");
_Static_assert(crypto_auth_KEYBYTES == KURER_MAC_KEY_LEN, "crypto_auth key size");

void kurer_mac(uint8_t out[KURER_MAC_LEN], const uint8_t key[KURER_MAC_KEY_LEN], const void *data,
               size_t n)
{
    (void)crypto_auth(out, data, n, key);
}
