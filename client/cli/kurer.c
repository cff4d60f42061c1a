/* kurer: the command-line client on libkurer (client/include/kurer/kurer.h).
 *
 * Exit codes (as kurer-admin): 0 success; 1 refused or failed, with one line "kurer: <reason>"
 * on stderr; 2 usage errors; 3 (send) queued in the outbox but not yet accepted by the relay. With
 * --json, results are JSON (one object per line for messages; one object for other commands, also
 * on failure). */
#include "kurer/certmsg.h"
#include "kurer/crypto.h"
#include "kurer/error.h"
#include "kurer/keys.h"
#include "kurer/secret.h"
#include "kurer/kurer.h"
#include "kurer/log.h"
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
#define EXIT_QUEUED  3    /* send: committed to the outbox, not yet accepted by the relay */
#define RC_QUEUED    1002 /* not a kurer_err: exit EXIT_QUEUED */
#define RC_USAGE     1000 /* not a kurer_err: usage error (exit 2) */
#define RC_HELP      1001 /* not a kurer_err: --help printed (exit 0) */
#define PASS_ENV     "KURER_PASSPHRASE"
#define NEW_PASS_ENV "KURER_NEW_PASSPHRASE"
#define HOLD_ENV     "KURER_TEST_HOLD"
#define FILE_MAX     ((size_t)KURER_CRL_BYTES_MAX + 65536)
#define NET_TIMEOUT  30 /* seconds, default for connect and send */
#define LOCK_ENV     "KURER_LOCK_WAIT"
#define LOCK_WAIT    30 /* seconds a short command waits for another kurer on the same home */
#define LOCK_FILE    ".lock"

static int g_json;
static const char *g_command = "";
static char g_err[1024];
static int g_err_code;
static const char *g_relay = "the relay"; /* the open home's relay address, for messages */

/* ------------------------------------------------------------------------ output */

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

/* Text from peers (message bodies) is printed to terminals: nothing in it may act on the
 * terminal or fake the layout of a line. Decodes one UTF-8 sequence at s: its length (1..4)
 * with *cp, or 0 if the byte at s does not start a valid, shortest-form sequence. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    unsigned c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* Code points shown escaped: C0 and C1 controls and DEL (escape sequences, CSI, NEL), line
 * and paragraph separators, and the bidirectional controls that reorder what a line shows. */
static int unsafe_cp(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
           cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* A JSON string: valid JSON (bytes that are not UTF-8 become U+FFFD) with every unsafe code
 * point escaped, so that the output is safe on a terminal too. */
static void json_str(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    while (*s) {
        uint32_t cp = 0;
        size_t n = utf8_next(s, &cp);
        if (n == 0) {
            fputs("\\ufffd", f);
            s++;
            continue;
        }
        if (cp == '"' || cp == '\\')
            fprintf(f, "\\%c", (int)cp);
        else if (cp == '\n')
            fputs("\\n", f);
        else if (unsafe_cp(cp))
            fprintf(f, "\\u%04x", (unsigned)cp);
        else
            fwrite(s, 1, n, f);
        s += n;
    }
    fputc('"', f);
}

/* Text on one line, safe on a terminal: a backslash is doubled, a newline is \n, other unsafe
 * code points are \u{XXXX} (\xNN below 0x80), bytes that are not UTF-8 are \xNN. */
static void line_str(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        uint32_t cp = 0;
        size_t n = utf8_next(s, &cp);
        if (n == 0) {
            fprintf(f, "\\x%02x", *s);
            s++;
            continue;
        }
        if (cp == '\\')
            fputs("\\\\", f);
        else if (cp == '\n')
            fputs("\\n", f);
        else if (unsafe_cp(cp) && cp < 0x80)
            fprintf(f, "\\x%02x", (unsigned)cp);
        else if (unsafe_cp(cp))
            fprintf(f, "\\u{%04x}", (unsigned)cp);
        else
            fwrite(s, 1, n, f);
        s += n;
    }
}

static const char *fmt_ms(char *buf, size_t n, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "%lld", (long long)ms);
    return buf;
}

/* ------------------------------------------------------------------------ options */

typedef struct optdef {
    const char *name;
    int arg;
} optdef;

#define MAX_OPTS 16
#define MAX_POS  8

typedef struct args {
    const optdef *defs;
    size_t ndefs;
    const char *val[MAX_OPTS];
    int given[MAX_OPTS];
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
            else if (i + 1 < argc)
                v = argv[++i];
            else
                return usage_error("option '--%s' needs a value", defs[d].name);
        } else {
            if (eq)
                return usage_error("option '--%s' takes no value", defs[d].name);
            v = "";
        }
        if (a->given[d])
            return usage_error("option '--%s' given twice", defs[d].name);
        a->given[d] = 1;
        a->val[d] = v;
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
    return a->given[d] ? a->val[d] : NULL;
}

static int flag(const args *a, const char *name)
{
    return a->given[opt_index(a, name)];
}

static int need(const args *a, const char *name, const char **out)
{
    *out = opt(a, name);
    if (*out == NULL || **out == '\0')
        return usage_error("missing --%s", name);
    return 0;
}

static int opt_seconds(const args *a, const char *name, int def, int *out)
{
    const char *s = opt(a, name);
    uint64_t v = 0;
    *out = def;
    if (s == NULL)
        return 0;
    if (kurer_parse_u64(s, 86400, &v) != 0)
        return usage_error("--%s must be a number of seconds from 0 to 86400", name);
    *out = (int)v;
    return 0;
}

static int parse_level(const char *s, int *out)
{
    kurer_level l;
    int rc = kurer_level_parse(s, &l);
    if (rc == KURER_ECLEARANCE)
        return refuse(rc, "%s: the system is not accredited above CONFIDENTIAL", s);
    if (rc != 0)
        return usage_error("unknown level '%s' (UNCLASSIFIED, RESTRICTED or CONFIDENTIAL)", s);
    *out = (int)l;
    return 0;
}

/* ------------------------------------------------------------------------ passphrases */

/* The passphrase from envname or the terminal, in guarded memory (kurer/secret.h); a refusal
 * with the reason otherwise. */
static int get_passphrase(const char *envname, const char *what, int is_new, kurer_secret *out)
{
    char why[700];
    int rc = kurer_secret_passphrase(envname, what, is_new, out, why, sizeof(why));
    return rc != 0 ? refuse(rc, "%s", why) : 0;
}

/* ------------------------------------------------------------------------ the home lock */

/* One process per home: two would each connect as the same device, and the relay keeps only
 * the newest connection. Every command that opens the store holds an exclusive flock on
 * HOME/.lock (0600) until it exits; the file says who holds it ("PID COMMAND"). A command
 * that finds the home held by a waiting `kurer recv --wait` is refused at once (it may hold
 * the home for a day); otherwise it waits up to LOCK_WAIT seconds (KURER_LOCK_WAIT), saying
 * so once on stderr. */
static int g_lock_fd = -1;

static void lock_holder(int fd, long *pid, char *cmd, size_t cmdlen)
{
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    *pid = 0;
    snprintf(cmd, cmdlen, "kurer");
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl != NULL)
        *nl = '\0';
    char *sp = strchr(buf, ' ');
    *pid = strtol(buf, NULL, 10);
    if (sp != NULL && sp[1] != '\0')
        snprintf(cmd, cmdlen, "%s", sp + 1);
}

static int lock_home(const char *home, const char *command)
{
    char path[4200];
    if (g_lock_fd >= 0)
        return 0;
    if (snprintf(path, sizeof(path), "%s/%s", home, LOCK_FILE) >= (int)sizeof(path))
        return refuse(KURER_EINVAL, "%s: path too long", home);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0; /* no home: kurer_open says so */
        return refuse(KURER_EPERM, "cannot open %s: %s", path, strerror(errno));
    }
    (void)fchmod(fd, 0600);
    int wait_s = LOCK_WAIT;
    const char *env = getenv(LOCK_ENV);
    uint64_t v = 0;
    if (env != NULL && kurer_parse_u64(env, 3600, &v) == 0)
        wait_s = (int)v;
    int said = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        long pid;
        char cmd[96];
        if (errno != EWOULDBLOCK && errno != EINTR) {
            close(fd);
            return refuse(KURER_EIO, "cannot lock %s: %s", path, strerror(errno));
        }
        lock_holder(fd, &pid, cmd, sizeof(cmd));
        if (strcmp(cmd, "recv --wait") == 0) {
            close(fd);
            return refuse(KURER_EBUSY,
                          "%s is in use by `kurer recv --wait` (pid %ld): one process per home; "
                          "stop it (or let its wait end) and try again",
                          home, pid);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= wait_s) {
            close(fd);
            return refuse(KURER_EBUSY, "%s is in use by `kurer %s` (pid %ld): gave up after %d s",
                          home, cmd, pid, wait_s);
        }
        if (!said) {
            fprintf(stderr, "kurer: waiting for another kurer using %s (`kurer %s`, pid %ld)\n",
                    home, cmd, pid);
            said = 1;
        }
        struct timespec d = {0, 100 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    char line[128];
    int n = snprintf(line, sizeof(line), "%ld %s\n", (long)getpid(), command);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) {
        /* who holds it is only informative */
    }
    g_lock_fd = fd; /* held until the process exits */
    return 0;
}

static const char *g_lock_as; /* what lock_home records: the command, or "recv --wait" */

/* Opens HOME with its passphrase; a wrong one is a clear error and changes nothing. */
static int open_home(const char *home, kurer **k)
{
    kurer_secret pw;
    char what[300];
    snprintf(what, sizeof(what), "the device home %s", home);
    struct stat hst;
    if (stat(home, &hst) == 0 && S_ISDIR(hst.st_mode) && (hst.st_mode & 077) != 0 &&
        hst.st_uid == geteuid()) {
        if (chmod(home, 0700) != 0)
            return refuse(KURER_EPERM, "%s has mode %04o and cannot be made 0700: %s", home,
                          (unsigned)(hst.st_mode & 0777), strerror(errno));
        fprintf(stderr, "kurer: %s had mode %04o; set to 0700 (owner only)\n", home,
                (unsigned)(hst.st_mode & 0777));
    }
    int rc = lock_home(home, g_lock_as != NULL ? g_lock_as : g_command);
    if (rc != 0)
        return rc;
    rc = get_passphrase(PASS_ENV, what, 0, &pw);
    if (rc != 0)
        return rc;
    rc = kurer_open(home, pw.p, pw.n, NULL, NULL, NULL, k);
    kurer_secret_free(&pw);
    if (rc == KURER_EPASSPHRASE)
        return refuse(rc, "wrong passphrase for %s", home);
    if (rc == KURER_ENOENT)
        return refuse(rc, "%s is not a device home (run 'kurer init' first)", home);
    if (rc != 0)
        return refuse(rc, "cannot open %s: %s", home, kurer_strerror(rc));
    g_relay = kurer_relay_address(*k);
    return 0;
}

/* ------------------------------------------------------------------------ explaining refusals */

static int explain(int rc, const kurer_refusal *why, int level, const char *to)
{
    const char *lv = level > 0 ? kurer_level_name(level) : "this level";
    char dev[32] = "";
    if (why->device_id != 0)
        snprintf(dev, sizeof(dev), " device %u", why->device_id);
    if (rc == KURER_ECLEARANCE) {
        switch (why->by) {
        case KURER_REFUSED_BY_CEILING:
            return refuse(rc, "refused: %s is above the root's ceiling (%s)", lv,
                          kurer_level_name(why->limit));
        case KURER_REFUSED_BY_SENDER:
            return refuse(rc, "refused: %s is above your own certificate's clearance (%s)", lv,
                          kurer_level_name(why->limit));
        case KURER_REFUSED_BY_RECIPIENT:
            return refuse(rc, "refused: %s is above the clearance of %s%s (%s)", lv, why->user, dev,
                          kurer_level_name(why->limit));
        default:
            return refuse(rc, "refused: %s is not allowed", lv);
        }
    }
    if (rc == KURER_EUNKNOWNUSER)
        return refuse(rc,
                      "unknown user %s: it has no enrolled device that has connected to the "
                      "relay yet",
                      why->user[0] ? why->user : to);
    if (why->by == KURER_REFUSED_BY_SENDER)
        return refuse(rc, "refused: your own certificate is not valid: %s", kurer_strerror(rc));
    if (why->by == KURER_REFUSED_BY_RECIPIENT && rc == KURER_ENOTFOUND && why->device_id != 0)
        return refuse(rc, "%s%s has no usable prekeys (it has not connected yet)", why->user, dev);
    if (why->by == KURER_REFUSED_BY_RECIPIENT)
        return refuse(rc, "refused: the certificate of %s%s: %s", why->user, dev,
                      kurer_strerror(rc));
    return 0;
}

/* The connection failed or ended: what was committed stays for a later connection. */
static int transport_error(int rc)
{
    switch (rc) {
    case KURER_ETIMEOUT:
    case KURER_ECLOSED:
    case KURER_EIO:
    case KURER_EBUSY:
    case KURER_ERATE:
    case KURER_ECONNREFUSED:
    case KURER_EUNREACHABLE:
    case KURER_EHANDSHAKE:
    case KURER_ERESOLVE:
        return 1;
    default:
        return 0;
    }
}

static int net_error(int rc, const char *doing)
{
    switch (rc) {
    case KURER_ECONNREFUSED:
    case KURER_EUNREACHABLE:
    case KURER_ERESOLVE:
        return refuse(rc, "%s: cannot reach relay %s: %s", doing, g_relay, kurer_strerror(rc));
    case KURER_ETIMEOUT:
        return refuse(rc, "%s: relay %s did not answer in time", doing, g_relay);
    case KURER_EHANDSHAKE:
        return refuse(rc,
                      "%s: relay %s closed the handshake: wrong --relay-key, or not a Kurér "
                      "relay (kurer relay --home H --relay-key KEY changes the key)",
                      doing, g_relay);
    case KURER_ECLOSED:
        return refuse(rc, "%s: relay %s closed the connection", doing, g_relay);
    case KURER_ESTATE:
        return refuse(rc, "not enrolled yet: import the issued certificate chain first");
    case KURER_EREVOKED:
    case KURER_EEXPIRED:
    case KURER_EUNTRUSTED:
    case KURER_EKEYMISMATCH:
        return refuse(rc, "the relay refused this device: %s", kurer_strerror(rc));
    default:
        return refuse(rc, "%s: %s", doing, kurer_strerror(rc));
    }
}

/* ------------------------------------------------------------------------ init */

/* The identity key in hex (as kurer-admin show prints a request's), its BLAKE2b-256
 * fingerprint (as kurer-admin log prints it) and the Noise key in hex. */
static void own_keys(const kurer *k, char *idk, char fp[65], char nk[65])
{
    uint8_t h[32];
    kurer_hex_encode(idk, kurer_own_identity_key(k), KURER_IDENTITY_KEY_LEN);
    kurer_hash256(h, kurer_own_identity_key(k), KURER_IDENTITY_KEY_LEN);
    kurer_hex_encode(fp, h, 32);
    kurer_hex_encode(nk, kurer_own_noise_key(k), 32);
}

/* --relay HOST:PORT (an IP literal, [IPv6] or a DNS name, kept as typed) and --relay-key (64
 * hex digits, or the path of a copy of the relay's relay.pub). A name that does not resolve
 * now is accepted with a warning: it is resolved again at every connect. */
static int relay_args(const char *relay, const char *key_s, uint8_t key[32])
{
    if (kurer_net_addr_check(relay) != 0)
        return usage_error("--relay '%s' is not HOST:PORT (an IP address, [IPv6] or a host name, "
                           "and a port)",
                           relay);
    if (strlen(relay) > 255)
        return usage_error("--relay is longer than 255 characters");
    if (key_s != NULL && (strlen(key_s) != 64 || kurer_hex_decode(key, 32, key_s) != 0)) {
        uint8_t *d = NULL;
        size_t n = 0;
        char hex[65];
        int rc = kurer_file_read(key_s, 256, &d, &n);
        if (rc != 0)
            return usage_error("--relay-key %s: neither 64 hex digits nor a readable file (%s)",
                               key_s, kurer_strerror(rc));
        int bad = n < 64 || (n > 64 && d[64] != '\n' && d[64] != '\r');
        if (!bad) {
            memcpy(hex, d, 64);
            hex[64] = '\0';
            bad = kurer_hex_decode(key, 32, hex) != 0;
        }
        free(d);
        if (bad)
            return refuse(KURER_EMALFORMED, "%s does not hold a relay key (64 hex digits)", key_s);
    }
    struct sockaddr_storage sa;
    if (kurer_net_resolve(relay, &sa) == KURER_ERESOLVE)
        fprintf(stderr,
                "kurer: warning: %s does not resolve now; it is resolved again at every "
                "connect\n",
                relay);
    return 0;
}

static const char help_init[] =
    "usage: kurer init --home H --user USER@AUTH --device N --relay HOST:PORT --relay-key KEY\n"
    "                  --root ROOT.crt [--name NAME] [--kdf-min] [--json]\n"
    "\n"
    "Creates a device home: the encrypted store, this device's keys, and the certificate\n"
    "request H/device.csr for the administrator. Prints its path, then the identity key and\n"
    "its fingerprint: the administrator compares them with what 'kurer-admin show' prints for\n"
    "the request (kurer whoami shows them again). The passphrase comes from " PASS_ENV "\n"
    "or a no-echo prompt (at least 12 characters).\n"
    "\n"
    "  --home H           the home folder (made 0700, or an existing one of yours set to\n"
    "                     0700, which is said on stderr; must not hold a store yet)\n"
    "  --user USER@AUTH   this device's user\n"
    "  --device N         this device's id (1..2147483647)\n"
    "  --relay HOST:PORT  the relay: an IP address, [IPv6] or a host name (kept as typed, "
    "resolved\n"
    "                     at every connect; change it later with kurer relay)\n"
    "  --relay-key KEY    the relay's public key: 64 hex digits, or the path of relay.pub\n"
    "  --root ROOT.crt    the pinned root certificate\n"
    "  --name NAME        display name (default: the user)\n"
    "  --kdf-min          the smallest Argon2id parameters accepted (for tests)\n"
    "  --json             print the result as one JSON object\n";

static int cmd_init(int argc, char **argv)
{
    static const optdef defs[] = {{"help", 0},   {"json", 0},   {"home", 1},      {"user", 1},
                                  {"device", 1}, {"relay", 1},  {"relay-key", 1}, {"root", 1},
                                  {"name", 1},   {"kdf-min", 0}};
    args a;
    const char *home, *user, *dev_s, *relay, *key_s, *root_path;
    uint64_t dev = 0;
    int rc;
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_init, stdout);
        return RC_HELP;
    }
    if ((rc = need(&a, "home", &home)) || (rc = need(&a, "user", &user)) ||
        (rc = need(&a, "device", &dev_s)) || (rc = need(&a, "relay", &relay)) ||
        (rc = need(&a, "relay-key", &key_s)) || (rc = need(&a, "root", &root_path)))
        return rc;
    if (kurer_parse_u64(dev_s, KURER_DEVICE_ID_MAX, &dev) != 0 || dev == 0)
        return usage_error("--device must be a number from 1 to %u", KURER_DEVICE_ID_MAX);
    if (kurer_user_check(user) != 0)
        return usage_error("--user '%s' is not USER@AUTHORITY", user);
    kurer_create_options o;
    memset(&o, 0, sizeof(o));
    if ((rc = relay_args(relay, key_s, o.relay_key)) != 0)
        return rc;
    uint8_t *root = NULL;
    size_t root_len = 0;
    if ((rc = kurer_file_read(root_path, KURER_CERT_MAX, &root, &root_len)) != 0)
        return refuse(rc, "cannot read %s: %s", root_path, kurer_strerror(rc));
    o.home = home;
    o.user = user;
    o.device_id = (uint32_t)dev;
    o.display_name = opt(&a, "name");
    o.relay = relay;
    o.root = root;
    o.root_len = root_len;
    if (flag(&a, "kdf-min")) {
        kurer_kdf_params p = kurer_kdf_minimum();
        o.kdf_ops = p.opslimit;
        o.kdf_mem = p.memlimit;
    }
    kurer_secret pw;
    char what[300];
    snprintf(what, sizeof(what), "the new device home %s", home);
    if ((rc = get_passphrase(PASS_ENV, what, 1, &pw)) != 0) {
        free(root);
        return rc;
    }
    kurer *k = NULL;
    struct stat hst;
    mode_t before = stat(home, &hst) == 0 && S_ISDIR(hst.st_mode) ? hst.st_mode & 0777 : 0;
    rc = kurer_create(&o, pw.p, pw.n, NULL, &k);
    kurer_secret_free(&pw);
    free(root);
    if (rc == KURER_EEXIST)
        return refuse(rc, "%s already holds a device home", home);
    if (rc == KURER_EPERM)
        return refuse(rc, "cannot create %s: not a folder of yours that can be made 0700", home);
    if (rc != 0)
        return refuse(rc, "cannot create %s: %s", home, kurer_strerror(rc));
    if ((before & 077) != 0)
        fprintf(stderr, "kurer: %s had mode %04o; set to 0700 (owner only)\n", home,
                (unsigned)before);
    char idk[2 * KURER_IDENTITY_KEY_LEN + 1], fp[65], nk[65];
    own_keys(k, idk, fp, nk);
    if (g_json) {
        printf("{\"ok\":true,\"command\":\"init\",\"csr\":");
        json_str(stdout, kurer_csr_path(k));
        printf(",\"user\":");
        json_str(stdout, kurer_own_user(k));
        printf(",\"device\":%u,\"identity_key\":\"%s\",\"key_fingerprint\":\"%s\","
               "\"noise_key\":\"%s\"}\n",
               kurer_own_device(k), idk, fp, nk);
    } else {
        printf("%s\n", kurer_csr_path(k));
        printf("identity key     %s\nkey fingerprint  %s\n", idk, fp);
        printf("Give %s to your administrator and compare the identity key with the one\n"
               "'kurer-admin show' prints for it (by phone or in person). 'kurer whoami' shows\n"
               "it again.\n",
               kurer_csr_path(k));
    }
    kurer_close(k);
    return 0;
}

/* ------------------------------------------------------------------------ whoami */

static const char help_whoami[] =
    "usage: kurer whoami --home H [--json]\n"
    "\n"
    "Shows this device: user, device id, identity key (as 'kurer-admin show' prints it for the\n"
    "request) and its fingerprint (BLAKE2b-256, as 'kurer-admin log' prints it), Noise key,\n"
    "the certificate (serial, clearance, validity, status now) or that it is not enrolled yet,\n"
    "and the relay. Works offline.\n";

/* For a device whose revocation lists are past their next update: "revocation list of mof is
 * past its next update (DATE)" (or "of the root", or both). "" when they are current. */
static void stale_text(const kurer_peer_device *d, char *out, size_t n)
{
    char t[64];
    int a = (d->crl_stale & KURER_PEER_STALE_AUTHORITY_LIST) != 0;
    int r = (d->crl_stale & KURER_PEER_STALE_ROOT_LIST) != 0;
    out[0] = '\0';
    if (!a && !r)
        return;
    kurer_time_format(t, sizeof(t), d->crl_stale_since);
    snprintf(out, n, "revocation list%s of %s%s%s %s past %s next update (%s)", a && r ? "s" : "",
             a ? d->authority : "", a && r ? " and " : "", r ? "the root" : "",
             a && r ? "are" : "is", a && r ? "their" : "its", t);
}

typedef struct whoami_ctx {
    int have;
    char line[512];
} whoami_ctx;

static int whoami_cert(void *ud, const kurer_peer_device *d)
{
    whoami_ctx *w = ud;
    char nb[64], na[64];
    kurer_time_format(nb, sizeof(nb), d->not_before);
    kurer_time_format(na, sizeof(na), d->not_after);
    char stale[256], sd[64];
    stale_text(d, stale, sizeof(stale));
    kurer_time_format(sd, sizeof(sd), d->crl_stale_since);
    w->have = 1;
    if (g_json)
        snprintf(w->line, sizeof(w->line),
                 "{\"status\":\"%s\",\"serial\":%llu,\"clearance\":\"%s\","
                 "\"not_before\":\"%s\",\"not_after\":\"%s\",\"fingerprint\":\"%s\","
                 "\"crl_stale\":%s,\"crl_next_update\":\"%s\"}",
                 d->status == 0 ? "valid" : kurer_err_name(d->status),
                 (unsigned long long)d->serial, d->clearance ? kurer_level_name(d->clearance) : "",
                 nb, na, d->cert_fingerprint, stale[0] ? "true" : "false", stale[0] ? sd : "");
    else
        snprintf(w->line, sizeof(w->line),
                 "%s, serial %llu, authority %s%s%s, valid %s to %s\n"
                 "                 fingerprint %s%s%s",
                 d->status == 0 ? "valid" : kurer_strerror(d->status),
                 (unsigned long long)d->serial, d->authority, d->clearance ? ", cleared for " : "",
                 d->clearance ? kurer_level_name(d->clearance) : "", nb, na, d->cert_fingerprint,
                 stale[0] ? "\n                 warning: " : "", stale);
    return 0;
}

static int cmd_whoami(int argc, char **argv)
{
    static const optdef defs[] = {{"help", 0}, {"json", 0}, {"home", 1}};
    args a;
    const char *home;
    kurer *k = NULL;
    int rc;
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_whoami, stdout);
        return RC_HELP;
    }
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    char idk[2 * KURER_IDENTITY_KEY_LEN + 1], fp[65], nk[65];
    own_keys(k, idk, fp, nk);
    whoami_ctx w;
    memset(&w, 0, sizeof(w));
    rc = kurer_own_certificate(k, whoami_cert, &w);
    if (rc != 0 && rc != KURER_ESTATE) {
        refuse(rc, "cannot read this device's certificate: %s", kurer_strerror(rc));
        kurer_close(k);
        return rc;
    }
    if (g_json) {
        printf("{\"ok\":true,\"command\":\"whoami\",\"user\":");
        json_str(stdout, kurer_own_user(k));
        printf(",\"device\":%u,\"identity_key\":\"%s\",\"key_fingerprint\":\"%s\","
               "\"noise_key\":\"%s\",\"enrolled\":%s,\"certificate\":%s,\"relay\":",
               kurer_own_device(k), idk, fp, nk, w.have ? "true" : "false",
               w.have ? w.line : "null");
        json_str(stdout, kurer_relay_address(k));
        printf("}\n");
    } else {
        printf("user             %s\n", kurer_own_user(k));
        printf("device           %u\n", kurer_own_device(k));
        printf("identity key     %s\nkey fingerprint  %s\nnoise key        %s\n", idk, fp, nk);
        if (w.have)
            printf("certificate      %s\n", w.line);
        else
            printf("certificate      none: not enrolled yet (give %s to the administrator, then "
                   "kurer import the chain)\n",
                   kurer_csr_path(k));
        printf("relay            %s\n", kurer_relay_address(k));
    }
    kurer_close(k);
    return 0;
}

/* ------------------------------------------------------------------------ import */

static const char help_import[] =
    "usage: kurer import --home H FILE... [--json]\n"
    "\n"
    "Imports files from the administrator, each checked against the pinned root:\n"
    "  - this device's issued chain (kurer-admin issue --out), or its device certificate and\n"
    "    the authority certificate as two files: the keys must be this device's;\n"
    "  - a peer device's chain: kept as that device's certificate;\n"
    "  - a revocation list (an authority's crl): effective at once.\n"
    "After importing this device's own chain it connects to the relay once (up to 30 s), which\n"
    "uploads its prekeys: until a device has connected, nobody can send to it. It says whether\n"
    "that worked; if not, run kurer recv once the relay is reachable.\n"
    "--json: {\"ok\":true,\"imported\":[{\"file\",\"kind\",\"result\",...}],\"enrolled\":...,\n"
    "\"connected\":...}; kind is own_chain, own_certificate, peer_chain or revocation_list.\n";

static int is_enrolled_cb(void *ud, const kurer_peer_device *d)
{
    (void)ud;
    (void)d;
    return 0;
}

static int is_enrolled(kurer *k)
{
    return kurer_own_certificate(k, is_enrolled_cb, NULL) != KURER_ESTATE;
}

/* One imported file, for --json's "imported" array. */
static void import_row(FILE *j, int *n, const char *file, const char *kind, const char *result,
                       const char *user, uint32_t device)
{
    if (j == NULL)
        return;
    fprintf(j, "%s{\"file\":", (*n)++ ? "," : "");
    json_str(j, file);
    fprintf(j, ",\"kind\":\"%s\",\"result\":\"%s\"", kind, result);
    if (user != NULL) {
        fprintf(j, ",\"user\":");
        json_str(j, user);
        fprintf(j, ",\"device\":%u", device);
    }
    fputc('}', j);
}

static int cmd_import(int argc, char **argv)
{
    static const optdef defs[] = {{"help", 0}, {"json", 0}, {"home", 1}};
    args a;
    const char *home;
    kurer *k = NULL;
    int rc, own = 0, nrows = 0, connected = 0, cerr = 0;
    char *jbuf = NULL;
    size_t jlen = 0;
    FILE *j = NULL;
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, MAX_POS)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_import, stdout);
        return RC_HELP;
    }
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    if (a.npos == 0)
        return usage_error("no file to import");
    uint8_t *data[MAX_POS] = {0};
    size_t len[MAX_POS] = {0};
    for (size_t i = 0; i < a.npos; i++)
        if ((rc = kurer_file_read(a.pos[i], FILE_MAX, &data[i], &len[i])) != 0) {
            rc = refuse(rc, "cannot read %s: %s", a.pos[i], kurer_strerror(rc));
            goto out;
        }
    if ((rc = open_home(home, &k)) != 0)
        goto out;
    if (g_json && (j = open_memstream(&jbuf, &jlen)) == NULL) {
        rc = refuse(KURER_ENOMEM, "out of memory");
        goto out;
    }
    /* Two certificates: device and authority. */
    if (a.npos == 2) {
        kurer_cert *c = malloc(sizeof(*c));
        int two = c != NULL && kurer_cert_decode(data[0], len[0], c) == 0 &&
                  kurer_cert_decode(data[1], len[1], c) == 0;
        free(c);
        if (two) {
            rc = kurer_import_certs(k, data[0], len[0], data[1], len[1]);
            if (rc != 0) {
                rc = refuse(rc, "%s is not this device's certificate: %s", a.pos[0],
                            kurer_strerror(rc));
            } else {
                own = 1;
                import_row(j, &nrows, a.pos[0], "own_certificate", "imported", NULL, 0);
                if (!g_json)
                    printf("imported this device's certificate\n");
            }
            goto connect;
        }
    }
    for (size_t i = 0; i < a.npos && rc == 0; i++) {
        kurer_chain *ch = malloc(sizeof(*ch));
        int is_chain = ch != NULL && kurer_chain_decode(data[i], len[i], ch) == 0;
        char peer[KURER_SUBJECT_MAX + 1] = "";
        uint32_t peer_dev = 0;
        if (is_chain) {
            snprintf(peer, sizeof(peer), "%s", ch->certs[0].body.subject);
            peer_dev = ch->certs[0].body.device_id;
        }
        free(ch);
        if (is_chain) {
            rc = kurer_import_chain(k, data[i], len[i]);
            if (rc == KURER_ESUBJECT) {
                rc = kurer_add_peer(k, data[i], len[i]);
                if (rc == 0) {
                    import_row(j, &nrows, a.pos[i], "peer_chain", "imported", peer, peer_dev);
                    if (!g_json)
                        printf("%s: kept as a peer certificate (%s device %u)\n", a.pos[i], peer,
                               peer_dev);
                    if (!g_json && !is_enrolled(k))
                        printf("note: this device itself (%s device %u) is still not enrolled: "
                               "import its own chain, issued for %s\n",
                               kurer_own_user(k), kurer_own_device(k), kurer_csr_path(k));
                }
            } else if (rc == 0) {
                own = 1;
                import_row(j, &nrows, a.pos[i], "own_chain", "imported", peer, peer_dev);
                if (!g_json)
                    printf("%s: imported this device's certificate chain\n", a.pos[i]);
            }
            if (rc == KURER_EKEYMISMATCH)
                rc = refuse(rc, "%s names this device but not its keys", a.pos[i]);
            else if (rc != 0)
                rc = refuse(rc, "%s refused: %s", a.pos[i], kurer_strerror(rc));
            continue;
        }
        kurer_crl crl;
        if (kurer_crl_decode(data[i], len[i], &crl) == 0) {
            char issuer[sizeof(crl.issuer)];
            snprintf(issuer, sizeof(issuer), "%s", crl.issuer);
            kurer_crl_release(&crl);
            rc = kurer_add_revocations(k, data[i], len[i]);
            if (rc == KURER_ESTALE) {
                rc = 0;
                import_row(j, &nrows, a.pos[i], "revocation_list", "not_newer", NULL, 0);
                if (!g_json)
                    printf("%s: not newer than the list held\n", a.pos[i]);
            } else if (rc != 0) {
                rc = refuse(rc, "%s refused: %s", a.pos[i], kurer_strerror(rc));
            } else {
                import_row(j, &nrows, a.pos[i], "revocation_list", "imported", NULL, 0);
                if (!g_json)
                    printf("%s: revocation list imported (%s)\n", a.pos[i], issuer);
            }
            continue;
        }
        rc = refuse(KURER_EMALFORMED,
                    "%s is not a certificate chain, certificate or revocation list", a.pos[i]);
    }
connect:;
    /* Newly enrolled: connect once, so that the relay lists this device and holds its
     * prekeys. Until a device has connected, nobody can send to it. */
    if (rc == 0 && own) {
        cerr = kurer_connect(k, NET_TIMEOUT * 1000);
        connected = cerr == 0;
        if (connected) {
            if (!g_json)
                printf("connected to relay %s: prekeys uploaded; others can now send to you\n",
                       g_relay);
        } else {
            net_error(cerr, "could not connect");
            fprintf(stderr,
                    "kurer: %s. Enrolled, but nobody can send to this device until it has "
                    "connected once: run 'kurer recv --home %s' when the relay is reachable\n",
                    g_err, home);
            g_err[0] = '\0';
        }
        kurer_disconnect(k);
    }
out:
    if (j != NULL)
        fclose(j);
    if (rc == 0 && g_json) {
        printf("{\"ok\":true,\"command\":\"import\",\"imported\":[%s],\"enrolled\":%s",
               jbuf != NULL ? jbuf : "", is_enrolled(k) ? "true" : "false");
        if (own)
            printf(",\"connected\":%s%s%s%s", connected ? "true" : "false",
                   connected ? "" : ",\"connect_error\":\"", connected ? "" : kurer_err_name(cerr),
                   connected ? "" : "\"");
        printf("}\n");
    }
    free(jbuf);
    for (size_t i = 0; i < a.npos; i++)
        free(data[i]);
    kurer_close(k);
    return rc;
}

/* ------------------------------------------------------------------------ messages */

typedef struct show_ctx {
    const char *me;
    int hold; /* KURER_TEST_HOLD=committed: stop after the first message is committed */
} show_ctx;

static const char *state_name(kurer_message_state s)
{
    switch (s) {
    case KURER_MESSAGE_RECEIVED:
        return "received";
    case KURER_MESSAGE_QUARANTINED:
        return "quarantined";
    case KURER_MESSAGE_PENDING:
        return "pending";
    case KURER_MESSAGE_SENT:
        return "sent";
    default:
        return "failed";
    }
}

static void show_message(const char *me, const kurer_message *m)
{
    char t[64];
    fmt_ms(t, sizeof(t), m->sent_at);
    const char *level = kurer_level_name(m->level);
    if (g_json) {
        printf("{\"time\":\"%s\",\"sent_at\":%lld,\"from\":", t, (long long)m->sent_at);
        json_str(stdout, m->outgoing ? me : m->peer);
        if (m->outgoing) {
            printf(",\"to\":");
            json_str(stdout, m->peer);
        } else {
            printf(",\"device\":%u", m->peer_device);
        }
        printf(",\"level\":\"%s\",\"state\":\"%s\"", level, state_name(m->state));
        if (m->state == KURER_MESSAGE_QUARANTINED || m->state == KURER_MESSAGE_FAILED)
            printf(",\"reason\":\"%s\"", kurer_err_name(m->reason));
        if (m->state != KURER_MESSAGE_QUARANTINED) {
            printf(",\"text\":");
            json_str(stdout, m->body);
        }
        printf("}\n");
    } else {
        if (m->outgoing)
            printf("%s %s -> %s [%s] ", t, me, m->peer, level);
        else
            printf("%s %s [%s] ", t, m->peer, level);
        if (m->state == KURER_MESSAGE_QUARANTINED)
            printf("(quarantined: %s; not shown)", kurer_strerror(m->reason));
        else
            line_str(stdout, m->body);
        if (m->outgoing && m->state != KURER_MESSAGE_SENT)
            printf(" (%s)", state_name(m->state));
        printf("\n");
    }
    fflush(stdout);
}

static void on_message(void *ud, const kurer_message *m)
{
    show_ctx *c = ud;
    show_message(c->me, m);
    if (c->hold) {
        /* Test-only (KURER_TEST_HOLD=committed): the message is committed, the relay has not
         * been told. A test kills the process here. */
        fprintf(stderr, "kurer: holding after commit (test)\n");
        for (;;)
            pause();
    }
}

static void on_refused(void *ud, const char *from, uint32_t device_id, int err)
{
    (void)ud;
    fprintf(stderr, "kurer: dropped a message from %s device %u: %s\n", from, device_id,
            kurer_strerror(err));
}

/* ------------------------------------------------------------------------ send */

/* Message text: valid UTF-8, not empty, at most KURER_TEXT_MAX bytes. */
static int text_check(const char *t)
{
    size_t n = strlen(t);
    if (n == 0)
        return refuse(KURER_EINVAL, "the message text is empty");
    if (n > KURER_TEXT_MAX)
        return refuse(KURER_ELIMIT, "message too long: at most %d bytes (this one has %zu)",
                      KURER_TEXT_MAX, n);
    for (const unsigned char *p = (const unsigned char *)t; *p;) {
        uint32_t cp;
        size_t k = utf8_next(p, &cp);
        if (k == 0)
            return refuse(KURER_EMALFORMED, "message text is not valid UTF-8");
        p += k;
    }
    return 0;
}

static const char help_send[] =
    "usage: kurer send --home H --to USER@AUTH [--level LEVEL] [--timeout S] [--json] TEXT\n"
    "\n"
    "Sends TEXT to every device of USER@AUTH (and a sync copy to your own other devices). Exits\n"
    "0 only once the relay has accepted it for every device; 1 with the reason if it was not\n"
    "queued (naming the certificate that refuses a classification level); 3 if it is queued\n"
    "in the outbox but the relay has not accepted it yet (cannot be reached, timed out): it\n"
    "will be sent on the next connection (kurer recv or kurer send); do not send it again.\n"
    "TEXT must be valid UTF-8, not empty, and at most " KURER_TEXT_MAX_S " bytes. Sending to\n"
    "yourself is refused: your other devices get sync copies of what you send.\n"
    "\n"
    "  --to USER@AUTH   the recipient\n"
    "  --level LEVEL    UNCLASSIFIED (default), RESTRICTED or CONFIDENTIAL\n"
    "  --timeout S      give up after S seconds (default 30)\n"
    "  --json           print the result as one JSON object\n"
    "\n"
    "Test only: with " HOLD_ENV "=queued the command stops for good after the message is\n"
    "committed to the outbox and before anything is sent (crash tests kill it there); with\n"
    "" HOLD_ENV "=queued-stop it stops itself there (SIGSTOP) and goes on after SIGCONT.\n";

static int cmd_send(int argc, char **argv)
{
    static const optdef defs[] = {{"help", 0}, {"json", 0},  {"home", 1},
                                  {"to", 1},   {"level", 1}, {"timeout", 1}};
    args a;
    const char *home, *to;
    int level = KURER_LEVEL_UNCLASSIFIED, timeout = NET_TIMEOUT, rc;
    kurer *k = NULL;
    kurer_refusal why;
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 2)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_send, stdout);
        return RC_HELP;
    }
    if ((rc = need(&a, "home", &home)) || (rc = opt_seconds(&a, "timeout", NET_TIMEOUT, &timeout)))
        return rc;
    to = opt(&a, "to");
    if (to == NULL || *to == '\0')
        return usage_error("missing --to USER@AUTH%s",
                           a.npos >= 1 && kurer_user_check(a.pos[0]) == 0
                               ? " (the recipient goes after --to; the text is the one argument)"
                               : "");
    if (opt(&a, "level") != NULL && (rc = parse_level(opt(&a, "level"), &level)) != 0)
        return rc;
    if (a.npos != 1)
        return usage_error("send needs the text of the message as one argument (quote it)");
    if (kurer_user_check(to) != 0)
        return usage_error("--to '%s' is not USER@AUTHORITY", to);
    if ((rc = text_check(a.pos[0])) != 0)
        return rc;
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    if (strcmp(to, kurer_own_user(k)) == 0) {
        kurer_close(k);
        return refuse(KURER_EINVAL,
                      "you cannot send to yourself; your other devices get sync copies");
    }
    if (!is_enrolled(k)) {
        kurer_close(k);
        return refuse(KURER_ESTATE,
                      "this device is not enrolled yet: import your certificate with kurer import");
    }
    memset(&why, 0, sizeof(why));
    const char *hold = getenv(HOLD_ENV);
    int64_t id = 0;
    rc = kurer_queue(k, to, level, a.pos[0], timeout * 1000, &why, &id);
    if (rc == 0 && hold != NULL && strcmp(hold, "queued") == 0) {
        printf("queued\n");
        fflush(stdout);
        fprintf(stderr, "kurer: holding after the outbox commit (test)\n");
        for (;;)
            pause();
    }
    if (rc == 0 && hold != NULL && strcmp(hold, "queued-stop") == 0) {
        /* Test only: stopped after the commit (SIGSTOP) so that a test can take the relay
         * away before the send; SIGCONT goes on. */
        printf("queued\n");
        fflush(stdout);
        raise(SIGSTOP);
    }
    int queued = rc == 0;
    if (rc == 0)
        rc = kurer_send_queued(k, id, timeout * 1000, &why);
    if (rc != 0) {
        if (queued && transport_error(rc)) {
            /* Committed to the outbox: it goes out with the next connection. Saying "not
             * sent" here makes people send it again. */
            net_error(rc, "not yet accepted by the relay");
            if (g_json) {
                printf("{\"ok\":false,\"command\":\"send\",\"queued\":true,\"to\":");
                json_str(stdout, to);
                printf(",\"level\":\"%s\",\"error\":", kurer_level_name(level));
                json_str(stdout, g_err);
                printf(",\"code\":\"%s\"}\n", kurer_err_name(rc));
            }
            fprintf(stderr,
                    "kurer: queued, not yet accepted by the relay (%s): it will be sent on the "
                    "next connection (kurer recv or kurer send)\n",
                    g_err);
            g_err[0] = '\0';
            rc = RC_QUEUED;
        } else if (explain(rc, &why, level, to) == 0) {
            net_error(rc, "not sent");
        }
    } else if (g_json) {
        printf("{\"ok\":true,\"command\":\"send\",\"to\":");
        json_str(stdout, to);
        printf(",\"level\":\"%s\"}\n", kurer_level_name(level));
    } else {
        printf("sent to %s [%s]\n", to, kurer_level_name(level));
    }
    kurer_disconnect(k);
    kurer_close(k);
    return rc;
}

/* ------------------------------------------------------------------------ recv */

static const char help_recv[] =
    "usage: kurer recv --home H [--wait SECONDS] [--json]\n"
    "\n"
    "Connects, receives every new message and prints one line each:\n"
    "  <time> <from> [<LEVEL>] <text>\n"
    "(a quarantined message, above your clearance or the sender's, is shown as quarantined with\n"
    "its level, never its text; --json prints JSON lines: one object per message, one per\n"
    "line). Without --wait (or with --wait 0) it exits 0 when the relay's queue is empty;\n"
    "with --wait SECONDS it keeps receiving for that long, and reconnects (backoff 0.5 s\n"
    "doubling to 10 s) whenever the relay restarts or the connection drops, until the wait\n"
    "ends. While it waits it holds the home: other kurer commands on it are refused. Anything\n"
    "left in the outbox is sent too.\n"
    "\n"
    "Test only: with " HOLD_ENV "=committed the command stops for good after the first\n"
    "message is committed and printed, before the relay is told (crash tests kill it there).\n";

/* recv --wait: receives for wait seconds; a connection that cannot be made or is lost (the
 * relay restarts, the network drops, another process took over the device) is tried again
 * with backoff (0.5 s doubling to 10 s) until the wait ends. 0 if the last attempt was
 * connected at the end of the wait. */
static int recv_wait(kurer *k, int wait)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t end = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000 + (int64_t)wait * 1000;
    int64_t backoff = 500;
    int rc = 0, said = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t left = end - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (left <= 0)
            return rc;
        rc = kurer_poll(k, (int)left, 0);
        if (rc == 0 && kurer_connected(k))
            return 0; /* the wait ended connected */
        if (rc == 0)
            rc = KURER_ECLOSED;
        if (!transport_error(rc))
            return rc;
        kurer_disconnect(k);
        if (kurer_connected(k) == 0 && !said) {
            net_error(rc, "connection to the relay lost");
            fprintf(stderr, "kurer: %s; reconnecting until the wait ends\n", g_err);
            g_err[0] = '\0';
            said = 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = end - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        int64_t nap = backoff < left ? backoff : left;
        if (nap > 0) {
            struct timespec d = {(time_t)(nap / 1000), (long)(nap % 1000) * 1000000};
            nanosleep(&d, NULL);
        }
        backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
    }
}

static int cmd_recv(int argc, char **argv)
{
    static const optdef defs[] = {{"help", 0}, {"json", 0}, {"home", 1}, {"wait", 1}};
    args a;
    const char *home;
    int wait = 0, rc;
    kurer *k = NULL;
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_recv, stdout);
        return RC_HELP;
    }
    if ((rc = need(&a, "home", &home)) || (rc = opt_seconds(&a, "wait", 0, &wait)))
        return rc;
    if (wait > 0)
        g_lock_as = "recv --wait"; /* others are refused at once, not made to wait */
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    const char *hold = getenv(HOLD_ENV);
    show_ctx c = {kurer_own_user(k), hold != NULL && strcmp(hold, "committed") == 0};
    kurer_events ev = {on_message, on_refused, &c};
    kurer_set_events(k, &ev);
    if (wait > 0)
        rc = recv_wait(k, wait);
    else /* no --wait, or --wait 0: what is queued now */
        rc = kurer_poll(k, NET_TIMEOUT * 1000, KURER_POLL_UNTIL_EMPTY);
    if (rc != 0)
        net_error(rc, "receiving stopped");
    kurer_disconnect(k);
    kurer_close(k);
    return rc;
}

/* ------------------------------------------------------------------------ history */

static const char help_history[] =
    "usage: kurer history --home H [--with USER@AUTH] [--json]\n"
    "\n"
    "Prints the stored messages, oldest first, each with its level (quarantined ones without\n"
    "their text). Outgoing messages show where they went and, until the relay accepted them,\n"
    "their state (pending, failed). --json prints JSON lines: one object per message, one per\n"
    "line (time, sent_at, from, device or to, level, state, text, reason), not one array.\n";

static int history_row(void *ud, const kurer_message *m)
{
    show_message(ud, m);
    return 0;
}

static int cmd_history(int argc, char **argv)
{
    static const optdef defs[] = {{"help", 0}, {"json", 0}, {"home", 1}, {"with", 1}};
    args a;
    const char *home, *with;
    kurer *k = NULL;
    int rc;
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_history, stdout);
        return RC_HELP;
    }
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    with = opt(&a, "with");
    if (with != NULL && kurer_user_check(with) != 0)
        return usage_error("--with '%s' is not USER@AUTHORITY", with);
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    rc = kurer_history(k, with, history_row, (void *)(uintptr_t)kurer_own_user(k));
    if (rc != 0)
        refuse(rc, "cannot read the history: %s", kurer_strerror(rc));
    kurer_close(k);
    return rc;
}

/* ------------------------------------------------------------------------ verify */

static const char help_verify[] =
    "usage: kurer verify --home H USER@AUTH [--offline] [--json]\n"
    "\n"
    "Shows, for every device of USER@AUTH, the safety number to compare with that person and\n"
    "the device certificate (serial, clearance, authority, validity, status). The device list\n"
    "is refreshed from the relay's directory first (each chain verified against the root and\n"
    "the revocation lists); --offline shows what the home holds.\n"
    "\n"
    "A revocation list (the authority's, or the root's list of authorities) past its next\n"
    "update is shown as a warning: for 7 days the device stays valid, then it is refused\n"
    "(status ECRLSTALE, 'revocation list is past its next update') until the relay hands out\n"
    "a newer list. JSON: \"crl_stale\" and \"crl_next_update\".\n";

typedef struct verify_ctx {
    kurer *k;
    int n;
} verify_ctx;

static int verify_row(void *ud, const kurer_peer_device *d)
{
    verify_ctx *v = ud;
    char fp[64] = "", nb[64], na[64], stale[256], sd[64];
    int frc = kurer_fingerprint(v->k, d->user, d->device_id, fp);
    stale_text(d, stale, sizeof(stale));
    kurer_time_format(sd, sizeof(sd), d->crl_stale_since);
    kurer_time_format(nb, sizeof(nb), d->not_before);
    kurer_time_format(na, sizeof(na), d->not_after);
    if (g_json) {
        printf("%s{\"device\":%u,\"fingerprint\":\"%s\",\"serial\":%llu,\"clearance\":\"%s\","
               "\"authority\":",
               v->n ? "," : "", d->device_id, frc == 0 ? fp : "", (unsigned long long)d->serial,
               d->clearance ? kurer_level_name(d->clearance) : "");
        json_str(stdout, d->authority);
        printf(",\"not_before\":\"%s\",\"not_after\":\"%s\",\"certificate\":\"%s\","
               "\"status\":\"%s\",\"crl_stale\":%s,\"crl_next_update\":\"%s\"}",
               nb, na, d->cert_fingerprint, d->status == 0 ? "valid" : kurer_err_name(d->status),
               stale[0] ? "true" : "false", stale[0] ? sd : "");
    } else {
        printf("device %u\n", d->device_id);
        if (frc == 0) {
            printf("  safety number  ");
            for (int i = 0; i < 60; i += 5)
                printf("%.5s%s", fp + i, i == 25 ? "\n                 " : " ");
            printf("\n");
        }
        printf("  certificate    serial %llu, authority %s, %s\n", (unsigned long long)d->serial,
               d->authority, d->status == 0 ? "valid" : kurer_strerror(d->status));
        if (d->clearance)
            printf("  clearance      %s\n", kurer_level_name(d->clearance));
        printf("  valid          %s to %s\n  fingerprint    %s\n", nb, na, d->cert_fingerprint);
        if (stale[0])
            printf("  warning        %s: %s\n", stale,
                   d->status == 0 ? "revocations made since may be missing"
                                  : "refused until a newer list arrives");
    }
    v->n++;
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    static const optdef defs[] = {{"help", 0}, {"json", 0}, {"home", 1}, {"offline", 0}};
    args a;
    const char *home;
    kurer *k = NULL;
    int rc;
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 1)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_verify, stdout);
        return RC_HELP;
    }
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    if (a.npos != 1 || kurer_user_check(a.pos[0]) != 0)
        return usage_error("verify needs one USER@AUTHORITY");
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    if (!flag(&a, "offline")) {
        rc = kurer_refresh(k, a.pos[0], NET_TIMEOUT * 1000, NULL);
        if (rc != 0) {
            net_error(rc, "could not ask the relay");
            fprintf(stderr, "kurer: %s; showing what this home holds\n", g_err);
            g_err[0] = '\0';
        }
        kurer_disconnect(k);
    }
    verify_ctx v = {k, 0};
    if (g_json) {
        printf("{\"ok\":true,\"command\":\"verify\",\"user\":");
        json_str(stdout, a.pos[0]);
        printf(",\"devices\":[");
    } else {
        printf("%s\n", a.pos[0]);
    }
    rc = kurer_peer_devices(k, a.pos[0], verify_row, &v);
    if (g_json)
        printf("]}\n");
    if (rc == 0 && v.n == 0)
        rc = refuse(KURER_ENOTFOUND, "no device of %s is known", a.pos[0]);
    else if (rc != 0)
        refuse(rc, "cannot list the devices: %s", kurer_strerror(rc));
    kurer_close(k);
    return rc;
}

/* ------------------------------------------------------------------------ relay */

static const char help_relay[] =
    "usage: kurer relay --home H [--relay HOST:PORT] [--relay-key KEY] [--json]\n"
    "\n"
    "Shows the relay this home connects to or, with --relay and/or --relay-key, changes it (the\n"
    "passphrase is needed either way). HOST may be an IP address, [IPv6] or a host name, kept as\n"
    "typed and resolved at every connect, so a relay that moves keeps working. KEY is 64 hex\n"
    "digits or the path of the relay's relay.pub.\n";

static int cmd_relay(int argc, char **argv)
{
    static const optdef defs[] = {
        {"help", 0}, {"json", 0}, {"home", 1}, {"relay", 1}, {"relay-key", 1}};
    args a;
    const char *home, *relay, *key_s;
    kurer *k = NULL;
    uint8_t key[32];
    int rc;
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_relay, stdout);
        return RC_HELP;
    }
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    relay = opt(&a, "relay");
    key_s = opt(&a, "relay-key");
    if ((relay != NULL || key_s != NULL) &&
        (rc = relay_args(relay != NULL ? relay : "0.0.0.0:1", key_s, key)) != 0)
        return rc;
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    int changed = relay != NULL || key_s != NULL;
    if (changed) {
        rc = kurer_set_relay(k, relay != NULL ? relay : kurer_relay_address(k),
                             key_s != NULL ? key : NULL);
        if (rc != 0) {
            refuse(rc, "cannot change the relay: %s", kurer_strerror(rc));
            kurer_close(k);
            return rc;
        }
    }
    if (g_json) {
        printf("{\"ok\":true,\"command\":\"relay\",\"changed\":%s,\"relay\":",
               changed ? "true" : "false");
        json_str(stdout, kurer_relay_address(k));
        printf("}\n");
    } else {
        printf("%s%s\n", changed ? "relay set to " : "relay ", kurer_relay_address(k));
    }
    kurer_close(k);
    return 0;
}

/* ------------------------------------------------------------------------ passwd */

static const char help_passwd[] =
    "usage: kurer passwd --home H [--kdf-min] [--json]\n"
    "\n"
    "Changes the passphrase of the home: the store is re-encrypted under the new one (crash-safe:\n"
    "afterwards exactly one of the two opens it). The current passphrase comes from\n"
    "" PASS_ENV ", the new one from " NEW_PASS_ENV " (or no-echo prompts, the new one twice).\n"
    "\n"
    "  --kdf-min   accepted for symmetry with init; the home keeps its Argon2id parameters\n";

static int cmd_passwd(int argc, char **argv)
{
    static const optdef defs[] = {{"help", 0}, {"json", 0}, {"home", 1}, {"kdf-min", 0}};
    args a;
    const char *home;
    kurer *k = NULL;
    kurer_secret pw;
    int rc;
    if ((rc = args_parse(&a, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, 0)) != 0)
        return rc;
    if (flag(&a, "help")) {
        fputs(help_passwd, stdout);
        return RC_HELP;
    }
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof(what), "the device home %s (new)", home);
    if ((rc = get_passphrase(NEW_PASS_ENV, what, 1, &pw)) == 0) {
        rc = kurer_passwd(k, pw.p, pw.n, NULL);
        kurer_secret_free(&pw);
        if (rc != 0)
            refuse(rc, "passphrase not changed: %s", kurer_strerror(rc));
        else if (g_json)
            printf("{\"ok\":true,\"command\":\"passwd\"}\n");
        else
            printf("passphrase changed\n");
    }
    kurer_close(k);
    return rc;
}

/* ------------------------------------------------------------------------ main */

static const char help_main[] =
    "usage: kurer COMMAND --home H [OPTIONS]\n"
    "\n"
    "The Kurér command-line client: one device home per folder.\n"
    "\n"
    "commands:\n"
    "  init      create a home: keys, encrypted store, certificate request\n"
    "  import    import the issued certificate chain (or a peer's chain, or a revocation list)\n"
    "  send      send a message with a classification level\n"
    "  recv      receive new messages\n"
    "  history   print stored messages\n"
    "  verify    safety numbers and certificates of a user's devices\n"
    "  passwd    change the home's passphrase\n"
    "  relay     show or change the home's relay address and key\n"
    "  whoami    this device: user, keys, certificate, relay\n"
    "\n"
    "Every command takes --home, --help and --json. The passphrase comes from " PASS_ENV "\n"
    "or a no-echo prompt on the terminal; it is never printed or logged. KURER_LOG_LEVEL\n"
    "(debug, info, warn, error; default error) sets the library's log on stderr.\n"
    "Exit status: 0 success, 1 refused or failed (reason on stderr), 2 usage error,\n"
    "3 (send) queued in the outbox, not yet accepted by the relay: it goes out with the next\n"
    "kurer recv or kurer send on this home (do not send it again).\n"
    "\n"
    "One process per home: every command locks H/.lock. A command waits up to 30 s\n"
    "(" LOCK_ENV "=SECONDS) for another one on the same home, and is refused at once while\n"
    "`kurer recv --wait` holds it.\n";

static int emit(int rc)
{
    if (rc == RC_HELP)
        return 0;
    if (rc == RC_QUEUED) {
        fflush(stdout);
        return EXIT_QUEUED;
    }
    if (rc == 0)
        return fflush(stdout) == 0 ? 0 : EXIT_REFUSED;
    if (g_err[0] == '\0')
        snprintf(g_err, sizeof(g_err), "%s", kurer_strerror(rc));
    fprintf(stderr, "kurer: %s\n", g_err);
    if (rc == RC_USAGE)
        fprintf(stderr, "kurer: try 'kurer %s --help'\n", g_command);
    if (g_json) {
        printf("{\"ok\":false,\"command\":\"%s\",\"error\":", g_command);
        json_str(stdout, g_err);
        printf(",\"code\":\"%s\"}\n",
               rc == RC_USAGE ? "USAGE" : kurer_err_name(g_err_code ? g_err_code : rc));
    }
    fflush(stdout);
    return rc == RC_USAGE ? EXIT_USAGE : EXIT_REFUSED;
}

int main(int argc, char **argv)
{
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(help_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("kurer %s\n", KURER_VERSION);
        return 0;
    }
    kurer_log_level lv = KURER_LOG_ERROR;
    const char *ls = getenv("KURER_LOG_LEVEL");
    if (ls != NULL && kurer_log_level_parse(ls, &lv) != 0)
        lv = KURER_LOG_ERROR;
    kurer_log_set(stderr, lv);
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            g_json = 1;
    int rc = kurer_crypto_init();
    if (rc != 0) {
        fprintf(stderr, "kurer: cannot start the crypto library: %s\n", kurer_strerror(rc));
        return EXIT_REFUSED;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"init", cmd_init},     {"import", cmd_import},   {"send", cmd_send},
                {"recv", cmd_recv},     {"history", cmd_history}, {"verify", cmd_verify},
                {"passwd", cmd_passwd}, {"relay", cmd_relay},     {"whoami", cmd_whoami}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0) {
            g_command = cmds[i].name;
            return emit(cmds[i].fn(argc - 2, argv + 2));
        }
    fprintf(stderr, "kurer: unknown command '%s'\nkurer: try 'kurer --help'\n", argv[1]);
    return EXIT_USAGE;
}
