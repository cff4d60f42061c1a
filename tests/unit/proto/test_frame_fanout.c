/* Fan-out frames (proto/frame_fanout.c): FanoutSend parts and FanoutResult round trip; each
 * rule of the decoder refuses hostile input with its exact error (too many recipients,
 * duplicate devices and users, empty lists, oversize payload, a wrong id length, parts out of
 * their rules), also when the bytes were not made by our encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/frame.h"

static uint8_t content[KURER_ENVELOPE_CONTENT_MAX + 1];

static kurer_client_frame part0(const kurer_fanout_user *users, size_t n, int final)
{
    kurer_client_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = 9;
    f.body = KURER_CLIENT_FANOUT;
    memset(f.u.fanout.id, 0x5a, KURER_ENVELOPE_ID_LEN);
    f.u.fanout.type = KURER_ENVELOPE_SENDER_KEY;
    f.u.fanout.content = content;
    f.u.fanout.content_len = 300;
    f.u.fanout.users = users;
    f.u.fanout.n_users = n;
    f.u.fanout.final = final;
    return f;
}

static int encode_client(const kurer_client_frame *f)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int rc = kurer_client_frame_encode(f, &b);
    kurer_buf_release(&b);
    return rc;
}

static void test_send_round_trip(void **state)
{
    (void)state;
    kurer_fanout_device da[3] = {{1, 11}, {2, 0}, {7, 0xffffffffffull}};
    kurer_fanout_device db[1] = {{1, 5}};
    kurer_fanout_user u[2] = {{"anna.berg@ministry.example", da, 3},
                              {"bo.lund@agency.example", db, 1}};
    kurer_client_frame f = part0(u, 2, 1), d;
    kurer_buf b;
    for (size_t i = 0; i < sizeof(content); i++)
        content[i] = (uint8_t)(i * 7);
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_client_frame_encode(&f, &b), 0);
    assert_int_equal(kurer_client_frame_decode(b.data, b.len, &d), 0);
    assert_int_equal(d.body, KURER_CLIENT_FANOUT);
    assert_int_equal(d.request_id, 9);
    assert_memory_equal(d.u.fanout.id, f.u.fanout.id, KURER_ENVELOPE_ID_LEN);
    assert_int_equal(d.u.fanout.part, 0);
    assert_int_equal(d.u.fanout.type, KURER_ENVELOPE_SENDER_KEY);
    assert_int_equal(d.u.fanout.content_len, 300);
    assert_memory_equal(d.u.fanout.content, content, 300);
    assert_int_equal(d.u.fanout.final, 1);
    assert_int_equal(d.u.fanout.n_users, 2);
    assert_string_equal(d.u.fanout.users[1].user, "bo.lund@agency.example");
    assert_int_equal(d.u.fanout.users[0].n_devices, 3);
    assert_int_equal(d.u.fanout.users[0].devices[2].device_id, 7);
    assert_true(d.u.fanout.users[0].devices[2].serial == 0xffffffffffull);
    assert_true(d.u.fanout.users[1].devices[0].serial == 5);
    kurer_client_frame_release(&d);
    kurer_buf_release(&b);

    /* a later part: recipients only */
    f.u.fanout.part = 3;
    f.u.fanout.type = 0;
    f.u.fanout.content = NULL;
    f.u.fanout.content_len = 0;
    f.u.fanout.final = 0;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_client_frame_encode(&f, &b), 0);
    assert_int_equal(kurer_client_frame_decode(b.data, b.len, &d), 0);
    assert_int_equal(d.u.fanout.part, 3);
    assert_int_equal(d.u.fanout.content_len, 0);
    assert_int_equal(d.u.fanout.final, 0);
    assert_int_equal(d.u.fanout.n_users, 2);
    kurer_client_frame_release(&d);
    kurer_buf_release(&b);

    /* a first part with the content alone, more to come */
    f = part0(NULL, 0, 0);
    f.u.fanout.content_len = KURER_ENVELOPE_CONTENT_MAX; /* the largest payload fits a record */
    assert_int_equal(encode_client(&f), 0);
}

static void test_send_hostile(void **state)
{
    (void)state;
    kurer_fanout_device dup[2] = {{4, 0}, {4, 1}};
    kurer_fanout_device bad_id[1] = {{0, 0}};
    kurer_fanout_device one[1] = {{1, 0}};
    kurer_fanout_user u[2] = {{"anna.berg@ministry.example", dup, 2},
                              {"anna.berg@ministry.example", one, 1}};
    kurer_client_frame f = part0(u, 1, 1);
    assert_int_equal(encode_client(&f), KURER_EDUPLICATE); /* one device twice */
    u[0].devices = one;
    u[0].n_devices = 1;
    f = part0(u, 2, 1);
    assert_int_equal(encode_client(&f), KURER_EDUPLICATE); /* one user twice */
    u[0].n_devices = 0;
    f = part0(u, 1, 1);
    assert_int_equal(encode_client(&f), KURER_EMALFORMED); /* a user without devices */
    u[0].devices = bad_id;
    u[0].n_devices = 1;
    assert_int_equal(encode_client(&f), KURER_EMALFORMED); /* device id 0 */
    u[0].devices = one;
    u[0].user = "not a user";
    assert_int_equal(encode_client(&f), KURER_EMALFORMED);
    u[0].user = "anna.berg@ministry.example";

    f = part0(NULL, 0, 1);
    assert_int_equal(encode_client(&f), KURER_EMALFORMED); /* final with nobody */
    f = part0(u, 1, 1);
    f.u.fanout.part = 1;
    assert_int_equal(encode_client(&f), KURER_EMALFORMED); /* content in a later part */
    f.u.fanout.content = NULL;
    f.u.fanout.content_len = 0;
    f.u.fanout.type = 0;
    f.u.fanout.n_users = 0;
    f.u.fanout.final = 0;
    assert_int_equal(encode_client(&f), KURER_EMALFORMED); /* a later part with nobody */
    f = part0(u, 1, 1);
    f.u.fanout.type = KURER_ENVELOPE_MESSAGE;
    assert_int_equal(encode_client(&f), KURER_EMALFORMED); /* only sender-key messages */
    f.u.fanout.type = KURER_ENVELOPE_SENDER_KEY;
    f.u.fanout.content_len = 0;
    assert_int_equal(encode_client(&f), KURER_EMALFORMED); /* no content in part 0 */
    f.u.fanout.content_len = KURER_ENVELOPE_CONTENT_MAX + 1;
    assert_int_equal(encode_client(&f), KURER_ELIMIT); /* oversize payload */
    f.u.fanout.content_len = 10;
    f.u.fanout.part = KURER_FANOUT_PARTS_MAX;
    f.u.fanout.content = NULL;
    f.u.fanout.content_len = 0;
    f.u.fanout.type = 0;
    assert_int_equal(encode_client(&f), KURER_ELIMIT); /* too many parts */
}

/* KURER_FANOUT_DEVICES_MAX + 1 devices in one part (small enough for a record) */
static void test_send_too_many(void **state)
{
    (void)state;
    enum { PER = KURER_USER_DEVICES_MAX, USERS = KURER_FANOUT_DEVICES_MAX / PER + 1 };
    static kurer_fanout_device devs[PER + 1];
    static kurer_fanout_user users[USERS];
    static char names[USERS][32];
    for (uint32_t i = 0; i <= PER; i++)
        devs[i].device_id = i + 1;
    for (size_t i = 0; i < USERS; i++) {
        snprintf(names[i], sizeof(names[i]), "u%zu@a.example", i);
        users[i].user = names[i];
        users[i].devices = devs;
        users[i].n_devices = PER;
    }
    kurer_client_frame f = part0(users, USERS, 1);
    assert_true((size_t)USERS * PER > KURER_FANOUT_DEVICES_MAX);
    assert_int_equal(encode_client(&f), KURER_ELIMIT);
    f.u.fanout.n_users = KURER_FANOUT_DEVICES_MAX / PER; /* exactly at the bound: fine */
    assert_int_equal(encode_client(&f), 0);
    users[0].n_devices = KURER_USER_DEVICES_MAX + 1;
    assert_int_equal(encode_client(&f), KURER_ELIMIT);
}

/* Bytes not made by our encoder: a FanoutSend whose id has 15 or 17 bytes. */
static size_t hand_made(uint8_t *p, size_t id_len)
{
    static const uint8_t user[] = {0x2a, 0x1b, 0x0a, 0x15, 'a', 'n',  'n',  'a',  '@', 'm',
                                   'i',  'n',  'i',  's',  't', 'r',  'y',  '.',  'e', 'x',
                                   'a',  'm',  'p',  'l',  'e', 0x12, 0x02, 0x08, 0x01};
    uint8_t body[128];
    size_t n = 0;
    body[n++] = 0x0a; /* id */
    body[n++] = (uint8_t)id_len;
    memset(body + n, 0x11, id_len);
    n += id_len;
    body[n++] = 0x18; /* type SENDER_KEY */
    body[n++] = 0x03;
    body[n++] = 0x22; /* content, 2 bytes */
    body[n++] = 0x02;
    body[n++] = 0xab;
    body[n++] = 0xcd;
    memcpy(body + n, user, sizeof(user));
    n += sizeof(user);
    body[n++] = 0x30; /* final */
    body[n++] = 0x01;
    size_t m = 0;
    p[m++] = 0x08; /* request_id 1 */
    p[m++] = 0x01;
    p[m++] = 0xaa; /* field 21, length-delimited */
    p[m++] = 0x01;
    p[m++] = (uint8_t)n;
    memcpy(p + m, body, n);
    return m + n;
}

static void test_send_id_length(void **state)
{
    (void)state;
    uint8_t buf[256];
    kurer_client_frame d;
    size_t n = hand_made(buf, 16);
    assert_int_equal(kurer_client_frame_decode(buf, n, &d), 0);
    assert_int_equal(d.u.fanout.n_users, 1);
    assert_string_equal(d.u.fanout.users[0].user, "anna@ministry.example");
    assert_int_equal(d.u.fanout.content_len, 2);
    kurer_client_frame_release(&d);
    n = hand_made(buf, 15);
    assert_int_equal(kurer_client_frame_decode(buf, n, &d), KURER_EMALFORMED);
    assert_int_equal(d.body, KURER_CLIENT_NONE); /* refused: zeroed, owns nothing */
    n = hand_made(buf, 17);
    assert_int_equal(kurer_client_frame_decode(buf, n, &d), KURER_EMALFORMED);
    n = hand_made(buf, 0);
    assert_int_equal(kurer_client_frame_decode(buf, n, &d), KURER_EMALFORMED);
}

static void test_result_round_trip(void **state)
{
    (void)state;
    kurer_user_result res[2];
    memset(res, 0, sizeof(res));
    res[0].user = "gone@ministry.example";
    res[0].status = KURER_SEND_UNKNOWN_USER;
    res[1].user = "bo.lund@agency.example";
    res[1].status = KURER_SEND_STALE_DEVICES; /* its list omitted: empty */
    kurer_server_frame f, d;
    kurer_buf b;
    memset(&f, 0, sizeof(f));
    f.request_id = 12;
    f.body = KURER_SERVER_FANOUT_RESULT;
    memset(f.u.fanout_result.id, 0x5a, KURER_ENVELOPE_ID_LEN);
    f.u.fanout_result.refused = res;
    f.u.fanout_result.n_refused = 2;
    f.u.fanout_result.accepted = 998;
    f.u.fanout_result.lists_omitted = 1;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_server_frame_encode(&f, &b), 0);
    assert_int_equal(kurer_server_frame_decode(b.data, b.len, &d), 0);
    assert_int_equal(d.body, KURER_SERVER_FANOUT_RESULT);
    assert_int_equal(d.u.fanout_result.accepted, 998);
    assert_int_equal(d.u.fanout_result.lists_omitted, 1);
    assert_int_equal(d.u.fanout_result.n_refused, 2);
    assert_memory_equal(d.u.fanout_result.id, f.u.fanout_result.id, KURER_ENVELOPE_ID_LEN);
    assert_string_equal(d.u.fanout_result.refused[0].user, "gone@ministry.example");
    assert_int_equal(d.u.fanout_result.refused[0].status, KURER_SEND_UNKNOWN_USER);
    assert_int_equal(d.u.fanout_result.refused[1].status, KURER_SEND_STALE_DEVICES);
    assert_string_equal(d.u.fanout_result.refused[1].current.user, "bo.lund@agency.example");
    assert_int_equal(d.u.fanout_result.refused[1].current.n_devices, 0);
    kurer_server_frame_release(&d);
    kurer_buf_release(&b);

    /* an accepted user is counted, never listed; nobody twice; a push is no answer */
    kurer_buf_init(&b, KURER_FRAME_MAX);
    res[0].status = KURER_SEND_ACCEPTED;
    assert_int_equal(kurer_server_frame_encode(&f, &b), KURER_EMALFORMED);
    res[0].status = KURER_SEND_UNKNOWN_USER;
    res[0].user = res[1].user;
    assert_int_equal(kurer_server_frame_encode(&f, &b), KURER_EMALFORMED);
    res[0].user = "gone@ministry.example";
    f.request_id = 0;
    assert_int_equal(kurer_server_frame_encode(&f, &b), KURER_EMALFORMED);
    assert_int_equal(b.len, 0);
    kurer_buf_release(&b);
}

/* The stored form: the shared bytes with one recipient's `to` put back are exactly the
 * envelope's own encoding, for short and long names and ids. */
static void test_shared_form(void **state)
{
    (void)state;
    static const char *const users[] = {"a@b.example", "anna.berg@ministry.example"};
    static const uint32_t ids[] = {1, 127, 128, 300000, KURER_DEVICE_ID_MAX};
    char longname[KURER_SUBJECT_MAX + 1]; /* 123 bytes: a two-byte length for its address */
    memset(longname, 'x', 64);
    longname[64] = '@';
    memset(longname + 65, 'a', 50);
    strcpy(longname + 115, ".example");
    kurer_envelope e;
    memset(&e, 0, sizeof(e));
    memset(e.id, 0x42, sizeof(e.id));
    strcpy(e.to.user, "first@b.example");
    e.to.device_id = 1;
    e.has_from = 1;
    strcpy(e.from.user, "sender@b.example");
    e.from.device_id = 2;
    e.type = KURER_ENVELOPE_SENDER_KEY;
    e.content = content;
    e.content_len = 1000;
    e.server_ts = 1800000000123;
    kurer_buf shared;
    kurer_buf_init(&shared, KURER_FRAME_MAX);
    assert_int_equal(kurer_fanout_shared_encode(&e, &shared), 0);
    for (size_t u = 0; u < 3; u++)
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
            kurer_buf want, got;
            kurer_buf_init(&want, KURER_FRAME_MAX);
            kurer_buf_init(&got, KURER_FRAME_MAX);
            strcpy(e.to.user, u < 2 ? users[u] : longname);
            e.to.device_id = ids[i];
            assert_int_equal(kurer_envelope_encode(&e, &want), 0);
            assert_int_equal(kurer_fanout_envelope(shared.data, shared.len, &e.to, &got), 0);
            assert_int_equal(got.len, want.len);
            assert_memory_equal(got.data, want.data, want.len);
            kurer_buf_release(&want);
            kurer_buf_release(&got);
        }
    kurer_buf got;
    kurer_buf_init(&got, KURER_FRAME_MAX);
    assert_int_equal(kurer_fanout_envelope(shared.data, 10, &e.to, &got), KURER_EMALFORMED);
    e.to.device_id = 0;
    assert_int_equal(kurer_fanout_envelope(shared.data, shared.len, &e.to, &got), KURER_EMALFORMED);
    assert_int_equal(got.len, 0);
    kurer_buf_release(&got);
    kurer_buf_release(&shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_round_trip),   cmocka_unit_test(test_send_hostile),
        cmocka_unit_test(test_send_too_many),     cmocka_unit_test(test_send_id_length),
        cmocka_unit_test(test_result_round_trip), cmocka_unit_test(test_shared_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
