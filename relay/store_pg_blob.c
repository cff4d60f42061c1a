/* The postgres backend's blobs (store.h, "blobs"), inside the round's transaction after its
 * pipelined part, as invitations are. The blob's row is locked (FOR UPDATE) by an append or a
 * finish, so two nodes never append at the same offset; a failure aborts the round's
 * transaction (KURER_ESTORAGE), which is then rolled back whole. */
#include "store_pg.h"

#include <string.h>

#include "kurer/error.h"

typedef kurer__op op;

static int run_cmd(pg_store *s, pg_stmt st, const pg_params *p, int *changed)
{
    PGresult *r = kurer__pg_run(s, st, p, PGRES_COMMAND_OK);
    if (r == NULL)
        return KURER_ESTORAGE;
    if (changed != NULL)
        *changed = strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    return 0;
}

/* The row of id while it lives at now, of owner unless owner is NULL (ENOTFOUND otherwise). */
static int load(pg_store *s, const uint8_t *id, const kurer_device_address *owner, int64_t now,
                kurer_store_blob_res *res)
{
    pg_params p;
    p.n = 0;
    kurer__pg_p_bytes(&p, id, KURER_BLOB_ID_LEN);
    kurer__pg_p_i64(&p, now);
    PGresult *r = kurer__pg_run(s, PG_BLOB_LOAD, &p, PGRES_TUPLES_OK);
    if (r == NULL)
        return KURER_ESTORAGE;
    int64_t size = 0, received = 0, complete = 0, dev = 0;
    char user[KURER_SUBJECT_MAX + 1];
    int rc = PQntuples(r) < 1 ? KURER_ENOTFOUND : 0;
    if (rc == 0 && ((rc = kurer__pg_i64(r, 0, 0, &size)) != 0 ||
                    (rc = kurer__pg_i64(r, 0, 1, &received)) != 0 ||
                    (rc = kurer__pg_i64(r, 0, 2, &complete)) != 0 ||
                    (rc = kurer__pg_i64(r, 0, 3, &res->expires_at)) != 0 ||
                    (rc = kurer__pg_user(r, 0, 4, user, sizeof(user))) != 0 ||
                    (rc = kurer__pg_i64(r, 0, 5, &dev)) != 0))
        rc = KURER_ECORRUPT;
    PQclear(r);
    if (rc != 0)
        return rc;
    if (size <= 0 || received < 0 || received > size)
        return KURER_ECORRUPT;
    res->size = (uint64_t)size;
    res->received = (uint64_t)received;
    res->complete = complete != 0;
    if (owner != NULL && (strcmp(user, owner->user) != 0 || (uint32_t)dev != owner->device_id))
        return KURER_ENOTFOUND; /* another device's upload is not this one's to see */
    return 0;
}

static int exec_create(pg_store *s, const kurer_store_blob_req *q, kurer_store_blob_res *res)
{
    pg_params p;
    int rc, changed = 0;
    if (q->quota != 0) {
        p.n = 0;
        kurer__pg_p_str(&p, q->owner.user);
        kurer__pg_p_i64(&p, q->owner.device_id);
        kurer__pg_p_i64(&p, q->now);
        PGresult *r = kurer__pg_run(s, PG_BLOB_QUOTA, &p, PGRES_TUPLES_OK);
        int64_t used = 0;
        if (r == NULL)
            return KURER_ESTORAGE;
        rc = PQntuples(r) == 1 ? kurer__pg_i64(r, 0, 0, &used) : KURER_ECORRUPT;
        PQclear(r);
        if (rc != 0)
            return rc;
        if ((uint64_t)used > q->quota || q->size > q->quota - (uint64_t)used)
            return KURER_EQUOTA;
    }
    p.n = 0;
    kurer__pg_p_bytes(&p, q->id, KURER_BLOB_ID_LEN);
    kurer__pg_p_str(&p, q->owner.user);
    kurer__pg_p_i64(&p, q->owner.device_id);
    kurer__pg_p_i64(&p, (int64_t)q->size);
    kurer__pg_p_i64(&p, q->now);
    kurer__pg_p_i64(&p, q->expires_at);
    if ((rc = run_cmd(s, PG_BLOB_CREATE, &p, &changed)) != 0)
        return rc;
    if (!changed)
        return KURER_EEXIST;
    res->size = q->size;
    res->expires_at = q->expires_at;
    return 0;
}

static int exec_append(pg_store *s, const kurer_store_blob_req *q, kurer_store_blob_res *res)
{
    pg_params p;
    int rc = load(s, q->id, &q->owner, q->now, res);
    if (rc != 0)
        return rc;
    if (res->complete || q->offset != res->received)
        return KURER_ESTATE;
    if (q->len > res->size - res->received)
        return KURER_ELIMIT;
    p.n = 0;
    kurer__pg_p_bytes(&p, q->id, KURER_BLOB_ID_LEN);
    kurer__pg_p_i64(&p, (int64_t)q->offset);
    kurer__pg_p_bytes(&p, q->data, q->len);
    if ((rc = run_cmd(s, PG_BLOB_CHUNK, &p, NULL)) != 0)
        return rc;
    p.n = 0;
    kurer__pg_p_bytes(&p, q->id, KURER_BLOB_ID_LEN);
    kurer__pg_p_i64(&p, (int64_t)q->len);
    if ((rc = run_cmd(s, PG_BLOB_GROW, &p, NULL)) != 0)
        return rc;
    res->received += q->len;
    return 0;
}

static int exec_finish(pg_store *s, const kurer_store_blob_req *q, kurer_store_blob_res *res)
{
    pg_params p;
    int rc = load(s, q->id, &q->owner, q->now, res);
    if (rc != 0 || res->complete)
        return rc;
    if (res->received != res->size)
        return KURER_ESTATE;
    p.n = 0;
    kurer__pg_p_bytes(&p, q->id, KURER_BLOB_ID_LEN);
    kurer__pg_p_i64(&p, q->expires_at);
    if ((rc = run_cmd(s, PG_BLOB_FINISH, &p, NULL)) != 0)
        return rc;
    res->complete = 1;
    res->expires_at = q->expires_at;
    return 0;
}

static int exec_read(pg_store *s, op *o)
{
    const kurer_store_blob_req *q = o->breq;
    kurer_store_blob_res *res = &o->bres;
    pg_params p;
    int rc = load(s, q->id, NULL, q->now, res);
    if (rc != 0)
        return rc;
    if (!res->complete)
        return KURER_ENOTFOUND;
    if (q->offset >= res->size)
        return KURER_ELIMIT;
    uint64_t end = q->offset + q->length > res->size ? res->size : q->offset + q->length;
    p.n = 0;
    kurer__pg_p_bytes(&p, q->id, KURER_BLOB_ID_LEN);
    kurer__pg_p_i64(&p, (int64_t)q->offset);
    kurer__pg_p_i64(&p, (int64_t)end);
    PGresult *r = kurer__pg_run(s, PG_BLOB_READ, &p, PGRES_TUPLES_OK);
    if (r == NULL)
        return KURER_ESTORAGE;
    uint64_t at = q->offset;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        int64_t off;
        if (kurer__pg_i64(r, i, 0, &off) != 0 || off < 0) {
            rc = KURER_ECORRUPT;
            break;
        }
        uint64_t n = (uint64_t)PQgetlength(r, i, 1);
        const uint8_t *d = (const uint8_t *)PQgetvalue(r, i, 1);
        if ((uint64_t)off > at || (uint64_t)off + n <= at) {
            rc = KURER_ECORRUPT; /* a hole: chunks are stored in order, without gaps */
            break;
        }
        uint64_t take = ((uint64_t)off + n > end ? end : (uint64_t)off + n) - at;
        memcpy(o->blob_out + (at - q->offset), d + (at - (uint64_t)off), (size_t)take);
        at += take;
    }
    PQclear(r);
    if (rc == 0 && at != end)
        rc = KURER_ECORRUPT;
    if (rc == 0)
        res->len = (size_t)(end - q->offset);
    return rc;
}

static int exec_sweep(pg_store *s, const kurer_store_blob_req *q, kurer_store_blob_res *res)
{
    pg_params p;
    int64_t n = 0, bytes = 0, live = 0;
    p.n = 0;
    kurer__pg_p_i64(&p, q->now);
    PGresult *r = kurer__pg_run(s, PG_BLOB_SWEPT, &p, PGRES_TUPLES_OK);
    if (r == NULL)
        return KURER_ESTORAGE;
    int rc =
        PQntuples(r) == 1 && kurer__pg_i64(r, 0, 0, &n) == 0 && kurer__pg_i64(r, 0, 1, &bytes) == 0
            ? 0
            : KURER_ECORRUPT;
    PQclear(r);
    if (rc == 0 && n > 0)
        rc = run_cmd(s, PG_BLOB_SWEEP, &p, NULL);
    if (rc != 0)
        return rc;
    p.n = 0;
    if ((r = kurer__pg_run(s, PG_BLOB_LIVE, &p, PGRES_TUPLES_OK)) == NULL)
        return KURER_ESTORAGE;
    rc = PQntuples(r) == 1 ? kurer__pg_i64(r, 0, 0, &live) : KURER_ECORRUPT;
    PQclear(r);
    res->swept = (uint64_t)n;
    res->swept_bytes = (uint64_t)bytes;
    res->live_bytes = (uint64_t)live;
    return rc;
}

int kurer__pg_exec_blob(pg_store *s, op *o)
{
    const kurer_store_blob_req *q = o->breq;
    memset(&o->bres, 0, sizeof(o->bres));
    switch (q->op) {
    case KURER_BLOB_CREATE:
        return exec_create(s, q, &o->bres);
    case KURER_BLOB_STATE:
        return load(s, q->id, &q->owner, q->now, &o->bres);
    case KURER_BLOB_APPEND:
        return exec_append(s, q, &o->bres);
    case KURER_BLOB_FINISH:
        return exec_finish(s, q, &o->bres);
    case KURER_BLOB_READ:
        return exec_read(s, o);
    case KURER_BLOB_SWEEP:
        return exec_sweep(s, q, &o->bres);
    }
    return KURER_EINVAL;
}
