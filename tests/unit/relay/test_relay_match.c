/* Relay unit tests: the directory matcher. For each recipient user of a SendRequest, the device
 * ids its envelopes name against that user's current devices in the directory (the sender's own
 * device left out): ACCEPTED, STALE_DEVICES with the current list, or UNKNOWN_USER. */
#include "relay_units.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t content[] = "ciphertext";

static kurer_envelope env_to(const char *user, uint32_t device_id)
{
    kurer_envelope e;
    memset(&e, 0, sizeof(e));
    memset(e.id, 0x11, sizeof(e.id));
    e.to = fx_addr(user, device_id);
    e.type = KURER_ENVELOPE_MESSAGE;
    e.content = content;
    e.content_len = sizeof(content);
    return e;
}

/* Classifies env as kurer__handle_send does (want: n ids; have: the most devices of any
 * recipient user). */
static send_ctx *classify(rconn *rc, const kurer_envelope *env, size_t n, size_t *stale_bytes)
{
    size_t have_cap = 1;
    for (size_t i = 0; i < n; i++) {
        dir_user *du = kurer__dir_user_find(rc->r, env[i].to.user);
        if (du != NULL && du->n > have_cap)
            have_cap = du->n;
    }
    send_ctx *sc = kurer__send_ctx_new(rc, 7, n);
    uint32_t *want = calloc(n, sizeof(*want)), *have = calloc(have_cap, sizeof(*have));
    assert_non_null(sc);
    assert_non_null(want);
    assert_non_null(have);
    *stale_bytes = 0;
    assert_int_equal(kurer__send_classify(sc, env, n, want, have, stale_bytes), 0);
    free(want);
    free(have);
    return sc;
}

static const kurer_user_result *result_of(const send_ctx *sc, const char *user)
{
    const kurer_user_result *found = NULL;
    for (size_t i = 0; i < sc->n_results; i++)
        if (strcmp(sc->results[i].user, user) == 0) {
            assert_null(found); /* one result per user */
            found = &sc->results[i];
        }
    assert_non_null(found);
    return found;
}

static int current_has(const kurer_user_result *ur, uint32_t device_id)
{
    int k = 0;
    for (size_t i = 0; i < ur->current.n_devices; i++)
        k += ur->current.devices[i].certs[0].body.device_id == device_id;
    assert_true(k <= 1);
    return k;
}

typedef struct world {
    relay *r;
    rconn eve; /* the sender: eve@mof device 1 */
    size_t ana1, ana2, eve2;
} world;

/* ana@mof: devices 1 and 2 current, 3 expired; bo@mof: 5; eve@mof: 1 (the sender) and 2;
 * gone@mof: 4, expired. */
static void world_new(world *w)
{
    w->r = fx_relay_new();
    w->ana1 = fx_dir_add(w->r, "ana@mof", 1, FX_NOW + FX_YEAR);
    w->ana2 = fx_dir_add(w->r, "ana@mof", 2, FX_NOW + FX_YEAR);
    (void)fx_dir_add(w->r, "ana@mof", 3, FX_NOW - 10);
    (void)fx_dir_add(w->r, "bo@mof", 5, FX_NOW + FX_YEAR);
    (void)fx_dir_add(w->r, "eve@mof", 1, FX_NOW + FX_YEAR);
    w->eve2 = fx_dir_add(w->r, "eve@mof", 2, FX_NOW + FX_YEAR);
    (void)fx_dir_add(w->r, "gone@mof", 4, FX_NOW - 10);
    w->eve = fx_conn(w->r, "eve@mof", 1);
}

static uint64_t rejects(const relay *r, int code)
{
    return r->rejects[-code];
}

/* Sets are compared: order and repeats do not matter; a missing, an extra or a different
 * device is STALE; both arrays come back sorted, want without repeats. */
void test_match_sets(void **state)
{
    (void)state;
    uint32_t w1[] = {2, 1}, h1[] = {1, 2};
    assert_int_equal(kurer__send_match(w1, 2, h1, 2, 0), KURER_SEND_ACCEPTED);
    assert_int_equal(w1[0], 1);
    assert_int_equal(w1[1], 2);
    uint32_t w2[] = {2, 2, 1, 1, 2}, h2[] = {2, 1};
    assert_int_equal(kurer__send_match(w2, 5, h2, 2, 0), KURER_SEND_ACCEPTED);
    assert_int_equal(w2[0], 1);
    assert_int_equal(w2[1], 2);
    assert_int_equal(h2[0], 1);
    uint32_t w3[] = {1}, h3[] = {1, 2};
    assert_int_equal(kurer__send_match(w3, 1, h3, 2, 0), KURER_SEND_STALE_DEVICES); /* missing */
    uint32_t w4[] = {1, 2, 3}, h4[] = {1, 2};
    assert_int_equal(kurer__send_match(w4, 3, h4, 2, 0), KURER_SEND_STALE_DEVICES); /* extra */
    uint32_t w5[] = {1, 3}, h5[] = {2, 1};
    assert_int_equal(kurer__send_match(w5, 2, h5, 2, 0), KURER_SEND_STALE_DEVICES); /* other */
    uint32_t w6[] = {1, 1}, h6[] = {1, 2}; /* as many ids as devices, but one twice */
    assert_int_equal(kurer__send_match(w6, 2, h6, 2, 0), KURER_SEND_STALE_DEVICES);
    uint32_t w7[] = {1, 1, 2}, h7[] = {1, 2, 3};
    assert_int_equal(kurer__send_match(w7, 3, h7, 3, 0), KURER_SEND_STALE_DEVICES);
    /* the whole id range sorts without overflow */
    uint32_t w8[] = {KURER_DEVICE_ID_MAX, 1, UINT32_MAX},
             h8[] = {UINT32_MAX, 1, KURER_DEVICE_ID_MAX};
    assert_int_equal(kurer__send_match(w8, 3, h8, 3, 0), KURER_SEND_ACCEPTED);
    assert_int_equal(w8[2], UINT32_MAX);
}

/* A user with no current device is unknown, except the sender's own user (STALE then, with an
 * empty list: the sender learns it has no other device). */
void test_match_unknown(void **state)
{
    (void)state;
    uint32_t w[] = {1}, h[1] = {0};
    assert_int_equal(kurer__send_match(w, 1, h, 0, 0), KURER_SEND_UNKNOWN_USER);
    assert_int_equal(kurer__send_match(w, 0, h, 0, 0), KURER_SEND_UNKNOWN_USER);
    assert_int_equal(kurer__send_match(w, 1, h, 0, 1), KURER_SEND_STALE_DEVICES);
    assert_int_equal(kurer__send_match(w, 0, h, 0, 1), KURER_SEND_ACCEPTED);
    uint32_t h2[] = {4};
    assert_int_equal(kurer__send_match(w, 1, h2, 1, 0), KURER_SEND_STALE_DEVICES);
}

/* One result per user in the order users first appear, envelopes for one device twice are
 * fine, the sender's other device is a recipient like any other; nothing counted as refused. */
void test_classify_accepted(void **state)
{
    world w;
    size_t stale;
    (void)state;
    world_new(&w);
    kurer_envelope env[] = {env_to("ana@mof", 2), env_to("bo@mof", 5), env_to("ana@mof", 1),
                            env_to("ana@mof", 2), env_to("eve@mof", 2)};
    send_ctx *sc = classify(&w.eve, env, 5, &stale);
    assert_int_equal(sc->n_results, 3);
    assert_string_equal(sc->results[0].user, "ana@mof");
    assert_string_equal(sc->results[1].user, "bo@mof");
    assert_string_equal(sc->results[2].user, "eve@mof");
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(sc->results[i].status, KURER_SEND_ACCEPTED);
        assert_null(sc->results[i].current.devices);
        assert_int_equal(sc->results[i].current.n_devices, 0);
    }
    assert_int_equal(stale, 0);
    assert_int_equal(rejects(w.r, KURER_ESTALEDEVICES), 0);
    assert_int_equal(rejects(w.r, KURER_EUNKNOWNUSER), 0);
    kurer__send_ctx_free(sc);
    fx_relay_free(w.r);
}

/* A missing device, an expired one named, one the directory never had: STALE with the current
 * list (current devices only, as decoded chains), its bytes counted; other users unaffected. */
void test_classify_stale(void **state)
{
    world w;
    size_t stale;
    (void)state;
    world_new(&w);
    kurer_envelope missing[] = {env_to("ana@mof", 1), env_to("bo@mof", 5)};
    send_ctx *sc = classify(&w.eve, missing, 2, &stale);
    const kurer_user_result *ana = result_of(sc, "ana@mof");
    assert_int_equal(ana->status, KURER_SEND_STALE_DEVICES);
    assert_ptr_equal(ana->current.user, ana->user);
    assert_int_equal(ana->current.n_devices, 2);
    assert_true(current_has(ana, 1) && current_has(ana, 2));
    assert_false(current_has(ana, 3));
    assert_int_equal(stale, w.ana1 + 8 + w.ana2 + 8);
    assert_int_equal(result_of(sc, "bo@mof")->status, KURER_SEND_ACCEPTED);
    assert_int_equal(rejects(w.r, KURER_ESTALEDEVICES), 1);
    kurer__send_ctx_free(sc);
    kurer_envelope expired[] = {env_to("ana@mof", 1), env_to("ana@mof", 2), env_to("ana@mof", 3)};
    sc = classify(&w.eve, expired, 3, &stale);
    assert_int_equal(result_of(sc, "ana@mof")->status, KURER_SEND_STALE_DEVICES);
    assert_int_equal(result_of(sc, "ana@mof")->current.n_devices, 2);
    kurer__send_ctx_free(sc);
    kurer_envelope absent[] = {env_to("ana@mof", 2), env_to("ana@mof", 1), env_to("ana@mof", 9)};
    sc = classify(&w.eve, absent, 3, &stale);
    assert_int_equal(result_of(sc, "ana@mof")->status, KURER_SEND_STALE_DEVICES);
    assert_false(current_has(result_of(sc, "ana@mof"), 9));
    assert_int_equal(rejects(w.r, KURER_ESTALEDEVICES), 3);
    kurer__send_ctx_free(sc);
    fx_relay_free(w.r);
}

/* A user the directory does not hold, and one whose only device expired: UNKNOWN_USER, no list,
 * no chain bytes. */
void test_classify_unknown(void **state)
{
    world w;
    size_t stale;
    (void)state;
    world_new(&w);
    kurer_envelope env[] = {env_to("nobody@mof", 1), env_to("gone@mof", 4), env_to("bo@mof", 5)};
    send_ctx *sc = classify(&w.eve, env, 3, &stale);
    assert_int_equal(sc->n_results, 3);
    assert_int_equal(result_of(sc, "nobody@mof")->status, KURER_SEND_UNKNOWN_USER);
    assert_int_equal(result_of(sc, "gone@mof")->status, KURER_SEND_UNKNOWN_USER);
    assert_null(result_of(sc, "gone@mof")->current.devices);
    assert_int_equal(result_of(sc, "bo@mof")->status, KURER_SEND_ACCEPTED);
    assert_int_equal(stale, 0);
    assert_int_equal(rejects(w.r, KURER_EUNKNOWNUSER), 2);
    kurer__send_ctx_free(sc);
    fx_relay_free(w.r);
}

/* Sync copies: the sender's own device is never expected (naming it is STALE, and the list
 * leaves it out); no result for the own user unless the request names it; the own user is
 * never UNKNOWN, not even when it has no other device or no entry at all. */
void test_classify_own_user(void **state)
{
    world w;
    size_t stale;
    (void)state;
    world_new(&w);
    kurer_envelope sync[] = {env_to("ana@mof", 1), env_to("ana@mof", 2), env_to("eve@mof", 2)};
    send_ctx *sc = classify(&w.eve, sync, 3, &stale);
    assert_int_equal(result_of(sc, "eve@mof")->status, KURER_SEND_ACCEPTED);
    kurer__send_ctx_free(sc);
    kurer_envelope self[] = {env_to("eve@mof", 1), env_to("eve@mof", 2)};
    sc = classify(&w.eve, self, 2, &stale);
    const kurer_user_result *eve = result_of(sc, "eve@mof");
    assert_int_equal(eve->status, KURER_SEND_STALE_DEVICES);
    assert_int_equal(eve->current.n_devices, 1);
    assert_true(current_has(eve, 2));
    assert_false(current_has(eve, 1));
    assert_int_equal(stale, w.eve2 + 8);
    kurer__send_ctx_free(sc);
    kurer_envelope others[] = {env_to("ana@mof", 1), env_to("ana@mof", 2)};
    sc = classify(&w.eve, others, 2, &stale);
    assert_int_equal(sc->n_results, 1); /* no result for eve@mof */
    kurer__send_ctx_free(sc);
    rconn lone = fx_conn(w.r, "bo@mof", 5); /* bo has no other device */
    kurer_envelope to_self[] = {env_to("bo@mof", 5)};
    sc = classify(&lone, to_self, 1, &stale);
    assert_int_equal(result_of(sc, "bo@mof")->status, KURER_SEND_STALE_DEVICES);
    assert_int_equal(result_of(sc, "bo@mof")->current.n_devices, 0);
    kurer__send_ctx_free(sc);
    rconn fresh = fx_conn(w.r, "cy@mof", 1); /* not in the directory at all */
    kurer_envelope to_other[] = {env_to("cy@mof", 2)};
    sc = classify(&fresh, to_other, 1, &stale);
    assert_int_equal(result_of(sc, "cy@mof")->status, KURER_SEND_STALE_DEVICES);
    assert_int_equal(rejects(w.r, KURER_EUNKNOWNUSER), 0);
    kurer__send_ctx_free(sc);
    fx_relay_free(w.r);
}

/* A user with more current devices than a device list may carry (KURER_USER_DEVICES_MAX): all
 * of them must be named to be ACCEPTED, and a STALE list stops at the maximum (while its bytes
 * count every current device). */
void test_classify_device_limit(void **state)
{
    enum { N = KURER_USER_DEVICES_MAX + 8 };
    relay *r = fx_relay_new();
    size_t stale, bytes = 0;
    kurer_envelope env[N];
    (void)state;
    for (uint32_t d = 1; d <= N; d++) {
        bytes += fx_dir_add(r, "many@mof", d, FX_NOW + FX_YEAR) + 8;
        env[d - 1] = env_to("many@mof", d);
    }
    rconn rc = fx_conn(r, "eve@mof", 1);
    send_ctx *sc = classify(&rc, env, N, &stale);
    assert_int_equal(sc->results[0].status, KURER_SEND_ACCEPTED);
    kurer__send_ctx_free(sc);
    sc = classify(&rc, env, N - 1, &stale);
    assert_int_equal(sc->results[0].status, KURER_SEND_STALE_DEVICES);
    assert_int_equal(sc->results[0].current.n_devices, KURER_USER_DEVICES_MAX);
    assert_int_equal(stale, bytes);
    kurer__send_ctx_free(sc);
    fx_relay_free(r);
}
