/* The backend-neutral half of the relay store (relay/ only): operations as queued records, the
 * submission queue, completions handed to the loop, and the put/ack pairing with held puts.
 *
 * A backend embeds a kurer__storeq in its store (and points kurer_store.q at it), fills its
 * operations table with the kurer__storeq_* front ends below (or its own), and executes what
 * kurer__storeq_next hands it: a round of operations in submission order, from which the puts
 * and acks that met were taken out already. It reports each round with kurer__storeq_finish;
 * the callbacks then run on the loop (a uv_async handle). The sqlite backend runs the rounds on
 * a writer thread (kurer__storeq_next); the queue's mutex makes submission from the loop safe
 * against it. The postgres backend runs several rounds at once on the loop itself: it takes
 * them with kurer__storeq_take, told of new work by on_submit. */
#ifndef KURER_RELAY_STORE_QUEUE_H
#define KURER_RELAY_STORE_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "store.h"

typedef enum kurer__op_kind {
    KURER__OP_PUT = 1,
    KURER__OP_FETCH,
    KURER__OP_ACK,
    KURER__OP_DEVICE,
    KURER__OP_PREKEYS,
    KURER__OP_TAKE,
    KURER__OP_COUNT,
    KURER__OP_CRL,
    KURER__OP_BACKUP, /* blob: the output path (NUL-terminated); runs after a round's commit */
    KURER__OP_INVITE, /* inv: the request; inv_rows out (a write and its reads, in the round) */
    KURER__OP_BLOB    /* breq: the request (data in blob); bres out (READ: data in blob_out) */
} kurer__op_kind;

/* One submitted operation: its inputs (copied at submission), its results, its callback. */
typedef struct kurer__op {
    struct kurer__op *next;
    kurer__op_kind kind;
    uint64_t submitted_ns;
    uint64_t hold_until_ns; /* PUT: may be held out of transactions until then (0: not) */
    void *arg;
    union {
        kurer_store_put_cb put;
        kurer_store_fetch_cb fetch;
        kurer_store_done_cb done;
        kurer_store_count_cb count;
        kurer_store_bundles_cb bundles;
        kurer_store_invite_cb invite;
        kurer_store_blob_cb blob;
    } cb;
    int err;
    /* inputs */
    kurer_device_address dev;
    kurer_store_item *items; /* PUT: copies, bytes in blob */
    size_t n;
    uint64_t after, limit, mailbox_max, sender_max, serial;
    uint64_t *seqs;              /* PUT: assigned by the backend; ACK: in */
    uint64_t *prev;              /* PUT: the device's seq before each (kurer_store_seqs_cb) */
    kurer_store_seqs_cb seqs_cb; /* PUT: run at completion, before cb, if set and it succeeded */
    uint8_t *skip;               /* PUT, ACK: per item, cancelled against its pair */
    size_t n_cancel;             /* PUT: items not written */
    int fanout;    /* PUT: a fan-out (blob: the shared bytes; items' env unused; postgres: serial
                    * is the payload's id) */
    uint8_t *blob; /* PUT envelopes, DEVICE chain, CRL list */
    size_t blob_len;
    /* FETCH out */
    kurer_store_row *rows;
    size_t n_rows;
    uint64_t total; /* FETCH: queue length; PREKEYS, COUNT: pool size */
    uint64_t high;  /* FETCH: the device's highest seq (kurer_store_fetch_cb) */
    /* PREKEYS in (one_time copied into otk) */
    kurer_store_prekeys pk;
    kurer_one_time_prekey *otk;
    /* TAKE in (devs, n, limit: n_one_time) and out */
    kurer_device_address *devs;
    kurer_store_bundle *bundles;
    size_t n_bundles;
    /* CRL in (after: the version) */
    uint8_t key_id[32];
    /* INVITE in and out */
    kurer_store_invite_req *inv;
    kurer_store_invite *inv_rows;
    size_t n_inv;
    /* BLOB in and out */
    kurer_store_blob_req *breq;
    kurer_store_blob_res bres;
    uint8_t *blob_out;
} kurer__op;

typedef struct kurer__storeq {
    kurer_store *owner; /* freed (with free()) by kurer__storeq_release */
    uv_async_t async;
    int async_open;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    kurer__op *in_head, **in_tail;     /* submitted */
    kurer__op *done_head, **done_tail; /* completed, for the loop */
    kurer__op *held_head, **held_tail; /* puts waiting for their acks (executor only) */
    uint64_t stat_held;                /* puts ever held; how many were never written */
    uint64_t stat_held_cancelled;
    int stopping;
    int writing;    /* the executor runs a round */
    int exclusive;  /* a start-up loader holds the backend: no rounds meanwhile */
    int no_pairing; /* the backend assigns seqs in its transactions: puts and acks never meet */
    /* a loop-driven backend's hook: work was submitted (on the loop thread, q->mu not held) */
    void (*on_submit)(struct kurer__storeq *q);
    uint64_t in_flight; /* rounds started and not finished */
    uint64_t commit_delay_ns;
    kurer_store_stats stats;
    /* puts refused (the executor counts, stats readers on the loop read) */
    _Atomic uint64_t refused_full, refused_share;
} kurer__storeq;

/* 0, or KURER_ENOMEM / KURER_ESTORAGE; in every case kurer__storeq_release frees owner later. */
int kurer__storeq_init(kurer__storeq *q, kurer_store *owner, uv_loop_t *loop);
/* Frees owner: at once, or from the async handle's close callback once the loop runs (libuv
 * holds the handle until then). Call after the executor has stopped. */
void kurer__storeq_release(kurer__storeq *q);
/* Stops the rounds: kurer__storeq_next flushes what is held and submitted, then says stop. */
void kurer__storeq_stop(kurer__storeq *q);
/* Runs the callbacks of completed operations (loop thread). */
void kurer__storeq_run_completions(kurer__storeq *q);

/* The executor's side. Blocks until a round is due (the commit delay, held puts' times, no
 * start-up loader), pairs puts with acks, completes what needs no write, and returns the
 * operations to execute in order (NULL: nothing this time, call again). *stop is set once
 * stopping and nothing is left. */
kurer__op *kurer__storeq_next(kurer__storeq *q, int *stop);
/* The same for a backend on the loop: never blocks. NULL when nothing is due; *wait_ns: the
 * commit delay left for the oldest op (0: none waiting). Several rounds may be out at once. A
 * round holds at most KURER__STOREQ_TAKE_ITEMS items (a put's envelopes, an ack's seqs; 1 for
 * other ops) and KURER__STOREQ_TAKE_BYTES bytes (envelopes, chains, lists, chunks), at least one
 * op however large: a backlog is written in several rounds, in submission order, each bounded
 * in its statements, its memory and its time on the loop. (kurer__storeq_next takes it all.) */
#define KURER__STOREQ_TAKE_ITEMS 1024
#define KURER__STOREQ_TAKE_BYTES (4u << 20)
kurer__op *kurer__storeq_take(kurer__storeq *q, uint64_t *wait_ns);
/* Hands a round's operations (err set) to the loop; n ops ran in a transaction of us. */
void kurer__storeq_finish(kurer__storeq *q, kurer__op *round, uint64_t n, uint64_t us);
/* A blocking start-up loader takes the backend between rounds, and gives it back. */
void kurer__storeq_exclusive_begin(kurer__storeq *q);
void kurer__storeq_exclusive_end(kurer__storeq *q);

/* The loop's side. A put record (copies of the request; seqs and prev allocated, for the backend
 * to fill), submitted with kurer__storeq_submit. NULL when out of memory. */
kurer__op *kurer__storeq_put_new(const kurer_store_put_req *req);
/* The same for kurer_store_put_fanout (fanout set, the shared bytes in blob); NULL when out of
 * memory or shared is empty or over KURER_FRAME_MAX. */
kurer__op *kurer__storeq_fanout_new(const kurer_store_put_req *req, const uint8_t *shared,
                                    size_t shared_len);
void kurer__storeq_submit(kurer__storeq *q, kurer__op *o);
void kurer__op_free(kurer__op *o);

/* A fetch record, for the backend to set high (at submission, or when it reads) and submit. */
kurer__op *kurer__storeq_fetch_new(const kurer_device_address *dev, uint64_t after, size_t limit,
                                   kurer_store_fetch_cb cb, void *arg);

/* Operations-table entries for the operations that queue as they are. */
int kurer__storeq_ack(kurer_store *s, const kurer_device_address *dev, const uint64_t *seqs,
                      size_t n, kurer_store_done_cb cb, void *arg);
int kurer__storeq_put_device(kurer_store *s, const kurer_store_device *d, kurer_store_done_cb cb,
                             void *arg);
int kurer__storeq_put_prekeys(kurer_store *s, const kurer_store_prekeys *p, kurer_store_count_cb cb,
                              void *arg);
int kurer__storeq_take_prekeys(kurer_store *s, const kurer_device_address *devs, size_t n,
                               size_t n_one_time, kurer_store_bundles_cb cb, void *arg);
int kurer__storeq_count_prekeys(kurer_store *s, const kurer_device_address *dev,
                                kurer_store_count_cb cb, void *arg);
int kurer__storeq_put_crl(kurer_store *s, const uint8_t issuer_key_id[32], uint64_t version,
                          const uint8_t *list, size_t len, kurer_store_done_cb cb, void *arg);
int kurer__storeq_backup(kurer_store *s, const char *path, kurer_store_done_cb cb, void *arg);
int kurer__storeq_invite(kurer_store *s, const kurer_store_invite_req *req,
                         kurer_store_invite_cb cb, void *arg);
int kurer__storeq_blob(kurer_store *s, const kurer_store_blob_req *req, kurer_store_blob_cb cb,
                       void *arg);
void kurer__storeq_set_commit_delay(kurer_store *s, uint64_t us);
void kurer__storeq_get_stats(kurer_store *s, kurer_store_stats *out);

#endif
