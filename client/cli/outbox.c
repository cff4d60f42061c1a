/* kurer outbox: what waits to be sent (or failed for good), and retry or cancel of one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "kurer/util.h"

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

static const char *state_word(kurer_message_state s)
{
    return s == KURER_MESSAGE_PENDING ? "pending" : "failed";
}

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

/* Why a message failed, in words ("" when it did not). */
static void entry_reason(const kurer_outbox_entry *e, char *out, size_t n)
{
    out[0] = '\0';
    if (e->state != KURER_MESSAGE_FAILED)
        return;
    if (!describe(e->reason, &e->why, e->level, e->to, out, n))
        snprintf(out, n, "%s", kurer_strerror(e->reason));
}

static void entry_json(kurer_json *j, const kurer_outbox_entry *e)
{
    char t[64], why[512];
    entry_reason(e, why, sizeof(why));
    kurer_json_begin_object(j);
    kurer_json_kv_int(j, "id", e->message_id);
    kurer_json_kv_str(j, "to", e->to);
    kurer_json_kv_str(j, "level", kurer_level_name(e->level));
    kurer_json_kv_str(j, "state", state_word(e->state));
    if (e->state == KURER_MESSAGE_FAILED) {
        kurer_json_kv_str(j, "reason", why);
        kurer_json_kv_str(j, "code", kurer_err_name(e->reason));
        if (e->reason == KURER_ELIMIT && e->why.limit > 0)
            kurer_json_kv_int(j, "limit", e->why.limit);
    }
    kurer_json_kv_str(j, "created_at", fmt_ms(t, sizeof(t), e->created_at));
    kurer_json_kv_int(j, "age_s", (int64_t)time(NULL) - e->created_at / 1000);
    kurer_json_kv_uint(j, "devices", e->devices);
    kurer_json_kv_uint(j, "attempts", e->attempts);
    if (e->next_attempt_at != 0)
        kurer_json_kv_str(j, "next_attempt_at", fmt_ms(t, sizeof(t), e->next_attempt_at));
    kurer_json_kv_bool(j, "accepted", e->accepted);
    kurer_json_end_object(j);
}

static int list_row(void *ud, const kurer_outbox_entry *e)
{
    size_t *n = ud;
    char age[32], why[512];
    if (g_json)
        return 0;
    if ((*n)++ == 0)
        printf("%-6s %-28s %-13s %-8s %-5s %s\n", "ID", "TO", "LEVEL", "STATE", "AGE", "REASON");
    fmt_age(age, sizeof(age), e->created_at);
    entry_reason(e, why, sizeof(why));
    if (e->state == KURER_MESSAGE_PENDING)
        snprintf(why, sizeof(why), "%u device%s, %u attempt%s", e->devices,
                 e->devices == 1 ? "" : "s", e->attempts, e->attempts == 1 ? "" : "s");
    printf("%-6lld %-28s %-13s %-8s %-5s %s\n", (long long)e->message_id, e->to,
           kurer_level_name(e->level), state_word(e->state), age, why);
    return 0;
}

static int json_row(void *ud, const kurer_outbox_entry *e)
{
    entry_json(ud, e);
    return 0;
}

static int list(kurer *k)
{
    size_t n = 0;
    int rc = kurer_outbox_list(k, list_row, &n);
    if (rc == 0 && g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_key(&o.j, "messages");
        kurer_json_begin_array(&o.j);
        rc = kurer_outbox_list(k, json_row, &o.j);
        kurer_json_end_array(&o.j);
        jline_end(&o);
    } else if (rc == 0 && n == 0) {
        printf("the outbox is empty\n");
    }
    return rc != 0 ? refuse(rc, "cannot read the outbox: %s", kurer_strerror(rc)) : 0;
}

typedef struct find_ctx {
    int64_t id;
    int found;
    kurer_outbox_entry e;
    char to[KURER_SUBJECT_MAX + 1];
} find_ctx;

static int find_row(void *ud, const kurer_outbox_entry *e)
{
    find_ctx *f = ud;
    if (e->message_id != f->id)
        return 0;
    f->found = 1;
    f->e = *e;
    snprintf(f->to, sizeof(f->to), "%s", e->to);
    f->e.to = f->to;
    return 1;
}

static void done_json(const char *action, int64_t id, const char *to)
{
    jline o;
    jline_ok(&o);
    kurer_json_kv_str(&o.j, "action", action);
    kurer_json_kv_int(&o.j, "id", id);
    kurer_json_kv_str(&o.j, "to", to);
    jline_end(&o);
}

static int retry(kurer *k, const find_ctx *f, int timeout)
{
    kurer_refusal why;
    int rc = kurer_outbox_retry(k, f->id, timeout * 1000, &why);
    kurer_disconnect(k);
    if (rc == 0) {
        if (g_json)
            done_json("retry", f->id, f->to);
        else
            printf("sent to %s [%s] (message %lld)\n", f->to, kurer_level_name(f->e.level),
                   (long long)f->id);
        return 0;
    }
    if (transport_error(rc)) {
        net_error(rc, "retry");
        fprintf(stderr, "kurer: message %lld still queued (%s): it goes with the next connection\n",
                (long long)f->id, reason());
        clear_reason();
        return RC_QUEUED;
    }
    if (explain(rc, &why, f->e.level, f->to) == 0)
        net_error(rc, "not sent");
    return rc;
}

static int cancel(kurer *k, const find_ctx *f, int timeout)
{
    int rc = kurer_outbox_cancel(k, f->id, timeout * 1000);
    if (rc == KURER_ESTATE)
        return refuse(rc,
                      "message %lld was accepted by the relay already (for at least one "
                      "recipient): it cannot be cancelled",
                      (long long)f->id);
    if (rc != 0)
        return refuse(rc, "cannot cancel message %lld: %s", (long long)f->id, kurer_strerror(rc));
    if (g_json)
        done_json("cancel", f->id, f->to);
    else
        printf("cancelled message %lld to %s: it will not be sent\n", (long long)f->id, f->to);
    return 0;
}

static int act(kurer *k, const char *action, const char *id_s, int timeout)
{
    find_ctx f;
    uint64_t id = 0;
    memset(&f, 0, sizeof(f));
    if (kurer_parse_u64(id_s, INT64_MAX, &id) != 0 || id == 0)
        return usage_error("%s needs a message id from kurer outbox (a number), not '%s'", action,
                           id_s);
    f.id = (int64_t)id;
    int rc = kurer_outbox_list(k, find_row, &f);
    if (rc != 0 && rc != 1)
        return refuse(rc, "cannot read the outbox: %s", kurer_strerror(rc));
    if (!f.found) {
        /* Not open: the library says whether it was accepted (KURER_ESTATE) or never was. */
        rc = strcmp(action, "retry") == 0 ? kurer_outbox_retry(k, f.id, timeout * 1000, NULL)
                                          : kurer_outbox_cancel(k, f.id, timeout * 1000);
        if (rc == KURER_ESTATE)
            return refuse(rc, "message %s was accepted by the relay already: it cannot be %s", id_s,
                          strcmp(action, "retry") == 0 ? "sent again" : "cancelled");
        if (rc == 0 || rc == KURER_ECANCELLED) /* cancelled before: nothing left to do */
            return refuse(KURER_ECANCELLED, "message %s was cancelled", id_s);
        return refuse(KURER_ENOTFOUND, "no message %s in the outbox (kurer outbox lists them)",
                      id_s);
    }
    return strcmp(action, "retry") == 0 ? retry(k, &f, timeout) : cancel(k, &f, timeout);
}

int cmd_outbox(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"timeout", V, 0}};
    kurer_args a;
    const char *home;
    kurer *k = NULL;
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
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    rc = a.npos == 0 ? list(k) : act(k, a.pos[0], a.pos[1], timeout);
    kurer_close(k);
    return rc;
}
