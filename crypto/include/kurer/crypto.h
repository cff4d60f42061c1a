/* The crypto module's entry points: start-up, randomness, secure memory, comparisons.
 *
 * kurer_crypto_init must be called once before anything else in crypto/ (it is idempotent and
 * thread-safe). It initialises libsodium and checks that the libraries are linked as
 * docs/libraries.md requires. */
#ifndef KURER_CRYPTO_H
#define KURER_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/error.h"

/* 0, KURER_ECRYPTO if libsodium cannot start, KURER_ELINKAGE if a symbol of libsodium or
 * protobuf-c resolves to another library (libsignal-protocol-c's private copies) or SQLite
 * without SQLCipher is loaded. */
KURER_EXPORT KURER_MUST_CHECK int kurer_crypto_init(void);

/* n random bytes from the operating system's CSPRNG (through libsodium). */
KURER_EXPORT void kurer_random(void *buf, size_t n);
/* A uniformly random value below upper (upper > 0). */
KURER_EXPORT uint32_t kurer_random_uniform(uint32_t upper);

/* Guarded memory for long-lived secrets: page-aligned, guard pages, mlocked, never swapped,
 * wiped on free. Returns NULL on failure. kurer_secure_free is NULL-safe. */
KURER_EXPORT void *kurer_secure_alloc(size_t n);
KURER_EXPORT void kurer_secure_free(void *p);
/* Makes guarded memory read-only / read-write again (defence against stray writes). */
KURER_EXPORT void kurer_secure_readonly(void *p);
KURER_EXPORT void kurer_secure_readwrite(void *p);

/* Constant-time equality of two n-byte buffers: 1 if equal, 0 if not. */
KURER_EXPORT KURER_MUST_CHECK int kurer_ct_equal(const void *a, const void *b, size_t n);
/* 1 if all n bytes are zero, in constant time. */
KURER_EXPORT KURER_MUST_CHECK int kurer_ct_is_zero(const void *a, size_t n);
/* Wipes secrets (sodium_memzero). */
KURER_EXPORT void kurer_memzero(void *p, size_t n);

/* BLAKE2b-256 of data: used for key ids and fingerprints. */
KURER_EXPORT void kurer_hash256(uint8_t out[32], const void *data, size_t n);
/* A keyed 64-bit hash (SipHash-2-4, libsodium's crypto_shorthash) for hash tables whose keys
 * peers choose: without the random key nobody can make their entries share a chain. Not a MAC,
 * not for secrets. */
#define KURER_SHORTHASH_KEY_LEN 16
KURER_EXPORT uint64_t kurer_shorthash(const uint8_t key[KURER_SHORTHASH_KEY_LEN], const void *data,
                                      size_t n);

#endif
