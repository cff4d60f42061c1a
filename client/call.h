/* Calls (internal, kurer__call*): the signalling state machine of kurer.h's call API (call.c),
 * the CallMessages it sends through the relay (call_signal.c), and the media link over UDP to
 * the relay's media relay (call_link.c). docs/calls.md has the picture.
 *
 * Threads and locks. The calls state (one current call, events for the application) is under
 * the calls mutex, taken by the application's threads (the API), the session worker (a received
 * CallMessage, with the home lock held) and the library thread (timers, the media link,
 * completions of signalling jobs). Lock order: the home lock, then the calls mutex, then the net
 * mutex; the calls mutex is never held while the home lock is taken or a callback runs. The
 * media link lives on the library thread only; the audio engine in it has its own rules
 * (call_audio.h). */
#ifndef KURER_CLIENT_CALL_H
#define KURER_CLIENT_CALL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "call_audio.h"
#include "kurer/content.h"
#include "kurer/kurer.h"
#include "kurer/sframe.h"

typedef struct kurer__calls kurer__calls;

#define KURER__CALL_RING_MS      45000 /* kurer_call_options defaults */
#define KURER__CALL_MEDIA_MS     10000
#define KURER__CALL_LOSS_PERC    10
#define KURER__CALL_RING_SLACK   5000  /* a callee stops ringing this much after the caller would */
#define KURER__CALL_MISSED_SLACK 60000 /* an offer older than ring timeout + this: missed */

/* ---- call.c: the state machine, hooked into the handle ---- */

/* At kurer__net_start, before the library thread runs: k->calls with its handles on loop. */
KURER_MUST_CHECK int kurer__calls_new(kurer *k, uv_loop_t *loop);
/* Library thread, when the loop is being closed: ends the current call (FAILED, KURER_ECLOSED,
 * without signalling) and closes the handles. NULL-safe. */
void kurer__calls_close_handles(kurer *k);
/* After the loop has ended: frees k->calls. NULL-safe. */
void kurer__calls_free(kurer *k);
/* kurer_network_changed: the media link binds again from its new address. */
void kurer__calls_network_changed(kurer *k);
/* Copies m into *dst, its ticket into ticket (dst->media_ticket points there). */
void kurer__calls_copy(kurer_call_message *dst, uint8_t ticket[KURER_MEDIA_TICKET_MAX],
                       const kurer_call_message *m);
/* Session worker, home lock held: a CallMessage that decrypted from from/device (its chain
 * verified by the session layer). */
void kurer__calls_on_message(kurer *k, const char *from, uint32_t device,
                             const kurer_call_message *m);

/* ---- call_signal.c: CallMessages and the media allocation (request workers) ---- */

/* Sends m to every current device of user (directory lookup, sessions built from bundles as
 * for a message, stale device lists followed). With check_level, first the send policy for
 * m->level (our certificate, the ceiling, every device of user; *why says whose refusal).
 * *n_devices: how many devices it went to. Home lock held; waits for the relay (deadline). */
KURER_MUST_CHECK int kurer__call_signal_send(kurer *k, const char *user,
                                             const kurer_call_message *m, int check_level,
                                             uint64_t deadline, kurer_refusal *why,
                                             size_t *n_devices);

/* What MediaAllocation gave (docs/calls.md). */
typedef struct kurer__call_alloc {
    uint64_t relay_call_id;
    uint8_t ticket_a[KURER_MEDIA_TICKET_MAX], ticket_b[KURER_MEDIA_TICKET_MAX];
    size_t ticket_a_len, ticket_b_len;
    uint16_t udp_port;
    uint32_t keepalive_ms;
} kurer__call_alloc;
/* Asks the relay for a media relay call. The relay's Error code (KURER_ELIMIT: a cap) or a
 * transport error. */
KURER_MUST_CHECK int kurer__call_allocate(kurer *k, uint64_t deadline, kurer__call_alloc *out);

/* ---- call_link.c: the media link (library thread only) ---- */

typedef struct kurer__call_link kurer__call_link;

typedef struct kurer__call_link_cbs {
    void (*connected)(void *ud);       /* the first authentic frame from the peer */
    void (*failed)(void *ud, int err); /* the link cannot go on (bind, silence, a socket) */
    void *ud;
} kurer__call_link_cbs;

typedef struct kurer__call_link_params {
    struct sockaddr_storage relay; /* the relay's address, its UDP port set */
    const uint8_t *ticket;
    size_t ticket_len;
    uint32_t keepalive_ms;
    uint32_t media_timeout_ms;
    uint64_t call_id;
    int we_caller;
    const uint8_t *caller_key; /* KURER_SFRAME_CALL_KEY_LEN each; copied into the contexts */
    const uint8_t *callee_key;
    int loss_perc;
} kurer__call_link_params;

/* Opens the UDP socket, derives the SFrame contexts and the audio engine, and starts binding.
 * 0 with *out, or an error (nothing left open). */
KURER_MUST_CHECK int kurer__call_link_start(uv_loop_t *loop, const kurer__call_link_params *p,
                                            const kurer__call_link_cbs *cbs,
                                            kurer__call_link **out);
/* Stops: handles closed, contexts wiped, freed once closed. The callbacks never run again. */
void kurer__call_link_stop(kurer__call_link *l);
/* The network changed: BIND again from whatever address the socket now has. */
void kurer__call_link_rebind(kurer__call_link *l);
/* The audio engine (for the application's audio thread: capture and playback). */
kurer__call_audio *kurer__call_link_audio(kurer__call_link *l);
/* Encodes and sends the capture frames waiting in the engine. */
void kurer__call_link_pump(kurer__call_link *l);
/* The link's statistics, merged with the engine's. */
void kurer__call_link_stats(kurer__call_link *l, kurer_call_stats *out);

#endif
