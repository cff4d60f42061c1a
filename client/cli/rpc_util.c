/* JSON-RPC helpers shared by the daemon and the commands: params checked member by member,
 * kurer errors as JSON-RPC errors, messages as JSON, and the nesting bound on requests. */
#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "kurer/text.h"
#include "kurer/util.h"
#include "rpc.h"

/* jansson's memory, wiped when freed: requests and answers carry message text. Each block
 * keeps its size in front of it. */
typedef union wiped_hdr {
    size_t n;
    max_align_t align;
} wiped_hdr;

static void *wiped_malloc(size_t n)
{
    if (n > SIZE_MAX - sizeof(wiped_hdr))
        return NULL;
    wiped_hdr *h = malloc(sizeof(wiped_hdr) + n);
    if (h == NULL)
        return NULL;
    h->n = n;
    return h + 1;
}

static void wiped_free(void *p)
{
    if (p == NULL)
        return;
    wiped_hdr *h = (wiped_hdr *)p - 1;
    kurer_memzero(p, h->n);
    free(h);
}

void rpc_init(void)
{
    json_set_alloc_funcs(wiped_malloc, wiped_free);
}

void rpc_free_wiped(void *p, size_t n)
{
    if (p != NULL)
        kurer_memzero(p, n);
    free(p);
}

int rpc_only(json_t *params, const char *const *names)
{
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        size_t i = 0;
        while (names[i] != NULL && strcmp(names[i], key) != 0)
            i++;
        if (names[i] == NULL) {
            char shown[64];
            return usage_error("unknown parameter '%s'",
                               kurer_text_term(shown, sizeof(shown), key));
        }
    }
    return 0;
}

int rpc_str(json_t *params, const char *name, int required, const char **out)
{
    json_t *v = json_object_get(params, name);
    *out = NULL;
    if (v == NULL && !required)
        return 0;
    if (v == NULL)
        return usage_error("missing parameter '%s'", name);
    if (!json_is_string(v))
        return usage_error("parameter '%s' must be a string", name);
    *out = json_string_value(v);
    if (strlen(*out) != json_string_length(v))
        return usage_error("parameter '%s' holds a NUL character", name);
    return 0;
}

int rpc_int(json_t *params, const char *name, long long max, long long def, long long *out)
{
    json_t *v = json_object_get(params, name);
    *out = def;
    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return usage_error("parameter '%s' must be an integer from 0 to %lld", name, max);
    *out = json_integer_value(v);
    return 0;
}

int rpc_bool(json_t *params, const char *name, int def, int *out)
{
    json_t *v = json_object_get(params, name);
    *out = def;
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v))
        return usage_error("parameter '%s' must be true or false", name);
    *out = json_is_true(v);
    return 0;
}

int rpc_err_code(const char *name)
{
    for (int c = -1; c > -1000; c--)
        if (kurer_err_known(c) && strcmp(kurer_err_name(c), name) == 0)
            return c;
    return KURER_EIO;
}

static const char *state_names[] = {"received", "quarantined", "pending", "sent", "failed"};

static const char *state_name(kurer_message_state s)
{
    switch (s) {
    case KURER_MESSAGE_RECEIVED:
        return state_names[0];
    case KURER_MESSAGE_QUARANTINED:
        return state_names[1];
    case KURER_MESSAGE_PENDING:
        return state_names[2];
    case KURER_MESSAGE_SENT:
        return state_names[3];
    default:
        return state_names[4];
    }
}

static const kurer_message_state state_values[] = {KURER_MESSAGE_RECEIVED,
                                                   KURER_MESSAGE_QUARANTINED, KURER_MESSAGE_PENDING,
                                                   KURER_MESSAGE_SENT, KURER_MESSAGE_FAILED};

json_t *rpc_message_json(const kurer_message *m)
{
    char id[33];
    kurer_hex_encode(id, m->id, sizeof(m->id));
    json_t *o = json_pack("{s:s,s:b,s:s,s:I,s:s,s:s,s:I,s:I}", "id", id, "outgoing", m->outgoing,
                          "peer", m->peer, "device", (json_int_t)m->peer_device, "level",
                          kurer_level_name(m->level), "state", state_name(m->state), "sent_at",
                          (json_int_t)m->sent_at, "received_at", (json_int_t)m->received_at);
    if (o == NULL)
        return NULL;
    if (m->reason != 0)
        json_object_set_new(o, "reason", json_string(kurer_err_name(m->reason)));
    if (m->group[0] != '\0')
        json_object_set_new(o, "group", json_string(m->group));
    if (m->state == KURER_MESSAGE_QUARANTINED)
        return o;
    if (rpc_receipts_json(m, o) != 0) {
        json_decref(o);
        return NULL;
    }
    json_t *t = json_string(m->body);
    if (t == NULL) {
        /* Not UTF-8 (a peer's bytes are stored as sent): the text with U+FFFD for each bad
         * byte, as kurer --json prints it, and the bytes themselves in hex, so that a client
         * can show them as kurer does (\xNN). */
        kurer_buf b;
        kurer_buf_init_secret(&b, KURER_BUF_HARD_MAX);
        size_t n = strlen(m->body);
        char *hex = malloc(2 * n + 1);
        if (hex == NULL || kurer_json_put_string(&b, m->body) != 0 ||
            kurer_buf_put(&b, "", 1) != 0) {
            rpc_free_wiped(hex, 2 * n + 1);
            kurer_buf_release(&b);
            json_decref(o);
            return NULL;
        }
        kurer_hex_encode(hex, m->body, n);
        t = json_loads((const char *)b.data, JSON_DECODE_ANY, NULL);
        json_object_set_new(o, "text_hex", json_string(hex));
        rpc_free_wiped(hex, 2 * n + 1);
        kurer_buf_release(&b);
    }
    json_object_set_new(o, "text", t != NULL ? t : json_string(""));
    return o;
}

int rpc_message_from(json_t *j, kurer_message *m, char **raw_body)
{
    const char *id = NULL, *peer = NULL, *level = NULL, *state = NULL, *reason = NULL, *text = NULL,
               *hex = NULL, *group = NULL;
    json_int_t dev = 0, sent = 0, recvd = 0;
    int out = 0;
    memset(m, 0, sizeof(*m));
    *raw_body = NULL;
    if (!json_is_object(j) ||
        json_unpack(j, "{s:s,s:b,s:s,s:I,s:s,s:s,s:I,s:I,s?s,s?s,s?s,s?s}", "id", &id, "outgoing",
                    &out, "peer", &peer, "device", &dev, "level", &level, "state", &state,
                    "sent_at", &sent, "received_at", &recvd, "reason", &reason, "text", &text,
                    "text_hex", &hex, "group", &group) != 0 ||
        strlen(id) != 32 || kurer_hex_decode(m->id, sizeof(m->id), id) != 0)
        return usage_error("the daemon sent a malformed message");
    kurer_level lv;
    if (kurer_level_parse(level, &lv) != 0)
        return usage_error("the daemon sent a message with an unknown level");
    m->level = (int)lv;
    m->state = KURER_MESSAGE_FAILED;
    for (size_t i = 0; i < sizeof(state_values) / sizeof(state_values[0]); i++)
        if (strcmp(state, state_names[i]) == 0)
            m->state = state_values[i];
    m->outgoing = out;
    m->peer = peer;
    m->peer_device = (uint32_t)dev;
    m->sent_at = sent;
    m->received_at = recvd;
    m->reason = reason != NULL ? rpc_err_code(reason) : 0;
    m->body = text != NULL ? text : "";
    if (group != NULL && strlen(group) == KURER_GROUP_HEX_MAX)
        memcpy(m->group, group, KURER_GROUP_HEX_MAX + 1);
    if (rpc_receipts_from(j, m) != 0)
        return usage_error("the daemon sent malformed receipts");
    if (hex != NULL && strlen(hex) % 2 == 0) {
        size_t n = strlen(hex) / 2;
        *raw_body = malloc(n + 1);
        if (*raw_body == NULL)
            return refuse(KURER_ENOMEM, "out of memory");
        (*raw_body)[n] = '\0';
        if (kurer_hex_decode(*raw_body, n, hex) == 0 && memchr(*raw_body, '\0', n) == NULL) {
            m->body = *raw_body;
        }
    }
    return 0;
}

json_t *rpc_key_change_json(const kurer_key_change *c)
{
    return json_pack("{s:I,s:s,s:I,s:I,s:s,s:I,s:s,s:s,s:s,s:I}", "id", (json_int_t)c->id, "user",
                     c->user, "device", (json_int_t)c->device_id, "serial", (json_int_t)c->serial,
                     "issuer", c->issuer, "old_serial", (json_int_t)c->old_serial, "old_issuer",
                     c->old_issuer != NULL ? c->old_issuer : "", "key_fingerprint",
                     c->key_fingerprint != NULL ? c->key_fingerprint : "", "old_key_fingerprint",
                     c->old_key_fingerprint != NULL ? c->old_key_fingerprint : "", "at",
                     (json_int_t)c->at);
}

int rpc_key_change_from(json_t *j, kurer_key_change *c)
{
    json_int_t id = 0, dev = 0, serial = 0, old_serial = 0, at = 0;
    memset(c, 0, sizeof(*c));
    if (!json_is_object(j) ||
        json_unpack(j, "{s:I,s:s,s:I,s:I,s:s,s:I,s:s,s:s,s:s,s:I}", "id", &id, "user", &c->user,
                    "device", &dev, "serial", &serial, "issuer", &c->issuer, "old_serial",
                    &old_serial, "old_issuer", &c->old_issuer, "key_fingerprint",
                    &c->key_fingerprint, "old_key_fingerprint", &c->old_key_fingerprint, "at",
                    &at) != 0)
        return usage_error("the daemon sent a malformed key change");
    c->id = id;
    c->device_id = (uint32_t)dev;
    c->serial = (uint64_t)serial;
    c->old_serial = (uint64_t)old_serial;
    c->at = at;
    return 0;
}

int rpc_depth_ok(const char *s, size_t n)
{
    unsigned depth = 0;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > RPC_DEPTH_MAX)
                return 0;
        } else if ((ch == ']' || ch == '}') && depth > 0) {
            depth--;
        }
    }
    return 1;
}

int rpc_dump_line(json_t *v, char **out, size_t *len)
{
    char *s = json_dumps(v, JSON_COMPACT); /* jansson's memory: given back with wiped_free */
    if (s == NULL)
        return KURER_ENOMEM;
    size_t n = strlen(s);
    char *l = malloc(n + 2);
    if (l == NULL) {
        wiped_free(s);
        return KURER_ENOMEM;
    }
    memcpy(l, s, n);
    wiped_free(s);
    l[n] = '\n';
    l[n + 1] = '\0';
    *out = l;
    *len = n + 1;
    return 0;
}

int rpc_error_line(json_t *id, int code, const char *msg, json_t *data, char **line, size_t *len)
{
    json_t *e = json_pack("{s:i,s:s}", "code", code, "message", msg);
    if (e != NULL && data != NULL)
        json_object_set(e, "data", data);
    json_decref(data);
    json_t *r = json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id != NULL ? id : json_null(),
                          "error", e);
    if (r == NULL)
        return KURER_ENOMEM;
    int rc = rpc_dump_line(r, line, len);
    json_decref(r);
    return rc;
}

int rpc_respond(const rpc_method *m, rpc_ctx *c, json_t *params, json_t *id, char **line,
                size_t *len)
{
    json_t *result = NULL;
    clear_reason();
    c->data = NULL;
    int rc = m->fn(c, params, &result);
    *line = NULL;
    *len = 0;
    if (id == NULL) { /* a notification: no response, whatever happened */
        json_decref(result);
        json_decref(c->data);
        return 0;
    }
    if (rc == 0) {
        json_t *r = json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result",
                              result != NULL ? result : json_object());
        json_decref(c->data);
        if (r == NULL)
            return KURER_ENOMEM;
        rc = rpc_dump_line(r, line, len);
        json_decref(r);
        return rc;
    }
    json_decref(result);
    const char *msg = reason()[0] != '\0' ? reason() : kurer_strerror(rc);
    json_t *data = c->data != NULL ? c->data : json_object();
    if (rc == RC_USAGE)
        return rpc_error_line(id, RPC_INVALID_PARAMS, msg, data, line, len);
    if (rc == RC_QUEUED)
        return rpc_error_line(id, RPC_QUEUED, msg, data, line, len);
    if (json_object_get(data, "name") == NULL)
        json_object_set_new(data, "name", json_string(kurer_err_name(rc)));
    return rpc_error_line(id, RPC_REFUSED, msg, data, line, len);
}
