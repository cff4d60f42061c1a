/* kurer-admin pending, approve, reject: the authority's approval queue on the relay (online
 * enrolment, docs/admin.md §3a). Every request to the relay carries a proof signed with the
 * authority key on this machine (the key never leaves it); approve issues the certificate here
 * and hands the relay only the chain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kurer/compare.h"
#include "kurer/crypto.h"
#include "kurer/csr.h"
#include "kurer/enrol_call.h"
#include "kurer/invite.h"
#include "kurer/net.h"
#include "kurer/util.h"

const char help_pending[] =
    "usage: kurer-admin pending --authority AUTHDIR --relay HOST:PORT --relay-key KEY\n"
    "                           [--passphrase-env VAR] [--json]\n"
    "\n"
    "Lists the certificate requests waiting in this authority's approval queue on the relay:\n"
    "for each its id, the user and device the request itself names (what approve would sign,\n"
    "not what the relay says), when it came, the comparison code of its identity key (ask the\n"
    "user to read theirs: kurer init and kurer whoami show it) and whether it is bound to one\n"
    "of this authority's invitations (its MAC under the key AUTHDIR/invites/ keeps, and the\n"
    "user and device the invitation was made for: a request swapped by the relay or anyone\n"
    "between is not). The relay is shown a signature by the authority key over the request\n"
    "and the time.\n";

const char help_approve[] =
    "usage: kurer-admin approve --authority AUTHDIR --relay HOST:PORT --relay-key KEY ID\n"
    "                           [--clearance LEVEL] [--days N] [--code DIGITS]\n"
    "                           [--passphrase-env VAR] [--json]\n"
    "\n"
    "Issues the certificate for the waiting request ID (as kurer-admin pending shows it; a\n"
    "unique prefix of at least 8 digits will do) on this machine, as kurer-admin issue would,\n"
    "after checking that the request is bound to this authority's invitation for that user and\n"
    "device, and hands the chain to the relay, from which the device fetches it. --code: the\n"
    "comparison code the user read to you; nothing is issued unless it is the request's.\n"
    "--clearance and --days as for issue. Run again after a failure to reach the relay: the\n"
    "chain issued (AUTHDIR/invites/ID.chain) is sent again, never a second certificate.\n";

const char help_reject[] =
    "usage: kurer-admin reject --authority AUTHDIR --relay HOST:PORT --relay-key KEY ID\n"
    "                          [--passphrase-env VAR] [--json]\n"
    "\n"
    "Rejects the waiting request ID: the device is told (EREJECTED) and nothing is issued.\n";

#define ENROL_TIMEOUT 15000
#define PAGES_MAX     1000 /* 4000 requests: a bound, not a limit anyone meets */

/* What every queue command needs: the authority (key open), the relay. */
typedef struct queue_ctx {
    issuer is;
    const char *relay;
    uint8_t relay_key[32];
    int lockfd;
    kurer_enrol_request *q;
    kurer_enrol_reply *rep;
} queue_ctx;

static int queue_open(queue_ctx *x, const kurer_args *a)
{
    const char *dir, *key, *envname;
    int rc;
    if ((rc = need(a, "authority", &dir)) || (rc = need(a, "relay", &x->relay)) ||
        (rc = need(a, "relay-key", &key)) ||
        (rc = opt_env(a, "passphrase-env", DEFAULT_PASS, &envname)))
        return rc;
    if (kurer_net_addr_check(x->relay) != 0)
        return usage_error("--relay %s: expected HOST:PORT", x->relay);
    if ((rc = relay_key_arg(key, x->relay_key)) != 0)
        return rc;
    x->q = calloc(1, sizeof(*x->q));
    x->rep = calloc(1, sizeof(*x->rep));
    if (x->q == NULL || x->rep == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    if ((rc = lock_existing(dir, &x->lockfd)) != 0 ||
        (rc = issuer_load(&x->is, dir, 0, 1, kurer_time_unix())) != 0)
        return rc;
    return issuer_open_key(&x->is, envname, NULL);
}

static void queue_close(queue_ctx *x)
{
    free(x->q);
    free(x->rep);
    issuer_release(&x->is);
    unlock_dir(&x->lockfd);
}

/* Sends x->q (body and its fields set) with the authority's proof; the relay's answer in
 * x->rep. */
static int queue_call(queue_ctx *x, const char *what)
{
    kurer_buf b;
    kurer_buf_init_fixed(&b, x->q->auth.authority, sizeof(x->q->auth.authority));
    int rc = kurer_cert_encode(&x->is.cert, &b);
    x->q->auth.authority_len = b.len;
    x->q->request_id = 1;
    if (rc == 0)
        rc = kurer_enrol_proof_sign(x->q, kurer_time_unix(), &x->is.key);
    if (rc != 0)
        return refuse(rc, "cannot sign the request to the relay: %s", kurer_strerror(rc));
    rc = kurer_enrol_call(x->relay, x->relay_key, x->q, x->rep, ENROL_TIMEOUT);
    return enrol_relay_refused(x->relay, rc, x->rep, what);
}

/* The subject and device a request names (its own, never the relay's claim about it). */
static int request_of(const kurer_enrol_pending *p, kurer_csr *csr)
{
    int rc = kurer_csr_decode(p->request, p->request_len, csr);
    if (rc != 0)
        memset(csr, 0, sizeof(*csr));
    return rc;
}

/* Whether what the request names is what we invited: rec is our own record, the only word on
 * the user and device that counts (the relay's listing can say anything). */
static int names_invited(const invite_record *rec, const char *subject, uint32_t device_id)
{
    return strcmp(rec->user, subject) == 0 && rec->device_id == device_id ? 0 : KURER_ESUBJECT;
}

/* Whether p is bound to one of our invitations: 0, KURER_ENOENT (we made none with its id),
 * KURER_EINVITEMAC (its MAC is not under that invitation's key), KURER_EMALFORMED (not a
 * certificate request), KURER_ESUBJECT (the request names another user or device than we
 * invited, whatever the relay says). The request decoded into csr. */
static int binding(const queue_ctx *x, const kurer_enrol_pending *p, invite_record *rec,
                   kurer_csr *csr)
{
    uint8_t mac[KURER_ENROL_MAC_LEN];
    int rc = invite_record_read(&x->is, p->id, rec);
    if (request_of(p, csr) != 0 && rc == 0)
        rc = KURER_EMALFORMED;
    if (rc != 0)
        return rc;
    kurer_invite_authority_mac(rec->mac_key, p->id, p->request, p->request_len, mac);
    rc = kurer_ct_equal(mac, p->authority_mac, sizeof(mac)) ? 0 : KURER_EINVITEMAC;
    if (rc == 0)
        rc = names_invited(rec, csr->body.subject, csr->body.device_id);
    kurer_memzero(mac, sizeof(mac));
    return rc;
}

static const char *binding_text(int b)
{
    switch (b) {
    case 0:
        return "bound to this authority's invitation";
    case KURER_ENOENT:
        return "NOT BOUND: no invitation of this authority has its id";
    case KURER_EINVITEMAC:
        return "NOT BOUND: altered on the way (its MAC is not under the invitation's key)";
    case KURER_EMALFORMED:
        return "NOT BOUND: not a certificate request";
    case KURER_ESUBJECT:
        return "NOT BOUND: it names another user or device than the invitation's";
    default:
        return "NOT BOUND: the invitation record is damaged";
    }
}

static void show_pending(const queue_ctx *x, const kurer_enrol_pending *p)
{
    char id[2 * KURER_ENROL_ID_LEN + 1], code[KURER_COMPARISON_CODE_LEN + 1] = "?";
    char fp[65] = "", qr[KURER_REQUEST_QR_LEN + 1], t[32];
    kurer_csr csr;
    invite_record rec;
    int b = binding(x, p, &rec, &csr);
    kurer_memzero(&rec, sizeof(rec));
    kurer_hex_encode(id, p->id, KURER_ENROL_ID_LEN);
    if (b != KURER_EMALFORMED && csr.body.subject[0] != '\0')
        kurer_comparison_code(csr.body.identity_key, code);
    kurer_request_fingerprint(p->request, p->request_len, fp, qr);
    /* the request's own subject and device: what approve would sign */
    say("%.16s  %s device %u, since %s\n", id, csr.body.subject[0] ? csr.body.subject : "?",
        csr.body.device_id, fmt_time(t, sizeof(t), p->submitted_at));
    say("    comparison code  %s\n", code);
    say("    fingerprint      %s\n", fp);
    say("    %s\n", binding_text(b));
    kurer_json_begin_object(&g_j);
    kurer_json_kv_str(&g_j, "id", id);
    kurer_json_kv_str(&g_j, "user", csr.body.subject);
    kurer_json_kv_uint(&g_j, "device_id", csr.body.device_id);
    kurer_json_kv_int(&g_j, "submitted_at", p->submitted_at);
    kurer_json_kv_str(&g_j, "comparison_code", code);
    kurer_json_kv_str(&g_j, "request_fingerprint", fp);
    kurer_json_kv_bool(&g_j, "bound", b == 0);
    if (b != 0)
        kurer_json_kv_str(&g_j, "not_bound", kurer_err_name(b));
    kurer_json_end_object(&g_j);
}

/* Walks the queue page by page: each request to visit (which returns 1 to stop). */
static int walk(queue_ctx *x, int (*visit)(queue_ctx *, const kurer_enrol_pending *, void *),
                void *ud)
{
    int rc, more = 1;
    memset(x->q, 0, sizeof(*x->q));
    x->q->body = KURER_ENROL_LIST;
    for (int page = 0; more && page < PAGES_MAX; page++) {
        if ((rc = queue_call(x, "the list")) != 0)
            return rc;
        more = x->rep->more && x->rep->n_pending > 0;
        for (size_t i = 0; i < x->rep->n_pending; i++)
            if (visit(x, &x->rep->pending[i], ud))
                return 0;
        if (x->rep->n_pending > 0) {
            x->q->has_after = 1;
            memcpy(x->q->after, x->rep->pending[x->rep->n_pending - 1].id, KURER_ENROL_ID_LEN);
        }
    }
    return 0;
}

static int visit_show(queue_ctx *x, const kurer_enrol_pending *p, void *ud)
{
    (*(size_t *)ud)++;
    show_pending(x, p);
    return 0;
}

int cmd_pending(int argc, char **argv)
{
    static const kurer_opt opts[] = {{"help", 0, 0},      {"json", 0, 0},
                                     {"authority", V, 0}, {"relay", V, 0},
                                     {"relay-key", V, 0}, {"passphrase-env", V, 0}};
    kurer_args a;
    queue_ctx x;
    size_t n = 0;
    int rc;
    memset(&x, 0, sizeof(x));
    x.lockfd = -1;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_pending, argc, argv)) == 0 &&
        (rc = queue_open(&x, &a)) == 0) {
        kurer_json_key(&g_j, "pending");
        kurer_json_begin_array(&g_j);
        rc = walk(&x, visit_show, &n);
        kurer_json_end_array(&g_j);
        if (rc == 0)
            say("%zu %s waiting\n", n, plural(n, "request", "requests"));
    }
    queue_close(&x);
    return rc;
}

/* ---- approve and reject ------------------------------------------------------------------ */

typedef struct find_ctx {
    const char *prefix;
    size_t found;
    kurer_enrol_pending hit;
} find_ctx;

static int visit_find(queue_ctx *x, const kurer_enrol_pending *p, void *ud)
{
    find_ctx *f = ud;
    char id[2 * KURER_ENROL_ID_LEN + 1];
    (void)x;
    kurer_hex_encode(id, p->id, KURER_ENROL_ID_LEN);
    if (strncmp(id, f->prefix, strlen(f->prefix)) == 0 && f->found++ == 0)
        f->hit = *p;
    return 0;
}

/* The waiting request ID names (a unique prefix of 8 to 32 hex digits). */
static int find(queue_ctx *x, const char *id, find_ctx *f)
{
    size_t n = strlen(id);
    int rc;
    memset(f, 0, sizeof(*f));
    f->prefix = id;
    if (n < 8 || n > 2 * KURER_ENROL_ID_LEN || strspn(id, "0123456789abcdef") != n)
        return usage_error("ID %s: 8 to 32 lower-case hex digits, as pending shows", id);
    if ((rc = walk(x, visit_find, f)) != 0)
        return rc;
    if (f->found == 0)
        return refuse(KURER_ENOTFOUND, "no waiting request %s in the queue on %s", id, x->relay);
    if (f->found > 1)
        return refuse(KURER_EINVAL, "%s names %zu requests: give more digits", id, f->found);
    return 0;
}

static int decide(queue_ctx *x, const kurer_enrol_pending *p, const kurer_chain *chain)
{
    kurer_buf b;
    int rc = 0;
    memset(x->q, 0, sizeof(*x->q));
    x->q->body = KURER_ENROL_DECIDE;
    memcpy(x->q->id, p->id, KURER_ENROL_ID_LEN);
    x->q->approve = chain != NULL;
    if (chain != NULL) {
        kurer_buf_init_fixed(&b, x->q->chain, sizeof(x->q->chain));
        rc = kurer_chain_encode(chain, &b);
        x->q->chain_len = b.len;
    }
    if (rc != 0)
        return refuse(rc, "cannot encode the chain: %s", kurer_strerror(rc));
    return queue_call(x, chain != NULL ? "the approval" : "the rejection");
}

/* The chain for p: the one issued before (a retry), or a new certificate; either only for the
 * user and device of rec, our invitation. */
static int chain_for(queue_ctx *x, const kurer_enrol_pending *p, const invite_record *rec,
                     const kurer_args *a, kurer_chain *chain)
{
    char path[PATH_MAX_LEN];
    kurer_issuance_params prm;
    kurer_cert_body body;
    kurer_log_entry e;
    kurer_csr csr;
    kurer_buf img;
    uint64_t days, serial;
    int given, clamped = 0, rc;
    uint8_t *d;
    size_t n;
    if ((rc = invite_chain_path(&x->is, p->id, path)) != 0)
        return rc;
    if (kurer_file_read(path, KURER_CHAIN_BYTES_MAX, &d, &n) == 0) {
        rc = kurer_chain_decode(d, n, chain);
        free(d);
        if (rc != 0)
            return refuse(rc, "%s is damaged: %s", path, kurer_strerror(rc));
        if (names_invited(rec, chain->certs[0].body.subject, chain->certs[0].body.device_id))
            return refuse(KURER_ESUBJECT, "%s is for another user or device than invited", path);
        return 0;
    }
    memset(&prm, 0, sizeof(prm));
    prm.now = kurer_time_unix();
    if ((rc = opt_days(a, "days", 365, &days)) != 0 ||
        (rc = opt_level(a, "clearance", &prm.clearance, &given)) != 0)
        return rc;
    prm.days = days;
    prm.has_clearance = given;
    if ((rc = kurer_csr_decode(p->request, p->request_len, &csr)) != 0)
        return refuse(rc, "the request is not a certificate request: %s", kurer_strerror(rc));
    if (names_invited(rec, csr.body.subject, csr.body.device_id) != 0)
        return refuse(KURER_ESUBJECT,
                      "the request names %s device %u, the invitation %s device "
                      "%u; nothing issued",
                      csr.body.subject, csr.body.device_id, rec->user, rec->device_id);
    if ((rc = show_codes(&csr, p->request, p->request_len, opt(a, "code"))) != 0 ||
        (rc = issue_check(&x->is, &csr, "the request", &prm, &body, &clamped)) != 0)
        return rc;
    if (names_invited(rec, body.subject, body.device_id) != 0)
        return refuse(KURER_ESUBJECT, "the certificate would not be the invitation's; nothing "
                                      "issued");
    if ((rc = issue_sign(&x->is, &body, prm.now, chain, &serial)) != 0)
        return rc;
    kurer_buf_init(&img, KURER_CHAIN_BYTES_MAX);
    if ((rc = kurer_chain_encode(chain, &img)) == 0)
        rc = write_file(path, img.data, img.len, 0644, 0);
    kurer_buf_release(&img);
    kurer_log_entry_for_cert(&e, &chain->certs[0], prm.now);
    if (rc == 0)
        rc = log_append(&x->is, &e);
    if (rc == 0) {
        say("issued %s device %u, serial %llu\n", body.subject, body.device_id,
            (unsigned long long)serial);
        ju64("serial", serial);
    }
    return rc;
}

static int decide_cmd(int argc, char **argv, int approve)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0},      {"json", 0, 0},      {"authority", V, 0},
        {"relay", V, 0},     {"relay-key", V, 0}, {"passphrase-env", V, 0},
        {"clearance", V, 0}, {"days", V, 0},      {"code", V, 0}};
    kurer_args a;
    queue_ctx x;
    find_ctx f;
    invite_record rec;
    kurer_chain chain;
    kurer_csr csr;
    int rc, b;
    memset(&x, 0, sizeof(x));
    memset(&rec, 0, sizeof(rec));
    x.lockfd = -1;
    if ((rc = command_args(&a, opts, NOPTS(opts) - (approve ? 0 : 3), 1, 1, "ID",
                           approve ? help_approve : help_reject, argc, argv)) != 0 ||
        (rc = queue_open(&x, &a)) != 0 || (rc = find(&x, a.pos[0], &f)) != 0)
        goto out;
    /* the request's own subject and device, never the relay's listing of them */
    (void)request_of(&f.hit, &csr);
    jstr("user", csr.body.subject);
    jint("device_id", csr.body.device_id);
    if (approve && (b = binding(&x, &f.hit, &rec, &csr)) != 0) {
        rc = refuse(b == KURER_ENOENT ? KURER_EINVITE : b, "request %s: %s; nothing issued",
                    a.pos[0], binding_text(b));
        goto out;
    }
    if (approve && (rc = chain_for(&x, &f.hit, &rec, &a, &chain)) != 0)
        goto out;
    if ((rc = decide(&x, &f.hit, approve ? &chain : NULL)) != 0)
        goto out;
    say("%s %s device %u: the device fetches %s\n", approve ? "approved" : "rejected",
        csr.body.subject[0] ? csr.body.subject : "?", csr.body.device_id,
        approve ? "its chain from the relay" : "the rejection");
out:
    kurer_memzero(&rec, sizeof(rec));
    queue_close(&x);
    return rc;
}

int cmd_approve(int argc, char **argv)
{
    return decide_cmd(argc, argv, 1);
}

int cmd_reject(int argc, char **argv)
{
    return decide_cmd(argc, argv, 0);
}
