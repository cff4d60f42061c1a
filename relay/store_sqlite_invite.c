/* The sqlite backend's invitations (store.h, "invitations and enrolment requests"): one table,
 * one row per invitation, its request and decision in the same row. Runs on the writer thread
 * inside the round's transaction. */
#include "store_sqlite_invite.h"

#include <string.h>

#include "kurer/error.h"

#define COLS                                                                                       \
    "id, authority, user, device, verifier, created_at, expires_at, failures, state, request, "    \
    "authority_mac, submitted_at, chain"

static void blob_into(sqlite3_stmt *st, int col, uint8_t *dst, size_t cap, size_t *n)
{
    int len = sqlite3_column_bytes(st, col);
    const void *p = sqlite3_column_blob(st, col);
    *n = 0;
    if (p != NULL && len > 0 && (size_t)len <= cap) {
        memcpy(dst, p, (size_t)len);
        *n = (size_t)len;
    }
}

/* A row in COLS order into r; KURER_ECORRUPT when a fixed-size column is not its size. */
static int row_in(sqlite3_stmt *st, kurer_store_invite *r)
{
    size_t n1, n2, n3, n4;
    const unsigned char *u = sqlite3_column_text(st, 2);
    memset(r, 0, sizeof(*r));
    blob_into(st, 0, r->id, sizeof(r->id), &n1);
    blob_into(st, 1, r->authority, sizeof(r->authority), &n2);
    blob_into(st, 4, r->verifier, sizeof(r->verifier), &n3);
    if (n1 != sizeof(r->id) || n2 != sizeof(r->authority) || n3 != sizeof(r->verifier) ||
        u == NULL || strlen((const char *)u) > KURER_SUBJECT_MAX)
        return KURER_ECORRUPT;
    memcpy(r->user, u, strlen((const char *)u) + 1);
    r->device_id = (uint32_t)sqlite3_column_int64(st, 3);
    r->created_at = sqlite3_column_int64(st, 5);
    r->expires_at = sqlite3_column_int64(st, 6);
    r->failures = (uint32_t)sqlite3_column_int64(st, 7);
    r->state = sqlite3_column_int(st, 8);
    blob_into(st, 9, r->request, sizeof(r->request), &r->request_len);
    blob_into(st, 10, r->authority_mac, sizeof(r->authority_mac), &n4);
    r->submitted_at = sqlite3_column_int64(st, 11);
    blob_into(st, 12, r->chain, sizeof(r->chain), &r->chain_len);
    return 0;
}

static int exec_put(sqlite3 *db, const kurer_store_invite *v)
{
    sqlite3_stmt *st = NULL;
    int rc = KURER_ESTORAGE;
    if (sqlite3_prepare_v2(
            db,
            "INSERT OR IGNORE INTO invites(id, authority, user, device, verifier, "
            "created_at, expires_at, failures, state) VALUES(?1, ?2, ?3, ?4, ?5, ?6, "
            "?7, 0, ?8)",
            -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_blob(st, 1, v->id, sizeof(v->id), SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, v->authority, sizeof(v->authority), SQLITE_STATIC);
    sqlite3_bind_text(st, 3, v->user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, v->device_id);
    sqlite3_bind_blob(st, 5, v->verifier, sizeof(v->verifier), SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, v->created_at);
    sqlite3_bind_int64(st, 7, v->expires_at);
    sqlite3_bind_int(st, 8, KURER_ENROL_OPEN);
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = sqlite3_changes(db) == 1 ? 0 : KURER_EEXIST;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Rows of a SELECT into o->inv_rows (at most cap). */
static int read_rows(sqlite3_stmt *st, kurer__op *o, size_t cap)
{
    int r = SQLITE_DONE, rc = 0;
    o->n_inv = 0;
    while (rc == 0 && o->n_inv < cap && (r = sqlite3_step(st)) == SQLITE_ROW)
        rc = row_in(st, &o->inv_rows[o->n_inv++]);
    if (rc == 0 && o->n_inv < cap && r != SQLITE_DONE)
        rc = KURER_ESTORAGE;
    return rc;
}

static int exec_get(sqlite3 *db, kurer__op *o)
{
    sqlite3_stmt *st = NULL;
    int rc = KURER_ESTORAGE;
    if (sqlite3_prepare_v2(db, "SELECT " COLS " FROM invites WHERE id = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_blob(st, 1, o->inv->inv.id, KURER_ENROL_ID_LEN, SQLITE_STATIC);
        rc = read_rows(st, o, 1);
        if (rc == 0 && o->n_inv == 0)
            rc = KURER_ENOTFOUND;
    }
    sqlite3_finalize(st);
    return rc;
}

static int exec_list(sqlite3 *db, kurer__op *o)
{
    const kurer_store_invite_req *q = o->inv;
    sqlite3_stmt *st = NULL;
    int rc = KURER_ESTORAGE;
    if (sqlite3_prepare_v2(db,
                           "SELECT " COLS " FROM invites WHERE authority = ?1 AND state = ?2 AND "
                           "id > ?3 ORDER BY id LIMIT ?4",
                           -1, &st, NULL) == SQLITE_OK) {
        static const uint8_t zero[1] = {0};
        sqlite3_bind_blob(st, 1, q->inv.authority, KURER_KEY_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, KURER_ENROL_WAITING);
        /* every 16-byte id sorts above a single zero byte */
        if (q->has_after)
            sqlite3_bind_blob(st, 3, q->after, KURER_ENROL_ID_LEN, SQLITE_STATIC);
        else
            sqlite3_bind_blob(st, 3, zero, 0, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)q->limit);
        rc = read_rows(st, o, q->limit);
    }
    sqlite3_finalize(st);
    return rc;
}

/* An UPDATE that must change exactly one row (else `none`). */
static int update_one(sqlite3 *db, sqlite3_stmt *st, int none)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        return KURER_ESTORAGE;
    return sqlite3_changes(db) == 1 ? 0 : none;
}

static int exec_update(sqlite3 *db, kurer__op *o)
{
    const kurer_store_invite *v = &o->inv->inv;
    sqlite3_stmt *st = NULL;
    int rc = KURER_ESTORAGE, none = KURER_ENOTFOUND;
    const char *sql = NULL;
    switch (o->inv->op) {
    case KURER_INVITE_SUBMIT:
        sql = "UPDATE invites SET state = ?2, request = ?3, authority_mac = ?4, submitted_at = ?5 "
              "WHERE id = ?1 AND state = ?6";
        none = KURER_EINVITEUSED;
        break;
    case KURER_INVITE_FAIL:
        sql = "UPDATE invites SET failures = failures + 1 WHERE id = ?1";
        break;
    case KURER_INVITE_DECIDE:
        sql = "UPDATE invites SET state = ?2, chain = ?3 WHERE id = ?1 AND state = ?6";
        none = KURER_ESTATE;
        break;
    default:
        return KURER_EINVAL;
    }
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_blob(st, 1, v->id, sizeof(v->id), SQLITE_STATIC);
    if (o->inv->op == KURER_INVITE_SUBMIT) {
        sqlite3_bind_int(st, 2, KURER_ENROL_WAITING);
        sqlite3_bind_blob(st, 3, v->request, (int)v->request_len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 4, v->authority_mac, sizeof(v->authority_mac), SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, v->submitted_at);
        sqlite3_bind_int(st, 6, KURER_ENROL_OPEN);
    } else if (o->inv->op == KURER_INVITE_DECIDE) {
        sqlite3_bind_int(st, 2, v->state);
        sqlite3_bind_blob(st, 3, v->chain, (int)v->chain_len, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, KURER_ENROL_WAITING);
    }
    rc = update_one(db, st, none);
out:
    sqlite3_finalize(st);
    return rc;
}

int kurer__sq_exec_invite(sqlite3 *db, kurer__op *o)
{
    switch (o->inv->op) {
    case KURER_INVITE_PUT:
        return exec_put(db, &o->inv->inv);
    case KURER_INVITE_GET:
        return exec_get(db, o);
    case KURER_INVITE_LIST:
        return exec_list(db, o);
    default:
        return exec_update(db, o);
    }
}
