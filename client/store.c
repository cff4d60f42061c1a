/* The device store over SQLCipher (see store.h for the contract).
 *
 * Key handling: a raw key ("x'<64 hex>'") bypasses SQLCipher's PBKDF2; it is built in guarded
 * memory, handed to sqlite3_key/sqlite3_rekey (never as SQL text, which SQLite copies into its
 * heap) and wiped. Keying never fails by itself: the first read of sqlite_master tells a wrong
 * key (SQLITE_NOTADB), and it happens before anything could write (no journal mode change, no
 * migration). */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SQLITE_HAS_CODEC 1 /* declares sqlite3_key and sqlite3_rekey (SQLCipher) */
#include <sqlite3.h>

#include "kurer/buf.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"

#define PATH_MAX_LEN 4096
#define KDF_FILE_MAX 256

struct kurer__store {
    sqlite3 *db;
    char home[PATH_MAX_LEN];
    int depth;  /* nesting of kurer__store_begin */
    int failed; /* an inner rollback happened: the outermost commit must not commit */
};

/* ---- small helpers ---- */

static int64_t now_ms(void)
{
    return kurer_time_unix() * 1000;
}

static int sql_err(int rc)
{
    switch (rc) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_NOMEM:
        return KURER_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return KURER_EBUSY;
    case SQLITE_NOTADB:
        return KURER_EPASSPHRASE;
    case SQLITE_CORRUPT:
        return KURER_ECORRUPT;
    case SQLITE_CANTOPEN:
        return KURER_EIO;
    case SQLITE_IOERR:
    case SQLITE_FULL:
        return KURER_EIO;
    default:
        return KURER_ESTORAGE;
    }
}

static int exec(kurer__store *st, const char *sql)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        kurer_log(KURER_LOG_ERROR, "store", "sql_failed",
                  (kurer_log_field[]){KURER_LOG_INT("sqlite", rc),
                                      KURER_LOG_STR("detail", sqlite3_errmsg(st->db))},
                  2);
        return sql_err(rc);
    }
    return 0;
}

static int prepare(kurer__store *st, const char *sql, sqlite3_stmt **s)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);
    if (rc != SQLITE_OK) {
        *s = NULL;
        return sql_err(rc);
    }
    return 0;
}

/* Steps a statement that returns no rows and finalizes it. */
static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc == SQLITE_CONSTRAINT)
        return KURER_EEXIST;
    return rc == SQLITE_DONE ? 0 : sql_err(rc);
}

static int bind_text(sqlite3_stmt *s, int i, const char *p, size_t n)
{
    if (n > 0x7fffffff)
        return SQLITE_TOOBIG;
    return sqlite3_bind_text(s, i, p, (int)n, SQLITE_TRANSIENT);
}

static int bind_blob(sqlite3_stmt *s, int i, const void *p, size_t n)
{
    if (n > 0x7fffffff)
        return SQLITE_TOOBIG;
    return sqlite3_bind_blob(s, i, n > 0 ? p : "", (int)n, SQLITE_TRANSIENT);
}

/* A copy of column i as a heap buffer (at most KURER__RECORD_MAX bytes). */
static int column_copy(sqlite3_stmt *s, int i, uint8_t **data, size_t *len)
{
    const void *p = sqlite3_column_blob(s, i);
    int n = sqlite3_column_bytes(s, i);
    if (n < 0 || (size_t)n > KURER__RECORD_MAX)
        return KURER_ECORRUPT;
    uint8_t *d = malloc((size_t)n + 1);
    if (d == NULL)
        return KURER_ENOMEM;
    if (n > 0)
        memcpy(d, p, (size_t)n);
    *data = d;
    *len = (size_t)n;
    return 0;
}

static int column_fixed(sqlite3_stmt *s, int i, uint8_t *out, size_t n)
{
    if (sqlite3_column_bytes(s, i) != (int)n)
        return KURER_ECORRUPT;
    const void *p = sqlite3_column_blob(s, i);
    if (p == NULL && n > 0)
        return KURER_ECORRUPT;
    memcpy(out, p, n);
    return 0;
}

static int column_str(sqlite3_stmt *s, int i, char *out, size_t cap)
{
    const unsigned char *p = sqlite3_column_text(s, i);
    int n = sqlite3_column_bytes(s, i);
    if (p == NULL || n < 0 || (size_t)n >= cap)
        return KURER_ECORRUPT;
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    return 0;
}

/* ---- open, key, pragmas ---- */

static int apply_key(sqlite3 *db, const uint8_t key[KURER__STORE_KEY_LEN], int rekey)
{
    /* x'<64 hex>': SQLCipher's raw-key form. Through sqlite3_key/sqlite3_rekey, not a PRAGMA
     * statement: SQLite's parser and prepared statement would keep copies of the statement
     * text (the key) in its heap and free them unwiped; SQLCipher wipes its own copy. */
    const size_t len = 2 * KURER__STORE_KEY_LEN + 3;
    char *raw = kurer_secure_alloc(len + 1);
    if (raw == NULL)
        return KURER_ENOMEM;
    raw[0] = 'x';
    raw[1] = '\'';
    kurer_hex_encode(raw + 2, key, KURER__STORE_KEY_LEN);
    raw[len - 1] = '\'';
    raw[len] = '\0';
    int r = rekey ? sqlite3_rekey(db, raw, (int)len) : sqlite3_key(db, raw, (int)len);
    kurer_secure_free(raw); /* wipes */
    return r == SQLITE_OK ? 0 : KURER_ESTORAGE;
}

/* SQLCipher, not plain SQLite: PRAGMA cipher_version must name a version. */
static int check_cipher(sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    int ok = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA cipher_version;", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(s, 0);
        ok = v != NULL && v[0] != '\0';
    }
    sqlite3_finalize(s);
    return ok ? 0 : KURER_ELINKAGE;
}

static int verify_key(sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master;", -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_NOTADB ? KURER_EPASSPHRASE : sql_err(rc);
}

static int pragma_expect(kurer__store *st, const char *sql, const char *want)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, sql, &s);
    if (rc != 0)
        return rc;
    int r = sqlite3_step(s);
    rc = KURER_ESTORAGE;
    if (r == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(s, 0);
        if (v != NULL && strcmp((const char *)v, want) == 0)
            rc = 0;
    }
    sqlite3_finalize(s);
    return rc;
}

static int configure(kurer__store *st)
{
    int rc = exec(st, "PRAGMA secure_delete = ON;"
                      "PRAGMA foreign_keys = ON;"
                      "PRAGMA synchronous = FULL;");
    if (rc == 0)
        rc = pragma_expect(st, "PRAGMA journal_mode = WAL;", "wal");
    if (rc == 0)
        rc = pragma_expect(st, "PRAGMA foreign_keys;", "1");
    if (rc == 0)
        rc = pragma_expect(st, "PRAGMA secure_delete;", "1");
    if (rc == 0)
        rc = pragma_expect(st, "PRAGMA synchronous;", "2"); /* FULL */
    if (rc == 0)
        sqlite3_busy_timeout(st->db, 5000);
    return rc;
}

static int path_in(char *out, const char *home, const char *name)
{
    return kurer_path_join(out, PATH_MAX_LEN, home, name);
}

/* Opens (or creates) HOME/store.db with key and checks the key. The store is not configured. */
static int store_try(const char *home, const uint8_t key[KURER__STORE_KEY_LEN], int create,
                     kurer__store **out)
{
    *out = NULL;
    char db_path[PATH_MAX_LEN];
    int rc = path_in(db_path, home, KURER__STORE_DB);
    if (rc != 0)
        return rc;
    if (strlen(home) >= PATH_MAX_LEN)
        return KURER_ELIMIT;
    if (!create && kurer_file_exists(db_path) != 0)
        return KURER_ENOENT;
    if (create) {
        /* Make the file ourselves so that it (and the -wal and -shm files, which SQLite gives
         * the same mode) is private from the start. */
        int fd = open(db_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return errno == EEXIST ? KURER_EEXIST : KURER_EIO;
        close(fd);
    }
    kurer__store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return KURER_ENOMEM;
    memcpy(st->home, home, strlen(home) + 1);
    int sr = sqlite3_open_v2(db_path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (sr != SQLITE_OK) {
        rc = sql_err(sr);
        goto out;
    }
    if ((rc = check_cipher(st->db)) != 0 || (rc = apply_key(st->db, key, 0)) != 0 ||
        (rc = verify_key(st->db)) != 0)
        goto out;
    *out = st;
    st = NULL;
out:
    if (st != NULL) {
        sqlite3_close_v2(st->db);
        free(st);
    }
    return rc;
}

static int store_finish_open(kurer__store *st)
{
    int rc = configure(st);
    if (rc == 0)
        rc = kurer__store_migrate(st);
    return rc;
}

void kurer__store_close(kurer__store *st)
{
    if (st == NULL)
        return;
    if (st->depth > 0)
        (void)sqlite3_exec(st->db, "ROLLBACK;", NULL, NULL, NULL);
    sqlite3_close_v2(st->db);
    kurer_memzero(st, sizeof(*st));
    free(st);
}

static int read_kdf(const char *path, kurer_kdf_params *p, uint8_t salt[KURER_SALT_LEN])
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = kurer_file_read(path, KDF_FILE_MAX, &data, &len);
    if (rc != 0)
        return rc;
    rc = kurer_kdf_record_decode(data, len, p, salt);
    free(data);
    return rc;
}

static int write_kdf(const char *path, const kurer_kdf_params *p,
                     const uint8_t salt[KURER_SALT_LEN], int overwrite)
{
    kurer_buf b;
    kurer_buf_init(&b, KDF_FILE_MAX);
    int rc = kurer_kdf_record_encode(&b, p, salt);
    if (rc == 0)
        rc = kurer_file_write(path, b.data, b.len, 0600, overwrite);
    kurer_buf_release(&b);
    return rc;
}

/* The key for a passphrase and the parameters file at path. */
static int derive_from(const char *path, const char *pass, size_t pass_len, uint8_t *key)
{
    kurer_kdf_params p;
    uint8_t salt[KURER_SALT_LEN];
    int rc = read_kdf(path, &p, salt);
    if (rc == 0)
        rc = kurer_kdf_derive(key, pass, pass_len, salt, &p);
    return rc;
}

int kurer__store_create_pass(const char *home, const char *pass, size_t pass_len,
                             const kurer_kdf_params *p, kurer__store **out)
{
    *out = NULL;
    if (home == NULL || pass == NULL)
        return KURER_EINVAL;
    kurer_kdf_params params = p != NULL ? *p : kurer_kdf_default();
    char kdf_path[PATH_MAX_LEN], db_path[PATH_MAX_LEN];
    uint8_t salt[KURER_SALT_LEN];
    int rc = path_in(kdf_path, home, KURER__STORE_KDF);
    if (rc == 0)
        rc = path_in(db_path, home, KURER__STORE_DB);
    if (rc != 0)
        return rc;
    if ((rc = kurer_kdf_params_check(&params)) != 0)
        return rc;
    if (kurer_file_exists(db_path) == 0)
        return KURER_EEXIST;
    uint8_t *key = kurer_secure_alloc(KURER__STORE_KEY_LEN);
    if (key == NULL)
        return KURER_ENOMEM;
    kurer_random(salt, sizeof(salt));
    rc = kurer_kdf_derive(key, pass, pass_len, salt, &params);
    /* A store.kdf without a store.db is left over from a create that did not finish: replace. */
    if (rc == 0)
        rc = write_kdf(kdf_path, &params, salt, 1);
    if (rc == 0)
        rc = kurer__store_create_key(home, key, out);
    kurer_secure_free(key);
    return rc;
}

int kurer__store_create_key(const char *home, const uint8_t key[KURER__STORE_KEY_LEN],
                            kurer__store **out)
{
    *out = NULL;
    if (home == NULL || key == NULL)
        return KURER_EINVAL;
    kurer__store *st = NULL;
    int rc = store_try(home, key, 1, &st);
    if (rc == 0)
        rc = store_finish_open(st);
    if (rc != 0) {
        kurer__store_close(st);
        if (rc != KURER_EEXIST) {
            char db_path[PATH_MAX_LEN];
            if (path_in(db_path, home, KURER__STORE_DB) == 0)
                unlink(db_path);
        }
        return rc;
    }
    *out = st;
    return 0;
}

int kurer__store_open_key(const char *home, const uint8_t key[KURER__STORE_KEY_LEN],
                          kurer__store **out)
{
    *out = NULL;
    if (home == NULL || key == NULL)
        return KURER_EINVAL;
    kurer__store *st = NULL;
    int rc = store_try(home, key, 0, &st);
    if (rc == 0)
        rc = store_finish_open(st);
    if (rc != 0) {
        kurer__store_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

int kurer__store_open_pass(const char *home, const char *pass, size_t pass_len, kurer__store **out)
{
    *out = NULL;
    if (home == NULL || pass == NULL)
        return KURER_EINVAL;
    char kdf_path[PATH_MAX_LEN], new_path[PATH_MAX_LEN];
    int rc = path_in(kdf_path, home, KURER__STORE_KDF);
    if (rc == 0)
        rc = path_in(new_path, home, KURER__STORE_KDF_NEW);
    if (rc != 0)
        return rc;
    uint8_t *key = kurer_secure_alloc(KURER__STORE_KEY_LEN);
    if (key == NULL)
        return KURER_ENOMEM;
    int main_rc = derive_from(kdf_path, pass, pass_len, key);
    rc = main_rc;
    if (rc == 0)
        rc = kurer__store_open_key(home, key, out);
    if (rc == 0) {
        /* A store.kdf.new beside a store that opens with store.kdf is from a rekey that did not
         * reach the database: stale. */
        if (kurer_file_exists(new_path) == 0)
            unlink(new_path);
    } else if ((rc == KURER_EPASSPHRASE || main_rc != 0) && kurer_file_exists(new_path) == 0) {
        /* A rekey that reached the database but not the rename. */
        int rc2 = derive_from(new_path, pass, pass_len, key);
        if (rc2 == 0)
            rc2 = kurer__store_open_key(home, key, out);
        if (rc2 == 0) {
            if (rename(new_path, kdf_path) != 0) {
                kurer__store_close(*out);
                *out = NULL;
                rc2 = KURER_EIO;
            } else {
                kurer_log(KURER_LOG_WARN, "store", "rekey_completed", NULL, 0);
            }
        }
        if (rc2 == 0 || rc2 != KURER_EPASSPHRASE)
            rc = rc2;
    }
    kurer_secure_free(key);
    return rc;
}

int kurer__store_rekey_key(kurer__store *st, const uint8_t key[KURER__STORE_KEY_LEN])
{
    if (st == NULL || key == NULL)
        return KURER_EINVAL;
    if (st->depth > 0)
        return KURER_ESTATE;
    int rc = apply_key(st->db, key, 1);
    if (rc == 0)
        rc = verify_key(st->db);
    return rc;
}

int kurer__store_rekey_pass(kurer__store *st, const char *pass, size_t pass_len,
                            const kurer_kdf_params *p)
{
    if (st == NULL || pass == NULL)
        return KURER_EINVAL;
    if (st->depth > 0)
        return KURER_ESTATE;
    kurer_kdf_params params = p != NULL ? *p : kurer_kdf_default();
    char kdf_path[PATH_MAX_LEN], new_path[PATH_MAX_LEN];
    uint8_t salt[KURER_SALT_LEN];
    int rc = path_in(kdf_path, st->home, KURER__STORE_KDF);
    if (rc == 0)
        rc = path_in(new_path, st->home, KURER__STORE_KDF_NEW);
    if (rc == 0)
        rc = kurer_kdf_params_check(&params);
    if (rc != 0)
        return rc;
    uint8_t *key = kurer_secure_alloc(KURER__STORE_KEY_LEN);
    if (key == NULL)
        return KURER_ENOMEM;
    kurer_random(salt, sizeof(salt));
    rc = kurer_kdf_derive(key, pass, pass_len, salt, &params);
    if (rc == 0)
        rc = write_kdf(new_path, &params, salt, 1);
    if (rc == 0) {
        rc = kurer__store_rekey_key(st, key);
        if (rc != 0)
            unlink(new_path);
    }
    if (rc == 0 && rename(new_path, kdf_path) != 0)
        rc = KURER_EIO; /* the next open finds store.kdf.new and finishes */
    if (rc == 0) {
        /* Make the rename durable. */
        int fd = open(st->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            (void)fsync(fd);
            close(fd);
        }
    }
    kurer_secure_free(key);
    return rc;
}

/* ---- transactions ---- */

int kurer__store_begin(kurer__store *st)
{
    if (st->depth == 0) {
        int rc = exec(st, "BEGIN IMMEDIATE;");
        if (rc != 0)
            return rc;
        st->failed = 0;
    }
    st->depth++;
    return 0;
}

int kurer__store_commit(kurer__store *st)
{
    if (st->depth <= 0)
        return KURER_ESTATE;
    if (--st->depth > 0)
        return 0;
    if (st->failed) {
        (void)exec(st, "ROLLBACK;");
        st->failed = 0;
        return KURER_ESTORAGE;
    }
    int rc = exec(st, "COMMIT;");
    if (rc != 0) {
        (void)exec(st, "ROLLBACK;");
    }
    return rc;
}

void kurer__store_rollback(kurer__store *st)
{
    if (st == NULL || st->depth <= 0)
        return;
    if (--st->depth > 0) {
        st->failed = 1;
        return;
    }
    (void)exec(st, "ROLLBACK;");
    st->failed = 0;
}

int kurer__store_in_transaction(const kurer__store *st)
{
    return st->depth > 0;
}

/* ---- migrations ---- */

int kurer__store_schema_version(kurer__store *st, int *version)
{
    sqlite3_stmt *s = NULL;
    *version = 0;
    int rc = prepare(st,
                     "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                     "name = 'schema_version';",
                     &s);
    if (rc != 0)
        return rc;
    int have = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 1;
    sqlite3_finalize(s);
    if (!have)
        return 0;
    if ((rc = prepare(st, "SELECT version FROM schema_version WHERE id = 1;", &s)) != 0)
        return rc;
    if (sqlite3_step(s) == SQLITE_ROW)
        *version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return 0;
}

int kurer__store_migrate(kurer__store *st)
{
    int rc = kurer__store_begin(st);
    if (rc != 0)
        return rc;
    int v = 0;
    rc = exec(st, "CREATE TABLE IF NOT EXISTS schema_version ("
                  "  id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);"
                  "INSERT OR IGNORE INTO schema_version (id, version) VALUES (1, 0);");
    if (rc == 0)
        rc = kurer__store_schema_version(st, &v);
    if (rc == 0 && v > KURER__STORE_SCHEMA_VERSION) {
        /* Written by a newer libkurer: do not touch it. */
        rc = KURER_EVERSION;
    }
    for (; rc == 0 && v < KURER__STORE_SCHEMA_VERSION; v++) {
        rc = exec(st, kurer__store_migrations[v]);
        if (rc == 0) {
            char sql[80];
            snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d WHERE id = 1;",
                     v + 1);
            rc = exec(st, sql);
        }
    }
    if (rc != 0) {
        kurer__store_rollback(st);
        return rc;
    }
    return kurer__store_commit(st);
}

/* ---- own identity ---- */

int kurer__store_identity_create(kurer__store *st, const kurer__identity *id)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "INSERT INTO identity (id, user, device_id, display_name, registration_id, "
                     "identity_pub, identity_priv, noise_pub, noise_priv, relay, relay_key, "
                     "root_cert, chain, created_at) VALUES (1,?,?,?,?,?,?,?,?,?,?,?,?,?);",
                     &s);
    if (rc != 0)
        return rc;
    int b = bind_text(s, 1, id->user, strlen(id->user));
    b |= sqlite3_bind_int64(s, 2, id->device_id);
    b |= bind_text(s, 3, id->display_name, strlen(id->display_name));
    b |= sqlite3_bind_int64(s, 4, id->registration_id);
    b |= bind_blob(s, 5, id->identity_pub, sizeof(id->identity_pub));
    b |= bind_blob(s, 6, id->identity_priv, 32);
    b |= bind_blob(s, 7, id->noise_pub, sizeof(id->noise_pub));
    b |= bind_blob(s, 8, id->noise_priv, 32);
    b |= bind_text(s, 9, id->relay, strlen(id->relay));
    b |= bind_blob(s, 10, id->relay_key, sizeof(id->relay_key));
    b |= bind_blob(s, 11, id->root, id->root_len);
    if (id->chain != NULL)
        b |= bind_blob(s, 12, id->chain, id->chain_len);
    else
        b |= sqlite3_bind_null(s, 12);
    b |= sqlite3_bind_int64(s, 13, kurer_time_unix());
    if (b != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return step_done(s);
}

void kurer__identity_release(kurer__identity *id)
{
    if (id == NULL)
        return;
    kurer_secure_free(id->identity_priv);
    kurer_secure_free(id->noise_priv);
    free(id->root);
    free(id->chain);
    kurer_memzero(id, sizeof(*id));
}

int kurer__store_identity_load(kurer__store *st, kurer__identity *id)
{
    memset(id, 0, sizeof(*id));
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "SELECT user, device_id, display_name, registration_id, identity_pub, "
                     "identity_priv, noise_pub, noise_priv, relay, relay_key, root_cert, chain "
                     "FROM identity WHERE id = 1;",
                     &s);
    if (rc != 0)
        return rc;
    int r = sqlite3_step(s);
    if (r != SQLITE_ROW) {
        sqlite3_finalize(s);
        return r == SQLITE_DONE ? KURER_ENOTFOUND : sql_err(r);
    }
    id->identity_priv = kurer_secure_alloc(32);
    id->noise_priv = kurer_secure_alloc(32);
    if (id->identity_priv == NULL || id->noise_priv == NULL)
        rc = KURER_ENOMEM;
    if (rc == 0)
        rc = column_str(s, 0, id->user, sizeof(id->user));
    if (rc == 0) {
        int64_t d = sqlite3_column_int64(s, 1), reg = sqlite3_column_int64(s, 3);
        if (d <= 0 || d > KURER_DEVICE_ID_MAX || reg <= 0 || reg > 0x7fffffff)
            rc = KURER_ECORRUPT;
        id->device_id = (uint32_t)d;
        id->registration_id = (uint32_t)reg;
    }
    if (rc == 0)
        rc = column_str(s, 2, id->display_name, sizeof(id->display_name));
    if (rc == 0)
        rc = column_fixed(s, 4, id->identity_pub, sizeof(id->identity_pub));
    if (rc == 0)
        rc = column_fixed(s, 5, id->identity_priv, 32);
    if (rc == 0)
        rc = column_fixed(s, 6, id->noise_pub, sizeof(id->noise_pub));
    if (rc == 0)
        rc = column_fixed(s, 7, id->noise_priv, 32);
    if (rc == 0)
        rc = column_str(s, 8, id->relay, sizeof(id->relay));
    if (rc == 0)
        rc = column_fixed(s, 9, id->relay_key, sizeof(id->relay_key));
    if (rc == 0)
        rc = column_copy(s, 10, &id->root, &id->root_len);
    if (rc == 0 && sqlite3_column_type(s, 11) != SQLITE_NULL)
        rc = column_copy(s, 11, &id->chain, &id->chain_len);
    sqlite3_finalize(s);
    if (rc != 0) {
        kurer__identity_release(id);
        return rc;
    }
    kurer_secure_readonly(id->identity_priv);
    kurer_secure_readonly(id->noise_priv);
    return 0;
}

int kurer__store_identity_set_chain(kurer__store *st, const uint8_t *chain, size_t len)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "UPDATE identity SET chain = ? WHERE id = 1;", &s);
    if (rc != 0)
        return rc;
    if (bind_blob(s, 1, chain, len) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    rc = step_done(s);
    if (rc == 0 && sqlite3_changes(st->db) != 1)
        rc = KURER_ENOTFOUND;
    return rc;
}

int kurer__store_identity_set_relay(kurer__store *st, const char *relay,
                                    const uint8_t key[KURER_X25519_LEN])
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "UPDATE identity SET relay = ?, relay_key = ? WHERE id = 1;", &s);
    if (rc != 0)
        return rc;
    if ((bind_text(s, 1, relay, strlen(relay)) | bind_blob(s, 2, key, KURER_X25519_LEN)) !=
        SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    rc = step_done(s);
    if (rc == 0 && sqlite3_changes(st->db) != 1)
        rc = KURER_ENOTFOUND;
    return rc;
}

/* ---- generic blob helpers ---- */

/* Runs a one-row SELECT whose column 0 is a blob. */
static int get_blob(sqlite3_stmt *s, uint8_t **data, size_t *len)
{
    int r = sqlite3_step(s);
    int rc;
    if (r == SQLITE_ROW)
        rc = column_copy(s, 0, data, len);
    else
        rc = r == SQLITE_DONE ? KURER_ENOTFOUND : sql_err(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_session_get(kurer__store *st, const char *name, size_t name_len, int32_t dev,
                             uint8_t **data, size_t *len)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT record FROM sessions WHERE name = ? AND device_id = ?;", &s);
    if (rc != 0)
        return rc;
    if ((bind_text(s, 1, name, name_len) | sqlite3_bind_int(s, 2, dev)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return get_blob(s, data, len);
}

int kurer__store_session_put(kurer__store *st, const char *name, size_t name_len, int32_t dev,
                             const uint8_t *data, size_t len)
{
    sqlite3_stmt *s = NULL;
    /* No UPSERT in SQLite 3.15: INSERT OR REPLACE (no foreign keys point at sessions). */
    int rc = prepare(st,
                     "INSERT OR REPLACE INTO sessions (name, device_id, record, updated_at) "
                     "VALUES (?, ?, ?, ?);",
                     &s);
    if (rc != 0)
        return rc;
    if ((bind_text(s, 1, name, name_len) | sqlite3_bind_int(s, 2, dev) |
         bind_blob(s, 3, data, len) | sqlite3_bind_int64(s, 4, now_ms())) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return step_done(s);
}

int kurer__store_session_delete(kurer__store *st, const char *name, size_t name_len, int32_t dev)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "DELETE FROM sessions WHERE name = ? AND device_id = ?;", &s);
    if (rc != 0)
        return rc;
    if ((bind_text(s, 1, name, name_len) | sqlite3_bind_int(s, 2, dev)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    rc = step_done(s);
    return rc != 0 ? rc : sqlite3_changes(st->db);
}

int kurer__store_session_delete_all(kurer__store *st, const char *name, size_t name_len)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "DELETE FROM sessions WHERE name = ?;", &s);
    if (rc != 0)
        return rc;
    if (bind_text(s, 1, name, name_len) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    rc = step_done(s);
    return rc != 0 ? rc : sqlite3_changes(st->db);
}

int kurer__store_session_devices(kurer__store *st, const char *name, size_t name_len,
                                 int32_t **devs, size_t *n)
{
    *devs = NULL;
    *n = 0;
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT device_id FROM sessions WHERE name = ? ORDER BY device_id;", &s);
    if (rc != 0)
        return rc;
    if (bind_text(s, 1, name, name_len) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    int32_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            int32_t *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                rc = KURER_ENOMEM;
                break;
            }
            v = nv;
        }
        v[cnt++] = sqlite3_column_int(s, 0);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = sql_err(r);
    sqlite3_finalize(s);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *devs = v;
    *n = cnt;
    return 0;
}

static const char *const PK_GET[] = {"SELECT record FROM prekeys WHERE id = ?;",
                                     "SELECT record FROM signed_prekeys WHERE id = ?;"};
static const char *const PK_PUT[] = {
    "INSERT OR REPLACE INTO prekeys (id, record, created_at) VALUES (?, ?, ?);",
    "INSERT OR REPLACE INTO signed_prekeys (id, record, created_at) VALUES (?, ?, ?);"};
static const char *const PK_HAS[] = {"SELECT 1 FROM prekeys WHERE id = ?;",
                                     "SELECT 1 FROM signed_prekeys WHERE id = ?;"};
static const char *const PK_DEL[] = {"DELETE FROM prekeys WHERE id = ?;",
                                     "DELETE FROM signed_prekeys WHERE id = ?;"};
static const char *const PK_COUNT[] = {"SELECT count(*) FROM prekeys;",
                                       "SELECT count(*) FROM signed_prekeys;"};

int kurer__store_prekey_get(kurer__store *st, kurer__prekey_table t, uint32_t id, uint8_t **data,
                            size_t *len)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, PK_GET[t], &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    return get_blob(s, data, len);
}

int kurer__store_signed_prekeys_prune(kurer__store *st, int64_t older_than_ms)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "DELETE FROM signed_prekeys WHERE created_at < ? AND id <> (SELECT id FROM "
                     "signed_prekeys ORDER BY created_at DESC, id DESC LIMIT 1);",
                     &s);
    if (rc != 0)
        return rc;
    if (sqlite3_bind_int64(s, 1, older_than_ms) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return step_done(s);
}

int kurer__store_prekey_put(kurer__store *st, kurer__prekey_table t, uint32_t id,
                            const uint8_t *data, size_t len)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, PK_PUT[t], &s);
    if (rc != 0)
        return rc;
    if ((sqlite3_bind_int64(s, 1, id) | bind_blob(s, 2, data, len) |
         sqlite3_bind_int64(s, 3, now_ms())) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return step_done(s);
}

int kurer__store_prekey_contains(kurer__store *st, kurer__prekey_table t, uint32_t id)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, PK_HAS[t], &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    int r = sqlite3_step(s);
    sqlite3_finalize(s);
    if (r == SQLITE_ROW)
        return 1;
    return r == SQLITE_DONE ? 0 : sql_err(r);
}

int kurer__store_prekey_delete(kurer__store *st, kurer__prekey_table t, uint32_t id)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, PK_DEL[t], &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, id);
    return step_done(s);
}

int kurer__store_prekey_count(kurer__store *st, kurer__prekey_table t)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, PK_COUNT[t], &s);
    if (rc != 0)
        return rc;
    int r = sqlite3_step(s);
    rc = r == SQLITE_ROW ? sqlite3_column_int(s, 0) : sql_err(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_peer_identity_put(kurer__store *st, const char *name, size_t name_len, int32_t dev,
                                   const uint8_t *key, size_t key_len)
{
    sqlite3_stmt *s = NULL;
    int rc;
    if (key == NULL) {
        rc = prepare(st, "DELETE FROM peer_identities WHERE user = ? AND device_id = ?;", &s);
    } else {
        if (key_len != KURER_IDENTITY_KEY_LEN)
            return KURER_EBADKEY;
        rc = prepare(st,
                     "INSERT OR REPLACE INTO peer_identities (user, device_id, identity_key) "
                     "VALUES (?, ?, ?);",
                     &s);
    }
    if (rc != 0)
        return rc;
    int b = bind_text(s, 1, name, name_len) | sqlite3_bind_int(s, 2, dev);
    if (key != NULL)
        b |= bind_blob(s, 3, key, key_len);
    if (b != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    rc = step_done(s);
    /* The foreign key: an identity only for a device whose certificate we hold. */
    return rc == KURER_EEXIST ? KURER_ENOTFOUND : rc;
}

int kurer__store_peer_identity_get(kurer__store *st, const char *name, size_t name_len, int32_t dev,
                                   uint8_t key[KURER_IDENTITY_KEY_LEN])
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(
        st, "SELECT identity_key FROM peer_identities WHERE user = ? AND device_id = ?;", &s);
    if (rc != 0)
        return rc;
    if ((bind_text(s, 1, name, name_len) | sqlite3_bind_int(s, 2, dev)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        rc = column_fixed(s, 0, key, KURER_IDENTITY_KEY_LEN);
    else
        rc = r == SQLITE_DONE ? KURER_ENOTFOUND : sql_err(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_sender_key_put(kurer__store *st, const char *group, size_t group_len,
                                const char *name, size_t name_len, int32_t dev, const uint8_t *data,
                                size_t len)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "INSERT OR REPLACE INTO sender_keys (group_id, user, device_id, record) "
                     "VALUES (?, ?, ?, ?);",
                     &s);
    if (rc != 0)
        return rc;
    if ((bind_text(s, 1, group, group_len) | bind_text(s, 2, name, name_len) |
         sqlite3_bind_int(s, 3, dev) | bind_blob(s, 4, data, len)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return step_done(s);
}

int kurer__store_sender_key_get(kurer__store *st, const char *group, size_t group_len,
                                const char *name, size_t name_len, int32_t dev, uint8_t **data,
                                size_t *len)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "SELECT record FROM sender_keys WHERE group_id = ? AND user = ? AND "
                     "device_id = ?;",
                     &s);
    if (rc != 0)
        return rc;
    if ((bind_text(s, 1, group, group_len) | bind_text(s, 2, name, name_len) |
         sqlite3_bind_int(s, 3, dev)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return get_blob(s, data, len);
}

/* ---- peers' certificates, revocation lists ---- */

int kurer__store_peer_device_put(kurer__store *st, const char *user, uint32_t device_id,
                                 uint64_t serial, const uint8_t *chain, size_t chain_len)
{
    sqlite3_stmt *s = NULL;
    /* UPDATE, then INSERT if nothing was there: INSERT OR REPLACE would delete the row and
     * cascade to peer_identities. */
    int rc = prepare(st,
                     "UPDATE peer_devices SET serial = ?, chain = ?, updated_at = ? "
                     "WHERE user = ? AND device_id = ?;",
                     &s);
    if (rc != 0)
        return rc;
    if (serial > INT64_MAX ||
        (sqlite3_bind_int64(s, 1, (sqlite3_int64)serial) | bind_blob(s, 2, chain, chain_len) |
         sqlite3_bind_int64(s, 3, now_ms()) | bind_text(s, 4, user, strlen(user)) |
         sqlite3_bind_int64(s, 5, device_id)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    if ((rc = step_done(s)) != 0 || sqlite3_changes(st->db) == 1)
        return rc;
    if ((rc = prepare(st,
                      "INSERT INTO peer_devices (serial, chain, updated_at, user, device_id) "
                      "VALUES (?, ?, ?, ?, ?);",
                      &s)) != 0)
        return rc;
    if ((sqlite3_bind_int64(s, 1, (sqlite3_int64)serial) | bind_blob(s, 2, chain, chain_len) |
         sqlite3_bind_int64(s, 3, now_ms()) | bind_text(s, 4, user, strlen(user)) |
         sqlite3_bind_int64(s, 5, device_id)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return step_done(s);
}

int kurer__store_peer_device_get(kurer__store *st, const char *user, uint32_t device_id,
                                 uint8_t **chain, size_t *chain_len)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT chain FROM peer_devices WHERE user = ? AND device_id = ?;", &s);
    if (rc != 0)
        return rc;
    if ((bind_text(s, 1, user, strlen(user)) | sqlite3_bind_int64(s, 2, device_id)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return get_blob(s, chain, chain_len);
}

int kurer__store_peer_devices(kurer__store *st, const char *user, uint32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *s = NULL;
    int rc =
        prepare(st, "SELECT device_id FROM peer_devices WHERE user = ? ORDER BY device_id;", &s);
    if (rc != 0)
        return rc;
    if (bind_text(s, 1, user, strlen(user)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    uint32_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 4;
            uint32_t *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                rc = KURER_ENOMEM;
                break;
            }
            v = nv;
        }
        v[cnt++] = (uint32_t)sqlite3_column_int64(s, 0);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = sql_err(r);
    sqlite3_finalize(s);
    if (rc != 0) {
        free(v);
        return rc;
    }
    *ids = v;
    *n = cnt;
    return 0;
}

int kurer__store_crl_put(kurer__store *st, const uint8_t key_id[KURER_KEY_ID_LEN], uint64_t version,
                         const uint8_t *data, size_t len)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "INSERT OR REPLACE INTO crls (authority_key_id, version, data) "
                     "VALUES (?, ?, ?);",
                     &s);
    if (rc != 0)
        return rc;
    if (version > INT64_MAX || (bind_blob(s, 1, key_id, KURER_KEY_ID_LEN) |
                                sqlite3_bind_int64(s, 2, (sqlite3_int64)version) |
                                bind_blob(s, 3, data, len)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    return step_done(s);
}

int kurer__store_crl_each(kurer__store *st, kurer__crl_fn fn, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT data FROM crls ORDER BY authority_key_id;", &s);
    if (rc != 0)
        return rc;
    int r;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        rc = fn(ud, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0));
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = sql_err(r);
    sqlite3_finalize(s);
    return rc;
}

/* ---- the connection, for the store's other files (store_counters.c, backup.c) ---- */

sqlite3 *kurer__store_sqlite(kurer__store *st)
{
    return st->db;
}

/* ---- messages ---- */

int kurer__store_message_exists(kurer__store *st, const uint8_t id[KURER_ENVELOPE_ID_LEN])
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT 1 FROM messages WHERE envelope_id = ?;", &s);
    if (rc != 0)
        return rc;
    bind_blob(s, 1, id, KURER_ENVELOPE_ID_LEN);
    int r = sqlite3_step(s);
    sqlite3_finalize(s);
    if (r == SQLITE_ROW)
        return 1;
    return r == SQLITE_DONE ? 0 : sql_err(r);
}

int kurer__store_message_insert(kurer__store *st, kurer__msg *m)
{
    int rc = kurer__store_message_exists(st, m->envelope_id);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return KURER_EDUPLICATE;
    sqlite3_stmt *s = NULL;
    rc = prepare(st,
                 "INSERT INTO messages (envelope_id, direction, peer, peer_device, level, body, "
                 "sent_at, received_at, state, reason, unreported) VALUES (?,?,?,?,?,?,?,?,?,?,?);",
                 &s);
    if (rc != 0)
        return rc;
    if ((bind_blob(s, 1, m->envelope_id, KURER_ENVELOPE_ID_LEN) |
         sqlite3_bind_int(s, 2, m->direction) | bind_text(s, 3, m->peer, strlen(m->peer)) |
         sqlite3_bind_int64(s, 4, m->peer_device) | sqlite3_bind_int(s, 5, m->level) |
         bind_text(s, 6, m->body != NULL ? m->body : "", m->body != NULL ? m->body_len : 0) |
         sqlite3_bind_int64(s, 7, m->sent_at) | sqlite3_bind_int64(s, 8, m->received_at) |
         sqlite3_bind_int(s, 9, m->state) | sqlite3_bind_int(s, 10, m->reason) |
         sqlite3_bind_int(s, 11, m->unreported != 0)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    rc = step_done(s);
    if (rc == KURER_EEXIST)
        return KURER_EINVAL; /* a CHECK failed: bad level, state or direction */
    if (rc == 0)
        m->rowid = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int kurer__store_message_set_state(kurer__store *st, int64_t rowid, int state, int reason)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "UPDATE messages SET state = ?, reason = ? WHERE id = ?;", &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int(s, 1, state);
    sqlite3_bind_int(s, 2, reason);
    sqlite3_bind_int64(s, 3, rowid);
    rc = step_done(s);
    if (rc == 0 && sqlite3_changes(st->db) != 1)
        rc = KURER_ENOTFOUND;
    return rc;
}

#define MSG_COLUMNS                                                                                \
    "SELECT id, envelope_id, direction, peer, peer_device, level, body, sent_at, received_at, "    \
    "state, reason FROM messages "

static int message_rows(sqlite3_stmt *s, kurer__msg_fn fn, void *ud);

int kurer__store_message_each(kurer__store *st, const char *peer, kurer__msg_fn fn, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(
        st, peer != NULL ? MSG_COLUMNS "WHERE peer = ? ORDER BY id;" : MSG_COLUMNS "ORDER BY id;",
        &s);
    if (rc != 0)
        return rc;
    if (peer != NULL)
        bind_text(s, 1, peer, strlen(peer));
    return message_rows(s, fn, ud);
}

int kurer__store_message_unreported_each(kurer__store *st, kurer__msg_fn fn, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, MSG_COLUMNS "WHERE unreported = 1 ORDER BY id;", &s);
    return rc != 0 ? rc : message_rows(s, fn, ud);
}

int kurer__store_message_unreported(kurer__store *st, int64_t rowid)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT unreported FROM messages WHERE id = ?;", &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, rowid);
    int r = sqlite3_step(s);
    rc = r == SQLITE_ROW ? sqlite3_column_int(s, 0) != 0 : r == SQLITE_DONE ? 0 : sql_err(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_message_reported(kurer__store *st, int64_t rowid)
{
    sqlite3_stmt *s = NULL;
    int rc = exec(st, "PRAGMA synchronous = NORMAL;");
    if (rc == 0)
        rc = prepare(st, "UPDATE messages SET unreported = 0 WHERE id = ? AND unreported = 1;", &s);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, rowid);
        rc = step_done(s);
    }
    int frc = exec(st, "PRAGMA synchronous = FULL;");
    return rc != 0 ? rc : frc;
}

typedef struct find_ctx {
    kurer__msg_fn fn;
    void *ud;
    int found;
} find_ctx;

static int find_row(void *ud, const kurer__msg *m)
{
    find_ctx *f = ud;
    f->found = 1;
    return f->fn(f->ud, m);
}

int kurer__store_message_find(kurer__store *st, int64_t rowid, const uint8_t *envelope_id,
                              kurer__msg_fn fn, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     envelope_id != NULL ? MSG_COLUMNS "WHERE envelope_id = ?;"
                                         : MSG_COLUMNS "WHERE id = ?;",
                     &s);
    if (rc != 0)
        return rc;
    if (envelope_id != NULL)
        bind_blob(s, 1, envelope_id, KURER_ENVELOPE_ID_LEN);
    else
        sqlite3_bind_int64(s, 1, rowid);
    find_ctx f = {fn, ud, 0};
    rc = message_rows(s, find_row, &f);
    return rc == 0 && !f.found ? KURER_ENOTFOUND : rc;
}

/* Steps s (a MSG_COLUMNS query), calls fn per row, finalizes s. */
static int message_rows(sqlite3_stmt *s, kurer__msg_fn fn, void *ud)
{
    int rc = 0;
    int r = SQLITE_DONE;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        kurer__msg m;
        memset(&m, 0, sizeof(m));
        m.rowid = sqlite3_column_int64(s, 0);
        rc = column_fixed(s, 1, m.envelope_id, KURER_ENVELOPE_ID_LEN);
        m.direction = sqlite3_column_int(s, 2);
        if (rc == 0)
            rc = column_str(s, 3, m.peer, sizeof(m.peer));
        m.peer_device = (uint32_t)sqlite3_column_int64(s, 4);
        m.level = sqlite3_column_int(s, 5);
        m.body = (const char *)sqlite3_column_text(s, 6);
        m.body_len = (size_t)sqlite3_column_bytes(s, 6);
        if (m.body == NULL)
            m.body = "";
        m.sent_at = sqlite3_column_int64(s, 7);
        m.received_at = sqlite3_column_int64(s, 8);
        m.state = sqlite3_column_int(s, 9);
        m.reason = sqlite3_column_int(s, 10);
        if (rc == 0)
            rc = fn(ud, &m);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = sql_err(r);
    sqlite3_finalize(s);
    return rc;
}

/* ---- outbox ---- */

int kurer__store_outbox_add(kurer__store *st, kurer__outbox_item *it)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "INSERT INTO outbox (message_id, envelope_id, to_user, to_device, type, "
                     "content, attempts, next_attempt_at, created_at) "
                     "VALUES (?,?,?,?,?,?,0,?,?);",
                     &s);
    if (rc != 0)
        return rc;
    if ((sqlite3_bind_int64(s, 1, it->message_rowid) |
         bind_blob(s, 2, it->envelope_id, KURER_ENVELOPE_ID_LEN) |
         bind_text(s, 3, it->to_user, strlen(it->to_user)) |
         sqlite3_bind_int64(s, 4, it->to_device) | sqlite3_bind_int(s, 5, it->type) |
         bind_blob(s, 6, it->content, it->content_len) |
         sqlite3_bind_int64(s, 7, it->next_attempt_at) | sqlite3_bind_int64(s, 8, now_ms())) !=
        SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    rc = step_done(s);
    if (rc == 0)
        it->rowid = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int kurer__store_outbox_each_due(kurer__store *st, int64_t now, kurer__outbox_fn fn, void *ud)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     "SELECT id, message_id, envelope_id, to_user, to_device, type, content, "
                     "attempts, next_attempt_at FROM outbox WHERE next_attempt_at <= ? "
                     "ORDER BY id;",
                     &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, now);
    int r = SQLITE_DONE;
    while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
        kurer__outbox_item it;
        memset(&it, 0, sizeof(it));
        it.rowid = sqlite3_column_int64(s, 0);
        it.message_rowid = sqlite3_column_int64(s, 1);
        rc = column_fixed(s, 2, it.envelope_id, KURER_ENVELOPE_ID_LEN);
        if (rc == 0)
            rc = column_str(s, 3, it.to_user, sizeof(it.to_user));
        it.to_device = (uint32_t)sqlite3_column_int64(s, 4);
        it.type = sqlite3_column_int(s, 5);
        it.content = sqlite3_column_blob(s, 6);
        it.content_len = (size_t)sqlite3_column_bytes(s, 6);
        it.attempts = (uint32_t)sqlite3_column_int64(s, 7);
        it.next_attempt_at = sqlite3_column_int64(s, 8);
        if (rc == 0)
            rc = fn(ud, &it);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = sql_err(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_outbox_retry_later(kurer__store *st, int64_t rowid, int64_t now)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT attempts FROM outbox WHERE id = ?;", &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, rowid);
    int r = sqlite3_step(s);
    int64_t attempts = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    if (attempts < 0)
        return r == SQLITE_DONE ? KURER_ENOTFOUND : sql_err(r);
    int64_t delay = 1000;
    for (int64_t i = 0; i < attempts && delay < 600000; i++)
        delay *= 2;
    if (delay > 600000)
        delay = 600000;
    delay += (int64_t)kurer_random_uniform((uint32_t)(delay / 4 + 1));
    if ((rc = prepare(st,
                      "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? "
                      "WHERE id = ?;",
                      &s)) != 0)
        return rc;
    sqlite3_bind_int64(s, 1, now + delay);
    sqlite3_bind_int64(s, 2, rowid);
    return step_done(s);
}

int kurer__store_outbox_done(kurer__store *st, int64_t rowid)
{
    int rc = kurer__store_begin(st);
    if (rc != 0)
        return rc;
    sqlite3_stmt *s = NULL;
    int64_t msg = -1;
    if ((rc = prepare(st, "SELECT message_id FROM outbox WHERE id = ?;", &s)) == 0) {
        sqlite3_bind_int64(s, 1, rowid);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW)
            msg = sqlite3_column_int64(s, 0);
        else
            rc = r == SQLITE_DONE ? KURER_ENOTFOUND : sql_err(r);
        sqlite3_finalize(s);
    }
    if (rc == 0 && (rc = prepare(st, "DELETE FROM outbox WHERE id = ?;", &s)) == 0) {
        sqlite3_bind_int64(s, 1, rowid);
        rc = step_done(s);
    }
    if (rc == 0 && (rc = prepare(st,
                                 "UPDATE messages SET state = 3 WHERE id = ?1 AND state = 2 AND "
                                 "NOT EXISTS (SELECT 1 FROM outbox WHERE message_id = ?1);",
                                 &s)) == 0) {
        sqlite3_bind_int64(s, 1, msg);
        rc = step_done(s);
    }
    if (rc != 0) {
        kurer__store_rollback(st);
        return rc;
    }
    return kurer__store_commit(st);
}

int kurer__store_outbox_count(kurer__store *st)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT count(*) FROM outbox;", &s);
    if (rc != 0)
        return rc;
    int r = sqlite3_step(s);
    rc = r == SQLITE_ROW ? sqlite3_column_int(s, 0) : sql_err(r);
    sqlite3_finalize(s);
    return rc;
}

int kurer__store_outbox_drop(kurer__store *st, int64_t message_rowid, const char *user,
                             uint32_t device_id)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st,
                     user == NULL ? "DELETE FROM outbox WHERE message_id = ?;"
                                  : "DELETE FROM outbox WHERE message_id = ? AND to_user = ? AND "
                                    "to_device = ?;",
                     &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, message_rowid);
    if (user != NULL) {
        bind_text(s, 2, user, strlen(user));
        sqlite3_bind_int64(s, 3, device_id);
    }
    return step_done(s);
}

int kurer__store_outbox_has(kurer__store *st, int64_t message_rowid, const char *user,
                            uint32_t device_id)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(
        st, "SELECT 1 FROM outbox WHERE message_id = ? AND to_user = ? AND to_device = ?;", &s);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(s, 1, message_rowid);
    bind_text(s, 2, user, strlen(user));
    sqlite3_bind_int64(s, 3, device_id);
    int r = sqlite3_step(s);
    sqlite3_finalize(s);
    if (r == SQLITE_ROW)
        return 1;
    return r == SQLITE_DONE ? 0 : sql_err(r);
}

int kurer__store_peer_device_delete(kurer__store *st, const char *user, uint32_t device_id)
{
    sqlite3_stmt *s = NULL;
    int rc = kurer__store_begin(st);
    if (rc != 0)
        return rc;
    if ((rc = prepare(st, "DELETE FROM peer_devices WHERE user = ? AND device_id = ?;", &s)) == 0) {
        bind_text(s, 1, user, strlen(user));
        sqlite3_bind_int64(s, 2, device_id);
        rc = step_done(s);
    }
    if (rc == 0 && device_id <= INT32_MAX) {
        int n = kurer__store_session_delete(st, user, strlen(user), (int32_t)device_id);
        rc = n < 0 ? n : 0;
    }
    if (rc != 0) {
        kurer__store_rollback(st);
        return rc;
    }
    return kurer__store_commit(st);
}
