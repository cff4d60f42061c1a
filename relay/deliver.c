/* Delivery: pushing stored envelopes to a device's live connection, in seq order, with
 * backpressure; the table of live connections (one per device, the newest wins). */
#include "relay_internal.h"

#include <errno.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/signal.h"
#include "kurer/util.h"

/* Pushes one envelope; 0, or an error after which pushing stops. */
int kurer__push_env(rconn *rc, uint64_t seq, const kurer_envelope *e)
{
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.body = KURER_SERVER_DELIVER;
    f.u.deliver.seq = seq;
    f.u.deliver.envelope = *e;
    int err = kurer__send_frame(rc, &f);
    if (err == 0) {
        rc->last_pushed = seq;
        rc->r->env_delivered++;
    }
    return err;
}

/* Pushes one stored envelope; 0, or an error after which pushing stops. */
int kurer__push(rconn *rc, uint64_t seq, const uint8_t *env, size_t len)
{
    kurer_envelope e;
    kurer_arena mem = {0};
    int err = kurer_envelope_decode(env, len, &e, &mem);
    if (err != 0) {
        kurer_arena_release(&mem);
        return 0; /* cannot happen for what we stored; skip rather than wedge the mailbox */
    }
    err = kurer__push_env(rc, seq, &e);
    kurer_arena_release(&mem);
    return err;
}

static void on_fetched(void *arg, int err, const kurer_store_row *rows, size_t n, uint64_t total,
                       uint64_t high)
{
    rconn *rc = arg;
    size_t pushed = 0;
    (void)total;
    rc->fetching = 0;
    if (rc->c == NULL || kurer_conn_closing(rc->c) || err != 0) {
        if (err != 0 && rc->c != NULL)
            kurer__send_error(rc, 0, err, 1);
        kurer__rconn_unref(rc);
        return;
    }
    for (; pushed < n; pushed++) {
        if (rows[pushed].seq <= rc->last_pushed)
            continue;
        if (kurer__push(rc, rows[pushed].seq, rows[pushed].env, rows[pushed].len) != 0)
            break;
    }
    if (rc->c != NULL && !kurer_conn_closing(rc->c)) {
        if (kurer_conn_congested(rc->c)) {
            rc->dirty = 1; /* on_drain fetches again */
        } else if (n >= rc->r->cfg.deliver_batch || rc->dirty) {
            kurer__start_fetch(rc);
        } else {
            /* Everything of the device up to high was in this fetch: the seqs between the rows
             * (acked, cancelled or refused envelopes) are no gap to wait for, and the next
             * envelope, whose previous seq is high, may go out early (send.c, on_seqs). */
            if (pushed == n && high > rc->last_pushed)
                rc->last_pushed = high;
            rc->caught_up = 1;
            if (!rc->sent_empty) {
                kurer_server_frame f;
                memset(&f, 0, sizeof(f));
                f.body = KURER_SERVER_QUEUE_EMPTY;
                (void)kurer__send_frame(rc, &f);
                rc->sent_empty = 1;
            }
        }
    }
    kurer__rconn_unref(rc);
}

void kurer__start_fetch(rconn *rc)
{
    if (rc->fetching || rc->c == NULL || kurer_conn_closing(rc->c))
        return;
    if (kurer_conn_congested(rc->c)) {
        rc->dirty = 1;
        return;
    }
    rc->caught_up = 0;
    rc->dirty = 0;
    rc->fetching = 1;
    rc->refs++;
    if (kurer_store_fetch(rc->r->store, &rc->addr, rc->last_pushed,
                          (size_t)rc->r->cfg.deliver_batch, on_fetched, rc) != 0) {
        rc->fetching = 0;
        rc->refs--;
        kurer_conn_close(rc->c, KURER_ENOMEM);
    }
}

rconn *kurer__online(relay *r, const kurer_device_address *a)
{
    uint64_t h = htab_hash_dev(&r->online, a->user, a->device_id);
    for (hnode *n = htab_first(&r->online, h); n != NULL; n = htab_next(n, h)) {
        rconn *rc = HTAB_ENTRY(n, rconn, onode);
        if (rc->addr.device_id == a->device_id && strcmp(rc->addr.user, a->user) == 0)
            return rc->c != NULL && !kurer_conn_closing(rc->c) ? rc : NULL;
    }
    return NULL;
}

/* rc (just authenticated) becomes its device's live connection, replacing any other. */
void kurer__online_set(relay *r, rconn *rc)
{
    uint64_t h = htab_hash_dev(&r->online, rc->addr.user, rc->addr.device_id);
    for (hnode *n = htab_first(&r->online, h); n != NULL; n = htab_next(n, h)) {
        rconn *old = HTAB_ENTRY(n, rconn, onode);
        if (old->addr.device_id == rc->addr.device_id &&
            strcmp(old->addr.user, rc->addr.user) == 0) {
            htab_remove(&r->online, &old->onode);
            old->listed = 0;
            break;
        }
    }
    htab_insert(&r->online, &rc->onode, h);
    rc->listed = 1;
}
