/* The group state machine (group.h): a pure fold over verified changes, so that every device
 * holding the same changes computes the same state, whatever order they arrived in. */
#include "group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/util.h"

int kurer__group_entry_cmp(const kurer__group_entry *a, const kurer__group_entry *b)
{
    if (a->change->base_revision != b->change->base_revision)
        return a->change->base_revision < b->change->base_revision ? -1 : 1;
    return memcmp(a->hash, b->hash, KURER__GROUP_HASH_LEN);
}

static int entry_qsort_cmp(const void *a, const void *b)
{
    return kurer__group_entry_cmp(a, b);
}

static int member_cmp(const void *a, const void *b)
{
    return strcmp(((const kurer__group_member *)a)->user, ((const kurer__group_member *)b)->user);
}

/* Linear: a fold looks up a few users per change, and groups hold at most 1,000 members. */
static kurer__group_member *find(kurer__group_state *s, const char *user)
{
    for (size_t i = 0; i < s->n_members; i++)
        if (strcmp(s->members[i].user, user) == 0)
            return &s->members[i];
    return NULL;
}

const kurer__group_member *kurer__group_member_find(const kurer__group_state *s, const char *user)
{
    if (s == NULL || user == NULL)
        return NULL;
    for (size_t i = 0; i < s->n_members; i++)
        if (s->members[i].present && strcmp(s->members[i].user, user) == 0)
            return &s->members[i];
    return NULL;
}

static size_t present_count(const kurer__group_state *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_members; i++)
        n += s->members[i].present != 0;
    return n;
}

/* A new revision is being built: forget the removed, and remember who was what at its base. */
static void epoch_start(kurer__group_state *s)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->n_members; i++) {
        if (!s->members[i].present)
            continue;
        s->members[kept] = s->members[i];
        s->members[kept].was_member = 1;
        s->members[kept].was_admin = s->members[kept].admin;
        kept++;
    }
    s->n_members = kept;
}

/* Makes room for the users of c not yet present (KURER_ELIMIT past the bound); nothing changes
 * on failure. */
static int reserve(kurer__group_state *s, const kurer_group_change *c, size_t *cap)
{
    size_t more = 0;
    for (size_t i = 0; i < c->n_users; i++) {
        const kurer__group_member *m = find(s, c->users[i]);
        if (m == NULL || !m->present)
            more++;
    }
    if (c->kind == KURER_GROUP_CREATE && find(s, c->signer.user) == NULL)
        more++;
    if (present_count(s) + more > KURER__GROUP_MEMBERS_MAX)
        return KURER_ELIMIT;
    if (s->n_members + more <= *cap)
        return 0;
    size_t ncap = s->n_members + more + 16;
    kurer__group_member *nv = realloc(s->members, ncap * sizeof(*nv));
    if (nv == NULL)
        return KURER_ENOMEM;
    s->members = nv;
    *cap = ncap;
    return 0;
}

static void add_user(kurer__group_state *s, const char *user, int admin)
{
    kurer__group_member *m = find(s, user);
    if (m == NULL) {
        m = &s->members[s->n_members++];
        memset(m, 0, sizeof(*m));
        snprintf(m->user, sizeof(m->user), "%s", user);
    }
    m->present = 1;
    m->admin |= admin;
}

static void remove_user(kurer__group_state *s, const char *user)
{
    kurer__group_member *m = find(s, user);
    if (m != NULL) {
        m->present = 0;
        m->admin = 0;
    }
}

/* Whether c's signer may make c at its base (the was_* marks), and if so applies it to s. */
static int apply(kurer__group_state *s, const kurer_group_change *c, size_t *cap)
{
    const kurer__group_member *signer = find(s, c->signer.user);
    int was_admin = signer != NULL && signer->was_admin;
    int was_member = signer != NULL && signer->was_member;
    int rc;
    switch (c->kind) {
    case KURER_GROUP_CREATE:
        if (s->exists)
            return KURER_EEXIST;
        if ((rc = reserve(s, c, cap)) != 0)
            return rc;
        add_user(s, c->signer.user, 1);
        for (size_t i = 0; i < c->n_users; i++)
            add_user(s, c->users[i], 0);
        snprintf(s->name, sizeof(s->name), "%s", c->name);
        s->exists = 1;
        return 0;
    case KURER_GROUP_LEAVE:
        if (!was_member)
            return KURER_ENOTMEMBER;
        remove_user(s, c->signer.user);
        return 0;
    default:
        break;
    }
    if (!was_admin)
        return KURER_ENOTADMIN;
    switch (c->kind) {
    case KURER_GROUP_ADD:
        if ((rc = reserve(s, c, cap)) != 0)
            return rc;
        for (size_t i = 0; i < c->n_users; i++)
            add_user(s, c->users[i], 0);
        return 0;
    case KURER_GROUP_REMOVE:
        for (size_t i = 0; i < c->n_users; i++)
            remove_user(s, c->users[i]);
        return 0;
    case KURER_GROUP_PROMOTE:
        for (size_t i = 0; i < c->n_users; i++) {
            kurer__group_member *m = find(s, c->users[i]);
            if (m != NULL && m->present)
                m->admin = 1;
        }
        return 0;
    case KURER_GROUP_RENAME:
        snprintf(s->name, sizeof(s->name), "%s", c->name);
        return 0;
    case KURER_GROUP_SET_TIMER:
        if (c->expire_timer > KURER__GROUP_TIMER_MAX)
            return KURER_ELIMIT;
        s->expire_timer = c->expire_timer;
        return 0;
    default:
        return KURER_EUNSUPPORTED;
    }
}

void kurer__group_state_release(kurer__group_state *s)
{
    if (s == NULL)
        return;
    free(s->members);
    memset(s, 0, sizeof(*s));
}

int kurer__group_fold(const uint8_t id[KURER_GROUP_ID_LEN], kurer__group_entry *e, size_t n,
                      kurer__group_state *out)
{
    size_t cap = 0;
    if (id == NULL || out == NULL || (n > 0 && e == NULL))
        return KURER_EINVAL;
    memset(out, 0, sizeof(*out));
    memcpy(out->id, id, KURER_GROUP_ID_LEN);
    qsort(e, n, sizeof(*e), entry_qsort_cmp);
    int have_base = 0;
    uint32_t base = 0;
    for (size_t i = 0; i < n; i++) {
        const kurer_group_change *c = e[i].change;
        e[i].applied = 0;
        if (memcmp(c->group_id, id, KURER_GROUP_ID_LEN) != 0) {
            e[i].why = KURER_EUNKNOWNGROUP;
            out->ignored++;
            continue;
        }
        if (c->base_revision > out->revision) {
            /* Nothing can be built on a revision not reached: this and the rest wait. */
            for (size_t j = i; j < n; j++) {
                e[j].applied = 0;
                e[j].why = KURER_EGROUPGAP;
            }
            out->pending = n - i;
            break;
        }
        if (!have_base || c->base_revision != base) {
            epoch_start(out);
            base = c->base_revision;
            have_base = 1;
        }
        int rc = apply(out, c, &cap);
        if (rc == KURER_ENOMEM) {
            kurer__group_state_release(out);
            return rc;
        }
        e[i].why = rc;
        if (rc == 0) {
            e[i].applied = 1;
            out->revision = c->base_revision + 1;
            out->applied++;
        } else {
            out->ignored++;
        }
    }
    epoch_start(out);
    qsort(out->members, out->n_members, sizeof(*out->members), member_cmp);
    return 0;
}

void kurer__group_hex(const uint8_t id[KURER_GROUP_ID_LEN], char hex[KURER__GROUP_HEX_LEN + 1])
{
    kurer_hex_encode(hex, id, KURER_GROUP_ID_LEN);
}

int kurer__group_unhex(const char *hex, uint8_t id[KURER_GROUP_ID_LEN])
{
    if (hex == NULL || strlen(hex) != KURER__GROUP_HEX_LEN)
        return KURER_EINVAL;
    return kurer_hex_decode(id, KURER_GROUP_ID_LEN, hex) == 0 ? 0 : KURER_EINVAL;
}

int kurer__group_signed_bytes(const uint8_t *change, size_t len, kurer_buf *out)
{
    int rc = kurer_buf_put(out, KURER_GROUP_SIG_CONTEXT, KURER_GROUP_SIG_CONTEXT_LEN);
    return rc != 0 ? rc : kurer_buf_put(out, change, len);
}
