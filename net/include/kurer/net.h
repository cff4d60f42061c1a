/* The transport the relay and the client share: a Noise session over a libuv TCP stream.
 *
 * Wire format (docs/design.md, "Client to relay transport"): records of a 2-byte big-endian
 * length followed by that many bytes. The first record each way is a Noise handshake message
 * (IK, or NK for unauthenticated uploads; prologue "kurer/1"); every later record is one Noise
 * transport message (at most 65535 bytes, tag included) carrying one frame.
 *
 * A kurer_conn owns its uv_tcp_t, a timer and an idle handle. Everything happens on the loop
 * thread that created it: no function here may be called from another thread.
 *
 *  - Reads go into one read buffer shared by the connections of the thread (one loop per
 *    thread); complete records are cut out with kurer_reader (kurer_net_record_next) and
 *    decrypted in place there. Only the bytes of an incomplete record (or of records held back
 *    while reading is paused) are copied into a buffer of the connection, which is freed once
 *    empty: an idle connection holds no input buffer. It never holds more than two maximum
 *    records.
 *  - Output buffers are freed whenever everything queued has been written.
 *  - Writes are batched: kurer_conn_send encrypts into a pending buffer; at most one uv_write
 *    per connection is in flight, and a new one starts at most once per loop iteration, carrying
 *    everything queued since (from a uv_idle handle).
 *  - Backpressure: while more than out_cap bytes are queued for a peer, its input is not read
 *    (so a peer that does not read cannot make us buffer its requests' answers); past out_max,
 *    kurer_conn_send fails with KURER_ELIMIT. on_drain runs when the queue falls below out_cap.
 *  - Pre-authentication (responder): until the peer has proven its keys, every record from it
 *    (the handshake message included) is at most preauth_record bytes, its input buffer at
 *    most two of those, its queued output at most two of those before reading stops (four before
 *    kurer_conn_send fails with KURER_ELIMIT), and the handshake deadline runs. An IK peer proves
 * its keys with its first transport record (it decrypts only for the holder of the static key and
 * of the handshake's ephemeral key, so a replayed message 1 never gets there); on_established runs
 *    then, before on_record. An NK peer has no static key: on_established runs at its first
 *    record, but the bounds and the deadline stay for the connection's whole life.
 *  - Deadlines: the handshake must finish within handshake_ms of the start; with no record
 *    received for idle_ms/2, on_idle runs (a client sends a ping); with none for idle_ms, the
 *    connection closes with KURER_ETIMEOUT.
 *  - Close: kurer_conn_close closes the handles; when the last close callback has run,
 *    on_close(conn, err) runs once and the connection's memory is freed right after it returns.
 *    No callback runs after on_close. A connection whose start failed still ends in on_close.
 */
#ifndef KURER_NET_H
#define KURER_NET_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "kurer/buf.h"
#include "kurer/error.h"
#include "kurer/noise.h"

#define KURER_NET_PROLOGUE   "kurer/1"
#define KURER_NET_RECORD_MAX 65535 /* the 2-byte length's limit: one Noise message */
#define KURER_NET_RECORD_HDR 2
/* Default bound on records from an unauthenticated peer: a first IK message carries at most a
 * chain of KURER_CHAIN_BYTES_MAX (4096) bytes plus about 100 bytes of Noise and framing. */
#define KURER_NET_PREAUTH_RECORD 4608

/* Cuts the next record out of r: a 2-byte big-endian length n, then n bytes (*rec points into
 * r's data). Returns 0, or
 *   KURER_ETRUNC      the record is not complete yet; the cursor has not moved;
 *   KURER_ELIMIT      the length is above max (checked as soon as the two length bytes are in);
 *   KURER_EMALFORMED  a zero length (no Noise message is empty).
 * After an error other than KURER_ETRUNC the stream cannot be resynchronised: close it. */
KURER_EXPORT KURER_MUST_CHECK int kurer_net_record_next(kurer_reader *r, size_t max,
                                                        const uint8_t **rec, size_t *n);

typedef struct kurer_net_limits {
    size_t max_record;     /* largest record accepted, 1..65535 (default 65535) */
    size_t out_cap;        /* stop reading above this many queued output bytes (1 MiB) */
    size_t out_max;        /* kurer_conn_send fails above this (4 MiB) */
    uint64_t handshake_ms; /* handshake deadline (10 s) */
    uint64_t idle_ms;      /* idle deadline (120 s); 0 for none */
    size_t preauth_record; /* largest record from a peer not authenticated yet (4608; 0 or more
                              than max_record: max_record) */
} kurer_net_limits;

/* The defaults above. */
KURER_EXPORT kurer_net_limits kurer_net_limits_default(void);

typedef struct kurer_conn kurer_conn;

typedef struct kurer_conn_cbs {
    /* Responder only: the first handshake message arrived. For IK, remote_static is the peer's
     * claimed static key (authenticated only once the handshake finishes, which it does only if
     * the peer holds the private key); for NK it is NULL. payload is borrowed for the call. The
     * application must answer with kurer_conn_hs_reply, now or later; until then nothing more is
     * read from the peer. */
    void (*on_hs_request)(kurer_conn *c, kurer_noise_pattern p, const uint8_t *remote_static,
                          const uint8_t *payload, size_t n);
    /* The handshake finished: the initiator gets the responder's payload; the responder gets
     * (NULL, 0) when the peer's first transport record has decrypted (after an accepting
     * kurer_conn_hs_reply), just before that record's on_record. */
    void (*on_established)(kurer_conn *c, const uint8_t *payload, size_t n);
    /* One decrypted record (borrowed for the call; may be modified in place). */
    void (*on_record)(kurer_conn *c, uint8_t *data, size_t n);
    /* Output fell below out_cap after having been above it (optional). */
    void (*on_drain)(kurer_conn *c);
    /* Nothing received for idle_ms/2 (optional). */
    void (*on_idle)(kurer_conn *c);
    /* The connection is gone (err: 0 for a local close without error, KURER_ECLOSED for a
     * peer's close, or the reason). Free application state here; the kurer_conn is freed after
     * this returns. */
    void (*on_close)(kurer_conn *c, int err);
} kurer_conn_cbs;

/* The responder's static key, owned by the listener: sk in guarded memory (kurer_secure_alloc),
 * pk its X25519 public key (computed once, when the key was loaded). Connections borrow it:
 * it must outlive every connection accepted with it. */
typedef struct kurer_net_static_key {
    const uint8_t *sk;
    uint8_t pk[32];
} kurer_net_static_key;

/* A responder connection. Call kurer_conn_accept_from with the listening stream right after
 * (libuv wants uv_accept inside the connection callback). key: the relay's static key, borrowed
 * (see above; the connection keeps no copy); allow_nk: whether the first message may also be an
 * NK handshake (tried when it is not a valid IK message).
 * On error nothing is allocated and no callback runs. */
KURER_EXPORT KURER_MUST_CHECK int kurer_conn_accept_from(kurer_conn **out, uv_stream_t *server,
                                                         const kurer_net_limits *lim,
                                                         const kurer_conn_cbs *cbs,
                                                         const kurer_net_static_key *key,
                                                         int allow_nk, void *data);

/* An initiator connection to addr. pattern IK needs static_sk (ours) and remote_pk (the
 * relay's); NK only remote_pk. payload (copied) is sent in the first handshake message. Once
 * this returns 0, every outcome ends in on_close. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_conn_connect(kurer_conn **out, uv_loop_t *loop, const struct sockaddr *addr,
                   const kurer_net_limits *lim, const kurer_conn_cbs *cbs,
                   kurer_noise_pattern pattern, const uint8_t *static_sk,
                   const uint8_t remote_pk[32], const uint8_t *payload, size_t n, void *data);

/* Responder: answers the first handshake message with payload (copied). accept != 0 finishes
 * the handshake (on_established follows); accept == 0 sends the message (so the peer can read
 * the error inside), then closes with err once it is written. KURER_ESTATE if no reply is due. */
KURER_EXPORT KURER_MUST_CHECK int kurer_conn_hs_reply(kurer_conn *c, int accept,
                                                      const uint8_t *payload, size_t n, int err);

/* Encrypts n bytes (at most max_record - 16) into one record and queues it. 0, KURER_ESTATE
 * before the handshake finished or after close began, KURER_ELIMIT if too large or the output
 * queue is over out_max (the caller should close: the peer does not read). */
KURER_EXPORT KURER_MUST_CHECK int kurer_conn_send(kurer_conn *c, const uint8_t *data, size_t n);

/* Starts closing (idempotent): stops reading and timers, closes the handles; on_close(err)
 * follows from the loop. Queued output is dropped. */
KURER_EXPORT void kurer_conn_close(kurer_conn *c, int err);
/* Stops reading, writes what is queued (within a 2-second grace period), then closes. */
KURER_EXPORT void kurer_conn_close_after_flush(kurer_conn *c, int err);

/* Changes the idle deadline of an open connection (kurer_net_limits.idle_ms; 0: none): on_idle
 * after idle_ms/2 without input, closed after idle_ms. Loop thread. */
KURER_EXPORT void kurer_conn_set_idle(kurer_conn *c, uint64_t idle_ms);

/* Bytes queued for the peer (pending and in flight). */
KURER_EXPORT size_t kurer_conn_queued(const kurer_conn *c);
/* 1 while queued output is at or above out_cap: hold further pushes until on_drain. */
KURER_EXPORT int kurer_conn_congested(const kurer_conn *c);
KURER_EXPORT int kurer_conn_established(const kurer_conn *c);
KURER_EXPORT int kurer_conn_closing(const kurer_conn *c);
/* The peer's static key once known (IK), else NULL. */
KURER_EXPORT const uint8_t *kurer_conn_remote_static(const kurer_conn *c);
KURER_EXPORT kurer_noise_pattern kurer_conn_pattern(const kurer_conn *c);
KURER_EXPORT void *kurer_conn_data(const kurer_conn *c);
KURER_EXPORT void kurer_conn_set_data(kurer_conn *c, void *data);
KURER_EXPORT uv_loop_t *kurer_conn_loop(const kurer_conn *c);
/* The peer's address as "HOST:PORT" into out (at least 64 bytes); "?" if unknown. */
KURER_EXPORT void kurer_conn_peer(const kurer_conn *c, char *out, size_t outlen);
/* The peer's socket address; KURER_EIO if unknown (the socket is gone). */
KURER_EXPORT KURER_MUST_CHECK int kurer_conn_peer_addr(const kurer_conn *c,
                                                       struct sockaddr_storage *out);

/* Parses "HOST:PORT" (IPv4 dotted or [IPv6]) into addr. */
KURER_EXPORT KURER_MUST_CHECK int kurer_net_parse_addr(const char *s,
                                                       struct sockaddr_storage *addr);

/* 0 if s is "HOST:PORT" with HOST an IP literal ([IPv6]) or a DNS name, else KURER_EINVAL.
 * Resolves nothing. */
KURER_EXPORT KURER_MUST_CHECK int kurer_net_addr_check(const char *s);

/* Like kurer_net_parse_addr, and a DNS name is resolved with getaddrinfo (blocking; the first
 * IPv4 or IPv6 address). IP literals never reach the resolver. KURER_EINVAL for a malformed
 * address, KURER_ERESOLVE when the name does not resolve. */
KURER_EXPORT KURER_MUST_CHECK int kurer_net_resolve(const char *s, struct sockaddr_storage *addr);

/* A libuv status (negative UV_E*) as a KURER_* code: UV_ECONNREFUSED KURER_ECONNREFUSED,
 * unreachable networks and hosts KURER_EUNREACHABLE, UV_ETIMEDOUT KURER_ETIMEOUT,
 * UV_EADDRINUSE KURER_EADDRINUSE, UV_EACCES KURER_EPERM, resets and EOF KURER_ECLOSED,
 * others KURER_EIO. A failed connect (before any byte) ends in on_close with this code. */
KURER_EXPORT int kurer_net_uv_error(int status);

#endif
