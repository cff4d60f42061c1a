/* A command's methods, run through the daemon when one holds the home, else on the home opened
 * here (docs/client.md, "kurer daemon": how commands find it). The daemon's answer is taken
 * back into the form a local run leaves (the result, or the reason and code recorded with
 * refuse()), so the command's formatter prints the same either way. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kurer/crypto.h"
#include "kurer/text.h"
#include "rpc.h"

#define DAEMON_START_WAIT_MS 5000 /* a daemon holding the home but not answering yet */
#define REPLY_SLACK_S        30   /* beyond the request's own timeout */

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- the socket: one request out, lines in */

typedef struct reader {
    int fd;
    char *buf;
    size_t len, cap;
} reader;

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return refuse(KURER_ECLOSED, "the daemon closed the connection");
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The next line (parsed) by deadline: 0 with *out, KURER_ETIMEOUT, or KURER_ECLOSED. */
static int read_line(reader *r, int64_t deadline, json_t **out)
{
    for (;;) {
        char *nl = r->len > 0 ? memchr(r->buf, '\n', r->len) : NULL;
        if (nl != NULL) {
            size_t n = (size_t)(nl - r->buf);
            *out = json_loadb(r->buf, n, JSON_REJECT_DUPLICATES, NULL);
            memmove(r->buf, nl + 1, r->len - n - 1);
            kurer_memzero(r->buf + r->len - n - 1, n + 1); /* message text */
            r->len -= n + 1;
            if (*out == NULL)
                return refuse(KURER_EMALFORMED, "the daemon sent a line that is not JSON");
            return 0;
        }
        if (r->len >= RPC_REPLY_MAX)
            return refuse(KURER_ELIMIT, "the daemon sent a line longer than %d bytes",
                          RPC_REPLY_MAX);
        if (r->cap - r->len < 4096) {
            size_t cap = r->cap == 0 ? 65536 : r->cap * 2;
            cap = cap > RPC_REPLY_MAX + 4096 ? RPC_REPLY_MAX + 4096 : cap;
            char *b = malloc(cap); /* by hand: realloc would leave a copy unwiped */
            if (b == NULL)
                return refuse(KURER_ENOMEM, "out of memory");
            if (r->len > 0)
                memcpy(b, r->buf, r->len);
            rpc_free_wiped(r->buf, r->cap);
            r->buf = b;
            r->cap = cap;
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return refuse(KURER_ETIMEOUT, "the daemon did not answer in time");
        struct pollfd p = {r->fd, POLLIN, 0};
        int pr = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno != EINTR)
            return refuse(KURER_EIO, "poll: %s", strerror(errno));
        if (pr <= 0)
            continue;
        ssize_t got = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return refuse(KURER_ECLOSED, "the daemon stopped before it answered (kurer history "
                                         "shows what became of a message)");
        r->len += (size_t)got;
    }
}

/* The daemon's error taken back to what the method would have left here. */
static int error_back(json_t *err, json_t **data)
{
    json_int_t code = json_integer_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    json_t *d = json_object_get(err, "data");
    const char *name = json_string_value(json_object_get(d, "name"));
    if (msg == NULL)
        msg = "the daemon refused the request";
    *data = d != NULL ? json_incref(d) : NULL;
    if (code == RPC_INVALID_PARAMS)
        return usage_error("%s", msg);
    if (code == RPC_QUEUED) {
        refuse(name != NULL ? rpc_err_code(name) : KURER_ETIMEOUT, "%s", msg);
        return RC_QUEUED;
    }
    if (code == RPC_REFUSED && name != NULL)
        return refuse(rpc_err_code(name), "%s", msg);
    return refuse(KURER_EIO, "the daemon: %s (%lld)", msg, (long long)code);
}

static reader g_reader = {-1, NULL, 0, 0};

int remote_call(int fd, const char *method, json_t *params, int wait_ms, rpc_note_fn on_note,
                void *ud, json_t **result)
{
    static json_int_t next_id;
    json_int_t id = ++next_id;
    char *line = NULL;
    size_t len = 0;
    *result = NULL;
    json_t *req = json_pack("{s:s,s:I,s:s,s:o}", "jsonrpc", "2.0", "id", id, "method", method,
                            "params", params);
    if (req == NULL || rpc_dump_line(req, &line, &len) != 0) {
        json_decref(req);
        return refuse(KURER_ENOMEM, "out of memory");
    }
    json_decref(req);
    int rc = send_all(fd, line, len);
    rpc_free_wiped(line, len);
    if (g_reader.fd != fd) {
        rpc_free_wiped(g_reader.buf, g_reader.cap);
        g_reader = (reader){fd, NULL, 0, 0};
    }
    int64_t deadline = mono_ms() + wait_ms;
    while (rc == 0) {
        json_t *msg = NULL;
        if ((rc = read_line(&g_reader, deadline, &msg)) != 0)
            break;
        json_t *rid = json_object_get(msg, "id");
        if (rid == NULL) { /* a notification */
            const char *m = json_string_value(json_object_get(msg, "method"));
            if (m != NULL && on_note != NULL)
                on_note(ud, m, json_object_get(msg, "params"));
            json_decref(msg);
            continue;
        }
        if (json_integer_value(rid) != id) {
            json_decref(msg);
            continue;
        }
        json_t *res = json_object_get(msg, "result"), *err = json_object_get(msg, "error");
        if (res != NULL)
            *result = json_incref(res);
        else
            rc = err != NULL ? error_back(err, result)
                             : refuse(KURER_EMALFORMED, "the daemon's answer has no result");
        json_decref(msg);
        return rc;
    }
    return rc;
}

int remote_wait(int fd, int wait_ms, rpc_note_fn on_note, void *ud)
{
    int64_t deadline = mono_ms() + wait_ms;
    if (g_reader.fd != fd) {
        rpc_free_wiped(g_reader.buf, g_reader.cap);
        g_reader = (reader){fd, NULL, 0, 0};
    }
    for (;;) {
        json_t *msg = NULL;
        int rc = read_line(&g_reader, deadline, &msg);
        if (rc == KURER_ETIMEOUT) {
            clear_reason();
            return 0;
        }
        if (rc != 0)
            return rc;
        const char *m = json_string_value(json_object_get(msg, "method"));
        if (m != NULL && json_object_get(msg, "id") == NULL && on_note != NULL)
            on_note(ud, m, json_object_get(msg, "params"));
        json_decref(msg);
    }
}

/* ---- a command's target: the daemon, or the home itself */

int cli_open(const char *home, cli_target *t)
{
    memset(t, 0, sizeof(*t));
    t->fd = -1;
    int64_t until = mono_ms() + DAEMON_START_WAIT_MS;
    for (;;) {
        if (remote_connect(home, &t->fd))
            return 0;
        long pid = 0;
        char who[96];
        if (kurer_home_holder(home, &pid, who, sizeof(who)) != 1 || strcmp(who, "daemon") != 0)
            break;
        if (mono_ms() >= until)
            return refuse(KURER_ELOCKED,
                          "%s is held by `kurer daemon` (pid %ld) but its socket does not answer "
                          "(a daemon started with --socket PATH needs KURER_SOCKET=PATH here)",
                          home, pid);
        struct timespec d = {0, 100 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    return open_home(home, &t->k);
}

/* A method run here tells the command directly what the daemon would send as a
 * notification. */
static void local_notify(rpc_ctx *c, const char *method, json_t *params)
{
    cli_target *t = c->notify_ud;
    if (t->on_note != NULL)
        t->on_note(t->ud, method, params);
    json_decref(params);
}

int cli_run(cli_target *t, const char *method, json_t *params, json_t **result)
{
    *result = NULL;
    if (t->fd >= 0) {
        json_int_t to = json_integer_value(json_object_get(params, "timeout"));
        int wait_s = (to > 0 ? (int)to : NET_TIMEOUT) + REPLY_SLACK_S;
        return remote_call(t->fd, method, params, wait_s * 1000, t->on_note, t->ud, result);
    }
    const rpc_method *m = rpc_find(method);
    rpc_ctx c = {t->k, 1, NULL, NULL, local_notify, t, 0};
    int rc = m != NULL && m->fn != NULL ? m->fn(&c, params, result)
                                        : refuse(KURER_EINVAL, "no method %s here", method);
    json_decref(params);
    if (rc != 0) {
        json_decref(*result);
        *result = c.data;
    } else {
        json_decref(c.data);
    }
    return rc;
}

void cli_close(cli_target *t)
{
    if (t->fd >= 0) {
        close(t->fd);
        if (g_reader.fd == t->fd) {
            rpc_free_wiped(g_reader.buf, g_reader.cap);
            g_reader = (reader){-1, NULL, 0, 0};
        }
        t->fd = -1;
    }
    if (t->k != NULL) {
        kurer_disconnect(t->k);
        kurer_close(t->k);
        t->k = NULL;
    }
}

void key_change_note(void *ud, const char *method, json_t *params)
{
    kurer_key_change c;
    (void)ud;
    if (strcmp(method, "key_change") == 0 && rpc_key_change_from(params, &c) == 0)
        show_key_change(&c, "");
    clear_reason();
}

int key_changes_said(cli_target *t)
{
    if (t->k != NULL) {
        kurer_events ev = {.on_key_change = on_key_change};
        kurer_set_events(t->k, &ev);
        return 0;
    }
    json_t *res = NULL;
    t->on_note = key_change_note;
    int rc = cli_run(t, "subscribe", json_pack("{s:[s]}", "events", "key_change"), &res);
    json_decref(res);
    return rc;
}

int cli_call(const char *home, const char *method, json_t *params, json_t **result)
{
    cli_target t;
    *result = NULL;
    int rc = cli_open(home, &t);
    if (rc != 0) {
        json_decref(params);
        return rc;
    }
    rc = cli_run(&t, method, params, result);
    cli_close(&t);
    return rc;
}
