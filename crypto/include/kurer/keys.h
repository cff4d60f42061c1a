/* Ed25519 signing keys (roots and authorities), X25519 keys (Noise statics), and sealed key
 * files.
 *
 * Private keys live in guarded memory (kurer_secure_alloc) and are wiped on release. A key file
 * holds one private key sealed with XChaCha20-Poly1305 under a key derived from a passphrase
 * with Argon2id; the file records the format version, the key kind, the KDF parameters and the
 * public key (authenticated, not secret). */
#ifndef KURER_KEYS_H
#define KURER_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/error.h"

#define KURER_SALT_LEN 16

typedef struct kurer_signing_key {
    uint8_t pk[32];
    uint8_t *sk; /* 64 bytes of guarded memory, or NULL */
} kurer_signing_key;

/* A new Ed25519 key pair. Release with kurer_signing_key_release. */
KURER_EXPORT KURER_MUST_CHECK int kurer_signing_key_generate(kurer_signing_key *k);
/* Wipes and frees the private key. NULL-safe, idempotent. */
KURER_EXPORT void kurer_signing_key_release(kurer_signing_key *k);
KURER_EXPORT KURER_MUST_CHECK int kurer_sign(const kurer_signing_key *k, const uint8_t *msg,
                                             size_t n, uint8_t sig[64]);
/* 0 if sig is pk's Ed25519 signature of msg, otherwise KURER_EBADSIG. */
KURER_EXPORT KURER_MUST_CHECK int kurer_verify(const uint8_t pk[32], const uint8_t *msg, size_t n,
                                               const uint8_t sig[64]);
/* The key id of an Ed25519 public key: BLAKE2b-256 of the 32 bytes. */
KURER_EXPORT void kurer_key_id(const uint8_t pk[32], uint8_t id[32]);

/* A new X25519 key pair; sk belongs to the caller (keep it in guarded memory). */
KURER_EXPORT void kurer_x25519_generate(uint8_t pk[32], uint8_t sk[32]);
/* The public key of an X25519 private key. */
KURER_EXPORT KURER_MUST_CHECK int kurer_x25519_public(uint8_t pk[32], const uint8_t sk[32]);

/* Argon2id parameters. Defaults: 3 passes over 64 MiB. Anything below OWASP's recommendation
 * (2 passes over 19 MiB) is refused, and so is anything above 10 passes or 1 GiB in a file
 * (a crafted file must not make us spin or eat memory). */
typedef struct kurer_kdf_params {
    uint32_t opslimit;
    uint64_t memlimit; /* bytes */
} kurer_kdf_params;

#define KURER_KDF_OPS_DEFAULT 3u
#define KURER_KDF_MEM_DEFAULT ((uint64_t)64 * 1024 * 1024)
#define KURER_KDF_OPS_MIN     2u
#define KURER_KDF_MEM_MIN     ((uint64_t)19 * 1024 * 1024)
#define KURER_KDF_OPS_MAX     10u
#define KURER_KDF_MEM_MAX     ((uint64_t)1024 * 1024 * 1024)

KURER_EXPORT kurer_kdf_params kurer_kdf_default(void);
/* The smallest parameters we accept (OWASP); for tests that derive many keys. */
KURER_EXPORT kurer_kdf_params kurer_kdf_minimum(void);
KURER_EXPORT KURER_MUST_CHECK int kurer_kdf_params_check(const kurer_kdf_params *p);
/* Argon2id(passphrase, salt) -> 32 bytes. */
KURER_EXPORT KURER_MUST_CHECK int kurer_kdf_derive(uint8_t out[32], const char *pass,
                                                   size_t pass_len,
                                                   const uint8_t salt[KURER_SALT_LEN],
                                                   const kurer_kdf_params *p);

/* The parameters record written beside an encrypted store ("KURERKDF", version, Argon2id
 * parameters, salt): 0 or KURER_EMALFORMED / KURER_EVERSION / KURER_ELIMIT. */
KURER_EXPORT KURER_MUST_CHECK int kurer_kdf_record_encode(kurer_buf *out, const kurer_kdf_params *p,
                                                          const uint8_t salt[KURER_SALT_LEN]);
KURER_EXPORT KURER_MUST_CHECK int kurer_kdf_record_decode(const uint8_t *data, size_t len,
                                                          kurer_kdf_params *p,
                                                          uint8_t salt[KURER_SALT_LEN]);

typedef enum kurer_key_kind {
    KURER_KEY_ED25519 = 1,  /* root and authority signing keys: 64-byte secret */
    KURER_KEY_X25519 = 2,   /* Noise static keys: 32-byte secret */
    KURER_KEY_IDENTITY = 3, /* libsignal identity keys: 32-byte secret, 33-byte public */
} kurer_key_kind;

#define KURER_KEYFILE_MAX 512

/* Seals a private key into a key file image in out. */
KURER_EXPORT KURER_MUST_CHECK int kurer_keyfile_seal(kurer_buf *out, kurer_key_kind kind,
                                                     const uint8_t *pub, size_t pub_len,
                                                     const uint8_t *secret, size_t secret_len,
                                                     const char *pass, size_t pass_len,
                                                     const kurer_kdf_params *p);
/* Opens a key file image: checks the format and kind, derives the key, decrypts into secret
 * (secret_len must match the kind; use guarded memory) and copies the public key into pub.
 * KURER_EPASSPHRASE for a wrong passphrase (or a tampered file: they cannot be told apart),
 * KURER_EMALFORMED / KURER_ETRUNC / KURER_EVERSION for a damaged file, KURER_EINVAL for a file
 * of another kind. */
KURER_EXPORT KURER_MUST_CHECK int kurer_keyfile_open(const uint8_t *file, size_t len,
                                                     kurer_key_kind kind, uint8_t *pub,
                                                     size_t pub_len, uint8_t *secret,
                                                     size_t secret_len, const char *pass,
                                                     size_t pass_len);
/* The kind and public key of a key file without opening it. */
KURER_EXPORT KURER_MUST_CHECK int kurer_keyfile_peek(const uint8_t *file, size_t len,
                                                     kurer_key_kind *kind, uint8_t *pub,
                                                     size_t pub_cap, size_t *pub_len);

/* Convenience: seal a signing key to a file (mode 0600; KURER_EEXIST unless overwrite) and
 * load one back. */
KURER_EXPORT KURER_MUST_CHECK int kurer_signing_key_save(const kurer_signing_key *k,
                                                         const char *path, const char *pass,
                                                         size_t pass_len, const kurer_kdf_params *p,
                                                         int overwrite);
KURER_EXPORT KURER_MUST_CHECK int kurer_signing_key_load(kurer_signing_key *k, const char *path,
                                                         const char *pass, size_t pass_len);

#endif
