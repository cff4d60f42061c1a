/* Relay unit tests (issue 10, item 4): what integration tests reach only through processes,
 * in-process and without sockets. One binary; each test_<case> is its own ctest entry
 * relay_units_<case> (tests/CMakeLists.txt). This header: the fixture and the cases by file. */
#ifndef KURER_TEST_RELAY_UNITS_H
#define KURER_TEST_RELAY_UNITS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kurer/util.h"
#include "relay_internal.h"

#define FX_NOW  ((int64_t)kurer_time_unix())
#define FX_YEAR ((int64_t)365 * 86400)

/* A relay with no loop, store or listener: default configuration, an empty trust store (nothing
 * revoked) and an empty directory. */
relay *fx_relay_new(void);
void fx_relay_free(relay *r);
kurer_device_address fx_addr(const char *user, uint32_t device_id);
/* A connection of r authenticated as user/device_id (no socket: c is NULL). */
rconn fx_conn(relay *r, const char *user, uint32_t device_id);
/* Registers user/device_id in r's directory with a decodable one-certificate chain whose
 * not_after is given (in the past: not current); returns the chain's length in bytes. */
size_t fx_dir_add(relay *r, const char *user, uint32_t device_id, int64_t not_after);

/* test_relay_units.c: token buckets, source addresses, prekey takes */
void test_bucket(void **state);
void test_bucket_refill(void **state);
void test_bucket_overflow(void **state);
void test_bucket_per_device(void **state);
void test_addr_table(void **state);
void test_take(void **state);

/* test_relay_enrol.c: online enrolment's guards (relay/enrol_rate.c) */
void test_enrol_rate_full(void **state);
void test_enrol_rate_v6(void **state);
void test_invite_times(void **state);
void test_invite_expiry(void **state);

/* test_relay_tables.c: the hash table and the dispatch table */
void test_htab(void **state);
void test_htab_growth(void **state);
void test_htab_collisions(void **state);
void test_htab_many(void **state);
void test_htab_remove_iterating(void **state);
void test_dispatch(void **state);
void test_dispatch_table(void **state);

/* test_relay_match.c: the directory matcher */
void test_match_sets(void **state);
void test_match_unknown(void **state);
void test_classify_accepted(void **state);
void test_classify_stale(void **state);
void test_classify_unknown(void **state);
void test_classify_own_user(void **state);
void test_classify_device_limit(void **state);

/* test_relay_policy.c: the send policy */
void test_policy_envelope_limits(void **state);
void test_policy_deliver_fits(void **state);
void test_policy_bounds_rate(void **state);
void test_policy_result_fits(void **state);
void test_policy_stale_fit(void **state);

#endif
