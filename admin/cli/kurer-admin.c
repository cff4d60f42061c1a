/* kurer-admin: roots, authorities, device certificates, revocation, issuance logs.
 *
 * Exit codes: 0 success; 1 refused (invalid input, failed check, I/O), with one line
 * "kurer-admin: <reason>" on stderr; 2 usage errors. With --json, stdout carries exactly one
 * JSON object for the command, whether it succeeded or not.
 *
 * Every command that writes checks everything first (files, signatures, policy, passphrase)
 * and writes only after that, so a refused command changes nothing in the directories.
 * File names and formats: docs/admin.md. */
#include "kurer/buf.h"
#include "kurer/cert.h"
#include "kurer/certmsg.h"
#include "kurer/crypto.h"
#include "kurer/csr.h"
#include "kurer/error.h"
#include "kurer/frame.h"
#include "kurer/issuelog.h"
#include "kurer/keys.h"
#include "kurer/net.h"
#include "kurer/tty.h"
#include "kurer/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef KURER_VERSION
#define KURER_VERSION "0"
#endif

#define EXIT_REFUSED 1
#define EXIT_USAGE   2
/* Not a kurer_err: a command's usage error (exit 2). */
#define RC_USAGE 1000
/* Not a kurer_err: --help was printed (exit 0). */
#define RC_HELP 1001

#define F_ROOT_KEY        "root.key"
#define F_ROOT_CRT        "root.crt"
#define F_AUTH_KEY        "authority.key"
#define F_AUTH_CRT        "authority.crt"
#define F_CRL             "crl"
#define F_SERIAL          "serial"
#define F_LOG             "issuance.log"
#define F_DIRLOCK         ".lock"
#define DEFAULT_PASS      "KURER_ADMIN_PASSPHRASE"
#define DEFAULT_ROOT_PASS "KURER_ADMIN_ROOT_PASSPHRASE"
#define PASS_MAX          KURER_PASSPHRASE_MAX
#define PASS_MIN_NEW      KURER_PASSPHRASE_MIN_NEW
#define PATH_MAX_LEN      4096
#define DAY               86400
#define SKEW              600 /* not_before is backdated this much for devices whose clocks lag */
#define FILE_MAX          ((size_t)KURER_CRL_BYTES_MAX)

/* ------------------------------------------------------------------------ output */

static int g_json;
static const char *g_command = "";
static char g_err[1024];
static int g_err_code;
static kurer_buf g_fields; /* ,"key":value pairs of the JSON result */
static int g_out_failed;

static void out_raw(const char *s, size_t n)
{
    if (kurer_buf_put(&g_fields, s, n) != 0)
        g_out_failed = 1;
}

/* The length of the valid UTF-8 sequence at p (1-4), or 0 if p does not start one (an invalid
 * or overlong sequence, a surrogate, above U+10FFFF). */
static size_t utf8_seq(const unsigned char *p)
{
    uint32_t cp;
    size_t n;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        cp = p[0] & 0x1fu;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        cp = p[0] & 0x0fu;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static void json_escape(kurer_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int bad = kurer_buf_put_u8(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p && !bad; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            bad = kurer_buf_put(b, e, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            bad = kurer_buf_put(b, e, 6);
        } else if (*p >= 0x80) {
            /* Valid UTF-8 as it is; any other byte as U+FFFD, so the output is always JSON. */
            size_t n = utf8_seq(p);
            if (n == 0) {
                bad = kurer_buf_put(b, "\\ufffd", 6);
            } else {
                bad = kurer_buf_put(b, p, n);
                p += n - 1;
            }
        } else {
            bad = kurer_buf_put_u8(b, *p);
        }
    }
    if (bad || kurer_buf_put_u8(b, '"'))
        g_out_failed = 1;
}

static void jkey(const char *k)
{
    out_raw(",", 1);
    json_escape(&g_fields, k);
    out_raw(":", 1);
}

static void jstr(const char *k, const char *v)
{
    jkey(k);
    json_escape(&g_fields, v);
}

static void jint(const char *k, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    jkey(k);
    out_raw(tmp, (size_t)n);
}

static void ju64(const char *k, uint64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    jkey(k);
    out_raw(tmp, (size_t)n);
}

static void jbool(const char *k, int v)
{
    jkey(k);
    out_raw(v ? "true" : "false", v ? 4 : 5);
}

/* A raw JSON value (an array or object built by the caller). */
static void jraw(const char *k, const kurer_buf *v)
{
    jkey(k);
    out_raw((const char *)v->data, v->len);
}

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    va_list ap;
    if (g_json)
        return;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

/* Records why a command is refused and returns rc (a kurer_err). The reason names files and
 * values but never a secret. */
__attribute__((format(printf, 2, 3))) static int refuse(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof(g_err), fmt, ap);
    va_end(ap);
    g_err_code = rc;
    return rc;
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof(g_err), fmt, ap);
    va_end(ap);
    g_err_code = KURER_EINVAL;
    return RC_USAGE;
}

/* "a DEVICE", "an AUTHORITY", "a ROOT". */
static const char *role_a(int role)
{
    static char buf[48];
    const char *n = kurer_role_name(role);
    snprintf(buf, sizeof(buf), "%s %s", strchr("AEIOU", n[0]) && n[0] ? "an" : "a", n);
    return buf;
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    kurer_hex_encode(out, p, n);
}

static const char *fmt_time(char *buf, size_t n, int64_t t)
{
    kurer_time_format(buf, n, t);
    return buf;
}

/* ------------------------------------------------------------------------ options */

typedef struct optdef {
    const char *name;
    int arg;   /* takes a value */
    int multi; /* may repeat */
} optdef;

#define MAX_OPTS  24
#define MAX_MULTI 16
#define MAX_POS   4

typedef struct args {
    const optdef *defs;
    size_t ndefs;
    const char *val[MAX_OPTS][MAX_MULTI];
    size_t nval[MAX_OPTS];
    const char *pos[MAX_POS];
    size_t npos;
} args;

static int args_parse(args *a, const optdef *defs, size_t ndefs, int argc, char **argv,
                      size_t max_pos)
{
    int only_pos = 0;
    memset(a, 0, sizeof(*a));
    a->defs = defs;
    a->ndefs = ndefs;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i], *eq, *v = NULL;
        size_t nlen, d;
        if (only_pos || s[0] != '-' || s[1] == '\0') {
            if (a->npos == max_pos || a->npos == MAX_POS)
                return usage_error("unexpected argument '%s'", s);
            a->pos[a->npos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(s, "-h") == 0)
            s = "--help";
        if (s[1] != '-')
            return usage_error("unknown option '%s'", s);
        s += 2;
        eq = strchr(s, '=');
        nlen = eq ? (size_t)(eq - s) : strlen(s);
        for (d = 0; d < ndefs; d++)
            if (strlen(defs[d].name) == nlen && strncmp(defs[d].name, s, nlen) == 0)
                break;
        if (d == ndefs)
            return usage_error("unknown option '--%.*s'", (int)nlen, s);
        if (defs[d].arg) {
            if (eq)
                v = eq + 1;
            else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                v = argv[++i];
            else
                return usage_error("--%s needs a value", defs[d].name);
        } else {
            if (eq)
                return usage_error("option '--%s' takes no value", defs[d].name);
            v = "";
        }
        if (a->nval[d] > 0 && !defs[d].multi)
            return usage_error("option '--%s' given twice", defs[d].name);
        if (a->nval[d] == MAX_MULTI)
            return usage_error("option '--%s' given too often", defs[d].name);
        a->val[d][a->nval[d]++] = v;
    }
    return 0;
}

static size_t opt_index(const args *a, const char *name)
{
    for (size_t d = 0; d < a->ndefs; d++)
        if (strcmp(a->defs[d].name, name) == 0)
            return d;
    abort(); /* a bug: the command asked for an option it does not define */
}

static const char *opt(const args *a, const char *name)
{
    size_t d = opt_index(a, name);
    return a->nval[d] ? a->val[d][0] : NULL;
}

static int flag(const args *a, const char *name)
{
    return a->nval[opt_index(a, name)] > 0;
}

static int need(const args *a, const char *name, const char **out)
{
    *out = opt(a, name);
    if (*out == NULL || **out == '\0')
        return usage_error("missing --%s", name);
    return 0;
}

/* --passphrase-env and --root-passphrase-env name an environment variable. A value that is
 * not a variable name is refused without being echoed: it may be a passphrase typed there. */
static int opt_env(const args *a, const char *name, const char *def, const char **out)
{
    const char *s = opt(a, name);
    *out = def;
    if (s == NULL)
        return 0;
    int ok = (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_';
    for (size_t i = 1; ok && s[i] != '\0'; i++)
        ok = (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
             (s[i] >= '0' && s[i] <= '9') || s[i] == '_';
    if (!ok)
        return usage_error(
            "--%s needs the NAME of an environment variable ([A-Za-z_][A-Za-z0-9_]*), "
            "not a passphrase (the value given is not shown)",
            name);
    *out = s;
    return 0;
}

static int opt_days(const args *a, const char *name, uint64_t def, uint64_t *out)
{
    const char *s = opt(a, name);
    *out = def;
    if (s == NULL)
        return 0;
    if (kurer_parse_u64(s, 36500, out) != 0 || *out == 0)
        return usage_error("--%s must be a number of days from 1 to 36500", name);
    return 0;
}

static int opt_level(const args *a, const char *name, kurer_level *out, int *given)
{
    const char *s = opt(a, name);
    int rc;
    *given = s != NULL;
    if (s == NULL)
        return 0;
    rc = kurer_level_parse(s, out);
    if (rc == KURER_ECLEARANCE)
        return refuse(rc, "--%s %s: the system is not accredited above CONFIDENTIAL", name, s);
    if (rc != 0)
        return usage_error("--%s: unknown level '%s' (UNCLASSIFIED, RESTRICTED or CONFIDENTIAL)",
                           name, s);
    return 0;
}

/* ------------------------------------------------------------------------ passphrases */

typedef struct secret {
    char *p; /* guarded memory, PASS_MAX + 1 bytes */
    size_t n;
} secret;

static void secret_free(secret *s)
{
    if (s->p != NULL) {
        kurer_memzero(s->p, PASS_MAX + 1);
        kurer_secure_free(s->p);
    }
    s->p = NULL;
    s->n = 0;
}

/* The passphrase of the key described by what: from the environment variable envname, or
 * (when that is unset) from a no-echo prompt on the terminal, asked twice when confirm is set.
 * A new key (is_new) needs at least PASS_MIN_NEW characters. */
static int get_passphrase(const char *envname, const char *what, int is_new, secret *out)
{
    char why[700];
    char *again;
    int rc;
    out->n = 0;
    out->p = kurer_secure_alloc(PASS_MAX + 1);
    again = kurer_secure_alloc(PASS_MAX + 1);
    if (out->p == NULL || again == NULL) {
        kurer_secure_free(again);
        secret_free(out);
        return refuse(KURER_ENOMEM, "cannot allocate protected memory for a passphrase");
    }
    rc = kurer_passphrase_get(envname, what, is_new, out->p, again, &out->n, why, sizeof(why));
    kurer_secure_free(again); /* wiped by kurer_passphrase_get and again by the free */
    if (rc != 0) {
        secret_free(out);
        return refuse(rc, "%s", why);
    }
    return 0;
}

/* ------------------------------------------------------------------------ files */

static int join(char *out, const char *dir, const char *name)
{
    if (kurer_path_join(out, PATH_MAX_LEN, dir, name) != 0)
        return refuse(KURER_ELIMIT, "path too long: %s/%s", dir, name);
    return 0;
}

static int read_file(const char *path, size_t max, uint8_t **d, size_t *n)
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

/* The refusal for a file that could not be written. */
static int write_refused(const char *path, int rc)
{
    if (rc == KURER_EUNSUPPORTED)
        return refuse(rc,
                      "cannot write %s: its file system has no Unix permissions (FAT?); create "
                      "the directory on a local disk and copy it with cp -a",
                      path);
    return refuse(rc, "cannot write %s: %s", path, kurer_strerror(rc));
}

static int write_file(const char *path, const void *d, size_t n, unsigned mode, int overwrite)
{
    int rc = kurer_file_write(path, d, n, mode, overwrite);
    if (rc == KURER_EEXIST)
        return refuse(rc, "%s already exists (use --force to replace it)", path);
    if (rc != 0)
        return write_refused(path, rc);
    return 0;
}

/* hint says what --force would do. */
static int must_not_exist(const char *path, int force, const char *hint)
{
    if (!force && kurer_file_exists(path) == 0)
        return refuse(KURER_EEXIST, "%s already exists; %s", path, hint);
    return 0;
}

#define HINT_ROOT                                                                                  \
    "--force moves the existing key, certificate, log and serial state aside (to "                 \
    "NAME.replaced-TIME) and creates a new root with a new key in their place"
#define HINT_AUTHORITY                                                                             \
    "--force moves the existing key, certificate, list, log and serial state aside (to "           \
    "NAME.replaced-TIME) and creates a new authority with a new key in their place"

static kurer_buf g_replaced; /* JSON array items: files moved aside by --force */

/* --force on init: path (if it exists) is renamed to path.replaced-<UTC time> (mode and
 * content kept), never deleted. */
static int move_aside(const char *path, int64_t now)
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
    if ((g_replaced.len > 0 && kurer_buf_put_u8(&g_replaced, ',') != 0))
        g_out_failed = 1;
    json_escape(&g_replaced, to);
    return 0;
}

/* dir without trailing slashes (but "/" stays) into out. */
static int strip_slashes(char *out, const char *dir)
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
static int check_dir_usable(const char *dir)
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
static int check_out_path(const char *path)
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
static int check_name(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    if (strlen(name) > KURER_NAME_MAX)
        return refuse(KURER_ELIMIT, "--name is longer than %d bytes", KURER_NAME_MAX);
    while (*p) {
        size_t n = utf8_seq(p);
        if (n == 0)
            return refuse(KURER_EINVAL, "--name is not valid UTF-8 text");
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            return refuse(KURER_EINVAL, "--name contains a control character");
        p += n;
    }
    return 0;
}

/* Creates dir (mode 0700) and its missing parents, or accepts an existing directory. */
static int make_dir(const char *dir)
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

/* ------------------------------------------------------------------------ locking */

/* Every command that reads a root or authority directory and then writes it holds the
 * directory's lock (DIR/.lock, an empty file, mode 0600; flock) from before the first read to
 * after the last write, so that two runs at once (two revokes, parallel issues) are serialized
 * instead of one silently undoing the other. A busy lock is waited for (Ctrl-C ends the wait). */
static int lock_dir(const char *dir, int *fdp)
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
static int lock_existing(const char *dir, int *fdp)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    return lock_dir(dir, fdp);
}

static void unlock_dir(int *fdp)
{
    if (*fdp >= 0)
        close(*fdp);
    *fdp = -1;
}

/* 1 if a and b are the same existing directory. */
static int same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

typedef enum file_kind {
    FK_UNKNOWN = 0,
    FK_CERT,
    FK_CHAIN,
    FK_CSR,
    FK_CRL,
    FK_KEY,
    FK_LOG,
    FK_STATE,
} file_kind;

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
static file_kind detect_kind(const uint8_t *d, size_t n)
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
static int bad_file(const char *path, const uint8_t *d, size_t n, file_kind want, int rc)
{
    file_kind k = detect_kind(d, n);
    if (k != FK_UNKNOWN && k != want)
        return refuse(KURER_EINVAL, "%s is %s, not %s", path, kind_name(k), kind_name(want));
    return refuse(rc ? rc : KURER_EMALFORMED, "%s is not a valid %s (damaged or truncated?): %s",
                  path, kind_name(want) + (kind_name(want)[1] == ' ' ? 2 : 3),
                  kurer_strerror(rc ? rc : KURER_EMALFORMED));
}

static int load_cert(const char *path, kurer_cert *c)
{
    uint8_t *d;
    size_t n;
    int rc;
    if ((rc = read_file(path, KURER_CHAIN_BYTES_MAX, &d, &n)) != 0)
        return rc;
    if ((rc = kurer_cert_decode(d, n, c)) != 0)
        rc = bad_file(path, d, n, FK_CERT, rc);
    free(d);
    return rc;
}

/* A certificate chain file, or a single certificate (as a chain of one). */
static int load_chain_or_cert(const char *path, kurer_chain *ch, file_kind *kind)
{
    uint8_t *d;
    size_t n;
    int rc;
    memset(ch, 0, sizeof(*ch));
    if ((rc = read_file(path, KURER_CHAIN_BYTES_MAX, &d, &n)) != 0)
        return rc;
    if (kurer_chain_decode(d, n, ch) == 0) {
        *kind = FK_CHAIN;
    } else if ((rc = kurer_cert_decode(d, n, &ch->certs[0])) == 0) {
        ch->n = 1;
        *kind = FK_CERT;
    } else {
        rc = bad_file(path, d, n, FK_CHAIN, rc);
    }
    free(d);
    return rc;
}

static int load_crl(const char *path, kurer_crl *crl, uint8_t **raw, size_t *raw_len)
{
    uint8_t *d;
    size_t n;
    int rc;
    memset(crl, 0, sizeof(*crl));
    if ((rc = read_file(path, FILE_MAX, &d, &n)) != 0)
        return rc;
    if ((rc = kurer_crl_decode(d, n, crl)) != 0)
        rc = bad_file(path, d, n, FK_CRL, rc);
    if (rc == 0 && raw != NULL) {
        *raw = d;
        *raw_len = n;
    } else {
        free(d);
    }
    return rc;
}

static int validity_reason(const char *what, const kurer_cert *c, int rc)
{
    char t[32];
    if (rc == KURER_EEXPIRED)
        return refuse(rc, "%s expired on %s", what, fmt_time(t, sizeof(t), c->body.not_after));
    if (rc == KURER_ENOTYETVALID)
        return refuse(rc, "%s is not valid before %s", what,
                      fmt_time(t, sizeof(t), c->body.not_before));
    return refuse(rc, "%s: %s", what, kurer_strerror(rc));
}

/* ------------------------------------------------------------------------ issuers */

/* A root or authority directory, loaded and checked. */
typedef struct issuer {
    const char *dir;
    int is_root;
    kurer_cert cert; /* root.crt or authority.crt */
    kurer_cert root;
    kurer_issuelog log;
    kurer_buf log_img; /* the log file as it is (and will be) */
    kurer_serial_state st;
    kurer_signing_key key;
    char key_path[PATH_MAX_LEN], crt_path[PATH_MAX_LEN], log_path[PATH_MAX_LEN];
    char serial_path[PATH_MAX_LEN], crl_path[PATH_MAX_LEN], root_path[PATH_MAX_LEN];
} issuer;

static void issuer_release(issuer *is)
{
    kurer_issuelog_release(&is->log);
    kurer_buf_release(&is->log_img);
    kurer_signing_key_release(&is->key);
}

static int issuer_paths(issuer *is, const char *dir, int is_root)
{
    is->dir = dir;
    is->is_root = is_root;
    kurer_buf_init(&is->log_img, KURER_LOG_FILE_MAX);
    if (join(is->key_path, dir, is_root ? F_ROOT_KEY : F_AUTH_KEY) ||
        join(is->crt_path, dir, is_root ? F_ROOT_CRT : F_AUTH_CRT) ||
        join(is->log_path, dir, F_LOG) || join(is->serial_path, dir, F_SERIAL) ||
        join(is->crl_path, dir, F_CRL) || join(is->root_path, dir, F_ROOT_CRT))
        return g_err_code;
    return 0;
}

/* Loads and checks a directory's certificates, log and serial state (no private key). With
 * check_validity, the issuer must be inside its validity window now. */
static int issuer_load(issuer *is, const char *dir, int is_root, int check_validity, int64_t now)
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
static int issuer_open_key(issuer *is, const char *envname, secret *keep)
{
    secret pass;
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
        secret_free(&pass);
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

static int write_state(issuer *is, const kurer_serial_state *st)
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
static int reserve_serial(issuer *is, uint64_t *serial)
{
    kurer_serial_state st = is->st;
    if (st.next_serial == UINT64_MAX)
        return refuse(KURER_ELIMIT, "serial numbers exhausted");
    *serial = st.next_serial++;
    st.log_entries = is->log.n;
    return write_state(is, &st);
}

static int log_append(issuer *is, kurer_log_entry *e)
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

static void entry_for_cert(kurer_log_entry *e, const kurer_cert *c, int64_t now)
{
    memset(e, 0, sizeof(*e));
    e->kind = KURER_LOGK_ISSUE;
    e->time = now;
    e->serial = c->body.serial;
    e->role = c->body.role;
    memcpy(e->subject, c->body.subject, sizeof(e->subject));
    e->device_id = c->body.device_id;
    e->clearance = c->body.clearance;
    e->not_after = c->body.not_after;
    kurer_hash256(e->cert_fp, c->tbs, c->tbs_len);
    if (c->body.role == KURER_ROLE_DEVICE) {
        kurer_hash256(e->key_fp, c->body.identity_key, KURER_IDENTITY_KEY_LEN);
        kurer_hash256(e->noise_fp, c->body.noise_key, KURER_X25519_LEN);
    } else {
        kurer_key_id(c->body.signing_key, e->key_fp);
    }
}

/* ------------------------------------------------------------------------ root init */

static const char help_root_init[] =
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

static int cmd_root_init(int argc, char **argv)
{
    int lockfd = -1;
    static const optdef defs[] = {
        {"help", 0, 0},    {"json", 0, 0},    {"dir", 1, 0},  {"name", 1, 0},
        {"id", 1, 0},      {"ceiling", 1, 0}, {"days", 1, 0}, {"passphrase-env", 1, 0},
        {"kdf-min", 0, 0}, {"force", 0, 0}};
    args a;
    const char *dir, *name, *id, *envname;
    kurer_level ceiling = KURER_LEVEL_CONFIDENTIAL;
    int given, force, rc;
    uint64_t days;
    int64_t now = kurer_time_unix();
    kurer_cert_body body;
    kurer_cert cert;
    kurer_kdf_params kdf;
    kurer_signing_key key = {0};
    secret pass = {0};
    issuer is;
    kurer_log_entry e;
    kurer_buf crt;
    char fp[65], t[32];

    memset(&is, 0, sizeof(is));
    kurer_buf_init(&crt, KURER_CERT_MAX);
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_root_init, stdout);
        return RC_HELP;
    }
    g_json = flag(&a, "json");
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
    memset(&body, 0, sizeof(body));
    body.version = 1;
    body.serial = 1;
    body.role = KURER_ROLE_ROOT;
    snprintf(body.subject, sizeof(body.subject), "%s", id);
    snprintf(body.display_name, sizeof(body.display_name), "%s", name);
    body.clearance = ceiling;
    body.not_before = now - SKEW;
    body.not_after = now + (int64_t)days * DAY;
    if ((rc = get_passphrase(envname, "the new root key", 1, &pass)) != 0)
        goto out;
    if ((rc = kurer_signing_key_generate(&key)) != 0) {
        rc = refuse(rc, "cannot generate a key: %s", kurer_strerror(rc));
        goto out;
    }
    memcpy(body.signing_key, key.pk, 32);
    if ((rc = kurer_cert_sign(&body, &key, &cert)) != 0) {
        rc = refuse(rc, "cannot make the root certificate (is --name valid UTF-8 text?): %s",
                    kurer_strerror(rc));
        goto out;
    }
    if ((rc = kurer_cert_encode(&cert, &crt)) != 0) {
        rc = refuse(rc, "cannot encode the root certificate: %s", kurer_strerror(rc));
        goto out;
    }
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
    secret_free(&pass);
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
    entry_for_cert(&e, &cert, now);
    if ((rc = write_file(is.crt_path, crt.data, crt.len, 0644, 0)) != 0 ||
        (rc = log_append(&is, &e)) != 0)
        goto out;
    kurer_cert_fingerprint(&cert, fp);
    say("root \"%s\" (%s) created in %s\n", id, name, dir);
    say("  ceiling      %s (%s)\n", kurer_level_name((int)ceiling),
        kurer_level_name_da((int)ceiling));
    say("  valid until  %s\n", fmt_time(t, sizeof(t), cert.body.not_after));
    say("  fingerprint  %s\n", fp);
    say("Keep %s offline and back it up; distribute %s.\n", is.key_path, is.crt_path);
    jstr("dir", dir);
    jstr("id", id);
    jstr("ceiling", kurer_level_name((int)ceiling));
    jint("not_after", cert.body.not_after);
    jstr("fingerprint", fp);
    jstr("certificate", is.crt_path);
    jstr("key", is.key_path);
out:
    secret_free(&pass);
    kurer_signing_key_release(&key);
    kurer_buf_release(&crt);
    issuer_release(&is);
    unlock_dir(&lockfd);
    return rc;
}

/* ------------------------------------------------------------------------ authority init */

static const char help_authority_init[] =
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

static int crl_image(kurer_crl *crl, const issuer *is, kurer_buf *out)
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
static int current_list(const issuer *is, kurer_crl *old)
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
static int write_list(const issuer *is, kurer_crl *neu)
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
static int next_list(const kurer_crl *old, uint64_t serial, kurer_revocation_reason reason,
                     int64_t now, uint64_t days, kurer_crl *neu)
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

static int cmd_authority_init(int argc, char **argv)
{
    int rootlock = -1, authlock = -1;
    secret root_pass = {0};
    static const optdef defs[] = {{"help", 0, 0},
                                  {"json", 0, 0},
                                  {"root", 1, 0},
                                  {"dir", 1, 0},
                                  {"id", 1, 0},
                                  {"name", 1, 0},
                                  {"clearance", 1, 0},
                                  {"days", 1, 0},
                                  {"crl-days", 1, 0},
                                  {"passphrase-env", 1, 0},
                                  {"root-passphrase-env", 1, 0},
                                  {"kdf-min", 0, 0},
                                  {"force", 0, 0}};
    args a;
    const char *rootdir, *dir, *id, *name, *envname, *rootenv;
    kurer_level clearance = KURER_LEVEL_CONFIDENTIAL;
    int given, force, rc;
    uint64_t days, crl_days;
    int64_t now = kurer_time_unix();
    issuer root, auth;
    kurer_cert_body body;
    kurer_cert cert;
    kurer_crl crl;
    kurer_kdf_params kdf;
    secret pass = {0};
    kurer_buf crt, crl_img, root_img;
    kurer_log_entry e;
    kurer_serial_state st;
    char fp[65], t[32];
    int clamped = 0;

    memset(&root, 0, sizeof(root));
    memset(&auth, 0, sizeof(auth));
    memset(&crl, 0, sizeof(crl));
    kurer_buf_init(&crt, KURER_CERT_MAX);
    kurer_buf_init(&root_img, KURER_CERT_MAX);
    kurer_buf_init(&crl_img, KURER_CRL_BYTES_MAX);
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_authority_init, stdout);
        return RC_HELP;
    }
    g_json = flag(&a, "json");
    if ((rc = need(&a, "root", &rootdir)) || (rc = need(&a, "dir", &dir)) ||
        (rc = need(&a, "id", &id)) || (rc = need(&a, "name", &name)) ||
        (rc = opt_days(&a, "days", 1095, &days)) ||
        (rc = opt_days(&a, "crl-days", 30, &crl_days)) ||
        (rc = opt_level(&a, "clearance", &clearance, &given)))
        goto out;
    if ((rc = opt_env(&a, "passphrase-env", DEFAULT_PASS, &envname)) != 0 ||
        (rc = opt_env(&a, "root-passphrase-env", DEFAULT_ROOT_PASS, &rootenv)) != 0)
        goto out;
    force = flag(&a, "force");
    kdf = flag(&a, "kdf-min") ? kurer_kdf_minimum() : kurer_kdf_default();
    if (kurer_authority_id_check(id) != 0) {
        rc = refuse(KURER_ESUBJECT, "invalid authority id '%s' (1-63 of a-z 0-9 - .)", id);
        goto out;
    }
    if ((rc = check_name(name)) != 0 || (rc = check_dir_usable(dir)) != 0)
        goto out;
    if (same_dir(rootdir, dir)) {
        rc = refuse(KURER_EINVAL, "--dir %s is the root's directory: give the authority its own",
                    dir);
        goto out;
    }
    /* The root's directory first (its serial and log change too), then the authority's. */
    if ((rc = lock_existing(rootdir, &rootlock)) != 0 ||
        (rc = issuer_load(&root, rootdir, 1, 1, now)) != 0)
        goto out;
    if (!given)
        clearance = root.cert.body.clearance;
    if (clearance > root.cert.body.clearance) {
        rc = refuse(KURER_ECLEARANCE, "clearance %s is above the root's ceiling %s",
                    kurer_level_name((int)clearance),
                    kurer_level_name((int)root.cert.body.clearance));
        goto out;
    }
    if ((rc = issuer_paths(&auth, dir, 0)) != 0 || (rc = lock_existing(dir, &authlock)) != 0 ||
        (rc = auth_files_absent(&auth, force)) != 0)
        goto out;
    if ((rc = issuer_open_key(&root, rootenv, &root_pass)) != 0)
        goto out;
    if ((rc = get_passphrase(envname, "the new authority key", 1, &pass)) != 0)
        goto out;
    /* Whoever runs the authority must never need the root's passphrase. */
    if (pass.n == root_pass.n && kurer_ct_equal(pass.p, root_pass.p, pass.n)) {
        rc = refuse(KURER_EPASSPHRASE,
                    "the authority key needs its own passphrase, not the root key's: its "
                    "administrators must never learn the root passphrase");
        goto out;
    }
    secret_free(&root_pass);
    if ((rc = kurer_signing_key_generate(&auth.key)) != 0) {
        rc = refuse(rc, "cannot generate a key: %s", kurer_strerror(rc));
        goto out;
    }
    memset(&body, 0, sizeof(body));
    body.version = 1;
    body.serial = root.st.next_serial;
    body.role = KURER_ROLE_AUTHORITY;
    snprintf(body.subject, sizeof(body.subject), "%s", id);
    snprintf(body.display_name, sizeof(body.display_name), "%s", name);
    body.clearance = clearance;
    body.not_before = now - SKEW;
    body.not_after = now + (int64_t)days * DAY;
    if (body.not_after > root.cert.body.not_after) {
        body.not_after = root.cert.body.not_after;
        clamped = 1;
    }
    memcpy(body.signing_key, auth.key.pk, 32);
    if ((rc = kurer_cert_sign(&body, &root.key, &cert)) != 0 ||
        (rc = kurer_cert_encode(&cert, &crt)) != 0 ||
        (rc = kurer_cert_encode(&root.cert, &root_img)) != 0) {
        rc = refuse(rc, "cannot make the authority certificate (is --name valid UTF-8 text?): %s",
                    kurer_strerror(rc));
        goto out;
    }
    if ((rc = kurer_authority_check(&cert, &root.cert, now)) != 0) {
        rc = refuse(rc, "the new certificate does not verify: %s", kurer_strerror(rc));
        goto out;
    }
    auth.cert = cert;
    auth.root = root.cert;
    crl.version = 1;
    crl.issued_at = now;
    crl.next_update = now + (int64_t)crl_days * DAY;
    if ((rc = crl_image(&crl, &auth, &crl_img)) != 0)
        goto out;
    if ((rc = kurer_issuelog_init(&auth.log, auth.key.pk, &auth.log_img)) != 0) {
        rc = refuse(rc, "cannot start the issuance log");
        goto out;
    }

    /* Everything is checked: now write. A directory that did not exist is locked as soon as
     * it does, and checked again under the lock. Then the root's serial, so it is never
     * reused. */
    if ((rc = make_dir(dir)) != 0)
        goto out;
    if (authlock < 0 &&
        ((rc = lock_dir(dir, &authlock)) != 0 || (rc = auth_files_absent(&auth, force)) != 0))
        goto out;
    {
        uint64_t serial;
        if ((rc = reserve_serial(&root, &serial)) != 0)
            goto out;
    }
    if (force &&
        ((rc = move_aside(auth.key_path, now)) != 0 || (rc = move_aside(auth.crt_path, now)) ||
         (rc = move_aside(auth.crl_path, now)) || (rc = move_aside(auth.log_path, now)) ||
         (rc = move_aside(auth.serial_path, now)) || (rc = move_aside(auth.root_path, now))))
        goto out;
    rc = kurer_signing_key_save(&auth.key, auth.key_path, pass.p, pass.n, &kdf, 0);
    secret_free(&pass);
    if (rc != 0) {
        rc = write_refused(auth.key_path, rc);
        goto out;
    }
    st.next_serial = 1;
    st.log_entries = 0;
    if ((rc = write_file(auth.crt_path, crt.data, crt.len, 0644, 0)) != 0 ||
        (rc = write_file(auth.root_path, root_img.data, root_img.len, 0644, 1)) != 0 ||
        (rc = write_file(auth.crl_path, crl_img.data, crl_img.len, 0644, 0)) != 0 ||
        (rc = write_file(auth.log_path, auth.log_img.data, auth.log_img.len, 0600, 0)) != 0 ||
        (rc = write_state(&auth, &st)) != 0)
        goto out;
    entry_for_cert(&e, &cert, now);
    if ((rc = log_append(&root, &e)) != 0)
        goto out;
    kurer_cert_fingerprint(&cert, fp);
    say("authority %s created in %s\n", id, dir);
    say("  serial       %llu (issued by root \"%s\")\n", (unsigned long long)cert.body.serial,
        root.cert.body.subject);
    say("  clearance    %s (%s)\n", kurer_level_name((int)clearance),
        kurer_level_name_da((int)clearance));
    say("  valid until  %s%s\n", fmt_time(t, sizeof(t), cert.body.not_after),
        clamped ? " (the root's expiry)" : "");
    say("  fingerprint  %s\n", fp);
    say("  revocation list version 1 in %s\n", auth.crl_path);
    jstr("dir", dir);
    jstr("id", id);
    ju64("serial", cert.body.serial);
    jstr("clearance", kurer_level_name((int)clearance));
    jint("not_after", cert.body.not_after);
    jbool("clamped_to_root", clamped);
    jstr("fingerprint", fp);
    jstr("certificate", auth.crt_path);
    jstr("crl", auth.crl_path);
out:
    secret_free(&pass);
    secret_free(&root_pass);
    kurer_crl_release(&crl);
    kurer_buf_release(&crt);
    kurer_buf_release(&root_img);
    kurer_buf_release(&crl_img);
    issuer_release(&root);
    issuer_release(&auth);
    unlock_dir(&authlock);
    unlock_dir(&rootlock);
    return rc;
}

/* ------------------------------------------------------------------------ issue */

static const char help_issue[] =
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

static int key_reuse_check(const issuer *is, const kurer_log_entry *e)
{
    for (size_t i = 0; i < is->log.n; i++) {
        const kurer_log_entry *p = &is->log.entries[i];
        int same_device = strcmp(p->subject, e->subject) == 0 && p->device_id == e->device_id;
        /* Keys of a revoked certificate are never certified again, for that very device too
         * (a lost device's or a compromised key's holder is not the user), except after
         * "superseded": a replaced certificate whose keys are still the device's own. */
        if (p->kind == KURER_LOGK_REVOKE && p->role == KURER_ROLE_DEVICE &&
            p->reason != KURER_REASON_SUPERSEDED &&
            (kurer_ct_equal(p->key_fp, e->key_fp, 32) ||
             kurer_ct_equal(p->noise_fp, e->noise_fp, 32)))
            return refuse(KURER_EREVOKED,
                          "the request's keys are those of serial %llu (%s device %u), revoked "
                          "(%s): the device must make new keys",
                          (unsigned long long)p->serial, p->subject, p->device_id,
                          kurer_reason_name((int)p->reason));
        if (p->kind != KURER_LOGK_ISSUE || p->role != KURER_ROLE_DEVICE || same_device)
            continue;
        if (kurer_ct_equal(p->key_fp, e->key_fp, 32) ||
            kurer_ct_equal(p->noise_fp, e->noise_fp, 32))
            return refuse(KURER_EDUPLICATE,
                          "the request's keys are already certified for %s device %u (serial "
                          "%llu): devices never share keys",
                          p->subject, p->device_id, (unsigned long long)p->serial);
    }
    return 0;
}

static int load_csr(const char *path, kurer_csr *csr)
{
    uint8_t *d;
    size_t n;
    int rc;
    if ((rc = read_file(path, KURER_CHAIN_BYTES_MAX, &d, &n)) != 0)
        return rc;
    if ((rc = kurer_csr_decode(d, n, csr)) != 0)
        rc = bad_file(path, d, n, FK_CSR, rc);
    free(d);
    return rc;
}

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

static int cmd_issue(int argc, char **argv)
{
    int lockfd = -1;
    static const optdef defs[] = {
        {"help", 0, 0}, {"json", 0, 0},      {"authority", 1, 0}, {"csr", 1, 0},
        {"out", 1, 0},  {"clearance", 1, 0}, {"days", 1, 0},      {"passphrase-env", 1, 0},
        {"force", 0, 0}};
    args a;
    const char *dir, *csr_path, *out_path, *envname, *dom;
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
    uint8_t low[32];
    char fp[65], t[32];

    memset(&is, 0, sizeof(is));
    kurer_buf_init(&img, KURER_CHAIN_BYTES_MAX);
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_issue, stdout);
        return RC_HELP;
    }
    g_json = flag(&a, "json");
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
    if ((rc = kurer_csr_verify(&csr)) != 0) {
        rc = refuse(rc == KURER_EBADKEY ? rc : KURER_EBADSIG,
                    "%s is not signed by the identity key it names: %s", csr_path,
                    kurer_strerror(rc));
        goto out;
    }
    dom = kurer_user_authority(csr.body.subject);
    if (dom == NULL || strcmp(dom, is.cert.body.subject) != 0) {
        rc = refuse(KURER_ESUBJECT, "%s asks for %s, who is not a user of authority %s", csr_path,
                    csr.body.subject, is.cert.body.subject);
        goto out;
    }
    if (csr.body.created_at > now + SKEW) {
        rc = refuse(KURER_ENOTYETVALID, "%s is dated in the future (%s)", csr_path,
                    fmt_time(t, sizeof(t), csr.body.created_at));
        goto out;
    }
    /* The Noise key must be a usable X25519 key of its own, not the identity key again. */
    memset(low, 0, sizeof(low));
    if (kurer_ct_is_zero(csr.body.noise_key, 32) ||
        kurer_ct_equal(csr.body.noise_key, csr.body.identity_key + 1, 32)) {
        rc = refuse(KURER_EBADKEY, "%s: the Noise key is missing or equals the identity key",
                    csr_path);
        goto out;
    }
    if (!given)
        clearance = is.cert.body.clearance;
    if (clearance > is.cert.body.clearance) {
        rc =
            refuse(KURER_ECLEARANCE, "clearance %s is above the authority's %s",
                   kurer_level_name((int)clearance), kurer_level_name((int)is.cert.body.clearance));
        goto out;
    }
    if ((rc = check_out_path(out_path)) != 0 || (rc = out_not_own_file(out_path, &is)) != 0 ||
        (rc = must_not_exist(out_path, force, "--force replaces it")) != 0)
        goto out;

    memset(&body, 0, sizeof(body));
    body.version = 1;
    body.serial = is.st.next_serial;
    body.role = KURER_ROLE_DEVICE;
    memcpy(body.subject, csr.body.subject, sizeof(body.subject));
    memcpy(body.display_name, csr.body.display_name, sizeof(body.display_name));
    body.device_id = csr.body.device_id;
    body.clearance = clearance;
    body.not_before = now - SKEW;
    body.not_after = now + (int64_t)days * DAY;
    if (body.not_after > is.cert.body.not_after) {
        body.not_after = is.cert.body.not_after;
        clamped = 1;
    }
    memcpy(body.identity_key, csr.body.identity_key, sizeof(body.identity_key));
    memcpy(body.noise_key, csr.body.noise_key, sizeof(body.noise_key));
    {
        kurer_cert probe;
        memset(&probe, 0, sizeof(probe));
        probe.body = body;
        entry_for_cert(&e, &probe, now);
        if ((rc = key_reuse_check(&is, &e)) != 0)
            goto out;
    }
    if ((rc = issuer_open_key(&is, envname, NULL)) != 0)
        goto out;

    /* Everything is checked: reserve the serial (synced) before the certificate exists. */
    if ((rc = reserve_serial(&is, &serial)) != 0)
        goto out;
    body.serial = serial;
    memset(&chain, 0, sizeof(chain));
    if ((rc = kurer_cert_sign(&body, &is.key, &chain.certs[0])) != 0) {
        rc = refuse(rc, "cannot sign the certificate: %s", kurer_strerror(rc));
        goto out;
    }
    chain.certs[1] = is.cert;
    chain.n = 2;
    if ((rc = kurer_device_check(&chain.certs[0], &is.cert, now)) != 0 ||
        (rc = kurer_chain_encode(&chain, &img)) != 0) {
        rc = refuse(rc, "the new certificate does not verify: %s", kurer_strerror(rc));
        goto out;
    }
    if ((rc = write_file(out_path, img.data, img.len, 0644, force)) != 0)
        goto out;
    entry_for_cert(&e, &chain.certs[0], now);
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

/* ------------------------------------------------------------------------ revoke */

static const char help_revoke[] =
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

/* Accepts the canonical names ("device-lost") and the proto spelling ("DEVICE_LOST"). */
static int parse_reason(const char *s, kurer_revocation_reason *out)
{
    char norm[32];
    size_t i;
    for (i = 0; s[i] != '\0' && i + 1 < sizeof(norm); i++)
        norm[i] = s[i] == '_' ? '-' : (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    if (s[i] != '\0')
        return KURER_EINVAL;
    norm[i] = '\0';
    return kurer_reason_parse(norm, out);
}

static int cmd_revoke(int argc, char **argv)
{
    int lockfd = -1;
    static const optdef defs[] = {{"help", 0, 0},     {"json", 0, 0},          {"authority", 1, 0},
                                  {"cert", 1, 0},     {"serial", 1, 0},        {"reason", 1, 0},
                                  {"crl-days", 1, 0}, {"passphrase-env", 1, 0}};
    args a;
    const char *dir, *cert_path, *serial_s, *reason_s, *envname;
    kurer_revocation_reason reason = KURER_REASON_UNSPECIFIED;
    uint64_t serial = 0, crl_days;
    int64_t now = kurer_time_unix();
    issuer is;
    kurer_crl old, neu;
    kurer_log_entry e;
    const kurer_log_entry *issued;
    int rc;
    char t[32];

    memset(&is, 0, sizeof(is));
    memset(&old, 0, sizeof(old));
    memset(&neu, 0, sizeof(neu));
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_revoke, stdout);
        return RC_HELP;
    }
    g_json = flag(&a, "json");
    cert_path = opt(&a, "cert");
    serial_s = opt(&a, "serial");
    reason_s = opt(&a, "reason");
    if ((rc = opt_env(&a, "passphrase-env", DEFAULT_PASS, &envname)) != 0)
        goto out;
    if ((rc = need(&a, "authority", &dir)) || (rc = opt_days(&a, "crl-days", 30, &crl_days)))
        goto out;
    if ((cert_path == NULL) == (serial_s == NULL)) {
        rc = usage_error("give exactly one of --cert and --serial");
        goto out;
    }
    if (serial_s != NULL && (kurer_parse_u64(serial_s, UINT64_MAX, &serial) != 0 || serial == 0)) {
        rc = usage_error("--serial must be a positive number");
        goto out;
    }
    if (reason_s != NULL && parse_reason(reason_s, &reason) != 0) {
        rc = usage_error("unknown --reason '%s' (unspecified, key-compromise, device-lost, "
                         "superseded or left-authority)",
                         reason_s);
        goto out;
    }
    if ((rc = lock_existing(dir, &lockfd)) != 0 || (rc = issuer_load(&is, dir, 0, 0, now)) != 0)
        goto out;
    if (cert_path != NULL) {
        kurer_chain ch;
        file_kind k;
        uint8_t id[KURER_KEY_ID_LEN];
        if ((rc = load_chain_or_cert(cert_path, &ch, &k)) != 0)
            goto out;
        kurer_cert_key_id(&is.cert, id);
        if (ch.certs[0].body.role != KURER_ROLE_DEVICE) {
            rc = refuse(KURER_EROLE,
                        "%s holds %s certificate; revoke devices here (an authority is "
                        "revoked by its root: kurer-admin root revoke --root ROOTDIR)",
                        cert_path, role_a((int)ch.certs[0].body.role));
            goto out;
        }
        if (!kurer_ct_equal(id, ch.certs[0].body.issuer_key_id, KURER_KEY_ID_LEN) ||
            kurer_device_check(&ch.certs[0], &is.cert, ch.certs[0].body.not_before) != 0) {
            rc = refuse(KURER_EISSUER, "%s was not issued by the authority in %s", cert_path, dir);
            goto out;
        }
        serial = ch.certs[0].body.serial;
    }
    issued = kurer_issuelog_find_serial(&is.log, serial);
    if (issued == NULL) {
        rc = refuse(KURER_ENOTFOUND, "serial %llu was never issued by the authority in %s",
                    (unsigned long long)serial, dir);
        goto out;
    }
    if ((rc = current_list(&is, &old)) != 0)
        goto out;
    if (kurer_crl_contains(&old, serial)) {
        rc = refuse(KURER_EDUPLICATE, "serial %llu is already revoked (list version %llu)",
                    (unsigned long long)serial, (unsigned long long)old.version);
        goto out;
    }
    if ((rc = next_list(&old, serial, reason, now, crl_days, &neu)) != 0 ||
        (rc = issuer_open_key(&is, envname, NULL)) != 0 || (rc = write_list(&is, &neu)) != 0)
        goto out;
    memset(&e, 0, sizeof(e));
    e.kind = KURER_LOGK_REVOKE;
    e.time = now;
    e.serial = serial;
    e.role = issued->role;
    memcpy(e.subject, issued->subject, sizeof(e.subject));
    e.device_id = issued->device_id;
    e.clearance = issued->clearance;
    e.not_after = issued->not_after;
    memcpy(e.key_fp, issued->key_fp, 32);
    memcpy(e.noise_fp, issued->noise_fp, 32);
    e.reason = reason;
    if ((rc = log_append(&is, &e)) != 0)
        goto out;
    say("revoked serial %llu (%s device %u), reason %s\n", (unsigned long long)serial, e.subject,
        e.device_id, kurer_reason_name((int)reason));
    say("  revocation list version %llu in %s, next update %s\n", (unsigned long long)neu.version,
        is.crl_path, fmt_time(t, sizeof(t), neu.next_update));
    say("Publish the new list for the revocation to take effect.\n");
    ju64("serial", serial);
    jstr("subject", e.subject);
    jint("device_id", e.device_id);
    jstr("reason", kurer_reason_name((int)reason));
    ju64("crl_version", neu.version);
    jstr("crl", is.crl_path);
out:
    kurer_crl_release(&old);
    kurer_crl_release(&neu);
    issuer_release(&is);
    unlock_dir(&lockfd);
    return rc;
}

/* ------------------------------------------------------------------------ root revoke */

#define ROOT_CRL_DAYS 180 /* a root's list: renewed on the offline machine twice a year */

static const char help_root_revoke[] =
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

static int cmd_root_revoke(int argc, char **argv)
{
    int lockfd = -1;
    static const optdef defs[] = {
        {"help", 0, 0},   {"json", 0, 0},   {"root", 1, 0},     {"cert", 1, 0},
        {"serial", 1, 0}, {"reason", 1, 0}, {"crl-days", 1, 0}, {"root-passphrase-env", 1, 0}};
    args a;
    const char *dir, *cert_path, *serial_s, *reason_s, *envname;
    kurer_revocation_reason reason = KURER_REASON_UNSPECIFIED;
    uint64_t serial = 0, crl_days;
    int64_t now = kurer_time_unix();
    issuer is;
    kurer_crl old, neu;
    kurer_log_entry e;
    const kurer_log_entry *issued;
    int rc;
    char t[32];

    memset(&is, 0, sizeof(is));
    memset(&old, 0, sizeof(old));
    memset(&neu, 0, sizeof(neu));
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_root_revoke, stdout);
        return RC_HELP;
    }
    g_json = flag(&a, "json");
    cert_path = opt(&a, "cert");
    serial_s = opt(&a, "serial");
    reason_s = opt(&a, "reason");
    if ((rc = opt_env(&a, "root-passphrase-env", DEFAULT_ROOT_PASS, &envname)) != 0 ||
        (rc = need(&a, "root", &dir)) != 0 ||
        (rc = opt_days(&a, "crl-days", ROOT_CRL_DAYS, &crl_days)) != 0)
        goto out;
    if ((cert_path == NULL) == (serial_s == NULL)) {
        rc = usage_error("give exactly one of --cert and --serial");
        goto out;
    }
    if (serial_s != NULL && (kurer_parse_u64(serial_s, UINT64_MAX, &serial) != 0 || serial == 0)) {
        rc = usage_error("--serial must be a positive number");
        goto out;
    }
    /* A device's reasons say nothing about an authority. */
    if (reason_s != NULL &&
        (parse_reason(reason_s, &reason) != 0 || reason == KURER_REASON_DEVICE_LOST ||
         reason == KURER_REASON_LEFT_AUTHORITY)) {
        rc = usage_error("unknown --reason '%s' for an authority (unspecified, key-compromise or "
                         "superseded)",
                         reason_s);
        goto out;
    }
    if ((rc = lock_existing(dir, &lockfd)) != 0 || (rc = issuer_load(&is, dir, 1, 0, now)) != 0 ||
        (rc = authority_serial(&is, cert_path, &serial)) != 0)
        goto out;
    issued = kurer_issuelog_find_serial(&is.log, serial);
    if (issued == NULL) {
        rc = refuse(KURER_ENOTFOUND, "serial %llu was never issued by the root in %s",
                    (unsigned long long)serial, dir);
        goto out;
    }
    if (issued->role != KURER_ROLE_AUTHORITY) {
        rc = refuse(KURER_EROLE,
                    "serial %llu is the root's own certificate: a root is replaced, "
                    "not revoked",
                    (unsigned long long)serial);
        goto out;
    }
    if ((rc = current_list(&is, &old)) != 0)
        goto out;
    if (kurer_crl_contains(&old, serial)) {
        rc = refuse(KURER_EDUPLICATE,
                    "authority %s (serial %llu) is already revoked (list version %llu)",
                    issued->subject, (unsigned long long)serial, (unsigned long long)old.version);
        goto out;
    }
    if ((rc = next_list(&old, serial, reason, now, crl_days, &neu)) != 0 ||
        (rc = issuer_open_key(&is, envname, NULL)) != 0 || (rc = write_list(&is, &neu)) != 0)
        goto out;
    memset(&e, 0, sizeof(e));
    e.kind = KURER_LOGK_REVOKE;
    e.time = now;
    e.serial = serial;
    e.role = issued->role;
    memcpy(e.subject, issued->subject, sizeof(e.subject));
    e.clearance = issued->clearance;
    e.not_after = issued->not_after;
    memcpy(e.key_fp, issued->key_fp, 32);
    e.reason = reason;
    if ((rc = log_append(&is, &e)) != 0)
        goto out;
    say("revoked authority %s (serial %llu), reason %s\n", e.subject, (unsigned long long)serial,
        kurer_reason_name((int)reason));
    say("  revocation list version %llu in %s, next update %s\n", (unsigned long long)neu.version,
        is.crl_path, fmt_time(t, sizeof(t), neu.next_update));
    say("Publish the new list (kurer-admin publish --crl %s ...): relays and clients then refuse\n"
        "%s and every device it issued.\n",
        is.crl_path, e.subject);
    ju64("serial", serial);
    jstr("subject", e.subject);
    jstr("reason", kurer_reason_name((int)reason));
    ju64("crl_version", neu.version);
    jint("next_update", neu.next_update);
    jstr("crl", is.crl_path);
out:
    kurer_crl_release(&old);
    kurer_crl_release(&neu);
    issuer_release(&is);
    unlock_dir(&lockfd);
    return rc;
}

/* ------------------------------------------------------------------------ crl renew */

static const char help_crl_renew[] =
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

static int cmd_crl_renew(int argc, char **argv)
{
    int lockfd = -1;
    static const optdef defs[] = {
        {"help", 0, 0},     {"json", 0, 0},           {"authority", 1, 0},          {"root", 1, 0},
        {"crl-days", 1, 0}, {"passphrase-env", 1, 0}, {"root-passphrase-env", 1, 0}};
    args a;
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
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_crl_renew, stdout);
        return RC_HELP;
    }
    g_json = flag(&a, "json");
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

/* ------------------------------------------------------------------------ verify */

static const char help_verify[] =
    "usage: kurer-admin verify --root ROOT.CRT [--crl FILE]... [--require-crl]\n"
    "                          [--crl-grace DAYS] [--json] FILE\n"
    "\n"
    "Verifies FILE against the pinned root certificate: a device chain (as written by issue),\n"
    "an authority certificate, the root certificate itself, or a revocation list. Revocation\n"
    "lists given with --crl are checked against the root and applied (the newest of each\n"
    "issuer wins): an authority's list revokes its devices, the root's list (ROOTDIR/crl)\n"
    "revokes authorities and so every device they issued. Exits 0 only if FILE is valid now,\n"
    "and says why not otherwise.\n"
    "\n"
    "A device chain verified without a list from its authority is still valid (exit 0), but\n"
    "the output says \"revocation NOT checked\" (JSON: \"revocation_checked\":false).\n"
    "\n"
    "A list past its next update is stale: revocations made since may be missing. Within the\n"
    "grace period the result is still valid, with a warning on stderr (\"revocation list of X\n"
    "is past its next update (DATE)\"; JSON: \"crl_stale\":true and \"warning\"); past it,\n"
    "whatever that list covers is refused (exit 1), as relays and clients refuse it.\n"
    "\n"
    "  --root ROOT.CRT   the pinned root certificate\n"
    "  --crl FILE        a revocation list to apply (repeatable)\n"
    "  --require-crl     refuse (exit 1) a device chain when no list from its authority is given\n"
    "  --crl-grace DAYS  days past a list's next update before it is refused (default 7, as\n"
    "                    relays and clients); 0 refuses at once; never: only warn\n"
    "  --json            print the result as one JSON object\n";

/* The list held in t from the issuer with key id, or NULL. */
static const kurer_crl *held_list(const kurer_trust *t, const uint8_t *id)
{
    for (size_t i = 0; i < kurer_trust_crl_count(t); i++)
        if (kurer_ct_equal(kurer_trust_crl(t, i)->issuer_key_id, id, KURER_KEY_ID_LEN))
            return kurer_trust_crl(t, i);
    return NULL;
}

/* "revocation list of fm.dk is past its next update (DATE)" (of the root: "of root ID"). */
static void stale_line(const kurer_crl *l, char *out, size_t n)
{
    char t[32];
    snprintf(out, n, "revocation list of %s%s is past its next update (%s)",
             l->issuer_cert.body.role == KURER_ROLE_ROOT ? "root " : "", l->issuer,
             fmt_time(t, sizeof(t), l->next_update));
}

/* For the lists a chain or authority depends on (may be NULL): a stale one inside the grace
 * is a warning (stderr, JSON "warning"); one past the grace is the refusal of what. */
static int check_fresh(const kurer_trust *t, const kurer_crl *const *lists, size_t n,
                       const char *what, int64_t now)
{
    char line[256], warn[600] = "";
    int64_t g = kurer_trust_crl_grace(t);
    for (size_t i = 0; i < n; i++) {
        int f;
        if (lists[i] == NULL || (f = kurer_trust_crl_freshness(t, lists[i], now)) == 0)
            continue;
        stale_line(lists[i], line, sizeof(line));
        if (f < 0)
            return refuse(f,
                          "%s: refused: %s and its grace of %lld %s is over: give a newer list "
                          "(--crl); relays and clients refuse it too",
                          what, line, (long long)(g / DAY),
                          plural((size_t)(g / DAY), "day", "days"));
        fprintf(stderr, "kurer-admin: warning: %s: %s\n", what, line);
        snprintf(warn + strlen(warn), sizeof(warn) - strlen(warn), "%s%s", warn[0] ? "; " : "",
                 line);
    }
    if (warn[0]) {
        jbool("crl_stale", 1);
        jstr("warning", warn);
    }
    return 0;
}

/* --crl-grace: days, or "never". */
static int opt_grace(const args *a, kurer_trust *t)
{
    const char *s = opt(a, "crl-grace");
    uint64_t days;
    if (s == NULL)
        return 0;
    if (strcmp(s, "never") == 0)
        return kurer_trust_set_crl_grace(t, KURER_TRUST_CRL_GRACE_NEVER);
    if (kurer_parse_u64(s, 36500, &days) != 0)
        return usage_error("--crl-grace must be a number of days from 0 to 36500, or never");
    return kurer_trust_set_crl_grace(t, (int64_t)days * DAY);
}

/* Why serial is on the list held from issuer key id: "reason R, revoked DATE, list version V". */
static int revoked_reason(const kurer_trust *t, const uint8_t *issuer_id, uint64_t serial,
                          char *out, size_t n)
{
    for (size_t i = 0; i < kurer_trust_crl_count(t); i++) {
        const kurer_crl *l = kurer_trust_crl(t, i);
        if (!kurer_ct_equal(l->issuer_key_id, issuer_id, KURER_KEY_ID_LEN))
            continue;
        for (size_t j = 0; j < l->n_revoked; j++)
            if (l->revoked[j].serial == serial) {
                char when[32];
                snprintf(out, n, "reason %s, revoked %s, list version %llu",
                         kurer_reason_name((int)l->revoked[j].reason),
                         fmt_time(when, sizeof(when), l->revoked[j].revoked_at),
                         (unsigned long long)l->version);
                return 0;
            }
    }
    snprintf(out, n, "on the revocation list");
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    static const optdef defs[] = {{"help", 0, 0}, {"json", 0, 0},        {"root", 1, 0},
                                  {"crl", 1, 1},  {"require-crl", 0, 0}, {"crl-grace", 1, 0}};
    args a;
    const char *root_path, *path;
    int64_t now = kurer_time_unix();
    kurer_trust *t = NULL;
    kurer_cert root;
    kurer_chain ch;
    uint8_t *d = NULL, root_id[KURER_KEY_ID_LEN];
    size_t n;
    int rc;
    char tmp[256], tn[32];

    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 1)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_verify, stdout);
        return RC_HELP;
    }
    g_json = flag(&a, "json");
    if ((rc = need(&a, "root", &root_path)) != 0)
        return rc;
    if (a.npos != 1)
        return usage_error("verify needs exactly one FILE");
    path = a.pos[0];
    jstr("file", path);
    if ((rc = load_cert(root_path, &root)) != 0)
        return rc;
    if ((rc = kurer_trust_new(&t)) != 0)
        return refuse(rc, "out of memory");
    if ((rc = opt_grace(&a, t)) != 0)
        goto out;
    kurer_cert_key_id(&root, root_id);
    if ((rc = kurer_trust_add_root(t, &root, now)) != 0) {
        rc = root.body.role == KURER_ROLE_ROOT && (rc == KURER_EEXPIRED || rc == KURER_ENOTYETVALID)
                 ? validity_reason(root_path, &root, rc)
                 : refuse(rc, "%s is not a valid root certificate: %s", root_path,
                          kurer_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < a.nval[opt_index(&a, "crl")]; i++) {
        const char *cp = a.val[opt_index(&a, "crl")][i];
        kurer_crl l;
        if ((rc = load_crl(cp, &l, &d, &n)) != 0)
            goto out;
        kurer_crl_release(&l);
        rc = kurer_trust_add_crl(t, d, n, NULL);
        free(d);
        d = NULL;
        if (rc == KURER_ESTALE)
            continue; /* a newer list of that authority is already held */
        if (rc != 0) {
            rc = refuse(rc, "revocation list %s: %s", cp, kurer_strerror(rc));
            goto out;
        }
    }
    if ((rc = read_file(path, FILE_MAX, &d, &n)) != 0)
        goto out;
    if (kurer_chain_decode(d, n, &ch) == 0 || kurer_cert_decode(d, n, &ch.certs[0]) == 0) {
        const kurer_cert *c = &ch.certs[0];
        if (ch.n == 0)
            ch.n = 1;
        if (c->body.role == KURER_ROLE_DEVICE) {
            kurer_verified v;
            if (ch.n == 1) {
                rc = refuse(KURER_EISSUER,
                            "%s: a device certificate alone cannot be verified; give the "
                            "chain written by issue",
                            path);
                goto out;
            }
            rc = kurer_trust_verify_chain(t, &ch, now, &v);
            if (rc == KURER_EREVOKED &&
                kurer_trust_is_revoked(t, root_id, ch.certs[1].body.serial)) {
                revoked_reason(t, root_id, ch.certs[1].body.serial, tmp, sizeof(tmp));
                rc = refuse(rc,
                            "%s: certificate revoked: its authority %s (serial %llu) is revoked "
                            "by the root (%s)",
                            path, ch.certs[1].body.subject,
                            (unsigned long long)ch.certs[1].body.serial, tmp);
                goto out;
            }
            if (rc == KURER_EREVOKED) {
                revoked_reason(t, c->body.issuer_key_id, c->body.serial, tmp, sizeof(tmp));
                rc = refuse(rc, "%s: certificate revoked: %s device %u, serial %llu (%s)", path,
                            c->body.subject, c->body.device_id, (unsigned long long)c->body.serial,
                            tmp);
                goto out;
            }
            if (rc == KURER_ECRLSTALE || rc == 0) {
                const kurer_crl *lists[2] = {held_list(t, root_id),
                                             held_list(t, c->body.issuer_key_id)};
                int frc = check_fresh(t, lists, 2, path, now);
                if (frc != 0 || rc != 0) {
                    rc = frc != 0 ? frc : refuse(rc, "%s: %s", path, kurer_strerror(rc));
                    goto out;
                }
            }
            if (rc == KURER_EEXPIRED || rc == KURER_ENOTYETVALID) {
                const kurer_cert *which = kurer_cert_check_validity(c, now) ? c : &ch.certs[1];
                snprintf(tmp, sizeof(tmp), "%s: %s certificate", path,
                         which == c ? "the device" : "its authority's");
                rc = validity_reason(tmp, which, rc);
                goto out;
            }
            if (rc != 0) {
                rc = refuse(rc, "%s: %s", path, kurer_strerror(rc));
                goto out;
            }
            {
                const kurer_crl *held = held_list(t, c->body.issuer_key_id);
                const kurer_crl *rl = held_list(t, root_id);
                char also[96] = "";
                if (rl != NULL) {
                    snprintf(also, sizeof(also),
                             "; its authority against the root's list version %llu",
                             (unsigned long long)rl->version);
                    ju64("root_crl_version", rl->version);
                }
                jbool("revocation_checked", held != NULL);
                if (held != NULL) {
                    ju64("crl_version", held->version);
                    say("%s: valid DEVICE certificate (revocation checked against %s list "
                        "version %llu%s)\n",
                        path, v.authority, (unsigned long long)held->version, also);
                } else if (flag(&a, "require-crl")) {
                    rc = refuse(KURER_ENOTFOUND,
                                "%s: revocation NOT checked: no list from %s given (--crl), and "
                                "--require-crl is set",
                                path, v.authority);
                    goto out;
                } else {
                    say("%s: valid DEVICE certificate (revocation NOT checked: no list from %s "
                        "given%s)\n",
                        path, v.authority, also);
                }
            }
            say("  user         %s device %u\n", v.user, v.device_id);
            say("  serial       %llu\n", (unsigned long long)v.serial);
            say("  clearance    %s (%s), ceiling %s\n", kurer_level_name((int)v.clearance),
                kurer_level_name_da((int)v.clearance), kurer_level_name((int)v.ceiling));
            say("  authority    %s\n", v.authority);
            say("  valid until  %s\n", fmt_time(tn, sizeof(tn), v.not_after));
            jstr("role", "DEVICE");
            jstr("subject", v.user);
            jint("device_id", v.device_id);
            ju64("serial", v.serial);
            jstr("clearance", kurer_level_name((int)v.clearance));
            jstr("authority", v.authority);
            jint("not_after", v.not_after);
        } else if (c->body.role == KURER_ROLE_AUTHORITY) {
            const kurer_crl *rl = held_list(t, root_id);
            rc = kurer_trust_verify_authority(t, c, now, NULL);
            if (rc == KURER_EREVOKED) {
                revoked_reason(t, root_id, c->body.serial, tmp, sizeof(tmp));
                rc = refuse(rc,
                            "%s: authority certificate revoked by the root: %s, serial %llu (%s)",
                            path, c->body.subject, (unsigned long long)c->body.serial, tmp);
                goto out;
            }
            if ((rc == KURER_ECRLSTALE || rc == 0) && (rc = check_fresh(t, &rl, 1, path, now)) != 0)
                goto out;
            if (rc != 0) {
                snprintf(tmp, sizeof(tmp), "%s: authority certificate", path);
                rc = validity_reason(tmp, c, rc);
                goto out;
            }
            jbool("revocation_checked", rl != NULL);
            if (rl != NULL)
                ju64("root_crl_version", rl->version);
            say("%s: valid AUTHORITY certificate for %s, clearance %s, until %s\n", path,
                c->body.subject, kurer_level_name((int)c->body.clearance),
                fmt_time(tn, sizeof(tn), c->body.not_after));
            jstr("role", "AUTHORITY");
            jstr("subject", c->body.subject);
            ju64("serial", c->body.serial);
            jstr("clearance", kurer_level_name((int)c->body.clearance));
            jint("not_after", c->body.not_after);
        } else {
            if (c->tbs_len != root.tbs_len || memcmp(c->tbs, root.tbs, root.tbs_len) != 0 ||
                !kurer_ct_equal(c->signature, root.signature, KURER_SIG_LEN)) {
                rc = refuse(KURER_EUNTRUSTED, "%s: a root certificate other than %s", path,
                            root_path);
                goto out;
            }
            say("%s: the pinned root %s, ceiling %s\n", path, c->body.subject,
                kurer_level_name((int)c->body.clearance));
            jstr("role", "ROOT");
            jstr("subject", c->body.subject);
        }
    } else {
        kurer_crl l;
        if (kurer_crl_decode(d, n, &l) != 0) {
            rc = bad_file(path, d, n, FK_CHAIN, KURER_EMALFORMED);
            goto out;
        }
        rc = kurer_crl_verify(&l, &root);
        if (rc == 0) {
            const kurer_crl *lp = &l;
            int is_root = l.issuer_cert.body.role == KURER_ROLE_ROOT;
            rc = check_fresh(t, &lp, 1, path, now);
            if (rc == 0 && is_root)
                say("%s: valid revocation list of root %s (authorities it revoked), version "
                    "%llu, %zu revoked\n",
                    path, l.issuer, (unsigned long long)l.version, l.n_revoked);
            else if (rc == 0)
                say("%s: valid revocation list of %s, version %llu, %zu revoked\n", path, l.issuer,
                    (unsigned long long)l.version, l.n_revoked);
            jstr("role", "REVOCATION_LIST");
            jstr("issuer", l.issuer);
            jstr("issuer_role", kurer_role_name((int)l.issuer_cert.body.role));
            ju64("version", l.version);
            ju64("revoked", l.n_revoked);
            jint("next_update", l.next_update);
        } else {
            rc = refuse(rc, "%s: revocation list does not verify: %s", path, kurer_strerror(rc));
        }
        kurer_crl_release(&l);
        if (rc != 0)
            goto out;
    }
    jbool("valid", 1);
out:
    if (rc != 0)
        jbool("valid", 0);
    free(d);
    kurer_trust_free(t);
    return rc;
}

/* ------------------------------------------------------------------------ show */

static const char help_show[] =
    "usage: kurer-admin show [--json] FILE\n"
    "\n"
    "Prints any certificate, certificate chain, certificate request, revocation list, sealed\n"
    "key file (public part only) or serial state file in readable form. Signatures are not\n"
    "checked (except a request's self-signature); use verify for that. A revocation list says\n"
    "whether its issuer is an authority (device serials) or the root (authority serials), and\n"
    "warns when it is past its next update (exit 0 all the same).\n";

static void show_cert(const kurer_cert *c, const char *indent, kurer_buf *j)
{
    char t1[32], t2[32], fp[65], h[2 * KURER_IDENTITY_KEY_LEN + 1];
    kurer_cert_fingerprint(c, fp);
    say("%srole         %s\n", indent, kurer_role_name((int)c->body.role));
    say("%ssubject      %s\n", indent, c->body.subject);
    say("%sname         %s\n", indent, c->body.display_name);
    say("%sserial       %llu\n", indent, (unsigned long long)c->body.serial);
    if (c->body.role == KURER_ROLE_DEVICE)
        say("%sdevice       %u\n", indent, c->body.device_id);
    say("%sclearance    %s (%s)\n", indent, kurer_level_name((int)c->body.clearance),
        kurer_level_name_da((int)c->body.clearance));
    say("%svalid        %s .. %s\n", indent, fmt_time(t1, sizeof(t1), c->body.not_before),
        fmt_time(t2, sizeof(t2), c->body.not_after));
    hex(h, c->body.issuer_key_id, KURER_KEY_ID_LEN);
    say("%sissuer key   %s\n", indent, h);
    if (c->body.role == KURER_ROLE_DEVICE) {
        hex(h, c->body.identity_key, KURER_IDENTITY_KEY_LEN);
        say("%sidentity key %s\n", indent, h);
        hex(h, c->body.noise_key, KURER_X25519_LEN);
        say("%snoise key    %s\n", indent, h);
    } else {
        hex(h, c->body.signing_key, KURER_ED25519_PK_LEN);
        say("%ssigning key  %s\n", indent, h);
    }
    say("%sfingerprint  %s\n", indent, fp);
    /* JSON object for this certificate */
    {
        kurer_buf save = g_fields;
        g_fields = *j;
        out_raw("{\"role\":", 8);
        json_escape(&g_fields, kurer_role_name((int)c->body.role));
        jstr("subject", c->body.subject);
        jstr("name", c->body.display_name);
        ju64("serial", c->body.serial);
        jint("device_id", c->body.device_id);
        jstr("clearance", kurer_level_name((int)c->body.clearance));
        jint("not_before", c->body.not_before);
        jint("not_after", c->body.not_after);
        hex(h, c->body.issuer_key_id, KURER_KEY_ID_LEN);
        jstr("issuer_key_id", h);
        if (c->body.role == KURER_ROLE_DEVICE) {
            hex(h, c->body.identity_key, KURER_IDENTITY_KEY_LEN);
            jstr("identity_key", h);
            hex(h, c->body.noise_key, KURER_X25519_LEN);
            jstr("noise_key", h);
        } else {
            hex(h, c->body.signing_key, KURER_ED25519_PK_LEN);
            jstr("signing_key", h);
        }
        jstr("fingerprint", fp);
        out_raw("}", 1);
        *j = g_fields;
        g_fields = save;
    }
}

static int cmd_show(int argc, char **argv)
{
    static const optdef defs[] = {{"help", 0, 0}, {"json", 0, 0}};
    args a;
    uint8_t *d = NULL;
    size_t n;
    int rc;
    file_kind k;
    kurer_buf j;
    char t1[32], t2[32], h[2 * KURER_IDENTITY_KEY_LEN + 1];

    kurer_buf_init(&j, KURER_BUF_HARD_MAX);
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 1)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_show, stdout);
        return RC_HELP;
    }
    g_json = flag(&a, "json");
    if (a.npos != 1)
        return usage_error("show needs exactly one FILE");
    if ((rc = read_file(a.pos[0], FILE_MAX, &d, &n)) != 0)
        return rc;
    k = detect_kind(d, n);
    jstr("file", a.pos[0]);
    switch (k) {
    case FK_CERT: {
        kurer_cert c;
        if (kurer_cert_decode(d, n, &c) != 0)
            break;
        say("%s: certificate\n", a.pos[0]);
        show_cert(&c, "  ", &j);
        jstr("kind", "certificate");
        jraw("certificate", &j);
        break;
    }
    case FK_CHAIN: {
        kurer_chain ch;
        if (kurer_chain_decode(d, n, &ch) != 0)
            break;
        say("%s: certificate chain of %zu\n", a.pos[0], ch.n);
        if (kurer_buf_put_u8(&j, '[') != 0)
            g_out_failed = 1;
        for (size_t i = 0; i < ch.n; i++) {
            say("  [%zu]\n", i);
            if (i > 0 && kurer_buf_put_u8(&j, ',') != 0)
                g_out_failed = 1;
            show_cert(&ch.certs[i], "    ", &j);
        }
        if (kurer_buf_put_u8(&j, ']') != 0)
            g_out_failed = 1;
        jstr("kind", "chain");
        jraw("certificates", &j);
        break;
    }
    case FK_CSR: {
        kurer_csr r;
        int sig;
        if (kurer_csr_decode(d, n, &r) != 0)
            break;
        sig = kurer_csr_verify(&r);
        say("%s: certificate request\n", a.pos[0]);
        say("  subject      %s\n", r.body.subject);
        say("  device       %u\n", r.body.device_id);
        say("  name         %s\n", r.body.display_name);
        say("  created      %s\n", fmt_time(t1, sizeof(t1), r.body.created_at));
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
        break;
    }
    case FK_CRL: {
        kurer_crl l;
        if (kurer_crl_decode(d, n, &l) != 0)
            break;
        say("%s: revocation list\n", a.pos[0]);
        say("  issuer       %s (%s)\n", l.issuer,
            l.issuer_cert.body.role == KURER_ROLE_ROOT ? "the root: the serials are authorities'"
                                                       : "an authority: the serials are devices'");
        hex(h, l.issuer_key_id, KURER_KEY_ID_LEN);
        say("  issuer key   %s\n", h);
        say("  version      %llu\n", (unsigned long long)l.version);
        say("  issued       %s\n", fmt_time(t1, sizeof(t1), l.issued_at));
        say("  next update  %s\n", l.next_update ? fmt_time(t2, sizeof(t2), l.next_update) : "-");
        say("  revoked      %zu\n", l.n_revoked);
        /* Not a verification (show checks no signature), but the one date that matters. */
        if (l.next_update != 0 && kurer_time_unix() > l.next_update) {
            char line[256];
            stale_line(&l, line, sizeof(line));
            fprintf(stderr, "kurer-admin: warning: %s: %s\n", a.pos[0], line);
            say("  warning      past its next update: relays and clients refuse what it covers\n"
                "               %d days after it; renew it (kurer-admin crl renew)\n",
                (int)(KURER_TRUST_CRL_GRACE_DEFAULT / DAY));
            jstr("warning", line);
        }
        jbool("stale", l.next_update != 0 && kurer_time_unix() > l.next_update);
        jstr("kind", "revocation_list");
        jstr("issuer", l.issuer);
        jstr("issuer_role", kurer_role_name((int)l.issuer_cert.body.role));
        jstr("issuer_key_id", h);
        ju64("version", l.version);
        jint("issued_at", l.issued_at);
        jint("next_update", l.next_update);
        if (kurer_buf_put_u8(&j, '[') != 0)
            g_out_failed = 1;
        for (size_t i = 0; i < l.n_revoked; i++) {
            kurer_buf save = g_fields;
            say("    serial %llu  %s  %s\n", (unsigned long long)l.revoked[i].serial,
                fmt_time(t1, sizeof(t1), l.revoked[i].revoked_at),
                kurer_reason_name((int)l.revoked[i].reason));
            g_fields = j;
            out_raw(i ? ",{\"serial\":" : "{\"serial\":", i ? 11 : 10);
            {
                char num[32];
                int m = snprintf(num, sizeof(num), "%llu", (unsigned long long)l.revoked[i].serial);
                out_raw(num, (size_t)m);
            }
            jint("revoked_at", l.revoked[i].revoked_at);
            jstr("reason", kurer_reason_name((int)l.revoked[i].reason));
            out_raw("}", 1);
            j = g_fields;
            g_fields = save;
        }
        if (kurer_buf_put_u8(&j, ']') != 0)
            g_out_failed = 1;
        jraw("revoked", &j);
        kurer_crl_release(&l);
        break;
    }
    case FK_KEY: {
        kurer_key_kind kk;
        uint8_t pub[64], id[32];
        size_t pl;
        if (kurer_keyfile_peek(d, n, &kk, pub, sizeof(pub), &pl) != 0)
            break;
        say("%s: sealed key file (private key not shown)\n", a.pos[0]);
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
        break;
    }
    case FK_STATE: {
        kurer_serial_state st;
        if (kurer_serial_state_decode(d, n, &st) != 0)
            break;
        say("%s: serial state\n  next serial  %llu\n  log entries  %llu\n", a.pos[0],
            (unsigned long long)st.next_serial, (unsigned long long)st.log_entries);
        jstr("kind", "serial_state");
        ju64("next_serial", st.next_serial);
        ju64("log_entries", st.log_entries);
        break;
    }
    case FK_LOG:
        say("%s: issuance log (print and verify it with: kurer-admin log --authority DIR)\n",
            a.pos[0]);
        jstr("kind", "issuance_log");
        break;
    case FK_UNKNOWN:
        rc = refuse(KURER_EMALFORMED,
                    "%s is not a certificate, chain, request, revocation list or key file "
                    "(damaged or truncated?)",
                    a.pos[0]);
        break;
    }
    free(d);
    kurer_buf_release(&j);
    return rc;
}

/* ------------------------------------------------------------------------ log */

static const char help_log[] =
    "usage: kurer-admin log (--authority AUTHDIR | --root ROOTDIR) [--json]\n"
    "\n"
    "Prints the issuance log of an authority (or of the root) and verifies it: every entry's\n"
    "signature by the issuer key, every link to the entry before it, and the serial state.\n"
    "Exits 1 naming the first bad entry. Note the printed head hash somewhere else: a log cut\n"
    "back together with its serial state cannot be told from an older copy.\n";

static int cmd_log(int argc, char **argv)
{
    static const optdef defs[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"authority", 1, 0}, {"root", 1, 0}};
    args a;
    const char *adir, *rdir;
    issuer is;
    kurer_buf j;
    int rc;
    char t[32], h1[65], h2[65], h3[65], head[65];

    memset(&is, 0, sizeof(is));
    kurer_buf_init(&j, KURER_BUF_HARD_MAX);
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_log, stdout);
        return RC_HELP;
    }
    g_json = flag(&a, "json");
    adir = opt(&a, "authority");
    rdir = opt(&a, "root");
    if ((adir == NULL) == (rdir == NULL))
        return usage_error("give exactly one of --authority and --root");
    if ((rc = issuer_load(&is, adir ? adir : rdir, adir == NULL, 0, kurer_time_unix())) != 0)
        goto out;
    say("issuance log of %s %s: %zu %s\n", adir ? "authority" : "root", is.cert.body.subject,
        is.log.n, plural(is.log.n, "entry", "entries"));
    if (kurer_buf_put_u8(&j, '[') != 0)
        g_out_failed = 1;
    for (size_t i = 0; i < is.log.n; i++) {
        const kurer_log_entry *e = &is.log.entries[i];
        kurer_buf save = g_fields;
        hex(h1, e->cert_fp, 32);
        hex(h2, e->key_fp, 32);
        hex(h3, e->noise_fp, 32);
        say("#%llu %s %-6s serial %llu %s %s", (unsigned long long)e->seq,
            fmt_time(t, sizeof(t), e->time), kurer_log_kind_name((int)e->kind),
            (unsigned long long)e->serial, kurer_role_name((int)e->role), e->subject);
        if (e->role == KURER_ROLE_DEVICE)
            say(" device %u", e->device_id);
        if (e->kind == KURER_LOGK_ISSUE)
            say(" %s until %s cert %.16s key %.16s", kurer_level_name((int)e->clearance),
                fmt_time(t, sizeof(t), e->not_after), h1, h2);
        else
            say(" reason %s", kurer_reason_name((int)e->reason));
        if (e->role == KURER_ROLE_DEVICE && e->kind == KURER_LOGK_ISSUE)
            say(" noise %.16s", h3);
        say("\n");
        g_fields = j;
        out_raw(i ? ",{\"seq\":" : "{\"seq\":", i ? 8 : 7);
        {
            char num[32];
            int m = snprintf(num, sizeof(num), "%llu", (unsigned long long)e->seq);
            out_raw(num, (size_t)m);
        }
        jstr("kind", kurer_log_kind_name((int)e->kind));
        jint("time", e->time);
        ju64("serial", e->serial);
        jstr("role", kurer_role_name((int)e->role));
        jstr("subject", e->subject);
        jint("device_id", e->device_id);
        if (e->kind == KURER_LOGK_ISSUE) {
            jstr("clearance", kurer_level_name((int)e->clearance));
            jint("not_after", e->not_after);
            jstr("cert_fingerprint", h1);
        } else {
            jstr("reason", kurer_reason_name((int)e->reason));
        }
        jstr("key_fingerprint", h2);
        if (e->role == KURER_ROLE_DEVICE)
            jstr("noise_fingerprint", h3);
        out_raw("}", 1);
        j = g_fields;
        g_fields = save;
    }
    if (kurer_buf_put_u8(&j, ']') != 0)
        g_out_failed = 1;
    hex(head, is.log.head, 32);
    say("verified: every signature and link; next serial %llu; head %s\n",
        (unsigned long long)is.st.next_serial, head);
    jstr("issuer", is.cert.body.subject);
    ju64("next_serial", is.st.next_serial);
    jstr("head", head);
    jbool("verified", 1);
    jraw("entries", &j);
out:
    kurer_buf_release(&j);
    issuer_release(&is);
    return rc;
}

/* ------------------------------------------------------------------------ publish */

static const char help_publish[] =
    "usage: kurer-admin publish --crl FILE --relay HOST:PORT --relay-key KEY [--json]\n"
    "\n"
    "Pushes a signed revocation list to a relay over Noise NK (no device identity needed:\n"
    "the list authenticates itself), whole up to 4 KiB, else in chunks of 4 KiB; the relay\n"
    "must receive all of it within its handshake_timeout_ms (10 s by default), else copy the\n"
    "file to the relay and load it with --crl and SIGHUP.\n"
    "KEY is the relay's public key in hex (64 characters, as printed by 'kurer-relay init')\n"
    "or the path of its relay.pub file. The relay checks the list against its pinned root,\n"
    "stores it and disconnects the devices it revokes.\n"
    "Exit 0 when the relay has stored the list; 1 with the relay's reason otherwise (for\n"
    "example 'older than what is already known' when it holds this version or a newer one).\n";

#define PUBLISH_TIMEOUT_MS 15000

/* The list goes up in chunks of KURER_REVOCATION_UPLOAD_CHUNK bytes (an NK session never
 * authenticates, so the relay takes only small records from it), PUB_WINDOW of them in flight,
 * each answered by Ok, the last one by the relay's verdict on the whole list. */
#define PUB_WINDOW 32

typedef struct publish_ctx {
    kurer_conn *c;
    uv_timer_t timer;
    const uint8_t *list;
    size_t list_len;
    size_t sent, acked, chunks; /* chunks sent, answered, in all */
    int result;                 /* 1 when the relay answered */
    int relay_code;             /* 0: Ok; else its error code */
    int local_err;              /* transport failure */
    int established;            /* the handshake finished */
} publish_ctx;

/* Sends chunks until PUB_WINDOW are unanswered or all are sent. A list that fits one chunk goes
 * whole (a RevocationUpload): it never waits for the relay's upload buffer. */
static int pub_send_more(publish_ctx *x)
{
    int rc = 0;
    if (x->chunks == 1 && x->sent == 0) {
        kurer_client_frame f;
        kurer_buf b;
        memset(&f, 0, sizeof(f));
        f.request_id = 1;
        f.body = KURER_CLIENT_REVOCATION;
        rc = kurer_crl_decode(x->list, x->list_len, &f.u.revocation);
        kurer_buf_init(&b, KURER_FRAME_MAX);
        if (rc == 0)
            rc = kurer_client_frame_encode(&f, &b);
        if (rc == 0)
            rc = kurer_conn_send(x->c, b.data, b.len);
        kurer_buf_release(&b);
        kurer_crl_release(&f.u.revocation);
        x->sent = 1;
        return rc;
    }
    while (rc == 0 && x->sent < x->chunks && x->sent - x->acked < PUB_WINDOW) {
        size_t off = x->sent * KURER_REVOCATION_UPLOAD_CHUNK, len = x->list_len - off;
        if (len > KURER_REVOCATION_UPLOAD_CHUNK)
            len = KURER_REVOCATION_UPLOAD_CHUNK;
        kurer_client_frame f;
        kurer_buf b;
        memset(&f, 0, sizeof(f));
        f.request_id = x->sent + 1;
        f.body = KURER_CLIENT_REVOCATION_CHUNK;
        f.u.revocation_chunk.offset = (uint32_t)off;
        f.u.revocation_chunk.total = (uint32_t)x->list_len;
        f.u.revocation_chunk.data = x->list + off;
        f.u.revocation_chunk.len = len;
        kurer_buf_init(&b, KURER_FRAME_MAX);
        rc = kurer_client_frame_encode(&f, &b);
        if (rc == 0)
            rc = kurer_conn_send(x->c, b.data, b.len);
        kurer_buf_release(&b);
        x->sent++;
    }
    return rc;
}

static void pub_established(kurer_conn *c, const uint8_t *p, size_t n)
{
    publish_ctx *x = kurer_conn_data(c);
    kurer_handshake_accept acc;
    x->established = 1;
    int rc = kurer_handshake_accept_decode(p, n, &acc);
    if (rc == 0 && acc.has_error)
        rc = acc.error_code;
    if (rc == 0)
        rc = pub_send_more(x);
    if (rc != 0) {
        x->result = 1;
        x->relay_code = rc;
        kurer_conn_close(c, rc);
    }
}

static void pub_record(kurer_conn *c, uint8_t *p, size_t n)
{
    publish_ctx *x = kurer_conn_data(c);
    kurer_server_frame f;
    int rc = kurer_server_frame_decode(p, n, &f);
    if (rc != 0) {
        x->local_err = rc;
    } else if (f.request_id == 0 && f.body != KURER_SERVER_ERROR) {
        kurer_server_frame_release(&f);
        return; /* a push that is not for us */
    } else if (f.body == KURER_SERVER_OK && f.request_id == x->acked + 1 &&
               x->acked + 1 < x->chunks) {
        /* a chunk taken: more of the list */
        kurer_server_frame_release(&f);
        x->acked++;
        if ((rc = pub_send_more(x)) == 0)
            return;
        x->local_err = rc;
    } else {
        x->result = 1;
        x->relay_code = f.body == KURER_SERVER_ERROR                             ? f.u.error.code
                        : f.body == KURER_SERVER_OK && f.request_id == x->chunks ? 0
                                                                                 : KURER_EMALFORMED;
        kurer_server_frame_release(&f);
    }
    kurer_conn_close(c, 0);
}

static void pub_timer_closed(uv_handle_t *h)
{
    (void)h;
}

static void pub_close(kurer_conn *c, int err)
{
    publish_ctx *x = kurer_conn_data(c);
    if (!x->result && x->local_err == 0)
        x->local_err = err != 0 ? err : KURER_ECLOSED;
    x->c = NULL;
    uv_timer_stop(&x->timer);
    uv_close((uv_handle_t *)&x->timer, pub_timer_closed);
}

static void pub_timeout(uv_timer_t *t)
{
    publish_ctx *x = t->data;
    x->local_err = KURER_ETIMEOUT;
    if (x->c != NULL)
        kurer_conn_close(x->c, KURER_ETIMEOUT);
}

static int relay_key(const char *v, uint8_t pk[32])
{
    char hex[65];
    if (strlen(v) != 64 || kurer_hex_decode(pk, 32, v) != 0) {
        uint8_t *d;
        size_t n;
        int rc = read_file(v, 256, &d, &n);
        if (rc != 0)
            return usage_error("--relay-key %s: neither 64 hex characters nor a readable file", v);
        if (n < 64) {
            free(d);
            return refuse(KURER_EMALFORMED, "%s does not hold a relay key in hex", v);
        }
        memcpy(hex, d, 64);
        hex[64] = '\0';
        free(d);
        if (kurer_hex_decode(pk, 32, hex) != 0)
            return refuse(KURER_EMALFORMED, "%s does not hold a relay key in hex", v);
    }
    return 0;
}

static int cmd_publish(int argc, char **argv)
{
    static const optdef defs[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"crl", 1, 0}, {"relay", 1, 0}, {"relay-key", 1, 0}};
    args a;
    int rc;
    const char *crl_path, *relay, *key;
    uint8_t pk[32], *data = NULL;
    size_t len;
    struct sockaddr_storage addr;
    kurer_crl crl;
    uv_loop_t loop;
    publish_ctx x;
    memset(&crl, 0, sizeof(crl));
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_publish, stdout);
        return RC_HELP;
    }
    g_json = flag(&a, "json");
    if ((rc = need(&a, "crl", &crl_path)) != 0 || (rc = need(&a, "relay", &relay)) != 0 ||
        (rc = need(&a, "relay-key", &key)) != 0)
        return rc;
    if (kurer_net_addr_check(relay) != 0)
        return usage_error("--relay %s: expected HOST:PORT", relay);
    if ((rc = kurer_net_resolve(relay, &addr)) != 0)
        return refuse(rc, "cannot resolve %s: %s", relay, kurer_strerror(rc));
    if ((rc = relay_key(key, pk)) != 0)
        return rc;
    if ((rc = read_file(crl_path, FILE_MAX, &data, &len)) != 0)
        return rc;
    /* Decode here so that a wrong file is refused before anything goes on the wire. */
    rc = len > KURER_CRL_BYTES_MAX ? KURER_ELIMIT : kurer_crl_decode(data, len, &crl);
    if (rc != 0) {
        free(data);
        return refuse(rc, "%s is not a revocation list: %s", crl_path, kurer_strerror(rc));
    }
    static const kurer_conn_cbs cbs = {NULL, pub_established, pub_record, NULL, NULL, pub_close};
    memset(&x, 0, sizeof(x));
    x.list = data;
    x.list_len = len;
    x.chunks = (len + KURER_REVOCATION_UPLOAD_CHUNK - 1) / KURER_REVOCATION_UPLOAD_CHUNK;
    if (uv_loop_init(&loop) != 0) {
        rc = refuse(KURER_EIO, "cannot start the event loop");
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_timer_init(&loop, &x.timer);
    x.timer.data = &x;
    uv_timer_start(&x.timer, pub_timeout, PUBLISH_TIMEOUT_MS, 0);
    rc = kurer_conn_connect(&x.c, &loop, (struct sockaddr *)&addr, NULL, &cbs, KURER_NOISE_NK, NULL,
                            pk, NULL, 0, &x);
    if (rc != 0) {
        uv_close((uv_handle_t *)&x.timer, pub_timer_closed);
        uv_run(&loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&loop);
        rc = refuse(rc, "cannot connect to %s: %s", relay, kurer_strerror(rc));
        goto out;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
    jstr("issuer", crl.issuer);
    ju64("version", crl.version);
    jstr("relay", relay);
    if (!x.result && (x.local_err == KURER_ECONNREFUSED || x.local_err == KURER_EUNREACHABLE)) {
        rc = refuse(x.local_err, "cannot reach relay %s: %s", relay, kurer_strerror(x.local_err));
    } else if (!x.result && x.local_err == KURER_ECLOSED && !x.established) {
        rc =
            refuse(KURER_EHANDSHAKE,
                   "relay %s closed the handshake: wrong --relay-key, or not a Kurér relay", relay);
    } else if (!x.result) {
        rc = refuse(x.local_err, "relay %s: %s", relay, kurer_strerror(x.local_err));
    } else if (x.relay_code != 0) {
        /* The relay's typed error; its name goes into --json's code. */
        rc = refuse(x.relay_code, "relay %s refused the list (version %llu): %s", relay,
                    (unsigned long long)crl.version, kurer_strerror(x.relay_code));
    } else {
        say("published %s revocation list version %llu to %s\n", crl.issuer,
            (unsigned long long)crl.version, relay);
        rc = 0;
    }
out:
    free(data);
    kurer_crl_release(&crl);
    return rc;
}

/* ------------------------------------------------------------------------ main */

static const char help_main[] =
    "usage: kurer-admin COMMAND [OPTIONS]\n"
    "\n"
    "Provisions Kurér identities: a national root, authorities under it, and device\n"
    "certificates issued from the devices' requests; revocation and issuance logs.\n"
    "\n"
    "commands:\n"
    "  root init        create a root key and self-signed root certificate\n"
    "  root revoke      revoke an authority (the root's revocation list)\n"
    "  authority init   create an authority key and certificate signed by the root\n"
    "  issue            issue a device certificate from a request\n"
    "  revoke           revoke a device certificate (new revocation list)\n"
    "  crl renew        re-sign a revocation list before its next update\n"
    "  verify           verify a chain, certificate or revocation list against the root\n"
    "  show             print any Kurér certificate, request, list or key file\n"
    "  log              print and verify an issuance log\n"
    "  publish          push a revocation list to a relay (Noise NK)\n"
    "\n"
    "Every command takes --help and --json. Passphrases come from the environment variable\n"
    "named by --passphrase-env (default " DEFAULT_PASS ") or a no-echo prompt on the\n"
    "terminal; they are never printed or logged.\n"
    "Exit status: 0 success, 1 refused (reason on stderr), 2 usage error.\n";

static int emit(int rc)
{
    int code;
    if (rc == RC_HELP)
        return 0;
    if (rc == 0 && g_out_failed)
        rc = refuse(KURER_ELIMIT, "output too large");
    code = rc == 0 ? 0 : rc == RC_USAGE ? EXIT_USAGE : EXIT_REFUSED;
    if (rc != 0) {
        if (g_err[0] == '\0')
            snprintf(g_err, sizeof(g_err), "%s", kurer_strerror(rc));
        fprintf(stderr, "kurer-admin: %s\n", g_err);
        if (rc == RC_USAGE)
            fprintf(stderr, "kurer-admin: try 'kurer-admin %s%s--help'\n", g_command,
                    g_command[0] ? " " : "");
    }
    if (g_json) {
        kurer_buf o;
        kurer_buf_init(&o, KURER_BUF_HARD_MAX);
        if (kurer_buf_put(&o, "{\"ok\":", 6) ||
            kurer_buf_put(&o, rc ? "false" : "true", rc ? 5 : 4))
            g_out_failed = 1;
        if (kurer_buf_put(&o, ",\"command\":", 11))
            g_out_failed = 1;
        json_escape(&o, g_command);
        if (rc != 0) {
            if (kurer_buf_put(&o, ",\"error\":", 9))
                g_out_failed = 1;
            json_escape(&o, g_err);
            if (kurer_buf_put(&o, ",\"code\":", 8))
                g_out_failed = 1;
            json_escape(&o,
                        rc == RC_USAGE ? "USAGE" : kurer_err_name(g_err_code ? g_err_code : rc));
        }
        if (g_replaced.len > 0 &&
            (kurer_buf_put(&o, ",\"replaced\":[", 13) ||
             kurer_buf_put(&o, g_replaced.data, g_replaced.len) || kurer_buf_put_u8(&o, ']')))
            g_out_failed = 1;
        if (kurer_buf_put(&o, g_fields.data, g_fields.len) || kurer_buf_put(&o, "}\n", 2))
            g_out_failed = 1;
        fwrite(o.data, 1, o.len, stdout);
        kurer_buf_release(&o);
    }
    kurer_buf_release(&g_fields);
    kurer_buf_release(&g_replaced);
    if (fflush(stdout) != 0)
        return EXIT_REFUSED;
    return code;
}

int main(int argc, char **argv)
{
    int rc;
    kurer_buf_init(&g_fields, KURER_BUF_HARD_MAX);
    kurer_buf_init(&g_replaced, KURER_BUF_HARD_MAX);
    umask(077);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(help_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    /* --json before the command applies to it (and to an unknown command's error). */
    while (argc >= 2 && strcmp(argv[1], "--json") == 0) {
        g_json = 1;
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    if (argc < 2) {
        g_command = "";
        return emit(usage_error("no command given (kurer-admin --help lists them)"));
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("kurer-admin %s\n", KURER_VERSION);
        return 0;
    }
    /* So that usage errors, found before a command has parsed its options, are JSON too. */
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            g_json = 1;
    if ((rc = kurer_crypto_init()) != 0) {
        fprintf(stderr, "kurer-admin: cannot start the crypto library: %s\n", kurer_strerror(rc));
        return EXIT_REFUSED;
    }
    /* Commands with subcommands: "root init", "root revoke", "authority init", "crl renew". */
    static const struct {
        const char *group, *sub, *name, *help; /* "GROUP --help" prints the group's helps */
        int (*fn)(int, char **);
    } subs[] = {{"root", "init", "root init", help_root_init, cmd_root_init},
                {"root", "revoke", "root revoke", help_root_revoke, cmd_root_revoke},
                {"authority", "init", "authority init", help_authority_init, cmd_authority_init},
                {"crl", "renew", "crl renew", help_crl_renew, cmd_crl_renew}};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(argv[1], subs[i].group) != 0)
            continue;
        for (size_t j = i; j < sizeof(subs) / sizeof(subs[0]); j++)
            if (argc >= 3 && strcmp(argv[1], subs[j].group) == 0 &&
                strcmp(argv[2], subs[j].sub) == 0) {
                g_command = subs[j].name;
                return emit(subs[j].fn(argc - 3, argv + 3));
            }
        if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            for (size_t j = i; j < sizeof(subs) / sizeof(subs[0]); j++)
                if (strcmp(argv[1], subs[j].group) == 0)
                    printf("%s%s", j > i ? "\n" : "", subs[j].help);
            return 0;
        }
        g_command = argv[1];
        return emit(usage_error("'%s' needs a subcommand: %s", argv[1],
                                strcmp(argv[1], "root") == 0 ? "init or revoke" : subs[i].sub));
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"issue", cmd_issue}, {"revoke", cmd_revoke}, {"verify", cmd_verify},
                {"show", cmd_show},   {"log", cmd_log},       {"publish", cmd_publish}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0) {
            g_command = cmds[i].name;
            return emit(cmds[i].fn(argc - 2, argv + 2));
        }
    g_command = "";
    return emit(usage_error("unknown command '%s'", argv[1]));
}
