/* kurer's JSON-RPC 2.0 methods (docs/client.md, "kurer daemon"): what `kurer daemon` serves on
 * its Unix socket and what the other commands run, either in their own process on the home
 * they open (local) or through the daemon's socket (remote). A method takes its params as a
 * JSON object and gives a result object, or fails with a kurer code and the reason recorded
 * by refuse() (thread-local), RC_USAGE for params that are wrong, or RC_QUEUED (send: in the
 * outbox, not yet accepted). The command's formatter turns the result into the same output
 * either way, so a command prints the same and exits the same with or without a daemon.
 *
 * Methods are grouped one file per group (rpc_messages.c, rpc_device.c; the subscription
 * methods, which belong to a connection, in daemon_conn.c); rpc_table.c lists the groups.
 * Adding a method is a row in its group's table (and a new group one file and one line). */
#ifndef KURER_CLIENT_CLI_RPC_H
#define KURER_CLIENT_CLI_RPC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

/* JSON-RPC 2.0 error codes, and ours in the -32000 range (their data: {"name": "EREVOKED",
 * ...}, the kurer error's name, and the message is the reason as kurer prints it). */
#define RPC_PARSE_ERROR      (-32700)
#define RPC_INVALID_REQUEST  (-32600)
#define RPC_METHOD_NOT_FOUND (-32601)
#define RPC_INVALID_PARAMS   (-32602)
#define RPC_INTERNAL_ERROR   (-32603)
#define RPC_REFUSED          (-32000) /* a kurer error: data.name */
#define RPC_QUEUED           (-32001) /* send: committed to the outbox, not yet accepted */

#define RPC_LINE_MAX   (1024 * 1024)     /* one request (or response read by a client), bytes */
#define RPC_DEPTH_MAX  16                /* nesting of arrays and objects in a request */
#define RPC_REPLY_MAX  (8 * 1024 * 1024) /* the responses a client reads, bytes per line */
#define RPC_PAGE_BYTES (512 * 1024)      /* history: messages per page, by size */

struct daemon_srv;

typedef struct rpc_ctx rpc_ctx;
/* A notification to whoever called the method, while it runs (params taken). */
typedef void (*rpc_notify_fn)(rpc_ctx *c, const char *method, json_t *params);

struct rpc_ctx {
    kurer *k;
    int local;    /* 1: run by a command in its own process (its test holds apply) */
    json_t *data; /* on failure: members for the error's data (the method sets it; owned) */
    const struct daemon_srv *srv; /* the daemon running it, or NULL */
    rpc_notify_fn notify;         /* may be NULL: nobody to tell */
    void *notify_ud;              /* the command's target (local), or the daemon's */
    uint64_t conn;                /* the daemon's connection that asked (0: local) */
};

/* 0 with *result (a new reference), or a failure as above. params is an object (borrowed). */
typedef int (*rpc_fn)(rpc_ctx *c, json_t *params, json_t **result);

typedef struct rpc_method {
    const char *name;
    rpc_fn fn; /* NULL: served by the daemon's connection itself (subscribe, unsubscribe) */
} rpc_method;

/* Each group's table ends with {NULL, NULL}. */
extern const rpc_method rpc_messages_methods[]; /* rpc_messages.c: send, history, receive,
                                                   flush_outbox */
extern const rpc_method rpc_device_methods[];   /* rpc_device.c: whoami, verify, status */
extern const rpc_method rpc_conn_methods[];     /* daemon_conn.c: subscribe, unsubscribe */
extern const rpc_method rpc_home_methods[];     /* rpc_home.c: backup */
extern const rpc_method rpc_day_methods[];      /* rpc_day.c: outbox, outbox_retry, outbox_cancel,
                                                   contacts, conversations */
extern const rpc_method rpc_group_methods[];    /* rpc_group.c: group.create, group.add,
                                                   group.remove, group.leave, group.list,
                                                   group.info */
/* rpc_group.c: send with a group (a part of the method send). */
int rpc_group_send(rpc_ctx *c, const char *group, int level, const char *text,
                   const char *const *paths, size_t n_files, long long timeout, json_t **result);
/* rpc_group.c: timer with a group (a part of the method timer): {group (the whole id), seconds};
 * RC_QUEUED when set here and the change waits in the outbox. */
int rpc_group_timer(rpc_ctx *c, const char *group, uint32_t seconds, long long timeout,
                    json_t **result);
/* rpc_messages.c: a refusal of the files of a send said in words (0 if rc is not about them). */
int file_refused(int rc, size_t n);
extern const rpc_method rpc_keys_methods[]; /* rpc_keys.c: rekey, import */
extern const rpc_method rpc_call_methods[]; /* rpc_call.c: call, answer */
/* rpc_call.c: 1 while a call runs in this process (the daemon lets it hang up at a stop). */
int rpc_call_running(void);
extern const rpc_method rpc_receipt_methods[]; /* rpc_receipts.c: read, timer */
/* rpc_table.c: the method called name, or NULL. */
const rpc_method *rpc_find(const char *name);

/* daemon_work.c: the daemon's counters (status), into the object into. */
void daemon_counters(const struct daemon_srv *s, json_t *into);
/* 1 once the daemon is stopping (a long method, a call, ends then); 0 for NULL. */
int daemon_stopping(const struct daemon_srv *s);

/* ---- rpc_request.c: one request line */
typedef struct rpc_request {
    json_t *req;         /* the parsed line (owned: json_decref it), or NULL */
    json_t *id;          /* borrowed from req: NULL for a notification */
    json_t *params;      /* borrowed from req, or NULL */
    const rpc_method *m; /* the method called */
} rpc_request;
/* 0 with *r; else the JSON-RPC error code, *msg its message (static), and r->id the id to
 * answer with when the line had a usable one (r->req still to be freed). */
int rpc_parse_request(const char *line, size_t n, rpc_request *r, const char **msg);

/* ---- rpc_util.c: params, errors and messages as JSON */
/* Makes jansson wipe what it frees (message text passes through it); once, before threads. */
void rpc_init(void);
/* Wipes n bytes at p and frees it (NULL-safe): lines that may hold message text. */
void rpc_free_wiped(void *p, size_t n);
/* RC_USAGE unless params has only members named in names (NULL-terminated). */
int rpc_only(json_t *params, const char *const *names);
/* The string member name (NULL if absent and !required): RC_USAGE if it is not a string. */
int rpc_str(json_t *params, const char *name, int required, const char **out);
/* The integer member name in 0..max (def if absent): RC_USAGE otherwise. */
int rpc_int(json_t *params, const char *name, long long max, long long def, long long *out);
/* The boolean member name (def if absent). */
int rpc_bool(json_t *params, const char *name, int def, int *out);
/* The kurer code named name ("EREVOKED"), or KURER_EIO if there is none of that name. */
int rpc_err_code(const char *name);
/* A stored or received message as JSON (docs/client.md); NULL when out of memory. */
json_t *rpc_message_json(const kurer_message *m);
/* Back: *m points into j (valid while j is); body is the raw text. RC_USAGE if malformed. */
int rpc_message_from(json_t *j, kurer_message *m, char **raw_body);
/* rpc_receipts.c: a message's timer and receipts as members of o (docs/client.md), and back
 * into m (pointers into j; m->receipts into a thread-local array valid until the next call). */
int rpc_receipts_json(const kurer_message *m, json_t *o);
int rpc_receipts_from(json_t *j, kurer_message *m);
/* A key change as JSON (docs/client.md), and back (the strings point into j). */
json_t *rpc_key_change_json(const kurer_key_change *c);
int rpc_key_change_from(json_t *j, kurer_key_change *c);
/* 0 if the n bytes of JSON nest at most RPC_DEPTH_MAX deep (strings skipped). */
int rpc_depth_ok(const char *s, size_t n);
/* The JSON of v as one line (with the newline) in *out, malloc'ed; 0 or KURER_ENOMEM. */
int rpc_dump_line(json_t *v, char **out, size_t *len);
/* Runs a method's fn, turning its outcome into a JSON-RPC response for id (borrowed; NULL
 * for a notification: then *line is NULL). */
int rpc_respond(const rpc_method *m, rpc_ctx *c, json_t *params, json_t *id, char **line,
                size_t *len);
/* An error response; data may be NULL (taken). */
int rpc_error_line(json_t *id, int code, const char *msg, json_t *data, char **line, size_t *len);

/* ---- remote.c: a command's methods, run through the daemon or on the home itself */
/* What the daemon pushes while a command waits for it (notifications). */
typedef void (*rpc_note_fn)(void *ud, const char *method, json_t *params);
typedef struct cli_target {
    kurer *k;            /* the home opened here, or NULL */
    int fd;              /* or the daemon's socket (-1 if none) */
    rpc_note_fn on_note; /* notifications that come while a call waits (may be NULL) */
    void *ud;
} cli_target;
/* The daemon that holds home (waiting up to 5 s for one that holds it but does not answer
 * yet), or else home opened here (open_home). 0, or the refusal. */
int cli_open(const char *home, cli_target *t);
/* Runs method with params (taken). 0 with *result; else the failure with its reason
 * recorded (refuse()) and *result the error's data, or NULL. */
int cli_run(cli_target *t, const char *method, json_t *params, json_t **result);
/* Closes the socket, or disconnects (acks) and closes the home. */
void cli_close(cli_target *t);
/* A peer's key change noticed while t runs is said (show_key_change): on the home opened
 * here, its events; through the daemon, a subscription to key_change. 0, or the refusal. */
int key_changes_said(cli_target *t);
/* A notification of the daemon: key_change shown; others ignored. */
void key_change_note(void *ud, const char *method, json_t *params);
/* cli_open, cli_run, cli_close. */
int cli_call(const char *home, const char *method, json_t *params, json_t **result);
/* The daemon's socket for home, connected, 1 with *fd; 0 if no daemon of our uid answers. */
int remote_connect(const char *home, int *fd);
/* One request on fd and its response (notifications meanwhile to on_note), waiting up to
 * wait_ms; results as cli_run. */
int remote_call(int fd, const char *method, json_t *params, int wait_ms, rpc_note_fn on_note,
                void *ud, json_t **result);
/* Gives notifications to on_note for wait_ms; 0, or KURER_ECLOSED when the daemon goes. */
int remote_wait(int fd, int wait_ms, rpc_note_fn on_note, void *ud);

/* recv_daemon.c: kurer recv through the daemon (t connected to it). */
int recv_daemon(cli_target *t, int wait);

/* ---- daemon_sock.c: the socket's place and its checks */
/* The socket path for home: $XDG_RUNTIME_DIR/kurer/<hash of the home's real path>.sock when
 * XDG_RUNTIME_DIR is a folder of ours, else HOME/daemon.sock. KURER_SOCKET overrides it. */
int daemon_socket_path(const char *home, char *out, size_t n);
/* Binds and listens on path (0600, its folder ours and not open to others): a socket left by
 * a daemon that no longer answers is replaced, anything else there refused. */
int daemon_listen(const char *path, int *fd);
/* 1 if the peer of a connected Unix socket is our own uid (SO_PEERCRED), else 0. */
int daemon_peer_ok(int fd);

#endif
