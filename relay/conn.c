/* Connections: admission (bounds on connections, pre-auth ones and per source address),
 * reference counts, frames and errors sent, per-device rate buckets, and the dispatch table of
 * frame kind -> handler (with whether an NK session may send it). */
#include "relay_internal.h"

#include <errno.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/signal.h"
#include "kurer/util.h"

/* The connection authenticated (or closed): it no longer counts as pre-auth. */
void kurer__preauth_done(rconn *rc)
{
    if (rc->preauth) {
        rc->preauth = 0;
        rc->r->n_preauth--;
        if (rc->pa != NULL)
            rc->pa->preauth--;
        rc->pa = NULL;
    }
}

void kurer__count_reject(relay *r, int err)
{
    int i = -err;
    if (i > 0 && i < NERR)
        r->rejects[i]++;
}

void kurer__rconn_unref(rconn *rc)
{
    if (--rc->refs == 0)
        free(rc);
}

static uint64_t bucket_rate(const relay *r, int which)
{
    switch (which) {
    case B_SEND:
        return r->cfg.send_rate;
    case B_FETCH:
        return r->cfg.fetch_rate;
    case B_LOOKUP:
        return r->cfg.lookup_rate;
    default:
        return r->cfg.ping_rate;
    }
}

void kurer__buckets_init(const relay *r, kurer__bucket *b)
{
    uint64_t now = kurer_time_mono_ms();
    for (int i = 0; i < N_BUCKETS; i++)
        kurer__bucket_init(&b[i], bucket_rate(r, i), now);
}

int kurer__send_frame(rconn *rc, const kurer_server_frame *f)
{
    kurer_buf b;
    if (rc->c == NULL || kurer_conn_closing(rc->c))
        return KURER_ECLOSED;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int err = kurer_server_frame_encode(f, &b);
    if (err != 0) {
        /* Too big or refused by our own encoder: the caller answers with an error instead. */
        kurer_buf_release(&b);
        return err;
    }
    if (b.len + KURER_NOISE_TAGLEN > rc->r->lim.max_record) {
        /* larger than a record (max_record below 65535): an answer the caller refuses with an
         * Error, not a peer that does not read */
        kurer_buf_release(&b);
        return KURER_ELIMIT;
    }
    err = kurer_conn_send(rc->c, b.data, b.len);
    kurer_buf_release(&b);
    if (err == KURER_ELIMIT) {
        /* the peer does not read what we send: drop it */
        kurer__count_reject(rc->r, KURER_ELIMIT);
        rc->close_counted = 1;
        kurer_conn_close(rc->c, KURER_ELIMIT);
    }
    return err;
}

void kurer__send_error(rconn *rc, uint64_t request_id, int code, int close)
{
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = request_id;
    f.body = KURER_SERVER_ERROR;
    f.u.error.code = code;
    f.u.error.message = kurer_strerror(code);
    kurer__count_reject(rc->r, code);
    (void)kurer__send_frame(rc, &f);
    if (close && rc->c != NULL) {
        rc->close_counted = 1;
        kurer_conn_close_after_flush(rc->c, code);
    }
}

/* Takes n tokens of the device's bucket (kept with its directory entry, so across
 * reconnects); 0 if it does not hold them. */
int kurer__rate_take(rconn *rc, int which, size_t n)
{
    return kurer__rate_take_at(rc, which, n, kurer_time_mono_ms());
}

int kurer__rate_take_at(rconn *rc, int which, size_t n, uint64_t now_ms)
{
    dir_entry *e = kurer__dir_find(rc->r, &rc->addr);
    kurer__bucket *b = e != NULL ? &e->buckets[which] : &rc->own[which];
    return kurer__bucket_take(b, bucket_rate(rc->r, which), n, now_ms);
}

/* Whether the SendResult for sc fits one frame. stale_bytes: the chain bytes its STALE_DEVICES
 * results carry. Only a result near the bound is encoded to find out. */
/* The largest answer a connection can take: a frame, within one record. */
size_t kurer__answer_max(const relay *r)
{
    size_t rec = r->lim.max_record - KURER_NOISE_TAGLEN;
    return rec < KURER_FRAME_MAX ? rec : KURER_FRAME_MAX;
}

void kurer__send_ok(rconn *rc, uint64_t request_id)
{
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = request_id;
    f.body = KURER_SERVER_OK;
    (void)kurer__send_frame(rc, &f);
}

static void handle_ping(rconn *rc, const kurer_client_frame *f)
{
    if (!kurer__rate_take(rc, B_PING, 1)) {
        rc->r->pings_rate_limited++;
        kurer__send_error(rc, f->request_id, KURER_ERATE, 0);
        return;
    }
    kurer_server_frame out;
    memset(&out, 0, sizeof(out));
    out.request_id = f->request_id;
    out.body = KURER_SERVER_PONG;
    out.u.pong.client_time = f->u.ping.client_time;
    out.u.pong.server_time = kurer_time_unix() * 1000;
    (void)kurer__send_frame(rc, &out);
}

/* Frame kind -> handler, and whether an unauthenticated NK session may send it. An NK peer has
 * no identity: it may hand in a revocation list, nothing else (reading lists is for devices:
 * answers of up to a record each are more than an unauthenticated peer may make the relay
 * hold). A new request is a new row here and a handler in the file of its responsibility. */
static const struct {
    kurer_client_body body;
    void (*handle)(rconn *rc, const kurer_client_frame *f);
    int nk;
} dispatch[] = {
    {KURER_CLIENT_SEND, kurer__handle_send, 0},
    {KURER_CLIENT_ACK, kurer__handle_ack, 0},
    {KURER_CLIENT_LOOKUP, kurer__handle_lookup, 0},
    {KURER_CLIENT_PREKEYS, kurer__handle_prekeys, 0},
    {KURER_CLIENT_FETCH_PREKEYS, kurer__handle_fetch_prekeys, 0},
    {KURER_CLIENT_PING, handle_ping, 0},
    {KURER_CLIENT_REVOCATION, kurer__handle_revocation, 1},
    {KURER_CLIENT_REVOCATIONS, kurer__handle_revocation_fetch, 0},
    {KURER_CLIENT_REVOCATION_CHUNK, kurer__handle_revocation_chunk, 1},
    {KURER_CLIENT_REVOCATION_CHUNK_FETCH, kurer__handle_revocation_chunk_fetch, 0},
    {KURER_CLIENT_MEDIA_ALLOCATE, kurer__handle_media_allocate, 0},
    {KURER_CLIENT_FANOUT, kurer__handle_fanout, 0},
    {KURER_CLIENT_BLOB_START, kurer__handle_blob_start, 0},
    {KURER_CLIENT_BLOB_CHUNK, kurer__handle_blob_chunk, 0},
    {KURER_CLIENT_BLOB_FINISH, kurer__handle_blob_finish, 0},
    {KURER_CLIENT_BLOB_DOWNLOAD, kurer__handle_blob_download, 0},
};

#define N_DISPATCH (sizeof(dispatch) / sizeof(dispatch[0]))

/* The row of body (the first, should there be several), or N_DISPATCH. */
static size_t dispatch_row(kurer_client_body body)
{
    size_t i = 0;
    while (i < N_DISPATCH && dispatch[i].body != body)
        i++;
    return i;
}

size_t kurer__dispatch_rows(kurer_client_body body)
{
    size_t k = 0;
    for (size_t i = 0; i < N_DISPATCH; i++)
        k += dispatch[i].body == body;
    return k;
}

int kurer__dispatch_check(kurer_client_body body, int nk)
{
    size_t i = dispatch_row(body);
    if (i == N_DISPATCH)
        return KURER_EUNSUPPORTED;
    if (nk && !dispatch[i].nk)
        return KURER_EPERM;
    return 0;
}

int kurer__dispatch_allowed(kurer_client_body body, int nk)
{
    return kurer__dispatch_check(body, nk) == 0;
}

static void conn_on_record(kurer_conn *c, uint8_t *data, size_t n)
{
    rconn *rc = kurer_conn_data(c);
    kurer_client_frame f;
    if (rc->enrol) {
        kurer__enrol_record(rc, data, n);
        return;
    }
    int err = kurer_client_frame_decode(data, n, &f);
    if (err != 0) {
        kurer__send_error(rc, 0, err, 1);
        return;
    }
    /* EUNSUPPORTED: decodes, but this relay has no handler for it (cannot happen while the
     * decoder and the table agree): refused, the connection stays. EPERM: not on an NK session,
     * which is closed. */
    err = kurer__dispatch_check(f.body, rc->nk);
    if (err != 0) {
        kurer__send_error(rc, f.request_id, err, err == KURER_EPERM);
    } else if (rc->authed && kurer_time_unix() > rc->v.not_after) {
        /* A chain that expired while connected: the timer closes it; a request that gets
         * here first is refused the same way. */
        rc->r->conns_expired++;
        kurer__send_error(rc, f.request_id, KURER_EEXPIRED, 1);
    } else {
        dispatch[dispatch_row(f.body)].handle(rc, &f);
    }
    kurer_client_frame_release(&f);
}

static void conn_on_drain(kurer_conn *c)
{
    rconn *rc = kurer_conn_data(c);
    if (rc->authed && rc->dirty)
        kurer__start_fetch(rc);
}

static void conn_on_close(kurer_conn *c, int err)
{
    rconn *rc = kurer_conn_data(c);
    relay *r = rc->r;
    if (err != 0 && err != KURER_ECLOSED && !rc->close_counted)
        kurer__count_reject(r, err);
    if (rc->authed)
        kurer_log(KURER_LOG_INFO, "relay", "device_disconnected",
                  (kurer_log_field[]){KURER_LOG_STR("user", rc->addr.user),
                                      KURER_LOG_INT("device", rc->addr.device_id),
                                      KURER_LOG_STR("reason", kurer_err_name(err))},
                  3);
    if (rc->accepted && !rc->authed)
        r->handshakes_unconfirmed++; /* message 2 went out; no record ever came back */
    if (rc->nk)
        r->n_nk--;
    rc->c = NULL;
    kurer__upload_drop(rc); /* before kurer__preauth_done: it counts against the source address */
    kurer__fanout_drop(rc);
    kurer__preauth_done(rc);
    free(rc->hs_chain);
    rc->hs_chain = NULL;
    if (rc->listed) {
        htab_remove(&r->online, &rc->onode);
        rc->listed = 0;
    }
    r->n_conns--;
    if (rc->prev != NULL)
        rc->prev->next = rc->next;
    else
        r->conns = rc->next;
    if (rc->next != NULL)
        rc->next->prev = rc->prev;
    kurer__rconn_unref(rc);
}

static const kurer_conn_cbs conn_cbs = {
    kurer__conn_on_hs, kurer__conn_on_established, conn_on_record, conn_on_drain, NULL,
    conn_on_close,
};

static void refused_closed(uv_handle_t *h)
{
    free(h);
}

/* Accepts the pending connection only to close it at once (libuv stops accepting until the
 * pending one is taken). */
static void refuse_connection(uv_stream_t *server)
{
    uv_tcp_t *t = malloc(sizeof(*t));
    if (t == NULL || uv_tcp_init(server->loop, t) != 0) {
        free(t);
        return;
    }
    (void)uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, refused_closed);
}

void kurer__on_connection(uv_stream_t *server, int status)
{
    relay *r = server->data;
    if (status < 0 || r->stopping)
        return;
    /* Bounds: open files (max_connections), and memory held by peers that have not
     * authenticated yet (each may hold up to two records of input). */
    if (r->n_conns >= r->max_conns) {
        r->refused_max_conns++;
        refuse_connection(server);
        return;
    }
    if (r->n_preauth >= r->cfg.max_handshakes) {
        r->refused_max_handshakes++;
        refuse_connection(server);
        return;
    }
    rconn *rc = calloc(1, sizeof(*rc));
    if (rc == NULL) {
        refuse_connection(server);
        return;
    }
    rc->r = r;
    rc->refs = 1;
    kurer__buckets_init(r, rc->own);
    if (kurer_conn_accept_from(&rc->c, server, &r->lim, &conn_cbs, &r->key, 1, rc) != 0) {
        free(rc);
        return;
    }
    r->n_conns++;
    r->n_preauth++;
    rc->preauth = 1;
    rc->next = r->conns;
    if (r->conns != NULL)
        r->conns->prev = rc;
    r->conns = rc;
    /* Pre-authentication connections per source address: one host cannot take every
     * handshake slot. An address the table cannot hold is refused too (fail closed). */
    struct sockaddr_storage ss;
    uint8_t ip[16];
    kurer__peer_addr *pa = NULL;
    if (kurer_conn_peer_addr(rc->c, &ss) == 0 && kurer__addr_key(&ss, ip) == 0)
        pa = kurer__addr_get(&r->addrs, ip, r->cfg.nk_rate, kurer_time_mono_ms());
    if (pa == NULL || pa->preauth >= r->cfg.max_preauth_per_address) {
        r->refused_per_address++;
        rc->close_counted = 1;
        kurer_conn_close(rc->c, KURER_ELIMIT);
        return;
    }
    /* A handshake costs DH work before anything can be refused: connections per second per
     * address are metered before a byte is read. */
    if (!kurer__bucket_take(&pa->hs, r->cfg.handshake_rate, 1, kurer_time_mono_ms())) {
        r->refused_handshake_rate++;
        rc->close_counted = 1;
        kurer_conn_close(rc->c, KURER_ERATE);
        return;
    }
    pa->preauth++;
    rc->pa = pa;
    r->connections++; /* accepted (one refused above counts only as refused) */
}
