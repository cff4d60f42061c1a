/* Groups, the receiving half (group_recv.h): changes verified, held and folded; sender keys
 * kept; sender-key envelopes decrypted with the message they carry in one transaction. */
#include "group_recv.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/signal.h"
#include "group_send.h"
#include "session_group.h"
#include "store_group.h"

/* ---- the fold over what the store holds ---- */

typedef struct fold_in {
    kurer_group_change *ch;
    kurer__group_entry *e;
    size_t n, cap;
    int err;
} fold_in;

static int collect(void *ud, const kurer__group_row *r)
{
    fold_in *f = ud;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        kurer_group_change *nc = realloc(f->ch, cap * sizeof(*nc));
        if (nc == NULL)
            return KURER_ENOMEM;
        f->ch = nc;
        kurer__group_entry *ne = realloc(f->e, cap * sizeof(*ne));
        if (ne == NULL)
            return KURER_ENOMEM;
        f->e = ne;
        f->cap = cap;
    }
    /* Only verified changes were stored: one that no longer decodes means the file changed. */
    if (kurer_group_change_decode(r->change, r->change_len, &f->ch[f->n]) != 0)
        return KURER_ECORRUPT;
    memset(&f->e[f->n], 0, sizeof(f->e[f->n]));
    kurer_hash256(f->e[f->n].hash, r->change, r->change_len);
    f->e[f->n].rowid = r->rowid;
    f->n++;
    return 0;
}

int kurer__group_refold(kurer *k, const uint8_t gid[KURER_GROUP_ID_LEN], kurer__group_state *out)
{
    fold_in f;
    kurer__group_state s;
    memset(&f, 0, sizeof(f));
    memset(&s, 0, sizeof(s));
    int rc = kurer__store_group_changes_each(k->st, gid, collect, &f);
    for (size_t i = 0; i < f.n; i++)
        f.e[i].change = &f.ch[i]; /* after the last realloc */
    if (rc == 0)
        rc = kurer__group_fold(gid, f.e, f.n, &s);
    for (size_t i = 0; rc == 0 && i < f.n; i++)
        rc = kurer__store_group_change_mark(k->st, f.e[i].rowid, f.e[i].applied, f.e[i].why);
    if (rc == 0)
        rc = kurer__store_group_put(k->st, &s, kurer__home_now(k));
    for (size_t i = 0; i < f.n; i++)
        kurer_group_change_release(&f.ch[i]);
    free(f.ch);
    free(f.e);
    if (rc == 0 && out != NULL)
        *out = s;
    else
        kurer__group_state_release(&s);
    return rc;
}

/* ---- a change arrives ---- */

/* The signer's chain verifies now and names the change's signer; its identity key signed. */
static int verify_change(kurer *k, const kurer_group_control *gc, const kurer_group_change *c)
{
    if (!gc->has_signature)
        return KURER_EBADSIG;
    kurer_chain *chain = malloc(sizeof(*chain));
    kurer_verified v;
    kurer_buf tbs;
    if (chain == NULL)
        return KURER_ENOMEM;
    kurer_buf_init(&tbs, KURER_GROUP_SIG_CONTEXT_LEN + KURER_GROUP_CHANGE_MAX);
    int rc = gc->signer_chain_len > 0
                 ? kurer_chain_decode(gc->signer_chain, gc->signer_chain_len, chain)
                 : KURER_EMALFORMED;
    if (rc == 0)
        rc = kurer_trust_verify_chain(k->trust, chain, kurer__home_now(k), &v);
    if (rc == 0 && (strcmp(v.user, c->signer.user) != 0 || v.device_id != c->signer.device_id))
        rc = KURER_ESUBJECT;
    if (rc == 0)
        rc = kurer__group_signed_bytes(gc->change, gc->change_len, &tbs);
    if (rc == 0)
        rc = kurer_identity_verify(v.identity_key, tbs.data, tbs.len, gc->signature);
    kurer_buf_release(&tbs);
    free(chain);
    return rc;
}

static void count_ignored(kurer *k, const kurer_group_change *c, int why)
{
    uint64_t n = 0;
    if (kurer__store_counter_get(k->st, KURER__COUNTER_GROUP_IGNORED, &n) != 0)
        n = 0;
    if (kurer__store_counter_set(k->st, KURER__COUNTER_GROUP_IGNORED, n + 1) != 0)
        n = 0; /* the log line still says it */
    char hex[KURER__GROUP_HEX_LEN + 1];
    kurer__group_hex(c->group_id, hex);
    hex[8] = '\0'; /* enough to tell groups apart in a log, nothing of what the change says */
    kurer_log(KURER_LOG_WARN, "client", "group_change_ignored",
              (kurer_log_field[]){KURER_LOG_STR("group", hex),
                                  KURER_LOG_STR("signer", c->signer.user),
                                  KURER_LOG_STR("reason", kurer_err_name(why))},
              3);
}

int kurer__group_take_change(kurer *k, const kurer_group_control *gc, int *applied)
{
    kurer_group_change c;
    uint8_t hash[KURER__GROUP_HASH_LEN];
    *applied = 0;
    int rc = kurer_group_change_decode(gc->change, gc->change_len, &c);
    if (rc != 0)
        return rc;
    if ((rc = verify_change(k, gc, &c)) != 0)
        goto out;
    /* A group is known once a CREATE for it is held; anything else for an unknown id is not
     * something we could ever fold. */
    int held = kurer__store_group_change_count(k->st, c.group_id);
    if (held < 0) {
        rc = held;
        goto out;
    }
    if (held == 0 && c.kind != KURER_GROUP_CREATE) {
        rc = KURER_EUNKNOWNGROUP;
        goto out;
    }
    kurer_hash256(hash, gc->change, gc->change_len);
    rc = kurer__store_group_change_add(k->st, c.group_id, hash, gc, kurer__home_now(k));
    if (rc == KURER_EDUPLICATE) {
        *applied = 1; /* held already: what the fold made of it stands */
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    if ((rc = kurer__group_refold(k, c.group_id, NULL)) != 0)
        goto out;
    int reason = 0;
    if ((rc = kurer__store_group_change_result(k->st, c.group_id, hash, applied, &reason)) == 0)
        rc = *applied ? 0 : reason;
out:
    if (rc != 0 && rc != KURER_EGROUPGAP && !kurer__store_fatal(rc))
        count_ignored(k, &c, rc);
    kurer_group_change_release(&c);
    return rc;
}

/* The members our own ADDs (built on c's base revision or later) brought in: c's signer may
 * not have known them, so they get c from us. */
typedef struct fwd_ctx {
    kurer *k;
    const kurer_group_change *c;
    const kurer__group_state *s;
    const char *users[KURER__GROUP_MEMBERS_MAX];
    size_t n;
} fwd_ctx;

static int fwd_row(void *ud, const kurer__group_row *r)
{
    fwd_ctx *f = ud;
    kurer_group_change a;
    if (!r->applied || kurer_group_change_decode(r->change, r->change_len, &a) != 0)
        return 0;
    if (a.kind == KURER_GROUP_ADD && a.base_revision >= f->c->base_revision &&
        strcmp(a.signer.user, f->k->own.user) == 0)
        for (size_t i = 0; i < a.n_users && f->n < KURER__GROUP_MEMBERS_MAX; i++) {
            const kurer__group_member *m = kurer__group_member_find(f->s, a.users[i]);
            int seen = strcmp(a.users[i], f->c->signer.user) == 0;
            for (size_t j = 0; !seen && j < f->n; j++)
                seen = strcmp(f->users[j], a.users[i]) == 0;
            if (m != NULL && !seen)
                f->users[f->n++] = m->user;
        }
    kurer_group_change_release(&a);
    return 0;
}

int kurer__group_on_control(kurer *k, const kurer_verified *sender, const kurer_group_control *gc)
{
    int applied = 0;
    kurer_group_change c;
    kurer__group_state s;
    (void)sender; /* the change's own signer is what counts, whoever passed it on */
    int rc = kurer__group_take_change(k, gc, &applied);
    if (rc != 0 || !applied)
        return kurer__store_fatal(rc) ? rc : 0;
    if (kurer_group_change_decode(gc->change, gc->change_len, &c) != 0)
        return 0;
    if (strcmp(c.signer.user, k->own.user) != 0 &&
        (rc = kurer__store_group_get(k->st, c.group_id, &s)) == 0) {
        fwd_ctx *f = calloc(1, sizeof(*f));
        rc = f == NULL ? KURER_ENOMEM : 0;
        if (rc == 0) {
            f->k = k;
            f->c = &c;
            f->s = &s;
            rc = kurer__store_group_changes_each(k->st, c.group_id, fwd_row, f);
        }
        if (rc == 0 && f->n > 0)
            rc = kurer__group_forward(k, c.group_id, gc, f->users, f->n);
        free(f);
        kurer__group_state_release(&s);
    }
    kurer_group_change_release(&c);
    if (rc == KURER_EUNKNOWNGROUP)
        rc = 0;
    return kurer__store_fatal(rc) ? rc : 0;
}

int kurer__group_data_check(kurer *k, const kurer_verified *sender,
                            const uint8_t gid[KURER_GROUP_ID_LEN])
{
    kurer__group_state s;
    int rc = kurer__store_group_get(k->st, gid, &s);
    if (rc != 0)
        return rc;
    if (kurer__group_member_find(&s, sender->user) == NULL)
        rc = KURER_ENOTMEMBER;
    kurer__group_state_release(&s);
    return rc;
}

int kurer__group_on_distribution(kurer *k, const kurer_verified *sender,
                                 const kurer_sender_key_distribution *d)
{
    int rc = kurer__group_data_check(k, sender, d->group_id);
    if (rc != 0)
        return rc;
    return kurer__session_group_process(k->sess, d->group_id, sender->user, sender->device_id,
                                        d->distribution, d->distribution_len);
}

/* ---- a sender-key envelope arrives ---- */

typedef struct try_ctx {
    kurer *k;
    const char *from;
    uint32_t device_id;
    const uint8_t *ct;
    size_t n;
    uint8_t *gid;
    int found;
} try_ctx;

static int try_group(void *ud, const uint8_t gid[KURER_GROUP_ID_LEN])
{
    try_ctx *t = ud;
    kurer__group_state s;
    int rc = kurer__store_group_get(t->k->st, gid, &s);
    if (rc != 0)
        return rc;
    int member = kurer__group_member_find(&s, t->from) != NULL;
    kurer__group_state_release(&s);
    if (!member)
        return 0;
    rc = kurer__session_group_has_key(t->k->sess, gid, t->from, t->device_id, t->ct, t->n);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        memcpy(t->gid, gid, KURER_GROUP_ID_LEN);
        t->found = 1;
        return 1; /* stops the walk */
    }
    return 0;
}

int kurer__group_receive(kurer *k, const uint8_t id[KURER_ENVELOPE_ID_LEN], const char *from,
                         uint32_t device_id, const uint8_t *ct, size_t n, kurer__plaintext_fn fn,
                         void *ud, uint8_t gid[KURER_GROUP_ID_LEN])
{
    kurer_verified v;
    kurer_buf pt;
    if (ct == NULL || n == 0 || n > KURER__CIPHERTEXT_MAX)
        return KURER_EINVAL;
    int rc = kurer__store_message_exists(k->st, id);
    if (rc != 0)
        return rc == 1 ? KURER_EDUPLICATE : rc;
    if ((rc = kurer__session_peer_check(k->sess, from, device_id, &v)) != 0)
        return rc;
    try_ctx t = {k, from, device_id, ct, n, gid, 0};
    rc = kurer__store_group_each(k->st, try_group, &t);
    if (rc < 0)
        return rc;
    if (!t.found)
        return KURER_EUNKNOWNGROUP;
    kurer_buf_init_secret(&pt, KURER_CONTENT_PADDED_MAX);
    if ((rc = kurer__store_begin(k->st)) != 0)
        goto out;
    rc = kurer__session_group_decrypt(k->sess, gid, from, device_id, ct, n, &pt);
    if (rc == 0)
        rc = fn(ud, &v, pt.data, pt.len);
    if (rc == 0)
        rc = kurer__store_commit(k->st);
    else
        kurer__store_rollback(k->st);
out:
    kurer_buf_release(&pt);
    if (rc != 0 && rc != KURER_EDUPLICATE)
        kurer_log(KURER_LOG_WARN, "client", "group_decrypt_refused",
                  (kurer_log_field[]){KURER_LOG_STR("peer", from),
                                      KURER_LOG_INT("device", device_id),
                                      KURER_LOG_STR("reason", kurer_err_name(rc))},
                  3);
    return rc;
}

int kurer__group_message_members(kurer *k, int64_t rowid, const uint8_t gid[KURER_GROUP_ID_LEN])
{
    kurer__group_state s;
    int rc = kurer__store_group_get(k->st, gid, &s);
    if (rc != 0)
        return rc;
    uint32_t n = 0;
    for (size_t i = 0; i < s.n_members; i++)
        if (strcmp(s.members[i].user, k->own.user) != 0)
            n++;
    kurer__group_state_release(&s);
    return kurer__store_group_message_set_members(k->st, rowid, n);
}

int kurer__group_message_tag(kurer *k, int64_t rowid, char hex[KURER__GROUP_HEX_LEN + 1])
{
    uint8_t gid[KURER_GROUP_ID_LEN];
    int kind = 0;
    hex[0] = '\0';
    if (kurer__store_group_message_get(k->st, rowid, gid, &kind) != 0)
        return 0;
    kurer__group_hex(gid, hex);
    return kind == KURER__GROUP_MSG_CHANGE || kind == KURER__GROUP_MSG_KEY;
}
