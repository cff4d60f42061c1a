/* kurer: the result of a command (the reason it was refused, the JSON lines, the exit
 * status), the options every command parses alike, and what several commands say. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/net.h"
#include "kurer/text.h"
#include "kurer/util.h"

int g_json;
const char *g_command = "";
const char *g_relay = "the relay";

/* Thread-local: the daemon runs methods on several threads at once (rpc.h). */
static _Thread_local char g_err[1024];
static _Thread_local int g_err_code;

int refuse(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof(g_err), fmt, ap);
    va_end(ap);
    g_err_code = rc;
    return rc;
}

int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof(g_err), fmt, ap);
    va_end(ap);
    g_err_code = KURER_EINVAL;
    return RC_USAGE;
}

int user_arg(const char *what, const char *v)
{
    char lower[KURER_SUBJECT_MAX + 1];
    size_t n = strlen(v);
    if (kurer_user_check(v) == 0)
        return 0;
    if (n < sizeof(lower)) {
        for (size_t i = 0; i <= n; i++)
            lower[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] - 'A' + 'a' : v[i]);
        if (kurer_user_check(lower) == 0)
            return usage_error("%s '%s': user names are lower case (did you mean '%s'?)", what, v,
                               lower);
    }
    return usage_error("%s '%s' is not USER@AUTHORITY", what, v);
}

const char *reason(void)
{
    return g_err;
}

void clear_reason(void)
{
    g_err[0] = '\0';
}

void jline_begin(jline *o)
{
    kurer_buf_init(&o->b, KURER_BUF_HARD_MAX);
    kurer_json_init(&o->j, &o->b);
    kurer_json_begin_object(&o->j);
}

void jline_ok(jline *o)
{
    jline_begin(o);
    kurer_json_kv_bool(&o->j, "ok", 1);
    kurer_json_kv_str(&o->j, "command", g_command);
}

void jline_end(jline *o)
{
    kurer_json_end_object(&o->j);
    if (kurer_json_error(&o->j) == 0 && kurer_buf_put(&o->b, "\n", 1) == 0)
        fwrite(o->b.data, 1, o->b.len, stdout);
    else
        printf("{\"ok\":false,\"command\":\"%s\",\"error\":\"output too large\","
               "\"code\":\"ELIMIT\"}\n",
               g_command);
    fflush(stdout);
    kurer_buf_release(&o->b);
}

int emit(int rc)
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
    /* The reason may quote what a peer, a relay or a file said: never raw on a terminal. */
    fputs("kurer: ", stderr);
    (void)kurer_text_fput_term(stderr, g_err);
    fputc('\n', stderr);
    if (rc == RC_USAGE)
        fprintf(stderr, "kurer: try 'kurer %s --help'\n", g_command);
    if (g_json) {
        jline o;
        jline_begin(&o);
        kurer_json_kv_bool(&o.j, "ok", 0);
        kurer_json_kv_str(&o.j, "command", g_command);
        kurer_json_kv_str(&o.j, "error", g_err);
        kurer_json_kv_str(&o.j, "code",
                          rc == RC_USAGE ? "USAGE" : kurer_err_name(g_err_code ? g_err_code : rc));
        jline_end(&o);
    }
    fflush(stdout);
    return rc == RC_USAGE ? EXIT_USAGE : EXIT_REFUSED;
}

/* ------------------------------------------------------------------------ options */

int command_args(kurer_args *a, const kurer_opt *opts, size_t nopts, size_t min_pos, size_t max_pos,
                 const char *pos_name, const char *help, int argc, char **argv)
{
    const kurer_args_spec spec = {opts, nopts, min_pos, max_pos, pos_name};
    char err[512];
    if (kurer_args_parse(a, &spec, argc, argv, err, sizeof(err)) != 0)
        return usage_error("%s", err);
    if (flag(a, "help")) {
        fputs(help, stdout);
        return RC_HELP;
    }
    return 0;
}

const char *opt(const kurer_args *a, const char *name)
{
    return kurer_args_value(a, name);
}

int flag(const kurer_args *a, const char *name)
{
    return kurer_args_count(a, name) > 0;
}

int need(const kurer_args *a, const char *name, const char **out)
{
    char err[128];
    if (kurer_args_require(a, name, out, err, sizeof(err)) != 0)
        return usage_error("%s", err);
    return 0;
}

int opt_seconds(const kurer_args *a, const char *name, int def, int *out)
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

int parse_level(const char *s, int *out)
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

int get_passphrase(const char *envname, const char *what, int is_new, kurer_secret *out)
{
    char why[700];
    int rc = kurer_secret_passphrase(envname, what, is_new, out, why, sizeof(why));
    return rc != 0 ? refuse(rc, "%s", why) : 0;
}

/* ------------------------------------------------------------------------ what commands say */

const char *fmt_ms(char *buf, size_t n, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "%lld", (long long)ms);
    return buf;
}

int describe(int rc, const kurer_refusal *why, int level, const char *to, char *out, size_t n)
{
    const char *lv = level > 0 ? kurer_level_name(level) : "this level";
    char dev[32] = "";
    out[0] = '\0';
    if (why->device_id != 0)
        snprintf(dev, sizeof(dev), " device %u", why->device_id);
    if (rc == KURER_ECLEARANCE) {
        switch (why->by) {
        case KURER_REFUSED_BY_CEILING:
            snprintf(out, n, "refused: %s is above the root's ceiling (%s)", lv,
                     kurer_level_name(why->limit));
            break;
        case KURER_REFUSED_BY_SENDER:
            snprintf(out, n, "refused: %s is above your own certificate's clearance (%s)", lv,
                     kurer_level_name(why->limit));
            break;
        case KURER_REFUSED_BY_RECIPIENT:
            snprintf(out, n, "refused: %s is above the clearance of %s%s (%s)", lv, why->user, dev,
                     kurer_level_name(why->limit));
            break;
        default:
            snprintf(out, n, "refused: %s is not allowed", lv);
        }
    } else if (rc == KURER_ELIMIT && why->device_id != 0) {
        /* One request carries an envelope per device: the limit shrinks with their number. */
        if (why->limit > 0)
            snprintf(out, n,
                     "message too large for %u devices (the recipient's and your own other "
                     "devices): at most %d bytes of text",
                     why->device_id, why->limit);
        else
            snprintf(out, n, "message for too many devices (%u): no text fits one request",
                     why->device_id);
    } else if (rc == KURER_EUNKNOWNUSER) {
        snprintf(out, n,
                 "unknown user %s: it has no enrolled device that has connected to the relay yet",
                 why->user[0] ? why->user : to);
    } else if (rc == KURER_ECANCELLED) {
        snprintf(out, n, "cancelled");
    } else if (rc == KURER_EKEYMISMATCH && why->by == KURER_REFUSED_BY_SENDER) {
        snprintf(out, n,
                 "this device's keys were replaced (kurer rekey) after it was queued: kurer "
                 "outbox retry sends it anew once the new certificate is imported");
    } else if (why->by == KURER_REFUSED_BY_SENDER) {
        snprintf(out, n, "refused: your own certificate is not valid: %s", kurer_strerror(rc));
    } else if (why->by == KURER_REFUSED_BY_RECIPIENT && rc == KURER_ENOTFOUND &&
               why->device_id != 0) {
        snprintf(out, n, "%s%s has no usable prekeys (it has not connected yet)", why->user, dev);
    } else if (why->by == KURER_REFUSED_BY_RECIPIENT && rc == KURER_EKEYMISMATCH) {
        snprintf(out, n,
                 "refused: the session with %s%s is for another key than its certificate names "
                 "(the peer's key; nothing was sent)",
                 why->user, dev);
    } else if (why->by == KURER_REFUSED_BY_RECIPIENT) {
        snprintf(out, n, "refused: the certificate of %s%s: %s", why->user, dev,
                 kurer_strerror(rc));
    }
    return out[0] != '\0';
}

int explain(int rc, const kurer_refusal *why, int level, const char *to)
{
    char t[512];
    return describe(rc, why, level, to, t, sizeof(t)) ? refuse(rc, "%s", t) : 0;
}

/* The relay refused this device's own handshake: its own certificate or key is at fault, not a
 * peer's and not the relay's (a wrong relay key is EHANDSHAKE). */
static int own_refused(int rc)
{
    if (rc == KURER_EKEYMISMATCH)
        return refuse(rc,
                      "the relay refused this device: its own Noise key does not match its own "
                      "certificate (%s: the imported chain was issued for other keys)",
                      kurer_strerror(rc));
    return refuse(rc, "the relay refused this device's own certificate: %s", kurer_strerror(rc));
}

/* The connection failed or ended: what was committed stays for a later connection. */
int transport_error(int rc)
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

int net_error(int rc, const char *doing)
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
        return own_refused(rc);
    default:
        return refuse(rc, "%s: %s", doing, kurer_strerror(rc));
    }
}

/* --relay HOST:PORT (an IP literal, [IPv6] or a DNS name, kept as typed) and --relay-key (64
 * hex digits, or the path of a copy of the relay's relay.pub). A name that does not resolve
 * now is accepted with a warning: it is resolved again at every connect. */
int relay_args(const char *relay, const char *key_s, uint8_t key[32])
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

/* For a device whose revocation lists are past their next update: "revocation list of mof is
 * past its next update (DATE)" (or "of the root", or both). "" when they are current. */
void stale_text(const kurer_peer_device *d, char *out, size_t n)
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

/* The identity key in hex (as kurer-admin show prints a request's), its BLAKE2b-256
 * fingerprint (as kurer-admin log prints it) and the Noise key in hex. */
void own_keys(const kurer *k, char *idk, char fp[65], char nk[65])
{
    uint8_t h[32];
    kurer_hex_encode(idk, kurer_own_identity_key(k), KURER_IDENTITY_KEY_LEN);
    kurer_hash256(h, kurer_own_identity_key(k), KURER_IDENTITY_KEY_LEN);
    kurer_hex_encode(fp, h, 32);
    kurer_hex_encode(nk, kurer_own_noise_key(k), 32);
}

static int is_enrolled_cb(void *ud, const kurer_peer_device *d)
{
    (void)ud;
    (void)d;
    return 0;
}

int is_enrolled(kurer *k)
{
    return kurer_own_certificate(k, is_enrolled_cb, NULL) != KURER_ESTATE;
}
