/* A group message's one ciphertext through the relay's fan-out (client/fanout.h): the key
 * distributions go first as an ordinary send (their own stored message), then the shared
 * sender-key ciphertext once, with the list of member devices. What the fan-out does not
 * settle (a stale device list, a failure) stays in the outbox as ordinary items and goes with
 * the engine's send path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanout.h"
#include "kurer/crypto.h"
#include "group_send.h"
#include "kurer/log.h"
#include "net.h"
#include "store_group.h"

/* The message's sender-key items, by user. */
typedef struct fo_item {
    int64_t rowid;
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t device;
} fo_item;

typedef struct fo_list {
    int64_t message;
    fo_item *v;
    size_t n, cap;
    uint8_t *ct;
    size_t ct_len;
} fo_list;

static int fo_collect(void *ud, const kurer__outbox_item *it)
{
    fo_list *l = ud;
    if (it->message_rowid != l->message || it->type != (int)KURER_ENVELOPE_SENDER_KEY)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        fo_item *nv = realloc(l->v, cap * sizeof(*nv));
        if (nv == NULL)
            return KURER_ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    if (l->ct == NULL) {
        if ((l->ct = malloc(it->content_len)) == NULL)
            return KURER_ENOMEM;
        memcpy(l->ct, it->content, it->content_len);
        l->ct_len = it->content_len;
    }
    fo_item *x = &l->v[l->n++];
    x->rowid = it->rowid;
    snprintf(x->user, sizeof(x->user), "%s", it->to_user);
    x->device = it->to_device;
    return 0;
}

static void fo_free(fo_list *l)
{
    free(l->v);
    free(l->ct);
    memset(l, 0, sizeof(*l));
}

typedef struct fo_req {
    kurer_fanout_user *users;
    kurer_fanout_device *devs;
    size_t n_users;
} fo_req;

/* The request: each user once, with its devices (items of one user are adjacent: sorted). */
static int fo_users(kurer *k, const fo_list *l, fo_req *r)
{
    r->users = calloc(l->n ? l->n : 1, sizeof(*r->users));
    r->devs = calloc(l->n ? l->n : 1, sizeof(*r->devs));
    if (r->users == NULL || r->devs == NULL)
        return KURER_ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        kurer_fanout_user *u = r->n_users > 0 ? &r->users[r->n_users - 1] : NULL;
        if (u == NULL || strcmp(u->user, l->v[i].user) != 0) {
            u = &r->users[r->n_users++];
            u->user = l->v[i].user;
            u->devices = &r->devs[i];
        }
        r->devs[i].device_id = l->v[i].device;
        if (kurer__store_peer_serial(k->st, l->v[i].user, l->v[i].device, &r->devs[i].serial) != 0)
            r->devs[i].serial = 0;
        u->n_devices++;
    }
    return 0;
}

static int item_cmp(const void *a, const void *b)
{
    const fo_item *x = a, *y = b;
    int c = strcmp(x->user, y->user);
    return c != 0 ? c : (x->device > y->device) - (x->device < y->device);
}

/* What the relay answered per user: accepted (items done), unknown (its items dropped), a stale
 * list (synced, the message's items for the user made anew: for the engine's path). */
static int fo_apply(kurer *k, const fo_list *l, const kurer__fanout_results *res, uint64_t deadline,
                    kurer_refusal *why)
{
    int rc = 0;
    for (size_t u = 0; rc == 0 && u < res->n; u++) {
        const kurer__fanout_outcome *o = &res->users[u];
        if (o->status == KURER_SEND_ACCEPTED) {
            rc = kurer__store_message_accepted(k->st, l->message);
            for (size_t i = 0; rc == 0 && i < l->n; i++)
                if (strcmp(l->v[i].user, o->user) == 0)
                    rc = kurer__store_outbox_done(k->st, l->v[i].rowid);
        } else if (o->status == KURER_SEND_UNKNOWN_USER) {
            for (size_t i = 0; rc == 0 && i < l->n; i++)
                if (strcmp(l->v[i].user, o->user) == 0)
                    rc = kurer__store_outbox_drop(k->st, l->message, o->user, l->v[i].device);
        } else {
            int grc = 0;
            if (o->current.n_devices > 0)
                rc = kurer__dir_sync(k, o->user, o->current.devices, o->current.n_devices);
            if (rc == 0 && kurer__group_reencrypt(k, l->message, o->user, deadline, why, &grc))
                rc = grc;
        }
    }
    return rc;
}

int kurer__group_fanout(kurer *k, int64_t key_rowid, int64_t rowid, uint64_t deadline,
                        kurer_refusal *why)
{
    fo_list l;
    fo_req r;
    kurer__fanout_results res;
    uint8_t id[KURER_ENVELOPE_ID_LEN];
    memset(&l, 0, sizeof(l));
    memset(&r, 0, sizeof(r));
    memset(&res, 0, sizeof(res));
    l.message = rowid;
    /* Our key first: a member device must hold it before the message arrives. */
    int rc = key_rowid != 0 ? kurer__engine_send_queued(k, key_rowid, deadline, why) : 0;
    if (rc != 0)
        return rc; /* both wait in the outbox, the key first */
    if ((rc = kurer__net_message_take(k, rowid, deadline)) != 0)
        return rc;
    rc = kurer__store_outbox_each_due(k->st, INT64_MAX, fo_collect, &l);
    if (rc == 0 && l.n > 0) {
        qsort(l.v, l.n, sizeof(*l.v), item_cmp);
        kurer_random(id, sizeof(id));
        if ((rc = fo_users(k, &l, &r)) == 0)
            rc = kurer__fanout_send(k, id, l.ct, l.ct_len, r.users, r.n_users, deadline, &res);
        if (rc == 0)
            rc = fo_apply(k, &l, &res, deadline, why);
        else
            kurer_log(KURER_LOG_INFO, "client", "group_fanout_fallback",
                      (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
    }
    kurer__fanout_results_free(&res);
    free(r.users);
    free(r.devs);
    fo_free(&l);
    kurer__net_message_give(k, rowid);
    if (rc == KURER_ENOMEM || rc == KURER_ESTORAGE)
        return rc;
    /* What is left (none when every user accepted) goes as ordinary envelopes. */
    return kurer__engine_send_queued(k, rowid, deadline, why);
}
