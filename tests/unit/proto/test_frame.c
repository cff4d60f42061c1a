/* kurer/frame.h: round trips of every frame type, and negative tests that expect exact errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kurer/frame.h"

#include "fixtures.h"

/* ---- Helpers ------------------------------------------------------------------------------ */

static void fill_envelope(kurer_envelope *e, uint8_t seed, const uint8_t *content, size_t n)
{
    memset(e, 0, sizeof(*e));
    memset(e->id, seed, sizeof(e->id));
    strcpy(e->to.user, "anna.berg@ministry.example");
    e->to.device_id = seed;
    e->type = KURER_ENVELOPE_MESSAGE;
    e->content = content;
    e->content_len = n;
    e->server_ts = 1800000000000 + seed;
}

static void envelope_equal(const kurer_envelope *a, const kurer_envelope *b)
{
    assert_memory_equal(a->id, b->id, KURER_ENVELOPE_ID_LEN);
    assert_string_equal(a->to.user, b->to.user);
    assert_int_equal(a->to.device_id, b->to.device_id);
    assert_int_equal(a->has_from, b->has_from);
    if (a->has_from) {
        assert_string_equal(a->from.user, b->from.user);
        assert_int_equal(a->from.device_id, b->from.device_id);
    }
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->content_len, b->content_len);
    assert_memory_equal(a->content, b->content, a->content_len);
    assert_int_equal(a->server_ts, b->server_ts);
}

/* Every strict prefix of a valid frame is refused, without a crash or a leak. */
static void truncations_client(const kurer_buf *b)
{
    for (size_t i = 0; i < b->len; i++) {
        kurer_client_frame f;
        assert_int_not_equal(kurer_client_frame_decode(b->data, i, &f), 0);
        assert_int_equal(f.body, KURER_CLIENT_NONE);
        kurer_client_frame_release(&f);
    }
}

static void truncations_server(const kurer_buf *b)
{
    for (size_t i = 0; i < b->len; i++) {
        kurer_server_frame f;
        assert_int_not_equal(kurer_server_frame_decode(b->data, i, &f), 0);
        assert_int_equal(f.body, KURER_SERVER_NONE);
        kurer_server_frame_release(&f);
    }
}

/* Encodes f, decodes it into *g, checks the basics and every truncation. Also writes the
 * encoding as a fuzz seed when KURER_WRITE_SEEDS names a folder. */
static void seed_write(const char *name, const kurer_buf *b)
{
    const char *dir = getenv("KURER_WRITE_SEEDS");
    char path[512];
    FILE *fp;
    if (dir == NULL)
        return;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b->data, 1, b->len, fp), b->len);
    fclose(fp);
}

static void client_rt(const kurer_client_frame *f, kurer_client_frame *g, const char *seed)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_client_frame_encode(f, &b), 0);
    assert_true(b.len <= KURER_FRAME_MAX);
    assert_int_equal(kurer_client_frame_decode(b.data, b.len, g), 0);
    assert_int_equal(g->request_id, f->request_id);
    assert_int_equal(g->body, f->body);
    truncations_client(&b);
    seed_write(seed, &b);
    kurer_buf_release(&b);
}

static void server_rt(const kurer_server_frame *f, kurer_server_frame *g, const char *seed)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_server_frame_encode(f, &b), 0);
    assert_int_equal(kurer_server_frame_decode(b.data, b.len, g), 0);
    assert_int_equal(g->request_id, f->request_id);
    assert_int_equal(g->body, f->body);
    truncations_server(&b);
    seed_write(seed, &b);
    kurer_buf_release(&b);
}

static int client_decode_buf(kurer_buf *b)
{
    kurer_client_frame f;
    int rc = kurer_client_frame_decode(b->data, b->len, &f);
    kurer_client_frame_release(&f);
    kurer_buf_release(b);
    return rc;
}

static int server_decode_buf(kurer_buf *b)
{
    kurer_server_frame f;
    int rc = kurer_server_frame_decode(b->data, b->len, &f);
    kurer_server_frame_release(&f);
    kurer_buf_release(b);
    return rc;
}

static int client_encode_rc(const kurer_client_frame *f)
{
    kurer_buf b;
    int rc;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    rc = kurer_client_frame_encode(f, &b);
    assert_int_equal(b.len, 0); /* nothing written on failure */
    kurer_buf_release(&b);
    return rc;
}

static int server_encode_rc(const kurer_server_frame *f)
{
    kurer_buf b;
    int rc;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    rc = kurer_server_frame_encode(f, &b);
    assert_int_equal(b.len, 0);
    kurer_buf_release(&b);
    return rc;
}

/* ---- Client round trips ------------------------------------------------------------------- */

static void test_client_send(void **state)
{
    static uint8_t big[KURER_ENVELOPE_CONTENT_MAX];
    uint8_t c1[] = {1, 2, 3};
    kurer_envelope envs[3];
    kurer_client_frame f = {0}, g;
    (void)state;
    memset(big, 0xab, sizeof(big));
    fill_envelope(&envs[0], 1, c1, sizeof(c1));
    fill_envelope(&envs[1], 2, c1, 1);
    envs[1].has_from = 1; /* clients may set it; the relay overwrites it */
    strcpy(envs[1].from.user, "bo@agency-2.example");
    envs[1].from.device_id = KURER_DEVICE_ID_MAX;
    envs[1].type = KURER_ENVELOPE_PREKEY;
    fill_envelope(&envs[2], 3, c1, 2);
    envs[2].type = KURER_ENVELOPE_SENDER_KEY;
    f.request_id = UINT64_MAX;
    f.body = KURER_CLIENT_SEND;
    f.u.send.envelopes = envs;
    f.u.send.n = 3;
    client_rt(&f, &g, "client_send");
    assert_int_equal(g.u.send.n, 3);
    for (size_t i = 0; i < 3; i++)
        envelope_equal(&envs[i], &g.u.send.envelopes[i]);
    kurer_client_frame_release(&g);
    assert_null(g.mem.head);

    /* The largest envelope content still fits a frame (and its Deliver). */
    fill_envelope(&envs[0], 9, big, sizeof(big));
    f.u.send.n = 1;
    {
        kurer_buf b;
        kurer_buf_init(&b, KURER_FRAME_MAX);
        assert_int_equal(kurer_client_frame_encode(&f, &b), 0);
        assert_int_equal(kurer_client_frame_decode(b.data, b.len, &g), 0);
        envelope_equal(&envs[0], &g.u.send.envelopes[0]);
        kurer_client_frame_release(&g);
        kurer_buf_release(&b);
    }
}

static void test_client_ack_lookup_ping(void **state)
{
    uint64_t seqs[KURER_ACK_SEQS_MAX];
    const char *users[] = {"a@b", "anna.berg@ministry.example", "x_y-z@dk"};
    kurer_client_frame f = {0}, g;
    (void)state;
    for (size_t i = 0; i < KURER_ACK_SEQS_MAX; i++)
        seqs[i] = i * 1000003u;
    f.request_id = 7;
    f.body = KURER_CLIENT_ACK;
    f.u.ack.seqs = seqs;
    f.u.ack.n = KURER_ACK_SEQS_MAX;
    client_rt(&f, &g, "client_ack");
    assert_int_equal(g.u.ack.n, KURER_ACK_SEQS_MAX);
    assert_memory_equal(g.u.ack.seqs, seqs, sizeof(seqs));
    kurer_client_frame_release(&g);

    memset(&f, 0, sizeof(f));
    f.request_id = 8;
    f.body = KURER_CLIENT_LOOKUP;
    f.u.lookup.users = users;
    f.u.lookup.n = 3;
    client_rt(&f, &g, "client_lookup");
    assert_int_equal(g.u.lookup.n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(g.u.lookup.users[i], users[i]);
    kurer_client_frame_release(&g);

    memset(&f, 0, sizeof(f));
    f.request_id = 9;
    f.body = KURER_CLIENT_PING;
    f.u.ping.client_time = -5;
    client_rt(&f, &g, "client_ping");
    assert_int_equal(g.u.ping.client_time, -5);
    kurer_client_frame_release(&g);

    memset(&f, 0, sizeof(f));
    f.request_id = 10;
    f.body = KURER_CLIENT_REVOCATIONS;
    client_rt(&f, &g, "client_revocations");
    assert_int_equal(g.u.revocations.has_after, 0);
    kurer_client_frame_release(&g);

    /* The next index page, after a key id. */
    f.u.revocations.has_after = 1;
    memset(f.u.revocations.after, 0x5a, KURER_KEY_ID_LEN);
    client_rt(&f, &g, "client_revocations_after");
    assert_int_equal(g.u.revocations.has_after, 1);
    assert_memory_equal(g.u.revocations.after, f.u.revocations.after, KURER_KEY_ID_LEN);
    kurer_client_frame_release(&g);

    memset(&f, 0, sizeof(f));
    f.request_id = 11;
    f.body = KURER_CLIENT_REVOCATION_CHUNK_FETCH;
    memset(f.u.revocation_chunk_fetch.issuer_key_id, 7, KURER_KEY_ID_LEN);
    f.u.revocation_chunk_fetch.version = 9;
    f.u.revocation_chunk_fetch.offset = 60000;
    client_rt(&f, &g, "client_revocation_chunk_fetch");
    assert_int_equal(g.u.revocation_chunk_fetch.version, 9);
    assert_int_equal(g.u.revocation_chunk_fetch.offset, 60000);
    assert_memory_equal(g.u.revocation_chunk_fetch.issuer_key_id,
                        f.u.revocation_chunk_fetch.issuer_key_id, KURER_KEY_ID_LEN);
    kurer_client_frame_release(&g);
}

/* Upload chunks: in range, and every way out of it refused by the encoder (and so never
 * produced by us) with the exact error. */
static void test_client_revocation_chunk(void **state)
{
    static uint8_t data[KURER_REVOCATION_CHUNK_MAX + 1];
    kurer_client_frame f = {0}, g;
    (void)state;
    memset(data, 0xab, sizeof(data));
    f.request_id = 12;
    f.body = KURER_CLIENT_REVOCATION_CHUNK;
    f.u.revocation_chunk.offset = 4096;
    f.u.revocation_chunk.total = 10000;
    f.u.revocation_chunk.data = data;
    f.u.revocation_chunk.len = 4096;
    client_rt(&f, &g, "client_revocation_chunk");
    assert_int_equal(g.u.revocation_chunk.offset, 4096);
    assert_int_equal(g.u.revocation_chunk.total, 10000);
    assert_int_equal(g.u.revocation_chunk.len, 4096);
    assert_memory_equal(g.u.revocation_chunk.data, data, 4096);
    kurer_client_frame_release(&g);

    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    f.u.revocation_chunk.len = 0;
    assert_int_equal(kurer_client_frame_encode(&f, &b), KURER_EMALFORMED);
    f.u.revocation_chunk.len = 6000; /* past total */
    assert_int_equal(kurer_client_frame_encode(&f, &b), KURER_EMALFORMED);
    f.u.revocation_chunk.offset = 0;
    f.u.revocation_chunk.total = KURER_CRL_BYTES_MAX + 1;
    assert_int_equal(kurer_client_frame_encode(&f, &b), KURER_ELIMIT);
    f.u.revocation_chunk.total = KURER_CRL_BYTES_MAX;
    f.u.revocation_chunk.len = KURER_REVOCATION_CHUNK_MAX + 1;
    assert_int_equal(kurer_client_frame_encode(&f, &b), KURER_ELIMIT);
    f.u.revocation_chunk.total = 0;
    f.u.revocation_chunk.len = 1;
    assert_int_equal(kurer_client_frame_encode(&f, &b), KURER_EMALFORMED);
    assert_int_equal(b.len, 0);
    kurer_buf_release(&b);
}

static void test_client_prekeys(void **state)
{
    static kurer_one_time_prekey otk[KURER_ONE_TIME_PREKEYS_MAX];
    uint32_t ids[] = {1, 2, KURER_DEVICE_ID_MAX};
    kurer_client_frame f = {0}, g;
    (void)state;
    for (size_t i = 0; i < KURER_ONE_TIME_PREKEYS_MAX; i++) {
        otk[i].id = (uint32_t)i + 100;
        memset(otk[i].public_key, (int)i, sizeof(otk[i].public_key));
        otk[i].public_key[0] = 0x05;
    }
    f.request_id = 11;
    f.body = KURER_CLIENT_PREKEYS;
    f.u.prekeys.registration_id = 4242;
    f.u.prekeys.signed_prekey.id = 77;
    memset(f.u.prekeys.signed_prekey.public_key, 0x05, KURER_PREKEY_PUBLIC_LEN);
    memset(f.u.prekeys.signed_prekey.signature, 0x99, KURER_PREKEY_SIG_LEN);
    f.u.prekeys.signed_prekey.created_at = 1800000000;
    f.u.prekeys.one_time = otk;
    f.u.prekeys.n_one_time = KURER_ONE_TIME_PREKEYS_MAX;
    client_rt(&f, &g, "client_prekeys");
    assert_int_equal(g.u.prekeys.registration_id, 4242);
    assert_memory_equal(&g.u.prekeys.signed_prekey, &f.u.prekeys.signed_prekey,
                        sizeof(kurer_signed_prekey));
    assert_int_equal(g.u.prekeys.n_one_time, KURER_ONE_TIME_PREKEYS_MAX);
    assert_memory_equal(g.u.prekeys.one_time, otk, sizeof(otk));
    kurer_client_frame_release(&g);

    /* No one-time prekeys: a signed prekey rotation. */
    f.u.prekeys.n_one_time = 0;
    f.u.prekeys.one_time = NULL;
    client_rt(&f, &g, "client_prekeys_rotate");
    assert_int_equal(g.u.prekeys.n_one_time, 0);
    kurer_client_frame_release(&g);

    memset(&f, 0, sizeof(f));
    f.request_id = 12;
    f.body = KURER_CLIENT_FETCH_PREKEYS;
    strcpy(f.u.fetch_prekeys.user, "anna@ministry.example");
    f.u.fetch_prekeys.device_ids = ids;
    f.u.fetch_prekeys.n_device_ids = 3;
    client_rt(&f, &g, "client_fetch_prekeys");
    assert_string_equal(g.u.fetch_prekeys.user, "anna@ministry.example");
    assert_int_equal(g.u.fetch_prekeys.n_device_ids, 3);
    assert_memory_equal(g.u.fetch_prekeys.device_ids, ids, sizeof(ids));
    kurer_client_frame_release(&g);
}

static void test_client_revocation(void **state)
{
    kurer_client_frame f = {0}, g;
    (void)state;
    f.request_id = 13;
    f.body = KURER_CLIENT_REVOCATION;
    fx_crl(&f.u.revocation, 3);
    client_rt(&f, &g, "client_revocation");
    fx_crl_equal(&f.u.revocation, &g.u.revocation);
    assert_int_equal(g.u.revocation.n_revoked, 2);
    assert_int_equal(g.u.revocation.revoked[1].serial, 1005);
    kurer_client_frame_release(&g);
    kurer_crl_release(&f.u.revocation);
}

/* ---- Server round trips ------------------------------------------------------------------- */

static void test_server_simple(void **state)
{
    kurer_server_frame f = {0}, g;
    (void)state;
    f.request_id = 5;
    f.body = KURER_SERVER_ERROR;
    f.u.error.code = KURER_ERATE;
    f.u.error.message = kurer_strerror(KURER_ERATE);
    server_rt(&f, &g, "server_error");
    assert_int_equal(g.u.error.code, KURER_ERATE);
    assert_string_equal(g.u.error.message, kurer_strerror(KURER_ERATE));
    kurer_server_frame_release(&g);

    /* An error pushed before a close, with an empty message. */
    f.request_id = 0;
    f.u.error.code = KURER_EREVOKED;
    f.u.error.message = NULL;
    server_rt(&f, &g, "server_error_push");
    assert_string_equal(g.u.error.message, "");
    kurer_server_frame_release(&g);

    memset(&f, 0, sizeof(f));
    f.request_id = 6;
    f.body = KURER_SERVER_OK;
    server_rt(&f, &g, "server_ok");
    kurer_server_frame_release(&g);

    memset(&f, 0, sizeof(f));
    f.request_id = 7;
    f.body = KURER_SERVER_PONG;
    f.u.pong.client_time = 1;
    f.u.pong.server_time = 2;
    server_rt(&f, &g, "server_pong");
    assert_int_equal(g.u.pong.client_time, 1);
    assert_int_equal(g.u.pong.server_time, 2);
    kurer_server_frame_release(&g);

    memset(&f, 0, sizeof(f));
    f.body = KURER_SERVER_PREKEYS_LOW;
    f.u.prekeys_low.remaining = 19;
    server_rt(&f, &g, "server_prekeys_low");
    assert_int_equal(g.u.prekeys_low.remaining, 19);
    kurer_server_frame_release(&g);

    memset(&f, 0, sizeof(f));
    f.body = KURER_SERVER_QUEUE_EMPTY;
    server_rt(&f, &g, "server_queue_empty");
    kurer_server_frame_release(&g);
}

static void test_server_deliver(void **state)
{
    static uint8_t big[KURER_ENVELOPE_CONTENT_MAX];
    kurer_server_frame f = {0}, g;
    (void)state;
    memset(big, 0x5a, sizeof(big));
    f.body = KURER_SERVER_DELIVER;
    f.u.deliver.seq = 123456789;
    fill_envelope(&f.u.deliver.envelope, 4, big, 64);
    f.u.deliver.envelope.has_from = 1;
    strcpy(f.u.deliver.envelope.from.user, "bo@agency.example");
    f.u.deliver.envelope.from.device_id = 3;
    server_rt(&f, &g, "server_deliver");
    assert_int_equal(g.u.deliver.seq, 123456789);
    envelope_equal(&f.u.deliver.envelope, &g.u.deliver.envelope);
    kurer_server_frame_release(&g);

    /* Longest addresses and content, largest varints: still one record. */
    memset(f.u.deliver.envelope.to.user, 'a', 64);
    f.u.deliver.envelope.to.user[64] = '@';
    memset(f.u.deliver.envelope.to.user + 65, 'b', 63);
    f.u.deliver.envelope.to.user[128] = '\0';
    strcpy(f.u.deliver.envelope.from.user, f.u.deliver.envelope.to.user);
    f.u.deliver.envelope.to.device_id = KURER_DEVICE_ID_MAX;
    f.u.deliver.envelope.from.device_id = KURER_DEVICE_ID_MAX;
    f.u.deliver.envelope.content = big;
    f.u.deliver.envelope.content_len = sizeof(big);
    f.u.deliver.envelope.server_ts = -1;
    f.u.deliver.seq = UINT64_MAX;
    {
        kurer_buf b;
        kurer_buf_init(&b, KURER_FRAME_MAX);
        assert_int_equal(kurer_server_frame_encode(&f, &b), 0);
        assert_int_equal(kurer_server_frame_decode(b.data, b.len, &g), 0);
        envelope_equal(&f.u.deliver.envelope, &g.u.deliver.envelope);
        kurer_server_frame_release(&g);
        kurer_buf_release(&b);
    }
}

static void test_server_directory_results(void **state)
{
    kurer_chain *chains = calloc(3, sizeof(*chains));
    kurer_user_devices ud[2];
    kurer_user_result res[3];
    kurer_server_frame f = {0}, g;
    (void)state;
    assert_non_null(chains);
    fx_chain(&chains[0], "anna@ministry.example", 1);
    fx_chain(&chains[1], "anna@ministry.example", 2);
    fx_chain(&chains[2], "bo@ministry.example", 1);
    ud[0].user = "anna@ministry.example";
    ud[0].devices = chains;
    ud[0].n_devices = 2;
    ud[1].user = "bo@ministry.example";
    ud[1].devices = &chains[2];
    ud[1].n_devices = 1;

    f.request_id = 21;
    f.body = KURER_SERVER_DIRECTORY;
    f.u.directory.users = ud;
    f.u.directory.n = 2;
    server_rt(&f, &g, "server_directory");
    assert_int_equal(g.u.directory.n, 2);
    assert_string_equal(g.u.directory.users[0].user, "anna@ministry.example");
    assert_int_equal(g.u.directory.users[0].n_devices, 2);
    fx_chain_equal(&chains[1], &g.u.directory.users[0].devices[1]);
    fx_chain_equal(&chains[2], &g.u.directory.users[1].devices[0]);
    assert_int_equal(g.u.directory.users[1].devices[0].certs[0].body.device_id, 1);
    kurer_server_frame_release(&g);

    memset(res, 0, sizeof(res));
    res[0].user = "anna@ministry.example";
    res[0].status = KURER_SEND_STALE_DEVICES;
    res[0].current = ud[0];
    res[1].user = "bo@ministry.example";
    res[1].status = KURER_SEND_ACCEPTED;
    res[2].user = "ghost@ministry.example";
    res[2].status = KURER_SEND_UNKNOWN_USER;
    memset(&f, 0, sizeof(f));
    f.request_id = 22;
    f.body = KURER_SERVER_SEND_RESULT;
    f.u.send_result.users = res;
    f.u.send_result.n = 3;
    server_rt(&f, &g, "server_send_result");
    assert_int_equal(g.u.send_result.n, 3);
    assert_int_equal(g.u.send_result.users[0].status, KURER_SEND_STALE_DEVICES);
    assert_int_equal(g.u.send_result.users[0].current.n_devices, 2);
    fx_chain_equal(&chains[0], &g.u.send_result.users[0].current.devices[0]);
    assert_int_equal(g.u.send_result.users[1].status, KURER_SEND_ACCEPTED);
    assert_int_equal(g.u.send_result.users[1].current.n_devices, 0);
    assert_int_equal(g.u.send_result.users[2].status, KURER_SEND_UNKNOWN_USER);
    assert_string_equal(g.u.send_result.users[2].user, "ghost@ministry.example");
    kurer_server_frame_release(&g);

    /* A stale list for another user than the result's: refused. */
    res[0].current.user = "bo@ministry.example";
    assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
    free(chains);
}

static void test_server_bundles(void **state)
{
    kurer_prekey_bundle *b = calloc(2, sizeof(*b));
    kurer_server_frame f = {0}, g;
    (void)state;
    assert_non_null(b);
    for (uint32_t i = 0; i < 2; i++) {
        strcpy(b[i].address.user, "anna@ministry.example");
        b[i].address.device_id = i + 1;
        b[i].registration_id = 1000 + i;
        b[i].signed_prekey.id = 5;
        memset(b[i].signed_prekey.public_key, 0x05, KURER_PREKEY_PUBLIC_LEN);
        memset(b[i].signed_prekey.signature, 0x01, KURER_PREKEY_SIG_LEN);
        fx_chain(&b[i].chain, "anna@ministry.example", i + 1);
    }
    b[0].has_one_time = 1;
    b[0].one_time.id = 9;
    memset(b[0].one_time.public_key, 0x05, KURER_PREKEY_PUBLIC_LEN);
    f.request_id = 31;
    f.body = KURER_SERVER_BUNDLES;
    f.u.bundles.bundles = b;
    f.u.bundles.n = 2;
    server_rt(&f, &g, "server_bundles");
    assert_int_equal(g.u.bundles.n, 2);
    assert_int_equal(g.u.bundles.bundles[0].has_one_time, 1);
    assert_int_equal(g.u.bundles.bundles[0].one_time.id, 9);
    assert_int_equal(g.u.bundles.bundles[1].has_one_time, 0);
    assert_int_equal(g.u.bundles.bundles[1].registration_id, 1001);
    assert_int_equal(g.u.bundles.bundles[1].address.device_id, 2);
    fx_chain_equal(&b[1].chain, &g.u.bundles.bundles[1].chain);
    kurer_server_frame_release(&g);

    /* A one-time prekey that is not a DJB key. */
    b[0].one_time.public_key[0] = 0x04;
    assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
    free(b);
}

static void test_server_revocations(void **state)
{
    static uint8_t data[KURER_REVOCATION_CHUNK_MAX];
    kurer_revocation_info lists[3];
    kurer_server_frame f = {0}, g;
    (void)state;
    memset(lists, 0, sizeof(lists));
    for (int i = 0; i < 3; i++) {
        memset(lists[i].issuer_key_id, 0x10 * (i + 1), KURER_KEY_ID_LEN);
        lists[i].version = (uint64_t)i + 1;
        lists[i].size = 1000u * (uint32_t)(i + 1);
    }
    f.request_id = 0; /* pushed */
    f.body = KURER_SERVER_REVOCATION_INDEX;
    f.u.revocation_index.lists = lists;
    f.u.revocation_index.n = 3;
    f.u.revocation_index.more = 1;
    server_rt(&f, &g, "server_revocation_index");
    assert_int_equal(g.u.revocation_index.n, 3);
    assert_int_equal(g.u.revocation_index.more, 1);
    assert_int_equal(g.u.revocation_index.lists[2].version, 3);
    assert_int_equal(g.u.revocation_index.lists[2].size, 3000);
    assert_memory_equal(g.u.revocation_index.lists[1].issuer_key_id, lists[1].issuer_key_id,
                        KURER_KEY_ID_LEN);
    kurer_server_frame_release(&g);

    memset(data, 0x42, sizeof(data));
    memset(&f, 0, sizeof(f));
    f.request_id = 4;
    f.body = KURER_SERVER_REVOCATION_CHUNK;
    memset(f.u.revocation_chunk.issuer_key_id, 3, KURER_KEY_ID_LEN);
    f.u.revocation_chunk.version = 8;
    f.u.revocation_chunk.total = KURER_CRL_BYTES_MAX;
    f.u.revocation_chunk.offset = KURER_CRL_BYTES_MAX - KURER_REVOCATION_CHUNK_MAX;
    f.u.revocation_chunk.data = data;
    f.u.revocation_chunk.len = KURER_REVOCATION_CHUNK_MAX; /* the last chunk of the largest list */
    server_rt(&f, &g, "server_revocation_chunk");
    assert_int_equal(g.u.revocation_chunk.version, 8);
    assert_int_equal(g.u.revocation_chunk.len, KURER_REVOCATION_CHUNK_MAX);
    assert_memory_equal(g.u.revocation_chunk.data, data, KURER_REVOCATION_CHUNK_MAX);
    kurer_server_frame_release(&g);
}

/* ---- Handshakes and stand-alone envelopes ------------------------------------------------- */

static void test_handshakes(void **state)
{
    kurer_handshake_init *hi = calloc(1, sizeof(*hi)), *hj = calloc(1, sizeof(*hj));
    kurer_handshake_accept ha, hb;
    kurer_buf b;
    (void)state;
    assert_non_null(hi);
    assert_non_null(hj);
    hi->protocol_version = KURER_PROTOCOL_VERSION;
    fx_chain(&hi->chain, "anna@ministry.example", 1);
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_handshake_init_encode(hi, &b), 0);
    assert_int_equal(kurer_handshake_init_decode(b.data, b.len, hj), 0);
    assert_int_equal(hj->protocol_version, 1);
    fx_chain_equal(&hi->chain, &hj->chain);
    for (size_t i = 0; i < b.len; i++)
        assert_int_not_equal(kurer_handshake_init_decode(b.data, i, hj), 0);
    seed_write("handshake_init", &b);
    kurer_buf_reset(&b);

    hi->protocol_version = 2;
    assert_int_equal(kurer_handshake_init_encode(hi, &b), KURER_EVERSION);
    hi->protocol_version = 1;
    hi->chain.n = 0;
    assert_int_equal(kurer_handshake_init_encode(hi, &b), KURER_EMALFORMED);
    hi->chain.n = 4;
    assert_int_equal(kurer_handshake_init_encode(hi, &b), KURER_ELIMIT);
    hi->chain.n = 2;
    hi->chain.certs[0].tbs[0] ^= 0xff; /* no longer a CertificateBody */
    assert_int_not_equal(kurer_handshake_init_encode(hi, &b), 0);
    assert_int_equal(b.len, 0);

    memset(&ha, 0, sizeof(ha));
    ha.protocol_version = 1;
    ha.server_time = 1800000000123;
    ha.queued = 17;
    assert_int_equal(kurer_handshake_accept_encode(&ha, &b), 0);
    assert_int_equal(kurer_handshake_accept_decode(b.data, b.len, &hb), 0);
    assert_int_equal(hb.server_time, ha.server_time);
    assert_int_equal(hb.queued, 17);
    assert_int_equal(hb.has_error, 0);
    kurer_buf_reset(&b);
    ha.has_error = 1;
    ha.error_code = KURER_EREVOKED;
    strcpy(ha.error_message, kurer_strerror(KURER_EREVOKED));
    assert_int_equal(kurer_handshake_accept_encode(&ha, &b), 0);
    assert_int_equal(kurer_handshake_accept_decode(b.data, b.len, &hb), 0);
    assert_int_equal(hb.has_error, 1);
    assert_int_equal(hb.error_code, KURER_EREVOKED);
    assert_string_equal(hb.error_message, ha.error_message);
    kurer_buf_reset(&b);
    ha.error_code = 0;
    assert_int_equal(kurer_handshake_accept_encode(&ha, &b), KURER_EMALFORMED);
    ha.error_code = KURER_EREVOKED;
    ha.protocol_version = 0;
    assert_int_equal(kurer_handshake_accept_encode(&ha, &b), KURER_EVERSION);
    kurer_buf_release(&b);

    /* Version 2 from a hand-written payload. */
    kurer_buf_init(&b, 64);
    pb_varint(&b, 1, 2);
    assert_int_equal(kurer_handshake_accept_decode(b.data, b.len, &hb), KURER_EVERSION);
    assert_int_equal(kurer_handshake_init_decode(b.data, b.len, hj), KURER_EVERSION);
    kurer_buf_release(&b);
    free(hi);
    free(hj);
}

static void test_envelope_standalone(void **state)
{
    uint8_t c[] = {9, 8, 7};
    kurer_envelope e, d;
    kurer_arena mem = {0};
    kurer_buf b;
    (void)state;
    fill_envelope(&e, 5, c, sizeof(c));
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_envelope_encode(&e, &b), 0);
    assert_int_equal(kurer_envelope_decode(b.data, b.len, &d, &mem), 0);
    envelope_equal(&e, &d);
    assert_int_equal(kurer_envelope_decode(b.data, b.len - 1, &d, &mem), KURER_EMALFORMED);
    kurer_arena_release(&mem);
    kurer_arena_release(&mem); /* idempotent */
    e.type = (kurer_envelope_type)4;
    kurer_buf_reset(&b);
    assert_int_equal(kurer_envelope_encode(&e, &b), KURER_EMALFORMED);
    assert_int_equal(b.len, 0);
    kurer_buf_release(&b);
}

/* ---- Negative: client frames -------------------------------------------------------------- */

/* Envelope fields by hand, for what our encoder will not produce. */
typedef struct raw_env {
    size_t id_len;
    const char *user;
    uint64_t device_id;
    uint64_t type;
    size_t content_len;
} raw_env;

static const raw_env RAW_OK = {16, "anna@ministry.example", 1, 2, 10};

static void raw_envelope(kurer_buf *out, const raw_env *r)
{
    static uint8_t zeros[KURER_FRAME_MAX];
    kurer_buf addr;
    kurer_buf_init(&addr, 1024);
    pb_bytes(out, 1, zeros, r->id_len);
    pb_bytes(&addr, 1, r->user, strlen(r->user));
    pb_varint(&addr, 2, r->device_id);
    pb_sub(out, 2, &addr);
    pb_varint(out, 4, r->type);
    pb_bytes(out, 5, zeros, r->content_len);
}

/* ClientFrame{request_id, send{envelopes: n copies of r}} */
static int raw_send_rc(uint64_t request_id, const raw_env *r, size_t n)
{
    kurer_buf frame, send, env;
    kurer_buf_init(&frame, KURER_BUF_HARD_MAX);
    kurer_buf_init(&send, KURER_BUF_HARD_MAX);
    for (size_t i = 0; i < n; i++) {
        kurer_buf_init(&env, KURER_BUF_HARD_MAX);
        raw_envelope(&env, r);
        pb_sub(&send, 1, &env);
    }
    pb_varint(&frame, 1, request_id);
    pb_sub(&frame, 10, &send);
    return client_decode_buf(&frame);
}

static void test_client_negative(void **state)
{
    kurer_client_frame f = {0};
    kurer_envelope e;
    uint8_t c[] = {1};
    raw_env r;
    kurer_buf b;
    (void)state;

    /* The hand writer itself makes valid frames. */
    assert_int_equal(raw_send_rc(1, &RAW_OK, 1), 0);
    assert_int_equal(raw_send_rc(1, &RAW_OK, KURER_SEND_ENVELOPES_MAX), 0);

    /* Missing request id, in bytes and through the encoder. */
    assert_int_equal(raw_send_rc(0, &RAW_OK, 1), KURER_EMALFORMED);
    f.body = KURER_CLIENT_PING;
    assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);

    /* No body; an unknown body (field 18, from a newer peer); a body of the wrong wire type. */
    kurer_buf_init(&b, 64);
    pb_varint(&b, 1, 1);
    assert_int_equal(client_decode_buf(&b), KURER_EMALFORMED);
    kurer_buf_init(&b, 64);
    pb_varint(&b, 1, 1);
    pb_bytes(&b, 18, "", 0);
    assert_int_equal(client_decode_buf(&b), KURER_EMALFORMED);
    kurer_buf_init(&b, 64);
    pb_varint(&b, 1, 1);
    pb_varint(&b, 15, 1);
    assert_int_equal(client_decode_buf(&b), KURER_EMALFORMED);
    f.request_id = 1;
    f.body = KURER_CLIENT_NONE;
    assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);
    f.body = (kurer_client_body)99;
    assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);

    /* Unknown fields beside a known body are ignored (the versioning rule). */
    kurer_buf_init(&b, 64);
    pb_varint(&b, 1, 1);
    pb_varint(&b, 99, 12345);
    pb_bytes(&b, 15, "", 0);
    assert_int_equal(client_decode_buf(&b), 0);

    /* Envelope ids of 15 and 17 bytes, and none. */
    r = RAW_OK;
    r.id_len = 15;
    assert_int_equal(raw_send_rc(1, &r, 1), KURER_EMALFORMED);
    r.id_len = 17;
    assert_int_equal(raw_send_rc(1, &r, 1), KURER_EMALFORMED);
    r.id_len = 0;
    assert_int_equal(raw_send_rc(1, &r, 1), KURER_EMALFORMED);

    /* Bad addresses. */
    {
        static const char *bad[] = {
            "",
            "anna",
            "@ministry.example",
            "anna@",
            "Anna@ministry.example",
            "anna@@ministry.example",
            "an na@ministry.example",
            "anna@-ministry.example",
            "anna@ministry.example.",
            "anna@ministry.example\x01",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            r = RAW_OK;
            r.user = bad[i];
            assert_int_equal(raw_send_rc(1, &r, 1), KURER_EMALFORMED);
        }
    }
    r = RAW_OK;
    r.device_id = 0;
    assert_int_equal(raw_send_rc(1, &r, 1), KURER_EMALFORMED);
    r.device_id = (uint64_t)KURER_DEVICE_ID_MAX + 1;
    assert_int_equal(raw_send_rc(1, &r, 1), KURER_EMALFORMED);
    r.device_id = KURER_DEVICE_ID_MAX;
    assert_int_equal(raw_send_rc(1, &r, 1), 0);

    /* Envelope type out of range, content empty or too long. */
    r = RAW_OK;
    r.type = 0;
    assert_int_equal(raw_send_rc(1, &r, 1), KURER_EMALFORMED);
    r.type = 4;
    assert_int_equal(raw_send_rc(1, &r, 1), KURER_EMALFORMED);
    r.type = UINT32_MAX;
    assert_int_equal(raw_send_rc(1, &r, 1), KURER_EMALFORMED);
    r = RAW_OK;
    r.content_len = 0;
    assert_int_equal(raw_send_rc(1, &r, 1), KURER_EMALFORMED);
    r.content_len = KURER_ENVELOPE_CONTENT_MAX;
    assert_int_equal(raw_send_rc(1, &r, 1), 0);
    r.content_len = KURER_ENVELOPE_CONTENT_MAX + 1;
    assert_int_equal(raw_send_rc(1, &r, 1), KURER_ELIMIT);

    /* Envelope counts: none, and one too many. */
    assert_int_equal(raw_send_rc(1, &RAW_OK, 0), KURER_EMALFORMED);
    assert_int_equal(raw_send_rc(1, &RAW_OK, KURER_SEND_ENVELOPES_MAX + 1), KURER_ELIMIT);
    {
        kurer_envelope *many = calloc(KURER_SEND_ENVELOPES_MAX + 1, sizeof(*many));
        assert_non_null(many);
        for (size_t i = 0; i <= KURER_SEND_ENVELOPES_MAX; i++)
            fill_envelope(&many[i], 1, c, 1);
        memset(&f, 0, sizeof(f));
        f.request_id = 1;
        f.body = KURER_CLIENT_SEND;
        f.u.send.envelopes = many;
        f.u.send.n = KURER_SEND_ENVELOPES_MAX + 1;
        assert_int_equal(client_encode_rc(&f), KURER_ELIMIT);
        f.u.send.n = 0;
        assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);
        /* Two large envelopes do not fit one frame. */
        many[0].content = many[1].content = calloc(1, 40000);
        many[0].content_len = many[1].content_len = 40000;
        f.u.send.n = 2;
        assert_int_equal(client_encode_rc(&f), KURER_ELIMIT);
        free((void *)many[0].content);
        free(many);
    }

    /* The encoder validates envelopes like the decoder. */
    fill_envelope(&e, 1, c, 1);
    e.to.device_id = 0;
    memset(&f, 0, sizeof(f));
    f.request_id = 1;
    f.body = KURER_CLIENT_SEND;
    f.u.send.envelopes = &e;
    f.u.send.n = 1;
    assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);
    fill_envelope(&e, 1, c, 1);
    strcpy(e.to.user, "no-at-sign");
    assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);
    fill_envelope(&e, 1, c, 1);
    memset(e.to.user, 'a', sizeof(e.to.user)); /* not terminated */
    assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);
    fill_envelope(&e, 1, c, 1);
    e.content_len = 0;
    assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);

    /* Other limits. */
    {
        static uint64_t seqs[KURER_ACK_SEQS_MAX + 1];
        static kurer_one_time_prekey otk[KURER_ONE_TIME_PREKEYS_MAX + 1];
        static const char *users[KURER_LOOKUP_USERS_MAX + 1];
        static uint32_t ids[KURER_USER_DEVICES_MAX + 1];
        for (size_t i = 0; i <= KURER_LOOKUP_USERS_MAX; i++)
            users[i] = "a@b";
        for (size_t i = 0; i <= KURER_ONE_TIME_PREKEYS_MAX; i++)
            otk[i].public_key[0] = 0x05;
        for (size_t i = 0; i <= KURER_USER_DEVICES_MAX; i++)
            ids[i] = 1;
        memset(&f, 0, sizeof(f));
        f.request_id = 1;
        f.body = KURER_CLIENT_ACK;
        f.u.ack.seqs = seqs;
        f.u.ack.n = KURER_ACK_SEQS_MAX + 1;
        assert_int_equal(client_encode_rc(&f), KURER_ELIMIT);
        f.u.ack.n = 0;
        assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);
        f.body = KURER_CLIENT_LOOKUP;
        f.u.lookup.users = users;
        f.u.lookup.n = KURER_LOOKUP_USERS_MAX + 1;
        assert_int_equal(client_encode_rc(&f), KURER_ELIMIT);
        f.u.lookup.n = KURER_LOOKUP_USERS_MAX;
        users[3] = "nobody";
        assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);
        memset(&f.u, 0, sizeof(f.u));
        f.body = KURER_CLIENT_PREKEYS;
        f.u.prekeys.registration_id = 1;
        f.u.prekeys.signed_prekey.public_key[0] = 0x05;
        f.u.prekeys.one_time = otk;
        f.u.prekeys.n_one_time = KURER_ONE_TIME_PREKEYS_MAX + 1;
        assert_int_equal(client_encode_rc(&f), KURER_ELIMIT);
        f.u.prekeys.n_one_time = KURER_ONE_TIME_PREKEYS_MAX;
        f.u.prekeys.registration_id = 0;
        assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);
        f.u.prekeys.registration_id = 1;
        f.u.prekeys.signed_prekey.public_key[0] = 0x00;
        assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);
        memset(&f.u, 0, sizeof(f.u));
        f.body = KURER_CLIENT_FETCH_PREKEYS;
        strcpy(f.u.fetch_prekeys.user, "a@b");
        f.u.fetch_prekeys.device_ids = ids;
        f.u.fetch_prekeys.n_device_ids = KURER_USER_DEVICES_MAX + 1;
        assert_int_equal(client_encode_rc(&f), KURER_ELIMIT);
        f.u.fetch_prekeys.n_device_ids = 1;
        ids[0] = 0;
        assert_int_equal(client_encode_rc(&f), KURER_EMALFORMED);
    }
}

/* ---- Negative: server frames -------------------------------------------------------------- */

static void test_server_negative(void **state)
{
    kurer_server_frame f = {0};
    kurer_buf b, sub;
    (void)state;

    /* Pushes carry no request id; answers must carry one. */
    f.request_id = 3;
    f.body = KURER_SERVER_QUEUE_EMPTY;
    assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
    f.body = KURER_SERVER_PREKEYS_LOW;
    assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
    f.request_id = 0;
    f.body = KURER_SERVER_OK;
    assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
    f.body = KURER_SERVER_PONG;
    assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);

    /* Errors: the code must be negative; the message is bounded. */
    f.request_id = 1;
    f.body = KURER_SERVER_ERROR;
    f.u.error.code = 0;
    assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
    f.u.error.code = 5;
    assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
    {
        char longmsg[KURER_ERROR_MESSAGE_MAX + 2];
        memset(longmsg, 'x', sizeof(longmsg) - 1);
        longmsg[sizeof(longmsg) - 1] = '\0';
        f.u.error.code = KURER_EINVAL;
        f.u.error.message = longmsg;
        assert_int_equal(server_encode_rc(&f), KURER_ELIMIT);
        kurer_buf_init(&b, 1024);
        kurer_buf_init(&sub, 1024);
        pb_varint(&sub, 1, (uint64_t)(2 * 5 - 1)); /* zigzag(-5) = 9 */
        pb_bytes(&sub, 2, longmsg, strlen(longmsg));
        pb_varint(&b, 1, 1);
        pb_sub(&b, 9, &sub);
        assert_int_equal(server_decode_buf(&b), KURER_ELIMIT);
    }
    /* A code newer than this build is kept as it is. */
    kurer_buf_init(&b, 64);
    kurer_buf_init(&sub, 64);
    pb_varint(&sub, 1, 2 * 1000 - 1); /* -1000 */
    pb_varint(&b, 1, 1);
    pb_sub(&b, 9, &sub);
    {
        kurer_server_frame g;
        assert_int_equal(kurer_server_frame_decode(b.data, b.len, &g), 0);
        assert_int_equal(g.u.error.code, -1000);
        assert_false(kurer_err_known(g.u.error.code));
        kurer_server_frame_release(&g);
        kurer_buf_release(&b);
    }

    /* Deliver without from, and with a 15-byte id. */
    {
        raw_env r = RAW_OK;
        kurer_buf env, addr;
        kurer_buf_init(&env, 1024);
        raw_envelope(&env, &r);
        kurer_buf_init(&sub, 1024);
        pb_varint(&sub, 1, 1);
        pb_sub(&sub, 2, &env);
        kurer_buf_init(&b, 1024);
        pb_sub(&b, 12, &sub);
        assert_int_equal(server_decode_buf(&b), KURER_EMALFORMED);

        kurer_buf_init(&env, 1024);
        raw_envelope(&env, &r);
        kurer_buf_init(&addr, 64);
        pb_bytes(&addr, 1, "bo@x", 4);
        pb_varint(&addr, 2, 1);
        pb_sub(&env, 3, &addr);
        kurer_buf_init(&sub, 1024);
        pb_varint(&sub, 1, 1);
        pb_sub(&sub, 2, &env);
        kurer_buf_init(&b, 1024);
        pb_sub(&b, 12, &sub);
        assert_int_equal(server_decode_buf(&b), 0); /* with from: fine */

        r.id_len = 15;
        kurer_buf_init(&env, 1024);
        raw_envelope(&env, &r);
        kurer_buf_init(&addr, 64);
        pb_bytes(&addr, 1, "bo@x", 4);
        pb_varint(&addr, 2, 1);
        pb_sub(&env, 3, &addr);
        kurer_buf_init(&sub, 1024);
        pb_sub(&sub, 2, &env);
        kurer_buf_init(&b, 1024);
        pb_sub(&b, 12, &sub);
        assert_int_equal(server_decode_buf(&b), KURER_EMALFORMED);
    }
    memset(&f, 0, sizeof(f));
    f.body = KURER_SERVER_DELIVER;
    {
        uint8_t c = 1;
        fill_envelope(&f.u.deliver.envelope, 1, &c, 1);
        assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED); /* no from */
    }

    /* Send status out of range; current with a status other than STALE_DEVICES. */
    {
        kurer_user_result res = {0};
        memset(&f, 0, sizeof(f));
        f.request_id = 1;
        f.body = KURER_SERVER_SEND_RESULT;
        f.u.send_result.users = &res;
        f.u.send_result.n = 1;
        res.user = "a@b";
        res.status = (kurer_send_status)0;
        assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
        res.status = (kurer_send_status)4;
        assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
        res.status = KURER_SEND_ACCEPTED;
        res.user = "a";
        assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
        f.u.send_result.n = KURER_SEND_RESULT_USERS_MAX + 1;
        assert_int_equal(server_encode_rc(&f), KURER_ELIMIT);

        kurer_buf_init(&b, 256);
        kurer_buf_init(&sub, 256);
        {
            kurer_buf ur, ud;
            kurer_buf_init(&ur, 256);
            kurer_buf_init(&ud, 256);
            pb_bytes(&ud, 1, "a@b", 3);
            pb_bytes(&ur, 1, "a@b", 3);
            pb_varint(&ur, 2, 1);
            pb_sub(&ur, 3, &ud);
            pb_sub(&sub, 1, &ur);
        }
        pb_varint(&b, 1, 1);
        pb_sub(&b, 11, &sub);
        assert_int_equal(server_decode_buf(&b), KURER_EMALFORMED);
    }

    /* Directory limits: users and devices per user. */
    {
        kurer_user_devices *ud = calloc(KURER_LOOKUP_USERS_MAX + 1, sizeof(*ud));
        kurer_chain *chains = calloc(KURER_USER_DEVICES_MAX + 1, sizeof(*chains));
        assert_non_null(ud);
        assert_non_null(chains);
        for (size_t i = 0; i <= KURER_LOOKUP_USERS_MAX; i++)
            ud[i].user = "a@b";
        memset(&f, 0, sizeof(f));
        f.request_id = 1;
        f.body = KURER_SERVER_DIRECTORY;
        f.u.directory.users = ud;
        f.u.directory.n = KURER_LOOKUP_USERS_MAX + 1;
        assert_int_equal(server_encode_rc(&f), KURER_ELIMIT);
        f.u.directory.n = 1;
        ud[0].devices = chains;
        ud[0].n_devices = KURER_USER_DEVICES_MAX + 1;
        assert_int_equal(server_encode_rc(&f), KURER_ELIMIT);
        ud[0].n_devices = 1; /* an empty chain */
        assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
        /* Over the limit in bytes: 33 chains with one minimal certificate each. */
        kurer_buf_init(&b, KURER_FRAME_MAX);
        kurer_buf_init(&sub, KURER_FRAME_MAX);
        {
            kurer_buf udb;
            kurer_buf_init(&udb, KURER_FRAME_MAX);
            pb_bytes(&udb, 1, "a@b", 3);
            for (size_t i = 0; i <= KURER_USER_DEVICES_MAX; i++)
                pb_bytes(&udb, 2, "", 0);
            pb_sub(&sub, 1, &udb);
        }
        pb_varint(&b, 1, 1);
        pb_sub(&b, 13, &sub);
        assert_int_equal(server_decode_buf(&b), KURER_ELIMIT);
        free(ud);
        free(chains);
    }

    /* Revocation index: too many entries, a size out of range, a key id named twice or out
     * of order; a chunk pushed (chunks answer requests). */
    {
        static kurer_revocation_info infos[KURER_REVOCATION_INDEX_MAX + 1];
        memset(infos, 0, sizeof(infos));
        for (size_t i = 0; i < KURER_REVOCATION_INDEX_MAX + 1; i++) {
            infos[i].issuer_key_id[0] = (uint8_t)(i >> 8);
            infos[i].issuer_key_id[1] = (uint8_t)i;
            infos[i].size = 1;
        }
        memset(&f, 0, sizeof(f));
        f.body = KURER_SERVER_REVOCATION_INDEX;
        f.u.revocation_index.lists = infos;
        f.u.revocation_index.n = KURER_REVOCATION_INDEX_MAX + 1;
        assert_int_equal(server_encode_rc(&f), KURER_ELIMIT);
        f.u.revocation_index.n = 2;
        infos[1].size = KURER_CRL_BYTES_MAX + 1;
        assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
        infos[1].size = 0;
        assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
        infos[1].size = 1;
        memcpy(infos[1].issuer_key_id, infos[0].issuer_key_id, KURER_KEY_ID_LEN);
        assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);
        infos[0].issuer_key_id[31] = 1; /* now above the second */
        assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED);

        static const uint8_t one = 1;
        memset(&f, 0, sizeof(f));
        f.body = KURER_SERVER_REVOCATION_CHUNK;
        f.u.revocation_chunk.total = 1;
        f.u.revocation_chunk.data = &one;
        f.u.revocation_chunk.len = 1;
        assert_int_equal(server_encode_rc(&f), KURER_EMALFORMED); /* request_id 0 */
        f.request_id = 1;
        kurer_buf ok;
        kurer_buf_init(&ok, KURER_FRAME_MAX);
        assert_int_equal(kurer_server_frame_encode(&f, &ok), 0);
        kurer_buf_release(&ok);
    }
}

/* ---- Size limits, garbage ----------------------------------------------------------------- */

/* Bytes that protobuf-c would read differently than they were sent: a string with an embedded
 * NUL (cut at the NUL), and a field sent twice (the last one wins). Both are refused. */
static void test_not_exact(void **state)
{
    (void)state;
    kurer_client_frame f;
    /* request_id 1; lookup { users: "anna@fm.dk\0x" } */
    const uint8_t nul[] = {0x08, 0x01, 0x62, 0x0e, 0x0a, 0x0c, 'a', 'n',  'n',
                           'a',  '@',  'f',  'm',  '.',  'd',  'k', 0x00, 'x'};
    assert_int_equal(kurer_client_frame_decode(nul, sizeof(nul), &f), KURER_EMALFORMED);
    /* The same without the NUL and x decodes. */
    const uint8_t ok[] = {0x08, 0x01, 0x62, 0x0c, 0x0a, 0x0a, 'a', 'n',
                          'n',  'a',  '@',  'f',  'm',  '.',  'd', 'k'};
    assert_int_equal(kurer_client_frame_decode(ok, sizeof(ok), &f), 0);
    assert_string_equal(f.u.lookup.users[0], "anna@fm.dk");
    kurer_client_frame_release(&f);
    /* request_id sent twice. */
    const uint8_t twice[] = {0x08, 0x01, 0x08, 0x02, 0x62, 0x0c, 0x0a, 0x0a, 'a',
                             'n',  'n',  'a',  '@',  'f',  'm',  '.',  'd',  'k'};
    assert_int_equal(kurer_client_frame_decode(twice, sizeof(twice), &f), KURER_EMALFORMED);
}

static void test_oversize_and_garbage(void **state)
{
    uint8_t *big = calloc(1, KURER_FRAME_MAX + 1);
    kurer_client_frame cf;
    kurer_server_frame sf;
    kurer_handshake_init *hi = malloc(sizeof(*hi));
    kurer_handshake_accept ha;
    kurer_envelope e;
    kurer_arena mem = {0};
    uint32_t x = 0x12345678;
    (void)state;
    assert_non_null(big);
    assert_non_null(hi);
    /* Over the limit is refused before unpacking (these bytes would unpack fine: all zeros is a
     * run of field-0 tags, which protobuf-c refuses; 0x08 0x01 pairs would not be). */
    for (size_t i = 0; i + 1 < KURER_FRAME_MAX + 1; i += 2) {
        big[i] = 0x08;
        big[i + 1] = 0x01;
    }
    assert_int_equal(kurer_client_frame_decode(big, KURER_FRAME_MAX + 1, &cf), KURER_ELIMIT);
    assert_int_equal(kurer_server_frame_decode(big, KURER_FRAME_MAX + 1, &sf), KURER_ELIMIT);
    assert_int_equal(kurer_handshake_init_decode(big, KURER_FRAME_MAX + 1, hi), KURER_ELIMIT);
    assert_int_equal(kurer_handshake_accept_decode(big, KURER_FRAME_MAX + 1, &ha), KURER_ELIMIT);
    assert_int_equal(kurer_envelope_decode(big, KURER_FRAME_MAX + 1, &e, &mem), KURER_ELIMIT);
    assert_int_equal(kurer_client_frame_decode(big, SIZE_MAX, &cf), KURER_ELIMIT);
    /* The same bytes at the limit: a frame with no body. */
    assert_int_equal(kurer_client_frame_decode(big, KURER_FRAME_MAX - 1, &cf), KURER_EMALFORMED);

    /* Garbage: fixed patterns must fail; random bytes must not crash or leak. */
    memset(big, 0xff, 4096);
    assert_int_equal(kurer_client_frame_decode(big, 4096, &cf), KURER_EMALFORMED);
    assert_int_equal(kurer_server_frame_decode(big, 4096, &sf), KURER_EMALFORMED);
    assert_int_equal(kurer_handshake_init_decode(big, 4096, hi), KURER_EMALFORMED);
    assert_int_equal(kurer_client_frame_decode(big, 0, &cf), KURER_EMALFORMED);
    assert_int_equal(kurer_server_frame_decode(big, 0, &sf), KURER_EMALFORMED);
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round * 7) % 300;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            big[i] = (uint8_t)x;
        }
        if (kurer_client_frame_decode(big, n, &cf) == 0)
            kurer_client_frame_release(&cf);
        if (kurer_server_frame_decode(big, n, &sf) == 0)
            kurer_server_frame_release(&sf);
        /* Any result will do; only crashes and leaks count. */
        int rc = kurer_handshake_init_decode(big, n, hi);
        rc |= kurer_handshake_accept_decode(big, n, &ha);
        rc |= kurer_envelope_decode(big, n, &e, &mem);
        (void)rc;
    }
    kurer_arena_release(&mem);
    /* NULL-safety of release. */
    kurer_client_frame_release(NULL);
    kurer_server_frame_release(NULL);
    kurer_arena_release(NULL);
    free(hi);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_send),
        cmocka_unit_test(test_client_ack_lookup_ping),
        cmocka_unit_test(test_client_prekeys),
        cmocka_unit_test(test_client_revocation),
        cmocka_unit_test(test_client_revocation_chunk),
        cmocka_unit_test(test_server_simple),
        cmocka_unit_test(test_server_deliver),
        cmocka_unit_test(test_server_directory_results),
        cmocka_unit_test(test_server_bundles),
        cmocka_unit_test(test_server_revocations),
        cmocka_unit_test(test_handshakes),
        cmocka_unit_test(test_envelope_standalone),
        cmocka_unit_test(test_client_negative),
        cmocka_unit_test(test_server_negative),
        cmocka_unit_test(test_oversize_and_garbage),
        cmocka_unit_test(test_not_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
