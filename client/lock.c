/* One handle per home: the home lock (HOME/.lock, flock'd by the open handle; the file says who
 * holds it: "PID HOLDER"), and the in-memory home lock that lets the library's threads share
 * one handle (home.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "home.h"
#include "kurer/util.h"

#define LOCK_FILE  ".lock"
#define HOLDER_MAX 63

/* ---- the in-memory home lock ---- */

static unsigned long self_id(void)
{
    return (unsigned long)pthread_self();
}

int kurer__hlock_mine(kurer *k)
{
    return atomic_load(&k->hl.owned) && atomic_load(&k->hl.owner) == self_id();
}

void kurer__hlock_take(kurer *k)
{
    if (kurer__hlock_mine(k)) {
        k->hl.depth++;
        return;
    }
    uv_mutex_lock(&k->hl.mu);
    atomic_store(&k->hl.owner, self_id());
    atomic_store(&k->hl.owned, 1);
    k->hl.depth = 1;
}

void kurer__hlock_give(kurer *k)
{
    if (--k->hl.depth > 0)
        return;
    atomic_store(&k->hl.owned, 0);
    uv_mutex_unlock(&k->hl.mu);
}

int kurer__hlock_release(kurer *k)
{
    if (!kurer__hlock_mine(k))
        return 0;
    int depth = k->hl.depth;
    k->hl.depth = 1;
    kurer__hlock_give(k);
    return depth;
}

void kurer__hlock_reacquire(kurer *k, int depth)
{
    if (depth <= 0)
        return;
    kurer__hlock_take(k);
    k->hl.depth = depth;
}

/* ---- the lock file ---- */

static int lock_path(const char *home, char *path, size_t len)
{
    return kurer_path_join(path, len, home, LOCK_FILE);
}

/* The program's name, for a lock taken without a holder. */
static void program_name(char *out, size_t len)
{
    snprintf(out, len, "kurer");
    FILE *f = fopen("/proc/self/comm", "re");
    if (f == NULL)
        return;
    char buf[64];
    if (fgets(buf, sizeof(buf), f) != NULL) {
        buf[strcspn(buf, "\n")] = '\0';
        if (buf[0] != '\0')
            snprintf(out, len, "%s", buf);
    }
    fclose(f);
}

/* Reads "PID HOLDER" from an open lock file. */
static void read_holder(int fd, long *pid, char *holder, size_t len)
{
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    *pid = 0;
    if (len > 0)
        holder[0] = '\0';
    if (n <= 0)
        return;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    *pid = strtol(buf, NULL, 10);
    char *sp = strchr(buf, ' ');
    if (sp != NULL && len > 0)
        snprintf(holder, len, "%s", sp + 1);
}

int kurer__home_lock(const char *home, const char *holder, int *fd_out)
{
    char path[KURER__HOME_PATH_MAX + 8];
    *fd_out = -1;
    int rc = lock_path(home, path, sizeof(path));
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? KURER_ENOENT
               : errno == EACCES || errno == ELOOP ? KURER_EPERM
                                                   : KURER_EIO;
    (void)fchmod(fd, 0600);
    /* flock locks belong to the open file: a second open in this process is refused too. */
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        rc = errno == EWOULDBLOCK ? KURER_ELOCKED : KURER_EIO;
        close(fd);
        return rc;
    }
    char name[HOLDER_MAX + 1], line[HOLDER_MAX + 32];
    if (holder != NULL)
        snprintf(name, sizeof(name), "%s", holder);
    else
        program_name(name, sizeof(name));
    name[strcspn(name, "\n")] = '\0';
    int n = snprintf(line, sizeof(line), "%ld %s\n", (long)getpid(), name);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) {
        /* who holds it is only informative */
    }
    *fd_out = fd;
    return 0;
}

void kurer__home_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* the file stays: removing it would race with the next opener */
}

int kurer_home_holder(const char *home, long *pid, char *holder, size_t len)
{
    char path[KURER__HOME_PATH_MAX + 8];
    if (home == NULL || pid == NULL || (holder == NULL && len > 0))
        return KURER_EINVAL;
    *pid = 0;
    if (len > 0)
        holder[0] = '\0';
    int rc = lock_path(home, path, sizeof(path));
    if (rc != 0)
        return rc;
    struct stat st;
    if (stat(home, &st) != 0)
        return KURER_ENOENT;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : KURER_EIO; /* never opened: nobody holds it */
    int held = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        held = errno == EWOULDBLOCK;
        if (held)
            read_holder(fd, pid, holder, len);
    } else {
        (void)flock(fd, LOCK_UN);
    }
    close(fd);
    return held;
}

int kurer_open(const char *home, const char *pass, size_t pass_len, const uint8_t *key,
               kurer_clock_fn clock, void *clock_ud, kurer **out)
{
    kurer_open_options o = {home, pass, pass_len, key, clock, clock_ud, NULL};
    return kurer_open_with(&o, out);
}
