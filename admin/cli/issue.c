/* kurer-admin issue: a device certificate from its request, as the issuance policy of the
 * admin library (kurer/issuance.h) allows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/compare.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

const char help_issue[] =
    "usage: kurer-admin issue --authority AUTHDIR --csr FILE --out CERT [--clearance LEVEL]\n"
    "                         [--days N] [--replace [--crl-days N]] [--code DIGITS] [--armor]\n"
    "                         [--passphrase-env VAR] [--force] [--json]\n"
    "\n"
    "Checks a device's certificate request (its self-signature by the identity key it names,\n"
    "that its user is user@ID of this authority, its device id and keys, that its keys are not\n"
    "certified for another device and were not in a certificate revoked for any reason but\n"
    "superseded) and issues a DEVICE certificate. CERT receives the chain the\n"
    "device needs: its certificate followed by the authority's. The issuance is recorded in\n"
    "AUTHDIR/issuance.log. Before it asks for the passphrase and signs, it prints the request's\n"
    "comparison code (12 digits, as kurer init and kurer whoami show them to the user) and\n"
    "fingerprint: compare the code with the one the user reads to you. The request may be the\n"
    "binary file or its armoured text.\n"
    "\n"
    "A device id holds one valid certificate at a time. While the log records a current one\n"
    "(issued, not revoked, not expired) for the same user and device id, the request is\n"
    "refused, naming that serial: the same keys again are the same request (no second\n"
    "certificate is made), other keys are a re-enrolled device or a clash of device ids. With\n"
    "--replace the current certificate is revoked as superseded (a new AUTHDIR/crl, as\n"
    "kurer-admin revoke writes it: publish it) and the new one issued, in one step; --replace\n"
    "with no current certificate is refused.\n"
    "\n"
    "  --authority AUTHDIR   the authority's directory\n"
    "  --csr FILE            the device's request (made by the client)\n"
    "  --out CERT            where to write the chain (not replaced without --force)\n"
    "  --clearance LEVEL     the device's clearance (default: the authority's)\n"
    "  --days N              validity in days (default 365, never past the authority's)\n"
    "  --replace             supersede the device's current certificate (re-enrolment with\n"
    "                        new keys, or a renewal of the same keys)\n"
    "  --crl-days N          with --replace: the new list's next update (default 30)\n"
    "  --code DIGITS         the comparison code the user read to you: refused unless the\n"
    "                        request's is the same (spaces ignored)\n"
    "  --armor               write CERT as armoured text (-----BEGIN KURER CERTIFICATE\n"
    "                        CHAIN-----), for mail; kurer import reads either form\n"
    "  --passphrase-env VAR  the authority key's passphrase (default " DEFAULT_PASS ");\n"
    "                        unset: asked on the terminal\n"
    "  --force               replace CERT if it exists (never one of AUTHDIR's own files)\n"
    "  --json                print the result as one JSON object\n";

/* --out must never name one of the authority's own files, --force or not. */
static int out_not_own_file(const char *out, const issuer *is)
{
    static const char *const own[] = {F_AUTH_KEY, F_AUTH_CRT, F_CRL,    F_LOG,
                                      F_SERIAL,   F_ROOT_CRT, F_DIRLOCK};
    char buf[PATH_MAX_LEN], *slash, *base, *real_parent, *real_dir;
    struct stat so, sf;
    int found = 0, rc;
    int exists = stat(out, &so) == 0;
    if ((rc = strip_slashes(buf, out)) != 0)
        return rc;
    slash = strrchr(buf, '/');
    base = slash ? slash + 1 : buf;
    if (slash == NULL)
        real_parent = realpath(".", NULL);
    else if (slash == buf)
        real_parent = realpath("/", NULL);
    else {
        *slash = '\0';
        real_parent = realpath(buf, NULL);
    }
    real_dir = realpath(is->dir, NULL);
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]) && !found; i++) {
        char p[PATH_MAX_LEN];
        if (real_parent && real_dir && strcmp(real_parent, real_dir) == 0 &&
            strcmp(base, own[i]) == 0)
            found = 1;
        /* The same file by another name (a link). */
        if (exists && join(p, is->dir, own[i]) == 0 && stat(p, &sf) == 0 &&
            sf.st_dev == so.st_dev && sf.st_ino == so.st_ino)
            found = 1;
    }
    free(real_parent);
    free(real_dir);
    if (found)
        return refuse(KURER_EINVAL,
                      "--out %s is one of the authority's own files in %s; write the chain "
                      "elsewhere (--force does not change this)",
                      out, is->dir);
    return 0;
}

/* Why kurer_issuance_check refused the request in csr_path. */
static int issue_refused(int rc, const kurer_issuance_refusal *why, const char *csr_path,
                         const kurer_csr *csr, const issuer *is, const kurer_issuance_params *p)
{
    const kurer_log_entry *e = why->entry;
    char t[32];
    switch (why->rule) {
    case KURER_ISSUANCE_SIGNATURE:
        return refuse(rc, "%s is not signed by the identity key it names: %s", csr_path,
                      kurer_strerror(rc));
    case KURER_ISSUANCE_SUBJECT:
        return refuse(rc, "%s asks for %s, who is not a user of authority %s", csr_path,
                      csr->body.subject, is->cert.body.subject);
    case KURER_ISSUANCE_DEVICE_ID:
        return refuse(rc, "%s: device id %u is not from 1 to %u", csr_path, csr->body.device_id,
                      KURER_DEVICE_ID_MAX);
    case KURER_ISSUANCE_DATE:
        return refuse(rc, "%s is dated in the future (%s)", csr_path,
                      fmt_time(t, sizeof(t), csr->body.created_at));
    case KURER_ISSUANCE_NOISE_KEY:
        return refuse(rc, "%s: the Noise key is missing or equals the identity key", csr_path);
    case KURER_ISSUANCE_CLEARANCE:
        return refuse(rc, "clearance %s is above the authority's %s",
                      kurer_level_name((int)p->clearance),
                      kurer_level_name((int)is->cert.body.clearance));
    case KURER_ISSUANCE_KEY_REVOKED:
        return refuse(rc,
                      "the request's keys are those of serial %llu (%s device %u), revoked "
                      "(%s): the device must make new keys",
                      (unsigned long long)e->serial, e->subject, e->device_id,
                      kurer_reason_name((int)e->reason));
    case KURER_ISSUANCE_KEY_SHARED:
        return refuse(rc,
                      "the request's keys are already certified for %s device %u (serial "
                      "%llu): devices never share keys",
                      e->subject, e->device_id, (unsigned long long)e->serial);
    case KURER_ISSUANCE_REPEATED:
        return refuse(rc,
                      "%s device %u already holds serial %llu for these keys (valid until %s): "
                      "the request was issued before and no second certificate is made; "
                      "--replace renews it",
                      e->subject, e->device_id, (unsigned long long)e->serial,
                      fmt_time(t, sizeof(t), e->not_after));
    case KURER_ISSUANCE_DEVICE_TAKEN:
        return refuse(rc,
                      "%s device %u already holds serial %llu with other keys (valid until %s): "
                      "if the device was re-enrolled, issue with --replace (serial %llu is then "
                      "revoked as superseded); otherwise the request has the wrong device id",
                      e->subject, e->device_id, (unsigned long long)e->serial,
                      fmt_time(t, sizeof(t), e->not_after), (unsigned long long)e->serial);
    case KURER_ISSUANCE_NOTHING_TO_REPLACE:
        return refuse(rc,
                      "--replace: %s device %u holds no current certificate to replace; issue "
                      "without --replace (is the device id right?)",
                      csr->body.subject, csr->body.device_id);
    case KURER_ISSUANCE_AUTHORITY:
        return validity_reason("the authority certificate", &is->cert, rc);
    default:
        return refuse(rc, "%s cannot be issued: %s", csr_path, kurer_strerror(rc));
    }
}

/* What was issued (and superseded), as lines or JSON members. */
static void issue_report(const kurer_chain *chain, int clamped, const char *out_path,
                         const replacement *rp, const issuer *is)
{
    const kurer_cert_body *body = &chain->certs[0].body;
    char fp[65], t[32];
    kurer_cert_fingerprint(&chain->certs[0], fp);
    say("issued %s device %u\n", body->subject, body->device_id);
    say("  serial       %llu\n", (unsigned long long)body->serial);
    say("  clearance    %s (%s)\n", kurer_level_name((int)body->clearance),
        kurer_level_name_da((int)body->clearance));
    say("  valid until  %s%s\n", fmt_time(t, sizeof(t), body->not_after),
        clamped ? " (the authority's expiry)" : "");
    say("  fingerprint  %s\n", fp);
    say("  chain        %s\n", out_path);
    for (size_t i = 0; i < rp->n; i++)
        say("  superseded   serial %llu (revoked, reason superseded)\n",
            (unsigned long long)rp->old[i].serial);
    if (rp->n > 0) {
        say("  revocation list version %llu in %s, next update %s\n",
            (unsigned long long)rp->new_list.version, is->crl_path,
            fmt_time(t, sizeof(t), rp->new_list.next_update));
        say("Publish the new list for the revocation to take effect.\n");
    }
    jstr("subject", body->subject);
    jint("device_id", body->device_id);
    ju64("serial", body->serial);
    jstr("clearance", kurer_level_name((int)body->clearance));
    jint("not_after", body->not_after);
    jbool("clamped_to_authority", clamped);
    jstr("fingerprint", fp);
    jstr("out", out_path);
    kurer_json_key(&g_j, "superseded");
    kurer_json_begin_array(&g_j);
    for (size_t i = 0; i < rp->n; i++)
        kurer_json_uint(&g_j, rp->old[i].serial);
    kurer_json_end_array(&g_j);
    if (rp->n > 0) {
        ju64("crl_version", rp->new_list.version);
        jstr("crl", is->crl_path);
    }
}

/* The options of issue. */
typedef struct issue_args {
    const char *dir, *csr_path, *out_path, *envname;
    const char *code; /* --code: the comparison code the user read */
    kurer_issuance_params p;
    uint64_t crl_days;
    int force, armor;
} issue_args;

static int issue_parse(issue_args *ia, int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0},  {"json", 0, 0},      {"authority", V, 0}, {"csr", V, 0},
        {"out", V, 0},   {"clearance", V, 0}, {"days", V, 0},      {"passphrase-env", V, 0},
        {"force", 0, 0}, {"replace", 0, 0},   {"crl-days", V, 0},  {"code", V, 0},
        {"armor", 0, 0}};
    kurer_args a;
    int rc;
    memset(ia, 0, sizeof(*ia));
    ia->p.now = kurer_time_unix();
    ia->p.clearance = KURER_LEVEL_UNCLASSIFIED;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_issue, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "authority", &ia->dir)) || (rc = need(&a, "csr", &ia->csr_path)) ||
        (rc = need(&a, "out", &ia->out_path)) || (rc = opt_days(&a, "days", 365, &ia->p.days)) ||
        (rc = opt_level(&a, "clearance", &ia->p.clearance, &ia->p.has_clearance)) ||
        (rc = opt_days(&a, "crl-days", 30, &ia->crl_days)))
        return rc;
    if ((rc = opt_env(&a, "passphrase-env", DEFAULT_PASS, &ia->envname)) != 0)
        return rc;
    ia->force = flag(&a, "force");
    ia->armor = flag(&a, "armor");
    ia->code = opt(&a, "code");
    ia->p.replace = flag(&a, "replace");
    if (opt(&a, "crl-days") != NULL && !ia->p.replace)
        return usage_error("--crl-days is for --replace (the list that revokes the old "
                           "certificate)");
    return 0;
}

int issue_check(issuer *is, const kurer_csr *csr, const char *csr_name,
                const kurer_issuance_params *p, kurer_cert_body *body, int *clamped)
{
    kurer_issuance_refusal why;
    int rc = kurer_issuance_check(&is->cert, &is->log, csr, p, body, clamped, &why);
    return rc != 0 ? issue_refused(rc, &why, csr_name, csr, is, p) : 0;
}

int issue_sign(issuer *is, kurer_cert_body *body, int64_t now, kurer_chain *chain, uint64_t *serial)
{
    int rc;
    /* Everything is checked: reserve the serial (synced) before the certificate exists. */
    if ((rc = reserve_serial(is, serial)) != 0)
        return rc;
    if ((rc = kurer_issuance_sign(body, *serial, &is->key, &is->cert, now, chain)) != 0)
        return refuse(rc, "the new certificate does not verify: %s", kurer_strerror(rc));
    return 0;
}

/* The request's comparison code and fingerprint, said before anything is signed; with
 * --code, the code the user read must be the request's. */
int show_codes(const kurer_csr *csr, const uint8_t *raw, size_t raw_len, const char *want)
{
    char code[KURER_COMPARISON_CODE_LEN + 1], fp[65], qr[KURER_REQUEST_QR_LEN + 1];
    char typed[KURER_COMPARISON_CODE_LEN + 1];
    size_t k = 0;
    kurer_comparison_code(csr->body.identity_key, code);
    kurer_request_fingerprint(raw, raw_len, fp, qr);
    say("request of %s device %u\n", csr->body.subject, csr->body.device_id);
    say("  comparison code      %s  (the user's kurer whoami shows it: compare)\n", code);
    say("  request fingerprint  %s\n", fp);
    fflush(stdout);
    jstr("comparison_code", code);
    jstr("request_fingerprint", fp);
    if (want == NULL)
        return 0;
    /* Digits in groups of four, whatever spacing the administrator typed. */
    for (const char *p = want; *p; p++) {
        if (*p == ' ' || *p == '-')
            continue;
        if (*p < '0' || *p > '9' || k == 12)
            return usage_error("--code %s: expected 12 digits", want);
        typed[k + k / 4] = *p;
        if (k % 4 == 3 && k < 11)
            typed[k + k / 4 + 1] = ' ';
        k++;
    }
    if (k != 12)
        return usage_error("--code %s: expected 12 digits", want);
    typed[KURER_COMPARISON_CODE_LEN] = '\0';
    if (strcmp(typed, code) != 0)
        return refuse(KURER_EKEYMISMATCH,
                      "the request's comparison code is %s, not %s: this is not the user's "
                      "request (or a digit was misheard); nothing issued",
                      code, typed);
    return 0;
}

/* img (a chain) replaced by its armoured text. */
static int armor_in_place(kurer_buf *img)
{
    kurer_buf t;
    kurer_buf_init(&t, KURER_CHAIN_BYTES_MAX * 2);
    int rc = kurer_armor_encode(KURER_ARMOR_CHAIN, img->data, img->len, &t);
    if (rc == 0) {
        kurer_buf_release(img);
        *img = t;
    } else {
        kurer_buf_release(&t);
    }
    return rc;
}

/* Everything is checked: serial reserved (synced) before the certificate exists, the old
 * certificates revoked (list and log) before the new one is written, then the chain and its
 * log entry. A crash after the revocation leaves the device with no valid certificate (issue
 * again without --replace), never with two. */
static int issue_commit(issuer *is, const issue_args *ia, kurer_cert_body *body, replacement *rp,
                        kurer_chain *chain)
{
    kurer_buf img;
    kurer_log_entry e;
    uint64_t serial;
    int rc;
    kurer_buf_init(&img, KURER_CHAIN_BYTES_MAX);
    if ((rc = reserve_serial(is, &serial)) != 0)
        goto out;
    if ((rc = kurer_issuance_sign(body, serial, &is->key, &is->cert, ia->p.now, chain)) != 0 ||
        (rc = kurer_chain_encode(chain, &img)) != 0 ||
        (ia->armor && (rc = armor_in_place(&img)) != 0)) {
        rc = refuse(rc, "the new certificate does not verify: %s", kurer_strerror(rc));
        goto out;
    }
    if (rp->n > 0 && (rc = replacement_commit(is, rp, ia->p.now, ia->crl_days)) != 0)
        goto out;
    if ((rc = write_file(ia->out_path, img.data, img.len, 0644, ia->force)) != 0)
        goto out;
    kurer_log_entry_for_cert(&e, &chain->certs[0], ia->p.now);
    rc = log_append(is, &e);
out:
    kurer_buf_release(&img);
    return rc;
}

int cmd_issue(int argc, char **argv)
{
    int lockfd = -1, rc, clamped = 0;
    issue_args ia;
    issuer is;
    kurer_csr csr;
    kurer_cert_body body;
    kurer_chain chain;
    kurer_issuance_refusal why;
    replacement rp;
    uint8_t *raw = NULL;
    size_t raw_len = 0;

    memset(&is, 0, sizeof(is));
    memset(&rp, 0, sizeof(rp));
    if ((rc = issue_parse(&ia, argc, argv)) != 0)
        return rc;
    /* The lock is held from the first read of the log to the last write: the check that the
     * device id is free and the issuance are one step. */
    if ((rc = lock_existing(ia.dir, &lockfd)) != 0 ||
        (rc = issuer_load(&is, ia.dir, 0, 1, ia.p.now)) != 0 ||
        (rc = load_csr(ia.csr_path, &csr, &raw, &raw_len)) != 0 ||
        (rc = show_codes(&csr, raw, raw_len, ia.code)) != 0)
        goto out;
    rc = kurer_issuance_check(&is.cert, &is.log, &csr, &ia.p, &body, &clamped, &why);
    if (rc != 0) {
        rc = issue_refused(rc, &why, ia.csr_path, &csr, &is, &ia.p);
        goto out;
    }
    if (ia.p.replace &&
        (rc = replacement_prepare(&is, body.subject, body.device_id, ia.p.now, &rp)) != 0)
        goto out;
    if ((rc = check_out_path(ia.out_path)) != 0 || (rc = out_not_own_file(ia.out_path, &is)) != 0 ||
        (rc = must_not_exist(ia.out_path, ia.force, "--force replaces it")) != 0)
        goto out;
    if ((rc = issuer_open_key(&is, ia.envname, NULL)) != 0 ||
        (rc = issue_commit(&is, &ia, &body, &rp, &chain)) != 0)
        goto out;
    issue_report(&chain, clamped, ia.out_path, &rp, &is);
out:
    free(raw);
    replacement_release(&rp);
    issuer_release(&is);
    unlock_dir(&lockfd);
    return rc;
}
