/* kurer.h's attachments: the listing (a home call under the home lock), and the asynchronous
 * send-with-files and save (a job for a request worker, as api.c's requests) with their
 * blocking wrappers. */
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "engine.h"
#include "home.h"
#include "kurer/crypto.h"
#include "kurer/util.h"
#include "job_wait.h"
#include "net.h"

/* The row of the message with envelope id id. */
static int row_of(void *ud, const kurer__msg *m)
{
    *(int64_t *)ud = m->rowid;
    return 0;
}

static int message_rowid(kurer *k, const uint8_t id[16], int64_t *rowid)
{
    *rowid = 0;
    return kurer__store_message_find(k->st, 0, id, row_of, rowid);
}

int kurer_message_attachments(kurer *k, const uint8_t id[16], kurer_attachment_fn fn, void *ud)
{
    if (k == NULL || id == NULL || fn == NULL)
        return KURER_EINVAL;
    kurer__attach_row *rows = NULL;
    size_t n = 0;
    int64_t rowid;
    kurer__hlock_take(k);
    int rc = message_rowid(k, id, &rowid);
    if (rc == 0)
        rc = kurer__store_attach_load(k->st, rowid, &rows, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        kurer_attachment_info a = {rows[i].idx, rows[i].file_name, rows[i].content_type,
                                   rows[i].a.size, rows[i].saved_path};
        rc = fn(ud, &a);
    }
    kurer__attach_rows_free(rows, n);
    kurer__hlock_give(k);
    return rc;
}

/* ---- requests ---- */

typedef enum areq_kind { AREQ_SEND, AREQ_QUEUE, AREQ_SAVE } areq_kind;

typedef struct areq {
    kurer__job job; /* first: the job is the request */
    areq_kind kind;
    char to[KURER_SUBJECT_MAX + 1];
    int level;
    char *text;
    size_t text_len;
    char **paths; /* SEND, QUEUE */
    size_t n_paths;
    uint8_t id[16]; /* SAVE */
    size_t index;
    char *dir;
    char path[KURER__SAVED_PATH_MAX + 1]; /* SAVE: the file written */
    kurer_result res;
    kurer_done_fn done;
    void *ud;
    kurer__job_waiter wait;
} areq;

static void areq_free(areq *r)
{
    if (r == NULL)
        return;
    if (r->text != NULL) {
        kurer_memzero(r->text, r->text_len);
        free(r->text);
    }
    for (size_t i = 0; i < r->n_paths; i++)
        free(r->paths[i]);
    free(r->paths);
    free(r->dir);
    free(r);
}

static int save_run(kurer *k, areq *r)
{
    kurer__attach_row *rows = NULL;
    size_t n = 0;
    int64_t rowid;
    int rc = message_rowid(k, r->id, &rowid);
    if (rc == 0)
        rc = kurer__store_attach_load(k->st, rowid, &rows, &n);
    if (rc == 0 && r->index >= n)
        rc = KURER_ENOTFOUND;
    if (rc == 0)
        rc = kurer__net_wait_online(k, r->job.deadline, 0);
    if (rc == 0)
        rc = kurer__attach_save(k, &rows[r->index], r->dir, r->job.deadline, r->path,
                                sizeof(r->path));
    if (rc == 0)
        r->res.path = r->path;
    kurer__attach_rows_free(rows, n);
    return rc;
}

static void areq_run(kurer *k, kurer__job *j)
{
    areq *r = (areq *)j;
    kurer_result *o = &r->res;
    if (r->kind == AREQ_SAVE) {
        o->err = save_run(k, r);
        return;
    }
    o->err = kurer__attach_queue(k, r->to, r->level, r->text, (const char *const *)r->paths,
                                 r->n_paths, j->deadline, &o->why, &o->message_id);
    if (o->err == 0 && r->kind == AREQ_SEND)
        o->err = kurer__engine_send_queued(k, o->message_id, j->deadline, &o->why);
}

static void areq_done(kurer *k, kurer__job *j)
{
    areq *r = (areq *)j;
    (void)k;
    if (j->rc != 0 && r->res.err == 0)
        r->res.err = j->rc; /* never run (the handle closed) */
    if (kurer__job_waiter_wake(&r->wait))
        return; /* the waiting caller frees it */
    if (r->done != NULL)
        r->done(r->ud, &r->res);
    areq_free(r);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static int areq_new(kurer *k, areq_kind kind, int timeout_ms, areq **out)
{
    *out = NULL;
    if (k == NULL)
        return KURER_EINVAL;
    areq *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return KURER_ENOMEM;
    r->kind = kind;
    r->job.run = areq_run;
    r->job.done = areq_done;
    r->job.deadline = kurer_time_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    *out = r;
    return 0;
}

/* What a send with files refuses at once. */
static int files_req(kurer *k, areq_kind kind, const char *to, int level, const char *text,
                     const char *const *paths, size_t n, int timeout_ms, areq **out)
{
    if (k == NULL || to == NULL || text == NULL || paths == NULL || n == 0)
        return KURER_EINVAL;
    if (n > KURER_ATTACHMENTS_MAX || strlen(text) > KURER_TEXT_MAX)
        return KURER_ELIMIT;
    if (kurer_user_check(to) != 0)
        return KURER_ESUBJECT;
    if (strcmp(to, k->own.user) == 0)
        return KURER_EINVAL; /* our own other devices get sync copies */
    areq *r;
    int rc = areq_new(k, kind, timeout_ms, &r);
    if (rc != 0)
        return rc;
    snprintf(r->to, sizeof(r->to), "%s", to);
    r->level = level;
    r->text_len = strlen(text) + 1;
    r->text = dup_str(text);
    r->paths = calloc(n, sizeof(*r->paths));
    rc = r->text == NULL || r->paths == NULL ? KURER_ENOMEM : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (paths[i] == NULL || paths[i][0] == '\0') {
            rc = KURER_EINVAL;
            break;
        }
        if ((r->paths[i] = dup_str(paths[i])) == NULL)
            rc = KURER_ENOMEM;
        r->n_paths = i + 1;
    }
    if (rc != 0) {
        areq_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

static int submit(kurer *k, areq *r, kurer_done_fn done, void *ud)
{
    r->done = done;
    r->ud = ud;
    int rc = kurer__net_submit(k, &r->job);
    if (rc != 0)
        areq_free(r);
    return rc;
}

/* Submits and waits for the completion; not on the library thread nor under the home lock
 * (KURER_ESTATE). r stays the caller's. */
static int blocking(kurer *k, areq *r, kurer_result *res)
{
    if (kurer__net_on_library_thread(k) || kurer__hlock_mine(k))
        return KURER_ESTATE;
    int rc = kurer__job_wait(k, &r->job, &r->wait);
    if (rc == 0) {
        *res = r->res;
        rc = r->res.err;
    }
    return rc;
}

int kurer_send_files_async(kurer *k, const char *to, int level, const char *text,
                           const char *const *paths, size_t n_paths, int timeout_ms,
                           kurer_done_fn done, void *ud)
{
    areq *r;
    int rc = files_req(k, AREQ_SEND, to, level, text, paths, n_paths, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

int kurer_queue_files_async(kurer *k, const char *to, int level, const char *text,
                            const char *const *paths, size_t n_paths, int timeout_ms,
                            kurer_done_fn done, void *ud)
{
    areq *r;
    int rc = files_req(k, AREQ_QUEUE, to, level, text, paths, n_paths, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

static int files_blocking(kurer *k, areq_kind kind, const char *to, int level, const char *text,
                          const char *const *paths, size_t n, int timeout_ms, kurer_refusal *why,
                          int64_t *message_id)
{
    areq *r;
    kurer_result res;
    memset(&res, 0, sizeof(res));
    if (why != NULL)
        memset(why, 0, sizeof(*why));
    int rc = files_req(k, kind, to, level, text, paths, n, timeout_ms, &r);
    if (rc != 0)
        return rc;
    rc = blocking(k, r, &res);
    if (why != NULL)
        *why = res.why;
    if (message_id != NULL)
        *message_id = res.message_id;
    areq_free(r);
    return rc;
}

int kurer_send_files(kurer *k, const char *to, int level, const char *text,
                     const char *const *paths, size_t n_paths, int timeout_ms, kurer_refusal *why)
{
    return files_blocking(k, AREQ_SEND, to, level, text, paths, n_paths, timeout_ms, why, NULL);
}

int kurer_queue_files(kurer *k, const char *to, int level, const char *text,
                      const char *const *paths, size_t n_paths, int timeout_ms, kurer_refusal *why,
                      int64_t *message_id)
{
    return files_blocking(k, AREQ_QUEUE, to, level, text, paths, n_paths, timeout_ms, why,
                          message_id);
}

static int save_req(kurer *k, const uint8_t id[16], size_t index, const char *dir, int timeout_ms,
                    areq **out)
{
    if (k == NULL || id == NULL || dir == NULL || dir[0] == '\0')
        return KURER_EINVAL;
    if (strlen(dir) > KURER__SAVED_PATH_MAX - KURER_FILE_NAME_MAX - 16)
        return KURER_ELIMIT;
    areq *r;
    int rc = areq_new(k, AREQ_SAVE, timeout_ms, &r);
    if (rc != 0)
        return rc;
    memcpy(r->id, id, 16);
    r->index = index;
    if ((r->dir = dup_str(dir)) == NULL) {
        areq_free(r);
        return KURER_ENOMEM;
    }
    *out = r;
    return 0;
}

int kurer_attachment_save_async(kurer *k, const uint8_t id[16], size_t index, const char *dir,
                                int timeout_ms, kurer_done_fn done, void *ud)
{
    areq *r;
    int rc = save_req(k, id, index, dir, timeout_ms, &r);
    return rc != 0 ? rc : submit(k, r, done, ud);
}

int kurer_attachment_save(kurer *k, const uint8_t id[16], size_t index, const char *dir,
                          int timeout_ms, char *path, size_t cap)
{
    areq *r;
    kurer_result res;
    memset(&res, 0, sizeof(res));
    int rc = save_req(k, id, index, dir, timeout_ms, &r);
    if (rc != 0)
        return rc;
    rc = blocking(k, r, &res);
    if (rc == 0 && path != NULL && cap > 0)
        snprintf(path, cap, "%s", r->path);
    areq_free(r);
    return rc;
}
