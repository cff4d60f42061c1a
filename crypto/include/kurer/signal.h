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

/* A new signal_context with our provider and a recursive lock. Free with
 * kurer_signal_context_free (NULL-safe). user_data is handed to libsignal unchanged. */
KURER_EXPORT KURER_MUST_CHECK int kurer_signal_context_new(signal_context **out, void *user_data);
KURER_EXPORT void kurer_signal_context_free(signal_context *ctx);

/* A fresh identity key pair for a device: the public key in wire form (33 bytes, 0x05 ||
 * X25519) and the private key (32 bytes; the caller keeps it in guarded memory). */
KURER_EXPORT KURER_MUST_CHECK int kurer_identity_generate(uint8_t pub[33], uint8_t priv[32]);
/* XEdDSA signature by an identity private key (what libsignal uses for signed prekeys). */
KURER_EXPORT KURER_MUST_CHECK int kurer_identity_sign(const uint8_t priv[32], const uint8_t *msg,
                                                      size_t n, uint8_t sig[64]);
/* 0 if sig is a valid XEdDSA signature of msg by pub, KURER_EBADSIG if not, KURER_EBADKEY for a
 * malformed public key. */
KURER_EXPORT KURER_MUST_CHECK int kurer_identity_verify(const uint8_t pub[33], const uint8_t *msg,
                                                        size_t n, const uint8_t sig[64]);

#endif
