/* CallMessages out (call.h): one envelope per current device of the peer in one SendRequest,
 * encrypted with the pairwise sessions, never stored (a call is not a message: a signalling
 * message that does not get through is reported to the call, not retried from an outbox); and
 * the media relay allocation. Request workers, home lock held. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "call.h"
#include "home.h"
#include "kurer/crypto.h"
#include "kurer/frame.h"
#include "kurer/log.h"
#include "net.h"

#define SIGNAL_ATTEMPTS 3 /* stale device lists followed per CallMessage */

typedef struct outgoing {
    kurer_envelope *envs;
    kurer_buf *cts;
    size_t n;
} outgoing;

static void outgoing_free(outgoing *o)
{
    for (size_t i = 0; i < o->n; i++)
        kurer_buf_release(&o->cts[i]);
    free(o->cts);
    free(o->envs);
    memset(o, 0, sizeof(*o));
}

/* Encrypts the padded pt for every held device of user. */
static int encrypt_all(kurer *k, const char *user, const kurer_buf *pt, outgoing *o)
{
    uint32_t *devs = NULL;
    size_t n = 0;
    int rc = kurer__store_peer_devices(kurer__home_store(k), user, &devs, &n);
    if (rc != 0)
        return rc;
    if (n == 0) {
        free(devs);
        return KURER_ENOTFOUND;
    }
    o->envs = calloc(n, sizeof(*o->envs));
    o->cts = calloc(n, sizeof(*o->cts));
    if (o->envs == NULL || o->cts == NULL)
        rc = KURER_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        kurer_envelope *e = &o->envs[i];
        kurer_buf_init(&o->cts[i], KURER__CIPHERTEXT_MAX);
        o->n = i + 1;
        rc = kurer__session_encrypt(kurer__home_session(k), user, devs[i], pt->data, pt->len,
                                    &o->cts[i], &e->type);
        kurer_random(e->id, sizeof(e->id));
        snprintf(e->to.user, sizeof(e->to.user), "%s", user);
        e->to.device_id = devs[i];
        e->content = o->cts[i].data;
        e->content_len = o->cts[i].len;
    }
    free(devs);
    return rc;
}

/* One SendRequest of o; 0 when the relay accepted it for user, 1 for a stale device list. */
static int send_once(kurer *k, const char *user, const outgoing *o, uint64_t deadline)
{
    kurer_client_frame f;
    kurer_server_frame *r = NULL;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_SEND;
    f.u.send.envelopes = o->envs;
    f.u.send.n = o->n;
    int rc = kurer__rpc(k, &f, deadline, &r);
    if (rc != 0)
        return rc;
    if (r->body != KURER_SERVER_SEND_RESULT)
        rc = KURER_EMALFORMED;
    else
        rc = kurer__answer_send_result(kurer_own_user(k), o->envs, o->n, r);
    for (size_t u = 0; rc == 0 && u < r->u.send_result.n; u++) {
        const kurer_user_result *ur = &r->u.send_result.users[u];
        if (strcmp(ur->user, user) != 0)
            continue;
        rc = ur->status == KURER_SEND_ACCEPTED       ? 0
             : ur->status == KURER_SEND_UNKNOWN_USER ? KURER_EUNKNOWNUSER
                                                     : 1;
    }
    kurer__reply_free(r);
    return rc;
}

int kurer__call_signal_send(kurer *k, const char *user, const kurer_call_message *m,
                            int check_level, uint64_t deadline, kurer_refusal *why,
                            size_t *n_devices)
{
    kurer_content c;
    kurer_buf pt;
    memset(&c, 0, sizeof(c));
    c.body = KURER_CONTENT_CALL;
    c.u.call = *m;
    kurer_buf_init_secret(&pt, KURER_CONTENT_PADDED_MAX);
    int rc = kurer_content_encode_padded(&c, &pt);
    kurer_memzero(&c, sizeof(c));
    for (int attempt = 0; rc == 0 && attempt < SIGNAL_ATTEMPTS; attempt++) {
        outgoing o;
        memset(&o, 0, sizeof(o));
        rc = kurer__engine_devices(k, user, attempt > 0, deadline, why);
        /* The call's level, as a message's: our certificate, the ceiling, every device. */
        if (rc == 0 && check_level)
            rc = kurer__home_check_send_unlocked(k, user, (int)m->level, why);
        if (rc == 0)
            rc = encrypt_all(k, user, &pt, &o);
        if (rc == 0)
            rc = send_once(k, user, &o, deadline);
        if (rc == 0)
            *n_devices = o.n;
        outgoing_free(&o);
        if (rc != 1)
            break;
        rc = attempt + 1 < SIGNAL_ATTEMPTS ? 0 : KURER_ESTALEDEVICES; /* the list changed */
    }
    kurer_buf_release(&pt);
    return rc;
}

int kurer__call_allocate(kurer *k, uint64_t deadline, kurer__call_alloc *out)
{
    kurer_client_frame f;
    kurer_server_frame *r = NULL;
    memset(&f, 0, sizeof(f));
    f.body = KURER_CLIENT_MEDIA_ALLOCATE;
    int rc = kurer__rpc(k, &f, deadline, &r);
    if (rc != 0)
        return rc;
    const kurer_media_allocation *a = &r->u.media_allocation;
    /* The decoder holds the ticket lengths and the port to their ranges; checked again here
     * because the arrays below are ours. */
    if (r->body != KURER_SERVER_MEDIA_ALLOCATION || a->ticket_a_len == 0 ||
        a->ticket_a_len > sizeof(out->ticket_a) || a->ticket_b_len == 0 ||
        a->ticket_b_len > sizeof(out->ticket_b) || a->udp_port == 0 || a->udp_port > 65535) {
        kurer__reply_free(r);
        return KURER_EMALFORMED;
    }
    out->relay_call_id = a->call_id;
    memcpy(out->ticket_a, a->ticket_a, a->ticket_a_len);
    out->ticket_a_len = a->ticket_a_len;
    memcpy(out->ticket_b, a->ticket_b, a->ticket_b_len);
    out->ticket_b_len = a->ticket_b_len;
    out->udp_port = (uint16_t)a->udp_port;
    out->keepalive_ms = a->keepalive_ms;
    kurer__reply_free(r);
    return 0;
}
