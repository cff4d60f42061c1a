/* The media relay's datagrams (docs/protocol.md, "Media datagrams"): one non-blocking UDP
 * socket watched by a uv_poll, read with recvmmsg and written with sendmmsg in batches of
 * MEDIA_BATCH. BIND locks a leg, MEDIA is forwarded unchanged between the two locked legs of a
 * call, KEEPALIVE is echoed; everything else is dropped, counted and never answered. No answer
 * is longer than the datagram it answers. */
#define _GNU_SOURCE 1
#include "media.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kurer/log.h"

/* The 18-byte key of an address: IPv6 (IPv4 mapped) and the port, big-endian. 0, or -1 for
 * another family. */
static int addr_key(const struct sockaddr_storage *ss, uint8_t key[18])
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ss;
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &a->sin_addr, 4);
        memcpy(key + 16, &a->sin_port, 2);
        return 0;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ss;
        memcpy(key, &a->sin6_addr, 16);
        memcpy(key + 16, &a->sin6_port, 2);
        return 0;
    }
    return -1;
}

static media_leg *leg_at(kurer__media *m, const uint8_t key[18])
{
    uint64_t h = htab_hash(&m->by_addr, key, 18);
    for (hnode *n = htab_first(&m->by_addr, h); n != NULL; n = htab_next(n, h)) {
        media_leg *l = HTAB_ENTRY(n, media_leg, anode);
        if (memcmp(l->key, key, 18) == 0)
            return l;
    }
    return NULL;
}

void kurer__media_unlock(kurer__media *m, media_leg *leg)
{
    if (leg->locked) {
        htab_remove(&m->by_addr, &leg->anode);
        leg->locked = 0;
    }
}

void kurer__media_lock(kurer__media *m, media_leg *leg, const struct sockaddr_storage *sa,
                       socklen_t salen, const uint8_t key[18])
{
    media_leg *holder = leg_at(m, key);
    if (holder == leg)
        return;
    if (holder != NULL) /* the address moved to this leg: the one it left no longer gets it */
        kurer__media_unlock(m, holder);
    if (leg->locked)
        m->relocks++;
    kurer__media_unlock(m, leg);
    memcpy(leg->key, key, 18);
    memcpy(&leg->sa, sa, salen);
    leg->salen = salen;
    leg->locked = 1;
    htab_insert(&m->by_addr, &leg->anode, htab_hash(&m->by_addr, key, 18));
}

/* Queues len bytes at data to sa for the batch's sendmmsg. */
static void queue_send(kurer__media *m, const struct sockaddr_storage *sa, socklen_t salen,
                       const uint8_t *data, size_t len)
{
    unsigned i = m->n_send++;
    memcpy(&m->ssa[i], sa, salen);
    m->siov[i].iov_base = (void *)(uintptr_t)data;
    m->siov[i].iov_len = len;
    memset(&m->smsg[i].msg_hdr, 0, sizeof(m->smsg[i].msg_hdr));
    m->smsg[i].msg_hdr.msg_name = &m->ssa[i];
    m->smsg[i].msg_hdr.msg_namelen = salen;
    m->smsg[i].msg_hdr.msg_iov = &m->siov[i];
    m->smsg[i].msg_hdr.msg_iovlen = 1;
}

static void flush_sends(kurer__media *m)
{
    unsigned done = 0;
    while (done < m->n_send) {
        int k = sendmmsg(m->fd, m->smsg + done, m->n_send - done, MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) { /* EAGAIN (buffer full) or an error for the first of them: drop it */
            m->drops[DROP_send_failed]++;
            done++;
            continue;
        }
        done += (unsigned)k;
    }
    m->n_send = 0;
}

/* The leg's rate buckets take one datagram of len bytes. */
static int leg_rate_ok(kurer__media *m, media_leg *l, size_t len, uint64_t now)
{
    const kurer_relay_config *cfg = &m->r->cfg;
    if (!kurer__bucket_take(&l->pkts, cfg->media_leg_packet_rate, 1, now) ||
        !kurer__bucket_take(&l->bytes, cfg->media_leg_byte_rate, len, now)) {
        m->drops[DROP_rate_capped]++;
        return 0;
    }
    return 1;
}

static void on_bind(kurer__media *m, unsigned i, const uint8_t key[18], size_t len, uint64_t now)
{
    int idx;
    media_call *c = kurer__media_ticket_call(m, m->rbuf[i] + 1, len - 1, &idx, now);
    if (c == NULL)
        return;
    media_leg *l = &c->leg[idx];
    if (!leg_rate_ok(m, l, len, now))
        return;
    kurer__media_lock(m, l, &m->rsa[i], m->rmsg[i].msg_hdr.msg_namelen, key);
    kurer__media_touch(m, c, now);
    m->binds++;
    m->bound[i][0] = MEDIA_BOUND;
    m->bound[i][1] = (uint8_t)idx;
    queue_send(m, &l->sa, l->salen, m->bound[i], 2); /* 2 bytes: never more than the BIND */
}

static void on_datagram(kurer__media *m, unsigned i, uint64_t now)
{
    size_t len = m->rmsg[i].msg_len;
    const uint8_t *d = m->rbuf[i];
    uint8_t key[18];
    m->received++;
    if (len == 0 || addr_key(&m->rsa[i], key) != 0) {
        m->drops[len == 0 ? DROP_too_short : DROP_unknown_kind]++;
        return;
    }
    if (len > MEDIA_DATAGRAM_MAX || (m->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC)) {
        m->drops[DROP_too_long]++;
        return;
    }
    if (d[0] == MEDIA_BIND) {
        on_bind(m, i, key, len, now);
        return;
    }
    if (d[0] != MEDIA_DATA && d[0] != MEDIA_KEEPALIVE) {
        m->drops[DROP_unknown_kind]++;
        return;
    }
    if (d[0] == MEDIA_KEEPALIVE && len > 1 + MEDIA_KEEPALIVE_MAX) {
        m->drops[DROP_too_long]++;
        return;
    }
    if (d[0] == MEDIA_DATA && len < 2) {
        m->drops[DROP_too_short]++;
        return;
    }
    media_leg *l = leg_at(m, key);
    if (l == NULL) {
        m->drops[DROP_unlocked_address]++;
        return;
    }
    if (!leg_rate_ok(m, l, len, now))
        return;
    media_call *c = l->call;
    kurer__media_touch(m, c, now);
    if (d[0] == MEDIA_KEEPALIVE) {
        m->keepalives++;
        queue_send(m, &l->sa, l->salen, d, len); /* the same bytes back: the same size */
        return;
    }
    media_leg *peer = &c->leg[1 - l->idx];
    if (!peer->locked) {
        m->drops[DROP_no_peer]++;
        return;
    }
    m->forwarded++;
    m->fwd_bytes += len;
    queue_send(m, &peer->sa, peer->salen, d, len);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    kurer__media *m = h->data;
    (void)events;
    if (status < 0)
        return;
    for (int round = 0; round < MEDIA_ROUNDS; round++) {
        for (unsigned i = 0; i < MEDIA_BATCH; i++) {
            m->riov[i].iov_base = m->rbuf[i];
            m->riov[i].iov_len = sizeof(m->rbuf[i]);
            memset(&m->rmsg[i].msg_hdr, 0, sizeof(m->rmsg[i].msg_hdr));
            m->rmsg[i].msg_hdr.msg_name = &m->rsa[i];
            m->rmsg[i].msg_hdr.msg_namelen = sizeof(m->rsa[i]);
            m->rmsg[i].msg_hdr.msg_iov = &m->riov[i];
            m->rmsg[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(m->fd, m->rmsg, MEDIA_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return; /* EAGAIN: drained (or an error the next wake-up sees again) */
        uint64_t now = uv_now(m->r->loop);
        for (unsigned i = 0; i < (unsigned)n; i++)
            on_datagram(m, i, now);
        flush_sends(m);
        if (n < MEDIA_BATCH)
            return;
        uv_update_time(m->r->loop);
    }
}

/* HOST:PORT of the bound socket into m->name, and m->port. */
static void bound_name(kurer__media *m)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[64] = "?";
    memset(&ss, 0, sizeof(ss));
    (void)getsockname(m->fd, (struct sockaddr *)&ss, &sl);
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        m->port = ntohs(a->sin6_port);
        snprintf(m->name, sizeof(m->name), "[%s]:%u", host, (unsigned)m->port);
        return;
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)&ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    m->port = ntohs(a->sin_port);
    snprintf(m->name, sizeof(m->name), "%s:%u", host, (unsigned)m->port);
}

int kurer__media_udp_open(kurer__media *m, const struct sockaddr_storage *addr)
{
    socklen_t alen =
        addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int buf = 4 << 20;
    m->fd = socket(addr->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (m->fd < 0)
        return KURER_EIO;
    /* Room for bursts of many calls between two wake-ups (the kernel caps it at rmem_max). */
    (void)setsockopt(m->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    (void)setsockopt(m->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    if (bind(m->fd, (const struct sockaddr *)addr, alen) != 0)
        return errno == EADDRINUSE ? KURER_EADDRINUSE : KURER_EIO;
    bound_name(m);
    if (uv_poll_init_socket(m->r->loop, &m->poll, m->fd) != 0)
        return KURER_EIO;
    m->poll.data = m;
    m->have_poll = 1;
    uv_poll_start(&m->poll, UV_READABLE, on_readable);
    return 0;
}
