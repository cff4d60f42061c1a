/* The sqlite backend's private pieces shared between its files (relay/ only). */
#ifndef KURER_RELAY_STORE_SQLITE_H
#define KURER_RELAY_STORE_SQLITE_H

#include <stdint.h>

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

#endif
