/* The reference servers' transport: the records of net/ (2-byte big-endian length, then the
 * bytes) without Noise. Efficient on purpose, since it bounds what the relay could do: each
 * connection reads into one large buffer and cuts every complete record out of it at once, and
 * everything queued for a peer during one loop iteration leaves in one uv_write (flushed from a
 * uv_check handle), with at most one write in flight per connection.
 *
 * Messages of the reference protocol (first byte of a record):
 *   'H' u32 id                      client: I am device id          -> 'W' (welcome)
 *   'S' u64 req, u32 to, content    client: send one envelope       -> 'A' u64 req (accepted)
 *   'D' u64 seq, u32 from, content  server: deliver                 (receiver acks the seq)
 *   'K' u64 seq * n                 client: ack                     -> 'O' u32 n
 * Integers big-endian. */
#ifndef KURER_BENCH_PLAIN_H
#define KURER_BENCH_PLAIN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define PLAIN_IN_CAP (256 * 1024)

typedef struct pconn pconn;

typedef struct pconn_cbs {
    void (*on_connect)(pconn *c, int status); /* client side only */
    void (*on_record)(pconn *c, const uint8_t *rec, size_t n);
    void (*on_close)(pconn *c);
} pconn_cbs;

struct pconn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    const pconn_cbs *cbs;
    void *data;
    uint8_t *in;
    size_t in_len;
    uint8_t *out, *fly; /* queued, and in flight */
    size_t out_len, out_cap, fly_len, fly_cap;
    int writing, dirty, closing;
    pconn *next_dirty;
};

/* Starts the per-loop flusher (once per loop, before any connection). */
void plain_loop_init(uv_loop_t *loop);
/* Closes the flusher and runs the loop until it is gone (after every connection closed). */
void plain_loop_close(uv_loop_t *loop);
/* A server-side connection accepted from server; 0 or a libuv error. */
int pconn_accept(pconn *c, uv_stream_t *server, const pconn_cbs *cbs, void *data);
int pconn_connect(pconn *c, uv_loop_t *loop, const struct sockaddr *addr, const pconn_cbs *cbs,
                  void *data);
/* Queues one record made of two parts (hdr and body; either may be empty). */
void pconn_send2(pconn *c, const void *hdr, size_t hn, const void *body, size_t bn);
/* Closes; on_close follows. The caller frees c after on_close. */
void pconn_close(pconn *c);

void plain_put_u32(uint8_t *p, uint32_t v);
void plain_put_u64(uint8_t *p, uint64_t v);
uint32_t plain_get_u32(const uint8_t *p);
uint64_t plain_get_u64(const uint8_t *p);

#endif
