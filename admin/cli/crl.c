/* kurer-admin crl renew: the same revocation list with the next version and a new next
 * update. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

const char help_crl_renew[] =
    "usage: kurer-admin crl renew (--authority AUTHDIR | --root ROOTDIR) [--crl-days N]\n"
    "                             [--passphrase-env VAR] [--root-passphrase-env VAR] [--json]\n"
    "\n"
    "Re-signs the revocation list of an authority (AUTHDIR/crl) or of the root (ROOTDIR/crl)\n"
    "with the next version and a new next update, the same entries. Relays and clients refuse\n"
    "every certificate a list covers once it is more than 7 days past its next update, so renew\n"
    "and publish each list before its next update (kurer-admin show FILE prints it).\n"
    "\n"
    "  --authority AUTHDIR       the authority's directory\n"
    "  --root ROOTDIR            the root's directory (its list exists after 'root revoke')\n"
    "  --crl-days N              the new next update, in days (default 30 for an authority,\n"
    "                            180 for the root)\n"
    "  --passphrase-env VAR      the authority key's passphrase (default " DEFAULT_PASS ")\n"
    "  --root-passphrase-env VAR the root key's passphrase (default " DEFAULT_ROOT_PASS ")\n"
    "  --json                    print the result as one JSON object\n";

int cmd_crl_renew(int argc, char **argv)
{
    int lockfd = -1;
    static const kurer_opt opts[] = {
        {"help", 0, 0},     {"json", 0, 0},           {"authority", V, 0},          {"root", V, 0},
        {"crl-days", V, 0}, {"passphrase-env", V, 0}, {"root-passphrase-env", V, 0}};
    kurer_args a;
    const char *adir, *rdir, *envname, *rootenv;
    uint64_t crl_days;
    int64_t now = kurer_time_unix();
    issuer is;
    kurer_crl old, neu;
    int rc;
    char t[32];

    memset(&is, 0, sizeof(is));
    memset(&old, 0, sizeof(old));
    memset(&neu, 0, sizeof(neu));
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_crl_renew, argc, argv)) != 0)
        return rc;
    adir = opt(&a, "authority");
    rdir = opt(&a, "root");
    if ((adir == NULL) == (rdir == NULL))
        return usage_error("give exactly one of --authority and --root");
    if ((rc = opt_env(&a, "passphrase-env", DEFAULT_PASS, &envname)) != 0 ||
        (rc = opt_env(&a, "root-passphrase-env", DEFAULT_ROOT_PASS, &rootenv)) != 0 ||
        (rc = opt_days(&a, "crl-days", adir ? 30 : ROOT_CRL_DAYS, &crl_days)) != 0)
        goto out;
    if ((rc = lock_existing(adir ? adir : rdir, &lockfd)) != 0 ||
        (rc = issuer_load(&is, adir ? adir : rdir, adir == NULL, 0, now)) != 0)
        goto out;
    if (rdir != NULL && kurer_file_exists(is.crl_path) != 0) {
        rc = refuse(KURER_ENOENT,
                    "the root in %s has no revocation list yet (it is made by the first "
                    "'kurer-admin root revoke'): nothing to renew",
                    rdir);
        goto out;
    }
    if ((rc = current_list(&is, &old)) != 0 ||
        (rc = next_list(&old, 0, KURER_REASON_UNSPECIFIED, now, crl_days, &neu)) != 0 ||
        (rc = issuer_open_key(&is, adir ? envname : rootenv, NULL)) != 0 ||
        (rc = write_list(&is, &neu)) != 0)
        goto out;
    say("renewed the revocation list of %s %s: version %llu, %zu revoked, next update %s\n",
        adir ? "authority" : "root", is.cert.body.subject, (unsigned long long)neu.version,
        neu.n_revoked, fmt_time(t, sizeof(t), neu.next_update));
    if (old.next_update > now)
        say("Publish it (kurer-admin publish --crl %s ...) before %s,\n"
            "when the list relays hold now goes stale.\n",
            is.crl_path, fmt_time(t, sizeof(t), old.next_update));
    else
        say("Publish it now (kurer-admin publish --crl %s ...)%s%s.\n", is.crl_path,
            old.next_update ? ": the list relays hold went stale on " : "",
            old.next_update ? fmt_time(t, sizeof(t), old.next_update) : "");
    jstr("issuer", is.cert.body.subject);
    ju64("crl_version", neu.version);
    ju64("revoked", neu.n_revoked);
    jint("next_update", neu.next_update);
    jstr("crl", is.crl_path);
out:
    kurer_crl_release(&old);
    kurer_crl_release(&neu);
    issuer_release(&is);
    unlock_dir(&lockfd);
    return rc;
}
