/* libFuzzer target for crypto/sframe.c: the bytes a client reads from the media relay inside a
 * MEDIA datagram. The first input byte picks the mode, the rest is the data:
 *   0: kurer_sframe_header_decode; what parses re-encodes (shortest form) to a header of the
 *      same KID and CTR, no longer than the one parsed;
 *   1: kurer_sframe_unprotect in a fresh receive context holding the RFC 9605 vectors' key
 *      (KID 0x123, suite 5, base key 00..0f) and an AES-CTR-HMAC-32 key (KID 7): every result
 *      is one of the documented codes, a refusal writes no plaintext, and a frame that opens
 *      is refused as a replay the second time;
 *   2: the data as plaintext through a send context and back: it must open to the same bytes.
 * The seed corpus (tests/fuzz/corpus/sframe) holds the RFC's suite-5 frame, so that mode 1
 * also reaches its success path. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "kurer/sframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t base[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t meta[] = "IETF SFrame WG";

static void check(int cond)
{
    if (!cond)
        abort();
}

static void header(const uint8_t *in, size_t n)
{
    kurer_sframe_header h, again;
    uint8_t enc[KURER_SFRAME_MAX_HEADER];
    size_t len;
    if (kurer_sframe_header_decode(in, n, &h) != 0) {
        check(h.len == 0 && h.kid == 0 && h.ctr == 0);
        return;
    }
    check(h.len >= 1 && h.len <= n && h.len <= KURER_SFRAME_MAX_HEADER);
    len = kurer_sframe_header_encode(enc, h.kid, h.ctr);
    check(len <= h.len && len == kurer_sframe_header_len(h.kid, h.ctr));
    check(kurer_sframe_header_decode(enc, len, &again) == 0);
    check(again.kid == h.kid && again.ctr == h.ctr && again.len == len);
}

static void unprotect(const uint8_t *in, size_t n)
{
    kurer_sframe_recv *r = NULL;
    kurer_sframe_header h;
    uint8_t *out = malloc(n + 1);
    size_t len = 1;
    int rc;
    check(out != NULL);
    check(kurer_sframe_recv_new(&r) == 0);
    check(kurer_sframe_recv_add_key(r, KURER_SFRAME_AES_256_GCM_SHA512_128, 0x123, base,
                                    sizeof base) == 0);
    check(kurer_sframe_recv_add_key(r, KURER_SFRAME_AES_128_CTR_HMAC_SHA256_32, 7, base,
                                    sizeof base) == 0);
    rc = kurer_sframe_unprotect(r, meta, sizeof meta - 1, in, n, out, n, &len, &h);
    if (rc == 0) {
        check(h.kid == 0x123 || h.kid == 7);
        check(len == n - h.len - kurer_sframe_tag_len(h.kid == 7 ? 3 : 5));
        check(kurer_sframe_unprotect(r, meta, sizeof meta - 1, in, n, out, n, &len, NULL) ==
              KURER_EREPLAY);
    } else {
        check(rc == KURER_ETRUNC || rc == KURER_EUNKNOWNKEY || rc == KURER_EDECRYPT ||
              rc == KURER_ELIMIT);
        check(len == 0);
    }
    kurer_sframe_recv_free(r);
    free(out);
}

static void roundtrip(const uint8_t *pt, size_t n)
{
    kurer_sframe_send *s = NULL;
    kurer_sframe_recv *r = NULL;
    uint8_t *frame, *back;
    size_t flen = 0, blen = 0;
    if (n > 4096)
        n = 4096;
    frame = malloc(n + KURER_SFRAME_MAX_OVERHEAD);
    back = malloc(n + 1);
    check(frame != NULL && back != NULL);
    check(kurer_sframe_send_new(&s, KURER_SFRAME_AES_256_GCM_SHA512_128, 0x123, base,
                                sizeof base) == 0);
    check(kurer_sframe_recv_new(&r) == 0);
    check(kurer_sframe_recv_add_key(r, KURER_SFRAME_AES_256_GCM_SHA512_128, 0x123, base,
                                    sizeof base) == 0);
    check(kurer_sframe_protect(s, meta, sizeof meta - 1, n > 0 ? pt : frame, n, frame,
                               n + KURER_SFRAME_MAX_OVERHEAD, &flen) == 0);
    check(kurer_sframe_unprotect(r, meta, sizeof meta - 1, frame, flen, back, n + 1, &blen, NULL) ==
          0);
    check(blen == n && (n == 0 || memcmp(back, pt, n) == 0));
    kurer_sframe_send_free(s);
    kurer_sframe_recv_free(r);
    free(frame);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int started;
    if (!started) {
        check(kurer_crypto_init() == 0);
        started = 1;
    }
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        header(data + 1, size - 1);
        break;
    case 1:
        unprotect(data + 1, size - 1);
        break;
    default:
        roundtrip(data + 1, size - 1);
        break;
    }
    return 0;
}
