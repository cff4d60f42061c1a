/* The conformance suite's backends (store_conformance_backends.c): how each opens the store of
 * a case's folder. */
#ifndef KURER_TESTS_STORE_CONFORMANCE_H
#define KURER_TESTS_STORE_CONFORMANCE_H

#include <stdint.h>

#include <stddef.h>

#include "store.h"

typedef struct backend {
    const char *name;
    /* Opens (creating) the store that lives in dir, keyed with key. */
    int (*open)(kurer_store **out, uv_loop_t *loop, const char *dir, const uint8_t key[32]);
} backend;

int sqlite_open(kurer_store **out, uv_loop_t *loop, const char *dir, const uint8_t key[32]);
/* postgres: the case's own schema on the server KURER_PG_CONNINFO_FILE names */
int pg_open(kurer_store **out, uv_loop_t *loop, const char *dir, const uint8_t key[32]);
/* Runs SQL in the case's schema (a test's own changes, e.g. a newer schema version). */
void pg_sql(const char *dir, const char *sql);
/* Ends the case's store connections from the server's side (as a failover or restart would). */
void pg_kill_connections(const char *dir);
/* A connection of the test's own in the case's schema that ran sql (and keeps what it holds,
 * e.g. an advisory lock) until pg_release runs sql on it and closes it. */
void *pg_hold(const char *dir, const char *sql);
void pg_release(void *conn, const char *sql);

/* ---- the cases' fixture and helpers (store_conformance.c) ---------------------------------- */

typedef struct fx {
    const backend *be;
    char dir[64];
    uint8_t key[32];
    uv_loop_t loop;
    kurer_store *s;
    /* results of the last callbacks */
    int done, err;
    uint64_t count, high;
    size_t cancelled;
    uint64_t seqs[8], prev[8]; /* of the last put (on_seqs), and whether on_seqs came first */
    size_t n_seqs;
    int seqs_before_done;
    /* an ack to submit from on_seqs (the put's first seq), for this device; once */
    const kurer_device_address *ack_from_seqs;
    kurer_store_row rows[16];
    uint8_t bytes[16][64];
    size_t n_rows;
    kurer_store_bundle bundles[4];
    size_t n_bundles;
} fx;

extern const backend *current;
int is_pg(const void *fxp);
/* Skips a case that does not apply to the backend, saying why. */
#define SKIP_UNLESS(cond, why)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_message("SKIPPED for %s: %s\n", current->name, why);                             \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

void wait_done(fx *f, int want);
void on_count(void *arg, int err, uint64_t count);
kurer_device_address addr(const char *user, uint32_t device);
/* One envelope for to from `from`, its bytes the letter c repeated. */
int put_one(fx *f, const char *to, uint32_t dev, const char *from, char c,
            const kurer_store_limits *lim, uint64_t *seq_out);
void fetch(fx *f, const char *user, uint32_t dev, uint64_t after, size_t limit);

/* ---- cases of several rounds or stores (store_conformance_rounds.c) ------------------------ */

void test_two_nodes(void **state);
void test_reconnect(void **state);
void test_big_round(void **state);
void test_capped_rounds(void **state);
void test_pipeline_error(void **state);
void test_commit_lost(void **state);
/* ---- fan-out puts (store_conformance_fanout.c) */
void test_fanout(void **state);
/* ---- invitations (store_conformance_invites.c) */
void test_invites(void **state);
/* ---- blobs (store_conformance_blobs.c) */
void test_blobs(void **state);
void test_blob_sweep(void **state);

#endif
