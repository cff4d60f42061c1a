/* Test helper for the kurer-admin integration test: makes device certificate requests with the
 * same crypto code the client uses (kurer_identity_generate, kurer_x25519_generate,
 * kurer_csr_sign), and crafts the inputs the tool must refuse that it cannot be made to write
 * itself (a request signed by another key, an authority certificate outside its validity).
 *
 *   admin_helper csr OUT SUBJECT DEVICE_ID [NAME]
 *   admin_helper csr-forged OUT SUBJECT DEVICE_ID      signed by another identity key
 *   admin_helper csr-pair OUT1 SUBJECT1 DEV1 OUT2 SUBJECT2 DEV2   two requests, same keys
 *   admin_helper resign-authority ROOTDIR AUTHDIR NOT_BEFORE NOT_AFTER
 *       re-signs AUTHDIR/authority.crt with the root key (passphrase from
 *       KURER_ADMIN_ROOT_PASSPHRASE) with the given validity (Unix seconds, or +N/-N days
 *       from now).
 *   admin_helper crl-dated DIR NEXT_UPDATE OUT
 *       writes to OUT the revocation list of DIR (an authority's directory, key passphrase from
 *       KURER_ADMIN_PASSPHRASE, or a root's, from KURER_ADMIN_ROOT_PASSPHRASE) re-signed with
 *       the next version and the given next_update (as above; issued 30 days before it): a
 *       list that is already stale, which kurer-admin never writes. */
#include "kurer/cert.h"
#include "kurer/certmsg.h"
#include "kurer/crypto.h"
#include "kurer/csr.h"
#include "kurer/keys.h"
#include "kurer/signal.h"
#include "kurer/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what, int rc)
{
    fprintf(stderr, "admin_helper: %s: %s\n", what, kurer_strerror(rc));
    return 1;
}

static int write_csr(const char *out, const kurer_csr *csr)
{
    kurer_buf b;
    int rc;
    kurer_buf_init(&b, KURER_CHAIN_BYTES_MAX);
    rc = kurer_csr_encode(csr, &b);
    if (rc == 0)
        rc = kurer_file_write(out, b.data, b.len, 0644, 1);
    kurer_buf_release(&b);
    return rc;
}

static int make_body(kurer_csr_body *body, const char *subject, const char *dev, const char *name,
                     uint8_t id_priv[32])
{
    uint8_t noise_sk[32];
    uint64_t d;
    int rc;
    memset(body, 0, sizeof(*body));
    if ((rc = kurer_parse_u64(dev, KURER_DEVICE_ID_MAX, &d)) != 0)
        return rc;
    body->version = 1;
    snprintf(body->subject, sizeof(body->subject), "%s", subject);
    body->device_id = (uint32_t)d;
    snprintf(body->display_name, sizeof(body->display_name), "%s", name);
    body->created_at = kurer_time_unix();
    if ((rc = kurer_identity_generate(body->identity_key, id_priv)) != 0)
        return rc;
    kurer_x25519_generate(body->noise_key, noise_sk);
    kurer_memzero(noise_sk, sizeof(noise_sk));
    return 0;
}

static int cmd_csr(const char *out, const char *subject, const char *dev, const char *name)
{
    kurer_csr_body body;
    kurer_csr csr;
    uint8_t priv[32];
    int rc;
    if ((rc = make_body(&body, subject, dev, name, priv)) != 0 ||
        (rc = kurer_csr_sign(&body, priv, &csr)) != 0 || (rc = write_csr(out, &csr)) != 0)
        return die("csr", rc);
    kurer_memzero(priv, sizeof(priv));
    return 0;
}

static int cmd_csr_forged(const char *out, const char *subject, const char *dev)
{
    kurer_csr_body body;
    kurer_csr csr;
    kurer_buf b;
    uint8_t priv[32], other_pub[33], other_priv[32];
    int rc;
    if ((rc = make_body(&body, subject, dev, "Forged", priv)) != 0 ||
        (rc = kurer_identity_generate(other_pub, other_priv)) != 0)
        return die("csr-forged", rc);
    memset(&csr, 0, sizeof(csr));
    csr.body = body;
    kurer_buf_init_fixed(&b, csr.tbs, sizeof(csr.tbs));
    if ((rc = kurer_csr_body_encode(&body, &b)) != 0)
        return die("csr-forged", rc);
    csr.tbs_len = b.len;
    /* Names one identity key, signed by another. */
    if ((rc = kurer_identity_sign(other_priv, csr.tbs, csr.tbs_len, csr.signature)) != 0 ||
        (rc = write_csr(out, &csr)) != 0)
        return die("csr-forged", rc);
    return 0;
}

static int cmd_csr_pair(char **v)
{
    kurer_csr_body body;
    kurer_csr csr;
    uint8_t priv[32];
    uint64_t d;
    int rc;
    if ((rc = make_body(&body, v[1], v[2], "Pair", priv)) != 0 ||
        (rc = kurer_csr_sign(&body, priv, &csr)) != 0 || (rc = write_csr(v[0], &csr)) != 0)
        return die("csr-pair", rc);
    snprintf(body.subject, sizeof(body.subject), "%s", v[4]);
    if ((rc = kurer_parse_u64(v[5], KURER_DEVICE_ID_MAX, &d)) != 0)
        return die("csr-pair", rc);
    body.device_id = (uint32_t)d;
    if ((rc = kurer_csr_sign(&body, priv, &csr)) != 0 || (rc = write_csr(v[3], &csr)) != 0)
        return die("csr-pair", rc);
    return 0;
}

static int parse_time(const char *s, int64_t *t)
{
    uint64_t v;
    if (s[0] == '+' || s[0] == '-') {
        if (kurer_parse_u64(s + 1, 100000, &v) != 0)
            return KURER_EINVAL;
        *t = kurer_time_unix() + (s[0] == '+' ? 1 : -1) * (int64_t)v * 86400;
        return 0;
    }
    if (kurer_parse_u64(s, INT64_MAX, &v) != 0)
        return KURER_EINVAL;
    *t = (int64_t)v;
    return 0;
}

static int cmd_resign(char **v)
{
    char path[4096];
    uint8_t *d;
    size_t n;
    kurer_cert auth, out;
    kurer_signing_key root = {0};
    kurer_buf b;
    const char *pass = getenv("KURER_ADMIN_ROOT_PASSPHRASE");
    int rc;
    if (pass == NULL)
        return die("resign-authority: KURER_ADMIN_ROOT_PASSPHRASE", KURER_EINVAL);
    if ((rc = kurer_path_join(path, sizeof(path), v[0], "root.key")) != 0 ||
        (rc = kurer_signing_key_load(&root, path, pass, strlen(pass))) != 0)
        return die("root key", rc);
    if ((rc = kurer_path_join(path, sizeof(path), v[1], "authority.crt")) != 0 ||
        (rc = kurer_file_read(path, KURER_CERT_MAX, &d, &n)) != 0)
        return die("authority.crt", rc);
    rc = kurer_cert_decode(d, n, &auth);
    free(d);
    if (rc != 0)
        return die("authority.crt", rc);
    if ((rc = parse_time(v[2], &auth.body.not_before)) != 0 ||
        (rc = parse_time(v[3], &auth.body.not_after)) != 0)
        return die("times", rc);
    kurer_buf_init(&b, KURER_CERT_MAX);
    if ((rc = kurer_cert_sign(&auth.body, &root, &out)) != 0 ||
        (rc = kurer_cert_encode(&out, &b)) != 0 ||
        (rc = kurer_file_write(path, b.data, b.len, 0644, 1)) != 0)
        return die("resign", rc);
    kurer_buf_release(&b);
    kurer_signing_key_release(&root);
    return 0;
}

static int cmd_crl_dated(char **v)
{
    char path[4096];
    uint8_t *d;
    size_t n;
    kurer_crl crl;
    kurer_signing_key key = {0};
    kurer_buf b;
    int is_root = kurer_path_join(path, sizeof(path), v[0], "authority.crt") != 0 ||
                  kurer_file_exists(path) != 0;
    const char *pass = getenv(is_root ? "KURER_ADMIN_ROOT_PASSPHRASE" : "KURER_ADMIN_PASSPHRASE");
    int rc;
    if (pass == NULL)
        return die("crl-dated: passphrase variable", KURER_EINVAL);
    if ((rc = kurer_path_join(path, sizeof(path), v[0], is_root ? "root.key" : "authority.key")) !=
            0 ||
        (rc = kurer_signing_key_load(&key, path, pass, strlen(pass))) != 0)
        return die("key", rc);
    if ((rc = kurer_path_join(path, sizeof(path), v[0], "crl")) != 0 ||
        (rc = kurer_file_read(path, KURER_CRL_BYTES_MAX, &d, &n)) != 0)
        return die("crl", rc);
    rc = kurer_crl_decode(d, n, &crl);
    free(d);
    if (rc != 0)
        return die("crl", rc);
    crl.version++;
    if ((rc = parse_time(v[1], &crl.next_update)) != 0)
        return die("time", rc);
    crl.issued_at = crl.next_update - 30 * 86400;
    kurer_cert issuer = crl.issuer_cert;
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    if ((rc = kurer_crl_sign(&crl, &key, &issuer)) != 0 || (rc = kurer_crl_encode(&crl, &b)) != 0 ||
        (rc = kurer_file_write(v[2], b.data, b.len, 0644, 1)) != 0)
        return die("crl-dated", rc);
    kurer_buf_release(&b);
    kurer_crl_release(&crl);
    kurer_signing_key_release(&key);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = kurer_crypto_init();
    if (rc != 0)
        return die("crypto init", rc);
    if (argc >= 5 && argc <= 6 && strcmp(argv[1], "csr") == 0)
        return cmd_csr(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : "Test Device");
    if (argc == 5 && strcmp(argv[1], "csr-forged") == 0)
        return cmd_csr_forged(argv[2], argv[3], argv[4]);
    if (argc == 8 && strcmp(argv[1], "csr-pair") == 0)
        return cmd_csr_pair(argv + 2);
    if (argc == 6 && strcmp(argv[1], "resign-authority") == 0)
        return cmd_resign(argv + 2);
    if (argc == 5 && strcmp(argv[1], "crl-dated") == 0)
        return cmd_crl_dated(argv + 2);
    fprintf(stderr, "usage: see the comment at the top of admin_helper.c\n");
    return 2;
}
