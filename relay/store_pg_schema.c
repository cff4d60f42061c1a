/* The postgres backend's schema: a list of migration steps, run under an advisory lock so that
 * relay nodes starting together migrate once. The tables live in the connection's search_path
 * (normally the schema `public` of the database named in pg_conninfo). */
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>

#include "kurer/error.h"
#include "kurer/log.h"

/* A database at version v (kurer_schema.version) runs the steps after v in one transaction. A
 * released step is never edited: a change is a new step at the end. A device's user is bytea
 * (the relay's bytes, whatever their encoding); every integer is bigint (binary int8). */
static const char *const MIGRATIONS[] = {
    /* 1: mailboxes with per-device seq counters, the directory, prekeys, revocation lists */
    ("CREATE TABLE kurer_schema(version integer NOT NULL);"
     "INSERT INTO kurer_schema VALUES(0);"
     "CREATE TABLE device_seqs(usr bytea NOT NULL, device bigint NOT NULL, last bigint NOT NULL, "
     "PRIMARY KEY(usr, device));"
     "CREATE TABLE mailbox(usr bytea NOT NULL, device bigint NOT NULL, seq bigint NOT NULL, "
     "sender bytea NOT NULL, env bytea NOT NULL, PRIMARY KEY(usr, device, seq));"
     "CREATE INDEX mailbox_sender ON mailbox(usr, device, sender);"
     "CREATE TABLE devices(usr bytea NOT NULL, device bigint NOT NULL, serial bigint NOT NULL, "
     "chain bytea NOT NULL, PRIMARY KEY(usr, device));"
     "CREATE TABLE prekey_devices(usr bytea NOT NULL, device bigint NOT NULL, registration_id "
     "bigint NOT NULL, spk_id bigint NOT NULL, spk_pub bytea NOT NULL, spk_sig bytea NOT NULL, "
     "spk_created bigint NOT NULL, PRIMARY KEY(usr, device));"
     "CREATE TABLE one_time_prekeys(usr bytea NOT NULL, device bigint NOT NULL, id bigint NOT "
     "NULL, pub bytea NOT NULL, PRIMARY KEY(usr, device, id));"
     "CREATE TABLE crls(issuer_key_id bytea PRIMARY KEY, version bigint NOT NULL, list bytea NOT "
     "NULL);"),
    /* 2: every envelope is inserted and deleted, and each device's counter row updated per
     * envelope: vacuum those two tables after a fixed number of dead rows, unthrottled, not
     * after a fifth of the table (the default), or they bloat faster than they are cleaned */
    ("ALTER TABLE mailbox SET (autovacuum_vacuum_scale_factor = 0, "
     "autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0);"
     "ALTER TABLE device_seqs SET (autovacuum_vacuum_scale_factor = 0, "
     "autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0, fillfactor = 50);"),
    /* 3: invitations for online enrolment (issue 16): the code's verifier, never the code; the
     * request and the authority's decision in the same row (states: relay/store.h) */
    ("CREATE TABLE invites(id bytea PRIMARY KEY, authority bytea NOT NULL, usr bytea NOT NULL, "
     "device bigint NOT NULL, verifier bytea NOT NULL, created_at bigint NOT NULL, expires_at "
     "bigint NOT NULL, failures bigint NOT NULL, state bigint NOT NULL, request bytea, "
     "authority_mac bytea, submitted_at bigint, chain bytea);"
     "CREATE INDEX invites_waiting ON invites(authority, state, id);"),
    /* 4: each writer's last round, written in the round's transaction: after a connection lost
     * while its COMMIT was in flight, the writer reads it to learn whether the round committed */
    ("CREATE TABLE IF NOT EXISTS kurer_rounds(node bigint PRIMARY KEY, round bigint NOT NULL, "
     "updated_at timestamptz NOT NULL DEFAULT now());"),
    /* 5: fan-out (issue 11): the shared bytes once with the count of their references (the id
     * is the writer's, random: no sequence, so the relay role needs no grant on one); a
     * reference is a mailbox row (its env empty) naming them */
    ("CREATE TABLE fanout_payloads(id bigint PRIMARY KEY, sender bytea NOT NULL, refs bigint "
     "NOT NULL, env bytea NOT NULL);"
     "CREATE INDEX fanout_payloads_done ON fanout_payloads(id) WHERE refs <= 0;"
     "ALTER TABLE mailbox ADD COLUMN payload bigint;"),
    /* 6: blobs (sealed attachments, docs/protocol.md 3.8): one row per blob with its owner
     * device, declared size, bytes received and expiry; its bytes as chunks keyed by offset */
    ("CREATE TABLE blobs(id bytea PRIMARY KEY, usr bytea NOT NULL, device bigint NOT NULL, "
     "size bigint NOT NULL, received bigint NOT NULL, complete bigint NOT NULL, "
     "created_at bigint NOT NULL, expires_at bigint NOT NULL);"
     "CREATE INDEX blobs_owner ON blobs(usr, device);"
     "CREATE INDEX blobs_expiry ON blobs(expires_at);"
     "CREATE TABLE blob_chunks(id bytea NOT NULL REFERENCES blobs(id) ON DELETE CASCADE, "
     "off bigint NOT NULL, data bytea NOT NULL, PRIMARY KEY(id, off));"
     "ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;"),
};
#define SCHEMA_VERSION ((int)(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0])))

/* pg_advisory_xact_lock's key: "kurer" in ASCII */
#define MIGRATE_LOCK "107117114101114"

static void log_error(PGconn *c, const char *event)
{
    kurer_log(KURER_LOG_ERROR, "store", event,
              (kurer_log_field[]){KURER_LOG_STR("error", PQerrorMessage(c))}, 1);
}

static int cmd(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok ? 0 : KURER_ESTORAGE;
}

/* The schema version (0: no kurer_schema table yet), or -1. */
static int read_version(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT to_regclass('kurer_schema') IS NOT NULL");
    int v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = PQgetvalue(r, 0, 0)[0] == 't' ? -2 : 0;
    PQclear(r);
    if (v != -2)
        return v;
    r = PQexec(c, "SELECT version FROM kurer_schema");
    v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        v = n >= 0 && n < 1000000 ? (int)n : -1;
    }
    PQclear(r);
    return v;
}

int kurer__pg_migrate(PGconn *c)
{
    int v = read_version(c);
    if (v == SCHEMA_VERSION)
        return 0; /* current: nothing to write, no rights beyond the relay role's needed */
    if (v > SCHEMA_VERSION)
        return KURER_EVERSION;
    if (v < 0 || cmd(c, "BEGIN") != 0) {
        log_error(c, "migrate_failed");
        return KURER_ESTORAGE;
    }
    int rc = cmd(c, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")");
    if (rc == 0)
        v = read_version(c); /* another node may have migrated meanwhile */
    if (rc == 0 && v < 0)
        rc = KURER_ESTORAGE;
    for (int step = v; rc == 0 && step < SCHEMA_VERSION; step++)
        rc = cmd(c, MIGRATIONS[step]);
    char set[64];
    snprintf(set, sizeof(set), "UPDATE kurer_schema SET version = %d", SCHEMA_VERSION);
    if (rc == 0 && v > SCHEMA_VERSION)
        rc = KURER_EVERSION;
    else if (rc == 0 && v < SCHEMA_VERSION)
        rc = cmd(c, set);
    if (rc == 0)
        rc = cmd(c, "COMMIT");
    if (rc != 0) {
        if (rc == KURER_ESTORAGE)
            log_error(c, "migrate_failed");
        (void)cmd(c, "ROLLBACK");
    }
    return rc;
}
