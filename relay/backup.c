/* Backups that stay encrypted (docs/relay.md, "Backup"): kurer-relay backup and restore, and
 * the running relay's side of an online backup.
 *
 * How a backup reaches a running relay: the relay holds DIR/.lock and opens its store with
 * exclusive locking, so no other process can read the database. `backup` writes its request
 * (a nonce and the absolute output path) to DIR/backup.request and sends the relay SIGUSR1
 * (the pid is in DIR/.lock). The relay reads the request, submits a backup to its store (the
 * writer thread exports between two rounds: one consistent read) and answers in
 * DIR/backup.result ("NONCE OK|ERRNAME message"). The relay needs nothing for it but open,
 * read, write, fsync and rename: no socket, which its seccomp filter would have to allow. A
 * relay that is not running is found out by taking DIR/.lock; then `backup` opens the store
 * itself. */
#include "relay_internal.h"
#include "store_sqlite.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/noise.h"
#include "kurer/util.h"

#define REQ_FILE   "backup.request"
#define RES_FILE   "backup.result"
#define NONCE_HEX  32
#define REQ_MAX    (NONCE_HEX + 2 + PATH_MAX)
#define PATH_BYTES (PATH_MAX + 32)

/* ---- the running relay's side -------------------------------------------------------------- */

typedef struct backup_job {
    relay *r;
    char nonce[NONCE_HEX + 1];
} backup_job;

/* The answer, written to a temporary file and renamed into place: the command never reads a
 * half-written one. */
static void write_result(const char *dir, const char *nonce, int err)
{
    char path[PATH_BYTES], tmp[PATH_BYTES + 8], line[256];
    int n = snprintf(line, sizeof(line), "%s %s %s\n", nonce, err == 0 ? "OK" : kurer_err_name(err),
                     err == 0 ? "written" : kurer_strerror(err));
    if (kurer_path_join(path, sizeof(path), dir, RES_FILE) != 0)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    int ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    close(fd);
    if (ok)
        (void)rename(tmp, path);
}

static void on_backup_done(void *arg, int err)
{
    backup_job *j = arg;
    kurer_log(err == 0 ? KURER_LOG_INFO : KURER_LOG_ERROR, "relay",
              err == 0 ? "backup_written" : "backup_failed",
              (kurer_log_field[]){KURER_LOG_STR("error", err == 0 ? "" : kurer_err_name(err))}, 1);
    write_result(j->r->opts->dir, j->nonce, err);
    j->r->backup_busy = 0;
    free(j);
}

/* "NONCE /absolute/path\n" */
static int parse_request(char *req, size_t len, char nonce[NONCE_HEX + 1], const char **path)
{
    if (len < NONCE_HEX + 3 || req[len - 1] != '\n' || req[NONCE_HEX] != ' ' ||
        req[NONCE_HEX + 1] != '/')
        return KURER_EMALFORMED;
    req[len - 1] = '\0';
    for (size_t i = 0; i < NONCE_HEX; i++)
        if (strchr("0123456789abcdef", req[i]) == NULL || req[i] == '\0')
            return KURER_EMALFORMED;
    if (strchr(req + NONCE_HEX + 1, '\n') != NULL)
        return KURER_EMALFORMED;
    memcpy(nonce, req, NONCE_HEX);
    nonce[NONCE_HEX] = '\0';
    *path = req + NONCE_HEX + 1;
    return 0;
}

static void on_sigusr1(uv_signal_t *s, int signum)
{
    relay *r = s->data;
    char path[PATH_BYTES];
    uint8_t *req = NULL;
    size_t len = 0;
    const char *out;
    (void)signum;
    if (r->backup_busy || r->stopping || r->store == NULL)
        return; /* the backup in progress answers its own request */
    if (kurer_path_join(path, sizeof(path), r->opts->dir, REQ_FILE) != 0 ||
        kurer_file_read(path, REQ_MAX, &req, &len) != 0)
        return; /* a stray signal: nothing asked */
    backup_job *j = calloc(1, sizeof(*j));
    int err = j == NULL ? KURER_ENOMEM : parse_request((char *)req, len, j->nonce, &out);
    if (err == 0) {
        j->r = r;
        err = kurer_store_backup(r->store, out, on_backup_done, j);
    }
    if (err == 0) {
        r->backup_busy = 1;
        kurer_log(KURER_LOG_INFO, "relay", "backup_started", NULL, 0);
    } else {
        kurer_log(KURER_LOG_WARN, "relay", "backup_refused",
                  (kurer_log_field[]){KURER_LOG_STR("error", kurer_err_name(err))}, 1);
        if (j != NULL && j->nonce[0] != '\0')
            write_result(r->opts->dir, j->nonce, err);
        free(j);
    }
    free(req);
}

void kurer__backup_listen(relay *r)
{
    uv_signal_init(r->loop, &r->sigusr1);
    r->sigusr1.data = r;
    uv_signal_start(&r->sigusr1, on_sigusr1, SIGUSR1);
}

void kurer__backup_stop(relay *r)
{
    uv_close((uv_handle_t *)&r->sigusr1, NULL);
}

/* ---- the commands -------------------------------------------------------------------------- */

/* A 32-byte key file that only its owner may read. */
static int read_key_file(const char *dir, const char *name, uint8_t *out)
{
    char path[PATH_BYTES];
    struct stat st;
    uint8_t *data = NULL;
    size_t len = 0;
    int err = kurer_path_join(path, sizeof(path), dir, name);
    if (err == 0 && stat(path, &st) != 0)
        err = KURER_ENOENT;
    if (err == 0 && (st.st_mode & 077) != 0) {
        fprintf(stderr, "kurer-relay: %s has mode %04o: it must be readable by its owner only\n",
                path, (unsigned)(st.st_mode & 07777));
        return KURER_EPERM;
    }
    if (err == 0)
        err = kurer_file_read(path, 64, &data, &len);
    if (err == 0 && len != 32)
        err = KURER_EMALFORMED;
    if (err == 0)
        memcpy(out, data, 32);
    if (data != NULL) {
        kurer_wipe(data, len);
        free(data);
    }
    if (err != 0)
        fprintf(stderr, "kurer-relay: %s: %s\n", path, kurer_strerror(err));
    return err;
}

/* Opens an existing store file with the raw key: SQLCipher, the key right, exclusive locking.
 * *why says which check failed. */
static int open_store_file(const char *path, const uint8_t key[32], sqlite3 **db, const char **why)
{
    sqlite3_stmt *st = NULL;
    *why = "open";
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        return KURER_ESTORAGE;
    int cipher = sqlite3_prepare_v2(*db, "PRAGMA cipher_version", -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL &&
                 sqlite3_column_text(st, 0)[0] != '\0';
    sqlite3_finalize(st);
    *why = "SQLCipher";
    if (!cipher)
        return KURER_ELINKAGE;
    int err = kurer__sqlite_apply_key(*db, key);
    if (err != 0)
        return err;
    if (sqlite3_exec(*db, "PRAGMA locking_mode=EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK)
        return KURER_ESTORAGE;
    *why = "key";
    int r = sqlite3_exec(*db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (r == SQLITE_NOTADB)
        return KURER_EPASSPHRASE;
    return r == SQLITE_OK ? 0 : KURER_ESTORAGE;
}

/* The relay is not running (we hold DIR/.lock): the store is exported by this process. */
static int backup_offline(const char *dir, const char *out)
{
    char path[PATH_BYTES];
    uint8_t key[32];
    sqlite3 *db = NULL;
    const char *why;
    int err = kurer_crypto_init();
    if (err == 0)
        err = read_key_file(dir, "store.key", key);
    if (err != 0)
        return 1;
    if ((err = kurer_path_join(path, sizeof(path), dir, "relay.db")) == 0 &&
        (err = kurer_file_exists(path)) != 0)
        fprintf(stderr, "kurer-relay: %s: no store (the relay has never run)\n", path);
    else if (err == 0 && (err = open_store_file(path, key, &db, &why)) != 0)
        fprintf(stderr, "kurer-relay: %s: %s (%s)\n", path, kurer_strerror(err), why);
    else if (err == 0 && (err = kurer__sqlite_export(db, out)) != 0)
        fprintf(stderr, "kurer-relay: backup to %s failed: %s (%s)\n", out, kurer_strerror(err),
                sqlite3_errmsg(db));
    kurer_memzero(key, sizeof(key));
    sqlite3_close(db);
    return err == 0 ? 0 : 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The relay is running (pid): ask it, and wait for its answer. */
static int backup_online(const char *dir, const char *out, long pid, int timeout_s)
{
    char req[PATH_BYTES], res[PATH_BYTES], line[REQ_MAX + 8], nonce[NONCE_HEX + 1];
    uint8_t raw[NONCE_HEX / 2];
    kurer_random(raw, sizeof(raw));
    kurer_hex_encode(nonce, raw, sizeof(raw));
    nonce[NONCE_HEX] = '\0';
    int n = snprintf(line, sizeof(line), "%s %s\n", nonce, out);
    if (kurer_path_join(req, sizeof(req), dir, REQ_FILE) != 0 ||
        kurer_path_join(res, sizeof(res), dir, RES_FILE) != 0 || n >= (int)sizeof(line))
        return 1;
    (void)unlink(res);
    int err = kurer_file_write(req, line, (size_t)n, 0600, 1);
    if (err != 0) {
        fprintf(stderr, "kurer-relay: %s: %s\n", req, kurer_strerror(err));
        return 1;
    }
    if (pid <= 0 || kill((pid_t)pid, SIGUSR1) != 0) {
        fprintf(stderr,
                "kurer-relay: %s is locked but its relay (pid %ld) cannot be signalled: %s\n", dir,
                pid, strerror(errno));
        (void)unlink(req);
        return 1;
    }
    int rc = 1;
    for (long waited = 0; waited <= (long)timeout_s * 1000; waited += 50) {
        uint8_t *data = NULL;
        size_t len = 0;
        if (kurer_file_read(res, 512, &data, &len) == 0) {
            int mine = len > NONCE_HEX && kurer_ct_equal(data, nonce, NONCE_HEX);
            if (mine) {
                char *what = (char *)data + NONCE_HEX + 1;
                what[strcspn(what, "\n")] = '\0';
                if (strncmp(what, "OK ", 3) == 0) {
                    printf("backup written to %s (by the running relay, pid %ld)\n", out, pid);
                    rc = 0;
                } else {
                    fprintf(stderr, "kurer-relay: backup failed: %s (see the relay's log)\n", what);
                }
            }
            free(data);
            if (mine)
                goto out;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "kurer-relay: the relay (pid %ld) did not answer within %d s\n", pid,
            timeout_s);
out:
    (void)unlink(req);
    (void)unlink(res);
    return rc;
}

/* out as an absolute path (the relay's working directory is not ours): its folder resolved. */
static int absolute(const char *out, char *abs, size_t cap)
{
    char folder[PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(out, '/'), *base = slash != NULL ? slash + 1 : out;
    if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return KURER_EINVAL;
    if (slash == NULL)
        snprintf(folder, sizeof(folder), ".");
    else if (slash == out)
        snprintf(folder, sizeof(folder), "/");
    else
        snprintf(folder, sizeof(folder), "%.*s", (int)(slash - out), out);
    if (realpath(folder, real) == NULL)
        return KURER_ENOENT;
    int n = snprintf(abs, cap, "%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", base);
    return n < (int)cap ? 0 : KURER_ELIMIT;
}

int kurer_relay_backup(const char *dir, const char *out, int timeout_s)
{
    char abs[PATH_MAX], path[PATH_BYTES], buf[32];
    if (absolute(out, abs, sizeof(abs)) != 0 || strchr(abs, '\n') != NULL) {
        fprintf(stderr, "kurer-relay: --out %s: not a file in an existing folder\n", out);
        return 1;
    }
    /* One backup command per folder at a time (the request file is one). */
    if (kurer_path_join(path, sizeof(path), dir, ".backup.lock") != 0)
        return 1;
    int bfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (bfd < 0 || flock(bfd, LOCK_EX) != 0) {
        fprintf(stderr, "kurer-relay: %s: %s\n", path, strerror(errno));
        if (bfd >= 0)
            close(bfd);
        return 1;
    }
    int rc = 1;
    if (kurer_path_join(path, sizeof(path), dir, ".lock") != 0)
        goto out;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fprintf(stderr, "kurer-relay: %s: %s\n", path, strerror(errno));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        rc = backup_offline(dir, abs);
        if (rc == 0)
            printf("backup written to %s (the relay is not running: from the store)\n", abs);
    } else {
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        rc = backup_online(dir, abs, strtol(buf, NULL, 10), timeout_s);
    }
    close(fd);
out:
    close(bfd);
    return rc;
}

/* ---- restore ------------------------------------------------------------------------------- */

/* dir exists and is empty, or is created (0700). */
static int empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno != ENOENT || mkdir(dir, 0700) != 0) {
            fprintf(stderr, "kurer-relay: %s: %s\n", dir, strerror(errno));
            return -1;
        }
        return 0;
    }
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    if (n != 0) {
        fprintf(stderr, "kurer-relay: %s is not empty: restore only into an empty folder\n", dir);
        return -1;
    }
    if (chmod(dir, 0700) != 0) {
        fprintf(stderr, "kurer-relay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Copies src to dst (created 0600, never over an existing file) and fsyncs it. */
static int copy_file(const char *src, const char *dst)
{
    char buf[65536];
    int in = open(src, O_RDONLY | O_CLOEXEC), rc = KURER_EIO;
    if (in < 0)
        return KURER_ENOENT;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        close(in);
        return KURER_EIO;
    }
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            goto out;
    if (n == 0 && fsync(out) == 0)
        rc = 0;
out:
    close(in);
    close(out);
    return rc;
}

static int64_t count_of(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The backup decrypts with the store key, is an intact database and takes the migrations. */
static int verify_store(const char *file, const char *path, const uint8_t key[32])
{
    sqlite3 *db = NULL;
    const char *why;
    int err = open_store_file(path, key, &db, &why);
    if (err == KURER_EPASSPHRASE)
        fprintf(stderr,
                "kurer-relay: %s does not decrypt with this store.key (a backup of another "
                "relay, or not a backup)\n",
                file);
    else if (err != 0)
        fprintf(stderr, "kurer-relay: %s: %s (%s)\n", file, kurer_strerror(err), why);
    sqlite3_stmt *st = NULL;
    if (err == 0) {
        int ok = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL &&
                 strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
        if (!ok) {
            fprintf(stderr, "kurer-relay: %s: the database is damaged (quick_check)\n", file);
            err = KURER_ECORRUPT;
        }
    }
    if (err == 0 && (err = kurer__sqlite_migrate(db)) != 0)
        fprintf(stderr, "kurer-relay: %s: %s (migrating the schema)\n", file, kurer_strerror(err));
    if (err == 0)
        printf("restored %s: schema version %lld, %lld envelopes, %lld devices\n", file,
               (long long)count_of(db, "PRAGMA user_version"),
               (long long)count_of(db, "SELECT count(*) FROM mailbox"),
               (long long)count_of(db, "SELECT count(*) FROM devices"));
    sqlite3_close(db);
    return err;
}

int kurer_relay_restore(const char *dir, const char *keys, const char *file)
{
    static const char *const made[] = {
        "relay.db.tmp", "relay.db.tmp-journal", "relay.db", "relay.key", "store.key", "relay.pub"};
    char tmp[PATH_BYTES], db[PATH_BYTES], path[PATH_BYTES], hex[65];
    uint8_t pk[32];
    uint8_t *k = kurer_secure_alloc(64); /* relay.key, then store.key */
    int err = k == NULL ? KURER_ENOMEM : kurer_crypto_init();
    if (err != 0 || empty_dir(dir) != 0) {
        kurer_secure_free(k);
        return 1;
    }
    if ((err = read_key_file(keys, "relay.key", k)) != 0 ||
        (err = read_key_file(keys, "store.key", k + 32)) != 0)
        goto out;
    if ((err = kurer_noise_public_key(pk, k)) != 0 ||
        (err = kurer_path_join(tmp, sizeof(tmp), dir, "relay.db.tmp")) != 0 ||
        (err = kurer_path_join(db, sizeof(db), dir, "relay.db")) != 0)
        goto out;
    if ((err = copy_file(file, tmp)) != 0) {
        fprintf(stderr, "kurer-relay: cannot copy %s into %s: %s\n", file, dir,
                kurer_strerror(err));
        goto out;
    }
    if ((err = verify_store(file, tmp, k + 32)) != 0)
        goto out;
    if (rename(tmp, db) != 0) {
        err = KURER_EIO;
        goto out;
    }
    kurer_hex_encode(hex, pk, 32);
    hex[64] = '\n';
    if ((err = kurer_path_join(path, sizeof(path), dir, "relay.key")) == 0 &&
        (err = kurer_file_write(path, k, 32, 0600, 0)) == 0 &&
        (err = kurer_path_join(path, sizeof(path), dir, "store.key")) == 0 &&
        (err = kurer_file_write(path, k + 32, 32, 0600, 0)) == 0 &&
        (err = kurer_path_join(path, sizeof(path), dir, "relay.pub")) == 0)
        err = kurer_file_write(path, hex, 65, 0644, 0);
    if (err != 0)
        fprintf(stderr, "kurer-relay: writing the keys into %s: %s\n", dir, kurer_strerror(err));
    else
        printf("relay key %.64s\n", hex);
out:
    kurer_secure_free(k);
    if (err != 0) /* leave the folder as empty as it was */
        for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++)
            if (kurer_path_join(path, sizeof(path), dir, made[i]) == 0)
                (void)unlink(path);
    return err == 0 ? 0 : 1;
}
