/* What call.c, call_recv.c and call_loop.c share (internal to the calls module; call.h has
 * the module's interface to the rest of the client and its threading rules). */
#ifndef KURER_CLIENT_CALL_INTERNAL_H
#define KURER_CLIENT_CALL_INTERNAL_H

#include <stdatomic.h>

#include "call.h"
#include "kurer/frame.h"
#include "net.h"

#define SIGNAL_WAIT_MS 20000 /* one CallMessage or allocation, connecting included */

typedef enum cstate {
    CS_NONE = 0,
    CS_OFFERING, /* ours: allocating and sending the offer */
    CS_RINGING_OUT,
    CS_RINGING_IN,
    CS_ANSWERING, /* ours to the peer's offer: the answer is being sent */
    CS_MEDIA,     /* answered: the media link comes up */
    CS_CONNECTED,
} cstate;

typedef struct call {
    uint64_t id;
    cstate st;
    int outgoing, level;
    char peer[KURER_SUBJECT_MAX + 1];
    uint32_t peer_device;
    uint8_t key_caller[KURER_SFRAME_CALL_KEY_LEN], key_callee[KURER_SFRAME_CALL_KEY_LEN];
    uint8_t ticket[KURER_MEDIA_TICKET_MAX]; /* our leg's */
    size_t ticket_len;
    uint16_t udp_port;
    uint32_t keepalive_ms;
    size_t offered, busy;
    uint64_t ring_until, media_until; /* monotonic ms; 0: none */
} call;

typedef struct cev {
    struct cev *next;
    kurer_call_event e;
    char peer[KURER_SUBJECT_MAX + 1];
} cev;

struct kurer__calls {
    kurer *k;
    uv_loop_t *loop;
    uv_mutex_t mu, amu;
    uv_async_t wake;
    uv_timer_t timer;
    atomic_int closed;
    /* under mu */
    call cur;
    kurer_call_events ev;
    kurer_call_options opt;
    cev *e_head, *e_tail;
    int rebind;
    /* under amu: the live link (written by the library thread) and the last call's figures */
    kurer__call_link *link;
    uint64_t link_call;
    uint64_t connected_at;
    uint64_t last_id;
    kurer_call_stats last_stats;
};

typedef enum job_kind { J_OFFER, J_ANSWER, J_HANGUP, J_BUSY } job_kind;

typedef struct sjob {
    kurer__job job; /* first: the job is the request */
    kurer__calls *c;
    job_kind kind;
    char user[KURER_SUBJECT_MAX + 1];
    kurer_call_message m;
    uint8_t ticket[KURER_MEDIA_TICKET_MAX];
    kurer_refusal why;
    size_t n_devices;
    int err;
    struct cev *after; /* an event given when the job is done (the end of a call) */
} sjob;

/* call.c */
uint32_t kurer__calls_opt(uint32_t v, uint32_t dflt); /* v, or dflt for 0 */
/* Wakes the library thread's turn (events, the media link, the timer). Any thread. */
void kurer__calls_kick(kurer__calls *c);
/* Under mu: an event about the current call for the application. */
void kurer__calls_event_locked(kurer__calls *c, kurer_call_event_kind kind, kurer_call_end end,
                               int err, const kurer_refusal *why, uint64_t replaced_by);
/* Library thread: gives the queued events to on_call, without the lock. */
void kurer__calls_dispatch(kurer__calls *c);
/* Under mu: queues the CallMessage kind to every device of user, for the current call (id 0)
 * or for call id. 0, or why it could not be queued (then nothing goes out; callers that only
 * tell the peer may ignore it: the peer's own timeouts end its side). */
int kurer__calls_signal_locked(kurer__calls *c, job_kind kind, const char *user, uint64_t id,
                               kurer_call_reason reason, uint32_t answered_device);
/* Under mu: the current call ends with this event; its state is wiped. */
void kurer__calls_end_locked(kurer__calls *c, kurer_call_event_kind kind, kurer_call_end end,
                             int err, const kurer_refusal *why, uint64_t replaced_by);
/* Under mu: the current call ends and the peer is told (HANGUP reason); the event comes when
 * the HANGUP has gone out (or could not), so that an application that exits at the event does
 * not cut it off. */
void kurer__calls_end_telling_locked(kurer__calls *c, kurer_call_reason reason,
                                     kurer_call_event_kind kind, kurer_call_end end, int err);
void kurer__calls_clear(call *x);
uint64_t kurer__calls_new_id(void);
void kurer__calls_new_key(uint8_t key[KURER_SFRAME_CALL_KEY_LEN]);
/* Under mu: answers the current (ringing) call. */
KURER_MUST_CHECK int kurer__calls_answer_locked(kurer__calls *c);

#endif
