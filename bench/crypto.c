/* bench_crypto: crypto (bench/README.md).
 *
 *   bench_crypto [--smoke] [--seconds D]
 *
 * - Noise IK responder handshakes/s on one core, as the relay pays them: a new responder state,
 *   reading message 1, decoding the HandshakeInit payload, kurer_trust_verify_chain on the
 *   device chain, the static-key check, encoding the accept payload, writing message 2 and the
 *   split. The initiator's half is made outside the timed part.
 * - kurer_trust_verify_chain/s on a [device, authority] chain under one pinned root.
 * - Double Ratchet encrypt and decrypt/s for 200 B and 1 KiB plaintexts through our session
 *   module (client/session.h: kurer__session_encrypt / kurer__session_decrypt, libsignal
 *   underneath, every session record read from and written to the SQLCipher store). Each call
 *   is its own nested transaction; an outer transaction per 256 calls keeps fsync out of this
 *   figure (the store benchmark measures commits).
 * - Argon2id store-key derivation at kurer_kdf_default() (median of 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "homes.h"
#include "kurer/crypto.h"
#include "kurer/net.h"
#include "kurer/noise.h"
#include "kurer/util.h"
#include "session.h"
#include "store.h"

static double handshakes(bench_pki *pki, double seconds, uint64_t *count)
{
    uint8_t relay_sk[32], relay_pk[32];
    bench_device dev;
    kurer_trust *trust;
    if (kurer_noise_keypair(relay_pk, relay_sk) != 0 || kurer_trust_new(&trust) != 0 ||
        kurer_trust_add_root(trust, &pki->root, kurer_time_unix()) != 0)
        bench_die("handshake setup");
    bench_device_make(pki, &dev, "hs@mof", 77);
    double busy = 0;
    uint64_t n = 0;
    kurer_buf m1, m2, pl;
    kurer_buf_init(&m1, 65535);
    kurer_buf_init(&m2, 65535);
    kurer_buf_init(&pl, 65535);
    while (busy < seconds) {
        kurer_noise_hs *ini, *resp;
        kurer_buf_reset(&m1);
        kurer_buf_reset(&m2);
        kurer_buf_reset(&pl);
        if (kurer_noise_hs_new(&ini, KURER_NOISE_IK, 1, (const uint8_t *)KURER_NET_PROLOGUE,
                               sizeof(KURER_NET_PROLOGUE) - 1, dev.sk, relay_pk) != 0 ||
            kurer_noise_hs_write_message(ini, dev.hello, dev.hello_len, &m1) != 0)
            bench_die("initiator");
        uint64_t t0 = bench_now_ns();
        /* --- what the relay does for one connection --- */
        static kurer_handshake_init hi;
        kurer_verified v;
        kurer_handshake_accept acc;
        uint8_t accbuf[512];
        kurer_buf ab;
        kurer_noise_cipher tx, rx;
        /* as net/ does for the relay: the static public key is computed once, at load */
        if (kurer_noise_hs_new_with_public(
                &resp, KURER_NOISE_IK, 0, (const uint8_t *)KURER_NET_PROLOGUE,
                sizeof(KURER_NET_PROLOGUE) - 1, relay_sk, relay_pk, NULL) != 0 ||
            kurer_noise_hs_read_message(resp, m1.data, m1.len, &pl) != 0 ||
            kurer_handshake_init_decode(pl.data, pl.len, &hi) != 0 ||
            kurer_trust_verify_chain(trust, &hi.chain, kurer_time_unix(), &v) != 0 ||
            !kurer_ct_equal(v.noise_key, kurer_noise_hs_remote_static(resp), 32))
            bench_die("responder refused");
        memset(&acc, 0, sizeof(acc));
        acc.protocol_version = KURER_PROTOCOL_VERSION;
        acc.server_time = kurer_time_unix() * 1000;
        kurer_buf_init_fixed(&ab, accbuf, sizeof(accbuf));
        if (kurer_handshake_accept_encode(&acc, &ab) != 0 ||
            kurer_noise_hs_write_message(resp, ab.data, ab.len, &m2) != 0 ||
            kurer_noise_hs_split(resp, &tx, &rx) != 0)
            bench_die("responder reply");
        kurer_noise_hs_free(resp);
        busy += (double)(bench_now_ns() - t0) / 1e9;
        n++;
        kurer_noise_cipher_wipe(&tx);
        kurer_noise_cipher_wipe(&rx);
        kurer_noise_hs_free(ini);
    }
    kurer_buf_release(&m1);
    kurer_buf_release(&m2);
    kurer_buf_release(&pl);
    bench_device_free(&dev);
    kurer_trust_free(trust);
    kurer_memzero(relay_sk, sizeof(relay_sk));
    *count = n;
    return (double)n / busy;
}

static double verifications(bench_pki *pki, double seconds)
{
    static kurer_chain chain;
    uint8_t sk[32], pk[32];
    kurer_trust *trust;
    kurer_verified v;
    if (kurer_trust_new(&trust) != 0 ||
        kurer_trust_add_root(trust, &pki->root, kurer_time_unix()) != 0)
        bench_die("trust");
    bench_make_chain(pki, "v@mof", 78, sk, pk, &chain);
    uint64_t n = 0, t0 = bench_now_ns(), t;
    do {
        for (int i = 0; i < 64; i++)
            if (kurer_trust_verify_chain(trust, &chain, kurer_time_unix(), &v) != 0)
                bench_die("verify");
        n += 64;
        t = bench_now_ns();
    } while ((double)(t - t0) / 1e9 < seconds);
    kurer_trust_free(trust);
    return (double)n / ((double)(t - t0) / 1e9);
}

typedef struct ct {
    uint8_t id[KURER_ENVELOPE_ID_LEN];
    kurer_envelope_type type;
    uint8_t *data;
    size_t len;
} ct;

static int noop(void *ud, const kurer_verified *sender, const uint8_t *pt, size_t n)
{
    (void)ud;
    (void)sender;
    (void)pt;
    (void)n;
    return 0;
}

/* Encrypts from a to b for `seconds` (at most cap messages), then decrypts all at b. */
static void ratchet(bench_home *a, bench_home *b, size_t size, double seconds, size_t cap,
                    double *enc_s, double *dec_s)
{
    kurer__session *sa = kurer__home_session(a->k), *sb = kurer__home_session(b->k);
    kurer__store *sta = kurer__home_store(a->k), *stb = kurer__home_store(b->k);
    const char *ua = a->chain.certs[0].body.subject, *ub = b->chain.certs[0].body.subject;
    ct *v = calloc(cap, sizeof(*v));
    uint8_t pt[1024];
    if (v == NULL)
        abort();
    memset(pt, 'x', sizeof(pt));
    size_t n = 0;
    uint64_t t0 = bench_now_ns(), t = t0;
    while (n < cap && (double)(t - t0) / 1e9 < seconds) {
        if (n % 256 == 0 && kurer__store_begin(sta) != 0)
            bench_die("begin");
        kurer_buf out;
        kurer_buf_init(&out, KURER__CIPHERTEXT_MAX);
        if (kurer__session_encrypt(sa, ub, 1, pt, size, &out, &v[n].type) != 0)
            bench_die("encrypt");
        v[n].data = kurer_buf_steal(&out, &v[n].len);
        kurer_random(v[n].id, sizeof(v[n].id));
        n++;
        if (n % 256 == 0 && kurer__store_commit(sta) != 0)
            bench_die("commit");
        t = bench_now_ns();
    }
    if (n % 256 != 0 && kurer__store_commit(sta) != 0)
        bench_die("commit");
    t = bench_now_ns();
    *enc_s = (double)n / ((double)(t - t0) / 1e9);
    t0 = bench_now_ns();
    for (size_t i = 0; i < n; i++) {
        if (i % 256 == 0 && kurer__store_begin(stb) != 0)
            bench_die("begin");
        if (kurer__session_decrypt(sb, v[i].id, ua, 1, v[i].type, v[i].data, v[i].len, noop,
                                   NULL) != 0)
            bench_die("decrypt %zu", i);
        if ((i + 1) % 256 == 0 && kurer__store_commit(stb) != 0)
            bench_die("commit");
    }
    if (n % 256 != 0 && kurer__store_commit(stb) != 0)
        bench_die("commit");
    t = bench_now_ns();
    *dec_s = (double)n / ((double)(t - t0) / 1e9);
    for (size_t i = 0; i < n; i++)
        free(v[i].data);
    free(v);
}

static double argon2id_ms(int runs)
{
    double ms[3] = {0};
    uint8_t out[32], salt[KURER_SALT_LEN];
    kurer_kdf_params p = kurer_kdf_default();
    kurer_random(salt, sizeof(salt));
    for (int i = 0; i < runs; i++) {
        uint64_t t0 = bench_now_ns();
        if (kurer_kdf_derive(out, "correct horse battery staple", 28, salt, &p) != 0)
            bench_die("kdf");
        ms[i] = (double)(bench_now_ns() - t0) / 1e6;
    }
    kurer_memzero(out, sizeof(out));
    /* median */
    for (int i = 0; i < runs; i++)
        for (int k = i + 1; k < runs; k++)
            if (ms[k] < ms[i]) {
                double x = ms[i];
                ms[i] = ms[k];
                ms[k] = x;
            }
    return ms[runs / 2];
}

int main(int argc, char **argv)
{
    double seconds = 2;
    int smoke = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0)
            smoke = 1;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_crypto [--smoke] [--seconds D]\n");
            return 2;
        }
    }
    if (smoke)
        seconds = 0.1;
    bench_pki pki;
    bench_pki_init(&pki);
    uint64_t n_hs;
    double hs = handshakes(&pki, seconds, &n_hs);
    double ver = verifications(&pki, seconds);
    bench_home a, b;
    bench_home_create(&pki, &a, "anna@mof", 501, "bench", kurer_kdf_minimum());
    bench_home_create(&pki, &b, "bob@mof", 502, "bench", kurer_kdf_minimum());
    bench_homes_pair(&a, &b);
    double e200, d200, e1k, d1k;
    ratchet(&a, &b, 200, seconds, smoke ? 200 : 200000, &e200, &d200);
    ratchet(&a, &b, 1024, seconds, smoke ? 200 : 200000, &e1k, &d1k);
    kurer_close(a.k);
    kurer_close(b.k);
    bench_home_remove(&a);
    bench_home_remove(&b);
    double kdf = argon2id_ms(smoke ? 1 : 3);
    kurer_kdf_params p = kurer_kdf_default();
    bench_json j;
    bench_json_begin(&j, "crypto");
    bench_json_num(&j, "noise_ik_handshakes_per_s", hs);
    bench_json_num(&j, "chain_verifications_per_s", ver);
    bench_json_num(&j, "ratchet_encrypt_per_s", e200);
    bench_json_num(&j, "ratchet_decrypt_per_s", d200);
    bench_json_num(&j, "ratchet_encrypt_1k_per_s", e1k);
    bench_json_num(&j, "ratchet_decrypt_1k_per_s", d1k);
    bench_json_int(&j, "ratchet_plaintext_bytes", 200);
    bench_json_str(&j, "ratchet_via", "client/session.h (kurer__session_*), libsignal-protocol-c");
    bench_json_num(&j, "argon2id_ms", kdf);
    bench_json_int(&j, "argon2id_ops", p.opslimit);
    bench_json_int(&j, "argon2id_mem_bytes", p.memlimit);
    bench_json_int(&j, "handshakes_timed", n_hs);
    bench_json_end(&j, argc, argv);
    printf("# crypto summary: %.0f Noise IK responder handshakes/s with chain verification "
           "(target 4000), %.0f chain verifications/s, ratchet encrypt/decrypt %.0f/%.0f per s "
           "(200 B) and %.0f/%.0f per s (1 KiB), Argon2id %.0f ms (%u passes, %llu MiB)\n",
           hs, ver, e200, d200, e1k, d1k, kdf, p.opslimit, (unsigned long long)(p.memlimit >> 20));
    bench_pki_free(&pki);
    return 0;
}
