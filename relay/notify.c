/* systemd's notification protocol (sd_notify(3)): READY=1 once the relay serves, WATCHDOG=1
 * while its loop runs, STOPPING=1 at shutdown. Without NOTIFY_SOCKET every call does nothing. */
#include "relay_internal.h"

#include <systemd/sd-daemon.h>

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    (void)sd_notify(0, "WATCHDOG=1");
}

void kurer__notify_ready(relay *r, const char *status)
{
    uint64_t usec = 0;
    (void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
    /* The loop pets the watchdog: a loop that hangs stops petting it and systemd restarts us. */
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        uint64_t ms = usec / 2000 > 0 ? usec / 2000 : 1;
        uv_timer_init(r->loop, &r->watchdog);
        r->have_watchdog = 1;
        (void)sd_notify(0, "WATCHDOG=1");
        uv_timer_start(&r->watchdog, on_watchdog, ms, ms);
    }
}

void kurer__notify_stopping(relay *r)
{
    (void)sd_notify(0, "STOPPING=1");
    if (r->have_watchdog)
        uv_close((uv_handle_t *)&r->watchdog, NULL);
    r->have_watchdog = 0;
}
