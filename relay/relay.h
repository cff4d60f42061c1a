/* The relay server (private to relay/). */
#ifndef KURER_RELAY_RELAY_H
#define KURER_RELAY_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "kurer/error.h"

/* Every limit of DESIGN.md's "Bad input" section, with its default (docs/relay.md). */
typedef struct kurer_relay_config {
    uint64_t max_record;         /* bytes per record, <= 65535 */
    uint64_t max_envelope;       /* bytes of envelope content */
    uint64_t max_send_envelopes; /* envelopes per send request */
    uint64_t mailbox_max;        /* queued envelopes per device */
    uint64_t handshake_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t send_rate;       /* envelopes per second per device, kept across reconnects
                                 (burst: 4x, as for every rate) */
    uint64_t out_cap;         /* queued output bytes per connection before reading stops */
    uint64_t out_max;         /* queued output bytes after which the connection is dropped */
    uint64_t deliver_batch;   /* envelopes read from the store per fetch */
    uint64_t prekeys_low;     /* PrekeysLow is pushed while a device holds fewer one-time prekeys */
    uint64_t max_connections; /* live connections (0: open-file limit - 64) */
    uint64_t commit_delay_us; /* the store may hold work this long before a transaction */
    uint64_t max_handshakes;  /* connections still in their handshake (pre-auth memory bound) */
    uint64_t prekeys_max;     /* one-time prekeys a device may hold */
    uint64_t fetch_rate;      /* prekey fetches per second per device */
    uint64_t ack_hold_us;     /* a put delivered early waits this long for its acks unwritten */
    uint64_t max_preauth_record;      /* largest record from a peer not authenticated yet */
    uint64_t max_preauth_per_address; /* pre-auth connections from one source address */
    uint64_t nk_rate;                 /* NK handshakes per second per source address */
    uint64_t handshake_rate;          /* connections per second per source address */
    uint64_t upload_buffer_max;       /* bytes of chunked revocation uploads held, all together */
    uint64_t lookup_rate;             /* directory lookups per second per device */
    uint64_t ping_rate;               /* pings per second per device */
    uint64_t mailbox_sender_max;      /* envelopes of one sender user in one mailbox (0: none) */
    uint64_t prekey_take_max;         /* one-time prekeys one device may take of one user... */
    uint64_t prekey_take_window_s;    /* ...per this many seconds (then: signed prekeys only) */
    /* the store (store_config.c parses these two: they are not numbers) */
    int store_postgres;     /* store = postgres (default: sqlite, the relay folder's relay.db) */
    char pg_conninfo[1024]; /* pg_conninfo: a libpq connection string (may hold a password) */
} kurer_relay_config;

void kurer_relay_config_default(kurer_relay_config *c);
/* Reads key = value lines (# comments). Unknown keys and bad values are KURER_EINVAL with the
 * line number in *line. */
KURER_MUST_CHECK int kurer_relay_config_load(kurer_relay_config *c, const char *path, int *line);
/* The accepted range of a configuration key; KURER_ENOTFOUND for an unknown key. */
KURER_MUST_CHECK int kurer_relay_config_range(const char *key, uint64_t *min, uint64_t *max);

typedef struct kurer_relay_opts {
    const char *dir;
    const char *listen;
    const char *metrics; /* NULL: none */
    int metrics_public;  /* serve metrics on a non-loopback address (unauthenticated) */
    const char *roots[8];
    size_t n_roots;
    const char *crl_files[8];
    size_t n_crls;
    kurer_relay_config cfg;
} kurer_relay_opts;

/* Serves on loop (the caller's: library code never takes uv_default_loop itself) until
 * SIGTERM/SIGINT; the caller closes the loop afterwards. Prints "listening HOST:PORT" on stdout
 * once bound. Returns 0 on a graceful shutdown, else an error (already reported on stderr); after
 * a failed start it has closed what it opened on loop and run loop once (UV_RUN_NOWAIT) so that
 * those closes complete before it returns. */
int kurer_relay_run(const kurer_relay_opts *o, uv_loop_t *loop);
/* kurer-relay backup (backup.c): an encrypted copy of DIR's store at out, through the running
 * relay (SIGUSR1 and DIR/backup.request) or, with DIR not in use, from the store directly.
 * Waits up to timeout_s for a running relay. Prints the result; 0 or 1 (errors on stderr). */
int kurer_relay_backup(const char *dir, const char *out, int timeout_s);
/* kurer-relay restore: an empty (or new) DIR gets the verified, migrated store of the backup
 * file and the key files of keys (relay.key, store.key; relay.pub derived). 0 or 1. */
int kurer_relay_restore(const char *dir, const char *keys, const char *file);
/* Creates DIR with the relay's Noise key and store key. */
int kurer_relay_init(const char *dir);

#endif
