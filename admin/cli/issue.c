/* kurer-admin issue: a device certificate from its request, as the issuance policy of the
 * admin library (kurer/issuance.h) allows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

const char help_issue[] =
    "usage: kurer-admin issue --authority AUTHDIR --csr FILE --out CERT [--clearance LEVEL]\n"
    "                         [--days N] [--passphrase-env VAR] [--force] [--json]\n"
    "\n"
    "Checks a device's certificate request (its self-signature by the identity key it names,\n"
    "that its user is user@ID of this authority, its device id and keys, that its keys are not\n"
    "certified for another device and were not in a certificate revoked for any reason but\n"
    "superseded) and issues a DEVICE certificate. CERT receives the chain the\n"
    "device needs: its certificate followed by the authority's. The issuance is recorded in\n"
    "AUTHDIR/issuance.log.\n"
    "\n"
    "  --authority AUTHDIR   the authority's directory\n"
    "  --csr FILE            the device's request (made by the client)\n"
    "  --out CERT            where to write the chain (not replaced without --force)\n"
    "  --clearance LEVEL     the device's clearance (default: the authority's)\n"
    "  --days N              validity in days (default 365, never past the authority's)\n"
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
    case KURER_ISSUANCE_AUTHORITY:
        return validity_reason("the authority certificate", &is->cert, rc);
    default:
        return refuse(rc, "%s cannot be issued: %s", csr_path, kurer_strerror(rc));
    }
}

int cmd_issue(int argc, char **argv)
{
    int lockfd = -1;
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0},      {"authority", V, 0}, {"csr", V, 0},
        {"out", V, 0},  {"clearance", V, 0}, {"days", V, 0},      {"passphrase-env", V, 0},
        {"force", 0, 0}};
    kurer_args a;
    const char *dir, *csr_path, *out_path, *envname;
    kurer_level clearance = KURER_LEVEL_UNCLASSIFIED;
    int given, force, rc, clamped = 0;
    uint64_t days, serial;
    int64_t now = kurer_time_unix();
    issuer is;
    kurer_csr csr;
    kurer_cert_body body;
    kurer_chain chain;
    kurer_buf img;
    kurer_log_entry e;
    char fp[65], t[32];

    memset(&is, 0, sizeof(is));
    kurer_buf_init(&img, KURER_CHAIN_BYTES_MAX);
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_issue, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "authority", &dir)) || (rc = need(&a, "csr", &csr_path)) ||
        (rc = need(&a, "out", &out_path)) || (rc = opt_days(&a, "days", 365, &days)) ||
        (rc = opt_level(&a, "clearance", &clearance, &given)))
        goto out;
    if ((rc = opt_env(&a, "passphrase-env", DEFAULT_PASS, &envname)) != 0)
        goto out;
    force = flag(&a, "force");

    if ((rc = lock_existing(dir, &lockfd)) != 0 || (rc = issuer_load(&is, dir, 0, 1, now)) != 0)
        goto out;
    if ((rc = load_csr(csr_path, &csr)) != 0)
        goto out;
    {
        kurer_issuance_params p = {now, days, clearance, given};
        kurer_issuance_refusal why;
        rc = kurer_issuance_check(&is.cert, &is.log, &csr, &p, &body, &clamped, &why);
        if (rc != 0) {
            rc = issue_refused(rc, &why, csr_path, &csr, &is, &p);
            goto out;
        }
        clearance = body.clearance;
    }
    if ((rc = check_out_path(out_path)) != 0 || (rc = out_not_own_file(out_path, &is)) != 0 ||
        (rc = must_not_exist(out_path, force, "--force replaces it")) != 0)
        goto out;
    if ((rc = issuer_open_key(&is, envname, NULL)) != 0)
        goto out;

    /* Everything is checked: reserve the serial (synced) before the certificate exists. */
    if ((rc = reserve_serial(&is, &serial)) != 0)
        goto out;
    if ((rc = kurer_issuance_sign(&body, serial, &is.key, &is.cert, now, &chain)) != 0 ||
        (rc = kurer_chain_encode(&chain, &img)) != 0) {
        rc = refuse(rc, "the new certificate does not verify: %s", kurer_strerror(rc));
        goto out;
    }
    if ((rc = write_file(out_path, img.data, img.len, 0644, force)) != 0)
        goto out;
    kurer_log_entry_for_cert(&e, &chain.certs[0], now);
    if ((rc = log_append(&is, &e)) != 0)
        goto out;
    kurer_cert_fingerprint(&chain.certs[0], fp);
    say("issued %s device %u\n", body.subject, body.device_id);
    say("  serial       %llu\n", (unsigned long long)serial);
    say("  clearance    %s (%s)\n", kurer_level_name((int)clearance),
        kurer_level_name_da((int)clearance));
    say("  valid until  %s%s\n", fmt_time(t, sizeof(t), body.not_after),
        clamped ? " (the authority's expiry)" : "");
    say("  fingerprint  %s\n", fp);
    say("  chain        %s\n", out_path);
    jstr("subject", body.subject);
    jint("device_id", body.device_id);
    ju64("serial", serial);
    jstr("clearance", kurer_level_name((int)clearance));
    jint("not_after", body.not_after);
    jbool("clamped_to_authority", clamped);
    jstr("fingerprint", fp);
    jstr("out", out_path);
out:
    kurer_buf_release(&img);
    issuer_release(&is);
    unlock_dir(&lockfd);
    return rc;
}
