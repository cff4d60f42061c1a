/* The store's queries for the outbox as the user sees it, for contacts and conversations, and
 * the archive of a replaced identity's sessions (store.h, schema v4). Kept out of store.c,
 * which may not grow (tests/size_exceptions.txt). */
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

static int prep(kurer__store *st, const char *sql, sqlite3_stmt **s)
{
    *s = NULL;
    int r = sqlite3_prepare_v2(kurer__store_sqlite(st), sql, -1, s, NULL);
    return r == SQLITE_OK ? 0 : failed(r);
}

/* Steps a statement that returns no rows, and finalizes it. */
static int run(sqlite3_stmt *s)
{
    int r = sqlite3_step(s);
    sqlite3_finalize(s);
    return r == SQLITE_DONE ? 0 : failed(r);
}

/* A TEXT column copied into out (cap bytes with the NUL); KURER_ECORRUPT if it does not fit. */
static int text_col(sqlite3_stmt *s, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t n = (size_t)sqlite3_column_bytes(s, i);
    if (n >= cap)
        return KURER_ECORRUPT;
    if (n > 0)
        memcpy(out, t, n);
    out[n] = '\0';
    return 0;
}

/* Outgoing messages still open (PENDING, or FAILED other than cancelled), oldest first, with
 * their outbox items summed up. */
int kurer__store_outbox_messages(kurer__store *st, int64_t only, kurer__open_msg_fn fn, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st,
                  "SELECT m.id, m.peer, m.level, m.state, m.reason, m.refusal_by, m.refusal_user,"
                  " m.refusal_device, m.refusal_limit, m.accepted, m.sent_at, count(o.id),"
                  " coalesce(max(o.attempts), 0), coalesce(min(o.next_attempt_at), 0) "
                  "FROM messages m LEFT JOIN outbox o ON o.message_id = m.id "
                  "WHERE m.direction = 1 AND m.state IN (2, 4) AND m.reason != ?1 "
                  "AND (?2 = 0 OR m.id = ?2) GROUP BY m.id ORDER BY m.id;",
                  &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int(s, 1, KURER_ECANCELLED);
    sqlite3_bind_int64(s, 2, only);
    int r = SQLITE_DONE;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        kurer__open_msg m;
        memset(&m, 0, sizeof(m));
        m.rowid = sqlite3_column_int64(s, 0);
        rc = text_col(s, 1, m.to, sizeof(m.to));
        m.level = sqlite3_column_int(s, 2);
        m.state = sqlite3_column_int(s, 3);
        m.reason = sqlite3_column_int(s, 4);
        m.refusal_by = sqlite3_column_int(s, 5);
        if (rc == 0)
            rc = text_col(s, 6, m.refusal_user, sizeof(m.refusal_user));
        m.refusal_device = (uint32_t)sqlite3_column_int64(s, 7);
        m.refusal_limit = sqlite3_column_int(s, 8);
        m.accepted = sqlite3_column_int(s, 9);
        m.created_at = sqlite3_column_int64(s, 10);
        m.items = (uint32_t)sqlite3_column_int64(s, 11);
        m.attempts = (uint32_t)sqlite3_column_int64(s, 12);
        m.next_attempt_at = sqlite3_column_int64(s, 13);
        if (rc == 0)
            rc = fn(ud, &m);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = failed(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_message_refusal(kurer__store *st, int64_t rowid, int by, const char *user,
                                 uint32_t device, int limit)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st,
                  "UPDATE messages SET refusal_by = ?, refusal_user = ?, refusal_device = ?,"
                  " refusal_limit = ? WHERE id = ?;",
                  &s);
    if (rc != 0)
        return rc;
    const char *u = user != NULL ? user : "";
    if ((sqlite3_bind_int(s, 1, by) | sqlite3_bind_text(s, 2, u, (int)strlen(u), SQLITE_STATIC) |
         sqlite3_bind_int64(s, 3, device) | sqlite3_bind_int(s, 4, limit) |
         sqlite3_bind_int64(s, 5, rowid)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return run(s);
}

int kurer__store_message_accepted(kurer__store *st, int64_t rowid)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st, "UPDATE messages SET accepted = 1 WHERE id = ?;", &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, rowid);
    return run(s);
}

int kurer__store_outbox_due_now(kurer__store *st, int64_t message_rowid, int64_t now)
{
    sqlite3_stmt *s = NULL;
    int rc =
        prep(st, "UPDATE outbox SET attempts = 0, next_attempt_at = ? WHERE message_id = ?;", &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int64(s, 2, message_rowid);
    return run(s);
}

/* Per peer: the newest message (our clock) and the counts by direction and state. */
int kurer__store_conversations(kurer__store *st, kurer__conv_fn fn, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st,
                  "SELECT peer, max(received_at), count(*), sum(direction = 0),"
                  " sum(direction = 0 AND state = 1), sum(direction = 1 AND state = 3),"
                  " sum(direction = 1 AND state = 2), sum(direction = 1 AND state = 4) "
                  "FROM messages GROUP BY peer ORDER BY max(received_at) DESC, peer;",
                  &s);
    if (rc != 0)
        return rc;
    int r = SQLITE_DONE;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        kurer__conv c;
        memset(&c, 0, sizeof(c));
        rc = text_col(s, 0, c.peer, sizeof(c.peer));
        c.last_at = sqlite3_column_int64(s, 1);
        c.total = (uint64_t)sqlite3_column_int64(s, 2);
        c.received = (uint64_t)sqlite3_column_int64(s, 3);
        c.quarantined = (uint64_t)sqlite3_column_int64(s, 4);
        c.sent = (uint64_t)sqlite3_column_int64(s, 5);
        c.pending = (uint64_t)sqlite3_column_int64(s, 6);
        c.failed = (uint64_t)sqlite3_column_int64(s, 7);
        if (rc == 0)
            rc = fn(ud, &c);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = failed(r);
    sqlite3_finalize(s);
    return rc;
}

/* Every user the home holds a certificate for or has a message with, but own. */
int kurer__store_contacts(kurer__store *st, const char *own, kurer__contact_fn fn, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prep(st,
                  "SELECT u.user,"
                  " (SELECT count(*) FROM peer_devices p WHERE p.user = u.user),"
                  " (SELECT coalesce(max(received_at), 0) FROM messages m WHERE m.peer = u.user),"
                  " (SELECT count(*) FROM messages m WHERE m.peer = u.user) "
                  "FROM (SELECT user FROM peer_devices UNION SELECT peer AS user FROM messages) u "
                  "WHERE u.user != ? ORDER BY u.user;",
                  &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(s, 1, own, (int)strlen(own), SQLITE_STATIC);
    int r = SQLITE_DONE;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        kurer__contact c;
        memset(&c, 0, sizeof(c));
        rc = text_col(s, 0, c.user, sizeof(c.user));
        c.devices = (uint32_t)sqlite3_column_int64(s, 1);
        c.last_at = sqlite3_column_int64(s, 2);
        c.messages = (uint64_t)sqlite3_column_int64(s, 3);
        if (rc == 0)
            rc = fn(ud, &c);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = failed(r);
    sqlite3_finalize(s);
    return rc;
}

/* Moves every session to archived_sessions under the identity key they were built with. */
int kurer__store_sessions_archive(kurer__store *st, const uint8_t *identity_pub, size_t len,
                                  int64_t now, int *archived)
{
    sqlite3_stmt *s = NULL;
    *archived = 0;
    int rc = kurer__store_begin(st);
    if (rc != 0)
        return rc;
    if ((rc = prep(st,
                   "INSERT INTO archived_sessions (identity_pub, name, device_id, record,"
                   " archived_at) SELECT ?, name, device_id, record, ? FROM sessions;",
                   &s)) == 0) {
        sqlite3_bind_blob(s, 1, identity_pub, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, now);
        rc = run(s);
    }
    if (rc == 0)
        *archived = sqlite3_changes(kurer__store_sqlite(st));
    if (rc == 0 && (rc = prep(st, "DELETE FROM sessions;", &s)) == 0)
        rc = run(s);
    if (rc != 0) {
        kurer__store_rollback(st);
        return rc;
    }
    return kurer__store_commit(st);
}

int kurer__store_identity_rekey(kurer__store *st, const kurer__identity *id)
{
    sqlite3_stmt *s = NULL;
    int rc = kurer__store_begin(st);
    if (rc != 0)
        return rc;
    if ((rc = prep(st,
                   "UPDATE identity SET registration_id = ?, identity_pub = ?, identity_priv = ?,"
                   " noise_pub = ?, noise_priv = ?, chain = NULL WHERE id = 1;",
                   &s)) == 0) {
        if ((sqlite3_bind_int64(s, 1, id->registration_id) |
             sqlite3_bind_blob(s, 2, id->identity_pub, KURER_IDENTITY_KEY_LEN, SQLITE_STATIC) |
             sqlite3_bind_blob(s, 3, id->identity_priv, 32, SQLITE_STATIC) |
             sqlite3_bind_blob(s, 4, id->noise_pub, KURER_X25519_LEN, SQLITE_STATIC) |
             sqlite3_bind_blob(s, 5, id->noise_priv, 32, SQLITE_STATIC)) != SQLITE_OK) {
            sqlite3_finalize(s);
            rc = KURER_ESTORAGE;
        } else {
            rc = run(s);
        }
    }
    if (rc == 0 && sqlite3_changes(kurer__store_sqlite(st)) != 1)
        rc = KURER_ENOTFOUND;
    if (rc == 0 && (rc = prep(st, "DELETE FROM signed_prekeys;", &s)) == 0)
        rc = run(s);
    if (rc != 0) {
        kurer__store_rollback(st);
        return rc;
    }
    return kurer__store_commit(st);
}
