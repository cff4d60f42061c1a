/* The sqlite backend's private pieces shared between its files (relay/ only). */
#ifndef KURER_RELAY_STORE_SQLITE_H
#define KURER_RELAY_STORE_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SQLITE_HAS_CODEC 1 /* declares sqlite3_key (SQLCipher) */
#include <sqlite3.h>

/* Hands the raw 256-bit key to SQLCipher through sqlite3_key (never as SQL text). 0,
 * KURER_ENOMEM or KURER_ESTORAGE. */
int kurer__sqlite_apply_key(sqlite3 *db, const uint8_t key[32]);
/* Brings the schema up to date (store_schema.c): 0, KURER_EVERSION for a store of a newer
 * relay, KURER_ESTORAGE. Writes nothing when the schema is current. */
int kurer__sqlite_migrate(sqlite3 *db);

/* The backup (store_backup.c): exports db into path.tmp (ATTACH without a key: SQLCipher
 * keys it with the main database's key and salt), fsyncs it and renames it to path; then
 * fsyncs path's folder. Outside a transaction, by the connection's one user. Needs nothing but
 * open, write, fsync and rename (no journal for the attached file): the relay's seccomp list.
 * 0, KURER_ESTORAGE (SQLite's message logged as backup_failed) or KURER_EIO. */
int kurer__sqlite_export(sqlite3 *db, const char *path);

/* Fan-out (store_sqlite_fanout.c): the shared bytes once in fanout_payloads (with the sender
 * and a count of the references left), and per recipient a row of fanout_refs keyed by the
 * device's number (devnums, given when the device enters the directory) and its seq: about 20
 * bytes a device. Statements prepared once; writer thread only. */
typedef struct kurer__sq_fanout {
    sqlite3 *db;
    int any; /* the store holds (or held, this run) a reference: else nothing to look up */
    sqlite3_stmt *num_get, *num_add, *payload_add, *ref_add, *count, *count_sender, *fetch,
        *ref_find, *ref_del, *unref, *drop;
} kurer__sq_fanout;

struct kurer__op;
int kurer__sq_fanout_prepare(sqlite3 *db, kurer__sq_fanout *f);
void kurer__sq_fanout_finalize(kurer__sq_fanout *f);
/* The device's number, made if it has none (create), else 0 in *num when it has none. */
int kurer__sq_fanout_devnum(kurer__sq_fanout *f, const char *user, uint32_t device, int create,
                            int64_t *num);
/* References the device's mailbox holds (of sender's user only, if sender is not NULL). */
int kurer__sq_fanout_count(kurer__sq_fanout *f, const char *user, uint32_t device,
                           const char *sender, uint64_t *out);
/* Writes a fan-out put's shared bytes and its references not skipped (bounds checked before). */
int kurer__sq_fanout_put(kurer__sq_fanout *f, const struct kurer__op *o);
/* Appends the device's references with seq > after (at most limit, in seq order) as whole
 * envelopes to rows (*n of them, *cap allocated; each env malloc'ed). */
int kurer__sq_fanout_fetch(kurer__sq_fanout *f, const char *user, uint32_t device, uint64_t after,
                           uint64_t limit, kurer_store_row **rows, size_t *n, size_t *cap);
/* Removes the device's reference with seq (if there is one), and the shared bytes with the last
 * reference. */
int kurer__sq_fanout_ack(kurer__sq_fanout *f, const char *user, uint32_t device, uint64_t seq);

#endif
