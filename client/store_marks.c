/* The store's high-water marks of peer devices (store.h, schema v5): the newest certificate
 * ever accepted for each address, kept when the device itself is forgotten. Outside store.c,
 * which may not grow (tests/size_exceptions.txt). */
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

int kurer__store_peer_mark_get(kurer__store *st, const char *user, uint32_t device_id,
                               kurer__peer_mark *m)
{
    sqlite3_stmt *s = NULL;
    int r = sqlite3_prepare_v2(kurer__store_sqlite(st),
                               "SELECT not_before, serial, identity_key FROM peer_marks "
                               "WHERE user = ? AND device_id = ?;",
                               -1, &s, NULL);
    if (r != SQLITE_OK)
        return failed(r);
    if ((sqlite3_bind_text(s, 1, user, -1, SQLITE_TRANSIENT) |
         sqlite3_bind_int64(s, 2, device_id)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    int rc = 0;
    r = sqlite3_step(s);
    if (r == SQLITE_DONE) {
        rc = KURER_ENOTFOUND;
    } else if (r != SQLITE_ROW) {
        rc = failed(r);
    } else if (sqlite3_column_type(s, 2) != SQLITE_BLOB ||
               sqlite3_column_bytes(s, 2) != KURER_IDENTITY_KEY_LEN) {
        rc = KURER_ECORRUPT; /* written only by _put below: the file was changed under us */
    } else {
        m->not_before = sqlite3_column_int64(s, 0);
        m->serial = (uint64_t)sqlite3_column_int64(s, 1);
        memcpy(m->identity_key, sqlite3_column_blob(s, 2), KURER_IDENTITY_KEY_LEN);
    }
    sqlite3_finalize(s);
    return rc;
}

/* One statement with the mark's columns bound as (not_before, serial, identity_key, updated_at,
 * user, device_id); *changed gets how many rows it wrote. */
static int mark_write(kurer__store *st, const char *sql, const char *user, uint32_t device_id,
                      const kurer__peer_mark *m, int64_t now, int *changed)
{
    sqlite3_stmt *s = NULL;
    int r = sqlite3_prepare_v2(kurer__store_sqlite(st), sql, -1, &s, NULL);
    if (r != SQLITE_OK)
        return failed(r);
    int b = sqlite3_bind_int64(s, 1, m->not_before);
    b |= sqlite3_bind_int64(s, 2, (sqlite3_int64)m->serial);
    b |= sqlite3_bind_blob(s, 3, m->identity_key, KURER_IDENTITY_KEY_LEN, SQLITE_TRANSIENT);
    b |= sqlite3_bind_int64(s, 4, now);
    b |= sqlite3_bind_text(s, 5, user, -1, SQLITE_TRANSIENT);
    b |= sqlite3_bind_int64(s, 6, device_id);
    if (b != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    r = sqlite3_step(s);
    sqlite3_finalize(s);
    *changed = sqlite3_changes(kurer__store_sqlite(st));
    return r == SQLITE_DONE ? 0 : failed(r);
}

/* UPDATE, then INSERT if there was no row: SQLCipher's SQLite (3.15) has no upsert. */
int kurer__store_peer_mark_put(kurer__store *st, const char *user, uint32_t device_id,
                               const kurer__peer_mark *m, int64_t now)
{
    int changed = 0;
    int rc = kurer__store_begin(st);
    if (rc != 0)
        return rc;
    rc = mark_write(st,
                    "UPDATE peer_marks SET not_before = ?, serial = ?, identity_key = ?, "
                    "updated_at = ? WHERE user = ? AND device_id = ?;",
                    user, device_id, m, now, &changed);
    if (rc == 0 && changed == 0)
        rc = mark_write(st,
                        "INSERT INTO peer_marks (not_before, serial, identity_key, updated_at, "
                        "user, device_id) VALUES (?, ?, ?, ?, ?, ?);",
                        user, device_id, m, now, &changed);
    if (rc != 0) {
        kurer__store_rollback(st);
        return rc;
    }
    return kurer__store_commit(st);
}

int kurer__store_peer_mark_of(kurer__store *st, const char *user, uint32_t device_id,
                              kurer__peer_mark *m, int *have)
{
    uint8_t *data = NULL;
    size_t len = 0;
    kurer_chain *old;
    *have = 0;
    int rc = kurer__store_peer_mark_get(st, user, device_id, m);
    if (rc != KURER_ENOTFOUND) {
        *have = rc == 0;
        return rc;
    }
    rc = kurer__store_peer_device_get(st, user, device_id, &data, &len);
    if (rc == KURER_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if ((old = malloc(sizeof(*old))) == NULL) {
        free(data);
        return KURER_ENOMEM;
    }
    /* A stored chain that no longer decodes is replaced, not trusted. */
    if (kurer_chain_decode(data, len, old) == 0 && old->certs[0].body.role == KURER_ROLE_DEVICE) {
        m->not_before = old->certs[0].body.not_before;
        m->serial = old->certs[0].body.serial;
        memcpy(m->identity_key, old->certs[0].body.identity_key, KURER_IDENTITY_KEY_LEN);
        *have = 1;
    }
    free(old);
    free(data);
    return 0;
}

int kurer__peer_mark_check(const kurer__peer_mark *m, const kurer_cert_body *nb)
{
    if (nb->not_before != m->not_before)
        return nb->not_before < m->not_before ? KURER_ESTALE : 0;
    if (nb->serial != m->serial)
        return nb->serial < m->serial ? KURER_ESTALE : 0;
    return kurer_ct_equal(nb->identity_key, m->identity_key, KURER_IDENTITY_KEY_LEN) ? 0
                                                                                     : KURER_ESTALE;
}
