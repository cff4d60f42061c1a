/* Noise sessions over libuv TCP streams: see kurer/net.h for the contract. */
#include "kurer/net.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "kurer/util.h"

enum conn_state {
    ST_CONNECTING = 0, /* initiator: TCP connect in progress */
    ST_HS_WAIT,        /* waiting for the peer's handshake message */
    ST_HS_REPLY,       /* responder: waiting for the application's kurer_conn_hs_reply */
    ST_OPEN,           /* transport */
};

#define CLOSE_GRACE_MS 2000
#define OUT_FIRST      16384 /* first allocation of an output buffer */

struct kurer_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_idle_t idle;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_loop_t *loop;

    kurer_net_limits lim;
    kurer_conn_cbs cbs;
    void *data;

    enum conn_state state;
    int initiator;
    int allow_nk;
    kurer_noise_pattern pattern;
    kurer_noise_hs *hs;
    const kurer_net_static_key *key; /* responder: borrowed from the listener */
    uint8_t remote_static[32];
    int have_remote_static;
    int authenticated;  /* the peer proved its keys: the pre-authentication bounds are lifted */
    int established_cb; /* responder: on_established has run */
    kurer_noise_cipher tx, rx;

    uint8_t *in; /* unprocessed input (a partial record, or records held back while paused):
                    NULL when there is none; never more than in_max bytes */
    size_t in_len, in_cap, in_max;

    kurer_buf pending;  /* records waiting for the next write */
    kurer_buf inflight; /* the bytes of the write in flight */
    int writing;
    int idle_active;
    int reading;
    int congested;

    uint64_t started_ms, last_rx_ms;
    int idle_notified;

    int closing;
    int close_after_flush;
    uint64_t close_deadline_ms;
    int close_err;
    int handles_open;
    int processing; /* inside process_input: defer work that would re-enter it */
};

kurer_net_limits kurer_net_limits_default(void)
{
    kurer_net_limits l;
    l.max_record = KURER_NET_RECORD_MAX;
    l.out_cap = (size_t)1 << 20;
    l.out_max = (size_t)4 << 20;
    l.handshake_ms = 10000;
    l.idle_ms = 120000;
    l.preauth_record = KURER_NET_PREAUTH_RECORD;
    return l;
}

int kurer_net_record_next(kurer_reader *r, size_t max, const uint8_t **rec, size_t *n)
{
    size_t save = r->off;
    uint16_t len;
    *rec = NULL;
    *n = 0;
    if (kurer_reader_u16be(r, &len) != 0) {
        r->off = save;
        return KURER_ETRUNC;
    }
    if (len == 0) {
        r->off = save;
        return KURER_EMALFORMED;
    }
    if (len > max) {
        r->off = save;
        return KURER_ELIMIT;
    }
    if (kurer_reader_view(r, len, rec) != 0) {
        r->off = save;
        return KURER_ETRUNC;
    }
    *n = len;
    return 0;
}

/* The largest record accepted now: a peer that has not proven its keys gets the low bound. */
static size_t record_max(const kurer_conn *c)
{
    return c->authenticated ? c->lim.max_record : c->lim.preauth_record;
}

/* Output bounds: a responder's peer that has not authenticated gets at most about two
 * pre-authentication records queued before reading stops, and four before the connection
 * closes: an unauthenticated peer that sends requests and never reads makes us hold a few KB. */
static size_t out_cap_now(const kurer_conn *c)
{
    if (c->initiator || c->authenticated || c->lim.out_cap < 2 * c->lim.preauth_record)
        return c->lim.out_cap;
    return 2 * c->lim.preauth_record;
}

static size_t out_max_now(const kurer_conn *c)
{
    if (c->initiator || c->authenticated || c->lim.out_max < 4 * c->lim.preauth_record)
        return c->lim.out_max;
    return 4 * c->lim.preauth_record;
}

static size_t in_max_for(size_t record)
{
    return 2 * (record + KURER_NET_RECORD_HDR);
}

/* The peer proved it holds the keys of the handshake (for IK its static key): lift the
 * pre-authentication bounds. */
static void authenticate(kurer_conn *c)
{
    c->authenticated = 1;
    c->in_max = in_max_for(c->lim.max_record);
}

static size_t queued(const kurer_conn *c)
{
    return c->pending.len + c->inflight.len;
}

static void update_reading(kurer_conn *c);
static void process_input(kurer_conn *c);

/* The read buffer every connection of this thread (so of its loop) reads into: input is copied
 * into a connection's own buffer only when a record is incomplete, or while the connection is
 * paused. Records are decrypted in place here and wiped once the read is handled. */
#define RBUF_SIZE (KURER_NET_RECORD_MAX + KURER_NET_RECORD_HDR)
static _Thread_local uint8_t rbuf[RBUF_SIZE];

static void in_release(kurer_conn *c)
{
    if (c->in != NULL) {
        kurer_wipe(c->in, c->in_cap);
        free(c->in);
    }
    c->in = NULL;
    c->in_len = c->in_cap = 0;
}

/* Appends n bytes to the connection's input buffer (n <= in_max - in_len). hint: the size the
 * buffer will probably need (a whole record), to avoid growing it read by read. */
static int in_append(kurer_conn *c, const uint8_t *p, size_t n, size_t hint)
{
    size_t need = c->in_len + n;
    if (need > c->in_max)
        return KURER_ELIMIT;
    if (need > c->in_cap) {
        size_t cap = hint > need ? hint : need;
        if (cap < 2 * c->in_cap)
            cap = 2 * c->in_cap;
        if (cap > c->in_max)
            cap = c->in_max;
        uint8_t *nb = malloc(cap);
        if (nb == NULL)
            return KURER_ENOMEM;
        if (c->in_len > 0)
            memcpy(nb, c->in, c->in_len);
        if (c->in != NULL) {
            kurer_wipe(c->in, c->in_cap);
            free(c->in);
        }
        c->in = nb;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    kurer_conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    if (c->cbs.on_close != NULL)
        c->cbs.on_close(c, c->close_err);
    kurer_noise_hs_free(c->hs);
    kurer_noise_cipher_wipe(&c->tx);
    kurer_noise_cipher_wipe(&c->rx);
    kurer_buf_release(&c->pending);
    kurer_buf_release(&c->inflight);
    in_release(c);
    free(c);
}

void kurer_conn_close(kurer_conn *c, int err)
{
    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    c->close_err = err;
    c->reading = 0;
    c->handles_open = 3;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_handle_closed);
}

void kurer_conn_close_after_flush(kurer_conn *c, int err)
{
    if (c == NULL || c->closing || c->close_after_flush)
        return;
    c->close_after_flush = 1;
    c->close_err = err;
    c->close_deadline_ms = kurer_time_mono_ms() + CLOSE_GRACE_MS;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    if (queued(c) == 0)
        kurer_conn_close(c, err);
}

static void flush(kurer_conn *c);

static void on_write(uv_write_t *req, int status)
{
    kurer_conn *c = req->data;
    c->writing = 0;
    kurer_buf_reset(&c->inflight);
    if (c->pending.len == 0) {
        /* drained: an idle connection holds no output buffers */
        kurer_buf_release(&c->inflight);
        kurer_buf_release(&c->pending);
    }
    if (c->closing)
        return;
    if (status < 0) {
        kurer_conn_close(c, KURER_ECLOSED);
        return;
    }
    if (c->pending.len > 0) {
        flush(c);
        return;
    }
    if (c->close_after_flush) {
        kurer_conn_close(c, c->close_err);
        return;
    }
    if (c->congested && queued(c) < out_cap_now(c)) {
        c->congested = 0;
        update_reading(c);
        if (c->cbs.on_drain != NULL)
            c->cbs.on_drain(c);
    }
}

/* Starts one uv_write with everything pending, unless one is in flight (its callback comes
 * back here). */
static void flush(kurer_conn *c)
{
    if (c->closing || c->writing || c->pending.len == 0)
        return;
    kurer_buf tmp = c->inflight;
    c->inflight = c->pending;
    c->pending = tmp;
    uv_buf_t b = uv_buf_init((char *)c->inflight.data, (unsigned)c->inflight.len);
    c->write_req.data = c;
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        kurer_conn_close(c, KURER_ECLOSED);
        return;
    }
    c->writing = 1;
}

static void on_idle_tick(uv_idle_t *h)
{
    kurer_conn *c = h->data;
    uv_idle_stop(h);
    c->idle_active = 0;
    flush(c);
}

static void schedule_flush(kurer_conn *c)
{
    if (c->idle_active || c->closing)
        return;
    c->idle_active = 1;
    uv_idle_start(&c->idle, on_idle_tick);
}

/* Queues raw bytes as one record (handshake messages). */
static int queue_record_raw(kurer_conn *c, const uint8_t *p, size_t n)
{
    if (n == 0 || n > c->lim.max_record)
        return KURER_ELIMIT;
    int rc = kurer_buf_put_lv16(&c->pending, p, n);
    if (rc == 0)
        schedule_flush(c);
    return rc;
}

int kurer_conn_send(kurer_conn *c, const uint8_t *data, size_t n)
{
    uint8_t *p;
    if (c->closing || c->close_after_flush || c->state != ST_OPEN)
        return KURER_ESTATE;
    if (n + KURER_NOISE_TAGLEN > c->lim.max_record)
        return KURER_ELIMIT;
    size_t rec = KURER_NET_RECORD_HDR + n + KURER_NOISE_TAGLEN;
    if (queued(c) + rec > out_max_now(c))
        return KURER_ELIMIT;
    if (c->pending.cap == 0 && rec < OUT_FIRST) {
        /* first record since the buffer was released: one allocation for a typical batch */
        int r0 = kurer_buf_reserve(&c->pending, OUT_FIRST, &p);
        if (r0 != 0)
            return r0;
        c->pending.len = 0;
    }
    int rc = kurer_buf_reserve(&c->pending, rec, &p);
    if (rc != 0)
        return rc;
    p[0] = (uint8_t)((n + KURER_NOISE_TAGLEN) >> 8);
    p[1] = (uint8_t)(n + KURER_NOISE_TAGLEN);
    if (n > 0)
        memcpy(p + 2, data, n);
    rc = kurer_noise_encrypt_inplace(&c->tx, NULL, 0, p + 2, n, n + KURER_NOISE_TAGLEN);
    if (rc != 0) {
        c->pending.len -= rec;
        return rc;
    }
    if (!c->congested && queued(c) >= out_cap_now(c)) {
        c->congested = 1;
        update_reading(c);
    }
    schedule_flush(c);
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    kurer_conn *c = h->data;
    size_t room = c->in_max - c->in_len;
    (void)suggested;
    *buf = uv_buf_init((char *)rbuf, (unsigned)(room < RBUF_SIZE ? room : RBUF_SIZE));
}

static size_t process_records(kurer_conn *c, uint8_t *data, size_t len);

/* The size a buffer holding these unprocessed bytes will need: the whole first record. */
static size_t record_hint(const uint8_t *p, size_t n)
{
    if (n < KURER_NET_RECORD_HDR)
        return KURER_NET_RECORD_HDR + 256;
    size_t rec = KURER_NET_RECORD_HDR + ((size_t)p[0] << 8 | p[1]);
    return rec > n ? rec : n;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    kurer_conn *c = s->data;
    (void)buf;
    if (c->closing)
        return;
    if (nread < 0) {
        kurer_conn_close(c, KURER_ECLOSED);
        return;
    }
    if (nread == 0)
        return;
    size_t n = (size_t)nread;
    c->last_rx_ms = kurer_time_mono_ms();
    c->idle_notified = 0;
    if (c->in_len > 0) {
        /* a partial record is waiting: complete it in the connection's buffer */
        int rc = in_append(c, rbuf, n, record_hint(c->in, c->in_len));
        kurer_wipe(rbuf, n);
        if (rc != 0) {
            kurer_conn_close(c, rc);
            return;
        }
        process_input(c);
        return;
    }
    size_t used = c->processing ? 0 : process_records(c, rbuf, n);
    if (!c->closing && used < n) {
        int rc = in_append(c, rbuf + used, n - used, record_hint(rbuf + used, n - used));
        if (rc != 0)
            kurer_conn_close(c, rc);
    }
    kurer_wipe(rbuf, n);
}

static void update_reading(kurer_conn *c)
{
    int want = !c->closing && !c->close_after_flush && !c->congested &&
               (c->state == ST_HS_WAIT || c->state == ST_OPEN);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
        /* bytes may already be buffered from before the pause */
        if (c->in_len > 0 && !c->processing)
            process_input(c);
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static int finish_handshake(kurer_conn *c)
{
    int rc = kurer_noise_hs_split(c->hs, &c->tx, &c->rx);
    if (rc != 0)
        return rc;
    const uint8_t *rs = kurer_noise_hs_remote_static(c->hs);
    if (rs != NULL) {
        memcpy(c->remote_static, rs, 32);
        c->have_remote_static = 1;
    }
    kurer_noise_hs_free(c->hs);
    c->hs = NULL;
    c->state = ST_OPEN;
    if (c->initiator)
        authenticate(c); /* the responder's message 2 decrypted: it holds the relay key */
    return 0;
}

/* Responder: the first message. Tries IK, then NK if allowed. */
static int handle_hs1(kurer_conn *c, const uint8_t *rec, size_t n)
{
    kurer_buf payload;
    kurer_buf_init_secret(&payload, KURER_NOISE_MAX_MSG);
    const uint8_t *prologue = (const uint8_t *)KURER_NET_PROLOGUE;
    size_t plen = strlen(KURER_NET_PROLOGUE);
    int rc = kurer_noise_hs_new_with_public(&c->hs, KURER_NOISE_IK, 0, prologue, plen, c->key->sk,
                                            c->key->pk, NULL);
    if (rc == 0)
        rc = kurer_noise_hs_read_message(c->hs, rec, n, &payload);
    c->pattern = KURER_NOISE_IK;
    if (rc != 0 && c->allow_nk && (rc == KURER_EDECRYPT || rc == KURER_ETRUNC)) {
        kurer_noise_hs_free(c->hs);
        c->hs = NULL;
        rc = kurer_noise_hs_new_with_public(&c->hs, KURER_NOISE_NK, 0, prologue, plen, c->key->sk,
                                            c->key->pk, NULL);
        if (rc == 0)
            rc = kurer_noise_hs_read_message(c->hs, rec, n, &payload);
        c->pattern = KURER_NOISE_NK;
    }
    if (rc != 0) {
        kurer_buf_release(&payload);
        return rc;
    }
    const uint8_t *rs = kurer_noise_hs_remote_static(c->hs);
    if (rs != NULL) {
        memcpy(c->remote_static, rs, 32);
        c->have_remote_static = 1;
    }
    c->state = ST_HS_REPLY;
    update_reading(c);
    if (c->cbs.on_hs_request != NULL)
        c->cbs.on_hs_request(c, c->pattern, c->have_remote_static ? c->remote_static : NULL,
                             payload.data, payload.len);
    kurer_buf_release(&payload);
    return 0;
}

/* Initiator: the second message. */
static int handle_hs2(kurer_conn *c, const uint8_t *rec, size_t n)
{
    kurer_buf payload;
    kurer_buf_init_secret(&payload, KURER_NOISE_MAX_MSG);
    int rc = kurer_noise_hs_read_message(c->hs, rec, n, &payload);
    if (rc == 0)
        rc = finish_handshake(c);
    if (rc == 0 && c->cbs.on_established != NULL)
        c->cbs.on_established(c, payload.data, payload.len);
    kurer_buf_release(&payload);
    return rc;
}

/* Handles the complete records at the start of data (len bytes) while the connection may read;
 * returns the bytes used. On an error the connection is closed. */
static size_t process_records(kurer_conn *c, uint8_t *data, size_t len)
{
    kurer_reader r;
    const uint8_t *rec;
    size_t n;
    int rc = 0;
    c->processing = 1;
    kurer_reader_init(&r, data, len);
    while (!c->closing && !c->close_after_flush) {
        if (c->state != ST_HS_WAIT && c->state != ST_OPEN)
            break; /* waiting for the application's handshake reply */
        if (c->congested)
            break;
        rc = kurer_net_record_next(&r, record_max(c), &rec, &n);
        if (rc == KURER_ETRUNC) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        if (c->state == ST_HS_WAIT) {
            rc = c->initiator ? handle_hs2(c, rec, n) : handle_hs1(c, rec, n);
            if (rc != 0)
                break;
            continue;
        }
        /* The input buffer is ours: decrypt in place. */
        uint8_t *p = data + (rec - data);
        size_t ptlen;
        rc = kurer_noise_decrypt_inplace(&c->rx, NULL, 0, p, n, &ptlen);
        if (rc != 0)
            break;
        if (!c->initiator && !c->established_cb) {
            /* The first transport record decrypted: the peer holds the handshake's ephemeral
             * keys (so this is no replay of message 1) and, for IK, its static key. */
            c->established_cb = 1;
            if (c->pattern == KURER_NOISE_IK)
                authenticate(c);
            if (c->cbs.on_established != NULL)
                c->cbs.on_established(c, NULL, 0);
            if (c->closing || c->close_after_flush)
                break;
        }
        if (c->cbs.on_record != NULL)
            c->cbs.on_record(c, p, ptlen);
    }
    c->processing = 0;
    if (c->closing)
        return len;
    if (rc != 0) {
        kurer_conn_close(c, rc);
        return len;
    }
    return r.off;
}

/* Handles what is waiting in the connection's own buffer; frees it once empty. */
static void process_input(kurer_conn *c)
{
    if (c->in_len == 0)
        return;
    size_t used = process_records(c, c->in, c->in_len);
    if (c->closing)
        return;
    /* Keep the unread tail at the front. */
    if (used >= c->in_len) {
        in_release(c);
    } else if (used > 0) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
}

int kurer_conn_hs_reply(kurer_conn *c, int accept, const uint8_t *payload, size_t n, int err)
{
    if (c->closing || c->state != ST_HS_REPLY)
        return KURER_ESTATE;
    kurer_buf msg;
    kurer_buf_init(&msg, KURER_NOISE_MAX_MSG);
    int rc = kurer_noise_hs_write_message(c->hs, payload, n, &msg);
    if (rc == 0)
        rc = queue_record_raw(c, msg.data, msg.len);
    kurer_buf_release(&msg);
    if (rc != 0) {
        kurer_conn_close(c, rc);
        return 0;
    }
    if (!accept) {
        kurer_noise_hs_free(c->hs);
        c->hs = NULL;
        c->state = ST_OPEN; /* nothing more is read: close_after_flush stops reading */
        kurer_conn_close_after_flush(c, err != 0 ? err : KURER_EPERM);
        return 0;
    }
    rc = finish_handshake(c);
    if (rc != 0) {
        kurer_conn_close(c, rc);
        return 0;
    }
    /* on_established follows the peer's first transport record (see kurer/net.h). */
    if (!c->closing)
        update_reading(c);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    kurer_conn *c = t->data;
    uint64_t now = kurer_time_mono_ms();
    if (c->closing)
        return;
    if (c->close_after_flush) {
        if (now >= c->close_deadline_ms)
            kurer_conn_close(c, c->close_err);
        return;
    }
    if (c->state != ST_OPEN || !c->authenticated) {
        if (now - c->started_ms >= c->lim.handshake_ms)
            kurer_conn_close(c, KURER_ETIMEOUT);
        return;
    }
    if (c->lim.idle_ms == 0)
        return;
    uint64_t quiet = now - c->last_rx_ms;
    if (quiet >= c->lim.idle_ms) {
        kurer_conn_close(c, KURER_ETIMEOUT);
    } else if (quiet >= c->lim.idle_ms / 2 && !c->idle_notified) {
        c->idle_notified = 1;
        if (c->cbs.on_idle != NULL)
            c->cbs.on_idle(c);
    }
}

void kurer_conn_set_idle(kurer_conn *c, uint64_t idle_ms)
{
    if (c == NULL)
        return;
    c->lim.idle_ms = idle_ms;
    c->idle_notified = 0; /* (the timer ticks at most every second whatever the deadline) */
}

static int conn_new(kurer_conn **out, uv_loop_t *loop, const kurer_net_limits *lim,
                    const kurer_conn_cbs *cbs, void *data)
{
    *out = NULL;
    kurer_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return KURER_ENOMEM;
    c->lim = lim != NULL ? *lim : kurer_net_limits_default();
    if (c->lim.max_record == 0 || c->lim.max_record > KURER_NET_RECORD_MAX)
        c->lim.max_record = KURER_NET_RECORD_MAX;
    if (c->lim.preauth_record == 0 || c->lim.preauth_record > c->lim.max_record)
        c->lim.preauth_record = c->lim.max_record;
    if (c->lim.out_max < c->lim.out_cap)
        c->lim.out_max = c->lim.out_cap;
    c->cbs = *cbs;
    c->data = data;
    c->loop = loop;
    c->in_max = in_max_for(c->lim.preauth_record);
    kurer_buf_init(&c->pending, c->lim.out_max + KURER_NET_RECORD_HDR + KURER_NET_RECORD_MAX);
    kurer_buf_init(&c->inflight, c->lim.out_max + KURER_NET_RECORD_HDR + KURER_NET_RECORD_MAX);
    c->started_ms = c->last_rx_ms = kurer_time_mono_ms();
    if (uv_tcp_init(loop, &c->tcp) != 0) {
        free(c);
        return KURER_EIO;
    }
    uv_timer_init(loop, &c->timer);
    uv_idle_init(loop, &c->idle);
    c->tcp.data = c->timer.data = c->idle.data = c;
    uint64_t tick = c->lim.handshake_ms;
    if (c->lim.idle_ms != 0 && c->lim.idle_ms / 2 < tick)
        tick = c->lim.idle_ms / 2;
    tick /= 4;
    if (tick < 20)
        tick = 20;
    if (tick > 1000)
        tick = 1000;
    uv_timer_start(&c->timer, on_timer, tick, tick);
    *out = c;
    return 0;
}

/* Frees a connection whose handles were initialised but never used, without callbacks. */
static void conn_abort(kurer_conn *c)
{
    c->cbs.on_close = NULL;
    kurer_conn_close(c, 0);
}

int kurer_conn_accept_from(kurer_conn **out, uv_stream_t *server, const kurer_net_limits *lim,
                           const kurer_conn_cbs *cbs, const kurer_net_static_key *key, int allow_nk,
                           void *data)
{
    kurer_conn *c;
    if (key == NULL || key->sk == NULL)
        return KURER_EINVAL;
    int rc = conn_new(&c, server->loop, lim, cbs, data);
    if (rc != 0)
        return rc;
    c->key = key;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_abort(c);
        return KURER_EIO;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->allow_nk = allow_nk;
    c->state = ST_HS_WAIT;
    update_reading(c);
    *out = c;
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    kurer_conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        int err = kurer_net_uv_error(status);
        kurer_conn_close(c, err == KURER_ECLOSED ? KURER_EIO : err);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = ST_HS_WAIT;
    c->started_ms = c->last_rx_ms = kurer_time_mono_ms();
    schedule_flush(c); /* the first handshake message is queued already */
    update_reading(c);
}

int kurer_conn_connect(kurer_conn **out, uv_loop_t *loop, const struct sockaddr *addr,
                       const kurer_net_limits *lim, const kurer_conn_cbs *cbs,
                       kurer_noise_pattern pattern, const uint8_t *static_sk,
                       const uint8_t remote_pk[32], const uint8_t *payload, size_t n, void *data)
{
    kurer_conn *c;
    *out = NULL;
    if (remote_pk == NULL || (pattern == KURER_NOISE_IK && static_sk == NULL))
        return KURER_EINVAL;
    int rc = conn_new(&c, loop, lim, cbs, data);
    if (rc != 0)
        return rc;
    c->initiator = 1;
    c->pattern = pattern;
    memcpy(c->remote_static, remote_pk, 32);
    c->have_remote_static = 1;
    kurer_buf msg;
    kurer_buf_init(&msg, KURER_NOISE_MAX_MSG);
    rc = kurer_noise_hs_new(&c->hs, pattern, 1, (const uint8_t *)KURER_NET_PROLOGUE,
                            strlen(KURER_NET_PROLOGUE),
                            pattern == KURER_NOISE_IK ? static_sk : NULL, remote_pk);
    if (rc == 0)
        rc = kurer_noise_hs_write_message(c->hs, payload, n, &msg);
    if (rc == 0)
        rc = n + 128 > c->lim.max_record ? KURER_ELIMIT
                                         : kurer_buf_put_lv16(&c->pending, msg.data, msg.len);
    kurer_buf_release(&msg);
    if (rc == 0) {
        c->connect_req.data = c;
        rc = uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connect) == 0 ? 0 : KURER_EIO;
    }
    if (rc != 0) {
        conn_abort(c);
        return rc;
    }
    *out = c;
    return 0;
}

size_t kurer_conn_queued(const kurer_conn *c)
{
    return queued(c);
}

int kurer_conn_congested(const kurer_conn *c)
{
    return c->congested;
}

int kurer_conn_established(const kurer_conn *c)
{
    return c->state == ST_OPEN && !c->closing && !c->close_after_flush;
}

int kurer_conn_closing(const kurer_conn *c)
{
    return c->closing || c->close_after_flush;
}

const uint8_t *kurer_conn_remote_static(const kurer_conn *c)
{
    return c->have_remote_static ? c->remote_static : NULL;
}

kurer_noise_pattern kurer_conn_pattern(const kurer_conn *c)
{
    return c->pattern;
}

void *kurer_conn_data(const kurer_conn *c)
{
    return c->data;
}

void kurer_conn_set_data(kurer_conn *c, void *data)
{
    c->data = data;
}

uv_loop_t *kurer_conn_loop(const kurer_conn *c)
{
    return c->loop;
}

int kurer_conn_peer_addr(const kurer_conn *c, struct sockaddr_storage *out)
{
    int len = sizeof(*out);
    memset(out, 0, sizeof(*out));
    return uv_tcp_getpeername(&c->tcp, (struct sockaddr *)out, &len) == 0 ? 0 : KURER_EIO;
}

void kurer_conn_peer(const kurer_conn *c, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[INET6_ADDRSTRLEN];
    snprintf(out, outlen, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, host, sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    }
}

int kurer_net_parse_addr(const char *s, struct sockaddr_storage *addr)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon;
    uint64_t port;
    memset(addr, 0, sizeof(*addr));
    if (s == NULL)
        return KURER_EINVAL;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
            return KURER_EINVAL;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
            return KURER_EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    if (kurer_parse_u64(colon + 1, 65535, &port) != 0)
        return KURER_EINVAL;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) == 0)
        return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) == 0)
        return 0;
    return KURER_EINVAL;
}
