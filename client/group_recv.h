/* The engine's group halves (group_recv.c: what arrives; group_send.c: what goes), always with
 * the home lock held. Internal (kurer__*). */
#ifndef KURER_CLIENT_GROUP_RECV_H
#define KURER_CLIENT_GROUP_RECV_H

#include <stdint.h>

#include "group.h"
#include "home.h"
#include "session.h"

/* Counter of the group changes ignored (forged: a bad or missing signature, a signer that may
 * not make the change, an unknown group), in the store's counters. */
#define KURER__COUNTER_GROUP_IGNORED "group_changes_ignored"
/* Counter of the group receipts ignored: sent by a user who is not a member of the group the
 * receipt names (or for a group not known here). */
#define KURER__COUNTER_GROUP_RECEIPTS_IGNORED "group_receipts_ignored"

/* Folds every held change of gid again and stores the state (inside the caller's transaction);
 * *s (may be NULL) gets it, to release. */
KURER_MUST_CHECK int kurer__group_refold(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN],
                                         kurer__group_state *s);
/* Verifies gc (its signature by the identity key of the signer's chain, valid now, naming the
 * signer), stores it and folds again. *applied: whether the fold applied it. Returns the
 * reason it was ignored (KURER_EBADSIG, KURER_EUNKNOWNGROUP, KURER_ENOTADMIN, ...; EGROUPGAP: it
 * waits for an earlier revision), 0 if applied or already held, or a storage error. */
KURER_MUST_CHECK int kurer__group_take_change(kurer *k, const kurer_group_control *gc,
                                              int *applied);

/* Inside the pairwise decrypting transaction (home.c): a GroupControl from sender (a forged or
 * unknown change is counted and logged, never returned); a SenderKeyDistribution (kept when
 * the group is known and the sender a member, else refused: the reason). */
KURER_MUST_CHECK int kurer__group_on_control(kurer *k, const kurer_verified *sender,
                                             const kurer_group_control *gc);
KURER_MUST_CHECK int kurer__group_on_distribution(kurer *k, const kurer_verified *sender,
                                                  const kurer_sender_key_distribution *d);
/* Whether a group DataMessage from sender may be stored: 0 if gid is a known group with the
 * sender a member; else KURER_EUNKNOWNGROUP or KURER_ENOTMEMBER. */
KURER_MUST_CHECK int kurer__group_data_check(kurer *k, const kurer_verified *sender,
                                             const uint8_t gid[KURER_GROUP_ID_LEN]);

/* A SENDER_KEY envelope: the groups where from is a member are tried for a sender key with the
 * message's key id; decrypted in one store transaction with fn's writes (as
 * kurer__session_decrypt), the group's id in gid before fn runs. KURER_EUNKNOWNGROUP when no
 * group holds a key for it (not meant for us, or sent after we left or were removed);
 * KURER_EDUPLICATE; the sender's certificate errors. */
KURER_MUST_CHECK int kurer__group_receive(kurer *k, const uint8_t id[KURER_ENVELOPE_ID_LEN],
                                          const char *from, uint32_t device_id, const uint8_t *ct,
                                          size_t n, kurer__plaintext_fn fn, void *ud,
                                          uint8_t gid[KURER_GROUP_ID_LEN]);

/* Our group message rowid of gid: how many members besides us the group has now (when it is
 * sent, or comes from our other device), what its receipts are counted against. */
KURER_MUST_CHECK int kurer__group_message_members(kurer *k, int64_t rowid,
                                                  const uint8_t gid[KURER_GROUP_ID_LEN]);
/* Disappearing group messages (group_timer.c; docs/protocol.md 4.7), in the caller's
 * transaction. Ours just inserted (row rowid): the group's timer, counting down from now.
 * Received (row m->rowid, from dm, of group gid): the timer dm carries or else the group's;
 * counting down from now for one our own other device sent, else from when it is read. */
KURER_MUST_CHECK int kurer__group_timer_start(kurer *k, int64_t rowid, uint32_t seconds);
KURER_MUST_CHECK int kurer__group_timer_stored(kurer *k, const kurer__msg *m,
                                               const kurer_data_message *dm,
                                               const uint8_t gid[KURER_GROUP_ID_LEN]);

/* The group of stored message rowid: hex gets its id ("" if none); 1 if it is a change or a key
 * distribution we sent (not a message: history leaves it out), else 0. */
int kurer__group_message_tag(kurer *k, int64_t rowid, char hex[KURER__GROUP_HEX_LEN + 1]);

#endif
