/* kurer recv through the daemon: a subscription instead of a connection of its own. The lines
 * printed and the exit status are those of recv on the home itself (recv.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kurer/text.h"
#include "rpc.h"

typedef struct note_ctx {
    char me[KURER_SUBJECT_MAX + 1];
    int said_lost;
    int err; /* a message the daemon sent that could not be read */
} note_ctx;

static void on_note(void *ud, const char *method, json_t *params)
{
    note_ctx *n = ud;
    if (strcmp(method, "message") == 0) {
        kurer_message m;
        char *raw = NULL;
        if (rpc_message_from(params, &m, &raw) == 0)
            show_message(n->me, &m);
        else
            n->err = KURER_EMALFORMED;
        rpc_free_wiped(raw, raw != NULL ? strlen(raw) + 1 : 0);
    } else if (strcmp(method, "key_change") == 0) {
        key_change_note(NULL, method, params);
    } else if (strcmp(method, "refused") == 0) {
        const char *from = json_string_value(json_object_get(params, "from"));
        const char *name = json_string_value(json_object_get(params, "name"));
        json_int_t dev = json_integer_value(json_object_get(params, "device"));
        char who[KURER_TEXT_TERM_MAX(KURER_SUBJECT_MAX)];
        fprintf(stderr, "kurer: dropped a message from %s device %u: %s\n",
                kurer_text_term(who, sizeof(who), from != NULL ? from : "?"), (unsigned)dev,
                kurer_strerror(name != NULL ? rpc_err_code(name) : KURER_EIO));
    } else if (strcmp(method, "state") == 0) {
        const char *st = json_string_value(json_object_get(params, "state"));
        const char *why = json_string_value(json_object_get(params, "reason"));
        if (st != NULL && (strcmp(st, "waiting") == 0 || strcmp(st, "offline") == 0) &&
            !n->said_lost) {
            net_error(why != NULL && why[0] ? rpc_err_code(why) : KURER_ECLOSED,
                      "connection to the relay lost");
            fprintf(stderr, "kurer: %s; reconnecting until the wait ends\n", reason());
            clear_reason();
            n->said_lost = 1;
        }
    }
}

/* recv --wait: connected at the end (the daemon's status) or why not. */
static int connected_at_end(cli_target *t)
{
    json_t *res = NULL;
    int rc = cli_run(t, "status", json_object(), &res);
    if (rc == 0) {
        const char *st = json_string_value(json_object_get(res, "state"));
        const char *why = json_string_value(json_object_get(res, "reason"));
        if (st == NULL || strcmp(st, "online") != 0)
            rc = why != NULL && why[0] ? rpc_err_code(why) : KURER_ECLOSED;
    }
    json_decref(res);
    return rc;
}

int recv_daemon(cli_target *daemon, int wait)
{
    note_ctx n;
    memset(&n, 0, sizeof(n));
    cli_target sub = *daemon; /* the same socket, with this call's notifications */
    cli_target *t = &sub;
    sub.on_note = on_note;
    sub.ud = &n;
    json_t *res = NULL;
    json_t *params =
        wait > 0 ? json_pack("{s:[s,s,s,s]}", "events", "message", "refused", "key_change", "state")
                 : json_pack("{s:[s,s,s]}", "events", "message", "refused", "key_change");
    int rc = cli_run(t, "subscribe", params, &res);
    if (rc == 0)
        snprintf(n.me, sizeof(n.me), "%s", json_string_value(json_object_get(res, "me")));
    json_decref(res);
    if (rc == 0 && wait > 0) {
        /* Already without the relay when the wait begins: said now, as recv says it. */
        static char relay[256]; /* for what is said here: the daemon's relay */
        json_t *st = NULL;
        if (cli_run(t, "status", json_object(), &st) == 0) {
            const char *r = json_string_value(json_object_get(st, "relay"));
            if (r != NULL) {
                snprintf(relay, sizeof(relay), "%s", r);
                g_relay = relay;
            }
            on_note(&n, "state", st);
        }
        json_decref(st);
        clear_reason();
        rc = remote_wait(t->fd, wait * 1000, on_note, &n);
        if (rc == KURER_ECLOSED)
            refuse(rc, "receiving stopped: the daemon holding the home stopped");
        if (rc == 0)
            rc = connected_at_end(t);
        if (rc != 0 && reason()[0] == '\0')
            net_error(rc, "receiving stopped");
    } else if (rc == 0) {
        res = NULL;
        rc = cli_run(t, "receive", json_pack("{s:i}", "timeout", NET_TIMEOUT), &res);
        json_decref(res);
    }
    if (rc == 0 && n.err != 0)
        rc = refuse(n.err, "the daemon sent a malformed message");
    return rc;
}
