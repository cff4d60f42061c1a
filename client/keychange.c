/* Key changes (keychange.h): told once through on_key_change, listed by kurer_key_changes. */
#include "keychange.h"

#include <stdio.h>
#include <string.h>

#include "home.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/util.h"
#include "net.h"

typedef struct change_view {
    kurer_key_change c;
    char fp[65], old_fp[65];
} change_view;

static void key_fp(const uint8_t key[KURER_IDENTITY_KEY_LEN], char out[65])
{
    uint8_t h[32];
    kurer_hash256(h, key, KURER_IDENTITY_KEY_LEN);
    kurer_hex_encode(out, h, sizeof(h));
}

/* The public form of a stored record (pointing into r and v). */
static void view(const kurer__key_change *r, change_view *v)
{
    memset(v, 0, sizeof(*v));
    key_fp(r->identity_key, v->fp);
    key_fp(r->old_identity_key, v->old_fp);
    v->c.id = r->rowid;
    v->c.user = r->user;
    v->c.device_id = r->device_id;
    v->c.serial = r->serial;
    v->c.issuer = r->issuer;
    v->c.old_serial = r->old_serial;
    v->c.old_issuer = r->old_issuer;
    v->c.key_fingerprint = v->fp;
    v->c.old_key_fingerprint = v->old_fp;
    v->c.at = r->at;
}

static int report_one(void *ud, const kurer__key_change *r)
{
    change_view v;
    view(r, &v);
    kurer__event_key_change(ud, &v.c);
    return 0;
}

void kurer__keychange_report(kurer *k, int all)
{
    if (!kurer__session_take_key_changed(k->sess) && !all)
        return;
    int rc = kurer__store_key_change_each(k->st, NULL, 1, report_one, k);
    if (rc != 0)
        kurer_log(KURER_LOG_WARN, "client", "key_change_report_failed",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
}

int kurer__key_change_unreported(kurer *k, int64_t rowid)
{
    kurer__hlock_take(k);
    int rc = kurer__store_key_change_unreported(k->st, rowid);
    kurer__hlock_give(k);
    return rc;
}

void kurer__key_change_reported(kurer *k, int64_t rowid)
{
    kurer__hlock_take(k);
    int rc = kurer__store_key_change_reported(k->st, rowid);
    kurer__hlock_give(k);
    if (rc != 0) /* told again at the next start: at least once */
        kurer_log(KURER_LOG_WARN, "client", "key_change_mark_failed",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
}

typedef struct list_ctx {
    kurer_key_change_fn fn;
    void *ud;
} list_ctx;

static int list_one(void *ud, const kurer__key_change *r)
{
    list_ctx *l = ud;
    change_view v;
    view(r, &v);
    return l->fn(l->ud, &v.c);
}

int kurer_key_changes(kurer *k, const char *with, kurer_key_change_fn fn, void *ud)
{
    if (k == NULL || fn == NULL)
        return KURER_EINVAL;
    list_ctx l = {fn, ud};
    kurer__hlock_take(k);
    int rc = kurer__store_key_change_each(k->st, with, 0, list_one, &l);
    kurer__hlock_give(k);
    return rc;
}
