/* Copies of one device's home (docs/protocol.md 1.1, "Instances"). Each copy sends a random
 * instance id and a count of the connections it has begun. The relay remembers, per device and
 * in memory, the current copy, its highest count and the copies it replaced:
 *   - a replaced (retired) copy is refused: a restore made a new copy, which took over;
 *   - the current copy again with a count not above the highest seen is a second copy of it
 *     (a file copy of the home): the instance is marked forked and every connection of it is
 *     refused, the live one included, until a restore makes a new instance;
 *   - a new instance takes over (a restore, or a device moved on purpose) and retires the
 *     current one.
 * Instead of two copies replacing each other (EBUSY) and splitting the device's messages, each
 * is told KURER_ECLONED. A relay restart forgets: the next alternation is caught again. */
#include "relay_internal.h"

#include <string.h>

#define RETIRED_MAX (sizeof(((dir_entry *)0)->retired) / sizeof(uint64_t))

int kurer__instance_check(relay *r, const rconn *rc)
{
    if (rc->instance_id == 0)
        return 0; /* a client that does not say */
    dir_entry *e = kurer__dir_find(r, &rc->addr);
    if (e == NULL || e->instance == 0)
        return 0;
    for (size_t i = 0; i < RETIRED_MAX; i++)
        if (e->retired[i] == rc->instance_id)
            return KURER_ECLONED;
    if (e->instance != rc->instance_id)
        return 0;
    if (!e->forked && rc->instance_count > e->instance_count)
        return 0;
    e->forked = 1;
    return KURER_ECLONED;
}

int kurer__instance_take(relay *r, const rconn *rc)
{
    dir_entry *e = rc->instance_id != 0 ? kurer__dir_find(r, &rc->addr) : NULL;
    if (e == NULL)
        return 0;
    int other = e->instance != 0 && e->instance != rc->instance_id;
    if (other) {
        memmove(&e->retired[1], &e->retired[0], (RETIRED_MAX - 1) * sizeof(uint64_t));
        e->retired[0] = e->instance;
        e->forked = 0;
    }
    e->instance = rc->instance_id;
    e->instance_count = rc->instance_count;
    return other;
}
