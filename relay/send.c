/* Send requests: per-user results, durability (accepted once committed or acked), early
 * delivery before the commit, seqs, and acks. */
#include "relay_internal.h"

#include <errno.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/signal.h"
#include "kurer/util.h"

/* Pending early deliveries are keyed by (device, seq): seqs are per device. */
static uint64_t pend_hash(relay *r, const kurer_device_address *dev, uint64_t seq)
{
    return htab_hash_dev(&r->pending, dev->user, dev->device_id) ^ (seq * 0x9e3779b97f4a7c15u);
}

static void pend_remove(relay *r, pend_item *pi)
{
    if (pi->listed) {
        htab_remove(&r->pending, &pi->node);
        pi->listed = 0;
    }
}

void kurer__send_ctx_free(send_ctx *sc)
{
    for (size_t i = 0; sc->results != NULL && i < sc->n_results; i++) {
        free((void *)sc->results[i].user);
        free((void *)sc->results[i].current.devices);
    }
    free(sc->results);
    free(sc->items);
    free(sc->seqs);
    free(sc->offs);
    free(sc->pend);
    free(sc->shared);
    kurer_buf_release(&sc->envs);
    free(sc);
}

static void reply_send(send_ctx *sc)
{
    if (sc->reply != NULL) {
        sc->reply(sc); /* a fan-out's answer (fanout.c) */
        return;
    }
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = sc->request_id;
    f.body = KURER_SERVER_SEND_RESULT;
    f.u.send_result.users = sc->results;
    f.u.send_result.n = sc->n_results;
    /* checked to fit before anything was stored (kurer__send_result_fits); should it fail all the
     * same, the request still gets its one answer */
    int err = kurer__send_frame(sc->rc, &f);
    if (err != 0 && err != KURER_ECLOSED && sc->rc->c != NULL && !kurer_conn_closing(sc->rc->c))
        kurer__send_error(sc->rc, sc->request_id, KURER_ELIMIT, 0);
}

/* Every envelope of the request is durable: the sender learns it (once). */
static void send_accepted(send_ctx *sc, int by_ack)
{
    relay *r = sc->rc->r;
    if (sc->replied)
        return;
    sc->replied = 1;
    uint64_t us = uv_hrtime() / 1000 - sc->started_us;
    kurer__hist_add(&r->send_accept, us);
    if (sc->reply != NULL) /* a fan-out (fanout.c) */
        kurer__hist_add(&r->fanout_accept, us);
    r->env_accepted += sc->n_items;
    if (by_ack)
        r->env_accepted_by_ack += sc->n_items;
    reply_send(sc);
}

void kurer__send_on_put(void *arg, int err, const uint64_t *seqs, size_t n, size_t cancelled)
{
    send_ctx *sc = arg;
    relay *r = sc->rc->r;
    (void)seqs;
    (void)n;
    for (size_t i = 0; i < sc->n_items; i++)
        pend_remove(r, &sc->pend[i]);
    r->env_write_skipped += cancelled;
    if (sc->replied) {
        /* every envelope was acked by its recipient before this commit */
    } else if (err != 0) {
        kurer__send_error(sc->rc, sc->request_id, err, 0);
    } else {
        send_accepted(sc, 0);
    }
    if (err == 0) /* committed: the nodes of its devices connected elsewhere fetch */
        kurer__cluster_committed(r, sc->items, sc->n_items);
    kurer__rconn_unref(sc->rc);
    kurer__send_ctx_free(sc);
}

/* The recipient device rc acked seq: if the envelope was delivered before its commit, it is
 * durable now. */
static void acked_early(rconn *rc, uint64_t seq)
{
    relay *r = rc->r;
    uint64_t h = pend_hash(r, &rc->addr, seq);
    for (hnode *n = htab_first(&r->pending, h); n != NULL; n = htab_next(n, h)) {
        pend_item *pi = HTAB_ENTRY(n, pend_item, node);
        send_ctx *sc = pi->sc;
        const kurer_store_item *it = &sc->items[pi->idx];
        /* only the recipient's own ack counts */
        if (sc->seqs[pi->idx] != seq || it->to.device_id != rc->addr.device_id ||
            strcmp(it->to.user, rc->addr.user) != 0)
            continue;
        pend_remove(r, pi);
        if (--sc->undurable == 0)
            send_accepted(sc, 1);
        return;
    }
}

/* Whether envelopes for to (its device's live connection) may go out before their commit:
 * it has pushed everything of its mailbox it knows of. */
static int can_push(rconn *to)
{
    return to->caught_up && !to->fetching && !kurer_conn_congested(to->c);
}

int kurer__send_deliverable_now(relay *r, const kurer_store_item *it)
{
    rconn *to = kurer__online(r, &it->to);
    return to != NULL && can_push(to);
}

/* Pushes item k of sc (seq) to its device's connection: from the request's decoded envelope
 * while kurer__handle_send runs, else from the stored bytes. */
static int push_item(send_ctx *sc, rconn *to, size_t k, uint64_t seq)
{
    if (sc->env == NULL && sc->shared != NULL) {
        /* a fan-out: its shared bytes with this device's `to` */
        kurer_buf b;
        kurer_buf_init(&b, KURER_FRAME_MAX);
        int err = kurer_fanout_envelope(sc->shared, sc->shared_len, &sc->items[k].to, &b);
        if (err == 0)
            err = kurer__push(to, seq, b.data, b.len);
        kurer_buf_release(&b);
        return err;
    }
    if (sc->env == NULL)
        return kurer__push(to, seq, sc->items[k].env, sc->items[k].len);
    size_t j = 0;
    for (size_t i = 0; i < sc->n_env; i++) {
        if (!sc->accepted[i] || j++ != k)
            continue;
        kurer_envelope e = sc->env[i];
        e.has_from = 1;
        e.from = sc->rc->addr;
        e.server_ts = sc->ts;
        return kurer__push_env(to, seq, &e);
    }
    return 0;
}

/* The store has assigned the put's seqs (sqlite: inside kurer_store_put): each envelope whose
 * device is connected, caught up, and has pushed the seq the store assigned to it just before
 * (so nothing lower can be missing) goes out at once, listed as pending; the other connected
 * devices fetch (their fetch, submitted after the put, finds it). */
void kurer__send_on_seqs(void *arg, const uint64_t *seqs, const uint64_t *prev, size_t n)
{
    send_ctx *sc = arg;
    relay *r = sc->rc->r;
    for (size_t k = 0; k < n && k < sc->n_items; k++) {
        const kurer_store_item *it = &sc->items[k];
        pend_item *pi = &sc->pend[k];
        sc->seqs[k] = seqs[k];
        rconn *to = kurer__online(r, &it->to);
        if (to == NULL)
            continue;
        if (can_push(to) && to->last_pushed == prev[k]) {
            if (push_item(sc, to, k, seqs[k]) == 0) {
                pi->sc = sc;
                pi->listed = 1;
                htab_insert(&r->pending, &pi->node, pend_hash(r, &it->to, seqs[k]));
            }
            if (to->c != NULL && kurer_conn_congested(to->c))
                to->caught_up = 0, to->dirty = 1;
        } else {
            /* not pushed: the device is not caught up until a fetch has found this one */
            to->caught_up = 0;
            to->dirty = 1;
            kurer__start_fetch(to);
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int kurer__send_result_fits(send_ctx *sc, size_t stale_bytes)
{
    if (stale_bytes > kurer__answer_max(sc->rc->r))
        return 0; /* its chains alone are too many (and were not all decoded) */
    /* a generous bound: a STALE_DEVICES result names its user twice */
    size_t estimate = 16 + stale_bytes;
    for (size_t i = 0; i < sc->n_results; i++)
        estimate += 2 * strlen(sc->results[i].user) + 32;
    if (estimate <= kurer__answer_max(sc->rc->r))
        return 1;
    kurer_server_frame f;
    kurer_buf b;
    memset(&f, 0, sizeof(f));
    f.request_id = sc->request_id;
    f.body = KURER_SERVER_SEND_RESULT;
    f.u.send_result.users = sc->results;
    f.u.send_result.n = sc->n_results;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int err = kurer_server_frame_encode(&f, &b);
    size_t len = b.len;
    kurer_buf_release(&b);
    return err == 0 && len <= kurer__answer_max(sc->rc->r);
}

/* The current list of a STALE_DEVICES result: chains of du's current devices (the sender's own
 * excluded; nh of them), decoded into cur. Their encoded sizes are known first: once the answer
 * could not fit (before: the bytes of earlier results), nothing is decoded, since the request is
 * refused whole. Returns the bytes these chains add to the answer. */
static size_t stale_current(rconn *rc, const dir_user *du, int own, size_t nh, size_t before,
                            kurer_user_devices *cur)
{
    relay *r = rc->r;
    int64_t now = kurer_time_unix();
    size_t bytes = 0, cnt = 0;
    kurer_chain *chains = NULL;
    for (size_t d = 0; du != NULL && d < du->n; d++)
        if (kurer__dir_current(r, &du->devs[d], now) &&
            !(own && du->devs[d].device_id == rc->addr.device_id))
            bytes += du->devs[d].chain_len + 8;
    if (before + bytes <= kurer__answer_max(r))
        chains = calloc(nh ? nh : 1, sizeof(*chains));
    for (size_t d = 0; chains != NULL && du != NULL && d < du->n; d++)
        if (kurer__dir_current(r, &du->devs[d], now) &&
            !(own && du->devs[d].device_id == rc->addr.device_id) && cnt < KURER_USER_DEVICES_MAX &&
            kurer__dir_chain(&du->devs[d], &chains[cnt]) == 0)
            cnt++;
    cur->devices = chains;
    cur->n_devices = cnt;
    return bytes;
}

int kurer__send_envelope_limits(const kurer_relay_config *cfg, const kurer_envelope *env, size_t n)
{
    if (n > cfg->max_send_envelopes)
        return KURER_ELIMIT;
    /* Every envelope accepted must fit, as a Deliver, in one of the recipient's records: one
     * that cannot would cost the recipient its connection at every delivery attempt. */
    uint64_t room = cfg->max_record - KURER_NOISE_TAGLEN - KURER_ENVELOPE_OVERHEAD_MAX;
    if (cfg->max_record < KURER_NOISE_TAGLEN + KURER_ENVELOPE_OVERHEAD_MAX)
        room = 0;
    for (size_t i = 0; i < n; i++)
        if (env[i].content_len > cfg->max_envelope || env[i].content_len > room)
            return KURER_ELIMIT;
    return 0;
}

/* The request's bounds, before anything is allocated for it: 0, or the error to answer. */
int kurer__send_bounds(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    size_t n = f->u.send.n;
    int err = kurer__send_envelope_limits(&r->cfg, f->u.send.envelopes, n);
    if (err != 0)
        return err;
    if (!kurer__rate_take(rc, B_SEND, n)) {
        r->sends_rate_limited++;
        return KURER_ERATE;
    }
    return 0;
}

kurer_send_status kurer__send_match(uint32_t *want, size_t nw, uint32_t *have, size_t nh, int own)
{
    int known = nh > 0 || own;
    qsort(want, nw, sizeof(*want), cmp_u32);
    qsort(have, nh, sizeof(*have), cmp_u32);
    /* Several envelopes for one device in one request are allowed: compare sets. */
    size_t u = 0;
    for (size_t j = 0; j < nw; j++)
        if (u == 0 || want[u - 1] != want[j])
            want[u++] = want[j];
    nw = u;
    if (!known)
        return KURER_SEND_UNKNOWN_USER;
    if (nw != nh || memcmp(want, have, nw * sizeof(*want)) != 0)
        return KURER_SEND_STALE_DEVICES;
    return KURER_SEND_ACCEPTED;
}

/* Whether every envelope for user that names the certificate serial it was encrypted for names
 * the one the directory holds for its device (a re-enrolled device has a new certificate and new
 * keys: what was encrypted for the old ones must not be stored for the new device). */
static int serials_current(const dir_user *du, const kurer_envelope *env, size_t n,
                           const char *user)
{
    for (size_t j = 0; du != NULL && j < n; j++) {
        if (env[j].to_serial == 0 || strcmp(env[j].to.user, user) != 0)
            continue;
        for (size_t d = 0; d < du->n; d++)
            if (du->devs[d].device_id == env[j].to.device_id &&
                du->devs[d].serial != env[j].to_serial)
                return 0;
    }
    return 1;
}

/* One result per recipient user: the devices asked for must be exactly its current devices
 * (the sender's own device excepted). want and have hold n and have_cap ids. Adds the bytes of
 * STALE_DEVICES chains to *stale_bytes. 0 or KURER_ENOMEM. */
int kurer__send_classify(send_ctx *sc, const kurer_envelope *env, size_t n, uint32_t *want,
                         uint32_t *have, size_t *stale_bytes)
{
    rconn *rc = sc->rc;
    relay *r = rc->r;
    int64_t now = kurer_time_unix();
    for (size_t i = 0; i < n; i++) {
        const char *user = env[i].to.user;
        int seen = 0;
        if (sc->grouped) /* a user's envelopes in one run, each user once: linear */
            seen = i > 0 && strcmp(env[i - 1].to.user, user) == 0;
        for (size_t k = 0; !sc->grouped && k < sc->n_results; k++)
            if (strcmp(sc->results[k].user, user) == 0)
                seen = 1;
        if (seen)
            continue;
        kurer_user_result *ur = &sc->results[sc->n_results++];
        if ((ur->user = strdup(user)) == NULL)
            return KURER_ENOMEM;
        size_t nw = 0, nh = 0, run = n - i;
        for (size_t j = i; j < n; j++)
            if (strcmp(env[j].to.user, user) == 0)
                want[nw++] = env[j].to.device_id;
            else if (sc->grouped)
                break;
        if (sc->grouped)
            run = nw;
        dir_user *du = kurer__dir_user_find(r, user);
        int own = strcmp(user, rc->addr.user) == 0;
        for (size_t d = 0; du != NULL && d < du->n; d++)
            if (kurer__dir_current(r, &du->devs[d], now) &&
                !(own && du->devs[d].device_id == rc->addr.device_id))
                have[nh++] = du->devs[d].device_id;
        ur->status = kurer__send_match(want, nw, have, nh, own);
        if (ur->status == KURER_SEND_ACCEPTED && !serials_current(du, env + i, run, user))
            ur->status = KURER_SEND_STALE_DEVICES; /* a device's certificate changed */
        if (ur->status == KURER_SEND_UNKNOWN_USER) {
            kurer__count_reject(r, KURER_EUNKNOWNUSER);
        } else if (ur->status == KURER_SEND_STALE_DEVICES) {
            kurer__count_reject(r, KURER_ESTALEDEVICES);
            *stale_bytes += stale_current(rc, du, own, nh, *stale_bytes, &ur->current);
            ur->current.user = ur->user;
        }
    }
    return 0;
}

/* The envelopes of accepted users as store items, with from and server_ts (ts) set here;
 * accepted[i] marks the envelopes taken. 0 or the encoder's error. */
static int encode_accepted(send_ctx *sc, const kurer_envelope *env, size_t n, uint8_t *accepted,
                           int64_t ts)
{
    rconn *rc = sc->rc;
    for (size_t i = 0; i < n; i++) {
        kurer_user_result *ur = NULL;
        for (size_t k = 0; k < sc->n_results; k++)
            if (strcmp(sc->results[k].user, env[i].to.user) == 0)
                ur = &sc->results[k];
        if (ur == NULL || ur->status != KURER_SEND_ACCEPTED)
            continue;
        kurer_envelope e = env[i];
        e.to_serial = 0; /* the sender's, for this check only */
        e.has_from = 1;
        e.from = rc->addr;
        e.server_ts = ts;
        size_t before = sc->envs.len;
        int err = kurer_envelope_encode(&e, &sc->envs);
        if (err != 0)
            return err;
        accepted[i] = 1;
        sc->offs[sc->n_items] = before;
        sc->items[sc->n_items].to = env[i].to;
        sc->items[sc->n_items].from = rc->addr;
        sc->items[sc->n_items].len = sc->envs.len - before;
        sc->n_items++;
    }
    for (size_t i = 0; i < sc->n_items; i++) {
        sc->items[i].env = sc->envs.data + sc->offs[i];
        sc->pend[i].idx = i;
    }
    sc->undurable = sc->n_items;
    return 0;
}

send_ctx *kurer__send_ctx_new(rconn *rc, uint64_t request_id, size_t n)
{
    send_ctx *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return NULL;
    sc->rc = rc;
    sc->request_id = request_id;
    sc->started_us = uv_hrtime() / 1000;
    sc->results = calloc(n, sizeof(*sc->results));
    sc->items = calloc(n, sizeof(*sc->items));
    sc->seqs = calloc(n, sizeof(*sc->seqs));
    sc->offs = calloc(n, sizeof(*sc->offs));
    sc->pend = calloc(n, sizeof(*sc->pend));
    kurer_buf_init(&sc->envs, (size_t)n * KURER_FRAME_MAX);
    if (sc->results == NULL || sc->items == NULL || sc->seqs == NULL || sc->offs == NULL ||
        sc->pend == NULL) {
        kurer__send_ctx_free(sc);
        return NULL;
    }
    return sc;
}

void kurer__handle_send(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    const kurer_envelope *env = f->u.send.envelopes;
    size_t n = f->u.send.n, stale_bytes = 0, have_cap = 1;
    int err = kurer__send_bounds(rc, f);
    if (err != 0) {
        kurer__send_error(rc, f->request_id, err, 0);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        dir_user *du = kurer__dir_user_find(r, env[i].to.user);
        if (du != NULL && du->n > have_cap)
            have_cap = du->n;
    }
    send_ctx *sc = kurer__send_ctx_new(rc, f->request_id, n);
    uint8_t *accepted = calloc(n, 1);
    uint32_t *want = calloc(n, sizeof(*want)), *have = calloc(have_cap, sizeof(*have));
    err = sc == NULL || accepted == NULL || want == NULL || have == NULL
              ? KURER_ENOMEM
              : kurer__send_classify(sc, env, n, want, have, &stale_bytes);
    free(want);
    free(have);
    /* Every request gets exactly one answer: one that would not fit a record is refused before
     * anything of it is stored. */
    if (err == 0 && !kurer__send_result_fits(sc, stale_bytes)) {
        r->send_results_too_large++;
        err = KURER_ELIMIT;
    }
    int64_t ts = kurer_time_unix() * 1000;
    if (err == 0)
        err = encode_accepted(sc, env, n, accepted, ts);
    if (err == 0 && sc->n_items == 0) {
        /* Results for stale users point at calloc'ed chains: freed after the reply. */
        reply_send(sc);
        err = 1; /* answered: nothing to store */
    }
    if (err == 0) {
        /* Every envelope goes out before its commit: the store may hold the put for their
         * acks (ack_hold_us), and write nothing if they all come in time. */
        int all_early = r->cfg.ack_hold_us > 0;
        for (size_t i = 0; i < sc->n_items && all_early; i++)
            all_early = kurer__send_deliverable_now(r, &sc->items[i]);
        kurer_store_put_req req = {sc->items,
                                   sc->n_items,
                                   {r->cfg.mailbox_max, r->cfg.mailbox_sender_max},
                                   all_early ? r->cfg.ack_hold_us : 0,
                                   kurer__send_on_seqs,
                                   kurer__send_on_put,
                                   sc};
        sc->env = env;
        sc->accepted = accepted;
        sc->n_env = n;
        sc->ts = ts;
        rc->refs++;
        if (kurer_store_put(r->store, &req) != 0) {
            rc->refs--;
            err = KURER_ENOMEM;
        } else {
            sc->env = NULL; /* from here on early deliveries decode the stored bytes */
            sc->accepted = NULL;
        }
    }
    free(accepted);
    if (err == 0)
        return;
    if (sc != NULL)
        kurer__send_ctx_free(sc);
    if (err < 0)
        kurer__send_error(rc, f->request_id, err, err == KURER_ENOMEM);
}

static void on_acked(void *arg, int err)
{
    req_ctx *q = arg;
    if (err != 0) {
        kurer__send_error(q->rc, q->request_id, err, 0);
    } else {
        kurer_server_frame f;
        memset(&f, 0, sizeof(f));
        f.request_id = q->request_id;
        f.body = KURER_SERVER_OK;
        (void)kurer__send_frame(q->rc, &f);
    }
    kurer__rconn_unref(q->rc);
    free(q);
}

void kurer__handle_ack(rconn *rc, const kurer_client_frame *f)
{
    req_ctx *q = malloc(sizeof(*q));
    if (q == NULL) {
        kurer__send_error(rc, f->request_id, KURER_ENOMEM, 1);
        return;
    }
    q->rc = rc;
    q->request_id = f->request_id;
    rc->refs++;
    /* Submitted first (the store pairs it with a put not yet executed); then envelopes
     * delivered before their commit become durable by this ack. */
    if (kurer_store_ack(rc->r->store, &rc->addr, f->u.ack.seqs, f->u.ack.n, on_acked, q) != 0) {
        rc->refs--;
        free(q);
        kurer__send_error(rc, f->request_id, KURER_ENOMEM, 1);
        return;
    }
    rc->r->env_acked += f->u.ack.n;
    if (rc->r->pending.n > 0)
        for (size_t i = 0; i < f->u.ack.n; i++)
            acked_early(rc, f->u.ack.seqs[i]);
}
