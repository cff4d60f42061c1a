/* A passphrase in guarded memory: the one helper kurer and kurer-admin both ask passphrases
 * with (kurer_passphrase_get of base/tty.h does the asking; this file holds the secret where
 * it cannot be swapped out or read past). For command-line programs, like kurer/tty.h. */
#ifndef KURER_SECRET_H
#define KURER_SECRET_H

#include <stddef.h>

#include "kurer/error.h"

typedef struct kurer_secret {
    char *p;  /* guarded memory of KURER_PASSPHRASE_MAX + 1 bytes, NUL-terminated; or NULL */
    size_t n; /* its length */
} kurer_secret;

/* The passphrase for the key or store described by what, from the environment variable
 * envname or a no-echo prompt on the terminal (twice, and at least KURER_PASSPHRASE_MIN_NEW
 * characters, when is_new): see kurer_passphrase_get. On success *out holds it (the caller
 * frees it with kurer_secret_free). On failure *out is empty and why (whylen bytes) holds a
 * one-line reason that never contains the passphrase; KURER_ENOMEM if no guarded memory can be
 * had. Needs kurer_crypto_init. */
KURER_EXPORT KURER_MUST_CHECK int kurer_secret_passphrase(const char *envname, const char *what,
                                                          int is_new, kurer_secret *out, char *why,
                                                          size_t whylen);
/* Wipes and frees the secret; NULL-safe, and safe on an empty one. */
KURER_EXPORT void kurer_secret_free(kurer_secret *s);

#endif
