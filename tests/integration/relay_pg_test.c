/* The relay over the postgres store, end to end: a real kurer-relay with `store = postgres`
 * (relay_harness.c starts it) against the tests' private PostgreSQL server (the ctest fixture
 * `pg`: tests/pg/pg_server.sh). The schema is made by `kurer-relay init --config` as the owner
 * role; the relay runs as the role kurer_relay with only the grants docs/scale-out.md lists.
 * KURER_PG_CONNINFO_FILE and KURER_PG_CONNINFO_RELAY_FILE name the two connection strings. Each
 * case works in a schema of its own. Each reports sent, accepted, delivered, lost, duplicated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "relay_harness.h"

static char g_schema[40];

static void read_line(const char *env, char *out, size_t cap)
{
    const char *file = getenv(env);
    FILE *fp = file != NULL ? fopen(file, "r") : NULL;
    if (fp == NULL)
        fail_msg("%s names no readable connection string", env);
    int got = fgets(out, (int)cap, fp) != NULL;
    fclose(fp);
    if (!got)
        fail_msg("%s: empty", file);
    out[strcspn(out, "\n")] = '\0';
}

/* Runs SQL as the owner role in the case's schema; returns the first value (or ""). */
static void owner_sql(const char *sql, char *first, size_t cap)
{
    char base[512], conninfo[700];
    read_line("KURER_PG_CONNINFO_FILE", base, sizeof(base));
    snprintf(conninfo, sizeof(conninfo), "%s options='-csearch_path=%s'", base, g_schema);
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("postgres: %s", PQerrorMessage(c));
    if (first != NULL)
        snprintf(first, cap, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(c);
}

/* A config file W/<name> for the relay with the given role's connection string. */
static void write_config(world *w, const char *name, const char *env, char *path, size_t cap)
{
    char base[512], text[1024];
    read_line(env, base, sizeof(base));
    int n = snprintf(text, sizeof(text),
                     "# the postgres store\nstore = postgres\n"
                     "pg_conninfo = %s options='-csearch_path=%s' application_name=%s\n"
                     "commit_delay_us = 0\n",
                     base, g_schema, g_schema);
    snprintf(path, cap, "%s/%s", w->dir, name);
    write_file(path, text, (size_t)n);
}

/* `kurer-relay init --dir W/init --config CONF`: creates the schema (as the owner). */
static void init_schema(world *w, const char *conf)
{
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/init", w->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl(KURER_RELAY_BIN, KURER_RELAY_BIN, "init", "--dir", dir, "--config", conf,
              (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A fresh schema for the case, made by init, the relay role granted what the docs list. */
static void pg_world(world *w, char *relay_conf, size_t cap)
{
    char owner_conf[300];
    uint8_t r[8];
    kurer_random(r, sizeof(r));
    strcpy(g_schema, "kr_");
    kurer_hex_encode(g_schema + 3, r, sizeof(r));
    char sql[300];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", g_schema);
    owner_sql(sql, NULL, 0);
    write_config(w, "owner.conf", "KURER_PG_CONNINFO_FILE", owner_conf, sizeof(owner_conf));
    init_schema(w, owner_conf);
    /* docs/scale-out.md, "Grants" */
    snprintf(sql, sizeof(sql),
             "GRANT USAGE ON SCHEMA %s TO kurer_relay;"
             "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO kurer_relay",
             g_schema, g_schema);
    owner_sql(sql, NULL, 0);
    write_config(w, "relay.conf", "KURER_PG_CONNINFO_RELAY_FILE", relay_conf, cap);
}

static void start_pg(world *w, const char *conf)
{
    const char *extra[] = {"--config", conf};
    start_relay_v(w, extra, 2);
}

/* Receives n envelopes; counts them into seen[] by their number (content's first 4 bytes). */
static void receive(client *cb, size_t n, uint64_t *seqs, unsigned *seen, size_t cap)
{
    kurer_server_frame f;
    for (size_t i = 0; i < n; i++) {
        expect_body(cb, &f, KURER_SERVER_DELIVER);
        uint32_t k;
        memcpy(&k, f.u.deliver.envelope.content, 4);
        if (k < cap)
            seen[k]++;
        seqs[i] = f.u.deliver.seq;
        if (i > 0)
            assert_true(seqs[i] > seqs[i - 1]);
        kurer_server_frame_release(&f);
    }
}

static void send_ack(client *cb, const uint64_t *seqs, size_t n)
{
    kurer_client_frame ack;
    kurer_server_frame f;
    memset(&ack, 0, sizeof(ack));
    ack.body = KURER_CLIENT_ACK;
    ack.u.ack.seqs = (uint64_t *)seqs;
    ack.u.ack.n = n;
    uint64_t rid = cl_send(cb, &ack);
    wait_answer(cb, rid, &f);
    assert_int_equal(f.body, KURER_SERVER_OK);
    kurer_server_frame_release(&f);
}

/* Offline delivery in order, acks, a graceful restart and a SIGKILL restart that keep exactly
 * what was accepted and not acked, and online delivery to a connected device. */
static void test_offline_ack_restart(void **state)
{
    world *w = *state;
    char conf[300], n_rows[32];
    device a, b;
    client ca, cb;
    kurer_server_frame f;
    unsigned seen[16] = {0};
    uint64_t seqs[16];
    size_t sent = 0, accepted = 0, delivered = 0;
    pg_world(w, conf, sizeof(conf));
    start_pg(w, conf);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0); /* b registers, goes away */
    cl_free(&cb);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    for (uint32_t i = 0; i < 5; i++, sent++)
        accepted += send_one(&ca, &b, i, NULL) == KURER_SEND_ACCEPTED;
    cl_free(&ca);
    assert_int_equal(accepted, 5);
    owner_sql("SELECT count(*) FROM mailbox", n_rows, sizeof(n_rows));
    assert_string_equal(n_rows, "5"); /* in PostgreSQL, not in the relay */

    assert_int_equal(cl_connect(w, &cb, &b), 0);
    assert_int_equal(cb.acc.queued, 5);
    receive(&cb, 5, seqs, seen, 16);
    expect_body(&cb, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
    send_ack(&cb, seqs, 3); /* 0, 1, 2 acked */
    cl_free(&cb);
    delivered += 3;

    /* a graceful restart, then a SIGKILL one: 3 and 4 stay, 0..2 never come again */
    for (int round = 0; round < 2; round++) {
        stop_relay(w, round == 0 ? SIGTERM : SIGKILL);
        start_pg(w, conf);
        assert_int_equal(cl_connect(w, &cb, &b), 0);
        assert_int_equal(cb.acc.queued, 2);
        receive(&cb, 2, seqs + 5, seen, 16);
        assert_int_equal(seqs[5], seqs[3]);
        assert_int_equal(seqs[6], seqs[4]);
        expect_body(&cb, &f, KURER_SERVER_QUEUE_EMPTY);
        kurer_server_frame_release(&f);
        cl_free(&cb);
    }
    /* online: a connected device gets a new envelope at once; its seq is above the rest */
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    receive(&cb, 2, seqs + 7, seen, 16);
    expect_body(&cb, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    sent++;
    accepted += send_one(&ca, &b, 5, NULL) == KURER_SEND_ACCEPTED;
    receive(&cb, 1, seqs + 9, seen, 16);
    assert_true(seqs[9] > seqs[4]);
    uint64_t rest[] = {seqs[3], seqs[4], seqs[9]};
    send_ack(&cb, rest, 3);
    delivered += 3;
    cl_free(&ca);
    cl_free(&cb);
    owner_sql("SELECT count(*) FROM mailbox", n_rows, sizeof(n_rows));
    assert_string_equal(n_rows, "0");
    size_t lost = 0, dup = 0;
    for (int i = 0; i < 6; i++)
        lost += seen[i] == 0;
    /* 3 and 4 came four times by design (unacked: first, after each restart, on the reconnect) */
    for (int i = 0; i < 6; i++)
        dup += (i == 3 || i == 4) ? seen[i] != 4 : seen[i] > 1;
    fprintf(stderr, "relay_pg: sent %zu, accepted %zu, delivered %zu, lost %zu, duplicated %zu\n",
            sent, accepted, delivered, lost, dup);
    assert_int_equal(accepted, 6);
    assert_int_equal(lost, 0);
    assert_int_equal(dup, 0);
}

/* A fan-out send over the postgres store, with the relay role's grants only: one payload row,
 * a mailbox row per device, an ordinary Deliver online and after a restart, the payload gone
 * with the last ack. */
static void test_fanout(void **state)
{
    world *w = *state;
    char conf[300], n_rows[32];
    device a, b, c;
    client ca, cb, cc;
    kurer_server_frame f;
    uint8_t id[16], content[500];
    pg_world(w, conf, sizeof(conf));
    start_pg(w, conf);
    kurer_random(id, sizeof(id));
    memset(content, 0x5a, sizeof(content));
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    make_device(w, &c, "cy@mof", 1, 12, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cc, &c), 0); /* cy registers, goes away */
    cl_free(&cc);
    assert_int_equal(cl_connect(w, &cb, &b), 0); /* bo stays online */
    expect_body(&cb, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    kurer_fanout_device db = {1, 11}, dc = {1, 12};
    kurer_fanout_user users[2] = {{"bo@mof", &db, 1}, {"cy@mof", &dc, 1}};
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_FANOUT;
    memcpy(q.u.fanout.id, id, 16);
    q.u.fanout.type = KURER_ENVELOPE_SENDER_KEY;
    q.u.fanout.content = content;
    q.u.fanout.content_len = sizeof(content);
    q.u.fanout.users = users;
    q.u.fanout.n_users = 2;
    q.u.fanout.final = 1;
    wait_answer(&ca, cl_send(&ca, &q), &f);
    assert_int_equal(f.body, KURER_SERVER_FANOUT_RESULT);
    assert_int_equal(f.u.fanout_result.accepted, 2);
    kurer_server_frame_release(&f);
    cl_free(&ca);
    owner_sql("SELECT count(*) FROM fanout_payloads", n_rows, sizeof(n_rows));
    assert_string_equal(n_rows, "1");
    expect_body(&cb, &f, KURER_SERVER_DELIVER);
    assert_memory_equal(f.u.deliver.envelope.id, id, 16);
    assert_int_equal(f.u.deliver.envelope.type, KURER_ENVELOPE_SENDER_KEY);
    assert_string_equal(f.u.deliver.envelope.to.user, "bo@mof");
    uint64_t seq = f.u.deliver.seq;
    kurer_server_frame_release(&f);
    send_ack(&cb, &seq, 1);
    cl_free(&cb);
    stop_relay(w, SIGTERM);
    start_pg(w, conf);
    assert_int_equal(cl_connect(w, &cc, &c), 0);
    assert_int_equal(cc.acc.queued, 1);
    expect_body(&cc, &f, KURER_SERVER_DELIVER);
    assert_memory_equal(f.u.deliver.envelope.id, id, 16);
    assert_string_equal(f.u.deliver.envelope.to.user, "cy@mof");
    assert_string_equal(f.u.deliver.envelope.from.user, "anna@mof");
    assert_memory_equal(f.u.deliver.envelope.content, content, sizeof(content));
    seq = f.u.deliver.seq;
    kurer_server_frame_release(&f);
    send_ack(&cc, &seq, 1);
    cl_free(&cc);
    owner_sql("SELECT count(*) FROM fanout_payloads", n_rows, sizeof(n_rows));
    assert_string_equal(n_rows, "0"); /* with the last ack */
    owner_sql("SELECT count(*) FROM mailbox", n_rows, sizeof(n_rows));
    assert_string_equal(n_rows, "0");
    fprintf(stderr, "relay_pg fanout: 2 devices, payload stored once, deleted with the last "
                    "ack\n");
}

/* The store's pool at work: a round whose COMMIT waits (as for a slow standby's flush: here a
 * deferred trigger on bo's rows waits for an advisory lock the test holds) does not hold up the
 * next one, which commits on another connection meanwhile; the waiting send is answered only
 * once its own commit returned. */
static void test_pool(void **state)
{
    world *w = *state;
    char conf[300], base[512], conninfo[700], n_rows[32];
    device a, a2, b, c;
    client ca, ca2, cb, cc;
    size_t sent = 0, accepted = 0, delivered = 0;
    pg_world(w, conf, sizeof(conf));
    const char *extra[] = {"--config", conf, "--metrics", "127.0.0.1:0"};
    start_relay_v(w, extra, 4);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    make_device(w, &c, "cy@mof", 1, 12, 0, 0, 0);
    make_device(w, &a2, "dan@mof", 1, 13, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0); /* both register, go away */
    cl_free(&cb);
    assert_int_equal(cl_connect(w, &cc, &c), 0);
    cl_free(&cc);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    assert_int_equal(cl_connect(w, &ca2, &a2), 0);
    owner_sql("CREATE FUNCTION kr_slow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN IF NEW.usr = "
              "'bo@mof'::bytea THEN PERFORM pg_advisory_xact_lock(4242); END IF; RETURN NULL; "
              "END$$; CREATE CONSTRAINT TRIGGER kr_slow AFTER INSERT ON mailbox DEFERRABLE "
              "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kr_slow()",
              NULL, 0);
    read_line("KURER_PG_CONNINFO_FILE", base, sizeof(base));
    snprintf(conninfo, sizeof(conninfo), "%s options='-csearch_path=%s'", base, g_schema);
    PGconn *lock = PQconnectdb(conninfo);
    PGresult *r = PQexec(lock, "SELECT pg_advisory_lock(4242)");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    uint64_t rid = send_start(&ca, &b, 0, NULL); /* its COMMIT waits for the lock */
    sent++;
    assert_int_equal(send_wait(&ca, rid, 300), -1); /* not answered: not committed */
    sent++;
    accepted += send_one(&ca2, &c, 1, NULL) == KURER_SEND_ACCEPTED; /* another connection */
    owner_sql("SELECT count(*) FROM mailbox", n_rows, sizeof(n_rows));
    assert_string_equal(n_rows, "1"); /* cy's: bo's is not committed */
    uint64_t in_flight = metric_now(w, "kurer_store_rounds_in_flight_max");
    r = PQexec(lock, "SELECT pg_advisory_unlock(4242)");
    PQclear(r);
    PQfinish(lock);
    accepted += send_wait(&ca, rid, 10000) == KURER_SEND_ACCEPTED;
    cl_free(&ca);
    cl_free(&ca2);
    uint64_t seqs[4];
    unsigned seen[4] = {0};
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    receive(&cb, 1, seqs, seen, 4);
    cl_free(&cb);
    assert_int_equal(cl_connect(w, &cc, &c), 0);
    receive(&cc, 1, seqs + 1, seen, 4);
    cl_free(&cc);
    delivered = seen[0] + seen[1];
    size_t lost = 0, dup = 0;
    for (int i = 0; i < 2; i++) {
        lost += seen[i] == 0;
        dup += seen[i] > 1;
    }
    fprintf(stderr,
            "relay_pg pool: rounds in flight at most %llu; sent %zu, accepted %zu, delivered %zu, "
            "lost %zu, duplicated %zu\n",
            (unsigned long long)in_flight, sent, accepted, delivered, lost, dup);
    assert_true(in_flight >= 2);
    assert_int_equal(accepted, 2);
    assert_int_equal(lost, 0);
    assert_int_equal(dup, 0);
}

/* The pool's watchdog: every server process of the relay's connections is stopped (SIGSTOP: a
 * silent server, as after a power loss or a partition: no FIN, no RST, the socket open). A send
 * is not answered while its round's batch waits; once the batch's watchdog (15 s) gave that
 * connection up, the round runs again on a new one and is accepted, once. */
static void test_watchdog(void **state)
{
    world *w = *state;
    char conf[300], sql[200], list[400], n_rows[32];
    device a, b;
    client ca, cb;
    pg_world(w, conf, sizeof(conf));
    start_pg(w, conf);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0); /* bo registers, goes away */
    cl_free(&cb);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    kurer_server_frame f;
    expect_body(&ca, &f, KURER_SERVER_QUEUE_EMPTY); /* anna's fetch is done: nothing in flight */
    kurer_server_frame_release(&f);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FILTER (WHERE state <> 'idle') || ' ' || string_agg(pid::text, ' ') "
             "FROM pg_stat_activity WHERE application_name = '%s'",
             g_schema);
    uint64_t until = kurer_time_mono_ms() + 5000;
    do /* every server process of the relay idle: only the send below meets the stop */
        owner_sql(sql, list, sizeof(list));
    while (strncmp(list, "0 ", 2) != 0 && kurer_time_mono_ms() < until);
    assert_true(strncmp(list, "0 ", 2) == 0);
    int pids[32];
    size_t np = 0;
    for (char *p = list + 2, *end; np < 32; p = end) {
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        pids[np++] = (int)v;
    }
    assert_true(np >= 1);
    for (size_t i = 0; i < np; i++)
        assert_int_equal(kill(pids[i], SIGSTOP), 0);
    uint64_t t0 = kurer_time_mono_ms();
    uint64_t rid = send_start(&ca, &b, 0, NULL);
    int during = send_wait(&ca, rid, 5000); /* the server is silent: not answered */
    int after = during == -1 ? send_wait(&ca, rid, 40000) : during;
    uint64_t ms = kurer_time_mono_ms() - t0;
    for (size_t i = 0; i < np; i++)
        (void)kill(pids[i], SIGCONT);
    cl_free(&ca);
    owner_sql("SELECT count(*) FROM mailbox", n_rows, sizeof(n_rows));
    fprintf(stderr,
            "relay_pg watchdog: %zu server processes stopped; the send answered %d after %llu ms; "
            "%s stored\n",
            np, after, (unsigned long long)ms, n_rows);
    assert_int_equal(during, -1);
    assert_int_equal(after, KURER_SEND_ACCEPTED);
    assert_true(ms >= 14000); /* the watchdog, not the server, answered it */
    assert_string_equal(n_rows, "1");
    uint64_t seq;
    unsigned seen[1] = {0};
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    assert_int_equal(cb.acc.queued, 1);
    receive(&cb, 1, &seq, seen, 1);
    cl_free(&cb);
    assert_int_equal(seen[0], 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offline_ack_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("relay_pg", tests, NULL, NULL);
}
