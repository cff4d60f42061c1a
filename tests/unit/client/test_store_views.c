/* client_views: the store's queries behind kurer outbox, contacts and conversations, and the
 * size limit per number of devices (client/store_views.c, client/outbox.c). One ctest entry
 * per case (client_views_<case>). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kurer/crypto.h"
#include "kurer/kurer.h"
#include "kurer/util.h"
#include "store.h"

#define PASS "correct horse battery staple"

typedef struct fixture {
    char home[256];
    kurer__store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(kurer_crypto_init(), 0);
    strcpy(f->home, "/tmp/kurer-views-XXXXXX");
    assert_non_null(mkdtemp(f->home));
    kurer_kdf_params p = kurer_kdf_minimum();
    assert_int_equal(kurer__store_create_pass(f->home, PASS, strlen(PASS), &p, &f->st), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    const char *names[] = {"store.db", "store.db-wal", "store.db-shm", "store.kdf"};
    char p[512];
    kurer__store_close(f->st);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", f->home, names[i]);
        unlink(p);
    }
    rmdir(f->home);
    free(f);
    return 0;
}

/* The limit shrinks with the devices; one device is KURER_TEXT_MAX; each value leaves room in
 * one frame for n envelopes of its padded size with the Signal message around each. */
static void test_text_limit(void **state)
{
    (void)state;
    assert_int_equal(kurer_text_limit(0), 0);
    assert_int_equal(kurer_text_limit(1), KURER_TEXT_MAX);
    assert_int_equal(kurer_text_limit(2), 30943);
    assert_int_equal(kurer_text_limit(4), 14463);
    assert_int_equal(kurer_text_limit(8), 6303);
    assert_int_equal(kurer_text_limit(16), 2143);
    assert_int_equal(kurer_text_limit(32), 223);
    assert_int_equal(kurer_text_limit(36), 0);
    assert_int_equal(kurer_text_limit(100000), 0);
    for (size_t n = 1; n < 64; n++) {
        size_t t = kurer_text_limit(n);
        assert_true(t <= kurer_text_limit(n - 1) || n == 1);
        if (t == 0)
            continue;
        /* text + wrapper + padding marker, padded to the block, plus the Signal overhead and
         * an envelope's fields, n times, fits a frame */
        size_t padded = (t + 256 + 1 + 159) / 160 * 160;
        assert_true(n * (padded + 1024 + 512) <= 65519);
    }
}

static int64_t add_msg(kurer__store *st, int dir, const char *peer, int state, int64_t at)
{
    kurer__msg m;
    memset(&m, 0, sizeof(m));
    kurer_random(m.envelope_id, sizeof(m.envelope_id));
    m.direction = dir;
    snprintf(m.peer, sizeof(m.peer), "%s", peer);
    m.peer_device = dir == KURER__DIR_IN ? 1 : 0;
    m.level = 2;
    m.body = "hej";
    m.body_len = 3;
    m.sent_at = at;
    m.received_at = at;
    m.state = state;
    assert_int_equal(kurer__store_message_insert(st, &m), 0);
    return m.rowid;
}

static void add_item(kurer__store *st, int64_t msg, uint32_t dev, int64_t next)
{
    kurer__outbox_item it;
    memset(&it, 0, sizeof(it));
    kurer_random(it.envelope_id, 16);
    it.message_rowid = msg;
    strcpy(it.to_user, "bob@mof");
    it.to_device = dev;
    it.type = 2;
    it.content = (const uint8_t *)"ct";
    it.content_len = 2;
    it.next_attempt_at = next;
    assert_int_equal(kurer__store_outbox_add(st, &it), 0);
}

typedef struct seen {
    kurer__open_msg v[8];
    size_t n;
} seen;

static int note(void *ud, const kurer__open_msg *m)
{
    seen *s = ud;
    assert_true(s->n < 8);
    s->v[s->n++] = *m;
    return 0;
}

/* Open = outgoing, PENDING or FAILED, not cancelled; with the refusal and the items summed. */
static void test_outbox_messages(void **state)
{
    fixture *f = *state;
    kurer__store *st = f->st;
    int64_t pending = add_msg(st, KURER__DIR_OUT, "bob@mof", KURER__MSG_PENDING, 1000);
    add_item(st, pending, 1, 5000);
    add_item(st, pending, 2, 3000);
    int64_t failed = add_msg(st, KURER__DIR_OUT, "bob@mof", KURER__MSG_PENDING, 2000);
    assert_int_equal(kurer__store_message_set_state(st, failed, KURER__MSG_FAILED, KURER_ELIMIT),
                     0);
    assert_int_equal(kurer__store_message_refusal(st, failed, 0, "bob@mof", 2, 30943), 0);
    int64_t cancelled = add_msg(st, KURER__DIR_OUT, "bob@mof", KURER__MSG_PENDING, 2500);
    assert_int_equal(
        kurer__store_message_set_state(st, cancelled, KURER__MSG_FAILED, KURER_ECANCELLED), 0);
    (void)add_msg(st, KURER__DIR_OUT, "bob@mof", KURER__MSG_SENT, 2600);
    (void)add_msg(st, KURER__DIR_IN, "bob@mof", KURER__MSG_RECEIVED, 2700);

    seen s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(kurer__store_outbox_messages(st, 0, note, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.v[0].rowid, pending);
    assert_int_equal(s.v[0].state, KURER__MSG_PENDING);
    assert_int_equal(s.v[0].items, 2);
    assert_int_equal(s.v[0].next_attempt_at, 3000);
    assert_int_equal(s.v[0].accepted, 0);
    assert_int_equal(s.v[0].created_at, 1000);
    assert_string_equal(s.v[0].to, "bob@mof");
    assert_int_equal(s.v[1].rowid, failed);
    assert_int_equal(s.v[1].reason, KURER_ELIMIT);
    assert_string_equal(s.v[1].refusal_user, "bob@mof");
    assert_int_equal(s.v[1].refusal_device, 2);
    assert_int_equal(s.v[1].refusal_limit, 30943);
    assert_int_equal(s.v[1].items, 0);

    /* One message only; accepted; the backoff forgotten. */
    assert_int_equal(kurer__store_message_accepted(st, pending), 0);
    assert_int_equal(kurer__store_outbox_retry_later(st, 1, 4000), 0);
    assert_int_equal(kurer__store_outbox_due_now(st, pending, 42), 0);
    memset(&s, 0, sizeof(s));
    assert_int_equal(kurer__store_outbox_messages(st, pending, note, &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.v[0].accepted, 1);
    assert_int_equal(s.v[0].attempts, 0);
    assert_int_equal(s.v[0].next_attempt_at, 42);
    memset(&s, 0, sizeof(s));
    assert_int_equal(kurer__store_outbox_messages(st, cancelled, note, &s), 0);
    assert_int_equal(s.n, 0);
}

typedef struct convs {
    kurer__conv v[4];
    size_t n;
} convs;

static int note_conv(void *ud, const kurer__conv *c)
{
    convs *s = ud;
    assert_true(s->n < 4);
    s->v[s->n++] = *c;
    return 0;
}

typedef struct contacts {
    kurer__contact v[4];
    size_t n;
} contacts;

static int note_contact(void *ud, const kurer__contact *c)
{
    contacts *s = ud;
    assert_true(s->n < 4);
    s->v[s->n++] = *c;
    return 0;
}

static void test_conversations_contacts(void **state)
{
    fixture *f = *state;
    kurer__store *st = f->st;
    (void)add_msg(st, KURER__DIR_OUT, "bob@mof", KURER__MSG_SENT, 1000);
    (void)add_msg(st, KURER__DIR_IN, "bob@mof", KURER__MSG_RECEIVED, 2000);
    (void)add_msg(st, KURER__DIR_IN, "bob@mof", KURER__MSG_QUARANTINED, 3000);
    (void)add_msg(st, KURER__DIR_OUT, "bob@mof", KURER__MSG_PENDING, 4000);
    (void)add_msg(st, KURER__DIR_OUT, "carl@mof", KURER__MSG_SENT, 9000);
    int64_t fl = add_msg(st, KURER__DIR_OUT, "carl@mof", KURER__MSG_PENDING, 8000);
    assert_int_equal(kurer__store_message_set_state(st, fl, KURER__MSG_FAILED, KURER_EREVOKED), 0);
    convs c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(kurer__store_conversations(st, note_conv, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.v[0].peer, "carl@mof"); /* the most recent first */
    assert_int_equal(c.v[0].last_at, 9000);
    assert_int_equal(c.v[0].total, 2);
    assert_int_equal(c.v[0].sent, 1);
    assert_int_equal(c.v[0].failed, 1);
    assert_string_equal(c.v[1].peer, "bob@mof");
    assert_int_equal(c.v[1].last_at, 4000);
    assert_int_equal(c.v[1].total, 4);
    assert_int_equal(c.v[1].received, 2);
    assert_int_equal(c.v[1].quarantined, 1);
    assert_int_equal(c.v[1].sent, 1);
    assert_int_equal(c.v[1].pending, 1);

    /* Contacts: certificates held or messages, by name, never ourselves. */
    const uint8_t chain[] = {1, 2, 3};
    assert_int_equal(kurer__store_peer_device_put(st, "dora@mof", 1, 7, chain, 3), 0);
    assert_int_equal(kurer__store_peer_device_put(st, "dora@mof", 2, 8, chain, 3), 0);
    assert_int_equal(kurer__store_peer_device_put(st, "me@mof", 2, 9, chain, 3), 0);
    assert_int_equal(kurer__store_peer_device_put(st, "bob@mof", 1, 3, chain, 3), 0);
    contacts k;
    memset(&k, 0, sizeof(k));
    assert_int_equal(kurer__store_contacts(st, "me@mof", note_contact, &k), 0);
    assert_int_equal(k.n, 3);
    assert_string_equal(k.v[0].user, "bob@mof");
    assert_int_equal(k.v[0].devices, 1);
    assert_int_equal(k.v[0].messages, 4);
    assert_int_equal(k.v[0].last_at, 4000);
    assert_string_equal(k.v[1].user, "carl@mof");
    assert_int_equal(k.v[1].devices, 0);
    assert_string_equal(k.v[2].user, "dora@mof");
    assert_int_equal(k.v[2].devices, 2);
    assert_int_equal(k.v[2].messages, 0);
    assert_int_equal(k.v[2].last_at, 0);
}

/* The sessions move to the archive under the old identity key, in one transaction. */
static void test_sessions_archive(void **state)
{
    fixture *f = *state;
    kurer__store *st = f->st;
    const uint8_t rec[] = {9, 9, 9};
    const uint8_t old_key[KURER_IDENTITY_KEY_LEN] = {5};
    assert_int_equal(kurer__store_session_put(st, "bob@mof", 7, 1, rec, 3), 0);
    assert_int_equal(kurer__store_session_put(st, "bob@mof", 7, 2, rec, 3), 0);
    int n = -1;
    assert_int_equal(kurer__store_sessions_archive(st, old_key, sizeof(old_key), 1, &n), 0);
    assert_int_equal(n, 2);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(kurer__store_session_get(st, "bob@mof", 7, 1, &data, &len), KURER_ENOTFOUND);
    assert_int_equal(kurer__store_sessions_archive(st, old_key, sizeof(old_key), 2, &n), 0);
    assert_int_equal(n, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conversations_contacts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_archive, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
