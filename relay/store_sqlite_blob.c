/* The sqlite backend's blobs (store.h, "blobs"): a row per blob and its chunks keyed by offset.
 * Runs on the writer thread inside the round's transaction; an operation that writes twice
 * does so under a savepoint, so that a failure takes back both. */
#include "store_sqlite_invite.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/error.h"

typedef kurer__op op;

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : KURER_ESTORAGE;
}

/* The row of id (of owner, unless owner is NULL) while it lives at now: ENOTFOUND otherwise. */
static int load(sqlite3 *db, const uint8_t *id, const kurer_device_address *owner, int64_t now,
                kurer_store_blob_res *r)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db,
                  "SELECT size, received, complete, expires_at, user, device FROM blobs "
                  "WHERE id = ?1 AND expires_at > ?2",
                  &st);
    if (rc != 0)
        return rc;
    sqlite3_bind_blob(st, 1, id, KURER_BLOB_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const unsigned char *u = sqlite3_column_text(st, 4);
        r->size = (uint64_t)sqlite3_column_int64(st, 0);
        r->received = (uint64_t)sqlite3_column_int64(st, 1);
        r->complete = sqlite3_column_int(st, 2) != 0;
        r->expires_at = sqlite3_column_int64(st, 3);
        if (owner != NULL && (u == NULL || strcmp((const char *)u, owner->user) != 0 ||
                              (uint32_t)sqlite3_column_int64(st, 5) != owner->device_id))
            rc = KURER_ENOTFOUND; /* another device's upload is not this one's to see */
    } else {
        rc = s == SQLITE_DONE ? KURER_ENOTFOUND : KURER_ESTORAGE;
    }
    sqlite3_finalize(st);
    return rc;
}

static int exec_create(sqlite3 *db, const kurer_store_blob_req *q, kurer_store_blob_res *r)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (q->quota != 0) {
        if ((rc = prep(db,
                       "SELECT ifnull(sum(size), 0) FROM blobs WHERE user = ?1 AND device = ?2 "
                       "AND expires_at > ?3",
                       &st)) != 0)
            return rc;
        sqlite3_bind_text(st, 1, q->owner.user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, q->owner.device_id);
        sqlite3_bind_int64(st, 3, q->now);
        rc = sqlite3_step(st) == SQLITE_ROW ? 0 : KURER_ESTORAGE;
        uint64_t used = rc == 0 ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        st = NULL;
        if (rc != 0)
            return rc;
        if (used > q->quota || q->size > q->quota - used)
            return KURER_EQUOTA;
    }
    if ((rc = prep(db,
                   "INSERT OR IGNORE INTO blobs(id, user, device, size, received, complete, "
                   "created_at, expires_at) VALUES(?1, ?2, ?3, ?4, 0, 0, ?5, ?6)",
                   &st)) != 0)
        return rc;
    sqlite3_bind_blob(st, 1, q->id, KURER_BLOB_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, q->owner.user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, q->owner.device_id);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)q->size);
    sqlite3_bind_int64(st, 5, q->now);
    sqlite3_bind_int64(st, 6, q->expires_at);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : KURER_ESTORAGE;
    if (rc == 0 && sqlite3_changes(db) != 1)
        rc = KURER_EEXIST;
    sqlite3_finalize(st);
    if (rc == 0) {
        r->size = q->size;
        r->expires_at = q->expires_at;
    }
    return rc;
}

/* One statement with the id bound as ?1 and up to two integers as ?2, ?3. */
static int run(sqlite3 *db, const char *sql, const uint8_t *id, int64_t a, int64_t b)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, sql, &st);
    if (rc != 0)
        return rc;
    sqlite3_bind_blob(st, 1, id, KURER_BLOB_ID_LEN, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, a);
    if (sqlite3_bind_parameter_count(st) >= 3)
        sqlite3_bind_int64(st, 3, b);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : KURER_ESTORAGE;
    sqlite3_finalize(st);
    return rc;
}

static int exec_append(sqlite3 *db, const kurer_store_blob_req *q, kurer_store_blob_res *r)
{
    int rc = load(db, q->id, &q->owner, q->now, r);
    if (rc != 0)
        return rc;
    if (r->complete || q->offset != r->received)
        return KURER_ESTATE;
    if (q->len > r->size - r->received)
        return KURER_ELIMIT;
    if (sqlite3_exec(db, "SAVEPOINT blob", NULL, NULL, NULL) != SQLITE_OK)
        return KURER_ESTORAGE;
    sqlite3_stmt *st = NULL;
    if ((rc = prep(db, "INSERT INTO blob_chunks(id, off, data) VALUES(?1, ?2, ?3)", &st)) == 0) {
        sqlite3_bind_blob(st, 1, q->id, KURER_BLOB_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)q->offset);
        sqlite3_bind_blob(st, 3, q->data, (int)q->len, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : KURER_ESTORAGE;
    }
    sqlite3_finalize(st);
    if (rc == 0)
        rc = run(db, "UPDATE blobs SET received = received + ?2 WHERE id = ?1", q->id,
                 (int64_t)q->len, 0);
    if (rc != 0)
        sqlite3_exec(db, "ROLLBACK TO blob", NULL, NULL, NULL);
    sqlite3_exec(db, "RELEASE blob", NULL, NULL, NULL);
    if (rc == 0)
        r->received += q->len;
    return rc;
}

static int exec_finish(sqlite3 *db, const kurer_store_blob_req *q, kurer_store_blob_res *r)
{
    int rc = load(db, q->id, &q->owner, q->now, r);
    if (rc != 0 || r->complete)
        return rc;
    if (r->received != r->size)
        return KURER_ESTATE;
    if ((rc = run(db, "UPDATE blobs SET complete = 1, expires_at = ?2 WHERE id = ?1", q->id,
                  q->expires_at, 0)) == 0) {
        r->complete = 1;
        r->expires_at = q->expires_at;
    }
    return rc;
}

/* The chunks overlapping [offset, offset + length), copied into out. */
static int exec_read(sqlite3 *db, op *o)
{
    const kurer_store_blob_req *q = o->breq;
    kurer_store_blob_res *r = &o->bres;
    int rc = load(db, q->id, NULL, q->now, r);
    if (rc != 0)
        return rc;
    if (!r->complete)
        return KURER_ENOTFOUND;
    if (q->offset >= r->size)
        return KURER_ELIMIT;
    uint64_t end = q->offset + q->length > r->size ? r->size : q->offset + q->length;
    sqlite3_stmt *st = NULL;
    if ((rc = prep(db,
                   "SELECT off, data FROM blob_chunks WHERE id = ?1 AND off < ?3 AND "
                   "off + length(data) > ?2 ORDER BY off",
                   &st)) != 0)
        return rc;
    sqlite3_bind_blob(st, 1, q->id, KURER_BLOB_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)q->offset);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)end);
    uint64_t at = q->offset;
    int s;
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t off = (uint64_t)sqlite3_column_int64(st, 0);
        const uint8_t *d = sqlite3_column_blob(st, 1);
        uint64_t n = (uint64_t)sqlite3_column_bytes(st, 1);
        if (off > at || off + n <= at || d == NULL) {
            rc = KURER_ECORRUPT; /* a hole: chunks are stored in order, without gaps */
            break;
        }
        uint64_t take = (off + n > end ? end : off + n) - at;
        memcpy(o->blob_out + (at - q->offset), d + (at - off), (size_t)take);
        at += take;
    }
    sqlite3_finalize(st);
    if (rc == 0 && at != end)
        rc = KURER_ECORRUPT;
    if (rc == 0)
        r->len = (size_t)(end - q->offset);
    return rc;
}

/* One statement with a time bound as ?1. */
static int run_at(sqlite3 *db, const char *sql, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, sql, &st);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : KURER_ESTORAGE;
    sqlite3_finalize(st);
    return rc;
}

static int exec_sweep(sqlite3 *db, const kurer_store_blob_req *q, kurer_store_blob_res *r)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(db, "SELECT count(*), ifnull(sum(received), 0) FROM blobs WHERE expires_at <= ?1",
                  &st);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, q->now);
    if (sqlite3_step(st) == SQLITE_ROW) {
        r->swept = (uint64_t)sqlite3_column_int64(st, 0);
        r->swept_bytes = (uint64_t)sqlite3_column_int64(st, 1);
    } else {
        rc = KURER_ESTORAGE;
    }
    sqlite3_finalize(st);
    if (rc == 0 && r->swept > 0) {
        if (sqlite3_exec(db, "SAVEPOINT sweep", NULL, NULL, NULL) != SQLITE_OK)
            return KURER_ESTORAGE;
        rc = run_at(db,
                    "DELETE FROM blob_chunks WHERE id IN (SELECT id FROM blobs WHERE "
                    "expires_at <= ?1)",
                    q->now);
        if (rc == 0)
            rc = run_at(db, "DELETE FROM blobs WHERE expires_at <= ?1", q->now);
        if (rc != 0)
            sqlite3_exec(db, "ROLLBACK TO sweep", NULL, NULL, NULL);
        sqlite3_exec(db, "RELEASE sweep", NULL, NULL, NULL);
    }
    if (rc != 0)
        return rc;
    if ((rc = prep(db, "SELECT ifnull(sum(received), 0) FROM blobs", &st)) != 0)
        return rc;
    rc = sqlite3_step(st) == SQLITE_ROW ? 0 : KURER_ESTORAGE;
    if (rc == 0)
        r->live_bytes = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int kurer__sq_exec_blob(sqlite3 *db, op *o)
{
    const kurer_store_blob_req *q = o->breq;
    memset(&o->bres, 0, sizeof(o->bres));
    switch (q->op) {
    case KURER_BLOB_CREATE:
        return exec_create(db, q, &o->bres);
    case KURER_BLOB_STATE:
        return load(db, q->id, &q->owner, q->now, &o->bres);
    case KURER_BLOB_APPEND:
        return exec_append(db, q, &o->bres);
    case KURER_BLOB_FINISH:
        return exec_finish(db, q, &o->bres);
    case KURER_BLOB_READ:
        return exec_read(db, o);
    case KURER_BLOB_SWEEP:
        return exec_sweep(db, q, &o->bres);
    }
    return KURER_EINVAL;
}
