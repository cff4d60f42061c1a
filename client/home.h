/* The device home behind kurer.h, and the engine entry points the network half will drive
 * (queue a message for sending; take a delivered envelope). Internal (kurer__*). */
#ifndef KURER_CLIENT_HOME_H
#define KURER_CLIENT_HOME_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/cert.h"
#include "kurer/frame.h"
#include "kurer/kurer.h"
#include "session.h"
#include "store.h"

#define KURER__HOME_PATH_MAX 4096
#define KURER__CSR_FILE      "device.csr"

/* The network half (engine.c): the handle's private libuv loop and relay connection. */
typedef struct kurer__net kurer__net;
void kurer__net_free(kurer__net *n);

struct kurer {
    kurer__store *st;
    kurer__identity own;
    kurer_trust *trust;
    kurer__session *sess;
    kurer_clock_fn clock;
    void *clock_ud;
    char home[KURER__HOME_PATH_MAX];
    char csr_path[KURER__HOME_PATH_MAX];
    kurer__net *net; /* NULL until the first connect */
    kurer_events events;
};

kurer__session *kurer__home_session(kurer *k);
kurer__store *kurer__home_store(kurer *k);
int64_t kurer__home_now(const kurer *k);

/* The send path's lower half: checks the policy (kurer_check_send), then in one transaction
 * stores the message as PENDING and, for every device of to that the home holds a certificate
 * for (and a sync copy for each of our own other devices held), an outbox envelope with the padded
 * Content encrypted for that device. KURER_ESTATE if a device has no session yet (the caller
 * fetches its bundle first). *rowid (may be NULL) is the message's row. */
KURER_MUST_CHECK int kurer__home_queue(kurer *k, const char *to, int level, const char *body,
                                       kurer_refusal *why, int64_t *rowid);

/* The send policy for one outbox envelope, checked again whenever it is sent (an item may wait
 * in the outbox across restarts while certificates expire or are revoked): 0 if our own
 * certificate, the root's ceiling and the valid certificate of user/device all allow level;
 * else KURER_ECLEARANCE or the certificate error, with *why (may be NULL) saying whose. */
KURER_MUST_CHECK int kurer__home_check_device(kurer *k, int level, const char *user,
                                              uint32_t device, kurer_refusal *why);

/* Encrypts message message_rowid (to, level, body, sent_at) for user/device (the recipient's
 * device, or one of our own for a sync copy) and adds the outbox item. Inside the caller's
 * transaction, if any. KURER_ESTATE without a session; KURER_EINVAL if user is neither to nor
 * our own user. */
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

#endif
