/* The blocking layer's wait for one job (net.h): the blocking kurer_* calls submit their
 * request and sleep on a condition variable until its completion wakes them. */
#include "job_wait.h"

#include "kurer/error.h"

int kurer__job_wait(kurer *k, kurer__job *j, kurer__job_waiter *w)
{
    w->blocking = 1;
    w->finished = 0;
    if (uv_mutex_init(&w->mu) != 0)
        return KURER_ENOMEM;
    if (uv_cond_init(&w->cond) != 0) {
        uv_mutex_destroy(&w->mu);
        return KURER_ENOMEM;
    }
    int rc = kurer__net_submit(k, j);
    if (rc == 0) {
        uv_mutex_lock(&w->mu);
        while (!w->finished)
            uv_cond_wait(&w->cond, &w->mu);
        uv_mutex_unlock(&w->mu);
    }
    uv_cond_destroy(&w->cond);
    uv_mutex_destroy(&w->mu);
    return rc;
}

int kurer__job_waiter_wake(kurer__job_waiter *w)
{
    if (!w->blocking)
        return 0;
    uv_mutex_lock(&w->mu);
    w->finished = 1;
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->mu);
    return 1; /* the waiting caller frees the job */
}
