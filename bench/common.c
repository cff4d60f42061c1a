/* Shared benchmark helpers (see common.h). */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kurer/crypto.h"
#include "kurer/json.h"
#include "kurer/net.h"
#include "kurer/util.h"

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_now_s(void)
{
    return (double)bench_now_ns() / 1e9;
}

/* ---- PKI ---------------------------------------------------------------------------------- */

static void body_common(kurer_cert_body *b, kurer_role role, const char *subject, uint64_t serial)
{
    int64_t now = kurer_time_unix();
    memset(b, 0, sizeof(*b));
    b->version = 1;
    b->serial = serial;
    b->role = role;
    snprintf(b->subject, sizeof(b->subject), "%s", subject);
    snprintf(b->display_name, sizeof(b->display_name), "bench");
    b->clearance = KURER_LEVEL_CONFIDENTIAL;
    b->not_before = now - BENCH_DAY;
    b->not_after = now + 30 * BENCH_DAY;
}

void bench_pki_init(bench_pki *p)
{
    kurer_cert_body b;
    kurer_buf buf;
    memset(p, 0, sizeof(*p));
    if (kurer_crypto_init() != 0)
        bench_die("kurer_crypto_init failed");
    if (kurer_signing_key_generate(&p->root_key) != 0 ||
        kurer_signing_key_generate(&p->auth_key) != 0)
        bench_die("key generation failed");
    body_common(&b, KURER_ROLE_ROOT, "dk", 1);
    memcpy(b.signing_key, p->root_key.pk, 32);
    if (kurer_cert_sign(&b, &p->root_key, &p->root) != 0)
        bench_die("root signing failed");
    body_common(&b, KURER_ROLE_AUTHORITY, "mof", 2);
    memcpy(b.signing_key, p->auth_key.pk, 32);
    if (kurer_cert_sign(&b, &p->root_key, &p->auth) != 0)
        bench_die("authority signing failed");
    kurer_buf_init_fixed(&buf, p->root_bytes, sizeof(p->root_bytes));
    if (kurer_cert_encode(&p->root, &buf) != 0)
        bench_die("root encoding failed");
    p->root_len = buf.len;
}

void bench_pki_free(bench_pki *p)
{
    kurer_signing_key_release(&p->root_key);
    kurer_signing_key_release(&p->auth_key);
}

void bench_pki_write_root(const bench_pki *p, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p->root_bytes, 1, p->root_len, f) != p->root_len)
        bench_die("cannot write %s", path);
    fclose(f);
}

void bench_make_chain(bench_pki *p, const char *user, uint64_t serial, uint8_t sk[32],
                      uint8_t pk[32], kurer_chain *out)
{
    kurer_cert_body b;
    if (kurer_noise_keypair(pk, sk) != 0)
        bench_die("noise keypair failed");
    body_common(&b, KURER_ROLE_DEVICE, user, serial);
    b.device_id = 1;
    b.identity_key[0] = 0x05;
    kurer_random(b.identity_key + 1, 32);
    memcpy(b.noise_key, pk, 32);
    memset(out, 0, sizeof(*out));
    if (kurer_cert_sign(&b, &p->auth_key, &out->certs[0]) != 0)
        bench_die("device signing failed");
    out->certs[1] = p->auth;
    out->n = 2;
}

void bench_device_make(bench_pki *p, bench_device *d, const char *user, uint64_t serial)
{
    static kurer_chain chain; /* large: keep it off the stack */
    kurer_handshake_init hi;
    kurer_buf b;
    memset(d, 0, sizeof(*d));
    snprintf(d->user, sizeof(d->user), "%s", user);
    bench_make_chain(p, user, serial, d->sk, d->pk, &chain);
    hi.protocol_version = KURER_PROTOCOL_VERSION;
    hi.chain = chain;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    if (kurer_handshake_init_encode(&hi, &b) != 0)
        bench_die("handshake payload encoding failed");
    d->hello = kurer_buf_steal(&b, &d->hello_len);
}

void bench_device_free(bench_device *d)
{
    free(d->hello);
    kurer_memzero(d->sk, sizeof(d->sk));
    d->hello = NULL;
}

/* ---- child servers ------------------------------------------------------------------------ */

static void mk_tmpdir(bench_server *s)
{
    snprintf(s->dir, sizeof(s->dir), "/tmp/kurer-bench-XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        bench_die("mkdtemp: %s", strerror(errno));
}

/* Runs argv with stdout on a pipe and stderr on DIR/server.log; reads "listening H:P" and, if
 * want_metrics, "metrics H:P" lines. 0, or -1 if the server did not start (it is reaped). */
/* want: 1 the "metrics" line too, 2 the "media" line too (printed after the others). */
static int spawn(bench_server *s, const char *const *argv, int want)
{
    int want_metrics = want & 1, want_media = (want & 2) != 0;
    int pfd[2];
    char log[300];
    if (pipe(pfd) != 0)
        bench_die("pipe: %s", strerror(errno));
    snprintf(log, sizeof(log), "%s/server.log", s->dir);
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(pfd[1], 1);
        if (lfd >= 0)
            dup2(lfd, 2);
        close(pfd[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    char buf[512] = {0};
    size_t len = 0;
    int have_listen = 0, have_metrics = 0, have_media = 0;
    uint64_t end = kurer_time_mono_ms() + 20000;
    while ((!have_listen || (want_metrics && !have_metrics) || (want_media && !have_media)) &&
           kurer_time_mono_ms() < end && len < sizeof(buf) - 1) {
        struct pollfd pf = {pfd[0], POLLIN, 0};
        if (poll(&pf, 1, 200) <= 0)
            continue;
        ssize_t r = read(pfd[0], buf + len, 1);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (buf[len - 1] != '\n')
            continue;
        char *line = strrchr(buf, '\n');
        *line = '\0';
        char *start = strrchr(buf, '\n');
        start = start == NULL ? buf : start + 1;
        if (strncmp(start, "listening ", 10) == 0) {
            if (kurer_net_parse_addr(start + 10, &s->addr) != 0)
                bench_die("bad listening line: %s", start);
            have_listen = 1;
        } else if (strncmp(start, "metrics ", 8) == 0) {
            if (kurer_net_parse_addr(start + 8, &s->maddr) != 0)
                bench_die("bad metrics line: %s", start);
            have_metrics = 1;
        } else if (strncmp(start, "media ", 6) == 0) {
            if (kurer_net_parse_addr(start + 6, &s->media) != 0)
                bench_die("bad media line: %s", start);
            have_media = 1;
        }
        *line = '\n';
    }
    close(pfd[0]);
    if (!have_listen || (want_metrics && !have_metrics) || (want_media && !have_media)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fprintf(stderr, "bench: %s did not start (see %s)\n", argv[0], log);
        return -1;
    }
    s->pid = pid;
    s->have_metrics = have_metrics;
    s->have_media = have_media;
    return 0;
}

const char *bench_relay_bin(void)
{
    const char *e = getenv("KURER_BENCH_RELAY");
    return e != NULL && e[0] != '\0' ? e : KURER_RELAY_BIN;
}

int bench_relay_knows_key(const char *key, const char *value)
{
    char dir[] = "/tmp/kurer-bench-probe-XXXXXX", conf[64], cmd[1024];
    if (mkdtemp(dir) == NULL)
        bench_die("mkdtemp: %s", strerror(errno));
    snprintf(conf, sizeof(conf), "%s/probe.conf", dir);
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        bench_die("cannot write %s", conf);
    fprintf(f, "%s = %s\n", key, value);
    fclose(f);
    /* The config is read before the folder is looked at: a known key fails later (exit 1, no
     * such folder), an unknown one fails at once with exit 2. */
    snprintf(cmd, sizeof(cmd),
             "%s run --dir %s/none --listen 127.0.0.1:0 --root %s/none --config %s "
             ">/dev/null 2>&1",
             bench_relay_bin(), dir, dir, conf);
    int st = system(cmd);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: cannot remove %s\n", dir);
    return WIFEXITED(st) && WEXITSTATUS(st) == 1;
}

/* `kurer-relay run` on the folder's relay/, root.crt and (with_config) relay.conf. */
static int relay_run(bench_server *s, const char *listen, int with_config, int media)
{
    char root[300], rdir[300], conf[300];
    snprintf(root, sizeof(root), "%s/root.crt", s->dir);
    snprintf(rdir, sizeof(rdir), "%s/relay", s->dir);
    snprintf(conf, sizeof(conf), "%s/relay.conf", s->dir);
    const char *argv[] = {bench_relay_bin(), "run",         "--dir",  rdir, "--listen",    listen,
                          "--metrics",       "127.0.0.1:0", "--root", root, "--log-level", "warn",
                          "--config",        conf,          NULL};
    if (!with_config)
        argv[12] = NULL; /* no --config: the relay's defaults */
    return spawn(s, argv, 1 | (media ? 2 : 0));
}

int bench_relay_start_config(bench_server *s, const bench_pki *p, const char *config)
{
    char root[300], rdir[300], conf[300], cmd[800], pubp[320];
    const char *bin = bench_relay_bin();
    memset(s, 0, sizeof(*s));
    mk_tmpdir(s);
    snprintf(root, sizeof(root), "%s/root.crt", s->dir);
    snprintf(rdir, sizeof(rdir), "%s/relay", s->dir);
    snprintf(conf, sizeof(conf), "%s/relay.conf", s->dir);
    bench_pki_write_root(p, root);
    if (config != NULL) {
        FILE *f = fopen(conf, "w");
        if (f == NULL || fputs(config, f) < 0)
            bench_die("cannot write %s", conf);
        fclose(f);
    }
    snprintf(cmd, sizeof(cmd), "%s init --dir %s > /dev/null", bin, rdir);
    if (system(cmd) != 0)
        bench_die("%s failed", cmd);
    uint8_t *data;
    size_t len;
    snprintf(pubp, sizeof(pubp), "%s/relay.pub", rdir);
    if (kurer_file_read(pubp, 200, &data, &len) != 0 || len < 64)
        bench_die("cannot read %s", pubp);
    data[64] = '\0';
    if (kurer_hex_decode(s->pk, 32, (char *)data) != 0)
        bench_die("bad %s", pubp);
    free(data);
    return relay_run(s, "127.0.0.1:0", config != NULL,
                     config != NULL && strstr(config, "media_listen") != NULL);
}

int bench_relay_term(bench_server *s)
{
    int st = 0;
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 2000; i++) { /* 20 s, then SIGKILL */
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
        }
        usleep(10000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

int bench_relay_restart(bench_server *s)
{
    char listen[64], conf[300];
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&s->addr;
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)ntohs(sin->sin_port));
    snprintf(conf, sizeof(conf), "%s/relay.conf", s->dir);
    return relay_run(s, listen, access(conf, F_OK) == 0, s->have_media);
}

void bench_relay_start_extra(bench_server *s, const bench_pki *p, const char *extra)
{
    /* A relay from before issue 9 (KURER_BENCH_RELAY) refuses keys it does not know; it has
     * neither those bounds nor those rates, so leaving them out measures the same thing. */
    static int legacy = -1;
    if (legacy < 0)
        legacy = !bench_relay_knows_key("max_preauth_per_address", "32");
    const char *conf =
        legacy
            ? "# benchmark: no per-device rate limit, room for deep mailboxes\n"
              "send_rate = 0\nmailbox_max = 1000000\n"
            : "# benchmark: no per-device rate limit, room for deep mailboxes; every client comes\n"
              "# from 127.0.0.1, so the per-address bound on handshakes in progress is lifted\n"
              "send_rate = 0\nmailbox_max = 1000000\nmailbox_sender_max = 0\n"
              "max_preauth_per_address = 1000000\nhandshake_rate = 0\nping_rate = 0\n"
              "lookup_rate = 0\n";
    char text[4096];
    int n = snprintf(text, sizeof(text), "%s%s", conf, extra != NULL ? extra : "");
    if (n < 0 || (size_t)n >= sizeof(text))
        bench_die("relay config too long");
    if (bench_relay_start_config(s, p, text) != 0)
        bench_die("the relay did not start");
}

void bench_relay_start(bench_server *s, const bench_pki *p)
{
    bench_relay_start_extra(s, p, NULL);
}

void bench_fwd_start(bench_server *s, int durable)
{
    char db[300];
    memset(s, 0, sizeof(*s));
    mk_tmpdir(s);
    snprintf(db, sizeof(db), "%s/fwd.db", s->dir);
    const char *argv[] = {KURER_BENCH_FWD_BIN,          "--listen", "127.0.0.1:0",
                          durable ? "--durable" : NULL, db,         NULL};
    if (spawn(s, argv, 0) != 0)
        bench_die("the forwarder did not start");
}

void bench_fwd_start_pg(bench_server *s, const char *conninfo)
{
    memset(s, 0, sizeof(*s));
    mk_tmpdir(s);
    const char *argv[] = {KURER_BENCH_FWD_BIN, "--listen", "127.0.0.1:0", "--pg", conninfo, NULL};
    if (spawn(s, argv, 0) != 0)
        bench_die("the forwarder did not start");
}

void bench_server_stop(bench_server *s)
{
    char cmd[300];
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    if (s->dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: cannot remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
}

/* ---- histograms --------------------------------------------------------------------------- */

static size_t bucket_of(uint64_t v)
{
    if (v < 32)
        return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 5 */
    size_t i = 32 + (size_t)(e - 5) * 16 + (size_t)((v >> (e - 4)) & 15);
    return i < BENCH_HIST_BUCKETS ? i : BENCH_HIST_BUCKETS - 1;
}

static double bucket_mid(size_t i)
{
    if (i < 32)
        return (double)i;
    unsigned e = 5 + (unsigned)((i - 32) / 16);
    uint64_t m = (uint64_t)((i - 32) % 16);
    double lo = (double)((16 + m) << (e - 4));
    return lo + (double)(1ull << (e - 4)) / 2.0;
}

void bench_hist_add(bench_hist *h, uint64_t us)
{
    h->b[bucket_of(us)]++;
    h->n++;
    if (us > h->max)
        h->max = us;
}

void bench_hist_merge(bench_hist *into, const bench_hist *from)
{
    for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
    into->n += from->n;
    if (from->max > into->max)
        into->max = from->max;
}

double bench_hist_ms(const bench_hist *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->n);
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            double v = bucket_mid(i);
            return (v > (double)h->max ? (double)h->max : v) / 1000.0;
        }
    }
    return (double)h->max / 1000.0;
}

/* ---- /proc -------------------------------------------------------------------------------- */

double bench_proc_cpu_s(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (p == NULL)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

uint64_t bench_proc_rss(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    uint64_t kb = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long v;
        if (sscanf(line, "VmRSS: %llu kB", &v) == 1) {
            kb = v;
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}

uint64_t bench_proc_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t fl = strlen(field);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    uint64_t kb = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            kb = strtoull(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

int bench_proc_reset_peak(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

uint64_t bench_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return (uint64_t)rl.rlim_cur;
}

/* ---- metrics ------------------------------------------------------------------------------ */

int bench_metrics_fetch(const struct sockaddr_storage *addr, char *text, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t len = 0;
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)addr, sizeof(struct sockaddr_in)) != 0) {
        close(fd);
        return -1;
    }
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) < 0) {
        close(fd);
        return -1;
    }
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 2000) <= 0)
            break;
        ssize_t r = read(fd, text + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == cap - 1)
            break;
    }
    close(fd);
    text[len] = '\0';
    return len > 0 ? 0 : -1;
}

double bench_metric(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ')
            return strtod(p + nl + 1, NULL);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

/* ---- JSON --------------------------------------------------------------------------------- */

static void json_add(bench_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void json_add(bench_json *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (j->len < sizeof(j->s)) {
        int n = vsnprintf(j->s + j->len, sizeof(j->s) - j->len, fmt, ap);
        if (n > 0)
            j->len += (size_t)n;
        if (j->len >= sizeof(j->s))
            j->len = sizeof(j->s) - 1;
    }
    va_end(ap);
}

/* The one JSON string escaper (base/json.c). */
static void json_string(bench_json *j, const char *v)
{
    char tmp[1024];
    kurer_buf b;
    kurer_buf_init_fixed(&b, tmp, sizeof(tmp) - 1);
    if (kurer_json_put_string(&b, v) != 0) {
        json_add(j, "\"\""); /* longer than any key or name of a bench */
        return;
    }
    tmp[b.len] = '\0';
    json_add(j, "%s", tmp);
}

void bench_json_begin(bench_json *j, const char *bench)
{
    j->len = 0;
    j->s[0] = '\0';
    json_add(j, "{\"bench\":");
    json_string(j, bench);
}

void bench_json_num(bench_json *j, const char *key, double v)
{
    json_add(j, ",");
    json_string(j, key);
    if (isfinite(v))
        json_add(j, ":%.6g", v);
    else
        json_add(j, ":null");
}

void bench_json_int(bench_json *j, const char *key, uint64_t v)
{
    json_add(j, ",");
    json_string(j, key);
    json_add(j, ":%llu", (unsigned long long)v);
}

void bench_json_str(bench_json *j, const char *key, const char *v)
{
    json_add(j, ",");
    json_string(j, key);
    json_add(j, ":");
    json_string(j, v);
}

void bench_json_end(bench_json *j, int argc, char **argv)
{
    char cmd[1024];
    size_t len = 0;
    cmd[0] = '\0';
    for (int i = 0; i < argc && len < sizeof(cmd) - 1; i++) {
        const char *a =
            i == 0 ? (strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0]) : argv[i];
        int n = snprintf(cmd + len, sizeof(cmd) - len, "%s%s", i ? " " : "", a);
        if (n < 0)
            break;
        len += (size_t)n;
        if (len >= sizeof(cmd))
            len = sizeof(cmd) - 1;
    }
    bench_json_str(j, "cmd", cmd);
    json_add(j, "}");
    puts(j->s);
    fflush(stdout);
}
