#include "kurer/crypto.h"
#include "linkage.h"

#include <pthread.h>
#include <sodium.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = KURER_EINTERNAL;

static void crypto_init_once(void)
{
    if (sodium_init() < 0) {
        init_result = KURER_ECRYPTO;
        return;
    }
    init_result = kurer__linkage_check();
}

int kurer_crypto_init(void)
{
    pthread_once(&init_once, crypto_init_once);
    return init_result;
}

void kurer_random(void *buf, size_t n)
{
    randombytes_buf(buf, n);
}

uint32_t kurer_random_uniform(uint32_t upper)
{
    return randombytes_uniform(upper);
}

void *kurer_secure_alloc(size_t n)
{
    /* sodium_malloc aborts before sodium_init: make the order impossible to get wrong. */
    if (kurer_crypto_init() != 0)
        return NULL;
    return sodium_malloc(n);
}

void kurer_secure_free(void *p)
{
    if (p != NULL)
        sodium_free(p);
}

void kurer_secure_readonly(void *p)
{
    if (p != NULL)
        (void)sodium_mprotect_readonly(p);
}

void kurer_secure_readwrite(void *p)
{
    if (p != NULL)
        (void)sodium_mprotect_readwrite(p);
}

int kurer_ct_equal(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

int kurer_ct_is_zero(const void *a, size_t n)
{
    return sodium_is_zero(a, n);
}

void kurer_memzero(void *p, size_t n)
{
    if (p != NULL && n > 0)
        sodium_memzero(p, n);
}

void kurer_hash256(uint8_t out[32], const void *data, size_t n)
{
    crypto_generichash_blake2b(out, 32, data, n, NULL, 0);
}

uint64_t kurer_shorthash(const uint8_t key[KURER_SHORTHASH_KEY_LEN], const void *data, size_t n)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v = 0;
    crypto_shorthash(h, data, n, key);
    for (size_t i = 0; i < sizeof(h); i++)
        v |= (uint64_t)h[i] << (8 * i);
    return v;
}
