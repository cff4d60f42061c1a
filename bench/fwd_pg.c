/* bench_fwd --pg (pg_limit, bench/README.md): the forwarder's envelopes inserted into the relay's
 * own PostgreSQL schema by a bare libpq client, in the way the relay's postgres backend writes a
 * round (relay/store_pg_pipe.c): pipeline mode, binary parameters and results, the schema's put
 * statement (the device's counter row and the mailbox row in one statement), a sync point every
 * CHUNK statements, one transaction per batch. Unlike the relay it counts no mailboxes first
 * (no mailbox_max phase) and holds nothing back for early acks: the reference is the database's
 * own limit for these inserts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "fwd.h"

#define CHUNK 256

/* the relay's PG_PUT and PG_DELETE (relay/store_pg_exec.c), word for word */
static const char put_sql[] =
    "WITH s AS (INSERT INTO device_seqs(usr, device, last) VALUES($1, $2, 1) "
    "ON CONFLICT (usr, device) DO UPDATE SET last = device_seqs.last + 1 "
    "RETURNING last) INSERT INTO mailbox(usr, device, seq, sender, env) "
    "SELECT $1, $2, last, $3, $4 FROM s RETURNING seq";
static const char del_sql[] = "DELETE FROM mailbox WHERE usr = $1 AND device = $2 AND seq = $3";

static PGconn *conn;

static void die(const char *what)
{
    fprintf(stderr, "bench_fwd: %s: %s\n", what, conn != NULL ? PQerrorMessage(conn) : "");
    exit(1);
}

static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

void fwd_pg_open(const char *conninfo)
{
    conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK)
        die("connect");
    PGresult *r = PQprepare(conn, "put", put_sql, 4, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("prepare put");
    PQclear(r);
    r = PQprepare(conn, "del", del_sql, 3, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("prepare delete");
    PQclear(r);
    if (!PQenterPipelineMode(conn))
        die("pipeline mode");
}

/* Sync point: reads the results of the k statements sent since the last one, and the sync's.
 * puts[i] is the op whose seq the i-th result carries (NULL: a command without rows). */
static void sync_read(op **puts, size_t k)
{
    if (!PQpipelineSync(conn))
        die("sync");
    for (size_t i = 0; i < k; i++) {
        PGresult *r = PQgetResult(conn);
        if (r == NULL)
            die("result");
        ExecStatusType want = puts[i] != NULL ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
        if (PQresultStatus(r) != want)
            die(PQresultErrorMessage(r));
        if (puts[i] != NULL) {
            const uint8_t *v = (const uint8_t *)PQgetvalue(r, 0, 0);
            uint64_t seq = 0;
            if (PQntuples(r) != 1 || PQgetlength(r, 0, 0) != 8)
                die("put result");
            for (int b = 0; b < 8; b++)
                seq = seq << 8 | v[b];
            puts[i]->seq = seq;
        }
        PQclear(r);
        while ((r = PQgetResult(conn)) != NULL)
            PQclear(r);
    }
    PGresult *r = PQgetResult(conn);
    if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
        die("sync result");
    PQclear(r);
}

static void send_cmd(const char *sql)
{
    if (!PQsendQueryParams(conn, sql, 0, NULL, NULL, NULL, NULL, 1))
        die(sql);
}

void fwd_pg_commit(op *v, size_t n)
{
    static op *slots[CHUNK];
    size_t k = 0;
    send_cmd("BEGIN");
    slots[k++] = NULL;
    for (size_t i = 0; i < n; i++) {
        op *o = &v[i];
        char rcpt[32], from[32];
        uint8_t dev[8], seq[8];
        int rl = snprintf(rcpt, sizeof(rcpt), "d%u@mof", (unsigned)o->to);
        int fl = snprintf(from, sizeof(from), "d%u@mof", (unsigned)o->from);
        be64(dev, 1);
        be64(seq, o->seq);
        const char *vals[4] = {rcpt, (const char *)dev, o->del ? (const char *)seq : from,
                               (const char *)o->content};
        int lens[4] = {rl, 8, o->del ? 8 : fl, (int)o->len};
        int fmts[4] = {1, 1, 1, 1};
        if (!PQsendQueryPrepared(conn, o->del ? "del" : "put", o->del ? 3 : 4, vals, lens, fmts, 1))
            die("send");
        slots[k++] = o->del ? NULL : o;
        if (k == CHUNK) {
            sync_read(slots, k);
            k = 0;
        }
    }
    send_cmd("COMMIT");
    slots[k++] = NULL;
    sync_read(slots, k);
}
