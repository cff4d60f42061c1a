/* client_answer: the checks of client/answer.c on answers built here (no network, no
 * signatures: the checks read what an answer claims). The reasons proto/ already refuses on the
 * wire (a STALE_DEVICES list of another user) are covered here. One ctest entry per case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "answer.h"
#include "kurer/log.h"

static kurer_chain chain_of(const char *user, uint32_t device)
{
    kurer_chain c;
    memset(&c, 0, sizeof(c));
    c.n = 1;
    snprintf(c.certs[0].body.subject, sizeof(c.certs[0].body.subject), "%s", user);
    c.certs[0].body.device_id = device;
    return c;
}

static void test_directory(void **state)
{
    (void)state;
    const char *users[2] = {"bob@mof", "anna@mof"};
    kurer_chain bob[2] = {chain_of("bob@mof", 1), chain_of("bob@mof", 2)};
    kurer_chain dup[2] = {chain_of("bob@mof", 1), chain_of("bob@mof", 1)};
    kurer_chain foreign[2] = {chain_of("bob@mof", 1), chain_of("carol@mof", 1)};
    kurer_user_devices ud[3];
    kurer_server_frame r;
    memset(&r, 0, sizeof(r));
    r.body = KURER_SERVER_DIRECTORY;
    r.u.directory.users = ud;

    r.u.directory.n = 0; /* every user unknown */
    assert_int_equal(kurer__answer_directory(users, 2, &r), 0);
    ud[0] = (kurer_user_devices){"bob@mof", bob, 2};
    ud[1] = (kurer_user_devices){"anna@mof", NULL, 0};
    r.u.directory.n = 2;
    assert_int_equal(kurer__answer_directory(users, 2, &r), 0);
    ud[0].devices = foreign; /* left to the caller to ignore */
    assert_int_equal(kurer__answer_directory(users, 2, &r), 0);
    ud[0].devices = dup;
    assert_int_equal(kurer__answer_directory(users, 2, &r), KURER_EMALFORMED);
    ud[0].devices = bob;
    ud[2] = (kurer_user_devices){"carol@mof", NULL, 0};
    r.u.directory.n = 3;
    assert_int_equal(kurer__answer_directory(users, 2, &r), KURER_EMALFORMED);
    ud[2] = (kurer_user_devices){"bob@mof", bob, 1};
    assert_int_equal(kurer__answer_directory(users, 2, &r), KURER_EMALFORMED);
}

static kurer_prekey_bundle bundle_of(const char *user, uint32_t device, kurer_chain chain)
{
    kurer_prekey_bundle b;
    memset(&b, 0, sizeof(b));
    snprintf(b.address.user, sizeof(b.address.user), "%s", user);
    b.address.device_id = device;
    b.chain = chain;
    return b;
}

static void test_bundles(void **state)
{
    (void)state;
    const uint32_t asked[2] = {1, 3};
    kurer_prekey_bundle b[2];
    kurer_server_frame r;
    memset(&r, 0, sizeof(r));
    r.body = KURER_SERVER_BUNDLES;
    r.u.bundles.bundles = b;
    b[0] = bundle_of("bob@mof", 1, chain_of("bob@mof", 1));
    b[1] = bundle_of("bob@mof", 3, chain_of("bob@mof", 3));
    r.u.bundles.n = 2;
    assert_int_equal(kurer__answer_bundles("bob@mof", asked, 2, &r), 0);
    r.u.bundles.n = 1; /* a device left out: allowed */
    assert_int_equal(kurer__answer_bundles("bob@mof", asked, 2, &r), 0);
    r.u.bundles.n = 2;
    b[1] = bundle_of("bob@mof", 2, chain_of("bob@mof", 2)); /* not asked for */
    assert_int_equal(kurer__answer_bundles("bob@mof", asked, 2, &r), KURER_EMALFORMED);
    b[1] = bundle_of("carol@mof", 3, chain_of("carol@mof", 3)); /* another user */
    assert_int_equal(kurer__answer_bundles("bob@mof", asked, 2, &r), KURER_EMALFORMED);
    b[1] = bundle_of("bob@mof", 1, chain_of("bob@mof", 1)); /* twice */
    assert_int_equal(kurer__answer_bundles("bob@mof", asked, 2, &r), KURER_EMALFORMED);
    b[1] = bundle_of("bob@mof", 3, chain_of("carol@mof", 3)); /* chain of someone else */
    assert_int_equal(kurer__answer_bundles("bob@mof", asked, 2, &r), KURER_EMALFORMED);
    b[1] = bundle_of("bob@mof", 3, chain_of("bob@mof", 1)); /* chain of another device */
    assert_int_equal(kurer__answer_bundles("bob@mof", asked, 2, &r), KURER_EMALFORMED);
}

static kurer_envelope env_to(const char *user, uint32_t device)
{
    kurer_envelope e;
    memset(&e, 0, sizeof(e));
    snprintf(e.to.user, sizeof(e.to.user), "%s", user);
    e.to.device_id = device;
    return e;
}

static void test_send_result(void **state)
{
    (void)state;
    kurer_envelope sent[3] = {env_to("bob@mof", 1), env_to("bob@mof", 2), env_to("anna@mof", 2)};
    kurer_chain bob[2] = {chain_of("bob@mof", 1), chain_of("bob@mof", 1)};
    kurer_user_result res[3];
    kurer_server_frame r;
    memset(&r, 0, sizeof(r));
    memset(res, 0, sizeof(res));
    r.body = KURER_SERVER_SEND_RESULT;
    r.u.send_result.users = res;
    res[0].user = "bob@mof";
    res[0].status = KURER_SEND_ACCEPTED;
    res[1].user = "anna@mof";
    res[1].status = KURER_SEND_ACCEPTED;
    r.u.send_result.n = 2;
    assert_int_equal(kurer__answer_send_result("anna@mof", sent, 3, &r), 0);
    /* Our own user may be answered without an envelope for it (a stale own device). */
    res[1].status = KURER_SEND_STALE_DEVICES;
    res[1].current = (kurer_user_devices){"anna@mof", NULL, 0};
    assert_int_equal(kurer__answer_send_result("anna@mof", sent, 2, &r), 0);
    /* ... but never as unknown. */
    res[1].status = KURER_SEND_UNKNOWN_USER;
    res[1].current = (kurer_user_devices){NULL, NULL, 0};
    assert_int_equal(kurer__answer_send_result("anna@mof", sent, 3, &r), KURER_EMALFORMED);
    /* A recipient left unanswered. */
    r.u.send_result.n = 1;
    assert_int_equal(kurer__answer_send_result("anna@mof", sent, 3, &r), KURER_EMALFORMED);
    /* Someone else, in any status. */
    res[1].user = "carol@mof";
    for (int s = KURER_SEND_ACCEPTED; s <= KURER_SEND_STALE_DEVICES; s++) {
        res[1].status = (kurer_send_status)s;
        res[1].current =
            (kurer_user_devices){s == KURER_SEND_STALE_DEVICES ? "carol@mof" : NULL, NULL, 0};
        r.u.send_result.n = 2;
        assert_int_equal(kurer__answer_send_result("anna@mof", sent, 2, &r), KURER_EMALFORMED);
    }
    /* A user twice. */
    res[1] = res[0];
    assert_int_equal(kurer__answer_send_result("anna@mof", sent, 2, &r), KURER_EMALFORMED);
    /* A STALE_DEVICES list of another user, or with a device twice. */
    r.u.send_result.n = 1;
    res[0].status = KURER_SEND_STALE_DEVICES;
    res[0].current = (kurer_user_devices){"carol@mof", NULL, 0};
    assert_int_equal(kurer__answer_send_result("anna@mof", sent, 2, &r), KURER_EMALFORMED);
    res[0].current = (kurer_user_devices){"bob@mof", bob, 2};
    assert_int_equal(kurer__answer_send_result("anna@mof", sent, 2, &r), KURER_EMALFORMED);
    res[0].current.n_devices = 1;
    assert_int_equal(kurer__answer_send_result("anna@mof", sent, 2, &r), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_bundles),
        cmocka_unit_test(test_send_result),
    };
    kurer_log_set(stderr, KURER_LOG_OFF);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
