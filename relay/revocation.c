/* Revocation lists: the bytes of every list in force (index and chunks served from
 * them), uploads (whole or chunked, bounded), acceptance, pushes, and disconnecting what a list
 * revokes; --crl files and SIGHUP. */
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

static int held_find(const relay *r, const uint8_t *key_id, size_t *pos)
{
    size_t lo = 0, hi = r->n_held;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(r->held[mid].key_id, key_id, KURER_KEY_ID_LEN);
        if (c == 0) {
            *pos = mid;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return 0;
}

/* Keeps a copy of a list the trust store just took (the newest of its issuer). */
static int held_put(relay *r, const uint8_t *key_id, uint64_t version, const uint8_t *data,
                    size_t len)
{
    size_t pos;
    uint8_t *copy = malloc(len);
    if (copy == NULL)
        return KURER_ENOMEM;
    memcpy(copy, data, len);
    if (!held_find(r, key_id, &pos)) {
        if (r->n_held == r->cap_held) {
            size_t cap = r->cap_held ? r->cap_held * 2 : 8;
            held_list *nh = realloc(r->held, cap * sizeof(*nh));
            if (nh == NULL) {
                free(copy);
                return KURER_ENOMEM;
            }
            r->held = nh;
            r->cap_held = cap;
        }
        memmove(&r->held[pos + 1], &r->held[pos], (r->n_held - pos) * sizeof(*r->held));
        r->n_held++;
        memcpy(r->held[pos].key_id, key_id, KURER_KEY_ID_LEN);
        r->held[pos].data = NULL;
    }
    free(r->held[pos].data);
    r->held[pos].stored = 0;
    r->held[pos].version = version;
    r->held[pos].data = copy;
    r->held[pos].len = len;
    return 0;
}

void kurer__held_free(relay *r)
{
    for (size_t i = 0; i < r->n_held; i++)
        free(r->held[i].data);
    free(r->held);
    r->held = NULL;
    r->n_held = r->cap_held = 0;
}

static void info_of(const held_list *h, kurer_revocation_info *out)
{
    memcpy(out->issuer_key_id, h->key_id, KURER_KEY_ID_LEN);
    out->version = h->version;
    out->size = (uint32_t)h->len;
}

/* Tells every connected device that a newer list is held (clients enforce lists too, and
 * fetch it chunk by chunk). */
static void push_crl(relay *r, const uint8_t issuer_key_id[KURER_KEY_ID_LEN])
{
    size_t pos;
    kurer_revocation_info info;
    if (!held_find(r, issuer_key_id, &pos))
        return;
    info_of(&r->held[pos], &info);
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.body = KURER_SERVER_REVOCATION_INDEX;
    f.u.revocation_index.lists = &info;
    f.u.revocation_index.n = 1;
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        if (rc->authed && rc->c != NULL && !kurer_conn_closing(rc->c))
            (void)kurer__send_frame(rc, &f);
}

/* An NK session does one upload: after its answer it is closed. */
static void nk_upload_done(rconn *rc)
{
    if (rc->nk && rc->c != NULL && !kurer_conn_closing(rc->c)) {
        rc->close_counted = 1;
        kurer_conn_close_after_flush(rc->c, 0);
    }
}

/* A list's store write: which list, and the request to answer once it is committed (or NULL). */
typedef struct crl_store_ctx {
    relay *r;
    uint8_t key_id[KURER_KEY_ID_LEN];
    uint64_t version;
    req_ctx2 *q;
} crl_store_ctx;

static void on_crl_stored(void *arg, int err)
{
    crl_store_ctx *x = arg;
    req_ctx2 *q = x->q;
    size_t pos;
    if (err == 0 && held_find(x->r, x->key_id, &pos) && x->r->held[pos].version == x->version)
        x->r->held[pos].stored = 1;
    if (err == 0) /* committed: the other nodes may read it now */
        kurer__cluster_list_stored(x->r, x->key_id, x->version);
    if (err != 0)
        kurer_log(KURER_LOG_WARN, "relay", "crl_store_failed",
                  (kurer_log_field[]){KURER_LOG_STR("error", kurer_err_name(err))}, 1);
    free(x);
    if (q == NULL)
        return;
    if (err != 0)
        kurer__send_error(q->rc, q->request_id, err, 0);
    else
        kurer__send_ok(q->rc, q->request_id);
    nk_upload_done(q->rc);
    kurer__rconn_unref(q->rc);
    free(q);
}

/* Submits crl (its bytes) to the store; q (may be NULL) is answered after the commit. */
static int store_crl(relay *r, const kurer_crl *crl, const uint8_t *data, size_t len, req_ctx2 *q)
{
    crl_store_ctx *x = malloc(sizeof(*x));
    if (x == NULL)
        return KURER_ENOMEM;
    x->r = r;
    memcpy(x->key_id, crl->issuer_key_id, KURER_KEY_ID_LEN);
    x->version = crl->version;
    x->q = q;
    int err = kurer_store_put_crl(r->store, crl->issuer_key_id, crl->version, data, len,
                                  on_crl_stored, x);
    if (err != 0)
        free(x);
    return err;
}

/* A list in force but not stored (its write failed): the same list uploaded again is stored
 * now instead of refused as not newer, so that a restart does not forget a revocation. */
static int restore_crl(relay *r, const uint8_t *data, size_t len, req_ctx2 *q)
{
    kurer_crl crl;
    size_t pos;
    int err = kurer_crl_decode(data, len, &crl);
    if (err != 0)
        return err;
    if (!held_find(r, crl.issuer_key_id, &pos) || r->held[pos].stored ||
        r->held[pos].version != crl.version)
        err = KURER_ESTALE;
    else
        err = store_crl(r, &crl, data, len, q);
    kurer_crl_release(&crl);
    return err;
}

/* A verified SignedRevocationList (bytes) was accepted into r->trust: store it durably, then
 * apply it (disconnect, push). With q, the requester gets Ok after the commit. */
static int accept_crl(relay *r, const uint8_t *data, size_t len, uint64_t version, req_ctx2 *q)
{
    kurer_crl crl;
    int err = kurer_crl_decode(data, len, &crl);
    if (err != 0)
        return err;
    r->crl_accepted++;
    {
        kurer_log_field f_[] = {KURER_LOG_STR("issuer", crl.issuer),
                                KURER_LOG_INT("version", version),
                                KURER_LOG_STR("source", q != NULL ? "upload" : "file")};
        kurer_log(KURER_LOG_INFO, "relay", "crl_loaded", f_, 3);
        kurer__audit(r, "revocation_applied", f_, 3);
    }
    err = held_put(r, crl.issuer_key_id, version, data, len);
    if (err == 0)
        err = store_crl(r, &crl, data, len, q);
    kurer__disconnect_revoked(r);
    push_crl(r, crl.issuer_key_id);
    kurer_crl_release(&crl);
    return err;
}

/* A whole list arrived (in one frame, or reassembled from chunks): verify, keep, store. Every
 * outcome answers request_id once. */
static void revocation_received(rconn *rc, uint64_t request_id, const uint8_t *data, size_t len)
{
    relay *r = rc->r;
    uint64_t version = 0;
    int err = kurer_trust_add_crl(r->trust, data, len, &version);
    if (err == KURER_ESTALE) {
        req_ctx2 *q = malloc(sizeof(*q));
        if (q != NULL) {
            q->rc = rc;
            q->request_id = request_id;
            rc->refs++;
            if (restore_crl(r, data, len, q) == 0)
                return; /* answered after the commit */
            kurer__rconn_unref(rc);
            free(q);
        }
    }
    if (err != 0) {
        kurer_log(KURER_LOG_INFO, "relay", "crl_refused",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(err)),
                                      KURER_LOG_STR("via", rc->nk ? "nk" : "device")},
                  2);
        kurer__send_error(rc, request_id, err, 0);
        nk_upload_done(rc);
        return;
    }
    req_ctx2 *q = malloc(sizeof(*q));
    if (q != NULL) {
        q->rc = rc;
        q->request_id = request_id;
        rc->refs++;
    }
    err = accept_crl(r, data, len, version, q);
    if (err != 0) {
        /* In force in memory, but not stored: say so. */
        if (q != NULL) {
            kurer__rconn_unref(rc);
            free(q);
        }
        kurer__send_error(rc, request_id, err, 0);
        nk_upload_done(rc);
    } else if (q == NULL) {
        kurer__send_error(rc, request_id, KURER_ENOMEM, 0);
        nk_upload_done(rc);
    }
}

void kurer__handle_revocation(rconn *rc, const kurer_client_frame *f)
{
    kurer_buf b;
    /* The decoded list keeps tbs as received: re-encoding gives the signed bytes back. */
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    int err = kurer_crl_encode(&f->u.revocation, &b);
    if (err != 0)
        kurer__send_error(rc, f->request_id, err, 0);
    else
        revocation_received(rc, f->request_id, b.data, b.len);
    kurer_buf_release(&b);
}

/* Forgets a chunked upload in progress (its bytes leave upload_bytes). */
void kurer__upload_drop(rconn *rc)
{
    if (rc->up == NULL)
        return;
    rc->r->upload_bytes -= rc->up_cap;
    if (rc->pa != NULL && rc->pa->uploads > 0)
        rc->pa->uploads--;
    kurer_wipe(rc->up, rc->up_cap);
    free(rc->up);
    rc->up = NULL;
    rc->up_len = rc->up_total = rc->up_cap = 0;
}

/* A chunk of a list too large for one record. The partial list is the one thing an
 * unauthenticated peer can make the relay hold beyond its records, so it is bounded on every
 * side: what the relay holds is what arrived (the buffer grows with the chunks, never to a
 * declared total up front), all uploads together stay under upload_buffer_max, one source
 * address has one upload in progress, and an upload must complete within handshake_timeout_ms
 * of its first chunk (an NK session ends then anyway; a device's upload is dropped). */
void kurer__handle_revocation_chunk(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    const kurer_revocation_chunk *c = &f->u.revocation_chunk;
    uint64_t now = kurer_time_mono_ms();
    if (c->offset == 0) {
        kurer__upload_drop(rc);
        if (rc->pa != NULL && rc->pa->uploads > 0) {
            kurer__send_error(rc, f->request_id, KURER_EBUSY, 0);
            nk_upload_done(rc);
            return;
        }
        rc->up_total = c->total;
        rc->up_started_ms = now;
        if (rc->pa != NULL)
            rc->pa->uploads++;
    } else if (rc->up_total == 0 || c->offset != rc->up_len || c->total != rc->up_total ||
               now - rc->up_started_ms > r->cfg.handshake_timeout_ms) {
        int late = rc->up_total != 0 && now - rc->up_started_ms > r->cfg.handshake_timeout_ms;
        kurer__upload_drop(rc);
        rc->up_total = 0;
        kurer__send_error(rc, f->request_id, late ? KURER_ETIMEOUT : KURER_EINVAL, 0);
        return;
    }
    /* Room for this chunk: the buffer doubles up to the list's total. */
    if (rc->up_len + c->len > rc->up_cap) {
        size_t cap = rc->up_cap ? rc->up_cap * 2 : 65536;
        while (cap < rc->up_len + c->len)
            cap *= 2;
        if (cap > rc->up_total)
            cap = rc->up_total;
        uint8_t *nb =
            r->upload_bytes + (cap - rc->up_cap) > r->cfg.upload_buffer_max ? NULL : malloc(cap);
        if (nb == NULL) {
            int busy = r->upload_bytes + (cap - rc->up_cap) > r->cfg.upload_buffer_max;
            if (rc->up == NULL && rc->pa != NULL && rc->pa->uploads > 0)
                rc->pa->uploads--; /* nothing held yet: kurer__upload_drop would not count it */
            kurer__upload_drop(rc);
            rc->up_total = 0;
            kurer__send_error(rc, f->request_id, busy ? KURER_EBUSY : KURER_ENOMEM, 0);
            nk_upload_done(rc); /* its one upload cannot be: try again later, anew */
            return;
        }
        if (rc->up_len > 0)
            memcpy(nb, rc->up, rc->up_len);
        if (rc->up != NULL) {
            kurer_wipe(rc->up, rc->up_cap);
            free(rc->up);
        }
        r->upload_bytes += cap - rc->up_cap;
        rc->up = nb;
        rc->up_cap = cap;
    }
    memcpy(rc->up + rc->up_len, c->data, c->len);
    rc->up_len += c->len;
    if (rc->up_len < rc->up_total) {
        kurer__send_ok(rc, f->request_id);
        return;
    }
    uint8_t *data = rc->up;
    size_t len = rc->up_len, cap = rc->up_cap;
    rc->up = NULL; /* revocation_received may close: the buffer is ours now */
    r->upload_bytes -= cap;
    if (rc->pa != NULL && rc->pa->uploads > 0)
        rc->pa->uploads--;
    rc->up_len = rc->up_total = rc->up_cap = 0;
    revocation_received(rc, f->request_id, data, len);
    free(data);
}

/* Drops chunked uploads of devices that did not complete within the deadline (from the sweep:
 * NK sessions end at their own deadline). */
void kurer__uploads_expire(relay *r)
{
    uint64_t now = kurer_time_mono_ms();
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        if (rc->up != NULL && now - rc->up_started_ms > r->cfg.handshake_timeout_ms) {
            kurer__upload_drop(rc);
            rc->up_total = 0;
        }
}

/* A page of the index: the lists held with issuer key id above `after`. */
void kurer__handle_revocation_fetch(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    size_t pos = 0;
    if (f->u.revocations.has_after && held_find(r, f->u.revocations.after, &pos))
        pos++;
    size_t n = r->n_held - pos;
    if (n > KURER_REVOCATION_INDEX_MAX)
        n = KURER_REVOCATION_INDEX_MAX;
    kurer_revocation_info *infos = calloc(n ? n : 1, sizeof(*infos));
    if (infos == NULL) {
        kurer__send_error(rc, f->request_id, KURER_ENOMEM, 0);
        return;
    }
    for (size_t i = 0; i < n; i++)
        info_of(&r->held[pos + i], &infos[i]);
    kurer_server_frame out;
    memset(&out, 0, sizeof(out));
    out.request_id = f->request_id;
    out.body = KURER_SERVER_REVOCATION_INDEX;
    out.u.revocation_index.lists = infos;
    out.u.revocation_index.n = n;
    out.u.revocation_index.more = pos + n < r->n_held;
    int err = kurer__send_frame(rc, &out);
    if (err != 0 && err != KURER_ECLOSED && rc->c != NULL && !kurer_conn_closing(rc->c))
        kurer__send_error(rc, f->request_id, err, 0);
    free(infos);
}

/* A chunk of one held list, of the version the index named. */
void kurer__handle_revocation_chunk_fetch(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    size_t pos;
    if (!held_find(r, f->u.revocation_chunk_fetch.issuer_key_id, &pos)) {
        kurer__send_error(rc, f->request_id, KURER_ENOTFOUND, 0);
        return;
    }
    const held_list *h = &r->held[pos];
    uint64_t want = f->u.revocation_chunk_fetch.version;
    uint32_t off = f->u.revocation_chunk_fetch.offset;
    if (want != 0 && want != h->version) {
        kurer__send_error(rc, f->request_id, KURER_ESTALE, 0); /* start that list again */
        return;
    }
    if (off >= h->len) {
        kurer__send_error(rc, f->request_id, KURER_EINVAL, 0);
        return;
    }
    size_t len = h->len - off;
    if (len > KURER_REVOCATION_CHUNK_MAX)
        len = KURER_REVOCATION_CHUNK_MAX;
    kurer_server_frame out;
    memset(&out, 0, sizeof(out));
    out.request_id = f->request_id;
    out.body = KURER_SERVER_REVOCATION_CHUNK;
    memcpy(out.u.revocation_chunk.issuer_key_id, h->key_id, KURER_KEY_ID_LEN);
    out.u.revocation_chunk.version = h->version;
    out.u.revocation_chunk.total = (uint32_t)h->len;
    out.u.revocation_chunk.offset = off;
    out.u.revocation_chunk.data = h->data + off;
    out.u.revocation_chunk.len = len;
    int err = kurer__send_frame(rc, &out);
    if (err != 0 && err != KURER_ECLOSED && rc->c != NULL && !kurer_conn_closing(rc->c))
        kurer__send_error(rc, f->request_id, err, 0);
}

void kurer__disconnect_revoked(relay *r)
{
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        if (rc->authed && rc->c != NULL && !kurer_conn_closing(rc->c) &&
            kurer_trust_chain_revoked(r->trust, &rc->v)) {
            {
                kurer_log_field f_[] = {KURER_LOG_STR("user", rc->addr.user),
                                        KURER_LOG_INT("device", rc->addr.device_id),
                                        KURER_LOG_STR("reason", "EREVOKED")};
                kurer_log(KURER_LOG_WARN, "relay", "revoked_disconnect", f_, 2);
                kurer__audit(r, "device_disconnected", f_, 3);
            }
            kurer__media_drop_device(r, &rc->addr);
            kurer__send_error(rc, 0, KURER_EREVOKED, 1);
        }
}

int kurer__load_crls(relay *r, int at_start)
{
    for (size_t i = 0; i < r->opts->n_crls; i++) {
        uint8_t *data;
        size_t len;
        uint64_t version;
        int err = kurer__read_input(r->opts->crl_files[i], KURER_CRL_BYTES_MAX, KURER_ARMOR_CRL,
                                    &data, &len);
        if (err == 0) {
            err = kurer_trust_add_crl(r->trust, data, len, &version);
            if (err == 0 && accept_crl(r, data, len, version, NULL) != 0)
                kurer_log(KURER_LOG_WARN, "relay", "crl_store_failed", NULL, 0);
            free(data);
        }
        if (err == KURER_ESTALE)
            continue;
        if (err != 0) {
            if (at_start) {
                fprintf(stderr, "kurer-relay: %s: %s\n", r->opts->crl_files[i],
                        kurer_strerror(err));
                return err;
            }
            kurer_log(KURER_LOG_WARN, "relay", "crl_reload_failed",
                      (kurer_log_field[]){KURER_LOG_STR("file", r->opts->crl_files[i]),
                                          KURER_LOG_STR("error", kurer_err_name(err))},
                      2);
            continue;
        }
    }
    return 0;
}

void kurer__on_crl_loaded(void *arg, const uint8_t *list, size_t len)
{
    relay *r = arg;
    uint64_t version;
    int err = kurer_trust_add_crl(r->trust, list, len, &version);
    if (err != 0 && err != KURER_ESTALE)
        kurer_log(KURER_LOG_WARN, "relay", "stored_crl_refused",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(err))}, 1);
    if (err != 0)
        return;
    kurer_crl crl;
    if (kurer_crl_decode(list, len, &crl) == 0) {
        size_t pos;
        if (held_put(r, crl.issuer_key_id, version, list, len) != 0)
            kurer_log(KURER_LOG_WARN, "relay", "crl_not_served", NULL, 0);
        else if (held_find(r, crl.issuer_key_id, &pos))
            r->held[pos].stored = 1; /* it came from the store */
        kurer_crl_release(&crl);
    }
    kurer_log(
        KURER_LOG_INFO, "relay", "crl_loaded",
        (kurer_log_field[]){KURER_LOG_INT("version", version), KURER_LOG_STR("source", "store")},
        2);
}

uint64_t kurer__crl_version(const relay *r, const uint8_t key_id[KURER_KEY_ID_LEN])
{
    size_t pos;
    return held_find(r, key_id, &pos) ? r->held[pos].version : 0;
}

/* Another node stored a list (its notification named it; cluster.c read it back): verified
 * and applied as an upload here would be (disconnect, push), without storing it again. */
void kurer__crl_from_store(relay *r, const uint8_t *list, size_t len)
{
    uint64_t version;
    kurer_crl crl;
    size_t pos;
    int err = kurer_trust_add_crl(r->trust, list, len, &version);
    if (err != 0) {
        if (err != KURER_ESTALE)
            kurer_log(KURER_LOG_WARN, "relay", "stored_crl_refused",
                      (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(err))}, 1);
        return;
    }
    if ((err = kurer_crl_decode(list, len, &crl)) != 0)
        return; /* the trust store decoded it: cannot happen */
    r->crl_accepted++;
    r->cluster_lists++;
    {
        kurer_log_field f_[] = {KURER_LOG_STR("issuer", crl.issuer),
                                KURER_LOG_INT("version", version), KURER_LOG_STR("source", "node")};
        kurer_log(KURER_LOG_INFO, "relay", "crl_loaded", f_, 3);
        kurer__audit(r, "revocation_applied", f_, 3);
    }
    if (held_put(r, crl.issuer_key_id, version, list, len) != 0)
        kurer_log(KURER_LOG_WARN, "relay", "crl_not_served", NULL, 0);
    else if (held_find(r, crl.issuer_key_id, &pos))
        r->held[pos].stored = 1;
    kurer__disconnect_revoked(r);
    push_crl(r, crl.issuer_key_id);
    kurer_crl_release(&crl);
}

/* Whether a list that covers v (its authority's or its root's) is past next_update + grace. */
static int chain_lists_stale(const relay *r, const kurer_verified *v, int64_t now)
{
    for (size_t i = 0; i < kurer_trust_crl_count(r->trust); i++) {
        const kurer_crl *c = kurer_trust_crl(r->trust, i);
        if ((memcmp(c->issuer_key_id, v->authority_key_id, KURER_KEY_ID_LEN) == 0 ||
             memcmp(c->issuer_key_id, v->root_key_id, KURER_KEY_ID_LEN) == 0) &&
            kurer_trust_crl_freshness(r->trust, c, now) == KURER_ECRLSTALE)
            return 1;
    }
    return 0;
}

void kurer__disconnect_stale(relay *r)
{
    int64_t now = kurer_time_unix();
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        if (rc->authed && rc->c != NULL && !kurer_conn_closing(rc->c) &&
            chain_lists_stale(r, &rc->v, now)) {
            {
                kurer_log_field f_[] = {KURER_LOG_STR("user", rc->addr.user),
                                        KURER_LOG_INT("device", rc->addr.device_id),
                                        KURER_LOG_STR("reason", "ECRLSTALE")};
                kurer_log(KURER_LOG_WARN, "relay", "stale_list_disconnect", f_, 2);
                kurer__audit(r, "device_disconnected", f_, 3);
            }
            kurer__send_error(rc, 0, KURER_ECRLSTALE, 1);
        }
}
