/* libsignal-protocol-c glue: our crypto provider and the device identity key operations.
 *
 * The provider takes random, HMAC-SHA256 and SHA-512 from libsodium and AES-256-CBC (PKCS#7)
 * and AES-256-CTR from OpenSSL EVP. Contexts made here are independent: several may live in
 * one process, each used by one thread at a time (libsignal's reference counts are not atomic). */
#ifndef KURER_SIGNAL_H
#define KURER_SIGNAL_H

#include <stddef.h>
#include <stdint.h>

#include <signal_protocol.h>

#include "kurer/error.h"

/* Our provider's own error codes, returned to libsignal from the callbacks (all below
 * SG_ERR_MINIMUM, so they never collide with libsignal's). libsignal passes them through to the
 * caller of session_cipher_*, so they may surface there. */
#define KURER_SG_ERR_KEYLEN  (-10001) /* key length is not 32 bytes */
#define KURER_SG_ERR_IVLEN   (-10002) /* IV length is not 16 bytes */
#define KURER_SG_ERR_CIPHER  (-10003) /* unknown cipher id */
#define KURER_SG_ERR_LENGTH  (-10004) /* input too long, or not a whole number of blocks */
#define KURER_SG_ERR_EVP     (-10005) /* OpenSSL refused (allocation or setup) */
#define KURER_SG_ERR_DECRYPT (-10006) /* bad padding */
#define KURER_SG_ERR_HASH    (-10007) /* libsodium HMAC or SHA-512 failed */

/* A libsignal context with our crypto provider and its own recursive lock. Opaque. */
typedef struct kurer_signal_ctx kurer_signal_ctx;

/* Makes a new context: a signal_context with our provider and a per-context recursive mutex
 * (no global state). On success *out owns it; free with kurer_signal_context_free. On failure
 * *out is NULL. Returns 0, KURER_ENOMEM, KURER_ECRYPTO (libsodium not started) or
 * KURER_EINTERNAL (libsignal refused the provider or the lock).
 *
 * user_data is kept beside the context and returned by kurer_signal_context_user_data.
 * libsignal's own context user_data is the wrapper (the lock callbacks need it), so callers must
 * not replace the locking functions on the signal_context. Any thread may create a context;
 * after that, one thread at a time uses it. */
KURER_EXPORT KURER_MUST_CHECK int kurer_signal_context_new(kurer_signal_ctx **out, void *user_data);
/* Destroys the signal_context and the lock. NULL-safe. Everything made from the context
 * (store contexts, builders, ciphers) must be freed first. */
KURER_EXPORT void kurer_signal_context_free(kurer_signal_ctx *ctx);
/* The signal_context to hand to libsignal; borrowed, valid until kurer_signal_context_free. */
KURER_EXPORT signal_context *kurer_signal_context_get(const kurer_signal_ctx *ctx);
/* The user_data given to kurer_signal_context_new. */
KURER_EXPORT void *kurer_signal_context_user_data(const kurer_signal_ctx *ctx);

/* Fills a libsignal crypto provider with our callbacks (what kurer_signal_context_new installs).
 * Exposed so that the callbacks can be tested directly; user_data is left NULL. */
KURER_EXPORT void kurer_signal_provider(signal_crypto_provider *provider);

/* A fresh identity key pair for a device: the public key in wire form (33 bytes, 0x05 ||
 * X25519) and the private key (32 bytes, clamped; the caller keeps it in guarded memory).
 * Returns 0, or KURER_ENOMEM / KURER_ECRYPTO with both outputs zeroed. */
KURER_EXPORT KURER_MUST_CHECK int kurer_identity_generate(uint8_t pub[33], uint8_t priv[32]);
/* XEdDSA signature by an identity private key (what libsignal uses for signed prekeys). msg may
 * be NULL when n is 0. Returns 0, or KURER_ENOMEM / KURER_ECRYPTO with sig zeroed. Thread-safe:
 * uses a private context per call. */
KURER_EXPORT KURER_MUST_CHECK int kurer_identity_sign(const uint8_t priv[32], const uint8_t *msg,
                                                      size_t n, uint8_t sig[64]);
/* 0 if sig is a valid XEdDSA signature of msg by pub, KURER_EBADSIG if not, KURER_EBADKEY for a
 * malformed public key (type byte not 0x05, or a point of small order), KURER_ENOMEM. */
KURER_EXPORT KURER_MUST_CHECK int kurer_identity_verify(const uint8_t pub[33], const uint8_t *msg,
                                                        size_t n, const uint8_t sig[64]);

#endif
