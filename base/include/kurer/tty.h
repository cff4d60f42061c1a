/* Reading a secret from a terminal, for the command-line programs. */
#ifndef KURER_TTY_H
#define KURER_TTY_H

#include <stddef.h>

#include "kurer/error.h"

/* Writes prompt to the terminal fd, reads one line there without echo into buf (cap bytes with
 * the NUL) and puts the terminal back as it was, also when SIGINT or SIGTERM arrives meanwhile
 * (the signal is then raised again). *len is the line's length without the newline.
 * KURER_ELIMIT if the line is longer than cap - 1 (the rest of it is read and dropped),
 * KURER_EIO if fd is not a usable terminal. It installs process-wide signal handlers while it
 * waits, so it is for command-line programs, not for libraries; one thread at a time. The
 * caller owns buf and wipes it. */
KURER_EXPORT KURER_MUST_CHECK int kurer_tty_read_secret(int fd, const char *prompt, char *buf,
                                                        size_t cap, size_t *len);

#define KURER_PASSPHRASE_MAX     1024 /* bytes */
#define KURER_PASSPHRASE_MIN_NEW 12   /* characters of a passphrase for a new key or store */

/* A passphrase for the key or store described by what: from the environment variable envname,
 * or, when it is unset, from a no-echo prompt on the controlling terminal (asked twice when
 * is_new). A new passphrase needs at least KURER_PASSPHRASE_MIN_NEW characters, checked on the
 * first entry. buf and scratch are the caller's memory of KURER_PASSPHRASE_MAX + 1 bytes each
 * (guarded memory: they hold the secret); scratch is wiped before return. On success buf holds
 * the NUL-terminated passphrase and *len its length. On failure buf is wiped and why holds a
 * one-line reason that never contains the passphrase. For command-line programs (see
 * kurer_tty_read_secret). */
KURER_EXPORT KURER_MUST_CHECK int kurer_passphrase_get(const char *envname, const char *what,
                                                       int is_new, char *buf, char *scratch,
                                                       size_t *len, char *why, size_t whylen);

#endif
