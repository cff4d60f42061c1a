/* The asynchronous client API against a real relay: two homes in one process, driven only
 * through kurer_*_async from a thread of the test's own, 1,000 messages each way with many
 * requests in flight; and the home lock (a second open is refused, naming the holder). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kurer/kurer.h"
#include "kurer/mobile.h"
#include "relay_harness.h"

#define PASS      "async test passphrase"
#define MESSAGES  1000
#define IN_FLIGHT 64
#define WAIT_MS   120000

typedef struct home {
    char dir[300];
    char user[32];
    kurer *k;
    pthread_t library; /* the thread callbacks came on (all must be the same) */
    int library_seen, wrong_thread;
    unsigned char got[MESSAGES]; /* per message number from the peer: times given */
    int received, duplicates, bad;
    int sent_ok, sent_failed, first_error;
    int in_flight, max_in_flight;
    int online;
    int onlines; /* times it came online */
} home;

typedef struct ctx {
    world *w;
    home a, b;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t driver;
} ctx;

static ctx *g_ctx;

static void note_thread(home *h)
{
    pthread_t self = pthread_self();
    if (!h->library_seen) {
        h->library = self;
        h->library_seen = 1;
    } else if (!pthread_equal(h->library, self)) {
        h->wrong_thread = 1;
    }
    if (pthread_equal(self, g_ctx->driver))
        h->wrong_thread = 1;
}

static void on_message(void *ud, const kurer_message *m)
{
    home *h = ud;
    int n = -1;
    pthread_mutex_lock(&g_ctx->mu);
    note_thread(h);
    if (!m->outgoing && sscanf(m->body, "msg %d", &n) == 1 && n >= 0 && n < MESSAGES) {
        if (h->got[n]++ > 0)
            h->duplicates++;
        else
            h->received++;
    } else if (!m->outgoing) {
        h->bad++;
    }
    pthread_cond_broadcast(&g_ctx->cond);
    pthread_mutex_unlock(&g_ctx->mu);
}

static void on_state(void *ud, kurer_conn_state s, int reason)
{
    home *h = ud;
    if (getenv("KURER_TEST_VERBOSE") != NULL)
        fprintf(stderr, "%s: state %d (%s)\n", h->user, (int)s, kurer_err_name(reason));
    pthread_mutex_lock(&g_ctx->mu);
    note_thread(h);
    h->online = s == KURER_CONN_ONLINE;
    h->onlines += s == KURER_CONN_ONLINE;
    pthread_cond_broadcast(&g_ctx->cond);
    pthread_mutex_unlock(&g_ctx->mu);
}

static void sent(void *ud, const kurer_result *r)
{
    home *h = ud;
    pthread_mutex_lock(&g_ctx->mu);
    note_thread(h);
    h->in_flight--;
    if (r->err == 0) {
        h->sent_ok++;
    } else {
        h->sent_failed++;
        if (h->first_error == 0)
            h->first_error = r->err;
    }
    pthread_cond_broadcast(&g_ctx->cond);
    pthread_mutex_unlock(&g_ctx->mu);
}

/* A home for user, enrolled here with a certificate from the world's authority. */
/* A home for user, enrolled here with a certificate from the world's authority; with key, a
 * raw store key (as a phone's keystore hands it over) instead of the passphrase. */
static void make_home_key(world *w, home *h, const char *user, uint64_t serial, const uint8_t *key);

static void make_home(world *w, home *h, const char *user, uint64_t serial)
{
    make_home_key(w, h, user, serial, NULL);
}

static void make_home_key(world *w, home *h, const char *user, uint64_t serial, const uint8_t *key)
{
    kurer_create_options o;
    char relay[64];
    uint8_t *data = NULL;
    size_t len = 0;
    kurer_csr csr;
    kurer_cert_body b;
    kurer_chain chain;
    kurer_buf buf;
    snprintf(h->user, sizeof(h->user), "%s", user);
    snprintf(h->dir, sizeof(h->dir), "%s/home-%s", w->dir, user);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&w->addr;
    snprintf(relay, sizeof(relay), "127.0.0.1:%u", (unsigned)ntohs(sin->sin_port));
    memset(&o, 0, sizeof(o));
    o.home = h->dir;
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
    assert_int_equal(key != NULL ? kurer_create(&o, NULL, 0, key, &h->k)
                                 : kurer_create(&o, PASS, strlen(PASS), NULL, &h->k),
                     0);
    kurer_buf_release(&buf);
    assert_int_equal(kurer_file_read(kurer_csr_path(h->k), 8192, &data, &len), 0);
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
    assert_int_equal(kurer_import_chain(h->k, buf.data, buf.len), 0);
    kurer_buf_release(&buf);
}

static int ctx_setup(void **state)
{
    setup(state);
    world *w = *state;
    ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->w = w;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    /* Many requests at once from two devices: the send meter must not be what is tested here.
     * The lookup meter keeps its default: the client's directory cache keeps a burst of sends
     * from being a burst of lookups. A short idle timeout (3 s), announced in the handshake:
     * clients must ping within it, in the background too. */
    const char *conf = "send_rate = 0\nmailbox_sender_max = 0\nidle_timeout_ms = 3000\n";
    write_file(cfg, conf, strlen(conf));
    const char *extra[] = {"--config", cfg};
    start_relay_v(w, extra, 2);
    make_home(w, &c->a, "anna@mof", 10);
    make_home(w, &c->b, "bo@mof", 11);
    g_ctx = c;
    *state = c;
    return 0;
}

static int ctx_teardown(void **state)
{
    ctx *c = *state;
    kurer_close(c->a.k);
    kurer_close(c->b.k);
    world *w = c->w;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    free(c);
    g_ctx = NULL;
    *state = w;
    return teardown(state);
}

/* Waits (bounded) until pred holds; returns whether it did. */
static int wait_for(ctx *c, int (*pred)(ctx *c))
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += WAIT_MS / 1000;
    int ok;
    pthread_mutex_lock(&c->mu);
    while (!(ok = pred(c)) && pthread_cond_timedwait(&c->cond, &c->mu, &end) == 0)
        ;
    ok = pred(c);
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static int room_a(ctx *c)
{
    return c->a.in_flight < IN_FLIGHT && c->b.in_flight < IN_FLIGHT;
}

static int all_done(ctx *c)
{
    return c->a.in_flight == 0 && c->b.in_flight == 0 &&
           c->a.received + c->b.received >= 2 * MESSAGES;
}

static int both_online(ctx *c)
{
    return c->a.online && c->b.online;
}

/* The driver thread: connects both homes and sends MESSAGES each way, IN_FLIGHT at a time per
 * home, alternating between them. Only asynchronous calls. */
static void *driver(void *arg)
{
    ctx *c = arg;
    home *hs[2] = {&c->a, &c->b};
    for (int i = 0; i < 2; i++) {
        kurer_events ev = {.on_message = on_message, .ud = hs[i], .on_state = on_state};
        kurer_set_events(hs[i]->k, &ev);
        if (kurer_connect_async(hs[i]->k, 30000, NULL, NULL) != 0)
            return (void *)1;
    }
    if (!wait_for(c, both_online))
        return (void *)2;
    for (int n = 0; n < MESSAGES; n++) {
        for (int i = 0; i < 2; i++) {
            char text[32];
            if (!wait_for(c, room_a))
                return (void *)3;
            snprintf(text, sizeof(text), "msg %d", n);
            pthread_mutex_lock(&c->mu);
            hs[i]->in_flight++;
            if (hs[i]->in_flight > hs[i]->max_in_flight)
                hs[i]->max_in_flight = hs[i]->in_flight;
            pthread_mutex_unlock(&c->mu);
            int rc = kurer_send_async(hs[i]->k, hs[1 - i]->user, KURER_LEVEL_UNCLASSIFIED, text,
                                      60000, sent, hs[i]);
            if (rc != 0) {
                pthread_mutex_lock(&c->mu);
                hs[i]->in_flight--;
                hs[i]->sent_failed++;
                pthread_mutex_unlock(&c->mu);
            }
        }
    }
    return wait_for(c, all_done) ? NULL : (void *)4;
}

static void test_thousand_each_way(void **state)
{
    ctx *c = *state;
    void *res = NULL;
    assert_int_equal(pthread_create(&c->driver, NULL, driver, c), 0);
    assert_int_equal(pthread_join(c->driver, &res), 0);
    home *hs[2] = {&c->a, &c->b};
    for (int i = 0; i < 2; i++) {
        home *h = hs[i];
        fprintf(stderr,
                "%s: sent %d (failed %d, first error %s), received %d (duplicates %d), "
                "at most %d in flight\n",
                h->user, h->sent_ok, h->sent_failed, kurer_err_name(h->first_error), h->received,
                h->duplicates, h->max_in_flight);
    }
    assert_null(res);
    for (int i = 0; i < 2; i++) {
        home *h = hs[i];
        assert_int_equal(h->sent_failed, 0);
        assert_int_equal(h->sent_ok, MESSAGES);
        assert_int_equal(h->received, MESSAGES);
        assert_int_equal(h->duplicates, 0);
        assert_int_equal(h->bad, 0);
        assert_false(h->wrong_thread);
        assert_true(h->library_seen);
        assert_true(h->max_in_flight > 8); /* many requests at once, not one after another */
        for (int n = 0; n < MESSAGES; n++)
            assert_int_equal(h->got[n], 1);
        /* Everything accepted: nothing left in the outbox. */
        assert_int_equal(kurer_outbox_size(h->k), 0);
    }
    /* The two library threads are two threads. */
    assert_false(pthread_equal(c->a.library, c->b.library));
}

/* A second open of a home, in this process, is refused while the first handle holds it, and the
 * holder is named; after close it opens. */
static void test_home_lock(void **state)
{
    ctx *c = *state;
    kurer *k2 = NULL;
    long pid = 0;
    char holder[64];
    kurer_open_options o = {
        .home = c->a.dir, .pass = PASS, .pass_len = strlen(PASS), .holder = "second opener"};
    assert_int_equal(kurer_open_with(&o, &k2), KURER_ELOCKED);
    assert_null(k2);
    assert_int_equal(kurer_home_holder(c->a.dir, &pid, holder, sizeof(holder)), 1);
    assert_int_equal(pid, (long)getpid());
    assert_true(strlen(holder) > 0); /* kurer_create took it under the program's name */
    assert_int_equal(kurer_open(c->a.dir, PASS, strlen(PASS), NULL, NULL, NULL, &k2),
                     KURER_ELOCKED);
    kurer_close(c->a.k);
    c->a.k = NULL;
    assert_int_equal(kurer_home_holder(c->a.dir, &pid, holder, sizeof(holder)), 0);
    assert_int_equal(kurer_open_with(&o, &c->a.k), 0);
    assert_int_equal(kurer_home_holder(c->a.dir, &pid, holder, sizeof(holder)), 1);
    assert_string_equal(holder, "second opener");
    assert_int_equal(pid, (long)getpid());
}

/* A failed attempt leaves nothing behind that would close the next connection: a relay address
 * that cannot be used, then the right one again, connects at once (found by review: a stale close
 * request killed the next handshake, which then read as KURER_EHANDSHAKE and stopped retries). */
static void test_relay_change(void **state)
{
    ctx *c = *state;
    char good[64];
    snprintf(good, sizeof(good), "%s", kurer_relay_address(c->a.k));
    assert_int_equal(kurer_connect(c->a.k, 20000), 0);
    kurer_disconnect(c->a.k);
    assert_int_equal(kurer_set_relay(c->a.k, "no-such-host.invalid:1", NULL), 0);
    int rc = kurer_connect(c->a.k, 20000);
    assert_int_not_equal(rc, 0);
    assert_int_equal(kurer_set_relay(c->a.k, good, NULL), 0);
    assert_int_equal(kurer_connect(c->a.k, 20000), 0);
    assert_int_equal(kurer_state(c->a.k, NULL), KURER_CONN_ONLINE);
    /* and a send goes through on it (to bo, once bo has connected: known to the directory) */
    kurer_refusal why;
    assert_int_equal(kurer_connect(c->b.k, 20000), 0);
    assert_int_equal(
        kurer_send(c->a.k, "bo@mof", KURER_LEVEL_UNCLASSIFIED, "efter skift", 20000, &why), 0);
}

/* ---- a key change on a connection that stays up ---- */

typedef struct keyseen {
    int changes;
    uint64_t serial, old_serial;
    char issuer[32], user[32];
    uint32_t device;
    int got_after, got_other;
} keyseen;

static keyseen g_keys;

static int count_change(void *ud, const kurer_key_change *kc)
{
    int *n = ud;
    (*n) += kc->serial == 12 && kc->old_serial == 11;
    return 0;
}

static void on_key_change(void *ud, const kurer_key_change *kc)
{
    (void)ud;
    pthread_mutex_lock(&g_ctx->mu);
    g_keys.changes++;
    g_keys.serial = kc->serial;
    g_keys.old_serial = kc->old_serial;
    g_keys.device = kc->device_id;
    snprintf(g_keys.issuer, sizeof(g_keys.issuer), "%s", kc->issuer);
    snprintf(g_keys.user, sizeof(g_keys.user), "%s", kc->user);
    pthread_cond_broadcast(&g_ctx->cond);
    pthread_mutex_unlock(&g_ctx->mu);
}

static void on_new_device_message(void *ud, const kurer_message *m)
{
    (void)ud;
    pthread_mutex_lock(&g_ctx->mu);
    if (!m->outgoing && strcmp(m->body, "efter ny noegle") == 0)
        g_keys.got_after++;
    else if (!m->outgoing)
        g_keys.got_other++;
    pthread_cond_broadcast(&g_ctx->cond);
    pthread_mutex_unlock(&g_ctx->mu);
}

static int got_after(ctx *c)
{
    (void)c;
    return g_keys.got_after > 0;
}

static int key_told(ctx *c)
{
    (void)c;
    return g_keys.changes > 0;
}

/* bo's device 1 is re-enrolled (new keys, a new certificate, serial 12) while anna's connection
 * stays up and her directory cache still holds bo from a send a moment ago: no lookup is made.
 * Her envelope names the serial it was encrypted for (11); the relay holds 12 and answers
 * STALE_DEVICES; anna verifies the new chain, drops the old session, builds a new one and sends
 * again, and is told once. The new device reads it. */
static void test_key_change_cached(void **state)
{
    ctx *c = *state;
    char old_dir[320];
    kurer_refusal why;
    memset(&g_keys, 0, sizeof(g_keys));
    kurer_events ev = {.on_key_change = on_key_change, .ud = &c->a, .on_state = on_state};
    kurer_set_events(c->a.k, &ev);
    assert_int_equal(kurer_connect(c->a.k, 20000), 0);
    assert_int_equal(kurer_connect(c->b.k, 20000), 0);
    assert_int_equal(kurer_send(c->a.k, "bo@mof", KURER_LEVEL_UNCLASSIFIED, "foer", 20000, &why),
                     0);
    kurer_close(c->b.k);
    snprintf(old_dir, sizeof(old_dir), "%s.old", c->b.dir);
    assert_int_equal(rename(c->b.dir, old_dir), 0);
    memset(&c->b, 0, sizeof(c->b));
    make_home(c->w, &c->b, "bo@mof", 12); /* new keys, same user and device id */
    kurer_events bev = {.on_message = on_new_device_message, .ud = &c->b};
    kurer_set_events(c->b.k, &bev);
    assert_int_equal(kurer_connect(c->b.k, 20000), 0); /* the directory now has serial 12 */
    assert_int_equal(kurer_state(c->a.k, NULL), KURER_CONN_ONLINE);
    assert_int_equal(
        kurer_send(c->a.k, "bo@mof", KURER_LEVEL_UNCLASSIFIED, "efter ny noegle", 20000, &why), 0);
    assert_true(wait_for(c, key_told));
    assert_true(wait_for(c, got_after));
    pthread_mutex_lock(&c->mu);
    assert_int_equal(g_keys.changes, 1);
    assert_int_equal(g_keys.serial, 12);
    assert_int_equal(g_keys.old_serial, 11);
    assert_int_equal(g_keys.device, 1);
    assert_string_equal(g_keys.issuer, "mof");
    assert_string_equal(g_keys.user, "bo@mof");
    assert_int_equal(g_keys.got_other, 0);
    pthread_mutex_unlock(&c->mu);
    /* Told once: not again on the next send, nor when the events are set again. */
    assert_int_equal(kurer_send(c->a.k, "bo@mof", KURER_LEVEL_UNCLASSIFIED, "igen", 20000, &why),
                     0);
    kurer_set_events(c->a.k, &ev);
    assert_int_equal(kurer_send(c->a.k, "bo@mof", KURER_LEVEL_UNCLASSIFIED, "og igen", 20000, &why),
                     0);
    kurer_disconnect(c->a.k); /* the events still queued are given before close returns */
    pthread_mutex_lock(&c->mu);
    assert_int_equal(g_keys.changes, 1);
    pthread_mutex_unlock(&c->mu);
    /* kurer_key_changes lists it. */
    int listed = 0;
    assert_int_equal(kurer_key_changes(c->a.k, "bo@mof", count_change, &listed), 0);
    assert_int_equal(listed, 1);
}

/* ---- the phone's day (mobile.h) ---- */

#define FLOW 300

typedef struct flow {
    int resend[2][FLOW]; /* not committed when it failed: to be sent again */
    int log_lines, log_leak;
    int woke, wake_rc;
} flow;

static flow g_flow;

static void flow_log(void *ud, int level, const char *line)
{
    (void)ud;
    (void)level;
    pthread_mutex_lock(&g_ctx->mu);
    g_flow.log_lines++;
    if (strstr(line, "msg ") != NULL) /* message text never reaches a log line */
        g_flow.log_leak++;
    pthread_mutex_unlock(&g_ctx->mu);
}

typedef struct flow_send {
    home *h;
    int side, n;
} flow_send;

static void flow_sent(void *ud, const kurer_result *r)
{
    flow_send *fs = ud;
    pthread_mutex_lock(&g_ctx->mu);
    fs->h->in_flight--;
    if (r->err == 0)
        fs->h->sent_ok++;
    else if (r->message_id == 0) /* refused before the commit (the connection was changing) */
        g_flow.resend[fs->side][fs->n] = 1;
    /* (committed and not yet accepted: it stays in the outbox and goes with a later connection) */
    pthread_cond_broadcast(&g_ctx->cond);
    pthread_mutex_unlock(&g_ctx->mu);
    free(fs);
}

static void flow_send_one(home *from, home *to, int side, int n)
{
    char text[32];
    flow_send *fs = calloc(1, sizeof(*fs));
    assert_non_null(fs);
    *fs = (flow_send){from, side, n};
    snprintf(text, sizeof(text), "msg %d", n);
    pthread_mutex_lock(&g_ctx->mu);
    from->in_flight++;
    pthread_mutex_unlock(&g_ctx->mu);
    assert_int_equal(
        kurer_send_async(from->k, to->user, KURER_LEVEL_UNCLASSIFIED, text, 30000, flow_sent, fs),
        0);
}

static int flow_quiet(ctx *c)
{
    return c->a.in_flight == 0 && c->b.in_flight == 0;
}

static int flow_all_in(ctx *c)
{
    return c->a.received >= FLOW && c->b.received >= FLOW;
}

static void woke(void *ud, const kurer_result *r)
{
    (void)ud;
    pthread_mutex_lock(&g_ctx->mu);
    g_flow.woke = 1;
    g_flow.wake_rc = r->err;
    pthread_cond_broadcast(&g_ctx->cond);
    pthread_mutex_unlock(&g_ctx->mu);
}

static int b_online(ctx *c)
{
    return c->b.online;
}

static int flow_woke(ctx *c)
{
    (void)c;
    return g_flow.woke;
}

/* A home opened with a raw key (a phone's), backgrounded and foregrounded and told of network
 * changes again and again while messages flow both ways: every message arrives, exactly once;
 * then kurer_wake fetches what came while it was away. Log lines go to the app's callback. */
static void test_mobile_flow(void **state)
{
    ctx *c = *state;
    uint8_t key[32];
    memset(&g_flow, 0, sizeof(g_flow));
    kurer_set_log(flow_log, NULL, KURER_MOBILE_LOG_INFO);
    kurer_random(key, sizeof(key));
    kurer_close(c->b.k); /* bo's place is taken by a phone: "carl", raw key */
    memset(&c->b, 0, sizeof(c->b));
    make_home_key(c->w, &c->b, "carl@mof", 12, key);
    kurer_close(c->b.k);
    c->b.k = NULL;
    /* A wrong key is refused; the right one opens without a passphrase. */
    uint8_t wrong[32];
    memcpy(wrong, key, sizeof(wrong));
    wrong[0] ^= 1;
    assert_int_equal(kurer_open(c->b.dir, NULL, 0, wrong, NULL, NULL, &c->b.k), KURER_EPASSPHRASE);
    assert_int_equal(kurer_open(c->b.dir, NULL, 0, key, NULL, NULL, &c->b.k), 0);
    home *hs[2] = {&c->a, &c->b};
    for (int i = 0; i < 2; i++) {
        kurer_events ev = {.on_message = on_message, .ud = hs[i], .on_state = on_state};
        kurer_set_events(hs[i]->k, &ev);
        assert_int_equal(kurer_connect(hs[i]->k, 20000), 0);
    }
    for (int n = 0; n < FLOW; n++) {
        flow_send_one(&c->a, &c->b, 0, n);
        flow_send_one(&c->b, &c->a, 1, n);
        if (n % 50 == 25) {
            kurer_set_foreground(c->b.k, 0);
            kurer_network_changed(c->b.k);
        } else if (n % 50 == 0) {
            kurer_set_foreground(c->b.k, 1);
            kurer_network_changed(c->a.k);
        }
        if (n % 16 == 15)
            assert_true(wait_for(c, flow_quiet));
    }
    /* What failed before its commit is sent again (what was committed goes by itself). */
    for (int round = 0; round < 5; round++) {
        assert_true(wait_for(c, flow_quiet));
        for (int side = 0; side < 2; side++)
            for (int n = 0; n < FLOW; n++)
                if (g_flow.resend[side][n]) {
                    g_flow.resend[side][n] = 0;
                    flow_send_one(hs[side], hs[1 - side], side, n);
                }
    }
    assert_true(wait_for(c, flow_all_in));
    fprintf(stderr, "mobile flow: carl online %d times, anna %d times\n", c->b.onlines,
            c->a.onlines);
    assert_true(c->b.onlines >= 4); /* the network changes did reconnect, at once */
    assert_true(c->a.onlines >= 4);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(hs[i]->duplicates, 0);
        for (int n = 0; n < FLOW; n++)
            assert_int_equal(hs[i]->got[n], 1);
    }
    /* Away: carl disconnects; anna writes; a push would wake carl: kurer_wake fetches it. */
    kurer_disconnect(c->b.k);
    memset(c->b.got, 0, sizeof(c->b.got));
    c->b.received = 0;
    for (int n = 0; n < 10; n++) {
        char text[32];
        kurer_refusal why;
        snprintf(text, sizeof(text), "msg %d", n);
        assert_int_equal(
            kurer_send(c->a.k, "carl@mof", KURER_LEVEL_UNCLASSIFIED, text, 20000, &why), 0);
    }
    assert_int_equal(kurer_wake(c->b.k, 20000, woke, NULL), 0);
    assert_true(wait_for(c, flow_woke));
    assert_int_equal(g_flow.wake_rc, 0);
    assert_int_equal(c->b.received, 10);
    assert_int_equal(kurer_state(c->b.k, NULL), KURER_CONN_OFFLINE); /* and disconnected again */
    /* Kept connected in the background, idle: pings at 80 % of the relay's 3 s keep it up. */
    assert_int_equal(kurer_connect(c->b.k, 20000), 0);
    kurer_set_foreground(c->b.k, 0);
    assert_true(wait_for(c, b_online)); /* (the ONLINE event may follow the call's return) */
    pthread_mutex_lock(&c->mu);
    int onlines = c->b.onlines;
    pthread_mutex_unlock(&c->mu);
    sleep(8);
    assert_int_equal(kurer_state(c->b.k, NULL), KURER_CONN_ONLINE);
    pthread_mutex_lock(&c->mu);
    assert_int_equal(c->b.onlines, onlines); /* never dropped */
    pthread_mutex_unlock(&c->mu);
    kurer_set_log(NULL, NULL, KURER_MOBILE_LOG_INFO);
    assert_true(g_flow.log_lines > 0);
    assert_int_equal(g_flow.log_leak, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_thousand_each_way, ctx_setup, ctx_teardown),
        cmocka_unit_test_setup_teardown(test_home_lock, ctx_setup, ctx_teardown),
        cmocka_unit_test_setup_teardown(test_relay_change, ctx_setup, ctx_teardown),
        cmocka_unit_test_setup_teardown(test_mobile_flow, ctx_setup, ctx_teardown),
        cmocka_unit_test_setup_teardown(test_key_change_cached, ctx_setup, ctx_teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
