/* kurer-admin show: any Kurér file in readable form (signatures not checked). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/csr.h"
#include "kurer/util.h"

const char help_show[] =
    "usage: kurer-admin show [--json] FILE\n"
    "\n"
    "Prints any certificate, certificate chain, certificate request, revocation list, sealed\n"
    "key file (public part only) or serial state file in readable form. Signatures are not\n"
    "checked (except a request's self-signature); use verify for that. A revocation list says\n"
    "whether its issuer is an authority (device serials) or the root (authority serials), and\n"
    "warns when it is past its next update (exit 0 all the same).\n";

/* A certificate: lines of text under indent, and a JSON object where the writer is. */
static void show_cert(const kurer_cert *c, const char *indent)
{
    char t1[32], t2[32], fp[65], h[2 * KURER_IDENTITY_KEY_LEN + 1];
    int dev = c->body.role == KURER_ROLE_DEVICE;
    kurer_cert_fingerprint(c, fp);
    say("%srole         %s\n", indent, kurer_role_name((int)c->body.role));
    say("%ssubject      %s\n", indent, c->body.subject);
    say("%sname         %s\n", indent, term(c->body.display_name));
    say("%sserial       %llu\n", indent, (unsigned long long)c->body.serial);
    if (dev)
        say("%sdevice       %u\n", indent, c->body.device_id);
    say("%sclearance    %s (%s)\n", indent, kurer_level_name((int)c->body.clearance),
        kurer_level_name_da((int)c->body.clearance));
    say("%svalid        %s .. %s\n", indent, fmt_time(t1, sizeof(t1), c->body.not_before),
        fmt_time(t2, sizeof(t2), c->body.not_after));
    kurer_json_begin_object(&g_j);
    kurer_json_kv_str(&g_j, "role", kurer_role_name((int)c->body.role));
    kurer_json_kv_str(&g_j, "subject", c->body.subject);
    kurer_json_kv_str(&g_j, "name", c->body.display_name);
    kurer_json_kv_uint(&g_j, "serial", c->body.serial);
    kurer_json_kv_int(&g_j, "device_id", c->body.device_id);
    kurer_json_kv_str(&g_j, "clearance", kurer_level_name((int)c->body.clearance));
    kurer_json_kv_int(&g_j, "not_before", c->body.not_before);
    kurer_json_kv_int(&g_j, "not_after", c->body.not_after);
    hex(h, c->body.issuer_key_id, KURER_KEY_ID_LEN);
    say("%sissuer key   %s\n", indent, h);
    kurer_json_kv_str(&g_j, "issuer_key_id", h);
    if (dev) {
        hex(h, c->body.identity_key, KURER_IDENTITY_KEY_LEN);
        say("%sidentity key %s\n", indent, h);
        kurer_json_kv_str(&g_j, "identity_key", h);
        hex(h, c->body.noise_key, KURER_X25519_LEN);
        say("%snoise key    %s\n", indent, h);
        kurer_json_kv_str(&g_j, "noise_key", h);
    } else {
        hex(h, c->body.signing_key, KURER_ED25519_PK_LEN);
        say("%ssigning key  %s\n", indent, h);
        kurer_json_kv_str(&g_j, "signing_key", h);
    }
    say("%sfingerprint  %s\n", indent, fp);
    kurer_json_kv_str(&g_j, "fingerprint", fp);
    kurer_json_end_object(&g_j);
}

static int show_certificate(const char *path, const uint8_t *d, size_t n)
{
    kurer_cert c;
    if (kurer_cert_decode(d, n, &c) != 0)
        return 0;
    say("%s: certificate\n", path);
    jstr("kind", "certificate");
    kurer_json_key(&g_j, "certificate");
    show_cert(&c, "  ");
    return 0;
}

static int show_chain(const char *path, const uint8_t *d, size_t n)
{
    kurer_chain ch;
    if (kurer_chain_decode(d, n, &ch) != 0)
        return 0;
    say("%s: certificate chain of %zu\n", path, ch.n);
    jstr("kind", "chain");
    kurer_json_key(&g_j, "certificates");
    kurer_json_begin_array(&g_j);
    for (size_t i = 0; i < ch.n; i++) {
        say("  [%zu]\n", i);
        show_cert(&ch.certs[i], "    ");
    }
    kurer_json_end_array(&g_j);
    return 0;
}

static int show_request(const char *path, const uint8_t *d, size_t n)
{
    kurer_csr r;
    char t[32], h[2 * KURER_IDENTITY_KEY_LEN + 1];
    if (kurer_csr_decode(d, n, &r) != 0)
        return 0;
    int sig = kurer_csr_verify(&r);
    say("%s: certificate request\n", path);
    say("  subject      %s\n", r.body.subject);
    say("  device       %u\n", r.body.device_id);
    say("  name         %s\n", term(r.body.display_name));
    say("  created      %s\n", fmt_time(t, sizeof(t), r.body.created_at));
    jstr("kind", "request");
    jstr("subject", r.body.subject);
    jint("device_id", r.body.device_id);
    jstr("name", r.body.display_name);
    jint("created_at", r.body.created_at);
    hex(h, r.body.identity_key, KURER_IDENTITY_KEY_LEN);
    say("  identity key %s\n", h);
    jstr("identity_key", h);
    hex(h, r.body.noise_key, KURER_X25519_LEN);
    say("  noise key    %s\n", h);
    jstr("noise_key", h);
    say("  signature    %s\n", sig == 0 ? "valid (by the identity key)" : "INVALID");
    jbool("signature_valid", sig == 0);
    return 0;
}

/* Not a verification (show checks no signature), but the one date that matters. */
static void crl_staleness(const char *path, const kurer_crl *l)
{
    int stale = l->next_update != 0 && kurer_time_unix() > l->next_update;
    if (stale) {
        char line[256];
        stale_line(l, line, sizeof(line));
        fprintf(stderr, "kurer-admin: warning: %s: %s\n", path, line);
        say("  warning      past its next update: relays and clients refuse what it covers\n"
            "               %d days after it; renew it (kurer-admin crl renew)\n",
            (int)(KURER_TRUST_CRL_GRACE_DEFAULT / DAY));
        jstr("warning", line);
    }
    jbool("stale", stale);
}

static int show_list(const char *path, const uint8_t *d, size_t n)
{
    kurer_crl l;
    char t1[32], t2[32], h[2 * KURER_KEY_ID_LEN + 1];
    if (kurer_crl_decode(d, n, &l) != 0)
        return 0;
    say("%s: revocation list\n", path);
    say("  issuer       %s (%s)\n", l.issuer,
        l.issuer_cert.body.role == KURER_ROLE_ROOT ? "the root: the serials are authorities'"
                                                   : "an authority: the serials are devices'");
    hex(h, l.issuer_key_id, KURER_KEY_ID_LEN);
    say("  issuer key   %s\n", h);
    say("  version      %llu\n", (unsigned long long)l.version);
    say("  issued       %s\n", fmt_time(t1, sizeof(t1), l.issued_at));
    say("  next update  %s\n", l.next_update ? fmt_time(t2, sizeof(t2), l.next_update) : "-");
    say("  revoked      %zu\n", l.n_revoked);
    crl_staleness(path, &l);
    jstr("kind", "revocation_list");
    jstr("issuer", l.issuer);
    jstr("issuer_role", kurer_role_name((int)l.issuer_cert.body.role));
    jstr("issuer_key_id", h);
    ju64("version", l.version);
    jint("issued_at", l.issued_at);
    jint("next_update", l.next_update);
    kurer_json_key(&g_j, "revoked");
    kurer_json_begin_array(&g_j);
    for (size_t i = 0; i < l.n_revoked; i++) {
        say("    serial %llu  %s  %s\n", (unsigned long long)l.revoked[i].serial,
            fmt_time(t1, sizeof(t1), l.revoked[i].revoked_at),
            kurer_reason_name((int)l.revoked[i].reason));
        kurer_json_begin_object(&g_j);
        kurer_json_kv_uint(&g_j, "serial", l.revoked[i].serial);
        kurer_json_kv_int(&g_j, "revoked_at", l.revoked[i].revoked_at);
        kurer_json_kv_str(&g_j, "reason", kurer_reason_name((int)l.revoked[i].reason));
        kurer_json_end_object(&g_j);
    }
    kurer_json_end_array(&g_j);
    kurer_crl_release(&l);
    return 0;
}

static int show_key(const char *path, const uint8_t *d, size_t n)
{
    kurer_key_kind kk;
    uint8_t pub[64], id[32];
    size_t pl;
    char h[2 * 64 + 1];
    if (kurer_keyfile_peek(d, n, &kk, pub, sizeof(pub), &pl) != 0)
        return 0;
    say("%s: sealed key file (private key not shown)\n", path);
    say("  kind         %s\n", kk == KURER_KEY_ED25519  ? "Ed25519 signing key"
                               : kk == KURER_KEY_X25519 ? "X25519 Noise key"
                                                        : "identity key");
    hex(h, pub, pl > 33 ? 33 : pl);
    say("  public key   %s\n", h);
    jstr("kind", "key");
    jstr("public_key", h);
    if (kk == KURER_KEY_ED25519 && pl == 32) {
        kurer_key_id(pub, id);
        hex(h, id, 32);
        say("  key id       %s\n", h);
        jstr("key_id", h);
    }
    return 0;
}

static int show_state(const char *path, const uint8_t *d, size_t n)
{
    kurer_serial_state st;
    if (kurer_serial_state_decode(d, n, &st) != 0)
        return 0;
    say("%s: serial state\n  next serial  %llu\n  log entries  %llu\n", path,
        (unsigned long long)st.next_serial, (unsigned long long)st.log_entries);
    jstr("kind", "serial_state");
    ju64("next_serial", st.next_serial);
    ju64("log_entries", st.log_entries);
    return 0;
}

static int show_log(const char *path, const uint8_t *d, size_t n)
{
    (void)d;
    (void)n;
    say("%s: issuance log (print and verify it with: kurer-admin log --authority DIR)\n", path);
    jstr("kind", "issuance_log");
    return 0;
}

static int show_unknown(const char *path, const uint8_t *d, size_t n)
{
    (void)d;
    (void)n;
    return refuse(KURER_EMALFORMED,
                  "%s is not a certificate, chain, request, revocation list or key file "
                  "(damaged or truncated?)",
                  path);
}

int cmd_show(int argc, char **argv)
{
    static const kurer_opt opts[] = {{"help", 0, 0}, {"json", 0, 0}};
    static int (*const show[])(const char *, const uint8_t *, size_t) = {
        [FK_UNKNOWN] = show_unknown, [FK_CERT] = show_certificate, [FK_CHAIN] = show_chain,
        [FK_CSR] = show_request,     [FK_CRL] = show_list,         [FK_KEY] = show_key,
        [FK_LOG] = show_log,         [FK_STATE] = show_state};
    kurer_args a;
    uint8_t *d = NULL;
    size_t n;
    kurer_armor_kind armor;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 1, 1, "FILE", help_show, argc, argv)) != 0)
        return rc;
    if ((rc = read_input(a.pos[0], FILE_MAX, &d, &n, &armor)) != 0)
        return rc;
    file_kind k = detect_kind(d, n);
    if ((rc = armor_matches(a.pos[0], armor, k)) != 0) {
        free(d);
        return rc;
    }
    jstr("file", a.pos[0]);
    jbool("armored", armor != KURER_ARMOR_NONE);
    rc = show[k](a.pos[0], d, n);
    free(d);
    return rc;
}
