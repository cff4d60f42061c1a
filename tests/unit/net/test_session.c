/* A Noise session over loopback TCP through net/: handshake with payloads, a refusal that the
 * initiator can read, many records each way (batched writes), and garbage that closes only the
 * sender's connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/crypto.h"
#include "kurer/net.h"
#include "kurer/util.h"

typedef struct world {
    uv_loop_t loop;
    uv_tcp_t server;
    struct sockaddr_storage addr;
    uint8_t relay_pk[32], relay_sk[32];
    kurer_net_static_key relay_key; /* borrows relay_sk */
    uint8_t dev_pk[32], dev_sk[32];
    int refuse;
    /* observations */
    int srv_requests, srv_established, srv_records, srv_closed, srv_close_err;
    int srv_errs[8];
    int cli_established, cli_records, cli_closed, cli_close_err;
    size_t srv_bytes;
    char cli_payload[64];
    int echo;
} world;

static void srv_hs(kurer_conn *c, kurer_noise_pattern p, const uint8_t *rs, const uint8_t *pl,
                   size_t n)
{
    world *w = kurer_conn_data(c);
    w->srv_requests++;
    assert_int_equal(p, KURER_NOISE_IK);
    assert_non_null(rs);
    assert_memory_equal(rs, w->dev_pk, 32);
    assert_int_equal(n, 5);
    assert_memory_equal(pl, "hello", 5);
    if (w->refuse)
        assert_int_equal(kurer_conn_hs_reply(c, 0, (const uint8_t *)"nope", 4, KURER_EPERM), 0);
    else
        assert_int_equal(kurer_conn_hs_reply(c, 1, (const uint8_t *)"welcome", 7, 0), 0);
}

static void srv_est(kurer_conn *c, const uint8_t *p, size_t n)
{
    world *w = kurer_conn_data(c);
    (void)p;
    (void)n;
    w->srv_established++;
}

static void srv_rec(kurer_conn *c, uint8_t *p, size_t n)
{
    world *w = kurer_conn_data(c);
    w->srv_records++;
    w->srv_bytes += n;
    if (w->echo)
        assert_int_equal(kurer_conn_send(c, p, n), 0);
}

static void srv_close(kurer_conn *c, int err)
{
    world *w = kurer_conn_data(c);
    if (w->srv_closed < 8)
        w->srv_errs[w->srv_closed] = err;
    w->srv_closed++;
    w->srv_close_err = err;
}

static const kurer_conn_cbs srv_cbs = {srv_hs, srv_est, srv_rec, NULL, NULL, srv_close};

static void on_conn(uv_stream_t *s, int status)
{
    world *w = s->data;
    kurer_conn *c;
    kurer_net_limits lim = kurer_net_limits_default();
    lim.handshake_ms = 300;
    lim.max_record = 4096; /* so that 0xffff is oversize */
    assert_int_equal(status, 0);
    assert_int_equal(kurer_conn_accept_from(&c, s, &lim, &srv_cbs, &w->relay_key, 0, w), 0);
}

static void cli_est(kurer_conn *c, const uint8_t *p, size_t n)
{
    world *w = kurer_conn_data(c);
    w->cli_established++;
    memcpy(w->cli_payload, p, n < 63 ? n : 63);
}

static void cli_rec(kurer_conn *c, uint8_t *p, size_t n)
{
    world *w = kurer_conn_data(c);
    (void)p;
    (void)n;
    w->cli_records++;
}

static void cli_close(kurer_conn *c, int err)
{
    world *w = kurer_conn_data(c);
    w->cli_closed++;
    w->cli_close_err = err;
}

static const kurer_conn_cbs cli_cbs = {NULL, cli_est, cli_rec, NULL, NULL, cli_close};

static int setup(void **state)
{
    world *w = calloc(1, sizeof(*w));
    assert_int_equal(kurer_crypto_init(), 0);
    assert_int_equal(uv_loop_init(&w->loop), 0);
    assert_int_equal(kurer_noise_keypair(w->relay_pk, w->relay_sk), 0);
    w->relay_key.sk = w->relay_sk;
    memcpy(w->relay_key.pk, w->relay_pk, 32);
    assert_int_equal(kurer_noise_keypair(w->dev_pk, w->dev_sk), 0);
    assert_int_equal(uv_tcp_init(&w->loop, &w->server), 0);
    w->server.data = w;
    assert_int_equal(kurer_net_parse_addr("127.0.0.1:0", &w->addr), 0);
    assert_int_equal(uv_tcp_bind(&w->server, (struct sockaddr *)&w->addr, 0), 0);
    int len = sizeof(w->addr);
    assert_int_equal(uv_tcp_getsockname(&w->server, (struct sockaddr *)&w->addr, &len), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&w->server, 16, on_conn), 0);
    *state = w;
    return 0;
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int teardown(void **state)
{
    world *w = *state;
    /* After a failed assertion handles may be left open: close everything. Connections closed
     * this way leak their memory, which only matters when the test has already failed. */
    uv_close((uv_handle_t *)&w->server, NULL);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    uv_walk(&w->loop, close_any, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    free(w);
    return 0;
}

/* Runs the loop until *flag >= want or ms pass. */
static void run_until(world *w, const int *flag, int want, uint64_t ms)
{
    uint64_t end = kurer_time_mono_ms() + ms;
    while (*flag < want && kurer_time_mono_ms() < end)
        uv_run(&w->loop, UV_RUN_NOWAIT);
}

static kurer_conn *connect_client(world *w)
{
    kurer_conn *c;
    assert_int_equal(kurer_conn_connect(&c, &w->loop, (struct sockaddr *)&w->addr, NULL, &cli_cbs,
                                        KURER_NOISE_IK, w->dev_sk, w->relay_pk,
                                        (const uint8_t *)"hello", 5, w),
                     0);
    return c;
}

static void test_handshake_and_records(void **state)
{
    world *w = *state;
    w->echo = 1;
    kurer_conn *c = connect_client(w);
    run_until(w, &w->cli_established, 1, 3000);
    assert_string_equal(w->cli_payload, "welcome");
    /* The responder counts the peer as established only once its first transport record has
     * decrypted (a replayed message 1 never gets that far). */
    uv_run(&w->loop, UV_RUN_NOWAIT);
    assert_int_equal(w->srv_established, 0);
    /* Many records in one iteration: they leave in one batched write. */
    uint8_t msg[1000];
    for (int i = 0; i < 500; i++) {
        memset(msg, i, sizeof(msg));
        assert_int_equal(kurer_conn_send(c, msg, (size_t)(i % 999) + 1), 0);
    }
    run_until(w, &w->cli_records, 500, 5000);
    assert_int_equal(w->srv_established, 1);
    assert_int_equal(w->srv_records, 500);
    assert_int_equal(w->cli_records, 500);
    /* Oversize sends are refused locally. */
    static uint8_t big[KURER_NET_RECORD_MAX];
    assert_int_equal(kurer_conn_send(c, big, sizeof(big)), KURER_ELIMIT);
    kurer_conn_close(c, 0);
    run_until(w, &w->srv_closed, 1, 3000);
    assert_int_equal(w->cli_closed, 1);
    assert_int_equal(w->cli_close_err, 0);
    assert_int_equal(w->srv_close_err, KURER_ECLOSED);
}

static void test_refusal_readable(void **state)
{
    world *w = *state;
    w->refuse = 1;
    (void)connect_client(w);
    run_until(w, &w->cli_closed, 1, 3000);
    /* The initiator finished the handshake and read the refusal before the close. */
    assert_int_equal(w->cli_established, 1);
    assert_string_equal(w->cli_payload, "nope");
    run_until(w, &w->srv_closed, 1, 3000);
    assert_int_equal(w->srv_close_err, KURER_EPERM);
    assert_int_equal(w->srv_established, 0);
}

/* A raw TCP peer that writes garbage or nothing. */
typedef struct raw {
    uv_tcp_t tcp;
    uv_connect_t req;
    uv_write_t wreq;
    const char *bytes;
    size_t n;
    int closed;
} raw;

static void raw_read_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    static char sink[4096];
    (void)h;
    (void)s;
    *b = uv_buf_init(sink, sizeof(sink));
}

static void raw_closed(uv_handle_t *h)
{
    raw *r = h->data;
    r->closed = 1;
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    if (n < 0)
        uv_close((uv_handle_t *)s, raw_closed);
}

static void raw_connected(uv_connect_t *req, int status)
{
    raw *r = req->data;
    assert_int_equal(status, 0);
    if (r->n > 0) {
        uv_buf_t b = uv_buf_init((char *)r->bytes, (unsigned)r->n);
        assert_int_equal(uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &b, 1, NULL), 0);
    }
    uv_read_start((uv_stream_t *)&r->tcp, raw_read_alloc, raw_read);
}

static void raw_peer(world *w, raw *r, const char *bytes, size_t n)
{
    memset(r, 0, sizeof(*r));
    r->bytes = bytes;
    r->n = n;
    assert_int_equal(uv_tcp_init(&w->loop, &r->tcp), 0);
    r->tcp.data = r;
    r->req.data = r;
    assert_int_equal(uv_tcp_connect(&r->req, &r->tcp, (struct sockaddr *)&w->addr, raw_connected),
                     0);
}

static void test_garbage_and_stall(void **state)
{
    world *w = *state;
    raw garbage, oversize, stall;
    static const char junk[200] = "\x00\x60 this is not a noise message at all, but long enough";
    raw_peer(w, &garbage, junk, sizeof(junk));
    raw_peer(w, &oversize, "\xff\xff", 2);
    raw_peer(w, &stall, "", 0);
    w->echo = 1;
    kurer_conn *good = connect_client(w);
    run_until(w, &w->cli_established, 1, 3000);
    /* The good peer authenticates with its first record (else the deadline would end it). */
    assert_int_equal(kurer_conn_send(good, (const uint8_t *)"hi", 2), 0);
    run_until(w, &w->cli_records, 1, 3000);
    assert_int_equal(w->cli_records, 1);
    w->cli_records = 0;
    run_until(w, &w->srv_closed, 2, 3000);
    /* garbage (a failed decryption) and oversize: closed at once */
    assert_int_equal(w->srv_errs[0] == KURER_EDECRYPT || w->srv_errs[0] == KURER_ELIMIT, 1);
    assert_int_equal(w->srv_errs[1] == KURER_EDECRYPT || w->srv_errs[1] == KURER_ELIMIT, 1);
    assert_int_not_equal(w->srv_errs[0], w->srv_errs[1]);
    /* The stalled handshake hits its deadline (300 ms here); the good peer still works. */
    run_until(w, &stall.closed, 1, 3000);
    assert_int_equal(stall.closed, 1);
    assert_int_equal(w->srv_closed, 3);
    assert_int_equal(w->srv_errs[2], KURER_ETIMEOUT);
    run_until(w, &oversize.closed, 1, 1000);
    run_until(w, &garbage.closed, 1, 1000);
    assert_int_equal(garbage.closed + oversize.closed, 2);
    assert_int_equal(kurer_conn_send(good, (const uint8_t *)"ping", 4), 0);
    run_until(w, &w->cli_records, 1, 3000);
    assert_int_equal(w->cli_records, 1);
    kurer_conn_close(good, 0);
    run_until(w, &w->srv_closed, 4, 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_and_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_readable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_and_stall, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
