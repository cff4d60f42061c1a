/* The postgres backend's blobs (store.h, "blobs"), inside the round's transaction after its
 * pipelined part, as invitations are. The blob's row is locked (FOR UPDATE) by an append or a
 * finish, so two nodes never append at the same offset; a failure aborts the round's
 * transaction (KURER_ESTORAGE), which is then rolled back whole. Each operation runs in steps
 * (kurer__pg_step): the row first, then what it decides. */
#include "store_pg.h"

#include <string.h>

#include "kurer/error.h"

typedef kurer__op op;

/* The k-th result, a command: 0 or KURER_ESTORAGE; *changed: it changed a row. */
static int cmd_ok(pg_conn *c, size_t k, int *changed)
{
    const PGresult *r = kurer__pg_res(c, k, PGRES_COMMAND_OK);
    if (r == NULL)
        return KURER_ESTORAGE;
    if (changed != NULL)
        *changed = strcmp(PQcmdTuples((PGresult *)r), "0") != 0;
    return 0;
}

/* The row of the request's blob while it lives at now (locked until the commit). */
static int send_load(pg_conn *c, op *o)
{
    pg_params p;
    p.n = 0;
    kurer__pg_p_bytes(&p, o->breq->id, KURER_BLOB_ID_LEN);
    kurer__pg_p_i64(&p, o->breq->now);
    return kurer__pg_send(c, PG_BLOB_LOAD, &p, o, 0, 0);
}

/* The loaded row (the first result), of owner unless owner is NULL (ENOTFOUND otherwise). */
static int take_load(pg_conn *c, const kurer_device_address *owner, kurer_store_blob_res *res)
{
    const PGresult *r = kurer__pg_res(c, 0, PGRES_TUPLES_OK);
    if (r == NULL)
        return KURER_ESTORAGE;
    int64_t size = 0, received = 0, complete = 0, dev = 0;
    char user[KURER_SUBJECT_MAX + 1];
    if (PQntuples(r) < 1)
        return KURER_ENOTFOUND;
    if (kurer__pg_i64(r, 0, 0, &size) != 0 || kurer__pg_i64(r, 0, 1, &received) != 0 ||
        kurer__pg_i64(r, 0, 2, &complete) != 0 || kurer__pg_i64(r, 0, 3, &res->expires_at) != 0 ||
        kurer__pg_user(r, 0, 4, user, sizeof(user)) != 0 || kurer__pg_i64(r, 0, 5, &dev) != 0)
        return KURER_ECORRUPT;
    if (size <= 0 || received < 0 || received > size)
        return KURER_ECORRUPT;
    res->size = (uint64_t)size;
    res->received = (uint64_t)received;
    res->complete = complete != 0;
    if (owner != NULL && (strcmp(user, owner->user) != 0 || (uint32_t)dev != owner->device_id))
        return KURER_ENOTFOUND; /* another device's upload is not this one's to see */
    return 0;
}

/* Each operation's steps: the next stage (statements queued), or its end as a negative error
 * or 0 (DONE: the op's error is 0). */
#define DONE (-1000)

static int send_create(pg_conn *c, op *o)
{
    const kurer_store_blob_req *q = o->breq;
    pg_params p;
    p.n = 0;
    kurer__pg_p_bytes(&p, q->id, KURER_BLOB_ID_LEN);
    kurer__pg_p_str(&p, q->owner.user);
    kurer__pg_p_i64(&p, q->owner.device_id);
    kurer__pg_p_i64(&p, (int64_t)q->size);
    kurer__pg_p_i64(&p, q->now);
    kurer__pg_p_i64(&p, q->expires_at);
    return kurer__pg_send(c, PG_BLOB_CREATE, &p, o, 0, 0) == 0 ? 2 : KURER_ESTORAGE;
}

static int step_create(pg_conn *c, op *o, int stage)
{
    const kurer_store_blob_req *q = o->breq;
    kurer_store_blob_res *res = &o->bres;
    pg_params p;
    int64_t used = 0;
    int changed = 0;
    if (stage == 0 && q->quota != 0) {
        p.n = 0;
        kurer__pg_p_str(&p, q->owner.user);
        kurer__pg_p_i64(&p, q->owner.device_id);
        kurer__pg_p_i64(&p, q->now);
        return kurer__pg_send(c, PG_BLOB_QUOTA, &p, o, 0, 0) == 0 ? 1 : KURER_ESTORAGE;
    }
    if (stage == 0)
        return send_create(c, o);
    if (stage == 1) {
        const PGresult *r = kurer__pg_res(c, 0, PGRES_TUPLES_OK);
        if (r == NULL)
            return KURER_ESTORAGE;
        if (PQntuples(r) != 1 || kurer__pg_i64(r, 0, 0, &used) != 0)
            return KURER_ECORRUPT;
        if ((uint64_t)used > q->quota || q->size > q->quota - (uint64_t)used)
            return KURER_EQUOTA;
        return send_create(c, o);
    }
    if (cmd_ok(c, 0, &changed) != 0)
        return KURER_ESTORAGE;
    if (!changed)
        return KURER_EEXIST;
    res->size = q->size;
    res->expires_at = q->expires_at;
    return DONE;
}

static int step_append(pg_conn *c, op *o, int stage)
{
    const kurer_store_blob_req *q = o->breq;
    kurer_store_blob_res *res = &o->bres;
    pg_params p;
    if (stage == 0)
        return send_load(c, o) == 0 ? 1 : KURER_ESTORAGE;
    if (stage == 2) {
        if (cmd_ok(c, 0, NULL) != 0 || cmd_ok(c, 1, NULL) != 0)
            return KURER_ESTORAGE;
        res->received += q->len;
        return DONE;
    }
    int rc = take_load(c, &q->owner, res);
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
    (void)kurer__pg_send(c, PG_BLOB_CHUNK, &p, o, 0, 0);
    p.n = 0;
    kurer__pg_p_bytes(&p, q->id, KURER_BLOB_ID_LEN);
    kurer__pg_p_i64(&p, (int64_t)q->len);
    return kurer__pg_send(c, PG_BLOB_GROW, &p, o, 0, 0) == 0 ? 2 : KURER_ESTORAGE;
}

static int step_finish(pg_conn *c, op *o, int stage)
{
    const kurer_store_blob_req *q = o->breq;
    kurer_store_blob_res *res = &o->bres;
    pg_params p;
    if (stage == 0)
        return send_load(c, o) == 0 ? 1 : KURER_ESTORAGE;
    if (stage == 2) {
        if (cmd_ok(c, 0, NULL) != 0)
            return KURER_ESTORAGE;
        res->complete = 1;
        res->expires_at = q->expires_at;
        return DONE;
    }
    int rc = take_load(c, &q->owner, res);
    if (rc != 0 || res->complete)
        return rc != 0 ? rc : DONE;
    if (res->received != res->size)
        return KURER_ESTATE;
    p.n = 0;
    kurer__pg_p_bytes(&p, q->id, KURER_BLOB_ID_LEN);
    kurer__pg_p_i64(&p, q->expires_at);
    return kurer__pg_send(c, PG_BLOB_FINISH, &p, o, 0, 0) == 0 ? 2 : KURER_ESTORAGE;
}

/* The chunks read (the first result) into blob_out. */
static int take_read(pg_conn *c, op *o, uint64_t end)
{
    const kurer_store_blob_req *q = o->breq;
    const PGresult *r = kurer__pg_res(c, 0, PGRES_TUPLES_OK);
    if (r == NULL)
        return KURER_ESTORAGE;
    uint64_t at = q->offset;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t off;
        if (kurer__pg_i64(r, i, 0, &off) != 0 || off < 0)
            return KURER_ECORRUPT;
        uint64_t n = (uint64_t)PQgetlength(r, i, 1);
        const uint8_t *d = (const uint8_t *)PQgetvalue(r, i, 1);
        if ((uint64_t)off > at || (uint64_t)off + n <= at)
            return KURER_ECORRUPT; /* a hole: chunks are stored in order, without gaps */
        uint64_t take = ((uint64_t)off + n > end ? end : (uint64_t)off + n) - at;
        memcpy(o->blob_out + (at - q->offset), d + (at - (uint64_t)off), (size_t)take);
        at += take;
    }
    if (at != end)
        return KURER_ECORRUPT;
    o->bres.len = (size_t)(end - q->offset);
    return DONE;
}

static int step_read(pg_conn *c, op *o, int stage)
{
    const kurer_store_blob_req *q = o->breq;
    kurer_store_blob_res *res = &o->bres;
    pg_params p;
    if (stage == 0)
        return send_load(c, o) == 0 ? 1 : KURER_ESTORAGE;
    uint64_t end = q->offset + q->length > res->size ? res->size : q->offset + q->length;
    if (stage == 2)
        return take_read(c, o, end);
    int rc = take_load(c, NULL, res);
    if (rc != 0)
        return rc;
    if (!res->complete)
        return KURER_ENOTFOUND;
    if (q->offset >= res->size)
        return KURER_ELIMIT;
    end = q->offset + q->length > res->size ? res->size : q->offset + q->length;
    p.n = 0;
    kurer__pg_p_bytes(&p, q->id, KURER_BLOB_ID_LEN);
    kurer__pg_p_i64(&p, (int64_t)q->offset);
    kurer__pg_p_i64(&p, (int64_t)end);
    return kurer__pg_send(c, PG_BLOB_READ, &p, o, 0, 0) == 0 ? 2 : KURER_ESTORAGE;
}

/* The expired blobs counted, deleted, and the bytes left, in one batch. */
static int step_sweep(pg_conn *c, op *o, int stage)
{
    kurer_store_blob_res *res = &o->bres;
    pg_params p;
    int64_t n = 0, bytes = 0, live = 0;
    if (stage == 0) {
        p.n = 0;
        kurer__pg_p_i64(&p, o->breq->now);
        (void)kurer__pg_send(c, PG_BLOB_SWEPT, &p, o, 0, 0);
        (void)kurer__pg_send(c, PG_BLOB_SWEEP, &p, o, 0, 0);
        p.n = 0;
        return kurer__pg_send(c, PG_BLOB_LIVE, &p, o, 0, 0) == 0 ? 1 : KURER_ESTORAGE;
    }
    const PGresult *r = kurer__pg_res(c, 0, PGRES_TUPLES_OK);
    const PGresult *l = kurer__pg_res(c, 2, PGRES_TUPLES_OK);
    if (r == NULL || cmd_ok(c, 1, NULL) != 0 || l == NULL)
        return KURER_ESTORAGE;
    if (PQntuples(r) != 1 || kurer__pg_i64(r, 0, 0, &n) != 0 ||
        kurer__pg_i64(r, 0, 1, &bytes) != 0 || PQntuples(l) != 1 ||
        kurer__pg_i64(l, 0, 0, &live) != 0)
        return KURER_ECORRUPT;
    res->swept = (uint64_t)n;
    res->swept_bytes = (uint64_t)bytes;
    res->live_bytes = (uint64_t)live;
    return DONE;
}

int kurer__pg_step_blob(pg_conn *c, op *o, int stage)
{
    const kurer_store_blob_req *q = o->breq;
    int rc = KURER_EINVAL;
    if (stage == 0)
        memset(&o->bres, 0, sizeof(o->bres));
    switch (q->op) {
    case KURER_BLOB_CREATE:
        rc = step_create(c, o, stage);
        break;
    case KURER_BLOB_STATE:
        rc = stage == 0 ? (send_load(c, o) == 0 ? 1 : KURER_ESTORAGE)
                        : take_load(c, &q->owner, &o->bres);
        break;
    case KURER_BLOB_APPEND:
        rc = step_append(c, o, stage);
        break;
    case KURER_BLOB_FINISH:
        rc = step_finish(c, o, stage);
        break;
    case KURER_BLOB_READ:
        rc = step_read(c, o, stage);
        break;
    case KURER_BLOB_SWEEP:
        rc = step_sweep(c, o, stage);
        break;
    }
    if (rc > 0 || rc == KURER_ESTORAGE)
        return rc;
    o->err = rc == DONE ? 0 : rc;
    return 0;
}
