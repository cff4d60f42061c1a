/* Known-answer tests for crypto/noise.c from tests/vectors/noise.json (cacophony's vectors).
 *
 * Public keys are derived from the vectors' private keys with kurer_noise_public_key
 * (crypto_scalarmult_base; tests do not include sodium.h, only crypto/ does).
 *
 * Every vector named Noise_IK_25519_ChaChaPoly_BLAKE2b or Noise_NK_25519_ChaChaPoly_BLAKE2b is
 * run with both roles: each handshake message must match byte for byte and decrypt to its payload,
 * the handshake hashes must match, and so must the transport messages that follow (they alternate
 * initiator, responder, ...). The test fails if the file holds no vector of either name.
 *
 * The JSON reader is json_reader.c (test code). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/buf.h"
#include "kurer/crypto.h"
#include "kurer/noise.h"
#include "kurer/util.h"
#include "json_reader.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* Hex field key of obj, decoded into a new buffer; *n its length. Fails the test if absent. */
static uint8_t *hex_field(const jval *obj, const char *key, size_t *n)
{
    const char *hex = jget_str(obj, key);
    uint8_t *out;
    if (hex == NULL)
        fail_msg("vector field %s missing", key);
    assert_int_equal(strlen(hex) % 2, 0);
    *n = strlen(hex) / 2;
    out = malloc(*n + 1);
    assert_non_null(out);
    assert_int_equal(kurer_hex_decode(out, *n, hex), 0);
    return out;
}

static void hex_field32(const jval *obj, const char *key, uint8_t out[32])
{
    size_t n;
    uint8_t *b = hex_field(obj, key, &n);
    assert_int_equal(n, 32);
    memcpy(out, b, 32);
    free(b);
}

/* One handshake message: from writes payload, it must equal ct, to reads it back. */
static void check_hs_message(kurer_noise_hs *from, kurer_noise_hs *to, const jval *m)
{
    size_t plen, clen;
    uint8_t *payload = hex_field(m, "payload", &plen);
    uint8_t *ct = hex_field(m, "ciphertext", &clen);
    kurer_buf out, back;
    kurer_buf_init(&out, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&back, KURER_NOISE_MAX_MSG);
    assert_int_equal(kurer_noise_hs_my_turn(from), 1);
    assert_int_equal(kurer_noise_hs_my_turn(to), 0);
    assert_int_equal(kurer_noise_hs_write_message(from, payload, plen, &out), 0);
    assert_int_equal(out.len, clen);
    assert_memory_equal(out.data, ct, clen);
    assert_int_equal(kurer_noise_hs_read_message(to, ct, clen, &back), 0);
    assert_int_equal(back.len, plen);
    if (plen > 0)
        assert_memory_equal(back.data, payload, plen);
    kurer_buf_release(&out);
    kurer_buf_release(&back);
    free(payload);
    free(ct);
}

/* One transport message, through both the kurer_buf and the in-place functions (on copies of
 * the ciphers, which must agree). */
static void check_transport(kurer_noise_cipher *send, kurer_noise_cipher *recv, const jval *m)
{
    size_t plen, clen, ptlen;
    uint8_t *payload = hex_field(m, "payload", &plen);
    uint8_t *ct = hex_field(m, "ciphertext", &clen);
    kurer_noise_cipher send2 = *send, recv2 = *recv;
    uint8_t *inplace = malloc(plen + KURER_NOISE_TAGLEN);
    kurer_buf out, back;
    assert_non_null(inplace);
    kurer_buf_init(&out, KURER_NOISE_MAX_MSG);
    kurer_buf_init(&back, KURER_NOISE_MAX_MSG);

    assert_int_equal(kurer_noise_encrypt(send, NULL, 0, payload, plen, &out), 0);
    assert_int_equal(out.len, clen);
    assert_memory_equal(out.data, ct, clen);
    assert_int_equal(kurer_noise_decrypt(recv, NULL, 0, ct, clen, &back), 0);
    assert_int_equal(back.len, plen);
    if (plen > 0)
        assert_memory_equal(back.data, payload, plen);

    if (plen > 0)
        memcpy(inplace, payload, plen);
    assert_int_equal(
        kurer_noise_encrypt_inplace(&send2, NULL, 0, inplace, plen, plen + KURER_NOISE_TAGLEN), 0);
    assert_memory_equal(inplace, ct, clen);
    assert_int_equal(kurer_noise_decrypt_inplace(&recv2, NULL, 0, inplace, clen, &ptlen), 0);
    assert_int_equal(ptlen, plen);
    if (plen > 0)
        assert_memory_equal(inplace, payload, plen);
    assert_true(send2.n == send->n && recv2.n == recv->n);

    kurer_buf_release(&out);
    kurer_buf_release(&back);
    free(inplace);
    free(payload);
    free(ct);
}

static void run_vector(const jval *v, kurer_noise_pattern p)
{
    uint8_t init_e[32], resp_e[32], init_rs[32], resp_s[32], init_s[32], init_s_pub[32];
    uint8_t hh_init[64], hh_resp[64];
    size_t ipro_len, rpro_len, hh_len, i;
    uint8_t *ipro = hex_field(v, "init_prologue", &ipro_len);
    uint8_t *rpro = hex_field(v, "resp_prologue", &rpro_len);
    uint8_t *hh = hex_field(v, "handshake_hash", &hh_len);
    const jval *msgs = jget(v, "messages");
    kurer_noise_hs *ini = NULL, *res = NULL;
    kurer_noise_cipher i_send, i_recv, r_send, r_recv;
    const uint8_t *rs;

    assert_non_null(msgs);
    assert_int_equal(msgs->type, J_ARR);
    assert_true(msgs->n >= 2);
    assert_int_equal(hh_len, 64);
    hex_field32(v, "init_ephemeral", init_e);
    hex_field32(v, "resp_ephemeral", resp_e);
    hex_field32(v, "init_remote_static", init_rs);
    hex_field32(v, "resp_static", resp_s);
    if (p == KURER_NOISE_IK) {
        hex_field32(v, "init_static", init_s);
        assert_int_equal(kurer_noise_public_key(init_s_pub, init_s), 0);
    } else {
        assert_null(jget(v, "init_static"));
    }

    assert_int_equal(kurer_noise_hs_new(&ini, p, 1, ipro, ipro_len,
                                        p == KURER_NOISE_IK ? init_s : NULL, init_rs),
                     0);
    assert_int_equal(kurer_noise_hs_new(&res, p, 0, rpro, rpro_len, resp_s, NULL), 0);
    assert_int_equal(kurer_noise_hs_set_ephemeral(ini, init_e), 0);
    assert_int_equal(kurer_noise_hs_set_ephemeral(res, resp_e), 0);
    assert_null(kurer_noise_hs_remote_static(res));

    check_hs_message(ini, res, msgs->items[0]);
    assert_int_equal(kurer_noise_hs_finished(res), 0);
    check_hs_message(res, ini, msgs->items[1]);
    assert_int_equal(kurer_noise_hs_finished(ini), 1);
    assert_int_equal(kurer_noise_hs_finished(res), 1);

    assert_int_equal(kurer_noise_hs_handshake_hash(ini, hh_init), 0);
    assert_int_equal(kurer_noise_hs_handshake_hash(res, hh_resp), 0);
    assert_memory_equal(hh_init, hh, 64);
    assert_memory_equal(hh_resp, hh, 64);

    rs = kurer_noise_hs_remote_static(ini);
    assert_non_null(rs);
    assert_memory_equal(rs, init_rs, 32);
    rs = kurer_noise_hs_remote_static(res);
    if (p == KURER_NOISE_IK) {
        assert_non_null(rs);
        assert_memory_equal(rs, init_s_pub, 32);
    } else {
        assert_null(rs);
    }

    assert_int_equal(kurer_noise_hs_split(ini, &i_send, &i_recv), 0);
    assert_int_equal(kurer_noise_hs_split(res, &r_send, &r_recv), 0);
    for (i = 2; i < msgs->n; i++) {
        if (i % 2 == 0)
            check_transport(&i_send, &r_recv, msgs->items[i]);
        else
            check_transport(&r_send, &i_recv, msgs->items[i]);
    }

    kurer_noise_cipher_wipe(&i_send);
    kurer_noise_cipher_wipe(&i_recv);
    kurer_noise_cipher_wipe(&r_send);
    kurer_noise_cipher_wipe(&r_recv);
    kurer_noise_hs_free(ini);
    kurer_noise_hs_free(res);
    free(ipro);
    free(rpro);
    free(hh);
}

static void test_vectors(void **state)
{
    uint8_t *text;
    size_t len, i, n_ik = 0, n_nk = 0;
    jval *root;
    const jval *vectors;
    (void)state;

    assert_int_equal(kurer_crypto_init(), 0);
    assert_int_equal(
        kurer_file_read(KURER_VECTORS_DIR "/noise.json", 16 * 1024 * 1024, &text, &len), 0);
    root = jparse((const char *)text, len);
    free(text);
    assert_non_null(root);
    vectors = jget(root, "vectors");
    assert_non_null(vectors);
    assert_int_equal(vectors->type, J_ARR);

    for (i = 0; i < vectors->n; i++) {
        const char *name = jget_str(vectors->items[i], "protocol_name");
        assert_non_null(name);
        if (strcmp(name, "Noise_IK_25519_ChaChaPoly_BLAKE2b") == 0) {
            run_vector(vectors->items[i], KURER_NOISE_IK);
            n_ik++;
        } else if (strcmp(name, "Noise_NK_25519_ChaChaPoly_BLAKE2b") == 0) {
            run_vector(vectors->items[i], KURER_NOISE_NK);
            n_nk++;
        }
    }
    print_message("noise vectors: %zu IK, %zu NK passed\n", n_ik, n_nk);
    /* An empty or renamed vector file must not pass silently. */
    assert_true(n_ik > 0);
    assert_true(n_nk > 0);
    jfree(root);
}

/* The reader above is test code, but a wrong reader would make the vector test meaningless. */
static void test_json_reader(void **state)
{
    static const char doc[] = " {\"a\": [1, -2.5e3, \"x\\\"y\\u00e9\"], \"b\": {}, \"c\": [], "
                              "\"d\": true, \"e\": null} ";
    static const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "\"abc", "[1] x", "{\"a\":}"};
    jval *v = jparse(doc, strlen(doc));
    const jval *a;
    size_t i;
    (void)state;
    assert_non_null(v);
    a = jget(v, "a");
    assert_non_null(a);
    assert_int_equal(a->n, 3);
    assert_string_equal(a->items[1]->str, "-2.5e3");
    assert_string_equal(a->items[2]->str, "x\"y\xc3\xa9");
    assert_int_equal(jget(v, "b")->type, J_OBJ);
    assert_int_equal(jget(v, "c")->n, 0);
    assert_int_equal(jget(v, "d")->b, 1);
    assert_int_equal(jget(v, "e")->type, J_NULL);
    jfree(v);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(jparse(bad[i], strlen(bad[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_reader),
        cmocka_unit_test(test_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
