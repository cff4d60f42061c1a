/* outbox_async: the asynchronous outbox calls of libkurer.so, as an application (or the
 * daemon) makes them, for tests/integration/client_day.sh:
 *
 *   outbox_async HOME list          kurer_outbox_list_async: "ID STATE TO" per entry, then
 *                                   "done ERR" (ERR the completion's error name, or OK)
 *   outbox_async HOME cancel ID     kurer_outbox_cancel_async: "done ERR"
 *   outbox_async HOME retry ID      kurer_outbox_retry_async: "done ERR"
 *
 * The passphrase comes from KURER_PASSPHRASE. Callbacks run on the library thread; main
 * waits for the completion on a condition variable (bounded: 60 s). Exit 0 if the completion
 * came (whatever its error), 1 otherwise. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kurer/kurer.h>

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int finished, err;
} waiter;

/* Library thread. */
static int entry(void *ud, const kurer_outbox_entry *e)
{
    (void)ud;
    printf("%lld %s %s\n", (long long)e->message_id,
           e->state == KURER_MESSAGE_PENDING ? "pending" : "failed", e->to);
    return 0;
}

/* Library thread, once. */
static void done(void *ud, const kurer_result *r)
{
    waiter *w = ud;
    pthread_mutex_lock(&w->mu);
    w->err = r->err;
    w->finished = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static int wait_done(waiter *w)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&w->mu);
    while (!w->finished)
        if (pthread_cond_timedwait(&w->cond, &w->mu, &until) != 0)
            break;
    int ok = w->finished;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

int main(int argc, char **argv)
{
    const char *pw = getenv("KURER_PASSPHRASE");
    if ((argc != 3 && argc != 4) || pw == NULL) {
        fprintf(stderr, "usage: outbox_async HOME list | cancel ID | retry ID\n");
        return 2;
    }
    kurer_open_options o = {
        .home = argv[1], .pass = pw, .pass_len = strlen(pw), .holder = "outbox_async"};
    kurer *k = NULL;
    int rc = kurer_open_with(&o, &k);
    if (rc != 0) {
        fprintf(stderr, "outbox_async: %s\n", kurer_strerror(rc));
        return 1;
    }
    waiter w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cond, NULL);
    int64_t id = argc == 4 ? strtoll(argv[3], NULL, 10) : 0;
    if (strcmp(argv[2], "list") == 0 && argc == 3)
        rc = kurer_outbox_list_async(k, entry, NULL, done, &w);
    else if (strcmp(argv[2], "cancel") == 0 && argc == 4)
        rc = kurer_outbox_cancel_async(k, id, 20000, done, &w);
    else if (strcmp(argv[2], "retry") == 0 && argc == 4)
        rc = kurer_outbox_retry_async(k, id, 20000, done, &w);
    else
        rc = KURER_EINVAL;
    int came = 0;
    if (rc != 0) {
        printf("refused %s\n", kurer_err_name(rc)); /* at once: the completion never runs */
    } else if ((came = wait_done(&w)) != 0) {
        printf("done %s\n", w.err == 0 ? "OK" : kurer_err_name(w.err));
    } else {
        printf("no completion in 60 s\n");
    }
    fflush(stdout);
    kurer_disconnect(k);
    kurer_close(k);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.mu);
    return rc != 0 || came ? 0 : 1;
}
