/* libFuzzer target for the frame decode layer: every input goes through the client-frame,
 * server-frame, Content (plain and padded), handshake and envelope decoders. Whatever a decoder
 * accepts must encode again and decode to the same bytes: the decoded structs are exactly what
 * the encoders take, so a struct the decoder produced and the encoder refuses is a bug. A
 * decoded envelope also goes through a fan-out's stored form (kurer_fanout_shared_encode) and
 * back (kurer_fanout_envelope), which must give its own encoding again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/content.h"
#include "kurer/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Encodes again what was decoded; the second encoding decodes, and encodes to the same bytes. */
#define ROUND_TRIP(type, decode, encode, release, x)                                               \
    do {                                                                                           \
        kurer_buf b1, b2;                                                                          \
        type y;                                                                                    \
        kurer_buf_init(&b1, KURER_FRAME_MAX);                                                      \
        kurer_buf_init(&b2, KURER_FRAME_MAX);                                                      \
        if (encode((x), &b1) != 0)                                                                 \
            abort();                                                                               \
        if (decode(b1.data, b1.len, &y) != 0)                                                      \
            abort();                                                                               \
        if (encode(&y, &b2) != 0 || b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0)     \
            abort();                                                                               \
        release(&y);                                                                               \
        kurer_buf_release(&b1);                                                                    \
        kurer_buf_release(&b2);                                                                    \
    } while (0)

static void nothing(void *p)
{
    (void)p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kurer_handshake_init hi;
    kurer_client_frame cf;
    kurer_server_frame sf;
    kurer_content ct;
    kurer_handshake_accept ha;
    kurer_envelope env;
    kurer_arena mem = {0};

    if (kurer_client_frame_decode(data, size, &cf) == 0) {
        ROUND_TRIP(kurer_client_frame, kurer_client_frame_decode, kurer_client_frame_encode,
                   kurer_client_frame_release, &cf);
        kurer_client_frame_release(&cf);
    }
    if (kurer_server_frame_decode(data, size, &sf) == 0) {
        ROUND_TRIP(kurer_server_frame, kurer_server_frame_decode, kurer_server_frame_encode,
                   kurer_server_frame_release, &sf);
        kurer_server_frame_release(&sf);
    }
    if (kurer_content_decode(data, size, &ct) == 0) {
        ROUND_TRIP(kurer_content, kurer_content_decode, kurer_content_encode, kurer_content_release,
                   &ct);
        kurer_content_release(&ct);
    }
    if (kurer_content_decode_padded(data, size, &ct) == 0)
        kurer_content_release(&ct);
    if (kurer_handshake_accept_decode(data, size, &ha) == 0)
        ROUND_TRIP(kurer_handshake_accept, kurer_handshake_accept_decode,
                   kurer_handshake_accept_encode, nothing, &ha);
    if (kurer_handshake_init_decode(data, size, &hi) == 0) {
        kurer_buf b;
        kurer_buf_init(&b, KURER_FRAME_MAX);
        if (kurer_handshake_init_encode(&hi, &b) != 0)
            abort();
        kurer_buf_release(&b);
    }
    if (kurer_envelope_decode(data, size, &env, &mem) == 0) {
        kurer_buf b, shared, back;
        kurer_buf_init(&b, KURER_FRAME_MAX);
        kurer_buf_init(&shared, KURER_FRAME_MAX);
        kurer_buf_init(&back, KURER_FRAME_MAX);
        if (kurer_envelope_encode(&env, &b) != 0)
            abort();
        /* a fan-out's stored form: the envelope without its `to`, and back with it, is exactly
         * the envelope's own encoding */
        if (kurer_fanout_shared_encode(&env, &shared) != 0 ||
            kurer_fanout_envelope(shared.data, shared.len, &env.to, &back) != 0 ||
            back.len != b.len || memcmp(back.data, b.data, b.len) != 0)
            abort();
        kurer_buf_release(&b);
        kurer_buf_release(&shared);
        kurer_buf_release(&back);
    }
    { /* the stored form read back: any bytes, refused or well-formed, never out of bounds */
        kurer_buf b;
        kurer_device_address to = {"fuzz@test.example", 1};
        kurer_buf_init(&b, KURER_FRAME_MAX);
        (void)kurer_fanout_envelope(data, size, &to, &b);
        kurer_buf_release(&b);
    }
    kurer_arena_release(&mem);
    return 0;
}
