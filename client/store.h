/* The device store: one SQLCipher database per device home (HOME/store.db).
 *
 * Opened in raw-key mode: the 256-bit key is Argon2id(passphrase) with the salt and parameters in
 * HOME/store.kdf, or a key the app keeps in a platform keystore. A wrong key is
 * KURER_EPASSPHRASE and leaves the file as it was. Schema (see store_schema.c, the migrations): own
 * identity, libsignal records (sessions, prekeys, signed prekeys, peer identities, sender keys),
 * peers' device certificates, revocation lists, messages, outbox.
 *
 * Transactions nest: only the outermost begin/commit talks to SQLite; a rollback anywhere
 * inside makes the outermost commit fail with KURER_ESTORAGE and roll back.
 * A store belongs to one thread at a time. Internal (kurer__*): not part of libkurer's API. */
#ifndef KURER_CLIENT_STORE_H
#define KURER_CLIENT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/certmsg.h"
#include "kurer/content.h"
#include "kurer/error.h"
#include "kurer/frame.h"
#include "kurer/keys.h"

#define KURER__STORE_SCHEMA_VERSION 10
/* The SQL of each step (store_schema.c); the array's size is the version. */
extern const char *const kurer__store_migrations[KURER__STORE_SCHEMA_VERSION];
#define KURER__STORE_DB      "store.db"
#define KURER__STORE_KDF     "store.kdf"
#define KURER__STORE_KDF_NEW "store.kdf.new"
#define KURER__STORE_KEY_LEN 32
#define KURER__RELAY_MAX     255
#define KURER__RECORD_MAX    (1024 * 1024) /* a libsignal record read back from the store */

typedef struct kurer__store kurer__store;

/* Creating fails with KURER_EEXIST if HOME/store.db exists. Opening: KURER_ENOENT without it,
 * KURER_EPASSPHRASE for a wrong passphrase or key, KURER_ELINKAGE if the SQLite in this process
 * is not SQLCipher. Both run the migrations. *out only on success. */
KURER_MUST_CHECK int kurer__store_create_pass(const char *home, const char *pass, size_t pass_len,
                                              const kurer_kdf_params *p, kurer__store **out);
KURER_MUST_CHECK int kurer__store_create_key(const char *home,
                                             const uint8_t key[KURER__STORE_KEY_LEN],
                                             kurer__store **out);
KURER_MUST_CHECK int kurer__store_open_pass(const char *home, const char *pass, size_t pass_len,
                                            kurer__store **out);
KURER_MUST_CHECK int kurer__store_open_key(const char *home,
                                           const uint8_t key[KURER__STORE_KEY_LEN],
                                           kurer__store **out);
/* NULL-safe. Rolls back an open transaction. */
void kurer__store_close(kurer__store *st);

/* Re-encrypts the store under a new passphrase (new salt; params NULL: defaults) or raw key.
 * Crash-safe: the new parameters go to store.kdf.new first, then PRAGMA rekey (one SQLite
 * transaction), then store.kdf.new is renamed over store.kdf. Opening tries store.kdf.new when
 * store.kdf does not open the store, and finishes the rename. KURER_ESTATE inside a transaction. */
KURER_MUST_CHECK int kurer__store_rekey_pass(kurer__store *st, const char *pass, size_t pass_len,
                                             const kurer_kdf_params *p);
KURER_MUST_CHECK int kurer__store_rekey_key(kurer__store *st,
                                            const uint8_t key[KURER__STORE_KEY_LEN]);

KURER_MUST_CHECK int kurer__store_begin(kurer__store *st);
KURER_MUST_CHECK int kurer__store_commit(kurer__store *st);
void kurer__store_rollback(kurer__store *st);
int kurer__store_in_transaction(const kurer__store *st);

/* Brings the schema up to KURER__STORE_SCHEMA_VERSION (a no-op when it is there already). */
KURER_MUST_CHECK int kurer__store_migrate(kurer__store *st);
KURER_MUST_CHECK int kurer__store_schema_version(kurer__store *st, int *version);

/* ---- own identity (one row) ---- */

typedef struct kurer__identity {
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
    char display_name[KURER_NAME_MAX + 1];
    uint32_t registration_id;
    uint8_t identity_pub[KURER_IDENTITY_KEY_LEN];
    uint8_t *identity_priv; /* 32 bytes of guarded memory */
    uint8_t noise_pub[KURER_X25519_LEN];
    uint8_t *noise_priv; /* 32 bytes of guarded memory */
    char relay[KURER__RELAY_MAX + 1];
    uint8_t relay_key[KURER_X25519_LEN];
    uint8_t *root; /* SignedCertificate bytes (heap) */
    size_t root_len;
    uint8_t *chain; /* CertificateChain bytes (heap), NULL until imported */
    size_t chain_len;
} kurer__identity;

/* KURER_EEXIST if there is one already. */
KURER_MUST_CHECK int kurer__store_identity_create(kurer__store *st, const kurer__identity *id);
/* Loads into *id (private keys into guarded memory); KURER_ENOTFOUND before create. */
KURER_MUST_CHECK int kurer__store_identity_load(kurer__store *st, kurer__identity *id);
/* Replaces the relay address (as the user typed it) and key. */
KURER_MUST_CHECK int kurer__store_identity_set_relay(kurer__store *st, const char *relay,
                                                     const uint8_t key[KURER_X25519_LEN]);
KURER_MUST_CHECK int kurer__store_identity_set_chain(kurer__store *st, const uint8_t *chain,
                                                     size_t len);
/* Wipes and frees what load allocated. NULL-safe, idempotent. */
void kurer__identity_release(kurer__identity *id);

/* ---- libsignal records (opaque blobs) ---- */

/* Sessions by (name, device). get: 0 with *data (malloc, caller frees) or KURER_ENOTFOUND. */
KURER_MUST_CHECK int kurer__store_session_get(kurer__store *st, const char *name, size_t name_len,
                                              int32_t dev, uint8_t **data, size_t *len);
KURER_MUST_CHECK int kurer__store_session_put(kurer__store *st, const char *name, size_t name_len,
                                              int32_t dev, const uint8_t *data, size_t len);
/* Returns the number of rows deleted (0 or 1), or a negative error. */
int kurer__store_session_delete(kurer__store *st, const char *name, size_t name_len, int32_t dev);
int kurer__store_session_delete_all(kurer__store *st, const char *name, size_t name_len);
/* The device ids with a session for name, other than exclude (libsignal: not device 1). *devs is
 * malloc'ed (caller frees), *n its length. */
KURER_MUST_CHECK int kurer__store_session_devices(kurer__store *st, const char *name,
                                                  size_t name_len, int32_t **devs, size_t *n);

typedef enum kurer__prekey_table {
    KURER__PREKEY = 0,
    KURER__SIGNED_PREKEY = 1,
} kurer__prekey_table;

KURER_MUST_CHECK int kurer__store_prekey_get(kurer__store *st, kurer__prekey_table t, uint32_t id,
                                             uint8_t **data, size_t *len);
/* Deletes signed prekeys created before older_than_ms (Unix milliseconds), always keeping the
 * newest one: the design keeps the previous signed prekey a month after a rotation, for
 * pre-key messages still in flight. */
KURER_MUST_CHECK int kurer__store_signed_prekeys_prune(kurer__store *st, int64_t older_than_ms);
KURER_MUST_CHECK int kurer__store_prekey_put(kurer__store *st, kurer__prekey_table t, uint32_t id,
                                             const uint8_t *data, size_t len);
/* 1 if present, 0 if not, negative on error. */
int kurer__store_prekey_contains(kurer__store *st, kurer__prekey_table t, uint32_t id);
KURER_MUST_CHECK int kurer__store_prekey_delete(kurer__store *st, kurer__prekey_table t,
                                                uint32_t id);
/* Number of one-time or signed prekeys held (for refill), or negative. */
int kurer__store_prekey_count(kurer__store *st, kurer__prekey_table t);

/* The identity key libsignal saved for a peer device (NULL key: forget it). */
KURER_MUST_CHECK int kurer__store_peer_identity_put(kurer__store *st, const char *name,
                                                    size_t name_len, int32_t dev,
                                                    const uint8_t *key, size_t key_len);
KURER_MUST_CHECK int kurer__store_peer_identity_get(kurer__store *st, const char *name,
                                                    size_t name_len, int32_t dev,
                                                    uint8_t key[KURER_IDENTITY_KEY_LEN]);

KURER_MUST_CHECK int kurer__store_sender_key_put(kurer__store *st, const char *group,
                                                 size_t group_len, const char *name,
                                                 size_t name_len, int32_t dev, const uint8_t *data,
                                                 size_t len);
KURER_MUST_CHECK int kurer__store_sender_key_get(kurer__store *st, const char *group,
                                                 size_t group_len, const char *name,
                                                 size_t name_len, int32_t dev, uint8_t **data,
                                                 size_t *len);

/* ---- peers' device certificates and revocation lists ---- */

/* Stores (or replaces) a peer device's chain as verified now: the caller verified it. */
KURER_MUST_CHECK int kurer__store_peer_device_put(kurer__store *st, const char *user,
                                                  uint32_t device_id, uint64_t serial,
                                                  const uint8_t *chain, size_t chain_len);
/* The chain bytes (malloc'ed) or KURER_ENOTFOUND. */
KURER_MUST_CHECK int kurer__store_peer_device_get(kurer__store *st, const char *user,
                                                  uint32_t device_id, uint8_t **chain,
                                                  size_t *chain_len);
/* Forgets a peer device: its certificate, saved identity key and session (one transaction);
 * its mark (peer_marks) stays. */
KURER_MUST_CHECK int kurer__store_peer_device_delete(kurer__store *st, const char *user,
                                                     uint32_t device_id);
/* Device ids held for user (malloc'ed). */
KURER_MUST_CHECK int kurer__store_peer_devices(kurer__store *st, const char *user, uint32_t **ids,
                                               size_t *n);

/* A SignedRevocationList as received, keyed by the authority's key id. */
KURER_MUST_CHECK int kurer__store_crl_put(kurer__store *st, const uint8_t key_id[KURER_KEY_ID_LEN],
                                          uint64_t version, const uint8_t *data, size_t len);
typedef int (*kurer__crl_fn)(void *ud, const uint8_t *data, size_t len);
KURER_MUST_CHECK int kurer__store_crl_each(kurer__store *st, kurer__crl_fn fn, void *ud);

/* The SQLCipher connection, for the store's files outside store.c (store_counters.c,
 * backup.c): same thread rules as the store. */
struct sqlite3 *kurer__store_sqlite(kurer__store *st);

/* ---- peer devices' high-water marks (store_marks.c) ---- */

/* The newest certificate ever accepted for a peer device address: kept when the device is
 * forgotten (kurer__store_peer_device_delete), so that a relay that leaves a device out of one
 * answer cannot make the next chain for it look like a first sight. */
typedef struct kurer__peer_mark {
    int64_t not_before;
    uint64_t serial;
    uint8_t identity_key[KURER_IDENTITY_KEY_LEN];
} kurer__peer_mark;

/* The mark of (user, device_id), or KURER_ENOTFOUND. */
KURER_MUST_CHECK int kurer__store_peer_mark_get(kurer__store *st, const char *user,
                                                uint32_t device_id, kurer__peer_mark *m);
/* Sets the mark of (user, device_id) to m (the caller has checked that m is not older). */
KURER_MUST_CHECK int kurer__store_peer_mark_put(kurer__store *st, const char *user,
                                                uint32_t device_id, const kurer__peer_mark *m,
                                                int64_t now);
/* The mark of (user, device_id) as the peer checks take it: the peer_marks row, or for a home
 * from before schema v5 the chain held (peer_devices) standing in for it; *have = 0 (and 0
 * returned) when there is neither: a first sight. */
KURER_MUST_CHECK int kurer__store_peer_mark_of(kurer__store *st, const char *user,
                                               uint32_t device_id, kurer__peer_mark *m, int *have);
/* KURER_ESTALE if a certificate nb for the address is older than its mark m: not_before
 * earlier (it stays meaningful across an authority's key rotation, when serials restart), or the
 * same not_before and a lower serial, or both the same and another identity key (two
 * certificates cannot both be the newest); 0 if nb is the marked one or newer. A relay must not
 * be able to roll a peer back to a certificate superseded but never revoked (a re-enrolment, a
 * clearance lowered), not by leaving the device out of an answer first either. */
KURER_MUST_CHECK int kurer__peer_mark_check(const kurer__peer_mark *m, const kurer_cert_body *nb);

/* ---- key changes (store_keychange.c) ---- */

typedef struct kurer__key_change {
    int64_t rowid;
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
    uint64_t serial, old_serial;
    char issuer[KURER_SUBJECT_MAX + 1], old_issuer[KURER_SUBJECT_MAX + 1];
    uint8_t identity_key[KURER_IDENTITY_KEY_LEN], old_identity_key[KURER_IDENTITY_KEY_LEN];
    int64_t at; /* Unix seconds */
    int unreported;
} kurer__key_change;

/* Records c (rowid and unreported are set here) and retires what belonged to the old key: the
 * session and the identity libsignal saved for the address are deleted, the device's outbox
 * items are marked key_stale. One transaction (nested in the caller's). */
KURER_MUST_CHECK int kurer__store_key_change_add(kurer__store *st, kurer__key_change *c);
typedef int (*kurer__key_change_fn)(void *ud, const kurer__key_change *c);
/* Each key change, oldest first: for user (NULL: all), only the unreported ones if asked. */
KURER_MUST_CHECK int kurer__store_key_change_each(kurer__store *st, const char *user,
                                                  int unreported_only, kurer__key_change_fn fn,
                                                  void *ud);
/* 1 if rowid is still unreported, 0 if not (or gone), negative on error; and the mark cleared. */
int kurer__store_key_change_unreported(kurer__store *st, int64_t rowid);
KURER_MUST_CHECK int kurer__store_key_change_reported(kurer__store *st, int64_t rowid);
/* The outbox items of message_rowid marked key_stale (encrypted for a key that has changed
 * since) are deleted; users[] gets each user whose items were (at most max, each once), *n how
 * many. */
KURER_MUST_CHECK int kurer__store_key_change_stale_items(kurer__store *st, int64_t message_rowid,
                                                         char users[][KURER_SUBJECT_MAX + 1],
                                                         size_t max, size_t *n);

/* The serial of the certificate held for a peer device, or KURER_ENOTFOUND. */
KURER_MUST_CHECK int kurer__store_peer_serial(kurer__store *st, const char *user,
                                              uint32_t device_id, uint64_t *serial);

/* ---- attachments (store_attach.c, schema v6) ---- */

#define KURER__SAVED_PATH_MAX 4096

/* One AttachmentPointer of a message (the one sent, or the one received), its index in the
 * message, and where it was saved ("" until then). a's strings point into the row. */
typedef struct kurer__attach_row {
    int64_t message_rowid;
    size_t idx;
    kurer_attachment a;
    char content_type[KURER_CONTENT_TYPE_MAX + 1];
    char file_name[KURER_FILE_NAME_MAX + 1];
    char saved_path[KURER__SAVED_PATH_MAX + 1];
} kurer__attach_row;

/* Stores a message's n pointers (indexes 0..n-1), in the caller's transaction. */
KURER_MUST_CHECK int kurer__store_attach_put(kurer__store *st, int64_t message_rowid,
                                             const kurer_attachment *a, size_t n);
/* The message's pointers in index order: *rows (malloc'ed, n of them; none: NULL and 0), freed
 * with kurer__attach_rows_free, which wipes the keys. */
KURER_MUST_CHECK int kurer__store_attach_load(kurer__store *st, int64_t message_rowid,
                                              kurer__attach_row **rows, size_t *n);
void kurer__attach_rows_free(kurer__attach_row *rows, size_t n);
/* How many pointers the message has, or a negative error. */
int kurer__store_attach_count(kurer__store *st, int64_t message_rowid);
/* Records where attachment idx of the message was saved. KURER_ENOTFOUND if it has none. */
KURER_MUST_CHECK int kurer__store_attach_saved(kurer__store *st, int64_t message_rowid, size_t idx,
                                               const char *path);

/* ---- counters (store_counters.c) ---- */

KURER_MUST_CHECK int kurer__store_counter_get(kurer__store *st, const char *name, uint64_t *v);
KURER_MUST_CHECK int kurer__store_counter_set(kurer__store *st, const char *name, uint64_t v);

/* ---- messages and outbox ---- */

enum {
    KURER__DIR_IN = 0,
    KURER__DIR_OUT = 1,
};

/* Message states (also in kurer.h as kurer_message_state). */
enum {
    KURER__MSG_RECEIVED = 0,
    KURER__MSG_QUARANTINED = 1,
    KURER__MSG_PENDING = 2, /* outgoing, in the outbox */
    KURER__MSG_SENT = 3,    /* outgoing, accepted by the relay for every device */
    KURER__MSG_FAILED = 4,
};

typedef struct kurer__msg {
    int64_t rowid;
    uint8_t envelope_id[KURER_ENVELOPE_ID_LEN];
    int direction;
    char peer[KURER_SUBJECT_MAX + 1];
    uint32_t peer_device;
    int level;
    const char *body; /* UTF-8, body_len bytes (not NUL-terminated on insert) */
    size_t body_len;
    int64_t sent_at;     /* Unix ms, the sender's clock */
    int64_t received_at; /* Unix ms, ours */
    int state;
    int reason;     /* a kurer error code for quarantined or failed messages, else 0 */
    int unreported; /* on insert: 1 if the application has yet to be given it (received) */
} kurer__msg;

/* Inserts a message; KURER_EDUPLICATE if its envelope id is stored already (nothing written).
 * m->rowid is set on success. */
KURER_MUST_CHECK int kurer__store_message_insert(kurer__store *st, kurer__msg *m);
/* 1 if a message with this envelope id is stored, 0 if not, negative on error. */
int kurer__store_message_exists(kurer__store *st, const uint8_t id[KURER_ENVELOPE_ID_LEN]);
KURER_MUST_CHECK int kurer__store_message_set_state(kurer__store *st, int64_t rowid, int state,
                                                    int reason);
/* Calls fn for each message (oldest first), for one peer if peer is not NULL. fn's msg and body
 * are valid during the call only; a non-zero return from fn stops and is returned. */
typedef int (*kurer__msg_fn)(void *ud, const kurer__msg *m);
KURER_MUST_CHECK int kurer__store_message_each(kurer__store *st, const char *peer, kurer__msg_fn fn,
                                               void *ud);
/* Calls fn for the one message with this envelope id (envelope_id != NULL) or row id;
 * KURER_ENOTFOUND if there is none. */
/* The unreported mark (schema v2): every message stored with it is given to the application
 * until the mark is cleared. _each calls fn for the marked ones, oldest first; _unreported says
 * whether rowid is marked (1, 0, or an error); _reported clears it (synchronous = NORMAL for
 * that write: a power loss may bring the mark back, which only reports the message again). */
KURER_MUST_CHECK int kurer__store_message_unreported_each(kurer__store *st, kurer__msg_fn fn,
                                                          void *ud);
int kurer__store_message_unreported(kurer__store *st, int64_t rowid);
KURER_MUST_CHECK int kurer__store_message_reported(kurer__store *st, int64_t rowid);
KURER_MUST_CHECK int kurer__store_message_find(kurer__store *st, int64_t rowid,
                                               const uint8_t *envelope_id, kurer__msg_fn fn,
                                               void *ud);

typedef struct kurer__outbox_item {
    int64_t rowid;
    int64_t message_rowid;
    uint8_t envelope_id[KURER_ENVELOPE_ID_LEN];
    char to_user[KURER_SUBJECT_MAX + 1];
    uint32_t to_device;
    int type; /* kurer_envelope_type */
    const uint8_t *content;
    size_t content_len;
    uint32_t attempts;
    int64_t next_attempt_at; /* Unix ms */
} kurer__outbox_item;

/* Removes a message's outbox items: all of them (user NULL) or those for user/device_id. */
KURER_MUST_CHECK int kurer__store_outbox_drop(kurer__store *st, int64_t message_rowid,
                                              const char *user, uint32_t device_id);
/* 1 if the message has an outbox item for user/device_id, 0 if not, negative on error. */
int kurer__store_outbox_has(kurer__store *st, int64_t message_rowid, const char *user,
                            uint32_t device_id);
KURER_MUST_CHECK int kurer__store_outbox_add(kurer__store *st, kurer__outbox_item *it);
/* Items due at now_ms (next_attempt_at <= now_ms), oldest first. */
typedef int (*kurer__outbox_fn)(void *ud, const kurer__outbox_item *it);
KURER_MUST_CHECK int kurer__store_outbox_each_due(kurer__store *st, int64_t now_ms,
                                                  kurer__outbox_fn fn, void *ud);
/* Counts a failed attempt and schedules the next with exponential backoff (1 s doubling, at
 * most 10 min, with jitter). */
KURER_MUST_CHECK int kurer__store_outbox_retry_later(kurer__store *st, int64_t rowid,
                                                     int64_t now_ms);
/* The relay accepted it: removes the item; when it was the message's last, marks it SENT. */
KURER_MUST_CHECK int kurer__store_outbox_done(kurer__store *st, int64_t rowid);
int kurer__store_outbox_count(kurer__store *st);

/* ---- the outbox as the user sees it, contacts, conversations (store_views.c, schema v4) ---- */

/* An outgoing message still open: PENDING, or FAILED (other than cancelled by the user). */
typedef struct kurer__open_msg {
    int64_t rowid;
    char to[KURER_SUBJECT_MAX + 1];
    int level, state, reason;
    int refusal_by; /* kurer_refusal_by of the refusal that failed it */
    char refusal_user[KURER_SUBJECT_MAX + 1];
    uint32_t refusal_device;
    int refusal_limit; /* a level, or (ELIMIT) the most bytes of text allowed */
    int accepted;      /* the relay accepted it for at least one user */
    int64_t created_at;
    uint32_t items, attempts; /* outbox items left; the most attempts among them */
    int64_t next_attempt_at;  /* the earliest, Unix ms; 0 without items */
} kurer__open_msg;
typedef int (*kurer__open_msg_fn)(void *ud, const kurer__open_msg *m);
/* Open messages oldest first (only: one message's row id; 0 for all). */
KURER_MUST_CHECK int kurer__store_outbox_messages(kurer__store *st, int64_t only,
                                                  kurer__open_msg_fn fn, void *ud);
/* Records who refused a message (with its state FAILED, set apart). */
KURER_MUST_CHECK int kurer__store_message_refusal(kurer__store *st, int64_t rowid, int by,
                                                  const char *user, uint32_t device, int limit);
/* The relay accepted the message for one of its users. */
KURER_MUST_CHECK int kurer__store_message_accepted(kurer__store *st, int64_t rowid);
/* Every item of the message due at now (Unix ms), its backoff forgotten. */
KURER_MUST_CHECK int kurer__store_outbox_due_now(kurer__store *st, int64_t message_rowid,
                                                 int64_t now);

typedef struct kurer__conv {
    char peer[KURER_SUBJECT_MAX + 1];
    int64_t last_at; /* the newest message's time on our clock, Unix ms */
    uint64_t total, received, quarantined, sent, pending, failed;
} kurer__conv;
typedef int (*kurer__conv_fn)(void *ud, const kurer__conv *c);
/* Per peer, the most recent conversation first. */
KURER_MUST_CHECK int kurer__store_conversations(kurer__store *st, kurer__conv_fn fn, void *ud);

typedef struct kurer__contact {
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t devices; /* certificates held */
    int64_t last_at;  /* the newest message either way, Unix ms; 0 if none */
    uint64_t messages;
} kurer__contact;
typedef int (*kurer__contact_fn)(void *ud, const kurer__contact *c);
/* Users held (certificates) or written with, but own, by name. */
KURER_MUST_CHECK int kurer__store_contacts(kurer__store *st, const char *own, kurer__contact_fn fn,
                                           void *ud);

/* kurer rekey (store_views.c): the identity row gets new keys (identity, Noise) and
 * registration id, and loses its chain (the new request must be issued and imported); the
 * signed prekeys made with the old identity key go. One-time prekeys stay: they are bound to no
 * identity, and the relay may still hand out ones uploaded before. */
KURER_MUST_CHECK int kurer__store_identity_rekey(kurer__store *st, const kurer__identity *id);

/* Moves every libsignal session into archived_sessions, under the identity key (len bytes)
 * they were made with; *archived is how many (one transaction). */
KURER_MUST_CHECK int kurer__store_sessions_archive(kurer__store *st, const uint8_t *identity_pub,
                                                   size_t len, int64_t now, int *archived);

/* ---- receipts and disappearing messages (store_receipts.c, schema v6) ---- */

enum {
    KURER__RECEIPT_DELIVERED = 1, /* the values of kurer_receipt_type (content.h) */
    KURER__RECEIPT_READ = 2,
};
enum {
    KURER__KIND_TEXT = 0,
    KURER__KIND_TIMER = 1, /* a timer-change notice: expire_timer is the conversation's new one */
};

/* What schema v6 added to a message row. */
typedef struct kurer__msg_extra {
    uint32_t expire_timer; /* seconds; 0: never */
    int64_t expires_at;    /* Unix ms; 0: not counting down */
    int64_t read_at;       /* Unix ms; 0: unread (incoming) */
    int kind;              /* KURER__KIND_* */
} kurer__msg_extra;

KURER_MUST_CHECK int kurer__store_message_extra(kurer__store *st, int64_t rowid,
                                                kurer__msg_extra *x);
/* Sets the row's timer, kind and countdown (expires_at 0: not started). */
KURER_MUST_CHECK int kurer__store_message_set_extra(kurer__store *st, int64_t rowid,
                                                    const kurer__msg_extra *x);

/* A receipt of type from user/device for the messages with (direction, peer, sent_at): for
 * each, a row (kept once per device and type); *matched (may be NULL) how many messages. Only
 * messages in state RECEIVED or SENT/PENDING of kind text are receipted (never quarantined
 * ones, never notices). A READ receipt on an incoming message (from one of our own devices)
 * also marks it read and starts its countdown. */
KURER_MUST_CHECK int kurer__store_receipt_add(kurer__store *st, int direction, const char *peer,
                                              int64_t sent_at, const char *user, uint32_t device,
                                              int type, int64_t now_ms, size_t *matched);
/* The same for the messages of group gid that peer sent at sent_at (one of our devices' for a
 * member's receipt; an incoming one for our own device's copy, own 1: a READ one marks it read
 * here). One-to-one receipts (above) never match a group's messages. */
KURER_MUST_CHECK int kurer__store_receipt_add_group(kurer__store *st,
                                                    const uint8_t gid[KURER_GROUP_ID_LEN],
                                                    const char *peer, int own, int64_t sent_at,
                                                    const char *user, uint32_t device, int type,
                                                    int64_t now_ms, size_t *matched);

typedef struct kurer__receipt_row {
    const char *user;
    uint32_t device_id;
    int type;
    int64_t at; /* Unix ms, ours */
} kurer__receipt_row;
typedef int (*kurer__receipt_fn)(void *ud, const kurer__receipt_row *r);
/* The receipts of one message, by user, device, type. */
KURER_MUST_CHECK int kurer__store_receipt_each(kurer__store *st, int64_t rowid,
                                               kurer__receipt_fn fn, void *ud);

/* Incoming text messages read now: those of peer (NULL: every peer) with a sent_at in ts
 * (n 0: all unread ones). read_at set, the countdown of a message with a timer started, and
 * a READ receipt owed to its sender (receipts_out). *marked (may be NULL) how many. */
KURER_MUST_CHECK int kurer__store_mark_read(kurer__store *st, const char *peer, const int64_t *ts,
                                            size_t n, int64_t now_ms, size_t *marked);
/* The same with the conversation chosen: peer's one-to-one messages (gid NULL), group gid's
 * messages (peer NULL), or every message (both NULL). A group message's receipt names gid. */
KURER_MUST_CHECK int kurer__store_mark_read_in(kurer__store *st, const char *peer,
                                               const uint8_t *gid, const int64_t *ts, size_t n,
                                               int64_t now_ms, size_t *marked);

/* Receipts owed: queued (once per peer, type and message), listed, and done. */
KURER_MUST_CHECK int kurer__store_receipt_queue(kurer__store *st, const char *peer, int type,
                                                int64_t sent_at, int64_t now_ms);
/* The same for a message of group gid (NULL: a one-to-one message). */
KURER_MUST_CHECK int kurer__store_receipt_queue_group(kurer__store *st, const char *peer, int type,
                                                      int64_t sent_at, const uint8_t *gid,
                                                      int64_t now_ms);
typedef struct kurer__receipt_out {
    int64_t id;
    char peer[KURER_SUBJECT_MAX + 1];
    int type;
    int64_t sent_at;
    int has_group; /* for a message of group group_id */
    uint8_t group_id[KURER_GROUP_ID_LEN];
} kurer__receipt_out;
/* At most max owed receipts, by peer, type and group, into v; *n how many. */
KURER_MUST_CHECK int kurer__store_receipts_owed(kurer__store *st, kurer__receipt_out *v, size_t max,
                                                size_t *n);
KURER_MUST_CHECK int kurer__store_receipt_done(kurer__store *st, int64_t id);

/* A conversation's timer (seconds; 0 when none was set). */
KURER_MUST_CHECK int kurer__store_timer_get(kurer__store *st, const char *conversation,
                                            uint32_t *seconds);
KURER_MUST_CHECK int kurer__store_timer_set(kurer__store *st, const char *conversation,
                                            uint32_t seconds, int64_t now_ms);

/* Deletes every message whose countdown has ended (expires_at <= now_ms), with its receipts
 * and outbox items (secure_delete overwrites them), then checkpoints the WAL and truncates it
 * so that no earlier page image with the text stays in store.db-wal. *deleted (may be NULL)
 * how many. */
KURER_MUST_CHECK int kurer__store_expire(kurer__store *st, int64_t now_ms, size_t *deleted);
/* The earliest end of a countdown still running (Unix ms), or INT64_MAX when none runs. */
KURER_MUST_CHECK int kurer__store_expiry_next(kurer__store *st, int64_t *at);

#endif
