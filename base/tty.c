#include "kurer/tty.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* What the signal handler needs to put the terminal back: process-wide by nature. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_fd = -1;

static void restore_tty(int sig)
{
    if (tty_fd >= 0)
        (void)tcsetattr(tty_fd, TCSAFLUSH, &saved_tty);
    if (sig != 0) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
}

int kurer_tty_read_secret(int fd, const char *prompt, char *buf, size_t cap, size_t *len)
{
    struct termios t;
    struct sigaction sa, old_int, old_term;
    size_t n = 0;
    int rc = 0;
    *len = 0;
    if (cap == 0)
        return KURER_EINVAL;
    if (write(fd, prompt, strlen(prompt)) < 0 || tcgetattr(fd, &saved_tty) != 0)
        return KURER_EIO;
    t = saved_tty;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    t.c_lflag |= ICANON;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = restore_tty;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    tty_fd = fd;
    if (tcsetattr(fd, TCSAFLUSH, &t) != 0) {
        rc = KURER_EIO;
        goto out;
    }
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n' || c == '\r')
            break;
        if (n == cap - 1) {
            rc = KURER_ELIMIT;
            continue; /* drain the line */
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    *len = n;
out:
    restore_tty(0);
    tty_fd = -1;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (write(fd, "\n", 1) < 0 && rc == 0)
        rc = KURER_EIO;
    return rc;
}
