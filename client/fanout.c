/* Fan-out sends (fanout.h): the request split into parts that each fit one record, sent in
 * order through the handle's connection, and the relay's answer checked against what was
 * sent before anyone acts on it. */
#include "fanout.h"

#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "net.h"

/* Room for a part's fields but its users (ClientFrame request id, body tag and length, id,
 * part, type, final, the content's tag and length): generous. */
#define PART_OVERHEAD 64

/* A generous bound on the bytes one user adds to a part: its tag and length, the name, and
 * per device the sub-message's tag and length, a 5-byte id and a 10-byte serial. */
static size_t user_bytes(const kurer_fanout_user *u)
{
    return 8 + strnlen(u->user, KURER_SUBJECT_MAX + 1) + 20 * u->n_devices;
}

size_t kurer__fanout_part_users(const kurer_fanout_user *users, size_t n_users, size_t first,
                                size_t part0_content)
{
    size_t room = KURER_FRAME_MAX - PART_OVERHEAD - part0_content, n = 0;
    for (size_t i = first; i < n_users; i++) {
        size_t b = user_bytes(&users[i]);
        if (b > room)
            break;
        room -= b;
        n++;
    }
    return n;
}

/* The request's own rules, before anything is sent (the relay checks them again). */
static int check_request(const uint8_t *content, size_t content_len, const kurer_fanout_user *users,
                         size_t n_users)
{
    size_t devices = 0;
    if (content == NULL || content_len == 0 || users == NULL || n_users == 0)
        return KURER_EINVAL;
    if (content_len > KURER_ENVELOPE_CONTENT_MAX)
        return KURER_ELIMIT;
    for (size_t i = 0; i < n_users; i++) {
        const kurer_fanout_user *u = &users[i];
        if (u->user == NULL || u->devices == NULL || u->n_devices == 0)
            return KURER_EINVAL;
        if (u->n_devices > KURER_USER_DEVICES_MAX)
            return KURER_ELIMIT;
        devices += u->n_devices;
        for (size_t j = 0; j < u->n_devices; j++)
            for (size_t m = 0; m < j; m++)
                if (u->devices[m].device_id == u->devices[j].device_id)
                    return KURER_EDUPLICATE;
    }
    if (devices > KURER_FANOUT_DEVICES_MAX)
        return KURER_ELIMIT;
    /* each user once: sorted copies of the names would do it in n log n; the bound keeps
     * this at 16 million comparisons of short strings at worst */
    for (size_t i = 0; i < n_users; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(users[i].user, users[j].user) == 0)
                return KURER_EDUPLICATE;
    return 0;
}

/* The user of the request named name, or n_users. */
static size_t find_user(const kurer_fanout_user *users, size_t n_users, const char *name)
{
    for (size_t i = 0; i < n_users; i++)
        if (strcmp(users[i].user, name) == 0)
            return i;
    return n_users;
}

/* The answer to the final part, checked and mapped onto the request's users. */
static int take_result(const uint8_t *id, const kurer_fanout_user *users, size_t n_users,
                       kurer_server_frame *r, kurer__fanout_results *out)
{
    if (r->body != KURER_SERVER_FANOUT_RESULT ||
        memcmp(r->u.fanout_result.id, id, KURER_ENVELOPE_ID_LEN) != 0)
        return KURER_EMALFORMED;
    size_t nr = r->u.fanout_result.n_refused;
    if (nr > n_users || r->u.fanout_result.accepted != n_users - nr)
        return kurer__answer_hostile("fanout_result", "counts", "");
    out->users = calloc(n_users, sizeof(*out->users));
    if (out->users == NULL)
        return KURER_ENOMEM;
    out->n = n_users;
    for (size_t i = 0; i < n_users; i++) {
        out->users[i].user = users[i].user;
        out->users[i].status = KURER_SEND_ACCEPTED;
    }
    for (size_t k = 0; k < nr; k++) {
        const kurer_user_result *ur = &r->u.fanout_result.refused[k];
        size_t i = find_user(users, n_users, ur->user);
        if (i == n_users) /* a result for someone we did not send to */
            return kurer__answer_hostile("fanout_result", "not_asked", ur->user);
        out->users[i].status = ur->status;
        if (ur->status == KURER_SEND_STALE_DEVICES)
            out->users[i].current = ur->current;
    }
    out->accepted = n_users - nr;
    out->lists_omitted = r->u.fanout_result.lists_omitted;
    out->reply = r;
    return 0;
}

int kurer__fanout_send(kurer *k, const uint8_t id[KURER_ENVELOPE_ID_LEN], const uint8_t *content,
                       size_t content_len, const kurer_fanout_user *users, size_t n_users,
                       uint64_t deadline, kurer__fanout_results *out)
{
    if (out == NULL)
        return KURER_EINVAL;
    memset(out, 0, sizeof(*out));
    int rc = k == NULL || id == NULL ? KURER_EINVAL
                                     : check_request(content, content_len, users, n_users);
    size_t first = 0;
    for (uint32_t part = 0; rc == 0; part++) {
        size_t n = kurer__fanout_part_users(users, n_users, first, part == 0 ? content_len : 0);
        if (part >= KURER_FANOUT_PARTS_MAX || (n == 0 && part > 0))
            return KURER_ELIMIT; /* a user too large for a record cannot be, but bound it */
        kurer_client_frame f;
        kurer_server_frame *r = NULL;
        memset(&f, 0, sizeof(f));
        f.body = KURER_CLIENT_FANOUT;
        memcpy(f.u.fanout.id, id, KURER_ENVELOPE_ID_LEN);
        f.u.fanout.part = part;
        if (part == 0) {
            f.u.fanout.type = KURER_ENVELOPE_SENDER_KEY;
            f.u.fanout.content = content;
            f.u.fanout.content_len = content_len;
        }
        f.u.fanout.users = users + first;
        f.u.fanout.n_users = n;
        f.u.fanout.final = first + n == n_users;
        if ((rc = kurer__rpc(k, &f, deadline, &r)) != 0)
            return rc;
        first += n;
        if (!f.u.fanout.final) {
            rc = r->body == KURER_SERVER_OK ? 0 : KURER_EMALFORMED;
            kurer__reply_free(r);
            continue;
        }
        if ((rc = take_result(id, users, n_users, r, out)) != 0) {
            kurer__reply_free(r);
            free(out->users);
            memset(out, 0, sizeof(*out));
        }
        return rc;
    }
    return rc;
}

void kurer__fanout_results_free(kurer__fanout_results *r)
{
    if (r == NULL)
        return;
    free(r->users);
    if (r->reply != NULL)
        kurer__reply_free(r->reply);
    memset(r, 0, sizeof(*r));
}
