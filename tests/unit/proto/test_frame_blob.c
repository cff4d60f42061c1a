/* The blob frames (proto/frame_blob.c): each body round trips through its encoder and decoder,
 * and each rule of the decoders refuses with its exact error (a raw protobuf built here stands
 * for a hostile peer, since the encoders refuse what the decoders refuse). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/frame.h"

#include "wire.pb-c.h"

static uint8_t id1[KURER_BLOB_ID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static int client_rt(const kurer_client_frame *f, kurer_client_frame *d)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int rc = kurer_client_frame_encode(f, &b);
    if (rc == 0)
        rc = kurer_client_frame_decode(b.data, b.len, d);
    else
        assert_int_equal(b.len, 0);
    kurer_buf_release(&b);
    return rc;
}

static int server_rt(const kurer_server_frame *f, kurer_server_frame *d)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int rc = kurer_server_frame_encode(f, &b);
    if (rc == 0)
        rc = kurer_server_frame_decode(b.data, b.len, d);
    else
        assert_int_equal(b.len, 0);
    kurer_buf_release(&b);
    return rc;
}

/* A packed raw ClientFrame, decoded: what a hostile client could send. */
static int client_raw(Kurer__V1__ClientFrame *pb)
{
    size_t n = kurer__v1__client_frame__get_packed_size(pb);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    kurer__v1__client_frame__pack(pb, buf);
    kurer_client_frame d;
    int rc = kurer_client_frame_decode(buf, n, &d);
    kurer_client_frame_release(&d);
    free(buf);
    return rc;
}

static int server_raw(Kurer__V1__ServerFrame *pb)
{
    size_t n = kurer__v1__server_frame__get_packed_size(pb);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    kurer__v1__server_frame__pack(pb, buf);
    kurer_server_frame d;
    int rc = kurer_server_frame_decode(buf, n, &d);
    kurer_server_frame_release(&d);
    free(buf);
    return rc;
}

static void test_client_round_trips(void **state)
{
    (void)state;
    kurer_client_frame f, d;
    static uint8_t data[KURER_BLOB_CHUNK_MAX];
    memset(data, 0x5a, sizeof(data));

    memset(&f, 0, sizeof(f));
    f.request_id = 9;
    f.body = KURER_CLIENT_BLOB_START;
    f.u.blob_start.size = 100u << 20;
    assert_int_equal(client_rt(&f, &d), 0);
    assert_int_equal(d.body, KURER_CLIENT_BLOB_START);
    assert_int_equal(d.u.blob_start.size, 100u << 20);
    assert_int_equal(d.u.blob_start.has_id, 0);
    kurer_client_frame_release(&d);
    f.u.blob_start.has_id = 1;
    memcpy(f.u.blob_start.blob_id, id1, sizeof(id1));
    assert_int_equal(client_rt(&f, &d), 0);
    assert_int_equal(d.u.blob_start.has_id, 1);
    assert_memory_equal(d.u.blob_start.blob_id, id1, sizeof(id1));
    kurer_client_frame_release(&d);

    /* a full chunk fits one frame */
    memset(&f, 0, sizeof(f));
    f.request_id = UINT64_MAX;
    f.body = KURER_CLIENT_BLOB_CHUNK;
    memcpy(f.u.blob_chunk.blob_id, id1, sizeof(id1));
    f.u.blob_chunk.offset = KURER_BLOB_SIZE_MAX - KURER_BLOB_CHUNK_MAX;
    f.u.blob_chunk.data = data;
    f.u.blob_chunk.len = KURER_BLOB_CHUNK_MAX;
    assert_int_equal(client_rt(&f, &d), 0);
    assert_int_equal(d.u.blob_chunk.len, KURER_BLOB_CHUNK_MAX);
    assert_memory_equal(d.u.blob_chunk.data, data, KURER_BLOB_CHUNK_MAX);
    kurer_client_frame_release(&d);
    /* one byte more is refused before anything is packed */
    f.u.blob_chunk.len = KURER_BLOB_CHUNK_MAX + 1;
    assert_int_equal(client_rt(&f, &d), KURER_ELIMIT);
    f.u.blob_chunk.len = 0;
    assert_int_equal(client_rt(&f, &d), KURER_EMALFORMED);

    memset(&f, 0, sizeof(f));
    f.request_id = 2;
    f.body = KURER_CLIENT_BLOB_FINISH;
    memcpy(f.u.blob_finish.blob_id, id1, sizeof(id1));
    assert_int_equal(client_rt(&f, &d), 0);
    assert_memory_equal(d.u.blob_finish.blob_id, id1, sizeof(id1));
    kurer_client_frame_release(&d);

    memset(&f, 0, sizeof(f));
    f.request_id = 3;
    f.body = KURER_CLIENT_BLOB_DOWNLOAD;
    memcpy(f.u.blob_download.blob_id, id1, sizeof(id1));
    f.u.blob_download.offset = 65280;
    f.u.blob_download.length = KURER_BLOB_CHUNK_MAX;
    assert_int_equal(client_rt(&f, &d), 0);
    assert_int_equal(d.u.blob_download.offset, 65280);
    kurer_client_frame_release(&d);
    f.u.blob_download.length = KURER_BLOB_CHUNK_MAX + 1;
    assert_int_equal(client_rt(&f, &d), KURER_ELIMIT);
    f.u.blob_download.length = 0;
    assert_int_equal(client_rt(&f, &d), KURER_EMALFORMED);
}

static void test_client_refusals(void **state)
{
    (void)state;
    Kurer__V1__ClientFrame pb = KURER__V1__CLIENT_FRAME__INIT;
    Kurer__V1__BlobUploadStart st = KURER__V1__BLOB_UPLOAD_START__INIT;
    Kurer__V1__BlobUploadChunk ch = KURER__V1__BLOB_UPLOAD_CHUNK__INIT;
    Kurer__V1__BlobUploadFinish fi = KURER__V1__BLOB_UPLOAD_FINISH__INIT;
    uint8_t data[8] = {0};
    pb.request_id = 1;
    pb.body_case = KURER__V1__CLIENT_FRAME__BODY_BLOB_START;
    pb.blob_start = &st;
    st.size = 0; /* nothing to upload */
    assert_int_equal(client_raw(&pb), KURER_EMALFORMED);
    st.size = KURER_BLOB_SIZE_MAX + 1;
    assert_int_equal(client_raw(&pb), KURER_ELIMIT);
    st.size = 10;
    st.blob_id.data = id1;
    st.blob_id.len = 15; /* an id is 16 bytes or absent */
    assert_int_equal(client_raw(&pb), KURER_EMALFORMED);
    st.blob_id.len = 16;
    assert_int_equal(client_raw(&pb), 0);

    pb.body_case = KURER__V1__CLIENT_FRAME__BODY_BLOB_CHUNK;
    pb.blob_chunk = &ch;
    ch.blob_id.data = id1;
    ch.blob_id.len = 16;
    ch.data.data = data;
    ch.data.len = sizeof(data);
    ch.offset = KURER_BLOB_SIZE_MAX - 4; /* past what the protocol can name */
    assert_int_equal(client_raw(&pb), KURER_ELIMIT);
    ch.offset = UINT64_MAX - 2; /* and no wrap-around */
    assert_int_equal(client_raw(&pb), KURER_ELIMIT);
    ch.offset = 0;
    ch.blob_id.len = 0;
    assert_int_equal(client_raw(&pb), KURER_EMALFORMED);
    ch.blob_id.len = 16;
    assert_int_equal(client_raw(&pb), 0);

    pb.body_case = KURER__V1__CLIENT_FRAME__BODY_BLOB_FINISH;
    pb.blob_finish = &fi;
    assert_int_equal(client_raw(&pb), KURER_EMALFORMED); /* no id */
}

static void test_server_round_trips(void **state)
{
    (void)state;
    kurer_server_frame f, d;
    uint8_t data[300];
    memset(data, 0xc3, sizeof(data));

    memset(&f, 0, sizeof(f));
    f.request_id = 4;
    f.body = KURER_SERVER_BLOB_STATE;
    memcpy(f.u.blob_state.blob_id, id1, sizeof(id1));
    f.u.blob_state.size = 1000;
    f.u.blob_state.offset = 1000;
    f.u.blob_state.chunk_max = KURER_BLOB_CHUNK_MAX;
    assert_int_equal(server_rt(&f, &d), 0);
    assert_int_equal(d.body, KURER_SERVER_BLOB_STATE);
    assert_int_equal(d.u.blob_state.offset, 1000);
    assert_int_equal(d.u.blob_state.chunk_max, KURER_BLOB_CHUNK_MAX);
    kurer_server_frame_release(&d);
    f.u.blob_state.offset = 1001; /* more held than declared */
    assert_int_equal(server_rt(&f, &d), KURER_EMALFORMED);
    f.u.blob_state.offset = 0;
    f.u.blob_state.chunk_max = 0;
    assert_int_equal(server_rt(&f, &d), KURER_EMALFORMED);
    f.u.blob_state.chunk_max = KURER_BLOB_CHUNK_MAX + 1;
    assert_int_equal(server_rt(&f, &d), KURER_EMALFORMED);
    f.u.blob_state.chunk_max = 1;
    f.request_id = 0; /* an answer names its request */
    assert_int_equal(server_rt(&f, &d), KURER_EMALFORMED);

    memset(&f, 0, sizeof(f));
    f.request_id = 5;
    f.body = KURER_SERVER_BLOB_STORED;
    memcpy(f.u.blob_stored.blob_id, id1, sizeof(id1));
    f.u.blob_stored.size = 77;
    f.u.blob_stored.expires_at = 1900000000;
    assert_int_equal(server_rt(&f, &d), 0);
    assert_int_equal(d.u.blob_stored.expires_at, 1900000000);
    kurer_server_frame_release(&d);
    f.u.blob_stored.size = 0;
    assert_int_equal(server_rt(&f, &d), KURER_EMALFORMED);

    memset(&f, 0, sizeof(f));
    f.request_id = 6;
    f.body = KURER_SERVER_BLOB_DATA;
    memcpy(f.u.blob_data.blob_id, id1, sizeof(id1));
    f.u.blob_data.size = 1000;
    f.u.blob_data.offset = 700;
    f.u.blob_data.data = data;
    f.u.blob_data.len = sizeof(data);
    assert_int_equal(server_rt(&f, &d), 0);
    assert_int_equal(d.u.blob_data.size, 1000);
    assert_int_equal(d.u.blob_data.offset, 700);
    assert_memory_equal(d.u.blob_data.data, data, sizeof(data));
    kurer_server_frame_release(&d);
    f.u.blob_data.offset = 701; /* past the blob's end */
    assert_int_equal(server_rt(&f, &d), KURER_EMALFORMED);
    f.u.blob_data.offset = 0;
    f.u.blob_data.len = 0;
    assert_int_equal(server_rt(&f, &d), KURER_EMALFORMED);
}

static void test_server_raw_refusals(void **state)
{
    (void)state;
    Kurer__V1__ServerFrame pb = KURER__V1__SERVER_FRAME__INIT;
    Kurer__V1__BlobData bd = KURER__V1__BLOB_DATA__INIT;
    static uint8_t big[KURER_BLOB_CHUNK_MAX + 1];
    pb.request_id = 8;
    pb.body_case = KURER__V1__SERVER_FRAME__BODY_BLOB_DATA;
    pb.blob_data = &bd;
    bd.blob_id.data = id1;
    bd.blob_id.len = 16;
    bd.size = KURER_BLOB_SIZE_MAX;
    bd.data.data = big;
    bd.data.len = sizeof(big); /* one byte over a chunk */
    assert_int_equal(server_raw(&pb), KURER_ELIMIT);
    bd.data.len = 10;
    bd.size = KURER_BLOB_SIZE_MAX + 1;
    assert_int_equal(server_raw(&pb), KURER_ELIMIT);
    bd.size = 10;
    assert_int_equal(server_raw(&pb), 0);
    bd.blob_id.data = big;
    bd.blob_id.len = 17;
    assert_int_equal(server_raw(&pb), KURER_EMALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_round_trips),
        cmocka_unit_test(test_client_refusals),
        cmocka_unit_test(test_server_round_trips),
        cmocka_unit_test(test_server_raw_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
