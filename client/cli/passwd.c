/* kurer passwd: a new passphrase for the home (the store re-encrypted). */
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

static const char help_passwd[] =
    "usage: kurer passwd --home H [--kdf-min] [--json]\n"
    "\n"
    "Changes the passphrase of the home: the store is re-encrypted under the new one (crash-safe:\n"
    "afterwards exactly one of the two opens it). The current passphrase comes from\n"
    "" PASS_ENV ", the new one from " NEW_PASS_ENV " (or no-echo prompts, the new one twice).\n"
    "\n"
    "  --kdf-min   accepted for symmetry with init; the home keeps its Argon2id parameters\n";

int cmd_passwd(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"kdf-min", 0, 0}};
    kurer_args a;
    const char *home;
    kurer *k = NULL;
    kurer_secret pw;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_passwd, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    char what[300];
    snprintf(what, sizeof(what), "the device home %s (new)", home);
    if ((rc = get_passphrase(NEW_PASS_ENV, what, 1, &pw)) == 0) {
        rc = kurer_passwd(k, pw.p, pw.n, NULL);
        kurer_secret_free(&pw);
        if (rc != 0)
            refuse(rc, "passphrase not changed: %s", kurer_strerror(rc));
        else if (g_json) {
            jline o;
            jline_ok(&o);
            jline_end(&o);
        } else
            printf("passphrase changed\n");
    }
    kurer_close(k);
    return rc;
}
