/* Attachment sealing: kurer/blobseal.h. */
#include "kurer/blobseal.h"

#include <string.h>

#include <sodium.h>

struct kurer_blobseal {
    crypto_secretstream_xchacha20poly1305_state st;
    crypto_generichash_state hash;
    uint64_t plain;  /* plaintext bytes of the blob */
    uint64_t chunks; /* chunks of the blob */
    uint64_t done;   /* chunks that have passed */
    int pull;        /* opening */
    int failed;      /* an error happened: refuse the rest */
};

uint64_t kurer_seal_chunks(uint64_t plain)
{
    uint64_t n = plain / KURER_SEAL_CHUNK + (plain % KURER_SEAL_CHUNK != 0);
    return n == 0 ? 1 : n;
}

uint64_t kurer_seal_size(uint64_t plain)
{
    return KURER_SEAL_HEADER_LEN + plain + KURER_SEAL_ABYTES * kurer_seal_chunks(plain);
}

static int ctx_new(uint64_t plain, int pull, kurer_blobseal **out)
{
    kurer_blobseal *s = sodium_malloc(sizeof(*s));
    *out = NULL;
    if (s == NULL)
        return KURER_ENOMEM;
    memset(s, 0, sizeof(*s));
    s->plain = plain;
    s->chunks = kurer_seal_chunks(plain);
    s->pull = pull;
    crypto_generichash_init(&s->hash, NULL, 0, KURER_SEAL_DIGEST_LEN);
    *out = s;
    return 0;
}

int kurer_blobseal_push_new(const uint8_t key[KURER_SEAL_KEY_LEN], uint64_t plain,
                            uint8_t header[KURER_SEAL_HEADER_LEN], kurer_blobseal **out)
{
    int rc = ctx_new(plain, 0, out);
    if (rc != 0)
        return rc;
    crypto_secretstream_xchacha20poly1305_init_push(&(*out)->st, header, key);
    crypto_generichash_update(&(*out)->hash, header, KURER_SEAL_HEADER_LEN);
    return 0;
}

int kurer_blobseal_pull_new(const uint8_t key[KURER_SEAL_KEY_LEN], uint64_t plain,
                            uint64_t sealed_len, const uint8_t header[KURER_SEAL_HEADER_LEN],
                            kurer_blobseal **out)
{
    *out = NULL;
    if (sealed_len < kurer_seal_size(plain))
        return KURER_EBLOBTRUNC;
    if (sealed_len > kurer_seal_size(plain))
        return KURER_ETRAILING;
    int rc = ctx_new(plain, 1, out);
    if (rc != 0)
        return rc;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&(*out)->st, header, key) != 0) {
        kurer_blobseal_free(*out);
        *out = NULL;
        return KURER_EBLOBTAG;
    }
    crypto_generichash_update(&(*out)->hash, header, KURER_SEAL_HEADER_LEN);
    return 0;
}

size_t kurer_blobseal_next_len(const kurer_blobseal *s)
{
    if (s->done >= s->chunks)
        return 0;
    uint64_t left = s->plain - s->done * KURER_SEAL_CHUNK;
    size_t n = left > KURER_SEAL_CHUNK ? KURER_SEAL_CHUNK : (size_t)left;
    return s->pull ? n + KURER_SEAL_ABYTES : n;
}

int kurer_blobseal_push(kurer_blobseal *s, const uint8_t *in, size_t n, uint8_t *out,
                        size_t *out_len)
{
    unsigned long long len = 0;
    *out_len = 0;
    if (s->pull || s->failed || s->done >= s->chunks)
        return KURER_ESTATE;
    if (n != kurer_blobseal_next_len(s))
        return KURER_EINVAL;
    int last = s->done + 1 == s->chunks;
    unsigned char tag = last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                             : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    if (crypto_secretstream_xchacha20poly1305_push(&s->st, out, &len, in, n, NULL, 0, tag) != 0) {
        s->failed = 1;
        return KURER_ECRYPTO;
    }
    crypto_generichash_update(&s->hash, out, (unsigned long long)len);
    s->done++;
    *out_len = (size_t)len;
    return 0;
}

int kurer_blobseal_pull(kurer_blobseal *s, const uint8_t *in, size_t n, uint8_t *out,
                        size_t *out_len)
{
    unsigned long long len = 0;
    unsigned char tag = 0;
    *out_len = 0;
    if (!s->pull || s->failed || s->done >= s->chunks)
        return KURER_ESTATE;
    if (n != kurer_blobseal_next_len(s))
        return KURER_EINVAL;
    crypto_generichash_update(&s->hash, in, n);
    s->failed = 1; /* until this chunk has passed */
    if (crypto_secretstream_xchacha20poly1305_pull(&s->st, out, &len, &tag, in, n, NULL, 0) != 0)
        return KURER_EBLOBTAG;
    int last = s->done + 1 == s->chunks;
    int final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    if (final && !last) {
        sodium_memzero(out, (size_t)len);
        return KURER_ETRAILING; /* the sender's stream ended here: what follows is not its */
    }
    if (last && !final) {
        sodium_memzero(out, (size_t)len);
        return KURER_EBLOBTRUNC; /* the stream goes on beyond what we were given */
    }
    if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE && !final) {
        sodium_memzero(out, (size_t)len);
        return KURER_EBLOBTAG; /* PUSH and REKEY are not ours */
    }
    s->failed = 0;
    s->done++;
    *out_len = (size_t)len;
    return 0;
}

int kurer_blobseal_digest(kurer_blobseal *s, uint8_t digest[KURER_SEAL_DIGEST_LEN])
{
    if (s->pull || s->failed || s->done != s->chunks)
        return KURER_ESTATE;
    crypto_generichash_final(&s->hash, digest, KURER_SEAL_DIGEST_LEN);
    s->failed = 1; /* the hash state is spent */
    return 0;
}

int kurer_blobseal_verify(kurer_blobseal *s, const uint8_t digest[KURER_SEAL_DIGEST_LEN])
{
    uint8_t got[KURER_SEAL_DIGEST_LEN];
    if (!s->pull || s->failed)
        return KURER_ESTATE;
    if (s->done != s->chunks)
        return KURER_EBLOBTRUNC;
    crypto_generichash_final(&s->hash, got, KURER_SEAL_DIGEST_LEN);
    s->failed = 1;
    return sodium_memcmp(got, digest, KURER_SEAL_DIGEST_LEN) == 0 ? 0 : KURER_EBLOBDIGEST;
}

void kurer_blobseal_free(kurer_blobseal *s)
{
    if (s != NULL)
        sodium_free(s); /* wipes */
}
