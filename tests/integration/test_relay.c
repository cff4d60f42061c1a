/* Relay integration tests: real kurer-relay processes on 127.0.0.1 (port 0), spoken to through
 * net/ (the client-side transport), crypto/ and proto/. Every wait is bounded. The world, the
 * relay process and the test client are in relay_harness.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "relay_harness.h"

/* ---- tests -------------------------------------------------------------------------------- */

static void test_handshake_ok(void **state)
{
    world *w = *state;
    device d;
    client cl;
    kurer_server_frame f;
    start_relay(w, NULL, NULL);
    make_device(w, &d, "anna@mof", 1, 10, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cl, &d), 0);
    assert_int_equal(cl.acc.queued, 0);
    assert_true(cl.acc.server_time > 0);
    expect_body(&cl, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
    kurer_client_frame p;
    memset(&p, 0, sizeof(p));
    p.body = KURER_CLIENT_PING;
    p.u.ping.client_time = 42;
    uint64_t id = cl_send(&cl, &p);
    expect_body(&cl, &f, KURER_SERVER_PONG);
    assert_int_equal(f.request_id, id);
    assert_int_equal(f.u.pong.client_time, 42);
    kurer_server_frame_release(&f);
    cl_free(&cl);
    int status = stop_relay(w, SIGTERM);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_refuse_unknown_root(void **state)
{
    world *w = *state;
    device d;
    client cl;
    start_relay(w, NULL, NULL);
    make_device(w, &d, "anna@mof", 1, 10, 1, 0, 0);
    assert_int_equal(cl_connect(w, &cl, &d), KURER_EUNTRUSTED);
    cl_free(&cl);
}

static void test_refuse_expired(void **state)
{
    world *w = *state;
    device d;
    client cl;
    start_relay(w, NULL, NULL);
    make_device(w, &d, "anna@mof", 1, 10, 0, 1, 0);
    assert_int_equal(cl_connect(w, &cl, &d), KURER_EEXPIRED);
    cl_free(&cl);
}

static void test_refuse_key_mismatch(void **state)
{
    world *w = *state;
    device d;
    client cl;
    start_relay(w, NULL, NULL);
    make_device(w, &d, "anna@mof", 1, 10, 0, 0, 1);
    assert_int_equal(cl_connect(w, &cl, &d), KURER_EKEYMISMATCH);
    cl_free(&cl);
}

static void test_refuse_revoked(void **state)
{
    world *w = *state;
    device d, ok;
    client cl;
    kurer_crl crl;
    kurer_buf b;
    char path[300];
    memset(&crl, 0, sizeof(crl));
    crl.version = 1;
    crl.issued_at = kurer_time_unix();
    crl.next_update = crl.issued_at + DAY;
    crl.revoked = calloc(1, sizeof(*crl.revoked));
    crl.revoked[0].serial = 66;
    crl.revoked[0].revoked_at = crl.issued_at;
    crl.revoked[0].reason = KURER_REASON_DEVICE_LOST;
    crl.n_revoked = 1;
    assert_int_equal(kurer_crl_sign(&crl, &w->auth_key, &w->auth), 0);
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    assert_int_equal(kurer_crl_encode(&crl, &b), 0);
    kurer_crl_release(&crl);
    snprintf(path, sizeof(path), "%s/mof.crl", w->dir);
    write_file(path, b.data, b.len);
    kurer_buf_release(&b);
    start_relay(w, "--crl", path);
    make_device(w, &d, "anna@mof", 1, 66, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cl, &d), KURER_EREVOKED);
    cl_free(&cl);
    make_device(w, &ok, "anna@mof", 2, 67, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cl, &ok), 0);
    cl_free(&cl);
}

/* B registers, goes away; A sends five; B gets them in order with the relay's `from`; acks three;
 * reconnects and gets exactly the other two. */
static void test_offline_delivery_order_ack(void **state)
{
    world *w = *state;
    device a, b;
    client ca, cb;
    kurer_server_frame f;
    uint8_t ids[5][16];
    start_relay(w, NULL, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    cl_free(&cb);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(send_one(&ca, &b, i, ids[i]), KURER_SEND_ACCEPTED);
    cl_free(&ca);

    assert_int_equal(cl_connect(w, &cb, &b), 0);
    assert_int_equal(cb.acc.queued, 5);
    uint64_t seqs[5], last = 0;
    for (uint32_t i = 0; i < 5; i++) {
        expect_body(&cb, &f, KURER_SERVER_DELIVER);
        assert_true(f.u.deliver.seq > last);
        last = seqs[i] = f.u.deliver.seq;
        assert_memory_equal(f.u.deliver.envelope.id, ids[i], 16);
        assert_string_equal(f.u.deliver.envelope.from.user, "anna@mof");
        assert_int_equal(f.u.deliver.envelope.from.device_id, 1);
        assert_true(f.u.deliver.envelope.server_ts > 0);
        uint32_t n;
        memcpy(&n, f.u.deliver.envelope.content, 4);
        assert_int_equal(n, i);
        kurer_server_frame_release(&f);
    }
    expect_body(&cb, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
    kurer_client_frame ack;
    memset(&ack, 0, sizeof(ack));
    ack.body = KURER_CLIENT_ACK;
    ack.u.ack.seqs = seqs;
    ack.u.ack.n = 3;
    uint64_t rid = cl_send(&cb, &ack);
    expect_body(&cb, &f, KURER_SERVER_OK);
    assert_int_equal(f.request_id, rid);
    kurer_server_frame_release(&f);
    cl_free(&cb);

    /* Unacked ones come again, acked ones never. */
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    assert_int_equal(cb.acc.queued, 2);
    for (uint32_t i = 3; i < 5; i++) {
        expect_body(&cb, &f, KURER_SERVER_DELIVER);
        assert_int_equal(f.u.deliver.seq, seqs[i]);
        assert_memory_equal(f.u.deliver.envelope.id, ids[i], 16);
        kurer_server_frame_release(&f);
    }
    expect_body(&cb, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
    /* A connected device gets new envelopes at once. */
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    assert_int_equal(send_one(&ca, &b, 9, ids[0]), KURER_SEND_ACCEPTED);
    expect_body(&cb, &f, KURER_SERVER_DELIVER);
    assert_memory_equal(f.u.deliver.envelope.id, ids[0], 16);
    kurer_server_frame_release(&f);
    cl_free(&ca);
    cl_free(&cb);
}

static void test_unknown_and_stale(void **state)
{
    world *w = *state;
    device a, b1, b2, ghost;
    client ca, c;
    kurer_server_frame f;
    start_relay(w, NULL, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b1, "bo@mof", 1, 11, 0, 0, 0);
    make_device(w, &b2, "bo@mof", 2, 12, 0, 0, 0);
    make_device(w, &ghost, "ghost@mof", 1, 13, 0, 0, 0);
    assert_int_equal(cl_connect(w, &c, &b1), 0);
    cl_free(&c);
    assert_int_equal(cl_connect(w, &c, &b2), 0);
    cl_free(&c);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    expect_body(&ca, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
    assert_int_equal(send_one(&ca, &ghost, 1, NULL), KURER_SEND_UNKNOWN_USER);
    /* Only one of bo's two devices: stale, with the current list. */
    kurer_client_frame q;
    kurer_envelope e;
    uint8_t content[40];
    memset(&q, 0, sizeof(q));
    make_env(&e, &b1, 1, content);
    q.body = KURER_CLIENT_SEND;
    q.u.send.envelopes = &e;
    q.u.send.n = 1;
    cl_send(&ca, &q);
    expect_body(&ca, &f, KURER_SERVER_SEND_RESULT);
    assert_int_equal(f.u.send_result.n, 1);
    assert_int_equal(f.u.send_result.users[0].status, KURER_SEND_STALE_DEVICES);
    assert_int_equal(f.u.send_result.users[0].current.n_devices, 2);
    kurer_server_frame_release(&f);
    cl_free(&ca);
}
static void test_bad_input(void **state)
{
    world *w = *state;
    char cfg[300];
    device a;
    client ca;
    kurer_server_frame f;
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "# test limits\nhandshake_timeout_ms = 500\nmax_record = 4096\n";
    write_file(cfg, conf, strlen(conf));
    start_relay(w, "--config", cfg);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    expect_body(&ca, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);

    int garbage = raw_connect(w), oversize = raw_connect(w), stall = raw_connect(w);
    char junk[200];
    memset(junk, 'x', sizeof(junk));
    junk[0] = 0;
    junk[1] = 120;
    assert_int_equal(write(garbage, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    assert_int_equal(write(oversize, "\xff\xff", 2), 2);
    assert_true(raw_closed_within(garbage, 3000));
    assert_true(raw_closed_within(oversize, 3000));
    assert_true(raw_closed_within(stall, 5000));
    close(garbage);
    close(oversize);
    close(stall);

    /* Garbage inside an authenticated session: a typed error, then the close. */
    kurer_client_frame p;
    memset(&p, 0, sizeof(p));
    p.body = KURER_CLIENT_PING;
    cl_send(&ca, &p);
    expect_body(&ca, &f, KURER_SERVER_PONG);
    kurer_server_frame_release(&f);
    assert_int_equal(kurer_conn_send(ca.c, (const uint8_t *)"\xff\xfe\xfd", 3), 0);
    expect_body(&ca, &f, KURER_SERVER_ERROR);
    assert_int_equal(f.request_id, 0);
    kurer_server_frame_release(&f);
    pump(&ca, &ca.closed, 5000);
    assert_true(ca.closed);
    cl_free(&ca);
    /* The relay is fine. */
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    cl_free(&ca);
    int status = stop_relay(w, SIGTERM);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* SIGKILL while envelopes are being sent; restart; every acknowledged envelope arrives, once
 * after dedup by id. */
static void test_sigkill_restart(void **state)
{
    world *w = *state;
    device a, b;
    client ca, cb;
    kurer_server_frame f;
    enum { N = 400, BATCH = 8 };
    static uint8_t ids[N][16];
    static int accepted[N];
    uint8_t contents[BATCH][40];
    kurer_envelope e[BATCH];
    start_relay(w, NULL, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    cl_free(&cb);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    memset(accepted, 0, sizeof(accepted));
    /* Requests go out back to back; answers are matched by request id. */
    uint64_t req_first[N / BATCH];
    size_t sent = 0, batches = 0;
    int killed = 0;
    size_t acked_batches = 0;
    while (sent < N && ca.c != NULL) {
        for (size_t k = 0; k < BATCH; k++) {
            make_env(&e[k], &b, (uint32_t)(sent + k), contents[k]);
            memcpy(ids[sent + k], e[k].id, 16);
        }
        kurer_client_frame q;
        memset(&q, 0, sizeof(q));
        q.body = KURER_CLIENT_SEND;
        q.u.send.envelopes = e;
        q.u.send.n = BATCH;
        req_first[batches++] = cl_send(&ca, &q);
        sent += BATCH;
        for (int k = 0; k < 20; k++)
            uv_run(&ca.loop, UV_RUN_NOWAIT);
        while (ca.qhead < ca.qtail) {
            assert_int_equal(cl_next(&ca, &f, 0), 1);
            if (f.body == KURER_SERVER_SEND_RESULT &&
                f.u.send_result.users[0].status == KURER_SEND_ACCEPTED) {
                size_t bi = (size_t)(f.request_id - req_first[0]);
                for (size_t k = 0; k < BATCH; k++)
                    accepted[bi * BATCH + k] = 1;
                acked_batches++;
            }
            kurer_server_frame_release(&f);
        }
        /* Kill while requests are still in flight: some answered, some not. */
        if (!killed && acked_batches >= 10) {
            stop_relay(w, SIGKILL);
            killed = 1;
        }
        usleep(2000);
    }
    assert_true(killed);
    /* Whatever answers were still in flight when the relay died are not acknowledgements. */
    pump(&ca, &ca.closed, 3000);
    while (ca.qhead < ca.qtail) {
        assert_int_equal(cl_next(&ca, &f, 0), 1);
        if (f.body == KURER_SERVER_SEND_RESULT &&
            f.u.send_result.users[0].status == KURER_SEND_ACCEPTED) {
            size_t bi = (size_t)(f.request_id - req_first[0]);
            for (size_t k = 0; k < BATCH; k++)
                accepted[bi * BATCH + k] = 1;
        }
        kurer_server_frame_release(&f);
    }
    cl_free(&ca);
    size_t n_acc = 0;
    for (size_t i = 0; i < N; i++)
        n_acc += (size_t)accepted[i];
    assert_true(n_acc > 0);

    start_relay(w, NULL, NULL);
    static int got[N];
    memset(got, 0, sizeof(got));
    for (int round = 0; round < 2; round++) {
        /* Two rounds without acks: the second sees everything again (at-least-once). */
        assert_int_equal(cl_connect(w, &cb, &b), 0);
        for (;;) {
            assert_int_equal(cl_next(&cb, &f, 10000), 1);
            if (f.body == KURER_SERVER_QUEUE_EMPTY) {
                kurer_server_frame_release(&f);
                break;
            }
            assert_int_equal(f.body, KURER_SERVER_DELIVER);
            uint32_t n;
            memcpy(&n, f.u.deliver.envelope.content, 4);
            assert_true(n < N);
            assert_memory_equal(f.u.deliver.envelope.id, ids[n], 16);
            got[n]++;
            kurer_server_frame_release(&f);
        }
        cl_free(&cb);
    }
    size_t n_got = 0;
    for (size_t i = 0; i < N; i++) {
        if (accepted[i])
            assert_int_equal(got[i], 2); /* present in both rounds: once each, dedup -> once */
        if (got[i])
            n_got++;
        assert_true(got[i] == 0 || got[i] == 2);
    }
    fprintf(stderr, "sigkill: sent %zu, acknowledged %zu, delivered %zu distinct\n", sent, n_acc,
            n_got);
    assert_true(n_got >= n_acc);
}

/* ---- prekeys ------------------------------------------------------------------------------ */

static void test_prekeys_upload_fetch(void **state)
{
    world *w = *state;
    device a, a2, b;
    client ca, cb;
    kurer_server_frame r;
    kurer_prekey_upload u, u2;
    kurer_one_time_prekey otk[5];
    start_relay(w, NULL, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &a2, "anna@mof", 2, 12, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &ca, &a2), 0); /* a second device that never uploads */
    cl_free(&ca);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    make_upload(&a, &u, otk, 1, 1, 5, 0);
    assert_int_equal(upload(&ca, &u), 0);
    cl_free(&ca); /* the owner need not be online for a fetch */

    assert_int_equal(cl_connect(w, &cb, &b), 0);
    wait_answer(&cb, send_fetch(&cb, "anna@mof", NULL, 0), &r);
    assert_int_equal(r.body, KURER_SERVER_BUNDLES);
    assert_int_equal(r.u.bundles.n, 1); /* anna/2 has no prekeys: left out */
    const kurer_prekey_bundle *bd = &r.u.bundles.bundles[0];
    assert_string_equal(bd->address.user, "anna@mof");
    assert_int_equal(bd->address.device_id, 1);
    assert_int_equal(bd->registration_id, 77);
    assert_int_equal(bd->signed_prekey.id, 1);
    assert_memory_equal(bd->signed_prekey.public_key, u.signed_prekey.public_key, 33);
    assert_memory_equal(bd->signed_prekey.signature, u.signed_prekey.signature, 64);
    assert_int_equal(kurer_identity_verify(a.id_pub, bd->signed_prekey.public_key, 33,
                                           bd->signed_prekey.signature),
                     0);
    assert_true(bd->has_one_time);
    assert_int_equal(bd->one_time.id, 1);
    assert_memory_equal(bd->one_time.public_key, otk[0].public_key, 33);
    assert_int_equal(bd->chain.n, 2);
    assert_int_equal(bd->chain.certs[0].body.serial, 10);
    kurer_server_frame_release(&r);

    /* A new signed prekey replaces the old one; the pool keeps its one-time prekeys. */
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    make_upload(&a, &u2, NULL, 2, 0, 0, 0);
    assert_int_equal(upload(&ca, &u2), 0);
    cl_free(&ca);
    uint32_t ids[2] = {1, 9}; /* 9 does not exist: left out */
    wait_answer(&cb, send_fetch(&cb, "anna@mof", ids, 2), &r);
    assert_int_equal(r.body, KURER_SERVER_BUNDLES);
    assert_int_equal(r.u.bundles.n, 1);
    assert_int_equal(r.u.bundles.bundles[0].signed_prekey.id, 2);
    assert_memory_equal(r.u.bundles.bundles[0].signed_prekey.public_key,
                        u2.signed_prekey.public_key, 33);
    assert_int_equal(r.u.bundles.bundles[0].one_time.id, 2);
    kurer_server_frame_release(&r);
    /* Unknown users give an empty answer. */
    wait_answer(&cb, send_fetch(&cb, "ghost@mof", NULL, 0), &r);
    assert_int_equal(r.body, KURER_SERVER_BUNDLES);
    assert_int_equal(r.u.bundles.n, 0);
    kurer_server_frame_release(&r);
    cl_free(&cb);

    /* Prekeys survive a restart. */
    assert_int_equal(WEXITSTATUS(stop_relay(w, SIGTERM)), 0);
    start_relay(w, NULL, NULL);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    wait_answer(&cb, send_fetch(&cb, "anna@mof", NULL, 0), &r);
    assert_int_equal(r.u.bundles.n, 1);
    assert_int_equal(r.u.bundles.bundles[0].signed_prekey.id, 2);
    assert_int_equal(r.u.bundles.bundles[0].one_time.id, 3);
    kurer_server_frame_release(&r);
    cl_free(&cb);
}

/* Two fetchers race for a pool of 40 with 30 requests each: every one-time prekey is handed
 * out exactly once, and the 20 fetches that find the pool empty get bundles without one. */
static void test_prekeys_once(void **state)
{
    world *w = *state;
    enum { POOL = 40, PER = 30 };
    device a, b, c;
    client ca, cb, cc;
    kurer_server_frame r;
    kurer_prekey_upload u;
    kurer_one_time_prekey otk[POOL];
    int seen[POOL + 1];
    uint64_t idb[PER], idc[PER];
    char cfg[300];
    /* Not the per-taker bound under test here (relay_prekey_take does that): unbounded. */
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "prekey_take_max = 0\n";
    write_file(cfg, conf, strlen(conf));
    start_relay(w, "--config", cfg);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    make_device(w, &c, "carl@mof", 1, 12, 0, 0, 0);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    make_upload(&a, &u, otk, 1, 1, POOL, 0);
    assert_int_equal(upload(&ca, &u), 0);
    cl_free(&ca);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    assert_int_equal(cl_connect(w, &cc, &c), 0);
    for (int i = 0; i < PER; i++) {
        idb[i] = send_fetch(&cb, "anna@mof", NULL, 0);
        idc[i] = send_fetch(&cc, "anna@mof", NULL, 0);
    }
    memset(seen, 0, sizeof(seen));
    int without = 0;
    for (int k = 0; k < 2; k++) {
        client *cl = k == 0 ? &cb : &cc;
        uint64_t *ids = k == 0 ? idb : idc;
        for (int i = 0; i < PER; i++) {
            wait_answer(cl, ids[i], &r);
            assert_int_equal(r.body, KURER_SERVER_BUNDLES);
            assert_int_equal(r.u.bundles.n, 1);
            if (r.u.bundles.bundles[0].has_one_time) {
                uint32_t id = r.u.bundles.bundles[0].one_time.id;
                assert_true(id >= 1 && id <= POOL);
                // cppcheck-suppress arrayIndexOutOfBoundsCond ; the assert above stops the test
                assert_int_equal(seen[id], 0);
                seen[id] = 1;
            } else {
                without++;
            }
            kurer_server_frame_release(&r);
        }
    }
    for (int i = 1; i <= POOL; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(without, 2 * PER - POOL);
    cl_free(&cb);
    cl_free(&cc);
}

static void test_prekeys_bad_signature(void **state)
{
    world *w = *state;
    device a, other, b;
    client ca, cb;
    kurer_server_frame r;
    kurer_prekey_upload u;
    kurer_one_time_prekey otk[3];
    start_relay(w, NULL, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &other, "anna@mof", 2, 12, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    make_upload(&a, &u, otk, 1, 1, 3, 1); /* corrupted signature */
    assert_int_equal(upload(&ca, &u), KURER_EBADSIG);
    make_upload(&other, &u, otk, 1, 1, 3, 0); /* valid, but by another device's identity key */
    assert_int_equal(upload(&ca, &u), KURER_EBADSIG);
    /* The connection stays and nothing was stored. */
    assert_null(ca.closed ? "closed" : NULL);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    wait_answer(&cb, send_fetch(&cb, "anna@mof", NULL, 0), &r);
    assert_int_equal(r.body, KURER_SERVER_BUNDLES);
    assert_int_equal(r.u.bundles.n, 0);
    kurer_server_frame_release(&r);
    make_upload(&a, &u, otk, 1, 1, 3, 0);
    assert_int_equal(upload(&ca, &u), 0);
    wait_answer(&cb, send_fetch(&cb, "anna@mof", NULL, 0), &r);
    assert_int_equal(r.u.bundles.n, 1);
    kurer_server_frame_release(&r);
    cl_free(&ca);
    cl_free(&cb);
}

/* The next PrekeysLow push, skipping other pushes; 0 if none before the answer to `until`. */
static int next_low(client *cl, uint64_t until, uint32_t *remaining)
{
    kurer_server_frame r;
    for (;;) {
        assert_int_equal(cl_next(cl, &r, 10000), 1);
        if (r.body == KURER_SERVER_PREKEYS_LOW) {
            assert_int_equal(r.request_id, 0);
            *remaining = r.u.prekeys_low.remaining;
            kurer_server_frame_release(&r);
            return 1;
        }
        int done = until != 0 && r.request_id == until;
        kurer_server_frame_release(&r);
        if (done)
            return 0;
    }
}

static void test_prekeys_low(void **state)
{
    world *w = *state;
    device a, b;
    client ca, cb;
    kurer_server_frame r;
    kurer_prekey_upload u;
    kurer_one_time_prekey otk[120];
    uint32_t remaining = 999;
    g_keep_pushes = 1;
    start_relay(w, NULL, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    /* Never uploaded: told on connect that it holds none. */
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    assert_int_equal(next_low(&ca, 0, &remaining), 1);
    assert_int_equal(remaining, 0);
    make_upload(&a, &u, otk, 1, 1, 21, 0);
    assert_int_equal(upload(&ca, &u), 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    /* 21 -> 20: not below 20, no notice. */
    wait_answer(&cb, send_fetch(&cb, "anna@mof", NULL, 0), &r);
    kurer_server_frame_release(&r);
    assert_int_equal(next_low(&ca, store_barrier(&ca), &remaining), 0);
    /* 20 -> 19: the owner is told at once. */
    wait_answer(&cb, send_fetch(&cb, "anna@mof", NULL, 0), &r);
    kurer_server_frame_release(&r);
    assert_int_equal(next_low(&ca, 0, &remaining), 1);
    assert_int_equal(remaining, 19);
    cl_free(&ca);
    /* On connect, too. */
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    assert_int_equal(next_low(&ca, 0, &remaining), 1);
    assert_int_equal(remaining, 19);
    /* Refilled: no notice on the next connect. */
    make_upload(&a, &u, otk, 2, 100, 81, 0);
    assert_int_equal(upload(&ca, &u), 0);
    cl_free(&ca);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    assert_int_equal(next_low(&ca, store_barrier(&ca), &remaining), 0);
    cl_free(&ca);
    cl_free(&cb);
}

/* prekeys_max bounds a device's pool: an upload after which it would hold more is refused with
 * ELIMIT and nothing of it is kept (not even its signed prekey); ids already held are replaced,
 * not added. */
static void test_prekeys_max(void **state)
{
    world *w = *state;
    device a, b;
    client ca, cb;
    kurer_server_frame r;
    kurer_prekey_upload u, u2;
    kurer_one_time_prekey otk[12];
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "prekeys_max = 10\n";
    write_file(cfg, conf, strlen(conf));
    const char *extra[] = {"--config", cfg, "--metrics", "127.0.0.1:0"};
    start_relay_v(w, extra, 4);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    make_upload(&a, &u, otk, 1, 1, 11, 0); /* alone over the bound */
    assert_int_equal(upload(&ca, &u), KURER_ELIMIT);
    make_upload(&a, &u, otk, 1, 1, 8, 0);
    assert_int_equal(upload(&ca, &u), 0);
    make_upload(&a, &u2, otk, 2, 5, 4, 0); /* ids 5..8 replace: still 8 */
    assert_int_equal(upload(&ca, &u2), 0);
    make_upload(&a, &u2, otk, 3, 9, 3, 0); /* 8 + 3 > 10: refused whole */
    assert_int_equal(upload(&ca, &u2), KURER_ELIMIT);
    make_upload(&a, &u2, otk, 4, 9, 2, 0); /* exactly 10 */
    assert_int_equal(upload(&ca, &u2), 0);
    assert_false(ca.closed);
    cl_free(&ca);
    /* The refused upload's signed prekey (id 3) was not stored; the pool holds ids 1..10. */
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    for (uint32_t i = 1; i <= 10; i++) {
        wait_answer(&cb, send_fetch(&cb, "anna@mof", NULL, 0), &r);
        assert_int_equal(r.body, KURER_SERVER_BUNDLES);
        assert_int_equal(r.u.bundles.n, 1);
        assert_int_equal(r.u.bundles.bundles[0].signed_prekey.id, 4);
        assert_true(r.u.bundles.bundles[0].has_one_time);
        assert_int_equal(r.u.bundles.bundles[0].one_time.id, i);
        kurer_server_frame_release(&r);
    }
    wait_answer(&cb, send_fetch(&cb, "anna@mof", NULL, 0), &r);
    assert_false(r.u.bundles.bundles[0].has_one_time);
    kurer_server_frame_release(&r);
    cl_free(&cb);
    char *page = scrape(w);
    assert_int_equal(metric(page, "kurer_prekey_uploads_over_max_total"), 2);
    assert_int_equal(metric(page, "kurer_rejections_total{reason=\"ELIMIT\"}"), 2);
    free(page);
}

/* fetch_rate bounds prekey fetches per connection: beyond the burst (4 x rate) a fetch gets
 * ERATE without taking a prekey, the connection stays, and the bucket refills. */
static void test_fetch_rate(void **state)
{
    world *w = *state;
    enum { BURST = 8, EXTRA = 4 };
    device a, b;
    client ca, cb;
    kurer_server_frame r;
    kurer_prekey_upload u;
    kurer_one_time_prekey otk[50];
    uint64_t ids[BURST + EXTRA];
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "fetch_rate = 2\n";
    write_file(cfg, conf, strlen(conf));
    const char *extra[] = {"--config", cfg, "--metrics", "127.0.0.1:0"};
    start_relay_v(w, extra, 4);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    make_upload(&a, &u, otk, 1, 1, 50, 0);
    assert_int_equal(upload(&ca, &u), 0);
    cl_free(&ca);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    for (int i = 0; i < BURST + EXTRA; i++)
        ids[i] = send_fetch(&cb, "anna@mof", NULL, 0);
    /* ERATE answers come at once, bundles after their commit: take them in any order. */
    int ok = 0, limited = 0;
    uint32_t max_id = 0;
    while (ok + limited < BURST + EXTRA) {
        assert_int_equal(cl_next(&cb, &r, 10000), 1);
        int mine = 0;
        for (int i = 0; i < BURST + EXTRA; i++)
            mine |= r.request_id == ids[i];
        if (mine && r.body == KURER_SERVER_BUNDLES) {
            ok++;
            assert_true(r.u.bundles.bundles[0].has_one_time);
            if (r.u.bundles.bundles[0].one_time.id > max_id)
                max_id = r.u.bundles.bundles[0].one_time.id;
        } else if (mine) {
            assert_int_equal(r.body, KURER_SERVER_ERROR);
            assert_int_equal(r.u.error.code, KURER_ERATE);
            limited++;
        }
        kurer_server_frame_release(&r);
    }
    assert_int_equal(max_id, (uint32_t)ok); /* the limited ones took nothing */
    /* The bucket refills at 2/s: at most one more went through while the requests arrived. */
    assert_true(ok >= BURST && ok <= BURST + 1);
    assert_int_equal(ok + limited, BURST + EXTRA);
    assert_false(cb.closed);
    usleep(600 * 1000); /* one token back */
    wait_answer(&cb, send_fetch(&cb, "anna@mof", NULL, 0), &r);
    assert_int_equal(r.body, KURER_SERVER_BUNDLES);
    assert_int_equal(r.u.bundles.bundles[0].one_time.id, (uint32_t)ok + 1);
    kurer_server_frame_release(&r);
    cl_free(&cb);
    char *page = scrape(w);
    assert_int_equal(metric(page, "kurer_prekey_fetches_rate_limited_total"), (uint64_t)limited);
    assert_int_equal(metric(page, "kurer_rejections_total{reason=\"ERATE\"}"), (uint64_t)limited);
    assert_int_equal(metric(page, "kurer_prekeys_handed_out_total"), (uint64_t)ok + 1);
    free(page);
}

/* ---- revocation over NK ------------------------------------------------------------------- */

static void test_revocation_nk(void **state)
{
    world *w = *state;
    device d, ok;
    client cd, cok, nk;
    kurer_server_frame f;
    kurer_buf v1, v2;
    uint64_t s66 = 66, both[2] = {66, 68};
    g_keep_pushes = 1;
    start_relay(w, NULL, NULL);
    make_device(w, &d, "anna@mof", 1, 66, 0, 0, 0);
    make_device(w, &ok, "anna@mof", 2, 67, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cd, &d), 0);
    assert_int_equal(cl_connect(w, &cok, &ok), 0);
    make_crl(w, 1, &s66, 1, NULL, &v1);
    make_crl(w, 2, both, 2, NULL, &v2);

    /* An NK peer uploads v1: stored, the revoked device is thrown out, the other is told. The
     * NK session ends after its one upload. */
    assert_int_equal(cl_connect_nk(w, &nk), 0);
    assert_int_equal(nk.acc.protocol_version, KURER_PROTOCOL_VERSION);
    assert_int_equal(upload_crl(&nk, &v1), 0);
    pump(&nk, &nk.closed, 5000);
    assert_true(nk.closed);
    cl_free(&nk);
    expect_kicked(&cd, KURER_EREVOKED);
    cl_free(&cd);
    for (;;) {
        assert_int_equal(cl_next(&cok, &f, 10000), 1);
        if (f.body == KURER_SERVER_REVOCATION_INDEX)
            break;
        kurer_server_frame_release(&f);
    }
    assert_int_equal(f.request_id, 0);
    assert_int_equal(f.u.revocation_index.n, 1);
    assert_int_equal(f.u.revocation_index.lists[0].version, 1);
    assert_int_equal(f.u.revocation_index.lists[0].size, v1.len);
    kurer_server_frame_release(&f);
    assert_int_equal(cl_connect(w, &cd, &d), KURER_EREVOKED);
    cl_free(&cd);
    /* The same version again, and an older one after a newer: ESTALE. */
    assert_int_equal(cl_connect_nk(w, &nk), 0);
    assert_int_equal(upload_crl(&nk, &v1), KURER_ESTALE);
    cl_free(&nk);
    /* Anything but an upload on NK (reading the lists too): EPERM and the close. */
    kurer_client_frame q;
    assert_int_equal(cl_connect_nk(w, &nk), 0);
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_REVOCATIONS;
    uint64_t pid = cl_send(&nk, &q);
    wait_answer(&nk, pid, &f);
    assert_int_equal(f.body, KURER_SERVER_ERROR);
    assert_int_equal(f.u.error.code, KURER_EPERM);
    kurer_server_frame_release(&f);
    pump(&nk, &nk.closed, 5000);
    assert_true(nk.closed);
    cl_free(&nk);
    /* An authenticated device fetches the lists it must enforce: the index, then the list's
     * bytes (one chunk here), which are the list uploaded. */
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_REVOCATIONS;
    wait_answer(&cok, cl_send(&cok, &q), &f);
    assert_int_equal(f.body, KURER_SERVER_REVOCATION_INDEX);
    assert_int_equal(f.u.revocation_index.n, 1);
    assert_int_equal(f.u.revocation_index.lists[0].version, 1);
    assert_int_equal(f.u.revocation_index.more, 0);
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_REVOCATION_CHUNK_FETCH;
    memcpy(q.u.revocation_chunk_fetch.issuer_key_id, f.u.revocation_index.lists[0].issuer_key_id,
           KURER_KEY_ID_LEN);
    q.u.revocation_chunk_fetch.version = 1;
    kurer_server_frame_release(&f);
    wait_answer(&cok, cl_send(&cok, &q), &f);
    assert_int_equal(f.body, KURER_SERVER_REVOCATION_CHUNK);
    assert_int_equal(f.u.revocation_chunk.total, v1.len);
    assert_int_equal(f.u.revocation_chunk.len, v1.len);
    assert_memory_equal(f.u.revocation_chunk.data, v1.data, v1.len);
    kurer_server_frame_release(&f);
    cl_free(&cok);

    /* Durable: after a restart (without any --crl) d is still refused; v2 then v1 -> ESTALE. */
    assert_int_equal(WEXITSTATUS(stop_relay(w, SIGTERM)), 0);
    start_relay(w, NULL, NULL);
    assert_int_equal(cl_connect(w, &cd, &d), KURER_EREVOKED);
    cl_free(&cd);
    assert_int_equal(cl_connect(w, &cok, &ok), 0);
    cl_free(&cok);
    assert_int_equal(cl_connect_nk(w, &nk), 0);
    assert_int_equal(upload_crl(&nk, &v2), 0);
    cl_free(&nk);
    assert_int_equal(cl_connect_nk(w, &nk), 0);
    assert_int_equal(upload_crl(&nk, &v1), KURER_ESTALE);
    cl_free(&nk);
    kurer_buf_release(&v1);
    kurer_buf_release(&v2);
}

/* A list that arrives while a device's handshake waits for the store (its chain was checked
 * before the list, its HandshakeAccept would go out after) still refuses the device. The relay
 * is stopped so that the device's first message and the upload are read in one loop iteration,
 * the handshake first. */
static void test_revoked_during_handshake(void **state)
{
    world *w = *state;
    device d;
    client cd, nk;
    kurer_buf v1;
    uint64_t s66 = 66;
    int st;
    start_relay(w, NULL, NULL);
    make_device(w, &d, "anna@mof", 1, 66, 0, 0, 0);
    make_crl(w, 1, &s66, 1, NULL, &v1);
    assert_int_equal(cl_connect_nk(w, &nk), 0);

    /* The device's TCP connection is accepted; its first message is not sent yet (it goes out
     * when the client's loop runs). */
    kurer_buf b;
    kurer_handshake_init hi;
    memset(&cd, 0, sizeof(cd));
    cd.next_req = 1;
    assert_int_equal(uv_loop_init(&cd.loop), 0);
    hi.protocol_version = KURER_PROTOCOL_VERSION;
    hi.chain = d.chain;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_handshake_init_encode(&hi, &b), 0);
    assert_int_equal(kurer_conn_connect(&cd.c, &cd.loop, (struct sockaddr *)&w->addr, NULL, &cl_cbs,
                                        KURER_NOISE_IK, d.sk, w->relay_pk, b.data, b.len, &cd),
                     0);
    kurer_buf_release(&b);
    usleep(300000);

    assert_int_equal(kill(w->relay, SIGSTOP), 0);
    assert_int_equal(waitpid(w->relay, &st, WUNTRACED), w->relay);
    assert_true(WIFSTOPPED(st));
    pump(&cd, NULL, 200); /* handshake message 1 */
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_REVOCATION;
    assert_int_equal(kurer_crl_decode(v1.data, v1.len, &q.u.revocation), 0);
    uint64_t id = cl_send(&nk, &q);
    kurer_crl_release(&q.u.revocation);
    pump(&nk, NULL, 200);
    assert_int_equal(kill(w->relay, SIGCONT), 0);

    kurer_server_frame r;
    wait_answer(&nk, id, &r);
    assert_int_equal(r.body, KURER_SERVER_OK);
    kurer_server_frame_release(&r);
    pump(&cd, &cd.established, 10000);
    if (cd.established && !cd.acc.has_error) {
        /* Accepted after the list: it must at least be thrown out at once. */
        pump(&cd, &cd.closed, 2000);
        assert_true(cd.closed);
    }
    assert_true(cd.acc.has_error);
    assert_int_equal(cd.acc.error_code, KURER_EREVOKED);
    cl_free(&cd);
    cl_free(&nk);
    kurer_buf_release(&v1);
}

#ifdef KURER_ADMIN_BIN
/* kurer-admin publish against a real relay: Ok, then the relay's ESTALE as exit 1. */
static void test_admin_publish(void **state)
{
    world *w = *state;
    device d;
    client cd;
    kurer_buf v1;
    char path[300], cmd[1400], hexkey[65], port[16], host[64], err_path[300];
    uint64_t s66 = 66;
    start_relay(w, NULL, NULL);
    make_device(w, &d, "anna@mof", 1, 66, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cd, &d), 0);
    snprintf(path, sizeof(path), "%s/mof.crl", w->dir);
    snprintf(err_path, sizeof(err_path), "%s/publish.err", w->dir);
    make_crl(w, 1, &s66, 1, path, &v1);
    kurer_buf_release(&v1);
    kurer_hex_encode(hexkey, w->relay_pk, 32);
    hexkey[64] = '\0';
    uv_ip4_name((struct sockaddr_in *)&w->addr, host, sizeof(host));
    snprintf(port, sizeof(port), "%u", (unsigned)ntohs(((struct sockaddr_in *)&w->addr)->sin_port));
    snprintf(cmd, sizeof(cmd), "%s publish --crl %s --relay %s:%s --relay-key %s 2>%s",
             KURER_ADMIN_BIN, path, host, port, hexkey, err_path);
    assert_int_equal(system(cmd), 0);
    expect_kicked(&cd, KURER_EREVOKED);
    cl_free(&cd);
    /* Again: the relay holds this version; exit 1 with its reason. */
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    uint8_t *e;
    size_t n;
    assert_int_equal(kurer_file_read(err_path, 4096, &e, &n), 0);
    e[n - 1] = '\0';
    assert_non_null(strstr((char *)e, "older than what is already known"));
    free(e);
    /* The key may also be given as the relay.pub file; --json names the code. */
    snprintf(cmd, sizeof(cmd),
             "%s publish --json --crl %s --relay %s:%s --relay-key %s/relay/relay.pub "
             "2>/dev/null | grep -q '\"code\":\"ESTALE\"'",
             KURER_ADMIN_BIN, path, host, port, w->dir);
    assert_int_equal(system(cmd), 0);
    /* A relay that is not there: exit 1. */
    stop_relay(w, SIGTERM);
    snprintf(cmd, sizeof(cmd), "%s publish --crl %s --relay %s:%s --relay-key %s 2>/dev/null",
             KURER_ADMIN_BIN, path, host, port, hexkey);
    st = system(cmd);
    assert_int_equal(WEXITSTATUS(st), 1);
}
#endif

/* ---- what exists: metrics, SIGHUP, idle deadline, limits, one connection per device -------- */

static void test_metrics(void **state)
{
    world *w = *state;
    device a, b, old;
    client ca, cb, cx;
    kurer_server_frame f;
    const char *extra[] = {"--metrics", "127.0.0.1:0"};
    start_relay_v(w, extra, 2);
    char *page = scrape(w);
    assert_non_null(strstr(page, "# TYPE kurer_handshakes_ok_total counter\n"));
    assert_non_null(strstr(page, "# TYPE kurer_connections gauge\n"));
    assert_int_equal(metric(page, "kurer_handshakes_ok_total"), 0);
    assert_int_equal(metric(page, "kurer_connections"), 0);
    free(page);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    make_device(w, &old, "anna@mof", 3, 13, 0, 1, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    assert_int_equal(cl_connect(w, &cx, &old), KURER_EEXPIRED);
    cl_free(&cx);
    assert_int_equal(send_one(&ca, &b, 1, NULL), KURER_SEND_ACCEPTED);
    uint64_t seq = 0;
    while (seq == 0) {
        assert_int_equal(cl_next(&cb, &f, 10000), 1);
        if (f.body == KURER_SERVER_DELIVER)
            seq = f.u.deliver.seq;
        kurer_server_frame_release(&f);
    }
    kurer_client_frame ack;
    memset(&ack, 0, sizeof(ack));
    ack.body = KURER_CLIENT_ACK;
    ack.u.ack.seqs = &seq;
    ack.u.ack.n = 1;
    wait_answer(&cb, cl_send(&cb, &ack), &f);
    assert_int_equal(f.body, KURER_SERVER_OK);
    kurer_server_frame_release(&f);
    page = scrape(w);
    assert_int_equal(metric(page, "kurer_handshakes_ok_total"), 2);
    assert_int_equal(metric(page, "kurer_handshakes_failed_total"), 1);
    assert_int_equal(metric(page, "kurer_rejections_total{reason=\"EEXPIRED\"}"), 1);
    assert_int_equal(metric(page, "kurer_connections"), 2);
    assert_int_equal(metric(page, "kurer_connections_total"), 3);
    assert_int_equal(metric(page, "kurer_envelopes_accepted_total"), 1);
    assert_int_equal(metric(page, "kurer_envelopes_delivered_total"), 1);
    assert_int_equal(metric(page, "kurer_envelopes_acked_total"), 1);
    assert_int_equal(metric(page, "kurer_directory_devices"), 2);
    metrics_check_shapes(page, 1, 3);
    free(page);
    cl_free(&ca);
    cl_free(&cb);
    /* The gauge follows closes. */
    uint64_t end = kurer_time_mono_ms() + 5000;
    while (metric_now(w, "kurer_connections") != 0 && kurer_time_mono_ms() < end)
        usleep(10000);
    assert_int_equal(metric_now(w, "kurer_connections"), 0);
}

/* One raw HTTP exchange with the metrics endpoint: sends the pieces (with a pause between),
 * reads until EOF (or 5 s). Returns the bytes read; *reset is set if the read ended in an
 * error (a reset) rather than EOF. */
static size_t http_raw(world *w, const char *const *pieces, size_t n, char *out, size_t cap,
                       int *reset, uint64_t *first_byte_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&w->maddr, sizeof(struct sockaddr_in)), 0);
    uint64_t t0 = kurer_time_mono_ms();
    *first_byte_ms = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            usleep(300 * 1000);
        assert_int_equal(write(fd, pieces[i], strlen(pieces[i])), (ssize_t)strlen(pieces[i]));
    }
    size_t len = 0;
    *reset = 0;
    uint64_t end = kurer_time_mono_ms() + 5000;
    while (len < cap - 1 && kurer_time_mono_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, out + len, cap - 1 - len);
        if (r < 0)
            *reset = 1;
        if (r <= 0)
            break;
        if (len == 0)
            *first_byte_ms = kurer_time_mono_ms() - t0;
        len += (size_t)r;
    }
    out[len] = '\0';
    close(fd);
    return len;
}

/* The metrics endpoint reads the request before answering, serves only GET /metrics, bounds the
 * request (4 KiB, 2 s), and ends with a clean close even if more input follows the request. */
static void test_metrics_http(void **state)
{
    world *w = *state;
    static char page[65536];
    int reset;
    uint64_t first;
    const char *extra[] = {"--metrics", "127.0.0.1:0"};
    start_relay_v(w, extra, 2);
    /* A request in two pieces: no answer before the second. */
    const char *split[] = {"GET /metrics HTTP/1.1\r\nHost: x\r\n", "\r\n"};
    size_t len = http_raw(w, split, 2, page, sizeof(page), &reset, &first);
    assert_true(first >= 250);
    assert_false(reset);
    assert_non_null(strstr(page, "HTTP/1.0 200 OK\r\n"));
    char *body = strstr(page, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    const char *cl = strstr(page, "Content-Length: ");
    assert_non_null(cl);
    assert_int_equal(strtoull(cl + 16, NULL, 10), len - (size_t)(body - page));
    assert_non_null(strstr(body, "# TYPE kurer_handshakes_ok_total counter\n"));
    /* Input after the request is drained, not left to reset the connection: the whole page
     * arrives, then EOF. */
    static char junk[3000];
    memset(junk, 'x', sizeof(junk) - 1);
    const char *trail[] = {"GET /metrics HTTP/1.0\r\n\r\n", junk};
    len = http_raw(w, trail, 2, page, sizeof(page), &reset, &first);
    assert_false(reset);
    body = strstr(page, "\r\n\r\n");
    assert_non_null(body);
    cl = strstr(page, "Content-Length: ");
    assert_non_null(cl);
    assert_int_equal(strtoull(cl + 16, NULL, 10), len - (size_t)(body + 4 - page));
    /* Anything else: 404. */
    const char *other[] = {"GET / HTTP/1.0\r\n\r\n"};
    http_raw(w, other, 1, page, sizeof(page), &reset, &first);
    assert_non_null(strstr(page, "HTTP/1.0 404 Not Found\r\n"));
    assert_null(strstr(page, "kurer_"));
    const char *post[] = {"POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n"};
    http_raw(w, post, 1, page, sizeof(page), &reset, &first);
    assert_non_null(strstr(page, "HTTP/1.0 404 Not Found\r\n"));
    const char *longer[] = {"GET /metricsx HTTP/1.0\r\n\r\n"};
    http_raw(w, longer, 1, page, sizeof(page), &reset, &first);
    assert_non_null(strstr(page, "HTTP/1.0 404 Not Found\r\n"));
    /* Over 4 KiB without the end of the headers: refused, nothing of the page. */
    static char huge[5000];
    memcpy(huge, "GET /metrics HTTP/1.0\r\nX: ", 26);
    memset(huge + 26, 'a', sizeof(huge) - 27);
    const char *big[] = {huge};
    http_raw(w, big, 1, page, sizeof(page), &reset, &first);
    assert_non_null(strstr(page, "HTTP/1.0 431 "));
    assert_null(strstr(page, "kurer_"));
    /* A peer that sends nothing is closed after 2 s, unanswered. */
    const char *none[] = {""};
    uint64_t t0 = kurer_time_mono_ms();
    len = http_raw(w, none, 1, page, sizeof(page), &reset, &first);
    uint64_t took = kurer_time_mono_ms() - t0;
    assert_int_equal(len, 0);
    assert_true(took >= 1800 && took < 4500);
    /* The relay still serves. */
    free(scrape(w));
    assert_int_equal(WEXITSTATUS(stop_relay(w, SIGTERM)), 0);
}

/* --metrics on a non-loopback address is refused unless --metrics-public is given. */
static void test_metrics_public(void **state)
{
    world *w = *state;
    char dir[300], root[300];
    snprintf(dir, sizeof(dir), "%s/relay", w->dir);
    snprintf(root, sizeof(root), "%s/root.crt", w->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        execl(KURER_RELAY_BIN, KURER_RELAY_BIN, "run", "--dir", dir, "--listen", "127.0.0.1:0",
              "--root", root, "--metrics", "0.0.0.0:0", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    uint64_t end = kurer_time_mono_ms() + 10000;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (kurer_time_mono_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("the relay served metrics on 0.0.0.0 without --metrics-public");
        }
        usleep(20000);
    }
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);
    const char *extra[] = {"--metrics", "0.0.0.0:0", "--metrics-public"};
    start_relay_v(w, extra, 3);
    char *page = scrape(w);
    assert_non_null(strstr(page, "kurer_connections"));
    free(page);
}

/* SIGHUP re-reads --crl: a newer file disconnects a connected device it revokes. */
static void test_sighup_crl(void **state)
{
    world *w = *state;
    device d, ok;
    client cd, cok;
    kurer_buf l;
    char path[300];
    uint64_t s999 = 999, s66 = 66;
    snprintf(path, sizeof(path), "%s/mof.crl", w->dir);
    make_crl(w, 1, &s999, 1, path, &l);
    kurer_buf_release(&l);
    start_relay(w, "--crl", path);
    make_device(w, &d, "anna@mof", 1, 66, 0, 0, 0);
    make_device(w, &ok, "anna@mof", 2, 67, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cd, &d), 0);
    assert_int_equal(cl_connect(w, &cok, &ok), 0);
    make_crl(w, 2, &s66, 1, path, &l);
    kurer_buf_release(&l);
    kill(w->relay, SIGHUP);
    expect_kicked(&cd, KURER_EREVOKED);
    cl_free(&cd);
    assert_int_equal(cl_connect(w, &cd, &d), KURER_EREVOKED);
    cl_free(&cd);
    /* The other device is untouched. */
    kurer_client_frame p;
    kurer_server_frame f;
    memset(&p, 0, sizeof(p));
    p.body = KURER_CLIENT_PING;
    wait_answer(&cok, cl_send(&cok, &p), &f);
    assert_int_equal(f.body, KURER_SERVER_PONG);
    kurer_server_frame_release(&f);
    cl_free(&cok);
}

/* A silent authenticated peer is closed at the idle deadline; one that pings is not. */
static void test_idle_timeout(void **state)
{
    world *w = *state;
    device a, b;
    client ca, cb;
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "idle_timeout_ms = 400\n";
    write_file(cfg, conf, strlen(conf));
    const char *extra[] = {"--config", cfg, "--metrics", "127.0.0.1:0"};
    start_relay_v(w, extra, 4);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    uint64_t t0 = kurer_time_mono_ms();
    while (!ca.closed && kurer_time_mono_ms() - t0 < 3000) {
        /* b pings every 100 ms */
        kurer_client_frame p;
        memset(&p, 0, sizeof(p));
        p.body = KURER_CLIENT_PING;
        if (cb.c != NULL)
            cl_send(&cb, &p);
        pump(&ca, &ca.closed, 100);
        uv_run(&cb.loop, UV_RUN_NOWAIT);
    }
    assert_true(ca.closed);
    assert_true(kurer_time_mono_ms() - t0 >= 300);
    assert_false(cb.closed);
    assert_true(metric_now(w, "kurer_rejections_total{reason=\"ETIMEOUT\"}") >= 1);
    cl_free(&ca);
    cl_free(&cb);
}

/* mailbox_max gives ELIMIT, send_rate gives ERATE; both counted, the connection stays. */
static void test_limits_rate_mailbox(void **state)
{
    world *w = *state;
    device a, b;
    client ca, cb;
    kurer_server_frame f;
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "send_rate = 5\nmailbox_max = 3\n";
    write_file(cfg, conf, strlen(conf));
    const char *extra[] = {"--config", cfg, "--metrics", "127.0.0.1:0"};
    start_relay_v(w, extra, 4);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    cl_free(&cb);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(send_one(&ca, &b, i, NULL), KURER_SEND_ACCEPTED);
    assert_int_equal(send_one(&ca, &b, 3, NULL), KURER_ELIMIT);
    /* Burst is 4 x 5 = 20 envelopes: 40 at once is over it, whatever has refilled. */
    enum { N = 40 };
    kurer_envelope e[N];
    uint8_t contents[N][40];
    for (uint32_t i = 0; i < N; i++)
        make_env(&e[i], &b, i, contents[i]);
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_SEND;
    q.u.send.envelopes = e;
    q.u.send.n = N;
    uint64_t id = cl_send(&ca, &q);
    wait_answer(&ca, id, &f);
    assert_int_equal(f.body, KURER_SERVER_ERROR);
    assert_int_equal(f.u.error.code, KURER_ERATE);
    kurer_server_frame_release(&f);
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_PING;
    wait_answer(&ca, cl_send(&ca, &q), &f);
    assert_int_equal(f.body, KURER_SERVER_PONG);
    kurer_server_frame_release(&f);
    assert_false(ca.closed);
    char *page = scrape(w);
    assert_int_equal(metric(page, "kurer_rejections_total{reason=\"ELIMIT\"}"), 1);
    assert_int_equal(metric(page, "kurer_rejections_total{reason=\"ERATE\"}"), 1);
    assert_int_equal(metric(page, "kurer_envelopes_accepted_total"), 3);
    free(page);
    cl_free(&ca);
    /* Nothing past the limit was stored. */
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    assert_int_equal(cb.acc.queued, 3);
    cl_free(&cb);
}

/* mailbox_max holds for the envelopes of one request too: five for one device with room for
 * three are refused as a whole, and nothing is stored. */
static void test_mailbox_max_one_request(void **state)
{
    world *w = *state;
    device a, b;
    client ca, cb;
    kurer_server_frame f;
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "mailbox_max = 3\n";
    write_file(cfg, conf, strlen(conf));
    start_relay(w, "--config", cfg);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    cl_free(&cb);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    enum { N = 5 };
    kurer_envelope e[N];
    uint8_t contents[N][40];
    for (uint32_t i = 0; i < N; i++)
        make_env(&e[i], &b, i, contents[i]);
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_SEND;
    q.u.send.envelopes = e;
    q.u.send.n = N;
    wait_answer(&ca, cl_send(&ca, &q), &f);
    assert_int_equal(f.body, KURER_SERVER_ERROR);
    assert_int_equal(f.u.error.code, KURER_ELIMIT);
    kurer_server_frame_release(&f);
    /* Exactly up to the limit is fine. */
    q.u.send.n = 3;
    wait_answer(&ca, cl_send(&ca, &q), &f);
    assert_int_equal(f.body, KURER_SERVER_SEND_RESULT);
    assert_int_equal(f.u.send_result.users[0].status, KURER_SEND_ACCEPTED);
    kurer_server_frame_release(&f);
    cl_free(&ca);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    assert_int_equal(cb.acc.queued, 3);
    cl_free(&cb);
}

/* With a smaller max_record, an envelope that fits in the sender's record but whose Deliver
 * (with from, server_ts and seq added) would not fit in the recipient's is refused (ELIMIT)
 * rather than accepted: accepted, it would cost the recipient its connection at every
 * delivery and block its mailbox for good. */
static void test_max_record_deliverable(void **state)
{
    world *w = *state;
    device a, b;
    client ca, cb;
    kurer_server_frame f;
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "max_record = 4096\n";
    write_file(cfg, conf, strlen(conf));
    start_relay(w, "--config", cfg);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    expect_body(&cb, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
    assert_int_equal(cl_connect(w, &ca, &a), 0);

    /* The largest content whose send request still fits in one 4096-byte record. */
    static uint8_t content[4096];
    kurer_envelope e;
    kurer_client_frame q;
    kurer_buf enc;
    memset(&e, 0, sizeof(e));
    kurer_random(e.id, sizeof(e.id));
    e.to = b.addr;
    e.type = KURER_ENVELOPE_MESSAGE;
    e.content = content;
    memset(content, 7, sizeof(content));
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_SEND;
    q.request_id = 1000000;
    q.u.send.envelopes = &e;
    q.u.send.n = 1;
    size_t len = 0;
    for (size_t l = 3000; l < sizeof(content); l++) {
        e.content_len = l;
        kurer_buf_init(&enc, KURER_FRAME_MAX);
        assert_int_equal(kurer_client_frame_encode(&q, &enc), 0);
        size_t fl = enc.len;
        kurer_buf_release(&enc);
        if (fl + 16 > 4096)
            break;
        len = l;
    }
    e.content_len = len;
    wait_answer(&ca, cl_send(&ca, &q), &f);
    assert_int_equal(f.body, KURER_SERVER_ERROR);
    assert_int_equal(f.u.error.code, KURER_ELIMIT);
    kurer_server_frame_release(&f);
    assert_false(ca.closed);

    /* The recipient is still connected and still served. */
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_PING;
    wait_answer(&cb, cl_send(&cb, &q), &f);
    assert_int_equal(f.body, KURER_SERVER_PONG);
    kurer_server_frame_release(&f);
    assert_int_equal(send_one(&ca, &b, 1, NULL), KURER_SEND_ACCEPTED);
    for (;;) {
        assert_int_equal(cl_next(&cb, &f, 10000), 1);
        if (f.body == KURER_SERVER_DELIVER)
            break;
        kurer_server_frame_release(&f);
    }
    kurer_server_frame_release(&f);
    assert_false(cb.closed);
    cl_free(&ca);
    cl_free(&cb);
}

/* A device that connects again replaces its live connection (EBUSY push and close). */
static void test_one_connection_per_device(void **state)
{
    world *w = *state;
    device d;
    client c1, c2;
    kurer_server_frame f;
    const char *extra[] = {"--metrics", "127.0.0.1:0"};
    start_relay_v(w, extra, 2);
    make_device(w, &d, "anna@mof", 1, 10, 0, 0, 0);
    assert_int_equal(cl_connect(w, &c1, &d), 0);
    client *pc2 = &c2;
    assert_int_equal(cl_connect(w, pc2, &d), 0);
    expect_kicked(&c1, KURER_EBUSY);
    cl_free(&c1);
    kurer_client_frame p;
    memset(&p, 0, sizeof(p));
    p.body = KURER_CLIENT_PING;
    wait_answer(&c2, cl_send(&c2, &p), &f);
    assert_int_equal(f.body, KURER_SERVER_PONG);
    kurer_server_frame_release(&f);
    assert_int_equal(metric_now(w, "kurer_connections_replaced_total"), 1);
    cl_free(&c2);
}

/* DESIGN.md, relay store: a sender is told ACCEPTED once its envelope is durable: committed, or
 * acked by its recipient device. With commits held back (commit_delay_us), an online recipient's
 * ack comes first: ACCEPTED by ack, and the envelope is never written. A relay killed after
 * delivering but before either the commit or the ack has told the sender nothing. */
static void test_accepted_by_ack(void **state)
{
    world *w = *state;
    char cfg[300];
    device a, b;
    client ca, cb;
    kurer_server_frame f;
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "commit_delay_us = 400000\n";
    write_file(cfg, conf, strlen(conf));
    const char *extra[] = {"--config", cfg, "--metrics", "127.0.0.1:0"};
    start_relay_v(w, extra, 4);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    expect_body(&cb, &f, KURER_SERVER_QUEUE_EMPTY); /* caught up */
    kurer_server_frame_release(&f);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    /* 1. ack before commit -> ACCEPTED by ack */
    kurer_envelope e;
    uint8_t content[40];
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    make_env(&e, &b, 1, content);
    q.body = KURER_CLIENT_SEND;
    q.u.send.envelopes = &e;
    q.u.send.n = 1;
    uint64_t t0 = kurer_time_mono_ms();
    uint64_t req = cl_send(&ca, &q);
    expect_body(&cb, &f, KURER_SERVER_DELIVER);
    uint64_t seq = f.u.deliver.seq;
    assert_memory_equal(f.u.deliver.envelope.id, e.id, 16);
    kurer_server_frame_release(&f);
    kurer_client_frame ack;
    memset(&ack, 0, sizeof(ack));
    ack.body = KURER_CLIENT_ACK;
    ack.u.ack.seqs = &seq;
    ack.u.ack.n = 1;
    (void)cl_send(&cb, &ack);
    wait_answer(&ca, req, &f);
    assert_int_equal(f.body, KURER_SERVER_SEND_RESULT);
    assert_int_equal(f.u.send_result.users[0].status, KURER_SEND_ACCEPTED);
    kurer_server_frame_release(&f);
    uint64_t took = kurer_time_mono_ms() - t0;
    char *page = scrape(w);
    assert_int_equal(metric(page, "kurer_envelopes_accepted_by_ack_total"), 1);
    assert_int_equal(metric(page, "kurer_envelopes_accepted_total"), 1);
    free(page);
    fprintf(stderr, "accepted by ack after %llu ms (commit delay 400 ms)\n",
            (unsigned long long)took);
    /* the put and the ack met in the store: nothing written */
    uint64_t end = kurer_time_mono_ms() + 5000;
    while (metric_now(w, "kurer_envelopes_write_skipped_total") != 1 && kurer_time_mono_ms() < end)
        usleep(10000);
    assert_int_equal(metric_now(w, "kurer_envelopes_write_skipped_total"), 1);
    wait_answer(&cb, ack.request_id, &f); /* the ack's Ok comes after its commit */
    assert_int_equal(f.body, KURER_SERVER_OK);
    kurer_server_frame_release(&f);

    /* 2. delivered, neither acked nor committed, relay killed: no ACCEPTED */
    make_env(&e, &b, 2, content);
    req = cl_send(&ca, &q);
    expect_body(&cb, &f, KURER_SERVER_DELIVER);
    assert_memory_equal(f.u.deliver.envelope.id, e.id, 16);
    kurer_server_frame_release(&f);
    stop_relay(w, SIGKILL); /* well within the 400 ms commit delay */
    pump(&ca, &ca.closed, 3000);
    while (ca.qhead < ca.qtail) {
        assert_int_equal(cl_next(&ca, &f, 0), 1);
        assert_false(f.request_id == req && f.body == KURER_SERVER_SEND_RESULT &&
                     f.u.send_result.users[0].status == KURER_SEND_ACCEPTED);
        kurer_server_frame_release(&f);
    }
    cl_free(&ca);
    cl_free(&cb);
    /* After the restart nothing is queued for bo: envelope 1 is in bo's store, envelope 2 was
     * never accepted (the sender retries it). Seqs are never handed out twice. */
    start_relay_v(w, extra, 4);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    expect_body(&cb, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    make_env(&e, &b, 3, content);
    req = cl_send(&ca, &q);
    expect_body(&cb, &f, KURER_SERVER_DELIVER);
    assert_true(f.u.deliver.seq > seq + 1);
    kurer_server_frame_release(&f);
    /* 3. not acked: ACCEPTED only after the commit */
    wait_answer(&ca, req, &f);
    assert_int_equal(f.body, KURER_SERVER_SEND_RESULT);
    assert_int_equal(f.u.send_result.users[0].status, KURER_SEND_ACCEPTED);
    kurer_server_frame_release(&f);
    assert_int_equal(metric_now(w, "kurer_envelopes_accepted_by_ack_total"), 0);
    cl_free(&ca);
    cl_free(&cb);
}

/* Held writes (ack_hold_us): a put delivered early and never acked is written, not lost: a
 * recipient that reconnects while it is held finds it in its mailbox (the fetch writes held
 * puts first), and SIGTERM writes what is still held; the sender is told ACCEPTED only after. */
static void test_held_writes(void **state)
{
    world *w = *state;
    char cfg[300];
    device a, b;
    client ca, cb;
    kurer_server_frame f;
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "ack_hold_us = 5000000\n";
    write_file(cfg, conf, strlen(conf));
    const char *extra[] = {"--config", cfg, "--metrics", "127.0.0.1:0"};
    start_relay_v(w, extra, 4);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    expect_body(&cb, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    kurer_envelope e;
    uint8_t content[40];
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_SEND;
    q.u.send.envelopes = &e;
    q.u.send.n = 1;
    /* 1. delivered early, bo disconnects unacked and comes back within the hold */
    make_env(&e, &b, 1, content);
    uint64_t req = cl_send(&ca, &q);
    expect_body(&cb, &f, KURER_SERVER_DELIVER);
    uint64_t seq1 = f.u.deliver.seq;
    kurer_server_frame_release(&f);
    cl_free(&cb);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    expect_body(&cb, &f, KURER_SERVER_DELIVER);
    assert_int_equal(f.u.deliver.seq, seq1);
    assert_memory_equal(f.u.deliver.envelope.id, e.id, 16);
    kurer_server_frame_release(&f);
    expect_body(&cb, &f, KURER_SERVER_QUEUE_EMPTY);
    kurer_server_frame_release(&f);
    wait_answer(&ca, req, &f); /* written by the fetch: committed */
    assert_int_equal(f.body, KURER_SERVER_SEND_RESULT);
    assert_int_equal(f.u.send_result.users[0].status, KURER_SEND_ACCEPTED);
    kurer_server_frame_release(&f);
    /* 2. delivered early, never acked, SIGTERM within the hold: written at shutdown */
    uint8_t content2[40];
    make_env(&e, &b, 2, content2);
    req = cl_send(&ca, &q);
    expect_body(&cb, &f, KURER_SERVER_DELIVER);
    uint64_t seq2 = f.u.deliver.seq;
    uint8_t id2[16];
    memcpy(id2, e.id, 16);
    kurer_server_frame_release(&f);
    assert_int_equal(stop_relay(w, SIGTERM), 0);
    cl_free(&ca);
    cl_free(&cb);
    start_relay_v(w, extra, 4);
    assert_int_equal(cl_connect(w, &cb, &b), 0);
    expect_body(&cb, &f, KURER_SERVER_DELIVER);
    assert_int_equal(f.u.deliver.seq, seq1);
    kurer_server_frame_release(&f);
    expect_body(&cb, &f, KURER_SERVER_DELIVER);
    assert_int_equal(f.u.deliver.seq, seq2);
    assert_memory_equal(f.u.deliver.envelope.id, id2, 16);
    kurer_server_frame_release(&f);
    cl_free(&cb);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_unknown_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_key_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_delivery_order_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_and_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys_upload_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys_bad_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys_low, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_nk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_public, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_crl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_rate_mailbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_connection_per_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accepted_by_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_during_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailbox_max_one_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_record_deliverable, setup, teardown),
#ifdef KURER_ADMIN_BIN
        cmocka_unit_test_setup_teardown(test_admin_publish, setup, teardown),
#endif
    };
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
