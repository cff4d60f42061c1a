/* The issuance policy (admin/issuance.c): each rule of a request that is not issuable, with its
 * exact error and rule; what an issuable one becomes; the serial reservation and the signing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/cert.h"
#include "kurer/crypto.h"
#include "kurer/csr.h"
#include "kurer/issuance.h"
#include "kurer/signal.h"

#define NOW ((int64_t)1767225600) /* 2026-01-01 */
#define DAY ((int64_t)86400)

static kurer_signing_key root_key, auth_key;
static kurer_cert root, auth;
static kurer_issuelog log_;
static kurer_buf log_img;
static kurer_serial_state st;

static void cert_body(kurer_cert_body *b, kurer_role role, const char *subject, uint64_t serial,
                      const uint8_t pk[32])
{
    memset(b, 0, sizeof(*b));
    b->version = 1;
    b->serial = serial;
    b->role = role;
    strcpy(b->subject, subject);
    strcpy(b->display_name, "Test");
    b->clearance = role == KURER_ROLE_ROOT ? KURER_LEVEL_CONFIDENTIAL : KURER_LEVEL_RESTRICTED;
    b->not_before = NOW - DAY;
    b->not_after = NOW + 365 * DAY;
    memcpy(b->signing_key, pk, 32);
}

static int setup(void **state)
{
    kurer_cert_body b;
    (void)state;
    assert_int_equal(kurer_signing_key_generate(&root_key), 0);
    assert_int_equal(kurer_signing_key_generate(&auth_key), 0);
    cert_body(&b, KURER_ROLE_ROOT, "root", 1, root_key.pk);
    assert_int_equal(kurer_cert_sign(&b, &root_key, &root), 0);
    cert_body(&b, KURER_ROLE_AUTHORITY, "fm.dk", 2, auth_key.pk);
    assert_int_equal(kurer_cert_sign(&b, &root_key, &auth), 0);
    kurer_buf_init(&log_img, KURER_LOG_FILE_MAX);
    assert_int_equal(kurer_issuelog_init(&log_, auth_key.pk, &log_img), 0);
    st.next_serial = 1;
    st.log_entries = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kurer_issuelog_release(&log_);
    kurer_buf_release(&log_img);
    kurer_signing_key_release(&root_key);
    kurer_signing_key_release(&auth_key);
    return 0;
}

/* A request of subject/device, signed with a new identity key (kept in id_priv) or, when
 * keys_of is given, with its keys. */
typedef struct keys {
    uint8_t id_pub[33], id_priv[32], noise[32];
} keys;

static void new_keys(keys *k)
{
    uint8_t sk[32];
    assert_int_equal(kurer_identity_generate(k->id_pub, k->id_priv), 0);
    kurer_x25519_generate(k->noise, sk);
}

static void request(kurer_csr *csr, const char *subject, uint32_t device, const keys *k,
                    int64_t created)
{
    kurer_csr_body b;
    memset(&b, 0, sizeof(b));
    b.version = 1;
    strcpy(b.subject, subject);
    b.device_id = device;
    strcpy(b.display_name, "Alice");
    memcpy(b.identity_key, k->id_pub, 33);
    memcpy(b.noise_key, k->noise, 32);
    b.created_at = created;
    assert_int_equal(kurer_csr_sign(&b, k->id_priv, csr), 0);
}

static const kurer_issuance_params defaults = {NOW, 365, KURER_LEVEL_UNCLASSIFIED, 0, 0};

static int check(const kurer_cert *issuer, const kurer_csr *csr, const kurer_issuance_params *p,
                 kurer_issuance_refusal *why)
{
    kurer_cert_body body;
    int clamped;
    return kurer_issuance_check(issuer, &log_, csr, p, &body, &clamped, why);
}

/* Steps 1 to 5 for csr: the log records the new certificate; its serial is returned. */
static uint64_t issue(const kurer_csr *csr)
{
    kurer_cert_body body;
    kurer_issuance_refusal why;
    kurer_chain chain;
    kurer_log_entry e;
    uint64_t serial;
    int clamped;
    assert_int_equal(kurer_issuance_check(&auth, &log_, csr, &defaults, &body, &clamped, &why), 0);
    assert_int_equal(kurer_issuance_reserve(&st, &log_, &serial), 0);
    assert_int_equal(kurer_issuance_sign(&body, serial, &auth_key, &auth, NOW, &chain), 0);
    kurer_log_entry_for_cert(&e, &chain.certs[0], NOW);
    assert_int_equal(kurer_issuelog_append(&log_, &e, &auth_key, &log_img), 0);
    st.log_entries = log_.n;
    return serial;
}

static void revoke_serial(uint64_t serial, kurer_revocation_reason reason)
{
    kurer_log_entry e;
    const kurer_log_entry *issued = kurer_issuelog_find_serial(&log_, serial);
    assert_non_null(issued);
    kurer_log_entry_for_revocation(&e, issued, reason, NOW);
    assert_int_equal(kurer_issuelog_append(&log_, &e, &auth_key, &log_img), 0);
}

static void expect(int rc, kurer_issuance_rule rule, int want_rc, const kurer_issuance_refusal *why)
{
    assert_int_equal(rc, want_rc);
    assert_int_equal(why->rule, rule);
}

static void test_issuable(void **state)
{
    kurer_csr csr;
    kurer_cert_body body;
    kurer_issuance_refusal why;
    keys k;
    int clamped = -1;
    (void)state;
    new_keys(&k);
    request(&csr, "alice@fm.dk", 7, &k, NOW);
    assert_int_equal(kurer_issuance_check(&auth, &log_, &csr, &defaults, &body, &clamped, &why), 0);
    assert_int_equal(why.rule, KURER_ISSUANCE_OK);
    assert_int_equal(body.role, KURER_ROLE_DEVICE);
    assert_int_equal(body.serial, 0);
    assert_string_equal(body.subject, "alice@fm.dk");
    assert_int_equal(body.device_id, 7);
    assert_int_equal(body.clearance, KURER_LEVEL_RESTRICTED); /* the authority's */
    assert_int_equal(body.not_before, NOW - KURER_ISSUANCE_SKEW);
    assert_int_equal(body.not_after, NOW + 365 * DAY);
    assert_int_equal(clamped, 0);
    assert_memory_equal(body.identity_key, k.id_pub, 33);
    /* Longer than the authority: cut to its expiry. A lower clearance as asked. */
    kurer_issuance_params p = {NOW, 400, KURER_LEVEL_UNCLASSIFIED, 1, 0};
    assert_int_equal(kurer_issuance_check(&auth, &log_, &csr, &p, &body, &clamped, &why), 0);
    assert_int_equal(body.not_after, auth.body.not_after);
    assert_int_equal(clamped, 1);
    assert_int_equal(body.clearance, KURER_LEVEL_UNCLASSIFIED);
    /* Dated up to the skew ahead: fine. */
    request(&csr, "alice@fm.dk", 7, &k, NOW + KURER_ISSUANCE_SKEW);
    assert_int_equal(check(&auth, &csr, &defaults, &why), 0);
}

static void test_refuses_issuer(void **state)
{
    kurer_csr csr;
    kurer_issuance_refusal why;
    keys k;
    (void)state;
    new_keys(&k);
    request(&csr, "alice@root", 1, &k, NOW);
    expect(check(&root, &csr, &defaults, &why), KURER_ISSUANCE_AUTHORITY, KURER_EROLE, &why);
    request(&csr, "alice@fm.dk", 1, &k, NOW);
    kurer_issuance_params later = defaults;
    later.now = NOW + 400 * DAY;
    expect(check(&auth, &csr, &later, &why), KURER_ISSUANCE_AUTHORITY, KURER_EEXPIRED, &why);
    kurer_issuance_params zero = defaults;
    zero.days = 0;
    expect(check(&auth, &csr, &zero, &why), KURER_ISSUANCE_PARAMS, KURER_EINVAL, &why);
}

static void test_refuses_signature(void **state)
{
    kurer_csr csr;
    kurer_issuance_refusal why;
    keys k;
    (void)state;
    new_keys(&k);
    request(&csr, "alice@fm.dk", 1, &k, NOW);
    csr.signature[5] ^= 1;
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_SIGNATURE, KURER_EBADSIG, &why);
}

static void test_refuses_subject(void **state)
{
    kurer_csr csr;
    kurer_issuance_refusal why;
    keys k;
    (void)state;
    new_keys(&k);
    request(&csr, "bob@sk.dk", 1, &k, NOW);
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_SUBJECT, KURER_ESUBJECT, &why);
    request(&csr, "bob@fm.dk.evil", 1, &k, NOW);
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_SUBJECT, KURER_ESUBJECT, &why);
}

static void test_refuses_device_id(void **state)
{
    kurer_csr csr;
    kurer_issuance_refusal why;
    keys k;
    (void)state;
    new_keys(&k);
    /* A request held in memory (online enrolment) is not one the decoder checked. */
    request(&csr, "alice@fm.dk", 1, &k, NOW);
    csr.body.device_id = 0;
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_DEVICE_ID, KURER_EINVAL, &why);
    csr.body.device_id = KURER_DEVICE_ID_MAX + 1u;
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_DEVICE_ID, KURER_EINVAL, &why);
}

static void test_refuses_future(void **state)
{
    kurer_csr csr;
    kurer_issuance_refusal why;
    keys k;
    (void)state;
    new_keys(&k);
    request(&csr, "alice@fm.dk", 1, &k, NOW + KURER_ISSUANCE_SKEW + 1);
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_DATE, KURER_ENOTYETVALID, &why);
}

static void test_refuses_noise_key(void **state)
{
    kurer_csr csr;
    kurer_issuance_refusal why;
    keys k;
    (void)state;
    new_keys(&k);
    memcpy(k.noise, k.id_pub + 1, 32);
    request(&csr, "alice@fm.dk", 1, &k, NOW);
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_NOISE_KEY, KURER_EBADKEY, &why);
    new_keys(&k);
    request(&csr, "alice@fm.dk", 1, &k, NOW);
    memset(csr.body.noise_key, 0, 32);
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_NOISE_KEY, KURER_EBADKEY, &why);
}

static void test_refuses_clearance(void **state)
{
    kurer_csr csr;
    kurer_issuance_refusal why;
    keys k;
    (void)state;
    new_keys(&k);
    request(&csr, "alice@fm.dk", 1, &k, NOW);
    kurer_issuance_params p = {NOW, 365, KURER_LEVEL_CONFIDENTIAL, 1, 0};
    expect(check(&auth, &csr, &p, &why), KURER_ISSUANCE_CLEARANCE, KURER_ECLEARANCE, &why);
}

static void test_refuses_revoked_keys(void **state)
{
    kurer_csr csr;
    kurer_issuance_refusal why;
    keys k, k2;
    (void)state;
    new_keys(&k);
    request(&csr, "carol@fm.dk", 1, &k, NOW);
    uint64_t serial = issue(&csr);
    /* A renewal for the same device and keys is fine while the certificate stands (as a
     * replacement: one device id, one valid certificate). */
    kurer_issuance_params renew = defaults;
    renew.replace = 1;
    assert_int_equal(check(&auth, &csr, &renew, &why), 0);
    revoke_serial(serial, KURER_REASON_DEVICE_LOST);
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_KEY_REVOKED, KURER_EREVOKED, &why);
    assert_non_null(why.entry);
    assert_int_equal(why.entry->kind, KURER_LOGK_REVOKE);
    assert_int_equal(why.entry->serial, serial);
    /* Only the Noise key of the revoked certificate: refused too. */
    new_keys(&k2);
    memcpy(k2.noise, k.noise, 32);
    request(&csr, "carol@fm.dk", 1, &k2, NOW);
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_KEY_REVOKED, KURER_EREVOKED, &why);
    /* Superseded: the keys are still the device's own. */
    new_keys(&k);
    request(&csr, "dan@fm.dk", 1, &k, NOW);
    revoke_serial(issue(&csr), KURER_REASON_SUPERSEDED);
    assert_int_equal(check(&auth, &csr, &defaults, &why), 0);
}

static void test_refuses_shared_keys(void **state)
{
    kurer_csr csr;
    kurer_issuance_refusal why;
    keys k;
    (void)state;
    new_keys(&k);
    request(&csr, "dave@fm.dk", 1, &k, NOW);
    uint64_t serial = issue(&csr);
    request(&csr, "erin@fm.dk", 1, &k, NOW);
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_KEY_SHARED, KURER_EDUPLICATE, &why);
    assert_int_equal(why.entry->serial, serial);
    assert_string_equal(why.entry->subject, "dave@fm.dk");
    /* Another device of the same user is another device. */
    request(&csr, "dave@fm.dk", 2, &k, NOW);
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_KEY_SHARED, KURER_EDUPLICATE, &why);
    /* The same device may have its own keys certified again, replacing its certificate. */
    request(&csr, "dave@fm.dk", 1, &k, NOW);
    kurer_issuance_params renew = defaults;
    renew.replace = 1;
    assert_int_equal(check(&auth, &csr, &renew, &why), 0);
}

/* One device id, one valid certificate: the same request twice, other keys for a device id in
 * use, --replace, and --replace with nothing to replace. */
static void test_device_id_taken(void **state)
{
    kurer_csr csr, again, other;
    kurer_issuance_refusal why;
    const kurer_log_entry *cur[2];
    keys k, k2;
    (void)state;
    new_keys(&k);
    new_keys(&k2);
    request(&csr, "hugo@fm.dk", 4, &k, NOW);
    kurer_issuance_params replace = defaults;
    replace.replace = 1;
    /* Nothing to replace yet. */
    expect(check(&auth, &csr, &replace, &why), KURER_ISSUANCE_NOTHING_TO_REPLACE, KURER_ENOTFOUND,
           &why);
    uint64_t serial = issue(&csr);
    assert_int_equal(kurer_issuance_current(&log_, "hugo@fm.dk", 4, NOW, cur, 2), 1);
    assert_int_equal(cur[0]->serial, serial);
    /* The same request again (or another request of the same keys): refused, naming it. */
    request(&again, "hugo@fm.dk", 4, &k, NOW + 1);
    expect(check(&auth, &csr, &defaults, &why), KURER_ISSUANCE_REPEATED, KURER_EEXIST, &why);
    assert_int_equal(why.entry->serial, serial);
    expect(check(&auth, &again, &defaults, &why), KURER_ISSUANCE_REPEATED, KURER_EEXIST, &why);
    /* Other keys for the same device id: refused, naming it, unless replace. */
    request(&other, "hugo@fm.dk", 4, &k2, NOW);
    expect(check(&auth, &other, &defaults, &why), KURER_ISSUANCE_DEVICE_TAKEN, KURER_EEXIST, &why);
    assert_int_equal(why.entry->serial, serial);
    assert_int_equal(check(&auth, &other, &replace, &why), 0);
    /* Another device id of the same user, or the same id of another user, is free. */
    assert_int_equal(kurer_issuance_current(&log_, "hugo@fm.dk", 5, NOW, cur, 2), 0);
    assert_int_equal(kurer_issuance_current(&log_, "hugh@fm.dk", 4, NOW, cur, 2), 0);
    /* Revoked (as --replace does), the id is free again and the new keys issuable. */
    revoke_serial(serial, KURER_REASON_SUPERSEDED);
    assert_int_equal(kurer_issuance_current(&log_, "hugo@fm.dk", 4, NOW, cur, 2), 0);
    assert_int_equal(check(&auth, &other, &defaults, &why), 0);
    uint64_t second = issue(&other);
    assert_int_equal(kurer_issuance_current(&log_, "hugo@fm.dk", 4, NOW, cur, 2), 1);
    assert_int_equal(cur[0]->serial, second);
    /* Expired certificates do not hold the id. */
    assert_int_equal(kurer_issuance_current(&log_, "hugo@fm.dk", 4, NOW + 366 * DAY, cur, 2), 0);
}

static void test_reserve(void **state)
{
    kurer_issuelog empty;
    kurer_buf img;
    uint64_t serial = 99;
    (void)state;
    kurer_buf_init(&img, KURER_LOG_FILE_MAX);
    assert_int_equal(kurer_issuelog_init(&empty, auth_key.pk, &img), 0);
    kurer_serial_state s = {5, 0};
    assert_int_equal(kurer_issuance_reserve(&s, &empty, &serial), 0);
    assert_int_equal(serial, 5);
    assert_int_equal(s.next_serial, 6);
    assert_int_equal(s.log_entries, 0);
    /* Exhausted, or behind the log: refused, the state as it was. */
    s.next_serial = UINT64_MAX;
    assert_int_equal(kurer_issuance_reserve(&s, &empty, &serial), KURER_ELIMIT);
    assert_int_equal(s.next_serial, UINT64_MAX);
    assert_int_equal(serial, 0);
    kurer_csr csr;
    keys k;
    new_keys(&k);
    request(&csr, "frank@fm.dk", 1, &k, NOW);
    uint64_t used = issue(&csr);
    s.next_serial = used;
    assert_int_equal(kurer_issuance_reserve(&s, &log_, &serial), KURER_ECORRUPT);
    assert_int_equal(s.next_serial, used);
    s.next_serial = used + 1;
    assert_int_equal(kurer_issuance_reserve(&s, &log_, &serial), 0);
    assert_int_equal(s.log_entries, log_.n);
    kurer_issuelog_release(&empty);
    kurer_buf_release(&img);
}

static void test_sign(void **state)
{
    kurer_csr csr;
    kurer_cert_body body;
    kurer_issuance_refusal why;
    kurer_chain chain;
    keys k;
    int clamped;
    (void)state;
    new_keys(&k);
    request(&csr, "gina@fm.dk", 3, &k, NOW);
    assert_int_equal(kurer_issuance_check(&auth, &log_, &csr, &defaults, &body, &clamped, &why), 0);
    assert_int_equal(kurer_issuance_sign(&body, 42, &root_key, &auth, NOW, &chain),
                     KURER_EKEYMISMATCH);
    assert_int_equal(chain.n, 0);
    assert_int_equal(kurer_issuance_sign(&body, 42, &auth_key, &auth, NOW, &chain), 0);
    assert_int_equal(chain.n, 2);
    assert_int_equal(chain.certs[0].body.serial, 42);
    assert_int_equal(kurer_device_check(&chain.certs[0], &auth, NOW), 0);
    assert_memory_equal(chain.certs[1].tbs, auth.tbs, auth.tbs_len);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issuable),
        cmocka_unit_test(test_refuses_issuer),
        cmocka_unit_test(test_refuses_signature),
        cmocka_unit_test(test_refuses_subject),
        cmocka_unit_test(test_refuses_device_id),
        cmocka_unit_test(test_refuses_future),
        cmocka_unit_test(test_refuses_noise_key),
        cmocka_unit_test(test_refuses_clearance),
        cmocka_unit_test(test_refuses_revoked_keys),
        cmocka_unit_test(test_refuses_shared_keys),
        cmocka_unit_test(test_device_id_taken),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_sign),
    };
    if (kurer_crypto_init() != 0)
        return 1;
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
