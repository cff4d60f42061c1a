/* The store's configuration keys (relay/ only): `store = sqlite | postgres` and `pg_conninfo =
 * <libpq connection string>` (the rest of the line), which are not numbers like the other keys:
 * relay/config.c hands each line here first. */
#ifndef KURER_RELAY_STORE_CONFIG_H
#define KURER_RELAY_STORE_CONFIG_H

#include "relay.h"

/* 1: the line set a store key; 0: it is not one of them; KURER_EINVAL: a store key with a bad
 * value (store not sqlite or postgres, pg_conninfo of 1024 bytes or more). */
int kurer__config_store_line(kurer_relay_config *c, const char *line);
/* kurer-relay init with a configuration: creates or migrates the postgres schema when the
 * configuration says store = postgres (nothing for sqlite). 0, or 1 after a message. */
int kurer_relay_init_store(const kurer_relay_config *c);

#endif
