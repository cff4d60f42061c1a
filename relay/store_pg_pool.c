/* The postgres backend's pool of connections on the relay's loop (store_pg.h).
 *
 * Each connection is non-blocking and in pipeline mode for its whole life, its socket in a
 * uv_poll (readable always, writable while libpq holds output). It runs one round at a time,
 * taken from the shared queue (kurer__storeq_take) when it is idle: what was submitted while
 * the other connections' rounds run goes into the next one (group commit; up to the queue's cap
 * of a round, the rest into the rounds after), and while one round waits for its COMMIT (a
 * synchronous standby's flush) the next already runs on another connection.
 *
 * Order: a round is dispatched only once the round dispatched before it has executed its writes
 * (wrote), so that whatever rows they touch are locked by it before the next round's statements
 * run: a later write of the same row (a device's counter, a directory entry, a blob's row)
 * waits for the earlier one's commit, and rounds of one node never deadlock on each other.
 * Seqs are in commit order per device (the counter row lock), on one node as between nodes. A
 * round's reads wait until every round dispatched before it has ended, so that a read sees
 * every write submitted before it that committed. (A round run again after a deadlock with
 * another node, or after a lost connection, keeps no order with the rounds that ran meanwhile,
 * as between two nodes.)
 *
 * A round is a few batches, each its statements up to a sync point, their results read as they
 * arrive (PQconsumeInput, PQisBusy, PQgetResult) and handed on when the batch is complete:
 * P_FIRST (BEGIN and the mailbox counts of its puts), P_WRITES (puts, acks, directory entries,
 * lists), P_SEQ (the operations that read before they write, a step at a time), P_COMMIT (its
 * number in kurer_rounds, then COMMIT), P_READS (fetches and counts, after the commit). A
 * statement that fails rolls the round back (P_ROLLBACK); a deadlock or a serialization failure
 * runs it again, up to ROUND_TRIES times.
 *
 * A lost connection is made again by its connector thread (pg_loop.h; a multi-host string with
 * target_session_attrs=read-write finds the new primary after a failover), after a backoff, for
 * up to RESUBMIT_MS after the loss: a round lost before its COMMIT was sent was not committed and
 * runs again whole; one whose COMMIT was sent and not answered is decided by its number in
 * kurer_rounds (P_RESOLVE). Nothing is reported accepted before its commit returned, and
 * returned without a WARNING: a COMMIT whose wait for the synchronous standby was cancelled
 * (pg_cancel_backend) returns success with "canceling wait for synchronous replication", the
 * transaction committed on the primary only; such a round is decided by P_RESOLVE too, whose own
 * commit, later in the WAL, returns only once a standby has flushed it and so the round.
 *
 * A silent server (power lost, a partition: no FIN, no RST), a statement waiting on a lock, a
 * COMMIT waiting for a synchronous standby: a batch whose results are not all in after BATCH_MS
 * loses its connection (the watchdog, c->watch), as above. A round not ended ROUND_MS after it
 * was dispatched fails in any state (c->limit; never reported accepted), so that no connection
 * holds up the node's rounds for longer. */
#include "store_pg.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"

typedef kurer__op op;

#define SLOTS_KEPT  256   /* slot arrays larger than this are freed after their round */
#define ROUND_TRIES 5     /* a round that met a deadlock or a serialization failure reruns */
#define BACKOFF_MIN 50    /* ms before the first reconnect attempt after a failed one */
#define BACKOFF_MAX 2000  /* ms: the longest wait between attempts */
#define RESUBMIT_MS 10000 /* a round waits this long for a lost connection to come back */
#define DRAIN_MS    15000 /* close waits this long for what is in flight */
#define BATCH_MS    15000 /* a batch's results not all in by then: its connection is lost */
#define ROUND_MS    60000 /* a round not ended by then fails, whatever it waits for */

enum { C_DOWN, C_CONNECTING, C_UP };
enum { P_NONE, P_FIRST, P_WRITES, P_SEQ, P_COMMIT, P_ROLLBACK, P_READS, P_RESOLVE, P_PARKED };

typedef struct pg_pool {
    pg_store *s;
    size_t n;
    int open_handles; /* the pool is freed when the last one closed */
    int closing;
    uint64_t dispatched; /* rounds so far (round_id of the last) */
    pg_conn *last;       /* the connection of the last round dispatched */
    uv_timer_t delay;    /* the commit delay of the oldest op waiting */
    pg_conn conns[];
} pg_pool;

static void on_io(uv_poll_t *p, int status, int events);
static void lost(pg_conn *c);
static void drop_conn(pg_conn *c);
static void on_batch(pg_conn *c);
static void on_watch(uv_timer_t *t);

/* ---- batches ------------------------------------------------------------------------------ */

void kurer__pg_log(PGconn *c, const char *event, const PGresult *r)
{
    const char *msg = r != NULL ? PQresultErrorMessage(r) : "";
    if ((msg == NULL || msg[0] == '\0') && c != NULL)
        msg = PQerrorMessage(c);
    /* libpq's messages name the server and the role, never the password */
    kurer_log(KURER_LOG_ERROR, "store", event,
              (kurer_log_field[]){KURER_LOG_STR("error", msg != NULL ? msg : "")}, 1);
}

static void clear_results(pg_slot *sl, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        PQclear(sl[k].r);
        sl[k].r = NULL;
    }
}

static int slot_room(pg_conn *c)
{
    if (c->n < c->cap)
        return 0;
    size_t cap = c->cap ? 2 * c->cap : 64;
    pg_slot *sl = realloc(c->slots, cap * sizeof(*sl));
    if (sl == NULL)
        return KURER_ENOMEM;
    c->slots = sl;
    c->cap = cap;
    return 0;
}

static int queued(pg_conn *c, int ok, op *o, size_t i, int what)
{
    if (!ok) {
        kurer__pg_log(c->conn, "send_failed", NULL);
        c->broken = 1;
        return KURER_ESTORAGE;
    }
    c->slots[c->n++] = (pg_slot){o, i, what, NULL};
    return 0;
}

int kurer__pg_send(pg_conn *c, pg_stmt st, const pg_params *p, op *o, size_t i, int what)
{
    if (c->broken || c->conn == NULL || slot_room(c) != 0)
        return c->broken = 1, KURER_ESTORAGE;
    return queued(
        c, PQsendQueryPrepared(c->conn, kurer__pg_stmt_name(st), p->n, p->v, p->len, p->fmt, 1), o,
        i, what);
}

int kurer__pg_send_sql(pg_conn *c, const char *sql)
{
    if (c->broken || c->conn == NULL || slot_room(c) != 0)
        return c->broken = 1, KURER_ESTORAGE;
    return queued(c, PQsendQueryParams(c->conn, sql, 0, NULL, NULL, NULL, NULL, 1), NULL, 0, 0);
}

const PGresult *kurer__pg_res(pg_conn *c, size_t k, ExecStatusType want)
{
    const PGresult *r = k < c->n_done ? c->done[k].r : NULL;
    ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (r != NULL && st == want)
        return r;
    if (!c->noted && st != PGRES_PIPELINE_ABORTED) {
        const char *code = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", code != NULL ? code : "");
        kurer__pg_log(c->conn, "statement_failed", r);
        c->noted = 1;
    }
    return NULL;
}

static int flush_out(pg_conn *c)
{
    return kurer__pg_flush(&c->w, c->s->loop, c->conn, on_io, c);
}

/* Ends the batch with a sync point and sends it; phase: what its results are for. */
static void end_batch(pg_conn *c, int phase)
{
    c->phase = phase;
    if (c->broken || !PQpipelineSync(c->conn)) {
        lost(c);
        return;
    }
    c->syncing = 1;
    c->got = 0;
    if (flush_out(c) != 0)
        lost(c);
    else
        uv_timer_start(&c->watch, on_watch, BATCH_MS, 0);
}

/* The batch's sync point came: its results become the completed batch's. */
static void batch_complete(pg_conn *c)
{
    pg_slot *sl = c->done;
    size_t cap = c->cap_done;
    clear_results(c->done, c->n_done);
    c->done = c->slots;
    c->cap_done = c->cap;
    c->n_done = c->n;
    c->slots = sl;
    c->cap = cap;
    c->n = 0;
    c->syncing = 0;
    c->noted = 0;
    uv_timer_stop(&c->watch);
    on_batch(c);
}

/* Reads what arrived: each statement's result, the NULL that ends it, the batch's sync. */
static int read_results(pg_conn *c)
{
    if (!PQconsumeInput(c->conn))
        return KURER_ESTORAGE;
    while (c->conn != NULL && c->syncing && !PQisBusy(c->conn)) {
        PGresult *r = PQgetResult(c->conn);
        if (r == NULL) {
            if (++c->got > c->n)
                return KURER_ESTORAGE; /* more results than statements: out of step */
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            batch_complete(c);
            continue;
        }
        if (c->got < c->n && c->slots[c->got].r == NULL)
            c->slots[c->got].r = r;
        else
            PQclear(r);
        if (PQstatus(c->conn) == CONNECTION_BAD)
            return KURER_ESTORAGE;
    }
    return c->conn != NULL && PQstatus(c->conn) == CONNECTION_BAD ? KURER_ESTORAGE : 0;
}

static void on_io(uv_poll_t *p, int status, int events)
{
    pg_conn *c = p->data;
    if (c->conn == NULL || p != c->w.poll)
        return;
    int rc = status < 0 ? KURER_ESTORAGE : 0;
    if (rc == 0 && (events & UV_WRITABLE))
        rc = flush_out(c);
    if (rc == 0 && (events & UV_READABLE))
        rc = read_results(c);
    if (rc != 0 && c->conn != NULL) {
        kurer__pg_log(c->conn, "read_failed", NULL);
        lost(c);
    }
}

/* ---- rounds ------------------------------------------------------------------------------- */

static int is_read(const op *o)
{
    return o->kind == KURER__OP_FETCH || o->kind == KURER__OP_COUNT;
}

static int is_step(const op *o)
{
    return o->kind == KURER__OP_PREKEYS || o->kind == KURER__OP_TAKE ||
           o->kind == KURER__OP_INVITE || o->kind == KURER__OP_BLOB;
}

static op *next_step(op *o)
{
    while (o != NULL && !is_step(o))
        o = o->next;
    return o;
}

static void go_reads(pg_conn *c);
static void wrote(pg_conn *c);

/* Whether a round dispatched before c's is still running. */
static int earlier_running(const pg_conn *c)
{
    for (size_t i = 0; i < c->pool->n; i++) {
        const pg_conn *x = &c->pool->conns[i];
        if (x != c && x->round != NULL && x->round_id < c->round_id)
            return 1;
    }
    return 0;
}

/* Rounds whose reads waited for earlier rounds, those now free to go (in dispatch order). */
static void unpark(pg_pool *p)
{
    for (;;) {
        pg_conn *next = NULL;
        for (size_t i = 0; i < p->n; i++) {
            pg_conn *x = &p->conns[i];
            if (x->round != NULL && x->phase == P_PARKED &&
                (next == NULL || x->round_id < next->round_id))
                next = x;
        }
        if (next == NULL || earlier_running(next))
            return;
        go_reads(next);
    }
}

/* The round dispatched before the next one has executed its writes (or has ended). */
static int may_dispatch(const pg_pool *p)
{
    const pg_conn *l = p->last;
    return l == NULL || l->round == NULL || l->round_id != p->dispatched || l->wrote;
}

/* After a round, nothing queued: a large round's slot arrays are not kept for the next. */
static void shrink_slots(pg_conn *c)
{
    if (c->n != 0 || c->syncing)
        return;
    clear_results(c->done, c->n_done);
    c->n_done = 0;
    if (c->cap > SLOTS_KEPT) {
        free(c->slots);
        c->slots = NULL;
        c->cap = 0;
    }
    if (c->cap_done > SLOTS_KEPT) {
        free(c->done);
        c->done = NULL;
        c->cap_done = 0;
    }
}

/* The round's end: a failed transaction fails every write of it (none was committed: a put's
 * sender is never told "accepted"); the callbacks run on the loop. */
static void finish_round(pg_conn *c)
{
    op *round = c->round;
    uint64_t n = 0;
    for (op *o = round; o != NULL; o = o->next, n++)
        if (!is_read(o) && c->rc != 0)
            o->err = KURER_ESTORAGE;
    c->round = c->cur = NULL;
    c->phase = P_NONE;
    c->resolving = 0;
    c->wrote = 1;
    uv_timer_stop(&c->limit);
    shrink_slots(c);
    kurer__storeq_finish(&c->s->q, round, n, (kurer_time_mono_ns() - c->t0_ns) / 1000);
    unpark(c->pool);
    kurer__pg_dispatch(c->s);
}

/* The reads, after the writes' outcome (a failed write does not fail them). */
static void go_reads(pg_conn *c)
{
    int reads = 0;
    wrote(c);
    for (const op *o = c->round; o != NULL; o = o->next)
        reads |= is_read(o);
    if (reads && earlier_running(c)) {
        c->phase = P_PARKED; /* unpark */
        return;
    }
    if (kurer__pg_send_reads(c, c->round))
        end_batch(c, P_READS);
    else if (c->broken)
        lost(c);
    else
        finish_round(c);
}

/* Its writes are executed, or failed: the next round may be dispatched. */
static void wrote(pg_conn *c)
{
    if (c->wrote)
        return;
    c->wrote = 1;
    if (c->pool->last == c)
        kurer__pg_dispatch(c->s);
}

static void rollback(pg_conn *c)
{
    wrote(c);
    (void)kurer__pg_send_sql(c, "ROLLBACK");
    end_batch(c, P_ROLLBACK);
}

/* An attempt of the round's writes, on a live connection. */
static void begin_attempt(pg_conn *c)
{
    int writes = 0;
    c->commit_sent = c->resolving = 0;
    c->sqlstate[0] = '\0';
    c->rc = 0;
    for (op *o = c->round; o != NULL; o = o->next)
        writes |= !is_read(o);
    if (!writes) {
        go_reads(c);
        return;
    }
    (void)kurer__pg_send_sql(c, "BEGIN");
    kurer__pg_send_counts(c, c->round);
    end_batch(c, P_FIRST);
}

/* The round's number goes into its own transaction, in the COMMIT's batch. */
static void send_commit(pg_conn *c)
{
    char sql[200];
    snprintf(sql, sizeof(sql),
             "INSERT INTO kurer_rounds(node, round) VALUES (%lld, %llu) ON CONFLICT (node) DO "
             "UPDATE SET round = excluded.round, updated_at = now()",
             (long long)c->node, (unsigned long long)++c->round_no);
    (void)kurer__pg_send_sql(c, sql);
    (void)kurer__pg_send_sql(c, "COMMIT");
    c->commit_sent = 1; /* from here on a lost connection leaves the outcome unknown */
    c->warned = 0;
    end_batch(c, P_COMMIT);
    wrote(c); /* its locks are taken: the next round's statements wait for its commit */
}

/* The operations that read before they write, one after the other, a step at a time. */
static void run_steps(pg_conn *c)
{
    while (c->cur != NULL) {
        int st = kurer__pg_step(c, c->cur, c->stage);
        if (st == KURER_ESTORAGE) {
            rollback(c);
            return;
        }
        if (st > 0) {
            c->stage = st;
            end_batch(c, P_SEQ);
            return;
        }
        c->cur = next_step(c->cur->next);
        c->stage = 0;
    }
    send_commit(c);
}

/* After a connection lost with the round's COMMIT in flight: its number in kurer_rounds says
 * whether it committed. FOR UPDATE waits for the round's transaction, should it still run on a
 * live server; this transaction writes the row again, and its own commit, later in the WAL,
 * returns only once a synchronous standby has flushed it, and so everything before it. */
static void send_resolve(pg_conn *c)
{
    char sql[160];
    c->resolving = 1;
    c->warned = 0;
    (void)kurer__pg_send_sql(c, "BEGIN");
    (void)kurer__pg_send_sql(c, "SET LOCAL lock_timeout = '10s'");
    snprintf(sql, sizeof(sql), "SELECT round FROM kurer_rounds WHERE node = %lld FOR UPDATE",
             (long long)c->node);
    (void)kurer__pg_send_sql(c, sql);
    snprintf(sql, sizeof(sql), "UPDATE kurer_rounds SET updated_at = now() WHERE node = %lld",
             (long long)c->node);
    (void)kurer__pg_send_sql(c, sql);
    (void)kurer__pg_send_sql(c, "COMMIT");
    end_batch(c, P_RESOLVE);
}

static void resolved(pg_conn *c)
{
    const PGresult *r = kurer__pg_res(c, 2, PGRES_TUPLES_OK);
    int64_t v = -1;
    for (size_t k = 0; k < 5 && r != NULL; k++)
        if (k != 2 && kurer__pg_res(c, k, PGRES_COMMAND_OK) == NULL)
            r = NULL;
    if (r == NULL) { /* not known now: the round fails (its sender sends again) */
        c->rc = KURER_ESTORAGE;
        rollback(c);
        return;
    }
    if (c->warned) { /* the resolve's own commit may not be replicated either */
        if (kurer_time_mono_ms() < c->deadline_ms) {
            send_resolve(c);
            return;
        }
        c->resolving = 0;
        c->rc = KURER_ESTORAGE; /* committed perhaps, never reported accepted */
        go_reads(c);
        return;
    }
    int committed =
        PQntuples(r) == 1 && kurer__pg_i64(r, 0, 0, &v) == 0 && (uint64_t)v == c->round_no;
    kurer_log(KURER_LOG_WARN, "store", committed ? "round_committed" : "round_not_committed", NULL,
              0);
    c->resolving = 0;
    if (committed) {
        c->rc = 0;
        go_reads(c);
    } else if (kurer_time_mono_ms() < c->deadline_ms) {
        begin_attempt(c); /* not committed: again, on the new connection */
    } else {
        c->rc = KURER_ESTORAGE;
        go_reads(c);
    }
}

/* The rollback is done: again (a deadlock, a serialization failure), or the round failed. */
static void rolled_back(pg_conn *c)
{
    int retry = strcmp(c->sqlstate, "40P01") == 0 || strcmp(c->sqlstate, "40001") == 0;
    if (!c->resolving && c->rc == 0 && retry && ++c->attempt < ROUND_TRIES) {
        kurer_log(KURER_LOG_INFO, "store", "round_retried",
                  (kurer_log_field[]){KURER_LOG_STR("sqlstate", c->sqlstate)}, 1);
        begin_attempt(c);
        return;
    }
    c->resolving = 0;
    c->rc = KURER_ESTORAGE;
    go_reads(c);
}

static void committed(pg_conn *c)
{
    const PGresult *r = kurer__pg_res(c, 0, PGRES_COMMAND_OK) != NULL
                            ? kurer__pg_res(c, 1, PGRES_COMMAND_OK)
                            : NULL;
    if (r == NULL || strcmp(PQcmdStatus((PGresult *)r), "COMMIT") != 0) {
        rollback(c);
        return;
    }
    if (c->warned) { /* committed here, perhaps not on a standby: decided by P_RESOLVE */
        kurer_log(KURER_LOG_WARN, "store", "commit_not_replicated", NULL, 0);
        send_resolve(c);
        return;
    }
    go_reads(c);
}

/* P_FIRST done: the limits, then the writes. */
static void counted(pg_conn *c)
{
    if (kurer__pg_take_batch(c) != 0) {
        rollback(c);
        return;
    }
    kurer__pg_decide(c, c->round);
    if (kurer__pg_send_writes(c, c->round) != 0) {
        c->rc = KURER_ENOMEM; /* not run again */
        rollback(c);
        return;
    }
    end_batch(c, P_WRITES);
}

static void on_batch(pg_conn *c)
{
    switch (c->phase) {
    case P_FIRST:
        counted(c);
        break;
    case P_WRITES:
        if (kurer__pg_take_batch(c) != 0) {
            rollback(c);
            break;
        }
        c->cur = next_step(c->round);
        c->stage = 0;
        run_steps(c);
        break;
    case P_SEQ:
        run_steps(c);
        break;
    case P_COMMIT:
        committed(c);
        break;
    case P_ROLLBACK:
        rolled_back(c);
        break;
    case P_RESOLVE:
        resolved(c);
        break;
    case P_READS:
        if (kurer__pg_take_batch(c) != 0)
            kurer__pg_fail_reads(c->round);
        finish_round(c);
        break;
    default:
        break;
    }
}

/* A round that cannot wait longer for its connection: its writes fail (a COMMIT in flight
 * whose outcome is unknown included: never reported accepted), its reads too. */
static void give_up(pg_conn *c)
{
    kurer_log(KURER_LOG_WARN, "store", "round_failed_no_connection", NULL, 0);
    if (c->conn != NULL) { /* close's deadline: what is in flight on it is dropped */
        drop_conn(c);
        c->state = C_DOWN;
    }
    c->rc = KURER_ESTORAGE;
    kurer__pg_fail_reads(c->round);
    finish_round(c);
}

static void schedule_retry(pg_conn *c);

/* The round's bound (ROUND_MS from its dispatch): it fails, in whatever state it is; a
 * connection it was running on is given up (what it sent may still be executing). */
static void on_limit(uv_timer_t *t)
{
    pg_conn *c = t->data;
    if (c->round == NULL)
        return;
    kurer_log(KURER_LOG_WARN, "store", "round_timed_out", NULL, 0);
    if (c->conn != NULL) {
        drop_conn(c);
        schedule_retry(c);
    }
    give_up(c);
}

static void start_round(pg_conn *c, op *round)
{
    c->round = round;
    c->round_id = ++c->pool->dispatched;
    c->pool->last = c;
    c->wrote = 0;
    c->t0_ns = kurer_time_mono_ns();
    c->deadline_ms = kurer_time_mono_ms() + RESUBMIT_MS;
    uv_timer_start(&c->limit, on_limit, ROUND_MS, 0);
    c->attempt = 0;
    c->rc = 0;
    c->commit_sent = c->resolving = 0;
    if (c->state == C_UP)
        begin_attempt(c); /* else when it is back (on_made), or give_up */
}

/* ---- the connections ---------------------------------------------------------------------- */

static void on_retry(uv_timer_t *t);

static void schedule_retry(pg_conn *c)
{
    c->state = C_DOWN;
    c->backoff_ms = c->backoff_ms == 0 ? BACKOFF_MIN : c->backoff_ms * 2;
    if (c->backoff_ms > BACKOFF_MAX)
        c->backoff_ms = BACKOFF_MAX;
    if (!c->pool->closing)
        uv_timer_start(&c->retry, on_retry, c->backoff_ms, 0);
}

static void drop_conn(pg_conn *c)
{
    uv_timer_stop(&c->watch);
    kurer__pg_unwatch(&c->w);
    PQfinish(c->conn);
    c->conn = NULL;
    clear_results(c->slots, c->n);
    clear_results(c->done, c->n_done);
    c->n = c->n_done = 0;
    c->syncing = c->broken = 0;
}

/* The connection is gone: its round waits for the next one (or, with its writes decided, ends
 * with its reads failed). */
static void lost(pg_conn *c)
{
    if (c->state == C_UP)
        kurer_log(KURER_LOG_WARN, "store", "connection_lost", NULL, 0);
    drop_conn(c);
    schedule_retry(c);
    if (c->round == NULL)
        return;
    if (c->phase == P_READS || c->phase == P_PARKED) { /* its writes are decided */
        kurer__pg_fail_reads(c->round);
        finish_round(c);
        return;
    }
    c->deadline_ms = kurer_time_mono_ms() + RESUBMIT_MS; /* for the next connection */
    if (c->commit_sent)
        c->resolving = 1; /* decided on the next connection */
    else if (c->phase != P_NONE)
        kurer_log(KURER_LOG_WARN, "store", "round_resubmitted", NULL, 0);
    c->phase = P_NONE;
}

/* The watchdog: a batch's results did not come in BATCH_MS. The connection is treated as lost
 * (a COMMIT sent goes to P_RESOLVE on the next one). */
static void on_watch(uv_timer_t *t)
{
    pg_conn *c = t->data;
    if (c->conn == NULL || !c->syncing)
        return;
    kurer_log(KURER_LOG_WARN, "store", "batch_timed_out", NULL, 0);
    lost(c);
}

static void on_retry(uv_timer_t *t)
{
    pg_conn *c = t->data;
    if (c->round != NULL && kurer_time_mono_ms() >= c->deadline_ms)
        give_up(c);
    if (c->state == C_DOWN && !c->pool->closing) {
        c->state = C_CONNECTING;
        kurer__pg_connector_want(&c->k);
    }
}

/* Notices are not logged ("there is no transaction in progress" and the like), but a WARNING
 * during a COMMIT's batch marks the commit as not known to be replicated (the top of the file). */
static void on_notice(void *arg, const PGresult *res)
{
    pg_conn *c = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (sev != NULL && strcmp(sev, "WARNING") == 0 &&
        (c->phase == P_COMMIT || c->phase == P_RESOLVE))
        c->warned = 1;
}

/* A connection with its statements prepared, made non-blocking and pipelined, watched. */
static int conn_up(pg_conn *c, PGconn *conn)
{
    c->conn = conn;
    PQsetNoticeReceiver(conn, on_notice, c);
    if (PQsetnonblocking(conn, 1) != 0 || !PQenterPipelineMode(conn) ||
        kurer__pg_poll(&c->w, c->s->loop, conn, UV_READABLE, 1, on_io, c) != 0) {
        kurer__pg_log(conn, "setup_failed", NULL);
        drop_conn(c);
        return KURER_ESTORAGE;
    }
    c->state = C_UP;
    c->backoff_ms = 0;
    return 0;
}

static void on_made(void *arg, PGconn *conn)
{
    pg_conn *c = arg;
    if (c->pool->closing || c->state != C_CONNECTING) {
        PQfinish(conn);
        return;
    }
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        kurer__pg_log(conn, "connect_failed", NULL);
        PQfinish(conn);
        schedule_retry(c);
        return;
    }
    if (conn_up(c, conn) != 0) {
        schedule_retry(c);
        return;
    }
    kurer_log(KURER_LOG_INFO, "store", "connected", NULL, 0);
    if (c->round != NULL && c->resolving)
        send_resolve(c);
    else if (c->round != NULL)
        begin_attempt(c);
    else
        kurer__pg_dispatch(c->s);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static void on_delay(uv_timer_t *t)
{
    pg_pool *p = t->data;
    kurer__pg_dispatch(p->s);
}

/* An idle connection that is up; if none is up at all, an idle one that is down (its round
 * then waits for the reconnect, RESUBMIT_MS at most). */
static pg_conn *idle_conn(pg_pool *p)
{
    int any_up = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->conns[i].state == C_UP && p->conns[i].round == NULL)
            return &p->conns[i];
        any_up |= p->conns[i].state == C_UP;
    }
    for (size_t i = 0; i < p->n && !any_up; i++)
        if (p->conns[i].round == NULL)
            return &p->conns[i];
    return NULL; /* a live one is busy: the work waits for it */
}

void kurer__pg_dispatch(pg_store *s)
{
    pg_pool *p = s->pool;
    pg_conn *c;
    while (p != NULL && !p->closing && may_dispatch(p) && (c = idle_conn(p)) != NULL) {
        uint64_t wait_ns = 0;
        op *round = kurer__storeq_take(&s->q, &wait_ns);
        if (round == NULL) {
            if (wait_ns > 0)
                uv_timer_start(&p->delay, on_delay, wait_ns / 1000000 + 1, 0);
            return;
        }
        start_round(c, round);
    }
}

static void on_submit(kurer__storeq *q)
{
    kurer__pg_dispatch((pg_store *)q->owner);
}

/* ---- open and close ----------------------------------------------------------------------- */

/* "Accepted" means flushed on a synchronous standby only with synchronous_commit on (or
 * remote_apply); a role or database set to local, remote_write or off voids that promise:
 * said, on every connection, in the log (docs/scale-out.md, "Failover"). */
static void check_sync_commit(PGconn *c)
{
    PGresult *r = PQexec(c, "SHOW synchronous_commit");
    const char *v =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : NULL;
    if (v != NULL && strcmp(v, "on") != 0 && strcmp(v, "remote_apply") != 0)
        kurer_log(KURER_LOG_WARN, "store", "synchronous_commit_weak",
                  (kurer_log_field[]){KURER_LOG_STR("synchronous_commit", v)}, 1);
    PQclear(r);
}

int kurer__pg_prepare_all(PGconn *c)
{
    check_sync_commit(c);
    for (int i = 0; i < PG_N_STMTS; i++) {
        PGresult *r = PQprepare(c, kurer__pg_stmt_name((pg_stmt)i), kurer__pg_sql[i], 0, NULL);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            kurer__pg_log(c, "prepare_failed", r);
        PQclear(r);
        if (!ok)
            return KURER_ESTORAGE;
    }
    return 0;
}

/* Each connection's row in kurer_rounds (a random node id per connection and open); rows of
 * connections gone for a week are removed. */
static int register_node(PGconn *conn, pg_conn *c)
{
    char sql[240];
    uint64_t id;
    kurer_random(&id, sizeof(id));
    c->node = (int64_t)(id >> 1); /* positive */
    snprintf(sql, sizeof(sql),
             "INSERT INTO kurer_rounds(node, round) VALUES (%lld, 0) ON CONFLICT DO NOTHING; "
             "DELETE FROM kurer_rounds WHERE updated_at < now() - interval '7 days'",
             (long long)c->node);
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        kurer__pg_log(conn, "statement_failed", r);
    PQclear(r);
    return ok ? 0 : KURER_ESTORAGE;
}

static void handle_closed(uv_handle_t *h)
{
    pg_conn *c = h->data;
    pg_pool *p = c->pool;
    if (--p->open_handles == 0)
        free(p);
}

static void delay_closed(uv_handle_t *h)
{
    pg_pool *p = h->data;
    if (--p->open_handles == 0)
        free(p);
}

/* The connections' handles close on the loop; the pool goes with the last. */
static void close_all(pg_pool *p)
{
    p->closing = 1;
    for (size_t i = 0; i < p->n; i++) {
        pg_conn *c = &p->conns[i];
        drop_conn(c);
        free(c->slots);
        free(c->done);
        c->slots = c->done = NULL;
        uv_timer_stop(&c->retry);
        uv_close((uv_handle_t *)&c->retry, handle_closed);
        uv_timer_stop(&c->watch);
        uv_close((uv_handle_t *)&c->watch, handle_closed);
        uv_timer_stop(&c->limit);
        uv_close((uv_handle_t *)&c->limit, handle_closed);
        kurer__pg_connector_close(&c->k, handle_closed);
    }
    uv_timer_stop(&p->delay);
    uv_close((uv_handle_t *)&p->delay, delay_closed);
}

/* One connection of the pool: its handles, and the connection (blocking, at start-up). */
static int open_conn(pg_store *s, pg_pool *p, pg_conn *c)
{
    c->s = s;
    c->pool = p;
    kurer__pg_watch_init(&c->w);
    uv_timer_init(s->loop, &c->retry);
    c->retry.data = c;
    uv_timer_init(s->loop, &c->watch);
    c->watch.data = c;
    uv_timer_init(s->loop, &c->limit);
    c->limit.data = c;
    p->open_handles += 4;
    int rc = kurer__pg_connector_init(&c->k, s->loop, s->conninfo, "kurer-relay",
                                      kurer__pg_prepare_all, on_made, c);
    PGconn *conn = rc == 0 ? kurer__pg_connect(s->conninfo, "kurer-relay", "store") : NULL;
    if (rc == 0 && conn == NULL)
        rc = KURER_ESTORAGE;
    if (rc == 0 && (rc = kurer__pg_prepare_all(conn)) == 0)
        rc = register_node(conn, c);
    if (rc == 0)
        return conn_up(c, conn);
    PQfinish(conn);
    return rc;
}

int kurer__pg_pool_open(pg_store *s, size_t n)
{
    if (n == 0 || n > KURER__PG_POOL_MAX)
        return KURER_EINVAL;
    pg_pool *p = calloc(1, sizeof(*p) + n * sizeof(pg_conn));
    if (p == NULL)
        return KURER_ENOMEM;
    p->s = s;
    uv_timer_init(s->loop, &p->delay);
    p->delay.data = p;
    p->open_handles = 1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++, p->n++)
        rc = open_conn(s, p, &p->conns[i]);
    if (rc != 0) {
        close_all(p);
        return rc;
    }
    s->pool = p;
    s->q.on_submit = on_submit;
    return 0;
}

/* Drives the connections with poll(2) until nothing is in flight or submitted (the loop does
 * not run during close). A connection that is down fails its round (never reported accepted). */
static void drain(pg_store *s)
{
    pg_pool *p = s->pool;
    uint64_t end = kurer_time_mono_ms() + DRAIN_MS;
    struct pollfd fds[KURER__PG_POOL_MAX];
    for (;;) {
        kurer__pg_dispatch(s);
        size_t n = 0, busy = 0;
        for (size_t i = 0; i < p->n; i++) {
            pg_conn *c = &p->conns[i];
            if (c->round != NULL && (c->conn == NULL || kurer_time_mono_ms() >= end))
                give_up(c);
            if (c->round == NULL || c->conn == NULL)
                continue;
            busy++;
            fds[n].fd = PQsocket(c->conn);
            fds[n].events = (short)(POLLIN | (PQflush(c->conn) == 1 ? POLLOUT : 0));
            fds[n].revents = 0;
            n++;
        }
        pthread_mutex_lock(&s->q.mu);
        int queued = s->q.in_head != NULL;
        pthread_mutex_unlock(&s->q.mu);
        if (busy == 0 && !queued)
            return;
        if (busy == 0) { /* submitted, no connection to run it: it fails */
            for (size_t i = 0; i < p->n; i++)
                p->conns[i].state = C_DOWN;
            continue;
        }
        (void)poll(fds, n, 100);
        for (size_t i = 0, k = 0; i < p->n; i++) {
            pg_conn *c = &p->conns[i];
            if (c->round == NULL || c->conn == NULL || k >= n || fds[k].fd != PQsocket(c->conn))
                continue;
            short ev = fds[k++].revents;
            if (ev != 0 && c->w.poll != NULL)
                on_io(c->w.poll, 0,
                      ((ev & (POLLIN | POLLERR | POLLHUP)) ? UV_READABLE : 0) |
                          ((ev & POLLOUT) ? UV_WRITABLE : 0));
        }
    }
}

void kurer__pg_pool_close(pg_store *s)
{
    pg_pool *p = s->pool;
    if (p == NULL)
        return;
    drain(s);
    close_all(p);
    s->pool = NULL;
}
