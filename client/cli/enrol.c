/* Online enrolment on the device (docs/client.md, "Online enrolment"): kurer init --invite
 * sends the request through the relay bound to the invitation code, and it or a later kurer
 * import --invite-status fetches the chain once the administrator has approved it, and imports
 * it. The home keeps the invitation's id and verifier (H/invite, mode 0600: what polling
 * needs), never the code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/enrol_call.h"
#include "kurer/invite.h"
#include "kurer/util.h"

#define INVITE_FILE   "invite"
#define ENROL_TIMEOUT 15000
#define POLL_EVERY_S  2

static int state_path(const char *home, char *out, size_t n)
{
    return kurer_path_join(out, n, home, INVITE_FILE);
}

/* H/invite: "kurer-invite-state 1", the id and the verifier in hex. */
static int state_write(const char *home, const kurer_invite_keys *keys)
{
    char path[4096], id[33], ver[65], text[160];
    int rc = state_path(home, path, sizeof(path));
    if (rc != 0)
        return rc;
    kurer_hex_encode(id, keys->id, sizeof(keys->id));
    kurer_hex_encode(ver, keys->verifier, sizeof(keys->verifier));
    int n = snprintf(text, sizeof(text), "kurer-invite-state 1\n%s\n%s\n", id, ver);
    rc = kurer_file_write(path, text, (size_t)n, 0600, 1);
    kurer_memzero(ver, sizeof(ver));
    kurer_memzero(text, sizeof(text));
    return rc;
}

static int state_read(const char *home, kurer_invite_keys *keys)
{
    char path[4096], id[33], ver[65];
    uint8_t *d;
    size_t n;
    int rc = state_path(home, path, sizeof(path));
    memset(keys, 0, sizeof(*keys));
    if (rc != 0 || kurer_file_read(path, 256, &d, &n) != 0)
        return KURER_ENOENT;
    rc = KURER_ECORRUPT;
    if (n == 21 + 33 + 65 && memcmp(d, "kurer-invite-state 1\n", 21) == 0 && d[53] == '\n' &&
        d[118] == '\n') {
        memcpy(id, d + 21, 32);
        id[32] = '\0';
        memcpy(ver, d + 54, 64);
        ver[64] = '\0';
        if (kurer_hex_decode(keys->id, sizeof(keys->id), id) == 0 &&
            kurer_hex_decode(keys->verifier, sizeof(keys->verifier), ver) == 0)
            rc = 0;
    }
    kurer_memzero(d, n);
    free(d);
    kurer_memzero(ver, sizeof(ver));
    return rc;
}

/* The relay's refusal or the transport's failure, in words. */
static int said(int rc, const kurer_enrol_reply *rep, const char *what)
{
    const char *relay = g_relay;
    if (rc == KURER_EHANDSHAKE)
        return refuse(rc, "relay %s closed the handshake: wrong --relay-key, or not a Kurér relay",
                      relay);
    if (rc != 0)
        return net_error(rc, "could not reach the relay");
    switch (rep->error) {
    case 0:
        return 0;
    case KURER_EINVITE:
        return refuse(rep->error,
                      "relay %s: no such invitation: the code is wrong (or was "
                      "never registered)",
                      relay);
    case KURER_EINVITEUSED:
        return refuse(rep->error, "relay %s: this invitation has already been used", relay);
    case KURER_EINVITEEXPIRED:
        return refuse(rep->error, "relay %s: this invitation has expired: ask for a new one",
                      relay);
    case KURER_EINVITEMAC:
        return refuse(rep->error,
                      "relay %s: the request is not bound to the code (altered on the "
                      "way?)",
                      relay);
    case KURER_ERATE:
        return refuse(rep->error, "relay %s: too many failed attempts: wait a minute", relay);
    default:
        return refuse(rep->error, "relay %s refused %s: %s", relay, what,
                      kurer_strerror(rep->error));
    }
}

int invite_check_code(const char *typed, char canon[KURER_INVITE_CODE_LEN + 1],
                      kurer_invite_keys *keys)
{
    int rc = kurer_invite_parse(typed, canon, keys);
    if (rc == KURER_ECHECKDIGIT)
        return refuse(rc,
                      "--invite %s: mistyped (its check character does not match); "
                      "nothing was created",
                      typed);
    if (rc != 0)
        return usage_error("--invite %s: expected 17 characters like 7QXM-2PA9-RTDH-4WEZ-K", typed);
    return 0;
}

int invite_submit(kurer *k, const char *home, const kurer_invite_keys *keys)
{
    kurer_enrol_request *q = calloc(1, sizeof(*q));
    kurer_enrol_reply *rep = calloc(1, sizeof(*rep));
    uint8_t *d = NULL;
    size_t n = 0;
    int rc;
    if (q == NULL || rep == NULL) {
        rc = refuse(KURER_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = kurer_file_read(kurer_csr_path(k), KURER_ENROL_REQUEST_MAX, &d, &n)) != 0) {
        rc = refuse(rc, "cannot read %s: %s", kurer_csr_path(k), kurer_strerror(rc));
        goto out;
    }
    if ((rc = state_write(home, keys)) != 0) {
        rc = refuse(rc, "cannot write %s/%s: %s", home, INVITE_FILE, kurer_strerror(rc));
        goto out;
    }
    fflush(stdout); /* what init printed, before the wait (a log or a pipe reads it now) */
    q->request_id = 1;
    q->body = KURER_ENROL_SUBMIT;
    memcpy(q->id, keys->id, sizeof(q->id));
    memcpy(q->request, d, n);
    q->request_len = n;
    kurer_invite_relay_mac(keys->verifier, keys->id, d, n, q->mac);
    kurer_invite_authority_mac(keys->authority_key, keys->id, d, n, q->authority_mac);
    rc = kurer_enrol_call(kurer_relay_address(k), kurer_relay_key(k), q, rep, ENROL_TIMEOUT);
    rc = said(rc, rep, "the request");
    if (rc == 0 && !g_json)
        printf("request sent to relay %s: waiting for the administrator's approval\n",
               kurer_relay_address(k));
    fflush(stdout);
out:
    free(d);
    free(q);
    free(rep);
    return rc;
}

/* One poll: 0 with the state in *state (and the chain imported if approved), or a refusal. */
static int poll_once(kurer *k, const kurer_invite_keys *keys, kurer_enrol_reply *rep,
                     kurer_enrol_state *state)
{
    kurer_enrol_request *q = calloc(1, sizeof(*q));
    int rc;
    if (q == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    q->request_id = 1;
    q->body = KURER_ENROL_POLL;
    memcpy(q->id, keys->id, sizeof(q->id));
    kurer_invite_poll_proof(keys->verifier, keys->id, q->mac);
    rc = kurer_enrol_call(kurer_relay_address(k), kurer_relay_key(k), q, rep, ENROL_TIMEOUT);
    free(q);
    if ((rc = said(rc, rep, "the status request")) != 0)
        return rc;
    *state = rep->state;
    if (rep->state == KURER_ENROL_REJECTED)
        return refuse(KURER_EREJECTED, "the administrator rejected this device's request");
    if (rep->state != KURER_ENROL_APPROVED)
        return 0;
    if ((rc = kurer_import_chain(k, rep->chain, rep->chain_len)) == KURER_EKEYMISMATCH)
        return refuse(rc, "the chain the relay returned is not for this device's keys");
    if (rc != 0)
        return refuse(rc, "the chain the relay returned is refused: %s", kurer_strerror(rc));
    return 0;
}

int invite_wait(kurer *k, const char *home, int wait_s, int queued_rc)
{
    kurer_invite_keys keys;
    kurer_enrol_state state = KURER_ENROL_NONE;
    kurer_enrol_reply *rep = calloc(1, sizeof(*rep));
    time_t until = time(NULL) + wait_s;
    int rc;
    if (rep == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    if ((rc = state_read(home, &keys)) != 0) {
        free(rep);
        return refuse(rc, "%s was not enrolled by invitation (no %s/%s)", home, home, INVITE_FILE);
    }
    for (;;) {
        if ((rc = poll_once(k, &keys, rep, &state)) != 0 || state == KURER_ENROL_APPROVED ||
            time(NULL) + POLL_EVERY_S > until)
            break;
        sleep(POLL_EVERY_S);
    }
    free(rep);
    kurer_memzero(&keys, sizeof(keys));
    if (rc != 0)
        return rc;
    if (state == KURER_ENROL_OPEN)
        return refuse(KURER_ESTATE, "the relay has no request for this invitation yet: run "
                                    "kurer init --invite again with a new home");
    if (state != KURER_ENROL_APPROVED) {
        if (!g_json)
            printf("not approved yet: run 'kurer import --home %s --invite-status' later\n", home);
        return queued_rc;
    }
    if (!g_json)
        printf("approved: imported this device's certificate chain\n");
    /* enrolled: the invitation's id and verifier are of no more use */
    char path[4096];
    if (state_path(home, path, sizeof(path)) == 0)
        (void)unlink(path);
    first_connect(k, home);
    return 0;
}
