/* client_hostile: libkurer (in process, its public and internal API) against a relay of our own
 * that lies. The relay is the adversary here, so it is a small responder written in this file:
 * net/'s kurer_conn_accept_from with a real relay key on 127.0.0.1 (port 0), on a thread of its
 * own with its own loop, speaking proto/'s frames. It answers honestly (a directory of the
 * homes below, their prekey bundles, ACCEPTED for every user sent to, EUNSUPPORTED for the
 * revocation fetch) except for the lie each case tells, and records what the client sent.
 *
 * Homes (temp folders, certificates made here with crypto/): anna (the client under test),
 * bob (the recipient), carol (a user anna never chose) and, for one case, bob's second device.
 * Every case asserts what the client must never do for a hostile relay: send an envelope to,
 * hold a device of, or build a session with anyone it did not ask about.
 * One ctest entry per case (client_hostile_<case>); each takes well under a few seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <uv.h>

#include "home.h"
#include "kurer/cert.h"
#include "kurer/crypto.h"
#include "kurer/csr.h"
#include "kurer/frame.h"
#include "kurer/kurer.h"
#include "kurer/log.h"
#include "kurer/net.h"
#include "kurer/noise.h"
#include "kurer/util.h"
#include "session.h"
#include "store.h"

#define DAY      ((int64_t)86400)
#define PASS     "a test passphrase"
#define TEXT     "for bob only"
#define WAIT_MS  5000
#define SENT_MAX 64
#define CONNS    8

/* What the relay lies about. */
typedef enum lie {
    LIE_NONE,
    LIE_STALE_OTHER_USER,    /* send to bob: bob ACCEPTED, carol STALE_DEVICES with her chain */
    LIE_STALE_FOREIGN_CHAIN, /* send to bob: bob STALE_DEVICES listing bob's and carol's chain */
    LIE_DIRECTORY_EXTRA,     /* lookup of bob and anna: carol listed too */
    LIE_DIRECTORY_FOREIGN,   /* lookup: carol's chain listed under bob */
    LIE_BUNDLE_NOT_ASKED,    /* fetch of bob's device 1: bob's device 2's bundle too */
    LIE_SEND_DUPLICATE,      /* send to bob: bob ACCEPTED twice */
    LIE_UNKNOWN_OWN_USER,    /* send to bob: bob ACCEPTED, anna UNKNOWN_USER */
    LIE_PREKEYS_LOW_FLOOD,   /* PrekeysLow pushed again after every prekey upload */
    LIE_DELIVER_MISROUTED,   /* a Deliver addressed to carol pushed to anna at connect */
} lie;

typedef struct home {
    char dir[64];
    kurer *k;
    const char *user;
    uint32_t device;
    kurer_chain chain;
    kurer_prekey_bundle bundle;
} home;

typedef struct world world;

/* The hostile relay. Touched by its own thread only between start and stop; the test reads
 * what it recorded after the join. */
typedef struct hrelay {
    world *w;
    uv_loop_t loop;
    uv_tcp_t server;
    uv_async_t stop;
    pthread_t thread;
    uint8_t sk[32];
    kurer_net_static_key key;
    int port;
    kurer_conn *conns[CONNS];
    int running;
    int lies_left; /* the lie is told this many times, then the relay is honest */
    /* what the client did */
    kurer_device_address sent[SENT_MAX]; /* every envelope's address, every SendRequest */
    size_t n_sent;
    int sends, lookups, fetches, fetches_of_carol, prekey_uploads, acked_misrouted;
    const char *error; /* set by the relay thread when something went wrong on its side */
} hrelay;

struct world {
    int64_t now;
    lie lie;
    kurer_signing_key root_key, auth_key;
    kurer_cert root, auth;
    uint8_t root_bytes[KURER_CERT_MAX];
    size_t root_len;
    hrelay relay;
    home anna, bob, bob2, carol;
    int with_bob2;
    FILE *log;
    char log_path[64];
};

/* ---- PKI and homes ------------------------------------------------------------------------- */

static void body_common(kurer_cert_body *b, kurer_role role, const char *subject, uint64_t serial,
                        int64_t now)
{
    memset(b, 0, sizeof(*b));
    b->version = 1;
    b->serial = serial;
    b->role = role;
    snprintf(b->subject, sizeof(b->subject), "%s", subject);
    snprintf(b->display_name, sizeof(b->display_name), "%s", subject);
    b->clearance = KURER_LEVEL_CONFIDENTIAL;
    b->not_before = now - DAY;
    b->not_after = now + 30 * DAY;
}

static void make_pki(world *w)
{
    kurer_cert_body b;
    kurer_buf buf;
    assert_int_equal(kurer_signing_key_generate(&w->root_key), 0);
    body_common(&b, KURER_ROLE_ROOT, "dk", 1, w->now);
    memcpy(b.signing_key, w->root_key.pk, 32);
    assert_int_equal(kurer_cert_sign(&b, &w->root_key, &w->root), 0);
    assert_int_equal(kurer_signing_key_generate(&w->auth_key), 0);
    body_common(&b, KURER_ROLE_AUTHORITY, "mof", 2, w->now);
    memcpy(b.signing_key, w->auth_key.pk, 32);
    assert_int_equal(kurer_cert_sign(&b, &w->root_key, &w->auth), 0);
    kurer_buf_init_fixed(&buf, w->root_bytes, sizeof(w->root_bytes));
    assert_int_equal(kurer_cert_encode(&w->root, &buf), 0);
    w->root_len = buf.len;
}

/* A home for user/device pointing at the hostile relay, enrolled with a certificate issued here
 * for its request, and the prekey bundle the relay will hand out for it. */
static void make_home(world *w, home *h, const char *user, uint32_t device, uint64_t serial)
{
    kurer_create_options o;
    kurer_buf buf;
    char relay[32];
    uint8_t *data = NULL, chain_bytes[KURER_CHAIN_BYTES_MAX];
    size_t len = 0;
    kurer_csr csr;
    kurer_cert_body b;
    memset(h, 0, sizeof(*h));
    h->user = user;
    h->device = device;
    snprintf(h->dir, sizeof(h->dir), "/tmp/kurer-hostile-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    snprintf(relay, sizeof(relay), "127.0.0.1:%d", w->relay.port);
    memset(&o, 0, sizeof(o));
    o.home = h->dir;
    o.user = user;
    o.device_id = device;
    o.relay = relay;
    memcpy(o.relay_key, w->relay.key.pk, sizeof(o.relay_key));
    o.root = w->root_bytes;
    o.root_len = w->root_len;
    kurer_kdf_params p = kurer_kdf_minimum();
    o.kdf_ops = p.opslimit;
    o.kdf_mem = p.memlimit;
    assert_int_equal(kurer_create(&o, PASS, strlen(PASS), NULL, &h->k), 0);
    assert_int_equal(kurer_file_read(kurer_csr_path(h->k), 8192, &data, &len), 0);
    assert_int_equal(kurer_csr_decode(data, len, &csr), 0);
    free(data);
    assert_int_equal(kurer_csr_verify(&csr), 0);
    body_common(&b, KURER_ROLE_DEVICE, csr.body.subject, serial, w->now);
    b.device_id = csr.body.device_id;
    memcpy(b.identity_key, csr.body.identity_key, sizeof(b.identity_key));
    memcpy(b.noise_key, csr.body.noise_key, sizeof(b.noise_key));
    assert_int_equal(kurer_cert_sign(&b, &w->auth_key, &h->chain.certs[0]), 0);
    h->chain.certs[1] = w->auth;
    h->chain.n = 2;
    kurer_buf_init_fixed(&buf, chain_bytes, sizeof(chain_bytes));
    assert_int_equal(kurer_chain_encode(&h->chain, &buf), 0);
    assert_int_equal(kurer_import_chain(h->k, chain_bytes, buf.len), 0);

    kurer__prekeys *pk = calloc(1, sizeof(*pk));
    assert_non_null(pk);
    assert_int_equal(kurer__session_generate_prekeys(kurer__home_session(h->k), 4, pk), 0);
    snprintf(h->bundle.address.user, sizeof(h->bundle.address.user), "%s", user);
    h->bundle.address.device_id = device;
    h->bundle.registration_id = pk->registration_id;
    h->bundle.signed_prekey = pk->signed_prekey;
    h->bundle.has_one_time = 1;
    h->bundle.one_time = pk->one_time[0];
    h->bundle.chain = h->chain;
    free(pk);
}

static void remove_home(home *h)
{
    const char *names[] = {"store.db",      "store.db-wal", "store.db-shm", "store.kdf",
                           "store.kdf.new", "device.csr",   ".lock"};
    char p[512];
    if (h->k == NULL)
        return;
    kurer_close(h->k);
    h->k = NULL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", h->dir, names[i]);
        unlink(p);
    }
    rmdir(h->dir);
}

/* ---- the hostile relay --------------------------------------------------------------------- */

static void relay_fail(hrelay *r, const char *why)
{
    if (r->error == NULL)
        r->error = why;
}

static void answer(kurer_conn *c, kurer_server_frame *f)
{
    hrelay *r = kurer_conn_data(c);
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    if (kurer_server_frame_encode(f, &b) != 0)
        relay_fail(r, "encode");
    else if (kurer_conn_send(c, b.data, b.len) != 0)
        relay_fail(r, "send");
    kurer_buf_release(&b);
}

static void answer_error(kurer_conn *c, uint64_t id, int code)
{
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = id;
    f.body = KURER_SERVER_ERROR;
    f.u.error.code = code;
    f.u.error.message = kurer_strerror(code);
    answer(c, &f);
}

/* Every device of user the directory lists (bob's second device never is). */
static size_t devices_of(world *w, const char *user, home **out)
{
    home *all[] = {&w->anna, &w->bob, &w->carol};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(all[i]->user, user) == 0)
            out[n++] = all[i];
    return n;
}

static int lie_now(hrelay *r, lie what)
{
    if (r->w->lie != what || r->lies_left <= 0)
        return 0;
    r->lies_left--;
    return 1;
}

static void on_lookup(kurer_conn *c, const kurer_client_frame *f)
{
    hrelay *r = kurer_conn_data(c);
    world *w = r->w;
    kurer_user_devices users[KURER_LOOKUP_USERS_MAX + 1];
    kurer_chain chains[KURER_LOOKUP_USERS_MAX + 1][4];
    size_t n = 0;
    r->lookups++;
    int extra = lie_now(r, LIE_DIRECTORY_EXTRA);
    int foreign = !extra && lie_now(r, LIE_DIRECTORY_FOREIGN);
    for (size_t i = 0; i < f->u.lookup.n && n < KURER_LOOKUP_USERS_MAX; i++) {
        home *d[4];
        size_t nd = devices_of(w, f->u.lookup.users[i], d);
        if (nd == 0)
            continue; /* unknown users are left out */
        for (size_t j = 0; j < nd; j++)
            chains[n][j] = d[j]->chain;
        if (foreign && strcmp(f->u.lookup.users[i], w->bob.user) == 0)
            chains[n][nd++] = w->carol.chain;
        users[n].user = f->u.lookup.users[i];
        users[n].devices = chains[n];
        users[n].n_devices = nd;
        n++;
    }
    if (extra) {
        chains[n][0] = w->carol.chain;
        users[n].user = w->carol.user;
        users[n].devices = chains[n];
        users[n].n_devices = 1;
        n++;
    }
    kurer_server_frame a;
    memset(&a, 0, sizeof(a));
    a.request_id = f->request_id;
    a.body = KURER_SERVER_DIRECTORY;
    a.u.directory.users = users;
    a.u.directory.n = n;
    answer(c, &a);
}

static void on_fetch(kurer_conn *c, const kurer_client_frame *f)
{
    hrelay *r = kurer_conn_data(c);
    world *w = r->w;
    kurer_prekey_bundle bundles[KURER_USER_DEVICES_MAX];
    size_t n = 0;
    home *d[4];
    size_t nd = devices_of(w, f->u.fetch_prekeys.user, d);
    r->fetches++;
    if (strcmp(f->u.fetch_prekeys.user, w->carol.user) == 0)
        r->fetches_of_carol++;
    for (size_t j = 0; j < nd; j++) {
        int asked = f->u.fetch_prekeys.n_device_ids == 0;
        for (size_t i = 0; i < f->u.fetch_prekeys.n_device_ids; i++)
            asked |= f->u.fetch_prekeys.device_ids[i] == d[j]->device;
        if (asked)
            bundles[n++] = d[j]->bundle;
    }
    if (w->with_bob2 && strcmp(f->u.fetch_prekeys.user, w->bob.user) == 0 &&
        lie_now(r, LIE_BUNDLE_NOT_ASKED))
        bundles[n++] = w->bob2.bundle;
    kurer_server_frame a;
    memset(&a, 0, sizeof(a));
    a.request_id = f->request_id;
    a.body = KURER_SERVER_BUNDLES;
    a.u.bundles.bundles = bundles;
    a.u.bundles.n = n;
    answer(c, &a);
}

static void on_send(kurer_conn *c, const kurer_client_frame *f)
{
    hrelay *r = kurer_conn_data(c);
    world *w = r->w;
    kurer_user_result res[8];
    kurer_chain stale[4];
    size_t n = 0;
    r->sends++;
    for (size_t i = 0; i < f->u.send.n; i++) {
        const kurer_device_address *to = &f->u.send.envelopes[i].to;
        if (r->n_sent < SENT_MAX)
            r->sent[r->n_sent++] = *to;
        int seen = 0;
        for (size_t u = 0; u < n; u++)
            seen |= strcmp(res[u].user, to->user) == 0;
        if (!seen && n < 4) {
            memset(&res[n], 0, sizeof(res[n]));
            res[n].user = to->user;
            res[n].status = KURER_SEND_ACCEPTED;
            n++;
        }
    }
    memset(&res[n], 0, 3 * sizeof(res[0]));
    if (lie_now(r, LIE_STALE_OTHER_USER)) {
        /* "Carol's devices are stale", with Carol's real chain. */
        stale[0] = w->carol.chain;
        res[n].user = w->carol.user;
        res[n].status = KURER_SEND_STALE_DEVICES;
        res[n].current.user = w->carol.user;
        res[n].current.devices = stale;
        res[n].current.n_devices = 1;
        n++;
    } else if (lie_now(r, LIE_STALE_FOREIGN_CHAIN)) {
        stale[0] = w->bob.chain;
        stale[1] = w->carol.chain;
        res[0].user = w->bob.user;
        res[0].status = KURER_SEND_STALE_DEVICES;
        res[0].current.user = w->bob.user;
        res[0].current.devices = stale;
        res[0].current.n_devices = 2;
    } else if (lie_now(r, LIE_SEND_DUPLICATE)) {
        res[n].user = w->bob.user;
        res[n].status = KURER_SEND_ACCEPTED;
        n++;
    } else if (lie_now(r, LIE_UNKNOWN_OWN_USER)) {
        res[n].user = w->anna.user;
        res[n].status = KURER_SEND_UNKNOWN_USER;
        n++;
    }
    kurer_server_frame a;
    memset(&a, 0, sizeof(a));
    a.request_id = f->request_id;
    a.body = KURER_SERVER_SEND_RESULT;
    a.u.send_result.users = res;
    a.u.send_result.n = n;
    answer(c, &a);
}

static void relay_record(kurer_conn *c, uint8_t *data, size_t len)
{
    hrelay *r = kurer_conn_data(c);
    kurer_client_frame f;
    kurer_server_frame a;
    if (kurer_client_frame_decode(data, len, &f) != 0) {
        relay_fail(r, "client frame does not decode");
        kurer_conn_close(c, KURER_EMALFORMED);
        return;
    }
    memset(&a, 0, sizeof(a));
    a.request_id = f.request_id;
    switch (f.body) {
    case KURER_CLIENT_SEND:
        on_send(c, &f);
        break;
    case KURER_CLIENT_LOOKUP:
        on_lookup(c, &f);
        break;
    case KURER_CLIENT_FETCH_PREKEYS:
        on_fetch(c, &f);
        break;
    case KURER_CLIENT_PING:
        a.body = KURER_SERVER_PONG;
        a.u.pong.client_time = f.u.ping.client_time;
        a.u.pong.server_time = kurer_time_unix() * 1000;
        answer(c, &a);
        break;
    case KURER_CLIENT_REVOCATIONS:
        /* Whatever the revocation frames become, the client tolerates this. */
        answer_error(c, f.request_id, KURER_EUNSUPPORTED);
        if (lie_now(r, LIE_DELIVER_MISROUTED)) {
            /* an envelope for carol's device, pushed to anna as seq 77 */
            static uint8_t content[64];
            memset(&a, 0, sizeof(a));
            a.body = KURER_SERVER_DELIVER;
            a.u.deliver.seq = 77;
            kurer_random(a.u.deliver.envelope.id, sizeof(a.u.deliver.envelope.id));
            a.u.deliver.envelope.to = r->w->carol.bundle.address;
            a.u.deliver.envelope.has_from = 1;
            a.u.deliver.envelope.from = r->w->bob.bundle.address;
            a.u.deliver.envelope.type = KURER_ENVELOPE_MESSAGE;
            a.u.deliver.envelope.content = content;
            a.u.deliver.envelope.content_len = sizeof(content);
            answer(c, &a);
        }
        break;
    case KURER_CLIENT_PREKEYS:
    case KURER_CLIENT_ACK:
        if (f.body == KURER_CLIENT_ACK)
            for (size_t i = 0; i < f.u.ack.n; i++)
                r->acked_misrouted |= f.u.ack.seqs[i] == 77;
        if (f.body == KURER_CLIENT_PREKEYS)
            r->prekey_uploads++;
        a.body = KURER_SERVER_OK;
        answer(c, &a);
        if (f.body == KURER_CLIENT_PREKEYS && r->w->lie == LIE_PREKEYS_LOW_FLOOD) {
            /* "you are low" again and again: the client refills once per connection */
            memset(&a, 0, sizeof(a));
            a.body = KURER_SERVER_PREKEYS_LOW;
            for (int i = 0; i < 5; i++)
                answer(c, &a);
        }
        break;
    default:
        answer_error(c, f.request_id, KURER_EUNSUPPORTED);
        break;
    }
    kurer_client_frame_release(&f);
}

static void relay_hs(kurer_conn *c, kurer_noise_pattern p, const uint8_t *rs,
                     const uint8_t *payload, size_t n)
{
    hrelay *r = kurer_conn_data(c);
    kurer_handshake_init *hi = calloc(1, sizeof(*hi));
    kurer_handshake_accept a;
    kurer_buf b;
    (void)rs;
    if (hi == NULL || p != KURER_NOISE_IK || kurer_handshake_init_decode(payload, n, hi) != 0) {
        relay_fail(r, "handshake");
        free(hi);
        kurer_conn_close(c, KURER_EMALFORMED);
        return;
    }
    free(hi);
    memset(&a, 0, sizeof(a));
    a.protocol_version = KURER_PROTOCOL_VERSION;
    a.server_time = kurer_time_unix() * 1000;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    if (kurer_handshake_accept_encode(&a, &b) != 0 || kurer_conn_hs_reply(c, 1, b.data, b.len, 0))
        relay_fail(r, "handshake reply");
    kurer_buf_release(&b);
}

static void relay_closed(kurer_conn *c, int err)
{
    hrelay *r = kurer_conn_data(c);
    (void)err;
    for (size_t i = 0; i < CONNS; i++)
        if (r->conns[i] == c)
            r->conns[i] = NULL;
}

static const kurer_conn_cbs RELAY_CBS = {
    .on_hs_request = relay_hs,
    .on_record = relay_record,
    .on_close = relay_closed,
};

static void relay_accept(uv_stream_t *server, int status)
{
    hrelay *r = server->data;
    kurer_net_limits lim = kurer_net_limits_default();
    kurer_conn *c = NULL;
    size_t slot = CONNS;
    for (size_t i = 0; i < CONNS; i++)
        if (r->conns[i] == NULL)
            slot = i;
    if (status != 0 || slot == CONNS ||
        kurer_conn_accept_from(&c, server, &lim, &RELAY_CBS, &r->key, 0, r) != 0) {
        relay_fail(r, "accept");
        return;
    }
    r->conns[slot] = c;
}

static void relay_stop(uv_async_t *a)
{
    hrelay *r = a->data;
    for (size_t i = 0; i < CONNS; i++)
        if (r->conns[i] != NULL)
            kurer_conn_close(r->conns[i], 0);
    uv_close((uv_handle_t *)&r->server, NULL);
    uv_close((uv_handle_t *)&r->stop, NULL);
}

static void *relay_main(void *arg)
{
    hrelay *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Listens on 127.0.0.1, port 0 (the port is known before the homes are made); runs once
 * relay_start is called. */
static void relay_listen(world *w)
{
    hrelay *r = &w->relay;
    struct sockaddr_in sin;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    r->w = w;
    assert_int_equal(kurer_noise_keypair(r->key.pk, r->sk), 0);
    r->key.sk = r->sk;
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(uv_tcp_init(&r->loop, &r->server), 0);
    r->server.data = r;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
    assert_int_equal(uv_tcp_bind(&r->server, (const struct sockaddr *)&sin, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r->server, 16, relay_accept), 0);
    assert_int_equal(uv_tcp_getsockname(&r->server, (struct sockaddr *)&ss, &len), 0);
    r->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    assert_int_equal(uv_async_init(&r->loop, &r->stop, relay_stop), 0);
    r->stop.data = r;
}

static void relay_start(world *w, int lies)
{
    w->relay.lies_left = lies;
    assert_int_equal(pthread_create(&w->relay.thread, NULL, relay_main, &w->relay), 0);
    w->relay.running = 1;
}

static void relay_stop_join(world *w)
{
    hrelay *r = &w->relay;
    r->running = 0;
    assert_int_equal(uv_async_send(&r->stop), 0);
    assert_int_equal(pthread_join(r->thread, NULL), 0);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    kurer_memzero(r->sk, sizeof(r->sk));
}

/* ---- cases --------------------------------------------------------------------------------- */

static int setup_world(void **state, lie what, int with_bob2)
{
    world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    assert_int_equal(kurer_crypto_init(), 0);
    w->now = kurer_time_unix();
    w->lie = what;
    w->with_bob2 = with_bob2;
    snprintf(w->log_path, sizeof(w->log_path), "/tmp/kurer-hostile-log-XXXXXX");
    int fd = mkstemp(w->log_path);
    assert_true(fd >= 0);
    w->log = fdopen(fd, "w+");
    assert_non_null(w->log);
    kurer_log_set(w->log, KURER_LOG_WARN);
    make_pki(w);
    relay_listen(w);
    make_home(w, &w->anna, "anna@mof", 1, 1001);
    make_home(w, &w->bob, "bob@mof", 1, 1002);
    make_home(w, &w->carol, "carol@mof", 1, 1003);
    if (with_bob2)
        make_home(w, &w->bob2, "bob@mof", 2, 1004);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    if (w->relay.running) /* a case that failed half-way */
        relay_stop_join(w);
    kurer_log_set(stderr, KURER_LOG_ERROR);
    remove_home(&w->anna);
    remove_home(&w->bob);
    remove_home(&w->carol);
    remove_home(&w->bob2);
    fclose(w->log);
    unlink(w->log_path);
    kurer_signing_key_release(&w->root_key);
    kurer_signing_key_release(&w->auth_key);
    free(w);
    return 0;
}

#define SETUP(name, what, bob2)                                                                    \
    static int setup_##name(void **state)                                                          \
    {                                                                                              \
        return setup_world(state, what, bob2);                                                     \
    }
SETUP(honest, LIE_NONE, 0)
SETUP(stale_other_user, LIE_STALE_OTHER_USER, 0)
SETUP(stale_foreign_chain, LIE_STALE_FOREIGN_CHAIN, 0)
SETUP(directory_extra_user, LIE_DIRECTORY_EXTRA, 0)
SETUP(directory_foreign_chain, LIE_DIRECTORY_FOREIGN, 0)
SETUP(bundle_not_asked, LIE_BUNDLE_NOT_ASKED, 1)
SETUP(send_duplicate_user, LIE_SEND_DUPLICATE, 0)
SETUP(unknown_own_user, LIE_UNKNOWN_OWN_USER, 0)
SETUP(prekeys_low_flood, LIE_PREKEYS_LOW_FLOOD, 0)
SETUP(deliver_misrouted, LIE_DELIVER_MISROUTED, 0)

/* Envelopes the relay saw for user (device 0: any). */
static size_t sent_to(const world *w, const char *user, uint32_t device)
{
    size_t n = 0;
    for (size_t i = 0; i < w->relay.n_sent; i++)
        if (strcmp(w->relay.sent[i].user, user) == 0 &&
            (device == 0 || w->relay.sent[i].device_id == device))
            n++;
    return n;
}

/* Devices of user that anna holds a certificate for. */
static size_t held(world *w, const char *user)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(kurer__store_peer_devices(kurer__home_store(w->anna.k), user, &ids, &n), 0);
    free(ids);
    return n;
}

static int has_session(world *w, const char *user, uint32_t device)
{
    int rc = kurer__session_exists(kurer__home_session(w->anna.k), user, device);
    assert_true(rc >= 0);
    return rc;
}

typedef struct last_msg {
    int n;
    kurer_message_state state;
} last_msg;

static int on_history(void *ud, const kurer_message *m)
{
    last_msg *l = ud;
    l->n++;
    l->state = m->state;
    return 0;
}

static last_msg history(world *w)
{
    last_msg l = {0, KURER_MESSAGE_RECEIVED};
    assert_int_equal(kurer_history(w->anna.k, NULL, on_history, &l), 0);
    return l;
}

/* The log names the hostile answer and its reason, and never the message text. */
static void assert_logged(world *w, const char *reason)
{
    char buf[16384];
    fflush(w->log);
    rewind(w->log);
    size_t n = fread(buf, 1, sizeof(buf) - 1, w->log);
    buf[n] = '\0';
    fseek(w->log, 0, SEEK_END);
    if (reason == NULL) {
        assert_null(strstr(buf, "hostile_relay_answer"));
    } else {
        assert_non_null(strstr(buf, "\"event\":\"hostile_relay_answer\""));
        char want[96];
        snprintf(want, sizeof(want), "\"reason\":\"%s\"", reason);
        assert_non_null(strstr(buf, want));
    }
    assert_null(strstr(buf, TEXT));
}

static int send_to_bob(world *w)
{
    kurer_refusal why;
    return kurer_send(w->anna.k, w->bob.user, KURER_LEVEL_RESTRICTED, TEXT, WAIT_MS, &why);
}

/* Nothing anywhere for carol: no envelope, no certificate held, no session, no bundle fetched. */
static void assert_carol_untouched(world *w)
{
    assert_int_equal(held(w, w->carol.user), 0);
    assert_int_equal(has_session(w, w->carol.user, 1), 0);
}

static void stop_and_check_relay(world *w)
{
    relay_stop_join(w);
    assert_null(w->relay.error);
    assert_int_equal(sent_to(w, w->carol.user, 0), 0);
    assert_int_equal(w->relay.fetches_of_carol, 0);
}

/* The harness itself: an honest answer is sent, to bob only, and nothing is logged. */
static void test_honest(void **state)
{
    world *w = *state;
    relay_start(w, 0);
    assert_int_equal(send_to_bob(w), 0);
    assert_int_equal(kurer_outbox_size(w->anna.k), 0);
    assert_int_equal(history(w).state, KURER_MESSAGE_SENT);
    assert_int_equal(has_session(w, w->bob.user, 1), 1);
    assert_logged(w, NULL);
    stop_and_check_relay(w);
    assert_int_equal(sent_to(w, w->bob.user, 1), 1);
}

/* Defect 1 of issue 9: a send to bob answered with "carol's devices are stale" (her real
 * chain). The client refuses the answer, encrypts for nobody new, keeps the message queued;
 * the next (honest) flush sends it to bob, and only to bob. */
static void test_stale_other_user(void **state)
{
    world *w = *state;
    relay_start(w, 1);
    int rc = send_to_bob(w);
    assert_carol_untouched(w);
    assert_int_equal(rc, KURER_EMALFORMED);
    assert_int_equal(kurer_outbox_size(w->anna.k), 1);
    last_msg m = history(w);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.state, KURER_MESSAGE_PENDING);
    assert_logged(w, "not_a_recipient");
    assert_int_equal(kurer_flush(w->anna.k, WAIT_MS), 0);
    assert_int_equal(kurer_outbox_size(w->anna.k), 0);
    assert_int_equal(history(w).state, KURER_MESSAGE_SENT);
    assert_carol_untouched(w);
    stop_and_check_relay(w);
    assert_int_equal(w->relay.sends, 2);
    assert_int_equal(sent_to(w, w->bob.user, 1), 2);
}

/* STALE_DEVICES for bob listing carol's chain beside bob's: only bob's chains count; carol's
 * is never stored. The send goes on (to bob) after the refresh. */
static void test_stale_foreign_chain(void **state)
{
    world *w = *state;
    relay_start(w, 1);
    assert_int_equal(send_to_bob(w), 0);
    assert_int_equal(kurer_outbox_size(w->anna.k), 0);
    assert_int_equal(held(w, w->bob.user), 1);
    assert_carol_untouched(w);
    assert_logged(w, "foreign_chain");
    stop_and_check_relay(w);
    assert_int_equal(sent_to(w, w->bob.user, 1), 2);
}

/* A directory answer to a lookup of bob and anna that lists carol too: refused whole. */
static void test_directory_extra_user(void **state)
{
    world *w = *state;
    relay_start(w, 1);
    assert_int_equal(send_to_bob(w), KURER_EMALFORMED);
    assert_int_equal(history(w).n, 0); /* refused before anything was queued */
    assert_int_equal(kurer_outbox_size(w->anna.k), 0);
    assert_int_equal(held(w, w->bob.user), 0);
    assert_carol_untouched(w);
    assert_logged(w, "user_not_asked");
    /* An honest answer afterwards works. */
    assert_int_equal(send_to_bob(w), 0);
    assert_carol_untouched(w);
    stop_and_check_relay(w);
    assert_int_equal(w->relay.sends, 1);
    assert_int_equal(sent_to(w, w->bob.user, 1), 1);
}

/* Carol's chain listed under bob in the directory: ignored, never stored. */
static void test_directory_foreign_chain(void **state)
{
    world *w = *state;
    relay_start(w, 1);
    assert_int_equal(send_to_bob(w), 0);
    assert_int_equal(held(w, w->bob.user), 1);
    assert_carol_untouched(w);
    assert_logged(w, "foreign_chain");
    stop_and_check_relay(w);
    assert_int_equal(sent_to(w, w->bob.user, 1), 1);
}

/* A fetch of bob's device 1 answered with device 2's bundle too (a real, valid one): the whole
 * answer is refused; no session is built, device 2 is not held, nothing is sent. */
static void test_bundle_not_asked(void **state)
{
    world *w = *state;
    relay_start(w, 1);
    assert_int_equal(send_to_bob(w), KURER_EMALFORMED);
    assert_int_equal(has_session(w, w->bob.user, 2), 0);
    assert_int_equal(has_session(w, w->bob.user, 1), 0);
    assert_int_equal(held(w, w->bob.user), 1); /* device 1, from the directory */
    assert_int_equal(history(w).n, 0);
    assert_logged(w, "device_not_asked");
    /* Honest again: device 1 only. */
    assert_int_equal(send_to_bob(w), 0);
    assert_int_equal(has_session(w, w->bob.user, 2), 0);
    stop_and_check_relay(w);
    assert_int_equal(sent_to(w, w->bob.user, 2), 0);
    assert_int_equal(sent_to(w, w->bob.user, 1), 1);
}

/* A SendResult naming bob twice: refused whole, nothing marked done, retried later. */
static void test_send_duplicate_user(void **state)
{
    world *w = *state;
    relay_start(w, 1);
    assert_int_equal(send_to_bob(w), KURER_EMALFORMED);
    assert_int_equal(kurer_outbox_size(w->anna.k), 1);
    assert_int_equal(history(w).state, KURER_MESSAGE_PENDING);
    assert_logged(w, "duplicate_user");
    assert_int_equal(kurer_flush(w->anna.k, WAIT_MS), 0);
    assert_int_equal(kurer_outbox_size(w->anna.k), 0);
    assert_int_equal(history(w).state, KURER_MESSAGE_SENT);
    stop_and_check_relay(w);
    assert_int_equal(sent_to(w, w->bob.user, 1), 2);
}

/* UNKNOWN_USER for our own user (we are connected as it) beside bob's ACCEPTED: refused whole;
 * the message is neither FAILED nor marked sent for bob. */
static void test_unknown_own_user(void **state)
{
    world *w = *state;
    relay_start(w, 1);
    assert_int_equal(send_to_bob(w), KURER_EMALFORMED);
    assert_int_equal(kurer_outbox_size(w->anna.k), 1);
    assert_int_equal(history(w).state, KURER_MESSAGE_PENDING);
    assert_logged(w, "unknown_own_user");
    assert_int_equal(kurer_flush(w->anna.k, WAIT_MS), 0);
    assert_int_equal(history(w).state, KURER_MESSAGE_SENT);
    stop_and_check_relay(w);
}

/* A relay that says "your one-time prekeys are low" after every upload: one refill per
 * connection, not a loop that fills the store. */
static void test_prekeys_low_flood(void **state)
{
    world *w = *state;
    relay_start(w, 0);
    assert_int_equal(send_to_bob(w), 0);
    for (int i = 0; i < 5; i++) {
        int prc = kurer_poll(w->anna.k, 100, 0); /* a timeout is expected: nothing to read */
        (void)prc;
    }
    stop_and_check_relay(w);
    assert_true(w->relay.prekey_uploads <= 2); /* a first upload, if any, and one refill */
}

/* A Deliver addressed to another device is refused (logged as a hostile answer, never stored
 * or shown) and acked, so that it does not come back. */
static void test_deliver_misrouted(void **state)
{
    world *w = *state;
    relay_start(w, 1);
    assert_int_equal(kurer_connect(w->anna.k, WAIT_MS), 0);
    for (int i = 0; i < 20 && !w->relay.acked_misrouted; i++) {
        int prc = kurer_poll(w->anna.k, 100, 0);
        (void)prc;
    }
    assert_logged(w, "addressed to another device");
    assert_int_equal(history(w).n, 0);
    stop_and_check_relay(w);
    assert_int_equal(w->relay.acked_misrouted, 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_honest, setup_honest, teardown),
        cmocka_unit_test_setup_teardown(test_stale_other_user, setup_stale_other_user, teardown),
        cmocka_unit_test_setup_teardown(test_stale_foreign_chain, setup_stale_foreign_chain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_directory_extra_user, setup_directory_extra_user,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_directory_foreign_chain, setup_directory_foreign_chain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bundle_not_asked, setup_bundle_not_asked, teardown),
        cmocka_unit_test_setup_teardown(test_send_duplicate_user, setup_send_duplicate_user,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_own_user, setup_unknown_own_user, teardown),
        cmocka_unit_test_setup_teardown(test_prekeys_low_flood, setup_prekeys_low_flood, teardown),
        cmocka_unit_test_setup_teardown(test_deliver_misrouted, setup_deliver_misrouted, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
