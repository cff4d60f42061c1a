/* Handshakes: IK (cheap checks first, the chain, the queue length in message 2; the
 * connection is the device's only once its first transport record decrypts) and NK (rate
 * limited per source address, unauthenticated for life). */
#include "kurer/enrol.h"
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

static void refuse(rconn *rc, int code)
{
    kurer_handshake_accept a;
    kurer_buf b;
    memset(&a, 0, sizeof(a));
    a.protocol_version = KURER_PROTOCOL_VERSION;
    a.has_error = 1;
    a.error_code = code;
    snprintf(a.error_message, sizeof(a.error_message), "%s", kurer_strerror(code));
    kurer_buf_init(&b, KURER_FRAME_MAX);
    rc->r->handshakes_failed++;
    kurer__count_reject(rc->r, code);
    rc->close_counted = 1;
    char peer[64];
    kurer_conn_peer(rc->c, peer, sizeof(peer));
    kurer_log_field f[] = {KURER_LOG_STR("peer", peer),
                           KURER_LOG_STR("reason", kurer_err_name(code))};
    kurer_log(KURER_LOG_INFO, "relay", "handshake_refused", f, 2);
    kurer__audit(rc->r, "refused", f, 2);
    if (kurer_handshake_accept_encode(&a, &b) != 0 ||
        kurer_conn_hs_reply(rc->c, 0, b.data, b.len, code) != 0)
        kurer_conn_close(rc->c, code);
    kurer_buf_release(&b);
}

typedef struct hs_ctx {
    rconn *rc;
    kurer_chain chain;
} hs_ctx;

static void on_hs_count(void *arg, int err, const kurer_store_row *rows, size_t n, uint64_t total,
                        uint64_t high)
{
    hs_ctx *h = arg;
    rconn *rc = h->rc;
    relay *r = rc->r;
    (void)rows;
    (void)n;
    (void)high;
    if (rc->c == NULL || kurer_conn_closing(rc->c)) {
        goto out;
    }
    if (err != 0) {
        refuse(rc, err);
        goto out;
    }
    /* The chain was checked before the store answered; a list accepted meanwhile missed this
     * connection (kurer__disconnect_revoked looks at authenticated ones only). */
    if (kurer_trust_chain_revoked(r->trust, &rc->v)) {
        refuse(rc, KURER_EREVOKED);
        goto out;
    }
    kurer_buf cb;
    kurer_buf_init(&cb, KURER_CHAIN_BYTES_MAX);
    if (kurer_chain_encode(&h->chain, &cb) != 0) {
        kurer_buf_release(&cb);
        refuse(rc, KURER_EINTERNAL);
        goto out;
    }
    rc->hs_chain = kurer_buf_steal(&cb, &rc->hs_chain_len);
    kurer_handshake_accept a;
    kurer_buf b;
    memset(&a, 0, sizeof(a));
    a.protocol_version = KURER_PROTOCOL_VERSION;
    a.server_time = kurer_time_unix() * 1000;
    a.queued = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
    a.idle_timeout_ms = (uint32_t)r->cfg.idle_timeout_ms; /* (config bounds it to a day) */
    rc->queued = a.queued;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    if (rc->hs_chain == NULL || kurer_handshake_accept_encode(&a, &b) != 0 ||
        kurer_conn_hs_reply(rc->c, 1, b.data, b.len, 0) != 0) {
        kurer_buf_release(&b);
        kurer_conn_close(rc->c, KURER_EINTERNAL);
        goto out;
    }
    kurer_buf_release(&b);
    /* Not the device's yet: message 1 may be a replay. It becomes so in kurer__conn_on_established,
     * when its first transport record has decrypted. */
    rc->accepted = 1;
out:
    kurer__rconn_unref(rc);
    free(h);
}

typedef struct dev_stored {
    relay *r;
    kurer_device_address addr;
} dev_stored;

/* A directory entry committed: the other nodes (store = postgres) read it from the store. */
static void on_device_stored(void *arg, int err)
{
    dev_stored *x = arg;
    if (err == 0)
        kurer__cluster_device_stored(x->r, &x->addr);
    free(x);
}

/* IK: the peer's first transport record decrypted, so it holds the device's keys (a replayed
 * message 1 never gets here). Only now does the connection count as the device's: it replaces
 * an older one, is registered in the directory, logged as connected and served. */
void kurer__conn_on_established(kurer_conn *c, const uint8_t *payload, size_t n)
{
    rconn *rc = kurer_conn_data(c);
    relay *r = rc->r;
    (void)payload;
    (void)n;
    if (rc->nk || !rc->accepted)
        return; /* NK: never authenticated (no identity) */
    if (kurer_trust_chain_revoked(r->trust, &rc->v) || kurer_time_unix() > rc->v.not_after) {
        int code = kurer_time_unix() > rc->v.not_after ? KURER_EEXPIRED : KURER_EREVOKED;
        rc->accepted = 0; /* refused, not unconfirmed */
        kurer__send_error(rc, 0, code, 1);
        return;
    }
    /* One live connection per device: the newest wins, unless it is a copy of the home that
     * must not (instance.c); a connection of another copy is told so, not just EBUSY. */
    rconn *old = kurer__online(r, &rc->addr);
    int same = old != NULL && old->instance_id == rc->instance_id;
    if (kurer__instance_check(r, rc) != 0) {
        {
            kurer_log_field f_[] = {KURER_LOG_STR("user", rc->addr.user),
                                    KURER_LOG_INT("device", rc->addr.device_id),
                                    KURER_LOG_STR("reason", "ECLONED")};
            kurer_log(KURER_LOG_WARN, "relay", "device_cloned", f_, 2);
            kurer__audit(r, "device_disconnected", f_, 3);
        }
        if (old != NULL && old != rc && same) /* two copies of one instance: both are told */
            kurer__send_error(old, 0, KURER_ECLONED, 1);
        rc->accepted = 0;
        kurer__send_error(rc, 0, KURER_ECLONED, 1);
        return;
    }
    if (old != NULL && old != rc) {
        r->replaced++;
        kurer__send_error(
            old, 0,
            same || old->instance_id == 0 || rc->instance_id == 0 ? KURER_EBUSY : KURER_ECLONED, 1);
    }
    rc->authed = 1;
    kurer__preauth_done(rc);
    r->handshakes_ok++;
    kurer__online_set(r, rc);
    kurer__cluster_connected(r, rc); /* and on the other nodes */
    /* Register (or refresh) the device in the directory. */
    dir_entry *e = kurer__dir_find(r, &rc->addr);
    int changed = e == NULL || e->serial != rc->v.serial;
    if (kurer__dir_put(r, &rc->addr, &rc->v, rc->hs_chain, rc->hs_chain_len) == 0 && changed) {
        kurer_store_device d = {rc->addr, rc->v.serial, rc->hs_chain, rc->hs_chain_len};
        dev_stored *x = malloc(sizeof(*x));
        if (x != NULL) {
            x->r = r;
            x->addr = rc->addr;
        }
        if (x == NULL || kurer_store_put_device(r->store, &d, on_device_stored, x) != 0) {
            free(x);
            kurer_log(KURER_LOG_WARN, "relay", "directory_write_failed", NULL, 0);
        }
    }
    if (kurer__instance_take(r, rc))
        kurer_log(KURER_LOG_WARN, "relay", "device_instance_replaced",
                  (kurer_log_field[]){KURER_LOG_STR("user", rc->addr.user),
                                      KURER_LOG_INT("device", rc->addr.device_id)},
                  2);
    free(rc->hs_chain);
    rc->hs_chain = NULL;
    rc->hs_chain_len = 0;
    kurer__arm_expiry(r, rc->v.not_after);
    char peer[64];
    kurer_conn_peer(rc->c, peer, sizeof(peer));
    kurer_log_field f[] = {KURER_LOG_STR("user", rc->addr.user),
                           KURER_LOG_INT("device", rc->addr.device_id),
                           KURER_LOG_INT("queued", rc->queued), KURER_LOG_STR("peer", peer),
                           KURER_LOG_INT("serial", rc->v.serial)};
    kurer_log(KURER_LOG_INFO, "relay", "device_connected", f, 3);
    kurer__audit(r, "authenticated", f, 5);
    kurer__start_fetch(rc);
    rc->refs++;
    if (kurer_store_count_prekeys(r->store, &rc->addr, kurer__on_prekeys_counted, rc) != 0)
        rc->refs--;
}

/* The Noise static key of the leaf certificate, read before any signature is checked: a
 * mismatch is refused for the price of a comparison. */
static int leaf_key_matches(const kurer_chain *ch, const uint8_t *rs)
{
    /* A leaf that is no device certificate has no Noise key: the chain check says EROLE. */
    return ch->n == 0 || ch->certs[0].body.role != KURER_ROLE_DEVICE ||
           kurer_ct_equal(ch->certs[0].body.noise_key, rs, 32);
}

void kurer__conn_on_hs(kurer_conn *c, kurer_noise_pattern p, const uint8_t *rs,
                       const uint8_t *payload, size_t n)
{
    rconn *rc = kurer_conn_data(c);
    relay *r = rc->r;
    kurer_handshake_init hi;
    if (p == KURER_NOISE_NK) {
        /* docs/protocol.md 1.4: message 1 carries nothing, or an EnrolHello that makes it an
         * enrolment session (3.6); message 2 a HandshakeAccept. */
        kurer_handshake_accept a;
        kurer_buf b;
        int enrol = n != 0;
        if (enrol && kurer_enrol_hello_decode(payload, n) != 0) {
            refuse(rc, KURER_EMALFORMED);
            return;
        }
        /* NK handshakes cost a DH each and need no identity: metered per source address. */
        if (rc->pa != NULL &&
            !kurer__bucket_take(&rc->pa->nk, r->cfg.nk_rate, 1, kurer_time_mono_ms())) {
            refuse(rc, KURER_ERATE);
            return;
        }
        memset(&a, 0, sizeof(a));
        a.protocol_version = KURER_PROTOCOL_VERSION;
        a.server_time = kurer_time_unix() * 1000;
        kurer_buf_init(&b, KURER_FRAME_MAX);
        if (kurer_handshake_accept_encode(&a, &b) != 0 ||
            kurer_conn_hs_reply(rc->c, 1, b.data, b.len, 0) != 0) {
            kurer_buf_release(&b);
            kurer_conn_close(rc->c, KURER_EINTERNAL);
            return;
        }
        kurer_buf_release(&b);
        /* Unauthenticated for its whole life: it stays counted as pre-auth (max_handshakes,
         * max_preauth_per_address), its records stay under max_preauth_record and the
         * handshake deadline ends it (net/). */
        rc->nk = 1;
        rc->enrol = enrol;
        r->n_nk++;
        r->nk_sessions++;
        r->enrol_sessions += (uint64_t)enrol;
        return;
    }
    if (p != KURER_NOISE_IK || rs == NULL) {
        refuse(rc, KURER_EUNSUPPORTED);
        return;
    }
    /* An empty payload is a message without its HandshakeInit, not a bad argument. */
    int err = n == 0 ? KURER_EMALFORMED : kurer_handshake_init_decode(payload, n, &hi);
    if (err == 0 && !leaf_key_matches(&hi.chain, rs))
        err = KURER_EKEYMISMATCH;
    if (err == 0)
        err = kurer_trust_verify_chain(r->trust, &hi.chain, kurer_time_unix(), &rc->v);
    if (err == 0 && !kurer_ct_equal(rc->v.noise_key, rs, 32))
        err = KURER_EKEYMISMATCH;
    if (err != 0) {
        refuse(rc, err);
        return;
    }
    snprintf(rc->addr.user, sizeof(rc->addr.user), "%s", rc->v.user);
    rc->addr.device_id = rc->v.device_id;
    rc->instance_id = hi.instance_id;
    rc->instance_count = hi.instance_count;
    hs_ctx *h = malloc(sizeof(*h));
    if (h == NULL) {
        refuse(rc, KURER_ENOMEM);
        return;
    }
    h->rc = rc;
    h->chain = hi.chain;
    rc->refs++;
    /* The second message carries the queue length: ask the store first. */
    if (kurer_store_fetch(r->store, &rc->addr, 0, 0, on_hs_count, h) != 0) {
        rc->refs--;
        free(h);
        refuse(rc, KURER_ENOMEM);
    }
}
