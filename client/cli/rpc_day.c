/* Methods on the outbox, contacts and conversations (issue 16, items 4 and 6): outbox,
 * outbox_retry, outbox_cancel, contacts, conversations (docs/client.md, "kurer daemon"). */
#include <stdio.h>
#include <string.h>

#include "rpc.h"

#define LIST_MAX 1000 /* entries in one answer; "truncated" says there were more */

static const char *state_name(kurer_message_state s)
{
    return s == KURER_MESSAGE_FAILED ? "failed" : "pending";
}

typedef struct list_ctx {
    json_t *v;
    int truncated;
} list_ctx;

static int add(list_ctx *l, json_t *j)
{
    if (json_array_size(l->v) >= LIST_MAX) {
        json_decref(j);
        l->truncated = 1;
        return 1;
    }
    return j != NULL && json_array_append_new(l->v, j) == 0 ? 0 : KURER_ENOMEM;
}

static int outbox_row(void *ud, const kurer_outbox_entry *e)
{
    json_t *j =
        json_pack("{s:I,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:b}", "message_id", (json_int_t)e->message_id,
                  "to", e->to, "level", kurer_level_name(e->level), "state", state_name(e->state),
                  "created_at", (json_int_t)e->created_at, "devices", (json_int_t)e->devices,
                  "attempts", (json_int_t)e->attempts, "next_attempt_at",
                  (json_int_t)e->next_attempt_at, "accepted", e->accepted);
    if (j != NULL && e->state == KURER_MESSAGE_FAILED) {
        char why[512];
        if (!describe(e->reason, &e->why, e->level, e->to, why, sizeof(why)))
            snprintf(why, sizeof(why), "%s", kurer_strerror(e->reason));
        json_object_set_new(j, "reason", json_string(kurer_err_name(e->reason)));
        json_object_set_new(j, "why", json_string(why));
        if (e->reason == KURER_ELIMIT && e->why.limit > 0)
            json_object_set_new(j, "limit", json_integer((json_int_t)e->why.limit));
    }
    return add(ud, j);
}

static int contact_row(void *ud, const kurer_contact *c)
{
    return add(ud, json_pack("{s:s,s:I,s:I,s:I}", "user", c->user, "devices",
                             (json_int_t)c->devices, "last_contact", (json_int_t)c->last_contact,
                             "messages", (json_int_t)c->messages));
}

static int conversation_row(void *ud, const kurer_conversation *c)
{
    return add(ud, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "peer", c->peer, "last_at",
                             (json_int_t)c->last_at, "messages", (json_int_t)c->messages,
                             "received", (json_int_t)c->received, "quarantined",
                             (json_int_t)c->quarantined, "sent", (json_int_t)c->sent, "pending",
                             (json_int_t)c->pending, "failed", (json_int_t)c->failed));
}

static int device_row(void *ud, const kurer_peer_device *d)
{
    json_t *j = json_pack(
        "{s:I,s:I,s:s,s:s,s:s}", "device", (json_int_t)d->device_id, "serial",
        (json_int_t)d->serial, "clearance", d->clearance ? kurer_level_name(d->clearance) : "",
        "authority", d->authority, "status", d->status == 0 ? "valid" : kurer_err_name(d->status));
    return j != NULL && json_array_append_new(ud, j) == 0 ? 0 : KURER_ENOMEM;
}

/* Each contact's device certificates, as kurer contacts shows them (after the list: not from
 * inside kurer_contacts' callback). */
static int contact_devices(kurer *k, json_t *contacts)
{
    size_t i;
    json_t *c;
    json_array_foreach(contacts, i, c)
    {
        json_t *d = json_array();
        int rc = d != NULL ? kurer_peer_devices(k, json_string_value(json_object_get(c, "user")),
                                                device_row, d)
                           : KURER_ENOMEM;
        if (rc != 0) {
            json_decref(d);
            return rc;
        }
        json_object_set_new(c, "certificates", d);
    }
    return 0;
}

static const char *const no_params[] = {NULL};

/* One list: {key: [...], truncated}. */
static int list(rpc_ctx *c, json_t *params, json_t **result, const char *key, int which)
{
    int rc = rpc_only(params, no_params);
    if (rc != 0)
        return rc;
    list_ctx l = {json_array(), 0};
    if (l.v == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    rc = which == 0   ? kurer_outbox_list(c->k, outbox_row, &l)
         : which == 1 ? kurer_contacts(c->k, contact_row, &l)
                      : kurer_conversations(c->k, conversation_row, &l);
    if (rc >= 0 && which == 1)
        rc = contact_devices(c->k, l.v);
    if (rc < 0) {
        json_decref(l.v);
        return refuse(rc, "cannot read the %s: %s", key, kurer_strerror(rc));
    }
    *result = json_pack("{s:o,s:b}", key, l.v, "truncated", l.truncated);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

/* outbox {}: {outbox: [{message_id, to, level, state, reason, created_at, devices, attempts,
 * next_attempt_at, accepted}], truncated}: what waits (pending) or failed, oldest first. */
static int m_outbox(rpc_ctx *c, json_t *params, json_t **result)
{
    return list(c, params, result, "outbox", 0);
}

/* contacts {}: {contacts: [{user, devices, last_contact, messages, certificates: [{device,
 * serial, clearance, authority, status}]}], truncated}. */
static int m_contacts(rpc_ctx *c, json_t *params, json_t **result)
{
    return list(c, params, result, "contacts", 1);
}

/* conversations {}: {conversations: [{peer, last_at, messages, received, quarantined, sent,
 * pending, failed}], truncated}: the most recent first. */
static int m_conversations(rpc_ctx *c, json_t *params, json_t **result)
{
    return list(c, params, result, "conversations", 2);
}

static const char *const id_params[] = {"message_id", "timeout", NULL};

static int message_param(json_t *params, long long *id, long long *timeout)
{
    int rc;
    if ((rc = rpc_only(params, id_params)) ||
        (rc = rpc_int(params, "message_id", 1LL << 53, 0, id)) ||
        (rc = rpc_int(params, "timeout", 86400, NET_TIMEOUT, timeout)))
        return rc;
    if (*id <= 0)
        return usage_error("missing parameter 'message_id' (a positive integer)");
    return 0;
}

/* The outbox entry of a message (its recipient and level, for the words of a refusal). */
typedef struct find_ctx {
    int64_t id;
    int found;
    int level;
    char to[KURER_SUBJECT_MAX + 1];
} find_ctx;

static int find_row(void *ud, const kurer_outbox_entry *e)
{
    find_ctx *f = ud;
    if (e->message_id != f->id)
        return 0;
    f->found = 1;
    f->level = e->level;
    snprintf(f->to, sizeof(f->to), "%s", e->to);
    return 1;
}

/* Finds id in the outbox (0 with f->found), or says why a message that is not there cannot
 * be retried or cancelled (what the library says of it: accepted, cancelled, never was). */
static int find_open(kurer *k, long long id, int retry, int timeout_ms, find_ctx *f)
{
    memset(f, 0, sizeof(*f));
    f->id = id;
    int rc = kurer_outbox_list(k, find_row, f);
    if (rc != 0 && rc != 1)
        return refuse(rc, "cannot read the outbox: %s", kurer_strerror(rc));
    if (f->found)
        return 0;
    rc = retry ? kurer_outbox_retry(k, id, timeout_ms, NULL)
               : kurer_outbox_cancel(k, id, timeout_ms);
    if (rc == KURER_ESTATE)
        return refuse(rc, "message %lld was accepted by the relay already: it cannot be %s", id,
                      retry ? "sent again" : "cancelled");
    if (rc == 0 || rc == KURER_ECANCELLED) /* cancelled before: nothing left to do */
        return refuse(KURER_ECANCELLED, "message %lld was cancelled", id);
    return refuse(KURER_ENOTFOUND, "no message %lld in the outbox (kurer outbox lists them)", id);
}

/* outbox_retry {message_id, timeout}: {message_id, to, level} once the relay accepted it;
 * -32001 when it stays pending (a transport error); -32000 when it is refused again, or is not
 * in the outbox (ENOTFOUND; ESTATE accepted already; ECANCELLED). */
static int m_outbox_retry(rpc_ctx *c, json_t *params, json_t **result)
{
    long long id, timeout;
    find_ctx f;
    int rc = message_param(params, &id, &timeout);
    if (rc != 0 || (rc = find_open(c->k, id, 1, (int)timeout * 1000, &f)) != 0)
        return rc;
    kurer_refusal why;
    memset(&why, 0, sizeof(why));
    rc = kurer_outbox_retry(c->k, id, (int)timeout * 1000, &why);
    if (rc == 0) {
        *result = json_pack("{s:I,s:s,s:s}", "message_id", (json_int_t)id, "to", f.to, "level",
                            kurer_level_name(f.level));
        return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
    }
    if (transport_error(rc)) {
        net_error(rc, "retry");
        c->data = json_pack("{s:b,s:s,s:I,s:s}", "queued", 1, "name", kurer_err_name(rc),
                            "message_id", (json_int_t)id, "to", f.to);
        return RC_QUEUED;
    }
    if (explain(rc, &why, f.level, f.to) == 0)
        net_error(rc, "not sent");
    return rc;
}

/* outbox_cancel {message_id, timeout}: {message_id, to} once it is out of the outbox for good;
 * -32000 ESTATE once the relay accepted it for anyone, ENOTFOUND, ECANCELLED. */
static int m_outbox_cancel(rpc_ctx *c, json_t *params, json_t **result)
{
    long long id, timeout;
    find_ctx f;
    int rc = message_param(params, &id, &timeout);
    if (rc != 0 || (rc = find_open(c->k, id, 0, (int)timeout * 1000, &f)) != 0)
        return rc;
    rc = kurer_outbox_cancel(c->k, id, (int)timeout * 1000);
    if (rc == KURER_ESTATE)
        return refuse(rc,
                      "message %lld was accepted by the relay already (for at least one "
                      "recipient): it cannot be cancelled",
                      id);
    if (rc != 0)
        return refuse(rc, "cannot cancel message %lld: %s", id, kurer_strerror(rc));
    *result = json_pack("{s:I,s:s}", "message_id", (json_int_t)id, "to", f.to);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

const rpc_method rpc_day_methods[] = {
    {"outbox", m_outbox},
    {"outbox_retry", m_outbox_retry},
    {"outbox_cancel", m_outbox_cancel},
    {"contacts", m_contacts},
    {"conversations", m_conversations},
    {NULL, NULL},
};
