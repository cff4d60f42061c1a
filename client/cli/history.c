/* kurer history: the stored messages, oldest first. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

static const char help_history[] =
    "usage: kurer history --home H [--with USER@AUTH] [--json]\n"
    "\n"
    "Prints the stored messages, oldest first, each with its level (quarantined ones without\n"
    "their text). Outgoing messages show where they went and, until the relay accepted them,\n"
    "their state (pending, failed). --json prints JSON lines: one object per message, one per\n"
    "line (time, sent_at, from, device or to, level, state, text, reason), not one array.\n"
    "A peer device's key change is shown where it happened, as a line of its own:\n"
    "  <time> --- <user> device <N> has a new key: certificate <serial> issued by <authority>\n"
    "(with --json an object with \"event\":\"key_change\").\n";

/* The key changes, to be shown among the messages where they happened. */
typedef struct change_list {
    kurer_key_change *v;
    char (*strings)[4][KURER_SUBJECT_MAX + 1]; /* user, issuer, old issuer, fingerprint */
    size_t n, cap, next;
} change_list;

typedef struct history_ctx {
    const char *me;
    change_list changes;
} history_ctx;

static int keep_change(void *ud, const kurer_key_change *c)
{
    change_list *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        kurer_key_change *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return KURER_ENOMEM;
        l->v = v;
        void *st = realloc(l->strings, cap * sizeof(*l->strings));
        if (st == NULL)
            return KURER_ENOMEM;
        l->strings = st;
        l->cap = cap;
    }
    char(*s)[KURER_SUBJECT_MAX + 1] = l->strings[l->n];
    snprintf(s[0], sizeof(s[0]), "%s", c->user);
    snprintf(s[1], sizeof(s[1]), "%s", c->issuer);
    snprintf(s[2], sizeof(s[2]), "%s", c->old_issuer);
    snprintf(s[3], sizeof(s[3]), "%s", c->key_fingerprint);
    l->v[l->n] = *c;
    l->n++;
    return 0;
}

/* The key changes noticed before ms (Unix ms; INT64_MAX: all the rest). */
static void changes_until(change_list *l, int64_t ms)
{
    for (; l->next < l->n && l->v[l->next].at * 1000 <= ms; l->next++) {
        kurer_key_change c = l->v[l->next];
        char(*s)[KURER_SUBJECT_MAX + 1] = l->strings[l->next];
        char t[64], prefix[80];
        c.user = s[0];
        c.issuer = s[1];
        c.old_issuer = s[2];
        c.key_fingerprint = s[3];
        c.old_key_fingerprint = "";
        fmt_ms(t, sizeof(t), c.at * 1000);
        snprintf(prefix, sizeof(prefix), "%s --- ", t);
        show_key_change(&c, prefix);
    }
}

static int history_row(void *ud, const kurer_message *m)
{
    history_ctx *h = ud;
    changes_until(&h->changes, m->received_at);
    show_message(h->me, m);
    return 0;
}

int cmd_history(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"with", V, 0}};
    kurer_args a;
    const char *home, *with;
    kurer *k = NULL;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_history, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    with = opt(&a, "with");
    if (with != NULL && (rc = user_arg("--with", with)) != 0)
        return rc;
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    history_ctx h;
    memset(&h, 0, sizeof(h));
    h.me = kurer_own_user(k);
    rc = kurer_key_changes(k, with, keep_change, &h.changes);
    if (rc == 0)
        rc = kurer_history(k, with, history_row, &h);
    if (rc == 0)
        changes_until(&h.changes, INT64_MAX);
    if (rc != 0)
        refuse(rc, "cannot read the history: %s", kurer_strerror(rc));
    free(h.changes.v);
    free(h.changes.strings);
    kurer_close(k);
    return rc;
}
