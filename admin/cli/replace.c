/* kurer-admin issue --replace: the device's current certificates revoked as superseded, in the
 * same run under the authority's lock that issues the new one (issue.c). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kurer/crypto.h"

void replacement_release(replacement *r)
{
    kurer_crl_release(&r->old_list);
    kurer_crl_release(&r->new_list);
    memset(r, 0, sizeof(*r));
}

int replacement_prepare(issuer *is, const char *subject, uint32_t device_id, int64_t now,
                        replacement *r)
{
    const kurer_log_entry *cur[REPLACE_MAX];
    size_t n = kurer_issuance_current(&is->log, subject, device_id, now, cur, REPLACE_MAX);
    int rc;
    memset(r, 0, sizeof(*r));
    if (n > REPLACE_MAX)
        return refuse(KURER_ELIMIT,
                      "%s device %u has %zu current certificates in %s; revoke all but one "
                      "with kurer-admin revoke first",
                      subject, device_id, n, is->log_path);
    /* Copies: appending to the log moves its entries. */
    for (size_t i = 0; i < n; i++)
        r->old[i] = *cur[i];
    r->n = n;
    /* The list the revocation builds on, checked now: a refused run writes nothing. */
    if ((rc = current_list(is, &r->old_list)) != 0)
        return rc;
    for (size_t i = 0; i < r->n; i++)
        if (kurer_crl_contains(&r->old_list, r->old[i].serial))
            return refuse(KURER_ESTALE,
                          "serial %llu is on %s but %s does not record its revocation: the "
                          "directory is inconsistent (kurer-admin log --authority %s)",
                          (unsigned long long)r->old[i].serial, is->crl_path, is->log_path,
                          is->dir);
    return 0;
}

int replacement_commit(issuer *is, replacement *r, int64_t now, uint64_t crl_days)
{
    kurer_crl step;
    int rc = 0;
    memset(&step, 0, sizeof(step));
    /* One new list (one version up) holding every superseded serial. */
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        const kurer_crl *base = i == 0 ? &r->old_list : &step;
        kurer_crl next;
        if ((rc = next_list(base, r->old[i].serial, KURER_REASON_SUPERSEDED, now, crl_days,
                            &next)) != 0)
            break;
        kurer_crl_release(&step);
        step = next;
    }
    if (rc != 0) {
        kurer_crl_release(&step);
        return rc;
    }
    step.version = r->old_list.version + 1;
    r->new_list = step;
    if ((rc = write_list(is, &r->new_list)) != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        kurer_log_entry e;
        kurer_log_entry_for_revocation(&e, &r->old[i], KURER_REASON_SUPERSEDED, now);
        rc = log_append(is, &e);
    }
    return rc;
}
