/* kurer-admin invite: a one-time invitation code for online enrolment (docs/admin.md §3a), and
 * the authority's records of its invitations (AUTHDIR/invites/ID: never the code, only the key
 * that checks a request's binding to it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/enrol_call.h"
#include "kurer/invite.h"
#include "kurer/net.h"
#include "kurer/qr.h"
#include "kurer/util.h"

const char help_invite[] =
    "usage: kurer-admin invite --authority AUTHDIR --user USER@ID --device N --relay HOST:PORT\n"
    "                          --relay-key KEY [--expires DURATION] [--qr-png PATH [--force]]\n"
    "                          [--passphrase-env VAR] [--json]\n"
    "\n"
    "Makes a one-time invitation code for online enrolment: 80 random bits as 16 characters\n"
    "and a check character (7QXM-2PA9-RTDH-4WEZ-K), for one device of one user of this\n"
    "authority. The relay gets, signed by the authority key, what it needs to check the code\n"
    "(a verifier derived from it, never the code), the user, device and expiry; AUTHDIR/invites/\n"
    "keeps the key that binds a request to the code (not the code). Give the code to the user\n"
    "(in person, by phone, or as the QR code printed on a terminal); they run kurer init\n"
    "--invite CODE. Then kurer-admin pending lists the request and approve issues it.\n"
    "\n"
    "  --authority AUTHDIR   the authority's directory\n"
    "  --user USER@ID        the user (of this authority) the code is for\n"
    "  --device N            the device id the request must have\n"
    "  --relay HOST:PORT     the relay that holds the approval queue\n"
    "  --relay-key KEY       its public key: 64 hex digits, or the path of relay.pub\n"
    "  --expires DURATION    how long the code is good for: N with s, m, h or d (default 24h,\n"
    "                        at most 30d)\n"
    "  --qr-png PATH         also write the code's QR code as PNG (mode 0600: it is the\n"
    "                        code; a symbolic link at PATH is refused)\n"
    "  --force               replace an existing --qr-png file\n"
    "  --passphrase-env VAR  the authority key's passphrase (default " DEFAULT_PASS ")\n"
    "  --json                print the result as one JSON object (with the code)\n";

#define F_INVITES       "invites"
#define EXPIRES_DEFAULT (24 * 3600)
#define EXPIRES_MAX     (30 * 86400)
#define ENROL_TIMEOUT   15000

/* "24h" -> seconds (1..30 days). */
static int parse_duration(const char *s, int64_t *out)
{
    static const struct {
        char c;
        int64_t mult;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    size_t n = strlen(s);
    uint64_t v;
    char num[24];
    if (n < 2 || n >= sizeof(num))
        return KURER_EINVAL;
    memcpy(num, s, n - 1);
    num[n - 1] = '\0';
    if (kurer_parse_u64(num, EXPIRES_MAX, &v) != 0 || v == 0)
        return KURER_EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (s[n - 1] == units[i].c && (int64_t)v * units[i].mult <= EXPIRES_MAX) {
            *out = (int64_t)v * units[i].mult;
            return 0;
        }
    return KURER_EINVAL;
}

static int record_path(const issuer *is, const uint8_t id[KURER_ENROL_ID_LEN], char *out,
                       const char *ext)
{
    char dir[PATH_MAX_LEN], name[2 * KURER_ENROL_ID_LEN + 16];
    int rc;
    if ((rc = join(dir, is->dir, F_INVITES)) != 0)
        return rc;
    kurer_hex_encode(name, id, KURER_ENROL_ID_LEN);
    strcat(name, ext);
    return join(out, dir, name);
}

int invite_record_write(const issuer *is, const invite_record *r)
{
    char dir[PATH_MAX_LEN], path[PATH_MAX_LEN], key[65], text[512];
    int rc;
    if ((rc = join(dir, is->dir, F_INVITES)) != 0 || (rc = record_path(is, r->id, path, "")) != 0)
        return rc;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return refuse(KURER_EIO, "cannot create %s: %s", dir, strerror(errno));
    kurer_hex_encode(key, r->mac_key, sizeof(r->mac_key));
    int n =
        snprintf(text, sizeof(text),
                 "kurer-invite 1\nuser %s\ndevice %u\ncreated %lld\nexpires %lld\n"
                 "mac-key %s\n",
                 r->user, r->device_id, (long long)r->created_at, (long long)r->expires_at, key);
    kurer_memzero(key, sizeof(key));
    rc = n > 0 && (size_t)n < sizeof(text) ? write_file(path, text, (size_t)n, 0600, 0)
                                           : refuse(KURER_ELIMIT, "invitation record too long");
    kurer_memzero(text, sizeof(text));
    return rc;
}

/* One "name value" line of a record. */
static const char *field(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return p + n + 1;
    return NULL;
}

int invite_record_read(const issuer *is, const uint8_t id[KURER_ENROL_ID_LEN], invite_record *r)
{
    char path[PATH_MAX_LEN], key[65];
    uint8_t *d = NULL;
    size_t n = 0;
    long long created = 0, expires = 0;
    unsigned dev = 0;
    int rc;
    memset(r, 0, sizeof(*r));
    if ((rc = record_path(is, id, path, "")) != 0)
        return rc;
    if (kurer_file_read(path, 4096, &d, &n) != 0)
        return KURER_ENOENT;
    char *t = realloc(d, n + 1);
    if (t == NULL) {
        kurer_memzero(d, n);
        free(d);
        return KURER_ENOMEM;
    }
    t[n] = '\0';
    const char *u = field(t, "user"), *k = field(t, "mac-key");
    rc = KURER_ECORRUPT;
    if (strncmp(t, "kurer-invite 1\n", 15) == 0 && u != NULL && k != NULL &&
        strcspn(u, "\n") <= KURER_SUBJECT_MAX && field(t, "device") != NULL &&
        sscanf(field(t, "device"), "%u", &dev) == 1 && field(t, "created") != NULL &&
        sscanf(field(t, "created"), "%lld", &created) == 1 && field(t, "expires") != NULL &&
        sscanf(field(t, "expires"), "%lld", &expires) == 1 && sscanf(k, "%64s", key) == 1 &&
        kurer_hex_decode(r->mac_key, 32, key) == 0)
        rc = 0;
    if (rc == 0) {
        memcpy(r->user, u, strcspn(u, "\n"));
        r->user[strcspn(u, "\n")] = '\0';
        if (kurer_user_check(r->user) != 0)
            rc = KURER_ECORRUPT;
    }
    memcpy(r->id, id, KURER_ENROL_ID_LEN);
    r->device_id = dev;
    r->created_at = created;
    r->expires_at = expires;
    kurer_memzero(key, sizeof(key));
    kurer_memzero(t, n);
    free(t);
    return rc;
}

int invite_chain_path(const issuer *is, const uint8_t id[KURER_ENROL_ID_LEN], char *out)
{
    return record_path(is, id, out, ".chain");
}

static void invite_remove(const issuer *is, const uint8_t id[KURER_ENROL_ID_LEN])
{
    char path[PATH_MAX_LEN];
    if (record_path(is, id, path, "") == 0)
        (void)unlink(path);
}

/* The relay's verdict on a request, or why there was none, said as a refusal. */
int enrol_relay_refused(const char *relay, int rc, const kurer_enrol_reply *rep, const char *what)
{
    if (rc == KURER_EHANDSHAKE)
        return refuse(rc, "relay %s closed the handshake: wrong --relay-key, or not a Kurér relay",
                      relay);
    if (rc != 0)
        return refuse(rc, "cannot reach relay %s: %s", relay, kurer_strerror(rc));
    if (rep->error != 0)
        return refuse(rep->error, "relay %s refused %s: %s", relay, what,
                      kurer_strerror(rep->error));
    return 0;
}

/* The code for the user: its QR code on a terminal, as PNG with --qr-png. */
static int show_code(const char *code, const kurer_args *a)
{
    const char *png = opt(a, "qr-png");
    int rc;
    if (png != NULL && (rc = kurer_qr_png(code, png, 0600, flag(a, "force"))) != 0)
        return rc == KURER_EEXIST ? refuse(rc, "%s already exists (--force replaces it)", png)
                                  : refuse(rc, "cannot write %s: %s", png, kurer_strerror(rc));
    if (!g_json && isatty(STDOUT_FILENO)) {
        kurer_buf b;
        kurer_buf_init(&b, 1 << 20);
        if (kurer_qr_terminal(code, &b) == 0)
            fwrite(b.data, 1, b.len, stdout);
        kurer_buf_release(&b);
    }
    return 0;
}

typedef struct invite_args {
    const char *dir, *user, *relay, *envname;
    uint32_t device;
    int64_t life;
    uint8_t relay_key[32];
} invite_args;

static int invite_parse(const kurer_args *a, invite_args *x)
{
    const char *dev, *key, *exp = opt(a, "expires");
    uint64_t d = 0;
    int rc;
    if ((rc = need(a, "authority", &x->dir)) || (rc = need(a, "user", &x->user)) ||
        (rc = need(a, "device", &dev)) || (rc = need(a, "relay", &x->relay)) ||
        (rc = need(a, "relay-key", &key)) ||
        (rc = opt_env(a, "passphrase-env", DEFAULT_PASS, &x->envname)))
        return rc;
    if (kurer_parse_u64(dev, KURER_DEVICE_ID_MAX, &d) != 0 || d == 0)
        return usage_error("--device must be a number from 1 to %u", KURER_DEVICE_ID_MAX);
    x->device = (uint32_t)d;
    x->life = EXPIRES_DEFAULT;
    if (exp != NULL && parse_duration(exp, &x->life) != 0)
        return usage_error("--expires %s: a number with s, m, h or d, at most 30d", exp);
    if (kurer_user_check(x->user) != 0)
        return usage_error("--user %s: expected a lower-case user@authority", x->user);
    if (kurer_net_addr_check(x->relay) != 0)
        return usage_error("--relay %s: expected HOST:PORT", x->relay);
    return relay_key_arg(key, x->relay_key);
}

/* The invitation for the relay, signed; the record for AUTHDIR. */
static int invite_make(issuer *is, const invite_args *x, const kurer_invite_keys *keys,
                       kurer_enrol_request *q, invite_record *rec)
{
    kurer_enrol_invitation *i = &q->invite;
    kurer_buf b;
    int64_t now = kurer_time_unix();
    q->request_id = 1;
    q->body = KURER_ENROL_INVITE;
    memcpy(i->id, keys->id, sizeof(i->id));
    memcpy(i->verifier, keys->verifier, sizeof(i->verifier));
    snprintf(i->user, sizeof(i->user), "%s", x->user);
    i->device_id = x->device;
    i->created_at = now;
    i->expires_at = now + x->life;
    kurer_buf_init_fixed(&b, i->authority, sizeof(i->authority));
    int rc = kurer_cert_encode(&is->cert, &b);
    i->authority_len = b.len;
    if (rc == 0)
        rc = kurer_invite_sign(i, &is->key);
    if (rc != 0)
        return refuse(rc, "cannot sign the invitation: %s", kurer_strerror(rc));
    memcpy(rec->id, keys->id, sizeof(rec->id));
    snprintf(rec->user, sizeof(rec->user), "%s", x->user);
    rec->device_id = x->device;
    rec->created_at = i->created_at;
    rec->expires_at = i->expires_at;
    memcpy(rec->mac_key, keys->authority_key, sizeof(rec->mac_key));
    return 0;
}

static void invite_said(const char *code, const invite_record *rec, const invite_args *x)
{
    char t[32], id[2 * KURER_ENROL_ID_LEN + 1];
    kurer_hex_encode(id, rec->id, KURER_ENROL_ID_LEN);
    say("invitation for %s device %u\n", x->user, x->device);
    say("  code     %s\n", code);
    say("  expires  %s\n", fmt_time(t, sizeof(t), rec->expires_at));
    say("  id       %.16s\n", id);
    say("The user runs: kurer init --invite %s --user %s --device %u --relay %s ...\n", code,
        x->user, x->device, x->relay);
    jstr("code", code);
    jstr("user", x->user);
    jint("device_id", x->device);
    jint("expires_at", rec->expires_at);
    jstr("id", id);
}

int cmd_invite(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0},   {"json", 0, 0},  {"authority", V, 0},     {"user", V, 0},
        {"device", V, 0}, {"relay", V, 0}, {"relay-key", V, 0},     {"expires", V, 0},
        {"qr-png", V, 0}, {"force", 0, 0}, {"passphrase-env", V, 0}};
    kurer_args a;
    invite_args x;
    issuer is;
    kurer_invite_keys keys;
    invite_record rec;
    char code[KURER_INVITE_CODE_LEN + 1];
    int lockfd = -1, rc, recorded = 0;
    kurer_enrol_request *q = calloc(1, sizeof(*q));
    kurer_enrol_reply *rep = calloc(1, sizeof(*rep));
    memset(&is, 0, sizeof(is));
    memset(&x, 0, sizeof(x));
    if (q == NULL || rep == NULL) {
        rc = refuse(KURER_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_invite, argc, argv)) != 0 ||
        (rc = invite_parse(&a, &x)) != 0)
        goto out;
    if ((rc = lock_existing(x.dir, &lockfd)) != 0 ||
        (rc = issuer_load(&is, x.dir, 0, 1, kurer_time_unix())) != 0)
        goto out;
    const char *auth = kurer_user_authority(x.user);
    if (auth == NULL || strcmp(auth, is.cert.body.subject) != 0) {
        rc = refuse(KURER_ESUBJECT, "%s is not a user of authority %s", x.user,
                    is.cert.body.subject);
        goto out;
    }
    if ((rc = issuer_open_key(&is, x.envname, NULL)) != 0)
        goto out;
    kurer_invite_new(code, &keys);
    if ((rc = invite_make(&is, &x, &keys, q, &rec)) != 0 ||
        (rc = invite_record_write(&is, &rec)) != 0)
        goto out;
    recorded = 1;
    rc = kurer_enrol_call(x.relay, x.relay_key, q, rep, ENROL_TIMEOUT);
    if ((rc = enrol_relay_refused(x.relay, rc, rep, "the invitation")) != 0)
        goto out;
    recorded = 0; /* the relay has it: the record stays */
    invite_said(code, &rec, &x);
    fflush(stdout);
    rc = show_code(code, &a);
out:
    if (recorded)
        invite_remove(&is, rec.id);
    kurer_memzero(code, sizeof(code));
    kurer_memzero(&keys, sizeof(keys));
    kurer_memzero(&rec, sizeof(rec));
    free(q);
    free(rep);
    issuer_release(&is);
    unlock_dir(&lockfd);
    return rc;
}
