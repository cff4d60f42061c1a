/* kurer: one process per home (its lock), and the home opened with its passphrase. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kurer/util.h"

#define LOCK_WAIT 30 /* seconds a short command waits for another kurer on the same home */
#define LOCK_FILE ".lock"

const char *g_lock_as;

/* One process per home: two would each connect as the same device, and the relay keeps only
 * the newest connection. Every command that opens the store holds an exclusive flock on
 * HOME/.lock (0600) until it exits; the file says who holds it ("PID COMMAND"). A command
 * that finds the home held by a waiting `kurer recv --wait` is refused at once (it may hold
 * the home for a day); otherwise it waits up to LOCK_WAIT seconds (KURER_LOCK_WAIT), saying
 * so once on stderr. */
static int g_lock_fd = -1;

static void lock_holder(int fd, long *pid, char *cmd, size_t cmdlen)
{
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    *pid = 0;
    snprintf(cmd, cmdlen, "kurer");
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl != NULL)
        *nl = '\0';
    char *sp = strchr(buf, ' ');
    *pid = strtol(buf, NULL, 10);
    if (sp != NULL && sp[1] != '\0')
        snprintf(cmd, cmdlen, "%s", sp + 1);
}

static int lock_home(const char *home, const char *command)
{
    char path[4200];
    if (g_lock_fd >= 0)
        return 0;
    if (snprintf(path, sizeof(path), "%s/%s", home, LOCK_FILE) >= (int)sizeof(path))
        return refuse(KURER_EINVAL, "%s: path too long", home);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0; /* no home: kurer_open says so */
        return refuse(KURER_EPERM, "cannot open %s: %s", path, strerror(errno));
    }
    (void)fchmod(fd, 0600);
    int wait_s = LOCK_WAIT;
    const char *env = getenv(LOCK_ENV);
    uint64_t v = 0;
    if (env != NULL && kurer_parse_u64(env, 3600, &v) == 0)
        wait_s = (int)v;
    int said = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        long pid;
        char cmd[96];
        if (errno != EWOULDBLOCK && errno != EINTR) {
            close(fd);
            return refuse(KURER_EIO, "cannot lock %s: %s", path, strerror(errno));
        }
        lock_holder(fd, &pid, cmd, sizeof(cmd));
        if (strcmp(cmd, "recv --wait") == 0) {
            close(fd);
            return refuse(KURER_EBUSY,
                          "%s is in use by `kurer recv --wait` (pid %ld): one process per home; "
                          "stop it (or let its wait end) and try again",
                          home, pid);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= wait_s) {
            close(fd);
            return refuse(KURER_EBUSY, "%s is in use by `kurer %s` (pid %ld): gave up after %d s",
                          home, cmd, pid, wait_s);
        }
        if (!said) {
            fprintf(stderr, "kurer: waiting for another kurer using %s (`kurer %s`, pid %ld)\n",
                    home, cmd, pid);
            said = 1;
        }
        struct timespec d = {0, 100 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    char line[128];
    int n = snprintf(line, sizeof(line), "%ld %s\n", (long)getpid(), command);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) {
        /* who holds it is only informative */
    }
    g_lock_fd = fd; /* held until the process exits */
    return 0;
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
    int rc = lock_home(home, g_lock_as != NULL ? g_lock_as : g_command);
    if (rc != 0)
        return rc;
    rc = get_passphrase(PASS_ENV, what, 0, &pw);
    if (rc != 0)
        return rc;
    rc = kurer_open(home, pw.p, pw.n, NULL, NULL, NULL, k);
    kurer_secret_free(&pw);
    if (rc == KURER_EPASSPHRASE)
        return refuse(rc, "wrong passphrase for %s", home);
    if (rc == KURER_ENOENT)
        return refuse(rc, "%s is not a device home (run 'kurer init' first)", home);
    if (rc != 0)
        return refuse(rc, "cannot open %s: %s", home, kurer_strerror(rc));
    g_relay = kurer_relay_address(*k);
    return 0;
}
