/* See ratelimit.h. */
#include "ratelimit.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static double burst_of(uint64_t rate)
{
    return (double)rate * 4;
}

void kurer__bucket_init(kurer__bucket *b, uint64_t rate, uint64_t now_ms)
{
    b->tokens = burst_of(rate);
    b->last_ms = now_ms;
}

static void refill(kurer__bucket *b, uint64_t rate, uint64_t now_ms)
{
    if (now_ms > b->last_ms)
        b->tokens += (double)(now_ms - b->last_ms) * (double)rate / 1000.0;
    b->last_ms = now_ms;
    if (b->tokens > burst_of(rate))
        b->tokens = burst_of(rate);
}

int kurer__bucket_take(kurer__bucket *b, uint64_t rate, size_t n, uint64_t now_ms)
{
    if (rate == 0)
        return 1;
    refill(b, rate, now_ms);
    if (b->tokens < (double)n)
        return 0;
    b->tokens -= (double)n;
    return 1;
}

int kurer__bucket_full(const kurer__bucket *b, uint64_t rate, uint64_t now_ms)
{
    if (rate == 0)
        return 1;
    kurer__bucket c = *b;
    refill(&c, rate, now_ms);
    return c.tokens >= burst_of(rate);
}

/* ---- source addresses ---- */

int kurer__addr_table_init(kurer__addr_table *a, size_t max_entries, uint64_t hs_rate)
{
    a->max_entries = max_entries;
    a->hs_rate = hs_rate;
    return htab_init(&a->t);
}

/* Removes and frees every entry for which drop says so (all of them with drop NULL). */
static void addr_each_drop(kurer__addr_table *a,
                           int (*drop)(const kurer__addr_table *, kurer__peer_addr *, uint64_t,
                                       uint64_t),
                           uint64_t rate, uint64_t now_ms)
{
    for (size_t i = 0; a->t.b != NULL && i <= a->t.mask; i++)
        for (hnode *n = a->t.b[i], *next; n != NULL; n = next) {
            next = n->next;
            kurer__peer_addr *e = HTAB_ENTRY(n, kurer__peer_addr, node);
            if (drop == NULL || drop(a, e, rate, now_ms)) {
                htab_remove(&a->t, n);
                free(e);
            }
        }
}

void kurer__addr_table_free(kurer__addr_table *a)
{
    addr_each_drop(a, NULL, 0, 0);
    htab_free(&a->t);
}

int kurer__addr_key(const struct sockaddr_storage *ss, uint8_t ip[16])
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ss;
        memset(ip, 0, 10);
        ip[10] = ip[11] = 0xff;
        memcpy(ip + 12, &a->sin_addr, 4);
        return 0;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ss;
        memcpy(ip, &a->sin6_addr, 16);
        /* One host (or one customer) gets a /64: bounds per /128 would be no bounds at all. An
         * IPv4-mapped address stays whole. */
        if (!IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            memset(ip + 8, 0, 8);
        return 0;
    }
    return KURER_EINVAL;
}

kurer__peer_addr *kurer__addr_get(kurer__addr_table *a, const uint8_t ip[16], uint64_t nk_rate,
                                  uint64_t now_ms)
{
    uint64_t h = htab_hash(&a->t, ip, 16);
    for (hnode *n = htab_first(&a->t, h); n != NULL; n = htab_next(n, h)) {
        kurer__peer_addr *e = HTAB_ENTRY(n, kurer__peer_addr, node);
        if (memcmp(e->ip, ip, 16) == 0)
            return e;
    }
    if (a->t.n >= a->max_entries)
        kurer__addr_sweep(a, nk_rate, now_ms); /* forget idle entries before refusing */
    if (a->t.n >= a->max_entries)
        return NULL;
    kurer__peer_addr *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    memcpy(e->ip, ip, 16);
    kurer__bucket_init(&e->nk, nk_rate, now_ms);
    kurer__bucket_init(&e->hs, a->hs_rate, now_ms);
    htab_insert(&a->t, &e->node, h);
    return e;
}

static int addr_idle(const kurer__addr_table *a, kurer__peer_addr *e, uint64_t rate,
                     uint64_t now_ms)
{
    return e->preauth == 0 && e->uploads == 0 && kurer__bucket_full(&e->nk, rate, now_ms) &&
           kurer__bucket_full(&e->hs, a->hs_rate, now_ms);
}

void kurer__addr_sweep(kurer__addr_table *a, uint64_t nk_rate, uint64_t now_ms)
{
    addr_each_drop(a, addr_idle, nk_rate, now_ms);
}

/* ---- one-time prekeys taken ---- */

int kurer__take_table_init(kurer__take_table *tt, size_t max_entries)
{
    tt->max_entries = max_entries;
    return htab_init(&tt->t);
}

static void take_each_drop(kurer__take_table *tt, uint64_t window_ms, uint64_t now_ms, int all)
{
    for (size_t i = 0; tt->t.b != NULL && i <= tt->t.mask; i++)
        for (hnode *n = tt->t.b[i], *next; n != NULL; n = next) {
            next = n->next;
            kurer__take *e = HTAB_ENTRY(n, kurer__take, node);
            if (all || now_ms - e->window_start_ms >= window_ms) {
                htab_remove(&tt->t, n);
                free(e);
            }
        }
}

void kurer__take_table_free(kurer__take_table *tt)
{
    take_each_drop(tt, 0, 0, 1);
    htab_free(&tt->t);
}

void kurer__take_sweep(kurer__take_table *tt, uint64_t window_ms, uint64_t now_ms)
{
    take_each_drop(tt, window_ms, now_ms, 0);
}

static uint64_t take_hash(const kurer__take_table *tt, const kurer_device_address *taker,
                          const char *victim)
{
    return htab_hash_dev(&tt->t, taker->user, taker->device_id) ^
           htab_hash(&tt->t, victim, strlen(victim));
}

size_t kurer__take_grant(kurer__take_table *tt, const kurer_device_address *taker,
                         const char *victim, size_t want, uint64_t max, uint64_t window_ms,
                         uint64_t now_ms)
{
    uint64_t h = take_hash(tt, taker, victim);
    kurer__take *e = NULL;
    for (hnode *n = htab_first(&tt->t, h); n != NULL; n = htab_next(n, h)) {
        kurer__take *x = HTAB_ENTRY(n, kurer__take, node);
        if (x->taker.device_id == taker->device_id && strcmp(x->taker.user, taker->user) == 0 &&
            strcmp(x->victim, victim) == 0) {
            e = x;
            break;
        }
    }
    if (e == NULL) {
        size_t vlen = strlen(victim);
        if (want == 0)
            return 0; /* nothing to take (an unknown user): no entry for it */
        if (tt->t.n >= tt->max_entries)
            kurer__take_sweep(tt, window_ms, now_ms);
        if (tt->t.n >= tt->max_entries || (e = calloc(1, sizeof(*e) + vlen + 1)) == NULL)
            return 0;
        e->taker = *taker;
        memcpy(e->victim, victim, vlen + 1);
        e->window_start_ms = now_ms;
        htab_insert(&tt->t, &e->node, h);
    }
    if (now_ms - e->window_start_ms >= window_ms) {
        e->window_start_ms = now_ms;
        e->taken = 0;
    }
    uint64_t left = e->taken < max ? max - e->taken : 0;
    size_t granted = want < left ? want : (size_t)left;
    e->taken += granted;
    return granted;
}
