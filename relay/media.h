/* The media relay (private to relay/media*.c): calls of two legs on one UDP socket, tickets,
 * the datagram protocol and its counters (docs/calls.md, "The media relay"; docs/protocol.md,
 * "Media datagrams"). Loop thread only. */
#ifndef KURER_RELAY_MEDIA_H
#define KURER_RELAY_MEDIA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "relay_internal.h"

/* Datagram kinds (the first byte). */
enum { MEDIA_BIND = 0x01, MEDIA_BOUND = 0x02, MEDIA_DATA = 0x03, MEDIA_KEEPALIVE = 0x04 };

#define MEDIA_DATAGRAM_MAX  1400 /* longer datagrams are dropped (too_long) */
#define MEDIA_KEEPALIVE_MAX 16   /* bytes after the kind */
#define MEDIA_BATCH         64   /* datagrams per recvmmsg / sendmmsg */
#define MEDIA_ROUNDS        16   /* recvmmsg batches per wake-up before the loop runs again */

/* A ticket: version, call id, leg, expiry (monotonic ms, this process's clock), then the MAC
 * over those 18 bytes under the relay's media secret. */
#define MEDIA_TICKET_VERSION 1
#define MEDIA_TICKET_BODY    18
#define MEDIA_TICKET_LEN     (MEDIA_TICKET_BODY + 32)

/* Why a datagram was dropped (kurer_media_dropped_total{reason}). */
#define KURER__MEDIA_DROPS(X)                                                                      \
    X(bad_ticket, "a BIND whose ticket is malformed or fails its MAC")                             \
    X(expired_ticket, "a BIND whose ticket has expired")                                           \
    X(unknown_call, "a BIND with a valid ticket of a call that is closed")                         \
    X(unlocked_address, "MEDIA or KEEPALIVE from an address no leg is locked to")                  \
    X(rate_capped, "over the leg's packet or byte rate")                                           \
    X(unknown_kind, "a first byte that is no datagram kind a client sends")                        \
    X(too_short, "shorter than its kind needs")                                                    \
    X(too_long, "longer than its kind allows (MEDIA: 1400 bytes)")                                 \
    X(no_peer, "MEDIA while the other leg is not locked yet")                                      \
    X(send_failed, "the socket refused the forwarded datagram (buffer full)")

enum {
#define KURER__MEDIA_DROP_ENUM(name, help) DROP_##name,
    KURER__MEDIA_DROPS(KURER__MEDIA_DROP_ENUM)
#undef KURER__MEDIA_DROP_ENUM
        N_DROPS
};

typedef struct media_call media_call;

typedef struct media_leg {
    hnode anode; /* in by_addr while locked */
    int locked;
    uint8_t key[18]; /* the locked address: IPv6 (IPv4 mapped) and port */
    struct sockaddr_storage sa;
    socklen_t salen;
    kurer__bucket pkts, bytes;
    media_call *call;
    uint8_t idx; /* 0: a, 1: b */
} media_leg;

typedef struct media_owner {
    hnode node; /* in owners */
    uint32_t device_id;
    uint64_t n;        /* its calls */
    media_call *calls; /* the same, listed (onext) */
    char user[];
} media_owner;

struct media_call {
    hnode node; /* in by_id */
    uint64_t id;
    media_leg leg[2];
    media_owner *owner;
    uint64_t last_ms;                 /* the last datagram of either leg (or the allocation) */
    struct media_call *older, *newer; /* by last_ms: the sweep closes from the oldest */
    struct media_call *onext, *oprev; /* the owner's calls */
};

typedef struct kurer__media {
    relay *r;
    int fd;
    uv_poll_t poll;
    uv_timer_t sweep;
    int have_poll, have_sweep;
    uint8_t *secret; /* guarded, read-only: the ticket MAC key of this process */
    htab by_id, by_addr, owners;
    media_call *oldest, *newest;
    uint64_t n_calls;
    uint16_t port;
    char name[80]; /* HOST:PORT bound */
    /* counters */
    uint64_t allocated, closed_idle, closed_revoked, refused_per_device, refused_total, forwarded,
        fwd_bytes, received, binds, relocks, keepalives;
    uint64_t drops[N_DROPS];
    /* one batch */
    struct mmsghdr rmsg[MEDIA_BATCH], smsg[MEDIA_BATCH];
    struct iovec riov[MEDIA_BATCH], siov[MEDIA_BATCH];
    struct sockaddr_storage rsa[MEDIA_BATCH], ssa[MEDIA_BATCH];
    uint8_t bound[MEDIA_BATCH][2];
    uint8_t rbuf[MEDIA_BATCH][MEDIA_DATAGRAM_MAX + 1];
    unsigned n_send;
} kurer__media;

/* ---- media.c ---- */
/* The call of a ticket (len bytes) if it is valid for leg *leg now; else NULL with the drop
 * reason counted. */
media_call *kurer__media_ticket_call(kurer__media *m, const uint8_t *t, size_t len, int *leg,
                                     uint64_t now_ms);
/* The call became active now: to the newest end of the sweep's list. */
void kurer__media_touch(kurer__media *m, media_call *c, uint64_t now_ms);

/* ---- media_udp.c ---- */
/* The socket bound to addr, its poll handle started. 0 or an error. */
int kurer__media_udp_open(kurer__media *m, const struct sockaddr_storage *addr);
/* Locks leg to the address of the datagram (re-lock: from its old one), unlocking whichever leg
 * held that address. */
void kurer__media_lock(kurer__media *m, media_leg *leg, const struct sockaddr_storage *sa,
                       socklen_t salen, const uint8_t key[18]);
void kurer__media_unlock(kurer__media *m, media_leg *leg);

#endif
