/* Attachment sealing (docs/protocol.md 4.6): a file is sealed with libsodium's
 * crypto_secretstream_xchacha20poly1305 under a random 32-byte key, in chunks of
 * KURER_SEAL_CHUNK plaintext bytes (the last one shorter, possibly empty, and tagged FINAL), and
 * the sealed blob's digest is BLAKE2b-256 over all of its bytes.
 *
 * Sealed layout: the 24-byte secretstream header, then one sealed chunk (plaintext + 17 bytes)
 * per plaintext chunk. The number of chunks follows from the plaintext size alone (at least one),
 * so a receiver that knows the size from the AttachmentPointer knows where every chunk ends and
 * which must be the last.
 *
 * Both directions work chunk by chunk with no I/O: the caller reads and writes. A context holds
 * the stream state (guarded memory) and a running digest of the sealed bytes; _free wipes it.
 * Not thread-safe per context. */
#ifndef KURER_BLOBSEAL_H
#define KURER_BLOBSEAL_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/error.h"

#define KURER_SEAL_KEY_LEN      32
#define KURER_SEAL_DIGEST_LEN   32
#define KURER_SEAL_HEADER_LEN   24
#define KURER_SEAL_ABYTES       17
#define KURER_SEAL_CHUNK        65536 /* plaintext bytes per chunk (all but the last) */
#define KURER_SEAL_SEALED_CHUNK (KURER_SEAL_CHUNK + KURER_SEAL_ABYTES)

typedef struct kurer_blobseal kurer_blobseal;

/* The number of chunks of a plaintext of plain bytes (at least 1). */
KURER_EXPORT uint64_t kurer_seal_chunks(uint64_t plain);
/* The sealed size of a plaintext of plain bytes (header, chunks, tags). */
KURER_EXPORT uint64_t kurer_seal_size(uint64_t plain);

/* Sealing plain bytes under key: *out (free with kurer_blobseal_free) and the stream header
 * (the blob's first KURER_SEAL_HEADER_LEN bytes, already in the digest). KURER_ENOMEM. */
KURER_EXPORT KURER_MUST_CHECK int kurer_blobseal_push_new(const uint8_t key[KURER_SEAL_KEY_LEN],
                                                          uint64_t plain,
                                                          uint8_t header[KURER_SEAL_HEADER_LEN],
                                                          kurer_blobseal **out);
/* Opening a blob that should hold plain bytes, sealed_len bytes long as received: KURER_EBLOBTRUNC
 * if sealed_len is shorter than kurer_seal_size(plain), KURER_ETRAILING if longer; then the header
 * (KURER_EBLOBTAG if libsodium refuses it). */
KURER_EXPORT KURER_MUST_CHECK int
kurer_blobseal_pull_new(const uint8_t key[KURER_SEAL_KEY_LEN], uint64_t plain, uint64_t sealed_len,
                        const uint8_t header[KURER_SEAL_HEADER_LEN], kurer_blobseal **out);

/* The length of the next chunk's input: plaintext bytes when sealing, sealed bytes when opening
 * (0 once every chunk has passed). */
KURER_EXPORT size_t kurer_blobseal_next_len(const kurer_blobseal *s);

/* Seals the next chunk: n must be kurer_blobseal_next_len (else KURER_EINVAL); out (room for
 * n + KURER_SEAL_ABYTES) gets the sealed chunk, *out_len its length. The last chunk is tagged
 * FINAL. */
KURER_EXPORT KURER_MUST_CHECK int kurer_blobseal_push(kurer_blobseal *s, const uint8_t *in,
                                                      size_t n, uint8_t *out, size_t *out_len);
/* Opens the next chunk: n must be kurer_blobseal_next_len (else KURER_EINVAL); out (room for
 * n - KURER_SEAL_ABYTES) gets the plaintext. KURER_EBLOBTAG: the chunk fails authentication
 * (altered, out of order, from another blob or under another key); KURER_ETRAILING: a chunk
 * before the last is tagged FINAL; KURER_EBLOBTRUNC: the last chunk is not. After an error the
 * context refuses everything (KURER_ESTATE). */
KURER_EXPORT KURER_MUST_CHECK int kurer_blobseal_pull(kurer_blobseal *s, const uint8_t *in,
                                                      size_t n, uint8_t *out, size_t *out_len);

/* After the last chunk: the sealed blob's digest (sealing), or the check against the expected
 * one (opening: constant time; KURER_EBLOBDIGEST if it differs). KURER_EBLOBTRUNC (opening) or
 * KURER_ESTATE (sealing) if chunks are left. */
KURER_EXPORT KURER_MUST_CHECK int kurer_blobseal_digest(kurer_blobseal *s,
                                                        uint8_t digest[KURER_SEAL_DIGEST_LEN]);
KURER_EXPORT KURER_MUST_CHECK int
kurer_blobseal_verify(kurer_blobseal *s, const uint8_t digest[KURER_SEAL_DIGEST_LEN]);

/* Wipes and frees. NULL-safe. */
KURER_EXPORT void kurer_blobseal_free(kurer_blobseal *s);

#endif
