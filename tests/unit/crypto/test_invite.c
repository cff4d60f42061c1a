/* Invitation codes (crypto/invite.c): known answers computed once outside our code (Python's
 * hashlib, for the secret bytes 1..10), typing forgiveness, mistypes told apart, and the
 * signatures of invitations and administrators' proofs. The Python:
 *   a = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; s = bytes(range(1, 11))
 *   16 digits of 5 bits of s, then a[blake2b(b"kurer invite check v1\0" + s)[0] & 31]
 *   H(l) = blake2b(l + b"\0" + s, digest_size=32): id = H(b"kurer invite id v1")[:16], ...
 *   macs: blake2b(label + b"\0" + id + data, key=..., digest_size=32) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/crypto.h"
#include "kurer/invite.h"
#include "kurer/util.h"

static void hex_is(const uint8_t *p, size_t n, const char *want)
{
    char h[129];
    kurer_hex_encode(h, p, n);
    assert_string_equal(h, want);
}

static void test_vectors(void **state)
{
    uint8_t s[KURER_INVITE_SECRET_LEN], mac[32];
    kurer_invite_keys k, k2;
    char canon[KURER_INVITE_CODE_LEN + 1];
    (void)state;
    for (int i = 0; i < 10; i++)
        s[i] = (uint8_t)(i + 1);
    kurer_invite_derive(s, &k);
    hex_is(k.id, 16, "5aa796d9ab8f0f6db86fd06dd83ba660");
    hex_is(k.verifier, 32, "5b8ddc6f83bfe2cdbda2dc6cf94b25795084f667daa273f26e71b2dc2aa7ce8c");
    hex_is(k.authority_key, 32, "1ef14c2e740177b8710db6af80bcfa701315343c0e3d8dc4a9a0e32f951e18df");
    kurer_invite_relay_mac(k.verifier, k.id, (const uint8_t *)"request", 7, mac);
    hex_is(mac, 32, "b18223965ccd312547431c5f9895ef9f3e804dcaf733b9637e338e4d31cdf4bc");
    kurer_invite_authority_mac(k.authority_key, k.id, (const uint8_t *)"request", 7, mac);
    hex_is(mac, 32, "e0e2d342d3c59285fa8b44062eed60496f3e7650ffffc3aefbcc30e1ea52de67");
    kurer_invite_poll_proof(k.verifier, k.id, mac);
    hex_is(mac, 32, "928e0a28da1552857f118ec976da1f7b3d50d9a42ebb0e734bdaf5d0e96cd8dc");
    /* the code of those bytes, and the same keys from it */
    assert_int_equal(kurer_invite_parse("0410-6105-0R3G-G28A-W", canon, &k2), 0);
    assert_string_equal(canon, "0410-6105-0R3G-G28A-W");
    assert_memory_equal(&k, &k2, sizeof(k));
}

static void test_typing(void **state)
{
    kurer_invite_keys k;
    char canon[KURER_INVITE_CODE_LEN + 1];
    (void)state;
    /* lower case, O for 0, I and L for 1, spaces instead of dashes */
    assert_int_equal(kurer_invite_parse("o4io 6lo5 or3g g28a w", canon, &k), 0);
    assert_string_equal(canon, "0410-6105-0R3G-G28A-W");
    /* one character changed: the check character says so (for this one it does) */
    assert_int_equal(kurer_invite_parse("0410-6105-0R3G-G28B-W", canon, &k), KURER_ECHECKDIGIT);
    assert_int_equal(kurer_invite_parse("0410-6105-0R3G-G28A-X", canon, &k), KURER_ECHECKDIGIT);
    /* not a code at all */
    assert_int_equal(kurer_invite_parse("0410-6105-0R3G-G28A", canon, &k), KURER_EINVAL);
    assert_int_equal(kurer_invite_parse("0410-6105-0R3G-G28A-WW", canon, &k), KURER_EINVAL);
    assert_int_equal(kurer_invite_parse("0410-6105-0R3G-G28U-W", canon, &k), KURER_EINVAL);
    assert_int_equal(kurer_invite_parse("", canon, &k), KURER_EINVAL);
}

static void test_random_codes(void **state)
{
    kurer_invite_keys k, k2;
    char code[KURER_INVITE_CODE_LEN + 1], canon[KURER_INVITE_CODE_LEN + 1];
    char other[KURER_INVITE_CODE_LEN + 1];
    (void)state;
    kurer_invite_new(other, &k2);
    for (int i = 0; i < 200; i++) {
        kurer_invite_new(code, &k);
        assert_int_equal(strlen(code), KURER_INVITE_CODE_LEN);
        assert_int_equal(kurer_invite_parse(code, canon, &k2), 0);
        assert_string_equal(canon, code);
        assert_memory_equal(&k, &k2, sizeof(k));
    }
    assert_string_not_equal(code, other);
}

static void test_signatures(void **state)
{
    kurer_signing_key key, other;
    kurer_enrol_invitation inv;
    kurer_enrol_request *r = calloc(1, sizeof(*r));
    (void)state;
    assert_non_null(r);
    assert_int_equal(kurer_signing_key_generate(&key), 0);
    assert_int_equal(kurer_signing_key_generate(&other), 0);
    memset(&inv, 0, sizeof(inv));
    strcpy(inv.user, "anna@fm.dk");
    inv.device_id = 3;
    inv.created_at = 1000;
    inv.expires_at = 2000;
    assert_int_equal(kurer_invite_sign(&inv, &key), 0);
    assert_int_equal(kurer_invite_verify(&inv, key.pk), 0);
    assert_int_equal(kurer_invite_verify(&inv, other.pk), KURER_EBADSIG);
    inv.device_id = 4; /* every field is covered */
    assert_int_equal(kurer_invite_verify(&inv, key.pk), KURER_EBADSIG);
    inv.device_id = 3;
    inv.expires_at++;
    assert_int_equal(kurer_invite_verify(&inv, key.pk), KURER_EBADSIG);
    /* a proof for a decision covers the id, the decision and the chain */
    r->body = KURER_ENROL_DECIDE;
    r->approve = 1;
    memcpy(r->chain, "chain", 5);
    r->chain_len = 5;
    assert_int_equal(kurer_enrol_proof_sign(r, 12345, &key), 0);
    assert_int_equal(kurer_enrol_proof_verify(r, key.pk), 0);
    r->chain[0] ^= 1;
    assert_int_equal(kurer_enrol_proof_verify(r, key.pk), KURER_EBADSIG);
    r->chain[0] ^= 1;
    r->approve = 0;
    assert_int_equal(kurer_enrol_proof_verify(r, key.pk), KURER_EBADSIG);
    r->approve = 1;
    r->auth.time++;
    assert_int_equal(kurer_enrol_proof_verify(r, key.pk), KURER_EBADSIG);
    /* a list proof is not a decide proof */
    r->auth.time--;
    r->body = KURER_ENROL_LIST;
    assert_int_equal(kurer_enrol_proof_verify(r, key.pk), KURER_EBADSIG);
    kurer_signing_key_release(&key);
    kurer_signing_key_release(&other);
    free(r);
}

int main(void)
{
    if (kurer_crypto_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors), cmocka_unit_test(test_typing),
        cmocka_unit_test(test_random_codes), cmocka_unit_test(test_signatures)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
