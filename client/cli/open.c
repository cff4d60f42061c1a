/* kurer: one process per home (its lock), and the home opened with its passphrase. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kurer/util.h"

#define LOCK_WAIT 30 /* seconds a short command waits for another kurer on the same home */

const char *g_lock_as;

/* One process per home: two would each connect as the same device, and the relay keeps only
 * the newest connection. The library holds HOME/.lock while a handle is open (kurer_open_with,
 * KURER_ELOCKED otherwise) and the file says who holds it ("PID COMMAND"). A command that finds
 * the home held by a waiting `kurer recv --wait` is refused at once (it may hold the home for a
 * day); otherwise it waits up to LOCK_WAIT seconds (KURER_LOCK_WAIT), saying so once on stderr. */
typedef struct lock_wait {
    const char *home;
    int wait_s, said;
    struct timespec start;
} lock_wait;

/* 0 to try (again), or the refusal. */
static int lock_check(lock_wait *w)
{
    long pid = 0;
    char cmd[96];
    int held = kurer_home_holder(w->home, &pid, cmd, sizeof(cmd));
    if (held <= 0)
        return 0; /* free, or no home: kurer_open says so */
    if (cmd[0] == '\0')
        snprintf(cmd, sizeof(cmd), "kurer");
    if (strcmp(cmd, "daemon") == 0)
        return refuse(KURER_ELOCKED,
                      "%s is held by `kurer daemon` (pid %ld): kurer %s needs the home itself; "
                      "stop the daemon and try again",
                      w->home, pid, g_command);
    if (strcmp(cmd, "recv --wait") == 0)
        return refuse(KURER_ELOCKED,
                      "%s is in use by `kurer recv --wait` (pid %ld): one process per home; "
                      "stop it (or let its wait end) and try again",
                      w->home, pid);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - w->start.tv_sec >= w->wait_s)
        return refuse(KURER_ELOCKED, "%s is in use by `kurer %s` (pid %ld): gave up after %d s",
                      w->home, cmd, pid, w->wait_s);
    if (!w->said) {
        fprintf(stderr, "kurer: waiting for another kurer using %s (`kurer %s`, pid %ld)\n",
                w->home, cmd, pid);
        w->said = 1;
    }
    struct timespec d = {0, 100 * 1000 * 1000};
    nanosleep(&d, NULL);
    return 0;
}

static void lock_wait_init(lock_wait *w, const char *home)
{
    memset(w, 0, sizeof(*w));
    w->home = home;
    w->wait_s = LOCK_WAIT;
    const char *env = getenv(LOCK_ENV);
    uint64_t v = 0;
    if (env != NULL && kurer_parse_u64(env, 3600, &v) == 0)
        w->wait_s = (int)v;
    clock_gettime(CLOCK_MONOTONIC, &w->start);
}

/* Waits (as lock_check says) until home looks free. */
static int lock_wait_free(lock_wait *w)
{
    long pid;
    char cmd[8];
    int rc = 0;
    while (rc == 0 && kurer_home_holder(w->home, &pid, cmd, sizeof(cmd)) == 1)
        rc = lock_check(w);
    return rc;
}

/* Opens HOME with its passphrase; a wrong one is a clear error and changes nothing. */
int open_home(const char *home, kurer **k)
{
    kurer_secret pw;
    char what[300];
    snprintf(what, sizeof(what), "the device home %s", home);
    struct stat hst;
    if (stat(home, &hst) == 0 && S_ISDIR(hst.st_mode) && (hst.st_mode & 077) != 0 &&
        hst.st_uid == geteuid()) {
        if (chmod(home, 0700) != 0)
            return refuse(KURER_EPERM, "%s has mode %04o and cannot be made 0700: %s", home,
                          (unsigned)(hst.st_mode & 0777), strerror(errno));
        fprintf(stderr, "kurer: %s had mode %04o; set to 0700 (owner only)\n", home,
                (unsigned)(hst.st_mode & 0777));
    }
    lock_wait w;
    lock_wait_init(&w, home);
    int rc = lock_wait_free(&w); /* before the passphrase is asked for */
    if (rc != 0)
        return rc;
    rc = get_passphrase(PASS_ENV, what, 0, &pw);
    if (rc != 0)
        return rc;
    kurer_open_options o = {.home = home,
                            .pass = pw.p,
                            .pass_len = pw.n,
                            .holder = g_lock_as != NULL ? g_lock_as : g_command};
    while ((rc = kurer_open_with(&o, k)) == KURER_ELOCKED && (rc = lock_check(&w)) == 0)
        ;
    kurer_secret_free(&pw);
    if (rc == KURER_ELOCKED)
        return rc; /* lock_check said why */
    if (rc == KURER_EPASSPHRASE)
        return refuse(rc, "wrong passphrase for %s", home);
    if (rc == KURER_ENOENT)
        return refuse(rc, "%s is not a device home (run 'kurer init' first)", home);
    if (rc != 0)
        return refuse(rc, "cannot open %s: %s", home, kurer_strerror(rc));
    g_relay = kurer_relay_address(*k);
    return 0;
}
