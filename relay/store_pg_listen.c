/* The listen connection of a relay node over PostgreSQL (cluster.h): non-blocking libpq on the
 * relay's loop, one uv_poll on the connection's socket, one query in flight at a time.
 *
 * States: WAIT (no connection; the tick asks for one once the backoff has passed), CONNECTING
 * (the connector thread of pg_loop.h, started before the relay serves, makes it), SETUP
 * (synchronous_commit off for the session, the schema that names the channel), LISTEN, UP
 * (notifications sent one query at a time, in queue order). A failed step, a query that takes
 * longer than KURER__PGL_QUERY_MAX_MS, or a silent connection that does not answer a ping loses the
 * connection: WAIT again. */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "kurer/certmsg.h"
#include "kurer/crypto.h"
#include "kurer/error.h"
#include "kurer/log.h"
#include "kurer/util.h"

#include "pg_loop.h"

#define TICK_MS     100
#define BACKOFF_MIN 50
#define BACKOFF_MAX 2000
#define PING_MS     5000 /* an idle connection is asked a question this often */
#define PREFIX_MAX  32
#define JOBS_MAX    (KURER__PGL_QUEUE_MAX / (KURER__PGL_PAYLOAD_MAX + 1)) /* notifications */
#define LOADS_MAX   4096 /* reads of single entries waiting; beyond, one read of them all */

enum { S_WAIT, S_CONNECTING, S_SETUP, S_LISTEN, S_UP };
enum { J_NOTIFY, J_LISTS, J_DEVICE, J_PING };

typedef struct job {
    struct job *next;
    int kind;
    int sent; /* its query is in flight: nothing more is appended */
    int keep; /* survives a lost connection (else dropped then) */
    int all;  /* J_LISTS: every list (else key_id's) */
    uint8_t key_id[KURER_KEY_ID_LEN];
    kurer_device_address dev; /* J_DEVICE */
    size_t prefix_len, len;
    char *text; /* J_NOTIFY: KURER__PGL_PAYLOAD_MAX + 1 bytes */
} job;

struct kurer_pgl {
    uv_loop_t *loop;
    char *conninfo; /* kurer_secure_alloc'd (it may hold a password) */
    kurer_pgl_cbs cbs;
    void *arg;
    PGconn *conn;
    kurer__pg_watch w;
    int state;
    int busy; /* a query (or the connect) is in flight */
    uint64_t busy_since_ms, last_io_ms, retry_at_ms, backoff_ms;
    uv_timer_t tick;
    kurer__pg_connector k;
    int open_handles; /* tick and the connector's async, until their closes complete */
    job *head, *tail;
    size_t n_jobs, n_loads; /* notifications, and reads (J_LISTS, J_DEVICE), queued */
    char channel[KURER__PGL_CHANNEL_MAX + 1];
    kurer_pgl_stats st;
};

static void on_poll(uv_poll_t *p, int status, int events);

static void free_conninfo(kurer_pgl *l)
{
    kurer_memzero(l->conninfo, strlen(l->conninfo));
    kurer_secure_free(l->conninfo);
}

static void log_pg(kurer_pgl *l, const char *event, const PGresult *r)
{
    const char *msg = r != NULL ? PQresultErrorMessage(r) : "";
    if ((msg == NULL || msg[0] == '\0') && l->conn != NULL)
        msg = PQerrorMessage(l->conn);
    /* libpq's messages name the server and the role, never the password */
    kurer_log(KURER_LOG_WARN, "cluster", event, (kurer_log_field[]){KURER_LOG_STR("error", msg)},
              1);
}

static void unwatch(kurer_pgl *l)
{
    kurer__pg_unwatch(&l->w);
}

static void free_job(kurer_pgl *l, job *j)
{
    if (j->kind == J_NOTIFY || j->kind == J_PING)
        l->n_jobs--;
    else
        l->n_loads--;
    l->st.queue_bytes -= j->len;
    free(j->text);
    free(j);
}

static void drop_job(kurer_pgl *l)
{
    job *j = l->head;
    l->head = j->next;
    if (l->head == NULL)
        l->tail = NULL;
    free_job(l, j);
}

/* The connection is gone (or never came): forget it, keep what must be sent, try again later. */
static void lost(kurer_pgl *l, const char *why)
{
    if (l->state == S_UP)
        kurer_log(KURER_LOG_WARN, "cluster", "listen_lost",
                  (kurer_log_field[]){KURER_LOG_STR("reason", why)}, 1);
    unwatch(l);
    PQfinish(l->conn);
    l->conn = NULL;
    if (l->state >= S_SETUP)
        l->st.reconnects++;
    l->state = S_WAIT;
    l->busy = 0;
    /* what does not survive a loss is dropped; the rest is sent again (it may have gone out) */
    job **pp = &l->head;
    l->tail = NULL;
    while (*pp != NULL) {
        job *j = *pp;
        j->sent = 0;
        if (!j->keep) {
            *pp = j->next;
            free_job(l, j);
            continue;
        }
        l->tail = j;
        pp = &j->next;
    }
    l->backoff_ms = l->backoff_ms == 0 ? BACKOFF_MIN : l->backoff_ms * 2;
    if (l->backoff_ms > BACKOFF_MAX)
        l->backoff_ms = BACKOFF_MAX;
    l->retry_at_ms = kurer_time_mono_ms() + l->backoff_ms;
}

static void start_connect(kurer_pgl *l)
{
    l->state = S_CONNECTING;
    kurer__pg_connector_want(&l->k);
}

/* Flushes what libpq holds; watches for writability while some remains. */
static int flush_out(kurer_pgl *l)
{
    return kurer__pg_flush(&l->w, l->loop, l->conn, on_poll, l);
}

static int send_query(kurer_pgl *l, int ok)
{
    if (!ok) {
        log_pg(l, "listen_send_failed", NULL);
        return KURER_ESTORAGE;
    }
    l->busy = 1;
    l->busy_since_ms = kurer_time_mono_ms();
    return flush_out(l);
}

/* Sends the queue's first job if nothing is in flight. */
static void kick(kurer_pgl *l)
{
    if (l->state != S_UP || l->busy || l->head == NULL)
        return;
    job *j = l->head;
    int ok;
    j->sent = 1;
    if (j->kind == J_NOTIFY) {
        const char *v[2] = {l->channel, j->text};
        ok = PQsendQueryParams(l->conn, "SELECT pg_notify($1, $2)", 2, NULL, v, NULL, NULL, 0);
    } else if (j->kind == J_LISTS && j->all) {
        ok = PQsendQueryParams(l->conn, "SELECT list FROM crls", 0, NULL, NULL, NULL, NULL, 1);
    } else if (j->kind == J_LISTS) {
        const char *v[1] = {(const char *)j->key_id};
        const int len[1] = {KURER_KEY_ID_LEN}, fmt[1] = {1};
        ok = PQsendQueryParams(l->conn, "SELECT list FROM crls WHERE issuer_key_id = $1::bytea", 1,
                               NULL, v, len, fmt, 1);
    } else if (j->kind == J_DEVICE && j->all) {
        ok = PQsendQueryParams(l->conn, "SELECT usr, device, serial, chain FROM devices", 0, NULL,
                               NULL, NULL, NULL, 1);
    } else if (j->kind == J_DEVICE) {
        uint8_t id[8] = {0};
        for (int k = 0; k < 4; k++)
            id[4 + k] = (uint8_t)(j->dev.device_id >> (24 - 8 * k));
        const char *v[2] = {j->dev.user, (const char *)id};
        const int len[2] = {(int)strlen(j->dev.user), 8}, fmt[2] = {1, 1};
        ok = PQsendQueryParams(l->conn,
                               "SELECT usr, device, serial, chain FROM devices WHERE usr = "
                               "$1::bytea AND device = $2::int8",
                               2, NULL, v, len, fmt, 1);
    } else {
        ok = PQsendQuery(l->conn, "SELECT 1");
    }
    if (send_query(l, ok) != 0)
        lost(l, "send");
}

/* The connector made a connection (or failed): the setup follows on the loop. */
static void on_connected(void *arg, PGconn *c)
{
    kurer_pgl *l = arg;
    if (l->state != S_CONNECTING) {
        PQfinish(c);
        return;
    }
    l->conn = c;
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        log_pg(l, "listen_connect_failed", NULL);
        lost(l, "connect");
        return;
    }
    l->state = S_SETUP;
    int rc = PQsetnonblocking(c, 1) == 0
                 ? kurer__pg_poll(&l->w, l->loop, c, UV_READABLE, 1, on_poll, l)
                 : KURER_ESTORAGE;
    /* the session's notifications commit without waiting for a standby */
    if (rc == 0)
        rc = send_query(l, PQsendQuery(c, "SET synchronous_commit = off; SELECT current_schema()"));
    if (rc != 0)
        lost(l, "setup");
}

/* The channel of the connection's schema: kurer_wake for public, else kurer_wake_SCHEMA (so
 * that deployments in schemas of one database do not wake each other). */
static int set_channel(kurer_pgl *l, const PGresult *r)
{
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
        return KURER_ESTORAGE;
    const char *schema = PQgetvalue(r, 0, 0);
    int n = strcmp(schema, "public") == 0
                ? snprintf(l->channel, sizeof(l->channel), "kurer_wake")
                : snprintf(l->channel, sizeof(l->channel), "kurer_wake_%s", schema);
    if (n < 0 || (size_t)n >= sizeof(l->channel)) {
        kurer_log(KURER_LOG_ERROR, "cluster", "schema_name_too_long", NULL, 0);
        return KURER_ELIMIT;
    }
    return 0;
}

static int take_lists(kurer_pgl *l, const PGresult *r)
{
    for (int i = 0; i < PQntuples(r); i++) {
        size_t len = (size_t)PQgetlength(r, i, 0);
        if (PQgetisnull(r, i, 0) || len == 0 || len > KURER_CRL_BYTES_MAX)
            continue; /* not a list this relay wrote; the trust store checks the rest */
        l->cbs.on_list(l->arg, (const uint8_t *)PQgetvalue(r, i, 0), len);
    }
    return 0;
}

static uint64_t be64(const PGresult *r, int row, int col)
{
    const uint8_t *b = (const uint8_t *)PQgetvalue(r, row, col);
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | b[k];
    return v;
}

/* Rows of (usr, device, serial, chain): each checked for shape here, its chain verified by the
 * relay (on_device) as at start-up. */
static int take_devices(kurer_pgl *l, const PGresult *r)
{
    for (int i = 0; i < PQntuples(r); i++) {
        kurer_store_device d;
        size_t ul = (size_t)PQgetlength(r, i, 0), len = (size_t)PQgetlength(r, i, 3);
        const char *u = PQgetvalue(r, i, 0);
        memset(&d, 0, sizeof(d));
        if (PQgetisnull(r, i, 0) || ul == 0 || ul >= sizeof(d.addr.user) ||
            memchr(u, '\0', ul) != NULL || PQgetisnull(r, i, 1) || PQgetlength(r, i, 1) != 8 ||
            PQgetisnull(r, i, 2) || PQgetlength(r, i, 2) != 8 || PQgetisnull(r, i, 3) || len == 0 ||
            len > KURER_CHAIN_BYTES_MAX || be64(r, i, 1) > UINT32_MAX)
            continue; /* not a row this relay wrote */
        memcpy(d.addr.user, u, ul);
        d.addr.device_id = (uint32_t)be64(r, i, 1);
        d.serial = be64(r, i, 2);
        d.chain = (const uint8_t *)PQgetvalue(r, i, 3);
        d.chain_len = len;
        l->cbs.on_device(l->arg, &d);
    }
    return 0;
}

/* One result of the query in flight: 0, or an error that loses the connection. */
static int on_result(kurer_pgl *l, const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
        log_pg(l, "listen_statement_failed", r);
        /* a job's statement that failed (a read-only server, say): given up, not retried */
        return l->state == S_UP ? 0 : KURER_ESTORAGE;
    }
    if (l->state == S_SETUP && st == PGRES_TUPLES_OK)
        return set_channel(l, r);
    if (l->state == S_UP && l->head != NULL && l->head->sent && l->head->kind == J_LISTS)
        return take_lists(l, r);
    if (l->state == S_UP && l->head != NULL && l->head->sent && l->head->kind == J_DEVICE)
        return take_devices(l, r);
    return 0;
}

/* The query in flight is complete: the next step of the setup, or the next job. */
static int on_done(kurer_pgl *l)
{
    l->busy = 0;
    if (l->state == S_SETUP) {
        char *id = PQescapeIdentifier(l->conn, l->channel, strlen(l->channel));
        char sql[2 * KURER__PGL_CHANNEL_MAX + 16];
        if (id == NULL || l->channel[0] == '\0')
            return PQfreemem(id), KURER_ESTORAGE;
        snprintf(sql, sizeof(sql), "LISTEN %s", id);
        PQfreemem(id);
        l->state = S_LISTEN;
        return send_query(l, PQsendQuery(l->conn, sql));
    }
    if (l->state == S_LISTEN) {
        l->state = S_UP;
        l->backoff_ms = 0;
        kurer_log(KURER_LOG_INFO, "cluster", "listening",
                  (kurer_log_field[]){KURER_LOG_STR("channel", l->channel)}, 1);
        l->cbs.on_up(l->arg);
    } else if (l->head != NULL && l->head->sent) {
        l->st.sent += l->head->kind == J_NOTIFY;
        drop_job(l);
    }
    kick(l);
    return 0;
}

/* Reads what arrived: results of the query in flight, then notifications. */
static int read_input(kurer_pgl *l)
{
    if (!PQconsumeInput(l->conn))
        return KURER_ESTORAGE;
    l->last_io_ms = kurer_time_mono_ms();
    while (l->busy && l->conn != NULL && !PQisBusy(l->conn)) {
        PGresult *r = PQgetResult(l->conn);
        int rc = r == NULL ? on_done(l) : on_result(l, r);
        PQclear(r);
        if (rc != 0)
            return rc;
        if (l->state == S_WAIT)
            return 0; /* lost inside kick */
    }
    PGnotify *n;
    while (l->conn != NULL && (n = PQnotifies(l->conn)) != NULL) {
        l->st.received++;
        if (n->extra != NULL)
            l->cbs.on_notify(l->arg, n->extra, strlen(n->extra));
        PQfreemem(n);
    }
    return 0;
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    kurer_pgl *l = p->data;
    if (l->conn == NULL || p != l->w.poll)
        return;
    int rc = status < 0 ? KURER_ESTORAGE : 0;
    if (rc == 0 && (events & UV_WRITABLE))
        rc = flush_out(l);
    if (rc == 0 && (events & UV_READABLE))
        rc = read_input(l);
    if (rc != 0) {
        if (l->conn != NULL)
            log_pg(l, "listen_read_failed", NULL);
        lost(l, "read");
    }
}

/* A new job at the queue's end; NULL when its kind's bound is reached (or no memory). A read of
 * every entry (all) is never refused by the bound: it is what an overflow of reads turns into. */
static job *job_new(kurer_pgl *l, int kind, int keep, int all)
{
    int notify = kind == J_NOTIFY || kind == J_PING;
    if (notify ? l->n_jobs >= JOBS_MAX : l->n_loads >= LOADS_MAX && !all)
        return NULL;
    job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    if (kind == J_NOTIFY && (j->text = malloc(KURER__PGL_PAYLOAD_MAX + 1)) == NULL) {
        free(j);
        return NULL;
    }
    j->kind = kind;
    j->keep = keep;
    j->all = all;
    if (l->tail != NULL)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    if (notify)
        l->n_jobs++;
    else
        l->n_loads++;
    return j;
}

/* A read of every entry of this kind waiting (not sent yet): a read of one is part of it. */
static int all_pending(const kurer_pgl *l, int kind)
{
    for (const job *j = l->head; j != NULL; j = j->next)
        if (j->kind == kind && j->all && !j->sent)
            return 1;
    return 0;
}

/* Queues a read: of one entry, or (key NULL, or too many reads waiting) of every entry. */
static int queue_load(kurer_pgl *l, int kind, const void *key)
{
    if (all_pending(l, kind))
        return 0;
    job *j = key != NULL ? job_new(l, kind, 1, 0) : NULL;
    if (j == NULL && (j = job_new(l, kind, 1, 1)) == NULL)
        return KURER_ENOMEM;
    if (!j->all && kind == J_LISTS)
        memcpy(j->key_id, key, KURER_KEY_ID_LEN);
    else if (!j->all)
        j->dev = *(const kurer_device_address *)key;
    kick(l);
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    kurer_pgl *l = t->data;
    uint64_t now = kurer_time_mono_ms();
    if (l->state == S_WAIT && now >= l->retry_at_ms) {
        start_connect(l);
    } else if (l->state > S_CONNECTING && l->busy &&
               now - l->busy_since_ms > KURER__PGL_QUERY_MAX_MS) {
        kurer_log(KURER_LOG_WARN, "cluster", "listen_timeout", NULL, 0);
        lost(l, "timeout");
    } else if (l->state == S_UP && !l->busy && l->head == NULL && now - l->last_io_ms > PING_MS) {
        l->last_io_ms = now;
        if (job_new(l, J_PING, 0, 0) != NULL)
            kick(l); /* a dead server is noticed by the query's timeout */
    }
}

/* A blocking command of the first connection: 0, or KURER_ESTORAGE (logged). */
static int first_cmd(kurer_pgl *l, const char *sql, int (*take)(kurer_pgl *, const PGresult *))
{
    PGresult *r = PQexec(l->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : KURER_ESTORAGE;
    if (rc != 0)
        log_pg(l, "listen_setup_failed", r);
    else if (take != NULL)
        rc = take(l, r);
    PQclear(r);
    return rc;
}

/* The first connection, made and set up before the relay loads the directory and the lists:
 * whatever another node stores after that is announced to this one. */
static int first_connect(kurer_pgl *l)
{
    char sql[2 * KURER__PGL_CHANNEL_MAX + 16];
    if ((l->conn = kurer__pg_connect(l->conninfo, "kurer-relay-listen", "cluster")) == NULL)
        return KURER_ESTORAGE;
    int rc = first_cmd(l, "SET synchronous_commit = off", NULL);
    if (rc == 0)
        rc = first_cmd(l, "SELECT current_schema()", set_channel);
    char *id = rc == 0 ? PQescapeIdentifier(l->conn, l->channel, strlen(l->channel)) : NULL;
    if (rc == 0 && id == NULL)
        rc = KURER_ESTORAGE;
    if (rc == 0) {
        snprintf(sql, sizeof(sql), "LISTEN %s", id);
        rc = first_cmd(l, sql, NULL);
    }
    PQfreemem(id);
    if (rc == 0 && (PQsetnonblocking(l->conn, 1) != 0 ||
                    kurer__pg_poll(&l->w, l->loop, l->conn, UV_READABLE, 1, on_poll, l) != 0))
        rc = KURER_ESTORAGE;
    if (rc != 0)
        return rc;
    l->state = S_UP;
    l->last_io_ms = kurer_time_mono_ms();
    kurer_log(KURER_LOG_INFO, "cluster", "listening",
              (kurer_log_field[]){KURER_LOG_STR("channel", l->channel)}, 1);
    return 0;
}

int kurer__pgl_open(kurer_pgl **out, uv_loop_t *loop, const char *conninfo,
                    const kurer_pgl_cbs *cbs, void *arg)
{
    *out = NULL;
    kurer_pgl *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return KURER_ENOMEM;
    size_t len = strlen(conninfo);
    if ((l->conninfo = kurer_secure_alloc(len + 1)) == NULL) {
        free(l);
        return KURER_ENOMEM;
    }
    memcpy(l->conninfo, conninfo, len + 1);
    l->loop = loop;
    l->cbs = *cbs;
    l->arg = arg;
    kurer__pg_watch_init(&l->w);
    l->state = S_WAIT;
    uv_timer_init(loop, &l->tick);
    l->tick.data = l;
    l->open_handles = 2;
    int rc = kurer__pg_connector_init(&l->k, loop, l->conninfo, "kurer-relay-listen", NULL,
                                      on_connected, l);
    if (rc == 0)
        rc = first_connect(l);
    if (rc != 0) {
        kurer__pgl_close(l);
        return rc;
    }
    uv_timer_start(&l->tick, on_tick, TICK_MS, TICK_MS);
    *out = l;
    return 0;
}

static void free_pgl(uv_handle_t *h)
{
    kurer_pgl *l = h->data;
    if (--l->open_handles > 0)
        return;
    free_conninfo(l);
    free(l);
}

void kurer__pgl_close(kurer_pgl *l)
{
    if (l == NULL)
        return;
    unwatch(l);
    PQfinish(l->conn);
    l->conn = NULL;
    while (l->head != NULL)
        drop_job(l);
    uv_timer_stop(&l->tick);
    uv_close((uv_handle_t *)&l->tick, free_pgl);
    kurer__pg_connector_close(&l->k, free_pgl); /* a connect in progress ends first */
}

int kurer__pgl_up(const kurer_pgl *l)
{
    return l != NULL && l->state == S_UP;
}

int kurer__pgl_notify(kurer_pgl *l, const char *prefix, const char *token, int keep)
{
    size_t pl = strlen(prefix), tl = strlen(token);
    if (pl == 0 || tl == 0 || pl > PREFIX_MAX || pl + 1 + tl > KURER__PGL_PAYLOAD_MAX ||
        memchr(token, ' ', tl) != NULL)
        return KURER_EINVAL;
    job *j = l->tail;
    if (j != NULL && (j->sent || j->kind != J_NOTIFY || j->keep != keep || j->prefix_len != pl ||
                      memcmp(j->text, prefix, pl) != 0 || j->len + 1 + tl > KURER__PGL_PAYLOAD_MAX))
        j = NULL;
    if (j == NULL) {
        if ((j = job_new(l, J_NOTIFY, keep, 0)) == NULL) {
            l->st.dropped++;
            return KURER_ELIMIT;
        }
        memcpy(j->text, prefix, pl);
        j->prefix_len = j->len = pl;
        l->st.queue_bytes += pl;
    }
    j->text[j->len] = ' ';
    memcpy(j->text + j->len + 1, token, tl);
    j->len += 1 + tl;
    j->text[j->len] = '\0';
    l->st.queue_bytes += 1 + tl;
    kick(l);
    return 0;
}

int kurer__pgl_load_lists(kurer_pgl *l, const uint8_t *key_id)
{
    return queue_load(l, J_LISTS, key_id);
}

void kurer__pgl_stats(const kurer_pgl *l, kurer_pgl_stats *out)
{
    *out = l->st;
    out->backend_pid = l->conn != NULL ? PQbackendPID(l->conn) : 0;
}

int kurer__pgl_load_device(kurer_pgl *l, const kurer_device_address *dev)
{
    return queue_load(l, J_DEVICE, dev);
}
