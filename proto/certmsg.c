/* Decode layer for proto/cert.proto.
 *
 * Signed bodies (certificates, requests, revocation lists) must be in canonical form: after
 * decoding, the body is encoded again and must give the very bytes that were signed. That
 * refuses unknown fields, repeated fields and over-long varints, so two parsers can never read
 * one signed body two ways. Signatures are still checked over the bytes as received. */
#include "kurer/certmsg.h"
#include "kurer/text.h"

#include <stdlib.h>
#include <string.h>

#include "cert.pb-c.h"

/* ---------------------------------------------------------------- names and syntax */

const char *kurer_role_name(int role)
{
    switch (role) {
    case KURER_ROLE_ROOT:
        return "ROOT";
    case KURER_ROLE_AUTHORITY:
        return "AUTHORITY";
    case KURER_ROLE_DEVICE:
        return "DEVICE";
    }
    return "INVALID";
}

const char *kurer_reason_name(int reason)
{
    switch (reason) {
    case KURER_REASON_UNSPECIFIED:
        return "unspecified";
    case KURER_REASON_KEY_COMPROMISE:
        return "key-compromise";
    case KURER_REASON_DEVICE_LOST:
        return "device-lost";
    case KURER_REASON_SUPERSEDED:
        return "superseded";
    case KURER_REASON_LEFT_AUTHORITY:
        return "left-authority";
    }
    return "invalid";
}

int kurer_reason_parse(const char *s, kurer_revocation_reason *out)
{
    *out = KURER_REASON_UNSPECIFIED;
    for (int r = KURER_REASON_UNSPECIFIED; r <= KURER_REASON_LEFT_AUTHORITY; r++)
        if (s != NULL && strcmp(s, kurer_reason_name(r)) == 0) {
            *out = (kurer_revocation_reason)r;
            return 0;
        }
    return KURER_EINVAL;
}

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int kurer_authority_id_check(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > KURER_AUTHORITY_ID_MAX || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return KURER_ESUBJECT;
    for (size_t i = 0; i < n; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '-' && s[i] != '.')
            return KURER_ESUBJECT;
    return 0;
}

const char *kurer_user_authority(const char *s)
{
    const char *at = s != NULL ? strchr(s, '@') : NULL;
    size_t local;
    if (at == NULL)
        return NULL;
    local = (size_t)(at - s);
    if (local == 0 || local > 64)
        return NULL;
    for (size_t i = 0; i < local; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return NULL;
    if (kurer_authority_id_check(at + 1) != 0)
        return NULL;
    return at + 1;
}

int kurer_user_check(const char *s)
{
    return kurer_user_authority(s) != NULL ? 0 : KURER_ESUBJECT;
}

/* Display names: valid UTF-8, no control characters, 0..KURER_NAME_MAX bytes. */
static int display_name_check(const char *s, size_t n)
{
    if (n > KURER_NAME_MAX)
        return KURER_ELIMIT;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = kurer_utf8_decode(s + i, &cp); /* s is NUL-terminated at n */
        if (k == 0 || k > n - i || cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
            return KURER_EMALFORMED;
        i += k;
    }
    return 0;
}

/* Copies a protobuf string into a fixed buffer (cap includes the NUL). */
static int copy_string(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if (n >= cap)
        return KURER_ELIMIT;
    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
    return 0;
}

static int copy_bytes(uint8_t *dst, size_t want, const ProtobufCBinaryData *src)
{
    if (src->len != want)
        return KURER_EMALFORMED;
    memcpy(dst, src->data, want);
    return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static int level_check(int level)
{
    if (level >= KURER_LEVEL_UNCLASSIFIED && level <= KURER_LEVEL_CONFIDENTIAL)
        return 0;
    if (level == 4 || level == 5)
        return KURER_ECLEARANCE;
    return KURER_EMALFORMED;
}

/* --------------------------------------------------------------------- certificates */

static int cert_body_validate(const kurer_cert_body *b)
{
    int rc;
    if (b->version != 1)
        return KURER_EVERSION;
    if (b->serial == 0)
        return KURER_EMALFORMED;
    if ((rc = level_check((int)b->clearance)) != 0)
        return rc;
    if (b->not_after <= b->not_before)
        return KURER_EMALFORMED;
    if ((rc = display_name_check(b->display_name, strlen(b->display_name))) != 0)
        return rc;
    if (all_zero(b->issuer_key_id, sizeof(b->issuer_key_id)))
        return KURER_EMALFORMED;
    switch (b->role) {
    case KURER_ROLE_ROOT:
    case KURER_ROLE_AUTHORITY:
        if ((rc = kurer_authority_id_check(b->subject)) != 0)
            return rc;
        if (b->device_id != 0 || all_zero(b->signing_key, sizeof(b->signing_key)) ||
            !all_zero(b->identity_key, sizeof(b->identity_key)) ||
            !all_zero(b->noise_key, sizeof(b->noise_key)))
            return KURER_EMALFORMED;
        return 0;
    case KURER_ROLE_DEVICE:
        if ((rc = kurer_user_check(b->subject)) != 0)
            return rc;
        if (b->device_id == 0 || b->device_id > KURER_DEVICE_ID_MAX ||
            !all_zero(b->signing_key, sizeof(b->signing_key)) || b->identity_key[0] != 0x05 ||
            all_zero(b->noise_key, sizeof(b->noise_key)))
            return KURER_EMALFORMED;
        return 0;
    }
    return KURER_EMALFORMED;
}

static void bin(ProtobufCBinaryData *d, const uint8_t *p, size_t n, int present)
{
    d->data = present ? (uint8_t *)p : NULL;
    d->len = present ? n : 0;
}

static int pack_into(const ProtobufCMessage *m, kurer_buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p;
    int rc = kurer_buf_reserve(out, n, &p);
    if (rc != 0)
        return rc;
    if (protobuf_c_message_pack(m, p) != n)
        return KURER_EINTERNAL;
    return 0;
}

int kurer_cert_body_encode(const kurer_cert_body *b, kurer_buf *out)
{
    Kurer__V1__CertificateBody m = KURER__V1__CERTIFICATE_BODY__INIT;
    int device = b->role == KURER_ROLE_DEVICE;
    int rc = cert_body_validate(b);
    if (rc != 0)
        return rc;
    m.version = b->version;
    m.serial = b->serial;
    m.role = (Kurer__V1__Role)b->role;
    m.subject = (char *)b->subject;
    m.display_name = (char *)b->display_name;
    m.device_id = b->device_id;
    m.clearance = (Kurer__V1__Level)b->clearance;
    m.not_before = b->not_before;
    m.not_after = b->not_after;
    bin(&m.issuer_key_id, b->issuer_key_id, KURER_KEY_ID_LEN, 1);
    bin(&m.signing_key, b->signing_key, KURER_ED25519_PK_LEN, !device);
    bin(&m.identity_key, b->identity_key, KURER_IDENTITY_KEY_LEN, device);
    bin(&m.noise_key, b->noise_key, KURER_X25519_LEN, device);
    return pack_into(&m.base, out);
}

/* Requires that tbs is exactly what our encoder makes of the decoded body. */
static int canonical_check(const uint8_t *tbs, size_t len, int (*enc)(const void *, kurer_buf *),
                           const void *body)
{
    uint8_t mem[KURER_TBS_MAX];
    kurer_buf b;
    int rc;
    kurer_buf_init_fixed(&b, mem, sizeof(mem));
    if ((rc = enc(body, &b)) != 0)
        return rc == KURER_ELIMIT ? KURER_ELIMIT : KURER_EMALFORMED;
    if (b.len != len || memcmp(mem, tbs, len) != 0)
        return KURER_EMALFORMED;
    return 0;
}

static int cert_body_encode_cb(const void *body, kurer_buf *out)
{
    return kurer_cert_body_encode(body, out);
}

int kurer_cert_body_decode(const uint8_t *tbs, size_t len, kurer_cert_body *out)
{
    Kurer__V1__CertificateBody *m;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return KURER_ETRUNC;
    if (len > KURER_TBS_MAX)
        return KURER_ELIMIT;
    m = kurer__v1__certificate_body__unpack(NULL, len, tbs);
    if (m == NULL)
        return KURER_EMALFORMED;
    out->version = m->version;
    out->serial = m->serial;
    out->role = (kurer_role)m->role;
    out->device_id = m->device_id;
    out->clearance = (kurer_level)m->clearance;
    out->not_before = m->not_before;
    out->not_after = m->not_after;
    if ((rc = copy_string(out->subject, sizeof(out->subject), m->subject)) != 0 ||
        (rc = copy_string(out->display_name, sizeof(out->display_name), m->display_name)) != 0 ||
        (rc = copy_bytes(out->issuer_key_id, KURER_KEY_ID_LEN, &m->issuer_key_id)) != 0)
        goto out;
    if (m->role == KURER__V1__ROLE__ROLE_DEVICE) {
        if ((rc = copy_bytes(out->identity_key, KURER_IDENTITY_KEY_LEN, &m->identity_key)) != 0 ||
            (rc = copy_bytes(out->noise_key, KURER_X25519_LEN, &m->noise_key)) != 0)
            goto out;
        if (m->signing_key.len != 0)
            rc = KURER_EMALFORMED;
    } else {
        if ((rc = copy_bytes(out->signing_key, KURER_ED25519_PK_LEN, &m->signing_key)) != 0)
            goto out;
        if (m->identity_key.len != 0 || m->noise_key.len != 0)
            rc = KURER_EMALFORMED;
    }
    if (rc == 0)
        rc = cert_body_validate(out);
    if (rc == 0)
        rc = canonical_check(tbs, len, cert_body_encode_cb, out);
out:
    kurer__v1__certificate_body__free_unpacked(m, NULL);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int kurer_cert_from_parts(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig, size_t sig_len,
                          kurer_cert *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if (sig_len != KURER_SIG_LEN)
        return KURER_EMALFORMED;
    if ((rc = kurer_cert_body_decode(tbs, tbs_len, &out->body)) != 0)
        return rc;
    memcpy(out->tbs, tbs, tbs_len);
    out->tbs_len = tbs_len;
    memcpy(out->signature, sig, KURER_SIG_LEN);
    return 0;
}

int kurer_cert_decode(const uint8_t *data, size_t len, kurer_cert *out)
{
    Kurer__V1__SignedCertificate *m;
    int rc;
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return KURER_ETRUNC;
    if (len > KURER_CERT_MAX)
        return KURER_ELIMIT;
    m = kurer__v1__signed_certificate__unpack(NULL, len, data);
    if (m == NULL)
        return KURER_EMALFORMED;
    rc = kurer_cert_from_parts(m->tbs.data, m->tbs.len, m->signature.data, m->signature.len, out);
    kurer__v1__signed_certificate__free_unpacked(m, NULL);
    return rc;
}

static void signed_cert_msg(Kurer__V1__SignedCertificate *m, const kurer_cert *c)
{
    kurer__v1__signed_certificate__init(m);
    bin(&m->tbs, c->tbs, c->tbs_len, 1);
    bin(&m->signature, c->signature, KURER_SIG_LEN, 1);
}

int kurer_cert_encode(const kurer_cert *cert, kurer_buf *out)
{
    Kurer__V1__SignedCertificate m;
    if (cert->tbs_len == 0 || cert->tbs_len > KURER_TBS_MAX)
        return KURER_EINVAL;
    signed_cert_msg(&m, cert);
    return pack_into(&m.base, out);
}

int kurer_chain_decode(const uint8_t *data, size_t len, kurer_chain *out)
{
    Kurer__V1__CertificateChain *m;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return KURER_ETRUNC;
    if (len > KURER_CHAIN_BYTES_MAX)
        return KURER_ELIMIT;
    m = kurer__v1__certificate_chain__unpack(NULL, len, data);
    if (m == NULL)
        return KURER_EMALFORMED;
    if (m->n_certs == 0)
        rc = KURER_EMALFORMED;
    else if (m->n_certs > KURER_CHAIN_MAX)
        rc = KURER_ELIMIT;
    for (size_t i = 0; rc == 0 && i < m->n_certs; i++) {
        const Kurer__V1__SignedCertificate *c = m->certs[i];
        rc = kurer_cert_from_parts(c->tbs.data, c->tbs.len, c->signature.data, c->signature.len,
                                   &out->certs[i]);
    }
    if (rc == 0)
        out->n = m->n_certs;
    kurer__v1__certificate_chain__free_unpacked(m, NULL);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int kurer_chain_encode(const kurer_chain *chain, kurer_buf *out)
{
    Kurer__V1__CertificateChain m = KURER__V1__CERTIFICATE_CHAIN__INIT;
    Kurer__V1__SignedCertificate certs[KURER_CHAIN_MAX], *ptrs[KURER_CHAIN_MAX];
    if (chain->n == 0 || chain->n > KURER_CHAIN_MAX)
        return KURER_EINVAL;
    for (size_t i = 0; i < chain->n; i++) {
        if (chain->certs[i].tbs_len == 0 || chain->certs[i].tbs_len > KURER_TBS_MAX)
            return KURER_EINVAL;
        signed_cert_msg(&certs[i], &chain->certs[i]);
        ptrs[i] = &certs[i];
    }
    m.n_certs = chain->n;
    m.certs = ptrs;
    return pack_into(&m.base, out);
}

/* ------------------------------------------------------------------ certificate requests */

static int csr_body_validate(const kurer_csr_body *b)
{
    int rc;
    if (b->version != 1)
        return KURER_EVERSION;
    if ((rc = kurer_user_check(b->subject)) != 0)
        return rc;
    if (b->device_id == 0 || b->device_id > KURER_DEVICE_ID_MAX)
        return KURER_EMALFORMED;
    if ((rc = display_name_check(b->display_name, strlen(b->display_name))) != 0)
        return rc;
    if (b->identity_key[0] != 0x05 || all_zero(b->noise_key, sizeof(b->noise_key)))
        return KURER_EMALFORMED;
    return 0;
}

int kurer_csr_body_encode(const kurer_csr_body *b, kurer_buf *out)
{
    Kurer__V1__CertificateRequestBody m = KURER__V1__CERTIFICATE_REQUEST_BODY__INIT;
    int rc = csr_body_validate(b);
    if (rc != 0)
        return rc;
    m.version = b->version;
    m.subject = (char *)b->subject;
    m.device_id = b->device_id;
    m.display_name = (char *)b->display_name;
    bin(&m.identity_key, b->identity_key, KURER_IDENTITY_KEY_LEN, 1);
    bin(&m.noise_key, b->noise_key, KURER_X25519_LEN, 1);
    m.created_at = b->created_at;
    return pack_into(&m.base, out);
}

static int csr_body_encode_cb(const void *body, kurer_buf *out)
{
    return kurer_csr_body_encode(body, out);
}

int kurer_csr_decode(const uint8_t *data, size_t len, kurer_csr *out)
{
    Kurer__V1__SignedCertificateRequest *sm;
    Kurer__V1__CertificateRequestBody *m = NULL;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return KURER_ETRUNC;
    if (len > KURER_CERT_MAX)
        return KURER_ELIMIT;
    sm = kurer__v1__signed_certificate_request__unpack(NULL, len, data);
    if (sm == NULL)
        return KURER_EMALFORMED;
    if (sm->signature.len != KURER_SIG_LEN || sm->tbs.len == 0) {
        rc = KURER_EMALFORMED;
        goto out;
    }
    if (sm->tbs.len > KURER_TBS_MAX) {
        rc = KURER_ELIMIT;
        goto out;
    }
    m = kurer__v1__certificate_request_body__unpack(NULL, sm->tbs.len, sm->tbs.data);
    if (m == NULL) {
        rc = KURER_EMALFORMED;
        goto out;
    }
    out->body.version = m->version;
    out->body.device_id = m->device_id;
    out->body.created_at = m->created_at;
    if ((rc = copy_string(out->body.subject, sizeof(out->body.subject), m->subject)) != 0 ||
        (rc = copy_string(out->body.display_name, sizeof(out->body.display_name),
                          m->display_name)) != 0 ||
        (rc = copy_bytes(out->body.identity_key, KURER_IDENTITY_KEY_LEN, &m->identity_key)) != 0 ||
        (rc = copy_bytes(out->body.noise_key, KURER_X25519_LEN, &m->noise_key)) != 0 ||
        (rc = csr_body_validate(&out->body)) != 0 ||
        (rc = canonical_check(sm->tbs.data, sm->tbs.len, csr_body_encode_cb, &out->body)) != 0)
        goto out;
    memcpy(out->tbs, sm->tbs.data, sm->tbs.len);
    out->tbs_len = sm->tbs.len;
    memcpy(out->signature, sm->signature.data, KURER_SIG_LEN);
out:
    if (m != NULL)
        kurer__v1__certificate_request_body__free_unpacked(m, NULL);
    kurer__v1__signed_certificate_request__free_unpacked(sm, NULL);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int kurer_csr_encode(const kurer_csr *csr, kurer_buf *out)
{
    Kurer__V1__SignedCertificateRequest m = KURER__V1__SIGNED_CERTIFICATE_REQUEST__INIT;
    if (csr->tbs_len == 0 || csr->tbs_len > KURER_TBS_MAX)
        return KURER_EINVAL;
    bin(&m.tbs, csr->tbs, csr->tbs_len, 1);
    bin(&m.signature, csr->signature, KURER_SIG_LEN, 1);
    return pack_into(&m.base, out);
}

/* -------------------------------------------------------------------- revocation lists */

static int crl_fields_validate(const kurer_crl *c)
{
    int rc;
    if ((rc = kurer_authority_id_check(c->issuer)) != 0)
        return rc;
    if (c->version == 0 || all_zero(c->issuer_key_id, sizeof(c->issuer_key_id)))
        return KURER_EMALFORMED;
    if (c->next_update != 0 && c->next_update <= c->issued_at)
        return KURER_EMALFORMED;
    if (c->n_revoked > KURER_CRL_MAX_ENTRIES)
        return KURER_ELIMIT;
    for (size_t i = 0; i < c->n_revoked; i++) {
        if (c->revoked[i].serial == 0 || (int)c->revoked[i].reason < 0 ||
            c->revoked[i].reason > KURER_REASON_LEFT_AUTHORITY)
            return KURER_EMALFORMED;
        if (i > 0 && c->revoked[i].serial <= c->revoked[i - 1].serial)
            return KURER_EMALFORMED; /* sorted, unique */
    }
    return 0;
}

int kurer_crl_body_encode(const kurer_crl *c, kurer_buf *out)
{
    Kurer__V1__RevocationListBody m = KURER__V1__REVOCATION_LIST_BODY__INIT;
    Kurer__V1__RevokedCertificate *entries = NULL, **ptrs = NULL;
    int rc = crl_fields_validate(c);
    if (rc != 0)
        return rc;
    if (c->n_revoked > 0) {
        entries = calloc(c->n_revoked, sizeof(*entries));
        ptrs = calloc(c->n_revoked, sizeof(*ptrs));
        if (entries == NULL || ptrs == NULL) {
            rc = KURER_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < c->n_revoked; i++) {
        kurer__v1__revoked_certificate__init(&entries[i]);
        entries[i].serial = c->revoked[i].serial;
        entries[i].revoked_at = c->revoked[i].revoked_at;
        entries[i].reason = (Kurer__V1__RevocationReason)c->revoked[i].reason;
        ptrs[i] = &entries[i];
    }
    m.format = 1;
    m.issuer = (char *)c->issuer;
    bin(&m.issuer_key_id, c->issuer_key_id, KURER_KEY_ID_LEN, 1);
    m.version = c->version;
    m.issued_at = c->issued_at;
    m.next_update = c->next_update;
    m.n_revoked = c->n_revoked;
    m.revoked = ptrs;
    rc = pack_into(&m.base, out);
out:
    free(entries);
    free(ptrs);
    return rc;
}

void kurer_crl_release(kurer_crl *c)
{
    if (c == NULL)
        return;
    free(c->revoked);
    free(c->tbs);
    memset(c, 0, sizeof(*c));
}

int kurer_crl_contains(const kurer_crl *c, uint64_t serial)
{
    size_t lo = 0, hi = c->n_revoked;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->revoked[mid].serial == serial)
            return 1;
        if (c->revoked[mid].serial < serial)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

int kurer_crl_decode(const uint8_t *data, size_t len, kurer_crl *out)
{
    Kurer__V1__SignedRevocationList *sm;
    Kurer__V1__RevocationListBody *m = NULL;
    kurer_buf canon;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    kurer_buf_init(&canon, KURER_CRL_BYTES_MAX);
    if (len == 0)
        return KURER_ETRUNC;
    if (len > KURER_CRL_BYTES_MAX)
        return KURER_ELIMIT;
    sm = kurer__v1__signed_revocation_list__unpack(NULL, len, data);
    if (sm == NULL)
        return KURER_EMALFORMED;
    if (sm->signature.len != KURER_SIG_LEN || sm->tbs.len == 0 || sm->issuer_certificate == NULL) {
        rc = KURER_EMALFORMED;
        goto out;
    }
    if ((rc = kurer_cert_from_parts(sm->issuer_certificate->tbs.data,
                                    sm->issuer_certificate->tbs.len,
                                    sm->issuer_certificate->signature.data,
                                    sm->issuer_certificate->signature.len, &out->issuer_cert)) != 0)
        goto out;
    m = kurer__v1__revocation_list_body__unpack(NULL, sm->tbs.len, sm->tbs.data);
    if (m == NULL) {
        rc = KURER_EMALFORMED;
        goto out;
    }
    if (m->format != 1) {
        rc = KURER_EVERSION;
        goto out;
    }
    if (m->n_revoked > KURER_CRL_MAX_ENTRIES) {
        rc = KURER_ELIMIT;
        goto out;
    }
    out->version = m->version;
    out->issued_at = m->issued_at;
    out->next_update = m->next_update;
    if ((rc = copy_string(out->issuer, sizeof(out->issuer), m->issuer)) != 0 ||
        (rc = copy_bytes(out->issuer_key_id, KURER_KEY_ID_LEN, &m->issuer_key_id)) != 0)
        goto out;
    if (m->n_revoked > 0) {
        out->revoked = calloc(m->n_revoked, sizeof(*out->revoked));
        if (out->revoked == NULL) {
            rc = KURER_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < m->n_revoked; i++) {
        out->revoked[i].serial = m->revoked[i]->serial;
        out->revoked[i].revoked_at = m->revoked[i]->revoked_at;
        out->revoked[i].reason = (kurer_revocation_reason)m->revoked[i]->reason;
    }
    out->n_revoked = m->n_revoked;
    if ((rc = crl_fields_validate(out)) != 0)
        goto out;
    if ((rc = kurer_crl_body_encode(out, &canon)) != 0)
        goto out;
    if (canon.len != sm->tbs.len || memcmp(canon.data, sm->tbs.data, canon.len) != 0) {
        rc = KURER_EMALFORMED;
        goto out;
    }
    out->tbs = malloc(sm->tbs.len);
    if (out->tbs == NULL) {
        rc = KURER_ENOMEM;
        goto out;
    }
    memcpy(out->tbs, sm->tbs.data, sm->tbs.len);
    out->tbs_len = sm->tbs.len;
    memcpy(out->signature, sm->signature.data, KURER_SIG_LEN);
out:
    kurer_buf_release(&canon);
    if (m != NULL)
        kurer__v1__revocation_list_body__free_unpacked(m, NULL);
    kurer__v1__signed_revocation_list__free_unpacked(sm, NULL);
    if (rc != 0)
        kurer_crl_release(out);
    return rc;
}

int kurer_crl_encode(const kurer_crl *c, kurer_buf *out)
{
    Kurer__V1__SignedRevocationList m = KURER__V1__SIGNED_REVOCATION_LIST__INIT;
    Kurer__V1__SignedCertificate issuer;
    if (c->tbs == NULL || c->tbs_len == 0 || c->issuer_cert.tbs_len == 0)
        return KURER_EINVAL;
    bin(&m.tbs, c->tbs, c->tbs_len, 1);
    bin(&m.signature, c->signature, KURER_SIG_LEN, 1);
    signed_cert_msg(&issuer, &c->issuer_cert);
    m.issuer_certificate = &issuer;
    return pack_into(&m.base, out);
}
