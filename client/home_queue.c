/* The engine's send half of a device home: a message (text, a notice, attachments) checked
 * against the policy and the size limits for every recipient device, stored with what it carries
 * and queued in the outbox in one transaction, and the Content each device gets. */
#include "home.h"

#include "outbox.h"
#include "receipt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/buf.h"
#include "kurer/content.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

/* The padded Content for one device: the DataMessage itself for the recipient's devices, a
 * SyncMessage carrying it for our own other devices. */
static int message_content(const kurer *k, const char *to, int level, const char *body,
                           int64_t sent_at, const char *for_user, const kurer__msg_extra *x,
                           const kurer_attachment *atts, size_t n_atts, kurer_buf *pt)
{
    kurer_content c;
    memset(&c, 0, sizeof(c));
    kurer_data_message *dm;
    if (strcmp(for_user, k->own.user) == 0 && strcmp(to, k->own.user) != 0) {
        c.body = KURER_CONTENT_SYNC;
        snprintf(c.u.sync.destination, sizeof(c.u.sync.destination), "%s", to);
        c.u.sync.timestamp = (uint64_t)sent_at;
        dm = &c.u.sync.message;
    } else {
        c.body = KURER_CONTENT_DATA;
        dm = &c.u.data;
    }
    dm->body = body;
    dm->classification = (kurer_level)level;
    dm->timestamp = (uint64_t)sent_at;
    dm->expire_timer = x->expire_timer;
    dm->timer_change = x->kind == KURER__KIND_TIMER;
    dm->attachments = atts;
    dm->n_attachments = n_atts;
    kurer_buf_reset(pt);
    return kurer_content_encode_padded(&c, pt);
}

int kurer__home_encrypt_for(kurer *k, int64_t message_rowid, const char *to, int level,
                            const char *body, int64_t sent_at, const char *user, uint32_t device)
{
    kurer_buf pt, ct;
    kurer_envelope_type type;
    /* A message for to is encrypted for to's devices and, as sync copies, for ours: never for
     * anyone else, whoever asks (a relay's answer must not widen the audience). */
    if (strcmp(user, to) != 0 && strcmp(user, k->own.user) != 0)
        return KURER_EINVAL;
    kurer__msg_extra x;
    memset(&x, 0, sizeof(x));
    int rc = kurer__store_message_extra(k->st, message_rowid, &x);
    if (rc != 0)
        return rc;
    kurer__attach_row *rows = NULL;
    size_t n_rows = 0;
    kurer_attachment atts[KURER_ATTACHMENTS_MAX];
    if ((rc = kurer__store_attach_load(k->st, message_rowid, &rows, &n_rows)) != 0)
        return rc;
    for (size_t i = 0; i < n_rows; i++)
        atts[i] = rows[i].a;
    kurer_buf_init_secret(&pt, KURER_CONTENT_PADDED_MAX);
    kurer_buf_init(&ct, KURER__CIPHERTEXT_MAX);
    rc = message_content(k, to, level, body, sent_at, user, &x, atts, n_rows, &pt);
    kurer_memzero(atts, sizeof(atts));
    kurer__attach_rows_free(rows, n_rows);
    if (rc == 0)
        rc = kurer__session_encrypt(k->sess, user, device, pt.data, pt.len, &ct, &type);
    if (rc == 0) {
        kurer__outbox_item it;
        memset(&it, 0, sizeof(it));
        it.message_rowid = message_rowid;
        kurer_random(it.envelope_id, sizeof(it.envelope_id));
        snprintf(it.to_user, sizeof(it.to_user), "%s", user);
        it.to_device = device;
        it.type = (int)type;
        it.content = ct.data;
        it.content_len = ct.len;
        it.next_attempt_at = kurer__home_now(k) * 1000;
        rc = kurer__store_outbox_add(k->st, &it);
    }
    kurer_buf_release(&pt);
    kurer_buf_release(&ct);
    return rc;
}

/* Our own other devices (held as peers): each must have a valid certificate that allows the
 * level, like a recipient's. */
static int check_own_devices(kurer *k, int level, uint32_t **devs, size_t *n, kurer_refusal *why)
{
    kurer_verified v;
    int rc = kurer__store_peer_devices(k->st, k->own.user, devs, n);
    for (size_t i = 0; rc == 0 && i < *n; i++) {
        if ((*devs)[i] == k->own.device_id)
            continue;
        rc = kurer__session_peer_check(k->sess, k->own.user, (*devs)[i], &v);
        if (rc != 0) {
            kurer__home_refuse(why, KURER_REFUSED_BY_RECIPIENT, k->own.user, (*devs)[i], 0);
        } else if (level > (int)v.clearance) {
            kurer__home_refuse(why, KURER_REFUSED_BY_RECIPIENT, k->own.user, (*devs)[i],
                               (int)v.clearance);
            rc = KURER_ECLEARANCE;
        }
    }
    if (rc != 0) {
        free(*devs);
        *devs = NULL;
        *n = 0;
    }
    return rc;
}

static int queue_message(kurer *k, const char *to, int level, const char *body,
                         const kurer__msg_extra *notice, const kurer_attachment *atts,
                         size_t n_atts, kurer_refusal *why, int64_t *rowid);

int kurer__home_queue(kurer *k, const char *to, int level, const char *body, kurer_refusal *why,
                      int64_t *rowid)
{
    return queue_message(k, to, level, body, NULL, NULL, 0, why, rowid);
}

int kurer__home_queue_ex(kurer *k, const char *to, int level, const char *body,
                         const kurer__msg_extra *notice, kurer_refusal *why, int64_t *rowid)
{
    return queue_message(k, to, level, body, notice, NULL, 0, why, rowid);
}

int kurer__home_queue_atts(kurer *k, const char *to, int level, const char *body,
                           const kurer_attachment *atts, size_t n_atts, kurer_refusal *why,
                           int64_t *rowid)
{
    return queue_message(k, to, level, body, NULL, atts, n_atts, why, rowid);
}

/* What n attachment pointers add to a Content: their fixed fields with tags, and names. */
size_t kurer__home_atts_size(const kurer_attachment *atts, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += 112 + strlen(atts[i].content_type) + strlen(atts[i].file_name);
    return bytes;
}

/* The three above: a text message (notice NULL), a notice, or a message with attachments,
 * stored with what it carries in one transaction. */
static int queue_message(kurer *k, const char *to, int level, const char *body,
                         const kurer__msg_extra *notice, const kurer_attachment *atts,
                         size_t n_atts, kurer_refusal *why, int64_t *rowid)
{
    uint32_t *devs = NULL, *own = NULL;
    size_t n = 0, n_own = 0;
    if (body == NULL || n_atts > KURER_ATTACHMENTS_MAX || (n_atts > 0 && atts == NULL))
        return KURER_EINVAL;
    int rc = kurer_check_send(k, to, level, why);
    if (rc != 0)
        return rc;
    if ((rc = kurer__store_peer_devices(k->st, to, &devs, &n)) != 0)
        return rc;
    if (strcmp(to, k->own.user) != 0 && (rc = check_own_devices(k, level, &own, &n_own, why)) != 0)
        goto out;
    size_t others = 0; /* the size for every device it goes to, before anything is stored */
    for (size_t i = 0; i < n_own; i++)
        others += own[i] != k->own.device_id;
    if ((rc = kurer__outbox_size_check(
             to, n, others, strlen(body) + kurer__home_atts_size(atts, n_atts), why)) != 0)
        goto out;

    int64_t now_ms = kurer__home_now(k) * 1000;
    kurer__msg m;
    memset(&m, 0, sizeof(m));
    kurer_random(m.envelope_id, sizeof(m.envelope_id));
    m.direction = KURER__DIR_OUT;
    snprintf(m.peer, sizeof(m.peer), "%s", to);
    m.level = level;
    m.body = body;
    m.body_len = strlen(body);
    m.sent_at = now_ms;
    m.received_at = now_ms;
    m.state = KURER__MSG_PENDING;

    if ((rc = kurer__store_begin(k->st)) != 0)
        goto out;
    rc = kurer__store_message_insert(k->st, &m);
    if (rc == 0)
        rc = kurer__receipt_queue_extra(k, m.rowid, to, notice, now_ms);
    if (rc == 0)
        rc = kurer__store_attach_put(k->st, m.rowid, atts, n_atts);
    /* A device that cannot be encrypted for is named: its certificate or session refused. */
    for (size_t i = 0; rc == 0 && i < n; i++)
        if ((strcmp(to, k->own.user) != 0 || devs[i] != k->own.device_id) &&
            (rc = kurer__home_encrypt_for(k, m.rowid, to, level, body, now_ms, to, devs[i])) != 0)
            kurer__home_refuse(why, KURER_REFUSED_BY_RECIPIENT, to, devs[i], 0);
    for (size_t i = 0; rc == 0 && i < n_own; i++)
        if (own[i] != k->own.device_id &&
            (rc = kurer__home_encrypt_for(k, m.rowid, to, level, body, now_ms, k->own.user,
                                          own[i])) != 0)
            kurer__home_refuse(why, KURER_REFUSED_BY_RECIPIENT, k->own.user, own[i], 0);
    if (rc != 0) {
        kurer__store_rollback(k->st);
        goto out;
    }
    rc = kurer__store_commit(k->st);
    if (rc == 0 && rowid != NULL)
        *rowid = m.rowid;
out:
    free(devs);
    free(own);
    return rc;
}
