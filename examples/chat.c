/* kurer-chat: a small program on libkurer's asynchronous API (docs/client.md).
 *
 *   KURER_PASSPHRASE=... kurer-chat HOME              receive what is waiting, then exit
 *   KURER_PASSPHRASE=... kurer-chat HOME TO TEXT      send TEXT to TO, receive, then exit
 *
 * It opens the home, asks for the connection and (with TO) a send, all without blocking, and
 * waits on a condition variable of its own while the library thread reports: the connection
 * state, each message (printed), the send's completion, and the end of what the relay held.
 * Only kurer.h; built against libkurer.so. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kurer/kurer.h>

typedef struct chat {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int sending, sent_rc, drained, failed_rc;
} chat;

/* A peer's text may hold anything: control characters are shown as '?'. */
static void print_safe(const char *s)
{
    for (; *s != '\0'; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* Library thread: a stored message (given at least once; the mark clears when this returns). */
static void on_message(void *ud, const kurer_message *m)
{
    (void)ud;
    if (m->state == KURER_MESSAGE_QUARANTINED) {
        printf("%s [%s] (quarantined: %s)\n", m->peer, kurer_level_name(m->level),
               kurer_strerror(m->reason));
    } else {
        printf("%s%s [%s] ", m->outgoing ? "to " : "", m->peer, kurer_level_name(m->level));
        print_safe(m->body);
        printf("\n");
    }
    fflush(stdout);
}

static void on_state(void *ud, kurer_conn_state s, int reason)
{
    chat *c = ud;
    static const char *const names[] = {"offline", "connecting", "online", "waiting"};
    fprintf(stderr, "kurer-chat: %s%s%s\n", names[s], reason != 0 ? ": " : "",
            reason != 0 ? kurer_strerror(reason) : "");
    if (s == KURER_CONN_OFFLINE && reason != 0) { /* refused: nothing more will come */
        pthread_mutex_lock(&c->mu);
        c->failed_rc = reason;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mu);
    }
}

static void on_queue_empty(void *ud)
{
    chat *c = ud;
    pthread_mutex_lock(&c->mu);
    c->drained = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

/* Library thread: the send's completion. */
static void sent(void *ud, const kurer_result *r)
{
    chat *c = ud;
    if (r->err == 0)
        printf("sent\n");
    else if (r->message_id != 0)
        fprintf(stderr, "kurer-chat: queued, not yet accepted (%s)\n", kurer_strerror(r->err));
    else
        fprintf(stderr, "kurer-chat: not sent: %s\n", kurer_strerror(r->err));
    fflush(stdout);
    pthread_mutex_lock(&c->mu);
    c->sending = 0;
    c->sent_rc = r->err;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: kurer-chat HOME [TO TEXT]   (passphrase in KURER_PASSPHRASE)\n");
        return 2;
    }
    const char *pass = getenv("KURER_PASSPHRASE");
    if (pass == NULL) {
        fprintf(stderr, "kurer-chat: set KURER_PASSPHRASE\n");
        return 2;
    }
    kurer *k = NULL;
    kurer_open_options o = {
        .home = argv[1], .pass = pass, .pass_len = strlen(pass), .holder = "kurer-chat"};
    int rc = kurer_open_with(&o, &k);
    if (rc != 0) {
        fprintf(stderr, "kurer-chat: cannot open %s: %s\n", argv[1], kurer_strerror(rc));
        return 1;
    }
    chat c;
    memset(&c, 0, sizeof(c));
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cond, NULL);
    kurer_events ev = {
        .on_message = on_message, .ud = &c, .on_state = on_state, .on_queue_empty = on_queue_empty};
    kurer_set_events(k, &ev);
    rc = kurer_connect_async(k, 30000, NULL, NULL);
    if (rc == 0 && argc == 4) {
        c.sending = 1;
        rc = kurer_send_async(k, argv[2], KURER_LEVEL_UNCLASSIFIED, argv[3], 30000, sent, &c);
        if (rc != 0)
            c.sending = 0;
    }
    if (rc != 0) {
        fprintf(stderr, "kurer-chat: %s\n", kurer_strerror(rc));
    } else {
        /* Wait (at most 60 s) for the send's result and the end of the relay's queue. */
        struct timespec end;
        clock_gettime(CLOCK_REALTIME, &end);
        end.tv_sec += 60;
        pthread_mutex_lock(&c.mu);
        while ((c.sending || !c.drained) && c.failed_rc == 0 &&
               pthread_cond_timedwait(&c.cond, &c.mu, &end) == 0)
            ;
        rc = c.failed_rc != 0 ? c.failed_rc : c.sending || !c.drained ? KURER_ETIMEOUT : c.sent_rc;
        pthread_mutex_unlock(&c.mu);
    }
    kurer_disconnect(k);
    kurer_close(k); /* joins the library thread; nothing is called back after this */
    pthread_cond_destroy(&c.cond);
    pthread_mutex_destroy(&c.mu);
    return rc == 0 ? 0 : 1;
}
