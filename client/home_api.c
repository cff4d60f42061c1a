/* The public home calls of kurer.h: each runs under the home lock, since the library's own
 * threads use the same home (net.h). */
#include "home.h"

/* ---- the public home calls: each under the home lock (the engine runs on other threads) ---- */

#define LOCKED(k, call)                                                                            \
    do {                                                                                           \
        if ((k) == NULL)                                                                           \
            return KURER_EINVAL;                                                                   \
        kurer__hlock_take(k);                                                                      \
        int rc_ = (call);                                                                          \
        kurer__hlock_give(k);                                                                      \
        return rc_;                                                                                \
    } while (0)

int kurer_passwd(kurer *k, const char *pass, size_t pass_len, const uint8_t *key)
{
    LOCKED(k, kurer__home_passwd_unlocked(k, pass, pass_len, key));
}

int kurer_set_relay(kurer *k, const char *relay, const uint8_t *relay_key)
{
    LOCKED(k, kurer__home_set_relay_unlocked(k, relay, relay_key));
}

int kurer_own_certificate(kurer *k, kurer_peer_device_fn fn, void *ud)
{
    LOCKED(k, kurer__home_own_certificate_unlocked(k, fn, ud));
}

int kurer_import_chain(kurer *k, const uint8_t *data, size_t len)
{
    LOCKED(k, kurer__home_import_chain_unlocked(k, data, len));
}

int kurer_import_certs(kurer *k, const uint8_t *device, size_t device_len, const uint8_t *authority,
                       size_t authority_len)
{
    LOCKED(k, kurer__home_import_certs_unlocked(k, device, device_len, authority, authority_len));
}

int kurer_add_peer(kurer *k, const uint8_t *data, size_t len)
{
    LOCKED(k, kurer__home_add_peer_unlocked(k, data, len));
}

int kurer_add_revocations(kurer *k, const uint8_t *data, size_t len)
{
    LOCKED(k, kurer__home_add_revocations_unlocked(k, data, len));
}

int kurer_check_send(kurer *k, const char *to, int level, kurer_refusal *why)
{
    LOCKED(k, kurer__home_check_send_unlocked(k, to, level, why));
}

int kurer_check_receive(kurer *k, const char *from, uint32_t device_id, int level,
                        kurer_refusal *why)
{
    LOCKED(k, kurer__home_check_receive_unlocked(k, from, device_id, level, why));
}

int kurer_history(kurer *k, const char *with, kurer_message_fn fn, void *ud)
{
    LOCKED(k, kurer__home_history_unlocked(k, with, fn, ud));
}

int kurer_history_group(kurer *k, const char *group, kurer_message_fn fn, void *ud)
{
    LOCKED(k, kurer__home_history_group_unlocked(k, group, fn, ud));
}

int kurer_fingerprint(kurer *k, const char *user, uint32_t device_id, char text[64])
{
    LOCKED(k, kurer__home_fingerprint_unlocked(k, user, device_id, text));
}

int kurer_peer_devices(kurer *k, const char *user, kurer_peer_device_fn fn, void *ud)
{
    LOCKED(k, kurer__home_peer_devices_unlocked(k, user, fn, ud));
}
