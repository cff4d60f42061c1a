/* The harness of the relay integration tests (test_relay.c, hostile_test.c): a PKI of two roots
 * with one authority each, a real kurer-relay process on 127.0.0.1 port 0 (KURER_RELAY_BIN), a
 * test client on net/ (IK and NK), raw TCP peers, and the relay's metrics page. Every wait is
 * bounded; every failure is a cmocka assertion, so these run inside a cmocka test only. One
 * thread: each client has its own uv loop, run only while the test pumps it. */
#ifndef KURER_TEST_RELAY_HARNESS_H
#define KURER_TEST_RELAY_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <sys/types.h>

#include "kurer/cert.h"
#include "kurer/crypto.h"
#include "kurer/frame.h"
#include "kurer/net.h"
#include "kurer/signal.h"
#include "kurer/util.h"

#define DAY ((int64_t)86400)

/* Pushes that older tests do not expect (PrekeysLow on connect, RevocationLists when a list
 * arrives) are dropped by the test client unless a test sets this (setup clears it). */
extern int g_keep_pushes;

/* ---- PKI ---------------------------------------------------------------------------------- */

typedef struct device {
    kurer_chain chain;
    uint8_t sk[32], pk[32];
    uint8_t id_pub[33], id_priv[32]; /* libsignal identity key, in the certificate */
    kurer_device_address addr;
} device;

typedef struct world {
    char dir[256];
    kurer_signing_key root_key, auth_key, other_root_key, other_auth_key;
    kurer_cert root, auth, other_root, other_auth;
    pid_t relay;
    char port[16];
    uint8_t relay_pk[32];
    struct sockaddr_storage addr;
    struct sockaddr_storage maddr; /* metrics, when started with --metrics */
    int want_media;                /* set before a start: read the "media" line too */
    struct sockaddr_storage media; /* the media relay's UDP address (want_media) */
} world;

/* A body valid from a day ago for a year, clearance RESTRICTED, display name "test". */
void body_common(kurer_cert_body *b, kurer_role role, const char *subject, uint64_t serial);
/* A root (CONFIDENTIAL ceiling, serial 1) and its authority "mof" (serial 100). */
void make_ca(kurer_signing_key *rk, kurer_cert *root, kurer_signing_key *ak, kurer_cert *auth,
             const char *root_name);
/* A device of `user` under the main (or, with other, the other root's) authority; expired: valid
 * from 10 days ago to yesterday; wrong_key: the certificate's noise key is not the device's. */
void make_device(world *w, device *d, const char *user, uint32_t id, uint64_t serial, int other,
                 int expired, int wrong_key);

/* ---- the relay process -------------------------------------------------------------------- */

void write_file(const char *path, const void *data, size_t n);
/* Starts the relay (--dir W/relay --root W/root.crt, debug logs to W/relay.log) with up to 12
 * extra arguments; reads "listening" (and "metrics" when --metrics is among them) from its
 * stdout into w->addr (w->maddr). */
void start_relay_v(world *w, const char *const *extra, int n_extra);
/* The same without asserting that it started: 0, or -1 if the relay exited (reaped) or printed no
 * "listening" line within 15 s (its stderr is in W/relay.log). */
int try_start_relay_v(world *w, const char *const *extra, int n_extra);
/* The same with the whole command line (argv[0] the binary, NULL-terminated; the metrics line is
 * read when "--metrics" is among them); stdout read as above, stderr to W/relay.log. */
int try_start_relay_argv(world *w, const char *const *argv);
void start_relay(world *w, const char *extra1, const char *extra2);
/* Sends sig and reaps the relay (SIGKILL after 10 s); returns its wait status, -1 if none. */
int stop_relay(world *w, int sig);
/* `kurer-relay init` in W/relay; reads the relay's public key into w->relay_pk. */
void init_relay(world *w);
/* cmocka setup/teardown: a fresh world in a temporary folder (both PKIs, root.crt, an initialised
 * relay folder, no relay running) / kill the relay, remove the folder. */
int setup(void **state);
int teardown(void **state);

/* ---- a test client on net/ ---------------------------------------------------------------- */

#define QMAX 4096

typedef struct client {
    uv_loop_t loop;
    kurer_conn *c;
    int established, closed, close_err;
    kurer_handshake_accept acc;
    uint8_t *q[QMAX]; /* received frames, undecoded, in arrival order */
    size_t qlen[QMAX];
    size_t qhead, qtail;
    uint64_t next_req;
} client;

/* The callbacks every test client uses (data: the client). */
extern const kurer_conn_cbs cl_cbs;

/* Runs the client's loop until *flag is set (never, if NULL) or ms pass. */
void pump(client *cl, const int *flag, uint64_t ms);
/* Connects with IK and runs the handshake; on acceptance confirms the session with a Ping (see
 * cl_confirm). Returns 0 if accepted, else the relay's error code (or KURER_ECLOSED if it just
 * closed). Call cl_free afterwards in every case. */
int cl_connect(world *w, client *cl, const device *d);
/* Sends a Ping and waits (10 s) for its answer, which is removed from the queue wherever it is. */
void cl_confirm(client *cl);
/* Removes the queued frame answering request id into *f (NULL: dropped); 1 if found. */
int cl_take(client *cl, uint64_t id, kurer_server_frame *f);
/* An unauthenticated Noise NK session (what kurer-admin publish opens). */
int cl_connect_nk(world *w, client *cl);
/* Closes (if open), waits for the close, closes the loop, frees the queue. */
void cl_free(client *cl);
/* Sets f->request_id to the next id, encodes and sends f; returns the id. */
uint64_t cl_send(client *cl, kurer_client_frame *f);
/* The next server frame (decoded into *f; release it), or 0 if none came within ms. */
int cl_next(client *cl, kurer_server_frame *f, uint64_t ms);
/* The next frame (10 s) must have this body. */
void expect_body(client *cl, kurer_server_frame *f, kurer_server_body body);
/* Waits for the answer to request id (pushes skipped); the caller releases *r. */
void wait_answer(client *cl, uint64_t id, kurer_server_frame *r);
/* Waits for the Error push (id 0) that announces a close, and for the close. */
void expect_kicked(client *cl, int code);

/* A MESSAGE envelope to `to` with 40 bytes of content (into content) starting with n. */
void make_env(kurer_envelope *e, const device *to, uint32_t n, uint8_t *content);
/* Sends one envelope to `to`; returns the send status (or the Error code). */
int send_one(client *cl, const device *to, uint32_t n, uint8_t id_out[16]);
/* send_one in two halves: the send (its request id), and its answer's status within ms (-1:
 * none came). */
uint64_t send_start(client *cl, const device *to, uint32_t n, uint8_t id_out[16]);
int send_wait(client *cl, uint64_t id, uint64_t ms);

/* Builds an upload of a signed prekey (signed by d's identity key, or corrupted) and n one-time
 * prekeys with ids first..first+n-1 (into otk). */
void make_upload(const device *d, kurer_prekey_upload *u, kurer_one_time_prekey *otk,
                 uint32_t spk_id, uint32_t first, size_t n, int bad_sig);
/* Sends an upload and returns 0 for Ok or the error code. */
int upload(client *cl, const kurer_prekey_upload *u);
uint64_t send_fetch(client *cl, const char *user, const uint32_t *ids, size_t n);
/* An Ack of a seq that does not exist: answered after everything submitted to the store before
 * it, so it marks "no more pushes from earlier store work". */
uint64_t store_barrier(client *cl);

/* A list of the main authority, version v, revoking the given serials; written to path (if not
 * NULL) and returned encoded in *out (release it). */
void make_crl(world *w, uint64_t v, const uint64_t *serials, size_t n, const char *path,
              kurer_buf *out);
/* Sends a RevocationUpload of the encoded list; 0 for Ok, else the relay's code. */
int upload_crl(client *cl, const kurer_buf *list);

/* ---- raw TCP peers and metrics ------------------------------------------------------------ */

/* A blocking TCP connection to the relay. */
int raw_connect(world *w);
/* 1 if the peer closed fd (EOF or error) within ms; whatever it sent is read and dropped. */
int raw_closed_within(int fd, int ms);
/* The metrics page (GET /metrics on w->maddr); free it. */
char *scrape(world *w);
/* The value of one sample (name with labels, exactly as printed); 0 if absent (the relay prints
 * rejection counters only once they are non-zero). */
uint64_t metric(const char *page, const char *name);
/* Asserts the commits so far (at least min_commits), the histograms (accepted sends so far),
 * kurer_build_info and the process lines. */
void metrics_check_shapes(const char *page, uint64_t accepted, uint64_t min_commits);
uint64_t metric_now(world *w, const char *name);

#endif
