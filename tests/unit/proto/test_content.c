/* kurer/content.h: Content round trips, classification, limits, padding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kurer/content.h"

#include "fixtures.h"

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

/* Encode, decode into *d, every strict prefix refused, and the padded form round trips. */
static void content_rt(const kurer_content *c, kurer_content *d, const char *seed)
{
    kurer_buf b, p;
    kurer_content e;
    kurer_buf_init(&b, KURER_CONTENT_MAX);
    kurer_buf_init(&p, KURER_CONTENT_PADDED_MAX);
    assert_int_equal(kurer_content_encode(c, &b), 0);
    assert_int_equal(kurer_content_decode(b.data, b.len, d), 0);
    assert_int_equal(d->body, c->body);
    for (size_t i = 0; i < b.len; i++) {
        assert_int_not_equal(kurer_content_decode(b.data, i, &e), 0);
        assert_int_equal(e.body, KURER_CONTENT_NONE);
    }
    assert_int_equal(kurer_content_encode_padded(c, &p), 0);
    assert_int_equal(p.len % KURER_PAD_BLOCK, 0);
    assert_true(p.len > b.len && p.len <= b.len + KURER_PAD_BLOCK);
    assert_memory_equal(p.data, b.data, b.len);
    assert_int_equal(kurer_content_decode_padded(p.data, p.len, &e), 0);
    assert_int_equal(e.body, c->body);
    kurer_content_release(&e);
    seed_write(seed, &b);
    kurer_buf_release(&b);
    kurer_buf_release(&p);
}

static int encode_rc(const kurer_content *c)
{
    kurer_buf b;
    int rc;
    kurer_buf_init(&b, KURER_CONTENT_PADDED_MAX);
    rc = kurer_content_encode(c, &b);
    if (rc != 0) /* nothing written on failure */
        assert_int_equal(b.len, 0);
    kurer_buf_reset(&b);
    assert_int_equal(kurer_content_encode_padded(c, &b), rc);
    if (rc != 0)
        assert_int_equal(b.len, 0);
    kurer_buf_release(&b);
    return rc;
}

static int decode_buf(kurer_buf *b)
{
    kurer_content c;
    int rc = kurer_content_decode(b->data, b->len, &c);
    kurer_content_release(&c);
    kurer_buf_release(b);
    return rc;
}

static void data_fill(kurer_data_message *d, kurer_attachment *att, size_t n_att)
{
    memset(d, 0, sizeof(*d));
    d->body = "Mødet er flyttet til kl. 14.";
    d->classification = KURER_LEVEL_RESTRICTED;
    d->timestamp = 1800000000123;
    for (size_t i = 0; i < n_att; i++) {
        memset(&att[i], 0, sizeof(att[i]));
        memset(att[i].blob_id, (int)i + 1, KURER_BLOB_ID_LEN);
        memset(att[i].key, 0xaa, KURER_ATTACHMENT_KEY_LEN);
        memset(att[i].digest, 0xbb, KURER_ATTACHMENT_DIGEST_LEN);
        att[i].size = 1000 + i;
        att[i].content_type = "application/pdf";
        att[i].file_name = "referat.pdf";
    }
    d->attachments = att;
    d->n_attachments = n_att;
}

static void test_data_roundtrip(void **state)
{
    kurer_attachment att[KURER_ATTACHMENTS_MAX + 1];
    kurer_content c = {0}, d;
    (void)state;
    c.body = KURER_CONTENT_DATA;
    data_fill(&c.u.data, att, 2);
    c.u.data.has_group = 1;
    memset(c.u.data.group.group_id, 0x42, KURER_GROUP_ID_LEN);
    c.u.data.group.revision = 7;
    c.u.data.expire_timer = 3600;
    c.u.data.has_quote = 1;
    memset(c.u.data.quote.envelope_id, 0x10, KURER_ENVELOPE_ID_LEN);
    strcpy(c.u.data.quote.author.user, "bo@agency.example");
    c.u.data.quote.author.device_id = 2;
    c.u.data.quote.text = "Hvornår?";
    content_rt(&c, &d, "content_data");
    assert_string_equal(d.u.data.body, c.u.data.body);
    assert_int_equal(d.u.data.classification, KURER_LEVEL_RESTRICTED);
    assert_int_equal(d.u.data.timestamp, c.u.data.timestamp);
    assert_int_equal(d.u.data.n_attachments, 2);
    assert_memory_equal(d.u.data.attachments[1].blob_id, att[1].blob_id, KURER_BLOB_ID_LEN);
    assert_memory_equal(d.u.data.attachments[1].key, att[1].key, KURER_ATTACHMENT_KEY_LEN);
    assert_int_equal(d.u.data.attachments[1].size, 1001);
    assert_string_equal(d.u.data.attachments[0].file_name, "referat.pdf");
    assert_int_equal(d.u.data.has_group, 1);
    assert_int_equal(d.u.data.group.revision, 7);
    assert_int_equal(d.u.data.expire_timer, 3600);
    assert_int_equal(d.u.data.has_quote, 1);
    assert_string_equal(d.u.data.quote.author.user, "bo@agency.example");
    assert_string_equal(d.u.data.quote.text, "Hvornår?");
    kurer_content_release(&d);
    assert_null(d.mem.head);
    kurer_content_release(&d);

    /* Minimal: no body text, no extras; every accredited level. */
    memset(&c, 0, sizeof(c));
    c.body = KURER_CONTENT_DATA;
    for (int level = 1; level <= 3; level++) {
        c.u.data.classification = (kurer_level)level;
        content_rt(&c, &d, "content_data_min");
        assert_string_equal(d.u.data.body, "");
        assert_int_equal(d.u.data.classification, level);
        assert_int_equal(d.u.data.n_attachments, 0);
        assert_int_equal(d.u.data.has_group, 0);
        kurer_content_release(&d);
    }

    /* Limits. */
    c.body = KURER_CONTENT_DATA;
    data_fill(&c.u.data, att, KURER_ATTACHMENTS_MAX + 1);
    assert_int_equal(encode_rc(&c), KURER_ELIMIT);
    data_fill(&c.u.data, att, 1);
    {
        char name[KURER_FILE_NAME_MAX + 2];
        memset(name, 'n', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        att[0].file_name = name;
        assert_int_equal(encode_rc(&c), KURER_ELIMIT);
        name[KURER_FILE_NAME_MAX] = '\0';
        assert_int_equal(encode_rc(&c), 0);
    }
    {
        char *body = malloc(KURER_CONTENT_MAX + 1);
        assert_non_null(body);
        memset(body, 'x', KURER_CONTENT_MAX);
        body[KURER_CONTENT_MAX] = '\0';
        data_fill(&c.u.data, att, 0);
        c.u.data.body = body;
        assert_int_equal(encode_rc(&c), KURER_ELIMIT);
        /* The largest body that fits, padded, still fits one envelope. */
        body[KURER_CONTENT_MAX - 32] = '\0';
        {
            kurer_buf p;
            kurer_buf_init(&p, KURER_CONTENT_PADDED_MAX);
            assert_int_equal(kurer_content_encode_padded(&c, &p), 0);
            assert_true(p.len <= KURER_CONTENT_PADDED_MAX);
            assert_true(p.len + KURER_SIGNAL_OVERHEAD_MAX <= KURER_ENVELOPE_CONTENT_MAX);
            kurer_buf_release(&p);
        }
        free(body);
    }
}

static void test_classification(void **state)
{
    kurer_content c = {0};
    kurer_buf b, m;
    (void)state;
    c.body = KURER_CONTENT_DATA;
    c.u.data.classification = (kurer_level)4;
    assert_int_equal(encode_rc(&c), KURER_ECLEARANCE);
    c.u.data.classification = (kurer_level)5;
    assert_int_equal(encode_rc(&c), KURER_ECLEARANCE);
    c.u.data.classification = (kurer_level)0;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.data.classification = (kurer_level)6;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);

    /* From bytes: Content{data{body, classification}}; level absent, 1, 4, 5, 6, -1. */
    {
        static const struct {
            int64_t level;
            int want;
        } cases[] = {{-2, KURER_EMALFORMED},
                     {0, KURER_EMALFORMED},
                     {1, 0},
                     {3, 0},
                     {4, KURER_ECLEARANCE},
                     {5, KURER_ECLEARANCE},
                     {6, KURER_EMALFORMED},
                     {1000, KURER_EMALFORMED}};
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            kurer_buf_init(&b, 256);
            kurer_buf_init(&m, 256);
            pb_bytes(&m, 1, "hej", 3);
            if (cases[i].level != 0)
                pb_varint(&m, 2, (uint64_t)cases[i].level);
            pb_sub(&b, 1, &m);
            assert_int_equal(decode_buf(&b), cases[i].want);
        }
    }

    /* Inside a SyncMessage too. */
    memset(&c, 0, sizeof(c));
    c.body = KURER_CONTENT_SYNC;
    strcpy(c.u.sync.destination, "anna@ministry.example");
    c.u.sync.message.classification = (kurer_level)4;
    assert_int_equal(encode_rc(&c), KURER_ECLEARANCE);
}

static void test_other_bodies(void **state)
{
    uint64_t ts[] = {1, 2, 3};
    uint8_t dist[100];
    kurer_content c = {0}, d;
    (void)state;

    c.body = KURER_CONTENT_RECEIPT;
    c.u.receipt.type = KURER_RECEIPT_READ;
    c.u.receipt.timestamps = ts;
    c.u.receipt.n_timestamps = 3;
    content_rt(&c, &d, "content_receipt");
    assert_int_equal(d.u.receipt.type, KURER_RECEIPT_READ);
    assert_int_equal(d.u.receipt.n_timestamps, 3);
    assert_memory_equal(d.u.receipt.timestamps, ts, sizeof(ts));
    assert_int_equal(d.u.receipt.has_group, 0);
    kurer_content_release(&d);
    /* A group's receipt names the group. */
    c.u.receipt.has_group = 1;
    memset(c.u.receipt.group_id, 0x5a, KURER_GROUP_ID_LEN);
    content_rt(&c, &d, "content_receipt_group");
    assert_int_equal(d.u.receipt.has_group, 1);
    assert_memory_equal(d.u.receipt.group_id, c.u.receipt.group_id, KURER_GROUP_ID_LEN);
    kurer_content_release(&d);
    c.u.receipt.has_group = 0;
    c.u.receipt.n_timestamps = 0;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.receipt.n_timestamps = KURER_RECEIPT_TIMESTAMPS_MAX + 1;
    assert_int_equal(encode_rc(&c), KURER_ELIMIT);
    c.u.receipt.n_timestamps = 1;
    c.u.receipt.type = (kurer_receipt_type)3;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);

    memset(&c, 0, sizeof(c));
    c.body = KURER_CONTENT_SYNC;
    strcpy(c.u.sync.destination, "anna@ministry.example");
    c.u.sync.timestamp = 5;
    c.u.sync.message.body = "kopi";
    c.u.sync.message.classification = KURER_LEVEL_CONFIDENTIAL;
    content_rt(&c, &d, "content_sync");
    assert_string_equal(d.u.sync.destination, "anna@ministry.example");
    assert_string_equal(d.u.sync.message.body, "kopi");
    assert_int_equal(d.u.sync.message.classification, KURER_LEVEL_CONFIDENTIAL);
    kurer_content_release(&d);
    strcpy(c.u.sync.destination, "anna");
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);

    memset(&c, 0, sizeof(c));
    memset(dist, 0x33, sizeof(dist));
    c.body = KURER_CONTENT_SENDER_KEY;
    memset(c.u.sender_key.group_id, 0x42, KURER_GROUP_ID_LEN);
    c.u.sender_key.distribution = dist;
    c.u.sender_key.distribution_len = sizeof(dist);
    content_rt(&c, &d, "content_sender_key");
    assert_int_equal(d.u.sender_key.distribution_len, sizeof(dist));
    assert_memory_equal(d.u.sender_key.distribution, dist, sizeof(dist));
    kurer_content_release(&d);
    c.u.sender_key.distribution_len = 0;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.sender_key.distribution_len = KURER_SENDER_KEY_DIST_MAX + 1;
    assert_int_equal(encode_rc(&c), KURER_ELIMIT);

    memset(&c, 0, sizeof(c));
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED); /* no body */
}

/* CallMessage (call signalling version 1, docs/protocol.md 4.5): what each kind must carry. */
static void test_call_bodies(void **state)
{
    uint8_t ticket[] = {1, 2, 3, 4};
    kurer_content c = {0}, d;
    (void)state;

    c.body = KURER_CONTENT_CALL;
    c.u.call.call_id = 99;
    c.u.call.kind = KURER_CALL_OFFER;
    c.u.call.has_sframe_key = 1;
    memset(c.u.call.sframe_key, 0x3c, KURER_SFRAME_KEY_LEN);
    c.u.call.media_ticket = ticket;
    c.u.call.media_ticket_len = sizeof(ticket);
    c.u.call.version = KURER_CALL_VERSION;
    c.u.call.timestamp = 1234;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED); /* an offer names the media port */
    c.u.call.media_port = 3479;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED); /* an offer needs its level */
    c.u.call.level = (kurer_level)4;
    assert_int_equal(encode_rc(&c), KURER_ECLEARANCE);
    c.u.call.level = KURER_LEVEL_RESTRICTED;
    c.u.call.reason = KURER_CALL_REASON_NORMAL; /* only a hangup says why */
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.call.reason = KURER_CALL_REASON_NONE;
    content_rt(&c, &d, "content_call_offer");
    assert_int_equal(d.u.call.call_id, 99);
    assert_int_equal(d.u.call.level, KURER_LEVEL_RESTRICTED);
    assert_int_equal(d.u.call.version, KURER_CALL_VERSION);
    assert_int_equal(d.u.call.timestamp, 1234);
    assert_int_equal(d.u.call.has_sframe_key, 1);
    assert_memory_equal(d.u.call.sframe_key, c.u.call.sframe_key, KURER_SFRAME_KEY_LEN);
    assert_int_equal(d.u.call.media_ticket_len, sizeof(ticket));
    kurer_content_release(&d);
    c.u.call.has_sframe_key = 0; /* an offer needs its key */
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.call.kind = KURER_CALL_HANGUP;
    c.u.call.level = 0;
    c.u.call.reason = KURER_CALL_REASON_NORMAL;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED); /* a hangup has no ticket, no port */
    c.u.call.media_ticket_len = 0;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.call.media_port = 0;
    c.u.call.reason = KURER_CALL_REASON_NONE;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED); /* a hangup says why */
    c.u.call.reason = KURER_CALL_REASON_ANSWERED_ELSEWHERE;
    c.u.call.answered_device = 3;
    content_rt(&c, &d, "content_call_hangup");
    assert_int_equal(d.u.call.has_sframe_key, 0);
    assert_int_equal(d.u.call.reason, KURER_CALL_REASON_ANSWERED_ELSEWHERE);
    assert_int_equal(d.u.call.answered_device, 3);
    kurer_content_release(&d);
    c.u.call.reason = (kurer_call_reason)9;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.call.reason = KURER_CALL_REASON_NORMAL;
    c.u.call.level = KURER_LEVEL_RESTRICTED; /* a hangup has no level */
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.call.level = 0;
    c.u.call.kind = KURER_CALL_BUSY; /* a busy has no reason */
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.call.kind = KURER_CALL_HANGUP;
    c.u.call.has_sframe_key = 1; /* a hangup carries none */
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.call.kind = (kurer_call_kind)5;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.call.kind = KURER_CALL_OFFER;
    c.u.call.reason = KURER_CALL_REASON_NONE;
    c.u.call.level = KURER_LEVEL_RESTRICTED;
    c.u.call.media_port = 3479;
    c.u.call.media_ticket = ticket;
    c.u.call.media_ticket_len = KURER_MEDIA_TICKET_MAX + 1;
    assert_int_equal(encode_rc(&c), KURER_ELIMIT);
}

static void test_content_malformed(void **state)
{
    kurer_buf b, m, s;
    kurer_content c;
    uint8_t garbage[512];
    uint32_t x = 99;
    (void)state;
    memset(garbage, 0, sizeof(garbage));
    /* Empty input, unknown body, wrong sizes. */
    assert_int_equal(kurer_content_decode(garbage, 0, &c), KURER_EMALFORMED);
    kurer_buf_init(&b, 64);
    pb_bytes(&b, 6, "", 0);
    assert_int_equal(decode_buf(&b), KURER_EMALFORMED);
    kurer_buf_init(&b, 256);
    kurer_buf_init(&m, 256);
    pb_varint(&m, 2, 1);
    kurer_buf_init(&s, 256);
    pb_bytes(&s, 1, garbage, 31); /* group id of 31 bytes */
    pb_sub(&m, 5, &s);
    pb_sub(&b, 1, &m);
    assert_int_equal(decode_buf(&b), KURER_EMALFORMED);
    kurer_buf_init(&b, 256);
    kurer_buf_init(&m, 256);
    pb_varint(&m, 2, 1);
    kurer_buf_init(&s, 256);
    pb_bytes(&s, 1, garbage, 16);
    pb_bytes(&s, 2, garbage, 31); /* attachment key of 31 bytes */
    pb_bytes(&s, 4, garbage, 32);
    pb_sub(&m, 4, &s);
    pb_sub(&b, 1, &m);
    assert_int_equal(decode_buf(&b), KURER_EMALFORMED);
    /* Oversize. */
    {
        uint8_t *big = calloc(1, KURER_CONTENT_PADDED_MAX + KURER_PAD_BLOCK);
        assert_non_null(big);
        assert_int_equal(kurer_content_decode(big, KURER_CONTENT_MAX + 1, &c), KURER_ELIMIT);
        big[0] = 0x80;
        assert_int_equal(
            kurer_content_decode_padded(big, KURER_CONTENT_PADDED_MAX + KURER_PAD_BLOCK, &c),
            KURER_ELIMIT);
        free(big);
    }
    /* Random bytes: no crash, no leak. */
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round * 13) % sizeof(garbage);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            garbage[i] = (uint8_t)x;
        }
        if (kurer_content_decode(garbage, n, &c) == 0)
            kurer_content_release(&c);
    }
}

static void test_padding(void **state)
{
    kurer_content c = {0}, d;
    kurer_buf p;
    uint8_t block[2 * KURER_PAD_BLOCK];
    (void)state;
    c.body = KURER_CONTENT_DATA;
    c.u.data.body = "x";
    c.u.data.classification = KURER_LEVEL_UNCLASSIFIED;
    kurer_buf_init(&p, KURER_CONTENT_PADDED_MAX);
    assert_int_equal(kurer_content_encode_padded(&c, &p), 0);
    assert_int_equal(p.len, KURER_PAD_BLOCK);
    assert_int_equal(kurer_content_decode_padded(p.data, p.len, &d), 0);
    assert_string_equal(d.u.data.body, "x");
    kurer_content_release(&d);

    /* Not a multiple of the block, empty, no marker, a stray byte after the marker. */
    assert_int_equal(kurer_content_decode_padded(p.data, p.len - 1, &d), KURER_EMALFORMED);
    assert_int_equal(kurer_content_decode_padded(p.data, 0, &d), KURER_EMALFORMED);
    memset(block, 0, sizeof(block));
    assert_int_equal(kurer_content_decode_padded(block, KURER_PAD_BLOCK, &d), KURER_EMALFORMED);
    memcpy(block, p.data, p.len);
    block[KURER_PAD_BLOCK - 1] = 0x01;
    assert_int_equal(kurer_content_decode_padded(block, KURER_PAD_BLOCK, &d), KURER_EMALFORMED);
    /* More than a block of padding. */
    memset(block, 0, sizeof(block));
    block[0] = 0x80;
    assert_int_equal(kurer_content_decode_padded(block, sizeof(block), &d), KURER_EMALFORMED);
    /* Padding right, content wrong: the decoder's error comes through. */
    memset(block, 0, sizeof(block));
    block[0] = 0xff;
    block[1] = 0x80;
    assert_int_equal(kurer_content_decode_padded(block, KURER_PAD_BLOCK, &d), KURER_EMALFORMED);
    /* Only the marker: empty Content, which has no body. */
    memset(block, 0, sizeof(block));
    block[0] = 0x80;
    assert_int_equal(kurer_content_decode_padded(block, KURER_PAD_BLOCK, &d), KURER_EMALFORMED);
    kurer_buf_release(&p);
}

/* Issue 11, items 6 and 7: a receipt's copy for our own devices (SyncMessage.ReceiptSent) and
 * the timer-change notice (DataMessage.timer_change). */
static void test_receipt_sync_and_timer(void **state)
{
    uint64_t ts[] = {1796422365000, 1796422365001};
    kurer_content c = {0}, d;
    (void)state;
    c.body = KURER_CONTENT_SYNC_RECEIPT;
    strcpy(c.u.sync_receipt.destination, "anna@ministry.example");
    c.u.sync_receipt.receipt.type = KURER_RECEIPT_READ;
    c.u.sync_receipt.receipt.timestamps = ts;
    c.u.sync_receipt.receipt.n_timestamps = 2;
    content_rt(&c, &d, "content_sync_receipt");
    assert_string_equal(d.u.sync_receipt.destination, "anna@ministry.example");
    assert_int_equal(d.u.sync_receipt.receipt.type, KURER_RECEIPT_READ);
    assert_int_equal(d.u.sync_receipt.receipt.n_timestamps, 2);
    assert_memory_equal(d.u.sync_receipt.receipt.timestamps, ts, sizeof(ts));
    kurer_content_release(&d);
    c.u.sync_receipt.receipt.n_timestamps = 0;
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
    c.u.sync_receipt.receipt.n_timestamps = 1;
    strcpy(c.u.sync_receipt.destination, "anna");
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);

    memset(&c, 0, sizeof(c));
    c.body = KURER_CONTENT_DATA;
    c.u.data.body = "";
    c.u.data.classification = KURER_LEVEL_UNCLASSIFIED;
    c.u.data.timer_change = 1;
    c.u.data.expire_timer = 3600;
    content_rt(&c, &d, "content_timer_change");
    assert_int_equal(d.u.data.timer_change, 1);
    assert_int_equal(d.u.data.expire_timer, 3600);
    kurer_content_release(&d);
    c.u.data.body = "a notice carries no text";
    assert_int_equal(encode_rc(&c), KURER_EMALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_roundtrip),         cmocka_unit_test(test_classification),
        cmocka_unit_test(test_other_bodies),           cmocka_unit_test(test_call_bodies),
        cmocka_unit_test(test_content_malformed),      cmocka_unit_test(test_padding),
        cmocka_unit_test(test_receipt_sync_and_timer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
