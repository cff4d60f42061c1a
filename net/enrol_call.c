/* One enrolment request over a short Noise NK session (kurer/enrol_call.h). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/enrol_call.h"
#include "kurer/frame.h"
#include "kurer/net.h"

typedef struct call_ctx {
    kurer_conn *c;
    uv_timer_t timer;
    const kurer_enrol_request *req;
    kurer_enrol_reply *rep;
    int answered, established, err;
} call_ctx;

static void on_established(kurer_conn *c, const uint8_t *p, size_t n)
{
    call_ctx *x = kurer_conn_data(c);
    kurer_handshake_accept acc;
    kurer_buf b;
    x->established = 1;
    int rc = kurer_handshake_accept_decode(p, n, &acc);
    if (rc == 0 && acc.has_error)
        rc = acc.error_code;
    kurer_buf_init(&b, KURER_ENROL_RECORD_MAX);
    if (rc == 0)
        rc = kurer_enrol_request_encode(x->req, &b);
    if (rc == 0)
        rc = kurer_conn_send(c, b.data, b.len);
    kurer_buf_release(&b);
    if (rc != 0) {
        x->err = rc;
        kurer_conn_close(c, rc);
    }
}

static void on_record(kurer_conn *c, uint8_t *p, size_t n)
{
    call_ctx *x = kurer_conn_data(c);
    int rc = kurer_enrol_reply_decode(p, n, x->rep);
    if (rc == 0 && x->rep->request_id != x->req->request_id)
        rc = KURER_EMALFORMED;
    if (rc == 0)
        x->answered = 1;
    else
        x->err = rc;
    kurer_conn_close(c, 0);
}

static void timer_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_close(kurer_conn *c, int err)
{
    call_ctx *x = kurer_conn_data(c);
    if (!x->answered && x->err == 0)
        x->err = err != 0 ? err : KURER_ECLOSED;
    if (!x->answered && x->err == KURER_ECLOSED && !x->established)
        x->err = KURER_EHANDSHAKE;
    x->c = NULL;
    uv_timer_stop(&x->timer);
    uv_close((uv_handle_t *)&x->timer, timer_closed);
}

static void on_timeout(uv_timer_t *t)
{
    call_ctx *x = t->data;
    x->err = KURER_ETIMEOUT;
    if (x->c != NULL)
        kurer_conn_close(x->c, KURER_ETIMEOUT);
}

int kurer_enrol_call(const char *relay, const uint8_t relay_key[32], const kurer_enrol_request *req,
                     kurer_enrol_reply *rep, int timeout_ms)
{
    static const kurer_conn_cbs cbs = {NULL, on_established, on_record, NULL, NULL, on_close};
    struct sockaddr_storage addr;
    uv_loop_t loop;
    call_ctx x;
    kurer_buf hello;
    int rc;
    memset(rep, 0, sizeof(*rep));
    if ((rc = kurer_net_resolve(relay, &addr)) != 0)
        return rc;
    memset(&x, 0, sizeof(x));
    x.req = req;
    x.rep = rep;
    if (uv_loop_init(&loop) != 0)
        return KURER_EIO;
    signal(SIGPIPE, SIG_IGN);
    kurer_buf_init(&hello, 64);
    if ((rc = kurer_enrol_hello_encode(&hello)) != 0) {
        kurer_buf_release(&hello);
        (void)uv_loop_close(&loop);
        return rc;
    }
    uv_timer_init(&loop, &x.timer);
    x.timer.data = &x;
    uv_timer_start(&x.timer, on_timeout, (uint64_t)timeout_ms, 0);
    rc = kurer_conn_connect(&x.c, &loop, (struct sockaddr *)&addr, NULL, &cbs, KURER_NOISE_NK, NULL,
                            relay_key, hello.data, hello.len, &x);
    kurer_buf_release(&hello);
    if (rc != 0)
        uv_close((uv_handle_t *)&x.timer, timer_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
    if (rc != 0)
        return rc;
    return x.answered ? 0 : x.err;
}
