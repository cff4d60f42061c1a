/* The store's attachments (store.h, schema v6): each message's AttachmentPointers, sent or
 * received, with where a received one was saved. Outside store.c, which may not grow. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "kurer/crypto.h"

static int failed(int r)
{
    return r == SQLITE_BUSY || r == SQLITE_LOCKED  ? KURER_EBUSY
           : r == SQLITE_FULL || r == SQLITE_IOERR ? KURER_EIO
                                                   : KURER_ESTORAGE;
}

int kurer__store_attach_put(kurer__store *st, int64_t message_rowid, const kurer_attachment *a,
                            size_t n)
{
    sqlite3_stmt *s = NULL;
    if (n == 0)
        return 0;
    int r = sqlite3_prepare_v2(kurer__store_sqlite(st),
                               "INSERT INTO attachments (message, idx, blob_id, key, size, digest, "
                               "content_type, file_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?);",
                               -1, &s, NULL);
    if (r != SQLITE_OK)
        return failed(r);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (a[i].size > INT64_MAX) {
            rc = KURER_ELIMIT;
            break;
        }
        sqlite3_reset(s);
        if ((sqlite3_bind_int64(s, 1, message_rowid) | sqlite3_bind_int64(s, 2, (int64_t)i) |
             sqlite3_bind_blob(s, 3, a[i].blob_id, KURER_BLOB_ID_LEN, SQLITE_STATIC) |
             sqlite3_bind_blob(s, 4, a[i].key, KURER_ATTACHMENT_KEY_LEN, SQLITE_STATIC) |
             sqlite3_bind_int64(s, 5, (int64_t)a[i].size) |
             sqlite3_bind_blob(s, 6, a[i].digest, KURER_ATTACHMENT_DIGEST_LEN, SQLITE_STATIC) |
             sqlite3_bind_text(s, 7, a[i].content_type, -1, SQLITE_STATIC) |
             sqlite3_bind_text(s, 8, a[i].file_name, -1, SQLITE_STATIC)) != SQLITE_OK) {
            rc = KURER_ESTORAGE;
            break;
        }
        r = sqlite3_step(s);
        if (r != SQLITE_DONE)
            rc = failed(r);
    }
    sqlite3_finalize(s);
    return rc;
}

/* A fixed-size blob column into dst; KURER_ECORRUPT if it is not n bytes. */
static int fixed(sqlite3_stmt *s, int col, uint8_t *dst, size_t n)
{
    if (sqlite3_column_type(s, col) != SQLITE_BLOB || (size_t)sqlite3_column_bytes(s, col) != n)
        return KURER_ECORRUPT;
    memcpy(dst, sqlite3_column_blob(s, col), n);
    return 0;
}

/* A text column into dst (cap bytes with the NUL); KURER_ECORRUPT if longer. */
static int text(sqlite3_stmt *s, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    if (t == NULL)
        n = 0;
    if (n >= cap)
        return KURER_ECORRUPT;
    if (n > 0)
        memcpy(dst, t, n);
    dst[n] = '\0';
    return 0;
}

static int row_in(sqlite3_stmt *s, kurer__attach_row *r, int64_t message_rowid)
{
    int rc;
    memset(r, 0, sizeof(*r));
    r->message_rowid = message_rowid;
    r->idx = (size_t)sqlite3_column_int64(s, 0);
    if ((rc = fixed(s, 1, r->a.blob_id, KURER_BLOB_ID_LEN)) != 0 ||
        (rc = fixed(s, 2, r->a.key, KURER_ATTACHMENT_KEY_LEN)) != 0 ||
        (rc = fixed(s, 4, r->a.digest, KURER_ATTACHMENT_DIGEST_LEN)) != 0 ||
        (rc = text(s, 5, r->content_type, sizeof(r->content_type))) != 0 ||
        (rc = text(s, 6, r->file_name, sizeof(r->file_name))) != 0 ||
        (rc = text(s, 7, r->saved_path, sizeof(r->saved_path))) != 0)
        return rc;
    int64_t size = sqlite3_column_int64(s, 3);
    if (size < 0)
        return KURER_ECORRUPT;
    r->a.size = (uint64_t)size;
    r->a.content_type = r->content_type;
    r->a.file_name = r->file_name;
    return 0;
}

void kurer__attach_rows_free(kurer__attach_row *rows, size_t n)
{
    if (rows == NULL)
        return;
    kurer_memzero(rows, n * sizeof(*rows));
    free(rows);
}

int kurer__store_attach_load(kurer__store *st, int64_t message_rowid, kurer__attach_row **rows,
                             size_t *n)
{
    sqlite3_stmt *s = NULL;
    *rows = NULL;
    *n = 0;
    int count = kurer__store_attach_count(st, message_rowid);
    if (count <= 0)
        return count;
    if (count > KURER_ATTACHMENTS_MAX)
        return KURER_ECORRUPT;
    kurer__attach_row *out = calloc((size_t)count, sizeof(*out));
    if (out == NULL)
        return KURER_ENOMEM;
    int r = sqlite3_prepare_v2(kurer__store_sqlite(st),
                               "SELECT idx, blob_id, key, size, digest, content_type, file_name, "
                               "saved_path FROM attachments WHERE message = ? ORDER BY idx;",
                               -1, &s, NULL);
    int rc = r == SQLITE_OK ? 0 : failed(r);
    size_t got = 0;
    if (rc == 0 && sqlite3_bind_int64(s, 1, message_rowid) != SQLITE_OK)
        rc = KURER_ESTORAGE;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        if (got == (size_t)count) {
            rc = KURER_ECORRUPT;
            break;
        }
        rc = row_in(s, &out[got], message_rowid);
        got++;
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = failed(r);
    sqlite3_finalize(s);
    if (rc != 0) {
        kurer__attach_rows_free(out, (size_t)count);
        return rc;
    }
    *rows = out;
    *n = got;
    return 0;
}

int kurer__store_attach_count(kurer__store *st, int64_t message_rowid)
{
    sqlite3_stmt *s = NULL;
    int r = sqlite3_prepare_v2(kurer__store_sqlite(st),
                               "SELECT count(*) FROM attachments WHERE message = ?;", -1, &s, NULL);
    if (r != SQLITE_OK)
        return failed(r);
    int rc = KURER_ESTORAGE;
    if (sqlite3_bind_int64(s, 1, message_rowid) == SQLITE_OK && (r = sqlite3_step(s)) == SQLITE_ROW)
        rc = sqlite3_column_int(s, 0);
    else if (r != SQLITE_OK)
        rc = failed(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_attach_saved(kurer__store *st, int64_t message_rowid, size_t idx, const char *path)
{
    sqlite3_stmt *s = NULL;
    sqlite3 *db = kurer__store_sqlite(st);
    int r = sqlite3_prepare_v2(
        db, "UPDATE attachments SET saved_path = ? WHERE message = ? AND idx = ?;", -1, &s, NULL);
    if (r != SQLITE_OK)
        return failed(r);
    int rc = 0;
    if ((sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC) |
         sqlite3_bind_int64(s, 2, message_rowid) | sqlite3_bind_int64(s, 3, (int64_t)idx)) !=
        SQLITE_OK)
        rc = KURER_ESTORAGE;
    else if ((r = sqlite3_step(s)) != SQLITE_DONE)
        rc = failed(r);
    else if (sqlite3_changes(db) != 1)
        rc = KURER_ENOTFOUND;
    sqlite3_finalize(s);
    return rc;
}
