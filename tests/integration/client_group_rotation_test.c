/* Sender-key rotation by age and by use (client/group_send.c, own_key; docs/protocol.md 4.7),
 * two homes in one process against a real relay, ctest client_group_rotation_<case>:
 *  - age: anna's home runs on a clock of the test's own (stopped where the test sets it). A
 *    message sent 7 days less a second after her key was made still goes under it; the next one, at
 * 7 days, goes under a new key (a new key id, made at the new time, its first message): bob got the
 * new key's distribution (he holds the key id that message's ciphertext names) and reads every
 * message;
 *  - count: anna's key record says it has sent KURER__GROUP_KEY_MAX_MESSAGES - 1 messages (set
 *    in her store: a loop of 1,000 real sends takes a minute under ASan); the next message still
 *    goes under it (the last one the limit allows), the one after under a new key that bob gets
 *    and reads with. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "group_send.h"
#include "home.h"
#include "kurer/kurer.h"
#include "relay_harness.h"
#include "session_group.h"
#include "store_group.h"

#define PASS    "rotation test passphrase"
#define WAIT_MS 20000

/* Anna's clock: the system's while *ud is 0, else stopped at *ud (Unix seconds). */
static int64_t test_clock(void *ud)
{
    int64_t t = *(const int64_t *)ud;
    return t != 0 ? t : kurer_time_unix();
}

/* A home for user, enrolled with a certificate from the world's authority (as
 * client_fanout_test.c makes them); on test_clock(now) unless now is NULL. */
static kurer *make_home(world *w, const char *user, uint64_t serial, int64_t *now)
{
    kurer_create_options o;
    char relay[64], dir[300];
    uint8_t *data = NULL;
    size_t len = 0;
    kurer_csr csr;
    kurer_cert_body b;
    kurer_chain chain;
    kurer_buf buf;
    kurer *k = NULL;
    snprintf(dir, sizeof(dir), "%s/home-%s", w->dir, user);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&w->addr;
    snprintf(relay, sizeof(relay), "127.0.0.1:%u", (unsigned)ntohs(sin->sin_port));
    memset(&o, 0, sizeof(o));
    o.home = dir;
    o.user = user;
    o.device_id = 1;
    o.relay = relay;
    memcpy(o.relay_key, w->relay_pk, sizeof(o.relay_key));
    kurer_buf_init(&buf, KURER_CERT_MAX);
    assert_int_equal(kurer_cert_encode(&w->root, &buf), 0);
    o.root = buf.data;
    o.root_len = buf.len;
    kurer_kdf_params p = kurer_kdf_minimum();
    o.kdf_ops = p.opslimit;
    o.kdf_mem = p.memlimit;
    if (now != NULL) {
        o.clock = test_clock;
        o.clock_ud = now;
    }
    assert_int_equal(kurer_create(&o, PASS, strlen(PASS), NULL, &k), 0);
    kurer_buf_release(&buf);
    assert_int_equal(kurer_file_read(kurer_csr_path(k), 8192, &data, &len), 0);
    assert_int_equal(kurer_csr_decode(data, len, &csr), 0);
    free(data);
    body_common(&b, KURER_ROLE_DEVICE, csr.body.subject, serial);
    b.device_id = csr.body.device_id;
    memcpy(b.identity_key, csr.body.identity_key, sizeof(b.identity_key));
    memcpy(b.noise_key, csr.body.noise_key, sizeof(b.noise_key));
    memset(&chain, 0, sizeof(chain));
    assert_int_equal(kurer_cert_sign(&b, &w->auth_key, &chain.certs[0]), 0);
    chain.certs[1] = w->auth;
    chain.n = 2;
    kurer_buf_init(&buf, KURER_CHAIN_BYTES_MAX);
    assert_int_equal(kurer_chain_encode(&chain, &buf), 0);
    assert_int_equal(kurer_import_chain(k, buf.data, buf.len), 0);
    kurer_buf_release(&buf);
    return k;
}

typedef struct pair {
    world *w;
    int64_t now; /* anna's clock (test_clock) */
    kurer *anna, *bob;
    char hex[KURER_GROUP_HEX_MAX + 1];
    uint8_t gid[KURER_GROUP_ID_LEN];
} pair;

/* The relay, anna (on the test clock) and bob, both connected; a group of the two. */
static void pair_start(world *w, pair *p)
{
    kurer_refusal why;
    memset(p, 0, sizeof(*p));
    p->w = w;
    start_relay(w, NULL, NULL);
    p->anna = make_home(w, "anna@mof", 10, &p->now);
    p->bob = make_home(w, "bob@mof", 11, NULL);
    assert_int_equal(kurer_connect(p->bob, WAIT_MS), 0);
    assert_int_equal(kurer_connect(p->anna, WAIT_MS), 0);
    const char *users[] = {"bob@mof"};
    assert_int_equal(kurer_group_create(p->anna, "rotation", users, 1, WAIT_MS, p->hex, &why), 0);
    assert_int_equal(kurer_hex_decode(p->gid, sizeof(p->gid), p->hex), 0);
}

static void pair_stop(pair *p)
{
    kurer_close(p->anna);
    kurer_close(p->bob);
}

/* Anna's current sender key for the group (read under her home lock). */
static kurer__group_own_key own_key(pair *p)
{
    kurer__group_own_key key;
    kurer__hlock_take(p->anna);
    int rc = kurer__store_group_own_key_get(kurer__home_store(p->anna), p->gid, &key);
    kurer__hlock_give(p->anna);
    assert_int_equal(rc, 0);
    return key;
}

typedef struct find_ctx {
    const char *text, *hex;
    int found;
} find_ctx;

static int find_text(void *ud, const kurer_message *m)
{
    find_ctx *f = ud;
    if (!m->outgoing && strcmp(m->group, f->hex) == 0 && strcmp(m->body, f->text) == 0 &&
        m->state == KURER_MESSAGE_RECEIVED)
        f->found = 1;
    return 0;
}

/* Anna sends text to the group; bob has read it (decrypted and stored) within WAIT_MS and holds
 * the sender key that the message's one ciphertext names; *key is anna's key afterwards. */
static void send_read(pair *p, const char *text, kurer__group_own_key *key)
{
    kurer_refusal why;
    int64_t mid = 0;
    assert_int_equal(
        kurer_group_send(p->anna, p->hex, KURER_LEVEL_RESTRICTED, text, WAIT_MS, &why, &mid), 0);
    *key = own_key(p);
    find_ctx f = {text, p->hex, 0};
    for (int i = 0; i < WAIT_MS / 10 && !f.found; i++) {
        assert_int_equal(kurer_history_group(p->bob, p->hex, find_text, &f), 0);
        if (!f.found)
            usleep(10000);
    }
    assert_true(f.found);
    /* the one ciphertext, as anna stored it, names a key that bob now holds */
    kurer_buf ct;
    kurer_buf_init(&ct, 1 << 16);
    kurer__hlock_take(p->anna);
    int rc = kurer__store_group_message_ct(kurer__home_store(p->anna), mid, &ct);
    kurer__hlock_give(p->anna);
    assert_int_equal(rc, 0);
    kurer__hlock_take(p->bob);
    int has = kurer__session_group_has_key(kurer__home_session(p->bob), p->gid, "anna@mof", 1,
                                           ct.data, ct.len);
    kurer__hlock_give(p->bob);
    kurer_buf_release(&ct);
    assert_int_equal(has, 1);
}

static void test_age(void **state)
{
    pair p;
    kurer__group_own_key k1, k2, k3;
    pair_start(*state, &p);
    send_read(&p, "before", &k1);
    assert_int_equal(k1.messages, 1);
    int64_t made = k1.created_at;
    assert_true(made >= kurer_time_unix() - 5 && made <= kurer_time_unix());
    /* a second short of the limit: the same key */
    p.now = made + KURER__GROUP_KEY_MAX_AGE_S - 1;
    send_read(&p, "a week less a second", &k2);
    assert_int_equal(k2.key_id, k1.key_id);
    assert_int_equal(k2.created_at, made);
    assert_int_equal(k2.messages, 2);
    /* at the limit: a new key, made now (on anna's clock), whose distribution bob got */
    p.now = made + KURER__GROUP_KEY_MAX_AGE_S;
    send_read(&p, "a week later", &k3);
    assert_int_not_equal(k3.key_id, k1.key_id);
    assert_int_equal(k3.created_at, made + KURER__GROUP_KEY_MAX_AGE_S);
    assert_int_equal(k3.messages, 1);
    pair_stop(&p);
}

static void test_count(void **state)
{
    pair p;
    kurer__group_own_key k1, k2, k3;
    pair_start(*state, &p);
    send_read(&p, "first", &k1);
    assert_int_equal(k1.messages, 1);
    /* as if 998 more had been sent under it */
    k1.messages = KURER__GROUP_KEY_MAX_MESSAGES - 1;
    kurer__hlock_take(p.anna);
    int rc = kurer__store_group_own_key_put(kurer__home_store(p.anna), p.gid, &k1);
    kurer__hlock_give(p.anna);
    assert_int_equal(rc, 0);
    send_read(&p, "the last one under the first key", &k2);
    assert_int_equal(k2.key_id, k1.key_id);
    assert_int_equal(k2.messages, KURER__GROUP_KEY_MAX_MESSAGES);
    send_read(&p, "the first under a new key", &k3);
    assert_int_not_equal(k3.key_id, k1.key_id);
    assert_int_equal(k3.messages, 1);
    pair_stop(&p);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
