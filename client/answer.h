/* Answers from the relay checked against the request they answer, before the client acts on
 * them (issue 9, defect 1). The relay decides what the client hears about users and devices,
 * but it must never make the client act on (store, build a session with, encrypt for) a user or
 * device the client did not ask about: an answer that names one is a hostile relay's. It is
 * refused as a whole: KURER_EMALFORMED, and a warning `hostile_relay_answer` in the log with
 * the kind of answer, the reason and the user named (never content). Nothing here verifies a
 * signature: the checks use what the answer claims (a chain's leaf body), so they run before
 * anything costly; the caller still verifies every chain it keeps.
 * Internal (kurer__*): not part of libkurer's API. Pure functions of their arguments. */
#ifndef KURER_CLIENT_ANSWER_H
#define KURER_CLIENT_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/frame.h"

/* Logs the hostile answer (answer: "directory", "bundles", "send_result", "devices"; reason: a
 * fixed word) and returns KURER_EMALFORMED. */
int kurer__answer_hostile(const char *answer, const char *reason, const char *user);

/* 1 if the chain's leaf claims to be a device of user. */
int kurer__answer_chain_of(const kurer_chain *chain, const char *user);

/* A DirectoryResult (r) answering a lookup of users[0..n_users): every entry is a user asked
 * for, none twice, and no device of that user twice. Chains naming another user are not
 * refused here: the caller ignores (never stores) them. */
KURER_MUST_CHECK int kurer__answer_directory(const char *const *users, size_t n_users,
                                             const kurer_server_frame *r);

/* PrekeyBundles (r) answering a fetch of user's devices asked[0..n_asked): every bundle is for
 * one of them, none twice, and its chain's leaf names exactly the bundle's address. A bundle for
 * a device not asked for must not create a session: the whole answer is refused. */
KURER_MUST_CHECK int kurer__answer_bundles(const char *user, const uint32_t *asked, size_t n_asked,
                                           const kurer_server_frame *r);

/* A SendResult (r) answering the envelopes sent[0..n_sent] of a device of own_user: one result
 * per user the envelopes are for, each user once, and no result for anyone else but own_user
 * (whose other devices may be stale without an envelope for them). UNKNOWN_USER for own_user is
 * a lie (we are connected as it). A STALE_DEVICES list must be that user's (current.user) with
 * no device twice; chains in it naming other users are left to the caller to ignore. */
KURER_MUST_CHECK int kurer__answer_send_result(const char *own_user, const kurer_envelope *sent,
                                               size_t n_sent, const kurer_server_frame *r);

#endif
