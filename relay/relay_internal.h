/* The relay's private declarations (relay/ only): its state, the connection and directory
 * types, and the functions its files share (kurer__ prefix). One libuv loop runs all of it;
 * the store's writer thread is the only other thread (relay/store.h). */
#ifndef KURER_RELAY_INTERNAL_H
#define KURER_RELAY_INTERNAL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "kurer/armor.h"
#include "kurer/cert.h"
#include "kurer/frame.h"
#include "kurer/log.h"
#include "kurer/net.h"
#include "htab.h"
#include "ratelimit.h"
#include "relay.h"
#include "store.h"

#define NERR 80 /* counters per error code: index -code (above the lowest code) */

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
    /* copies of the device's home (instance.c): the current one, its count, those it replaced */
    uint64_t instance, instance_count, retired[4];
    int forked; /* two copies of the current instance connected: each is refused */
} dir_entry;

typedef struct dir_user {
    hnode node;
    dir_entry *devs;
    size_t n, cap;
    char user[]; /* NUL-terminated */
} dir_user;

/* Every counter of the relay, once: the struct relay field, the metric's name (kurer_ is
 * prefixed) and its # HELP text. A new counter is a line here and an increment where it happens;
 * metrics.c renders them all. */
#define KURER__RELAY_COUNTERS(X)                                                                   \
    X(connections, "connections_total",                                                            \
      "Connections accepted (those refused at once are in "                                        \
      "connections_refused_total).")                                                               \
    X(handshakes_ok, "handshakes_ok_total", "Devices authenticated (first transport record).")     \
    X(handshakes_failed, "handshakes_failed_total",                                                \
      "Handshakes refused (reason in "                                                             \
      "rejections_total).")                                                                        \
    X(handshakes_unconfirmed, "handshakes_unconfirmed_total",                                      \
      "IK handshakes answered that never "                                                         \
      "sent a record (replays, stalled clients).")                                                 \
    X(replaced, "connections_replaced_total",                                                      \
      "Connections replaced by a newer one of the same "                                           \
      "device.")                                                                                   \
    X(conns_expired, "connections_expired_total", "Connections closed when their chain expired.")  \
    X(nk_sessions, "nk_sessions_total", "Unauthenticated NK sessions accepted.")                   \
    X(env_accepted, "envelopes_accepted_total", "Envelopes the sender was told are accepted.")     \
    X(env_delivered, "envelopes_delivered_total", "Envelopes pushed to a recipient device.")       \
    X(env_acked, "envelopes_acked_total", "Seqs in recipients' acks.")                             \
    X(env_accepted_by_ack, "envelopes_accepted_by_ack_total",                                      \
      "Envelopes accepted because their "                                                          \
      "recipient acked them before the relay's commit.")                                           \
    X(env_write_skipped, "envelopes_write_skipped_total",                                          \
      "Envelopes never written: put and ack "                                                      \
      "met in the store.")                                                                         \
    X(sends_rate_limited, "sends_rate_limited_total", "Send requests over send_rate.")             \
    X(fanouts_refused, "fanout_sends_refused_total",                                               \
      "Fan-out sends refused whole (reason in rejections_total).")                                 \
    X(fanouts_accepted, "fanout_sends_accepted_total",                                             \
      "Fan-out sends answered (their users' results in the answer).")                              \
    X(fanout_refs, "fanout_references_total",                                                      \
      "Fan-out references made durable (stored, or acked first), one per recipient device.")       \
    X(send_results_too_large, "send_results_too_large_total",                                      \
      "Send requests refused because "                                                             \
      "their answer would not fit a record.")                                                      \
    X(lookups_rate_limited, "lookups_rate_limited_total", "Directory lookups over lookup_rate.")   \
    X(pings_rate_limited, "pings_rate_limited_total", "Pings over ping_rate.")                     \
    X(prekey_uploads, "prekey_uploads_total", "Prekey uploads stored.")                            \
    X(prekey_uploads_over_max, "prekey_uploads_over_max_total",                                    \
      "Prekey uploads refused by "                                                                 \
      "prekeys_max.")                                                                              \
    X(prekeys_handed_out, "prekeys_handed_out_total", "One-time prekeys handed out (each once).")  \
    X(bundles_without_one_time, "prekey_bundles_without_one_time_total",                           \
      "Bundles handed out "                                                                        \
      "without a one-time prekey.")                                                                \
    X(prekeys_withheld, "prekeys_withheld_total", "One-time prekeys withheld by prekey_take_max.") \
    X(prekey_fetches_rate_limited, "prekey_fetches_rate_limited_total",                            \
      "Prekey fetches over "                                                                       \
      "fetch_rate.")                                                                               \
    X(prekeys_low_pushed, "prekeys_low_pushed_total", "PrekeysLow pushes.")                        \
    X(crl_accepted, "revocation_lists_accepted_total",                                             \
      "Newer revocation lists taken (files, "                                                      \
      "SIGHUP, uploads, other nodes).")                                                            \
    X(cluster_wakeups_sent, "cluster_wakeups_sent_total",                                          \
      "Devices named in wake-ups to the other nodes.")                                             \
    X(cluster_wakeups, "cluster_wakeups_total",                                                    \
      "Wake-ups from other nodes for devices connected here.")                                     \
    X(cluster_replaced, "cluster_connections_replaced_total",                                      \
      "Connections closed because their device connected to another node since.")                  \
    X(cluster_lists, "cluster_revocation_lists_total",                                             \
      "Revocation lists read from the store after another node stored them.")                      \
    X(cluster_rejected, "cluster_notifications_rejected_total",                                    \
      "Notifications on the wake channel that did not parse.")                                     \
    X(cluster_dropped, "cluster_notifications_dropped_total",                                      \
      "Wake-ups and list notices not sent: the listen connection's queue was full.")               \
    X(cluster_polls, "cluster_polls_total",                                                        \
      "Safety-net polls of every connected device's mailbox (wake_poll_ms).")                      \
    X(cluster_listen_reconnects, "cluster_listen_reconnects_total",                                \
      "Listen connections lost and made again.")                                                   \
    X(enrol_sessions, "enrol_sessions_total", "NK enrolment sessions opened (EnrolHello).")        \
    X(invites_registered, "invites_registered_total", "Invitations stored for an authority.")      \
    X(enrol_submitted, "enrol_requests_submitted_total",                                           \
      "Certificate requests put in an approval "                                                   \
      "queue (each invitation's first valid use).")                                                \
    X(enrol_refused, "enrol_attempts_refused_total",                                               \
      "Invitation uses and polls refused (reason in "                                              \
      "rejections_total).")                                                                        \
    X(invite_rate_limited, "invite_attempts_rate_limited_total",                                   \
      "Invitation attempts refused by "                                                            \
      "invite_rate or invite_failures_max.")                                                       \
    X(enrol_decided, "enrol_decisions_total", "Requests approved or rejected by an authority.")

typedef struct relay relay;

/* The bytes of every list in force, in issuer key id order: the index and the chunks a fetch
 * asks for are served from here (lists of any size travel paged: docs/protocol.md). */
typedef struct held_list {
    uint8_t key_id[KURER_KEY_ID_LEN];
    uint64_t version;
    uint8_t *data;
    size_t len;
    int stored; /* the store committed this version (else a new upload of it stores it again) */
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
    int enrol;            /* an NK enrolment session (enrol.c): EnrolRequests only */
    int enrol_busy;       /* its one request in flight */
    uint32_t enrol_count; /* requests it has made (at most ENROL_SESSION_MAX) */
    int close_counted;    /* the reason for our close is counted already: not again on close */
    int accepted;         /* IK: message 2 sent; waiting for the first record (authed then) */
    kurer__peer_addr *pa; /* its source address (pre-auth count), or NULL */
    kurer_verified v;
    kurer_device_address addr;
    uint64_t instance_id, instance_count; /* from its HandshakeInit (0: an older client) */
    uint32_t queued;                      /* envelopes waiting when the handshake was answered */
    uint8_t *hs_chain;                    /* the handshake's chain (bytes) until authenticated */
    size_t hs_chain_len;
    /* delivery */
    uint64_t last_pushed;
    int fetching, dirty, caught_up, sent_empty;
    /* several nodes (cluster.c): this connection's number in its "c" notification, and whether
     * that came back (then a later one of another node replaces it) */
    uint64_t cluster_gen;
    int cluster_seen;
    /* rates, should the device have no directory entry (it always has one once authed) */
    kurer__bucket own[N_BUCKETS];
    /* a chunked revocation upload in progress (up_cap bytes counted in relay.upload_bytes) */
    uint8_t *up;
    size_t up_len, up_total, up_cap;
    uint64_t up_started_ms;
    struct fanout_asm *fo; /* a fan-out send whose final part has not come (fanout.c) */
} rconn;

struct relay {
    uv_loop_t *loop;
    FILE *audit; /* audit_log (audit.c), or NULL */
    kurer_relay_config cfg;
    kurer_net_limits lim;
    uint8_t *sk;              /* guarded: the one copy of the static key */
    kurer_net_static_key key; /* sk and its public key, borrowed by every connection */
    kurer_trust *trust;
    kurer_store *store;
    uv_tcp_t servers[KURER_RELAY_MULTI_MAX]; /* one listener per listen address */
    size_t n_servers;                        /* initialised */
    uv_tcp_t metrics;
    int have_metrics;
    uv_timer_t watchdog; /* systemd's watchdog, when it asks for one (notify.c) */
    int have_watchdog;
    struct mreq *mreqs; /* metrics requests in progress */
    uv_signal_t sigterm, sigint, sighup;
    uv_signal_t sigusr1; /* backup requests (backup.c) */
    int backup_busy;
    const kurer_relay_opts *opts;
    rconn *conns;
    uint64_t n_conns, n_preauth; /* live connections; those still in their handshake */
    uint64_t max_conns;          /* effective max_connections */
    htab dir;                    /* dir_user by user name */
    size_t n_dir;                /* devices in the directory */
    htab online;  /* rconn by device address: the device's live authenticated connection */
    htab pending; /* pend_item by (device, seq): delivered before their put committed, not acked */
    int stopping;
    /* counters (KURER__RELAY_COUNTERS: each declared once, rendered by metrics.c) */
#define KURER__COUNTER_FIELD(field, name, help) uint64_t field;
    KURER__RELAY_COUNTERS(KURER__COUNTER_FIELD)
#undef KURER__COUNTER_FIELD
    uint64_t rejects[NERR];    /* by error code: kurer_rejections_total{reason} */
    kurer__hist send_accept;   /* a SendRequest's arrival to its SendResult (accepted) */
    kurer__hist fanout_accept; /* the same for fan-out sends: the final part to the FanoutResult */
    uint64_t refused_max_conns, refused_max_handshakes, refused_per_address, refused_handshake_rate;
    uint64_t n_nk;         /* live NK sessions */
    uint64_t upload_bytes; /* held by chunked revocation uploads in progress */
    held_list *held;       /* the bytes of the lists in force, by issuer key id */
    size_t n_held, cap_held;
    kurer__addr_table addrs;
    kurer__take_table takes;
    struct kurer__enrol_addr *enrol_addrs; /* refused enrolment attempts per address (enrol.c) */
    uv_timer_t sweep;                      /* forgets idle address and prekey-take entries */
    uv_timer_t expiry;                     /* closes connections whose chain expires */
    int64_t next_expiry; /* unix seconds the expiry timer is set for (0: not set) */
    int timers;
    struct kurer__media *media; /* the media relay (media.c) */
    /* several nodes over postgres (cluster.c): the listen connection, this node's id, the last
     * connection number, the safety-net poll */
    struct kurer_pgl *pgl;
    char node_hex[17];
    uint64_t cluster_gen;
    uv_timer_t wake_poll;
    /* blobs (blobs.c): the expiry sweep and the counters kurer__blob_metrics renders */
    uv_timer_t blob_sweep;
    int have_blob_sweep, blob_sweeping;
    uint64_t blob_uploads, blob_upload_bytes, blob_download_bytes;
    uint64_t blob_refused[3]; /* too large, quota, bad offset */
    uint64_t blobs_expired, blob_expired_bytes, blob_bytes_stored;
};

/* Entries of the source address and prekey-take tables: beyond them new addresses are refused
 * and one-time prekeys withheld (fail closed), never unmetered. */
#define ADDR_ENTRIES_MAX ((size_t)1 << 16)

#define TAKE_ENTRIES_MAX ((size_t)1 << 18)

/* Durability (DESIGN.md, relay store): the sender of a request is told ACCEPTED once every
 * envelope of it is durable: committed by the store, or acked by its recipient device (whose
 * own store committed it first). An envelope whose device is connected and caught up is
 * delivered as soon as the store has given it its seq (sqlite: at submission), before the
 * commit; if the ack comes back before the commit, the put and the ack cancel in the store and
 * the envelope is never written (docs/relay.md, "Sequence numbers and early delivery"). */
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
    kurer_store_item *items; /* accepted envelopes */
    uint64_t *seqs;          /* per item, once the store has assigned them (0: not yet) */
    size_t n_items;
    kurer_buf envs;
    size_t *offs;
    pend_item *pend;  /* per item */
    size_t undurable; /* items neither committed nor acked */
    int replied;
    /* while kurer__handle_send runs: the request's decoded envelopes, which of them are items,
     * and their server_ts, so that an early delivery needs no decoding (NULL afterwards) */
    const kurer_envelope *env;
    const uint8_t *accepted;
    size_t n_env;
    int64_t ts;
    uint64_t started_us; /* when the request arrived (uv_hrtime), for kurer_send_accept_seconds */
    /* a fan-out (fanout.c): the shared bytes every item's envelope is made of (items carry no
     * bytes), and its answer instead of a SendResult */
    uint8_t *shared;
    size_t shared_len;
    void (*reply)(struct send_ctx *sc);
    uint8_t fanout_id[KURER_ENVELOPE_ID_LEN];
    int grouped; /* the envelopes come grouped by user, each user once (a fan-out's): the
                  * classification looks no further than a user's own run */
} send_ctx;

typedef struct req_ctx {
    rconn *rc;
    uint64_t request_id;
} req_ctx;

typedef struct req_ctx2 {
    rconn *rc;
    uint64_t request_id;
} req_ctx2;

/* ---- conn.c ---- */
/* 1 if a frame of this kind has a handler and may come on this kind of session (nk: an NK
 * session), else 0. */
int kurer__dispatch_allowed(kurer_client_body body, int nk);
/* The dispatch decision for a decoded frame: 0 (its handler runs), KURER_EUNSUPPORTED (no
 * handler: refused, the connection stays) or KURER_EPERM (not on an NK session: refused, the
 * session closed). */
int kurer__dispatch_check(kurer_client_body body, int nk);
/* Rows of the dispatch table for body: 1 for every kind the relay serves, else 0. */
size_t kurer__dispatch_rows(kurer_client_body body);
void kurer__preauth_done(rconn *rc);
void kurer__count_reject(relay *r, int err);
void kurer__rconn_unref(rconn *rc);
void kurer__buckets_init(const relay *r, kurer__bucket *b);
int kurer__send_frame(rconn *rc, const kurer_server_frame *f);
void kurer__send_error(rconn *rc, uint64_t request_id, int code, int close);
int kurer__rate_take(rconn *rc, int which, size_t n);
/* kurer__rate_take as of now_ms (monotonic milliseconds). */
int kurer__rate_take_at(rconn *rc, int which, size_t n, uint64_t now_ms);
size_t kurer__answer_max(const relay *r);
void kurer__send_ok(rconn *rc, uint64_t request_id);
void kurer__on_connection(uv_stream_t *server, int status);

/* ---- directory.c ---- */
dir_user *kurer__dir_user_find(relay *r, const char *user);
dir_entry *kurer__dir_find(relay *r, const kurer_device_address *a);
int kurer__dir_chain(const dir_entry *e, kurer_chain *out);
void kurer__dir_free(relay *r);
int kurer__dir_current(relay *r, const dir_entry *e, int64_t now);
int kurer__dir_put(relay *r, const kurer_device_address *a, const kurer_verified *v,
                   const uint8_t *chain, size_t chain_len);
void kurer__on_dir_loaded(void *arg, const kurer_store_device *d);
void kurer__handle_lookup(rconn *rc, const kurer_client_frame *f);

/* ---- deliver.c ---- */
int kurer__push_env(rconn *rc, uint64_t seq, const kurer_envelope *e);
int kurer__push(rconn *rc, uint64_t seq, const uint8_t *env, size_t len);
void kurer__start_fetch(rconn *rc);
rconn *kurer__online(relay *r, const kurer_device_address *a);
void kurer__online_set(relay *r, rconn *rc);

/* ---- send.c ---- */
void kurer__handle_send(rconn *rc, const kurer_client_frame *f);
/* The parts of a send request's policy, in the order kurer__handle_send applies them. */
/* The request's shape against cfg, before anything is allocated or metered: more envelopes than
 * max_send_envelopes, or one whose content exceeds max_envelope or would not fit a Deliver in a
 * record of max_record bytes: KURER_ELIMIT; else 0. */
int kurer__send_envelope_limits(const kurer_relay_config *cfg, const kurer_envelope *env, size_t n);
/* kurer__send_envelope_limits, then n tokens of the device's send bucket (KURER_ERATE, counted
 * in sends_rate_limited, without them): 0, or the error to answer. */
int kurer__send_bounds(rconn *rc, const kurer_client_frame *f);
/* A context for a request of n envelopes (NULL: no memory); freed with kurer__send_ctx_free. */
send_ctx *kurer__send_ctx_new(rconn *rc, uint64_t request_id, size_t n);
void kurer__send_ctx_free(send_ctx *sc);
/* The directory matcher for one recipient user: want holds the nw device ids its envelopes name
 * (duplicates allowed), have the nh ids of its current devices (the sender's own device left
 * out); own: the user is the sender's. UNKNOWN_USER if it has no current device (never for the
 * sender's own user), ACCEPTED if want and have are the same set, else STALE_DEVICES. Sorts both
 * arrays (and deduplicates want in place). */
kurer_send_status kurer__send_match(uint32_t *want, size_t nw, uint32_t *have, size_t nh, int own);
/* One result per recipient user of env (in sc->results, by kurer__send_match against the
 * directory now); a STALE_DEVICES result carries the current chains while the answer can still
 * fit. want and have hold n and (the most devices of any recipient user) ids. Adds the bytes of
 * STALE_DEVICES chains to *stale_bytes. 0 or KURER_ENOMEM. */
int kurer__send_classify(send_ctx *sc, const kurer_envelope *env, size_t n, uint32_t *want,
                         uint32_t *have, size_t *stale_bytes);
/* 1 if sc's SendResult fits one frame within one record (kurer__answer_max); stale_bytes: the
 * chain bytes its STALE_DEVICES results carry. */
int kurer__send_result_fits(send_ctx *sc, size_t stale_bytes);
void kurer__handle_ack(rconn *rc, const kurer_client_frame *f);
/* A put's callbacks (kurer_store_put_req) for a send_ctx: on_seqs pushes what may go out before
 * the commit, on_put answers once the items are durable (committed or acked early). */
void kurer__send_on_seqs(void *arg, const uint64_t *seqs, const uint64_t *prev, size_t n);
void kurer__send_on_put(void *arg, int err, const uint64_t *seqs, size_t n, size_t cancelled);
/* Whether the item's device is connected and may get it before the commit. */
int kurer__send_deliverable_now(relay *r, const kurer_store_item *it);

/* ---- fanout.c (docs/protocol.md 3.7) ---- */
/* One part of a fan-out send: held per connection until the final part, which is checked,
 * stored once (kurer_store_put_fanout) and answered with a FanoutResult. */
void kurer__handle_fanout(rconn *rc, const kurer_client_frame *f);
/* Drops the connection's unfinished fan-out (at close). */
void kurer__fanout_drop(rconn *rc);

/* ---- prekeys.c ---- */
void kurer__on_prekeys_counted(void *arg, int err, uint64_t count);
void kurer__handle_prekeys(rconn *rc, const kurer_client_frame *f);
void kurer__handle_fetch_prekeys(rconn *rc, const kurer_client_frame *f);

/* ---- revocation.c ---- */
/* Drops the connections whose authority's (or root's) list is past next_update + grace: the
 * handshake refuses them (ECRLSTALE), and a list that goes stale while they are connected must
 * not leave them in (from the sweep). */
void kurer__disconnect_stale(relay *r);
void kurer__held_free(relay *r);
void kurer__handle_revocation(rconn *rc, const kurer_client_frame *f);
void kurer__upload_drop(rconn *rc);
void kurer__handle_revocation_chunk(rconn *rc, const kurer_client_frame *f);
void kurer__uploads_expire(relay *r);
void kurer__handle_revocation_fetch(rconn *rc, const kurer_client_frame *f);
void kurer__handle_revocation_chunk_fetch(rconn *rc, const kurer_client_frame *f);
void kurer__disconnect_revoked(relay *r);
int kurer__load_crls(relay *r, int at_start);
void kurer__on_crl_loaded(void *arg, const uint8_t *list, size_t len);

/* ---- media.c (and media_udp.c: docs/calls.md, "The media relay") ---- */
/* The UDP socket on media_listen (default: the first listener's address), its poll handle and
 * the idle sweep; the ticket secret, made for this process. 0, or an error (*what: of what). */
int kurer__media_start(relay *r, const char **what);
/* "HOST:PORT" of the media socket, or NULL if it is not bound. */
const char *kurer__media_name(const relay *r);
/* Closes the media handles (on stop, or after a failed start). */
void kurer__media_stop(relay *r);
/* Frees every call, the socket and the secret (once the loop has closed the handles). */
void kurer__media_free(relay *r);
void kurer__handle_media_allocate(rconn *rc, const kurer_client_frame *f);
/* Closes the calls device a allocated (it was revoked): both legs stop at once. */
void kurer__media_drop_device(relay *r, const kurer_device_address *a);
/* Appends the media metrics to s (cap bytes, len used); returns the new len. */
size_t kurer__media_metrics(relay *r, char *s, size_t cap, size_t len);
/* The version of the list in force for an issuer (0: none). */
uint64_t kurer__crl_version(const relay *r, const uint8_t key_id[KURER_KEY_ID_LEN]);
/* A list another node stored: verified, applied (disconnect, push), not stored again. */
void kurer__crl_from_store(relay *r, const uint8_t *list, size_t len);

/* ---- blobs.c (docs/protocol.md 3.8) ---- */
void kurer__handle_blob_start(rconn *rc, const kurer_client_frame *f);
void kurer__handle_blob_chunk(rconn *rc, const kurer_client_frame *f);
void kurer__handle_blob_finish(rconn *rc, const kurer_client_frame *f);
void kurer__handle_blob_download(rconn *rc, const kurer_client_frame *f);
/* The expiry sweep's timer: a sweep at once, then every blob_sweep_ms; closed on stop. */
void kurer__blobs_start(relay *r);
void kurer__blobs_stop(relay *r);
/* Appends the blob metrics to s (cap bytes, len used); returns the new len. */
size_t kurer__blob_metrics(relay *r, char *s, size_t cap, size_t len);

/* ---- cluster.c (store = postgres: several nodes over one database) ---- */
/* Opens the listen connection (it connects on the loop) and the poll timer; 0 or an error. */
int kurer__cluster_open(relay *r, const char *conninfo);
/* Closes both (NULL-safe, idempotent). */
void kurer__cluster_close(relay *r);
/* A put committed: wakes the nodes of its devices not connected here. */
void kurer__cluster_committed(relay *r, const kurer_store_item *items, size_t n);
/* rc authenticated here: the older connections of its device elsewhere close. */
void kurer__cluster_connected(relay *r, rconn *rc);
/* A directory entry was committed to the store: the other nodes read it. */
void kurer__cluster_device_stored(relay *r, const kurer_device_address *a);
/* A list was committed to the store: the other nodes read and apply it. */
void kurer__cluster_list_stored(relay *r, const uint8_t key_id[KURER_KEY_ID_LEN], uint64_t version);

/* ---- input.c ---- */
/* A file of at most max bytes, binary or armoured text labelled want (else
 * KURER_EARMORLABEL); malloc'd. */
int kurer__read_input(const char *path, size_t max, kurer_armor_kind want, uint8_t **d, size_t *n);

/* ---- enrol.c: online enrolment over NK (docs/protocol.md 3.6) ---- */
/* One EnrolRequest record of an enrolment session: answered by one EnrolReply. */
void kurer__enrol_record(rconn *rc, const uint8_t *data, size_t n);
void kurer__enrol_free(relay *r);

/* ---- handshake.c ---- */
void kurer__conn_on_established(kurer_conn *c, const uint8_t *payload, size_t n);
void kurer__conn_on_hs(kurer_conn *c, kurer_noise_pattern p, const uint8_t *rs,
                       const uint8_t *payload, size_t n);

/* ---- metrics.c ---- */
char *kurer__metrics_text(relay *r);

/* ---- metrics_http.c ---- */
void kurer__m_close(struct mreq *m);
void kurer__on_metrics(uv_stream_t *server, int status);

/* ---- instance.c ---- */
/* Whether rc's copy of the home may become the device's connection (docs/protocol.md 1.1,
 * "Instances"): 0, or KURER_ECLONED (a replaced copy, or a second copy of the current one). */
int kurer__instance_check(relay *r, const rconn *rc);
/* Records rc's copy as the device's current one (after kurer__dir_put); 1 if it replaced
 * another copy, which is retired. */
int kurer__instance_take(relay *r, const rconn *rc);

/* ---- backup.c ---- */
/* SIGUSR1 asks for an online backup: the request file DIR/backup.request names the output, the
 * store writes it between transactions, DIR/backup.result answers (docs/relay.md, "Backup"). */
void kurer__backup_listen(relay *r);
void kurer__backup_stop(relay *r);

/* ---- server.c ---- */
void kurer__arm_expiry(relay *r, int64_t not_after);

/* ---- sandbox.c ---- */
/* Started as root (and told a user): gives what the relay created in dir to user, then runs as
 * user for good (groups, gid, uid), and checks that root cannot come back. Not root: nothing.
 * 0, or an error reported on stderr. */
int kurer__drop_privileges(const char *dir, const char *user);
/* Installs the allow-list of the system calls the relay makes while it serves, on every thread
 * (the store's writer too); any other call kills the process. 0, or an error reported on
 * stderr. *n: the calls allowed. */
int kurer__seccomp_install(size_t *n, int postgres);

/* audit.c: the audit log of security events (NULL path: none). */
KURER_MUST_CHECK int kurer__audit_open(relay *r, const char *path);
void kurer__audit_close(relay *r);
void kurer__audit(relay *r, const char *event, const kurer_log_field *fields, size_t n);

/* ---- notify.c ---- */
/* systemd (sd_notify; nothing without NOTIFY_SOCKET): READY=1 with STATUS=, and WATCHDOG=1
 * every half WATCHDOG_USEC from r->watchdog when systemd asks for it. */
void kurer__notify_ready(relay *r, const char *status);
/* STOPPING=1, and the watchdog timer closed. */
void kurer__notify_stopping(relay *r);

#endif
