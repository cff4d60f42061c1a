/* A chained hash table with intrusive nodes (private to relay/). Keys are hashed with SipHash-2-4
 * (kurer_shorthash: libsodium's crypto_shorthash) under a random key per table, so that peers who
 * choose user names cannot pile entries into one chain. The table stores nodes only; callers
 * compare their own keys while walking a chain. */
#ifndef KURER_RELAY_HTAB_H
#define KURER_RELAY_HTAB_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/crypto.h"
#include "kurer/error.h"

typedef struct hnode {
    struct hnode *next;
    uint64_t hash;
} hnode;

typedef struct htab {
    hnode **b;
    size_t mask; /* buckets - 1 (a power of two) */
    size_t n;
    uint8_t key[KURER_SHORTHASH_KEY_LEN]; /* random, per table */
} htab;

#define HTAB_ENTRY(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

/* 0 or KURER_ENOMEM. */
KURER_MUST_CHECK int htab_init(htab *t);
void htab_free(htab *t); /* the buckets only: nodes belong to the caller */
uint64_t htab_hash(const htab *t, const void *data, size_t n);
/* The hash of a device address (user, device id). */
uint64_t htab_hash_dev(const htab *t, const char *user, uint32_t device_id);
/* The first node of hash h's chain; walk with htab_next. */
hnode *htab_first(const htab *t, uint64_t h);
hnode *htab_next(hnode *n, uint64_t h);
/* Inserts node (h set here); grows the table as it fills (a failed growth keeps the old one). */
void htab_insert(htab *t, hnode *node, uint64_t h);
/* Removes node (which must be in the table). */
void htab_remove(htab *t, hnode *node);

#endif
