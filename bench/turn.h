/* Just enough TURN (RFC 8656) for the media_relay benchmark's coturn reference: turnserver
 * started on loopback with a private config, and legs that Allocate with long-term credentials,
 * CreatePermission and ChannelBind to the other leg's relayed address, then speak ChannelData.
 * Benchmark code: it exits on setup errors (bench_die). */
#ifndef KURER_BENCH_TURN_H
#define KURER_BENCH_TURN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TURN_CHANNEL 0x4000

typedef struct turn_server {
    pid_t pid;
    char dir[256];
    struct sockaddr_in addr; /* its listening address (UDP) */
} turn_server;

/* One leg's TURN client state. */
typedef struct turn_leg {
    int fd; /* connected to the server */
    struct sockaddr_in relayed;
    char nonce[128];
} turn_leg;

/* The turnserver binary (KURER_BENCH_TURNSERVER, else /usr/bin/turnserver); NULL if absent. */
const char *turn_bin(void);
/* Starts turnserver on 127.0.0.1 with relay ports for at least `allocations`; waits until it
 * answers a Binding request. 0, or -1 (its log stays in DIR/turn.log). */
int turn_start(turn_server *t, size_t allocations);
void turn_stop(turn_server *t);
/* A socket connected to the server and its allocation (two Allocates: the 401, then with
 * credentials). */
void turn_allocate(const turn_server *t, turn_leg *l);
/* CreatePermission and ChannelBind (TURN_CHANNEL) of l to peer's relayed address. */
void turn_bind_peer(turn_leg *l, const struct sockaddr_in *peer);

#endif
