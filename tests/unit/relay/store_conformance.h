/* The conformance suite's backends (store_conformance_backends.c): how each opens the store of
 * a case's folder. */
#ifndef KURER_TESTS_STORE_CONFORMANCE_H
#define KURER_TESTS_STORE_CONFORMANCE_H

#include <stdint.h>

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

#endif
