/* See htab.h. */
#include "htab.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"

int htab_init(htab *t)
{
    memset(t, 0, sizeof(*t));
    t->b = calloc(64, sizeof(*t->b));
    if (t->b == NULL)
        return KURER_ENOMEM;
    t->mask = 63;
    kurer_random(t->key, sizeof(t->key));
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
    return kurer_shorthash(t->key, data, n);
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
    return kurer_shorthash(t->key, buf, n + 5);
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
