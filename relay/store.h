/* The relay store: mailboxes, the device directory, prekeys and revocation lists behind one
 * asynchronous interface.
 *
 * Every operation is submitted on the loop thread and completes on the loop thread: its callback
 * runs from a uv_async handle, never inside the submitting call. A backend does its blocking
 * work elsewhere (sqlite: one writer thread; a PostgreSQL backend would drive libpq on the loop
 * with uv_poll). So the connection code never waits for a disk or a network.
 *
 * Durability: a put's callback runs only after the transaction holding its envelopes has
 * committed (sqlite: WAL, synchronous=FULL). The sqlite backend groups everything submitted while
 * a commit is running into the next transaction (group commit).
 *
 * Seqs are increasing per device (a store-wide counter that is never reused, so they are also
 * unique); a device acks seqs and only its own rows are deleted. The relay assigns them itself
 * (so that it can deliver an envelope before the put commits), from a range the store has
 * reserved durably (kurer_store_seq_start, kurer_store_reserve_seqs): a seq handed to a device
 * is never handed out again, even after a crash.
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

#include "kurer/error.h"
#include "kurer/frame.h"

typedef struct kurer_store kurer_store;

/* One envelope to store: the recipient device and the envelope bytes (with from and server_ts
 * already set by the relay). */
typedef struct kurer_store_item {
    kurer_device_address to;
    kurer_device_address from; /* the sender (its user has a share of the mailbox) */
    uint64_t seq;              /* assigned by the caller: increasing, within the reserved range */
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

/* err is 0 or a negative code; seqs (n of them, in item order: the items' own) only on
 * success. cancelled: how many of them met their ack and were not written. */
typedef void (*kurer_store_put_cb)(void *arg, int err, const uint64_t *seqs, size_t n,
                                   size_t cancelled);
/* rows in seq order; total is the number of envelopes queued for the device. */
typedef void (*kurer_store_fetch_cb)(void *arg, int err, const kurer_store_row *rows, size_t n,
                                     uint64_t total);
typedef void (*kurer_store_done_cb)(void *arg, int err);
/* Called once per stored device, synchronously, from kurer_store_load_directory. */
typedef void (*kurer_store_device_cb)(void *arg, const kurer_store_device *d);

typedef struct kurer_store_stats {
    uint64_t commits;
    uint64_t last_batch; /* operations in the last transaction */
    uint64_t last_commit_us;
    uint64_t queued_ops;    /* submitted, not yet completed */
    uint64_t refused_full;  /* puts refused: a mailbox at mailbox_max */
    uint64_t refused_share; /* puts refused: a sender at its share (sender_max) */
} kurer_store_stats;

/* Opens (creating if needed) the SQLCipher store at path with a raw 256-bit key, checks that
 * SQLCipher is really there (cipher_version) and that the key is right, and starts the writer
 * thread. Blocking: call before serving. KURER_EPASSPHRASE for a wrong key, KURER_ELINKAGE if
 * the SQLite in the process is not SQLCipher, KURER_ESTORAGE otherwise. */
KURER_MUST_CHECK int kurer_store_open(kurer_store **out, uv_loop_t *loop, const char *path,
                                      const uint8_t key[32]);
/* Stops accepting work, lets the writer finish (and commit) everything submitted, runs the
 * remaining callbacks, and frees the store. Blocking; on the loop thread. NULL-safe. */
void kurer_store_close(kurer_store *s);

/* Reserves seqs durably (blocking; at start-up, before serving): *next is above every seq ever
 * stored or reserved, and [*next, *limit] (block seqs) is reserved before this returns. When
 * the reservation cannot be written (KURER_ESTORAGE: a full disk), *next is still set and
 * *limit is *next - 1 (nothing reserved): the relay can serve and reserve later. */
KURER_MUST_CHECK int kurer_store_seq_start(kurer_store *s, uint64_t block, uint64_t *next,
                                           uint64_t *limit);
/* Extends the durable reservation to upto (callback after the commit). */
KURER_MUST_CHECK int kurer_store_reserve_seqs(kurer_store *s, uint64_t upto, kurer_store_done_cb cb,
                                              void *arg);

/* Reads the directory (blocking; at start-up, before serving). */
KURER_MUST_CHECK int kurer_store_load_directory(kurer_store *s, kurer_store_device_cb cb,
                                                void *arg);

/* Stores n envelopes durably in one transaction (with whatever else is pending), except those
 * cancelled by their ack (see above). A mailbox that would hold more than lim->mailbox_max
 * envelopes, or more than lim->sender_max from one sender user, refuses the whole put with
 * KURER_ELIMIT (counted in the stats). */
KURER_MUST_CHECK int kurer_store_put(kurer_store *s, const kurer_store_item *items, size_t n,
                                     const kurer_store_limits *lim, kurer_store_put_cb cb,
                                     void *arg);
/* The same for a put whose envelopes were all delivered before it is durable: the store may keep
 * it out of its transactions for up to hold_us (microseconds) waiting for their acks, so that a
 * put and its acks that arrive within that time are never written at all, whichever batches
 * they fall into. A held put is written (before anything that reads mailboxes, i.e. any fetch,
 * and at close) once hold_us have passed without all its acks. */
KURER_MUST_CHECK int kurer_store_put_held(kurer_store *s, const kurer_store_item *items, size_t n,
                                          const kurer_store_limits *lim, uint64_t hold_us,
                                          kurer_store_put_cb cb, void *arg);
/* Up to limit envelopes of a device with seq > after, oldest first. */
KURER_MUST_CHECK int kurer_store_fetch(kurer_store *s, const kurer_device_address *dev,
                                       uint64_t after, size_t limit, kurer_store_fetch_cb cb,
                                       void *arg);
/* Deletes the device's envelopes with these seqs (unknown seqs are ignored). */
KURER_MUST_CHECK int kurer_store_ack(kurer_store *s, const kurer_device_address *dev,
                                     const uint64_t *seqs, size_t n, kurer_store_done_cb cb,
                                     void *arg);
/* Records (or replaces) a directory entry. */
KURER_MUST_CHECK int kurer_store_put_device(kurer_store *s, const kurer_store_device *d,
                                            kurer_store_done_cb cb, void *arg);

/* ---- prekeys ------------------------------------------------------------------------------ */

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

/* Stores an upload durably (callback after the commit) and reports the device's pool size. An
 * upload after which the pool would hold more than max_one_time one-time prekeys is refused
 * whole with KURER_ELIMIT: nothing of it is stored. */
KURER_MUST_CHECK int kurer_store_put_prekeys(kurer_store *s, const kurer_store_prekeys *p,
                                             kurer_store_count_cb cb, void *arg);
/* For each of n devices: its registration id and signed prekey, and, for the first n_one_time
 * of them, one one-time prekey (the lowest id), which is deleted in the same transaction, so no
 * prekey is handed out twice. The callback runs after the commit. n <= KURER_USER_DEVICES_MAX. */
KURER_MUST_CHECK int kurer_store_take_prekeys(kurer_store *s, const kurer_device_address *devs,
                                              size_t n, size_t n_one_time,
                                              kurer_store_bundles_cb cb, void *arg);
/* The number of one-time prekeys a device holds, and whether it has ever uploaded
 * (count_cb's err is KURER_ENOTFOUND if it has no signed prekey). */
KURER_MUST_CHECK int kurer_store_count_prekeys(kurer_store *s, const kurer_device_address *dev,
                                               kurer_store_count_cb cb, void *arg);

/* ---- revocation lists --------------------------------------------------------------------- */

/* Called once per stored list, synchronously, from kurer_store_load_crls. */
typedef void (*kurer_store_crl_cb)(void *arg, const uint8_t *list, size_t len);

/* Reads the stored revocation lists (blocking; at start-up, before serving). */
KURER_MUST_CHECK int kurer_store_load_crls(kurer_store *s, kurer_store_crl_cb cb, void *arg);
/* Stores a verified SignedRevocationList as the newest of its issuer (key id), unless a list
 * with this version or a newer one is stored already (then nothing changes; not an error).
 * The callback runs after the commit. */
KURER_MUST_CHECK int kurer_store_put_crl(kurer_store *s, const uint8_t issuer_key_id[32],
                                         uint64_t version, const uint8_t *list, size_t len,
                                         kurer_store_done_cb cb, void *arg);

/* A backend may hold submitted work up to us microseconds before it starts a transaction, to
 * gather larger batches and to let acks meet their puts (0: start at once). */
void kurer_store_set_commit_delay(kurer_store *s, uint64_t us);

void kurer_store_get_stats(kurer_store *s, kurer_store_stats *out);

#endif
