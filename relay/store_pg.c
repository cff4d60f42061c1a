/* The postgres backend of the relay store (store.h): the shared queue (store_queue.c) executed
 * by a pool of connections on the relay's loop (store_pg_pool.c), with group commit: everything
 * submitted while the pool's transactions run goes into the next one, its puts, acks, directory
 * entries and lists in pipeline mode (store_pg_pipe.c). SQL in store_pg_exec.c, schema in
 * store_pg_schema.c.
 *
 * Seqs come from each device's counter row, incremented inside the storing transaction
 * (store_pg_exec.c); they are known only once the round's statements ran, and a rollback (a
 * failed commit, a lost connection) takes them back. So on_seqs runs after the commit, just
 * before on_done: early delivery of an envelope never starts before its commit with this
 * backend, and puts and acks never meet (hold_us is ignored, and the queue's pairing is off):
 * an ack deletes what its put wrote. */
#include "store_pg.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"

typedef kurer__op op;

/* ---- parameters and results --------------------------------------------------------------- */

void kurer__pg_p_bytes(pg_params *p, const void *data, size_t len)
{
    if (p->n >= 8 || len > INT32_MAX)
        return; /* a statement has fewer; the server then refuses it */
    p->v[p->n] = data != NULL ? data : "";
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

void kurer__pg_p_str(pg_params *p, const char *s)
{
    kurer__pg_p_bytes(p, s, strlen(s));
}

void kurer__pg_p_i64(pg_params *p, int64_t v)
{
    if (p->n >= 8)
        return;
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p->num[p->n][i] = (uint8_t)(u >> (56 - 8 * i));
    kurer__pg_p_bytes(p, p->num[p->n], 8);
}

int kurer__pg_i64(const PGresult *r, int row, int col, int64_t *out)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
        return KURER_ECORRUPT;
    const uint8_t *b = (const uint8_t *)PQgetvalue(r, row, col);
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | b[i];
    *out = (int64_t)u;
    return 0;
}

int kurer__pg_copy(const PGresult *r, int row, int col, uint8_t *out, size_t len)
{
    if (PQgetisnull(r, row, col) || (size_t)PQgetlength(r, row, col) != len)
        return KURER_ECORRUPT;
    memcpy(out, PQgetvalue(r, row, col), len);
    return 0;
}

int kurer__pg_user(const PGresult *r, int row, int col, char *out, size_t cap)
{
    size_t len = (size_t)PQgetlength(r, row, col);
    const char *v = PQgetvalue(r, row, col);
    if (PQgetisnull(r, row, col) || len >= cap || memchr(v, '\0', len) != NULL)
        return KURER_ECORRUPT;
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

const char *kurer__pg_stmt_name(pg_stmt st)
{
    static const char *const names[] = {
        "k0",  "k1",  "k2",  "k3",  "k4",  "k5",  "k6",  "k7",  "k8",  "k9",  "k10", "k11",
        "k12", "k13", "k14", "k15", "k16", "k17", "k18", "k19", "k20", "k21", "k22", "k23",
        "k24", "k25", "k26", "k27", "k28", "k29", "k30", "k31", "k32", "k33", "k34", "k35",
        "k36", "k37", "k38", "k39", "k40", "k41", "k42", "k43", "k44", "k45", "k46", "k47"};
    _Static_assert(PG_N_STMTS <= sizeof(names) / sizeof(names[0]), "a name per statement");
    return names[st];
}

/* ---- the operations table ----------------------------------------------------------------- */

/* Seqs after the commit (see the top of this file): on_seqs runs at completion. */
static int pg_put(kurer_store *base, const kurer_store_put_req *req)
{
    pg_store *s = (pg_store *)base;
    op *o = kurer__storeq_put_new(req);
    if (o == NULL)
        return KURER_ENOMEM;
    o->hold_until_ns = 0; /* nothing goes out before the commit: nothing to wait for */
    o->seqs_cb = req->on_seqs;
    kurer__storeq_submit(&s->q, o);
    return 0;
}

static int pg_put_fanout(kurer_store *base, const kurer_store_put_req *req, const uint8_t *shared,
                         size_t shared_len)
{
    pg_store *s = (pg_store *)base;
    if (shared == NULL || shared_len == 0 || shared_len > KURER_FRAME_MAX)
        return KURER_EINVAL;
    op *o = kurer__storeq_fanout_new(req, shared, shared_len);
    if (o == NULL)
        return KURER_ENOMEM;
    o->hold_until_ns = 0; /* as pg_put */
    o->seqs_cb = req->on_seqs;
    /* the payload's id: random, 63 bits (a collision fails the round, never mixes payloads) */
    kurer_random(&o->serial, sizeof(o->serial));
    o->serial = (o->serial >> 1) | 1;
    kurer__storeq_submit(&s->q, o);
    return 0;
}

static int pg_fetch(kurer_store *base, const kurer_device_address *dev, uint64_t after,
                    size_t limit, kurer_store_fetch_cb cb, void *arg)
{
    pg_store *s = (pg_store *)base;
    op *o = kurer__storeq_fetch_new(dev, after, limit, cb, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    kurer__storeq_submit(&s->q, o); /* high is read with the rows */
    return 0;
}

/* A start-up loader's query (binary results), on a connection of its own: blocking, before the
 * relay serves. */
static PGresult *loader_query(pg_store *s, const char *sql)
{
    PGconn *c = kurer__pg_connect(s->conninfo, "kurer-relay", "store");
    PGresult *r = c != NULL ? PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 1) : NULL;
    if (c != NULL && PQresultStatus(r) != PGRES_TUPLES_OK) {
        kurer__pg_log(c, "load_failed", r);
        PQclear(r);
        r = NULL;
    }
    PQfinish(c);
    return r;
}

static int pg_load_directory(kurer_store *base, kurer_store_device_cb cb, void *arg)
{
    pg_store *s = (pg_store *)base;
    PGresult *r = loader_query(s, "SELECT usr, device, serial, chain FROM devices");
    if (r == NULL)
        return KURER_ESTORAGE;
    for (int i = 0; i < PQntuples(r); i++) {
        kurer_store_device d;
        int64_t dev, serial;
        memset(&d, 0, sizeof(d));
        if (kurer__pg_user(r, i, 0, d.addr.user, sizeof(d.addr.user)) != 0 ||
            kurer__pg_i64(r, i, 1, &dev) != 0 || kurer__pg_i64(r, i, 2, &serial) != 0 || dev < 0 ||
            dev > UINT32_MAX || PQgetisnull(r, i, 3))
            continue; /* not a row this relay wrote */
        d.addr.device_id = (uint32_t)dev;
        d.serial = (uint64_t)serial;
        d.chain = (const uint8_t *)PQgetvalue(r, i, 3);
        d.chain_len = (size_t)PQgetlength(r, i, 3);
        cb(arg, &d);
    }
    PQclear(r);
    return 0;
}

static int pg_load_crls(kurer_store *base, kurer_store_crl_cb cb, void *arg)
{
    pg_store *s = (pg_store *)base;
    PGresult *r = loader_query(s, "SELECT list FROM crls ORDER BY issuer_key_id");
    if (r == NULL)
        return KURER_ESTORAGE;
    for (int i = 0; i < PQntuples(r); i++)
        if (!PQgetisnull(r, i, 0))
            cb(arg, (const uint8_t *)PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
    PQclear(r);
    return 0;
}

/* Whether the store takes writes: connected to a server that is not read-only (a standby, or
 * a primary told default_transaction_read_only). */
static int pg_probe(kurer_store *base)
{
    pg_store *s = (pg_store *)base;
    PGresult *r = loader_query(s, "SELECT current_setting('transaction_read_only')::bytea");
    int rc = r != NULL && PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 3 &&
                     memcmp(PQgetvalue(r, 0, 0), "off", 3) == 0
                 ? 0
                 : KURER_ESTORAGE;
    PQclear(r);
    return rc;
}

static void free_conninfo(pg_store *s)
{
    if (s->conninfo != NULL) {
        kurer_memzero(s->conninfo, strlen(s->conninfo));
        kurer_secure_free(s->conninfo);
        s->conninfo = NULL;
    }
}

static void pg_close(kurer_store *base)
{
    pg_store *s = (pg_store *)base;
    kurer__storeq_stop(&s->q);
    kurer__pg_pool_close(s); /* what is submitted and in flight ends first */
    kurer__storeq_run_completions(&s->q);
    free_conninfo(s);
    kurer__storeq_release(&s->q);
}

/* The relay's own backup (kurer-relay backup) is the sqlite store's: a PostgreSQL cluster is
 * backed up with PostgreSQL's tools (pg_basebackup, WAL archiving for point-in-time recovery;
 * docs/scale-out.md), which see every node's writes. Refused at once, nothing queued. */
static int pg_backup(kurer_store *s, const char *path, kurer_store_done_cb cb, void *arg)
{
    (void)s;
    (void)path;
    (void)cb;
    (void)arg;
    return KURER_EUNSUPPORTED;
}

static const kurer_store_ops pg_ops = {
    .name = "postgres",
    .close = pg_close,
    .probe = pg_probe,
    .load_directory = pg_load_directory,
    .load_crls = pg_load_crls,
    .put = pg_put,
    .put_fanout = pg_put_fanout,
    .fetch = pg_fetch,
    .ack = kurer__storeq_ack,
    .put_device = kurer__storeq_put_device,
    .put_prekeys = kurer__storeq_put_prekeys,
    .take_prekeys = kurer__storeq_take_prekeys,
    .count_prekeys = kurer__storeq_count_prekeys,
    .put_crl = kurer__storeq_put_crl,
    .invite = kurer__storeq_invite,
    .blob = kurer__storeq_blob,
    .set_commit_delay = kurer__storeq_set_commit_delay,
    .backup = pg_backup,
    .get_stats = kurer__storeq_get_stats,
};

/* ---- constructors ------------------------------------------------------------------------- */

int kurer_store_init_postgres(const char *conninfo)
{
    PGconn *c = kurer__pg_connect(conninfo, "kurer-relay", "store");
    if (c == NULL)
        return KURER_ESTORAGE;
    int rc = kurer__pg_migrate(c);
    PQfinish(c);
    return rc;
}

int kurer_store_open_postgres(kurer_store **out, uv_loop_t *loop, const char *conninfo, size_t pool)
{
    *out = NULL;
    if (pool == 0 || pool > KURER__PG_POOL_MAX)
        return KURER_EINVAL;
    pg_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return KURER_ENOMEM;
    s->base.ops = &pg_ops;
    s->base.q = &s->q;
    s->loop = loop;
    size_t len = strlen(conninfo);
    int rc = 0;
    if ((s->conninfo = kurer_secure_alloc(len + 1)) == NULL)
        rc = KURER_ENOMEM;
    else
        memcpy(s->conninfo, conninfo, len + 1);
    PGconn *c = rc == 0 ? kurer__pg_connect(s->conninfo, "kurer-relay", "store") : NULL;
    if (rc == 0 && c == NULL)
        rc = KURER_ESTORAGE;
    if (rc == 0)
        rc = kurer__pg_migrate(c); /* before the pool prepares its statements */
    PQfinish(c);
    int queue = rc == 0; /* the queue is initialised (and so frees s) */
    if (queue && (rc = kurer__storeq_init(&s->q, &s->base, loop)) == 0) {
        s->q.no_pairing = 1; /* seqs come with the commit: nothing to pair at submission */
        rc = kurer__pg_pool_open(s, pool);
    }
    if (rc == 0) {
        *out = &s->base;
        return 0;
    }
    free_conninfo(s);
    if (queue)
        kurer__storeq_release(&s->q); /* frees s, now or when the loop runs */
    else
        free(s);
    return rc;
}
