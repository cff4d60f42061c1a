/* The directory: current devices per user (the chain kept encoded), registration at
 * authentication, and directory lookups (metered per user, sized to what they find). */
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

dir_user *kurer__dir_user_find(relay *r, const char *user)
{
    uint64_t h = htab_hash(&r->dir, user, strlen(user));
    for (hnode *n = htab_first(&r->dir, h); n != NULL; n = htab_next(n, h)) {
        dir_user *u = HTAB_ENTRY(n, dir_user, node);
        if (strcmp(u->user, user) == 0)
            return u;
    }
    return NULL;
}

dir_entry *kurer__dir_find(relay *r, const kurer_device_address *a)
{
    dir_user *u = kurer__dir_user_find(r, a->user);
    for (size_t i = 0; u != NULL && i < u->n; i++)
        if (u->devs[i].device_id == a->device_id)
            return &u->devs[i];
    return NULL;
}

/* Decodes an entry's chain (the bytes were decoded before, so this only fails on ENOMEM). */
int kurer__dir_chain(const dir_entry *e, kurer_chain *out)
{
    return kurer_chain_decode(e->chain, e->chain_len, out);
}

void kurer__dir_free(relay *r)
{
    for (size_t i = 0; r->dir.b != NULL && i <= r->dir.mask; i++)
        for (hnode *n = r->dir.b[i], *next; n != NULL; n = next) {
            next = n->next;
            dir_user *u = HTAB_ENTRY(n, dir_user, node);
            for (size_t k = 0; k < u->n; k++)
                free(u->devs[k].chain);
            free(u->devs);
            free(u);
        }
    htab_free(&r->dir);
}

/* A device counts as current while its chain is valid and neither it nor its authority is
 * revoked. */
int kurer__dir_current(relay *r, const dir_entry *e, int64_t now)
{
    if (e->not_after <= now)
        return 0;
    kurer_verified v;
    v.serial = e->serial;
    v.authority_serial = e->authority_serial;
    memcpy(v.authority_key_id, e->authority_key_id, KURER_KEY_ID_LEN);
    memcpy(v.root_key_id, e->root_key_id, KURER_KEY_ID_LEN);
    return !kurer_trust_chain_revoked(r->trust, &v);
}

/* Records (or replaces) a device with its chain bytes (copied). */
int kurer__dir_put(relay *r, const kurer_device_address *a, const kurer_verified *v,
                   const uint8_t *chain, size_t chain_len)
{
    uint8_t *copy = malloc(chain_len ? chain_len : 1);
    if (copy == NULL)
        return KURER_ENOMEM;
    memcpy(copy, chain, chain_len);
    dir_entry *e = kurer__dir_find(r, a);
    if (e == NULL) {
        dir_user *u = kurer__dir_user_find(r, a->user);
        if (u == NULL) {
            size_t ulen = strlen(a->user);
            u = calloc(1, sizeof(*u) + ulen + 1);
            if (u == NULL) {
                free(copy);
                return KURER_ENOMEM;
            }
            memcpy(u->user, a->user, ulen + 1);
            htab_insert(&r->dir, &u->node, htab_hash(&r->dir, a->user, ulen));
        }
        if (u->n == u->cap) {
            size_t cap = u->cap ? u->cap * 2 : 1;
            dir_entry *nd = realloc(u->devs, cap * sizeof(*nd));
            if (nd == NULL) {
                free(copy);
                return KURER_ENOMEM;
            }
            u->devs = nd;
            u->cap = cap;
        }
        e = &u->devs[u->n++];
        memset(e, 0, sizeof(*e));
        kurer__buckets_init(r, e->buckets);
        r->n_dir++;
    }
    e->device_id = a->device_id;
    e->serial = v->serial;
    memcpy(e->authority_key_id, v->authority_key_id, KURER_KEY_ID_LEN);
    e->authority_serial = v->authority_serial;
    memcpy(e->root_key_id, v->root_key_id, KURER_KEY_ID_LEN);
    e->not_after = v->not_after;
    free(e->chain);
    e->chain = copy;
    e->chain_len = chain_len;
    return 0;
}

void kurer__on_dir_loaded(void *arg, const kurer_store_device *d)
{
    relay *r = arg;
    kurer_chain ch;
    kurer_verified v;
    if (kurer_chain_decode(d->chain, d->chain_len, &ch) != 0 ||
        kurer_trust_verify_chain(r->trust, &ch, kurer_time_unix(), &v) != 0)
        return; /* expired, revoked or from a root no longer pinned: not current */
    (void)kurer__dir_put(r, &d->addr, &v, d->chain, d->chain_len);
}

/* Lookups are metered per device (lookup_rate) and cost what they find: memory for the chains of
 * current devices only. Unknown users, and users with no current device, are left out of the
 * answer (docs/protocol.md). */
void kurer__handle_lookup(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    int64_t now = kurer_time_unix();
    /* metered per user looked up: the directory cannot be enumerated 64 names at a time */
    if (!kurer__rate_take(rc, B_LOOKUP, f->u.lookup.n)) {
        r->lookups_rate_limited++;
        kurer__send_error(rc, f->request_id, KURER_ERATE, 0);
        return;
    }
    size_t total = 0;
    for (size_t i = 0; i < f->u.lookup.n; i++) {
        dir_user *du = kurer__dir_user_find(r, f->u.lookup.users[i]);
        size_t cur = 0;
        for (size_t d = 0; du != NULL && d < du->n; d++)
            cur += kurer__dir_current(r, &du->devs[d], now) ? 1 : 0;
        total += cur < KURER_USER_DEVICES_MAX ? cur : KURER_USER_DEVICES_MAX;
    }
    kurer_user_devices *ud = calloc(f->u.lookup.n ? f->u.lookup.n : 1, sizeof(*ud));
    kurer_chain *chains = calloc(total ? total : 1, sizeof(*chains));
    if (ud == NULL || chains == NULL) {
        free(ud);
        free(chains);
        kurer__send_error(rc, f->request_id, KURER_ENOMEM, 0);
        return;
    }
    size_t n_users = 0, used = 0;
    for (size_t i = 0; i < f->u.lookup.n; i++) {
        dir_user *du = kurer__dir_user_find(r, f->u.lookup.users[i]);
        kurer_user_devices *u = &ud[n_users];
        int dup = 0;
        for (size_t k = 0; k < n_users; k++)
            dup |= strcmp(ud[k].user, f->u.lookup.users[i]) == 0;
        if (du == NULL || dup)
            continue;
        u->user = du->user;
        u->devices = chains + used;
        for (size_t d = 0; d < du->n && u->n_devices < KURER_USER_DEVICES_MAX && used < total; d++)
            if (kurer__dir_current(r, &du->devs[d], now) &&
                kurer__dir_chain(&du->devs[d], &chains[used]) == 0) {
                u->n_devices++;
                used++;
            }
        if (u->n_devices > 0)
            n_users++;
    }
    kurer_server_frame out;
    memset(&out, 0, sizeof(out));
    out.request_id = f->request_id;
    out.body = KURER_SERVER_DIRECTORY;
    out.u.directory.users = ud;
    out.u.directory.n = n_users;
    int err = kurer__send_frame(rc, &out);
    if (err != 0 && err != KURER_ECLOSED && rc->c != NULL && !kurer_conn_closing(rc->c))
        kurer__send_error(rc, f->request_id, KURER_ELIMIT, 0);
    free(ud);
    free(chains);
}
