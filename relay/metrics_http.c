/* The metrics endpoint's HTTP: one bounded request, GET /metrics only, a drained close. */
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

/* One scrape. The request is read (at most METRICS_REQ_MAX bytes, within METRICS_MS) before
 * the answer; only GET /metrics gets the page. After the answer the relay shuts its side down
 * and reads (discarding) until the peer closes or METRICS_MS pass, so that unread input never
 * turns the close into a reset that would cut the answer short. */
#define METRICS_REQ_MAX 4096

#define METRICS_MS 2000

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

void kurer__m_close(mreq *m)
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
    kurer__m_close(t->data);
}

static void m_shut(uv_shutdown_t *sd, int status)
{
    mreq *m = sd->data;
    if (status != 0)
        kurer__m_close(m); /* otherwise the peer's EOF (or the timer) closes */
}

static void m_written(uv_write_t *w, int status)
{
    mreq *m = w->data;
    if (status != 0 || m->closing) {
        kurer__m_close(m);
        return;
    }
    uv_timer_start(&m->timer, m_timeout, METRICS_MS, 0);
    if (uv_shutdown(&m->sd, (uv_stream_t *)&m->tcp, m_shut) != 0)
        kurer__m_close(m);
}

static void m_answer(mreq *m, const char *status, const char *body, size_t blen)
{
    m->answered = 1;
    m->body = malloc(blen + 160);
    if (m->body == NULL) {
        kurer__m_close(m);
        return;
    }
    int hl = snprintf(m->body, 160,
                      "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, blen);
    memcpy(m->body + hl, body, blen);
    uv_buf_t b = uv_buf_init(m->body, (unsigned)((size_t)hl + blen));
    if (uv_write(&m->w, (uv_stream_t *)&m->tcp, &b, 1, m_written) != 0)
        kurer__m_close(m);
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
        char *body = kurer__metrics_text(m->r);
        if (body == NULL) {
            kurer__m_close(m);
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
        kurer__m_close(m);
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

void kurer__on_metrics(uv_stream_t *server, int status)
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
        kurer__m_close(m);
        return;
    }
    uv_timer_start(&m->timer, m_timeout, METRICS_MS, 0);
}
