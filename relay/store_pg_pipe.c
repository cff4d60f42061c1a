/* The postgres backend's pipelined statements (store_pg.h): the puts, acks, directory entries
 * and revocation lists of a round, and after its commit its reads, go to the server in libpq's
 * pipeline mode, a batch each (one sync point), without waiting for each statement's result:
 * their results are read into their ops when the batch is complete (kurer__pg_take_batch).
 *
 * Two phases, because a put's limits decide whether it is written at all and nothing in a
 * pipeline can wait for a result: first the mailbox counts of every put that has limits, then
 * the writes. A put's count is the mailbox's at the start of the round plus the items of the
 * puts before it in the round that were accepted (acks of the same round are not subtracted:
 * a limit may bite a round early; and rounds running at once on the pool's connections do not
 * see each other's uncommitted puts, so together they may pass it by what they hold, as two
 * nodes may). During the first phase a put's seqs and prev
 * arrays hold its counts; the second phase writes the seqs there.
 *
 * The puts of a round take their devices' counter rows in one order (user, device), whatever
 * the order of submission (one device's puts keep theirs): two rounds on two connections of the
 * pool (or of two nodes) that store for the same devices wait for each other, never deadlock. */
#include "store_pg.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/error.h"

typedef kurer__op op;

enum { W_COUNT = 1, W_COUNT_SENDER, W_PUT, W_DONE, W_HIGH, W_ROWS, W_HAS, W_OTK };

/* A read's result into its op (an op's own error, not the pipeline's). */
static void take_read(const pg_slot *sl, const PGresult *r)
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

/* One statement's result into its op: 0, or KURER_ESTORAGE. */
static int take_result(pg_conn *c, size_t k)
{
    const pg_slot *sl = &c->done[k];
    int64_t v;
    int cmd = sl->o == NULL || sl->what == W_DONE; /* BEGIN, or a write without rows */
    const PGresult *r = kurer__pg_res(c, k, cmd ? PGRES_COMMAND_OK : PGRES_TUPLES_OK);
    if (r == NULL)
        return KURER_ESTORAGE;
    if (cmd)
        return 0;
    if (sl->what == W_HIGH || sl->what == W_ROWS || sl->what == W_HAS) {
        take_read(sl, r);
        return 0;
    }
    if (PQntuples(r) != 1 || kurer__pg_i64(r, 0, 0, &v) != 0)
        return KURER_ESTORAGE;
    if (sl->what == W_COUNT)
        sl->o->seqs[sl->i] = (uint64_t)v;
    else if (sl->what == W_COUNT_SENDER)
        sl->o->prev[sl->i] = (uint64_t)v;
    else if (sl->what == W_OTK)
        sl->o->total = (uint64_t)v;
    else if (sl->what == W_PUT) {
        if (v < 1)
            return KURER_ESTORAGE;
        sl->o->seqs[sl->i] = (uint64_t)v;
        sl->o->prev[sl->i] = (uint64_t)v - 1; /* the counter moves by one, under its row lock */
    }
    return 0;
}

int kurer__pg_take_batch(pg_conn *c)
{
    int rc = 0;
    for (size_t k = 0; k < c->n_done && rc == 0; k++)
        rc = take_result(c, k);
    return rc;
}

static void send_stmt(pg_conn *c, pg_stmt st, const pg_params *p, op *o, size_t i, int what)
{
    (void)kurer__pg_send(c, st, p, o, i, what); /* a refusal loses the connection */
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

/* The round's mailboxes (by sender: one sender's share of a mailbox), each with the items of
 * the round's accepted puts so far (n) and of the put being decided (pend, valid while stamp is
 * that put's): a put's count is the mailbox's at the round's start plus these. An open-addressed
 * table, a lookup per item: linear in the round's items (a round holds at most
 * KURER__STOREQ_TAKE_ITEMS of them, store_queue.h). */
typedef struct box_ent {
    const kurer_store_item *it; /* NULL: free */
    int by_sender;
    size_t stamp;
    uint64_t n, pend;
} box_ent;

typedef struct box_map {
    box_ent *e;
    size_t mask;
} box_map;

static uint64_t fnv(uint64_t h, const char *str)
{
    for (const char *p = str; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211u;
    return (h ^ 0xff) * 1099511628211u; /* an end mark: ("ab", "c") is not ("a", "bc") */
}

static box_ent *box_get(box_map *m, const kurer_store_item *it, int by_sender, size_t stamp)
{
    uint64_t h = fnv(14695981039346656037u, it->to.user);
    h = (h ^ it->to.device_id) * 1099511628211u;
    if (by_sender)
        h = fnv(h ^ 1, it->from.user);
    for (size_t k = (size_t)(h ^ (h >> 29)) & m->mask;; k = (k + 1) & m->mask) {
        box_ent *e = &m->e[k];
        if (e->it == NULL)
            *e = (box_ent){it, by_sender, 0, 0, 0};
        else if (e->by_sender != by_sender || !same_box(e->it, it, by_sender))
            continue;
        if (e->stamp != stamp) {
            e->stamp = stamp;
            e->pend = 0;
        }
        return e;
    }
}

/* A put's limits from its counts (phase one), counting its items into the mailboxes: 0 or
 * KURER_ELIMIT (counted). */
static int decide(pg_store *s, box_map *m, const op *o, size_t stamp)
{
    for (size_t i = 0; i < o->n; i++) {
        box_ent *box = box_get(m, &o->items[i], 0, stamp);
        box_ent *share = box_get(m, &o->items[i], 1, stamp);
        if (o->mailbox_max > 0 && o->seqs[i] + box->n + box->pend + 1 > o->mailbox_max) {
            s->q.refused_full++;
            return KURER_ELIMIT;
        }
        /* Each sender (user) has a share of the mailbox: one cannot fill it for everyone. */
        if (o->sender_max > 0 && o->prev[i] + share->n + share->pend + 1 > o->sender_max) {
            s->q.refused_share++;
            return KURER_ELIMIT;
        }
        box->pend++;
        share->pend++;
    }
    return 0;
}

/* An accepted put's items count for the puts after it. */
static void accepted(box_map *m, const op *o, size_t stamp)
{
    for (size_t i = 0; i < o->n; i++)
        for (int by_sender = 0; by_sender < 2; by_sender++) {
            box_ent *e = box_get(m, &o->items[i], by_sender, stamp);
            e->n += e->pend;
            e->pend = 0;
        }
}

void kurer__pg_send_counts(pg_conn *c, op *round)
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
                send_stmt(c, PG_COUNT, &p, o, i, W_COUNT);
            }
            if (o->sender_max > 0) {
                p_dev(&p, &o->items[i].to);
                kurer__pg_p_str(&p, o->items[i].from.user);
                send_stmt(c, PG_COUNT_SENDER, &p, o, i, W_COUNT_SENDER);
            }
        }
    }
}

/* An item of a put, in the order its counter row is taken. */
typedef struct put_ref {
    op *o;
    size_t i, at; /* at: its place in the round (one device's puts keep their order) */
} put_ref;

static int cmp_put(const void *a, const void *b)
{
    const put_ref *x = a, *y = b;
    const kurer_device_address *p = &x->o->items[x->i].to, *q = &y->o->items[y->i].to;
    int u = strcmp(p->user, q->user);
    if (u != 0)
        return u;
    if (p->device_id != q->device_id)
        return p->device_id < q->device_id ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

static void send_put(pg_conn *c, op *o, size_t i)
{
    pg_params p;
    p_dev(&p, &o->items[i].to);
    kurer__pg_p_str(&p, o->items[i].from.user);
    if (!o->fanout)
        kurer__pg_p_bytes(&p, o->items[i].env, o->items[i].len);
    else
        kurer__pg_p_i64(&p, (int64_t)o->serial);
    send_stmt(c, o->fanout ? PG_PUT_REF : PG_PUT, &p, o, i, W_PUT);
}

/* The puts accepted, their payloads first, then their items in counter row order. 0 or
 * KURER_ENOMEM (the round fails). */
static int send_puts(pg_conn *c, op *round)
{
    pg_params p;
    size_t n = 0, at = 0;
    for (op *o = round; o != NULL; o = o->next)
        if (o->kind == KURER__OP_PUT && o->err == 0 && o->n > 0) {
            n += o->n;
            if (!o->fanout)
                continue;
            p.n = 0;
            kurer__pg_p_i64(&p, (int64_t)o->serial); /* the payload's id */
            kurer__pg_p_str(&p, o->items[0].from.user);
            kurer__pg_p_i64(&p, (int64_t)o->n);
            kurer__pg_p_bytes(&p, o->blob, o->blob_len);
            send_stmt(c, PG_PAYLOAD, &p, o, 0, W_DONE);
        }
    if (n == 0)
        return 0;
    put_ref *refs = malloc(n * sizeof(*refs));
    if (refs == NULL)
        return KURER_ENOMEM;
    n = 0;
    for (op *o = round; o != NULL; o = o->next)
        if (o->kind == KURER__OP_PUT && o->err == 0)
            for (size_t i = 0; i < o->n; i++)
                refs[n++] = (put_ref){o, i, at++};
    qsort(refs, n, sizeof(*refs), cmp_put);
    for (size_t k = 0; k < n; k++)
        send_put(c, refs[k].o, refs[k].i);
    free(refs);
    return 0;
}

/* The writes: the puts (send_puts), then the rest in submission order. */
int kurer__pg_send_writes(pg_conn *c, op *round)
{
    pg_params p;
    if (send_puts(c, round) != 0)
        return KURER_ENOMEM;
    for (op *o = round; o != NULL; o = o->next) {
        switch (o->kind) {
        case KURER__OP_ACK:
            for (size_t i = 0; i < o->n; i++) {
                if (o->seqs[i] > INT64_MAX)
                    continue; /* no such seq */
                p_dev(&p, &o->dev);
                kurer__pg_p_i64(&p, (int64_t)o->seqs[i]);
                send_stmt(c, PG_DELETE, &p, o, i, W_DONE);
            }
            p.n = 0; /* the payloads these acks took the last reference of */
            send_stmt(c, PG_DROP_PAYLOADS, &p, o, 0, W_DONE);
            break;
        case KURER__OP_DEVICE:
            p_dev(&p, &o->dev);
            kurer__pg_p_i64(&p, (int64_t)o->serial);
            kurer__pg_p_bytes(&p, o->blob, o->blob_len);
            send_stmt(c, PG_DEVICE, &p, o, 0, W_DONE);
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
            send_stmt(c, PG_CRL, &p, o, 0, W_DONE);
            break;
        default:
            break; /* prekeys and takes: after the pipeline; reads: after the commit */
        }
    }
    return 0;
}

void kurer__pg_decide(pg_conn *c, op *round)
{
    size_t items = 0, cap = 16, stamp = 0;
    for (const op *o = round; o != NULL; o = o->next)
        if (o->kind == KURER__OP_PUT)
            items += o->n;
    while (cap < 4 * items) /* two entries per item at most, half full at most */
        cap *= 2;
    box_map m = {calloc(cap, sizeof(box_ent)), cap - 1};
    for (op *o = round; o != NULL; o = o->next) {
        if (o->kind != KURER__OP_PUT)
            continue;
        if (m.e == NULL) {
            o->err = KURER_ENOMEM; /* not written */
            continue;
        }
        o->err = decide(c->s, &m, o, ++stamp);
        if (o->err == 0)
            accepted(&m, o, stamp);
    }
    free(m.e);
}

/* Each fetch: the device's high mark and queue length, then its rows (one statement after the
 * other, each its own snapshot: every seq up to the high mark was committed when it was read,
 * since commit order is seq order, so the rows read next hold all of them still stored). Each
 * count: whether the device ever uploaded, then its pool. */
int kurer__pg_send_reads(pg_conn *c, op *round)
{
    pg_params p;
    int any = 0;
    for (op *o = round; o != NULL; o = o->next) {
        any |= o->kind == KURER__OP_FETCH || o->kind == KURER__OP_COUNT;
        if (o->kind == KURER__OP_FETCH) {
            o->err = 0;
            p_dev(&p, &o->dev);
            send_stmt(c, PG_HIGH, &p, o, 0, W_HIGH);
            if (o->limit == 0)
                continue; /* the count only */
            kurer__pg_p_i64(&p, o->after > INT64_MAX ? INT64_MAX : (int64_t)o->after);
            kurer__pg_p_i64(&p, o->limit > INT64_MAX ? INT64_MAX : (int64_t)o->limit);
            send_stmt(c, PG_FETCH, &p, o, 0, W_ROWS);
        } else if (o->kind == KURER__OP_COUNT) {
            o->err = 0;
            p_dev(&p, &o->dev);
            send_stmt(c, PG_HAS_SPK, &p, o, 0, W_HAS);
            send_stmt(c, PG_COUNT_OTK, &p, o, 0, W_OTK);
        }
    }
    return any;
}

void kurer__pg_fail_reads(op *round)
{
    for (op *o = round; o != NULL; o = o->next) {
        if (o->kind != KURER__OP_FETCH && o->kind != KURER__OP_COUNT)
            continue;
        o->err = KURER_ESTORAGE;
        for (size_t i = 0; i < o->n_rows; i++)
            free((void *)o->rows[i].env);
        free(o->rows);
        o->rows = NULL;
        o->n_rows = 0;
    }
}
