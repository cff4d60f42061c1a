/* Private to client/session*.c: the session engine's insides, shared by session.c (pairwise
 * sessions) and session_group.c (sender keys). */
#ifndef KURER_CLIENT_SESSION_INTERNAL_H
#define KURER_CLIENT_SESSION_INTERNAL_H

#include <signal_protocol.h>

#include "kurer/signal.h"
#include "session.h"

#define SG_ERR_KURER_STORE (-10100)  /* a store call failed: see s->store_err */
#define PREKEY_ID_MAX      0xFFFFFFu /* libsignal's Medium.MAX_VALUE */

struct kurer__session {
    kurer__store *st;
    const kurer__identity *own;
    const kurer_trust *trust;
    kurer__clock_fn clock;
    void *clock_ud;
    kurer_signal_ctx *kctx;
    signal_context *ctx;
    signal_protocol_store_context *store;
    int store_err;
    int64_t stale_warned; /* the next_update last logged as stale (once each, not per check) */
    int stale_warned_refused;
    int key_changed; /* a key change was recorded since kurer__session_take_key_changed */
};

/* A libsignal result as a kurer error (a store failure inside a callback as its own cause). */
int kurer__sg_to_kurer(const kurer__session *s, int sg);

#endif
