/* The connection half of a handle: the library thread and its loop, the relay connection with
 * reconnects, requests routed by id, the workers, and the events to the application (net.h). */
#include "net.h"

#include "call.h"
#include "net_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "home.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/net.h"
#include "kurer/util.h"

static uint64_t now_ms(void)
{
    return kurer_time_mono_ms();
}

/* Waits on c until deadline (monotonic ms); 0 when woken, KURER_ETIMEOUT at the deadline. */
int kurer__net_timed_wait(uv_cond_t *c, uv_mutex_t *m, uint64_t deadline)
{
    uint64_t now = now_ms();
    if (now >= deadline)
        return KURER_ETIMEOUT;
    uint64_t left = deadline - now;
    if (left > 60000)
        left = 60000;
    (void)uv_cond_timedwait(c, m, left * 1000000ull);
    return 0;
}

/* ---- the library thread: the connection ---- */

static void fail_waiters(kurer__net *n, int rc)
{
    for (waiter *w = n->pending; w != NULL; w = w->next) {
        w->rc = rc;
        w->done = 1;
    }
    n->pending = NULL;
}

/* Under mu: the connection's idle deadline (twice the ping interval): in the foreground a ping
 * after 30 s without input (or half the relay's idle timeout, if shorter), in the background at
 * 80 % of the relay's idle timeout less a second (at most 10 min: NAT mappings). A relay that says
 * nothing is taken to close after 120 s. */
static uint64_t idle_for_locked(const kurer__net *n)
{
    uint64_t relay = n->relay_idle_ms != 0 ? n->relay_idle_ms : 120000;
    uint64_t ping = relay / 2 < 30000 ? relay / 2 : 30000;
    /* (less a second: the connection's timer looks once a second, and so does the relay's) */
    if (n->background && relay * 4 / 5 > relay / 2 + 1000)
        ping = relay * 4 / 5 - 1000;
    if (ping > 600000)
        ping = 600000;
    if (ping < 1000)
        ping = 1000;
    return 2 * ping;
}

static void conn_established(kurer_conn *c, const uint8_t *payload, size_t len)
{
    kurer__net *n = kurer_conn_data(c);
    kurer_handshake_accept a;
    int rc = kurer_handshake_accept_decode(payload, len, &a);
    if (rc == 0 && a.has_error)
        rc = kurer_err_known(a.error_code) ? a.error_code : KURER_EINTERNAL;
    uv_mutex_lock(&n->mu);
    if (rc != 0) {
        n->closed_rc = rc;
    } else {
        n->established = 1;
        n->relay_idle_ms = a.idle_timeout_ms;
        kurer_conn_set_idle(c, idle_for_locked(n));
    }
    uv_cond_broadcast(&n->cond);
    uv_mutex_unlock(&n->mu);
    if (rc != 0)
        kurer_conn_close(c, rc);
}

static void conn_record(kurer_conn *c, uint8_t *data, size_t len)
{
    kurer__net *n = kurer_conn_data(c);
    push *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        kurer_conn_close(c, KURER_ENOMEM);
        return;
    }
    int rc = kurer_server_frame_decode(data, len, &p->f);
    if (rc != 0) {
        free(p);
        uv_mutex_lock(&n->mu);
        n->closed_rc = rc;
        uv_mutex_unlock(&n->mu);
        kurer_conn_close(c, rc);
        return;
    }
    uv_mutex_lock(&n->mu);
    if (p->f.request_id != 0) {
        waiter **pw = &n->pending;
        while (*pw != NULL && (*pw)->id != p->f.request_id)
            pw = &(*pw)->next;
        waiter *w = *pw;
        kurer_server_frame *f = w != NULL ? malloc(sizeof(*f)) : NULL;
        if (f != NULL) {
            *pw = w->next;
            *f = p->f;
            w->reply = f;
            w->done = 1;
            uv_cond_broadcast(&n->cond);
        } else {
            if (w != NULL) { /* no memory for the answer: the request fails now, not later */
                *pw = w->next;
                w->rc = KURER_ENOMEM;
                w->done = 1;
                uv_cond_broadcast(&n->cond);
            }
            kurer_server_frame_release(&p->f); /* a pong, or an answer nobody waits for */
        }
        uv_mutex_unlock(&n->mu);
        free(p);
        return;
    }
    p->gen = n->gen;
    if (p->f.body == KURER_SERVER_ERROR) /* an error push announces a close */
        n->closed_rc = kurer_err_known(p->f.u.error.code) ? p->f.u.error.code : KURER_EINTERNAL;
    if (n->p_tail != NULL)
        n->p_tail->next = p;
    else
        n->p_head = p;
    n->p_tail = p;
    uv_cond_signal(&n->sess_cond);
    uv_mutex_unlock(&n->mu);
}

static int send_encoded(kurer__net *n, kurer_client_frame *f)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int rc = kurer_client_frame_encode(f, &b);
    if (rc == 0)
        rc = kurer_conn_send(n->conn, b.data, b.len);
    kurer_buf_release(&b);
    return rc;
}

static void conn_idle(kurer_conn *c)
{
    kurer__net *n = kurer_conn_data(c);
    kurer_client_frame f;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_PING;
    f.u.ping.client_time = kurer_time_unix() * 1000;
    uv_mutex_lock(&n->mu);
    f.request_id = ++n->next_id;
    int up = n->established;
    uv_mutex_unlock(&n->mu);
    if (up)
        (void)send_encoded(n, &f);
}

/* Errors after which the library does not reconnect by itself (the relay refused us, or will
 * never accept this configuration): the next request tries again. */
static int transient(int rc)
{
    switch (rc) {
    case KURER_ECLOSED:
    case KURER_ETIMEOUT:
    case KURER_EIO:
    case KURER_ENOMEM:
    case KURER_EBUSY:
    case KURER_ECONNREFUSED:
    case KURER_EUNREACHABLE:
    case KURER_ERESOLVE:
    case KURER_ELIMIT:
    case KURER_ESTORAGE:
        return 1;
    default:
        return 0;
    }
}

static void retry_fired(uv_timer_t *t);
static void maybe_attempt_locked(kurer__net *n);

/* Under mu: asks the library thread to close the connection of generation gen (if it is still
 * the current one when the library thread looks). */
static void close_locked(kurer__net *n, uint64_t gen)
{
    n->close_requested = 1;
    n->close_gen = gen;
    uv_async_send(&n->wake);
}

/* Under mu, library thread: schedules the next attempt after the backoff (with jitter: a
 * relay restart must not bring every client back in the same millisecond). */
static void backoff_locked(kurer__net *n)
{
    n->phase = PHASE_BACKOFF;
    uint32_t b = n->backoff_ms ? n->backoff_ms : BACKOFF_FIRST_MS;
    uint32_t wait = b / 2 + kurer_random_uniform(b / 2 + 1);
    n->backoff_ms = b * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b * 2;
    uv_timer_start(&n->retry, retry_fired, wait, 0);
}

static void conn_closed(kurer_conn *c, int err)
{
    kurer__net *n = kurer_conn_data(c);
    if (n == NULL)
        return;
    uv_mutex_lock(&n->mu);
    if (n->closed_rc == 0)
        n->closed_rc = err != 0 ? err : KURER_ECLOSED;
    int rc = n->closed_rc;
    n->conn = NULL;
    n->established = 0;
    n->closed_gen = n->gen;
    n->close_requested = 0;
    fail_waiters(n, rc);
    int was_online = n->phase == PHASE_ONLINE;
    if (was_online) {
        n->marks.online = 0;
        n->marks.lost++;
        n->marks.closed_rc = rc;
        /* Replaced by a newer connection of this device (KURER_EBUSY): the other one wins;
         * reconnecting would only take it back, and again. */
        if (!transient(rc) || rc == KURER_EBUSY)
            n->want = 0;
        /* The backoff starts again only after a connection that stayed up: a relay that
         * accepts and drops at once is not hammered. */
        if (kurer_time_mono_ms() - n->online_since >= STABLE_MS)
            n->backoff_ms = 0;
        if (n->want && !n->stopping && !n->kick_next)
            backoff_locked(n);
        else
            n->phase = PHASE_IDLE; /* (a network change: again at once) */
        n->kick_next = 0;
        kurer__event_state_locked(
            n, n->phase == PHASE_BACKOFF ? KURER_CONN_WAITING : KURER_CONN_OFFLINE, rc);
    }
    maybe_attempt_locked(n);
    uv_cond_broadcast(&n->cond);
    uv_cond_signal(&n->sess_cond);
    uv_mutex_unlock(&n->mu);
    if (was_online)
        kurer_log(KURER_LOG_INFO, "client", "disconnected",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
}

static const kurer_conn_cbs CBS = {
    .on_established = conn_established,
    .on_record = conn_record,
    .on_idle = conn_idle,
    .on_close = conn_closed,
};

/* Under mu: starts an attempt if one is wanted and none runs. */
static void maybe_attempt_locked(kurer__net *n)
{
    if (n->want && n->phase == PHASE_IDLE && !n->stopping && n->conn == NULL) {
        n->phase = PHASE_ATTEMPT;
        n->attempt_requested = 1;
        uv_cond_signal(&n->sess_cond);
    }
}

static void retry_fired(uv_timer_t *t)
{
    kurer__net *n = t->data;
    uv_mutex_lock(&n->mu);
    if (n->phase == PHASE_BACKOFF)
        n->phase = PHASE_IDLE;
    maybe_attempt_locked(n);
    uv_mutex_unlock(&n->mu);
}

static void close_handles(kurer__net *n)
{
    if (n->conn != NULL) {
        kurer_conn_set_data(n->conn, NULL);
        kurer_conn_close(n->conn, 0);
        n->conn = NULL;
    }
    kurer__calls_close_handles(n->k);
    uv_close((uv_handle_t *)&n->retry, NULL);
    uv_close((uv_handle_t *)&n->wake, NULL);
}

/* Library thread: connects where the session worker asked (under mu). */
static void start_connect_locked(kurer__net *n)
{
    kurer *k = n->k;
    n->connect_pending = 0;
    kurer_net_limits lim = kurer_net_limits_default();
    int rc =
        kurer_conn_connect(&n->conn, &n->loop, (const struct sockaddr *)&n->addr, &lim, &CBS,
                           KURER_NOISE_IK, k->own.noise_priv, n->relay_key, n->hs, n->hs_len, n);
    kurer_memzero(n->hs, n->hs_len);
    free(n->hs);
    n->hs = NULL;
    if (rc != 0) {
        n->conn = NULL;
        n->closed_rc = rc;
        n->closed_gen = n->gen;
        uv_cond_broadcast(&n->cond);
    }
}

/* Under mu: the submitted requests join the workers' queue, in order. */
static void hand_to_workers_locked(kurer__net *n)
{
    if (n->s_head == NULL)
        return;
    if (n->j_tail != NULL)
        n->j_tail->next = n->s_head;
    else
        n->j_head = n->s_head;
    n->j_tail = n->s_tail;
    n->s_head = n->s_tail = NULL;
}

static void on_wake(uv_async_t *a)
{
    kurer__net *n = a->data;
    uv_mutex_lock(&n->mu);
    if (n->connect_pending)
        start_connect_locked(n);
    if (n->retry_pending) {
        n->retry_pending = 0;
        if (n->phase == PHASE_IDLE && n->want && !n->stopping && !n->kick_next)
            backoff_locked(n);
        n->kick_next = 0;
    }
    if (n->idle_dirty) {
        n->idle_dirty = 0;
        if (n->conn != NULL && n->established)
            kurer_conn_set_idle(n->conn, idle_for_locked(n));
    }
    kurer_conn *dead = NULL;
    if (n->net_changed) { /* the old path is likely gone: no goodbye, no waiting */
        n->net_changed = 0;
        dead = n->conn;
    }
    if (!n->want && n->phase == PHASE_BACKOFF) {
        uv_timer_stop(&n->retry);
        n->phase = PHASE_IDLE;
    }
    /* A close asked for the connection of this generation (a stale request is dropped). */
    kurer_conn *to_close = n->close_requested && n->close_gen == n->gen ? n->conn : NULL;
    n->close_requested = 0;
    if (n->s_head != NULL) { /* requests: to the workers' queue */
        hand_to_workers_locked(n);
        uv_cond_broadcast(&n->work_cond);
    }
    outq *o = n->o_head;
    n->o_head = n->o_tail = NULL;
    kurer__job *d = n->d_head;
    n->d_head = n->d_tail = NULL;
    event *e = n->e_head;
    n->e_head = n->e_tail = NULL;
    maybe_attempt_locked(n);
    int final = n->final;
    kurer_conn *conn = n->established ? n->conn : NULL;
    uint64_t gen = n->gen;
    uv_mutex_unlock(&n->mu);
    /* What the workers queued goes out before a close asked for in the same turn (acks). */
    while (o != NULL) {
        outq *next = o->next;
        if (conn != NULL && o->gen == gen &&
            kurer_conn_send(conn, o->data, o->len) == KURER_ELIMIT) {
            kurer_conn_close(conn, KURER_ELIMIT); /* the relay does not read: give up */
            conn = to_close = NULL;
        }
        free(o);
        o = next;
    }
    if (dead != NULL)
        kurer_conn_close(dead, KURER_ECLOSED);
    else if (to_close != NULL)
        kurer_conn_close_after_flush(to_close, 0);
    while (e != NULL) {
        event *next = e->next;
        kurer__event_dispatch(n, e);
        kurer__event_free(e);
        e = next;
    }
    while (d != NULL) {
        kurer__job *next = d->next;
        d->done(n->k, d);
        d = next;
    }
    if (final)
        close_handles(n);
}

static void library_thread(void *arg)
{
    kurer__net *n = arg;
    (void)uv_run(&n->loop, UV_RUN_DEFAULT);
}

/* ---- the session worker ---- */

/* Under mu: the attempt ends; rc 0 means set up. */
static void attempt_end_locked(kurer__net *n, int rc)
{
    n->marks.attempts_done++;
    n->marks.last_attempt_rc = rc;
    if (rc == 0) {
        n->phase = PHASE_ONLINE;
        n->marks.online = 1;
        n->online_since = kurer_time_mono_ms();
    } else {
        n->phase = PHASE_IDLE;
        if (!transient(rc))
            n->want = 0; /* refused: the next request tries again, not a timer */
        if (n->want && !n->stopping) {
            n->retry_pending = 1;
            uv_async_send(&n->wake);
        }
    }
    uv_cond_broadcast(&n->cond);
}

static void attempt(kurer__net *n)
{
    kurer *k = n->k;
    struct sockaddr_storage addr;
    uint8_t *hs = NULL, relay_key[KURER_KEY_LEN];
    size_t hs_len = 0;
    uint64_t deadline = now_ms() + HANDSHAKE_WAIT_MS;
    uv_mutex_lock(&n->mu);
    kurer__event_state_locked(n, KURER_CONN_CONNECTING, 0);
    uv_mutex_unlock(&n->mu);
    uv_mutex_lock(&n->mu);
    uint64_t epoch = n->relay_epoch;
    uv_mutex_unlock(&n->mu);
    int rc = kurer__engine_hello(k, &addr, relay_key, &hs, &hs_len);
    uv_mutex_lock(&n->mu);
    if (rc == 0 && (!n->want || n->stopping || n->relay_epoch != epoch))
        rc = KURER_ECLOSED;
    uint64_t gen = ++n->gen;
    if (rc == 0) {
        n->addr = addr;
        memcpy(n->relay_key, relay_key, sizeof(relay_key));
        if (n->hs != NULL) { /* an earlier attempt's, never sent */
            kurer_memzero(n->hs, n->hs_len);
            free(n->hs);
        }
        n->hs = hs;
        n->hs_len = hs_len;
        hs = NULL;
        n->closed_rc = 0;
        n->connect_pending = 1;
        uv_async_send(&n->wake);
        while (!n->established && n->closed_gen != gen && !n->stopping &&
               kurer__net_timed_wait(&n->cond, &n->mu, deadline) == 0)
            ;
        if (!n->established) {
            rc = n->closed_gen == gen && n->closed_rc != 0 ? n->closed_rc : KURER_ETIMEOUT;
            /* Closed before the handshake finished: the relay could not read our first message
             * (wrong relay key) or is not a Kurér relay. A refusal arrives inside it. */
            if (rc == KURER_ECLOSED)
                rc = KURER_EHANDSHAKE;
            if (n->closed_gen != gen)
                close_locked(n, gen);
        }
    }
    uv_mutex_unlock(&n->mu);
    if (hs != NULL) {
        kurer_memzero(hs, hs_len);
        free(hs);
    }
    if (rc == 0) {
        kurer_log(KURER_LOG_INFO, "client", "connected", NULL, 0);
        kurer__hlock_take(k);
        rc = kurer__engine_setup(k, now_ms() + SETUP_WAIT_MS);
        kurer__hlock_give(k);
    }
    uv_mutex_lock(&n->mu);
    if (rc == 0 && (n->closed_gen == gen || !n->established))
        rc = n->closed_rc != 0 ? n->closed_rc : KURER_ECLOSED;
    if (rc == 0 && n->relay_epoch != epoch)
        rc = KURER_ECLOSED; /* the relay changed meanwhile: again, to the new one */
    if (rc != 0 && n->closed_gen != gen)
        close_locked(n, gen);
    attempt_end_locked(n, rc);
    int retry = rc != 0 && n->want && !n->stopping;
    kurer__event_state_locked(n,
                              rc == 0 ? KURER_CONN_ONLINE
                              : retry ? KURER_CONN_WAITING
                                      : KURER_CONN_OFFLINE,
                              rc);
    uv_mutex_unlock(&n->mu);
}

static void session_thread(void *arg)
{
    kurer__net *n = arg;
    kurer *k = n->k;
    uint64_t next_tick = now_ms() + TICK_MS;
    uv_mutex_lock(&n->mu);
    while (!n->stopping) {
        if (n->attempt_requested) {
            n->attempt_requested = 0;
            n->sess_busy = 1;
            uv_mutex_unlock(&n->mu);
            attempt(n);
            uv_mutex_lock(&n->mu);
        } else if (n->p_head != NULL) {
            push *p = n->p_head;
            n->p_head = n->p_tail = NULL;
            n->sess_busy = 1;
            uv_mutex_unlock(&n->mu);
            /* The home lock per push: the library thread (an unreported mark, a home call
             * of a callback) waits for one delivery at most, never for a whole batch. */
            while (p != NULL) {
                push *next = p->next;
                kurer__hlock_take(k);
                kurer__engine_push(k, &p->f, p->gen, now_ms() + SETUP_WAIT_MS);
                kurer__hlock_give(k);
                kurer_server_frame_release(&p->f);
                free(p);
                p = next;
            }
            kurer__hlock_take(k);
            kurer__engine_acks(k);
            kurer__hlock_give(k);
            uv_mutex_lock(&n->mu);
        } else if (n->replay_requested) {
            n->replay_requested = 0;
            uint64_t seq = n->replay_seq;
            uv_mutex_unlock(&n->mu);
            kurer__hlock_take(k);
            kurer__engine_replay(k);
            kurer__hlock_give(k);
            kurer__event_replayed(k, seq);
            uv_mutex_lock(&n->mu);
        } else if (now_ms() >= next_tick) {
            next_tick = now_ms() + TICK_MS;
            int online = n->phase == PHASE_ONLINE;
            uv_mutex_unlock(&n->mu);
            kurer__hlock_take(k);
            kurer__engine_tick(k, now_ms() + SETUP_WAIT_MS, online);
            kurer__hlock_give(k);
            uv_mutex_lock(&n->mu);
        } else {
            n->sess_busy = 0;
            uv_cond_broadcast(&n->cond);
            (void)kurer__net_timed_wait(&n->sess_cond, &n->mu, next_tick);
        }
    }
    uv_mutex_unlock(&n->mu);
}

/* ---- request workers ---- */

static void job_done_locked(kurer__net *n, kurer__job *j)
{
    j->next = NULL;
    if (n->d_tail != NULL)
        n->d_tail->next = j;
    else
        n->d_head = j;
    n->d_tail = j;
    uv_async_send(&n->wake);
}

static void worker_thread(void *arg)
{
    kurer__net *n = arg;
    uv_mutex_lock(&n->mu);
    for (;;) {
        while (n->j_head == NULL && !n->stopping)
            uv_cond_wait(&n->work_cond, &n->mu);
        kurer__job *j = n->j_head;
        if (j == NULL)
            break;
        n->j_head = j->next;
        if (n->j_head == NULL)
            n->j_tail = NULL;
        if (n->stopping) {
            j->rc = KURER_ECLOSED;
        } else {
            uv_mutex_unlock(&n->mu);
            kurer__hlock_take(n->k);
            j->run(n->k, j);
            kurer__hlock_give(n->k);
            uv_mutex_lock(&n->mu);
        }
        if (j->done != NULL)
            job_done_locked(n, j);
    }
    uv_mutex_unlock(&n->mu);
}

int kurer__net_submit(kurer *k, kurer__job *j)
{
    kurer__net *n = k->net;
    int rc = 0;
    j->next = NULL;
    uv_mutex_lock(&n->mu);
    if (n->stopping)
        rc = KURER_ECLOSED;
    while (rc == 0 && n->n_workers < WORKERS) {
        if (uv_thread_create(&n->workers[n->n_workers], worker_thread, n) != 0) {
            if (n->n_workers == 0)
                rc = KURER_ENOMEM;
            break;
        }
        n->n_workers++;
    }
    if (rc == 0) { /* to the library thread, which hands it to the workers */
        if (n->s_tail != NULL)
            n->s_tail->next = j;
        else
            n->s_head = j;
        n->s_tail = j;
    }
    uv_mutex_unlock(&n->mu);
    if (rc == 0)
        uv_async_send(&n->wake);
    return rc;
}

int kurer__net_message_take(kurer *k, int64_t message_rowid, uint64_t deadline)
{
    kurer__net *n = k->net;
    int rc = 0;
    int depth = kurer__hlock_release(k);
    uv_mutex_lock(&n->mu);
    for (;;) {
        int busy = 0;
        for (size_t i = 0; i < n->n_busy; i++)
            busy |= n->busy_msgs[i] == message_rowid;
        if ((!busy && n->n_busy < WORKERS + 1) || n->stopping)
            break;
        if ((rc = kurer__net_timed_wait(&n->cond, &n->mu, deadline)) != 0)
            break;
    }
    if (rc == 0 && n->stopping)
        rc = KURER_ECLOSED;
    if (rc == 0)
        n->busy_msgs[n->n_busy++] = message_rowid;
    uv_mutex_unlock(&n->mu);
    kurer__hlock_reacquire(k, depth);
    return rc;
}

void kurer__net_message_give(kurer *k, int64_t message_rowid)
{
    kurer__net *n = k->net;
    uv_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->n_busy; i++)
        if (n->busy_msgs[i] == message_rowid) {
            n->busy_msgs[i] = n->busy_msgs[--n->n_busy];
            break;
        }
    uv_cond_broadcast(&n->cond);
    uv_mutex_unlock(&n->mu);
}

/* ---- requests on the wire ---- */

int kurer__net_enqueue_locked(kurer__net *n, kurer_client_frame *f)
{
    if (n->conn == NULL || !n->established || n->stopping)
        return n->closed_rc != 0 ? n->closed_rc : KURER_ECLOSED;
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int rc = kurer_client_frame_encode(f, &b);
    outq *o = rc == 0 ? malloc(sizeof(*o) + b.len) : NULL;
    if (rc == 0 && o == NULL)
        rc = KURER_ENOMEM;
    if (rc == 0) {
        o->next = NULL;
        o->gen = n->gen;
        o->len = b.len;
        memcpy(o->data, b.data, b.len);
        if (n->o_tail != NULL)
            n->o_tail->next = o;
        else
            n->o_head = o;
        n->o_tail = o;
        uv_async_send(&n->wake);
    }
    kurer_buf_release(&b);
    return rc;
}

int kurer__send_nowait(kurer *k, kurer_client_frame *f)
{
    kurer__net *n = k->net;
    uv_mutex_lock(&n->mu);
    f->request_id = ++n->next_id;
    int rc = kurer__net_enqueue_locked(n, f);
    uv_mutex_unlock(&n->mu);
    return rc;
}

int kurer__rpc(kurer *k, kurer_client_frame *f, uint64_t deadline, kurer_server_frame **out)
{
    kurer__net *n = k->net;
    waiter w;
    memset(&w, 0, sizeof(w));
    *out = NULL;
    uv_mutex_lock(&n->mu);
    f->request_id = w.id = ++n->next_id;
    int rc = kurer__net_enqueue_locked(n, f);
    if (rc != 0) {
        uv_mutex_unlock(&n->mu);
        return rc;
    }
    w.next = n->pending;
    n->pending = &w;
    uv_mutex_unlock(&n->mu);
    int depth = kurer__hlock_release(k);
    uv_mutex_lock(&n->mu);
    while (!w.done && !n->stopping && kurer__net_timed_wait(&n->cond, &n->mu, deadline) == 0)
        ;
    if (!w.done) {
        for (waiter **pw = &n->pending; *pw != NULL; pw = &(*pw)->next)
            if (*pw == &w) {
                *pw = w.next;
                break;
            }
        w.rc = n->stopping ? KURER_ECLOSED : KURER_ETIMEOUT;
    }
    uv_mutex_unlock(&n->mu);
    kurer__hlock_reacquire(k, depth);
    if (w.reply == NULL)
        return w.rc != 0 ? w.rc : KURER_ECLOSED;
    if (w.reply->body == KURER_SERVER_ERROR) {
        rc = kurer_err_known(w.reply->u.error.code) ? w.reply->u.error.code : KURER_EINTERNAL;
        kurer__reply_free(w.reply);
        return rc;
    }
    *out = w.reply;
    return 0;
}

void kurer__reply_free(kurer_server_frame *r)
{
    if (r == NULL)
        return;
    kurer_server_frame_release(r);
    free(r);
}

/* ---- connection wishes and waits ---- */

/* Under mu: wants the connection or not. kick: asked for now (kurer_connect, a network change):
 * an attempt need not wait out the backoff. */
static void want_locked(kurer__net *n, int want, int kick)
{
    n->want = want;
    if (want && kick && n->phase == PHASE_BACKOFF) {
        n->phase = PHASE_IDLE;
        n->backoff_ms = 0;
    }
    if (!want && n->conn != NULL)
        close_locked(n, n->gen);
    uv_async_send(&n->wake);
}

void kurer__net_want(kurer *k, int want, int kick)
{
    kurer__net *n = k->net;
    uv_mutex_lock(&n->mu);
    want_locked(n, want, kick);
    uv_mutex_unlock(&n->mu);
}

void kurer__net_set_foreground(kurer *k, int foreground)
{
    kurer__net *n = k->net;
    uv_mutex_lock(&n->mu);
    n->background = !foreground;
    n->idle_dirty = 1;
    uv_mutex_unlock(&n->mu);
    uv_async_send(&n->wake);
}

void kurer__net_network_changed(kurer *k)
{
    kurer__net *n = k->net;
    uv_mutex_lock(&n->mu);
    if (n->want) {
        n->backoff_ms = 0;
        if (n->phase == PHASE_BACKOFF) {
            n->phase = PHASE_IDLE;
        } else if (n->conn != NULL) {
            n->net_changed = 1;
            n->kick_next = 1;
        }
    }
    uv_mutex_unlock(&n->mu);
    uv_async_send(&n->wake);
    kurer__calls_network_changed(k); /* the media link binds again */
}

void kurer__net_relay_changed(kurer *k)
{
    kurer__net *n = k->net;
    if (n == NULL)
        return;
    uv_mutex_lock(&n->mu);
    n->relay_epoch++;
    want_locked(n, 0, 0);
    uv_mutex_unlock(&n->mu);
}

int kurer__net_state(const kurer *k, int *reason)
{
    kurer__net *n = k->net;
    uv_mutex_lock(&n->mu);
    int s = n->phase == PHASE_ONLINE    ? KURER_CONN_ONLINE
            : n->phase == PHASE_ATTEMPT ? KURER_CONN_CONNECTING
            : n->phase == PHASE_BACKOFF ? KURER_CONN_WAITING
                                        : KURER_CONN_OFFLINE;
    if (reason != NULL)
        *reason = n->marks.last_attempt_rc != 0 ? n->marks.last_attempt_rc : n->marks.closed_rc;
    uv_mutex_unlock(&n->mu);
    return s;
}

int kurer__net_wait_online(kurer *k, uint64_t deadline, int kick)
{
    kurer__net *n = k->net;
    int depth = kurer__hlock_release(k);
    uv_mutex_lock(&n->mu);
    /* The attempt that runs now, or the next one: its result is ours. */
    uint64_t attempts0 = n->marks.attempts_done;
    want_locked(n, 1, kick);
    int rc = 0;
    while (rc == 0 && n->phase != PHASE_ONLINE && !n->stopping &&
           !(n->marks.attempts_done > attempts0 && n->phase != PHASE_ATTEMPT))
        rc = kurer__net_timed_wait(&n->cond, &n->mu, deadline);
    if (n->phase == PHASE_ONLINE)
        rc = 0;
    else if (n->stopping)
        rc = KURER_ECLOSED;
    else if (rc == 0)
        rc = n->marks.last_attempt_rc != 0 ? n->marks.last_attempt_rc : KURER_ECLOSED;
    uv_mutex_unlock(&n->mu);
    kurer__hlock_reacquire(k, depth);
    return rc;
}

int kurer__net_wait_received(kurer *k, uint64_t deadline, int until_empty)
{
    kurer__net *n = k->net;
    int depth = kurer__hlock_release(k); /* (a worker's wake: deliveries need the home) */
    uv_mutex_lock(&n->mu);
    uint64_t lost0 = n->marks.lost, gen = n->gen;
    int rc = 0;
    while (rc == 0 && n->marks.lost == lost0 && n->phase == PHASE_ONLINE && !n->stopping &&
           !(until_empty && n->marks.queue_empty_gen == gen))
        rc = kurer__net_timed_wait(&n->cond, &n->mu, deadline);
    if (until_empty && n->marks.queue_empty_gen == gen)
        rc = 0;
    else if (n->marks.lost != lost0 || n->phase != PHASE_ONLINE || n->stopping)
        rc = n->marks.closed_rc != 0 ? n->marks.closed_rc : KURER_ECLOSED;
    else if (rc == KURER_ETIMEOUT && !until_empty)
        rc = 0;
    uv_mutex_unlock(&n->mu);
    kurer__hlock_reacquire(k, depth);
    return rc;
}

void kurer__net_disconnect(kurer *k, uint64_t deadline)
{
    kurer__net *n = k->net;
    int depth = kurer__hlock_release(k);
    uv_mutex_lock(&n->mu);
    /* What the session worker holds is committed and acked first (or the wait ends). */
    while ((n->p_head != NULL || n->sess_busy) && n->conn != NULL &&
           kurer__net_timed_wait(&n->cond, &n->mu, deadline) == 0)
        ;
    want_locked(n, 0, 0);
    while ((n->conn != NULL || n->phase == PHASE_ATTEMPT) &&
           kurer__net_timed_wait(&n->cond, &n->mu, deadline) == 0)
        ;
    uv_mutex_unlock(&n->mu);
    kurer__hlock_reacquire(k, depth);
}

int kurer__net_on_library_thread(const kurer *k)
{
    if (k == NULL || k->net == NULL)
        return 0;
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &k->net->lib);
}

/* ---- start and stop ---- */

int kurer__net_start(kurer *k)
{
    kurer__net *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return KURER_ENOMEM;
    n->k = k;
    if (uv_loop_init(&n->loop) != 0) {
        free(n);
        return KURER_EIO;
    }
    if (uv_mutex_init(&n->mu) != 0 || uv_cond_init(&n->cond) != 0 ||
        uv_cond_init(&n->sess_cond) != 0 || uv_cond_init(&n->work_cond) != 0) {
        (void)uv_loop_close(&n->loop);
        free(n);
        return KURER_ENOMEM; /* (a failed init of these is not undone: the process is failing) */
    }
    uv_async_init(&n->loop, &n->wake, on_wake);
    n->wake.data = n;
    uv_timer_init(&n->loop, &n->retry);
    n->retry.data = n;
    k->net = n;
    if (kurer__calls_new(k, &n->loop) != 0 || uv_thread_create(&n->lib, library_thread, n) != 0) {
        kurer__calls_close_handles(k);
        uv_close((uv_handle_t *)&n->wake, NULL);
        uv_close((uv_handle_t *)&n->retry, NULL);
        (void)uv_run(&n->loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&n->loop);
        kurer__calls_free(k);
        k->net = NULL;
        free(n);
        return KURER_ENOMEM;
    }
    if (uv_thread_create(&n->sess, session_thread, n) != 0) {
        kurer__net_stop(k);
        return KURER_ENOMEM;
    }
    n->started_sess = 1;
    return 0;
}

void kurer__net_stop(kurer *k)
{
    kurer__net *n = k->net;
    if (n == NULL)
        return;
    uv_mutex_lock(&n->mu);
    n->want = 0;
    n->stopping = 1;
    hand_to_workers_locked(n); /* not handed out yet: the workers end them (KURER_ECLOSED) */
    uv_cond_broadcast(&n->cond);
    uv_cond_broadcast(&n->sess_cond);
    uv_cond_broadcast(&n->work_cond);
    uv_mutex_unlock(&n->mu);
    for (int i = 0; i < n->n_workers; i++)
        uv_thread_join(&n->workers[i]);
    if (n->started_sess)
        uv_thread_join(&n->sess);
    uv_mutex_lock(&n->mu);
    n->final = 1; /* the library thread delivers what is left, then closes its handles */
    uv_mutex_unlock(&n->mu);
    uv_async_send(&n->wake);
    uv_thread_join(&n->lib);
    (void)uv_run(&n->loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&n->loop);
    kurer__calls_free(k);
    while (n->p_head != NULL) {
        push *p = n->p_head;
        n->p_head = p->next;
        kurer_server_frame_release(&p->f);
        free(p);
    }
    while (n->o_head != NULL) {
        outq *o = n->o_head;
        n->o_head = o->next;
        free(o);
    }
    if (n->hs != NULL) {
        kurer_memzero(n->hs, n->hs_len);
        free(n->hs);
    }
    uv_cond_destroy(&n->cond);
    uv_cond_destroy(&n->sess_cond);
    uv_cond_destroy(&n->work_cond);
    uv_mutex_destroy(&n->mu);
    free(n);
    k->net = NULL;
}
