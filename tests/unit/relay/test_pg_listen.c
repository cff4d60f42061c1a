/* The listen connection of relay nodes over PostgreSQL (relay/store_pg_listen.c, cluster.h)
 * against the tests' server (the fixture `pg`; KURER_PG_CONNINFO_FILE), in a schema of its own
 * so that its channel is its own: notifications come back to their sender (LISTEN and NOTIFY on
 * one connection), batched, bounded, in order, and a lost connection sends again what must
 * survive it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <unistd.h>

#include "cluster.h"
#include "kurer/crypto.h"
#include "kurer/error.h"
#include "kurer/util.h"

#define TOKENS_MAX 200000

typedef struct rx {
    size_t notifications, max_len, ups;
    unsigned *seen; /* by token number */
    size_t n_seen, out_of_order;
    long last;
    int bad;
} rx;

static char g_conninfo[700];

static void on_notify(void *arg, const char *p, size_t len)
{
    rx *x = arg;
    x->notifications++;
    if (len > x->max_len)
        x->max_len = len;
    if (len < 19 || memcmp(p, "w 0123456789abcdef", 18) != 0) {
        x->bad++;
        return;
    }
    for (size_t i = 19; i < len;) {
        char *end;
        long k = strtol(p + i, &end, 10);
        if (end == p + i || k < 0 || k >= TOKENS_MAX) {
            x->bad++;
            return;
        }
        x->seen[k]++;
        x->n_seen++;
        if (k <= x->last)
            x->out_of_order++;
        x->last = k;
        i = (size_t)(end - p) + 1;
    }
}

static void on_list(void *arg, const uint8_t *list, size_t len)
{
    (void)arg;
    (void)list;
    (void)len;
}

static void on_device(void *arg, const kurer_store_device *d)
{
    (void)arg;
    (void)d;
}

static void on_up(void *arg)
{
    ((rx *)arg)->ups++;
}

static const kurer_pgl_cbs cbs = {on_notify, on_list, on_device, on_up};

static void owner_exec(const char *sql)
{
    char base[600];
    const char *file = getenv("KURER_PG_CONNINFO_FILE");
    FILE *fp = file != NULL ? fopen(file, "r") : NULL;
    if (fp == NULL)
        fail_msg("KURER_PG_CONNINFO_FILE names no readable connection string");
    int got = fgets(base, sizeof(base), fp) != NULL;
    fclose(fp);
    assert_true(got);
    base[strcspn(base, "\n")] = '\0';
    PGconn *c = PQconnectdb(base);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("postgres: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    if (g_conninfo[0] == '\0')
        snprintf(g_conninfo, sizeof(g_conninfo), "%s", base);
}

/* A schema of the case's own, and the connection string that uses it. */
static void setup_schema(char *conninfo, size_t cap)
{
    uint8_t r[8];
    char schema[24], sql[80];
    kurer_random(r, sizeof(r));
    strcpy(schema, "kl_");
    kurer_hex_encode(schema + 3, r, sizeof(r));
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
    owner_exec(sql);
    snprintf(conninfo, cap, "%s options='-csearch_path=%s'", g_conninfo, schema);
}

static void run_until(uv_loop_t *loop, rx *x, size_t n_seen, uint64_t ms)
{
    uint64_t end = kurer_time_mono_ms() + ms;
    while (x->n_seen < n_seen && kurer_time_mono_ms() < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(200);
    }
}

static void close_all(uv_loop_t *loop, kurer_pgl *l)
{
    kurer__pgl_close(l);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* 3000 tokens submitted at once: the first goes out alone, the rest in a few notifications of
 * at most 7999 bytes; every token comes back once, in order. */
static void test_batching(void **state)
{
    (void)state;
    char conninfo[800], tok[16];
    uv_loop_t loop;
    kurer_pgl *l;
    rx x = {.last = -1};
    x.seen = calloc(TOKENS_MAX, sizeof(unsigned));
    assert_int_equal(uv_loop_init(&loop), 0);
    setup_schema(conninfo, sizeof(conninfo));
    assert_int_equal(kurer__pgl_open(&l, &loop, conninfo, &cbs, &x), 0);
    assert_true(kurer__pgl_up(l));
    for (unsigned k = 0; k < 3000; k++) {
        snprintf(tok, sizeof(tok), "%u", k);
        assert_int_equal(kurer__pgl_notify(l, "w 0123456789abcdef", tok, 1), 0);
    }
    run_until(&loop, &x, 3000, 10000);
    fprintf(stderr, "pg_listen batching: 3000 tokens in %zu notifications, the longest %zu bytes\n",
            x.notifications, x.max_len);
    assert_int_equal(x.n_seen, 3000);
    for (unsigned k = 0; k < 3000; k++)
        assert_int_equal(x.seen[k], 1);
    assert_int_equal(x.out_of_order, 0);
    assert_int_equal(x.bad, 0);
    assert_true(x.notifications <= 6);
    assert_true(x.max_len <= KURER__PGL_PAYLOAD_MAX);
    assert_int_equal(kurer__pgl_notify(l, "w 0123456789abcdef", "", 1), KURER_EINVAL);
    assert_int_equal(kurer__pgl_notify(l, "w 0123456789abcdef", "1 2", 1), KURER_EINVAL);
    char big[KURER__PGL_PAYLOAD_MAX];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(kurer__pgl_notify(l, "w 0123456789abcdef", big, 1), KURER_EINVAL);
    close_all(&loop, l);
    free(x.seen);
}

/* Beyond 1 MiB waiting, tokens are refused (ELIMIT, counted), never half sent: every token
 * accepted comes back once. */
static void test_queue_full(void **state)
{
    (void)state;
    char conninfo[800], tok[16];
    uv_loop_t loop;
    kurer_pgl *l;
    kurer_pgl_stats st;
    rx x = {.last = -1};
    x.seen = calloc(TOKENS_MAX, sizeof(unsigned));
    assert_int_equal(uv_loop_init(&loop), 0);
    setup_schema(conninfo, sizeof(conninfo));
    assert_int_equal(kurer__pgl_open(&l, &loop, conninfo, &cbs, &x), 0);
    size_t accepted = 0, refused = 0;
    for (unsigned k = 0; k < TOKENS_MAX; k++) {
        snprintf(tok, sizeof(tok), "%u", k);
        int rc = kurer__pgl_notify(l, "w 0123456789abcdef", tok, 1);
        assert_true(rc == 0 || rc == KURER_ELIMIT);
        accepted += rc == 0;
        refused += rc == KURER_ELIMIT;
        if (rc == 0)
            assert_int_equal(refused, 0); /* nothing accepted after the first refusal */
        if (refused > 0)
            break;
    }
    kurer__pgl_stats(l, &st);
    assert_true(refused == 1 && st.dropped == 1);
    assert_true(st.queue_bytes <= KURER__PGL_QUEUE_MAX);
    run_until(&loop, &x, accepted, 20000);
    fprintf(stderr, "pg_listen queue_full: %zu tokens queued before the bound, %zu came back\n",
            accepted, x.n_seen);
    assert_int_equal(x.n_seen, accepted);
    for (size_t k = 0; k < accepted; k++)
        assert_int_equal(x.seen[k], 1);
    close_all(&loop, l);
    free(x.seen);
}

/* The server ends the connection: it is made again (on_up), and the tokens queued meanwhile
 * with keep go out then. */
static void test_reconnect(void **state)
{
    (void)state;
    char conninfo[800], tok[16], sql[120];
    uv_loop_t loop;
    kurer_pgl *l;
    kurer_pgl_stats st;
    rx x = {.last = -1};
    x.seen = calloc(TOKENS_MAX, sizeof(unsigned));
    assert_int_equal(uv_loop_init(&loop), 0);
    setup_schema(conninfo, sizeof(conninfo));
    assert_int_equal(kurer__pgl_open(&l, &loop, conninfo, &cbs, &x), 0);
    kurer__pgl_stats(l, &st);
    assert_true(st.backend_pid > 0);
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d, 5000)", st.backend_pid);
    owner_exec(sql);
    for (unsigned k = 0; k < 10; k++) {
        snprintf(tok, sizeof(tok), "%u", k);
        assert_int_equal(kurer__pgl_notify(l, "w 0123456789abcdef", tok, 1), 0);
    }
    uint64_t end = kurer_time_mono_ms() + 10000;
    while ((x.ups == 0 || x.n_seen < 10) && kurer_time_mono_ms() < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(500);
    }
    kurer__pgl_stats(l, &st);
    fprintf(stderr, "pg_listen reconnect: reconnects %llu, tokens back %zu of 10\n",
            (unsigned long long)st.reconnects, x.n_seen);
    assert_int_equal(x.ups, 1);
    assert_int_equal(st.reconnects, 1);
    for (unsigned k = 0; k < 10; k++)
        assert_true(x.seen[k] >= 1); /* one that went out just before the loss may come twice */
    close_all(&loop, l);
    free(x.seen);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batching),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_reconnect),
    };
    assert_int_equal(kurer_crypto_init(), 0);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("pg_listen", tests, NULL, NULL);
}
