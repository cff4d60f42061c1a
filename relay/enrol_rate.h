/* Online enrolment's guards (relay/enrol.c), apart so that the unit tests reach them: the table
 * of failed attempts per source address, and the one rule for an invitation's times (creation,
 * lifetime, expiry). Loop thread only. */
#ifndef KURER_RELAY_ENROL_RATE_H
#define KURER_RELAY_ENROL_RATE_H

#include <stddef.h>
#include <stdint.h>

#define KURER__ENROL_ADDRS     1024 /* source addresses remembered (then the oldest is evicted) */
#define KURER__ENROL_WINDOW_MS ((uint64_t)60000)

typedef struct kurer__enrol_addr {
    uint8_t key[16];    /* the address as kurer__enrol_rate_key makes it */
    uint64_t window_ms; /* start of its minute (0: a free slot) */
    uint64_t failed;    /* refused attempts in it */
} kurer__enrol_addr;

/* The table's key for ip (16 bytes, IPv4 as ::ffff:a.b.c.d): an IPv6 address is cut to its
 * /64 (one host, or one customer, holds a /64: counting per /128 would count nothing); an
 * IPv4-mapped address stays whole. */
void kurer__enrol_rate_key(const uint8_t ip[16], uint8_t key[16]);
/* The slot of ip among the n of tab as of now_ms: its own (its minute restarted when over), a
 * free or expired one, else the one whose minute began first, evicted. Never NULL for n > 0: a
 * full table never refuses everyone. */
kurer__enrol_addr *kurer__enrol_rate_slot(kurer__enrol_addr *tab, size_t n, const uint8_t ip[16],
                                          uint64_t now_ms);
/* 1 if ip may try now: fewer than rate refused attempts in its minute (rate 0: no limit). */
int kurer__enrol_rate_may_try(kurer__enrol_addr *tab, size_t n, const uint8_t ip[16], uint64_t rate,
                              uint64_t now_ms);
/* Charges one refused attempt to ip. */
void kurer__enrol_rate_failed(kurer__enrol_addr *tab, size_t n, const uint8_t ip[16],
                              uint64_t now_ms);

#define KURER__INVITE_LIFE_MAX ((int64_t)30 * 86400) /* the longest an invitation may live, s */
#define KURER__INVITE_SKEW_S   ((int64_t)300)        /* its creation this far ahead of our clock */

/* 1 if an invitation expiring at expires_at (Unix s) has expired at now: from that second on.
 * The only place that decides it (register, submit, poll). */
int kurer__invite_expired(int64_t expires_at, int64_t now);
/* An invitation's times at registration: 0; KURER_EINVITEEXPIRED when it has expired;
 * KURER_EINVAL when created_at is not positive, after expires_at, more than
 * KURER__INVITE_SKEW_S ahead of now, or it lives longer than KURER__INVITE_LIFE_MAX (computed
 * without overflow for any int64 values). */
int kurer__invite_times_check(int64_t created_at, int64_t expires_at, int64_t now);

#endif
