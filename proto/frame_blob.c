/* The blob frames (docs/protocol.md 3.8): uploads in chunks, resumable, and downloads by range.
 * Reached from frame_fanout.c for every body frame.c, frame_media.c and it do not know. */
#include <string.h>

#include "frame_internal.h"

static int id_from_pb(const ProtobufCBinaryData *b, uint8_t *dst)
{
    return kurer__bytes_fixed(b, dst, KURER_BLOB_ID_LEN);
}

static int size_ok(uint64_t size)
{
    if (size == 0)
        return KURER_EMALFORMED;
    return size > KURER_BLOB_SIZE_MAX ? KURER_ELIMIT : 0;
}

/* 1..KURER_BLOB_CHUNK_MAX bytes at offset, inside what the protocol can name. */
static int chunk_ok(uint64_t offset, size_t len)
{
    if (len == 0)
        return KURER_EMALFORMED;
    if (len > KURER_BLOB_CHUNK_MAX || offset > KURER_BLOB_SIZE_MAX ||
        offset + len > KURER_BLOB_SIZE_MAX)
        return KURER_ELIMIT;
    return 0;
}

static int chunk_from_pb(const ProtobufCBinaryData *id, uint64_t offset,
                         const ProtobufCBinaryData *data, kurer_blob_chunk *out, kurer_arena *mem)
{
    int rc;
    if ((rc = id_from_pb(id, out->blob_id)) != 0 || (rc = chunk_ok(offset, data->len)) != 0)
        return rc;
    out->offset = offset;
    out->len = data->len;
    return kurer__arena_memdup(mem, data->data, data->len, &out->data);
}

int kurer__blob_client_from_pb(const Kurer__V1__ClientFrame *pb, kurer_client_frame *out)
{
    int rc;
    switch (pb->body_case) {
    case KURER__V1__CLIENT_FRAME__BODY_BLOB_START: {
        const Kurer__V1__BlobUploadStart *m = pb->blob_start;
        out->body = KURER_CLIENT_BLOB_START;
        if ((rc = size_ok(m->size)) != 0)
            return rc;
        out->u.blob_start.size = m->size;
        if (m->blob_id.len == 0)
            return 0;
        out->u.blob_start.has_id = 1;
        return id_from_pb(&m->blob_id, out->u.blob_start.blob_id);
    }
    case KURER__V1__CLIENT_FRAME__BODY_BLOB_CHUNK: {
        const Kurer__V1__BlobUploadChunk *m = pb->blob_chunk;
        out->body = KURER_CLIENT_BLOB_CHUNK;
        return chunk_from_pb(&m->blob_id, m->offset, &m->data, &out->u.blob_chunk, &out->mem);
    }
    case KURER__V1__CLIENT_FRAME__BODY_BLOB_FINISH:
        out->body = KURER_CLIENT_BLOB_FINISH;
        return id_from_pb(&pb->blob_finish->blob_id, out->u.blob_finish.blob_id);
    case KURER__V1__CLIENT_FRAME__BODY_BLOB_DOWNLOAD: {
        const Kurer__V1__BlobDownload *m = pb->blob_download;
        out->body = KURER_CLIENT_BLOB_DOWNLOAD;
        if (m->length == 0)
            return KURER_EMALFORMED;
        if (m->length > KURER_BLOB_CHUNK_MAX || m->offset > KURER_BLOB_SIZE_MAX)
            return KURER_ELIMIT;
        out->u.blob_download.offset = m->offset;
        out->u.blob_download.length = m->length;
        return id_from_pb(&m->blob_id, out->u.blob_download.blob_id);
    }
    default:
        return KURER_EMALFORMED; /* no body, or one newer than this version */
    }
}

/* Zeroed protobuf message memory from the arena, initialised with init. */
static int pb_new(kurer_arena *tmp, const void *init, size_t size, void **out)
{
    int rc = kurer__arena_calloc(tmp, 1, size, out);
    if (rc == 0)
        memcpy(*out, init, size);
    return rc;
}

static void id_to_pb(const uint8_t *id, ProtobufCBinaryData *b)
{
    b->data = (uint8_t *)id;
    b->len = KURER_BLOB_ID_LEN;
}

int kurer__blob_client_to_pb(const kurer_client_frame *f, Kurer__V1__ClientFrame *pb,
                             kurer_arena *tmp)
{
    void *p;
    int rc;
    switch (f->body) {
    case KURER_CLIENT_BLOB_START: {
        static const Kurer__V1__BlobUploadStart init = KURER__V1__BLOB_UPLOAD_START__INIT;
        if ((rc = pb_new(tmp, &init, sizeof(init), &p)) != 0)
            return rc;
        Kurer__V1__BlobUploadStart *m = p;
        m->size = f->u.blob_start.size;
        if (f->u.blob_start.has_id)
            id_to_pb(f->u.blob_start.blob_id, &m->blob_id);
        pb->blob_start = m;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_BLOB_START;
        return 0;
    }
    case KURER_CLIENT_BLOB_CHUNK: {
        static const Kurer__V1__BlobUploadChunk init = KURER__V1__BLOB_UPLOAD_CHUNK__INIT;
        const kurer_blob_chunk *c = &f->u.blob_chunk;
        if (c->len > KURER_BLOB_CHUNK_MAX)
            return KURER_ELIMIT; /* before anything is packed */
        if ((rc = pb_new(tmp, &init, sizeof(init), &p)) != 0)
            return rc;
        Kurer__V1__BlobUploadChunk *m = p;
        id_to_pb(c->blob_id, &m->blob_id);
        m->offset = c->offset;
        m->data.data = (uint8_t *)c->data;
        m->data.len = c->len;
        pb->blob_chunk = m;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_BLOB_CHUNK;
        return 0;
    }
    case KURER_CLIENT_BLOB_FINISH: {
        static const Kurer__V1__BlobUploadFinish init = KURER__V1__BLOB_UPLOAD_FINISH__INIT;
        if ((rc = pb_new(tmp, &init, sizeof(init), &p)) != 0)
            return rc;
        Kurer__V1__BlobUploadFinish *m = p;
        id_to_pb(f->u.blob_finish.blob_id, &m->blob_id);
        pb->blob_finish = m;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_BLOB_FINISH;
        return 0;
    }
    case KURER_CLIENT_BLOB_DOWNLOAD: {
        static const Kurer__V1__BlobDownload init = KURER__V1__BLOB_DOWNLOAD__INIT;
        if ((rc = pb_new(tmp, &init, sizeof(init), &p)) != 0)
            return rc;
        Kurer__V1__BlobDownload *m = p;
        id_to_pb(f->u.blob_download.blob_id, &m->blob_id);
        m->offset = f->u.blob_download.offset;
        m->length = f->u.blob_download.length;
        pb->blob_download = m;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_BLOB_DOWNLOAD;
        return 0;
    }
    default:
        return KURER_EMALFORMED;
    }
}

int kurer__blob_server_from_pb(const Kurer__V1__ServerFrame *pb, kurer_server_frame *out)
{
    int rc;
    switch (pb->body_case) {
    case KURER__V1__SERVER_FRAME__BODY_BLOB_STATE:
    case KURER__V1__SERVER_FRAME__BODY_BLOB_STORED:
    case KURER__V1__SERVER_FRAME__BODY_BLOB_DATA:
        if (pb->request_id == 0) /* answers name their request */
            return KURER_EMALFORMED;
        break;
    default:
        return KURER_EMALFORMED;
    }
    if (pb->body_case == KURER__V1__SERVER_FRAME__BODY_BLOB_STATE) {
        const Kurer__V1__BlobUploadState *m = pb->blob_state;
        kurer_blob_state *s = &out->u.blob_state;
        out->body = KURER_SERVER_BLOB_STATE;
        if ((rc = size_ok(m->size)) != 0)
            return rc;
        if (m->offset > m->size || m->chunk_max == 0 || m->chunk_max > KURER_BLOB_CHUNK_MAX)
            return KURER_EMALFORMED;
        s->size = m->size;
        s->offset = m->offset;
        s->chunk_max = m->chunk_max;
        return id_from_pb(&m->blob_id, s->blob_id);
    }
    if (pb->body_case == KURER__V1__SERVER_FRAME__BODY_BLOB_STORED) {
        const Kurer__V1__BlobStored *m = pb->blob_stored;
        out->body = KURER_SERVER_BLOB_STORED;
        if ((rc = size_ok(m->size)) != 0)
            return rc;
        out->u.blob_stored.size = m->size;
        out->u.blob_stored.expires_at = m->expires_at;
        return id_from_pb(&m->blob_id, out->u.blob_stored.blob_id);
    }
    const Kurer__V1__BlobData *m = pb->blob_data;
    out->body = KURER_SERVER_BLOB_DATA;
    if ((rc = size_ok(m->size)) != 0)
        return rc;
    if ((rc = chunk_from_pb(&m->blob_id, m->offset, &m->data, &out->u.blob_data, &out->mem)) != 0)
        return rc;
    if (m->offset + m->data.len > m->size)
        return KURER_EMALFORMED;
    out->u.blob_data.size = m->size;
    return 0;
}

int kurer__blob_server_to_pb(const kurer_server_frame *f, Kurer__V1__ServerFrame *pb,
                             kurer_arena *tmp)
{
    void *p;
    int rc;
    switch (f->body) {
    case KURER_SERVER_BLOB_STATE: {
        static const Kurer__V1__BlobUploadState init = KURER__V1__BLOB_UPLOAD_STATE__INIT;
        const kurer_blob_state *s = &f->u.blob_state;
        if ((rc = pb_new(tmp, &init, sizeof(init), &p)) != 0)
            return rc;
        Kurer__V1__BlobUploadState *m = p;
        id_to_pb(s->blob_id, &m->blob_id);
        m->size = s->size;
        m->offset = s->offset;
        m->chunk_max = s->chunk_max;
        pb->blob_state = m;
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_BLOB_STATE;
        return 0;
    }
    case KURER_SERVER_BLOB_STORED: {
        static const Kurer__V1__BlobStored init = KURER__V1__BLOB_STORED__INIT;
        if ((rc = pb_new(tmp, &init, sizeof(init), &p)) != 0)
            return rc;
        Kurer__V1__BlobStored *m = p;
        id_to_pb(f->u.blob_stored.blob_id, &m->blob_id);
        m->size = f->u.blob_stored.size;
        m->expires_at = f->u.blob_stored.expires_at;
        pb->blob_stored = m;
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_BLOB_STORED;
        return 0;
    }
    case KURER_SERVER_BLOB_DATA: {
        static const Kurer__V1__BlobData init = KURER__V1__BLOB_DATA__INIT;
        const kurer_blob_chunk *c = &f->u.blob_data;
        if (c->len > KURER_BLOB_CHUNK_MAX)
            return KURER_ELIMIT;
        if ((rc = pb_new(tmp, &init, sizeof(init), &p)) != 0)
            return rc;
        Kurer__V1__BlobData *m = p;
        id_to_pb(c->blob_id, &m->blob_id);
        m->size = c->size;
        m->offset = c->offset;
        m->data.data = (uint8_t *)c->data;
        m->data.len = c->len;
        pb->blob_data = m;
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_BLOB_DATA;
        return 0;
    }
    default:
        return KURER_EMALFORMED;
    }
}
