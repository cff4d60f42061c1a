/* libpq on the relay's loop (relay/ only), shared by the store's pool connections
 * (store_pg_pool.c) and the cluster's listen connection (store_pg_listen.c): a connection made on
 * a small thread of its own and handed to the loop, and its socket watched by a uv_poll.
 *
 * The connector thread makes the connection with a blocking PQconnectdbParams: a host name is
 * resolved off the loop, and connect_timeout applies to each host of a multi-host string, which
 * libpq's asynchronous connect does not do. */
#ifndef KURER_RELAY_PG_LOOP_H
#define KURER_RELAY_PG_LOOP_H

#include <pthread.h>

#include <libpq-fe.h>
#include <uv.h>

/* A connection made (c; NULL or not CONNECTION_OK when it failed), on the loop. The callback
 * owns c. */
typedef void (*kurer__pg_made_cb)(void *arg, PGconn *c);

typedef struct kurer__pg_connector {
    uv_async_t async; /* its data: the owner's arg (for its close callback) */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int want, done, stop, started, open;
    PGconn *made;
    const char *conninfo;    /* the owner's (it outlives the connector) */
    const char *app;         /* fallback_application_name */
    int (*setup)(PGconn *c); /* on the thread, after a connect (NULL: none); non-zero fails it */
    kurer__pg_made_cb cb;
    void *arg;
} kurer__pg_connector;

/* Starts the thread. 0 or KURER_ENOMEM; in both cases kurer__pg_connector_close ends it. */
int kurer__pg_connector_init(kurer__pg_connector *k, uv_loop_t *loop, const char *conninfo,
                             const char *app, int (*setup)(PGconn *c), kurer__pg_made_cb cb,
                             void *arg);
/* Asks for a connection: cb runs on the loop once it is made (or failed). */
void kurer__pg_connector_want(kurer__pg_connector *k);
/* Stops the thread (a connect in progress ends within its connect_timeout) and closes the
 * async handle: closed runs on the loop (at once if the handle never opened), with the handle
 * whose data is arg. */
void kurer__pg_connector_close(kurer__pg_connector *k, uv_close_cb closed);

/* A blocking connect (start-up, the store's loaders): the connection, or NULL (logged under
 * area, event connect_failed). */
PGconn *kurer__pg_connect(const char *conninfo, const char *app, const char *area);

/* A connection's socket in a uv_poll (a new handle whenever libpq's socket changed). */
typedef struct kurer__pg_watch {
    uv_poll_t *poll; /* NULL while none */
    int fd;
} kurer__pg_watch;

void kurer__pg_watch_init(kurer__pg_watch *w);
/* Watches c's socket for events (UV_READABLE, UV_WRITABLE); rebind: a new handle even if the
 * socket number is the same (after a connect). 0, KURER_ENOMEM or KURER_ESTORAGE. */
int kurer__pg_poll(kurer__pg_watch *w, uv_loop_t *loop, PGconn *c, int events, int rebind,
                   uv_poll_cb cb, void *data);
void kurer__pg_unwatch(kurer__pg_watch *w);
/* PQflush, then watches for readability, and for writability while output remains. 0 or
 * KURER_ESTORAGE. */
int kurer__pg_flush(kurer__pg_watch *w, uv_loop_t *loop, PGconn *c, uv_poll_cb cb, void *data);

#endif
