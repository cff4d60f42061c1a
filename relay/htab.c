/* See htab.h. */
#include "htab.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* SipHash-2-4 (Aumasson, Bernstein) of data under (k0, k1). */
static uint64_t siphash(uint64_t k0, uint64_t k1, const uint8_t *in, size_t inlen)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)inlen << 56, m;
    size_t left = inlen & 7;
    const uint8_t *end = in + inlen - left;
    for (; in != end; in += 8) {
        m = 0;
        for (int i = 0; i < 8; i++)
            m |= (uint64_t)in[i] << (8 * i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < left; i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

int htab_init(htab *t)
{
    uint64_t k[2];
    memset(t, 0, sizeof(*t));
    t->b = calloc(64, sizeof(*t->b));
    if (t->b == NULL)
        return KURER_ENOMEM;
    t->mask = 63;
    kurer_random(k, sizeof(k));
    t->k0 = k[0];
    t->k1 = k[1];
    return 0;
}

void htab_free(htab *t)
{
    free(t->b);
    t->b = NULL;
    t->n = 0;
}

uint64_t htab_hash(const htab *t, const void *data, size_t n)
{
    return siphash(t->k0, t->k1, data, n);
}

uint64_t htab_hash_dev(const htab *t, const char *user, uint32_t device_id)
{
    uint8_t buf[160];
    size_t n = strlen(user);
    if (n > sizeof(buf) - 5)
        n = sizeof(buf) - 5;
    memcpy(buf, user, n);
    buf[n] = 0;
    buf[n + 1] = (uint8_t)(device_id >> 24);
    buf[n + 2] = (uint8_t)(device_id >> 16);
    buf[n + 3] = (uint8_t)(device_id >> 8);
    buf[n + 4] = (uint8_t)device_id;
    return siphash(t->k0, t->k1, buf, n + 5);
}

hnode *htab_first(const htab *t, uint64_t h)
{
    hnode *n = t->b[h & t->mask];
    while (n != NULL && n->hash != h)
        n = n->next;
    return n;
}

hnode *htab_next(hnode *n, uint64_t h)
{
    for (n = n->next; n != NULL && n->hash != h; n = n->next)
        ;
    return n;
}

static void grow(htab *t)
{
    size_t nb = (t->mask + 1) * 2;
    hnode **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i <= t->mask; i++)
        for (hnode *n = t->b[i], *next; n != NULL; n = next) {
            next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
        }
    free(t->b);
    t->b = b;
    t->mask = nb - 1;
}

void htab_insert(htab *t, hnode *node, uint64_t h)
{
    if (t->n >= t->mask + 1)
        grow(t);
    node->hash = h;
    node->next = t->b[h & t->mask];
    t->b[h & t->mask] = node;
    t->n++;
}

void htab_remove(htab *t, hnode *node)
{
    for (hnode **p = &t->b[node->hash & t->mask]; *p != NULL; p = &(*p)->next)
        if (*p == node) {
            *p = node->next;
            node->next = NULL;
            t->n--;
            return;
        }
}
