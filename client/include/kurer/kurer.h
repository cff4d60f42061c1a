/* libkurer: the client library's public API (the one header an application includes).
 *
 * A handle (kurer *) is one open device home: a folder with the encrypted store (store.db, and
 * store.kdf when a passphrase protects it) and the certificate request (device.csr). There is no
 * global state: several handles, for different homes, may be open in one process at once; one
 * home is open in one handle at a time (its lock, HOME/.lock: KURER_ELOCKED otherwise).
 * kurer_crypto_init is called for you.
 *
 * Threads (docs/client.md). Each handle runs a library thread of its own, started by open and
 * joined by close, with a libuv loop that holds the relay connection. Every function here may
 * be called from any thread. The asynchronous calls (kurer_*_async) return at once; their
 * result comes later through the completion given, and every event through kurer_events: both
 * always on the library thread, one at a time. The blocking calls (kurer_connect, kurer_send,
 * kurer_poll, ...) are built on the asynchronous ones and wait for their completion; they must
 * not be called from the library thread (a callback), nor while a callback of kurer_history or
 * kurer_peer_devices runs on the calling thread: they return KURER_ESTATE there. Home calls
 * (history, certificates, policy) do not touch the network and return when done.
 *
 * Every function returns 0 or a negative KURER_* code from kurer/error.h (kurer_strerror gives
 * a message safe to show). Out-parameters are written only on success. Strings are UTF-8.
 * Classification levels are kurer_level values (1 UNCLASSIFIED, 2 RESTRICTED, 3 CONFIDENTIAL;
 * kurer_level_name gives the marking to show with every message). */
#ifndef KURER_KURER_H
#define KURER_KURER_H

#include <stddef.h>
#include <stdint.h>

/* Self-contained: kurer.h and the three small public headers below are all an application needs
 * (they are what `make install` puts under include/kurer/). No proto/ or internal header. */
#include "kurer/error.h"
#include "kurer/level.h"
#include "kurer/sizes.h"

KURER_ASSUME_NONNULL_BEGIN

typedef struct kurer kurer;

#define KURER_KEY_LEN 32 /* a raw store key, and the relay's X25519 key */

/* The longest message text, bytes of UTF-8: the serialized Content (KURER_CONTENT_MAX, what
 * the padding and the envelope's record limit leave: 63839) less room for the largest
 * wrapper around the text, a sync copy with a 128-byte destination (256 bytes). */
#define KURER_TEXT_MAX   63583
#define KURER_TEXT_MAX_S "63583"

/* Wall-clock seconds. Tests and devices with a trusted time source may supply their own. */
typedef int64_t (*kurer_clock_fn)(void *KURER_NULLABLE ud);

typedef struct kurer_create_options {
    const char *home;   /* folder; made (0700) if missing, an existing one of ours set to
                         * 0700 (KURER_EPERM if another user owns it); must not hold a
                         * store yet */
    const char *user;   /* user@authority */
    uint32_t device_id; /* 1..KURER_DEVICE_ID_MAX */
    const char *KURER_NULLABLE display_name; /* may be NULL: the user name */
    const char *relay;                       /* HOST:PORT (IP literal or DNS name, kept as given) */
    uint8_t relay_key[KURER_KEY_LEN];
    const uint8_t *root; /* the pinned root certificate (SignedCertificate bytes) */
    size_t root_len;
    uint32_t kdf_ops;                    /* Argon2id passes; 0: default */
    uint64_t kdf_mem;                    /* Argon2id bytes; 0: default */
    kurer_clock_fn KURER_NULLABLE clock; /* NULL: the system clock */
    void *KURER_NULLABLE clock_ud;
} kurer_create_options;

/* Creates a device home: the store, a libsignal identity key, a Noise static key and a
 * registration id, and writes the certificate request HOME/device.csr (signed with the identity
 * key). Protect the store with a passphrase (key NULL) or a raw 32-byte key from a platform
 * keystore (pass NULL). On success *out is the open home (free with kurer_close).
 * KURER_EEXIST if the home has a store; KURER_ESUBJECT for a bad user; root errors from the
 * certificate checks (KURER_EROLE, KURER_EEXPIRED, ...). */
KURER_EXPORT KURER_MUST_CHECK int kurer_create(const kurer_create_options *o,
                                               const char *KURER_NULLABLE pass, size_t pass_len,
                                               const uint8_t *KURER_NULLABLE key,
                                               kurer *KURER_NULLABLE *KURER_NONNULL out);

/* Opens an existing home with its passphrase (key NULL) or raw key (pass NULL). clock may be
 * NULL. KURER_EPASSPHRASE for a wrong passphrase or key (the files are left untouched),
 * KURER_ENOENT if there is no store, KURER_ELOCKED if the home is open in another handle of this
 * or another process (kurer_home_holder names it; nothing was read or asked). */
KURER_EXPORT KURER_MUST_CHECK int kurer_open(const char *home, const char *KURER_NULLABLE pass,
                                             size_t pass_len, const uint8_t *KURER_NULLABLE key,
                                             kurer_clock_fn KURER_NULLABLE clock,
                                             void *KURER_NULLABLE clock_ud,
                                             kurer *KURER_NULLABLE *KURER_NONNULL out);

typedef struct kurer_open_options {
    const char *home;
    const char *KURER_NULLABLE pass; /* a passphrase, or NULL with key */
    size_t pass_len;
    const uint8_t *KURER_NULLABLE key; /* a raw 32-byte store key, or NULL with pass */
    kurer_clock_fn KURER_NULLABLE clock;
    void *KURER_NULLABLE clock_ud;
    const char *KURER_NULLABLE holder; /* what HOME/.lock says holds the home, after the process id
                                        * (at most 63 bytes; NULL: the program's name) */
} kurer_open_options;
/* kurer_open with a name for the holder of the lock. */
KURER_EXPORT KURER_MUST_CHECK int kurer_open_with(const kurer_open_options *o,
                                                  kurer *KURER_NULLABLE *KURER_NONNULL out);

/* Who holds home open: 1 with *pid and holder (NUL-terminated, len bytes at most) if a handle
 * holds it, 0 if nobody does, or an error (KURER_ENOENT: no such folder). */
KURER_EXPORT KURER_MUST_CHECK int kurer_home_holder(const char *home, long *pid, char *holder,
                                                    size_t len);

/* Stops the library thread (requests still queued complete with KURER_ECLOSED, events not yet
 * delivered are delivered first), closes the connection and the home, wipes its keys from
 * memory and releases the home lock. NULL-safe. Not from a callback (the library thread), nor
 * inside a kurer_history or kurer_peer_devices callback: it refuses there, leaving the handle
 * open. No other call on the same handle may overlap it (or follow it). */
KURER_EXPORT void kurer_close(kurer *KURER_NULLABLE k);

/* Re-encrypts the store under a new passphrase (key NULL) or raw key (pass NULL). Crash-safe:
 * afterwards exactly one of the old and new secrets opens the store. */
KURER_EXPORT KURER_MUST_CHECK int kurer_passwd(kurer *k, const char *KURER_NULLABLE pass,
                                               size_t pass_len, const uint8_t *KURER_NULLABLE key);

/* Changes the relay this home connects to: relay is "HOST:PORT" (a DNS name is kept as typed
 * and resolved at every connect), relay_key the relay's X25519 key (NULL: keep the current
 * one). Closes the current connection, if any, and drops an attempt under way; the library
 * reconnects to the new address at the next request. */
KURER_EXPORT KURER_MUST_CHECK int kurer_set_relay(kurer *k, const char *relay,
                                                  const uint8_t *KURER_NULLABLE relay_key);
/* The relay address as configured (borrowed; valid until close or kurer_set_relay, which must not
 * run on another thread meanwhile). */
KURER_EXPORT const char *kurer_relay_address(const kurer *k);
/* The relay's static public key (KURER_KEY_LEN bytes; borrowed until close or the next
 * kurer_set_relay). */
KURER_EXPORT const uint8_t *kurer_relay_key(const kurer *k);

/* This device's user (user@authority) and device id (borrowed; valid until close). */
KURER_EXPORT const char *kurer_own_user(const kurer *k);
KURER_EXPORT uint32_t kurer_own_device(const kurer *k);

/* This device's public identity key (KURER_IDENTITY_KEY_LEN bytes, as in its certificate
 * request: what the administrator compares) and Noise key (32 bytes). Borrowed until close. */
KURER_EXPORT const uint8_t *kurer_own_identity_key(const kurer *k);
KURER_EXPORT const uint8_t *kurer_own_noise_key(const kurer *k);
/* This device's comparison code: 12 digits in three groups ("0417 9921 3380"), derived from the
 * identity key (BLAKE2b-256 with the label "kurer comparison code v1", docs/protocol.md), that
 * the user reads to the administrator, whose kurer-admin issue and pending print it for the
 * request. out receives KURER_COMPARISON_CODE_LEN characters and a NUL. */
#ifndef KURER_COMPARISON_CODE_LEN
#define KURER_COMPARISON_CODE_LEN 14
#endif
KURER_EXPORT void kurer_own_comparison_code(const kurer *k, char *out);

/* The path of the certificate request written at creation (borrowed; valid until close). */
KURER_EXPORT const char *kurer_csr_path(const kurer *k);
/* The same request as armoured text ("-----BEGIN KURER CERTIFICATE REQUEST-----", for mail and
 * chat), written beside it (borrowed; valid until close). */
KURER_EXPORT const char *kurer_csr_text_path(const kurer *k);

/* Imports this device's issued chain (CertificateChain bytes, or the device certificate and
 * its authority's certificate as SignedCertificate bytes): checks it against the pinned root
 * now, that it names this user and device, and that its identity and Noise keys are ours
 * (KURER_EKEYMISMATCH otherwise), then stores it. */
KURER_EXPORT KURER_MUST_CHECK int kurer_import_chain(kurer *k, const uint8_t *chain, size_t len);
KURER_EXPORT KURER_MUST_CHECK int kurer_import_certs(kurer *k, const uint8_t *device,
                                                     size_t device_len, const uint8_t *authority,
                                                     size_t authority_len);

/* Verifies a peer device's chain now and keeps it as that device's certificate: the only way a
 * peer's identity key comes to be trusted. */
KURER_EXPORT KURER_MUST_CHECK int kurer_add_peer(kurer *k, const uint8_t *chain, size_t len);

/* Verifies a SignedRevocationList against the root and keeps it if newer (KURER_ESTALE if
 * not): an authority's list of devices, or the root's own list of authorities (which revokes
 * every device of a listed authority). Effective at once for every check that follows, and
 * kept in the store across restarts. A list past its next_update by more than 7 days makes the
 * chains it covers fail with KURER_ECRLSTALE until a newer one is added. */
KURER_EXPORT KURER_MUST_CHECK int kurer_add_revocations(kurer *k, const uint8_t *data, size_t len);

/* New keys for this device (after its certificate was revoked, or on demand): a new identity
 * key, Noise key and registration id, and a new certificate request at kurer_csr_path (same
 * user, device id and name) for the administrator to issue. The history stays. The sessions
 * made with the old identity key are archived in the store, not used again; messages waiting
 * in the outbox were encrypted with them and become FAILED (reason KURER_EKEYMISMATCH, by
 * SENDER; kurer_outbox_retry sends them anew once the new chain is imported). The own chain is
 * forgotten: until the new one is imported (kurer_import_chain, which checks it holds the new
 * keys) the device is not enrolled, and the connection made with the old keys is closed. The
 * next connection after the import uploads a signed prekey made with the new key. A home
 * call; *sessions_archived and *messages_failed (may be NULL) say how many. Call it with no
 * send of this handle in flight (a send waiting for the relay's answer when the keys change
 * may still be accepted with the old envelopes after its message was marked FAILED). */
KURER_EXPORT KURER_MUST_CHECK int kurer_rekey(kurer *k, size_t *KURER_NULLABLE sessions_archived,
                                              size_t *KURER_NULLABLE messages_failed);

/* Who stands in the way of a level. */
typedef enum kurer_refusal_by {
    KURER_REFUSED_BY_NONE = 0,
    KURER_REFUSED_BY_CEILING = 1,   /* the root's ceiling */
    KURER_REFUSED_BY_SENDER = 2,    /* the sender's certificate (clearance, or not valid) */
    KURER_REFUSED_BY_RECIPIENT = 3, /* a recipient device's certificate */
} kurer_refusal_by;

typedef struct kurer_refusal {
    kurer_refusal_by by;
    char user[KURER_SUBJECT_MAX + 1]; /* whose certificate (BY_SENDER, BY_RECIPIENT) */
    uint32_t device_id;
    int limit; /* the level that certificate or ceiling allows, or 0 if it is not valid */
} kurer_refusal;

/* The send-side classification policy: 0 if this device may send a message of level to every
 * device of to that the home holds a certificate for, else KURER_ECLEARANCE (the level is
 * above a clearance or the ceiling) or the certificate error (KURER_EREVOKED, KURER_EEXPIRED,
 * KURER_ENOTFOUND: no device known), with *why (may be NULL) saying which. */
KURER_EXPORT KURER_MUST_CHECK int kurer_check_send(kurer *k, const char *to, int level,
                                                   kurer_refusal *KURER_NULLABLE why);

/* The receive-side policy for a message of level from from/device: 0 to show it, or
 * KURER_ECLEARANCE / a certificate error with *why: such a message is kept quarantined, never
 * shown. */
KURER_EXPORT KURER_MUST_CHECK int kurer_check_receive(kurer *k, const char *from,
                                                      uint32_t device_id, int level,
                                                      kurer_refusal *KURER_NULLABLE why);

typedef enum kurer_message_state {
    KURER_MESSAGE_RECEIVED = 0,
    KURER_MESSAGE_QUARANTINED = 1, /* received, above a clearance: not to be shown */
    KURER_MESSAGE_PENDING = 2,     /* sent, waiting in the outbox */
    KURER_MESSAGE_SENT = 3,        /* accepted by the relay for every device */
    KURER_MESSAGE_FAILED = 4,
} kurer_message_state;

#define KURER_GROUP_HEX_MAX 64 /* a group id in hex */

typedef struct kurer_message {
    uint8_t id[16];   /* the envelope id (the sender's), the dedup key */
    int outgoing;     /* 1 if we sent it */
    const char *peer; /* user@authority of the other side */
    uint32_t peer_device;
    int level;        /* kurer_level: show kurer_level_name(level) with the message */
    const char *body; /* NUL-terminated; "" for a quarantined message */
    int64_t sent_at;  /* Unix ms, the sender's clock */
    int64_t received_at;
    kurer_message_state state;
    int reason; /* why quarantined or failed (a KURER_* code), else 0 */
    /* A group message: the group's id in hex (64 digits); "" for a one-to-one message. An
     * outgoing group message names our own user as peer. */
    char group[KURER_GROUP_HEX_MAX + 1];
    /* Disappearing messages (docs/client.md, "Receipts and disappearing messages"). */
    uint32_t expire_timer; /* seconds the message lives once read (sent, for ours); 0: kept */
    int64_t expires_at;    /* Unix ms when it is deleted; 0: its countdown has not started */
    int64_t read_at;       /* incoming: read on this device or another of ours (Unix ms); 0 */
    int timer_change;      /* 1: a notice, no text: the conversation's timer is expire_timer */
    /* Receipts. For an outgoing message: the recipient devices that have it (a delivered or a
     * read receipt: read implies delivered) and that have shown it, and the same counted per
     * user (for a group, members). For an incoming one: our own devices that told the others
     * (their sync copies). kurer_history fills receipts (one entry per device, by user and
     * device id); events leave it NULL. */
    uint32_t delivered_devices, read_devices;
    uint32_t delivered_users, read_users;
    const struct kurer_message_receipt *KURER_NULLABLE receipts;
    size_t n_receipts;
} kurer_message;

/* One device's receipts of a message. */
typedef struct kurer_message_receipt {
    const char *user; /* user@authority */
    uint32_t device_id;
    int64_t delivered_at; /* Unix ms (our clock) its delivered receipt came; 0: none */
    int64_t read_at;      /* its read receipt; 0: not read there */
} kurer_message_receipt;

/* Calls fn for each stored message, oldest first; with with != NULL only that peer's. The
 * message is valid during the call only. A non-zero return from fn stops and is returned. */
typedef int (*kurer_message_fn)(void *KURER_NULLABLE ud, const kurer_message *m);
KURER_EXPORT KURER_MUST_CHECK int kurer_history(kurer *k, const char *KURER_NULLABLE with,
                                                kurer_message_fn fn, void *KURER_NULLABLE ud);

/* The safety number with a peer device (60 digits and the NUL) from the certified keys. */
KURER_EXPORT KURER_MUST_CHECK int kurer_fingerprint(kurer *k, const char *user, uint32_t device_id,
                                                    char text[KURER_NONNULL 64]);

/* A device of a peer (or one of our own other devices) as the home holds it. */
typedef struct kurer_peer_device {
    const char *user;
    uint32_t device_id;
    int status;            /* 0 if its chain verifies now, else why not (KURER_EREVOKED...) */
    uint64_t serial;       /* of the device certificate */
    int clearance;         /* kurer_level; 0 if status != 0 */
    const char *authority; /* authority id */
    int64_t not_before, not_after;
    const char *cert_fingerprint; /* BLAKE2b-256 of the certificate body, hex */
    /* Revocation freshness: which held lists covering this chain are past their next_update
     * (KURER_PEER_STALE_*; 0 if all are current). With status 0 they are inside the grace
     * period: show a warning, revocations made since may be missing. With status
     * KURER_ECRLSTALE the grace is over and the device is refused until a newer list comes. */
    unsigned crl_stale;
    int64_t crl_stale_since; /* the earliest next_update of those lists (Unix seconds), or 0 */
} kurer_peer_device;

#define KURER_PEER_STALE_AUTHORITY_LIST 1u /* the authority's list of its devices */
#define KURER_PEER_STALE_ROOT_LIST      2u /* the root's list of authorities */

/* Calls fn for each device of user the home holds a certificate for, lowest id first (the
 * struct is valid during the call only; a non-zero return stops and is returned). */
typedef int (*kurer_peer_device_fn)(void *KURER_NULLABLE ud, const kurer_peer_device *d);
KURER_EXPORT KURER_MUST_CHECK int
kurer_peer_devices(kurer *k, const char *user, kurer_peer_device_fn fn, void *KURER_NULLABLE ud);

/* Calls fn once with this device's own certificate as the home holds it (status: verified
 * now against the root and revocation lists). KURER_ESTATE before the chain is imported. */
KURER_EXPORT KURER_MUST_CHECK int kurer_own_certificate(kurer *k, kurer_peer_device_fn fn,
                                                        void *KURER_NULLABLE ud);

/* A peer device (or one of our own other devices) that now holds a new certificate with a new
 * identity key: re-enrolled, its old certificate superseded or revoked. The new chain was
 * verified as every chain is (root, validity, revocation; no trust on first use); the session
 * with the old key was deleted (the old key is kept here, in the home's history of keys) and a
 * new one is built from a fresh prekey bundle at the next send. Sending never fails because of
 * it. The same address with a new certificate of the same key (a renewal) is no key change. */
typedef struct kurer_key_change {
    int64_t id;       /* the stored record, oldest first */
    const char *user; /* user@authority */
    uint32_t device_id;
    uint64_t serial;     /* of the new certificate */
    const char *issuer;  /* the authority id that issued it */
    uint64_t old_serial; /* of the certificate it replaces */
    const char *old_issuer;
    const char *key_fingerprint;     /* BLAKE2b-256 of the new identity key, hex */
    const char *old_key_fingerprint; /* of the old one */
    int64_t at;                      /* when this home noticed it (Unix seconds) */
} kurer_key_change;

/* Calls fn for each key change this home has noticed, oldest first; with with != NULL only
 * that user's. The struct is valid during the call only; a non-zero return from fn stops and
 * is returned. Local (no network); any thread, like kurer_history. */
typedef int (*kurer_key_change_fn)(void *KURER_NULLABLE ud, const kurer_key_change *c);
KURER_EXPORT KURER_MUST_CHECK int kurer_key_changes(kurer *k, const char *KURER_NULLABLE with,
                                                    kurer_key_change_fn fn,
                                                    void *KURER_NULLABLE ud);

/* ---- the network half -------------------------------------------------------------------- */

/* The connection as the library sees it. After a lost connection (or a failed attempt) the
 * library connects again by itself, with backoff (0.5 s doubling to 30 s, with jitter), as long
 * as it is wanted (a request, or kurer_connect, wants it; kurer_disconnect ends the wish); a
 * refusal by the relay (KURER_EREVOKED, KURER_EUNTRUSTED, KURER_EHANDSHAKE, ...), or a connection
 * replaced by a newer one of this device (KURER_EBUSY), is not retried until the next request. */
typedef enum kurer_conn_state {
    KURER_CONN_OFFLINE = 0,    /* not connected, not trying */
    KURER_CONN_CONNECTING = 1, /* an attempt runs (handshake and set-up) */
    KURER_CONN_ONLINE = 2,     /* connected and set up */
    KURER_CONN_WAITING = 3,    /* lost or failed; the next attempt after the backoff */
} kurer_conn_state;

/* A receipt as on_receipt gives it. */
typedef struct kurer_receipt_info {
    const char *peer;   /* the conversation: whom the message went to, or came from */
    const char *user;   /* who sent the receipt: peer, or our own user (a sync copy) */
    uint32_t device_id; /* the device that sent it */
    int read;           /* 1: read, 0: delivered */
    int64_t sent_at;    /* the message's sent_at (the sender's clock, Unix ms) */
    int outgoing;       /* 1: for a message we sent; 0: one we received */
} kurer_receipt_info;

/* What the library reports (all optional; ud is passed back). Every callback runs on the
 * library thread, one at a time, in order. Pointers are valid during the call only. A callback
 * may call any function of this header except the blocking network calls and kurer_close. */
typedef struct kurer_events {
    /* A message was committed to the store: received (state RECEIVED), quarantined (body "",
     * reason set: show that it came and its level, never a body), or a sync copy of what one
     * of our other devices sent (outgoing, state SENT). Every stored message is given here at
     * least once: it is stored marked unreported, the mark is cleared when this callback has
     * returned, and marked messages are given again when the events are next set (after a
     * crash or a restart). The relay is told (ack) as soon as the commit is done, not after
     * this callback. */
    void (*KURER_NULLABLE on_message)(void *KURER_NULLABLE ud, const kurer_message *m);
    /* An envelope was dropped for good (acked without storing): err says why, for example
     * KURER_EREVOKED or KURER_EEXPIRED (the sender's certificate), KURER_EUNTRUSTED,
     * KURER_EDECRYPT; or held for later (KURER_ECRLSTALE: not acked, delivered again). */
    void (*KURER_NULLABLE on_refused)(void *KURER_NULLABLE ud, const char *from, uint32_t device_id,
                                      int err);
    void *KURER_NULLABLE ud;
    /* The connection state changed; reason is why an attempt failed or a connection ended. */
    void (*KURER_NULLABLE on_state)(void *KURER_NULLABLE ud, kurer_conn_state state, int reason);
    /* Everything the relay held for us when this connection was made has been given. */
    void (*KURER_NULLABLE on_queue_empty)(void *KURER_NULLABLE ud);
    /* A peer device's key changed (kurer_key_change): tell the user, once. Noticed on a
     * directory answer, a STALE_DEVICES send result, a prekey bundle or a pre-key message
     * from the new key. Given at least once and, like on_message, marked told when this
     * callback has returned: a change not yet told is given again when the events are next
     * set; one told is never given again (kurer_key_changes still lists it). */
    void (*KURER_NULLABLE on_key_change)(void *KURER_NULLABLE ud, const kurer_key_change *c);
    /* A receipt was committed (kurer_receipt_info), once per message it names: a peer's device
     * has our message or has shown it, or one of our own other devices told that peer. */
    void (*KURER_NULLABLE on_receipt)(void *KURER_NULLABLE ud, const kurer_receipt_info *r);
} kurer_events;

/* Sets (copies) the event callbacks; NULL clears them. With on_message set, every stored
 * message not yet reported is given again (oldest first); with on_key_change set, every key
 * change not yet told. */
KURER_EXPORT void kurer_set_events(kurer *k, const kurer_events *KURER_NULLABLE ev);
/* Waits until the replay the last kurer_set_events with on_message (or on_key_change) asked
 * for has run: every message (key change) that was marked unreported then has been given to its
 * callback (or was reported by then). 0 at once if no replay was asked for; KURER_ETIMEOUT after
 * timeout_ms; KURER_ECLOSED if the handle is closing. Not from a callback (it waits for the library
 * thread). */
KURER_EXPORT KURER_MUST_CHECK int kurer_replay_wait(kurer *k, int timeout_ms);

/* ---- the asynchronous calls ---- */

/* The result of an asynchronous request, given to its completion on the library thread (valid
 * during the call only). */
typedef struct kurer_result {
    int err;            /* 0, or what the blocking call of the same name would return */
    int64_t message_id; /* send, queue, send_queued: the stored message (0 if none) */
    size_t devices;     /* refresh: the number of devices the relay listed */
    kurer_refusal why;  /* whose certificate (or the ceiling) refused, where err says so */
    int enrol_state;    /* enrol_poll: KURER_ENROL_STATE_* (0 if the relay did not say) */
    char group[KURER_GROUP_HEX_MAX + 1]; /* group create: the new group's id in hex */
    size_t marked;                       /* read: the messages marked read */
    const char *KURER_NULLABLE path;     /* attachment_save: the file written (else NULL) */
} kurer_result;
typedef void (*kurer_done_fn)(void *KURER_NULLABLE ud, const kurer_result *r);

/* Each returns 0 once the request is queued (its completion, done, may be NULL, runs exactly
 * once later), or an error at once for bad arguments (nothing queued then, done never runs).
 * timeout_ms bounds the whole request. Several requests may be in flight at once, from any
 * threads; a send does not wait behind another send or a delivery. The results are those of the
 * blocking calls below. */
KURER_EXPORT KURER_MUST_CHECK int kurer_connect_async(kurer *k, int timeout_ms,
                                                      kurer_done_fn KURER_NULLABLE done,
                                                      void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_send_async(kurer *k, const char *to, int level,
                                                   const char *text, int timeout_ms,
                                                   kurer_done_fn KURER_NULLABLE done,
                                                   void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_queue_async(kurer *k, const char *to, int level,
                                                    const char *text, int timeout_ms,
                                                    kurer_done_fn KURER_NULLABLE done,
                                                    void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_send_queued_async(kurer *k, int64_t message_id,
                                                          int timeout_ms,
                                                          kurer_done_fn KURER_NULLABLE done,
                                                          void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_refresh_async(kurer *k, const char *user, int timeout_ms,
                                                      kurer_done_fn KURER_NULLABLE done,
                                                      void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_flush_async(kurer *k, int timeout_ms,
                                                    kurer_done_fn KURER_NULLABLE done,
                                                    void *KURER_NULLABLE ud);
/* Ends the wish to be connected and closes the connection (after what is committed is acked);
 * returns at once. */
KURER_EXPORT void kurer_disconnect_async(kurer *k);
/* The connection state now (*reason, may be NULL: why the last attempt failed or the last
 * connection ended). */
KURER_EXPORT kurer_conn_state kurer_state(const kurer *k, int *KURER_NULLABLE reason);

/* Online enrolment (docs/client.md, "Online enrolment"): see kurer_enrol_submit and
 * kurer_enrol_poll below; KURER_ESTATE once the home is enrolled. */
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_submit_async(kurer *k, const char *code,
                                                           int timeout_ms,
                                                           kurer_done_fn KURER_NULLABLE done,
                                                           void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_poll_async(kurer *k, int timeout_ms,
                                                         kurer_done_fn KURER_NULLABLE done,
                                                         void *KURER_NULLABLE ud);

/* ---- the blocking calls (wait for the asynchronous ones) ---- */

/* Connects to the home's relay (Noise IK to the relay key configured at creation, our chain in
 * the first message) unless connected, and waits up to timeout_ms for: the handshake, the
 * relay's revocation lists, the first prekey upload (100 one-time prekeys and a signed prekey,
 * once per home), and a send of everything left in the outbox (after a crash or a lost
 * connection; each item's backoff is reset by a new connection). KURER_ESTATE before the own
 * chain is imported; the relay's refusal (KURER_EREVOKED, KURER_EUNTRUSTED, ...);
 * KURER_ETIMEOUT; KURER_ECLOSED or an I/O error when the relay cannot be reached (the library
 * keeps trying, with backoff, until kurer_disconnect). */
KURER_EXPORT KURER_MUST_CHECK int kurer_connect(kurer *k, int timeout_ms);
/* 1 while connected. */
KURER_EXPORT int kurer_connected(const kurer *k);
/* Acks what is committed, closes the connection (waiting at most 2.5 s) and ends the wish to
 * be connected. NULL-safe. */
KURER_EXPORT void kurer_disconnect(kurer *KURER_NULLABLE k);

/* Online enrolment by invitation (docs/protocol.md 3.6): the states of the home's request. */
#define KURER_ENROL_STATE_OPEN     1 /* the relay has the invitation but no request for it */
#define KURER_ENROL_STATE_WAITING  2 /* the request waits for the administrator */
#define KURER_ENROL_STATE_APPROVED 3 /* approved: the chain is imported */
#define KURER_ENROL_STATE_REJECTED 4
/* Sends this home's certificate request to its relay over a Noise NK enrolment session, bound
 * to the one-time invitation code from the administrator (kurer-admin invite), into the
 * authority's approval queue. HOME/invite (mode 0600) keeps the invitation's id and verifier
 * for kurer_enrol_poll, never the code. Errors: KURER_EINVAL or KURER_ECHECKDIGIT (not a code,
 * or mistyped: nothing sent), the relay's KURER_EINVITE (no such invitation: a wrong code),
 * KURER_EINVITEUSED, KURER_EINVITEEXPIRED, KURER_EINVITEMAC, KURER_ESUBJECT (another user or
 * device than invited), KURER_ERATE (too many failures from this address, or for this
 * invitation), transport errors (KURER_EHANDSHAKE: a wrong relay key); KURER_ESTATE if enrolled. */
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_submit(kurer *k, const char *code, int timeout_ms);
/* Asks the relay once what became of the request: *state (may be NULL) KURER_ENROL_STATE_*.
 * Approved: the chain the relay returns is imported as kurer_import_chain would (checked
 * against the pinned root and this device's keys) and HOME/invite removed; returns 0 then and
 * while it waits. KURER_EREJECTED if the administrator rejected it; KURER_ENOENT if no request
 * was sent from this home; the relay's and the transport's errors as for kurer_enrol_submit. */
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_poll(kurer *k, int timeout_ms,
                                                   int *KURER_NULLABLE state);

/* Asks the relay's directory for user's current devices, verifies each chain with the trust
 * store (our root, revocation lists, validity now) and keeps exactly the ones that verify;
 * *devices (may be NULL) is the number the relay listed (0: unknown user). Connects if needed. */
KURER_EXPORT KURER_MUST_CHECK int kurer_refresh(kurer *k, const char *user, int timeout_ms,
                                                size_t *KURER_NULLABLE devices);

/* Sends text at level to every current device of user to, and a sync copy to every other
 * device of our own user, in one request. Returns 0 once the relay has accepted it for every
 * device (durably). Before that: the directory is asked for both users, sessions are built
 * from fetched bundles (X3DH) for devices without one, the classification policy is checked
 * (kurer_check_send, and our own other devices too), and the message is committed to the
 * store with one outbox item per device. A stale device list in the answer is refreshed
 * (chains verified), sessions built for new devices, and the send retried.
 * Errors: KURER_ECLEARANCE / certificate errors with *why saying whose certificate (or the
 * ceiling) refuses; KURER_EUNKNOWNUSER with why->user; KURER_ENOTFOUND with why naming a
 * device that has no usable prekey bundle; transport errors (KURER_ETIMEOUT, KURER_ECLOSED):
 * if the message was committed by then, it stays in the outbox (PENDING in the history) and is
 * sent on a later connect. KURER_EMALFORMED: the relay's answer named a user or device not asked
 * about (a hostile relay; docs/protocol.md): nothing of it was used, and a committed message
 * stays in the outbox the same way. why may be NULL. */
KURER_EXPORT KURER_MUST_CHECK int kurer_send(kurer *k, const char *to, int level, const char *text,
                                             int timeout_ms, kurer_refusal *KURER_NULLABLE why);
/* (kurer_send and kurer_queue: text must be 1..KURER_TEXT_MAX bytes, KURER_EINVAL if empty,
 * KURER_ELIMIT if longer; KURER_EINVAL for to == our own user.) */
/* The first half of kurer_send: everything up to and including the commit to the outbox, but
 * no SendRequest; *message_id (may be NULL) identifies the stored message. kurer_flush, or any
 * later connect, sends it. */
KURER_EXPORT KURER_MUST_CHECK int kurer_queue(kurer *k, const char *to, int level, const char *text,
                                              int timeout_ms, kurer_refusal *KURER_NULLABLE why,
                                              int64_t *KURER_NULLABLE message_id);
/* The second half of kurer_send for a message kurer_queue committed (message_id): connects
 * if needed and waits until the relay accepted it for every device. Same results as
 * kurer_send; on a transport error (KURER_ETIMEOUT, KURER_ECLOSED, ...)
 * the message stays in the outbox and goes with a later connect. */
KURER_EXPORT KURER_MUST_CHECK int kurer_send_queued(kurer *k, int64_t message_id, int timeout_ms,
                                                    kurer_refusal *KURER_NULLABLE why);
/* Sends everything in the outbox now (connecting if needed) and waits for the results. */
KURER_EXPORT KURER_MUST_CHECK int kurer_flush(kurer *k, int timeout_ms);
/* Items waiting in the outbox (one per device and message), or a negative error. */
KURER_EXPORT int kurer_outbox_size(kurer *k);

/* ---- attachments (docs/client.md, "Attachments") ---- */

/* One attachment of a stored message. file_name is the sender's, untrusted: show it as text,
 * never use it as a path (kurer_attachment_save makes a safe name of it). */
typedef struct kurer_attachment_info {
    size_t index;             /* its place in the message, from 0 */
    const char *file_name;    /* 0..255 bytes of UTF-8 as the sender named it */
    const char *content_type; /* 0..128 bytes, the sender's */
    uint64_t size;            /* plaintext bytes */
    const char *saved_path;   /* where kurer_attachment_save wrote it, or "" */
} kurer_attachment_info;
typedef int (*kurer_attachment_fn)(void *KURER_NULLABLE ud, const kurer_attachment_info *a);
/* Calls fn for each attachment of the stored message whose envelope id is id (kurer_message.id),
 * in order; valid during the call only. A non-zero return from fn stops and is returned.
 * KURER_ENOTFOUND if no such message is stored (a message without attachments: 0, no call). */
KURER_EXPORT KURER_MUST_CHECK int kurer_message_attachments(kurer *k,
                                                            const uint8_t id[KURER_NONNULL 16],
                                                            kurer_attachment_fn fn,
                                                            void *KURER_NULLABLE ud);

/* Sends text (may be "" with files) and n_paths files (1..32) to every device of to, like
 * kurer_send: each file is sealed on this device under a random key of its own
 * (XChaCha20-Poly1305 in 64 KiB chunks) and uploaded to the relay once, whatever the number of
 * devices, resuming after a lost connection or a relay restart; then the message carries each
 * file's pointer (blob id, key, size, digest, content type, file name: the last part of its
 * path). Needs the relay (nothing is committed without it). Results as kurer_send, and: a file
 * that cannot be read (KURER_ENOENT, KURER_EPERM, KURER_EIO), not a regular file or a name that
 * is not UTF-8 or over 255 bytes (KURER_EINVAL), over the relay's blob_max_size (KURER_ELIMIT),
 * over this device's quota there (KURER_EQUOTA). The paths are copied. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_send_files_async(kurer *k, const char *to, int level, const char *text,
                       const char *KURER_NONNULL const *KURER_NONNULL paths, size_t n_paths,
                       int timeout_ms, kurer_done_fn KURER_NULLABLE done, void *KURER_NULLABLE ud);
/* The first half of kurer_send_files_async, as kurer_queue_async is of kurer_send_async:
 * sealed, uploaded and committed to the outbox (r->message_id), not sent. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_queue_files_async(kurer *k, const char *to, int level, const char *text,
                        const char *KURER_NONNULL const *KURER_NONNULL paths, size_t n_paths,
                        int timeout_ms, kurer_done_fn KURER_NULLABLE done, void *KURER_NULLABLE ud);
/* Blocking forms (not on the library thread). */
KURER_EXPORT KURER_MUST_CHECK int
kurer_send_files(kurer *k, const char *to, int level, const char *text,
                 const char *KURER_NONNULL const *KURER_NONNULL paths, size_t n_paths,
                 int timeout_ms, kurer_refusal *KURER_NULLABLE why);
KURER_EXPORT KURER_MUST_CHECK int
kurer_queue_files(kurer *k, const char *to, int level, const char *text,
                  const char *KURER_NONNULL const *KURER_NONNULL paths, size_t n_paths,
                  int timeout_ms, kurer_refusal *KURER_NULLABLE why,
                  int64_t *KURER_NULLABLE message_id);

/* Downloads attachment index of the stored message id from the relay, checks it (its digest,
 * every chunk's tag, that it ends with its final chunk and has its size) and saves it in the
 * folder dir under the safe form of its name (docs/client.md, "Attachments": directories
 * dropped; "attachment" instead of a name that begins with '.', holds a control character or a
 * backslash, is not UTF-8 or is over 200 bytes), never over an existing file (a suffix -1, -2,
 * ... before the extension), mode 0600; r->path is the file. Nothing is left in dir when it
 * fails: KURER_EBLOBDIGEST, KURER_EBLOBTAG, KURER_EBLOBTRUNC, KURER_ETRAILING (the blob is not
 * what the sender sealed), KURER_ENOTFOUND (no such message or attachment, or the relay no
 * longer has the blob: expired), KURER_ENOENT (dir is not a folder), transport errors. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_attachment_save_async(kurer *k, const uint8_t id[KURER_NONNULL 16], size_t index,
                            const char *dir, int timeout_ms, kurer_done_fn KURER_NULLABLE done,
                            void *KURER_NULLABLE ud);
/* Blocking form: path (cap bytes, may be NULL) gets the file written. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_attachment_save(kurer *k, const uint8_t id[KURER_NONNULL 16], size_t index, const char *dir,
                      int timeout_ms, char *KURER_NULLABLE path, size_t cap);

/* ---- the outbox (docs/client.md, "The outbox") ---- */

/* The longest text (bytes) that can go to n devices at once (the recipient's and our own other
 * devices: one SendRequest carries an envelope for each, and it must fit one record):
 * KURER_TEXT_MAX for one device, about half of it for two; 0 if no text fits (n is 0, or too
 * many devices). kurer_queue and kurer_send refuse a longer text with KURER_ELIMIT, why->limit
 * set to this and why->device_id to n, before anything is committed. */
KURER_EXPORT size_t kurer_text_limit(size_t n_devices);

/* An outgoing message still in the outbox, as kurer_outbox_list gives it (valid during the
 * call only). */
typedef struct kurer_outbox_entry {
    int64_t message_id; /* for kurer_outbox_retry / kurer_outbox_cancel (and the history) */
    const char *to;
    int level;
    kurer_message_state state; /* PENDING (retried with backoff) or FAILED (retried no more) */
    int reason;                /* FAILED: why (KURER_ELIMIT, KURER_EUNKNOWNUSER, KURER_EREVOKED,
                                * KURER_ECLEARANCE, ...); PENDING: 0 */
    kurer_refusal why;         /* FAILED: whose certificate, or (KURER_ELIMIT) limit = the most
                                * bytes allowed and device_id = the number of devices */
    int64_t created_at;        /* Unix ms */
    uint32_t devices;          /* envelopes still waiting (one per device) */
    uint32_t attempts;         /* failed attempts so far */
    int64_t next_attempt_at;   /* Unix ms; 0 without envelopes */
    int accepted;              /* 1 if the relay accepted it for a user already: not cancellable */
} kurer_outbox_entry;
typedef int (*kurer_outbox_fn)(void *KURER_NULLABLE ud, const kurer_outbox_entry *e);

/* A home call: fn for each outgoing message that is PENDING or FAILED (not cancelled), oldest
 * first. A non-zero return from fn stops and is returned. */
KURER_EXPORT KURER_MUST_CHECK int kurer_outbox_list(kurer *k, kurer_outbox_fn fn,
                                                    void *KURER_NULLABLE ud);
/* The same as a request (for an event loop that must not wait for the home lock): a worker
 * reads the list; on the library thread fn is called for each entry (a non-zero return stops
 * the calls), then done (may be NULL) with r->err (0, or why the list could not be read; fn
 * was not called then). Immediate errors: KURER_EINVAL, KURER_ECLOSED, KURER_ENOMEM (neither fn
 * nor done runs). fn's entry is valid during the call only. */
KURER_EXPORT KURER_MUST_CHECK int kurer_outbox_list_async(kurer *k, kurer_outbox_fn fn,
                                                          void *KURER_NULLABLE ud,
                                                          kurer_done_fn KURER_NULLABLE done,
                                                          void *KURER_NULLABLE done_ud);

/* Sends message_id again now. A PENDING one: its backoff is forgotten and it is sent (as
 * kurer_send_queued). A FAILED one: checked again as a new send would be (the recipient's and
 * our devices looked up when the relay can be reached, the classification policy, the size
 * for the devices now), encrypted anew for every device, made PENDING and sent. Results as
 * kurer_send_queued (0: accepted; a transport error: it stays PENDING). KURER_ENOTFOUND: no
 * such outgoing message; KURER_ESTATE: it was accepted already (SENT); KURER_ECANCELLED: it
 * was cancelled (for good). */
KURER_EXPORT KURER_MUST_CHECK int kurer_outbox_retry_async(kurer *k, int64_t message_id,
                                                           int timeout_ms,
                                                           kurer_done_fn KURER_NULLABLE done,
                                                           void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_outbox_retry(kurer *k, int64_t message_id, int timeout_ms,
                                                     kurer_refusal *KURER_NULLABLE why);
/* Takes message_id out of the outbox for good: its envelopes are deleted and it stays in the
 * history as FAILED with reason KURER_ECANCELLED. Waits (up to timeout_ms) for a send of the
 * same message that runs. KURER_ESTATE if the relay has accepted it for any recipient already
 * (SENT, or accepted for one user and not yet for the other): what the relay holds cannot be
 * called back; KURER_ENOTFOUND if there is no such outgoing message. No network. */
KURER_EXPORT KURER_MUST_CHECK int kurer_outbox_cancel_async(kurer *k, int64_t message_id,
                                                            int timeout_ms,
                                                            kurer_done_fn KURER_NULLABLE done,
                                                            void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_outbox_cancel(kurer *k, int64_t message_id, int timeout_ms);

/* ---- contacts and conversations (home calls) ---- */

typedef struct kurer_contact {
    const char *user;     /* a user we hold certificates of, or have messages with; not us */
    uint32_t devices;     /* device certificates held (kurer_peer_devices lists them) */
    int64_t last_contact; /* the newest message either way, Unix ms on our clock; 0 if none */
    uint64_t messages;
} kurer_contact;
typedef int (*kurer_contact_fn)(void *KURER_NULLABLE ud, const kurer_contact *c);
/* fn for each contact, by name (valid during the call only; a non-zero return stops). */
KURER_EXPORT KURER_MUST_CHECK int kurer_contacts(kurer *k, kurer_contact_fn fn,
                                                 void *KURER_NULLABLE ud);

typedef struct kurer_conversation {
    const char *peer;
    int64_t last_at;      /* the newest message, Unix ms on our clock */
    uint64_t messages;    /* all, both ways (sync copies of our other devices' included) */
    uint64_t received;    /* from the peer (quarantined ones included) */
    uint64_t quarantined; /* of those, not shown */
    uint64_t sent;        /* to the peer, accepted by the relay */
    uint64_t pending;     /* to the peer, in the outbox */
    uint64_t failed;      /* to the peer, failed or cancelled */
} kurer_conversation;
typedef int (*kurer_conversation_fn)(void *KURER_NULLABLE ud, const kurer_conversation *c);
/* fn for each peer with messages, the most recent first. The store does not know what the
 * user has read, so there is no unread count. */
KURER_EXPORT KURER_MUST_CHECK int kurer_conversations(kurer *k, kurer_conversation_fn fn,
                                                      void *KURER_NULLABLE ud);

#define KURER_POLL_UNTIL_EMPTY 1u /* return once the relay's queue is drained (QueueEmpty) */

/* Connects if needed, then waits up to timeout_ms while the library thread receives (it does
 * so whenever connected: delivered envelopes are decrypted and committed one transaction each
 * and acked, and given to on_message; duplicates are acked silently; prekeys are refilled when
 * the relay says they run low; revocation lists the relay pushes are applied; outbox items
 * whose backoff has passed are sent again). Returns 0 at the timeout, or with
 * KURER_POLL_UNTIL_EMPTY as soon as everything the relay held at connect has been given to the
 * application (KURER_ETIMEOUT if that did not happen in time); KURER_ECLOSED (or the relay's
 * reason, e.g. KURER_EREVOKED) if the connection ends. */
KURER_EXPORT KURER_MUST_CHECK int kurer_poll(kurer *k, int timeout_ms, unsigned flags);

/* ---- backups (docs/client.md, "Backup and restore") ---- */

/* Writes an encrypted copy of the open home to path (replaced atomically; mode 0600): the store
 * exported under its own key, with the passphrase's KDF record (salt and Argon2id parameters,
 * no secret), so that the backup opens with the home's passphrase (or raw key) and nothing
 * else. Consistent: between the home's transactions (KURER_ESTATE inside one). Takes the home
 * lock; the connection may stay up. KURER_EIO / KURER_ESTORAGE if it could not be written. */
KURER_EXPORT KURER_MUST_CHECK int kurer_backup(kurer *k, const char *path);
/* Restores the backup at path into home, which must be empty or missing (KURER_EEXIST if it
 * holds anything), with the passphrase (key NULL) of the backed-up home, or its raw key (pass
 * NULL). Opening it is the check: KURER_EPASSPHRASE for a wrong secret, KURER_EMALFORMED for a
 * file that is no home backup; on any error home is left empty. The restored home gets a new
 * instance id: it takes the device over at the relay, and the copy it was made from is told
 * KURER_ECLONED from then on (docs/protocol.md 1.1). Blocking; opens and closes the home. */
KURER_EXPORT KURER_MUST_CHECK int kurer_restore(const char *home, const char *path,
                                                const char *KURER_NULLABLE pass, size_t pass_len,
                                                const uint8_t *KURER_NULLABLE key);

/* ---- calls (docs/calls.md) ----------------------------------------------------------------
 *
 * One-to-one voice calls: signalling in CallMessages over the Signal sessions, media (Opus,
 * 48 kHz mono, 20 ms frames, SFrame-protected) over UDP through the relay's media relay. A call
 * has a classification level like a message: refused unless our certificate, every device of
 * the peer and the root's ceiling allow it (KURER_ECLEARANCE, with the refusal in the FAILED
 * event). One call at a time: an offer that comes while a call exists is answered BUSY (except
 * glare, docs/calls.md). Calls are not stored as messages.
 *
 * Calls are named by a call id (nonzero). Every function here returns at once (none waits for
 * the network); progress comes as call events on the library thread. */

typedef enum kurer_call_event_kind {
    KURER_CALL_EV_INCOMING = 1,  /* an offer rings here: kurer_call_accept or kurer_call_decline */
    KURER_CALL_EV_RINGING = 2,   /* our offer reached the relay for every device of the peer */
    KURER_CALL_EV_ANSWERED = 3,  /* answered (by the peer, or by us): media is being set up */
    KURER_CALL_EV_CONNECTED = 4, /* media flows both ways: hand in capture, pull playback */
    KURER_CALL_EV_ENDED = 5,     /* ended normally (end says how); the call id is done */
    KURER_CALL_EV_FAILED = 6,    /* ended by an error (err, and why for a refusal) */
} kurer_call_event_kind;

typedef enum kurer_call_end {
    KURER_CALL_END_NONE = 0,
    KURER_CALL_END_LOCAL_HANGUP = 1,       /* kurer_call_hangup (or a decline here) */
    KURER_CALL_END_REMOTE_HANGUP = 2,      /* the peer hung up (or cancelled its offer) */
    KURER_CALL_END_DECLINED = 3,           /* the peer declined */
    KURER_CALL_END_BUSY = 4,               /* every device of the peer is in a call */
    KURER_CALL_END_ANSWERED_ELSEWHERE = 5, /* another device of ours answered */
    KURER_CALL_END_DECLINED_ELSEWHERE = 6, /* another device of ours declined */
    KURER_CALL_END_TIMEOUT = 7,            /* not answered in time */
    KURER_CALL_END_GLARE = 8,              /* both called at once; replaced_by is the call kept */
    KURER_CALL_END_REFUSED = 9,            /* the peer refused it (level, signalling version) */
} kurer_call_end;

typedef struct kurer_call_event {
    kurer_call_event_kind kind;
    uint64_t call_id;
    const char *peer;     /* user@authority */
    uint32_t peer_device; /* the peer's device (0 while an outgoing call rings) */
    int level;            /* kurer_level of the call: show it for the whole call */
    int outgoing;         /* 1 if we called */
    kurer_call_end end;   /* ENDED */
    int err;              /* FAILED: why (KURER_ECLEARANCE, KURER_ETIMEOUT, KURER_ECLOSED, ...) */
    kurer_refusal why;    /* FAILED with a policy refusal: whose certificate (or the ceiling) */
    uint64_t replaced_by; /* ENDED with GLARE: the call that continues (an INCOMING follows) */
} kurer_call_event;

typedef struct kurer_call_events {
    /* Library thread, in order; the event is valid during the call only. It may call the
     * kurer_call_* functions. */
    void (*KURER_NULLABLE on_call)(void *KURER_NULLABLE ud, const kurer_call_event *e);
    void *KURER_NULLABLE ud;
} kurer_call_events;

/* Sets (copies) the call callbacks; NULL clears them. An offer that comes while no on_call is
 * set is answered BUSY. */
KURER_EXPORT void kurer_set_call_events(kurer *k, const kurer_call_events *KURER_NULLABLE ev);

typedef struct kurer_call_options {
    uint32_t ring_timeout_ms;  /* an offer unanswered this long ends TIMEOUT; 0: 45000 */
    uint32_t media_timeout_ms; /* media not up this long after the answer, or nothing received
                                * this long during the call: FAILED (KURER_ETIMEOUT); 0: 10000 */
    uint32_t expected_loss;    /* percent, for the encoder's in-band FEC; 0: 10 */
} kurer_call_options;
/* Options for the calls started or answered from now on (copied); NULL restores the defaults. */
KURER_EXPORT void kurer_call_configure(kurer *k, const kurer_call_options *KURER_NULLABLE o);

/* Calls user at level: the relay allocates the media legs, an offer goes to every device of
 * user; *call_id is the new call's. If an offer of user at the same level rings here, it is
 * answered instead (both wanted the call, as in glare) and *call_id is that call's.
 * KURER_EBUSY if another call exists, KURER_EINVAL for a bad argument (our own user, a level
 * out of range). Policy refusals come as FAILED. */
KURER_EXPORT KURER_MUST_CHECK int kurer_call_start(kurer *k, const char *user, int level,
                                                   uint64_t *call_id);
/* Answers the ringing call_id (INCOMING) / declines it (the caller hears DECLINED). Hangs up
 * call_id in any state (the peer hears it; an offer of ours is cancelled). KURER_ENOTFOUND if
 * no such call, KURER_ESTATE if it is not in a state for that. */
KURER_EXPORT KURER_MUST_CHECK int kurer_call_accept(kurer *k, uint64_t call_id);
KURER_EXPORT KURER_MUST_CHECK int kurer_call_decline(kurer *k, uint64_t call_id);
KURER_EXPORT KURER_MUST_CHECK int kurer_call_hangup(kurer *k, uint64_t call_id);

#define KURER_CALL_RATE    48000 /* samples per second, mono, signed 16-bit */
#define KURER_CALL_SAMPLES 960   /* per frame: 20 ms */

/* The audio path, for the app's own audio thread: neither blocks on I/O nor on the library
 * thread (each holds one short lock for a copy or a decode). capture hands in one frame of
 * KURER_CALL_SAMPLES samples (encoded and sent by the library thread); frames handed in before
 * CONNECTED are dropped. playback fills pcm with the next KURER_CALL_SAMPLES samples to play
 * (decoded, concealed where packets are missing; silence before CONNECTED). Both return
 * KURER_ENOTFOUND when call_id is not the current call; capture returns KURER_ELIMIT when
 * the library thread is more than a few frames behind (the frame is dropped). */
KURER_EXPORT KURER_MUST_CHECK int kurer_call_capture(kurer *k, uint64_t call_id,
                                                     const int16_t *pcm);
KURER_EXPORT KURER_MUST_CHECK int kurer_call_playback(kurer *k, uint64_t call_id, int16_t *pcm);

typedef struct kurer_call_stats {
    uint64_t sent;          /* audio packets sent */
    uint64_t received;      /* audio packets received (authentic) */
    uint64_t lost;          /* packets never received */
    uint64_t late;          /* received too late to be played */
    uint64_t concealed;     /* frames played from loss concealment */
    uint64_t fec_recovered; /* frames recovered from in-band FEC */
    uint64_t rejected;      /* datagrams that failed SFrame (bad tag, replay, unknown key) */
    uint32_t jitter_ms;     /* interarrival jitter */
    uint32_t rtt_us;        /* the last round trip time (timestamp echo), microseconds; 0 before
                             * the first echo */
    uint32_t duration_ms;   /* since CONNECTED */
} kurer_call_stats;
/* The statistics of call_id: the current call, or the last one that ended (kept until the
 * next starts). KURER_ENOTFOUND otherwise. */
KURER_EXPORT KURER_MUST_CHECK int kurer_call_get_stats(kurer *k, uint64_t call_id,
                                                       kurer_call_stats *out);

/* ---- groups (docs/client.md, "Groups"; docs/protocol.md 4.7) ---- */

/* A group is named by its id in hex (64 digits) or by a prefix of at least 4 digits that only one
 * held group has (KURER_EINVAL if several do, KURER_EUNKNOWNGROUP if none). Membership belongs to
 * the members: every change is signed by an admin, built on the revision it names and sent to
 * every device of every member over the pairwise sessions; a user added gets every change held
 * (to fold them itself) and, from each sender's next message on, its current sender key only. */
typedef enum kurer_group_op {
    KURER_GROUP_OP_ADD = 2,     /* users join (admins only) */
    KURER_GROUP_OP_REMOVE = 3,  /* users leave (admins only); every sender then rotates its key */
    KURER_GROUP_OP_LEAVE = 4,   /* we leave (any member) */
    KURER_GROUP_OP_PROMOTE = 5, /* users become admins (admins only) */
    KURER_GROUP_OP_RENAME = 6,  /* the name (admins only) */
} kurer_group_op;

/* Asynchronous, like kurer_send_async (one request worker each, the home lock held except while
 * it waits for the relay). Create: name (1..KURER_GROUP_NAME_LEN_MAX bytes) and the users
 * besides us (0..256, copied); the new id in the result's group. Change: op and its users (ADD,
 * REMOVE, PROMOTE: 1..256) or name (RENAME). Send: text at level to every member device, one
 * ciphertext under our sender key. Errors in the result as the blocking calls below say. */
#define KURER_GROUP_NAME_LEN_MAX 128
#define KURER_GROUP_USERS_MAX    256
KURER_EXPORT KURER_MUST_CHECK int kurer_group_create_async(
    kurer *k, const char *name, const char *KURER_NONNULL const *KURER_NULLABLE users, size_t n,
    int timeout_ms, kurer_done_fn KURER_NULLABLE done, void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int
kurer_group_update_async(kurer *k, const char *group, kurer_group_op op,
                         const char *KURER_NONNULL const *KURER_NULLABLE users, size_t n,
                         const char *KURER_NULLABLE name, int timeout_ms,
                         kurer_done_fn KURER_NULLABLE done, void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_group_send_async(kurer *k, const char *group, int level,
                                                         const char *text, int timeout_ms,
                                                         kurer_done_fn KURER_NULLABLE done,
                                                         void *KURER_NULLABLE ud);

/* The blocking calls. Create: id (may be NULL) gets the new group's id in hex; KURER_EUNKNOWNUSER
 * with why->user for a user the relay does not know (nothing created). Change: KURER_ENOTADMIN
 * (or KURER_ENOTMEMBER) when we may not make it (nothing sent), KURER_EUNKNOWNGROUP,
 * KURER_EUNKNOWNUSER for a user to add. Send: KURER_ENOTMEMBER; KURER_ECLEARANCE (or a
 * certificate error) with why naming the member device whose certificate refuses the level (the
 * group's ceiling, kurer_group_info's ceiling), or our own certificate or the root's ceiling;
 * KURER_ELIMIT for a text too long for one member's devices in one request (kurer_text_limit of
 * twice the most devices a member has: each may need our key and the ciphertext); transport
 * errors as kurer_send (a committed message stays in the outbox). */
KURER_EXPORT KURER_MUST_CHECK int
kurer_group_create(kurer *k, const char *name,
                   const char *KURER_NONNULL const *KURER_NULLABLE users, size_t n, int timeout_ms,
                   char *KURER_NULLABLE id, kurer_refusal *KURER_NULLABLE why);
KURER_EXPORT KURER_MUST_CHECK int
kurer_group_update(kurer *k, const char *group, kurer_group_op op,
                   const char *KURER_NONNULL const *KURER_NULLABLE users, size_t n,
                   const char *KURER_NULLABLE name, int timeout_ms,
                   kurer_refusal *KURER_NULLABLE why);
KURER_EXPORT KURER_MUST_CHECK int kurer_group_send(kurer *k, const char *group, int level,
                                                   const char *text, int timeout_ms,
                                                   kurer_refusal *KURER_NULLABLE why,
                                                   int64_t *KURER_NULLABLE message_id);
/* A group message with n files (0..KURER_ATTACHMENTS_MAX paths, copied; text may be "" when
 * n > 0): each file sealed and uploaded once, after the checks above and before the message is
 * committed, and its pointer carried in the one ciphertext every member device gets. Errors as
 * kurer_group_send's and, for the files, kurer_send_files's. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_group_send_files_async(kurer *k, const char *group, int level, const char *text,
                             const char *KURER_NONNULL const *KURER_NULLABLE paths, size_t n,
                             int timeout_ms, kurer_done_fn KURER_NULLABLE done,
                             void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int
kurer_group_send_files(kurer *k, const char *group, int level, const char *text,
                       const char *KURER_NONNULL const *KURER_NULLABLE paths, size_t n,
                       int timeout_ms, kurer_refusal *KURER_NULLABLE why,
                       int64_t *KURER_NULLABLE message_id);

typedef struct kurer_group_member {
    const char *user;
    int admin;
    const uint32_t *devices; /* the member's devices with a valid certificate held now */
    size_t n_devices;
} kurer_group_member;

typedef struct kurer_group_info {
    char id[KURER_GROUP_HEX_MAX + 1];
    const char *name;
    uint32_t revision;
    int member, admin;                 /* whether we are */
    const kurer_group_member *members; /* by user */
    size_t n_members;
    /* The highest level a message to the group may have now: the lowest clearance among the
     * current certificates of the member devices held (ours included) and the root's ceiling;
     * ceiling_by names the member device (or our own certificate, or the ceiling) that sets it.
     * Computed at each call: membership, certificate changes and revocations count at once. */
    int ceiling;
    kurer_refusal ceiling_by;
    uint64_t changes_ignored; /* forged or refused changes counted on this home (all groups) */
} kurer_group_info;
typedef int (*kurer_group_fn)(void *KURER_NULLABLE ud, const kurer_group_info *g);

/* Home calls (no network; the home lock taken as kurer_history): each group held, by name; one
 * group. The info is valid during the call only; a non-zero return from fn stops and is
 * returned. */
KURER_EXPORT KURER_MUST_CHECK int kurer_group_list(kurer *k, kurer_group_fn fn,
                                                   void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_group_get(kurer *k, const char *group, kurer_group_fn fn,
                                                  void *KURER_NULLABLE ud);
/* ---- receipts and disappearing messages (docs/client.md) ---- */

/* Marks incoming messages read on this device: those of peer (NULL: of every peer) whose
 * sent_at (the sender's clock, as kurer_history gives it) is one of the n in sent_at, or with
 * n 0 every unread one. Each starts its countdown if it has a timer, and owes its sender a read
 * receipt, sent with a copy to our own other devices (which mark it read too). The marks are
 * committed first; the receipts then go within timeout_ms or, if the relay cannot be reached,
 * at the next connection (still 0: the messages are read). Never for quarantined messages.
 * The result's marked says how many were marked. */
KURER_EXPORT KURER_MUST_CHECK int kurer_read_async(kurer *k, const char *KURER_NULLABLE peer,
                                                   const int64_t *KURER_NULLABLE sent_at, size_t n,
                                                   int timeout_ms,
                                                   kurer_done_fn KURER_NULLABLE done,
                                                   void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_read(kurer *k, const char *KURER_NULLABLE peer,
                                             const int64_t *KURER_NULLABLE sent_at, size_t n,
                                             int timeout_ms, size_t *KURER_NULLABLE marked);
/* The longest timer, seconds (four weeks). */
#define KURER_TIMER_MAX (28 * 86400)
/* Sets the conversation's disappearing-message timer (seconds, 1..KURER_TIMER_MAX; 0: off)
 * and sends the change to peer's devices and our own other devices (a notice every device
 * honours: later messages of either side carry it). Needs the relay (the notice is sent like a
 * message: result and refusals as kurer_send; message_id is the notice's row). */
KURER_EXPORT KURER_MUST_CHECK int kurer_set_timer_async(kurer *k, const char *peer,
                                                        uint32_t seconds, int timeout_ms,
                                                        kurer_done_fn KURER_NULLABLE done,
                                                        void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_set_timer(kurer *k, const char *peer, uint32_t seconds,
                                                  int timeout_ms,
                                                  kurer_refusal *KURER_NULLABLE why);
/* The conversation's timer now (seconds; 0: off). A home call. */
KURER_EXPORT KURER_MUST_CHECK int kurer_timer(kurer *k, const char *peer, uint32_t *seconds);

KURER_ASSUME_NONNULL_END

#endif
