/* Relay unit tests: the hash table (lookups, growth, keys sharing a bucket or a hash, many keys,
 * removal while walking) and the dispatch table (one row per frame kind, what an NK session may
 * send, unknown kinds refused). */
#include "relay_units.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct item {
    hnode node;
    int key;
} item;

void test_htab(void **state)
{
    htab t;
    static item items[1000];
    (void)state;
    assert_int_equal(htab_init(&t), 0);
    for (int i = 0; i < 1000; i++) {
        items[i].key = i;
        htab_insert(&t, &items[i].node, htab_hash(&t, &items[i].key, sizeof(int)));
    }
    assert_int_equal(t.n, 1000);
    assert_true(t.mask + 1 >= 1000); /* grew */
    for (int i = 0; i < 1000; i += 7) {
        uint64_t h = htab_hash(&t, &i, sizeof(i));
        int found = 0;
        for (hnode *n = htab_first(&t, h); n != NULL; n = htab_next(n, h))
            found |= HTAB_ENTRY(n, item, node)->key == i;
        assert_true(found);
    }
    for (int i = 0; i < 1000; i += 2)
        htab_remove(&t, &items[i].node);
    assert_int_equal(t.n, 500);
    int k = 4;
    uint64_t h = htab_hash(&t, &k, sizeof(k));
    for (hnode *n = htab_first(&t, h); n != NULL; n = htab_next(n, h))
        assert_int_not_equal(HTAB_ENTRY(n, item, node)->key, 4);
    /* keyed: another table hashes the same key differently (with overwhelming probability) */
    htab t2;
    assert_int_equal(htab_init(&t2), 0);
    assert_true(htab_hash(&t2, &k, sizeof(k)) != htab_hash(&t, &k, sizeof(k)));
    assert_true(htab_hash_dev(&t, "ana@mof", 1) != htab_hash_dev(&t, "ana@mof", 2));
    htab_free(&t2);
    htab_free(&t);
}

void test_dispatch(void **state)
{
    (void)state;
    static const kurer_client_body all[] = {KURER_CLIENT_SEND,
                                            KURER_CLIENT_ACK,
                                            KURER_CLIENT_LOOKUP,
                                            KURER_CLIENT_PREKEYS,
                                            KURER_CLIENT_FETCH_PREKEYS,
                                            KURER_CLIENT_PING,
                                            KURER_CLIENT_REVOCATION,
                                            KURER_CLIENT_REVOCATIONS,
                                            KURER_CLIENT_REVOCATION_CHUNK,
                                            KURER_CLIENT_REVOCATION_CHUNK_FETCH};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_true(kurer__dispatch_allowed(all[i], 0)); /* every kind has a handler */
        int upload = all[i] == KURER_CLIENT_REVOCATION || all[i] == KURER_CLIENT_REVOCATION_CHUNK;
        assert_int_equal(kurer__dispatch_allowed(all[i], 1), upload); /* NK: uploads only */
    }
    assert_false(kurer__dispatch_allowed(KURER_CLIENT_NONE, 0));
}

/* Nodes with a hash chosen by the test. */
typedef struct fitem {
    hnode node;
    int key;
} fitem;

static size_t walk_count(const htab *t, uint64_t h)
{
    size_t k = 0;
    for (hnode *n = htab_first(t, h); n != NULL; n = htab_next(n, h)) {
        assert_true(n->hash == h);
        k++;
    }
    return k;
}

static int walk_has(const htab *t, uint64_t h, int key)
{
    for (hnode *n = htab_first(t, h); n != NULL; n = htab_next(n, h))
        if (HTAB_ENTRY(n, fitem, node)->key == key)
            return 1;
    return 0;
}

/* The table doubles when an insert finds it holding as many nodes as buckets (64 at first),
 * and every node stays reachable through each growth. */
void test_htab_growth(void **state)
{
    htab t;
    static fitem it[300];
    (void)state;
    assert_int_equal(htab_init(&t), 0);
    assert_int_equal(t.mask, 63);
    assert_int_equal(t.n, 0);
    for (int i = 0; i < 300; i++) {
        it[i].key = i;
        htab_insert(&t, &it[i].node, (uint64_t)i * 0x9e3779b97f4a7c15u);
        size_t want = i < 64 ? 63 : i < 128 ? 127 : i < 256 ? 255 : 511;
        assert_int_equal(t.mask, want);
        assert_int_equal(t.n, (size_t)i + 1);
    }
    for (int i = 0; i < 300; i++)
        assert_true(walk_has(&t, (uint64_t)i * 0x9e3779b97f4a7c15u, i));
    htab_free(&t);
    assert_null(t.b);
    assert_int_equal(t.n, 0);
}

/* Nodes of one hash form one walk; a node of another hash in the same bucket is not in it; any
 * node of a chain (head, middle, last) can be removed; growth splits a bucket correctly. */
void test_htab_collisions(void **state)
{
    htab t;
    static fitem a[3], other, far, filler[70];
    (void)state;
    assert_int_equal(htab_init(&t), 0);
    for (int i = 0; i < 3; i++) {
        a[i].key = i;
        htab_insert(&t, &a[i].node, 5);
    }
    other.key = 100;
    htab_insert(&t, &other.node, 5 + 64); /* same bucket of 64, another hash */
    far.key = 200;
    htab_insert(&t, &far.node, 5 + 128); /* same bucket of 64 and of 128 */
    assert_int_equal(walk_count(&t, 5), 3);
    assert_int_equal(walk_count(&t, 69), 1);
    assert_true(walk_has(&t, 69, 100));
    assert_false(walk_has(&t, 5, 100));
    assert_int_equal(walk_count(&t, 6), 0);       /* an empty bucket */
    assert_int_equal(walk_count(&t, 5 + 256), 0); /* a hash of a full bucket, never inserted */
    htab_remove(&t, &a[1].node);                  /* the middle of its chain */
    assert_int_equal(walk_count(&t, 5), 2);
    assert_false(walk_has(&t, 5, 1));
    assert_true(walk_has(&t, 5, 0) && walk_has(&t, 5, 2));
    htab_remove(&t, &far.node); /* the head (inserted last) */
    assert_int_equal(walk_count(&t, 133), 0);
    assert_int_equal(t.n, 3);
    htab_insert(&t, &far.node, 133); /* a removed node may go back in */
    for (int i = 0; i < 70; i++) {
        filler[i].key = 1000 + i;
        htab_insert(&t, &filler[i].node, 1000 + (uint64_t)i * 128); /* one bucket of 128 */
    }
    assert_int_equal(t.mask, 127);
    assert_int_equal(walk_count(&t, 5), 2); /* still found after the split */
    assert_true(walk_has(&t, 69, 100));
    assert_true(walk_has(&t, 133, 200));
    assert_true(walk_has(&t, 1000 + 69 * 128, 1069));
    assert_int_equal(t.n, 74);
    htab_free(&t);
}

typedef struct sitem {
    hnode node;
    char key[32];
} sitem;

static sitem *find_key(const htab *t, const char *key, size_t *matches)
{
    uint64_t h = htab_hash(t, key, strlen(key));
    sitem *found = NULL;
    *matches = 0;
    for (hnode *n = htab_first(t, h); n != NULL; n = htab_next(n, h)) {
        sitem *s = HTAB_ENTRY(n, sitem, node);
        if (strcmp(s->key, key) == 0) {
            found = s;
            (*matches)++;
        }
    }
    return found;
}

/* 50,000 names: each found exactly once, chains stay short (keyed SipHash), and removing them
 * all in another order empties every bucket. */
void test_htab_many(void **state)
{
    enum { N = 50000 };
    htab t;
    sitem *it = calloc(N, sizeof(*it));
    (void)state;
    assert_non_null(it);
    assert_int_equal(htab_init(&t), 0);
    for (int i = 0; i < N; i++) {
        snprintf(it[i].key, sizeof(it[i].key), "user%d@mof", i);
        htab_insert(&t, &it[i].node, htab_hash(&t, it[i].key, strlen(it[i].key)));
    }
    assert_int_equal(t.n, N);
    assert_int_equal(t.mask, 65535);
    size_t longest = 0, matches;
    for (size_t b = 0; b <= t.mask; b++) {
        size_t len = 0;
        for (hnode *n = t.b[b]; n != NULL; n = n->next)
            len++;
        longest = len > longest ? len : longest;
    }
    assert_true(longest < 16);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(find_key(&t, it[i].key, &matches), &it[i]);
    assert_null(find_key(&t, "user50000@mof", &matches));
    assert_int_equal(matches, 0);
    for (int i = 0; i < N; i++) {
        int k = (int)(((long)i * 7919) % N); /* 7919 is prime to 50000: a permutation */
        htab_remove(&t, &it[k].node);
        assert_null(find_key(&t, it[k].key, &matches));
    }
    assert_int_equal(t.n, 0);
    for (size_t b = 0; b <= t.mask; b++)
        assert_null(t.b[b]);
    htab_free(&t);
    free(it);
}

/* Removal while walking is supported when the walk takes the next node first: over all buckets
 * (as kurer__dir_free and the rate tables' sweeps do) and along one hash's chain. */
void test_htab_remove_iterating(void **state)
{
    htab t;
    static fitem it[200], same[4];
    (void)state;
    assert_int_equal(htab_init(&t), 0);
    for (int i = 0; i < 200; i++) {
        it[i].key = i;
        htab_insert(&t, &it[i].node, (uint64_t)i * 0x9e3779b97f4a7c15u);
    }
    for (size_t b = 0; b <= t.mask; b++)
        for (hnode *n = t.b[b], *next; n != NULL; n = next) {
            next = n->next;
            if (HTAB_ENTRY(n, fitem, node)->key % 2 == 1)
                htab_remove(&t, n);
        }
    assert_int_equal(t.n, 100);
    size_t seen = 0;
    for (size_t b = 0; b <= t.mask; b++)
        for (hnode *n = t.b[b]; n != NULL; n = n->next) {
            assert_int_equal(HTAB_ENTRY(n, fitem, node)->key % 2, 0);
            seen++;
        }
    assert_int_equal(seen, 100);
    for (int i = 0; i < 200; i += 2)
        assert_true(walk_has(&t, (uint64_t)i * 0x9e3779b97f4a7c15u, i));
    for (int i = 0; i < 4; i++) {
        same[i].key = 1000 + i;
        htab_insert(&t, &same[i].node, 42);
    }
    size_t removed = 0;
    for (hnode *n = htab_first(&t, 42), *next; n != NULL; n = next) {
        next = htab_next(n, 42);
        htab_remove(&t, n);
        removed++;
    }
    assert_int_equal(removed, 4);
    assert_int_equal(walk_count(&t, 42), 0);
    assert_int_equal(t.n, 100);
    htab_free(&t);
}

/* The table has exactly one row per kind the decoder knows (frame.h: 10..21) and none for any
 * other value; a kind without a row is EUNSUPPORTED whatever the session; on an NK session only
 * the two uploads pass (docs/protocol.md 1.4), the rest is EPERM. IK connections reach dispatch
 * only once authenticated (net calls on_established first), so they may send every kind. */
void test_dispatch_table(void **state)
{
    (void)state;
    for (int b = -1; b < 256; b++) {
        kurer_client_body body = (kurer_client_body)b;
        int known = b >= KURER_CLIENT_SEND && b <= KURER_CLIENT_BLOB_DOWNLOAD;
        int upload = b == KURER_CLIENT_REVOCATION || b == KURER_CLIENT_REVOCATION_CHUNK;
        assert_int_equal(kurer__dispatch_rows(body), known ? 1 : 0);
        assert_int_equal(kurer__dispatch_check(body, 0), known ? 0 : KURER_EUNSUPPORTED);
        assert_int_equal(kurer__dispatch_check(body, 1), !known   ? KURER_EUNSUPPORTED
                                                         : upload ? 0
                                                                  : KURER_EPERM);
        assert_int_equal(kurer__dispatch_allowed(body, 1), known && upload);
    }
    assert_int_equal(KURER_CLIENT_BLOB_DOWNLOAD - KURER_CLIENT_SEND + 1, 16);
}
