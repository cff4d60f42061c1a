/* The group store (store_group.c, schema v6): changes, folded state, our own sender keys and who
 * has had them, which messages belong to a group. Same thread rules as the store (store.h).
 * Internal (kurer__*). */
#ifndef KURER_CLIENT_STORE_GROUP_H
#define KURER_CLIENT_STORE_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "group.h"
#include "store.h"

/* A held change: its bytes as signed, the signature and the signer's chain, as received. */
typedef struct kurer__group_row {
    int64_t rowid;
    const uint8_t *change;
    size_t change_len;
    const uint8_t *signature; /* KURER_GROUP_SIG_LEN bytes */
    const uint8_t *chain;
    size_t chain_len;
    int applied, reason;
} kurer__group_row;
typedef int (*kurer__group_row_fn)(void *ud, const kurer__group_row *r);

/* Adds a verified change of group gid (hash: of the change bytes). KURER_EDUPLICATE if held
 * already; KURER_ELIMIT when the group holds KURER__GROUP_CHANGES_MAX. */
KURER_MUST_CHECK int kurer__store_group_change_add(kurer__store *st,
                                                   const uint8_t gid[KURER_GROUP_ID_LEN],
                                                   const uint8_t hash[KURER__GROUP_HASH_LEN],
                                                   const kurer_group_control *gc, int64_t now);
/* Each held change of gid, oldest first (fn's row valid during the call). */
KURER_MUST_CHECK int kurer__store_group_changes_each(kurer__store *st,
                                                     const uint8_t gid[KURER_GROUP_ID_LEN],
                                                     kurer__group_row_fn fn, void *ud);
/* How many changes of gid are held (0: an unknown group), or a negative error. */
int kurer__store_group_change_count(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN]);
/* What the last fold made of the change with this hash (KURER_ENOTFOUND if not held). */
KURER_MUST_CHECK int kurer__store_group_change_result(kurer__store *st,
                                                      const uint8_t gid[KURER_GROUP_ID_LEN],
                                                      const uint8_t hash[KURER__GROUP_HASH_LEN],
                                                      int *applied, int *reason);
/* Errors of the store itself (not a verdict on a change): KURER_ENOMEM, _ESTORAGE, _EIO,
 * _EBUSY, _ECORRUPT. */
int kurer__store_fatal(int rc);
KURER_MUST_CHECK int kurer__store_group_change_mark(kurer__store *st, int64_t rowid, int applied,
                                                    int reason);

/* The folded state: replaced as a whole (a state that does not exist removes the row). */
KURER_MUST_CHECK int kurer__store_group_put(kurer__store *st, const kurer__group_state *s,
                                            int64_t now);
/* The state of gid (members malloc'ed: kurer__group_state_release), or KURER_EUNKNOWNGROUP. */
KURER_MUST_CHECK int kurer__store_group_get(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                            kurer__group_state *s);
/* Each group's id, by name. */
typedef int (*kurer__group_id_fn)(void *ud, const uint8_t gid[KURER_GROUP_ID_LEN]);
KURER_MUST_CHECK int kurer__store_group_each(kurer__store *st, kurer__group_id_fn fn, void *ud);
/* The group whose hex id starts with prefix (at least 4 digits): KURER_EUNKNOWNGROUP if none,
 * KURER_EINVAL if several. */
KURER_MUST_CHECK int kurer__store_group_resolve(kurer__store *st, const char *prefix,
                                                uint8_t gid[KURER_GROUP_ID_LEN]);

/* Each unread message received in gid (not quarantined), oldest first: its sender and
 * sent_at (the key a read mark and a read receipt name it by). */
typedef int (*kurer__group_unread_fn)(void *ud, const char *peer, int64_t sent_at);
KURER_MUST_CHECK int kurer__store_group_unread_each(kurer__store *st,
                                                    const uint8_t gid[KURER_GROUP_ID_LEN],
                                                    kurer__group_unread_fn fn, void *ud);

/* Our own current sender key for gid: KURER_ENOTFOUND without one. */
typedef struct kurer__group_own_key {
    uint32_t key_id;
    int64_t created_at; /* Unix s */
    uint64_t messages;  /* sent under it */
} kurer__group_own_key;
KURER_MUST_CHECK int kurer__store_group_own_key_get(kurer__store *st,
                                                    const uint8_t gid[KURER_GROUP_ID_LEN],
                                                    kurer__group_own_key *k);
KURER_MUST_CHECK int kurer__store_group_own_key_put(kurer__store *st,
                                                    const uint8_t gid[KURER_GROUP_ID_LEN],
                                                    const kurer__group_own_key *k);
/* Rotation: our sender key record (libsignal's, named name/len for our own address) and the
 * shared-with rows of gid go. */
KURER_MUST_CHECK int kurer__store_group_own_key_drop(kurer__store *st,
                                                     const uint8_t gid[KURER_GROUP_ID_LEN],
                                                     const char *name, size_t name_len,
                                                     const char *user, uint32_t device_id);

/* The devices that have had our key key_id for gid. */
int kurer__store_group_shared_has(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                  const char *user, uint32_t device_id, uint32_t key_id);
KURER_MUST_CHECK int kurer__store_group_shared_add(kurer__store *st,
                                                   const uint8_t gid[KURER_GROUP_ID_LEN],
                                                   const char *user, uint32_t device_id,
                                                   uint32_t key_id);
typedef int (*kurer__group_dev_fn)(void *ud, const char *user, uint32_t device_id);
KURER_MUST_CHECK int kurer__store_group_shared_each(kurer__store *st,
                                                    const uint8_t gid[KURER_GROUP_ID_LEN],
                                                    kurer__group_dev_fn fn, void *ud);

/* Message rowid belongs to gid (kind KURER__GROUP_MSG_*). get: KURER_ENOTFOUND if it does not. */
enum {
    KURER__GROUP_MSG_DATA = 0,
    KURER__GROUP_MSG_CHANGE = 1,
    KURER__GROUP_MSG_KEY = 2, /* our sender key to the devices that need it (before a message) */
};
KURER_MUST_CHECK int kurer__store_group_message_put(kurer__store *st, int64_t rowid,
                                                    const uint8_t gid[KURER_GROUP_ID_LEN],
                                                    int kind);
KURER_MUST_CHECK int kurer__store_group_message_get(kurer__store *st, int64_t rowid,
                                                    uint8_t gid[KURER_GROUP_ID_LEN], int *kind);
/* The sender-key ciphertext of a message we sent to a group: set once, read back into ct. */
KURER_MUST_CHECK int kurer__store_group_message_set_ct(kurer__store *st, int64_t rowid,
                                                       const uint8_t *ct, size_t n);
KURER_MUST_CHECK int kurer__store_group_message_ct(kurer__store *st, int64_t rowid, kurer_buf *ct);

#endif
