/* kurer.h's read receipts and conversation timers: requests for a worker (as api.c's), their
 * blocking wrappers, and the timer as a home call. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "home.h"
#include "job_wait.h"
#include "kurer/util.h"
#include "net.h"
#include "receipt.h"
#include "store_group.h"

#define READ_MAX 4096 /* sent_at values in one read request */

typedef struct rreq {
    kurer__job job; /* first: the job is the request */
    int timer;      /* 1: set the timer; 0: read */
    char peer[KURER_SUBJECT_MAX + 1];
    int has_peer;
    char group[KURER_GROUP_HEX_MAX + 1]; /* read: a group's messages (has_group) */
    int has_group;
    int64_t *ts;
    size_t n;
    uint32_t seconds;
    kurer_result res;
    kurer_done_fn done;
    void *ud;
    kurer__job_waiter wait;
} rreq;

static void read_run(kurer *k, rreq *r)
{
    uint8_t gid[KURER_GROUP_ID_LEN];
    r->res.err = r->has_group ? kurer__store_group_resolve(k->st, r->group, gid) : 0;
    if (r->res.err == 0)
        r->res.err = kurer__store_mark_read_in(k->st, r->has_peer ? r->peer : NULL,
                                               r->has_group ? gid : NULL, r->ts, r->n,
                                               kurer__home_now(k) * 1000, &r->res.marked);
    kurer__expiry_changed(k);
    /* Marked is done; the receipts go now if the relay answers in time, else later. */
    if (r->res.err == 0 && r->res.marked > 0 && kurer__net_wait_online(k, r->job.deadline, 0) == 0)
        kurer__receipts_flush(k, r->job.deadline);
}

static void timer_run(kurer *k, rreq *r)
{
    kurer_result *o = &r->res;
    kurer__msg_extra x;
    memset(&x, 0, sizeof(x));
    x.kind = KURER__KIND_TIMER;
    x.expire_timer = r->seconds;
    o->err = kurer__net_wait_online(k, r->job.deadline, 0);
    if (o->err == 0)
        o->err = kurer__engine_prepare(k, r->peer, r->job.deadline, &o->why);
    /* The notice is queued first (the policy checks run inside its own transaction), then the
     * timer set: a notice in the outbox goes out whatever happens next. */
    if (o->err == 0)
        o->err = kurer__home_queue_ex(k, r->peer, KURER_LEVEL_UNCLASSIFIED, "", &x, &o->why,
                                      &o->message_id);
    if (o->err == 0)
        o->err = kurer__store_timer_set(k->st, r->peer, r->seconds, kurer__home_now(k) * 1000);
    if (o->err == 0)
        o->err = kurer__engine_send_queued(k, o->message_id, r->job.deadline, &o->why);
}

static void rreq_run(kurer *k, kurer__job *j)
{
    rreq *r = (rreq *)j;
    if (r->timer)
        timer_run(k, r);
    else
        read_run(k, r);
}

static void rreq_free(rreq *r)
{
    free(r->ts);
    free(r);
}

static void rreq_done(kurer *k, kurer__job *j)
{
    rreq *r = (rreq *)j;
    (void)k;
    if (j->rc != 0 && r->res.err == 0)
        r->res.err = j->rc; /* never run (the handle closed) */
    if (kurer__job_waiter_wake(&r->wait))
        return; /* the waiting caller frees it */
    if (r->done != NULL)
        r->done(r->ud, &r->res);
    rreq_free(r);
}

static int rreq_new(kurer *k, const char *peer, int timeout_ms, rreq **out)
{
    if (k == NULL || (peer != NULL && kurer_user_check(peer) != 0))
        return KURER_EINVAL;
    rreq *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return KURER_ENOMEM;
    if (peer != NULL) {
        memcpy(r->peer, peer, strlen(peer) + 1);
        r->has_peer = 1;
    }
    r->job.run = rreq_run;
    r->job.done = rreq_done;
    r->job.deadline = kurer_time_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    *out = r;
    return 0;
}

static int read_new(kurer *k, const char *peer, const int64_t *sent_at, size_t n, int timeout_ms,
                    rreq **out)
{
    if (n > READ_MAX || (n > 0 && sent_at == NULL))
        return KURER_EINVAL;
    int rc = rreq_new(k, peer, timeout_ms, out);
    if (rc != 0 || n == 0)
        return rc;
    if (((*out)->ts = malloc(n * sizeof(*sent_at))) == NULL) {
        rreq_free(*out);
        return KURER_ENOMEM;
    }
    memcpy((*out)->ts, sent_at, n * sizeof(*sent_at));
    (*out)->n = n;
    return 0;
}

static int timer_new(kurer *k, const char *peer, uint32_t seconds, int timeout_ms, rreq **out)
{
    if (peer == NULL || seconds > KURER_TIMER_MAX)
        return KURER_EINVAL;
    int rc = rreq_new(k, peer, timeout_ms, out);
    if (rc == 0) {
        (*out)->timer = 1;
        (*out)->seconds = seconds;
    }
    return rc;
}

static int submit(kurer *k, rreq *r, kurer_done_fn done, void *ud)
{
    r->done = done;
    r->ud = ud;
    int rc = kurer__net_submit(k, &r->job);
    if (rc != 0)
        rreq_free(r);
    return rc;
}

/* Submits and waits (every request ends by its deadline). Not on the library thread, nor with
 * the home lock held: KURER_ESTATE. r is freed here. */
static int blocking(kurer *k, rreq *r, kurer_result *res)
{
    if (kurer__net_on_library_thread(k) || kurer__hlock_mine(k)) {
        rreq_free(r);
        return KURER_ESTATE;
    }
    int rc = kurer__job_wait(k, &r->job, &r->wait);
    if (rc == 0) {
        rc = r->res.err;
        *res = r->res;
    }
    rreq_free(r);
    return rc;
}

int kurer_read_async(kurer *k, const char *peer, const int64_t *sent_at, size_t n, int timeout_ms,
                     kurer_done_fn done, void *ud)
{
    rreq *r = NULL;
    int rc = read_new(k, peer, sent_at, n, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

int kurer_read(kurer *k, const char *peer, const int64_t *sent_at, size_t n, int timeout_ms,
               size_t *marked)
{
    rreq *r = NULL;
    kurer_result res;
    int rc = read_new(k, peer, sent_at, n, timeout_ms, &r);
    if (rc == 0 && (rc = blocking(k, r, &res)) == 0 && marked != NULL)
        *marked = res.marked;
    return rc;
}

static int read_group_new(kurer *k, const char *group, const int64_t *sent_at, size_t n,
                          int timeout_ms, rreq **out)
{
    if (group == NULL || strlen(group) > KURER_GROUP_HEX_MAX)
        return KURER_EINVAL;
    int rc = read_new(k, NULL, sent_at, n, timeout_ms, out);
    if (rc == 0) {
        memcpy((*out)->group, group, strlen(group) + 1);
        (*out)->has_group = 1;
    }
    return rc;
}

int kurer_read_group_async(kurer *k, const char *group, const int64_t *sent_at, size_t n,
                           int timeout_ms, kurer_done_fn done, void *ud)
{
    rreq *r = NULL;
    int rc = read_group_new(k, group, sent_at, n, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

int kurer_read_group(kurer *k, const char *group, const int64_t *sent_at, size_t n, int timeout_ms,
                     size_t *marked)
{
    rreq *r = NULL;
    kurer_result res;
    int rc = read_group_new(k, group, sent_at, n, timeout_ms, &r);
    if (rc == 0 && (rc = blocking(k, r, &res)) == 0 && marked != NULL)
        *marked = res.marked;
    return rc;
}

int kurer_set_timer_async(kurer *k, const char *peer, uint32_t seconds, int timeout_ms,
                          kurer_done_fn done, void *ud)
{
    rreq *r = NULL;
    int rc = timer_new(k, peer, seconds, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

int kurer_set_timer(kurer *k, const char *peer, uint32_t seconds, int timeout_ms,
                    kurer_refusal *why)
{
    rreq *r = NULL;
    kurer_result res;
    memset(&res, 0, sizeof(res));
    if (why != NULL)
        memset(why, 0, sizeof(*why));
    int rc = timer_new(k, peer, seconds, timeout_ms, &r);
    if (rc == 0)
        rc = blocking(k, r, &res);
    if (rc != 0 && why != NULL)
        *why = res.why;
    return rc;
}

int kurer_timer(kurer *k, const char *peer, uint32_t *seconds)
{
    if (k == NULL || peer == NULL || seconds == NULL)
        return KURER_EINVAL;
    uint32_t v = 0;
    kurer__hlock_take(k);
    int rc = kurer__store_timer_get(k->st, peer, &v);
    kurer__hlock_give(k);
    if (rc == 0)
        *seconds = v;
    return rc;
}
