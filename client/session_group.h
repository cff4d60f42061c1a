/* Sender keys over libsignal-protocol-c's group API (session_group.c): one sender key per group
 * and sender device, named (hex of the group id, the sender's address) in the store's
 * sender_keys table. Same thread rules as session.h. Internal (kurer__*). */
#ifndef KURER_CLIENT_SESSION_GROUP_H
#define KURER_CLIENT_SESSION_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/content.h"
#include "session.h"

/* Our sender key's distribution message for gid, made first if we hold none (a fresh random
 * key id: after a rotation dropped the old one, a new key). Appended to out; *key_id is the
 * key's id. Carries the key's current chain step only: whoever gets it cannot read what was
 * sent before. */
KURER_MUST_CHECK int kurer__session_group_distribution(kurer__session *s,
                                                       const uint8_t gid[KURER_GROUP_ID_LEN],
                                                       kurer_buf *out, uint32_t *key_id);
/* Keeps the sender key of user/device for gid from its distribution message (inside the
 * caller's transaction). KURER_EDECRYPT for one that does not parse. */
KURER_MUST_CHECK int kurer__session_group_process(kurer__session *s,
                                                  const uint8_t gid[KURER_GROUP_ID_LEN],
                                                  const char *user, uint32_t device_id,
                                                  const uint8_t *dist, size_t n);
/* Encrypts pt once with our sender key for gid (KURER_ESTATE without one): appended to ct. */
KURER_MUST_CHECK int kurer__session_group_encrypt(kurer__session *s,
                                                  const uint8_t gid[KURER_GROUP_ID_LEN],
                                                  const uint8_t *pt, size_t n, kurer_buf *ct);
/* 1 if a sender key of user/device for gid holds the key id ct names, 0 if not (or ct does
 * not parse), negative on a store error. */
int kurer__session_group_has_key(kurer__session *s, const uint8_t gid[KURER_GROUP_ID_LEN],
                                 const char *user, uint32_t device_id, const uint8_t *ct, size_t n);
/* Decrypts ct from user/device for gid into pt (a secret buffer), storing the key's step inside
 * the caller's transaction. KURER_EDECRYPT, KURER_EDUPLICATE (a step seen), KURER_ESTATE (no
 * key with its id: not sent to us). */
KURER_MUST_CHECK int kurer__session_group_decrypt(kurer__session *s,
                                                  const uint8_t gid[KURER_GROUP_ID_LEN],
                                                  const char *user, uint32_t device_id,
                                                  const uint8_t *ct, size_t n, kurer_buf *pt);

#endif
