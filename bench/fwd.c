/* bench_fwd: the reference servers of forward_limit and durable_limit (docs: bench/README.md).
 *
 *   bench_fwd --listen HOST:PORT [--durable DB | --pg CONNINFO]
 *
 * The plain protocol of plain.h, no crypto, no validation beyond the framing. Devices say who
 * they are ('H'); a send ('S') to a device is forwarded to it ('D') and answered ('A').
 * With --durable, every envelope is first inserted into an SQLite table (SQLCipher, the only
 * SQLite we link, used without a key; WAL, synchronous=FULL) by one writer thread that commits
 * everything queued since its last commit in one transaction (group commit); the answer and the
 * forward go out after that commit, and the row is deleted (in a later transaction) once the
 * recipient acks it. Without --durable the forward and the answer go out at once.
 * With --pg, the same writer thread inserts into the relay's PostgreSQL schema instead
 * (fwd_pg.c: pg_limit).
 * Prints "listening HOST:PORT"; runs until killed. */
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <uv.h>

#include "fwd.h"
#include "kurer/net.h"
#include "plain.h"

typedef struct client {
    pconn pc;
    uint32_t id;
    int hello;
} client;

typedef struct oplist {
    op *v;
    size_t n, cap;
} oplist;

static uv_loop_t *loop;
static client **byid;
static size_t byid_cap;
static uint64_t next_seq = 1;
static int durable, use_pg;
static sqlite3 *db;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static oplist queued, done;
static uv_async_t done_async;

static void oplist_push(oplist *l, const op *o)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->v = realloc(l->v, l->cap * sizeof(op));
        if (l->v == NULL)
            abort();
    }
    l->v[l->n++] = *o;
}

static void deliver(uint64_t seq, uint32_t to, uint32_t from, const uint8_t *content, size_t len)
{
    uint8_t hdr[13];
    client *r = to < byid_cap ? byid[to] : NULL;
    if (r == NULL)
        return; /* offline: a real relay would keep it; the benchmark never sends to them */
    hdr[0] = 'D';
    plain_put_u64(hdr + 1, seq);
    plain_put_u32(hdr + 9, from);
    pconn_send2(&r->pc, hdr, sizeof(hdr), content, len);
}

static void answer(client *c, uint64_t req)
{
    uint8_t a[9];
    a[0] = 'A';
    plain_put_u64(a + 1, req);
    pconn_send2(&c->pc, a, sizeof(a), NULL, 0);
}

static void on_done(uv_async_t *h)
{
    (void)h;
    oplist l;
    pthread_mutex_lock(&mu);
    l = done;
    memset(&done, 0, sizeof(done));
    pthread_mutex_unlock(&mu);
    for (size_t i = 0; i < l.n; i++) {
        op *o = &l.v[i];
        if (!o->del) {
            if (o->sender != NULL && !o->sender->pc.closing)
                answer(o->sender, o->req);
            deliver(o->seq, o->to, o->from, o->content, o->len);
        }
        free(o->content);
    }
    free(l.v);
}

static sqlite3_stmt *ins, *del;

static void sqlite_commit(op *v, size_t n)
{
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
        op *o = &v[i];
        sqlite3_stmt *st = o->del ? del : ins;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)o->seq);
        if (!o->del) {
            sqlite3_bind_int64(st, 2, o->to);
            sqlite3_bind_blob(st, 3, o->content, (int)o->len, SQLITE_STATIC);
        }
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(st);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "bench_fwd: commit: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
}

static void *writer(void *arg)
{
    (void)arg;
    if (!use_pg &&
        (sqlite3_prepare_v2(db, "INSERT INTO mbox(seq, rcpt, env) VALUES (?, ?, ?)", -1, &ins,
                            NULL) != SQLITE_OK ||
         sqlite3_prepare_v2(db, "DELETE FROM mbox WHERE seq = ?", -1, &del, NULL) != SQLITE_OK)) {
        fprintf(stderr, "bench_fwd: prepare: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    for (;;) {
        oplist l;
        pthread_mutex_lock(&mu);
        while (queued.n == 0)
            pthread_cond_wait(&cv, &mu);
        l = queued;
        memset(&queued, 0, sizeof(queued));
        pthread_mutex_unlock(&mu);
        if (use_pg)
            fwd_pg_commit(l.v, l.n);
        else
            sqlite_commit(l.v, l.n);
        pthread_mutex_lock(&mu);
        for (size_t i = 0; i < l.n; i++)
            oplist_push(&done, &l.v[i]);
        pthread_mutex_unlock(&mu);
        free(l.v);
        uv_async_send(&done_async);
    }
    return NULL;
}

static void submit(const op *o)
{
    pthread_mutex_lock(&mu);
    oplist_push(&queued, o);
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static void on_record(pconn *pc, const uint8_t *p, size_t n)
{
    client *c = pc->data;
    switch (p[0]) {
    case 'H':
        if (n != 5)
            break;
        c->id = plain_get_u32(p + 1);
        if (c->id >= byid_cap) {
            size_t cap = byid_cap ? byid_cap : 1024;
            while (cap <= c->id)
                cap *= 2;
            byid = realloc(byid, cap * sizeof(*byid));
            if (byid == NULL)
                abort();
            memset(byid + byid_cap, 0, (cap - byid_cap) * sizeof(*byid));
            byid_cap = cap;
        }
        byid[c->id] = c;
        c->hello = 1;
        pconn_send2(pc, "W", 1, NULL, 0);
        return;
    case 'S': {
        if (n < 14 || !c->hello)
            break;
        op o;
        memset(&o, 0, sizeof(o));
        o.req = plain_get_u64(p + 1);
        o.to = plain_get_u32(p + 9);
        o.from = c->id;
        o.seq = next_seq++;
        if (!durable) {
            answer(c, o.req);
            deliver(o.seq, o.to, o.from, p + 13, n - 13);
            return;
        }
        o.sender = c;
        o.len = n - 13;
        o.content = malloc(o.len);
        if (o.content == NULL)
            abort();
        memcpy(o.content, p + 13, o.len);
        submit(&o);
        return;
    }
    case 'K': {
        size_t k = (n - 1) / 8;
        if (durable) {
            /* one lock for the whole ack */
            pthread_mutex_lock(&mu);
            for (size_t i = 0; i < k; i++) {
                op o;
                memset(&o, 0, sizeof(o));
                o.del = 1;
                o.to = c->id;
                o.seq = plain_get_u64(p + 1 + 8 * i);
                oplist_push(&queued, &o);
            }
            pthread_cond_signal(&cv);
            pthread_mutex_unlock(&mu);
        }
        uint8_t a[5];
        a[0] = 'O';
        plain_put_u32(a + 1, (uint32_t)k);
        pconn_send2(pc, a, sizeof(a), NULL, 0);
        return;
    }
    default:
        break;
    }
    pconn_close(pc);
}

static void on_close(pconn *pc)
{
    client *c = pc->data;
    if (c->hello && c->id < byid_cap && byid[c->id] == c)
        byid[c->id] = NULL;
    /* Answers still in the writer's queue may point here: the memory is kept (the benchmark
     * ends by killing this process). */
}

static const pconn_cbs cbs = {NULL, on_record, on_close};

static void on_connection(uv_stream_t *server, int status)
{
    if (status != 0)
        return;
    client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    if (pconn_accept(&c->pc, server, &cbs, c) != 0)
        pconn_close(&c->pc);
}

int main(int argc, char **argv)
{
    const char *listen = NULL, *dbpath = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (strcmp(argv[i], "--durable") == 0 && i + 1 < argc)
            durable = 1, dbpath = argv[++i];
        else if (strcmp(argv[i], "--pg") == 0 && i + 1 < argc)
            durable = use_pg = 1, dbpath = argv[++i];
        else {
            fprintf(stderr, "usage: bench_fwd --listen HOST:PORT [--durable DB | --pg CONNINFO]\n");
            return 2;
        }
    }
    if (listen == NULL) {
        fprintf(stderr, "usage: bench_fwd --listen HOST:PORT [--durable DB | --pg CONNINFO]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    plain_loop_init(loop);
    if (use_pg)
        fwd_pg_open(dbpath);
    if (durable && !use_pg) {
        if (sqlite3_open(dbpath, &db) != SQLITE_OK ||
            sqlite3_exec(db,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                         "CREATE TABLE IF NOT EXISTS mbox(seq INTEGER PRIMARY KEY, "
                         "rcpt INTEGER NOT NULL, env BLOB NOT NULL);",
                         NULL, NULL, NULL) != SQLITE_OK) {
            fprintf(stderr, "bench_fwd: %s: %s\n", dbpath, sqlite3_errmsg(db));
            return 1;
        }
    }
    if (durable) {
        uv_async_init(loop, &done_async, on_done);
        pthread_t t;
        if (pthread_create(&t, NULL, writer, NULL) != 0)
            return 1;
        pthread_detach(t);
    }
    struct sockaddr_storage addr;
    static uv_tcp_t server;
    if (kurer_net_parse_addr(listen, &addr) != 0) {
        fprintf(stderr, "bench_fwd: bad address %s\n", listen);
        return 2;
    }
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 4096, on_connection) != 0) {
        fprintf(stderr, "bench_fwd: cannot listen on %s\n", listen);
        return 1;
    }
    struct sockaddr_in bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &blen);
    printf("listening 127.0.0.1:%u\n", (unsigned)ntohs(bound.sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
