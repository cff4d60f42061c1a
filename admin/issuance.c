#include "kurer/issuance.h"

#include <string.h>

#include "kurer/crypto.h"
#include "kurer/csr.h"

static int refuse(kurer_issuance_refusal *why, kurer_issuance_rule rule, int rc)
{
    why->rule = rule;
    return rc;
}

/* The request as such: signed by its key, a user of this authority, dated, with keys of its
 * own. */
static int check_request(const kurer_cert *authority, const kurer_csr *csr, int64_t now,
                         kurer_issuance_refusal *why)
{
    const char *dom = kurer_user_authority(csr->body.subject);
    int rc = kurer_csr_verify(csr);
    if (rc != 0)
        return refuse(why, KURER_ISSUANCE_SIGNATURE, rc == KURER_EBADKEY ? rc : KURER_EBADSIG);
    if (dom == NULL || strcmp(dom, authority->body.subject) != 0)
        return refuse(why, KURER_ISSUANCE_SUBJECT, KURER_ESUBJECT);
    if (csr->body.device_id == 0 || csr->body.device_id > KURER_DEVICE_ID_MAX)
        return refuse(why, KURER_ISSUANCE_DEVICE_ID, KURER_EINVAL);
    if (csr->body.created_at > now + KURER_ISSUANCE_SKEW)
        return refuse(why, KURER_ISSUANCE_DATE, KURER_ENOTYETVALID);
    /* The Noise key must be a usable X25519 key of its own, not the identity key again. */
    if (kurer_ct_is_zero(csr->body.noise_key, KURER_X25519_LEN) ||
        kurer_ct_equal(csr->body.noise_key, csr->body.identity_key + 1, KURER_X25519_LEN))
        return refuse(why, KURER_ISSUANCE_NOISE_KEY, KURER_EBADKEY);
    return 0;
}

/* The keys of e (a probe ISSUE entry) against every entry of the log. */
static int check_keys(const kurer_issuelog *log, const kurer_log_entry *e,
                      kurer_issuance_refusal *why)
{
    for (size_t i = 0; i < log->n; i++) {
        const kurer_log_entry *p = &log->entries[i];
        int same_keys = kurer_ct_equal(p->key_fp, e->key_fp, 32) ||
                        kurer_ct_equal(p->noise_fp, e->noise_fp, 32);
        int same_device = strcmp(p->subject, e->subject) == 0 && p->device_id == e->device_id;
        if (p->role != KURER_ROLE_DEVICE || !same_keys)
            continue;
        /* Keys of a revoked certificate are never certified again, for that very device too,
         * except after "superseded": a replaced certificate whose keys are still the
         * device's own. */
        if (p->kind == KURER_LOGK_REVOKE && p->reason != KURER_REASON_SUPERSEDED) {
            why->entry = p;
            return refuse(why, KURER_ISSUANCE_KEY_REVOKED, KURER_EREVOKED);
        }
        if (p->kind == KURER_LOGK_ISSUE && !same_device) {
            why->entry = p;
            return refuse(why, KURER_ISSUANCE_KEY_SHARED, KURER_EDUPLICATE);
        }
    }
    return 0;
}

static int revoked_in_log(const kurer_issuelog *log, uint64_t serial)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->entries[i].kind == KURER_LOGK_REVOKE && log->entries[i].serial == serial)
            return 1;
    return 0;
}

size_t kurer_issuance_current(const kurer_issuelog *log, const char *subject, uint32_t device_id,
                              int64_t now, const kurer_log_entry **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < log->n; i++) {
        const kurer_log_entry *p = &log->entries[i];
        if (p->kind != KURER_LOGK_ISSUE || p->role != KURER_ROLE_DEVICE ||
            p->device_id != device_id || strcmp(p->subject, subject) != 0 || p->not_after <= now ||
            revoked_in_log(log, p->serial))
            continue;
        if (n < max)
            out[n] = p;
        n++;
    }
    return n;
}

/* One device id, one valid certificate (issuance.h): e is the probe entry of the request. */
static int check_device(const kurer_issuelog *log, const kurer_log_entry *e, int replace,
                        int64_t now, kurer_issuance_refusal *why)
{
    const kurer_log_entry *cur[1];
    size_t n = kurer_issuance_current(log, e->subject, e->device_id, now, cur, 1);
    if (n == 0)
        return replace ? refuse(why, KURER_ISSUANCE_NOTHING_TO_REPLACE, KURER_ENOTFOUND) : 0;
    if (replace)
        return 0;
    why->entry = cur[0];
    if (kurer_ct_equal(cur[0]->key_fp, e->key_fp, 32) &&
        kurer_ct_equal(cur[0]->noise_fp, e->noise_fp, 32))
        return refuse(why, KURER_ISSUANCE_REPEATED, KURER_EEXIST);
    return refuse(why, KURER_ISSUANCE_DEVICE_TAKEN, KURER_EEXIST);
}

int kurer_issuance_check(const kurer_cert *authority, const kurer_issuelog *log,
                         const kurer_csr *csr, const kurer_issuance_params *p,
                         kurer_cert_body *body, int *clamped, kurer_issuance_refusal *why)
{
    kurer_cert probe;
    kurer_log_entry e;
    int rc;
    memset(why, 0, sizeof(*why));
    memset(body, 0, sizeof(*body));
    *clamped = 0;
    if (authority->body.role != KURER_ROLE_AUTHORITY)
        return refuse(why, KURER_ISSUANCE_AUTHORITY, KURER_EROLE);
    if ((rc = kurer_cert_check_validity(authority, p->now)) != 0)
        return refuse(why, KURER_ISSUANCE_AUTHORITY, rc);
    if (p->days == 0 || p->days > 36500)
        return refuse(why, KURER_ISSUANCE_PARAMS, KURER_EINVAL);
    if ((rc = check_request(authority, csr, p->now, why)) != 0)
        return rc;
    body->clearance = p->has_clearance ? p->clearance : authority->body.clearance;
    if (body->clearance > authority->body.clearance) {
        memset(body, 0, sizeof(*body));
        return refuse(why, KURER_ISSUANCE_CLEARANCE, KURER_ECLEARANCE);
    }
    body->version = 1;
    body->role = KURER_ROLE_DEVICE;
    memcpy(body->subject, csr->body.subject, sizeof(body->subject));
    memcpy(body->display_name, csr->body.display_name, sizeof(body->display_name));
    body->device_id = csr->body.device_id;
    body->not_before = p->now - KURER_ISSUANCE_SKEW;
    body->not_after = p->now + (int64_t)p->days * 86400;
    if (body->not_after > authority->body.not_after) {
        body->not_after = authority->body.not_after;
        *clamped = 1;
    }
    memcpy(body->identity_key, csr->body.identity_key, sizeof(body->identity_key));
    memcpy(body->noise_key, csr->body.noise_key, sizeof(body->noise_key));
    memset(&probe, 0, sizeof(probe));
    probe.body = *body;
    kurer_log_entry_for_cert(&e, &probe, p->now);
    if ((rc = check_keys(log, &e, why)) != 0 ||
        (rc = check_device(log, &e, p->replace, p->now, why)) != 0) {
        memset(body, 0, sizeof(*body));
        *clamped = 0;
    }
    return rc;
}

int kurer_issuance_reserve(kurer_serial_state *st, const kurer_issuelog *log, uint64_t *serial)
{
    *serial = 0;
    if (st->next_serial <= kurer_issuelog_max_serial(log))
        return KURER_ECORRUPT;
    if (st->next_serial == UINT64_MAX)
        return KURER_ELIMIT;
    *serial = st->next_serial++;
    st->log_entries = log->n;
    return 0;
}

int kurer_issuance_sign(kurer_cert_body *body, uint64_t serial, const kurer_signing_key *key,
                        const kurer_cert *authority, int64_t now, kurer_chain *chain)
{
    int rc;
    memset(chain, 0, sizeof(*chain));
    if (!kurer_ct_equal(key->pk, authority->body.signing_key, 32))
        return KURER_EKEYMISMATCH;
    body->serial = serial;
    if ((rc = kurer_cert_sign(body, key, &chain->certs[0])) != 0)
        return rc;
    chain->certs[1] = *authority;
    chain->n = 2;
    if ((rc = kurer_device_check(&chain->certs[0], authority, now)) != 0)
        memset(chain, 0, sizeof(*chain));
    return rc;
}
