/* The store's configuration keys (store_config.h). */
#include "store_config.h"

#include <stdio.h>
#include <string.h>

#include "kurer/error.h"
#include "store.h"

int kurer_relay_init_store(const kurer_relay_config *c)
{
    if (!c->store_postgres)
        return 0;
    int err = kurer_store_init_postgres(c->pg_conninfo);
    if (err == 0) {
        printf("postgres schema current\n");
        return 0;
    }
    fprintf(stderr,
            "kurer-relay: init: the postgres schema: %s (see the log and docs/scale-out.md)\n",
            kurer_strerror(err));
    return 1;
}
