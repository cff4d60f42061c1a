/* libFuzzer target for crypto/noise.c: the bytes a relay reads from a client before and after the
 * handshake. The first input byte picks the mode, the rest is the data:
 *   0: an IK responder (fixed static key) reads the data as message 1; an NK responder too;
 *   1: a transport decrypt of the data (fixed key, both the buffer and in-place forms);
 *   2: a full IK handshake with fixed keys carrying the data as payload, then a transport round
 *      trip: every step must succeed and give back what was sent (aborts otherwise).
 * The seed corpus (tests/fuzz/corpus/noise) holds a valid message 1 and a valid transport message
 * under these keys, so that mode 0 and 1 also reach their success paths. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/buf.h"
#include "kurer/crypto.h"
#include "kurer/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t prologue[] = "kurer/1";

static void fill(uint8_t k[32], uint8_t first)
{
    int i;
    for (i = 0; i < 32; i++)
        k[i] = (uint8_t)(first + i);
}

static void check(int cond)
{
    if (!cond)
        abort();
}

static void read_first(kurer_noise_pattern p, const uint8_t *msg, size_t n)
{
    uint8_t resp_sk[32];
    kurer_noise_hs *res = NULL;
    kurer_buf pl;
    kurer_buf out;
    int rc;
    fill(resp_sk, 0x01);
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&out, KURER_NOISE_MAX_MSG);
    check(kurer_noise_hs_new(&res, p, 0, prologue, sizeof(prologue) - 1, resp_sk, NULL) == 0);
    rc = kurer_noise_hs_read_message(res, n > 0 ? msg : NULL, n, &pl);
    if (rc == 0) {
        check(kurer_noise_hs_remote_static(res) != NULL || p == KURER_NOISE_NK);
        check(kurer_noise_hs_write_message(res, NULL, 0, &out) == 0);
    } else {
        check(pl.len == 0);
    }
    kurer_buf_release(&pl);
    kurer_buf_release(&out);
    kurer_noise_hs_free(res);
}

static void transport(const uint8_t *ct, size_t n)
{
    kurer_noise_cipher c;
    kurer_buf pl;
    uint8_t *copy = malloc(n > 0 ? n : 1);
    size_t ptlen;
    int rc1, rc2;
    check(copy != NULL);
    if (n > 0)
        memcpy(copy, ct, n);
    memset(&c, 0, sizeof(c));
    fill(c.k, 0x61);
    c.has_key = 1;
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    rc1 = kurer_noise_decrypt(&c, NULL, 0, n > 0 ? ct : NULL, n, &pl);
    c.n = 0;
    rc2 = kurer_noise_decrypt_inplace(&c, NULL, 0, copy, n, &ptlen);
    check(rc1 == rc2);
    if (rc1 == 0)
        check(ptlen == pl.len && (ptlen == 0 || memcmp(copy, pl.data, ptlen) == 0));
    kurer_buf_release(&pl);
    free(copy);
}

static void handshake(const uint8_t *payload, size_t n)
{
    uint8_t resp_sk[32], resp_pk[32], init_sk[32], e[32];
    kurer_noise_hs *ini = NULL, *res = NULL;
    kurer_noise_cipher is, ir, rs, rr;
    kurer_buf m, pl;
    int rc;
    fill(resp_sk, 0x01);
    fill(init_sk, 0x21);
    fill(e, 0x41);
    check(kurer_noise_public_key(resp_pk, resp_sk) == 0);
    check(kurer_noise_hs_new(&ini, KURER_NOISE_IK, 1, prologue, sizeof(prologue) - 1, init_sk,
                             resp_pk) == 0);
    check(kurer_noise_hs_new(&res, KURER_NOISE_IK, 0, prologue, sizeof(prologue) - 1, resp_sk,
                             NULL) == 0);
    check(kurer_noise_hs_set_ephemeral(ini, e) == 0);
    kurer_buf_init(&m, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&pl, KURER_NOISE_MAX_MSG);
    rc = kurer_noise_hs_write_message(ini, n > 0 ? payload : NULL, n, &m);
    if (n > KURER_NOISE_MAX_MSG - 96) {
        check(rc == KURER_ELIMIT && m.len == 0);
        goto out;
    }
    check(rc == 0 && m.len == 96 + n);
    check(kurer_noise_hs_read_message(res, m.data, m.len, &pl) == 0);
    check(pl.len == n && (n == 0 || memcmp(pl.data, payload, n) == 0));
    kurer_buf_reset(&m);
    kurer_buf_reset(&pl);
    check(kurer_noise_hs_write_message(res, NULL, 0, &m) == 0);
    check(kurer_noise_hs_read_message(ini, m.data, m.len, &pl) == 0 && pl.len == 0);
    check(kurer_noise_hs_split(ini, &is, &ir) == 0 && kurer_noise_hs_split(res, &rs, &rr) == 0);
    if (n <= KURER_NOISE_MAX_PLAINTEXT) {
        kurer_buf_reset(&m);
        check(kurer_noise_encrypt(&rs, NULL, 0, n > 0 ? payload : NULL, n, &m) == 0);
        check(kurer_noise_decrypt(&ir, NULL, 0, m.data, m.len, &pl) == 0);
        check(pl.len == n && (n == 0 || memcmp(pl.data, payload, n) == 0));
    }
    kurer_noise_cipher_wipe(&is);
    kurer_noise_cipher_wipe(&ir);
    kurer_noise_cipher_wipe(&rs);
    kurer_noise_cipher_wipe(&rr);
out:
    kurer_buf_release(&m);
    kurer_buf_release(&pl);
    kurer_noise_hs_free(ini);
    kurer_noise_hs_free(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        check(kurer_crypto_init() == 0);
        ready = 1;
    }
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        read_first(KURER_NOISE_IK, data + 1, size - 1);
        read_first(KURER_NOISE_NK, data + 1, size - 1);
        break;
    case 1:
        transport(data + 1, size - 1);
        break;
    default:
        handshake(data + 1, size - 1);
        break;
    }
    return 0;
}
