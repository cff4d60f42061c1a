/* The reference forwarder's queue entries (bench_fwd: fwd.c), shared with its PostgreSQL writer
 * (fwd_pg.c, pg_limit). Benchmark code. */
#ifndef KURER_BENCH_FWD_H
#define KURER_BENCH_FWD_H

#include <stddef.h>
#include <stdint.h>

struct client;

typedef struct op {
    int del;
    uint64_t seq;          /* a put's seq (with --pg: the one the put statement returned) */
    uint32_t to, from;     /* device indexes: recipient (of a put, or the acking device) */
    struct client *sender; /* for the answer (NULL for deletes) */
    uint64_t req;
    uint8_t *content;
    size_t len;
} op;

/* Connects (blocking mode, then pipeline mode) and prepares the put and delete statements;
 * exits on failure. conninfo: a libpq connection string. */
void fwd_pg_open(const char *conninfo);
/* One transaction over a batch: BEGIN, a put (the relay schema's statement, binary parameters)
 * or delete per op, COMMIT, pipelined with a sync point every 256 statements as the relay's
 * rounds are. Sets each put's seq. Exits on any failure (the benchmark's figures would be
 * meaningless). */
void fwd_pg_commit(op *v, size_t n);

#endif
