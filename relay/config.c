/* Configuration: defaults, the table of keys (with their types, units and ranges), and the
 * configuration file parser (docs/relay.md, "Configuration"). */
#include "relay_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kurer/log.h"
#include "kurer/net.h"
#include "kurer/util.h"

void kurer_relay_config_default(kurer_relay_config *c)
{
    c->max_record = KURER_NET_RECORD_MAX;
    c->max_envelope = KURER_ENVELOPE_CONTENT_MAX;
    c->max_send_envelopes = 256;
    c->mailbox_max = 10000;
    c->handshake_timeout_ms = 10000;
    c->idle_timeout_ms = 120000;
    c->send_rate = 200;
    c->out_cap = (uint64_t)1 << 20;
    c->out_max = (uint64_t)4 << 20;
    c->deliver_batch = 64;
    c->prekeys_low = 20;
    c->max_connections = 0; /* derived from the open-file limit */
    c->max_handshakes = 1024;
    c->commit_delay_us = 1000;
    c->prekeys_max = 1000;
    c->fetch_rate = 20;
    c->ack_hold_us = 50000;
    c->max_preauth_record = KURER_NET_PREAUTH_RECORD;
    c->max_preauth_per_address = 32;
    c->nk_rate = 4;
    c->handshake_rate = 100;
    c->upload_buffer_max = (uint64_t)8 << 20;
    c->lookup_rate = 20;
    c->ping_rate = 2;
    c->mailbox_sender_max = 2000;
    c->prekey_take_max = 10;
    c->prekey_take_window_s = 3600;
    c->media_calls_per_device = 4;
    c->media_calls_max = 10000;
    c->media_leg_packet_rate = 100;
    c->media_leg_byte_rate = 65536;
    c->media_idle_timeout_ms = 60000;
    c->media_keepalive_ms = 15000;
    c->media_ticket_lifetime_s = 14400;
    c->wake_poll_ms = 5000;
    c->pg_pool = 4;
    c->invite_rate = 10;
    c->invite_failures_max = 5;
    c->blob_max_size = (uint64_t)100 << 20;
    c->blob_quota = (uint64_t)1 << 30;
    c->blob_expiry_s = 30 * 86400;
    c->blob_incomplete_expiry_s = 86400;
    c->blob_sweep_ms = 600000;
}

void kurer_relay_opts_default(kurer_relay_opts *o)
{
    memset(o, 0, sizeof(*o));
    kurer_relay_config_default(&o->cfg);
    o->seccomp = 1;
}

/* What a key's value is: a number in a unit (plain, bytes, microseconds, milliseconds,
 * seconds), or a setting of kurer_relay_opts. */
typedef enum ktype {
    T_NUM,
    T_BYTES,
    T_US,
    T_MS,
    T_S,
    T_DIR,     /* a folder */
    T_PATH,    /* a file the relay reads */
    T_ADDR,    /* HOST:PORT */
    T_BOOL,    /* yes/no, on/off, true/false, 1/0 */
    T_LEVEL,   /* a log level */
    T_STORE,   /* a store backend */
    T_SECRET,  /* a string never echoed in a message (pg_conninfo: may hold a password) */
    T_OUTFILE, /* a file the relay appends to (its folder must exist) */
    T_USER,    /* a user name */
} ktype;

typedef struct key_def {
    const char *key;
    ktype type;
    size_t off;       /* of the uint64_t in kurer_relay_config, or of the field in the opts */
    size_t count_off; /* repeatable settings: of the size_t count in the opts (max_n > 1) */
    unsigned max_n;
    uint64_t min, max;
} key_def;

#define CFG(name) offsetof(kurer_relay_opts, cfg) + offsetof(kurer_relay_config, name)
#define OPT(name) offsetof(kurer_relay_opts, name)
/* K: a number of kurer_relay_config; S: a setting given once; M: a repeatable setting. Every
 * key here has a row in docs/relay.md and a line in etc/relay.conf (tests/check_docs.sh). */
#define K(name, type, lo, hi)                                                                      \
    {                                                                                              \
#name, T_##type, CFG(name), 0, 1, lo, hi                                                   \
    }
#define S(name, type, field)                                                                       \
    {                                                                                              \
#name, T_##type, OPT(field), 0, 1, 0, 0                                                    \
    }
#define M(name, type, field, count)                                                                \
    {                                                                                              \
#name, T_##type, OPT(field), OPT(count), KURER_RELAY_MULTI_MAX, 0, 0                       \
    }
static const key_def keys[] = {
    S(dir, DIR, dir),
    M(listen, ADDR, listen, n_listen),
    M(root, PATH, roots, n_roots),
    M(crl, PATH, crl_files, n_crls),
    S(metrics, ADDR, metrics),
    S(metrics_public, BOOL, metrics_public),
    S(store, STORE, store),
    S(pg_conninfo, SECRET, pg_conninfo),
    S(log_level, LEVEL, log_level),
    S(user, USER, user),
    S(audit_log, OUTFILE, audit_log),
    S(seccomp, BOOL, seccomp),
    S(media_listen, ADDR, media_listen),
    K(max_record, BYTES, 128, 65535),
    K(max_envelope, BYTES, 1, KURER_ENVELOPE_CONTENT_MAX),
    K(max_send_envelopes, NUM, 1, KURER_SEND_ENVELOPES_MAX),
    K(mailbox_max, NUM, 1, 100000000),
    K(handshake_timeout_ms, MS, 50, 600000),
    K(idle_timeout_ms, MS, 0, 86400000),
    K(send_rate, NUM, 0, 1000000),
    K(out_cap, BYTES, 65536, (uint64_t)1 << 30),
    K(out_max, BYTES, 65536, (uint64_t)1 << 30),
    K(deliver_batch, NUM, 1, 1024),
    K(prekeys_low, NUM, 1, 100000),
    K(max_connections, NUM, 0, 10000000),
    K(max_handshakes, NUM, 1, 1000000),
    K(commit_delay_us, US, 0, 1000000),
    K(prekeys_max, NUM, 1, 1000000),
    K(fetch_rate, NUM, 0, 1000000),
    K(ack_hold_us, US, 0, 10000000),
    K(max_preauth_record, BYTES, 1024, 65535),
    K(max_preauth_per_address, NUM, 1, 1000000),
    K(nk_rate, NUM, 0, 1000000),
    K(handshake_rate, NUM, 0, 10000000),
    K(upload_buffer_max, BYTES, 65536, (uint64_t)1 << 32),
    K(lookup_rate, NUM, 0, 1000000),
    K(ping_rate, NUM, 0, 1000000),
    K(mailbox_sender_max, NUM, 0, 100000000),
    K(prekey_take_max, NUM, 0, 1000000),
    K(prekey_take_window_s, S, 1, 86400 * 30),
    K(media_calls_per_device, NUM, 0, 1000),
    K(media_calls_max, NUM, 0, 10000000),
    K(media_leg_packet_rate, NUM, 0, 1000000),
    K(media_leg_byte_rate, BYTES, 0, (uint64_t)1 << 30),
    K(media_idle_timeout_ms, MS, 1000, 86400000),
    K(media_keepalive_ms, MS, 100, 3600000),
    K(media_ticket_lifetime_s, S, 1, 86400 * 7),
    K(wake_poll_ms, MS, 100, 3600000),
    K(pg_pool, NUM, 1, 16),
    K(invite_rate, NUM, 0, 1000000),
    K(invite_failures_max, NUM, 1, 1000000),
    K(blob_max_size, BYTES, 1, KURER_BLOB_SIZE_MAX),
    K(blob_quota, BYTES, 0, (uint64_t)1 << 44),
    K(blob_expiry_s, S, 1, 86400 * 3650),
    K(blob_incomplete_expiry_s, S, 1, 86400 * 365),
    K(blob_sweep_ms, MS, 100, 86400000),
};
#undef K
#undef S
#undef M
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const struct unit {
    const char *name;
    ktype type; /* T_BYTES, or T_US for every duration */
    uint64_t mult;
} units[] = {
    {"B", T_BYTES, 1},
    {"KiB", T_BYTES, (uint64_t)1 << 10},
    {"MiB", T_BYTES, (uint64_t)1 << 20},
    {"GiB", T_BYTES, (uint64_t)1 << 30},
    {"kB", T_BYTES, 1000},
    {"MB", T_BYTES, 1000000},
    {"GB", T_BYTES, 1000000000},
    {"us", T_US, 1},
    {"ms", T_US, 1000},
    {"s", T_US, 1000000},
    {"min", T_US, 60000000},
    {"h", T_US, 3600000000ull},
    {"d", T_US, 86400000000ull},
};

static const key_def *find_key(const char *k)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].key, k) == 0)
            return &keys[i];
    return NULL;
}

static int is_number(ktype t)
{
    return t <= T_S;
}

/* The microseconds of a duration key's own unit (1 for bytes and plain numbers). */
static uint64_t base_of(ktype t)
{
    return t == T_MS ? 1000 : t == T_S ? 1000000 : 1;
}

/* A number with an optional unit ("60s", "100 MiB"): 0 with *out in the key's unit; else
 * KURER_EINVAL with why set, or KURER_ELIMIT past the range (or past 64 bits). */
static int parse_number(const key_def *kd, const char *v, uint64_t *out, char *why, size_t n)
{
    static const char *const own[] = {"", "bytes", "us", "ms", "s"};
    uint64_t x = 0, mult = 1;
    const char *p = v;
    if (!isdigit((unsigned char)*p)) {
        snprintf(why, n, "not a number");
        return KURER_EINVAL;
    }
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10)
            return KURER_ELIMIT;
        x = x * 10 + d;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0') {
        const struct unit *u = NULL;
        ktype family = kd->type == T_BYTES ? T_BYTES : T_US;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (units[i].type == family && strcmp(units[i].name, p) == 0)
                u = &units[i];
        if (kd->type == T_NUM) {
            snprintf(why, n, "takes a plain number, without a unit");
            return KURER_EINVAL;
        }
        if (u == NULL) {
            snprintf(why, n, "unknown unit '%s' (%s; a bare number is %s)", p,
                     family == T_BYTES ? "a size: B, KiB, MiB, GiB, kB, MB, GB"
                                       : "a duration: us, ms, s, min, h, d",
                     own[kd->type]);
            return KURER_EINVAL;
        }
        mult = u->mult;
        if (u->type == T_US) { /* in microseconds, then in the key's own unit */
            if (x != 0 && mult > UINT64_MAX / x)
                return KURER_ELIMIT;
            x *= mult;
            if (x % base_of(kd->type) != 0) {
                snprintf(why, n, "not a whole number of %s", own[kd->type]);
                return KURER_EINVAL;
            }
            x /= base_of(kd->type);
            mult = 1;
        }
    }
    if (x != 0 && mult > UINT64_MAX / x)
        return KURER_ELIMIT;
    x *= mult;
    if (x < kd->min || x > kd->max)
        return KURER_ELIMIT;
    *out = x;
    return 0;
}

int kurer_relay_config_value(const char *key, const char *value, uint64_t *out)
{
    char why[160];
    const key_def *kd = find_key(key);
    if (kd == NULL || !is_number(kd->type))
        return KURER_ENOTFOUND;
    return parse_number(kd, value, out, why, sizeof(why));
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"yes", "on", "true", "1"}, *const no[] = {"no", "off",
                                                                                "false", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *out = strcasecmp(v, yes[i]) == 0;
            return 0;
        }
    }
    return KURER_EINVAL;
}

/* HOST:PORT, [IPv6]:PORT: the port is a number up to 65535 (the host is resolved at start). */
static int addr_ok(const char *v)
{
    const char *c = strrchr(v, ':');
    uint64_t port;
    return c != NULL && c != v && kurer_parse_u64(c + 1, 65535, &port) == 0;
}

/* A setting's value: 0, or a reason in why. With KURER_RELAY_CHECK_FILES, files are opened
 * (and closed), folders and users looked up, addresses resolved. */
static int check_setting(const key_def *kd, const char *v, unsigned flags, char *why, size_t n)
{
    struct stat st;
    kurer_log_level lvl;
    char low[16];
    int b, fd;
    size_t i;
    struct sockaddr_storage ss;
    switch (kd->type) {
    case T_BOOL:
        if (parse_bool(v, &b) != 0)
            return snprintf(why, n, "expected yes or no (on/off, true/false, 1/0)"), KURER_EINVAL;
        return 0;
    case T_LEVEL:
        for (i = 0; v[i] != '\0' && i + 1 < sizeof(low); i++)
            low[i] = (char)tolower((unsigned char)v[i]);
        low[i] = '\0';
        if (v[i] != '\0' || kurer_log_level_parse(low, &lvl) != 0)
            return snprintf(why, n, "unknown level (debug, info, warn, error, off)"), KURER_EINVAL;
        return 0;
    case T_STORE:
        if (strcmp(v, "sqlite") != 0 && strcmp(v, "postgres") != 0)
            return snprintf(why, n, "sqlite or postgres"), KURER_EINVAL;
        return 0;
    case T_OUTFILE:
        if (flags & KURER_RELAY_CHECK_FILES) {
            char folder[4096];
            snprintf(folder, sizeof(folder), "%s", v);
            char *slash = strrchr(folder, '/');
            if (slash != NULL)
                *slash = '\0';
            const char *d = slash == NULL ? "." : folder[0] != '\0' ? folder : "/";
            if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
                return snprintf(why, n, "its folder does not exist"), KURER_EINVAL;
        }
        return 0;
    case T_SECRET:
        if (strlen(v) >= KURER_RELAY_CONNINFO_MAX)
            return snprintf(why, n, "%d bytes at most", KURER_RELAY_CONNINFO_MAX - 1), KURER_ELIMIT;
        return 0;
    case T_ADDR:
        if (!addr_ok(v))
            return snprintf(why, n, "not HOST:PORT"), KURER_EINVAL;
        if ((flags & KURER_RELAY_CHECK_FILES) && kurer_net_resolve(v, &ss) != 0)
            return snprintf(why, n, "cannot be resolved"), KURER_EINVAL;
        return 0;
    case T_DIR:
        if ((flags & KURER_RELAY_CHECK_FILES) && stat(v, &st) != 0)
            return snprintf(why, n, "%s", strerror(errno)), KURER_EINVAL;
        if ((flags & KURER_RELAY_CHECK_FILES) && !S_ISDIR(st.st_mode))
            return snprintf(why, n, "not a folder"), KURER_EINVAL;
        return 0;
    case T_PATH:
        if ((flags & KURER_RELAY_CHECK_FILES) && (fd = open(v, O_RDONLY | O_CLOEXEC)) < 0)
            return snprintf(why, n, "%s", strerror(errno)), KURER_EINVAL;
        if (flags & KURER_RELAY_CHECK_FILES)
            close(fd);
        return 0;
    case T_USER:
        if ((flags & KURER_RELAY_CHECK_FILES) && getpwnam(v) == NULL)
            return snprintf(why, n, "no such user"), KURER_EINVAL;
        return 0;
    default:
        return 0;
    }
}

/* Stores a checked value of kd into o. */
static void set_value(kurer_relay_opts *o, const key_def *kd, const char *v, uint64_t num)
{
    char *at = (char *)o + kd->off;
    if (is_number(kd->type)) {
        *(uint64_t *)(void *)at = num;
    } else if (kd->type == T_BOOL) {
        (void)parse_bool(v, (int *)(void *)at);
    } else if (kd->max_n > 1) {
        size_t *count = (size_t *)(void *)((char *)o + kd->count_off);
        ((const char **)(void *)at)[(*count)++] = v;
    } else {
        *(const char **)(void *)at = v;
    }
}

/* One line (leading blanks skipped, NUL-terminated): 0 if it is blank, a comment or a good
 * setting (stored in o), else 1 after reporting why. seen: per key, the line it was first given
 * on (repeatable keys: how often). The value stays in the line's bytes. */
static int load_line(kurer_relay_opts *o, char *l, const char *path, int ln, unsigned flags,
                     int *seen, FILE *err)
{
    char why[300];
    uint64_t num = 0;
    size_t klen = strspn(l, "abcdefghijklmnopqrstuvwxyz0123456789_");
    char *end = l + strlen(l);
    while (end > l && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        *--end = '\0';
    if (*l == '#' || *l == '\0')
        return 0;
    char *v = l + klen;
    while (*v == ' ' || *v == '\t')
        v++;
    if (klen == 0 || *v != '=') {
        fprintf(err, "kurer-relay: %s:%d: '%s' is not 'key = value'\n", path, ln, l);
        return 1;
    }
    l[klen] = '\0';
    for (v++; *v == ' ' || *v == '\t';)
        v++;
    const key_def *kd = find_key(l);
    if (kd == NULL) {
        fprintf(err, "kurer-relay: %s:%d: unknown key '%s' (see docs/relay.md)\n", path, ln, l);
        return 1;
    }
    int *first = &seen[kd - keys];
    if (*v == '\0') {
        fprintf(err, "kurer-relay: %s:%d: %s has no value\n", path, ln, l);
        return 1;
    }
    if (kd->max_n <= 1 && *first != 0) {
        fprintf(err, "kurer-relay: %s:%d: %s given twice (first on line %d)\n", path, ln, l,
                *first);
        return 1;
    }
    if (kd->max_n > 1 && *first >= (int)kd->max_n) {
        fprintf(err, "kurer-relay: %s:%d: %s may be given at most %u times\n", path, ln, l,
                kd->max_n);
        return 1;
    }
    int bad = is_number(kd->type) ? parse_number(kd, v, &num, why, sizeof(why))
                                  : check_setting(kd, v, flags, why, sizeof(why));
    if (bad == 0 && kd->max_n > 1 && *first == 0)
        *(size_t *)(void *)((char *)o + kd->count_off) = 0; /* the file's replace the defaults */
    if (bad != 0 && kd->type == T_SECRET)                   /* never the value */
        fprintf(err, "kurer-relay: %s:%d: %s: %s\n", path, ln, l, why);
    else if (bad == KURER_ELIMIT)
        fprintf(err, "kurer-relay: %s:%d: %s = %s is out of range (%llu..%llu)\n", path, ln, l, v,
                (unsigned long long)kd->min, (unsigned long long)kd->max);
    else if (bad != 0)
        fprintf(err, "kurer-relay: %s:%d: %s = %s: %s\n", path, ln, l, v, why);
    if (bad != 0)
        return 1;
    *first = kd->max_n > 1 ? *first + 1 : ln;
    set_value(o, kd, v, num);
    return 0;
}

int kurer_relay_config_load(kurer_relay_opts *o, const char *path, unsigned flags, FILE *err,
                            char **owned)
{
    uint8_t *data;
    size_t len;
    int seen[NKEYS] = {0}, bad = 0, ln = 0;
    *owned = NULL;
    int e = kurer_file_read(path, 1 << 20, &data, &len);
    if (e != 0) {
        fprintf(err, "kurer-relay: %s: %s\n", path,
                e == KURER_ENOENT ? strerror(ENOENT) : kurer_strerror(e));
        return 1;
    }
    o->owned_len = len;
    char *rest = (char *)data;
    /* strsep, not strtok: empty lines count, so the line number reported is the file's. */
    for (char *l; (l = strsep(&rest, "\n")) != NULL;) {
        ln++;
        while (*l == ' ' || *l == '\t')
            l++;
        bad += load_line(o, l, path, ln, flags, seen, err);
    }
    *owned = (char *)data;
    return bad;
}

int kurer_relay_opts_set(kurer_relay_opts *o, const char *key, const char *value, unsigned flags,
                         char *why, size_t n)
{
    const key_def *kd = find_key(key);
    uint64_t num = 0;
    int err;
    if (kd == NULL)
        return snprintf(why, n, "unknown key"), KURER_ENOTFOUND;
    if (kd->max_n > 1 && *(size_t *)(void *)((char *)o + kd->count_off) >= kd->max_n)
        return snprintf(why, n, "given more than %u times", kd->max_n), KURER_ELIMIT;
    err = is_number(kd->type) ? parse_number(kd, value, &num, why, n)
                              : check_setting(kd, value, flags, why, n);
    if (err == KURER_ELIMIT)
        snprintf(why, n, "out of range (%llu..%llu)", (unsigned long long)kd->min,
                 (unsigned long long)kd->max);
    if (err != 0)
        return err; /* KURER_EINVAL or KURER_ELIMIT */
    set_value(o, kd, value, num);
    return 0;
}
