/* The sqlite (SQLCipher) backend of the relay store: one writer thread with group commit. */
#include "store.h"
#include "store_sqlite.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"

enum op_kind {
    OP_PUT = 1,
    OP_FETCH,
    OP_ACK,
    OP_DEVICE,
    OP_PREKEYS,
    OP_TAKE,
    OP_COUNT,
    OP_CRL,
    OP_RESERVE
};

typedef struct op {
    struct op *next;
    enum op_kind kind;
    uint64_t submitted_ns;
    uint64_t hold_until_ns; /* OP_PUT: may be held out of transactions until then (0: not) */
    void *arg;
    union {
        kurer_store_put_cb put;
        kurer_store_fetch_cb fetch;
        kurer_store_done_cb done;
        kurer_store_count_cb count;
        kurer_store_bundles_cb bundles;
    } cb;
    int err;
    /* inputs */
    kurer_device_address dev;
    kurer_store_item *items; /* OP_PUT: copies, bytes in blob */
    size_t n;
    uint64_t after, limit, mailbox_max, sender_max, serial;
    uint64_t *seqs;  /* OP_PUT out, OP_ACK in */
    uint8_t *skip;   /* OP_PUT, OP_ACK: per item, cancelled against its pair in the batch */
    size_t n_cancel; /* OP_PUT: items not written */
    uint8_t *blob;   /* OP_DEVICE chain */
    size_t blob_len;
    /* OP_FETCH out */
    kurer_store_row *rows;
    size_t n_rows;
    uint64_t total;
    /* OP_PREKEYS in (one_time copied into otk) */
    kurer_store_prekeys pk;
    kurer_one_time_prekey *otk;
    /* OP_TAKE in (devs, n) and out */
    kurer_device_address *devs;
    kurer_store_bundle *bundles;
    size_t n_bundles;
    /* OP_CRL in */
    uint8_t key_id[32];
} op;

struct kurer_store {
    sqlite3 *db;
    uv_loop_t *loop;
    uv_async_t async;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    op *in_head, **in_tail;     /* submitted */
    op *done_head, **done_tail; /* completed, for the loop */
    op *held_head, **held_tail; /* puts waiting for their acks (writer thread only) */
    uint64_t stat_held;         /* puts ever held; how many of them were never written */
    uint64_t stat_held_cancelled;
    int stopping;
    int writing;   /* the writer holds the connection (a batch is running) */
    int exclusive; /* a start-up loader holds the connection: the writer waits */
    uint64_t commit_delay_ns;
    kurer_store_stats stats;
    /* statements of the hot path, prepared once (writer thread only) */
    sqlite3_stmt *st_count, *st_count_sender, *st_insert, *st_delete, *st_fetch;
    /* puts refused (writer thread writes, stats readers on the loop read: _Atomic) */
    _Atomic uint64_t refused_full, refused_share;
};

static void op_free(op *o)
{
    if (o == NULL)
        return;
    if (o->items != NULL)
        free(o->items);
    free(o->seqs);
    free(o->skip);
    free(o->blob);
    free(o->rows);
    free(o->otk);
    free(o->devs);
    free(o->bundles);
    free(o);
}

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

static int count_rows(sqlite3_stmt *st, const kurer_store_item *it, int by_sender, uint64_t *count)
{
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, it->to.user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, it->to.device_id);
    if (by_sender)
        sqlite3_bind_text(st, 3, it->from.user, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    *count = r == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return r == SQLITE_ROW ? 0 : KURER_ESTORAGE;
}

static int exec_put(kurer_store *s, op *o)
{
    sqlite3_stmt *ins = s->st_insert;
    int rc = KURER_ESTORAGE;
    for (size_t i = 0; i < o->n; i++) {
        uint64_t count;
        if (o->skip[i])
            continue; /* delivered and acked already: never in the mailbox */
        if (o->mailbox_max > 0) {
            if (count_rows(s->st_count, &o->items[i], 0, &count) != 0)
                goto out;
            if (over(o, i, count, o->mailbox_max, 0)) {
                s->refused_full++;
                rc = KURER_ELIMIT;
                goto out;
            }
        }
        /* Each sender (user) has a share of the mailbox: one cannot fill it for everyone. */
        if (o->sender_max > 0) {
            if (count_rows(s->st_count_sender, &o->items[i], 1, &count) != 0)
                goto out;
            if (over(o, i, count, o->sender_max, 1)) {
                s->refused_share++;
                rc = KURER_ELIMIT;
                goto out;
            }
        }
    }
    sqlite3_exec(s->db, "SAVEPOINT put", NULL, NULL, NULL);
    for (size_t i = 0; i < o->n; i++) {
        o->seqs[i] = o->items[i].seq;
        if (o->skip[i])
            continue;
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)o->items[i].seq);
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

static int exec_fetch(kurer_store *s, op *o)
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
out:
    sqlite3_reset(st);
    return rc;
}

static int exec_ack(kurer_store *s, op *o)
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
    }
    rc = 0;
out:
    sqlite3_reset(st);
    return rc;
}

static int exec_reserve(kurer_store *s, op *o)
{
    sqlite3_stmt *st = NULL;
    int rc = KURER_ESTORAGE;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO meta SELECT 'seq_reserved', max(?1, "
                           "ifnull((SELECT v FROM meta WHERE k='seq_reserved'), 0))",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)o->after);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : KURER_ESTORAGE;
out:
    sqlite3_finalize(st);
    return rc;
}

typedef struct ack_ref {
    uint64_t seq;
    op *o;
    size_t i;
} ack_ref;

static int cmp_ack_ref(const void *a, const void *b)
{
    uint64_t x = ((const ack_ref *)a)->seq, y = ((const ack_ref *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Puts and acks of one batch (held puts first) that name the same (device, seq) cancel:
 * neither is executed. A put always precedes the ack of its envelope (the relay delivers only
 * after submitting it), so only acks later in the batch are looked at. */
static void pair_batch(op *batch)
{
    size_t n = 0, k = 0;
    int have_put = 0;
    for (op *o = batch; o != NULL; o = o->next) {
        if (o->kind == OP_ACK && have_put)
            n += o->n;
        else if (o->kind == OP_PUT)
            have_put = 1;
    }
    if (n == 0)
        return;
    ack_ref *refs = malloc(n * sizeof(*refs));
    if (refs == NULL)
        /* Out of memory: the acks run as plain deletes. Nothing is lost, but an ack that should
         * have cancelled a held put deletes nothing, the put is written later and that envelope
         * is delivered again (the recipient drops it by envelope id). */
        return;
    have_put = 0;
    for (op *o = batch; o != NULL; o = o->next) {
        if (o->kind == OP_ACK && have_put)
            for (size_t i = 0; i < o->n; i++)
                refs[k++] = (ack_ref){o->seqs[i], o, i};
        else if (o->kind == OP_PUT)
            have_put = 1;
    }
    qsort(refs, n, sizeof(*refs), cmp_ack_ref);
    for (op *o = batch; o != NULL; o = o->next) {
        if (o->kind != OP_PUT)
            continue;
        for (size_t i = 0; i < o->n; i++) {
            if (o->skip[i])
                continue; /* a held put's item cancelled in an earlier round */
            ack_ref key = {o->items[i].seq, NULL, 0};
            ack_ref *a = bsearch(&key, refs, n, sizeof(*refs), cmp_ack_ref);
            if (a == NULL)
                continue;
            /* equal seqs sit together: find one of this device not yet used */
            while (a > refs && a[-1].seq == key.seq)
                a--;
            for (; a < refs + n && a->seq == key.seq; a++) {
                if (a->o->skip[a->i] || a->o->dev.device_id != o->items[i].to.device_id ||
                    strcmp(a->o->dev.user, o->items[i].to.user) != 0)
                    continue;
                a->o->skip[a->i] = 1;
                o->skip[i] = 1;
                o->n_cancel++;
                break;
            }
        }
    }
    free(refs);
}

static int exec_device(kurer_store *s, op *o)
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
out:
    sqlite3_finalize(st);
    return rc;
}

static int count_otk(kurer_store *s, const kurer_device_address *d, uint64_t *out)
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

static int exec_prekeys(kurer_store *s, op *o)
{
    sqlite3_stmt *spk = NULL, *otk = NULL;
    const kurer_signed_prekey *p = &o->pk.signed_prekey;
    int rc = KURER_ESTORAGE;
    if (sqlite3_prepare_v2(
            s->db, "INSERT OR REPLACE INTO prekey_devices VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1,
            &spk, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO one_time_prekeys VALUES(?1, ?2, ?3, ?4)",
                           -1, &otk, NULL) != SQLITE_OK)
        goto out;
    sqlite3_exec(s->db, "SAVEPOINT pk", NULL, NULL, NULL);
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
static int exec_take(kurer_store *s, op *o)
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

static int exec_count(kurer_store *s, op *o)
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

static int exec_crl(kurer_store *s, op *o)
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

/* Hands ops to the loop (s->mu held). */
static void complete_locked(kurer_store *s, op *o)
{
    o->next = NULL;
    *s->done_tail = o;
    s->done_tail = &o->next;
}

/* True if every item of o (a put or an ack) was cancelled against its pair. */
static int all_skipped(const op *o)
{
    for (size_t i = 0; i < o->n; i++)
        if (!o->skip[i])
            return 0;
    return 1;
}

/* Builds the work of one round from the held puts and the new batch (both in submission
 * order). Puts and acks that pair are cancelled; what needs no write is completed at once
 * (into *done): a held put all of whose acks came, an ack that only cancelled. Held puts stay
 * held until their time is up, unless a fetch in the batch (or the close) needs the mailboxes
 * complete: then they run first. Returns the ops to execute, in order. */
static op *plan_round(kurer_store *s, op *batch, int flush, op **done)
{
    uint64_t now = kurer_time_mono_ns();
    op *held = s->held_head;
    s->held_head = NULL;
    s->held_tail = &s->held_head;
    /* new holdable puts join the held list (they precede their acks: submitted first) */
    op *rest = NULL, **rt = &rest;
    op **ht = &held;
    while (*ht != NULL)
        ht = &(*ht)->next;
    for (op *o = batch, *next; o != NULL; o = next) {
        next = o->next;
        o->next = NULL;
        if (o->kind == OP_FETCH)
            flush = 1;
        if (o->kind == OP_PUT && o->hold_until_ns != 0) {
            s->stat_held++;
            *ht = o;
            ht = &o->next;
        } else {
            *rt = o;
            rt = &o->next;
        }
    }
    /* pair over held + rest */
    *ht = rest;
    pair_batch(held);
    op *work = NULL, **wt = &work;
    op *later = NULL, **lt = &later;
    *done = NULL;
    op **dt = done;
    for (op *o = held, *next; o != NULL; o = next) {
        next = o->next;
        o->next = NULL;
        if (o->kind == OP_PUT && o->hold_until_ns != 0 && all_skipped(o)) {
            s->stat_held_cancelled++;
            *dt = o; /* never written: done, no commit needed */
            dt = &o->next;
        } else if (o->kind == OP_ACK && all_skipped(o)) {
            *dt = o; /* deletes nothing that was ever written */
            dt = &o->next;
        } else if (o->kind == OP_PUT && o->hold_until_ns != 0 && !flush && now < o->hold_until_ns) {
            *lt = o; /* keeps waiting for its acks */
            lt = &o->next;
        } else {
            *wt = o;
            wt = &o->next;
        }
    }
    s->held_head = later;
    s->held_tail = later != NULL ? lt : &s->held_head;
    return work;
}

/* The writer: takes everything submitted, runs it in one transaction, commits, hands the
 * completions to the loop. What arrives meanwhile waits for the next round. */
static void *writer(void *arg)
{
    kurer_store *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        for (;;) {
            if (s->stopping || (!s->exclusive && s->in_head != NULL))
                break;
            if (!s->exclusive && s->held_head != NULL) {
                uint64_t due = s->held_head->hold_until_ns, now = kurer_time_mono_ns();
                if (now >= due)
                    break;
                /* the first held put is the oldest: wake when its time is up */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                uint64_t abs =
                    (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + (due - now);
                ts.tv_sec = (time_t)(abs / 1000000000u);
                ts.tv_nsec = (long)(abs % 1000000000u);
                pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            } else {
                pthread_cond_wait(&s->cv, &s->mu);
            }
        }
        /* Commit delay: let the oldest op wait a little for company, and for the acks that
         * cancel puts delivered in the meantime. */
        while (s->in_head != NULL && !s->stopping && s->commit_delay_ns > 0) {
            uint64_t due = s->in_head->submitted_ns + s->commit_delay_ns,
                     now = kurer_time_mono_ns();
            if (now >= due)
                break;
            pthread_mutex_unlock(&s->mu);
            struct timespec ts = {0, (long)(due - now)};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&s->mu);
        }
        op *batch = s->exclusive ? NULL : s->in_head;
        if (batch != NULL) {
            s->in_head = NULL;
            s->in_tail = &s->in_head;
        }
        int stop = s->stopping && batch == NULL && s->held_head == NULL;
        int go = !s->exclusive && (batch != NULL || s->held_head != NULL);
        if (go)
            s->writing = 1;
        int flush = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        if (!go)
            continue; /* a start-up loader took the connection during the delay */
        op *done = NULL;
        batch = plan_round(s, batch, flush, &done);
        if (done != NULL) {
            pthread_mutex_lock(&s->mu);
            for (op *o = done, *next; o != NULL; o = next) {
                next = o->next;
                complete_locked(s, o);
            }
            pthread_mutex_unlock(&s->mu);
            uv_async_send(&s->async);
        }
        if (batch == NULL) {
            pthread_mutex_lock(&s->mu);
            s->writing = 0;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        uint64_t t0 = kurer_time_mono_ns();
        uint64_t count = 0;
        int txrc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
                       ? 0
                       : KURER_ESTORAGE;
        for (op *o = batch; o != NULL && txrc == 0; o = o->next) {
            count++;
            switch (o->kind) {
            case OP_PUT:
                o->err = exec_put(s, o);
                break;
            case OP_FETCH:
            case OP_COUNT:
                break; /* reads run after the commit (below) */
            case OP_ACK:
                o->err = exec_ack(s, o);
                break;
            case OP_DEVICE:
                o->err = exec_device(s, o);
                break;
            case OP_PREKEYS:
                o->err = exec_prekeys(s, o);
                break;
            case OP_TAKE:
                o->err = exec_take(s, o);
                break;
            case OP_CRL:
                o->err = exec_crl(s, o);
                break;
            case OP_RESERVE:
                o->err = exec_reserve(s, o);
                break;
            }
        }
        /* The cause is read right after the failing statement: a ROLLBACK would overwrite it
         * with its own message ("no transaction is active" after a failed COMMIT). */
        char cause[160] = "";
        if (txrc != 0)
            snprintf(cause, sizeof(cause), "begin: %s", sqlite3_errmsg(s->db));
        if (txrc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(cause, sizeof(cause), "%s", sqlite3_errmsg(s->db));
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            txrc = KURER_ESTORAGE;
        }
        if (txrc != 0) {
            kurer_log(KURER_LOG_ERROR, "store", "commit_failed",
                      (kurer_log_field[]){KURER_LOG_STR("error", cause)}, 1);
            for (op *o = batch; o != NULL; o = o->next)
                if (o->kind != OP_FETCH && o->kind != OP_COUNT)
                    o->err = txrc;
        }
        /* Reads see the batch's writes once they are committed, and only then: a read never
         * hands out a row that a failed commit took back, and a failed write (a full disk)
         * never fails the reads that came with it. */
        for (op *o = batch; o != NULL; o = o->next)
            if (o->kind == OP_FETCH)
                o->err = exec_fetch(s, o);
            else if (o->kind == OP_COUNT)
                o->err = exec_count(s, o);
        pthread_mutex_lock(&s->mu);
        s->writing = 0;
        pthread_cond_broadcast(&s->cv); /* a loader may be waiting for the connection */
        s->stats.commits++;
        s->stats.last_batch = count;
        s->stats.last_commit_us = (kurer_time_mono_ns() - t0) / 1000;
        for (op *o = batch, *next; o != NULL; o = next) {
            next = o->next;
            complete_locked(s, o);
        }
        pthread_mutex_unlock(&s->mu);
        uv_async_send(&s->async);
    }
    return NULL;
}

static void run_completions(kurer_store *s)
{
    pthread_mutex_lock(&s->mu);
    op *list = s->done_head;
    s->done_head = NULL;
    s->done_tail = &s->done_head;
    pthread_mutex_unlock(&s->mu);
    for (op *o = list, *next; o != NULL; o = next) {
        next = o->next;
        switch (o->kind) {
        case OP_PUT:
            o->cb.put(o->arg, o->err, o->err == 0 ? o->seqs : NULL, o->err == 0 ? o->n : 0,
                      o->err == 0 ? o->n_cancel : 0);
            break;
        case OP_FETCH:
            o->cb.fetch(o->arg, o->err, o->rows, o->n_rows, o->total);
            for (size_t i = 0; i < o->n_rows; i++)
                free((void *)o->rows[i].env);
            break;
        case OP_PREKEYS:
        case OP_COUNT:
            o->cb.count(o->arg, o->err, o->err == 0 ? o->total : 0);
            break;
        case OP_TAKE:
            o->cb.bundles(o->arg, o->err, o->err == 0 ? o->bundles : NULL,
                          o->err == 0 ? o->n_bundles : 0);
            break;
        case OP_ACK:
        case OP_DEVICE:
        case OP_CRL:
        case OP_RESERVE:
            if (o->cb.done != NULL)
                o->cb.done(o->arg, o->err);
            break;
        }
        pthread_mutex_lock(&s->mu);
        s->stats.queued_ops--;
        pthread_mutex_unlock(&s->mu);
        op_free(o);
    }
}

static void on_async(uv_async_t *a)
{
    run_completions(a->data);
}

static void submit(kurer_store *s, op *o)
{
    o->submitted_ns = kurer_time_mono_ns();
    pthread_mutex_lock(&s->mu);
    *s->in_tail = o;
    s->in_tail = &o->next;
    s->stats.queued_ops++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void finalize_stmts(kurer_store *s)
{
    sqlite3_finalize(s->st_count);
    sqlite3_finalize(s->st_count_sender);
    sqlite3_finalize(s->st_insert);
    sqlite3_finalize(s->st_delete);
    sqlite3_finalize(s->st_fetch);
    s->st_count = s->st_count_sender = s->st_insert = s->st_delete = s->st_fetch = NULL;
}

static void free_self(uv_handle_t *h);

int kurer_store_open(kurer_store **out, uv_loop_t *loop, const char *path, const uint8_t key[32])
{
    int async_open = 0; /* the uv_async handle is initialised (and so the loop's to close) */
    sqlite3_stmt *st = NULL;
    int rc = KURER_ESTORAGE;
    *out = NULL;
    kurer_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return KURER_ENOMEM;
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        goto fail;
    /* SQLCipher, not plain SQLite: plain SQLite answers nothing to cipher_version. */
    if (sqlite3_prepare_v2(s->db, "PRAGMA cipher_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW || sqlite3_column_text(st, 0) == NULL ||
        sqlite3_column_text(st, 0)[0] == '\0') {
        rc = KURER_ELINKAGE;
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = kurer__sqlite_apply_key(s->db, key)) != 0)
        goto fail;
    rc = KURER_ESTORAGE;
    /* One process holds the store (the relay folder's lock): exclusive locking keeps the WAL
     * index in the process's memory instead of a -shm file, so no other process can read the
     * database while the relay runs, and a relay can start on a full disk (there is no file to
     * create before the first read). Set before the first access. */
    if (sqlite3_exec(s->db, "PRAGMA locking_mode=EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    /* PRAGMA key never fails by itself: a wrong key shows on the first read. */
    int r = sqlite3_exec(s->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (r == SQLITE_NOTADB) {
        rc = KURER_EPASSPHRASE;
        goto fail;
    }
    if (r != SQLITE_OK || sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                                       NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if ((rc = kurer__sqlite_migrate(s->db)) != 0)
        goto fail;
    rc = KURER_ESTORAGE;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM mailbox WHERE user=?1 AND device=?2", -1,
                           &s->st_count, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "SELECT count(*) FROM mailbox WHERE user=?1 AND device=?2 AND "
                           "sender=?3",
                           -1, &s->st_count_sender, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO mailbox(seq, user, device, env, sender) VALUES(?1, ?2, ?3, "
                           "?4, ?5)",
                           -1, &s->st_insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM mailbox WHERE seq=?1 AND user=?2 AND device=?3", -1,
                           &s->st_delete, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "SELECT seq, env FROM mailbox WHERE user=?1 AND device=?2 AND seq>?3 "
                           "ORDER BY seq LIMIT ?4",
                           -1, &s->st_fetch, NULL) != SQLITE_OK)
        goto fail;
    s->loop = loop;
    s->in_tail = &s->in_head;
    s->done_tail = &s->done_head;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (uv_async_init(loop, &s->async, on_async) != 0)
        goto fail_sync;
    s->async.data = s;
    async_open = 1;
    if (pthread_create(&s->thread, NULL, writer, s) != 0)
        goto fail_sync;
    *out = s;
    return 0;
fail_sync:
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
fail:
    if (rc == KURER_ESTORAGE && s->db != NULL)
        kurer_log(KURER_LOG_ERROR, "store", "open_failed",
                  (kurer_log_field[]){KURER_LOG_STR("error", sqlite3_errmsg(s->db))}, 1);
    sqlite3_finalize(st);
    finalize_stmts(s);
    sqlite3_close(s->db);
    s->db = NULL;
    /* The async handle belongs to the loop once initialised: s is freed by its close callback,
     * when the caller next runs the loop (never before: libuv still holds the handle). */
    if (async_open)
        uv_close((uv_handle_t *)&s->async, free_self);
    else
        free(s);
    return rc;
}

static void free_self(uv_handle_t *h)
{
    free(h->data);
}

void kurer_store_close(kurer_store *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    run_completions(s);
    finalize_stmts(s);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    uv_close((uv_handle_t *)&s->async, free_self);
}

/* The blocking start-up loaders use the writer's connection on the loop thread. They take it
 * only between batches and keep the writer off it meanwhile (what is submitted waits). */
static void exclusive_begin(kurer_store *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->writing)
        pthread_cond_wait(&s->cv, &s->mu);
    s->exclusive = 1;
    pthread_mutex_unlock(&s->mu);
}

static void exclusive_end(kurer_store *s)
{
    pthread_mutex_lock(&s->mu);
    s->exclusive = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int kurer_store_load_directory(kurer_store *s, kurer_store_device_cb cb, void *arg)
{
    sqlite3_stmt *st = NULL;
    int r = SQLITE_ERROR;
    exclusive_begin(s);
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
    exclusive_end(s);
    return r == SQLITE_DONE ? 0 : KURER_ESTORAGE;
}

static op *op_new(enum op_kind kind, void *arg)
{
    op *o = calloc(1, sizeof(*o));
    if (o != NULL) {
        o->kind = kind;
        o->arg = arg;
    }
    return o;
}

static int put(kurer_store *s, const kurer_store_item *items, size_t n,
               const kurer_store_limits *lim, uint64_t hold_us, kurer_store_put_cb cb, void *arg);

int kurer_store_put(kurer_store *s, const kurer_store_item *items, size_t n,
                    const kurer_store_limits *lim, kurer_store_put_cb cb, void *arg)
{
    return put(s, items, n, lim, 0, cb, arg);
}

int kurer_store_put_held(kurer_store *s, const kurer_store_item *items, size_t n,
                         const kurer_store_limits *lim, uint64_t hold_us, kurer_store_put_cb cb,
                         void *arg)
{
    return put(s, items, n, lim, hold_us, cb, arg);
}

static int put(kurer_store *s, const kurer_store_item *items, size_t n,
               const kurer_store_limits *lim, uint64_t hold_us, kurer_store_put_cb cb, void *arg)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += items[i].len;
    op *o = op_new(OP_PUT, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.put = cb;
    o->n = n;
    o->mailbox_max = lim != NULL ? lim->mailbox_max : 0;
    o->sender_max = lim != NULL ? lim->sender_max : 0;
    o->items = calloc(n ? n : 1, sizeof(*o->items));
    o->seqs = calloc(n ? n : 1, sizeof(*o->seqs));
    o->skip = calloc(n ? n : 1, 1);
    o->blob = malloc(bytes ? bytes : 1);
    if (o->items == NULL || o->seqs == NULL || o->skip == NULL || o->blob == NULL) {
        op_free(o);
        return KURER_ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        o->items[i] = items[i];
        memcpy(o->blob + off, items[i].env, items[i].len);
        o->items[i].env = o->blob + off;
        off += items[i].len;
    }
    if (hold_us > 0)
        o->hold_until_ns = kurer_time_mono_ns() + hold_us * 1000;
    submit(s, o);
    return 0;
}

int kurer_store_fetch(kurer_store *s, const kurer_device_address *dev, uint64_t after, size_t limit,
                      kurer_store_fetch_cb cb, void *arg)
{
    op *o = op_new(OP_FETCH, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.fetch = cb;
    o->dev = *dev;
    o->after = after;
    o->limit = limit;
    submit(s, o);
    return 0;
}

int kurer_store_ack(kurer_store *s, const kurer_device_address *dev, const uint64_t *seqs, size_t n,
                    kurer_store_done_cb cb, void *arg)
{
    op *o = op_new(OP_ACK, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.done = cb;
    o->dev = *dev;
    o->n = n;
    o->seqs = malloc((n ? n : 1) * sizeof(*seqs));
    o->skip = calloc(n ? n : 1, 1);
    if (o->seqs == NULL || o->skip == NULL) {
        op_free(o);
        return KURER_ENOMEM;
    }
    memcpy(o->seqs, seqs, n * sizeof(*seqs));
    submit(s, o);
    return 0;
}

static int seq_start(kurer_store *s, uint64_t block, uint64_t *next, uint64_t *limit);

int kurer_store_seq_start(kurer_store *s, uint64_t block, uint64_t *next, uint64_t *limit)
{
    /* At start-up; but the --crl files loaded before may have submitted their puts already, and
     * the writer may be running them on this connection: take it first. */
    exclusive_begin(s);
    int rc = seq_start(s, block, next, limit);
    exclusive_end(s);
    return rc;
}

static int seq_start(kurer_store *s, uint64_t block, uint64_t *next, uint64_t *limit)
{
    sqlite3_stmt *st = NULL;
    uint64_t top = 0;
    int rc = KURER_ESTORAGE;
    static const char *q[] = {
        "SELECT ifnull(max(seq), 0) FROM mailbox",
        "SELECT ifnull((SELECT seq FROM sqlite_sequence WHERE name='mailbox'), 0)",
        "SELECT ifnull((SELECT v FROM meta WHERE k='seq_reserved'), 0)",
    };
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        if (sqlite3_prepare_v2(s->db, q[i], -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            /* sqlite_sequence exists only once a row was inserted */
            if (i == 1) {
                st = NULL;
                continue;
            }
            return KURER_ESTORAGE;
        }
        uint64_t v = (uint64_t)sqlite3_column_int64(st, 0);
        if (v > top)
            top = v;
        sqlite3_finalize(st);
        st = NULL;
    }
    op o;
    memset(&o, 0, sizeof(o));
    o.after = top + block;
    /* Known from here on, whether or not the reservation can be written (a full disk). */
    *next = top + 1;
    *limit = top;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        rc = KURER_ESTORAGE;
    else
        rc = exec_reserve(s, &o);
    if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = KURER_ESTORAGE;
    if (rc != 0) {
        kurer_log(KURER_LOG_WARN, "store", "reserve_failed",
                  (kurer_log_field[]){KURER_LOG_STR("error", sqlite3_errmsg(s->db))}, 1);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    *limit = top + block;
    return 0;
}

int kurer_store_reserve_seqs(kurer_store *s, uint64_t upto, kurer_store_done_cb cb, void *arg)
{
    op *o = op_new(OP_RESERVE, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.done = cb;
    o->after = upto;
    submit(s, o);
    return 0;
}

int kurer_store_put_device(kurer_store *s, const kurer_store_device *d, kurer_store_done_cb cb,
                           void *arg)
{
    op *o = op_new(OP_DEVICE, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.done = cb;
    o->dev = d->addr;
    o->serial = d->serial;
    o->blob = malloc(d->chain_len ? d->chain_len : 1);
    if (o->blob == NULL) {
        op_free(o);
        return KURER_ENOMEM;
    }
    memcpy(o->blob, d->chain, d->chain_len);
    o->blob_len = d->chain_len;
    submit(s, o);
    return 0;
}

int kurer_store_put_prekeys(kurer_store *s, const kurer_store_prekeys *p, kurer_store_count_cb cb,
                            void *arg)
{
    op *o = op_new(OP_PREKEYS, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.count = cb;
    o->dev = p->dev;
    o->pk = *p;
    o->otk = malloc((p->n_one_time ? p->n_one_time : 1) * sizeof(*o->otk));
    if (o->otk == NULL) {
        op_free(o);
        return KURER_ENOMEM;
    }
    if (p->n_one_time > 0)
        memcpy(o->otk, p->one_time, p->n_one_time * sizeof(*o->otk));
    o->pk.one_time = NULL; /* the copy is o->otk */
    submit(s, o);
    return 0;
}

int kurer_store_take_prekeys(kurer_store *s, const kurer_device_address *devs, size_t n,
                             size_t n_one_time, kurer_store_bundles_cb cb, void *arg)
{
    if (n > KURER_USER_DEVICES_MAX)
        return KURER_ELIMIT;
    op *o = op_new(OP_TAKE, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.bundles = cb;
    o->n = n;
    o->limit = n_one_time;
    o->devs = malloc((n ? n : 1) * sizeof(*devs));
    if (o->devs == NULL) {
        op_free(o);
        return KURER_ENOMEM;
    }
    if (n > 0)
        memcpy(o->devs, devs, n * sizeof(*devs));
    submit(s, o);
    return 0;
}

int kurer_store_count_prekeys(kurer_store *s, const kurer_device_address *dev,
                              kurer_store_count_cb cb, void *arg)
{
    op *o = op_new(OP_COUNT, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.count = cb;
    o->dev = *dev;
    submit(s, o);
    return 0;
}

int kurer_store_load_crls(kurer_store *s, kurer_store_crl_cb cb, void *arg)
{
    sqlite3_stmt *st = NULL;
    int r = SQLITE_ERROR;
    exclusive_begin(s);
    if (sqlite3_prepare_v2(s->db, "SELECT list FROM crls ORDER BY issuer_key_id", -1, &st, NULL) ==
        SQLITE_OK)
        while ((r = sqlite3_step(st)) == SQLITE_ROW)
            cb(arg, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    exclusive_end(s);
    return r == SQLITE_DONE ? 0 : KURER_ESTORAGE;
}

int kurer_store_put_crl(kurer_store *s, const uint8_t issuer_key_id[32], uint64_t version,
                        const uint8_t *list, size_t len, kurer_store_done_cb cb, void *arg)
{
    op *o = op_new(OP_CRL, arg);
    if (o == NULL)
        return KURER_ENOMEM;
    o->cb.done = cb;
    memcpy(o->key_id, issuer_key_id, 32);
    o->after = version;
    o->blob = malloc(len ? len : 1);
    if (o->blob == NULL) {
        op_free(o);
        return KURER_ENOMEM;
    }
    memcpy(o->blob, list, len);
    o->blob_len = len;
    submit(s, o);
    return 0;
}

void kurer_store_set_commit_delay(kurer_store *s, uint64_t us)
{
    pthread_mutex_lock(&s->mu);
    s->commit_delay_ns = us * 1000;
    pthread_mutex_unlock(&s->mu);
}

void kurer_store_get_stats(kurer_store *s, kurer_store_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
    out->refused_full = s->refused_full;
    out->refused_share = s->refused_share;
}
