/* kurer recv: new messages, one line each (show_message, which history uses too). */
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

typedef struct show_ctx {
    const char *me;
    int hold; /* KURER_TEST_HOLD=committed: stop at the second message, committed, not shown */
    int shown;
} show_ctx;

static const char *state_name(kurer_message_state s)
{
    switch (s) {
    case KURER_MESSAGE_RECEIVED:
        return "received";
    case KURER_MESSAGE_QUARANTINED:
        return "quarantined";
    case KURER_MESSAGE_PENDING:
        return "pending";
    case KURER_MESSAGE_SENT:
        return "sent";
    default:
        return "failed";
    }
}

/* One message as a JSON line (JSON lines: one object per message). */
static void message_json(const char *me, const kurer_message *m, const char *t)
{
    jline o;
    jline_begin(&o);
    kurer_json_kv_str(&o.j, "time", t);
    kurer_json_kv_int(&o.j, "sent_at", m->sent_at);
    kurer_json_kv_str(&o.j, "from", m->outgoing ? me : m->peer);
    if (m->outgoing)
        kurer_json_kv_str(&o.j, "to", m->peer);
    else
        kurer_json_kv_uint(&o.j, "device", m->peer_device);
    if (m->group[0] != '\0')
        kurer_json_kv_str(&o.j, "group", m->group);
    kurer_json_kv_str(&o.j, "level", kurer_level_name(m->level));
    kurer_json_kv_str(&o.j, "state", state_name(m->state));
    if (m->state == KURER_MESSAGE_QUARANTINED || m->state == KURER_MESSAGE_FAILED)
        kurer_json_kv_str(&o.j, "reason", kurer_err_name(m->reason));
    if (m->state != KURER_MESSAGE_QUARANTINED)
        kurer_json_kv_str(&o.j, "text", m->body);
    receipts_json(&o, m);
    jline_end(&o);
}

/* A peer's text reaches the terminal only in its one-line, safe form (kurer/text.h). */
void show_message(const char *me, const kurer_message *m)
{
    char t[64];
    fmt_ms(t, sizeof(t), m->sent_at);
    const char *level = kurer_level_name(m->level);
    if (g_json) {
        message_json(me, m, t);
        return;
    }
    if (m->group[0] != '\0' && m->outgoing)
        printf("%s %s -> group %.16s [%s] ", t, me, m->group, level);
    else if (m->group[0] != '\0')
        printf("%s %s in group %.16s [%s] ", t, m->peer, m->group, level);
    else if (m->outgoing)
        printf("%s %s -> %s [%s] ", t, me, m->peer, level);
    else
        printf("%s %s [%s] ", t, m->peer, level);
    if (m->timer_change)
        printf("--- disappearing messages %s", m->expire_timer > 0 ? "on" : "off");
    else if (m->state == KURER_MESSAGE_QUARANTINED)
        printf("(quarantined: %s; not shown)", kurer_strerror(m->reason));
    else
        (void)kurer_text_fput_term(stdout, m->body);
    if (m->outgoing && m->state != KURER_MESSAGE_SENT)
        printf(" (%s)", state_name(m->state));
    receipts_text(m);
    printf("\n");
    fflush(stdout);
}

void show_attachment(const char *name, uint64_t size, const char *content_type, const char *saved)
{
    if (g_json) {
        jline o;
        jline_begin(&o);
        kurer_json_kv_str(&o.j, "event", "attachment");
        kurer_json_kv_str(&o.j, "name", name);
        kurer_json_kv_uint(&o.j, "size", size);
        kurer_json_kv_str(&o.j, "content_type", content_type);
        if (saved[0] != '\0')
            kurer_json_kv_str(&o.j, "saved", saved);
        jline_end(&o);
        return;
    }
    printf("    attachment: ");
    (void)kurer_text_fput_term(stdout, name);
    printf(" (%llu bytes)", (unsigned long long)size);
    if (saved[0] != '\0') {
        printf(" saved ");
        (void)kurer_text_fput_term(stdout, saved);
    }
    printf("\n");
    fflush(stdout);
}

/* Envelope ids of the messages shown that may carry attachments (recv --save-dir). */
#define SAVE_MAX 4096
typedef struct save_list {
    uint8_t (*ids)[16];
    size_t n, cap;
} save_list;

static save_list g_save;

static void on_message(void *ud, const kurer_message *m)
{
    show_ctx *c = ud;
    if (m->state != KURER_MESSAGE_QUARANTINED && g_save.n < SAVE_MAX) {
        if (g_save.n == g_save.cap) {
            size_t cap = g_save.cap ? g_save.cap * 2 : 64;
            void *p = realloc(g_save.ids, cap * sizeof(*g_save.ids));
            if (p != NULL) {
                g_save.ids = p;
                g_save.cap = cap;
            }
        }
        if (g_save.n < g_save.cap)
            memcpy(g_save.ids[g_save.n++], m->id, 16);
    }
    if (c->hold && c->shown > 0) {
        /* Test-only (KURER_TEST_HOLD=committed): this message is committed (and maybe acked),
         * the first one was shown and marked reported, this one is not. A test kills the
         * process here: the next start must show this one, and never the first again. */
        fprintf(stderr, "kurer: holding after commit (test)\n");
        for (;;)
            pause();
    }
    show_message(c->me, m);
    c->shown++;
}

static void on_refused(void *ud, const char *from, uint32_t device_id, int err)
{
    char who[KURER_TEXT_TERM_MAX(KURER_SUBJECT_MAX)];
    (void)ud;
    fprintf(stderr, "kurer: dropped a message from %s device %u: %s\n",
            kurer_text_term(who, sizeof(who), from), device_id, kurer_strerror(err));
}

static const char help_recv[] =
    "usage: kurer recv --home H [--wait SECONDS] [--save-dir DIR] [--json]\n"
    "\n"
    "Connects, receives every new message and prints one line each:\n"
    "  <time> <from> [<LEVEL>] <text>\n"
    "(a quarantined message, above your clearance or the sender's, is shown as quarantined with\n"
    "its level, never its text; --json prints JSON lines: one object per message, one per\n"
    "line). Without --wait (or with --wait 0) it exits 0 when the relay's queue is empty;\n"
    "with --wait SECONDS it keeps receiving for that long, and reconnects (backoff 0.5 s\n"
    "doubling to 10 s) whenever the relay restarts or the connection drops, until the wait\n"
    "ends. While it waits it holds the home: other kurer commands on it are refused. Anything\n"
    "left in the outbox is sent too. A peer device's key change (re-enrolment with new keys)\n"
    "is said once, in a line of its own: USER device N has a new key: certificate SERIAL\n"
    "issued by AUTHORITY. When kurer daemon holds the home, recv is a subscription to it\n"
    "instead (the same lines and exit status), and other commands work beside it.\n"
    "The attachments of the messages received follow them, a line each: attachment: NAME\n"
    "(SIZE bytes). With --save-dir DIR (an existing folder) each is downloaded once the\n"
    "messages are in, checked (its digest and every chunk; one altered, missing or reordered\n"
    "is refused and nothing of it kept) and saved in DIR with mode 0600, never over an existing\n"
    "file (NAME-1.EXT, NAME-2.EXT, ...) and never outside DIR: the sender's file name loses\n"
    "its directories, and one that starts with '.', holds a control character or a backslash,\n"
    "is not UTF-8 or is longer than 200 bytes is saved as 'attachment'. The line then ends\n"
    "with 'saved PATH'. A refused attachment is said on standard error and the exit status is\n"
    "1. Not while kurer daemon holds the home (the daemon's subscription saves nothing).\n"
    "\n"
    "Test only: with " HOLD_ENV "=committed the command stops for good when the second message\n"
    "is given to it: committed, not printed (crash tests kill it there; the next recv prints "
    "it).\n";

/* recv --wait: receives for wait seconds; a connection that cannot be made or is lost (the
 * relay restarts, the network drops, another process took over the device) is tried again
 * with backoff (0.5 s doubling to 10 s) until the wait ends. 0 if the last attempt was
 * connected at the end of the wait. */
static int recv_wait(kurer *k, int wait)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t end = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000 + (int64_t)wait * 1000;
    int64_t backoff = 500;
    int rc = 0, said = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t left = end - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (left <= 0)
            return rc;
        rc = kurer_poll(k, (int)left, 0);
        if (rc == 0 && kurer_connected(k))
            return 0; /* the wait ended connected */
        if (rc == 0)
            rc = KURER_ECLOSED;
        if (!transport_error(rc))
            return rc;
        kurer_disconnect(k);
        if (kurer_connected(k) == 0 && !said) {
            net_error(rc, "connection to the relay lost");
            fprintf(stderr, "kurer: %s; reconnecting until the wait ends\n", reason());
            clear_reason();
            said = 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = end - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        int64_t nap = backoff < left ? backoff : left;
        if (nap > 0) {
            struct timespec d = {(time_t)(nap / 1000), (long)(nap % 1000) * 1000000};
            nanosleep(&d, NULL);
        }
        backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
    }
}

/* An attachment as listed (kurer_message_attachments), copied: the save runs after the
 * listing, which holds the home. */
typedef struct att_copy {
    size_t index;
    uint64_t size;
    char name[256], type[129], saved[4097];
} att_copy;

typedef struct att_list {
    att_copy a[32];
    size_t n;
} att_list;

static int copy_att(void *ud, const kurer_attachment_info *a)
{
    att_list *l = ud;
    if (l->n == sizeof(l->a) / sizeof(l->a[0]))
        return 0;
    att_copy *c = &l->a[l->n++];
    c->index = a->index;
    c->size = a->size;
    snprintf(c->name, sizeof(c->name), "%s", a->file_name);
    snprintf(c->type, sizeof(c->type), "%s", a->content_type);
    snprintf(c->saved, sizeof(c->saved), "%s", a->saved_path);
    return 0;
}

/* One attachment of a received message, downloaded, checked and saved (or refused). */
static int save_one(kurer *k, const uint8_t *id, const att_copy *a, const char *dir)
{
    char path[4200];
    if (dir == NULL || a->saved[0] != '\0') { /* not asked, or saved before */
        show_attachment(a->name, a->size, a->type, a->saved);
        return 0;
    }
    int rc =
        kurer_attachment_save(k, id, a->index, dir, NET_TIMEOUT * 1000 * 10, path, sizeof(path));
    if (rc == 0) {
        show_attachment(a->name, a->size, a->type, path);
        return 0;
    }
    char name[KURER_TEXT_TERM_MAX(255)];
    fprintf(stderr, "kurer: attachment %s (%llu bytes) not saved: %s (%s)\n",
            kurer_text_term(name, sizeof(name), a->name), (unsigned long long)a->size,
            kurer_strerror(rc), kurer_err_name(rc));
    return rc;
}

/* The attachments of the messages shown, saved in dir (NULL: only listed). 0, or the last
 * refusal. */
static int save_attachments(kurer *k, const char *dir)
{
    int failed = 0;
    att_list *l = malloc(sizeof(*l));
    if (l == NULL)
        return KURER_ENOMEM;
    for (size_t i = 0; i < g_save.n; i++) {
        l->n = 0;
        int rc = kurer_message_attachments(k, g_save.ids[i], copy_att, l);
        if (rc != 0 && rc != KURER_ENOTFOUND)
            failed = rc;
        for (size_t j = 0; rc == 0 && j < l->n; j++)
            if ((rc = save_one(k, g_save.ids[i], &l->a[j], dir)) != 0)
                failed = rc;
    }
    free(l);
    free(g_save.ids);
    memset(&g_save, 0, sizeof(g_save));
    return failed;
}

int cmd_recv(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"wait", V, 0}, {"save-dir", V, 0}};
    kurer_args a;
    const char *home, *save_dir;
    int wait = 0, rc;
    kurer *k = NULL;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_recv, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) || (rc = opt_seconds(&a, "wait", 0, &wait)))
        return rc;
    save_dir = opt(&a, "save-dir");
    struct stat sb;
    if (save_dir != NULL && (stat(save_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        return refuse(KURER_ENOENT, "--save-dir %s: not a folder", save_dir);
    if (wait > 0)
        g_lock_as = "recv --wait"; /* others are refused at once, not made to wait */
    cli_target t;
    if ((rc = cli_open(home, &t)) != 0)
        return rc;
    if (t.k == NULL && save_dir != NULL) {
        cli_close(&t);
        return refuse(KURER_EBUSY, "--save-dir needs the home: kurer daemon holds it (stop it, "
                                   "or save without it)");
    }
    if (t.k == NULL) { /* a daemon holds the home: its subscription (recv_daemon.c) */
        rc = recv_daemon(&t, wait);
        cli_close(&t);
        return rc;
    }
    k = t.k;
    const char *hold = getenv(HOLD_ENV);
    show_ctx c = {kurer_own_user(k), hold != NULL && strcmp(hold, "committed") == 0, 0};
    kurer_events ev = {.on_message = on_message,
                       .on_refused = on_refused,
                       .on_key_change = on_key_change,
                       .ud = &c};
    kurer_set_events(k, &ev);
    if (wait > 0)
        rc = recv_wait(k, wait);
    else /* no --wait, or --wait 0: what is queued now */
        rc = kurer_poll(k, NET_TIMEOUT * 1000, KURER_POLL_UNTIL_EMPTY);
    if (rc != 0)
        net_error(rc, "receiving stopped");
    if (rc == 0 && (rc = save_attachments(k, save_dir)) != 0)
        refuse(rc, "an attachment was not saved");
    free(g_save.ids);
    memset(&g_save, 0, sizeof(g_save));
    kurer_disconnect(k);
    kurer_close(k);
    return rc;
}
