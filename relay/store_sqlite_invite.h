/* The sqlite backend's invitation and blob operations (relay/ only): store_sqlite_invite.c,
 * store_sqlite_blob.c. */
#ifndef KURER_RELAY_STORE_SQLITE_INVITE_H
#define KURER_RELAY_STORE_SQLITE_INVITE_H

#include "store_queue.h"
#include "store_sqlite.h"

/* Executes an INVITE operation inside the current transaction: o->err's value. */
int kurer__sq_exec_invite(sqlite3 *db, kurer__op *o);
/* Executes a BLOB operation the same way (store_sqlite_blob.c). */
int kurer__sq_exec_blob(sqlite3 *db, kurer__op *o);

#endif
