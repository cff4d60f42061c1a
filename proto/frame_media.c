/* The media relay's frames (docs/protocol.md, "Media relay"): MediaAllocate and
 * MediaAllocation, kept apart from frame.c, which hands every body it does not know to these
 * functions; they hand what is not theirs on to frame_fanout.c, and it to frame_blob.c. */
#include <string.h>

#include "frame_internal.h"

int kurer__media_client_from_pb(const Kurer__V1__ClientFrame *pb, kurer_client_frame *out)
{
    if (pb->body_case != KURER__V1__CLIENT_FRAME__BODY_MEDIA_ALLOCATE)
        return kurer__fanout_client_from_pb(pb, out); /* else none, or a newer one */
    out->body = KURER_CLIENT_MEDIA_ALLOCATE;
    return 0;
}

int kurer__media_client_to_pb(const kurer_client_frame *f, Kurer__V1__ClientFrame *pb,
                              kurer_arena *tmp)
{
    static const Kurer__V1__MediaAllocate init = KURER__V1__MEDIA_ALLOCATE__INIT;
    void *p;
    int rc;
    if (f->body != KURER_CLIENT_MEDIA_ALLOCATE)
        return kurer__fanout_client_to_pb(f, pb, tmp);
    if ((rc = kurer__arena_calloc(tmp, 1, sizeof(init), &p)) != 0)
        return rc;
    memcpy(p, &init, sizeof(init));
    pb->media_allocate = p;
    pb->body_case = KURER__V1__CLIENT_FRAME__BODY_MEDIA_ALLOCATE;
    return 0;
}

static int ticket_from_pb(const ProtobufCBinaryData *b, uint8_t *dst, size_t *len)
{
    if (b->len == 0)
        return KURER_EMALFORMED;
    if (b->len > KURER_MEDIA_RELAY_TICKET_MAX)
        return KURER_ELIMIT;
    memcpy(dst, b->data, b->len);
    *len = b->len;
    return 0;
}

int kurer__media_server_from_pb(const Kurer__V1__ServerFrame *pb, kurer_server_frame *out)
{
    const Kurer__V1__MediaAllocation *m = pb->media_allocation;
    kurer_media_allocation *a = &out->u.media_allocation;
    int rc;
    if (pb->body_case != KURER__V1__SERVER_FRAME__BODY_MEDIA_ALLOCATION)
        return kurer__fanout_server_from_pb(pb, out);
    if (pb->request_id == 0) /* an answer names its request */
        return KURER_EMALFORMED;
    out->body = KURER_SERVER_MEDIA_ALLOCATION;
    if (m->udp_port == 0 || m->udp_port > 65535)
        return KURER_EMALFORMED;
    a->call_id = m->call_id;
    a->udp_port = m->udp_port;
    a->ticket_ttl_ms = m->ticket_ttl_ms;
    a->keepalive_ms = m->keepalive_ms;
    if ((rc = ticket_from_pb(&m->ticket_a, a->ticket_a, &a->ticket_a_len)) != 0)
        return rc;
    return ticket_from_pb(&m->ticket_b, a->ticket_b, &a->ticket_b_len);
}

int kurer__media_server_to_pb(const kurer_server_frame *f, Kurer__V1__ServerFrame *pb,
                              kurer_arena *tmp)
{
    static const Kurer__V1__MediaAllocation init = KURER__V1__MEDIA_ALLOCATION__INIT;
    const kurer_media_allocation *a = &f->u.media_allocation;
    Kurer__V1__MediaAllocation *m;
    void *p;
    int rc;
    if (f->body != KURER_SERVER_MEDIA_ALLOCATION)
        return kurer__fanout_server_to_pb(f, pb, tmp);
    if (a->ticket_a_len > KURER_MEDIA_RELAY_TICKET_MAX ||
        a->ticket_b_len > KURER_MEDIA_RELAY_TICKET_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(tmp, 1, sizeof(init), &p)) != 0)
        return rc;
    m = p;
    memcpy(m, &init, sizeof(init));
    m->call_id = a->call_id;
    m->ticket_a.data = (uint8_t *)a->ticket_a;
    m->ticket_a.len = a->ticket_a_len;
    m->ticket_b.data = (uint8_t *)a->ticket_b;
    m->ticket_b.len = a->ticket_b_len;
    m->udp_port = a->udp_port;
    m->ticket_ttl_ms = a->ticket_ttl_ms;
    m->keepalive_ms = a->keepalive_ms;
    pb->media_allocation = m;
    pb->body_case = KURER__V1__SERVER_FRAME__BODY_MEDIA_ALLOCATION;
    return 0;
}
