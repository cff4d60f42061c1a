/* The catalogue of hostile inputs (issue 9): a client of our own that speaks the relay protocol
 * and misbehaves on purpose, against a real kurer-relay (the ASan build in `make test`).
 *
 * Four groups, one relay each (configured by a relay.conf with the limits a group needs low):
 *   prehandshake  raw TCP peers and raw Noise initiators before any authentication
 *   auth          IK and NK handshakes that must be refused (or not trusted yet)
 *   after         authenticated (and NK) peers sending frames with bad fields, over limits
 *   fuzz          seeded mutations of valid frames, handshake payloads and records
 * Every case asserts the exact typed error (an Error frame's code, a HandshakeAccept error, or
 * the close) and the metrics counter that must move, and afterwards that a legitimate device
 * still sends one envelope to another and gets it delivered (see run_case).
 *
 * The expectations are those of docs/protocol.md, docs/relay.md and the issue 9 spec (relay
 * behaviour after the fixes). Behaviour the relay does not implement yet fails: that is what
 * these cases are for. Config keys a relay does not know are dropped (with a note on stderr)
 * so that the rest of a group still runs.
 *
 * Usage: test_hostile GROUP [CASE-SUBSTRING]; HOSTILE_SEED=N changes the fuzz seed (printed),
 * HOSTILE_FUZZ_N=N the number of mutations per fuzz case. Loopback only; every wait bounded. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "relay_harness.h"

enum { G_PRE, G_AUTH, G_AFTER, G_FUZZ, G_COUNT };
static const char *const group_names[G_COUNT] = {"prehandshake", "auth", "after", "fuzz"};

typedef struct hcase {
    const char *name;
    int group;
    void (*fn)(void);
} hcase;

/* ---- the group's world -------------------------------------------------------------------- */

static world *W;
static int g_group;
static device *g_l1, *g_l2; /* the legitimate pair of run_case's round trip */
static uint64_t g_serial = 5000;
static uint64_t g_crl_version; /* the newest list version of the main authority uploaded */
static uint32_t g_round;       /* round trips so far */
static int g_uniq;

#define NDEV 400
static device g_devs[NDEV];
static size_t g_ndev;

/* A fresh user name "base-N@mof" (a ring of buffers: valid for the next 15 calls). */
static const char *uname_new(const char *base)
{
    static char ring[16][64];
    char *s = ring[g_uniq % 16];
    snprintf(s, 64, "%s-%d@mof", base, g_uniq++);
    return s;
}

static device *dev_slot(void)
{
    assert_true(g_ndev < NDEV);
    return &g_devs[g_ndev++];
}

/* A valid device of user/id under the main authority. */
static device *dev_new(const char *user, uint32_t id)
{
    device *d = dev_slot();
    make_device(W, d, user, id, g_serial++, 0, 0, 0);
    return d;
}

typedef struct devopt {
    int64_t not_before, not_after; /* 0: body_common's */
    kurer_level clearance;         /* 0: RESTRICTED */
    const char *display;           /* NULL: "test" */
    int by_root;                   /* signed by the root key (not an authority) */
    int wrong_key;                 /* the certificate names another noise key */
    int bad_sig;                   /* the signature does not verify */
    const kurer_signing_key *ikey; /* issuer (default: the main authority) */
    const kurer_cert *icert;
} devopt;

static device *dev_opt(const char *user, uint32_t id, const devopt *o)
{
    device *d = dev_slot();
    kurer_cert_body b;
    memset(d, 0, sizeof(*d));
    assert_int_equal(kurer_noise_keypair(d->pk, d->sk), 0);
    body_common(&b, KURER_ROLE_DEVICE, user, g_serial++);
    b.device_id = id;
    assert_int_equal(kurer_identity_generate(d->id_pub, d->id_priv), 0);
    memcpy(b.identity_key, d->id_pub, 33);
    memcpy(b.noise_key, d->pk, 32);
    if (o->wrong_key)
        b.noise_key[0] ^= 0x40;
    if (o->not_before != 0)
        b.not_before = o->not_before;
    if (o->not_after != 0)
        b.not_after = o->not_after;
    if (o->clearance != 0)
        b.clearance = o->clearance;
    if (o->display != NULL)
        snprintf(b.display_name, sizeof(b.display_name), "%s", o->display);
    const kurer_signing_key *k = o->by_root ? &W->root_key : o->ikey ? o->ikey : &W->auth_key;
    const kurer_cert *ic = o->icert != NULL ? o->icert : &W->auth;
    assert_int_equal(kurer_cert_sign(&b, k, &d->chain.certs[0]), 0);
    if (o->bad_sig)
        d->chain.certs[0].signature[7] ^= 1;
    d->chain.certs[1] = *ic;
    d->chain.n = 2;
    snprintf(d->addr.user, sizeof(d->addr.user), "%s", user);
    d->addr.device_id = id;
    return d;
}

/* An authority "mof" under the main root with its own key (validity and display name given). */
static void authority_new(kurer_signing_key *k, kurer_cert *c, int64_t nb, int64_t na,
                          const char *display)
{
    kurer_cert_body b;
    assert_int_equal(kurer_signing_key_generate(k), 0);
    body_common(&b, KURER_ROLE_AUTHORITY, "mof", g_serial++);
    if (nb != 0)
        b.not_before = nb;
    if (na != 0)
        b.not_after = na;
    if (display != NULL)
        snprintf(b.display_name, sizeof(b.display_name), "%s", display);
    memcpy(b.signing_key, k->pk, 32);
    assert_int_equal(kurer_cert_sign(&b, &W->root_key, c), 0);
}

/* ---- resources a case opens: closed after it, whether it passed or not -------------------- */

typedef struct rawc rawc;
static void rawc_free(rawc *c);

#define NTRACK 512
static int g_fds[NTRACK];
static size_t g_nfds;
static client *g_cls[NTRACK];
static size_t g_ncls;
static rawc *g_raws[NTRACK];
static size_t g_nraws;
static void *g_mem[NTRACK];
static size_t g_nmem;

static void track_mem(void *p)
{
    assert_true(g_nmem < NTRACK);
    g_mem[g_nmem++] = p;
}

static void fd_close(int fd)
{
    for (size_t i = 0; i < g_nfds; i++)
        if (g_fds[i] == fd) {
            g_fds[i] = g_fds[--g_nfds];
            close(fd);
            return;
        }
}

static client *hc_new(void)
{
    client *cl = calloc(1, sizeof(*cl));
    assert_non_null(cl);
    assert_true(g_ncls < NTRACK);
    g_cls[g_ncls++] = cl;
    return cl;
}

/* Closes and frees a client from hc_new now. */
static void hc_free(client *cl)
{
    for (size_t i = 0; i < g_ncls; i++)
        if (g_cls[i] == cl) {
            g_cls[i] = g_cls[--g_ncls];
            cl_free(cl);
            free(cl);
            return;
        }
}

/* A client from hc_new, connected as d (asserted). */
static client *hc_connect(const device *d)
{
    client *cl = hc_new();
    int rc = cl_connect(W, cl, d);
    if (rc != 0)
        fail_msg("%s/%u refused: %s", d->addr.user, d->addr.device_id, kurer_err_name(rc));
    return cl;
}

static void cleanup_tracked(void)
{
    while (g_ncls > 0)
        hc_free(g_cls[g_ncls - 1]);
    while (g_nraws > 0)
        rawc_free(g_raws[g_nraws - 1]);
    while (g_nfds > 0)
        fd_close(g_fds[g_nfds - 1]);
    while (g_nmem > 0)
        free(g_mem[--g_nmem]);
}

/* ---- metrics and logs ---------------------------------------------------------------------- */

typedef struct snap {
    char *page;
} snap;

static snap snap_take(void)
{
    snap s = {scrape(W)};
    track_mem(s.page);
    return s;
}

/* "kurer_rejections_total{reason="NAME"}" for an error code (a ring of buffers). */
static const char *REJ(int code)
{
    static char ring[8][96];
    static int k;
    char *s = ring[k++ % 8];
    snprintf(s, 96, "kurer_rejections_total{reason=\"%s\"}", kurer_err_name(code));
    return s;
}

static uint64_t delta_now(const snap *s, const char *name)
{
    return metric_now(W, name) - metric(s->page, name);
}

/* The counter `name` must have moved by exactly want since s (waits up to 3 s for it to get
 * there: some are counted when a close completes). */
static void expect_delta(const snap *s, const char *name, uint64_t want)
{
    uint64_t before = metric(s->page, name), now = before;
    uint64_t end = kurer_time_mono_ms() + 3000;
    for (;;) {
        now = metric_now(W, name);
        if (now - before >= want || kurer_time_mono_ms() > end)
            break;
        usleep(20000);
    }
    if (now - before != want)
        fail_msg("%s moved by %llu, expected %llu", name, (unsigned long long)(now - before),
                 (unsigned long long)want);
}

/* The gauge `name` must reach want within ms. */
static void expect_gauge(const char *name, uint64_t want, uint64_t ms)
{
    uint64_t end = kurer_time_mono_ms() + ms, v = 0;
    while ((v = metric_now(W, name)) != want && kurer_time_mono_ms() < end)
        usleep(20000);
    if (v != want)
        fail_msg("%s is %llu, expected %llu", name, (unsigned long long)v,
                 (unsigned long long)want);
}

/* Lines of the relay's log holding both a and b. */
static int log_count(const char *a, const char *b)
{
    char path[300], line[2048];
    int n = 0;
    snprintf(path, sizeof(path), "%s/relay.log", W->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL);
    fclose(f);
    return n;
}

/* ---- a tiny protobuf writer: frames the encoders refuse to make ----------------------------- */

#define PB_MAX (KURER_FRAME_MAX + 4096)

static void pb_raw(kurer_buf *b, const void *p, size_t n)
{
    assert_int_equal(kurer_buf_put(b, p, n), 0);
}

static void pb_varint(kurer_buf *b, uint64_t v)
{
    assert_int_equal(kurer_buf_put_varint(b, v), 0);
}

static void pb_u(kurer_buf *b, uint32_t field, uint64_t v)
{
    pb_varint(b, (uint64_t)field << 3);
    pb_varint(b, v);
}

static void pb_s(kurer_buf *b, uint32_t field, const void *p, size_t n)
{
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, n);
    if (n > 0)
        pb_raw(b, p, n);
}

static void pb_m(kurer_buf *b, uint32_t field, const kurer_buf *inner)
{
    pb_s(b, field, inner->data, inner->len);
}

static void pb_str(kurer_buf *b, uint32_t field, const char *s)
{
    pb_s(b, field, s, strlen(s));
}

/* ClientFrame{request_id, body field = inner} (request_id 0: left out, as proto3 does). */
static void pb_frame(kurer_buf *out, uint64_t request_id, uint32_t body, const kurer_buf *inner)
{
    kurer_buf_init(out, PB_MAX);
    if (request_id != 0)
        pb_u(out, 1, request_id);
    if (body != 0 && inner != NULL)
        pb_m(out, body, inner);
    else if (body != 0)
        pb_s(out, body, NULL, 0);
}

static void pb_empty(kurer_buf *b)
{
    kurer_buf_init(b, PB_MAX);
}

/* An Envelope: id of id_len bytes, to user/dev, type, content_len bytes of content. */
static void pb_envelope(kurer_buf *out, size_t id_len, const char *user, uint32_t dev,
                        uint32_t type, size_t content_len)
{
    static uint8_t content[KURER_FRAME_MAX];
    uint8_t id[32];
    kurer_buf to;
    kurer_random(id, sizeof(id));
    memset(content, 0x5a, content_len < sizeof(content) ? content_len : sizeof(content));
    kurer_buf_init(out, PB_MAX);
    kurer_buf_init(&to, 512);
    pb_str(&to, 1, user);
    if (dev != 0)
        pb_u(&to, 2, dev);
    if (id_len > 0)
        pb_s(out, 1, id, id_len);
    pb_m(out, 2, &to);
    if (type != 0)
        pb_u(out, 4, type);
    if (content_len > 0)
        pb_s(out, 5, content, content_len);
    kurer_buf_release(&to);
}

/* A SignedCertificate message of c. */
static void pb_cert(kurer_buf *out, const kurer_cert *c)
{
    kurer_buf_init(out, KURER_CERT_MAX + 64);
    pb_s(out, 1, c->tbs, c->tbs_len);
    pb_s(out, 2, c->signature, 64);
}

/* A HandshakeInit: version (0: left out), then n certificates as its chain (n 0: no chain),
 * the encoded payload cut to `cut` bytes if cut != 0. */
static void pb_hs_init(kurer_buf *out, uint32_t version, const kurer_cert *const *certs, size_t n,
                       size_t cut)
{
    kurer_buf chain, c;
    kurer_buf_init(out, PB_MAX);
    kurer_buf_init(&chain, PB_MAX);
    for (size_t i = 0; i < n; i++) {
        pb_cert(&c, certs[i]);
        pb_m(&chain, 1, &c);
        kurer_buf_release(&c);
    }
    if (version != 0)
        pb_u(out, 1, version);
    if (n > 0)
        pb_m(out, 2, &chain);
    kurer_buf_release(&chain);
    if (cut != 0 && cut < out->len)
        out->len = cut;
}

/* The HandshakeInit a device sends. */
static void hs_init_of(kurer_buf *out, const device *d)
{
    kurer_handshake_init hi = {0};
    hi.protocol_version = KURER_PROTOCOL_VERSION;
    hi.chain = d->chain;
    kurer_buf_init(out, KURER_FRAME_MAX);
    assert_int_equal(kurer_handshake_init_encode(&hi, out), 0);
}

/* ---- raw TCP ------------------------------------------------------------------------------- */

/* A TCP connection to the relay from source address src (NULL: any; loopback 127.0.0.0/8 lets
 * a test be many addresses). */
static int tcp_from(const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_true(g_nfds < NTRACK);
    g_fds[g_nfds++] = fd;
    if (src != NULL) {
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, src, &a.sin_addr), 1);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    }
    assert_int_equal(connect(fd, (struct sockaddr *)&W->addr, sizeof(struct sockaddr_in)), 0);
    return fd;
}

/* Writes all of p (the peer may have closed: then -1). */
static int tcp_write(int fd, const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t w = send(fd, q, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

static int tcp_record(int fd, const void *p, size_t n)
{
    uint8_t h[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    return tcp_write(fd, h, 2) != 0 ? -1 : tcp_write(fd, p, n);
}

/* Reads exactly n bytes before `end`: 0, -1 closed, -2 timed out. */
static int tcp_read_full(int fd, uint8_t *p, size_t n, uint64_t end)
{
    size_t got = 0;
    while (got < n) {
        uint64_t now = kurer_time_mono_ms();
        if (now >= end)
            return -2;
        struct pollfd pf = {fd, POLLIN, 0};
        int pr = poll(&pf, 1, (int)(end - now));
        if (pr <= 0)
            continue;
        ssize_t r = read(fd, p + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* One record into buf (cap >= 65535): its length, -1 closed, -2 timed out. */
static int tcp_read_record(int fd, uint8_t *buf, int ms)
{
    uint8_t h[2];
    uint64_t end = kurer_time_mono_ms() + (uint64_t)ms;
    int rc = tcp_read_full(fd, h, 2, end);
    if (rc != 0)
        return rc;
    size_t n = (size_t)h[0] << 8 | h[1];
    rc = tcp_read_full(fd, buf, n, end);
    return rc != 0 ? rc : (int)n;
}

/* Milliseconds until the peer closes fd (reading and dropping what it sends), or -1 if it is
 * still open after ms. */
static int64_t tcp_close_ms(int fd, int ms)
{
    uint64_t t0 = kurer_time_mono_ms();
    return raw_closed_within(fd, ms) ? (int64_t)(kurer_time_mono_ms() - t0) : -1;
}

static void random_bytes(uint8_t *p, size_t n)
{
    kurer_random(p, n);
}

/* ---- a raw Noise initiator: exact control of every byte ---------------------------------- */

struct rawc {
    int fd;
    kurer_noise_hs *hs;
    kurer_noise_cipher tx, rx;
    int open;
    kurer_handshake_accept acc;
    uint8_t m1[KURER_NOISE_MAX_MSG];
    size_t m1_len;
    uint64_t next_req;
    uint8_t rec[KURER_NOISE_MAX_MSG + 2];
};

static rawc *rawc_new(void)
{
    rawc *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->fd = -1;
    c->next_req = 1;
    assert_true(g_nraws < NTRACK);
    g_raws[g_nraws++] = c;
    return c;
}

static void rawc_free(rawc *c)
{
    for (size_t i = 0; i < g_nraws; i++)
        if (g_raws[i] == c) {
            g_raws[i] = g_raws[--g_nraws];
            kurer_noise_hs_free(c->hs);
            kurer_noise_cipher_wipe(&c->tx);
            kurer_noise_cipher_wipe(&c->rx);
            if (c->fd >= 0)
                fd_close(c->fd);
            free(c);
            return;
        }
}

/* Connects from src and writes handshake message 1 of pattern p (IK: with our static sk) with
 * the payload, under prologue (NULL: "kurer/1") to the relay key rpk (NULL: the relay's). The
 * message is kept in c->m1 (for replays). write: 0 to only build it. */
static void rawc_start(rawc *c, const char *src, kurer_noise_pattern p, const uint8_t *sk,
                       const uint8_t *payload, size_t n, const char *prologue, const uint8_t *rpk,
                       int write)
{
    kurer_buf m;
    const char *pro = prologue != NULL ? prologue : KURER_NET_PROLOGUE;
    assert_int_equal(kurer_noise_hs_new(&c->hs, p, 1, (const uint8_t *)pro, strlen(pro),
                                        p == KURER_NOISE_IK ? sk : NULL,
                                        rpk != NULL ? rpk : W->relay_pk),
                     0);
    kurer_buf_init(&m, KURER_NOISE_MAX_MSG);
    assert_int_equal(kurer_noise_hs_write_message(c->hs, payload, n, &m), 0);
    memcpy(c->m1, m.data, m.len);
    c->m1_len = m.len;
    kurer_buf_release(&m);
    c->fd = tcp_from(src);
    if (write)
        assert_int_equal(tcp_record(c->fd, c->m1, c->m1_len), 0);
}

/* Reads message 2: 0 if accepted (transport open), the relay's error code if refused,
 * KURER_ECLOSED if it closed without one, KURER_ETIMEOUT if nothing came within ms. */
static int rawc_finish(rawc *c, int ms)
{
    kurer_buf pl;
    int n = tcp_read_record(c->fd, c->rec, ms);
    if (n == -1)
        return KURER_ECLOSED;
    if (n < 0)
        return KURER_ETIMEOUT;
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    assert_int_equal(kurer_noise_hs_read_message(c->hs, c->rec, (size_t)n, &pl), 0);
    assert_int_equal(kurer_noise_hs_split(c->hs, &c->tx, &c->rx), 0);
    assert_int_equal(kurer_handshake_accept_decode(pl.data, pl.len, &c->acc), 0);
    kurer_buf_release(&pl);
    c->open = !c->acc.has_error;
    return c->acc.has_error ? c->acc.error_code : 0;
}

/* An IK session of device d from src with its own HandshakeInit: 0 or the refusal. */
static int rawc_ik(rawc *c, const char *src, const device *d)
{
    kurer_buf hi;
    hs_init_of(&hi, d);
    rawc_start(c, src, KURER_NOISE_IK, d->sk, hi.data, hi.len, NULL, NULL, 1);
    kurer_buf_release(&hi);
    return rawc_finish(c, 5000);
}

/* The encrypted record (with its length prefix) of plaintext p, into out. */
static void rawc_seal(rawc *c, const uint8_t *p, size_t n, kurer_buf *out)
{
    kurer_buf_init(out, KURER_NOISE_MAX_MSG + 2);
    assert_int_equal(kurer_buf_put_u16be(out, (uint16_t)(n + KURER_NOISE_TAGLEN)), 0);
    assert_int_equal(kurer_noise_encrypt(&c->tx, NULL, 0, p, n, out), 0);
}

static int rawc_send(rawc *c, const uint8_t *p, size_t n)
{
    kurer_buf r;
    rawc_seal(c, p, n, &r);
    int rc = tcp_write(c->fd, r.data, r.len);
    kurer_buf_release(&r);
    return rc;
}

static uint64_t rawc_send_frame(rawc *c, kurer_client_frame *f)
{
    kurer_buf b;
    f->request_id = 100000 + c->next_req++;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_client_frame_encode(f, &b), 0);
    assert_int_equal(rawc_send(c, b.data, b.len), 0);
    kurer_buf_release(&b);
    return f->request_id;
}

/* The next frame: 1 (release *f), 0 none within ms, -1 closed. */
static int rawc_recv(rawc *c, kurer_server_frame *f, int ms)
{
    kurer_buf pt;
    int n = tcp_read_record(c->fd, c->rec, ms);
    if (n == -1)
        return -1;
    if (n < 0)
        return 0;
    kurer_buf_init(&pt, KURER_NOISE_MAX_MSG);
    assert_int_equal(kurer_noise_decrypt(&c->rx, NULL, 0, c->rec, (size_t)n, &pt), 0);
    assert_int_equal(kurer_server_frame_decode(pt.data, pt.len, f), 0);
    kurer_buf_release(&pt);
    return 1;
}

static uint64_t rawc_ping(rawc *c)
{
    kurer_client_frame p;
    memset(&p, 0, sizeof(p));
    p.body = KURER_CLIENT_PING;
    p.u.ping.client_time = 1;
    return rawc_send_frame(c, &p);
}

/* Waits for the answer to id (pushes skipped): its body, its error code in *code. -1 closed. */
static int rawc_answer(rawc *c, uint64_t id, int *code, int ms)
{
    kurer_server_frame f;
    uint64_t end = kurer_time_mono_ms() + (uint64_t)ms;
    while (kurer_time_mono_ms() < end) {
        int r = rawc_recv(c, &f, (int)(end - kurer_time_mono_ms()));
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        int body = (int)f.body;
        int match = f.request_id == id || (f.request_id == 0 && f.body == KURER_SERVER_ERROR);
        if (code != NULL)
            *code = f.body == KURER_SERVER_ERROR ? f.u.error.code : 0;
        kurer_server_frame_release(&f);
        if (match)
            return body;
    }
    return 0;
}

/* ---- helpers on the harness client ---------------------------------------------------------- */

static void hc_send_raw(client *cl, const kurer_buf *b)
{
    assert_non_null(cl->c);
    assert_int_equal(kurer_conn_send(cl->c, b->data, b->len), 0);
    uv_run(&cl->loop, UV_RUN_NOWAIT);
}

/* Waits up to ms for the answer to id (pushes skipped): 1 with *r set (release it), else 0. */
static int hc_answer(client *cl, uint64_t id, kurer_server_frame *r, uint64_t ms)
{
    uint64_t end = kurer_time_mono_ms() + ms;
    while (kurer_time_mono_ms() < end) {
        if (cl_next(cl, r, end - kurer_time_mono_ms()) == 0)
            return 0;
        if (r->request_id == id)
            return 1;
        kurer_server_frame_release(r);
    }
    return 0;
}

/* Sends f and returns the answer's error code (0 for any other body); *body gets the body. */
static int hc_ask(client *cl, kurer_client_frame *f, kurer_server_frame *out)
{
    kurer_server_frame r;
    uint64_t id = cl_send(cl, f);
    if (!hc_answer(cl, id, &r, 10000))
        fail_msg("no answer to request %llu", (unsigned long long)id);
    int code = r.body == KURER_SERVER_ERROR ? r.u.error.code : 0;
    if (out != NULL)
        *out = r;
    else
        kurer_server_frame_release(&r);
    return code;
}

static int hc_ping(client *cl)
{
    kurer_client_frame p;
    memset(&p, 0, sizeof(p));
    p.body = KURER_CLIENT_PING;
    return hc_ask(cl, &p, NULL);
}

/* The connection must still serve: a Ping gets a Pong (or ERATE, the ping rate). */
static void expect_alive(client *cl)
{
    int rc = hc_ping(cl);
    assert_true(rc == 0 || rc == KURER_ERATE);
    assert_false(cl->closed);
}

/* The relay must refuse the frame in b on an authenticated connection as malformed: an Error
 * with request id 0 and this code, then the close; counted once. */
static void expect_frame_refused(const kurer_buf *b, int code)
{
    device *d = dev_new(uname_new("mal"), 1);
    client *cl = hc_connect(d);
    snap s = snap_take();
    hc_send_raw(cl, b);
    expect_kicked(cl, code);
    expect_delta(&s, REJ(code), 1);
}

/* Registers a device in the directory (connects once). */
static void dev_register(const device *d)
{
    client *cl = hc_connect(d);
    hc_free(cl);
}

/* A send of the given envelopes; returns the answer (release it). */
static void send_envs(client *cl, const kurer_envelope *e, size_t n, kurer_server_frame *r)
{
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_SEND;
    q.u.send.envelopes = e;
    q.u.send.n = n;
    (void)hc_ask(cl, &q, r);
}

/* n envelopes to `to` in one request; the status (or error code). */
static int send_n(client *cl, const device *to, size_t n)
{
    kurer_envelope e[32];
    uint8_t content[32][40];
    kurer_server_frame r;
    assert_true(n <= 32);
    for (size_t i = 0; i < n; i++)
        make_env(&e[i], to, (uint32_t)i, content[i]);
    send_envs(cl, e, n, &r);
    int st = r.body == KURER_SERVER_SEND_RESULT ? (int)r.u.send_result.users[0].status
             : r.body == KURER_SERVER_ERROR     ? r.u.error.code
                                                : -999;
    kurer_server_frame_release(&r);
    return st;
}

/* ---- the round trip after every case ------------------------------------------------------ */

/* Delivers pending envelopes (acking them) until QueueEmpty. */
static void drain(client *cl)
{
    kurer_server_frame f;
    for (;;) {
        if (cl_next(cl, &f, 10000) == 0)
            fail_msg("no QueueEmpty for %s", g_l2->addr.user);
        int done = f.body == KURER_SERVER_QUEUE_EMPTY;
        if (f.body == KURER_SERVER_DELIVER) {
            kurer_client_frame a;
            uint64_t seq = f.u.deliver.seq;
            memset(&a, 0, sizeof(a));
            a.body = KURER_CLIENT_ACK;
            a.u.ack.seqs = &seq;
            a.u.ack.n = 1;
            (void)cl_send(cl, &a);
        }
        kurer_server_frame_release(&f);
        if (done)
            return;
    }
}

/* A legitimate device still sends an envelope to another, which gets it and acks it. Senders
 * back off on ERATE, as a real client does. */
static void legit_round_trip(void)
{
    int st = 0;
    kurer_server_frame f;
    uint8_t id[16];
    assert_int_equal(waitpid(W->relay, &st, WNOHANG), 0); /* the relay is alive */
    client *r = hc_connect(g_l2);
    drain(r);
    client *s = hc_connect(g_l1);
    int status = 0;
    for (int i = 0; i < 10; i++) {
        status = send_one(s, g_l2, g_round, id);
        if (status != KURER_ERATE)
            break;
        usleep(300 * 1000);
    }
    g_round++;
    if (status != KURER_SEND_ACCEPTED)
        fail_msg("legitimate send: %d (%s)", status, status < 0 ? kurer_err_name(status) : "");
    for (;;) {
        if (cl_next(r, &f, 10000) == 0)
            fail_msg("the legitimate envelope was not delivered");
        int mine = f.body == KURER_SERVER_DELIVER && memcmp(f.u.deliver.envelope.id, id, 16) == 0;
        uint64_t seq = mine ? f.u.deliver.seq : 0;
        kurer_server_frame_release(&f);
        if (mine) {
            kurer_client_frame a;
            memset(&a, 0, sizeof(a));
            a.body = KURER_CLIENT_ACK;
            a.u.ack.seqs = &seq;
            a.u.ack.n = 1;
            assert_int_equal(hc_ask(r, &a, NULL), 0);
            break;
        }
    }
    hc_free(s);
    hc_free(r);
}

static void run_case(void **state)
{
    const hcase *c = *state;
    fprintf(stderr, "[ hostile %s/%s ]\n", group_names[c->group], c->name);
    c->fn();
    cleanup_tracked();
    /* nothing left half-open: every pre-auth peer of the case is gone */
    expect_gauge("kurer_connections_handshaking", 0, 4000);
    legit_round_trip();
}

static int case_teardown(void **state)
{
    (void)state;
    cleanup_tracked();
    return 0;
}

/* ---- one relay per group ------------------------------------------------------------------ */

/* The limits each group needs low enough to trip quickly. Keys this relay does not know (or
 * whose value it refuses) are dropped, with a note: the cases that need them then fail. */
static const char *const conf_pre[] = {
    "handshake_timeout_ms = 1500",
    "max_handshakes = 24",
    "max_preauth_per_address = 8",
    NULL,
};
static const char *const conf_auth[] = {
    "handshake_timeout_ms = 1500",
    "nk_rate = 1",
    NULL,
};
static const char *const conf_after[] = {
    "handshake_timeout_ms = 3000",
    "max_send_envelopes = 16",
    "max_envelope = 8192",
    "send_rate = 3",
    "fetch_rate = 2",
    "lookup_rate = 2",
    "ping_rate = 2",
    "mailbox_max = 1000",
    "mailbox_sender_max = 8",
    "prekeys_max = 50",
    "prekey_take_max = 3",
    "nk_rate = 100",
    "upload_buffer_max = 65536",
    NULL,
};
static const char *const conf_fuzz[] = {
    "handshake_timeout_ms = 2000", "max_record = 16384", "ping_rate = 1000", "nk_rate = 100", NULL,
};
static const char *const *const group_conf[G_COUNT] = {conf_pre, conf_auth, conf_after, conf_fuzz};

#define REVOKED_SERIAL 666 /* on the main authority's list the auth group's relay starts with */

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static void start_group_relay(int group)
{
    const char *const *lines = group_conf[group];
    int skip[32] = {0};
    char conf[300], log[300], crl[300];
    snprintf(conf, sizeof(conf), "%s/relay.conf", W->dir);
    snprintf(log, sizeof(log), "%s/relay.log", W->dir);
    snprintf(crl, sizeof(crl), "%s/mof.crl", W->dir);
    if (group == G_AUTH) {
        kurer_buf l;
        uint64_t s = REVOKED_SERIAL;
        make_crl(W, ++g_crl_version, &s, 1, crl, &l);
        kurer_buf_release(&l);
    }
    for (int attempt = 0; attempt < 32; attempt++) {
        char text[2048] = "";
        int map[32], n = 0;
        for (int i = 0; lines[i] != NULL; i++)
            if (!skip[i]) {
                strcat(text, lines[i]);
                strcat(text, "\n");
                map[n++] = i;
            }
        write_file(conf, text, strlen(text));
        long off = file_size(log);
        const char *extra[] = {"--config", conf, "--metrics", "127.0.0.1:0", "--crl", crl};
        if (try_start_relay_v(W, extra, group == G_AUTH ? 6 : 4) == 0)
            return;
        /* "kurer-relay: PATH:LINE: unknown key 'k'" or "...: k = v is out of range (..)" */
        FILE *f = fopen(log, "r");
        assert_non_null(f);
        fseek(f, off, SEEK_SET);
        char buf[4096];
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *p = strstr(buf, "relay.conf:");
        int line = p != NULL ? atoi(p + strlen("relay.conf:")) : 0;
        if (line < 1 || line > n)
            fail_msg("the relay did not start: %s", buf);
        skip[map[line - 1]] = 1;
        char *nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        fprintf(stderr, "hostile: NOTE: this relay refuses '%s' (%s): cases that need it fail\n",
                lines[map[line - 1]], p);
    }
    fail_msg("the relay did not start");
}

static int group_setup(void **state)
{
    assert_int_equal(setup(state), 0);
    W = *state;
    *state = NULL; /* each case gets its hcase as its state (cmocka prefers a group state) */
    g_ndev = 0;
    g_crl_version = 0;
    signal(SIGPIPE, SIG_IGN);
    start_group_relay(g_group);
    g_l1 = dev_new("lena@mof", 1);
    g_l2 = dev_new("lars@mof", 1);
    dev_register(g_l2);
    dev_register(g_l1);
    return 0;
}

static int group_teardown(void **group_state)
{
    void *w = W, **state = &w;
    (void)group_state;
    cleanup_tracked();
    int st = stop_relay(W, SIGTERM), bad = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "hostile: the relay did not stop cleanly (status %d)\n", st);
        bad = 1;
    }
    if (log_count("AddressSanitizer", NULL) + log_count("runtime error", NULL) +
            log_count("LeakSanitizer", NULL) >
        0) {
        fprintf(stderr, "hostile: the relay's log (%s/relay.log) holds a sanitizer report\n",
                W->dir);
        return -1; /* the folder is kept for the report */
    }
    teardown(state);
    return bad ? -1 : 0;
}

/* ---- group 1: before the handshake -------------------------------------------------------- */

#define PRE_HS_MS              1500 /* handshake_timeout_ms of the prehandshake and auth relays */
#define AT_ONCE_MS             500  /* "closed at once": well before any deadline */
#define PREAUTH_RECORD_DEFAULT 4608

/* Sends bytes from a fresh address; the relay must close at once, counting reason `code`. */
static void expect_bytes_closed_at_once(const void *p, size_t n, int code)
{
    snap s = snap_take();
    int fd = tcp_from("127.0.0.2");
    (void)tcp_write(fd, p, n);
    int64_t t = tcp_close_ms(fd, AT_ONCE_MS);
    if (t < 0)
        fail_msg("still open %d ms later (expected the close with %s)", AT_ONCE_MS,
                 kurer_err_name(code));
    expect_delta(&s, REJ(code), 1);
}

/* A pre-auth peer that stops: closed at the handshake deadline (counted ETIMEOUT). */
static void expect_deadline_close(int fd, const snap *s, uint64_t t0)
{
    assert_true(raw_closed_within(fd, PRE_HS_MS + 1500));
    uint64_t took = kurer_time_mono_ms() - t0;
    if (took < PRE_HS_MS - 200)
        fail_msg("closed after %llu ms, before the %d ms deadline", (unsigned long long)took,
                 PRE_HS_MS);
    expect_delta(s, REJ(KURER_ETIMEOUT), 1);
}

static void pre_garbage(void)
{
    uint8_t junk[200];
    memset(junk, 'x', sizeof(junk));
    junk[0] = 0;
    junk[1] = 120; /* a record of 120 bytes that is no Noise message */
    expect_bytes_closed_at_once(junk, sizeof(junk), KURER_EDECRYPT);
}

static void pre_zero_length_record(void)
{
    expect_bytes_closed_at_once("\0\0", 2, KURER_EMALFORMED);
}

/* 0xffff announces a 64 KiB record: over max_preauth_record, refused on its two length bytes. */
static void pre_length_prefix_ffff(void)
{
    uint8_t b[102] = {0xff, 0xff};
    random_bytes(b + 2, 100);
    expect_bytes_closed_at_once(b, sizeof(b), KURER_ELIMIT);
}

static void pre_over_max_preauth_record(void)
{
    static uint8_t b[PREAUTH_RECORD_DEFAULT + 3];
    size_t n = PREAUTH_RECORD_DEFAULT + 1;
    b[0] = (uint8_t)(n >> 8);
    b[1] = (uint8_t)n;
    random_bytes(b + 2, n);
    expect_bytes_closed_at_once(b, n + 2, KURER_ELIMIT);
}

/* Exactly the bound: read whole, and refused for what it is (no Noise message), not its size. */
static void pre_at_max_preauth_record(void)
{
    static uint8_t b[PREAUTH_RECORD_DEFAULT + 2];
    size_t n = PREAUTH_RECORD_DEFAULT;
    b[0] = (uint8_t)(n >> 8);
    b[1] = (uint8_t)n;
    random_bytes(b + 2, n);
    expect_bytes_closed_at_once(b, n + 2, KURER_EDECRYPT);
}

/* Other protocols on the Noise port: their first bytes read as a length far over the bound. */
static void pre_http_request(void)
{
    const char *req = "GET /metrics HTTP/1.1\r\nHost: relay\r\n\r\n";
    expect_bytes_closed_at_once(req, strlen(req), KURER_ELIMIT);
}

static void pre_tls_client_hello(void)
{
    uint8_t b[205] = {0x16, 0x03, 0x01, 0x00, 0xc8}; /* 0x1603 = 5635 > 4608 */
    random_bytes(b + 5, 200);
    expect_bytes_closed_at_once(b, sizeof(b), KURER_ELIMIT);
}

static void pre_truncated_record_stall(void)
{
    uint8_t b[102] = {0x01, 0x2c}; /* 300 announced, 100 sent */
    random_bytes(b + 2, 100);
    snap s = snap_take();
    uint64_t t0 = kurer_time_mono_ms();
    int fd = tcp_from("127.0.0.2");
    assert_int_equal(tcp_write(fd, b, sizeof(b)), 0);
    expect_deadline_close(fd, &s, t0);
}

/* A peer that gives up half-way: its state goes (no rejection is counted for a peer's close). */
static void pre_truncated_record_then_eof(void)
{
    uint8_t b[102] = {0x01, 0x2c};
    random_bytes(b + 2, 100);
    snap s = snap_take();
    int fd = tcp_from("127.0.0.2");
    assert_int_equal(tcp_write(fd, b, sizeof(b)), 0);
    shutdown(fd, SHUT_WR);
    assert_true(tcp_close_ms(fd, AT_ONCE_MS) >= 0);
    expect_delta(&s, "kurer_connections_total", 1);
    expect_gauge("kurer_connections_handshaking", 0, 2000);
    expect_delta(&s, REJ(KURER_ETIMEOUT), 0);
}

static void pre_half_length_prefix(void)
{
    snap s = snap_take();
    uint64_t t0 = kurer_time_mono_ms();
    int fd = tcp_from("127.0.0.2");
    assert_int_equal(tcp_write(fd, "\x01", 1), 0);
    expect_deadline_close(fd, &s, t0);
}

static void pre_stalled_handshake(void)
{
    snap s = snap_take();
    uint64_t t0 = kurer_time_mono_ms();
    int fd = tcp_from("127.0.0.2");
    expect_deadline_close(fd, &s, t0);
}

/* A valid message 1, one byte every 20 ms: bytes that trickle in do not extend the deadline. */
static void pre_slow_loris(void)
{
    device *d = dev_new(uname_new("loris"), 1);
    rawc *c = rawc_new();
    kurer_buf hi, rec;
    hs_init_of(&hi, d);
    rawc_start(c, "127.0.0.2", KURER_NOISE_IK, d->sk, hi.data, hi.len, NULL, NULL, 0);
    kurer_buf_release(&hi);
    kurer_buf_init(&rec, KURER_NOISE_MAX_MSG + 2);
    assert_int_equal(kurer_buf_put_lv16(&rec, c->m1, c->m1_len), 0);
    snap s = snap_take();
    uint64_t t0 = kurer_time_mono_ms();
    int closed = 0;
    for (size_t i = 0; i < rec.len && kurer_time_mono_ms() - t0 < PRE_HS_MS + 1500; i++) {
        if (tcp_write(c->fd, rec.data + i, 1) != 0 || raw_closed_within(c->fd, 20)) {
            closed = 1;
            break;
        }
    }
    kurer_buf_release(&rec);
    uint64_t took = kurer_time_mono_ms() - t0;
    assert_true(closed);
    assert_true(took >= PRE_HS_MS - 200 && took < PRE_HS_MS + 1500);
    expect_delta(&s, REJ(KURER_ETIMEOUT), 1);
    expect_delta(&s, "kurer_handshakes_ok_total", 0);
}

/* Message 1 for another relay's key, and message 1 under another prologue (an incompatible
 * major version): neither decrypts, no message 2. */
static void pre_wrong_relay_key(void)
{
    device *d = dev_new(uname_new("lost"), 1);
    uint8_t pk[32], sk[32];
    kurer_buf hi;
    assert_int_equal(kurer_noise_keypair(pk, sk), 0);
    hs_init_of(&hi, d);
    snap s = snap_take();
    rawc *c = rawc_new();
    rawc_start(c, "127.0.0.2", KURER_NOISE_IK, d->sk, hi.data, hi.len, NULL, pk, 1);
    kurer_buf_release(&hi);
    assert_int_equal(rawc_finish(c, AT_ONCE_MS), KURER_ECLOSED);
    expect_delta(&s, REJ(KURER_EDECRYPT), 1);
}

static void pre_wrong_prologue(void)
{
    device *d = dev_new(uname_new("future"), 1);
    kurer_buf hi;
    hs_init_of(&hi, d);
    snap s = snap_take();
    rawc *c = rawc_new();
    rawc_start(c, "127.0.0.2", KURER_NOISE_IK, d->sk, hi.data, hi.len, "kurer/2", NULL, 1);
    kurer_buf_release(&hi);
    assert_int_equal(rawc_finish(c, AT_ONCE_MS), KURER_ECLOSED);
    expect_delta(&s, REJ(KURER_EDECRYPT), 1);
}

#define PER_ADDRESS 8 /* max_preauth_per_address of the prehandshake relay */

/* One address holds PER_ADDRESS pending connections: the next one from it is closed at once
 * (counted per_address); another address and a legitimate device are not affected. */
static void pre_per_address_limit(void)
{
    int fds[PER_ADDRESS];
    snap s = snap_take();
    for (int i = 0; i < PER_ADDRESS; i++)
        fds[i] = tcp_from("127.0.0.3");
    usleep(150 * 1000);
    expect_gauge("kurer_connections_handshaking", PER_ADDRESS, 1000);
    int over = tcp_from("127.0.0.3");
    int other = tcp_from("127.0.0.4");
    int64_t t = tcp_close_ms(over, AT_ONCE_MS);
    if (t < 0)
        fail_msg("connection %d from one address was not refused", PER_ADDRESS + 1);
    expect_delta(&s, "kurer_connections_refused_total{reason=\"per_address\"}", 1);
    assert_int_equal(tcp_close_ms(other, 100), -1);
    for (int i = 0; i < PER_ADDRESS; i++)
        assert_int_equal(tcp_close_ms(fds[i], 10), -1);
    client *cl = hc_connect(g_l1); /* meanwhile, a device from 127.0.0.1 */
    expect_alive(cl);
}

#define MAX_HANDSHAKES 24

/* Pending connections from many addresses, up to max_handshakes: the next is refused. */
static void pre_max_handshakes(void)
{
    char src[32];
    snap s = snap_take();
    for (int i = 0; i < MAX_HANDSHAKES; i++) {
        snprintf(src, sizeof(src), "127.0.1.%d", 1 + i / 4);
        (void)tcp_from(src);
    }
    usleep(150 * 1000);
    expect_gauge("kurer_connections_handshaking", MAX_HANDSHAKES, 1000);
    int over = tcp_from("127.0.2.1");
    assert_true(tcp_close_ms(over, AT_ONCE_MS) >= 0);
    expect_delta(&s, "kurer_connections_refused_total{reason=\"max_handshakes\"}", 1);
}

/* An NK session stays pre-auth for its whole life: it counts as handshaking and ends at the
 * handshake deadline, even while it trickles in a record. */
static void pre_nk_counts_as_preauth(void)
{
    snap s = snap_take();
    client *nk = hc_new();
    assert_int_equal(cl_connect_nk(W, nk), 0);
    expect_delta(&s, "kurer_nk_sessions_total", 1);
    expect_gauge("kurer_connections_handshaking", 1, 1000);
    hc_free(nk);
    expect_gauge("kurer_connections_handshaking", 0, 2000);
}

static void pre_nk_deadline(void)
{
    snap s = snap_take();
    uint64_t t0 = kurer_time_mono_ms();
    rawc *c = rawc_new();
    rawc_start(c, "127.0.0.2", KURER_NOISE_NK, NULL, NULL, 0, NULL, NULL, 1);
    assert_int_equal(rawc_finish(c, 2000), 0);
    /* a partial record within the bound, then nothing */
    uint8_t part[1002] = {0x0f, 0xa0};
    random_bytes(part + 2, 1000);
    assert_int_equal(tcp_write(c->fd, part, sizeof(part)), 0);
    expect_deadline_close(c->fd, &s, t0);
    expect_delta(&s, "kurer_nk_sessions_total", 1);
}

static void pre_nk_oversize_record(void)
{
    snap s = snap_take();
    rawc *c = rawc_new();
    rawc_start(c, "127.0.0.2", KURER_NOISE_NK, NULL, NULL, 0, NULL, NULL, 1);
    assert_int_equal(rawc_finish(c, 2000), 0);
    uint8_t big[1002] = {0xea, 0x60}; /* 60000 announced */
    random_bytes(big + 2, 1000);
    assert_int_equal(tcp_write(c->fd, big, sizeof(big)), 0);
    if (tcp_close_ms(c->fd, AT_ONCE_MS) < 0)
        fail_msg("an NK session announcing a 60000-byte record was not closed at once");
    expect_delta(&s, REJ(KURER_ELIMIT), 1);
}

/* Connect and close at once, many times over: nothing is left behind. */
static void pre_connect_flood(void)
{
    enum { N = 64 };
    snap s = snap_take();
    for (int i = 0; i < N; i++)
        fd_close(tcp_from("127.0.0.9"));
    /* each one is accepted, or refused by a pre-auth bound */
    uint64_t end = kurer_time_mono_ms() + 3000, seen = 0;
    while (kurer_time_mono_ms() < end) {
        seen = delta_now(&s, "kurer_connections_total") +
               delta_now(&s, "kurer_connections_refused_total{reason=\"max_handshakes\"}") +
               delta_now(&s, "kurer_connections_refused_total{reason=\"per_address\"}");
        if (seen >= N)
            break;
        usleep(20000);
    }
    assert_int_equal(seen, N);
    expect_gauge("kurer_connections", 0, 3000);
}

/* A reset in the middle of message 1. */
static void pre_reset_mid_handshake(void)
{
    device *d = dev_new(uname_new("rst"), 1);
    rawc *c = rawc_new();
    kurer_buf hi;
    hs_init_of(&hi, d);
    snap s = snap_take();
    rawc_start(c, "127.0.0.2", KURER_NOISE_IK, d->sk, hi.data, hi.len, NULL, NULL, 0);
    kurer_buf_release(&hi);
    uint8_t h[2] = {(uint8_t)(c->m1_len >> 8), (uint8_t)c->m1_len};
    assert_int_equal(tcp_write(c->fd, h, 2), 0);
    assert_int_equal(tcp_write(c->fd, c->m1, c->m1_len / 2), 0);
    usleep(50 * 1000);
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    fd_close(c->fd);
    c->fd = -1;
    expect_gauge("kurer_connections", 0, 2000);
    expect_delta(&s, "kurer_handshakes_ok_total", 0);
    expect_delta(&s, "kurer_connections_total", 1);
}

/* ---- group 2: authentication -------------------------------------------------------------- */

/* d's handshake must be refused with code: in HandshakeAccept, then the close; counted. */
static void expect_refused(const device *d, int code)
{
    snap s = snap_take();
    client *cl = hc_new();
    int rc = cl_connect(W, cl, d);
    if (rc != code)
        fail_msg("handshake answered %s, expected %s", rc == 0 ? "accepted" : kurer_err_name(rc),
                 kurer_err_name(code));
    expect_delta(&s, REJ(code), 1);
    expect_delta(&s, "kurer_handshakes_failed_total", 1);
    expect_delta(&s, "kurer_handshakes_ok_total", 0);
}

/* The same for an IK message 1 with this payload, under d's static key. */
static void expect_payload_refused(const device *d, const uint8_t *p, size_t n, int code)
{
    snap s = snap_take();
    rawc *c = rawc_new();
    rawc_start(c, NULL, KURER_NOISE_IK, d->sk, p, n, NULL, NULL, 1);
    int rc = rawc_finish(c, 5000);
    if (rc != code)
        fail_msg("handshake answered %s, expected %s", rc == 0 ? "accepted" : kurer_err_name(rc),
                 kurer_err_name(code));
    assert_true(tcp_close_ms(c->fd, 3000) >= 0);
    expect_delta(&s, REJ(code), 1);
    expect_delta(&s, "kurer_handshakes_failed_total", 1);
}

static void auth_unknown_root(void)
{
    device *d = dev_slot();
    make_device(W, d, uname_new("alien"), 1, g_serial++, 1, 0, 0);
    expect_refused(d, KURER_EUNTRUSTED);
}

static void auth_expired_device(void)
{
    int64_t now = kurer_time_unix();
    devopt o = {.not_before = now - 10 * DAY, .not_after = now - DAY};
    expect_refused(dev_opt(uname_new("old"), 1, &o), KURER_EEXPIRED);
}

static void auth_not_yet_valid_device(void)
{
    int64_t now = kurer_time_unix();
    devopt o = {.not_before = now + DAY, .not_after = now + 10 * DAY};
    expect_refused(dev_opt(uname_new("early"), 1, &o), KURER_ENOTYETVALID);
}

static void auth_expired_authority(void)
{
    kurer_signing_key k;
    kurer_cert c;
    int64_t now = kurer_time_unix();
    authority_new(&k, &c, now - 10 * DAY, now - DAY, NULL);
    devopt o = {.ikey = &k, .icert = &c};
    device *d = dev_opt(uname_new("orphan"), 1, &o);
    kurer_signing_key_release(&k);
    expect_refused(d, KURER_EEXPIRED);
}

static void auth_revoked_device(void)
{
    device *d = dev_slot();
    make_device(W, d, uname_new("gone"), 1, REVOKED_SERIAL, 0, 0, 0);
    expect_refused(d, KURER_EREVOKED);
}

static void auth_wrong_noise_key(void)
{
    devopt o = {.wrong_key = 1};
    expect_refused(dev_opt(uname_new("thief"), 1, &o), KURER_EKEYMISMATCH);
}

/* Cheap checks first: a chain naming another noise key is refused for that before any
 * signature is verified, so a bad signature does not change the answer. */
static void auth_key_checked_before_signature(void)
{
    devopt o = {.wrong_key = 1, .bad_sig = 1};
    expect_refused(dev_opt(uname_new("cheap"), 1, &o), KURER_EKEYMISMATCH);
}

static void auth_bad_device_signature(void)
{
    devopt o = {.bad_sig = 1};
    expect_refused(dev_opt(uname_new("forged"), 1, &o), KURER_EBADSIG);
}

static void auth_device_signed_by_root(void)
{
    devopt o = {.by_root = 1};
    expect_refused(dev_opt(uname_new("rooted"), 1, &o), KURER_EROLE);
}

static void auth_clearance_above_issuer(void)
{
    devopt o = {.clearance = KURER_LEVEL_CONFIDENTIAL}; /* the authority is RESTRICTED */
    expect_refused(dev_opt(uname_new("high"), 1, &o), KURER_ECLEARANCE);
}

static void auth_foreign_subject(void)
{
    device *d = dev_new("spy@elsewhere", 1); /* signed by mof */
    expect_refused(d, KURER_ESUBJECT);
}

static void auth_authority_as_leaf(void)
{
    device *d = dev_new(uname_new("leaf"), 1);
    d->chain.certs[0] = W->auth;
    expect_refused(d, KURER_EROLE);
}

/* Truncated chain: the device alone (its authority left out). */
static void auth_chain_missing_authority(void)
{
    device *d = dev_new(uname_new("alone"), 1);
    d->chain.n = 1;
    expect_refused(d, KURER_EISSUER);
}

static void auth_chain_three_certs(void)
{
    device *d = dev_new(uname_new("three"), 1);
    d->chain.certs[2] = W->auth;
    d->chain.n = 3;
    expect_refused(d, KURER_EMALFORMED);
}

static void auth_chain_four_certs(void)
{
    device *d = dev_new(uname_new("four"), 1);
    const kurer_cert *c[4] = {&d->chain.certs[0], &W->auth, &W->auth, &W->auth};
    kurer_buf p;
    pb_hs_init(&p, KURER_PROTOCOL_VERSION, c, 4, 0);
    expect_payload_refused(d, p.data, p.len, KURER_ELIMIT);
    kurer_buf_release(&p);
}

static void auth_empty_handshake_init(void)
{
    device *d = dev_new(uname_new("empty"), 1);
    expect_payload_refused(d, NULL, 0, KURER_EMALFORMED);
}

static void auth_wrong_protocol_version(void)
{
    device *d = dev_new(uname_new("v2"), 1);
    const kurer_cert *c[2] = {&d->chain.certs[0], &d->chain.certs[1]};
    kurer_buf p;
    pb_hs_init(&p, 2, c, 2, 0);
    expect_payload_refused(d, p.data, p.len, KURER_EVERSION);
    kurer_buf_release(&p);
}

/* Truncated chain: the HandshakeInit's bytes cut inside the chain. */
static void auth_truncated_chain_bytes(void)
{
    device *d = dev_new(uname_new("cut"), 1);
    const kurer_cert *c[2] = {&d->chain.certs[0], &d->chain.certs[1]};
    kurer_buf p;
    pb_hs_init(&p, KURER_PROTOCOL_VERSION, c, 2, 0);
    p.len = p.len * 2 / 3;
    expect_payload_refused(d, p.data, p.len, KURER_EMALFORMED);
    kurer_buf_release(&p);
}

static void auth_no_chain(void)
{
    device *d = dev_new(uname_new("nochain"), 1);
    kurer_buf p;
    pb_hs_init(&p, KURER_PROTOCOL_VERSION, NULL, 0, 0);
    expect_payload_refused(d, p.data, p.len, KURER_EMALFORMED);
    kurer_buf_release(&p);
}

static void auth_garbage_payload(void)
{
    device *d = dev_new(uname_new("noise"), 1);
    uint8_t junk[300];
    random_bytes(junk, sizeof(junk));
    junk[0] = 0xff; /* field 31, wire type 7: never valid protobuf */
    expect_payload_refused(d, junk, sizeof(junk), KURER_EMALFORMED);
}

/* A certificate body (hand-made: our encoder refuses it) with clearance SECRET. */
static void auth_clearance_secret(void)
{
    device *d = dev_new(uname_new("secret"), 1);
    kurer_buf tbs, sc, chain, hi, a;
    uint8_t kid[KURER_KEY_ID_LEN], sig[64];
    int64_t now = kurer_time_unix();
    kurer_cert_key_id(&W->auth, kid);
    kurer_buf_init(&tbs, 2048);
    pb_u(&tbs, 1, 1);
    pb_u(&tbs, 2, g_serial++);
    pb_u(&tbs, 3, KURER_ROLE_DEVICE);
    pb_str(&tbs, 4, d->addr.user);
    pb_str(&tbs, 5, "test");
    pb_u(&tbs, 6, 1);
    pb_u(&tbs, 7, 4); /* SECRET */
    pb_u(&tbs, 8, (uint64_t)(now - DAY));
    pb_u(&tbs, 9, (uint64_t)(now + DAY));
    pb_s(&tbs, 10, kid, sizeof(kid));
    pb_s(&tbs, 12, d->id_pub, 33);
    pb_s(&tbs, 13, d->pk, 32);
    assert_int_equal(kurer_sign(&W->auth_key, tbs.data, tbs.len, sig), 0);
    kurer_buf_init(&sc, 4096);
    pb_m(&sc, 1, &tbs);
    pb_s(&sc, 2, sig, 64);
    pb_cert(&a, &W->auth);
    kurer_buf_init(&chain, 8192);
    pb_m(&chain, 1, &sc);
    pb_m(&chain, 1, &a);
    kurer_buf_init(&hi, 8192);
    pb_u(&hi, 1, KURER_PROTOCOL_VERSION);
    pb_m(&hi, 2, &chain);
    expect_payload_refused(d, hi.data, hi.len, KURER_ECLEARANCE);
    kurer_buf_release(&tbs);
    kurer_buf_release(&sc);
    kurer_buf_release(&a);
    kurer_buf_release(&chain);
    kurer_buf_release(&hi);
}

/* A replayed message 1 gets message 2 (useless without the ephemeral key) and is closed at the
 * handshake deadline; the live connection of the device keeps working, is not replaced, and no
 * device_connected is logged for the replay. */
static void auth_replayed_message1(void)
{
    device *d = dev_new(uname_new("replayed"), 1);
    rawc *live = rawc_new(), *rep = rawc_new();
    int code = 0;
    assert_int_equal(rawc_ik(live, NULL, d), 0);
    assert_int_equal(rawc_answer(live, rawc_ping(live), &code, 5000), KURER_SERVER_PONG);
    snap s = snap_take();
    int logged = log_count("device_connected", d->addr.user);
    uint64_t t0 = kurer_time_mono_ms();
    rep->fd = tcp_from("127.0.0.5");
    assert_int_equal(tcp_record(rep->fd, live->m1, live->m1_len), 0);
    int n = tcp_read_record(rep->fd, rep->rec, 3000);
    assert_true(n > 0); /* message 2 */
    assert_true(raw_closed_within(rep->fd, PRE_HS_MS + 1500));
    uint64_t took = kurer_time_mono_ms() - t0;
    assert_true(took >= PRE_HS_MS - 200);
    /* the live one: no EBUSY, still served */
    int body = rawc_answer(live, rawc_ping(live), &code, 5000);
    if (body != KURER_SERVER_PONG)
        fail_msg("the live connection got %s (body %d) after the replay",
                 body < 0 ? "closed" : kurer_err_name(code), body);
    expect_delta(&s, "kurer_handshakes_unconfirmed_total", 1);
    expect_delta(&s, REJ(KURER_ETIMEOUT), 1);
    expect_delta(&s, "kurer_connections_replaced_total", 0);
    assert_int_equal(log_count("device_connected", d->addr.user), logged);
}

/* Until its first transport record, an IK peer gets nothing pushed and counts as handshaking. */
static void auth_unconfirmed_gets_no_pushes(void)
{
    device *d = dev_new(uname_new("quiet"), 1);
    dev_register(d);
    client *snd = hc_connect(g_l1);
    assert_int_equal(send_one(snd, d, 1, NULL), KURER_SEND_ACCEPTED); /* queued for d */
    hc_free(snd);
    snap s = snap_take();
    rawc *c = rawc_new();
    kurer_server_frame f;
    assert_int_equal(rawc_ik(c, NULL, d), 0);
    assert_int_equal(c->acc.queued, 1);
    expect_gauge("kurer_connections_handshaking", 1, 1000);
    if (rawc_recv(c, &f, 400) == 1) {
        int b = (int)f.body;
        kurer_server_frame_release(&f);
        fail_msg("an unconfirmed connection was pushed body %d", b);
    }
    expect_delta(&s, "kurer_envelopes_delivered_total", 0);
    int answered = 0, got_deliver = 0;
    uint64_t id = rawc_ping(c);
    for (int i = 0; i < 8 && !(answered && got_deliver); i++) {
        int r = rawc_recv(c, &f, 3000);
        assert_int_equal(r, 1);
        got_deliver |= f.body == KURER_SERVER_DELIVER;
        answered |= f.request_id == id; /* the Pong may come before or after the Deliver */
        kurer_server_frame_release(&f);
    }
    assert_true(got_deliver);
    expect_gauge("kurer_connections_handshaking", 0, 1000);
    expect_delta(&s, "kurer_envelopes_delivered_total", 1);
}

/* A peer that finishes the handshake and never sends a record: closed at the deadline. */
static void auth_unconfirmed_deadline(void)
{
    device *d = dev_new(uname_new("mute"), 1);
    snap s = snap_take();
    uint64_t t0 = kurer_time_mono_ms();
    rawc *c = rawc_new();
    assert_int_equal(rawc_ik(c, NULL, d), 0);
    expect_deadline_close(c->fd, &s, t0);
    expect_delta(&s, "kurer_handshakes_unconfirmed_total", 1);
}

static void auth_unconfirmed_oversize_record(void)
{
    device *d = dev_new(uname_new("bloat"), 1);
    snap s = snap_take();
    rawc *c = rawc_new();
    assert_int_equal(rawc_ik(c, NULL, d), 0);
    uint8_t big[1002] = {0x13, 0x88}; /* 5000 > 4608 */
    random_bytes(big + 2, 1000);
    assert_int_equal(tcp_write(c->fd, big, sizeof(big)), 0);
    if (tcp_close_ms(c->fd, AT_ONCE_MS) < 0)
        fail_msg("an unconfirmed peer announcing a 5000-byte record was not closed at once");
    expect_delta(&s, REJ(KURER_ELIMIT), 1);
}

/* The newest connection of a device wins only once it has proven itself. */
static void auth_unconfirmed_does_not_displace(void)
{
    device *d = dev_new(uname_new("twice"), 1);
    client *old = hc_connect(d);
    snap s = snap_take();
    rawc *c = rawc_new();
    kurer_server_frame f;
    assert_int_equal(rawc_ik(c, NULL, d), 0);
    pump(old, &old->closed, 400);
    assert_false(old->closed);
    while (old->qhead < old->qtail) { /* no EBUSY yet */
        assert_int_equal(cl_next(old, &f, 0), 1);
        assert_int_not_equal(f.body, KURER_SERVER_ERROR);
        kurer_server_frame_release(&f);
    }
    expect_delta(&s, "kurer_connections_replaced_total", 0);
    int code = 0;
    assert_int_equal(rawc_answer(c, rawc_ping(c), &code, 5000), KURER_SERVER_PONG);
    expect_kicked(old, KURER_EBUSY);
    expect_delta(&s, "kurer_connections_replaced_total", 1);
}

/* Message 1, then at once a record that is no transport message of this session: the close
 * (EDECRYPT), and the device was never connected (no device_connected in the log). */
static void auth_first_record_garbage(void)
{
    device *d = dev_new(uname_new("pipelined"), 1);
    kurer_buf hi;
    uint8_t junk[64];
    hs_init_of(&hi, d);
    snap s = snap_take();
    rawc *c = rawc_new();
    rawc_start(c, NULL, KURER_NOISE_IK, d->sk, hi.data, hi.len, NULL, NULL, 1);
    kurer_buf_release(&hi);
    random_bytes(junk, sizeof(junk));
    assert_int_equal(tcp_record(c->fd, junk, sizeof(junk)), 0);
    /* message 2 may or may not get out before the close (an initiator cannot have sent a
     * transport record before it: it has no keys yet) */
    int rc = rawc_finish(c, 3000);
    assert_true(rc == 0 || rc == KURER_ECLOSED);
    if (rc == 0)
        assert_true(tcp_close_ms(c->fd, 2000) >= 0);
    expect_delta(&s, REJ(KURER_EDECRYPT), 1);
    assert_int_equal(log_count("device_connected", d->addr.user), 0);
}

static void auth_nk_with_payload(void)
{
    snap s = snap_take();
    rawc *c = rawc_new();
    rawc_start(c, NULL, KURER_NOISE_NK, NULL, (const uint8_t *)"hello", 5, NULL, NULL, 1);
    assert_int_equal(rawc_finish(c, 3000), KURER_EMALFORMED);
    expect_delta(&s, REJ(KURER_EMALFORMED), 1);
}

/* nk_rate = 1 (burst 4) per source address: a burst of NK handshakes gets ERATE. */
static void auth_nk_rate(void)
{
    snap s = snap_take();
    int limited = 0, ok = 0;
    for (int i = 0; i < 10 && limited == 0; i++) {
        rawc *c = rawc_new();
        rawc_start(c, "127.0.0.6", KURER_NOISE_NK, NULL, NULL, 0, NULL, NULL, 1);
        int rc = rawc_finish(c, 3000);
        if (rc == KURER_ERATE)
            limited++;
        else if (rc == 0)
            ok++;
        else
            fail_msg("NK handshake %d: %s", i, kurer_err_name(rc));
        rawc_free(c);
    }
    assert_int_equal(limited, 1);
    assert_true(ok >= 1 && ok <= 5);
    expect_delta(&s, REJ(KURER_ERATE), 1);
}

/* ---- group 3: after the handshake --------------------------------------------------------- */

#define RID 7 /* request id of hand-made frames */

/* Waits up to ms for an Error push (id 0) with code, then for the close. */
static void expect_kicked_within(client *cl, int code, uint64_t ms)
{
    kurer_server_frame f;
    uint64_t end = kurer_time_mono_ms() + ms;
    for (;;) {
        if (kurer_time_mono_ms() >= end || cl_next(cl, &f, end - kurer_time_mono_ms()) == 0)
            fail_msg("no Error push %s within %llu ms", kurer_err_name(code),
                     (unsigned long long)ms);
        int err = f.body == KURER_SERVER_ERROR && f.request_id == 0;
        int c = err ? f.u.error.code : 0;
        kurer_server_frame_release(&f);
        if (err) {
            if (c != code)
                fail_msg("Error push %s, expected %s", kurer_err_name(c), kurer_err_name(code));
            break;
        }
    }
    pump(cl, &cl->closed, 3000);
    assert_true(cl->closed);
}

/* ClientFrame{RID, body: inner} (inner released) must be refused as malformed with code. */
static void refuse_frame(uint32_t body, kurer_buf *inner, int code)
{
    kurer_buf f;
    pb_frame(&f, RID, body, inner);
    if (inner != NULL)
        kurer_buf_release(inner);
    expect_frame_refused(&f, code);
    kurer_buf_release(&f);
}

/* SendRequest{envelopes: one envelope} */
static void refuse_envelope(size_t id_len, const char *user, uint32_t dev, uint32_t type,
                            size_t content_len, int code)
{
    kurer_buf env, send;
    pb_envelope(&env, id_len, user, dev, type, content_len);
    kurer_buf_init(&send, PB_MAX);
    pb_m(&send, 1, &env);
    kurer_buf_release(&env);
    refuse_frame(10, &send, code);
}

static void af_request_id_zero(void)
{
    kurer_buf f, in;
    pb_empty(&in);
    pb_frame(&f, 0, 15, &in);
    kurer_buf_release(&in);
    expect_frame_refused(&f, KURER_EMALFORMED);
    kurer_buf_release(&f);
}

static void af_no_body(void)
{
    refuse_frame(0, NULL, KURER_EMALFORMED);
}

static void af_unknown_body(void)
{
    kurer_buf in;
    pb_empty(&in);
    pb_u(&in, 1, 1);
    refuse_frame(99, &in, KURER_EMALFORMED);
}

/* Two bodies of the oneof: protobuf keeps the last, so the frame would be read otherwise than
 * sent. */
static void af_two_bodies(void)
{
    kurer_buf f, in;
    pb_empty(&in);
    pb_frame(&f, RID, 15, &in);
    pb_m(&f, 17, &in);
    kurer_buf_release(&in);
    expect_frame_refused(&f, KURER_EMALFORMED);
    kurer_buf_release(&f);
}

static void af_noncanonical_varint(void)
{
    kurer_buf f;
    kurer_buf_init(&f, 16);
    pb_raw(&f, "\x08\x87\x00\x7a\x00", 5); /* request_id 7 in two bytes, then Ping{} */
    expect_frame_refused(&f, KURER_EMALFORMED);
    kurer_buf_release(&f);
}

static void af_garbage_plaintext(void)
{
    kurer_buf f;
    kurer_buf_init(&f, 16);
    pb_raw(&f, "\xff\xfe\xfd", 3);
    expect_frame_refused(&f, KURER_EMALFORMED);
    kurer_buf_release(&f);
}

static void af_empty_frame(void)
{
    kurer_buf f;
    kurer_buf_init(&f, 16);
    expect_frame_refused(&f, KURER_EMALFORMED);
}

static void af_send_no_envelopes(void)
{
    kurer_buf in;
    pb_empty(&in);
    refuse_frame(10, &in, KURER_EMALFORMED);
}

static void af_send_1025_envelopes(void)
{
    kurer_buf env, send;
    kurer_buf_init(&send, PB_MAX);
    for (int i = 0; i < KURER_SEND_ENVELOPES_MAX + 1; i++) {
        pb_envelope(&env, 16, "lars@mof", 1, 2, 1);
        pb_m(&send, 1, &env);
        kurer_buf_release(&env);
    }
    refuse_frame(10, &send, KURER_ELIMIT);
}

static void af_envelope_short_id(void)
{
    refuse_envelope(15, "lars@mof", 1, 2, 40, KURER_EMALFORMED);
}

static void af_envelope_type_zero(void)
{
    refuse_envelope(16, "lars@mof", 1, 0, 40, KURER_EMALFORMED);
}

static void af_envelope_empty_content(void)
{
    refuse_envelope(16, "lars@mof", 1, 2, 0, KURER_EMALFORMED);
}

static void af_envelope_bad_user(void)
{
    refuse_envelope(16, "Not A User", 1, 2, 40, KURER_EMALFORMED);
}

static void af_envelope_device_zero(void)
{
    refuse_envelope(16, "lars@mof", 0, 2, 40, KURER_EMALFORMED);
}

static void af_envelope_over_protocol_max(void)
{
    refuse_envelope(16, "lars@mof", 1, 2, KURER_ENVELOPE_CONTENT_MAX + 1, KURER_ELIMIT);
}

static void af_ack_no_seqs(void)
{
    kurer_buf in;
    pb_empty(&in);
    refuse_frame(11, &in, KURER_EMALFORMED);
}

static void af_ack_1025_seqs(void)
{
    kurer_buf packed, in;
    kurer_buf_init(&packed, PB_MAX);
    for (uint64_t i = 1; i <= KURER_ACK_SEQS_MAX + 1; i++)
        pb_varint(&packed, i);
    pb_empty(&in);
    pb_m(&in, 1, &packed);
    kurer_buf_release(&packed);
    refuse_frame(11, &in, KURER_ELIMIT);
}

static void af_lookup_65_users(void)
{
    kurer_buf in;
    char u[32];
    pb_empty(&in);
    for (int i = 0; i < KURER_LOOKUP_USERS_MAX + 1; i++) {
        snprintf(u, sizeof(u), "u%d@mof", i);
        pb_str(&in, 1, u);
    }
    refuse_frame(12, &in, KURER_ELIMIT);
}

static void af_lookup_no_users(void)
{
    kurer_buf in;
    pb_empty(&in);
    refuse_frame(12, &in, KURER_EMALFORMED);
}

static void af_lookup_bad_user(void)
{
    kurer_buf in;
    pb_empty(&in);
    pb_str(&in, 1, "lars@mof");
    pb_str(&in, 1, "../../etc/passwd");
    refuse_frame(12, &in, KURER_EMALFORMED);
}

/* PrekeyUpload: registration id (0: left out), a signed prekey (key type byte kt; none if 0),
 * n one-time prekeys. */
static void pb_prekeys(kurer_buf *in, uint32_t reg, uint8_t kt, size_t n)
{
    kurer_buf spk, otk;
    uint8_t key[33], sig[64];
    random_bytes(key, sizeof(key));
    random_bytes(sig, sizeof(sig));
    key[0] = kt;
    pb_empty(in);
    if (reg != 0)
        pb_u(in, 1, reg);
    if (kt != 0) {
        kurer_buf_init(&spk, 256);
        pb_u(&spk, 1, 1);
        pb_s(&spk, 2, key, 33);
        pb_s(&spk, 3, sig, 64);
        pb_u(&spk, 4, (uint64_t)kurer_time_unix());
        pb_m(in, 2, &spk);
        kurer_buf_release(&spk);
    }
    key[0] = 0x05;
    for (size_t i = 0; i < n; i++) {
        kurer_buf_init(&otk, 64);
        pb_u(&otk, 1, i + 1);
        pb_s(&otk, 2, key, 33);
        pb_m(in, 3, &otk);
        kurer_buf_release(&otk);
    }
}

static void af_prekeys_201_one_time(void)
{
    kurer_buf in;
    pb_prekeys(&in, 77, 0x05, KURER_ONE_TIME_PREKEYS_MAX + 1);
    refuse_frame(13, &in, KURER_ELIMIT);
}

static void af_prekeys_registration_zero(void)
{
    kurer_buf in;
    pb_prekeys(&in, 0, 0x05, 1);
    refuse_frame(13, &in, KURER_EMALFORMED);
}

static void af_prekeys_bad_key_type(void)
{
    kurer_buf in;
    pb_prekeys(&in, 77, 0x06, 1);
    refuse_frame(13, &in, KURER_EMALFORMED);
}

static void af_prekeys_no_signed_prekey(void)
{
    kurer_buf in;
    pb_prekeys(&in, 77, 0, 1);
    refuse_frame(13, &in, KURER_EMALFORMED);
}

static void af_fetch_33_ids(void)
{
    kurer_buf packed, in;
    kurer_buf_init(&packed, 256);
    for (uint64_t i = 1; i <= KURER_USER_DEVICES_MAX + 1; i++)
        pb_varint(&packed, i);
    pb_empty(&in);
    pb_str(&in, 1, "lars@mof");
    pb_m(&in, 2, &packed);
    kurer_buf_release(&packed);
    refuse_frame(14, &in, KURER_ELIMIT);
}

static void af_fetch_device_zero(void)
{
    kurer_buf packed, in;
    kurer_buf_init(&packed, 16);
    pb_varint(&packed, 0);
    pb_empty(&in);
    pb_str(&in, 1, "lars@mof");
    pb_m(&in, 2, &packed);
    kurer_buf_release(&packed);
    refuse_frame(14, &in, KURER_EMALFORMED);
}

/* Request-level refusals: an Error with the request's id; the connection stays. */

static int send_status(const kurer_server_frame *r, size_t i)
{
    return r->body == KURER_SERVER_SEND_RESULT ? (int)r->u.send_result.users[i].status
           : r->body == KURER_SERVER_ERROR     ? r->u.error.code
                                               : -999;
}

static void ar_send_over_max_send_envelopes(void)
{
    client *cl = hc_connect(dev_new(uname_new("many"), 1));
    snap s = snap_take();
    assert_int_equal(send_n(cl, g_l2, 17), KURER_ELIMIT); /* max_send_envelopes = 16 */
    expect_alive(cl);
    expect_delta(&s, REJ(KURER_ELIMIT), 1);
    expect_delta(&s, "kurer_envelopes_accepted_total", 0);
}

static void ar_envelope_over_max_envelope(void)
{
    static uint8_t content[8193];
    client *cl = hc_connect(dev_new(uname_new("fat"), 1));
    kurer_envelope e;
    kurer_server_frame r;
    make_env(&e, g_l2, 1, content);
    e.content_len = sizeof(content); /* max_envelope = 8192 */
    snap s = snap_take();
    send_envs(cl, &e, 1, &r);
    assert_int_equal(send_status(&r, 0), KURER_ELIMIT);
    kurer_server_frame_release(&r);
    expect_alive(cl);
    expect_delta(&s, REJ(KURER_ELIMIT), 1);
}

/* An envelope to the sender's own device: not one of its "other devices", so its user's list
 * is stale (the sender's device excluded), and nothing is queued for itself. */
static void ar_envelope_to_self(void)
{
    device *d = dev_new(uname_new("narcissus"), 1);
    client *cl = hc_connect(d);
    snap s = snap_take();
    assert_int_equal(send_n(cl, d, 1), KURER_SEND_STALE_DEVICES);
    expect_delta(&s, REJ(KURER_ESTALEDEVICES), 1);
    expect_delta(&s, "kurer_envelopes_accepted_total", 0);
}

static void ar_envelope_unknown_user(void)
{
    device *ghost = dev_new(uname_new("ghost"), 1); /* never connected */
    client *cl = hc_connect(dev_new(uname_new("caller"), 1));
    snap s = snap_take();
    assert_int_equal(send_n(cl, ghost, 1), KURER_SEND_UNKNOWN_USER);
    expect_delta(&s, REJ(KURER_EUNKNOWNUSER), 1);
    expect_delta(&s, "kurer_envelopes_accepted_total", 0);
}

static void ar_envelope_stale_devices(void)
{
    const char *u = uname_new("twin");
    device *b1 = dev_new(u, 1), *b2 = dev_new(u, 2);
    dev_register(b1);
    dev_register(b2);
    client *cl = hc_connect(dev_new(uname_new("sender"), 1));
    kurer_envelope e;
    uint8_t content[40];
    kurer_server_frame r;
    make_env(&e, b1, 1, content);
    snap s = snap_take();
    send_envs(cl, &e, 1, &r);
    assert_int_equal(send_status(&r, 0), KURER_SEND_STALE_DEVICES);
    assert_string_equal(r.u.send_result.users[0].current.user, u);
    assert_int_equal(r.u.send_result.users[0].current.n_devices, 2);
    kurer_server_frame_release(&r);
    expect_delta(&s, REJ(KURER_ESTALEDEVICES), 1);
    expect_delta(&s, "kurer_envelopes_accepted_total", 0);
}

static void ar_envelope_unknown_device(void)
{
    device fake = *g_l2;
    fake.addr.device_id = 7;
    client *cl = hc_connect(dev_new(uname_new("guess"), 1));
    snap s = snap_take();
    assert_int_equal(send_n(cl, &fake, 1), KURER_SEND_STALE_DEVICES);
    expect_delta(&s, REJ(KURER_ESTALEDEVICES), 1);
}

/* Two envelopes for one device in one request: the relay compares device sets and accepts
 * both (relay.c, handle_send), though protocol.md says "one per device". */
static void ar_duplicate_devices(void)
{
    client *cl = hc_connect(dev_new(uname_new("echo"), 1));
    snap s = snap_take();
    assert_int_equal(send_n(cl, g_l2, 2), KURER_SEND_ACCEPTED);
    expect_delta(&s, "kurer_envelopes_accepted_total", 2);
}

static void ar_mixed_unknown_and_valid(void)
{
    device *ghost = dev_new(uname_new("nobody"), 1);
    client *cl = hc_connect(dev_new(uname_new("mixer"), 1));
    kurer_envelope e[2];
    uint8_t c0[40], c1[40];
    kurer_server_frame r;
    make_env(&e[0], g_l2, 1, c0);
    make_env(&e[1], ghost, 2, c1);
    snap s = snap_take();
    send_envs(cl, e, 2, &r);
    assert_int_equal(r.body, KURER_SERVER_SEND_RESULT);
    assert_int_equal(r.u.send_result.n, 2);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(r.u.send_result.users[i].status,
                         strcmp(r.u.send_result.users[i].user, "lars@mof") == 0
                             ? KURER_SEND_ACCEPTED
                             : KURER_SEND_UNKNOWN_USER);
    kurer_server_frame_release(&r);
    expect_delta(&s, "kurer_envelopes_accepted_total", 1);
    expect_delta(&s, REJ(KURER_EUNKNOWNUSER), 1);
}

/* Acking another device's seq does not remove its envelope. */
static void ar_ack_foreign_seqs(void)
{
    device *v = dev_new(uname_new("victim"), 1);
    dev_register(v);
    client *snd = hc_connect(dev_new(uname_new("sender"), 1)); /* g_l1 spends its send rate */
    assert_int_equal(send_one(snd, v, 1, NULL), KURER_SEND_ACCEPTED);
    hc_free(snd);
    snap s = snap_take();
    client *cv = hc_connect(v);
    kurer_server_frame f;
    expect_body(cv, &f, KURER_SERVER_DELIVER);
    uint64_t seq = f.u.deliver.seq;
    kurer_server_frame_release(&f);
    hc_free(cv); /* not acked */
    client *a = hc_connect(dev_new(uname_new("eraser"), 1));
    kurer_client_frame q;
    uint64_t seqs[3] = {seq - 1, seq, seq + 1};
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_ACK;
    q.u.ack.seqs = seqs;
    q.u.ack.n = 3;
    assert_int_equal(hc_ask(a, &q, NULL), 0);
    cv = hc_connect(v);
    expect_body(cv, &f, KURER_SERVER_DELIVER);
    assert_int_equal(f.u.deliver.seq, seq);
    kurer_server_frame_release(&f);
    expect_delta(&s, "kurer_envelopes_delivered_total", 2);
}

/* protocol.md 3.4: unknown users are left out of a DirectoryResult. */
static void ar_lookup_unknown_left_out(void)
{
    client *cl = hc_connect(dev_new(uname_new("curious"), 1));
    const char *users[2] = {uname_new("nosuch"), "lars@mof"};
    kurer_client_frame q;
    kurer_server_frame r;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_LOOKUP;
    q.u.lookup.users = users;
    q.u.lookup.n = 2;
    snap s = snap_take();
    assert_int_equal(hc_ask(cl, &q, &r), 0);
    assert_int_equal(r.body, KURER_SERVER_DIRECTORY);
    for (size_t i = 0; i < r.u.directory.n; i++)
        if (strcmp(r.u.directory.users[i].user, users[0]) == 0) {
            size_t nd = r.u.directory.users[i].n_devices;
            kurer_server_frame_release(&r);
            fail_msg("the unknown user %s is in the answer (%zu devices)", users[0], nd);
        }
    assert_int_equal(r.u.directory.n, 1);
    assert_int_equal(r.u.directory.users[0].n_devices, 1);
    kurer_server_frame_release(&r);
    expect_delta(&s, "kurer_lookups_rate_limited_total", 0);
}

/* n requests back to back; how many got ERATE (every one gets exactly one answer). */
static int burst(client *cl, kurer_client_frame *q, int n)
{
    uint64_t ids[64];
    int limited = 0;
    kurer_server_frame r;
    assert_true(n <= 64);
    int answered[64] = {0}, left = n;
    for (int i = 0; i < n; i++)
        ids[i] = cl_send(cl, q);
    /* answers may come in any order (ERATE at once, bundles after their commit) */
    while (left > 0) {
        if (cl_next(cl, &r, 10000) == 0)
            fail_msg("%d requests of the burst got no answer", left);
        for (int i = 0; i < n; i++)
            if (r.request_id == ids[i]) {
                if (answered[i]++)
                    fail_msg("request %d of the burst was answered twice", i);
                left--;
                limited += r.body == KURER_SERVER_ERROR && r.u.error.code == KURER_ERATE;
            }
        kurer_server_frame_release(&r);
    }
    return limited;
}

/* lookup_rate = 2 per device (burst 8); the connection stays. */
static void ar_lookup_rate(void)
{
    client *cl = hc_connect(dev_new(uname_new("scanner"), 1));
    const char *users[1] = {"lars@mof"};
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_LOOKUP;
    q.u.lookup.users = users;
    q.u.lookup.n = 1;
    snap s = snap_take();
    int limited = burst(cl, &q, 12);
    assert_true(limited >= 3);
    assert_false(cl->closed);
    expect_delta(&s, "kurer_lookups_rate_limited_total", (uint64_t)limited);
    expect_delta(&s, REJ(KURER_ERATE), (uint64_t)limited);
}

/* ping_rate = 2 per device (burst 8, one spent by cl_connect). */
static void ar_ping_rate(void)
{
    client *cl = hc_connect(dev_new(uname_new("pinger"), 1));
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_PING;
    snap s = snap_take();
    int limited = burst(cl, &q, 12);
    assert_true(limited >= 3);
    assert_false(cl->closed);
    expect_delta(&s, "kurer_pings_rate_limited_total", (uint64_t)limited);
    expect_delta(&s, REJ(KURER_ERATE), (uint64_t)limited);
}

/* send_rate = 3 envelopes/s per device (burst 12), kept across a reconnect. */
static void ar_send_rate_across_reconnect(void)
{
    device *x = dev_new(uname_new("spammer"), 1);
    device *r1 = dev_new(uname_new("inbox"), 1), *r2 = dev_new(uname_new("inbox"), 1);
    dev_register(r1);
    dev_register(r2);
    kurer_envelope e[12];
    uint8_t content[12][40];
    kurer_server_frame r;
    for (uint32_t i = 0; i < 12; i++)
        make_env(&e[i], i < 6 ? r1 : r2, i, content[i]);
    client *cl = hc_connect(x);
    send_envs(cl, e, 12, &r);
    assert_int_equal(send_status(&r, 0), KURER_SEND_ACCEPTED);
    kurer_server_frame_release(&r);
    hc_free(cl);
    snap s = snap_take();
    cl = hc_connect(x);
    assert_int_equal(send_n(cl, r1, 2), KURER_ERATE);
    expect_delta(&s, "kurer_sends_rate_limited_total", 1);
    expect_delta(&s, REJ(KURER_ERATE), 1);
    expect_alive(cl);
}

/* mailbox_sender_max = 8: one sender user's share of one device's mailbox. */
static void ar_mailbox_share(void)
{
    device *v = dev_new(uname_new("target"), 1);
    dev_register(v);
    client *s1 = hc_connect(dev_new(uname_new("flooder"), 1));
    assert_int_equal(send_n(s1, v, 8), KURER_SEND_ACCEPTED);
    snap s = snap_take();
    assert_int_equal(send_n(s1, v, 1), KURER_ELIMIT);
    expect_delta(&s, "kurer_mailbox_share_refused_total", 1);
    expect_delta(&s, REJ(KURER_ELIMIT), 1);
    client *s2 = hc_connect(dev_new(uname_new("friend"), 1));
    assert_int_equal(send_n(s2, v, 1), KURER_SEND_ACCEPTED);
    expect_alive(s1);
}

static void ar_prekeys_bad_signature(void)
{
    device *d = dev_new(uname_new("badsig"), 1);
    client *cl = hc_connect(d);
    kurer_prekey_upload u;
    kurer_one_time_prekey otk[2];
    make_upload(d, &u, otk, 1, 1, 2, 1);
    snap s = snap_take();
    assert_int_equal(upload(cl, &u), KURER_EBADSIG);
    expect_alive(cl);
    expect_delta(&s, REJ(KURER_EBADSIG), 1);
    expect_delta(&s, "kurer_prekey_uploads_total", 0);
}

static void ar_prekeys_other_identity(void)
{
    device *d = dev_new(uname_new("mask"), 1), *other = dev_new(uname_new("face"), 1);
    client *cl = hc_connect(d);
    kurer_prekey_upload u;
    kurer_one_time_prekey otk[2];
    make_upload(other, &u, otk, 1, 1, 2, 0);
    snap s = snap_take();
    assert_int_equal(upload(cl, &u), KURER_EBADSIG);
    expect_delta(&s, REJ(KURER_EBADSIG), 1);
}

static void ar_prekeys_over_pool_max(void)
{
    device *d = dev_new(uname_new("hoarder"), 1);
    client *cl = hc_connect(d);
    kurer_prekey_upload u;
    kurer_one_time_prekey otk[51];
    make_upload(d, &u, otk, 1, 1, 51, 0); /* prekeys_max = 50 */
    snap s = snap_take();
    assert_int_equal(upload(cl, &u), KURER_ELIMIT);
    expect_alive(cl);
    expect_delta(&s, "kurer_prekey_uploads_over_max_total", 1);
    expect_delta(&s, REJ(KURER_ELIMIT), 1);
}

static int fetch_code(client *cl, const char *user, kurer_server_frame *r)
{
    uint64_t id = send_fetch(cl, user, NULL, 0);
    if (!hc_answer(cl, id, r, 10000))
        fail_msg("no answer to a prekey fetch");
    return r->body == KURER_SERVER_ERROR ? r->u.error.code : 0;
}

/* fetch_rate = 2 per device (burst 8), kept across a reconnect. */
static void ar_fetch_rate_across_reconnect(void)
{
    device *g = dev_new(uname_new("drainer"), 1);
    kurer_server_frame r;
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_FETCH_PREKEYS;
    snprintf(q.u.fetch_prekeys.user, sizeof(q.u.fetch_prekeys.user), "lars@mof");
    client *cl = hc_connect(g);
    snap s = snap_take();
    int limited = burst(cl, &q, 10);
    assert_true(limited >= 1);
    hc_free(cl);
    cl = hc_connect(g);
    int again = 0;
    for (int i = 0; i < 2; i++) {
        again += fetch_code(cl, "lars@mof", &r) == KURER_ERATE;
        kurer_server_frame_release(&r);
    }
    if (again == 0)
        fail_msg("the fetch bucket was full again after a reconnect");
    expect_delta(&s, "kurer_prekey_fetches_rate_limited_total", (uint64_t)(limited + again));
    expect_delta(&s, REJ(KURER_ERATE), (uint64_t)(limited + again));
}

/* prekey_take_max = 3: a fourth one-time prekey of one user is withheld from one fetcher (the
 * bundle still comes, with its signed prekey); another fetcher is not affected. */
static void ar_prekeys_withheld(void)
{
    device *v = dev_new(uname_new("pool"), 1);
    kurer_prekey_upload u;
    kurer_one_time_prekey otk[10];
    kurer_server_frame r;
    client *cv = hc_connect(v);
    make_upload(v, &u, otk, 1, 1, 10, 0);
    assert_int_equal(upload(cv, &u), 0);
    hc_free(cv);
    client *f1 = hc_connect(dev_new(uname_new("taker"), 1));
    snap s = snap_take();
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fetch_code(f1, v->addr.user, &r), 0);
        assert_int_equal(r.body, KURER_SERVER_BUNDLES);
        assert_int_equal(r.u.bundles.n, 1);
        int has = r.u.bundles.bundles[0].has_one_time;
        kurer_server_frame_release(&r);
        if (has != (i < 3))
            fail_msg("fetch %d: one-time prekey %s", i + 1,
                     has ? "handed out past prekey_take_max" : "withheld too early");
    }
    expect_delta(&s, "kurer_prekeys_withheld_total", 1);
    client *f2 = hc_connect(dev_new(uname_new("other"), 1));
    assert_int_equal(fetch_code(f2, v->addr.user, &r), 0);
    assert_true(r.u.bundles.bundles[0].has_one_time);
    kurer_server_frame_release(&r);
    expect_delta(&s, "kurer_prekeys_handed_out_total", 4);
}

/* A SendResult too large for one frame (3 users x 32 stale devices with large chains): the
 * request gets Error ELIMIT, exactly one answer, and nothing is stored. */
static void ar_send_result_too_large(void)
{
    kurer_signing_key k;
    kurer_cert ac;
    char display[129], user[3][100];
    device *first[3];
    memset(display, 'D', 128);
    display[128] = '\0';
    authority_new(&k, &ac, 0, 0, display);
    for (int u = 0; u < 3; u++) {
        snprintf(user[u], sizeof(user[u]),
                 "big%d-%d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx@mof", u, g_uniq++);
        for (uint32_t i = 1; i <= KURER_USER_DEVICES_MAX; i++) {
            devopt o = {.display = display, .ikey = &k, .icert = &ac};
            device *d = dev_opt(user[u], i, &o);
            if (i == 1)
                first[u] = d;
            dev_register(d);
        }
    }
    kurer_signing_key_release(&k);
    client *cl = hc_connect(dev_new(uname_new("asker"), 1));
    kurer_envelope e[3];
    uint8_t content[3][40];
    kurer_client_frame q;
    kurer_server_frame r;
    for (int u = 0; u < 3; u++)
        make_env(&e[u], first[u], (uint32_t)u, content[u]);
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_SEND;
    q.u.send.envelopes = e;
    q.u.send.n = 3;
    snap s = snap_take();
    uint64_t id = cl_send(cl, &q);
    if (!hc_answer(cl, id, &r, 5000))
        fail_msg("a SendResult too large for a frame was never answered");
    assert_int_equal(r.body, KURER_SERVER_ERROR);
    assert_int_equal(r.u.error.code, KURER_ELIMIT);
    kurer_server_frame_release(&r);
    expect_alive(cl);
    expect_delta(&s, REJ(KURER_ELIMIT), 1);
    expect_delta(&s, "kurer_envelopes_accepted_total", 0);
}

/* A chain expiring during the connection: Error EEXPIRED (id 0) at its not_after, the close. */
static void ar_expired_during_connection(void)
{
    devopt o = {.not_after = kurer_time_unix() + 2};
    device *d = dev_opt(uname_new("mayfly"), 1, &o);
    snap s = snap_take();
    client *cl = hc_connect(d);
    expect_kicked_within(cl, KURER_EEXPIRED, 5000);
    expect_delta(&s, "kurer_connections_expired_total", 1);
    expect_delta(&s, REJ(KURER_EEXPIRED), 1);
}

/* A list arriving during a connection revokes it: Error EREVOKED (id 0), the close. */
static void ar_revoked_during_connection(void)
{
    device *d = dev_new(uname_new("traitor"), 1);
    client *cd = hc_connect(d);
    kurer_buf l;
    uint64_t serial = d->chain.certs[0].body.serial;
    make_crl(W, ++g_crl_version, &serial, 1, NULL, &l);
    snap s = snap_take();
    client *nk = hc_new();
    assert_int_equal(cl_connect_nk(W, nk), 0);
    assert_int_equal(upload_crl(nk, &l), 0);
    kurer_buf_release(&l);
    expect_kicked_within(cd, KURER_EREVOKED, 5000);
    expect_delta(&s, "kurer_revocation_lists_accepted_total", 1);
    expect_delta(&s, REJ(KURER_EREVOKED), 1);
}

/* ---- NK sessions: only RevocationUpload and RevocationFetch ------------------------------- */

static void nk_refused(kurer_client_frame *q)
{
    client *nk = hc_new();
    kurer_server_frame r;
    assert_int_equal(cl_connect_nk(W, nk), 0);
    snap s = snap_take();
    uint64_t id = cl_send(nk, q);
    if (!hc_answer(nk, id, &r, 5000))
        fail_msg("no answer over NK");
    assert_int_equal(r.body, KURER_SERVER_ERROR);
    assert_int_equal(r.u.error.code, KURER_EPERM);
    kurer_server_frame_release(&r);
    pump(nk, &nk->closed, 3000);
    assert_true(nk->closed);
    expect_delta(&s, REJ(KURER_EPERM), 1);
}

static void an_send(void)
{
    kurer_client_frame q;
    kurer_envelope e;
    uint8_t content[40];
    make_env(&e, g_l2, 1, content);
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_SEND;
    q.u.send.envelopes = &e;
    q.u.send.n = 1;
    nk_refused(&q);
}

static void an_ack(void)
{
    kurer_client_frame q;
    uint64_t seq = 1;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_ACK;
    q.u.ack.seqs = &seq;
    q.u.ack.n = 1;
    nk_refused(&q);
}

static void an_lookup(void)
{
    kurer_client_frame q;
    const char *users[1] = {"lars@mof"};
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_LOOKUP;
    q.u.lookup.users = users;
    q.u.lookup.n = 1;
    nk_refused(&q);
}

static void an_prekeys(void)
{
    kurer_client_frame q;
    kurer_one_time_prekey otk[1];
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_PREKEYS;
    make_upload(g_l1, &q.u.prekeys, otk, 1, 1, 1, 0);
    nk_refused(&q);
}

static void an_fetch(void)
{
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_FETCH_PREKEYS;
    snprintf(q.u.fetch_prekeys.user, sizeof(q.u.fetch_prekeys.user), "lars@mof");
    nk_refused(&q);
}

static void an_ping(void)
{
    kurer_client_frame q;
    memset(&q, 0, sizeof(q));
    q.body = KURER_CLIENT_PING;
    nk_refused(&q);
}

/* There are no NK-only frames: protocol.md 1.4 lets authenticated devices upload lists too. */
static void an_ik_revocation_upload_allowed(void)
{
    client *cl = hc_connect(dev_new(uname_new("publisher"), 1));
    kurer_buf l;
    uint64_t serial = 999999;
    make_crl(W, ++g_crl_version, &serial, 1, NULL, &l);
    snap s = snap_take();
    assert_int_equal(upload_crl(cl, &l), 0);
    kurer_buf_release(&l);
    expect_delta(&s, "kurer_revocation_lists_accepted_total", 1);
}

static int nk_upload(const kurer_buf *l)
{
    client *nk = hc_new();
    assert_int_equal(cl_connect_nk(W, nk), 0);
    int rc = upload_crl(nk, l);
    hc_free(nk);
    return rc;
}

static void an_revocation_bad_signature(void)
{
    kurer_buf l;
    kurer_crl crl;
    uint64_t serial = 999998;
    make_crl(W, g_crl_version + 1, &serial, 1, NULL, &l);
    assert_int_equal(kurer_crl_decode(l.data, l.len, &crl), 0);
    crl.signature[3] ^= 1;
    kurer_buf_reset(&l);
    assert_int_equal(kurer_crl_encode(&crl, &l), 0);
    kurer_crl_release(&crl);
    snap s = snap_take();
    assert_int_equal(nk_upload(&l), KURER_EBADSIG);
    kurer_buf_release(&l);
    expect_delta(&s, REJ(KURER_EBADSIG), 1);
    expect_delta(&s, "kurer_revocation_lists_accepted_total", 0);
}

static void an_revocation_stale(void)
{
    kurer_buf l;
    uint64_t serial = 999997;
    make_crl(W, ++g_crl_version, &serial, 1, NULL, &l);
    assert_int_equal(nk_upload(&l), 0);
    snap s = snap_take();
    assert_int_equal(nk_upload(&l), KURER_ESTALE); /* the same version again */
    kurer_buf_release(&l);
    expect_delta(&s, REJ(KURER_ESTALE), 1);
    expect_delta(&s, "kurer_revocation_lists_accepted_total", 0);
}

static void an_revocation_untrusted_issuer(void)
{
    kurer_crl crl;
    kurer_buf l;
    memset(&crl, 0, sizeof(crl));
    crl.version = 1000;
    crl.issued_at = kurer_time_unix();
    crl.next_update = crl.issued_at + DAY;
    assert_int_equal(kurer_crl_sign(&crl, &W->other_auth_key, &W->other_auth), 0);
    kurer_buf_init(&l, KURER_CRL_BYTES_MAX);
    assert_int_equal(kurer_crl_encode(&crl, &l), 0);
    kurer_crl_release(&crl);
    snap s = snap_take();
    assert_int_equal(nk_upload(&l), KURER_EUNTRUSTED);
    kurer_buf_release(&l);
    expect_delta(&s, REJ(KURER_EUNTRUSTED), 1);
}

/* ---- revocation lists in pages (the issue 9 spec; wire.proto after the lead's change) ----- */

/* A list of the main authority with n serials (so that its bytes span several chunks). */
static void big_crl(uint64_t version, size_t n, kurer_buf *out)
{
    uint64_t *s = calloc(n, sizeof(*s));
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = 1000000 + i;
    make_crl(W, version, s, n, NULL, out);
    free(s);
}

/* ClientFrame{id, revocation_chunk (18): RevocationUploadChunk{offset 1, total 2, data 3}} */
static void pb_upload_chunk(kurer_buf *f, uint64_t id, const uint8_t *chunk, size_t n,
                            uint32_t offset, uint32_t total)
{
    kurer_buf in;
    pb_empty(&in);
    if (offset != 0)
        pb_u(&in, 1, offset);
    pb_u(&in, 2, total);
    pb_s(&in, 3, chunk, n);
    pb_frame(f, id, 18, &in);
    kurer_buf_release(&in);
}

/* ClientFrame{id, revocation_chunk_fetch (19): RevocationChunkFetch{issuer_key_id 1, version 2,
 * offset 3}} */
static void pb_fetch_chunk(kurer_buf *f, uint64_t id, const uint8_t *issuer, uint64_t version,
                           uint32_t offset)
{
    kurer_buf in;
    pb_empty(&in);
    pb_s(&in, 1, issuer, KURER_KEY_ID_LEN);
    if (version != 0)
        pb_u(&in, 2, version);
    if (offset != 0)
        pb_u(&in, 3, offset);
    pb_frame(f, id, 19, &in);
    kurer_buf_release(&in);
}

/* Sends a hand-made frame with request id id; the answer's error code (0: another body). */
static int raw_ask(client *cl, const kurer_buf *f, uint64_t id)
{
    kurer_server_frame r;
    hc_send_raw(cl, f);
    if (!hc_answer(cl, id, &r, 5000))
        fail_msg("no answer to request %llu", (unsigned long long)id);
    int code = r.body == KURER_SERVER_ERROR ? r.u.error.code : 0;
    kurer_server_frame_release(&r);
    return code;
}

#define CHUNK 4096 /* KURER_REVOCATION_UPLOAD_CHUNK */

static void ap_chunk_out_of_order(void)
{
    kurer_buf l, f;
    big_crl(g_crl_version + 1, 1500, &l);
    assert_true(l.len > 3 * CHUNK);
    client *nk = hc_new();
    assert_int_equal(cl_connect_nk(W, nk), 0);
    snap s = snap_take();
    pb_upload_chunk(&f, 1, l.data, CHUNK, 0, (uint32_t)l.len);
    assert_int_equal(raw_ask(nk, &f, 1), 0); /* every chunk but the last: Ok */
    kurer_buf_release(&f);
    pb_upload_chunk(&f, 2, l.data + 2 * CHUNK, CHUNK, 2 * CHUNK, (uint32_t)l.len);
    assert_int_equal(raw_ask(nk, &f, 2), KURER_EINVAL);
    kurer_buf_release(&f);
    kurer_buf_release(&l);
    expect_delta(&s, REJ(KURER_EINVAL), 1);
}

/* upload_buffer_max = 65536 for the partial uploads of all sessions together: EBUSY. */
static void ap_upload_over_buffer(void)
{
    enum { SESSIONS = 6, CHUNKS = 4 };
    kurer_buf l, f;
    client *nk[SESSIONS];
    big_crl(g_crl_version + 1, 2500, &l);
    assert_true(l.len > (CHUNKS + 1) * CHUNK);
    snap s = snap_take();
    int busy = 0;
    for (int i = 0; i < SESSIONS; i++) {
        nk[i] = hc_new();
        assert_int_equal(cl_connect_nk(W, nk[i]), 0);
    }
    int refused[SESSIONS] = {0}; /* an NK session refused its upload is closed */
    for (uint32_t k = 0; k < CHUNKS; k++)
        for (int i = 0; i < SESSIONS; i++) {
            if (nk[i]->closed || refused[i])
                continue;
            pb_upload_chunk(&f, k + 1, l.data + k * CHUNK, CHUNK, k * CHUNK, (uint32_t)l.len);
            int rc = raw_ask(nk[i], &f, k + 1);
            kurer_buf_release(&f);
            assert_true(rc == 0 || rc == KURER_EBUSY);
            busy += rc == KURER_EBUSY;
            refused[i] = rc == KURER_EBUSY;
        }
    kurer_buf_release(&l);
    if (busy == 0)
        fail_msg("%d partial uploads of %d bytes each were all buffered", SESSIONS, CHUNKS * CHUNK);
    expect_delta(&s, REJ(KURER_EBUSY), (uint64_t)busy);
}

static void ap_fetch_unknown_issuer(void)
{
    uint8_t issuer[KURER_KEY_ID_LEN];
    kurer_buf f;
    random_bytes(issuer, sizeof(issuer));
    client *cl = hc_connect(dev_new(uname_new("reader"), 1));
    snap s = snap_take();
    pb_fetch_chunk(&f, 1, issuer, 0, 0);
    assert_int_equal(raw_ask(cl, &f, 1), KURER_ENOTFOUND);
    kurer_buf_release(&f);
    expect_alive(cl);
    expect_delta(&s, REJ(KURER_ENOTFOUND), 1);
}

/* Two newer lists of the main authority are held; a chunk beyond the end, and a chunk of a
 * version no longer held. */
static void ap_fetch_bad_offset_and_version(void)
{
    kurer_buf l, f;
    uint8_t issuer[KURER_KEY_ID_LEN];
    uint64_t serial = 999996;
    for (int i = 0; i < 2; i++) {
        make_crl(W, ++g_crl_version, &serial, 1, NULL, &l);
        assert_int_equal(nk_upload(&l), 0);
        kurer_buf_release(&l);
    }
    kurer_cert_key_id(&W->auth, issuer);
    client *cl = hc_connect(dev_new(uname_new("pager"), 1));
    snap s = snap_take();
    pb_fetch_chunk(&f, 1, issuer, 0, 1000 * 1000); /* the list is a few hundred bytes */
    assert_int_equal(raw_ask(cl, &f, 1), KURER_EINVAL);
    kurer_buf_release(&f);
    pb_fetch_chunk(&f, 2, issuer, g_crl_version - 1, 0);
    assert_int_equal(raw_ask(cl, &f, 2), KURER_ESTALE);
    kurer_buf_release(&f);
    expect_delta(&s, REJ(KURER_EINVAL), 1);
    expect_delta(&s, REJ(KURER_ESTALE), 1);
}

/* ---- group 4: fuzzed frames --------------------------------------------------------------- */

static uint64_t g_seed = 0x6b75726572ULL; /* "kurer"; HOSTILE_SEED overrides */
static uint64_t g_rng;
static int g_fuzz_n = 0;

static void rng_seed(uint64_t salt)
{
    g_rng = (g_seed ^ (salt * 0x9e3779b97f4a7c15ULL)) | 1;
}

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static size_t rndn(size_t n)
{
    return n == 0 ? 0 : (size_t)(rnd() % n);
}

static void rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

static int fuzz_count(int dflt)
{
    return g_fuzz_n > 0 ? g_fuzz_n : dflt;
}

/* 1 to 3 random mutations of buf (len bytes, room for cap). */
static void mutate(uint8_t *buf, size_t *len, size_t cap)
{
    static const uint8_t special[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    int k = rndn(3) != 0 ? 1 : 2 + (int)rndn(2); /* mostly one: more frames still decode */
    for (int m = 0; m < k; m++) {
        size_t n = *len, at = rndn(n);
        switch (rndn(7)) {
        case 0:
            if (n > 0)
                buf[at] ^= (uint8_t)(1u << rndn(8));
            break;
        case 1:
            if (n > 0)
                buf[at] = (uint8_t)rnd();
            break;
        case 2:
            if (n < cap) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = (uint8_t)rnd();
                (*len)++;
            }
            break;
        case 3:
            if (n > 0) {
                memmove(buf + at, buf + at + 1, n - at - 1);
                (*len)--;
            }
            break;
        case 4:
            *len = rndn(n + 1);
            break;
        case 5: {
            size_t from = rndn(n), l = 1 + rndn(16);
            if (from + l > n)
                l = n - from;
            if (n + l <= cap && l > 0) {
                memmove(buf + at + l, buf + at, n - at);
                memmove(buf + at, buf + (from >= at ? from + l : from), l);
                *len += l;
            }
            break;
        }
        default:
            if (n > 0)
                buf[at] = special[rndn(sizeof(special))];
            break;
        }
    }
}

#define FUZZ_CAP 8192
#define NBASE    8

/* Valid frames of every kind, from device d (its prekey upload is signed by it). */
static size_t fuzz_bases(const device *d, uint8_t base[NBASE][FUZZ_CAP], size_t blen[NBASE])
{
    kurer_client_frame q[NBASE];
    kurer_envelope e;
    uint8_t content[40];
    uint64_t seqs[2] = {1, 2};
    const char *users[2] = {"lars@mof", "lena@mof"};
    kurer_one_time_prekey otk[3];
    kurer_buf l;
    uint64_t serial = 424242;
    memset(q, 0, sizeof(q));
    q[0].body = KURER_CLIENT_PING;
    q[0].u.ping.client_time = 12345;
    q[1].body = KURER_CLIENT_LOOKUP;
    q[1].u.lookup.users = users;
    q[1].u.lookup.n = 2;
    make_env(&e, g_l2, 1, content);
    q[2].body = KURER_CLIENT_SEND;
    q[2].u.send.envelopes = &e;
    q[2].u.send.n = 1;
    q[3].body = KURER_CLIENT_ACK;
    q[3].u.ack.seqs = seqs;
    q[3].u.ack.n = 2;
    q[4].body = KURER_CLIENT_FETCH_PREKEYS;
    snprintf(q[4].u.fetch_prekeys.user, sizeof(q[4].u.fetch_prekeys.user), "lars@mof");
    q[5].body = KURER_CLIENT_PREKEYS;
    make_upload(d, &q[5].u.prekeys, otk, 1, 1, 3, 0);
    q[6].body = KURER_CLIENT_REVOCATIONS;
    q[7].body = KURER_CLIENT_REVOCATION;
    make_crl(W, 1, &serial, 1, NULL, &l);
    assert_int_equal(kurer_crl_decode(l.data, l.len, &q[7].u.revocation), 0);
    kurer_buf_release(&l);
    for (size_t i = 0; i < NBASE; i++) {
        kurer_buf b;
        q[i].request_id = 1000 + i;
        kurer_buf_init(&b, FUZZ_CAP);
        assert_int_equal(kurer_client_frame_encode(&q[i], &b), 0);
        memcpy(base[i], b.data, b.len);
        blen[i] = b.len;
        kurer_buf_release(&b);
    }
    kurer_crl_release(&q[7].u.revocation);
    return NBASE;
}

/* The relay must judge a mutated frame as the decoder does: a frame that does not decode gets
 * an Error (id 0) with the decoder's code and the close; one that decodes gets exactly one
 * answer with its request id and the connection stays. */
static void fz_client_frames(void)
{
    static uint8_t base[NBASE][FUZZ_CAP], buf[FUZZ_CAP];
    size_t blen[NBASE];
    uint64_t want_rej[64] = {0};
    int n = fuzz_count(150), bad = 0, closes = 0, answered = 0;
    device *d = dev_new(uname_new("fuzzer"), 1);
    size_t nb = fuzz_bases(d, base, blen);
    rng_seed(1);
    fprintf(stderr, "hostile: fuzz seed %llu, %d client frames\n", (unsigned long long)g_seed, n);
    client *cl = hc_connect(d);
    snap s = snap_take();
    for (int i = 0; i < n; i++) {
        size_t k = rndn(nb), len = blen[k];
        memcpy(buf, base[k], len);
        mutate(buf, &len, sizeof(buf));
        kurer_client_frame f;
        int rc = kurer_client_frame_decode(buf, len, &f);
        uint64_t id = rc == 0 ? f.request_id : 0;
        kurer_client_frame_release(&f);
        if (cl->closed) {
            hc_free(cl);
            cl = hc_connect(d);
        }
        kurer_buf b;
        kurer_buf_init_fixed(&b, buf, sizeof(buf));
        b.len = len;
        hc_send_raw(cl, &b);
        kurer_server_frame r;
        int got = 0, code = 0, body = 0;
        uint64_t end = kurer_time_mono_ms() + 5000;
        while (!got && kurer_time_mono_ms() < end && cl_next(cl, &r, end - kurer_time_mono_ms())) {
            if ((rc != 0 && r.request_id == 0 && r.body == KURER_SERVER_ERROR) ||
                (rc == 0 && r.request_id == id)) {
                got = 1;
                body = (int)r.body;
                code = r.body == KURER_SERVER_ERROR ? r.u.error.code : 0;
            }
            kurer_server_frame_release(&r);
        }
        if (rc != 0) {
            pump(cl, &cl->closed, 3000);
            want_rej[-rc]++;
            closes++;
            if (!got || code != rc || !cl->closed) {
                if (bad++ < 5)
                    fprintf(stderr,
                            "hostile: fuzz frame %d (base %zu, %zu bytes): decoder says %s, relay "
                            "%s%s\n",
                            i, k, len, kurer_err_name(rc), got ? kurer_err_name(code) : "nothing",
                            cl->closed ? "" : " and no close");
            }
        } else {
            answered++;
            if (!got || cl->closed) {
                if (bad++ < 5)
                    fprintf(stderr,
                            "hostile: fuzz frame %d (base %zu): decodes, relay %s (body %d)\n", i,
                            k, got ? "answered then closed" : "did not answer", body);
            }
        }
    }
    fprintf(stderr, "hostile: fuzz: %d refused as malformed, %d answered, %d wrong\n", closes,
            answered, bad);
    assert_int_equal(bad, 0);
    for (int c = 1; c < 64; c++)
        if (want_rej[c] > 0 && delta_now(&s, REJ(-c)) < want_rej[c])
            fail_msg("%s moved by %llu, at least %llu expected", REJ(-c),
                     (unsigned long long)delta_now(&s, REJ(-c)), (unsigned long long)want_rej[c]);
}

/* What the relay must answer to a HandshakeInit payload from d (the spec's order: decode, the
 * Noise key against the leaf's before any signature, then the chain). Fills up to 2 codes. */
static int hs_oracle(kurer_trust *t, const device *d, const uint8_t *p, size_t n, int want[2])
{
    kurer_handshake_init hi;
    kurer_verified v;
    if (n == 0) {
        want[0] = KURER_EMALFORMED;
        return 1;
    }
    int rc = kurer_handshake_init_decode(p, n, &hi);
    if (rc != 0) {
        want[0] = rc;
        return 1;
    }
    int key_ok = kurer_ct_equal(hi.chain.certs[0].body.noise_key, d->pk, 32);
    int vrc = kurer_trust_verify_chain(t, &hi.chain, kurer_time_unix(), &v);
    if (key_ok) {
        want[0] = vrc;
        return 1;
    }
    want[0] = KURER_EKEYMISMATCH;
    /* a structural refusal (role, issuer, validity) may come before the key comparison; a bad
     * signature may not */
    if (vrc != 0 && vrc != KURER_EBADSIG) {
        want[1] = vrc;
        return 2;
    }
    return 1;
}

static void fz_handshake_payloads(void)
{
    static uint8_t buf[FUZZ_CAP];
    device *d = dev_new(uname_new("hsfuzz"), 1);
    kurer_buf hi;
    kurer_trust *t;
    uint64_t want_rej[64] = {0};
    int n = fuzz_count(60), bad = 0, refused = 0;
    assert_int_equal(kurer_trust_new(&t), 0);
    assert_int_equal(kurer_trust_add_root(t, &W->root, kurer_time_unix()), 0);
    hs_init_of(&hi, d);
    rng_seed(2);
    fprintf(stderr, "hostile: fuzz seed %llu, %d handshake payloads\n", (unsigned long long)g_seed,
            n);
    snap s = snap_take();
    for (int i = 0; i < n; i++) {
        size_t len = hi.len;
        int want[2] = {0, 0};
        memcpy(buf, hi.data, len);
        mutate(buf, &len, sizeof(buf));
        int nw = hs_oracle(t, d, buf, len, want);
        rawc *c = rawc_new();
        rawc_start(c, NULL, KURER_NOISE_IK, d->sk, buf, len, NULL, NULL, 1);
        int rc = rawc_finish(c, 5000);
        rawc_free(c);
        if (rc != 0) {
            refused++;
            if (-rc > 0 && -rc < 64)
                want_rej[-rc]++;
        }
        if (rc != want[0] && (nw < 2 || rc != want[1])) {
            if (bad++ < 5)
                fprintf(stderr, "hostile: fuzz handshake %d (%zu bytes): expected %s, relay %s\n",
                        i, len, want[0] ? kurer_err_name(want[0]) : "accepted",
                        rc ? kurer_err_name(rc) : "accepted");
        }
    }
    kurer_buf_release(&hi);
    kurer_trust_free(t);
    fprintf(stderr, "hostile: fuzz: %d handshakes refused, %d wrong\n", refused, bad);
    assert_int_equal(bad, 0);
    expect_delta(&s, "kurer_handshakes_failed_total", (uint64_t)refused);
    for (int c = 1; c < 64; c++)
        if (want_rej[c] > 0)
            expect_delta(&s, REJ(-c), want_rej[c]);
}

/* Random first records: closed at once, for the reason their size makes certain (no Noise
 * message is empty; IK's first message needs 96 bytes, NK's 48; longer ones do not decrypt). */
static void fz_preauth_records(void)
{
    static uint8_t buf[2 + 700];
    uint64_t want_rej[64] = {0};
    int n = fuzz_count(40) / 2 + 1;
    rng_seed(3);
    fprintf(stderr, "hostile: fuzz seed %llu, %d first records\n", (unsigned long long)g_seed, n);
    snap s = snap_take();
    for (int i = 0; i < n; i++) {
        size_t len = rndn(8) == 0 ? 0 : rndn(600) + 1;
        buf[0] = (uint8_t)(len >> 8);
        buf[1] = (uint8_t)len;
        rnd_bytes(buf + 2, len);
        int code = len == 0 ? KURER_EMALFORMED : len < 48 ? KURER_ETRUNC : KURER_EDECRYPT;
        want_rej[-code]++;
        int fd = tcp_from("127.0.0.7");
        (void)tcp_write(fd, buf, len + 2);
        if (tcp_close_ms(fd, 2 * AT_ONCE_MS) < 0)
            fail_msg("random first record %d (%zu bytes) left open", i, len);
        fd_close(fd);
    }
    for (int c = 1; c < 64; c++)
        if (want_rej[c] > 0)
            expect_delta(&s, REJ(-c), want_rej[c]);
}

/* Over NK: a frame that does not decode is refused with the decoder's code; one that decodes
 * but is not a revocation upload or fetch gets EPERM; both close. */
static void fz_nk_frames(void)
{
    static uint8_t base[NBASE][FUZZ_CAP], buf[FUZZ_CAP];
    size_t blen[NBASE];
    int n = fuzz_count(40) / 2 + 1, bad = 0;
    device *d = dev_new(uname_new("nkfuzz"), 1);
    size_t nb = fuzz_bases(d, base, blen);
    rng_seed(4);
    fprintf(stderr, "hostile: fuzz seed %llu, %d NK frames\n", (unsigned long long)g_seed, n);
    for (int i = 0; i < n; i++) {
        size_t k = rndn(nb), len = blen[k];
        memcpy(buf, base[k], len);
        mutate(buf, &len, sizeof(buf));
        kurer_client_frame f;
        int rc = kurer_client_frame_decode(buf, len, &f);
        uint64_t id = rc == 0 ? f.request_id : 0;
        int allowed = rc == 0 && (f.body == KURER_CLIENT_REVOCATION ||
                                  f.body == KURER_CLIENT_REVOCATION_CHUNK); /* uploads only */
        kurer_client_frame_release(&f);
        client *nk = hc_new();
        int crc = KURER_ERATE;
        for (int tries = 0; tries < 20 && crc == KURER_ERATE; tries++) {
            crc = cl_connect_nk(W, nk);
            if (crc == KURER_ERATE) {
                cl_free(nk);
                usleep(300 * 1000);
            }
        }
        assert_int_equal(crc, 0);
        kurer_buf b;
        kurer_buf_init_fixed(&b, buf, sizeof(buf));
        b.len = len;
        hc_send_raw(nk, &b);
        kurer_server_frame r;
        int got = 0, code = 0;
        uint64_t end = kurer_time_mono_ms() + 5000;
        while (!got && kurer_time_mono_ms() < end && cl_next(nk, &r, end - kurer_time_mono_ms())) {
            if (r.request_id == (rc != 0 ? 0 : id)) {
                got = 1;
                code = r.body == KURER_SERVER_ERROR ? r.u.error.code : 0;
            }
            kurer_server_frame_release(&r);
        }
        int want = rc != 0 ? rc : allowed ? code : KURER_EPERM;
        if (!allowed)
            pump(nk, &nk->closed, 3000);
        if (!got || code != want || (!allowed && !nk->closed)) {
            if (bad++ < 5)
                fprintf(stderr, "hostile: fuzz NK frame %d: expected %s, relay %s%s\n", i,
                        kurer_err_name(want), got ? kurer_err_name(code) : "nothing",
                        !allowed && !nk->closed ? " and no close" : "");
        }
        hc_free(nk);
    }
    assert_int_equal(bad, 0);
}

/* Records of an authenticated (confirmed) session: over max_record (16384 here), exactly at it
 * but no transport message, a replayed record, a bad tag, records out of order. */
static rawc *confirmed(void)
{
    rawc *c = rawc_new();
    int code = 0;
    assert_int_equal(rawc_ik(c, NULL, dev_new(uname_new("rec"), 1)), 0);
    assert_int_equal(rawc_answer(c, rawc_ping(c), &code, 5000), KURER_SERVER_PONG);
    return c;
}

static void expect_raw_closed(rawc *c, const snap *s, int code)
{
    if (tcp_close_ms(c->fd, AT_ONCE_MS * 2) < 0)
        fail_msg("still open: expected the close with %s", kurer_err_name(code));
    expect_delta(s, REJ(code), 1);
}

static void fz_record_over_max_record(void)
{
    static uint8_t b[16385 + 2];
    rawc *c = confirmed();
    snap s = snap_take();
    b[0] = 0x40;
    b[1] = 0x01;
    random_bytes(b + 2, 16385);
    (void)tcp_write(c->fd, b, sizeof(b));
    expect_raw_closed(c, &s, KURER_ELIMIT);
}

static void fz_record_at_max_record(void)
{
    static uint8_t b[16384 + 2];
    rawc *c = confirmed();
    snap s = snap_take();
    b[0] = 0x40;
    b[1] = 0x00;
    random_bytes(b + 2, 16384);
    (void)tcp_write(c->fd, b, sizeof(b));
    expect_raw_closed(c, &s, KURER_EDECRYPT);
}

static void fz_replayed_record(void)
{
    rawc *c = confirmed();
    kurer_buf r;
    uint8_t ping[] = {0x08, 0x09, 0x7a, 0x00}; /* request_id 9, Ping{} */
    int code = 0;
    rawc_seal(c, ping, sizeof(ping), &r);
    assert_int_equal(tcp_write(c->fd, r.data, r.len), 0);
    assert_int_equal(rawc_answer(c, 9, &code, 5000), KURER_SERVER_PONG);
    snap s = snap_take();
    (void)tcp_write(c->fd, r.data, r.len);
    kurer_buf_release(&r);
    expect_raw_closed(c, &s, KURER_EDECRYPT);
}

static void fz_bad_tag(void)
{
    rawc *c = confirmed();
    kurer_buf r;
    uint8_t ping[] = {0x08, 0x09, 0x7a, 0x00};
    rawc_seal(c, ping, sizeof(ping), &r);
    r.data[r.len - 1] ^= 0x80;
    snap s = snap_take();
    (void)tcp_write(c->fd, r.data, r.len);
    kurer_buf_release(&r);
    expect_raw_closed(c, &s, KURER_EDECRYPT);
}

static void fz_reordered_records(void)
{
    rawc *c = confirmed();
    kurer_buf r1, r2;
    uint8_t p1[] = {0x08, 0x0a, 0x7a, 0x00}, p2[] = {0x08, 0x0b, 0x7a, 0x00};
    rawc_seal(c, p1, sizeof(p1), &r1);
    rawc_seal(c, p2, sizeof(p2), &r2);
    snap s = snap_take();
    (void)tcp_write(c->fd, r2.data, r2.len);
    (void)tcp_write(c->fd, r1.data, r1.len);
    kurer_buf_release(&r1);
    kurer_buf_release(&r2);
    expect_raw_closed(c, &s, KURER_EDECRYPT);
}

/* ---- the catalogue ------------------------------------------------------------------------ */

#define C(g, f)                                                                                    \
    {                                                                                              \
#f, g, f                                                                                   \
    }
static const hcase cases[] = {
    C(G_PRE, pre_garbage),
    C(G_PRE, pre_zero_length_record),
    C(G_PRE, pre_length_prefix_ffff),
    C(G_PRE, pre_over_max_preauth_record),
    C(G_PRE, pre_at_max_preauth_record),
    C(G_PRE, pre_http_request),
    C(G_PRE, pre_tls_client_hello),
    C(G_PRE, pre_truncated_record_stall),
    C(G_PRE, pre_truncated_record_then_eof),
    C(G_PRE, pre_half_length_prefix),
    C(G_PRE, pre_stalled_handshake),
    C(G_PRE, pre_slow_loris),
    C(G_PRE, pre_wrong_relay_key),
    C(G_PRE, pre_wrong_prologue),
    C(G_PRE, pre_per_address_limit),
    C(G_PRE, pre_max_handshakes),
    C(G_PRE, pre_nk_counts_as_preauth),
    C(G_PRE, pre_nk_deadline),
    C(G_PRE, pre_nk_oversize_record),
    C(G_PRE, pre_connect_flood),
    C(G_PRE, pre_reset_mid_handshake),

    C(G_AUTH, auth_unknown_root),
    C(G_AUTH, auth_expired_device),
    C(G_AUTH, auth_not_yet_valid_device),
    C(G_AUTH, auth_expired_authority),
    C(G_AUTH, auth_revoked_device),
    C(G_AUTH, auth_wrong_noise_key),
    C(G_AUTH, auth_key_checked_before_signature),
    C(G_AUTH, auth_bad_device_signature),
    C(G_AUTH, auth_device_signed_by_root),
    C(G_AUTH, auth_clearance_above_issuer),
    C(G_AUTH, auth_clearance_secret),
    C(G_AUTH, auth_foreign_subject),
    C(G_AUTH, auth_authority_as_leaf),
    C(G_AUTH, auth_chain_missing_authority),
    C(G_AUTH, auth_chain_three_certs),
    C(G_AUTH, auth_chain_four_certs),
    C(G_AUTH, auth_empty_handshake_init),
    C(G_AUTH, auth_wrong_protocol_version),
    C(G_AUTH, auth_truncated_chain_bytes),
    C(G_AUTH, auth_no_chain),
    C(G_AUTH, auth_garbage_payload),
    C(G_AUTH, auth_replayed_message1),
    C(G_AUTH, auth_unconfirmed_gets_no_pushes),
    C(G_AUTH, auth_unconfirmed_deadline),
    C(G_AUTH, auth_unconfirmed_oversize_record),
    C(G_AUTH, auth_unconfirmed_does_not_displace),
    C(G_AUTH, auth_first_record_garbage),
    C(G_AUTH, auth_nk_with_payload),
    C(G_AUTH, auth_nk_rate),

    C(G_AFTER, af_request_id_zero),
    C(G_AFTER, af_no_body),
    C(G_AFTER, af_unknown_body),
    C(G_AFTER, af_two_bodies),
    C(G_AFTER, af_noncanonical_varint),
    C(G_AFTER, af_garbage_plaintext),
    C(G_AFTER, af_empty_frame),
    C(G_AFTER, af_send_no_envelopes),
    C(G_AFTER, af_send_1025_envelopes),
    C(G_AFTER, af_envelope_short_id),
    C(G_AFTER, af_envelope_type_zero),
    C(G_AFTER, af_envelope_empty_content),
    C(G_AFTER, af_envelope_bad_user),
    C(G_AFTER, af_envelope_device_zero),
    C(G_AFTER, af_envelope_over_protocol_max),
    C(G_AFTER, af_ack_no_seqs),
    C(G_AFTER, af_ack_1025_seqs),
    C(G_AFTER, af_lookup_65_users),
    C(G_AFTER, af_lookup_no_users),
    C(G_AFTER, af_lookup_bad_user),
    C(G_AFTER, af_prekeys_201_one_time),
    C(G_AFTER, af_prekeys_registration_zero),
    C(G_AFTER, af_prekeys_bad_key_type),
    C(G_AFTER, af_prekeys_no_signed_prekey),
    C(G_AFTER, af_fetch_33_ids),
    C(G_AFTER, af_fetch_device_zero),
    C(G_AFTER, ar_send_over_max_send_envelopes),
    C(G_AFTER, ar_envelope_over_max_envelope),
    C(G_AFTER, ar_envelope_to_self),
    C(G_AFTER, ar_envelope_unknown_user),
    C(G_AFTER, ar_envelope_stale_devices),
    C(G_AFTER, ar_envelope_unknown_device),
    C(G_AFTER, ar_duplicate_devices),
    C(G_AFTER, ar_mixed_unknown_and_valid),
    C(G_AFTER, ar_ack_foreign_seqs),
    C(G_AFTER, ar_lookup_unknown_left_out),
    C(G_AFTER, ar_lookup_rate),
    C(G_AFTER, ar_ping_rate),
    C(G_AFTER, ar_send_rate_across_reconnect),
    C(G_AFTER, ar_mailbox_share),
    C(G_AFTER, ar_prekeys_bad_signature),
    C(G_AFTER, ar_prekeys_other_identity),
    C(G_AFTER, ar_prekeys_over_pool_max),
    C(G_AFTER, ar_fetch_rate_across_reconnect),
    C(G_AFTER, ar_prekeys_withheld),
    C(G_AFTER, ar_send_result_too_large),
    C(G_AFTER, ar_expired_during_connection),
    C(G_AFTER, ar_revoked_during_connection),
    C(G_AFTER, an_send),
    C(G_AFTER, an_ack),
    C(G_AFTER, an_lookup),
    C(G_AFTER, an_prekeys),
    C(G_AFTER, an_fetch),
    C(G_AFTER, an_ping),
    C(G_AFTER, an_ik_revocation_upload_allowed),
    C(G_AFTER, an_revocation_bad_signature),
    C(G_AFTER, an_revocation_stale),
    C(G_AFTER, an_revocation_untrusted_issuer),
    C(G_AFTER, ap_chunk_out_of_order),
    C(G_AFTER, ap_upload_over_buffer),
    C(G_AFTER, ap_fetch_unknown_issuer),
    C(G_AFTER, ap_fetch_bad_offset_and_version),

    C(G_FUZZ, fz_client_frames),
    C(G_FUZZ, fz_handshake_payloads),
    C(G_FUZZ, fz_preauth_records),
    C(G_FUZZ, fz_nk_frames),
    C(G_FUZZ, fz_record_over_max_record),
    C(G_FUZZ, fz_record_at_max_record),
    C(G_FUZZ, fz_replayed_record),
    C(G_FUZZ, fz_bad_tag),
    C(G_FUZZ, fz_reordered_records),
};
#undef C

int main(int argc, char **argv)
{
    enum { NCASES = sizeof(cases) / sizeof(cases[0]) };
    static struct CMUnitTest tests[NCASES];
    const char *filter = argc > 2 ? argv[2] : NULL;
    int failed = 0, ran = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: test_hostile prehandshake|auth|after|fuzz|all [CASE]\n");
        return 2;
    }
    if (getenv("HOSTILE_SEED") != NULL)
        g_seed = strtoull(getenv("HOSTILE_SEED"), NULL, 0);
    if (getenv("HOSTILE_FUZZ_N") != NULL)
        g_fuzz_n = atoi(getenv("HOSTILE_FUZZ_N"));
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(kurer_crypto_init(), 0);
    for (int g = 0; g < G_COUNT; g++) {
        if (strcmp(argv[1], "all") != 0 && strcmp(argv[1], group_names[g]) != 0)
            continue;
        size_t n = 0;
        for (size_t i = 0; i < NCASES; i++) {
            if (cases[i].group != g || (filter != NULL && strstr(cases[i].name, filter) == NULL))
                continue;
            memset(&tests[n], 0, sizeof(tests[n]));
            tests[n].name = cases[i].name;
            tests[n].test_func = run_case;
            tests[n].teardown_func = case_teardown;
            tests[n].initial_state = (void *)&cases[i];
            n++;
        }
        if (n == 0)
            continue;
        g_group = g;
        ran += (int)n;
        failed += _cmocka_run_group_tests(group_names[g], tests, n, group_setup, group_teardown);
    }
    if (ran == 0) {
        fprintf(stderr, "test_hostile: no case matches\n");
        return 2;
    }
    return failed != 0;
}
