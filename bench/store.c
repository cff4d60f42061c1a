/* bench_store: store (bench/README.md).
 *
 *   bench_store [--smoke] [--seconds D] [--messages N]
 *
 * Bob's device home (SQLCipher, WAL, synchronous=FULL, Argon2id at kurer_kdf_default())
 * receives messages that Anna's home encrypted (padded Content, 200-byte bodies):
 * - commits_per_s: received-message commits, each the path a client takes per delivered
 *   envelope: kurer__home_receive (decrypt, the ratchet step and the message row in one
 *   transaction) and the ack bookkeeping (the seq to ack, a counter row) in that same
 *   transaction, then the commit (fsync);
 * - open_ms: kurer_open of the home holding N messages by passphrase (Argon2id included), and
 *   open_key_ms with the raw key (what a mobile app pays);
 * - bytes_per_message: growth of store.db + store.db-wal from before the first to after the
 *   N-th message, once closed (checkpointed), over N. The messages after the timed part are
 *   received through the same call inside transactions of 500 to save time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "homes.h"
#include "kurer/crypto.h"
#include "kurer/kurer.h"
#include "kurer/util.h"
#include "session.h"
#include "store.h"

#define PASS "bench passphrase"

typedef struct env {
    uint8_t id[KURER_ENVELOPE_ID_LEN];
    int type;
    uint8_t *ct;
    size_t len;
} env;

typedef struct grab_ctx {
    env *e;
    size_t n;
    int64_t rowid;
} grab_ctx;

static int grab(void *ud, const kurer__outbox_item *it)
{
    grab_ctx *g = ud;
    env *e = &g->e[g->n];
    memcpy(e->id, it->envelope_id, sizeof(e->id));
    e->type = it->type;
    e->ct = malloc(it->content_len);
    if (e->ct == NULL)
        abort();
    memcpy(e->ct, it->content, it->content_len);
    e->len = it->content_len;
    g->rowid = it->rowid;
    return 0;
}

/* Anna queues n messages (outer transactions of 500) and hands over their envelopes. */
static env *encrypt_all(bench_home *a, const char *to, size_t n)
{
    env *v = calloc(n, sizeof(*v));
    kurer__store *st = kurer__home_store(a->k);
    char body[201];
    kurer_refusal why;
    if (v == NULL)
        abort();
    memset(body, 'm', 200);
    body[200] = '\0';
    for (size_t i = 0; i < n; i++) {
        grab_ctx g = {v, i, 0};
        if (i % 500 == 0 && kurer__store_begin(st) != 0)
            bench_die("begin");
        if (kurer__home_queue(a->k, to, KURER_LEVEL_RESTRICTED, body, &why, NULL) != 0 ||
            kurer__store_outbox_each_due(st, INT64_MAX, grab, &g) != 0 ||
            kurer__store_outbox_done(st, g.rowid) != 0)
            bench_die("queue %zu", i);
        if ((i + 1) % 500 == 0 && kurer__store_commit(st) != 0)
            bench_die("commit");
    }
    if (n % 500 != 0 && kurer__store_commit(st) != 0)
        bench_die("commit");
    return v;
}

static void receive(bench_home *b, const char *from, env *e, uint64_t seq)
{
    kurer__store *st = kurer__home_store(b->k);
    int state;
    if (kurer__store_begin(st) != 0)
        bench_die("begin");
    if (kurer__home_receive(b->k, e->id, from, 1, (kurer_envelope_type)e->type, e->ct, e->len,
                            &state) != 0 ||
        kurer__store_counter_set(st, "bench_ack_seq", seq) != 0)
        bench_die("receive %llu", (unsigned long long)seq);
    if (kurer__store_commit(st) != 0)
        bench_die("commit");
}

int main(int argc, char **argv)
{
    double seconds = 3;
    size_t total = 100000;
    int smoke = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0)
            smoke = 1;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc)
            total = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_store [--smoke] [--seconds D] [--messages N]\n");
            return 2;
        }
    }
    if (smoke) {
        seconds = 0.2;
        total = 300;
    }
    bench_pki pki;
    bench_pki_init(&pki);
    bench_home a, b;
    bench_home_create(&pki, &a, "anna@mof", 601, PASS, kurer_kdf_minimum());
    bench_home_create(&pki, &b, "bob@mof", 602, PASS, kurer_kdf_default());
    bench_homes_pair(&a, &b);
    env *v = encrypt_all(&a, "bob@mof", total);
    kurer_close(b.k);
    uint64_t bytes0 = bench_home_bytes(&b);
    uint8_t key[32];
    kurer_random(key, sizeof(key));
    if (kurer_open(b.home, PASS, strlen(PASS), NULL, NULL, NULL, &b.k) != 0)
        bench_die("reopen");

    /* timed: one commit per received message */
    size_t i = 0;
    uint64_t t0 = bench_now_ns(), t = t0;
    while (i < total && (double)(t - t0) / 1e9 < seconds) {
        receive(&b, "anna@mof", &v[i], i + 1);
        i++;
        t = bench_now_ns();
    }
    double commits = (double)i / ((double)(t - t0) / 1e9);
    size_t timed = i;
    /* the rest, for the size, in transactions of 500 */
    kurer__store *st = kurer__home_store(b.k);
    while (i < total) {
        if (kurer__store_begin(st) != 0)
            bench_die("begin");
        for (size_t k = 0; k < 500 && i < total; k++, i++) {
            int state;
            if (kurer__home_receive(b.k, v[i].id, "anna@mof", 1, (kurer_envelope_type)v[i].type,
                                    v[i].ct, v[i].len, &state) != 0 ||
                kurer__store_counter_set(st, "bench_ack_seq", i + 1) != 0)
                bench_die("receive %zu", i);
        }
        if (kurer__store_commit(st) != 0)
            bench_die("commit");
    }
    if (kurer_passwd(b.k, NULL, 0, key) != 0) /* for the raw-key open below */
        bench_die("passwd");
    kurer_close(b.k);
    uint64_t bytes1 = bench_home_bytes(&b);

    t0 = bench_now_ns();
    if (kurer_open(b.home, NULL, 0, key, NULL, NULL, &b.k) != 0)
        bench_die("open by key");
    double open_key_ms = (double)(bench_now_ns() - t0) / 1e6;
    if (kurer_passwd(b.k, PASS, strlen(PASS), NULL) != 0)
        bench_die("passwd back");
    kurer_close(b.k);
    t0 = bench_now_ns();
    if (kurer_open(b.home, PASS, strlen(PASS), NULL, NULL, NULL, &b.k) != 0)
        bench_die("open by passphrase");
    double open_ms = (double)(bench_now_ns() - t0) / 1e6;
    kurer_close(b.k);
    kurer_close(a.k);
    double per_msg = (double)(bytes1 - bytes0) / (double)total;

    bench_json j;
    bench_json_begin(&j, "store");
    bench_json_num(&j, "commits_per_s", commits);
    bench_json_int(&j, "commits_timed", timed);
    bench_json_num(&j, "open_ms", open_ms);
    bench_json_num(&j, "open_key_ms", open_key_ms);
    bench_json_num(&j, "bytes_per_message", per_msg);
    bench_json_int(&j, "messages", total);
    bench_json_int(&j, "store_bytes", bytes1);
    bench_json_int(&j, "body_bytes", 200);
    bench_json_end(&j, argc, argv);
    printf("# store summary: %.0f received-message commits/s, open %.0f ms by passphrase "
           "(Argon2id at the default) and %.1f ms by raw key with %zu messages, %.0f bytes per "
           "message on disk (%.1f MiB for %zu)\n",
           commits, open_ms, open_key_ms, total, per_msg, (double)(bytes1 - bytes0) / 1048576.0,
           total);
    for (size_t k = 0; k < total; k++)
        free(v[k].ct);
    free(v);
    bench_home_remove(&a);
    bench_home_remove(&b);
    kurer_memzero(key, sizeof(key));
    bench_pki_free(&pki);
    return 0;
}
