/* Methods on groups: group.create, group.add, group.remove, group.promote, group.leave,
 * group.list, group.info
 * (docs/client.md, "kurer daemon"); a group message is the method send with a group. They run
 * in the daemon and in a command that opens the home itself; group.c prints their results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

/* members: an array of 1..KURER_GROUP_USERS_MAX user names (0 allowed when may_be_empty). */
static int members_arg(json_t *params, int may_be_empty, const char **v, size_t *n)
{
    json_t *a = json_object_get(params, "members");
    *n = 0;
    if (a == NULL && may_be_empty)
        return 0;
    if (!json_is_array(a))
        return usage_error("parameter 'members' must be an array of user names");
    if (json_array_size(a) > KURER_GROUP_USERS_MAX)
        return refuse(KURER_ELIMIT, "at most %d members at once", KURER_GROUP_USERS_MAX);
    if (json_array_size(a) == 0 && !may_be_empty)
        return usage_error("name at least one member");
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *u = json_string_value(json_array_get(a, i));
        int rc = u != NULL ? user_arg("member", u) : usage_error("members must be user names");
        if (rc != 0)
            return rc;
        v[(*n)++] = u;
    }
    return 0;
}

static int group_refused(int rc, const kurer_refusal *why, int level, const char *group)
{
    if (rc == KURER_EUNKNOWNGROUP)
        return refuse(rc, "no group %s on this home (kurer group list)", group);
    if (rc == KURER_EINVAL && group != NULL)
        return refuse(rc, "%s names no single group: give more of its id", group);
    if (rc == KURER_ENOTADMIN)
        return refuse(rc, "you are not an admin of group %s: nothing was changed", group);
    if (rc == KURER_ENOTMEMBER)
        return refuse(rc, "you are not a member of group %s", group);
    if (explain(rc, why, level, group) == 0)
        net_error(rc, "not done");
    return rc;
}

static const char *const create_params[] = {"name", "members", "timeout", NULL};

/* group.create {name, members, timeout}: {group, name} */
static int m_create(rpc_ctx *c, json_t *params, json_t **result)
{
    const char *name, *u[KURER_GROUP_USERS_MAX];
    size_t n = 0;
    long long timeout;
    int rc;
    if ((rc = rpc_only(params, create_params)) || (rc = rpc_str(params, "name", 1, &name)) ||
        (rc = members_arg(params, 1, u, &n)) ||
        (rc = rpc_int(params, "timeout", 86400, NET_TIMEOUT, &timeout)))
        return rc;
    if (name[0] == '\0' || strlen(name) > KURER_GROUP_NAME_LEN_MAX)
        return usage_error("a group name has 1..%d bytes", KURER_GROUP_NAME_LEN_MAX);
    if (!is_enrolled(c->k))
        return refuse(KURER_ESTATE, "this device is not enrolled yet: import your certificate");
    char id[KURER_GROUP_HEX_MAX + 1] = "";
    kurer_refusal why;
    rc = kurer_group_create(c->k, name, u, n, (int)timeout * 1000, id, &why);
    if (rc != 0)
        return group_refused(rc, &why, 0, NULL);
    *result = json_pack("{s:s,s:s}", "group", id, "name", name);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

static const char *const change_params[] = {"group", "members", "timeout", NULL};

static int change(rpc_ctx *c, json_t *params, json_t **result, kurer_group_op op)
{
    const char *group, *u[KURER_GROUP_USERS_MAX];
    size_t n = 0;
    long long timeout;
    int rc;
    if ((rc = rpc_only(params, change_params)) || (rc = rpc_str(params, "group", 1, &group)) ||
        (rc = members_arg(params, op == KURER_GROUP_OP_LEAVE, u, &n)) ||
        (rc = rpc_int(params, "timeout", 86400, NET_TIMEOUT, &timeout)))
        return rc;
    if (op == KURER_GROUP_OP_LEAVE && n > 0)
        return usage_error("group.leave takes no members");
    kurer_refusal why;
    rc = kurer_group_update(c->k, group, op, u, n, NULL, (int)timeout * 1000, &why);
    if (rc != 0)
        return group_refused(rc, &why, 0, group);
    *result = json_pack("{s:s}", "group", group);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

/* group.add / group.remove / group.promote {group, members, timeout}, group.leave {group,
 * timeout}: {group} */
static int m_add(rpc_ctx *c, json_t *params, json_t **result)
{
    return change(c, params, result, KURER_GROUP_OP_ADD);
}

static int m_remove(rpc_ctx *c, json_t *params, json_t **result)
{
    return change(c, params, result, KURER_GROUP_OP_REMOVE);
}

static int m_promote(rpc_ctx *c, json_t *params, json_t **result)
{
    return change(c, params, result, KURER_GROUP_OP_PROMOTE);
}

static int m_leave(rpc_ctx *c, json_t *params, json_t **result)
{
    return change(c, params, result, KURER_GROUP_OP_LEAVE);
}

static const char *by_name(kurer_refusal_by by)
{
    return by == KURER_REFUSED_BY_RECIPIENT ? "member"
           : by == KURER_REFUSED_BY_SENDER  ? "own certificate"
           : by == KURER_REFUSED_BY_CEILING ? "root ceiling"
                                            : "none";
}

static json_t *info_json(const kurer_group_info *g)
{
    json_t *members = json_array(), *admins = json_array();
    json_t *o = NULL;
    for (size_t i = 0; members != NULL && admins != NULL && i < g->n_members; i++) {
        json_t *devs = json_array();
        for (size_t d = 0; devs != NULL && d < g->members[i].n_devices; d++)
            json_array_append_new(devs, json_integer(g->members[i].devices[d]));
        json_array_append_new(members, json_pack("{s:s,s:b,s:o}", "user", g->members[i].user,
                                                 "admin", g->members[i].admin, "devices",
                                                 devs != NULL ? devs : json_array()));
        if (g->members[i].admin)
            json_array_append_new(admins, json_string(g->members[i].user));
    }
    if (members != NULL && admins != NULL)
        o = json_pack("{s:s,s:s,s:I,s:b,s:b,s:O,s:O,s:s,s:{s:s,s:s,s:I},s:I,s:I}", "group", g->id,
                      "name", g->name, "revision", (json_int_t)g->revision, "member", g->member,
                      "admin", g->admin, "members", members, "admins", admins, "ceiling",
                      g->ceiling > 0 ? kurer_level_name(g->ceiling) : "none", "ceiling_by", "by",
                      by_name(g->ceiling_by.by), "user", g->ceiling_by.user, "device",
                      (json_int_t)g->ceiling_by.device_id, "changes_ignored",
                      (json_int_t)g->changes_ignored, "expire_timer", (json_int_t)g->expire_timer);
    json_decref(members);
    json_decref(admins);
    return o;
}

static int keep_info(void *ud, const kurer_group_info *g)
{
    json_t *j = info_json(g);
    return j != NULL && json_array_append_new(ud, j) == 0 ? 0 : KURER_ENOMEM;
}

static const char *const list_params[] = {NULL};

/* group.list {}: {groups: [info, ...]} */
static int m_list(rpc_ctx *c, json_t *params, json_t **result)
{
    int rc = rpc_only(params, list_params);
    if (rc != 0)
        return rc;
    json_t *a = json_array();
    if (a == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    if ((rc = kurer_group_list(c->k, keep_info, a)) != 0) {
        json_decref(a);
        return refuse(rc, "cannot list the groups: %s", kurer_strerror(rc));
    }
    *result = json_pack("{s:o}", "groups", a);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

static const char *const info_params[] = {"group", NULL};

static int keep_one(void *ud, const kurer_group_info *g)
{
    *(json_t **)ud = info_json(g);
    return *(json_t **)ud != NULL ? 0 : KURER_ENOMEM;
}

/* group.info {group}: info */
static int m_info(rpc_ctx *c, json_t *params, json_t **result)
{
    const char *group;
    int rc;
    if ((rc = rpc_only(params, info_params)) || (rc = rpc_str(params, "group", 1, &group)))
        return rc;
    *result = NULL;
    if ((rc = kurer_group_get(c->k, group, keep_one, result)) != 0)
        return group_refused(rc, NULL, 0, group);
    return 0;
}

typedef struct gtimer_ctx {
    char id[KURER_GROUP_HEX_MAX + 1];
    uint32_t seconds;
} gtimer_ctx;

static int gtimer_info(void *ud, const kurer_group_info *g)
{
    gtimer_ctx *t = ud;
    memcpy(t->id, g->id, sizeof(t->id));
    t->seconds = g->expire_timer;
    return 0;
}

int rpc_group_timer(rpc_ctx *c, const char *group, uint32_t seconds, long long timeout,
                    json_t **result)
{
    kurer_refusal why;
    gtimer_ctx t;
    memset(&t, 0, sizeof(t));
    int rc = kurer_group_set_timer(c->k, group, seconds, (int)timeout * 1000, &why);
    int got = kurer_group_get(c->k, group, gtimer_info, &t);
    if (rc != 0 && transport_error(rc) && got == 0 && t.seconds == seconds) {
        net_error(rc, "the group's timer is set and the change not yet accepted by the relay");
        c->data =
            json_pack("{s:b,s:s,s:s}", "queued", 1, "name", kurer_err_name(rc), "group", t.id);
        return RC_QUEUED;
    }
    if (rc != 0)
        return group_refused(rc, &why, 0, group);
    if (got != 0)
        return group_refused(got, NULL, 0, group);
    *result = json_pack("{s:s,s:I}", "group", t.id, "seconds", (json_int_t)seconds);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

int rpc_group_send(rpc_ctx *c, const char *group, int level, const char *text,
                   const char *const *paths, size_t n_files, long long timeout, json_t **result)
{
    kurer_refusal why;
    int64_t id = 0;
    memset(&why, 0, sizeof(why));
    int rc = kurer_group_send_files(c->k, group, level, text, paths, n_files, (int)timeout * 1000,
                                    &why, &id);
    if (rc != 0 && rc != KURER_ECLEARANCE && file_refused(rc, n_files) != 0)
        return rc;
    if (rc == 0) {
        *result = json_pack("{s:s,s:s,s:I}", "group", group, "level", kurer_level_name(level),
                            "message_id", (json_int_t)id);
        return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
    }
    if (id != 0 && transport_error(rc)) {
        net_error(rc, "not yet accepted by the relay");
        c->data = json_pack("{s:b,s:s,s:s,s:s,s:I}", "queued", 1, "group", group, "level",
                            kurer_level_name(level), "name", kurer_err_name(rc), "message_id",
                            (json_int_t)id);
        return RC_QUEUED;
    }
    if (rc == KURER_ECLEARANCE && why.by == KURER_REFUSED_BY_RECIPIENT)
        return refuse(rc,
                      "refused: %s is above the group's ceiling: the clearance of member %s "
                      "device %u is %s",
                      kurer_level_name(level), why.user, why.device_id,
                      kurer_level_name(why.limit));
    return group_refused(rc, &why, level, group);
}

const rpc_method rpc_group_methods[] = {
    {"group.create", m_create}, {"group.add", m_add},
    {"group.remove", m_remove}, {"group.promote", m_promote},
    {"group.leave", m_leave},   {"group.list", m_list},
    {"group.info", m_info},     {NULL, NULL},
};
