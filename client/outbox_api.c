/* kurer.h's outbox, contacts and conversations: the home calls (under the home lock) and the
 * asynchronous retry and cancel (a job for a request worker, as api.c's requests) with their
 * blocking wrappers. */
#include <stdlib.h>
#include <string.h>

#include "home.h"
#include "kurer/util.h"
#include "job_wait.h"
#include "net.h"
#include "outbox.h"

/* ---- home calls ---- */

typedef struct list_ctx {
    kurer_outbox_fn fn;
    void *ud;
} list_ctx;

static int list_one(void *ud, const kurer__open_msg *m)
{
    list_ctx *c = ud;
    kurer_outbox_entry e;
    memset(&e, 0, sizeof(e));
    e.message_id = m->rowid;
    e.to = m->to;
    e.level = m->level;
    e.state = (kurer_message_state)m->state;
    e.reason = m->state == KURER__MSG_FAILED ? m->reason : 0;
    if (m->state == KURER__MSG_FAILED) {
        e.why.by = (kurer_refusal_by)m->refusal_by;
        memcpy(e.why.user, m->refusal_user, sizeof(e.why.user));
        e.why.device_id = m->refusal_device;
        e.why.limit = m->refusal_limit;
    }
    e.created_at = m->created_at;
    e.devices = m->items;
    e.attempts = m->attempts;
    e.next_attempt_at = m->next_attempt_at;
    e.accepted = m->accepted;
    return c->fn(c->ud, &e);
}

int kurer_outbox_list(kurer *k, kurer_outbox_fn fn, void *ud)
{
    if (k == NULL || fn == NULL)
        return KURER_EINVAL;
    list_ctx c = {fn, ud};
    kurer__hlock_take(k);
    int rc = kurer__store_outbox_messages(k->st, 0, list_one, &c);
    kurer__hlock_give(k);
    return rc;
}

typedef struct contact_ctx {
    kurer_contact_fn fn;
    void *ud;
} contact_ctx;

static int contact_one(void *ud, const kurer__contact *s)
{
    contact_ctx *c = ud;
    kurer_contact e = {s->user, s->devices, s->last_at, s->messages};
    return c->fn(c->ud, &e);
}

int kurer_contacts(kurer *k, kurer_contact_fn fn, void *ud)
{
    if (k == NULL || fn == NULL)
        return KURER_EINVAL;
    contact_ctx c = {fn, ud};
    kurer__hlock_take(k);
    int rc = kurer__store_contacts(k->st, k->own.user, contact_one, &c);
    kurer__hlock_give(k);
    return rc;
}

typedef struct conv_ctx {
    kurer_conversation_fn fn;
    void *ud;
} conv_ctx;

static int conv_one(void *ud, const kurer__conv *s)
{
    conv_ctx *c = ud;
    kurer_conversation e;
    memset(&e, 0, sizeof(e));
    e.peer = s->peer;
    e.last_at = s->last_at;
    e.messages = s->total;
    e.received = s->received;
    e.quarantined = s->quarantined;
    e.sent = s->sent;
    e.pending = s->pending;
    e.failed = s->failed;
    return c->fn(c->ud, &e);
}

int kurer_conversations(kurer *k, kurer_conversation_fn fn, void *ud)
{
    if (k == NULL || fn == NULL)
        return KURER_EINVAL;
    conv_ctx c = {fn, ud};
    kurer__hlock_take(k);
    int rc = kurer__store_conversations(k->st, conv_one, &c);
    kurer__hlock_give(k);
    return rc;
}

/* ---- the list as a request: collected by a worker, given on the library thread ---- */

typedef struct lreq {
    kurer__job job; /* first: the job is the request */
    kurer_outbox_entry *v;
    char (*to)[KURER_SUBJECT_MAX + 1]; /* v[i].to points here once collected */
    size_t n, cap;
    int err;
    kurer_outbox_fn fn;
    void *ud;
    kurer_done_fn done;
    void *done_ud;
} lreq;

static int lreq_add(void *ud, const kurer_outbox_entry *e)
{
    lreq *r = ud;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        kurer_outbox_entry *nv = realloc(r->v, cap * sizeof(*nv));
        if (nv == NULL)
            return KURER_ENOMEM;
        r->v = nv;
        char(*nt)[KURER_SUBJECT_MAX + 1] = realloc(r->to, cap * sizeof(*nt));
        if (nt == NULL)
            return KURER_ENOMEM;
        r->to = nt;
        r->cap = cap;
    }
    r->v[r->n] = *e;
    memcpy(r->to[r->n], e->to, strlen(e->to) + 1);
    r->n++;
    return 0;
}

static void lreq_run(kurer *k, kurer__job *j)
{
    lreq *r = (lreq *)j;
    list_ctx c = {lreq_add, r};
    r->err = kurer__store_outbox_messages(k->st, 0, list_one, &c);
}

static void lreq_done(kurer *k, kurer__job *j)
{
    lreq *r = (lreq *)j;
    kurer_result res;
    (void)k;
    memset(&res, 0, sizeof(res));
    res.err = j->rc != 0 ? j->rc : r->err;
    for (size_t i = 0; res.err == 0 && i < r->n; i++) {
        r->v[i].to = r->to[i];
        if (r->fn(r->ud, &r->v[i]) != 0)
            break;
    }
    if (r->done != NULL)
        r->done(r->done_ud, &res);
    free(r->v);
    free(r->to);
    free(r);
}

int kurer_outbox_list_async(kurer *k, kurer_outbox_fn fn, void *ud, kurer_done_fn done,
                            void *done_ud)
{
    if (k == NULL || fn == NULL)
        return KURER_EINVAL;
    lreq *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return KURER_ENOMEM;
    r->fn = fn;
    r->ud = ud;
    r->done = done;
    r->done_ud = done_ud;
    r->job.run = lreq_run;
    r->job.done = lreq_done;
    r->job.deadline = kurer_time_mono_ms() + 30000; /* local work: never waits for the relay */
    int rc = kurer__net_submit(k, &r->job);
    if (rc != 0)
        free(r);
    return rc;
}

/* ---- retry and cancel: requests ---- */

typedef struct oreq {
    kurer__job job; /* first: the job is the request */
    int cancel;
    kurer_result res;
    kurer_done_fn done;
    void *ud;
    kurer__job_waiter wait; /* the blocking wrapper's */
} oreq;

static void oreq_run(kurer *k, kurer__job *j)
{
    oreq *r = (oreq *)j;
    r->res.err = r->cancel ? kurer__outbox_cancel(k, r->res.message_id, j->deadline)
                           : kurer__outbox_retry(k, r->res.message_id, j->deadline, &r->res.why);
}

/* Library thread: the request has ended. */
static void oreq_done(kurer *k, kurer__job *j)
{
    oreq *r = (oreq *)j;
    (void)k;
    if (j->rc != 0 && r->res.err == 0)
        r->res.err = j->rc; /* never run (the handle closed) */
    if (kurer__job_waiter_wake(&r->wait))
        return; /* the waiting caller frees it */
    if (r->done != NULL)
        r->done(r->ud, &r->res);
    free(r);
}

static int oreq_new(kurer *k, int cancel, int64_t message_id, int timeout_ms, oreq **out)
{
    if (k == NULL || message_id <= 0)
        return KURER_EINVAL;
    oreq *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return KURER_ENOMEM;
    r->cancel = cancel;
    r->res.message_id = message_id;
    r->job.run = oreq_run;
    r->job.done = oreq_done;
    r->job.deadline = kurer_time_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    *out = r;
    return 0;
}

static int oreq_async(kurer *k, int cancel, int64_t message_id, int timeout_ms, kurer_done_fn done,
                      void *ud)
{
    oreq *r = NULL;
    int rc = oreq_new(k, cancel, message_id, timeout_ms, &r);
    if (rc != 0)
        return rc;
    r->done = done;
    r->ud = ud;
    if ((rc = kurer__net_submit(k, &r->job)) != 0)
        free(r);
    return rc;
}

/* Submits and waits for the completion (every request ends by its deadline). Not on the
 * library thread, nor with the home lock held (a home call's callback): KURER_ESTATE. */
static int oreq_blocking(kurer *k, int cancel, int64_t message_id, int timeout_ms,
                         kurer_refusal *why)
{
    oreq *r = NULL;
    if (why != NULL)
        memset(why, 0, sizeof(*why));
    if (k == NULL)
        return KURER_EINVAL;
    if (kurer__net_on_library_thread(k) || kurer__hlock_mine(k))
        return KURER_ESTATE;
    int rc = oreq_new(k, cancel, message_id, timeout_ms, &r);
    if (rc != 0)
        return rc;
    if ((rc = kurer__job_wait(k, &r->job, &r->wait)) == 0) {
        rc = r->res.err;
        if (why != NULL)
            *why = r->res.why;
    }
    free(r);
    return rc;
}

int kurer_outbox_retry_async(kurer *k, int64_t message_id, int timeout_ms, kurer_done_fn done,
                             void *ud)
{
    return oreq_async(k, 0, message_id, timeout_ms, done, ud);
}

int kurer_outbox_retry(kurer *k, int64_t message_id, int timeout_ms, kurer_refusal *why)
{
    return oreq_blocking(k, 0, message_id, timeout_ms, why);
}

int kurer_outbox_cancel_async(kurer *k, int64_t message_id, int timeout_ms, kurer_done_fn done,
                              void *ud)
{
    return oreq_async(k, 1, message_id, timeout_ms, done, ud);
}

int kurer_outbox_cancel(kurer *k, int64_t message_id, int timeout_ms)
{
    return oreq_blocking(k, 1, message_id, timeout_ms, NULL);
}
