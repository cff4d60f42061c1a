/* Comparison codes and request fingerprints (kurer/compare.h). */
#include "kurer/compare.h"
#include "kurer/crypto.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define CODE_DOMAIN "kurer comparison code v1"

void kurer_comparison_code(const uint8_t identity_key[33], char out[KURER_COMPARISON_CODE_LEN + 1])
{
    crypto_generichash_state st;
    uint8_t h[32];
    uint64_t v = 0;
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)CODE_DOMAIN, sizeof(CODE_DOMAIN));
    crypto_generichash_update(&st, identity_key, 33);
    crypto_generichash_final(&st, h, sizeof(h));
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    v %= 1000000000000ULL;
    snprintf(out, KURER_COMPARISON_CODE_LEN + 1, "%04u %04u %04u", (unsigned)(v / 100000000ULL),
             (unsigned)(v / 10000ULL % 10000ULL), (unsigned)(v % 10000ULL));
}

void kurer_request_fingerprint(const uint8_t *csr, size_t n, char hex[65],
                               char qr[KURER_REQUEST_QR_LEN + 1])
{
    static const char digits[] = "0123456789ABCDEF";
    uint8_t h[32];
    size_t p = sizeof(KURER_REQUEST_QR_PREFIX) - 1;
    kurer_hash256(h, csr, n);
    sodium_bin2hex(hex, 65, h, sizeof(h));
    memcpy(qr, KURER_REQUEST_QR_PREFIX, p);
    for (size_t i = 0; i < sizeof(h); i++) {
        qr[p + 2 * i] = digits[h[i] >> 4];
        qr[p + 2 * i + 1] = digits[h[i] & 15];
    }
    qr[KURER_REQUEST_QR_LEN] = '\0';
}
