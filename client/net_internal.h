/* What net.c and events.c share of a handle's connection half (internal to those two). */
#ifndef KURER_CLIENT_NET_INTERNAL_H
#define KURER_CLIENT_NET_INTERNAL_H

#include <sys/socket.h>

#include <uv.h>

#include "home.h"
#include "kurer/frame.h"
#include "kurer/net.h"
#include "net.h"

#define WORKERS           4     /* request workers per handle */
#define HANDSHAKE_WAIT_MS 15000 /* resolve, TCP and Noise */
#define SETUP_WAIT_MS     30000 /* revocation lists, prekeys, the outbox after connecting */
#define TICK_MS           1000  /* the session worker's look at the outbox */
#define BACKOFF_FIRST_MS  500
#define BACKOFF_MAX_MS    30000
#define STABLE_MS         30000 /* a connection up this long resets the backoff */

enum { PHASE_IDLE, PHASE_ATTEMPT, PHASE_ONLINE, PHASE_BACKOFF };

typedef struct push {
    struct push *next;
    uint64_t gen; /* the connection it came on */
    kurer_server_frame f;
} push;

typedef struct outq {
    struct outq *next;
    uint64_t gen;
    size_t len;
    uint8_t data[];
} outq;

typedef struct waiter {
    struct waiter *next;
    uint64_t id;
    kurer_server_frame *reply;
    int rc;
    int done;
} waiter;

typedef enum ev_kind {
    EV_MESSAGE,
    EV_REFUSED,
    EV_QUEUE_EMPTY,
    EV_STATE,
    EV_KEY_CHANGE,
    EV_REPLAYED,
    EV_RECEIPT
} ev_kind;

/* A key change as an event: the strings of kc point into the arrays. */
typedef struct ev_key_change {
    kurer_key_change kc;
    char user[KURER_SUBJECT_MAX + 1], issuer[KURER_SUBJECT_MAX + 1];
    char old_issuer[KURER_SUBJECT_MAX + 1], fp[65], old_fp[65];
} ev_key_change;

typedef struct event {
    struct event *next;
    ev_kind kind;
    kurer_message m; /* peer and body point into text */
    int64_t rowid;
    int replay;
    char from[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
    int err;
    kurer_conn_state state;
    uint64_t gen;
    size_t text_len;
    char *text;                 /* peer NUL body NUL: wiped when freed */
    ev_key_change *key_change;  /* EV_KEY_CHANGE */
    kurer_receipt_info receipt; /* EV_RECEIPT: user is from, peer is peer */
    char peer[KURER_SUBJECT_MAX + 1];
} event;

struct kurer__net {
    kurer *k;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t retry;
    uv_thread_t lib, sess, workers[WORKERS];
    int n_workers, started_sess;
    uv_mutex_t mu;
    uv_cond_t cond;      /* broadcast on every change waiters look at */
    uv_cond_t sess_cond; /* the session worker */
    uv_cond_t work_cond; /* request workers */
    int stopping, final;

    /* the connection (the pointer is the library thread's; the rest under mu) */
    kurer_conn *conn;
    int phase, want, close_requested, retry_pending;
    int established;
    uint64_t gen; /* of the connection being made or up */
    int closed_rc;
    uint64_t closed_gen;
    int connect_pending;
    struct sockaddr_storage addr;
    uint8_t relay_key[KURER_KEY_LEN];
    uint8_t *hs;
    size_t hs_len;
    uint32_t backoff_ms;
    uint64_t online_since;  /* monotonic ms */
    uint64_t close_gen;     /* the connection a close request is for */
    uint64_t relay_epoch;   /* counts kurer_set_relay calls */
    uint32_t relay_idle_ms; /* the relay's idle timeout, from its HandshakeAccept (0: not said) */
    int background;         /* kurer_set_foreground(0): sparse pings */
    int idle_dirty;         /* the ping interval is to be applied to the connection */
    int net_changed;        /* kurer_network_changed: close now, reconnect without backoff */
    int kick_next;
    outq *o_head, *o_tail;
    waiter *pending;
    uint64_t next_id;

    /* the session worker's input */
    push *p_head, *p_tail;
    int attempt_requested, replay_requested, sess_busy;
    uint64_t replay_seq; /* replays asked for (kurer_set_events with on_message) */

    /* jobs */
    kurer__job *s_head, *s_tail; /* submitted, not yet handed to the workers by the loop */
    kurer__job *j_head, *j_tail, *d_head, *d_tail;
    int64_t busy_msgs[WORKERS + 1];
    size_t n_busy;

    /* events */
    event *e_head, *e_tail;
    kurer_events events;

    kurer__net_marks marks;
};

/* net.c, for net_batch.c: waits on c until deadline (monotonic ms; 0 when woken,
 * KURER_ETIMEOUT at the deadline); under the net mutex, encodes f and queues it for the
 * connection (KURER_ECLOSED or why it ended when there is none). */
int kurer__net_timed_wait(uv_cond_t *c, uv_mutex_t *m, uint64_t deadline);
int kurer__net_enqueue_locked(kurer__net *n, kurer_client_frame *f);

/* Library thread: gives one event to the application (events.c), then frees it. */
void kurer__event_dispatch(kurer__net *n, event *e);
void kurer__event_free(event *e);
/* Under the net mutex: queues a connection state change for the application (in the order the
 * changes happened). */
void kurer__event_state_locked(kurer__net *n, kurer_conn_state s, int reason);
/* Session worker: the replay asked for as seq has queued all its messages (kurer_replay_wait). */
void kurer__event_replayed(kurer *k, uint64_t seq);

#endif
