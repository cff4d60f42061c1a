/* kurer send: a message with a classification level, through the outbox. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rpc.h"
#include "kurer/crypto.h"
#include "kurer/text.h"
#include "kurer/util.h"

/* Text read from standard input or a file (wiped and freed by cmd_send). */
static char *g_read_text;
static size_t g_read_len;

/* Reads the message text from f (at most KURER_TEXT_MAX bytes; one final newline dropped). */
static int read_text(FILE *f, const char *what)
{
    g_read_text = malloc(KURER_TEXT_MAX + 2);
    if (g_read_text == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    size_t n = fread(g_read_text, 1, KURER_TEXT_MAX + 2, f);
    g_read_len = KURER_TEXT_MAX + 2;
    if (ferror(f))
        return refuse(KURER_EIO, "cannot read the message from %s", what);
    if (n > 0 && g_read_text[n - 1] == '\n')
        n--;
    if (n > KURER_TEXT_MAX)
        return refuse(KURER_ELIMIT, "message too long: at most %d bytes (%s has more)",
                      KURER_TEXT_MAX, what);
    if (memchr(g_read_text, '\0', n) != NULL)
        return refuse(KURER_EMALFORMED, "the message from %s holds a NUL byte", what);
    g_read_text[n] = '\0';
    return 0;
}

/* TEXT as given: "-" reads standard input; --text-file PATH reads that file instead. */
static int text_source(const char *arg, const char *file, const char **text)
{
    int rc = 0;
    if (file != NULL) {
        FILE *f = fopen(file, "re");
        if (f == NULL)
            return refuse(KURER_ENOENT, "cannot open %s: %s", file, strerror(errno));
        rc = read_text(f, file);
        fclose(f);
    } else if (strcmp(arg, "-") == 0) {
        rc = read_text(stdin, "standard input");
    } else {
        *text = arg;
        return 0;
    }
    if (rc == 0)
        *text = g_read_text;
    return rc;
}

static const char help_send[] =
    "usage: kurer send --home H (--to USER@AUTH | --group ID) [--level LEVEL] [--timeout S]\n"
    "                  [--json] [--file PATH]... [--text-file PATH] [TEXT]\n"
    "\n"
    "Sends TEXT to every device of USER@AUTH (and a sync copy to your own other devices). Exits\n"
    "0 only once the relay has accepted it for every device; 1 with the reason if it was not\n"
    "queued (naming the certificate that refuses a classification level); 3 if it is queued\n"
    "in the outbox but the relay has not accepted it yet (cannot be reached, timed out): it\n"
    "will be sent on the next connection (kurer recv or kurer send); do not send it again.\n"
    "TEXT must be valid UTF-8, not empty, and at most " KURER_TEXT_MAX_S " bytes; with TEXT '-'\n"
    "it is read from standard input, with --text-file PATH from that file (one final newline\n"
    "is dropped; a NUL byte is refused). One request carries the message for every device (the\n"
    "recipient's and your own other devices), so the limit shrinks with their number (two\n"
    "devices: about half); a text too large for them is refused before it is queued, saying\n"
    "the limit. Sending to yourself is refused: your other devices get sync copies.\n"
    "Each --file PATH (up to 32; TEXT is then optional) is attached: sealed on this device\n"
    "under a key of its own, uploaded to the relay once (resumed after a lost connection or a\n"
    "relay restart), and named in the message by the last part of PATH. Files need the relay:\n"
    "nothing is queued without it.\n"
    "With the relay out of reach, a message to someone this device has written to before is\n"
    "queued for the devices it knows (exit 3); a first message needs the relay. kurer outbox\n"
    "lists what waits, retries and cancels.\n"
    "A recipient device re-enrolled with new keys is no failure: a line of its own says so,\n"
    "once: USER device N has a new key: certificate SERIAL issued by AUTHORITY.\n"
    "\n"
    "  --to USER@AUTH     the recipient\n"
    "  --group ID         instead: every member device of group ID (kurer group), one\n"
    "                     ciphertext under your sender key; refused above the group's\n"
    "                     ceiling, naming the member whose certificate refuses; a file is\n"
    "                     uploaded once for every member device\n"
    "  --level LEVEL      UNCLASSIFIED (default), RESTRICTED or CONFIDENTIAL\n"
    "  --timeout S        give up after S seconds (default 30)\n"
    "  --file PATH        attach the file PATH (repeatable, up to 32)\n"
    "  --text-file PATH   the message text from PATH (then no TEXT)\n"
    "  --json             print the result as one JSON object (a key change comes first,\n"
    "                     a line of its own with \"event\":\"key_change\")\n"
    "\n"
    "Test only: with " HOLD_ENV "=queued the command stops for good after the message is\n"
    "committed to the outbox and before anything is sent (crash tests kill it there); with\n"
    "" HOLD_ENV "=queued-stop it stops itself there (SIGSTOP) and goes on after SIGCONT.\n";

#define FILES_MAX 32 /* KURER_ATTACHMENTS_MAX */

/* The files to attach (absolute paths: the daemon may run the send), freed by cmd_send. */
static char *g_files[FILES_MAX];
static size_t g_n_files;

static int file_args(const kurer_args *a)
{
    size_t n = kurer_args_count(a, "file");
    for (size_t i = 0; i < n; i++) {
        const char *p = kurer_args_nth(a, "file", i);
        char *abs = realpath(p, NULL);
        if (abs == NULL)
            return refuse(errno == ENOENT ? KURER_ENOENT : KURER_EIO, "cannot attach %s: %s", p,
                          strerror(errno));
        g_files[g_n_files++] = abs;
    }
    return 0;
}

/* The options and the text; usage errors say what was meant. */
static int send_args(int argc, char **argv, const char **home, const char **to, int *level,
                     int *timeout, const char **text, const char **group)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0},    {"json", 0, 0},      {"home", V, 0},
        {"to", V, 0},      {"group", V, 0},     {"level", V, 0},
        {"timeout", V, 0}, {"text-file", V, 0}, {"file", V, FILES_MAX}};
    kurer_args a;
    int rc = command_args(&a, opts, NOPTS(opts), 0, 1, "TEXT", help_send, argc, argv);
    int files = rc == 0 && kurer_args_count(&a, "file") > 0;
    int from_file = opt(&a, "text-file") != NULL;
    int pos_wrong = a.error == KURER_ARGS_TOO_MANY || a.error == KURER_ARGS_TOO_FEW ||
                    (rc == 0 && a.npos == 1 && from_file) ||
                    (rc == 0 && a.npos == 0 && !from_file && !files);
    if (rc != 0 && !pos_wrong)
        return rc;
    if (pos_wrong && flag(&a, "help")) {
        fputs(help_send, stdout);
        return RC_HELP;
    }
    if ((rc = need(&a, "home", home)) || (rc = opt_seconds(&a, "timeout", NET_TIMEOUT, timeout)))
        return rc;
    *to = opt(&a, "to");
    *group = opt(&a, "group");
    if (*group != NULL && *to != NULL)
        return usage_error("send goes --to a user or to a --group, not both");
    if (*group != NULL && **group == '\0')
        return usage_error("--group needs the group's id (kurer group list)");
    if (*group == NULL && (*to == NULL || **to == '\0'))
        return usage_error("missing --to USER@AUTH%s",
                           a.npos >= 1 && kurer_user_check(a.pos[0]) == 0
                               ? " (the recipient goes after --to; the text is the one argument)"
                               : "");
    if (opt(&a, "level") != NULL && (rc = parse_level(opt(&a, "level"), level)) != 0)
        return rc;
    if (pos_wrong)
        return usage_error(from_file && a.npos > 0
                               ? "send takes the text from --text-file or as an argument, not both"
                               : "send needs the text of the message as one argument (quote it), "
                                 "'-' for standard input, --text-file PATH, or a --file PATH to "
                                 "attach");
    if ((*group == NULL && (rc = user_arg("--to", *to)) != 0) || (rc = file_args(&a)) != 0)
        return rc;
    if (files && a.npos == 0 && !from_file) {
        *text = ""; /* files alone */
        return 0;
    }
    if ((rc = text_source(a.npos == 1 ? a.pos[0] : NULL, opt(&a, "text-file"), text)) != 0)
        return rc;
    return text_check(*text);
}

/* Committed to the outbox, not accepted: it goes out with the next connection. Saying "not
 * sent" here makes people send it again. data is the error's (name: why; message_id). */
static int queued_only(json_t *data, const char *to, int level)
{
    const char *name = json_string_value(json_object_get(data, "name"));
    long long id = (long long)json_integer_value(json_object_get(data, "message_id"));
    if (g_json) {
        jline o;
        jline_begin(&o);
        kurer_json_kv_bool(&o.j, "ok", 0);
        kurer_json_kv_str(&o.j, "command", "send");
        kurer_json_kv_bool(&o.j, "queued", 1);
        kurer_json_kv_int(&o.j, "message_id", id);
        kurer_json_kv_str(&o.j, "to", to);
        kurer_json_kv_str(&o.j, "level", kurer_level_name(level));
        kurer_json_kv_str(&o.j, "error", reason());
        kurer_json_kv_str(&o.j, "code", name != NULL ? name : "ETIMEOUT");
        jline_end(&o);
    }
    fprintf(stderr,
            "kurer: queued, not yet accepted by the relay (%s): it will be sent on the next "
            "connection (kurer recv or kurer send); kurer outbox lists it as message %lld\n",
            reason(), id);
    clear_reason();
    return RC_QUEUED;
}

static int cmd_send_text(int argc, char **argv);

int cmd_send(int argc, char **argv)
{
    int rc = cmd_send_text(argc, argv);
    for (size_t i = 0; i < g_n_files; i++)
        free(g_files[i]);
    g_n_files = 0;
    if (g_read_text != NULL) { /* the plaintext read from stdin or a file */
        kurer_memzero(g_read_text, g_read_len);
        free(g_read_text);
        g_read_text = NULL;
    }
    return rc;
}

/* The method send (rpc_messages.c), here or in the daemon; its result printed. A peer's key
 * change noticed on the way is said once, a line of its own (key_changes_said). */
static int cmd_send_text(int argc, char **argv)
{
    const char *home = NULL, *to = NULL, *text = NULL, *group = NULL;
    int level = KURER_LEVEL_UNCLASSIFIED, timeout = NET_TIMEOUT, rc;
    if ((rc = send_args(argc, argv, &home, &to, &level, &timeout, &text, &group)) != 0)
        return rc;
    json_t *params =
        json_pack("{s:s,s:s,s:s,s:i}", group != NULL ? "group" : "to", group != NULL ? group : to,
                  "level", kurer_level_name(level), "text", text, "timeout", timeout);
    if (group != NULL)
        to = group; /* what the lines below name */
    cli_target t;
    if (params == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    if (g_n_files > 0) {
        json_t *files = json_array();
        for (size_t i = 0; files != NULL && i < g_n_files; i++)
            json_array_append_new(files, json_string(g_files[i]));
        if (files == NULL || json_object_set_new(params, "files", files) != 0) {
            json_decref(params);
            return refuse(KURER_ENOMEM, "out of memory");
        }
    }
    if ((rc = cli_open(home, &t)) != 0) {
        json_decref(params);
        return rc;
    }
    json_t *res = NULL;
    rc = key_changes_said(&t);
    if (rc == 0)
        rc = cli_run(&t, "send", params, &res);
    else
        json_decref(params);
    cli_close(&t);
    if (rc == RC_QUEUED) {
        rc = queued_only(res, to, level);
    } else if (rc == 0 && g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_kv_int(&o.j, "message_id",
                          json_integer_value(json_object_get(res, "message_id")));
        kurer_json_kv_str(&o.j, group != NULL ? "group" : "to", to);
        kurer_json_kv_str(&o.j, "level", kurer_level_name(level));
        jline_end(&o);
    } else if (rc == 0 && g_n_files > 0) {
        printf("sent to %s%s [%s] with %zu file%s\n", group != NULL ? "group " : "", to,
               kurer_level_name(level), g_n_files, g_n_files == 1 ? "" : "s");
    } else if (rc == 0) {
        printf("sent to %s%s [%s]\n", group != NULL ? "group " : "", to, kurer_level_name(level));
    }
    json_decref(res);
    return rc;
}
