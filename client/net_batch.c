/* Several requests in flight from one worker (net.h, kurer__rpc_batch): the blob transfers keep
 * a window of chunks outstanding, so that the relay commits them in one round, instead of one
 * round trip and one commit per chunk. And the waits of a worker: a pause with the home lock
 * given up, and a request the relay's rate limit refused, sent again (kurer__rpc_paced). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "home.h"
#include "net.h"
#include "net_internal.h"
#include "kurer/util.h"

#define PACED_FIRST_MS 100  /* the first wait after an ERATE answer */
#define PACED_MAX_MS   1600 /* the longest, doubling from the first */

void kurer__pause_unlocked(kurer *k, uint64_t deadline, uint64_t ms)
{
    uint64_t now = kurer_time_mono_ms();
    if (now >= deadline)
        return;
    if (now + ms > deadline)
        ms = deadline - now;
    int depth = kurer__hlock_release(k);
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    kurer__hlock_reacquire(k, depth);
}

int kurer__rpc_paced(kurer *k, kurer_client_frame *f, uint64_t deadline, kurer_server_frame **out)
{
    uint64_t wait = PACED_FIRST_MS;
    for (;;) {
        int rc = kurer__rpc(k, f, deadline, out);
        if (rc != KURER_ERATE || kurer_time_mono_ms() + wait >= deadline)
            return rc;
        kurer__pause_unlocked(k, deadline, wait);
        wait = wait * 2 < PACED_MAX_MS ? wait * 2 : PACED_MAX_MS;
    }
}

int kurer__rpc_batch(kurer *k, kurer_client_frame *f, size_t n, uint64_t deadline,
                     kurer_server_frame **out, int *rcs)
{
    kurer__net *net = k->net;
    waiter *w = calloc(n ? n : 1, sizeof(*w));
    size_t queued = 0;
    int rc = 0;
    if (w == NULL)
        return KURER_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        rcs[i] = KURER_ECLOSED;
    }
    uv_mutex_lock(&net->mu);
    for (; queued < n; queued++) {
        f[queued].request_id = w[queued].id = ++net->next_id;
        if ((rc = kurer__net_enqueue_locked(net, &f[queued])) != 0)
            break;
        w[queued].next = net->pending;
        net->pending = &w[queued];
    }
    uv_mutex_unlock(&net->mu);
    int depth = kurer__hlock_release(k);
    uv_mutex_lock(&net->mu);
    for (size_t i = 0; i < queued; i++) {
        while (!w[i].done && !net->stopping &&
               kurer__net_timed_wait(&net->cond, &net->mu, deadline) == 0)
            ;
        if (w[i].done)
            continue;
        for (size_t j = i; j < queued; j++) { /* not answered: out of the list */
            if (w[j].done)
                continue;
            for (waiter **pw = &net->pending; *pw != NULL; pw = &(*pw)->next)
                if (*pw == &w[j]) {
                    *pw = w[j].next;
                    break;
                }
            w[j].rc = net->stopping ? KURER_ECLOSED : KURER_ETIMEOUT;
        }
        break;
    }
    uv_mutex_unlock(&net->mu);
    kurer__hlock_reacquire(k, depth);
    for (size_t i = 0; i < queued; i++) {
        if (w[i].reply == NULL) {
            rcs[i] = w[i].rc != 0 ? w[i].rc : KURER_ECLOSED;
        } else if (w[i].reply->body == KURER_SERVER_ERROR) {
            int code = w[i].reply->u.error.code;
            rcs[i] = kurer_err_known(code) ? code : KURER_EINTERNAL;
            kurer__reply_free(w[i].reply);
        } else {
            rcs[i] = 0;
            out[i] = w[i].reply;
        }
    }
    for (size_t i = queued; i < n; i++)
        rcs[i] = rc;
    free(w);
    return 0;
}
