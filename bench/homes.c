/* Device homes for the client benchmarks (see homes.h). */
#include "homes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kurer/crypto.h"
#include "kurer/csr.h"
#include "kurer/kurer.h"
#include "kurer/util.h"
#include "session.h"
#include "store.h"

void bench_home_create(bench_pki *p, bench_home *h, const char *user, uint64_t serial,
                       const char *pass, kurer_kdf_params kdf)
{
    uint8_t relay_key[32];
    kurer_random(relay_key, sizeof(relay_key));
    bench_home_create_at(p, h, user, serial, pass, kdf, "127.0.0.1:4433", relay_key, NULL);
}

void bench_home_create_at(bench_pki *p, bench_home *h, const char *user, uint64_t serial,
                          const char *pass, kurer_kdf_params kdf, const char *relay,
                          const uint8_t relay_key[32], const char *parent)
{
    kurer_create_options o;
    kurer_buf buf;
    uint8_t *data = NULL;
    size_t len = 0;
    kurer_csr csr;
    kurer_cert_body b;
    memset(h, 0, sizeof(*h));
    memset(&o, 0, sizeof(o));
    snprintf(h->home, sizeof(h->home), "%s/kurer-bench-home-XXXXXX",
             parent != NULL ? parent : "/tmp");
    if (mkdtemp(h->home) == NULL)
        bench_die("mkdtemp");
    o.home = h->home;
    o.user = user;
    o.device_id = 1;
    o.relay = relay;
    memcpy(o.relay_key, relay_key, sizeof(o.relay_key));
    o.root = p->root_bytes;
    o.root_len = p->root_len;
    o.kdf_ops = kdf.opslimit;
    o.kdf_mem = kdf.memlimit;
    if (kurer_create(&o, pass, strlen(pass), NULL, &h->k) != 0)
        bench_die("kurer_create %s", user);
    if (kurer_file_read(kurer_csr_path(h->k), 8192, &data, &len) != 0 ||
        kurer_csr_decode(data, len, &csr) != 0 || kurer_csr_verify(&csr) != 0)
        bench_die("csr of %s", user);
    free(data);
    int64_t now = kurer_time_unix();
    memset(&b, 0, sizeof(b));
    b.version = 1;
    b.serial = serial;
    b.role = KURER_ROLE_DEVICE;
    snprintf(b.subject, sizeof(b.subject), "%s", csr.body.subject);
    snprintf(b.display_name, sizeof(b.display_name), "%s", csr.body.subject);
    b.clearance = KURER_LEVEL_CONFIDENTIAL;
    b.not_before = now - BENCH_DAY;
    b.not_after = now + 30 * BENCH_DAY;
    b.device_id = csr.body.device_id;
    memcpy(b.identity_key, csr.body.identity_key, sizeof(b.identity_key));
    memcpy(b.noise_key, csr.body.noise_key, sizeof(b.noise_key));
    if (kurer_cert_sign(&b, &p->auth_key, &h->chain.certs[0]) != 0)
        bench_die("sign %s", user);
    h->chain.certs[1] = p->auth;
    h->chain.n = 2;
    kurer_buf_init_fixed(&buf, h->chain_bytes, sizeof(h->chain_bytes));
    if (kurer_chain_encode(&h->chain, &buf) != 0)
        bench_die("chain of %s", user);
    h->chain_len = buf.len;
    if (kurer_import_chain(h->k, h->chain_bytes, h->chain_len) != 0)
        bench_die("import chain of %s", user);
}

typedef struct grab_ctx {
    uint8_t id[KURER_ENVELOPE_ID_LEN];
    int type;
    uint8_t *ct;
    size_t len;
    int64_t rowid;
} grab_ctx;

static int grab(void *ud, const kurer__outbox_item *it)
{
    grab_ctx *g = ud;
    memcpy(g->id, it->envelope_id, sizeof(g->id));
    g->type = it->type;
    g->rowid = it->rowid;
    g->ct = malloc(it->content_len);
    if (g->ct == NULL)
        abort();
    memcpy(g->ct, it->content, it->content_len);
    g->len = it->content_len;
    return 0;
}

void bench_homes_pair(bench_home *a, bench_home *b)
{
    static kurer__prekeys pk;
    static kurer_prekey_bundle bundle;
    kurer_refusal why;
    grab_ctx g;
    int state;
    if (kurer_add_peer(a->k, b->chain_bytes, b->chain_len) != 0 ||
        kurer_add_peer(b->k, a->chain_bytes, a->chain_len) != 0)
        bench_die("add_peer");
    if (kurer__session_generate_prekeys(kurer__home_session(b->k), 10, &pk) != 0)
        bench_die("prekeys");
    memset(&bundle, 0, sizeof(bundle));
    snprintf(bundle.address.user, sizeof(bundle.address.user), "%s",
             b->chain.certs[0].body.subject);
    bundle.address.device_id = 1;
    bundle.registration_id = pk.registration_id;
    bundle.signed_prekey = pk.signed_prekey;
    bundle.has_one_time = 1;
    bundle.one_time = pk.one_time[0];
    bundle.chain = b->chain;
    if (kurer__session_process_bundle(kurer__home_session(a->k), &bundle) != 0)
        bench_die("process_bundle");
    memset(&g, 0, sizeof(g));
    if (kurer__home_queue(a->k, b->chain.certs[0].body.subject, KURER_LEVEL_RESTRICTED, "hej", &why,
                          NULL) != 0 ||
        kurer__store_outbox_each_due(kurer__home_store(a->k), INT64_MAX, grab, &g) != 0 ||
        g.ct == NULL || kurer__store_outbox_done(kurer__home_store(a->k), g.rowid) != 0)
        bench_die("first message");
    if (kurer__home_receive(b->k, g.id, a->chain.certs[0].body.subject, 1,
                            (kurer_envelope_type)g.type, g.ct, g.len, &state) != 0)
        bench_die("first message not received");
    free(g.ct);
}

void bench_home_remove(bench_home *h)
{
    const char *names[] = {"store.db",      "store.db-wal", "store.db-shm",   "store.kdf",
                           "store.kdf.new", "device.csr",   "device.csr.txt", ".lock"};
    char p[512];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", h->home, names[i]);
        unlink(p);
    }
    rmdir(h->home);
}

uint64_t bench_home_bytes(const bench_home *h)
{
    const char *names[] = {"store.db", "store.db-wal"};
    char p[512];
    uint64_t total = 0;
    struct stat st;
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/%s", h->home, names[i]);
        if (stat(p, &st) == 0)
            total += (uint64_t)st.st_size;
    }
    return total;
}
