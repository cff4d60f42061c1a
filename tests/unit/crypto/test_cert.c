/* Certificate policy tests. Each negative rule is its own ctest entry (crypto_cert_<name>),
 * run through cmocka's test filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/cert.h"
#include "kurer/crypto.h"

#define NOW ((int64_t)1800000000)
#define DAY ((int64_t)86400)

typedef struct pki {
    kurer_signing_key root_key, auth_key, other_auth_key, other_root_key;
    kurer_cert root, auth, other_auth, other_root;
    kurer_trust *trust;
} pki;

static void body_common(kurer_cert_body *b, kurer_role role, const char *subject, uint64_t serial,
                        kurer_level level)
{
    memset(b, 0, sizeof(*b));
    b->version = 1;
    b->serial = serial;
    b->role = role;
    strcpy(b->subject, subject);
    strcpy(b->display_name, "Test – Ærø");
    b->clearance = level;
    b->not_before = NOW - DAY;
    b->not_after = NOW + 365 * DAY;
}

static void make_root(kurer_signing_key *k, kurer_cert *c, const char *name)
{
    kurer_cert_body b;
    assert_int_equal(kurer_signing_key_generate(k), 0);
    body_common(&b, KURER_ROLE_ROOT, name, 1, KURER_LEVEL_CONFIDENTIAL);
    memcpy(b.signing_key, k->pk, 32);
    assert_int_equal(kurer_cert_sign(&b, k, c), 0);
}

static void make_authority(kurer_signing_key *k, kurer_cert *c, const char *id,
                           const kurer_signing_key *root, kurer_level level)
{
    kurer_cert_body b;
    assert_int_equal(kurer_signing_key_generate(k), 0);
    body_common(&b, KURER_ROLE_AUTHORITY, id, 100, level);
    memcpy(b.signing_key, k->pk, 32);
    assert_int_equal(kurer_cert_sign(&b, root, c), 0);
}

static void device_body(kurer_cert_body *b, const char *user, uint64_t serial, kurer_level level)
{
    body_common(b, KURER_ROLE_DEVICE, user, serial, level);
    b->device_id = 1;
    b->identity_key[0] = 0x05;
    kurer_random(b->identity_key + 1, 32);
    kurer_random(b->noise_key, 32);
}

static kurer_chain chain_of(const kurer_cert *dev, const kurer_cert *auth)
{
    kurer_chain ch;
    memset(&ch, 0, sizeof(ch));
    ch.certs[0] = *dev;
    ch.n = 1;
    if (auth != NULL) {
        ch.certs[1] = *auth;
        ch.n = 2;
    }
    return ch;
}

static int setup(void **state)
{
    pki *p = calloc(1, sizeof(*p));
    assert_int_equal(kurer_crypto_init(), 0);
    make_root(&p->root_key, &p->root, "dk");
    make_root(&p->other_root_key, &p->other_root, "elsewhere");
    make_authority(&p->auth_key, &p->auth, "mof", &p->root_key, KURER_LEVEL_RESTRICTED);
    make_authority(&p->other_auth_key, &p->other_auth, "mod", &p->root_key,
                   KURER_LEVEL_CONFIDENTIAL);
    assert_int_equal(kurer_trust_new(&p->trust), 0);
    assert_int_equal(kurer_trust_add_root(p->trust, &p->root, NOW), 0);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    pki *p = *state;
    kurer_signing_key_release(&p->root_key);
    kurer_signing_key_release(&p->auth_key);
    kurer_signing_key_release(&p->other_auth_key);
    kurer_signing_key_release(&p->other_root_key);
    kurer_trust_free(p->trust);
    free(p);
    return 0;
}

static void issue(pki *p, kurer_cert_body *b, kurer_cert *out)
{
    assert_int_equal(kurer_cert_sign(b, &p->auth_key, out), 0);
}

static void test_valid_chain(void **state)
{
    pki *p = *state;
    kurer_cert_body b;
    kurer_cert dev, back;
    kurer_verified v;
    kurer_buf buf;
    kurer_chain ch, ch2;
    device_body(&b, "anna@mof", 7, KURER_LEVEL_RESTRICTED);
    issue(p, &b, &dev);
    ch = chain_of(&dev, &p->auth);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), 0);
    assert_string_equal(v.user, "anna@mof");
    assert_string_equal(v.authority, "mof");
    assert_int_equal(v.clearance, KURER_LEVEL_RESTRICTED);
    assert_int_equal(v.ceiling, KURER_LEVEL_CONFIDENTIAL);
    assert_memory_equal(v.noise_key, b.noise_key, 32);

    /* Serialized and parsed again, the chain still verifies and nothing changed. */
    kurer_buf_init(&buf, KURER_CHAIN_BYTES_MAX);
    assert_int_equal(kurer_chain_encode(&ch, &buf), 0);
    assert_int_equal(kurer_chain_decode(buf.data, buf.len, &ch2), 0);
    assert_int_equal(ch2.n, 2);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch2, NOW, &v), 0);
    kurer_buf_reset(&buf);
    assert_int_equal(kurer_cert_encode(&dev, &buf), 0);
    assert_int_equal(kurer_cert_decode(buf.data, buf.len, &back), 0);
    assert_memory_equal(back.tbs, dev.tbs, dev.tbs_len);
    assert_string_equal(back.body.display_name, "Test – Ærø");
    kurer_buf_release(&buf);
}

static void test_wrong_issuer(void **state)
{
    pki *p = *state;
    kurer_cert_body b;
    kurer_cert dev;
    kurer_verified v;
    device_body(&b, "anna@mof", 8, KURER_LEVEL_RESTRICTED);
    /* Signed by another authority's key, presented with mof's certificate. */
    assert_int_equal(kurer_cert_sign(&b, &p->other_auth_key, &dev), 0);
    kurer_chain ch = chain_of(&dev, &p->auth);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EISSUER);
    /* An authority from a root we do not pin. */
    kurer_signing_key k;
    kurer_cert foreign;
    make_authority(&k, &foreign, "mof", &p->other_root_key, KURER_LEVEL_RESTRICTED);
    assert_int_equal(kurer_cert_sign(&b, &k, &dev), 0);
    ch = chain_of(&dev, &foreign);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EUNTRUSTED);
    kurer_signing_key_release(&k);
    /* A device of another authority's user. */
    device_body(&b, "anna@mod", 9, KURER_LEVEL_RESTRICTED);
    issue(p, &b, &dev);
    ch = chain_of(&dev, &p->auth);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_ESUBJECT);
}

static void test_expired(void **state)
{
    pki *p = *state;
    kurer_cert_body b;
    kurer_cert dev;
    kurer_verified v;
    device_body(&b, "anna@mof", 10, KURER_LEVEL_RESTRICTED);
    b.not_before = NOW - 10 * DAY;
    b.not_after = NOW - DAY;
    issue(p, &b, &dev);
    kurer_chain ch = chain_of(&dev, &p->auth);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EEXPIRED);
    /* A valid device under an expired authority. */
    device_body(&b, "anna@mof", 11, KURER_LEVEL_RESTRICTED);
    issue(p, &b, &dev);
    ch = chain_of(&dev, &p->auth);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW + 366 * DAY, &v), KURER_EEXPIRED);
}

static void test_not_yet_valid(void **state)
{
    pki *p = *state;
    kurer_cert_body b;
    kurer_cert dev;
    kurer_verified v;
    device_body(&b, "anna@mof", 12, KURER_LEVEL_RESTRICTED);
    b.not_before = NOW + DAY;
    issue(p, &b, &dev);
    kurer_chain ch = chain_of(&dev, &p->auth);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_ENOTYETVALID);
}

static void test_clearance_above_issuer(void **state)
{
    pki *p = *state;
    kurer_cert_body b;
    kurer_cert dev, auth;
    kurer_verified v;
    device_body(&b, "anna@mof", 13, KURER_LEVEL_CONFIDENTIAL); /* mof is RESTRICTED */
    issue(p, &b, &dev);
    kurer_chain ch = chain_of(&dev, &p->auth);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_ECLEARANCE);

    /* An authority above the root's ceiling: a RESTRICTED root, a CONFIDENTIAL authority. */
    kurer_signing_key rk, ak;
    kurer_cert root;
    kurer_cert_body rb;
    assert_int_equal(kurer_signing_key_generate(&rk), 0);
    body_common(&rb, KURER_ROLE_ROOT, "low", 1, KURER_LEVEL_RESTRICTED);
    memcpy(rb.signing_key, rk.pk, 32);
    assert_int_equal(kurer_cert_sign(&rb, &rk, &root), 0);
    make_authority(&ak, &auth, "mof", &rk, KURER_LEVEL_CONFIDENTIAL);
    assert_int_equal(kurer_authority_check(&auth, &root, NOW), KURER_ECLEARANCE);
    kurer_signing_key_release(&rk);
    kurer_signing_key_release(&ak);

    /* SECRET cannot even be encoded or decoded. */
    kurer_buf buf;
    device_body(&b, "anna@mof", 14, KURER_LEVEL_RESTRICTED);
    b.clearance = (kurer_level)4;
    kurer_buf_init(&buf, 4096);
    assert_int_equal(kurer_cert_body_encode(&b, &buf), KURER_ECLEARANCE);
    kurer_buf_release(&buf);
}

static void test_device_signed_by_root(void **state)
{
    pki *p = *state;
    kurer_cert_body b;
    kurer_cert dev;
    kurer_verified v;
    device_body(&b, "anna@mof", 15, KURER_LEVEL_RESTRICTED);
    assert_int_equal(kurer_cert_sign(&b, &p->root_key, &dev), 0);
    kurer_chain ch = chain_of(&dev, NULL);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EROLE);
    ch = chain_of(&dev, &p->root);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EROLE);
    /* And an authority certificate presented as a device. */
    ch = chain_of(&p->auth, &p->root);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EROLE);
}

static void test_tampered_tbs(void **state)
{
    pki *p = *state;
    kurer_cert_body b;
    kurer_cert dev, bad;
    kurer_verified v;
    uint8_t tbs[KURER_TBS_MAX];
    device_body(&b, "anna@mof", 16, KURER_LEVEL_RESTRICTED);
    issue(p, &b, &dev);
    /* Flip one bit of the Noise key (the last field): still decodes, no longer verifies. */
    memcpy(tbs, dev.tbs, dev.tbs_len);
    tbs[dev.tbs_len - 1] ^= 1;
    assert_int_equal(kurer_cert_from_parts(tbs, dev.tbs_len, dev.signature, 64, &bad), 0);
    kurer_chain ch = chain_of(&bad, &p->auth);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EBADSIG);
    /* Appending an unknown field breaks the canonical form: refused before any signature. */
    memcpy(tbs, dev.tbs, dev.tbs_len);
    tbs[dev.tbs_len] = 0x78; /* field 15, varint */
    tbs[dev.tbs_len + 1] = 0x01;
    assert_int_equal(kurer_cert_from_parts(tbs, dev.tbs_len + 2, dev.signature, 64, &bad),
                     KURER_EMALFORMED);
    /* Truncated at every offset: an error, never a certificate. */
    for (size_t cut = 0; cut < dev.tbs_len; cut++)
        assert_int_not_equal(kurer_cert_from_parts(dev.tbs, cut, dev.signature, 64, &bad), 0);
}

static void test_tampered_signature(void **state)
{
    pki *p = *state;
    kurer_cert_body b;
    kurer_cert dev;
    kurer_verified v;
    device_body(&b, "anna@mof", 17, KURER_LEVEL_RESTRICTED);
    issue(p, &b, &dev);
    for (int i = 0; i < 64; i += 21) {
        kurer_cert bad = dev;
        bad.signature[i] ^= 0x80;
        kurer_chain ch = chain_of(&bad, &p->auth);
        assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EBADSIG);
    }
    kurer_cert badauth = p->auth;
    badauth.signature[5] ^= 1;
    kurer_chain ch = chain_of(&dev, &badauth);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EBADSIG);
}

/* A signed list of the given version revoking the given serials; encoded into out. */
static void make_crl(pki *p, uint64_t version, const uint64_t *serials, size_t n, kurer_buf *out)
{
    kurer_crl crl;
    memset(&crl, 0, sizeof(crl));
    crl.version = version;
    crl.issued_at = NOW;
    crl.next_update = NOW + 7 * DAY;
    crl.revoked = calloc(n ? n : 1, sizeof(*crl.revoked));
    for (size_t i = 0; i < n; i++) {
        crl.revoked[i].serial = serials[i];
        crl.revoked[i].revoked_at = NOW;
        crl.revoked[i].reason = KURER_REASON_DEVICE_LOST;
    }
    crl.n_revoked = n;
    assert_int_equal(kurer_crl_sign(&crl, &p->auth_key, &p->auth), 0);
    assert_int_equal(kurer_crl_encode(&crl, out), 0);
    kurer_crl_release(&crl);
}

static void test_revoked_serial(void **state)
{
    pki *p = *state;
    kurer_cert_body b;
    kurer_cert dev;
    kurer_verified v;
    kurer_buf buf;
    uint64_t version;
    const uint64_t serials[] = {5, 18, 40};
    device_body(&b, "anna@mof", 18, KURER_LEVEL_RESTRICTED);
    issue(p, &b, &dev);
    kurer_chain ch = chain_of(&dev, &p->auth);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), 0);
    kurer_buf_init(&buf, KURER_CRL_BYTES_MAX);
    make_crl(p, 1, serials, 3, &buf);
    assert_int_equal(kurer_trust_add_crl(p->trust, buf.data, buf.len, &version), 0);
    assert_int_equal(version, 1);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EREVOKED);
    /* A tampered list is refused and changes nothing. */
    buf.data[buf.len - 3] ^= 1;
    assert_int_not_equal(kurer_trust_add_crl(p->trust, buf.data, buf.len, NULL), 0);
    assert_int_equal(kurer_trust_crl_count(p->trust), 1);
    kurer_buf_release(&buf);
}

static void test_crl_replay(void **state)
{
    pki *p = *state;
    kurer_buf v1, v2;
    const uint64_t s1[] = {70};
    const uint64_t s2[] = {70, 71};
    kurer_buf_init(&v1, KURER_CRL_BYTES_MAX);
    kurer_buf_init(&v2, KURER_CRL_BYTES_MAX);
    make_crl(p, 10, s1, 1, &v1);
    make_crl(p, 11, s2, 2, &v2);
    assert_int_equal(kurer_trust_add_crl(p->trust, v2.data, v2.len, NULL), 0);
    /* The older list replayed: refused, and the newer one stays in force. */
    assert_int_equal(kurer_trust_add_crl(p->trust, v1.data, v1.len, NULL), KURER_ESTALE);
    assert_int_equal(kurer_trust_add_crl(p->trust, v2.data, v2.len, NULL), KURER_ESTALE);
    uint8_t id[32];
    kurer_cert_key_id(&p->auth, id);
    assert_true(kurer_trust_is_revoked(p->trust, id, 71));
    assert_false(kurer_trust_is_revoked(p->trust, id, 72));
    kurer_buf_release(&v1);
    kurer_buf_release(&v2);

    /* A list signed by a key other than the authority's named in it. */
    kurer_crl crl;
    memset(&crl, 0, sizeof(crl));
    crl.version = 99;
    crl.issued_at = NOW;
    assert_int_equal(kurer_crl_sign(&crl, &p->other_auth_key, &p->other_auth), 0);
    crl.issuer_cert = p->auth; /* claims to be mof's */
    kurer_buf b;
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    assert_int_equal(kurer_crl_encode(&crl, &b), 0);
    assert_int_not_equal(kurer_trust_add_crl(p->trust, b.data, b.len, NULL), 0);
    kurer_buf_release(&b);
    kurer_crl_release(&crl);
}

/* A list by any issuer (authority or root), with the given next_update (0: none). */
static void make_list(const kurer_signing_key *key, const kurer_cert *cert, uint64_t version,
                      int64_t next_update, const uint64_t *serials, size_t n, kurer_buf *out)
{
    kurer_crl crl;
    memset(&crl, 0, sizeof(crl));
    crl.version = version;
    crl.issued_at = NOW - 30 * DAY;
    crl.next_update = next_update;
    crl.revoked = calloc(n ? n : 1, sizeof(*crl.revoked));
    for (size_t i = 0; i < n; i++) {
        crl.revoked[i].serial = serials[i];
        crl.revoked[i].revoked_at = NOW - DAY;
        crl.revoked[i].reason = KURER_REASON_KEY_COMPROMISE;
    }
    crl.n_revoked = n;
    assert_int_equal(kurer_crl_sign(&crl, key, cert), 0);
    kurer_buf_reset(out);
    assert_int_equal(kurer_crl_encode(&crl, out), 0);
    kurer_crl_release(&crl);
}

static void add_list(pki *p, const kurer_buf *b)
{
    assert_int_equal(kurer_trust_add_crl(p->trust, b->data, b->len, NULL), 0);
}

/* A device of mof, verified at now. */
static kurer_chain mof_device(pki *p, uint64_t serial)
{
    kurer_cert_body b;
    kurer_cert dev;
    device_body(&b, "anna@mof", serial, KURER_LEVEL_RESTRICTED);
    issue(p, &b, &dev);
    return chain_of(&dev, &p->auth);
}

/* Past next_update, inside the grace: the chain verifies and says so. */
static void test_crl_stale_warning(void **state)
{
    pki *p = *state;
    kurer_verified v;
    kurer_buf b;
    const uint64_t other[] = {3};
    kurer_chain ch = mof_device(p, 20);
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    make_list(&p->auth_key, &p->auth, 1, NOW - DAY, other, 1, &b);
    add_list(p, &b);
    assert_int_equal(kurer_trust_crl_grace(p->trust), 7 * DAY);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), 0);
    assert_int_equal(v.crl_stale, KURER_STALE_AUTHORITY_CRL);
    assert_int_equal(v.crl_stale_since, NOW - DAY);
    assert_int_equal(kurer_trust_crl_freshness(p->trust, kurer_trust_crl(p->trust, 0), NOW), 1);
    /* Before next_update, or exactly at it, the list is current. */
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW - DAY, &v), 0);
    assert_int_equal(v.crl_stale, 0);
    assert_int_equal(v.crl_stale_since, 0);
    /* A newer list clears the flag. */
    make_list(&p->auth_key, &p->auth, 2, NOW + DAY, other, 1, &b);
    add_list(p, &b);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), 0);
    assert_int_equal(v.crl_stale, 0);
    kurer_buf_release(&b);
}

/* Past next_update + grace: the authority's chains are refused until a newer list comes. */
static void test_crl_stale_refused(void **state)
{
    pki *p = *state;
    kurer_verified v;
    kurer_buf b;
    kurer_chain ch = mof_device(p, 21);
    const int64_t next = NOW - 8 * DAY;
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    make_list(&p->auth_key, &p->auth, 1, next, NULL, 0, &b);
    add_list(p, &b);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_ECRLSTALE);
    assert_int_equal(v.crl_stale, KURER_STALE_AUTHORITY_CRL);
    assert_int_equal(v.crl_stale_since, next);
    assert_int_equal(kurer_err_category(KURER_ECRLSTALE), KURER_CAT_POLICY);
    assert_string_equal(kurer_err_name(KURER_ECRLSTALE), "ECRLSTALE");
    assert_int_equal(KURER_ECRLSTALE, -47);
    /* The boundary: next_update + grace still passes, one second later does not. */
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, next + 7 * DAY, &v), 0);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, next + 7 * DAY + 1, &v),
                     KURER_ECRLSTALE);
    /* Another authority's devices are not affected by mof's list. */
    kurer_cert_body db;
    kurer_cert dev;
    device_body(&db, "bo@mod", 5, KURER_LEVEL_RESTRICTED);
    assert_int_equal(kurer_cert_sign(&db, &p->other_auth_key, &dev), 0);
    kurer_chain och = chain_of(&dev, &p->other_auth);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &och, NOW, &v), 0);
    assert_int_equal(v.crl_stale, 0);
    /* A revoked device stays revoked: EREVOKED, not ECRLSTALE. */
    const uint64_t s[] = {21};
    make_list(&p->auth_key, &p->auth, 2, next, s, 1, &b);
    add_list(p, &b);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EREVOKED);
    /* A current list lifts the refusal. */
    make_list(&p->auth_key, &p->auth, 3, NOW + DAY, NULL, 0, &b);
    add_list(p, &b);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), 0);
    kurer_buf_release(&b);
}

/* The grace is policy: 0 refuses at once, NEVER only flags, a negative one is refused. */
static void test_crl_grace_policy(void **state)
{
    pki *p = *state;
    kurer_verified v;
    kurer_buf b;
    kurer_chain ch = mof_device(p, 22);
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    make_list(&p->auth_key, &p->auth, 1, NOW - 1, NULL, 0, &b);
    add_list(p, &b);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), 0);
    assert_int_equal(kurer_trust_set_crl_grace(p->trust, 0), 0);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_ECRLSTALE);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW - 1, &v), 0);
    assert_int_equal(kurer_trust_set_crl_grace(p->trust, KURER_TRUST_CRL_GRACE_NEVER), 0);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW + 300 * DAY, &v), 0);
    assert_int_equal(v.crl_stale, KURER_STALE_AUTHORITY_CRL);
    assert_int_equal(kurer_trust_set_crl_grace(p->trust, -2), KURER_EINVAL);
    assert_int_equal(kurer_trust_crl_grace(p->trust), KURER_TRUST_CRL_GRACE_NEVER);
    /* A huge grace does not overflow into a refusal. */
    assert_int_equal(kurer_trust_set_crl_grace(p->trust, INT64_MAX), 0);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW + 300 * DAY, &v), 0);
    kurer_buf_release(&b);
}

/* A list without next_update never goes stale. */
static void test_crl_no_next_update(void **state)
{
    pki *p = *state;
    kurer_verified v;
    kurer_buf b;
    kurer_chain ch = mof_device(p, 23);
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    make_list(&p->auth_key, &p->auth, 1, 0, NULL, 0, &b);
    add_list(p, &b);
    assert_int_equal(kurer_trust_set_crl_grace(p->trust, 0), 0);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW + 300 * DAY, &v), 0);
    assert_int_equal(v.crl_stale, 0);
    assert_int_equal(kurer_trust_crl_freshness(p->trust, kurer_trust_crl(p->trust, 0), INT64_MAX),
                     0);
    kurer_buf_release(&b);
}

/* The root revokes mof (serial 100): mof's devices and mof itself are refused, mod is not. */
static void test_root_crl_revokes_authority(void **state)
{
    pki *p = *state;
    kurer_verified v;
    kurer_buf b;
    uint64_t version = 0;
    uint8_t rid[KURER_KEY_ID_LEN], aid[KURER_KEY_ID_LEN];
    const uint64_t s[] = {100};
    kurer_chain ch = mof_device(p, 24);
    const kurer_cert *root = NULL;
    kurer_cert_key_id(&p->root, rid);
    kurer_cert_key_id(&p->auth, aid);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), 0);
    assert_int_equal(v.authority_serial, 100);
    assert_memory_equal(v.root_key_id, rid, KURER_KEY_ID_LEN);
    kurer_verified kept = v;
    assert_int_equal(kurer_trust_chain_revoked(p->trust, &kept), 0);

    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    make_list(&p->root_key, &p->root, 1, NOW + DAY, s, 1, &b);
    /* It travels and decodes like any list: issuer the root, its key id, its certificate. */
    kurer_crl l;
    assert_int_equal(kurer_crl_decode(b.data, b.len, &l), 0);
    assert_int_equal(l.issuer_cert.body.role, KURER_ROLE_ROOT);
    assert_string_equal(l.issuer, "dk");
    assert_memory_equal(l.issuer_key_id, rid, KURER_KEY_ID_LEN);
    assert_int_equal(kurer_crl_verify(&l, &p->root), 0);
    kurer_crl_release(&l);
    assert_int_equal(kurer_trust_add_crl(p->trust, b.data, b.len, &version), 0);
    assert_int_equal(version, 1);

    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EREVOKED);
    assert_int_equal(kurer_trust_verify_authority(p->trust, &p->auth, NOW, &root), KURER_EREVOKED);
    assert_null(root);
    assert_int_equal(kurer_trust_chain_revoked(p->trust, &kept), 1);
    assert_true(kurer_trust_is_revoked(p->trust, rid, 100));
    /* The device serial itself is not on mof's list (there is none). */
    assert_false(kurer_trust_is_revoked(p->trust, aid, 24));
    /* mod under the same root, with a serial of its own (the fixture gives both 100). */
    kurer_cert_body ab = p->other_auth.body;
    kurer_cert mod;
    ab.serial = 101;
    assert_int_equal(kurer_cert_sign(&ab, &p->root_key, &mod), 0);
    assert_int_equal(kurer_trust_verify_authority(p->trust, &mod, NOW, &root), 0);
    assert_non_null(root);
    kurer_cert_body db;
    kurer_cert dev;
    device_body(&db, "bo@mod", 6, KURER_LEVEL_RESTRICTED);
    assert_int_equal(kurer_cert_sign(&db, &p->other_auth_key, &dev), 0);
    kurer_chain och = chain_of(&dev, &mod);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &och, NOW, &v), 0);
    assert_int_equal(v.authority_serial, 101);
    assert_int_equal(kurer_trust_chain_revoked(p->trust, &v), 0);
    kurer_buf_release(&b);
}

/* Who may sign a list of authorities: only a pinned root, with its own key, newer versions. */
static void test_root_crl_rules(void **state)
{
    pki *p = *state;
    kurer_buf b;
    const uint64_t s[] = {100};
    kurer_crl crl;
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    /* A root we do not pin. */
    make_list(&p->other_root_key, &p->other_root, 1, NOW + DAY, s, 1, &b);
    assert_int_equal(kurer_trust_add_crl(p->trust, b.data, b.len, NULL), KURER_EUNTRUSTED);
    /* Our root's certificate, signed with another key: the key is not the root's. */
    memset(&crl, 0, sizeof(crl));
    crl.version = 5;
    crl.issued_at = NOW;
    assert_int_equal(kurer_crl_sign(&crl, &p->other_root_key, &p->other_root), 0);
    crl.issuer_cert = p->root;
    kurer_buf_reset(&b);
    assert_int_equal(kurer_crl_encode(&crl, &b), 0);
    assert_int_equal(kurer_trust_add_crl(p->trust, b.data, b.len, NULL), KURER_EISSUER);
    assert_int_equal(kurer_crl_verify(&crl, &p->root), KURER_EISSUER);
    /* A root certificate with our root's subject and key id claim but another key. */
    crl.issuer_cert = p->other_root;
    assert_int_equal(kurer_crl_verify(&crl, &p->root), KURER_EKEYMISMATCH);
    kurer_crl_release(&crl);
    /* A root certificate with our key whose self-signature is broken. */
    memset(&crl, 0, sizeof(crl));
    crl.version = 6;
    crl.issued_at = NOW;
    assert_int_equal(kurer_crl_sign(&crl, &p->root_key, &p->root), 0);
    crl.issuer_cert.signature[3] ^= 1;
    assert_int_equal(kurer_crl_verify(&crl, &p->root), KURER_EBADSIG);
    crl.issuer_cert = p->root;
    crl.signature[9] ^= 1;
    assert_int_equal(kurer_crl_verify(&crl, &p->root), KURER_EBADSIG);
    kurer_crl_release(&crl);
    /* A device certificate signs no list. */
    kurer_cert_body db;
    kurer_cert dev;
    device_body(&db, "anna@mof", 30, KURER_LEVEL_RESTRICTED);
    issue(p, &db, &dev);
    memset(&crl, 0, sizeof(crl));
    crl.version = 1;
    assert_int_equal(kurer_crl_sign(&crl, &p->auth_key, &dev), KURER_EINVAL);
    assert_int_equal(kurer_crl_sign(&crl, &p->auth_key, &p->auth), 0);
    crl.issuer_cert = dev;
    assert_int_equal(kurer_crl_verify(&crl, &p->root), KURER_EROLE);
    kurer_crl_release(&crl);
    assert_int_equal(kurer_trust_crl_count(p->trust), 0);
    /* Versions are monotonic per root as per authority, and the two never mix. */
    make_list(&p->root_key, &p->root, 4, NOW + DAY, s, 1, &b);
    add_list(p, &b);
    make_list(&p->root_key, &p->root, 3, NOW + DAY, NULL, 0, &b);
    assert_int_equal(kurer_trust_add_crl(p->trust, b.data, b.len, NULL), KURER_ESTALE);
    make_list(&p->root_key, &p->root, 4, NOW + DAY, NULL, 0, &b);
    assert_int_equal(kurer_trust_add_crl(p->trust, b.data, b.len, NULL), KURER_ESTALE);
    make_list(&p->auth_key, &p->auth, 1, NOW + DAY, NULL, 0, &b);
    add_list(p, &b);
    assert_int_equal(kurer_trust_crl_count(p->trust), 2);
    kurer_verified v;
    kurer_chain ch = mof_device(p, 31);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), KURER_EREVOKED);
    kurer_buf_release(&b);
}

/* The root's list goes stale like an authority's: every chain under that root warns, then
 * is refused, and so is the authority itself. */
static void test_root_crl_stale(void **state)
{
    pki *p = *state;
    kurer_verified v;
    kurer_buf b;
    const kurer_cert *root;
    kurer_chain ch = mof_device(p, 25);
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    make_list(&p->root_key, &p->root, 1, NOW - DAY, NULL, 0, &b);
    add_list(p, &b);
    make_list(&p->auth_key, &p->auth, 1, NOW - 2 * DAY, NULL, 0, &b);
    add_list(p, &b);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW, &v), 0);
    assert_int_equal(v.crl_stale, KURER_STALE_ROOT_CRL | KURER_STALE_AUTHORITY_CRL);
    assert_int_equal(v.crl_stale_since, NOW - 2 * DAY);
    assert_int_equal(kurer_trust_verify_authority(p->trust, &p->auth, NOW, &root), 0);
    /* The authority's list renewed; the root's past its grace. */
    make_list(&p->auth_key, &p->auth, 2, NOW + 30 * DAY, NULL, 0, &b);
    add_list(p, &b);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW + 6 * DAY, &v), 0);
    assert_int_equal(v.crl_stale, KURER_STALE_ROOT_CRL);
    assert_int_equal(kurer_trust_verify_chain(p->trust, &ch, NOW + 6 * DAY + 1, &v),
                     KURER_ECRLSTALE);
    assert_int_equal(v.crl_stale, KURER_STALE_ROOT_CRL);
    assert_int_equal(v.crl_stale_since, NOW - DAY);
    assert_int_equal(kurer_trust_verify_authority(p->trust, &p->auth, NOW + 6 * DAY + 1, &root),
                     KURER_ECRLSTALE);
    assert_null(root);
    kurer_buf_release(&b);
}

static void test_root_rules(void **state)
{
    pki *p = *state;
    kurer_trust *t;
    kurer_cert bad = p->root;
    assert_int_equal(kurer_trust_new(&t), 0);
    bad.signature[0] ^= 1;
    assert_int_equal(kurer_trust_add_root(t, &bad, NOW), KURER_EBADSIG);
    assert_int_equal(kurer_trust_add_root(t, &p->auth, NOW), KURER_EROLE);
    assert_int_equal(kurer_trust_add_root(t, &p->root, NOW + 400 * DAY), KURER_EEXPIRED);
    assert_int_equal(kurer_trust_add_root(t, &p->root, NOW), 0);
    assert_int_equal(kurer_trust_root_count(t), 1);
    kurer_trust_free(t);
}

static void test_levels(void **state)
{
    (void)state;
    kurer_level l;
    assert_int_equal(kurer_level_parse("restricted", &l), 0);
    assert_int_equal(l, KURER_LEVEL_RESTRICTED);
    assert_int_equal(kurer_level_parse("FORTROLIGT", &l), 0);
    assert_int_equal(l, KURER_LEVEL_CONFIDENTIAL);
    assert_int_equal(kurer_level_parse("SECRET", &l), KURER_ECLEARANCE);
    assert_int_equal(kurer_level_parse("yderst hemmeligt", &l), KURER_ECLEARANCE);
    assert_int_equal(kurer_level_parse("PUBLIC", &l), KURER_EINVAL);
    assert_string_equal(kurer_level_name_da(KURER_LEVEL_RESTRICTED), "TIL TJENESTEBRUG");
    assert_int_equal(kurer_user_check("anna.b@mof"), 0);
    assert_int_equal(kurer_user_check("Anna@mof"), KURER_ESUBJECT);
    assert_int_equal(kurer_user_check("anna@"), KURER_ESUBJECT);
    assert_int_equal(kurer_user_check("@mof"), KURER_ESUBJECT);
    assert_int_equal(kurer_user_check("a@b@c"), KURER_ESUBJECT);
    assert_int_equal(kurer_authority_id_check("-mof"), KURER_ESUBJECT);
}

/* Display names (proto/certmsg.c, on base's UTF-8 decoder): text without C0 or C1 controls. */
static void test_display_names(void **state)
{
    static const char *const bad[] = {"Tab\there",      "del\x7f",      "nel\xc2\x85",
                                      "csi\xc2\x9b",    "over\xc0\xaf", "cut\xe2\x82",
                                      "sur\xed\xa0\x80"};
    kurer_buf out;
    kurer_cert_body b;
    (void)state;
    body_common(&b, KURER_ROLE_ROOT, "root", 1, KURER_LEVEL_CONFIDENTIAL);
    kurer_random(b.signing_key, 32);
    kurer_random(b.issuer_key_id, sizeof(b.issuer_key_id));
    kurer_buf_init(&out, KURER_CERT_MAX);
    assert_int_equal(kurer_cert_body_encode(&b, &out), 0); /* only the name is wrong below */
    kurer_buf_release(&out);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(b.display_name, bad[i]);
        kurer_buf_init(&out, KURER_CERT_MAX);
        assert_int_equal(kurer_cert_body_encode(&b, &out), KURER_EMALFORMED);
        kurer_buf_release(&out);
    }
    memset(b.display_name, 'x', KURER_NAME_MAX);
    b.display_name[KURER_NAME_MAX] = '\0';
    kurer_buf_init(&out, KURER_CERT_MAX);
    assert_int_equal(kurer_cert_body_encode(&b, &out), 0);
    kurer_buf_release(&out);
    strcpy(b.display_name, "Rigsr\xc3\xa5"
                           "d \xf0\x9f\x98\x80 \xc2\xa0");
    kurer_buf_init(&out, KURER_CERT_MAX);
    assert_int_equal(kurer_cert_body_encode(&b, &out), 0);
    kurer_buf_release(&out);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_chain),
        cmocka_unit_test(test_wrong_issuer),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_not_yet_valid),
        cmocka_unit_test(test_clearance_above_issuer),
        cmocka_unit_test(test_device_signed_by_root),
        cmocka_unit_test(test_tampered_tbs),
        cmocka_unit_test(test_tampered_signature),
        cmocka_unit_test(test_revoked_serial),
        cmocka_unit_test(test_crl_replay),
        cmocka_unit_test(test_crl_stale_warning),
        cmocka_unit_test(test_crl_stale_refused),
        cmocka_unit_test(test_crl_grace_policy),
        cmocka_unit_test(test_crl_no_next_update),
        cmocka_unit_test(test_root_crl_revokes_authority),
        cmocka_unit_test(test_root_crl_rules),
        cmocka_unit_test(test_root_crl_stale),
        cmocka_unit_test(test_root_rules),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_display_names),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
