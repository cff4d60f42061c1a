/* The group store (store_group.h, schema v6). Outside store.c, which may not grow
 * (tests/size_exceptions.txt). */
#include "store_group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

static int failed(int r)
{
    return r == SQLITE_BUSY || r == SQLITE_LOCKED  ? KURER_EBUSY
           : r == SQLITE_FULL || r == SQLITE_IOERR ? KURER_EIO
           : r == SQLITE_CONSTRAINT                ? KURER_EDUPLICATE
                                                   : KURER_ESTORAGE;
}

/* One bound parameter: a blob, a text or an integer. */
typedef struct arg {
    char t;
    const void *p;
    size_t n;
    int64_t i;
} arg;
#define B(p_, n_) ((arg){'b', (p_), (n_), 0})
#define T(s_)     ((arg){'t', (s_), 0, 0})
#define I(v_)     ((arg){'i', NULL, 0, (int64_t)(v_)})

typedef int (*row_fn)(void *ud, sqlite3_stmt *s);

/* Runs sql with a[0..na) bound, calling row for each result row (a non-zero return stops and
 * is returned). */
static int run(kurer__store *st, const char *sql, const arg *a, size_t na, row_fn row, void *ud)
{
    sqlite3_stmt *s = NULL;
    int r = sqlite3_prepare_v2(kurer__store_sqlite(st), sql, -1, &s, NULL);
    if (r != SQLITE_OK)
        return failed(r);
    int b = SQLITE_OK;
    for (size_t i = 0; i < na; i++) {
        int col = (int)i + 1;
        if (a[i].t == 'b')
            b |= sqlite3_bind_blob(s, col, a[i].n > 0 ? a[i].p : "", (int)a[i].n, SQLITE_TRANSIENT);
        else if (a[i].t == 't')
            b |= sqlite3_bind_text(s, col, a[i].p, -1, SQLITE_TRANSIENT);
        else
            b |= sqlite3_bind_int64(s, col, a[i].i);
    }
    int rc = b == SQLITE_OK ? 0 : KURER_ESTORAGE;
    while (rc == 0) {
        r = sqlite3_step(s);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = failed(r);
            break;
        }
        rc = row != NULL ? row(ud, s) : 0;
    }
    sqlite3_finalize(s);
    return rc;
}
#define RUN(st, sql, row, ud, ...)                                                                 \
    run((st), (sql), (const arg[]){__VA_ARGS__}, sizeof((const arg[]){__VA_ARGS__}) / sizeof(arg), \
        (row), (ud))

static int row_int(void *ud, sqlite3_stmt *s)
{
    *(int64_t *)ud = sqlite3_column_int64(s, 0);
    return 0;
}

static int blob_fixed(sqlite3_stmt *s, int col, uint8_t *out, size_t n)
{
    if (sqlite3_column_type(s, col) != SQLITE_BLOB || (size_t)sqlite3_column_bytes(s, col) != n)
        return KURER_ECORRUPT;
    memcpy(out, sqlite3_column_blob(s, col), n);
    return 0;
}

/* ---- changes ---- */

int kurer__store_group_change_count(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN])
{
    int64_t n = 0;
    int rc = RUN(st, "SELECT count(*) FROM group_changes WHERE group_id = ?;", row_int, &n,
                 B(gid, KURER_GROUP_ID_LEN));
    return rc != 0 ? rc : (int)n;
}

int kurer__store_group_change_add(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                  const uint8_t hash[KURER__GROUP_HASH_LEN],
                                  const kurer_group_control *gc, int64_t now)
{
    int n = kurer__store_group_change_count(st, gid);
    if (n < 0)
        return n;
    if (n >= KURER__GROUP_CHANGES_MAX)
        return KURER_ELIMIT;
    return RUN(st,
               "INSERT INTO group_changes (group_id, hash, change, signature, signer_chain, "
               "received_at) VALUES (?, ?, ?, ?, ?, ?);",
               NULL, NULL, B(gid, KURER_GROUP_ID_LEN), B(hash, KURER__GROUP_HASH_LEN),
               B(gc->change, gc->change_len), B(gc->signature, KURER_GROUP_SIG_LEN),
               B(gc->signer_chain, gc->signer_chain_len), I(now));
}

typedef struct each_ctx {
    kurer__group_row_fn fn;
    void *ud;
} each_ctx;

static int change_row(void *ud, sqlite3_stmt *s)
{
    each_ctx *c = ud;
    kurer__group_row r;
    memset(&r, 0, sizeof(r));
    r.rowid = sqlite3_column_int64(s, 0);
    r.change = sqlite3_column_blob(s, 1);
    r.change_len = (size_t)sqlite3_column_bytes(s, 1);
    r.signature = sqlite3_column_blob(s, 2);
    if ((size_t)sqlite3_column_bytes(s, 2) != KURER_GROUP_SIG_LEN || r.change == NULL)
        return KURER_ECORRUPT;
    r.chain = sqlite3_column_blob(s, 3);
    r.chain_len = (size_t)sqlite3_column_bytes(s, 3);
    r.applied = sqlite3_column_int(s, 4);
    r.reason = sqlite3_column_int(s, 5);
    return c->fn(c->ud, &r);
}

int kurer__store_group_changes_each(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                    kurer__group_row_fn fn, void *ud)
{
    each_ctx c = {fn, ud};
    return RUN(st,
               "SELECT id, change, signature, signer_chain, applied, reason FROM group_changes "
               "WHERE group_id = ? ORDER BY id;",
               change_row, &c, B(gid, KURER_GROUP_ID_LEN));
}

int kurer__store_fatal(int rc)
{
    return rc == KURER_ENOMEM || rc == KURER_ESTORAGE || rc == KURER_EIO || rc == KURER_EBUSY ||
           rc == KURER_ECORRUPT;
}

typedef struct result_ctx {
    int *applied, *reason;
} result_ctx;

static int result_row(void *ud, sqlite3_stmt *s)
{
    result_ctx *c = ud;
    *c->applied = sqlite3_column_int(s, 0);
    *c->reason = sqlite3_column_int(s, 1);
    return 1;
}

int kurer__store_group_change_result(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                     const uint8_t hash[KURER__GROUP_HASH_LEN], int *applied,
                                     int *reason)
{
    result_ctx c = {applied, reason};
    int rc = RUN(st, "SELECT applied, reason FROM group_changes WHERE group_id = ? AND hash = ?;",
                 result_row, &c, B(gid, KURER_GROUP_ID_LEN), B(hash, KURER__GROUP_HASH_LEN));
    return rc == 1 ? 0 : rc == 0 ? KURER_ENOTFOUND : rc;
}

int kurer__store_group_change_mark(kurer__store *st, int64_t rowid, int applied, int reason)
{
    return RUN(st, "UPDATE group_changes SET applied = ?, reason = ? WHERE id = ?;", NULL, NULL,
               I(applied), I(reason), I(rowid));
}

/* ---- folded state ---- */

int kurer__store_group_put(kurer__store *st, const kurer__group_state *s, int64_t now)
{
    int rc =
        RUN(st, "DELETE FROM groups WHERE group_id = ?;", NULL, NULL, B(s->id, KURER_GROUP_ID_LEN));
    if (rc != 0 || !s->exists)
        return rc;
    rc = RUN(st,
             "INSERT INTO groups (group_id, name, revision, updated_at, expire_timer) "
             "VALUES (?, ?, ?, ?, ?);",
             NULL, NULL, B(s->id, KURER_GROUP_ID_LEN), T(s->name), I(s->revision), I(now),
             I(s->expire_timer));
    for (size_t i = 0; rc == 0 && i < s->n_members; i++)
        rc = RUN(st, "INSERT INTO group_members (group_id, user, admin) VALUES (?, ?, ?);", NULL,
                 NULL, B(s->id, KURER_GROUP_ID_LEN), T(s->members[i].user), I(s->members[i].admin));
    return rc;
}

static int group_row(void *ud, sqlite3_stmt *s)
{
    kurer__group_state *g = ud;
    const unsigned char *name = sqlite3_column_text(s, 0);
    if (name == NULL || strlen((const char *)name) > KURER_GROUP_NAME_MAX)
        return KURER_ECORRUPT;
    snprintf(g->name, sizeof(g->name), "%s", (const char *)name);
    g->revision = (uint32_t)sqlite3_column_int64(s, 1);
    int64_t t = sqlite3_column_int64(s, 2);
    if (t < 0 || t > KURER__GROUP_TIMER_MAX)
        return KURER_ECORRUPT;
    g->expire_timer = (uint32_t)t;
    g->exists = 1;
    return 0;
}

static int member_row(void *ud, sqlite3_stmt *s)
{
    kurer__group_state *g = ud;
    const unsigned char *user = sqlite3_column_text(s, 0);
    if (user == NULL || strlen((const char *)user) > KURER_SUBJECT_MAX ||
        g->n_members >= KURER__GROUP_MEMBERS_MAX)
        return KURER_ECORRUPT;
    kurer__group_member *nv = realloc(g->members, (g->n_members + 1) * sizeof(*nv));
    if (nv == NULL)
        return KURER_ENOMEM;
    g->members = nv;
    kurer__group_member *m = &g->members[g->n_members++];
    memset(m, 0, sizeof(*m));
    snprintf(m->user, sizeof(m->user), "%s", (const char *)user);
    m->admin = sqlite3_column_int(s, 1) != 0;
    m->present = m->was_member = 1;
    m->was_admin = m->admin;
    return 0;
}

int kurer__store_group_get(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                           kurer__group_state *s)
{
    memset(s, 0, sizeof(*s));
    memcpy(s->id, gid, KURER_GROUP_ID_LEN);
    int rc = RUN(st, "SELECT name, revision, expire_timer FROM groups WHERE group_id = ?;",
                 group_row, s, B(gid, KURER_GROUP_ID_LEN));
    if (rc == 0 && !s->exists)
        rc = KURER_EUNKNOWNGROUP;
    if (rc == 0)
        rc = RUN(st, "SELECT user, admin FROM group_members WHERE group_id = ? ORDER BY user;",
                 member_row, s, B(gid, KURER_GROUP_ID_LEN));
    if (rc != 0)
        kurer__group_state_release(s);
    return rc;
}

typedef struct id_ctx {
    kurer__group_id_fn fn;
    void *ud;
    uint8_t found[KURER_GROUP_ID_LEN];
    int n;
} id_ctx;

static int id_row(void *ud, sqlite3_stmt *s)
{
    id_ctx *c = ud;
    uint8_t gid[KURER_GROUP_ID_LEN];
    int rc = blob_fixed(s, 0, gid, sizeof(gid));
    if (rc != 0)
        return rc;
    if (c->fn != NULL)
        return c->fn(c->ud, gid);
    memcpy(c->found, gid, sizeof(gid));
    c->n++;
    return 0;
}

int kurer__store_group_each(kurer__store *st, kurer__group_id_fn fn, void *ud)
{
    id_ctx c = {fn, ud, {0}, 0};
    return RUN(st,
               "SELECT group_id FROM groups WHERE length(group_id) = ? ORDER BY name, group_id;",
               id_row, &c, I(KURER_GROUP_ID_LEN));
}

int kurer__store_group_resolve(kurer__store *st, const char *prefix,
                               uint8_t gid[KURER_GROUP_ID_LEN])
{
    size_t n = prefix != NULL ? strlen(prefix) : 0;
    if (n < 4 || n > KURER__GROUP_HEX_LEN || strspn(prefix, "0123456789abcdef") != n)
        return KURER_EINVAL;
    id_ctx c = {NULL, NULL, {0}, 0};
    int rc = RUN(st, "SELECT group_id FROM groups WHERE substr(hex(group_id), 1, ?) = upper(?);",
                 id_row, &c, I(n), T(prefix));
    if (rc != 0)
        return rc;
    if (c.n == 0)
        return KURER_EUNKNOWNGROUP;
    if (c.n > 1)
        return KURER_EINVAL;
    memcpy(gid, c.found, KURER_GROUP_ID_LEN);
    return 0;
}

/* ---- our own sender keys, and who has had them ---- */

static int own_key_row(void *ud, sqlite3_stmt *s)
{
    kurer__group_own_key *k = ud;
    k->key_id = (uint32_t)sqlite3_column_int64(s, 0);
    k->created_at = sqlite3_column_int64(s, 1);
    k->messages = (uint64_t)sqlite3_column_int64(s, 2);
    return 1; /* found */
}

int kurer__store_group_own_key_get(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                   kurer__group_own_key *k)
{
    memset(k, 0, sizeof(*k));
    int rc = RUN(st, "SELECT key_id, created_at, messages FROM group_own_keys WHERE group_id = ?;",
                 own_key_row, k, B(gid, KURER_GROUP_ID_LEN));
    return rc == 1 ? 0 : rc == 0 ? KURER_ENOTFOUND : rc;
}

int kurer__store_group_own_key_put(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                   const kurer__group_own_key *k)
{
    return RUN(st,
               "INSERT OR REPLACE INTO group_own_keys (group_id, key_id, created_at, messages) "
               "VALUES (?, ?, ?, ?);",
               NULL, NULL, B(gid, KURER_GROUP_ID_LEN), I(k->key_id), I(k->created_at),
               I(k->messages));
}

int kurer__store_group_own_key_drop(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                    const char *name, size_t name_len, const char *user,
                                    uint32_t device_id)
{
    char n[KURER__GROUP_HEX_LEN + 1];
    if (name_len != KURER__GROUP_HEX_LEN)
        return KURER_EINVAL;
    memcpy(n, name, name_len);
    n[name_len] = '\0';
    int rc = RUN(st, "DELETE FROM group_own_keys WHERE group_id = ?;", NULL, NULL,
                 B(gid, KURER_GROUP_ID_LEN));
    if (rc == 0)
        rc = RUN(st, "DELETE FROM group_key_shared WHERE group_id = ?;", NULL, NULL,
                 B(gid, KURER_GROUP_ID_LEN));
    if (rc == 0)
        rc = RUN(st, "DELETE FROM sender_keys WHERE group_id = ? AND user = ? AND device_id = ?;",
                 NULL, NULL, T(n), T(user), I(device_id));
    return rc;
}

int kurer__store_group_shared_has(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                  const char *user, uint32_t device_id, uint32_t key_id)
{
    int64_t n = 0;
    int rc = RUN(st,
                 "SELECT count(*) FROM group_key_shared WHERE group_id = ? AND user = ? AND "
                 "device_id = ? AND key_id = ?;",
                 row_int, &n, B(gid, KURER_GROUP_ID_LEN), T(user), I(device_id), I(key_id));
    return rc != 0 ? rc : n > 0;
}

int kurer__store_group_shared_add(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                  const char *user, uint32_t device_id, uint32_t key_id)
{
    return RUN(st,
               "INSERT OR REPLACE INTO group_key_shared (group_id, user, device_id, key_id) "
               "VALUES (?, ?, ?, ?);",
               NULL, NULL, B(gid, KURER_GROUP_ID_LEN), T(user), I(device_id), I(key_id));
}

typedef struct dev_ctx {
    kurer__group_dev_fn fn;
    void *ud;
} dev_ctx;

static int dev_row(void *ud, sqlite3_stmt *s)
{
    dev_ctx *c = ud;
    const unsigned char *user = sqlite3_column_text(s, 0);
    if (user == NULL)
        return KURER_ECORRUPT;
    return c->fn(c->ud, (const char *)user, (uint32_t)sqlite3_column_int64(s, 1));
}

int kurer__store_group_shared_each(kurer__store *st, const uint8_t gid[KURER_GROUP_ID_LEN],
                                   kurer__group_dev_fn fn, void *ud)
{
    dev_ctx c = {fn, ud};
    return RUN(st, "SELECT user, device_id FROM group_key_shared WHERE group_id = ?;", dev_row, &c,
               B(gid, KURER_GROUP_ID_LEN));
}

/* ---- messages of a group ---- */

int kurer__store_group_message_put(kurer__store *st, int64_t rowid,
                                   const uint8_t gid[KURER_GROUP_ID_LEN], int kind)
{
    return RUN(st, "INSERT INTO group_messages (message_id, group_id, kind) VALUES (?, ?, ?);",
               NULL, NULL, I(rowid), B(gid, KURER_GROUP_ID_LEN), I(kind));
}

typedef struct gm_ctx {
    uint8_t *gid;
    int *kind;
} gm_ctx;

static int gm_row(void *ud, sqlite3_stmt *s)
{
    gm_ctx *c = ud;
    int rc = blob_fixed(s, 0, c->gid, KURER_GROUP_ID_LEN);
    *c->kind = sqlite3_column_int(s, 1);
    return rc != 0 ? rc : 1;
}

int kurer__store_group_message_get(kurer__store *st, int64_t rowid, uint8_t gid[KURER_GROUP_ID_LEN],
                                   int *kind)
{
    gm_ctx c = {gid, kind};
    int rc = RUN(st, "SELECT group_id, kind FROM group_messages WHERE message_id = ?;", gm_row, &c,
                 I(rowid));
    return rc == 1 ? 0 : rc == 0 ? KURER_ENOTFOUND : rc;
}

int kurer__store_group_message_set_ct(kurer__store *st, int64_t rowid, const uint8_t *ct, size_t n)
{
    return RUN(st, "UPDATE group_messages SET ciphertext = ? WHERE message_id = ?;", NULL, NULL,
               B(ct, n), I(rowid));
}

static int ct_row(void *ud, sqlite3_stmt *s)
{
    const void *p = sqlite3_column_blob(s, 0);
    int n = sqlite3_column_bytes(s, 0);
    if (p == NULL || n <= 0)
        return KURER_ENOTFOUND;
    int rc = kurer_buf_put(ud, p, (size_t)n);
    return rc != 0 ? rc : 1;
}

int kurer__store_group_message_ct(kurer__store *st, int64_t rowid, kurer_buf *ct)
{
    int rc = RUN(st, "SELECT ciphertext FROM group_messages WHERE message_id = ?;", ct_row, ct,
                 I(rowid));
    return rc == 1 ? 0 : rc == 0 ? KURER_ENOTFOUND : rc;
}

int kurer__store_group_message_set_members(kurer__store *st, int64_t rowid, uint32_t members)
{
    return RUN(st, "UPDATE group_messages SET members = ? WHERE message_id = ?;", NULL, NULL,
               I(members), I(rowid));
}

static int members_row(void *ud, sqlite3_stmt *s)
{
    int64_t v = sqlite3_column_int64(s, 0);
    *(uint32_t *)ud = v < 0 || v > UINT32_MAX ? 0 : (uint32_t)v;
    return 1;
}

int kurer__store_group_message_members(kurer__store *st, int64_t rowid, uint32_t *members)
{
    *members = 0;
    int rc = RUN(st, "SELECT members FROM group_messages WHERE message_id = ? AND kind = 0;",
                 members_row, members, I(rowid));
    return rc == 1 ? 0 : rc;
}
