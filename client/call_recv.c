/* Received CallMessages (call.h: kurer__calls_on_message): offers with their policy check,
 * busy and glare, answers (the first wins), hangups and busy answers, per docs/protocol.md 4.5.
 * Runs on the session worker with the home lock held; takes the calls mutex itself. */
#include <stdio.h>
#include <string.h>

#include "call_internal.h"
#include "home.h"
#include "kurer/log.h"
#include "kurer/util.h"

static void log_call(const char *what, const char *from, uint32_t device, int rc)
{
    kurer_log(KURER_LOG_INFO, "client", what,
              (kurer_log_field[]){KURER_LOG_STR("from", from), KURER_LOG_INT("device", device),
                                  KURER_LOG_STR("reason", kurer_err_name(rc))},
              3);
}

/* Glare (docs/protocol.md 4.5): 1 if our call (ours, from us) wins over theirs (from/device). */
static int ours_wins(const kurer *k, uint64_t ours, uint64_t theirs, const char *from,
                     uint32_t device)
{
    if (ours != theirs)
        return ours < theirs;
    int cmp = strcmp(k->own.user, from);
    return cmp != 0 ? cmp < 0 : k->own.device_id < device;
}

/* Under mu: the offer m from from/device rings here (the current call is free). */
static void ring_locked(kurer__calls *c, const char *from, uint32_t device,
                        const kurer_call_message *m)
{
    call *x = &c->cur;
    kurer__calls_clear(x);
    x->id = m->call_id;
    x->st = CS_RINGING_IN;
    x->level = (int)m->level;
    snprintf(x->peer, sizeof(x->peer), "%s", from);
    x->peer_device = device;
    memcpy(x->key_caller, m->sframe_key, KURER_SFRAME_CALL_KEY_LEN);
    if (m->media_ticket_len > 0)
        memcpy(x->ticket, m->media_ticket, m->media_ticket_len);
    x->ticket_len = m->media_ticket_len;
    x->udp_port = (uint16_t)m->media_port;
    x->ring_until = kurer_time_mono_ms() +
                    kurer__calls_opt(c->opt.ring_timeout_ms, KURER__CALL_RING_MS) +
                    KURER__CALL_RING_SLACK;
    kurer__calls_event_locked(c, KURER_CALL_EV_INCOMING, KURER_CALL_END_NONE, 0, NULL, 0);
}

/* Whether an offer must be refused before it rings: the signalling version, the level (as a
 * received message's: the caller's certificate, the ceiling, our clearance), a missed call. */
static int offer_refused(kurer *k, kurer__calls *c, const char *from, uint32_t device,
                         const kurer_call_message *m, int *missed)
{
    *missed = 0;
    if (m->call_id == 0 || m->version != KURER_CALL_VERSION)
        return KURER_EUNSUPPORTED;
    uv_mutex_lock(&c->mu);
    uint64_t window = (uint64_t)kurer__calls_opt(c->opt.ring_timeout_ms, KURER__CALL_RING_MS) +
                      KURER__CALL_MISSED_SLACK;
    uv_mutex_unlock(&c->mu);
    int64_t now_ms = kurer__home_now(k) * 1000;
    if (now_ms > 0 && m->timestamp < (uint64_t)now_ms && (uint64_t)now_ms - m->timestamp > window) {
        *missed = 1;
        return 0;
    }
    return kurer__home_check_receive_unlocked(k, from, device, (int)m->level, NULL);
}

static void on_offer(kurer *k, kurer__calls *c, const char *from, uint32_t device,
                     const kurer_call_message *m)
{
    int missed = 0;
    int rc = offer_refused(k, c, from, device, m, &missed);
    uv_mutex_lock(&c->mu);
    call *x = &c->cur;
    if (missed) {
        log_call("call_missed", from, device, 0);
    } else if (rc != 0) {
        log_call("call_refused", from, device, rc);
        (void)kurer__calls_signal_locked(c, J_HANGUP, from, m->call_id, KURER_CALL_REASON_REFUSED,
                                         0);
    } else if (x->st != CS_NONE && x->id == m->call_id) {
        /* the same offer again: nothing new */
    } else if (c->ev.on_call == NULL) {
        (void)kurer__calls_signal_locked(c, J_BUSY, from, m->call_id, KURER_CALL_REASON_NONE, 0);
    } else if (x->st == CS_NONE) {
        ring_locked(c, from, device, m);
    } else if (x->outgoing && (x->st == CS_OFFERING || x->st == CS_RINGING_OUT) &&
               strcmp(x->peer, from) == 0) {
        /* Glare: both sides decide alike, so the winner just ignores the losing offer. */
        if (ours_wins(k, x->id, m->call_id, from, device)) {
            log_call("call_glare_won", from, device, 0);
        } else {
            int same_level = x->level == (int)m->level;
            (void)kurer__calls_signal_locked(c, J_HANGUP, from, 0, KURER_CALL_REASON_GLARE, 0);
            kurer__calls_end_locked(c, KURER_CALL_EV_ENDED, KURER_CALL_END_GLARE, 0, NULL,
                                    m->call_id);
            ring_locked(c, from, device, m);
            if (same_level && kurer__calls_answer_locked(c) != 0)
                x->st = CS_RINGING_IN; /* could not answer: let it ring */
        }
    } else {
        (void)kurer__calls_signal_locked(c, J_BUSY, from, m->call_id, KURER_CALL_REASON_NONE, 0);
    }
    uv_mutex_unlock(&c->mu);
}

/* Under mu: the answer of from/device to our current call. */
static void on_answer_locked(kurer__calls *c, const char *from, uint32_t device,
                             const kurer_call_message *m)
{
    call *x = &c->cur;
    if (!x->outgoing || (x->st != CS_OFFERING && x->st != CS_RINGING_OUT))
        return; /* a second answer: that device was told ANSWERED_ELSEWHERE */
    if ((int)m->level != x->level) {
        (void)kurer__calls_signal_locked(c, J_HANGUP, from, 0, KURER_CALL_REASON_REFUSED, 0);
        kurer__calls_end_locked(c, KURER_CALL_EV_FAILED, KURER_CALL_END_NONE, KURER_EMALFORMED,
                                NULL, 0);
        return;
    }
    x->peer_device = device;
    memcpy(x->key_callee, m->sframe_key, KURER_SFRAME_CALL_KEY_LEN);
    x->st = CS_MEDIA;
    x->ring_until = 0;
    x->media_until =
        kurer_time_mono_ms() + kurer__calls_opt(c->opt.media_timeout_ms, KURER__CALL_MEDIA_MS);
    kurer__calls_event_locked(c, KURER_CALL_EV_ANSWERED, KURER_CALL_END_NONE, 0, NULL, 0);
    if (x->offered != 1) /* other devices ring: they stop (the answering one ignores it) */
        (void)kurer__calls_signal_locked(c, J_HANGUP, from, 0, KURER_CALL_REASON_ANSWERED_ELSEWHERE,
                                         device);
}

static kurer_call_end end_of(kurer_call_reason r)
{
    switch (r) {
    case KURER_CALL_REASON_DECLINED:
        return KURER_CALL_END_DECLINED;
    case KURER_CALL_REASON_ANSWERED_ELSEWHERE:
        return KURER_CALL_END_ANSWERED_ELSEWHERE;
    case KURER_CALL_REASON_DECLINED_ELSEWHERE:
        return KURER_CALL_END_DECLINED_ELSEWHERE;
    case KURER_CALL_REASON_TIMEOUT:
        return KURER_CALL_END_TIMEOUT;
    case KURER_CALL_REASON_GLARE:
        return KURER_CALL_END_GLARE;
    case KURER_CALL_REASON_REFUSED:
        return KURER_CALL_END_REFUSED;
    default:
        return KURER_CALL_END_REMOTE_HANGUP;
    }
}

/* Under mu: a hangup of our current call by from/device. */
static void on_hangup_locked(kurer__calls *c, const kurer *k, const char *from, uint32_t device,
                             const kurer_call_message *m)
{
    call *x = &c->cur;
    int ringing_out = x->outgoing && (x->st == CS_OFFERING || x->st == CS_RINGING_OUT);
    if (!ringing_out && device != x->peer_device)
        return; /* only the device in the call ends it */
    kurer_call_reason r = m->reason;
    if (!x->outgoing &&
        (r == KURER_CALL_REASON_ANSWERED_ELSEWHERE || r == KURER_CALL_REASON_DECLINED_ELSEWHERE) &&
        m->answered_device == k->own.device_id)
        return; /* we are the device that answered */
    if (ringing_out && r == KURER_CALL_REASON_DECLINED && x->offered != 1)
        (void)kurer__calls_signal_locked(c, J_HANGUP, from, 0, KURER_CALL_REASON_DECLINED_ELSEWHERE,
                                         device);
    if (r == KURER_CALL_REASON_FAILED)
        kurer__calls_end_locked(c, KURER_CALL_EV_FAILED, KURER_CALL_END_NONE, KURER_ECLOSED, NULL,
                                0);
    else
        kurer__calls_end_locked(c, KURER_CALL_EV_ENDED, end_of(r), 0, NULL, 0);
}

void kurer__calls_copy(kurer_call_message *dst, uint8_t ticket[KURER_MEDIA_TICKET_MAX],
                       const kurer_call_message *m)
{
    *dst = *m;
    if (m->media_ticket_len > 0) /* (an offer's: at most KURER_MEDIA_TICKET_MAX, decoded) */
        memcpy(ticket, m->media_ticket, m->media_ticket_len);
    dst->media_ticket = ticket;
}

void kurer__calls_on_message(kurer *k, const char *from, uint32_t device,
                             const kurer_call_message *m)
{
    kurer__calls *c = k->calls;
    if (c == NULL || strcmp(from, k->own.user) == 0)
        return; /* notes from our own devices are not used (docs/calls.md) */
    if (m->kind == KURER_CALL_OFFER) {
        on_offer(k, c, from, device, m);
        kurer__calls_kick(c);
        return;
    }
    uv_mutex_lock(&c->mu);
    call *x = &c->cur;
    if (x->st != CS_NONE && x->id == m->call_id && strcmp(x->peer, from) == 0) {
        if (m->kind == KURER_CALL_ANSWER) {
            on_answer_locked(c, from, device, m);
        } else if (m->kind == KURER_CALL_HANGUP) {
            on_hangup_locked(c, k, from, device, m);
        } else if (m->kind == KURER_CALL_BUSY && x->outgoing &&
                   (x->st == CS_OFFERING || x->st == CS_RINGING_OUT)) {
            x->busy++;
            if (x->offered != 0 && x->busy >= x->offered)
                kurer__calls_end_locked(c, KURER_CALL_EV_ENDED, KURER_CALL_END_BUSY, 0, NULL, 0);
        }
    }
    uv_mutex_unlock(&c->mu);
    kurer__calls_kick(c);
}
