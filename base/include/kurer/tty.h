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

#endif
