/* Online enrolment on the device (docs/client.md, "Online enrolment"): kurer init --invite
 * sends the request through the relay bound to the invitation code (kurer_enrol_submit), and it
 * or a later kurer import --invite-status asks what became of it (kurer_enrol_poll), which
 * imports the chain once the administrator has approved it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kurer/crypto.h"

#define ENROL_TIMEOUT 15000
#define POLL_EVERY_S  2

/* The relay's refusal or the transport's failure, in words. */
static int said(int rc, const char *what)
{
    const char *relay = g_relay;
    switch (rc) {
    case 0:
        return 0;
    case KURER_EHANDSHAKE:
        return refuse(rc, "relay %s closed the handshake: wrong --relay-key, or not a Kurér relay",
                      relay);
    case KURER_EINVITE:
        return refuse(rc,
                      "relay %s: no such invitation: the code is wrong (or was never "
                      "registered)",
                      relay);
    case KURER_EINVITEUSED:
        return refuse(rc, "relay %s: this invitation has already been used", relay);
    case KURER_EINVITEEXPIRED:
        return refuse(rc, "relay %s: this invitation has expired: ask for a new one", relay);
    case KURER_EINVITEMAC:
        return refuse(rc, "relay %s: the request is not bound to the code (altered on the way?)",
                      relay);
    case KURER_ERATE:
        return refuse(rc, "relay %s: too many failed attempts: wait a minute", relay);
    case KURER_ESUBJECT:
        return refuse(rc, "relay %s: the invitation is for another user or device", relay);
    case KURER_EREJECTED:
        return refuse(rc, "the administrator rejected this device's request");
    case KURER_EKEYMISMATCH:
        return refuse(rc, "the chain the relay returned is not for this device's keys");
    default:
        if (transport_error(rc) || rc == KURER_ERESOLVE)
            return net_error(rc, "could not reach the relay");
        return refuse(rc, "relay %s refused %s: %s", relay, what, kurer_strerror(rc));
    }
}

int invite_check_code(const char *typed, char canon[KURER_INVITE_CODE_LEN + 1],
                      kurer_invite_keys *keys)
{
    int rc = kurer_invite_parse(typed, canon, keys);
    kurer_memzero(keys, sizeof(*keys)); /* the library derives them again */
    if (rc == KURER_ECHECKDIGIT)
        return refuse(rc,
                      "--invite %s: mistyped (its check character does not match); "
                      "nothing was created",
                      typed);
    if (rc != 0)
        return usage_error("--invite %s: expected 17 characters like 7QXM-2PA9-RTDH-4WEZ-K", typed);
    return 0;
}

int invite_submit(kurer *k, const char *code)
{
    fflush(stdout); /* what init printed, before the wait (a log or a pipe reads it now) */
    int rc = said(kurer_enrol_submit(k, code, ENROL_TIMEOUT), "the request");
    if (rc == 0 && !g_json)
        printf("request sent to relay %s: waiting for the administrator's approval\n",
               kurer_relay_address(k));
    fflush(stdout);
    return rc;
}

int invite_wait(kurer *k, const char *home, int wait_s, int queued_rc)
{
    time_t until = time(NULL) + wait_s;
    int state = 0, rc;
    for (;;) {
        rc = kurer_enrol_poll(k, ENROL_TIMEOUT, &state);
        if (rc != 0 || state == KURER_ENROL_STATE_APPROVED || time(NULL) + POLL_EVERY_S > until)
            break;
        sleep(POLL_EVERY_S);
    }
    if (rc == KURER_ENOENT)
        return refuse(rc, "%s was not enrolled by invitation (no request was sent from it)", home);
    if ((rc = said(rc, "the status request")) != 0)
        return rc;
    if (state == KURER_ENROL_STATE_OPEN)
        return refuse(KURER_ESTATE, "the relay has no request for this invitation yet: run "
                                    "kurer init --invite again with a new home");
    if (state != KURER_ENROL_STATE_APPROVED) {
        if (!g_json)
            printf("not approved yet: run 'kurer import --home %s --invite-status' later\n", home);
        return queued_rc;
    }
    if (!g_json)
        printf("approved: imported this device's certificate chain\n");
    first_connect(k, home);
    return 0;
}
