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
    "       kurer-relay run [--config FILE] --dir DIR --listen HOST:PORT [--listen ...]\n"
    "                       --root ROOT.crt [--root ...] [--crl FILE ...] [--store sqlite]\n"
    "                       [--metrics HOST:PORT [--metrics-public]] [--user NAME]\n"
    "                       [--log-level debug|info|warn|error|off] [--no-seccomp]\n"
    "       kurer-relay check-config --config FILE [run's options]\n"
    "       kurer-relay backup --dir DIR --out FILE [--timeout SECONDS]\n"
    "       kurer-relay restore --dir NEWDIR --keys KEYDIR FILE\n"
    "       kurer-relay --version\n"
    "\n"
    "init  creates DIR with the relay's Noise static key (relay.key: a raw X25519 key, mode\n"
    "      0600, not sealed: protect the folder), the store key (store.key, mode 0600) and\n"
    "      relay.pub; prints the public key in hex.\n"
    "run   serves until SIGTERM or SIGINT; SIGHUP reloads the --crl files. With port 0 it\n"
    "      prints the bound address as 'listening HOST:PORT'. HOST may be a host name. One\n"
    "      relay per DIR (it locks DIR/.lock). --metrics serves an unauthenticated page:\n"
    "      a non-loopback address is refused unless --metrics-public is given. See\n"
    "      docs/relay.md. Every option is also a key of the --config file (--log-level is\n"
    "      log_level); the command line overrides the file. Started as root, it needs a user\n"
    "      to drop to (--user or 'user =').\n"
    "check-config  checks FILE (and the files it names) without starting: 'FILE: ok'.\n";

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

#define V      KURER_OPT_VALUE
#define NMULTI KURER_RELAY_MULTI_MAX

static const kurer_opt init_opts[] = {{"help", 0, 0}, {"dir", V, 0}, {"config", V, 0}};
static const kurer_opt backup_opts[] = {
    {"help", 0, 0}, {"dir", V, 0}, {"out", V, 0}, {"timeout", V, 0}};
static const kurer_opt restore_opts[] = {{"help", 0, 0}, {"dir", V, 0}, {"keys", V, 0}};
/* run and check-config: every option is also a configuration key (docs/relay.md). */
static const kurer_opt run_opts[] = {
    {"help", 0, 0},     {"dir", V, 0},       {"listen", V, NMULTI}, {"root", V, NMULTI},
    {"crl", V, NMULTI}, {"store", V, 0},     {"metrics", V, 0},     {"metrics-public", 0, 0},
    {"config", V, 0},   {"log-level", V, 0}, {"user", V, 0},        {"no-seccomp", 0, 0}};

/* The settings of run (and check-config): the file's, then the command line's over them (a
 * repeatable option given replaces the file's values). 0, or the exit status after the
 * problems were reported. *owned: free after the last use of o. */
static int gather(const kurer_args *a, kurer_relay_opts *o, char **owned, unsigned flags)
{
    const char *config = kurer_args_value(a, "config");
    char why[300], key[32];
    int bad = 0;
    kurer_relay_opts_default(o);
    *owned = NULL;
    if (config != NULL && kurer_relay_config_load(o, config, flags, stderr, owned) != 0)
        return 2;
    for (size_t i = 1; i < sizeof(run_opts) / sizeof(run_opts[0]); i++) {
        const kurer_opt *opt = &run_opts[i];
        size_t n = kurer_args_count(a, opt->name);
        if (n == 0 || strcmp(opt->name, "config") == 0)
            continue;
        if (strcmp(opt->name, "no-seccomp") == 0) {
            o->seccomp = 0;
            continue;
        }
        snprintf(key, sizeof(key), "%s", opt->name);
        for (char *c = key; *c != '\0'; c++)
            *c = *c == '-' ? '_' : *c;
        if (opt->max > 1) /* the command line's values replace the file's */
            *(strcmp(key, "listen") == 0 ? &o->n_listen
              : strcmp(key, "root") == 0 ? &o->n_roots
                                         : &o->n_crls) = 0;
        for (size_t j = 0; j < n; j++) {
            const char *v = (opt->flags & V) ? kurer_args_nth(a, opt->name, j) : "yes";
            if (kurer_relay_opts_set(o, key, v, flags, why, sizeof(why)) != 0) {
                fprintf(stderr, "kurer-relay: --%s %s: %s\n", opt->name, v, why);
                bad = 1;
            }
        }
    }
    return bad ? 2 : 0;
}

/* store = postgres: its connection string into the relay's configuration (a secret: copied
 * into cfg, which the relay wipes once the store is open). 0, or 2 after a message. */
static int apply_store(kurer_relay_opts *o)
{
    o->cfg.store_postgres = o->store != NULL && strcmp(o->store, "postgres") == 0;
    if (!o->cfg.store_postgres)
        return 0;
    if (o->pg_conninfo == NULL || o->pg_conninfo[0] == '\0') {
        fprintf(stderr, "kurer-relay: store = postgres needs pg_conninfo (docs/scale-out.md)\n");
        return 2;
    }
    snprintf(o->cfg.pg_conninfo, sizeof(o->cfg.pg_conninfo), "%s", o->pg_conninfo);
    return 0;
}

/* Frees the configuration file's bytes (they may hold pg_conninfo), wiped. */
static void free_owned(char *owned, size_t len)
{
    if (owned != NULL) {
        kurer_memzero(owned, len);
        free(owned);
    }
}

/* What run cannot do without, wherever it was given. */
static int complete(const kurer_relay_opts *o, const char *config)
{
    const char *where = config != NULL ? config : "the command line";
    if (o->dir == NULL) {
        fprintf(stderr, "kurer-relay: --dir is required (or 'dir =' in --config; see --help)\n");
        return 2;
    }
    if (o->n_listen == 0 || o->n_roots == 0) {
        fprintf(stderr,
                "kurer-relay: run needs --listen and at least one --root (or 'listen =' and "
                "'root =' in --config): %s has %s\n",
                where, o->n_listen == 0 ? "no listen address" : "no root");
        return 2;
    }
    return 0;
}

/* A relay started as root binds and opens as root, then runs as o->user (docs/relay.md,
 * "Privileges"); without a user to drop to it does not start. */
static int root_ok(const kurer_relay_opts *o)
{
    const char *allow = getenv("KURER_RELAY_ALLOW_ROOT");
    if (geteuid() != 0 || o->user != NULL)
        return 0;
    if (allow != NULL && strcmp(allow, "1") == 0) {
        fprintf(stderr, "kurer-relay: warning: running as root (KURER_RELAY_ALLOW_ROOT=1: for "
                        "test machines only)\n");
        return 0;
    }
    fprintf(stderr, "kurer-relay: refusing to run as root without a user to drop to: set "
                    "'user = NAME' in the configuration or give --user NAME (it binds and opens "
                    "its files as root, then runs as NAME), or start it as that user\n");
    return 1;
}

/* The log level (checked already), case-insensitive. */
static void set_log_level(const char *v)
{
    kurer_log_level lvl;
    char low[16];
    size_t n = 0;
    for (; v[n] != '\0' && n + 1 < sizeof(low); n++)
        low[n] = (char)tolower((unsigned char)v[n]);
    low[n] = '\0';
    if (kurer_log_level_parse(low, &lvl) == 0)
        kurer_log_set(stderr, lvl);
}

static int cmd_init(const kurer_args *a)
{
    const char *dir = kurer_args_value(a, "dir");
    const char *config = kurer_args_value(a, "config");
    if (dir == NULL) {
        fprintf(stderr, "kurer-relay: --dir is required (see --help)\n");
        return 2;
    }
    kurer_relay_opts o;
    char *owned = NULL;
    kurer_relay_opts_default(&o);
    int rc = config != NULL && kurer_relay_config_load(&o, config, 0, stderr, &owned) != 0 ? 2 : 0;
    if (rc == 0)
        rc = apply_store(&o);
    /* store = postgres: creates or migrates the schema, also for a folder made before */
    if (rc == 0)
        rc = kurer_relay_init_store(&o.cfg);
    kurer_memzero(&o.cfg, sizeof(o.cfg));
    free_owned(owned, o.owned_len);
    return rc != 0 ? rc : kurer_relay_init(dir);
}

static int cmd_run(const kurer_args *a)
{
    kurer_relay_opts o;
    char *owned;
    int rc = gather(a, &o, &owned, 0);
    if (rc == 0)
        rc = complete(&o, kurer_args_value(a, "config"));
    if (rc == 0)
        rc = apply_store(&o);
    if (rc == 0)
        rc = root_ok(&o);
    if (rc == 0 && o.log_level != NULL)
        set_log_level(o.log_level);
    if (rc == 0 && (check_files(o.dir) != 0 || lock_dir(o.dir) < 0))
        rc = 1;
    if (rc == 0) {
        uv_loop_t *loop = uv_default_loop();
        rc = kurer_relay_run(&o, loop) == 0 ? 0 : 1;
        (void)uv_loop_close(loop);
    }
    kurer_memzero(o.cfg.pg_conninfo, sizeof(o.cfg.pg_conninfo));
    free_owned(owned, o.owned_len);
    return rc;
}

/* check-config: the file (and any options given with it) as run would take them, and the files
 * and folder they name: "FILE: ok" (0), or every problem (1). Binds nothing, opens no store and
 * reads no key. */
static int cmd_check_config(const kurer_args *a)
{
    kurer_relay_opts o;
    char *owned;
    const char *config = kurer_args_value(a, "config");
    if (config == NULL) {
        fprintf(stderr, "kurer-relay: check-config needs --config FILE (see --help)\n");
        return 2;
    }
    int rc = gather(a, &o, &owned, KURER_RELAY_CHECK_FILES);
    if (rc == 0)
        rc = complete(&o, config);
    free_owned(owned, o.owned_len);
    if (rc != 0)
        return 1;
    printf("%s: ok\n", config);
    return 0;
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
    {"check-config",
     cmd_check_config,
     {run_opts, sizeof(run_opts) / sizeof(run_opts[0]), 0, 0, NULL}},
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
