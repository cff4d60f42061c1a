/* The media link of one call (call.h): a UDP socket to the relay's media port on the library
 * thread, BIND with its ticket until BOUND (every 250 ms, bounded), a KEEPALIVE at the relay's
 * interval, RTT probes echoed end to end, and the audio engine's payloads protected with SFrame
 * on the way out and checked on the way in. The datagram kinds are docs/calls.md's. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"

#define DG_BIND      0x01
#define DG_BOUND     0x02
#define DG_MEDIA     0x03
#define DG_KEEPALIVE 0x04

#define TICK_MS       250   /* bind retries and the link's bookkeeping */
#define BIND_TRIES    40    /* 10 s of BIND before the link gives up */
#define PROBE_FAST_MS 250   /* RTT probes until the peer is heard, */
#define PROBE_MS      2000  /* and then */
#define KEEPALIVE_MS  15000 /* unless the relay says otherwise */
#define QUIET_MS      1000  /* the peer silent this long: BIND again (a NAT may have moved us) */
#define DATAGRAM_MAX  2048  /* the largest we send or take (an Opus frame fits 1 + 1292) */

struct kurer__call_link {
    uv_loop_t *loop;
    uv_udp_t *sock; /* its own allocation: a network change replaces it */
    struct sockaddr_storage relay;
    uv_timer_t tick;
    int open_handles;
    kurer__call_link_cbs cbs;
    kurer_sframe_send *tx;
    kurer_sframe_recv *rx;
    kurer__call_audio *audio;
    uint8_t ticket[KURER_MEDIA_TICKET_MAX];
    size_t ticket_len;
    uint32_t keepalive_ms, media_timeout_ms;
    int bound, heard, stopped;
    unsigned bind_tries;
    uint64_t last_keepalive, last_probe, last_heard, started; /* monotonic ms */
    atomic_uint_fast64_t rejected, send_dropped;
    atomic_uint rtt_us;
    uint8_t in[DATAGRAM_MAX];
    uint8_t out[DATAGRAM_MAX];
};

static uint64_t now_us(void)
{
    return kurer_time_mono_ns() / 1000u;
}

static void send_raw(kurer__call_link *l, const uint8_t *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
    /* Never queued: a datagram the socket cannot take now is dropped (audio is late anyway). */
    if (uv_udp_try_send(l->sock, &b, 1, NULL) < 0)
        atomic_fetch_add(&l->send_dropped, 1);
}

static void send_bind(kurer__call_link *l)
{
    uint8_t b[1 + KURER_MEDIA_TICKET_MAX];
    b[0] = DG_BIND;
    memcpy(b + 1, l->ticket, l->ticket_len);
    send_raw(l, b, 1 + l->ticket_len);
    l->bind_tries++;
}

/* Protects payload p[0..n) and sends it as MEDIA. */
static void send_media(kurer__call_link *l, const uint8_t *p, size_t n)
{
    size_t len = 0;
    l->out[0] = DG_MEDIA;
    if (kurer_sframe_protect(l->tx, NULL, 0, p, n, l->out + 1, sizeof(l->out) - 1, &len) != 0) {
        atomic_fetch_add(&l->send_dropped, 1);
        return;
    }
    send_raw(l, l->out, 1 + len);
}

static void send_rtt(kurer__call_link *l, int type, uint64_t clock_us)
{
    uint8_t p[KURER__MEDIA_RTT_LEN];
    send_media(l, p, kurer__media_rtt_encode(p, type, clock_us));
}

static void fail(kurer__call_link *l, int err)
{
    if (l->stopped)
        return;
    l->stopped = 1; /* once */
    uv_udp_recv_stop(l->sock);
    uv_timer_stop(&l->tick);
    l->cbs.failed(l->cbs.ud, err);
}

/* An authentic frame from the peer: audio to the engine, probes answered, replies timed. */
static void on_payload(kurer__call_link *l, const uint8_t *p, size_t n)
{
    kurer__media m;
    if (kurer__media_parse(p, n, &m) != 0) {
        atomic_fetch_add(&l->rejected, 1);
        return;
    }
    if (m.type == KURER__MEDIA_AUDIO) {
        if (kurer__call_audio_receive(l->audio, p, n, now_us()) != 0)
            atomic_fetch_add(&l->rejected, 1);
    } else if (m.type == KURER__MEDIA_RTT_PROBE) {
        send_rtt(l, KURER__MEDIA_RTT_REPLY, m.clock_us);
    } else if (m.type == KURER__MEDIA_RTT_REPLY) {
        uint64_t now = now_us();
        if (m.clock_us <= now && now - m.clock_us < 60u * 1000 * 1000)
            atomic_store(&l->rtt_us, (unsigned)(now - m.clock_us));
    }
    l->last_heard = kurer_time_mono_ms();
    if (!l->heard) {
        l->heard = 1;
        l->cbs.connected(l->cbs.ud);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    kurer__call_link *l = h->data;
    (void)suggested;
    *b = uv_buf_init((char *)l->in, sizeof(l->in));
}

static void on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *b, const struct sockaddr *addr,
                    unsigned flags)
{
    kurer__call_link *l = u->data;
    (void)b;
    if (l->stopped || nread == 0)
        return;
    if (nread < 0) {
        /* ICMP port unreachable on a connected socket: the relay's media port is gone. */
        if (nread == UV_ECONNREFUSED && l->bound)
            fail(l, KURER_ECLOSED);
        return;
    }
    if (addr == NULL || (flags & UV_UDP_PARTIAL) != 0) {
        atomic_fetch_add(&l->rejected, 1);
        return;
    }
    size_t n = (size_t)nread;
    uint8_t pt[DATAGRAM_MAX];
    size_t pt_len = 0;
    switch (l->in[0]) {
    case DG_BOUND:
        l->bound = 1;
        break;
    case DG_KEEPALIVE:
        break; /* the relay's echo: the mapping holds */
    case DG_MEDIA:
        if (kurer_sframe_unprotect(l->rx, NULL, 0, l->in + 1, n - 1, pt, sizeof(pt), &pt_len,
                                   NULL) != 0) {
            atomic_fetch_add(&l->rejected, 1);
            break;
        }
        on_payload(l, pt, pt_len);
        kurer_memzero(pt, pt_len);
        break;
    default:
        atomic_fetch_add(&l->rejected, 1);
    }
}

static void on_tick(uv_timer_t *t)
{
    kurer__call_link *l = t->data;
    uint64_t now = kurer_time_mono_ms();
    if (!l->bound) {
        if (l->bind_tries >= BIND_TRIES) {
            fail(l, KURER_ETIMEOUT);
            return;
        }
        send_bind(l);
        return;
    }
    uint64_t since = l->heard ? l->last_heard : l->started;
    if (now - since > l->media_timeout_ms) {
        fail(l, KURER_ETIMEOUT); /* the peer or the relay is gone */
        return;
    }
    if (l->heard && now - l->last_heard >= QUIET_MS) {
        /* A NAT that gave the flow a new port (which the platform does not report) makes the
         * relay drop what we send: BIND again, until BOUND (the ticket re-locks the leg). */
        l->bound = 0;
        l->bind_tries = 0;
        send_bind(l);
        return;
    }
    if (now - l->last_probe >= (l->heard ? PROBE_MS : PROBE_FAST_MS)) {
        l->last_probe = now;
        send_rtt(l, KURER__MEDIA_RTT_PROBE, now_us());
    }
    if (now - l->last_keepalive >= l->keepalive_ms) {
        uint8_t k[1 + 8] = {DG_KEEPALIVE};
        kurer_random(k + 1, 8);
        send_raw(l, k, sizeof(k));
        l->last_keepalive = now;
    }
}

static void on_closed(uv_handle_t *h)
{
    kurer__call_link *l = h->data;
    if (h->type == UV_UDP)
        free(h); /* (the timer is part of the link) */
    if (--l->open_handles == 0) {
        kurer_memzero(l, sizeof(*l));
        free(l);
    }
}

/* A socket connected to the relay's media port, receiving. 0 or KURER_EIO / KURER_ENOMEM
 * (nothing left open but a handle being closed). */
static int open_socket(kurer__call_link *l)
{
    uv_udp_t *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return KURER_ENOMEM;
    uv_udp_init(l->loop, u);
    u->data = l;
    l->open_handles++;
    /* Connected: the kernel drops datagrams from anyone but the relay's media port. */
    if (uv_udp_connect(u, (const struct sockaddr *)&l->relay) != 0 ||
        uv_udp_recv_start(u, on_alloc, on_recv) != 0) {
        uv_close((uv_handle_t *)u, on_closed);
        return KURER_EIO;
    }
    l->sock = u;
    return 0;
}

static int contexts(kurer__call_link *l, const kurer__call_link_params *p)
{
    kurer__call_audio_config cfg = {0, p->loss_perc};
    int rc = kurer_sframe_call_contexts(p->call_id, p->caller_key, p->callee_key, p->we_caller,
                                        &l->tx, &l->rx);
    if (rc == 0)
        rc = kurer__call_audio_new(&l->audio, &cfg);
    return rc;
}

static void release(kurer__call_link *l)
{
    kurer_sframe_send_free(l->tx);
    kurer_sframe_recv_free(l->rx);
    kurer__call_audio_free(l->audio);
    l->tx = NULL;
    l->rx = NULL;
    l->audio = NULL;
}

int kurer__call_link_start(uv_loop_t *loop, const kurer__call_link_params *p,
                           const kurer__call_link_cbs *cbs, kurer__call_link **out)
{
    *out = NULL;
    if (p->ticket_len == 0 || p->ticket_len > KURER_MEDIA_TICKET_MAX)
        return KURER_EINVAL;
    kurer__call_link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return KURER_ENOMEM;
    l->loop = loop;
    l->cbs = *cbs;
    memcpy(l->ticket, p->ticket, p->ticket_len);
    l->ticket_len = p->ticket_len;
    l->keepalive_ms = p->keepalive_ms != 0 ? p->keepalive_ms : KEEPALIVE_MS;
    l->media_timeout_ms = p->media_timeout_ms;
    l->started = l->last_keepalive = kurer_time_mono_ms();
    int rc = contexts(l, p);
    if (rc != 0) {
        release(l);
        kurer_memzero(l, sizeof(*l));
        free(l);
        return rc;
    }
    l->relay = p->relay;
    uv_timer_init(loop, &l->tick);
    l->tick.data = l;
    l->open_handles = 1;
    if ((rc = open_socket(l)) != 0) {
        kurer__call_link_stop(l);
        return rc;
    }
    send_bind(l);
    uv_timer_start(&l->tick, on_tick, TICK_MS, TICK_MS);
    *out = l;
    return 0;
}

void kurer__call_link_stop(kurer__call_link *l)
{
    if (l == NULL)
        return;
    l->stopped = 1;
    release(l); /* the base keys' descendants wiped now */
    if (l->sock != NULL)
        uv_close((uv_handle_t *)l->sock, on_closed);
    l->sock = NULL;
    uv_close((uv_handle_t *)&l->tick, on_closed);
}

/* A new socket (after a network change the old one may be bound to an address that is gone),
 * and BIND from it: the relay locks the leg to the new address (the ticket is valid for
 * hours). */
void kurer__call_link_rebind(kurer__call_link *l)
{
    if (l->stopped)
        return;
    uv_close((uv_handle_t *)l->sock, on_closed);
    l->sock = NULL;
    int rc = open_socket(l);
    if (rc != 0) {
        l->stopped = 1;
        uv_timer_stop(&l->tick);
        l->cbs.failed(l->cbs.ud, rc);
        return;
    }
    l->bound = 0;
    l->bind_tries = 0;
    send_bind(l);
}

kurer__call_audio *kurer__call_link_audio(kurer__call_link *l)
{
    return l->audio;
}

void kurer__call_link_pump(kurer__call_link *l)
{
    uint8_t p[KURER__MEDIA_MAX];
    size_t n = 0;
    if (l->stopped)
        return;
    while (kurer__call_audio_encode_next(l->audio, p, sizeof(p), &n) == 0 && n > 0) {
        if (l->bound)
            send_media(l, p, n);
    }
}

void kurer__call_link_stats(kurer__call_link *l, kurer_call_stats *out)
{
    kurer__call_audio_stats a;
    memset(out, 0, sizeof(*out));
    if (l->audio == NULL)
        return;
    kurer__call_audio_get_stats(l->audio, &a);
    out->sent = a.sent;
    out->received = a.received;
    out->lost = a.lost;
    out->late = a.late;
    out->concealed = a.concealed;
    out->fec_recovered = a.fec_recovered;
    out->jitter_ms = (uint32_t)(a.jitter_ms + 0.5);
    out->rejected = atomic_load(&l->rejected);
    out->rtt_us = atomic_load(&l->rtt_us);
}
