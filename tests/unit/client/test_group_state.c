/* client_group: the group state machine (client/group_state.c) over changes that went through
 * their wire form (proto/content_group.c): who may change what, the deterministic order of
 * concurrent changes, changes waiting for a revision not reached. One ctest entry per case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "group.h"
#include "kurer/content.h"
#include "kurer/crypto.h"

#define MAXC 16

typedef struct log {
    kurer_group_change ch[MAXC];
    kurer__group_entry e[MAXC];
    size_t n;
} log_t;

static const uint8_t GID[KURER_GROUP_ID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};

/* Encodes a change, decodes it back (as a receiver would) and appends it with its hash. */
static void add_timer(log_t *l, kurer_group_change_kind kind, uint32_t base, const char *signer,
                      const char *name, const char **users, size_t n_users, uint32_t timer)
{
    kurer_group_change c;
    memset(&c, 0, sizeof(c));
    memcpy(c.group_id, GID, sizeof(GID));
    c.base_revision = base;
    c.kind = kind;
    snprintf(c.signer.user, sizeof(c.signer.user), "%s", signer);
    c.signer.device_id = 1;
    c.users = users;
    c.n_users = n_users;
    c.name = name;
    c.timestamp = 1000 + l->n; /* distinct bytes for distinct changes */
    c.expire_timer = timer;
    kurer_buf b;
    kurer_buf_init(&b, KURER_GROUP_CHANGE_MAX);
    assert_int_equal(kurer_group_change_encode(&c, &b), 0);
    assert_true(l->n < MAXC);
    assert_int_equal(kurer_group_change_decode(b.data, b.len, &l->ch[l->n]), 0);
    kurer_hash256(l->e[l->n].hash, b.data, b.len);
    l->e[l->n].change = &l->ch[l->n];
    l->n++;
    kurer_buf_release(&b);
}

static void add(log_t *l, kurer_group_change_kind kind, uint32_t base, const char *signer,
                const char *name, const char **users, size_t n_users)
{
    add_timer(l, kind, base, signer, name, users, n_users, 0);
}

static void log_free(log_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        kurer_group_change_release(&l->ch[i]);
}

static int is_member(const kurer__group_state *s, const char *u)
{
    return kurer__group_member_find(s, u) != NULL;
}

static int is_admin(const kurer__group_state *s, const char *u)
{
    const kurer__group_member *m = kurer__group_member_find(s, u);
    return m != NULL && m->admin;
}

static const char *BC[] = {"bo@ministry", "cy@ministry"};
static const char *DA[] = {"di@agency"};
static const char *BO[] = {"bo@ministry"};
static const char *CY[] = {"cy@ministry"};

static void test_lifecycle(void **state)
{
    (void)state;
    log_t l = {0};
    kurer__group_state s;
    add(&l, KURER_GROUP_CREATE, 0, "al@ministry", "cell", BC, 2);
    add(&l, KURER_GROUP_ADD, 1, "al@ministry", "", DA, 1);
    add(&l, KURER_GROUP_PROMOTE, 2, "al@ministry", "", BO, 1);
    add(&l, KURER_GROUP_REMOVE, 3, "bo@ministry", "", CY, 1);
    add(&l, KURER_GROUP_RENAME, 4, "bo@ministry", "crisis cell", NULL, 0);
    add(&l, KURER_GROUP_LEAVE, 5, "di@agency", "", NULL, 0);
    assert_int_equal(kurer__group_fold(GID, l.e, l.n, &s), 0);
    assert_true(s.exists);
    assert_int_equal(s.revision, 6);
    assert_string_equal(s.name, "crisis cell");
    assert_int_equal(s.n_members, 2);
    assert_true(is_admin(&s, "al@ministry"));
    assert_true(is_admin(&s, "bo@ministry"));
    assert_false(is_member(&s, "cy@ministry"));
    assert_false(is_member(&s, "di@agency"));
    assert_int_equal(s.applied, 6);
    assert_int_equal(s.ignored, 0);
    /* Sorted by user. */
    assert_string_equal(s.members[0].user, "al@ministry");
    kurer__group_state_release(&s);
    log_free(&l);
}

/* A member who is not an admin cannot add, remove, promote or rename; a non-member cannot
 * leave; a second CREATE of the same id is ignored. */
static void test_forged(void **state)
{
    (void)state;
    log_t l = {0};
    kurer__group_state s;
    add(&l, KURER_GROUP_CREATE, 0, "al@ministry", "cell", BC, 2);
    add(&l, KURER_GROUP_CREATE, 0, "mallory@ministry", "mine", DA, 1);
    add(&l, KURER_GROUP_ADD, 1, "cy@ministry", "", DA, 1);
    add(&l, KURER_GROUP_REMOVE, 1, "bo@ministry", "", CY, 1);
    add(&l, KURER_GROUP_PROMOTE, 1, "cy@ministry", "", CY, 1);
    add(&l, KURER_GROUP_LEAVE, 1, "eve@ministry", "", NULL, 0);
    add(&l, KURER_GROUP_RENAME, 1, "cy@ministry", "pwned", NULL, 0);
    assert_int_equal(kurer__group_fold(GID, l.e, l.n, &s), 0);
    /* Which CREATE sorts first depends on the hashes; whichever it is, the other is refused. */
    size_t creates_applied = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.e[i].change->kind == KURER_GROUP_CREATE)
            creates_applied += (size_t)l.e[i].applied;
        else
            assert_false(l.e[i].applied);
    }
    assert_int_equal(creates_applied, 1);
    assert_int_equal(s.applied, 1);
    assert_int_equal(s.ignored, 6);
    assert_int_equal(s.revision, 1);
    for (size_t i = 0; i < l.n; i++)
        if (!l.e[i].applied && l.e[i].change->kind == KURER_GROUP_CREATE)
            assert_int_equal(l.e[i].why, KURER_EEXIST);
    kurer__group_state_release(&s);
    log_free(&l);
}

/* SET_TIMER: admins only, like RENAME; at most four weeks; 0 turns it off; part of the state. */
static void test_timer(void **state)
{
    (void)state;
    log_t l = {0};
    kurer__group_state s;
    add(&l, KURER_GROUP_CREATE, 0, "al@ministry", "cell", BC, 2);
    add_timer(&l, KURER_GROUP_SET_TIMER, 1, "bo@ministry", "", NULL, 0, 5); /* not an admin */
    add_timer(&l, KURER_GROUP_SET_TIMER, 1, "al@ministry", "", NULL, 0, 28 * 86400 + 1);
    assert_int_equal(kurer__group_fold(GID, l.e, l.n, &s), 0);
    assert_int_equal(s.expire_timer, 0);
    assert_int_equal(s.revision, 1);
    for (size_t i = 1; i < l.n; i++) /* the fold sorted them: bo's and al's, in either order */
        assert_int_equal(l.e[i].why, strcmp(l.e[i].change->signer.user, "bo@ministry") == 0
                                         ? KURER_ENOTADMIN
                                         : KURER_ELIMIT);
    kurer__group_state_release(&s);
    add_timer(&l, KURER_GROUP_SET_TIMER, 1, "al@ministry", "", NULL, 0, 3600);
    assert_int_equal(kurer__group_fold(GID, l.e, l.n, &s), 0);
    assert_int_equal(s.expire_timer, 3600);
    assert_int_equal(s.revision, 2);
    kurer__group_state_release(&s);
    add_timer(&l, KURER_GROUP_SET_TIMER, 2, "al@ministry", "", NULL, 0, 0);
    assert_int_equal(kurer__group_fold(GID, l.e, l.n, &s), 0);
    assert_int_equal(s.expire_timer, 0);
    assert_int_equal(s.revision, 3);
    assert_int_equal(s.applied, 3);
    assert_int_equal(s.ignored, 2);
    kurer__group_state_release(&s);
    log_free(&l);
}

/* The first create's state, then two admins build on revision 2 at once: every order of
 * arrival gives the same state, and both changes make revision 3. */
static void test_concurrent(void **state)
{
    (void)state;
    log_t l = {0};
    kurer__group_state ref, s;
    add(&l, KURER_GROUP_CREATE, 0, "al@ministry", "cell", BC, 2);
    add(&l, KURER_GROUP_PROMOTE, 1, "al@ministry", "", BO, 1);
    add(&l, KURER_GROUP_ADD, 2, "al@ministry", "", DA, 1);    /* al adds di */
    add(&l, KURER_GROUP_REMOVE, 2, "bo@ministry", "", CY, 1); /* bo removes cy at once */
    add(&l, KURER_GROUP_REMOVE, 2, "bo@ministry", "", BO, 1); /* and (later) itself */
    add(&l, KURER_GROUP_RENAME, 3, "al@ministry", "after", NULL, 0);
    kurer__group_entry orig[MAXC];
    memcpy(orig, l.e, sizeof(orig));
    assert_int_equal(kurer__group_fold(GID, l.e, l.n, &ref), 0);
    assert_int_equal(ref.revision, 4);
    assert_int_equal(ref.applied, 6);
    assert_true(is_member(&ref, "di@agency"));
    assert_false(is_member(&ref, "cy@ministry"));
    assert_false(is_member(&ref, "bo@ministry"));
    assert_string_equal(ref.name, "after");
    /* All rotations and a reversal of the input. */
    for (size_t r = 0; r <= l.n; r++) {
        kurer__group_entry e[MAXC];
        for (size_t i = 0; i < l.n; i++)
            e[i] = r < l.n ? orig[(i + r) % l.n] : orig[l.n - 1 - i];
        assert_int_equal(kurer__group_fold(GID, e, l.n, &s), 0);
        assert_int_equal(s.revision, ref.revision);
        assert_int_equal(s.n_members, ref.n_members);
        assert_string_equal(s.name, ref.name);
        for (size_t i = 0; i < s.n_members; i++) {
            assert_string_equal(s.members[i].user, ref.members[i].user);
            assert_int_equal(s.members[i].admin, ref.members[i].admin);
        }
        for (size_t i = 0; i + 1 < l.n; i++)
            assert_true(kurer__group_entry_cmp(&e[i], &e[i + 1]) < 0);
        kurer__group_state_release(&s);
    }
    kurer__group_state_release(&ref);
    log_free(&l);
}

/* An admin removed at revision 2 by a concurrent change is still an admin at base 2: its
 * sibling change counts. The one built on the next revision does not. */
static void test_admin_at_base(void **state)
{
    (void)state;
    log_t l = {0};
    kurer__group_state s;
    const char *AB[] = {"bo@ministry"};
    add(&l, KURER_GROUP_CREATE, 0, "al@ministry", "cell", BC, 2);
    add(&l, KURER_GROUP_PROMOTE, 1, "al@ministry", "", AB, 1);
    add(&l, KURER_GROUP_REMOVE, 2, "al@ministry", "", AB, 1);    /* bo removed */
    add(&l, KURER_GROUP_ADD, 2, "bo@ministry", "", DA, 1);       /* bo, an admin at 2 */
    add(&l, KURER_GROUP_RENAME, 3, "bo@ministry", "x", NULL, 0); /* bo, not an admin at 3 */
    assert_int_equal(kurer__group_fold(GID, l.e, l.n, &s), 0);
    assert_true(is_member(&s, "di@agency"));
    assert_false(is_member(&s, "bo@ministry"));
    assert_string_equal(s.name, "cell");
    for (size_t i = 0; i < l.n; i++)
        if (l.e[i].change->kind == KURER_GROUP_RENAME)
            assert_int_equal(l.e[i].why, KURER_ENOTADMIN);
    kurer__group_state_release(&s);
    log_free(&l);
}

/* A change built on a revision not reached waits (EGROUPGAP) and is applied once the missing
 * one arrives. */
static void test_gap(void **state)
{
    (void)state;
    log_t l = {0};
    kurer__group_state s;
    add(&l, KURER_GROUP_CREATE, 0, "al@ministry", "cell", BC, 2);
    add(&l, KURER_GROUP_RENAME, 2, "al@ministry", "later", NULL, 0);
    assert_int_equal(kurer__group_fold(GID, l.e, l.n, &s), 0);
    assert_int_equal(s.revision, 1);
    assert_int_equal(s.pending, 1);
    assert_string_equal(s.name, "cell");
    kurer__group_state_release(&s);
    add(&l, KURER_GROUP_ADD, 1, "al@ministry", "", DA, 1);
    assert_int_equal(kurer__group_fold(GID, l.e, l.n, &s), 0);
    assert_int_equal(s.revision, 3);
    assert_int_equal(s.pending, 0);
    assert_string_equal(s.name, "later");
    kurer__group_state_release(&s);
    log_free(&l);
}

/* The wire form refuses what the fold must never see. */
static void test_wire(void **state)
{
    (void)state;
    kurer_group_change c, d;
    kurer_buf b;
    memset(&c, 0, sizeof(c));
    memcpy(c.group_id, GID, sizeof(GID));
    snprintf(c.signer.user, sizeof(c.signer.user), "al@ministry");
    c.signer.device_id = 1;
    c.kind = KURER_GROUP_CREATE;
    c.name = "cell";
    c.base_revision = 1; /* a CREATE builds on nothing */
    kurer_buf_init(&b, KURER_GROUP_CHANGE_MAX);
    assert_int_equal(kurer_group_change_encode(&c, &b), KURER_EMALFORMED);
    c.base_revision = 0;
    const char *dup[] = {"bo@ministry", "bo@ministry"};
    c.users = dup;
    c.n_users = 2;
    assert_int_equal(kurer_group_change_encode(&c, &b), KURER_EMALFORMED);
    const char *bad[] = {"not a user"};
    c.users = bad;
    c.n_users = 1;
    assert_int_equal(kurer_group_change_encode(&c, &b), KURER_EMALFORMED);
    c.n_users = 0;
    c.kind = KURER_GROUP_ADD; /* an ADD names someone */
    assert_int_equal(kurer_group_change_encode(&c, &b), KURER_EMALFORMED);
    c.kind = (kurer_group_change_kind)9;
    assert_int_equal(kurer_group_change_encode(&c, &b), KURER_EMALFORMED);
    c.kind = KURER_GROUP_LEAVE;
    assert_int_equal(kurer_group_change_encode(&c, &b), 0);
    assert_int_equal(kurer_group_change_decode(b.data, b.len, &d), 0);
    assert_int_equal(d.kind, KURER_GROUP_LEAVE);
    kurer_group_change_release(&d);
    /* Inside Content: a signature of another length than 64 is malformed, none is carried. */
    kurer_content k, out;
    memset(&k, 0, sizeof(k));
    k.body = KURER_CONTENT_GROUP_CONTROL;
    k.u.group_control.change = b.data;
    k.u.group_control.change_len = b.len;
    kurer_buf cb;
    kurer_buf_init(&cb, KURER_CONTENT_MAX);
    assert_int_equal(kurer_content_encode(&k, &cb), 0);
    assert_int_equal(kurer_content_decode(cb.data, cb.len, &out), 0);
    assert_int_equal(out.body, KURER_CONTENT_GROUP_CONTROL);
    assert_false(out.u.group_control.has_signature);
    assert_int_equal(out.u.group_control.change_len, b.len);
    assert_memory_equal(out.u.group_control.change, b.data, b.len);
    kurer_content_release(&out);
    kurer_buf_release(&cb);
    kurer_buf_release(&b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),  cmocka_unit_test(test_forged),
        cmocka_unit_test(test_concurrent), cmocka_unit_test(test_admin_at_base),
        cmocka_unit_test(test_gap),        cmocka_unit_test(test_wire),
        cmocka_unit_test(test_timer),
    };
    assert_int_equal(kurer_crypto_init(), 0);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
