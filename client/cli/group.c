/* kurer group: create, add, remove, leave, list, info (the methods group.* of rpc_group.c, run
 * in the daemon when one holds the home). A group message is kurer send --group. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

static const char help_group[] =
    "usage: kurer group --home H [--timeout S] [--json] create NAME [MEMBER...]\n"
    "       kurer group --home H [--timeout S] [--json] add ID MEMBER...\n"
    "       kurer group --home H [--timeout S] [--json] remove ID MEMBER...\n"
    "       kurer group --home H [--timeout S] [--json] promote ID MEMBER...\n"
    "       kurer group --home H [--timeout S] [--json] leave ID\n"
    "       kurer group --home H [--json] list\n"
    "       kurer group --home H [--json] info ID\n"
    "\n"
    "Groups belong to their members, not to the relay: every change is signed by an admin,\n"
    "names the revision it builds on and goes to every device of every member over the\n"
    "end-to-end sessions. create makes a group with you as its admin and MEMBER... (user@auth)\n"
    "in it, and prints its id; add and remove (admins only) change who is in it, promote\n"
    "(admins only) makes members admins; leave takes\n"
    "you out (at most 14 members per command). ID is the group's id in hex, or a prefix of\n"
    "at least 4 digits that only one\n"
    "group has. A member added cannot read what was sent before; after a removal every sender\n"
    "changes its key before its next message, so a removed member reads nothing sent later.\n"
    "list shows each group (id, name, revision, members); info one group: its members with\n"
    "their devices, the admins, the revision and its ceiling: the highest level a message to\n"
    "it may have, the lowest clearance among the members' current device certificates (and\n"
    "the root's), naming the member that sets it, and its disappearing-message timer\n"
    "(kurer timer --group ID). kurer send --group ID TEXT sends to it.\n"
    "\n"
    "  --timeout S      give up after S seconds (default 30)\n"
    "  --json           print the result as one JSON object\n";

static int print_json(json_t *res)
{
    json_object_set_new(res, "ok", json_true());
    json_object_set_new(res, "command", json_string("group"));
    char *s = NULL;
    size_t n = 0;
    if (rpc_dump_line(res, &s, &n) != 0)
        return refuse(KURER_ENOMEM, "out of memory");
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    rpc_free_wiped(s, n);
    return 0;
}

static void print_info(json_t *g, int full)
{
    json_t *members = json_object_get(g, "members");
    printf("%s  %s  revision %lld  %zu member%s  ceiling %s\n",
           json_string_value(json_object_get(g, "group")),
           json_string_value(json_object_get(g, "name")),
           (long long)json_integer_value(json_object_get(g, "revision")), json_array_size(members),
           json_array_size(members) == 1 ? "" : "s",
           json_string_value(json_object_get(g, "ceiling")));
    if (!full)
        return;
    json_t *by = json_object_get(g, "ceiling_by");
    const char *who = json_string_value(json_object_get(by, "by"));
    if (who != NULL && strcmp(who, "member") == 0)
        printf("  ceiling set by %s device %lld\n", json_string_value(json_object_get(by, "user")),
               (long long)json_integer_value(json_object_get(by, "device")));
    else if (who != NULL && strcmp(who, "none") != 0)
        printf("  ceiling set by the %s\n", who);
    json_int_t timer = json_integer_value(json_object_get(g, "expire_timer"));
    if (timer > 0) {
        char d[32];
        fmt_duration(d, sizeof(d), (uint32_t)timer);
        printf("  disappearing messages: %s after reading\n", d);
    } else {
        printf("  disappearing messages: off\n");
    }
    for (size_t i = 0; i < json_array_size(members); i++) {
        json_t *m = json_array_get(members, i), *devs = json_object_get(m, "devices");
        printf("  %s%s  devices", json_string_value(json_object_get(m, "user")),
               json_is_true(json_object_get(m, "admin")) ? " (admin)" : "");
        for (size_t d = 0; d < json_array_size(devs); d++)
            printf(" %lld", (long long)json_integer_value(json_array_get(devs, d)));
        printf("%s\n", json_array_size(devs) == 0 ? " none held" : "");
    }
    printf("  changes ignored on this home: %lld\n",
           (long long)json_integer_value(json_object_get(g, "changes_ignored")));
}

static int print_result(const char *action, json_t *res)
{
    if (g_json)
        return print_json(res);
    if (strcmp(action, "create") == 0) {
        printf("created group %s %s\n", json_string_value(json_object_get(res, "name")),
               json_string_value(json_object_get(res, "group")));
    } else if (strcmp(action, "list") == 0) {
        json_t *a = json_object_get(res, "groups");
        if (json_array_size(a) == 0)
            printf("no groups yet\n");
        for (size_t i = 0; i < json_array_size(a); i++)
            print_info(json_array_get(a, i), 0);
    } else if (strcmp(action, "info") == 0) {
        print_info(res, 1);
    } else {
        printf("%s: done, group %s\n", action, json_string_value(json_object_get(res, "group")));
    }
    return 0;
}

/* The params of action from the positionals (pos[0] is the action). */
static int group_params(const kurer_args *a, int timeout, const char **method, json_t **params)
{
    static const struct {
        const char *action, *method;
        size_t min, max; /* positionals after the action */
    } acts[] = {
        {"create", "group.create", 1, KURER_ARGS_POS_MAX - 1},
        {"add", "group.add", 2, KURER_ARGS_POS_MAX - 1},
        {"remove", "group.remove", 2, KURER_ARGS_POS_MAX - 1},
        {"promote", "group.promote", 2, KURER_ARGS_POS_MAX - 1},
        {"leave", "group.leave", 1, 1},
        {"list", "group.list", 0, 0},
        {"info", "group.info", 1, 1},
    };
    const char *act = a->pos[0];
    size_t n = a->npos - 1, i = 0;
    for (; i < sizeof(acts) / sizeof(acts[0]); i++)
        if (strcmp(act, acts[i].action) == 0)
            break;
    if (i == sizeof(acts) / sizeof(acts[0]))
        return usage_error("unknown group action '%s' (create, add, remove, promote, leave, list, "
                           "info)",
                           act);
    if (n < acts[i].min || n > acts[i].max)
        return usage_error("wrong arguments for group %s (kurer group --help)", act);
    *method = acts[i].method;
    if (i == 5) {
        *params = json_object();
        return *params != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
    }
    json_t *p = json_object(), *members = json_array();
    if (p == NULL || members == NULL) {
        json_decref(p);
        json_decref(members);
        return refuse(KURER_ENOMEM, "out of memory");
    }
    json_object_set_new(p, i == 0 ? "name" : "group", json_string(a->pos[1]));
    for (size_t j = 2; j < a->npos; j++) {
        int rc = user_arg("member", a->pos[j]);
        if (rc != 0) {
            json_decref(p);
            json_decref(members);
            return rc;
        }
        json_array_append_new(members, json_string(a->pos[j]));
    }
    if (i <= 3)
        json_object_set_new(p, "members", members);
    else
        json_decref(members);
    if (i <= 4)
        json_object_set_new(p, "timeout", json_integer(timeout));
    *params = p;
    return 0;
}

int cmd_group(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"timeout", V, 0}};
    kurer_args a;
    const char *home, *method = NULL;
    json_t *params = NULL, *res = NULL;
    int rc, timeout = NET_TIMEOUT;
    if ((rc = command_args(&a, opts, NOPTS(opts), 1, KURER_ARGS_POS_MAX, "ACTION ...", help_group,
                           argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) != 0 ||
        (rc = opt_seconds(&a, "timeout", NET_TIMEOUT, &timeout)) != 0 ||
        (rc = group_params(&a, timeout, &method, &params)) != 0)
        return rc;
    cli_target t;
    if ((rc = cli_open(home, &t)) != 0) {
        json_decref(params);
        return rc;
    }
    rc = cli_run(&t, method, params, &res);
    cli_close(&t);
    if (rc == 0)
        rc = print_result(a.pos[0], res);
    json_decref(res);
    return rc;
}
