/* The sqlite backend's fan-out puts (store.h, kurer_store_put_fanout): the shared bytes stored
 * once, a small reference per device, the shared bytes deleted with the last reference. */
#include "store_queue.h"
#include "store_sqlite.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/frame.h"

int kurer__sq_fanout_prepare(sqlite3 *db, kurer__sq_fanout *f)
{
    static const char *const q[] = {
        "SELECT num FROM devnums WHERE user=?1 AND device=?2",
        "INSERT OR IGNORE INTO devnums(user, device) VALUES(?1, ?2)",
        "INSERT INTO fanout_payloads(sender, refs, env) VALUES(?1, ?2, ?3)",
        "INSERT INTO fanout_refs(dev, seq, payload) VALUES(?1, ?2, ?3)",
        "SELECT count(*) FROM fanout_refs WHERE dev=?1",
        "SELECT count(*) FROM fanout_refs r JOIN fanout_payloads p ON p.id=r.payload "
        "WHERE r.dev=?1 AND p.sender=?2",
        "SELECT r.seq, p.env FROM fanout_refs r JOIN fanout_payloads p ON p.id=r.payload "
        "WHERE r.dev=?1 AND r.seq>?2 ORDER BY r.seq LIMIT ?3",
        "SELECT payload FROM fanout_refs WHERE dev=?1 AND seq=?2",
        "DELETE FROM fanout_refs WHERE dev=?1 AND seq=?2",
        "UPDATE fanout_payloads SET refs=refs-1 WHERE id=?1",
        "DELETE FROM fanout_payloads WHERE id=?1 AND refs<=0",
    };
    sqlite3_stmt **st[] = {&f->num_get, &f->num_add,      &f->payload_add, &f->ref_add,
                           &f->count,   &f->count_sender, &f->fetch,       &f->ref_find,
                           &f->ref_del, &f->unref,        &f->drop};
    f->db = db;
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
        if (sqlite3_prepare_v2(db, q[i], -1, st[i], NULL) != SQLITE_OK)
            return KURER_ESTORAGE;
    /* a store that never had a fan-out costs the envelopes' hot path no lookups */
    sqlite3_stmt *any = NULL;
    int r = sqlite3_prepare_v2(db, "SELECT EXISTS(SELECT 1 FROM fanout_refs)", -1, &any, NULL);
    if (r == SQLITE_OK && sqlite3_step(any) == SQLITE_ROW)
        f->any = sqlite3_column_int(any, 0);
    else
        r = SQLITE_ERROR;
    sqlite3_finalize(any);
    return r == SQLITE_OK ? 0 : KURER_ESTORAGE;
}

void kurer__sq_fanout_finalize(kurer__sq_fanout *f)
{
    sqlite3_stmt *st[] = {f->num_get, f->num_add,      f->payload_add, f->ref_add,
                          f->count,   f->count_sender, f->fetch,       f->ref_find,
                          f->ref_del, f->unref,        f->drop};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
        sqlite3_finalize(st[i]);
    memset(f, 0, sizeof(*f));
}

/* Steps a statement that returns nothing, and resets it. */
static int done(sqlite3_stmt *st)
{
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    return r == SQLITE_DONE ? 0 : KURER_ESTORAGE;
}

/* Steps a statement that returns one integer (or no row: 0), and resets it. */
static int one(sqlite3_stmt *st, int64_t *out)
{
    int r = sqlite3_step(st);
    *out = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : KURER_ESTORAGE;
}

int kurer__sq_fanout_devnum(kurer__sq_fanout *f, const char *user, uint32_t device, int create,
                            int64_t *num)
{
    int rc;
    for (int pass = 0; pass < 2; pass++) {
        sqlite3_bind_text(f->num_get, 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(f->num_get, 2, device);
        if ((rc = one(f->num_get, num)) != 0 || *num != 0 || !create || pass == 1)
            return rc;
        sqlite3_bind_text(f->num_add, 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(f->num_add, 2, device);
        if ((rc = done(f->num_add)) != 0)
            return rc;
    }
    return 0;
}

int kurer__sq_fanout_count(kurer__sq_fanout *f, const char *user, uint32_t device,
                           const char *sender, uint64_t *out)
{
    int64_t num, n = 0;
    *out = 0;
    if (!f->any)
        return 0;
    int rc = kurer__sq_fanout_devnum(f, user, device, 0, &num);
    if (rc != 0 || num == 0)
        return rc;
    sqlite3_stmt *st = sender != NULL ? f->count_sender : f->count;
    sqlite3_bind_int64(st, 1, num);
    if (sender != NULL)
        sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC);
    rc = one(st, &n);
    *out = (uint64_t)n;
    return rc;
}

int kurer__sq_fanout_put(kurer__sq_fanout *f, const kurer__op *o)
{
    int64_t refs = 0, payload, num;
    int rc;
    for (size_t i = 0; i < o->n; i++)
        refs += !o->skip[i];
    if (refs == 0)
        return 0; /* every reference met its ack: nothing to write */
    f->any = 1;   /* (kept if the transaction fails: lookups then find nothing) */
    sqlite3_bind_text(f->payload_add, 1, o->items[0].from.user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(f->payload_add, 2, refs);
    sqlite3_bind_blob(f->payload_add, 3, o->blob, (int)o->blob_len, SQLITE_STATIC);
    if ((rc = done(f->payload_add)) != 0)
        return rc;
    payload = sqlite3_last_insert_rowid(f->db);
    for (size_t i = 0; i < o->n; i++) {
        if (o->skip[i])
            continue;
        if ((rc = kurer__sq_fanout_devnum(f, o->items[i].to.user, o->items[i].to.device_id, 1,
                                          &num)) != 0)
            return rc;
        sqlite3_bind_int64(f->ref_add, 1, num);
        sqlite3_bind_int64(f->ref_add, 2, (sqlite3_int64)o->seqs[i]);
        sqlite3_bind_int64(f->ref_add, 3, payload);
        if ((rc = done(f->ref_add)) != 0)
            return rc;
    }
    return 0;
}

int kurer__sq_fanout_fetch(kurer__sq_fanout *f, const char *user, uint32_t device, uint64_t after,
                           uint64_t limit, kurer_store_row **rows, size_t *n, size_t *cap)
{
    int64_t num;
    kurer_device_address to;
    if (!f->any)
        return 0;
    int rc = kurer__sq_fanout_devnum(f, user, device, 0, &num), r;
    if (rc != 0 || num == 0)
        return rc;
    memset(&to, 0, sizeof(to));
    snprintf(to.user, sizeof(to.user), "%s", user);
    to.device_id = device;
    sqlite3_stmt *st = f->fetch;
    sqlite3_bind_int64(st, 1, num);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)after);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)(limit > INT64_MAX ? INT64_MAX : limit));
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            kurer_store_row *nr = realloc(*rows, nc * sizeof(*nr));
            if (nr == NULL) {
                rc = KURER_ENOMEM;
                break;
            }
            *rows = nr;
            *cap = nc;
        }
        kurer_buf b;
        kurer_buf_init(&b, KURER_FRAME_MAX);
        if ((rc = kurer_fanout_envelope(sqlite3_column_blob(st, 1),
                                        (size_t)sqlite3_column_bytes(st, 1), &to, &b)) != 0) {
            kurer_buf_release(&b);
            rc = KURER_ESTORAGE; /* bytes we did not write */
            break;
        }
        size_t len = 0;
        (*rows)[*n].seq = (uint64_t)sqlite3_column_int64(st, 0);
        (*rows)[*n].env = kurer_buf_steal(&b, &len);
        (*rows)[*n].len = len;
        if ((*rows)[*n].env == NULL) {
            rc = KURER_ENOMEM;
            break;
        }
        (*n)++;
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = KURER_ESTORAGE;
    sqlite3_reset(st);
    return rc;
}

int kurer__sq_fanout_ack(kurer__sq_fanout *f, const char *user, uint32_t device, uint64_t seq)
{
    int64_t num, payload;
    if (!f->any)
        return 0;
    int rc = kurer__sq_fanout_devnum(f, user, device, 0, &num);
    if (rc != 0 || num == 0)
        return rc;
    sqlite3_bind_int64(f->ref_find, 1, num);
    sqlite3_bind_int64(f->ref_find, 2, (sqlite3_int64)seq);
    if ((rc = one(f->ref_find, &payload)) != 0 || payload == 0)
        return rc; /* an envelope of its own, or nothing */
    sqlite3_bind_int64(f->ref_del, 1, num);
    sqlite3_bind_int64(f->ref_del, 2, (sqlite3_int64)seq);
    sqlite3_bind_int64(f->unref, 1, payload);
    sqlite3_bind_int64(f->drop, 1, payload);
    if ((rc = done(f->ref_del)) != 0 || (rc = done(f->unref)) != 0)
        return rc;
    return done(f->drop);
}
