/* The postgres backend of the relay store (store.h): the shared queue (store_queue.c) executed
 * by one writer thread on one blocking libpq connection, with group commit: everything submitted
 * while a transaction runs goes into the next one, its puts, acks, directory entries and lists
 * in pipeline mode (store_pg_pipe.c). SQL in store_pg_exec.c, schema in store_pg_schema.c.
 *
 * Seqs come from each device's counter row, incremented inside the storing transaction
 * (store_pg_exec.c); they are known only once the round's statements ran, and a rollback (a
 * failed commit, a lost connection) takes them back. So on_seqs runs after the commit, just
 * before on_done: early delivery of an envelope never starts before its commit with this
 * backend, and puts and acks never meet (hold_us is ignored, and the queue's pairing is off):
 * an ack deletes what its put wrote. */
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"

typedef kurer__op op;

#define ROUND_TRIES   5    /* a round that met a deadlock or a serialization failure reruns */
#define BACKOFF_MIN   50   /* ms before the first reconnect attempt after a failed one */
#define BACKOFF_MAX   2000 /* ms: the longest wait between attempts */
#define SQLSTATE_SIZE 6
#define RESUBMIT_MS   10000 /* a round waits this long for a lost connection to come back */

static _Thread_local char last_sqlstate[SQLSTATE_SIZE];

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

static void log_pg(pg_store *s, const char *event, const PGresult *r)
{
    const char *msg = r != NULL ? PQresultErrorMessage(r) : "";
    if (msg == NULL || msg[0] == '\0')
        msg = PQerrorMessage(s->conn);
    /* libpq's messages name the server and the role, never the password */
    kurer_log(KURER_LOG_ERROR, "store", event, (kurer_log_field[]){KURER_LOG_STR("error", msg)}, 1);
}

static void keep_sqlstate(const PGresult *r)
{
    const char *st = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(last_sqlstate, sizeof(last_sqlstate), "%s", st != NULL ? st : "");
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

void kurer__pg_note_error(pg_store *s, const PGresult *r)
{
    keep_sqlstate(r);
    log_pg(s, "statement_failed", r);
}

PGresult *kurer__pg_run(pg_store *s, pg_stmt st, const pg_params *p, ExecStatusType want)
{
    PGresult *r = PQexecPrepared(s->conn, kurer__pg_stmt_name(st), p->n, p->v, p->len, p->fmt, 1);
    if (PQresultStatus(r) == want)
        return r;
    keep_sqlstate(r);
    log_pg(s, "statement_failed", r);
    PQclear(r);
    return NULL;
}

int kurer__pg_cmd(pg_store *s, const char *sql)
{
    PGresult *r = PQexec(s->conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        keep_sqlstate(r);
        log_pg(s, "statement_failed", r);
    }
    PQclear(r);
    return ok ? 0 : KURER_ESTORAGE;
}

/* ---- the connection ----------------------------------------------------------------------- */

static PGconn *connect_db(const char *conninfo)
{
    /* the connection string is expanded from dbname; the relay names itself unless it says */
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const vals[] = {conninfo, "kurer-relay", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c != NULL && PQstatus(c) != CONNECTION_OK) {
        kurer_log(KURER_LOG_ERROR, "store", "connect_failed",
                  (kurer_log_field[]){KURER_LOG_STR("error", PQerrorMessage(c))}, 1);
        PQfinish(c);
        return NULL;
    }
    return c;
}

static int prepare_all(pg_store *s)
{
    for (int i = 0; i < PG_N_STMTS; i++) {
        PGresult *r =
            PQprepare(s->conn, kurer__pg_stmt_name((pg_stmt)i), kurer__pg_sql[i], 0, NULL);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            log_pg(s, "prepare_failed", r);
        PQclear(r);
        if (!ok)
            return KURER_ESTORAGE;
    }
    s->prepared = 1;
    return 0;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A working connection with its statements: the one there, or a new one (a multi-host string
 * with target_session_attrs=read-write finds the primary after a failover). A failed attempt
 * waits out a backoff first, so a lost database costs the rounds meanwhile a short wait each
 * and an error, never a promise. */
static int ensure_conn(pg_store *s)
{
    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK && s->prepared)
        return 0;
    if (s->conn != NULL) {
        PQfinish(s->conn);
        s->conn = NULL;
        s->reconnects++;
        kurer_log(KURER_LOG_WARN, "store", "connection_lost", NULL, 0);
    }
    if (s->backoff_ms > 0)
        sleep_ms(s->backoff_ms);
    s->prepared = 0;
    s->conn = connect_db(s->conninfo);
    if (s->conn == NULL || prepare_all(s) != 0) {
        s->backoff_ms = s->backoff_ms == 0 ? BACKOFF_MIN : s->backoff_ms * 2;
        if (s->backoff_ms > BACKOFF_MAX)
            s->backoff_ms = BACKOFF_MAX;
        return KURER_ESTORAGE;
    }
    s->backoff_ms = 0;
    return 0;
}

/* ---- rounds (the writer thread) ----------------------------------------------------------- */

static int is_read(const op *o)
{
    return o->kind == KURER__OP_FETCH || o->kind == KURER__OP_COUNT;
}

/* The writes of a round in one transaction: 0, or KURER_ESTORAGE (rolled back). *retry: the
 * failure was a deadlock or a serialization failure, which a rerun may not meet. */
static int run_writes(pg_store *s, op *round, uint64_t *count, int *retry, int *commit_sent)
{
    last_sqlstate[0] = '\0';
    int rc = kurer__pg_cmd(s, "BEGIN");
    if (rc == 0)
        rc = kurer__pg_exec_pipelined(s, round); /* puts, acks, directory, lists */
    for (op *o = round; o != NULL; o = o->next, (*count)++) {
        if (rc != 0 || (o->kind != KURER__OP_PREKEYS && o->kind != KURER__OP_TAKE &&
                        o->kind != KURER__OP_INVITE && o->kind != KURER__OP_BLOB))
            continue;
        o->err = kurer__pg_exec_write(s, o); /* these read before they write */
        if (o->err == KURER_ESTORAGE)
            rc = KURER_ESTORAGE;
    }
    if (rc == 0) {
        /* the round's number goes into its own transaction, in the COMMIT's round trip */
        char sql[200];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO kurer_rounds(node, round) VALUES (%lld, %llu) ON CONFLICT (node) "
                 "DO UPDATE SET round = excluded.round, updated_at = now(); COMMIT",
                 (long long)s->node, (unsigned long long)++s->round);
        *commit_sent = 1; /* from here on a lost connection leaves the outcome unknown */
        rc = kurer__pg_cmd(s, sql);
    }
    *retry = strcmp(last_sqlstate, "40P01") == 0 || strcmp(last_sqlstate, "40001") == 0;
    if (rc != 0 && s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK &&
        PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        (void)kurer__pg_cmd(s, "ROLLBACK");
    return rc;
}

/* After a connection lost with the round's COMMIT in flight: 0 if it committed (its number is
 * in kurer_rounds) and is as durable as a commit is (this transaction writes the row again, and
 * its own commit, later in the WAL, returns only once a synchronous standby has flushed it, and
 * so everything before it); 1 if it did not commit; KURER_ESTORAGE if that cannot be known now.
 * FOR UPDATE waits for the round's transaction, should it still be running on a live server. */
static int resolve_round(pg_store *s, uint64_t deadline)
{
    char sql[160];
    while (ensure_conn(s) != 0)
        if (kurer_time_mono_ms() >= deadline)
            return KURER_ESTORAGE;
    if (kurer__pg_cmd(s, "BEGIN; SET LOCAL lock_timeout = '10s'") != 0)
        return KURER_ESTORAGE;
    snprintf(sql, sizeof(sql), "SELECT round FROM kurer_rounds WHERE node = %lld FOR UPDATE",
             (long long)s->node);
    PGresult *r = PQexec(s->conn, sql);
    int found = PQresultStatus(r) == PGRES_TUPLES_OK;
    int committed = found && PQntuples(r) == 1 &&
                    strtoull(PQgetvalue(r, 0, 0), NULL, 10) == (unsigned long long)s->round;
    PQclear(r);
    snprintf(sql, sizeof(sql),
             "UPDATE kurer_rounds SET updated_at = now() WHERE node = %lld; COMMIT",
             (long long)s->node);
    if (!found || kurer__pg_cmd(s, sql) != 0) {
        if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
            (void)kurer__pg_cmd(s, "ROLLBACK");
        return KURER_ESTORAGE;
    }
    kurer_log(KURER_LOG_WARN, "store", committed ? "round_committed" : "round_not_committed", NULL,
              0);
    return committed ? 0 : 1;
}

/* One round: its writes in one transaction, then its reads. A failed transaction fails every
 * write of the round (none was committed; a put's sender is never told "accepted").
 *
 * A lost connection (a server that crashed or was stopped, a failover) is made again, with the
 * backoff of ensure_conn, for up to RESUBMIT_MS: a round whose connection was lost before its
 * COMMIT was sent was not committed, and runs again whole on the new connection (which, with
 * several hosts and target_session_attrs=read-write, is the new primary's). A round whose
 * COMMIT was sent and not answered may have committed: it fails with ESTORAGE (its sender
 * sends again; the recipient drops the duplicate by envelope id), never reported accepted. */
static void run_round(pg_store *s, op *round)
{
    uint64_t t0 = kurer_time_mono_ns(), count = 0;
    uint64_t deadline = kurer_time_mono_ms() + RESUBMIT_MS;
    int rc = 0, has_write = 0;
    for (op *o = round; o != NULL; o = o->next)
        has_write |= !is_read(o);
    for (int attempt = 0; attempt < ROUND_TRIES;) {
        int retry = 0, commit_sent = 0;
        count = 0;
        if ((rc = ensure_conn(s)) != 0) {
            if (kurer_time_mono_ms() < deadline)
                continue; /* ensure_conn waits out the backoff */
            break;
        }
        if (!has_write)
            break;
        if ((rc = run_writes(s, round, &count, &retry, &commit_sent)) == 0)
            break;
        if (commit_sent && PQstatus(s->conn) != CONNECTION_OK) {
            int outcome = resolve_round(s, deadline);
            if (outcome == 1 && kurer_time_mono_ms() < deadline)
                continue; /* not committed: again, on the new connection */
            rc = outcome == 0 ? 0 : KURER_ESTORAGE;
            break;
        }
        if (!commit_sent && PQstatus(s->conn) != CONNECTION_OK && kurer_time_mono_ms() < deadline) {
            kurer_log(KURER_LOG_WARN, "store", "round_resubmitted", NULL, 0);
            continue; /* not committed: again, on a new connection */
        }
        if (!retry)
            break;
        attempt++;
        kurer_log(KURER_LOG_INFO, "store", "round_retried",
                  (kurer_log_field[]){KURER_LOG_STR("sqlstate", last_sqlstate)}, 1);
    }
    /* a failed write does not fail the reads, only a lost connection does */
    int reads = rc == 0 || (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK);
    if (reads)
        kurer__pg_exec_reads(s, round);
    for (op *o = round; o != NULL; o = o->next)
        if (is_read(o) ? !reads : rc != 0)
            o->err = KURER_ESTORAGE;
    kurer__storeq_finish(&s->q, round, count, (kurer_time_mono_ns() - t0) / 1000);
}

static void *writer(void *arg)
{
    pg_store *s = arg;
    for (;;) {
        int stop = 0;
        op *round = kurer__storeq_next(&s->q, &stop);
        if (stop)
            break;
        if (round != NULL)
            run_round(s, round);
    }
    return NULL;
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

/* A start-up loader's query (binary results), with the writer kept off the connection. */
static PGresult *loader_query(pg_store *s, const char *sql)
{
    kurer__storeq_exclusive_begin(&s->q);
    PGresult *r = NULL;
    if (ensure_conn(s) == 0) {
        r = PQexecParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            log_pg(s, "load_failed", r);
            PQclear(r);
            r = NULL;
        }
    }
    kurer__storeq_exclusive_end(&s->q);
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
    pthread_join(s->thread, NULL);
    kurer__storeq_run_completions(&s->q);
    PQfinish(s->conn);
    s->conn = NULL;
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

/* This writer's row in kurer_rounds (a random node id per open); rows of writers gone for a
 * week are removed. */
static int register_node(pg_store *s)
{
    char sql[200];
    uint64_t id;
    kurer_random(&id, sizeof(id));
    s->node = (int64_t)(id >> 1); /* positive */
    snprintf(sql, sizeof(sql),
             "INSERT INTO kurer_rounds(node, round) VALUES (%lld, 0) ON CONFLICT DO NOTHING; "
             "DELETE FROM kurer_rounds WHERE updated_at < now() - interval '7 days'",
             (long long)s->node);
    return kurer__pg_cmd(s, sql);
}

int kurer_store_init_postgres(const char *conninfo)
{
    PGconn *c = connect_db(conninfo);
    if (c == NULL)
        return KURER_ESTORAGE;
    int rc = kurer__pg_migrate(c);
    PQfinish(c);
    return rc;
}

int kurer_store_open_postgres(kurer_store **out, uv_loop_t *loop, const char *conninfo)
{
    *out = NULL;
    pg_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return KURER_ENOMEM;
    s->base.ops = &pg_ops;
    s->base.q = &s->q;
    size_t len = strlen(conninfo);
    int rc = 0;
    if ((s->conninfo = kurer_secure_alloc(len + 1)) == NULL)
        rc = KURER_ENOMEM;
    else
        memcpy(s->conninfo, conninfo, len + 1);
    if (rc == 0 && (s->conn = connect_db(s->conninfo)) == NULL)
        rc = KURER_ESTORAGE;
    if (rc == 0)
        rc = kurer__pg_migrate(s->conn);
    if (rc == 0)
        rc = prepare_all(s);
    if (rc == 0)
        rc = register_node(s);
    int queue = rc == 0; /* the queue is initialised (and so frees s) */
    if (queue && (rc = kurer__storeq_init(&s->q, &s->base, loop)) == 0) {
        s->q.no_pairing = 1; /* seqs come with the commit: nothing to pair at submission */
        if (pthread_create(&s->thread, NULL, writer, s) != 0)
            rc = KURER_ESTORAGE;
    }
    if (rc == 0) {
        *out = &s->base;
        return 0;
    }
    PQfinish(s->conn);
    free_conninfo(s);
    if (queue)
        kurer__storeq_release(&s->q); /* frees s, now or when the loop runs */
    else
        free(s);
    return rc;
}
