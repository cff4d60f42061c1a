/* Blob uploads and downloads (blob.h): one chunk in flight at a time, each answered once the
 * relay has it durably; every failure that a new connection may cure starts over from the
 * relay's offset. */
#include "blob.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "home.h"
#include "kurer/log.h"
#include "kurer/util.h"
#include "net.h"

#define WINDOW 8 /* chunks in flight: the relay commits them together */

int kurer__blob_transport(int rc)
{
    return rc == KURER_ECLOSED || rc == KURER_ECONNREFUSED || rc == KURER_EUNREACHABLE ||
           rc == KURER_ERESOLVE || rc == KURER_EHANDSHAKE || rc == KURER_EIO || rc == KURER_EBUSY ||
           rc == KURER_ESTORAGE;
}

/* One request and its answer of kind want (an Error answer: its code; another body:
 * KURER_EMALFORMED, the relay speaks another protocol). */
static int call(kurer *k, kurer_client_frame *f, kurer_server_body want, uint64_t deadline,
                kurer_server_frame **out)
{
    int rc = kurer__rpc(k, f, deadline, out);
    if (rc == 0 && (*out)->body != want) {
        kurer__reply_free(*out);
        *out = NULL;
        rc = KURER_EMALFORMED;
    }
    return rc;
}

static int upload_start(kurer *k, uint64_t size, int have_id, uint8_t id[KURER_BLOB_ID_LEN],
                        uint64_t deadline, uint64_t *offset, uint32_t *chunk_max)
{
    kurer_client_frame f;
    kurer_server_frame *r = NULL;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_BLOB_START;
    f.u.blob_start.size = size;
    f.u.blob_start.has_id = have_id;
    if (have_id)
        memcpy(f.u.blob_start.blob_id, id, KURER_BLOB_ID_LEN);
    int rc = call(k, &f, KURER_SERVER_BLOB_STATE, deadline, &r);
    if (rc != 0)
        return rc;
    const kurer_blob_state *s = &r->u.blob_state;
    if (s->size != size || (have_id && memcmp(s->blob_id, id, KURER_BLOB_ID_LEN) != 0))
        rc = KURER_EMALFORMED; /* an answer about another upload */
    else {
        memcpy(id, s->blob_id, KURER_BLOB_ID_LEN);
        *offset = s->offset;
        *chunk_max = s->chunk_max;
    }
    kurer__reply_free(r);
    return rc;
}

/* Chunks from *offset to size, WINDOW at a time; *offset follows what the relay confirms.
 * *local: the error is our own file's (not to be retried). */
static int upload_chunks(kurer *k, int fd, uint64_t size, const uint8_t id[KURER_BLOB_ID_LEN],
                         uint32_t chunk_max, uint64_t deadline, uint64_t *offset, uint8_t *buf,
                         int *local)
{
    kurer_client_frame f[WINDOW];
    kurer_server_frame *r[WINDOW];
    int rcs[WINDOW];
    while (*offset < size) {
        size_t m = 0;
        uint64_t at = *offset;
        for (; m < WINDOW && at < size; m++) {
            size_t n = size - at < chunk_max ? (size_t)(size - at) : chunk_max;
            uint8_t *p = buf + m * (size_t)KURER_BLOB_CHUNK_MAX;
            if (pread(fd, p, n, (off_t)at) != (ssize_t)n) {
                *local = 1;
                return KURER_EIO;
            }
            memset(&f[m], 0, sizeof(f[m]));
            f[m].body = KURER_CLIENT_BLOB_CHUNK;
            memcpy(f[m].u.blob_chunk.blob_id, id, KURER_BLOB_ID_LEN);
            f[m].u.blob_chunk.offset = at;
            f[m].u.blob_chunk.data = p;
            f[m].u.blob_chunk.len = n;
            at += n;
        }
        int rc = kurer__rpc_batch(k, f, m, deadline, r, rcs);
        for (size_t i = 0; i < m; i++) {
            if (rc == 0 && rcs[i] != 0)
                rc = rcs[i];
            else if (rc == 0 && r[i]->body != KURER_SERVER_BLOB_STATE)
                rc = KURER_EMALFORMED;
            else if (rc == 0 &&
                     r[i]->u.blob_state.offset != f[i].u.blob_chunk.offset + f[i].u.blob_chunk.len)
                rc = KURER_ESTATE; /* ask again where it stands */
            else if (rc == 0)
                *offset = r[i]->u.blob_state.offset;
            kurer__reply_free(r[i]);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int upload_finish(kurer *k, const uint8_t id[KURER_BLOB_ID_LEN], uint64_t size,
                         uint64_t deadline)
{
    kurer_client_frame f;
    kurer_server_frame *r = NULL;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_BLOB_FINISH;
    memcpy(f.u.blob_finish.blob_id, id, KURER_BLOB_ID_LEN);
    int rc = call(k, &f, KURER_SERVER_BLOB_STORED, deadline, &r);
    if (rc == 0 && (r->u.blob_stored.size != size ||
                    memcmp(r->u.blob_stored.blob_id, id, KURER_BLOB_ID_LEN) != 0))
        rc = KURER_EMALFORMED;
    kurer__reply_free(r);
    return rc;
}

int kurer__blob_upload(kurer *k, int fd, uint64_t size, uint8_t id[KURER_BLOB_ID_LEN],
                       uint64_t deadline)
{
    uint8_t *buf = malloc((size_t)WINDOW * KURER_BLOB_CHUNK_MAX);
    uint64_t offset = 0;
    uint32_t chunk_max = 0;
    int have_id = 0, rc = KURER_ETIMEOUT, resumed = 0, local = 0;
    if (buf == NULL)
        return KURER_ENOMEM;
    while (kurer_time_mono_ms() < deadline) {
        rc = kurer__net_wait_online(k, deadline, 0);
        if (rc == 0)
            rc = upload_start(k, size, have_id, id, deadline, &offset, &chunk_max);
        if (rc == 0) {
            if (have_id && resumed++ == 0)
                kurer_log(KURER_LOG_INFO, "client", "blob_upload_resumed",
                          (kurer_log_field[]){KURER_LOG_INT("offset", offset)}, 1);
            have_id = 1;
            rc = upload_chunks(k, fd, size, id, chunk_max, deadline, &offset, buf, &local);
        }
        if (rc == 0)
            rc = upload_finish(k, id, size, deadline);
        if (rc == 0 || local || !(kurer__blob_transport(rc) || (rc == KURER_ESTATE && have_id)))
            break;
        /* a lost connection, a relay that restarted, or an offset it refused: where it
         * stands is asked again (a new upload only if none was started) */
        kurer__pause_unlocked(k, deadline, 200);
        rc = KURER_ETIMEOUT;
    }
    free(buf);
    return rc;
}

/* One window of ranges of *chunk bytes from *offset, written to fd; *offset follows what
 * arrived in order. A relay that answers fewer bytes than asked (its chunk_max is lower) sets
 * *chunk for the next window; what came after that short answer is asked again. */
static int download_window(kurer *k, const uint8_t id[KURER_BLOB_ID_LEN], uint64_t size, int fd,
                           uint64_t deadline, uint64_t *offset, uint32_t *chunk)
{
    kurer_client_frame f[WINDOW];
    kurer_server_frame *r[WINDOW];
    int rcs[WINDOW];
    size_t m = 0;
    for (uint64_t at = *offset; m < WINDOW && at < size; m++, at += *chunk) {
        memset(&f[m], 0, sizeof(f[m]));
        f[m].body = KURER_CLIENT_BLOB_DOWNLOAD;
        memcpy(f[m].u.blob_download.blob_id, id, KURER_BLOB_ID_LEN);
        f[m].u.blob_download.offset = at;
        f[m].u.blob_download.length = size - at < *chunk ? (uint32_t)(size - at) : *chunk;
    }
    int rc = kurer__rpc_batch(k, f, m, deadline, r, rcs);
    for (size_t i = 0; i < m; i++) {
        const kurer_blob_chunk *d = r[i] != NULL ? &r[i]->u.blob_data : NULL;
        if (rc == 0 && rcs[i] != 0)
            rc = rcs[i];
        else if (rc == 0 && r[i]->body != KURER_SERVER_BLOB_DATA)
            rc = KURER_EMALFORMED;
        else if (rc == 0 && d->size != size)
            rc = d->size < size ? KURER_EBLOBTRUNC : KURER_ETRAILING;
        else if (rc == 0 && (d->offset != f[i].u.blob_download.offset ||
                             memcmp(d->blob_id, id, KURER_BLOB_ID_LEN) != 0))
            rc = KURER_EMALFORMED;
        else if (rc == 0 && d->offset == *offset) {
            if (pwrite(fd, d->data, d->len, (off_t)d->offset) != (ssize_t)d->len)
                rc = KURER_EIO;
            *offset += d->len;
            if (d->len < f[i].u.blob_download.length && *offset < size)
                *chunk = (uint32_t)d->len; /* the relay's chunk_max */
        }
        kurer__reply_free(r[i]);
    }
    return rc;
}

int kurer__blob_download(kurer *k, const uint8_t id[KURER_BLOB_ID_LEN], uint64_t size, int fd,
                         uint64_t deadline)
{
    uint64_t offset = 0;
    uint32_t chunk = KURER_BLOB_CHUNK_MAX;
    while (offset < size) {
        if (kurer_time_mono_ms() >= deadline)
            return KURER_ETIMEOUT;
        int rc = kurer__net_wait_online(k, deadline, 0);
        if (rc == 0)
            rc = download_window(k, id, size, fd, deadline, &offset, &chunk);
        if (rc != 0 && !kurer__blob_transport(rc))
            return rc;
        if (rc != 0)
            kurer__pause_unlocked(k, deadline, 200);
    }
    return 0;
}
