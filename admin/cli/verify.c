/* kurer-admin verify: a chain, certificate or revocation list against the pinned root and
 * the lists given. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

const char help_verify[] =
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
static int opt_grace(const kurer_args *a, kurer_trust *t)
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

/* What verify works with: the trust store (the pinned root, the lists given) and the file. */
typedef struct verify_ctx {
    kurer_trust *t;
    uint8_t root_id[KURER_KEY_ID_LEN];
    const kurer_cert *root;
    const char *root_path, *path;
    int64_t now;
    int require_crl;
} verify_ctx;

/* A device chain that verified: what it is, and against which lists. */
static int device_valid(const verify_ctx *x, const kurer_cert *c, const kurer_verified *v)
{
    const kurer_crl *held = held_list(x->t, c->body.issuer_key_id);
    const kurer_crl *rl = held_list(x->t, x->root_id);
    char also[96] = "", tn[32];
    if (rl != NULL) {
        snprintf(also, sizeof(also), "; its authority against the root's list version %llu",
                 (unsigned long long)rl->version);
        ju64("root_crl_version", rl->version);
    }
    jbool("revocation_checked", held != NULL);
    if (held != NULL) {
        ju64("crl_version", held->version);
        say("%s: valid DEVICE certificate (revocation checked against %s list version %llu%s)\n",
            x->path, v->authority, (unsigned long long)held->version, also);
    } else if (x->require_crl) {
        return refuse(KURER_ENOTFOUND,
                      "%s: revocation NOT checked: no list from %s given (--crl), and "
                      "--require-crl is set",
                      x->path, v->authority);
    } else {
        say("%s: valid DEVICE certificate (revocation NOT checked: no list from %s given%s)\n",
            x->path, v->authority, also);
    }
    say("  user         %s device %u\n", v->user, v->device_id);
    say("  serial       %llu\n", (unsigned long long)v->serial);
    say("  clearance    %s (%s), ceiling %s\n", kurer_level_name((int)v->clearance),
        kurer_level_name_da((int)v->clearance), kurer_level_name((int)v->ceiling));
    say("  authority    %s\n", v->authority);
    say("  valid until  %s\n", fmt_time(tn, sizeof(tn), v->not_after));
    jstr("role", "DEVICE");
    jstr("subject", v->user);
    jint("device_id", v->device_id);
    ju64("serial", v->serial);
    jstr("clearance", kurer_level_name((int)v->clearance));
    jstr("authority", v->authority);
    jint("not_after", v->not_after);
    return 0;
}

static int verify_device(const verify_ctx *x, const kurer_chain *ch)
{
    const kurer_cert *c = &ch->certs[0];
    kurer_verified v;
    char tmp[256];
    int rc;
    if (ch->n == 1)
        return refuse(KURER_EISSUER,
                      "%s: a device certificate alone cannot be verified; give the chain "
                      "written by issue",
                      x->path);
    rc = kurer_trust_verify_chain(x->t, ch, x->now, &v);
    if (rc == KURER_EREVOKED &&
        kurer_trust_is_revoked(x->t, x->root_id, ch->certs[1].body.serial)) {
        revoked_reason(x->t, x->root_id, ch->certs[1].body.serial, tmp, sizeof(tmp));
        return refuse(rc,
                      "%s: certificate revoked: its authority %s (serial %llu) is revoked by the "
                      "root (%s)",
                      x->path, ch->certs[1].body.subject,
                      (unsigned long long)ch->certs[1].body.serial, tmp);
    }
    if (rc == KURER_EREVOKED) {
        revoked_reason(x->t, c->body.issuer_key_id, c->body.serial, tmp, sizeof(tmp));
        return refuse(rc, "%s: certificate revoked: %s device %u, serial %llu (%s)", x->path,
                      c->body.subject, c->body.device_id, (unsigned long long)c->body.serial, tmp);
    }
    if (rc == KURER_ECRLSTALE || rc == 0) {
        const kurer_crl *lists[2] = {held_list(x->t, x->root_id),
                                     held_list(x->t, c->body.issuer_key_id)};
        int frc = check_fresh(x->t, lists, 2, x->path, x->now);
        if (frc != 0 || rc != 0)
            return frc != 0 ? frc : refuse(rc, "%s: %s", x->path, kurer_strerror(rc));
    }
    if (rc == KURER_EEXPIRED || rc == KURER_ENOTYETVALID) {
        const kurer_cert *which = kurer_cert_check_validity(c, x->now) ? c : &ch->certs[1];
        snprintf(tmp, sizeof(tmp), "%s: %s certificate", x->path,
                 which == c ? "the device" : "its authority's");
        return validity_reason(tmp, which, rc);
    }
    if (rc != 0)
        return refuse(rc, "%s: %s", x->path, kurer_strerror(rc));
    return device_valid(x, c, &v);
}

static int verify_authority(const verify_ctx *x, const kurer_cert *c)
{
    const kurer_crl *rl = held_list(x->t, x->root_id);
    char tmp[256], tn[32];
    int rc = kurer_trust_verify_authority(x->t, c, x->now, NULL);
    if (rc == KURER_EREVOKED) {
        revoked_reason(x->t, x->root_id, c->body.serial, tmp, sizeof(tmp));
        return refuse(rc, "%s: authority certificate revoked by the root: %s, serial %llu (%s)",
                      x->path, c->body.subject, (unsigned long long)c->body.serial, tmp);
    }
    if ((rc == KURER_ECRLSTALE || rc == 0) && (rc = check_fresh(x->t, &rl, 1, x->path, x->now)))
        return rc;
    if (rc != 0) {
        snprintf(tmp, sizeof(tmp), "%s: authority certificate", x->path);
        return validity_reason(tmp, c, rc);
    }
    jbool("revocation_checked", rl != NULL);
    if (rl != NULL)
        ju64("root_crl_version", rl->version);
    say("%s: valid AUTHORITY certificate for %s, clearance %s, until %s\n", x->path,
        c->body.subject, kurer_level_name((int)c->body.clearance),
        fmt_time(tn, sizeof(tn), c->body.not_after));
    jstr("role", "AUTHORITY");
    jstr("subject", c->body.subject);
    ju64("serial", c->body.serial);
    jstr("clearance", kurer_level_name((int)c->body.clearance));
    jint("not_after", c->body.not_after);
    return 0;
}

static int verify_root(const verify_ctx *x, const kurer_cert *c)
{
    const kurer_cert *root = x->root;
    if (c->tbs_len != root->tbs_len || memcmp(c->tbs, root->tbs, root->tbs_len) != 0 ||
        !kurer_ct_equal(c->signature, root->signature, KURER_SIG_LEN))
        return refuse(KURER_EUNTRUSTED, "%s: a root certificate other than %s", x->path,
                      x->root_path);
    say("%s: the pinned root %s, ceiling %s\n", x->path, c->body.subject,
        kurer_level_name((int)c->body.clearance));
    jstr("role", "ROOT");
    jstr("subject", c->body.subject);
    return 0;
}

static int verify_list(const verify_ctx *x, const uint8_t *d, size_t n)
{
    kurer_crl l;
    int rc;
    if (kurer_crl_decode(d, n, &l) != 0)
        return bad_file(x->path, d, n, FK_CHAIN, KURER_EMALFORMED);
    rc = kurer_crl_verify(&l, x->root);
    if (rc == 0) {
        const kurer_crl *lp = &l;
        int is_root = l.issuer_cert.body.role == KURER_ROLE_ROOT;
        rc = check_fresh(x->t, &lp, 1, x->path, x->now);
        if (rc == 0 && is_root)
            say("%s: valid revocation list of root %s (authorities it revoked), version %llu, "
                "%zu revoked\n",
                x->path, l.issuer, (unsigned long long)l.version, l.n_revoked);
        else if (rc == 0)
            say("%s: valid revocation list of %s, version %llu, %zu revoked\n", x->path, l.issuer,
                (unsigned long long)l.version, l.n_revoked);
        jstr("role", "REVOCATION_LIST");
        jstr("issuer", l.issuer);
        jstr("issuer_role", kurer_role_name((int)l.issuer_cert.body.role));
        ju64("version", l.version);
        ju64("revoked", l.n_revoked);
        jint("next_update", l.next_update);
    } else {
        rc = refuse(rc, "%s: revocation list does not verify: %s", x->path, kurer_strerror(rc));
    }
    kurer_crl_release(&l);
    return rc;
}

/* The pinned root and the --crl lists into x->t. */
static int load_trust(verify_ctx *x, const kurer_args *a)
{
    const kurer_cert *root = x->root;
    int rc;
    if ((rc = kurer_trust_new(&x->t)) != 0)
        return refuse(rc, "out of memory");
    if ((rc = opt_grace(a, x->t)) != 0)
        return rc;
    kurer_cert_key_id(root, x->root_id);
    if ((rc = kurer_trust_add_root(x->t, root, x->now)) != 0)
        return root->body.role == KURER_ROLE_ROOT &&
                       (rc == KURER_EEXPIRED || rc == KURER_ENOTYETVALID)
                   ? validity_reason(x->root_path, root, rc)
                   : refuse(rc, "%s is not a valid root certificate: %s", x->root_path,
                            kurer_strerror(rc));
    for (size_t i = 0; i < kurer_args_count(a, "crl"); i++) {
        const char *cp = kurer_args_nth(a, "crl", i);
        uint8_t *d = NULL;
        size_t n;
        kurer_crl l;
        if ((rc = load_crl(cp, &l, &d, &n)) != 0)
            return rc;
        kurer_crl_release(&l);
        rc = kurer_trust_add_crl(x->t, d, n, NULL);
        free(d);
        if (rc != 0 && rc != KURER_ESTALE) /* ESTALE: a newer list of it is held already */
            return refuse(rc, "revocation list %s: %s", cp, kurer_strerror(rc));
    }
    return 0;
}

int cmd_verify(int argc, char **argv)
{
    static const kurer_opt opts[] = {{"help", 0, 0}, {"json", 0, 0},        {"root", V, 0},
                                     {"crl", V, 16}, {"require-crl", 0, 0}, {"crl-grace", V, 0}};
    kurer_args a;
    verify_ctx x;
    kurer_cert root;
    kurer_chain ch;
    uint8_t *d = NULL;
    size_t n;
    int rc;

    kurer_armor_kind armor;
    memset(&x, 0, sizeof(x));
    if ((rc = command_args(&a, opts, NOPTS(opts), 1, 1, "FILE", help_verify, argc, argv)) != 0 ||
        (rc = need(&a, "root", &x.root_path)) != 0)
        return rc;
    x.path = a.pos[0];
    x.now = kurer_time_unix();
    x.root = &root;
    x.require_crl = flag(&a, "require-crl");
    jstr("file", x.path);
    if ((rc = load_cert(x.root_path, &root)) != 0)
        return rc;
    if ((rc = load_trust(&x, &a)) != 0 ||
        (rc = read_input(x.path, FILE_MAX, &d, &n, &armor)) != 0 ||
        (rc = armor_matches(x.path, armor, detect_kind(d, n))) != 0)
        goto out;
    if (kurer_chain_decode(d, n, &ch) == 0 || kurer_cert_decode(d, n, &ch.certs[0]) == 0) {
        if (ch.n == 0)
            ch.n = 1;
        rc = ch.certs[0].body.role == KURER_ROLE_DEVICE      ? verify_device(&x, &ch)
             : ch.certs[0].body.role == KURER_ROLE_AUTHORITY ? verify_authority(&x, &ch.certs[0])
                                                             : verify_root(&x, &ch.certs[0]);
    } else {
        rc = verify_list(&x, d, n);
    }
out:
    jbool("valid", rc == 0);
    free(d);
    kurer_trust_free(x.t);
    return rc;
}
