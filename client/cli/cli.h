/* kurer's internals, shared by its command files (one per command, as in wireguard-tools' wg):
 * the result of a command and the options every command parses alike (output.c), the home
 * opened under its lock (open.c), and the commands themselves.
 *
 * A command is int cmd_X(int argc, char **argv) on the arguments after its name. It returns 0,
 * a kurer_err with the reason recorded by refuse(), RC_USAGE (usage_error()), RC_HELP or
 * RC_QUEUED; main turns that into the exit status, the line on stderr and, with --json, the
 * error object (emit()). The program is single-threaded; the globals below are its state. */
#ifndef KURER_CLIENT_CLI_H
#define KURER_CLIENT_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/args.h"
#include "kurer/buf.h"
#include "kurer/certmsg.h"
#include "kurer/error.h"
#include "kurer/json.h"
#include "kurer/kurer.h"
#include "kurer/secret.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE   2
#define EXIT_QUEUED  3    /* send: committed to the outbox, not yet accepted by the relay */
#define RC_USAGE     1000 /* not a kurer_err: usage error (exit 2) */
#define RC_HELP      1001 /* not a kurer_err: --help printed (exit 0) */
#define RC_QUEUED    1002 /* not a kurer_err: exit EXIT_QUEUED */
#define PASS_ENV     "KURER_PASSPHRASE"
#define NEW_PASS_ENV "KURER_NEW_PASSPHRASE"
#define HOLD_ENV     "KURER_TEST_HOLD"
#define LOCK_ENV     "KURER_LOCK_WAIT"
#define NET_TIMEOUT  30 /* seconds, default for connect and send */

/* ---- the commands */
int cmd_init(int argc, char **argv);          /* init.c */
int cmd_import(int argc, char **argv);        /* import.c */
int cmd_send(int argc, char **argv);          /* send.c */
int cmd_recv(int argc, char **argv);          /* recv.c */
int cmd_history(int argc, char **argv);       /* history.c */
int cmd_read(int argc, char **argv);          /* read.c */
int cmd_timer(int argc, char **argv);         /* read.c */
int cmd_verify(int argc, char **argv);        /* verify.c */
int cmd_passwd(int argc, char **argv);        /* passwd.c */
int cmd_relay(int argc, char **argv);         /* relay.c */
int cmd_whoami(int argc, char **argv);        /* whoami.c */
int cmd_backup(int argc, char **argv);        /* backup.c */
int cmd_restore(int argc, char **argv);       /* backup.c */
int cmd_call(int argc, char **argv);          /* call.c */
int cmd_answer(int argc, char **argv);        /* call.c */
int cmd_outbox(int argc, char **argv);        /* outbox.c */
int cmd_contacts(int argc, char **argv);      /* contacts.c */
int cmd_conversations(int argc, char **argv); /* contacts.c */
int cmd_rekey(int argc, char **argv);         /* rekey.c */
int cmd_daemon(int argc, char **argv);        /* daemon.c */
int cmd_group(int argc, char **argv);         /* group.c */

/* ---- output.c: the result of the command */
extern int g_json;
extern const char *g_command;
extern const char *g_relay; /* the open home's relay address, for messages */

__attribute__((format(printf, 2, 3))) int refuse(int rc, const char *fmt, ...);
__attribute__((format(printf, 1, 2))) int usage_error(const char *fmt, ...);
/* 0 if v is a user name (USER@AUTHORITY); else a usage error naming what (an option or
 * "verify"), which says so when only the case is wrong: names are lower case. */
int user_arg(const char *what, const char *v);
/* The reason recorded last ("" if none); clear_reason() forgets it (after saying it as a
 * warning, when the command goes on). */
const char *reason(void);
void clear_reason(void);
/* The exit status for rc; prints the reason and, with --json, the error object. */
int emit(int rc);

/* One JSON object printed as one line on stdout: begin, members through .j, end. */
typedef struct jline {
    kurer_buf b;
    kurer_json j;
} jline;
/* {"ok":true,"command":g_command, ... */
void jline_ok(jline *o);
void jline_begin(jline *o);
/* ...}: printed with its newline and flushed; the buffer released. */
void jline_end(jline *o);

const char *fmt_ms(char *buf, size_t n, int64_t ms);

#define V           KURER_OPT_VALUE
#define NOPTS(opts) (sizeof(opts) / sizeof((opts)[0]))
/* A command's arguments: parsed against opts (with min_pos..max_pos positionals named
 * pos_name), --help printed (RC_HELP). 0 to go on. On a usage error a->error says which rule
 * was broken, for a command that says more about what was meant (send). */
int command_args(kurer_args *a, const kurer_opt *opts, size_t nopts, size_t min_pos, size_t max_pos,
                 const char *pos_name, const char *help, int argc, char **argv);
const char *opt(const kurer_args *a, const char *name);
int flag(const kurer_args *a, const char *name);
int need(const kurer_args *a, const char *name, const char **out);
int opt_seconds(const kurer_args *a, const char *name, int def, int *out);
int parse_level(const char *s, int *out);
/* --relay HOST:PORT and --relay-key (64 hex digits, or the path of relay.pub). */
int relay_args(const char *relay, const char *key_s, uint8_t key[32]);
int get_passphrase(const char *envname, const char *what, int is_new, kurer_secret *out);

/* Why a send was refused, naming the certificate (0 if why says nothing). */
int explain(int rc, const kurer_refusal *why, int level, const char *to);
/* The same words into out (n bytes); 0 (out "") if why says nothing. */
int describe(int rc, const kurer_refusal *why, int level, const char *to, char *out, size_t n);
/* 1 if rc is the connection failing or ending: what was committed stays for later. */
int transport_error(int rc);
/* A network failure, said as such; returns rc. */
int net_error(int rc, const char *doing);
/* "revocation list of mof is past its next update (DATE)", or "" when the lists are current. */
void stale_text(const kurer_peer_device *d, char *out, size_t n);
/* The own identity key in hex, its fingerprint, the Noise key in hex. */
void own_keys(const kurer *k, char *idk, char fp[65], char nk[65]);
int is_enrolled(kurer *k);

/* ---- codes.c: the comparison code, the request's fingerprint and its QR code */
typedef struct request_info {
    char code[KURER_COMPARISON_CODE_LEN + 1];
    char fingerprint[65]; /* "" when the home has no request file */
    char qr[96];          /* the QR code's text, kurer/compare.h */
} request_info;
int request_codes(const kurer *k, request_info *r);
/* The QR code on the terminal (only a terminal, not with --json) and, png not NULL, as PNG
 * (refused if it exists, unless force). */
int show_request_qr(const request_info *r, const char *png, int force);

/* ---- enrol.c: online enrolment by invitation */
#include "kurer/invite.h"
/* The code as typed, checked before anything is created (a usage error or ECHECKDIGIT); canon
 * its canonical form (keys are wiped: the library derives them). */
int invite_check_code(const char *typed, char canon[KURER_INVITE_CODE_LEN + 1],
                      kurer_invite_keys *keys);
/* Sends this home's request through its relay, bound to the code (kurer_enrol_submit). */
int invite_submit(kurer *k, const char *code);
/* Asks the relay what became of the request, every 2 s for up to wait_s; imports the chain
 * once approved (and connects once): 0; queued_rc while it waits; EREJECTED; ... */
int invite_wait(kurer *k, const char *home, int wait_s, int queued_rc);
/* import.c: the first connection after enrolment (prekeys); 0 or why not (said). */
int first_connect(kurer *k, const char *home);

/* Message text: valid UTF-8, not empty, at most KURER_TEXT_MAX bytes (rpc_messages.c). */
int text_check(const char *t);

/* ---- open.c: one process per home */
extern const char *g_lock_as; /* what the lock records: the command, or "recv --wait" */
/* Opens home with its passphrase, under its lock; a wrong one is a clear error and changes
 * nothing. */
int open_home(const char *home, kurer **k);

/* ---- keys.c: a peer's key change as one line ("bob@sk.dk device 2 has a new key:
 * certificate 18 issued by sk.dk", after prefix), or a JSON line with --json; on_key_change is
 * the kurer_events callback that says it (send, recv: each change once). */
void show_key_change(const kurer_key_change *c, const char *prefix);
void on_key_change(void *ud, const kurer_key_change *c);

/* ---- recv.c: messages as lines (history.c prints them too) */
void show_message(const char *me, const kurer_message *m);
/* receipts.c: a message's timer and receipts after its line (" (delivered to 2 devices, read
 * on 1; disappears 1h after reading)"), as JSON members, and (history --verbose) per device. */
void receipts_text(const kurer_message *m);

void receipts_json(jline *o, const kurer_message *m);
void receipts_devices(const kurer_message *m);
/* 30s, 10m, 1h, 2d: seconds in the largest unit that divides them. */
void fmt_duration(char *out, size_t n, uint32_t s);
/* One attachment of the message shown last: its (untrusted) name in safe form, its size and,
 * once saved, where (saved: "" if not); with --json an object "event":"attachment". */
void show_attachment(const char *name, uint64_t size, const char *content_type, const char *saved);

#endif
