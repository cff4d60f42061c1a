/* Fan-out sends (internal, kurer__*; docs/protocol.md 3.7): one shared ciphertext (a sender-key
 * message) for the devices of many users, carried to the relay once and stored there once.
 * The group code calls it to send; nothing here encrypts, stores or retries. */
#ifndef KURER_CLIENT_FANOUT_H
#define KURER_CLIENT_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/frame.h"
#include "kurer/kurer.h"

/* The relay's answer for one user of the send. */
typedef struct kurer__fanout_outcome {
    const char *user;         /* the caller's users[i].user (borrowed from the request) */
    kurer_send_status status; /* ACCEPTED (durable at the relay), UNKNOWN_USER, STALE_DEVICES */
    /* STALE_DEVICES: the user's current devices as the relay lists them (the sender's own
     * device left out). Empty when the relay had no room for the list (lists_omitted): look
     * the user up. Chains in it may name other users: the caller ignores (never stores)
     * those, as for a SendResult. Points into the results; zeroed for other statuses. */
    kurer_user_devices current;
} kurer__fanout_outcome;

typedef struct kurer__fanout_results {
    kurer__fanout_outcome *users; /* one per user of the request, in the request's order */
    size_t n;
    size_t accepted;           /* users with status ACCEPTED */
    int lists_omitted;         /* some STALE_DEVICES results came without their list */
    kurer_server_frame *reply; /* private: the answer the outcomes point into */
} kurer__fanout_results;

/* Sends content (content_len bytes, 1..KURER_ENVELOPE_CONTENT_MAX: a sender-key message; the
 * envelopes are of type KURER_ENVELOPE_SENDER_KEY) under envelope id to the devices of
 * users[0..n_users) (each user once, 1..KURER_USER_DEVICES_MAX devices each, no device twice,
 * KURER_FANOUT_DEVICES_MAX devices in all; each device's serial names the certificate it was
 * encrypted for, 0 if not said) through the handle's connection, and waits until deadline
 * (monotonic ms) for the relay's answer. A list too large for one record goes in several parts
 * (at most KURER_FANOUT_PARTS_MAX), each answered before the next is sent.
 *
 * Call from a worker with the home lock held (kurer__rpc gives it up while it waits); never
 * from the library thread. The caller keeps users and content alive until it returns.
 *
 * Returns 0 with *out filled (free with kurer__fanout_results_free): every user of the request
 * has an outcome. Otherwise *out is zeroed and owns nothing, and nothing of the send is
 * accepted for anyone: KURER_EINVAL (bad arguments), KURER_ELIMIT (too many devices or parts,
 * content too large; or the relay's limits), KURER_EDUPLICATE (a user or device twice), the
 * relay's typed error (KURER_ERATE, KURER_ESTORAGE, ...), KURER_ETIMEOUT, KURER_ECLOSED, or
 * KURER_EMALFORMED for an answer we refuse (one naming a user we did not send to, or whose
 * counts do not add up: a hostile relay's). The send is idempotent under its id only as far as
 * the recipients deduplicate by envelope id: after an error the caller may send again with the
 * same id. */
KURER_MUST_CHECK int kurer__fanout_send(kurer *k, const uint8_t id[KURER_ENVELOPE_ID_LEN],
                                        const uint8_t *content, size_t content_len,
                                        const kurer_fanout_user *users, size_t n_users,
                                        uint64_t deadline, kurer__fanout_results *out);

/* Frees what kurer__fanout_send filled in and zeroes *r. NULL-safe. */
void kurer__fanout_results_free(kurer__fanout_results *r);

/* How the request splits into parts (exposed for tests): the number of users that go into the
 * part that starts at user `first` (0: the part carries no users, only possible for part 0
 * with a large content). part0_content: content_len for part 0, else 0. */
size_t kurer__fanout_part_users(const kurer_fanout_user *users, size_t n_users, size_t first,
                                size_t part0_content);

#endif
