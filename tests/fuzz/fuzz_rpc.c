/* fuzz_rpc: kurer daemon's request lines (client/cli/rpc_request.c: the nesting bound, jansson,
 * the JSON-RPC 2.0 checks) and the message objects a command reads back from a daemon
 * (rpc_message_from, then rpc_message_json on what it gave). Every input either parses to a
 * method or gets an error code and message; nothing leaks, nothing is read past. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (kurer_crypto_init() != 0)
            abort();
        rpc_init();
        ready = 1;
    }
    if (size > RPC_LINE_MAX)
        return 0;
    rpc_request r;
    const char *msg = NULL;
    int code = rpc_parse_request((const char *)data, size, &r, &msg);
    if ((code == 0) != (r.m != NULL) || (code != 0 && msg == NULL))
        abort();
    char *line = NULL;
    size_t len = 0;
    if (code != 0 && rpc_error_line(r.id, code, msg, NULL, &line, &len) == 0 &&
        (len == 0 || line[len - 1] != '\n'))
        abort();
    rpc_free_wiped(line, len);
    json_t *p = r.req != NULL ? json_object_get(r.req, "params") : NULL;
    if (p != NULL) {
        kurer_message m;
        char *raw = NULL;
        if (rpc_message_from(p, &m, &raw) == 0) {
            json_t *back = rpc_message_json(&m);
            if (back != NULL && strlen(m.body) > 0 && m.state != KURER_MESSAGE_QUARANTINED &&
                json_object_get(back, "text") == NULL)
                abort();
            json_decref(back);
        }
        rpc_free_wiped(raw, raw != NULL ? strlen(raw) + 1 : 0);
    }
    json_decref(r.req);
    return 0;
}
