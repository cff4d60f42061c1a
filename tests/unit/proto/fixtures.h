/* Shared by the proto unit tests: valid certificates, chains and revocation lists built with
 * certmsg (fake signatures: nothing here checks them), and a tiny hand protobuf writer for
 * inputs our encoders refuse to produce. Include after <cmocka.h>. */
#ifndef KURER_TEST_PROTO_FIXTURES_H
#define KURER_TEST_PROTO_FIXTURES_H

#include <stdlib.h>
#include <string.h>

#include "kurer/buf.h"
#include "kurer/certmsg.h"

static inline void fx_device_cert(kurer_cert *out, const char *user, uint32_t device_id)
{
    kurer_cert_body b;
    kurer_buf buf;
    uint8_t sig[KURER_SIG_LEN];
    memset(&b, 0, sizeof(b));
    b.version = 1;
    b.serial = 1000 + device_id;
    b.role = KURER_ROLE_DEVICE;
    strcpy(b.subject, user);
    strcpy(b.display_name, "Test User");
    b.device_id = device_id;
    b.clearance = KURER_LEVEL_RESTRICTED;
    b.not_before = 1700000000;
    b.not_after = 1900000000;
    memset(b.issuer_key_id, 0x11, sizeof(b.issuer_key_id));
    memset(b.identity_key, 0x22, sizeof(b.identity_key));
    b.identity_key[0] = 0x05;
    memset(b.noise_key, 0x33, sizeof(b.noise_key));
    memset(sig, 0x44, sizeof(sig));
    kurer_buf_init(&buf, KURER_TBS_MAX);
    assert_int_equal(kurer_cert_body_encode(&b, &buf), 0);
    assert_int_equal(kurer_cert_from_parts(buf.data, buf.len, sig, sizeof(sig), out), 0);
    kurer_buf_release(&buf);
}

static inline void fx_authority_cert(kurer_cert *out, const char *authority)
{
    kurer_cert_body b;
    kurer_buf buf;
    uint8_t sig[KURER_SIG_LEN];
    memset(&b, 0, sizeof(b));
    b.version = 1;
    b.serial = 42;
    b.role = KURER_ROLE_AUTHORITY;
    strcpy(b.subject, authority);
    strcpy(b.display_name, "Ministeriet");
    b.clearance = KURER_LEVEL_CONFIDENTIAL;
    b.not_before = 1700000000;
    b.not_after = 1900000000;
    memset(b.issuer_key_id, 0x55, sizeof(b.issuer_key_id));
    memset(b.signing_key, 0x66, sizeof(b.signing_key));
    memset(sig, 0x77, sizeof(sig));
    kurer_buf_init(&buf, KURER_TBS_MAX);
    assert_int_equal(kurer_cert_body_encode(&b, &buf), 0);
    assert_int_equal(kurer_cert_from_parts(buf.data, buf.len, sig, sizeof(sig), out), 0);
    kurer_buf_release(&buf);
}

static inline void fx_chain(kurer_chain *out, const char *user, uint32_t device_id)
{
    memset(out, 0, sizeof(*out));
    fx_device_cert(&out->certs[0], user, device_id);
    fx_authority_cert(&out->certs[1], "ministry.example");
    out->n = 2;
}

/* A list with two entries; release with kurer_crl_release. */
static inline void fx_crl(kurer_crl *out, uint64_t version)
{
    kurer_buf buf;
    memset(out, 0, sizeof(*out));
    strcpy(out->issuer, "ministry.example");
    memset(out->issuer_key_id, 0x55, sizeof(out->issuer_key_id));
    out->version = version;
    out->issued_at = 1800000000;
    out->next_update = 1800086400;
    out->revoked = calloc(2, sizeof(*out->revoked));
    assert_non_null(out->revoked);
    out->revoked[0].serial = 1001;
    out->revoked[0].revoked_at = 1799990000;
    out->revoked[0].reason = KURER_REASON_DEVICE_LOST;
    out->revoked[1].serial = 1005;
    out->revoked[1].revoked_at = 1799990001;
    out->revoked[1].reason = KURER_REASON_KEY_COMPROMISE;
    out->n_revoked = 2;
    kurer_buf_init(&buf, KURER_CRL_BYTES_MAX);
    assert_int_equal(kurer_crl_body_encode(out, &buf), 0);
    out->tbs = kurer_buf_steal(&buf, &out->tbs_len);
    assert_non_null(out->tbs);
    memset(out->signature, 0x88, sizeof(out->signature));
    fx_authority_cert(&out->issuer_cert, "ministry.example");
}

static inline void fx_crl_equal(const kurer_crl *a, const kurer_crl *b)
{
    assert_string_equal(a->issuer, b->issuer);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->n_revoked, b->n_revoked);
    assert_int_equal(a->tbs_len, b->tbs_len);
    assert_memory_equal(a->tbs, b->tbs, a->tbs_len);
    assert_memory_equal(a->signature, b->signature, KURER_SIG_LEN);
    assert_int_equal(a->issuer_cert.tbs_len, b->issuer_cert.tbs_len);
    assert_memory_equal(a->issuer_cert.tbs, b->issuer_cert.tbs, a->issuer_cert.tbs_len);
}

static inline void fx_chain_equal(const kurer_chain *a, const kurer_chain *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->certs[i].tbs_len, b->certs[i].tbs_len);
        assert_memory_equal(a->certs[i].tbs, b->certs[i].tbs, a->certs[i].tbs_len);
        assert_memory_equal(a->certs[i].signature, b->certs[i].signature, KURER_SIG_LEN);
        assert_string_equal(a->certs[i].body.subject, b->certs[i].body.subject);
    }
}

/* ---- Hand-written protobuf ---------------------------------------------------------------- */

static inline void pb_varint(kurer_buf *b, uint32_t field, uint64_t v)
{
    assert_int_equal(kurer_buf_put_varint(b, (uint64_t)field << 3), 0);
    assert_int_equal(kurer_buf_put_varint(b, v), 0);
}

static inline void pb_bytes(kurer_buf *b, uint32_t field, const void *p, size_t n)
{
    assert_int_equal(kurer_buf_put_varint(b, ((uint64_t)field << 3) | 2), 0);
    assert_int_equal(kurer_buf_put_varint(b, n), 0);
    if (n > 0)
        assert_int_equal(kurer_buf_put(b, p, n), 0);
}

/* Appends sub as a length-delimited field and releases it. */
static inline void pb_sub(kurer_buf *b, uint32_t field, kurer_buf *sub)
{
    pb_bytes(b, field, sub->data, sub->len);
    kurer_buf_release(sub);
}

#endif
