/* kurer-relay: command line. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kurer/args.h"
#include "kurer/crypto.h"
#include "kurer/error.h"
#include "kurer/log.h"
#include "kurer/util.h"
#include "relay.h"
#include "store_config.h"

#ifndef KURER_VERSION
#define KURER_VERSION "0"
#endif

static const char *USAGE =
    "usage: kurer-relay init --dir DIR [--config FILE]\n"
    "       kurer-relay run --dir DIR --listen HOST:PORT --root ROOT.crt [--root ...]\n"
    "                       [--store sqlite] [--metrics HOST:PORT [--metrics-public]]\n"
    "                       [--config FILE] [--crl FILE ...]\n"
    "                       [--log-level debug|info|warn|error|off]\n"
    "       kurer-relay backup --dir DIR --out FILE [--timeout SECONDS]\n"
    "       kurer-relay restore --dir NEWDIR --keys KEYDIR FILE\n"
    "       kurer-relay --version\n"
    "\n"
    "init  creates DIR with the relay's Noise static key (relay.key: a raw X25519 key, mode\n"
    "      0600, not sealed: protect the folder), the store key (store.key, mode 0600) and\n"
    "      relay.pub; prints the public key in hex. With --config naming store = postgres,\n"
    "      it also creates (or migrates) the schema in pg_conninfo's database.\n"
    "run   serves until SIGTERM or SIGINT; SIGHUP reloads the --crl files. With port 0 it\n"
    "      prints the bound address as 'listening HOST:PORT'. HOST may be a host name. One\n"
    "      relay per DIR (it locks DIR/.lock). --metrics serves an unauthenticated page:\n"
    "      a non-loopback address is refused unless --metrics-public is given. See\n"
    "      docs/relay.md.\n";

/* One relay per folder: an exclusive flock on DIR/.lock (0600, "PID"), held until exit. */
static int lock_dir(const char *dir)
{
    char path[PATH_MAX + 16], buf[32];
    snprintf(path, sizeof(path), "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fprintf(stderr, "kurer-relay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        fprintf(stderr, "kurer-relay: %s is in use by another kurer-relay (pid %ld)\n", dir,
                strtol(buf, NULL, 10));
        close(fd);
        return -1;
    }
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        /* the pid is only informative */
    }
    return fd; /* held until exit */
}

/* The key files exist and are owner-only; the store's files are made 0600. Errors name the
 * full path and the mode. */
static int check_files(const char *dir)
{
    char full[PATH_MAX], path[PATH_MAX + 32];
    struct stat st;
    if (realpath(dir, full) == NULL) {
        fprintf(stderr, "kurer-relay: %s: %s (run kurer-relay init --dir %s)\n", dir,
                strerror(errno), dir);
        return -1;
    }
    static const char *const keys[] = {"relay.key", "store.key"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", full, keys[i]);
        if (stat(path, &st) != 0) {
            fprintf(stderr, "kurer-relay: %s: %s (run kurer-relay init --dir %s)\n", path,
                    strerror(errno), dir);
            return -1;
        }
        if ((st.st_mode & 077) != 0) {
            fprintf(stderr,
                    "kurer-relay: %s has mode %04o: it must be readable by its owner only "
                    "(chmod 600 %s)\n",
                    path, (unsigned)(st.st_mode & 07777), path);
            return -1;
        }
        if (access(path, R_OK) != 0) {
            fprintf(stderr, "kurer-relay: %s (mode %04o): %s\n", path,
                    (unsigned)(st.st_mode & 07777), strerror(errno));
            return -1;
        }
    }
    static const char *const db[] = {"relay.db", "relay.db-wal", "relay.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", full, db[i]);
        if (stat(path, &st) == 0 && (st.st_mode & 077) != 0 && chmod(path, 0600) != 0) {
            fprintf(stderr, "kurer-relay: %s has mode %04o and cannot be made 0600: %s\n", path,
                    (unsigned)(st.st_mode & 07777), strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* A configuration error: which key, and whether it is unknown or out of range. */
static void config_error(const char *path, int line)
{
    FILE *f = fopen(path, "r");
    char buf[512], k[64] = "", v[64] = "";
    int ln = 0;
    uint64_t lo, hi;
    if (f == NULL || line <= 0) {
        fprintf(stderr, "kurer-relay: %s: %s\n", path, f == NULL ? strerror(errno) : "unreadable");
        if (f != NULL)
            fclose(f);
        return;
    }
    while (fgets(buf, sizeof(buf), f) != NULL && ++ln < line)
        ;
    fclose(f);
    char *l = buf;
    while (*l == ' ' || *l == '\t')
        l++;
    l[strcspn(l, "\r\n")] = '\0';
    if (ln != line || sscanf(l, "%63[a-z_] = %63s", k, v) != 2)
        fprintf(stderr, "kurer-relay: %s:%d: '%s' is not 'key = value'\n", path, line, l);
    else if (strcmp(k, "store") == 0 || strcmp(k, "pg_conninfo") == 0) /* never the value */
        fprintf(stderr, "kurer-relay: %s:%d: %s\n", path, line,
                k[0] == 's' ? "store is sqlite or postgres" : "pg_conninfo: 1023 bytes at most");
    else if (kurer_relay_config_range(k, &lo, &hi) != 0)
        fprintf(stderr, "kurer-relay: %s:%d: unknown key '%s' (see docs/relay.md)\n", path, line,
                k);
    else
        fprintf(stderr, "kurer-relay: %s:%d: %s = %s is out of range (%llu..%llu)\n", path, line, k,
                v, (unsigned long long)lo, (unsigned long long)hi);
}

#define V      KURER_OPT_VALUE
#define NROOTS (sizeof(((kurer_relay_opts *)0)->roots) / sizeof(const char *))
#define NCRLS  (sizeof(((kurer_relay_opts *)0)->crl_files) / sizeof(const char *))

static const kurer_opt init_opts[] = {{"help", 0, 0}, {"dir", V, 0}, {"config", V, 0}};
static const kurer_opt backup_opts[] = {
    {"help", 0, 0}, {"dir", V, 0}, {"out", V, 0}, {"timeout", V, 0}};
static const kurer_opt restore_opts[] = {{"help", 0, 0}, {"dir", V, 0}, {"keys", V, 0}};
static const kurer_opt run_opts[] = {
    {"help", 0, 0},    {"dir", V, 0},      {"listen", V, 0},  {"root", V, NROOTS},
    {"crl", V, NCRLS}, {"store", V, 0},    {"metrics", V, 0}, {"metrics-public", 0, 0},
    {"config", V, 0},  {"log-level", V, 0}};

/* --log-level, case-insensitive. */
static int set_log_level(const char *v)
{
    kurer_log_level lvl;
    char low[16];
    size_t n = 0;
    for (; v[n] != '\0' && n + 1 < sizeof(low); n++)
        low[n] = (char)tolower((unsigned char)v[n]);
    low[n] = '\0';
    if (v[n] != '\0' || kurer_log_level_parse(low, &lvl) != 0) {
        fprintf(stderr,
                "kurer-relay: --log-level %s: unknown level (debug, info, warn, error, off)\n", v);
        return 2;
    }
    kurer_log_set(stderr, lvl);
    return 0;
}

static int cmd_init(const kurer_args *a)
{
    const char *dir = kurer_args_value(a, "dir");
    if (dir == NULL) {
        fprintf(stderr, "kurer-relay: --dir is required (see --help)\n");
        return 2;
    }
    const char *config = kurer_args_value(a, "config");
    kurer_relay_config cfg;
    int line;
    kurer_relay_config_default(&cfg);
    if (config != NULL && kurer_relay_config_load(&cfg, config, &line) != 0) {
        config_error(config, line);
        return 2;
    }
    /* store = postgres: creates or migrates the schema, also for a folder made before */
    int rc = kurer_relay_init_store(&cfg);
    kurer_memzero(&cfg, sizeof(cfg));
    return rc != 0 ? rc : kurer_relay_init(dir);
}

static int cmd_run(const kurer_args *a)
{
    kurer_relay_opts o;
    const char *store = kurer_args_value(a, "store");
    const char *config = kurer_args_value(a, "config");
    const char *level = kurer_args_value(a, "log-level");
    int rc;
    memset(&o, 0, sizeof(o));
    kurer_relay_config_default(&o.cfg);
    o.dir = kurer_args_value(a, "dir");
    o.listen = kurer_args_value(a, "listen");
    o.metrics = kurer_args_value(a, "metrics");
    o.metrics_public = kurer_args_count(a, "metrics-public") > 0;
    for (; o.n_roots < kurer_args_count(a, "root"); o.n_roots++)
        o.roots[o.n_roots] = kurer_args_nth(a, "root", o.n_roots);
    for (; o.n_crls < kurer_args_count(a, "crl"); o.n_crls++)
        o.crl_files[o.n_crls] = kurer_args_nth(a, "crl", o.n_crls);
    if (store != NULL && strcmp(store, "sqlite") != 0) {
        fprintf(stderr,
                "kurer-relay: --store %s: only sqlite (postgres: store = postgres in --config)\n",
                store);
        return 2;
    }
    if (level != NULL && (rc = set_log_level(level)) != 0)
        return rc;
    if (o.dir == NULL) {
        fprintf(stderr, "kurer-relay: --dir is required (see --help)\n");
        return 2;
    }
    if (o.listen == NULL || o.n_roots == 0) {
        fprintf(stderr, "kurer-relay: run needs --listen and at least one --root\n");
        return 2;
    }
    if (config != NULL) {
        int line;
        int err = kurer_relay_config_load(&o.cfg, config, &line);
        if (err != 0) {
            config_error(config, line);
            return 2;
        }
    }
    if (check_files(o.dir) != 0 || lock_dir(o.dir) < 0)
        return 1;
    uv_loop_t *loop = uv_default_loop();
    rc = kurer_relay_run(&o, loop);
    (void)uv_loop_close(loop);
    return rc == 0 ? 0 : 1;
}

static int cmd_backup(const kurer_args *a)
{
    const char *dir = kurer_args_value(a, "dir"), *out = kurer_args_value(a, "out");
    const char *t = kurer_args_value(a, "timeout");
    uint64_t timeout = 600;
    if (dir == NULL || out == NULL) {
        fprintf(stderr, "kurer-relay: backup needs --dir and --out (see --help)\n");
        return 2;
    }
    if (t != NULL && (kurer_parse_u64(t, 86400, &timeout) != 0 || timeout == 0)) {
        fprintf(stderr, "kurer-relay: --timeout %s: seconds, 1..86400\n", t);
        return 2;
    }
    return kurer_relay_backup(dir, out, (int)timeout);
}

static int cmd_restore(const kurer_args *a)
{
    const char *dir = kurer_args_value(a, "dir"), *keys = kurer_args_value(a, "keys");
    if (dir == NULL || keys == NULL) {
        fprintf(stderr, "kurer-relay: restore needs --dir, --keys and the backup file\n");
        return 2;
    }
    return kurer_relay_restore(dir, keys, a->pos[0]); /* exactly one: the spec */
}

static const struct {
    const char *name;
    int (*fn)(const kurer_args *);
    kurer_args_spec spec;
} subcommands[] = {
    {"init", cmd_init, {init_opts, sizeof(init_opts) / sizeof(init_opts[0]), 0, 0, NULL}},
    {"run", cmd_run, {run_opts, sizeof(run_opts) / sizeof(run_opts[0]), 0, 0, NULL}},
    {"backup", cmd_backup, {backup_opts, sizeof(backup_opts) / sizeof(backup_opts[0]), 0, 0, NULL}},
    {"restore",
     cmd_restore,
     {restore_opts, sizeof(restore_opts) / sizeof(restore_opts[0]), 1, 1, "FILE"}},
};

int main(int argc, char **argv)
{
    umask(077); /* relay.db, its WAL and shared-memory files: owner only */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("kurer-relay %s\n", KURER_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        kurer_args a;
        char err[256];
        if (strcmp(argv[1], subcommands[i].name) != 0)
            continue;
        if (kurer_args_parse(&a, &subcommands[i].spec, argc - 2, argv + 2, err, sizeof(err)) != 0) {
            fprintf(stderr, "kurer-relay: %s (see --help)\n", err);
            return 2;
        }
        if (kurer_args_count(&a, "help") > 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        return subcommands[i].fn(&a);
    }
    fprintf(stderr, "kurer-relay: unknown command %s (see --help)\n", argv[1]);
    return 2;
}
