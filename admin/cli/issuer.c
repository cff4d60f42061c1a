/* kurer-admin: a root or authority directory (certificates, issuance log, serial state, key
 * and revocation list), loaded and checked before anything changes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

void issuer_release(issuer *is)
{
    kurer_issuelog_release(&is->log);
    kurer_buf_release(&is->log_img);
    kurer_signing_key_release(&is->key);
}

int issuer_paths(issuer *is, const char *dir, int is_root)
{
    is->dir = dir;
    is->is_root = is_root;
    kurer_buf_init(&is->log_img, KURER_LOG_FILE_MAX);
    int rc;
    if ((rc = join(is->key_path, dir, is_root ? F_ROOT_KEY : F_AUTH_KEY)) ||
        (rc = join(is->crt_path, dir, is_root ? F_ROOT_CRT : F_AUTH_CRT)) ||
        (rc = join(is->log_path, dir, F_LOG)) || (rc = join(is->serial_path, dir, F_SERIAL)) ||
        (rc = join(is->crl_path, dir, F_CRL)) || (rc = join(is->root_path, dir, F_ROOT_CRT)))
        return rc;
    return 0;
}

/* Loads and checks a directory's certificates, log and serial state (no private key). With
 * check_validity, the issuer must be inside its validity window now. */
int issuer_load(issuer *is, const char *dir, int is_root, int check_validity, int64_t now)
{
    uint8_t *d = NULL;
    size_t n, bad;
    int rc;
    memset(is, 0, sizeof(*is));
    if ((rc = issuer_paths(is, dir, is_root)) != 0)
        return rc;
    {
        struct stat st;
        char other[PATH_MAX_LEN];
        if (stat(dir, &st) != 0)
            return refuse(errno == EACCES ? KURER_EPERM : KURER_ENOENT, "%s: %s", dir,
                          errno == EACCES ? "permission denied" : "no such directory");
        if (!S_ISDIR(st.st_mode))
            return refuse(KURER_EINVAL, "%s is a file, not %s directory", dir,
                          is_root ? "a root" : "an authority");
        if (is_root && join(other, dir, F_AUTH_CRT) == 0 && kurer_file_exists(other) == 0)
            return refuse(KURER_EROLE, "%s is an authority directory, not a root directory", dir);
    }
    if (kurer_file_exists(is->crt_path) != 0)
        return refuse(KURER_ENOENT, "%s is not %s directory (no %s)", dir,
                      is_root ? "a root" : "an authority", is_root ? F_ROOT_CRT : F_AUTH_CRT);
    if ((rc = load_cert(is->root_path, &is->root)) != 0)
        return rc;
    if (is->root.body.role != KURER_ROLE_ROOT)
        return refuse(KURER_EROLE, "%s is %s certificate, not a root", is->root_path,
                      role_a((int)is->root.body.role));
    /* Validity is checked below when asked: pass the root's own not_before to check the rest. */
    if ((rc = kurer_root_check(&is->root, is->root.body.not_before)) != 0)
        return refuse(rc, "%s is not a valid root certificate: %s", is->root_path,
                      kurer_strerror(rc));
    if (check_validity && (rc = kurer_cert_check_validity(&is->root, now)) != 0)
        return validity_reason("the root certificate", &is->root, rc);
    if (is_root) {
        is->cert = is->root;
    } else {
        if ((rc = load_cert(is->crt_path, &is->cert)) != 0)
            return rc;
        if (is->cert.body.role != KURER_ROLE_AUTHORITY)
            return refuse(KURER_EROLE, "%s is %s certificate, not an authority's", is->crt_path,
                          role_a((int)is->cert.body.role));
        if ((rc = kurer_authority_check(&is->cert, &is->root, is->cert.body.not_before)) != 0)
            return refuse(rc, "%s is not signed by the root in %s: %s", is->crt_path, is->root_path,
                          kurer_strerror(rc));
        if (check_validity && (rc = kurer_cert_check_validity(&is->cert, now)) != 0)
            return validity_reason("the authority certificate", &is->cert, rc);
    }
    if ((rc = read_file(is->log_path, KURER_LOG_FILE_MAX, &d, &n)) != 0)
        return rc;
    rc = kurer_issuelog_parse(d, n, is->cert.body.signing_key, &is->log, &bad);
    if (rc == 0 && kurer_buf_put(&is->log_img, d, n) != 0)
        rc = refuse(KURER_ELIMIT, "%s is too large", is->log_path);
    else if (rc != 0 && bad == SIZE_MAX)
        rc = bad_file(is->log_path, d, n, FK_LOG, rc);
    else if (rc != 0)
        rc = refuse(rc, "issuance log %s: entry %zu is bad: %s", is->log_path, bad,
                    rc == KURER_ECORRUPT ? "it does not follow the entry before it"
                                         : kurer_strerror(rc));
    free(d);
    d = NULL;
    if (rc != 0)
        return rc;
    if ((rc = read_file(is->serial_path, 64, &d, &n)) != 0)
        return rc;
    if ((rc = kurer_serial_state_decode(d, n, &is->st)) != 0)
        rc = bad_file(is->serial_path, d, n, FK_STATE, rc);
    free(d);
    if (rc != 0)
        return rc;
    if (is->st.log_entries > is->log.n)
        return refuse(KURER_ECORRUPT,
                      "issuance log %s has %zu %s but %s records %llu: entries were removed",
                      is->log_path, is->log.n, plural(is->log.n, "entry", "entries"),
                      is->serial_path, (unsigned long long)is->st.log_entries);
    if (is->st.next_serial <= kurer_issuelog_max_serial(&is->log))
        return refuse(KURER_ECORRUPT, "%s is behind the issuance log (serial %llu already used)",
                      is->serial_path, (unsigned long long)kurer_issuelog_max_serial(&is->log));
    return 0;
}

/* Opens the issuer's key with the passphrase from envname and checks it is the certificate's. */
int issuer_open_key(issuer *is, const char *envname, kurer_secret *keep)
{
    kurer_secret pass;
    char what[PATH_MAX_LEN + 16];
    int rc;
    struct stat st;
    snprintf(what, sizeof(what), "%s", is->key_path);
    /* Before the passphrase is asked: like ssh, a key others may read or write is refused. */
    if (stat(is->key_path, &st) != 0)
        return errno == ENOENT ? refuse(KURER_ENOENT, "%s is missing", is->key_path)
               : errno == EACCES
                   ? refuse(KURER_EPERM, "cannot read %s: permission denied", is->key_path)
                   : refuse(KURER_EIO, "cannot read %s: %s", is->key_path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return refuse(KURER_EINVAL, "%s is %s, not a key file", is->key_path,
                      S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
    if ((st.st_mode & 077) != 0)
        return refuse(KURER_EPERM, "%s is accessible by others (mode %04o): chmod 600 it",
                      is->key_path, (unsigned)(st.st_mode & 07777));
    if ((rc = get_passphrase(envname, what, 0, &pass)) != 0)
        return rc;
    rc = kurer_signing_key_load(&is->key, is->key_path, pass.p, pass.n);
    if (rc == 0 && keep != NULL)
        *keep = pass; /* the caller frees it */
    else
        kurer_secret_free(&pass);
    if (rc == KURER_EPASSPHRASE)
        return refuse(rc, "wrong passphrase for %s (or the key file was altered)", is->key_path);
    if (rc == KURER_ENOENT)
        return refuse(rc, "%s is missing", is->key_path);
    if (rc != 0)
        return refuse(rc, "cannot open %s: %s", is->key_path, kurer_strerror(rc));
    if (!kurer_ct_equal(is->key.pk, is->cert.body.signing_key, 32)) {
        kurer_signing_key_release(&is->key);
        return refuse(KURER_EKEYMISMATCH, "%s does not hold the key of %s", is->key_path,
                      is->crt_path);
    }
    return 0;
}

int write_state(issuer *is, const kurer_serial_state *st)
{
    uint8_t img[KURER_SERIAL_STATE_LEN];
    int rc = kurer_serial_state_encode(st, img);
    if (rc != 0)
        return refuse(rc, "internal error encoding the serial state");
    if ((rc = write_file(is->serial_path, img, sizeof(img), 0600, 1)) != 0)
        return rc;
    is->st = *st;
    return 0;
}

/* Takes the next serial: the state file is advanced (and synced) before the serial is used. */
int reserve_serial(issuer *is, uint64_t *serial)
{
    kurer_serial_state st = is->st;
    int rc = kurer_issuance_reserve(&st, &is->log, serial);
    if (rc == KURER_ELIMIT)
        return refuse(rc, "serial numbers exhausted");
    if (rc != 0)
        return refuse(rc, "%s is behind the issuance log", is->serial_path);
    return write_state(is, &st);
}

int log_append(issuer *is, kurer_log_entry *e)
{
    kurer_serial_state st = is->st;
    int rc = kurer_issuelog_append(&is->log, e, &is->key, &is->log_img);
    if (rc != 0)
        return refuse(rc, "cannot append to the issuance log: %s", kurer_strerror(rc));
    if ((rc = write_file(is->log_path, is->log_img.data, is->log_img.len, 0600, 1)) != 0)
        return rc;
    st.log_entries = is->log.n;
    return write_state(is, &st);
}

int crl_image(kurer_crl *crl, const issuer *is, kurer_buf *out)
{
    int rc = kurer_crl_sign(crl, &is->key, &is->cert);
    if (rc == 0)
        rc = kurer_crl_encode(crl, out);
    if (rc != 0)
        return refuse(rc, "cannot make the revocation list: %s", kurer_strerror(rc));
    return 0;
}

/* The issuer's current list (AUTHDIR/crl, or ROOTDIR/crl), checked before a new one is built on
 * it: it must be this issuer's, and hold every revocation the (verified) issuance log records.
 * An older list put back (a restored backup, or anyone who can write the directory) would
 * otherwise be the base of a new list with a higher version, which relays accept and which
 * un-revokes those serials. A root has no list until its first revocation: a missing ROOTDIR/crl
 * is an empty list of version 0, unless the log records a revocation. */
int current_list(const issuer *is, kurer_crl *old)
{
    int rc;
    memset(old, 0, sizeof(*old));
    if (is->is_root && kurer_file_exists(is->crl_path) != 0) {
        for (size_t i = 0; i < is->log.n; i++)
            if (is->log.entries[i].kind == KURER_LOGK_REVOKE)
                return refuse(KURER_ESTALE,
                              "%s is missing but %s records a revocation (entry %llu): put the "
                              "newest list back",
                              is->crl_path, is->log_path,
                              (unsigned long long)is->log.entries[i].seq);
        return 0;
    }
    if ((rc = load_crl(is->crl_path, old, NULL, NULL)) != 0)
        return rc;
    if ((rc = kurer_crl_verify(old, &is->root)) != 0 ||
        !kurer_ct_equal(old->issuer_cert.body.signing_key, is->cert.body.signing_key, 32)) {
        rc =
            refuse(rc ? rc : KURER_EISSUER, "%s is not this %s's revocation list: %s", is->crl_path,
                   is->is_root ? "root" : "authority", kurer_strerror(rc ? rc : KURER_EISSUER));
        kurer_crl_release(old);
        return rc;
    }
    for (size_t i = 0; i < is->log.n; i++) {
        const kurer_log_entry *le = &is->log.entries[i];
        if (le->kind == KURER_LOGK_REVOKE && !kurer_crl_contains(old, le->serial)) {
            rc = refuse(KURER_ESTALE,
                        "%s (version %llu) is older than %s: serial %llu was revoked in entry "
                        "%llu but is not on it; put the newest list back",
                        is->crl_path, (unsigned long long)old->version, is->log_path,
                        (unsigned long long)le->serial, (unsigned long long)le->seq);
            kurer_crl_release(old);
            return rc;
        }
    }
    if (old->version == UINT64_MAX) {
        kurer_crl_release(old);
        return refuse(KURER_ELIMIT, "revocation list versions exhausted");
    }
    return 0;
}

/* neu (entries, version, dates set) signed with the issuer's open key, checked against the root,
 * and written over the issuer's list file. */
int write_list(const issuer *is, kurer_crl *neu)
{
    kurer_buf img;
    int rc;
    kurer_buf_init(&img, KURER_CRL_BYTES_MAX);
    if ((rc = crl_image(neu, is, &img)) == 0 && (rc = kurer_crl_verify(neu, &is->root)) != 0)
        rc = refuse(rc, "the new revocation list does not verify: %s", kurer_strerror(rc));
    if (rc == 0)
        rc = write_file(is->crl_path, img.data, img.len, 0644, 1);
    kurer_buf_release(&img);
    return rc;
}

/* A new list: old's entries with serial added (if not 0; not already on old), the next
 * version, next_update days from now. */
int next_list(const kurer_crl *old, uint64_t serial, kurer_revocation_reason reason, int64_t now,
              uint64_t days, kurer_crl *neu)
{
    size_t i = 0, j = 0;
    memset(neu, 0, sizeof(*neu));
    neu->version = old->version + 1;
    neu->issued_at = now;
    neu->next_update = now + (int64_t)days * DAY;
    neu->n_revoked = old->n_revoked + (serial != 0);
    neu->revoked = calloc(neu->n_revoked ? neu->n_revoked : 1, sizeof(*neu->revoked));
    if (neu->revoked == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    for (; i < old->n_revoked && (serial == 0 || old->revoked[i].serial < serial); i++)
        neu->revoked[j++] = old->revoked[i];
    if (serial != 0) {
        neu->revoked[j].serial = serial;
        neu->revoked[j].revoked_at = now;
        neu->revoked[j].reason = reason;
        j++;
    }
    for (; i < old->n_revoked; i++)
        neu->revoked[j++] = old->revoked[i];
    return 0;
}

/* "revocation list of fm.dk is past its next update (DATE)" (of the root: "of root ID"). */
void stale_line(const kurer_crl *l, char *out, size_t n)
{
    char t[32];
    snprintf(out, n, "revocation list of %s%s is past its next update (%s)",
             l->issuer_cert.body.role == KURER_ROLE_ROOT ? "root " : "", l->issuer,
             fmt_time(t, sizeof(t), l->next_update));
}
