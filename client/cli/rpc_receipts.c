/* Receipts and disappearing messages over JSON-RPC (docs/client.md, "kurer daemon"): the
 * methods read and timer, and a message's timer and receipts as JSON members (history,
 * receive). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

#define READ_TS_MAX 4096 /* sent_at values in one read request (the library's bound) */
#define ROWS_MAX    (2 * 32)

int rpc_receipts_json(const kurer_message *m, json_t *o)
{
    int bad = 0;
    if (m->expire_timer != 0 || m->timer_change) {
        bad |= json_object_set_new(o, "expire_timer", json_integer(m->expire_timer));
        bad |= json_object_set_new(o, "expires_at", json_integer(m->expires_at));
    }
    if (m->timer_change)
        bad |= json_object_set_new(o, "timer_change", json_true());
    if (m->read_at != 0)
        bad |= json_object_set_new(o, "read_at", json_integer(m->read_at));
    if (m->group_members > 0)
        bad |= json_object_set_new(o, "members", json_integer(m->group_members));
    if (m->delivered_devices == 0)
        return bad ? KURER_ENOMEM : 0;
    json_t *devs = json_array();
    for (size_t i = 0; devs != NULL && i < m->n_receipts; i++) {
        const kurer_message_receipt *r = &m->receipts[i];
        bad |= json_array_append_new(devs, json_pack("{s:s,s:I,s:I,s:I}", "user", r->user, "device",
                                                     (json_int_t)r->device_id, "delivered_at",
                                                     (json_int_t)r->delivered_at, "read_at",
                                                     (json_int_t)r->read_at));
    }
    json_t *rc =
        json_pack("{s:I,s:I,s:I,s:I,s:o}", "delivered_devices", (json_int_t)m->delivered_devices,
                  "read_devices", (json_int_t)m->read_devices, "delivered_users",
                  (json_int_t)m->delivered_users, "read_users", (json_int_t)m->read_users,
                  "devices", devs != NULL ? devs : json_array());
    if (rc == NULL)
        return KURER_ENOMEM;
    return bad | json_object_set_new(o, "receipts", rc) ? KURER_ENOMEM : 0;
}

static _Thread_local kurer_message_receipt rows[ROWS_MAX];

int rpc_receipts_from(json_t *j, kurer_message *m)
{
    json_t *v;
    if ((v = json_object_get(j, "expire_timer")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > KURER_TIMER_MAX)
            return KURER_EMALFORMED;
        m->expire_timer = (uint32_t)json_integer_value(v);
    }
    m->expires_at = json_integer_value(json_object_get(j, "expires_at"));
    m->read_at = json_integer_value(json_object_get(j, "read_at"));
    m->timer_change = json_is_true(json_object_get(j, "timer_change"));
    json_int_t members = json_integer_value(json_object_get(j, "members"));
    if (members < 0 || members > UINT32_MAX)
        return KURER_EMALFORMED;
    m->group_members = (uint32_t)members;
    json_t *r = json_object_get(j, "receipts");
    if (r == NULL)
        return 0;
    json_int_t dd = 0, rd = 0, du = 0, ru = 0;
    json_t *devs = NULL;
    if (json_unpack(r, "{s:I,s:I,s:I,s:I,s:o}", "delivered_devices", &dd, "read_devices", &rd,
                    "delivered_users", &du, "read_users", &ru, "devices", &devs) != 0 ||
        !json_is_array(devs) || dd < 0 || rd < 0 || du < 0 || ru < 0 || dd > UINT32_MAX ||
        rd > UINT32_MAX || du > UINT32_MAX || ru > UINT32_MAX)
        return KURER_EMALFORMED;
    m->delivered_devices = (uint32_t)dd;
    m->read_devices = (uint32_t)rd;
    m->delivered_users = (uint32_t)du;
    m->read_users = (uint32_t)ru;
    size_t i;
    json_t *d;
    m->n_receipts = 0;
    json_array_foreach(devs, i, d)
    {
        json_int_t dev = 0, da = 0, ra = 0;
        const char *user = NULL;
        if (m->n_receipts >= ROWS_MAX)
            break;
        if (json_unpack(d, "{s:s,s:I,s:I,s:I}", "user", &user, "device", &dev, "delivered_at", &da,
                        "read_at", &ra) != 0 ||
            dev < 0 || dev > UINT32_MAX)
            return KURER_EMALFORMED;
        kurer_message_receipt *e = &rows[m->n_receipts++];
        e->user = user;
        e->device_id = (uint32_t)dev;
        e->delivered_at = da;
        e->read_at = ra;
    }
    m->receipts = rows;
    return 0;
}

static const char *const read_params[] = {"peer", "group", "sent_at", "all", "timeout", NULL};

/* read {peer | group, sent_at: [ms...], all, timeout}: {marked}. peer and all: every unread
 * one-to-one message of peer; group and all: every unread message of the group; all alone:
 * every unread message; peer or group and sent_at: those. */
static int m_read(rpc_ctx *c, json_t *params, json_t **result)
{
    const char *peer = NULL, *group = NULL;
    long long timeout;
    int all = 0, rc;
    if ((rc = rpc_only(params, read_params)) || (rc = rpc_str(params, "peer", 0, &peer)) ||
        (rc = rpc_str(params, "group", 0, &group)) || (rc = rpc_bool(params, "all", 0, &all)) ||
        (rc = rpc_int(params, "timeout", 86400, NET_TIMEOUT, &timeout)))
        return rc;
    if (peer != NULL && (rc = user_arg("peer", peer)) != 0)
        return rc;
    if (peer != NULL && group != NULL)
        return usage_error("read takes either 'peer' or 'group', not both");
    json_t *ts = json_object_get(params, "sent_at");
    size_t n = json_is_array(ts) ? json_array_size(ts) : 0;
    if (ts != NULL && (!json_is_array(ts) || n == 0 || n > READ_TS_MAX))
        return usage_error("'sent_at' must be an array of 1..%d message times (Unix ms)",
                           READ_TS_MAX);
    if ((ts != NULL) == all)
        return usage_error("read needs 'sent_at' (the messages' times) or 'all', not both");
    if (peer != NULL && group != NULL)
        return usage_error("read takes 'peer' or 'group', not both");
    if (ts != NULL && peer == NULL && group == NULL)
        return usage_error("read with 'sent_at' needs 'peer' or 'group' (whose messages)");
    int64_t *v = n > 0 ? calloc(n, sizeof(*v)) : NULL;
    if (n > 0 && v == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(ts, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0) {
            free(v);
            return usage_error("'sent_at' holds message times: integers (Unix ms)");
        }
        v[i] = json_integer_value(t);
    }
    size_t marked = 0;
    rc = group != NULL ? kurer_read_group(c->k, group, v, n, (int)timeout * 1000, &marked)
                       : kurer_read(c->k, peer, v, n, (int)timeout * 1000, &marked);
    free(v);
    if (rc == KURER_EUNKNOWNGROUP)
        return refuse(rc, "no group %s on this home (kurer group list)", group);
    if (rc == KURER_EINVAL && group != NULL)
        return refuse(rc, "%s names no single group: give more of its id", group);
    if (rc != 0)
        return refuse(rc, "cannot mark messages read: %s", kurer_strerror(rc));
    *result = json_pack("{s:I}", "marked", (json_int_t)marked);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

static const char *const timer_params[] = {"peer", "group", "seconds", "timeout", NULL};

/* timer {peer | group, seconds, timeout}: {peer | group, seconds} once the relay accepted the
 * change for every device; RC_QUEUED when it is set and waits in the outbox. seconds 0: off. */
static int m_timer(rpc_ctx *c, json_t *params, json_t **result)
{
    const char *peer = NULL, *group = NULL;
    long long seconds, timeout;
    int rc;
    if ((rc = rpc_only(params, timer_params)) || (rc = rpc_str(params, "peer", 0, &peer)) ||
        (rc = rpc_str(params, "group", 0, &group)) ||
        (rc = rpc_int(params, "seconds", KURER_TIMER_MAX, -1, &seconds)) ||
        (rc = rpc_int(params, "timeout", 86400, NET_TIMEOUT, &timeout)))
        return rc;
    if (seconds < 0)
        return usage_error("missing parameter 'seconds' (0..%d; 0: off)", KURER_TIMER_MAX);
    if ((peer == NULL) == (group == NULL))
        return usage_error("timer needs 'peer' or 'group' (one of them)");
    if (group != NULL)
        return rpc_group_timer(c, group, (uint32_t)seconds, timeout, result);
    if ((rc = user_arg("peer", peer)) != 0)
        return rc;
    if (strcmp(peer, kurer_own_user(c->k)) == 0)
        return refuse(KURER_EINVAL, "a timer is for a conversation with someone else");
    kurer_refusal why;
    rc = kurer_set_timer(c->k, peer, (uint32_t)seconds, (int)timeout * 1000, &why);
    uint32_t now = UINT32_MAX;
    if (rc != 0 && transport_error(rc) && kurer_timer(c->k, peer, &now) == 0 &&
        now == (uint32_t)seconds) {
        net_error(rc, "the timer change is set and not yet accepted by the relay");
        c->data = json_pack("{s:b,s:s}", "queued", 1, "name", kurer_err_name(rc));
        return RC_QUEUED;
    }
    if (rc != 0) {
        if (transport_error(rc))
            return net_error(rc, "timer not set");
        if (explain(rc, &why, KURER_LEVEL_UNCLASSIFIED, peer) == 0)
            refuse(rc, "timer not set: %s", kurer_strerror(rc));
        return rc;
    }
    *result = json_pack("{s:s,s:I}", "peer", peer, "seconds", (json_int_t)seconds);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

const rpc_method rpc_receipt_methods[] = {
    {"read", m_read},
    {"timer", m_timer},
    {NULL, NULL},
};
