/* kurer daemon: one process holds the home (its lock), stays connected to the relay and serves
 * JSON-RPC 2.0 on a Unix socket, so that the other commands (and other programs) use the home
 * at the same time (docs/client.md, "kurer daemon"). SIGTERM or SIGINT stops it: no more
 * connections, the socket removed, the connection to the relay closed once what is committed
 * is acked (so the requests that wait for it end; a send stays in the outbox), the home closed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "kurer/log.h"

static const char help_daemon[] =
    "usage: kurer daemon --home H [--socket PATH] [--json]\n"
    "\n"
    "Holds the home open, stays connected to the relay and serves a JSON-RPC 2.0 API on a Unix\n"
    "socket (newline-delimited JSON, one request per line; methods send, history, receive,\n"
    "flush_outbox, outbox, outbox_retry, outbox_cancel, contacts, conversations, rekey,\n"
    "import, call, answer, subscribe, unsubscribe, verify, whoami, backup, status:\n"
    "docs/client.md). While it runs, kurer send, history, recv, verify, whoami, backup,\n"
    "outbox, contacts, conversations, import, rekey, call and answer on H go through it, with\n"
    "the same output and exit status, and need no passphrase (the daemon makes and answers\n"
    "the calls, reading and writing their WAV files); init, passwd, relay and restore need\n"
    "the home itself and are refused. The passphrase is asked once,\n"
    "at start (" PASS_ENV " or the prompt).\n"
    "\n"
    "The socket is $XDG_RUNTIME_DIR/kurer/<hash of H>.sock when XDG_RUNTIME_DIR is a folder of\n"
    "yours, else H/daemon.sock; --socket PATH puts it elsewhere (clients then need\n"
    "KURER_SOCKET=PATH). It is made 0600 in a folder closed to others, and only processes of\n"
    "your own uid are served (SO_PEERCRED): that is the authentication. A socket left by a\n"
    "daemon that no longer answers is replaced; anything else at PATH is refused.\n"
    "A home not enrolled yet is refused. SIGTERM or SIGINT stops it. Exit status 0 after a\n"
    "stop, 1 if it could not start.\n";

static volatile sig_atomic_t g_stop;
static int g_stop_fd = -1;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    char b = 0;
    ssize_t w = write(g_stop_fd, &b, 1);
    (void)w;
}

static int nonblocking_pipe(int p[2])
{
    if (pipe(p) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (fcntl(p[i], F_SETFL, O_NONBLOCK) != 0 || fcntl(p[i], F_SETFD, FD_CLOEXEC) != 0)
            return -1;
    return 0;
}

/* Library thread: the first connection attempt ended. */
static void connected(void *ud, const kurer_result *r)
{
    (void)ud;
    if (r->err == 0)
        return;
    net_error(r->err, "not connected yet");
    fprintf(stderr, "kurer: %s; the daemon keeps trying\n", reason());
    clear_reason();
}

static int daemon_run(daemon_srv *s, const char *path)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_stop_fd = s->wake[1];
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int rc = daemon_workers_start(s);
    if (rc == 0) {
        daemon_events(s);
        /* Connected from the start, and again after every loss (the library's backoff); the
         * daemon serves meanwhile. */
        int crc = kurer_connect_async(s->k, NET_TIMEOUT * 1000, connected, NULL);
        if (crc != 0)
            connected(NULL, &(kurer_result){.err = crc});
        fprintf(stderr, "kurer: daemon for %s on %s (pid %ld)\n", s->home, path, (long)getpid());
        kurer_log(KURER_LOG_INFO, "daemon", "started",
                  (kurer_log_field[]){KURER_LOG_STR("socket", path)}, 1);
        rc = daemon_serve(s, &g_stop);
    }
    close(s->lfd);
    unlink(path); /* before the home is let go: a new daemon may bind at once after */
    daemon_workers_stop(s);
    daemon_drain(s);
    kurer_set_events(s->k, NULL);
    daemon_lines_free(s);
    kurer_log(KURER_LOG_INFO, "daemon", "stopped", NULL, 0);
    return rc;
}

int cmd_daemon(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"socket", V, 0}};
    kurer_args a;
    const char *home;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_daemon, argc, argv)) != 0 ||
        (rc = need(&a, "home", &home)) != 0)
        return rc;
    if (opt(&a, "socket") != NULL) {
        if (strlen(opt(&a, "socket")) >= sizeof(path))
            return usage_error("--socket is longer than %zu bytes", sizeof(path) - 1);
        snprintf(path, sizeof(path), "%s", opt(&a, "socket"));
    }
    daemon_srv s;
    memset(&s, 0, sizeof(s));
    s.home = home;
    s.lfd = -1;
    g_lock_as = "daemon";
    if ((rc = open_home(home, &s.k)) != 0)
        return rc;
    if (!is_enrolled(s.k)) {
        kurer_close(s.k);
        return refuse(KURER_ESTATE,
                      "this device is not enrolled yet: import your certificate with kurer import");
    }
    if ((opt(&a, "socket") == NULL && (rc = daemon_socket_path(home, path, sizeof(path))) != 0) ||
        (rc = daemon_listen(path, &s.lfd)) != 0) {
        kurer_close(s.k);
        return rc;
    }
    if (nonblocking_pipe(s.wake) != 0 || pthread_mutex_init(&s.mu, NULL) != 0 ||
        pthread_cond_init(&s.work_cv, NULL) != 0) {
        close(s.lfd);
        unlink(path);
        kurer_close(s.k);
        return refuse(KURER_ENOMEM, "cannot set up the daemon: %s", strerror(errno));
    }
    rc = daemon_run(&s, path);
    kurer_disconnect(s.k);
    kurer_close(s.k);
    daemon_lines_free(&s); /* an event posted while the library thread ended */
    close(s.wake[0]);
    close(s.wake[1]);
    pthread_cond_destroy(&s.work_cv);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
