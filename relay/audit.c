/* The audit log (docs/relay.md, "Audit log"): security events only, one JSON object per line,
 * in a file of its own (audit_log = FILE, appended, 0600, opened at start-up before the relay
 * drops root), beside the relay's main log, which keeps its own lines. Authentications and
 * refusals with their reason, revocation lists applied, devices disconnected by the relay,
 * reloads, lists published by administrators, start and stop. Never content or keys. */
#include "relay_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kurer/log.h"

int kurer__audit_open(relay *r, const char *path)
{
    if (path == NULL)
        return 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || (r->audit = fdopen(fd, "a")) == NULL) {
        fprintf(stderr, "kurer-relay: audit_log %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return KURER_EIO;
    }
    (void)fchmod(fd, 0600);
    return 0;
}

void kurer__audit_close(relay *r)
{
    if (r->audit != NULL)
        fclose(r->audit);
    r->audit = NULL;
}

void kurer__audit(relay *r, const char *event, const kurer_log_field *fields, size_t n)
{
    if (r->audit != NULL)
        kurer_log_to(r->audit, KURER_LOG_INFO, "audit", event, fields, n);
}
