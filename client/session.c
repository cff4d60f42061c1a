/* Sessions over libsignal-protocol-c (see session.h for the contract).
 *
 * libsignal's store callbacks land in the device store. When a store call fails inside a
 * callback, the kurer error is kept in s->store_err and libsignal gets SG_ERR_KURER_STORE, so the
 * caller sees the real cause rather than libsignal's generic one. */
#include "session.h"
#include "session_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curve.h>
#include <fingerprint.h>
#include <protocol.h>
#include <session_builder.h>
#include <session_cipher.h>
#include <session_pre_key.h>
#include <session_record.h>
#include <session_state.h>
#include <signal_protocol.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/signal.h"
#include "kurer/util.h"

static int64_t now_s(const kurer__session *s)
{
    return s->clock != NULL ? s->clock(s->clock_ud) : kurer_time_unix();
}

int kurer__sg_to_kurer(const kurer__session *s, int sg)
{
    switch (sg) {
    case 0:
        return 0;
    case SG_ERR_KURER_STORE:
        return s->store_err != 0 ? s->store_err : KURER_ESTORAGE;
    case SG_ERR_NOMEM:
        return KURER_ENOMEM;
    case SG_ERR_INVAL:
        return KURER_EINVAL;
    case SG_ERR_DUPLICATE_MESSAGE:
        return KURER_EDUPLICATE;
    case SG_ERR_UNTRUSTED_IDENTITY:
        return KURER_EKEYMISMATCH;
    case SG_ERR_NO_SESSION:
        return KURER_ESTATE;
    case SG_ERR_INVALID_KEY_ID:
        return KURER_ENOTFOUND;
    case SG_ERR_INVALID_KEY:
        return KURER_EBADKEY;
    case SG_ERR_LEGACY_MESSAGE:
    case SG_ERR_INVALID_VERSION:
        return KURER_EVERSION;
    case SG_ERR_INVALID_MAC:
    case SG_ERR_INVALID_MESSAGE:
    case SG_ERR_INVALID_PROTO_BUF:
    case KURER_SG_ERR_DECRYPT:
        return KURER_EDECRYPT;
    case SG_ERR_VRF_SIG_VERIF_FAILED:
        return KURER_EBADSIG;
    default:
        return KURER_ECRYPTO;
    }
}

static int store_fail(kurer__session *s, int rc)
{
    s->store_err = rc;
    return rc == KURER_ENOMEM ? SG_ERR_NOMEM : SG_ERR_KURER_STORE;
}

/* A libsignal address's name as a C string (it is not NUL-terminated). */
static int addr_user(const signal_protocol_address *a, char user[KURER_SUBJECT_MAX + 1])
{
    if (a->name == NULL || a->name_len == 0 || a->name_len > KURER_SUBJECT_MAX ||
        memchr(a->name, '\0', a->name_len) != NULL || a->device_id <= 0)
        return KURER_EINVAL;
    memcpy(user, a->name, a->name_len);
    user[a->name_len] = '\0';
    return 0;
}

static signal_buffer *take_buffer(uint8_t *data, size_t len)
{
    signal_buffer *b = signal_buffer_create(data, len);
    kurer_memzero(data, len);
    free(data);
    return b;
}

/* ---- session store ---- */

static int cb_load_session(signal_buffer **record, signal_buffer **user_record,
                           const signal_protocol_address *a, void *ud)
{
    kurer__session *s = ud;
    uint8_t *data = NULL;
    size_t len = 0;
    (void)user_record;
    int rc = kurer__store_session_get(s->st, a->name, a->name_len, a->device_id, &data, &len);
    if (rc == KURER_ENOTFOUND)
        return 0;
    if (rc != 0)
        return store_fail(s, rc);
    *record = take_buffer(data, len);
    return *record != NULL ? 1 : SG_ERR_NOMEM;
}

static int cb_sub_devices(signal_int_list **out, const char *name, size_t len, void *ud)
{
    kurer__session *s = ud;
    int32_t *devs = NULL;
    size_t n = 0;
    int rc = kurer__store_session_devices(s->st, name, len, &devs, &n);
    if (rc != 0)
        return store_fail(s, rc);
    signal_int_list *l = signal_int_list_alloc();
    if (l == NULL) {
        free(devs);
        return SG_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (signal_int_list_push_back(l, devs[i]) != 0) {
            signal_int_list_free(l);
            free(devs);
            return SG_ERR_NOMEM;
        }
    }
    free(devs);
    *out = l;
    return (int)n;
}

static int cb_store_session(const signal_protocol_address *a, uint8_t *record, size_t len,
                            uint8_t *user_record, size_t user_len, void *ud)
{
    kurer__session *s = ud;
    (void)user_record;
    (void)user_len;
    int rc = kurer__store_session_put(s->st, a->name, a->name_len, a->device_id, record, len);
    return rc != 0 ? store_fail(s, rc) : 0;
}

static int cb_contains_session(const signal_protocol_address *a, void *ud)
{
    kurer__session *s = ud;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = kurer__store_session_get(s->st, a->name, a->name_len, a->device_id, &data, &len);
    if (rc == 0) {
        kurer_memzero(data, len);
        free(data);
        return 1;
    }
    return rc == KURER_ENOTFOUND ? 0 : store_fail(s, rc);
}

static int cb_delete_session(const signal_protocol_address *a, void *ud)
{
    kurer__session *s = ud;
    int rc = kurer__store_session_delete(s->st, a->name, a->name_len, a->device_id);
    return rc < 0 ? store_fail(s, rc) : rc;
}

static int cb_delete_all_sessions(const char *name, size_t len, void *ud)
{
    kurer__session *s = ud;
    int rc = kurer__store_session_delete_all(s->st, name, len);
    return rc < 0 ? store_fail(s, rc) : rc;
}

/* ---- pre-key and signed pre-key stores ---- */

static int pk_load(kurer__session *s, kurer__prekey_table t, signal_buffer **record, uint32_t id)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = kurer__store_prekey_get(s->st, t, id, &data, &len);
    if (rc == KURER_ENOTFOUND)
        return SG_ERR_INVALID_KEY_ID;
    if (rc != 0)
        return store_fail(s, rc);
    *record = take_buffer(data, len);
    return *record != NULL ? SG_SUCCESS : SG_ERR_NOMEM;
}

static int pk_store(kurer__session *s, kurer__prekey_table t, uint32_t id, const uint8_t *r,
                    size_t len)
{
    int rc = kurer__store_prekey_put(s->st, t, id, r, len);
    return rc != 0 ? store_fail(s, rc) : 0;
}

static int pk_contains(kurer__session *s, kurer__prekey_table t, uint32_t id)
{
    int rc = kurer__store_prekey_contains(s->st, t, id);
    return rc < 0 ? store_fail(s, rc) : rc;
}

static int pk_remove(kurer__session *s, kurer__prekey_table t, uint32_t id)
{
    int rc = kurer__store_prekey_delete(s->st, t, id);
    return rc != 0 ? store_fail(s, rc) : 0;
}

static int cb_load_pre_key(signal_buffer **record, uint32_t id, void *ud)
{
    return pk_load(ud, KURER__PREKEY, record, id);
}
static int cb_store_pre_key(uint32_t id, uint8_t *record, size_t len, void *ud)
{
    return pk_store(ud, KURER__PREKEY, id, record, len);
}
static int cb_contains_pre_key(uint32_t id, void *ud)
{
    return pk_contains(ud, KURER__PREKEY, id);
}
static int cb_remove_pre_key(uint32_t id, void *ud)
{
    return pk_remove(ud, KURER__PREKEY, id);
}
static int cb_load_signed_pre_key(signal_buffer **record, uint32_t id, void *ud)
{
    return pk_load(ud, KURER__SIGNED_PREKEY, record, id);
}
static int cb_store_signed_pre_key(uint32_t id, uint8_t *record, size_t len, void *ud)
{
    return pk_store(ud, KURER__SIGNED_PREKEY, id, record, len);
}
static int cb_contains_signed_pre_key(uint32_t id, void *ud)
{
    return pk_contains(ud, KURER__SIGNED_PREKEY, id);
}
static int cb_remove_signed_pre_key(uint32_t id, void *ud)
{
    return pk_remove(ud, KURER__SIGNED_PREKEY, id);
}

/* ---- identity key store ---- */

static int cb_get_identity_key_pair(signal_buffer **pub, signal_buffer **priv, void *ud)
{
    kurer__session *s = ud;
    *pub = signal_buffer_create(s->own->identity_pub, KURER_IDENTITY_KEY_LEN);
    *priv = signal_buffer_create(s->own->identity_priv, 32);
    if (*pub == NULL || *priv == NULL) {
        signal_buffer_free(*pub);
        signal_buffer_bzero_free(*priv);
        *pub = *priv = NULL;
        return SG_ERR_NOMEM;
    }
    return 0;
}

static int cb_get_registration_id(void *ud, uint32_t *reg_id)
{
    *reg_id = ((kurer__session *)ud)->own->registration_id;
    return 0;
}

static int cb_save_identity(const signal_protocol_address *a, uint8_t *key, size_t len, void *ud)
{
    kurer__session *s = ud;
    int rc = kurer__store_peer_identity_put(s->st, a->name, a->name_len, a->device_id, key, len);
    return rc != 0 ? store_fail(s, rc) : 0;
}

/* Trusted only if key is the identity key of a valid, unrevoked certificate held for exactly
 * this device address. Never trust on first use. */
static int cb_is_trusted_identity(const signal_protocol_address *a, uint8_t *key, size_t len,
                                  void *ud)
{
    kurer__session *s = ud;
    char user[KURER_SUBJECT_MAX + 1];
    kurer_verified v;
    if (len != KURER_IDENTITY_KEY_LEN || addr_user(a, user) != 0)
        return 0;
    int rc = kurer__session_peer_check(s, user, (uint32_t)a->device_id, &v);
    if (rc != 0) {
        kurer_log(KURER_LOG_WARN, "session", "identity_untrusted",
                  (kurer_log_field[]){KURER_LOG_STR("peer", user),
                                      KURER_LOG_INT("device", a->device_id),
                                      KURER_LOG_STR("reason", kurer_err_name(rc))},
                  3);
        return 0;
    }
    return kurer_ct_equal(key, v.identity_key, KURER_IDENTITY_KEY_LEN);
}

/* ---- sender key store (groups come later; the callbacks libsignal needs exist now) ---- */

static int cb_store_sender_key(const signal_protocol_sender_key_name *n, uint8_t *record,
                               size_t len, uint8_t *user_record, size_t user_len, void *ud)
{
    kurer__session *s = ud;
    (void)user_record;
    (void)user_len;
    int rc = kurer__store_sender_key_put(s->st, n->group_id, n->group_id_len, n->sender.name,
                                         n->sender.name_len, n->sender.device_id, record, len);
    return rc != 0 ? store_fail(s, rc) : 0;
}

static int cb_load_sender_key(signal_buffer **record, signal_buffer **user_record,
                              const signal_protocol_sender_key_name *n, void *ud)
{
    kurer__session *s = ud;
    uint8_t *data = NULL;
    size_t len = 0;
    (void)user_record;
    int rc = kurer__store_sender_key_get(s->st, n->group_id, n->group_id_len, n->sender.name,
                                         n->sender.name_len, n->sender.device_id, &data, &len);
    if (rc == KURER_ENOTFOUND)
        return 0;
    if (rc != 0)
        return store_fail(s, rc);
    *record = take_buffer(data, len);
    return *record != NULL ? 1 : SG_ERR_NOMEM;
}

/* ---- life cycle ---- */

int kurer__session_new(kurer__store *st, const kurer__identity *own, const kurer_trust *trust,
                       kurer__clock_fn clock, void *clock_ud, kurer__session **out)
{
    *out = NULL;
    if (st == NULL || own == NULL || trust == NULL || own->identity_priv == NULL)
        return KURER_EINVAL;
    kurer__session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return KURER_ENOMEM;
    s->st = st;
    s->own = own;
    s->trust = trust;
    s->clock = clock;
    s->clock_ud = clock_ud;
    int rc = kurer_signal_context_new(&s->kctx, s);
    if (rc != 0)
        goto fail;
    s->ctx = kurer_signal_context_get(s->kctx);
    rc = KURER_EINTERNAL;
    if (signal_protocol_store_context_create(&s->store, s->ctx) != 0)
        goto fail;

    signal_protocol_session_store ss = {
        .load_session_func = cb_load_session,
        .get_sub_device_sessions_func = cb_sub_devices,
        .store_session_func = cb_store_session,
        .contains_session_func = cb_contains_session,
        .delete_session_func = cb_delete_session,
        .delete_all_sessions_func = cb_delete_all_sessions,
        .user_data = s,
    };
    signal_protocol_pre_key_store pks = {
        .load_pre_key = cb_load_pre_key,
        .store_pre_key = cb_store_pre_key,
        .contains_pre_key = cb_contains_pre_key,
        .remove_pre_key = cb_remove_pre_key,
        .user_data = s,
    };
    signal_protocol_signed_pre_key_store spks = {
        .load_signed_pre_key = cb_load_signed_pre_key,
        .store_signed_pre_key = cb_store_signed_pre_key,
        .contains_signed_pre_key = cb_contains_signed_pre_key,
        .remove_signed_pre_key = cb_remove_signed_pre_key,
        .user_data = s,
    };
    signal_protocol_identity_key_store iks = {
        .get_identity_key_pair = cb_get_identity_key_pair,
        .get_local_registration_id = cb_get_registration_id,
        .save_identity = cb_save_identity,
        .is_trusted_identity = cb_is_trusted_identity,
        .user_data = s,
    };
    signal_protocol_sender_key_store sks = {
        .store_sender_key = cb_store_sender_key,
        .load_sender_key = cb_load_sender_key,
        .user_data = s,
    };
    if (signal_protocol_store_context_set_session_store(s->store, &ss) != 0 ||
        signal_protocol_store_context_set_pre_key_store(s->store, &pks) != 0 ||
        signal_protocol_store_context_set_signed_pre_key_store(s->store, &spks) != 0 ||
        signal_protocol_store_context_set_identity_key_store(s->store, &iks) != 0 ||
        signal_protocol_store_context_set_sender_key_store(s->store, &sks) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    kurer__session_free(s);
    return rc;
}

void kurer__session_free(kurer__session *s)
{
    if (s == NULL)
        return;
    if (s->store != NULL)
        signal_protocol_store_context_destroy(s->store);
    kurer_signal_context_free(s->kctx);
    free(s);
}

/* ---- peers ---- */

/* A new identity key for an address seen before (re-enrolment), against its mark: recorded, the
 * old session and saved identity deleted (keychange in store.h), noted for the engine to
 * report. Told once: the mark then holds the new key. */
static int peer_key_change(kurer__session *s, const kurer__peer_mark *m, const kurer_chain *chain)
{
    const kurer_cert_body *nb = &chain->certs[0].body;
    kurer__key_change c;
    if (kurer_ct_equal(m->identity_key, nb->identity_key, KURER_IDENTITY_KEY_LEN))
        return 0; /* a renewal of the same key, or the same certificate again: no key change */
    memset(&c, 0, sizeof(c));
    snprintf(c.user, sizeof(c.user), "%s", nb->subject);
    c.device_id = nb->device_id;
    c.serial = nb->serial;
    snprintf(c.issuer, sizeof(c.issuer), "%s", chain->certs[1].body.subject);
    memcpy(c.identity_key, nb->identity_key, KURER_IDENTITY_KEY_LEN);
    c.old_serial = m->serial;
    const char *old_issuer = kurer_user_authority(nb->subject);
    snprintf(c.old_issuer, sizeof(c.old_issuer), "%s", old_issuer != NULL ? old_issuer : "");
    memcpy(c.old_identity_key, m->identity_key, KURER_IDENTITY_KEY_LEN);
    c.at = now_s(s);
    int rc = kurer__store_key_change_add(s->st, &c);
    if (rc == 0) {
        s->key_changed = 1;
        kurer_log(KURER_LOG_INFO, "session", "peer_key_changed",
                  (kurer_log_field[]){KURER_LOG_STR("peer", c.user),
                                      KURER_LOG_INT("device", c.device_id),
                                      KURER_LOG_INT("serial", (int64_t)c.serial),
                                      KURER_LOG_INT("old_serial", (int64_t)c.old_serial)},
                  4);
    }
    return rc;
}

/* In the caller's transaction: the key change (if any) against the mark, the chain held, the
 * mark raised to this certificate. */
static int peer_store(kurer__session *s, const kurer_verified *v, const kurer_chain *chain,
                      const kurer__peer_mark *old, int have)
{
    const kurer_cert_body *nb = &chain->certs[0].body;
    kurer__peer_mark m;
    kurer_buf b;
    int rc = have ? peer_key_change(s, old, chain) : 0;
    if (rc != 0)
        return rc;
    kurer_buf_init(&b, KURER_CHAIN_BYTES_MAX);
    rc = kurer_chain_encode(chain, &b);
    if (rc == 0)
        rc = kurer__store_peer_device_put(s->st, v->user, v->device_id, v->serial, b.data, b.len);
    kurer_buf_release(&b);
    m.not_before = nb->not_before;
    m.serial = nb->serial;
    memcpy(m.identity_key, nb->identity_key, KURER_IDENTITY_KEY_LEN);
    if (rc == 0)
        rc = kurer__store_peer_mark_put(s->st, v->user, v->device_id, &m, now_s(s));
    return rc;
}

int kurer__session_peer_add(kurer__session *s, const kurer_chain *chain, kurer_verified *out)
{
    kurer_verified v;
    kurer__peer_mark mark;
    int have = 0;
    int rc = kurer_trust_verify_chain(s->trust, chain, now_s(s), &v);
    if (rc != 0)
        return rc;
    if (strcmp(v.user, s->own->user) == 0 && v.device_id == s->own->device_id)
        return KURER_EINVAL;
    if ((rc = kurer__store_peer_mark_of(s->st, v.user, v.device_id, &mark, &have)) != 0)
        return rc;
    if (have && (rc = kurer__peer_mark_check(&mark, &chain->certs[0].body)) != 0) {
        kurer_log(KURER_LOG_WARN, "session", "peer_rollback",
                  (kurer_log_field[]){KURER_LOG_STR("peer", v.user),
                                      KURER_LOG_INT("device", v.device_id),
                                      KURER_LOG_INT("serial", (int64_t)v.serial),
                                      KURER_LOG_INT("mark_serial", (int64_t)mark.serial)},
                  4);
        return rc;
    }
    if ((rc = kurer__store_begin(s->st)) != 0)
        return rc;
    if ((rc = peer_store(s, &v, chain, &mark, have)) != 0) {
        kurer__store_rollback(s->st);
        return rc;
    }
    if ((rc = kurer__store_commit(s->st)) == 0 && out != NULL)
        *out = v;
    return rc;
}

int kurer__session_take_key_changed(kurer__session *s)
{
    int changed = s->key_changed;
    s->key_changed = 0;
    return changed;
}

/* A revocation list past its next_update: warned about in the log, once per list version's
 * next_update (and once more when the grace ends), not at every check. */
static void stale_warn(kurer__session *s, const kurer_chain *chain, const kurer_verified *v,
                       int refused)
{
    if (s->stale_warned == v->crl_stale_since && s->stale_warned_refused == refused)
        return;
    s->stale_warned = v->crl_stale_since;
    s->stale_warned_refused = refused;
    kurer_log(
        KURER_LOG_WARN, "session", "revocation_list_stale",
        (kurer_log_field[]){KURER_LOG_STR("issuer", (v->crl_stale & KURER_STALE_AUTHORITY_CRL) != 0
                                                        ? chain->certs[1].body.subject
                                                        : "root"),
                            KURER_LOG_INT("next_update", v->crl_stale_since),
                            KURER_LOG_STR("action", refused ? "refused" : "warned")},
        3);
}

int kurer__session_peer_check(kurer__session *s, const char *user, uint32_t device_id,
                              kurer_verified *out)
{
    uint8_t *data = NULL;
    size_t len = 0;
    kurer_chain *chain = NULL;
    int rc = kurer__store_peer_device_get(s->st, user, device_id, &data, &len);
    if (rc != 0)
        return rc;
    chain = malloc(sizeof(*chain));
    if (chain == NULL) {
        free(data);
        return KURER_ENOMEM;
    }
    rc = kurer_chain_decode(data, len, chain);
    free(data);
    if (rc != 0)
        rc = KURER_ECORRUPT;
    if (rc == 0) {
        rc = kurer_trust_verify_chain(s->trust, chain, now_s(s), out);
        if (out->crl_stale != 0)
            stale_warn(s, chain, out, rc == KURER_ECRLSTALE);
    }
    /* The stored chain must still be for the address it is stored under. */
    if (rc == 0 && (strcmp(out->user, user) != 0 || out->device_id != device_id))
        rc = KURER_ECORRUPT;
    free(chain);
    return rc;
}

/* ---- prekeys ---- */

static int next_id(kurer__session *s, const char *counter, uint32_t *id)
{
    uint64_t v = 0;
    int rc = kurer__store_counter_get(s->st, counter, &v);
    if (rc != 0)
        return rc;
    /* 1..PREKEY_ID_MAX, then around again: by then the old ones are long used or replaced. */
    uint32_t cur = (uint32_t)(v % PREKEY_ID_MAX) + 1;
    *id = cur;
    return kurer__store_counter_set(s->st, counter, cur);
}

static int public_33(const ec_key_pair *pair, uint8_t out[KURER_PREKEY_PUBLIC_LEN])
{
    signal_buffer *b = NULL;
    if (ec_public_key_serialize(&b, ec_key_pair_get_public(pair)) != 0)
        return KURER_ENOMEM;
    int rc = signal_buffer_len(b) == KURER_PREKEY_PUBLIC_LEN ? 0 : KURER_EINTERNAL;
    if (rc == 0)
        memcpy(out, signal_buffer_data(b), KURER_PREKEY_PUBLIC_LEN);
    signal_buffer_free(b);
    return rc;
}

int kurer__session_generate_prekeys(kurer__session *s, size_t n, kurer__prekeys *out)
{
    if (n > KURER_ONE_TIME_PREKEYS_MAX)
        return KURER_ELIMIT;
    memset(out, 0, sizeof(*out));
    out->registration_id = s->own->registration_id;
    int rc = kurer__store_begin(s->st);
    if (rc != 0)
        return rc;
    s->store_err = 0;

    ec_key_pair *pair = NULL;
    session_signed_pre_key *spk = NULL;
    session_pre_key *pk = NULL;
    uint32_t id = 0;
    int64_t now = now_s(s);

    if ((rc = next_id(s, "signed_prekey_id", &id)) != 0)
        goto out;
    if (curve_generate_key_pair(s->ctx, &pair) != 0) {
        rc = KURER_ECRYPTO;
        goto out;
    }
    out->signed_prekey.id = id;
    out->signed_prekey.created_at = now;
    if ((rc = public_33(pair, out->signed_prekey.public_key)) != 0 ||
        (rc = kurer_identity_sign(s->own->identity_priv, out->signed_prekey.public_key,
                                  KURER_PREKEY_PUBLIC_LEN, out->signed_prekey.signature)) != 0)
        goto out;
    if (session_signed_pre_key_create(&spk, id, (uint64_t)now * 1000, pair,
                                      out->signed_prekey.signature, KURER_PREKEY_SIG_LEN) != 0) {
        rc = KURER_ENOMEM;
        goto out;
    }
    SIGNAL_UNREF(pair);
    if ((rc = kurer__sg_to_kurer(s, signal_protocol_signed_pre_key_store_key(s->store, spk))) != 0)
        goto out;
    SIGNAL_UNREF(spk);

    for (size_t i = 0; i < n; i++) {
        if ((rc = next_id(s, "prekey_id", &id)) != 0)
            goto out;
        if (curve_generate_key_pair(s->ctx, &pair) != 0) {
            rc = KURER_ECRYPTO;
            goto out;
        }
        out->one_time[i].id = id;
        if ((rc = public_33(pair, out->one_time[i].public_key)) != 0)
            goto out;
        if (session_pre_key_create(&pk, id, pair) != 0) {
            rc = KURER_ENOMEM;
            goto out;
        }
        SIGNAL_UNREF(pair);
        if ((rc = kurer__sg_to_kurer(s, signal_protocol_pre_key_store_key(s->store, pk))) != 0)
            goto out;
        SIGNAL_UNREF(pk);
        out->n_one_time = i + 1;
    }
out:
    if (pair != NULL)
        SIGNAL_UNREF(pair);
    if (spk != NULL)
        SIGNAL_UNREF(spk);
    if (pk != NULL)
        SIGNAL_UNREF(pk);
    if (rc != 0) {
        kurer__store_rollback(s->st);
        memset(out, 0, sizeof(*out));
        return rc;
    }
    return kurer__store_commit(s->st);
}

/* ---- X3DH ---- */

static void make_addr(signal_protocol_address *a, const char *user, uint32_t device_id)
{
    a->name = user;
    a->name_len = strlen(user);
    a->device_id = (int32_t)device_id;
}

static int decode_key(kurer__session *s, const uint8_t *k, ec_public_key **out)
{
    return curve_decode_point(out, k, KURER_IDENTITY_KEY_LEN, s->ctx) == 0 ? 0 : KURER_EBADKEY;
}

int kurer__session_process_bundle(kurer__session *s, const kurer_prekey_bundle *b)
{
    kurer_verified v;
    int rc = kurer_trust_verify_chain(s->trust, &b->chain, now_s(s), &v);
    if (rc != 0)
        return rc;
    if (strcmp(v.user, b->address.user) != 0 || v.device_id != b->address.device_id)
        return KURER_ESUBJECT;
    if ((rc = kurer_identity_verify(v.identity_key, b->signed_prekey.public_key,
                                    KURER_PREKEY_PUBLIC_LEN, b->signed_prekey.signature)) != 0)
        return rc;

    ec_public_key *identity = NULL, *spk = NULL, *opk = NULL;
    session_pre_key_bundle *bundle = NULL;
    session_builder *builder = NULL;
    signal_protocol_address addr;
    make_addr(&addr, v.user, v.device_id);

    if ((rc = kurer__store_begin(s->st)) != 0)
        return rc;
    s->store_err = 0;
    if ((rc = kurer__session_peer_add(s, &b->chain, NULL)) != 0)
        goto out;
    if ((rc = decode_key(s, v.identity_key, &identity)) != 0 ||
        (rc = decode_key(s, b->signed_prekey.public_key, &spk)) != 0 ||
        (b->has_one_time && (rc = decode_key(s, b->one_time.public_key, &opk)) != 0))
        goto out;
    rc = session_pre_key_bundle_create(
        &bundle, b->registration_id, (int)v.device_id, b->has_one_time ? b->one_time.id : 0, opk,
        b->signed_prekey.id, spk, b->signed_prekey.signature, KURER_PREKEY_SIG_LEN, identity);
    if (rc != 0) {
        rc = kurer__sg_to_kurer(s, rc);
        goto out;
    }
    if ((rc = session_builder_create(&builder, s->store, &addr, s->ctx)) != 0) {
        rc = kurer__sg_to_kurer(s, rc);
        goto out;
    }
    rc = kurer__sg_to_kurer(s, session_builder_process_pre_key_bundle(builder, bundle));
out:
    session_builder_free(builder);
    if (bundle != NULL)
        SIGNAL_UNREF(bundle);
    if (identity != NULL)
        SIGNAL_UNREF(identity);
    if (spk != NULL)
        SIGNAL_UNREF(spk);
    if (opk != NULL)
        SIGNAL_UNREF(opk);
    if (rc != 0) {
        kurer__store_rollback(s->st);
        return rc;
    }
    return kurer__store_commit(s->st);
}

int kurer__session_exists(kurer__session *s, const char *user, uint32_t device_id)
{
    signal_protocol_address addr;
    make_addr(&addr, user, device_id);
    s->store_err = 0;
    int rc = signal_protocol_session_contains_session(s->store, &addr);
    return rc < 0 ? kurer__sg_to_kurer(s, rc) : rc;
}

/* The session with addr names the certified identity key. */
static int session_identity_check(kurer__session *s, const signal_protocol_address *addr,
                                  const uint8_t key[KURER_IDENTITY_KEY_LEN])
{
    session_record *record = NULL;
    signal_buffer *b = NULL;
    int rc = kurer__sg_to_kurer(s, signal_protocol_session_load_session(s->store, &record, addr));
    if (rc != 0)
        return rc;
    session_state *state = session_record_get_state(record);
    ec_public_key *remote = state != NULL ? session_state_get_remote_identity_key(state) : NULL;
    if (remote == NULL)
        rc = KURER_ESTATE;
    else if (ec_public_key_serialize(&b, remote) != 0)
        rc = KURER_ENOMEM;
    else if (signal_buffer_len(b) != KURER_IDENTITY_KEY_LEN ||
             !kurer_ct_equal(signal_buffer_data(b), key, KURER_IDENTITY_KEY_LEN))
        rc = KURER_EKEYMISMATCH;
    signal_buffer_free(b);
    SIGNAL_UNREF(record);
    return rc;
}

/* ---- encrypt ---- */

int kurer__session_encrypt(kurer__session *s, const char *user, uint32_t device_id,
                           const uint8_t *pt, size_t n, kurer_buf *ct, kurer_envelope_type *type)
{
    kurer_verified v;
    signal_protocol_address addr;
    session_cipher *cipher = NULL;
    ciphertext_message *msg = NULL;
    int rc = kurer__session_peer_check(s, user, device_id, &v);
    if (rc != 0)
        return rc;
    make_addr(&addr, user, device_id);
    if ((rc = kurer__session_exists(s, user, device_id)) <= 0)
        return rc < 0 ? rc : KURER_ESTATE;
    if ((rc = session_identity_check(s, &addr, v.identity_key)) != 0)
        return rc;

    if ((rc = kurer__store_begin(s->st)) != 0)
        return rc;
    s->store_err = 0;
    if ((rc = session_cipher_create(&cipher, s->store, &addr, s->ctx)) != 0) {
        rc = kurer__sg_to_kurer(s, rc);
        goto out;
    }
    if ((rc = kurer__sg_to_kurer(s, session_cipher_encrypt(cipher, pt, n, &msg))) != 0)
        goto out;
    signal_buffer *ser = ciphertext_message_get_serialized(msg);
    switch (ciphertext_message_get_type(msg)) {
    case CIPHERTEXT_PREKEY_TYPE:
        *type = KURER_ENVELOPE_PREKEY;
        break;
    case CIPHERTEXT_SIGNAL_TYPE:
        *type = KURER_ENVELOPE_MESSAGE;
        break;
    default:
        rc = KURER_EINTERNAL;
        goto out;
    }
    if (signal_buffer_len(ser) > KURER__CIPHERTEXT_MAX) {
        rc = KURER_ELIMIT;
        goto out;
    }
    rc = kurer_buf_put(ct, signal_buffer_data(ser), signal_buffer_len(ser));
out:
    if (msg != NULL)
        SIGNAL_UNREF(msg);
    session_cipher_free(cipher);
    if (rc != 0) {
        kurer__store_rollback(s->st);
        return rc;
    }
    return kurer__store_commit(s->st);
}

/* ---- decrypt ---- */

int kurer__session_decrypt(kurer__session *s, const uint8_t envelope_id[KURER_ENVELOPE_ID_LEN],
                           const char *user, uint32_t device_id, kurer_envelope_type type,
                           const uint8_t *ct, size_t n, kurer__plaintext_fn fn, void *ud)
{
    kurer_verified v;
    signal_protocol_address addr;
    session_cipher *cipher = NULL;
    pre_key_signal_message *pkm = NULL;
    signal_message *sm = NULL;
    signal_buffer *pt = NULL;
    signal_buffer *claimed = NULL;

    if (fn == NULL || ct == NULL || n == 0 || n > KURER__CIPHERTEXT_MAX)
        return KURER_EINVAL;
    int rc = kurer__store_message_exists(s->st, envelope_id);
    if (rc != 0)
        return rc == 1 ? KURER_EDUPLICATE : rc;
    if ((rc = kurer__session_peer_check(s, user, device_id, &v)) != 0)
        return rc;
    make_addr(&addr, user, device_id);

    if (type == KURER_ENVELOPE_PREKEY) {
        if (pre_key_signal_message_deserialize(&pkm, ct, n, s->ctx) != 0)
            return KURER_EDECRYPT;
        /* Refuse a foreign identity before libsignal builds anything. */
        if (ec_public_key_serialize(&claimed, pre_key_signal_message_get_identity_key(pkm)) != 0)
            rc = KURER_ENOMEM;
        else if (signal_buffer_len(claimed) != KURER_IDENTITY_KEY_LEN ||
                 !kurer_ct_equal(signal_buffer_data(claimed), v.identity_key,
                                 KURER_IDENTITY_KEY_LEN))
            rc = KURER_EKEYMISMATCH;
        signal_buffer_free(claimed);
        if (rc != 0) {
            SIGNAL_UNREF(pkm);
            return rc;
        }
    } else if (type == KURER_ENVELOPE_MESSAGE) {
        if (signal_message_deserialize(&sm, ct, n, s->ctx) != 0)
            return KURER_EDECRYPT;
    } else {
        return KURER_EUNSUPPORTED;
    }

    /* One transaction: libsignal stores the session and removes the used one-time prekey as
     * two writes, and fn stores the message; all or nothing. */
    if ((rc = kurer__store_begin(s->st)) != 0)
        goto out;
    s->store_err = 0;
    if ((rc = session_cipher_create(&cipher, s->store, &addr, s->ctx)) != 0) {
        rc = kurer__sg_to_kurer(s, rc);
        goto rollback;
    }
    if (pkm != NULL)
        rc = session_cipher_decrypt_pre_key_signal_message(cipher, pkm, NULL, &pt);
    else
        rc = session_cipher_decrypt_signal_message(cipher, sm, NULL, &pt);
    if ((rc = kurer__sg_to_kurer(s, rc)) != 0)
        goto rollback;
    if ((rc = session_identity_check(s, &addr, v.identity_key)) != 0)
        goto rollback;
    if ((rc = fn(ud, &v, signal_buffer_data(pt), signal_buffer_len(pt))) != 0)
        goto rollback;
    rc = kurer__store_commit(s->st);
    goto out;
rollback:
    kurer__store_rollback(s->st);
out:
    if (rc != 0 && rc != KURER_EDUPLICATE)
        kurer_log(KURER_LOG_WARN, "session", "decrypt_refused",
                  (kurer_log_field[]){KURER_LOG_STR("peer", user),
                                      KURER_LOG_INT("device", device_id),
                                      KURER_LOG_STR("reason", kurer_err_name(rc))},
                  3);
    signal_buffer_bzero_free(pt);
    session_cipher_free(cipher);
    if (pkm != NULL)
        SIGNAL_UNREF(pkm);
    if (sm != NULL)
        SIGNAL_UNREF(sm);
    return rc;
}

/* ---- fingerprints ---- */

int kurer__session_fingerprint(kurer__session *s, const char *user, uint32_t device_id,
                               char text[KURER__FINGERPRINT_TEXT_MAX], uint8_t *scan,
                               size_t scan_cap, size_t *scan_len)
{
    kurer_verified v;
    fingerprint_generator *gen = NULL;
    fingerprint *fp = NULL;
    ec_public_key *local = NULL, *remote = NULL;
    signal_buffer *b = NULL;
    text[0] = '\0';
    int rc = kurer__session_peer_check(s, user, device_id, &v);
    if (rc != 0)
        return rc;
    if ((rc = decode_key(s, s->own->identity_pub, &local)) != 0 ||
        (rc = decode_key(s, v.identity_key, &remote)) != 0)
        goto out;
    if (fingerprint_generator_create(&gen, KURER__FINGERPRINT_ITER, 1, s->ctx) != 0 ||
        fingerprint_generator_create_for(gen, s->own->user, local, user, remote, &fp) != 0) {
        rc = KURER_ECRYPTO;
        goto out;
    }
    const char *t = displayable_fingerprint_text(fingerprint_get_displayable(fp));
    if (t == NULL || strlen(t) >= KURER__FINGERPRINT_TEXT_MAX) {
        rc = KURER_EINTERNAL;
        goto out;
    }
    strcpy(text, t);
    if (scan != NULL) {
        if (scannable_fingerprint_serialize(&b, fingerprint_get_scannable(fp)) != 0) {
            rc = KURER_ENOMEM;
            goto out;
        }
        if (signal_buffer_len(b) > scan_cap) {
            rc = KURER_ELIMIT;
            goto out;
        }
        memcpy(scan, signal_buffer_data(b), signal_buffer_len(b));
        *scan_len = signal_buffer_len(b);
    }
out:
    signal_buffer_free(b);
    if (fp != NULL)
        SIGNAL_UNREF(fp);
    fingerprint_generator_free(gen);
    if (local != NULL)
        SIGNAL_UNREF(local);
    if (remote != NULL)
        SIGNAL_UNREF(remote);
    return rc;
}
