/* The sqlite (SQLCipher) backend of the relay store: one writer thread with group commit over
 * the shared queue (store_queue.c), and the per-device seq counters. */
#include "store.h"
#include "store_queue.h"
#include "store_sqlite.h"
#include "store_sqlite_invite.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "htab.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"

typedef kurer__op op;

/* Seqs: every open raises the store's epoch E (meta.seq_epoch) and each device's seqs of this
 * run count up from E * 2^40, so a seq is never handed out twice, even after a crash, with no
 * write per envelope. 2^40 is more envelopes than one device gets in a run; 2^24 opens fit. */
#define EPOCH_SHIFT 40

/* The room kurer_store_probe wants: a largest envelope with its pages in the log and the file. */
#define PROBE_ROOM ((uint64_t)256 * 1024)

/* A device's seq counter (loop thread only): seqs are handed out at submission, from here. */
typedef struct seq_ctr {
    hnode node;
    struct seq_ctr *all; /* every counter, to free them */
    kurer_device_address dev;
    uint64_t last; /* the last seq assigned (the epoch's base before the first) */
} seq_ctr;

typedef struct sq_store {
    kurer_store base;
    kurer__storeq q;
    sqlite3 *db;
    pthread_t thread;
    /* statements of the hot path, prepared once (writer thread only) */
    sqlite3_stmt *st_count, *st_count_sender, *st_insert, *st_delete, *st_fetch;
    kurer__sq_fanout fo; /* fan-out puts (store_sqlite_fanout.c) */
    htab seqs;           /* seq_ctr by device (loop thread) */
    seq_ctr *all_seqs;
    uint64_t epoch; /* this run's, E: seqs above E << EPOCH_SHIFT */
    /* The epoch is durable (written at open, or by the first commit since). Until then on_seqs
     * runs after the put's commit (seqs of committed rows are above the epoch's base anyway),
     * so that no seq goes out early that a crash could hand out again. */
    _Atomic int epoch_saved;
} sq_store;

/* Whether item i of o would take its mailbox past max: count is what the mailbox holds for the
 * key (the device, or the device and sender), same() says which earlier items of this put count
 * towards it too. */
static int over(const op *o, size_t i, uint64_t count, uint64_t max, int by_sender)
{
    uint64_t mine = 1;
    const kurer_store_item *it = &o->items[i];
    for (size_t j = 0; j < i; j++) {
        const kurer_store_item *x = &o->items[j];
        if (!o->skip[j] && x->to.device_id == it->to.device_id &&
            strcmp(x->to.user, it->to.user) == 0 &&
            (!by_sender || strcmp(x->from.user, it->from.user) == 0))
            mine++;
    }
    return count + mine > max;
}

/* What the mailbox holds for the key: its envelopes and its fan-out references. */
static int count_rows(sq_store *s, sqlite3_stmt *st, const kurer_store_item *it, int by_sender,
                      uint64_t *count)
{
    uint64_t refs = 0;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, it->to.user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, it->to.device_id);
    if (by_sender)
        sqlite3_bind_text(st, 3, it->from.user, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    *count = r == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (r != SQLITE_ROW || kurer__sq_fanout_count(&s->fo, it->to.user, it->to.device_id,
                                                  by_sender ? it->from.user : NULL, &refs) != 0)
        return KURER_ESTORAGE;
    *count += refs;
    return 0;
}

static int exec_put(sq_store *s, op *o)
{
    sqlite3_stmt *ins = s->st_insert;
    int rc = KURER_ESTORAGE;
    for (size_t i = 0; i < o->n; i++) {
        uint64_t count;
        if (o->skip[i])
            continue; /* delivered and acked already: never in the mailbox */
        if (o->mailbox_max > 0) {
            if (count_rows(s, s->st_count, &o->items[i], 0, &count) != 0)
                goto out;
            if (over(o, i, count, o->mailbox_max, 0)) {
                s->q.refused_full++;
                rc = KURER_ELIMIT;
                goto out;
            }
        }
        /* Each sender (user) has a share of the mailbox: one cannot fill it for everyone. */
        if (o->sender_max > 0) {
            if (count_rows(s, s->st_count_sender, &o->items[i], 1, &count) != 0)
                goto out;
            if (over(o, i, count, o->sender_max, 1)) {
                s->q.refused_share++;
                rc = KURER_ELIMIT;
                goto out;
            }
        }
    }
    sqlite3_exec(s->db, "SAVEPOINT put", NULL, NULL, NULL);
    if (o->fanout && kurer__sq_fanout_put(&s->fo, o) != 0) {
        sqlite3_exec(s->db, "ROLLBACK TO put; RELEASE put", NULL, NULL, NULL);
        goto out;
    }
    for (size_t i = 0; i < o->n && !o->fanout; i++) {
        if (o->skip[i])
            continue;
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)o->seqs[i]);
        sqlite3_bind_text(ins, 2, o->items[i].to.user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, o->items[i].to.device_id);
        sqlite3_bind_blob(ins, 4, o->items[i].env, (int)o->items[i].len, SQLITE_STATIC);
        sqlite3_bind_text(ins, 5, o->items[i].from.user, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            sqlite3_reset(ins);
            sqlite3_exec(s->db, "ROLLBACK TO put; RELEASE put", NULL, NULL, NULL);
            goto out;
        }
    }
    sqlite3_exec(s->db, "RELEASE put", NULL, NULL, NULL);
    rc = 0;
out:
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
    return rc;
}

static int cmp_row(const void *a, const void *b)
{
    const kurer_store_row *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The device's fan-out references joined to the rows read: in seq order, the first limit. */
static int merge_refs(sq_store *s, op *o, size_t *cap)
{
    size_t before = o->n_rows;
    int rc = kurer__sq_fanout_fetch(&s->fo, o->dev.user, o->dev.device_id, o->after, o->limit,
                                    &o->rows, &o->n_rows, cap);
    if (o->n_rows > before)
        qsort(o->rows, o->n_rows, sizeof(*o->rows), cmp_row);
    while (o->n_rows > o->limit)
        free((void *)o->rows[--o->n_rows].env);
    return rc;
}

static int exec_fetch(sq_store *s, op *o)
{
    sqlite3_stmt *st = s->st_count;
    int rc = KURER_ESTORAGE;
    size_t cap = 0;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, o->dev.user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, o->dev.device_id);
    if (sqlite3_step(st) != SQLITE_ROW)
        goto out;
    o->total = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    uint64_t refs = 0;
    if (kurer__sq_fanout_count(&s->fo, o->dev.user, o->dev.device_id, NULL, &refs) != 0)
        goto out;
    o->total += refs;
    if (o->limit == 0) {
        rc = 0; /* the count only */
        goto out;
    }
    st = s->st_fetch;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, o->dev.user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, o->dev.device_id);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)o->after);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)o->limit);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (o->n_rows == cap) {
            cap = cap ? cap * 2 : 16;
            kurer_store_row *nr = realloc(o->rows, cap * sizeof(*nr));
            if (nr == NULL) {
                rc = KURER_ENOMEM;
                goto out;
            }
            o->rows = nr;
        }
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        uint8_t *copy = malloc(len ? len : 1);
        if (copy == NULL) {
            rc = KURER_ENOMEM;
            goto out;
        }
        memcpy(copy, sqlite3_column_blob(st, 1), len);
        o->rows[o->n_rows].seq = (uint64_t)sqlite3_column_int64(st, 0);
        o->rows[o->n_rows].env = copy;
        o->rows[o->n_rows].len = len;
        o->n_rows++;
    }
    rc = r == SQLITE_DONE ? 0 : KURER_ESTORAGE;
    if (rc == 0 && refs > 0)
        rc = merge_refs(s, o, &cap);
out:
    sqlite3_reset(st);
    return rc;
}

static int exec_ack(sq_store *s, op *o)
{
    sqlite3_stmt *st = s->st_delete;
    int rc = KURER_ESTORAGE;
    for (size_t i = 0; i < o->n; i++) {
        if (o->skip[i])
            continue; /* its put was cancelled in this batch: nothing to delete */
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)o->seqs[i]);
        sqlite3_bind_text(st, 2, o->dev.user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, o->dev.device_id);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto out;
        /* not an envelope of its own: perhaps a fan-out reference */
        if (sqlite3_changes(s->db) == 0 &&
            kurer__sq_fanout_ack(&s->fo, o->dev.user, o->dev.device_id, o->seqs[i]) != 0)
            goto out;
    }
    rc = 0;
out:
    sqlite3_reset(st);
    return rc;
}
static int exec_device(sq_store *s, op *o)
{
    sqlite3_stmt *st = NULL;
    int rc = KURER_ESTORAGE;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO devices VALUES(?1, ?2, ?3, ?4)", -1, &st,
                           NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, o->dev.user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, o->dev.device_id);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)o->serial);
    sqlite3_bind_blob(st, 4, o->blob, (int)o->blob_len, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : KURER_ESTORAGE;
    int64_t num; /* the number fan-out references name the device by */
    if (rc == 0)
        rc = kurer__sq_fanout_devnum(&s->fo, o->dev.user, o->dev.device_id, 1, &num);
out:
    sqlite3_finalize(st);
    return rc;
}

static int count_otk(sq_store *s, const kurer_device_address *d, uint64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = KURER_ESTORAGE;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*) FROM one_time_prekeys WHERE user=?1 AND device=?2", -1,
                           &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, d->user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, d->device_id);
    if (sqlite3_step(st) != SQLITE_ROW)
        goto out;
    *out = (uint64_t)sqlite3_column_int64(st, 0);
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int exec_prekeys(sq_store *s, op *o)
{
    sqlite3_stmt *spk = NULL, *otk = NULL, *retire = NULL;
    const kurer_signed_prekey *p = &o->pk.signed_prekey;
    int rc = KURER_ESTORAGE;
    /* A device re-enrolled (a new home: another registration id) must not have the old home's
     * one-time prekeys handed out for it: nobody holds their private halves any more. */
    if (sqlite3_prepare_v2(s->db,
                           "DELETE FROM one_time_prekeys WHERE user=?1 AND device=?2 AND EXISTS "
                           "(SELECT 1 FROM prekey_devices WHERE user=?1 AND device=?2 AND "
                           "registration_id <> ?3)",
                           -1, &retire, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(
            s->db, "INSERT OR REPLACE INTO prekey_devices VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1,
            &spk, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO one_time_prekeys VALUES(?1, ?2, ?3, ?4)",
                           -1, &otk, NULL) != SQLITE_OK)
        goto out;
    sqlite3_exec(s->db, "SAVEPOINT pk", NULL, NULL, NULL);
    sqlite3_bind_text(retire, 1, o->dev.user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(retire, 2, o->dev.device_id);
    sqlite3_bind_int64(retire, 3, o->pk.registration_id);
    if (sqlite3_step(retire) != SQLITE_DONE)
        goto undo;
    sqlite3_bind_text(spk, 1, o->dev.user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(spk, 2, o->dev.device_id);
    sqlite3_bind_int64(spk, 3, o->pk.registration_id);
    sqlite3_bind_int64(spk, 4, p->id);
    sqlite3_bind_blob(spk, 5, p->public_key, KURER_PREKEY_PUBLIC_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(spk, 6, p->signature, KURER_PREKEY_SIG_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(spk, 7, p->created_at);
    if (sqlite3_step(spk) != SQLITE_DONE)
        goto undo;
    for (size_t i = 0; i < o->pk.n_one_time; i++) {
        sqlite3_reset(otk);
        sqlite3_bind_text(otk, 1, o->dev.user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(otk, 2, o->dev.device_id);
        sqlite3_bind_int64(otk, 3, o->otk[i].id);
        sqlite3_bind_blob(otk, 4, o->otk[i].public_key, KURER_PREKEY_PUBLIC_LEN, SQLITE_STATIC);
        if (sqlite3_step(otk) != SQLITE_DONE)
            goto undo;
    }
    if (count_otk(s, &o->dev, &o->total) != 0)
        goto undo;
    if (o->pk.max_one_time > 0 && o->total > o->pk.max_one_time) {
        /* over the pool bound (ids already held are replaced, not added): nothing is kept */
        rc = KURER_ELIMIT;
        goto undo;
    }
    sqlite3_exec(s->db, "RELEASE pk", NULL, NULL, NULL);
    rc = 0;
    goto out;
undo:
    sqlite3_exec(s->db, "ROLLBACK TO pk; RELEASE pk", NULL, NULL, NULL);
out:
    sqlite3_finalize(retire);
    sqlite3_finalize(spk);
    sqlite3_finalize(otk);
    return rc;
}

static int copy_key(sqlite3_stmt *st, int col, uint8_t *out, size_t len)
{
    if ((size_t)sqlite3_column_bytes(st, col) != len)
        return KURER_ECORRUPT;
    memcpy(out, sqlite3_column_blob(st, col), len);
    return 0;
}

/* One transaction for all devices: the one-time prekey taken is deleted before the commit that
 * precedes the answer, so two fetchers can never be handed the same one. */
static int exec_take(sq_store *s, op *o)
{
    sqlite3_stmt *spk = NULL, *otk = NULL, *del = NULL;
    int rc = KURER_ESTORAGE;
    o->bundles = calloc(o->n ? o->n : 1, sizeof(*o->bundles));
    if (o->bundles == NULL)
        return KURER_ENOMEM;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT registration_id, spk_id, spk_pub, spk_sig, spk_created FROM "
                           "prekey_devices WHERE user=?1 AND device=?2",
                           -1, &spk, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "SELECT id, pub FROM one_time_prekeys WHERE user=?1 AND device=?2 "
                           "ORDER BY id LIMIT 1",
                           -1, &otk, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "DELETE FROM one_time_prekeys WHERE user=?1 AND device=?2 AND id=?3", -1,
                           &del, NULL) != SQLITE_OK)
        goto out;
    sqlite3_exec(s->db, "SAVEPOINT take", NULL, NULL, NULL);
    for (size_t i = 0; i < o->n; i++) {
        const kurer_device_address *d = &o->devs[i];
        kurer_store_bundle *b = &o->bundles[o->n_bundles];
        int r;
        sqlite3_reset(spk);
        sqlite3_bind_text(spk, 1, d->user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(spk, 2, d->device_id);
        r = sqlite3_step(spk);
        if (r == SQLITE_DONE)
            continue; /* never uploaded: no bundle */
        if (r != SQLITE_ROW)
            goto undo;
        memset(b, 0, sizeof(*b));
        b->dev = *d;
        b->registration_id = (uint32_t)sqlite3_column_int64(spk, 0);
        b->signed_prekey.id = (uint32_t)sqlite3_column_int64(spk, 1);
        b->signed_prekey.created_at = sqlite3_column_int64(spk, 4);
        if (copy_key(spk, 2, b->signed_prekey.public_key, KURER_PREKEY_PUBLIC_LEN) != 0 ||
            copy_key(spk, 3, b->signed_prekey.signature, KURER_PREKEY_SIG_LEN) != 0) {
            rc = KURER_ECORRUPT;
            goto undo;
        }
        /* Only the first o->limit devices may get a one-time prekey (the relay's per-taker
         * bound); the others get the signed prekey alone. */
        r = SQLITE_DONE;
        if (i < o->limit) {
            sqlite3_reset(otk);
            sqlite3_bind_text(otk, 1, d->user, -1, SQLITE_STATIC);
            sqlite3_bind_int64(otk, 2, d->device_id);
            r = sqlite3_step(otk);
        }
        if (r == SQLITE_ROW) {
            b->has_one_time = 1;
            b->one_time.id = (uint32_t)sqlite3_column_int64(otk, 0);
            if (copy_key(otk, 1, b->one_time.public_key, KURER_PREKEY_PUBLIC_LEN) != 0) {
                rc = KURER_ECORRUPT;
                goto undo;
            }
            sqlite3_reset(del);
            sqlite3_bind_text(del, 1, d->user, -1, SQLITE_STATIC);
            sqlite3_bind_int64(del, 2, d->device_id);
            sqlite3_bind_int64(del, 3, b->one_time.id);
            if (sqlite3_step(del) != SQLITE_DONE)
                goto undo;
        } else if (r != SQLITE_DONE) {
            goto undo;
        }
        if (count_otk(s, d, &b->remaining) != 0)
            goto undo;
        o->n_bundles++;
    }
    sqlite3_exec(s->db, "RELEASE take", NULL, NULL, NULL);
    rc = 0;
    goto out;
undo:
    sqlite3_exec(s->db, "ROLLBACK TO take; RELEASE take", NULL, NULL, NULL);
    o->n_bundles = 0;
out:
    sqlite3_finalize(spk);
    sqlite3_finalize(otk);
    sqlite3_finalize(del);
    return rc;
}

static int exec_count(sq_store *s, op *o)
{
    sqlite3_stmt *st = NULL;
    int rc = KURER_ESTORAGE, r;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM prekey_devices WHERE user=?1 AND device=?2", -1,
                           &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, o->dev.user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, o->dev.device_id);
    r = sqlite3_step(st);
    if (r == SQLITE_DONE)
        rc = KURER_ENOTFOUND;
    else if (r == SQLITE_ROW)
        rc = count_otk(s, &o->dev, &o->total);
out:
    sqlite3_finalize(st);
    return rc;
}

static int exec_crl(sq_store *s, op *o)
{
    sqlite3_stmt *st = NULL;
    int rc = KURER_ESTORAGE;
    if (sqlite3_prepare_v2(s->db,
                           /* SQLCipher 3.4 (SQLite 3.15) has no UPSERT */
                           "INSERT OR REPLACE INTO crls SELECT ?1, ?2, ?3 WHERE NOT EXISTS "
                           "(SELECT 1 FROM crls WHERE issuer_key_id=?1 AND version>=?2)",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_blob(st, 1, o->key_id, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)o->after);
    sqlite3_bind_blob(st, 3, o->blob, (int)o->blob_len, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : KURER_ESTORAGE;
out:
    sqlite3_finalize(st);
    return rc;
}
static int epoch_write(sq_store *s)
{
    sqlite3_stmt *st = NULL;
    int rc = KURER_ESTORAGE;
    if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO meta VALUES('seq_epoch', ?1)", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)s->epoch);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : KURER_ESTORAGE;
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- the writer --------------------------------------------------------------------------- */

static int exec_one(sq_store *s, op *o)
{
    switch (o->kind) {
    case KURER__OP_PUT:
        return exec_put(s, o);
    case KURER__OP_ACK:
        return exec_ack(s, o);
    case KURER__OP_DEVICE:
        return exec_device(s, o);
    case KURER__OP_PREKEYS:
        return exec_prekeys(s, o);
    case KURER__OP_TAKE:
        return exec_take(s, o);
    case KURER__OP_CRL:
        return exec_crl(s, o);
    case KURER__OP_INVITE:
        return kurer__sq_exec_invite(s->db, o);
    case KURER__OP_BLOB:
        return kurer__sq_exec_blob(s->db, o);
    case KURER__OP_FETCH:
    case KURER__OP_COUNT:
    case KURER__OP_BACKUP:
        break; /* reads run after the commit */
    }
    return 0;
}

/* One round in one transaction; reads after its commit. */
static void run_round(sq_store *s, op *round)
{
    uint64_t t0 = kurer_time_mono_ns(), count = 0;
    int txrc =
        sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : KURER_ESTORAGE;
    int epoch = !s->epoch_saved; /* not recorded at open (a full disk): with this commit */
    if (txrc == 0 && epoch)
        txrc = epoch_write(s);
    for (op *o = round; o != NULL && txrc == 0; o = o->next, count++)
        o->err = exec_one(s, o);
    /* The cause is read right after the failing statement: a ROLLBACK would overwrite it with
     * its own message ("no transaction is active" after a failed COMMIT). */
    char cause[160] = "";
    if (txrc != 0)
        snprintf(cause, sizeof(cause), "begin: %s", sqlite3_errmsg(s->db));
    if (txrc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(cause, sizeof(cause), "%s", sqlite3_errmsg(s->db));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        txrc = KURER_ESTORAGE;
    }
    if (txrc == 0 && epoch)
        s->epoch_saved = 1;
    if (txrc != 0) {
        kurer_log(KURER_LOG_ERROR, "store", "commit_failed",
                  (kurer_log_field[]){KURER_LOG_STR("error", cause)}, 1);
        for (op *o = round; o != NULL; o = o->next)
            if (o->kind != KURER__OP_FETCH && o->kind != KURER__OP_COUNT)
                o->err = txrc;
    }
    /* Reads see the round's writes once they are committed, and only then: a read never hands
     * out a row that a failed commit took back, and a failed write (a full disk) never fails
     * the reads that came with it. */
    for (op *o = round; o != NULL; o = o->next)
        if (o->kind == KURER__OP_FETCH)
            o->err = exec_fetch(s, o);
        else if (o->kind == KURER__OP_COUNT)
            o->err = exec_count(s, o);
        else if (o->kind == KURER__OP_BACKUP)
            o->err = kurer__sqlite_export(s->db, (const char *)o->blob);
    kurer__storeq_finish(&s->q, round, count, (kurer_time_mono_ns() - t0) / 1000);
}

/* The writer: takes everything submitted, runs it in one transaction, commits, hands the
 * completions to the loop. What arrives meanwhile waits for the next round. */
static void *writer(void *arg)
{
    sq_store *s = arg;
    for (;;) {
        int stop = 0;
        op *round = kurer__storeq_next(&s->q, &stop);
        if (stop)
            break;
        if (round != NULL)
            run_round(s, round);
    }
    return NULL;
}

/* ---- seqs --------------------------------------------------------------------------------- */

static seq_ctr *seq_find(sq_store *s, const kurer_device_address *d, uint64_t h)
{
    for (hnode *n = htab_first(&s->seqs, h); n != NULL; n = htab_next(n, h)) {
        seq_ctr *c = HTAB_ENTRY(n, seq_ctr, node);
        if (c->dev.device_id == d->device_id && strcmp(c->dev.user, d->user) == 0)
            return c;
    }
    return NULL;
}

static seq_ctr *seq_get(sq_store *s, const kurer_device_address *d)
{
    uint64_t h = htab_hash_dev(&s->seqs, d->user, d->device_id);
    seq_ctr *c = seq_find(s, d, h);
    if (c != NULL)
        return c;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    c->dev = *d;
    c->last = s->epoch << EPOCH_SHIFT;
    c->all = s->all_seqs;
    s->all_seqs = c;
    htab_insert(&s->seqs, &c->node, h);
    return c;
}

/* Raises the epoch (at open, before the writer runs): the write that tells whether the store
 * takes writes. On a full disk the store serves all the same, with the epoch kept in memory
 * until a commit can record it. */
static int epoch_start(sq_store *s)
{
    sqlite3_stmt *st = NULL;
    int r = SQLITE_ERROR;
    if (sqlite3_prepare_v2(s->db, "SELECT ifnull((SELECT v FROM meta WHERE k='seq_epoch'), 0)", -1,
                           &st, NULL) == SQLITE_OK)
        r = sqlite3_step(st);
    s->epoch = r == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) + 1 : 0;
    sqlite3_finalize(st);
    if (r != SQLITE_ROW || s->epoch >= ((uint64_t)1 << (63 - EPOCH_SHIFT)))
        return KURER_ESTORAGE;
    int ok = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
             epoch_write(s) == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    if (!ok) {
        kurer_log(KURER_LOG_WARN, "store", "seq_epoch_failed",
                  (kurer_log_field[]){KURER_LOG_STR("error", sqlite3_errmsg(s->db))}, 1);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    s->epoch_saved = ok;
    return 0;
}

static void seqs_free(sq_store *s)
{
    for (seq_ctr *c = s->all_seqs, *next; c != NULL; c = next) {
        next = c->all;
        free(c);
    }
    s->all_seqs = NULL;
    htab_free(&s->seqs);
}

/* Seqs at submission: the device's next, in item order (loop thread). */
static int put_op(sq_store *s, op *o, const kurer_store_put_req *req)
{
    for (size_t i = 0; i < o->n; i++) {
        seq_ctr *c = seq_get(s, &o->items[i].to);
        if (c == NULL) {
            kurer__op_free(o); /* counters already advanced only leave a gap */
            return KURER_ENOMEM;
        }
        o->prev[i] = c->last;
        o->seqs[i] = ++c->last;
    }
    if (!s->epoch_saved) {
        o->seqs_cb = req->on_seqs; /* after the commit (see epoch_saved) */
        kurer__storeq_submit(&s->q, o);
        return 0;
    }
    kurer__storeq_submit(&s->q, o);
    /* o stays alive until its completion runs on this thread, after we return */
    if (req->on_seqs != NULL)
        req->on_seqs(req->arg, o->seqs, o->prev, o->n);
    return 0;
}

static int sq_put(kurer_store *base, const kurer_store_put_req *req)
{
    op *o = kurer__storeq_put_new(req);
    return o != NULL ? put_op((sq_store *)base, o, req) : KURER_ENOMEM;
}

static int sq_put_fanout(kurer_store *base, const kurer_store_put_req *req, const uint8_t *shared,
                         size_t shared_len)
{
    if (shared == NULL || shared_len == 0 || shared_len > KURER_FRAME_MAX)
        return KURER_EINVAL;
    op *o = kurer__storeq_fanout_new(req, shared, shared_len);
    return o != NULL ? put_op((sq_store *)base, o, req) : KURER_ENOMEM;
}

/* The device's counter as the fetch is submitted: every put submitted before it (all of its
 * seqs up to there) is written or settled before the fetch reads (held puts are flushed). */
static int sq_fetch(kurer_store *base, const kurer_device_address *dev, uint64_t after,
                    size_t limit, kurer_store_fetch_cb cb, void *arg)
{
    sq_store *s = (sq_store *)base;
    op *o = kurer__storeq_fetch_new(dev, after, limit, cb, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    seq_ctr *c = seq_find(s, dev, htab_hash_dev(&s->seqs, dev->user, dev->device_id));
    o->high = c != NULL ? c->last : s->epoch << EPOCH_SHIFT;
    kurer__storeq_submit(&s->q, o);
    return 0;
}

/* ---- open and close ----------------------------------------------------------------------- */

static void finalize_stmts(sq_store *s)
{
    sqlite3_finalize(s->st_count);
    sqlite3_finalize(s->st_count_sender);
    sqlite3_finalize(s->st_insert);
    sqlite3_finalize(s->st_delete);
    sqlite3_finalize(s->st_fetch);
    kurer__sq_fanout_finalize(&s->fo);
    s->st_count = s->st_count_sender = s->st_insert = s->st_delete = s->st_fetch = NULL;
}

static int prepare_stmts(sq_store *s)
{
    static const char *const q[] = {
        "SELECT count(*) FROM mailbox WHERE user=?1 AND device=?2",
        "SELECT count(*) FROM mailbox WHERE user=?1 AND device=?2 AND sender=?3",
        "INSERT INTO mailbox(seq, user, device, env, sender) VALUES(?1, ?2, ?3, ?4, ?5)",
        "DELETE FROM mailbox WHERE seq=?1 AND user=?2 AND device=?3",
        "SELECT seq, env FROM mailbox WHERE user=?1 AND device=?2 AND seq>?3 ORDER BY seq LIMIT ?4",
    };
    sqlite3_stmt **st[] = {&s->st_count, &s->st_count_sender, &s->st_insert, &s->st_delete,
                           &s->st_fetch};
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
        if (sqlite3_prepare_v2(s->db, q[i], -1, st[i], NULL) != SQLITE_OK)
            return KURER_ESTORAGE;
    return kurer__sq_fanout_prepare(s->db, &s->fo);
}

/* The connection: SQLCipher, the key, exclusive locking, WAL, the schema. */
static int open_db(sq_store *s, const char *path, const uint8_t key[32])
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        return KURER_ESTORAGE;
    /* SQLCipher, not plain SQLite: plain SQLite answers nothing to cipher_version. */
    int cipher = sqlite3_prepare_v2(s->db, "PRAGMA cipher_version", -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL &&
                 sqlite3_column_text(st, 0)[0] != '\0';
    sqlite3_finalize(st);
    if (!cipher)
        return KURER_ELINKAGE;
    if ((rc = kurer__sqlite_apply_key(s->db, key)) != 0)
        return rc;
    /* One process holds the store (the relay folder's lock): exclusive locking keeps the WAL
     * index in the process's memory instead of a -shm file, so no other process can read the
     * database while the relay runs, and a relay can start on a full disk (there is no file to
     * create before the first read). Set before the first access. */
    if (sqlite3_exec(s->db, "PRAGMA locking_mode=EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK)
        return KURER_ESTORAGE;
    /* PRAGMA key never fails by itself: a wrong key shows on the first read. */
    int r = sqlite3_exec(s->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (r == SQLITE_NOTADB)
        return KURER_EPASSPHRASE;
    if (r != SQLITE_OK || sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                                       NULL, NULL, NULL) != SQLITE_OK)
        return KURER_ESTORAGE;
    if ((rc = kurer__sqlite_migrate(s->db)) != 0)
        return rc;
    return prepare_stmts(s);
}

static void sq_close(kurer_store *base);
static const kurer_store_ops sqlite_ops;

int kurer_store_open_sqlite(kurer_store **out, uv_loop_t *loop, const char *path,
                            const uint8_t key[32])
{
    *out = NULL;
    sq_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return KURER_ENOMEM;
    s->base.ops = &sqlite_ops;
    s->base.q = &s->q;
    int rc = htab_init(&s->seqs);
    if (rc == 0)
        rc = open_db(s, path, key);
    if (rc == 0)
        rc = epoch_start(s);
    int queue = rc == 0; /* the queue is initialised (and so frees s) */
    if (queue && (rc = kurer__storeq_init(&s->q, &s->base, loop)) == 0 &&
        pthread_create(&s->thread, NULL, writer, s) != 0)
        rc = KURER_ESTORAGE;
    if (rc == 0) {
        *out = &s->base;
        return 0;
    }
    if (rc == KURER_ESTORAGE && s->db != NULL)
        kurer_log(KURER_LOG_ERROR, "store", "open_failed",
                  (kurer_log_field[]){KURER_LOG_STR("error", sqlite3_errmsg(s->db))}, 1);
    finalize_stmts(s);
    sqlite3_close(s->db);
    seqs_free(s);
    if (queue)
        kurer__storeq_release(&s->q); /* frees s, now or when the loop runs */
    else
        free(s);
    return rc;
}

static void sq_close(kurer_store *base)
{
    sq_store *s = (sq_store *)base;
    kurer__storeq_stop(&s->q);
    pthread_join(s->thread, NULL);
    kurer__storeq_run_completions(&s->q);
    finalize_stmts(s);
    sqlite3_close(s->db);
    seqs_free(s);
    kurer__storeq_release(&s->q);
}

/* ---- start-up loaders (blocking, on the loop thread, the writer kept off the connection) --- */

static int sq_load_directory(kurer_store *base, kurer_store_device_cb cb, void *arg)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    int r = SQLITE_ERROR;
    kurer__storeq_exclusive_begin(&s->q);
    if (sqlite3_prepare_v2(s->db, "SELECT user, device, serial, chain FROM devices", -1, &st,
                           NULL) == SQLITE_OK)
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            kurer_store_device d;
            memset(&d, 0, sizeof(d));
            const unsigned char *u = sqlite3_column_text(st, 0);
            if (u == NULL || strlen((const char *)u) > KURER_SUBJECT_MAX)
                continue;
            strcpy(d.addr.user, (const char *)u);
            d.addr.device_id = (uint32_t)sqlite3_column_int64(st, 1);
            d.serial = (uint64_t)sqlite3_column_int64(st, 2);
            d.chain = sqlite3_column_blob(st, 3);
            d.chain_len = (size_t)sqlite3_column_bytes(st, 3);
            cb(arg, &d);
        }
    sqlite3_finalize(st);
    kurer__storeq_exclusive_end(&s->q);
    return r == SQLITE_DONE ? 0 : KURER_ESTORAGE;
}

static int sq_load_crls(kurer_store *base, kurer_store_crl_cb cb, void *arg)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    int r = SQLITE_ERROR;
    kurer__storeq_exclusive_begin(&s->q);
    if (sqlite3_prepare_v2(s->db, "SELECT list FROM crls ORDER BY issuer_key_id", -1, &st, NULL) ==
        SQLITE_OK)
        while ((r = sqlite3_step(st)) == SQLITE_ROW)
            cb(arg, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    kurer__storeq_exclusive_end(&s->q);
    return r == SQLITE_DONE ? 0 : KURER_ESTORAGE;
}

/* Whether the store takes writes: the open could record the epoch, and the file system has
 * room for an envelope (a write of a few pages may still fit in the slack of a file's last
 * blocks on a full disk, and tells little). */
static int sq_probe(kurer_store *base)
{
    sq_store *s = (sq_store *)base;
    struct statvfs fs;
    const char *path = sqlite3_db_filename(s->db, "main");
    if (!s->epoch_saved)
        return KURER_ESTORAGE;
    if (path != NULL && path[0] != '\0' && statvfs(path, &fs) == 0 &&
        (uint64_t)fs.f_bavail * fs.f_frsize < PROBE_ROOM)
        return KURER_ESTORAGE;
    return 0;
}

static const kurer_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .probe = sq_probe,
    .load_directory = sq_load_directory,
    .load_crls = sq_load_crls,
    .put = sq_put,
    .put_fanout = sq_put_fanout,
    .fetch = sq_fetch,
    .ack = kurer__storeq_ack,
    .put_device = kurer__storeq_put_device,
    .put_prekeys = kurer__storeq_put_prekeys,
    .take_prekeys = kurer__storeq_take_prekeys,
    .count_prekeys = kurer__storeq_count_prekeys,
    .put_crl = kurer__storeq_put_crl,
    .invite = kurer__storeq_invite,
    .blob = kurer__storeq_blob,
    .backup = kurer__storeq_backup,
    .set_commit_delay = kurer__storeq_set_commit_delay,
    .get_stats = kurer__storeq_get_stats,
};
