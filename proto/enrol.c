/* Online enrolment messages (kurer/enrol.h) <-> proto/enrol.proto. */
#include <stdlib.h>
#include <string.h>

#include "enrol.pb-c.h"
#include "frame_internal.h"
#include "kurer/enrol.h"

/* A bytes field of 1..max bytes into dst. */
static int bytes_var(const ProtobufCBinaryData *b, uint8_t *dst, size_t max, size_t *n)
{
    if (b->len == 0)
        return KURER_EMALFORMED;
    if (b->len > max)
        return KURER_ELIMIT;
    memcpy(dst, b->data, b->len);
    *n = b->len;
    return 0;
}

static ProtobufCBinaryData bin(const uint8_t *p, size_t n)
{
    ProtobufCBinaryData b = {n, (uint8_t *)p};
    return b;
}

static int user_in(const char *s, char out[KURER_SUBJECT_MAX + 1])
{
    if (s == NULL || strnlen(s, KURER_SUBJECT_MAX + 1) > KURER_SUBJECT_MAX ||
        kurer_user_check(s) != 0)
        return KURER_EMALFORMED;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* ---- EnrolHello --------------------------------------------------------------------------- */

int kurer_enrol_hello_encode(kurer_buf *out)
{
    Kurer__V1__EnrolHello pb = KURER__V1__ENROL_HELLO__INIT;
    pb.version = KURER_ENROL_VERSION;
    return kurer__encode_verified(&pb.base, 64, kurer_enrol_hello_decode, out);
}

int kurer_enrol_hello_decode(const uint8_t *data, size_t len)
{
    if (len > 64)
        return KURER_ELIMIT;
    Kurer__V1__EnrolHello *pb = kurer__v1__enrol_hello__unpack(NULL, len, data);
    if (pb == NULL)
        return KURER_EMALFORMED;
    int rc = kurer__exact_size(&pb->base, len);
    if (rc == 0 && pb->version != KURER_ENROL_VERSION)
        rc = KURER_EVERSION;
    kurer__v1__enrol_hello__free_unpacked(pb, NULL);
    return rc;
}

/* ---- EnrolRequest ------------------------------------------------------------------------- */

static int proof_in(const Kurer__V1__AdminProof *pb, kurer_enrol_proof *out)
{
    if (pb == NULL)
        return KURER_EMALFORMED;
    out->time = pb->time;
    int rc = bytes_var(&pb->authority, out->authority, KURER_CERT_MAX, &out->authority_len);
    return rc != 0 ? rc : kurer__bytes_fixed(&pb->signature, out->signature, KURER_ENROL_SIG_LEN);
}

static int invitation_in(const Kurer__V1__Invitation *pb, kurer_enrol_invitation *out)
{
    int rc;
    if (pb == NULL)
        return KURER_EMALFORMED;
    if ((rc = kurer__bytes_fixed(&pb->invite_id, out->id, KURER_ENROL_ID_LEN)) != 0 ||
        (rc = kurer__bytes_fixed(&pb->verifier, out->verifier, KURER_ENROL_MAC_LEN)) != 0 ||
        (rc = user_in(pb->user, out->user)) != 0 ||
        (rc = bytes_var(&pb->authority, out->authority, KURER_CERT_MAX, &out->authority_len)) !=
            0 ||
        (rc = kurer__bytes_fixed(&pb->signature, out->signature, KURER_ENROL_SIG_LEN)) != 0)
        return rc;
    if (pb->device_id == 0 || pb->device_id > KURER_DEVICE_ID_MAX)
        return KURER_EMALFORMED;
    out->device_id = pb->device_id;
    out->created_at = pb->created_at;
    out->expires_at = pb->expires_at;
    return 0;
}

static int request_in(const Kurer__V1__EnrolRequest *pb, kurer_enrol_request *out)
{
    int rc;
    out->request_id = pb->request_id;
    if (pb->request_id == 0)
        return KURER_EMALFORMED;
    switch (pb->body_case) {
    case KURER__V1__ENROL_REQUEST__BODY_INVITE:
        out->body = KURER_ENROL_INVITE;
        return invitation_in(pb->invite, &out->invite);
    case KURER__V1__ENROL_REQUEST__BODY_SUBMIT: {
        const Kurer__V1__EnrolSubmit *m = pb->submit;
        out->body = KURER_ENROL_SUBMIT;
        if ((rc = kurer__bytes_fixed(&m->invite_id, out->id, KURER_ENROL_ID_LEN)) != 0 ||
            (rc = bytes_var(&m->request, out->request, KURER_ENROL_REQUEST_MAX,
                            &out->request_len)) != 0 ||
            (rc = kurer__bytes_fixed(&m->relay_mac, out->mac, KURER_ENROL_MAC_LEN)) != 0)
            return rc;
        return kurer__bytes_fixed(&m->authority_mac, out->authority_mac, KURER_ENROL_MAC_LEN);
    }
    case KURER__V1__ENROL_REQUEST__BODY_POLL:
        out->body = KURER_ENROL_POLL;
        if ((rc = kurer__bytes_fixed(&pb->poll->invite_id, out->id, KURER_ENROL_ID_LEN)) != 0)
            return rc;
        return kurer__bytes_fixed(&pb->poll->proof, out->mac, KURER_ENROL_MAC_LEN);
    case KURER__V1__ENROL_REQUEST__BODY_LIST:
        out->body = KURER_ENROL_LIST;
        out->has_after = pb->list->after.len != 0;
        if (out->has_after &&
            (rc = kurer__bytes_fixed(&pb->list->after, out->after, KURER_ENROL_ID_LEN)) != 0)
            return rc;
        return proof_in(pb->list->auth, &out->auth);
    case KURER__V1__ENROL_REQUEST__BODY_DECIDE: {
        const Kurer__V1__EnrolDecide *m = pb->decide;
        out->body = KURER_ENROL_DECIDE;
        out->approve = m->approve;
        if ((rc = kurer__bytes_fixed(&m->invite_id, out->id, KURER_ENROL_ID_LEN)) != 0 ||
            (rc = proof_in(m->auth, &out->auth)) != 0)
            return rc;
        if (!m->approve)
            return m->chain.len == 0 ? 0 : KURER_EMALFORMED;
        return bytes_var(&m->chain, out->chain, KURER_CHAIN_BYTES_MAX, &out->chain_len);
    }
    default:
        return KURER_EMALFORMED;
    }
}

int kurer_enrol_request_decode(const uint8_t *data, size_t len, kurer_enrol_request *out)
{
    memset(out, 0, sizeof(*out));
    if (len > KURER_ENROL_RECORD_MAX)
        return KURER_ELIMIT;
    Kurer__V1__EnrolRequest *pb = kurer__v1__enrol_request__unpack(NULL, len, data);
    if (pb == NULL)
        return KURER_EMALFORMED;
    int rc = kurer__exact_size(&pb->base, len);
    if (rc == 0)
        rc = request_in(pb, out);
    kurer__v1__enrol_request__free_unpacked(pb, NULL);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

static int request_verify(const uint8_t *data, size_t len)
{
    kurer_enrol_request *r = malloc(sizeof(*r));
    int rc = r != NULL ? kurer_enrol_request_decode(data, len, r) : KURER_ENOMEM;
    free(r);
    return rc;
}

/* The sub-messages the oneof points at, over the caller's struct. */
typedef struct request_pb {
    Kurer__V1__EnrolRequest top;
    Kurer__V1__Invitation invite;
    Kurer__V1__EnrolSubmit submit;
    Kurer__V1__EnrolPoll poll;
    Kurer__V1__EnrolList list;
    Kurer__V1__EnrolDecide decide;
    Kurer__V1__AdminProof proof;
} request_pb;

static void proof_out(const kurer_enrol_proof *p, Kurer__V1__AdminProof *pb)
{
    kurer__v1__admin_proof__init(pb);
    pb->authority = bin(p->authority, p->authority_len);
    pb->time = p->time;
    pb->signature = bin(p->signature, KURER_ENROL_SIG_LEN);
}

static void request_out(const kurer_enrol_request *r, request_pb *m)
{
    Kurer__V1__EnrolRequest *pb = &m->top;
    kurer__v1__enrol_request__init(pb);
    pb->request_id = r->request_id;
    switch (r->body) {
    case KURER_ENROL_INVITE: {
        const kurer_enrol_invitation *i = &r->invite;
        kurer__v1__invitation__init(&m->invite);
        m->invite.invite_id = bin(i->id, KURER_ENROL_ID_LEN);
        m->invite.verifier = bin(i->verifier, KURER_ENROL_MAC_LEN);
        m->invite.user = (char *)i->user;
        m->invite.device_id = i->device_id;
        m->invite.created_at = i->created_at;
        m->invite.expires_at = i->expires_at;
        m->invite.authority = bin(i->authority, i->authority_len);
        m->invite.signature = bin(i->signature, KURER_ENROL_SIG_LEN);
        pb->invite = &m->invite;
        pb->body_case = KURER__V1__ENROL_REQUEST__BODY_INVITE;
        break;
    }
    case KURER_ENROL_SUBMIT:
        kurer__v1__enrol_submit__init(&m->submit);
        m->submit.invite_id = bin(r->id, KURER_ENROL_ID_LEN);
        m->submit.request = bin(r->request, r->request_len);
        m->submit.relay_mac = bin(r->mac, KURER_ENROL_MAC_LEN);
        m->submit.authority_mac = bin(r->authority_mac, KURER_ENROL_MAC_LEN);
        pb->submit = &m->submit;
        pb->body_case = KURER__V1__ENROL_REQUEST__BODY_SUBMIT;
        break;
    case KURER_ENROL_POLL:
        kurer__v1__enrol_poll__init(&m->poll);
        m->poll.invite_id = bin(r->id, KURER_ENROL_ID_LEN);
        m->poll.proof = bin(r->mac, KURER_ENROL_MAC_LEN);
        pb->poll = &m->poll;
        pb->body_case = KURER__V1__ENROL_REQUEST__BODY_POLL;
        break;
    case KURER_ENROL_LIST:
        kurer__v1__enrol_list__init(&m->list);
        proof_out(&r->auth, &m->proof);
        m->list.auth = &m->proof;
        m->list.after = bin(r->after, r->has_after ? KURER_ENROL_ID_LEN : 0);
        pb->list = &m->list;
        pb->body_case = KURER__V1__ENROL_REQUEST__BODY_LIST;
        break;
    case KURER_ENROL_DECIDE:
        kurer__v1__enrol_decide__init(&m->decide);
        proof_out(&r->auth, &m->proof);
        m->decide.auth = &m->proof;
        m->decide.invite_id = bin(r->id, KURER_ENROL_ID_LEN);
        m->decide.approve = r->approve != 0;
        m->decide.chain = bin(r->chain, r->approve ? r->chain_len : 0);
        pb->decide = &m->decide;
        pb->body_case = KURER__V1__ENROL_REQUEST__BODY_DECIDE;
        break;
    }
}

int kurer_enrol_request_encode(const kurer_enrol_request *r, kurer_buf *out)
{
    request_pb *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return KURER_ENOMEM;
    if (r->body == KURER_ENROL_INVITE &&
        strnlen(r->invite.user, sizeof(r->invite.user)) == sizeof(r->invite.user)) {
        free(m);
        return KURER_EMALFORMED;
    }
    request_out(r, m);
    int rc = kurer__encode_verified(&m->top.base, KURER_ENROL_RECORD_MAX, request_verify, out);
    free(m);
    return rc;
}

/* ---- EnrolReply --------------------------------------------------------------------------- */

static int pending_in(const Kurer__V1__PendingEnrolment *pb, kurer_enrol_pending *out)
{
    int rc;
    if ((rc = kurer__bytes_fixed(&pb->invite_id, out->id, KURER_ENROL_ID_LEN)) != 0 ||
        (rc = user_in(pb->user, out->user)) != 0 ||
        (rc = bytes_var(&pb->request, out->request, KURER_ENROL_REQUEST_MAX, &out->request_len)) !=
            0 ||
        (rc = kurer__bytes_fixed(&pb->authority_mac, out->authority_mac, KURER_ENROL_MAC_LEN)) != 0)
        return rc;
    if (pb->device_id == 0 || pb->device_id > KURER_DEVICE_ID_MAX)
        return KURER_EMALFORMED;
    out->device_id = pb->device_id;
    out->submitted_at = pb->submitted_at;
    out->expires_at = pb->expires_at;
    return 0;
}

static int reply_in(const Kurer__V1__EnrolReply *pb, kurer_enrol_reply *out)
{
    int rc = 0;
    out->request_id = pb->request_id;
    out->error = pb->error;
    out->more = pb->more;
    if (pb->error > 0 || (pb->error != 0 && !kurer_err_known(pb->error)))
        return KURER_EMALFORMED;
    if (pb->state < 0 || pb->state > KURER__V1__ENROL_STATE__ENROL_REJECTED)
        return KURER_EMALFORMED;
    out->state = (kurer_enrol_state)pb->state;
    if (pb->chain.len > 0 &&
        (rc = bytes_var(&pb->chain, out->chain, KURER_CHAIN_BYTES_MAX, &out->chain_len)) != 0)
        return rc;
    if (pb->n_pending > KURER_ENROL_PAGE)
        return KURER_ELIMIT;
    for (size_t i = 0; i < pb->n_pending && rc == 0; i++)
        rc = pending_in(pb->pending[i], &out->pending[i]);
    out->n_pending = pb->n_pending;
    return rc;
}

int kurer_enrol_reply_decode(const uint8_t *data, size_t len, kurer_enrol_reply *out)
{
    memset(out, 0, sizeof(*out));
    if (len > KURER_ENROL_RECORD_MAX)
        return KURER_ELIMIT;
    Kurer__V1__EnrolReply *pb = kurer__v1__enrol_reply__unpack(NULL, len, data);
    if (pb == NULL)
        return KURER_EMALFORMED;
    int rc = kurer__exact_size(&pb->base, len);
    if (rc == 0)
        rc = reply_in(pb, out);
    kurer__v1__enrol_reply__free_unpacked(pb, NULL);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

static int reply_verify(const uint8_t *data, size_t len)
{
    kurer_enrol_reply *r = malloc(sizeof(*r));
    int rc = r != NULL ? kurer_enrol_reply_decode(data, len, r) : KURER_ENOMEM;
    free(r);
    return rc;
}

int kurer_enrol_reply_encode(const kurer_enrol_reply *r, kurer_buf *out)
{
    Kurer__V1__EnrolReply pb = KURER__V1__ENROL_REPLY__INIT;
    Kurer__V1__PendingEnrolment items[KURER_ENROL_PAGE], *ptrs[KURER_ENROL_PAGE];
    if (r->n_pending > KURER_ENROL_PAGE)
        return KURER_ELIMIT;
    pb.request_id = r->request_id;
    pb.error = r->error;
    pb.state = (Kurer__V1__EnrolState)r->state;
    pb.chain = bin(r->chain, r->chain_len);
    pb.more = r->more != 0;
    for (size_t i = 0; i < r->n_pending; i++) {
        const kurer_enrol_pending *p = &r->pending[i];
        kurer__v1__pending_enrolment__init(&items[i]);
        items[i].invite_id = bin(p->id, KURER_ENROL_ID_LEN);
        items[i].user = (char *)p->user;
        items[i].device_id = p->device_id;
        items[i].request = bin(p->request, p->request_len);
        items[i].authority_mac = bin(p->authority_mac, KURER_ENROL_MAC_LEN);
        items[i].submitted_at = p->submitted_at;
        items[i].expires_at = p->expires_at;
        ptrs[i] = &items[i];
    }
    pb.n_pending = r->n_pending;
    pb.pending = ptrs;
    return kurer__encode_verified(&pb.base, KURER_ENROL_RECORD_MAX, reply_verify, out);
}
