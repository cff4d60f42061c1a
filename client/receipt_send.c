/* The receipts this device owes, sent (receipt.h): per peer and type one Receipt with up to
 * KURER_RECEIPT_TIMESTAMPS_MAX timestamps, encrypted for each of the peer's held devices, and
 * the same as a SyncMessage ReceiptSent for each of our own other devices, in one SendRequest.
 * Not through the outbox (no message row): the owed rows are the durable part, deleted once
 * the relay accepted the receipt for the peer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "engine.h"
#include "home.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"
#include "net.h"
#include "receipt.h"
#include "session.h"

#define OWED_MAX 1024 /* owed receipts looked at per flush */

typedef struct env_list {
    kurer_envelope v[2 * KURER_USER_DEVICES_MAX];
    uint8_t *ct[2 * KURER_USER_DEVICES_MAX];
    size_t n;
} env_list;

static void envs_free(env_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ct[i]);
    l->n = 0;
}

/* The receipt (or its sync copy, for our own devices) encrypted for user/device. */
static int add_envelope(kurer *k, env_list *l, const kurer_content *c, const char *user,
                        uint32_t device)
{
    if (l->n >= sizeof(l->v) / sizeof(l->v[0]))
        return KURER_ELIMIT;
    kurer_buf pt, ct;
    kurer_envelope_type type;
    kurer_buf_init_secret(&pt, KURER_CONTENT_PADDED_MAX);
    kurer_buf_init(&ct, KURER__CIPHERTEXT_MAX);
    int rc = kurer_content_encode_padded(c, &pt);
    if (rc == 0)
        rc = kurer__session_encrypt(k->sess, user, device, pt.data, pt.len, &ct, &type);
    if (rc == 0 && (l->ct[l->n] = malloc(ct.len)) == NULL)
        rc = KURER_ENOMEM;
    if (rc == 0) {
        kurer_envelope *e = &l->v[l->n];
        memset(e, 0, sizeof(*e));
        memcpy(l->ct[l->n], ct.data, ct.len);
        kurer_random(e->id, sizeof(e->id));
        snprintf(e->to.user, sizeof(e->to.user), "%s", user);
        e->to.device_id = device;
        e->type = type;
        e->content = l->ct[l->n];
        e->content_len = ct.len;
        if (kurer__store_peer_serial(k->st, user, device, &e->to_serial) != 0)
            e->to_serial = 0;
        l->n++;
    }
    kurer_buf_release(&pt);
    kurer_buf_release(&ct);
    return rc;
}

static int add_user(kurer *k, env_list *l, const kurer_content *c, const char *user)
{
    uint32_t *devs = NULL;
    size_t n = 0;
    int rc = kurer__store_peer_devices(k->st, user, &devs, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (strcmp(user, k->own.user) != 0 || devs[i] != k->own.device_id)
            rc = add_envelope(k, l, c, user, devs[i]);
    free(devs);
    return rc;
}

/* One receipt for peer (for its messages in group gid, or one-to-one when gid is NULL): *done
 * set when the relay accepted it for the peer, or named the peer unknown (then it can never
 * go). */
static int send_one(kurer *k, const char *peer, int type, const uint8_t *gid, const uint64_t *ts,
                    size_t n, uint64_t deadline, int *done)
{
    kurer_content c, sync;
    env_list *l = calloc(1, sizeof(*l));
    *done = 0;
    if (l == NULL)
        return KURER_ENOMEM;
    int rc = kurer__engine_devices(k, peer, 0, deadline, NULL);
    if (rc == KURER_EUNKNOWNUSER) {
        *done = 1;
        free(l);
        return 0;
    }
    /* Our own other devices get the copy when their sessions can be had; never a reason to
     * hold back the peer's receipt. */
    int own_ok = rc == 0 && kurer__engine_devices(k, k->own.user, 0, deadline, NULL) == 0;
    memset(&c, 0, sizeof(c));
    c.body = KURER_CONTENT_RECEIPT;
    c.u.receipt.type = (kurer_receipt_type)type;
    c.u.receipt.timestamps = ts;
    c.u.receipt.n_timestamps = n;
    if (gid != NULL) {
        c.u.receipt.has_group = 1;
        memcpy(c.u.receipt.group_id, gid, KURER_GROUP_ID_LEN);
    }
    memset(&sync, 0, sizeof(sync));
    sync.body = KURER_CONTENT_SYNC_RECEIPT;
    snprintf(sync.u.sync_receipt.destination, sizeof(sync.u.sync_receipt.destination), "%s", peer);
    sync.u.sync_receipt.receipt = c.u.receipt;
    if (rc == 0)
        rc = add_user(k, l, &c, peer);
    if (rc == 0 && own_ok && add_user(k, l, &sync, k->own.user) != 0) {
        envs_free(l); /* without the copies: the peer's receipt alone */
        rc = add_user(k, l, &c, peer);
    }
    kurer_client_frame f;
    kurer_server_frame *r = NULL;
    if (rc == 0 && l->n > 0) {
        memset(&f, 0, sizeof(f));
        f.body = KURER_CLIENT_SEND;
        f.u.send.envelopes = l->v;
        f.u.send.n = l->n;
        rc = kurer__rpc(k, &f, deadline, &r);
        if (rc == 0 && r->body != KURER_SERVER_SEND_RESULT)
            rc = KURER_EMALFORMED;
        if (rc == 0)
            rc = kurer__answer_send_result(k->own.user, l->v, l->n, r);
    }
    for (size_t u = 0; rc == 0 && r != NULL && u < r->u.send_result.n; u++) {
        const kurer_user_result *ur = &r->u.send_result.users[u];
        if (ur->status == KURER_SEND_STALE_DEVICES) /* the next flush encrypts for them */
            rc = kurer__dir_sync(k, ur->user, ur->current.devices, ur->current.n_devices);
        else if (strcmp(ur->user, peer) == 0)
            *done = 1; /* accepted, or unknown: never sent again */
    }
    if (rc == 0 && l->n == 0)
        *done = 1; /* no device to tell */
    kurer__reply_free(r);
    envs_free(l);
    free(l);
    return rc;
}

/* The owed rows v[from..to) share peer, type and group. */
static int send_group(kurer *k, const kurer__receipt_out *v, size_t from, size_t to,
                      uint64_t deadline)
{
    uint64_t ts[KURER_RECEIPT_TIMESTAMPS_MAX];
    size_t n = 0;
    int done = 0, rc = 0;
    if (strcmp(v[from].peer, k->own.user) == 0) {
        done = 1; /* our own messages to ourselves: nobody to tell */
    } else {
        for (size_t i = from; i < to; i++)
            ts[n++] = (uint64_t)(v[i].sent_at < 0 ? 0 : v[i].sent_at);
        rc = send_one(k, v[from].peer, v[from].type, v[from].has_group ? v[from].group_id : NULL,
                      ts, n, deadline, &done);
    }
    if (rc == 0 && done) {
        if ((rc = kurer__store_begin(k->st)) != 0)
            return rc;
        for (size_t i = from; rc == 0 && i < to; i++)
            rc = kurer__store_receipt_done(k->st, v[i].id);
        if (rc != 0)
            kurer__store_rollback(k->st);
        else
            rc = kurer__store_commit(k->st);
    }
    return rc;
}

void kurer__receipts_flush(kurer *k, uint64_t deadline)
{
    if (k->ec.receipts_next_ms > kurer_time_mono_ms())
        return;
    kurer__receipt_out *v = malloc(OWED_MAX * sizeof(*v));
    size_t n = 0;
    int rc = v != NULL ? kurer__store_receipts_owed(k->st, v, OWED_MAX, &n) : KURER_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n;) {
        size_t j = i + 1;
        while (j < n && j - i < KURER_RECEIPT_TIMESTAMPS_MAX && v[j].type == v[i].type &&
               strcmp(v[j].peer, v[i].peer) == 0 && v[j].has_group == v[i].has_group &&
               memcmp(v[j].group_id, v[i].group_id, KURER_GROUP_ID_LEN) == 0)
            j++;
        rc = send_group(k, v, i, j, deadline);
        i = j;
    }
    free(v);
    if (rc != 0) {
        k->ec.receipts_next_ms = kurer_time_mono_ms() + KURER__RECEIPT_BACKOFF_MS;
        kurer_log(KURER_LOG_WARN, "client", "receipts_not_sent",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
    }
}
