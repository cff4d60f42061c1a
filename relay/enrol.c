/* Online enrolment (docs/protocol.md 3.6): an NK session opened with an EnrolHello carries
 * EnrolRequests, each answered by one EnrolReply.
 *
 *   invite  an authority registers an invitation (signed by its key, under a certificate that
 *           chains to a pinned root): the code's id and verifier, user, device, expiry;
 *   submit  a device hands in its request with a MAC keyed with the verifier: the first valid
 *           use puts it in the authority's approval queue and spends the invitation;
 *   poll    the device asks what became of it (a MAC again), and gets its chain once approved;
 *   list    the authority (a signature over the request and the time) reads its queue;
 *   decide  ... and approves (with the chain it issued on its own machine) or rejects.
 *
 * The relay never learns a code: it holds the verifier, from which neither the code nor the
 * authority's MAC key can be derived. Refused submits and polls are counted per source address
 * (an IPv6 address per /64; more than invite_rate a minute: ERATE for every attempt from it until
 * the minute is over; a full table evicts the address whose minute began first) and wrong MACs
 * of a submit per invitation (invite_failures_max lock it for submits; polls are never locked
 * out by others' wrong proofs, so that a third party who knows an id cannot keep an approved
 * device from its chain). Logs and the audit name an invitation by a short prefix of its id. */
#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "kurer/csr.h"
#include "kurer/enrol.h"
#include "kurer/invite.h"
#include "kurer/util.h"
#include "enrol_rate.h"
#include "relay_internal.h"

#define ADMIN_SKEW_S 300 /* an administrator's proof: this close to our clock */
#define LOG_ID_BYTES 4   /* of an invitation's id in logs and the audit (8 hex digits) */
/* An unauthenticated session makes the relay hold one request at a time (about 20 KB with its
 * store operation), and a few in all: a pending list of several pages, or a poll loop, opens
 * new sessions. */
#define ENROL_SESSION_MAX 16

/* One request in flight: the connection (held), the request, and for two-step requests what
 * the first step read. */
typedef struct enrol_op {
    rconn *rc;
    kurer_enrol_request req;
    uint8_t authority[KURER_KEY_ID_LEN]; /* LIST, DECIDE: the proven authority */
    int64_t now;
    int wrong_mac; /* SUBMIT, POLL: the failure is being stored; then EINVITEMAC */
} enrol_op;

void kurer__enrol_free(relay *r)
{
    free(r->enrol_addrs);
    r->enrol_addrs = NULL;
}

static void addr_failed(relay *r, const rconn *rc);

/* ---- replies ------------------------------------------------------------------------------ */

/* Sends rep; 0, or KURER_ELIMIT when it does not fit a record (nothing sent then). */
static int send_reply(rconn *rc, const kurer_enrol_reply *rep)
{
    kurer_buf b;
    int err = 0;
    if (rc->c == NULL || kurer_conn_closing(rc->c))
        return 0;
    kurer_buf_init(&b, KURER_ENROL_RECORD_MAX);
    if ((err = kurer_enrol_reply_encode(rep, &b)) == 0 &&
        b.len + KURER_NOISE_TAGLEN > rc->r->lim.max_record)
        err = KURER_ELIMIT;
    if (err == 0 && kurer_conn_send(rc->c, b.data, b.len) != 0) {
        /* the peer does not read what we send */
        rc->close_counted = 1;
        kurer_conn_close(rc->c, KURER_ELIMIT);
    }
    kurer_buf_release(&b);
    return err;
}

/* The answer for err: counted as a rejection (and as a refused attempt for submit and poll). */
static void reply_err(rconn *rc, const kurer_enrol_request *q, int err)
{
    kurer_enrol_reply *rep = calloc(1, sizeof(*rep));
    if (err != 0) {
        kurer__count_reject(rc->r, err);
        if (q->body == KURER_ENROL_SUBMIT || q->body == KURER_ENROL_POLL) {
            rc->r->enrol_refused++;
            addr_failed(rc->r, rc); /* every refusal, not only wrong codes and MACs */
        }
    }
    if (rep == NULL) {
        if (rc->c != NULL)
            kurer_conn_close(rc->c, KURER_ENOMEM);
        return;
    }
    rep->request_id = q->request_id;
    rep->error = err;
    (void)send_reply(rc, rep); /* an error alone always fits */
    free(rep);
}

static void op_done(enrol_op *o)
{
    o->rc->enrol_busy = 0;
    kurer__rconn_unref(o->rc);
    free(o);
}

/* ---- failed attempts per source address ---------------------------------------------------- */

static const uint8_t *addr_of(const rconn *rc)
{
    static const uint8_t none[16] = {0};
    return rc->pa != NULL ? rc->pa->ip : none;
}

/* 1 if this address may try (under invite_rate refusals this minute). */
static int addr_may_try(relay *r, const rconn *rc)
{
    if (r->cfg.invite_rate == 0)
        return 1;
    if (r->enrol_addrs == NULL &&
        (r->enrol_addrs = calloc(KURER__ENROL_ADDRS, sizeof(kurer__enrol_addr))) == NULL)
        return 0; /* no memory for the table: refused (fail closed) */
    return kurer__enrol_rate_may_try(r->enrol_addrs, KURER__ENROL_ADDRS, addr_of(rc),
                                     r->cfg.invite_rate, kurer_time_mono_ms());
}

/* A refused submit or poll, charged to its address (whatever the reason). */
static void addr_failed(relay *r, const rconn *rc)
{
    if (r->cfg.invite_rate != 0 && r->enrol_addrs != NULL)
        kurer__enrol_rate_failed(r->enrol_addrs, KURER__ENROL_ADDRS, addr_of(rc),
                                 kurer_time_mono_ms());
}

/* ---- submitting operations to the store ---------------------------------------------------- */

static void after_get(void *arg, int err, const kurer_store_invite *rows, size_t n);
static void after_write(void *arg, int err, const kurer_store_invite *rows, size_t n);

/* Submits one invitation operation for o (held until its callback); a refusal answers at once. */
static void store_op(enrol_op *o, kurer_store_invite_op what, const kurer_store_invite *inv,
                     kurer_store_invite_cb cb)
{
    kurer_store_invite_req *q = calloc(1, sizeof(*q));
    int rc = q == NULL ? KURER_ENOMEM : 0;
    if (q != NULL) {
        q->op = what;
        q->inv = *inv;
        if (what == KURER_INVITE_LIST) {
            memcpy(q->inv.authority, o->authority, KURER_KEY_ID_LEN);
            q->has_after = o->req.has_after;
            memcpy(q->after, o->req.after, sizeof(q->after));
            q->limit = KURER_ENROL_PAGE + 1;
        }
        rc = kurer_store_invite_run(o->rc->r->store, q, cb, o);
    }
    free(q);
    if (rc != 0) {
        reply_err(o->rc, &o->req, rc);
        op_done(o);
    }
}

static void store_id_op(enrol_op *o, kurer_store_invite_op what, kurer_store_invite_cb cb)
{
    kurer_store_invite *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        reply_err(o->rc, &o->req, KURER_ENOMEM);
        op_done(o);
        return;
    }
    memcpy(v->id, o->req.id, sizeof(v->id));
    store_op(o, what, v, cb);
    free(v);
}

/* ---- authorities ------------------------------------------------------------------------- */

/* An authority certificate from bytes, checked against the pinned roots and the root's list
 * now: its key id into key_id. */
static int authority_ok(relay *r, const uint8_t *d, size_t n, int64_t now, kurer_cert *c,
                        uint8_t key_id[KURER_KEY_ID_LEN])
{
    int rc = kurer_cert_decode(d, n, c);
    if (rc == 0 && c->body.role != KURER_ROLE_AUTHORITY)
        rc = KURER_EROLE;
    if (rc == 0)
        rc = kurer_trust_verify_authority(r->trust, c, now, NULL);
    if (rc == 0)
        kurer_cert_key_id(c, key_id);
    return rc;
}

/* An administrator's proof: a current authority, a time near ours, its signature. */
static int proof_ok(enrol_op *o)
{
    kurer_cert c;
    const kurer_enrol_proof *p = &o->req.auth;
    int rc = authority_ok(o->rc->r, p->authority, p->authority_len, o->now, &c, o->authority);
    if (rc == 0 && (p->time > o->now + ADMIN_SKEW_S || p->time < o->now - ADMIN_SKEW_S))
        rc = KURER_ESTALE;
    if (rc == 0)
        rc = kurer_enrol_proof_verify(&o->req, c.body.signing_key);
    return rc;
}

/* ---- invite ------------------------------------------------------------------------------ */

static void do_invite(enrol_op *o)
{
    const kurer_enrol_invitation *i = &o->req.invite;
    kurer_cert c;
    kurer_store_invite *v = NULL;
    const char *auth = kurer_user_authority(i->user);
    int rc = authority_ok(o->rc->r, i->authority, i->authority_len, o->now, &c, o->authority);
    /* the authority invites its own users only, for a bounded time from now */
    if (rc == 0 && (auth == NULL || strcmp(auth, c.body.subject) != 0))
        rc = KURER_ESUBJECT;
    if (rc == 0)
        rc = kurer__invite_times_check(i->created_at, i->expires_at, o->now);
    if (rc == 0)
        rc = kurer_invite_verify(i, c.body.signing_key);
    if (rc == 0) {
        v = calloc(1, sizeof(*v));
        rc = v == NULL ? KURER_ENOMEM : 0;
    }
    if (rc != 0) {
        free(v);
        reply_err(o->rc, &o->req, rc);
        op_done(o);
        return;
    }
    memcpy(v->id, i->id, sizeof(v->id));
    memcpy(v->authority, o->authority, sizeof(v->authority));
    memcpy(v->user, i->user, sizeof(v->user));
    v->device_id = i->device_id;
    memcpy(v->verifier, i->verifier, sizeof(v->verifier));
    v->created_at = i->created_at;
    v->expires_at = i->expires_at;
    store_op(o, KURER_INVITE_PUT, v, after_write);
    free(v);
}

/* ---- submit and poll: the invitation read first ------------------------------------------ */

/* What a request must be for this invitation: self-signed, naming its user and device. */
static int request_fits(const kurer_enrol_request *q, const kurer_store_invite *row)
{
    kurer_csr csr;
    int rc = kurer_csr_decode(q->request, q->request_len, &csr);
    if (rc == 0)
        rc = kurer_csr_verify(&csr);
    if (rc == 0 &&
        (strcmp(csr.body.subject, row->user) != 0 || csr.body.device_id != row->device_id))
        rc = KURER_ESUBJECT;
    return rc;
}

/* A device's use of row: 0 to go on, or the refusal (a wrong MAC counted against both). */
static int device_check(enrol_op *o, const kurer_store_invite *row)
{
    const kurer_enrol_request *q = &o->req;
    relay *r = o->rc->r;
    uint8_t mac[KURER_ENROL_MAC_LEN];
    if (q->body == KURER_ENROL_POLL) {
        /* A wrong proof is the asker's failure (its address is charged), never the
         * invitation's: whoever guessed an id must not lock the device out of its chain. */
        kurer_invite_poll_proof(row->verifier, row->id, mac);
        return kurer_ct_equal(mac, q->mac, sizeof(mac)) ? 0 : KURER_EINVITEMAC;
    }
    if (row->failures >= r->cfg.invite_failures_max) {
        r->invite_rate_limited++;
        return KURER_ERATE;
    }
    kurer_invite_relay_mac(row->verifier, row->id, q->request, q->request_len, mac);
    if (!kurer_ct_equal(mac, q->mac, sizeof(mac))) {
        o->wrong_mac = 1;
        store_id_op(o, KURER_INVITE_FAIL, after_write);
        return 1; /* answered when the failure is stored */
    }
    if (row->state != KURER_ENROL_OPEN)
        return KURER_EINVITEUSED;
    if (kurer__invite_expired(row->expires_at, o->now))
        return KURER_EINVITEEXPIRED;
    return request_fits(q, row);
}

static void poll_reply(enrol_op *o, const kurer_store_invite *row)
{
    kurer_enrol_reply *rep = calloc(1, sizeof(*rep));
    if (rep == NULL) {
        reply_err(o->rc, &o->req, KURER_ENOMEM);
        return;
    }
    rep->request_id = o->req.request_id;
    rep->state = (kurer_enrol_state)row->state;
    if (row->state == KURER_ENROL_OPEN && kurer__invite_expired(row->expires_at, o->now))
        rep->error = KURER_EINVITEEXPIRED;
    if (row->state == KURER_ENROL_APPROVED) {
        memcpy(rep->chain, row->chain, row->chain_len);
        rep->chain_len = row->chain_len;
    }
    if (send_reply(o->rc, rep) != 0)
        reply_err(o->rc, &o->req, KURER_ELIMIT); /* a chain too large for a record */
    free(rep);
}

static void submit_row(enrol_op *o)
{
    kurer_store_invite *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        reply_err(o->rc, &o->req, KURER_ENOMEM);
        op_done(o);
        return;
    }
    memcpy(v->id, o->req.id, sizeof(v->id));
    memcpy(v->request, o->req.request, o->req.request_len);
    v->request_len = o->req.request_len;
    memcpy(v->authority_mac, o->req.authority_mac, sizeof(v->authority_mac));
    v->submitted_at = o->now;
    store_op(o, KURER_INVITE_SUBMIT, v, after_write);
    free(v);
}

/* DECIDE: the request was read; the chain must be the one for it. */
static int decide_check(enrol_op *o, const kurer_store_invite *row)
{
    const kurer_enrol_request *q = &o->req;
    kurer_chain ch;
    kurer_verified v;
    kurer_csr csr;
    int rc;
    if (memcmp(row->authority, o->authority, KURER_KEY_ID_LEN) != 0)
        return KURER_ENOTFOUND; /* another authority's: as if it were not there */
    if (row->state != KURER_ENROL_WAITING)
        return KURER_ESTATE;
    if (!q->approve)
        return 0;
    if ((rc = kurer_chain_decode(q->chain, q->chain_len, &ch)) != 0 ||
        (rc = kurer_trust_verify_chain(o->rc->r->trust, &ch, o->now, &v)) != 0 ||
        (rc = kurer_csr_decode(row->request, row->request_len, &csr)) != 0)
        return rc;
    if (strcmp(v.user, row->user) != 0 || v.device_id != row->device_id ||
        !kurer_ct_equal(ch.certs[0].body.identity_key, csr.body.identity_key,
                        KURER_IDENTITY_KEY_LEN))
        return KURER_EKEYMISMATCH;
    return 0;
}

static void decide_row(enrol_op *o)
{
    kurer_store_invite *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        reply_err(o->rc, &o->req, KURER_ENOMEM);
        op_done(o);
        return;
    }
    memcpy(v->id, o->req.id, sizeof(v->id));
    v->state = o->req.approve ? KURER_ENROL_APPROVED : KURER_ENROL_REJECTED;
    memcpy(v->chain, o->req.chain, o->req.chain_len);
    v->chain_len = o->req.approve ? o->req.chain_len : 0;
    store_op(o, KURER_INVITE_DECIDE, v, after_write);
    free(v);
}

static void after_get(void *arg, int err, const kurer_store_invite *rows, size_t n)
{
    enrol_op *o = arg;
    const kurer_enrol_request *q = &o->req;
    if (err == 0 && n != 1)
        err = KURER_ESTORAGE;
    if (err == KURER_ENOTFOUND && q->body != KURER_ENROL_DECIDE)
        err = KURER_EINVITE; /* a wrong code: its id names nothing */
    if (err == 0 && q->body == KURER_ENROL_DECIDE)
        err = decide_check(o, &rows[0]);
    else if (err == 0 && (err = device_check(o, &rows[0])) == 1)
        return; /* the failure is being stored; after_write answers */
    if (err != 0) {
        reply_err(o->rc, q, err);
    } else if (q->body == KURER_ENROL_POLL) {
        poll_reply(o, &rows[0]);
    } else if (q->body == KURER_ENROL_SUBMIT) {
        submit_row(o);
        return;
    } else {
        decide_row(o);
        return;
    }
    op_done(o);
}

/* ---- the writes' and the list's answers -------------------------------------------------- */

static void audit_op(enrol_op *o, const char *event)
{
    char id[2 * LOG_ID_BYTES + 1]; /* a prefix: the id is half of what a guesser needs */
    kurer_hex_encode(id, o->req.body == KURER_ENROL_INVITE ? o->req.invite.id : o->req.id,
                     LOG_ID_BYTES);
    kurer_log_field f[] = {KURER_LOG_STR("invite", id)};
    kurer__audit(o->rc->r, event, f, 1);
    kurer_log(KURER_LOG_INFO, "relay", event, f, 1);
}

static void after_write(void *arg, int err, const kurer_store_invite *rows, size_t n)
{
    enrol_op *o = arg;
    relay *r = o->rc->r;
    (void)rows;
    (void)n;
    if (o->wrong_mac) {
        reply_err(o->rc, &o->req, err != 0 ? err : KURER_EINVITEMAC);
        op_done(o);
        return;
    }
    if (err == 0) {
        switch (o->req.body) {
        case KURER_ENROL_INVITE:
            r->invites_registered++;
            audit_op(o, "invite_registered");
            break;
        case KURER_ENROL_SUBMIT:
            r->enrol_submitted++;
            audit_op(o, "enrol_submitted");
            break;
        default:
            r->enrol_decided++;
            audit_op(o, o->req.approve ? "enrol_approved" : "enrol_rejected");
            break;
        }
    }
    reply_err(o->rc, &o->req, err);
    op_done(o);
}

static void after_list(void *arg, int err, const kurer_store_invite *rows, size_t n)
{
    enrol_op *o = arg;
    kurer_enrol_reply *rep = err == 0 ? calloc(1, sizeof(*rep)) : NULL;
    if (err == 0 && rep == NULL)
        err = KURER_ENOMEM;
    if (err != 0) {
        reply_err(o->rc, &o->req, err);
        op_done(o);
        return;
    }
    rep->request_id = o->req.request_id;
    rep->more = n > KURER_ENROL_PAGE;
    for (size_t i = 0; i < n && i < KURER_ENROL_PAGE; i++) {
        kurer_enrol_pending *p = &rep->pending[rep->n_pending++];
        memcpy(p->id, rows[i].id, sizeof(p->id));
        memcpy(p->user, rows[i].user, sizeof(p->user));
        p->device_id = rows[i].device_id;
        memcpy(p->request, rows[i].request, rows[i].request_len);
        p->request_len = rows[i].request_len;
        memcpy(p->authority_mac, rows[i].authority_mac, sizeof(p->authority_mac));
        p->submitted_at = rows[i].submitted_at;
        p->expires_at = rows[i].expires_at;
    }
    /* Large requests: fewer a page (the cursor is the last one sent), never none. */
    while (send_reply(o->rc, rep) != 0 && rep->n_pending > 1) {
        rep->n_pending--;
        rep->more = 1;
    }
    free(rep);
    op_done(o);
}

/* ---- the record ---------------------------------------------------------------------------- */

static void dispatch(enrol_op *o)
{
    relay *r = o->rc->r;
    int rc = 0;
    switch (o->req.body) {
    case KURER_ENROL_INVITE:
        do_invite(o);
        return;
    case KURER_ENROL_SUBMIT:
    case KURER_ENROL_POLL:
        if (!addr_may_try(r, o->rc)) {
            r->invite_rate_limited++;
            rc = KURER_ERATE;
            break;
        }
        store_id_op(o, KURER_INVITE_GET, after_get);
        return;
    case KURER_ENROL_LIST:
    case KURER_ENROL_DECIDE:
        if ((rc = proof_ok(o)) != 0)
            break;
        if (o->req.body == KURER_ENROL_LIST)
            store_id_op(o, KURER_INVITE_LIST, after_list);
        else
            store_id_op(o, KURER_INVITE_GET, after_get);
        return;
    }
    reply_err(o->rc, &o->req, rc != 0 ? rc : KURER_EMALFORMED);
    op_done(o);
}

void kurer__enrol_record(rconn *rc, const uint8_t *data, size_t n)
{
    if (rc->enrol_busy || rc->enrol_count >= ENROL_SESSION_MAX) {
        /* a second request before the first is answered, or too many: the session ends */
        int err = rc->enrol_busy ? KURER_EBUSY : KURER_ELIMIT;
        kurer__count_reject(rc->r, err);
        rc->close_counted = 1;
        kurer_conn_close(rc->c, err);
        return;
    }
    enrol_op *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        kurer_conn_close(rc->c, KURER_ENOMEM);
        return;
    }
    int err = kurer_enrol_request_decode(data, n, &o->req);
    if (err != 0) {
        /* not ours to answer by id: the session is closed, as for a bad frame */
        kurer__count_reject(rc->r, err);
        rc->close_counted = 1;
        kurer_conn_close(rc->c, err);
        free(o);
        return;
    }
    o->rc = rc;
    o->now = kurer_time_unix();
    rc->refs++;
    rc->enrol_busy = 1;
    rc->enrol_count++;
    dispatch(o);
}
