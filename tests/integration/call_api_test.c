/* The call API of libkurer against a real relay: two homes in one process, a call between them
 * driven only through kurer_call_* with the test's own thread as both apps' audio thread
 * (capture in, playback out every 20 ms). Cases:
 *   network_change  kurer_network_changed during the call: the link binds again from a new
 *                   socket, the relay re-locks the leg (media_relocks_total), the audio goes on
 *                   both ways, nothing is refused;
 *   api             the API's contract: events in order on one library thread, a second call
 *                   while one exists is KURER_EBUSY, accept of an unknown call KURER_ENOTFOUND,
 *                   statistics of the ended call kept. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kurer/kurer.h"
#include "kurer/mobile.h"
#include "relay_harness.h"

#define PASS "call api test passphrase"

typedef struct side {
    char dir[300];
    kurer *k;
    pthread_mutex_t mu;
    uint64_t call_id;
    int incoming, ringing, answered, connected, ended, failed, err;
    kurer_call_end end;
    int order_ok; /* each event came in the order the state machine allows */
    pthread_t library;
    int library_seen, wrong_thread;
    int accept; /* accept an incoming call from the callback */
} side;

static void note(side *s)
{
    pthread_t self = pthread_self();
    if (!s->library_seen) {
        s->library = self;
        s->library_seen = 1;
    } else if (!pthread_equal(self, s->library)) {
        s->wrong_thread = 1;
    }
}

static void on_call(void *ud, const kurer_call_event *e)
{
    side *s = ud;
    pthread_mutex_lock(&s->mu);
    note(s);
    switch (e->kind) {
    case KURER_CALL_EV_INCOMING:
        s->call_id = e->call_id;
        s->incoming++;
        break;
    case KURER_CALL_EV_RINGING:
        s->ringing++;
        break;
    case KURER_CALL_EV_ANSWERED:
        s->order_ok &= s->incoming > 0 || s->ringing > 0 || !e->outgoing;
        s->answered++;
        break;
    case KURER_CALL_EV_CONNECTED:
        s->order_ok &= s->answered > 0;
        s->connected++;
        break;
    case KURER_CALL_EV_ENDED:
        s->ended++;
        s->end = e->end;
        break;
    case KURER_CALL_EV_FAILED:
        s->failed++;
        s->err = e->err;
        break;
    }
    int accept = e->kind == KURER_CALL_EV_INCOMING && s->accept;
    uint64_t id = e->call_id;
    pthread_mutex_unlock(&s->mu);
    if (accept) /* (a callback may call the call API) */
        assert_int_equal(kurer_call_accept(s->k, id), 0);
}

static void make_side(world *w, side *s, const char *user, uint64_t serial)
{
    kurer_create_options o;
    char relay[64];
    uint8_t *data = NULL;
    size_t len = 0;
    kurer_csr csr;
    kurer_cert_body b;
    kurer_chain chain;
    kurer_buf buf;
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->order_ok = 1;
    snprintf(s->dir, sizeof(s->dir), "%s/home-%s", w->dir, user);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&w->addr;
    snprintf(relay, sizeof(relay), "127.0.0.1:%u", (unsigned)ntohs(sin->sin_port));
    memset(&o, 0, sizeof(o));
    o.home = s->dir;
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
    assert_int_equal(kurer_create(&o, PASS, strlen(PASS), NULL, &s->k), 0);
    kurer_buf_release(&buf);
    assert_int_equal(kurer_file_read(kurer_csr_path(s->k), 8192, &data, &len), 0);
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
    assert_int_equal(kurer_import_chain(s->k, buf.data, buf.len), 0);
    kurer_buf_release(&buf);
    kurer_call_events ev = {on_call, s};
    kurer_set_call_events(s->k, &ev);
    assert_int_equal(kurer_connect(s->k, 30000), 0);
}

typedef struct pair {
    world *w;
    side a, b;
} pair;

static int pair_setup(void **state)
{
    setup(state);
    world *w = *state;
    pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->w = w;
    w->want_media = 1;
    start_relay(w, "--metrics", "127.0.0.1:0");
    make_side(w, &p->a, "anna@mof", 10);
    make_side(w, &p->b, "bo@mof", 11);
    p->b.accept = 1;
    *state = p;
    return 0;
}

static int pair_teardown(void **state)
{
    pair *p = *state;
    kurer_close(p->a.k);
    kurer_close(p->b.k);
    pthread_mutex_destroy(&p->a.mu);
    pthread_mutex_destroy(&p->b.mu);
    world *w = p->w;
    free(p);
    *state = w;
    return teardown(state);
}

static int get(side *s, const int *field)
{
    pthread_mutex_lock(&s->mu);
    int v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* One 20 ms step of both apps' audio threads: a tone in, a frame out. bo's side knows the call
 * only once it rang there (KURER_ENOTFOUND before). */
static void audio_step(pair *p, uint64_t ida, uint64_t idb, unsigned n)
{
    int16_t pcm[KURER_CALL_SAMPLES];
    pthread_mutex_lock(&p->b.mu);
    int b_knows = p->b.call_id == idb;
    pthread_mutex_unlock(&p->b.mu);
    for (size_t i = 0; i < KURER_CALL_SAMPLES; i++)
        pcm[i] = (int16_t)(((n * KURER_CALL_SAMPLES + i) / 24) % 2 ? 6000 : -6000); /* 1 kHz */
    int rc = kurer_call_capture(p->a.k, ida, pcm);
    assert_true(rc == 0 || rc == KURER_ELIMIT);
    rc = kurer_call_capture(p->b.k, idb, pcm);
    assert_true(rc == 0 || rc == KURER_ELIMIT || (!b_knows && rc == KURER_ENOTFOUND));
    assert_int_equal(kurer_call_playback(p->a.k, ida, pcm), 0);
    rc = kurer_call_playback(p->b.k, idb, pcm);
    assert_true(rc == 0 || (!b_knows && rc == KURER_ENOTFOUND));
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, NULL);
}

/* Starts anna -> bo and steps audio until both are connected (bounded). */
static uint64_t connect_call(pair *p)
{
    uint64_t id = 0;
    assert_int_equal(kurer_call_start(p->a.k, "bo@mof", KURER_LEVEL_RESTRICTED, &id), 0);
    assert_true(id != 0);
    for (unsigned n = 0; n < 1500; n++) { /* 30 s */
        if (get(&p->a, &p->a.connected) && get(&p->b, &p->b.connected))
            break;
        assert_int_equal(get(&p->a, &p->a.failed) + get(&p->b, &p->b.failed), 0);
        audio_step(p, id, id, n);
    }
    assert_int_equal(get(&p->a, &p->a.connected), 1);
    assert_int_equal(get(&p->b, &p->b.connected), 1);
    pthread_mutex_lock(&p->b.mu);
    assert_true(p->b.call_id == id);
    pthread_mutex_unlock(&p->b.mu);
    return id;
}

static void hang_up(pair *p, uint64_t id)
{
    assert_int_equal(kurer_call_hangup(p->a.k, id), 0);
    for (unsigned n = 0; n < 500 && !(get(&p->a, &p->a.ended) && get(&p->b, &p->b.ended)); n++)
        usleep(20000);
    assert_int_equal(get(&p->a, &p->a.ended), 1);
    assert_int_equal(get(&p->b, &p->b.ended), 1);
    assert_int_equal(p->a.end, KURER_CALL_END_LOCAL_HANGUP);
    assert_int_equal(p->b.end, KURER_CALL_END_REMOTE_HANGUP);
}

static void test_network_change(void **state)
{
    pair *p = *state;
    uint64_t id = connect_call(p);
    for (unsigned n = 0; n < 50; n++)
        audio_step(p, id, id, n);
    kurer_call_stats before, after, a_after;
    assert_int_equal(kurer_call_get_stats(p->b.k, id, &before), 0);
    uint64_t relocks = metric_now(p->w, "kurer_media_relocks_total");
    kurer_network_changed(p->a.k); /* (the relay connection is made again too) */
    for (unsigned n = 0; n < 150; n++)
        audio_step(p, id, id, n);
    assert_int_equal(kurer_call_get_stats(p->b.k, id, &after), 0);
    assert_int_equal(kurer_call_get_stats(p->a.k, id, &a_after), 0);
    printf("network change: bo received %llu before, %llu after; relocks %llu -> %llu\n",
           (unsigned long long)before.received, (unsigned long long)after.received,
           (unsigned long long)relocks,
           (unsigned long long)metric_now(p->w, "kurer_media_relocks_total"));
    assert_true(metric_now(p->w, "kurer_media_relocks_total") > relocks);
    assert_true(after.received >= before.received + 100); /* of 150 frames sent since */
    assert_true(a_after.received > 150);
    assert_int_equal(after.rejected + a_after.rejected, 0);
    assert_int_equal(get(&p->a, &p->a.failed) + get(&p->b, &p->b.failed), 0);
    hang_up(p, id);
}

static void test_api(void **state)
{
    pair *p = *state;
    uint64_t other = 0;
    assert_int_equal(kurer_call_accept(p->a.k, 12345), KURER_ENOTFOUND);
    assert_int_equal(kurer_call_start(p->a.k, "anna@mof", KURER_LEVEL_RESTRICTED, &other),
                     KURER_EINVAL); /* ourselves */
    assert_int_equal(kurer_call_start(p->a.k, "bo@mof", 4, &other), KURER_ECLEARANCE);
    uint64_t id = connect_call(p);
    assert_int_equal(kurer_call_start(p->a.k, "bo@mof", KURER_LEVEL_RESTRICTED, &other),
                     KURER_EBUSY);
    assert_int_equal(kurer_call_accept(p->a.k, id), KURER_ESTATE); /* ours: nothing to accept */
    for (unsigned n = 0; n < 50; n++)
        audio_step(p, id, id, n);
    hang_up(p, id);
    kurer_call_stats st;
    assert_int_equal(kurer_call_get_stats(p->b.k, id, &st), 0); /* kept after the end */
    assert_true(st.received > 40 && st.sent > 40 && st.duration_ms > 500);
    int16_t pcm[KURER_CALL_SAMPLES];
    assert_int_equal(kurer_call_playback(p->a.k, id, pcm), KURER_ENOTFOUND);
    assert_int_equal(p->a.order_ok && p->b.order_ok, 1);
    assert_int_equal(p->a.ringing, 1);
    assert_int_equal(p->b.incoming, 1);
    assert_int_equal(p->a.wrong_thread + p->b.wrong_thread, 0);

    /* bo calls anna; while it rings at anna (who does not accept on her own), anna calls bo at
     * the same level: that answers bo's call (both wanted it) instead of a second call. */
    pthread_mutex_lock(&p->a.mu);
    p->a.connected = p->a.ended = 0;
    pthread_mutex_unlock(&p->a.mu);
    pthread_mutex_lock(&p->b.mu);
    p->b.connected = p->b.ended = 0;
    p->b.accept = 0;
    pthread_mutex_unlock(&p->b.mu);
    uint64_t bid = 0, aid = 0;
    assert_int_equal(kurer_call_start(p->b.k, "anna@mof", KURER_LEVEL_RESTRICTED, &bid), 0);
    for (unsigned n = 0; n < 1500 && get(&p->a, &p->a.incoming) < 1; n++)
        usleep(20000);
    assert_int_equal(get(&p->a, &p->a.incoming), 1);
    assert_int_equal(kurer_call_start(p->a.k, "bo@mof", KURER_LEVEL_RESTRICTED, &aid), 0);
    assert_true(aid == bid);
    for (unsigned n = 0; n < 1500; n++) {
        if (get(&p->a, &p->a.connected) && get(&p->b, &p->b.connected))
            break;
        audio_step(p, aid, bid, n);
    }
    assert_int_equal(get(&p->a, &p->a.connected), 1);
    assert_int_equal(get(&p->b, &p->b.connected), 1);
    assert_int_equal(kurer_call_hangup(p->b.k, bid), 0);
    for (unsigned n = 0; n < 500 && !(get(&p->a, &p->a.ended) && get(&p->b, &p->b.ended)); n++)
        usleep(20000);
    assert_int_equal(get(&p->a, &p->a.ended) + get(&p->b, &p->b.ended), 2);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest all[] = {
        cmocka_unit_test_setup_teardown(test_network_change, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_api, pair_setup, pair_teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(all, NULL, NULL);
}
