/* kurer history: the stored messages, oldest first. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rpc.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

static const char help_history[] =
    "usage: kurer history --home H [--with USER@AUTH | --group ID] [--verbose] [--json]\n"
    "\n"
    "Prints the stored messages, oldest first, each with its level (quarantined ones without\n"
    "their text): all of them, the one-to-one conversation with USER@AUTH (--with), or the\n"
    "messages of group ID (--group, as kurer send --group takes it). Outgoing messages show\n"
    "where they went and, until the relay accepted them, their state (pending, failed). --json\n"
    "prints JSON lines: one object per message, one per line (time, sent_at, from, device or to,\n"
    "level, state, text, reason), not one array.\n"
    "A peer device's key change is shown where it happened, as a line of its own:\n"
    "  <time> --- <user> device <N> has a new key: certificate <serial> issued by <authority>\n"
    "(with --json an object with \"event\":\"key_change\").\n"
    "Receipts follow an outgoing message: (delivered to N devices, read on M); a group message\n"
    "of yours (sent here or by another of your devices): (delivered to N of M members, read by\n"
    "K), M the members besides you when it was sent. A received one read here or on another of\n"
    "your devices says (read); one with a disappearing timer says when it goes. --verbose adds,\n"
    "under each message, its SENT_AT (for kurer read) and each device that sent a receipt, with\n"
    "the times.\n"
    "Each attachment of a message follows it as a line of its own, its name (the sender's,\n"
    "shown safely) and size, and where kurer recv --save-dir saved it:\n"
    "    attachment: <name> (<size> bytes) [saved <path>]\n"
    "(with --json an object with \"event\":\"attachment\").\n";

/* The key changes (the method's first page has them all), shown among the messages where
 * they happened. */
typedef struct change_list {
    json_t *v; /* array, or NULL */
    size_t next;
} change_list;

/* The key changes noticed before ms (Unix ms; INT64_MAX: all the rest). */
static void changes_until(change_list *l, int64_t ms)
{
    for (; l->next < json_array_size(l->v); l->next++) {
        kurer_key_change c;
        if (rpc_key_change_from(json_array_get(l->v, l->next), &c) != 0) {
            clear_reason();
            continue;
        }
        if (c.at * 1000 > ms)
            break;
        char t[64], prefix[80];
        c.old_key_fingerprint = "";
        fmt_ms(t, sizeof(t), c.at * 1000);
        snprintf(prefix, sizeof(prefix), "%s --- ", t);
        show_key_change(&c, prefix);
    }
}

/* The message's "attachments" (the method's), each a line after it. */
static void show_attachments_of(json_t *msg)
{
    json_t *arr = json_object_get(msg, "attachments"), *a;
    size_t i;
    json_array_foreach(arr, i, a)
    {
        const char *name = json_string_value(json_object_get(a, "name"));
        const char *type = json_string_value(json_object_get(a, "content_type"));
        const char *saved = json_string_value(json_object_get(a, "saved"));
        json_int_t size = json_integer_value(json_object_get(a, "size"));
        show_attachment(name != NULL ? name : "", size > 0 ? (uint64_t)size : 0,
                        type != NULL ? type : "", saved != NULL ? saved : "");
    }
}

/* Prints one page of the method history's result; 0 with *next (-1 after the last page). */
static int history_page(json_t *res, change_list *changes, long long *next, int verbose)
{
    const char *me = json_string_value(json_object_get(res, "me"));
    json_t *msgs = json_object_get(res, "messages"), *j;
    size_t i;
    if (me == NULL || !json_is_array(msgs))
        return refuse(KURER_EMALFORMED, "cannot read the history: a malformed answer");
    if (changes->v == NULL && json_is_array(json_object_get(res, "key_changes")))
        changes->v = json_incref(json_object_get(res, "key_changes"));
    json_array_foreach(msgs, i, j)
    {
        kurer_message m;
        char *raw = NULL;
        int rc = rpc_message_from(j, &m, &raw);
        if (rc == 0) {
            changes_until(changes, m.received_at);
            show_message(me, &m);
            if (verbose)
                receipts_devices(&m);
            show_attachments_of(j);
        }
        rpc_free_wiped(raw, raw != NULL ? strlen(raw) + 1 : 0);
        if (rc != 0)
            return rc;
    }
    json_t *n = json_object_get(res, "next");
    *next = json_is_integer(n) ? json_integer_value(n) : -1;
    return 0;
}

int cmd_history(int argc, char **argv)
{
    static const kurer_opt opts[] = {{"help", 0, 0}, {"json", 0, 0},    {"home", V, 0},
                                     {"with", V, 0}, {"verbose", 0, 0}, {"group", V, 0}};
    kurer_args a;
    const char *home, *with, *group;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_history, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    with = opt(&a, "with");
    if (with != NULL && (rc = user_arg("--with", with)) != 0)
        return rc;
    if ((group = opt(&a, "group")) != NULL && (with != NULL || *group == '\0'))
        return usage_error("--group needs the group's id (kurer group list), and no --with");
    cli_target t;
    if ((rc = cli_open(home, &t)) != 0)
        return rc;
    change_list changes = {NULL, 0};
    long long next = 0;
    while (rc == 0 && next >= 0) { /* a page at a time: the daemon's answers stay bounded */
        json_t *params = json_pack("{s:I}", "offset", (json_int_t)next), *res = NULL;
        if (params != NULL && with != NULL)
            json_object_set_new(params, "with", json_string(with));
        if (params != NULL && group != NULL)
            json_object_set_new(params, "group", json_string(group));
        rc = params != NULL ? cli_run(&t, "history", params, &res)
                            : refuse(KURER_ENOMEM, "out of memory");
        if (rc == 0)
            rc = history_page(res, &changes, &next, flag(&a, "verbose"));
        json_decref(res);
    }
    if (rc == 0)
        changes_until(&changes, INT64_MAX);
    json_decref(changes.v);
    cli_close(&t);
    return rc;
}
