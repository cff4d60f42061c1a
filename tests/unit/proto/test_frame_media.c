/* The media relay's frames (proto/frame_media.c): MediaAllocate and MediaAllocation round trip
 * through the encoders and decoders; each rule of the decoder refuses with its exact error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/frame.h"

static kurer_server_frame allocation(void)
{
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = 7;
    f.body = KURER_SERVER_MEDIA_ALLOCATION;
    kurer_media_allocation *a = &f.u.media_allocation;
    a->call_id = 0x0123456789abcdefull;
    memset(a->ticket_a, 0xa1, 50);
    memset(a->ticket_b, 0xb2, 64);
    a->ticket_a_len = 50;
    a->ticket_b_len = 64;
    a->udp_port = 7443;
    a->ticket_ttl_ms = 14400000;
    a->keepalive_ms = 15000;
    return f;
}

static void test_allocate_round_trip(void **state)
{
    (void)state;
    kurer_client_frame q, d;
    kurer_buf b;
    memset(&q, 0, sizeof(q));
    q.request_id = 3;
    q.body = KURER_CLIENT_MEDIA_ALLOCATE;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_client_frame_encode(&q, &b), 0);
    assert_int_equal(kurer_client_frame_decode(b.data, b.len, &d), 0);
    assert_int_equal(d.body, KURER_CLIENT_MEDIA_ALLOCATE);
    assert_int_equal(d.request_id, 3);
    kurer_client_frame_release(&d);
    kurer_buf_release(&b);
    /* request id 0 is refused as for every request */
    q.request_id = 0;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_client_frame_encode(&q, &b), KURER_EMALFORMED);
    assert_int_equal(b.len, 0);
    kurer_buf_release(&b);
}

static void test_allocation_round_trip(void **state)
{
    (void)state;
    kurer_server_frame f = allocation(), d;
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_server_frame_encode(&f, &b), 0);
    assert_int_equal(kurer_server_frame_decode(b.data, b.len, &d), 0);
    assert_int_equal(d.body, KURER_SERVER_MEDIA_ALLOCATION);
    assert_int_equal(d.request_id, 7);
    const kurer_media_allocation *a = &d.u.media_allocation;
    assert_true(a->call_id == 0x0123456789abcdefull);
    assert_int_equal(a->ticket_a_len, 50);
    assert_int_equal(a->ticket_b_len, 64);
    assert_memory_equal(a->ticket_a, f.u.media_allocation.ticket_a, 50);
    assert_memory_equal(a->ticket_b, f.u.media_allocation.ticket_b, 64);
    assert_int_equal(a->udp_port, 7443);
    assert_int_equal(a->ticket_ttl_ms, 14400000);
    assert_int_equal(a->keepalive_ms, 15000);
    kurer_server_frame_release(&d);
    kurer_buf_release(&b);
}

static int encode_err(const kurer_server_frame *f)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int rc = kurer_server_frame_encode(f, &b);
    if (rc != 0)
        assert_int_equal(b.len, 0);
    kurer_buf_release(&b);
    return rc;
}

static void test_allocation_negative(void **state)
{
    (void)state;
    kurer_server_frame f = allocation();
    f.u.media_allocation.ticket_a_len = 0;
    assert_int_equal(encode_err(&f), KURER_EMALFORMED);
    f = allocation();
    f.u.media_allocation.ticket_b_len = 0;
    assert_int_equal(encode_err(&f), KURER_EMALFORMED);
    f = allocation();
    f.u.media_allocation.ticket_b_len = KURER_MEDIA_RELAY_TICKET_MAX + 1;
    assert_int_equal(encode_err(&f), KURER_ELIMIT);
    f = allocation();
    f.u.media_allocation.udp_port = 0;
    assert_int_equal(encode_err(&f), KURER_EMALFORMED);
    f = allocation();
    f.u.media_allocation.udp_port = 65536;
    assert_int_equal(encode_err(&f), KURER_EMALFORMED);
    f = allocation();
    f.request_id = 0; /* an answer, never a push */
    assert_int_equal(encode_err(&f), KURER_EMALFORMED);
}

/* A ticket of 65 bytes on the wire (built by hand: our encoder refuses it) is ELIMIT. */
static void test_allocation_long_ticket_bytes(void **state)
{
    (void)state;
    uint8_t wire[200];
    size_t n = 0;
    kurer_server_frame d;
    wire[n++] = 0x08; /* request_id = 1 */
    wire[n++] = 1;
    wire[n++] = 0xaa; /* field 21, length-delimited: tag (21 << 3 | 2) = 170 as a varint */
    wire[n++] = 0x01;
    size_t len_at = n++;
    size_t start = n;
    wire[n++] = 0x12; /* ticket_a: 65 bytes */
    wire[n++] = 65;
    memset(wire + n, 1, 65);
    n += 65;
    wire[n++] = 0x1a; /* ticket_b: 1 byte */
    wire[n++] = 1;
    wire[n++] = 2;
    wire[n++] = 0x20; /* udp_port */
    wire[n++] = 9;
    wire[len_at] = (uint8_t)(n - start);
    assert_int_equal(kurer_server_frame_decode(wire, n, &d), KURER_ELIMIT);
    assert_int_equal(d.body, KURER_SERVER_NONE);
    wire[start + 1] = 64; /* the same with 64 bytes is accepted */
    memmove(wire + start + 2 + 64, wire + start + 2 + 65, n - (start + 2 + 65));
    n--;
    wire[len_at] = (uint8_t)(n - start);
    assert_int_equal(kurer_server_frame_decode(wire, n, &d), 0);
    assert_int_equal(d.u.media_allocation.ticket_a_len, 64);
    assert_int_equal(d.u.media_allocation.udp_port, 9);
    kurer_server_frame_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocate_round_trip),
        cmocka_unit_test(test_allocation_round_trip),
        cmocka_unit_test(test_allocation_negative),
        cmocka_unit_test(test_allocation_long_ticket_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
