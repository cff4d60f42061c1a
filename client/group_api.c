/* kurer.h's groups: the asynchronous requests (a job for a request worker, as api.c's) with
 * their blocking wrappers, and the home calls that list and show groups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_recv.h"
#include "group_send.h"
#include "home.h"
#include "job_wait.h"
#include "kurer/crypto.h"
#include "kurer/util.h"
#include "net.h"
#include "receipt.h"
#include "store_group.h"

typedef enum greq_kind {
    GREQ_CREATE,
    GREQ_CHANGE,
    GREQ_SEND,
    GREQ_TIMER,
} greq_kind;

typedef struct greq {
    kurer__job job; /* first: the job is the request */
    greq_kind kind;
    char group[KURER_GROUP_HEX_MAX + 1];
    kurer_group_op op;
    char name[KURER_GROUP_NAME_LEN_MAX + 1];
    char (*users)[KURER_SUBJECT_MAX + 1];
    size_t n_users;
    int level;
    uint32_t seconds; /* timer */
    char *text;       /* a copy of the plaintext, wiped when the request ends */
    size_t text_len;
    char **paths; /* send: copies of the files' paths */
    size_t n_paths;
    kurer_result res;
    kurer_done_fn done;
    void *ud;
    kurer__job_waiter wait;
} greq;

static void greq_free(greq *r)
{
    if (r->text != NULL) {
        kurer_memzero(r->text, r->text_len);
        free(r->text);
    }
    for (size_t i = 0; i < r->n_paths; i++)
        free(r->paths[i]);
    free(r->paths);
    free(r->users);
    free(r);
}

static int greq_run_locked(kurer *k, greq *r, uint64_t deadline)
{
    uint8_t gid[KURER_GROUP_ID_LEN];
    const char *u[KURER_GROUP_USERS_MAX];
    for (size_t i = 0; i < r->n_users; i++)
        u[i] = r->users[i];
    int rc = 0;
    if (r->kind != GREQ_CREATE && (rc = kurer__store_group_resolve(k->st, r->group, gid)) != 0)
        return rc;
    if ((rc = kurer__net_wait_online(k, deadline, 0)) != 0)
        return rc;
    switch (r->kind) {
    case GREQ_CREATE:
        rc = kurer__group_create(k, r->name, u, r->n_users, deadline, &r->res.why, gid);
        if (rc == 0 || kurer__store_group_change_count(k->st, gid) > 0)
            kurer_hex_encode(r->res.group, gid, KURER_GROUP_ID_LEN);
        return rc;
    case GREQ_CHANGE:
        return kurer__group_change(k, gid, (kurer_group_change_kind)r->op, u, r->n_users, r->name,
                                   deadline, &r->res.why);
    case GREQ_TIMER:
        return kurer__group_set_timer(k, gid, r->seconds, deadline, &r->res.why);
    case GREQ_SEND:
        return kurer__group_send_files(k, gid, r->level, r->text, (const char *const *)r->paths,
                                       r->n_paths, deadline, &r->res.why, &r->res.message_id);
    }
    return KURER_EINVAL;
}

static void greq_run(kurer *k, kurer__job *j)
{
    greq *r = (greq *)j;
    r->res.err = greq_run_locked(k, r, j->deadline);
}

static void greq_done(kurer *k, kurer__job *j)
{
    greq *r = (greq *)j;
    (void)k;
    if (j->rc != 0 && r->res.err == 0)
        r->res.err = j->rc;
    if (kurer__job_waiter_wake(&r->wait))
        return;
    if (r->done != NULL)
        r->done(r->ud, &r->res);
    greq_free(r);
}

static int copy_users(greq *r, const char *const *users, size_t n)
{
    if (n > KURER_GROUP_USERS_MAX)
        return KURER_ELIMIT;
    if (n > 0 && users == NULL)
        return KURER_EINVAL;
    if (n == 0)
        return 0;
    if ((r->users = calloc(n, sizeof(*r->users))) == NULL)
        return KURER_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (users[i] == NULL || kurer_user_check(users[i]) != 0)
            return KURER_EINVAL;
        snprintf(r->users[i], sizeof(r->users[i]), "%s", users[i]);
    }
    r->n_users = n;
    return 0;
}

static int greq_new(kurer *k, greq_kind kind, const char *group, const char *name,
                    const char *const *users, size_t n, int timeout_ms, greq **out)
{
    *out = NULL;
    if (k == NULL || (kind != GREQ_CREATE && group == NULL) ||
        (kind == GREQ_CREATE && name == NULL))
        return KURER_EINVAL;
    if (name != NULL && strlen(name) > KURER_GROUP_NAME_LEN_MAX)
        return KURER_ELIMIT;
    if (group != NULL && strlen(group) > KURER_GROUP_HEX_MAX)
        return KURER_EINVAL;
    greq *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return KURER_ENOMEM;
    r->kind = kind;
    snprintf(r->group, sizeof(r->group), "%s", group != NULL ? group : "");
    snprintf(r->name, sizeof(r->name), "%s", name != NULL ? name : "");
    int rc = copy_users(r, users, n);
    if (rc != 0) {
        greq_free(r);
        return rc;
    }
    r->job.run = greq_run;
    r->job.done = greq_done;
    r->job.deadline = kurer_time_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    *out = r;
    return 0;
}

static int greq_submit(kurer *k, greq *r, kurer_done_fn done, void *ud)
{
    r->done = done;
    r->ud = ud;
    int rc = kurer__net_submit(k, &r->job);
    if (rc != 0)
        greq_free(r);
    return rc;
}

/* Submits and waits (not on the library thread, nor under the home lock: KURER_ESTATE). */
static int greq_wait(kurer *k, greq *r, kurer_result *res)
{
    if (kurer__net_on_library_thread(k) || kurer__hlock_mine(k)) {
        greq_free(r);
        return KURER_ESTATE;
    }
    int rc = kurer__job_wait(k, &r->job, &r->wait);
    if (rc == 0) {
        rc = r->res.err;
        *res = r->res;
    }
    greq_free(r);
    return rc;
}

static int change_args(kurer_group_op op, size_t n, const char *name)
{
    switch (op) {
    case KURER_GROUP_OP_ADD:
    case KURER_GROUP_OP_REMOVE:
    case KURER_GROUP_OP_PROMOTE:
        return n > 0 ? 0 : KURER_EINVAL;
    case KURER_GROUP_OP_LEAVE:
        return n == 0 ? 0 : KURER_EINVAL;
    case KURER_GROUP_OP_RENAME:
        return n == 0 && name != NULL && name[0] != '\0' ? 0 : KURER_EINVAL;
    }
    return KURER_EINVAL;
}

static int send_args(const char *text, int level, const char *const *paths, size_t n)
{
    if (text == NULL || (text[0] == '\0' && n == 0) || level < KURER_LEVEL_UNCLASSIFIED ||
        level > KURER_LEVEL_CONFIDENTIAL || n > KURER_ATTACHMENTS_MAX || (n > 0 && paths == NULL))
        return KURER_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (paths[i] == NULL || paths[i][0] == '\0')
            return KURER_EINVAL;
    return strlen(text) > KURER_TEXT_MAX ? KURER_ELIMIT : 0;
}

static int copy_paths(greq *r, const char *const *paths, size_t n)
{
    if (n == 0)
        return 0;
    if ((r->paths = calloc(n, sizeof(*r->paths))) == NULL)
        return KURER_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((r->paths[i] = strdup(paths[i])) == NULL)
            return KURER_ENOMEM;
        r->n_paths = i + 1;
    }
    return 0;
}

static int send_new(kurer *k, const char *group, int level, const char *text,
                    const char *const *paths, size_t n, int timeout_ms, greq **r)
{
    int rc = send_args(text, level, paths, n);
    if (rc == 0)
        rc = greq_new(k, GREQ_SEND, group, NULL, NULL, 0, timeout_ms, r);
    if (rc != 0)
        return rc;
    if ((rc = copy_paths(*r, paths, n)) != 0) {
        greq_free(*r);
        return rc;
    }
    (*r)->level = level;
    (*r)->text_len = strlen(text);
    if (((*r)->text = malloc((*r)->text_len + 1)) == NULL) {
        greq_free(*r);
        return KURER_ENOMEM;
    }
    memcpy((*r)->text, text, (*r)->text_len + 1);
    return 0;
}

int kurer_group_create_async(kurer *k, const char *name, const char *const *users, size_t n,
                             int timeout_ms, kurer_done_fn done, void *ud)
{
    greq *r = NULL;
    int rc = name != NULL && name[0] != '\0' ? 0 : KURER_EINVAL;
    if (rc == 0)
        rc = greq_new(k, GREQ_CREATE, NULL, name, users, n, timeout_ms, &r);
    return rc != 0 ? rc : greq_submit(k, r, done, ud);
}

int kurer_group_update_async(kurer *k, const char *group, kurer_group_op op,
                             const char *const *users, size_t n, const char *name, int timeout_ms,
                             kurer_done_fn done, void *ud)
{
    greq *r = NULL;
    int rc = change_args(op, n, name);
    if (rc == 0)
        rc = greq_new(k, GREQ_CHANGE, group, name, users, n, timeout_ms, &r);
    if (rc != 0)
        return rc;
    r->op = op;
    return greq_submit(k, r, done, ud);
}

int kurer_group_send_async(kurer *k, const char *group, int level, const char *text, int timeout_ms,
                           kurer_done_fn done, void *ud)
{
    greq *r = NULL;
    int rc = send_new(k, group, level, text, NULL, 0, timeout_ms, &r);
    return rc != 0 ? rc : greq_submit(k, r, done, ud);
}

int kurer_group_send_files_async(kurer *k, const char *group, int level, const char *text,
                                 const char *const *paths, size_t n, int timeout_ms,
                                 kurer_done_fn done, void *ud)
{
    greq *r = NULL;
    int rc = send_new(k, group, level, text, paths, n, timeout_ms, &r);
    return rc != 0 ? rc : greq_submit(k, r, done, ud);
}

static int timer_new(kurer *k, const char *group, uint32_t seconds, int timeout_ms, greq **r)
{
    int rc = seconds <= KURER_TIMER_MAX ? 0 : KURER_EINVAL;
    if (rc == 0)
        rc = greq_new(k, GREQ_TIMER, group, NULL, NULL, 0, timeout_ms, r);
    if (rc == 0)
        (*r)->seconds = seconds;
    return rc;
}

int kurer_group_set_timer_async(kurer *k, const char *group, uint32_t seconds, int timeout_ms,
                                kurer_done_fn done, void *ud)
{
    greq *r = NULL;
    int rc = timer_new(k, group, seconds, timeout_ms, &r);
    return rc != 0 ? rc : greq_submit(k, r, done, ud);
}

int kurer_group_set_timer(kurer *k, const char *group, uint32_t seconds, int timeout_ms,
                          kurer_refusal *why)
{
    greq *r = NULL;
    kurer_result res;
    memset(&res, 0, sizeof(res));
    if (why != NULL)
        memset(why, 0, sizeof(*why));
    int rc = timer_new(k, group, seconds, timeout_ms, &r);
    if (rc != 0)
        return rc;
    rc = greq_wait(k, r, &res);
    if (why != NULL)
        *why = res.why;
    return rc;
}

int kurer_group_create(kurer *k, const char *name, const char *const *users, size_t n,
                       int timeout_ms, char *id, kurer_refusal *why)
{
    greq *r = NULL;
    kurer_result res;
    memset(&res, 0, sizeof(res));
    if (why != NULL)
        memset(why, 0, sizeof(*why));
    int rc = name != NULL && name[0] != '\0' ? 0 : KURER_EINVAL;
    if (rc == 0)
        rc = greq_new(k, GREQ_CREATE, NULL, name, users, n, timeout_ms, &r);
    if (rc != 0)
        return rc;
    rc = greq_wait(k, r, &res);
    if (id != NULL)
        memcpy(id, res.group, sizeof(res.group));
    if (why != NULL)
        *why = res.why;
    return rc;
}

int kurer_group_update(kurer *k, const char *group, kurer_group_op op, const char *const *users,
                       size_t n, const char *name, int timeout_ms, kurer_refusal *why)
{
    greq *r = NULL;
    kurer_result res;
    memset(&res, 0, sizeof(res));
    if (why != NULL)
        memset(why, 0, sizeof(*why));
    int rc = change_args(op, n, name);
    if (rc == 0)
        rc = greq_new(k, GREQ_CHANGE, group, name, users, n, timeout_ms, &r);
    if (rc != 0)
        return rc;
    r->op = op;
    rc = greq_wait(k, r, &res);
    if (why != NULL)
        *why = res.why;
    return rc;
}

int kurer_group_send(kurer *k, const char *group, int level, const char *text, int timeout_ms,
                     kurer_refusal *why, int64_t *message_id)
{
    return kurer_group_send_files(k, group, level, text, NULL, 0, timeout_ms, why, message_id);
}

int kurer_group_send_files(kurer *k, const char *group, int level, const char *text,
                           const char *const *paths, size_t n, int timeout_ms, kurer_refusal *why,
                           int64_t *message_id)
{
    greq *r = NULL;
    kurer_result res;
    memset(&res, 0, sizeof(res));
    if (why != NULL)
        memset(why, 0, sizeof(*why));
    int rc = send_new(k, group, level, text, paths, n, timeout_ms, &r);
    if (rc != 0)
        return rc;
    rc = greq_wait(k, r, &res);
    if (why != NULL)
        *why = res.why;
    if (message_id != NULL)
        *message_id = res.message_id;
    return rc;
}

/* ---- home calls ---- */

static int info_of(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN], kurer_group_fn fn, void *ud)
{
    kurer__group_state s;
    kurer_group_info g;
    int rc = kurer__store_group_get(k->st, gid, &s);
    if (rc != 0)
        return rc;
    memset(&g, 0, sizeof(g));
    kurer_hex_encode(g.id, gid, KURER_GROUP_ID_LEN);
    g.name = s.name;
    g.revision = s.revision;
    g.expire_timer = s.expire_timer;
    kurer_group_member *m = calloc(s.n_members ? s.n_members : 1, sizeof(*m));
    uint32_t **devs = calloc(s.n_members ? s.n_members : 1, sizeof(*devs));
    if (m == NULL || devs == NULL)
        rc = KURER_ENOMEM;
    for (size_t i = 0; rc == 0 && i < s.n_members; i++) {
        uint32_t *held = NULL;
        size_t nh = 0;
        m[i].user = s.members[i].user;
        m[i].admin = s.members[i].admin;
        if ((rc = kurer__store_peer_devices(k->st, s.members[i].user, &held, &nh)) != 0)
            break;
        /* Only devices with a valid certificate now, ours always. */
        size_t kept = 0;
        for (size_t d = 0; d < nh; d++) {
            kurer_verified v;
            int own = strcmp(m[i].user, k->own.user) == 0 && held[d] == k->own.device_id;
            if (own || kurer__session_peer_check(k->sess, m[i].user, held[d], &v) == 0)
                held[kept++] = held[d];
        }
        if (strcmp(m[i].user, k->own.user) == 0) {
            int have = 0;
            for (size_t d = 0; d < kept; d++)
                have |= held[d] == k->own.device_id;
            uint32_t *nv = have ? held : realloc(held, (kept + 1) * sizeof(*nv));
            if (nv == NULL) {
                free(held);
                rc = KURER_ENOMEM;
                break;
            }
            held = nv;
            if (!have)
                held[kept++] = k->own.device_id;
        }
        devs[i] = held;
        m[i].devices = held;
        m[i].n_devices = kept;
        if (strcmp(m[i].user, k->own.user) == 0) {
            g.member = 1;
            g.admin = m[i].admin;
        }
    }
    g.members = m;
    g.n_members = s.n_members;
    if (rc == 0)
        rc = kurer__group_ceiling(k, &s, &g.ceiling, &g.ceiling_by);
    if (rc == 0 &&
        kurer__store_counter_get(k->st, KURER__COUNTER_GROUP_IGNORED, &g.changes_ignored) != 0)
        g.changes_ignored = 0;
    if (rc == 0)
        rc = fn(ud, &g);
    for (size_t i = 0; devs != NULL && i < s.n_members; i++)
        free(devs[i]);
    free(devs);
    free(m);
    kurer__group_state_release(&s);
    return rc;
}

typedef struct list_ctx {
    kurer *k;
    kurer_group_fn fn;
    void *ud;
} list_ctx;

static int list_one(void *ud, const uint8_t gid[KURER_GROUP_ID_LEN])
{
    list_ctx *c = ud;
    return info_of(c->k, gid, c->fn, c->ud);
}

int kurer_group_list(kurer *k, kurer_group_fn fn, void *ud)
{
    if (k == NULL || fn == NULL)
        return KURER_EINVAL;
    list_ctx c = {k, fn, ud};
    kurer__hlock_take(k);
    int rc = kurer__store_group_each(k->st, list_one, &c);
    kurer__hlock_give(k);
    return rc;
}

int kurer_group_get(kurer *k, const char *group, kurer_group_fn fn, void *ud)
{
    uint8_t gid[KURER_GROUP_ID_LEN];
    if (k == NULL || group == NULL || fn == NULL)
        return KURER_EINVAL;
    kurer__hlock_take(k);
    int rc = kurer__store_group_resolve(k->st, group, gid);
    if (rc == 0)
        rc = info_of(k, gid, fn, ud);
    kurer__hlock_give(k);
    return rc;
}
