/* The events of a handle (net.h): queued by the workers and the library thread, given to the
 * application on the library thread, in order; the unreported mark of a message is cleared once
 * its callback has returned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "keychange.h"
#include "kurer/crypto.h"
#include "net_internal.h"

/* ---- events ---- */

void kurer__event_free(event *e)
{
    if (e->text != NULL) {
        kurer_memzero(e->text, e->text_len);
        free(e->text);
    }
    free(e->key_change);
    free(e);
}

static void event_push_locked(kurer__net *n, event *e)
{
    if (n->e_tail != NULL)
        n->e_tail->next = e;
    else
        n->e_head = e;
    n->e_tail = e;
    uv_async_send(&n->wake);
}

static void event_push(kurer__net *n, event *e)
{
    uv_mutex_lock(&n->mu);
    event_push_locked(n, e);
    uv_mutex_unlock(&n->mu);
}

void kurer__event_message(kurer *k, const kurer_message *m, int64_t rowid, int replay)
{
    kurer__net *n = k->net;
    size_t pl = strlen(m->peer), bl = strlen(m->body);
    event *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->text = malloc(pl + bl + 2)) == NULL) {
        free(e);
        return; /* still marked unreported in the store: reported again at the next start */
    }
    e->kind = EV_MESSAGE;
    e->text_len = pl + bl + 2;
    memcpy(e->text, m->peer, pl + 1);
    memcpy(e->text + pl + 1, m->body, bl + 1);
    e->m = *m;
    e->m.peer = e->text;
    e->m.body = e->text + pl + 1;
    e->rowid = rowid;
    e->replay = replay;
    event_push(n, e);
}

void kurer__event_refused(kurer *k, const char *from, uint32_t device_id, int err)
{
    event *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return;
    e->kind = EV_REFUSED;
    snprintf(e->from, sizeof(e->from), "%s", from);
    e->device_id = device_id;
    e->err = err;
    event_push(k->net, e);
}

void kurer__event_key_change(kurer *k, const kurer_key_change *c)
{
    event *e = calloc(1, sizeof(*e));
    ev_key_change *x = calloc(1, sizeof(*x));
    if (e == NULL || x == NULL) {
        free(e);
        free(x);
        return; /* still unreported in the store: given again at the next start */
    }
    e->kind = EV_KEY_CHANGE;
    e->rowid = c->id;
    x->kc = *c;
    snprintf(x->user, sizeof(x->user), "%s", c->user);
    snprintf(x->issuer, sizeof(x->issuer), "%s", c->issuer);
    snprintf(x->old_issuer, sizeof(x->old_issuer), "%s", c->old_issuer);
    snprintf(x->fp, sizeof(x->fp), "%s", c->key_fingerprint);
    snprintf(x->old_fp, sizeof(x->old_fp), "%s", c->old_key_fingerprint);
    x->kc.user = x->user;
    x->kc.issuer = x->issuer;
    x->kc.old_issuer = x->old_issuer;
    x->kc.key_fingerprint = x->fp;
    x->kc.old_key_fingerprint = x->old_fp;
    e->key_change = x;
    event_push(k->net, e);
}

void kurer__event_receipt(kurer *k, const kurer_receipt_info *r)
{
    event *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return; /* the receipt is stored: kurer_history shows it */
    e->kind = EV_RECEIPT;
    e->receipt = *r;
    snprintf(e->from, sizeof(e->from), "%s", r->user);
    snprintf(e->peer, sizeof(e->peer), "%s", r->peer);
    e->receipt.user = e->from;
    e->receipt.peer = e->peer;
    event_push(k->net, e);
}

void kurer__event_state_locked(kurer__net *n, kurer_conn_state s, int reason)
{
    event *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return;
    e->kind = EV_STATE;
    e->state = s;
    e->err = reason;
    event_push_locked(n, e);
}

void kurer__event_replayed(kurer *k, uint64_t seq)
{
    event *e = calloc(1, sizeof(*e));
    if (e == NULL) { /* the waiter sees it at its deadline; the messages were queued */
        uv_mutex_lock(&k->net->mu);
        k->net->marks.replayed_seq = seq;
        uv_cond_broadcast(&k->net->cond);
        uv_mutex_unlock(&k->net->mu);
        return;
    }
    e->kind = EV_REPLAYED;
    e->gen = seq;
    event_push(k->net, e);
}

void kurer__event_queue_empty(kurer *k, uint64_t gen)
{
    event *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return;
    e->kind = EV_QUEUE_EMPTY;
    e->gen = gen;
    event_push(k->net, e);
}

/* Library thread: one event to the application. A message is marked reported once its
 * callback has returned; a replayed one is given only while still marked. */
void kurer__event_dispatch(kurer__net *n, event *e)
{
    kurer *k = n->k;
    uv_mutex_lock(&n->mu);
    kurer_events ev = n->events;
    uv_mutex_unlock(&n->mu);
    switch (e->kind) {
    case EV_MESSAGE:
        if (e->replay && kurer__engine_unreported(k, e->rowid) != 1)
            break;
        if (ev.on_message != NULL) {
            ev.on_message(ev.ud, &e->m);
            kurer__engine_reported(k, e->rowid);
        }
        break;
    case EV_RECEIPT:
        if (ev.on_receipt != NULL)
            ev.on_receipt(ev.ud, &e->receipt);
        break;
    case EV_REFUSED:
        if (ev.on_refused != NULL)
            ev.on_refused(ev.ud, e->from, e->device_id, e->err);
        break;
    case EV_STATE:
        if (ev.on_state != NULL)
            ev.on_state(ev.ud, e->state, e->err);
        break;
    case EV_KEY_CHANGE:
        /* Once: only while still unreported (a copy queued twice, or one told already by an
         * earlier handle, is skipped), and marked once the callback has returned. */
        if (ev.on_key_change != NULL && kurer__key_change_unreported(k, e->rowid) == 1) {
            ev.on_key_change(ev.ud, &e->key_change->kc);
            kurer__key_change_reported(k, e->rowid);
        }
        break;
    case EV_QUEUE_EMPTY:
        if (ev.on_queue_empty != NULL)
            ev.on_queue_empty(ev.ud);
        uv_mutex_lock(&n->mu);
        n->marks.queue_empty_gen = e->gen;
        uv_cond_broadcast(&n->cond);
        uv_mutex_unlock(&n->mu);
        break;
    case EV_REPLAYED: /* after every message of that replay (events are given in order) */
        uv_mutex_lock(&n->mu);
        if (e->gen > n->marks.replayed_seq)
            n->marks.replayed_seq = e->gen;
        uv_cond_broadcast(&n->cond);
        uv_mutex_unlock(&n->mu);
        break;
    }
}

void kurer_set_events(kurer *k, const kurer_events *ev)
{
    if (k == NULL || k->net == NULL)
        return;
    kurer__net *n = k->net;
    uv_mutex_lock(&n->mu);
    if (ev != NULL)
        n->events = *ev;
    else
        memset(&n->events, 0, sizeof(n->events));
    if (ev != NULL && (ev->on_message != NULL || ev->on_key_change != NULL)) {
        n->replay_requested = 1; /* messages and key changes stored but never reported */
        n->replay_seq++;
        uv_cond_signal(&n->sess_cond);
    }
    uv_mutex_unlock(&n->mu);
}

int kurer_replay_wait(kurer *k, int timeout_ms)
{
    if (k == NULL || k->net == NULL || timeout_ms < 0)
        return KURER_EINVAL;
    kurer__net *n = k->net;
    uint64_t deadline = uv_hrtime() / 1000000 + (uint64_t)timeout_ms;
    int rc = 0;
    uv_mutex_lock(&n->mu);
    uint64_t want = n->replay_seq;
    while (n->marks.replayed_seq < want && !n->stopping && rc == 0) {
        uint64_t now = uv_hrtime() / 1000000;
        if (now >= deadline || uv_cond_timedwait(&n->cond, &n->mu, (deadline - now) * 1000000) != 0)
            rc = n->marks.replayed_seq < want ? KURER_ETIMEOUT : 0;
    }
    if (rc == 0 && n->marks.replayed_seq < want)
        rc = KURER_ECLOSED;
    uv_mutex_unlock(&n->mu);
    return rc;
}
