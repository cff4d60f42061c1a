/* kurer daemon's parts (docs/client.md, "kurer daemon"): daemon.c starts and stops it,
 * daemon_conn.c serves the clients of its socket, daemon_work.c runs the methods on worker
 * threads and turns the library's events into notifications. One thread, the main one, owns
 * every connection; the workers and the library thread hand it lines through a queue and a
 * wake pipe. */
#ifndef KURER_CLIENT_CLI_DAEMON_H
#define KURER_CLIENT_CLI_DAEMON_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "rpc.h"

#define DAEMON_CLIENTS  32         /* connections at once; more are closed at accept */
#define DAEMON_INFLIGHT 8          /* requests of one connection being run; then it is not read */
#define DAEMON_WORKERS  4          /* threads running methods */
#define DAEMON_OUT_MAX  (16 << 20) /* bytes queued for a client that does not read: then closed */
#define DAEMON_LINE_MS  30000      /* a request line must be whole within this */
#define DAEMON_DRAIN_MS 2000       /* at a stop, for the last answers to be written */

/* What a subscription asks for (bits). */
enum {
    SUB_MESSAGE = 1,
    SUB_REFUSED = 2,
    SUB_STATE = 4,
    SUB_QUEUE_EMPTY = 8,
    SUB_KEY_CHANGE = 16,
    SUB_RECEIPT = 32,
    SUB_ALL = 63,
};

/* A line for the main thread: a response to connection conn (inflight is then one less), or
 * a notification for every connection subscribed to kind (conn 0). */
typedef struct dline {
    struct dline *next;
    uint64_t conn;
    unsigned kind;
    int response;
    char *text; /* NULL: a notification request had no response */
    size_t len;
} dline;

typedef struct djob {
    struct djob *next;
    uint64_t conn;
    const rpc_method *m;
    json_t *params, *id; /* owned */
} djob;

typedef struct dconn dconn;

typedef struct daemon_srv {
    kurer *k;
    const char *home;
    int lfd;
    int wake[2]; /* read end polled by the main thread */
    dconn *conns[DAEMON_CLIENTS];
    uint64_t next_id;
    int msg_subs; /* connections subscribed to messages (main thread) */
    int key_subs; /* to key changes */
    /* under mu: */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    djob *j_head, *j_tail;
    dline *l_head, *l_tail;
    int stopping;
    pthread_t workers[DAEMON_WORKERS];
    int n_workers;
    /* counters (status): written by the main thread, read by a worker */
    _Atomic uint64_t accepted, refused_peers, refused_full, bad_requests, dropped_slow;
} daemon_srv;

/* daemon_conn.c: the main loop until *stop (set by SIGTERM/SIGINT, with a byte to wake). */
int daemon_serve(daemon_srv *s, volatile sig_atomic_t *stop);
/* After the workers stopped: their last answers written (for at most DAEMON_DRAIN_MS), then
 * every connection closed. */
void daemon_drain(daemon_srv *s);

/* daemon_work.c */
int daemon_workers_start(daemon_srv *s);
/* Stops the workers: no new method begins, the connection to the relay is closed (so that
 * what waits for it ends), the running methods end, the workers are joined. */
void daemon_workers_stop(daemon_srv *s);
/* Queues a job for the workers (takes it). */
void daemon_submit(daemon_srv *s, djob *j);
/* Frees the lines nobody will write any more: after the drain, once the library's events are
 * off (an event of the connection's closing may come after the drain). */
void daemon_lines_free(daemon_srv *s);
/* Queues a line for the main thread (takes it) and wakes it. */
void daemon_post(daemon_srv *s, dline *l);
/* The events the library is asked for: on_message (on_key_change) only while someone
 * subscribes to messages (key changes), so that what nobody was shown stays marked unreported:
 * given at the next subscription. */
void daemon_events(daemon_srv *s);

#endif
