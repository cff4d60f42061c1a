/* A test client of the media relay (tests/integration/test_media.c, bench/media_relay.c is
 * separate): allocation over an authenticated relay_harness client, and UDP legs on loopback.
 * Every wait is bounded; failures are cmocka assertions. */
#ifndef KURER_TEST_MEDIA_CLIENT_H
#define KURER_TEST_MEDIA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "relay_harness.h"

/* MediaAllocate on cl: 0 with *a filled, or the relay's error code. */
int media_allocate(client *cl, kurer_media_allocation *a);
/* A UDP socket on 127.0.0.1 (a free port), non-blocking. */
int media_socket(void);
/* Sends len bytes from fd to the relay's media address. */
void media_send(world *w, int fd, const void *data, size_t len);
/* The next datagram on fd within ms (into buf, cap bytes): its length, or -1 if none came. */
int media_recv(int fd, uint8_t *buf, size_t cap, int ms);
/* Sends BIND with the ticket every 250 ms until BOUND (at most 20 times); asserts the answer is
 * 0x02 and the leg, and no longer than the BIND. */
void media_bind(world *w, int fd, const uint8_t *ticket, size_t len, int leg);
/* A MEDIA datagram of len bytes (0x03, then bytes from seed) into out. */
void media_frame(uint8_t *out, size_t len, uint32_t seed);
/* Reads and drops whatever is queued on fd; returns how many datagrams. */
int media_drain(int fd, int ms);

#endif
