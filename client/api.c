/* The network calls of kurer.h: the asynchronous requests (a job for a request worker, its
 * completion on the library thread) and the blocking layer on top of them. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "enrol.h"
#include "home.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/mobile.h"
#include "kurer/util.h"
#include "job_wait.h"
#include "net.h"

typedef enum req_kind {
    REQ_CONNECT,
    REQ_SEND,
    REQ_QUEUE,
    REQ_SEND_QUEUED,
    REQ_REFRESH,
    REQ_FLUSH,
    REQ_WAKE,
    REQ_ENROL_SUBMIT, /* text: the invitation code */
    REQ_ENROL_POLL
} req_kind;

typedef struct req {
    kurer__job job; /* first: the job is the request */
    req_kind kind;
    char to[KURER_SUBJECT_MAX + 1];
    int level;
    char *text; /* a copy of the plaintext, wiped when the request ends */
    size_t text_len;
    kurer_result res;
    kurer_done_fn done;
    void *ud;
    kurer__job_waiter wait; /* the blocking layer's */
} req;

static void req_run(kurer *k, kurer__job *j)
{
    req *r = (req *)j;
    kurer_result *o = &r->res;
    switch (r->kind) {
    case REQ_CONNECT:
        o->err = kurer__net_wait_online(k, j->deadline, 1);
        break;
    case REQ_SEND:
        o->err =
            kurer__engine_queue(k, r->to, r->level, r->text, j->deadline, &o->why, &o->message_id);
        if (o->err == 0)
            o->err = kurer__engine_send_queued(k, o->message_id, j->deadline, &o->why);
        break;
    case REQ_QUEUE:
        o->err =
            kurer__engine_queue(k, r->to, r->level, r->text, j->deadline, &o->why, &o->message_id);
        break;
    case REQ_SEND_QUEUED:
        o->err = kurer__engine_send_queued(k, o->message_id, j->deadline, &o->why);
        break;
    case REQ_REFRESH:
        o->err = kurer__engine_refresh(k, r->to, j->deadline, &o->devices);
        break;
    case REQ_FLUSH:
        o->err = kurer__engine_flush(k, j->deadline);
        break;
    case REQ_WAKE:
        /* connect, take everything the relay holds (given to on_message), disconnect */
        o->err = kurer__net_wait_online(k, j->deadline, 1);
        if (o->err == 0)
            o->err = kurer__net_wait_received(k, j->deadline, 1);
        kurer__net_disconnect(k, kurer_time_mono_ms() + 2500);
        break;
    case REQ_ENROL_SUBMIT:
        o->err = kurer__enrol_submit(k, r->text, j->deadline);
        break;
    case REQ_ENROL_POLL:
        o->err = kurer__enrol_poll(k, j->deadline, &o->enrol_state);
        break;
    }
}

static void req_free(req *r)
{
    if (r->text != NULL) {
        kurer_memzero(r->text, r->text_len);
        free(r->text);
    }
    free(r);
}

/* Library thread: the request has ended. */
static void req_done(kurer *k, kurer__job *j)
{
    req *r = (req *)j;
    (void)k;
    if (j->rc != 0 && r->res.err == 0)
        r->res.err = j->rc; /* never run (the handle closed) */
    if (kurer__job_waiter_wake(&r->wait))
        return; /* the waiting caller frees it */
    if (r->done != NULL)
        r->done(r->ud, &r->res);
    req_free(r);
}

static uint64_t deadline_in(int timeout_ms)
{
    return kurer_time_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
}

static int req_new(kurer *k, req_kind kind, int timeout_ms, req **out)
{
    if (k == NULL)
        return KURER_EINVAL;
    req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return KURER_ENOMEM;
    r->kind = kind;
    r->job.run = req_run;
    r->job.done = req_done;
    r->job.deadline = deadline_in(timeout_ms);
    *out = r;
    return 0;
}

/* What kurer_send and kurer_queue refuse at once. */
static int text_args(kurer *k, const char *to, const char *text, req *r)
{
    if (to == NULL || text == NULL)
        return KURER_EINVAL;
    if (kurer_user_check(to) != 0)
        return KURER_ESUBJECT;
    if (strcmp(to, k->own.user) == 0)
        return KURER_EINVAL; /* our own other devices get sync copies of what we send */
    size_t n = strlen(text);
    if (n == 0)
        return KURER_EINVAL;
    if (n > KURER_TEXT_MAX)
        return KURER_ELIMIT;
    if ((r->text = malloc(n + 1)) == NULL)
        return KURER_ENOMEM;
    memcpy(r->text, text, n + 1);
    r->text_len = n + 1;
    memcpy(r->to, to, strlen(to) + 1);
    return 0;
}

static int submit(kurer *k, req *r, kurer_done_fn done, void *ud)
{
    r->done = done;
    r->ud = ud;
    int rc = kurer__net_submit(k, &r->job);
    if (rc != 0)
        req_free(r);
    return rc;
}

static int text_req(kurer *k, req_kind kind, const char *to, int level, const char *text,
                    int timeout_ms, req **out)
{
    req *r = NULL;
    int rc = req_new(k, kind, timeout_ms, &r);
    if (rc == 0 && (rc = text_args(k, to, text, r)) != 0)
        req_free(r);
    if (rc == 0) {
        r->level = level;
        *out = r;
    }
    return rc;
}

int kurer_send_async(kurer *k, const char *to, int level, const char *text, int timeout_ms,
                     kurer_done_fn done, void *ud)
{
    req *r = NULL;
    int rc = text_req(k, REQ_SEND, to, level, text, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

int kurer_queue_async(kurer *k, const char *to, int level, const char *text, int timeout_ms,
                      kurer_done_fn done, void *ud)
{
    req *r = NULL;
    int rc = text_req(k, REQ_QUEUE, to, level, text, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

static int id_req(kurer *k, int64_t message_id, int timeout_ms, req **out)
{
    if (message_id <= 0)
        return KURER_EINVAL;
    int rc = req_new(k, REQ_SEND_QUEUED, timeout_ms, out);
    if (rc == 0)
        (*out)->res.message_id = message_id;
    return rc;
}

int kurer_send_queued_async(kurer *k, int64_t message_id, int timeout_ms, kurer_done_fn done,
                            void *ud)
{
    req *r = NULL;
    int rc = id_req(k, message_id, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

static int user_req(kurer *k, const char *user, int timeout_ms, req **out)
{
    if (user == NULL || kurer_user_check(user) != 0)
        return KURER_EINVAL;
    int rc = req_new(k, REQ_REFRESH, timeout_ms, out);
    if (rc == 0)
        memcpy((*out)->to, user, strlen(user) + 1);
    return rc;
}

int kurer_refresh_async(kurer *k, const char *user, int timeout_ms, kurer_done_fn done, void *ud)
{
    req *r = NULL;
    int rc = user_req(k, user, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

int kurer_flush_async(kurer *k, int timeout_ms, kurer_done_fn done, void *ud)
{
    req *r = NULL;
    int rc = req_new(k, REQ_FLUSH, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

static int enrolled(kurer *k)
{
    kurer__hlock_take(k);
    int rc = k->own.chain == NULL ? KURER_ESTATE : 0; /* import the issued chain first */
    kurer__hlock_give(k);
    return rc;
}

int kurer_connect_async(kurer *k, int timeout_ms, kurer_done_fn done, void *ud)
{
    req *r = NULL;
    int rc = k == NULL ? KURER_EINVAL : enrolled(k);
    if (rc == 0)
        rc = req_new(k, REQ_CONNECT, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

int kurer_wake(kurer *k, int timeout_ms, kurer_done_fn done, void *ud)
{
    req *r = NULL;
    int rc = k == NULL ? KURER_EINVAL : enrolled(k);
    if (rc == 0)
        rc = req_new(k, REQ_WAKE, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

void kurer_set_foreground(kurer *k, int foreground)
{
    if (k != NULL)
        kurer__net_set_foreground(k, foreground);
}

void kurer_network_changed(kurer *k)
{
    if (k != NULL)
        kurer__net_network_changed(k);
}

/* The library's log lines to the app's fn: process-wide, as logging is (set before threads). */
static kurer_log_fn g_log_fn;

static void log_line(void *ud, kurer_log_level level, const char *line)
{
    kurer_log_fn fn = g_log_fn;
    if (fn != NULL)
        fn(ud, (int)level, line);
}

void kurer_set_log(kurer_log_fn fn, void *ud, int min_level)
{
    if (min_level < KURER_LOG_DEBUG || min_level > KURER_LOG_OFF)
        min_level = KURER_LOG_INFO;
    g_log_fn = fn;
    kurer_log_set_fn(fn != NULL ? log_line : NULL, ud, (kurer_log_level)min_level);
}

void kurer_disconnect_async(kurer *k)
{
    if (k != NULL)
        kurer__net_want(k, 0, 0);
}

kurer_conn_state kurer_state(const kurer *k, int *reason)
{
    if (k == NULL)
        return KURER_CONN_OFFLINE;
    return (kurer_conn_state)kurer__net_state(k, reason);
}

int kurer_connected(const kurer *k)
{
    return kurer_state(k, NULL) == KURER_CONN_ONLINE;
}

/* ---- the blocking layer ---- */

/* Blocking here would wait for the thread that must do the work. */
static int may_block(kurer *k)
{
    return k != NULL && !kurer__net_on_library_thread(k) && !kurer__hlock_mine(k);
}

/* Submits r and waits for its completion (it always comes: every request ends by its
 * deadline). Returns the result's error; *res (may be NULL) gets the result. */
static int run_blocking(kurer *k, req *r, kurer_result *res)
{
    int rc = kurer__job_wait(k, &r->job, &r->wait);
    if (rc == 0) {
        rc = r->res.err;
        if (res != NULL)
            *res = r->res;
    }
    req_free(r);
    return rc;
}

/* ---- online enrolment ---- */

static int enrol_req(kurer *k, req_kind kind, const char *code, int timeout_ms, req **out)
{
    req *r = NULL;
    int rc = k == NULL ? KURER_EINVAL : 0;
    if (rc == 0 && enrolled(k) == 0)
        rc = KURER_ESTATE; /* enrolled already */
    if (rc == 0 && kind == REQ_ENROL_SUBMIT && (code == NULL || strlen(code) > 64))
        rc = KURER_EINVAL;
    if (rc == 0)
        rc = req_new(k, kind, timeout_ms, &r);
    if (rc == 0 && code != NULL) {
        r->text_len = strlen(code) + 1;
        if ((r->text = malloc(r->text_len)) == NULL) {
            req_free(r);
            return KURER_ENOMEM;
        }
        memcpy(r->text, code, r->text_len);
    }
    if (rc == 0)
        *out = r;
    return rc;
}

int kurer_enrol_submit_async(kurer *k, const char *code, int timeout_ms, kurer_done_fn done,
                             void *ud)
{
    req *r = NULL;
    int rc = enrol_req(k, REQ_ENROL_SUBMIT, code, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

int kurer_enrol_poll_async(kurer *k, int timeout_ms, kurer_done_fn done, void *ud)
{
    req *r = NULL;
    int rc = enrol_req(k, REQ_ENROL_POLL, NULL, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

int kurer_enrol_submit(kurer *k, const char *code, int timeout_ms)
{
    req *r = NULL;
    if (!may_block(k))
        return k == NULL ? KURER_EINVAL : KURER_ESTATE;
    int rc = enrol_req(k, REQ_ENROL_SUBMIT, code, timeout_ms, &r);
    return rc != 0 ? rc : run_blocking(k, r, NULL);
}

int kurer_enrol_poll(kurer *k, int timeout_ms, int *state)
{
    req *r = NULL;
    kurer_result res;
    if (state != NULL)
        *state = 0;
    if (!may_block(k))
        return k == NULL ? KURER_EINVAL : KURER_ESTATE;
    int rc = enrol_req(k, REQ_ENROL_POLL, NULL, timeout_ms, &r);
    if (rc == 0) {
        rc = run_blocking(k, r, &res);
        if (state != NULL)
            *state = res.enrol_state;
    }
    return rc;
}

int kurer_connect(kurer *k, int timeout_ms)
{
    if (!may_block(k))
        return k == NULL ? KURER_EINVAL : KURER_ESTATE;
    int rc = enrolled(k);
    return rc != 0 ? rc : kurer__net_wait_online(k, deadline_in(timeout_ms), 1);
}

void kurer_disconnect(kurer *k)
{
    if (!may_block(k)) {
        kurer_disconnect_async(k);
        return;
    }
    kurer__net_disconnect(k, deadline_in(2500));
}

int kurer_refresh(kurer *k, const char *user, int timeout_ms, size_t *devices)
{
    req *r = NULL;
    kurer_result res;
    if (!may_block(k))
        return k == NULL ? KURER_EINVAL : KURER_ESTATE;
    int rc = user_req(k, user, timeout_ms, &r);
    if (rc == 0 && (rc = run_blocking(k, r, &res)) == 0 && devices != NULL)
        *devices = res.devices;
    return rc;
}

static int text_blocking(kurer *k, req_kind kind, const char *to, int level, const char *text,
                         int timeout_ms, kurer_refusal *why, int64_t *message_id)
{
    req *r = NULL;
    kurer_result res;
    if (why != NULL)
        memset(why, 0, sizeof(*why));
    if (!may_block(k))
        return k == NULL ? KURER_EINVAL : KURER_ESTATE;
    int rc = text_req(k, kind, to, level, text, timeout_ms, &r);
    if (rc != 0)
        return rc;
    memset(&res, 0, sizeof(res));
    rc = run_blocking(k, r, &res);
    if (why != NULL)
        *why = res.why;
    if (rc == 0 && message_id != NULL)
        *message_id = res.message_id;
    return rc;
}

int kurer_queue(kurer *k, const char *to, int level, const char *text, int timeout_ms,
                kurer_refusal *why, int64_t *message_id)
{
    return text_blocking(k, REQ_QUEUE, to, level, text, timeout_ms, why, message_id);
}

int kurer_send(kurer *k, const char *to, int level, const char *text, int timeout_ms,
               kurer_refusal *why)
{
    return text_blocking(k, REQ_SEND, to, level, text, timeout_ms, why, NULL);
}

int kurer_send_queued(kurer *k, int64_t message_id, int timeout_ms, kurer_refusal *why)
{
    req *r = NULL;
    kurer_result res;
    if (why != NULL)
        memset(why, 0, sizeof(*why));
    if (!may_block(k))
        return k == NULL ? KURER_EINVAL : KURER_ESTATE;
    int rc = id_req(k, message_id, timeout_ms, &r);
    if (rc != 0)
        return rc;
    memset(&res, 0, sizeof(res));
    rc = run_blocking(k, r, &res);
    if (why != NULL)
        *why = res.why;
    return rc;
}

int kurer_flush(kurer *k, int timeout_ms)
{
    req *r = NULL;
    if (!may_block(k))
        return k == NULL ? KURER_EINVAL : KURER_ESTATE;
    int rc = req_new(k, REQ_FLUSH, timeout_ms, &r);
    return rc != 0 ? rc : run_blocking(k, r, NULL);
}

int kurer_poll(kurer *k, int timeout_ms, unsigned flags)
{
    uint64_t deadline = deadline_in(timeout_ms);
    int rc = kurer_connect(k, timeout_ms);
    if (rc != 0)
        return rc;
    return kurer__net_wait_received(k, deadline, (flags & KURER_POLL_UNTIL_EMPTY) != 0);
}

int kurer_outbox_size(kurer *k)
{
    if (k == NULL)
        return KURER_EINVAL;
    kurer__hlock_take(k);
    int n = kurer__store_outbox_count(k->st);
    kurer__hlock_give(k);
    return n;
}
