/* The postgres backend's pipelined statements (store_pg.h): the puts, acks, directory entries
 * and revocation lists of a round, and after its commit its reads, go to the server in libpq's
 * pipeline mode, without waiting for
 * each statement's result, in chunks of CHUNK statements (a sync point each, so that neither
 * side's socket buffer fills with results nobody reads: the connection is in blocking mode).
 *
 * Two phases, because a put's limits decide whether it is written at all and nothing in a
 * pipeline can wait for a result: first the mailbox counts of every put that has limits, then
 * the writes. A put's count is the mailbox's at the start of the round plus the items of the
 * puts before it in the round that were accepted (acks of the same round are not subtracted:
 * a limit may bite a round early, never late). During the first phase a put's seqs and prev
 * arrays hold its counts; the second phase writes the seqs there. */
#include "store_pg.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/error.h"

typedef kurer__op op;

#define CHUNK 256 /* statements per sync point */

enum { W_COUNT = 1, W_COUNT_SENDER, W_PUT, W_DONE, W_HIGH, W_ROWS, W_HAS, W_OTK };

typedef struct slot {
    op *o;
    size_t i;
    int what;
} slot;

typedef struct pgpipe {
    pg_store *s;
    slot slots[CHUNK];
    size_t n;
    int failed; /* the transaction is lost: nothing more is sent */
    int broken; /* the pipeline's state is unknown: the connection is dropped */
} pgpipe;

/* A read's result into its op (an op's own error, not the pipeline's). */
static void take_read(const slot *sl, PGresult *r)
{
    op *o = sl->o;
    int rc = 0;
    if (sl->what == W_HIGH)
        rc = kurer__pg_take_high(o, r);
    else if (sl->what == W_ROWS)
        rc = kurer__pg_take_rows(o, r);
    else if (sl->what == W_HAS && PQntuples(r) == 0)
        rc = KURER_ENOTFOUND; /* never uploaded */
    if (rc != 0 && o->err == 0)
        o->err = rc;
}

/* One statement's result into its op. */
static void take_result(pgpipe *pp, const slot *sl, PGresult *r)
{
    int64_t v;
    ExecStatusType want = sl->what == W_DONE ? PGRES_COMMAND_OK : PGRES_TUPLES_OK;
    if (PQresultStatus(r) != want) {
        if (!pp->failed && PQresultStatus(r) != PGRES_PIPELINE_ABORTED)
            kurer__pg_note_error(pp->s, r);
        pp->failed = 1;
        return;
    }
    if (sl->what == W_DONE)
        return;
    if (sl->what == W_HIGH || sl->what == W_ROWS || sl->what == W_HAS) {
        take_read(sl, r);
        return;
    }
    if (PQntuples(r) != 1 || kurer__pg_i64(r, 0, 0, &v) != 0) {
        pp->failed = 1;
        return;
    }
    if (sl->what == W_COUNT)
        sl->o->seqs[sl->i] = (uint64_t)v;
    else if (sl->what == W_COUNT_SENDER)
        sl->o->prev[sl->i] = (uint64_t)v;
    else if (sl->what == W_OTK)
        sl->o->total = (uint64_t)v;
    else if (sl->what == W_PUT) {
        if (v < 1) {
            pp->failed = 1;
            return;
        }
        sl->o->seqs[sl->i] = (uint64_t)v;
        sl->o->prev[sl->i] = (uint64_t)v - 1; /* the counter moves by one, under its row lock */
    }
}

/* Sends the sync point and reads the chunk's results, then the sync's. */
static void flush(pgpipe *pp)
{
    PGconn *c = pp->s->conn;
    if (pp->n == 0 || pp->broken)
        return;
    if (!PQpipelineSync(c)) {
        pp->failed = pp->broken = 1;
        return;
    }
    for (size_t k = 0; k < pp->n && !pp->broken; k++) {
        PGresult *r = PQgetResult(c);
        if (r == NULL) {
            pp->failed = pp->broken = 1; /* a lost connection: no more results */
            break;
        }
        take_result(pp, &pp->slots[k], r);
        PQclear(r);
        while ((r = PQgetResult(c)) != NULL) /* the NULL that ends each statement's results */
            PQclear(r);
    }
    pp->n = 0;
    if (pp->broken)
        return;
    PGresult *r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
        pp->failed = pp->broken = 1;
    PQclear(r);
}

static void send_stmt(pgpipe *pp, pg_stmt st, const pg_params *p, op *o, size_t i, int what)
{
    if (pp->failed)
        return;
    if (!PQsendQueryPrepared(pp->s->conn, kurer__pg_stmt_name(st), p->n, p->v, p->len, p->fmt, 1)) {
        kurer__pg_note_error(pp->s, NULL);
        pp->failed = pp->broken = 1;
        return;
    }
    pp->slots[pp->n++] = (slot){o, i, what};
    if (pp->n == CHUNK)
        flush(pp);
}

static void p_dev(pg_params *p, const kurer_device_address *d)
{
    p->n = 0;
    kurer__pg_p_str(p, d->user);
    kurer__pg_p_i64(p, d->device_id);
}

static int same_box(const kurer_store_item *a, const kurer_store_item *b, int by_sender)
{
    return a->to.device_id == b->to.device_id && strcmp(a->to.user, b->to.user) == 0 &&
           (!by_sender || strcmp(a->from.user, b->from.user) == 0);
}

/* Items for the mailbox of o's item i (by sender: from its sender) that come before it in the
 * round: in accepted puts before o, and in o itself. */
static uint64_t before(const op *round, const op *o, size_t i, int by_sender)
{
    uint64_t n = 0;
    const kurer_store_item *it = &o->items[i];
    for (const op *x = round; x != o; x = x->next)
        if (x->kind == KURER__OP_PUT && x->err == 0)
            for (size_t j = 0; j < x->n; j++)
                n += (uint64_t)same_box(&x->items[j], it, by_sender);
    for (size_t j = 0; j < i; j++)
        n += (uint64_t)same_box(&o->items[j], it, by_sender);
    return n;
}

/* A put's limits from its counts (phase one): 0 or KURER_ELIMIT (counted). */
static int decide(pg_store *s, const op *round, const op *o)
{
    for (size_t i = 0; i < o->n; i++) {
        if (o->mailbox_max > 0 && o->seqs[i] + before(round, o, i, 0) + 1 > o->mailbox_max) {
            s->q.refused_full++;
            return KURER_ELIMIT;
        }
        /* Each sender (user) has a share of the mailbox: one cannot fill it for everyone. */
        if (o->sender_max > 0 && o->prev[i] + before(round, o, i, 1) + 1 > o->sender_max) {
            s->q.refused_share++;
            return KURER_ELIMIT;
        }
    }
    return 0;
}

static void send_counts(pgpipe *pp, op *round)
{
    pg_params p;
    for (op *o = round; o != NULL; o = o->next) {
        if (o->kind != KURER__OP_PUT)
            continue;
        o->err = 0;
        for (size_t i = 0; i < o->n; i++) {
            o->seqs[i] = o->prev[i] = 0;
            if (o->mailbox_max > 0) {
                p_dev(&p, &o->items[i].to);
                send_stmt(pp, PG_COUNT, &p, o, i, W_COUNT);
            }
            if (o->sender_max > 0) {
                p_dev(&p, &o->items[i].to);
                kurer__pg_p_str(&p, o->items[i].from.user);
                send_stmt(pp, PG_COUNT_SENDER, &p, o, i, W_COUNT_SENDER);
            }
        }
    }
}

/* The writes, in submission order. */
static void send_writes(pgpipe *pp, op *round)
{
    pg_params p;
    for (op *o = round; o != NULL && !pp->failed; o = o->next) {
        switch (o->kind) {
        case KURER__OP_PUT:
            if (o->fanout && o->err == 0 && o->n > 0) {
                p.n = 0;
                kurer__pg_p_i64(&p, (int64_t)o->serial); /* the payload's id */
                kurer__pg_p_str(&p, o->items[0].from.user);
                kurer__pg_p_i64(&p, (int64_t)o->n);
                kurer__pg_p_bytes(&p, o->blob, o->blob_len);
                send_stmt(pp, PG_PAYLOAD, &p, o, 0, W_DONE);
            }
            for (size_t i = 0; i < o->n && o->err == 0; i++) {
                p_dev(&p, &o->items[i].to);
                kurer__pg_p_str(&p, o->items[i].from.user);
                if (!o->fanout)
                    kurer__pg_p_bytes(&p, o->items[i].env, o->items[i].len);
                else
                    kurer__pg_p_i64(&p, (int64_t)o->serial);
                send_stmt(pp, o->fanout ? PG_PUT_REF : PG_PUT, &p, o, i, W_PUT);
            }
            break;
        case KURER__OP_ACK:
            for (size_t i = 0; i < o->n; i++) {
                if (o->seqs[i] > INT64_MAX)
                    continue; /* no such seq */
                p_dev(&p, &o->dev);
                kurer__pg_p_i64(&p, (int64_t)o->seqs[i]);
                send_stmt(pp, PG_DELETE, &p, o, i, W_DONE);
            }
            p.n = 0; /* the payloads these acks took the last reference of */
            send_stmt(pp, PG_DROP_PAYLOADS, &p, o, 0, W_DONE);
            break;
        case KURER__OP_DEVICE:
            p_dev(&p, &o->dev);
            kurer__pg_p_i64(&p, (int64_t)o->serial);
            kurer__pg_p_bytes(&p, o->blob, o->blob_len);
            send_stmt(pp, PG_DEVICE, &p, o, 0, W_DONE);
            break;
        case KURER__OP_CRL:
            if (o->after > INT64_MAX) {
                o->err = KURER_EINVAL;
                break;
            }
            p.n = 0;
            kurer__pg_p_bytes(&p, o->key_id, 32);
            kurer__pg_p_i64(&p, (int64_t)o->after);
            kurer__pg_p_bytes(&p, o->blob, o->blob_len);
            send_stmt(pp, PG_CRL, &p, o, 0, W_DONE);
            break;
        default:
            break; /* prekeys and takes: after the pipeline; reads: after the commit */
        }
    }
}

/* Leaves pipeline mode; a pipeline in an unknown state drops the connection (the next round
 * connects again). 0 or KURER_ESTORAGE. */
static int finish(pgpipe *pp)
{
    pg_store *s = pp->s;
    if (pp->broken || !PQexitPipelineMode(s->conn)) {
        PQfinish(s->conn);
        s->conn = NULL;
        s->prepared = 0;
        return KURER_ESTORAGE;
    }
    return pp->failed ? KURER_ESTORAGE : 0;
}

int kurer__pg_exec_pipelined(pg_store *s, op *round)
{
    pgpipe pp; /* on the writer thread's stack */
    memset(&pp, 0, sizeof(pp));
    pp.s = s;
    if (!PQenterPipelineMode(s->conn)) {
        kurer__pg_note_error(s, NULL);
        return KURER_ESTORAGE;
    }
    send_counts(&pp, round);
    flush(&pp);
    for (op *o = round; o != NULL && !pp.failed; o = o->next)
        if (o->kind == KURER__OP_PUT)
            o->err = decide(s, round, o);
    send_writes(&pp, round);
    flush(&pp);
    return finish(&pp);
}

/* Each fetch: the device's high mark and queue length, then its rows (one statement after the
 * other, each its own snapshot: every seq up to the high mark was committed when it was read,
 * since commit order is seq order, so the rows read next hold all of them still stored). Each
 * count: whether the device ever uploaded, then its pool. */
static void send_reads(pgpipe *pp, op *round)
{
    pg_params p;
    for (op *o = round; o != NULL; o = o->next) {
        if (o->kind == KURER__OP_FETCH) {
            o->err = 0;
            p_dev(&p, &o->dev);
            send_stmt(pp, PG_HIGH, &p, o, 0, W_HIGH);
            if (o->limit == 0)
                continue; /* the count only */
            kurer__pg_p_i64(&p, o->after > INT64_MAX ? INT64_MAX : (int64_t)o->after);
            kurer__pg_p_i64(&p, o->limit > INT64_MAX ? INT64_MAX : (int64_t)o->limit);
            send_stmt(pp, PG_FETCH, &p, o, 0, W_ROWS);
        } else if (o->kind == KURER__OP_COUNT) {
            o->err = 0;
            p_dev(&p, &o->dev);
            send_stmt(pp, PG_HAS_SPK, &p, o, 0, W_HAS);
            send_stmt(pp, PG_COUNT_OTK, &p, o, 0, W_OTK);
        }
    }
}

void kurer__pg_exec_reads(pg_store *s, op *round)
{
    pgpipe pp;
    int any = 0, rc = KURER_ESTORAGE;
    for (op *o = round; o != NULL; o = o->next)
        any |= o->kind == KURER__OP_FETCH || o->kind == KURER__OP_COUNT;
    if (!any)
        return;
    memset(&pp, 0, sizeof(pp));
    pp.s = s;
    if (PQenterPipelineMode(s->conn)) {
        send_reads(&pp, round);
        flush(&pp);
        rc = finish(&pp);
    } else {
        kurer__pg_note_error(s, NULL);
    }
    for (op *o = round; o != NULL && rc != 0; o = o->next) {
        if (o->kind != KURER__OP_FETCH && o->kind != KURER__OP_COUNT)
            continue;
        o->err = KURER_ESTORAGE;
        for (size_t i = 0; i < o->n_rows; i++)
            free((void *)o->rows[i].env);
        o->n_rows = 0;
    }
}
