/* Groups, the sending half (group_send.h). Every change and message is one stored message with
 * one outbox item per recipient device, sent by the engine's send path (the relay's rule that a
 * send names each recipient user's current devices holds here too). */
#include "group_send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "engine.h"
#include "group_recv.h"
#include "home.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/signal.h"
#include "session_group.h"
#include "store_group.h"

/* ---- helpers ---- */

/* Encrypts padded content pt for user/device over the pairwise session into an outbox item of
 * message rowid; a sender-key ciphertext (type SENDER_KEY) goes as it is. */
static int enqueue(kurer *k, int64_t rowid, const char *user, uint32_t device, const kurer_buf *pt,
                   kurer_envelope_type type)
{
    kurer_buf ct;
    kurer__outbox_item it;
    kurer_buf_init(&ct, KURER__CIPHERTEXT_MAX);
    int rc = 0;
    if (type == KURER_ENVELOPE_SENDER_KEY)
        rc = kurer_buf_put(&ct, pt->data, pt->len);
    else
        rc = kurer__session_encrypt(k->sess, user, device, pt->data, pt->len, &ct, &type);
    if (rc == 0) {
        memset(&it, 0, sizeof(it));
        it.message_rowid = rowid;
        kurer_random(it.envelope_id, sizeof(it.envelope_id));
        snprintf(it.to_user, sizeof(it.to_user), "%s", user);
        it.to_device = device;
        it.type = (int)type;
        it.content = ct.data;
        it.content_len = ct.len;
        it.next_attempt_at = kurer__home_now(k) * 1000;
        rc = kurer__store_outbox_add(k->st, &it);
    }
    kurer_buf_release(&ct);
    return rc;
}

static int pad_content(const kurer_content *c, kurer_buf *pt)
{
    kurer_buf_reset(pt);
    return kurer_content_encode_padded(c, pt);
}

/* A stored outgoing message of the group (kind KURER__GROUP_MSG_*), PENDING. */
static int insert_message(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN], int kind, int level,
                          const char *body, int64_t *rowid)
{
    kurer__msg m;
    int64_t now_ms = kurer__home_now(k) * 1000;
    memset(&m, 0, sizeof(m));
    kurer_random(m.envelope_id, sizeof(m.envelope_id));
    m.direction = KURER__DIR_OUT;
    snprintf(m.peer, sizeof(m.peer), "%s", k->own.user);
    m.level = level;
    m.body = body;
    m.body_len = strlen(body);
    m.sent_at = now_ms;
    m.received_at = now_ms;
    m.state = KURER__MSG_PENDING;
    int rc = kurer__store_message_insert(k->st, &m);
    if (rc == 0)
        rc = kurer__store_group_message_put(k->st, m.rowid, gid, kind);
    if (rc == 0)
        *rowid = m.rowid;
    return rc;
}

/* A list of users, each once. */
typedef struct users {
    char (*v)[KURER_SUBJECT_MAX + 1];
    uint8_t *fresh; /* 1: gets the whole log (a new member) */
    size_t n, cap;
} users;

static int users_add(users *u, const char *user, int fresh)
{
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->v[i], user) == 0) {
            u->fresh[i] |= (uint8_t)fresh;
            return 0;
        }
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 16;
        char(*nv)[KURER_SUBJECT_MAX + 1] = realloc(u->v, cap * sizeof(*nv));
        if (nv == NULL)
            return KURER_ENOMEM;
        u->v = nv;
        uint8_t *nf = realloc(u->fresh, cap);
        if (nf == NULL)
            return KURER_ENOMEM;
        u->fresh = nf;
        u->cap = cap;
    }
    snprintf(u->v[u->n], sizeof(u->v[u->n]), "%s", user);
    u->fresh[u->n++] = (uint8_t)fresh;
    return 0;
}

static void users_free(users *u)
{
    free(u->v);
    free(u->fresh);
    memset(u, 0, sizeof(*u));
}

/* Lookups of up to KURER_LOOKUP_USERS_MAX of the users not looked up within
 * KURER__DIR_FRESH_MS (one round trip per 64 members, not one per member): found[i] their
 * devices listed (0: unknown to the relay), 1 for those looked up lately. */
static int lookup_all(kurer *k, const users *u, uint64_t deadline, size_t *found)
{
    const char *names[KURER_LOOKUP_USERS_MAX];
    size_t at[KURER_LOOKUP_USERS_MAX], got[KURER_LOOKUP_USERS_MAX], n = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i <= u->n; i++) {
        if (i < u->n && kurer__dir_fresh(k, u->v[i])) {
            found[i] = 1;
            continue;
        }
        if (i < u->n) {
            names[n] = u->v[i];
            at[n++] = i;
        }
        if (n > 0 && (n == KURER_LOOKUP_USERS_MAX || i == u->n)) {
            rc = kurer__engine_lookup(k, names, n, deadline, got);
            for (size_t j = 0; rc == 0 && j < n; j++)
                found[at[j]] = got[j];
            n = 0;
        }
    }
    return rc;
}

/* Sessions with every device of each user (the directory asked unless fresh). A user the relay
 * does not know is refused when required_fresh_only is 0 or the user is fresh, else skipped. */
static int prepare(kurer *k, const users *u, int required_fresh_only, uint64_t deadline,
                   kurer_refusal *why)
{
    size_t *found = calloc(u->n + 1, sizeof(*found));
    if (found == NULL)
        return KURER_ENOMEM;
    int rc = lookup_all(k, u, deadline, found);
    for (size_t i = 0; rc == 0 && i < u->n; i++) {
        rc = found[i] == 0 ? KURER_EUNKNOWNUSER : kurer__engine_sessions(k, u->v[i], deadline, why);
        if (rc == KURER_EUNKNOWNUSER && why != NULL) {
            memset(why, 0, sizeof(*why));
            why->by = KURER_REFUSED_BY_RECIPIENT;
            snprintf(why->user, sizeof(why->user), "%s", u->v[i]);
        }
        if (rc == KURER_EUNKNOWNUSER && required_fresh_only && !u->fresh[i]) {
            kurer_log(KURER_LOG_WARN, "client", "group_member_unknown",
                      (kurer_log_field[]){KURER_LOG_STR("user", u->v[i])}, 1);
            rc = 0;
        }
    }
    free(found);
    return rc;
}

/* ---- changes ---- */

typedef struct log_ctx {
    kurer *k;
    int64_t rowid;
    const char *user;
    uint32_t device;
    kurer_buf *pt;
} log_ctx;

static int send_logged(void *ud, const kurer__group_row *r)
{
    log_ctx *c = ud;
    kurer_content content;
    memset(&content, 0, sizeof(content));
    content.body = KURER_CONTENT_GROUP_CONTROL;
    kurer_group_control *g = &content.u.group_control;
    g->change = r->change;
    g->change_len = r->change_len;
    g->has_signature = 1;
    memcpy(g->signature, r->signature, KURER_GROUP_SIG_LEN);
    g->signer_chain = r->chain;
    g->signer_chain_len = r->chain_len;
    int rc = pad_content(&content, c->pt);
    return rc != 0 ? rc
                   : enqueue(c->k, c->rowid, c->user, c->device, c->pt, KURER_ENVELOPE_MESSAGE);
}

/* The outbox items of a change: the change to each device of the users, the whole log held to
 * those marked fresh. 0 items: the message is SENT at once. */
static int queue_change(kurer *k, int64_t rowid, const uint8_t gid[KURER_GROUP_ID_LEN],
                        const users *u, const kurer_buf *this_pt)
{
    kurer_buf pt;
    size_t items = 0;
    int rc = 0;
    kurer_buf_init_secret(&pt, KURER_CONTENT_PADDED_MAX);
    for (size_t i = 0; rc == 0 && i < u->n; i++) {
        uint32_t *devs = NULL;
        size_t nd = 0;
        if ((rc = kurer__store_peer_devices(k->st, u->v[i], &devs, &nd)) != 0)
            break;
        for (size_t d = 0; rc == 0 && d < nd; d++) {
            if (strcmp(u->v[i], k->own.user) == 0 && devs[d] == k->own.device_id)
                continue;
            items++;
            if (u->fresh[i]) {
                log_ctx c = {k, rowid, u->v[i], devs[d], &pt};
                rc = kurer__store_group_changes_each(k->st, gid, send_logged, &c);
            } else {
                rc = enqueue(k, rowid, u->v[i], devs[d], this_pt, KURER_ENVELOPE_MESSAGE);
            }
        }
        free(devs);
    }
    kurer_buf_release(&pt);
    if (rc == 0 && items == 0)
        rc = kurer__store_message_set_state(k->st, rowid, KURER__MSG_SENT, 0);
    return rc;
}

/* Signs c (group id, kind and fields set by the caller) as ours on s's revision, applies it and
 * queues it for u; the stored message's row id in *rowid. */
static int commit_change(kurer *k, kurer_group_change *c, const kurer__group_state *s,
                         const users *u, int64_t *rowid)
{
    kurer_buf ch, tbs, pt;
    kurer_content content;
    int applied = 0;
    c->base_revision = s != NULL && s->exists ? s->revision : 0;
    snprintf(c->signer.user, sizeof(c->signer.user), "%s", k->own.user);
    c->signer.device_id = k->own.device_id;
    c->timestamp = (uint64_t)kurer__home_now(k) * 1000;
    memset(&content, 0, sizeof(content));
    content.body = KURER_CONTENT_GROUP_CONTROL;
    kurer_group_control *g = &content.u.group_control;
    kurer_buf_init(&ch, KURER_GROUP_CHANGE_MAX);
    kurer_buf_init(&tbs, KURER_GROUP_SIG_CONTEXT_LEN + KURER_GROUP_CHANGE_MAX);
    kurer_buf_init_secret(&pt, KURER_CONTENT_PADDED_MAX);
    int rc = k->own.chain != NULL ? kurer_group_change_encode(c, &ch) : KURER_ESTATE;
    if (rc == 0)
        rc = kurer__group_signed_bytes(ch.data, ch.len, &tbs);
    if (rc == 0)
        rc = kurer_identity_sign(k->own.identity_priv, tbs.data, tbs.len, g->signature);
    if (rc == 0) {
        g->change = ch.data;
        g->change_len = ch.len;
        g->has_signature = 1;
        g->signer_chain = k->own.chain;
        g->signer_chain_len = k->own.chain_len;
        rc = pad_content(&content, &pt);
    }
    if (rc != 0 || (rc = kurer__store_begin(k->st)) != 0)
        goto out;
    rc = kurer__group_take_change(k, g, &applied);
    if (rc == 0 && !applied)
        rc = KURER_EINTERNAL;
    if (rc == 0)
        rc = insert_message(k, c->group_id, KURER__GROUP_MSG_CHANGE, KURER_LEVEL_UNCLASSIFIED, "",
                            rowid);
    if (rc == 0)
        rc = queue_change(k, *rowid, c->group_id, u, &pt);
    if (rc == 0)
        rc = kurer__store_commit(k->st);
    else
        kurer__store_rollback(k->st);
out:
    kurer_buf_release(&ch);
    kurer_buf_release(&tbs);
    kurer_buf_release(&pt);
    return rc;
}

int kurer__group_forward(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN],
                         const kurer_group_control *gc, const char *const *users_in, size_t n)
{
    kurer_content content;
    kurer_buf pt;
    int64_t rowid = 0;
    size_t items = 0;
    memset(&content, 0, sizeof(content));
    content.body = KURER_CONTENT_GROUP_CONTROL;
    content.u.group_control = *gc;
    kurer_buf_init_secret(&pt, KURER_CONTENT_PADDED_MAX);
    int rc = pad_content(&content, &pt);
    if (rc == 0)
        rc = insert_message(k, gid, KURER__GROUP_MSG_CHANGE, KURER_LEVEL_UNCLASSIFIED, "", &rowid);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint32_t *devs = NULL;
        size_t nd = 0;
        if ((rc = kurer__store_peer_devices(k->st, users_in[i], &devs, &nd)) != 0)
            break;
        for (size_t d = 0; rc == 0 && d < nd; d++) {
            if (kurer__session_exists(k->sess, users_in[i], devs[d]) != 1)
                continue; /* never written to: it gets the whole log when it is */
            rc = enqueue(k, rowid, users_in[i], devs[d], &pt, KURER_ENVELOPE_MESSAGE);
            items++;
        }
        free(devs);
    }
    if (rc == 0 && items == 0)
        rc = kurer__store_message_set_state(k->st, rowid, KURER__MSG_SENT, 0);
    kurer_buf_release(&pt);
    return rc;
}

/* The users a change goes to: every member now, those it names (added or removed), ours. */
static int change_users(kurer *k, const kurer__group_state *s, const kurer_group_change *c,
                        users *u)
{
    int rc = users_add(u, k->own.user, 0);
    for (size_t i = 0; rc == 0 && s != NULL && i < s->n_members; i++)
        rc = users_add(u, s->members[i].user, 0);
    for (size_t i = 0; rc == 0 && i < c->n_users; i++) {
        int fresh =
            c->kind == KURER_GROUP_CREATE ||
            (c->kind == KURER_GROUP_ADD && kurer__group_member_find(s, c->users[i]) == NULL);
        rc = users_add(u, c->users[i], fresh);
    }
    return rc;
}

static int run_change(kurer *k, kurer_group_change *c, const kurer__group_state *s,
                      uint64_t deadline, kurer_refusal *why)
{
    users u;
    int64_t rowid = 0;
    memset(&u, 0, sizeof(u));
    int rc = change_users(k, s, c, &u);
    if (rc == 0)
        rc = prepare(k, &u, 1, deadline, why);
    if (rc == 0)
        rc = commit_change(k, c, s, &u, &rowid);
    users_free(&u);
    if (rc == 0)
        rc = kurer__engine_send_queued(k, rowid, deadline, why);
    return rc;
}

int kurer__group_create(kurer *k, const char *name, const char *const *users_in, size_t n,
                        uint64_t deadline, kurer_refusal *why, uint8_t gid[KURER_GROUP_ID_LEN])
{
    kurer_group_change c;
    if (name == NULL || (n > 0 && users_in == NULL))
        return KURER_EINVAL;
    memset(&c, 0, sizeof(c));
    kurer_random(c.group_id, KURER_GROUP_ID_LEN);
    c.kind = KURER_GROUP_CREATE;
    c.name = name;
    c.users = users_in;
    c.n_users = n;
    memcpy(gid, c.group_id, KURER_GROUP_ID_LEN);
    return run_change(k, &c, NULL, deadline, why);
}

/* Whether we may make a change of kind in s (so that nothing is sent that the fold refuses). */
static int may_change(const kurer *k, const kurer__group_state *s, kurer_group_change_kind kind)
{
    const kurer__group_member *me = kurer__group_member_find(s, k->own.user);
    if (me == NULL)
        return KURER_ENOTMEMBER;
    if (kind != KURER_GROUP_LEAVE && !me->admin)
        return KURER_ENOTADMIN;
    return 0;
}

int kurer__group_change(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN],
                        kurer_group_change_kind kind, const char *const *users_in, size_t n,
                        const char *name, uint64_t deadline, kurer_refusal *why)
{
    kurer__group_state s;
    kurer_group_change c;
    if (kind == KURER_GROUP_CREATE || kind == KURER_GROUP_SET_TIMER)
        return KURER_EINVAL;
    int rc = kurer__store_group_get(k->st, gid, &s);
    if (rc != 0)
        return rc;
    if ((rc = may_change(k, &s, kind)) == 0) {
        memset(&c, 0, sizeof(c));
        memcpy(c.group_id, gid, KURER_GROUP_ID_LEN);
        c.kind = kind;
        c.users = users_in;
        c.n_users = n;
        c.name = name != NULL ? name : "";
        rc = run_change(k, &c, &s, deadline, why);
    }
    kurer__group_state_release(&s);
    return rc;
}

int kurer__group_set_timer(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN], uint32_t seconds,
                           uint64_t deadline, kurer_refusal *why)
{
    kurer__group_state s;
    kurer_group_change c;
    if (seconds > KURER__GROUP_TIMER_MAX)
        return KURER_EINVAL;
    int rc = kurer__store_group_get(k->st, gid, &s);
    if (rc != 0)
        return rc;
    if ((rc = may_change(k, &s, KURER_GROUP_SET_TIMER)) == 0) {
        memset(&c, 0, sizeof(c));
        memcpy(c.group_id, gid, KURER_GROUP_ID_LEN);
        c.kind = KURER_GROUP_SET_TIMER;
        c.name = "";
        c.expire_timer = seconds;
        rc = run_change(k, &c, &s, deadline, why);
    }
    kurer__group_state_release(&s);
    return rc;
}

/* ---- messages ---- */

int kurer__group_ceiling(kurer *k, const kurer__group_state *s, int *level, kurer_refusal *who)
{
    memset(who, 0, sizeof(*who));
    *level = 0;
    /* Our own certificate and the root's ceiling, as for any send. */
    for (int l = KURER_LEVEL_CONFIDENTIAL; l >= KURER_LEVEL_UNCLASSIFIED; l--) {
        kurer_refusal why;
        if (kurer_check_send(k, k->own.user, l, &why) == 0 ||
            (why.by != KURER_REFUSED_BY_SENDER && why.by != KURER_REFUSED_BY_CEILING)) {
            *level = l;
            break;
        }
        *who = why;
    }
    if (*level == 0)
        return 0;
    memset(who, 0, sizeof(*who));
    for (size_t i = 0; i < s->n_members; i++) {
        uint32_t *devs = NULL;
        size_t nd = 0;
        int rc = kurer__store_peer_devices(k->st, s->members[i].user, &devs, &nd);
        if (rc != 0)
            return rc;
        for (size_t d = 0; d < nd; d++) {
            kurer_verified v;
            if (strcmp(s->members[i].user, k->own.user) == 0 && devs[d] == k->own.device_id)
                continue;
            int c = kurer__session_peer_check(k->sess, s->members[i].user, devs[d], &v);
            int l = c == 0 ? (int)v.clearance : 0;
            if (l < *level) {
                *level = l;
                who->by = KURER_REFUSED_BY_RECIPIENT;
                snprintf(who->user, sizeof(who->user), "%s", s->members[i].user);
                who->device_id = devs[d];
                who->limit = l;
            }
        }
        free(devs);
    }
    return 0;
}

typedef struct rot_ctx {
    const kurer__group_state *s;
    kurer *k;
    int stale;
} rot_ctx;

/* A device that had our key and is no longer a member device (its member removed or gone, or
 * the device itself no longer held: forgotten by a directory answer, revoked). */
static int rot_check(void *ud, const char *user, uint32_t device_id)
{
    rot_ctx *c = ud;
    if (kurer__group_member_find(c->s, user) == NULL) {
        c->stale = 1;
        return 0;
    }
    kurer_verified v;
    if (kurer__session_peer_check(c->k->sess, user, device_id, &v) != 0)
        c->stale = 1;
    return 0;
}

/* Our sender key for s, rotated first if due; *key the current one (made if none). */
static int own_key(kurer *k, const kurer__group_state *s, kurer__group_own_key *key,
                   kurer_buf *dist)
{
    char hex[KURER__GROUP_HEX_LEN + 1];
    rot_ctx c = {s, k, 0};
    int64_t now = kurer__home_now(k);
    int rc = kurer__store_group_own_key_get(k->st, s->id, key);
    if (rc != 0 && rc != KURER_ENOTFOUND)
        return rc;
    int have = rc == 0;
    if (have && (rc = kurer__store_group_shared_each(k->st, s->id, rot_check, &c)) != 0)
        return rc;
    if (have && (c.stale || now - key->created_at >= KURER__GROUP_KEY_MAX_AGE_S ||
                 key->messages >= KURER__GROUP_KEY_MAX_MESSAGES)) {
        kurer__group_hex(s->id, hex);
        if ((rc = kurer__store_group_own_key_drop(k->st, s->id, hex, KURER__GROUP_HEX_LEN,
                                                  k->own.user, k->own.device_id)) != 0)
            return rc;
        kurer_log(KURER_LOG_INFO, "client", "group_key_rotated",
                  (kurer_log_field[]){
                      KURER_LOG_STR("reason", c.stale ? "member device removed" : "age or use")},
                  1);
        have = 0;
    }
    uint32_t key_id = 0;
    if ((rc = kurer__session_group_distribution(k->sess, s->id, dist, &key_id)) != 0)
        return rc;
    if (!have || key->key_id != key_id) {
        key->key_id = key_id;
        key->created_at = now;
        key->messages = 0;
    }
    return 0;
}

/* Our key to every device of user if one of them has not had it (a send names all of a user's
 * current devices), into the key message (made on first need: *key_rowid). */
static int queue_key(kurer *k, const kurer__group_state *s, const char *user, const uint32_t *devs,
                     size_t nd, const kurer__group_own_key *key, const kurer_buf *pt,
                     int64_t *key_rowid)
{
    int need = 0, rc = 0;
    for (size_t d = 0; !need && d < nd; d++) {
        if (strcmp(user, k->own.user) == 0 && devs[d] == k->own.device_id)
            continue;
        int has = kurer__store_group_shared_has(k->st, s->id, user, devs[d], key->key_id);
        if (has < 0)
            return has;
        need = has == 0;
    }
    if (need && *key_rowid == 0)
        rc =
            insert_message(k, s->id, KURER__GROUP_MSG_KEY, KURER_LEVEL_UNCLASSIFIED, "", key_rowid);
    for (size_t d = 0; need && rc == 0 && d < nd; d++) {
        if (strcmp(user, k->own.user) == 0 && devs[d] == k->own.device_id)
            continue;
        if ((rc = enqueue(k, *key_rowid, user, devs[d], pt, KURER_ENVELOPE_MESSAGE)) == 0)
            rc = kurer__store_group_shared_add(k->st, s->id, user, devs[d], key->key_id);
    }
    return rc;
}

/* The member devices (ours but this one): our key where they have not had it, and the one
 * ciphertext. */
static int queue_message(kurer *k, int64_t rowid, const kurer__group_state *s,
                         const kurer__group_own_key *key, const kurer_buf *dist,
                         const kurer_buf *ct, size_t *items, int64_t *key_rowid)
{
    kurer_content c;
    kurer_buf pt;
    memset(&c, 0, sizeof(c));
    c.body = KURER_CONTENT_SENDER_KEY;
    memcpy(c.u.sender_key.group_id, s->id, KURER_GROUP_ID_LEN);
    c.u.sender_key.distribution = dist->data;
    c.u.sender_key.distribution_len = dist->len;
    kurer_buf_init_secret(&pt, KURER_CONTENT_PADDED_MAX);
    int rc = pad_content(&c, &pt);
    for (size_t i = 0; rc == 0 && i < s->n_members; i++) {
        const char *user = s->members[i].user;
        uint32_t *devs = NULL;
        size_t nd = 0;
        if ((rc = kurer__store_peer_devices(k->st, user, &devs, &nd)) != 0)
            break;
        rc = queue_key(k, s, user, devs, nd, key, &pt, key_rowid);
        for (size_t d = 0; rc == 0 && d < nd; d++) {
            if (strcmp(user, k->own.user) == 0 && devs[d] == k->own.device_id)
                continue;
            rc = enqueue(k, rowid, user, devs[d], ct, KURER_ENVELOPE_SENDER_KEY);
            (*items)++;
        }
        free(devs);
    }
    kurer_buf_release(&pt);
    return rc;
}

/* Every member device's certificate allows level now (and ours, and the ceiling); *user_max
 * the most devices one member has (ours but this one). */
static int group_policy(kurer *k, const kurer__group_state *s, int level, kurer_refusal *why,
                        size_t *user_max)
{
    int rc = kurer_check_send(k, k->own.user, level, why);
    if (rc != 0 && why != NULL && why->by != KURER_REFUSED_BY_RECIPIENT)
        return rc;
    *user_max = 0;
    for (size_t i = 0; i < s->n_members; i++) {
        uint32_t *devs = NULL;
        size_t nd = 0, n_user = 0;
        if ((rc = kurer__store_peer_devices(k->st, s->members[i].user, &devs, &nd)) != 0)
            return rc;
        for (size_t d = 0; rc == 0 && d < nd; d++) {
            if (strcmp(s->members[i].user, k->own.user) == 0 && devs[d] == k->own.device_id)
                continue;
            rc = kurer__home_check_device(k, level, s->members[i].user, devs[d], why);
            n_user++;
        }
        if (n_user > *user_max)
            *user_max = n_user;
        free(devs);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int commit_message(kurer *k, const kurer__group_state *s, int level, const char *text,
                          const kurer_attachment *atts, size_t n_atts, int64_t *rowid,
                          int64_t *key_rowid)
{
    kurer__group_own_key key;
    kurer_buf dist, pt, ct;
    kurer_content c;
    size_t items = 0;
    kurer_buf_init(&dist, KURER_SENDER_KEY_DIST_MAX);
    kurer_buf_init_secret(&pt, KURER_CONTENT_PADDED_MAX);
    kurer_buf_init(&ct, KURER__CIPHERTEXT_MAX);
    memset(&c, 0, sizeof(c));
    c.body = KURER_CONTENT_DATA;
    c.u.data.body = text;
    c.u.data.classification = (kurer_level)level;
    c.u.data.timestamp = (uint64_t)kurer__home_now(k) * 1000;
    c.u.data.has_group = 1;
    memcpy(c.u.data.group.group_id, s->id, KURER_GROUP_ID_LEN);
    c.u.data.group.revision = s->revision;
    c.u.data.attachments = atts;
    c.u.data.n_attachments = n_atts;
    c.u.data.expire_timer = s->expire_timer; /* the group's: every member device honours it */
    int rc = kurer__store_begin(k->st);
    if (rc != 0)
        goto out;
    if ((rc = own_key(k, s, &key, &dist)) == 0 && (rc = pad_content(&c, &pt)) == 0)
        rc = kurer__session_group_encrypt(k->sess, s->id, pt.data, pt.len, &ct);
    if (rc == 0)
        rc = insert_message(k, s->id, KURER__GROUP_MSG_DATA, level, text, rowid);
    if (rc == 0)
        rc = kurer__store_attach_put(k->st, *rowid, atts, n_atts);
    if (rc == 0)
        rc = kurer__group_message_members(k, *rowid, s->id);
    if (rc == 0)
        rc = kurer__group_timer_start(k, *rowid, s->expire_timer);
    if (rc == 0)
        rc = kurer__store_group_message_set_ct(k->st, *rowid, ct.data, ct.len);
    if (rc == 0)
        rc = queue_message(k, *rowid, s, &key, &dist, &ct, &items, key_rowid);
    key.messages++;
    if (rc == 0)
        rc = kurer__store_group_own_key_put(k->st, s->id, &key);
    if (rc == 0 && items == 0)
        rc = kurer__store_message_set_state(k->st, *rowid, KURER__MSG_SENT, 0);
    if (rc == 0)
        rc = kurer__store_commit(k->st);
    else
        kurer__store_rollback(k->st);
out:
    kurer_buf_release(&dist);
    kurer_buf_release(&pt);
    kurer_buf_release(&ct);
    return rc;
}

int kurer__group_send(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN], int level, const char *text,
                      uint64_t deadline, kurer_refusal *why, int64_t *message_id)
{
    return kurer__group_send_files(k, gid, level, text, NULL, 0, deadline, why, message_id);
}

int kurer__group_send_files(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN], int level,
                            const char *text, const char *const *paths, size_t n_files,
                            uint64_t deadline, kurer_refusal *why, int64_t *message_id)
{
    kurer_attachment atts[KURER_ATTACHMENTS_MAX];
    char(*names)[KURER_FILE_NAME_MAX + 1] = NULL;
    kurer__group_state s;
    users u;
    int64_t rowid = 0, key_rowid = 0;
    size_t user_max = 0;
    if (text == NULL || (text[0] == '\0' && n_files == 0) || n_files > KURER_ATTACHMENTS_MAX ||
        (n_files > 0 && paths == NULL))
        return KURER_EINVAL;
    if (n_files > 0 && (names = calloc(n_files, sizeof(*names))) == NULL)
        return KURER_ENOMEM;
    int rc = kurer__store_group_get(k->st, gid, &s);
    if (rc != 0) {
        free(names);
        return rc;
    }
    memset(&u, 0, sizeof(u));
    if (kurer__group_member_find(&s, k->own.user) == NULL)
        rc = KURER_ENOTMEMBER;
    for (size_t i = 0; rc == 0 && i < s.n_members; i++)
        rc = users_add(&u, s.members[i].user, 0);
    if (rc == 0)
        rc = prepare(k, &u, 1, deadline, why);
    if (rc == 0)
        rc = group_policy(k, &s, level, why, &user_max);
    /* Each file uploaded once, for every member device, before anything is committed. */
    if (rc == 0 && n_files > 0)
        rc = kurer__attach_upload(k, paths, NULL, n_files, deadline, atts, names);
    /* The one ciphertext goes once (the fan-out); what it leaves for the engine's path goes
     * as ordinary items, one request carrying a member's devices (each our key and the
     * ciphertext, after a stale device list), as many requests as the members need. */
    if (rc == 0 && strlen(text) + kurer__home_atts_size(atts, n_files) >
                       kurer_text_limit(2 * (user_max > 0 ? user_max : 1)))
        rc = KURER_ELIMIT;
    if (rc == 0)
        rc = commit_message(k, &s, level, text, atts, n_files, &rowid, &key_rowid);
    if (n_files > 0)
        kurer_memzero(atts, n_files * sizeof(atts[0]));
    free(names);
    users_free(&u);
    kurer__group_state_release(&s);
    if (rc == 0 && message_id != NULL)
        *message_id = rowid;
    /* The send itself: our key where needed, then the one ciphertext through the relay's
     * fan-out (group_fanout.c). */
    if (rc == 0)
        rc = kurer__group_fanout(k, key_rowid, rowid, deadline, why);
    return rc;
}

/* ---- a stale device list on a group message ---- */

typedef struct drop_ctx {
    kurer *k;
    int64_t rowid;
    const char *user;
    const uint32_t *held;
    size_t n_held;
    int rc;
} drop_ctx;

static int drop_gone(void *ud, const kurer__outbox_item *it)
{
    drop_ctx *c = ud;
    if (it->message_rowid != c->rowid || strcmp(it->to_user, c->user) != 0)
        return 0;
    for (size_t j = 0; j < c->n_held; j++)
        if (c->held[j] == it->to_device)
            return 0;
    c->rc = kurer__store_outbox_drop(c->k->st, c->rowid, c->user, it->to_device);
    return c->rc;
}

int kurer__group_reencrypt(kurer *k, int64_t message_rowid, const char *user, uint64_t deadline,
                           kurer_refusal *why, int *out_rc)
{
    uint8_t gid[KURER_GROUP_ID_LEN];
    int kind = 0;
    int rc = kurer__store_group_message_get(k->st, message_rowid, gid, &kind);
    if (rc == KURER_ENOTFOUND)
        return 0;
    *out_rc = rc;
    if (rc != 0)
        return 1;
    kurer__group_state s;
    uint32_t *held = NULL;
    size_t n_held = 0;
    kurer_buf ct, pt, dist;
    kurer__group_own_key key;
    kurer_buf_init(&ct, KURER__CIPHERTEXT_MAX);
    kurer_buf_init_secret(&pt, KURER_CONTENT_PADDED_MAX);
    kurer_buf_init(&dist, KURER_SENDER_KEY_DIST_MAX);
    memset(&s, 0, sizeof(s));
    rc = kurer__engine_devices(k, user, 1, deadline, why);
    if (rc == 0)
        rc = kurer__store_group_get(k->st, gid, &s);
    if (rc == 0)
        rc = kurer__store_peer_devices(k->st, user, &held, &n_held);
    if (rc != 0 || (rc = kurer__store_begin(k->st)) != 0)
        goto out;
    drop_ctx dc = {k, message_rowid, user, held, n_held, 0};
    rc = kurer__store_outbox_each_due(k->st, INT64_MAX, drop_gone, &dc);
    for (size_t j = 0; rc == 0 && j < n_held; j++) {
        if (strcmp(user, k->own.user) == 0 && held[j] == k->own.device_id)
            continue;
        int has = kurer__store_outbox_has(k->st, message_rowid, user, held[j]);
        if (has != 0) {
            rc = has < 0 ? has : 0;
            continue;
        }
        {
            if (kind == KURER__GROUP_MSG_CHANGE) {
                log_ctx c = {k, message_rowid, user, held[j], &pt};
                rc = kurer__store_group_changes_each(k->st, gid, send_logged, &c);
            } else if ((kind != KURER__GROUP_MSG_DATA ||
                        (rc = kurer__store_group_message_ct(k->st, message_rowid, &ct)) == 0) &&
                       (rc = kurer__store_group_own_key_get(k->st, gid, &key)) == 0) {
                kurer_buf_reset(&dist);
                uint32_t id = 0;
                rc = kurer__session_group_distribution(k->sess, gid, &dist, &id);
                /* Only the key the message was encrypted with can be handed out for it. */
                if (rc == 0 && id != key.key_id)
                    rc = KURER_ESTATE;
                kurer_content c;
                memset(&c, 0, sizeof(c));
                c.body = KURER_CONTENT_SENDER_KEY;
                memcpy(c.u.sender_key.group_id, gid, KURER_GROUP_ID_LEN);
                c.u.sender_key.distribution = dist.data;
                c.u.sender_key.distribution_len = dist.len;
                if (rc == 0 && (rc = pad_content(&c, &pt)) == 0 &&
                    (rc = enqueue(k, message_rowid, user, held[j], &pt, KURER_ENVELOPE_MESSAGE)) ==
                        0 &&
                    (rc = kurer__store_group_shared_add(k->st, gid, user, held[j], id)) == 0 &&
                    kind == KURER__GROUP_MSG_DATA)
                    rc = enqueue(k, message_rowid, user, held[j], &ct, KURER_ENVELOPE_SENDER_KEY);
                kurer_buf_reset(&ct);
            }
        }
    }
    if (rc == 0)
        rc = kurer__store_commit(k->st);
    else
        kurer__store_rollback(k->st);
out:
    kurer__group_state_release(&s);
    free(held);
    kurer_buf_release(&ct);
    kurer_buf_release(&pt);
    kurer_buf_release(&dist);
    *out_rc = rc;
    return 1;
}
