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

int kurer_crl_sign(kurer_crl *crl, const kurer_signing_key *issuer, const kurer_cert *issuer_cert)
{
    kurer_buf b;
    int rc;
    if (issuer == NULL || issuer->sk == NULL ||
        (issuer_cert->body.role != KURER_ROLE_AUTHORITY &&
         issuer_cert->body.role != KURER_ROLE_ROOT))
        return KURER_EINVAL;
    if (!kurer_ct_equal(issuer->pk, issuer_cert->body.signing_key, 32))
        return KURER_EKEYMISMATCH;
    if ((rc = copy_str(crl->issuer, sizeof(crl->issuer), issuer_cert->body.subject)) != 0)
        return rc;
    kurer_key_id(issuer->pk, crl->issuer_key_id);
    crl->issuer_cert = *issuer_cert;
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    if ((rc = kurer_crl_body_encode(crl, &b)) != 0) {
        kurer_buf_release(&b);
        return rc;
    }
    free(crl->tbs);
    crl->tbs = kurer_buf_steal(&b, &crl->tbs_len);
    if (crl->tbs == NULL)
        return KURER_EINTERNAL;
    return kurer_sign(issuer, crl->tbs, crl->tbs_len, crl->signature);
}

/* A root's own list carries a ROOT certificate: it must hold root's key and be self-signed by
 * it (not necessarily the very bytes pinned: a root re-issued with the same key keeps its
 * lists). Validity is not required, as for an authority's list. */
static int root_issued(const kurer_cert *issuer, const kurer_cert *root)
{
    uint8_t id[KURER_KEY_ID_LEN];
    if (root->body.role != KURER_ROLE_ROOT)
        return KURER_EROLE;
    if (!kurer_ct_equal(issuer->body.signing_key, root->body.signing_key, KURER_ED25519_PK_LEN))
        return KURER_EKEYMISMATCH;
    kurer_cert_key_id(issuer, id);
    if (!key_id_equal(id, issuer->body.issuer_key_id))
        return KURER_EISSUER;
    return kurer_verify(issuer->body.signing_key, issuer->tbs, issuer->tbs_len, issuer->signature);
}

int kurer_crl_verify(const kurer_crl *crl, const kurer_cert *root)
{
    uint8_t id[KURER_KEY_ID_LEN];
    int rc;
    switch (crl->issuer_cert.body.role) {
    case KURER_ROLE_AUTHORITY:
        rc = authority_signed_by(&crl->issuer_cert, root);
        break;
    case KURER_ROLE_ROOT:
        rc = root_issued(&crl->issuer_cert, root);
        break;
    default:
        rc = KURER_EROLE; /* a device signs no list */
        break;
    }
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
    kurer_crl *crls; /* authorities' and roots' lists, one per issuer key id */
    size_t n_crls;
    size_t cap_crls;
    int64_t crl_grace; /* seconds, or KURER_TRUST_CRL_GRACE_NEVER */
};

int kurer_trust_new(kurer_trust **out)
{
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return KURER_ENOMEM;
    (*out)->crl_grace = KURER_TRUST_CRL_GRACE_DEFAULT;
    return 0;
}

int kurer_trust_set_crl_grace(kurer_trust *t, int64_t seconds)
{
    if (seconds < 0 && seconds != KURER_TRUST_CRL_GRACE_NEVER)
        return KURER_EINVAL;
    t->crl_grace = seconds;
    return 0;
}

int64_t kurer_trust_crl_grace(const kurer_trust *t)
{
    return t->crl_grace;
}

int kurer_trust_crl_freshness(const kurer_trust *t, const kurer_crl *crl, int64_t now)
{
    if (crl->next_update == 0 || now <= crl->next_update)
        return 0;
    /* Past next_update: refused once the grace is over (no overflow for any next_update). */
    if (t->crl_grace != KURER_TRUST_CRL_GRACE_NEVER &&
        crl->next_update <= INT64_MAX - t->crl_grace && now > crl->next_update + t->crl_grace)
        return KURER_ECRLSTALE;
    return 1;
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

int kurer_trust_chain_revoked(const kurer_trust *t, const kurer_verified *v)
{
    return kurer_trust_is_revoked(t, v->authority_key_id, v->serial) ||
           kurer_trust_is_revoked(t, v->root_key_id, v->authority_serial);
}

/* Freshness of the lists that cover one chain. */
typedef struct freshness {
    unsigned stale; /* KURER_STALE_* of the lists past next_update (inside the grace or not) */
    int64_t since;  /* the earliest of their next_update */
    int refused;    /* KURER_ECRLSTALE if one is past the grace */
} freshness;

static void held_fresh(const kurer_trust *t, const uint8_t *id, int64_t now, unsigned flag,
                       freshness *f)
{
    const kurer_crl *crl = crl_by_key_id(t, id);
    int r = crl != NULL ? kurer_trust_crl_freshness(t, crl, now) : 0;
    if (r == 0)
        return; /* current, or none held: nothing to be stale */
    f->stale |= flag;
    if (f->since == 0 || crl->next_update < f->since)
        f->since = crl->next_update;
    if (r < 0)
        f->refused = r;
}

/* An authority under a pinned root (signature, roles, validity), not on the root's list. */
static int authority_trusted(const kurer_trust *t, const kurer_cert *auth, int64_t now,
                             const kurer_cert **root_out, uint8_t root_id[KURER_KEY_ID_LEN])
{
    const kurer_cert *root;
    int rc;
    *root_out = NULL;
    if (auth->body.role != KURER_ROLE_AUTHORITY)
        return KURER_EROLE;
    root = root_by_key_id(t, auth->body.issuer_key_id);
    if (root == NULL)
        return KURER_EUNTRUSTED;
    if ((rc = kurer_cert_check_validity(root, now)) != 0 ||
        (rc = kurer_authority_check(auth, root, now)) != 0)
        return rc;
    kurer_cert_key_id(root, root_id);
    if (kurer_trust_is_revoked(t, root_id, auth->body.serial))
        return KURER_EREVOKED;
    *root_out = root;
    return 0;
}

int kurer_trust_verify_authority(const kurer_trust *t, const kurer_cert *auth, int64_t now,
                                 const kurer_cert **root_out)
{
    const kurer_cert *root;
    uint8_t rid[KURER_KEY_ID_LEN];
    freshness f = {0, 0, 0};
    int rc = authority_trusted(t, auth, now, &root, rid);
    if (rc == 0) {
        held_fresh(t, rid, now, KURER_STALE_ROOT_CRL, &f);
        rc = f.refused;
    }
    if (root_out != NULL)
        *root_out = rc == 0 ? root : NULL;
    return rc;
}

int kurer_trust_verify_chain(const kurer_trust *t, const kurer_chain *chain, int64_t now,
                             kurer_verified *out)
{
    const kurer_cert *dev, *auth, *root;
    uint8_t rid[KURER_KEY_ID_LEN];
    freshness f = {0, 0, 0};
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
    if ((rc = authority_trusted(t, auth, now, &root, rid)) != 0)
        return rc;
    if ((rc = kurer_device_check(dev, auth, now)) != 0)
        return rc;
    if (kurer_trust_is_revoked(t, dev->body.issuer_key_id, dev->body.serial))
        return KURER_EREVOKED;
    /* Last: a revocation that is known wins over a list that is merely old. */
    held_fresh(t, rid, now, KURER_STALE_ROOT_CRL, &f);
    held_fresh(t, dev->body.issuer_key_id, now, KURER_STALE_AUTHORITY_CRL, &f);
    out->crl_stale = f.stale;
    out->crl_stale_since = f.since;
    if (f.refused != 0)
        return f.refused; /* out says which list, and since when */
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
    out->authority_serial = auth->body.serial;
    memcpy(out->root_key_id, rid, KURER_KEY_ID_LEN);
    out->not_after = dev->body.not_after;
    if (auth->body.not_after < out->not_after)
        out->not_after = auth->body.not_after;
    if (root->body.not_after < out->not_after)
        out->not_after = root->body.not_after;
    return 0;
}
