#include "kurer/tty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "kurer/buf.h"

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

/* Equality of two secrets of n bytes, without a branch on their contents. */
static int secret_equal(const char *a, const char *b, size_t n)
{
    volatile unsigned char acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= (unsigned char)(a[i] ^ b[i]);
    return acc == 0;
}

int kurer_passphrase_get(const char *envname, const char *what, int is_new, char *buf,
                         char *scratch, size_t *len, char *why, size_t whylen)
{
    const char *env = getenv(envname);
    int rc = 0;
    *len = 0;
    why[0] = '\0';
    if (env != NULL) {
        size_t n = strlen(env);
        if (n == 0) {
            snprintf(why, whylen, "environment variable %s is empty", envname);
            return KURER_EINVAL;
        }
        if (n > KURER_PASSPHRASE_MAX) {
            snprintf(why, whylen, "passphrase in %s is longer than %d bytes", envname,
                     KURER_PASSPHRASE_MAX);
            return KURER_ELIMIT;
        }
        if (is_new && n < KURER_PASSPHRASE_MIN_NEW) {
            snprintf(why, whylen, "the passphrase for %s is too short (at least %d characters)",
                     what, KURER_PASSPHRASE_MIN_NEW);
            return KURER_EINVAL;
        }
        memcpy(buf, env, n + 1);
        *len = n;
        return 0;
    }
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 || !isatty(fd)) {
        if (fd >= 0)
            close(fd);
        snprintf(why, whylen, "no passphrase for %s: set %s or run on a terminal", what, envname);
        return KURER_EINVAL;
    }
    char prompt[512];
    size_t n = 0, n2 = 0;
    snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", what);
    rc = kurer_tty_read_secret(fd, prompt, buf, KURER_PASSPHRASE_MAX + 1, &n);
    if (rc != 0) {
        snprintf(why, whylen, "cannot read a passphrase from the terminal: %s", kurer_strerror(rc));
    } else if (is_new && n < KURER_PASSPHRASE_MIN_NEW) {
        snprintf(why, whylen, "the passphrase for %s is too short (at least %d characters)", what,
                 KURER_PASSPHRASE_MIN_NEW);
        rc = KURER_EINVAL;
    } else if (is_new) {
        rc = kurer_tty_read_secret(fd, "Same passphrase again: ", scratch, KURER_PASSPHRASE_MAX + 1,
                                   &n2);
        if (rc != 0) {
            snprintf(why, whylen, "cannot read a passphrase from the terminal: %s",
                     kurer_strerror(rc));
        } else if (n2 != n || !secret_equal(scratch, buf, n)) {
            snprintf(why, whylen, "the two passphrases differ");
            rc = KURER_EPASSPHRASE;
        }
        kurer_wipe(scratch, KURER_PASSPHRASE_MAX + 1);
    }
    close(fd);
    if (rc != 0) {
        kurer_wipe(buf, KURER_PASSPHRASE_MAX + 1);
        return rc;
    }
    *len = n;
    return 0;
}
