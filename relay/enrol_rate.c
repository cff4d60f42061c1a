/* Online enrolment's guards: failed attempts per source address, an invitation's times
 * (relay/enrol_rate.h). */
#include "enrol_rate.h"

#include <string.h>

#include "kurer/error.h"

void kurer__enrol_rate_key(const uint8_t ip[16], uint8_t key[16])
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(key, ip, 16);
    if (memcmp(ip, v4mapped, sizeof(v4mapped)) != 0)
        memset(key + 8, 0, 8);
}

kurer__enrol_addr *kurer__enrol_rate_slot(kurer__enrol_addr *tab, size_t n, const uint8_t ip[16],
                                          uint64_t now_ms)
{
    uint8_t key[16];
    kurer__enrol_addr *free_slot = NULL, *oldest = NULL;
    kurer__enrol_rate_key(ip, key);
    for (size_t i = 0; i < n; i++) {
        kurer__enrol_addr *a = &tab[i];
        if (a->window_ms != 0 && memcmp(a->key, key, 16) == 0) {
            if (now_ms - a->window_ms >= KURER__ENROL_WINDOW_MS) {
                a->window_ms = now_ms;
                a->failed = 0;
            }
            return a;
        }
        if (free_slot == NULL &&
            (a->window_ms == 0 || now_ms - a->window_ms >= KURER__ENROL_WINDOW_MS))
            free_slot = a;
        if (oldest == NULL || a->window_ms < oldest->window_ms)
            oldest = a;
    }
    kurer__enrol_addr *a = free_slot != NULL ? free_slot : oldest;
    if (a != NULL) {
        memcpy(a->key, key, 16);
        a->window_ms = now_ms != 0 ? now_ms : 1; /* 0 marks a free slot */
        a->failed = 0;
    }
    return a;
}

int kurer__enrol_rate_may_try(kurer__enrol_addr *tab, size_t n, const uint8_t ip[16], uint64_t rate,
                              uint64_t now_ms)
{
    if (rate == 0)
        return 1;
    kurer__enrol_addr *a = kurer__enrol_rate_slot(tab, n, ip, now_ms);
    return a != NULL && a->failed < rate; /* n == 0: no table, refused */
}

void kurer__enrol_rate_failed(kurer__enrol_addr *tab, size_t n, const uint8_t ip[16],
                              uint64_t now_ms)
{
    kurer__enrol_addr *a = kurer__enrol_rate_slot(tab, n, ip, now_ms);
    if (a != NULL)
        a->failed++;
}

int kurer__invite_expired(int64_t expires_at, int64_t now)
{
    return now >= expires_at;
}

int kurer__invite_times_check(int64_t created_at, int64_t expires_at, int64_t now)
{
    if (kurer__invite_expired(expires_at, now))
        return KURER_EINVITEEXPIRED;
    /* created_at > 0 and expires_at > created_at: the difference below cannot overflow, and
     * now + skew is checked against INT64_MAX first. */
    if (created_at <= 0 || expires_at <= created_at ||
        expires_at - created_at > KURER__INVITE_LIFE_MAX ||
        (now <= INT64_MAX - KURER__INVITE_SKEW_S && created_at > now + KURER__INVITE_SKEW_S))
        return KURER_EINVAL;
    return 0;
}
