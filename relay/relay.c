/* kurer-relay: the server. One libuv loop; the store's writer thread is the only other thread.
 * See docs/relay.md for operations and DESIGN.md for the protocol. */
#include "relay.h"

#include <errno.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "kurer/cert.h"
#include "kurer/crypto.h"
#include "kurer/frame.h"
#include "kurer/log.h"
#include "kurer/net.h"
#include "kurer/signal.h"
#include "kurer/util.h"
#include "htab.h"
#include "ratelimit.h"
#include "store.h"

#define NERR 64 /* counters per error code: index -code */

/* ---- state -------------------------------------------------------------------------------- */

/* The directory: per user (a hash table entry), its devices. The chain is kept encoded (a
 * decoded kurer_chain is 4.6 KB; the bytes are a few hundred) and decoded when an answer needs
 * it. */
/* Per-device rates (DESIGN.md: per device, surviving reconnects) live with the device's
 * directory entry. */
enum { B_SEND, B_FETCH, B_LOOKUP, B_PING, N_BUCKETS };

typedef struct dir_entry {
    uint32_t device_id;
    uint64_t serial;
    uint8_t authority_key_id[KURER_KEY_ID_LEN];
    uint64_t authority_serial;             /* on its root's list: the authority is revoked */
    uint8_t root_key_id[KURER_KEY_ID_LEN]; /* whose list that is */
    int64_t not_after;
    uint8_t *chain; /* CertificateChain bytes */
    size_t chain_len;
    kurer__bucket buckets[N_BUCKETS];
} dir_entry;

typedef struct dir_user {
    hnode node;
    dir_entry *devs;
    size_t n, cap;
    char user[]; /* NUL-terminated */
} dir_user;

typedef struct relay relay;

/* The bytes of every list in force, in issuer key id order: the index and the chunks a fetch
 * asks for are served from here (lists of any size travel paged: docs/protocol.md). */
typedef struct held_list {
    uint8_t key_id[KURER_KEY_ID_LEN];
    uint64_t version;
    uint8_t *data;
    size_t len;
} held_list;

typedef struct rconn {
    hnode onode; /* in relay.online while listed */
    int listed;
    relay *r;
    kurer_conn *c; /* NULL once closed */
    struct rconn *next, *prev;
    int refs;
    int authed;
    int preauth;          /* counted in relay.n_preauth (handshake not finished) */
    int nk;               /* an unauthenticated NK session: revocation upload and fetch only */
    int close_counted;    /* the reason for our close is counted already: not again on close */
    int accepted;         /* IK: message 2 sent; waiting for the first record (authed then) */
    kurer__peer_addr *pa; /* its source address (pre-auth count), or NULL */
    kurer_verified v;
    kurer_device_address addr;
    uint32_t queued;   /* envelopes waiting when the handshake was answered */
    uint8_t *hs_chain; /* the handshake's chain (bytes) until authenticated */
    size_t hs_chain_len;
    /* delivery */
    uint64_t last_pushed;
    int fetching, dirty, caught_up, sent_empty;
    /* rates, should the device have no directory entry (it always has one once authed) */
    kurer__bucket own[N_BUCKETS];
    /* a chunked revocation upload in progress (up_cap bytes counted in relay.upload_bytes) */
    uint8_t *up;
    size_t up_len, up_total, up_cap;
    uint64_t up_started_ms;
} rconn;

struct relay {
    uv_loop_t *loop;
    kurer_relay_config cfg;
    kurer_net_limits lim;
    uint8_t *sk;              /* guarded: the one copy of the static key */
    kurer_net_static_key key; /* sk and its public key, borrowed by every connection */
    kurer_trust *trust;
    kurer_store *store;
    uv_tcp_t server;
    uv_tcp_t metrics;
    int have_metrics;
    struct mreq *mreqs; /* metrics requests in progress */
    uv_signal_t sigterm, sigint, sighup;
    const kurer_relay_opts *opts;
    rconn *conns;
    uint64_t n_conns, n_preauth; /* live connections; those still in their handshake */
    uint64_t max_conns;          /* effective max_connections */
    htab dir;                    /* dir_user by user name */
    size_t n_dir;                /* devices in the directory */
    htab online;        /* rconn by device address: the device's live authenticated connection */
    htab pending;       /* pend_item by seq: delivered before their put committed, not yet acked */
    uint64_t next_seq;  /* the next seq to assign */
    uint64_t seq_limit; /* seqs up to here are reserved durably: only those go out early */
    int reserving;
    int stopping;
    /* counters */
    uint64_t connections, handshakes_ok, handshakes_failed, env_accepted, env_delivered, env_acked,
        replaced;
    uint64_t nk_sessions, prekey_uploads, prekeys_handed_out, bundles_without_one_time,
        prekeys_low_pushed, crl_accepted;
    uint64_t rejects[NERR]; /* by error code */
    uint64_t refused_max_conns, refused_max_handshakes;
    uint64_t env_accepted_by_ack, env_write_skipped;
    uint64_t prekey_uploads_over_max, prekey_fetches_rate_limited;
    uint64_t handshakes_unconfirmed, conns_expired, refused_per_address, lookups_rate_limited,
        pings_rate_limited, sends_rate_limited, prekeys_withheld, send_results_too_large;
    uint64_t n_nk;         /* live NK sessions */
    uint64_t upload_bytes; /* held by chunked revocation uploads in progress */
    held_list *held;       /* the bytes of the lists in force, by issuer key id */
    size_t n_held, cap_held;
    kurer__addr_table addrs;
    kurer__take_table takes;
    uv_timer_t sweep;    /* forgets idle address and prekey-take entries */
    uv_timer_t expiry;   /* closes connections whose chain expires */
    int64_t next_expiry; /* unix seconds the expiry timer is set for (0: not set) */
    int timers;
};

#define SEQ_BLOCK ((uint64_t)1 << 20) /* seqs reserved per store write */
/* Entries of the source address and prekey-take tables: beyond them new addresses are refused
 * and one-time prekeys withheld (fail closed), never unmetered. */
#define ADDR_ENTRIES_MAX ((size_t)1 << 16)
#define TAKE_ENTRIES_MAX ((size_t)1 << 18)

/* The connection authenticated (or closed): it no longer counts as pre-auth. */
static void preauth_done(rconn *rc)
{
    if (rc->preauth) {
        rc->preauth = 0;
        rc->r->n_preauth--;
        if (rc->pa != NULL)
            rc->pa->preauth--;
        rc->pa = NULL;
    }
}

static void count_reject(relay *r, int err)
{
    int i = -err;
    if (i > 0 && i < NERR)
        r->rejects[i]++;
}

static void rconn_unref(rconn *rc)
{
    if (--rc->refs == 0)
        free(rc);
}

/* ---- directory ---------------------------------------------------------------------------- */

static dir_user *dir_user_find(relay *r, const char *user)
{
    uint64_t h = htab_hash(&r->dir, user, strlen(user));
    for (hnode *n = htab_first(&r->dir, h); n != NULL; n = htab_next(n, h)) {
        dir_user *u = HTAB_ENTRY(n, dir_user, node);
        if (strcmp(u->user, user) == 0)
            return u;
    }
    return NULL;
}

static dir_entry *dir_find(relay *r, const kurer_device_address *a)
{
    dir_user *u = dir_user_find(r, a->user);
    for (size_t i = 0; u != NULL && i < u->n; i++)
        if (u->devs[i].device_id == a->device_id)
            return &u->devs[i];
    return NULL;
}

/* Decodes an entry's chain (the bytes were decoded before, so this only fails on ENOMEM). */
static int dir_chain(const dir_entry *e, kurer_chain *out)
{
    return kurer_chain_decode(e->chain, e->chain_len, out);
}

static void dir_free(relay *r)
{
    for (size_t i = 0; r->dir.b != NULL && i <= r->dir.mask; i++)
        for (hnode *n = r->dir.b[i], *next; n != NULL; n = next) {
            next = n->next;
            dir_user *u = HTAB_ENTRY(n, dir_user, node);
            for (size_t k = 0; k < u->n; k++)
                free(u->devs[k].chain);
            free(u->devs);
            free(u);
        }
    htab_free(&r->dir);
}

/* A device counts as current while its chain is valid and neither it nor its authority is
 * revoked. */
static int dir_current(relay *r, const dir_entry *e, int64_t now)
{
    if (e->not_after <= now)
        return 0;
    kurer_verified v;
    v.serial = e->serial;
    v.authority_serial = e->authority_serial;
    memcpy(v.authority_key_id, e->authority_key_id, KURER_KEY_ID_LEN);
    memcpy(v.root_key_id, e->root_key_id, KURER_KEY_ID_LEN);
    return !kurer_trust_chain_revoked(r->trust, &v);
}

static uint64_t bucket_rate(const relay *r, int which)
{
    switch (which) {
    case B_SEND:
        return r->cfg.send_rate;
    case B_FETCH:
        return r->cfg.fetch_rate;
    case B_LOOKUP:
        return r->cfg.lookup_rate;
    default:
        return r->cfg.ping_rate;
    }
}

static void buckets_init(const relay *r, kurer__bucket *b)
{
    uint64_t now = kurer_time_mono_ms();
    for (int i = 0; i < N_BUCKETS; i++)
        kurer__bucket_init(&b[i], bucket_rate(r, i), now);
}

/* Records (or replaces) a device with its chain bytes (copied). */
static int dir_put(relay *r, const kurer_device_address *a, const kurer_verified *v,
                   const uint8_t *chain, size_t chain_len)
{
    uint8_t *copy = malloc(chain_len ? chain_len : 1);
    if (copy == NULL)
        return KURER_ENOMEM;
    memcpy(copy, chain, chain_len);
    dir_entry *e = dir_find(r, a);
    if (e == NULL) {
        dir_user *u = dir_user_find(r, a->user);
        if (u == NULL) {
            size_t ulen = strlen(a->user);
            u = calloc(1, sizeof(*u) + ulen + 1);
            if (u == NULL) {
                free(copy);
                return KURER_ENOMEM;
            }
            memcpy(u->user, a->user, ulen + 1);
            htab_insert(&r->dir, &u->node, htab_hash(&r->dir, a->user, ulen));
        }
        if (u->n == u->cap) {
            size_t cap = u->cap ? u->cap * 2 : 1;
            dir_entry *nd = realloc(u->devs, cap * sizeof(*nd));
            if (nd == NULL) {
                free(copy);
                return KURER_ENOMEM;
            }
            u->devs = nd;
            u->cap = cap;
        }
        e = &u->devs[u->n++];
        memset(e, 0, sizeof(*e));
        buckets_init(r, e->buckets);
        r->n_dir++;
    }
    e->device_id = a->device_id;
    e->serial = v->serial;
    memcpy(e->authority_key_id, v->authority_key_id, KURER_KEY_ID_LEN);
    e->authority_serial = v->authority_serial;
    memcpy(e->root_key_id, v->root_key_id, KURER_KEY_ID_LEN);
    e->not_after = v->not_after;
    free(e->chain);
    e->chain = copy;
    e->chain_len = chain_len;
    return 0;
}

static void on_dir_loaded(void *arg, const kurer_store_device *d)
{
    relay *r = arg;
    kurer_chain ch;
    kurer_verified v;
    if (kurer_chain_decode(d->chain, d->chain_len, &ch) != 0 ||
        kurer_trust_verify_chain(r->trust, &ch, kurer_time_unix(), &v) != 0)
        return; /* expired, revoked or from a root no longer pinned: not current */
    (void)dir_put(r, &d->addr, &v, d->chain, d->chain_len);
}

/* ---- sending frames ----------------------------------------------------------------------- */

static int send_frame(rconn *rc, const kurer_server_frame *f)
{
    kurer_buf b;
    if (rc->c == NULL || kurer_conn_closing(rc->c))
        return KURER_ECLOSED;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    int err = kurer_server_frame_encode(f, &b);
    if (err != 0) {
        /* Too big or refused by our own encoder: the caller answers with an error instead. */
        kurer_buf_release(&b);
        return err;
    }
    if (b.len + KURER_NOISE_TAGLEN > rc->r->lim.max_record) {
        /* larger than a record (max_record below 65535): an answer the caller refuses with an
         * Error, not a peer that does not read */
        kurer_buf_release(&b);
        return KURER_ELIMIT;
    }
    err = kurer_conn_send(rc->c, b.data, b.len);
    kurer_buf_release(&b);
    if (err == KURER_ELIMIT) {
        /* the peer does not read what we send: drop it */
        count_reject(rc->r, KURER_ELIMIT);
        rc->close_counted = 1;
        kurer_conn_close(rc->c, KURER_ELIMIT);
    }
    return err;
}

static void send_error(rconn *rc, uint64_t request_id, int code, int close)
{
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = request_id;
    f.body = KURER_SERVER_ERROR;
    f.u.error.code = code;
    f.u.error.message = kurer_strerror(code);
    count_reject(rc->r, code);
    (void)send_frame(rc, &f);
    if (close && rc->c != NULL) {
        rc->close_counted = 1;
        kurer_conn_close_after_flush(rc->c, code);
    }
}

/* ---- delivery ----------------------------------------------------------------------------- */

static void start_fetch(rconn *rc);

/* Pushes one envelope; 0, or an error after which pushing stops. */
static int push_env(rconn *rc, uint64_t seq, const kurer_envelope *e)
{
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.body = KURER_SERVER_DELIVER;
    f.u.deliver.seq = seq;
    f.u.deliver.envelope = *e;
    int err = send_frame(rc, &f);
    if (err == 0) {
        rc->last_pushed = seq;
        rc->r->env_delivered++;
    }
    return err;
}

/* Pushes one stored envelope; 0, or an error after which pushing stops. */
static int push(rconn *rc, uint64_t seq, const uint8_t *env, size_t len)
{
    kurer_envelope e;
    kurer_arena mem = {0};
    int err = kurer_envelope_decode(env, len, &e, &mem);
    if (err != 0) {
        kurer_arena_release(&mem);
        return 0; /* cannot happen for what we stored; skip rather than wedge the mailbox */
    }
    err = push_env(rc, seq, &e);
    kurer_arena_release(&mem);
    return err;
}

static void on_fetched(void *arg, int err, const kurer_store_row *rows, size_t n, uint64_t total)
{
    rconn *rc = arg;
    (void)total;
    rc->fetching = 0;
    if (rc->c == NULL || kurer_conn_closing(rc->c) || err != 0) {
        if (err != 0 && rc->c != NULL)
            send_error(rc, 0, err, 1);
        rconn_unref(rc);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i].seq <= rc->last_pushed)
            continue;
        if (push(rc, rows[i].seq, rows[i].env, rows[i].len) != 0)
            break;
    }
    if (rc->c != NULL && !kurer_conn_closing(rc->c)) {
        if (kurer_conn_congested(rc->c)) {
            rc->dirty = 1; /* on_drain fetches again */
        } else if (n >= rc->r->cfg.deliver_batch || rc->dirty) {
            start_fetch(rc);
        } else {
            rc->caught_up = 1;
            if (!rc->sent_empty) {
                kurer_server_frame f;
                memset(&f, 0, sizeof(f));
                f.body = KURER_SERVER_QUEUE_EMPTY;
                (void)send_frame(rc, &f);
                rc->sent_empty = 1;
            }
        }
    }
    rconn_unref(rc);
}

static void start_fetch(rconn *rc)
{
    if (rc->fetching || rc->c == NULL || kurer_conn_closing(rc->c))
        return;
    if (kurer_conn_congested(rc->c)) {
        rc->dirty = 1;
        return;
    }
    rc->caught_up = 0;
    rc->dirty = 0;
    rc->fetching = 1;
    rc->refs++;
    if (kurer_store_fetch(rc->r->store, &rc->addr, rc->last_pushed,
                          (size_t)rc->r->cfg.deliver_batch, on_fetched, rc) != 0) {
        rc->fetching = 0;
        rc->refs--;
        kurer_conn_close(rc->c, KURER_ENOMEM);
    }
}

static rconn *online(relay *r, const kurer_device_address *a)
{
    uint64_t h = htab_hash_dev(&r->online, a->user, a->device_id);
    for (hnode *n = htab_first(&r->online, h); n != NULL; n = htab_next(n, h)) {
        rconn *rc = HTAB_ENTRY(n, rconn, onode);
        if (rc->addr.device_id == a->device_id && strcmp(rc->addr.user, a->user) == 0)
            return rc->c != NULL && !kurer_conn_closing(rc->c) ? rc : NULL;
    }
    return NULL;
}

/* rc (just authenticated) becomes its device's live connection, replacing any other. */
static void online_set(relay *r, rconn *rc)
{
    uint64_t h = htab_hash_dev(&r->online, rc->addr.user, rc->addr.device_id);
    for (hnode *n = htab_first(&r->online, h); n != NULL; n = htab_next(n, h)) {
        rconn *old = HTAB_ENTRY(n, rconn, onode);
        if (old->addr.device_id == rc->addr.device_id &&
            strcmp(old->addr.user, rc->addr.user) == 0) {
            htab_remove(&r->online, &old->onode);
            old->listed = 0;
            break;
        }
    }
    htab_insert(&r->online, &rc->onode, h);
    rc->listed = 1;
}

/* ---- send --------------------------------------------------------------------------------- */

/* Durability (DESIGN.md, relay store): the sender of a request is told ACCEPTED once every
 * envelope of it is durable: committed by the store, or acked by its recipient device (whose
 * own store committed it first). An envelope whose device is connected and caught up is
 * delivered as soon as its put is submitted, before the commit; if the ack comes back before
 * the commit, the put and the ack cancel in the store and the envelope is never written. */
struct send_ctx;
typedef struct pend_item {
    hnode node; /* in relay.pending (key: seq) while listed */
    int listed;
    struct send_ctx *sc;
    size_t idx;
} pend_item;

typedef struct send_ctx {
    rconn *rc;
    uint64_t request_id;
    kurer_user_result *results;
    size_t n_results;
    kurer_store_item *items; /* accepted envelopes (with their seqs) */
    size_t n_items;
    kurer_buf envs;
    size_t *offs;
    pend_item *pend;  /* per item */
    size_t undurable; /* items neither committed nor acked */
    int replied;
} send_ctx;

static uint64_t seq_hash(relay *r, uint64_t seq)
{
    return htab_hash(&r->pending, &seq, sizeof(seq));
}

static void pend_remove(relay *r, pend_item *pi)
{
    if (pi->listed) {
        htab_remove(&r->pending, &pi->node);
        pi->listed = 0;
    }
}

static void on_reserved(void *arg, int err)
{
    relay *r = arg;
    r->reserving = 0;
    if (err == 0 && r->seq_limit + SEQ_BLOCK > r->seq_limit)
        r->seq_limit += SEQ_BLOCK;
}

/* The next seq; extends the durable reservation ahead of use. */
static uint64_t next_seq(relay *r)
{
    uint64_t seq = r->next_seq++;
    if (!r->reserving && r->next_seq + SEQ_BLOCK / 2 > r->seq_limit &&
        kurer_store_reserve_seqs(r->store, r->seq_limit + SEQ_BLOCK, on_reserved, r) == 0)
        r->reserving = 1;
    return seq;
}

static void send_ctx_free(send_ctx *sc)
{
    for (size_t i = 0; sc->results != NULL && i < sc->n_results; i++) {
        free((void *)sc->results[i].user);
        free((void *)sc->results[i].current.devices);
    }
    free(sc->results);
    free(sc->items);
    free(sc->offs);
    free(sc->pend);
    kurer_buf_release(&sc->envs);
    free(sc);
}

static void reply_send(send_ctx *sc)
{
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = sc->request_id;
    f.body = KURER_SERVER_SEND_RESULT;
    f.u.send_result.users = sc->results;
    f.u.send_result.n = sc->n_results;
    /* checked to fit before anything was stored (send_result_fits); should it fail all the
     * same, the request still gets its one answer */
    int err = send_frame(sc->rc, &f);
    if (err != 0 && err != KURER_ECLOSED && sc->rc->c != NULL && !kurer_conn_closing(sc->rc->c))
        send_error(sc->rc, sc->request_id, KURER_ELIMIT, 0);
}

/* Every envelope of the request is durable: the sender learns it (once). */
static void send_accepted(send_ctx *sc, int by_ack)
{
    relay *r = sc->rc->r;
    if (sc->replied)
        return;
    sc->replied = 1;
    r->env_accepted += sc->n_items;
    if (by_ack)
        r->env_accepted_by_ack += sc->n_items;
    reply_send(sc);
}

static void on_put(void *arg, int err, const uint64_t *seqs, size_t n, size_t cancelled)
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
        send_error(sc->rc, sc->request_id, err, 0);
    } else {
        send_accepted(sc, 0);
    }
    rconn_unref(sc->rc);
    send_ctx_free(sc);
}

/* The recipient device rc acked seq: if the envelope was delivered before its commit, it is
 * durable now. */
static void acked_early(rconn *rc, uint64_t seq)
{
    relay *r = rc->r;
    uint64_t h = seq_hash(r, seq);
    for (hnode *n = htab_first(&r->pending, h); n != NULL; n = htab_next(n, h)) {
        pend_item *pi = HTAB_ENTRY(n, pend_item, node);
        send_ctx *sc = pi->sc;
        const kurer_store_item *it = &sc->items[pi->idx];
        if (it->seq != seq)
            continue;
        /* only the recipient's own ack counts */
        if (it->to.device_id != rc->addr.device_id || strcmp(it->to.user, rc->addr.user) != 0)
            return;
        pend_remove(r, pi);
        if (--sc->undurable == 0)
            send_accepted(sc, 1);
        return;
    }
}

/* Whether an envelope for to (its device's live connection) goes out before its commit. */
static int can_push(relay *r, rconn *to, const kurer_store_item *it)
{
    return to->caught_up && !to->fetching && !kurer_conn_congested(to->c) &&
           it->seq <= r->seq_limit && it->seq > to->last_pushed;
}

static int deliverable_now(relay *r, const kurer_store_item *it)
{
    rconn *to = online(r, &it->to);
    return to != NULL && can_push(r, to, it);
}

/* After the put of sc was submitted: delivers each envelope whose device is connected and caught
 * up at once (listing it as pending), and wakes the fetch of the others that are connected. */
static void deliver_early(relay *r, send_ctx *sc, const kurer_envelope *env, size_t n_env,
                          const uint8_t *accepted, int64_t ts)
{
    size_t k = 0;
    for (size_t i = 0; i < n_env && k < sc->n_items; i++) {
        if (!accepted[i])
            continue;
        kurer_store_item *it = &sc->items[k];
        pend_item *pi = &sc->pend[k];
        k++;
        rconn *to = online(r, &it->to);
        if (to == NULL)
            continue;
        if (can_push(r, to, it)) {
            kurer_envelope e = env[i];
            e.has_from = 1;
            e.from = sc->rc->addr;
            e.server_ts = ts;
            if (push_env(to, it->seq, &e) == 0) {
                pi->sc = sc;
                pi->listed = 1;
                htab_insert(&r->pending, &pi->node, seq_hash(r, it->seq));
            }
            if (to->c != NULL && kurer_conn_congested(to->c))
                to->caught_up = 0, to->dirty = 1;
        } else {
            /* its fetch (submitted after the put) will find it */
            to->dirty = 1;
            start_fetch(to);
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Takes n tokens of the device's bucket (kept with its directory entry, so across
 * reconnects); 0 if it does not hold them. */
static int rate_take(rconn *rc, int which, size_t n)
{
    dir_entry *e = dir_find(rc->r, &rc->addr);
    kurer__bucket *b = e != NULL ? &e->buckets[which] : &rc->own[which];
    return kurer__bucket_take(b, bucket_rate(rc->r, which), n, kurer_time_mono_ms());
}

/* Whether the SendResult for sc fits one frame. stale_bytes: the chain bytes its STALE_DEVICES
 * results carry. Only a result near the bound is encoded to find out. */
/* The largest answer a connection can take: a frame, within one record. */
static size_t answer_max(const relay *r)
{
    size_t rec = r->lim.max_record - KURER_NOISE_TAGLEN;
    return rec < KURER_FRAME_MAX ? rec : KURER_FRAME_MAX;
}

static int send_result_fits(send_ctx *sc, size_t stale_bytes)
{
    if (stale_bytes > answer_max(sc->rc->r))
        return 0; /* its chains alone are too many (and were not all decoded) */
    /* a generous bound: a STALE_DEVICES result names its user twice */
    size_t estimate = 16 + stale_bytes;
    for (size_t i = 0; i < sc->n_results; i++)
        estimate += 2 * strlen(sc->results[i].user) + 32;
    if (estimate <= answer_max(sc->rc->r))
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
    return err == 0 && len <= answer_max(sc->rc->r);
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
        if (dir_current(r, &du->devs[d], now) &&
            !(own && du->devs[d].device_id == rc->addr.device_id))
            bytes += du->devs[d].chain_len + 8;
    if (before + bytes <= answer_max(r))
        chains = calloc(nh ? nh : 1, sizeof(*chains));
    for (size_t d = 0; chains != NULL && du != NULL && d < du->n; d++)
        if (dir_current(r, &du->devs[d], now) &&
            !(own && du->devs[d].device_id == rc->addr.device_id) && cnt < KURER_USER_DEVICES_MAX &&
            dir_chain(&du->devs[d], &chains[cnt]) == 0)
            cnt++;
    cur->devices = chains;
    cur->n_devices = cnt;
    return bytes;
}

static void handle_send(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    const kurer_envelope *env = f->u.send.envelopes;
    size_t n = f->u.send.n;
    int64_t now = kurer_time_unix();
    if (n > r->cfg.max_send_envelopes) {
        send_error(rc, f->request_id, KURER_ELIMIT, 0);
        return;
    }
    /* Every envelope accepted must fit, as a Deliver, in one of the recipient's records: one
     * that cannot would cost the recipient its connection at every delivery attempt. */
    uint64_t room = r->cfg.max_record - KURER_NOISE_TAGLEN - KURER_ENVELOPE_OVERHEAD_MAX;
    if (r->cfg.max_record < KURER_NOISE_TAGLEN + KURER_ENVELOPE_OVERHEAD_MAX)
        room = 0;
    for (size_t i = 0; i < n; i++)
        if (env[i].content_len > r->cfg.max_envelope || env[i].content_len > room) {
            send_error(rc, f->request_id, KURER_ELIMIT, 0);
            return;
        }
    if (!rate_take(rc, B_SEND, n)) {
        r->sends_rate_limited++;
        send_error(rc, f->request_id, KURER_ERATE, 0);
        return;
    }
    send_ctx *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        goto nomem;
    sc->rc = rc;
    sc->request_id = f->request_id;
    sc->results = calloc(n, sizeof(*sc->results));
    sc->items = calloc(n, sizeof(*sc->items));
    sc->offs = calloc(n, sizeof(*sc->offs));
    sc->pend = calloc(n, sizeof(*sc->pend));
    uint8_t *accepted = calloc(n, 1);
    uint32_t *want = calloc(n, sizeof(*want));
    size_t have_cap = 1;
    for (size_t i = 0; i < n; i++) {
        dir_user *du = dir_user_find(r, env[i].to.user);
        if (du != NULL && du->n > have_cap)
            have_cap = du->n;
    }
    uint32_t *have = calloc(have_cap, sizeof(*have));
    kurer_buf_init(&sc->envs, (size_t)n * KURER_FRAME_MAX);
    if (sc->results == NULL || sc->items == NULL || sc->offs == NULL || sc->pend == NULL ||
        accepted == NULL || want == NULL || have == NULL) {
        free(want);
        free(have);
        free(accepted);
        send_ctx_free(sc);
        goto nomem;
    }
    /* Per recipient user: the devices asked for must be exactly its current devices (the
     * sender's own device excepted). */
    size_t stale_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const char *user = env[i].to.user;
        int seen = 0;
        for (size_t k = 0; k < sc->n_results; k++)
            if (strcmp(sc->results[k].user, user) == 0)
                seen = 1;
        if (seen)
            continue;
        kurer_user_result *ur = &sc->results[sc->n_results++];
        ur->user = strdup(user);
        if (ur->user == NULL) {
            free(want);
            free(have);
            free(accepted);
            send_ctx_free(sc);
            goto nomem;
        }
        size_t nw = 0, nh = 0;
        for (size_t j = i; j < n; j++)
            if (strcmp(env[j].to.user, user) == 0)
                want[nw++] = env[j].to.device_id;
        dir_user *du = dir_user_find(r, user);
        int own = strcmp(user, rc->addr.user) == 0;
        for (size_t d = 0; du != NULL && d < du->n; d++)
            if (dir_current(r, &du->devs[d], now) &&
                !(own && du->devs[d].device_id == rc->addr.device_id))
                have[nh++] = du->devs[d].device_id;
        int known = nh > 0 || strcmp(user, rc->addr.user) == 0;
        qsort(want, nw, sizeof(*want), cmp_u32);
        qsort(have, nh, sizeof(*have), cmp_u32);
        /* Several envelopes for one device in one request are allowed: compare sets. */
        size_t u = 0;
        for (size_t j = 0; j < nw; j++)
            if (u == 0 || want[u - 1] != want[j])
                want[u++] = want[j];
        nw = u;
        if (!known) {
            ur->status = KURER_SEND_UNKNOWN_USER;
            count_reject(r, KURER_EUNKNOWNUSER);
        } else if (nw != nh || memcmp(want, have, nw * sizeof(*want)) != 0) {
            ur->status = KURER_SEND_STALE_DEVICES;
            count_reject(r, KURER_ESTALEDEVICES);
            stale_bytes += stale_current(rc, du, own, nh, stale_bytes, &ur->current);
            ur->current.user = ur->user;
        } else {
            ur->status = KURER_SEND_ACCEPTED;
        }
    }
    free(want);
    free(have);
    /* Every request gets exactly one answer: one that would not fit a frame is refused before
     * anything of it is stored. */
    if (!send_result_fits(sc, stale_bytes)) {
        r->send_results_too_large++;
        free(accepted);
        send_ctx_free(sc);
        send_error(rc, f->request_id, KURER_ELIMIT, 0);
        return;
    }
    /* Envelopes of accepted users, with from and server_ts set here. */
    int64_t ts = kurer_time_unix() * 1000;
    for (size_t i = 0; i < n; i++) {
        kurer_user_result *ur = NULL;
        for (size_t k = 0; k < sc->n_results; k++)
            if (strcmp(sc->results[k].user, env[i].to.user) == 0)
                ur = &sc->results[k];
        if (ur == NULL || ur->status != KURER_SEND_ACCEPTED)
            continue;
        kurer_envelope e = env[i];
        e.has_from = 1;
        e.from = rc->addr;
        e.server_ts = ts;
        size_t before = sc->envs.len;
        int err = kurer_envelope_encode(&e, &sc->envs);
        if (err != 0) {
            free(accepted);
            send_ctx_free(sc);
            send_error(rc, f->request_id, err, 0);
            return;
        }
        accepted[i] = 1;
        sc->offs[sc->n_items] = before;
        sc->items[sc->n_items].to = env[i].to;
        sc->items[sc->n_items].from = rc->addr;
        sc->items[sc->n_items].len = sc->envs.len - before;
        sc->n_items++;
    }
    for (size_t i = 0; i < sc->n_items; i++) {
        sc->items[i].env = sc->envs.data + sc->offs[i];
        sc->items[i].seq = next_seq(r);
        sc->pend[i].idx = i;
    }
    sc->undurable = sc->n_items;
    /* Results for stale users point at calloc'ed chains: freed after the reply. */
    if (sc->n_items == 0) {
        free(accepted);
        reply_send(sc);
        send_ctx_free(sc);
        return;
    }
    /* Every envelope goes out before its commit: the store may hold the put for their acks
     * (ack_hold_us), and write nothing if they all come in time. */
    int all_early = r->cfg.ack_hold_us > 0;
    for (size_t i = 0; i < sc->n_items && all_early; i++)
        all_early = deliverable_now(r, &sc->items[i]);
    rc->refs++;
    kurer_store_limits lim = {r->cfg.mailbox_max, r->cfg.mailbox_sender_max};
    if ((all_early ? kurer_store_put_held(r->store, sc->items, sc->n_items, &lim,
                                          r->cfg.ack_hold_us, on_put, sc)
                   : kurer_store_put(r->store, sc->items, sc->n_items, &lim, on_put, sc)) != 0) {
        rc->refs--;
        free(accepted);
        send_ctx_free(sc);
        goto nomem;
    }
    deliver_early(r, sc, env, n, accepted, ts);
    free(accepted);
    return;
nomem:
    send_error(rc, f->request_id, KURER_ENOMEM, 1);
}

/* ---- other requests ----------------------------------------------------------------------- */

typedef struct req_ctx {
    rconn *rc;
    uint64_t request_id;
} req_ctx;

static void on_acked(void *arg, int err)
{
    req_ctx *q = arg;
    if (err != 0) {
        send_error(q->rc, q->request_id, err, 0);
    } else {
        kurer_server_frame f;
        memset(&f, 0, sizeof(f));
        f.request_id = q->request_id;
        f.body = KURER_SERVER_OK;
        (void)send_frame(q->rc, &f);
    }
    rconn_unref(q->rc);
    free(q);
}

static void handle_ack(rconn *rc, const kurer_client_frame *f)
{
    req_ctx *q = malloc(sizeof(*q));
    if (q == NULL) {
        send_error(rc, f->request_id, KURER_ENOMEM, 1);
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
        send_error(rc, f->request_id, KURER_ENOMEM, 1);
        return;
    }
    rc->r->env_acked += f->u.ack.n;
    if (rc->r->pending.n > 0)
        for (size_t i = 0; i < f->u.ack.n; i++)
            acked_early(rc, f->u.ack.seqs[i]);
}

/* Lookups are metered per device (lookup_rate) and cost what they find: memory for the chains of
 * current devices only. Unknown users, and users with no current device, are left out of the
 * answer (docs/protocol.md). */
static void handle_lookup(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    int64_t now = kurer_time_unix();
    /* metered per user looked up: the directory cannot be enumerated 64 names at a time */
    if (!rate_take(rc, B_LOOKUP, f->u.lookup.n)) {
        r->lookups_rate_limited++;
        send_error(rc, f->request_id, KURER_ERATE, 0);
        return;
    }
    size_t total = 0;
    for (size_t i = 0; i < f->u.lookup.n; i++) {
        dir_user *du = dir_user_find(r, f->u.lookup.users[i]);
        size_t cur = 0;
        for (size_t d = 0; du != NULL && d < du->n; d++)
            cur += dir_current(r, &du->devs[d], now) ? 1 : 0;
        total += cur < KURER_USER_DEVICES_MAX ? cur : KURER_USER_DEVICES_MAX;
    }
    kurer_user_devices *ud = calloc(f->u.lookup.n ? f->u.lookup.n : 1, sizeof(*ud));
    kurer_chain *chains = calloc(total ? total : 1, sizeof(*chains));
    if (ud == NULL || chains == NULL) {
        free(ud);
        free(chains);
        send_error(rc, f->request_id, KURER_ENOMEM, 0);
        return;
    }
    size_t n_users = 0, used = 0;
    for (size_t i = 0; i < f->u.lookup.n; i++) {
        dir_user *du = dir_user_find(r, f->u.lookup.users[i]);
        kurer_user_devices *u = &ud[n_users];
        int dup = 0;
        for (size_t k = 0; k < n_users; k++)
            dup |= strcmp(ud[k].user, f->u.lookup.users[i]) == 0;
        if (du == NULL || dup)
            continue;
        u->user = du->user;
        u->devices = chains + used;
        for (size_t d = 0; d < du->n && u->n_devices < KURER_USER_DEVICES_MAX && used < total; d++)
            if (dir_current(r, &du->devs[d], now) && dir_chain(&du->devs[d], &chains[used]) == 0) {
                u->n_devices++;
                used++;
            }
        if (u->n_devices > 0)
            n_users++;
    }
    kurer_server_frame out;
    memset(&out, 0, sizeof(out));
    out.request_id = f->request_id;
    out.body = KURER_SERVER_DIRECTORY;
    out.u.directory.users = ud;
    out.u.directory.n = n_users;
    int err = send_frame(rc, &out);
    if (err != 0 && err != KURER_ECLOSED && rc->c != NULL && !kurer_conn_closing(rc->c))
        send_error(rc, f->request_id, KURER_ELIMIT, 0);
    free(ud);
    free(chains);
}

/* ---- prekeys ------------------------------------------------------------------------------ */

static void send_ok(rconn *rc, uint64_t request_id)
{
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = request_id;
    f.body = KURER_SERVER_OK;
    (void)send_frame(rc, &f);
}

/* Tells a connected device that it holds fewer one-time prekeys than prekeys_low. */
static void push_prekeys_low(relay *r, const kurer_device_address *a, uint64_t remaining)
{
    rconn *rc = online(r, a);
    if (rc == NULL || remaining >= r->cfg.prekeys_low)
        return;
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.body = KURER_SERVER_PREKEYS_LOW;
    f.u.prekeys_low.remaining = (uint32_t)remaining;
    if (send_frame(rc, &f) == 0)
        r->prekeys_low_pushed++;
}

static void on_prekeys_counted(void *arg, int err, uint64_t count)
{
    rconn *rc = arg;
    /* KURER_ENOTFOUND: never uploaded, so it holds none. */
    if (rc->c != NULL && !kurer_conn_closing(rc->c) && (err == 0 || err == KURER_ENOTFOUND))
        push_prekeys_low(rc->r, &rc->addr, err == 0 ? count : 0);
    rconn_unref(rc);
}

typedef struct req_ctx2 {
    rconn *rc;
    uint64_t request_id;
} req_ctx2;

static void on_prekeys_stored(void *arg, int err, uint64_t count)
{
    req_ctx2 *q = arg;
    (void)count;
    if (err == KURER_ELIMIT)
        q->rc->r->prekey_uploads_over_max++;
    if (err != 0) {
        send_error(q->rc, q->request_id, err, 0);
    } else {
        q->rc->r->prekey_uploads++;
        send_ok(q->rc, q->request_id);
    }
    rconn_unref(q->rc);
    free(q);
}

static void handle_prekeys(rconn *rc, const kurer_client_frame *f)
{
    const kurer_prekey_upload *u = &f->u.prekeys;
    /* The signed prekey must be signed by the identity key of this device's certificate:
     * a relay that stored anything else would let X3DH start from a key nobody vouches for. */
    int err = kurer_identity_verify(rc->v.identity_key, u->signed_prekey.public_key,
                                    KURER_PREKEY_PUBLIC_LEN, u->signed_prekey.signature);
    if (err != 0) {
        send_error(rc, f->request_id, err == KURER_ENOMEM ? err : KURER_EBADSIG, 0);
        return;
    }
    /* The pool is bounded (prekeys_max): an upload that alone is over it needs no store. */
    if (u->n_one_time > rc->r->cfg.prekeys_max) {
        rc->r->prekey_uploads_over_max++;
        send_error(rc, f->request_id, KURER_ELIMIT, 0);
        return;
    }
    req_ctx2 *q = malloc(sizeof(*q));
    kurer_store_prekeys p;
    if (q == NULL) {
        send_error(rc, f->request_id, KURER_ENOMEM, 0);
        return;
    }
    memset(&p, 0, sizeof(p));
    p.dev = rc->addr;
    p.registration_id = u->registration_id;
    p.signed_prekey = u->signed_prekey;
    p.one_time = u->one_time;
    p.n_one_time = u->n_one_time;
    p.max_one_time = rc->r->cfg.prekeys_max;
    q->rc = rc;
    q->request_id = f->request_id;
    rc->refs++;
    if (kurer_store_put_prekeys(rc->r->store, &p, on_prekeys_stored, q) != 0) {
        rc->refs--;
        free(q);
        send_error(rc, f->request_id, KURER_ENOMEM, 0);
    }
}

static void on_prekeys_taken(void *arg, int err, const kurer_store_bundle *b, size_t n)
{
    req_ctx2 *q = arg;
    rconn *rc = q->rc;
    relay *r = rc->r;
    kurer_prekey_bundle out[KURER_USER_DEVICES_MAX];
    size_t m = 0;
    if (err != 0) {
        send_error(rc, q->request_id, err, 0);
        goto done;
    }
    for (size_t i = 0; i < n && m < KURER_USER_DEVICES_MAX; i++) {
        /* The owner learns about a low pool whether or not the asker is still here. */
        push_prekeys_low(r, &b[i].dev, b[i].remaining);
        if (b[i].has_one_time)
            r->prekeys_handed_out++;
        else
            r->bundles_without_one_time++;
        const dir_entry *e = dir_find(r, &b[i].dev);
        if (e == NULL)
            continue; /* cannot happen: fetches ask only for directory devices */
        memset(&out[m], 0, sizeof(out[m]));
        if (dir_chain(e, &out[m].chain) != 0)
            continue;
        out[m].address = b[i].dev;
        out[m].registration_id = b[i].registration_id;
        out[m].signed_prekey = b[i].signed_prekey;
        out[m].has_one_time = b[i].has_one_time;
        out[m].one_time = b[i].one_time;
        m++;
    }
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.request_id = q->request_id;
    f.body = KURER_SERVER_BUNDLES;
    f.u.bundles.bundles = out;
    f.u.bundles.n = m;
    if (send_frame(rc, &f) != 0 && rc->c != NULL && !kurer_conn_closing(rc->c))
        send_error(rc, q->request_id, KURER_ELIMIT, 0);
done:
    rconn_unref(rc);
    free(q);
}

static void handle_fetch_prekeys(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    const kurer_prekey_fetch *pf = &f->u.fetch_prekeys;
    kurer_device_address devs[KURER_USER_DEVICES_MAX];
    size_t n = 0;
    int64_t now = kurer_time_unix();
    /* Each fetch takes one-time prekeys of other users: one device may not drain them. */
    if (!rate_take(rc, B_FETCH, 1)) {
        r->prekey_fetches_rate_limited++;
        send_error(rc, f->request_id, KURER_ERATE, 0);
        return;
    }
    /* Only current devices (valid, unrevoked chain in the directory); listed ids that are not
     * current are left out of the answer, like unknown users in a lookup. */
    dir_user *du = dir_user_find(r, pf->user);
    for (size_t d = 0; du != NULL && d < du->n && n < KURER_USER_DEVICES_MAX; d++) {
        const dir_entry *e = &du->devs[d];
        if (!dir_current(r, e, now))
            continue;
        int wanted = pf->n_device_ids == 0;
        for (size_t k = 0; k < pf->n_device_ids && !wanted; k++)
            wanted = pf->device_ids[k] == e->device_id;
        if (wanted) {
            memset(&devs[n], 0, sizeof(devs[n]));
            snprintf(devs[n].user, sizeof(devs[n].user), "%s", du->user);
            devs[n].device_id = e->device_id;
            n++;
        }
    }
    /* One device may take only prekey_take_max one-time prekeys of another user's devices per
     * window; beyond it the bundles carry the signed prekey alone (X3DH works without). A
     * device's own other devices are not metered: its sync sessions need them. */
    size_t one_time = n;
    if (strcmp(pf->user, rc->addr.user) != 0 && r->cfg.prekey_take_max > 0) {
        one_time = kurer__take_grant(&r->takes, &rc->addr, pf->user, n, r->cfg.prekey_take_max,
                                     r->cfg.prekey_take_window_s * 1000, kurer_time_mono_ms());
        r->prekeys_withheld += n - one_time;
    }
    req_ctx2 *q = malloc(sizeof(*q));
    if (q == NULL) {
        send_error(rc, f->request_id, KURER_ENOMEM, 0);
        return;
    }
    q->rc = rc;
    q->request_id = f->request_id;
    rc->refs++;
    if (kurer_store_take_prekeys(r->store, devs, n, one_time, on_prekeys_taken, q) != 0) {
        rc->refs--;
        free(q);
        send_error(rc, f->request_id, KURER_ENOMEM, 0);
    }
}

/* ---- revocation upload and fetch ---------------------------------------------------------- */

static int held_find(const relay *r, const uint8_t *key_id, size_t *pos)
{
    size_t lo = 0, hi = r->n_held;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(r->held[mid].key_id, key_id, KURER_KEY_ID_LEN);
        if (c == 0) {
            *pos = mid;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return 0;
}

/* Keeps a copy of a list the trust store just took (the newest of its issuer). */
static int held_put(relay *r, const uint8_t *key_id, uint64_t version, const uint8_t *data,
                    size_t len)
{
    size_t pos;
    uint8_t *copy = malloc(len);
    if (copy == NULL)
        return KURER_ENOMEM;
    memcpy(copy, data, len);
    if (!held_find(r, key_id, &pos)) {
        if (r->n_held == r->cap_held) {
            size_t cap = r->cap_held ? r->cap_held * 2 : 8;
            held_list *nh = realloc(r->held, cap * sizeof(*nh));
            if (nh == NULL) {
                free(copy);
                return KURER_ENOMEM;
            }
            r->held = nh;
            r->cap_held = cap;
        }
        memmove(&r->held[pos + 1], &r->held[pos], (r->n_held - pos) * sizeof(*r->held));
        r->n_held++;
        memcpy(r->held[pos].key_id, key_id, KURER_KEY_ID_LEN);
        r->held[pos].data = NULL;
    }
    free(r->held[pos].data);
    r->held[pos].version = version;
    r->held[pos].data = copy;
    r->held[pos].len = len;
    return 0;
}

static void held_free(relay *r)
{
    for (size_t i = 0; i < r->n_held; i++)
        free(r->held[i].data);
    free(r->held);
    r->held = NULL;
    r->n_held = r->cap_held = 0;
}

static void info_of(const held_list *h, kurer_revocation_info *out)
{
    memcpy(out->issuer_key_id, h->key_id, KURER_KEY_ID_LEN);
    out->version = h->version;
    out->size = (uint32_t)h->len;
}

static void disconnect_revoked(relay *r);

/* Tells every connected device that a newer list is held (clients enforce lists too, and
 * fetch it chunk by chunk). */
static void push_crl(relay *r, const uint8_t issuer_key_id[KURER_KEY_ID_LEN])
{
    size_t pos;
    kurer_revocation_info info;
    if (!held_find(r, issuer_key_id, &pos))
        return;
    info_of(&r->held[pos], &info);
    kurer_server_frame f;
    memset(&f, 0, sizeof(f));
    f.body = KURER_SERVER_REVOCATION_INDEX;
    f.u.revocation_index.lists = &info;
    f.u.revocation_index.n = 1;
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        if (rc->authed && rc->c != NULL && !kurer_conn_closing(rc->c))
            (void)send_frame(rc, &f);
}

/* An NK session does one upload: after its answer it is closed. */
static void nk_upload_done(rconn *rc)
{
    if (rc->nk && rc->c != NULL && !kurer_conn_closing(rc->c)) {
        rc->close_counted = 1;
        kurer_conn_close_after_flush(rc->c, 0);
    }
}

static void on_crl_stored(void *arg, int err)
{
    req_ctx2 *q = arg;
    if (q == NULL)
        return;
    if (err != 0)
        send_error(q->rc, q->request_id, err, 0);
    else
        send_ok(q->rc, q->request_id);
    nk_upload_done(q->rc);
    rconn_unref(q->rc);
    free(q);
}

/* A verified SignedRevocationList (bytes) was accepted into r->trust: store it durably, then
 * apply it (disconnect, push). With q, the requester gets Ok after the commit. */
static int accept_crl(relay *r, const uint8_t *data, size_t len, uint64_t version, req_ctx2 *q)
{
    kurer_crl crl;
    int err = kurer_crl_decode(data, len, &crl);
    if (err != 0)
        return err;
    r->crl_accepted++;
    kurer_log(KURER_LOG_INFO, "relay", "crl_loaded",
              (kurer_log_field[]){KURER_LOG_STR("issuer", crl.issuer),
                                  KURER_LOG_INT("version", version),
                                  KURER_LOG_STR("source", q != NULL ? "upload" : "file")},
              3);
    err = held_put(r, crl.issuer_key_id, version, data, len);
    if (err == 0)
        err = kurer_store_put_crl(r->store, crl.issuer_key_id, version, data, len,
                                  q != NULL ? on_crl_stored : NULL, q);
    disconnect_revoked(r);
    push_crl(r, crl.issuer_key_id);
    kurer_crl_release(&crl);
    return err;
}

/* A whole list arrived (in one frame, or reassembled from chunks): verify, keep, store. Every
 * outcome answers request_id once. */
static void revocation_received(rconn *rc, uint64_t request_id, const uint8_t *data, size_t len)
{
    relay *r = rc->r;
    uint64_t version = 0;
    int err = kurer_trust_add_crl(r->trust, data, len, &version);
    if (err != 0) {
        kurer_log(KURER_LOG_INFO, "relay", "crl_refused",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(err)),
                                      KURER_LOG_STR("via", rc->nk ? "nk" : "device")},
                  2);
        send_error(rc, request_id, err, 0);
        nk_upload_done(rc);
        return;
    }
    req_ctx2 *q = malloc(sizeof(*q));
    if (q != NULL) {
        q->rc = rc;
        q->request_id = request_id;
        rc->refs++;
    }
    err = accept_crl(r, data, len, version, q);
    if (err != 0) {
        /* In force in memory, but not stored: say so. */
        if (q != NULL) {
            rconn_unref(rc);
            free(q);
        }
        send_error(rc, request_id, err, 0);
        nk_upload_done(rc);
    } else if (q == NULL) {
        send_error(rc, request_id, KURER_ENOMEM, 0);
        nk_upload_done(rc);
    }
}

static void handle_revocation(rconn *rc, const kurer_client_frame *f)
{
    kurer_buf b;
    /* The decoded list keeps tbs as received: re-encoding gives the signed bytes back. */
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    int err = kurer_crl_encode(&f->u.revocation, &b);
    if (err != 0)
        send_error(rc, f->request_id, err, 0);
    else
        revocation_received(rc, f->request_id, b.data, b.len);
    kurer_buf_release(&b);
}

/* Forgets a chunked upload in progress (its bytes leave upload_bytes). */
static void upload_drop(rconn *rc)
{
    if (rc->up == NULL)
        return;
    rc->r->upload_bytes -= rc->up_cap;
    if (rc->pa != NULL && rc->pa->uploads > 0)
        rc->pa->uploads--;
    kurer_wipe(rc->up, rc->up_cap);
    free(rc->up);
    rc->up = NULL;
    rc->up_len = rc->up_total = rc->up_cap = 0;
}

/* A chunk of a list too large for one record. The partial list is the one thing an
 * unauthenticated peer can make the relay hold beyond its records, so it is bounded on every
 * side: what the relay holds is what arrived (the buffer grows with the chunks, never to a
 * declared total up front), all uploads together stay under upload_buffer_max, one source
 * address has one upload in progress, and an upload must complete within handshake_timeout_ms
 * of its first chunk (an NK session ends then anyway; a device's upload is dropped). */
static void handle_revocation_chunk(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    const kurer_revocation_chunk *c = &f->u.revocation_chunk;
    uint64_t now = kurer_time_mono_ms();
    if (c->offset == 0) {
        upload_drop(rc);
        if (rc->pa != NULL && rc->pa->uploads > 0) {
            send_error(rc, f->request_id, KURER_EBUSY, 0);
            nk_upload_done(rc);
            return;
        }
        rc->up_total = c->total;
        rc->up_started_ms = now;
        if (rc->pa != NULL)
            rc->pa->uploads++;
    } else if (rc->up_total == 0 || c->offset != rc->up_len || c->total != rc->up_total ||
               now - rc->up_started_ms > r->cfg.handshake_timeout_ms) {
        int late = rc->up_total != 0 && now - rc->up_started_ms > r->cfg.handshake_timeout_ms;
        upload_drop(rc);
        rc->up_total = 0;
        send_error(rc, f->request_id, late ? KURER_ETIMEOUT : KURER_EINVAL, 0);
        return;
    }
    /* Room for this chunk: the buffer doubles up to the list's total. */
    if (rc->up_len + c->len > rc->up_cap) {
        size_t cap = rc->up_cap ? rc->up_cap * 2 : 65536;
        while (cap < rc->up_len + c->len)
            cap *= 2;
        if (cap > rc->up_total)
            cap = rc->up_total;
        uint8_t *nb =
            r->upload_bytes + (cap - rc->up_cap) > r->cfg.upload_buffer_max ? NULL : malloc(cap);
        if (nb == NULL) {
            int busy = r->upload_bytes + (cap - rc->up_cap) > r->cfg.upload_buffer_max;
            if (rc->up == NULL && rc->pa != NULL && rc->pa->uploads > 0)
                rc->pa->uploads--; /* nothing held yet: upload_drop would not count it */
            upload_drop(rc);
            rc->up_total = 0;
            send_error(rc, f->request_id, busy ? KURER_EBUSY : KURER_ENOMEM, 0);
            nk_upload_done(rc); /* its one upload cannot be: try again later, anew */
            return;
        }
        if (rc->up_len > 0)
            memcpy(nb, rc->up, rc->up_len);
        if (rc->up != NULL) {
            kurer_wipe(rc->up, rc->up_cap);
            free(rc->up);
        }
        r->upload_bytes += cap - rc->up_cap;
        rc->up = nb;
        rc->up_cap = cap;
    }
    memcpy(rc->up + rc->up_len, c->data, c->len);
    rc->up_len += c->len;
    if (rc->up_len < rc->up_total) {
        send_ok(rc, f->request_id);
        return;
    }
    uint8_t *data = rc->up;
    size_t len = rc->up_len, cap = rc->up_cap;
    rc->up = NULL; /* revocation_received may close: the buffer is ours now */
    r->upload_bytes -= cap;
    if (rc->pa != NULL && rc->pa->uploads > 0)
        rc->pa->uploads--;
    rc->up_len = rc->up_total = rc->up_cap = 0;
    revocation_received(rc, f->request_id, data, len);
    free(data);
}

/* Drops chunked uploads of devices that did not complete within the deadline (from the sweep:
 * NK sessions end at their own deadline). */
static void uploads_expire(relay *r)
{
    uint64_t now = kurer_time_mono_ms();
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        if (rc->up != NULL && now - rc->up_started_ms > r->cfg.handshake_timeout_ms) {
            upload_drop(rc);
            rc->up_total = 0;
        }
}

/* A page of the index: the lists held with issuer key id above `after`. */
static void handle_revocation_fetch(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    size_t pos = 0;
    if (f->u.revocations.has_after && held_find(r, f->u.revocations.after, &pos))
        pos++;
    size_t n = r->n_held - pos;
    if (n > KURER_REVOCATION_INDEX_MAX)
        n = KURER_REVOCATION_INDEX_MAX;
    kurer_revocation_info *infos = calloc(n ? n : 1, sizeof(*infos));
    if (infos == NULL) {
        send_error(rc, f->request_id, KURER_ENOMEM, 0);
        return;
    }
    for (size_t i = 0; i < n; i++)
        info_of(&r->held[pos + i], &infos[i]);
    kurer_server_frame out;
    memset(&out, 0, sizeof(out));
    out.request_id = f->request_id;
    out.body = KURER_SERVER_REVOCATION_INDEX;
    out.u.revocation_index.lists = infos;
    out.u.revocation_index.n = n;
    out.u.revocation_index.more = pos + n < r->n_held;
    int err = send_frame(rc, &out);
    if (err != 0 && err != KURER_ECLOSED && rc->c != NULL && !kurer_conn_closing(rc->c))
        send_error(rc, f->request_id, err, 0);
    free(infos);
}

/* A chunk of one held list, of the version the index named. */
static void handle_revocation_chunk_fetch(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    size_t pos;
    if (!held_find(r, f->u.revocation_chunk_fetch.issuer_key_id, &pos)) {
        send_error(rc, f->request_id, KURER_ENOTFOUND, 0);
        return;
    }
    const held_list *h = &r->held[pos];
    uint64_t want = f->u.revocation_chunk_fetch.version;
    uint32_t off = f->u.revocation_chunk_fetch.offset;
    if (want != 0 && want != h->version) {
        send_error(rc, f->request_id, KURER_ESTALE, 0); /* start that list again */
        return;
    }
    if (off >= h->len) {
        send_error(rc, f->request_id, KURER_EINVAL, 0);
        return;
    }
    size_t len = h->len - off;
    if (len > KURER_REVOCATION_CHUNK_MAX)
        len = KURER_REVOCATION_CHUNK_MAX;
    kurer_server_frame out;
    memset(&out, 0, sizeof(out));
    out.request_id = f->request_id;
    out.body = KURER_SERVER_REVOCATION_CHUNK;
    memcpy(out.u.revocation_chunk.issuer_key_id, h->key_id, KURER_KEY_ID_LEN);
    out.u.revocation_chunk.version = h->version;
    out.u.revocation_chunk.total = (uint32_t)h->len;
    out.u.revocation_chunk.offset = off;
    out.u.revocation_chunk.data = h->data + off;
    out.u.revocation_chunk.len = len;
    int err = send_frame(rc, &out);
    if (err != 0 && err != KURER_ECLOSED && rc->c != NULL && !kurer_conn_closing(rc->c))
        send_error(rc, f->request_id, err, 0);
}

static void conn_on_record(kurer_conn *c, uint8_t *data, size_t n)
{
    rconn *rc = kurer_conn_data(c);
    kurer_client_frame f;
    int err = kurer_client_frame_decode(data, n, &f);
    if (err != 0) {
        send_error(rc, 0, err, 1);
        return;
    }
    int upload = f.body == KURER_CLIENT_REVOCATION || f.body == KURER_CLIENT_REVOCATION_CHUNK;
    if (rc->nk && !upload) {
        /* An NK peer has no identity: it may hand in a list, nothing else (reading lists is for
         * devices: answers of up to a record each are more than an unauthenticated peer may
         * make the relay hold). */
        send_error(rc, f.request_id, KURER_EPERM, 1);
        kurer_client_frame_release(&f);
        return;
    }
    /* A chain that expired while connected: the timer closes it; a request that gets here
     * first is refused the same way. */
    if (rc->authed && kurer_time_unix() > rc->v.not_after) {
        rc->r->conns_expired++;
        send_error(rc, f.request_id, KURER_EEXPIRED, 1);
        kurer_client_frame_release(&f);
        return;
    }
    switch (f.body) {
    case KURER_CLIENT_SEND:
        handle_send(rc, &f);
        break;
    case KURER_CLIENT_ACK:
        handle_ack(rc, &f);
        break;
    case KURER_CLIENT_LOOKUP:
        handle_lookup(rc, &f);
        break;
    case KURER_CLIENT_PREKEYS:
        handle_prekeys(rc, &f);
        break;
    case KURER_CLIENT_FETCH_PREKEYS:
        handle_fetch_prekeys(rc, &f);
        break;
    case KURER_CLIENT_REVOCATION:
        handle_revocation(rc, &f);
        break;
    case KURER_CLIENT_REVOCATIONS:
        handle_revocation_fetch(rc, &f);
        break;
    case KURER_CLIENT_REVOCATION_CHUNK:
        handle_revocation_chunk(rc, &f);
        break;
    case KURER_CLIENT_REVOCATION_CHUNK_FETCH:
        handle_revocation_chunk_fetch(rc, &f);
        break;
    case KURER_CLIENT_PING: {
        if (!rate_take(rc, B_PING, 1)) {
            rc->r->pings_rate_limited++;
            send_error(rc, f.request_id, KURER_ERATE, 0);
            break;
        }
        kurer_server_frame out;
        memset(&out, 0, sizeof(out));
        out.request_id = f.request_id;
        out.body = KURER_SERVER_PONG;
        out.u.pong.client_time = f.u.ping.client_time;
        out.u.pong.server_time = kurer_time_unix() * 1000;
        (void)send_frame(rc, &out);
        break;
    }
    default:
        send_error(rc, f.request_id, KURER_EUNSUPPORTED, 0);
        break;
    }
    kurer_client_frame_release(&f);
}

/* ---- handshake ---------------------------------------------------------------------------- */

static void refuse(rconn *rc, int code)
{
    kurer_handshake_accept a;
    kurer_buf b;
    memset(&a, 0, sizeof(a));
    a.protocol_version = KURER_PROTOCOL_VERSION;
    a.has_error = 1;
    a.error_code = code;
    snprintf(a.error_message, sizeof(a.error_message), "%s", kurer_strerror(code));
    kurer_buf_init(&b, KURER_FRAME_MAX);
    rc->r->handshakes_failed++;
    count_reject(rc->r, code);
    rc->close_counted = 1;
    char peer[64];
    kurer_conn_peer(rc->c, peer, sizeof(peer));
    kurer_log(KURER_LOG_INFO, "relay", "handshake_refused",
              (kurer_log_field[]){KURER_LOG_STR("peer", peer),
                                  KURER_LOG_STR("reason", kurer_err_name(code))},
              2);
    if (kurer_handshake_accept_encode(&a, &b) != 0 ||
        kurer_conn_hs_reply(rc->c, 0, b.data, b.len, code) != 0)
        kurer_conn_close(rc->c, code);
    kurer_buf_release(&b);
}

typedef struct hs_ctx {
    rconn *rc;
    kurer_chain chain;
} hs_ctx;

static void on_hs_count(void *arg, int err, const kurer_store_row *rows, size_t n, uint64_t total)
{
    hs_ctx *h = arg;
    rconn *rc = h->rc;
    relay *r = rc->r;
    (void)rows;
    (void)n;
    if (rc->c == NULL || kurer_conn_closing(rc->c)) {
        goto out;
    }
    if (err != 0) {
        refuse(rc, err);
        goto out;
    }
    /* The chain was checked before the store answered; a list accepted meanwhile missed this
     * connection (disconnect_revoked looks at authenticated ones only). */
    if (kurer_trust_chain_revoked(r->trust, &rc->v)) {
        refuse(rc, KURER_EREVOKED);
        goto out;
    }
    kurer_buf cb;
    kurer_buf_init(&cb, KURER_CHAIN_BYTES_MAX);
    if (kurer_chain_encode(&h->chain, &cb) != 0) {
        kurer_buf_release(&cb);
        refuse(rc, KURER_EINTERNAL);
        goto out;
    }
    rc->hs_chain = kurer_buf_steal(&cb, &rc->hs_chain_len);
    kurer_handshake_accept a;
    kurer_buf b;
    memset(&a, 0, sizeof(a));
    a.protocol_version = KURER_PROTOCOL_VERSION;
    a.server_time = kurer_time_unix() * 1000;
    a.queued = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
    rc->queued = a.queued;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    if (rc->hs_chain == NULL || kurer_handshake_accept_encode(&a, &b) != 0 ||
        kurer_conn_hs_reply(rc->c, 1, b.data, b.len, 0) != 0) {
        kurer_buf_release(&b);
        kurer_conn_close(rc->c, KURER_EINTERNAL);
        goto out;
    }
    kurer_buf_release(&b);
    /* Not the device's yet: message 1 may be a replay. It becomes so in conn_on_established,
     * when its first transport record has decrypted. */
    rc->accepted = 1;
out:
    rconn_unref(rc);
    free(h);
}

static void arm_expiry(relay *r, int64_t not_after);

/* IK: the peer's first transport record decrypted, so it holds the device's keys (a replayed
 * message 1 never gets here). Only now does the connection count as the device's: it replaces
 * an older one, is registered in the directory, logged as connected and served. */
static void conn_on_established(kurer_conn *c, const uint8_t *payload, size_t n)
{
    rconn *rc = kurer_conn_data(c);
    relay *r = rc->r;
    (void)payload;
    (void)n;
    if (rc->nk || !rc->accepted)
        return; /* NK: never authenticated (no identity) */
    if (kurer_trust_chain_revoked(r->trust, &rc->v) || kurer_time_unix() > rc->v.not_after) {
        int code = kurer_time_unix() > rc->v.not_after ? KURER_EEXPIRED : KURER_EREVOKED;
        rc->accepted = 0; /* refused, not unconfirmed */
        send_error(rc, 0, code, 1);
        return;
    }
    /* One live connection per device: the newest wins. */
    rconn *old = online(r, &rc->addr);
    if (old != NULL && old != rc) {
        r->replaced++;
        send_error(old, 0, KURER_EBUSY, 1);
    }
    rc->authed = 1;
    preauth_done(rc);
    r->handshakes_ok++;
    online_set(r, rc);
    /* Register (or refresh) the device in the directory. */
    dir_entry *e = dir_find(r, &rc->addr);
    int changed = e == NULL || e->serial != rc->v.serial;
    if (dir_put(r, &rc->addr, &rc->v, rc->hs_chain, rc->hs_chain_len) == 0 && changed) {
        kurer_store_device d = {rc->addr, rc->v.serial, rc->hs_chain, rc->hs_chain_len};
        if (kurer_store_put_device(r->store, &d, NULL, NULL) != 0)
            kurer_log(KURER_LOG_WARN, "relay", "directory_write_failed", NULL, 0);
    }
    free(rc->hs_chain);
    rc->hs_chain = NULL;
    rc->hs_chain_len = 0;
    arm_expiry(r, rc->v.not_after);
    kurer_log(KURER_LOG_INFO, "relay", "device_connected",
              (kurer_log_field[]){KURER_LOG_STR("user", rc->addr.user),
                                  KURER_LOG_INT("device", rc->addr.device_id),
                                  KURER_LOG_INT("queued", rc->queued)},
              3);
    start_fetch(rc);
    rc->refs++;
    if (kurer_store_count_prekeys(r->store, &rc->addr, on_prekeys_counted, rc) != 0)
        rc->refs--;
}

/* The Noise static key of the leaf certificate, read before any signature is checked: a
 * mismatch is refused for the price of a comparison. */
static int leaf_key_matches(const kurer_chain *ch, const uint8_t *rs)
{
    /* A leaf that is no device certificate has no Noise key: the chain check says EROLE. */
    return ch->n == 0 || ch->certs[0].body.role != KURER_ROLE_DEVICE ||
           kurer_ct_equal(ch->certs[0].body.noise_key, rs, 32);
}

static void conn_on_hs(kurer_conn *c, kurer_noise_pattern p, const uint8_t *rs,
                       const uint8_t *payload, size_t n)
{
    rconn *rc = kurer_conn_data(c);
    relay *r = rc->r;
    kurer_handshake_init hi;
    if (p == KURER_NOISE_NK) {
        /* docs/protocol.md 1.4: message 1 carries nothing; message 2 a HandshakeAccept. */
        kurer_handshake_accept a;
        kurer_buf b;
        if (n != 0) {
            refuse(rc, KURER_EMALFORMED);
            return;
        }
        /* NK handshakes cost a DH each and need no identity: metered per source address. */
        if (rc->pa != NULL &&
            !kurer__bucket_take(&rc->pa->nk, r->cfg.nk_rate, 1, kurer_time_mono_ms())) {
            refuse(rc, KURER_ERATE);
            return;
        }
        memset(&a, 0, sizeof(a));
        a.protocol_version = KURER_PROTOCOL_VERSION;
        a.server_time = kurer_time_unix() * 1000;
        kurer_buf_init(&b, KURER_FRAME_MAX);
        if (kurer_handshake_accept_encode(&a, &b) != 0 ||
            kurer_conn_hs_reply(rc->c, 1, b.data, b.len, 0) != 0) {
            kurer_buf_release(&b);
            kurer_conn_close(rc->c, KURER_EINTERNAL);
            return;
        }
        kurer_buf_release(&b);
        /* Unauthenticated for its whole life: it stays counted as pre-auth (max_handshakes,
         * max_preauth_per_address), its records stay under max_preauth_record and the
         * handshake deadline ends it (net/). */
        rc->nk = 1;
        r->n_nk++;
        r->nk_sessions++;
        return;
    }
    if (p != KURER_NOISE_IK || rs == NULL) {
        refuse(rc, KURER_EUNSUPPORTED);
        return;
    }
    /* An empty payload is a message without its HandshakeInit, not a bad argument. */
    int err = n == 0 ? KURER_EMALFORMED : kurer_handshake_init_decode(payload, n, &hi);
    if (err == 0 && !leaf_key_matches(&hi.chain, rs))
        err = KURER_EKEYMISMATCH;
    if (err == 0)
        err = kurer_trust_verify_chain(r->trust, &hi.chain, kurer_time_unix(), &rc->v);
    if (err == 0 && !kurer_ct_equal(rc->v.noise_key, rs, 32))
        err = KURER_EKEYMISMATCH;
    if (err != 0) {
        refuse(rc, err);
        return;
    }
    snprintf(rc->addr.user, sizeof(rc->addr.user), "%s", rc->v.user);
    rc->addr.device_id = rc->v.device_id;
    hs_ctx *h = malloc(sizeof(*h));
    if (h == NULL) {
        refuse(rc, KURER_ENOMEM);
        return;
    }
    h->rc = rc;
    h->chain = hi.chain;
    rc->refs++;
    /* The second message carries the queue length: ask the store first. */
    if (kurer_store_fetch(r->store, &rc->addr, 0, 0, on_hs_count, h) != 0) {
        rc->refs--;
        free(h);
        refuse(rc, KURER_ENOMEM);
    }
}

static void conn_on_drain(kurer_conn *c)
{
    rconn *rc = kurer_conn_data(c);
    if (rc->authed && rc->dirty)
        start_fetch(rc);
}

static void conn_on_close(kurer_conn *c, int err)
{
    rconn *rc = kurer_conn_data(c);
    relay *r = rc->r;
    if (err != 0 && err != KURER_ECLOSED && !rc->close_counted)
        count_reject(r, err);
    if (rc->authed)
        kurer_log(KURER_LOG_INFO, "relay", "device_disconnected",
                  (kurer_log_field[]){KURER_LOG_STR("user", rc->addr.user),
                                      KURER_LOG_INT("device", rc->addr.device_id),
                                      KURER_LOG_STR("reason", kurer_err_name(err))},
                  3);
    if (rc->accepted && !rc->authed)
        r->handshakes_unconfirmed++; /* message 2 went out; no record ever came back */
    if (rc->nk)
        r->n_nk--;
    rc->c = NULL;
    upload_drop(rc); /* before preauth_done: it counts against the source address */
    preauth_done(rc);
    free(rc->hs_chain);
    rc->hs_chain = NULL;
    if (rc->listed) {
        htab_remove(&r->online, &rc->onode);
        rc->listed = 0;
    }
    r->n_conns--;
    if (rc->prev != NULL)
        rc->prev->next = rc->next;
    else
        r->conns = rc->next;
    if (rc->next != NULL)
        rc->next->prev = rc->prev;
    rconn_unref(rc);
}

static const kurer_conn_cbs conn_cbs = {
    conn_on_hs, conn_on_established, conn_on_record, conn_on_drain, NULL, conn_on_close,
};

static void refused_closed(uv_handle_t *h)
{
    free(h);
}

/* Accepts the pending connection only to close it at once (libuv stops accepting until the
 * pending one is taken). */
static void refuse_connection(uv_stream_t *server)
{
    uv_tcp_t *t = malloc(sizeof(*t));
    if (t == NULL || uv_tcp_init(server->loop, t) != 0) {
        free(t);
        return;
    }
    (void)uv_accept(server, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, refused_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    relay *r = server->data;
    if (status < 0 || r->stopping)
        return;
    /* Bounds: open files (max_connections), and memory held by peers that have not
     * authenticated yet (each may hold up to two records of input). */
    if (r->n_conns >= r->max_conns) {
        r->refused_max_conns++;
        refuse_connection(server);
        return;
    }
    if (r->n_preauth >= r->cfg.max_handshakes) {
        r->refused_max_handshakes++;
        refuse_connection(server);
        return;
    }
    rconn *rc = calloc(1, sizeof(*rc));
    if (rc == NULL) {
        refuse_connection(server);
        return;
    }
    rc->r = r;
    rc->refs = 1;
    buckets_init(r, rc->own);
    if (kurer_conn_accept_from(&rc->c, server, &r->lim, &conn_cbs, &r->key, 1, rc) != 0) {
        free(rc);
        return;
    }
    r->n_conns++;
    r->n_preauth++;
    rc->preauth = 1;
    rc->next = r->conns;
    if (r->conns != NULL)
        r->conns->prev = rc;
    r->conns = rc;
    /* Pre-authentication connections per source address: one host cannot take every
     * handshake slot. An address the table cannot hold is refused too (fail closed). */
    struct sockaddr_storage ss;
    uint8_t ip[16];
    kurer__peer_addr *pa = NULL;
    if (kurer_conn_peer_addr(rc->c, &ss) == 0 && kurer__addr_key(&ss, ip) == 0)
        pa = kurer__addr_get(&r->addrs, ip, r->cfg.nk_rate, kurer_time_mono_ms());
    if (pa == NULL || pa->preauth >= r->cfg.max_preauth_per_address) {
        r->refused_per_address++;
        rc->close_counted = 1;
        kurer_conn_close(rc->c, KURER_ELIMIT);
        return;
    }
    pa->preauth++;
    rc->pa = pa;
    r->connections++; /* accepted (one refused above counts only as refused) */
}

/* ---- metrics ------------------------------------------------------------------------------ */

/* One scrape. The request is read (at most METRICS_REQ_MAX bytes, within METRICS_MS) before
 * the answer; only GET /metrics gets the page. After the answer the relay shuts its side down
 * and reads (discarding) until the peer closes or METRICS_MS pass, so that unread input never
 * turns the close into a reset that would cut the answer short. */
#define METRICS_REQ_MAX 4096
#define METRICS_MS      2000

typedef struct mreq {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t w;
    uv_shutdown_t sd;
    relay *r;
    struct mreq *next, *prev; /* in relay.mreqs */
    int handles;              /* open handles: freed when both are closed */
    int answered, closing;
    size_t len;
    char req[METRICS_REQ_MAX];
    char *body;
} mreq;

static void m_closed(uv_handle_t *h)
{
    mreq *m = h->data;
    if (--m->handles > 0)
        return;
    free(m->body);
    free(m);
}

static void m_close(mreq *m)
{
    if (m->closing)
        return;
    m->closing = 1;
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        m->r->mreqs = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    uv_close((uv_handle_t *)&m->timer, m_closed);
    uv_close((uv_handle_t *)&m->tcp, m_closed);
}

static void m_timeout(uv_timer_t *t)
{
    m_close(t->data);
}

static void m_shut(uv_shutdown_t *sd, int status)
{
    mreq *m = sd->data;
    if (status != 0)
        m_close(m); /* otherwise the peer's EOF (or the timer) closes */
}

static void m_written(uv_write_t *w, int status)
{
    mreq *m = w->data;
    if (status != 0 || m->closing) {
        m_close(m);
        return;
    }
    uv_timer_start(&m->timer, m_timeout, METRICS_MS, 0);
    if (uv_shutdown(&m->sd, (uv_stream_t *)&m->tcp, m_shut) != 0)
        m_close(m);
}

static char *metrics_text(relay *r)
{
    size_t cap = 16384, len = 0;
    char *s = malloc(cap);
    kurer_store_stats st;
    uint64_t live = 0;
    if (s == NULL)
        return NULL;
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        live++;
    kurer_store_get_stats(r->store, &st);
#define M(name, type, val)                                                                         \
    len += (size_t)snprintf(s + len, cap - len, "# TYPE kurer_%s %s\nkurer_%s %llu\n", name, type, \
                            name, (unsigned long long)(val))
    M("connections_total", "counter", r->connections);
    M("connections", "gauge", live);
    M("connections_handshaking", "gauge", r->n_preauth);
    M("handshakes_ok_total", "counter", r->handshakes_ok);
    M("handshakes_failed_total", "counter", r->handshakes_failed);
    M("envelopes_accepted_total", "counter", r->env_accepted);
    M("envelopes_delivered_total", "counter", r->env_delivered);
    M("envelopes_acked_total", "counter", r->env_acked);
    M("envelopes_accepted_by_ack_total", "counter", r->env_accepted_by_ack);
    M("envelopes_write_skipped_total", "counter", r->env_write_skipped);
    M("connections_replaced_total", "counter", r->replaced);
    M("store_commits_total", "counter", st.commits);
    M("store_commit_batch", "gauge", st.last_batch);
    M("store_commit_latency_us", "gauge", st.last_commit_us);
    M("store_queue_depth", "gauge", st.queued_ops);
    M("directory_devices", "gauge", r->n_dir);
    M("nk_sessions_total", "counter", r->nk_sessions);
    M("prekey_uploads_total", "counter", r->prekey_uploads);
    M("prekeys_handed_out_total", "counter", r->prekeys_handed_out);
    M("prekey_bundles_without_one_time_total", "counter", r->bundles_without_one_time);
    M("prekeys_low_pushed_total", "counter", r->prekeys_low_pushed);
    M("prekey_uploads_over_max_total", "counter", r->prekey_uploads_over_max);
    M("prekey_fetches_rate_limited_total", "counter", r->prekey_fetches_rate_limited);
    M("revocation_lists_accepted_total", "counter", r->crl_accepted);
    M("revocation_lists", "gauge", kurer_trust_crl_count(r->trust));
    M("handshakes_unconfirmed_total", "counter", r->handshakes_unconfirmed);
    M("connections_expired_total", "counter", r->conns_expired);
    M("nk_sessions", "gauge", r->n_nk);
    M("lookups_rate_limited_total", "counter", r->lookups_rate_limited);
    M("pings_rate_limited_total", "counter", r->pings_rate_limited);
    M("sends_rate_limited_total", "counter", r->sends_rate_limited);
    M("prekeys_withheld_total", "counter", r->prekeys_withheld);
    M("send_results_too_large_total", "counter", r->send_results_too_large);
    M("mailbox_full_refused_total", "counter", st.refused_full);
    M("mailbox_share_refused_total", "counter", st.refused_share);
    M("upload_buffer_bytes", "gauge", r->upload_bytes);
#undef M
    len += (size_t)snprintf(s + len, cap - len,
                            "# TYPE kurer_connections_refused_total counter\n"
                            "kurer_connections_refused_total{reason=\"max_connections\"} %llu\n"
                            "kurer_connections_refused_total{reason=\"max_handshakes\"} %llu\n"
                            "kurer_connections_refused_total{reason=\"per_address\"} %llu\n",
                            (unsigned long long)r->refused_max_conns,
                            (unsigned long long)r->refused_max_handshakes,
                            (unsigned long long)r->refused_per_address);
    len += (size_t)snprintf(s + len, cap - len, "# TYPE kurer_rejections_total counter\n");
    for (int i = 1; i < NERR && len < cap - 128; i++)
        if (r->rejects[i] != 0)
            len +=
                (size_t)snprintf(s + len, cap - len, "kurer_rejections_total{reason=\"%s\"} %llu\n",
                                 kurer_err_name(-i), (unsigned long long)r->rejects[i]);
    return s;
}

static void m_answer(mreq *m, const char *status, const char *body, size_t blen)
{
    m->answered = 1;
    m->body = malloc(blen + 160);
    if (m->body == NULL) {
        m_close(m);
        return;
    }
    int hl = snprintf(m->body, 160,
                      "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, blen);
    memcpy(m->body + hl, body, blen);
    uv_buf_t b = uv_buf_init(m->body, (unsigned)((size_t)hl + blen));
    if (uv_write(&m->w, (uv_stream_t *)&m->tcp, &b, 1, m_written) != 0)
        m_close(m);
}

static void m_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char discard[4096]; /* input after the request: read only to be dropped */
    mreq *m = h->data;
    (void)hint;
    if (m->answered || m->len >= sizeof(m->req))
        *buf = uv_buf_init(discard, sizeof(discard));
    else
        *buf = uv_buf_init(m->req + m->len, (unsigned)(sizeof(m->req) - m->len));
}

/* The request line and headers are complete: answer GET /metrics, 404 to anything else. */
static void m_request(mreq *m)
{
    static const char nf[] = "not found: only GET /metrics is served\n";
    const char *p = m->req;
    if (m->len >= 13 && memcmp(p, "GET /metrics", 12) == 0 &&
        (p[12] == ' ' || p[12] == '?' || p[12] == '\r' || p[12] == '\n')) {
        char *body = metrics_text(m->r);
        if (body == NULL) {
            m_close(m);
            return;
        }
        m_answer(m, "200 OK", body, strlen(body));
        free(body);
    } else {
        m_answer(m, "404 Not Found", nf, sizeof(nf) - 1);
    }
}

static void m_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    mreq *m = st->data;
    static const char big[] = "request too large\n";
    if (n < 0) {
        /* EOF or error: after the answer that is the clean end; before it, nothing to answer */
        m_close(m);
        return;
    }
    if (n == 0 || m->answered || buf->base != m->req + m->len)
        return;
    size_t from = m->len > 3 ? m->len - 3 : 0;
    m->len += (size_t)n;
    for (size_t i = from; i < m->len; i++)
        if ((i + 1 < m->len && m->req[i] == '\n' && m->req[i + 1] == '\n') ||
            (i + 3 < m->len && memcmp(m->req + i, "\r\n\r\n", 4) == 0)) {
            m_request(m);
            return;
        }
    if (m->len >= sizeof(m->req))
        m_answer(m, "431 Request Header Fields Too Large", big, sizeof(big) - 1);
}

static void on_metrics(uv_stream_t *server, int status)
{
    relay *r = server->data;
    if (status < 0)
        return;
    mreq *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return;
    m->r = r;
    uv_tcp_init(r->loop, &m->tcp);
    uv_timer_init(r->loop, &m->timer);
    m->handles = 2;
    m->tcp.data = m->timer.data = m->w.data = m->sd.data = m;
    m->next = r->mreqs;
    if (r->mreqs != NULL)
        r->mreqs->prev = m;
    r->mreqs = m;
    if (uv_accept(server, (uv_stream_t *)&m->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&m->tcp, m_alloc, m_read) != 0) {
        m_close(m);
        return;
    }
    uv_timer_start(&m->timer, m_timeout, METRICS_MS, 0);
}

/* ---- revocation lists --------------------------------------------------------------------- */

static void disconnect_revoked(relay *r)
{
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        if (rc->authed && rc->c != NULL && !kurer_conn_closing(rc->c) &&
            kurer_trust_chain_revoked(r->trust, &rc->v)) {
            kurer_log(KURER_LOG_WARN, "relay", "revoked_disconnect",
                      (kurer_log_field[]){KURER_LOG_STR("user", rc->addr.user),
                                          KURER_LOG_INT("device", rc->addr.device_id)},
                      2);
            send_error(rc, 0, KURER_EREVOKED, 1);
        }
}

static int load_crls(relay *r, int at_start)
{
    for (size_t i = 0; i < r->opts->n_crls; i++) {
        uint8_t *data;
        size_t len;
        uint64_t version;
        int err = kurer_file_read(r->opts->crl_files[i], KURER_CRL_BYTES_MAX, &data, &len);
        if (err == 0) {
            err = kurer_trust_add_crl(r->trust, data, len, &version);
            if (err == 0 && accept_crl(r, data, len, version, NULL) != 0)
                kurer_log(KURER_LOG_WARN, "relay", "crl_store_failed", NULL, 0);
            free(data);
        }
        if (err == KURER_ESTALE)
            continue;
        if (err != 0) {
            if (at_start) {
                fprintf(stderr, "kurer-relay: %s: %s\n", r->opts->crl_files[i],
                        kurer_strerror(err));
                return err;
            }
            kurer_log(KURER_LOG_WARN, "relay", "crl_reload_failed",
                      (kurer_log_field[]){KURER_LOG_STR("error", kurer_err_name(err))}, 1);
            continue;
        }
    }
    return 0;
}

static void on_crl_loaded(void *arg, const uint8_t *list, size_t len)
{
    relay *r = arg;
    uint64_t version;
    int err = kurer_trust_add_crl(r->trust, list, len, &version);
    if (err != 0 && err != KURER_ESTALE)
        kurer_log(KURER_LOG_WARN, "relay", "stored_crl_refused",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(err))}, 1);
    if (err != 0)
        return;
    kurer_crl crl;
    if (kurer_crl_decode(list, len, &crl) == 0) {
        if (held_put(r, crl.issuer_key_id, version, list, len) != 0)
            kurer_log(KURER_LOG_WARN, "relay", "crl_not_served", NULL, 0);
        kurer_crl_release(&crl);
    }
    kurer_log(
        KURER_LOG_INFO, "relay", "crl_loaded",
        (kurer_log_field[]){KURER_LOG_INT("version", version), KURER_LOG_STR("source", "store")},
        2);
}

/* ---- expiry and sweeping ------------------------------------------------------------------ */

static void on_expiry(uv_timer_t *t);

/* The expiry timer runs at the earliest not_after (+1 s: a chain is valid through its
 * not_after second) of the authenticated connections. */
static void arm_expiry(relay *r, int64_t not_after)
{
    if (!r->timers || r->stopping)
        return;
    if (r->next_expiry != 0 && r->next_expiry <= not_after)
        return;
    int64_t now = kurer_time_unix();
    int64_t in_s = not_after >= now + 86400 ? 86400 : not_after + 1 - now;
    if (in_s < 0)
        in_s = 0;
    if (in_s > 86400)
        in_s = 86400; /* re-armed after a day: no overflow, and clock changes are caught */
    r->next_expiry = now + in_s;
    uv_timer_start(&r->expiry, on_expiry, (uint64_t)in_s * 1000, 0);
}

static void on_expiry(uv_timer_t *t)
{
    relay *r = t->data;
    int64_t now = kurer_time_unix(), next = 0;
    r->next_expiry = 0;
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next) {
        if (!rc->authed || rc->c == NULL || kurer_conn_closing(rc->c))
            continue;
        if (now > rc->v.not_after) {
            r->conns_expired++;
            kurer_log(KURER_LOG_INFO, "relay", "expired_disconnect",
                      (kurer_log_field[]){KURER_LOG_STR("user", rc->addr.user),
                                          KURER_LOG_INT("device", rc->addr.device_id)},
                      2);
            send_error(rc, 0, KURER_EEXPIRED, 1);
        } else if (next == 0 || rc->v.not_after < next) {
            next = rc->v.not_after;
        }
    }
    if (next != 0)
        arm_expiry(r, next);
}

#define SWEEP_MS 10000

static void on_sweep(uv_timer_t *t)
{
    relay *r = t->data;
    uint64_t now = kurer_time_mono_ms();
    kurer__addr_sweep(&r->addrs, r->cfg.nk_rate, now);
    uploads_expire(r);
    kurer__take_sweep(&r->takes, r->cfg.prekey_take_window_s * 1000, now);
}

/* ---- life cycle --------------------------------------------------------------------------- */

static void on_sighup(uv_signal_t *s, int signum)
{
    (void)signum;
    (void)load_crls(s->data, 0);
}

static void on_stop(uv_signal_t *s, int signum)
{
    relay *r = s->data;
    (void)signum;
    if (r->stopping)
        return;
    r->stopping = 1;
    kurer_log(KURER_LOG_INFO, "relay", "shutdown", NULL, 0);
    uv_close((uv_handle_t *)&r->server, NULL);
    if (r->have_metrics)
        uv_close((uv_handle_t *)&r->metrics, NULL);
    while (r->mreqs != NULL)
        m_close(r->mreqs);
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        if (rc->c != NULL)
            kurer_conn_close(rc->c, 0);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sighup, NULL);
    uv_close((uv_handle_t *)&r->sweep, NULL);
    uv_close((uv_handle_t *)&r->expiry, NULL);
    /* Finish every submitted commit; late callbacks find their connections closed. */
    kurer_store_close(r->store);
    r->store = NULL;
}

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
    c->upload_buffer_max = (uint64_t)8 << 20;
    c->lookup_rate = 20;
    c->ping_rate = 2;
    c->mailbox_sender_max = 2000;
    c->prekey_take_max = 10;
    c->prekey_take_window_s = 3600;
}

static const struct {
    const char *key;
    size_t off;
    uint64_t min, max;
} keys[] = {
#define K(name, lo, hi)                                                                            \
    {                                                                                              \
#name, offsetof(kurer_relay_config, name), lo, hi                                          \
    }
    K(max_record, 128, 65535),
    K(max_envelope, 1, KURER_ENVELOPE_CONTENT_MAX),
    K(max_send_envelopes, 1, KURER_SEND_ENVELOPES_MAX),
    K(mailbox_max, 1, 100000000),
    K(handshake_timeout_ms, 50, 600000),
    K(idle_timeout_ms, 0, 86400000),
    K(send_rate, 0, 1000000),
    K(out_cap, 65536, (uint64_t)1 << 30),
    K(out_max, 65536, (uint64_t)1 << 30),
    K(deliver_batch, 1, 1024),
    K(prekeys_low, 1, 100000),
    K(max_connections, 0, 10000000),
    K(max_handshakes, 1, 1000000),
    K(commit_delay_us, 0, 1000000),
    K(prekeys_max, 1, 1000000),
    K(fetch_rate, 0, 1000000),
    K(ack_hold_us, 0, 10000000),
    K(max_preauth_record, 1024, 65535),
    K(max_preauth_per_address, 1, 1000000),
    K(nk_rate, 0, 1000000),
    K(upload_buffer_max, 65536, (uint64_t)1 << 32),
    K(lookup_rate, 0, 1000000),
    K(ping_rate, 0, 1000000),
    K(mailbox_sender_max, 0, 100000000),
    K(prekey_take_max, 0, 1000000),
    K(prekey_take_window_s, 1, 86400 * 30),
#undef K
};

int kurer_relay_config_load(kurer_relay_config *c, const char *path, int *line)
{
    uint8_t *data;
    size_t len;
    *line = 0;
    int err = kurer_file_read(path, 1 << 20, &data, &len);
    if (err != 0)
        return err;
    char *rest = (char *)data;
    int ln = 0;
    err = 0;
    /* strsep, not strtok: empty lines count, so the line number reported is the file's. */
    for (char *l; (l = strsep(&rest, "\n")) != NULL;) {
        ln++;
        char k[64], v[64];
        while (*l == ' ' || *l == '\t')
            l++;
        if (*l == '#' || *l == '\0' || *l == '\r')
            continue;
        if (sscanf(l, "%63[a-z_] = %63s", k, v) != 2) {
            err = KURER_EINVAL;
            break;
        }
        size_t i;
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (strcmp(keys[i].key, k) == 0)
                break;
        uint64_t val;
        if (i == sizeof(keys) / sizeof(keys[0]) || kurer_parse_u64(v, keys[i].max, &val) != 0 ||
            val < keys[i].min) {
            err = KURER_EINVAL;
            break;
        }
        *(uint64_t *)((char *)c + keys[i].off) = val;
    }
    if (err != 0)
        *line = ln;
    free(data);
    return err;
}

/* max_connections, or (0) what the open-file limit allows: the soft limit is raised to the hard
 * one, and 64 files are kept for the store, listeners and logs. */
static uint64_t max_connections(const kurer_relay_config *cfg)
{
    struct rlimit rl;
    uint64_t files = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
        files = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    }
    uint64_t room = files > 128 ? files - 64 : 64;
    if (cfg->max_connections == 0 || cfg->max_connections > room)
        return room;
    return cfg->max_connections;
}

static int read_key(const char *dir, const char *name, uint8_t *out)
{
    char path[4096];
    uint8_t *data;
    size_t len;
    struct stat st;
    int err = kurer_path_join(path, sizeof(path), dir, name);
    if (err != 0)
        return err;
    if (stat(path, &st) != 0)
        return KURER_ENOENT;
    if ((st.st_mode & 077) != 0)
        return KURER_EPERM;
    err = kurer_file_read(path, 64, &data, &len);
    if (err != 0)
        return err;
    if (len != 32)
        err = KURER_EMALFORMED;
    else
        memcpy(out, data, 32);
    kurer_wipe(data, len);
    free(data);
    return err;
}

int kurer_relay_init(const char *dir)
{
    char path[4096], hex[65];
    uint8_t pk[32], store_key[32];
    int err = kurer_crypto_init();
    if (err != 0)
        goto out_msg;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "kurer-relay: %s: cannot create folder\n", dir);
        return 1;
    }
    uint8_t *sk = kurer_secure_alloc(32);
    if (sk == NULL)
        return 1;
    err = kurer_noise_keypair(pk, sk);
    if (err == 0)
        err = kurer_path_join(path, sizeof(path), dir, "relay.key");
    if (err == 0)
        err = kurer_file_write(path, sk, 32, 0600, 0);
    kurer_secure_free(sk);
    kurer_random(store_key, sizeof(store_key));
    if (err == 0)
        err = kurer_path_join(path, sizeof(path), dir, "store.key");
    if (err == 0)
        err = kurer_file_write(path, store_key, 32, 0600, 0);
    kurer_memzero(store_key, sizeof(store_key));
    kurer_hex_encode(hex, pk, 32);
    hex[64] = '\n';
    if (err == 0)
        err = kurer_path_join(path, sizeof(path), dir, "relay.pub");
    if (err == 0)
        err = kurer_file_write(path, hex, 65, 0644, 0);
    if (err != 0)
        goto out_msg;
    hex[64] = '\0';
    printf("%s\n", hex);
    return 0;
out_msg:
    fprintf(stderr, "kurer-relay: init %s: %s\n", dir, kurer_strerror(err));
    return 1;
}

static int is_loopback(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
    if (a->ss_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(x) || (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
    }
    return 0;
}

int kurer_relay_run(const kurer_relay_opts *o)
{
    relay r;
    char path[4096];
    uint8_t store_key[32];
    struct sockaddr_storage addr;
    int err;
    const char *what = "";
    memset(&r, 0, sizeof(r));
    r.opts = o;
    r.cfg = o->cfg;
    r.loop = uv_default_loop();
    if ((err = kurer_crypto_init()) != 0) {
        what = "crypto";
        goto fail;
    }
    r.lim = kurer_net_limits_default();
    r.lim.max_record = (size_t)r.cfg.max_record;
    r.lim.handshake_ms = r.cfg.handshake_timeout_ms;
    r.lim.idle_ms = r.cfg.idle_timeout_ms;
    r.lim.out_cap = (size_t)r.cfg.out_cap;
    r.lim.out_max = (size_t)r.cfg.out_max;
    r.lim.preauth_record = (size_t)r.cfg.max_preauth_record;
    r.sk = kurer_secure_alloc(32);
    if (r.sk == NULL) {
        err = KURER_ENOMEM;
        goto fail;
    }
    what = "relay.key (run kurer-relay init first)";
    if ((err = read_key(o->dir, "relay.key", r.sk)) != 0 ||
        (err = kurer_noise_public_key(r.key.pk, r.sk)) != 0)
        goto fail;
    r.key.sk = r.sk;
    r.max_conns = max_connections(&r.cfg);
    if ((err = htab_init(&r.dir)) != 0 || (err = htab_init(&r.online)) != 0 ||
        (err = htab_init(&r.pending)) != 0 ||
        (err = kurer__addr_table_init(&r.addrs, ADDR_ENTRIES_MAX)) != 0 ||
        (err = kurer__take_table_init(&r.takes, TAKE_ENTRIES_MAX)) != 0)
        goto fail;
    what = "trust";
    if ((err = kurer_trust_new(&r.trust)) != 0)
        goto fail;
    for (size_t i = 0; i < o->n_roots; i++) {
        uint8_t *data;
        size_t len;
        kurer_cert root;
        what = o->roots[i];
        if ((err = kurer_file_read(o->roots[i], KURER_CERT_MAX, &data, &len)) != 0)
            goto fail;
        err = kurer_cert_decode(data, len, &root);
        free(data);
        if (err == 0)
            err = kurer_trust_add_root(r.trust, &root, kurer_time_unix());
        if (err != 0)
            goto fail;
    }
    what = "store.key";
    if ((err = read_key(o->dir, "store.key", store_key)) != 0)
        goto fail;
    what = "store";
    if ((err = kurer_path_join(path, sizeof(path), o->dir, "relay.db")) != 0)
        goto fail;
    err = kurer_store_open(&r.store, r.loop, path, store_key);
    kurer_memzero(store_key, sizeof(store_key));
    if (err != 0)
        goto fail;
    /* Lists first (stored ones, then --crl files), so that the directory is checked against
     * them. */
    if ((err = kurer_store_load_crls(r.store, on_crl_loaded, &r)) != 0)
        goto fail;
    if (load_crls(&r, 1) != 0)
        goto fail_quiet;
    kurer_store_set_commit_delay(r.store, r.cfg.commit_delay_us);
    if ((err = kurer_store_load_directory(r.store, on_dir_loaded, &r)) != 0)
        goto fail;
    /* A reservation that cannot be written (a full disk) does not stop the relay: it serves
     * what it holds, sends get ESTORAGE from their commits until space returns, and the next
     * send reserves again. */
    if ((err = kurer_store_seq_start(r.store, SEQ_BLOCK, &r.next_seq, &r.seq_limit)) != 0) {
        if (err != KURER_ESTORAGE)
            goto fail;
        kurer_log(KURER_LOG_WARN, "relay", "store_not_writable",
                  (kurer_log_field[]){KURER_LOG_STR("error", kurer_err_name(err))}, 1);
    }
    what = o->listen;
    if ((err = kurer_net_resolve(o->listen, &addr)) != 0)
        goto fail;
    uv_tcp_init(r.loop, &r.server);
    r.server.data = &r;
    int uverr;
    if ((uverr = uv_tcp_bind(&r.server, (struct sockaddr *)&addr, 0)) != 0 ||
        (uverr = uv_listen((uv_stream_t *)&r.server, 511, on_connection)) != 0) {
        err = kurer_net_uv_error(uverr);
        goto fail;
    }
    if (o->metrics != NULL) {
        struct sockaddr_storage maddr;
        what = o->metrics;
        if ((err = kurer_net_resolve(o->metrics, &maddr)) != 0)
            goto fail;
        /* The page needs no authentication: it says who is connected how often, and how busy
         * the relay is. Only loopback unless the operator says otherwise. */
        if (!o->metrics_public && !is_loopback(&maddr)) {
            fprintf(stderr,
                    "kurer-relay: --metrics %s: not a loopback address; the metrics endpoint is "
                    "unauthenticated (add --metrics-public to serve it there anyway)\n",
                    o->metrics);
            err = KURER_EPERM;
            goto fail_quiet;
        }
        uv_tcp_init(r.loop, &r.metrics);
        r.metrics.data = &r;
        r.have_metrics = 1;
        if ((uverr = uv_tcp_bind(&r.metrics, (struct sockaddr *)&maddr, 0)) != 0 ||
            (uverr = uv_listen((uv_stream_t *)&r.metrics, 16, on_metrics)) != 0) {
            err = kurer_net_uv_error(uverr);
            goto fail;
        }
    }
    uv_signal_init(r.loop, &r.sigterm);
    uv_signal_init(r.loop, &r.sigint);
    uv_signal_init(r.loop, &r.sighup);
    r.sigterm.data = r.sigint.data = r.sighup.data = &r;
    uv_signal_start(&r.sigterm, on_stop, SIGTERM);
    uv_signal_start(&r.sigint, on_stop, SIGINT);
    uv_signal_start(&r.sighup, on_sighup, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    uv_timer_init(r.loop, &r.sweep);
    uv_timer_init(r.loop, &r.expiry);
    r.sweep.data = r.expiry.data = &r;
    r.timers = 1;
    uv_timer_start(&r.sweep, on_sweep, SWEEP_MS, SWEEP_MS);

    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    char host[64];
    uv_tcp_getsockname(&r.server, (struct sockaddr *)&bound, &blen);
    if (bound.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof(host));
        printf("listening %s:%u\n", host,
               (unsigned)ntohs(((struct sockaddr_in *)&bound)->sin_port));
    } else {
        uv_ip6_name((struct sockaddr_in6 *)&bound, host, sizeof(host));
        printf("listening [%s]:%u\n", host,
               (unsigned)ntohs(((struct sockaddr_in6 *)&bound)->sin6_port));
    }
    if (r.have_metrics) {
        blen = sizeof(bound);
        uv_tcp_getsockname(&r.metrics, (struct sockaddr *)&bound, &blen);
        uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof(host));
        printf("metrics %s:%u\n", host, (unsigned)ntohs(((struct sockaddr_in *)&bound)->sin_port));
    }
    fflush(stdout);
    kurer_log(KURER_LOG_INFO, "relay", "started",
              (kurer_log_field[]){KURER_LOG_INT("directory_devices", r.n_dir)}, 1);
    uv_run(r.loop, UV_RUN_DEFAULT);
    kurer_log(KURER_LOG_INFO, "relay", "stopped", NULL, 0);
    kurer_trust_free(r.trust);
    kurer_secure_free(r.sk);
    dir_free(&r);
    htab_free(&r.online);
    htab_free(&r.pending);
    kurer__addr_table_free(&r.addrs);
    kurer__take_table_free(&r.takes);
    held_free(&r);
    uv_loop_close(r.loop);
    return 0;
fail:
    fprintf(stderr, "kurer-relay: %s: %s\n", what, kurer_strerror(err));
fail_quiet:
    kurer_store_close(r.store);
    dir_free(&r);
    htab_free(&r.online);
    htab_free(&r.pending);
    kurer__addr_table_free(&r.addrs);
    kurer__take_table_free(&r.takes);
    held_free(&r);
    kurer_trust_free(r.trust);
    kurer_secure_free(r.sk);
    return err != 0 ? err : KURER_EINVAL;
}

int kurer_relay_config_range(const char *key, uint64_t *min, uint64_t *max)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].key, key) == 0) {
            *min = keys[i].min;
            *max = keys[i].max;
            return 0;
        }
    return KURER_ENOTFOUND;
}
