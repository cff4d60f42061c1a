/* client/fanout.c against a real relay: a home (anna) sends one shared 60,000-byte ciphertext
 * to 203 users with kurer__fanout_send on one of its workers; the list takes several parts.
 * An online recipient gets it at once, an offline one at its next connect, an unknown user is
 * answered UNKNOWN_USER and a device named with a stale serial STALE_DEVICES with its current
 * list; every other user is ACCEPTED, in the request's order. ctest client_fanout_send.
 * client_fanout_group_many: a group of anna and 40 member homes through the public API; the
 * group's creation (a pre-key message to each of 40 users) and anna's sender key to 40 devices
 * need several SendRequests each (one frame holds about 30 of them), and a 5,000-byte text goes
 * in the one fan-out ciphertext: every member reads it. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fanout.h"
#include "kurer/kurer.h"
#include "net.h"
#include "relay_harness.h"

#define PASS   "fanout test passphrase"
#define EXTRAS 200
#define USERS  (EXTRAS + 3)

/* A home for user, enrolled with a certificate from the world's authority (as
 * client_async_test.c makes them). */
static kurer *make_home(world *w, const char *user, uint64_t serial)
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

/* One fan-out on a worker of the handle, as the group code runs it. */
typedef struct fanout_job {
    kurer__job job; /* first */
    const uint8_t *id, *content;
    size_t content_len;
    const kurer_fanout_user *users;
    size_t n_users;
    kurer__fanout_results res;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int finished;
} fanout_job;

static void job_run(kurer *k, kurer__job *j)
{
    fanout_job *f = (fanout_job *)j;
    j->rc = kurer__fanout_send(k, f->id, f->content, f->content_len, f->users, f->n_users,
                               j->deadline, &f->res);
}

static void job_done(kurer *k, kurer__job *j)
{
    fanout_job *f = (fanout_job *)j;
    (void)k;
    pthread_mutex_lock(&f->mu);
    f->finished = 1;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

/* Runs kurer__fanout_send on one of k's workers and waits for it (job->job.rc, job->res). */
static void run_fanout(kurer *k, fanout_job *job, const uint8_t *id, const uint8_t *content,
                       size_t len, const kurer_fanout_user *users, size_t n)
{
    memset(job, 0, sizeof(*job));
    pthread_mutex_init(&job->mu, NULL);
    pthread_cond_init(&job->cond, NULL);
    job->job.run = job_run;
    job->job.done = job_done;
    job->job.deadline = kurer_time_mono_ms() + 30000;
    job->id = id;
    job->content = content;
    job->content_len = len;
    job->users = users;
    job->n_users = n;
    assert_int_equal(kurer__net_submit(k, &job->job), 0);
    pthread_mutex_lock(&job->mu);
    while (!job->finished)
        pthread_cond_wait(&job->cond, &job->mu);
    pthread_mutex_unlock(&job->mu);
}

static void enrol(world *w, const device *d)
{
    client c;
    assert_int_equal(cl_connect(w, &c, d), 0);
    cl_free(&c);
}

static void test_send(void **state)
{
    world *w = *state;
    static device extras[EXTRAS];
    static kurer_fanout_device fd[USERS];
    static kurer_fanout_user users[USERS];
    static uint8_t content[60000];
    device bo, cy, eve;
    client cbo, c;
    kurer_server_frame f;
    uint8_t id[16];
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "handshake_rate = 100000\n";
    write_file(cfg, conf, strlen(conf));
    const char *extra[] = {"--config", cfg};
    start_relay_v(w, extra, 2);
    kurer_random(content, sizeof(content));
    kurer_random(id, sizeof(id));
    make_device(w, &bo, "bo@mof", 1, 11, 0, 0, 0);
    make_device(w, &cy, "cy@mof", 1, 12, 0, 0, 0);
    make_device(w, &eve, "eve@mof", 1, 13, 0, 0, 0);
    enrol(w, &cy);
    enrol(w, &eve);
    users[0] = (kurer_fanout_user){"bo@mof", &fd[0], 1};
    users[1] = (kurer_fanout_user){"ghost@mof", &fd[1], 1}; /* never connected */
    users[2] = (kurer_fanout_user){"eve@mof", &fd[2], 1};
    fd[0] = (kurer_fanout_device){1, 11};
    fd[1] = (kurer_fanout_device){1, 0};
    fd[2] = (kurer_fanout_device){1, 99}; /* not eve's certificate */
    for (uint32_t i = 0; i < EXTRAS; i++) {
        char user[32];
        snprintf(user, sizeof(user), "x%03u@mof", i);
        make_device(w, &extras[i], user, 1, 100 + i, 0, 0, 0);
        enrol(w, &extras[i]);
        fd[3 + i] = (kurer_fanout_device){1, i % 2 ? 100 + i : 0};
        users[3 + i] = (kurer_fanout_user){extras[i].addr.user, &fd[3 + i], 1};
    }
    users[USERS - 1] = (kurer_fanout_user){"cy@mof", &fd[USERS - 1], 1}; /* offline */
    fd[USERS - 1] = (kurer_fanout_device){1, 12};
    /* the list does not fit the first record with this content: several parts */
    size_t first = kurer__fanout_part_users(users, USERS, 0, sizeof(content));
    assert_true(first > 0 && first < USERS);
    assert_true(kurer__fanout_part_users(users, USERS, first, 0) == USERS - first);
    printf("client fanout: %d users, %zu in part 0, the rest in part 1\n", USERS, first);

    assert_int_equal(cl_connect(w, &cbo, &bo), 0);
    kurer *k = make_home(w, "anna@mof", 10);
    assert_int_equal(kurer_connect(k, 20000), 0);

    fanout_job job;
    run_fanout(k, &job, id, content, sizeof(content), users, USERS);
    assert_int_equal(job.job.rc, 0);
    kurer__fanout_results *res = &job.res;
    assert_int_equal(res->n, USERS);
    assert_int_equal(res->accepted, USERS - 2);
    assert_int_equal(res->lists_omitted, 0);
    for (size_t i = 0; i < USERS; i++) {
        assert_ptr_equal(res->users[i].user, users[i].user); /* in the request's order */
        kurer_send_status want = i == 1   ? KURER_SEND_UNKNOWN_USER
                                 : i == 2 ? KURER_SEND_STALE_DEVICES
                                          : KURER_SEND_ACCEPTED;
        assert_int_equal(res->users[i].status, want);
    }
    assert_int_equal(res->users[2].current.n_devices, 1);
    kurer__fanout_results_free(res);
    pthread_mutex_destroy(&job.mu);
    pthread_cond_destroy(&job.cond);
    kurer_close(k);

    /* bo, online, had it at once; cy at its connect: ordinary SENDER_KEY envelopes */
    for (;;) { /* after its QueueEmpty of the connect */
        assert_int_equal(cl_next(&cbo, &f, 10000), 1);
        if (f.body == KURER_SERVER_DELIVER && memcmp(f.u.deliver.envelope.id, id, 16) == 0)
            break;
        kurer_server_frame_release(&f);
    }
    assert_int_equal(f.u.deliver.envelope.type, KURER_ENVELOPE_SENDER_KEY);
    assert_string_equal(f.u.deliver.envelope.from.user, "anna@mof");
    assert_int_equal(f.u.deliver.envelope.content_len, sizeof(content));
    assert_memory_equal(f.u.deliver.envelope.content, content, sizeof(content));
    kurer_server_frame_release(&f);
    cl_free(&cbo);
    assert_int_equal(cl_connect(w, &c, &cy), 0);
    expect_body(&c, &f, KURER_SERVER_DELIVER);
    assert_memory_equal(f.u.deliver.envelope.id, id, 16);
    assert_string_equal(f.u.deliver.envelope.to.user, "cy@mof");
    assert_memory_equal(f.u.deliver.envelope.content, content, sizeof(content));
    kurer_server_frame_release(&f);
    cl_free(&c);
}

#define MANY 40

typedef struct read_ctx {
    const char *text;
    int found;
} read_ctx;

static int read_text(void *ud, const kurer_message *m)
{
    read_ctx *r = ud;
    if (!m->outgoing && m->group[0] != '\0' && m->state == KURER_MESSAGE_RECEIVED &&
        strcmp(m->body, r->text) == 0)
        r->found = 1;
    return 0;
}

static void test_group_many(void **state)
{
    world *w = *state;
    static kurer *members[MANY];
    static char names[MANY][32];
    static char text[5001];
    const char *users[MANY];
    char gid[KURER_GROUP_HEX_MAX + 1];
    kurer_refusal why;
    /* 40 sessions to build, 16 fetches of burst: the client waits for the rate (ERATE) */
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/relay.conf", w->dir);
    const char *conf = "fetch_rate = 4\n";
    write_file(cfg, conf, strlen(conf));
    start_relay(w, "--config", cfg);
    kurer *k = make_home(w, "anna@mof", 10);
    assert_int_equal(kurer_connect(k, 20000), 0);
    for (int i = 0; i < MANY; i++) {
        snprintf(names[i], sizeof(names[i]), "member%02d@mof", i);
        members[i] = make_home(w, names[i], 100 + (uint64_t)i);
        assert_int_equal(kurer_connect(members[i], 20000), 0);
        users[i] = names[i];
    }
    assert_int_equal(kurer_group_create(k, "many", users, MANY, 60000, gid, &why), 0);
    for (size_t i = 0; i < sizeof(text) - 1; i++)
        text[i] = (char)('a' + i % 26);
    int64_t mid = 0;
    assert_int_equal(kurer_group_send(k, gid, KURER_LEVEL_RESTRICTED, text, 60000, &why, &mid), 0);
    for (int i = 0; i < MANY; i++) {
        read_ctx r = {text, 0};
        for (int t = 0; t < 2000 && !r.found; t++) {
            assert_int_equal(kurer_history_group(members[i], gid, read_text, &r), 0);
            if (!r.found)
                usleep(10000);
        }
        assert_true(r.found);
    }
    printf("client fanout: a group of %d members made and sent to\n", MANY + 1);
    for (int i = 0; i < MANY; i++)
        kurer_close(members[i]);
    kurer_close(k);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_many, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
