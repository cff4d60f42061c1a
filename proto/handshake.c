/* The handshake payloads of wire.proto (HandshakeInit, HandshakeAccept) <-> validated structs
 * (kurer/frame.h, docs/protocol.md 1.1). Moved out of frame.c, which holds the frames. */
#include <stdlib.h>
#include <string.h>

#include "frame_internal.h"

/* ---- Handshake payloads ------------------------------------------------------------------- */

int kurer_handshake_init_decode(const uint8_t *data, size_t len, kurer_handshake_init *out)
{
    Kurer__V1__HandshakeInit *pb;
    int rc;
    if (out == NULL)
        return KURER_EINVAL;
    memset(out, 0, sizeof(*out));
    if (data == NULL)
        return KURER_EINVAL;
    if (len > KURER_FRAME_MAX)
        return KURER_ELIMIT;
    pb = kurer__v1__handshake_init__unpack(NULL, len, data);
    if (pb == NULL)
        return KURER_EMALFORMED;
    rc = kurer__exact_size(&pb->base, len);
    if (rc == 0 && pb->protocol_version != KURER_PROTOCOL_VERSION)
        rc = KURER_EVERSION;
    else if (rc == 0)
        rc = kurer__chain_from_pb(pb->chain, &out->chain);
    if (rc == 0) {
        out->protocol_version = pb->protocol_version;
        out->instance_id = pb->instance_id;
        out->instance_count = pb->instance_count;
    }
    kurer__v1__handshake_init__free_unpacked(pb, NULL);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

static int handshake_init_verify(const uint8_t *data, size_t len)
{
    kurer_handshake_init *hs = malloc(sizeof(*hs));
    int rc = hs != NULL ? kurer_handshake_init_decode(data, len, hs) : KURER_ENOMEM;
    free(hs);
    return rc;
}

int kurer_handshake_init_encode(const kurer_handshake_init *hs, kurer_buf *out)
{
    Kurer__V1__HandshakeInit pb = KURER__V1__HANDSHAKE_INIT__INIT;
    kurer_arena tmp = {0};
    int rc;
    if (hs == NULL || out == NULL)
        return KURER_EINVAL;
    pb.protocol_version = hs->protocol_version;
    pb.instance_id = hs->instance_id;
    pb.instance_count = hs->instance_count;
    if ((rc = kurer__chain_to_pb(&hs->chain, &pb.chain, &tmp)) == 0)
        rc = kurer__encode_verified(&pb.base, KURER_FRAME_MAX, handshake_init_verify, out);
    kurer_arena_release(&tmp);
    return rc;
}

int kurer_handshake_accept_decode(const uint8_t *data, size_t len, kurer_handshake_accept *out)
{
    Kurer__V1__HandshakeAccept *pb;
    int rc = 0;
    if (out == NULL)
        return KURER_EINVAL;
    memset(out, 0, sizeof(*out));
    if (data == NULL)
        return KURER_EINVAL;
    if (len > KURER_FRAME_MAX)
        return KURER_ELIMIT;
    pb = kurer__v1__handshake_accept__unpack(NULL, len, data);
    if (pb == NULL)
        return KURER_EMALFORMED;
    rc = kurer__exact_size(&pb->base, len);
    if (rc == 0 && pb->protocol_version != KURER_PROTOCOL_VERSION) {
        rc = KURER_EVERSION;
    } else if (rc == 0 && pb->error != NULL) {
        size_t n = pb->error->message != NULL
                       ? strnlen(pb->error->message, KURER_ERROR_MESSAGE_MAX + 1)
                       : 0;
        if (pb->error->code >= 0)
            rc = KURER_EMALFORMED;
        else if (n > KURER_ERROR_MESSAGE_MAX)
            rc = KURER_ELIMIT;
        else {
            out->has_error = 1;
            out->error_code = pb->error->code;
            if (n > 0)
                memcpy(out->error_message, pb->error->message, n);
        }
    }
    if (rc == 0) {
        out->protocol_version = pb->protocol_version;
        out->server_time = pb->server_time;
        out->queued = pb->queued;
        out->idle_timeout_ms = pb->idle_timeout_ms;
    }
    kurer__v1__handshake_accept__free_unpacked(pb, NULL);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

static int handshake_accept_verify(const uint8_t *data, size_t len)
{
    kurer_handshake_accept hs;
    return kurer_handshake_accept_decode(data, len, &hs);
}

int kurer_handshake_accept_encode(const kurer_handshake_accept *hs, kurer_buf *out)
{
    Kurer__V1__HandshakeAccept pb = KURER__V1__HANDSHAKE_ACCEPT__INIT;
    Kurer__V1__Error err = KURER__V1__ERROR__INIT;
    if (hs == NULL || out == NULL)
        return KURER_EINVAL;
    pb.protocol_version = hs->protocol_version;
    pb.server_time = hs->server_time;
    pb.queued = hs->queued;
    pb.idle_timeout_ms = hs->idle_timeout_ms;
    if (hs->has_error) {
        if (kurer__fixed_str_ok(hs->error_message, sizeof(hs->error_message)) != 0)
            return KURER_ELIMIT;
        err.code = hs->error_code;
        err.message = (char *)hs->error_message;
        pb.error = &err;
    }
    return kurer__encode_verified(&pb.base, KURER_FRAME_MAX, handshake_accept_verify, out);
}
