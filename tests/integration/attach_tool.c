/* The hostile parties of attach_flow.sh's cases hostile_names and tampered:
 *   attach_tool send HOME TO NAME FILE  a sender whose message names FILE NAME (any bytes a
 *                                       peer could choose: "../x", "/etc/passwd", "a\nb");
 *                                       HOME's passphrase in KURER_PASSPHRASE
 *   attach_tool tamper RELAYDIR MODE    a relay operator who rewrites the newest blob of a stopped
 *                                       relay's own store (relay.db under store.key), at the
 *                                       level of the sealed stream: MODE byte (one byte of
 *                                       the second sealed chunk flipped), drop (the second
 *                                       sealed chunk taken out), swap (the first two
 *                                       exchanged)
 *   attach_tool api-send HOME TO FILE   FILE sent through the asynchronous API alone
 *                                       (kurer_send_files_async), as an application would
 *   attach_tool api-save HOME DIR       every new message received (on_message), and each of
 *                                       its attachments saved in DIR through
 *                                       kurer_message_attachments and
 *                                       kurer_attachment_save_async; prints "saved PATH" or
 *                                       "refused NAME"
 * Exits 0 when done. */
#define SQLITE_HAS_CODEC 1 /* declares sqlite3_key (SQLCipher) */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "engine.h"
#include "job_wait.h"
#include "kurer/blobseal.h"
#include "kurer/crypto.h"
#include "kurer/kurer.h"
#include "kurer/util.h"
#include "net.h"

typedef struct send_job {
    kurer__job job;
    kurer__job_waiter wait;
    const char *to, *path, *name;
    int rc;
} send_job;

static void send_run(kurer *k, kurer__job *j)
{
    send_job *t = (send_job *)j;
    kurer_refusal why;
    int64_t id = 0;
    t->rc =
        kurer__attach_queue_named(k, t->to, 1, "", &t->path, &t->name, 1, j->deadline, &why, &id);
    if (t->rc == 0)
        t->rc = kurer__engine_send_queued(k, id, j->deadline, &why);
}

static void send_done(kurer *k, kurer__job *j)
{
    (void)k;
    (void)kurer__job_waiter_wake(&((send_job *)j)->wait);
}

static int cmd_send(char **argv)
{
    const char *pass = getenv("KURER_PASSPHRASE");
    kurer *k = NULL;
    int rc = kurer_open(argv[0], pass, pass != NULL ? strlen(pass) : 0, NULL, NULL, NULL, &k);
    if (rc != 0) {
        fprintf(stderr, "attach_tool: open: %s\n", kurer_strerror(rc));
        return 1;
    }
    send_job t;
    memset(&t, 0, sizeof(t));
    t.to = argv[1];
    t.name = argv[2];
    t.path = argv[3];
    t.job.run = send_run;
    t.job.done = send_done;
    t.job.deadline = kurer_time_mono_ms() + 60000;
    rc = kurer__job_wait(k, &t.job, &t.wait);
    if (rc == 0)
        rc = t.rc;
    kurer_disconnect(k);
    kurer_close(k);
    if (rc != 0)
        fprintf(stderr, "attach_tool: send: %s\n", kurer_strerror(rc));
    return rc == 0 ? 0 : 1;
}

static int open_store(const char *dir, sqlite3 **db)
{
    char path[4096], raw[2 * 32 + 4];
    uint8_t *key = NULL;
    size_t n = 0;
    if (snprintf(path, sizeof(path), "%s/store.key", dir) >= (int)sizeof(path) ||
        kurer_file_read(path, 64, &key, &n) != 0 || n != 32)
        return 1;
    raw[0] = 'x';
    raw[1] = '\'';
    kurer_hex_encode(raw + 2, key, 32);
    raw[2 + 64] = '\'';
    raw[2 + 65] = '\0';
    kurer_memzero(key, n);
    free(key);
    snprintf(path, sizeof(path), "%s/relay.db", dir);
    int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
             sqlite3_key(*db, raw, (int)strlen(raw)) != SQLITE_OK;
    kurer_memzero(raw, sizeof(raw));
    return rc;
}

/* The newest blob's bytes, in order (its id in id). */
static int read_blob(sqlite3 *db, uint8_t id[16], uint8_t **out, size_t *len)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    *out = NULL;
    *len = 0;
    if (sqlite3_prepare_v2(db, "SELECT id FROM blobs ORDER BY created_at DESC, rowid DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return 1;
    int rc = sqlite3_step(st) != SQLITE_ROW || sqlite3_column_bytes(st, 0) != 16;
    if (!rc)
        memcpy(id, sqlite3_column_blob(st, 0), 16);
    sqlite3_finalize(st);
    if (rc || sqlite3_prepare_v2(db, "SELECT data FROM blob_chunks WHERE id = ? ORDER BY off", -1,
                                 &st, NULL) != SQLITE_OK)
        return 1;
    sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (*len + n > cap) {
            cap = (*len + n) * 2;
            uint8_t *p = realloc(*out, cap);
            if (p == NULL)
                return 1;
            *out = p;
        }
        memcpy(*out + *len, sqlite3_column_blob(st, 0), n);
        *len += n;
    }
    sqlite3_finalize(st);
    return *len == 0;
}

/* The blob's chunks replaced by b (len bytes), its size and received too. */
static int write_blob(sqlite3 *db, const uint8_t id[16], const uint8_t *b, size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc =
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "DELETE FROM blob_chunks WHERE id = ?", -1, &st, NULL) != SQLITE_OK;
    if (!rc) {
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        rc = sqlite3_step(st) != SQLITE_DONE;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!rc && sqlite3_prepare_v2(db, "INSERT INTO blob_chunks(id, off, data) VALUES(?, ?, ?)", -1,
                                  &st, NULL) != SQLITE_OK)
        rc = 1;
    for (size_t off = 0; !rc && off < len; off += KURER_BLOB_CHUNK_MAX) {
        size_t n = len - off < KURER_BLOB_CHUNK_MAX ? len - off : KURER_BLOB_CHUNK_MAX;
        sqlite3_reset(st);
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)off);
        sqlite3_bind_blob(st, 3, b + off, (int)n, SQLITE_STATIC);
        rc = sqlite3_step(st) != SQLITE_DONE;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!rc && sqlite3_prepare_v2(db, "UPDATE blobs SET size = ?, received = ? WHERE id = ?", -1,
                                  &st, NULL) != SQLITE_OK)
        rc = 1;
    if (!rc) {
        sqlite3_bind_int64(st, 1, (sqlite3_int64)len);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)len);
        sqlite3_bind_blob(st, 3, id, 16, SQLITE_STATIC);
        rc = sqlite3_step(st) != SQLITE_DONE;
    }
    sqlite3_finalize(st);
    if (!rc)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK;
    return rc;
}

static int cmd_tamper(char **argv)
{
    sqlite3 *db = NULL;
    uint8_t id[16], *b = NULL;
    size_t len = 0;
    const size_t c0 = KURER_SEAL_HEADER_LEN, sc = KURER_SEAL_SEALED_CHUNK;
    int rc = open_store(argv[0], &db) || read_blob(db, id, &b, &len);
    if (!rc && len < c0 + 2 * sc)
        rc = 1; /* the cases need two whole sealed chunks */
    if (!rc && strcmp(argv[1], "byte") == 0) {
        b[c0 + sc + 1000] ^= 0x01;
    } else if (!rc && strcmp(argv[1], "drop") == 0) {
        memmove(b + c0 + sc, b + c0 + 2 * sc, len - c0 - 2 * sc);
        len -= sc;
    } else if (!rc && strcmp(argv[1], "swap") == 0) {
        uint8_t *tmp = malloc(sc);
        rc = tmp == NULL;
        if (!rc) {
            memcpy(tmp, b + c0, sc);
            memmove(b + c0, b + c0 + sc, sc);
            memcpy(b + c0 + sc, tmp, sc);
        }
        free(tmp);
    } else if (!rc) {
        rc = 1;
    }
    if (!rc)
        rc = write_blob(db, id, b, len);
    free(b);
    sqlite3_close(db);
    if (rc)
        fprintf(stderr, "attach_tool: tamper %s failed\n", argv[1]);
    return rc;
}

/* ---- the asynchronous API ---- */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, err;
    char path[4200];
    uint8_t ids[64][16];
    size_t n_ids;
} waiter;

static waiter g_w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, "", {{0}}, 0};

static void on_done(void *ud, const kurer_result *r)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->err = r->err;
    snprintf(w->path, sizeof(w->path), "%s", r->path != NULL ? r->path : "");
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int wait_done(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    w->done = 0;
    int err = w->err;
    pthread_mutex_unlock(&w->mu);
    return err;
}

static int open_home(const char *home, kurer **k)
{
    const char *pass = getenv("KURER_PASSPHRASE");
    int rc = kurer_open(home, pass, pass != NULL ? strlen(pass) : 0, NULL, NULL, NULL, k);
    if (rc != 0)
        fprintf(stderr, "attach_tool: open: %s\n", kurer_strerror(rc));
    return rc;
}

static int cmd_api_send(char **argv)
{
    kurer *k = NULL;
    if (open_home(argv[0], &k) != 0)
        return 1;
    const char *paths[1] = {argv[2]};
    int rc = kurer_send_files_async(k, argv[1], 1, "via the API", paths, 1, 60000, on_done, &g_w);
    if (rc == 0)
        rc = wait_done(&g_w);
    kurer_disconnect(k);
    kurer_close(k);
    if (rc != 0)
        fprintf(stderr, "attach_tool: api-send: %s\n", kurer_strerror(rc));
    else
        printf("sent\n");
    return rc == 0 ? 0 : 1;
}

static void on_message(void *ud, const kurer_message *m)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    if (!m->outgoing && w->n_ids < sizeof(w->ids) / sizeof(w->ids[0]))
        memcpy(w->ids[w->n_ids++], m->id, 16);
    pthread_mutex_unlock(&w->mu);
}

typedef struct att_idx {
    size_t idx[32];
    char name[32][256];
    size_t n;
} att_idx;

static int note_att(void *ud, const kurer_attachment_info *a)
{
    att_idx *l = ud;
    if (l->n < 32) {
        l->idx[l->n] = a->index;
        snprintf(l->name[l->n++], 256, "%s", a->file_name);
    }
    return 0;
}

static int cmd_api_save(char **argv)
{
    kurer *k = NULL;
    int failed = 0;
    if (open_home(argv[0], &k) != 0)
        return 1;
    kurer_events ev = {.on_message = on_message, .ud = &g_w};
    kurer_set_events(k, &ev);
    int rc = kurer_poll(k, 30000, KURER_POLL_UNTIL_EMPTY);
    for (size_t i = 0; rc == 0 && i < g_w.n_ids; i++) {
        att_idx l;
        l.n = 0;
        if ((rc = kurer_message_attachments(k, g_w.ids[i], note_att, &l)) != 0)
            break;
        for (size_t j = 0; j < l.n; j++) {
            int err =
                kurer_attachment_save_async(k, g_w.ids[i], l.idx[j], argv[1], 60000, on_done, &g_w);
            if (err == 0)
                err = wait_done(&g_w);
            if (err == 0) {
                printf("saved %s\n", g_w.path);
            } else {
                printf("refused %s: %s\n", l.name[j], kurer_err_name(err));
                failed = 1;
            }
        }
    }
    kurer_disconnect(k);
    kurer_close(k);
    if (rc != 0)
        fprintf(stderr, "attach_tool: api-save: %s\n", kurer_strerror(rc));
    return rc != 0 || failed;
}

int main(int argc, char **argv)
{
    if (kurer_crypto_init() != 0)
        return 1;
    if (argc == 6 && strcmp(argv[1], "send") == 0)
        return cmd_send(argv + 2);
    if (argc == 4 && strcmp(argv[1], "tamper") == 0)
        return cmd_tamper(argv + 2);
    if (argc == 5 && strcmp(argv[1], "api-send") == 0)
        return cmd_api_send(argv + 2);
    if (argc == 4 && strcmp(argv[1], "api-save") == 0)
        return cmd_api_save(argv + 2);
    fprintf(stderr, "usage: attach_tool send HOME TO NAME FILE | tamper RELAYDIR byte|drop|swap "
                    "| api-send HOME TO FILE | api-save HOME DIR\n");
    return 2;
}
