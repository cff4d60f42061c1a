/* Device homes with certificates from a bench_pki, and two (anna, bob) with a session between
 * them, for the crypto, store and group benchmarks: the setup of tests/unit/client/test_home.c. */
#ifndef KURER_BENCH_HOMES_H
#define KURER_BENCH_HOMES_H

#include "common.h"
#include "home.h"

typedef struct bench_home {
    char home[128];
    kurer *k;
    uint8_t chain_bytes[KURER_CHAIN_BYTES_MAX];
    size_t chain_len;
    kurer_chain chain;
} bench_home;

/* Creates a home for user (passphrase pass; kdf: the Argon2id parameters of its store). */
void bench_home_create(bench_pki *p, bench_home *h, const char *user, uint64_t serial,
                       const char *pass, kurer_kdf_params kdf);
/* The same for a home of the relay at relay ("HOST:PORT") with the key relay_key, in a new
 * folder in parent (NULL: /tmp). */
void bench_home_create_at(bench_pki *p, bench_home *h, const char *user, uint64_t serial,
                          const char *pass, kurer_kdf_params kdf, const char *relay,
                          const uint8_t relay_key[32], const char *parent);
/* Each holds the other's certificate; a holds a session with b (X3DH from b's bundle) and b has
 * received a's first (pre-key) message, so both directions are plain ratchet messages. */
void bench_homes_pair(bench_home *a, bench_home *b);
void bench_home_remove(bench_home *h);
/* Bytes of the home's store files (db, wal). */
uint64_t bench_home_bytes(const bench_home *h);

#endif
