/* bench_sframe: sframe (bench/README.md, issue 14).
 *
 *   bench_sframe [--smoke] [--seconds D] [--rounds R] [--size N]
 *
 * On one core (this single thread), for N-byte (160) frames:
 * - protect_per_s: kurer_sframe_protect with suite 5 (AES_256_GCM_SHA512_128) under a per-call
 *   key and a two-byte KID, as a call sends them (header, AEAD with the header as associated
 *   data, counter bookkeeping);
 * - unprotect_per_s: kurer_sframe_unprotect of such frames in order (header parse, key lookup,
 *   replay window check and update, AEAD open);
 * - aes_gcm_per_s: raw AES-256-GCM sealing of N bytes through EVP in the same process, a keyed
 *   EVP_CIPHER_CTX with a fresh 12-byte IV per frame and no associated data: the floor SFrame
 *   is held to. This file is the one place outside crypto/ that includes OpenSSL: it measures it.
 * The three alternate in R rounds of D/R seconds each and each figure is the median of its
 * rounds, so that a burst of load elsewhere on the shared machine hits all three alike. Time is
 * the thread's CPU time (CLOCK_THREAD_CPUTIME_ID): operations per CPU-second of one core.
 * ratio = min(protect, unprotect) / aes_gcm. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "kurer/crypto.h"
#include "kurer/sframe.h"

#define BATCH 4096 /* frames protected ahead for an unprotect round */

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct ctx {
    size_t size;
    uint8_t key[32];
    uint64_t kid;
    kurer_sframe_send *send; /* for protect rounds */
    kurer_sframe_send *feed; /* makes the frames unprotect rounds open */
    kurer_sframe_recv *recv;
    uint8_t *pt, *frames, *out;
    size_t *lens, stride;
    EVP_CIPHER_CTX *gcm;
    uint64_t iv_ctr;
} ctx;

static double round_protect(ctx *c, double seconds)
{
    uint64_t n = 0;
    double t0 = cpu_s(), t;
    size_t len;
    do {
        for (int i = 0; i < 256; i++)
            if (kurer_sframe_protect(c->send, NULL, 0, c->pt, c->size, c->out, c->stride, &len) !=
                0)
                bench_die("protect");
        n += 256;
        t = cpu_s();
    } while (t - t0 < seconds);
    return (double)n / (t - t0);
}

static double round_unprotect(ctx *c, double seconds)
{
    uint64_t n = 0;
    double busy = 0;
    size_t len;
    while (busy < seconds) {
        for (size_t i = 0; i < BATCH; i++)
            if (kurer_sframe_protect(c->feed, NULL, 0, c->pt, c->size, c->frames + i * c->stride,
                                     c->stride, &c->lens[i]) != 0)
                bench_die("protect");
        double t0 = cpu_s();
        for (size_t i = 0; i < BATCH; i++)
            if (kurer_sframe_unprotect(c->recv, NULL, 0, c->frames + i * c->stride, c->lens[i],
                                       c->out, c->stride, &len, NULL) != 0)
                bench_die("unprotect %zu", i);
        busy += cpu_s() - t0;
        n += BATCH;
    }
    return (double)n / busy;
}

static double round_gcm(ctx *c, double seconds)
{
    uint8_t iv[12] = {0};
    uint64_t n = 0;
    double t0 = cpu_s(), t;
    int len = 0;
    do {
        for (int i = 0; i < 256; i++) {
            c->iv_ctr++;
            memcpy(iv + 4, &c->iv_ctr, 8);
            if (EVP_EncryptInit_ex(c->gcm, NULL, NULL, NULL, iv) != 1 ||
                EVP_EncryptUpdate(c->gcm, c->out, &len, c->pt, (int)c->size) != 1 ||
                EVP_EncryptFinal_ex(c->gcm, c->out + len, &len) != 1 ||
                EVP_CIPHER_CTX_ctrl(c->gcm, EVP_CTRL_GCM_GET_TAG, 16, c->out + c->size) != 1)
                bench_die("EVP AES-256-GCM");
        }
        n += 256;
        t = cpu_s();
    } while (t - t0 < seconds);
    return (double)n / (t - t0);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void setup(ctx *c, size_t size)
{
    uint8_t caller[32], callee[32];
    memset(c, 0, sizeof *c);
    c->size = size;
    c->stride = size + KURER_SFRAME_MAX_OVERHEAD;
    kurer_random(caller, sizeof caller);
    kurer_random(callee, sizeof callee);
    if (kurer_sframe_call_key_ids(1, caller, callee, KURER_SFRAME_CALLER_TO_CALLEE, &c->kid,
                                  c->key) != 0 ||
        kurer_sframe_send_new(&c->send, KURER_SFRAME_CALL_SUITE, c->kid, c->key, 32) != 0 ||
        kurer_sframe_send_new(&c->feed, KURER_SFRAME_CALL_SUITE, c->kid, c->key, 32) != 0 ||
        kurer_sframe_recv_new(&c->recv) != 0 ||
        kurer_sframe_recv_add_key(c->recv, KURER_SFRAME_CALL_SUITE, c->kid, c->key, 32) != 0)
        bench_die("sframe setup");
    c->pt = malloc(size);
    c->out = malloc(c->stride);
    c->frames = malloc(BATCH * c->stride);
    c->lens = calloc(BATCH, sizeof c->lens[0]);
    c->gcm = EVP_CIPHER_CTX_new();
    if (c->pt == NULL || c->out == NULL || c->frames == NULL || c->lens == NULL || c->gcm == NULL ||
        EVP_EncryptInit_ex(c->gcm, EVP_aes_256_gcm(), NULL, c->key, NULL) != 1)
        bench_die("setup");
    kurer_random(c->pt, size);
    kurer_memzero(caller, sizeof caller);
    kurer_memzero(callee, sizeof callee);
}

static void teardown(ctx *c)
{
    kurer_sframe_send_free(c->send);
    kurer_sframe_send_free(c->feed);
    kurer_sframe_recv_free(c->recv);
    EVP_CIPHER_CTX_free(c->gcm);
    kurer_memzero(c->key, sizeof c->key);
    free(c->pt);
    free(c->out);
    free(c->frames);
    free(c->lens);
}

int main(int argc, char **argv)
{
    double seconds = 6, p[64] = {0}, u[64] = {0}, g[64] = {0};
    int rounds = 12, smoke = 0;
    size_t size = 160;
    ctx c;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0)
            smoke = 1;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            size = (size_t)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_sframe [--smoke] [--seconds D] [--rounds R] "
                            "[--size N]\n");
            return 2;
        }
    }
    if (smoke)
        seconds = 0.15, rounds = 3;
    if (rounds < 1 || rounds > 64 || seconds <= 0 || size < 1 || size > 65000)
        bench_die("bad arguments");
    if (kurer_crypto_init() != 0)
        bench_die("crypto init");
    setup(&c, size);
    double each = seconds / rounds / 3;
    for (int r = 0; r < rounds; r++) {
        g[r] = round_gcm(&c, each);
        p[r] = round_protect(&c, each);
        u[r] = round_unprotect(&c, each);
    }
    double gm = median(g, rounds), pm = median(p, rounds), um = median(u, rounds);
    bench_json j;
    bench_json_begin(&j, "sframe");
    bench_json_num(&j, "protect_per_s", pm);
    bench_json_num(&j, "unprotect_per_s", um);
    bench_json_num(&j, "aes_gcm_per_s", gm);
    bench_json_num(&j, "ratio", (pm < um ? pm : um) / gm);
    bench_json_num(&j, "protect_ratio", pm / gm);
    bench_json_num(&j, "unprotect_ratio", um / gm);
    bench_json_int(&j, "frame_bytes", size);
    bench_json_int(&j, "wire_bytes", kurer_sframe_send_frame_len(c.send, size));
    bench_json_int(&j, "suite", KURER_SFRAME_CALL_SUITE);
    bench_json_int(&j, "rounds", (uint64_t)rounds);
    bench_json_str(&j, "clock", "thread_cpu");
    bench_json_end(&j, argc, argv);
    printf("# sframe: %zu-byte frames, one core: protect %.0f/s, unprotect %.0f/s, raw "
           "AES-256-GCM %.0f/s; ratio %.2f (target >= 0.7)\n",
           size, pm, um, gm, (pm < um ? pm : um) / gm);
    teardown(&c);
    return 0;
}
