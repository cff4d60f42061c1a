/* client_home_marks: a peer device's high-water mark (issue 16, H2) against a relay that leaves
 * the device out of one directory answer and hands out another chain for it in the next. Bob's
 * home is real (kurer_create, his chain imported); Anna's certificates are made here for
 * identity keys of our choosing, by the test's authority; the directory answers go through
 * kurer__dir_sync as the engine gives them. One ctest entry per case (client_home_marks_<case>). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "engine.h"
#include "home.h"
#include "kurer/cert.h"
#include "kurer/crypto.h"
#include "kurer/csr.h"
#include "kurer/kurer.h"
#include "kurer/util.h"
#include "session.h"
#include "store.h"

#define DAY  ((int64_t)86400)
#define PASS "bob's passphrase"
#define ANNA "anna@mof"

typedef struct world {
    int64_t now;
    kurer_signing_key root_key, auth_key;
    kurer_cert root, auth;
    uint8_t root_bytes[KURER_CERT_MAX];
    size_t root_len;
    char home[64];
    kurer *bob;
    uint8_t k1[KURER_IDENTITY_KEY_LEN], k2[KURER_IDENTITY_KEY_LEN];
} world;

static int64_t test_clock(void *ud)
{
    return ((world *)ud)->now;
}

static void body_common(kurer_cert_body *b, kurer_role role, const char *subject, uint64_t serial,
                        int64_t not_before)
{
    memset(b, 0, sizeof(*b));
    b->version = 1;
    b->serial = serial;
    b->role = role;
    snprintf(b->subject, sizeof(b->subject), "%s", subject);
    snprintf(b->display_name, sizeof(b->display_name), "%s", subject);
    b->clearance = KURER_LEVEL_CONFIDENTIAL;
    b->not_before = not_before;
    b->not_after = not_before + 60 * DAY;
}

/* A device chain for subject/device 1 binding identity (and a fresh Noise key), by the test's
 * authority. */
static void chain_for(world *w, const char *subject, const uint8_t *identity, uint64_t serial,
                      int64_t not_before, kurer_chain *out)
{
    kurer_cert_body b;
    body_common(&b, KURER_ROLE_DEVICE, subject, serial, not_before);
    b.device_id = 1;
    memcpy(b.identity_key, identity, KURER_IDENTITY_KEY_LEN);
    kurer_random(b.noise_key, sizeof(b.noise_key));
    memset(out, 0, sizeof(*out));
    assert_int_equal(kurer_cert_sign(&b, &w->auth_key, &out->certs[0]), 0);
    out->certs[1] = w->auth;
    out->n = 2;
}

/* Bob's own chain, from the request in his home. */
static void enrol_bob(world *w)
{
    uint8_t *data = NULL, bytes[KURER_CHAIN_BYTES_MAX];
    size_t len = 0;
    kurer_csr csr;
    kurer_cert_body b;
    kurer_chain ch;
    kurer_buf buf;
    assert_int_equal(kurer_file_read(kurer_csr_path(w->bob), 8192, &data, &len), 0);
    assert_int_equal(kurer_csr_decode(data, len, &csr), 0);
    free(data);
    body_common(&b, KURER_ROLE_DEVICE, csr.body.subject, 7, w->now - DAY);
    b.device_id = csr.body.device_id;
    memcpy(b.identity_key, csr.body.identity_key, sizeof(b.identity_key));
    memcpy(b.noise_key, csr.body.noise_key, sizeof(b.noise_key));
    memset(&ch, 0, sizeof(ch));
    assert_int_equal(kurer_cert_sign(&b, &w->auth_key, &ch.certs[0]), 0);
    ch.certs[1] = w->auth;
    ch.n = 2;
    kurer_buf_init_fixed(&buf, bytes, sizeof(bytes));
    assert_int_equal(kurer_chain_encode(&ch, &buf), 0);
    assert_int_equal(kurer_import_chain(w->bob, bytes, buf.len), 0);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof(*w));
    kurer_cert_body b;
    kurer_buf buf;
    kurer_create_options o;
    assert_non_null(w);
    assert_int_equal(kurer_crypto_init(), 0);
    w->now = kurer_time_unix();
    assert_int_equal(kurer_signing_key_generate(&w->root_key), 0);
    body_common(&b, KURER_ROLE_ROOT, "dk", 1, w->now - 10 * DAY);
    memcpy(b.signing_key, w->root_key.pk, 32);
    assert_int_equal(kurer_cert_sign(&b, &w->root_key, &w->root), 0);
    assert_int_equal(kurer_signing_key_generate(&w->auth_key), 0);
    body_common(&b, KURER_ROLE_AUTHORITY, "mof", 2, w->now - 10 * DAY);
    memcpy(b.signing_key, w->auth_key.pk, 32);
    assert_int_equal(kurer_cert_sign(&b, &w->root_key, &w->auth), 0);
    kurer_buf_init_fixed(&buf, w->root_bytes, sizeof(w->root_bytes));
    assert_int_equal(kurer_cert_encode(&w->root, &buf), 0);
    w->root_len = buf.len;
    memset(&o, 0, sizeof(o));
    snprintf(w->home, sizeof(w->home), "/tmp/kurer-marks-XXXXXX");
    assert_non_null(mkdtemp(w->home));
    o.home = w->home;
    o.user = "bob@mof";
    o.device_id = 1;
    o.relay = "127.0.0.1:4433";
    kurer_random(o.relay_key, sizeof(o.relay_key));
    o.root = w->root_bytes;
    o.root_len = w->root_len;
    kurer_kdf_params p = kurer_kdf_minimum();
    o.kdf_ops = p.opslimit;
    o.kdf_mem = p.memlimit;
    o.clock = test_clock;
    o.clock_ud = w;
    assert_int_equal(kurer_create(&o, PASS, strlen(PASS), NULL, &w->bob), 0);
    enrol_bob(w);
    w->k1[0] = w->k2[0] = 0x05; /* libsignal's key type byte, then an X25519 public key */
    kurer_random(w->k1 + 1, KURER_IDENTITY_KEY_LEN - 1);
    kurer_random(w->k2 + 1, KURER_IDENTITY_KEY_LEN - 1);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    const char *names[] = {"store.db",  "store.db-wal",  "store.db-shm",
                           "store.kdf", "store.kdf.new", "device.csr"};
    char p[512];
    kurer_close(w->bob);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", w->home, names[i]);
        unlink(p);
    }
    rmdir(w->home);
    kurer_signing_key_release(&w->root_key);
    kurer_signing_key_release(&w->auth_key);
    free(w);
    return 0;
}

/* One directory answer for Anna (n = 0: she is left out entirely), as the engine syncs it. */
static int answer(world *w, const kurer_chain *chains, size_t n)
{
    kurer__hlock_take(w->bob);
    int rc = kurer__dir_sync(w->bob, ANNA, chains, n);
    kurer__hlock_give(w->bob);
    return rc;
}

static int add(world *w, const kurer_chain *ch)
{
    uint8_t bytes[KURER_CHAIN_BYTES_MAX];
    kurer_buf buf;
    kurer_buf_init_fixed(&buf, bytes, sizeof(bytes));
    assert_int_equal(kurer_chain_encode(ch, &buf), 0);
    return kurer_add_peer(w->bob, bytes, buf.len);
}

static size_t held(world *w)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(kurer__store_peer_devices(kurer__home_store(w->bob), ANNA, &ids, &n), 0);
    free(ids);
    return n;
}

typedef struct changes {
    int n;
    uint64_t serial, old_serial;
} changes;

static int count_changes(void *ud, const kurer_key_change *c)
{
    changes *ch = ud;
    ch->n++;
    ch->serial = c->serial;
    ch->old_serial = c->old_serial;
    return 0;
}

static changes key_changes(world *w)
{
    changes ch;
    memset(&ch, 0, sizeof(ch));
    assert_int_equal(kurer_key_changes(w->bob, ANNA, count_changes, &ch), 0);
    return ch;
}

/* The identity key of the chain Bob holds for Anna's device 1. */
static void held_key(world *w, uint8_t key[KURER_IDENTITY_KEY_LEN])
{
    kurer_verified v;
    assert_int_equal(kurer__session_peer_check(kurer__home_session(w->bob), ANNA, 1, &v), 0);
    memcpy(key, v.identity_key, KURER_IDENTITY_KEY_LEN);
}

/* Answer 1 leaves Anna's device out, answer 2 carries another valid chain for it with a new
 * identity key: a key change, told once (and not again for the same chain). */
static void test_omit_new_key(void **state)
{
    world *w = *state;
    kurer__session *bs = kurer__home_session(w->bob);
    kurer_chain a1, a2;
    uint8_t key[KURER_IDENTITY_KEY_LEN];
    chain_for(w, ANNA, w->k1, 10, w->now - DAY, &a1);
    chain_for(w, ANNA, w->k2, 11, w->now - DAY + 60, &a2);
    assert_int_equal(answer(w, &a1, 1), 0);
    assert_int_equal(held(w), 1);
    assert_int_equal(key_changes(w).n, 0);
    assert_int_equal(answer(w, NULL, 0), 0); /* left out: forgotten, its mark kept */
    assert_int_equal(held(w), 0);
    assert_int_equal(answer(w, &a2, 1), 0);
    assert_int_equal(held(w), 1);
    held_key(w, key);
    assert_memory_equal(key, w->k2, KURER_IDENTITY_KEY_LEN);
    changes ch = key_changes(w);
    assert_int_equal(ch.n, 1);
    assert_int_equal(ch.serial, 11);
    assert_int_equal(ch.old_serial, 10);
    assert_int_equal(kurer__session_take_key_changed(bs), 1);
    /* The same chain again, and again after another omission: the same key, nothing new. */
    assert_int_equal(answer(w, &a2, 1), 0);
    assert_int_equal(answer(w, NULL, 0), 0);
    assert_int_equal(answer(w, &a2, 1), 0);
    assert_int_equal(held(w), 1);
    assert_int_equal(key_changes(w).n, 1);
    assert_int_equal(kurer__session_take_key_changed(bs), 0);
}

/* After a re-enrolment (K1 superseded by K2), a relay still serving the old revocation list
 * leaves the device out once, then offers the superseded K1 chain: a rollback, refused
 * (ESTALE, and from the directory answer: not held), no key change. */
static void test_omit_old_chain(void **state)
{
    world *w = *state;
    kurer__session *bs = kurer__home_session(w->bob);
    kurer_chain a1, a2;
    chain_for(w, ANNA, w->k1, 10, w->now - DAY, &a1);
    chain_for(w, ANNA, w->k2, 11, w->now - DAY + 60, &a2);
    assert_int_equal(answer(w, &a1, 1), 0);
    assert_int_equal(answer(w, &a2, 1), 0);
    assert_int_equal(key_changes(w).n, 1);
    assert_int_equal(kurer__session_take_key_changed(bs), 1);
    assert_int_equal(answer(w, NULL, 0), 0);
    assert_int_equal(held(w), 0);
    assert_int_equal(answer(w, &a1, 1), 0); /* refused inside: not held */
    assert_int_equal(held(w), 0);
    assert_int_equal(add(w, &a1), KURER_ESTALE);
    assert_int_equal(held(w), 0);
    assert_int_equal(key_changes(w).n, 1);
    assert_int_equal(kurer__session_take_key_changed(bs), 0);
    /* The current chain is taken back as it was, without a key change. */
    assert_int_equal(answer(w, &a2, 1), 0);
    assert_int_equal(held(w), 1);
    assert_int_equal(key_changes(w).n, 1);
}

/* The same not_before: the serial decides; the same serial too and another key is refused. */
static void test_tie_serial(void **state)
{
    world *w = *state;
    kurer_chain a1, lower, clash, same, higher;
    uint8_t key[KURER_IDENTITY_KEY_LEN];
    int64_t nb = w->now - DAY;
    chain_for(w, ANNA, w->k1, 10, nb, &a1);
    chain_for(w, ANNA, w->k2, 9, nb, &lower);
    chain_for(w, ANNA, w->k2, 10, nb, &clash);
    chain_for(w, ANNA, w->k1, 10, nb, &same); /* another Noise key, signed again: same mark */
    chain_for(w, ANNA, w->k2, 11, nb, &higher);
    assert_int_equal(add(w, &a1), 0);
    assert_int_equal(add(w, &lower), KURER_ESTALE);
    assert_int_equal(add(w, &clash), KURER_ESTALE);
    assert_int_equal(answer(w, NULL, 0), 0); /* and after an omission all the same */
    assert_int_equal(add(w, &lower), KURER_ESTALE);
    assert_int_equal(add(w, &clash), KURER_ESTALE);
    assert_int_equal(held(w), 0);
    assert_int_equal(key_changes(w).n, 0);
    assert_int_equal(add(w, &same), 0);
    assert_int_equal(key_changes(w).n, 0);
    assert_int_equal(add(w, &higher), 0);
    held_key(w, key);
    assert_memory_equal(key, w->k2, KURER_IDENTITY_KEY_LEN);
    changes ch = key_changes(w);
    assert_int_equal(ch.n, 1);
    assert_int_equal(ch.serial, 11);
    assert_int_equal(ch.old_serial, 10);
    assert_int_equal(add(w, &a1), KURER_ESTALE);
}

/* A home from schema v4 has no mark until a chain arrives: the chain held stands in for it. */
static void test_legacy_held_chain(void **state)
{
    world *w = *state;
    kurer_chain a1, a2;
    kurer__peer_mark m;
    chain_for(w, ANNA, w->k1, 10, w->now - DAY, &a1);
    chain_for(w, ANNA, w->k2, 11, w->now - DAY + 60, &a2);
    assert_int_equal(add(w, &a2), 0);
    kurer__store *st = kurer__home_store(w->bob);
    assert_int_equal(kurer__store_peer_mark_get(st, ANNA, 1, &m), 0);
    assert_int_equal(m.serial, 11);
    assert_int_equal(
        sqlite3_exec(kurer__store_sqlite(st), "DELETE FROM peer_marks;", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(kurer__store_peer_mark_get(st, ANNA, 1, &m), KURER_ENOTFOUND);
    assert_int_equal(add(w, &a1), KURER_ESTALE);
    assert_int_equal(key_changes(w).n, 0);
    assert_int_equal(add(w, &a2), 0); /* the mark is made again */
    assert_int_equal(kurer__store_peer_mark_get(st, ANNA, 1, &m), 0);
    assert_int_equal(m.not_before, w->now - DAY + 60);
    assert_memory_equal(m.identity_key, w->k2, KURER_IDENTITY_KEY_LEN);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_omit_new_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_omit_old_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tie_serial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_held_chain, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
