/* Prekeys: uploads (signature checked, pool bounded), fetches (rate per device, one-time
 * prekeys bounded per taker), and PrekeysLow. */
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

/* Tells a connected device that it holds fewer one-time prekeys than prekeys_low. */
static void push_prekeys_low(relay *r, const kurer_device_address *a, uint64_t remaining)
{
    rconn *rc = kurer__online(r, a);
    if (rc == NULL || remaining >= r->cfg.prekeys_low)
        return;
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.body = KURER_SERVER_PREKEYS_LOW;
    f.u.prekeys_low.remaining = (uint32_t)remaining;
    if (kurer__send_frame(rc, &f) == 0)
        r->prekeys_low_pushed++;
}

void kurer__on_prekeys_counted(void *arg, int err, uint64_t count)
{
    rconn *rc = arg;
    /* KURER_ENOTFOUND: never uploaded, so it holds none. */
    if (rc->c != NULL && !kurer_conn_closing(rc->c) && (err == 0 || err == KURER_ENOTFOUND))
        push_prekeys_low(rc->r, &rc->addr, err == 0 ? count : 0);
    kurer__rconn_unref(rc);
}

static void on_prekeys_stored(void *arg, int err, uint64_t count)
{
    req_ctx2 *q = arg;
    (void)count;
    if (err == KURER_ELIMIT)
        q->rc->r->prekey_uploads_over_max++;
    if (err != 0) {
        kurer__send_error(q->rc, q->request_id, err, 0);
    } else {
        q->rc->r->prekey_uploads++;
        kurer__send_ok(q->rc, q->request_id);
    }
    kurer__rconn_unref(q->rc);
    free(q);
}

void kurer__handle_prekeys(rconn *rc, const kurer_client_frame *f)
{
    const kurer_prekey_upload *u = &f->u.prekeys;
    /* The signed prekey must be signed by the identity key of this device's certificate:
     * a relay that stored anything else would let X3DH start from a key nobody vouches for. */
    int err = kurer_identity_verify(rc->v.identity_key, u->signed_prekey.public_key,
                                    KURER_PREKEY_PUBLIC_LEN, u->signed_prekey.signature);
    if (err != 0) {
        kurer__send_error(rc, f->request_id, err == KURER_ENOMEM ? err : KURER_EBADSIG, 0);
        return;
    }
    /* The pool is bounded (prekeys_max): an upload that alone is over it needs no store. */
    if (u->n_one_time > rc->r->cfg.prekeys_max) {
        rc->r->prekey_uploads_over_max++;
        kurer__send_error(rc, f->request_id, KURER_ELIMIT, 0);
        return;
    }
    req_ctx2 *q = malloc(sizeof(*q));
    kurer_store_prekeys p;
    if (q == NULL) {
        kurer__send_error(rc, f->request_id, KURER_ENOMEM, 0);
        return;
    }
    memset(&p, 0, sizeof(p));
    p.dev = rc->addr;
    p.registration_id = u->registration_id;
    p.signed_prekey = u->signed_prekey;
    p.one_time = u->one_time;
    p.n_one_time = u->n_one_time;
    p.max_one_time = rc->r->cfg.prekeys_max;
    q->rc = rc;
    q->request_id = f->request_id;
    rc->refs++;
    if (kurer_store_put_prekeys(rc->r->store, &p, on_prekeys_stored, q) != 0) {
        rc->refs--;
        free(q);
        kurer__send_error(rc, f->request_id, KURER_ENOMEM, 0);
    }
}

static void on_prekeys_taken(void *arg, int err, const kurer_store_bundle *b, size_t n)
{
    req_ctx2 *q = arg;
    rconn *rc = q->rc;
    relay *r = rc->r;
    kurer_prekey_bundle out[KURER_USER_DEVICES_MAX];
    size_t m = 0;
    if (err != 0) {
        kurer__send_error(rc, q->request_id, err, 0);
        goto done;
    }
    for (size_t i = 0; i < n && m < KURER_USER_DEVICES_MAX; i++) {
        /* The owner learns about a low pool whether or not the asker is still here. */
        push_prekeys_low(r, &b[i].dev, b[i].remaining);
        if (b[i].has_one_time)
            r->prekeys_handed_out++;
        else
            r->bundles_without_one_time++;
        const dir_entry *e = kurer__dir_find(r, &b[i].dev);
        if (e == NULL)
            continue; /* cannot happen: fetches ask only for directory devices */
        memset(&out[m], 0, sizeof(out[m]));
        if (kurer__dir_chain(e, &out[m].chain) != 0)
            continue;
        out[m].address = b[i].dev;
        out[m].registration_id = b[i].registration_id;
        out[m].signed_prekey = b[i].signed_prekey;
        out[m].has_one_time = b[i].has_one_time;
        out[m].one_time = b[i].one_time;
        m++;
    }
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = q->request_id;
    f.body = KURER_SERVER_BUNDLES;
    f.u.bundles.bundles = out;
    f.u.bundles.n = m;
    if (kurer__send_frame(rc, &f) != 0 && rc->c != NULL && !kurer_conn_closing(rc->c))
        kurer__send_error(rc, q->request_id, KURER_ELIMIT, 0);
done:
    kurer__rconn_unref(rc);
    free(q);
}

void kurer__handle_fetch_prekeys(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    const kurer_prekey_fetch *pf = &f->u.fetch_prekeys;
    kurer_device_address devs[KURER_USER_DEVICES_MAX];
    size_t n = 0;
    int64_t now = kurer_time_unix();
    /* Each fetch takes one-time prekeys of other users: one device may not drain them. */
    if (!kurer__rate_take(rc, B_FETCH, 1)) {
        r->prekey_fetches_rate_limited++;
        kurer__send_error(rc, f->request_id, KURER_ERATE, 0);
        return;
    }
    /* Only current devices (valid, unrevoked chain in the directory); listed ids that are not
     * current are left out of the answer, like unknown users in a lookup. */
    dir_user *du = kurer__dir_user_find(r, pf->user);
    for (size_t d = 0; du != NULL && d < du->n && n < KURER_USER_DEVICES_MAX; d++) {
        const dir_entry *e = &du->devs[d];
        if (!kurer__dir_current(r, e, now))
            continue;
        int wanted = pf->n_device_ids == 0;
        for (size_t k = 0; k < pf->n_device_ids && !wanted; k++)
            wanted = pf->device_ids[k] == e->device_id;
        if (wanted) {
            memset(&devs[n], 0, sizeof(devs[n]));
            snprintf(devs[n].user, sizeof(devs[n].user), "%s", du->user);
            devs[n].device_id = e->device_id;
            n++;
        }
    }
    /* One device may take only prekey_take_max one-time prekeys of another user's devices per
     * window; beyond it the bundles carry the signed prekey alone (X3DH works without). A
     * device's own other devices are not metered: its sync sessions need them. */
    size_t one_time = n;
    if (strcmp(pf->user, rc->addr.user) != 0 && r->cfg.prekey_take_max > 0) {
        one_time = kurer__take_grant(&r->takes, &rc->addr, pf->user, n, r->cfg.prekey_take_max,
                                     r->cfg.prekey_take_window_s * 1000, kurer_time_mono_ms());
        r->prekeys_withheld += n - one_time;
    }
    req_ctx2 *q = malloc(sizeof(*q));
    if (q == NULL) {
        kurer__send_error(rc, f->request_id, KURER_ENOMEM, 0);
        return;
    }
    q->rc = rc;
    q->request_id = f->request_id;
    rc->refs++;
    if (kurer_store_take_prekeys(r->store, devs, n, one_time, on_prekeys_taken, q) != 0) {
        rc->refs--;
        free(q);
        kurer__send_error(rc, f->request_id, KURER_ENOMEM, 0);
    }
}
