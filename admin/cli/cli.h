/* kurer-admin's internals, shared by its command files (one per command or small group, as in
 * wireguard-tools' wg): the result of a command (output.c), its files and locks (files.c), the
 * root or authority directory it works on (issuer.c), and the commands themselves.
 *
 * A command is int cmd_X(int argc, char **argv) on the arguments after its name. It returns 0,
 * a kurer_err with the reason recorded by refuse(), RC_USAGE (usage_error()) or RC_HELP; main
 * turns that into the exit status, the line on stderr and the --json object (emit()). The
 * program is single-threaded; the globals below are its one result. */
#ifndef KURER_ADMIN_CLI_H
#define KURER_ADMIN_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/args.h"
#include "kurer/armor.h"
#include "kurer/buf.h"
#include "kurer/cert.h"
#include "kurer/certmsg.h"
#include "kurer/enrol.h"
#include "kurer/error.h"
#include "kurer/issuance.h"
#include "kurer/issuelog.h"
#include "kurer/json.h"
#include "kurer/keys.h"
#include "kurer/secret.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE   2
#define RC_USAGE     1000 /* not a kurer_err: a command's usage error (exit 2) */
#define RC_HELP      1001 /* not a kurer_err: --help was printed (exit 0) */

#define F_ROOT_KEY        "root.key"
#define F_ROOT_CRT        "root.crt"
#define F_AUTH_KEY        "authority.key"
#define F_AUTH_CRT        "authority.crt"
#define F_CRL             "crl"
#define F_SERIAL          "serial"
#define F_LOG             "issuance.log"
#define F_DIRLOCK         ".lock"
#define DEFAULT_PASS      "KURER_ADMIN_PASSPHRASE"
#define DEFAULT_ROOT_PASS "KURER_ADMIN_ROOT_PASSPHRASE"
#define PATH_MAX_LEN      4096
#define DAY               86400
#define SKEW              KURER_ISSUANCE_SKEW
#define FILE_MAX          ((size_t)KURER_CRL_BYTES_MAX)
#define ROOT_CRL_DAYS     180 /* a root's list: renewed on the offline machine twice a year */

/* ---- the commands (one file each, or per small group) */
int cmd_root_init(int argc, char **argv);      /* root.c */
int cmd_authority_init(int argc, char **argv); /* authority.c */
int cmd_issue(int argc, char **argv);          /* issue.c */
int cmd_revoke(int argc, char **argv);         /* revoke.c */
int cmd_root_revoke(int argc, char **argv);    /* revoke.c */
int cmd_crl_renew(int argc, char **argv);      /* crl.c */
int cmd_verify(int argc, char **argv);         /* verify.c */
int cmd_show(int argc, char **argv);           /* show.c */
int cmd_log(int argc, char **argv);            /* log.c */
int cmd_publish(int argc, char **argv);        /* publish.c */
/* Their --help texts, which `kurer-admin GROUP --help` prints too. */
extern const char help_root_init[], help_root_revoke[], help_authority_init[], help_issue[],
    help_revoke[], help_crl_renew[], help_verify[], help_show[], help_log[], help_publish[];

/* ---- output.c: the one result of the command */
extern int g_json;            /* --json: stdout carries exactly one JSON object */
extern const char *g_command; /* "issue", "root init", ... */
extern kurer_json g_j;        /* the members of that object, after "ok" and "command" */

/* Records why the command is refused and returns rc (a kurer_err). The reason names files and
 * values but never a secret. */
__attribute__((format(printf, 2, 3))) int refuse(int rc, const char *fmt, ...);
/* Records a usage error and returns RC_USAGE. */
__attribute__((format(printf, 1, 2))) int usage_error(const char *fmt, ...);
/* Prints to stdout, unless --json. Values from files go through term(). */
__attribute__((format(printf, 1, 2))) void say(const char *fmt, ...);
/* The terminal-safe form of s (kurer_text_term) in one of a few rotating buffers: for say()
 * arguments that come from files (display names). */
const char *term(const char *s);
/* Members of the result object. */
void jstr(const char *k, const char *v);
void jint(const char *k, int64_t v);
void ju64(const char *k, uint64_t v);
void jbool(const char *k, int v);
/* The name of a file moved aside by --force, for the result's "replaced" array. */
void replaced(const char *path);
/* The exit status for rc; prints the reason and the JSON object. */
int emit(int rc);

/* "a DEVICE", "an AUTHORITY", "a ROOT". */
const char *role_a(int role);
const char *plural(size_t n, const char *one, const char *many);
void hex(char *out, const uint8_t *p, size_t n);
const char *fmt_time(char *buf, size_t n, int64_t t);

#define V           KURER_OPT_VALUE
#define NOPTS(opts) (sizeof(opts) / sizeof((opts)[0]))
/* A command's arguments: parsed against opts (with min_pos..max_pos positionals named
 * pos_name), --help printed (RC_HELP), --json noted. 0 to go on. */
int command_args(kurer_args *a, const kurer_opt *opts, size_t nopts, size_t min_pos, size_t max_pos,
                 const char *pos_name, const char *help, int argc, char **argv);
const char *opt(const kurer_args *a, const char *name);
int flag(const kurer_args *a, const char *name);
int need(const kurer_args *a, const char *name, const char **out);
/* --passphrase-env and --root-passphrase-env: the NAME of an environment variable. */
int opt_env(const kurer_args *a, const char *name, const char *def, const char **out);
int opt_days(const kurer_args *a, const char *name, uint64_t def, uint64_t *out);
int opt_level(const kurer_args *a, const char *name, kurer_level *out, int *given);
/* A revocation reason: the canonical names ("device-lost") and the proto spelling. */
int parse_reason(const char *s, kurer_revocation_reason *out);
/* The passphrase from envname or the terminal, in guarded memory (kurer/secret.h). */
int get_passphrase(const char *envname, const char *what, int is_new, kurer_secret *out);

/* ---- files.c: files, directories, locks, and what a file is */
int join(char *out, const char *dir, const char *name);
int read_file(const char *path, size_t max, uint8_t **d, size_t *n);
int write_refused(const char *path, int rc);
int write_file(const char *path, const void *d, size_t n, unsigned mode, int overwrite);
/* hint says what --force would do. */
int must_not_exist(const char *path, int force, const char *hint);
/* --force on init: path (if it exists) is renamed to path.replaced-<UTC time>, never deleted. */
int move_aside(const char *path, int64_t now);
int strip_slashes(char *out, const char *dir);
int check_dir_usable(const char *dir);
int check_out_path(const char *path);
int check_name(const char *name);
int make_dir(const char *dir);
/* DIR/.lock held from before the first read to after the last write (flock). */
int lock_dir(const char *dir, int *fdp);
int lock_existing(const char *dir, int *fdp);
void unlock_dir(int *fdp);
int same_dir(const char *a, const char *b);

typedef enum file_kind {
    FK_UNKNOWN = 0,
    FK_CERT,
    FK_CHAIN,
    FK_CSR,
    FK_CRL,
    FK_KEY,
    FK_LOG,
    FK_STATE,
} file_kind;

file_kind detect_kind(const uint8_t *d, size_t n);
/* A file that may be binary or armoured text (kurer/armor.h), by its first line: read,
 * dearmoured (at most max bytes then) and *armor set to its label (KURER_ARMOR_NONE for a
 * binary file). */
int read_input(const char *path, size_t max, uint8_t **d, size_t *n, kurer_armor_kind *armor);
/* KURER_EARMORLABEL (refused) if an armoured file's label says another kind than it holds. */
int armor_matches(const char *path, kurer_armor_kind armor, file_kind k);
/* The reason for a file that did not decode as want: another kind, or damage. */
int bad_file(const char *path, const uint8_t *d, size_t n, file_kind want, int rc);
int load_cert(const char *path, kurer_cert *c);
int load_chain_or_cert(const char *path, kurer_chain *ch, file_kind *kind);
int load_crl(const char *path, kurer_crl *crl, uint8_t **raw, size_t *raw_len);
/* The request, and (raw not NULL) its binary bytes, malloc'd: for its fingerprint. */
int load_csr(const char *path, kurer_csr *csr, uint8_t **raw, size_t *raw_len);
int validity_reason(const char *what, const kurer_cert *c, int rc);

/* ---- issuer.c: a root or authority directory, loaded and checked */
typedef struct issuer {
    const char *dir;
    int is_root;
    kurer_cert cert; /* root.crt or authority.crt */
    kurer_cert root;
    kurer_issuelog log;
    kurer_buf log_img; /* the log file as it is (and will be) */
    kurer_serial_state st;
    kurer_signing_key key;
    char key_path[PATH_MAX_LEN], crt_path[PATH_MAX_LEN], log_path[PATH_MAX_LEN];
    char serial_path[PATH_MAX_LEN], crl_path[PATH_MAX_LEN], root_path[PATH_MAX_LEN];
} issuer;

void issuer_release(issuer *is);
int issuer_paths(issuer *is, const char *dir, int is_root);
/* Loads and checks a directory's certificates, log and serial state (no private key). With
 * check_validity, the issuer must be inside its validity window now. */
int issuer_load(issuer *is, const char *dir, int is_root, int check_validity, int64_t now);
/* Opens the issuer's key with the passphrase from envname (kept in *keep if not NULL). */
int issuer_open_key(issuer *is, const char *envname, kurer_secret *keep);
int write_state(issuer *is, const kurer_serial_state *st);
/* Takes the next serial: the state file is advanced (and synced) before the serial is used. */
int reserve_serial(issuer *is, uint64_t *serial);
int log_append(issuer *is, kurer_log_entry *e);
/* Revocation lists: crl signed and encoded; the issuer's current one, checked against its log;
 * a new one written; the next one from old (with serial added unless 0). */
int crl_image(kurer_crl *crl, const issuer *is, kurer_buf *out);
int current_list(const issuer *is, kurer_crl *old);
int write_list(const issuer *is, kurer_crl *neu);
int next_list(const kurer_crl *old, uint64_t serial, kurer_revocation_reason reason, int64_t now,
              uint64_t days, kurer_crl *neu);
/* "revocation list of fm.dk is past its next update (DATE)" (of the root: "of root ID"). */
void stale_line(const kurer_crl *l, char *out, size_t n);

/* ---- replace.c: issue --replace, the device's current certificates superseded */
#define REPLACE_MAX 8
typedef struct replacement {
    kurer_log_entry old[REPLACE_MAX]; /* the ISSUE entries of the certificates superseded */
    size_t n;
    kurer_crl old_list, new_list; /* the list built on, and the one written */
} replacement;
/* The current certificates of subject/device_id from is's log, and the list a revocation would
 * build on (checked as revoke checks it). Nothing is written. */
int replacement_prepare(issuer *is, const char *subject, uint32_t device_id, int64_t now,
                        replacement *r);
/* Every certificate of r onto one new list (the next version), reason superseded, written; then
 * each REVOKE entry appended to the log. The key must be open. */
int replacement_commit(issuer *is, replacement *r, int64_t now, uint64_t crl_days);
void replacement_release(replacement *r);
/* ---- issue.c: the steps of an issuance, for issue and approve */
/* kurer_issuance_check, its refusal said naming csr_name. */
int issue_check(issuer *is, const kurer_csr *csr, const char *csr_name,
                const kurer_issuance_params *p, kurer_cert_body *body, int *clamped);
/* The serial reserved (synced), the certificate signed with is->key (opened) into chain. */
int issue_sign(issuer *is, kurer_cert_body *body, int64_t now, kurer_chain *chain,
               uint64_t *serial);
/* Prints the request's comparison code and fingerprint; with want (--code), refuses another. */
int show_codes(const kurer_csr *csr, const uint8_t *raw, size_t raw_len, const char *want);

/* ---- invite.c, pending.c: online enrolment through the relay (docs/admin.md §3a) */
int cmd_invite(int argc, char **argv);  /* invite.c */
int cmd_pending(int argc, char **argv); /* pending.c */
int cmd_approve(int argc, char **argv); /* pending.c */
int cmd_reject(int argc, char **argv);  /* pending.c */
extern const char help_invite[], help_pending[], help_approve[], help_reject[];
/* --relay-key: 64 hex digits, or the path of a relay.pub (publish.c). */
int relay_key_arg(const char *v, uint8_t pk[32]);
/* AUTHDIR/invites/ID: what the authority keeps of an invitation (mode 0600): never the code,
 * the key that checks a request's binding to it (kurer/invite.h). */
typedef struct invite_record {
    uint8_t id[KURER_ENROL_ID_LEN];
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
    int64_t created_at, expires_at;
    uint8_t mac_key[KURER_ENROL_MAC_LEN];
} invite_record;
int invite_record_write(const issuer *is, const invite_record *r);
/* KURER_ENOENT if this authority made no such invitation; KURER_ECORRUPT for a damaged one. */
int invite_record_read(const issuer *is, const uint8_t id[KURER_ENROL_ID_LEN], invite_record *r);
/* AUTHDIR/invites/ID.chain: the chain issued for it (kept to send again). */
int invite_chain_path(const issuer *is, const uint8_t id[KURER_ENROL_ID_LEN], char *out);
/* The relay's verdict (rep->error) or the transport's failure (rc), said; 0 if neither. */
int enrol_relay_refused(const char *relay, int rc, const kurer_enrol_reply *rep, const char *what);

#endif
