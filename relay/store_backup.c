/* The sqlite backend's backup: an encrypted, consistent copy of the store (store_sqlite.h). */
#include "store_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kurer/error.h"
#include "kurer/log.h"

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
    if (fd < 0)
        return KURER_EIO;
    int ok = fsync(fd) == 0;
    close(fd);
    return ok ? 0 : KURER_EIO;
}

static int failed(sqlite3 *db, const char *what)
{
    kurer_log(KURER_LOG_ERROR, "store", "backup_failed",
              (kurer_log_field[]){KURER_LOG_STR("step", what),
                                  KURER_LOG_STR("error", sqlite3_errmsg(db))},
              2);
    return KURER_ESTORAGE;
}

/* The export itself: the attached copy gets the main database's key and salt (an ATTACH
 * without KEY, SQLCipher's rule), so the key never appears in SQL text. The copy has no
 * journal: it is a new file that only becomes the backup by the rename, so a crash leaves a
 * stray .tmp and never a damaged backup. One read transaction on main makes it consistent (on
 * the relay it runs on the writer thread between rounds anyway). */
static int export_into(sqlite3 *db, const char *tmp)
{
    sqlite3_stmt *st = NULL;
    int rc = 0, version = -1;
    if (sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS backup", -1, &st, NULL) != SQLITE_OK)
        return failed(db, "attach");
    sqlite3_bind_text(st, 1, tmp, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return failed(db, "attach");
    if (sqlite3_exec(db, "PRAGMA backup.journal_mode=OFF", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        rc = failed(db, "begin");
    if (rc == 0 &&
        sqlite3_exec(db, "SELECT sqlcipher_export('backup')", NULL, NULL, NULL) != SQLITE_OK)
        rc = failed(db, "export");
    /* sqlcipher_export copies tables and rows, not user_version: the schema version. */
    if (rc == 0 && sqlite3_prepare_v2(db, "PRAGMA main.user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA backup.user_version=%d", version);
    if (rc == 0 && (version < 0 || sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK))
        rc = failed(db, "user_version");
    if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = failed(db, "commit");
    if (rc != 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (sqlite3_exec(db, "DETACH DATABASE backup", NULL, NULL, NULL) != SQLITE_OK && rc == 0)
        rc = failed(db, "detach");
    return rc;
}

int kurer__sqlite_export(sqlite3 *db, const char *path)
{
    char tmp[PATH_MAX + 8], dir[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp) ||
        snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return KURER_ELIMIT;
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        slash[slash == dir ? 1 : 0] = '\0';
    /* Owner-only from the start; a .tmp left by a failed backup is emptied, not unlinked. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        kurer_log(KURER_LOG_ERROR, "store", "backup_failed",
                  (kurer_log_field[]){KURER_LOG_STR("step", "open"),
                                      KURER_LOG_STR("error", strerror(errno))},
                  2);
        return KURER_EIO;
    }
    close(fd);
    int rc = export_into(db, tmp);
    if (rc == 0)
        rc = fsync_path(tmp, 0);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = KURER_EIO;
    if (rc == 0)
        rc = fsync_path(dir, 1);
    return rc;
}
