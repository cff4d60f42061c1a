/* kurer-admin root init: a national root, its key and self-signed certificate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

#define HINT_ROOT                                                                                  \
    "--force moves the existing key, certificate, log and serial state aside (to "                 \
    "NAME.replaced-TIME) and creates a new root with a new key in their place"

const char help_root_init[] =
    "usage: kurer-admin root init --dir ROOTDIR --name NAME [--id ID] [--ceiling LEVEL]\n"
    "                             [--days N] [--passphrase-env VAR] [--kdf-min] [--force] "
    "[--json]\n"
    "\n"
    "Creates a national root: a new Ed25519 key sealed in ROOTDIR/root.key (mode 0600) under a\n"
    "passphrase, and the self-signed root certificate ROOTDIR/root.crt. ROOTDIR is created with\n"
    "mode 0700. Run it on an offline machine (docs/admin.md).\n"
    "\n"
    "  --dir ROOTDIR         directory for the root's files\n"
    "  --name NAME           display name (\"Rigsrod\")\n"
    "  --id ID               the root's id (default: root)\n"
    "  --ceiling LEVEL       highest level anyone may use: UNCLASSIFIED, RESTRICTED or\n"
    "                        CONFIDENTIAL (default); SECRET and above are refused\n"
    "  --days N              validity in days (default 7300)\n"
    "  --passphrase-env VAR  read the new key's passphrase from VAR (default " DEFAULT_PASS ");\n"
    "                        if VAR is unset, ask twice on the terminal (at least 12 characters)\n"
    "  --kdf-min             seal the key with the smallest accepted Argon2id parameters\n"
    "                        (2 passes, 19 MiB) instead of the default (3 passes, 64 MiB):\n"
    "                        for tests only; never for real keys\n"
    "  --force               create a new root in a ROOTDIR that has one: the existing key,\n"
    "                        certificate, log and serial state are moved aside (renamed to\n"
    "                        NAME.replaced-TIME), never deleted\n"
    "  --json                print the result as one JSON object\n";

static int root_files_absent(const issuer *is, int force)
{
    int rc;
    if ((rc = must_not_exist(is->key_path, force, HINT_ROOT)) ||
        (rc = must_not_exist(is->crt_path, force, HINT_ROOT)) ||
        (rc = must_not_exist(is->log_path, force, HINT_ROOT)) ||
        (rc = must_not_exist(is->serial_path, force, HINT_ROOT)))
        return rc;
    return 0;
}

/* A new key, and the self-signed certificate of the root id with it (in *crt too). */
static int root_cert(const char *id, const char *name, kurer_level ceiling, uint64_t days,
                     int64_t now, kurer_signing_key *key, kurer_cert *cert, kurer_buf *crt)
{
    kurer_cert_body body;
    int rc;
    memset(&body, 0, sizeof(body));
    body.version = 1;
    body.serial = 1;
    body.role = KURER_ROLE_ROOT;
    snprintf(body.subject, sizeof(body.subject), "%s", id);
    snprintf(body.display_name, sizeof(body.display_name), "%s", name);
    body.clearance = ceiling;
    body.not_before = now - SKEW;
    body.not_after = now + (int64_t)days * DAY;
    if ((rc = kurer_signing_key_generate(key)) != 0)
        return refuse(rc, "cannot generate a key: %s", kurer_strerror(rc));
    memcpy(body.signing_key, key->pk, 32);
    if ((rc = kurer_cert_sign(&body, key, cert)) != 0)
        return refuse(rc, "cannot make the root certificate (is --name valid UTF-8 text?): %s",
                      kurer_strerror(rc));
    if ((rc = kurer_cert_encode(cert, crt)) != 0)
        return refuse(rc, "cannot encode the root certificate: %s", kurer_strerror(rc));
    return 0;
}

static void root_created(const issuer *is, const char *dir, const char *name)
{
    const kurer_cert *cert = &is->cert;
    int ceiling = (int)cert->body.clearance;
    char fp[65], t[32];
    kurer_cert_fingerprint(cert, fp);
    say("root \"%s\" (%s) created in %s\n", cert->body.subject, name, dir);
    say("  ceiling      %s (%s)\n", kurer_level_name(ceiling), kurer_level_name_da(ceiling));
    say("  valid until  %s\n", fmt_time(t, sizeof(t), cert->body.not_after));
    say("  fingerprint  %s\n", fp);
    say("Keep %s offline and back it up; distribute %s.\n", is->key_path, is->crt_path);
    jstr("dir", dir);
    jstr("id", cert->body.subject);
    jstr("ceiling", kurer_level_name(ceiling));
    jint("not_after", cert->body.not_after);
    jstr("fingerprint", fp);
    jstr("certificate", is->crt_path);
    jstr("key", is->key_path);
}

int cmd_root_init(int argc, char **argv)
{
    int lockfd = -1;
    static const kurer_opt opts[] = {
        {"help", 0, 0},    {"json", 0, 0},    {"dir", V, 0},  {"name", V, 0},
        {"id", V, 0},      {"ceiling", V, 0}, {"days", V, 0}, {"passphrase-env", V, 0},
        {"kdf-min", 0, 0}, {"force", 0, 0}};
    kurer_args a;
    const char *dir, *name, *id, *envname;
    kurer_level ceiling = KURER_LEVEL_CONFIDENTIAL;
    int given, force, rc;
    uint64_t days;
    int64_t now = kurer_time_unix();
    kurer_cert cert;
    kurer_kdf_params kdf;
    kurer_signing_key key = {0};
    kurer_secret pass = {0};
    issuer is;
    kurer_log_entry e;
    kurer_buf crt;

    memset(&is, 0, sizeof(is));
    kurer_buf_init(&crt, KURER_CERT_MAX);
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_root_init, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "dir", &dir)) || (rc = need(&a, "name", &name)) ||
        (rc = opt_days(&a, "days", 7300, &days)) ||
        (rc = opt_level(&a, "ceiling", &ceiling, &given)))
        return rc;
    id = opt(&a, "id") ? opt(&a, "id") : "root";
    if ((rc = opt_env(&a, "passphrase-env", DEFAULT_PASS, &envname)) != 0)
        return rc;
    force = flag(&a, "force");
    kdf = flag(&a, "kdf-min") ? kurer_kdf_minimum() : kurer_kdf_default();
    if (kurer_authority_id_check(id) != 0)
        return refuse(KURER_ESUBJECT, "invalid root id '%s' (1-63 of a-z 0-9 - .)", id);
    if ((rc = check_name(name)) != 0 || (rc = check_dir_usable(dir)) != 0)
        return rc;

    /* Every file init writes, the log and serial state included: none is replaced silently. */
    if ((rc = issuer_paths(&is, dir, 1)) != 0 || (rc = lock_existing(dir, &lockfd)) != 0 ||
        (rc = root_files_absent(&is, force)) != 0)
        goto out;
    if ((rc = get_passphrase(envname, "the new root key", 1, &pass)) != 0 ||
        (rc = root_cert(id, name, ceiling, days, now, &key, &cert, &crt)) != 0)
        goto out;
    /* Everything is checked: now write. A directory that did not exist is locked as soon as
     * it does, and checked again under the lock. */
    if ((rc = make_dir(dir)) != 0)
        goto out;
    if (lockfd < 0 && ((rc = lock_dir(dir, &lockfd)) != 0 || (rc = root_files_absent(&is, force))))
        goto out;
    if (force && ((rc = move_aside(is.key_path, now)) != 0 || (rc = move_aside(is.crt_path, now)) ||
                  (rc = move_aside(is.log_path, now)) || (rc = move_aside(is.serial_path, now))))
        goto out;
    rc = kurer_signing_key_save(&key, is.key_path, pass.p, pass.n, &kdf, 0);
    kurer_secret_free(&pass);
    if (rc != 0) {
        rc = write_refused(is.key_path, rc);
        goto out;
    }
    is.cert = cert;
    is.root = cert;
    is.key = key;
    memset(&key, 0, sizeof(key));
    if ((rc = kurer_issuelog_init(&is.log, cert.body.signing_key, &is.log_img)) != 0) {
        rc = refuse(rc, "cannot start the issuance log");
        goto out;
    }
    is.st.next_serial = 2;
    kurer_log_entry_for_cert(&e, &cert, now);
    if ((rc = write_file(is.crt_path, crt.data, crt.len, 0644, 0)) != 0 ||
        (rc = log_append(&is, &e)) != 0)
        goto out;
    root_created(&is, dir, name);
out:
    kurer_secret_free(&pass);
    kurer_signing_key_release(&key);
    kurer_buf_release(&crt);
    issuer_release(&is);
    unlock_dir(&lockfd);
    return rc;
}
