#include "kurer/cert.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Authority ids are validated to fit; this keeps the compiler (and a future change) honest. */
static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return KURER_ELIMIT;
    memcpy(dst, src, n + 1);
    return 0;
}

int kurer_cert_sign(kurer_cert_body *body, const kurer_signing_key *issuer, kurer_cert *out)
{
    kurer_buf b;
    int rc;
    memset(out, 0, sizeof(*out));
    if (issuer == NULL || issuer->sk == NULL)
        return KURER_EINVAL;
    if (body->role == KURER_ROLE_ROOT && !kurer_ct_equal(body->signing_key, issuer->pk, 32))
        return KURER_EKEYMISMATCH;
    kurer_key_id(issuer->pk, body->issuer_key_id);
    kurer_buf_init_fixed(&b, out->tbs, sizeof(out->tbs));
    if ((rc = kurer_cert_body_encode(body, &b)) != 0)
        return rc;
    out->tbs_len = b.len;
    out->body = *body;
    if ((rc = kurer_sign(issuer, out->tbs, out->tbs_len, out->signature)) != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

void kurer_cert_key_id(const kurer_cert *c, uint8_t id[KURER_KEY_ID_LEN])
{
    kurer_key_id(c->body.signing_key, id);
}

void kurer_cert_fingerprint(const kurer_cert *c, char out[65])
{
    uint8_t h[32];
    kurer_hash256(h, c->tbs, c->tbs_len);
    kurer_hex_encode(out, h, sizeof(h));
}

int kurer_cert_check_validity(const kurer_cert *c, int64_t now)
{
    if (now < c->body.not_before)
        return KURER_ENOTYETVALID;
    if (now > c->body.not_after)
        return KURER_EEXPIRED;
    return 0;
}

static int key_id_equal(const uint8_t *a, const uint8_t *b)
{
    return kurer_ct_equal(a, b, KURER_KEY_ID_LEN);
}

int kurer_root_check(const kurer_cert *root, int64_t now)
{
    uint8_t id[KURER_KEY_ID_LEN];
    int rc;
    if (root->body.role != KURER_ROLE_ROOT)
        return KURER_EROLE;
    kurer_cert_key_id(root, id);
    if (!key_id_equal(id, root->body.issuer_key_id))
        return KURER_EISSUER;
    if ((rc = kurer_verify(root->body.signing_key, root->tbs, root->tbs_len, root->signature)) != 0)
        return rc;
    if (root->body.clearance > KURER_LEVEL_CONFIDENTIAL)
        return KURER_ECLEARANCE;
    return kurer_cert_check_validity(root, now);
}

/* Signature and role rules of an authority under root, without validity windows. */
static int authority_signed_by(const kurer_cert *auth, const kurer_cert *root)
{
    uint8_t id[KURER_KEY_ID_LEN];
    int rc;
    if (auth->body.role != KURER_ROLE_AUTHORITY)
        return KURER_EROLE;
    if (root->body.role != KURER_ROLE_ROOT)
        return KURER_EROLE;
    kurer_cert_key_id(root, id);
    if (!key_id_equal(id, auth->body.issuer_key_id))
        return KURER_EISSUER;
    if ((rc = kurer_verify(root->body.signing_key, auth->tbs, auth->tbs_len, auth->signature)) != 0)
        return rc;
    if (auth->body.clearance > root->body.clearance)
        return KURER_ECLEARANCE;
    return 0;
}

int kurer_authority_check(const kurer_cert *auth, const kurer_cert *root, int64_t now)
{
    int rc = authority_signed_by(auth, root);
    return rc != 0 ? rc : kurer_cert_check_validity(auth, now);
}

int kurer_device_check(const kurer_cert *dev, const kurer_cert *auth, int64_t now)
{
    uint8_t id[KURER_KEY_ID_LEN];
    const char *dom;
    int rc;
    if (dev->body.role != KURER_ROLE_DEVICE)
        return KURER_EROLE;
    if (auth->body.role != KURER_ROLE_AUTHORITY)
        return KURER_EROLE; /* a root (or a device) never signs devices */
    kurer_cert_key_id(auth, id);
    if (!key_id_equal(id, dev->body.issuer_key_id))
        return KURER_EISSUER;
    if ((rc = kurer_verify(auth->body.signing_key, dev->tbs, dev->tbs_len, dev->signature)) != 0)
        return rc;
    dom = kurer_user_authority(dev->body.subject);
    if (dom == NULL || strcmp(dom, auth->body.subject) != 0)
        return KURER_ESUBJECT;
    if (dev->body.clearance > auth->body.clearance)
        return KURER_ECLEARANCE;
    return kurer_cert_check_validity(dev, now);
}

int kurer_crl_sign(kurer_crl *crl, const kurer_signing_key *auth, const kurer_cert *auth_cert)
{
    kurer_buf b;
    int rc;
    if (auth == NULL || auth->sk == NULL || auth_cert->body.role != KURER_ROLE_AUTHORITY)
        return KURER_EINVAL;
    if (!kurer_ct_equal(auth->pk, auth_cert->body.signing_key, 32))
        return KURER_EKEYMISMATCH;
    if ((rc = copy_str(crl->issuer, sizeof(crl->issuer), auth_cert->body.subject)) != 0)
        return rc;
    kurer_key_id(auth->pk, crl->issuer_key_id);
    crl->issuer_cert = *auth_cert;
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    if ((rc = kurer_crl_body_encode(crl, &b)) != 0) {
        kurer_buf_release(&b);
        return rc;
    }
    free(crl->tbs);
    crl->tbs = kurer_buf_steal(&b, &crl->tbs_len);
    if (crl->tbs == NULL)
        return KURER_EINTERNAL;
    return kurer_sign(auth, crl->tbs, crl->tbs_len, crl->signature);
}

int kurer_crl_verify(const kurer_crl *crl, const kurer_cert *root)
{
    uint8_t id[KURER_KEY_ID_LEN];
    int rc = authority_signed_by(&crl->issuer_cert, root);
    if (rc != 0)
        return rc;
    kurer_cert_key_id(&crl->issuer_cert, id);
    if (!key_id_equal(id, crl->issuer_key_id))
        return KURER_EISSUER;
    if (strcmp(crl->issuer, crl->issuer_cert.body.subject) != 0)
        return KURER_ESUBJECT;
    return kurer_verify(crl->issuer_cert.body.signing_key, crl->tbs, crl->tbs_len, crl->signature);
}

struct kurer_trust {
    kurer_cert roots[KURER_TRUST_MAX_ROOTS];
    size_t n_roots;
    kurer_crl *crls;
    size_t n_crls;
    size_t cap_crls;
};

int kurer_trust_new(kurer_trust **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : KURER_ENOMEM;
}

void kurer_trust_free(kurer_trust *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_crls; i++)
        kurer_crl_release(&t->crls[i]);
    free(t->crls);
    free(t);
}

int kurer_trust_add_root(kurer_trust *t, const kurer_cert *root, int64_t now)
{
    int rc = kurer_root_check(root, now);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < t->n_roots; i++)
        if (t->roots[i].tbs_len == root->tbs_len &&
            memcmp(t->roots[i].tbs, root->tbs, root->tbs_len) == 0)
            return 0; /* already pinned */
    if (t->n_roots == KURER_TRUST_MAX_ROOTS)
        return KURER_ELIMIT;
    t->roots[t->n_roots++] = *root;
    return 0;
}

size_t kurer_trust_root_count(const kurer_trust *t)
{
    return t->n_roots;
}

const kurer_cert *kurer_trust_root(const kurer_trust *t, size_t i)
{
    return i < t->n_roots ? &t->roots[i] : NULL;
}

static const kurer_cert *root_by_key_id(const kurer_trust *t, const uint8_t *id)
{
    for (size_t i = 0; i < t->n_roots; i++) {
        uint8_t rid[KURER_KEY_ID_LEN];
        kurer_cert_key_id(&t->roots[i], rid);
        if (key_id_equal(rid, id))
            return &t->roots[i];
    }
    return NULL;
}

static kurer_crl *crl_by_key_id(const kurer_trust *t, const uint8_t *id)
{
    for (size_t i = 0; i < t->n_crls; i++)
        if (key_id_equal(t->crls[i].issuer_key_id, id))
            return &t->crls[i];
    return NULL;
}

int kurer_trust_add_crl(kurer_trust *t, const uint8_t *data, size_t len, uint64_t *version_out)
{
    kurer_crl crl, *held;
    const kurer_cert *root;
    int rc;
    if (version_out != NULL)
        *version_out = 0;
    if ((rc = kurer_crl_decode(data, len, &crl)) != 0)
        return rc;
    root = root_by_key_id(t, crl.issuer_cert.body.issuer_key_id);
    if (root == NULL) {
        rc = KURER_EUNTRUSTED;
        goto fail;
    }
    if ((rc = kurer_crl_verify(&crl, root)) != 0)
        goto fail;
    held = crl_by_key_id(t, crl.issuer_key_id);
    if (held != NULL) {
        if (crl.version <= held->version) {
            rc = KURER_ESTALE;
            goto fail;
        }
        kurer_crl_release(held);
        *held = crl;
    } else {
        if (t->n_crls == t->cap_crls) {
            size_t ncap = t->cap_crls ? t->cap_crls * 2 : 8;
            kurer_crl *n = realloc(t->crls, ncap * sizeof(*n));
            if (n == NULL) {
                rc = KURER_ENOMEM;
                goto fail;
            }
            t->crls = n;
            t->cap_crls = ncap;
        }
        t->crls[t->n_crls++] = crl;
    }
    if (version_out != NULL)
        *version_out = crl.version;
    return 0;
fail:
    kurer_crl_release(&crl);
    return rc;
}

size_t kurer_trust_crl_count(const kurer_trust *t)
{
    return t->n_crls;
}

const kurer_crl *kurer_trust_crl(const kurer_trust *t, size_t i)
{
    return i < t->n_crls ? &t->crls[i] : NULL;
}

int kurer_trust_is_revoked(const kurer_trust *t, const uint8_t authority_key_id[KURER_KEY_ID_LEN],
                           uint64_t serial)
{
    const kurer_crl *crl = crl_by_key_id(t, authority_key_id);
    return crl != NULL && kurer_crl_contains(crl, serial);
}

int kurer_trust_verify_authority(const kurer_trust *t, const kurer_cert *auth, int64_t now,
                                 const kurer_cert **root_out)
{
    const kurer_cert *root;
    int rc;
    if (root_out != NULL)
        *root_out = NULL;
    if (auth->body.role != KURER_ROLE_AUTHORITY)
        return KURER_EROLE;
    root = root_by_key_id(t, auth->body.issuer_key_id);
    if (root == NULL)
        return KURER_EUNTRUSTED;
    if ((rc = kurer_cert_check_validity(root, now)) != 0 ||
        (rc = kurer_authority_check(auth, root, now)) != 0)
        return rc;
    if (root_out != NULL)
        *root_out = root;
    return 0;
}

int kurer_trust_verify_chain(const kurer_trust *t, const kurer_chain *chain, int64_t now,
                             kurer_verified *out)
{
    const kurer_cert *dev, *auth, *root;
    int rc;
    memset(out, 0, sizeof(*out));
    if (chain->n == 0)
        return KURER_EMALFORMED;
    dev = &chain->certs[0];
    if (dev->body.role != KURER_ROLE_DEVICE)
        return KURER_EROLE;
    if (root_by_key_id(t, dev->body.issuer_key_id) != NULL)
        return KURER_EROLE; /* a device signed directly by a root */
    if (chain->n != 2)
        return chain->n < 2 ? KURER_EISSUER : KURER_EMALFORMED;
    auth = &chain->certs[1];
    if ((rc = kurer_trust_verify_authority(t, auth, now, &root)) != 0)
        return rc;
    if ((rc = kurer_device_check(dev, auth, now)) != 0)
        return rc;
    if (kurer_trust_is_revoked(t, dev->body.issuer_key_id, dev->body.serial))
        return KURER_EREVOKED;
    if ((rc = copy_str(out->user, sizeof(out->user), dev->body.subject)) != 0 ||
        (rc = copy_str(out->authority, sizeof(out->authority), auth->body.subject)) != 0)
        return rc;
    out->device_id = dev->body.device_id;
    out->serial = dev->body.serial;
    out->clearance = dev->body.clearance;
    out->ceiling = root->body.clearance;
    memcpy(out->identity_key, dev->body.identity_key, sizeof(out->identity_key));
    memcpy(out->noise_key, dev->body.noise_key, sizeof(out->noise_key));
    memcpy(out->authority_key_id, dev->body.issuer_key_id, KURER_KEY_ID_LEN);
    out->not_after = dev->body.not_after;
    if (auth->body.not_after < out->not_after)
        out->not_after = auth->body.not_after;
    if (root->body.not_after < out->not_after)
        out->not_after = root->body.not_after;
    return 0;
}
