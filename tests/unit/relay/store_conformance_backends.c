/* The conformance suite's backends: the sqlite store in the case's folder, and the postgres
 * store in a schema of the case's own on the test server (its name kept in the folder, so that a
 * reopen finds it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "kurer/crypto.h"
#include "kurer/util.h"
#include "store_conformance.h"

int sqlite_open(kurer_store **out, uv_loop_t *loop, const char *dir, const uint8_t key[32])
{
    char path[300];
    snprintf(path, sizeof(path), "%s/relay.db", dir);
    return kurer_store_open_sqlite(out, loop, path, key);
}

/* The connection string of the test server, with search_path set to the case's schema. */
static void pg_conninfo(const char *dir, char *out, size_t cap)
{
    char path[300], schema[40] = "", base[512] = "";
    const char *file = getenv("KURER_PG_CONNINFO_FILE");
    FILE *fp = file != NULL ? fopen(file, "r") : NULL;
    if (fp == NULL)
        fail_msg("postgres: KURER_PG_CONNINFO_FILE names no readable connection string");
    int got = fgets(base, sizeof(base), fp) != NULL;
    fclose(fp);
    if (!got)
        fail_msg("postgres: %s is empty", file);
    base[strcspn(base, "\n")] = '\0';
    snprintf(path, sizeof(path), "%s/pg_schema", dir);
    if ((fp = fopen(path, "r")) != NULL) {
        if (fgets(schema, sizeof(schema), fp) == NULL)
            schema[0] = '\0';
        fclose(fp);
    }
    if (schema[0] == '\0') {
        /* the case's first open: a schema of its own */
        uint8_t r[8];
        kurer_random(r, sizeof(r));
        strcpy(schema, "kc_");
        kurer_hex_encode(schema + 3, r, sizeof(r));
        PGconn *c = PQconnectdb(base);
        char sql[80];
        snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            fail_msg("postgres: %s", PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
        assert_non_null(fp = fopen(path, "w"));
        fputs(schema, fp);
        fclose(fp);
    }
    /* the application name tells the case's connections from those of other cases */
    snprintf(out, cap, "%s options='-csearch_path=%s' application_name=%s", base, schema, schema);
}

int pg_open(kurer_store **out, uv_loop_t *loop, const char *dir, const uint8_t key[32])
{
    char conninfo[700];
    (void)key; /* the database's own access control; envelopes are end-to-end encrypted */
    pg_conninfo(dir, conninfo, sizeof(conninfo));
    return kurer_store_open_postgres(out, loop, conninfo, 2);
}

/* Runs SQL in the case's schema (a test's own changes, e.g. a newer schema version). */
void pg_sql(const char *dir, const char *sql)
{
    char conninfo[700];
    pg_conninfo(dir, conninfo, sizeof(conninfo));
    PGconn *c = PQconnectdb(conninfo);
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("postgres: %s", PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
}

void *pg_hold(const char *dir, const char *sql)
{
    char conninfo[700];
    pg_conninfo(dir, conninfo, sizeof(conninfo));
    PGconn *c = PQconnectdb(conninfo);
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("postgres: %s", PQerrorMessage(c));
    PQclear(res);
    return c;
}

void pg_release(void *conn, const char *sql)
{
    PQclear(PQexec(conn, sql));
    PQfinish(conn);
}

void pg_kill_connections(const char *dir)
{
    char path[300], schema[40] = "", sql[200];
    snprintf(path, sizeof(path), "%s/pg_schema", dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    int got = fgets(schema, sizeof(schema), fp) != NULL;
    fclose(fp);
    assert_true(got);
    /* waits (up to 5 s) until each has ended */
    snprintf(sql, sizeof(sql),
             "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE "
             "application_name = '%s' AND pid <> pg_backend_pid()",
             schema);
    pg_sql(dir, sql);
}
