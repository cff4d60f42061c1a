/* The media relay's calls (docs/calls.md, "The media relay"): allocation over the
 * authenticated connection, tickets (a MAC under a secret of this process), the table of calls
 * with its bounds, the idle sweep, the metrics, start and stop. The datagrams are media_udp.c's. */
#define _GNU_SOURCE 1
#include "media.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/mac.h"
#include "kurer/util.h"

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* version (1) | call id (8, LE) | leg (1) | expiry (8, LE, monotonic ms) | MAC (32). */
static void make_ticket(const kurer__media *m, uint64_t id, int leg, uint64_t expiry,
                        uint8_t out[MEDIA_TICKET_LEN])
{
    out[0] = MEDIA_TICKET_VERSION;
    put_u64(out + 1, id);
    out[9] = (uint8_t)leg;
    put_u64(out + 10, expiry);
    kurer_mac(out + MEDIA_TICKET_BODY, m->secret, out, MEDIA_TICKET_BODY);
}

static media_call *call_find(kurer__media *m, uint64_t id)
{
    uint64_t h = htab_hash(&m->by_id, &id, sizeof(id));
    for (hnode *n = htab_first(&m->by_id, h); n != NULL; n = htab_next(n, h)) {
        media_call *c = HTAB_ENTRY(n, media_call, node);
        if (c->id == id)
            return c;
    }
    return NULL;
}

media_call *kurer__media_ticket_call(kurer__media *m, const uint8_t *t, size_t len, int *leg,
                                     uint64_t now_ms)
{
    uint8_t mac[KURER_MAC_LEN];
    if (len != MEDIA_TICKET_LEN || t[0] != MEDIA_TICKET_VERSION || t[9] > 1) {
        m->drops[DROP_bad_ticket]++;
        return NULL;
    }
    kurer_mac(mac, m->secret, t, MEDIA_TICKET_BODY);
    if (!kurer_ct_equal(mac, t + MEDIA_TICKET_BODY, KURER_MAC_LEN)) {
        m->drops[DROP_bad_ticket]++;
        return NULL;
    }
    if (now_ms > get_u64(t + 10)) {
        m->drops[DROP_expired_ticket]++;
        return NULL;
    }
    media_call *c = call_find(m, get_u64(t + 1));
    if (c == NULL) {
        m->drops[DROP_unknown_call]++;
        return NULL;
    }
    *leg = t[9];
    return c;
}

/* The sweep's list: oldest activity first. */
static void list_unlink(kurer__media *m, media_call *c)
{
    if (c->older != NULL)
        c->older->newer = c->newer;
    else
        m->oldest = c->newer;
    if (c->newer != NULL)
        c->newer->older = c->older;
    else
        m->newest = c->older;
    c->older = c->newer = NULL;
}

static void list_append(kurer__media *m, media_call *c)
{
    c->older = m->newest;
    c->newer = NULL;
    if (m->newest != NULL)
        m->newest->newer = c;
    else
        m->oldest = c;
    m->newest = c;
}

void kurer__media_touch(kurer__media *m, media_call *c, uint64_t now_ms)
{
    c->last_ms = now_ms;
    if (m->newest != c) {
        list_unlink(m, c);
        list_append(m, c);
    }
}

static media_owner *owner_get(kurer__media *m, const kurer_device_address *a, int make)
{
    uint64_t h = htab_hash_dev(&m->owners, a->user, a->device_id);
    for (hnode *n = htab_first(&m->owners, h); n != NULL; n = htab_next(n, h)) {
        media_owner *o = HTAB_ENTRY(n, media_owner, node);
        if (o->device_id == a->device_id && strcmp(o->user, a->user) == 0)
            return o;
    }
    if (!make)
        return NULL;
    size_t ul = strlen(a->user);
    media_owner *o = calloc(1, sizeof(*o) + ul + 1);
    if (o == NULL)
        return NULL;
    o->device_id = a->device_id;
    memcpy(o->user, a->user, ul + 1);
    htab_insert(&m->owners, &o->node, h);
    return o;
}

static void call_free(kurer__media *m, media_call *c)
{
    for (int i = 0; i < 2; i++)
        kurer__media_unlock(m, &c->leg[i]);
    htab_remove(&m->by_id, &c->node);
    list_unlink(m, c);
    m->n_calls--;
    if (c->oprev != NULL)
        c->oprev->onext = c->onext;
    else
        c->owner->calls = c->onext;
    if (c->onext != NULL)
        c->onext->oprev = c->oprev;
    if (--c->owner->n == 0) {
        htab_remove(&m->owners, &c->owner->node);
        free(c->owner);
    }
    free(c);
}

/* A new call of the device, listed; NULL with the error to answer. */
static media_call *call_new(kurer__media *m, const kurer_device_address *a, uint64_t now, int *err)
{
    const kurer_relay_config *cfg = &m->r->cfg;
    media_owner *o = owner_get(m, a, 0);
    *err = KURER_ELIMIT;
    if (o != NULL && o->n >= cfg->media_calls_per_device) {
        m->refused_per_device++;
        return NULL;
    }
    if (m->n_calls >= cfg->media_calls_max) {
        m->refused_total++;
        return NULL;
    }
    *err = KURER_ENOMEM;
    media_call *c = calloc(1, sizeof(*c));
    if (c == NULL || (o == NULL && (o = owner_get(m, a, 1)) == NULL)) {
        free(c);
        return NULL;
    }
    do /* random ids: a call's id says nothing about the others */
        kurer_random(&c->id, sizeof(c->id));
    while (c->id == 0 || call_find(m, c->id) != NULL);
    for (int i = 0; i < 2; i++) {
        c->leg[i].call = c;
        c->leg[i].idx = (uint8_t)i;
        kurer__bucket_init(&c->leg[i].pkts, cfg->media_leg_packet_rate, now);
        kurer__bucket_init(&c->leg[i].bytes, cfg->media_leg_byte_rate, now);
    }
    c->owner = o;
    o->n++;
    c->onext = o->calls;
    if (o->calls != NULL)
        o->calls->oprev = c;
    o->calls = c;
    htab_insert(&m->by_id, &c->node, htab_hash(&m->by_id, &c->id, sizeof(c->id)));
    c->last_ms = now;
    list_append(m, c);
    m->n_calls++;
    m->allocated++;
    return c;
}

void kurer__handle_media_allocate(rconn *rc, const kurer_client_frame *f)
{
    relay *r = rc->r;
    kurer__media *m = r->media;
    int err;
    if (!rc->authed) {
        kurer__send_error(rc, f->request_id, KURER_EPERM, 1);
        return;
    }
    uint64_t now = uv_now(r->loop); /* the media relay's one clock: monotonic ms */
    media_call *c = call_new(m, &rc->addr, now, &err);
    if (c == NULL) {
        kurer__send_error(rc, f->request_id, err, 0);
        return;
    }
    kurer_server_frame out;
    memset(&out, 0, sizeof(out));
    out.request_id = f->request_id;
    out.body = KURER_SERVER_MEDIA_ALLOCATION;
    kurer_media_allocation *a = &out.u.media_allocation;
    uint64_t ttl = r->cfg.media_ticket_lifetime_s * 1000;
    a->call_id = c->id;
    make_ticket(m, c->id, 0, now + ttl, a->ticket_a);
    make_ticket(m, c->id, 1, now + ttl, a->ticket_b);
    a->ticket_a_len = a->ticket_b_len = MEDIA_TICKET_LEN;
    a->udp_port = m->port;
    a->ticket_ttl_ms = (uint32_t)ttl;
    a->keepalive_ms = (uint32_t)r->cfg.media_keepalive_ms;
    kurer_log(KURER_LOG_DEBUG, "relay", "media_allocated",
              (kurer_log_field[]){KURER_LOG_STR("user", rc->addr.user),
                                  KURER_LOG_INT("device", rc->addr.device_id),
                                  KURER_LOG_INT("calls", m->n_calls)},
              3);
    if (kurer__send_frame(rc, &out) != 0)
        call_free(m, c); /* nobody holds its tickets */
}

/* Closes the calls idle for media_idle_timeout_ms (oldest first: the list is by activity). */
static void on_sweep(uv_timer_t *t)
{
    kurer__media *m = t->data;
    uint64_t now = uv_now(m->r->loop), idle = m->r->cfg.media_idle_timeout_ms;
    while (m->oldest != NULL && now >= m->oldest->last_ms && now - m->oldest->last_ms >= idle) {
        call_free(m, m->oldest);
        m->closed_idle++;
    }
}

void kurer__media_drop_device(relay *r, const kurer_device_address *a)
{
    kurer__media *m = r->media;
    media_owner *o = m != NULL ? owner_get(m, a, 0) : NULL;
    if (o == NULL)
        return;
    for (uint64_t n = o->n; n > 0; n--) { /* the last call_free frees o too */
        call_free(m, o->calls);
        m->closed_revoked++;
    }
}

/* media_listen, or the first listener's address (the same port number, over UDP). */
static int media_addr(const relay *r, struct sockaddr_storage *ss, const char **what)
{
    const char *a = r->opts->media_listen != NULL ? r->opts->media_listen : r->opts->listen[0];
    *what = a;
    return kurer_net_resolve(a, ss);
}

int kurer__media_start(relay *r, const char **what)
{
    struct sockaddr_storage ss;
    int err;
    if (r->cfg.media_keepalive_ms >= r->cfg.media_idle_timeout_ms) {
        *what = "media_keepalive_ms (must be below media_idle_timeout_ms)";
        return KURER_EINVAL;
    }
    kurer__media *m = calloc(1, sizeof(*m));
    *what = "media relay (memory)";
    if (m == NULL)
        return KURER_ENOMEM;
    m->r = r;
    m->fd = -1;
    r->media = m;
    if ((m->secret = kurer_secure_alloc(KURER_MAC_KEY_LEN)) == NULL)
        return KURER_ENOMEM;
    kurer_random(m->secret, KURER_MAC_KEY_LEN);
    kurer_secure_readonly(m->secret);
    if ((err = htab_init(&m->by_id)) != 0 || (err = htab_init(&m->by_addr)) != 0 ||
        (err = htab_init(&m->owners)) != 0)
        return err;
    if ((err = media_addr(r, &ss, what)) != 0 || (err = kurer__media_udp_open(m, &ss)) != 0)
        return err;
    uv_timer_init(r->loop, &m->sweep);
    m->sweep.data = m;
    m->have_sweep = 1;
    uint64_t every = r->cfg.media_idle_timeout_ms / 8;
    uv_timer_start(&m->sweep, on_sweep, every, every < 100 ? 100 : every);
    return 0;
}

const char *kurer__media_name(const relay *r)
{
    return r->media != NULL && r->media->fd >= 0 ? r->media->name : NULL;
}

void kurer__media_stop(relay *r)
{
    kurer__media *m = r->media;
    if (m == NULL)
        return;
    if (m->have_poll)
        uv_close((uv_handle_t *)&m->poll, NULL);
    if (m->have_sweep)
        uv_close((uv_handle_t *)&m->sweep, NULL);
    m->have_poll = m->have_sweep = 0;
}

void kurer__media_free(relay *r)
{
    kurer__media *m = r->media;
    if (m == NULL)
        return;
    while (m->oldest != NULL)
        call_free(m, m->oldest);
    if (m->fd >= 0)
        close(m->fd); /* its poll handle closed with the loop's last run */
    htab_free(&m->by_id);
    htab_free(&m->by_addr);
    htab_free(&m->owners);
    kurer_secure_free(m->secret);
    free(m);
    r->media = NULL;
}

static const char *const drop_names[] = {
#define KURER__MEDIA_DROP_NAME(name, help) #name,
    KURER__MEDIA_DROPS(KURER__MEDIA_DROP_NAME)
#undef KURER__MEDIA_DROP_NAME
};

size_t kurer__media_metrics(relay *r, char *s, size_t cap, size_t len)
{
    const kurer__media *m = r->media;
    if (m == NULL)
        return len;
    const struct {
        const char *name, *type, *help;
        uint64_t v;
    } rows[] = {
        {"media_calls", "gauge", "Media relay calls open.", m->n_calls},
        {"media_calls_allocated_total", "counter", "Media relay calls allocated.", m->allocated},
        {"media_calls_closed_idle_total", "counter",
         "Media relay calls closed after media_idle_timeout_ms without a datagram.",
         m->closed_idle},
        {"media_calls_closed_revoked_total", "counter",
         "Media relay calls closed because the device that allocated them was revoked.",
         m->closed_revoked},
        {"media_datagrams_received_total", "counter", "Datagrams received on the media port.",
         m->received},
        {"media_datagrams_forwarded_total", "counter", "MEDIA datagrams forwarded to a leg.",
         m->forwarded},
        {"media_bytes_forwarded_total", "counter", "Bytes of the MEDIA datagrams forwarded.",
         m->fwd_bytes},
        {"media_binds_total", "counter", "BIND datagrams with a valid ticket (answered BOUND).",
         m->binds},
        {"media_relocks_total", "counter", "Legs locked again to a new address by a valid BIND.",
         m->relocks},
        {"media_keepalives_total", "counter", "KEEPALIVE datagrams echoed.", m->keepalives},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]) && len < cap; i++)
        len += (size_t)snprintf(s + len, cap - len,
                                "# HELP kurer_%s %s\n# TYPE kurer_%s %s\nkurer_%s %llu\n",
                                rows[i].name, rows[i].help, rows[i].name, rows[i].type,
                                rows[i].name, (unsigned long long)rows[i].v);
    if (len < cap)
        len += (size_t)snprintf(
            s + len, cap - len,
            "# HELP kurer_media_allocations_refused_total MediaAllocate refused (ELIMIT), by the "
            "bound.\n# TYPE kurer_media_allocations_refused_total counter\n"
            "kurer_media_allocations_refused_total{reason=\"per_device\"} %llu\n"
            "kurer_media_allocations_refused_total{reason=\"total\"} %llu\n"
            "# HELP kurer_media_dropped_total Datagrams dropped unanswered, by reason.\n"
            "# TYPE kurer_media_dropped_total counter\n",
            (unsigned long long)m->refused_per_device, (unsigned long long)m->refused_total);
    for (size_t i = 0; i < N_DROPS && len < cap; i++)
        len +=
            (size_t)snprintf(s + len, cap - len, "kurer_media_dropped_total{reason=\"%s\"} %llu\n",
                             drop_names[i], (unsigned long long)m->drops[i]);
    return len;
}
