/* The postgres backend's invitations (store.h, "invitations and enrolment requests"), inside
 * the round's transaction after its pipelined part, as prekey uploads are: one statement each
 * (stage 0), its result read at stage 1 (kurer__pg_step). */
#include "store_pg.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/error.h"

typedef kurer__op op;

/* A nullable bytea column of at most cap bytes (NULL: none). */
static int bytes_col(const PGresult *r, int row, int col, uint8_t *out, size_t cap, size_t *n)
{
    *n = 0;
    if (PQgetisnull(r, row, col))
        return 0;
    size_t len = (size_t)PQgetlength(r, row, col);
    if (len > cap)
        return KURER_ECORRUPT;
    memcpy(out, PQgetvalue(r, row, col), len);
    *n = len;
    return 0;
}

static int i64_or_0(const PGresult *r, int row, int col, int64_t *out)
{
    *out = 0;
    return PQgetisnull(r, row, col) ? 0 : kurer__pg_i64(r, row, col, out);
}

/* A row in INV_COLS order (store_pg_exec.c). */
static int row_in(const PGresult *r, int i, kurer_store_invite *v)
{
    int64_t dev = 0, fail = 0, state = 0;
    size_t mac_len = 0;
    int rc;
    memset(v, 0, sizeof(*v));
    if ((rc = kurer__pg_copy(r, i, 0, v->id, sizeof(v->id))) != 0 ||
        (rc = kurer__pg_copy(r, i, 1, v->authority, sizeof(v->authority))) != 0 ||
        (rc = kurer__pg_user(r, i, 2, v->user, sizeof(v->user))) != 0 ||
        (rc = kurer__pg_i64(r, i, 3, &dev)) != 0 ||
        (rc = kurer__pg_copy(r, i, 4, v->verifier, sizeof(v->verifier))) != 0 ||
        (rc = kurer__pg_i64(r, i, 5, &v->created_at)) != 0 ||
        (rc = kurer__pg_i64(r, i, 6, &v->expires_at)) != 0 ||
        (rc = kurer__pg_i64(r, i, 7, &fail)) != 0 || (rc = kurer__pg_i64(r, i, 8, &state)) != 0 ||
        (rc = bytes_col(r, i, 9, v->request, sizeof(v->request), &v->request_len)) != 0 ||
        (rc = bytes_col(r, i, 10, v->authority_mac, sizeof(v->authority_mac), &mac_len)) != 0 ||
        (rc = i64_or_0(r, i, 11, &v->submitted_at)) != 0 ||
        (rc = bytes_col(r, i, 12, v->chain, sizeof(v->chain), &v->chain_len)) != 0)
        return rc;
    if (dev <= 0 || dev > KURER_DEVICE_ID_MAX || fail < 0 || fail > UINT32_MAX || state < 0 ||
        state > KURER_ENROL_REJECTED)
        return KURER_ECORRUPT;
    v->device_id = (uint32_t)dev;
    v->failures = (uint32_t)fail;
    v->state = (int)state;
    return 0;
}

static int read_rows(pg_conn *c, op *o, size_t cap)
{
    const PGresult *r = kurer__pg_res(c, 0, PGRES_TUPLES_OK);
    int rc = 0;
    if (r == NULL)
        return KURER_ESTORAGE;
    size_t n = (size_t)PQntuples(r);
    o->n_inv = 0;
    for (size_t i = 0; i < n && i < cap && rc == 0; i++)
        if ((rc = row_in(r, (int)i, &o->inv_rows[i])) == 0)
            o->n_inv++;
    return rc;
}

/* A command that must change one row (else none). */
static int change_one(pg_conn *c, int none)
{
    const PGresult *r = kurer__pg_res(c, 0, PGRES_COMMAND_OK);
    if (r == NULL)
        return KURER_ESTORAGE;
    return strcmp(PQcmdTuples((PGresult *)r), "1") == 0 ? 0 : none;
}

/* The statement of the request (stage 0). */
static int send_invite(pg_conn *c, op *o)
{
    const kurer_store_invite_req *q = o->inv;
    const kurer_store_invite *v = &q->inv;
    pg_params p;
    p.n = 0;
    kurer__pg_p_bytes(&p, q->op == KURER_INVITE_LIST ? v->authority : v->id,
                      q->op == KURER_INVITE_LIST ? sizeof(v->authority) : sizeof(v->id));
    switch (q->op) {
    case KURER_INVITE_PUT:
        kurer__pg_p_bytes(&p, v->authority, sizeof(v->authority));
        kurer__pg_p_str(&p, v->user);
        kurer__pg_p_i64(&p, v->device_id);
        kurer__pg_p_bytes(&p, v->verifier, sizeof(v->verifier));
        kurer__pg_p_i64(&p, v->created_at);
        kurer__pg_p_i64(&p, v->expires_at);
        kurer__pg_p_i64(&p, KURER_ENROL_OPEN);
        return kurer__pg_send(c, PG_INV_PUT, &p, o, 0, 0);
    case KURER_INVITE_GET:
        return kurer__pg_send(c, PG_INV_GET, &p, o, 0, 0);
    case KURER_INVITE_SUBMIT:
        kurer__pg_p_bytes(&p, v->request, v->request_len);
        kurer__pg_p_bytes(&p, v->authority_mac, sizeof(v->authority_mac));
        kurer__pg_p_i64(&p, v->submitted_at);
        return kurer__pg_send(c, PG_INV_SUBMIT, &p, o, 0, 0);
    case KURER_INVITE_FAIL:
        return kurer__pg_send(c, PG_INV_FAIL, &p, o, 0, 0);
    case KURER_INVITE_LIST:
        kurer__pg_p_bytes(&p, q->after, q->has_after ? sizeof(q->after) : 0);
        kurer__pg_p_i64(&p, (int64_t)q->limit);
        return kurer__pg_send(c, PG_INV_LIST, &p, o, 0, 0);
    case KURER_INVITE_DECIDE:
        kurer__pg_p_i64(&p, v->state);
        kurer__pg_p_bytes(&p, v->chain, v->chain_len);
        return kurer__pg_send(c, PG_INV_DECIDE, &p, o, 0, 0);
    }
    return KURER_EINVAL;
}

/* Its result (stage 1): the op's error, or KURER_ESTORAGE. */
static int take_invite(pg_conn *c, op *o)
{
    const kurer_store_invite_req *q = o->inv;
    int rc;
    switch (q->op) {
    case KURER_INVITE_PUT:
        return change_one(c, KURER_EEXIST);
    case KURER_INVITE_GET:
        rc = read_rows(c, o, 1);
        return rc == 0 && o->n_inv == 0 ? KURER_ENOTFOUND : rc;
    case KURER_INVITE_SUBMIT:
        return change_one(c, KURER_EINVITEUSED);
    case KURER_INVITE_FAIL:
        return change_one(c, KURER_ENOTFOUND);
    case KURER_INVITE_LIST:
        return read_rows(c, o, q->limit);
    case KURER_INVITE_DECIDE:
        return change_one(c, KURER_ESTATE);
    }
    return KURER_EINVAL;
}

int kurer__pg_step_invite(pg_conn *c, op *o, int stage)
{
    int rc = stage == 0 ? send_invite(c, o) : take_invite(c, o);
    if (stage == 0 && rc == 0)
        return 1;
    if (rc == KURER_ESTORAGE)
        return rc;
    o->err = rc;
    return 0;
}
