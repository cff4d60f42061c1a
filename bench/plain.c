/* The reference servers' record transport (see plain.h). */
#include "plain.h"

#include <stdlib.h>
#include <string.h>

typedef struct plain_loop {
    uv_check_t check;
    pconn *dirty;
} plain_loop;

static plain_loop *loop_state(uv_loop_t *loop)
{
    return loop->data;
}

static void start_write(pconn *c);

static void on_check(uv_check_t *h)
{
    plain_loop *pl = h->data;
    pconn *c = pl->dirty;
    pl->dirty = NULL;
    while (c != NULL) {
        pconn *next = c->next_dirty;
        c->dirty = 0;
        c->next_dirty = NULL;
        if (!c->closing && !c->writing && c->out_len > 0)
            start_write(c);
        c = next;
    }
}

void plain_loop_init(uv_loop_t *loop)
{
    plain_loop *pl = calloc(1, sizeof(*pl));
    if (pl == NULL)
        abort();
    loop->data = pl;
    uv_check_init(loop, &pl->check);
    pl->check.data = pl;
    uv_check_start(&pl->check, on_check);
    uv_unref((uv_handle_t *)&pl->check);
}

static void on_check_closed(uv_handle_t *h)
{
    free(h->data);
}

void plain_loop_close(uv_loop_t *loop)
{
    plain_loop *pl = loop_state(loop);
    if (pl == NULL)
        return;
    loop->data = NULL;
    uv_close((uv_handle_t *)&pl->check, on_check_closed);
    uv_run(loop, UV_RUN_DEFAULT);
}

static void mark_dirty(pconn *c)
{
    if (c->dirty)
        return;
    plain_loop *pl = loop_state(c->tcp.loop);
    c->dirty = 1;
    c->next_dirty = pl->dirty;
    pl->dirty = c;
}

static void on_written(uv_write_t *w, int status)
{
    pconn *c = w->data;
    c->writing = 0;
    c->fly_len = 0;
    if (status != 0) {
        pconn_close(c);
        return;
    }
    if (c->out_len > 0)
        mark_dirty(c);
}

static void start_write(pconn *c)
{
    /* swap the queue into flight: the next records go into the other buffer */
    uint8_t *t = c->fly;
    size_t tc = c->fly_cap;
    c->fly = c->out;
    c->fly_cap = c->out_cap;
    c->fly_len = c->out_len;
    c->out = t;
    c->out_cap = tc;
    c->out_len = 0;
    uv_buf_t b = uv_buf_init((char *)c->fly, (unsigned)c->fly_len);
    c->wreq.data = c;
    c->writing = 1;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        c->writing = 0;
        pconn_close(c);
    }
}

void pconn_send2(pconn *c, const void *hdr, size_t hn, const void *body, size_t bn)
{
    size_t n = hn + bn;
    if (c->closing || n == 0 || n > 65535)
        return;
    if (c->out_len + 2 + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 16384;
        while (cap < c->out_len + 2 + n)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (p == NULL)
            abort();
        c->out = p;
        c->out_cap = cap;
    }
    uint8_t *p = c->out + c->out_len;
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    if (hn)
        memcpy(p + 2, hdr, hn);
    if (bn)
        memcpy(p + 2 + hn, body, bn);
    c->out_len += 2 + n;
    mark_dirty(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    pconn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(PLAIN_IN_CAP - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    pconn *c = s->data;
    (void)buf;
    if (nread < 0) {
        pconn_close(c);
        return;
    }
    c->in_len += (size_t)nread;
    size_t off = 0;
    while (!c->closing && c->in_len - off >= 2) {
        size_t n = ((size_t)c->in[off] << 8) | c->in[off + 1];
        if (n == 0) {
            pconn_close(c);
            return;
        }
        if (c->in_len - off - 2 < n)
            break;
        c->cbs->on_record(c, c->in + off + 2, n);
        off += 2 + n;
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
}

static int start(pconn *c)
{
    c->in = malloc(PLAIN_IN_CAP);
    if (c->in == NULL)
        return UV_ENOMEM;
    uv_tcp_nodelay(&c->tcp, 1);
    return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int pconn_accept(pconn *c, uv_stream_t *server, const pconn_cbs *cbs, void *data)
{
    memset(c, 0, sizeof(*c));
    c->cbs = cbs;
    c->data = data;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    int err = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (err == 0)
        err = start(c);
    return err;
}

static void on_connected(uv_connect_t *req, int status)
{
    pconn *c = req->data;
    if (status == 0)
        status = start(c);
    c->cbs->on_connect(c, status);
}

int pconn_connect(pconn *c, uv_loop_t *loop, const struct sockaddr *addr, const pconn_cbs *cbs,
                  void *data)
{
    memset(c, 0, sizeof(*c));
    c->cbs = cbs;
    c->data = data;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    return uv_tcp_connect(&c->creq, &c->tcp, addr, on_connected);
}

static void on_closed(uv_handle_t *h)
{
    pconn *c = h->data;
    plain_loop *pl = loop_state(h->loop);
    for (pconn **pp = &pl->dirty; *pp != NULL; pp = &(*pp)->next_dirty)
        if (*pp == c) {
            *pp = c->next_dirty;
            break;
        }
    free(c->in);
    free(c->out);
    free(c->fly);
    c->in = c->out = c->fly = NULL;
    if (c->cbs->on_close != NULL)
        c->cbs->on_close(c);
}

void pconn_close(pconn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void plain_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

void plain_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

uint32_t plain_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint64_t plain_get_u64(const uint8_t *p)
{
    return ((uint64_t)plain_get_u32(p) << 32) | plain_get_u32(p + 4);
}
