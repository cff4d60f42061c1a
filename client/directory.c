/* The held devices of a peer against the relay's directory (engine.h): the sync of a directory
 * answer or a STALE_DEVICES result, the per-connection directory cache, and the last device
 * refused on its certificate, so that a send refused for it names that device and the reason
 * rather than "unknown user". Engine threads, home lock held. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "engine.h"
#include "home.h"
#include "kurer/log.h"
#include "kurer/util.h"

/* A device held before and given up on its certificate: remembered for the send that follows. */
static void note_refused(kurer *k, const char *user, uint32_t device_id, int err)
{
    kurer__peer_refused *r = &k->ec.refused;
    snprintf(r->user, sizeof(r->user), "%s", user);
    r->device_id = device_id;
    r->err = err;
}

/* Why a held device is no longer current: its certificate now (revoked, expired, ...), or 0
 * (it is valid, only no longer listed: the relay forgot it or the peer's device went away). */
static int held_reason(kurer *k, const char *user, uint32_t device_id)
{
    kurer_verified v;
    int rc = kurer__session_peer_check(k->sess, user, device_id, &v);
    return rc == KURER_ENOTFOUND || rc == KURER_ECORRUPT ? 0 : rc;
}

int kurer__dir_sync(kurer *k, const char *user, const kurer_chain *chains, size_t n_chains)
{
    uint32_t current[KURER_USER_DEVICES_MAX];
    size_t n_cur = 0;
    uint32_t *held = NULL;
    size_t n_held = 0;
    for (size_t i = 0; i < n_chains && n_cur < KURER_USER_DEVICES_MAX; i++) {
        kurer_verified v;
        if (!kurer__answer_chain_of(&chains[i], user)) {
            /* Ignored, not refused: logged as a hostile answer all the same. */
            (void)kurer__answer_hostile("devices", "foreign_chain", user);
            continue;
        }
        int rc = kurer__session_peer_add(k->sess, &chains[i], &v);
        if (rc == KURER_EINVAL)
            continue; /* our own device */
        if (rc != 0) {
            kurer_log(
                KURER_LOG_WARN, "client", "peer_refused",
                (kurer_log_field[]){KURER_LOG_STR("user", user),
                                    KURER_LOG_INT("device", chains[i].certs[0].body.device_id),
                                    KURER_LOG_STR("reason", kurer_err_name(rc))},
                3);
            if (rc != KURER_ESTALE) /* an older chain offered: the held one stands */
                note_refused(k, user, chains[i].certs[0].body.device_id, rc);
            continue;
        }
        if (strcmp(v.user, user) != 0)
            continue; /* cannot happen: the verified leaf is the body checked above */
        current[n_cur++] = v.device_id;
    }
    int rc = kurer__store_peer_devices(k->st, user, &held, &n_held);
    for (size_t i = 0; rc == 0 && i < n_held; i++) {
        int keep = 0;
        for (size_t j = 0; j < n_cur; j++)
            keep |= held[i] == current[j];
        if (keep)
            continue;
        int why = held_reason(k, user, held[i]);
        if (why != 0)
            note_refused(k, user, held[i], why);
        rc = kurer__store_peer_device_delete(k->st, user, held[i]);
    }
    free(held);
    return rc;
}

int kurer__dir_refusal(kurer *k, const char *user, kurer_refusal *why)
{
    const kurer__peer_refused *r = &k->ec.refused;
    uint32_t *held = NULL;
    size_t n_held = 0;
    if (r->err == 0 || strcmp(r->user, user) != 0)
        return 0;
    int rc = kurer__store_peer_devices(k->st, user, &held, &n_held);
    free(held);
    if (rc != 0)
        return rc;
    if (n_held > 0)
        return 0; /* another device of the user can still be written to */
    if (why != NULL) {
        memset(why, 0, sizeof(*why));
        why->by = KURER_REFUSED_BY_RECIPIENT;
        snprintf(why->user, sizeof(why->user), "%s", user);
        why->device_id = r->device_id;
    }
    return r->err;
}

int kurer__dir_fresh(const kurer *k, const char *user)
{
    uint64_t now = kurer_time_mono_ms();
    for (size_t i = 0; i < KURER__DIR_CACHE; i++) {
        const kurer__dir_seen *d = &k->ec.dir[i];
        if (d->at_ms != 0 && now - d->at_ms < KURER__DIR_FRESH_MS && strcmp(d->user, user) == 0)
            return 1;
    }
    return 0;
}

void kurer__dir_note(kurer *k, const char *user)
{
    kurer__dir_seen *slot = &k->ec.dir[0];
    for (size_t i = 0; i < KURER__DIR_CACHE; i++) {
        kurer__dir_seen *d = &k->ec.dir[i];
        if (d->at_ms != 0 && strcmp(d->user, user) == 0) {
            slot = d;
            break;
        }
        if (d->at_ms < slot->at_ms)
            slot = d;
    }
    snprintf(slot->user, sizeof(slot->user), "%s", user);
    slot->at_ms = kurer_time_mono_ms();
}
