/* Noise handshakes and transport ciphers for the client-to-relay link (docs/design.md).
 *
 * Two protocols, exactly as the Noise specification (revision 34) defines them:
 *   Noise_IK_25519_ChaChaPoly_BLAKE2b   <- s  ...  -> e, es, s, ss   <- e, ee, se
 *   Noise_NK_25519_ChaChaPoly_BLAKE2b   <- s  ...  -> e, es          <- e, ee
 * No I/O happens here: the caller moves the bytes. Both handshakes take two messages, initiator
 * first. After the second message both sides call kurer_noise_hs_split to get their transport
 * ciphers.
 *
 * Limits: every Noise message (handshake or transport, tags included) is at most
 * KURER_NOISE_MAX_MSG bytes; a message that would be longer is KURER_ELIMIT.
 *
 * Threads: a handshake state and a cipher each belong to one thread at a time; different ones may
 * be used concurrently. kurer_crypto_init must have been called first.
 *
 * Secrets: the handshake state lives in guarded memory (sodium_malloc) and is wiped when freed.
 * A kurer_noise_cipher is a plain struct so that it can be embedded in a connection; its owner
 * wipes it with kurer_noise_cipher_wipe when the connection ends. */
#ifndef KURER_NOISE_H
#define KURER_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/error.h"

#define KURER_NOISE_DHLEN   32    /* X25519 public and private keys, DH outputs */
#define KURER_NOISE_HASHLEN 64    /* BLAKE2b-512: the handshake hash */
#define KURER_NOISE_TAGLEN  16    /* ChaCha20-Poly1305 tag */
#define KURER_NOISE_MAX_MSG 65535 /* any Noise message, tag included */
/* The largest plaintext one transport message can carry. */
#define KURER_NOISE_MAX_PLAINTEXT (KURER_NOISE_MAX_MSG - KURER_NOISE_TAGLEN)

typedef enum kurer_noise_pattern {
    KURER_NOISE_IK = 1, /* the client-to-relay handshake: both sides authenticated */
    KURER_NOISE_NK = 2, /* only the responder authenticated */
} kurer_noise_pattern;

typedef struct kurer_noise_hs kurer_noise_hs;

/* A fresh X25519 key pair for a Noise static key. The caller keeps sk in guarded memory
 * (kurer_secure_alloc). 0 or KURER_ECRYPTO. */
KURER_EXPORT KURER_MUST_CHECK int kurer_noise_keypair(uint8_t pk[32], uint8_t sk[32]);
/* The X25519 public key of sk. 0, or KURER_EWEAKDH if sk gives no usable key. */
KURER_EXPORT KURER_MUST_CHECK int kurer_noise_public_key(uint8_t pk[32], const uint8_t sk[32]);

/* One direction of a Noise transport: a key and a 64-bit nonce counter. The fields are private
 * to noise.c; the only outside use is that tests set n close to 2^64-1 to check exhaustion. A
 * zero-filled cipher has no key and refuses to work (KURER_ESTATE). */
typedef struct kurer_noise_cipher {
    uint8_t k[32];
    uint64_t n;
    int has_key;
} kurer_noise_cipher;

/* A new handshake state for pattern p in the given role (initiator != 0 for the initiator).
 *   prologue:          bound into the handshake hash; both sides must use the same bytes
 *                      (NULL with prologue_len 0 for none). Kurér uses "kurer/1".
 *   local_static_sk:   our X25519 private key: required for both IK roles and the NK responder,
 *                      NULL for the NK initiator. It is copied; the caller keeps its own copy.
 *   remote_static_pk:  the responder's public key, required for the initiator (both patterns),
 *                      NULL for the responder (the IK responder learns it from message 1).
 * 0 with *out set, or KURER_EINVAL for a wrong combination of arguments, KURER_ENOMEM,
 * KURER_EWEAKDH if the local private key gives no usable public key, or the error of
 * kurer_crypto_init if the crypto module cannot start. *out is NULL on error.
 * Free with kurer_noise_hs_free. */
KURER_EXPORT KURER_MUST_CHECK int kurer_noise_hs_new(kurer_noise_hs **out, kurer_noise_pattern p,
                                                     int initiator, const uint8_t *prologue,
                                                     size_t prologue_len,
                                                     const uint8_t local_static_sk[32],
                                                     const uint8_t remote_static_pk[32]);
/* As kurer_noise_hs_new, with the local static public key already known (local_static_pk must
 * be the public key of local_static_sk; the caller checked it once, e.g. when the key was
 * loaded). A responder that serves many handshakes with one key saves an X25519 base-point
 * multiplication per handshake. Both keys are NULL where the pattern has no local static key. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_noise_hs_new_with_public(kurer_noise_hs **out, kurer_noise_pattern p, int initiator,
                               const uint8_t *prologue, size_t prologue_len,
                               const uint8_t local_static_sk[32], const uint8_t local_static_pk[32],
                               const uint8_t remote_static_pk[32]);
/* Wipes and frees a handshake state. NULL-safe. */
KURER_EXPORT void kurer_noise_hs_free(kurer_noise_hs *hs);

/* Uses sk as our ephemeral private key instead of a random one. For test vectors only: a fixed
 * ephemeral key destroys forward secrecy. Must be called before our first message is written:
 * KURER_ESTATE afterwards. */
KURER_EXPORT KURER_MUST_CHECK int kurer_noise_hs_set_ephemeral(kurer_noise_hs *hs,
                                                               const uint8_t sk[32]);

/* Writes our next handshake message, carrying payload (n bytes; payload may be NULL if n is 0),
 * appended to out. Returns 0, or:
 *   KURER_ESTATE    not our turn, the handshake is finished, or it failed before;
 *   KURER_ELIMIT    the message would exceed KURER_NOISE_MAX_MSG bytes or out's limit;
 *   KURER_EWEAKDH   a Diffie-Hellman result was all zeros (a bad remote key);
 *   KURER_ENOMEM, KURER_EINVAL.
 * On error out is left as it was. Any error other than KURER_EINVAL and KURER_ESTATE leaves the
 * handshake failed: every later call returns KURER_ESTATE; free it and drop the connection. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_noise_hs_write_message(kurer_noise_hs *hs, const uint8_t *payload, size_t n, kurer_buf *out);
/* Reads the peer's next handshake message (msg, n bytes, from the network: untrusted) and
 * appends its decrypted payload to payload_out. Returns 0, or:
 *   KURER_ESTATE    not the peer's turn, finished, or failed before;
 *   KURER_ETRUNC    the message is shorter than the pattern requires;
 *   KURER_ELIMIT    the message is longer than KURER_NOISE_MAX_MSG, or payload_out is full;
 *   KURER_EDECRYPT  a tag did not verify (tampering, or the wrong static key);
 *   KURER_EWEAKDH   a Diffie-Hellman result was all zeros (a low-order public key);
 *   KURER_ENOMEM, KURER_EINVAL.
 * On error payload_out is left as it was. The failure rule is that of write_message. */
KURER_EXPORT KURER_MUST_CHECK int kurer_noise_hs_read_message(kurer_noise_hs *hs,
                                                              const uint8_t *msg, size_t n,
                                                              kurer_buf *payload_out);

/* 1 once both handshake messages have been written or read successfully, 0 otherwise. */
KURER_EXPORT int kurer_noise_hs_finished(const kurer_noise_hs *hs);
/* 1 if the next step is our write_message, 0 if it is read_message or there is none. */
KURER_EXPORT int kurer_noise_hs_my_turn(const kurer_noise_hs *hs);

/* The peer's static public key (32 bytes, valid while hs lives) or NULL if not known (or the
 * handshake failed). The initiator knows it from the start. The IK responder learns it from
 * message 1, whose payload decrypts only for the holder of that key; but message 1 can be
 * replayed, so the peer is known to be live only once its first transport message decrypts.
 * The NK responder never learns one. The caller must still check that the key is the one the
 * peer's certificate names. */
KURER_EXPORT const uint8_t *kurer_noise_hs_remote_static(const kurer_noise_hs *hs);

/* The handshake hash h (64 bytes) for channel binding: 0 once finished, KURER_ESTATE before. */
KURER_EXPORT KURER_MUST_CHECK int kurer_noise_hs_handshake_hash(const kurer_noise_hs *hs,
                                                                uint8_t out[64]);

/* Once finished: the transport ciphers for our sending and receiving directions (their nonces
 * start at 0), and the chaining key is wiped. Allowed once: KURER_ESTATE before the handshake
 * has finished or on a second call. The handshake hash and remote static key stay readable. */
KURER_EXPORT KURER_MUST_CHECK int kurer_noise_hs_split(kurer_noise_hs *hs, kurer_noise_cipher *send,
                                                       kurer_noise_cipher *recv);

/* Encrypts n bytes of plaintext with associated data ad (adlen bytes; NULL with 0 for none, which
 * is what Kurér's records use) and appends n + 16 bytes to out. 0, or KURER_ESTATE for a cipher
 * without a key, KURER_ELIMIT if n > KURER_NOISE_MAX_PLAINTEXT, out is full, or the nonce is
 * exhausted (2^64-1 messages: the connection must end), KURER_ENOMEM. On error neither the
 * nonce nor out changes. */
KURER_EXPORT KURER_MUST_CHECK int kurer_noise_encrypt(kurer_noise_cipher *c, const uint8_t *ad,
                                                      size_t adlen, const uint8_t *plaintext,
                                                      size_t n, kurer_buf *out);
/* Verifies and decrypts n bytes of ciphertext (untrusted) and appends n - 16 bytes to out.
 * 0, or KURER_ETRUNC if n < 16, KURER_ELIMIT if n > KURER_NOISE_MAX_MSG, out is full or the
 * nonce is exhausted, KURER_EDECRYPT if the tag does not verify, KURER_ESTATE for a cipher
 * without a key. On error neither the nonce nor out changes; the caller should still end the
 * connection, since the peer's next nonce has been spent. */
KURER_EXPORT KURER_MUST_CHECK int kurer_noise_decrypt(kurer_noise_cipher *c, const uint8_t *ad,
                                                      size_t adlen, const uint8_t *ciphertext,
                                                      size_t n, kurer_buf *out);

/* In-place forms, without allocation (the relay's per-record path). encrypt_inplace takes n
 * bytes of plaintext at buf, with cap >= n + 16 bytes of room, and leaves n + 16 bytes of
 * ciphertext there. decrypt_inplace takes n bytes of ciphertext at buf and leaves *ptlen = n - 16
 * bytes of plaintext there; on failure *ptlen is 0 and the first n - 16 bytes of buf are zeroed.
 * Errors as for kurer_noise_encrypt / kurer_noise_decrypt (KURER_ELIMIT if cap is too small). */
KURER_EXPORT KURER_MUST_CHECK int kurer_noise_encrypt_inplace(kurer_noise_cipher *c,
                                                              const uint8_t *ad, size_t adlen,
                                                              uint8_t *buf, size_t n, size_t cap);
KURER_EXPORT KURER_MUST_CHECK int kurer_noise_decrypt_inplace(kurer_noise_cipher *c,
                                                              const uint8_t *ad, size_t adlen,
                                                              uint8_t *buf, size_t n,
                                                              size_t *ptlen);

/* Wipes a cipher's key and counter (the cipher then has no key). NULL-safe. */
KURER_EXPORT void kurer_noise_cipher_wipe(kurer_noise_cipher *c);

#endif
