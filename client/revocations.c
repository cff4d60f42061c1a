/* The relay's revocation lists, fetched at every connection and when the relay announces one
 * (engine.h): an index page by page, each list chunk by chunk, each checked against the index
 * and verified before it is kept. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "home.h"
#include "kurer/log.h"
#include "net.h"

/* ---- revocation lists (docs/protocol.md: an index page by page, each list chunk by chunk) ---- */

#define INDEX_PAGES_MAX 64 /* 64 x 512 lists: far more authorities than any deployment has */

/* Whether the relay's list is newer than the one held for that issuer (or none is held). */
static int list_is_new(const kurer *k, const kurer_revocation_info *info)
{
    for (size_t i = 0; i < kurer_trust_crl_count(k->trust); i++) {
        const kurer_crl *c = kurer_trust_crl(k->trust, i);
        if (memcmp(c->issuer_key_id, info->issuer_key_id, KURER_KEY_ID_LEN) == 0)
            return info->version > c->version;
    }
    return 1;
}

/* Fetches one list chunk by chunk (each checked against what the index said), then verifies
 * and keeps it. */
static int fetch_list(kurer *k, const kurer_revocation_info *info, uint64_t deadline)
{
    uint8_t *buf = malloc(info->size);
    size_t off = 0;
    int rc = buf == NULL ? KURER_ENOMEM : 0;
    while (rc == 0 && off < info->size) {
        kurer_client_frame f;
        kurer_server_frame *r = NULL;
        memset(&f, 0, sizeof(f));
        f.body = KURER_CLIENT_REVOCATION_CHUNK_FETCH;
        memcpy(f.u.revocation_chunk_fetch.issuer_key_id, info->issuer_key_id, KURER_KEY_ID_LEN);
        f.u.revocation_chunk_fetch.version = info->version;
        f.u.revocation_chunk_fetch.offset = (uint32_t)off;
        rc = kurer__rpc(k, &f, deadline, &r);
        if (rc == 0) {
            const kurer_revocation_chunk *c = &r->u.revocation_chunk;
            if (r->body != KURER_SERVER_REVOCATION_CHUNK || c->offset != off ||
                c->total != info->size || c->version != info->version ||
                memcmp(c->issuer_key_id, info->issuer_key_id, KURER_KEY_ID_LEN) != 0)
                rc = KURER_EMALFORMED;
            else {
                memcpy(buf + off, c->data, c->len);
                off += c->len;
            }
        }
        kurer__reply_free(r);
    }
    if (rc == 0)
        rc = kurer_add_revocations(k, buf, info->size);
    free(buf);
    return rc == KURER_ESTALE ? 0 : rc;
}

/* Fetches the lists of infos that are newer than those held. One that fails is logged and left
 * for the next connection: it never stops the others. Only a lost connection ends the walk. */
int kurer__engine_fetch_lists(kurer *k, const kurer_revocation_info *infos, size_t n,
                              uint64_t deadline)
{
    for (size_t i = 0; i < n; i++) {
        if (!list_is_new(k, &infos[i]))
            continue;
        int rc = fetch_list(k, &infos[i], deadline);
        if (rc != 0)
            kurer_log(KURER_LOG_WARN, "client", "revocations_refused",
                      (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
        if (rc == KURER_ECLOSED || rc == KURER_ETIMEOUT ||
            kurer__net_state(k, NULL) == KURER_CONN_OFFLINE)
            return rc != 0 ? rc : KURER_ECLOSED;
    }
    return 0;
}

/* Walks the relay's index of revocation lists and fetches what is new. Failures are logged, not
 * returned: a relay that cannot serve its lists (or a hostile one that withholds them) does
 * not keep the client from connecting; lists past their next_update are what shows the
 * withholding (kurer_trust). */
void kurer__engine_sync_revocations(kurer *k, uint64_t deadline)
{
    kurer_client_frame f;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_REVOCATIONS;
    for (int page = 0; page < INDEX_PAGES_MAX; page++) {
        kurer_server_frame *r = NULL;
        f.request_id = 0;
        int rc = kurer__rpc(k, &f, deadline, &r);
        if (rc == 0 && r->body != KURER_SERVER_REVOCATION_INDEX)
            rc = KURER_EMALFORMED;
        if (rc == 0 && r->u.revocation_index.more && r->u.revocation_index.n == 0)
            rc = KURER_EMALFORMED; /* a page that does not advance */
        if (rc == 0)
            rc = kurer__engine_fetch_lists(k, r->u.revocation_index.lists, r->u.revocation_index.n,
                                           deadline);
        int more = rc == 0 && r->u.revocation_index.more;
        if (more) {
            f.u.revocations.has_after = 1;
            memcpy(f.u.revocations.after,
                   r->u.revocation_index.lists[r->u.revocation_index.n - 1].issuer_key_id,
                   KURER_KEY_ID_LEN);
        }
        kurer__reply_free(r);
        if (rc != 0 && rc != KURER_EUNSUPPORTED)
            kurer_log(KURER_LOG_WARN, "client", "revocations_not_fetched",
                      (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
        if (!more)
            return;
    }
}
