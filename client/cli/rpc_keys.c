/* Methods on this device's keys and the certificates it holds: rekey and import
 * (docs/client.md, "kurer daemon"). They run in the daemon and in `kurer rekey` / `kurer
 * import` when no daemon holds the home; the commands print their results (rekey.c, import.c).
 * Nothing here prints: what a local run used to print is in the result ("lines"), so that the
 * output is the same either way. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/armor.h"
#include "kurer/keys.h"
#include "kurer/util.h"
#include "rpc.h"

static int cert_status(void *ud, const kurer_peer_device *d)
{
    kurer_peer_device *out = ud;
    out->status = d->status;
    out->serial = d->serial;
    return 0;
}

static const char *const rekey_params[] = {"force", NULL};

/* rekey {force?}: {csr, user, device, identity_key, key_fingerprint, noise_key,
 * sessions_archived, messages_failed}; -32000 ESTATE while the home holds the certificate as
 * valid and force is not set. The connection made with the old keys ends: until the new chain
 * is imported (import), the device cannot connect. */
static int m_rekey(rpc_ctx *c, json_t *params, json_t **result)
{
    int force, rc;
    if ((rc = rpc_only(params, rekey_params)) || (rc = rpc_bool(params, "force", 0, &force)))
        return rc;
    kurer_peer_device cur;
    memset(&cur, 0, sizeof(cur));
    int crc = kurer_own_certificate(c->k, cert_status, &cur);
    if (crc == 0 && cur.status == 0 && !force)
        return refuse(KURER_ESTATE,
                      "the certificate of this device (serial %llu) is still valid as far as "
                      "this home knows; rekey replaces the keys it certifies, and the device "
                      "cannot connect until a new one is imported: give --force to do it anyway "
                      "(after a revocation, kurer import the authority's revocation list first)",
                      (unsigned long long)cur.serial);
    size_t archived = 0, failed = 0;
    if ((rc = kurer_rekey(c->k, &archived, &failed)) != 0)
        return refuse(rc, "cannot make new keys: %s", kurer_strerror(rc));
    char idk[2 * KURER_IDENTITY_KEY_LEN + 1], fp[65], nk[65];
    own_keys(c->k, idk, fp, nk);
    *result =
        json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:I,s:I}", "csr", kurer_csr_path(c->k), "user",
                  kurer_own_user(c->k), "device", (json_int_t)kurer_own_device(c->k),
                  "identity_key", idk, "key_fingerprint", fp, "noise_key", nk, "sessions_archived",
                  (json_int_t)archived, "messages_failed", (json_int_t)failed);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

/* ---- import */

#define MAX_FILES 8
#define FILE_MAX  ((size_t)KURER_CRL_BYTES_MAX + 65536)

typedef struct import_ctx {
    kurer *k;
    size_t n;
    const char *path[MAX_FILES]; /* as the user named them (for the words) */
    uint8_t *data[MAX_FILES];
    size_t len[MAX_FILES];
    kurer_armor_kind armor[MAX_FILES]; /* the label of an armoured file */
    int own;                           /* this device's own chain or certificate was imported */
    json_t *rows;                      /* {file, kind, result, user?, device?} */
    json_t *lines;                     /* what the command prints without --json */
} import_ctx;

__attribute__((format(printf, 2, 3))) static void say(import_ctx *x, const char *fmt, ...)
{
    char b[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof(b), fmt, ap);
    va_end(ap);
    json_array_append_new(x->lines, json_string(b));
}

static void import_row(import_ctx *x, const char *file, const char *kind, const char *result,
                       const char *user, uint32_t device)
{
    json_t *r = json_pack("{s:s,s:s,s:s}", "file", file, "kind", kind, "result", result);
    if (r != NULL && user != NULL) {
        json_object_set_new(r, "user", json_string(user));
        json_object_set_new(r, "device", json_integer(device));
    }
    if (r != NULL)
        json_array_append_new(x->rows, r);
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
        say(x, "imported this device's certificate");
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
            say(x, "%s: kept as a peer certificate (%s device %u)", path, peer, peer_dev);
            if (!is_enrolled(k))
                say(x,
                    "note: this device itself (%s device %u) is still not enrolled: import "
                    "its own chain, issued for %s",
                    kurer_own_user(k), kurer_own_device(k), kurer_csr_path(k));
        }
    } else if (rc == 0) {
        x->own = 1;
        import_row(x, path, "own_chain", "imported", peer, peer_dev);
        say(x, "%s: imported this device's certificate chain", path);
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
        say(x, "%s: not newer than the list held", path);
        return 0;
    }
    if (rc != 0)
        return refuse(rc, "%s refused: %s", path, kurer_strerror(rc));
    import_row(x, path, "revocation_list", "imported", NULL, 0);
    say(x, "%s: revocation list imported (%s)", path, issuer);
    return 0;
}

/* The params' files: {path (absolute: the daemon's working folder is not the client's),
 * name (as the user gave it)}, each read whole. */
static int import_read(import_ctx *x, json_t *files)
{
    size_t i;
    json_t *f;
    static const char *const file_params[] = {"path", "name", NULL};
    if (!json_is_array(files) || json_array_size(files) == 0 || json_array_size(files) > MAX_FILES)
        return usage_error("parameter 'files' must be a list of 1 to %d files", MAX_FILES);
    json_array_foreach(files, i, f)
    {
        const char *path, *name;
        int rc;
        if (!json_is_object(f))
            return usage_error("parameter 'files' holds {\"path\", \"name\"} objects");
        if ((rc = rpc_only(f, file_params)) || (rc = rpc_str(f, "path", 1, &path)) ||
            (rc = rpc_str(f, "name", 0, &name)))
            return rc;
        if (path[0] != '/')
            return usage_error("a file's 'path' must be an absolute path");
        x->path[i] = name != NULL ? name : path;
        x->n = i + 1;
        if ((rc = kurer_file_read(path, FILE_MAX * 2, &x->data[i], &x->len[i])) != 0)
            return refuse(rc, "cannot read %s: %s", x->path[i], kurer_strerror(rc));
        if ((rc = dearmor(x, i)) != 0)
            return rc;
    }
    return 0;
}

/* This device's own chain imported: connect, so that the relay lists the device and holds its
 * prekeys (until a device has connected, nobody can send to it). In the daemon the connection
 * stays; a command's own run closes it when it ends. */
static void import_connect(rpc_ctx *c, json_t *out)
{
    int cerr = kurer_connect(c->k, NET_TIMEOUT * 1000);
    json_object_set_new(out, "connected", json_boolean(cerr == 0));
    if (cerr == 0)
        return;
    net_error(cerr, "could not connect");
    json_object_set_new(out, "connect_error", json_string(kurer_err_name(cerr)));
    json_object_set_new(out, "connect_reason", json_string(reason()));
    clear_reason();
}

static const char *const import_params[] = {"files", NULL};

/* import {files: [{path, name?}]}: {imported: [{file, kind, result, user?, device?}], lines,
 * enrolled, relay, and after this device's own chain connected (connect_error,
 * connect_reason)}. On a refusal the error's data has the lines of the files done before. */
static int m_import(rpc_ctx *c, json_t *params, json_t **result)
{
    import_ctx x;
    int rc;
    memset(&x, 0, sizeof(x));
    x.k = c->k;
    x.rows = json_array();
    x.lines = json_array();
    if (x.rows == NULL || x.lines == NULL)
        rc = refuse(KURER_ENOMEM, "out of memory");
    else if ((rc = rpc_only(params, import_params)) == 0 &&
             (rc = import_read(&x, json_object_get(params, "files"))) == 0 && !import_pair(&x, &rc))
        for (size_t i = 0; i < x.n && rc == 0; i++)
            rc = import_file(&x, i);
    for (size_t i = 0; i < MAX_FILES; i++)
        free(x.data[i]);
    if (rc != 0) {
        json_decref(x.rows);
        c->data = json_pack("{s:o}", "lines", x.lines != NULL ? x.lines : json_array());
        return rc;
    }
    *result = json_pack("{s:o,s:o,s:b,s:s}", "imported", x.rows, "lines", x.lines, "enrolled",
                        is_enrolled(c->k), "relay", kurer_relay_address(c->k));
    if (*result == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    if (x.own)
        import_connect(c, *result);
    return 0;
}

const rpc_method rpc_keys_methods[] = {
    {"rekey", m_rekey},
    {"import", m_import},
    {NULL, NULL},
};
