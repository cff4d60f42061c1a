/* kurer read and kurer timer: read receipts and a conversation's disappearing-message timer
 * (the methods read and timer, rpc_receipts.c, here or in the daemon). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "kurer/util.h"

static const char help_read[] =
    "usage: kurer read --home H [PEER | --group ID] [--all | SENT_AT...] [--timeout SECONDS]\n"
    "                  [--json]\n"
    "\n"
    "Marks received messages read on this device: PEER's one-to-one messages sent at SENT_AT\n"
    "(Unix ms, as kurer history --verbose or --json shows them), every unread one of PEER\n"
    "(--all), the messages of group ID (--group, as kurer send --group takes it) sent at\n"
    "SENT_AT or every unread one of it (--all), or every unread message of everyone and every\n"
    "group (--all alone). Each starts its countdown if it has a disappearing timer, and its\n"
    "sender gets a read receipt (for a group message, naming the group); your other devices\n"
    "get a copy and mark it read too. The marks are kept at once; the receipts go now, or with\n"
    "the next connection when the relay cannot be reached. Prints how many were marked.\n";

int cmd_read(int argc, char **argv)
{
    static const kurer_opt opts[] = {{"help", 0, 0}, {"json", 0, 0},    {"home", V, 0},
                                     {"all", 0, 0},  {"timeout", V, 0}, {"group", V, 0}};
    kurer_args a;
    const char *home, *group;
    int rc, timeout = NET_TIMEOUT;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 4097, "[PEER] [SENT_AT...]", help_read, argc,
                           argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) != 0 ||
        (rc = opt_seconds(&a, "timeout", NET_TIMEOUT, &timeout)) != 0)
        return rc;
    size_t first = 0;
    json_t *params = json_pack("{s:I}", "timeout", (json_int_t)timeout);
    if (params == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    if ((group = opt(&a, "group")) != NULL) {
        if (*group == '\0' || (a.npos > 0 && strchr(a.pos[0], '@') != NULL)) {
            json_decref(params);
            return usage_error("--group needs the group's id (kurer group list), and no PEER");
        }
        json_object_set_new(params, "group", json_string(group));
    } else if (a.npos > 0 && strchr(a.pos[0], '@') != NULL) {
        if ((rc = user_arg("read", a.pos[0])) != 0) {
            json_decref(params);
            return rc;
        }
        json_object_set_new(params, "peer", json_string(a.pos[0]));
        first = 1;
    }
    if (flag(&a, "all") == (a.npos > first)) {
        json_decref(params);
        return usage_error("read needs the messages' SENT_AT times or --all (not both)");
    }
    if (a.npos > first && first == 0 && group == NULL) {
        json_decref(params);
        return usage_error("read SENT_AT... needs the PEER or the --group whose messages they are");
    }
    if (flag(&a, "all"))
        json_object_set_new(params, "all", json_true());
    json_t *ts = json_array();
    for (size_t i = first; ts != NULL && i < a.npos; i++) {
        uint64_t v = 0;
        if (kurer_parse_u64(a.pos[i], INT64_MAX, &v) != 0) {
            json_decref(ts);
            json_decref(params);
            return usage_error("'%s' is not a message time (Unix ms, as history --json shows)",
                               a.pos[i]);
        }
        json_array_append_new(ts, json_integer((json_int_t)v));
    }
    if (ts != NULL && json_array_size(ts) > 0)
        json_object_set_new(params, "sent_at", ts);
    else
        json_decref(ts);
    json_t *r = NULL;
    if ((rc = cli_call(home, "read", params, &r)) != 0) {
        json_decref(r);
        return rc;
    }
    json_int_t n = json_integer_value(json_object_get(r, "marked"));
    if (g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_kv_int(&o.j, "marked", n);
        jline_end(&o);
    } else {
        printf("marked %lld message%s read\n", (long long)n, n == 1 ? "" : "s");
    }
    json_decref(r);
    return 0;
}

/* "30s", "10m", "1h", "2d", "1w", a number of seconds, or "off" (0). */
static int parse_duration(const char *s, uint32_t *out)
{
    uint64_t v = 0, mul = 1;
    char num[24];
    size_t n = strlen(s);
    if (strcmp(s, "off") == 0) {
        *out = 0;
        return 0;
    }
    if (n == 0 || n >= sizeof(num))
        return KURER_EINVAL;
    memcpy(num, s, n + 1);
    const char *units = "smhdw";
    static const uint64_t muls[] = {1, 60, 3600, 86400, 7 * 86400};
    const char *u = strchr(units, num[n - 1]);
    if (u != NULL && num[n - 1] != '\0') {
        mul = muls[u - units];
        num[n - 1] = '\0';
    }
    if (kurer_parse_u64(num, KURER_TIMER_MAX, &v) != 0 || v == 0 || v * mul > KURER_TIMER_MAX)
        return KURER_EINVAL;
    *out = (uint32_t)(v * mul);
    return 0;
}

static const char help_timer[] =
    "usage: kurer timer --home H PEER DURATION|off [--timeout SECONDS] [--json]\n"
    "       kurer timer --home H --group ID DURATION|off [--timeout SECONDS] [--json]\n"
    "\n"
    "Sets the disappearing-message timer of the conversation with PEER (DURATION: 30s, 10m,\n"
    "1h, 2d, 1w or a number of seconds; at most 4 weeks) or turns it off, and sends the change\n"
    "to PEER's devices and your other devices, which all honour it. From then on each message\n"
    "of the conversation is deleted from every device's store and history that long after it\n"
    "was read on a recipient's device, or sent on the sender's. Exits 3 when the change is set\n"
    "but waits in the outbox for the relay. With --group, the timer of group ID (its id in\n"
    "hex or a unique prefix of at least 4 digits): a signed change, like a rename, that only\n"
    "the group's admins may make, sent to every device of every member; kurer group info\n"
    "shows it.\n";

int cmd_timer(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"timeout", V, 0}, {"group", V, 0}};
    kurer_args a;
    const char *home, *group;
    int rc, timeout = NET_TIMEOUT;
    uint32_t secs = 0;
    if ((rc = command_args(&a, opts, NOPTS(opts), 1, 2, "PEER DURATION", help_timer, argc, argv)) !=
        0)
        return rc;
    group = opt(&a, "group");
    if (a.npos != (group != NULL ? 1u : 2u))
        return usage_error(group != NULL ? "timer --group ID takes one DURATION (or off)"
                                         : "timer needs PEER and DURATION (or --group ID)");
    const char *who = group != NULL ? group : a.pos[0], *dur = a.pos[a.npos - 1];
    if ((rc = need(&a, "home", &home)) != 0 ||
        (rc = opt_seconds(&a, "timeout", NET_TIMEOUT, &timeout)) != 0 ||
        (group == NULL && (rc = user_arg("timer", who)) != 0))
        return rc;
    if (parse_duration(dur, &secs) != 0)
        return usage_error("'%s' is not a duration (30s, 10m, 1h, 2d, 1w, seconds, or off; at "
                           "most 4 weeks)",
                           dur);
    json_t *r = NULL;
    json_t *params = json_pack("{s:s,s:I,s:I}", group != NULL ? "group" : "peer", who, "seconds",
                               (json_int_t)secs, "timeout", (json_int_t)timeout);
    if ((rc = cli_call(home, "timer", params, &r)) != 0) {
        json_decref(r);
        return rc;
    }
    if (g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_kv_str(&o.j, group != NULL ? "group" : "peer",
                          group != NULL ? json_string_value(json_object_get(r, "group")) : who);
        kurer_json_kv_int(&o.j, "seconds", secs);
        jline_end(&o);
    } else if (secs == 0) {
        printf("disappearing messages off %s %s\n", group != NULL ? "in group" : "with",
               group != NULL ? json_string_value(json_object_get(r, "group")) : who);
    } else {
        char d[32];
        fmt_duration(d, sizeof(d), secs);
        printf("disappearing messages %s %s: %s after reading\n",
               group != NULL ? "in group" : "with",
               group != NULL ? json_string_value(json_object_get(r, "group")) : who, d);
    }
    json_decref(r);
    return 0;
}
