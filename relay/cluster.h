/* Several relay nodes over one PostgreSQL database (docs/scale-out.md, "Nodes together"): the
 * listen connection (store_pg_listen.c) and what the relay does with it (cluster.c).
 *
 * The listen connection is a libpq connection of its own, non-blocking, driven on the relay's
 * loop by a uv_poll on its socket. It LISTENs on the database's wake channel and sends the
 * node's notifications there: each `SELECT pg_notify(channel, payload)` is a short transaction
 * of its own with synchronous_commit off, never inside an envelope's transaction (a NOTIFY
 * holds a database-wide lock until its commit, which would otherwise wait for the standby's
 * flush). Notifications are tokens after a prefix ("w NODE", "c NODE", "r NODE"); tokens of the
 * same prefix submitted while the connection is busy are batched into one notification of at
 * most KURER__PGL_PAYLOAD_MAX bytes. A lost connection is made again with a backoff; what was
 * queued meanwhile (bounded) goes out then. */
#ifndef KURER_RELAY_CLUSTER_H
#define KURER_RELAY_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "store.h"

#define KURER__PGL_PAYLOAD_MAX 7999 /* bytes of one notification (PostgreSQL: < 8000) */
#define KURER__PGL_QUEUE_MAX   ((size_t)1 << 20) /* bytes of notifications waiting to be sent */
#define KURER__PGL_CHANNEL_MAX 63                /* PostgreSQL's identifier length */
#define KURER__PGL_QUERY_MAX_MS                                                                    \
    10000 /* a query (or a connect) longer than this: the connection is                            \
           * taken as lost */

typedef struct kurer_pgl kurer_pgl;

typedef struct kurer_pgl_cbs {
    /* A notification on the channel (the node's own included), payload not NUL-terminated. */
    void (*on_notify)(void *arg, const char *payload, size_t len);
    /* A stored revocation list read by kurer__pgl_load_lists (once per list). */
    void (*on_list)(void *arg, const uint8_t *list, size_t len);
    /* A stored directory entry read by kurer__pgl_load_device. */
    void (*on_device)(void *arg, const kurer_store_device *d);
    /* The connection is up and listening again after a loss: notifications sent meanwhile may
     * have been missed. */
    void (*on_up)(void *arg);
} kurer_pgl_cbs;

/* Connects and LISTENs (blocking: before the relay serves, and before it loads what others
 * may store meanwhile), then runs on the loop; on_up runs after every reconnect, not for this
 * first connection. The connection string is copied into wiped memory. 0, KURER_ENOMEM, or
 * KURER_ESTORAGE (no connection, logged). */
int kurer__pgl_open(kurer_pgl **out, uv_loop_t *loop, const char *conninfo,
                    const kurer_pgl_cbs *cbs, void *arg);
/* Closes the connection and its handles (their closes complete on the loop) and frees l. */
void kurer__pgl_close(kurer_pgl *l);
/* Whether the connection listens now. */
int kurer__pgl_up(const kurer_pgl *l);
/* Queues a token under a prefix (both printable ASCII, no NUL, the token not empty and without
 * a space; prefix + ' ' + token within
 * KURER__PGL_PAYLOAD_MAX): appended to the last notification of that prefix (and keep) not sent
 * yet, else a new one. keep 0: dropped if the connection is lost before it went out (on_up then
 * says what to send again). 0, KURER_EINVAL (too long), KURER_ELIMIT (the queue is full:
 * dropped). */
int kurer__pgl_notify(kurer_pgl *l, const char *prefix, const char *token, int keep);
/* Reads the stored revocation list of an issuer (key_id, 32 bytes), or every list (NULL), and
 * hands each to on_list. Beyond 4096 reads waiting, one read of every list replaces them (so
 * none is missed). 0 or KURER_ENOMEM. */
int kurer__pgl_load_lists(kurer_pgl *l, const uint8_t *key_id);

/* Reads a device's stored directory entry (dev NULL: every entry) and hands each to
 * on_device; bounded as kurer__pgl_load_lists. 0 or KURER_ENOMEM. */
int kurer__pgl_load_device(kurer_pgl *l, const kurer_device_address *dev);

typedef struct kurer_pgl_stats {
    uint64_t sent;        /* notifications sent */
    uint64_t received;    /* notifications received */
    uint64_t dropped;     /* tokens dropped: the queue was full */
    uint64_t reconnects;  /* connections made again after a loss */
    uint64_t queue_bytes; /* waiting now */
    int backend_pid;      /* the server process of the connection (0: none now) */
} kurer_pgl_stats;

void kurer__pgl_stats(const kurer_pgl *l, kurer_pgl_stats *out);

#endif
