/* The postgres backend's private pieces shared between its files (relay/ only): store_pg.c
 * (parameters, loaders, the operations table, the constructors), store_pg_pool.c (the pool of
 * connections on the loop, rounds, batches), store_pg_pipe.c (a round's pipelined statements),
 * store_pg_exec.c, store_pg_invite.c and store_pg_blob.c (the operations as SQL) and
 * store_pg_schema.c (migrations). */
#ifndef KURER_RELAY_STORE_PG_H
#define KURER_RELAY_STORE_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "pg_loop.h"
#include "store.h"
#include "store_queue.h"

/* The prepared statements of the hot path (prepared at every (re)connect). */
typedef enum pg_stmt {
    PG_COUNT,         /* $1 usr, $2 device: envelopes queued */
    PG_COUNT_SENDER,  /* ... $3 sender */
    PG_PUT,           /* $1 usr, $2 device, $3 sender, $4 env: the next seq (row lock until the
                       * commit) and the row, in one statement; returns the seq */
    PG_DELETE,        /* $1 usr, $2 device, $3 seq */
    PG_HIGH,          /* $1 usr, $2 device: the device's last seq and its queue, one snapshot */
    PG_FETCH,         /* $1 usr, $2 device, $3 after, $4 limit */
    PG_DEVICE,        /* $1 usr, $2 device, $3 serial, $4 chain */
    PG_OTK_RETIRE,    /* $1 usr, $2 device, $3 registration id: another home's one-time keys go */
    PG_SPK,           /* $1 usr, $2 device, $3 registration id, $4..$7 the signed prekey */
    PG_OTK,           /* $1 usr, $2 device, $3 id, $4 pub */
    PG_COUNT_OTK,     /* $1 usr, $2 device */
    PG_GET_SPK,       /* $1 usr, $2 device */
    PG_TAKE_OTK,      /* $1 usr, $2 device: deletes and returns one (SKIP LOCKED) */
    PG_HAS_SPK,       /* $1 usr, $2 device */
    PG_CRL,           /* $1 issuer key id, $2 version, $3 list */
    PG_INV_PUT,       /* invitations (store_pg_invite.c): $1..$8 the new row */
    PG_INV_GET,       /* $1 id */
    PG_INV_SUBMIT,    /* $1 id, $2 request, $3 authority_mac, $4 submitted_at: OPEN -> WAITING */
    PG_INV_FAIL,      /* $1 id */
    PG_INV_LIST,      /* $1 authority, $2 after, $3 limit */
    PG_INV_DECIDE,    /* $1 id, $2 state, $3 chain: WAITING -> state */
    PG_PAYLOAD,       /* fan-out: $1 id, $2 sender, $3 references, $4 the shared bytes */
    PG_PUT_REF,       /* $1 usr, $2 device, $3 sender, $4 the payload's id: a reference */
    PG_DROP_PAYLOADS, /* the payloads whose last reference was acked */
    PG_BLOB_QUOTA,    /* blobs (store_pg_blob.c): $1 usr, $2 device, $3 now: bytes declared */
    PG_BLOB_CREATE,   /* $1 id, $2 usr, $3 device, $4 size, $5 now, $6 expires_at */
    PG_BLOB_LOAD,     /* $1 id, $2 now: the row, locked until the commit */
    PG_BLOB_CHUNK,    /* $1 id, $2 off, $3 data */
    PG_BLOB_GROW,     /* $1 id, $2 bytes more received */
    PG_BLOB_FINISH,   /* $1 id, $2 expires_at */
    PG_BLOB_READ,     /* $1 id, $2 from, $3 to: the chunks overlapping [from, to) */
    PG_BLOB_SWEPT,    /* $1 now: how many blobs, and their bytes, are expired */
    PG_BLOB_SWEEP,    /* $1 now: deletes them (the chunks go with them) */
    PG_BLOB_LIVE,     /* bytes received of every blob */
    PG_N_STMTS
} pg_stmt;

#define KURER__PG_POOL_MAX 16 /* pg_pool's bound */

/* One statement of a batch: what its result is for, and the result once it came. */
typedef struct pg_slot {
    kurer__op *o;
    size_t i;
    int what;
    PGresult *r;
} pg_slot;

struct pg_store;
struct pg_pool;

/* One connection of the pool (store_pg_pool.c): non-blocking, in pipeline mode, its socket in a
 * uv_poll; it runs one round at a time, a batch of statements (up to a sync point) at a time. */
typedef struct pg_conn {
    struct pg_store *s;
    struct pg_pool *pool;
    PGconn *conn; /* NULL while down */
    kurer__pg_watch w;
    kurer__pg_connector k; /* reconnects */
    uv_timer_t retry;      /* the backoff before the next attempt */
    uv_timer_t watch;      /* a batch sent: its results are due within BATCH_MS */
    uv_timer_t limit;      /* a round: it ends within ROUND_MS (store_pg_pool.c) */
    int state;             /* C_DOWN, C_CONNECTING, C_UP (store_pg_pool.c) */
    uint64_t backoff_ms;
    int64_t node;      /* its row in kurer_rounds (random, per open) */
    uint64_t round_no; /* the number of its last transaction of writes, written in it */
    /* the batch being queued (slots) and the last one completed (done, with its results) */
    pg_slot *slots, *done;
    size_t n, cap, n_done, cap_done, got;
    int syncing; /* the batch's sync point is sent, its results awaited */
    int broken;  /* libpq refused a statement: the connection is lost at the batch's end */
    int noted;   /* the batch's first failure was logged */
    char sqlstate[6];
    /* the round it runs (NULL: idle) */
    kurer__op *round, *cur; /* cur: the operation of P_SEQ */
    int phase, stage, attempt, commit_sent, resolving, rc;
    int warned;        /* a WARNING came with the batch of a COMMIT: not known to be replicated */
    int wrote;         /* the round's writes were executed (their row locks held) or failed */
    uint64_t round_id; /* its place in dispatch order */
    uint64_t t0_ns, deadline_ms, count;
} pg_conn;

typedef struct pg_store {
    kurer_store base;
    kurer__storeq q;
    uv_loop_t *loop;
    char *conninfo; /* kurer_secure_alloc'd (it may hold a password): wiped at close */
    struct pg_pool *pool;
} pg_store;

/* Binary parameters of one statement (at most 8). */
typedef struct pg_params {
    const char *v[8];
    int len[8];
    int fmt[8];
    uint8_t num[8][8]; /* int8 values, big-endian */
    int n;
} pg_params;

void kurer__pg_p_bytes(pg_params *p, const void *data, size_t len);
void kurer__pg_p_str(pg_params *p, const char *s); /* a C string, as bytea */
void kurer__pg_p_i64(pg_params *p, int64_t v);
/* Queues a prepared statement in the connection's batch (binary parameters and results), its
 * result for (o, i, what): 0, or KURER_ESTORAGE when libpq refused it (the connection is then
 * treated as lost). The k-th statement queued is the batch's slot k. */
int kurer__pg_send(pg_conn *c, pg_stmt st, const pg_params *p, kurer__op *o, size_t i, int what);
/* The same for a command without parameters (BEGIN, SAVEPOINT...). */
int kurer__pg_send_sql(pg_conn *c, const char *sql);
/* The k-th result of the batch completed last, if its status is want; NULL otherwise (the
 * first failure of a batch is logged and its SQLSTATE kept for the round's retry decision). */
const PGresult *kurer__pg_res(pg_conn *c, size_t k, ExecStatusType want);
/* The statements a connection prepares at every (re)connect (blocking: start-up, or the
 * connector thread): 0 or KURER_ESTORAGE (logged). */
int kurer__pg_prepare_all(PGconn *c);
/* Logs a failed result (r NULL: the connection's message). */
void kurer__pg_log(PGconn *c, const char *event, const PGresult *r);
/* An int8 column of a binary result; KURER_ECORRUPT if it is not 8 bytes. */
int kurer__pg_i64(const PGresult *r, int row, int col, int64_t *out);
/* Copies a bytea column of exactly len bytes; KURER_ECORRUPT otherwise. */
int kurer__pg_copy(const PGresult *r, int row, int col, uint8_t *out, size_t len);
/* Copies a bytea column holding a device's user into a kurer_device_address' user field
 * (NUL-terminated); KURER_ECORRUPT if too long or holding a NUL. */
int kurer__pg_user(const PGresult *r, int row, int col, char *out, size_t cap);

/* The SQL of each statement (store_pg_exec.c). */
extern const char *const kurer__pg_sql[PG_N_STMTS];
/* The statement's name on the connection. */
const char *kurer__pg_stmt_name(pg_stmt st);

/* A round's pipelined statements (store_pg_pipe.c), each part a batch of its own: the mailbox
 * counts of its puts with limits (after BEGIN), then its puts, acks, directory entries and
 * lists; after the commit its reads. kurer__pg_take_batch reads the results into their ops
 * (0, or KURER_ESTORAGE when a statement failed: the transaction is lost); kurer__pg_decide
 * applies the limits between the two parts (KURER_ELIMIT into a put over one). send_reads
 * returns whether it queued any. */
void kurer__pg_send_counts(pg_conn *c, kurer__op *round);
void kurer__pg_decide(pg_conn *c, kurer__op *round);
int kurer__pg_send_writes(pg_conn *c, kurer__op *round); /* 0 or KURER_ENOMEM */
int kurer__pg_send_reads(pg_conn *c, kurer__op *round);
int kurer__pg_take_batch(pg_conn *c);
/* Fails a round's reads (KURER_ESTORAGE, rows freed). */
void kurer__pg_fail_reads(kurer__op *round);

/* The operations that read before they write (prekey uploads and takes, invitations, blobs),
 * inside the round's transaction after its pipelined part, one after the other, each in steps:
 * stage 0 queues its first statements, stage k > 0 reads the results of stage k - 1's
 * (kurer__pg_res) and queues more, or ends. Returns the next stage (statements queued), 0 when
 * done (o->err set: 0 or the op's own error), or KURER_ESTORAGE when the transaction failed. */
int kurer__pg_step(pg_conn *c, kurer__op *o, int stage);
int kurer__pg_step_invite(pg_conn *c, kurer__op *o, int stage); /* store_pg_invite.c */
int kurer__pg_step_blob(pg_conn *c, kurer__op *o, int stage);   /* store_pg_blob.c */
/* A fetch's rows, and its high mark and queue length, from their results (store_pg_exec.c):
 * 0, KURER_ENOMEM, or KURER_ECORRUPT for a row this relay did not write. */
int kurer__pg_take_rows(kurer__op *o, const PGresult *r);
int kurer__pg_take_high(kurer__op *o, const PGresult *r);

/* The pool (store_pg_pool.c): n connections made now (blocking, start-up), each with its row in
 * kurer_rounds; 0 or KURER_ESTORAGE / KURER_ENOMEM (then nothing is left open). */
int kurer__pg_pool_open(pg_store *s, size_t n);
/* Rounds to idle connections (the queue's on_submit, and after every round). */
void kurer__pg_dispatch(pg_store *s);
/* Runs what is submitted and in flight to its end (blocking, on the loop thread), then closes
 * the connections; their handles close on the loop. */
void kurer__pg_pool_close(pg_store *s);

/* Brings the schema up to date (store_pg_schema.c): 0, KURER_EVERSION for a database of a newer
 * relay, KURER_ESTORAGE (a role without the rights to create it: `kurer-relay init`). */
int kurer__pg_migrate(PGconn *c);

#endif
