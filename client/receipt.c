/* Receipts and disappearing messages, the receive side and the history's view (receipt.h). */
#include "receipt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_recv.h"
#include "home.h"
#include "kurer/log.h"
#include "net.h"
#include "store_group.h"

static int64_t now_ms(kurer *k)
{
    return kurer__home_now(k) * 1000;
}

/* A group's receipt from sender, who is not a member of it (or the group is not known here):
 * counted and logged, never recorded. */
static int group_receipt_ignored(kurer *k, const kurer_verified *sender, const kurer_receipt *r,
                                 int why)
{
    uint64_t n = 0;
    int rc = kurer__store_counter_get(k->st, KURER__COUNTER_GROUP_RECEIPTS_IGNORED, &n);
    if (rc == 0)
        rc = kurer__store_counter_set(k->st, KURER__COUNTER_GROUP_RECEIPTS_IGNORED, n + 1);
    char hex[KURER__GROUP_HEX_LEN + 1];
    kurer__group_hex(r->group_id, hex);
    hex[8] = '\0'; /* enough to tell groups apart in a log */
    kurer_log(KURER_LOG_WARN, "client", "group_receipt_ignored",
              (kurer_log_field[]){KURER_LOG_STR("group", hex), KURER_LOG_STR("peer", sender->user),
                                  KURER_LOG_INT("device", sender->device_id),
                                  KURER_LOG_STR("reason", kurer_err_name(why))},
              4);
    return kurer__store_fatal(rc) ? rc : 0;
}

int kurer__receipt_received(kurer *k, const kurer_verified *sender, const kurer_content *c)
{
    int own = strcmp(sender->user, k->own.user) == 0;
    const kurer_receipt *r;
    const char *peer;
    int direction;
    if (c->body == KURER_CONTENT_SYNC_RECEIPT) {
        if (!own)
            return KURER_EUNSUPPORTED; /* only our own devices copy their receipts to us */
        r = &c->u.sync_receipt.receipt;
        peer = c->u.sync_receipt.destination;
        direction = KURER__DIR_IN; /* the messages our other device received */
    } else {
        if (own)
            return 0; /* we never receipt our own messages: nothing to record */
        r = &c->u.receipt;
        peer = sender->user;
        direction = KURER__DIR_OUT;
    }
    /* A group's receipt counts only from a member of the group (here, now). */
    int why = r->has_group && !own ? kurer__group_data_check(k, sender, r->group_id) : 0;
    if (why != 0)
        return kurer__store_fatal(why) ? why : group_receipt_ignored(k, sender, r, why);
    for (size_t i = 0; i < r->n_timestamps; i++) {
        int64_t ts = r->timestamps[i] > INT64_MAX ? INT64_MAX : (int64_t)r->timestamps[i];
        size_t matched = 0;
        /* A group's messages are matched by who sent them: ours (on any of our devices) for a
         * member's receipt, the destination's for our own device's copy. */
        int rc =
            r->has_group
                ? kurer__store_receipt_add_group(k->st, r->group_id, own ? peer : k->own.user, own,
                                                 ts, sender->user, sender->device_id, (int)r->type,
                                                 now_ms(k), &matched)
                : kurer__store_receipt_add(k->st, direction, peer, ts, sender->user,
                                           sender->device_id, (int)r->type, now_ms(k), &matched);
        if (rc != 0)
            return rc;
        if (matched > 0 && direction == KURER__DIR_IN && r->type == KURER_RECEIPT_READ)
            kurer__expiry_changed(k); /* a countdown may have started */
        if (matched > 0) {
            kurer_receipt_info info;
            memset(&info, 0, sizeof(info));
            info.peer = peer;
            info.user = sender->user;
            info.device_id = sender->device_id;
            info.read = r->type == KURER_RECEIPT_READ;
            info.sent_at = ts;
            info.outgoing = direction == KURER__DIR_OUT;
            if (r->has_group)
                kurer__group_hex(r->group_id, info.group);
            kurer__event_receipt(k, &info);
        }
    }
    return 0;
}

int kurer__receipt_stored(kurer *k, const kurer__msg *m, const kurer_data_message *dm, int is_sync)
{
    if (m->state == KURER__MSG_QUARANTINED)
        return 0; /* nothing of it is kept: no timer to honour, no receipt owed */
    kurer__msg_extra x;
    memset(&x, 0, sizeof(x));
    x.expire_timer = dm->expire_timer;
    x.kind = dm->timer_change ? KURER__KIND_TIMER : KURER__KIND_TEXT;
    /* The sender's countdown starts when it is sent: for the copy our other device sent, now. */
    if (is_sync && !dm->timer_change && dm->expire_timer > 0)
        x.expires_at = now_ms(k) + (int64_t)dm->expire_timer * 1000;
    int rc = 0;
    if (x.expires_at != 0)
        kurer__expiry_changed(k);
    if (x.expire_timer != 0 || x.kind != KURER__KIND_TEXT)
        rc = kurer__store_message_set_extra(k->st, m->rowid, &x);
    if (rc == 0 && dm->timer_change)
        rc = kurer__store_timer_set(k->st, m->peer, dm->expire_timer, now_ms(k));
    if (rc == 0 && !is_sync && !dm->timer_change && strcmp(m->peer, k->own.user) != 0)
        rc = kurer__store_receipt_queue_group(k->st, m->peer, KURER__RECEIPT_DELIVERED, m->sent_at,
                                              dm->has_group ? dm->group.group_id : NULL, now_ms(k));
    /* Our own group message, from our other device: counted against the members it went to. */
    if (rc == 0 && dm->has_group && strcmp(m->peer, k->own.user) == 0)
        rc = kurer__group_message_members(k, m->rowid, dm->group.group_id);
    return rc;
}

/* The message's timer: the notice's own, or the conversation's, counting down from now. */
int kurer__receipt_queue_extra(kurer *k, int64_t rowid, const char *to,
                               const kurer__msg_extra *notice, int64_t now_ms)
{
    kurer__msg_extra x;
    memset(&x, 0, sizeof(x));
    int rc = 0;
    if (notice != NULL)
        x = *notice;
    else if ((rc = kurer__store_timer_get(k->st, to, &x.expire_timer)) == 0 && x.expire_timer > 0)
        x.expires_at = now_ms + (int64_t)x.expire_timer * 1000;
    if (x.expires_at != 0)
        kurer__expiry_changed(k);
    return rc != 0 || (x.expire_timer == 0 && x.kind == KURER__KIND_TEXT)
               ? rc
               : kurer__store_message_set_extra(k->st, rowid, &x);
}

void kurer__receipt_rows_free(kurer__receipt_rows *rows)
{
    if (rows == NULL)
        return;
    free(rows->v);
    free(rows->user);
    memset(rows, 0, sizeof(*rows));
}

typedef struct fill_ctx {
    kurer_message *out;
    kurer__receipt_rows *rows;
    char last_user[KURER_SUBJECT_MAX + 1];
    uint32_t last_device;
    int have_last;
    int user_read; /* the current user has a read device counted already */
} fill_ctx;

static int grow(kurer__receipt_rows *rows)
{
    if (rows->n < rows->cap)
        return 0;
    size_t cap = rows->cap ? rows->cap * 2 : 8;
    kurer_message_receipt *nv = realloc(rows->v, cap * sizeof(*nv));
    if (nv == NULL)
        return KURER_ENOMEM;
    rows->v = nv;
    char(*nu)[KURER_SUBJECT_MAX + 1] = realloc(rows->user, cap * sizeof(*nu));
    if (nu == NULL)
        return KURER_ENOMEM;
    rows->user = nu;
    rows->cap = cap;
    return 0;
}

/* Rows come ordered by user, device, type: one entry per device, counts per device and user. */
static int fill_row(void *ud, const kurer__receipt_row *r)
{
    fill_ctx *f = ud;
    kurer_message *o = f->out;
    int same_user = f->have_last && strcmp(f->last_user, r->user) == 0;
    int same_device = same_user && f->last_device == r->device_id;
    if (!same_device) {
        o->delivered_devices++;
        if (!same_user) {
            o->delivered_users++;
            f->user_read = 0;
        }
        if (f->rows != NULL) {
            int rc = grow(f->rows);
            if (rc != 0)
                return rc;
            kurer_message_receipt *e = &f->rows->v[f->rows->n];
            memset(e, 0, sizeof(*e));
            snprintf(f->rows->user[f->rows->n], KURER_SUBJECT_MAX + 1, "%s", r->user);
            e->device_id = r->device_id;
            f->rows->n++;
        }
        snprintf(f->last_user, sizeof(f->last_user), "%s", r->user);
        f->last_device = r->device_id;
        f->have_last = 1;
    }
    if (f->rows != NULL) {
        kurer_message_receipt *e = &f->rows->v[f->rows->n - 1];
        if (r->type == KURER__RECEIPT_READ)
            e->read_at = r->at;
        else
            e->delivered_at = r->at;
    }
    if (r->type == KURER__RECEIPT_READ) {
        o->read_devices++;
        if (!f->user_read)
            o->read_users++;
        f->user_read = 1;
    }
    return 0;
}

int kurer__receipt_fill(kurer *k, int64_t rowid, kurer_message *out, kurer__receipt_rows *rows)
{
    kurer__msg_extra x;
    memset(&x, 0, sizeof(x));
    int rc = kurer__store_message_extra(k->st, rowid, &x);
    if (rc != 0)
        return rc;
    out->expire_timer = x.expire_timer;
    out->expires_at = x.expires_at;
    out->read_at = x.read_at;
    out->timer_change = x.kind == KURER__KIND_TIMER;
    fill_ctx f;
    memset(&f, 0, sizeof(f));
    f.out = out;
    f.rows = rows;
    if ((rc = kurer__store_receipt_each(k->st, rowid, fill_row, &f)) != 0 ||
        (rc = kurer__store_group_message_members(k->st, rowid, &out->group_members)) != 0)
        return rc;
    if (rows != NULL) {
        for (size_t i = 0; i < rows->n; i++)
            rows->v[i].user = rows->user[i];
        out->receipts = rows->v;
        out->n_receipts = rows->n;
    }
    return 0;
}

void kurer__expire_now(kurer *k)
{
    size_t n = 0;
    int rc = kurer__store_expire(k->st, now_ms(k), &n);
    if (rc == 0)
        rc = kurer__store_expiry_next(k->st, &k->expiry_next_ms);
    if (rc != 0) {
        k->expiry_next_ms = 0; /* look again at the next tick */
        kurer_log(KURER_LOG_WARN, "client", "expiry_failed",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
    } else if (n > 0) {
        kurer_log(KURER_LOG_INFO, "client", "messages_expired",
                  (kurer_log_field[]){KURER_LOG_INT("messages", (int64_t)n)}, 1);
    }
}

void kurer__expire_due(kurer *k)
{
    if (now_ms(k) >= k->expiry_next_ms)
        kurer__expire_now(k);
}

void kurer__expiry_changed(kurer *k)
{
    k->expiry_next_ms = 0;
}
