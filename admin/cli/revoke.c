/* kurer-admin revoke (a device, by its authority) and root revoke (an authority, by the
 * root): the next revocation list and the issuance log entry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

const char help_revoke[] =
    "usage: kurer-admin revoke --authority AUTHDIR (--cert CERT | --serial N) [--reason REASON]\n"
    "                          [--crl-days N] [--passphrase-env VAR] [--json]\n"
    "\n"
    "Adds a certificate of this authority to its revocation list: AUTHDIR/crl is replaced by a\n"
    "new list with the next version, signed by the authority key. Publish the new list (copy it\n"
    "to the relay) for it to take effect. Works also when the authority certificate has expired.\n"
    "An authority itself is revoked by its root: kurer-admin root revoke.\n"
    "\n"
    "  --authority AUTHDIR   the authority's directory\n"
    "  --cert CERT           the certificate (or chain) to revoke\n"
    "  --serial N            the serial to revoke (must be in the issuance log)\n"
    "  --reason REASON       unspecified (default), key-compromise, device-lost, superseded,\n"
    "                        left-authority\n"
    "  --crl-days N          the new list's next update, in days (default 30)\n"
    "  --passphrase-env VAR  the authority key's passphrase (default " DEFAULT_PASS ")\n"
    "  --json                print the result as one JSON object\n";

/* What both revocations were asked: --cert or --serial, --reason, --crl-days. */
typedef struct revocation {
    const char *dir, *cert_path, *envname;
    uint64_t serial, crl_days;
    kurer_revocation_reason reason;
    int64_t now;
    issuer is;
    kurer_crl old, neu;
    kurer_log_entry e; /* the REVOKE entry, once logged */
    int lockfd;
} revocation;

static void revocation_init(revocation *r)
{
    memset(r, 0, sizeof(*r));
    r->lockfd = -1;
    r->reason = KURER_REASON_UNSPECIFIED;
    r->now = kurer_time_unix();
}

static void revocation_release(revocation *r)
{
    kurer_crl_release(&r->old);
    kurer_crl_release(&r->neu);
    issuer_release(&r->is);
    unlock_dir(&r->lockfd);
}

/* --cert or --serial (exactly one), and --reason (checked by the caller). */
static int target_args(revocation *r, const kurer_args *a)
{
    const char *serial_s = opt(a, "serial");
    r->cert_path = opt(a, "cert");
    if ((r->cert_path == NULL) == (serial_s == NULL))
        return usage_error("give exactly one of --cert and --serial");
    if (serial_s != NULL &&
        (kurer_parse_u64(serial_s, UINT64_MAX, &r->serial) != 0 || r->serial == 0))
        return usage_error("--serial must be a positive number");
    return 0;
}

/* The serial named by --cert: a device certificate (or chain) this authority issued. */
static int device_serial(revocation *r)
{
    kurer_chain ch;
    file_kind k;
    uint8_t id[KURER_KEY_ID_LEN];
    int rc;
    if (r->cert_path == NULL)
        return 0;
    if ((rc = load_chain_or_cert(r->cert_path, &ch, &k)) != 0)
        return rc;
    kurer_cert_key_id(&r->is.cert, id);
    if (ch.certs[0].body.role != KURER_ROLE_DEVICE)
        return refuse(KURER_EROLE,
                      "%s holds %s certificate; revoke devices here (an authority is revoked by "
                      "its root: kurer-admin root revoke --root ROOTDIR)",
                      r->cert_path, role_a((int)ch.certs[0].body.role));
    if (!kurer_ct_equal(id, ch.certs[0].body.issuer_key_id, KURER_KEY_ID_LEN) ||
        kurer_device_check(&ch.certs[0], &r->is.cert, ch.certs[0].body.not_before) != 0)
        return refuse(KURER_EISSUER, "%s was not issued by the authority in %s", r->cert_path,
                      r->dir);
    r->serial = ch.certs[0].body.serial;
    return 0;
}

/* The certificate issued as *issued onto the next list, signed with the key opened now and
 * written; then the log records it. */
static int put_on_list(revocation *r, const kurer_log_entry *issued)
{
    int rc;
    if ((rc = next_list(&r->old, r->serial, r->reason, r->now, r->crl_days, &r->neu)) != 0 ||
        (rc = issuer_open_key(&r->is, r->envname, NULL)) != 0 ||
        (rc = write_list(&r->is, &r->neu)) != 0)
        return rc;
    kurer_log_entry_for_revocation(&r->e, issued, r->reason, r->now);
    return log_append(&r->is, &r->e);
}

static int revoke_device(revocation *r)
{
    const kurer_log_entry *issued;
    int rc;
    if ((rc = lock_existing(r->dir, &r->lockfd)) != 0 ||
        (rc = issuer_load(&r->is, r->dir, 0, 0, r->now)) != 0 || (rc = device_serial(r)) != 0)
        return rc;
    issued = kurer_issuelog_find_serial(&r->is.log, r->serial);
    if (issued == NULL)
        return refuse(KURER_ENOTFOUND, "serial %llu was never issued by the authority in %s",
                      (unsigned long long)r->serial, r->dir);
    if ((rc = current_list(&r->is, &r->old)) != 0)
        return rc;
    if (kurer_crl_contains(&r->old, r->serial))
        return refuse(KURER_EDUPLICATE, "serial %llu is already revoked (list version %llu)",
                      (unsigned long long)r->serial, (unsigned long long)r->old.version);
    return put_on_list(r, issued);
}

int cmd_revoke(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0},   {"json", 0, 0},   {"authority", V, 0}, {"cert", V, 0},
        {"serial", V, 0}, {"reason", V, 0}, {"crl-days", V, 0},  {"passphrase-env", V, 0}};
    kurer_args a;
    revocation r;
    const char *reason_s;
    char t[32];
    int rc;

    revocation_init(&r);
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_revoke, argc, argv)) != 0)
        return rc;
    reason_s = opt(&a, "reason");
    if ((rc = opt_env(&a, "passphrase-env", DEFAULT_PASS, &r.envname)) != 0 ||
        (rc = need(&a, "authority", &r.dir)) || (rc = opt_days(&a, "crl-days", 30, &r.crl_days)) ||
        (rc = target_args(&r, &a)) != 0)
        goto out;
    if (reason_s != NULL && parse_reason(reason_s, &r.reason) != 0) {
        rc = usage_error("unknown --reason '%s' (unspecified, key-compromise, device-lost, "
                         "superseded or left-authority)",
                         reason_s);
        goto out;
    }
    if ((rc = revoke_device(&r)) != 0)
        goto out;
    say("revoked serial %llu (%s device %u), reason %s\n", (unsigned long long)r.serial,
        r.e.subject, r.e.device_id, kurer_reason_name((int)r.reason));
    say("  revocation list version %llu in %s, next update %s\n", (unsigned long long)r.neu.version,
        r.is.crl_path, fmt_time(t, sizeof(t), r.neu.next_update));
    say("Publish the new list for the revocation to take effect.\n");
    ju64("serial", r.serial);
    jstr("subject", r.e.subject);
    jint("device_id", r.e.device_id);
    jstr("reason", kurer_reason_name((int)r.reason));
    ju64("crl_version", r.neu.version);
    jstr("crl", r.is.crl_path);
out:
    revocation_release(&r);
    return rc;
}

const char help_root_revoke[] =
    "usage: kurer-admin root revoke --root ROOTDIR (--serial N | --cert AUTHORITY.CRT)\n"
    "                               [--reason REASON] [--crl-days N]\n"
    "                               [--root-passphrase-env VAR] [--json]\n"
    "\n"
    "Revokes an authority: its certificate's serial is added to the root's own revocation list,\n"
    "ROOTDIR/crl (created at the first revocation, version 1; then the next version each time),\n"
    "signed by the root key, and the root's issuance log records it. Once the list is published\n"
    "(kurer-admin publish --crl ROOTDIR/crl), relays and clients refuse the authority and every\n"
    "device it issued. Revoke a single device with 'kurer-admin revoke' instead.\n"
    "\n"
    "  --root ROOTDIR            the root's directory\n"
    "  --serial N                the authority certificate's serial (in the root's issuance log)\n"
    "  --cert AUTHORITY.CRT      the authority certificate to revoke\n"
    "  --reason REASON           unspecified (default), key-compromise, superseded\n"
    "  --crl-days N              the new list's next update, in days (default 180); renew the "
    "list\n"
    "                            before then (kurer-admin crl renew --root ROOTDIR)\n"
    "  --root-passphrase-env VAR the root key's passphrase (default " DEFAULT_ROOT_PASS ")\n"
    "  --json                    print the result as one JSON object\n";

/* The serial named by --cert (an authority certificate this root signed) or --serial. */
static int authority_serial(const issuer *is, const char *cert_path, uint64_t *serial)
{
    kurer_cert c;
    int rc;
    if (cert_path == NULL)
        return 0;
    if ((rc = load_cert(cert_path, &c)) != 0)
        return rc;
    if (c.body.role != KURER_ROLE_AUTHORITY)
        return refuse(KURER_EROLE, "%s is %s certificate; a root revokes authorities (%s)",
                      cert_path, role_a((int)c.body.role),
                      c.body.role == KURER_ROLE_DEVICE
                          ? "revoke a device with kurer-admin revoke --authority AUTHDIR"
                          : "a root is replaced, not revoked");
    if (kurer_authority_check(&c, &is->root, c.body.not_before) != 0)
        return refuse(KURER_EISSUER, "%s was not issued by the root in %s", cert_path, is->dir);
    *serial = c.body.serial;
    return 0;
}

static int revoke_authority(revocation *r)
{
    const kurer_log_entry *issued;
    int rc;
    if ((rc = lock_existing(r->dir, &r->lockfd)) != 0 ||
        (rc = issuer_load(&r->is, r->dir, 1, 0, r->now)) != 0 ||
        (rc = authority_serial(&r->is, r->cert_path, &r->serial)) != 0)
        return rc;
    issued = kurer_issuelog_find_serial(&r->is.log, r->serial);
    if (issued == NULL)
        return refuse(KURER_ENOTFOUND, "serial %llu was never issued by the root in %s",
                      (unsigned long long)r->serial, r->dir);
    if (issued->role != KURER_ROLE_AUTHORITY)
        return refuse(KURER_EROLE,
                      "serial %llu is the root's own certificate: a root is replaced, not revoked",
                      (unsigned long long)r->serial);
    if ((rc = current_list(&r->is, &r->old)) != 0)
        return rc;
    if (kurer_crl_contains(&r->old, r->serial))
        return refuse(
            KURER_EDUPLICATE, "authority %s (serial %llu) is already revoked (list version %llu)",
            issued->subject, (unsigned long long)r->serial, (unsigned long long)r->old.version);
    return put_on_list(r, issued);
}

int cmd_root_revoke(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0},   {"json", 0, 0},   {"root", V, 0},     {"cert", V, 0},
        {"serial", V, 0}, {"reason", V, 0}, {"crl-days", V, 0}, {"root-passphrase-env", V, 0}};
    kurer_args a;
    revocation r;
    const char *reason_s;
    char t[32];
    int rc;

    revocation_init(&r);
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_root_revoke, argc, argv)) != 0)
        return rc;
    reason_s = opt(&a, "reason");
    if ((rc = opt_env(&a, "root-passphrase-env", DEFAULT_ROOT_PASS, &r.envname)) != 0 ||
        (rc = need(&a, "root", &r.dir)) != 0 ||
        (rc = opt_days(&a, "crl-days", ROOT_CRL_DAYS, &r.crl_days)) != 0 ||
        (rc = target_args(&r, &a)) != 0)
        goto out;
    /* A device's reasons say nothing about an authority. */
    if (reason_s != NULL &&
        (parse_reason(reason_s, &r.reason) != 0 || r.reason == KURER_REASON_DEVICE_LOST ||
         r.reason == KURER_REASON_LEFT_AUTHORITY)) {
        rc = usage_error("unknown --reason '%s' for an authority (unspecified, key-compromise or "
                         "superseded)",
                         reason_s);
        goto out;
    }
    if ((rc = revoke_authority(&r)) != 0)
        goto out;
    say("revoked authority %s (serial %llu), reason %s\n", r.e.subject,
        (unsigned long long)r.serial, kurer_reason_name((int)r.reason));
    say("  revocation list version %llu in %s, next update %s\n", (unsigned long long)r.neu.version,
        r.is.crl_path, fmt_time(t, sizeof(t), r.neu.next_update));
    say("Publish the new list (kurer-admin publish --crl %s ...): relays and clients then refuse\n"
        "%s and every device it issued.\n",
        r.is.crl_path, r.e.subject);
    ju64("serial", r.serial);
    jstr("subject", r.e.subject);
    jstr("reason", kurer_reason_name((int)r.reason));
    ju64("crl_version", r.neu.version);
    jint("next_update", r.neu.next_update);
    jstr("crl", r.is.crl_path);
out:
    revocation_release(&r);
    return rc;
}
