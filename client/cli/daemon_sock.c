/* The daemon's Unix socket: where it is, how it is made (0600, in a folder of ours, never
 * through a symbolic link, a stale one replaced only once nothing answers on it), and whose
 * peers it accepts (our own uid, SO_PEERCRED). The same uid and the 0600 socket are the
 * authentication: a client needs no passphrase (docs/client.md, "kurer daemon"). */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kurer/crypto.h"
#include "kurer/util.h"
#include "rpc.h"

#define SOCKET_ENV "KURER_SOCKET"

/* 1 if path is a folder of ours that only we may enter (not followed if a link). */
static int private_dir(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
           (st.st_mode & 077) == 0;
}

/* The i-th place a daemon's socket for home may be: KURER_SOCKET when set (only that), else
 * $XDG_RUNTIME_DIR/kurer/<hash>.sock when XDG_RUNTIME_DIR is a folder of ours, then
 * HOME/daemon.sock. 0 with the path, 1 if there is no i-th, or an error. */
static int socket_candidate(const char *home, int i, char *out, size_t n)
{
    const char *env = getenv(SOCKET_ENV);
    if (env != NULL && env[0] != '\0') {
        if (i > 0)
            return 1;
        if (strlen(env) >= n)
            return refuse(KURER_ELIMIT, "%s is too long for a socket path", SOCKET_ENV);
        snprintf(out, n, "%s", env);
        return 0;
    }
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    char real[PATH_MAX];
    int have_xdg = xdg != NULL && xdg[0] == '/' && private_dir(xdg) && realpath(home, real) != NULL;
    if (have_xdg && i == 0) {
        uint8_t h[32];
        char hex[33];
        kurer_hash256(h, real, strlen(real));
        kurer_hex_encode(hex, h, 16);
        if ((size_t)snprintf(out, n, "%s/kurer/%s.sock", xdg, hex) < n)
            return 0;
    }
    if (i > (have_xdg ? 1 : 0))
        return 1;
    if ((size_t)snprintf(out, n, "%s/daemon.sock", home) >= n)
        return refuse(KURER_ELIMIT,
                      "%s/daemon.sock is too long for a socket path: give a shorter one with "
                      "--socket",
                      home);
    return 0;
}

int daemon_socket_path(const char *home, char *out, size_t n)
{
    return socket_candidate(home, 0, out, n);
}

/* The socket's folder: made 0700 when it is $XDG_RUNTIME_DIR/kurer; refused unless ours and
 * closed to others. */
static int socket_dir(const char *path)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return refuse(KURER_EIO, "cannot make %s: %s", dir, strerror(errno));
    if (!private_dir(dir))
        return refuse(KURER_EPERM,
                      "%s is not a folder of ours closed to others (mode 0700): the socket is "
                      "not made there",
                      dir);
    return 0;
}

static int sock_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return refuse(KURER_ELIMIT, "socket path %s is too long (at most %zu bytes)", path,
                      sizeof(sa->sun_path) - 1);
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

/* 1 if something accepts a connection on path. */
static int answers(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1; /* cannot tell: do not remove it */
    int rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    int e = errno;
    close(fd);
    return rc == 0 || (e != ECONNREFUSED && e != ENOENT);
}

int daemon_listen(const char *path, int *out)
{
    struct sockaddr_un sa;
    struct stat st;
    int rc;
    if ((rc = sock_addr(path, &sa)) != 0 || (rc = socket_dir(path)) != 0)
        return rc;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
            return refuse(KURER_EEXIST, "%s exists and is not a socket of ours: not replaced",
                          path);
        if (answers(&sa))
            return refuse(KURER_EADDRINUSE, "a daemon already answers on %s", path);
        if (unlink(path) != 0) /* stale: left by a daemon that stopped without removing it */
            return refuse(KURER_EIO, "cannot remove the stale socket %s: %s", path,
                          strerror(errno));
    } else if (errno != ENOENT) {
        return refuse(KURER_EIO, "cannot look at %s: %s", path, strerror(errno));
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return refuse(KURER_EIO, "cannot make a socket: %s", strerror(errno));
    mode_t old = umask(0177); /* born 0600: no moment where others may connect */
    rc = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    umask(old);
    if (rc != 0) {
        close(fd);
        return refuse(e == EADDRINUSE ? KURER_EADDRINUSE : KURER_EIO, "cannot bind %s: %s", path,
                      strerror(e));
    }
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 0777) != 0600 || listen(fd, 128) != 0) {
        close(fd);
        unlink(path);
        return refuse(KURER_EPERM, "%s is not a 0600 socket of ours after bind: refused", path);
    }
    *out = fd;
    return 0;
}

int daemon_peer_ok(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
        return 0;
    return cr.uid == geteuid();
}

int remote_connect(const char *home, int *out)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct sockaddr_un sa;
    struct stat st;
    for (int i = 0;; i++) {
        int rc = socket_candidate(home, i, path, sizeof(path));
        if (rc == 1)
            return 0;
        if (rc != 0 || sock_addr(path, &sa) != 0) {
            clear_reason();
            continue;
        }
        /* Ours, a socket, not a link: a file someone else put there is not talked to. */
        if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
            continue;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return 0;
        if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0 && daemon_peer_ok(fd)) {
            *out = fd;
            return 1;
        }
        close(fd);
    }
}
