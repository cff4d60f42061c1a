/* kurer outbox: what waits to be sent (or failed for good), and retry or cancel of one: the
 * methods outbox, outbox_retry and outbox_cancel (rpc_day.c), here or in the daemon, and their
 * results printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kurer/util.h"
#include "rpc.h"

static const char help_outbox[] =
    "usage: kurer outbox --home H [--json]\n"
    "       kurer outbox --home H retry ID [--timeout S] [--json]\n"
    "       kurer outbox --home H cancel ID [--json]\n"
    "\n"
    "Lists the outgoing messages the relay has not accepted: id, recipient, level, state, age\n"
    "and, for a failed one, why. A pending message is sent again by every connection (kurer\n"
    "recv, kurer send) with backoff; a failed one was refused for good (too large for the\n"
    "devices it goes to, unknown user, a classification level or certificate that does not\n"
    "allow it) and is not retried until you say so.\n"
    "\n"
    "  retry ID      send message ID now: a pending one at once, a failed one checked and\n"
    "                encrypted again for the devices now (exit 0 accepted, 1 refused, 3 still\n"
    "                queued: the relay cannot be reached)\n"
    "  cancel ID     take message ID out of the outbox for good (the history shows it as\n"
    "                failed: cancelled); refused once the relay has accepted it for anyone\n"
    "  --timeout S   give up after S seconds (default 30)\n"
    "  --json        print the result as one JSON object\n";

static void fmt_age(char *out, size_t n, int64_t created_ms)
{
    int64_t s = (int64_t)time(NULL) - created_ms / 1000;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(out, n, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(out, n, "%lldm", (long long)(s / 60));
    else if (s < 172800)
        snprintf(out, n, "%lldh", (long long)(s / 3600));
    else
        snprintf(out, n, "%lldd", (long long)(s / 86400));
}

/* One entry of the method's result (the strings point into it). */
typedef struct entry {
    long long id, created_at, devices, attempts, next_attempt_at, limit;
    const char *to, *level, *state, *why, *code;
    int accepted, failed;
} entry;

static const char *str_of(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

static long long int_of(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static void entry_from(json_t *o, entry *e)
{
    e->id = int_of(o, "message_id");
    e->created_at = int_of(o, "created_at");
    e->devices = int_of(o, "devices");
    e->attempts = int_of(o, "attempts");
    e->next_attempt_at = int_of(o, "next_attempt_at");
    e->limit = int_of(o, "limit");
    e->to = str_of(o, "to");
    e->level = str_of(o, "level");
    e->state = str_of(o, "state");
    e->why = str_of(o, "why");
    e->code = str_of(o, "reason");
    e->accepted = json_is_true(json_object_get(o, "accepted"));
    e->failed = strcmp(e->state, "failed") == 0;
}

static void entry_json(kurer_json *j, const entry *e)
{
    char t[64];
    kurer_json_begin_object(j);
    kurer_json_kv_int(j, "id", e->id);
    kurer_json_kv_str(j, "to", e->to);
    kurer_json_kv_str(j, "level", e->level);
    kurer_json_kv_str(j, "state", e->state);
    if (e->failed) {
        kurer_json_kv_str(j, "reason", e->why);
        kurer_json_kv_str(j, "code", e->code);
        if (strcmp(e->code, "ELIMIT") == 0 && e->limit > 0)
            kurer_json_kv_int(j, "limit", e->limit);
    }
    kurer_json_kv_str(j, "created_at", fmt_ms(t, sizeof(t), e->created_at));
    kurer_json_kv_int(j, "age_s", (int64_t)time(NULL) - e->created_at / 1000);
    kurer_json_kv_uint(j, "devices", (uint64_t)e->devices);
    kurer_json_kv_uint(j, "attempts", (uint64_t)e->attempts);
    if (e->next_attempt_at != 0)
        kurer_json_kv_str(j, "next_attempt_at", fmt_ms(t, sizeof(t), e->next_attempt_at));
    kurer_json_kv_bool(j, "accepted", e->accepted);
    kurer_json_end_object(j);
}

static void entry_line(size_t i, const entry *e)
{
    char age[32], why[512];
    if (i == 0)
        printf("%-6s %-28s %-13s %-8s %-5s %s\n", "ID", "TO", "LEVEL", "STATE", "AGE", "REASON");
    fmt_age(age, sizeof(age), e->created_at);
    if (e->failed)
        snprintf(why, sizeof(why), "%s", e->why);
    else
        snprintf(why, sizeof(why), "%lld device%s, %lld attempt%s", e->devices,
                 e->devices == 1 ? "" : "s", e->attempts, e->attempts == 1 ? "" : "s");
    printf("%-6lld %-28s %-13s %-8s %-5s %s\n", e->id, e->to, e->level, e->state, age, why);
}

static int list(cli_target *t)
{
    json_t *res = NULL;
    int rc = cli_run(t, "outbox", json_object(), &res);
    json_t *v = json_object_get(res, "outbox"), *o;
    size_t i;
    if (rc == 0 && !json_is_array(v))
        rc = refuse(KURER_EMALFORMED, "cannot read the outbox: a malformed answer");
    if (rc != 0) {
        json_decref(res);
        return rc;
    }
    jline out;
    if (g_json) {
        jline_ok(&out);
        kurer_json_key(&out.j, "messages");
        kurer_json_begin_array(&out.j);
    }
    json_array_foreach(v, i, o)
    {
        entry e;
        entry_from(o, &e);
        if (g_json)
            entry_json(&out.j, &e);
        else
            entry_line(i, &e);
    }
    if (g_json) {
        kurer_json_end_array(&out.j);
        jline_end(&out);
    } else if (json_array_size(v) == 0) {
        printf("the outbox is empty\n");
    }
    if (json_is_true(json_object_get(res, "truncated")))
        fprintf(stderr, "kurer: the outbox holds more: the oldest %zu are shown\n",
                json_array_size(v));
    json_decref(res);
    return 0;
}

static void done_json(const char *action, long long id, const char *to)
{
    jline o;
    jline_ok(&o);
    kurer_json_kv_str(&o.j, "action", action);
    kurer_json_kv_int(&o.j, "id", id);
    kurer_json_kv_str(&o.j, "to", to);
    jline_end(&o);
}

static int act(cli_target *t, const char *action, const char *id_s, int timeout)
{
    uint64_t id = 0;
    int retry = strcmp(action, "retry") == 0;
    if (kurer_parse_u64(id_s, INT64_MAX, &id) != 0 || id == 0)
        return usage_error("%s needs a message id from kurer outbox (a number), not '%s'", action,
                           id_s);
    json_t *res = NULL;
    int rc =
        cli_run(t, retry ? "outbox_retry" : "outbox_cancel",
                json_pack("{s:I,s:i}", "message_id", (json_int_t)id, "timeout", timeout), &res);
    const char *to = str_of(res, "to");
    if (rc == RC_QUEUED) {
        fprintf(stderr, "kurer: message %llu still queued (%s): it goes with the next connection\n",
                (unsigned long long)id, reason());
        clear_reason();
    } else if (rc == 0 && g_json) {
        done_json(action, (long long)id, to);
    } else if (rc == 0 && retry) {
        printf("sent to %s [%s] (message %llu)\n", to, str_of(res, "level"),
               (unsigned long long)id);
    } else if (rc == 0) {
        printf("cancelled message %llu to %s: it will not be sent\n", (unsigned long long)id, to);
    }
    json_decref(res);
    return rc;
}

int cmd_outbox(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"timeout", V, 0}};
    kurer_args a;
    const char *home;
    int rc, timeout = NET_TIMEOUT;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 2, "ACTION ID", help_outbox, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) != 0 ||
        (rc = opt_seconds(&a, "timeout", NET_TIMEOUT, &timeout)) != 0)
        return rc;
    if (a.npos >= 1 && strcmp(a.pos[0], "retry") != 0 && strcmp(a.pos[0], "cancel") != 0)
        return usage_error("unknown outbox action '%s' (retry ID or cancel ID)", a.pos[0]);
    if (a.npos == 1)
        return usage_error("%s needs the message id (kurer outbox lists them)", a.pos[0]);
    uint64_t id = 0;
    if (a.npos == 2 && (kurer_parse_u64(a.pos[1], INT64_MAX, &id) != 0 || id == 0))
        return usage_error("%s needs a message id from kurer outbox (a number), not '%s'", a.pos[0],
                           a.pos[1]);
    cli_target t;
    if ((rc = cli_open(home, &t)) != 0)
        return rc;
    rc = a.npos == 0 ? list(&t) : act(&t, a.pos[0], a.pos[1], timeout);
    cli_close(&t);
    return rc;
}
