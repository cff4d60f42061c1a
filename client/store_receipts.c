/* The store's receipts, read marks, conversation timers and expiry (store.h, schema v6).
 * Outside store.c, which may not grow (tests/size_exceptions.txt). */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
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

static int bind_fail(sqlite3_stmt *s)
{
    sqlite3_finalize(s);
    return KURER_ESTORAGE;
}

int kurer__store_message_extra(kurer__store *st, int64_t rowid, kurer__msg_extra *x)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(
        st, "SELECT expire_timer, expires_at, read_at, kind FROM messages WHERE id = ?;", &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, rowid);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(s, 0);
        x->expire_timer = t < 0 || t > UINT32_MAX ? 0 : (uint32_t)t;
        x->expires_at = sqlite3_column_int64(s, 1);
        x->read_at = sqlite3_column_int64(s, 2);
        x->kind = sqlite3_column_int(s, 3);
    }
    sqlite3_finalize(s);
    return r == SQLITE_ROW ? 0 : r == SQLITE_DONE ? KURER_ENOTFOUND : failed(r);
}

int kurer__store_message_set_extra(kurer__store *st, int64_t rowid, const kurer__msg_extra *x)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "UPDATE messages SET expire_timer = ?, expires_at = ?, read_at = ?, kind = ? "
                     "WHERE id = ?;",
                     &s);
    if (rc != 0)
        return rc;
    if ((sqlite3_bind_int64(s, 1, x->expire_timer) | sqlite3_bind_int64(s, 2, x->expires_at) |
         sqlite3_bind_int64(s, 3, x->read_at) | sqlite3_bind_int(s, 4, x->kind) |
         sqlite3_bind_int64(s, 5, rowid)) != SQLITE_OK)
        return bind_fail(s);
    rc = step_done(s);
    if (rc == 0 && sqlite3_changes(kurer__store_sqlite(st)) != 1)
        rc = KURER_ENOTFOUND;
    return rc;
}

/* Read now: read_at, and the countdown of a message with a timer, unless either runs already. */
static int set_read(kurer__store *st, int64_t rowid, int64_t now_ms)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "UPDATE messages SET read_at = CASE WHEN read_at = 0 THEN ?1 ELSE read_at END,"
                     " expires_at = CASE WHEN expire_timer > 0 AND expires_at = 0"
                     " THEN ?1 + expire_timer * 1000 ELSE expires_at END WHERE id = ?2;",
                     &s);
    if (rc != 0)
        return rc;
    if ((sqlite3_bind_int64(s, 1, now_ms) | sqlite3_bind_int64(s, 2, rowid)) != SQLITE_OK)
        return bind_fail(s);
    return step_done(s);
}

#define MATCH_MAX 64 /* messages one receipt timestamp may name (same peer, same millisecond) */

/* The text messages (not quarantined) with direction, peer and sent_at, outside any group; or
 * (gid non-NULL) those of group gid with peer and sent_at, in either direction (our own
 * messages are outgoing on the device that sent them, incoming on our others). */
static int matching(kurer__store *st, const uint8_t *gid, int direction, const char *peer,
                    int64_t sent_at, int64_t ids[MATCH_MAX], size_t *n)
{
    sqlite3_stmt *s = NULL;
    *n = 0;
    int rc = prepare(st,
                     gid == NULL ? "SELECT id FROM messages WHERE peer = ?1 AND sent_at = ?2 AND "
                                   "direction = ?3 AND kind = 0 AND state <> 1 AND id NOT IN "
                                   "(SELECT message_id FROM group_messages) ORDER BY id LIMIT 64;"
                                 : "SELECT id FROM messages WHERE peer = ?1 AND sent_at = ?2 AND "
                                   "kind = 0 AND state <> 1 AND id IN (SELECT message_id FROM "
                                   "group_messages WHERE group_id = ?4 AND kind = 0) "
                                   "ORDER BY id LIMIT 64;",
                     &s);
    if (rc != 0)
        return rc;
    if ((sqlite3_bind_text(s, 1, peer, -1, SQLITE_TRANSIENT) | sqlite3_bind_int64(s, 2, sent_at) |
         (gid == NULL ? sqlite3_bind_int(s, 3, direction)
                      : sqlite3_bind_blob(s, 4, gid, KURER_GROUP_ID_LEN, SQLITE_TRANSIENT))) !=
        SQLITE_OK)
        return bind_fail(s);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW && *n < MATCH_MAX)
        ids[(*n)++] = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : failed(r);
}

static int receipt_row(kurer__store *st, int64_t rowid, const char *user, uint32_t device, int type,
                       int64_t now_ms)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "INSERT OR IGNORE INTO receipts (message_id, user, device_id, type, at) "
                     "VALUES (?, ?, ?, ?, ?);",
                     &s);
    if (rc != 0)
        return rc;
    if ((sqlite3_bind_int64(s, 1, rowid) | sqlite3_bind_text(s, 2, user, -1, SQLITE_TRANSIENT) |
         sqlite3_bind_int64(s, 3, device) | sqlite3_bind_int(s, 4, type) |
         sqlite3_bind_int64(s, 5, now_ms)) != SQLITE_OK)
        return bind_fail(s);
    return step_done(s);
}

/* A receipt on the matching messages; mark: a READ one marks them read here too. */
static int receipt_add(kurer__store *st, const uint8_t *gid, int direction, int mark,
                       const char *peer, int64_t sent_at, const char *user, uint32_t device,
                       int type, int64_t now_ms, size_t *matched)
{
    int64_t ids[MATCH_MAX];
    size_t n = 0;
    if (type != KURER__RECEIPT_DELIVERED && type != KURER__RECEIPT_READ)
        return KURER_EINVAL;
    int rc = matching(st, gid, direction, peer, sent_at, ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = receipt_row(st, ids[i], user, device, type, now_ms);
        if (rc == 0 && mark && type == KURER__RECEIPT_READ)
            rc = set_read(st, ids[i], now_ms);
    }
    if (rc == 0 && matched != NULL)
        *matched = n;
    return rc;
}

int kurer__store_receipt_add(kurer__store *st, int direction, const char *peer, int64_t sent_at,
                             const char *user, uint32_t device, int type, int64_t now_ms,
                             size_t *matched)
{
    return receipt_add(st, NULL, direction, direction == KURER__DIR_IN, peer, sent_at, user, device,
                       type, now_ms, matched);
}

int kurer__store_receipt_add_group(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                   const char *peer, int own, int64_t sent_at, const char *user,
                                   uint32_t device, int type, int64_t now_ms, size_t *matched)
{
    return receipt_add(st, gid, 0, own, peer, sent_at, user, device, type, now_ms, matched);
}

int kurer__store_receipt_each(kurer__store *st, int64_t rowid, kurer__receipt_fn fn, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "SELECT user, device_id, type, at FROM receipts WHERE message_id = ? "
                     "ORDER BY user, device_id, type;",
                     &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, rowid);
    int r = SQLITE_DONE;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        kurer__receipt_row row;
        row.user = (const char *)sqlite3_column_text(s, 0);
        int64_t dev = sqlite3_column_int64(s, 1);
        row.device_id = dev < 0 || dev > UINT32_MAX ? 0 : (uint32_t)dev;
        row.type = sqlite3_column_int(s, 2);
        row.at = sqlite3_column_int64(s, 3);
        rc = row.user != NULL ? fn(ud, &row) : KURER_ECORRUPT;
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = failed(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_receipt_queue(kurer__store *st, const char *peer, int type, int64_t sent_at,
                               int64_t now_ms)
{
    return kurer__store_receipt_queue_group(st, peer, type, sent_at, NULL, now_ms);
}

int kurer__store_receipt_queue_group(kurer__store *st, const char *peer, int type, int64_t sent_at,
                                     const uint8_t *gid, int64_t now_ms)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "INSERT OR IGNORE INTO receipts_out (peer, type, sent_at, created_at, "
                     "group_id) VALUES (?, ?, ?, ?, ?);",
                     &s);
    if (rc != 0)
        return rc;
    if ((sqlite3_bind_text(s, 1, peer, -1, SQLITE_TRANSIENT) | sqlite3_bind_int(s, 2, type) |
         sqlite3_bind_int64(s, 3, sent_at) | sqlite3_bind_int64(s, 4, now_ms) |
         sqlite3_bind_blob(s, 5, gid != NULL ? (const void *)gid : "",
                           gid != NULL ? KURER_GROUP_ID_LEN : 0, SQLITE_TRANSIENT)) != SQLITE_OK)
        return bind_fail(s);
    return step_done(s);
}

typedef struct unread {
    int64_t id;
    char peer[KURER_SUBJECT_MAX + 1];
    int64_t sent_at;
    int has_group;
    uint8_t group_id[KURER_GROUP_ID_LEN];
} unread;

static int wanted(const unread *u, const int64_t *ts, size_t n)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (ts[i] == u->sent_at)
            return 1;
    return 0;
}

/* One unread message: marked read and its READ receipt owed. */
static int read_one(kurer__store *st, const unread *u, int64_t now_ms)
{
    int rc = set_read(st, u->id, now_ms);
    if (rc == 0)
        rc = kurer__store_receipt_queue_group(st, u->peer, KURER__RECEIPT_READ, u->sent_at,
                                              u->has_group ? u->group_id : NULL, now_ms);
    return rc;
}

/* The unread incoming text messages (of peer one-to-one, of group gid, or of everyone), with
 * the group of each, into *v (malloc'ed). */
static int unread_list(kurer__store *st, const char *peer, const uint8_t *gid, unread **v,
                       size_t *n)
{
    sqlite3_stmt *s = NULL;
    size_t cap = 0;
    *v = NULL;
    *n = 0;
    int rc = prepare(st,
                     "SELECT m.id, m.peer, m.sent_at, g.group_id FROM messages m LEFT JOIN "
                     "group_messages g ON g.message_id = m.id WHERE m.direction = 0 AND "
                     "m.state = 0 AND m.kind = 0 AND m.read_at = 0 AND (?1 IS NULL OR "
                     "(m.peer = ?1 AND g.message_id IS NULL)) AND (?2 IS NULL OR "
                     "g.group_id = ?2) ORDER BY m.id;",
                     &s);
    if (rc != 0)
        return rc;
    if ((sqlite3_bind_text(s, 1, peer, -1, SQLITE_TRANSIENT) |
         (gid != NULL ? sqlite3_bind_blob(s, 2, gid, KURER_GROUP_ID_LEN, SQLITE_TRANSIENT)
                      : sqlite3_bind_null(s, 2))) != SQLITE_OK)
        return bind_fail(s);
    int r = SQLITE_DONE;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            unread *nv = realloc(*v, nc * sizeof(*nv));
            if (nv == NULL) {
                rc = KURER_ENOMEM;
                break;
            }
            *v = nv;
            cap = nc;
        }
        unread *u = &(*v)[*n];
        memset(u, 0, sizeof(*u));
        u->id = sqlite3_column_int64(s, 0);
        const unsigned char *p = sqlite3_column_text(s, 1);
        int len = sqlite3_column_bytes(s, 1);
        if (p == NULL || len <= 0 || len > KURER_SUBJECT_MAX) {
            rc = KURER_ECORRUPT;
            break;
        }
        memcpy(u->peer, p, (size_t)len);
        u->sent_at = sqlite3_column_int64(s, 2);
        if (sqlite3_column_type(s, 3) != SQLITE_NULL) {
            if (sqlite3_column_bytes(s, 3) != KURER_GROUP_ID_LEN) {
                rc = KURER_ECORRUPT;
                break;
            }
            memcpy(u->group_id, sqlite3_column_blob(s, 3), KURER_GROUP_ID_LEN);
            u->has_group = 1;
        }
        (*n)++;
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = failed(r);
    sqlite3_finalize(s);
    if (rc != 0) {
        free(*v);
        *v = NULL;
        *n = 0;
    }
    return rc;
}

int kurer__store_mark_read(kurer__store *st, const char *peer, const int64_t *ts, size_t n,
                           int64_t now_ms, size_t *marked)
{
    return kurer__store_mark_read_in(st, peer, NULL, ts, n, now_ms, marked);
}

int kurer__store_mark_read_in(kurer__store *st, const char *peer, const uint8_t *gid,
                              const int64_t *ts, size_t n, int64_t now_ms, size_t *marked)
{
    unread *v = NULL;
    size_t nv = 0, count = 0;
    int rc = kurer__store_begin(st);
    if (rc != 0)
        return rc;
    rc = unread_list(st, peer, gid, &v, &nv);
    for (size_t i = 0; rc == 0 && i < nv; i++)
        if (wanted(&v[i], ts, n)) {
            rc = read_one(st, &v[i], now_ms);
            count++;
        }
    free(v);
    if (rc != 0) {
        kurer__store_rollback(st);
        return rc;
    }
    if ((rc = kurer__store_commit(st)) == 0 && marked != NULL)
        *marked = count;
    return rc;
}

int kurer__store_receipts_owed(kurer__store *st, kurer__receipt_out *v, size_t max, size_t *n)
{
    sqlite3_stmt *s = NULL;
    *n = 0;
    int rc = prepare(st,
                     "SELECT id, peer, type, sent_at, group_id FROM receipts_out "
                     "ORDER BY peer, type, group_id, id;",
                     &s);
    if (rc != 0)
        return rc;
    int r = SQLITE_DONE;
    while (rc == 0 && *n < max && (r = sqlite3_step(s)) == SQLITE_ROW) {
        kurer__receipt_out *o = &v[*n];
        memset(o, 0, sizeof(*o));
        o->id = sqlite3_column_int64(s, 0);
        const unsigned char *p = sqlite3_column_text(s, 1);
        int len = sqlite3_column_bytes(s, 1);
        if (p == NULL || len <= 0 || len > KURER_SUBJECT_MAX) {
            rc = KURER_ECORRUPT;
            break;
        }
        memcpy(o->peer, p, (size_t)len);
        o->type = sqlite3_column_int(s, 2);
        o->sent_at = sqlite3_column_int64(s, 3);
        int glen = sqlite3_column_bytes(s, 4);
        if (glen != 0 && glen != KURER_GROUP_ID_LEN) {
            rc = KURER_ECORRUPT;
            break;
        }
        if (glen == KURER_GROUP_ID_LEN) {
            memcpy(o->group_id, sqlite3_column_blob(s, 4), KURER_GROUP_ID_LEN);
            o->has_group = 1;
        }
        (*n)++;
    }
    if (rc == 0 && r != SQLITE_DONE && r != SQLITE_ROW)
        rc = failed(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_receipt_done(kurer__store *st, int64_t id)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "DELETE FROM receipts_out WHERE id = ?;", &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    return step_done(s);
}

int kurer__store_timer_get(kurer__store *st, const char *conversation, uint32_t *seconds)
{
    sqlite3_stmt *s = NULL;
    *seconds = 0;
    int rc = prepare(st, "SELECT seconds FROM timers WHERE conversation = ?;", &s);
    if (rc != 0)
        return rc;
    if (sqlite3_bind_text(s, 1, conversation, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        return bind_fail(s);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(s, 0);
        *seconds = v < 0 || v > UINT32_MAX ? 0 : (uint32_t)v;
    }
    sqlite3_finalize(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : failed(r);
}

int kurer__store_timer_set(kurer__store *st, const char *conversation, uint32_t seconds,
                           int64_t now_ms)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "INSERT OR REPLACE INTO timers (conversation, seconds, updated_at) "
                     "VALUES (?, ?, ?);",
                     &s);
    if (rc != 0)
        return rc;
    if ((sqlite3_bind_text(s, 1, conversation, -1, SQLITE_TRANSIENT) |
         sqlite3_bind_int64(s, 2, seconds) | sqlite3_bind_int64(s, 3, now_ms)) != SQLITE_OK)
        return bind_fail(s);
    return step_done(s);
}

/* After a delete: the WAL's frames (page images from before it) go into store.db and the WAL
 * is truncated to nothing. secure_delete zeroed the freed cells in the new page images; the
 * old images lived only in the WAL (and in store.db, now overwritten by the checkpoint). */
static int checkpoint(kurer__store *st)
{
    int log = 0, done = 0;
    int r = sqlite3_wal_checkpoint_v2(kurer__store_sqlite(st), NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                      &log, &done);
    return r == SQLITE_OK ? 0 : failed(r);
}

int kurer__store_expire(kurer__store *st, int64_t now_ms, size_t *deleted)
{
    sqlite3_stmt *s = NULL;
    if (kurer__store_in_transaction(st))
        return KURER_ESTATE;
    int rc = prepare(st, "DELETE FROM messages WHERE expires_at > 0 AND expires_at <= ?;", &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, now_ms);
    rc = step_done(s); /* receipts and outbox items go with it (ON DELETE CASCADE) */
    int n = rc == 0 ? sqlite3_changes(kurer__store_sqlite(st)) : 0;
    if (rc == 0 && n > 0)
        rc = checkpoint(st);
    if (rc == 0 && deleted != NULL)
        *deleted = (size_t)n;
    return rc;
}

int kurer__store_expiry_next(kurer__store *st, int64_t *at)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT min(expires_at) FROM messages WHERE expires_at > 0;", &s);
    if (rc != 0)
        return rc;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        *at = sqlite3_column_type(s, 0) == SQLITE_NULL ? INT64_MAX : sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return r == SQLITE_ROW ? 0 : failed(r);
}
