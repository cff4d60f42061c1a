/* The call state machine behind kurer.h's call API (call.h): one current call, its signalling
 * jobs on the request workers, its timers and media link on the library thread, and the events
 * for the application. docs/calls.md ("Signalling") and docs/protocol.md 4.5 state the rules
 * this file implements. */
#include "call.h"

#include <stdlib.h>
#include <string.h>

#include "home.h"
#include "kurer/certmsg.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"
#include "net.h"
#include "call_internal.h"

uint32_t kurer__calls_opt(uint32_t v, uint32_t dflt)
{
    return v != 0 ? v : dflt;
}

void kurer__calls_kick(kurer__calls *c)
{
    if (!atomic_load(&c->closed))
        uv_async_send(&c->wake);
}

/* ---- events ---- */

static cev *event_new(kurer__calls *c, kurer_call_event_kind kind, kurer_call_end end, int err,
                      const kurer_refusal *why, uint64_t replaced_by)
{
    cev *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL; /* the state still changes; the application misses one event */
    v->e.kind = kind;
    v->e.call_id = c->cur.id;
    snprintf(v->peer, sizeof(v->peer), "%s", c->cur.peer);
    v->e.peer_device = c->cur.peer_device;
    v->e.level = c->cur.level;
    v->e.outgoing = c->cur.outgoing;
    v->e.end = end;
    v->e.err = err;
    if (why != NULL)
        v->e.why = *why;
    v->e.replaced_by = replaced_by;
    return v;
}

static void event_push_locked(kurer__calls *c, cev *v)
{
    if (v == NULL)
        return;
    if (c->e_tail != NULL)
        c->e_tail->next = v;
    else
        c->e_head = v;
    c->e_tail = v;
}

void kurer__calls_event_locked(kurer__calls *c, kurer_call_event_kind kind, kurer_call_end end,
                               int err, const kurer_refusal *why, uint64_t replaced_by)
{
    event_push_locked(c, event_new(c, kind, end, err, why, replaced_by));
}

void kurer__calls_dispatch(kurer__calls *c)
{
    uv_mutex_lock(&c->mu);
    cev *v = c->e_head;
    c->e_head = c->e_tail = NULL;
    kurer_call_events ev = c->ev;
    uv_mutex_unlock(&c->mu);
    while (v != NULL) {
        cev *next = v->next;
        v->e.peer = v->peer;
        if (ev.on_call != NULL)
            ev.on_call(ev.ud, &v->e);
        free(v);
        v = next;
    }
}

/* ---- signalling jobs ---- */

static void sjob_free(sjob *j)
{
    free(j->after);
    kurer_memzero(j, sizeof(*j)); /* the base key of an offer or answer */
    free(j);
}

static void offer_allocated(kurer__calls *c, uint64_t id, const kurer__call_alloc *a);
static int still_current(kurer__calls *c, uint64_t id);

static void sjob_run(kurer *k, kurer__job *jb)
{
    sjob *j = (sjob *)jb;
    /* Connected first (a call may start while the library is between connections). */
    if ((j->err = kurer__net_wait_online(k, jb->deadline, 1)) != 0)
        return;
    if (j->kind == J_OFFER) {
        kurer__call_alloc a;
        memset(&a, 0, sizeof(a));
        j->err = kurer__call_allocate(k, jb->deadline, &a);
        if (j->err != 0)
            return;
        memcpy(j->ticket, a.ticket_b, a.ticket_b_len);
        j->m.media_ticket = j->ticket;
        j->m.media_ticket_len = a.ticket_b_len;
        j->m.media_port = a.udp_port;
        offer_allocated(j->c, j->m.call_id, &a);
        kurer_memzero(&a, sizeof(a));
        if (!still_current(j->c, j->m.call_id))
            return; /* hung up meanwhile: no offer goes out */
    }
    int check = j->kind == J_OFFER || j->kind == J_ANSWER;
    j->m.timestamp = (uint64_t)kurer__home_now(k) * 1000;
    j->err =
        kurer__call_signal_send(k, j->user, &j->m, check, jb->deadline, &j->why, &j->n_devices);
    if (j->err != 0)
        kurer_log(KURER_LOG_WARN, "client", "call_signal_failed",
                  (kurer_log_field[]){KURER_LOG_INT("kind", j->m.kind),
                                      KURER_LOG_STR("peer", j->user),
                                      KURER_LOG_STR("reason", kurer_err_name(j->err))},
                  3);
}

static void sjob_done(kurer *k, kurer__job *jb)
{
    sjob *j = (sjob *)jb;
    kurer__calls *c = j->c;
    (void)k;
    int err = j->err != 0 ? j->err : jb->rc;
    uv_mutex_lock(&c->mu);
    event_push_locked(c, j->after); /* the end of a call, told to the peer (or not: err) */
    j->after = NULL;
    call *x = &c->cur;
    if (x->id == j->m.call_id && x->st != CS_NONE) {
        if (j->kind == J_OFFER && err != 0) {
            kurer__calls_end_locked(c, KURER_CALL_EV_FAILED, KURER_CALL_END_NONE, err, &j->why, 0);
        } else if (j->kind == J_OFFER) {
            x->offered = j->n_devices;
            if (x->st == CS_OFFERING) {
                x->st = CS_RINGING_OUT;
                kurer__calls_event_locked(c, KURER_CALL_EV_RINGING, KURER_CALL_END_NONE, 0, NULL,
                                          0);
            }
        } else if (j->kind == J_ANSWER && x->st == CS_ANSWERING) {
            if (err != 0) {
                kurer__calls_end_locked(c, KURER_CALL_EV_FAILED, KURER_CALL_END_NONE, err, &j->why,
                                        0);
            } else {
                x->st = CS_MEDIA;
                x->media_until = kurer_time_mono_ms() +
                                 kurer__calls_opt(c->opt.media_timeout_ms, KURER__CALL_MEDIA_MS);
                kurer__calls_event_locked(c, KURER_CALL_EV_ANSWERED, KURER_CALL_END_NONE, 0, NULL,
                                          0);
            }
        }
    }
    uv_mutex_unlock(&c->mu);
    sjob_free(j);
    kurer__calls_kick(c);
}

/* Under mu: queues a CallMessage of kind for user (the current call's id unless id != 0). */
static sjob *sjob_new_locked(kurer__calls *c, job_kind kind, const char *user, uint64_t id,
                             kurer_call_reason reason, uint32_t answered_device)
{
    sjob *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    call *x = &c->cur;
    j->c = c;
    j->kind = kind;
    j->job.run = sjob_run;
    j->job.done = sjob_done;
    j->job.deadline = kurer_time_mono_ms() + SIGNAL_WAIT_MS;
    snprintf(j->user, sizeof(j->user), "%s", user);
    j->m.call_id = id != 0 ? id : x->id;
    j->m.version = KURER_CALL_VERSION;
    switch (kind) {
    case J_OFFER:
    case J_ANSWER:
        j->m.kind = kind == J_OFFER ? KURER_CALL_OFFER : KURER_CALL_ANSWER;
        j->m.level = (kurer_level)x->level;
        j->m.has_sframe_key = 1;
        memcpy(j->m.sframe_key, kind == J_OFFER ? x->key_caller : x->key_callee,
               KURER_SFRAME_CALL_KEY_LEN);
        break;
    case J_HANGUP:
        j->m.kind = KURER_CALL_HANGUP;
        j->m.reason = reason;
        j->m.answered_device = answered_device;
        break;
    case J_BUSY:
        j->m.kind = KURER_CALL_BUSY;
        break;
    }
    return j;
}

int kurer__calls_signal_locked(kurer__calls *c, job_kind kind, const char *user, uint64_t id,
                               kurer_call_reason reason, uint32_t answered_device)
{
    sjob *j = sjob_new_locked(c, kind, user, id, reason, answered_device);
    if (j == NULL)
        return KURER_ENOMEM;
    int rc = kurer__net_submit(c->k, &j->job);
    if (rc != 0)
        sjob_free(j);
    return rc;
}

/* ---- the current call ---- */

void kurer__calls_clear(call *x)
{
    kurer_memzero(x, sizeof(*x)); /* the base keys */
}

/* Under mu: the current call's figures and state go (the media link stops in the next turn
 * of the library thread, which keeps its figures as the last call's). */
static void finish_locked(kurer__calls *c, kurer_call_end end, int err)
{
    uv_mutex_lock(&c->amu);
    if (c->link_call != c->cur.id) { /* never had media: empty figures */
        c->last_id = c->cur.id;
        memset(&c->last_stats, 0, sizeof(c->last_stats));
    }
    uv_mutex_unlock(&c->amu);
    kurer_log(KURER_LOG_INFO, "client", "call_ended",
              (kurer_log_field[]){KURER_LOG_STR("peer", c->cur.peer),
                                  KURER_LOG_STR("level", kurer_level_name(c->cur.level)),
                                  KURER_LOG_INT("end", end),
                                  KURER_LOG_STR("reason", kurer_err_name(err))},
              4);
    kurer__calls_clear(&c->cur);
}

void kurer__calls_end_locked(kurer__calls *c, kurer_call_event_kind kind, kurer_call_end end,
                             int err, const kurer_refusal *why, uint64_t replaced_by)
{
    kurer__calls_event_locked(c, kind, end, err, why, replaced_by);
    finish_locked(c, end, err);
}

void kurer__calls_end_telling_locked(kurer__calls *c, kurer_call_reason reason,
                                     kurer_call_event_kind kind, kurer_call_end end, int err)
{
    cev *v = event_new(c, kind, end, err, NULL, 0);
    sjob *j = sjob_new_locked(c, J_HANGUP, c->cur.peer, 0, reason, 0);
    if (j != NULL) {
        j->after = v;
        if (kurer__net_submit(c->k, &j->job) == 0) {
            v = NULL; /* given with the job's completion */
        } else {
            sjob_free(j); /* (which frees v) */
            v = event_new(c, kind, end, err, NULL, 0);
        }
    }
    event_push_locked(c, v);
    finish_locked(c, end, err);
}

static int still_current(kurer__calls *c, uint64_t id)
{
    uv_mutex_lock(&c->mu);
    int yes = c->cur.id == id && c->cur.st != CS_NONE;
    uv_mutex_unlock(&c->mu);
    return yes;
}

static void offer_allocated(kurer__calls *c, uint64_t id, const kurer__call_alloc *a)
{
    uv_mutex_lock(&c->mu);
    if (c->cur.id == id && c->cur.st != CS_NONE) {
        memcpy(c->cur.ticket, a->ticket_a, a->ticket_a_len);
        c->cur.ticket_len = a->ticket_a_len;
        c->cur.udp_port = a->udp_port;
        c->cur.keepalive_ms = a->keepalive_ms;
    }
    uv_mutex_unlock(&c->mu);
}

uint64_t kurer__calls_new_id(void)
{
    uint64_t id = 0;
    while (id == 0)
        kurer_random(&id, sizeof(id));
    return id;
}

void kurer__calls_new_key(uint8_t key[KURER_SFRAME_CALL_KEY_LEN])
{
    static const uint8_t zero[KURER_SFRAME_CALL_KEY_LEN];
    do
        kurer_random(key, KURER_SFRAME_CALL_KEY_LEN);
    while (memcmp(key, zero, KURER_SFRAME_CALL_KEY_LEN) == 0);
}

int kurer_call_start(kurer *k, const char *user, int level, uint64_t *call_id)
{
    if (k == NULL || k->calls == NULL || user == NULL || call_id == NULL ||
        kurer_user_check(user) != 0 || strcmp(user, k->own.user) == 0)
        return KURER_EINVAL;
    if (level == 4 || level == 5)
        return KURER_ECLEARANCE;
    if (level < KURER_LEVEL_UNCLASSIFIED || level > KURER_LEVEL_CONFIDENTIAL)
        return KURER_EINVAL;
    kurer__calls *c = k->calls;
    uv_mutex_lock(&c->mu);
    call *x = &c->cur;
    if (x->st == CS_RINGING_IN && x->level == level && strcmp(x->peer, user) == 0) {
        /* Glare seen from here: user's offer came first. Both want the call: answer it. */
        int rc = kurer__calls_answer_locked(c);
        if (rc == 0)
            *call_id = x->id;
        uv_mutex_unlock(&c->mu);
        kurer__calls_kick(c);
        return rc;
    }
    if (x->st != CS_NONE) {
        uv_mutex_unlock(&c->mu);
        return KURER_EBUSY;
    }
    x->id = kurer__calls_new_id();
    x->st = CS_OFFERING;
    x->outgoing = 1;
    x->level = level;
    snprintf(x->peer, sizeof(x->peer), "%s", user);
    kurer__calls_new_key(x->key_caller);
    x->ring_until =
        kurer_time_mono_ms() + kurer__calls_opt(c->opt.ring_timeout_ms, KURER__CALL_RING_MS);
    int rc = kurer__calls_signal_locked(c, J_OFFER, user, 0, KURER_CALL_REASON_NONE, 0);
    if (rc == 0)
        *call_id = x->id;
    else
        kurer__calls_clear(x);
    uv_mutex_unlock(&c->mu);
    kurer__calls_kick(c);
    return rc;
}

/* Under mu: the current call, if it is call_id. */
static call *find_locked(kurer__calls *c, uint64_t call_id)
{
    return call_id != 0 && c->cur.st != CS_NONE && c->cur.id == call_id ? &c->cur : NULL;
}

int kurer__calls_answer_locked(kurer__calls *c)
{
    call *x = &c->cur;
    kurer__calls_new_key(x->key_callee);
    x->st = CS_ANSWERING;
    x->ring_until = 0;
    return kurer__calls_signal_locked(c, J_ANSWER, x->peer, 0, KURER_CALL_REASON_NONE, 0);
}

int kurer_call_accept(kurer *k, uint64_t call_id)
{
    if (k == NULL || k->calls == NULL)
        return KURER_EINVAL;
    kurer__calls *c = k->calls;
    uv_mutex_lock(&c->mu);
    call *x = find_locked(c, call_id);
    int rc = x == NULL                ? KURER_ENOTFOUND
             : x->st != CS_RINGING_IN ? KURER_ESTATE
                                      : kurer__calls_answer_locked(c);
    uv_mutex_unlock(&c->mu);
    kurer__calls_kick(c);
    return rc;
}

/* Under mu: ends the current call from here, telling the peer why. */
static int local_end_locked(kurer__calls *c, kurer_call_reason reason)
{
    kurer__calls_end_telling_locked(c, reason, KURER_CALL_EV_ENDED, KURER_CALL_END_LOCAL_HANGUP, 0);
    return 0;
}

int kurer_call_decline(kurer *k, uint64_t call_id)
{
    if (k == NULL || k->calls == NULL)
        return KURER_EINVAL;
    kurer__calls *c = k->calls;
    uv_mutex_lock(&c->mu);
    call *x = find_locked(c, call_id);
    int rc = x == NULL                ? KURER_ENOTFOUND
             : x->st != CS_RINGING_IN ? KURER_ESTATE
                                      : local_end_locked(c, KURER_CALL_REASON_DECLINED);
    uv_mutex_unlock(&c->mu);
    kurer__calls_kick(c);
    return rc;
}

int kurer_call_hangup(kurer *k, uint64_t call_id)
{
    if (k == NULL || k->calls == NULL)
        return KURER_EINVAL;
    kurer__calls *c = k->calls;
    uv_mutex_lock(&c->mu);
    call *x = find_locked(c, call_id);
    int rc = KURER_ENOTFOUND;
    if (x != NULL)
        rc = local_end_locked(c, x->st == CS_RINGING_IN ? KURER_CALL_REASON_DECLINED
                                                        : KURER_CALL_REASON_NORMAL);
    uv_mutex_unlock(&c->mu);
    kurer__calls_kick(c);
    return rc;
}

void kurer_set_call_events(kurer *k, const kurer_call_events *ev)
{
    if (k == NULL || k->calls == NULL)
        return;
    uv_mutex_lock(&k->calls->mu);
    if (ev != NULL)
        k->calls->ev = *ev;
    else
        memset(&k->calls->ev, 0, sizeof(k->calls->ev));
    uv_mutex_unlock(&k->calls->mu);
}

void kurer_call_configure(kurer *k, const kurer_call_options *o)
{
    if (k == NULL || k->calls == NULL)
        return;
    uv_mutex_lock(&k->calls->mu);
    if (o != NULL)
        k->calls->opt = *o;
    else
        memset(&k->calls->opt, 0, sizeof(k->calls->opt));
    uv_mutex_unlock(&k->calls->mu);
}

/* ---- audio and statistics (the application's audio thread: amu only) ---- */

int kurer_call_capture(kurer *k, uint64_t call_id, const int16_t *pcm)
{
    if (k == NULL || k->calls == NULL || pcm == NULL)
        return KURER_EINVAL;
    kurer__calls *c = k->calls;
    int rc = KURER_ENOTFOUND;
    uv_mutex_lock(&c->amu);
    if (c->link != NULL && c->link_call == call_id)
        rc = c->connected_at != 0 ? kurer__call_audio_capture(kurer__call_link_audio(c->link), pcm)
                                  : 0; /* before CONNECTED: dropped */
    uv_mutex_unlock(&c->amu);
    if (rc == 0) {
        kurer__calls_kick(c); /* the library thread encodes and sends it */
    } else if (rc == KURER_ENOTFOUND) {
        /* Not the live link: dropped for a call that is being set up, else not found. */
        uv_mutex_lock(&c->mu);
        if (find_locked(c, call_id) != NULL)
            rc = 0;
        uv_mutex_unlock(&c->mu);
    }
    return rc;
}

int kurer_call_playback(kurer *k, uint64_t call_id, int16_t *pcm)
{
    if (k == NULL || k->calls == NULL || pcm == NULL)
        return KURER_EINVAL;
    kurer__calls *c = k->calls;
    int rc = 0;
    uv_mutex_lock(&c->amu);
    if (c->link != NULL && c->link_call == call_id)
        (void)kurer__call_audio_playback(kurer__call_link_audio(c->link), pcm);
    else
        rc = KURER_ENOTFOUND;
    uv_mutex_unlock(&c->amu);
    if (rc != 0) {
        /* Not the live link: silence for a call that is set up, else not found. */
        uv_mutex_lock(&c->mu);
        if (find_locked(c, call_id) != NULL) {
            memset(pcm, 0, KURER_CALL_SAMPLES * sizeof(*pcm));
            rc = 0;
        }
        uv_mutex_unlock(&c->mu);
    }
    return rc;
}

int kurer_call_get_stats(kurer *k, uint64_t call_id, kurer_call_stats *out)
{
    if (k == NULL || k->calls == NULL || out == NULL || call_id == 0)
        return KURER_EINVAL;
    kurer__calls *c = k->calls;
    int rc = 0;
    uv_mutex_lock(&c->amu);
    if (c->link != NULL && c->link_call == call_id) {
        kurer__call_link_stats(c->link, out);
        if (c->connected_at != 0)
            out->duration_ms = (uint32_t)(kurer_time_mono_ms() - c->connected_at);
    } else if (c->last_id == call_id) {
        *out = c->last_stats;
    } else {
        rc = KURER_ENOTFOUND;
    }
    uv_mutex_unlock(&c->amu);
    if (rc == KURER_ENOTFOUND) {
        uv_mutex_lock(&c->mu);
        if (find_locked(c, call_id) != NULL) { /* no media yet */
            memset(out, 0, sizeof(*out));
            rc = 0;
        }
        uv_mutex_unlock(&c->mu);
    }
    return rc;
}
