#include "kurer/csr.h"
#include "kurer/crypto.h"
#include "kurer/keys.h"
#include "kurer/signal.h"

#include <string.h>

int kurer_csr_sign(const kurer_csr_body *body, const uint8_t identity_priv[32], kurer_csr *out)
{
    uint8_t pub[32];
    kurer_buf b;
    int rc;
    memset(out, 0, sizeof(*out));
    /* X25519 public key from the private scalar: the 32 bytes after the 0x05 type byte. */
    if ((rc = kurer_x25519_public(pub, identity_priv)) != 0)
        return rc;
    if (body->identity_key[0] != 0x05 || !kurer_ct_equal(pub, body->identity_key + 1, 32))
        return KURER_EKEYMISMATCH;
    kurer_buf_init_fixed(&b, out->tbs, sizeof(out->tbs));
    if ((rc = kurer_csr_body_encode(body, &b)) != 0)
        return rc;
    out->tbs_len = b.len;
    out->body = *body;
    if ((rc = kurer_identity_sign(identity_priv, out->tbs, out->tbs_len, out->signature)) != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int kurer_csr_verify(const kurer_csr *csr)
{
    return kurer_identity_verify(csr->body.identity_key, csr->tbs, csr->tbs_len, csr->signature);
}
