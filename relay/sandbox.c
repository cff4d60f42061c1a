/* The relay after start-up: a relay started as root runs as its user from then on, and a
 * seccomp allow-list holds it to the system calls it makes while serving (docs/relay.md,
 * "Privileges and sandbox"). Both come after everything is bound and opened (listeners, keys,
 * roots, the store, the signal handles), so neither needs to allow what only start-up does. */
#define _GNU_SOURCE /* setresuid, setresgid */
#include "relay_internal.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <seccomp.h>

#include "kurer/log.h"
#include "kurer/util.h"

/* What the relay creates in its folder; run as root, it gives them to the user it drops to, who
 * writes the store from then on and removes its WAL when it closes. The key files stay as they
 * are (read once, before the drop). */
static const char *const created[] = {".lock", "relay.db", "relay.db-wal", "relay.db-shm",
                                      "relay.db-journal"};

static int give_files(const char *dir, const char *user, uid_t uid, gid_t gid)
{
    char path[4096];
    for (size_t i = 0; i < sizeof(created) / sizeof(created[0]); i++) {
        if (kurer_path_join(path, sizeof(path), dir, created[i]) != 0)
            return KURER_ELIMIT;
        if (lchown(path, uid, gid) != 0 && errno != ENOENT) {
            fprintf(stderr, "kurer-relay: %s: cannot give it to %s: %s\n", path, user,
                    strerror(errno));
            return KURER_EPERM;
        }
    }
    return 0;
}

int kurer__drop_privileges(const char *dir, const char *user)
{
    if (geteuid() != 0 || user == NULL) /* root without a user: main allowed it explicitly */
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        fprintf(stderr, "kurer-relay: user %s: %s\n", user,
                errno != 0 ? strerror(errno) : "no such user");
        return KURER_ENOENT;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    if (uid == 0) {
        fprintf(stderr, "kurer-relay: user %s is root: name the user to run as\n", user);
        return KURER_EPERM;
    }
    int err = give_files(dir, user, uid, gid);
    if (err != 0)
        return err;
    if (initgroups(user, gid) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0) {
        fprintf(stderr, "kurer-relay: cannot run as %s: %s\n", user, strerror(errno));
        return KURER_EPERM;
    }
    /* For good: neither the ids nor a way back to root. */
    if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || setegid(0) == 0 || getuid() != uid ||
        geteuid() != uid || getgid() != gid || getegid() != gid) {
        fprintf(stderr, "kurer-relay: dropped to %s but could regain root: not starting\n", user);
        return KURER_EPERM;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "kurer-relay: %s: not writable by %s (chown %s %s): %s\n", dir, user, user,
                dir, strerror(errno));
        return KURER_EPERM;
    }
    kurer_log(KURER_LOG_INFO, "relay", "privileges_dropped",
              (kurer_log_field[]){KURER_LOG_STR("user", user), KURER_LOG_INT("uid", uid),
                                  KURER_LOG_INT("gid", gid)},
              3);
    return 0;
}

/* The system calls of a serving relay, as strace -f shows them over the relay's integration
 * tests (every call after its "listening" line; docs/relay.md says how to redo it), and a few
 * that the same code paths make on other inputs (marked +). mmap, mprotect and socket are
 * allowed only with some arguments (add_conditional). */
/* clang-format off */
static const char *const allowed[] = {
    /* the loop and its connections (libuv) */
    "epoll_wait", "epoll_pwait" /* + */, "epoll_ctl", "accept4", "read", "readv" /* + */,
    "write", "writev" /* + */, "shutdown", "close", "getpeername", "getsockname",
    "setsockopt" /* TCP_NODELAY; SO_SNDBUF for sd_notify's socket */, "getsockopt",
    "sendmsg" /* sd_notify */, "recvmmsg", "sendmmsg" /* the media relay */,
    /* the store (SQLCipher: its database, WAL and journal; unlink at close) */
    "openat", "pread64", "pwrite64", "lseek", "fdatasync", "fsync" /* + */, "ftruncate",
    "fcntl", "newfstatat", "fstat" /* + */, "access" /* + */, "unlink",
    /* the metrics page: open files (getdents64 of /proc/self/fd), CPU time */
    "getdents64", "getrusage",
    /* online backup (SIGUSR1: the copy is renamed into place) */
    "rename", "renameat" /* + */, "renameat2" /* + */,
    /* threads, time, signals (uv_signal, SIGHUP), ids (sd_notify), memory (libsodium's
     * guarded pages), exit */
    "futex", "clock_nanosleep", "nanosleep" /* + */, "clock_gettime" /* + (vDSO) */,
    "sched_yield", "set_robust_list", "rseq", "getpid", "gettid" /* + */, "tgkill" /* abort */,
    "getuid", "geteuid", "getgid", "getegid", "rt_sigaction", "rt_sigprocmask",
    "rt_sigreturn", "restart_syscall" /* + */, "brk", "madvise", "munmap",
    "mremap" /* + (realloc) */, "mlock" /* + */, "munlock", "getrandom", "sysinfo" /* qsort */,
    "exit", "exit_group",
#ifdef KURER_SANITIZE
    /* ASan and UBSan (the tests build with them): their reports (open, readlink of
     * /proc/self/exe, the maps), and LeakSanitizer's check at exit: a tracer task (clone,
     * prctl, sigaltstack) that lists the threads (getdents) and stops them with ptrace. */
    "open", "getdents", "clone", "ptrace", "wait4", "prctl", "sigaltstack",
    "getppid", "sched_getaffinity", "readlink", "mmap", "mprotect",
#endif
};
/* clang-format on */

/* With store = postgres, what libpq makes while serving (docs/scale-out.md, "Syscalls"): its
 * connection to the server (a new one after a lost one, so socket of any family below), and
 * the resolver for a host name in pg_conninfo (UDP to the name server, /etc files). */
static const char *const pg_allowed[] = {
    "connect", "poll",  "ppoll", "sendto", "recvfrom",
    "recvmsg", "ioctl", "bind",  "uname", /* sendmmsg: allowed above */
};

/* The calls allowed only with some arguments. */
static int add_conditional(scmp_filter_ctx ctx, size_t *n, int postgres)
{
    /* sd_notify opens a datagram socket per message: AF_UNIX only (libpq: any). */
    const struct scmp_arg_cmp unix_only = {0, SCMP_CMP_EQ, AF_UNIX, 0};
    int rc = postgres ? seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 0)
                      : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, unix_only);
    (*n)++;
#ifndef KURER_SANITIZE
    /* Memory, never executable (MemoryDenyWriteExecute in the unit does the same). */
    const struct scmp_arg_cmp no_exec = {2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0};
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, no_exec);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, no_exec);
    *n += 2;
#endif
    return rc;
}

int kurer__seccomp_install(size_t *n, int postgres)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    int rc = ctx == NULL ? -ENOMEM : 0;
    *n = 0;
    /* Every thread, the store's writer included (it runs already). */
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    for (size_t i = 0; rc == 0 && i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        (*n)++;
    }
    for (size_t i = 0; rc == 0 && postgres && i < sizeof(pg_allowed) / sizeof(pg_allowed[0]); i++) {
        int nr = seccomp_syscall_resolve_name(pg_allowed[i]);
        if (nr == __NR_SCMP_ERROR)
            continue;
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        (*n)++;
    }
    if (rc == 0)
        rc = add_conditional(ctx, n, postgres);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        fprintf(stderr,
                "kurer-relay: cannot install the seccomp filter: %s (seccomp = off to "
                "run without it)\n",
                strerror(-rc));
        return KURER_EINTERNAL;
    }
    return 0;
}
