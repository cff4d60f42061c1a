/* The conformance suite's invitation case (online enrolment, relay/store.h): put once, read,
 * spend once (a second submit is EINVITEUSED), count wrong MACs, list an authority's waiting
 * requests in id order and by pages, decide once; and all of it survives a reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "store_conformance.h"

typedef struct inv_result {
    fx *f;
    int err;
    size_t n;
    kurer_store_invite rows[KURER_ENROL_PAGE + 1];
} inv_result;

static void on_inv(void *arg, int err, const kurer_store_invite *rows, size_t n)
{
    inv_result *r = arg;
    r->err = err;
    r->n = n;
    if (n > 0)
        memcpy(r->rows, rows, n * sizeof(*rows));
    r->f->done++;
}

static int run(fx *f, kurer_store_invite_req *q, inv_result *r)
{
    memset(r, 0, sizeof(*r));
    r->f = f;
    f->done = 0;
    assert_int_equal(kurer_store_invite_run(f->s, q, on_inv, r), 0);
    wait_done(f, 1);
    return r->err;
}

static kurer_store_invite_req *req(kurer_store_invite_op op, uint8_t id, uint8_t authority)
{
    static kurer_store_invite_req q;
    memset(&q, 0, sizeof(q));
    q.op = op;
    memset(q.inv.id, id, sizeof(q.inv.id));
    memset(q.inv.authority, authority, sizeof(q.inv.authority));
    snprintf(q.inv.user, sizeof(q.inv.user), "u%u@fm.dk", id);
    q.inv.device_id = id;
    memset(q.inv.verifier, id ^ 0x5a, sizeof(q.inv.verifier));
    q.inv.created_at = 1000;
    q.inv.expires_at = 2000 + id;
    return &q;
}

static void submit(fx *f, uint8_t id, int want)
{
    inv_result r;
    kurer_store_invite_req *q = req(KURER_INVITE_SUBMIT, id, 0);
    memcpy(q->inv.request, "request", 7);
    q->inv.request_len = 7;
    q->inv.request[6] = (uint8_t)('0' + id % 10);
    memset(q->inv.authority_mac, 0x77, sizeof(q->inv.authority_mac));
    q->inv.submitted_at = 1500;
    assert_int_equal(run(f, q, &r), want);
}

void test_invites(void **state)
{
    fx *f = *state;
    inv_result r;
    for (uint8_t id = 1; id <= 7; id++)
        assert_int_equal(run(f, req(KURER_INVITE_PUT, id, id <= 6 ? 0xaa : 0xbb), &r), 0);
    assert_int_equal(run(f, req(KURER_INVITE_PUT, 3, 0xaa), &r), KURER_EEXIST);
    assert_int_equal(run(f, req(KURER_INVITE_GET, 9, 0), &r), KURER_ENOTFOUND);
    assert_int_equal(run(f, req(KURER_INVITE_GET, 3, 0), &r), 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.rows[0].user, "u3@fm.dk");
    assert_int_equal(r.rows[0].device_id, 3);
    assert_int_equal(r.rows[0].state, KURER_ENROL_OPEN);
    assert_int_equal(r.rows[0].expires_at, 2003);
    assert_int_equal(r.rows[0].request_len, 0);
    /* wrong MACs are counted */
    assert_int_equal(run(f, req(KURER_INVITE_FAIL, 3, 0), &r), 0);
    assert_int_equal(run(f, req(KURER_INVITE_FAIL, 3, 0), &r), 0);
    assert_int_equal(run(f, req(KURER_INVITE_FAIL, 9, 0), &r), KURER_ENOTFOUND);
    /* spent once */
    for (uint8_t id = 1; id <= 7; id++)
        submit(f, id, 0);
    submit(f, 3, KURER_EINVITEUSED);
    assert_int_equal(run(f, req(KURER_INVITE_GET, 3, 0), &r), 0);
    assert_int_equal(r.rows[0].state, KURER_ENROL_WAITING);
    assert_int_equal(r.rows[0].failures, 2);
    assert_int_equal(r.rows[0].request_len, 7);
    assert_memory_equal(r.rows[0].request, "reques3", 7);
    /* decided once */
    kurer_store_invite_req *q = req(KURER_INVITE_DECIDE, 2, 0);
    q->inv.state = KURER_ENROL_APPROVED;
    memcpy(q->inv.chain, "chain", 5);
    q->inv.chain_len = 5;
    assert_int_equal(run(f, q, &r), 0);
    q = req(KURER_INVITE_DECIDE, 2, 0);
    q->inv.state = KURER_ENROL_REJECTED;
    assert_int_equal(run(f, q, &r), KURER_ESTATE);
    /* the list: authority 0xaa's waiting ones (1, 3, 4, 5, 6: 2 is decided, 7 is 0xbb's), by id,
     * in pages */
    q = req(KURER_INVITE_LIST, 0, 0xaa);
    q->limit = 3;
    assert_int_equal(run(f, q, &r), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.rows[0].id[0], 1);
    assert_int_equal(r.rows[1].id[0], 3);
    assert_int_equal(r.rows[2].id[0], 4);
    assert_memory_equal(r.rows[2].authority_mac, "\x77\x77\x77\x77", 4);
    q = req(KURER_INVITE_LIST, 0, 0xaa);
    q->limit = 3;
    q->has_after = 1;
    memset(q->after, 4, sizeof(q->after));
    assert_int_equal(run(f, q, &r), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.rows[0].id[0], 5);
    assert_int_equal(r.rows[1].id[0], 6);
    /* it is all still there after a reopen */
    kurer_store_close(f->s);
    f->s = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->be->open(&f->s, &f->loop, f->dir, f->key), 0);
    assert_int_equal(run(f, req(KURER_INVITE_GET, 2, 0), &r), 0);
    assert_int_equal(r.rows[0].state, KURER_ENROL_APPROVED);
    assert_int_equal(r.rows[0].chain_len, 5);
    assert_memory_equal(r.rows[0].chain, "chain", 5);
    submit(f, 2, KURER_EINVITEUSED);
}
