/* kurer_rekey (kurer.h): new device keys and a new certificate request for the same user and
 * device, keeping the history. The sessions built with the old identity key are archived
 * (archived_sessions), not deleted; messages still in the outbox were encrypted with them and
 * become FAILED (kurer_outbox_retry encrypts them anew once the new chain is imported). */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "home.h"
#include "kurer/crypto.h"
#include "kurer/keys.h"
#include "kurer/log.h"
#include "kurer/signal.h"
#include "net.h"
#include "outbox.h"

typedef struct pending_ids {
    int64_t v[256];
    size_t n;
    int more; /* more than fit: rekey walks again */
} pending_ids;

static int note_pending(void *ud, const kurer__open_msg *m)
{
    pending_ids *p = ud;
    if (m->state != KURER__MSG_PENDING)
        return 0;
    if (p->n == sizeof(p->v) / sizeof(p->v[0])) {
        p->more = 1;
        return 1;
    }
    p->v[p->n++] = m->rowid;
    return 0;
}

/* Every PENDING message FAILED: its envelopes were made with sessions of the old identity. */
static int fail_pending(kurer *k, size_t *failed)
{
    kurer_refusal why;
    memset(&why, 0, sizeof(why));
    why.by = KURER_REFUSED_BY_SENDER;
    memcpy(why.user, k->own.user, sizeof(why.user));
    why.device_id = k->own.device_id;
    for (;;) {
        pending_ids p;
        memset(&p, 0, sizeof(p));
        int rc = kurer__store_outbox_messages(k->st, 0, note_pending, &p);
        if (rc != 0 && rc != 1)
            return rc;
        for (size_t i = 0; i < p.n; i++)
            if ((rc = kurer__outbox_fail(k, p.v[i], KURER_EKEYMISMATCH, &why)) != 0)
                return rc;
        *failed += p.n;
        if (!p.more)
            return 0;
    }
}

/* The store's half, one transaction: sessions archived, identity replaced, prekey counters
 * reset (the next connection uploads a signed prekey made with the new key), outbox failed. */
static int rekey_store(kurer *k, const kurer__identity *id, size_t *archived, size_t *failed)
{
    int n = 0;
    int rc = kurer__store_begin(k->st);
    if (rc != 0)
        return rc;
    rc = kurer__store_sessions_archive(k->st, k->own.identity_pub, KURER_IDENTITY_KEY_LEN,
                                       kurer__home_now(k) * 1000, &n);
    if (rc == 0)
        rc = kurer__store_identity_rekey(k->st, id);
    if (rc == 0)
        rc = kurer__store_counter_set(k->st, KURER__COUNTER_PREKEYS_UPLOADED, 0);
    if (rc == 0)
        rc = kurer__store_counter_set(k->st, KURER__COUNTER_SPK_UPLOADED_AT, 0);
    if (rc == 0)
        rc = fail_pending(k, failed);
    if (rc != 0) {
        kurer__store_rollback(k->st);
        return rc;
    }
    if ((rc = kurer__store_commit(k->st)) == 0)
        *archived = (size_t)n;
    return rc;
}

static int rekey_unlocked(kurer *k, size_t *archived, size_t *failed)
{
    kurer__identity id;
    memset(&id, 0, sizeof(id));
    id.identity_priv = kurer_secure_alloc(32);
    id.noise_priv = kurer_secure_alloc(32);
    int rc = id.identity_priv == NULL || id.noise_priv == NULL ? KURER_ENOMEM : 0;
    if (rc == 0)
        rc = kurer_identity_generate(id.identity_pub, id.identity_priv);
    if (rc == 0) {
        kurer_x25519_generate(id.noise_pub, id.noise_priv);
        id.registration_id = kurer_random_uniform(16380) + 1; /* 14 bits, never 0 */
        rc = rekey_store(k, &id, archived, failed);
    }
    if (rc == 0) {
        /* The connection made with the old keys goes; not enrolled until the import, so no
         * attempt starts (kurer__engine_hello: KURER_ESTATE). */
        free(k->own.chain);
        k->own.chain = NULL;
        k->own.chain_len = 0;
        kurer__net_relay_changed(k);
        memcpy(k->own.identity_pub, id.identity_pub, sizeof(id.identity_pub));
        /* In place (the guarded pages made writable for the copy): the session module and
         * the connection hold pointers to these. */
        kurer_secure_readwrite(k->own.identity_priv);
        memcpy(k->own.identity_priv, id.identity_priv, 32);
        kurer_secure_readonly(k->own.identity_priv);
        memcpy(k->own.noise_pub, id.noise_pub, sizeof(id.noise_pub));
        kurer_secure_readwrite(k->own.noise_priv);
        memcpy(k->own.noise_priv, id.noise_priv, 32);
        kurer_secure_readonly(k->own.noise_priv);
        k->own.registration_id = id.registration_id;
        /* After the commit: a failure here leaves the new keys without a request, and kurer
         * rekey again makes both anew. */
        rc = kurer__home_write_csr(k, k->own.identity_priv);
    }
    kurer__identity_release(&id);
    return rc;
}

int kurer_rekey(kurer *k, size_t *sessions_archived, size_t *messages_failed)
{
    size_t archived = 0, failed = 0;
    if (k == NULL)
        return KURER_EINVAL;
    kurer__hlock_take(k);
    int rc = rekey_unlocked(k, &archived, &failed);
    kurer__hlock_give(k);
    if (rc != 0)
        return rc;
    kurer_log(KURER_LOG_INFO, "client", "device_rekeyed",
              (kurer_log_field[]){KURER_LOG_INT("sessions_archived", (int64_t)archived),
                                  KURER_LOG_INT("messages_failed", (int64_t)failed)},
              2);
    if (sessions_archived != NULL)
        *sessions_archived = archived;
    if (messages_failed != NULL)
        *messages_failed = failed;
    return 0;
}
