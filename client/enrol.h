/* Online enrolment on a request worker (client/enrol.c); api.c runs them for kurer.h. */
#ifndef KURER_CLIENT_ENROL_H
#define KURER_CLIENT_ENROL_H

#include <stdint.h>

#include "kurer/kurer.h"

/* The home's request sent to its relay, bound to code (HOME/invite written first): 0, the
 * code's errors (KURER_EINVAL, KURER_ECHECKDIGIT), the relay's (KURER_EINVITE, ...) or the
 * transport's. Blocking, until deadline (monotonic ms). */
int kurer__enrol_submit(kurer *k, const char *code, uint64_t deadline);
/* The relay asked once: *state (KURER_ENROL_STATE_*); approved, the chain is imported (0);
 * rejected: KURER_EREJECTED; no HOME/invite: KURER_ENOENT. */
int kurer__enrol_poll(kurer *k, uint64_t deadline, int *state);

#endif
