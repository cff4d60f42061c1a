/* The daemon's methods: one table per group (rpc.h). A new group is a file and a line here. */
#include <string.h>

#include "rpc.h"

static const rpc_method *const groups[] = {
    rpc_messages_methods, /* send, history, receive, flush_outbox */
    rpc_device_methods,   /* whoami, verify, status */
    rpc_conn_methods,     /* subscribe, unsubscribe */
    rpc_home_methods,     /* backup */
    rpc_day_methods,      /* outbox, outbox_retry, outbox_cancel, contacts, conversations */
    rpc_group_methods,    /* group.create, group.add, group.remove, group.leave, group.list,
                             group.info */
    rpc_keys_methods,     /* rekey, import */
    rpc_call_methods,     /* call, answer */
    rpc_receipt_methods,  /* read, timer */
};

const rpc_method *rpc_find(const char *name)
{
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
        for (const rpc_method *m = groups[g]; m->name != NULL; m++)
            if (strcmp(m->name, name) == 0)
                return m;
    return NULL;
}
