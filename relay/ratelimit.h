/* Rate limits and per-peer bounds of the relay (private to relay/): token buckets, the table of
 * source addresses (pre-authentication connections and NK handshakes per address), and the
 * table of one-time prekeys taken (per taking device and victim user, per window).
 * Loop thread only. */
#ifndef KURER_RELAY_RATELIMIT_H
#define KURER_RELAY_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kurer/error.h"
#include "kurer/frame.h"
#include "htab.h"

/* A token bucket of rate per second with a burst of 4x rate. rate 0: no limit. */
typedef struct kurer__bucket {
    double tokens;
    uint64_t last_ms;
} kurer__bucket;

/* A full bucket (at its burst) as of now_ms. */
void kurer__bucket_init(kurer__bucket *b, uint64_t rate, uint64_t now_ms);
/* Takes n tokens if the bucket holds them (1), else takes nothing (0). */
int kurer__bucket_take(kurer__bucket *b, uint64_t rate, size_t n, uint64_t now_ms);
/* 1 if the bucket is back at its burst by now_ms (its entry may be forgotten). */
int kurer__bucket_full(const kurer__bucket *b, uint64_t rate, uint64_t now_ms);

/* ---- source addresses ---- */

typedef struct kurer__peer_addr {
    hnode node;
    uint8_t ip[16];   /* IPv4 as ::ffff:a.b.c.d */
    uint64_t preauth; /* live pre-authentication connections from this address */
    uint64_t uploads; /* chunked revocation uploads in progress from it */
    kurer__bucket nk; /* NK handshakes */
    kurer__bucket hs; /* connections accepted (every handshake costs DH work) */
} kurer__peer_addr;

typedef struct kurer__addr_table {
    htab t;
    size_t max_entries; /* beyond it new addresses are refused (fail closed) */
    uint64_t hs_rate;   /* connections per second per address (the hs buckets) */
} kurer__addr_table;

KURER_MUST_CHECK int kurer__addr_table_init(kurer__addr_table *a, size_t max_entries,
                                            uint64_t hs_rate);
void kurer__addr_table_free(kurer__addr_table *a);
/* The 16-byte form of a socket address (IPv4 mapped into IPv6); KURER_EINVAL for another
 * family. */
KURER_MUST_CHECK int kurer__addr_key(const struct sockaddr_storage *ss, uint8_t ip[16]);
/* The entry of ip, made (with a full NK bucket) if missing. NULL: no memory, or the table is at
 * max_entries. */
kurer__peer_addr *kurer__addr_get(kurer__addr_table *a, const uint8_t ip[16], uint64_t nk_rate,
                                  uint64_t now_ms);
/* Forgets entries with no pre-authentication connection whose NK bucket is full again. */
void kurer__addr_sweep(kurer__addr_table *a, uint64_t nk_rate, uint64_t now_ms);

/* ---- one-time prekeys taken ---- */

/* How many one-time prekeys a device (taker) took from the devices of one user (victim) in the
 * current window. */
typedef struct kurer__take {
    hnode node;
    kurer_device_address taker;
    uint64_t window_start_ms;
    uint64_t taken;
    char victim[]; /* NUL-terminated */
} kurer__take;

typedef struct kurer__take_table {
    htab t;
    size_t max_entries;
} kurer__take_table;

KURER_MUST_CHECK int kurer__take_table_init(kurer__take_table *tt, size_t max_entries);
void kurer__take_table_free(kurer__take_table *tt);
/* Grants taker up to want one-time prekeys of victim's devices now, given max per window_ms,
 * and counts what it grants as taken (whether or not the victim still had them: counting more
 * is the safe side). With the table full (no entry can be made) it grants 0: prekeys are
 * withheld, never handed out unmetered. */
size_t kurer__take_grant(kurer__take_table *tt, const kurer_device_address *taker,
                         const char *victim, size_t want, uint64_t max, uint64_t window_ms,
                         uint64_t now_ms);
/* Forgets entries whose window has passed. */
void kurer__take_sweep(kurer__take_table *tt, uint64_t window_ms, uint64_t now_ms);

#endif
