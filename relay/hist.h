/* A latency histogram for the metrics page (Prometheus histogram: cumulative buckets, sum and
 * count). Fixed bucket bounds in microseconds, from 100 µs to 10 s; not thread-safe: each
 * histogram has one writer (the loop thread, or the store's writer under its mutex). */
#ifndef KURER_RELAY_HIST_H
#define KURER_RELAY_HIST_H

#include <stddef.h>
#include <stdint.h>

#define KURER__HIST_N 14

static const uint64_t kurer__hist_le_us[KURER__HIST_N] = {100,    250,     500,     1000,    2500,
                                                          5000,   10000,   25000,   50000,   100000,
                                                          250000, 1000000, 2500000, 10000000};

typedef struct kurer__hist {
    uint64_t bucket[KURER__HIST_N]; /* observations <= kurer__hist_le_us[i] (not cumulative) */
    uint64_t count;                 /* all observations (the +Inf bucket) */
    uint64_t sum_us;
} kurer__hist;

static inline void kurer__hist_add(kurer__hist *h, uint64_t us)
{
    for (size_t i = 0; i < KURER__HIST_N; i++)
        if (us <= kurer__hist_le_us[i]) {
            h->bucket[i]++;
            break;
        }
    h->count++;
    h->sum_us += us;
}

#endif
