#include "fuzz_pki.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"

/* The public API has no way to make a signing key from a seed (production keys are random), so
 * this test helper asks libsodium directly, as tests/unit/crypto/test_signal.c does. */
#include <sodium.h>

void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

static void seed_key(kurer_signing_key *k, uint8_t tag)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(k, 0, sizeof(*k));
    memset(seed, tag, sizeof(seed));
    k->sk = kurer_secure_alloc(crypto_sign_SECRETKEYBYTES);
    fuzz_check(k->sk != NULL);
    fuzz_check(crypto_sign_seed_keypair(k->pk, k->sk, seed) == 0);
}

void fuzz_body(kurer_cert_body *b, kurer_role role, const char *subject, uint64_t serial,
               kurer_level level)
{
    memset(b, 0, sizeof(*b));
    b->version = 1;
    b->serial = serial;
    b->role = role;
    fuzz_check(strlen(subject) <= KURER_SUBJECT_MAX);
    memcpy(b->subject, subject, strlen(subject) + 1);
    memcpy(b->display_name, "Fuzz", 5);
    b->clearance = level;
    b->not_before = FUZZ_NOW - FUZZ_DAY;
    b->not_after = FUZZ_NOW + 365 * FUZZ_DAY;
}

void fuzz_device_body(kurer_cert_body *b, const char *user, uint32_t device_id, uint64_t serial,
                      kurer_level level)
{
    fuzz_body(b, KURER_ROLE_DEVICE, user, serial, level);
    b->device_id = device_id;
    b->identity_key[0] = 0x05;
    memset(b->identity_key + 1, (int)(0x40 + (serial & 0x3f)), 32);
    memset(b->noise_key, (int)(0x80 + (serial & 0x3f)), 32);
}

void fuzz_sign(kurer_cert_body *b, const kurer_signing_key *key, kurer_cert *out)
{
    fuzz_check(kurer_cert_sign(b, key, out) == 0);
}

static void make_root(kurer_signing_key *k, kurer_cert *c, const char *name, uint8_t tag)
{
    kurer_cert_body b;
    seed_key(k, tag);
    fuzz_body(&b, KURER_ROLE_ROOT, name, 1, KURER_LEVEL_CONFIDENTIAL);
    memcpy(b.signing_key, k->pk, 32);
    fuzz_sign(&b, k, c);
}

static void make_authority(kurer_signing_key *k, kurer_cert *c, const char *id, uint64_t serial,
                           kurer_level level, const kurer_signing_key *root, uint8_t tag)
{
    kurer_cert_body b;
    seed_key(k, tag);
    fuzz_body(&b, KURER_ROLE_AUTHORITY, id, serial, level);
    memcpy(b.signing_key, k->pk, 32);
    fuzz_sign(&b, root, c);
}

void fuzz_crl(kurer_buf *out, const kurer_signing_key *key, const kurer_cert *cert,
              uint64_t version, int64_t next_update, const uint64_t *serials, size_t n)
{
    kurer_crl crl;
    kurer_buf tbs;
    memset(&crl, 0, sizeof(crl));
    fuzz_check(strlen(cert->body.subject) < sizeof(crl.issuer));
    memcpy(crl.issuer, cert->body.subject, strlen(cert->body.subject) + 1);
    kurer_cert_key_id(cert, crl.issuer_key_id);
    crl.version = version;
    crl.issued_at = FUZZ_NOW - 3600;
    crl.next_update = next_update;
    crl.issuer_cert = *cert;
    if (n > 0) {
        crl.revoked = calloc(n, sizeof(*crl.revoked));
        fuzz_check(crl.revoked != NULL);
        for (size_t i = 0; i < n; i++) {
            crl.revoked[i].serial = serials[i];
            crl.revoked[i].revoked_at = FUZZ_NOW - 7200;
            crl.revoked[i].reason = (kurer_revocation_reason)(i % 5);
        }
        crl.n_revoked = n;
    }
    kurer_buf_init(&tbs, KURER_CRL_BYTES_MAX);
    fuzz_check(kurer_crl_body_encode(&crl, &tbs) == 0);
    crl.tbs = kurer_buf_steal(&tbs, &crl.tbs_len);
    fuzz_check(crl.tbs != NULL);
    fuzz_check(kurer_sign(key, crl.tbs, crl.tbs_len, crl.signature) == 0);
    fuzz_check(kurer_crl_encode(&crl, out) == 0);
    kurer_crl_release(&crl);
}

void fuzz_pki_init(fuzz_pki *p)
{
    static const uint64_t revoked[] = {FUZZ_REVOKED_SERIAL};
    kurer_cert_body b;
    memset(p, 0, sizeof(*p));
    fuzz_check(kurer_crypto_init() == 0);
    make_root(&p->root_key, &p->root, "dk", 0x01);
    make_authority(&p->auth_key, &p->auth, "mof", FUZZ_AUTH_SERIAL, KURER_LEVEL_RESTRICTED,
                   &p->root_key, 0x02);
    make_authority(&p->other_auth_key, &p->other_auth, "mod", 101, KURER_LEVEL_CONFIDENTIAL,
                   &p->root_key, 0x03);
    seed_key(&p->old_auth_key, 0x04);
    fuzz_body(&b, KURER_ROLE_AUTHORITY, "old", 102, KURER_LEVEL_RESTRICTED);
    b.not_before = FUZZ_NOW - 400 * FUZZ_DAY;
    b.not_after = FUZZ_NOW - 35 * FUZZ_DAY;
    memcpy(b.signing_key, p->old_auth_key.pk, 32);
    fuzz_sign(&b, &p->root_key, &p->old_auth);
    make_root(&p->stranger_root_key, &p->stranger_root, "elsewhere", 0x05);
    make_authority(&p->stranger_auth_key, &p->stranger_auth, "far", 200, KURER_LEVEL_RESTRICTED,
                   &p->stranger_root_key, 0x06);

    fuzz_device_body(&b, "anna@mof", 1, FUZZ_DEVICE_SERIAL, KURER_LEVEL_RESTRICTED);
    fuzz_sign(&b, &p->auth_key, &p->device);
    p->chain.certs[0] = p->device;
    p->chain.certs[1] = p->auth;
    p->chain.n = 2;

    kurer_buf_init(&p->crl_v1, KURER_CRL_BYTES_MAX);
    fuzz_crl(&p->crl_v1, &p->auth_key, &p->auth, 1, 0, revoked, 1);
    fuzz_check(kurer_trust_new(&p->trust) == 0);
    fuzz_check(kurer_trust_add_root(p->trust, &p->root, FUZZ_NOW) == 0);
    fuzz_check(kurer_trust_add_crl(p->trust, p->crl_v1.data, p->crl_v1.len, NULL) == 0);
}

void fuzz_pki_free(fuzz_pki *p)
{
    kurer_signing_key_release(&p->root_key);
    kurer_signing_key_release(&p->auth_key);
    kurer_signing_key_release(&p->other_auth_key);
    kurer_signing_key_release(&p->old_auth_key);
    kurer_signing_key_release(&p->stranger_root_key);
    kurer_signing_key_release(&p->stranger_auth_key);
    kurer_buf_release(&p->crl_v1);
    kurer_trust_free(p->trust);
    memset(p, 0, sizeof(*p));
}
