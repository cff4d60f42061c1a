/* Fan-out sends (docs/protocol.md 3.7): the parts of one send held per connection until the
 * final part; then the same checks as a SendRequest's (send.c: limits, the send rate, one
 * result per user against the directory, the serials encrypted for), `from` and `server_ts`
 * set here, the shared bytes stored once with a reference per accepted device
 * (kurer_store_put_fanout), early delivery and durability as for a send (send.c's callbacks),
 * and one FanoutResult. Any refusal drops the send whole and is counted. */
#include "relay_internal.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/util.h"

/* A device of the send: its user (an index into users) and the serial encrypted for. */
typedef struct fo_dev {
    uint32_t user, device_id;
    uint64_t serial;
} fo_dev;

typedef struct fanout_asm {
    uint8_t id[KURER_ENVELOPE_ID_LEN];
    uint32_t next_part;
    uint8_t *content;
    size_t content_len;
    char **users;
    size_t n_users;
    fo_dev *devs;
    size_t n_devs;
} fanout_asm;

static void asm_free(fanout_asm *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n_users; i++)
        free(a->users[i]);
    free(a->users);
    free(a->devs);
    free(a->content);
    free(a);
}

void kurer__fanout_drop(rconn *rc)
{
    asm_free(rc->fo);
    rc->fo = NULL;
}

/* Refuses the send whole: the typed error, counted; the parts held are dropped. */
static void refuse(rconn *rc, uint64_t request_id, int err)
{
    kurer__fanout_drop(rc);
    rc->r->fanouts_refused++;
    kurer__count_reject(rc->r, err);
    kurer__send_error(rc, request_id, err, err == KURER_ENOMEM);
}

/* Adds a part's users: none already in the send, the devices within the bound. */
static int asm_add(fanout_asm *a, const kurer_fanout_send *fs)
{
    size_t devs = 0;
    for (size_t i = 0; i < fs->n_users; i++)
        devs += fs->users[i].n_devices;
    if (a->n_devs + devs > KURER_FANOUT_DEVICES_MAX)
        return KURER_ELIMIT;
    char **nu = realloc(a->users, (a->n_users + fs->n_users + 1) * sizeof(*nu));
    if (nu == NULL)
        return KURER_ENOMEM;
    a->users = nu;
    fo_dev *nd = realloc(a->devs, (a->n_devs + devs + 1) * sizeof(*nd));
    if (nd == NULL)
        return KURER_ENOMEM;
    a->devs = nd;
    for (size_t i = 0; i < fs->n_users; i++) {
        const kurer_fanout_user *u = &fs->users[i];
        if ((a->users[a->n_users] = strdup(u->user)) == NULL)
            return KURER_ENOMEM;
        for (size_t d = 0; d < u->n_devices; d++)
            a->devs[a->n_devs++] =
                (fo_dev){(uint32_t)a->n_users, u->devices[d].device_id, u->devices[d].serial};
        a->n_users++;
    }
    return 0;
}

static int cmp_name(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Each user once in the whole send (a part's own users are checked by the decoder): sorted
 * copies of the names, n log n. 0, KURER_EDUPLICATE or KURER_ENOMEM. */
static int users_unique(const fanout_asm *a)
{
    char **v = malloc((a->n_users + 1) * sizeof(*v));
    int err = 0;
    if (v == NULL)
        return KURER_ENOMEM;
    memcpy(v, a->users, a->n_users * sizeof(*v));
    qsort(v, a->n_users, sizeof(*v), cmp_name);
    for (size_t i = 1; i < a->n_users && err == 0; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            err = KURER_EDUPLICATE; /* one user in two parts */
    free(v);
    return err;
}

/* Takes one part into the connection's send: 0 (held), or the error that refuses it. */
static int take_part(rconn *rc, const kurer_fanout_send *fs)
{
    if (fs->part == 0) {
        kurer__fanout_drop(rc); /* an unfinished send before it is given up */
        kurer_envelope e;
        memset(&e, 0, sizeof(e));
        e.content_len = fs->content_len;
        int err = kurer__send_envelope_limits(&rc->r->cfg, &e, 1);
        if (err != 0)
            return err; /* as one envelope: within max_envelope and a recipient's record */
        fanout_asm *a = calloc(1, sizeof(*a));
        if (a == NULL || (a->content = malloc(fs->content_len)) == NULL) {
            free(a);
            return KURER_ENOMEM;
        }
        memcpy(a->id, fs->id, sizeof(a->id));
        memcpy(a->content, fs->content, fs->content_len);
        a->content_len = fs->content_len;
        rc->fo = a;
    } else if (rc->fo == NULL || rc->fo->next_part != fs->part ||
               memcmp(rc->fo->id, fs->id, sizeof(fs->id)) != 0) {
        return KURER_EMALFORMED; /* out of order, or of another send */
    }
    rc->fo->next_part = fs->part + 1;
    int err = asm_add(rc->fo, fs);
    return err == 0 && fs->final ? users_unique(rc->fo) : err;
}

/* The answer: the users not accepted; accepted ones are counted. Lists of STALE_DEVICES users
 * that would not fit a record are left out (lists_omitted). 0, or KURER_ELIMIT. */
static int fanout_answer(send_ctx *sc, kurer_buf *out)
{
    kurer_server_frame f;
    kurer_user_result *refused = calloc(sc->n_results + 1, sizeof(*refused));
    size_t n = 0, accepted = 0;
    if (refused == NULL)
        return KURER_ENOMEM;
    for (size_t i = 0; i < sc->n_results; i++)
        if (sc->results[i].status == KURER_SEND_ACCEPTED)
            accepted++;
        else
            refused[n++] = sc->results[i];
    memset(&f, 0, sizeof(f));
    f.request_id = sc->request_id;
    f.body = KURER_SERVER_FANOUT_RESULT;
    memcpy(f.u.fanout_result.id, sc->fanout_id, KURER_ENVELOPE_ID_LEN);
    f.u.fanout_result.refused = refused;
    f.u.fanout_result.n_refused = n;
    f.u.fanout_result.accepted = (uint32_t)accepted;
    int err = KURER_ELIMIT;
    for (int omit = 0; omit < 2 && err != 0; omit++) {
        if (omit) {
            for (size_t i = 0; i < n; i++)
                refused[i].current.n_devices = 0;
            f.u.fanout_result.lists_omitted = 1;
        }
        kurer_buf_reset(out);
        err = kurer_server_frame_encode(&f, out);
        if (err == 0 && out->len > kurer__answer_max(sc->rc->r))
            err = KURER_ELIMIT;
    }
    free(refused);
    return err;
}

static void fanout_reply(send_ctx *sc)
{
    kurer_buf b;
    kurer_server_frame f;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int err = fanout_answer(sc, &b);
    /* it fitted before anything was stored; decoded again only to go through send_frame */
    if (err == 0 && (err = kurer_server_frame_decode(b.data, b.len, &f)) == 0) {
        err = kurer__send_frame(sc->rc, &f);
        kurer_server_frame_release(&f);
    }
    kurer_buf_release(&b);
    if (err == 0)
        sc->rc->r->fanouts_accepted++;
    else if (err != KURER_ECLOSED && sc->rc->c != NULL && !kurer_conn_closing(sc->rc->c))
        kurer__send_error(sc->rc, sc->request_id, KURER_ELIMIT, 0);
}

/* The held send as envelopes (one per device, sharing the content), for send.c's checks. */
static kurer_envelope *as_envelopes(const fanout_asm *a)
{
    kurer_envelope *env = calloc(a->n_devs + 1, sizeof(*env));
    for (size_t i = 0; env != NULL && i < a->n_devs; i++) {
        memcpy(env[i].id, a->id, sizeof(a->id));
        snprintf(env[i].to.user, sizeof(env[i].to.user), "%s", a->users[a->devs[i].user]);
        env[i].to.device_id = a->devs[i].device_id;
        env[i].to_serial = a->devs[i].serial;
        env[i].type = KURER_ENVELOPE_SENDER_KEY;
        env[i].content = a->content;
        env[i].content_len = a->content_len;
    }
    return env;
}

/* One result per user; the accepted users' devices as items, the shared bytes with from and
 * server_ts set here. 0, or the error that refuses the send. */
static int classify(send_ctx *sc, const kurer_envelope *env, size_t n)
{
    relay *r = sc->rc->r;
    size_t stale_bytes = 0, have_cap = 1;
    for (size_t i = 0; i < n; i++) {
        dir_user *du = kurer__dir_user_find(r, env[i].to.user);
        if (du != NULL && du->n > have_cap)
            have_cap = du->n;
    }
    uint32_t *want = calloc(n + 1, sizeof(*want)), *have = calloc(have_cap, sizeof(*have));
    int err = want == NULL || have == NULL
                  ? KURER_ENOMEM
                  : kurer__send_classify(sc, env, n, want, have, &stale_bytes);
    free(want);
    free(have);
    if (err != 0)
        return err;
    kurer_buf b;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    err = fanout_answer(sc, &b); /* every send gets its one answer: it must fit */
    kurer_buf_release(&b);
    if (err == KURER_ELIMIT)
        r->send_results_too_large++;
    /* the results are in the order of the users (the envelopes are grouped by user) */
    for (size_t i = 0, k = 0; err == 0 && i < n; i++) {
        if (i > 0 && strcmp(env[i - 1].to.user, env[i].to.user) != 0)
            k++;
        if (k >= sc->n_results || strcmp(sc->results[k].user, env[i].to.user) != 0)
            return KURER_EINTERNAL; /* cannot be: classify makes one result per run */
        if (sc->results[k].status != KURER_SEND_ACCEPTED)
            continue;
        sc->items[sc->n_items].to = env[i].to;
        sc->items[sc->n_items].from = sc->rc->addr;
        sc->pend[sc->n_items].idx = sc->n_items;
        sc->n_items++;
    }
    sc->undurable = sc->n_items;
    return err;
}

/* The shared bytes: the envelope with from and server_ts set by the relay, without a `to`. */
static int shared_bytes(send_ctx *sc, const kurer_envelope *first)
{
    kurer_buf b;
    kurer_envelope e = *first;
    e.to_serial = 0; /* the sender's, for the check only */
    e.has_from = 1;
    e.from = sc->rc->addr;
    e.server_ts = sc->ts;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int err = kurer_fanout_shared_encode(&e, &b);
    if (err == 0)
        sc->shared = kurer_buf_steal(&b, &sc->shared_len);
    kurer_buf_release(&b);
    return err != 0 ? err : sc->shared != NULL ? 0 : KURER_ENOMEM;
}

/* The put's completion: as a send's (send.c answers), and a refusal by the store (a mailbox
 * bound, a failed commit) counted as the fan-out's. */
static void fanout_on_put(void *arg, int err, const uint64_t *seqs, size_t n, size_t cancelled)
{
    send_ctx *sc = arg;
    if (err == 0)
        sc->rc->r->fanout_refs += sc->n_items;
    else if (!sc->replied) {
        sc->rc->r->fanouts_refused++;
        kurer__count_reject(sc->rc->r, err);
    }
    kurer__send_on_put(arg, err, seqs, n, cancelled);
}

/* The final part came: checks, stores and (from the put's completion) answers the send. */
static int finish(rconn *rc, uint64_t request_id)
{
    relay *r = rc->r;
    fanout_asm *a = rc->fo;
    /* the send rate: a reference costs far less than an envelope (the shared bytes are
     * written once), so a send costs one token and one per 16 devices */
    if (!kurer__rate_take(rc, B_SEND, 1 + a->n_devs / 16)) {
        r->sends_rate_limited++;
        return KURER_ERATE;
    }
    kurer_envelope *env = as_envelopes(a);
    send_ctx *sc = env != NULL ? kurer__send_ctx_new(rc, request_id, a->n_devs) : NULL;
    if (sc == NULL) {
        free(env);
        return KURER_ENOMEM;
    }
    memcpy(sc->fanout_id, a->id, sizeof(a->id));
    sc->reply = fanout_reply;
    sc->grouped = 1; /* as_envelopes: each user's devices in one run, each user once */
    sc->ts = kurer_time_unix() * 1000;
    int err = classify(sc, env, a->n_devs);
    if (err == 0 && sc->n_items > 0)
        err = shared_bytes(sc, &env[0]);
    free(env);
    kurer__fanout_drop(rc);
    if (err == 0 && sc->n_items == 0) {
        fanout_reply(sc); /* nobody accepted: nothing to store */
        kurer__send_ctx_free(sc);
        return 0;
    }
    if (err == 0) {
        int all_early = r->cfg.ack_hold_us > 0;
        for (size_t i = 0; i < sc->n_items && all_early; i++)
            all_early = kurer__send_deliverable_now(r, &sc->items[i]);
        kurer_store_put_req req = {sc->items,
                                   sc->n_items,
                                   {r->cfg.mailbox_max, r->cfg.mailbox_sender_max},
                                   all_early ? r->cfg.ack_hold_us : 0,
                                   kurer__send_on_seqs,
                                   fanout_on_put,
                                   sc};
        rc->refs++;
        if ((err = kurer_store_put_fanout(r->store, &req, sc->shared, sc->shared_len)) == 0)
            return 0; /* on_put answers */
        rc->refs--;
    }
    kurer__send_ctx_free(sc);
    return err;
}

void kurer__handle_fanout(rconn *rc, const kurer_client_frame *f)
{
    const kurer_fanout_send *fs = &f->u.fanout;
    int err = take_part(rc, fs);
    if (err == 0 && !fs->final) {
        kurer__send_ok(rc, f->request_id);
        return;
    }
    if (err == 0)
        err = finish(rc, f->request_id);
    if (err != 0)
        refuse(rc, f->request_id, err);
}
