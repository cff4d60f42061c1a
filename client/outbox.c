/* The outbox as the user sees it (outbox.h): size limits for the real number of devices,
 * permanent refusals that end retries, composing while the relay cannot be reached, retry and
 * cancel. Runs with the home lock held (a request worker's job, or a home call). */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "home.h"
#include "kurer/content.h"
#include "kurer/crypto.h"
#include "kurer/frame.h"
#include "kurer/log.h"
#include "kurer/util.h"
#include "net.h"

/* Room kept in the Content for the largest wrapper around the text (a sync copy naming a
 * 128-byte destination): KURER_TEXT_MAX's derivation (kurer.h). */
#define WRAPPER_MAX 256

/* One SendRequest carries an envelope per device and must fit one frame: each envelope gets
 * an equal share, less the room an envelope's fields take (KURER_ENVELOPE_OVERHEAD_MAX, which
 * bounds a whole Deliver frame's fields and so a SendRequest entry's), less the Signal message
 * around the padded Content. For one device this is KURER_TEXT_MAX. */
size_t kurer_text_limit(size_t n)
{
    if (n == 0 || n > KURER_SEND_ENVELOPES_MAX)
        return 0;
    size_t share = KURER_FRAME_MAX / n;
    if (share <= KURER_ENVELOPE_OVERHEAD_MAX + KURER_SIGNAL_OVERHEAD_MAX)
        return 0;
    size_t padded = (share - KURER_ENVELOPE_OVERHEAD_MAX - KURER_SIGNAL_OVERHEAD_MAX) /
                    KURER_PAD_BLOCK * KURER_PAD_BLOCK;
    if (padded > KURER_CONTENT_PADDED_MAX)
        padded = KURER_CONTENT_PADDED_MAX;
    if (padded <= WRAPPER_MAX + 1)
        return 0;
    return padded - 1 - WRAPPER_MAX;
}
_Static_assert(KURER_TEXT_MAX == KURER_CONTENT_PADDED_MAX - 1 - WRAPPER_MAX,
               "kurer_text_limit(1) is KURER_TEXT_MAX");

int kurer__outbox_size_check(const char *to, size_t n_to, size_t n_own, size_t len,
                             kurer_refusal *why)
{
    size_t n = n_to + n_own;
    size_t max = kurer_text_limit(n);
    if (n == 0 || len <= max)
        return 0;
    if (why != NULL) {
        memset(why, 0, sizeof(*why));
        why->by = KURER_REFUSED_BY_NONE;
        snprintf(why->user, sizeof(why->user), "%s", to);
        why->device_id = (uint32_t)n;
        why->limit = (int)max;
    }
    return KURER_ELIMIT;
}

int kurer__outbox_send_permanent(int rc)
{
    /* The encoder (the request would not fit a record) or the relay (an envelope or request
     * over its limits) refusing the size: sending the same bytes again cannot succeed. Rate
     * limits, timeouts, lost connections and answers we refuse (a hostile relay) are
     * transient: the message waits, with backoff. */
    return rc == KURER_ELIMIT;
}

int kurer__outbox_fail(kurer *k, int64_t message_rowid, int rc, const kurer_refusal *why)
{
    int r = kurer__store_begin(k->st);
    if (r != 0)
        return r;
    r = kurer__store_outbox_drop(k->st, message_rowid, NULL, 0);
    if (r == 0)
        r = kurer__store_message_set_state(k->st, message_rowid, KURER__MSG_FAILED, rc);
    if (r == 0)
        r = kurer__store_message_refusal(
            k->st, message_rowid, why != NULL ? (int)why->by : 0, why != NULL ? why->user : NULL,
            why != NULL ? why->device_id : 0, why != NULL ? why->limit : 0);
    if (r != 0) {
        kurer__store_rollback(k->st);
        return r;
    }
    kurer_log(KURER_LOG_WARN, "client", "message_failed",
              (kurer_log_field[]){KURER_LOG_INT("message", message_rowid),
                                  KURER_LOG_STR("reason", kurer_err_name(rc))},
              2);
    return kurer__store_commit(k->st);
}

int kurer__outbox_fail_size(kurer *k, int64_t message_rowid, int rc, size_t n_devices,
                            kurer_refusal *why)
{
    kurer_refusal w;
    memset(&w, 0, sizeof(w));
    w.device_id = (uint32_t)n_devices;
    w.limit = (int)kurer_text_limit(n_devices);
    if (why != NULL)
        *why = w;
    return kurer__outbox_fail(k, message_rowid, rc, &w);
}

static int transport(int rc)
{
    return rc == KURER_ECLOSED || rc == KURER_ETIMEOUT || rc == KURER_ECONNREFUSED ||
           rc == KURER_EUNREACHABLE || rc == KURER_ERESOLVE || rc == KURER_EHANDSHAKE ||
           rc == KURER_EIO;
}

/* 0 if every device of user the home holds (ours but this one) has a session; else
 * KURER_ENOTFOUND (*none: 1 if user has no device held at all). */
static int sessions_held(kurer *k, const char *user, int *none)
{
    uint32_t *devs = NULL;
    size_t n = 0, usable = 0;
    int rc = kurer__store_peer_devices(k->st, user, &devs, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (strcmp(user, k->own.user) == 0 && devs[i] == k->own.device_id)
            continue;
        int has = kurer__session_exists(k->sess, user, devs[i]);
        if (has < 0)
            rc = has;
        else if (has == 0)
            rc = KURER_ENOTFOUND;
        else
            usable++;
    }
    free(devs);
    *none = rc == 0 && usable == 0;
    return rc;
}

int kurer__outbox_queue_offline(kurer *k, int net_rc, const char *to, int level, const char *text,
                                kurer_refusal *why, int64_t *message_id)
{
    int none_to = 0, none_own = 0;
    if (!transport(net_rc))
        return net_rc;
    /* Without the relay nothing new can be learnt: no device list, no prekey bundle. A
     * recipient this device has never written to (no session with each of its devices held)
     * cannot be encrypted for now; refused, nothing committed (docs/client.md). */
    if (sessions_held(k, to, &none_to) != 0 || none_to ||
        sessions_held(k, k->own.user, &none_own) != 0) {
        if (why != NULL) {
            memset(why, 0, sizeof(*why));
            why->by = KURER_REFUSED_BY_RECIPIENT;
            snprintf(why->user, sizeof(why->user), "%s", to);
        }
        return net_rc;
    }
    int rc = kurer__home_queue(k, to, level, text, why, message_id);
    if (rc == 0)
        kurer_log(KURER_LOG_INFO, "client", "queued_offline",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(net_rc))}, 1);
    return rc;
}

/* ---- retry and cancel ---- */

typedef struct msg_copy {
    int found, direction, state, level, reason;
    char to[KURER_SUBJECT_MAX + 1];
    char *body;
    size_t body_len;
    int64_t sent_at;
} msg_copy;

static int copy_msg(void *ud, const kurer__msg *m)
{
    msg_copy *c = ud;
    c->found = 1;
    c->direction = m->direction;
    c->state = m->state;
    c->level = m->level;
    c->reason = m->reason;
    c->sent_at = m->sent_at;
    snprintf(c->to, sizeof(c->to), "%s", m->peer);
    if ((c->body = malloc(m->body_len + 1)) == NULL)
        return KURER_ENOMEM;
    memcpy(c->body, m->body, m->body_len);
    c->body[m->body_len] = '\0';
    c->body_len = m->body_len;
    return 0;
}

static void msg_copy_release(msg_copy *c)
{
    if (c->body != NULL) {
        kurer_memzero(c->body, c->body_len);
        free(c->body);
    }
    c->body = NULL;
}

/* The outgoing message message_id (KURER_ENOTFOUND if there is none). */
static int load_outgoing(kurer *k, int64_t message_id, msg_copy *c)
{
    memset(c, 0, sizeof(*c));
    int rc = kurer__store_message_find(k->st, message_id, NULL, copy_msg, c);
    if (rc == 0 && c->direction != KURER__DIR_OUT)
        rc = KURER_ENOTFOUND; /* a received message is not the outbox's */
    if (rc != 0)
        msg_copy_release(c);
    return rc;
}

/* The policy and size for the devices held now, as kurer_queue checks them. */
static int requeue_check(kurer *k, const msg_copy *c, size_t n, const uint32_t *own, size_t n_own,
                         size_t *own_others, kurer_refusal *why)
{
    int rc = kurer_check_send(k, c->to, c->level, why);
    *own_others = 0;
    for (size_t i = 0; rc == 0 && i < n_own; i++) {
        if (own[i] == k->own.device_id)
            continue;
        rc = kurer__home_check_device(k, c->level, k->own.user, own[i], why);
        (*own_others)++;
    }
    return rc != 0 ? rc : kurer__outbox_size_check(c->to, n, *own_others, c->body_len, why);
}

/* A FAILED message made PENDING again: checked as a new send, then encrypted anew for every
 * device held now (the old envelopes dropped), in one transaction. */
static int requeue(kurer *k, int64_t message_id, const msg_copy *c, kurer_refusal *why)
{
    uint32_t *devs = NULL, *own = NULL;
    size_t n = 0, n_own = 0, own_others = 0;
    int rc = kurer__store_peer_devices(k->st, c->to, &devs, &n);
    if (rc == 0)
        rc = kurer__store_peer_devices(k->st, k->own.user, &own, &n_own);
    if (rc == 0)
        rc = requeue_check(k, c, n, own, n_own, &own_others, why);
    if (rc == 0)
        rc = kurer__store_begin(k->st);
    if (rc != 0)
        goto out;
    rc = kurer__store_outbox_drop(k->st, message_id, NULL, 0);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = kurer__home_encrypt_for(k, message_id, c->to, c->level, c->body, c->sent_at, c->to,
                                     devs[i]);
    for (size_t i = 0; rc == 0 && i < n_own; i++)
        if (own[i] != k->own.device_id)
            rc = kurer__home_encrypt_for(k, message_id, c->to, c->level, c->body, c->sent_at,
                                         k->own.user, own[i]);
    if (rc == 0)
        rc = kurer__store_message_set_state(k->st, message_id, KURER__MSG_PENDING, 0);
    if (rc == 0)
        rc = kurer__store_message_refusal(k->st, message_id, 0, NULL, 0, 0);
    if (rc != 0)
        kurer__store_rollback(k->st);
    else
        rc = kurer__store_commit(k->st);
out:
    free(devs);
    free(own);
    return rc;
}

/* A FAILED message again: looked up as a send is when the relay can be reached; otherwise
 * with the devices and sessions held (as composing offline). */
static int retry_failed(kurer *k, int64_t message_id, const msg_copy *c, uint64_t deadline,
                        kurer_refusal *why)
{
    int rc = kurer__net_wait_online(k, deadline, 1);
    if (rc == 0) {
        int prc = kurer__engine_prepare(k, c->to, deadline, why);
        if (prc != 0)
            return prc;
    } else {
        int none_to = 0, none_own = 0;
        if (!transport(rc))
            return rc;
        if (sessions_held(k, c->to, &none_to) != 0 || none_to ||
            sessions_held(k, k->own.user, &none_own) != 0)
            return rc;
    }
    int qrc = requeue(k, message_id, c, why);
    return qrc != 0 ? qrc : rc;
}

int kurer__outbox_retry(kurer *k, int64_t message_id, uint64_t deadline, kurer_refusal *why)
{
    msg_copy c;
    int rc = load_outgoing(k, message_id, &c);
    if (rc != 0)
        return rc;
    if (c.state == KURER__MSG_SENT) {
        rc = KURER_ESTATE; /* accepted already: nothing to send */
    } else if (c.state == KURER__MSG_FAILED && c.reason == KURER_ECANCELLED) {
        rc = KURER_ECANCELLED; /* cancelled is for good */
    } else if (c.state == KURER__MSG_PENDING) {
        rc = kurer__store_outbox_due_now(k->st, message_id, kurer__home_now(k) * 1000);
    } else {
        rc = kurer__net_message_take(k, message_id, deadline);
        if (rc == 0) {
            rc = retry_failed(k, message_id, &c, deadline, why);
            kurer__net_message_give(k, message_id);
        }
    }
    msg_copy_release(&c);
    if (rc != 0)
        return rc;
    return kurer__engine_send_queued(k, message_id, deadline, why);
}

typedef struct open_ctx {
    int found, accepted;
} open_ctx;

static int note_open(void *ud, const kurer__open_msg *m)
{
    open_ctx *o = ud;
    o->found = 1;
    o->accepted = m->accepted;
    return 0;
}

static int cancel_held(kurer *k, int64_t message_id)
{
    msg_copy c;
    open_ctx o = {0, 0};
    int rc = load_outgoing(k, message_id, &c);
    if (rc != 0)
        return rc;
    int state = c.state, reason = c.reason;
    msg_copy_release(&c);
    if (state == KURER__MSG_SENT)
        return KURER_ESTATE;
    if (state == KURER__MSG_FAILED && reason == KURER_ECANCELLED)
        return 0; /* cancelled before */
    if ((rc = kurer__store_outbox_messages(k->st, message_id, note_open, &o)) != 0)
        return rc;
    if (o.accepted)
        return KURER_ESTATE; /* the relay holds it for a recipient: cannot be called back */
    kurer_refusal none;
    memset(&none, 0, sizeof(none));
    return kurer__outbox_fail(k, message_id, KURER_ECANCELLED, &none);
}

int kurer__outbox_cancel(kurer *k, int64_t message_id, uint64_t deadline)
{
    /* After any send of it that runs: what that send learns (accepted or not) decides. */
    int rc = kurer__net_message_take(k, message_id, deadline);
    if (rc != 0)
        return rc;
    rc = cancel_held(k, message_id);
    kurer__net_message_give(k, message_id);
    return rc;
}
