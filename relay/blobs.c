/* Blobs (docs/protocol.md 3.8): sealed attachments uploaded in chunks by authenticated devices,
 * resumable (what the store has committed is the offset a client resumes from, also after a
 * crash of the relay), bounded in size and per device, downloadable by range by any
 * authenticated device that knows the id, and deleted by a periodic sweep once expired. The
 * relay never sees what a blob holds: it is sealed by its sender (docs/protocol.md 4.6). */
#include "relay_internal.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"

typedef struct blob_req {
    rconn *rc;
    uint64_t request_id;
    uint64_t size;   /* START with an id: the size the client declares */
    int64_t expires; /* FINISH: the expiry asked for */
} blob_req;

/* The largest chunk a record of max_record bytes carries with the rest of its frame. */
static uint32_t chunk_max(const relay *r)
{
    uint64_t room = r->cfg.max_record > 512 ? r->cfg.max_record - 512 : 1;
    return room < KURER_BLOB_CHUNK_MAX ? (uint32_t)room : KURER_BLOB_CHUNK_MAX;
}

static void refuse(rconn *rc, uint64_t request_id, int err)
{
    relay *r = rc->r;
    if (err == KURER_ELIMIT)
        r->blob_refused[0]++;
    else if (err == KURER_EQUOTA)
        r->blob_refused[1]++;
    else if (err == KURER_ESTATE)
        r->blob_refused[2]++;
    kurer__send_error(rc, request_id, err, 0);
}

static void send_state(rconn *rc, uint64_t request_id, const uint8_t *id,
                       const kurer_store_blob_res *res)
{
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = request_id;
    f.body = KURER_SERVER_BLOB_STATE;
    memcpy(f.u.blob_state.blob_id, id, KURER_BLOB_ID_LEN);
    f.u.blob_state.size = res->size;
    f.u.blob_state.offset = res->complete ? res->size : res->received;
    f.u.blob_state.chunk_max = chunk_max(rc->r);
    int err = kurer__send_frame(rc, &f);
    if (err != 0 && err != KURER_ECLOSED)
        kurer__send_error(rc, request_id, err, 0);
}

static void finish_req(blob_req *q)
{
    kurer__rconn_unref(q->rc);
    free(q);
}

/* ---- upload ------------------------------------------------------------------------------- */

typedef struct id_req {
    blob_req q;
    uint8_t id[KURER_BLOB_ID_LEN];
} id_req;

static void on_started(void *arg, int err, const kurer_store_blob_res *res)
{
    blob_req *q = arg;
    if (err == 0 && q->size != 0 && res->size != q->size)
        err = KURER_ESTATE; /* a resume must declare the size it started with */
    if (err != 0)
        refuse(q->rc, q->request_id, err);
    else
        send_state(q->rc, q->request_id, ((id_req *)(void *)q)->id, res);
    finish_req(q);
}

/* submit() for the operations whose answer names the blob. */
static void submit_id(rconn *rc, const kurer_client_frame *f, kurer_store_blob_req *req,
                      kurer_store_blob_cb done, uint64_t size, int64_t expires)
{
    id_req *q = malloc(sizeof(*q));
    if (q == NULL) {
        kurer__send_error(rc, f->request_id, KURER_ENOMEM, 0);
        return;
    }
    q->q.rc = rc;
    q->q.request_id = f->request_id;
    q->q.size = size;
    q->q.expires = expires;
    memcpy(q->id, req->id, KURER_BLOB_ID_LEN);
    req->owner = rc->addr;
    req->now = kurer_time_unix();
    rc->refs++;
    int err = kurer_store_blob_run(rc->r->store, req, done, q);
    if (err != 0) {
        rc->refs--;
        free(q);
        kurer__send_error(rc, f->request_id, err, 0);
    }
}

void kurer__handle_blob_start(rconn *rc, const kurer_client_frame *f)
{
    const kurer_blob_start *s = &f->u.blob_start;
    relay *r = rc->r;
    kurer_store_blob_req req;
    memset(&req, 0, sizeof(req));
    if (s->size > r->cfg.blob_max_size) {
        refuse(rc, f->request_id, KURER_ELIMIT);
        return;
    }
    if (s->has_id) {
        req.op = KURER_BLOB_STATE;
        memcpy(req.id, s->blob_id, KURER_BLOB_ID_LEN);
        submit_id(rc, f, &req, on_started, s->size, 0);
        return;
    }
    req.op = KURER_BLOB_CREATE;
    kurer_random(req.id, sizeof(req.id));
    req.size = s->size;
    req.quota = r->cfg.blob_quota;
    req.expires_at = kurer_time_unix() + (int64_t)r->cfg.blob_incomplete_expiry_s;
    submit_id(rc, f, &req, on_started, 0, 0);
}

static void on_appended(void *arg, int err, const kurer_store_blob_res *res)
{
    id_req *q = arg;
    if (err != 0) {
        refuse(q->q.rc, q->q.request_id, err);
    } else {
        relay *r = q->q.rc->r;
        uint64_t n = (uint64_t)q->q.size; /* the chunk's length */
        r->blob_upload_bytes += n;
        r->blob_bytes_stored += n;
        send_state(q->q.rc, q->q.request_id, q->id, res);
    }
    finish_req(&q->q);
}

void kurer__handle_blob_chunk(rconn *rc, const kurer_client_frame *f)
{
    const kurer_blob_chunk *c = &f->u.blob_chunk;
    kurer_store_blob_req req;
    if (c->len > chunk_max(rc->r)) {
        refuse(rc, f->request_id, KURER_ELIMIT);
        return;
    }
    memset(&req, 0, sizeof(req));
    req.op = KURER_BLOB_APPEND;
    memcpy(req.id, c->blob_id, KURER_BLOB_ID_LEN);
    req.offset = c->offset;
    req.data = c->data;
    req.len = c->len;
    submit_id(rc, f, &req, on_appended, c->len, 0);
}

static void on_finished(void *arg, int err, const kurer_store_blob_res *res)
{
    id_req *q = arg;
    rconn *rc = q->q.rc;
    if (err != 0) {
        refuse(rc, q->q.request_id, err);
        finish_req(&q->q);
        return;
    }
    if (res->expires_at == q->q.expires)
        rc->r->blob_uploads++; /* finished now (not a finish asked again) */
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = q->q.request_id;
    f.body = KURER_SERVER_BLOB_STORED;
    memcpy(f.u.blob_stored.blob_id, q->id, KURER_BLOB_ID_LEN);
    f.u.blob_stored.size = res->size;
    f.u.blob_stored.expires_at = res->expires_at;
    (void)kurer__send_frame(rc, &f);
    finish_req(&q->q);
}

void kurer__handle_blob_finish(rconn *rc, const kurer_client_frame *f)
{
    kurer_store_blob_req req;
    memset(&req, 0, sizeof(req));
    req.op = KURER_BLOB_FINISH;
    memcpy(req.id, f->u.blob_finish.blob_id, KURER_BLOB_ID_LEN);
    req.expires_at = kurer_time_unix() + (int64_t)rc->r->cfg.blob_expiry_s;
    submit_id(rc, f, &req, on_finished, 0, req.expires_at);
}

/* ---- download ----------------------------------------------------------------------------- */

typedef struct dl_req {
    id_req q;
    uint64_t offset;
} dl_req;

static void on_read(void *arg, int err, const kurer_store_blob_res *res)
{
    dl_req *q = arg;
    rconn *rc = q->q.q.rc;
    if (err != 0) {
        kurer__send_error(rc, q->q.q.request_id, err, 0);
    } else {
        kurer_server_frame f;
        memset(&f, 0, sizeof(f));
        f.request_id = q->q.q.request_id;
        f.body = KURER_SERVER_BLOB_DATA;
        memcpy(f.u.blob_data.blob_id, q->q.id, KURER_BLOB_ID_LEN);
        f.u.blob_data.size = res->size;
        f.u.blob_data.offset = q->offset;
        f.u.blob_data.data = res->data;
        f.u.blob_data.len = res->len;
        if ((err = kurer__send_frame(rc, &f)) == 0)
            rc->r->blob_download_bytes += res->len;
        else if (err != KURER_ECLOSED)
            kurer__send_error(rc, q->q.q.request_id, err, 0);
    }
    finish_req(&q->q.q);
}

void kurer__handle_blob_download(rconn *rc, const kurer_client_frame *f)
{
    const kurer_blob_download *d = &f->u.blob_download;
    uint32_t max = chunk_max(rc->r);
    dl_req *q = malloc(sizeof(*q));
    kurer_store_blob_req req;
    if (q == NULL) {
        kurer__send_error(rc, f->request_id, KURER_ENOMEM, 0);
        return;
    }
    memset(&req, 0, sizeof(req));
    req.op = KURER_BLOB_READ;
    memcpy(req.id, d->blob_id, KURER_BLOB_ID_LEN);
    req.offset = d->offset;
    req.length = d->length > max ? max : d->length;
    req.now = kurer_time_unix();
    q->q.q.rc = rc;
    q->q.q.request_id = f->request_id;
    memcpy(q->q.id, d->blob_id, KURER_BLOB_ID_LEN);
    q->offset = d->offset;
    rc->refs++;
    int err = kurer_store_blob_run(rc->r->store, &req, on_read, q);
    if (err != 0) {
        rc->refs--;
        free(q);
        kurer__send_error(rc, f->request_id, err, 0);
    }
}

/* ---- the sweep ---------------------------------------------------------------------------- */

static void on_swept(void *arg, int err, const kurer_store_blob_res *res)
{
    relay *r = arg;
    r->blob_sweeping = 0;
    if (err != 0)
        return; /* logged by the store; the next sweep tries again */
    r->blobs_expired += res->swept;
    r->blob_expired_bytes += res->swept_bytes;
    r->blob_bytes_stored = res->live_bytes;
    if (res->swept > 0)
        kurer_log(KURER_LOG_INFO, "relay", "blobs_expired",
                  (kurer_log_field[]){KURER_LOG_INT("blobs", res->swept),
                                      KURER_LOG_INT("bytes", res->swept_bytes)},
                  2);
}

static void on_sweep_timer(uv_timer_t *t)
{
    relay *r = t->data;
    kurer_store_blob_req req;
    if (r->blob_sweeping || r->store == NULL || r->stopping)
        return;
    memset(&req, 0, sizeof(req));
    req.op = KURER_BLOB_SWEEP;
    req.now = kurer_time_unix();
    if (kurer_store_blob_run(r->store, &req, on_swept, r) == 0)
        r->blob_sweeping = 1;
}

void kurer__blobs_start(relay *r)
{
    uv_timer_init(r->loop, &r->blob_sweep);
    r->blob_sweep.data = r;
    r->have_blob_sweep = 1;
    /* at once (what expired while the relay was down, and the bytes stored), then periodically */
    uv_timer_start(&r->blob_sweep, on_sweep_timer, 0, r->cfg.blob_sweep_ms);
}

void kurer__blobs_stop(relay *r)
{
    if (r->have_blob_sweep)
        uv_close((uv_handle_t *)&r->blob_sweep, NULL);
    r->have_blob_sweep = 0;
}

size_t kurer__blob_metrics(relay *r, char *s, size_t cap, size_t len)
{
    if (len >= cap)
        return len;
    len += (size_t)snprintf(
        s + len, cap - len,
        "# HELP kurer_blob_uploads_total Blob uploads finished.\n"
        "# TYPE kurer_blob_uploads_total counter\nkurer_blob_uploads_total %llu\n"
        "# HELP kurer_blob_upload_bytes_total Blob bytes stored from upload chunks.\n"
        "# TYPE kurer_blob_upload_bytes_total counter\nkurer_blob_upload_bytes_total %llu\n"
        "# HELP kurer_blob_download_bytes_total Blob bytes sent in downloads.\n"
        "# TYPE kurer_blob_download_bytes_total counter\nkurer_blob_download_bytes_total %llu\n"
        "# HELP kurer_blob_refusals_total Blob uploads and chunks refused, by reason.\n"
        "# TYPE kurer_blob_refusals_total counter\n"
        "kurer_blob_refusals_total{reason=\"too_large\"} %llu\n"
        "kurer_blob_refusals_total{reason=\"quota\"} %llu\n"
        "kurer_blob_refusals_total{reason=\"bad_offset\"} %llu\n"
        "# HELP kurer_blobs_expired_total Blobs (and unfinished uploads) deleted by the sweep.\n"
        "# TYPE kurer_blobs_expired_total counter\nkurer_blobs_expired_total %llu\n"
        "# HELP kurer_blob_expired_bytes_total Bytes of the blobs the sweep deleted.\n"
        "# TYPE kurer_blob_expired_bytes_total counter\nkurer_blob_expired_bytes_total %llu\n"
        "# HELP kurer_blob_bytes_stored Blob bytes held (as of the last sweep, plus chunks "
        "since).\n# TYPE kurer_blob_bytes_stored gauge\nkurer_blob_bytes_stored %llu\n",
        (unsigned long long)r->blob_uploads, (unsigned long long)r->blob_upload_bytes,
        (unsigned long long)r->blob_download_bytes, (unsigned long long)r->blob_refused[0],
        (unsigned long long)r->blob_refused[1], (unsigned long long)r->blob_refused[2],
        (unsigned long long)r->blobs_expired, (unsigned long long)r->blob_expired_bytes,
        (unsigned long long)r->blob_bytes_stored);
    return len;
}
