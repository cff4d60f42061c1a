/* client_home: two device homes in one process, with certificates made here (root, authority,
 * devices), talking through the session module: X3DH, a conversation, duplicates, revocation
 * and expiry, identity keys that no certificate binds, classification on both sides.
 * One ctest entry per case (client_home_<case>). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "home.h"
#include "kurer/cert.h"
#include "kurer/content.h"
#include "kurer/crypto.h"
#include "kurer/csr.h"
#include "kurer/kurer.h"
#include "kurer/util.h"
#include "session.h"
#include "store.h"

#define DAY  ((int64_t)86400)
#define PASS "anna's passphrase"

typedef struct dev {
    char home[64];
    kurer *k;
    kurer_chain chain;
    uint8_t chain_bytes[KURER_CHAIN_BYTES_MAX];
    size_t chain_len;
    uint64_t serial;
} dev;

typedef struct world {
    int64_t now;
    kurer_signing_key root_key, auth_key;
    kurer_cert root, auth;
    uint8_t root_bytes[KURER_CERT_MAX];
    size_t root_len;
    dev anna, bob;
} world;

static int64_t test_clock(void *ud)
{
    return ((world *)ud)->now;
}

static void body_common(kurer_cert_body *b, kurer_role role, const char *subject, uint64_t serial,
                        kurer_level level, int64_t now)
{
    memset(b, 0, sizeof(*b));
    b->version = 1;
    b->serial = serial;
    b->role = role;
    snprintf(b->subject, sizeof(b->subject), "%s", subject);
    snprintf(b->display_name, sizeof(b->display_name), "%s", subject);
    b->clearance = level;
    b->not_before = now - DAY;
    b->not_after = now + 30 * DAY;
}

static void make_pki(world *w, kurer_level ceiling, kurer_level auth_level)
{
    kurer_cert_body b;
    kurer_buf buf;
    assert_int_equal(kurer_signing_key_generate(&w->root_key), 0);
    body_common(&b, KURER_ROLE_ROOT, "dk", 1, ceiling, w->now);
    memcpy(b.signing_key, w->root_key.pk, 32);
    assert_int_equal(kurer_cert_sign(&b, &w->root_key, &w->root), 0);
    assert_int_equal(kurer_signing_key_generate(&w->auth_key), 0);
    body_common(&b, KURER_ROLE_AUTHORITY, "mof", 2, auth_level, w->now);
    memcpy(b.signing_key, w->auth_key.pk, 32);
    assert_int_equal(kurer_cert_sign(&b, &w->root_key, &w->auth), 0);
    kurer_buf_init_fixed(&buf, w->root_bytes, sizeof(w->root_bytes));
    assert_int_equal(kurer_cert_encode(&w->root, &buf), 0);
    w->root_len = buf.len;
}

/* Issues a certificate for the request in the home's device.csr, at the given clearance, by
 * the authority key/cert. */
static void issue_by(world *w, dev *d, kurer_level level, uint64_t serial, kurer_chain *out,
                     const kurer_signing_key *key, const kurer_cert *cert)
{
    uint8_t *data = NULL;
    size_t len = 0;
    kurer_csr csr;
    kurer_cert_body b;
    assert_int_equal(kurer_file_read(kurer_csr_path(d->k), 8192, &data, &len), 0);
    assert_int_equal(kurer_csr_decode(data, len, &csr), 0);
    free(data);
    assert_int_equal(kurer_csr_verify(&csr), 0);
    body_common(&b, KURER_ROLE_DEVICE, csr.body.subject, serial, level, w->now);
    b.device_id = csr.body.device_id;
    memcpy(b.identity_key, csr.body.identity_key, sizeof(b.identity_key));
    memcpy(b.noise_key, csr.body.noise_key, sizeof(b.noise_key));
    memset(out, 0, sizeof(*out));
    assert_int_equal(kurer_cert_sign(&b, key, &out->certs[0]), 0);
    out->certs[1] = *cert;
    out->n = 2;
}

static void issue(world *w, dev *d, kurer_level level, uint64_t serial, kurer_chain *out)
{
    issue_by(w, d, level, serial, out, &w->auth_key, &w->auth);
}

static void enrol_by(world *w, dev *d, const char *user, uint32_t device_id, kurer_level level,
                     uint64_t serial, const kurer_signing_key *key, const kurer_cert *cert)
{
    kurer_create_options o;
    kurer_buf buf;
    memset(&o, 0, sizeof(o));
    snprintf(d->home, sizeof(d->home), "/tmp/kurer-home-XXXXXX");
    assert_non_null(mkdtemp(d->home));
    o.home = d->home;
    o.user = user;
    o.device_id = device_id;
    o.relay = "127.0.0.1:4433";
    kurer_random(o.relay_key, sizeof(o.relay_key));
    o.root = w->root_bytes;
    o.root_len = w->root_len;
    kurer_kdf_params p = kurer_kdf_minimum();
    o.kdf_ops = p.opslimit;
    o.kdf_mem = p.memlimit;
    o.clock = test_clock;
    o.clock_ud = w;
    assert_int_equal(kurer_create(&o, PASS, strlen(PASS), NULL, &d->k), 0);
    assert_int_equal(kurer_file_exists(kurer_csr_path(d->k)), 0);
    issue_by(w, d, level, serial, &d->chain, key, cert);
    d->serial = serial;
    kurer_buf_init_fixed(&buf, d->chain_bytes, sizeof(d->chain_bytes));
    assert_int_equal(kurer_chain_encode(&d->chain, &buf), 0);
    d->chain_len = buf.len;
    assert_int_equal(kurer_import_chain(d->k, d->chain_bytes, d->chain_len), 0);
}

static void enrol(world *w, dev *d, const char *user, uint32_t device_id, kurer_level level,
                  uint64_t serial)
{
    enrol_by(w, d, user, device_id, level, serial, &w->auth_key, &w->auth);
}

static void rm_home(const char *home)
{
    const char *names[] = {"store.db",  "store.db-wal",  "store.db-shm",
                           "store.kdf", "store.kdf.new", "device.csr"};
    char p[512];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", home, names[i]);
        unlink(p);
    }
    rmdir(home);
}

static world *world_new(kurer_level ceiling, kurer_level auth, kurer_level anna, kurer_level bob)
{
    world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    assert_int_equal(kurer_crypto_init(), 0);
    w->now = kurer_time_unix();
    make_pki(w, ceiling, auth);
    enrol(w, &w->anna, "anna@mof", 1, anna, 1001);
    enrol(w, &w->bob, "bob@mof", 1, bob, 1002);
    /* What the relay's directory will hand out: each side holds the other's certificate. */
    assert_int_equal(kurer_add_peer(w->anna.k, w->bob.chain_bytes, w->bob.chain_len), 0);
    assert_int_equal(kurer_add_peer(w->bob.k, w->anna.chain_bytes, w->anna.chain_len), 0);
    return w;
}

static int setup(void **state)
{
    *state = world_new(KURER_LEVEL_CONFIDENTIAL, KURER_LEVEL_CONFIDENTIAL, KURER_LEVEL_CONFIDENTIAL,
                       KURER_LEVEL_RESTRICTED);
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    kurer_close(w->anna.k);
    kurer_close(w->bob.k);
    rm_home(w->anna.home);
    rm_home(w->bob.home);
    kurer_signing_key_release(&w->root_key);
    kurer_signing_key_release(&w->auth_key);
    free(w);
    return 0;
}

/* Bob's bundle, as the relay will serve it. */
static void bundle_of(dev *d, kurer_prekey_bundle *b, int with_one_time)
{
    kurer__prekeys *pk = calloc(1, sizeof(*pk));
    assert_non_null(pk);
    assert_int_equal(
        kurer__session_generate_prekeys(kurer__home_session(d->k), KURER__PREKEY_BATCH, pk), 0);
    assert_int_equal(pk->n_one_time, KURER__PREKEY_BATCH);
    memset(b, 0, sizeof(*b));
    snprintf(b->address.user, sizeof(b->address.user), "%s", d->chain.certs[0].body.subject);
    b->address.device_id = d->chain.certs[0].body.device_id;
    b->registration_id = pk->registration_id;
    b->signed_prekey = pk->signed_prekey;
    b->has_one_time = with_one_time;
    b->one_time = pk->one_time[0];
    b->chain = d->chain;
    free(pk);
}

/* One envelope out of a sender's outbox. */
typedef struct env {
    int64_t rowid;
    uint8_t id[KURER_ENVELOPE_ID_LEN];
    uint32_t to_device;
    int type;
    uint8_t ct[KURER__CIPHERTEXT_MAX];
    size_t len;
} env;

typedef struct envs {
    env e[8];
    size_t n;
} envs;

static int grab(void *ud, const kurer__outbox_item *it)
{
    envs *v = ud;
    assert_true(v->n < 8);
    env *e = &v->e[v->n++];
    e->rowid = it->rowid;
    memcpy(e->id, it->envelope_id, sizeof(e->id));
    e->to_device = it->to_device;
    e->type = it->type;
    assert_true(it->content_len <= sizeof(e->ct));
    memcpy(e->ct, it->content, it->content_len);
    e->len = it->content_len;
    return 0;
}

/* Queues a message and takes its envelopes out of the outbox, as the relay would accept them. */
static void send_msg(dev *from, const char *to, int level, const char *text, envs *out)
{
    kurer_refusal why;
    memset(out, 0, sizeof(*out));
    assert_int_equal(kurer__home_queue(from->k, to, level, text, &why, NULL), 0);
    assert_int_equal(why.by, KURER_REFUSED_BY_NONE);
    assert_int_equal(kurer__store_outbox_each_due(kurer__home_store(from->k), INT64_MAX, grab, out),
                     0);
    assert_true(out->n >= 1);
    for (size_t i = 0; i < out->n; i++)
        assert_int_equal(kurer__store_outbox_done(kurer__home_store(from->k), out->e[i].rowid), 0);
}

static int deliver(dev *to, const char *from, const env *e, int *state)
{
    return kurer__home_receive(to->k, e->id, from, 1, (kurer_envelope_type)e->type, e->ct, e->len,
                               state);
}

typedef struct seen {
    int n, quarantined, outgoing, sent;
    char last[256];
    int last_level;
} seen;

static int collect(void *ud, const kurer_message *m)
{
    seen *s = ud;
    s->n++;
    s->quarantined += m->state == KURER_MESSAGE_QUARANTINED;
    s->outgoing += m->outgoing;
    s->sent += m->state == KURER_MESSAGE_SENT;
    snprintf(s->last, sizeof(s->last), "%s", m->body);
    s->last_level = m->level;
    return 0;
}

static seen history(dev *d, const char *with)
{
    seen s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(kurer_history(d->k, with, collect, &s), 0);
    return s;
}

/* X3DH from Bob's bundle, Anna's first (pre-key) message, Bob's reply. */
static void first_contact(world *w)
{
    kurer_prekey_bundle *b = malloc(sizeof(*b));
    envs v;
    int state = -1;
    assert_non_null(b);
    bundle_of(&w->bob, b, 1);
    assert_int_equal(kurer__session_process_bundle(kurer__home_session(w->anna.k), b), 0);
    free(b);
    send_msg(&w->anna, "bob@mof", KURER_LEVEL_RESTRICTED, "Hej Bob", &v);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.e[0].type, KURER_ENVELOPE_PREKEY);
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &state), 0);
    assert_int_equal(state, KURER_MESSAGE_RECEIVED);
    seen s = history(&w->bob, "anna@mof");
    assert_int_equal(s.n, 1);
    assert_string_equal(s.last, "Hej Bob");
    assert_int_equal(s.last_level, KURER_LEVEL_RESTRICTED);

    send_msg(&w->bob, "anna@mof", KURER_LEVEL_UNCLASSIFIED, "Hej Anna", &v);
    assert_int_equal(v.e[0].type, KURER_ENVELOPE_MESSAGE);
    assert_int_equal(deliver(&w->anna, "bob@mof", &v.e[0], &state), 0);
    s = history(&w->anna, "bob@mof");
    assert_int_equal(s.n, 2);
    assert_int_equal(s.outgoing, 1);
    assert_int_equal(s.sent, 1);
    assert_string_equal(s.last, "Hej Anna");
}

static void test_conversation(void **state)
{
    world *w = *state;
    first_contact(w);
    /* Turns in both directions, some several in a row, some delivered out of order. */
    char text[64];
    for (int i = 0; i < 20; i++) {
        envs a, b;
        int st = -1;
        snprintf(text, sizeof(text), "anna %d", i);
        send_msg(&w->anna, "bob@mof", KURER_LEVEL_RESTRICTED, text, &a);
        snprintf(text, sizeof(text), "anna %d bis", i);
        send_msg(&w->anna, "bob@mof", KURER_LEVEL_UNCLASSIFIED, text, &b);
        assert_int_equal(deliver(&w->bob, "anna@mof", &b.e[0], &st), 0);
        assert_int_equal(deliver(&w->bob, "anna@mof", &a.e[0], &st), 0);
        snprintf(text, sizeof(text), "bob %d", i);
        send_msg(&w->bob, "anna@mof", KURER_LEVEL_RESTRICTED, text, &a);
        assert_int_equal(deliver(&w->anna, "bob@mof", &a.e[0], &st), 0);
        assert_int_equal(st, KURER_MESSAGE_RECEIVED);
    }
    seen s = history(&w->bob, NULL);
    assert_int_equal(s.n, 2 + 60);
    assert_int_equal(s.quarantined, 0);

    /* Both sides compute the same safety number from the certified keys. */
    char fa[64], fb[64];
    assert_int_equal(kurer_fingerprint(w->anna.k, "bob@mof", 1, fa), 0);
    assert_int_equal(kurer_fingerprint(w->bob.k, "anna@mof", 1, fb), 0);
    assert_int_equal(strlen(fa), 60);
    assert_string_equal(fa, fb);
    assert_int_equal(kurer_fingerprint(w->anna.k, "carl@mof", 1, fa), KURER_ENOTFOUND);

    /* Everything survives closing and opening again. */
    kurer_close(w->bob.k);
    assert_int_equal(kurer_open(w->bob.home, "wrong", 5, NULL, test_clock, w, &w->bob.k),
                     KURER_EPASSPHRASE);
    assert_int_equal(kurer_open(w->bob.home, PASS, strlen(PASS), NULL, test_clock, w, &w->bob.k),
                     0);
    envs v;
    int st = -1;
    send_msg(&w->anna, "bob@mof", KURER_LEVEL_RESTRICTED, "after restart", &v);
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), 0);
    s = history(&w->bob, "anna@mof");
    assert_string_equal(s.last, "after restart");
}

static void test_duplicates(void **state)
{
    world *w = *state;
    envs v;
    int st = -1;
    first_contact(w);
    send_msg(&w->anna, "bob@mof", KURER_LEVEL_RESTRICTED, "once", &v);
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), 0);
    /* The relay delivers it again (no ack reached it): recognised, no second copy. */
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), KURER_EDUPLICATE);
    /* The same ciphertext under another envelope id: libsignal recognises the counter. */
    env again = v.e[0];
    again.id[0] ^= 0xff;
    assert_int_equal(deliver(&w->bob, "anna@mof", &again, &st), KURER_EDUPLICATE);
    seen s = history(&w->bob, "anna@mof");
    assert_int_equal(s.n, 3); /* Hej Bob, Hej Anna, once */
    /* And the session still works. */
    send_msg(&w->anna, "bob@mof", KURER_LEVEL_RESTRICTED, "twice", &v);
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), 0);

    /* A tampered ciphertext changes nothing, and the real one still decrypts afterwards. */
    send_msg(&w->anna, "bob@mof", KURER_LEVEL_RESTRICTED, "intact", &v);
    env bad = v.e[0];
    bad.ct[bad.len - 1] ^= 1;
    assert_int_equal(deliver(&w->bob, "anna@mof", &bad, &st), KURER_EDECRYPT);
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), 0);
    s = history(&w->bob, "anna@mof");
    assert_string_equal(s.last, "intact");
}

/* A list by key/cert (an authority's, or the root's) revoking serial, encoded into out. */
static void make_list(world *w, const kurer_signing_key *key, const kurer_cert *cert,
                      uint64_t version, int64_t next_update, uint64_t serial, uint8_t *out,
                      size_t cap, size_t *len)
{
    kurer_crl crl;
    kurer_buf buf;
    memset(&crl, 0, sizeof(crl));
    crl.version = version;
    crl.issued_at = w->now;
    crl.next_update = next_update;
    crl.revoked = calloc(1, sizeof(*crl.revoked));
    assert_non_null(crl.revoked);
    crl.revoked[0].serial = serial;
    crl.revoked[0].revoked_at = w->now;
    crl.revoked[0].reason = KURER_REASON_DEVICE_LOST;
    crl.n_revoked = 1;
    assert_int_equal(kurer_crl_sign(&crl, key, cert), 0);
    kurer_buf_init_fixed(&buf, out, cap);
    assert_int_equal(kurer_crl_encode(&crl, &buf), 0);
    *len = buf.len;
    kurer_crl_release(&crl);
}

static void make_crl(world *w, uint64_t version, uint64_t serial, uint8_t *out, size_t cap,
                     size_t *len)
{
    make_list(w, &w->auth_key, &w->auth, version, w->now + 7 * DAY, serial, out, cap, len);
}

typedef struct peer_seen {
    int n, status;
    unsigned crl_stale;
    int64_t since;
} peer_seen;

static int peer_row(void *ud, const kurer_peer_device *d)
{
    peer_seen *p = ud;
    p->n++;
    p->status = d->status;
    p->crl_stale = d->crl_stale;
    p->since = d->crl_stale_since;
    return 0;
}

static peer_seen peer_status(dev *d, const char *user)
{
    peer_seen p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(kurer_peer_devices(d->k, user, peer_row, &p), 0);
    assert_int_equal(p.n, 1);
    return p;
}

static void test_revoked(void **state)
{
    world *w = *state;
    envs v;
    int st = -1;
    uint8_t crl[8192];
    size_t crl_len = 0;
    kurer_refusal why;
    first_contact(w);
    /* Anna writes, then her device is revoked before Bob sees the message. */
    send_msg(&w->anna, "bob@mof", KURER_LEVEL_RESTRICTED, "before revocation", &v);
    make_crl(w, 1, w->anna.serial, crl, sizeof(crl), &crl_len);
    assert_int_equal(kurer_add_revocations(w->bob.k, crl, crl_len), 0);
    assert_int_equal(kurer_add_revocations(w->bob.k, crl, crl_len), KURER_ESTALE);
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), KURER_EREVOKED);
    assert_int_equal(history(&w->bob, "anna@mof").n, 2);
    /* Bob can no longer send to her either, and the check says who. */
    assert_int_equal(kurer_check_send(w->bob.k, "anna@mof", KURER_LEVEL_UNCLASSIFIED, &why),
                     KURER_EREVOKED);
    assert_int_equal(why.by, KURER_REFUSED_BY_RECIPIENT);
    assert_string_equal(why.user, "anna@mof");
    assert_int_equal(why.device_id, 1);
    assert_int_equal(kurer__home_queue(w->bob.k, "anna@mof", 1, "x", &why, NULL), KURER_EREVOKED);
    /* The list is kept: after a restart it still applies. */
    kurer_close(w->bob.k);
    assert_int_equal(kurer_open(w->bob.home, PASS, strlen(PASS), NULL, test_clock, w, &w->bob.k),
                     0);
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), KURER_EREVOKED);
}

/* The root revokes a whole authority (mod): Bob (mof) refuses to send to Carl (mod) and
 * refuses what Carl sends, Anna (mof) is unaffected, and the root's list survives a restart. */
static void test_authority_revoked(void **state)
{
    world *w = *state;
    kurer_signing_key mod_key;
    kurer_cert mod;
    kurer_cert_body b;
    dev carl;
    envs v;
    int st = -1;
    uint8_t crl[8192];
    size_t crl_len = 0;
    kurer_refusal why;

    body_common(&b, KURER_ROLE_AUTHORITY, "mod", 3, KURER_LEVEL_CONFIDENTIAL, w->now);
    assert_int_equal(kurer_signing_key_generate(&mod_key), 0);
    memcpy(b.signing_key, mod_key.pk, 32);
    assert_int_equal(kurer_cert_sign(&b, &w->root_key, &mod), 0);
    memset(&carl, 0, sizeof(carl));
    enrol_by(w, &carl, "carl@mod", 1, KURER_LEVEL_RESTRICTED, 3001, &mod_key, &mod);
    assert_int_equal(kurer_add_peer(w->bob.k, carl.chain_bytes, carl.chain_len), 0);
    assert_int_equal(kurer_add_peer(carl.k, w->bob.chain_bytes, w->bob.chain_len), 0);
    kurer_prekey_bundle *pb = malloc(sizeof(*pb));
    assert_non_null(pb);
    bundle_of(&w->bob, pb, 1);
    assert_int_equal(kurer__session_process_bundle(kurer__home_session(carl.k), pb), 0);
    free(pb);
    send_msg(&carl, "bob@mof", KURER_LEVEL_RESTRICTED, "Hej fra mod", &v);
    assert_int_equal(deliver(&w->bob, "carl@mod", &v.e[0], &st), 0);
    assert_int_equal(kurer_check_send(w->bob.k, "carl@mod", KURER_LEVEL_RESTRICTED, &why), 0);

    /* The root's list naming mod's serial. */
    make_list(w, &w->root_key, &w->root, 1, w->now + 7 * DAY, 3, crl, sizeof(crl), &crl_len);
    assert_int_equal(kurer_add_revocations(w->bob.k, crl, crl_len), 0);
    send_msg(&carl, "bob@mof", KURER_LEVEL_RESTRICTED, "after the revocation", &v);
    assert_int_equal(deliver(&w->bob, "carl@mod", &v.e[0], &st), KURER_EREVOKED);
    assert_int_equal(history(&w->bob, "carl@mod").n, 1);
    assert_int_equal(kurer_check_send(w->bob.k, "carl@mod", KURER_LEVEL_UNCLASSIFIED, &why),
                     KURER_EREVOKED);
    assert_int_equal(why.by, KURER_REFUSED_BY_RECIPIENT);
    assert_string_equal(why.user, "carl@mod");
    assert_int_equal(kurer__home_queue(w->bob.k, "carl@mod", 1, "x", &why, NULL), KURER_EREVOKED);
    assert_int_equal(peer_status(&w->bob, "carl@mod").status, KURER_EREVOKED);
    /* mof and its users are not touched by it. */
    assert_int_equal(kurer_check_send(w->bob.k, "anna@mof", KURER_LEVEL_RESTRICTED, &why), 0);
    assert_int_equal(peer_status(&w->bob, "anna@mof").status, 0);
    /* Loaded again at open, from the store. */
    kurer_close(w->bob.k);
    assert_int_equal(kurer_open(w->bob.home, PASS, strlen(PASS), NULL, test_clock, w, &w->bob.k),
                     0);
    assert_int_equal(kurer_add_revocations(w->bob.k, crl, crl_len), KURER_ESTALE);
    assert_int_equal(deliver(&w->bob, "carl@mod", &v.e[0], &st), KURER_EREVOKED);
    assert_int_equal(kurer_check_send(w->bob.k, "carl@mod", KURER_LEVEL_UNCLASSIFIED, &why),
                     KURER_EREVOKED);

    kurer_close(carl.k);
    rm_home(carl.home);
    kurer_signing_key_release(&mod_key);
}

/* A list past its next_update: a warning for 7 days, then the authority's devices (here Bob's
 * own too) are refused until a newer list comes. */
static void test_crl_stale(void **state)
{
    world *w = *state;
    envs v;
    int st = -1;
    uint8_t crl[8192];
    size_t crl_len = 0;
    kurer_refusal why;
    const int64_t next = w->now + DAY;
    first_contact(w);
    make_list(w, &w->auth_key, &w->auth, 1, next, 999, crl, sizeof(crl), &crl_len);
    assert_int_equal(kurer_add_revocations(w->bob.k, crl, crl_len), 0);
    peer_seen p = peer_status(&w->bob, "anna@mof");
    assert_int_equal(p.status, 0);
    assert_int_equal(p.crl_stale, 0);

    w->now += 2 * DAY; /* past next_update, inside the grace */
    p = peer_status(&w->bob, "anna@mof");
    assert_int_equal(p.status, 0);
    assert_int_equal(p.crl_stale, KURER_PEER_STALE_AUTHORITY_LIST);
    assert_int_equal(p.since, next);
    send_msg(&w->anna, "bob@mof", KURER_LEVEL_RESTRICTED, "still within the grace", &v);
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), 0);

    w->now += 7 * DAY; /* past next_update + 7 days */
    send_msg(&w->anna, "bob@mof", KURER_LEVEL_RESTRICTED, "too late", &v);
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), KURER_ECRLSTALE);
    assert_int_equal(kurer_check_send(w->bob.k, "anna@mof", 1, &why), KURER_ECRLSTALE);
    p = peer_status(&w->bob, "anna@mof");
    assert_int_equal(p.status, KURER_ECRLSTALE);
    assert_int_equal(p.since, next);

    /* A newer list: the same envelope (never decrypted) goes through. */
    make_list(w, &w->auth_key, &w->auth, 2, w->now + 30 * DAY, 999, crl, sizeof(crl), &crl_len);
    assert_int_equal(kurer_add_revocations(w->bob.k, crl, crl_len), 0);
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), 0);
    assert_string_equal(history(&w->bob, "anna@mof").last, "too late");
    assert_int_equal(kurer_check_send(w->bob.k, "anna@mof", 1, &why), 0);
    w->now -= 9 * DAY;
}

static void test_expired(void **state)
{
    world *w = *state;
    envs v;
    int st = -1;
    kurer_refusal why;
    first_contact(w);
    send_msg(&w->anna, "bob@mof", KURER_LEVEL_RESTRICTED, "late", &v);
    w->now += 31 * DAY; /* every certificate has expired */
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), KURER_EEXPIRED);
    assert_int_equal(kurer_check_send(w->bob.k, "anna@mof", 1, &why), KURER_EEXPIRED);
    assert_int_equal(why.by, KURER_REFUSED_BY_SENDER); /* Bob's own certificate first */
    w->now -= 31 * DAY;
    assert_int_equal(deliver(&w->bob, "anna@mof", &v.e[0], &st), 0);
}

/* No trust on first use: a bundle whose chain binds another identity key, a peer without a
 * certificate, and an import of a chain with someone else's keys are all refused. */
static void test_untrusted(void **state)
{
    world *w = *state;
    kurer_prekey_bundle *b = malloc(sizeof(*b));
    envs v;
    int st = -1;
    assert_non_null(b);
    bundle_of(&w->bob, b, 1);
    /* A certificate for bob@mof/1 with a key that is not Bob's: the signed prekey's signature
     * does not verify under it. */
    kurer_cert_body body = b->chain.certs[0].body;
    body.identity_key[5] ^= 0x40;
    assert_int_equal(kurer_cert_sign(&body, &w->auth_key, &b->chain.certs[0]), 0);
    assert_int_not_equal(kurer__session_process_bundle(kurer__home_session(w->anna.k), b), 0);
    assert_int_equal(kurer__session_exists(kurer__home_session(w->anna.k), "bob@mof", 1), 0);
    /* A chain from another root. */
    bundle_of(&w->bob, b, 0);
    kurer_signing_key other;
    assert_int_equal(kurer_signing_key_generate(&other), 0);
    body = b->chain.certs[0].body;
    assert_int_equal(kurer_cert_sign(&body, &other, &b->chain.certs[0]), 0);
    assert_int_not_equal(kurer__session_process_bundle(kurer__home_session(w->anna.k), b), 0);
    kurer_signing_key_release(&other);
    free(b);

    /* Carl has no certificate at Bob's: his pre-key message is refused before decryption. */
    first_contact(w);
    send_msg(&w->anna, "bob@mof", 1, "from someone else", &v);
    assert_int_equal(kurer__home_receive(w->bob.k, v.e[0].id, "carl@mof", 1,
                                         (kurer_envelope_type)v.e[0].type, v.e[0].ct, v.e[0].len,
                                         &st),
                     KURER_ENOTFOUND);

    /* Importing Bob's chain into Anna's home: not her keys. */
    assert_int_equal(kurer_import_chain(w->anna.k, w->bob.chain_bytes, w->bob.chain_len),
                     KURER_ESUBJECT);
    kurer_chain ch;
    issue(w, &w->anna, KURER_LEVEL_RESTRICTED, 77, &ch);
    body = ch.certs[0].body; /* kurer_cert_sign's body must not alias its output */
    body.noise_key[0] ^= 1;
    assert_int_equal(kurer_cert_sign(&body, &w->auth_key, &ch.certs[0]), 0);
    uint8_t bytes[KURER_CHAIN_BYTES_MAX];
    kurer_buf buf;
    kurer_buf_init_fixed(&buf, bytes, sizeof(bytes));
    assert_int_equal(kurer_chain_encode(&ch, &buf), 0);
    assert_int_equal(kurer_import_chain(w->anna.k, bytes, buf.len), KURER_EKEYMISMATCH);
}

/* A relay cannot roll a peer back to a certificate issued before the one held. */
static void test_rollback(void **state)
{
    world *w = *state;
    kurer_chain ch;
    kurer_cert_body body;
    uint8_t bytes[KURER_CHAIN_BYTES_MAX];
    kurer_buf buf;
    first_contact(w); /* Bob holds Anna's certificate, not_before = now - 1 day */
    /* An older certificate for the same device (same keys, the authority's signature). */
    issue(w, &w->anna, KURER_LEVEL_CONFIDENTIAL, 500, &ch);
    body = ch.certs[0].body;
    body.not_before -= 2 * DAY;
    assert_int_equal(kurer_cert_sign(&body, &w->auth_key, &ch.certs[0]), 0);
    kurer_buf_init_fixed(&buf, bytes, sizeof(bytes));
    assert_int_equal(kurer_chain_encode(&ch, &buf), 0);
    assert_int_equal(kurer_add_peer(w->bob.k, bytes, buf.len), KURER_ESTALE);
    /* A newer one replaces it. */
    body.not_before += 3 * DAY - 60;
    body.serial = 501;
    assert_int_equal(kurer_cert_sign(&body, &w->auth_key, &ch.certs[0]), 0);
    kurer_buf_init_fixed(&buf, bytes, sizeof(bytes));
    assert_int_equal(kurer_chain_encode(&ch, &buf), 0);
    w->now += DAY; /* so that the new certificate is already valid */
    assert_int_equal(kurer_add_peer(w->bob.k, bytes, buf.len), 0);
    w->now -= DAY;
}

typedef struct changes {
    int n;
    kurer_key_change last;
    char issuer[32];
} changes;

static int count_changes(void *ud, const kurer_key_change *c)
{
    changes *ch = ud;
    ch->n++;
    ch->last = *c;
    snprintf(ch->issuer, sizeof(ch->issuer), "%s", c->issuer);
    ch->last.issuer = ch->issuer;
    ch->last.user = ch->last.old_issuer = ch->last.key_fingerprint = "";
    ch->last.old_key_fingerprint = "";
    return 0;
}

static int key_changes_of(dev *d, const char *user, changes *out)
{
    memset(out, 0, sizeof(*out));
    assert_int_equal(kurer_key_changes(d->k, user, count_changes, out), 0);
    return out->n;
}

/* Anna's device 1 is re-enrolled (a new home, new keys, a later certificate): Bob records one
 * key change with both serials, deletes the old session, marks his queued item for her old key
 * stale; a renewal of the same key is none; her old chain offered again is a rollback. */
static void test_key_change(void **state)
{
    world *w = *state;
    kurer__session *bs = kurer__home_session(w->bob.k);
    kurer__store *bst = kurer__home_store(w->bob.k);
    changes ch;
    dev anna2;
    char users[2][KURER_SUBJECT_MAX + 1];
    size_t n = 0;
    int64_t rowid = 0;
    first_contact(w); /* Bob holds Anna's certificate and a session with her */
    assert_int_equal(kurer__session_exists(bs, "anna@mof", 1), 1);
    assert_int_equal(key_changes_of(&w->bob, NULL, &ch), 0);
    assert_int_equal(
        kurer__home_queue(w->bob.k, "anna@mof", KURER_LEVEL_RESTRICTED, "venter", NULL, &rowid), 0);
    assert_int_equal(kurer__store_outbox_count(bst), 1);
    memset(&anna2, 0, sizeof(anna2));
    w->now += 60;
    enrol_by(w, &anna2, "anna@mof", 1, KURER_LEVEL_CONFIDENTIAL, 900, &w->auth_key, &w->auth);
    assert_int_equal(kurer_add_peer(w->bob.k, anna2.chain_bytes, anna2.chain_len), 0);
    assert_int_equal(key_changes_of(&w->bob, "anna@mof", &ch), 1);
    assert_int_equal(ch.last.device_id, 1);
    assert_int_equal(ch.last.serial, 900);
    assert_int_equal(ch.last.old_serial, w->anna.serial);
    assert_string_equal(ch.issuer, "mof");
    assert_int_equal(key_changes_of(&w->bob, "carl@mof", &ch), 0);
    assert_int_equal(kurer__session_exists(bs, "anna@mof", 1), 0); /* the old session is gone */
    assert_int_equal(kurer__session_take_key_changed(bs), 1);
    assert_int_equal(kurer__session_take_key_changed(bs), 0);
    /* The item encrypted for the old key goes at the next send. */
    assert_int_equal(kurer__store_key_change_stale_items(bst, rowid, users, 2, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(users[0], "anna@mof");
    assert_int_equal(kurer__store_outbox_count(bst), 0);
    assert_int_equal(kurer__store_key_change_stale_items(bst, rowid, users, 2, &n), 0);
    assert_int_equal(n, 0);
    /* Unreported until told, once. */
    key_changes_of(&w->bob, NULL, &ch);
    assert_int_equal(kurer__store_key_change_unreported(bst, ch.last.id), 1);
    assert_int_equal(kurer__store_key_change_reported(bst, ch.last.id), 0);
    assert_int_equal(kurer__store_key_change_unreported(bst, ch.last.id), 0);
    /* A renewal of the same key (a later certificate): no key change. */
    kurer_chain renewed;
    uint8_t bytes[KURER_CHAIN_BYTES_MAX];
    kurer_buf buf;
    w->now += 60;
    issue(w, &anna2, KURER_LEVEL_CONFIDENTIAL, 901, &renewed);
    kurer_buf_init_fixed(&buf, bytes, sizeof(bytes));
    assert_int_equal(kurer_chain_encode(&renewed, &buf), 0);
    assert_int_equal(kurer_add_peer(w->bob.k, bytes, buf.len), 0);
    assert_int_equal(key_changes_of(&w->bob, NULL, &ch), 1);
    assert_int_equal(kurer__session_take_key_changed(bs), 0);
    /* Her old chain again (a relay replaying it): a rollback, refused; no key change. */
    assert_int_equal(kurer_add_peer(w->bob.k, w->anna.chain_bytes, w->anna.chain_len),
                     KURER_ESTALE);
    assert_int_equal(key_changes_of(&w->bob, NULL, &ch), 1);
    kurer_close(anna2.k);
    rm_home(anna2.home);
}

/* Anna CONFIDENTIAL, Bob RESTRICTED. */
static void test_classification_send(void **state)
{
    world *w = *state;
    kurer_refusal why;
    first_contact(w);
    assert_int_equal(kurer_check_send(w->anna.k, "bob@mof", KURER_LEVEL_RESTRICTED, &why), 0);
    assert_int_equal(kurer_check_send(w->anna.k, "bob@mof", KURER_LEVEL_CONFIDENTIAL, &why),
                     KURER_ECLEARANCE);
    assert_int_equal(why.by, KURER_REFUSED_BY_RECIPIENT);
    assert_string_equal(why.user, "bob@mof");
    assert_int_equal(why.device_id, 1);
    assert_int_equal(why.limit, KURER_LEVEL_RESTRICTED);
    assert_int_equal(
        kurer__home_queue(w->anna.k, "bob@mof", KURER_LEVEL_CONFIDENTIAL, "nej", &why, NULL),
        KURER_ECLEARANCE);
    assert_int_equal(kurer__store_outbox_count(kurer__home_store(w->anna.k)), 0);
    /* Bob's own clearance stops him. */
    assert_int_equal(kurer_check_send(w->bob.k, "anna@mof", KURER_LEVEL_CONFIDENTIAL, &why),
                     KURER_ECLEARANCE);
    assert_int_equal(why.by, KURER_REFUSED_BY_SENDER);
    assert_string_equal(why.user, "bob@mof");
    /* SECRET does not exist here; nor does level 0. */
    assert_int_equal(kurer_check_send(w->anna.k, "bob@mof", 4, &why), KURER_ECLEARANCE);
    assert_int_equal(kurer_check_send(w->anna.k, "bob@mof", 0, &why), KURER_EINVAL);
    /* Nobody known under that name. */
    assert_int_equal(kurer_check_send(w->anna.k, "carl@mof", 1, &why), KURER_ENOTFOUND);
    assert_int_equal(why.by, KURER_REFUSED_BY_RECIPIENT);
}

/* Group context outside a sender-key envelope or a timer above the longest (KURER_TIMER_MAX):
 * this client cannot honour them, so such a message is quarantined (kept as "it came", never
 * shown as a plain direct message) and owes no receipt. A timer within bounds is honoured
 * (client_store_receipts, client_receipts_expiry). Attachments it can: that message is
 * received, its pointer stored with it, and it owes its delivered receipt. */
static int count_att(void *ud, const kurer_attachment_info *a)
{
    assert_string_equal(a->file_name, "x.txt");
    assert_int_equal(a->size, 10);
    assert_string_equal(a->saved_path, "");
    (*(size_t *)ud)++;
    return 0;
}

static void test_unsupported_content(void **state)
{
    world *w = *state;
    first_contact(w);
    for (int variant = 0; variant < 3; variant++) {
        kurer_content c;
        kurer_buf pt, ct;
        kurer_envelope_type type;
        kurer_attachment att;
        memset(&c, 0, sizeof(c));
        memset(&att, 0, sizeof(att));
        c.body = KURER_CONTENT_DATA;
        c.u.data.body = "not for this client";
        c.u.data.classification = KURER_LEVEL_RESTRICTED;
        c.u.data.timestamp = (uint64_t)w->now * 1000;
        if (variant == 0) {
            c.u.data.has_group = 1;
            memset(c.u.data.group.group_id, 7, sizeof(c.u.data.group.group_id));
        } else if (variant == 1) {
            c.u.data.expire_timer = KURER_TIMER_MAX + 1;
        } else {
            memset(&att, 1, sizeof(att));
            att.size = 10;
            att.content_type = "text/plain";
            att.file_name = "x.txt";
            c.u.data.attachments = &att;
            c.u.data.n_attachments = 1;
        }
        kurer_buf_init(&pt, KURER_CONTENT_PADDED_MAX);
        kurer_buf_init(&ct, KURER__CIPHERTEXT_MAX);
        assert_int_equal(kurer_content_encode_padded(&c, &pt), 0);
        assert_int_equal(kurer__session_encrypt(kurer__home_session(w->anna.k), "bob@mof", 1,
                                                pt.data, pt.len, &ct, &type),
                         0);
        uint8_t id[KURER_ENVELOPE_ID_LEN];
        kurer_random(id, sizeof(id));
        int st = -1;
        assert_int_equal(
            kurer__home_receive(w->bob.k, id, "anna@mof", 1, type, ct.data, ct.len, &st), 0);
        seen s = history(&w->bob, "anna@mof");
        /* first_contact's; the received one (variant 2) was sent at the same time, so its
         * receipt is that one */
        kurer__receipt_out owed[4];
        size_t n_owed = 9;
        assert_int_equal(kurer__store_receipts_owed(kurer__home_store(w->bob.k), owed, 4, &n_owed),
                         0);
        if (variant < 2) {
            assert_int_equal(st, KURER_MESSAGE_QUARANTINED);
            assert_string_equal(s.last, "");
            assert_int_equal(n_owed, 1);
        } else {
            assert_int_equal(st, KURER_MESSAGE_RECEIVED);
            assert_string_equal(s.last, "not for this client");
            assert_int_equal(n_owed, 1);
            size_t n = 0;
            assert_int_equal(kurer_message_attachments(w->bob.k, id, count_att, &n), 0);
            assert_int_equal(n, 1);
        }
        kurer_buf_release(&pt);
        kurer_buf_release(&ct);
    }
}

/* A CONFIDENTIAL message that reaches Bob (cleared RESTRICTED) anyway, from a sender that
 * skipped the send-side policy: quarantined, not shown, and the ratchet still moves on. */
static void test_classification_receive(void **state)
{
    world *w = *state;
    first_contact(w);
    kurer_content c;
    kurer_buf pt, ct;
    kurer_envelope_type type;
    memset(&c, 0, sizeof(c));
    c.body = KURER_CONTENT_DATA;
    c.u.data.body = "FORTROLIGT indhold";
    c.u.data.classification = KURER_LEVEL_CONFIDENTIAL;
    c.u.data.timestamp = (uint64_t)w->now * 1000;
    kurer_buf_init(&pt, KURER_CONTENT_PADDED_MAX);
    kurer_buf_init(&ct, KURER__CIPHERTEXT_MAX);
    assert_int_equal(kurer_content_encode_padded(&c, &pt), 0);
    assert_int_equal(kurer__session_encrypt(kurer__home_session(w->anna.k), "bob@mof", 1, pt.data,
                                            pt.len, &ct, &type),
                     0);
    uint8_t id[KURER_ENVELOPE_ID_LEN];
    kurer_random(id, sizeof(id));
    int st = -1;
    assert_int_equal(kurer__home_receive(w->bob.k, id, "anna@mof", 1, type, ct.data, ct.len, &st),
                     0);
    assert_int_equal(st, KURER_MESSAGE_QUARANTINED);
    seen s = history(&w->bob, "anna@mof");
    assert_int_equal(s.quarantined, 1);
    assert_string_equal(s.last, ""); /* never shown */
    assert_int_equal(s.last_level, KURER_LEVEL_CONFIDENTIAL);
    /* Redelivery is a duplicate, not a second quarantined copy. */
    assert_int_equal(kurer__home_receive(w->bob.k, id, "anna@mof", 1, type, ct.data, ct.len, &st),
                     KURER_EDUPLICATE);
    kurer_refusal why;
    assert_int_equal(kurer_check_receive(w->bob.k, "anna@mof", 1, 3, &why), KURER_ECLEARANCE);
    assert_int_equal(why.by, KURER_REFUSED_BY_RECIPIENT);
    /* Above the sender's certificate: Bob (RESTRICTED) claims CONFIDENTIAL to Anna. */
    assert_int_equal(kurer_check_receive(w->anna.k, "bob@mof", 1, 3, &why), KURER_ECLEARANCE);
    assert_int_equal(why.by, KURER_REFUSED_BY_SENDER);
    assert_string_equal(why.user, "bob@mof");
    kurer_buf_release(&pt);
    kurer_buf_release(&ct);
}

/* The root's ceiling: a system accredited only to RESTRICTED refuses CONFIDENTIAL even between
 * devices whose own certificates would carry it (they cannot: issuance caps them). */
static void test_classification_ceiling(void **state)
{
    (void)state;
    world *w = world_new(KURER_LEVEL_RESTRICTED, KURER_LEVEL_RESTRICTED, KURER_LEVEL_RESTRICTED,
                         KURER_LEVEL_RESTRICTED);
    kurer_refusal why;
    assert_int_equal(kurer_check_send(w->anna.k, "bob@mof", KURER_LEVEL_CONFIDENTIAL, &why),
                     KURER_ECLEARANCE);
    assert_int_equal(why.by, KURER_REFUSED_BY_CEILING);
    assert_int_equal(why.limit, KURER_LEVEL_RESTRICTED);
    assert_int_equal(kurer_check_send(w->anna.k, "bob@mof", KURER_LEVEL_RESTRICTED, &why), 0);
    void *s = w;
    teardown(&s);
}

static void test_passwd(void **state)
{
    world *w = *state;
    const char *np = "new passphrase";
    assert_int_equal(kurer_passwd(w->anna.k, np, strlen(np), NULL), 0);
    kurer_close(w->anna.k);
    assert_int_equal(kurer_open(w->anna.home, PASS, strlen(PASS), NULL, test_clock, w, &w->anna.k),
                     KURER_EPASSPHRASE);
    assert_null(w->anna.k);
    assert_int_equal(kurer_open(w->anna.home, np, strlen(np), NULL, test_clock, w, &w->anna.k), 0);
    /* Still enrolled, still able to talk. */
    assert_int_equal(kurer_check_send(w->anna.k, "bob@mof", 1, NULL), 0);
    /* A second home in the same folder is refused. */
    kurer_create_options o;
    kurer *k2 = NULL;
    memset(&o, 0, sizeof(o));
    o.home = w->anna.home;
    o.user = "anna@mof";
    o.device_id = 2;
    o.relay = "x:1";
    o.root = w->root_bytes;
    o.root_len = w->root_len;
    assert_int_equal(kurer_create(&o, PASS, strlen(PASS), NULL, &k2), KURER_EEXIST);
    assert_null(k2);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conversation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authority_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_classification_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_classification_receive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_content, setup, teardown),
        cmocka_unit_test(test_classification_ceiling),
        cmocka_unit_test_setup_teardown(test_passwd, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
