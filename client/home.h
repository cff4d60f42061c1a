/* The device home behind kurer.h, and the engine entry points the network half will drive
 * (queue a message for sending; take a delivered envelope). Internal (kurer__*). */
#ifndef KURER_CLIENT_HOME_H
#define KURER_CLIENT_HOME_H

#include <stddef.h>
#include <stdint.h>

#include <stdatomic.h>

#include <uv.h>

#include "engine.h"
#include "kurer/cert.h"
#include "kurer/frame.h"
#include "kurer/kurer.h"
#include "session.h"
#include "store.h"

#define KURER__HOME_PATH_MAX 4096
#define KURER__CSR_FILE      "device.csr"
#define KURER__CSR_TEXT_FILE "device.csr.txt" /* the same request as armoured text */

/* The connection half (net.h): the library thread, its loop and the relay connection. */
typedef struct kurer__net kurer__net;

/* The home lock: the store, libsignal and the trust store are one thread's at a time. Recursive
 * (a public call made by the engine with the lock held takes it again). */
typedef struct kurer__hlock {
    uv_mutex_t mu;
    _Atomic unsigned long owner; /* pthread_self() of the holder, valid while owned */
    _Atomic int owned;
    int depth; /* the holder's */
} kurer__hlock;

void kurer__hlock_take(kurer *k);
void kurer__hlock_give(kurer *k);
/* Gives up every level this thread holds (0 if it holds none) / takes them again. */
int kurer__hlock_release(kurer *k);
void kurer__hlock_reacquire(kurer *k, int depth);
/* 1 if the calling thread holds the home lock. */
int kurer__hlock_mine(kurer *k);

/* HOME/.lock: KURER_ELOCKED if another handle holds it, KURER_ENOENT if there is no home. */
KURER_MUST_CHECK int kurer__home_lock(const char *home, const char *holder, int *fd);
void kurer__home_unlock(int fd);

struct kurer {
    kurer__store *st;
    kurer__identity own;
    kurer_trust *trust;
    kurer__session *sess;
    kurer_clock_fn clock;
    void *clock_ud;
    char home[KURER__HOME_PATH_MAX];
    char csr_path[KURER__HOME_PATH_MAX];
    char csr_text_path[KURER__HOME_PATH_MAX];
    kurer__net *net;            /* started by open, stopped by close */
    struct kurer__calls *calls; /* call.h: made and freed with net */
    kurer__hlock hl;
    int lock_fd; /* HOME/.lock, flock'd while open (one handle per home) */
    kurer__econn ec;
    int64_t expiry_next_ms; /* receipt.h: the earliest countdown's end (Unix ms; 0: look) */
};

kurer__session *kurer__home_session(kurer *k);
kurer__store *kurer__home_store(kurer *k);
int64_t kurer__home_now(const kurer *k);

/* What n attachment pointers add to a Content: their fixed fields with tags, and names. */
size_t kurer__home_atts_size(const kurer_attachment *atts, size_t n);
/* Fills why (may be NULL) with who refused and why (home.c's policy checks, home_queue.c). */
void kurer__home_refuse(kurer_refusal *why, kurer_refusal_by by, const char *user, uint32_t dev,
                        int limit);
/* The send path's lower half: checks the policy (kurer_check_send), then in one transaction
 * stores the message as PENDING and, for every device of to that the home holds a certificate
 * for (and a sync copy for each of our own other devices held), an outbox envelope with the padded
 * Content encrypted for that device. KURER_ESTATE if a device has no session yet (the caller
 * fetches its bundle first). *rowid (may be NULL) is the message's row. */
KURER_MUST_CHECK int kurer__home_queue(kurer *k, const char *to, int level, const char *body,
                                       kurer_refusal *why, int64_t *rowid);
/* The same for a notice (timer change: its kind and timer from notice) or, notice NULL, a text
 * message that takes the conversation's timer (its countdown starts now). */
KURER_MUST_CHECK int kurer__home_queue_ex(kurer *k, const char *to, int level, const char *body,
                                          const kurer__msg_extra *notice, kurer_refusal *why,
                                          int64_t *rowid);
/* kurer__home_queue with n attachment pointers (0..KURER_ATTACHMENTS_MAX, their blobs
 * uploaded) stored with the message in the same transaction; every device's Content carries
 * them. body may be "" when n > 0. */
KURER_MUST_CHECK int kurer__home_queue_atts(kurer *k, const char *to, int level, const char *body,
                                            const kurer_attachment *atts, size_t n,
                                            kurer_refusal *why, int64_t *rowid);

/* The send policy for one outbox envelope, checked again whenever it is sent (an item may wait
 * in the outbox across restarts while certificates expire or are revoked): 0 if our own
 * certificate, the root's ceiling and the valid certificate of user/device all allow level;
 * else KURER_ECLEARANCE or the certificate error, with *why (may be NULL) saying whose. */
KURER_MUST_CHECK int kurer__home_check_device(kurer *k, int level, const char *user,
                                              uint32_t device, kurer_refusal *why);

/* Encrypts message message_rowid (to, level, body, sent_at, and its stored attachments) for
 * user/device (the recipient's device, or one of our own for a sync copy) and adds the outbox item.
 * Inside the caller's transaction, if any. KURER_ESTATE without a session; KURER_EINVAL if user is
 * neither to nor our own user. */
KURER_MUST_CHECK int kurer__home_encrypt_for(kurer *k, int64_t message_rowid, const char *to,
                                             int level, const char *body, int64_t sent_at,
                                             const char *user, uint32_t device);

/* The receive path: decrypts an envelope and stores its message in the same transaction as the
 * ratchet step. 0: stored (shown, or quarantined by policy: *state says which, may be NULL);
 * KURER_EDUPLICATE: seen before, nothing stored (ack it). Content that decrypts but is refused
 * (malformed, or SECRET and above) still commits the ratchet step and returns the reason (ack
 * it too). Anything else: nothing changed (do not ack; it may be retried). */
KURER_MUST_CHECK int kurer__home_receive(kurer *k, const uint8_t id[KURER_ENVELOPE_ID_LEN],
                                         const char *from, uint32_t device_id,
                                         kurer_envelope_type type, const uint8_t *ct, size_t n,
                                         int *state);

/* Writes HOME/device.csr for k->own (user, device, name, identity and Noise keys), signed
 * with identity_priv (replaced atomically). */
KURER_MUST_CHECK int kurer__home_write_csr(kurer *k, const uint8_t *identity_priv);

/* home_undo.c: what kurer_create made in the home, removed again when it fails (files it
 * writes that were not there before; the folder itself if it made it; the mode of a folder
 * that existed). begin before anything is made; run after the failed handle is closed. */
#define KURER__UNDO_NAMES 10
typedef struct kurer__home_undo {
    char home[KURER__HOME_PATH_MAX];
    int armed, made_dir;
    unsigned mode;
    unsigned char had[KURER__UNDO_NAMES];
} kurer__home_undo;
void kurer__home_undo_begin(kurer__home_undo *u, const char *home);
/* kurer_create's work (home.c), without the undo around it (home_undo.c). */
KURER_MUST_CHECK int kurer__home_create(const kurer_create_options *o, const char *pass,
                                        size_t pass_len, const uint8_t *key, kurer **out);
void kurer__home_undo_run(const kurer__home_undo *u);

/* The public home calls without the home lock (home_api.c takes it around each). */
int kurer__home_passwd_unlocked(kurer *k, const char *pass, size_t pass_len, const uint8_t *key);
int kurer__home_set_relay_unlocked(kurer *k, const char *relay, const uint8_t *relay_key);
int kurer__home_own_certificate_unlocked(kurer *k, kurer_peer_device_fn fn, void *ud);
int kurer__home_import_chain_unlocked(kurer *k, const uint8_t *data, size_t len);
int kurer__home_import_certs_unlocked(kurer *k, const uint8_t *device, size_t device_len,
                                      const uint8_t *authority, size_t authority_len);
int kurer__home_add_peer_unlocked(kurer *k, const uint8_t *data, size_t len);
int kurer__home_add_revocations_unlocked(kurer *k, const uint8_t *data, size_t len);
int kurer__home_check_send_unlocked(kurer *k, const char *to, int level, kurer_refusal *why);
int kurer__home_check_receive_unlocked(kurer *k, const char *from, uint32_t device_id, int level,
                                       kurer_refusal *why);
int kurer__home_history_unlocked(kurer *k, const char *with, kurer_message_fn fn, void *ud);
int kurer__home_history_group_unlocked(kurer *k, const char *group, kurer_message_fn fn, void *ud);
int kurer__home_fingerprint_unlocked(kurer *k, const char *user, uint32_t device_id, char text[64]);
int kurer__home_peer_devices_unlocked(kurer *k, const char *user, kurer_peer_device_fn fn,
                                      void *ud);
int kurer__home_import_chain_unlocked(kurer *k, const uint8_t *data, size_t len);
int kurer__home_import_certs_unlocked(kurer *k, const uint8_t *device, size_t device_len,
                                      const uint8_t *authority, size_t authority_len);

#endif
