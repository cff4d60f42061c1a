/* kurer daemon: the clients of its socket, on the main thread (poll). Newline-delimited
 * JSON-RPC 2.0, one request per line, at most RPC_LINE_MAX bytes and RPC_DEPTH_MAX deep,
 * parsed by jansson; every malformed request gets its JSON-RPC error, a line too long (or one
 * left unfinished for DAEMON_LINE_MS) its error and the end of the connection. A client is
 * never waited for: sockets are non-blocking, a connection with DAEMON_INFLIGHT requests
 * running is not read until one ends, and one that lets DAEMON_OUT_MAX bytes of output pile
 * up is closed. Peers of another uid are refused (SO_PEERCRED). */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "kurer/crypto.h"
#include "kurer/log.h"

#define IN_FIRST 4096

struct dconn {
    int fd;
    uint64_t id;
    char *in; /* a request line being read */
    size_t in_len, in_cap, scanned;
    char *out; /* what is queued for the client */
    size_t out_len, out_off, out_cap;
    int inflight;
    unsigned subs;
    int64_t partial_since; /* ms; 0 while no line is begun */
    int closing;           /* no more reading: closed once the output is out */
    int64_t closing_since; /* ms: a client that does not take its last output is closed */
};

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static dconn *conn_by_id(daemon_srv *s, uint64_t id)
{
    for (int i = 0; i < DAEMON_CLIENTS; i++)
        if (s->conns[i] != NULL && s->conns[i]->id == id)
            return s->conns[i];
    return NULL;
}

/* The connection's subscription becomes want; the library's events follow the counts of
 * subscribers to messages and to key changes (daemon_events). */
static void set_subs(daemon_srv *s, dconn *c, unsigned want)
{
    int before = (s->msg_subs > 0) | (s->key_subs > 0) << 1;
    s->msg_subs += ((want & SUB_MESSAGE) != 0) - ((c->subs & SUB_MESSAGE) != 0);
    s->key_subs += ((want & SUB_KEY_CHANGE) != 0) - ((c->subs & SUB_KEY_CHANGE) != 0);
    c->subs = want;
    if (((s->msg_subs > 0) | (s->key_subs > 0) << 1) != before)
        daemon_events(s); /* a first subscriber is given what nobody was shown yet */
}

static void conn_close(daemon_srv *s, int i)
{
    dconn *c = s->conns[i];
    set_subs(s, c, 0);
    close(c->fd);
    rpc_free_wiped(c->in, c->in_cap); /* both may hold message text */
    rpc_free_wiped(c->out, c->out_cap);
    free(c);
    s->conns[i] = NULL;
}

/* Queues n bytes for the client; a client that does not read is dropped (returns -1). */
static int conn_queue(daemon_srv *s, dconn *c, const char *p, size_t n)
{
    if (c->out_len - c->out_off + n > DAEMON_OUT_MAX) {
        s->dropped_slow++;
        kurer_log(KURER_LOG_WARN, "daemon", "client_dropped",
                  (kurer_log_field[]){KURER_LOG_STR("reason", "output not read")}, 1);
        c->closing = 1;
        c->out_off = c->out_len; /* nothing more for it */
        return -1;
    }
    size_t keep = c->out_len - c->out_off;
    if (keep + n > c->out_cap) { /* grown by hand: realloc would leave a copy unwiped */
        size_t cap = c->out_cap * 2 > keep + n ? c->out_cap * 2 : keep + n;
        char *o = malloc(cap);
        if (o == NULL) {
            c->closing = 1;
            return -1;
        }
        if (keep > 0)
            memcpy(o, c->out + c->out_off, keep);
        rpc_free_wiped(c->out, c->out_cap);
        c->out = o;
        c->out_cap = cap;
        c->out_off = 0;
        c->out_len = keep;
    } else if (c->out_len + n > c->out_cap) {
        memmove(c->out, c->out + c->out_off, keep);
        kurer_memzero(c->out + keep, c->out_len - keep);
        c->out_off = 0;
        c->out_len = keep;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static void conn_error(daemon_srv *s, dconn *c, json_t *id, int code, const char *msg)
{
    char *line = NULL;
    size_t len = 0;
    s->bad_requests++;
    if (rpc_error_line(id, code, msg, NULL, &line, &len) == 0)
        (void)conn_queue(s, c, line, len);
    rpc_free_wiped(line, len);
}

/* ---- subscribe and unsubscribe: the connection's own state */

static const struct {
    const char *name;
    unsigned bit;
} kinds[] = {{"message", SUB_MESSAGE},       {"refused", SUB_REFUSED},
             {"state", SUB_STATE},           {"queue_empty", SUB_QUEUE_EMPTY},
             {"key_change", SUB_KEY_CHANGE}, {"receipt", SUB_RECEIPT}};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* subscribe {events: [kinds]} (all when absent): {subscription, events, me}. */
static int subscribe(daemon_srv *s, dconn *c, json_t *params, json_t **result)
{
    static const char *const names[] = {"events", NULL};
    json_t *ev = json_object_get(params, "events");
    unsigned want = ev == NULL ? SUB_ALL : 0;
    int rc = rpc_only(params, names);
    if (rc != 0)
        return rc;
    if (ev != NULL && (!json_is_array(ev) || json_array_size(ev) == 0))
        return usage_error("parameter 'events' must be a list of event names");
    size_t i;
    json_t *v;
    json_array_foreach(ev, i, v)
    {
        size_t k = 0;
        while (k < NKINDS && (!json_is_string(v) || strcmp(json_string_value(v), kinds[k].name)))
            k++;
        if (k == NKINDS)
            return usage_error(
                "unknown event (message, refused, state, queue_empty, key_change, receipt)");
        want |= kinds[k].bit;
    }
    json_t *list = json_array();
    for (size_t k = 0; k < NKINDS; k++)
        if (want & kinds[k].bit)
            json_array_append_new(list, json_string(kinds[k].name));
    *result = json_pack("{s:I,s:o,s:s}", "subscription", (json_int_t)c->id, "events", list, "me",
                        kurer_own_user(s->k));
    if (*result == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    set_subs(s, c, want);
    return 0;
}

static int unsubscribe(daemon_srv *s, dconn *c, json_t *params, json_t **result)
{
    static const char *const names[] = {NULL};
    int rc = rpc_only(params, names);
    if (rc != 0)
        return rc;
    set_subs(s, c, 0);
    *result = json_object();
    return 0;
}

const rpc_method rpc_conn_methods[] = {
    {"subscribe", NULL},
    {"unsubscribe", NULL},
    {NULL, NULL},
};

static void conn_method(daemon_srv *s, dconn *c, const rpc_method *m, json_t *params, json_t *id)
{
    json_t *result = NULL;
    clear_reason();
    int rc = strcmp(m->name, "subscribe") == 0 ? subscribe(s, c, params, &result)
                                               : unsubscribe(s, c, params, &result);
    if (id == NULL) {
        json_decref(result);
        return;
    }
    char *line = NULL;
    size_t len = 0;
    if (rc == 0) {
        json_t *r = json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result", result);
        if (r != NULL && rpc_dump_line(r, &line, &len) == 0)
            (void)conn_queue(s, c, line, len);
        json_decref(r);
    } else {
        int code = rc == RC_USAGE ? RPC_INVALID_PARAMS : RPC_REFUSED;
        if (rpc_error_line(id, code, reason(), json_pack("{s:s}", "name", kurer_err_name(rc)),
                           &line, &len) == 0)
            (void)conn_queue(s, c, line, len);
    }
    rpc_free_wiped(line, len);
}

/* ---- one request line */

static void handle_line(daemon_srv *s, dconn *c, const char *line, size_t n)
{
    rpc_request r;
    const char *msg = NULL;
    int code = rpc_parse_request(line, n, &r, &msg);
    if (code != 0) {
        /* A well-formed notification is never answered, even when it names no method. */
        int notification = (code == RPC_METHOD_NOT_FOUND || code == RPC_INVALID_PARAMS) &&
                           json_object_get(r.req, "id") == NULL;
        if (notification)
            s->bad_requests++;
        else
            conn_error(s, c, r.id, code, msg);
        json_decref(r.req);
        return;
    }
    json_t *params = r.params != NULL ? json_incref(r.params) : json_object();
    if (r.m->fn == NULL) {
        conn_method(s, c, r.m, params, r.id);
        json_decref(params);
        json_decref(r.req);
        return;
    }
    djob *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        conn_error(s, c, r.id, RPC_INTERNAL_ERROR, "out of memory");
        json_decref(params);
        json_decref(r.req);
        return;
    }
    j->conn = c->id;
    j->m = r.m;
    j->params = params;
    j->id = r.id != NULL ? json_incref(r.id) : NULL;
    json_decref(r.req);
    c->inflight++;
    daemon_submit(s, j);
}

/* The complete lines in c->in, each handled; what is left is the start of the next one. */
static void take_lines(daemon_srv *s, dconn *c)
{
    size_t start = 0, from = c->scanned;
    int scanned_all = 0;
    for (;;) {
        if (c->closing || c->inflight >= DAEMON_INFLIGHT)
            break;
        char *nl = memchr(c->in + from, '\n', c->in_len - from);
        if (nl == NULL) {
            scanned_all = 1;
            break;
        }
        size_t n = (size_t)(nl - (c->in + start));
        if (n > 0 && c->in[start + n - 1] == '\r')
            n--;
        if (n > 0)
            handle_line(s, c, c->in + start, n);
        start = from = (size_t)(nl - c->in) + 1;
    }
    memmove(c->in, c->in + start, c->in_len - start);
    kurer_memzero(c->in + c->in_len - start, start); /* requests may hold message text */
    c->in_len -= start;
    /* What is known to hold no newline: never scanned twice (a line sent a byte at a time). */
    c->scanned = scanned_all ? c->in_len : from - start;
    if (c->in_len == 0)
        c->partial_since = 0;
    else if (start > 0 || c->partial_since == 0)
        c->partial_since = now_ms(); /* a new line begun */
    if (scanned_all && c->in_len > RPC_LINE_MAX) {
        conn_error(s, c, NULL, RPC_INVALID_REQUEST, "request longer than 1 MiB: connection closed");
        c->closing = 1;
    }
}

/* Reads what is there; 0, or -1 when the client has gone. */
static int conn_read(daemon_srv *s, dconn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 1024) {
            if (c->in_cap >= RPC_LINE_MAX + 4096) {
                take_lines(s, c); /* a line too long is refused there; else it waits */
                return 0;
            }
            size_t cap = c->in_cap == 0 ? IN_FIRST : c->in_cap * 2;
            if (cap > RPC_LINE_MAX + 4096)
                cap = RPC_LINE_MAX + 4096;
            char *in = malloc(cap);
            if (in == NULL)
                return -1;
            if (c->in_len > 0)
                memcpy(in, c->in, c->in_len);
            rpc_free_wiped(c->in, c->in_cap);
            c->in = in;
            c->in_cap = cap;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r == 0)
            return -1; /* gone, perhaps in the middle of a line: that part is dropped */
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        c->in_len += (size_t)r;
        take_lines(s, c);
        if (c->closing || c->inflight >= DAEMON_INFLIGHT)
            return 0;
    }
}

static int conn_write(dconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        c->out_off += (size_t)w;
    }
    kurer_memzero(c->out, c->out_len);
    c->out_off = c->out_len = 0;
    return 0;
}

/* 0 after a connection was taken (served, or closed: another uid, or no room), -1 when none
 * is waiting. */
static int accept_one(daemon_srv *s)
{
    int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return -1;
    if (!daemon_peer_ok(fd)) {
        s->refused_peers++;
        kurer_log(KURER_LOG_WARN, "daemon", "peer_refused",
                  (kurer_log_field[]){KURER_LOG_STR("reason", "another uid")}, 1);
        close(fd);
        return 0;
    }
    int i = 0;
    while (i < DAEMON_CLIENTS && s->conns[i] != NULL)
        i++;
    dconn *c = i < DAEMON_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
    if (c == NULL) {
        s->refused_full++;
        close(fd);
        return 0;
    }
    c->fd = fd;
    c->id = ++s->next_id;
    s->conns[i] = c;
    s->accepted++;
    return 0;
}

/* The lines the workers and the library thread queued. */
static void take_posted(daemon_srv *s)
{
    char b[256];
    while (read(s->wake[0], b, sizeof(b)) > 0)
        ;
    pthread_mutex_lock(&s->mu);
    dline *l = s->l_head;
    s->l_head = s->l_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (l != NULL) {
        dline *next = l->next;
        if (l->conn != 0) {
            dconn *c = conn_by_id(s, l->conn);
            if (c != NULL && l->response)
                c->inflight--;
            if (c != NULL && l->text != NULL && !c->closing)
                (void)conn_queue(s, c, l->text, l->len);
        } else {
            for (int i = 0; i < DAEMON_CLIENTS; i++)
                if (s->conns[i] != NULL && (s->conns[i]->subs & l->kind) && !s->conns[i]->closing)
                    (void)conn_queue(s, s->conns[i], l->text, l->len);
        }
        rpc_free_wiped(l->text, l->len);
        free(l);
        l = next;
    }
}

/* One connection after poll: 1 if it is to be closed. */
static int conn_service(daemon_srv *s, dconn *c, short revents, int64_t now)
{
    if ((revents & (POLLERR | POLLNVAL)) || ((revents & POLLOUT) && conn_write(c) != 0))
        return 1;
    if ((revents & (POLLIN | POLLHUP)) && !c->closing && conn_read(s, c) != 0) {
        c->closing = 1; /* gone, or only its sending half: what runs may still be answered */
        kurer_memzero(c->in, c->in_len);
        c->in_len = c->scanned = 0;
    }
    if (!c->closing && c->inflight < DAEMON_INFLIGHT && c->in_len > 0)
        take_lines(s, c); /* lines read while it was at its limit */
    if (c->partial_since != 0 && now - c->partial_since > DAEMON_LINE_MS && !c->closing) {
        conn_error(s, c, NULL, RPC_INVALID_REQUEST, "request line not finished in time");
        c->closing = 1;
    }
    if (c->out_off < c->out_len && conn_write(c) != 0)
        return 1;
    if (c->closing && c->closing_since == 0)
        c->closing_since = now;
    if (c->closing && now - c->closing_since > DAEMON_LINE_MS)
        return 1;
    return c->closing && c->out_off >= c->out_len && (c->inflight == 0 || (revents & POLLHUP));
}

int daemon_serve(daemon_srv *s, volatile sig_atomic_t *stop)
{
    struct pollfd p[DAEMON_CLIENTS + 2];
    int idx[DAEMON_CLIENTS + 2];
    while (!*stop) {
        int n = 0;
        p[n++] = (struct pollfd){s->wake[0], POLLIN, 0};
        p[n++] = (struct pollfd){s->lfd, POLLIN, 0};
        for (int i = 0; i < DAEMON_CLIENTS; i++) {
            dconn *c = s->conns[i];
            if (c == NULL)
                continue;
            short ev = 0;
            if (!c->closing && c->inflight < DAEMON_INFLIGHT)
                ev |= POLLIN;
            if (c->out_off < c->out_len)
                ev |= POLLOUT;
            idx[n] = i;
            p[n++] = (struct pollfd){c->fd, ev, 0};
        }
        if (poll(p, (nfds_t)n, 1000) < 0 && errno != EINTR)
            return refuse(KURER_EIO, "poll: %s", strerror(errno));
        if (p[0].revents & POLLIN)
            take_posted(s);
        int64_t now = now_ms();
        for (int k = 2; k < n; k++) {
            dconn *c = s->conns[idx[k]];
            if (c != NULL && conn_service(s, c, p[k].revents, now))
                conn_close(s, idx[k]);
        }
        for (int k = 0; (p[1].revents & POLLIN) && k < 64 && accept_one(s) == 0; k++)
            ; /* the backlog, a bounded number at a time */
    }
    return 0;
}

void daemon_drain(daemon_srv *s)
{
    int64_t until = now_ms() + DAEMON_DRAIN_MS;
    take_posted(s); /* the answers of the methods that ended with the stop */
    for (;;) {
        struct pollfd p[DAEMON_CLIENTS];
        int idx[DAEMON_CLIENTS], n = 0;
        for (int i = 0; i < DAEMON_CLIENTS; i++)
            if (s->conns[i] != NULL && s->conns[i]->out_off < s->conns[i]->out_len) {
                idx[n] = i;
                p[n++] = (struct pollfd){s->conns[i]->fd, POLLOUT, 0};
            }
        int64_t left = until - now_ms();
        if (n == 0 || left <= 0 || poll(p, (nfds_t)n, (int)left) <= 0)
            break;
        for (int k = 0; k < n; k++)
            if ((p[k].revents & (POLLERR | POLLHUP | POLLNVAL)) ||
                ((p[k].revents & POLLOUT) && conn_write(s->conns[idx[k]]) != 0))
                conn_close(s, idx[k]);
    }
    for (int i = 0; i < DAEMON_CLIENTS; i++)
        if (s->conns[i] != NULL)
            conn_close(s, i);
}
