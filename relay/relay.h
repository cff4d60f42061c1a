/* The relay server (private to relay/). */
#ifndef KURER_RELAY_RELAY_H
#define KURER_RELAY_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
    /* the media relay (docs/calls.md, "Limits") */
    uint64_t media_calls_per_device;  /* calls one device may hold at once */
    uint64_t media_calls_max;         /* calls, all devices together */
    uint64_t media_leg_packet_rate;   /* datagrams per second one leg may send (burst 4x) */
    uint64_t media_leg_byte_rate;     /* bytes per second one leg may send (burst 4x) */
    uint64_t media_idle_timeout_ms;   /* a call without a datagram this long is closed */
    uint64_t media_keepalive_ms;      /* clients send KEEPALIVE this often (told at allocation) */
    uint64_t media_ticket_lifetime_s; /* a ticket binds (and re-binds) its leg this long */
    uint64_t wake_poll_ms; /* store = postgres: every connected device's mailbox is looked into
                              this often, should a wake-up from another node be lost */
    uint64_t pg_pool;      /* store = postgres: connections of the store's pool (rounds at once) */
    uint64_t invite_rate;  /* failed invitation attempts per minute per source address */
    uint64_t invite_failures_max; /* wrong MACs one invitation takes before it is locked */
    /* blobs (docs/relay.md, "Blobs") */
    uint64_t blob_max_size;            /* sealed bytes of one blob */
    uint64_t blob_quota;               /* bytes of live blobs one device has uploaded (0: none) */
    uint64_t blob_expiry_s;            /* a finished blob is deleted this long after its upload */
    uint64_t blob_incomplete_expiry_s; /* an unfinished upload is deleted this long after start */
    uint64_t blob_sweep_ms;            /* expired blobs are looked for this often */
    /* the store (store_config.c parses these two: they are not numbers) */
    int store_postgres;     /* store = postgres (default: sqlite, the relay folder's relay.db) */
    char pg_conninfo[1024]; /* pg_conninfo: a libpq connection string (may hold a password) */
#define KURER_RELAY_CONNINFO_MAX 1024
} kurer_relay_config;

void kurer_relay_config_default(kurer_relay_config *c);

#define KURER_RELAY_MULTI_MAX 8 /* values of a repeatable setting (listen, root, crl) */

/* Everything `kurer-relay run` is told: by the configuration file (docs/relay.md,
 * "Configuration"), then by the command line, which overrides the file. */
typedef struct kurer_relay_opts {
    const char *dir;
    const char *listen[KURER_RELAY_MULTI_MAX]; /* each a listener */
    size_t n_listen;
    const char *metrics; /* NULL: none */
    int metrics_public;  /* serve metrics on a non-loopback address (unauthenticated) */
    const char *roots[KURER_RELAY_MULTI_MAX];
    size_t n_roots;
    const char *crl_files[KURER_RELAY_MULTI_MAX];
    size_t n_crls;
    const char *store;        /* NULL, "sqlite" or "postgres" */
    const char *pg_conninfo;  /* store = postgres: the libpq connection string (a secret) */
    const char *log_level;    /* NULL: info */
    const char *user;         /* the user a relay started as root drops to (NULL: none) */
    const char *audit_log;    /* the audit log's file (NULL: none) */
    const char *media_listen; /* the media relay's UDP address (NULL: the first listen's) */
    int seccomp;              /* install the system call allow-list after start-up (default 1) */
    size_t owned_len;         /* the bytes of the configuration file the strings point into */
    kurer_relay_config cfg;
} kurer_relay_opts;

/* Defaults: cfg's, seccomp on, nothing else set. */
void kurer_relay_opts_default(kurer_relay_opts *o);

#define KURER_RELAY_CHECK_FILES 1u /* also: named files exist and are readable, dir is a folder */

/* Reads the configuration file at path (`key = value` lines, # comments) into o, over what o
 * holds. Every problem is reported on err as "kurer-relay: PATH:LINE: reason" (unknown key, bad
 * value or unit, out of range, a key given twice) and the rest of the file is still read.
 * Returns how many problems it reported (0: o is complete). o's strings then point into *owned
 * (the file's bytes), which the caller frees (free) after its last use of o; *owned is set
 * (maybe NULL) in every case. */
KURER_MUST_CHECK int kurer_relay_config_load(kurer_relay_opts *o, const char *path, unsigned flags,
                                             FILE *err, char **owned);
/* Sets one key (the command line's options are keys: --log-level is log_level) as the file
 * would, over o; a repeatable one gets one more value. o borrows value. 0, or an error with the
 * reason in why (n bytes). */
KURER_MUST_CHECK int kurer_relay_opts_set(kurer_relay_opts *o, const char *key, const char *value,
                                          unsigned flags, char *why, size_t n);
/* Parses one value of a key as the file would (units included): 0 with *out in the key's unit,
 * KURER_ENOTFOUND for a key that is not numeric, KURER_EINVAL for a bad value, KURER_ELIMIT out
 * of its range. For tests and check-config. */
KURER_MUST_CHECK int kurer_relay_config_value(const char *key, const char *value, uint64_t *out);

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
