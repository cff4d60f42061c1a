/* client_rpc: kurer daemon's JSON-RPC layer without a daemon (client/cli/rpc_request.c,
 * rpc_util.c): each malformed request gets its exact JSON-RPC code, params are checked by type
 * and range, a method's outcome becomes the response or error it should, and messages survive
 * the trip to JSON and back byte for byte (text that is not UTF-8 included). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "rpc.h"

static int parse(const char *line, const char **msg)
{
    rpc_request r;
    int code = rpc_parse_request(line, strlen(line), &r, msg);
    json_decref(r.req);
    return code;
}

static void test_request(void **state)
{
    (void)state;
    const char *msg = NULL;
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}", &msg), 0);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"method\":\"send\",\"params\":{}}", &msg), 0);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"status\"}", &msg), 0);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"status\"}", &msg), 0);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":", &msg), RPC_PARSE_ERROR);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"status\"}", &msg),
                     RPC_PARSE_ERROR);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\u0000\"}", &msg),
                     RPC_PARSE_ERROR);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", &msg),
                     RPC_PARSE_ERROR);
    assert_int_equal(parse("[1]", &msg), RPC_INVALID_REQUEST);
    assert_string_equal(msg, "batches are not supported: one per line");
    assert_int_equal(parse("\"status\"", &msg), RPC_INVALID_REQUEST);
    assert_int_equal(parse("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"status\"}", &msg),
                     RPC_INVALID_REQUEST);
    assert_int_equal(parse("{\"jsonrpc\":2,\"id\":1,\"method\":\"status\"}", &msg),
                     RPC_INVALID_REQUEST);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"status\"}", &msg),
                     RPC_INVALID_REQUEST);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":[],\"method\":\"status\"}", &msg),
                     RPC_INVALID_REQUEST);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\",\"x\":0}", &msg),
                     RPC_INVALID_REQUEST);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1}", &msg), RPC_INVALID_REQUEST);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope\"}", &msg),
                     RPC_METHOD_NOT_FOUND);
    assert_int_equal(
        parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\",\"params\":[]}", &msg),
        RPC_INVALID_PARAMS);
    assert_int_equal(
        parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\",\"params\":3}", &msg),
        RPC_INVALID_PARAMS);
}

static void test_depth(void **state)
{
    (void)state;
    char line[256];
    memset(line, '[', 16);
    memset(line + 16, ']', 16);
    assert_true(rpc_depth_ok(line, 32));
    memset(line, '[', 17);
    memset(line + 17, ']', 17);
    assert_false(rpc_depth_ok(line, 34));
    /* brackets inside strings do not count, nor an escaped quote */
    const char *s = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[[[[[[[[[[[[[[\"}";
    assert_true(rpc_depth_ok(s, strlen(s)));
    const char *m = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\",\"params\":{\"a\":"
                    "[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]}}";
    const char *msg = NULL;
    assert_int_equal(parse(m, &msg), RPC_INVALID_REQUEST);
    assert_string_equal(msg, "nested more than 16 deep");
}

static void test_params(void **state)
{
    (void)state;
    json_t *p = json_loads("{\"to\":\"bob@sk.dk\",\"n\":5,\"neg\":-1,\"f\":1.5,\"b\":true,"
                           "\"s\":7,\"nul\":\"a\\u0000b\"}",
                           JSON_ALLOW_NUL, NULL);
    assert_non_null(p);
    static const char *const some[] = {"to", "n", NULL};
    static const char *const all[] = {"to", "n", "neg", "f", "b", "s", "nul", NULL};
    const char *str = NULL;
    long long v = 0;
    int b = 0;
    assert_int_equal(rpc_only(p, all), 0);
    assert_int_equal(rpc_only(p, some), RC_USAGE);
    assert_int_equal(rpc_str(p, "to", 1, &str), 0);
    assert_string_equal(str, "bob@sk.dk");
    assert_int_equal(rpc_str(p, "absent", 0, &str), 0);
    assert_null(str);
    assert_int_equal(rpc_str(p, "absent", 1, &str), RC_USAGE);
    assert_string_equal(reason(), "missing parameter 'absent'");
    assert_int_equal(rpc_str(p, "s", 1, &str), RC_USAGE);
    assert_string_equal(reason(), "parameter 's' must be a string");
    assert_int_equal(rpc_str(p, "nul", 1, &str), RC_USAGE);
    assert_int_equal(rpc_int(p, "n", 10, 0, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(rpc_int(p, "n", 4, 0, &v), RC_USAGE);
    assert_int_equal(rpc_int(p, "neg", 10, 0, &v), RC_USAGE);
    assert_int_equal(rpc_int(p, "f", 10, 0, &v), RC_USAGE);
    assert_int_equal(rpc_int(p, "absent", 10, 7, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(rpc_bool(p, "b", 0, &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(rpc_bool(p, "n", 0, &b), RC_USAGE);
    json_decref(p);
    assert_int_equal(rpc_err_code("EREVOKED"), KURER_EREVOKED);
    assert_int_equal(rpc_err_code("ECLEARANCE"), KURER_ECLEARANCE);
    assert_int_equal(rpc_err_code("EXYZZY"), KURER_EIO);
}

static int outcome; /* what fake() returns */

static int fake(rpc_ctx *c, json_t *params, json_t **result)
{
    (void)params;
    if (outcome == 0) {
        *result = json_pack("{s:s}", "to", "bob@sk.dk");
        return 0;
    }
    if (outcome == RC_QUEUED) {
        c->data = json_pack("{s:b,s:s}", "queued", 1, "name", "ETIMEOUT");
        refuse(KURER_ETIMEOUT, "not yet accepted by the relay: relay R did not answer in time");
        return RC_QUEUED;
    }
    if (outcome == RC_USAGE)
        return usage_error("parameter 'to' must be a string");
    return refuse(outcome, "refused: CONFIDENTIAL is above the clearance of bob@sk.dk device 1 "
                           "(RESTRICTED)");
}

static json_t *respond(int how, json_t *id)
{
    rpc_method m = {"fake", fake};
    rpc_ctx c = {NULL, 0, NULL, NULL, NULL, NULL, 0};
    char *line = NULL;
    size_t len = 0;
    json_t *params = json_object();
    outcome = how;
    assert_int_equal(rpc_respond(&m, &c, params, id, &line, &len), 0);
    json_decref(params);
    if (line == NULL)
        return NULL;
    assert_int_equal(line[len - 1], '\n');
    json_t *r = json_loadb(line, len, 0, NULL);
    rpc_free_wiped(line, len);
    assert_non_null(r);
    return r;
}

static void test_respond(void **state)
{
    (void)state;
    json_t *id = json_integer(7), *r;
    r = respond(0, id);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"), "to")),
                        "bob@sk.dk");
    json_decref(r);
    r = respond(KURER_ECLEARANCE, id);
    json_t *e = json_object_get(r, "error");
    assert_int_equal(json_integer_value(json_object_get(e, "code")), RPC_REFUSED);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "data"), "name")),
                        "ECLEARANCE");
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "clearance of bob"));
    json_decref(r);
    r = respond(RC_QUEUED, id);
    e = json_object_get(r, "error");
    assert_int_equal(json_integer_value(json_object_get(e, "code")), RPC_QUEUED);
    assert_true(json_is_true(json_object_get(json_object_get(e, "data"), "queued")));
    json_decref(r);
    r = respond(RC_USAGE, id);
    e = json_object_get(r, "error");
    assert_int_equal(json_integer_value(json_object_get(e, "code")), RPC_INVALID_PARAMS);
    json_decref(r);
    assert_null(respond(KURER_ECLEARANCE, NULL)); /* a notification: never answered */
    assert_null(respond(0, NULL));
    json_decref(id);
}

static void round_trip(const char *body, kurer_message_state st)
{
    kurer_message m = {.outgoing = 0,
                       .peer = "anna@fm.dk",
                       .peer_device = 3,
                       .level = KURER_LEVEL_RESTRICTED,
                       .body = body,
                       .sent_at = 1796422365000,
                       .received_at = 1796422365123,
                       .state = st,
                       .reason = st == KURER_MESSAGE_QUARANTINED ? KURER_ECLEARANCE : 0};
    memset(m.id, 0xab, sizeof(m.id));
    json_t *j = rpc_message_json(&m);
    assert_non_null(j);
    char *s = json_dumps(j, 0); /* as it travels */
    json_decref(j);
    j = json_loads(s, 0, NULL);
    json_malloc_t jmalloc = NULL;
    json_free_t jfree = NULL;
    json_get_alloc_funcs(&jmalloc, &jfree); /* s is jansson's: given back to its allocator */
    jfree(s);
    kurer_message back;
    char *raw = NULL;
    assert_int_equal(rpc_message_from(j, &back, &raw), 0);
    assert_memory_equal(back.id, m.id, sizeof(m.id));
    assert_string_equal(back.peer, m.peer);
    assert_int_equal(back.peer_device, 3);
    assert_int_equal(back.level, KURER_LEVEL_RESTRICTED);
    assert_int_equal(back.state, st);
    assert_int_equal(back.sent_at, m.sent_at);
    assert_int_equal(back.received_at, m.received_at);
    assert_int_equal(back.reason, m.reason);
    if (st == KURER_MESSAGE_QUARANTINED)
        assert_string_equal(back.body, "");
    else
        assert_string_equal(back.body, body); /* byte for byte, not UTF-8 included */
    rpc_free_wiped(raw, raw != NULL ? strlen(raw) + 1 : 0);
    json_decref(j);
}

static void test_messages(void **state)
{
    (void)state;
    round_trip("Mødet er flyttet til 14. \xe2\x80\xae", KURER_MESSAGE_RECEIVED);
    round_trip("a\x1b[2Jb\x9b\xff", KURER_MESSAGE_RECEIVED); /* a peer's bytes, not UTF-8 */
    round_trip("", KURER_MESSAGE_QUARANTINED);
    round_trip("sent", KURER_MESSAGE_SENT);
    /* malformed message objects are refused, not guessed at */
    const char *bad[] = {
        "{}",
        "{\"id\":\"ab\",\"outgoing\":false,\"peer\":\"a@b\",\"device\":1,\"level\":\"RESTRICTED\","
        "\"state\":\"received\",\"sent_at\":1,\"received_at\":1}",
        "{\"id\":\"abababababababababababababababab\",\"outgoing\":false,\"peer\":\"a@b\","
        "\"device\":1,\"level\":\"SECRET\",\"state\":\"received\",\"sent_at\":1,"
        "\"received_at\":1}",
        "{\"id\":\"abababababababababababababababab\",\"outgoing\":0,\"peer\":\"a@b\","
        "\"device\":1,\"level\":\"RESTRICTED\",\"state\":\"received\",\"sent_at\":1,"
        "\"received_at\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        kurer_message m;
        char *raw = NULL;
        assert_int_equal(rpc_message_from(j, &m, &raw), RC_USAGE);
        assert_null(raw);
        json_decref(j);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),  cmocka_unit_test(test_depth),
        cmocka_unit_test(test_params),   cmocka_unit_test(test_respond),
        cmocka_unit_test(test_messages),
    };
    kurer_log_set(stderr, KURER_LOG_OFF);
    if (kurer_crypto_init() != 0)
        return 1;
    rpc_init();
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
