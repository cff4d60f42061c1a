/* The store's record of key changes (store.h): a peer device's new identity key, and the old
 * one kept as history. Outside store.c, which may not grow (tests/size_exceptions.txt). */
#include "store.h"

#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

static int failed(int r)
{
    return r == SQLITE_BUSY || r == SQLITE_LOCKED  ? KURER_EBUSY
           : r == SQLITE_FULL || r == SQLITE_IOERR ? KURER_EIO
                                                   : KURER_ESTORAGE;
}

static int prepare(kurer__store *st, const char *sql, sqlite3_stmt **s)
{
    int r = sqlite3_prepare_v2(kurer__store_sqlite(st), sql, -1, s, NULL);
    return r == SQLITE_OK ? 0 : failed(r);
}

static int step_done(sqlite3_stmt *s)
{
    int r = sqlite3_step(s);
    sqlite3_finalize(s);
    return r == SQLITE_DONE ? 0 : failed(r);
}

/* The device's outbox items were encrypted for the old key. */
static int mark_stale(kurer__store *st, const char *user, uint32_t device_id)
{
    sqlite3_stmt *s = NULL;
    int rc =
        prepare(st, "UPDATE outbox SET key_stale = 1 WHERE to_user = ? AND to_device = ?;", &s);
    if (rc != 0)
        return rc;
    if ((sqlite3_bind_text(s, 1, user, -1, SQLITE_TRANSIENT) |
         sqlite3_bind_int64(s, 2, device_id)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return step_done(s);
}

static int insert(kurer__store *st, const kurer__key_change *c)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "INSERT INTO key_changes (user, device_id, serial, issuer, identity_key, "
                     "old_serial, old_issuer, old_identity_key, at, unreported) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1);",
                     &s);
    if (rc != 0)
        return rc;
    int b = sqlite3_bind_text(s, 1, c->user, -1, SQLITE_TRANSIENT);
    b |= sqlite3_bind_int64(s, 2, c->device_id);
    b |= sqlite3_bind_int64(s, 3, (sqlite3_int64)c->serial);
    b |= sqlite3_bind_text(s, 4, c->issuer, -1, SQLITE_TRANSIENT);
    b |= sqlite3_bind_blob(s, 5, c->identity_key, KURER_IDENTITY_KEY_LEN, SQLITE_TRANSIENT);
    b |= sqlite3_bind_int64(s, 6, (sqlite3_int64)c->old_serial);
    b |= sqlite3_bind_text(s, 7, c->old_issuer, -1, SQLITE_TRANSIENT);
    b |= sqlite3_bind_blob(s, 8, c->old_identity_key, KURER_IDENTITY_KEY_LEN, SQLITE_TRANSIENT);
    b |= sqlite3_bind_int64(s, 9, c->at);
    if (b != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return step_done(s);
}

int kurer__store_key_change_add(kurer__store *st, kurer__key_change *c)
{
    int rc = kurer__store_begin(st);
    if (rc != 0)
        return rc;
    size_t ulen = strlen(c->user);
    if ((rc = mark_stale(st, c->user, c->device_id)) == 0 && (rc = insert(st, c)) == 0) {
        c->rowid = sqlite3_last_insert_rowid(kurer__store_sqlite(st));
        c->unreported = 1;
        /* The old key's session cannot reach the new device; libsignal's saved identity is
         * the old key's too. Both go (secure_delete overwrites them). */
        int d = kurer__store_session_delete(st, c->user, ulen, (int32_t)c->device_id);
        rc = d < 0 ? d : 0;
    }
    if (rc == 0)
        rc = kurer__store_peer_identity_put(st, c->user, ulen, (int32_t)c->device_id, NULL, 0);
    if (rc != 0) {
        kurer__store_rollback(st);
        return rc;
    }
    return kurer__store_commit(st);
}

static int column_text(sqlite3_stmt *s, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    int n = sqlite3_column_bytes(s, i);
    if (t == NULL || n < 0 || (size_t)n >= cap || memchr(t, '\0', (size_t)n) != NULL)
        return KURER_ECORRUPT;
    memcpy(out, t, (size_t)n);
    out[n] = '\0';
    return 0;
}

static int column_key(sqlite3_stmt *s, int i, uint8_t out[KURER_IDENTITY_KEY_LEN])
{
    const void *p = sqlite3_column_blob(s, i);
    if (p == NULL || sqlite3_column_bytes(s, i) != KURER_IDENTITY_KEY_LEN)
        return KURER_ECORRUPT;
    memcpy(out, p, KURER_IDENTITY_KEY_LEN);
    return 0;
}

static int row(sqlite3_stmt *s, kurer__key_change *c)
{
    memset(c, 0, sizeof(*c));
    c->rowid = sqlite3_column_int64(s, 0);
    int64_t dev = sqlite3_column_int64(s, 2);
    if (dev <= 0 || dev > UINT32_MAX)
        return KURER_ECORRUPT;
    c->device_id = (uint32_t)dev;
    c->serial = (uint64_t)sqlite3_column_int64(s, 3);
    c->old_serial = (uint64_t)sqlite3_column_int64(s, 6);
    c->at = sqlite3_column_int64(s, 9);
    c->unreported = sqlite3_column_int(s, 10) != 0;
    int rc = column_text(s, 1, c->user, sizeof(c->user));
    if (rc == 0)
        rc = column_text(s, 4, c->issuer, sizeof(c->issuer));
    if (rc == 0)
        rc = column_key(s, 5, c->identity_key);
    if (rc == 0)
        rc = column_text(s, 7, c->old_issuer, sizeof(c->old_issuer));
    if (rc == 0)
        rc = column_key(s, 8, c->old_identity_key);
    return rc;
}

int kurer__store_key_change_each(kurer__store *st, const char *user, int unreported_only,
                                 kurer__key_change_fn fn, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "SELECT id, user, device_id, serial, issuer, identity_key, old_serial, "
                     "old_issuer, old_identity_key, at, unreported FROM key_changes "
                     "WHERE (?1 IS NULL OR user = ?1) AND (?2 = 0 OR unreported = 1) ORDER BY id;",
                     &s);
    if (rc != 0)
        return rc;
    if ((user != NULL ? sqlite3_bind_text(s, 1, user, -1, SQLITE_TRANSIENT)
                      : sqlite3_bind_null(s, 1)) != SQLITE_OK ||
        sqlite3_bind_int(s, 2, unreported_only != 0) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    int r;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        kurer__key_change c;
        if ((rc = row(s, &c)) == 0)
            rc = fn(ud, &c);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = failed(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_key_change_unreported(kurer__store *st, int64_t rowid)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT unreported FROM key_changes WHERE id = ?;", &s);
    if (rc != 0)
        return rc;
    if (sqlite3_bind_int64(s, 1, rowid) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    int r = sqlite3_step(s);
    rc = r == SQLITE_ROW ? sqlite3_column_int(s, 0) != 0 : r == SQLITE_DONE ? 0 : failed(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_key_change_reported(kurer__store *st, int64_t rowid)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "UPDATE key_changes SET unreported = 0 WHERE id = ?;", &s);
    if (rc != 0)
        return rc;
    if (sqlite3_bind_int64(s, 1, rowid) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return step_done(s);
}

/* The items of message_rowid whose device's key changed after they were made. */
static const char stale_sql[] = "FROM outbox WHERE message_id = ?1 AND key_stale = 1";

int kurer__store_key_change_stale_items(kurer__store *st, int64_t message_rowid,
                                        char users[][KURER_SUBJECT_MAX + 1], size_t max, size_t *n)
{
    char sql[sizeof(stale_sql) + 64];
    sqlite3_stmt *s = NULL;
    *n = 0;
    snprintf(sql, sizeof(sql), "SELECT DISTINCT to_user %s;", stale_sql);
    int rc = prepare(st, sql, &s), r;
    if (rc != 0)
        return rc;
    if (sqlite3_bind_int64(s, 1, message_rowid) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW && *n < max)
        rc = column_text(s, 0, users[(*n)++], KURER_SUBJECT_MAX + 1);
    if (rc == 0 && r != SQLITE_ROW && r != SQLITE_DONE)
        rc = failed(r);
    sqlite3_finalize(s);
    if (rc != 0 || *n == 0)
        return rc;
    snprintf(sql, sizeof(sql), "DELETE %s;", stale_sql);
    if ((rc = prepare(st, sql, &s)) != 0)
        return rc;
    if (sqlite3_bind_int64(s, 1, message_rowid) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return step_done(s);
}

int kurer__store_peer_serial(kurer__store *st, const char *user, uint32_t device_id,
                             uint64_t *serial)
{
    sqlite3_stmt *s = NULL;
    *serial = 0;
    int rc = prepare(st, "SELECT serial FROM peer_devices WHERE user = ? AND device_id = ?;", &s);
    if (rc != 0)
        return rc;
    if ((sqlite3_bind_text(s, 1, user, -1, SQLITE_TRANSIENT) |
         sqlite3_bind_int64(s, 2, device_id)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        *serial = (uint64_t)sqlite3_column_int64(s, 0);
    rc = r == SQLITE_ROW ? 0 : r == SQLITE_DONE ? KURER_ENOTFOUND : failed(r);
    sqlite3_finalize(s);
    return rc;
}
