/* Writes the seed inputs of fuzz_handshake and fuzz_crl, signed by the fixed test PKI of
 * fuzz_pki.h: fuzz_seeds DIR writes DIR/handshake/<name> and DIR/crl/<name> (the folders must
 * exist), and prints what the target's checks make of each (OK or the error name), so that one
 * can see which paths the seeds reach. The output is the same on every run. The committed corpora
 * started from these seeds and were minimised with libFuzzer's -merge=1 (tests/fuzz/README.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_pki.h"
#include "kurer/frame.h"

static const char *out_dir;
static fuzz_pki *pki;

/* What fuzz_handshake's verification and fuzz_crl's store make of a seed. */
static int outcome(const char *target, const kurer_buf *b)
{
    if (strcmp(target, "handshake") == 0) {
        static kurer_handshake_init hi;
        kurer_handshake_accept a;
        kurer_verified v;
        int rc = kurer_handshake_init_decode(b->data, b->len, &hi);
        if (rc == 0)
            return kurer_trust_verify_chain(pki->trust, &hi.chain, FUZZ_NOW, &v);
        rc = kurer_handshake_accept_decode(b->data, b->len, &a);
        return rc != 0 ? rc : a.has_error ? a.error_code : 0;
    } else {
        kurer_trust *t;
        int rc;
        fuzz_check(kurer_trust_new(&t) == 0);
        fuzz_check(kurer_trust_add_root(t, &pki->root, FUZZ_NOW) == 0);
        if (b->len != pki->crl_v1.len || memcmp(b->data, pki->crl_v1.data, b->len) != 0)
            fuzz_check(kurer_trust_add_crl(t, pki->crl_v1.data, pki->crl_v1.len, NULL) == 0);
        rc = kurer_trust_add_crl(t, b->data, b->len, NULL);
        kurer_trust_free(t);
        return rc;
    }
}

static void put(const char *target, const char *name, const kurer_buf *b)
{
    char path[4096];
    FILE *f;
    int rc;
    fuzz_check(snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name) < (int)sizeof(path));
    f = fopen(path, "wb");
    if (f == NULL || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    rc = outcome(target, b);
    printf("%s/%s: %s\n", target, name, rc == 0 ? "OK" : kurer_err_name(rc));
}

static void put_chain(const char *name, const kurer_cert *c0, const kurer_cert *c1,
                      const kurer_cert *c2)
{
    kurer_handshake_init hi;
    kurer_buf b;
    memset(&hi, 0, sizeof(hi));
    hi.protocol_version = KURER_PROTOCOL_VERSION;
    hi.chain.certs[hi.chain.n++] = *c0;
    if (c1 != NULL)
        hi.chain.certs[hi.chain.n++] = *c1;
    if (c2 != NULL)
        hi.chain.certs[hi.chain.n++] = *c2;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    fuzz_check(kurer_handshake_init_encode(&hi, &b) == 0);
    put("handshake", name, &b);
    kurer_buf_release(&b);
}

static void put_accept(const char *name, int code, const char *message)
{
    kurer_handshake_accept a;
    kurer_buf b;
    memset(&a, 0, sizeof(a));
    a.protocol_version = KURER_PROTOCOL_VERSION;
    if (code != 0) {
        a.has_error = 1;
        a.error_code = code;
        memcpy(a.error_message, message, strlen(message) + 1);
    } else {
        a.server_time = FUZZ_NOW * 1000 + 123;
        a.queued = 42;
    }
    kurer_buf_init(&b, KURER_FRAME_MAX);
    fuzz_check(kurer_handshake_accept_encode(&a, &b) == 0);
    put("handshake", name, &b);
    kurer_buf_release(&b);
}

static void device(fuzz_pki *p, kurer_cert *out, const char *user, uint64_t serial,
                   kurer_level level, const kurer_signing_key *key)
{
    kurer_cert_body b;
    fuzz_device_body(&b, user, 1, serial, level);
    fuzz_sign(&b, key != NULL ? key : &p->auth_key, out);
}

static void handshake_seeds(fuzz_pki *p)
{
    kurer_cert_body b;
    kurer_cert revoked, expired, early, high, other, old, far, by_root, bad_sig;

    put_chain("init_valid", &p->device, &p->auth, NULL);
    device(p, &revoked, "bo@mof", FUZZ_REVOKED_SERIAL, KURER_LEVEL_RESTRICTED, NULL);
    put_chain("init_revoked", &revoked, &p->auth, NULL);
    fuzz_device_body(&b, "cai@mof", 2, 9, KURER_LEVEL_UNCLASSIFIED);
    b.not_before = FUZZ_NOW - 30 * FUZZ_DAY;
    b.not_after = FUZZ_NOW - FUZZ_DAY;
    fuzz_sign(&b, &p->auth_key, &expired);
    put_chain("init_expired", &expired, &p->auth, NULL);
    fuzz_device_body(&b, "dina@mof", 3, 10, KURER_LEVEL_RESTRICTED);
    b.not_before = FUZZ_NOW + FUZZ_DAY;
    fuzz_sign(&b, &p->auth_key, &early);
    put_chain("init_not_yet_valid", &early, &p->auth, NULL);
    device(p, &high, "eva@mof", 11, KURER_LEVEL_CONFIDENTIAL, NULL); /* above mof's clearance */
    put_chain("init_clearance", &high, &p->auth, NULL);
    device(p, &other, "finn@mod", 12, KURER_LEVEL_CONFIDENTIAL, &p->other_auth_key);
    put_chain("init_valid_mod", &other, &p->other_auth, NULL);
    put_chain("init_wrong_authority", &other, &p->auth, NULL);
    device(p, &old, "gry@old", 13, KURER_LEVEL_RESTRICTED, &p->old_auth_key);
    put_chain("init_authority_expired", &old, &p->old_auth, NULL);
    device(p, &far, "hans@far", 14, KURER_LEVEL_RESTRICTED, &p->stranger_auth_key);
    put_chain("init_untrusted_root", &far, &p->stranger_auth, NULL);
    device(p, &by_root, "ida@mof", 15, KURER_LEVEL_RESTRICTED, &p->root_key);
    put_chain("init_device_by_root", &by_root, &p->root, NULL);
    device(p, &bad_sig, "jon@mof", 16, KURER_LEVEL_RESTRICTED, NULL);
    bad_sig.signature[0] ^= 1;
    put_chain("init_bad_signature", &bad_sig, &p->auth, NULL);
    put_chain("init_leaf_only", &p->device, NULL, NULL);
    put_chain("init_with_root", &p->device, &p->auth, &p->root);
    put_chain("init_authority_first", &p->auth, &p->device, NULL);

    put_accept("accept_ok", 0, "");
    put_accept("accept_refused", KURER_EREVOKED, "certificate revoked");
    put_accept("accept_refused_bare", KURER_EMALFORMED, "");
}

static void put_crl(const char *name, const kurer_signing_key *key, const kurer_cert *cert,
                    uint64_t version, int64_t next_update, const uint64_t *serials, size_t n)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    fuzz_crl(&b, key, cert, version, next_update, serials, n);
    put("crl", name, &b);
    kurer_buf_release(&b);
}

static void crl_seeds(fuzz_pki *p)
{
    static const uint64_t device[] = {FUZZ_DEVICE_SERIAL};
    static const uint64_t few[] = {3, FUZZ_REVOKED_SERIAL, 9, 10, 1000, UINT64_MAX};
    static const uint64_t auths[] = {FUZZ_AUTH_SERIAL, 102};
    uint64_t many[300];
    size_t i;
    for (i = 0; i < sizeof(many) / sizeof(many[0]); i++)
        many[i] = 20 + 3 * i;

    put("crl", "mof_v1", &p->crl_v1);
    put_crl("mof_v2_device", &p->auth_key, &p->auth, 2, 0, device, 1);
    put_crl("mof_v3_few", &p->auth_key, &p->auth, 3, FUZZ_NOW + 7 * FUZZ_DAY, few, 6);
    put_crl("mof_v4_empty", &p->auth_key, &p->auth, 4, 0, NULL, 0);
    put_crl("mof_v5_many", &p->auth_key, &p->auth, 5, FUZZ_NOW + FUZZ_DAY, many, 300);
    put_crl("mod_v1", &p->other_auth_key, &p->other_auth, 1, 0, few, 6);
    put_crl("old_v1", &p->old_auth_key, &p->old_auth, 1, 0, device, 1);
    put_crl("far_v1", &p->stranger_auth_key, &p->stranger_auth, 1, 0, device, 1);
    put_crl("root_v1_authorities", &p->root_key, &p->root, 1, FUZZ_NOW + 30 * FUZZ_DAY, auths, 2);
    put_crl("stranger_root_v1", &p->stranger_root_key, &p->stranger_root, 1, 0, auths, 2);
    put_crl("mof_signed_by_mod", &p->other_auth_key, &p->auth, 6, 0, device, 1);
    put_crl("mod_cert_signed_by_mof", &p->auth_key, &p->other_auth, 2, 0, device, 1);
}

int main(int argc, char **argv)
{
    fuzz_pki p;
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR (writes DIR/handshake/*, DIR/crl/*)\n");
        return 2;
    }
    out_dir = argv[1];
    pki = &p;
    fuzz_pki_init(&p);
    handshake_seeds(&p);
    crl_seeds(&p);
    fuzz_pki_free(&p);
    return 0;
}
