#include "kurer/padding.h"

#include <string.h>

int kurer_pad(kurer_buf *out, const uint8_t *in, size_t n)
{
    size_t total = (n / KURER_PAD_BLOCK + 1) * KURER_PAD_BLOCK;
    uint8_t *p;
    int rc;
    if (n > SIZE_MAX - KURER_PAD_BLOCK)
        return KURER_ELIMIT;
    if ((rc = kurer_buf_reserve(out, total, &p)) != 0)
        return rc;
    if (n > 0)
        memcpy(p, in, n);
    p[n] = 0x80;
    memset(p + n + 1, 0, total - n - 1);
    return 0;
}

int kurer_unpad(const uint8_t *in, size_t n, size_t *outlen)
{
    *outlen = 0;
    if (n == 0 || n % KURER_PAD_BLOCK != 0)
        return KURER_EMALFORMED;
    for (size_t i = n; i-- > 0;) {
        if (in[i] == 0x80) {
            if (n - i > KURER_PAD_BLOCK)
                return KURER_EMALFORMED; /* more than one block of padding */
            *outlen = i;
            return 0;
        }
        if (in[i] != 0)
            return KURER_EMALFORMED;
    }
    return KURER_EMALFORMED;
}
