/* The postgres backend's private pieces shared between its files (relay/ only): store_pg.c (the
 * connection, the writer thread, rounds, loaders, the operations table), store_pg_exec.c (the
 * operations as SQL) and store_pg_schema.c (migrations). */
#ifndef KURER_RELAY_STORE_PG_H
#define KURER_RELAY_STORE_PG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

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

typedef struct pg_store {
    kurer_store base;
    kurer__storeq q;
    PGconn *conn;   /* the writer thread's (and a start-up loader's, while it holds the queue) */
    char *conninfo; /* kurer_secure_alloc'd (it may hold a password): wiped at close */
    int prepared;   /* the statements exist on this connection */
    pthread_t thread;
    int thread_started;
    uint64_t reconnects; /* connections lost and made again */
    int64_t node;        /* this writer's row in kurer_rounds (random, per open) */
    uint64_t round;      /* the number of its last transaction of writes, written in it */
    uint64_t backoff_ms; /* before the next reconnect attempt */
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
/* Runs a prepared statement with binary results: the result, or NULL after logging (the caller
 * then treats the round as failed). want: PGRES_TUPLES_OK or PGRES_COMMAND_OK. */
PGresult *kurer__pg_run(pg_store *s, pg_stmt st, const pg_params *p, ExecStatusType want);
/* A plain command (BEGIN, COMMIT, SAVEPOINT...): 0 or KURER_ESTORAGE (logged). */
int kurer__pg_cmd(pg_store *s, const char *sql);
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
/* Logs a failed result and keeps its SQLSTATE for the round's retry decision. */
void kurer__pg_note_error(pg_store *s, const PGresult *r);
/* The puts, acks, directory entries and revocation lists of a round, inside its transaction, in
 * pipeline mode (store_pg_pipe.c): a few round trips per round, not per statement. Sets each
 * op's err (KURER_ELIMIT for a put over a limit); 0, or KURER_ESTORAGE when the transaction
 * failed (the round is then rolled back). */
int kurer__pg_exec_pipelined(pg_store *s, kurer__op *round);
/* A prekey upload or take, inside the round's transaction after the pipelined part
 * (store_pg_exec.c): 0 or the op's error, or KURER_ESTORAGE when the transaction failed. */
int kurer__pg_exec_write(pg_store *s, kurer__op *o);
/* An invitation operation, the same way (store_pg_invite.c). */
int kurer__pg_exec_invite(pg_store *s, kurer__op *o);
/* A blob operation, the same way (store_pg_blob.c). */
int kurer__pg_exec_blob(pg_store *s, kurer__op *o);
/* The reads of a round (fetches, prekey counts), after its commit, pipelined too
 * (store_pg_pipe.c): sets each read's err (KURER_ESTORAGE for all when the pipeline failed). */
void kurer__pg_exec_reads(pg_store *s, kurer__op *round);
/* A fetch's rows, and its high mark and queue length, from their results (store_pg_exec.c):
 * 0, KURER_ENOMEM, or KURER_ECORRUPT for a row this relay did not write. */
int kurer__pg_take_rows(kurer__op *o, const PGresult *r);
int kurer__pg_take_high(kurer__op *o, const PGresult *r);

/* Brings the schema up to date (store_pg_schema.c): 0, KURER_EVERSION for a database of a newer
 * relay, KURER_ESTORAGE (a role without the rights to create it: `kurer-relay init`). */
int kurer__pg_migrate(PGconn *c);

#endif
