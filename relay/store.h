/* The relay store: mailboxes, the device directory, prekeys, revocation lists and blobs behind one
 * asynchronous interface: an operations table (kurer_store_ops) that each backend fills, with one
 * constructor per backend (kurer_store_open_sqlite, kurer_store_open_postgres). The kurer_store_*
 * functions below dispatch through it. What does not depend on the backend (operations as queued
 * records, the submission queue, completions on the loop, put/ack pairing and held puts) is in
 * store_queue.h, for every backend to share.
 *
 * Every operation is submitted on the loop thread and completes on the loop thread: its callback
 * runs from the loop, never inside the submitting call (the one exception, a put's on_seqs, says
 * so). A backend does its blocking work elsewhere (sqlite and, for now, postgres: one writer
 * thread; the postgres backend is to drive libpq on the loop with uv_poll). So the connection code
 * never waits for a disk or a network. If a call that takes a callback fails, the callback never
 * runs.
 *
 * Durability: a put's on_done runs only after the transaction holding its envelopes has
 * committed (sqlite: WAL, synchronous=FULL). The sqlite backend groups everything submitted while
 * a commit is running into the next transaction (group commit).
 *
 * Sequence numbers are the store's, per device (docs/relay.md, "Sequence numbers and early
 * delivery"). The contract every backend keeps:
 *   - a device's seqs increase in the order the store assigns them, and the store assigns them
 *     in the order in which it makes the puts visible to fetches of that device: once a fetch
 *     of the device has seen seq q, no envelope with a seq below q is committed for it later
 *     (sqlite: one writer, and every fetch writes the puts submitted before it first; a
 *     PostgreSQL backend: the seq comes from `UPDATE ... RETURNING` on the device's counter row
 *     inside the envelope's transaction, whose row lock makes commit order seq order);
 *   - a seq once handed out (to on_seqs) is never handed out again for that device, whether its
 *     put was written, cancelled by its ack or refused, also after a close and reopen and after
 *     a crash (sqlite: an epoch raised durably at every open; a seq that could be handed out
 *     again after a crash goes to on_seqs only once committed);
 *   - devices are independent: a put for one device does not use up another's seqs.
 * Delivery relies on the first point: it pushes a device's rows with seq > the last it pushed.
 *
 * Puts and acks that meet: when an ack of device D for seq q is submitted while the put that
 * holds (D, q) has not been executed yet, the two cancel and neither is written. The ack is
 * the recipient's statement that its own store committed the envelope (clients ack only after
 * their commit), so the envelope is durable without the relay's copy (DESIGN.md, "accepted once
 * durable"). A backend that cannot pair them simply inserts and deletes.
 *
 * Buffers passed in are copied at submission; results passed to callbacks are borrowed for the
 * duration of the callback. */
#ifndef KURER_RELAY_STORE_H
#define KURER_RELAY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "kurer/enrol.h"
#include "kurer/error.h"
#include "hist.h"
#include "kurer/frame.h"

typedef struct kurer_store kurer_store;

/* One envelope to store: the recipient device and the envelope bytes (with from and server_ts
 * already set by the relay). */
typedef struct kurer_store_item {
    kurer_device_address to;
    kurer_device_address from; /* the sender (its user has a share of the mailbox) */
    const uint8_t *env;
    size_t len;
} kurer_store_item;

/* Bounds a put checks against what a mailbox already holds (0: no bound). */
typedef struct kurer_store_limits {
    uint64_t mailbox_max; /* envelopes queued for one device */
    uint64_t sender_max;  /* of those, from one sender user */
} kurer_store_limits;

typedef struct kurer_store_row {
    uint64_t seq;
    const uint8_t *env;
    size_t len;
} kurer_store_row;

/* A directory entry: a device that connected with a valid chain. */
typedef struct kurer_store_device {
    kurer_device_address addr;
    uint64_t serial;
    const uint8_t *chain; /* CertificateChain bytes */
    size_t chain_len;
} kurer_store_device;

/* The seqs the store assigned to a put's items (n of them, in item order), and for each the seq
 * it assigned to the same device just before (for a device's first: the high mark a fetch
 * reports, kurer_store_fetch_cb), before the put is durable. No seq of the device lies between
 * prev[i] and seqs[i]: a connection that has pushed prev[i] may push seqs[i] without skipping
 * anything. */
typedef void (*kurer_store_seqs_cb)(void *arg, const uint64_t *seqs, const uint64_t *prev,
                                    size_t n);
/* err is 0 or a negative code; seqs (n of them, in item order) only on success. cancelled: how
 * many of them met their ack and were not written. */
typedef void (*kurer_store_put_cb)(void *arg, int err, const uint64_t *seqs, size_t n,
                                   size_t cancelled);
/* rows in seq order; total is the number of envelopes queued for the device. high: the highest
 * seq the store had assigned to the device when the fetch read. Every envelope of the device
 * with a seq in (after, high] that is ever stored was visible to this fetch, so a reader that got
 * fewer rows than it asked for has seen all of them: it may treat high as pushed. */
typedef void (*kurer_store_fetch_cb)(void *arg, int err, const kurer_store_row *rows, size_t n,
                                     uint64_t total, uint64_t high);
typedef void (*kurer_store_done_cb)(void *arg, int err);
/* Called once per stored device, synchronously, from kurer_store_load_directory. */
typedef void (*kurer_store_device_cb)(void *arg, const kurer_store_device *d);

typedef struct kurer_store_stats {
    uint64_t commits;
    uint64_t last_batch; /* operations in the last transaction */
    uint64_t last_commit_us;
    kurer__hist commit_hist;       /* every transaction's duration */
    uint64_t queued_ops;           /* submitted, not yet completed */
    uint64_t refused_full;         /* puts refused: a mailbox at mailbox_max */
    uint64_t refused_share;        /* puts refused: a sender at its share (sender_max) */
    uint64_t rounds_in_flight_max; /* transactions running at once, at most so far (postgres:
                                      up to pg_pool; sqlite: 1) */
} kurer_store_stats;

/* ---- prekeys and revocation lists: their types ------------------------------------------ */

/* Stored per device: the registration id and the current signed prekey (one row; a new upload
 * replaces it), and a pool of one-time prekeys keyed by their id (an upload adds to the pool; an
 * id already there is replaced). The signature is checked by the relay before it submits. */
typedef struct kurer_store_prekeys {
    kurer_device_address dev;
    uint32_t registration_id;
    kurer_signed_prekey signed_prekey;
    const kurer_one_time_prekey *one_time;
    size_t n_one_time;
    uint64_t max_one_time; /* the pool may hold at most this many afterwards (0: no bound) */
} kurer_store_prekeys;

/* What a fetch took for one device. Devices with no signed prekey are left out. */
typedef struct kurer_store_bundle {
    kurer_device_address dev;
    uint32_t registration_id;
    kurer_signed_prekey signed_prekey;
    int has_one_time;
    kurer_one_time_prekey one_time; /* deleted from the store in the same transaction */
    uint64_t remaining;             /* one-time prekeys left for the device afterwards */
} kurer_store_bundle;

/* count: one-time prekeys the device holds after the operation. */
typedef void (*kurer_store_count_cb)(void *arg, int err, uint64_t count);
/* bundles in the order of the devices asked for (those without a signed prekey left out). */
typedef void (*kurer_store_bundles_cb)(void *arg, int err, const kurer_store_bundle *b, size_t n);
/* Called once per stored list, synchronously, from kurer_store_load_crls. */
typedef void (*kurer_store_crl_cb)(void *arg, const uint8_t *list, size_t len);

/* A put: n envelopes, stored durably in one transaction (with whatever else is pending), except
 * those cancelled by their ack (see above). A mailbox that would hold more than
 * lim.mailbox_max envelopes, or more than lim.sender_max from one sender user, refuses the whole
 * put with KURER_ELIMIT (counted in the stats).
 *
 * hold_us > 0 marks a put whose envelopes are all going out before it is durable: the store may
 * keep it out of its transactions for up to hold_us (microseconds) waiting for their acks, so
 * that a put and its acks that arrive within that time are never written at all, whichever
 * batches they fall into. A held put is written (before anything that reads mailboxes, i.e. any
 * fetch, and at close) once hold_us have passed without all its acks. A backend may ignore it.
 *
 * on_seqs (may be NULL) runs once with the put's seqs, before on_done, on the loop thread; a
 * backend that assigns seqs at submission (sqlite) runs it inside kurer_store_put, after the put
 * is queued (so that an ack submitted from on_seqs pairs with it). A put that fails before it
 * has seqs gets on_done with the error and no on_seqs. */
typedef struct kurer_store_put_req {
    const kurer_store_item *items;
    size_t n;
    kurer_store_limits lim;
    uint64_t hold_us;
    kurer_store_seqs_cb on_seqs;
    kurer_store_put_cb on_done;
    void *arg;
} kurer_store_put_req;

/* ---- invitations and enrolment requests (online enrolment: relay/enrol.c) ----------------- */

/* One invitation and what became of it: registered OPEN by its authority, WAITING once a
 * device's request came with the right MAC (single use: never OPEN again), APPROVED with the
 * chain or REJECTED by the authority. The relay holds the code's verifier, never the code. */
typedef struct kurer_store_invite {
    uint8_t id[KURER_ENROL_ID_LEN];
    uint8_t authority[KURER_KEY_ID_LEN]; /* key id of the authority that signed it */
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
    uint8_t verifier[KURER_ENROL_MAC_LEN];
    int64_t created_at, expires_at;           /* Unix seconds */
    uint32_t failures;                        /* wrong MACs presented for it */
    int state;                                /* kurer_enrol_state */
    uint8_t request[KURER_ENROL_REQUEST_MAX]; /* WAITING and after */
    size_t request_len;
    uint8_t authority_mac[KURER_ENROL_MAC_LEN];
    int64_t submitted_at;
    uint8_t chain[KURER_CHAIN_BYTES_MAX]; /* APPROVED */
    size_t chain_len;
} kurer_store_invite;

typedef enum kurer_store_invite_op {
    KURER_INVITE_PUT = 1, /* a new invitation (inv: all but the request's fields); EEXIST */
    KURER_INVITE_GET,     /* inv.id: one row, or KURER_ENOTFOUND */
    KURER_INVITE_SUBMIT,  /* inv.id, request, authority_mac, submitted_at: OPEN -> WAITING,
                           * else KURER_EINVITEUSED (also when it raced another submit) */
    KURER_INVITE_FAIL,    /* inv.id: failures + 1 */
    KURER_INVITE_LIST,    /* inv.authority's WAITING requests with id > after, by id, <= limit */
    KURER_INVITE_DECIDE,  /* inv.id, state (APPROVED with chain, or REJECTED): WAITING -> it,
                           * else KURER_ESTATE */
} kurer_store_invite_op;

typedef struct kurer_store_invite_req {
    kurer_store_invite_op op;
    kurer_store_invite inv;
    int has_after; /* LIST */
    uint8_t after[KURER_ENROL_ID_LEN];
    size_t limit; /* LIST: at most KURER_ENROL_PAGE + 1 */
} kurer_store_invite_req;

/* rows: GET one, LIST up to limit, else none. */
typedef void (*kurer_store_invite_cb)(void *arg, int err, const kurer_store_invite *rows, size_t n);

/* ---- blobs (sealed attachments: relay/blobs.c, docs/protocol.md 3.8) ---------------------- */

/* One row per blob: its owner device (the uploader), the declared size, the bytes received (the
 * chunks are stored in order, so they form a prefix of the blob), whether the upload finished,
 * and when the blob is to be deleted (an unfinished upload: soon; a finished blob: the expiry).
 * Each operation runs in a round's transaction: a write is durable when its callback runs. */
typedef enum kurer_store_blob_op {
    KURER_BLOB_CREATE = 1, /* id, owner, size, now, expires_at; EEXIST for a used id; EQUOTA if
                            * the owner's live blobs (expires_at > now) and this one would
                            * declare more than quota bytes (0: no bound) */
    KURER_BLOB_STATE,      /* id, owner, now: the row (ENOTFOUND: none of this owner, or gone) */
    KURER_BLOB_APPEND,     /* id, owner, offset, data, now: stores the chunk; ESTATE if offset is
                            * not the bytes received or the upload is finished, ELIMIT past the
                            * declared size, ENOTFOUND as for STATE */
    KURER_BLOB_FINISH,     /* id, owner, now, expires_at: marks it finished with that expiry;
                            * ESTATE if bytes are missing; a finished one again: its row as is */
    KURER_BLOB_READ,       /* id, offset, length, now: up to length bytes from offset of a
                            * finished, unexpired blob of anyone (ENOTFOUND otherwise); offset at
                            * or past the end: ELIMIT */
    KURER_BLOB_SWEEP,      /* now: deletes every blob with expires_at <= now, with its chunks */
} kurer_store_blob_op;

typedef struct kurer_store_blob_req {
    kurer_store_blob_op op;
    uint8_t id[KURER_BLOB_ID_LEN];
    kurer_device_address owner;
    uint64_t size;   /* CREATE */
    uint64_t offset; /* APPEND, READ */
    uint64_t quota;  /* CREATE */
    uint32_t length; /* READ: 1..KURER_BLOB_CHUNK_MAX */
    int64_t now;     /* Unix seconds */
    int64_t expires_at;
    const uint8_t *data; /* APPEND: 1..KURER_BLOB_CHUNK_MAX bytes (copied at submission) */
    size_t len;
} kurer_store_blob_req;

typedef struct kurer_store_blob_res {
    uint64_t size, received; /* CREATE, STATE, APPEND, FINISH, READ (size) */
    int complete;
    int64_t expires_at;
    const uint8_t *data; /* READ */
    size_t len;
    uint64_t swept, swept_bytes; /* SWEEP: blobs deleted, their bytes received */
    uint64_t live_bytes;         /* SWEEP: bytes received of the blobs left */
} kurer_store_blob_res;

/* res is NULL unless err is 0. */
typedef void (*kurer_store_blob_cb)(void *arg, int err, const kurer_store_blob_res *res);

/* ---- the operations table ----------------------------------------------------------------- */

/* A backend: one entry per operation, each with the contract of the kurer_store_* function of
 * the same name below. Every entry is set (the conformance suite checks it). */
typedef struct kurer_store_ops {
    const char *name;
    void (*close)(kurer_store *s);
    int (*probe)(kurer_store *s);
    int (*load_directory)(kurer_store *s, kurer_store_device_cb cb, void *arg);
    int (*load_crls)(kurer_store *s, kurer_store_crl_cb cb, void *arg);
    int (*put)(kurer_store *s, const kurer_store_put_req *req);
    int (*put_fanout)(kurer_store *s, const kurer_store_put_req *req, const uint8_t *shared,
                      size_t shared_len);
    int (*fetch)(kurer_store *s, const kurer_device_address *dev, uint64_t after, size_t limit,
                 kurer_store_fetch_cb cb, void *arg);
    int (*ack)(kurer_store *s, const kurer_device_address *dev, const uint64_t *seqs, size_t n,
               kurer_store_done_cb cb, void *arg);
    int (*put_device)(kurer_store *s, const kurer_store_device *d, kurer_store_done_cb cb,
                      void *arg);
    int (*put_prekeys)(kurer_store *s, const kurer_store_prekeys *p, kurer_store_count_cb cb,
                       void *arg);
    int (*take_prekeys)(kurer_store *s, const kurer_device_address *devs, size_t n,
                        size_t n_one_time, kurer_store_bundles_cb cb, void *arg);
    int (*count_prekeys)(kurer_store *s, const kurer_device_address *dev, kurer_store_count_cb cb,
                         void *arg);
    int (*put_crl)(kurer_store *s, const uint8_t issuer_key_id[32], uint64_t version,
                   const uint8_t *list, size_t len, kurer_store_done_cb cb, void *arg);
    int (*backup)(kurer_store *s, const char *path, kurer_store_done_cb cb, void *arg);
    int (*invite)(kurer_store *s, const kurer_store_invite_req *req, kurer_store_invite_cb cb,
                  void *arg);
    int (*blob)(kurer_store *s, const kurer_store_blob_req *req, kurer_store_blob_cb cb, void *arg);
    void (*set_commit_delay)(kurer_store *s, uint64_t us);
    void (*get_stats)(kurer_store *s, kurer_store_stats *out);
} kurer_store_ops;

/* What every backend's store starts with (a backend's own struct embeds it first). */
struct kurer_store {
    const kurer_store_ops *ops;
    struct kurer__storeq *q; /* the shared queue (store_queue.h), for backends that use it */
};

/* ---- constructors (one per backend) ------------------------------------------------------- */

/* Opens (creating if needed) the SQLCipher store at path with a raw 256-bit key, checks that
 * SQLCipher is really there (cipher_version) and that the key is right, brings the schema up to
 * date, raises the seq epoch (kurer_store_probe says whether it could) and starts the writer
 * thread. Blocking: call before
 * serving. KURER_EPASSPHRASE for a wrong key, KURER_ELINKAGE if the SQLite in the process is
 * not SQLCipher, KURER_EVERSION for a store of a newer relay, KURER_ESTORAGE otherwise. */
KURER_MUST_CHECK int kurer_store_open_sqlite(kurer_store **out, uv_loop_t *loop, const char *path,
                                             const uint8_t key[32]);

/* Connects to PostgreSQL with a libpq connection string (for several hosts with
 * target_session_attrs=read-write, the primary), brings the schema up to date when it is older
 * and the role may (KURER_EVERSION for a database of a newer relay), and opens a pool of pool
 * connections (1..16, else KURER_EINVAL) that run the store's transactions on the loop, one
 * each at a time. Blocking: call before serving. KURER_ESTORAGE when it cannot connect or the
 * schema cannot be made current. The string may hold a password: it is kept in wiped memory and
 * never logged. Seqs are reported after the commit (on_seqs runs just before on_done; hold_us is
 * ignored). A lost connection is made again (a multi-host string follows a failover) and the
 * round it met is run again, or found committed, never reported accepted before it is:
 * docs/scale-out.md, "Failover". */
KURER_MUST_CHECK int kurer_store_open_postgres(kurer_store **out, uv_loop_t *loop,
                                               const char *conninfo, size_t pool);
/* Creates or migrates the postgres backend's schema and returns (kurer-relay init). */
KURER_MUST_CHECK int kurer_store_init_postgres(const char *conninfo);

/* ---- operations (through the table) ------------------------------------------------------- */

/* Stops accepting work, lets the backend finish (and commit) everything submitted, runs the
 * remaining callbacks, and frees the store. Blocking; on the loop thread. NULL-safe. */
static inline void kurer_store_close(kurer_store *s)
{
    if (s != NULL)
        s->ops->close(s);
}

/* Whether the store takes writes (sqlite: it could record the seq epoch at open, and its file
 * system has room for an envelope): 0, or KURER_ESTORAGE (a full disk: the relay serves what
 * is stored, and sends get ESTORAGE until there is room). At start-up. */
KURER_MUST_CHECK static inline int kurer_store_probe(kurer_store *s)
{
    return s->ops->probe(s);
}

/* Reads the directory (blocking; at start-up, before serving). */
KURER_MUST_CHECK static inline int kurer_store_load_directory(kurer_store *s,
                                                              kurer_store_device_cb cb, void *arg)
{
    return s->ops->load_directory(s, cb, arg);
}

/* Reads the stored revocation lists (blocking; at start-up, before serving). */
KURER_MUST_CHECK static inline int kurer_store_load_crls(kurer_store *s, kurer_store_crl_cb cb,
                                                         void *arg)
{
    return s->ops->load_crls(s, cb, arg);
}

/* Submits a put (kurer_store_put_req above). */
KURER_MUST_CHECK static inline int kurer_store_put(kurer_store *s, const kurer_store_put_req *req)
{
    return s->ops->put(s, req);
}

/* A fan-out put (docs/relay.md, "Fan-out"): shared (kurer_fanout_shared_encode: an envelope
 * without its `to`, with from and server_ts set by the relay), stored
 * once, and for each of the n items (to, from; env unused) a reference in the device's mailbox
 * with its own seq. Everything else is a put's: the same seqs and on_seqs, the same limits
 * counted per device (a reference is one envelope of the mailbox, of from's user), one
 * transaction with whatever else is pending, acks that meet their item cancel it (the shared
 * bytes are written only if one item is not cancelled). fetch returns a reference as the whole
 * envelope (the shared bytes with the device's `to`: what kurer_envelope_encode would give);
 * ack removes it, and the shared bytes go with the last reference acked. shared_len 1..
 * KURER_FRAME_MAX, else KURER_EINVAL (the callback never runs). */
KURER_MUST_CHECK static inline int kurer_store_put_fanout(kurer_store *s,
                                                          const kurer_store_put_req *req,
                                                          const uint8_t *shared, size_t shared_len)
{
    return s->ops->put_fanout(s, req, shared, shared_len);
}

/* Up to limit envelopes of a device with seq > after, oldest first (limit 0: the count only). */
KURER_MUST_CHECK static inline int kurer_store_fetch(kurer_store *s,
                                                     const kurer_device_address *dev,
                                                     uint64_t after, size_t limit,
                                                     kurer_store_fetch_cb cb, void *arg)
{
    return s->ops->fetch(s, dev, after, limit, cb, arg);
}

/* Deletes the device's envelopes with these seqs (unknown seqs are ignored). */
KURER_MUST_CHECK static inline int kurer_store_ack(kurer_store *s, const kurer_device_address *dev,
                                                   const uint64_t *seqs, size_t n,
                                                   kurer_store_done_cb cb, void *arg)
{
    return s->ops->ack(s, dev, seqs, n, cb, arg);
}

/* Records (or replaces) a directory entry. */
KURER_MUST_CHECK static inline int kurer_store_put_device(kurer_store *s,
                                                          const kurer_store_device *d,
                                                          kurer_store_done_cb cb, void *arg)
{
    return s->ops->put_device(s, d, cb, arg);
}

/* Stores an upload durably (callback after the commit) and reports the device's pool size. An
 * upload after which the pool would hold more than max_one_time one-time prekeys is refused
 * whole with KURER_ELIMIT: nothing of it is stored. */
KURER_MUST_CHECK static inline int kurer_store_put_prekeys(kurer_store *s,
                                                           const kurer_store_prekeys *p,
                                                           kurer_store_count_cb cb, void *arg)
{
    return s->ops->put_prekeys(s, p, cb, arg);
}

/* For each of n devices: its registration id and signed prekey, and, for the first n_one_time
 * of them, one one-time prekey (the lowest id), which is deleted in the same transaction, so no
 * prekey is handed out twice. The callback runs after the commit. n <= KURER_USER_DEVICES_MAX
 * (else KURER_ELIMIT). */
KURER_MUST_CHECK static inline int kurer_store_take_prekeys(kurer_store *s,
                                                            const kurer_device_address *devs,
                                                            size_t n, size_t n_one_time,
                                                            kurer_store_bundles_cb cb, void *arg)
{
    return s->ops->take_prekeys(s, devs, n, n_one_time, cb, arg);
}

/* The number of one-time prekeys a device holds, and whether it has ever uploaded
 * (count_cb's err is KURER_ENOTFOUND if it has no signed prekey). */
KURER_MUST_CHECK static inline int kurer_store_count_prekeys(kurer_store *s,
                                                             const kurer_device_address *dev,
                                                             kurer_store_count_cb cb, void *arg)
{
    return s->ops->count_prekeys(s, dev, cb, arg);
}

/* Stores a verified SignedRevocationList as the newest of its issuer (key id), unless a list
 * with this version or a newer one is stored already (then nothing changes; not an error).
 * The callback runs after the commit. */
KURER_MUST_CHECK static inline int
kurer_store_put_crl(kurer_store *s, const uint8_t issuer_key_id[32], uint64_t version,
                    const uint8_t *list, size_t len, kurer_store_done_cb cb, void *arg)
{
    return s->ops->put_crl(s, issuer_key_id, version, list, len, cb, arg);
}

/* Writes a consistent, encrypted copy of the store to path (docs/relay.md, "Backup"): what
 * every commit before it left, in one read, between transactions; held puts are written
 * first. sqlite: sqlcipher_export into path.tmp (attached under the store's own key and salt,
 * no journal), fsync, rename to path. The callback runs once the file is in place (err 0) or
 * with KURER_ESTORAGE / KURER_EIO (nothing at path then; a path.tmp may be left). */
KURER_MUST_CHECK static inline int kurer_store_backup(kurer_store *s, const char *path,
                                                      kurer_store_done_cb cb, void *arg)
{
    return s->ops->backup(s, path, cb, arg);
}

/* One invitation operation (kurer_store_invite_op), in the round's transaction: writes are
 * durable when the callback runs; a read sees what the rounds before it committed. */
KURER_MUST_CHECK static inline int kurer_store_invite_run(kurer_store *s,
                                                          const kurer_store_invite_req *req,
                                                          kurer_store_invite_cb cb, void *arg)
{
    return s->ops->invite(s, req, cb, arg);
}

/* One blob operation (kurer_store_blob_op), in the round's transaction: writes are durable when
 * the callback runs. KURER_EINVAL at once for a chunk or length out of its bounds. */
KURER_MUST_CHECK static inline int kurer_store_blob_run(kurer_store *s,
                                                        const kurer_store_blob_req *req,
                                                        kurer_store_blob_cb cb, void *arg)
{
    return s->ops->blob(s, req, cb, arg);
}

/* A backend may hold submitted work up to us microseconds before it starts a transaction, to
 * gather larger batches and to let acks meet their puts (0: start at once). */
static inline void kurer_store_set_commit_delay(kurer_store *s, uint64_t us)
{
    s->ops->set_commit_delay(s, us);
}

static inline void kurer_store_get_stats(kurer_store *s, kurer_store_stats *out)
{
    s->ops->get_stats(s, out);
}

#endif
