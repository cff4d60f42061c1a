/* One JSON-RPC 2.0 request line, checked (JSON-RPC 2.0, section 4) before anything of it is
 * used: the nesting bound, then jansson's parse (UTF-8, no NUL, no duplicate key), then the
 * members. Fuzzed by tests/fuzz/fuzz_rpc.c. */
#include <string.h>

#include "rpc.h"

static int bad(rpc_request *r, int code, const char *msg, const char **out)
{
    *out = msg;
    (void)r;
    return code;
}

int rpc_parse_request(const char *line, size_t n, rpc_request *r, const char **msg)
{
    memset(r, 0, sizeof(*r));
    if (!rpc_depth_ok(line, n))
        return bad(r, RPC_INVALID_REQUEST, "nested more than 16 deep", msg);
    r->req = json_loadb(line, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
    if (r->req == NULL)
        return bad(r, RPC_PARSE_ERROR, "parse error: not JSON (or not UTF-8)", msg);
    if (json_is_array(r->req))
        return bad(r, RPC_INVALID_REQUEST, "batches are not supported: one per line", msg);
    if (!json_is_object(r->req))
        return bad(r, RPC_INVALID_REQUEST, "a request is a JSON object", msg);
    json_t *id = json_object_get(r->req, "id"), *v = json_object_get(r->req, "jsonrpc");
    json_t *method = json_object_get(r->req, "method");
    if (id != NULL && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id))
        return bad(r, RPC_INVALID_REQUEST, "id must be a string, an integer or null", msg);
    /* An id of null is answered, with null; a missing one (a notification) is not. */
    r->id = id;
    const char *key;
    json_t *val;
    json_object_foreach(r->req, key, val)
    {
        if (strcmp(key, "jsonrpc") && strcmp(key, "method") && strcmp(key, "params") &&
            strcmp(key, "id"))
            return bad(r, RPC_INVALID_REQUEST, "a request has only jsonrpc, method, params and id",
                       msg);
    }
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0)
        return bad(r, RPC_INVALID_REQUEST, "jsonrpc must be \"2.0\"", msg);
    if (!json_is_string(method))
        return bad(r, RPC_INVALID_REQUEST, "method must be a string", msg);
    r->params = json_object_get(r->req, "params");
    if (r->params != NULL && !json_is_object(r->params))
        return bad(r, RPC_INVALID_PARAMS, "params must be an object (by name)", msg);
    r->m = rpc_find(json_string_value(method));
    if (r->m == NULL)
        return bad(r, RPC_METHOD_NOT_FOUND, "method not found", msg);
    return 0;
}
