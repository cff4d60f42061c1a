/* The postgres backend's operations as SQL (store_pg.h): each write runs inside its round's
 * transaction, reads after its commit; prekey uploads and takes in steps (kurer__pg_step).
 * Parameters and results are binary; a device's user is a bytea (its bytes as the relay has them,
 * whatever their encoding). */
#include "store_pg.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/error.h"

typedef kurer__op op;

/* The seq: the device's counter row, incremented inside the storing transaction. Its row lock
 * is held until the commit, so another transaction (of this node or another) that stores for
 * the device waits for it: commit order is seq order per device, and a rollback takes the
 * increment back with the rows (no seq is handed out before the commit: store_pg.c). */
const char *const kurer__pg_sql[PG_N_STMTS] = {
    [PG_COUNT] = "SELECT count(*) FROM mailbox WHERE usr = $1 AND device = $2",
    [PG_COUNT_SENDER] =
        "SELECT count(*) FROM mailbox WHERE usr = $1 AND device = $2 AND sender = $3",
    [PG_PUT] = "WITH s AS (INSERT INTO device_seqs(usr, device, last) VALUES($1, $2, 1) "
               "ON CONFLICT (usr, device) DO UPDATE SET last = device_seqs.last + 1 "
               "RETURNING last) INSERT INTO mailbox(usr, device, seq, sender, env) "
               "SELECT $1, $2, last, $3, $4 FROM s RETURNING seq",
    /* a fan-out reference takes one off its payload's count (the row lock orders the acks of
     * several nodes); PG_DROP_PAYLOADS deletes those at 0 */
    [PG_DELETE] = "WITH d AS (DELETE FROM mailbox WHERE usr = $1 AND device = $2 AND seq = $3 "
                  "RETURNING payload) UPDATE fanout_payloads p SET refs = p.refs - 1 FROM d "
                  "WHERE p.id = d.payload",
    [PG_HIGH] = "SELECT coalesce((SELECT last FROM device_seqs WHERE usr = $1 AND device = $2), "
                "0), (SELECT count(*) FROM mailbox WHERE usr = $1 AND device = $2)",
    [PG_FETCH] = "SELECT m.seq, coalesce(p.env, m.env), (m.payload IS NOT NULL)::int::int8 FROM "
                 "mailbox m LEFT JOIN fanout_payloads p ON p.id = m.payload WHERE m.usr = $1 "
                 "AND m.device = $2 AND m.seq > $3 ORDER BY m.seq LIMIT $4",
    [PG_DEVICE] = "INSERT INTO devices(usr, device, serial, chain) VALUES($1, $2, $3, $4) "
                  "ON CONFLICT (usr, device) DO UPDATE SET serial = EXCLUDED.serial, "
                  "chain = EXCLUDED.chain",
    [PG_OTK_RETIRE] = "DELETE FROM one_time_prekeys WHERE usr = $1 AND device = $2 AND EXISTS "
                      "(SELECT 1 FROM prekey_devices WHERE usr = $1 AND device = $2 AND "
                      "registration_id <> $3)",
    [PG_SPK] = "INSERT INTO prekey_devices(usr, device, registration_id, spk_id, spk_pub, "
               "spk_sig, spk_created) VALUES($1, $2, $3, $4, $5, $6, $7) "
               "ON CONFLICT (usr, device) DO UPDATE SET registration_id = "
               "EXCLUDED.registration_id, spk_id = EXCLUDED.spk_id, spk_pub = EXCLUDED.spk_pub, "
               "spk_sig = EXCLUDED.spk_sig, spk_created = EXCLUDED.spk_created",
    [PG_OTK] = "INSERT INTO one_time_prekeys(usr, device, id, pub) VALUES($1, $2, $3, $4) "
               "ON CONFLICT (usr, device, id) DO UPDATE SET pub = EXCLUDED.pub",
    [PG_COUNT_OTK] = "SELECT count(*) FROM one_time_prekeys WHERE usr = $1 AND device = $2",
    [PG_GET_SPK] = "SELECT registration_id, spk_id, spk_pub, spk_sig, spk_created FROM "
                   "prekey_devices WHERE usr = $1 AND device = $2",
    /* Handed out once, also to several nodes at once: a prekey another transaction holds is
     * skipped, not waited for, and the one taken is gone when the transaction commits. Only
     * for a device with a signed prekey (a bundle), as the statement is queued with its
     * PG_GET_SPK, before that one's result is known. */
    [PG_TAKE_OTK] = "DELETE FROM one_time_prekeys WHERE (usr, device, id) = (SELECT usr, device, "
                    "id FROM one_time_prekeys WHERE usr = $1 AND device = $2 AND EXISTS (SELECT "
                    "1 FROM prekey_devices WHERE usr = $1 AND device = $2) ORDER BY id "
                    "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, pub",
    [PG_HAS_SPK] = "SELECT 1::int8 FROM prekey_devices WHERE usr = $1 AND device = $2",
    [PG_CRL] = "INSERT INTO crls(issuer_key_id, version, list) VALUES($1, $2, $3) "
               "ON CONFLICT (issuer_key_id) DO UPDATE SET version = EXCLUDED.version, "
               "list = EXCLUDED.list WHERE crls.version < EXCLUDED.version",
#define INV_COLS                                                                                   \
    "id, authority, usr, device, verifier, created_at, expires_at, failures, state, request, "     \
    "authority_mac, submitted_at, chain"
    [PG_INV_PUT] = "INSERT INTO invites(id, authority, usr, device, verifier, created_at, "
                   "expires_at, failures, state) VALUES($1, $2, $3, $4, $5, $6, $7, 0, $8) "
                   "ON CONFLICT (id) DO NOTHING",
    [PG_INV_GET] = "SELECT " INV_COLS " FROM invites WHERE id = $1",
    [PG_INV_SUBMIT] = "UPDATE invites SET state = 2, request = $2, authority_mac = $3, "
                      "submitted_at = $4 WHERE id = $1 AND state = 1",
    [PG_INV_FAIL] = "UPDATE invites SET failures = failures + 1 WHERE id = $1",
    [PG_INV_LIST] = "SELECT " INV_COLS " FROM invites WHERE authority = $1 AND state = 2 AND "
                    "id > $2 ORDER BY id LIMIT $3",
    [PG_INV_DECIDE] = "UPDATE invites SET state = $2, chain = $3 WHERE id = $1 AND state = 2",
    /* fan-out: the shared bytes once, then a mailbox row per device that names them (its env
     * empty), with the device's next seq as for PG_PUT */
    [PG_PAYLOAD] = "INSERT INTO fanout_payloads(id, sender, refs, env) VALUES($1, $2, $3, $4)",
    [PG_PUT_REF] = "WITH s AS (INSERT INTO device_seqs(usr, device, last) VALUES($1, $2, 1) "
                   "ON CONFLICT (usr, device) DO UPDATE SET last = device_seqs.last + 1 "
                   "RETURNING last) INSERT INTO mailbox(usr, device, seq, sender, env, payload) "
                   "SELECT $1, $2, last, $3, ''::bytea, $4 FROM s RETURNING seq",
    [PG_DROP_PAYLOADS] = "DELETE FROM fanout_payloads WHERE refs <= 0",
    [PG_BLOB_QUOTA] = "SELECT coalesce(sum(size), 0)::int8 FROM blobs WHERE usr = $1 AND "
                      "device = $2 AND expires_at > $3",
    [PG_BLOB_CREATE] = "INSERT INTO blobs(id, usr, device, size, received, complete, created_at, "
                       "expires_at) VALUES($1, $2, $3, $4, 0, 0, $5, $6) ON CONFLICT (id) DO "
                       "NOTHING",
    [PG_BLOB_LOAD] = "SELECT size, received, complete, expires_at, usr, device FROM blobs WHERE "
                     "id = $1 AND expires_at > $2 FOR UPDATE",
    [PG_BLOB_CHUNK] = "INSERT INTO blob_chunks(id, off, data) VALUES($1, $2, $3)",
    [PG_BLOB_GROW] = "UPDATE blobs SET received = received + $2 WHERE id = $1",
    [PG_BLOB_FINISH] = "UPDATE blobs SET complete = 1, expires_at = $2 WHERE id = $1",
    [PG_BLOB_READ] = "SELECT off, data FROM blob_chunks WHERE id = $1 AND off < $3 AND "
                     "off + octet_length(data) > $2 ORDER BY off",
    [PG_BLOB_SWEPT] = "SELECT count(*)::int8, coalesce(sum(received), 0)::int8 FROM blobs WHERE "
                      "expires_at <= $1",
    [PG_BLOB_SWEEP] = "DELETE FROM blobs WHERE expires_at <= $1",
    [PG_BLOB_LIVE] = "SELECT coalesce(sum(received), 0)::int8 FROM blobs",
};

static void p_dev(pg_params *p, const kurer_device_address *d)
{
    p->n = 0;
    kurer__pg_p_str(p, d->user);
    kurer__pg_p_i64(p, d->device_id);
}

/* One int8 in the first row of the k-th result: 0, KURER_ENOTFOUND (no row), KURER_ECORRUPT, or
 * KURER_ESTORAGE (the statement failed). */
static int one_i64(pg_conn *c, size_t k, int64_t *out)
{
    const PGresult *r = kurer__pg_res(c, k, PGRES_TUPLES_OK);
    if (r == NULL)
        return KURER_ESTORAGE;
    return PQntuples(r) < 1 ? KURER_ENOTFOUND : kurer__pg_i64(r, 0, 0, out);
}

/* An upload over the pool bound is taken back whole (a savepoint). Stage 0 queues it all with
 * the pool's count after it, stage 1 keeps or takes back, stage 2 ends. */
static int step_prekeys(pg_conn *c, op *o, int stage)
{
    const kurer_signed_prekey *k = &o->pk.signed_prekey;
    pg_params p;
    int64_t count;
    if (stage == 0) {
        (void)kurer__pg_send_sql(c, "SAVEPOINT pk");
        /* A device re-enrolled (a new home: another registration id) must not have the old
         * home's one-time prekeys handed out for it: nobody holds their private halves. */
        p_dev(&p, &o->dev);
        kurer__pg_p_i64(&p, o->pk.registration_id);
        (void)kurer__pg_send(c, PG_OTK_RETIRE, &p, o, 0, 0);
        p_dev(&p, &o->dev);
        kurer__pg_p_i64(&p, o->pk.registration_id);
        kurer__pg_p_i64(&p, k->id);
        kurer__pg_p_bytes(&p, k->public_key, KURER_PREKEY_PUBLIC_LEN);
        kurer__pg_p_bytes(&p, k->signature, KURER_PREKEY_SIG_LEN);
        kurer__pg_p_i64(&p, k->created_at);
        (void)kurer__pg_send(c, PG_SPK, &p, o, 0, 0);
        for (size_t i = 0; i < o->pk.n_one_time; i++) {
            p_dev(&p, &o->dev);
            kurer__pg_p_i64(&p, o->otk[i].id);
            kurer__pg_p_bytes(&p, o->otk[i].public_key, KURER_PREKEY_PUBLIC_LEN);
            (void)kurer__pg_send(c, PG_OTK, &p, o, 0, 0);
        }
        p_dev(&p, &o->dev);
        (void)kurer__pg_send(c, PG_COUNT_OTK, &p, o, 0, 0);
        return 1;
    }
    if (stage == 2)
        return kurer__pg_res(c, 0, PGRES_COMMAND_OK) != NULL ? 0 : KURER_ESTORAGE;
    if (c->n_done < 4) /* SAVEPOINT, RETIRE, SPK, the one-time prekeys, the count */
        return KURER_ESTORAGE;
    size_t last = c->n_done - 1;
    for (size_t i = 0; i < last; i++)
        if (kurer__pg_res(c, i, PGRES_COMMAND_OK) == NULL)
            return KURER_ESTORAGE;
    if (one_i64(c, last, &count) != 0)
        return KURER_ESTORAGE;
    o->total = (uint64_t)count;
    o->err = 0;
    if (o->pk.max_one_time > 0 && o->total > o->pk.max_one_time) {
        /* over the pool bound (ids already held are replaced, not added): nothing is kept */
        o->err = KURER_ELIMIT;
        (void)kurer__pg_send_sql(c, "ROLLBACK TO SAVEPOINT pk");
    } else {
        (void)kurer__pg_send_sql(c, "RELEASE SAVEPOINT pk");
    }
    return 2;
}

/* One device's bundle from its results at k (PG_GET_SPK, then PG_TAKE_OTK if one_time, then
 * PG_COUNT_OTK): 0, KURER_ENOTFOUND (never uploaded), KURER_ECORRUPT or KURER_ESTORAGE. */
static int take_one(pg_conn *c, size_t k, int one_time, kurer_store_bundle *b)
{
    int64_t v[3], count;
    const PGresult *r = kurer__pg_res(c, k, PGRES_TUPLES_OK);
    const PGresult *t = one_time ? kurer__pg_res(c, k + 1, PGRES_TUPLES_OK) : NULL;
    if (r == NULL || (one_time && t == NULL))
        return KURER_ESTORAGE;
    int rc = one_i64(c, k + 1 + (size_t)one_time, &count);
    if (rc == KURER_ESTORAGE || PQntuples(r) < 1)
        return rc == KURER_ESTORAGE ? rc : KURER_ENOTFOUND;
    if (rc != 0 || kurer__pg_i64(r, 0, 0, &v[0]) != 0 || kurer__pg_i64(r, 0, 1, &v[1]) != 0 ||
        kurer__pg_i64(r, 0, 4, &v[2]) != 0 ||
        kurer__pg_copy(r, 0, 2, b->signed_prekey.public_key, KURER_PREKEY_PUBLIC_LEN) != 0 ||
        kurer__pg_copy(r, 0, 3, b->signed_prekey.signature, KURER_PREKEY_SIG_LEN) != 0)
        return KURER_ECORRUPT;
    b->registration_id = (uint32_t)v[0];
    b->signed_prekey.id = (uint32_t)v[1];
    b->signed_prekey.created_at = v[2];
    if (t != NULL && PQntuples(t) == 1) {
        if (kurer__pg_i64(t, 0, 0, &v[0]) != 0 ||
            kurer__pg_copy(t, 0, 1, b->one_time.public_key, KURER_PREKEY_PUBLIC_LEN) != 0)
            return KURER_ECORRUPT;
        b->one_time.id = (uint32_t)v[0];
        b->has_one_time = 1;
    }
    b->remaining = (uint64_t)count;
    return 0;
}

/* Every device's statements in one batch (stage 0), their bundles from the results (stage 1).
 * Only the first o->limit devices may get a one-time prekey (the per-taker bound). */
static int step_take(pg_conn *c, op *o, int stage)
{
    pg_params p;
    if (stage == 0) {
        for (size_t i = 0; i < o->n; i++) {
            p_dev(&p, &o->devs[i]);
            (void)kurer__pg_send(c, PG_GET_SPK, &p, o, i, 0);
            if (i < o->limit)
                (void)kurer__pg_send(c, PG_TAKE_OTK, &p, o, i, 0);
            (void)kurer__pg_send(c, PG_COUNT_OTK, &p, o, i, 0);
        }
        if (o->n > 0)
            return 1;
    }
    free(o->bundles); /* a retried round starts over */
    o->n_bundles = 0;
    o->bundles = calloc(o->n ? o->n : 1, sizeof(*o->bundles));
    o->err = o->bundles == NULL ? KURER_ENOMEM : 0;
    for (size_t i = 0, k = 0; o->bundles != NULL && i < o->n; k += i < o->limit ? 3 : 2, i++) {
        kurer_store_bundle *b = &o->bundles[o->n_bundles];
        memset(b, 0, sizeof(*b));
        int rc = take_one(c, k, i < o->limit, b);
        if (rc == KURER_ENOTFOUND) {
            memset(b, 0, sizeof(*b));
            continue; /* never uploaded: no bundle */
        }
        if (rc == KURER_ESTORAGE)
            return rc;
        if (rc != 0) {
            o->n_bundles = 0;
            o->err = rc;
            return 0;
        }
        b->dev = o->devs[i];
        o->n_bundles++;
    }
    return 0;
}

int kurer__pg_step(pg_conn *c, op *o, int stage)
{
    if (o->kind == KURER__OP_PREKEYS)
        return step_prekeys(c, o, stage);
    if (o->kind == KURER__OP_TAKE)
        return step_take(c, o, stage);
    if (o->kind == KURER__OP_INVITE)
        return kurer__pg_step_invite(c, o, stage);
    if (o->kind == KURER__OP_BLOB)
        return kurer__pg_step_blob(c, o, stage);
    return 0; /* the others are pipelined; reads run after the commit */
}

/* ---- reads (after the round's commit; their statements: store_pg_pipe.c) ----------------- */

/* A fan-out reference's row: its payload's bytes with the device's `to` (malloc'ed). */
static int ref_envelope(const op *o, const uint8_t *shared, size_t len, uint8_t **out,
                        size_t *out_len)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int rc = kurer_fanout_envelope(shared, len, &o->dev, &b);
    *out = rc == 0 ? kurer_buf_steal(&b, out_len) : NULL;
    kurer_buf_release(&b);
    return rc != 0 ? KURER_ECORRUPT : *out != NULL ? 0 : KURER_ENOMEM;
}

int kurer__pg_take_rows(op *o, const PGresult *r)
{
    int n = PQntuples(r);
    o->rows = calloc(n > 0 ? (size_t)n : 1, sizeof(*o->rows));
    if (o->rows == NULL)
        return KURER_ENOMEM;
    for (int i = 0; i < n; i++) {
        int64_t seq, ref;
        size_t len = (size_t)PQgetlength(r, i, 1);
        if (kurer__pg_i64(r, i, 0, &seq) != 0 || kurer__pg_i64(r, i, 2, &ref) != 0 ||
            PQgetisnull(r, i, 1))
            return KURER_ECORRUPT;
        uint8_t *copy = NULL;
        if (ref) {
            int rc = ref_envelope(o, (const uint8_t *)PQgetvalue(r, i, 1), len, &copy, &len);
            if (rc != 0)
                return rc;
        } else if ((copy = malloc(len ? len : 1)) != NULL) {
            memcpy(copy, PQgetvalue(r, i, 1), len);
        } else {
            return KURER_ENOMEM;
        }
        o->rows[o->n_rows].seq = (uint64_t)seq;
        o->rows[o->n_rows].env = copy;
        o->rows[o->n_rows].len = len;
        o->n_rows++;
    }
    return 0;
}

int kurer__pg_take_high(op *o, const PGresult *r)
{
    int64_t high, total;
    if (PQntuples(r) != 1 || kurer__pg_i64(r, 0, 0, &high) != 0 ||
        kurer__pg_i64(r, 0, 1, &total) != 0)
        return KURER_ECORRUPT;
    o->high = (uint64_t)high;
    o->total = (uint64_t)total;
    return 0;
}
