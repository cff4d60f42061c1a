/* kurer-admin: files and directories (checked before anything is asked or written), the
 * directory locks, and what a file is. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kurer/armor.h"
#include "kurer/csr.h"
#include "kurer/text.h"
#include "kurer/util.h"

int join(char *out, const char *dir, const char *name)
{
    if (kurer_path_join(out, PATH_MAX_LEN, dir, name) != 0)
        return refuse(KURER_ELIMIT, "path too long: %s/%s", dir, name);
    return 0;
}

int read_file(const char *path, size_t max, uint8_t **d, size_t *n)
{
    int rc = kurer_file_read(path, max, d, n);
    struct stat st;
    if (rc == KURER_ELIMIT)
        return refuse(rc, "%s is too large to be what it should be", path);
    if (rc != 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return refuse(KURER_EINVAL, "%s is a directory, not a file", path);
    if (rc == KURER_EPERM)
        return refuse(rc, "cannot read %s: permission denied", path);
    if (rc != 0)
        return refuse(rc, "cannot read %s: %s", path, kurer_strerror(rc));
    return 0;
}

static const char *kind_name(file_kind k);

/* Armoured text is about a third larger than its bytes, and has its lines. */
#define ARMORED_MAX(max) ((max) / 3 * 4 + (max) / 48 + 256)

int read_input(const char *path, size_t max, uint8_t **d, size_t *n, kurer_armor_kind *armor)
{
    int rc;
    *armor = KURER_ARMOR_NONE;
    if ((rc = read_file(path, ARMORED_MAX(max), d, n)) != 0)
        return rc;
    if (kurer_armor_is(*d, *n))
        rc = kurer_armor_unwrap(d, n, armor);
    else if (*n > max)
        rc = KURER_ELIMIT;
    if (rc == 0 && *n > max)
        rc = KURER_ELIMIT;
    if (rc == 0)
        return 0;
    free(*d);
    *d = NULL;
    if (rc == KURER_ELIMIT)
        return refuse(rc, "%s is too large to be what it should be", path);
    return refuse(rc, "%s is not valid armoured text: %s", path, kurer_strerror(rc));
}

static kurer_armor_kind armor_of(file_kind k)
{
    switch (k) {
    case FK_CERT:
        return KURER_ARMOR_CERTIFICATE;
    case FK_CHAIN:
        return KURER_ARMOR_CHAIN;
    case FK_CSR:
        return KURER_ARMOR_REQUEST;
    case FK_CRL:
        return KURER_ARMOR_CRL;
    default:
        return KURER_ARMOR_NONE;
    }
}

int armor_matches(const char *path, kurer_armor_kind armor, file_kind k)
{
    if (armor == KURER_ARMOR_NONE || armor == armor_of(k))
        return 0;
    return refuse(KURER_EARMORLABEL, "%s is labelled %s but holds %s", path,
                  kurer_armor_label(armor), kind_name(k));
}

/* The refusal for a file that could not be written. */
int write_refused(const char *path, int rc)
{
    if (rc == KURER_EUNSUPPORTED)
        return refuse(rc,
                      "cannot write %s: its file system has no Unix permissions (FAT?); create "
                      "the directory on a local disk and copy it with cp -a",
                      path);
    return refuse(rc, "cannot write %s: %s", path, kurer_strerror(rc));
}

int write_file(const char *path, const void *d, size_t n, unsigned mode, int overwrite)
{
    int rc = kurer_file_write(path, d, n, mode, overwrite);
    if (rc == KURER_EEXIST)
        return refuse(rc, "%s already exists (use --force to replace it)", path);
    if (rc != 0)
        return write_refused(path, rc);
    return 0;
}

/* hint says what --force would do. */
int must_not_exist(const char *path, int force, const char *hint)
{
    if (!force && kurer_file_exists(path) == 0)
        return refuse(KURER_EEXIST, "%s already exists; %s", path, hint);
    return 0;
}

/* --force on init: path (if it exists) is renamed to path.replaced-<UTC time> (mode and
 * content kept), never deleted. */
int move_aside(const char *path, int64_t now)
{
    char to[PATH_MAX_LEN + 64], stamp[32];
    struct tm tm;
    time_t tt = (time_t)now;
    int n;
    if (kurer_file_exists(path) != 0)
        return 0;
    if (gmtime_r(&tt, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
        snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
    for (int i = 0;; i++) {
        n = i == 0 ? snprintf(to, sizeof(to), "%s.replaced-%s", path, stamp)
                   : snprintf(to, sizeof(to), "%s.replaced-%s-%d", path, stamp, i);
        if (n < 0 || (size_t)n >= sizeof(to))
            return refuse(KURER_ELIMIT, "path too long: %s", path);
        if (kurer_file_exists(to) != 0)
            break;
        if (i == 1000)
            return refuse(KURER_EEXIST, "cannot move %s aside: too many old copies", path);
    }
    if (rename(path, to) != 0)
        return refuse(KURER_EIO, "cannot move %s aside to %s: %s", path, to, strerror(errno));
    say("moved the existing %s aside to %s\n", path, to);
    replaced(to);
    return 0;
}

/* dir without trailing slashes (but "/" stays) into out. */
int strip_slashes(char *out, const char *dir)
{
    size_t n = strlen(dir);
    if (n >= PATH_MAX_LEN)
        return refuse(KURER_ELIMIT, "path too long: %s", dir);
    memcpy(out, dir, n + 1);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return 0;
}

/* Checked before anything is asked or written: dir is a directory we may write in, or can be
 * created (with its missing parents) in the nearest existing one. */
int check_dir_usable(const char *dir)
{
    char buf[PATH_MAX_LEN];
    struct stat st;
    int rc;
    if ((rc = strip_slashes(buf, dir)) != 0)
        return rc;
    for (;;) {
        char *slash;
        if (stat(buf, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                return refuse(KURER_EEXIST, "%s exists and is not a directory", buf);
            if (access(buf, W_OK | X_OK) != 0)
                return refuse(KURER_EPERM, "cannot write in %s: permission denied", buf);
            return 0;
        }
        if (errno != ENOENT && errno != ENOTDIR)
            return refuse(errno == EACCES ? KURER_EPERM : KURER_EIO, "cannot use %s: %s", buf,
                          errno == EACCES ? "permission denied" : strerror(errno));
        slash = strrchr(buf, '/');
        if (slash == NULL)
            snprintf(buf, sizeof(buf), ".");
        else if (slash == buf)
            buf[1] = '\0';
        else
            *slash = '\0';
    }
}

/* Checked before anything is asked or written: --out names a file in a directory that exists
 * and that we may write in. */
int check_out_path(const char *path)
{
    char buf[PATH_MAX_LEN];
    struct stat st;
    char *slash;
    int rc;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return refuse(KURER_EINVAL, "%s is a directory; --out needs a file name", path);
    if ((rc = strip_slashes(buf, path)) != 0)
        return rc;
    slash = strrchr(buf, '/');
    if (slash == NULL)
        snprintf(buf, sizeof(buf), ".");
    else if (slash == buf)
        buf[1] = '\0';
    else
        *slash = '\0';
    if (stat(buf, &st) != 0)
        return refuse(errno == EACCES ? KURER_EPERM : KURER_ENOENT,
                      "cannot write %s: directory %s %s", path, buf,
                      errno == EACCES ? "is not accessible (permission denied)" : "does not exist");
    if (!S_ISDIR(st.st_mode))
        return refuse(KURER_EINVAL, "cannot write %s: %s is not a directory", path, buf);
    if (access(buf, W_OK | X_OK) != 0)
        return refuse(KURER_EPERM, "cannot write %s: permission denied in %s", path, buf);
    return 0;
}

/* A display name: at most KURER_NAME_MAX bytes of UTF-8 text without control characters. */
int check_name(const char *name)
{
    if (strlen(name) > KURER_NAME_MAX)
        return refuse(KURER_ELIMIT, "--name is longer than %d bytes", KURER_NAME_MAX);
    while (*name) {
        uint32_t cp;
        size_t n = kurer_utf8_decode(name, &cp);
        if (n == 0)
            return refuse(KURER_EINVAL, "--name is not valid UTF-8 text");
        /* C0 and C1 controls, DEL, and the separators and bidirectional controls that would
         * make the name show other than it is (kurer/text.h). */
        if (kurer_text_unsafe(cp))
            return refuse(KURER_EINVAL, "--name contains a control character");
        name += n;
    }
    return 0;
}

/* Creates dir (mode 0700) and its missing parents, or accepts an existing directory. */
int make_dir(const char *dir)
{
    char buf[PATH_MAX_LEN];
    struct stat st;
    int rc;
    if ((rc = strip_slashes(buf, dir)) != 0)
        return rc;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return refuse(KURER_EIO, "cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return refuse(KURER_EIO, "cannot create directory %s: %s", dir, strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return refuse(KURER_EEXIST, "%s exists and is not a directory", dir);
    if ((st.st_mode & 077) != 0)
        fprintf(stderr, "kurer-admin: warning: %s is accessible to other users (mode %03o)\n", dir,
                (unsigned)(st.st_mode & 0777));
    return 0;
}

/* Every command that reads a root or authority directory and then writes it holds the
 * directory's lock (DIR/.lock, an empty file, mode 0600; flock) from before the first read to
 * after the last write, so that two runs at once (two revokes, parallel issues) are serialized
 * instead of one silently undoing the other. A busy lock is waited for (Ctrl-C ends the wait). */
int lock_dir(const char *dir, int *fdp)
{
    char path[PATH_MAX_LEN];
    int rc, said = 0;
    if (*fdp >= 0)
        return 0;
    if ((rc = join(path, dir, F_DIRLOCK)) != 0)
        return rc;
    for (;;) {
        struct stat a, b;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return refuse(errno == EACCES ? KURER_EPERM : KURER_EIO, "cannot lock %s (%s): %s", dir,
                          path, errno == EACCES ? "permission denied" : strerror(errno));
        for (;;) {
            if (flock(fd, said ? LOCK_EX : LOCK_EX | LOCK_NB) == 0)
                break;
            if (errno == EINTR)
                continue;
            if (errno == EWOULDBLOCK && !said) {
                fprintf(stderr, "kurer-admin: waiting for another kurer-admin working on %s\n",
                        dir);
                said = 1;
                continue;
            }
            rc = errno;
            close(fd);
            return refuse(KURER_EIO, "cannot lock %s: %s", path, strerror(rc));
        }
        /* The lock file must still be the one at the path (not removed or replaced while we
         * waited): otherwise the lock guards nothing. */
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            *fdp = fd;
            return 0;
        }
        close(fd);
    }
}

/* Locks dir if it is an existing directory; otherwise does nothing (the caller's own checks
 * report a missing directory, or it creates the directory and locks it then). */
int lock_existing(const char *dir, int *fdp)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    return lock_dir(dir, fdp);
}

void unlock_dir(int *fdp)
{
    if (*fdp >= 0)
        close(*fdp);
    *fdp = -1;
}

/* 1 if a and b are the same existing directory. */
int same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static const char *kind_name(file_kind k)
{
    switch (k) {
    case FK_CERT:
        return "a certificate";
    case FK_CHAIN:
        return "a certificate chain";
    case FK_CSR:
        return "a certificate request";
    case FK_CRL:
        return "a revocation list";
    case FK_KEY:
        return "a sealed key file";
    case FK_LOG:
        return "an issuance log";
    case FK_STATE:
        return "a serial state file";
    case FK_UNKNOWN:
        break;
    }
    return "not a Kurér file";
}

/* What a file is, by trying each decoder (the protobuf messages differ in field types, so at
 * most one accepts a given file). */
file_kind detect_kind(const uint8_t *d, size_t n)
{
    kurer_cert c;
    kurer_chain ch;
    kurer_csr r;
    kurer_crl l;
    kurer_key_kind kk;
    uint8_t pub[64];
    size_t pl;
    kurer_serial_state st;
    if (n >= 8 && memcmp(d, "KURERLOG", 8) == 0)
        return FK_LOG;
    if (kurer_serial_state_decode(d, n, &st) == 0)
        return FK_STATE;
    if (kurer_keyfile_peek(d, n, &kk, pub, sizeof(pub), &pl) == 0)
        return FK_KEY;
    if (kurer_cert_decode(d, n, &c) == 0)
        return FK_CERT;
    if (kurer_chain_decode(d, n, &ch) == 0)
        return FK_CHAIN;
    if (kurer_csr_decode(d, n, &r) == 0)
        return FK_CSR;
    if (kurer_crl_decode(d, n, &l) == 0) {
        kurer_crl_release(&l);
        return FK_CRL;
    }
    return FK_UNKNOWN;
}

/* The reason for a file that did not decode as `want`: another kind, or damage. */
int bad_file(const char *path, const uint8_t *d, size_t n, file_kind want, int rc)
{
    file_kind k = detect_kind(d, n);
    if (k != FK_UNKNOWN && k != want)
        return refuse(KURER_EINVAL, "%s is %s, not %s", path, kind_name(k), kind_name(want));
    return refuse(rc ? rc : KURER_EMALFORMED, "%s is not a valid %s (damaged or truncated?): %s",
                  path, kind_name(want) + (kind_name(want)[1] == ' ' ? 2 : 3),
                  kurer_strerror(rc ? rc : KURER_EMALFORMED));
}

int load_cert(const char *path, kurer_cert *c)
{
    uint8_t *d;
    size_t n;
    kurer_armor_kind armor;
    int rc;
    if ((rc = read_input(path, KURER_CHAIN_BYTES_MAX, &d, &n, &armor)) != 0)
        return rc;
    if ((rc = kurer_cert_decode(d, n, c)) != 0)
        rc = bad_file(path, d, n, FK_CERT, rc);
    if (rc == 0)
        rc = armor_matches(path, armor, FK_CERT);
    free(d);
    return rc;
}

/* A certificate chain file, or a single certificate (as a chain of one). */
int load_chain_or_cert(const char *path, kurer_chain *ch, file_kind *kind)
{
    uint8_t *d;
    size_t n;
    kurer_armor_kind armor;
    int rc;
    memset(ch, 0, sizeof(*ch));
    if ((rc = read_input(path, KURER_CHAIN_BYTES_MAX, &d, &n, &armor)) != 0)
        return rc;
    if (kurer_chain_decode(d, n, ch) == 0) {
        *kind = FK_CHAIN;
    } else if ((rc = kurer_cert_decode(d, n, &ch->certs[0])) == 0) {
        ch->n = 1;
        *kind = FK_CERT;
    } else {
        rc = bad_file(path, d, n, FK_CHAIN, rc);
    }
    if (rc == 0)
        rc = armor_matches(path, armor, *kind);
    free(d);
    return rc;
}

int load_crl(const char *path, kurer_crl *crl, uint8_t **raw, size_t *raw_len)
{
    uint8_t *d;
    size_t n;
    kurer_armor_kind armor;
    int rc;
    memset(crl, 0, sizeof(*crl));
    if ((rc = read_input(path, FILE_MAX, &d, &n, &armor)) != 0)
        return rc;
    if ((rc = kurer_crl_decode(d, n, crl)) != 0)
        rc = bad_file(path, d, n, FK_CRL, rc);
    else if ((rc = armor_matches(path, armor, FK_CRL)) != 0)
        kurer_crl_release(crl);
    if (rc == 0 && raw != NULL) {
        *raw = d;
        *raw_len = n;
    } else {
        free(d);
    }
    return rc;
}

int load_csr(const char *path, kurer_csr *csr, uint8_t **raw, size_t *raw_len)
{
    uint8_t *d;
    size_t n;
    kurer_armor_kind armor;
    int rc;
    if ((rc = read_input(path, KURER_CHAIN_BYTES_MAX, &d, &n, &armor)) != 0)
        return rc;
    if ((rc = kurer_csr_decode(d, n, csr)) != 0)
        rc = bad_file(path, d, n, FK_CSR, rc);
    if (rc == 0)
        rc = armor_matches(path, armor, FK_CSR);
    if (rc == 0 && raw != NULL) {
        *raw = d;
        *raw_len = n;
    } else {
        free(d);
    }
    return rc;
}

int validity_reason(const char *what, const kurer_cert *c, int rc)
{
    char t[32];
    if (rc == KURER_EEXPIRED)
        return refuse(rc, "%s expired on %s", what, fmt_time(t, sizeof(t), c->body.not_after));
    if (rc == KURER_ENOTYETVALID)
        return refuse(rc, "%s is not valid before %s", what,
                      fmt_time(t, sizeof(t), c->body.not_before));
    return refuse(rc, "%s: %s", what, kurer_strerror(rc));
}
