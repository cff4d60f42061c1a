/* Groups, the sending half (group_send.c): changes and messages composed, committed to the
 * outbox and sent. Request workers only, with the home lock held; each gives it up only while
 * it waits for the relay. Internal (kurer__*). */
#ifndef KURER_CLIENT_GROUP_SEND_H
#define KURER_CLIENT_GROUP_SEND_H

#include <stdint.h>

#include "group.h"
#include "home.h"

/* Our sender key is replaced before the next send once it is this old or has sent this many
 * messages (docs/protocol.md 4.7), besides whenever a device that had it is no longer a
 * member device. */
#define KURER__GROUP_KEY_MAX_AGE_S    ((int64_t)7 * 86400)
#define KURER__GROUP_KEY_MAX_MESSAGES 1000

/* Creates a group named name with us (its admin) and users: *gid its new random id. */
KURER_MUST_CHECK int kurer__group_create(kurer *k, const char *name, const char *const *users,
                                         size_t n, uint64_t deadline, kurer_refusal *why,
                                         uint8_t gid[KURER_GROUP_ID_LEN]);
/* ADD, REMOVE, PROMOTE (users), RENAME (name), LEAVE: signed, applied here and sent to every
 * device of every member, and of those it removes; users it adds get every change held.
 * KURER_EUNKNOWNGROUP, KURER_ENOTADMIN / KURER_ENOTMEMBER (applied nowhere), KURER_EUNKNOWNUSER
 * (why->user) for a user to add the relay does not know. */
KURER_MUST_CHECK int kurer__group_change(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN],
                                         kurer_group_change_kind kind, const char *const *users,
                                         size_t n, const char *name, uint64_t deadline,
                                         kurer_refusal *why);
/* SET_TIMER (seconds 0..KURER__GROUP_TIMER_MAX; 0: off), as kurer__group_change: signed,
 * applied here and sent to every device of every member; admins only. */
KURER_MUST_CHECK int kurer__group_set_timer(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN],
                                            uint32_t seconds, uint64_t deadline,
                                            kurer_refusal *why);
/* A group message: policy against every member device's certificate (the group's ceiling:
 * KURER_ECLEARANCE with why naming the member device that refuses), our sender key rotated if
 * due, distributed to the member devices that have not had it, the text encrypted once with it
 * and queued for every member device; then sent. *message_id (may be NULL) the stored
 * message. */
KURER_MUST_CHECK int kurer__group_send(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN], int level,
                                       const char *text, uint64_t deadline, kurer_refusal *why,
                                       int64_t *message_id);
/* kurer__group_send with n files (0..KURER_ATTACHMENTS_MAX; text may be "" when n > 0): each
 * sealed and uploaded once, after the policy checks and before the message is committed, its
 * pointer in the one ciphertext every member device gets. */
KURER_MUST_CHECK int kurer__group_send_files(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN],
                                             int level, const char *text, const char *const *paths,
                                             size_t n, uint64_t deadline, kurer_refusal *why,
                                             int64_t *message_id);
/* group_fanout.c: sends message key_rowid (our sender key to the devices that need it, 0: none)
 * as an ordinary send, then message rowid's one ciphertext through the relay's fan-out; what is
 * left (a stale list, a fan-out failure) goes through the engine's path. Results as
 * kurer__engine_send_queued for rowid. */
KURER_MUST_CHECK int kurer__group_fanout(kurer *k, int64_t key_rowid, int64_t rowid,
                                         uint64_t deadline, kurer_refusal *why);
/* Inside a receiving transaction: gc (a change received and applied) queued, as a change of
 * ours would be, for the devices of users (held devices with a session; no network): members
 * we added concurrently with it, whom its signer could not know. Sent with the outbox. */
KURER_MUST_CHECK int kurer__group_forward(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN],
                                          const kurer_group_control *gc, const char *const *users,
                                          size_t n);
/* engine.c: a relay's stale device list for user on a group message (1 if message_rowid is
 * one: *rc says how its items for user were made anew; 0 if it is not a group message). */
int kurer__group_reencrypt(kurer *k, int64_t message_rowid, const char *user, uint64_t deadline,
                           kurer_refusal *why, int *rc);
/* The lowest clearance among the current certificates of the member devices held (ours too)
 * and the root's ceiling: *level, *who (the member device that sets it; by NONE for our own
 * ceiling). */
KURER_MUST_CHECK int kurer__group_ceiling(kurer *k, const kurer__group_state *s, int *level,
                                          kurer_refusal *who);

#endif
