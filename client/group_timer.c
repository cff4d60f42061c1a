/* Disappearing group messages (group_recv.h): a group message's timer is the group's, set by
 * an admin's signed SET_TIMER change and folded into the group's state (group_state.c). Its
 * countdown starts at the send on the sender's devices and at the read on a recipient's; the
 * expiry itself is the one-to-one one (receipt.c, store_receipts.c: secure_delete and a
 * truncating WAL checkpoint). */
#include <string.h>

#include "group_recv.h"
#include "receipt.h"
#include "store_group.h"

_Static_assert(KURER__GROUP_TIMER_MAX == KURER_TIMER_MAX,
               "group.h and kurer.h agree on the longest timer");

static int set_timer(kurer *k, int64_t rowid, uint32_t seconds, int start)
{
    kurer__msg_extra x;
    int rc = kurer__store_message_extra(k->st, rowid, &x);
    if (rc != 0)
        return rc;
    x.expire_timer = seconds;
    if (start && x.expires_at == 0)
        x.expires_at = kurer__home_now(k) * 1000 + (int64_t)seconds * 1000;
    if (x.expires_at != 0)
        kurer__expiry_changed(k);
    return kurer__store_message_set_extra(k->st, rowid, &x);
}

int kurer__group_timer_start(kurer *k, int64_t rowid, uint32_t seconds)
{
    return seconds == 0 ? 0 : set_timer(k, rowid, seconds, 1);
}

int kurer__group_timer_stored(kurer *k, const kurer__msg *m, const kurer_data_message *dm,
                              const uint8_t gid[KURER_GROUP_ID_LEN])
{
    kurer__group_state s;
    if (m->state == KURER__MSG_QUARANTINED)
        return 0; /* nothing of it is kept */
    uint32_t seconds = dm->expire_timer;
    if (seconds == 0) {
        /* A sender that has not had the group's last SET_TIMER yet: the group's timer holds. */
        int rc = kurer__store_group_get(k->st, gid, &s);
        if (rc != 0)
            return rc;
        seconds = s.expire_timer;
        kurer__group_state_release(&s);
    }
    if (seconds == 0)
        return 0;
    /* What one of our own other devices sent counts down from its send: here, now. */
    return set_timer(k, m->rowid, seconds, strcmp(m->peer, k->own.user) == 0);
}
