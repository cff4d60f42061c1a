/* The home's instance (backup.c; docs/protocol.md 1.1, "Instances"). Internal. */
#ifndef KURER_CLIENT_BACKUP_H
#define KURER_CLIENT_BACKUP_H

#include <stdint.h>

#include "kurer/kurer.h"

/* This copy of the home's instance id (made on first use; a restore makes a new one) and its
 * connection count, raised and committed here, before the connection it is for. With the home
 * lock held. 0, or a store error: then *id and *count are 0 (the handshake says nothing, and the
 * relay compares nothing: no false alarm from a count that could not be recorded). */
int kurer__instance_next(kurer *k, uint64_t *id, uint64_t *count);

#endif
