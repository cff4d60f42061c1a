/* Device addresses, envelopes and certificate chains inside frames, and the helpers every
 * frame codec shares. */
#include <stdlib.h>
#include <string.h>

#include "frame_internal.h"

int kurer__pack(const ProtobufCMessage *m, size_t max, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p;
    *out = NULL;
    *len = 0;
    if (n > max)
        return KURER_ELIMIT;
    p = malloc(n > 0 ? n : 1);
    if (p == NULL)
        return KURER_ENOMEM;
    if (protobuf_c_message_pack(m, p) != n) {
        free(p);
        return KURER_EINTERNAL;
    }
    *out = p;
    *len = n;
    return 0;
}

int kurer__encode_verified(const ProtobufCMessage *m, size_t max,
                           int (*verify)(const uint8_t *, size_t), kurer_buf *out)
{
    uint8_t *p;
    size_t n;
    int rc = kurer__pack(m, max, &p, &n);
    if (rc != 0)
        return rc;
    if ((rc = verify(p, n)) == 0)
        rc = kurer_buf_put(out, p, n);
    kurer_wipe(p, n); /* may be Content plaintext */
    free(p);
    return rc;
}

int kurer__bytes_fixed(const ProtobufCBinaryData *b, uint8_t *dst, size_t n)
{
    if (b->len != n || (n > 0 && b->data == NULL))
        return KURER_EMALFORMED;
    memcpy(dst, b->data, n);
    return 0;
}

int kurer__fixed_str_ok(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL ? 0 : KURER_EMALFORMED;
}

int kurer__address_from_pb(const Kurer__V1__DeviceAddress *pb, kurer_device_address *out)
{
    size_t n;
    memset(out, 0, sizeof(*out));
    if (pb == NULL || pb->user == NULL)
        return KURER_EMALFORMED;
    n = strnlen(pb->user, KURER_SUBJECT_MAX + 1);
    /* A bad user is malformed input here (in certificates the same syntax is ESUBJECT). */
    if (n > KURER_SUBJECT_MAX || kurer_user_check(pb->user) != 0)
        return KURER_EMALFORMED;
    if (pb->device_id == 0 || pb->device_id > KURER_DEVICE_ID_MAX)
        return KURER_EMALFORMED;
    memcpy(out->user, pb->user, n);
    out->device_id = pb->device_id;
    return 0;
}

int kurer__address_to_pb(const kurer_device_address *a, Kurer__V1__DeviceAddress *pb)
{
    Kurer__V1__DeviceAddress init = KURER__V1__DEVICE_ADDRESS__INIT;
    *pb = init;
    if (kurer__fixed_str_ok(a->user, sizeof(a->user)) != 0)
        return KURER_EMALFORMED;
    pb->user = (char *)a->user;
    pb->device_id = a->device_id;
    return 0;
}

int kurer__envelope_from_pb(const Kurer__V1__Envelope *pb, int from_required, kurer_envelope *out,
                            kurer_arena *mem)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if (pb == NULL)
        return KURER_EMALFORMED;
    if ((rc = kurer__bytes_fixed(&pb->id, out->id, KURER_ENVELOPE_ID_LEN)) != 0 ||
        (rc = kurer__address_from_pb(pb->to, &out->to)) != 0)
        goto fail;
    if (pb->from != NULL) {
        if ((rc = kurer__address_from_pb(pb->from, &out->from)) != 0)
            goto fail;
        out->has_from = 1;
    } else if (from_required) {
        rc = KURER_EMALFORMED;
        goto fail;
    }
    switch (pb->type) {
    case KURER__V1__ENVELOPE_TYPE__PREKEY_MESSAGE:
    case KURER__V1__ENVELOPE_TYPE__MESSAGE:
    case KURER__V1__ENVELOPE_TYPE__SENDER_KEY:
        out->type = (kurer_envelope_type)pb->type;
        break;
    default:
        rc = KURER_EMALFORMED;
        goto fail;
    }
    if (pb->content.len == 0) {
        rc = KURER_EMALFORMED;
        goto fail;
    }
    if (pb->content.len > KURER_ENVELOPE_CONTENT_MAX) {
        rc = KURER_ELIMIT;
        goto fail;
    }
    out->server_ts = pb->server_ts;
    out->to_serial = pb->to_serial;
    /* Last, so that a refused envelope leaves nothing in mem. */
    if ((rc = kurer__arena_memdup(mem, pb->content.data, pb->content.len, &out->content)) != 0)
        goto fail;
    out->content_len = pb->content.len;
    return 0;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

int kurer__envelope_to_pb(const kurer_envelope *e, Kurer__V1__Envelope *pb, kurer_arena *tmp)
{
    Kurer__V1__Envelope init = KURER__V1__ENVELOPE__INIT;
    void *to, *from = NULL;
    int rc;
    *pb = init;
    if (e->content_len > KURER_ENVELOPE_CONTENT_MAX)
        return KURER_ELIMIT;
    if (e->content_len > 0 && e->content == NULL)
        return KURER_EINVAL;
    if ((rc = kurer__arena_calloc(tmp, 1, sizeof(Kurer__V1__DeviceAddress), &to)) != 0 ||
        (rc = kurer__address_to_pb(&e->to, to)) != 0)
        return rc;
    if (e->has_from) {
        if ((rc = kurer__arena_calloc(tmp, 1, sizeof(Kurer__V1__DeviceAddress), &from)) != 0 ||
            (rc = kurer__address_to_pb(&e->from, from)) != 0)
            return rc;
    }
    pb->id.data = (uint8_t *)e->id;
    pb->id.len = KURER_ENVELOPE_ID_LEN;
    pb->to = to;
    pb->from = from;
    pb->type = (Kurer__V1__EnvelopeType)e->type;
    pb->content.data = (uint8_t *)e->content;
    pb->content.len = e->content_len;
    pb->server_ts = e->server_ts;
    pb->to_serial = e->to_serial;
    return 0;
}

int kurer__chain_from_pb(const Kurer__V1__CertificateChain *pb, kurer_chain *out)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (pb == NULL || pb->n_certs == 0)
        return KURER_EMALFORMED;
    if (pb->n_certs > KURER_CHAIN_MAX)
        return KURER_ELIMIT;
    for (size_t i = 0; i < pb->n_certs; i++) {
        const Kurer__V1__SignedCertificate *c = pb->certs[i];
        if ((rc = kurer_cert_from_parts(c->tbs.data, c->tbs.len, c->signature.data,
                                        c->signature.len, &out->certs[i])) != 0) {
            memset(out, 0, sizeof(*out));
            return rc;
        }
    }
    out->n = pb->n_certs;
    return 0;
}

int kurer__chain_to_pb(const kurer_chain *c, Kurer__V1__CertificateChain **pb, kurer_arena *tmp)
{
    Kurer__V1__CertificateChain init = KURER__V1__CERTIFICATE_CHAIN__INIT;
    Kurer__V1__SignedCertificate cinit = KURER__V1__SIGNED_CERTIFICATE__INIT;
    Kurer__V1__CertificateChain *m;
    Kurer__V1__SignedCertificate *certs;
    void *p;
    int rc;
    *pb = NULL;
    if (c->n > KURER_CHAIN_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(tmp, 1, sizeof(*m), &p)) != 0)
        return rc;
    m = p;
    *m = init;
    if (c->n > 0) {
        if ((rc = kurer__arena_calloc(tmp, c->n, sizeof(*certs), &p)) != 0)
            return rc;
        certs = p;
        if ((rc = kurer__arena_calloc(tmp, c->n, sizeof(*m->certs), &p)) != 0)
            return rc;
        m->certs = p;
        for (size_t i = 0; i < c->n; i++) {
            if (c->certs[i].tbs_len > KURER_TBS_MAX)
                return KURER_ELIMIT;
            certs[i] = cinit;
            certs[i].tbs.data = (uint8_t *)c->certs[i].tbs;
            certs[i].tbs.len = c->certs[i].tbs_len;
            certs[i].signature.data = (uint8_t *)c->certs[i].signature;
            certs[i].signature.len = KURER_SIG_LEN;
            m->certs[i] = &certs[i];
        }
        m->n_certs = c->n;
    }
    *pb = m;
    return 0;
}

/* ---- Public: a stand-alone envelope ------------------------------------------------------- */

int kurer_envelope_decode(const uint8_t *data, size_t len, kurer_envelope *out, kurer_arena *mem)
{
    Kurer__V1__Envelope *pb;
    int rc;
    memset(out, 0, sizeof(*out));
    if (data == NULL || mem == NULL)
        return KURER_EINVAL;
    if (len > KURER_FRAME_MAX)
        return KURER_ELIMIT;
    pb = kurer__v1__envelope__unpack(NULL, len, data);
    if (pb == NULL)
        return KURER_EMALFORMED;
    if ((rc = kurer__exact_size(&pb->base, len)) == 0)
        rc = kurer__envelope_from_pb(pb, 0, out, mem);
    kurer__v1__envelope__free_unpacked(pb, NULL);
    return rc;
}

static int envelope_verify(const uint8_t *data, size_t len)
{
    kurer_arena mem = {0};
    kurer_envelope e;
    int rc = kurer_envelope_decode(data, len, &e, &mem);
    kurer_arena_release(&mem);
    return rc;
}

int kurer_envelope_encode(const kurer_envelope *env, kurer_buf *out)
{
    Kurer__V1__Envelope pb;
    kurer_arena tmp = {0};
    int rc;
    if (env == NULL || out == NULL)
        return KURER_EINVAL;
    if ((rc = kurer__envelope_to_pb(env, &pb, &tmp)) == 0)
        rc = kurer__encode_verified(&pb.base, KURER_FRAME_MAX, envelope_verify, out);
    kurer_arena_release(&tmp);
    return rc;
}
