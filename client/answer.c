/* Relay answers checked against their requests (see answer.h). */
#include "answer.h"

#include <string.h>

#include "kurer/log.h"

int kurer__answer_hostile(const char *answer, const char *reason, const char *user)
{
    kurer_log(KURER_LOG_WARN, "client", "hostile_relay_answer",
              (kurer_log_field[]){KURER_LOG_STR("answer", answer), KURER_LOG_STR("reason", reason),
                                  KURER_LOG_STR("user", user)},
              3);
    return KURER_EMALFORMED;
}

int kurer__answer_chain_of(const kurer_chain *chain, const char *user)
{
    return chain->n > 0 && strcmp(chain->certs[0].body.subject, user) == 0;
}

/* The chains of user in a device list: no device twice. */
static int device_list(const char *answer, const char *user, const kurer_chain *chains, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!kurer__answer_chain_of(&chains[i], user))
            continue;
        for (size_t j = 0; j < i; j++)
            if (kurer__answer_chain_of(&chains[j], user) &&
                chains[j].certs[0].body.device_id == chains[i].certs[0].body.device_id)
                return kurer__answer_hostile(answer, "duplicate_device", user);
    }
    return 0;
}

int kurer__answer_directory(const char *const *users, size_t n_users, const kurer_server_frame *r)
{
    for (size_t i = 0; i < r->u.directory.n; i++) {
        const kurer_user_devices *ud = &r->u.directory.users[i];
        int asked = 0;
        for (size_t u = 0; u < n_users; u++)
            asked |= strcmp(ud->user, users[u]) == 0;
        if (!asked)
            return kurer__answer_hostile("directory", "user_not_asked", ud->user);
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->u.directory.users[j].user, ud->user) == 0)
                return kurer__answer_hostile("directory", "duplicate_user", ud->user);
        int rc = device_list("directory", ud->user, ud->devices, ud->n_devices);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int kurer__answer_bundles(const char *user, const uint32_t *asked, size_t n_asked,
                          const kurer_server_frame *r)
{
    for (size_t i = 0; i < r->u.bundles.n; i++) {
        const kurer_prekey_bundle *b = &r->u.bundles.bundles[i];
        int was_asked = 0;
        for (size_t j = 0; j < n_asked; j++)
            was_asked |= asked[j] == b->address.device_id;
        if (strcmp(b->address.user, user) != 0 || !was_asked)
            return kurer__answer_hostile("bundles", "device_not_asked", b->address.user);
        for (size_t j = 0; j < i; j++)
            if (r->u.bundles.bundles[j].address.device_id == b->address.device_id)
                return kurer__answer_hostile("bundles", "duplicate_device", user);
        if (!kurer__answer_chain_of(&b->chain, user) ||
            b->chain.certs[0].body.device_id != b->address.device_id)
            return kurer__answer_hostile("bundles", "chain_not_address", user);
    }
    return 0;
}

int kurer__answer_send_result(const char *own_user, const kurer_envelope *sent, size_t n_sent,
                              const kurer_server_frame *r)
{
    const kurer_user_result *res = r->u.send_result.users;
    size_t n = r->u.send_result.n;
    for (size_t u = 0; u < n; u++) {
        const char *user = res[u].user;
        int own = strcmp(user, own_user) == 0, asked = own;
        for (size_t i = 0; !asked && i < n_sent; i++)
            asked = strcmp(sent[i].to.user, user) == 0;
        if (!asked)
            return kurer__answer_hostile("send_result", "not_a_recipient", user);
        for (size_t j = 0; j < u; j++)
            if (strcmp(res[j].user, user) == 0)
                return kurer__answer_hostile("send_result", "duplicate_user", user);
        if (res[u].status == KURER_SEND_UNKNOWN_USER && own)
            return kurer__answer_hostile("send_result", "unknown_own_user", user);
        if (res[u].status == KURER_SEND_STALE_DEVICES) {
            /* proto/ refuses this already; checked again where it is acted on. */
            if (res[u].current.user == NULL || strcmp(res[u].current.user, user) != 0)
                return kurer__answer_hostile("send_result", "current_user_mismatch", user);
            int rc =
                device_list("send_result", user, res[u].current.devices, res[u].current.n_devices);
            if (rc != 0)
                return rc;
        }
    }
    for (size_t i = 0; i < n_sent; i++) {
        int answered = 0;
        for (size_t u = 0; !answered && u < n; u++)
            answered = strcmp(res[u].user, sent[i].to.user) == 0;
        if (!answered)
            return kurer__answer_hostile("send_result", "user_not_answered", sent[i].to.user);
    }
    return 0;
}
