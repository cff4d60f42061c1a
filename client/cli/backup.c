/* kurer backup and kurer restore: an encrypted copy of the home, and a home made from one. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rpc.h"

static const char help_backup[] =
    "usage: kurer backup --home H --out FILE [--json]\n"
    "\n"
    "Writes an encrypted copy of the home to FILE: the store under the home's own key, with the\n"
    "passphrase's salt and Argon2id parameters (no secret), so FILE opens only with the home's\n"
    "passphrase (from " PASS_ENV " or a no-echo prompt). The home must not be held by another\n"
    "process (a running `recv --wait`): stop it first; while kurer daemon holds it, the daemon\n"
    "writes the copy (no passphrase asked).\n";

static const char help_restore[] =
    "usage: kurer restore --home NEWH [--json] FILE\n"
    "\n"
    "Makes the home NEWH (missing or empty) from the backup FILE, with the passphrase of the\n"
    "backed-up home. The restored home becomes this device at the relay: the home it was made\n"
    "from is refused from its next connection on (\"this device's identity is in use by another\n"
    "copy of this home\"). Never run two copies of one home: see docs/client.md.\n";

/* The method backup (rpc_home.c), here or in the daemon, on FILE made absolute (the daemon's
 * working folder is not ours); the refusal is worded with FILE as given. */
int cmd_backup(int argc, char **argv)
{
    static const kurer_opt opts[] = {{"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"out", V, 0}};
    kurer_args a;
    const char *home, *out;
    char cwd[PATH_MAX], abs[2 * PATH_MAX + 2];
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_backup, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) != 0 || (rc = need(&a, "out", &out)) != 0)
        return rc;
    if (out[0] == '/')
        snprintf(abs, sizeof(abs), "%s", out);
    else if (getcwd(cwd, sizeof(cwd)) == NULL ||
             (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, out) >= sizeof(abs))
        return refuse(KURER_ELIMIT, "backup not written: %s: the path is too long", out);
    json_t *r = NULL, *params = json_pack("{s:s}", "file", abs);
    cli_target t;
    if (params == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    if ((rc = cli_open(home, &t)) != 0) {
        json_decref(params);
        return rc; /* said: the home held, a wrong passphrase, ... */
    }
    rc = cli_run(&t, "backup", params, &r);
    json_decref(r);
    cli_close(&t);
    if (rc != 0 && rc != RC_USAGE)
        return refuse(rc, "backup not written: %s: %s", out, kurer_strerror(rc));
    if (rc != 0)
        return rc;
    if (g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_key(&o.j, "file");
        kurer_json_str(&o.j, out);
        jline_end(&o);
    } else {
        printf("backup of %s written to %s (encrypted; opens with the home's passphrase)\n", home,
               out);
    }
    return 0;
}

int cmd_restore(int argc, char **argv)
{
    static const kurer_opt opts[] = {{"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}};
    kurer_args a;
    const char *home;
    kurer_secret pw;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 1, 1, "FILE", help_restore, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    const char *file = a.pos[0];
    char what[300];
    snprintf(what, sizeof(what), "the backed-up home (%s)", file);
    if ((rc = get_passphrase(PASS_ENV, what, 0, &pw)) != 0)
        return rc;
    rc = kurer_restore(home, file, pw.p, pw.n, NULL);
    kurer_secret_free(&pw);
    if (rc == KURER_EEXIST)
        refuse(rc, "%s is not empty: restore only into a new or empty folder", home);
    else if (rc == KURER_EMALFORMED)
        refuse(rc, "%s is not a backup of a kurer home", file);
    else if (rc == KURER_EPASSPHRASE)
        refuse(rc, "%s does not open with this passphrase (nothing restored)", file);
    else if (rc != 0)
        refuse(rc, "not restored: %s", kurer_strerror(rc));
    else if (g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_key(&o.j, "home");
        kurer_json_str(&o.j, home);
        jline_end(&o);
    } else
        printf("restored %s into %s (a new instance of this device: do not use the old copy "
               "again)\n",
               file, home);
    return rc;
}
