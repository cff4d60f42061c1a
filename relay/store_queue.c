/* The backend-neutral half of the relay store (store_queue.h): the submission queue, the rounds
 * with put/ack pairing and held puts, and the completions on the loop. */
#include "store_queue.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kurer/util.h"

typedef kurer__op op;

void kurer__op_free(op *o)
{
    if (o == NULL)
        return;
    free(o->items);
    free(o->seqs);
    free(o->prev);
    free(o->skip);
    free(o->blob);
    free(o->rows);
    free(o->otk);
    free(o->devs);
    free(o->bundles);
    free(o->inv);
    free(o->inv_rows);
    free(o->breq);
    free(o->blob_out);
    free(o);
}

static void on_async(uv_async_t *a)
{
    kurer__storeq_run_completions(a->data);
}

static void free_owner(uv_handle_t *h)
{
    kurer__storeq *q = h->data;
    free(q->owner);
}

int kurer__storeq_init(kurer__storeq *q, kurer_store *owner, uv_loop_t *loop)
{
    q->owner = owner;
    q->in_tail = &q->in_head;
    q->done_tail = &q->done_head;
    q->held_tail = &q->held_head;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (uv_async_init(loop, &q->async, on_async) != 0)
        return KURER_ESTORAGE;
    q->async.data = q;
    q->async_open = 1;
    return 0;
}

void kurer__storeq_release(kurer__storeq *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    /* The async handle belongs to the loop once initialised: the owner is freed by its close
     * callback, when the caller next runs the loop (never before: libuv still holds it). */
    if (q->async_open)
        uv_close((uv_handle_t *)&q->async, free_owner);
    else
        free(q->owner);
}

void kurer__storeq_stop(kurer__storeq *q)
{
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

void kurer__storeq_submit(kurer__storeq *q, op *o)
{
    o->submitted_ns = kurer_time_mono_ns();
    pthread_mutex_lock(&q->mu);
    *q->in_tail = o;
    q->in_tail = &o->next;
    q->stats.queued_ops++;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if (q->on_submit != NULL)
        q->on_submit(q);
}

/* ---- pairing and rounds (executor) -------------------------------------------------------- */

typedef struct ack_ref {
    uint64_t seq;
    const kurer_device_address *dev;
    op *o;
    size_t i;
} ack_ref;

/* By (seq, device): seqs are per device, so many devices share each seq. */
static int cmp_ack_ref(const void *a, const void *b)
{
    const ack_ref *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    if (x->dev->device_id != y->dev->device_id)
        return x->dev->device_id < y->dev->device_id ? -1 : 1;
    return strcmp(x->dev->user, y->dev->user);
}

static size_t collect_acks(op *batch, ack_ref *refs)
{
    size_t n = 0;
    int have_put = 0;
    for (op *o = batch; o != NULL; o = o->next) {
        if (o->kind == KURER__OP_ACK && have_put) {
            for (size_t i = 0; i < o->n; i++, n++)
                if (refs != NULL)
                    refs[n] = (ack_ref){o->seqs[i], &o->dev, o, i};
        } else if (o->kind == KURER__OP_PUT) {
            have_put = 1;
        }
    }
    return n;
}

/* Puts and acks of one round (held puts first) that name the same (device, seq) cancel:
 * neither is executed. A put always precedes the ack of its envelope (the relay delivers only
 * after submitting it), so only acks later in the round are looked at. */
static void pair_batch(op *batch)
{
    size_t n = collect_acks(batch, NULL);
    if (n == 0)
        return;
    ack_ref *refs = malloc(n * sizeof(*refs));
    if (refs == NULL)
        /* Out of memory: the acks run as plain deletes. Nothing is lost, but an ack that should
         * have cancelled a held put deletes nothing, the put is written later and that envelope
         * is delivered again (the recipient drops it by envelope id). */
        return;
    collect_acks(batch, refs);
    qsort(refs, n, sizeof(*refs), cmp_ack_ref);
    for (op *o = batch; o != NULL; o = o->next) {
        if (o->kind != KURER__OP_PUT)
            continue;
        for (size_t i = 0; i < o->n; i++) {
            if (o->skip[i])
                continue; /* a held put's item cancelled in an earlier round */
            ack_ref key = {o->seqs[i], &o->items[i].to, NULL, 0};
            ack_ref *a = bsearch(&key, refs, n, sizeof(*refs), cmp_ack_ref);
            if (a == NULL)
                continue;
            /* equal keys sit together: take one not yet used */
            while (a > refs && cmp_ack_ref(&a[-1], &key) == 0)
                a--;
            for (; a < refs + n && cmp_ack_ref(a, &key) == 0; a++) {
                if (a->o->skip[a->i])
                    continue;
                a->o->skip[a->i] = 1;
                o->skip[i] = 1;
                o->n_cancel++;
                break;
            }
        }
    }
    free(refs);
}

/* Hands ops to the loop (q->mu held). */
static void complete_locked(kurer__storeq *q, op *o)
{
    o->next = NULL;
    *q->done_tail = o;
    q->done_tail = &o->next;
}

/* True if every item of o (a put or an ack) was cancelled against its pair. */
static int all_skipped(const op *o)
{
    for (size_t i = 0; i < o->n; i++)
        if (!o->skip[i])
            return 0;
    return 1;
}

/* Sorts the held puts and the new batch (both in submission order) into what to execute now,
 * what to complete at once (a held put all of whose acks came, an ack that only cancelled) and
 * what stays held. */
static op *sort_round(kurer__storeq *q, op *held, int flush, uint64_t now, op **done)
{
    op *work = NULL, **wt = &work;
    op *later = NULL, **lt = &later;
    op **dt = done;
    for (op *o = held, *next; o != NULL; o = next) {
        next = o->next;
        o->next = NULL;
        int holdable = o->kind == KURER__OP_PUT && o->hold_until_ns != 0;
        if (holdable && all_skipped(o)) {
            q->stat_held_cancelled++;
            *dt = o; /* never written: done, no commit needed */
            dt = &o->next;
        } else if (o->kind == KURER__OP_ACK && all_skipped(o)) {
            *dt = o; /* deletes nothing that was ever written */
            dt = &o->next;
        } else if (holdable && !flush && now < o->hold_until_ns) {
            *lt = o; /* keeps waiting for its acks */
            lt = &o->next;
        } else {
            *wt = o;
            wt = &o->next;
        }
    }
    q->held_head = later;
    q->held_tail = later != NULL ? lt : &q->held_head;
    return work;
}

/* Builds the work of one round from the held puts and the new batch. Puts and acks that pair
 * are cancelled. Held puts stay held until their time is up, unless a fetch in the batch (or
 * the close) needs the mailboxes complete: then they run first. */
static op *plan_round(kurer__storeq *q, op *batch, int flush, op **done)
{
    uint64_t now = kurer_time_mono_ns();
    op *held = q->held_head;
    q->held_head = NULL;
    q->held_tail = &q->held_head;
    /* new holdable puts join the held list (they precede their acks: submitted first) */
    op *rest = NULL, **rt = &rest;
    op **ht = &held;
    while (*ht != NULL)
        ht = &(*ht)->next;
    for (op *o = batch, *next; o != NULL; o = next) {
        next = o->next;
        o->next = NULL;
        if (o->kind == KURER__OP_FETCH || o->kind == KURER__OP_BACKUP)
            flush = 1; /* they read the mailboxes: held puts are written first */
        if (o->kind == KURER__OP_PUT && o->hold_until_ns != 0) {
            q->stat_held++;
            *ht = o;
            ht = &o->next;
        } else {
            *rt = o;
            rt = &o->next;
        }
    }
    *ht = rest; /* pair over held + rest */
    if (!q->no_pairing)
        pair_batch(held);
    *done = NULL;
    return sort_round(q, held, flush, now, done);
}

/* Waits (q->mu held) until there is work and no loader holds the backend, or until stopping. */
static void wait_for_work(kurer__storeq *q)
{
    for (;;) {
        if (q->stopping || (!q->exclusive && q->in_head != NULL))
            return;
        if (!q->exclusive && q->held_head != NULL) {
            uint64_t due = q->held_head->hold_until_ns, now = kurer_time_mono_ns();
            if (now >= due)
                return;
            /* the first held put is the oldest: wake when its time is up */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t abs = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + (due - now);
            ts.tv_sec = (time_t)(abs / 1000000000u);
            ts.tv_nsec = (long)(abs % 1000000000u);
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        } else {
            pthread_cond_wait(&q->cv, &q->mu);
        }
    }
}

/* Commit delay (q->mu held): lets the oldest op wait a little for company, and for the acks
 * that cancel puts delivered in the meantime. */
static void commit_delay(kurer__storeq *q)
{
    while (q->in_head != NULL && !q->stopping && q->commit_delay_ns > 0) {
        uint64_t due = q->in_head->submitted_ns + q->commit_delay_ns, now = kurer_time_mono_ns();
        if (now >= due)
            break;
        pthread_mutex_unlock(&q->mu);
        struct timespec ts = {0, (long)(due - now)};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&q->mu);
    }
}

/* A round starts (q->mu held). */
static void started_locked(kurer__storeq *q)
{
    if (++q->in_flight > q->stats.rounds_in_flight_max)
        q->stats.rounds_in_flight_max = q->in_flight;
}

/* The planned round of a batch taken out of the queue: completes what needs no write, and
 * counts the round as started if there is one. */
static op *plan_taken(kurer__storeq *q, op *batch, int flush)
{
    op *done = NULL;
    op *work = plan_round(q, batch, flush, &done);
    pthread_mutex_lock(&q->mu);
    for (op *o = done, *next; o != NULL; o = next) {
        next = o->next;
        complete_locked(q, o);
    }
    if (work == NULL) {
        q->writing = 0;
        pthread_cond_broadcast(&q->cv);
    } else {
        started_locked(q);
    }
    pthread_mutex_unlock(&q->mu);
    if (done != NULL)
        uv_async_send(&q->async);
    return work;
}

/* An op's weight against the caps: its items (a put's envelopes, an ack's seqs, a take's
 * devices; 1 at least), its bytes (a put's envelopes, a chain, a list, a blob chunk written
 * or read). */
static size_t op_items(const op *o)
{
    return o->n > 0 ? o->n : 1;
}

static size_t op_bytes(const op *o)
{
    size_t n = o->blob_len; /* a fan-out's shared bytes, a chain, a list, a chunk */
    if (o->kind == KURER__OP_PUT && !o->fanout)
        for (size_t i = 0; i < o->n; i++)
            n += o->items[i].len; /* in blob, blob_len not set */
    if (o->kind == KURER__OP_BLOB && o->breq != NULL && o->breq->op == KURER_BLOB_READ)
        n += o->breq->length; /* what it reads */
    return n;
}

/* Takes the submitted ops (q->mu held) up to the caps of a round on the loop, never fewer than
 * one; the rest stays submitted, first in line for the next round. */
static op *take_capped(kurer__storeq *q)
{
    op *head = q->in_head, **cut = &q->in_head;
    size_t items = 0, bytes = 0;
    while (*cut != NULL) {
        const op *o = *cut;
        size_t w = op_bytes(o);
        if (cut != &q->in_head && (items + op_items(o) > KURER__STOREQ_TAKE_ITEMS ||
                                   bytes + w > KURER__STOREQ_TAKE_BYTES))
            break;
        items += op_items(o);
        bytes += w;
        cut = &(*cut)->next;
    }
    q->in_head = *cut;
    *cut = NULL;
    if (q->in_head == NULL)
        q->in_tail = &q->in_head;
    return head;
}

op *kurer__storeq_take(kurer__storeq *q, uint64_t *wait_ns)
{
    *wait_ns = 0;
    pthread_mutex_lock(&q->mu);
    op *batch = q->in_head;
    int flush = q->stopping;
    if (batch != NULL && !flush && q->commit_delay_ns > 0) {
        uint64_t due = batch->submitted_ns + q->commit_delay_ns, now = kurer_time_mono_ns();
        if (now < due) {
            *wait_ns = due - now;
            batch = NULL;
        }
    }
    if (batch != NULL)
        batch = take_capped(q);
    pthread_mutex_unlock(&q->mu);
    return batch != NULL ? plan_taken(q, batch, flush) : NULL;
}

op *kurer__storeq_next(kurer__storeq *q, int *stop)
{
    pthread_mutex_lock(&q->mu);
    wait_for_work(q);
    commit_delay(q);
    op *batch = q->exclusive ? NULL : q->in_head;
    if (batch != NULL) {
        q->in_head = NULL;
        q->in_tail = &q->in_head;
    }
    *stop = q->stopping && batch == NULL && q->held_head == NULL;
    int go = !q->exclusive && (batch != NULL || q->held_head != NULL);
    if (go)
        q->writing = 1;
    int flush = q->stopping;
    pthread_mutex_unlock(&q->mu);
    if (!go)
        return NULL; /* stopping, or a start-up loader took the backend during the delay */
    return plan_taken(q, batch, flush);
}

void kurer__storeq_finish(kurer__storeq *q, op *round, uint64_t n, uint64_t us)
{
    pthread_mutex_lock(&q->mu);
    q->writing = 0;
    pthread_cond_broadcast(&q->cv); /* a loader may be waiting for the backend */
    if (q->in_flight > 0)
        q->in_flight--;
    q->stats.commits++;
    q->stats.last_batch = n;
    q->stats.last_commit_us = us;
    kurer__hist_add(&q->stats.commit_hist, us);
    for (op *o = round, *next; o != NULL; o = next) {
        next = o->next;
        complete_locked(q, o);
    }
    pthread_mutex_unlock(&q->mu);
    uv_async_send(&q->async);
}

void kurer__storeq_exclusive_begin(kurer__storeq *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->writing)
        pthread_cond_wait(&q->cv, &q->mu);
    q->exclusive = 1;
    pthread_mutex_unlock(&q->mu);
}

void kurer__storeq_exclusive_end(kurer__storeq *q)
{
    pthread_mutex_lock(&q->mu);
    q->exclusive = 0;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* ---- completions (loop) ------------------------------------------------------------------- */

static void complete(op *o)
{
    int ok = o->err == 0;
    switch (o->kind) {
    case KURER__OP_PUT:
        if (ok && o->seqs_cb != NULL)
            o->seqs_cb(o->arg, o->seqs, o->prev, o->n);
        o->cb.put(o->arg, o->err, ok ? o->seqs : NULL, ok ? o->n : 0, ok ? o->n_cancel : 0);
        break;
    case KURER__OP_FETCH:
        o->cb.fetch(o->arg, o->err, o->rows, o->n_rows, o->total, o->high);
        for (size_t i = 0; i < o->n_rows; i++)
            free((void *)o->rows[i].env);
        break;
    case KURER__OP_PREKEYS:
    case KURER__OP_COUNT:
        o->cb.count(o->arg, o->err, ok ? o->total : 0);
        break;
    case KURER__OP_TAKE:
        o->cb.bundles(o->arg, o->err, ok ? o->bundles : NULL, ok ? o->n_bundles : 0);
        break;
    case KURER__OP_ACK:
    case KURER__OP_DEVICE:
    case KURER__OP_CRL:
    case KURER__OP_BACKUP:
        if (o->cb.done != NULL)
            o->cb.done(o->arg, o->err);
        break;
    case KURER__OP_INVITE:
        o->cb.invite(o->arg, o->err, ok ? o->inv_rows : NULL, ok ? o->n_inv : 0);
        break;
    case KURER__OP_BLOB:
        o->bres.data = o->blob_out;
        o->cb.blob(o->arg, o->err, ok ? &o->bres : NULL);
        break;
    }
}

void kurer__storeq_run_completions(kurer__storeq *q)
{
    pthread_mutex_lock(&q->mu);
    op *list = q->done_head;
    q->done_head = NULL;
    q->done_tail = &q->done_head;
    pthread_mutex_unlock(&q->mu);
    for (op *o = list, *next; o != NULL; o = next) {
        next = o->next;
        complete(o);
        pthread_mutex_lock(&q->mu);
        q->stats.queued_ops--;
        pthread_mutex_unlock(&q->mu);
        kurer__op_free(o);
    }
}

/* ---- front ends (loop) -------------------------------------------------------------------- */

static op *op_new(kurer__op_kind kind, void *arg)
{
    op *o = calloc(1, sizeof(*o));
    if (o != NULL) {
        o->kind = kind;
        o->arg = arg;
    }
    return o;
}

op *kurer__storeq_put_new(const kurer_store_put_req *req)
{
    size_t n = req->n, bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += req->items[i].len;
    op *o = op_new(KURER__OP_PUT, req->arg);
    if (o == NULL)
        return NULL;
    o->cb.put = req->on_done;
    o->n = n;
    o->mailbox_max = req->lim.mailbox_max;
    o->sender_max = req->lim.sender_max;
    o->items = calloc(n ? n : 1, sizeof(*o->items));
    o->seqs = calloc(n ? n : 1, sizeof(*o->seqs));
    o->prev = calloc(n ? n : 1, sizeof(*o->prev));
    o->skip = calloc(n ? n : 1, 1);
    o->blob = malloc(bytes ? bytes : 1);
    if (o->items == NULL || o->seqs == NULL || o->prev == NULL || o->skip == NULL ||
        o->blob == NULL) {
        kurer__op_free(o);
        return NULL;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        o->items[i] = req->items[i];
        if (req->items[i].len > 0)
            memcpy(o->blob + off, req->items[i].env, req->items[i].len);
        o->items[i].env = o->blob + off;
        off += req->items[i].len;
    }
    if (req->hold_us > 0)
        o->hold_until_ns = kurer_time_mono_ns() + req->hold_us * 1000;
    return o;
}

op *kurer__storeq_fanout_new(const kurer_store_put_req *req, const uint8_t *shared,
                             size_t shared_len)
{
    kurer_store_put_req r = *req;
    if (shared == NULL || shared_len == 0 || shared_len > KURER_FRAME_MAX)
        return NULL;
    kurer_store_item *items = calloc(req->n ? req->n : 1, sizeof(*items));
    if (items == NULL)
        return NULL;
    for (size_t i = 0; i < req->n; i++) {
        items[i].to = req->items[i].to;
        items[i].from = req->items[i].from;
    }
    r.items = items; /* no bytes per item: the blob is the shared bytes */
    op *o = kurer__storeq_put_new(&r);
    free(items);
    if (o == NULL)
        return NULL;
    free(o->blob);
    if ((o->blob = malloc(shared_len)) == NULL) {
        kurer__op_free(o);
        return NULL;
    }
    memcpy(o->blob, shared, shared_len);
    o->blob_len = shared_len;
    o->fanout = 1;
    for (size_t i = 0; i < o->n; i++)
        o->items[i].env = NULL;
    return o;
}

op *kurer__storeq_fetch_new(const kurer_device_address *dev, uint64_t after, size_t limit,
                            kurer_store_fetch_cb cb, void *arg)
{
    op *o = op_new(KURER__OP_FETCH, arg);
    if (o == NULL)
        return NULL;
    o->cb.fetch = cb;
    o->dev = *dev;
    o->after = after;
    o->limit = limit;
    return o;
}

int kurer__storeq_ack(kurer_store *s, const kurer_device_address *dev, const uint64_t *seqs,
                      size_t n, kurer_store_done_cb cb, void *arg)
{
    op *o = op_new(KURER__OP_ACK, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.done = cb;
    o->dev = *dev;
    o->n = n;
    o->seqs = malloc((n ? n : 1) * sizeof(*seqs));
    o->skip = calloc(n ? n : 1, 1);
    if (o->seqs == NULL || o->skip == NULL) {
        kurer__op_free(o);
        return KURER_ENOMEM;
    }
    if (n > 0)
        memcpy(o->seqs, seqs, n * sizeof(*seqs));
    kurer__storeq_submit(s->q, o);
    return 0;
}

/* An op whose input is one byte string (a chain, a list), copied into blob. */
static op *op_with_blob(kurer__op_kind kind, const uint8_t *data, size_t len, void *arg)
{
    op *o = op_new(kind, arg);
    if (o == NULL)
        return NULL;
    o->blob = malloc(len ? len : 1);
    if (o->blob == NULL) {
        kurer__op_free(o);
        return NULL;
    }
    if (len > 0)
        memcpy(o->blob, data, len);
    o->blob_len = len;
    return o;
}

int kurer__storeq_put_device(kurer_store *s, const kurer_store_device *d, kurer_store_done_cb cb,
                             void *arg)
{
    op *o = op_with_blob(KURER__OP_DEVICE, d->chain, d->chain_len, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.done = cb;
    o->dev = d->addr;
    o->serial = d->serial;
    kurer__storeq_submit(s->q, o);
    return 0;
}

int kurer__storeq_put_prekeys(kurer_store *s, const kurer_store_prekeys *p, kurer_store_count_cb cb,
                              void *arg)
{
    op *o = op_new(KURER__OP_PREKEYS, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.count = cb;
    o->dev = p->dev;
    o->pk = *p;
    o->otk = malloc((p->n_one_time ? p->n_one_time : 1) * sizeof(*o->otk));
    if (o->otk == NULL) {
        kurer__op_free(o);
        return KURER_ENOMEM;
    }
    if (p->n_one_time > 0)
        memcpy(o->otk, p->one_time, p->n_one_time * sizeof(*o->otk));
    o->pk.one_time = NULL; /* the copy is o->otk */
    kurer__storeq_submit(s->q, o);
    return 0;
}

int kurer__storeq_take_prekeys(kurer_store *s, const kurer_device_address *devs, size_t n,
                               size_t n_one_time, kurer_store_bundles_cb cb, void *arg)
{
    if (n > KURER_USER_DEVICES_MAX)
        return KURER_ELIMIT;
    op *o = op_new(KURER__OP_TAKE, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.bundles = cb;
    o->n = n;
    o->limit = n_one_time;
    o->devs = malloc((n ? n : 1) * sizeof(*devs));
    if (o->devs == NULL) {
        kurer__op_free(o);
        return KURER_ENOMEM;
    }
    if (n > 0)
        memcpy(o->devs, devs, n * sizeof(*devs));
    kurer__storeq_submit(s->q, o);
    return 0;
}

int kurer__storeq_count_prekeys(kurer_store *s, const kurer_device_address *dev,
                                kurer_store_count_cb cb, void *arg)
{
    op *o = op_new(KURER__OP_COUNT, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.count = cb;
    o->dev = *dev;
    kurer__storeq_submit(s->q, o);
    return 0;
}

int kurer__storeq_put_crl(kurer_store *s, const uint8_t issuer_key_id[32], uint64_t version,
                          const uint8_t *list, size_t len, kurer_store_done_cb cb, void *arg)
{
    op *o = op_with_blob(KURER__OP_CRL, list, len, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.done = cb;
    memcpy(o->key_id, issuer_key_id, 32);
    o->after = version;
    kurer__storeq_submit(s->q, o);
    return 0;
}

int kurer__storeq_backup(kurer_store *s, const char *path, kurer_store_done_cb cb, void *arg)
{
    op *o = op_with_blob(KURER__OP_BACKUP, (const uint8_t *)path, strlen(path) + 1, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.done = cb;
    kurer__storeq_submit(s->q, o);
    return 0;
}

int kurer__storeq_invite(kurer_store *s, const kurer_store_invite_req *req,
                         kurer_store_invite_cb cb, void *arg)
{
    if (req->op == KURER_INVITE_LIST && (req->limit == 0 || req->limit > KURER_ENROL_PAGE + 1))
        return KURER_EINVAL;
    op *o = op_new(KURER__OP_INVITE, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.invite = cb;
    o->inv = malloc(sizeof(*o->inv));
    /* room for what the operation may read back */
    o->inv_rows = calloc(req->op == KURER_INVITE_LIST ? req->limit : 1, sizeof(*o->inv_rows));
    if (o->inv == NULL || o->inv_rows == NULL) {
        kurer__op_free(o);
        return KURER_ENOMEM;
    }
    *o->inv = *req;
    kurer__storeq_submit(s->q, o);
    return 0;
}

int kurer__storeq_blob(kurer_store *s, const kurer_store_blob_req *req, kurer_store_blob_cb cb,
                       void *arg)
{
    if ((req->op == KURER_BLOB_APPEND && (req->len == 0 || req->len > KURER_BLOB_CHUNK_MAX)) ||
        (req->op == KURER_BLOB_READ && (req->length == 0 || req->length > KURER_BLOB_CHUNK_MAX)))
        return KURER_EINVAL;
    op *o = req->op == KURER_BLOB_APPEND ? op_with_blob(KURER__OP_BLOB, req->data, req->len, arg)
                                         : op_new(KURER__OP_BLOB, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.blob = cb;
    o->breq = malloc(sizeof(*o->breq));
    if (req->op == KURER_BLOB_READ)
        o->blob_out = malloc(req->length);
    if (o->breq == NULL || (req->op == KURER_BLOB_READ && o->blob_out == NULL)) {
        kurer__op_free(o);
        return KURER_ENOMEM;
    }
    *o->breq = *req;
    o->breq->data = o->blob; /* the copy */
    kurer__storeq_submit(s->q, o);
    return 0;
}

void kurer__storeq_set_commit_delay(kurer_store *s, uint64_t us)
{
    pthread_mutex_lock(&s->q->mu);
    s->q->commit_delay_ns = us * 1000;
    pthread_mutex_unlock(&s->q->mu);
}

void kurer__storeq_get_stats(kurer_store *s, kurer_store_stats *out)
{
    pthread_mutex_lock(&s->q->mu);
    *out = s->q->stats;
    pthread_mutex_unlock(&s->q->mu);
    out->refused_full = s->q->refused_full;
    out->refused_share = s->q->refused_share;
}
