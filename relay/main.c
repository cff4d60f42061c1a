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

#include "kurer/error.h"
#include "kurer/log.h"
#include "relay.h"

#ifndef KURER_VERSION
#define KURER_VERSION "0"
#endif

static const char *USAGE =
    "usage: kurer-relay init --dir DIR\n"
    "       kurer-relay run --dir DIR --listen HOST:PORT --root ROOT.crt [--root ...]\n"
    "                       [--store sqlite] [--metrics HOST:PORT [--metrics-public]]\n"
    "                       [--config FILE] [--crl FILE ...]\n"
    "                       [--log-level debug|info|warn|error|off]\n"
    "       kurer-relay --version\n"
    "\n"
    "init  creates DIR with the relay's Noise static key (relay.key: a raw X25519 key, mode\n"
    "      0600, not sealed: protect the folder), the store key (store.key, mode 0600) and\n"
    "      relay.pub; prints the public key in hex.\n"
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
    else if (kurer_relay_config_range(k, &lo, &hi) != 0)
        fprintf(stderr, "kurer-relay: %s:%d: unknown key '%s' (see docs/relay.md)\n", path, line,
                k);
    else
        fprintf(stderr, "kurer-relay: %s:%d: %s = %s is out of range (%llu..%llu)\n", path, line, k,
                v, (unsigned long long)lo, (unsigned long long)hi);
}

static int need(int i, int argc, char **argv)
{
    if (i + 1 >= argc) {
        fprintf(stderr, "kurer-relay: %s needs a value\n", argv[i]);
        return 0;
    }
    return 1;
}

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
    const char *cmd = argv[1];
    kurer_relay_opts o;
    const char *config = NULL;
    memset(&o, 0, sizeof(o));
    kurer_relay_config_default(&o.cfg);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strcmp(a, "--metrics-public") == 0) {
            o.metrics_public = 1;
            continue;
        }
        if (!need(i, argc, argv))
            return 2;
        const char *v = argv[++i];
        if (strcmp(a, "--dir") == 0) {
            o.dir = v;
        } else if (strcmp(a, "--listen") == 0) {
            o.listen = v;
        } else if (strcmp(a, "--metrics") == 0) {
            o.metrics = v;
        } else if (strcmp(a, "--config") == 0) {
            config = v;
        } else if (strcmp(a, "--store") == 0) {
            if (strcmp(v, "sqlite") != 0) {
                fprintf(stderr, "kurer-relay: --store %s: only sqlite is available\n", v);
                return 2;
            }
        } else if (strcmp(a, "--root") == 0) {
            if (o.n_roots == 8) {
                fprintf(stderr, "kurer-relay: at most 8 --root\n");
                return 2;
            }
            o.roots[o.n_roots++] = v;
        } else if (strcmp(a, "--crl") == 0) {
            if (o.n_crls == 8) {
                fprintf(stderr, "kurer-relay: at most 8 --crl\n");
                return 2;
            }
            o.crl_files[o.n_crls++] = v;
        } else if (strcmp(a, "--log-level") == 0) {
            kurer_log_level lvl;
            char low[16];
            size_t n = 0;
            for (; v[n] != '\0' && n + 1 < sizeof(low); n++)
                low[n] = (char)tolower((unsigned char)v[n]);
            low[n] = '\0';
            if (v[n] != '\0' || kurer_log_level_parse(low, &lvl) != 0) {
                fprintf(stderr,
                        "kurer-relay: --log-level %s: unknown level (debug, info, warn, error, "
                        "off)\n",
                        v);
                return 2;
            }
            kurer_log_set(stderr, lvl);
        } else {
            fprintf(stderr, "kurer-relay: unknown option %s (see --help)\n", a);
            return 2;
        }
    }
    if (o.dir == NULL) {
        fprintf(stderr, "kurer-relay: --dir is required (see --help)\n");
        return 2;
    }
    if (strcmp(cmd, "init") == 0)
        return kurer_relay_init(o.dir);
    if (strcmp(cmd, "run") != 0) {
        fprintf(stderr, "kurer-relay: unknown command %s (see --help)\n", cmd);
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
    int rc = kurer_relay_run(&o, loop);
    (void)uv_loop_close(loop);
    return rc == 0 ? 0 : 1;
}
