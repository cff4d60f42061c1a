/* Relay nodes together over one PostgreSQL database (cluster.h; docs/scale-out.md, "Nodes
 * together"): what a node tells the others through the listen connection, and what it does
 * with what they tell it.
 *
 * Notifications (ASCII: a prefix "X NODE", NODE the sender's random 64-bit id in hex, then
 * tokens separated by one space):
 *   w NODE USERHEX.DEVICE ...         envelopes committed for these devices (wake-ups)
 *   c NODE GEN.USERHEX.DEVICE ...     these devices authenticated on NODE (connection GEN)
 *   r NODE KEYIDHEX.VERSION ...       these revocation lists were stored
 *   d NODE USERHEX.DEVICE ...         these devices' directory entries were stored
 * Anyone who may connect to the database may notify its channels, so a notification is parsed
 * as untrusted input: bounded, strictly, a bad one counted and dropped whole. What it can make
 * a node do is harmless or checked: a fetch, the close of a device's connection (what a
 * database client can do anyway), a list read from the store, whose signature the trust store
 * checks as at start-up.
 *
 * The newest connection wins without clocks: every node sees the notifications of the channel
 * in one order (the commit order), its own included. A node's connection whose own "c" came
 * back is older than any "c" for its device that comes after: that one closes it (EBUSY). */
#include "cluster.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "kurer/util.h"
#include "relay_internal.h"

#define USER_HEX_MAX (2 * KURER_SUBJECT_MAX)
#define TOKEN_MAX    (USER_HEX_MAX + 48)

/* ---- tokens --------------------------------------------------------------------------------- */

static void prefix_of(const relay *r, char kind, char *out, size_t cap)
{
    snprintf(out, cap, "%c %s", kind, r->node_hex);
}

static void addr_token(const kurer_device_address *a, char *out, size_t cap)
{
    size_t ul = strlen(a->user);
    if (2 * ul + 12 > cap) {
        out[0] = '\0';
        return;
    }
    kurer_hex_encode(out, a->user, ul);
    snprintf(out + 2 * ul, cap - 2 * ul, ".%" PRIu32, a->device_id);
}

/* A decimal number of at most 20 digits, no sign, no leading junk; 0 or KURER_EMALFORMED. */
static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return KURER_EMALFORMED;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return KURER_EMALFORMED;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return KURER_EMALFORMED;
        v = v * 10 + d;
    }
    if (v > max)
        return KURER_EMALFORMED;
    *out = v;
    return 0;
}

/* Lowercase or uppercase hex of exactly n bytes; 0 or KURER_EMALFORMED. */
static int parse_hex(const char *s, size_t len, uint8_t *out, size_t n)
{
    char tmp[USER_HEX_MAX + 1];
    if (len != 2 * n || len > USER_HEX_MAX)
        return KURER_EMALFORMED;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return kurer_hex_decode(out, n, tmp) == 0 ? 0 : KURER_EMALFORMED;
}

/* USERHEX.DEVICE: a user of 1..KURER_SUBJECT_MAX bytes without NUL, a device id. */
static int parse_addr(const char *s, size_t len, kurer_device_address *a)
{
    const char *dot = memchr(s, '.', len);
    uint64_t dev;
    memset(a, 0, sizeof(*a));
    if (dot == NULL || dot == s || (size_t)(dot - s) % 2 != 0)
        return KURER_EMALFORMED;
    size_t ul = (size_t)(dot - s) / 2;
    if (ul > KURER_SUBJECT_MAX || parse_hex(s, (size_t)(dot - s), (uint8_t *)a->user, ul) != 0 ||
        memchr(a->user, '\0', ul) != NULL)
        return KURER_EMALFORMED;
    if (parse_u64(dot + 1, len - (size_t)(dot - s) - 1, UINT32_MAX, &dev) != 0)
        return KURER_EMALFORMED;
    a->device_id = (uint32_t)dev;
    return 0;
}

/* ---- what the others say -------------------------------------------------------------------- */

/* A device's connection should look into its mailbox: now, or after the fetch running. */
static void wake_conn(rconn *rc)
{
    if (!rc->authed || rc->c == NULL || kurer_conn_closing(rc->c))
        return;
    rc->dirty = 1;
    kurer__start_fetch(rc);
}

static int on_wake(relay *r, const char *tok, size_t len)
{
    kurer_device_address a;
    if (parse_addr(tok, len, &a) != 0)
        return KURER_EMALFORMED;
    rconn *rc = kurer__online(r, &a);
    if (rc != NULL && rc->authed) {
        r->cluster_wakeups++;
        wake_conn(rc);
    }
    return 0;
}

/* GEN.USERHEX.DEVICE from ourselves (own: our "c" came back) or from another node. */
static int on_connect(relay *r, const char *tok, size_t len, int own)
{
    const char *dot = memchr(tok, '.', len);
    uint64_t gen;
    kurer_device_address a;
    if (dot == NULL || parse_u64(tok, (size_t)(dot - tok), UINT64_MAX, &gen) != 0 ||
        parse_addr(dot + 1, len - (size_t)(dot - tok) - 1, &a) != 0)
        return KURER_EMALFORMED;
    rconn *rc = kurer__online(r, &a);
    if (rc == NULL || !rc->authed)
        return 0;
    if (own) {
        if (rc->cluster_gen == gen)
            rc->cluster_seen = 1;
        return 0;
    }
    if (!rc->cluster_seen)
        return 0; /* ours is newer: its "c" comes later and closes the other */
    r->replaced++;
    r->cluster_replaced++;
    kurer_log(
        KURER_LOG_INFO, "cluster", "connection_replaced",
        (kurer_log_field[]){KURER_LOG_STR("user", a.user), KURER_LOG_INT("device", a.device_id)},
        2);
    kurer__send_error(rc, 0, KURER_EBUSY, 1);
    return 0;
}

static int on_list_stored(relay *r, const char *tok, size_t len)
{
    const char *dot = memchr(tok, '.', len);
    uint8_t key_id[KURER_KEY_ID_LEN];
    uint64_t version;
    if (dot == NULL || parse_hex(tok, (size_t)(dot - tok), key_id, sizeof(key_id)) != 0 ||
        parse_u64(dot + 1, len - (size_t)(dot - tok) - 1, UINT64_MAX, &version) != 0)
        return KURER_EMALFORMED;
    if (kurer__crl_version(r, key_id) >= version)
        return 0; /* in force here already */
    if (kurer__pgl_load_lists(r->pgl, key_id) != 0)
        kurer_log(KURER_LOG_WARN, "cluster", "list_not_loaded", NULL, 0);
    return 0;
}

static int on_device_stored(relay *r, const char *tok, size_t len)
{
    kurer_device_address a;
    if (parse_addr(tok, len, &a) != 0)
        return KURER_EMALFORMED;
    if (kurer__pgl_load_device(r->pgl, &a) != 0)
        kurer_log(KURER_LOG_WARN, "cluster", "device_not_loaded", NULL, 0);
    return 0;
}

static int on_token(relay *r, char kind, const char *tok, size_t len, int own)
{
    if (len == 0 || len > TOKEN_MAX)
        return KURER_EMALFORMED;
    switch (kind) {
    case 'w':
        return on_wake(r, tok, len);
    case 'c':
        return on_connect(r, tok, len, own);
    case 'd':
        return on_device_stored(r, tok, len);
    default:
        return on_list_stored(r, tok, len);
    }
}

static void on_notify(void *arg, const char *p, size_t len)
{
    relay *r = arg;
    /* "X " + 16 hex digits of the node, then " TOKEN"s */
    if (len < 18 || len > KURER__PGL_PAYLOAD_MAX || p[1] != ' ' ||
        (p[0] != 'w' && p[0] != 'c' && p[0] != 'r' && p[0] != 'd') ||
        memchr(p, '\0', len) != NULL) {
        r->cluster_rejected++;
        return;
    }
    uint8_t node[8];
    if (parse_hex(p + 2, 16, node, sizeof(node)) != 0 || (len > 18 && p[18] != ' ')) {
        r->cluster_rejected++;
        return;
    }
    int own = memcmp(p + 2, r->node_hex, 16) == 0;
    if (own && p[0] != 'c')
        return; /* our own wake-ups and lists: done here already */
    size_t i = 19;
    while (i < len) {
        const char *sp = memchr(p + i, ' ', len - i);
        size_t tl = sp != NULL ? (size_t)(sp - (p + i)) : len - i;
        if (on_token(r, p[0], p + i, tl, own) != 0) {
            r->cluster_rejected++; /* the rest of a bad notification is not read */
            return;
        }
        i += tl + 1;
    }
}

static void on_list(void *arg, const uint8_t *list, size_t len)
{
    kurer__crl_from_store(arg, list, len);
}

/* Verified against the trust store as at start-up (an expired or revoked chain is left out). */
static void on_device(void *arg, const kurer_store_device *d)
{
    kurer__on_dir_loaded(arg, d);
}

/* ---- what this node says -------------------------------------------------------------------- */

static void publish_connect(relay *r, rconn *rc)
{
    char prefix[24], tok[TOKEN_MAX + 1], a[USER_HEX_MAX + 16];
    addr_token(&rc->addr, a, sizeof(a));
    prefix_of(r, 'c', prefix, sizeof(prefix));
    snprintf(tok, sizeof(tok), "%" PRIu64 ".%s", rc->cluster_gen, a);
    /* not sent: taken as old, so that a newer connection elsewhere wins over it */
    if (!kurer__pgl_up(r->pgl) || kurer__pgl_notify(r->pgl, prefix, tok, 0) != 0)
        rc->cluster_seen = 1;
}

/* Connected again: what was said meanwhile may be lost. Every device connected here looks into
 * its mailbox, the lists and the directory are read again, and the connections here are
 * announced again, so that a device connected on two nodes meanwhile ends up on one. */
static void on_up(void *arg)
{
    relay *r = arg;
    kurer_pgl_stats st;
    kurer__pgl_stats(r->pgl, &st);
    r->cluster_listen_reconnects = st.reconnects;
    if (kurer__pgl_load_lists(r->pgl, NULL) != 0 || kurer__pgl_load_device(r->pgl, NULL) != 0)
        kurer_log(KURER_LOG_WARN, "cluster", "reload_not_queued", NULL, 0);
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next) {
        if (!rc->authed || rc->c == NULL || kurer_conn_closing(rc->c))
            continue;
        wake_conn(rc);
        rc->cluster_seen = 1;
        publish_connect(r, rc);
    }
}

static void on_poll_timer(uv_timer_t *t)
{
    relay *r = t->data;
    r->cluster_polls++;
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        wake_conn(rc);
}

int kurer__cluster_open(relay *r, const char *conninfo)
{
    static const kurer_pgl_cbs cbs = {on_notify, on_list, on_device, on_up};
    uint8_t node[8];
    kurer_random(node, sizeof(node));
    kurer_hex_encode(r->node_hex, node, sizeof(node));
    int err = kurer__pgl_open(&r->pgl, r->loop, conninfo, &cbs, r);
    if (err != 0)
        return err;
    uv_timer_init(r->loop, &r->wake_poll);
    r->wake_poll.data = r;
    uv_timer_start(&r->wake_poll, on_poll_timer, r->cfg.wake_poll_ms, r->cfg.wake_poll_ms);
    kurer_log(KURER_LOG_INFO, "cluster", "node",
              (kurer_log_field[]){KURER_LOG_STR("node", r->node_hex),
                                  KURER_LOG_INT("wake_poll_ms", r->cfg.wake_poll_ms)},
              2);
    return 0;
}

void kurer__cluster_close(relay *r)
{
    if (r->pgl == NULL)
        return;
    kurer__pgl_close(r->pgl);
    r->pgl = NULL;
    uv_close((uv_handle_t *)&r->wake_poll, NULL);
}

void kurer__cluster_committed(relay *r, const kurer_store_item *items, size_t n)
{
    char prefix[24], tok[TOKEN_MAX + 1];
    if (r->pgl == NULL)
        return;
    prefix_of(r, 'w', prefix, sizeof(prefix));
    for (size_t i = 0; i < n; i++) {
        /* a device connected here got it already (on_seqs); the same device twice in a row
         * needs one token */
        if (kurer__online(r, &items[i].to) != NULL ||
            (i > 0 && items[i].to.device_id == items[i - 1].to.device_id &&
             strcmp(items[i].to.user, items[i - 1].to.user) == 0))
            continue;
        addr_token(&items[i].to, tok, sizeof(tok));
        if (kurer__pgl_notify(r->pgl, prefix, tok, 1) == 0)
            r->cluster_wakeups_sent++;
        else
            r->cluster_dropped++; /* the other node's poll finds it */
    }
}

void kurer__cluster_connected(relay *r, rconn *rc)
{
    if (r->pgl == NULL)
        return;
    rc->cluster_gen = ++r->cluster_gen;
    rc->cluster_seen = 0;
    publish_connect(r, rc);
}

void kurer__cluster_list_stored(relay *r, const uint8_t key_id[KURER_KEY_ID_LEN], uint64_t version)
{
    char prefix[24], tok[2 * KURER_KEY_ID_LEN + 24];
    if (r->pgl == NULL)
        return;
    prefix_of(r, 'r', prefix, sizeof(prefix));
    kurer_hex_encode(tok, key_id, KURER_KEY_ID_LEN);
    snprintf(tok + 2 * KURER_KEY_ID_LEN, sizeof(tok) - 2 * KURER_KEY_ID_LEN, ".%" PRIu64, version);
    if (kurer__pgl_notify(r->pgl, prefix, tok, 1) != 0)
        r->cluster_dropped++; /* the others read every list when their connection comes back */
}

void kurer__cluster_device_stored(relay *r, const kurer_device_address *a)
{
    char prefix[24], tok[TOKEN_MAX + 1];
    if (r->pgl == NULL)
        return;
    prefix_of(r, 'd', prefix, sizeof(prefix));
    addr_token(a, tok, sizeof(tok));
    if (kurer__pgl_notify(r->pgl, prefix, tok, 1) != 0)
        r->cluster_dropped++; /* the others find it at their next start */
}
