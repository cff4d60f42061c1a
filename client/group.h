/* Groups (docs/protocol.md 4.7): the state machine over signed changes (group_state.c), the
 * group store (store_group.c), sender keys (session_group.c) and the engine's group requests
 * and receive handlers (group.c, group_send.c). Internal (kurer__*): not part of libkurer's API.
 *
 * A group's state is a pure function of the set of verified changes a device holds: the fold
 * orders them by (base revision, BLAKE2b-256 of the change bytes) and applies each one whose
 * signer may make it at its base revision. Devices holding the same changes agree, whatever
 * order the changes arrived in. */
#ifndef KURER_CLIENT_GROUP_H
#define KURER_CLIENT_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/certmsg.h"
#include "kurer/content.h"
#include "kurer/error.h"

#define KURER__GROUP_MEMBERS_MAX 1000
#define KURER__GROUP_CHANGES_MAX 4096 /* changes held per group (the fold's input) */
#define KURER__GROUP_HASH_LEN    32
#define KURER__GROUP_HEX_LEN     (2 * KURER_GROUP_ID_LEN)
#define KURER__GROUP_TIMER_MAX   (28 * 86400) /* kurer.h's KURER_TIMER_MAX */

typedef struct kurer__group_member {
    char user[KURER_SUBJECT_MAX + 1];
    int admin;
    /* The fold's bookkeeping: still a member (a removal within the revision being built keeps
     * the entry), and what the member was at the base revision being applied. */
    int present, was_member, was_admin;
} kurer__group_member;

typedef struct kurer__group_state {
    uint8_t id[KURER_GROUP_ID_LEN];
    int exists; /* a CREATE was applied */
    uint32_t revision;
    char name[KURER_GROUP_NAME_MAX + 1];
    uint32_t expire_timer;        /* the disappearing-message timer, seconds (SET_TIMER); 0: off */
    kurer__group_member *members; /* sorted by user, n_members of them (malloc'ed) */
    size_t n_members;
    size_t applied, ignored, pending; /* what the fold made of its input */
} kurer__group_state;

/* One verified change, as the fold takes it. */
typedef struct kurer__group_entry {
    const kurer_group_change *change; /* borrowed */
    uint8_t hash[KURER__GROUP_HASH_LEN];
    int64_t rowid; /* the caller's (store_group.c: the change's row) */
    /* Set by the fold: 1 applied; else why it was not (KURER_ENOTADMIN, KURER_ENOTMEMBER,
     * KURER_EEXIST (a second CREATE), KURER_ELIMIT, KURER_EUNSUPPORTED, KURER_EUNKNOWNGROUP
     * (another group's id), KURER_EGROUPGAP: its base revision is not reached, kept for later). */
    int applied;
    int why;
} kurer__group_entry;

/* The order of the fold: base revision, then the hash (bytewise); negative, 0 or positive. */
int kurer__group_entry_cmp(const kurer__group_entry *a, const kurer__group_entry *b);

/* Folds the n changes of group id (e is sorted in place by kurer__group_entry_cmp, and each
 * entry's applied/why set) into *out (released first by the caller's earlier use; members
 * malloc'ed: free with kurer__group_state_release). Rules per change c, with P the state at
 * c's base revision (every change with a lower base applied) and S the state so far:
 *   - c's base above S's revision: not applied (EGROUPGAP), nor is anything after it;
 *   - CREATE: S must not exist yet; the signer and the users become members, the signer admin;
 *   - ADD, REMOVE, PROMOTE, RENAME, SET_TIMER: the signer's user an admin in P (SET_TIMER's
 *     timer at most KURER__GROUP_TIMER_MAX, else ELIMIT);
 *   - LEAVE: the signer's user a member in P;
 * and an applied change makes S's revision c's base + 1, so concurrent changes (one base) make
 * one revision together. 0, or KURER_ENOMEM / KURER_EINVAL. */
KURER_MUST_CHECK int kurer__group_fold(const uint8_t id[KURER_GROUP_ID_LEN], kurer__group_entry *e,
                                       size_t n, kurer__group_state *out);
void kurer__group_state_release(kurer__group_state *s);

/* The member entry of user in s, or NULL. */
const kurer__group_member *kurer__group_member_find(const kurer__group_state *s, const char *user);

/* Lowercase hex of a group id (KURER__GROUP_HEX_LEN digits and a NUL), and back (0 or
 * KURER_EINVAL; a unique prefix is resolved by the store, not here). */
void kurer__group_hex(const uint8_t id[KURER_GROUP_ID_LEN], char hex[KURER__GROUP_HEX_LEN + 1]);
KURER_MUST_CHECK int kurer__group_unhex(const char *hex, uint8_t id[KURER_GROUP_ID_LEN]);

/* The bytes a change's signature covers: KURER_GROUP_SIG_CONTEXT (with its NUL), then the change
 * bytes; appended to out. */
KURER_MUST_CHECK int kurer__group_signed_bytes(const uint8_t *change, size_t len, kurer_buf *out);

#endif
