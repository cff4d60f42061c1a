/* Methods on messages: send, history, receive, flush_outbox (docs/client.md, "kurer daemon"). They
 * run in the daemon (on its workers) and in a command that opens the home itself; the command's
 * formatter prints their result (send.c, history.c, recv.c). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kurer/text.h"
#include "rpc.h"

int text_check(const char *t)
{
    size_t n = strlen(t);
    if (n == 0)
        return refuse(KURER_EINVAL, "the message text is empty");
    if (n > KURER_TEXT_MAX)
        return refuse(KURER_ELIMIT, "message too long: at most %d bytes (this one has %zu)",
                      KURER_TEXT_MAX, n);
    if (kurer_utf8_check(t) != 0)
        return refuse(KURER_EMALFORMED, "message text is not valid UTF-8");
    return 0;
}

/* KURER_TEST_HOLD=queued or queued-stop: stopped after the outbox commit (tests; a command's
 * own process only, never the daemon). */
static void test_hold(void)
{
    const char *hold = getenv(HOLD_ENV);
    if (hold != NULL && strcmp(hold, "queued") == 0) {
        printf("queued\n");
        fflush(stdout);
        fprintf(stderr, "kurer: holding after the outbox commit (test)\n");
        for (;;)
            pause();
    }
    if (hold != NULL && strcmp(hold, "queued-stop") == 0) {
        /* Stopped after the commit (SIGSTOP) so that a test can take the relay away before
         * the send; SIGCONT goes on. */
        printf("queued\n");
        fflush(stdout);
        raise(SIGSTOP);
    }
}

/* The relay out of reach and no session with the recipient: composing offline needs the
 * devices' keys, which only the relay has (docs/client.md, "Offline compose"). */
static void never_written(int rc, const char *to)
{
    net_error(rc, "not queued");
    char net[512];
    snprintf(net, sizeof(net), "%s", reason());
    refuse(rc,
           "%s; %s has not been written to from this device yet, and a first message needs the "
           "relay (for its devices' keys): nothing was queued",
           net, to);
}

#define SEND_FILES_MAX 32 /* attachments per message (docs/protocol.md 4.3) */

static const char *const send_params[] = {"to", "group", "level", "text", "timeout", "files", NULL};

/* params.files: 0..32 paths of files to attach (absolute: the daemon's folder is not the
 * caller's). */
static int send_files(json_t *params, const char **paths, size_t *n)
{
    json_t *files = json_object_get(params, "files"), *v;
    size_t i;
    *n = 0;
    if (files == NULL)
        return 0;
    if (!json_is_array(files) || json_array_size(files) == 0 ||
        json_array_size(files) > SEND_FILES_MAX)
        return refuse(KURER_EINVAL, "files must be an array of 1..32 absolute paths");
    json_array_foreach(files, i, v)
    {
        const char *p = json_string_value(v);
        if (p == NULL || p[0] != '/')
            return refuse(KURER_EINVAL, "files must be an array of 1..32 absolute paths");
        paths[(*n)++] = p;
    }
    return 0;
}

/* What a refused attachment is called (the file's path as given). */
int file_refused(int rc, size_t n)
{
    if (n == 0)
        return 0;
    if (rc == KURER_EQUOTA)
        return refuse(rc, "the relay refused the files: this device's blob quota there is used up");
    if (rc == KURER_ELIMIT)
        return refuse(rc, "the relay refused a file: larger than its blob_max_size");
    if (rc == KURER_ENOENT || rc == KURER_EPERM || rc == KURER_EIO)
        return refuse(rc, "cannot read a file to attach: %s", kurer_strerror(rc));
    if (rc == KURER_EINVAL)
        return refuse(rc, "cannot attach a file: not a regular file, or its name is not UTF-8 or "
                          "longer than 255 bytes");
    return 0;
}

/* send {to | group, level, text, timeout, files}: {to, level} (or {group, level}) once the
 * relay accepted it for every device; RC_QUEUED (data: queued, to or group, level, name,
 * message_id) when it is committed but not accepted. */
static int m_send(rpc_ctx *c, json_t *params, json_t **result)
{
    const char *to, *group, *lvs, *text, *paths[SEND_FILES_MAX];
    long long timeout;
    size_t n_files = 0;
    int level = KURER_LEVEL_UNCLASSIFIED, rc;
    if ((rc = rpc_only(params, send_params)) || (rc = rpc_str(params, "group", 0, &group)) ||
        (rc = rpc_str(params, "to", group == NULL, &to)) ||
        (rc = rpc_str(params, "level", 0, &lvs)) || (rc = rpc_str(params, "text", 1, &text)) ||
        (rc = rpc_int(params, "timeout", 86400, NET_TIMEOUT, &timeout)) ||
        (rc = send_files(params, paths, &n_files)))
        return rc;
    if ((group != NULL) == (to != NULL))
        return usage_error("send takes either 'to' or 'group'");
    if ((lvs != NULL && (rc = parse_level(lvs, &level)) != 0) ||
        ((n_files == 0 || text[0] != '\0') && (rc = text_check(text)) != 0))
        return rc;
    if (group != NULL)
        return is_enrolled(c->k)
                   ? rpc_group_send(c, group, level, text, paths, n_files, timeout, result)
                   : refuse(KURER_ESTATE, "this device is not enrolled yet");
    if ((rc = user_arg("to", to)) != 0)
        return rc;
    if (strcmp(to, kurer_own_user(c->k)) == 0)
        return refuse(KURER_EINVAL,
                      "you cannot send to yourself; your other devices get sync copies");
    if (!is_enrolled(c->k))
        return refuse(KURER_ESTATE,
                      "this device is not enrolled yet: import your certificate with kurer import "
                      "(the chain issued for %s; after kurer rekey, the new one)",
                      kurer_csr_path(c->k));
    kurer_refusal why;
    memset(&why, 0, sizeof(why));
    int64_t id = 0;
    rc = n_files > 0 ? kurer_queue_files(c->k, to, level, text, paths, n_files, (int)timeout * 1000,
                                         &why, &id)
                     : kurer_queue(c->k, to, level, text, (int)timeout * 1000, &why, &id);
    if (rc != 0 && file_refused(rc, n_files) != 0)
        return rc;
    int queued = rc == 0;
    if (queued) {
        if (c->local)
            test_hold();
        rc = kurer_send_queued(c->k, id, (int)timeout * 1000, &why);
    }
    if (rc == 0) {
        *result = json_pack("{s:s,s:s,s:I}", "to", to, "level", kurer_level_name(level),
                            "message_id", (json_int_t)id);
        return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
    }
    if (queued && transport_error(rc)) {
        net_error(rc, "sending");
        c->data = json_pack("{s:b,s:s,s:s,s:s,s:I}", "queued", 1, "to", to, "level",
                            kurer_level_name(level), "name", kurer_err_name(rc), "message_id",
                            (json_int_t)id);
        return RC_QUEUED;
    }
    if (transport_error(rc) && why.by == KURER_REFUSED_BY_RECIPIENT)
        never_written(rc, to);
    else if (explain(rc, &why, level, to) == 0)
        net_error(rc, "not sent");
    return rc;
}

typedef struct page {
    json_t *messages;
    long long skip, limit;
    size_t bytes;
    int more;
    kurer *k;
} page;

static int att_json(void *ud, const kurer_attachment_info *a)
{
    json_t *o = json_pack("{s:s,s:I,s:s,s:s}", "name", a->file_name, "size", (json_int_t)a->size,
                          "content_type", a->content_type, "saved", a->saved_path);
    return o != NULL && json_array_append_new(ud, o) == 0 ? 0 : KURER_ENOMEM;
}

/* A message's attachments (name, size, content_type, saved) as its "attachments" array. */
static int add_attachments(kurer *k, const kurer_message *m, json_t *j, size_t *bytes)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return KURER_ENOMEM;
    int rc = kurer_message_attachments(k, m->id, att_json, arr);
    if (rc == 0 && json_array_size(arr) > 0) {
        *bytes += json_array_size(arr) * (6 * 255 + 4096 + 200);
        if (json_object_set_new(j, "attachments", arr) != 0)
            rc = KURER_ENOMEM;
        return rc;
    }
    json_decref(arr);
    return rc;
}

static int page_row(void *ud, const kurer_message *m)
{
    page *p = ud;
    if (p->skip > 0) {
        p->skip--;
        return 0;
    }
    size_t size = 6 * strlen(m->body) + 300; /* at most, escaped */
    if ((long long)json_array_size(p->messages) >= p->limit ||
        (json_array_size(p->messages) > 0 && p->bytes + size > RPC_PAGE_BYTES)) {
        p->more = 1;
        return 1;
    }
    json_t *j = rpc_message_json(m);
    int rc = j != NULL ? add_attachments(p->k, m, j, &size) : KURER_ENOMEM;
    if (rc != 0) {
        json_decref(j);
        return rc;
    }
    if (json_array_append_new(p->messages, j) != 0)
        return KURER_ENOMEM;
    p->bytes += size;
    return 0;
}

static int keep_change(void *ud, const kurer_key_change *kc)
{
    json_t *j = rpc_key_change_json(kc);
    return j != NULL && json_array_append_new(ud, j) == 0 ? 0 : KURER_ENOMEM;
}

static const char *const history_params[] = {"with", "group", "offset", "limit", NULL};

/* history {with | group, offset, limit}: {me, messages, next, key_changes}: oldest first, a
 * page at a time (at most limit messages and about RPC_PAGE_BYTES); next is the offset of the
 * next page, or null; the first page (offset 0) carries the key changes too (with a group:
 * none). with: the one-to-one conversation only; group: that group's messages only. */
static int m_history(rpc_ctx *c, json_t *params, json_t **result)
{
    const char *with, *group;
    long long offset, limit;
    int rc;
    if ((rc = rpc_only(params, history_params)) || (rc = rpc_str(params, "with", 0, &with)) ||
        (rc = rpc_str(params, "group", 0, &group)) ||
        (rc = rpc_int(params, "offset", 1LL << 40, 0, &offset)) ||
        (rc = rpc_int(params, "limit", 1000, 1000, &limit)))
        return rc;
    if (with != NULL && (rc = user_arg("with", with)) != 0)
        return rc;
    if (with != NULL && group != NULL)
        return usage_error("history takes either 'with' or 'group', not both");
    page p = {json_array(), offset, limit > 0 ? limit : 1, 0, 0, c->k};
    if (p.messages == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    rc = group != NULL ? kurer_history_group(c->k, group, page_row, &p)
                       : kurer_history(c->k, with, page_row, &p);
    if (rc < 0) {
        json_decref(p.messages);
        if (rc == KURER_EUNKNOWNGROUP)
            return refuse(rc, "no group %s on this home (kurer group list)", group);
        if (rc == KURER_EINVAL && group != NULL)
            return refuse(rc, "%s names no single group: give more of its id", group);
        return refuse(rc, "cannot read the history: %s", kurer_strerror(rc));
    }
    json_t *next =
        p.more ? json_integer(offset + (long long)json_array_size(p.messages)) : json_null();
    *result = json_pack("{s:s,s:o,s:o}", "me", kurer_own_user(c->k), "messages", p.messages, "next",
                        next);
    if (*result == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    if (offset > 0)
        return 0;
    json_t *changes = json_array(); /* on the first page: every key change, oldest first */
    rc = changes == NULL ? KURER_ENOMEM
         : group != NULL ? 0
                         : kurer_key_changes(c->k, with, keep_change, changes);
    if (rc != 0) {
        json_decref(changes);
        json_decref(*result);
        *result = NULL;
        return refuse(rc, "cannot read the history: %s", kurer_strerror(rc));
    }
    json_object_set_new(*result, "key_changes", changes);
    return 0;
}

static const char *const receive_params[] = {"timeout", NULL};

/* receive {timeout}: {} once every message not yet reported has been given to the
 * subscribers (kurer_replay_wait) and the relay's queue is drained (kurer_poll until empty).
 * The messages themselves come as notifications to a subscription of this connection. */
static int m_receive(rpc_ctx *c, json_t *params, json_t **result)
{
    long long timeout;
    int rc;
    if ((rc = rpc_only(params, receive_params)) ||
        (rc = rpc_int(params, "timeout", 86400, NET_TIMEOUT, &timeout)))
        return rc;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = kurer_replay_wait(c->k, (int)timeout * 1000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long spent = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    long long left = timeout * 1000 - spent; /* one deadline for both waits */
    if (rc == 0)
        rc = left > 0 ? kurer_poll(c->k, (int)left, KURER_POLL_UNTIL_EMPTY) : KURER_ETIMEOUT;
    if (rc != 0)
        return net_error(rc, "receiving stopped");
    *result = json_object();
    return 0;
}

static const char *const flush_params[] = {"timeout", NULL};

/* flush_outbox {timeout}: {outbox} (the items left) once everything in the outbox was sent
 * (kurer_flush); a transport error is -32000 and the items stay for a later connection. */
static int m_flush_outbox(rpc_ctx *c, json_t *params, json_t **result)
{
    long long timeout;
    int rc;
    if ((rc = rpc_only(params, flush_params)) ||
        (rc = rpc_int(params, "timeout", 86400, NET_TIMEOUT, &timeout)))
        return rc;
    if ((rc = kurer_flush(c->k, (int)timeout * 1000)) != 0)
        return net_error(rc, "the outbox was not sent");
    *result = json_pack("{s:i}", "outbox", kurer_outbox_size(c->k));
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

const rpc_method rpc_messages_methods[] = {
    {"send", m_send},       {"history", m_history},
    {"receive", m_receive}, {"flush_outbox", m_flush_outbox},
    {NULL, NULL},
};
