/* The connection half of a handle (internal, kurer__*): the library thread with its libuv loop,
 * the relay connection, requests in flight, the workers that run the engine's procedures, and
 * the event queue to the application. docs/client.md ("Threads") has the picture.
 *
 * Threads of one handle:
 *  - the library thread runs the loop: the connection's I/O, answers routed to their requests
 *    by request id, the reconnect timer, and every application callback (events, completions);
 *  - the session worker drives the connection: resolve, handshake, the set-up after it
 *    (revocation lists, prekeys, the outbox), then every push in order (deliveries committed
 *    and acked at once), and the outbox's retries;
 *  - request workers (a small pool, started with the first request) run the application's
 *    requests (send, refresh, flush) side by side.
 * Workers hold the home lock (kurer__hlock) while they touch the store, libsignal or the trust
 * store, and give it up while they wait for an answer (kurer__rpc). Lock order: the home lock
 * before the net mutex, never the other way round; the library thread never waits for a
 * worker. */
#ifndef KURER_CLIENT_NET_H
#define KURER_CLIENT_NET_H

#include <stdint.h>

#include "kurer/frame.h"
#include "kurer/kurer.h"

typedef struct kurer__net kurer__net;

/* Starts the library thread and the session worker (at open); stops and joins them (at close,
 * after the remaining events were delivered). */
KURER_MUST_CHECK int kurer__net_start(kurer *k);
void kurer__net_stop(kurer *k);

/* 1 if the calling thread is the handle's library thread (a blocking call there would wait
 * for itself). */
int kurer__net_on_library_thread(const kurer *k);

/* From a worker: sends f (request_id assigned here) and waits until deadline (monotonic ms)
 * for its answer, with the home lock released meanwhile. 0 with *out (free with
 * kurer__reply_free), the code of an Error answer, KURER_ETIMEOUT, or why the connection ended. */
KURER_MUST_CHECK int kurer__rpc(kurer *k, kurer_client_frame *f, uint64_t deadline,
                                kurer_server_frame **out);
void kurer__reply_free(kurer_server_frame *r);
/* kurer__rpc, sent again while the relay answers KURER_ERATE (its rate limit: prekey fetches,
 * for example, when sessions are built with many devices at once), after waits from 100 ms
 * doubling to 1.6 s with the home lock given up, until deadline; then what the last answer was.
 * Only for requests that change nothing at the relay when refused. */
KURER_MUST_CHECK int kurer__rpc_paced(kurer *k, kurer_client_frame *f, uint64_t deadline,
                                      kurer_server_frame **out);
/* From a worker: waits ms (not past deadline) with the home lock given up. */
void kurer__pause_unlocked(kurer *k, uint64_t deadline, uint64_t ms);
/* kurer__rpc for n frames at once (net_batch.c): all are sent, in order, before the first answer
 * is waited for. For each i, rcs[i] is what kurer__rpc would return for f[i] and out[i] its
 * answer (or NULL); returns 0, or KURER_ENOMEM (nothing sent). */
KURER_MUST_CHECK int kurer__rpc_batch(kurer *k, kurer_client_frame *f, size_t n, uint64_t deadline,
                                      kurer_server_frame **out, int *rcs);
/* Sends f without waiting for its answer (acks). */
KURER_MUST_CHECK int kurer__send_nowait(kurer *k, kurer_client_frame *f);

/* (kick: asked for now, by the application: an attempt need not wait out the backoff; a
 * request's own wait does not shorten it.) */
/* From a worker: wants the connection and waits (home lock released) until it is set up, or
 * until the attempt that was running or starts now has failed (its error), or the deadline. */
KURER_MUST_CHECK int kurer__net_wait_online(kurer *k, uint64_t deadline, int kick);

/* A request run by a worker with the home lock held; done (may be NULL) runs on the library
 * thread afterwards. The job is the caller's until done has run (then freed with free_fn). */
typedef struct kurer__job kurer__job;
struct kurer__job {
    kurer__job *next;
    void (*run)(kurer *k, kurer__job *j);
    void (*done)(kurer *k, kurer__job *j); /* library thread; must free the job */
    uint64_t deadline;
    int rc;
};
KURER_MUST_CHECK int kurer__net_submit(kurer *k, kurer__job *j);

/* Serialises procedures on one outbox message (two workers never send the same message at once):
 * waits until no other worker holds message_rowid (or KURER_ETIMEOUT at the deadline), then
 * holds it. */
KURER_MUST_CHECK int kurer__net_message_take(kurer *k, int64_t message_rowid, uint64_t deadline);
void kurer__net_message_give(kurer *k, int64_t message_rowid);

/* Events for the application, delivered in order on the library thread. */
void kurer__event_message(kurer *k, const kurer_message *m, int64_t rowid, int replay);
void kurer__event_refused(kurer *k, const char *from, uint32_t device_id, int err);
void kurer__event_queue_empty(kurer *k, uint64_t gen);
/* A key change to tell (keychange.c): c is copied; given only while its record is still
 * unreported, and marked reported once on_key_change has returned. */
void kurer__event_key_change(kurer *k, const kurer_key_change *c);
void kurer__event_receipt(kurer *k, const kurer_receipt_info *r);

/* The connection state (KURER_CONN_*) and the last failure (*reason, may be NULL). */
int kurer__net_state(const kurer *k, int *reason);
/* Wants the connection (the library connects, and reconnects after a loss) or not (closes it;
 * an attempt that runs is closed when it ends). */
void kurer__net_want(kurer *k, int want, int kick);
/* The home's relay changed (kurer_set_relay): the connection closes and an attempt under way
 * is dropped; the next one goes to the new relay. */
void kurer__net_relay_changed(kurer *k);
/* mobile.h: the ping interval for the foreground or the background; a network change (the
 * connection closed at once and made again without backoff). */
void kurer__net_set_foreground(kurer *k, int foreground);
void kurer__net_network_changed(kurer *k);
/* Not on the library thread: waits while connected until deadline (0), until the QueueEmpty of
 * this connection was delivered to the application (until_empty: 0; KURER_ETIMEOUT at the
 * deadline), or until the connection ends (why). */
KURER_MUST_CHECK int kurer__net_wait_received(kurer *k, uint64_t deadline, int until_empty);
/* Lets the session worker finish what it holds (committed and acked), then closes the
 * connection and waits until it is closed (or the deadline). */
void kurer__net_disconnect(kurer *k, uint64_t deadline);

/* What the application has been told, for the blocking layer (under the net mutex). */
typedef struct kurer__net_marks {
    uint64_t attempts_done; /* connection attempts that ended (set up, or failed) */
    int last_attempt_rc;
    uint64_t lost;            /* set-up connections that ended */
    uint64_t queue_empty_gen; /* the connection whose QueueEmpty was delivered */
    int online;
    int closed_rc;         /* why the last connection ended */
    uint64_t replayed_seq; /* the last replay whose messages were all given */
} kurer__net_marks;

#endif
