/* Online enrolment in the library (kurer.h, "Online enrolment"; docs/protocol.md 3.6): the
 * request sent through the relay bound to an invitation code, and the relay asked what became
 * of it, on a request worker (each a short Noise NK session of its own, net/enrol_call.c). The
 * home keeps the invitation's id and verifier in HOME/invite (mode 0600: what asking needs),
 * never the code, and forgets them once the chain is imported. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enrol.h"
#include "home.h"
#include "kurer/compare.h"
#include "kurer/crypto.h"
#include "kurer/enrol_call.h"
#include "kurer/invite.h"
#include "kurer/util.h"

#define INVITE_FILE "invite"
#define STATE_HEAD  "kurer-invite-state 1\n"
#define STATE_LEN   (sizeof(STATE_HEAD) - 1 + 33 + 65)

_Static_assert(KURER_ENROL_STATE_OPEN == KURER_ENROL_OPEN &&
                   KURER_ENROL_STATE_WAITING == KURER_ENROL_WAITING &&
                   KURER_ENROL_STATE_APPROVED == KURER_ENROL_APPROVED &&
                   KURER_ENROL_STATE_REJECTED == KURER_ENROL_REJECTED,
               "kurer.h's states are enrol.h's");

/* What the user reads to the administrator (kurer/compare.h), and the relay enrolment talks to. */
void kurer_own_comparison_code(const kurer *k, char *out)
{
    kurer_comparison_code(k->own.identity_pub, out);
}

const uint8_t *kurer_relay_key(const kurer *k)
{
    return k->own.relay_key;
}

static int state_path(const kurer *k, char *out, size_t n)
{
    return kurer_path_join(out, n, k->home, INVITE_FILE);
}

/* HOME/invite: the head line, the id and the verifier in hex, a line each. */
static int state_write(const kurer *k, const kurer_invite_keys *keys)
{
    char path[KURER__HOME_PATH_MAX + 16], text[STATE_LEN + 1];
    int rc = state_path(k, path, sizeof(path));
    if (rc != 0)
        return rc;
    memcpy(text, STATE_HEAD, sizeof(STATE_HEAD) - 1);
    char *p = text + sizeof(STATE_HEAD) - 1;
    kurer_hex_encode(p, keys->id, sizeof(keys->id));
    p[32] = '\n';
    kurer_hex_encode(p + 33, keys->verifier, sizeof(keys->verifier));
    p[33 + 64] = '\n';
    rc = kurer_file_write(path, text, STATE_LEN, 0600, 1);
    kurer_memzero(text, sizeof(text));
    return rc;
}

static int state_read(const kurer *k, kurer_invite_keys *keys)
{
    char path[KURER__HOME_PATH_MAX + 16], id[33], ver[65];
    uint8_t *d;
    size_t n;
    int rc = state_path(k, path, sizeof(path));
    memset(keys, 0, sizeof(*keys));
    if (rc != 0 || kurer_file_read(path, 256, &d, &n) != 0)
        return KURER_ENOENT;
    const size_t h = sizeof(STATE_HEAD) - 1;
    rc = KURER_ECORRUPT;
    if (n == STATE_LEN && memcmp(d, STATE_HEAD, h) == 0 && d[h + 32] == '\n' &&
        d[h + 33 + 64] == '\n') {
        memcpy(id, d + h, 32);
        id[32] = '\0';
        memcpy(ver, d + h + 33, 64);
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

static int ms_left(uint64_t deadline)
{
    uint64_t now = kurer_time_mono_ms();
    return deadline > now ? (int)(deadline - now > 600000 ? 600000 : deadline - now) : 0;
}

/* One request to the home's relay: 0 or the relay's typed error, or the transport's. */
static int call(kurer *k, const kurer_enrol_request *q, kurer_enrol_reply *rep, uint64_t deadline)
{
    char relay[sizeof(k->own.relay)];
    uint8_t key[KURER_KEY_LEN];
    kurer__hlock_take(k);
    memcpy(relay, k->own.relay, sizeof(relay));
    memcpy(key, k->own.relay_key, sizeof(key));
    kurer__hlock_give(k);
    int left = ms_left(deadline);
    if (left == 0)
        return KURER_ETIMEOUT;
    int rc = kurer_enrol_call(relay, key, q, rep, left);
    return rc != 0 ? rc : rep->error;
}

int kurer__enrol_submit(kurer *k, const char *code, uint64_t deadline)
{
    char canon[KURER_INVITE_CODE_LEN + 1];
    kurer_invite_keys keys;
    kurer_enrol_request *q = calloc(1, sizeof(*q));
    kurer_enrol_reply *rep = calloc(1, sizeof(*rep));
    uint8_t *d = NULL;
    size_t n = 0;
    int rc = q == NULL || rep == NULL ? KURER_ENOMEM : kurer_invite_parse(code, canon, &keys);
    if (rc == 0 && (rc = kurer_file_read(k->csr_path, KURER_ENROL_REQUEST_MAX, &d, &n)) == 0 &&
        (rc = state_write(k, &keys)) == 0) {
        q->request_id = 1;
        q->body = KURER_ENROL_SUBMIT;
        memcpy(q->id, keys.id, sizeof(q->id));
        memcpy(q->request, d, n);
        q->request_len = n;
        kurer_invite_relay_mac(keys.verifier, keys.id, d, n, q->mac);
        kurer_invite_authority_mac(keys.authority_key, keys.id, d, n, q->authority_mac);
        rc = call(k, q, rep, deadline);
    }
    kurer_memzero(&keys, sizeof(keys));
    kurer_memzero(canon, sizeof(canon));
    if (q != NULL)
        kurer_memzero(q, sizeof(*q));
    free(d);
    free(q);
    free(rep);
    return rc;
}

/* Approved: the chain imported as kurer_import_chain would, the invitation forgotten. */
static int take_chain(kurer *k, const kurer_enrol_reply *rep)
{
    char path[KURER__HOME_PATH_MAX + 16];
    int rc = kurer_import_chain(k, rep->chain, rep->chain_len);
    if (rc == 0 && state_path(k, path, sizeof(path)) == 0)
        (void)unlink(path);
    return rc;
}

int kurer__enrol_poll(kurer *k, uint64_t deadline, int *state)
{
    kurer_invite_keys keys;
    kurer_enrol_request *q = calloc(1, sizeof(*q));
    kurer_enrol_reply *rep = calloc(1, sizeof(*rep));
    int rc = q == NULL || rep == NULL ? KURER_ENOMEM : state_read(k, &keys);
    *state = 0;
    if (rc == 0) {
        q->request_id = 1;
        q->body = KURER_ENROL_POLL;
        memcpy(q->id, keys.id, sizeof(q->id));
        kurer_invite_poll_proof(keys.verifier, keys.id, q->mac);
        rc = call(k, q, rep, deadline);
        kurer_memzero(&keys, sizeof(keys));
    }
    if (rc == 0) {
        *state = (int)rep->state;
        if (rep->state == KURER_ENROL_REJECTED)
            rc = KURER_EREJECTED;
        else if (rep->state == KURER_ENROL_APPROVED)
            rc = take_chain(k, rep);
    }
    free(q);
    free(rep);
    return rc;
}
