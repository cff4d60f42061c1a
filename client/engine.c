/* The engine's procedures (engine.h): prekeys, the directory, bundles and X3DH, send with
 * per-user results, delivery with commit-then-ack, the outbox with retries, and the unreported
 * mark that makes every stored message reach the application at least once. They run on the
 * handle's workers with the home lock held (net.h); kurer__rpc gives it up while it waits. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "backup.h"
#include "group_recv.h"
#include "group_send.h"
#include "home.h"
#include "keychange.h"
#include "kurer/content.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/net.h"
#include "kurer/util.h"
#include "net.h"
#include "outbox.h"
#include "receipt.h"

#define PREKEYS_UPLOADED KURER__COUNTER_PREKEYS_UPLOADED
#define SEND_ATTEMPTS    4 /* stale device lists refreshed per message and flush */

/* ---- directory, sessions, prekeys ---- */

int kurer__engine_lookup(kurer *k, const char *const *users, size_t n_users, uint64_t deadline,
                         size_t *found)
{
    kurer_client_frame f;
    kurer_server_frame *r = NULL;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_LOOKUP;
    f.u.lookup.users = users;
    f.u.lookup.n = n_users;
    int rc = kurer__rpc(k, &f, deadline, &r);
    if (rc != 0)
        return rc;
    if (r->body != KURER_SERVER_DIRECTORY ||
        (rc = kurer__answer_directory(users, n_users, r)) != 0) {
        kurer__reply_free(r);
        return rc != 0 ? rc : KURER_EMALFORMED;
    }
    for (size_t u = 0; rc == 0 && u < n_users; u++) {
        const kurer_user_devices *ud = NULL;
        for (size_t i = 0; i < r->u.directory.n; i++)
            if (strcmp(r->u.directory.users[i].user, users[u]) == 0)
                ud = &r->u.directory.users[i];
        if (found != NULL)
            found[u] = ud != NULL ? ud->n_devices : 0;
        rc = kurer__dir_sync(k, users[u], ud != NULL ? ud->devices : NULL,
                             ud != NULL ? ud->n_devices : 0);
        if (rc == 0 && ud != NULL && ud->n_devices > 0)
            kurer__dir_note(k, users[u]);
    }
    kurer__reply_free(r);
    kurer__keychange_report(k, 0);
    return rc;
}

int kurer__engine_sessions(kurer *k, const char *user, uint64_t deadline, kurer_refusal *why)
{
    uint32_t *held = NULL, need[KURER_USER_DEVICES_MAX];
    size_t n_held = 0, n_need = 0;
    int rc = kurer__store_peer_devices(k->st, user, &held, &n_held);
    for (size_t i = 0; rc == 0 && i < n_held && n_need < KURER_USER_DEVICES_MAX; i++) {
        int has = kurer__session_exists(k->sess, user, held[i]);
        if (has < 0)
            rc = has;
        else if (has == 0)
            need[n_need++] = held[i];
    }
    free(held);
    if (rc != 0 || n_need == 0)
        return rc;
    kurer_client_frame f;
    kurer_server_frame *r = NULL;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_FETCH_PREKEYS;
    snprintf(f.u.fetch_prekeys.user, sizeof(f.u.fetch_prekeys.user), "%s", user);
    f.u.fetch_prekeys.device_ids = need;
    f.u.fetch_prekeys.n_device_ids = n_need;
    if ((rc = kurer__rpc_paced(k, &f, deadline, &r)) != 0) /* fetch_rate: waited for */
        return rc;
    if (r->body != KURER_SERVER_BUNDLES ||
        (rc = kurer__answer_bundles(user, need, n_need, r)) != 0) {
        kurer__reply_free(r);
        return rc != 0 ? rc : KURER_EMALFORMED;
    }
    for (size_t i = 0; i < r->u.bundles.n; i++) {
        const kurer_prekey_bundle *b = &r->u.bundles.bundles[i];
        int brc = kurer__session_process_bundle(k->sess, b);
        if (brc != 0)
            kurer_log(KURER_LOG_WARN, "client", "bundle_refused",
                      (kurer_log_field[]){KURER_LOG_STR("user", user),
                                          KURER_LOG_INT("device", b->address.device_id),
                                          KURER_LOG_STR("reason", kurer_err_name(brc))},
                      3);
    }
    kurer__reply_free(r);
    kurer__keychange_report(k, 0); /* a bundle's chain may carry a new key */
    for (size_t i = 0; rc == 0 && i < n_need; i++) {
        int has = kurer__session_exists(k->sess, user, need[i]);
        if (has < 0) {
            rc = has;
        } else if (has == 0) {
            /* No usable bundle: the device has not uploaded prekeys, or its bundle did not
             * verify. Nothing can be sent to it. */
            if (why != NULL) {
                memset(why, 0, sizeof(*why));
                why->by = KURER_REFUSED_BY_RECIPIENT;
                snprintf(why->user, sizeof(why->user), "%s", user);
                why->device_id = need[i];
            }
            rc = KURER_ENOTFOUND;
        }
    }
    return rc;
}

int kurer__engine_devices(kurer *k, const char *user, int fresh, uint64_t deadline,
                          kurer_refusal *why)
{
    const char *users[1] = {user};
    size_t found = 1;
    int rc = !fresh && kurer__dir_fresh(k, user)
                 ? 0
                 : kurer__engine_lookup(k, users, 1, deadline, &found);
    if (rc == 0 && found == 0)
        rc = KURER_EUNKNOWNUSER;
    return rc != 0 ? rc : kurer__engine_sessions(k, user, deadline, why);
}

/* Signed prekeys are rotated weekly; the previous ones are kept a month (docs/design.md). */
#define SPK_ROTATE_S    ((int64_t)7 * 86400)
#define SPK_KEEP_MS     ((int64_t)30 * 86400 * 1000)
#define SPK_UPLOADED_AT KURER__COUNTER_SPK_UPLOADED_AT

/* Uploads a new signed prekey and n_one_time one-time prekeys (0: a rotation only). */
static int upload_prekeys_n(kurer *k, size_t n_one_time, uint64_t deadline)
{
    kurer__prekeys *p = malloc(sizeof(*p));
    kurer_server_frame *r = NULL;
    if (p == NULL)
        return KURER_ENOMEM;
    int rc = kurer__session_generate_prekeys(k->sess, n_one_time, p);
    if (rc == 0) {
        kurer_client_frame f;
        memset(&f, 0, sizeof(f));
        f.body = KURER_CLIENT_PREKEYS;
        f.u.prekeys.registration_id = p->registration_id;
        f.u.prekeys.signed_prekey = p->signed_prekey;
        f.u.prekeys.one_time = p->one_time;
        f.u.prekeys.n_one_time = p->n_one_time;
        rc = kurer__rpc(k, &f, deadline, &r);
    }
    kurer__reply_free(r);
    free(p);
    if (rc == 0)
        rc = kurer__store_counter_set(k->st, PREKEYS_UPLOADED, 1);
    if (rc == 0)
        rc = kurer__store_counter_set(k->st, SPK_UPLOADED_AT, (uint64_t)kurer__home_now(k));
    if (rc == 0)
        rc = kurer__store_signed_prekeys_prune(k->st, kurer__home_now(k) * 1000 - SPK_KEEP_MS);
    kurer_log(rc == 0 ? KURER_LOG_INFO : KURER_LOG_WARN, "client", "prekeys_uploaded",
              (kurer_log_field[]){KURER_LOG_STR("result", kurer_err_name(rc)),
                                  KURER_LOG_INT("one_time", n_one_time)},
              2);
    return rc;
}

static int upload_prekeys(kurer *k, uint64_t deadline)
{
    return upload_prekeys_n(k, KURER__PREKEY_BATCH, deadline);
}

/* At each connection: a signed prekey a week old is replaced (pre-key messages made with the
 * previous one still decrypt: it is kept for a month). */
static int rotate_signed_prekey(kurer *k, uint64_t deadline)
{
    uint64_t at = 0;
    int rc = kurer__store_counter_get(k->st, SPK_UPLOADED_AT, &at);
    if (rc != 0)
        return rc;
    if (kurer__home_now(k) - (int64_t)at < SPK_ROTATE_S)
        return 0;
    return upload_prekeys_n(k, 0, deadline);
}

/* ---- receiving ---- */

typedef struct msg_copy {
    kurer *k;
    int replay;
    int found;
} msg_copy;

/* Hands a stored message to the application (the library thread gives it to on_message; the
 * unreported mark is cleared when that returns). */
static int emit_message(void *ud, const kurer__msg *m)
{
    msg_copy *c = ud;
    c->found = 1;
    kurer_message out;
    memset(&out, 0, sizeof(out));
    memcpy(out.id, m->envelope_id, sizeof(out.id));
    out.outgoing = m->direction == KURER__DIR_OUT;
    out.peer = m->peer;
    out.peer_device = m->peer_device;
    out.level = m->level;
    out.body = m->state == KURER__MSG_QUARANTINED ? "" : m->body;
    out.sent_at = m->sent_at;
    out.received_at = m->received_at;
    out.state = (kurer_message_state)m->state;
    out.reason = m->reason;
    (void)kurer__group_message_tag(c->k, m->rowid, out.group);
    if (kurer__receipt_fill(c->k, m->rowid, &out, NULL) != 0)
        out.expire_timer = 0; /* the message itself is given all the same */
    kurer__event_message(c->k, &out, m->rowid, c->replay);
    return 0;
}

void kurer__engine_replay(kurer *k)
{
    msg_copy c = {k, 1, 0};
    int rc = kurer__store_message_unreported_each(k->st, emit_message, &c);
    if (rc != 0)
        kurer_log(KURER_LOG_WARN, "client", "replay_failed",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
    kurer__keychange_report(k, 1);
}

int kurer__engine_unreported(kurer *k, int64_t rowid)
{
    kurer__hlock_take(k);
    int rc = kurer__store_message_unreported(k->st, rowid);
    kurer__hlock_give(k);
    return rc;
}

void kurer__engine_reported(kurer *k, int64_t rowid)
{
    kurer__hlock_take(k);
    int rc = kurer__store_message_reported(k->st, rowid);
    kurer__hlock_give(k);
    if (rc != 0) /* reported again at the next start: at least once, never lost */
        kurer_log(KURER_LOG_WARN, "client", "reported_mark_failed",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
}

/* Errors after which the envelope can never be stored: acked and reported, not retried. */
static int permanent(int rc)
{
    switch (rc) {
    case KURER_ENOMEM:
    case KURER_ESTORAGE:
    case KURER_EIO:
    case KURER_EBUSY:
    case KURER_ETIMEOUT:
    case KURER_ECLOSED:
    case KURER_ECORRUPT:
    case KURER_ECONNREFUSED:
    case KURER_EUNREACHABLE:
    case KURER_EHANDSHAKE:
    case KURER_ERESOLVE:
    case KURER_ECRLSTALE: /* a newer list will come (or the relay withholds it: still no loss) */
        return 0;
    default:
        return 1;
    }
}

static int ack_later(kurer *k, uint64_t seq)
{
    kurer__econn *n = &k->ec;
    uint64_t *a = realloc(n->acks, (n->n_acks + 1) * sizeof(*a));
    if (a == NULL)
        return KURER_ENOMEM;
    n->acks = a;
    n->acks[n->n_acks++] = seq;
    return 0;
}

static int handle_deliver(kurer *k, uint64_t seq, const kurer_envelope *e, uint64_t deadline)
{
    int state = -1;
    const char *from = e->from.user;
    uint32_t dev = e->from.device_id;
    if (e->to.device_id != k->own.device_id || strcmp(e->to.user, k->own.user) != 0) {
        /* Not ours: a relay that routes wrongly (or on purpose). Refused, and acked so that it
         * does not come back on every connection (it is our mailbox's copy only). */
        kurer_log(KURER_LOG_WARN, "client", "hostile_relay_answer",
                  (kurer_log_field[]){KURER_LOG_STR("answer", "deliver"),
                                      KURER_LOG_STR("reason", "addressed to another device")},
                  2);
        kurer__event_refused(k, from, dev, KURER_EMALFORMED);
        return ack_later(k, seq);
    }
    int rc = kurer__home_receive(k, e->id, from, dev, e->type, e->content, e->content_len, &state);
    if (rc == KURER_ENOTFOUND || rc == KURER_EKEYMISMATCH || rc == KURER_EREVOKED ||
        rc == KURER_EEXPIRED) {
        /* A sender we hold no certificate for, or one for another key or no longer valid (a
         * re-enrolled device writes first): ask the directory, verify, retry. A device gone
         * from it keeps the first reason (its certificate was revoked, not unknown). */
        const char *users[1] = {from};
        int lrc = kurer__engine_lookup(k, users, 1, deadline, NULL);
        if (lrc != 0 && !permanent(lrc))
            return lrc;
        if (lrc == 0) {
            int rrc = kurer__home_receive(k, e->id, from, dev, e->type, e->content, e->content_len,
                                          &state);
            rc = rrc == KURER_ENOTFOUND && rc != KURER_ENOTFOUND ? rc : rrc;
        }
    }
    if (rc == 0) {
        msg_copy c = {k, 0, 0};
        int frc = kurer__store_message_find(k->st, 0, e->id, emit_message, &c);
        if (frc != 0 && frc != KURER_ENOTFOUND)
            return frc;
    } else if (rc == KURER_ECRLSTALE) {
        /* The sender's revocation list is past its next update: not readable now, and not to
         * be lost. Left unacked, the relay delivers it again at the next connection; the
         * application hears why. */
        kurer_log(KURER_LOG_WARN, "client", "envelope_held",
                  (kurer_log_field[]){KURER_LOG_STR("from", from), KURER_LOG_INT("device", dev),
                                      KURER_LOG_STR("reason", kurer_err_name(rc))},
                  3);
        kurer__event_refused(k, from, dev, rc);
        return 0;
    } else if (rc != KURER_EDUPLICATE) {
        if (!permanent(rc))
            return rc; /* not acked: the relay delivers it again */
        kurer_log(KURER_LOG_WARN, "client", "envelope_refused",
                  (kurer_log_field[]){KURER_LOG_STR("from", from), KURER_LOG_INT("device", dev),
                                      KURER_LOG_STR("reason", kurer_err_name(rc))},
                  3);
        kurer__event_refused(k, from, dev, rc);
    }
    return ack_later(k, seq);
}

void kurer__engine_acks(kurer *k)
{
    kurer__econn *n = &k->ec;
    while (n->n_acks > 0) {
        size_t take = n->n_acks > KURER_ACK_SEQS_MAX ? KURER_ACK_SEQS_MAX : n->n_acks;
        kurer_client_frame f;
        memset(&f, 0, sizeof(f));
        f.body = KURER_CLIENT_ACK;
        f.u.ack.seqs = n->acks;
        f.u.ack.n = take;
        if (kurer__send_nowait(k, &f) != 0)
            break; /* not acked: the relay delivers them again, recognised as duplicates */
        memmove(n->acks, n->acks + take, (n->n_acks - take) * sizeof(*n->acks));
        n->n_acks -= take;
    }
    n->n_acks = 0;
}

void kurer__engine_push(kurer *k, const kurer_server_frame *f, uint64_t gen, uint64_t deadline)
{
    int rc = 0;
    switch (f->body) {
    case KURER_SERVER_DELIVER:
        rc = handle_deliver(k, f->u.deliver.seq, &f->u.deliver.envelope, deadline);
        break;
    case KURER_SERVER_PREKEYS_LOW:
        /* One refill per connection: a hostile relay that pushes PrekeysLow again and again
         * must not make us generate and store prekeys without end. */
        if (!k->ec.prekeys_refilled) {
            k->ec.prekeys_refilled = 1;
            rc = upload_prekeys(k, deadline);
        }
        break;
    case KURER_SERVER_QUEUE_EMPTY:
        kurer__engine_acks(k); /* what came is committed: acked before the receipts go */
        kurer__receipts_flush(k, deadline);
        kurer__event_queue_empty(k, gen);
        break;
    case KURER_SERVER_REVOCATION_INDEX:
        /* A list the relay just accepted: fetch it if newer (a failure waits for the next
         * connection). */
        (void)kurer__engine_fetch_lists(k, f->u.revocation_index.lists, f->u.revocation_index.n,
                                        deadline);
        break;
    default:
        break; /* an Error push: the relay closes, the library thread saw why */
    }
    if (rc != 0)
        kurer_log(KURER_LOG_WARN, "client", "push_not_handled",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
}

/* ---- sending ---- */

typedef struct item {
    int64_t rowid;
    int64_t message_rowid;
    kurer_envelope env;
    uint8_t *content;
} item;

typedef struct item_list {
    item *v;
    size_t n, cap;
    int64_t only_message; /* 0: every message */
} item_list;

static void items_free(item_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].content);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int collect_item(void *ud, const kurer__outbox_item *it)
{
    item_list *l = ud;
    if (l->only_message != 0 && it->message_rowid != l->only_message)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        item *nv = realloc(l->v, cap * sizeof(*nv));
        if (nv == NULL)
            return KURER_ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    item *x = &l->v[l->n];
    memset(x, 0, sizeof(*x));
    x->content = malloc(it->content_len ? it->content_len : 1);
    if (x->content == NULL)
        return KURER_ENOMEM;
    memcpy(x->content, it->content, it->content_len);
    x->rowid = it->rowid;
    x->message_rowid = it->message_rowid;
    memcpy(x->env.id, it->envelope_id, KURER_ENVELOPE_ID_LEN);
    snprintf(x->env.to.user, sizeof(x->env.to.user), "%s", it->to_user);
    x->env.to.device_id = it->to_device;
    x->env.type = (kurer_envelope_type)it->type;
    x->env.content = x->content;
    x->env.content_len = it->content_len;
    l->n++;
    return 0;
}

typedef struct msg_info {
    char to[KURER_SUBJECT_MAX + 1];
    int level;
    char *body; /* plaintext: release with msg_info_release */
    size_t body_len;
    int64_t sent_at;
    int state;
    int reason;
} msg_info;

/* Wipes and frees the plaintext copy. */
static void msg_info_release(msg_info *mi)
{
    if (mi->body != NULL) {
        kurer_memzero(mi->body, mi->body_len);
        free(mi->body);
    }
    mi->body = NULL;
    mi->body_len = 0;
}

static int copy_info(void *ud, const kurer__msg *m)
{
    msg_info *mi = ud;
    snprintf(mi->to, sizeof(mi->to), "%s", m->peer);
    mi->level = m->level;
    mi->sent_at = m->sent_at;
    mi->state = m->state;
    mi->reason = m->reason;
    mi->body = malloc(m->body_len + 1);
    if (mi->body == NULL)
        return KURER_ENOMEM;
    memcpy(mi->body, m->body, m->body_len);
    mi->body[m->body_len] = '\0';
    mi->body_len = m->body_len;
    return 0;
}

/* After a stale device list: the message gets an outbox item for every held device of user
 * (the recipient's, or ours for sync copies) and loses the items of devices no longer held. */
static int reencrypt(kurer *k, int64_t message_rowid, const char *user, uint64_t deadline,
                     kurer_refusal *why)
{
    msg_info mi;
    uint32_t *held = NULL;
    size_t n_held = 0;
    item_list old;
    memset(&mi, 0, sizeof(mi));
    memset(&old, 0, sizeof(old));
    old.only_message = message_rowid;
    int grc = 0;
    if (kurer__group_reencrypt(k, message_rowid, user, deadline, why, &grc))
        return grc; /* a group message: its items are made per group member device */
    int rc = kurer__engine_sessions(k, user, deadline, why);
    if (rc == 0)
        rc = kurer__store_message_find(k->st, message_rowid, NULL, copy_info, &mi);
    if (rc == 0)
        rc = kurer__store_peer_devices(k->st, user, &held, &n_held);
    if (rc == 0)
        rc = kurer__store_outbox_each_due(k->st, INT64_MAX, collect_item, &old);
    if (rc != 0)
        goto out;
    /* Policy again for the new devices: a new device may hold a lower clearance. */
    for (size_t i = 0; rc == 0 && i < n_held; i++) {
        kurer_verified v;
        if ((rc = kurer__session_peer_check(k->sess, user, held[i], &v)) == 0 &&
            mi.level > (int)v.clearance)
            rc = KURER_ECLEARANCE;
        if (rc != 0 && why != NULL) {
            memset(why, 0, sizeof(*why));
            why->by = KURER_REFUSED_BY_RECIPIENT;
            snprintf(why->user, sizeof(why->user), "%s", user);
            why->device_id = held[i];
            why->limit = rc == KURER_ECLEARANCE ? (int)v.clearance : 0;
        }
    }
    if (rc != 0)
        goto out;
    if ((rc = kurer__store_begin(k->st)) != 0)
        goto out;
    for (size_t i = 0; rc == 0 && i < old.n; i++) {
        if (strcmp(old.v[i].env.to.user, user) != 0)
            continue;
        int keep = 0;
        for (size_t j = 0; j < n_held; j++)
            keep |= held[j] == old.v[i].env.to.device_id;
        if (!keep)
            rc = kurer__store_outbox_drop(k->st, message_rowid, user, old.v[i].env.to.device_id);
    }
    for (size_t j = 0; rc == 0 && j < n_held; j++) {
        if (strcmp(user, k->own.user) == 0 && held[j] == k->own.device_id)
            continue;
        int has = kurer__store_outbox_has(k->st, message_rowid, user, held[j]);
        if (has < 0)
            rc = has;
        else if (has == 0)
            rc = kurer__home_encrypt_for(k, message_rowid, mi.to, mi.level, mi.body, mi.sent_at,
                                         user, held[j]);
    }
    if (rc != 0)
        kurer__store_rollback(k->st);
    else
        rc = kurer__store_commit(k->st);
out:
    msg_info_release(&mi);
    free(held);
    items_free(&old);
    return rc;
}

/* The send policy again for every item of l, now: an item can wait in the outbox (backoff, a
 * crash, a lost connection) while a certificate expires or is revoked, and the ciphertext must
 * not go to a device that no longer holds a valid certificate allowing the level. An item for
 * a device whose certificate the home no longer holds (forgotten by a directory sync) is
 * dropped; any other refusal fails the whole message, as kurer_queue would have. */
static int recheck_items(kurer *k, int64_t message_rowid, item_list *l, kurer_refusal *why)
{
    msg_info mi;
    memset(&mi, 0, sizeof(mi));
    int rc = kurer__store_message_find(k->st, message_rowid, NULL, copy_info, &mi);
    msg_info_release(&mi);
    size_t kept = 0, i = 0;
    for (; rc == 0 && i < l->n; i++) {
        item *x = &l->v[i];
        int c = kurer__home_check_device(k, mi.level, x->env.to.user, x->env.to.device_id, why);
        if (c == KURER_ENOTFOUND) {
            rc =
                kurer__store_outbox_drop(k->st, message_rowid, x->env.to.user, x->env.to.device_id);
            free(x->content);
            continue;
        }
        l->v[kept++] = *x;
        rc = c;
    }
    for (; i < l->n; i++) /* not looked at: still l's to free */
        l->v[kept++] = l->v[i];
    l->n = kept;
    if (rc == 0 && kept == 0)
        rc = KURER_ENOTFOUND; /* no device left that may receive it */
    return rc;
}

/* Sends the outbox items of one message until the relay accepted them all (or refused the
 * message). One SendRequest carries every item of a recipient user (the relay checks, per
 * user, that the envelopes name exactly that user's current devices); a message to more
 * devices than one request holds goes in several, whole users each. */
static int send_message_held(kurer *k, int64_t message_rowid, uint64_t deadline,
                             kurer_refusal *why);

/* One worker at a time per message: a flush and a send of the same message never both send it. */
static int send_message(kurer *k, int64_t message_rowid, uint64_t deadline, kurer_refusal *why)
{
    int rc = kurer__net_message_take(k, message_rowid, deadline);
    if (rc != 0)
        return rc;
    rc = send_message_held(k, message_rowid, deadline, why);
    kurer__net_message_give(k, message_rowid);
    return rc;
}

/* Items encrypted for a key that has changed since (store.h, key_stale) go, and the message is
 * encrypted again for the user's held devices, with the new sessions. */
static int reencrypt_stale(kurer *k, int64_t message_rowid, uint64_t deadline, kurer_refusal *why)
{
    char users[2][KURER_SUBJECT_MAX + 1]; /* the recipient and ourselves (sync copies) */
    size_t n = 0;
    int rc = kurer__store_key_change_stale_items(k->st, message_rowid, users, 2, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = reencrypt(k, message_rowid, users[i], deadline, why);
    return rc;
}

/* What the relay answered, per user: accepted (items done), unknown (the message FAILED), or a
 * stale device list (synced, the message encrypted for the new devices; *stale set). */
static int apply_results(kurer *k, int64_t message_rowid, const item_list *l,
                         const kurer_server_frame *r, uint64_t deadline, kurer_refusal *why,
                         int *stale)
{
    int rc = 0;
    for (size_t u = 0; rc == 0 && u < r->u.send_result.n; u++) {
        const kurer_user_result *ur = &r->u.send_result.users[u];
        if (ur->status == KURER_SEND_ACCEPTED) {
            rc = kurer__store_message_accepted(k->st, message_rowid); /* not cancellable */
            for (size_t i = 0; rc == 0 && i < l->n; i++)
                if (strcmp(l->v[i].env.to.user, ur->user) == 0)
                    rc = kurer__store_outbox_done(k->st, l->v[i].rowid);
        } else if (ur->status == KURER_SEND_UNKNOWN_USER) {
            if (why != NULL) {
                memset(why, 0, sizeof(*why));
                why->by = KURER_REFUSED_BY_RECIPIENT;
                snprintf(why->user, sizeof(why->user), "%s", ur->user);
            }
            rc = kurer__outbox_fail(k, message_rowid, KURER_EUNKNOWNUSER, why);
            if (rc == 0)
                rc = KURER_EUNKNOWNUSER;
        } else {
            *stale = 1;
            rc = kurer__dir_sync(k, ur->user, ur->current.devices, ur->current.n_devices);
            if (rc == 0)
                rc = reencrypt(k, message_rowid, ur->user, deadline, why);
        }
    }
    return rc;
}

static int by_user(const void *x, const void *y)
{
    return strcmp(((const item *)x)->env.to.user, ((const item *)y)->env.to.user);
}

/* The end of one request's worth of l's items from `from` on (sorted by user): whole users (the
 * relay checks each user's devices within one request), at most KURER_SEND_ENVELOPES_MAX
 * envelopes and, each counted with KURER_ENVELOPE_OVERHEAD_MAX for its fields, one frame; at
 * least one user (whose items alone may still not fit: the encoder says ELIMIT then). */
static size_t batch_end(const item_list *l, size_t from)
{
    size_t end = from, bytes = 0;
    while (end < l->n) {
        size_t u = end, user_bytes = 0;
        for (; u < l->n && strcmp(l->v[u].env.to.user, l->v[end].env.to.user) == 0; u++)
            user_bytes += l->v[u].env.content_len + KURER_ENVELOPE_OVERHEAD_MAX;
        if (end > from &&
            (bytes + user_bytes > KURER_FRAME_MAX || u - from > KURER_SEND_ENVELOPES_MAX))
            break;
        bytes += user_bytes;
        end = u;
    }
    return end;
}

/* One SendRequest of the items b (n of them) of message_rowid (whose items are l_n in all) and
 * what the relay answered; *stale set when a user's device list had changed. */
static int send_batch(kurer *k, int64_t message_rowid, const item_list *b, size_t l_n,
                      uint64_t deadline, kurer_refusal *why, int *stale)
{
    kurer_envelope *envs = calloc(b->n, sizeof(*envs));
    if (envs == NULL)
        return KURER_ENOMEM;
    /* Each names the certificate it was encrypted for: the relay answers STALE_DEVICES when its
     * directory holds another (a key change this home has not seen yet). */
    for (size_t i = 0; i < b->n; i++) {
        envs[i] = b->v[i].env;
        if (kurer__store_peer_serial(k->st, envs[i].to.user, envs[i].to.device_id,
                                     &envs[i].to_serial) != 0)
            envs[i].to_serial = 0;
    }
    kurer_client_frame f;
    kurer_server_frame *r = NULL;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_SEND;
    f.u.send.envelopes = envs;
    f.u.send.n = b->n;
    int rc = kurer__rpc(k, &f, deadline, &r);
    if (rc == 0 && r->body != KURER_SERVER_SEND_RESULT)
        rc = KURER_EMALFORMED;
    if (rc == 0)
        rc = kurer__answer_send_result(k->own.user, envs, b->n, r);
    free(envs);
    if (kurer__outbox_send_permanent(rc)) {
        /* Too large for one request (a device added since it was queued) or refused by the
         * relay's limits: the same bytes can never go. FAILED, not retried. */
        int frc = kurer__outbox_fail_size(k, message_rowid, rc, l_n, why);
        kurer__reply_free(r);
        return frc != 0 ? frc : rc;
    }
    if (rc != 0) {
        /* Not sent (or not known to be), or an answer we refuse: try again later, with backoff.
         * The items stay in the outbox (those of later requests stay due); nothing of the
         * answer was acted on. */
        int64_t now = kurer__home_now(k) * 1000;
        for (size_t i = 0; i < b->n; i++)
            if (kurer__store_outbox_retry_later(k->st, b->v[i].rowid, now) != 0)
                break; /* the items stay due: retried at the next connect */
        kurer__reply_free(r);
        return rc;
    }
    rc = apply_results(k, message_rowid, b, r, deadline, why, stale);
    kurer__reply_free(r);
    return rc;
}

static int send_message_held(kurer *k, int64_t message_rowid, uint64_t deadline, kurer_refusal *why)
{
    int rc = 0;
    for (int attempt = 0; attempt < SEND_ATTEMPTS; attempt++) {
        item_list l;
        memset(&l, 0, sizeof(l));
        l.only_message = message_rowid;
        if ((rc = reencrypt_stale(k, message_rowid, deadline, why)) != 0 ||
            (rc = kurer__store_outbox_each_due(k->st, INT64_MAX, collect_item, &l)) != 0 ||
            l.n == 0) {
            items_free(&l);
            return rc;
        }
        if ((rc = recheck_items(k, message_rowid, &l, why)) != 0) {
            items_free(&l);
            if (!permanent(rc))
                return rc;
            kurer_log(KURER_LOG_WARN, "client", "send_refused",
                      (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
            int frc = kurer__outbox_fail(k, message_rowid, rc, why);
            return frc != 0 ? frc : rc;
        }
        /* As many requests as the items need (a group's changes and keys to many devices). */
        qsort(l.v, l.n, sizeof(l.v[0]), by_user);
        int stale = 0;
        for (size_t from = 0; rc == 0 && from < l.n;) {
            size_t end = batch_end(&l, from);
            item_list b = {l.v + from, end - from, end - from, message_rowid};
            rc = send_batch(k, message_rowid, &b, l.n, deadline, why, &stale);
            from = end;
        }
        items_free(&l);
        if (rc != 0 || !stale)
            return rc;
    }
    /* The relay kept answering with another device list: back off, rather than sending the
     * message again on every poll. */
    item_list left;
    memset(&left, 0, sizeof(left));
    left.only_message = message_rowid;
    if (kurer__store_outbox_each_due(k->st, INT64_MAX, collect_item, &left) == 0) {
        int64_t now = kurer__home_now(k) * 1000;
        for (size_t i = 0; i < left.n; i++)
            if (kurer__store_outbox_retry_later(k->st, left.v[i].rowid, now) != 0)
                break;
    }
    items_free(&left);
    return KURER_ESTALEDEVICES;
}

typedef struct msg_ids {
    int64_t *v;
    size_t n, cap;
} msg_ids;

static int collect_message(void *ud, const kurer__outbox_item *it)
{
    msg_ids *m = ud;
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i] == it->message_rowid)
            return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        int64_t *nv = realloc(m->v, cap * sizeof(*nv));
        if (nv == NULL)
            return KURER_ENOMEM;
        m->v = nv;
        m->cap = cap;
    }
    m->v[m->n++] = it->message_rowid;
    return 0;
}

/* Sends every outbox message with an item due at due_ms (INT64_MAX: all of them). A message
 * the relay refuses for good is marked FAILED; a transport failure stops the flush. */
static int flush_outbox(kurer *k, int64_t due_ms, uint64_t deadline)
{
    msg_ids m;
    memset(&m, 0, sizeof(m));
    int rc = kurer__store_outbox_each_due(k->st, due_ms, collect_message, &m);
    for (size_t i = 0; rc == 0 && i < m.n; i++) {
        kurer_refusal why; /* kept with a message that fails */
        memset(&why, 0, sizeof(why));
        int src = send_message(k, m.v[i], deadline, &why);
        if (src == KURER_ECLOSED || src == KURER_ETIMEOUT || src == KURER_ENOMEM ||
            src == KURER_ESTORAGE)
            rc = src;
        else if (src != 0)
            kurer_log(KURER_LOG_WARN, "client", "send_failed",
                      (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(src))}, 1);
    }
    free(m.v);
    return rc;
}

/* ---- the connection's set-up ---- */

int kurer__engine_hello(kurer *k, struct sockaddr_storage *addr, uint8_t relay_key[KURER_KEY_LEN],
                        uint8_t **hs_out, size_t *hs_len)
{
    char relay[sizeof(k->own.relay)];
    kurer_handshake_init *hs = calloc(1, sizeof(*hs));
    kurer_buf b;
    *hs_out = NULL;
    if (hs == NULL)
        return KURER_ENOMEM;
    kurer__hlock_take(k);
    int rc = k->own.chain == NULL ? KURER_ESTATE : 0; /* not enrolled: import the chain first */
    if (rc == 0) {
        memcpy(relay, k->own.relay, sizeof(relay));
        memcpy(relay_key, k->own.relay_key, KURER_KEY_LEN);
        hs->protocol_version = KURER_PROTOCOL_VERSION;
        rc = kurer_chain_decode(k->own.chain, k->own.chain_len, &hs->chain);
    }
    if (rc == 0 && kurer__instance_next(k, &hs->instance_id, &hs->instance_count) != 0)
        kurer_log(KURER_LOG_WARN, "client", "instance_count_failed", NULL, 0);
    kurer_buf_init(&b, KURER_FRAME_MAX);
    if (rc == 0)
        rc = kurer_handshake_init_encode(hs, &b);
    kurer__hlock_give(k);
    free(hs);
    if (rc == 0)
        rc = kurer_net_resolve(relay, addr); /* (may block on DNS: not under the home lock) */
    if (rc == 0 && (*hs_out = malloc(b.len)) == NULL)
        rc = KURER_ENOMEM;
    if (rc == 0) {
        memcpy(*hs_out, b.data, b.len);
        *hs_len = b.len;
    }
    kurer_buf_release(&b);
    return rc;
}

int kurer__engine_setup(kurer *k, uint64_t deadline)
{
    free(k->ec.acks);
    memset(&k->ec, 0, sizeof(k->ec));
    /* The newest revocation lists the relay knows. The first request of the connection: the
     * relay counts us as the device's only once a record of ours has arrived. */
    kurer__engine_sync_revocations(k, deadline);
    uint64_t uploaded = 0;
    int rc = kurer__store_counter_get(k->st, PREKEYS_UPLOADED, &uploaded);
    if (rc == 0 && uploaded == 0)
        rc = upload_prekeys(k, deadline);
    else if (rc == 0)
        rc = rotate_signed_prekey(k, deadline);
    /* A new connection is the moment to retry everything left in the outbox (after a crash or
     * a lost connection), whatever its backoff said. */
    if (rc == 0)
        rc = flush_outbox(k, INT64_MAX, deadline);
    if (rc == 0)
        kurer__receipts_flush(k, deadline);
    return rc;
}

void kurer__engine_tick(kurer *k, uint64_t deadline, int online)
{
    kurer__expire_due(k);
    if (!online)
        return;
    kurer__receipts_flush(k, deadline);
    int rc = flush_outbox(k, kurer__home_now(k) * 1000, deadline);
    if (rc != 0 && rc != KURER_ECLOSED)
        kurer_log(KURER_LOG_WARN, "client", "outbox_retry_failed",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
}

/* ---- requests ---- */

int kurer__engine_refresh(kurer *k, const char *user, uint64_t deadline, size_t *devices)
{
    int rc = kurer__net_wait_online(k, deadline, 0);
    if (rc != 0)
        return rc;
    const char *users[1] = {user};
    size_t found = 0;
    rc = kurer__engine_lookup(k, users, 1, deadline, &found);
    if (rc == 0 && devices != NULL)
        *devices = found;
    return rc;
}

int kurer__engine_queue(kurer *k, const char *to, int level, const char *text, uint64_t deadline,
                        kurer_refusal *why, int64_t *message_id)
{
    /* Refusals that need no network (our certificate, the ceiling) come first. */
    kurer_refusal pre;
    int rc = kurer_check_send(k, to, level, &pre);
    if (rc != 0 && (pre.by == KURER_REFUSED_BY_SENDER || pre.by == KURER_REFUSED_BY_CEILING ||
                    pre.by == KURER_REFUSED_BY_NONE)) {
        if (why != NULL)
            *why = pre;
        return rc;
    }
    /* The relay out of reach: composed offline with the devices held (outbox.c). */
    if ((rc = kurer__net_wait_online(k, deadline, 0)) != 0)
        return kurer__outbox_queue_offline(k, rc, to, level, text, why, message_id);
    if ((rc = kurer__engine_prepare(k, to, deadline, why)) != 0)
        return rc;
    return kurer__home_queue(k, to, level, text, why, message_id);
}

int kurer__engine_prepare(kurer *k, const char *to, uint64_t deadline, kurer_refusal *why)
{
    /* The directory is asked once per connection and minute per user (a burst of sends does not
     * become a burst of lookups, which the relay meters): what changed since comes back in the
     * send's result as STALE and is synced then. */
    const char *users[2] = {to, k->own.user};
    size_t found[2] = {1, 1};
    int rc;
    if ((!kurer__dir_fresh(k, to) || !kurer__dir_fresh(k, k->own.user)) &&
        (rc = kurer__engine_lookup(k, users, 2, deadline, found)) != 0)
        return rc;
    /* No device left that may receive it, one given up on its certificate: name it. */
    if ((rc = kurer__dir_refusal(k, to, why)) != 0)
        return rc;
    if (found[0] == 0) {
        if (why != NULL) {
            why->by = KURER_REFUSED_BY_RECIPIENT;
            snprintf(why->user, sizeof(why->user), "%s", to);
        }
        return KURER_EUNKNOWNUSER;
    }
    if ((rc = kurer__engine_sessions(k, to, deadline, why)) != 0)
        return rc;
    return kurer__engine_sessions(k, k->own.user, deadline, why);
}

static int message_state(kurer *k, int64_t message_id, int *state, int *reason)
{
    msg_info mi;
    memset(&mi, 0, sizeof(mi));
    int rc = kurer__store_message_find(k->st, message_id, NULL, copy_info, &mi);
    msg_info_release(&mi);
    *state = mi.state;
    *reason = mi.reason;
    return rc;
}

int kurer__engine_send_queued(kurer *k, int64_t message_id, uint64_t deadline, kurer_refusal *why)
{
    int rc = kurer__net_wait_online(k, deadline, 0);
    if (rc == 0)
        rc = send_message(k, message_id, deadline, why);
    int state = 0, reason = 0;
    int src = message_state(k, message_id, &state, &reason);
    if (src != 0)
        return src;
    if (state == KURER__MSG_SENT)
        return 0;
    if (state == KURER__MSG_FAILED)
        return reason != 0 ? reason : KURER_EINTERNAL;
    return rc != 0 ? rc : KURER_ETIMEOUT; /* still in the outbox: sent on a later connect */
}

int kurer__engine_flush(kurer *k, uint64_t deadline)
{
    int rc = kurer__net_wait_online(k, deadline, 0);
    return rc != 0 ? rc : flush_outbox(k, INT64_MAX, deadline);
}
