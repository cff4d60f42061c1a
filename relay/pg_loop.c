/* libpq on the relay's loop (pg_loop.h): the connector thread and the socket's uv_poll. */
#include "pg_loop.h"

#include <stdlib.h>

#include "kurer/error.h"
#include "kurer/log.h"

/* The connection string is expanded from dbname. libpq processes the keywords in order, the
 * last value of a keyword counting, the dbname entry's expanded ones included: the defaults
 * before it are what the string does not say (docs/scale-out.md, "Failover"): a connect that
 * gives up after 10 s per host, and a dead server found within about a minute by TCP keepalives
 * (30 s idle, then every 10 s) and tcp_user_timeout (unacknowledged data for 30 s). The relay
 * names itself unless the string says. */
static PGconn *connect_params(const char *conninfo, const char *app)
{
    const char *const keys[] = {"connect_timeout",
                                "keepalives",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "tcp_user_timeout",
                                "dbname",
                                "fallback_application_name",
                                NULL};
    const char *const vals[] = {"10", "1", "30", "10", "3", "30000", conninfo, app, NULL};
    return PQconnectdbParams(keys, vals, 1);
}

PGconn *kurer__pg_connect(const char *conninfo, const char *app, const char *area)
{
    PGconn *c = connect_params(conninfo, app);
    if (c != NULL && PQstatus(c) == CONNECTION_OK)
        return c;
    /* libpq's messages name the server and the role, never the password */
    kurer_log(KURER_LOG_ERROR, area, "connect_failed",
              (kurer_log_field[]){
                  KURER_LOG_STR("error", c != NULL ? PQerrorMessage(c) : "out of memory")},
              1);
    PQfinish(c);
    return NULL;
}

static void *connector(void *arg)
{
    kurer__pg_connector *k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (!k->want && !k->stop)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->stop)
            break;
        k->want = 0;
        pthread_mutex_unlock(&k->mu);
        PGconn *c = connect_params(k->conninfo, k->app);
        if (c != NULL && PQstatus(c) == CONNECTION_OK && k->setup != NULL && k->setup(c) != 0) {
            PQfinish(c); /* the setup logged why */
            c = NULL;
        }
        pthread_mutex_lock(&k->mu);
        PQfinish(k->made); /* one not taken yet (a connector asked twice) */
        k->made = c;
        k->done = 1;
        uv_async_send(&k->async);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

static void on_made(uv_async_t *h)
{
    kurer__pg_connector *k = (kurer__pg_connector *)h; /* the handle is its first member */
    pthread_mutex_lock(&k->mu);
    PGconn *c = k->made;
    int done = k->done;
    k->made = NULL;
    k->done = 0;
    pthread_mutex_unlock(&k->mu);
    if (done)
        k->cb(k->arg, c);
}

int kurer__pg_connector_init(kurer__pg_connector *k, uv_loop_t *loop, const char *conninfo,
                             const char *app, int (*setup)(PGconn *c), kurer__pg_made_cb cb,
                             void *arg)
{
    k->setup = setup;
    k->want = k->done = k->stop = k->started = k->open = 0;
    k->made = NULL;
    k->conninfo = conninfo;
    k->app = app;
    k->cb = cb;
    k->arg = arg;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    if (uv_async_init(loop, &k->async, on_made) != 0)
        return KURER_ENOMEM;
    k->async.data = arg;
    k->open = 1;
    if (pthread_create(&k->thread, NULL, connector, k) != 0)
        return KURER_ENOMEM;
    k->started = 1;
    return 0;
}

void kurer__pg_connector_want(kurer__pg_connector *k)
{
    pthread_mutex_lock(&k->mu);
    k->want = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

void kurer__pg_connector_close(kurer__pg_connector *k, uv_close_cb closed)
{
    if (k->started) {
        pthread_mutex_lock(&k->mu);
        k->stop = 1;
        pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
        pthread_join(k->thread, NULL);
        k->started = 0;
    }
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    PQfinish(k->made);
    k->made = NULL;
    k->async.data = k->arg;
    if (k->open)
        uv_close((uv_handle_t *)&k->async, closed);
    else
        closed((uv_handle_t *)&k->async);
    k->open = 0;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

void kurer__pg_watch_init(kurer__pg_watch *w)
{
    w->poll = NULL;
    w->fd = -1;
}

void kurer__pg_unwatch(kurer__pg_watch *w)
{
    if (w->poll != NULL) {
        uv_poll_stop(w->poll);
        uv_close((uv_handle_t *)w->poll, free_handle);
        w->poll = NULL;
    }
    w->fd = -1;
}

int kurer__pg_poll(kurer__pg_watch *w, uv_loop_t *loop, PGconn *c, int events, int rebind,
                   uv_poll_cb cb, void *data)
{
    int fd = PQsocket(c);
    if (rebind || fd != w->fd)
        kurer__pg_unwatch(w);
    if (fd < 0)
        return KURER_ESTORAGE;
    if (w->poll == NULL) {
        if ((w->poll = malloc(sizeof(*w->poll))) == NULL)
            return KURER_ENOMEM;
        if (uv_poll_init(loop, w->poll, fd) != 0) {
            free(w->poll);
            w->poll = NULL;
            return KURER_ESTORAGE;
        }
        w->poll->data = data;
        w->fd = fd;
    }
    return uv_poll_start(w->poll, events, cb) == 0 ? 0 : KURER_ESTORAGE;
}

int kurer__pg_flush(kurer__pg_watch *w, uv_loop_t *loop, PGconn *c, uv_poll_cb cb, void *data)
{
    int f = PQflush(c);
    if (f < 0)
        return KURER_ESTORAGE;
    return kurer__pg_poll(w, loop, c, f == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE, 0, cb,
                          data);
}
