/* The engine's procedures (engine.c, internal): what the session worker and the request
 * workers run, always with the home lock held (kurer__hlock_take); each gives the lock up only
 * while it waits for the relay (kurer__rpc). Deadlines are monotonic ms. */
#ifndef KURER_CLIENT_ENGINE_H
#define KURER_CLIENT_ENGINE_H

#include <stdint.h>
#include <sys/socket.h>

#include "kurer/certmsg.h"
#include "kurer/frame.h"
#include "kurer/kurer.h"

/* Counters of the store the engine keeps (kurer rekey resets them): the first prekey upload
 * was made; when the signed prekey was last rotated. */
#define KURER__COUNTER_PREKEYS_UPLOADED "prekeys_uploaded"
#define KURER__COUNTER_SPK_UPLOADED_AT  "spk_uploaded_at"

/* The directory cache: users looked up on this connection, and when (a send within
 * KURER__DIR_FRESH_MS of a lookup asks nothing; a device added since comes back as STALE in the
 * send's result, which syncs it). */
#define KURER__DIR_CACHE    32
#define KURER__DIR_FRESH_MS 60000
typedef struct kurer__dir_seen {
    char user[KURER_SUBJECT_MAX + 1];
    uint64_t at_ms; /* monotonic; 0: empty slot */
} kurer__dir_seen;

/* The last peer device given up on its certificate (directory.c). */
typedef struct kurer__peer_refused {
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
    int err; /* KURER_EREVOKED, KURER_EEXPIRED, ...; 0: none */
} kurer__peer_refused;

/* Per connection, under the home lock (reset by each set-up). */
typedef struct kurer__econn {
    int prekeys_refilled; /* a PrekeysLow was answered on this connection */
    uint64_t *acks;       /* seqs committed, not yet acked (the session worker's) */
    size_t n_acks;
    kurer__dir_seen dir[KURER__DIR_CACHE];
    kurer__peer_refused refused;
    uint64_t receipts_next_ms; /* monotonic: no receipt flush before (receipt.h) */
} kurer__econn;

/* directory.c: makes the held devices of user exactly the current ones the relay lists (a
 * directory answer, or the current list of a STALE_DEVICES result) that our trust store accepts:
 * each chain is verified now (no trust on first use) and kept, a new identity key for a held
 * address recorded as a key change (session.h); devices held before but no longer listed (or
 * no longer valid) are forgotten. A chain that names another user is ignored (never stored:
 * the relay must not make us hold, and later encrypt for, a device of someone we did not ask
 * about); our own device is skipped. A device given up on its certificate is remembered. */
KURER_MUST_CHECK int kurer__dir_sync(kurer *k, const char *user, const kurer_chain *chains,
                                     size_t n_chains);
/* When no device of user is held and one was given up on its certificate on this connection:
 * that certificate's error, with *why naming the device; else 0. */
KURER_MUST_CHECK int kurer__dir_refusal(kurer *k, const char *user, kurer_refusal *why);
/* Whether user was looked up on this connection within KURER__DIR_FRESH_MS; noting a lookup. */
int kurer__dir_fresh(const kurer *k, const char *user);
void kurer__dir_note(kurer *k, const char *user);

/* Session worker, without the home lock: where to connect, the relay's key, and the first
 * handshake message (HandshakeInit with our chain; *hs to free). KURER_ESTATE before the own
 * chain is imported; resolver errors. */
KURER_MUST_CHECK int kurer__engine_hello(kurer *k, struct sockaddr_storage *addr,
                                         uint8_t relay_key[KURER_KEY_LEN], uint8_t **hs,
                                         size_t *hs_len);
/* After the handshake: the relay's revocation lists, the first prekey upload (or a weekly
 * signed prekey rotation), and everything left in the outbox. */
KURER_MUST_CHECK int kurer__engine_setup(kurer *k, uint64_t deadline);
/* One push (Deliver, PrekeysLow, QueueEmpty, RevocationIndex, Error) of connection gen, in
 * order. */
void kurer__engine_push(kurer *k, const kurer_server_frame *f, uint64_t gen, uint64_t deadline);
/* Acks what was committed (sent at once, the answer not awaited). */
void kurer__engine_acks(kurer *k);
/* Deletes the messages whose countdown has ended and, when online, sends the outbox items
 * whose backoff has passed and the receipts owed. */
void kurer__engine_tick(kurer *k, uint64_t deadline, int online);
/* Reports again every stored message the application has not taken yet. */
void kurer__engine_replay(kurer *k);
/* Library thread (takes the home lock itself): whether message rowid is still unreported (1, 0,
 * or an error), and marks it reported. */
int kurer__engine_unreported(kurer *k, int64_t rowid);
void kurer__engine_reported(kurer *k, int64_t rowid);

/* revocations.c: fetches the lists of infos newer than those held (a failure is logged and left
 * for the next connection; only a lost connection ends the walk: KURER_ECLOSED/ETIMEOUT), and
 * walks the relay's whole index at connect (failures logged, never returned). */
int kurer__engine_fetch_lists(kurer *k, const kurer_revocation_info *infos, size_t n,
                              uint64_t deadline);
void kurer__engine_sync_revocations(kurer *k, uint64_t deadline);

/* Looks users up (1..KURER_LOOKUP_USERS_MAX) in the directory and syncs their devices. *found
 * (may be NULL) gets, per user, the number of current devices listed (0: unknown to the relay).
 * An answer naming a user not asked for (or one twice) is refused whole: KURER_EMALFORMED,
 * nothing stored. */
KURER_MUST_CHECK int kurer__engine_lookup(kurer *k, const char *const *users, size_t n_users,
                                          uint64_t deadline, size_t *found);
/* Builds sessions (X3DH from fetched bundles) for every held device of user that has none
 * (why: the device without a usable bundle, KURER_ENOTFOUND). */
KURER_MUST_CHECK int kurer__engine_sessions(kurer *k, const char *user, uint64_t deadline,
                                            kurer_refusal *why);
/* The current devices of user with a session each (calls: call_signal.c): the directory is
 * asked unless it was within KURER__DIR_FRESH_MS (fresh: ask anyway), chains verified, sessions
 * built from bundles. KURER_EUNKNOWNUSER, or the errors of a send's preparation (why says
 * which device has no bundle). */
KURER_MUST_CHECK int kurer__engine_devices(kurer *k, const char *user, int fresh, uint64_t deadline,
                                           kurer_refusal *why);

/* Request workers. */
KURER_MUST_CHECK int kurer__engine_refresh(kurer *k, const char *user, uint64_t deadline,
                                           size_t *devices);
KURER_MUST_CHECK int kurer__engine_queue(kurer *k, const char *to, int level, const char *text,
                                         uint64_t deadline, kurer_refusal *why,
                                         int64_t *message_id);
/* The network half of a queue: to and our own user looked up (unless fresh), sessions built
 * for their devices without one. KURER_EUNKNOWNUSER (why->user) if the relay knows no device
 * of to. */
KURER_MUST_CHECK int kurer__engine_prepare(kurer *k, const char *to, uint64_t deadline,
                                           kurer_refusal *why);
KURER_MUST_CHECK int kurer__engine_send_queued(kurer *k, int64_t message_id, uint64_t deadline,
                                               kurer_refusal *why);
KURER_MUST_CHECK int kurer__engine_flush(kurer *k, uint64_t deadline);

#endif
