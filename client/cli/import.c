/* kurer import: this device's issued chain, a peer's chain, or a revocation list. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kurer/armor.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

static const char help_import[] =
    "usage: kurer import --home H FILE... [--json]\n"
    "       kurer import --home H --invite-status [--wait SECONDS] [--json]\n"
    "\n"
    "Imports files from the administrator, binary or armoured text (-----BEGIN KURER ...),\n"
    "each checked against the pinned root:\n"
    "  - this device's issued chain (kurer-admin issue --out), or its device certificate and\n"
    "    the authority certificate as two files: the keys must be this device's;\n"
    "  - a peer device's chain: kept as that device's certificate;\n"
    "  - a revocation list (an authority's crl): effective at once.\n"
    "After importing this device's own chain it connects to the relay once (up to 30 s), which\n"
    "uploads its prekeys: until a device has connected, nobody can send to it. It says whether\n"
    "that worked; if not, run kurer recv once the relay is reachable.\n"
    "--invite-status: after kurer init --invite, asks the relay whether the administrator\n"
    "has approved the request, and if so imports the chain it returned (then connects once);\n"
    "--wait SECONDS asks every 2 s for up to that long. Exit 3 while it waits for approval.\n"
    "--json: {\"ok\":true,\"imported\":[{\"file\",\"kind\",\"result\",...}],\"enrolled\":...,\n"
    "\"connected\":...}; kind is own_chain, own_certificate, peer_chain or revocation_list.\n";

/* One imported file, for --json's "imported" array. */
#define MAX_FILES 8
#define FILE_MAX  ((size_t)KURER_CRL_BYTES_MAX + 65536)

/* An import: the files, and what became of them (for --json's "imported" array). */
typedef struct import_ctx {
    kurer *k;
    size_t n;
    const char *path[MAX_FILES];
    uint8_t *data[MAX_FILES];
    size_t len[MAX_FILES];
    kurer_armor_kind armor[MAX_FILES]; /* the label of an armoured file */
    int own;                           /* this device's own chain or certificate was imported */
    kurer_buf rows;
    kurer_json j;
} import_ctx;

static void import_row(import_ctx *x, const char *file, const char *kind, const char *result,
                       const char *user, uint32_t device)
{
    if (!g_json)
        return;
    kurer_json_begin_object(&x->j);
    kurer_json_kv_str(&x->j, "file", file);
    kurer_json_kv_str(&x->j, "kind", kind);
    kurer_json_kv_str(&x->j, "result", result);
    if (user != NULL) {
        kurer_json_kv_str(&x->j, "user", user);
        kurer_json_kv_uint(&x->j, "device", device);
    }
    kurer_json_end_object(&x->j);
}

/* File i as binary: armoured text decoded, its label kept to check against what it holds. */
static int dearmor(import_ctx *x, size_t i)
{
    int rc = kurer_armor_unwrap(&x->data[i], &x->len[i], &x->armor[i]);
    if (rc != 0)
        return refuse(rc, "%s is not valid armoured text: %s", x->path[i], kurer_strerror(rc));
    if (x->len[i] > FILE_MAX)
        return refuse(KURER_ELIMIT, "%s is too large to be what it should be", x->path[i]);
    if (x->armor[i] == KURER_ARMOR_REQUEST)
        return refuse(KURER_EARMORLABEL,
                      "%s is a certificate request: it goes to the administrator, who issues "
                      "the chain to import",
                      x->path[i]);
    return 0;
}

/* KURER_EARMORLABEL if file i was armoured under another label than kind. */
static int label_is(const import_ctx *x, size_t i, kurer_armor_kind kind)
{
    if (x->armor[i] == KURER_ARMOR_NONE || x->armor[i] == kind)
        return 0;
    return refuse(KURER_EARMORLABEL, "%s is labelled %s but holds a %s", x->path[i],
                  kurer_armor_label(x->armor[i]), kurer_armor_label(kind));
}

/* Two files that are both certificates: this device's and its authority's. 1 if they were
 * (and *rc says how it went), 0 to try them as chains and lists. */
static int import_pair(import_ctx *x, int *rc)
{
    kurer_cert *c = malloc(sizeof(*c));
    int two = x->n == 2 && c != NULL && kurer_cert_decode(x->data[0], x->len[0], c) == 0 &&
              kurer_cert_decode(x->data[1], x->len[1], c) == 0;
    free(c);
    if (!two)
        return 0;
    if ((*rc = label_is(x, 0, KURER_ARMOR_CERTIFICATE)) != 0 ||
        (*rc = label_is(x, 1, KURER_ARMOR_CERTIFICATE)) != 0)
        return 1;
    *rc = kurer_import_certs(x->k, x->data[0], x->len[0], x->data[1], x->len[1]);
    if (*rc != 0) {
        *rc =
            refuse(*rc, "%s is not this device's certificate: %s", x->path[0], kurer_strerror(*rc));
    } else {
        x->own = 1;
        import_row(x, x->path[0], "own_certificate", "imported", NULL, 0);
        if (!g_json)
            printf("imported this device's certificate\n");
    }
    return 1;
}

/* A chain: this device's own, or a peer's. */
static int import_chain(import_ctx *x, size_t i, const char *peer, uint32_t peer_dev)
{
    kurer *k = x->k;
    const char *path = x->path[i];
    int rc = kurer_import_chain(k, x->data[i], x->len[i]);
    if (rc == KURER_ESUBJECT) {
        rc = kurer_add_peer(k, x->data[i], x->len[i]);
        if (rc == 0) {
            import_row(x, path, "peer_chain", "imported", peer, peer_dev);
            if (!g_json)
                printf("%s: kept as a peer certificate (%s device %u)\n", path, peer, peer_dev);
            if (!g_json && !is_enrolled(k))
                printf("note: this device itself (%s device %u) is still not enrolled: import "
                       "its own chain, issued for %s\n",
                       kurer_own_user(k), kurer_own_device(k), kurer_csr_path(k));
        }
    } else if (rc == 0) {
        x->own = 1;
        import_row(x, path, "own_chain", "imported", peer, peer_dev);
        if (!g_json)
            printf("%s: imported this device's certificate chain\n", path);
    }
    if (rc == KURER_EKEYMISMATCH)
        return refuse(rc, "%s names this device but not its keys", path);
    if (rc != 0)
        return refuse(rc, "%s refused: %s", path, kurer_strerror(rc));
    return 0;
}

/* File i: a chain, or a revocation list. */
static int import_file(import_ctx *x, size_t i)
{
    const char *path = x->path[i];
    kurer_chain *ch = malloc(sizeof(*ch));
    int is_chain = ch != NULL && kurer_chain_decode(x->data[i], x->len[i], ch) == 0;
    char peer[KURER_SUBJECT_MAX + 1] = "";
    uint32_t peer_dev = 0;
    kurer_crl crl;
    int rc;
    if (is_chain) {
        snprintf(peer, sizeof(peer), "%s", ch->certs[0].body.subject);
        peer_dev = ch->certs[0].body.device_id;
    }
    free(ch);
    if (is_chain && (rc = label_is(x, i, KURER_ARMOR_CHAIN)) != 0)
        return rc;
    if (is_chain)
        return import_chain(x, i, peer, peer_dev);
    if (kurer_crl_decode(x->data[i], x->len[i], &crl) != 0)
        return refuse(KURER_EMALFORMED,
                      "%s is not a certificate chain, certificate or revocation list", path);
    char issuer[sizeof(crl.issuer)];
    snprintf(issuer, sizeof(issuer), "%s", crl.issuer);
    kurer_crl_release(&crl);
    if ((rc = label_is(x, i, KURER_ARMOR_CRL)) != 0)
        return rc;
    rc = kurer_add_revocations(x->k, x->data[i], x->len[i]);
    if (rc == KURER_ESTALE) {
        import_row(x, path, "revocation_list", "not_newer", NULL, 0);
        if (!g_json)
            printf("%s: not newer than the list held\n", path);
        return 0;
    }
    if (rc != 0)
        return refuse(rc, "%s refused: %s", path, kurer_strerror(rc));
    import_row(x, path, "revocation_list", "imported", NULL, 0);
    if (!g_json)
        printf("%s: revocation list imported (%s)\n", path, issuer);
    return 0;
}

/* Newly enrolled: connect once, so that the relay lists this device and holds its prekeys.
 * Until a device has connected, nobody can send to it. 0 if connected, else why not. */
int first_connect(kurer *k, const char *home)
{
    int cerr = kurer_connect(k, NET_TIMEOUT * 1000);
    if (cerr == 0) {
        if (!g_json)
            printf("connected to relay %s: prekeys uploaded; others can now send to you\n",
                   g_relay);
    } else {
        net_error(cerr, "could not connect");
        fprintf(stderr,
                "kurer: %s. Enrolled, but nobody can send to this device until it has connected "
                "once: run 'kurer recv --home %s' when the relay is reachable\n",
                reason(), home);
        clear_reason();
    }
    kurer_disconnect(k);
    return cerr;
}

static void import_done(import_ctx *x, int cerr)
{
    jline o;
    kurer_json_end_array(&x->j);
    jline_ok(&o);
    kurer_json_key(&o.j, "imported");
    kurer_json_raw(&o.j, x->rows.data, x->rows.len);
    kurer_json_kv_bool(&o.j, "enrolled", is_enrolled(x->k));
    if (x->own) {
        kurer_json_kv_bool(&o.j, "connected", cerr == 0);
        if (cerr != 0)
            kurer_json_kv_str(&o.j, "connect_error", kurer_err_name(cerr));
    }
    jline_end(&o);
}

/* --invite-status: the chain of an online enrolment, from the relay. */
static int import_invited(const kurer_args *a, const char *home)
{
    kurer *k = NULL;
    int wait_s = 0, rc;
    if (a->npos != 0)
        return usage_error("--invite-status takes no FILE");
    if ((rc = opt_seconds(a, "wait", 0, &wait_s)) != 0 || (rc = open_home(home, &k)) != 0)
        return rc;
    if (is_enrolled(k)) {
        if (!g_json)
            printf("this device is enrolled already\n");
        kurer_close(k);
        return 0;
    }
    rc = invite_wait(k, home, wait_s, RC_QUEUED);
    if (rc == 0 && g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_kv_bool(&o.j, "enrolled", is_enrolled(k));
        jline_end(&o);
    }
    kurer_close(k);
    return rc;
}

int cmd_import(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"invite-status", 0, 0}, {"wait", V, 0}};
    kurer_args a;
    const char *home;
    import_ctx x;
    int rc, cerr = 0;
    memset(&x, 0, sizeof(x));
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, MAX_FILES, "FILE", help_import, argc, argv)) !=
            0 ||
        (rc = need(&a, "home", &home)) != 0)
        return rc;
    if (flag(&a, "invite-status"))
        return import_invited(&a, home);
    if (a.npos == 0)
        return usage_error("no FILE given (or --invite-status)");
    if (opt(&a, "wait") != NULL)
        return usage_error("--wait goes with --invite-status");
    kurer_buf_init(&x.rows, KURER_BUF_HARD_MAX);
    kurer_json_init(&x.j, &x.rows);
    kurer_json_begin_array(&x.j);
    for (x.n = 0; x.n < a.npos; x.n++) {
        x.path[x.n] = a.pos[x.n];
        if ((rc = kurer_file_read(a.pos[x.n], FILE_MAX * 2, &x.data[x.n], &x.len[x.n])) != 0) {
            rc = refuse(rc, "cannot read %s: %s", a.pos[x.n], kurer_strerror(rc));
            goto out;
        }
        if ((rc = dearmor(&x, x.n)) != 0)
            goto out;
    }
    if ((rc = open_home(home, &x.k)) != 0)
        goto out;
    if (!import_pair(&x, &rc))
        for (size_t i = 0; i < x.n && rc == 0; i++)
            rc = import_file(&x, i);
    if (rc == 0 && x.own)
        cerr = first_connect(x.k, home);
    if (rc == 0 && g_json)
        import_done(&x, cerr);
out:
    kurer_buf_release(&x.rows);
    for (size_t i = 0; i < MAX_FILES; i++)
        free(x.data[i]);
    kurer_close(x.k);
    return rc;
}
