/* The server: start-up (keys, trust, store, listeners), signals, stop, the expiry timer
 * and the periodic sweep. Runs on the loop the caller passes in. */
#include "relay_internal.h"

#include <errno.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/signal.h"
#include "kurer/util.h"

static void on_expiry(uv_timer_t *t);

/* The expiry timer runs at the earliest not_after (+1 s: a chain is valid through its
 * not_after second) of the authenticated connections. */
void kurer__arm_expiry(relay *r, int64_t not_after)
{
    if (!r->timers || r->stopping)
        return;
    if (r->next_expiry != 0 && r->next_expiry <= not_after)
        return;
    int64_t now = kurer_time_unix();
    int64_t in_s = not_after >= now + 86400 ? 86400 : not_after + 1 - now;
    if (in_s < 0)
        in_s = 0;
    if (in_s > 86400)
        in_s = 86400; /* re-armed after a day: no overflow, and clock changes are caught */
    r->next_expiry = now + in_s;
    uv_timer_start(&r->expiry, on_expiry, (uint64_t)in_s * 1000, 0);
}

static void on_expiry(uv_timer_t *t)
{
    relay *r = t->data;
    int64_t now = kurer_time_unix(), next = 0;
    r->next_expiry = 0;
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next) {
        if (!rc->authed || rc->c == NULL || kurer_conn_closing(rc->c))
            continue;
        if (now > rc->v.not_after) {
            r->conns_expired++;
            {
                kurer_log_field f_[] = {KURER_LOG_STR("user", rc->addr.user),
                                        KURER_LOG_INT("device", rc->addr.device_id),
                                        KURER_LOG_STR("reason", "EEXPIRED")};
                kurer_log(KURER_LOG_INFO, "relay", "expired_disconnect", f_, 2);
                kurer__audit(r, "device_disconnected", f_, 3);
            }
            kurer__send_error(rc, 0, KURER_EEXPIRED, 1);
        } else if (next == 0 || rc->v.not_after < next) {
            next = rc->v.not_after;
        }
    }
    if (next != 0)
        kurer__arm_expiry(r, next);
}

#define SWEEP_MS 10000

static void on_sweep(uv_timer_t *t)
{
    relay *r = t->data;
    uint64_t now = kurer_time_mono_ms();
    kurer__addr_sweep(&r->addrs, r->cfg.nk_rate, now);
    kurer__uploads_expire(r);
    kurer__disconnect_stale(r);
    kurer__take_sweep(&r->takes, r->cfg.prekey_take_window_s * 1000, now);
}

static void on_sighup(uv_signal_t *s, int signum)
{
    relay *r = s->data;
    (void)signum;
    kurer__audit(r, "reload", (kurer_log_field[]){KURER_LOG_STR("what", "crl files")}, 1);
    (void)kurer__load_crls(r, 0);
}

static void on_stop(uv_signal_t *s, int signum)
{
    relay *r = s->data;
    (void)signum;
    if (r->stopping)
        return;
    r->stopping = 1;
    kurer_log(KURER_LOG_INFO, "relay", "shutdown", NULL, 0);
    kurer__notify_stopping(r);
    for (size_t i = 0; i < r->n_servers; i++)
        uv_close((uv_handle_t *)&r->servers[i], NULL);
    if (r->have_metrics)
        uv_close((uv_handle_t *)&r->metrics, NULL);
    while (r->mreqs != NULL)
        kurer__m_close(r->mreqs);
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        if (rc->c != NULL)
            kurer_conn_close(rc->c, 0);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sighup, NULL);
    kurer__backup_stop(r);
    kurer__media_stop(r);
    uv_close((uv_handle_t *)&r->sweep, NULL);
    uv_close((uv_handle_t *)&r->expiry, NULL);
    kurer__blobs_stop(r);
    kurer__cluster_close(r);
    /* Finish every submitted commit; late callbacks find their connections closed. */
    kurer_store_close(r->store);
    r->store = NULL;
}

/* max_connections, or (0) what the open-file limit allows: the soft limit is raised to the
 * hard one, and 64 files are kept for the store, listeners and logs. */
static uint64_t max_connections(const kurer_relay_config *cfg)
{
    struct rlimit rl;
    uint64_t files = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
        files = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    }
    uint64_t room = files > 128 ? files - 64 : 64;
    if (cfg->max_connections == 0 || cfg->max_connections > room)
        return room;
    return cfg->max_connections;
}

static int read_key(const char *dir, const char *name, uint8_t *out)
{
    char path[4096];
    uint8_t *data;
    size_t len;
    struct stat st;
    int err = kurer_path_join(path, sizeof(path), dir, name);
    if (err != 0)
        return err;
    if (stat(path, &st) != 0)
        return KURER_ENOENT;
    if ((st.st_mode & 077) != 0)
        return KURER_EPERM;
    err = kurer_file_read(path, 64, &data, &len);
    if (err != 0)
        return err;
    if (len != 32)
        err = KURER_EMALFORMED;
    else
        memcpy(out, data, 32);
    kurer_wipe(data, len);
    free(data);
    return err;
}

int kurer_relay_init(const char *dir)
{
    char path[4096], hex[65];
    uint8_t pk[32], store_key[32];
    int err = kurer_crypto_init();
    if (err != 0)
        goto out_msg;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "kurer-relay: %s: cannot create folder\n", dir);
        return 1;
    }
    uint8_t *sk = kurer_secure_alloc(32);
    if (sk == NULL)
        return 1;
    err = kurer_noise_keypair(pk, sk);
    if (err == 0)
        err = kurer_path_join(path, sizeof(path), dir, "relay.key");
    if (err == 0)
        err = kurer_file_write(path, sk, 32, 0600, 0);
    kurer_secure_free(sk);
    kurer_random(store_key, sizeof(store_key));
    if (err == 0)
        err = kurer_path_join(path, sizeof(path), dir, "store.key");
    if (err == 0)
        err = kurer_file_write(path, store_key, 32, 0600, 0);
    kurer_memzero(store_key, sizeof(store_key));
    kurer_hex_encode(hex, pk, 32);
    hex[64] = '\n';
    if (err == 0)
        err = kurer_path_join(path, sizeof(path), dir, "relay.pub");
    if (err == 0)
        err = kurer_file_write(path, hex, 65, 0644, 0);
    if (err != 0)
        goto out_msg;
    hex[64] = '\0';
    printf("%s\n", hex);
    return 0;
out_msg:
    fprintf(stderr, "kurer-relay: init %s: %s\n", dir, kurer_strerror(err));
    return 1;
}

static int is_loopback(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
    if (a->ss_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(x) || (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
    }
    return 0;
}

static int load_roots(relay *r, const char **what)
{
    int err;
    *what = "trust";
    if ((err = kurer_trust_new(&r->trust)) != 0)
        return err;
    for (size_t i = 0; i < r->opts->n_roots; i++) {
        uint8_t *data;
        size_t len;
        kurer_cert root;
        *what = r->opts->roots[i];
        if ((err = kurer__read_input(r->opts->roots[i], KURER_CERT_MAX, KURER_ARMOR_CERTIFICATE,
                                     &data, &len)) != 0)
            return err;
        err = kurer_cert_decode(data, len, &root);
        free(data);
        if (err == 0)
            err = kurer_trust_add_root(r->trust, &root, kurer_time_unix());
        if (err != 0)
            return err;
    }
    return 0;
}

/* The store, and what is loaded from it: lists (stored ones, then --crl files, so that the
 * directory is checked against them), the directory; then whether it takes writes. *quiet: the
 * error was reported already. */
static int open_store(relay *r, const char **what, int *quiet)
{
    char path[4096];
    uint8_t store_key[32];
    int err;
    if (r->cfg.store_postgres) { /* store = postgres: the key and relay.db are not used */
        *what = "store (postgres)";
        err = kurer_store_open_postgres(&r->store, r->loop, r->cfg.pg_conninfo,
                                        (size_t)r->cfg.pg_pool);
        if (err == 0) { /* the other nodes: wake-ups, connections, lists (cluster.c) */
            *what = "cluster (postgres listen connection)";
            err = kurer__cluster_open(r, r->cfg.pg_conninfo);
        }
        kurer_memzero(r->cfg.pg_conninfo, sizeof(r->cfg.pg_conninfo)); /* the store has a copy */
        goto opened;
    }
    *what = "store.key";
    if ((err = read_key(r->opts->dir, "store.key", store_key)) != 0)
        return err;
    *what = "store";
    if ((err = kurer_path_join(path, sizeof(path), r->opts->dir, "relay.db")) != 0)
        return err;
    err = kurer_store_open_sqlite(&r->store, r->loop, path, store_key);
    kurer_memzero(store_key, sizeof(store_key));
opened:
    if (err != 0)
        return err;
    if ((err = kurer_store_load_crls(r->store, kurer__on_crl_loaded, r)) != 0)
        return err;
    if ((err = kurer__load_crls(r, 1)) != 0) {
        *quiet = 1;
        return err;
    }
    kurer_store_set_commit_delay(r->store, r->cfg.commit_delay_us);
    if ((err = kurer_store_load_directory(r->store, kurer__on_dir_loaded, r)) != 0)
        return err;
    /* A store that cannot be written (a full disk) does not stop the relay: it serves what it
     * holds, and sends get ESTORAGE from their commits until space returns. */
    if ((err = kurer_store_probe(r->store)) != 0) {
        if (err != KURER_ESTORAGE)
            return err;
        kurer_log(KURER_LOG_WARN, "relay", "store_not_writable",
                  (kurer_log_field[]){KURER_LOG_STR("error", kurer_err_name(err))}, 1);
    }
    return 0;
}

/* The listeners and, with --metrics, the metrics listener (loopback only unless
 * --metrics-public: the page needs no authentication and says who is connected how often). */
static int listen_all(relay *r, const char **what, int *quiet)
{
    const kurer_relay_opts *o = r->opts;
    struct sockaddr_storage addr;
    int err, uverr;
    for (size_t i = 0; i < o->n_listen; i++) {
        uv_tcp_t *s = &r->servers[i];
        *what = o->listen[i];
        if ((err = kurer_net_resolve(o->listen[i], &addr)) != 0)
            return err;
        uv_tcp_init(r->loop, s);
        s->data = r;
        r->n_servers++;
        if ((uverr = uv_tcp_bind(s, (struct sockaddr *)&addr, 0)) != 0 ||
            (uverr = uv_listen((uv_stream_t *)s, 511, kurer__on_connection)) != 0)
            return kurer_net_uv_error(uverr);
    }
    if (o->metrics == NULL)
        return 0;
    *what = o->metrics;
    if ((err = kurer_net_resolve(o->metrics, &addr)) != 0)
        return err;
    if (!o->metrics_public && !is_loopback(&addr)) {
        fprintf(stderr,
                "kurer-relay: --metrics %s: not a loopback address; the metrics endpoint is "
                "unauthenticated (add --metrics-public to serve it there anyway)\n",
                o->metrics);
        *quiet = 1;
        return KURER_EPERM;
    }
    uv_tcp_init(r->loop, &r->metrics);
    r->metrics.data = r;
    r->have_metrics = 1;
    if ((uverr = uv_tcp_bind(&r->metrics, (struct sockaddr *)&addr, 0)) != 0 ||
        (uverr = uv_listen((uv_stream_t *)&r->metrics, 16, kurer__on_metrics)) != 0)
        return kurer_net_uv_error(uverr);
    return 0;
}

/* HOST:PORT (or [HOST]:PORT) of a bound handle. */
static void bound_name(uv_tcp_t *t, char *out, size_t n)
{
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    char host[64] = "?";
    unsigned port = 0;
    uv_tcp_getsockname(t, (struct sockaddr *)&bound, &blen);
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, host, sizeof(host));
        port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        snprintf(out, n, "[%s]:%u", host, port);
        return;
    }
    uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof(host));
    port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    snprintf(out, n, "%s:%u", host, port);
}

/* "listening HOST:PORT" per listener (and "metrics HOST:PORT") on stdout, for whoever started
 * us; the same, one line, into status (for systemd). */
static void print_bound(relay *r, char *status, size_t n)
{
    char name[80];
    size_t used = 0;
    status[0] = '\0';
    for (size_t i = 0; i < r->n_servers; i++) {
        bound_name(&r->servers[i], name, sizeof(name));
        printf("listening %s\n", name);
        if (used < n)
            used += (size_t)snprintf(status + used, n - used, "%s%s", i ? " " : "listening ", name);
    }
    if (r->have_metrics) {
        bound_name(&r->metrics, name, sizeof(name));
        printf("metrics %s\n", name);
        if (used < n)
            used += (size_t)snprintf(status + used, n - used, ", metrics %s", name);
    }
    const char *media = kurer__media_name(r); /* after metrics: readers expect that order */
    if (media != NULL) {
        printf("media %s\n", media);
        if (used < n)
            snprintf(status + used, n - used, ", media %s", media);
    }
    fflush(stdout);
}

static void start_handles(relay *r)
{
    uv_signal_init(r->loop, &r->sigterm);
    uv_signal_init(r->loop, &r->sigint);
    uv_signal_init(r->loop, &r->sighup);
    r->sigterm.data = r->sigint.data = r->sighup.data = r;
    uv_signal_start(&r->sigterm, on_stop, SIGTERM);
    uv_signal_start(&r->sigint, on_stop, SIGINT);
    uv_signal_start(&r->sighup, on_sighup, SIGHUP);
    kurer__backup_listen(r);
    signal(SIGPIPE, SIG_IGN);
    uv_timer_init(r->loop, &r->sweep);
    uv_timer_init(r->loop, &r->expiry);
    r->sweep.data = r->expiry.data = r;
    r->timers = 1;
    uv_timer_start(&r->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    kurer__blobs_start(r);
}

static void relay_free(relay *r)
{
    kurer__dir_free(r);
    htab_free(&r->online);
    htab_free(&r->pending);
    kurer__addr_table_free(&r->addrs);
    kurer__take_table_free(&r->takes);
    kurer__held_free(r);
    kurer__media_free(r);
    kurer__enrol_free(r);
    kurer_trust_free(r->trust);
    kurer_secure_free(r->sk);
    kurer__audit_close(r);
}

/* Closes the listeners opened before a failed start, and lets the loop finish the closes. */
static void close_listeners(relay *r)
{
    for (size_t i = 0; i < r->n_servers; i++)
        uv_close((uv_handle_t *)&r->servers[i], NULL);
    if (r->have_metrics)
        uv_close((uv_handle_t *)&r->metrics, NULL);
    kurer__media_stop(r);
    kurer__cluster_close(r);
    uv_run(r->loop, UV_RUN_NOWAIT);
}

int kurer_relay_run(const kurer_relay_opts *o, uv_loop_t *loop)
{
    relay r;
    int err, quiet = 0;
    const char *what = "crypto";
    char status[512];
    size_t n_allowed = 0;
    memset(&r, 0, sizeof(r));
    r.opts = o;
    r.cfg = o->cfg;
    r.loop = loop;
    if ((err = kurer_crypto_init()) != 0)
        goto fail;
    r.lim = kurer_net_limits_default();
    r.lim.max_record = (size_t)r.cfg.max_record;
    r.lim.handshake_ms = r.cfg.handshake_timeout_ms;
    r.lim.idle_ms = r.cfg.idle_timeout_ms;
    r.lim.out_cap = (size_t)r.cfg.out_cap;
    r.lim.out_max = (size_t)r.cfg.out_max;
    r.lim.preauth_record = (size_t)r.cfg.max_preauth_record;
    what = "relay.key (run kurer-relay init first)";
    if ((r.sk = kurer_secure_alloc(32)) == NULL) {
        err = KURER_ENOMEM;
        goto fail;
    }
    if ((err = read_key(o->dir, "relay.key", r.sk)) != 0 ||
        (err = kurer_noise_public_key(r.key.pk, r.sk)) != 0)
        goto fail;
    r.key.sk = r.sk;
    r.max_conns = max_connections(&r.cfg);
    what = "memory";
    if ((err = htab_init(&r.dir)) != 0 || (err = htab_init(&r.online)) != 0 ||
        (err = htab_init(&r.pending)) != 0 ||
        (err = kurer__addr_table_init(&r.addrs, ADDR_ENTRIES_MAX, r.cfg.handshake_rate)) != 0 ||
        (err = kurer__take_table_init(&r.takes, TAKE_ENTRIES_MAX)) != 0)
        goto fail;
    what = "audit_log";
    if ((err = kurer__audit_open(&r, o->audit_log)) != 0) {
        quiet = 1;
        goto fail;
    }
    if ((err = load_roots(&r, &what)) != 0 || (err = open_store(&r, &what, &quiet)) != 0 ||
        (err = listen_all(&r, &what, &quiet)) != 0 || (err = kurer__media_start(&r, &what)) != 0)
        goto fail;
    start_handles(&r);
    /* Everything is open and bound: from here on the relay needs neither root nor any system
     * call it does not make while serving (docs/relay.md, "Privileges and sandbox"). */
    quiet = 1;
    if ((err = kurer__drop_privileges(o->dir, o->user)) != 0 ||
        (o->seccomp && (err = kurer__seccomp_install(&n_allowed, r.cfg.store_postgres)) != 0))
        goto fail_started;
    print_bound(&r, status, sizeof(status));
    kurer_log_field started[] = {
        KURER_LOG_STR("version", KURER__RELAY_VERSION),
        KURER_LOG_STR("listen", status),
        KURER_LOG_STR("store", r.cfg.store_postgres ? "postgres" : "sqlite"),
        KURER_LOG_INT("directory_devices", r.n_dir),
        KURER_LOG_INT("uid", getuid()),
        KURER_LOG_INT("seccomp_syscalls", n_allowed)};
    kurer_log(KURER_LOG_INFO, "relay", "started", started, 6);
    kurer__audit(&r, "started", started, 6);
    kurer__notify_ready(&r, status);
    uv_run(r.loop, UV_RUN_DEFAULT);
    kurer_log(KURER_LOG_INFO, "relay", "stopped", NULL, 0);
    kurer__audit(&r, "stopped", NULL, 0);
    relay_free(&r);
    return 0;
fail_started:
    /* Stop as a signal would: the handles close, the store commits and closes. */
    on_stop(&r.sigterm, SIGTERM);
    uv_run(r.loop, UV_RUN_DEFAULT);
    relay_free(&r);
    return err;
fail:
    if (!quiet)
        fprintf(stderr, "kurer-relay: %s: %s\n", what, kurer_strerror(err));
    kurer_store_close(r.store);
    close_listeners(&r); /* and runs the loop once: the store's handle closes too */
    relay_free(&r);
    return err != 0 ? err : KURER_EINVAL;
}
