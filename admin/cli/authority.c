/* kurer-admin authority init: an authority under the root, its key, certificate, first
 * revocation list, issuance log and serial state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

#define HINT_AUTHORITY                                                                             \
    "--force moves the existing key, certificate, list, log and serial state aside (to "           \
    "NAME.replaced-TIME) and creates a new authority with a new key in their place"

const char help_authority_init[] =
    "usage: kurer-admin authority init --root ROOTDIR --dir AUTHDIR --id ID --name NAME\n"
    "                                  [--clearance LEVEL] [--days N] [--crl-days N]\n"
    "                                  [--passphrase-env VAR] [--root-passphrase-env VAR]\n"
    "                                  [--kdf-min] [--force] [--json]\n"
    "\n"
    "Creates an authority under the root in ROOTDIR: a new key sealed in AUTHDIR/authority.key\n"
    "(mode 0600), its certificate AUTHDIR/authority.crt signed by the root key, a copy of\n"
    "root.crt, an empty signed revocation list AUTHDIR/crl (version 1), the issuance log and the\n"
    "serial state. The root's own issuance log records the new certificate.\n"
    "\n"
    "  --root ROOTDIR             the root's directory (root.key, root.crt)\n"
    "  --dir AUTHDIR              directory for the authority's files (created mode 0700)\n"
    "  --id ID                    authority id, the domain of its users (\"fm.dk\")\n"
    "  --name NAME                display name\n"
    "  --clearance LEVEL          highest level of the authority (default: the root's ceiling)\n"
    "  --days N                   validity in days (default 1095, never past the root's)\n"
    "  --crl-days N               the revocation list's next update, in days (default 30)\n"
    "  --passphrase-env VAR       the new authority key's passphrase (default " DEFAULT_PASS ");\n"
    "                             unset: asked twice on the terminal (at least 12 characters)\n"
    "  --root-passphrase-env VAR  the root key's passphrase (default " DEFAULT_ROOT_PASS ");\n"
    "                             unset: asked on the terminal\n"
    "  --kdf-min                  seal the key with the smallest accepted Argon2id parameters\n"
    "                             (for tests only; never for real keys)\n"
    "  --force                    create a new authority in an AUTHDIR that has one: the\n"
    "                             existing files are moved aside (renamed to\n"
    "                             NAME.replaced-TIME), never deleted\n"
    "  --json                     print the result as one JSON object\n";

static int auth_files_absent(const issuer *is, int force)
{
    int rc;
    if ((rc = must_not_exist(is->key_path, force, HINT_AUTHORITY)) ||
        (rc = must_not_exist(is->crt_path, force, HINT_AUTHORITY)) ||
        (rc = must_not_exist(is->crl_path, force, HINT_AUTHORITY)) ||
        (rc = must_not_exist(is->log_path, force, HINT_AUTHORITY)) ||
        (rc = must_not_exist(is->serial_path, force, HINT_AUTHORITY)))
        return rc;
    return 0;
}

/* A new authority: what was asked, and what is made before anything is written. */
typedef struct new_authority {
    const char *rootdir, *dir, *id, *name, *envname, *rootenv;
    kurer_level clearance;
    int given, force, clamped;
    uint64_t days, crl_days;
    int64_t now;
    kurer_kdf_params kdf;
    issuer root, auth;
    int rootlock, authlock;
    kurer_secret pass, root_pass;
    kurer_cert cert;
    kurer_crl crl;
    kurer_buf crt, crl_img, root_img;
} new_authority;

static int authority_args(new_authority *x, int argc, char **argv)
{
    static const kurer_opt opts[] = {{"help", 0, 0},
                                     {"json", 0, 0},
                                     {"root", V, 0},
                                     {"dir", V, 0},
                                     {"id", V, 0},
                                     {"name", V, 0},
                                     {"clearance", V, 0},
                                     {"days", V, 0},
                                     {"crl-days", V, 0},
                                     {"passphrase-env", V, 0},
                                     {"root-passphrase-env", V, 0},
                                     {"kdf-min", 0, 0},
                                     {"force", 0, 0}};
    kurer_args a;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_authority_init, argc, argv)) ||
        (rc = need(&a, "root", &x->rootdir)) || (rc = need(&a, "dir", &x->dir)) ||
        (rc = need(&a, "id", &x->id)) || (rc = need(&a, "name", &x->name)) ||
        (rc = opt_days(&a, "days", 1095, &x->days)) ||
        (rc = opt_days(&a, "crl-days", 30, &x->crl_days)) ||
        (rc = opt_level(&a, "clearance", &x->clearance, &x->given)) ||
        (rc = opt_env(&a, "passphrase-env", DEFAULT_PASS, &x->envname)) ||
        (rc = opt_env(&a, "root-passphrase-env", DEFAULT_ROOT_PASS, &x->rootenv)))
        return rc;
    x->force = flag(&a, "force");
    x->kdf = flag(&a, "kdf-min") ? kurer_kdf_minimum() : kurer_kdf_default();
    if (kurer_authority_id_check(x->id) != 0)
        return refuse(KURER_ESUBJECT, "invalid authority id '%s' (1-63 of a-z 0-9 - .)", x->id);
    if ((rc = check_name(x->name)) != 0 || (rc = check_dir_usable(x->dir)) != 0)
        return rc;
    if (same_dir(x->rootdir, x->dir))
        return refuse(KURER_EINVAL, "--dir %s is the root's directory: give the authority its own",
                      x->dir);
    return 0;
}

/* The root (loaded, locked, its key open) and the authority's new key and passphrase. */
static int authority_keys(new_authority *x)
{
    issuer *root = &x->root;
    int rc;
    /* The root's directory first (its serial and log change too), then the authority's. */
    if ((rc = lock_existing(x->rootdir, &x->rootlock)) != 0 ||
        (rc = issuer_load(root, x->rootdir, 1, 1, x->now)) != 0)
        return rc;
    if (!x->given)
        x->clearance = root->cert.body.clearance;
    if (x->clearance > root->cert.body.clearance)
        return refuse(KURER_ECLEARANCE, "clearance %s is above the root's ceiling %s",
                      kurer_level_name((int)x->clearance),
                      kurer_level_name((int)root->cert.body.clearance));
    if ((rc = issuer_paths(&x->auth, x->dir, 0)) != 0 ||
        (rc = lock_existing(x->dir, &x->authlock)) != 0 ||
        (rc = auth_files_absent(&x->auth, x->force)) != 0 ||
        (rc = issuer_open_key(root, x->rootenv, &x->root_pass)) != 0 ||
        (rc = get_passphrase(x->envname, "the new authority key", 1, &x->pass)) != 0)
        return rc;
    /* Whoever runs the authority must never need the root's passphrase. */
    if (x->pass.n == x->root_pass.n && kurer_ct_equal(x->pass.p, x->root_pass.p, x->pass.n))
        return refuse(KURER_EPASSPHRASE,
                      "the authority key needs its own passphrase, not the root key's: its "
                      "administrators must never learn the root passphrase");
    kurer_secret_free(&x->root_pass);
    if ((rc = kurer_signing_key_generate(&x->auth.key)) != 0)
        return refuse(rc, "cannot generate a key: %s", kurer_strerror(rc));
    return 0;
}

/* The certificate (signed with the root's next serial), the first list and the empty log. */
static int authority_make(new_authority *x)
{
    const issuer *root = &x->root;
    kurer_cert_body body;
    int rc;
    memset(&body, 0, sizeof(body));
    body.version = 1;
    body.serial = root->st.next_serial;
    body.role = KURER_ROLE_AUTHORITY;
    snprintf(body.subject, sizeof(body.subject), "%s", x->id);
    snprintf(body.display_name, sizeof(body.display_name), "%s", x->name);
    body.clearance = x->clearance;
    body.not_before = x->now - SKEW;
    body.not_after = x->now + (int64_t)x->days * DAY;
    if (body.not_after > root->cert.body.not_after) {
        body.not_after = root->cert.body.not_after;
        x->clamped = 1;
    }
    memcpy(body.signing_key, x->auth.key.pk, 32);
    if ((rc = kurer_cert_sign(&body, &root->key, &x->cert)) != 0 ||
        (rc = kurer_cert_encode(&x->cert, &x->crt)) != 0 ||
        (rc = kurer_cert_encode(&root->cert, &x->root_img)) != 0)
        return refuse(rc, "cannot make the authority certificate (is --name valid UTF-8 text?): %s",
                      kurer_strerror(rc));
    if ((rc = kurer_authority_check(&x->cert, &root->cert, x->now)) != 0)
        return refuse(rc, "the new certificate does not verify: %s", kurer_strerror(rc));
    x->auth.cert = x->cert;
    x->auth.root = root->cert;
    x->crl.version = 1;
    x->crl.issued_at = x->now;
    x->crl.next_update = x->now + (int64_t)x->crl_days * DAY;
    if ((rc = crl_image(&x->crl, &x->auth, &x->crl_img)) != 0)
        return rc;
    if ((rc = kurer_issuelog_init(&x->auth.log, x->auth.key.pk, &x->auth.log_img)) != 0)
        return refuse(rc, "cannot start the issuance log");
    return 0;
}

/* Everything is checked: now write. A directory that did not exist is locked as soon as it
 * does, and checked again under the lock. Then the root's serial, so it is never reused. */
static int authority_write(new_authority *x)
{
    issuer *auth = &x->auth;
    kurer_serial_state st = {1, 0};
    kurer_log_entry e;
    uint64_t serial;
    int rc;
    if ((rc = make_dir(x->dir)) != 0)
        return rc;
    if (x->authlock < 0 && ((rc = lock_dir(x->dir, &x->authlock)) != 0 ||
                            (rc = auth_files_absent(auth, x->force)) != 0))
        return rc;
    if ((rc = reserve_serial(&x->root, &serial)) != 0)
        return rc;
    if (x->force &&
        ((rc = move_aside(auth->key_path, x->now)) || (rc = move_aside(auth->crt_path, x->now)) ||
         (rc = move_aside(auth->crl_path, x->now)) || (rc = move_aside(auth->log_path, x->now)) ||
         (rc = move_aside(auth->serial_path, x->now)) ||
         (rc = move_aside(auth->root_path, x->now))))
        return rc;
    rc = kurer_signing_key_save(&auth->key, auth->key_path, x->pass.p, x->pass.n, &x->kdf, 0);
    kurer_secret_free(&x->pass);
    if (rc != 0)
        return write_refused(auth->key_path, rc);
    if ((rc = write_file(auth->crt_path, x->crt.data, x->crt.len, 0644, 0)) != 0 ||
        (rc = write_file(auth->root_path, x->root_img.data, x->root_img.len, 0644, 1)) != 0 ||
        (rc = write_file(auth->crl_path, x->crl_img.data, x->crl_img.len, 0644, 0)) != 0 ||
        (rc = write_file(auth->log_path, auth->log_img.data, auth->log_img.len, 0600, 0)) != 0 ||
        (rc = write_state(auth, &st)) != 0)
        return rc;
    kurer_log_entry_for_cert(&e, &x->cert, x->now);
    return log_append(&x->root, &e);
}

static void authority_created(const new_authority *x)
{
    const kurer_cert *cert = &x->cert;
    int level = (int)x->clearance;
    char fp[65], t[32];
    kurer_cert_fingerprint(cert, fp);
    say("authority %s created in %s\n", x->id, x->dir);
    say("  serial       %llu (issued by root \"%s\")\n", (unsigned long long)cert->body.serial,
        x->root.cert.body.subject);
    say("  clearance    %s (%s)\n", kurer_level_name(level), kurer_level_name_da(level));
    say("  valid until  %s%s\n", fmt_time(t, sizeof(t), cert->body.not_after),
        x->clamped ? " (the root's expiry)" : "");
    say("  fingerprint  %s\n", fp);
    say("  revocation list version 1 in %s\n", x->auth.crl_path);
    jstr("dir", x->dir);
    jstr("id", x->id);
    ju64("serial", cert->body.serial);
    jstr("clearance", kurer_level_name(level));
    jint("not_after", cert->body.not_after);
    jbool("clamped_to_root", x->clamped);
    jstr("fingerprint", fp);
    jstr("certificate", x->auth.crt_path);
    jstr("crl", x->auth.crl_path);
}

int cmd_authority_init(int argc, char **argv)
{
    new_authority *x = calloc(1, sizeof(*x));
    int rc;
    if (x == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    x->rootlock = x->authlock = -1;
    x->clearance = KURER_LEVEL_CONFIDENTIAL;
    x->now = kurer_time_unix();
    kurer_buf_init(&x->crt, KURER_CERT_MAX);
    kurer_buf_init(&x->root_img, KURER_CERT_MAX);
    kurer_buf_init(&x->crl_img, KURER_CRL_BYTES_MAX);
    if ((rc = authority_args(x, argc, argv)) == 0 && (rc = authority_keys(x)) == 0 &&
        (rc = authority_make(x)) == 0 && (rc = authority_write(x)) == 0)
        authority_created(x);
    kurer_secret_free(&x->pass);
    kurer_secret_free(&x->root_pass);
    kurer_crl_release(&x->crl);
    kurer_buf_release(&x->crt);
    kurer_buf_release(&x->root_img);
    kurer_buf_release(&x->crl_img);
    issuer_release(&x->root);
    issuer_release(&x->auth);
    unlock_dir(&x->authlock);
    unlock_dir(&x->rootlock);
    free(x);
    return rc;
}
