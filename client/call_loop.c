/* The calls module on the library thread (call.h): its handles on the handle's loop, one turn
 * per wake-up (the media link started or stopped to match the current call, capture frames
 * sent, events given to the application, the timer set to the next deadline), and the ring and
 * media timeouts. */
#include <stdlib.h>
#include <string.h>

#include "call_internal.h"
#include "home.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"
#include "net_internal.h"

static void link_connected(void *ud)
{
    kurer__calls *c = ud;
    uv_mutex_lock(&c->mu);
    if (c->cur.st == CS_MEDIA) {
        c->cur.st = CS_CONNECTED;
        c->cur.media_until = 0;
        kurer__calls_event_locked(c, KURER_CALL_EV_CONNECTED, KURER_CALL_END_NONE, 0, NULL, 0);
        uv_mutex_lock(&c->amu);
        c->connected_at = kurer_time_mono_ms();
        uv_mutex_unlock(&c->amu);
    }
    uv_mutex_unlock(&c->mu);
    kurer__calls_kick(c);
}

static void link_failed(void *ud, int err)
{
    kurer__calls *c = ud;
    uv_mutex_lock(&c->mu);
    if (c->cur.st == CS_MEDIA || c->cur.st == CS_CONNECTED)
        kurer__calls_end_telling_locked(c, KURER_CALL_REASON_FAILED, KURER_CALL_EV_FAILED,
                                        KURER_CALL_END_NONE, err);
    uv_mutex_unlock(&c->mu);
    kurer__calls_kick(c);
}

/* The relay's address as the connection reached it, with the media port. */
static int relay_media_addr(kurer__calls *c, uint16_t port, struct sockaddr_storage *out)
{
    kurer__net *n = c->k->net;
    uv_mutex_lock(&n->mu);
    *out = n->addr;
    uv_mutex_unlock(&n->mu);
    if (out->ss_family == AF_INET)
        ((struct sockaddr_in *)out)->sin_port = htons(port);
    else if (out->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)out)->sin6_port = htons(port);
    else
        return KURER_ESTATE; /* never connected: no relay address to send to */
    return 0;
}

/* The live link stops; its figures become the last call's. */
static void link_stop(kurer__calls *c)
{
    uv_mutex_lock(&c->amu);
    kurer__call_link *l = c->link;
    if (l != NULL) {
        kurer__call_link_stats(l, &c->last_stats);
        if (c->connected_at != 0)
            c->last_stats.duration_ms = (uint32_t)(kurer_time_mono_ms() - c->connected_at);
        c->last_id = c->link_call;
    }
    c->link = NULL;
    c->link_call = 0;
    c->connected_at = 0;
    uv_mutex_unlock(&c->amu);
    kurer__call_link_stop(l);
}

/* Under mu: starts the link of the current call (answered: both base keys known). */
static void link_start_locked(kurer__calls *c)
{
    call *x = &c->cur;
    kurer__call_link_params p;
    memset(&p, 0, sizeof(p));
    int rc = relay_media_addr(c, x->udp_port, &p.relay);
    p.ticket = x->ticket;
    p.ticket_len = x->ticket_len;
    p.keepalive_ms = x->keepalive_ms;
    p.media_timeout_ms = kurer__calls_opt(c->opt.media_timeout_ms, KURER__CALL_MEDIA_MS);
    p.call_id = x->id;
    p.we_caller = x->outgoing;
    p.caller_key = x->key_caller;
    p.callee_key = x->key_callee;
    p.loss_perc = (int)kurer__calls_opt(c->opt.expected_loss, KURER__CALL_LOSS_PERC);
    kurer__call_link_cbs cbs = {link_connected, link_failed, c};
    kurer__call_link *l = NULL;
    if (rc == 0)
        rc = kurer__call_link_start(c->loop, &p, &cbs, &l);
    if (rc != 0) {
        kurer__calls_end_telling_locked(c, KURER_CALL_REASON_FAILED, KURER_CALL_EV_FAILED,
                                        KURER_CALL_END_NONE, rc);
        return;
    }
    uv_mutex_lock(&c->amu);
    c->link = l;
    c->link_call = x->id;
    c->connected_at = 0;
    uv_mutex_unlock(&c->amu);
}

static void timer_fired(uv_timer_t *t);

/* One turn: the link matches the call, capture goes out, events, the next deadline. */
static void turn(kurer__calls *c)
{
    uv_mutex_lock(&c->mu);
    call *x = &c->cur;
    int media = x->st == CS_MEDIA || x->st == CS_CONNECTED;
    uint64_t link_call = c->link_call; /* (written only on this thread) */
    int stop = c->link != NULL && (!media || link_call != x->id);
    uv_mutex_unlock(&c->mu);
    if (stop)
        link_stop(c);
    uv_mutex_lock(&c->mu);
    if ((x->st == CS_MEDIA || x->st == CS_CONNECTED) && c->link == NULL)
        link_start_locked(c);
    int rebind = c->rebind;
    c->rebind = 0;
    uint64_t next = 0;
    if (x->ring_until != 0)
        next = x->ring_until;
    if (x->media_until != 0 && (next == 0 || x->media_until < next))
        next = x->media_until;
    uv_mutex_unlock(&c->mu);
    if (c->link != NULL) {
        if (rebind)
            kurer__call_link_rebind(c->link);
        kurer__call_link_pump(c->link);
    }
    kurer__calls_dispatch(c);
    if (next != 0) {
        uint64_t now = kurer_time_mono_ms();
        uv_timer_start(&c->timer, timer_fired, next > now ? next - now : 0, 0);
    } else {
        uv_timer_stop(&c->timer);
    }
}

static void timer_fired(uv_timer_t *t)
{
    kurer__calls *c = t->data;
    uint64_t now = kurer_time_mono_ms();
    uv_mutex_lock(&c->mu);
    call *x = &c->cur;
    if (x->st != CS_NONE && x->ring_until != 0 && now >= x->ring_until) {
        if (x->outgoing)
            kurer__calls_end_telling_locked(c, KURER_CALL_REASON_TIMEOUT, KURER_CALL_EV_ENDED,
                                            KURER_CALL_END_TIMEOUT, 0);
        else
            kurer__calls_end_locked(c, KURER_CALL_EV_ENDED, KURER_CALL_END_TIMEOUT, 0, NULL, 0);
    } else if (x->st == CS_MEDIA && x->media_until != 0 && now >= x->media_until) {
        kurer__calls_end_telling_locked(c, KURER_CALL_REASON_FAILED, KURER_CALL_EV_FAILED,
                                        KURER_CALL_END_NONE, KURER_ETIMEOUT);
    }
    uv_mutex_unlock(&c->mu);
    turn(c);
}

static void woken(uv_async_t *a)
{
    turn(a->data);
}

int kurer__calls_new(kurer *k, uv_loop_t *loop)
{
    kurer__calls *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return KURER_ENOMEM;
    c->k = k;
    c->loop = loop;
    if (uv_mutex_init(&c->mu) != 0) {
        free(c);
        return KURER_ENOMEM;
    }
    if (uv_mutex_init(&c->amu) != 0) {
        uv_mutex_destroy(&c->mu);
        free(c);
        return KURER_ENOMEM;
    }
    uv_async_init(loop, &c->wake, woken);
    c->wake.data = c;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    k->calls = c;
    return 0;
}

void kurer__calls_close_handles(kurer *k)
{
    kurer__calls *c = k->calls;
    if (c == NULL || atomic_load(&c->closed))
        return;
    uv_mutex_lock(&c->mu);
    if (c->cur.st != CS_NONE) /* no signalling now: the workers are gone */
        kurer__calls_end_locked(c, KURER_CALL_EV_FAILED, KURER_CALL_END_NONE, KURER_ECLOSED, NULL,
                                0);
    uv_mutex_unlock(&c->mu);
    link_stop(c);
    kurer__calls_dispatch(c);
    atomic_store(&c->closed, 1);
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_close((uv_handle_t *)&c->timer, NULL);
}

void kurer__calls_free(kurer *k)
{
    kurer__calls *c = k->calls;
    if (c == NULL)
        return;
    while (c->e_head != NULL) {
        cev *v = c->e_head;
        c->e_head = v->next;
        free(v);
    }
    uv_mutex_destroy(&c->mu);
    uv_mutex_destroy(&c->amu);
    kurer_memzero(c, sizeof(*c));
    free(c);
    k->calls = NULL;
}

void kurer__calls_network_changed(kurer *k)
{
    kurer__calls *c = k->calls;
    if (c == NULL)
        return;
    uv_mutex_lock(&c->mu);
    c->rebind = 1;
    uv_mutex_unlock(&c->mu);
    kurer__calls_kick(c);
}
