/* Shared pieces of the benchmarks: certificates made on the spot, a kurer-relay child process,
 * latency histograms, /proc readings, the relay's metrics page and JSON lines.
 * Benchmark code, not part of any library: it may exit on setup errors (bench_die). */
#ifndef KURER_BENCH_COMMON_H
#define KURER_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>
#include <sys/types.h>

#include "kurer/cert.h"
#include "kurer/frame.h"
#include "kurer/keys.h"

#define BENCH_DAY ((int64_t)86400)

_Noreturn void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t bench_now_ns(void);
double bench_now_s(void);

/* ---- PKI: a root, one authority (mof), devices ------------------------------------------- */

typedef struct bench_pki {
    kurer_signing_key root_key, auth_key;
    kurer_cert root, auth;
    uint8_t root_bytes[KURER_CERT_MAX];
    size_t root_len;
} bench_pki;

/* What a load generator needs of one device: its Noise key and its encoded handshake payload. */
typedef struct bench_device {
    char user[KURER_SUBJECT_MAX + 1];
    uint8_t sk[32], pk[32];
    uint8_t *hello; /* HandshakeInit bytes (heap) */
    size_t hello_len;
} bench_device;

void bench_pki_init(bench_pki *p);
void bench_pki_free(bench_pki *p);
/* Writes the root certificate to path. */
void bench_pki_write_root(const bench_pki *p, const char *path);
/* A device certificate chain for user (device 1) with a fresh Noise key. */
void bench_make_chain(bench_pki *p, const char *user, uint64_t serial, uint8_t sk[32],
                      uint8_t pk[32], kurer_chain *out);
void bench_device_make(bench_pki *p, bench_device *d, const char *user, uint64_t serial);
void bench_device_free(bench_device *d);

/* ---- kurer-relay (or the reference forwarder) as a child process -------------------------- */

typedef struct bench_server {
    pid_t pid;
    char dir[256];
    struct sockaddr_storage addr;
    struct sockaddr_storage maddr;
    int have_metrics;
    struct sockaddr_storage media; /* the media relay's UDP address (have_media) */
    int have_media;                /* the config named media_listen: its "media" line was read */
    uint8_t pk[32];
} bench_server;

/* The kurer-relay binary the benchmarks start: $KURER_BENCH_RELAY if set (e.g. a build of an
 * older tree, to compare), else the one of this build. */
const char *bench_relay_bin(void);
/* 1 if that relay accepts `key = value` in its config file (relays refuse keys they do not
 * know: a relay from before a key was added says no). Starts no server. */
int bench_relay_knows_key(const char *key, const char *value);
/* Makes a temporary folder (bench->dir) with root.crt, writes config (the whole text of the
 * relay's config file; NULL: no --config, the relay's defaults) and runs `kurer-relay init` and
 * `run` on 127.0.0.1:0 with metrics on 127.0.0.1:0. 0, or -1 if the relay did not start (its
 * stderr is in DIR/server.log; bench_server_stop removes the folder). */
int bench_relay_start_config(bench_server *s, const bench_pki *p, const char *config);
/* bench_relay_start_config with the benchmarks' config (send_rate = 0 so that the per-device
 * rate limit does not cap a benchmark, mailbox_max large; on a relay that knows them, no
 * per-address bound, ping_rate and lookup_rate 0); exits if the relay does not start. */
void bench_relay_start(bench_server *s, const bench_pki *p);
/* The same with extra config lines appended (e.g. `store = postgres`). */
void bench_relay_start_extra(bench_server *s, const bench_pki *p, const char *extra);
/* The reference forwarder (bench_fwd) on 127.0.0.1:0; durable: with SQLite in dir. */
void bench_fwd_start(bench_server *s, int durable);
/* bench_fwd --pg CONNINFO (pg_limit): its writer inserts into the relay's PostgreSQL schema. */
void bench_fwd_start_pg(bench_server *s, const char *conninfo);
/* SIGTERM and reap (SIGKILL after 20 s): 0 if the relay exited cleanly (its store closed, the
 * WAL checkpointed); the folder is kept. */
int bench_relay_term(bench_server *s);
/* Runs the relay of s again, after bench_relay_term, on its folder and its former port (metrics
 * on a new one): 0, or -1 as bench_relay_start_config. */
int bench_relay_restart(bench_server *s);
/* SIGKILL (the figures are taken; nothing to shut down gracefully), reap, remove the folder. */
void bench_server_stop(bench_server *s);

/* ---- figures ------------------------------------------------------------------------------ */

#define BENCH_HIST_BUCKETS 600

/* Log-linear histogram of microseconds (16 sub-buckets per power of two: about 3 %). */
typedef struct bench_hist {
    uint64_t n;
    uint64_t max;
    uint64_t b[BENCH_HIST_BUCKETS];
} bench_hist;

void bench_hist_add(bench_hist *h, uint64_t us);
void bench_hist_merge(bench_hist *into, const bench_hist *from);
/* The q-quantile (0..1) in milliseconds; 0 when empty. */
double bench_hist_ms(const bench_hist *h, double q);

/* CPU seconds (user + system) of a process; -1 if unreadable. */
double bench_proc_cpu_s(pid_t pid);
/* Resident set size in bytes; 0 if unreadable. */
uint64_t bench_proc_rss(pid_t pid);
/* A "Field: N kB" line of /proc/PID/status (e.g. "VmRSS", "VmHWM") in KiB; 0 if unreadable. */
uint64_t bench_proc_status_kib(pid_t pid, const char *field);
/* Resets the peak RSS (VmHWM) of a child to its current RSS (clear_refs 5); 0 or -1. */
int bench_proc_reset_peak(pid_t pid);
/* Raises the soft open-files limit to the hard one; returns the new soft limit. */
uint64_t bench_raise_nofile(void);

/* Reads the relay's metrics page; returns the value of metric name (exact, without labels),
 * or -1. text: filled with the page (NUL-terminated, cap bytes). */
int bench_metrics_fetch(const struct sockaddr_storage *addr, char *text, size_t cap);
double bench_metric(const char *text, const char *name);

/* ---- JSON lines --------------------------------------------------------------------------- */

typedef struct bench_json {
    char s[4096];
    size_t len;
} bench_json;

void bench_json_begin(bench_json *j, const char *bench);
void bench_json_num(bench_json *j, const char *key, double v);
void bench_json_int(bench_json *j, const char *key, uint64_t v);
void bench_json_str(bench_json *j, const char *key, const char *v);
/* Adds "cmd" (the command line) and prints the line on stdout. */
void bench_json_end(bench_json *j, int argc, char **argv);

#endif
