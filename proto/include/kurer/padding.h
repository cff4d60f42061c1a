/* Padding of Content before encryption: hides the exact length of a message. */
#ifndef KURER_PADDING_H
#define KURER_PADDING_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"

#define KURER_PAD_BLOCK 160

/* Appends in, then 0x80, then zeros up to the next multiple of KURER_PAD_BLOCK, to out. */
KURER_EXPORT KURER_MUST_CHECK int kurer_pad(kurer_buf *out, const uint8_t *in, size_t n);
/* The unpadded length of a padded buffer. KURER_EMALFORMED unless the buffer is a non-empty
 * multiple of KURER_PAD_BLOCK that ends in 0x80 followed only by zeros. */
KURER_EXPORT KURER_MUST_CHECK int kurer_unpad(const uint8_t *in, size_t n, size_t *outlen);

#endif
