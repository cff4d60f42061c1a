/* One online-enrolment request to a relay (docs/protocol.md 3.6), for the command-line tools:
 * a Noise NK session opened with an EnrolHello, the request, its reply, closed. Blocking: it
 * runs a libuv loop of its own; not for a thread that already runs one. */
#ifndef KURER_ENROL_CALL_H
#define KURER_ENROL_CALL_H

#include <stdint.h>

#include "kurer/enrol.h"
#include "kurer/error.h"

/* relay: HOST:PORT (resolved now); relay_key: its static public key. 0 when the relay answered
 * (its verdict in rep->error, 0 or a typed error); else why there is no answer: KURER_ERESOLVE,
 * KURER_ECONNREFUSED, KURER_EUNREACHABLE, KURER_EHANDSHAKE (the relay closed the handshake: a
 * wrong key, or not a Kurér relay), KURER_ETIMEOUT, KURER_ECLOSED, KURER_EMALFORMED (a reply
 * that does not decode or answers another request). */
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_call(const char *relay, const uint8_t relay_key[32],
                                                   const kurer_enrol_request *req,
                                                   kurer_enrol_reply *rep, int timeout_ms);

#endif
