/* Methods on devices: whoami (this one), verify (a peer's), status (the daemon's connection).
 * Their results carry what the commands print (whoami.c, verify.c), already worded. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kurer/util.h"
#include "rpc.h"

/* A device's certificate: what `kurer whoami` and `kurer verify` show of it. */
static json_t *cert_json(const kurer_peer_device *d)
{
    char nb[64], na[64], stale[256], sd[64];
    kurer_time_format(nb, sizeof(nb), d->not_before);
    kurer_time_format(na, sizeof(na), d->not_after);
    stale_text(d, stale, sizeof(stale));
    kurer_time_format(sd, sizeof(sd), d->crl_stale_since);
    return json_pack(
        "{s:I,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:s}", "device", (json_int_t)d->device_id,
        "status", d->status == 0 ? "valid" : kurer_err_name(d->status), "status_text",
        d->status == 0 ? "valid" : kurer_strerror(d->status), "serial", (json_int_t)d->serial,
        "clearance", d->clearance ? kurer_level_name(d->clearance) : "", "authority", d->authority,
        "not_before", nb, "not_after", na, "fingerprint", d->cert_fingerprint, "crl_stale",
        stale[0] != '\0', "crl_next_update", stale[0] ? sd : "", "crl_warning", stale);
}

static int whoami_cert(void *ud, const kurer_peer_device *d)
{
    json_t **cert = ud;
    json_decref(*cert);
    *cert = cert_json(d);
    return *cert != NULL ? 0 : KURER_ENOMEM;
}

static const char *const no_params[] = {NULL};

/* whoami {}: {user, device, identity_key, key_fingerprint, noise_key, enrolled, certificate
 * (or null), csr, relay}. */
static int m_whoami(rpc_ctx *c, json_t *params, json_t **result)
{
    int rc = rpc_only(params, no_params);
    if (rc != 0)
        return rc;
    char idk[2 * KURER_IDENTITY_KEY_LEN + 1], fp[65], nk[65];
    own_keys(c->k, idk, fp, nk);
    request_info q;
    request_codes(c->k, &q);
    json_t *cert = NULL;
    rc = kurer_own_certificate(c->k, whoami_cert, &cert);
    if (rc != 0 && rc != KURER_ESTATE) {
        json_decref(cert);
        return refuse(rc, "cannot read this device's certificate: %s", kurer_strerror(rc));
    }
    *result = json_pack("{s:s,s:I,s:s,s:s,s:s,s:b,s:o,s:s,s:s}", "user", kurer_own_user(c->k),
                        "device", (json_int_t)kurer_own_device(c->k), "identity_key", idk,
                        "key_fingerprint", fp, "noise_key", nk, "enrolled", cert != NULL,
                        "certificate", cert != NULL ? cert : json_null(), "csr",
                        kurer_csr_path(c->k), "relay", kurer_relay_address(c->k));
    if (*result == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    json_object_set_new(*result, "comparison_code", json_string(q.code));
    json_object_set_new(*result, "request_fingerprint", json_string(q.fingerprint));
    json_object_set_new(*result, "request_qr", json_string(q.qr));
    return 0;
}

typedef struct verify_ctx {
    kurer *k;
    json_t *devices;
} verify_ctx;

static int verify_row(void *ud, const kurer_peer_device *d)
{
    verify_ctx *v = ud;
    char fp[64] = "";
    int frc = kurer_fingerprint(v->k, d->user, d->device_id, fp);
    json_t *j = cert_json(d);
    if (j == NULL || json_object_set_new(j, "safety_number", json_string(frc == 0 ? fp : "")) ||
        json_array_append_new(v->devices, j) != 0)
        return KURER_ENOMEM;
    return 0;
}

static const char *const verify_params[] = {"user", "offline", "timeout", NULL};

/* verify {user, offline, timeout}: {user, devices, refresh_error (when the relay could not be
 * asked: what this home holds is shown)}. */
static int m_verify(rpc_ctx *c, json_t *params, json_t **result)
{
    const char *user;
    int offline, rc;
    long long timeout;
    if ((rc = rpc_only(params, verify_params)) || (rc = rpc_str(params, "user", 1, &user)) ||
        (rc = rpc_bool(params, "offline", 0, &offline)) ||
        (rc = rpc_int(params, "timeout", 86400, NET_TIMEOUT, &timeout)) ||
        (rc = user_arg("verify", user)) != 0)
        return rc;
    json_t *refresh_error = NULL;
    if (!offline) {
        rc = kurer_refresh(c->k, user, (int)timeout * 1000, NULL);
        if (rc != 0) {
            net_error(rc, "could not ask the relay");
            refresh_error = json_string(reason());
            clear_reason();
        }
        if (c->local)
            kurer_disconnect(c->k);
    }
    verify_ctx v = {c->k, json_array()};
    rc = v.devices != NULL ? kurer_peer_devices(c->k, user, verify_row, &v) : KURER_ENOMEM;
    if (rc == 0 && json_array_size(v.devices) == 0)
        rc = refuse(KURER_ENOTFOUND, "no device of %s is known", user);
    else if (rc != 0)
        refuse(rc, "cannot list the devices: %s", kurer_strerror(rc));
    if (rc != 0) {
        json_decref(v.devices);
        json_decref(refresh_error);
        return rc;
    }
    *result = json_pack("{s:s,s:o}", "user", user, "devices", v.devices);
    if (*result != NULL && refresh_error != NULL)
        json_object_set_new(*result, "refresh_error", refresh_error);
    else
        json_decref(refresh_error);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

static const char *state_name(kurer_conn_state s)
{
    switch (s) {
    case KURER_CONN_ONLINE:
        return "online";
    case KURER_CONN_CONNECTING:
        return "connecting";
    case KURER_CONN_WAITING:
        return "waiting";
    default:
        return "offline";
    }
}

/* status {}: {user, device, pid, state, reason, relay, outbox}. */
static int m_status(rpc_ctx *c, json_t *params, json_t **result)
{
    int rc = rpc_only(params, no_params), why = 0;
    if (rc != 0)
        return rc;
    kurer_conn_state s = kurer_state(c->k, &why);
    *result = json_pack("{s:s,s:I,s:I,s:s,s:s,s:s,s:i}", "user", kurer_own_user(c->k), "device",
                        (json_int_t)kurer_own_device(c->k), "pid", (json_int_t)getpid(), "state",
                        state_name(s), "reason", why != 0 ? kurer_err_name(why) : "", "relay",
                        kurer_relay_address(c->k), "outbox", kurer_outbox_size(c->k));
    if (*result != NULL && c->srv != NULL)
        daemon_counters(c->srv, *result);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

const rpc_method rpc_device_methods[] = {
    {"whoami", m_whoami},
    {"verify", m_verify},
    {"status", m_status},
    {NULL, NULL},
};
