/* Backups of a device home that stay encrypted (kurer_backup, kurer_restore; docs/client.md,
 * "Backup and restore"), and the home's instance (docs/protocol.md 1.1, "Instances").
 *
 * A backup file: "KURERHB1", the length of the KDF record (4 bytes, big-endian; 0 for a home
 * opened with a raw key), the home's store.kdf record (Argon2id salt and parameters: no
 * secret), then a SQLCipher database made by sqlcipher_export under the store's own key and
 * salt. Restoring writes store.kdf and store.db back and opens them with the same passphrase
 * (or raw key), which is what verifies the backup; then it gives the home a new instance id. */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "home.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"

#define MAGIC        "KURERHB1"
#define MAGIC_LEN    8
#define KDF_MAX      256
#define PATH_LEN     (KURER__HOME_PATH_MAX + 32)
#define INSTANCE_ID  "instance_id"
#define INSTANCE_CNT "instance_count"

/* ---- the instance ---------------------------------------------------------------------- */

static int new_instance(kurer__store *st)
{
    uint64_t id = 0;
    while (id == 0) {
        kurer_random(&id, sizeof(id));
        id &= INT64_MAX; /* the store's counters are signed */
    }
    return kurer__store_counter_set(st, INSTANCE_ID, id);
}

int kurer__instance_next(kurer *k, uint64_t *id, uint64_t *count)
{
    uint64_t i = 0, n = 0;
    int rc = kurer__store_counter_get(k->st, INSTANCE_ID, &i);
    if (rc == 0 && i == 0 && (rc = new_instance(k->st)) == 0) /* a home from before instances */
        rc = kurer__store_counter_get(k->st, INSTANCE_ID, &i);
    if (rc == 0)
        rc = kurer__store_counter_get(k->st, INSTANCE_CNT, &n);
    if (rc == 0 && n < INT64_MAX)
        rc = kurer__store_counter_set(k->st, INSTANCE_CNT, ++n);
    *id = rc == 0 ? i : 0;
    *count = rc == 0 ? n : 0;
    return rc;
}

/* ---- backup ---------------------------------------------------------------------------- */

static int copy_fd(int in, int out)
{
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            return KURER_EIO;
    return n == 0 ? 0 : KURER_EIO;
}

/* sqlcipher_export into db_tmp: the attached copy takes the main database's key and salt. */
static int export_store(sqlite3 *db, const char *db_tmp)
{
    sqlite3_stmt *st = NULL;
    int version = -1, rc = KURER_ESTORAGE;
    char sql[64];
    int fd = open(db_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return KURER_EIO;
    close(fd);
    if (sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS backup", -1, &st, NULL) != SQLITE_OK)
        return KURER_ESTORAGE;
    sqlite3_bind_text(st, 1, db_tmp, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return KURER_ESTORAGE;
    if (sqlite3_prepare_v2(db, "PRAGMA main.user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    snprintf(sql, sizeof(sql), "PRAGMA backup.user_version=%d", version);
    if (version >= 0 &&
        sqlite3_exec(db, "PRAGMA backup.journal_mode=OFF", NULL, NULL, NULL) == SQLITE_OK &&
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK) {
        if (sqlite3_exec(db, "SELECT sqlcipher_export('backup')", NULL, NULL, NULL) == SQLITE_OK &&
            sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK &&
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
            rc = 0;
        else
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (rc != 0)
        kurer_log(KURER_LOG_ERROR, "store", "backup_failed",
                  (kurer_log_field[]){KURER_LOG_STR("detail", sqlite3_errmsg(db))}, 1);
    if (sqlite3_exec(db, "DETACH DATABASE backup", NULL, NULL, NULL) != SQLITE_OK && rc == 0)
        rc = KURER_ESTORAGE;
    return rc;
}

/* The header, the KDF record (kdf_len bytes) and the exported database into path.tmp; fsync;
 * rename to path. */
static int write_backup(const char *path, const uint8_t *kdf, size_t kdf_len, const char *db_tmp)
{
    char tmp[PATH_LEN];
    uint8_t head[MAGIC_LEN + 4];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return KURER_ELIMIT;
    memcpy(head, MAGIC, MAGIC_LEN);
    for (int i = 0; i < 4; i++)
        head[MAGIC_LEN + i] = (uint8_t)(kdf_len >> (24 - 8 * i));
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    int in = open(db_tmp, O_RDONLY | O_CLOEXEC);
    int rc = out < 0 || in < 0 ? KURER_EIO : 0;
    if (rc == 0 && (write(out, head, sizeof(head)) != (ssize_t)sizeof(head) ||
                    (kdf_len > 0 && write(out, kdf, kdf_len) != (ssize_t)kdf_len)))
        rc = KURER_EIO;
    if (rc == 0)
        rc = copy_fd(in, out);
    if (rc == 0 && fsync(out) != 0)
        rc = KURER_EIO;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = KURER_EIO;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int kurer_backup(kurer *k, const char *path)
{
    char kdf_path[PATH_LEN], db_tmp[PATH_LEN];
    uint8_t *kdf = NULL;
    size_t kdf_len = 0;
    if (k == NULL || path == NULL || path[0] == '\0')
        return KURER_EINVAL;
    if (snprintf(db_tmp, sizeof(db_tmp), "%s.db.tmp", path) >= (int)sizeof(db_tmp))
        return KURER_ELIMIT;
    kurer__hlock_take(k);
    int rc = kurer__store_in_transaction(k->st) ? KURER_ESTATE : 0;
    if (rc == 0)
        rc = kurer_path_join(kdf_path, sizeof(kdf_path), k->home, KURER__STORE_KDF);
    if (rc == 0 && kurer_file_exists(kdf_path) == 0) /* a passphrase home: carried along */
        rc = kurer_file_read(kdf_path, KDF_MAX, &kdf, &kdf_len);
    if (rc == 0)
        rc = export_store(kurer__store_sqlite(k->st), db_tmp);
    kurer__hlock_give(k);
    if (rc == 0)
        rc = write_backup(path, kdf, kdf_len, db_tmp);
    unlink(db_tmp);
    free(kdf);
    return rc;
}

/* ---- restore --------------------------------------------------------------------------- */

/* home exists and is empty, or is created (0700). */
static int empty_home(const char *home)
{
    DIR *d = opendir(home);
    if (d == NULL)
        return errno == ENOENT && mkdir(home, 0700) == 0 ? 0 : KURER_EIO;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    if (n != 0)
        return KURER_EEXIST;
    return chmod(home, 0700) == 0 ? 0 : KURER_EIO;
}

/* Splits the backup file into HOME/store.kdf and HOME/store.db. */
static int unpack(const char *path, const char *home, int *has_kdf)
{
    char kdf_path[PATH_LEN], db_path[PATH_LEN];
    uint8_t head[MAGIC_LEN + 4], kdf[KDF_MAX];
    int rc = kurer_path_join(kdf_path, sizeof(kdf_path), home, KURER__STORE_KDF);
    if (rc == 0)
        rc = kurer_path_join(db_path, sizeof(db_path), home, KURER__STORE_DB);
    if (rc != 0)
        return rc;
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return KURER_ENOENT;
    size_t kdf_len = 0;
    if (read(in, head, sizeof(head)) != (ssize_t)sizeof(head) ||
        memcmp(head, MAGIC, MAGIC_LEN) != 0)
        rc = KURER_EMALFORMED; /* not a backup of a home */
    for (int i = 0; rc == 0 && i < 4; i++)
        kdf_len = kdf_len << 8 | head[MAGIC_LEN + i];
    if (rc == 0 && kdf_len > KDF_MAX)
        rc = KURER_EMALFORMED;
    if (rc == 0 && kdf_len > 0 && read(in, kdf, kdf_len) != (ssize_t)kdf_len)
        rc = KURER_EMALFORMED;
    if (rc == 0 && kdf_len > 0)
        rc = kurer_file_write(kdf_path, kdf, kdf_len, 0600, 0);
    int out = rc == 0 ? open(db_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    if (rc == 0 && out < 0)
        rc = KURER_EIO;
    if (rc == 0)
        rc = copy_fd(in, out);
    if (rc == 0 && fsync(out) != 0)
        rc = KURER_EIO;
    if (out >= 0)
        close(out);
    close(in);
    *has_kdf = kdf_len > 0;
    return rc;
}

int kurer_restore(const char *home, const char *path, const char *pass, size_t pass_len,
                  const uint8_t *key)
{
    static const char *const made[] = {KURER__STORE_DB, KURER__STORE_DB "-wal",
                                       KURER__STORE_DB "-shm", KURER__STORE_KDF, ".lock"};
    char p[PATH_LEN];
    kurer *k = NULL;
    int has_kdf = 0;
    if (home == NULL || path == NULL || (pass == NULL) == (key == NULL))
        return KURER_EINVAL;
    int rc = empty_home(home);
    if (rc != 0)
        return rc;
    rc = unpack(path, home, &has_kdf);
    if (rc == 0 && has_kdf != (pass != NULL))
        rc = KURER_EINVAL; /* a passphrase home needs its passphrase, a raw-key home its key */
    /* Opening is the check: the key decrypts it, the migrations run. */
    if (rc == 0)
        rc = kurer_open(home, pass, pass_len, key, NULL, NULL, &k);
    if (rc == 0) {
        kurer__hlock_take(k);
        rc = new_instance(k->st); /* a copy of its own: docs/protocol.md 1.1 */
        kurer__hlock_give(k);
        kurer_close(k);
    }
    if (rc != 0) /* leave home as empty as it was */
        for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++)
            if (kurer_path_join(p, sizeof(p), home, made[i]) == 0)
                unlink(p);
    return rc;
}
