/* The postgres store's set-up at `kurer-relay init --config` (the keys `store = postgres` and
 * `pg_conninfo` are parsed by config.c). */
#ifndef KURER_RELAY_STORE_CONFIG_H
#define KURER_RELAY_STORE_CONFIG_H

#include "relay.h"

/* kurer-relay init with a configuration: creates or migrates the postgres schema when the
 * configuration says store = postgres (nothing for sqlite). 0, or 1 after a message. */
int kurer_relay_init_store(const kurer_relay_config *c);

#endif
