/* libkurer's groups (docs/client.md, "Groups"; docs/protocol.md 4.7): part of kurer.h, which
 * includes it at its end (an application includes kurer.h; this header on its own brings
 * kurer.h first). */
#ifndef KURER_GROUPS_H
#define KURER_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/kurer.h"

KURER_ASSUME_NONNULL_BEGIN

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

/* Sets the group's disappearing-message timer (seconds, 1..KURER_TIMER_MAX; 0: off), a signed
 * change like a rename (admins only: KURER_ENOTADMIN, nothing sent) that every member device
 * honours: each group message sent after it carries the timer and is deleted from every member
 * device's store and history that long after it was read on a recipient's device, or sent on
 * the sender's (docs/client.md, "Receipts and disappearing messages"). Errors as
 * kurer_group_update's; KURER_EINVAL for seconds above KURER_TIMER_MAX. */
KURER_EXPORT KURER_MUST_CHECK int kurer_group_set_timer_async(kurer *k, const char *group,
                                                              uint32_t seconds, int timeout_ms,
                                                              kurer_done_fn KURER_NULLABLE done,
                                                              void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_group_set_timer(kurer *k, const char *group,
                                                        uint32_t seconds, int timeout_ms,
                                                        kurer_refusal *KURER_NULLABLE why);

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
    /* The group's disappearing-message timer (seconds; 0: off), kurer_group_set_timer's. */
    uint32_t expire_timer;
} kurer_group_info;
typedef int (*kurer_group_fn)(void *KURER_NULLABLE ud, const kurer_group_info *g);

/* Home calls (no network; the home lock taken as kurer_history): each group held, by name; one
 * group. The info is valid during the call only; a non-zero return from fn stops and is
 * returned. */
KURER_EXPORT KURER_MUST_CHECK int kurer_group_list(kurer *k, kurer_group_fn fn,
                                                   void *KURER_NULLABLE ud);
KURER_EXPORT KURER_MUST_CHECK int kurer_group_get(kurer *k, const char *group, kurer_group_fn fn,
                                                  void *KURER_NULLABLE ud);

KURER_ASSUME_NONNULL_END

#endif
