#ifndef KURER_CLIENT_JOB_WAIT_H
#define KURER_CLIENT_JOB_WAIT_H

#include <uv.h>

#include "net.h"

/* The blocking layer's wait for one job (job_wait.c): the caller submits the job with
 * kurer__job_wait and sleeps until the job's done, on the library thread, calls
 * kurer__job_waiter_wake (which returns 1 when a caller waits: then that caller frees the job,
 * not done). Every job ends by its deadline, so the wait always ends. */
typedef struct kurer__job_waiter {
    int blocking, finished;
    uv_mutex_t mu;
    uv_cond_t cond;
} kurer__job_waiter;
/* Submits j and waits for its end; 0, KURER_ENOMEM (no mutex) or kurer__net_submit's error.
 * The job is the caller's again afterwards, whatever the result. */
KURER_MUST_CHECK int kurer__job_wait(kurer *k, kurer__job *j, kurer__job_waiter *w);
int kurer__job_waiter_wake(kurer__job_waiter *w);

#endif
