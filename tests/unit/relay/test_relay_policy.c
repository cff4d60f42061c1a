/* Relay unit tests: the send policy. The request's shape (envelope count, content against
 * max_envelope and against what a Deliver can carry in one record), the send rate (tokens only
 * for requests within bounds), and the answer's size: a SendResult that would not fit
 * min(frame, record) is refused with ELIMIT before anything is stored, and STALE chains are
 * decoded only while the answer can still fit. (mailbox_max and mailbox_sender_max are the
 * store's: store_conformance_*_limits.) */
#include "relay_units.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t big[KURER_FRAME_MAX];

static kurer_envelope env_of(const char *user, uint32_t device_id, size_t len)
{
    kurer_envelope e;
    memset(&e, 0, sizeof(e));
    memset(e.id, 0x22, sizeof(e.id));
    e.to = fx_addr(user, device_id);
    e.type = KURER_ENVELOPE_MESSAGE;
    e.content = big;
    e.content_len = len;
    return e;
}

static int limits(const kurer_relay_config *cfg, size_t n, size_t len)
{
    kurer_envelope *env = calloc(n ? n : 1, sizeof(*env));
    assert_non_null(env);
    for (size_t i = 0; i < n; i++)
        env[i] = env_of("ana@mof", 1, 1);
    if (n > 0)
        env[n - 1].content_len = len; /* the last one decides */
    int err = kurer__send_envelope_limits(cfg, env, n);
    free(env);
    return err;
}

void test_policy_envelope_limits(void **state)
{
    kurer_relay_config cfg;
    (void)state;
    kurer_relay_config_default(&cfg);
    assert_int_equal(limits(&cfg, 256, 1), 0);
    assert_int_equal(limits(&cfg, 257, 1), KURER_ELIMIT); /* max_send_envelopes */
    cfg.max_send_envelopes = KURER_SEND_ENVELOPES_MAX;
    assert_int_equal(limits(&cfg, KURER_SEND_ENVELOPES_MAX, 1), 0);
    assert_int_equal(limits(&cfg, KURER_SEND_ENVELOPES_MAX + 1, 1), KURER_ELIMIT);
    /* max_envelope (default 65007 = 65535 - 16 - 512: the largest a Deliver can carry) */
    assert_int_equal(limits(&cfg, 3, KURER_ENVELOPE_CONTENT_MAX), 0);
    assert_int_equal(limits(&cfg, 3, KURER_ENVELOPE_CONTENT_MAX + 1), KURER_ELIMIT);
    cfg.max_envelope = 100;
    assert_int_equal(limits(&cfg, 1, 100), 0);
    assert_int_equal(limits(&cfg, 1, 101), KURER_ELIMIT);
    /* a smaller record bounds the content below max_envelope: room = max_record - 528 */
    cfg.max_envelope = KURER_ENVELOPE_CONTENT_MAX;
    cfg.max_record = 1024;
    assert_int_equal(limits(&cfg, 2, 496), 0);
    assert_int_equal(limits(&cfg, 2, 497), KURER_ELIMIT);
    cfg.max_record = 529;
    assert_int_equal(limits(&cfg, 1, 1), 0);
    assert_int_equal(limits(&cfg, 1, 2), KURER_ELIMIT);
    cfg.max_record = 528; /* no room at all (and below it no wrap-around) */
    assert_int_equal(limits(&cfg, 1, 1), KURER_ELIMIT);
    cfg.max_record = 128;
    assert_int_equal(limits(&cfg, 1, 1), KURER_ELIMIT);
    assert_int_equal(limits(&cfg, 1, 0), 0);
}

/* What the limits let through fits, as a Deliver with the longest addresses and every varint at
 * its widest, in one record of max_record (KURER_ENVELOPE_OVERHEAD_MAX is enough). */
void test_policy_deliver_fits(void **state)
{
    static const uint64_t records[] = {KURER_NOISE_MSG_MAX, 4096, 1024, 529};
    char user[KURER_SUBJECT_MAX + 1], peer[KURER_SUBJECT_MAX + 1];
    (void)state;
    memset(user, 'a', 64);
    user[64] = '@';
    memset(user + 65, 'b', 63);
    user[128] = 0;
    strcpy(peer, user);
    peer[0] = 'z';
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
        kurer_relay_config cfg;
        kurer_relay_config_default(&cfg);
        cfg.max_record = records[i];
        size_t room = (size_t)records[i] - KURER_NOISE_TAGLEN - KURER_ENVELOPE_OVERHEAD_MAX;
        kurer_envelope e = env_of(user, KURER_DEVICE_ID_MAX, room);
        assert_int_equal(kurer__send_envelope_limits(&cfg, &e, 1), 0);
        e.content_len = room + 1;
        assert_int_equal(kurer__send_envelope_limits(&cfg, &e, 1), KURER_ELIMIT);
        e.content_len = room;
        e.has_from = 1;
        e.from = fx_addr(peer, KURER_DEVICE_ID_MAX);
        e.type = KURER_ENVELOPE_SENDER_KEY;
        e.server_ts = INT64_MAX;
        kurer_server_frame f;
        memset(&f, 0, sizeof(f));
        f.body = KURER_SERVER_DELIVER;
        f.u.deliver.seq = UINT64_MAX;
        f.u.deliver.envelope = e;
        kurer_buf b;
        kurer_buf_init(&b, KURER_FRAME_MAX);
        assert_int_equal(kurer_server_frame_encode(&f, &b), 0);
        assert_true(b.len + KURER_NOISE_TAGLEN <= records[i]);
        kurer_buf_release(&b);
    }
}

static kurer_client_frame send_frame(const kurer_envelope *env, size_t n)
{
    kurer_client_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = 9;
    f.body = KURER_CLIENT_SEND;
    f.u.send.envelopes = env;
    f.u.send.n = n;
    return f;
}

/* Over the burst is ERATE at any time; a request refused for its shape takes no tokens; rate 0
 * meters nothing. */
void test_policy_bounds_rate(void **state)
{
    relay *r = fx_relay_new();
    kurer_envelope env[300];
    (void)state;
    r->cfg.send_rate = 1; /* burst 4 */
    (void)fx_dir_add(r, "eve@mof", 1, FX_NOW + FX_YEAR);
    rconn rc = fx_conn(r, "eve@mof", 1);
    for (size_t i = 0; i < 300; i++)
        env[i] = env_of("ana@mof", 1, 10);
    kurer_client_frame f = send_frame(env, 5);
    assert_int_equal(kurer__send_bounds(&rc, &f), KURER_ERATE);
    assert_int_equal(r->sends_rate_limited, 1);
    f = send_frame(env, 300); /* over max_send_envelopes */
    assert_int_equal(kurer__send_bounds(&rc, &f), KURER_ELIMIT);
    env[3].content_len = KURER_ENVELOPE_CONTENT_MAX + 1;
    f = send_frame(env, 4);
    assert_int_equal(kurer__send_bounds(&rc, &f), KURER_ELIMIT);
    env[3].content_len = 10;
    assert_int_equal(r->sends_rate_limited, 1);
    assert_int_equal(kurer__send_bounds(&rc, &f), 0); /* all 4 tokens were still there */
    r->cfg.send_rate = 0;
    f = send_frame(env, 256);
    for (int i = 0; i < 10; i++)
        assert_int_equal(kurer__send_bounds(&rc, &f), 0);
    assert_int_equal(r->sends_rate_limited, 1);
    fx_relay_free(r);
}

/* A SendResult of k users with long names, as encoded. */
static size_t result_len(const kurer_user_result *res, size_t k)
{
    kurer_server_frame f;
    kurer_buf b;
    memset(&f, 0, sizeof(f));
    f.request_id = 7;
    f.body = KURER_SERVER_SEND_RESULT;
    f.u.send_result.users = res;
    f.u.send_result.n = k;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_server_frame_encode(&f, &b), 0);
    size_t len = b.len;
    kurer_buf_release(&b);
    return len;
}

static send_ctx *ctx_with_users(rconn *rc, size_t k)
{
    send_ctx *sc = kurer__send_ctx_new(rc, 7, k);
    assert_non_null(sc);
    for (size_t i = 0; i < k; i++) {
        char *u = malloc(KURER_SUBJECT_MAX + 1);
        assert_non_null(u);
        snprintf(u, KURER_SUBJECT_MAX + 1, "%060zu@%s", i, "authority-with-a-long-name.example");
        sc->results[i].user = u;
        sc->results[i].status = KURER_SEND_UNKNOWN_USER;
    }
    sc->n_results = k;
    return sc;
}

/* The answer bound is min(frame, max_record - tag): at exactly that many bytes the result fits,
 * one byte of record less and it does not; chain bytes over the bound never fit. */
void test_policy_result_fits(void **state)
{
    relay *r = fx_relay_new();
    (void)state;
    rconn rc = fx_conn(r, "eve@mof", 1);
    assert_int_equal(kurer__answer_max(r), KURER_FRAME_MAX);
    r->lim.max_record = 1024;
    assert_int_equal(kurer__answer_max(r), 1024 - KURER_NOISE_TAGLEN);
    send_ctx *sc = ctx_with_users(&rc, 12);
    size_t len = result_len(sc->results, 12);
    assert_true(len > 1000);
    r->lim.max_record = len + KURER_NOISE_TAGLEN;
    assert_true(kurer__send_result_fits(sc, 0));
    r->lim.max_record = len + KURER_NOISE_TAGLEN - 1;
    assert_false(kurer__send_result_fits(sc, 0));
    r->lim.max_record = KURER_NOISE_MSG_MAX;
    assert_true(kurer__send_result_fits(sc, 0));
    assert_true(kurer__send_result_fits(sc, KURER_FRAME_MAX - len));
    assert_false(kurer__send_result_fits(sc, KURER_FRAME_MAX + 1));
    kurer__send_ctx_free(sc);
    fx_relay_free(r);
}

/* Two users get STALE lists; with room for the first only, the second's chains are not decoded
 * (the request will be refused whole), the result does not fit, and kurer__handle_send answers
 * ELIMIT before touching the store, even for a third user whose envelopes are ACCEPTED (this
 * relay has no store: a put would crash). */
void test_policy_stale_fit(void **state)
{
    relay *r = fx_relay_new();
    (void)state;
    size_t a = fx_dir_add(r, "ana@mof", 1, FX_NOW + FX_YEAR) + 8;
    a += fx_dir_add(r, "ana@mof", 2, FX_NOW + FX_YEAR) + 8;
    size_t b = fx_dir_add(r, "bo@mof", 1, FX_NOW + FX_YEAR) + 8;
    b += fx_dir_add(r, "bo@mof", 2, FX_NOW + FX_YEAR) + 8;
    rconn rc = fx_conn(r, "eve@mof", 1);
    kurer_envelope env[] = {env_of("ana@mof", 1, 10), env_of("bo@mof", 1, 10)};
    uint32_t want[2], have[2];
    size_t stale = 0;
    r->lim.max_record = a + b - 1 + KURER_NOISE_TAGLEN; /* room for a, not a + b */
    send_ctx *sc = kurer__send_ctx_new(&rc, 7, 2);
    assert_non_null(sc);
    assert_int_equal(kurer__send_classify(sc, env, 2, want, have, &stale), 0);
    assert_int_equal(stale, a + b);
    assert_int_equal(sc->results[0].status, KURER_SEND_STALE_DEVICES);
    assert_int_equal(sc->results[0].current.n_devices, 2);
    assert_int_equal(sc->results[1].status, KURER_SEND_STALE_DEVICES);
    assert_null(sc->results[1].current.devices);
    assert_false(kurer__send_result_fits(sc, stale));
    kurer__send_ctx_free(sc);
    /* with room for both, both lists are decoded */
    r->lim.max_record = KURER_NOISE_MSG_MAX;
    sc = kurer__send_ctx_new(&rc, 7, 2);
    assert_non_null(sc);
    stale = 0;
    assert_int_equal(kurer__send_classify(sc, env, 2, want, have, &stale), 0);
    assert_int_equal(sc->results[1].current.n_devices, 2);
    assert_true(kurer__send_result_fits(sc, stale));
    kurer__send_ctx_free(sc);
    /* the whole request: ELIMIT counted, nothing stored, the connection kept (no close) */
    r->lim.max_record = a + b - 1 + KURER_NOISE_TAGLEN;
    (void)fx_dir_add(r, "cy@mof", 1, FX_NOW + FX_YEAR);
    kurer_envelope mixed[] = {env_of("ana@mof", 1, 10), env_of("bo@mof", 1, 10),
                              env_of("cy@mof", 1, 10)}; /* cy@mof alone is ACCEPTED */
    kurer_client_frame f = send_frame(mixed, 3);
    kurer__handle_send(&rc, &f);
    assert_int_equal(r->send_results_too_large, 1);
    assert_int_equal(r->rejects[-KURER_ELIMIT], 1);
    assert_int_equal(r->env_accepted, 0);
    assert_int_equal(rc.close_counted, 0);
    assert_int_equal(rc.refs, 1);
    fx_relay_free(r);
}
