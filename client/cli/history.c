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
    "line (time, sent_at, from, device or to, level, state, text, reason), not one array.\n";

static int history_row(void *ud, const kurer_message *m)
{
    show_message(ud, m);
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
    rc = kurer_history(k, with, history_row, (void *)(uintptr_t)kurer_own_user(k));
    if (rc != 0)
        refuse(rc, "cannot read the history: %s", kurer_strerror(rc));
    kurer_close(k);
    return rc;
}
