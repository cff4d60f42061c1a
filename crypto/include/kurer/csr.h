/* Certificate requests: made and signed on the device with its identity key (XEdDSA), checked
 * by the administrator before issuance. */
#ifndef KURER_CSR_H
#define KURER_CSR_H

#include <stdint.h>

#include "kurer/certmsg.h"
#include "kurer/error.h"

/* Encodes body and signs it with the identity private key; the body's identity_key must be the
 * public half of identity_priv (KURER_EKEYMISMATCH otherwise). */
KURER_EXPORT KURER_MUST_CHECK int kurer_csr_sign(const kurer_csr_body *body,
                                                 const uint8_t identity_priv[32], kurer_csr *out);
/* 0 if the request is signed by the identity key it names; KURER_EBADSIG otherwise. */
KURER_EXPORT KURER_MUST_CHECK int kurer_csr_verify(const kurer_csr *csr);

#endif
