/* kurer daemon: methods on worker threads (they may wait for the relay: a send waits up to its
 * timeout), and the library's events as JSON-RPC notifications. Both end as lines queued for
 * the main thread (daemon_post), which owns the connections. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "kurer/log.h"

void daemon_post(daemon_srv *s, dline *l)
{
    pthread_mutex_lock(&s->mu);
    if (s->l_tail != NULL)
        s->l_tail->next = l;
    else
        s->l_head = l;
    s->l_tail = l;
    pthread_mutex_unlock(&s->mu);
    char b = 1;
    ssize_t w = write(s->wake[1], &b, 1); /* full pipe: the main thread is awake already */
    (void)w;
}

void daemon_lines_free(daemon_srv *s)
{
    pthread_mutex_lock(&s->mu);
    dline *l = s->l_head;
    s->l_head = s->l_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (l != NULL) {
        dline *next = l->next;
        rpc_free_wiped(l->text, l->len);
        free(l);
        l = next;
    }
}

void daemon_submit(daemon_srv *s, djob *j)
{
    pthread_mutex_lock(&s->mu);
    if (s->j_tail != NULL)
        s->j_tail->next = j;
    else
        s->j_head = j;
    s->j_tail = j;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
}

/* A worker's method tells its caller something while it runs: a notification line to that
 * connection alone (dropped if it has gone). */
static void notify_caller(rpc_ctx *c, const char *method, json_t *params)
{
    daemon_srv *s = c->notify_ud;
    json_t *n = json_pack("{s:s,s:s,s:o}", "jsonrpc", "2.0", "method", method, "params", params);
    dline *l = calloc(1, sizeof(*l));
    if (n == NULL || l == NULL || rpc_dump_line(n, &l->text, &l->len) != 0) {
        json_decref(n);
        free(l);
        return;
    }
    json_decref(n);
    l->conn = c->conn;
    daemon_post(s, l);
}

int daemon_stopping(const daemon_srv *s)
{
    if (s == NULL)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    int st = s->stopping;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
    return st;
}

static void run_job(daemon_srv *s, djob *j)
{
    rpc_ctx c = {s->k, 0, NULL, s, notify_caller, s, j->conn};
    dline *l = calloc(1, sizeof(*l));
    char *text = NULL;
    size_t len = 0;
    int rc = rpc_respond(j->m, &c, j->params, j->id, &text, &len);
    if (rc != 0 && j->id != NULL)
        (void)rpc_error_line(j->id, RPC_INTERNAL_ERROR, "out of memory", NULL, &text, &len);
    json_decref(j->params);
    json_decref(j->id);
    if (l == NULL) { /* out of memory: the answer is lost (logged) */
        kurer_log(KURER_LOG_WARN, "daemon", "answer_lost",
                  (kurer_log_field[]){KURER_LOG_STR("method", j->m->name)}, 1);
        rpc_free_wiped(text, len);
        return;
    }
    l->conn = j->conn;
    l->response = 1;
    l->text = text;
    l->len = text != NULL ? len : 0;
    daemon_post(s, l);
}

static void *worker(void *arg)
{
    daemon_srv *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->j_head == NULL && !s->stopping)
            pthread_cond_wait(&s->work_cv, &s->mu);
        djob *j = s->j_head;
        if (j == NULL || s->stopping)
            break; /* stopping: what has not begun is dropped (its client is gone) */
        s->j_head = j->next;
        if (s->j_head == NULL)
            s->j_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        run_job(s, j);
        free(j);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int daemon_workers_start(daemon_srv *s)
{
    for (; s->n_workers < DAEMON_WORKERS; s->n_workers++)
        if (pthread_create(&s->workers[s->n_workers], NULL, worker, s) != 0)
            return refuse(KURER_ENOMEM, "cannot start the daemon's workers");
    return 0;
}

void daemon_workers_stop(daemon_srv *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    /* A call sees the stop within a frame and hangs up: up to 2 s for the peer to be told. */
    for (int i = 0; i < 100 && rpc_call_running(); i++) {
        struct timespec d = {0, 20 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    /* What the workers wait for ends now: the session worker acks what is committed, then the
     * connection closes (kurer_disconnect, at most 2.5 s), and a send still waiting ends with
     * its message in the outbox, sent by the next process that connects. */
    kurer_disconnect(s->k);
    for (int i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    s->n_workers = 0;
    while (s->j_head != NULL) {
        djob *j = s->j_head;
        s->j_head = j->next;
        json_decref(j->params);
        json_decref(j->id);
        free(j);
    }
    s->j_tail = NULL;
}

/* ---- the library's events (library thread) */

static void notify(daemon_srv *s, unsigned kind, const char *method, json_t *params)
{
    json_t *n = json_pack("{s:s,s:s,s:o}", "jsonrpc", "2.0", "method", method, "params", params);
    dline *l = calloc(1, sizeof(*l));
    if (n == NULL || l == NULL || rpc_dump_line(n, &l->text, &l->len) != 0) {
        kurer_log(KURER_LOG_WARN, "daemon", "notification_lost",
                  (kurer_log_field[]){KURER_LOG_STR("method", method)}, 1);
        json_decref(n);
        free(l);
        return;
    }
    json_decref(n);
    l->kind = kind;
    daemon_post(s, l);
}

static void on_message(void *ud, const kurer_message *m)
{
    json_t *j = rpc_message_json(m);
    if (j != NULL)
        notify(ud, SUB_MESSAGE, "message", j);
}

static void on_refused(void *ud, const char *from, uint32_t device_id, int err)
{
    notify(ud, SUB_REFUSED, "refused",
           json_pack("{s:s,s:I,s:s,s:s}", "from", from, "device", (json_int_t)device_id, "name",
                     kurer_err_name(err), "message", kurer_strerror(err)));
}

static void on_state(void *ud, kurer_conn_state st, int why)
{
    static const char *const names[] = {"offline", "connecting", "online", "waiting"};
    notify(ud, SUB_STATE, "state",
           json_pack("{s:s,s:s}", "state", (unsigned)st < 4 ? names[st] : "offline", "reason",
                     why != 0 ? kurer_err_name(why) : ""));
}

static void notify_key_change(void *ud, const kurer_key_change *c)
{
    json_t *j = rpc_key_change_json(c);
    if (j != NULL)
        notify(ud, SUB_KEY_CHANGE, "key_change", j);
}

static void on_receipt(void *ud, const kurer_receipt_info *r)
{
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:I,s:b}", "peer", r->peer, "user", r->user, "device",
                          (json_int_t)r->device_id, "type", r->read ? "read" : "delivered",
                          "sent_at", (json_int_t)r->sent_at, "outgoing", r->outgoing);
    if (j != NULL && r->group[0] != '\0') /* for a message of that group */
        json_object_set_new(j, "group", json_string(r->group));
    notify(ud, SUB_RECEIPT, "receipt", j);
}

static void on_queue_empty(void *ud)
{
    notify(ud, SUB_QUEUE_EMPTY, "queue_empty", json_object());
}

void daemon_events(daemon_srv *s)
{
    kurer_events ev = {.on_message = s->msg_subs > 0 ? on_message : NULL,
                       .on_refused = on_refused,
                       .on_state = on_state,
                       .on_queue_empty = on_queue_empty,
                       .on_key_change = s->key_subs > 0 ? notify_key_change : NULL,
                       .on_receipt = on_receipt,
                       .ud = s};
    kurer_set_events(s->k, &ev);
}

void daemon_counters(const daemon_srv *s, json_t *into)
{
    json_t *d =
        json_pack("{s:I,s:I,s:I,s:I,s:I}", "connections_accepted", (json_int_t)s->accepted,
                  "peers_refused", (json_int_t)s->refused_peers, "connections_refused_full",
                  (json_int_t)s->refused_full, "requests_rejected", (json_int_t)s->bad_requests,
                  "clients_dropped_slow", (json_int_t)s->dropped_slow);
    if (d != NULL)
        json_object_set_new(into, "daemon", d);
}
