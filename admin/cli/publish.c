/* kurer-admin publish: a revocation list pushed to a relay over Noise NK. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/frame.h"
#include "kurer/net.h"
#include "kurer/util.h"

const char help_publish[] =
    "usage: kurer-admin publish --crl FILE --relay HOST:PORT --relay-key KEY [--json]\n"
    "\n"
    "Pushes a signed revocation list to a relay over Noise NK (no device identity needed:\n"
    "the list authenticates itself), whole up to 4 KiB, else in chunks of 4 KiB; the relay\n"
    "must receive all of it within its handshake_timeout_ms (10 s by default), else copy the\n"
    "file to the relay and load it with --crl and SIGHUP.\n"
    "KEY is the relay's public key in hex (64 characters, as printed by 'kurer-relay init')\n"
    "or the path of its relay.pub file. The relay checks the list against its pinned root,\n"
    "stores it and disconnects the devices it revokes.\n"
    "Exit 0 when the relay has stored the list; 1 with the relay's reason otherwise (for\n"
    "example 'older than what is already known' when it holds this version or a newer one).\n";

#define PUBLISH_TIMEOUT_MS 15000

/* The list goes up in chunks of KURER_REVOCATION_UPLOAD_CHUNK bytes (an NK session never
 * authenticates, so the relay takes only small records from it), PUB_WINDOW of them in flight,
 * each answered by Ok, the last one by the relay's verdict on the whole list. */
#define PUB_WINDOW 32

typedef struct publish_ctx {
    kurer_conn *c;
    uv_timer_t timer;
    const uint8_t *list;
    size_t list_len;
    size_t sent, acked, chunks; /* chunks sent, answered, in all */
    int result;                 /* 1 when the relay answered */
    int relay_code;             /* 0: Ok; else its error code */
    int local_err;              /* transport failure */
    int established;            /* the handshake finished */
} publish_ctx;

/* Sends chunks until PUB_WINDOW are unanswered or all are sent. A list that fits one chunk goes
 * whole (a RevocationUpload): it never waits for the relay's upload buffer. */
static int pub_send_more(publish_ctx *x)
{
    int rc = 0;
    if (x->chunks == 1 && x->sent == 0) {
        kurer_client_frame f;
        kurer_buf b;
        memset(&f, 0, sizeof(f));
        f.request_id = 1;
        f.body = KURER_CLIENT_REVOCATION;
        rc = kurer_crl_decode(x->list, x->list_len, &f.u.revocation);
        kurer_buf_init(&b, KURER_FRAME_MAX);
        if (rc == 0)
            rc = kurer_client_frame_encode(&f, &b);
        if (rc == 0)
            rc = kurer_conn_send(x->c, b.data, b.len);
        kurer_buf_release(&b);
        kurer_crl_release(&f.u.revocation);
        x->sent = 1;
        return rc;
    }
    while (rc == 0 && x->sent < x->chunks && x->sent - x->acked < PUB_WINDOW) {
        size_t off = x->sent * KURER_REVOCATION_UPLOAD_CHUNK, len = x->list_len - off;
        if (len > KURER_REVOCATION_UPLOAD_CHUNK)
            len = KURER_REVOCATION_UPLOAD_CHUNK;
        kurer_client_frame f;
        kurer_buf b;
        memset(&f, 0, sizeof(f));
        f.request_id = x->sent + 1;
        f.body = KURER_CLIENT_REVOCATION_CHUNK;
        f.u.revocation_chunk.offset = (uint32_t)off;
        f.u.revocation_chunk.total = (uint32_t)x->list_len;
        f.u.revocation_chunk.data = x->list + off;
        f.u.revocation_chunk.len = len;
        kurer_buf_init(&b, KURER_FRAME_MAX);
        rc = kurer_client_frame_encode(&f, &b);
        if (rc == 0)
            rc = kurer_conn_send(x->c, b.data, b.len);
        kurer_buf_release(&b);
        x->sent++;
    }
    return rc;
}

static void pub_established(kurer_conn *c, const uint8_t *p, size_t n)
{
    publish_ctx *x = kurer_conn_data(c);
    kurer_handshake_accept acc;
    x->established = 1;
    int rc = kurer_handshake_accept_decode(p, n, &acc);
    if (rc == 0 && acc.has_error)
        rc = acc.error_code;
    if (rc == 0)
        rc = pub_send_more(x);
    if (rc != 0) {
        x->result = 1;
        x->relay_code = rc;
        kurer_conn_close(c, rc);
    }
}

static void pub_record(kurer_conn *c, uint8_t *p, size_t n)
{
    publish_ctx *x = kurer_conn_data(c);
    kurer_server_frame f;
    int rc = kurer_server_frame_decode(p, n, &f);
    if (rc != 0) {
        x->local_err = rc;
    } else if (f.request_id == 0 && f.body != KURER_SERVER_ERROR) {
        kurer_server_frame_release(&f);
        return; /* a push that is not for us */
    } else if (f.body == KURER_SERVER_OK && f.request_id == x->acked + 1 &&
               x->acked + 1 < x->chunks) {
        /* a chunk taken: more of the list */
        kurer_server_frame_release(&f);
        x->acked++;
        if ((rc = pub_send_more(x)) == 0)
            return;
        x->local_err = rc;
    } else {
        x->result = 1;
        x->relay_code = f.body == KURER_SERVER_ERROR                             ? f.u.error.code
                        : f.body == KURER_SERVER_OK && f.request_id == x->chunks ? 0
                                                                                 : KURER_EMALFORMED;
        kurer_server_frame_release(&f);
    }
    kurer_conn_close(c, 0);
}

static void pub_timer_closed(uv_handle_t *h)
{
    (void)h;
}

static void pub_close(kurer_conn *c, int err)
{
    publish_ctx *x = kurer_conn_data(c);
    if (!x->result && x->local_err == 0)
        x->local_err = err != 0 ? err : KURER_ECLOSED;
    x->c = NULL;
    uv_timer_stop(&x->timer);
    uv_close((uv_handle_t *)&x->timer, pub_timer_closed);
}

static void pub_timeout(uv_timer_t *t)
{
    publish_ctx *x = t->data;
    x->local_err = KURER_ETIMEOUT;
    if (x->c != NULL)
        kurer_conn_close(x->c, KURER_ETIMEOUT);
}

int relay_key_arg(const char *v, uint8_t pk[32])
{
    char hex[65];
    if (strlen(v) != 64 || kurer_hex_decode(pk, 32, v) != 0) {
        uint8_t *d;
        size_t n;
        int rc = read_file(v, 256, &d, &n);
        if (rc != 0)
            return usage_error("--relay-key %s: neither 64 hex characters nor a readable file", v);
        if (n < 64) {
            free(d);
            return refuse(KURER_EMALFORMED, "%s does not hold a relay key in hex", v);
        }
        memcpy(hex, d, 64);
        hex[64] = '\0';
        free(d);
        if (kurer_hex_decode(pk, 32, hex) != 0)
            return refuse(KURER_EMALFORMED, "%s does not hold a relay key in hex", v);
    }
    return 0;
}

int cmd_publish(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"crl", V, 0}, {"relay", V, 0}, {"relay-key", V, 0}};
    kurer_args a;
    int rc;
    const char *crl_path, *relay, *key;
    uint8_t pk[32], *data = NULL;
    size_t len;
    struct sockaddr_storage addr;
    kurer_crl crl;
    uv_loop_t loop;
    publish_ctx x;
    memset(&crl, 0, sizeof(crl));
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_publish, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "crl", &crl_path)) != 0 || (rc = need(&a, "relay", &relay)) != 0 ||
        (rc = need(&a, "relay-key", &key)) != 0)
        return rc;
    if (kurer_net_addr_check(relay) != 0)
        return usage_error("--relay %s: expected HOST:PORT", relay);
    if ((rc = kurer_net_resolve(relay, &addr)) != 0)
        return refuse(rc, "cannot resolve %s: %s", relay, kurer_strerror(rc));
    if ((rc = relay_key_arg(key, pk)) != 0)
        return rc;
    kurer_armor_kind armor;
    if ((rc = read_input(crl_path, FILE_MAX, &data, &len, &armor)) != 0)
        return rc;
    if (armor != KURER_ARMOR_NONE && armor != KURER_ARMOR_CRL) {
        free(data);
        return refuse(KURER_EARMORLABEL, "%s is labelled %s, not REVOCATION LIST", crl_path,
                      kurer_armor_label(armor));
    }
    /* Decode here so that a wrong file is refused before anything goes on the wire. */
    rc = len > KURER_CRL_BYTES_MAX ? KURER_ELIMIT : kurer_crl_decode(data, len, &crl);
    if (rc != 0) {
        free(data);
        return refuse(rc, "%s is not a revocation list: %s", crl_path, kurer_strerror(rc));
    }
    static const kurer_conn_cbs cbs = {NULL, pub_established, pub_record, NULL, NULL, pub_close};
    memset(&x, 0, sizeof(x));
    x.list = data;
    x.list_len = len;
    x.chunks = (len + KURER_REVOCATION_UPLOAD_CHUNK - 1) / KURER_REVOCATION_UPLOAD_CHUNK;
    if (uv_loop_init(&loop) != 0) {
        rc = refuse(KURER_EIO, "cannot start the event loop");
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_timer_init(&loop, &x.timer);
    x.timer.data = &x;
    uv_timer_start(&x.timer, pub_timeout, PUBLISH_TIMEOUT_MS, 0);
    rc = kurer_conn_connect(&x.c, &loop, (struct sockaddr *)&addr, NULL, &cbs, KURER_NOISE_NK, NULL,
                            pk, NULL, 0, &x);
    if (rc != 0) {
        uv_close((uv_handle_t *)&x.timer, pub_timer_closed);
        uv_run(&loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&loop);
        rc = refuse(rc, "cannot connect to %s: %s", relay, kurer_strerror(rc));
        goto out;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop);
    jstr("issuer", crl.issuer);
    ju64("version", crl.version);
    jstr("relay", relay);
    if (!x.result && (x.local_err == KURER_ECONNREFUSED || x.local_err == KURER_EUNREACHABLE)) {
        rc = refuse(x.local_err, "cannot reach relay %s: %s", relay, kurer_strerror(x.local_err));
    } else if (!x.result && x.local_err == KURER_ECLOSED && !x.established) {
        rc =
            refuse(KURER_EHANDSHAKE,
                   "relay %s closed the handshake: wrong --relay-key, or not a Kurér relay", relay);
    } else if (!x.result) {
        rc = refuse(x.local_err, "relay %s: %s", relay, kurer_strerror(x.local_err));
    } else if (x.relay_code != 0) {
        /* The relay's typed error; its name goes into --json's code. */
        rc = refuse(x.relay_code, "relay %s refused the list (version %llu): %s", relay,
                    (unsigned long long)crl.version, kurer_strerror(x.relay_code));
    } else {
        say("published %s revocation list version %llu to %s\n", crl.issuer,
            (unsigned long long)crl.version, relay);
        rc = 0;
    }
out:
    free(data);
    kurer_crl_release(&crl);
    return rc;
}
