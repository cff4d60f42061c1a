/* The harness of the relay integration tests: a PKI (roots, authorities, devices), a real
 * kurer-relay process on 127.0.0.1 port 0, and a test client on net/. Shared by test_relay.c and
 * hostile_test.c. Every wait is bounded; failures are cmocka assertions. */
#include "relay_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int g_keep_pushes;

/* ---- PKI ---------------------------------------------------------------------------------- */

void body_common(kurer_cert_body *b, kurer_role role, const char *subject, uint64_t serial)
{
    int64_t now = kurer_time_unix();
    memset(b, 0, sizeof(*b));
    b->version = 1;
    b->serial = serial;
    b->role = role;
    snprintf(b->subject, sizeof(b->subject), "%s", subject);
    snprintf(b->display_name, sizeof(b->display_name), "test");
    b->clearance = KURER_LEVEL_RESTRICTED;
    b->not_before = now - DAY;
    b->not_after = now + 365 * DAY;
}

void make_ca(kurer_signing_key *rk, kurer_cert *root, kurer_signing_key *ak, kurer_cert *auth,
             const char *root_name)
{
    kurer_cert_body b;
    assert_int_equal(kurer_signing_key_generate(rk), 0);
    body_common(&b, KURER_ROLE_ROOT, root_name, 1);
    b.clearance = KURER_LEVEL_CONFIDENTIAL;
    memcpy(b.signing_key, rk->pk, 32);
    assert_int_equal(kurer_cert_sign(&b, rk, root), 0);
    assert_int_equal(kurer_signing_key_generate(ak), 0);
    body_common(&b, KURER_ROLE_AUTHORITY, "mof", 100);
    memcpy(b.signing_key, ak->pk, 32);
    assert_int_equal(kurer_cert_sign(&b, rk, auth), 0);
}

/* A device of user@mof under the main (or other) authority. */
void make_device(world *w, device *d, const char *user, uint32_t id, uint64_t serial, int other,
                 int expired, int wrong_key)
{
    kurer_cert_body b;
    memset(d, 0, sizeof(*d));
    assert_int_equal(kurer_noise_keypair(d->pk, d->sk), 0);
    body_common(&b, KURER_ROLE_DEVICE, user, serial);
    b.device_id = id;
    assert_int_equal(kurer_identity_generate(d->id_pub, d->id_priv), 0);
    memcpy(b.identity_key, d->id_pub, 33);
    memcpy(b.noise_key, d->pk, 32);
    if (wrong_key)
        b.noise_key[0] ^= 0x40;
    if (expired) {
        b.not_before = kurer_time_unix() - 10 * DAY;
        b.not_after = kurer_time_unix() - DAY;
    }
    assert_int_equal(
        kurer_cert_sign(&b, other ? &w->other_auth_key : &w->auth_key, &d->chain.certs[0]), 0);
    d->chain.certs[1] = other ? w->other_auth : w->auth;
    d->chain.n = 2;
    snprintf(d->addr.user, sizeof(d->addr.user), "%s", user);
    d->addr.device_id = id;
}

/* ---- the relay process -------------------------------------------------------------------- */

void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Starts the relay with up to 8 extra arguments; reads "listening" (and "metrics" when
 * --metrics is among them) from its stdout. */
int try_start_relay_v(world *w, const char *const *extra, int n_extra)
{
    char dir[300], root[300];
    snprintf(dir, sizeof(dir), "%s/relay", w->dir);
    snprintf(root, sizeof(root), "%s/root.crt", w->dir);
    const char *argv[24] = {KURER_RELAY_BIN, "run",    "--dir", dir,           "--listen",
                            "127.0.0.1:0",   "--root", root,    "--log-level", "debug"};
    int n = 10;
    for (int i = 0; i < n_extra && n < 22; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return try_start_relay_argv(w, argv);
}

int try_start_relay_argv(world *w, const char *const *argv)
{
    int pfd[2], with_metrics = 0;
    for (int i = 0; argv[i] != NULL; i++)
        if (strcmp(argv[i], "--metrics") == 0)
            with_metrics = 1;
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char log[300];
        snprintf(log, sizeof(log), "%s/relay.log", w->dir);
        int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(pfd[1], 1);
        if (lfd >= 0)
            dup2(lfd, 2);
        close(pfd[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    char line[256] = {0};
    size_t len = 0;
    uint64_t end = kurer_time_mono_ms() + 15000;
    int want_lines = (with_metrics ? 2 : 1) + (w->want_media ? 1 : 0);
    for (;;) {
        int lines = 0;
        for (size_t i = 0; i < len; i++)
            lines += line[i] == '\n';
        if (lines >= want_lines || len >= sizeof(line) - 1 || kurer_time_mono_ms() >= end)
            break;
        struct pollfd p = {pfd[0], POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t r = read(pfd[0], line + len, 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(pfd[0]);
    char *l = strstr(line, "listening 127.0.0.1:");
    char *nl = l != NULL ? strchr(l, '\n') : NULL;
    if (nl == NULL) {
        /* It did not start (a refused configuration, say): reap it; its reason is in the log. */
        int status;
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    *nl = '\0';
    assert_int_equal(kurer_net_parse_addr(l + strlen("listening "), &w->addr), 0);
    if (with_metrics) {
        char *m = strstr(nl + 1, "metrics ");
        assert_non_null(m);
        char *mnl = strchr(m, '\n');
        assert_non_null(mnl);
        *mnl = '\0';
        assert_int_equal(kurer_net_parse_addr(m + strlen("metrics "), &w->maddr), 0);
        nl = mnl;
    }
    if (w->want_media) { /* printed after the other addresses */
        char *m = strstr(nl + 1, "media ");
        assert_non_null(m);
        char *mnl = strchr(m, '\n');
        assert_non_null(mnl);
        *mnl = '\0';
        assert_int_equal(kurer_net_parse_addr(m + strlen("media "), &w->media), 0);
    }
    w->relay = pid;
    return 0;
}

void start_relay_v(world *w, const char *const *extra, int n_extra)
{
    assert_int_equal(try_start_relay_v(w, extra, n_extra), 0);
}

void start_relay(world *w, const char *extra1, const char *extra2)
{
    const char *extra[2] = {extra1, extra2};
    start_relay_v(w, extra, extra1 != NULL ? 2 : 0);
}

int stop_relay(world *w, int sig)
{
    int status = -1;
    if (w->relay <= 0)
        return -1;
    kill(w->relay, sig);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(w->relay, &status, WNOHANG) == w->relay)
            break;
        usleep(10000);
        if (i == 999) {
            kill(w->relay, SIGKILL);
            waitpid(w->relay, &status, 0);
        }
    }
    w->relay = 0;
    return status;
}

void init_relay(world *w)
{
    char cmd[600], path[300];
    snprintf(cmd, sizeof(cmd), "%s init --dir %s/relay > /dev/null", KURER_RELAY_BIN, w->dir);
    assert_int_equal(system(cmd), 0);
    uint8_t *data;
    size_t len;
    snprintf(path, sizeof(path), "%s/relay/relay.pub", w->dir);
    assert_int_equal(kurer_file_read(path, 200, &data, &len), 0);
    data[64] = '\0';
    assert_int_equal(kurer_hex_decode(w->relay_pk, 32, (char *)data), 0);
    free(data);
}

int setup(void **state)
{
    world *w = calloc(1, sizeof(*w));
    g_keep_pushes = 0;
    assert_int_equal(kurer_crypto_init(), 0);
    snprintf(w->dir, sizeof(w->dir), "/tmp/kurer-relay-test-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    make_ca(&w->root_key, &w->root, &w->auth_key, &w->auth, "dk");
    make_ca(&w->other_root_key, &w->other_root, &w->other_auth_key, &w->other_auth, "elsewhere");
    kurer_buf b;
    kurer_buf_init(&b, KURER_CERT_MAX);
    assert_int_equal(kurer_cert_encode(&w->root, &b), 0);
    char path[300];
    snprintf(path, sizeof(path), "%s/root.crt", w->dir);
    write_file(path, b.data, b.len);
    kurer_buf_release(&b);
    init_relay(w);
    *state = w;
    return 0;
}

int teardown(void **state)
{
    world *w = *state;
    char cmd[400];
    stop_relay(w, SIGKILL);
    kurer_signing_key_release(&w->root_key);
    kurer_signing_key_release(&w->auth_key);
    kurer_signing_key_release(&w->other_root_key);
    kurer_signing_key_release(&w->other_auth_key);
    /* KURER_TEST_KEEP=1 keeps the folder (the relay's log) for a look after a failure. */
    snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
    if (getenv("KURER_TEST_KEEP") != NULL)
        fprintf(stderr, "kept %s\n", w->dir);
    else if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", w->dir);
    free(w);
    return 0;
}

/* ---- a test client on net/ ---------------------------------------------------------------- */

static void cl_est(kurer_conn *c, const uint8_t *p, size_t n)
{
    client *cl = kurer_conn_data(c);
    assert_int_equal(kurer_handshake_accept_decode(p, n, &cl->acc), 0);
    cl->established = 1;
}

static void cl_rec(kurer_conn *c, uint8_t *p, size_t n)
{
    client *cl = kurer_conn_data(c);
    if (!g_keep_pushes) {
        kurer_server_frame f;
        if (kurer_server_frame_decode(p, n, &f) == 0) {
            int drop = f.request_id == 0 && (f.body == KURER_SERVER_PREKEYS_LOW ||
                                             f.body == KURER_SERVER_REVOCATION_INDEX);
            kurer_server_frame_release(&f);
            if (drop)
                return;
        }
    }
    assert_true(cl->qtail < QMAX);
    cl->q[cl->qtail] = malloc(n);
    memcpy(cl->q[cl->qtail], p, n);
    cl->qlen[cl->qtail++] = n;
}

static void cl_close(kurer_conn *c, int err)
{
    client *cl = kurer_conn_data(c);
    cl->closed = 1;
    cl->close_err = err;
    cl->c = NULL;
}

const kurer_conn_cbs cl_cbs = {NULL, cl_est, cl_rec, NULL, NULL, cl_close};

void pump(client *cl, const int *flag, uint64_t ms)
{
    uint64_t end = kurer_time_mono_ms() + ms;
    while ((flag == NULL || !*flag) && kurer_time_mono_ms() < end) {
        uv_run(&cl->loop, UV_RUN_NOWAIT);
        usleep(500);
    }
}

/* Removes the queued frame answering request id (wherever it is in the queue: pushes that came
 * before or after it keep their order) into *f; 1 if found, else 0. */
int cl_take(client *cl, uint64_t id, kurer_server_frame *f)
{
    for (size_t i = cl->qhead; i < cl->qtail; i++) {
        kurer_server_frame g;
        if (kurer_server_frame_decode(cl->q[i], cl->qlen[i], &g) != 0)
            continue;
        if (g.request_id != id) {
            kurer_server_frame_release(&g);
            continue;
        }
        free(cl->q[i]);
        memmove(&cl->q[i], &cl->q[i + 1], (cl->qtail - i - 1) * sizeof(cl->q[0]));
        memmove(&cl->qlen[i], &cl->qlen[i + 1], (cl->qtail - i - 1) * sizeof(cl->qlen[0]));
        cl->qtail--;
        if (f != NULL)
            *f = g;
        else
            kurer_server_frame_release(&g);
        return 1;
    }
    return 0;
}

/* The relay treats an IK connection as the device's only once the client's first transport
 * record has decrypted (spec of issue 9, defect 3): send a Ping right after the handshake and
 * swallow its answer (a Pong, or an Error such as ERATE once pings are rate limited per device).
 * Pushes around it stay queued in order. If the relay closes first, nothing is swallowed. */
void cl_confirm(client *cl)
{
    kurer_client_frame p;
    memset(&p, 0, sizeof(p));
    p.body = KURER_CLIENT_PING;
    p.u.ping.client_time = kurer_time_unix() * 1000;
    uint64_t id = cl_send(cl, &p);
    uint64_t end = kurer_time_mono_ms() + 10000;
    while (!cl->closed && kurer_time_mono_ms() < end) {
        if (cl_take(cl, id, NULL))
            return;
        uv_run(&cl->loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    (void)cl_take(cl, id, NULL);
}

/* Connects and runs the handshake; returns 0 if accepted, else the relay's error code (or
 * KURER_ECLOSED if it just closed). */
int cl_connect(world *w, client *cl, const device *d)
{
    kurer_buf b;
    kurer_handshake_init hi = {0};
    memset(cl, 0, sizeof(*cl));
    cl->next_req = 1;
    assert_int_equal(uv_loop_init(&cl->loop), 0);
    hi.protocol_version = KURER_PROTOCOL_VERSION;
    hi.chain = d->chain;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_handshake_init_encode(&hi, &b), 0);
    assert_int_equal(kurer_conn_connect(&cl->c, &cl->loop, (struct sockaddr *)&w->addr, NULL,
                                        &cl_cbs, KURER_NOISE_IK, d->sk, w->relay_pk, b.data, b.len,
                                        cl),
                     0);
    kurer_buf_release(&b);
    pump(cl, &cl->established, 10000);
    if (!cl->established) {
        pump(cl, &cl->closed, 5000);
        return KURER_ECLOSED;
    }
    if (cl->acc.has_error) {
        pump(cl, &cl->closed, 5000);
        assert_true(cl->closed);
        return cl->acc.error_code;
    }
    cl_confirm(cl);
    return 0;
}

/* An unauthenticated Noise NK session (what kurer-admin publish opens). */
int cl_connect_nk(world *w, client *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->next_req = 1;
    assert_int_equal(uv_loop_init(&cl->loop), 0);
    assert_int_equal(kurer_conn_connect(&cl->c, &cl->loop, (struct sockaddr *)&w->addr, NULL,
                                        &cl_cbs, KURER_NOISE_NK, NULL, w->relay_pk, NULL, 0, cl),
                     0);
    pump(cl, &cl->established, 10000);
    if (!cl->established) {
        pump(cl, &cl->closed, 5000);
        return KURER_ECLOSED;
    }
    return cl->acc.has_error ? cl->acc.error_code : 0;
}

void cl_free(client *cl)
{
    if (cl->c != NULL)
        kurer_conn_close(cl->c, 0);
    pump(cl, &cl->closed, 5000);
    uv_run(&cl->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&cl->loop), 0);
    for (size_t i = cl->qhead; i < cl->qtail; i++)
        free(cl->q[i]);
}

uint64_t cl_send(client *cl, kurer_client_frame *f)
{
    kurer_buf b;
    f->request_id = cl->next_req++;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_client_frame_encode(f, &b), 0);
    assert_non_null(cl->c);
    assert_int_equal(kurer_conn_send(cl->c, b.data, b.len), 0);
    kurer_buf_release(&b);
    uv_run(&cl->loop, UV_RUN_NOWAIT);
    return f->request_id;
}

/* The next server frame (decoded into *f; release it), or 0 if none came within ms. */
int cl_next(client *cl, kurer_server_frame *f, uint64_t ms)
{
    uint64_t end = kurer_time_mono_ms() + ms;
    while (cl->qhead == cl->qtail && !cl->closed && kurer_time_mono_ms() < end) {
        uv_run(&cl->loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    if (cl->qhead == cl->qtail)
        return 0;
    size_t i = cl->qhead++;
    assert_int_equal(kurer_server_frame_decode(cl->q[i], cl->qlen[i], f), 0);
    free(cl->q[i]);
    return 1;
}

/* Waits for the reply to request id (skipping nothing else: pushes are returned too). */
void expect_body(client *cl, kurer_server_frame *f, kurer_server_body body)
{
    assert_int_equal(cl_next(cl, f, 10000), 1);
    if (f->body != body)
        fprintf(stderr, "expected body %d, got %d (code %d)\n", body, f->body,
                f->body == KURER_SERVER_ERROR ? f->u.error.code : 0);
    assert_int_equal(f->body, body);
}

void make_env(kurer_envelope *e, const device *to, uint32_t n, uint8_t *content)
{
    memset(e, 0, sizeof(*e));
    kurer_random(e->id, sizeof(e->id));
    e->to = to->addr;
    e->type = KURER_ENVELOPE_MESSAGE;
    memset(content, (int)n, 40);
    memcpy(content, &n, sizeof(n));
    e->content = content;
    e->content_len = 40;
}

/* Sends one envelope to `to`; returns the send status. */
uint64_t send_start(client *cl, const device *to, uint32_t n, uint8_t id_out[16])
{
    kurer_client_frame f;
    kurer_envelope e;
    uint8_t content[40];
    memset(&f, 0, sizeof(f));
    make_env(&e, to, n, content);
    if (id_out != NULL)
        memcpy(id_out, e.id, 16);
    f.body = KURER_CLIENT_SEND;
    f.u.send.envelopes = &e;
    f.u.send.n = 1;
    return cl_send(cl, &f);
}

int send_wait(client *cl, uint64_t id, uint64_t ms)
{
    kurer_server_frame r;
    for (;;) {
        if (cl_next(cl, &r, ms) != 1)
            return -1;
        if (r.request_id == id)
            break;
        kurer_server_frame_release(&r);
    }
    int status =
        r.body == KURER_SERVER_SEND_RESULT ? (int)r.u.send_result.users[0].status : r.u.error.code;
    kurer_server_frame_release(&r);
    return status;
}

int send_one(client *cl, const device *to, uint32_t n, uint8_t id_out[16])
{
    int status = send_wait(cl, send_start(cl, to, n, id_out), 10000);
    assert_int_not_equal(status, -1); /* answered within 10 s */
    return status;
}

/* Raw TCP peers: garbage, an oversize record, a stalled handshake. Each loses its connection;
 * a device connected meanwhile keeps working. */
int raw_connect(world *w)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&w->addr, sizeof(struct sockaddr_in)), 0);
    return fd;
}

int raw_closed_within(int fd, int ms)
{
    char buf[256];
    uint64_t end = kurer_time_mono_ms() + (uint64_t)ms;
    while (kurer_time_mono_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0)
                return 1;
        }
    }
    return 0;
}

/* Builds an upload of a signed prekey (signed by d's identity key, or corrupted) and n one-time
 * prekeys with ids first..first+n-1. */
void make_upload(const device *d, kurer_prekey_upload *u, kurer_one_time_prekey *otk,
                 uint32_t spk_id, uint32_t first, size_t n, int bad_sig)
{
    memset(u, 0, sizeof(*u));
    u->registration_id = 77;
    u->signed_prekey.id = spk_id;
    u->signed_prekey.public_key[0] = 0x05;
    kurer_random(u->signed_prekey.public_key + 1, 32);
    u->signed_prekey.created_at = kurer_time_unix();
    assert_int_equal(kurer_identity_sign(d->id_priv, u->signed_prekey.public_key, 33,
                                         u->signed_prekey.signature),
                     0);
    if (bad_sig)
        u->signed_prekey.signature[5] ^= 1;
    for (size_t i = 0; i < n; i++) {
        otk[i].id = first + (uint32_t)i;
        otk[i].public_key[0] = 0x05;
        kurer_random(otk[i].public_key + 1, 32);
    }
    u->one_time = otk;
    u->n_one_time = n;
}

/* Sends an upload and returns 0 for Ok or the error code. Pushes before the answer are
 * skipped. */
int upload(client *cl, const kurer_prekey_upload *u)
{
    kurer_client_frame q;
    kurer_server_frame r;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_PREKEYS;
    q.u.prekeys = *u;
    uint64_t id = cl_send(cl, &q);
    for (;;) {
        assert_int_equal(cl_next(cl, &r, 10000), 1);
        if (r.request_id == id)
            break;
        kurer_server_frame_release(&r);
    }
    int rc = r.body == KURER_SERVER_OK ? 0 : r.body == KURER_SERVER_ERROR ? r.u.error.code : 1;
    kurer_server_frame_release(&r);
    return rc;
}

uint64_t send_fetch(client *cl, const char *user, const uint32_t *ids, size_t n)
{
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_FETCH_PREKEYS;
    snprintf(q.u.fetch_prekeys.user, sizeof(q.u.fetch_prekeys.user), "%s", user);
    q.u.fetch_prekeys.device_ids = ids;
    q.u.fetch_prekeys.n_device_ids = n;
    return cl_send(cl, &q);
}

/* Waits for the answer to request id (pushes skipped); the caller releases *r. */
void wait_answer(client *cl, uint64_t id, kurer_server_frame *r)
{
    for (;;) {
        assert_int_equal(cl_next(cl, r, 10000), 1);
        if (r->request_id == id)
            return;
        kurer_server_frame_release(r);
    }
}

/* An Ack of a seq that does not exist: answered after everything submitted to the store
 * before it, so it marks "no more pushes from earlier store work". */
uint64_t store_barrier(client *cl)
{
    static uint64_t bogus = 999999999;
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_ACK;
    q.u.ack.seqs = &bogus;
    q.u.ack.n = 1;
    return cl_send(cl, &q);
}

/* A list of the main authority, version v, revoking the given serials; written to path (if not
 * NULL) and returned encoded in *out (release it). */
void make_crl(world *w, uint64_t v, const uint64_t *serials, size_t n, const char *path,
              kurer_buf *out)
{
    kurer_crl crl;
    memset(&crl, 0, sizeof(crl));
    crl.version = v;
    crl.issued_at = kurer_time_unix();
    crl.next_update = crl.issued_at + DAY;
    crl.revoked = calloc(n ? n : 1, sizeof(*crl.revoked));
    for (size_t i = 0; i < n; i++) {
        crl.revoked[i].serial = serials[i];
        crl.revoked[i].revoked_at = crl.issued_at;
        crl.revoked[i].reason = KURER_REASON_DEVICE_LOST;
    }
    crl.n_revoked = n;
    assert_int_equal(kurer_crl_sign(&crl, &w->auth_key, &w->auth), 0);
    kurer_buf_init(out, KURER_CRL_BYTES_MAX);
    assert_int_equal(kurer_crl_encode(&crl, out), 0);
    kurer_crl_release(&crl);
    if (path != NULL)
        write_file(path, out->data, out->len);
}

/* Sends a RevocationUpload of the encoded list; 0 for Ok, else the relay's code. */
int upload_crl(client *cl, const kurer_buf *list)
{
    kurer_client_frame q;
    kurer_server_frame r;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_REVOCATION;
    assert_int_equal(kurer_crl_decode(list->data, list->len, &q.u.revocation), 0);
    uint64_t id = cl_send(cl, &q);
    kurer_crl_release(&q.u.revocation);
    wait_answer(cl, id, &r);
    int rc = r.body == KURER_SERVER_OK ? 0 : r.body == KURER_SERVER_ERROR ? r.u.error.code : 1;
    kurer_server_frame_release(&r);
    return rc;
}

/* Waits for the Error push (id 0) that announces a close, and for the close. */
void expect_kicked(client *cl, int code)
{
    kurer_server_frame f;
    for (;;) {
        assert_int_equal(cl_next(cl, &f, 10000), 1);
        if (f.body == KURER_SERVER_ERROR && f.request_id == 0)
            break;
        kurer_server_frame_release(&f);
    }
    assert_int_equal(f.u.error.code, code);
    kurer_server_frame_release(&f);
    pump(cl, &cl->closed, 5000);
    assert_true(cl->closed);
}

/* The metrics page over a plain TCP connection (the relay answers whatever is asked). */
char *scrape(world *w)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&w->maddr, sizeof(struct sockaddr_in)), 0);
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    size_t cap = 65536, len = 0;
    char *page = calloc(1, cap);
    uint64_t end = kurer_time_mono_ms() + 5000;
    while (len < cap - 1 && kurer_time_mono_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, page + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    assert_non_null(strstr(page, "HTTP/1.0 200 OK"));
    return page;
}

/* The value of one sample (name with labels, exactly as printed); 0 if absent (the relay prints
 * rejection counters only once they are non-zero). */
uint64_t metric(const char *page, const char *name)
{
    char key[200];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(page, key);
    return p == NULL ? 0 : strtoull(p + strlen(key), NULL, 10);
}

/* The page's histograms (not last-value gauges: kurer_send_accept_seconds with `accepted` sends,
 * kurer_store_commit_seconds with every commit) and the build and process lines. */
void metrics_check_shapes(const char *page, uint64_t accepted, uint64_t min_commits)
{
    assert_true(metric(page, "kurer_store_commits_total") >= min_commits);
    assert_non_null(strstr(page, "# TYPE kurer_send_accept_seconds histogram\n"));
    assert_int_equal(metric(page, "kurer_send_accept_seconds_count"), accepted);
    assert_int_equal(metric(page, "kurer_send_accept_seconds_bucket{le=\"+Inf\"}"), accepted);
    assert_int_equal(metric(page, "kurer_store_commit_seconds_count"),
                     metric(page, "kurer_store_commits_total"));
    assert_int_equal(metric(page, "kurer_store_commit_seconds_bucket{le=\"10\"}"),
                     metric(page, "kurer_store_commit_seconds_count"));
    assert_null(strstr(page, "kurer_store_commit_latency_us"));
    /* The build and the process. */
    assert_non_null(strstr(page, "kurer_build_info{version=\""));
    assert_true(metric(page, "process_resident_memory_bytes") > 1000000);
    assert_true(metric(page, "process_open_fds") >= 5);
    assert_non_null(strstr(page, "# TYPE process_cpu_seconds_total counter\n"));
}

uint64_t metric_now(world *w, const char *name)
{
    char *page = scrape(w);
    uint64_t v = metric(page, name);
    free(page);
    return v;
}
