/* A message authentication code under a 32-byte secret key: HMAC-SHA-512-256 (libsodium's
 * crypto_auth). For tokens a server issues and later checks itself (the media relay's tickets);
 * compare a computed tag with a received one through kurer_ct_equal. Thread-safe. */
#ifndef KURER_MAC_H
#define KURER_MAC_H

#include <stddef.h>
#include <stdint.h>

#define KURER_MAC_KEY_LEN 32
#define KURER_MAC_LEN     32

/* out = HMAC-SHA-512-256(key, data[0..n)), truncated to KURER_MAC_LEN bytes. Needs
 * kurer_crypto_init. */
void kurer_mac(uint8_t out[KURER_MAC_LEN], const uint8_t key[KURER_MAC_KEY_LEN], const void *data,
               size_t n);

#endif
