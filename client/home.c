/* Device homes: creation, opening, certificates, the classification policy, history. */
#include "home.h"

#include "call.h"
#include "group_recv.h"
#include "store_group.h"
#include "net.h"
#include "outbox.h"
#include "receipt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kurer/buf.h"
#include "kurer/content.h"
#include "kurer/crypto.h"
#include "kurer/compare.h"
#include "kurer/csr.h"
#include "kurer/keys.h"
#include "kurer/log.h"
#include "kurer/signal.h"
#include "kurer/util.h"

_Static_assert(KURER_TEXT_MAX == KURER_CONTENT_MAX - 256,
               "KURER_TEXT_MAX follows the content limit");
_Static_assert(KURER_SUBJECT_MAX <= 128, "KURER_TEXT_MAX leaves room for a 128-byte destination");
_Static_assert(KURER_PEER_STALE_AUTHORITY_LIST == KURER_STALE_AUTHORITY_CRL &&
                   KURER_PEER_STALE_ROOT_LIST == KURER_STALE_ROOT_CRL,
               "kurer_peer_device.crl_stale passes kurer_verified.crl_stale on");

static int64_t home_clock(void *ud)
{
    const kurer *k = ud;
    return k->clock != NULL ? k->clock(k->clock_ud) : kurer_time_unix();
}

int64_t kurer__home_now(const kurer *k)
{
    return home_clock((void *)(uintptr_t)k);
}

kurer__session *kurer__home_session(kurer *k)
{
    return k->sess;
}

kurer__store *kurer__home_store(kurer *k)
{
    return k->st;
}

void kurer_close(kurer *k)
{
    if (k == NULL)
        return;
    if (kurer__net_on_library_thread(k) || kurer__hlock_mine(k)) {
        kurer_log(KURER_LOG_ERROR, "client", "close_refused",
                  (kurer_log_field[]){KURER_LOG_STR("reason", "called from a callback")}, 1);
        /* (the library thread cannot join itself; inside a kurer_history callback the
         * workers wait for the home lock this thread holds) */
        return; /* the library thread cannot join itself */
    }
    kurer__net_stop(k);
    kurer__session_free(k->sess);
    kurer__store_close(k->st);
    kurer__identity_release(&k->own);
    kurer_trust_free(k->trust);
    free(k->ec.acks);
    kurer__home_unlock(k->lock_fd);
    uv_mutex_destroy(&k->hl.mu);
    kurer_memzero(k, sizeof(*k));
    free(k);
}

static int load_crl(void *ud, const uint8_t *data, size_t len)
{
    kurer *k = ud;
    int rc = kurer_trust_add_crl(k->trust, data, len, NULL);
    return rc == KURER_ESTALE ? 0 : rc;
}

/* After the store is open: identity, trust (root, then every stored revocation list: the
 * authorities' lists of devices and the root's list of authorities alike, each kept by its
 * issuer key id), session engine. */
static int home_start(kurer *k)
{
    kurer_cert *root = malloc(sizeof(*root));
    if (root == NULL)
        return KURER_ENOMEM;
    int rc = kurer__store_identity_load(k->st, &k->own);
    if (rc == 0)
        rc = kurer_cert_decode(k->own.root, k->own.root_len, root);
    if (rc == 0)
        rc = kurer_trust_new(&k->trust);
    if (rc == 0)
        rc = kurer_trust_add_root(k->trust, root, kurer__home_now(k));
    if (rc == 0)
        rc = kurer__store_crl_each(k->st, load_crl, k);
    if (rc == 0)
        rc = kurer__session_new(k->st, &k->own, k->trust, home_clock, k, &k->sess);
    if (rc == 0)
        kurer__expire_now(k); /* what ran out while the home was closed goes first */
    free(root);
    return rc;
}

static int home_alloc(const char *home, kurer_clock_fn clock, void *clock_ud, kurer **out)
{
    *out = NULL;
    if (home == NULL || strlen(home) == 0 || strlen(home) >= KURER__HOME_PATH_MAX)
        return KURER_EINVAL;
    int rc = kurer_crypto_init();
    if (rc != 0)
        return rc;
    kurer *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return KURER_ENOMEM;
    k->lock_fd = -1;
    if (uv_mutex_init(&k->hl.mu) != 0) {
        free(k);
        return KURER_ENOMEM;
    }
    memcpy(k->home, home, strlen(home) + 1);
    k->clock = clock;
    k->clock_ud = clock_ud;
    rc = kurer_path_join(k->csr_path, sizeof(k->csr_path), home, KURER__CSR_FILE);
    if (rc == 0)
        rc =
            kurer_path_join(k->csr_text_path, sizeof(k->csr_text_path), home, KURER__CSR_TEXT_FILE);
    if (rc != 0) {
        uv_mutex_destroy(&k->hl.mu);
        free(k);
        return rc;
    }
    *out = k;
    return 0;
}

int kurer__home_create(const kurer_create_options *o, const char *pass, size_t pass_len,
                       const uint8_t *key, kurer **out)
{
    *out = NULL;
    if (o == NULL || (pass == NULL) == (key == NULL) || o->user == NULL || o->relay == NULL ||
        o->root == NULL || o->device_id == 0 || o->device_id > KURER_DEVICE_ID_MAX ||
        strlen(o->relay) > KURER__RELAY_MAX)
        return KURER_EINVAL;
    if (kurer_user_check(o->user) != 0)
        return KURER_ESUBJECT;
    const char *name = o->display_name != NULL ? o->display_name : o->user;
    if (strlen(name) > KURER_NAME_MAX)
        return KURER_ELIMIT;
    kurer *k = NULL;
    int rc = home_alloc(o->home, o->clock, o->clock_ud, &k);
    if (rc != 0)
        return rc;

    kurer_cert *root = malloc(sizeof(*root));
    kurer__identity id;
    memset(&id, 0, sizeof(id));
    id.identity_priv = kurer_secure_alloc(32);
    id.noise_priv = kurer_secure_alloc(32);
    if (root == NULL || id.identity_priv == NULL || id.noise_priv == NULL) {
        rc = KURER_ENOMEM;
        goto out;
    }
    /* The root must be a valid root now: a home pinned to garbage would never work. */
    if ((rc = kurer_cert_decode(o->root, o->root_len, root)) != 0 ||
        (rc = kurer_root_check(root, kurer__home_now(k))) != 0)
        goto out;
    if (mkdir(o->home, 0700) != 0 && errno != EEXIST) {
        rc = errno == EACCES ? KURER_EPERM : KURER_EIO;
        goto out;
    }
    /* An existing folder that group or others may enter is made owner-only (0700). */
    struct stat hst;
    if (stat(o->home, &hst) != 0 || !S_ISDIR(hst.st_mode)) {
        rc = KURER_EINVAL;
        goto out;
    }
    if (hst.st_uid != geteuid()) {
        rc = KURER_EPERM;
        goto out;
    }
    if ((hst.st_mode & 077) != 0 && chmod(o->home, 0700) != 0) {
        rc = KURER_EPERM;
        goto out;
    }

    char db[KURER__HOME_PATH_MAX + 16];
    if (kurer_path_join(db, sizeof(db), o->home, KURER__STORE_DB) == 0 && access(db, F_OK) == 0) {
        rc = KURER_EEXIST; /* (said before the lock: the home may be open) */
        goto out;
    }
    if ((rc = kurer__home_lock(o->home, NULL, &k->lock_fd)) != 0)
        goto out;
    kurer_kdf_params p = kurer_kdf_default();
    if (o->kdf_ops != 0)
        p.opslimit = o->kdf_ops;
    if (o->kdf_mem != 0)
        p.memlimit = o->kdf_mem;
    rc = key != NULL ? kurer__store_create_key(o->home, key, &k->st)
                     : kurer__store_create_pass(o->home, pass, pass_len, &p, &k->st);
    if (rc != 0)
        goto out;

    memcpy(id.user, o->user, strlen(o->user) + 1);
    id.device_id = o->device_id;
    memcpy(id.display_name, name, strlen(name) + 1);
    /* libsignal registration ids are 14 bits and never 0. */
    id.registration_id = kurer_random_uniform(16380) + 1;
    if ((rc = kurer_identity_generate(id.identity_pub, id.identity_priv)) != 0)
        goto out;
    kurer_x25519_generate(id.noise_pub, id.noise_priv);
    memcpy(id.relay, o->relay, strlen(o->relay) + 1);
    memcpy(id.relay_key, o->relay_key, KURER_KEY_LEN);
    id.root = (uint8_t *)(uintptr_t)o->root;
    id.root_len = o->root_len;
    rc = kurer__store_identity_create(k->st, &id);
    id.root = NULL;
    if (rc != 0)
        goto out;
    k->own = id; /* copied fields; home_start loads the stored identity again */
    rc = kurer__home_write_csr(k, id.identity_priv);
    memset(&k->own, 0, sizeof(k->own));
    if (rc == 0)
        rc = home_start(k);
    if (rc == 0)
        rc = kurer__net_start(k);
out:
    kurer__identity_release(&id);
    free(root);
    if (rc != 0) {
        kurer_close(k);
        return rc;
    }
    kurer_log(
        KURER_LOG_INFO, "client", "home_created",
        (kurer_log_field[]){KURER_LOG_STR("user", o->user), KURER_LOG_INT("device", o->device_id)},
        2);
    *out = k;
    return 0;
}

int kurer_open_with(const kurer_open_options *o, kurer **out)
{
    *out = NULL;
    if (o == NULL || (o->pass == NULL) == (o->key == NULL))
        return KURER_EINVAL;
    kurer *k = NULL;
    int rc = home_alloc(o->home, o->clock, o->clock_ud, &k);
    if (rc != 0)
        return rc;
    /* The lock first: a held home is refused before any key derivation. */
    rc = kurer__home_lock(o->home, o->holder, &k->lock_fd);
    if (rc == 0)
        rc = o->key != NULL ? kurer__store_open_key(o->home, o->key, &k->st)
                            : kurer__store_open_pass(o->home, o->pass, o->pass_len, &k->st);
    if (rc == 0)
        rc = home_start(k);
    if (rc == 0)
        rc = kurer__net_start(k);
    if (rc != 0) {
        kurer_close(k);
        return rc;
    }
    *out = k;
    return 0;
}

int kurer__home_passwd_unlocked(kurer *k, const char *pass, size_t pass_len, const uint8_t *key)
{
    if (k == NULL || (pass == NULL) == (key == NULL))
        return KURER_EINVAL;
    /* Keep the Argon2id parameters the home was made with. */
    kurer_kdf_params p = kurer_kdf_default();
    char path[KURER__HOME_PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    uint8_t salt[KURER_SALT_LEN];
    if (pass != NULL && kurer_path_join(path, sizeof(path), k->home, KURER__STORE_KDF) == 0 &&
        kurer_file_read(path, 256, &data, &len) == 0) {
        kurer_kdf_params old;
        if (kurer_kdf_record_decode(data, len, &old, salt) == 0)
            p = old;
        free(data);
    }
    return key != NULL ? kurer__store_rekey_key(k->st, key)
                       : kurer__store_rekey_pass(k->st, pass, pass_len, &p);
}

int kurer__home_set_relay_unlocked(kurer *k, const char *relay, const uint8_t *relay_key)
{
    if (k == NULL || relay == NULL || strlen(relay) == 0 || strlen(relay) > KURER__RELAY_MAX)
        return KURER_EINVAL;
    uint8_t key[KURER_KEY_LEN];
    memcpy(key, relay_key != NULL ? relay_key : k->own.relay_key, sizeof(key));
    int rc = kurer__store_identity_set_relay(k->st, relay, key);
    if (rc != 0)
        return rc;
    kurer__net_relay_changed(k); /* the next attempt goes to the new address */
    memcpy(k->own.relay, relay, strlen(relay) + 1);
    memcpy(k->own.relay_key, key, sizeof(key));
    return 0;
}

const uint8_t *kurer_own_identity_key(const kurer *k)
{
    return k->own.identity_pub;
}

const uint8_t *kurer_own_noise_key(const kurer *k)
{
    return k->own.noise_pub;
}

int kurer__home_own_certificate_unlocked(kurer *k, kurer_peer_device_fn fn, void *ud)
{
    if (k == NULL || fn == NULL)
        return KURER_EINVAL;
    if (k->own.chain == NULL)
        return KURER_ESTATE;
    kurer_chain *chain = malloc(sizeof(*chain));
    if (chain == NULL)
        return KURER_ENOMEM;
    int rc = kurer_chain_decode(k->own.chain, k->own.chain_len, chain);
    if (rc == 0) {
        kurer_verified v;
        kurer_peer_device d;
        char fp[65];
        const kurer_cert_body *b = &chain->certs[0].body;
        memset(&d, 0, sizeof(d));
        d.user = k->own.user;
        d.device_id = k->own.device_id;
        d.status = kurer_trust_verify_chain(k->trust, chain, kurer__home_now(k), &v);
        d.crl_stale = v.crl_stale;
        d.crl_stale_since = v.crl_stale_since;
        d.serial = b->serial;
        d.clearance = d.status == 0 ? (int)v.clearance : 0;
        d.authority = kurer_user_authority(b->subject);
        d.not_before = b->not_before;
        d.not_after = b->not_after;
        kurer_cert_fingerprint(&chain->certs[0], fp);
        d.cert_fingerprint = fp;
        rc = fn(ud, &d);
    }
    free(chain);
    return rc;
}

const char *kurer_relay_address(const kurer *k)
{
    return k->own.relay;
}

const char *kurer_own_user(const kurer *k)
{
    return k->own.user;
}

uint32_t kurer_own_device(const kurer *k)
{
    return k->own.device_id;
}

const char *kurer_csr_path(const kurer *k)
{
    return k->csr_path;
}

const char *kurer_csr_text_path(const kurer *k)
{
    return k->csr_text_path;
}

static int import_chain(kurer *k, const kurer_chain *chain)
{
    kurer_verified v;
    kurer_buf b;
    int rc = kurer_trust_verify_chain(k->trust, chain, kurer__home_now(k), &v);
    if (rc != 0)
        return rc;
    if (strcmp(v.user, k->own.user) != 0 || v.device_id != k->own.device_id)
        return KURER_ESUBJECT;
    if (!kurer_ct_equal(v.identity_key, k->own.identity_pub, KURER_IDENTITY_KEY_LEN) ||
        !kurer_ct_equal(v.noise_key, k->own.noise_pub, KURER_X25519_LEN))
        return KURER_EKEYMISMATCH;
    kurer_buf_init(&b, KURER_CHAIN_BYTES_MAX);
    rc = kurer_chain_encode(chain, &b);
    if (rc == 0)
        rc = kurer__store_identity_set_chain(k->st, b.data, b.len);
    if (rc == 0) {
        uint8_t *copy = malloc(b.len);
        if (copy == NULL) {
            rc = KURER_ENOMEM;
        } else {
            memcpy(copy, b.data, b.len);
            free(k->own.chain);
            k->own.chain = copy;
            k->own.chain_len = b.len;
        }
    }
    kurer_buf_release(&b);
    return rc;
}

int kurer__home_import_chain_unlocked(kurer *k, const uint8_t *data, size_t len)
{
    kurer_chain *chain = malloc(sizeof(*chain));
    if (chain == NULL)
        return KURER_ENOMEM;
    int rc = kurer_chain_decode(data, len, chain);
    if (rc == 0)
        rc = import_chain(k, chain);
    free(chain);
    return rc;
}

int kurer__home_import_certs_unlocked(kurer *k, const uint8_t *device, size_t device_len,
                                      const uint8_t *authority, size_t authority_len)
{
    kurer_chain *chain = calloc(1, sizeof(*chain));
    if (chain == NULL)
        return KURER_ENOMEM;
    int rc = kurer_cert_decode(device, device_len, &chain->certs[0]);
    if (rc == 0)
        rc = kurer_cert_decode(authority, authority_len, &chain->certs[1]);
    chain->n = 2;
    if (rc == 0)
        rc = import_chain(k, chain);
    free(chain);
    return rc;
}

int kurer__home_add_peer_unlocked(kurer *k, const uint8_t *data, size_t len)
{
    kurer_chain *chain = malloc(sizeof(*chain));
    if (chain == NULL)
        return KURER_ENOMEM;
    int rc = kurer_chain_decode(data, len, chain);
    if (rc == 0)
        rc = kurer__session_peer_add(k->sess, chain, NULL);
    free(chain);
    return rc;
}

int kurer__home_add_revocations_unlocked(kurer *k, const uint8_t *data, size_t len)
{
    uint64_t version = 0;
    kurer_crl crl;
    int rc = kurer_crl_decode(data, len, &crl);
    if (rc != 0)
        return rc;
    rc = kurer_trust_add_crl(k->trust, data, len, &version);
    /* Keep it: the newest list of each authority survives a restart. */
    if (rc == 0)
        rc = kurer__store_crl_put(k->st, crl.issuer_key_id, version, data, len);
    kurer_crl_release(&crl);
    return rc;
}

/* ---- classification policy ---- */

void kurer__home_refuse(kurer_refusal *why, kurer_refusal_by by, const char *user, uint32_t dev,
                        int limit)
{
    if (why == NULL)
        return;
    memset(why, 0, sizeof(*why));
    why->by = by;
    if (user != NULL)
        snprintf(why->user, sizeof(why->user), "%s", user);
    why->device_id = dev;
    why->limit = limit;
}

static int level_ok(int level)
{
    if (level >= KURER_LEVEL_UNCLASSIFIED && level <= KURER_LEVEL_CONFIDENTIAL)
        return 0;
    return level == 4 || level == 5 ? KURER_ECLEARANCE : KURER_EINVAL;
}

/* Our own chain, verified now. */
static int own_verified(kurer *k, kurer_verified *v)
{
    if (k->own.chain == NULL)
        return KURER_ESTATE; /* not enrolled yet */
    kurer_chain *chain = malloc(sizeof(*chain));
    if (chain == NULL)
        return KURER_ENOMEM;
    int rc = kurer_chain_decode(k->own.chain, k->own.chain_len, chain);
    if (rc == 0)
        rc = kurer_trust_verify_chain(k->trust, chain, kurer__home_now(k), v);
    free(chain);
    return rc;
}

int kurer__home_check_send_unlocked(kurer *k, const char *to, int level, kurer_refusal *why)
{
    kurer_verified me, peer;
    uint32_t *devs = NULL;
    size_t n = 0;
    kurer__home_refuse(why, KURER_REFUSED_BY_NONE, NULL, 0, 0);
    if (k == NULL || to == NULL)
        return KURER_EINVAL;
    int rc = level_ok(level);
    if (rc != 0)
        return rc;
    if ((rc = own_verified(k, &me)) != 0) {
        kurer__home_refuse(why, KURER_REFUSED_BY_SENDER, k->own.user, k->own.device_id, 0);
        return rc;
    }
    if (level > (int)me.ceiling) {
        kurer__home_refuse(why, KURER_REFUSED_BY_CEILING, NULL, 0, (int)me.ceiling);
        return KURER_ECLEARANCE;
    }
    if (level > (int)me.clearance) {
        kurer__home_refuse(why, KURER_REFUSED_BY_SENDER, me.user, me.device_id, (int)me.clearance);
        return KURER_ECLEARANCE;
    }
    if ((rc = kurer__store_peer_devices(k->st, to, &devs, &n)) != 0)
        return rc;
    if (n == 0) {
        kurer__home_refuse(why, KURER_REFUSED_BY_RECIPIENT, to, 0, 0);
        rc = KURER_ENOTFOUND;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = kurer__session_peer_check(k->sess, to, devs[i], &peer);
        if (rc != 0) {
            kurer__home_refuse(why, KURER_REFUSED_BY_RECIPIENT, to, devs[i], 0);
        } else if (level > (int)peer.clearance) {
            kurer__home_refuse(why, KURER_REFUSED_BY_RECIPIENT, to, devs[i], (int)peer.clearance);
            rc = KURER_ECLEARANCE;
        }
    }
    free(devs);
    return rc;
}

int kurer__home_check_receive_unlocked(kurer *k, const char *from, uint32_t device_id, int level,
                                       kurer_refusal *why)
{
    kurer_verified me, peer;
    kurer__home_refuse(why, KURER_REFUSED_BY_NONE, NULL, 0, 0);
    if (k == NULL || from == NULL)
        return KURER_EINVAL;
    int rc = level_ok(level);
    if (rc != 0)
        return rc;
    if ((rc = kurer__session_peer_check(k->sess, from, device_id, &peer)) != 0) {
        kurer__home_refuse(why, KURER_REFUSED_BY_SENDER, from, device_id, 0);
        return rc;
    }
    if (level > (int)peer.ceiling) {
        kurer__home_refuse(why, KURER_REFUSED_BY_CEILING, NULL, 0, (int)peer.ceiling);
        return KURER_ECLEARANCE;
    }
    if (level > (int)peer.clearance) {
        kurer__home_refuse(why, KURER_REFUSED_BY_SENDER, from, device_id, (int)peer.clearance);
        return KURER_ECLEARANCE;
    }
    /* Without a valid certificate of our own we do not know our clearance: quarantine. */
    if ((rc = own_verified(k, &me)) != 0) {
        kurer__home_refuse(why, KURER_REFUSED_BY_RECIPIENT, k->own.user, k->own.device_id, 0);
        return rc;
    }
    if (level > (int)me.clearance) {
        kurer__home_refuse(why, KURER_REFUSED_BY_RECIPIENT, me.user, me.device_id,
                           (int)me.clearance);
        return KURER_ECLEARANCE;
    }
    return 0;
}

/* The send policy for one envelope, at the moment it goes out: our own certificate and the
 * ceiling allow level, and user/device holds a valid certificate now that allows it too. */
int kurer__home_check_device(kurer *k, int level, const char *user, uint32_t device,
                             kurer_refusal *why)
{
    kurer_verified me, peer;
    kurer__home_refuse(why, KURER_REFUSED_BY_NONE, NULL, 0, 0);
    int rc = level_ok(level);
    if (rc != 0)
        return rc;
    if ((rc = own_verified(k, &me)) != 0) {
        kurer__home_refuse(why, KURER_REFUSED_BY_SENDER, k->own.user, k->own.device_id, 0);
        return rc;
    }
    if (level > (int)me.ceiling) {
        kurer__home_refuse(why, KURER_REFUSED_BY_CEILING, NULL, 0, (int)me.ceiling);
        return KURER_ECLEARANCE;
    }
    if (level > (int)me.clearance) {
        kurer__home_refuse(why, KURER_REFUSED_BY_SENDER, me.user, me.device_id, (int)me.clearance);
        return KURER_ECLEARANCE;
    }
    if ((rc = kurer__session_peer_check(k->sess, user, device, &peer)) != 0) {
        kurer__home_refuse(why, KURER_REFUSED_BY_RECIPIENT, user, device, 0);
        return rc;
    }
    if (level > (int)peer.clearance) {
        kurer__home_refuse(why, KURER_REFUSED_BY_RECIPIENT, user, device, (int)peer.clearance);
        return KURER_ECLEARANCE;
    }
    return 0;
}

/* ---- the engine's receive half (the send half: home_queue.c) ---- */

typedef struct recv_ctx {
    kurer *k;
    const uint8_t *id;
    int refused; /* content decrypted but not accepted: the reason */
    int state;
    int has_call;  /* a CallMessage: for the calls module once the ratchet step is committed */
    int via_group; /* a sender-key envelope of group (set by kurer__group_receive) */
    uint8_t group[KURER_GROUP_ID_LEN];
    kurer_call_message call;
    uint8_t ticket[KURER_MEDIA_TICKET_MAX];
} recv_ctx;

/* The received message's row and what goes with it, in the decrypting transaction: its group,
 * its timer and the DELIVERED receipt it owes, its attachment pointers. */
static int store_received(recv_ctx *r, kurer__msg *m, const kurer_data_message *dm, int is_sync)
{
    m->unreported = 1; /* given to the application at least once (engine.c) */
    int rc = kurer__store_message_insert(r->k->st, m);
    if (rc == 0 && r->via_group)
        rc = kurer__store_group_message_put(r->k->st, m->rowid, r->group, KURER__GROUP_MSG_DATA);
    if (rc == 0)
        rc = kurer__receipt_stored(r->k, m, dm, is_sync);
    if (rc == 0 && r->via_group)
        rc = kurer__group_timer_stored(r->k, m, dm, r->group);
    if (rc == 0 && m->state != KURER__MSG_QUARANTINED)
        rc = kurer__store_attach_put(r->k->st, m->rowid, dm->attachments, dm->n_attachments);
    return rc;
}

/* Inside the decrypting transaction. Returns 0 whenever the ratchet step should commit. */
static int on_plaintext(void *ud, const kurer_verified *sender, const uint8_t *pt, size_t n)
{
    recv_ctx *r = ud;
    kurer_content c;
    memset(&c, 0, sizeof(c));
    int rc = kurer_content_decode_padded(pt, n, &c);
    if (rc != 0) {
        /* It decrypted, so the sender's ratchet moved: keep the step, drop the content. */
        r->refused = rc;
        return 0;
    }
    /* A sync copy is what one of our own other devices sent; from anyone else it is refused. */
    int is_sync = c.body == KURER_CONTENT_SYNC && strcmp(sender->user, r->k->own.user) == 0;
    if (c.body == KURER_CONTENT_CALL) {
        /* Signalling, not a message: kept aside (never stored), handed on after the commit. */
        r->has_call = 1;
        kurer__calls_copy(&r->call, r->ticket, &c.u.call);
        kurer_content_release(&c);
        return 0;
    }
    if (c.body == KURER_CONTENT_GROUP_CONTROL || c.body == KURER_CONTENT_SENDER_KEY) {
        /* Group state and keys (group_recv.c), committed with the ratchet step. */
        rc = c.body == KURER_CONTENT_GROUP_CONTROL
                 ? kurer__group_on_control(r->k, sender, &c.u.group_control)
                 : kurer__group_on_distribution(r->k, sender, &c.u.sender_key);
        kurer_content_release(&c);
        if (rc != 0 && !kurer__store_fatal(rc))
            r->refused = rc;
        return kurer__store_fatal(rc) ? rc : 0;
    }
    if (!r->via_group &&
        (c.body == KURER_CONTENT_RECEIPT || c.body == KURER_CONTENT_SYNC_RECEIPT)) {
        /* Recorded on the messages it names (receipt.c); never stored as one, never receipted. */
        rc = kurer__receipt_received(r->k, sender, &c);
        kurer_content_release(&c);
        if (rc == KURER_EUNSUPPORTED)
            r->refused = rc;
        return rc == KURER_EUNSUPPORTED ? 0 : rc;
    }
    /* Sender-key envelopes carry group messages (no timer notice), and only they carry them. */
    int group_ok =
        c.body == KURER_CONTENT_DATA && c.u.data.has_group == r->via_group &&
        (!r->via_group || (!c.u.data.timer_change &&
                           !memcmp(c.u.data.group.group_id, r->group, KURER_GROUP_ID_LEN)));
    if ((c.body != KURER_CONTENT_DATA && !is_sync) || (r->via_group && !group_ok)) {
        r->refused = r->via_group ? KURER_EMALFORMED : KURER_EUNSUPPORTED; /* a newer kind */
        kurer_content_release(&c);
        return 0;
    }
    if (r->via_group && (rc = kurer__group_data_check(r->k, sender, r->group)) != 0) {
        r->refused = rc; /* not a member (or no longer): not stored */
        kurer_content_release(&c);
        return kurer__store_fatal(rc) ? rc : 0;
    }
    const kurer_data_message *dm = is_sync ? &c.u.sync.message : &c.u.data;
    kurer__msg m;
    memset(&m, 0, sizeof(m));
    memcpy(m.envelope_id, r->id, KURER_ENVELOPE_ID_LEN);
    if (is_sync) {
        if (kurer_user_check(c.u.sync.destination) != 0) {
            r->refused = KURER_EMALFORMED;
            kurer_content_release(&c);
            return 0;
        }
        m.direction = KURER__DIR_OUT;
        memcpy(m.peer, c.u.sync.destination, sizeof(m.peer));
        m.peer_device = 0;
    } else {
        m.direction = KURER__DIR_IN;
        memcpy(m.peer, sender->user, sizeof(m.peer));
        m.peer_device = sender->device_id;
    }
    m.level = (int)dm->classification;
    m.sent_at = dm->timestamp > INT64_MAX ? INT64_MAX : (int64_t)dm->timestamp;
    m.received_at = kurer__home_now(r->k) * 1000;
    int why = kurer_check_receive(r->k, sender->user, sender->device_id, m.level, NULL);
    /* What this client cannot honour is not shown as something else: a group message is not a
     * direct one, and a timer above the longest is not honoured. Attachments are kept (their
     * pointers, with the message; the blobs are fetched when asked: kurer_attachment_save). */
    if (why == 0 && ((dm->has_group && !r->via_group) || dm->expire_timer > KURER_TIMER_MAX))
        why = KURER_EUNSUPPORTED;
    if (why == 0) {
        m.state = is_sync ? KURER__MSG_SENT : KURER__MSG_RECEIVED;
        m.body = dm->body;
        m.body_len = strlen(dm->body);
    } else {
        /* Quarantined: the row records that it came and why, not what it said. */
        m.state = KURER__MSG_QUARANTINED;
        m.reason = why;
        m.body = "";
        m.body_len = 0;
        kurer_log(KURER_LOG_WARN, "client", "message_quarantined",
                  (kurer_log_field[]){KURER_LOG_STR("peer", sender->user),
                                      KURER_LOG_INT("device", sender->device_id),
                                      KURER_LOG_STR("level", kurer_level_name(m.level)),
                                      KURER_LOG_STR("reason", kurer_err_name(why))},
                  4);
    }
    rc = store_received(r, &m, dm, is_sync);
    kurer_content_release(&c);
    r->state = m.state;
    return rc;
}

int kurer__home_receive(kurer *k, const uint8_t id[KURER_ENVELOPE_ID_LEN], const char *from,
                        uint32_t device_id, kurer_envelope_type type, const uint8_t *ct, size_t n,
                        int *state)
{
    recv_ctx r = {.k = k, .id = id, .refused = 0, .state = -1};
    int rc;
    if (type == KURER_ENVELOPE_SENDER_KEY) {
        r.via_group = 1;
        rc = kurer__group_receive(k, id, from, device_id, ct, n, on_plaintext, &r, r.group);
    } else {
        rc = kurer__session_decrypt(k->sess, id, from, device_id, type, ct, n, on_plaintext, &r);
    }
    if (rc == 0 && r.refused != 0)
        rc = r.refused;
    if (rc == 0 && r.has_call)
        kurer__calls_on_message(k, from, device_id, &r.call);
    kurer_memzero(&r.call, sizeof(r.call));
    if (rc == 0 && state != NULL)
        *state = r.state;
    return rc;
}

/* ---- history, fingerprints ---- */

typedef struct history_ctx {
    kurer *k;
    kurer_message_fn fn;
    void *ud;
    int direct;        /* one-to-one messages only (history with a peer) */
    const char *group; /* a group's only: its hex id */
} history_ctx;

static int history_row(void *ud, const kurer__msg *m)
{
    history_ctx *h = ud;
    kurer_message out;
    memset(&out, 0, sizeof(out));
    memcpy(out.id, m->envelope_id, sizeof(out.id));
    out.outgoing = m->direction == KURER__DIR_OUT;
    out.peer = m->peer;
    out.peer_device = m->peer_device;
    out.level = m->level;
    /* SQLite text columns are NUL-terminated. */
    out.body = m->state == KURER__MSG_QUARANTINED ? "" : m->body;
    out.sent_at = m->sent_at;
    out.received_at = m->received_at;
    out.state = (kurer_message_state)m->state;
    out.reason = m->reason;
    if (kurer__group_message_tag(h->k, m->rowid, out.group))
        return 0; /* a group change we sent: not a message */
    if ((h->direct && out.group[0] != '\0') ||
        (h->group != NULL && strcmp(out.group, h->group) != 0))
        return 0; /* another conversation */
    kurer__receipt_rows rows;
    memset(&rows, 0, sizeof(rows));
    int rc = kurer__receipt_fill(h->k, m->rowid, &out, &rows);
    /* Past its countdown: gone, whether or not the tick has deleted it yet. */
    if (rc == 0 && (out.expires_at == 0 || out.expires_at > kurer__home_now(h->k) * 1000))
        rc = h->fn(h->ud, &out);
    kurer__receipt_rows_free(&rows);
    return rc;
}

int kurer__home_history_unlocked(kurer *k, const char *with, kurer_message_fn fn, void *ud)
{
    if (k == NULL || fn == NULL)
        return KURER_EINVAL;
    history_ctx h = {k, fn, ud, with != NULL, NULL};
    return kurer__store_message_each(k->st, with, history_row, &h);
}

int kurer__home_history_group_unlocked(kurer *k, const char *group, kurer_message_fn fn, void *ud)
{
    uint8_t gid[KURER_GROUP_ID_LEN];
    char hex[KURER__GROUP_HEX_LEN + 1];
    if (k == NULL || group == NULL || fn == NULL)
        return KURER_EINVAL;
    int rc = kurer__store_group_resolve(k->st, group, gid);
    if (rc != 0)
        return rc;
    kurer__group_hex(gid, hex);
    history_ctx h = {k, fn, ud, 0, hex};
    return kurer__store_message_each(k->st, NULL, history_row, &h);
}

int kurer__home_fingerprint_unlocked(kurer *k, const char *user, uint32_t device_id, char text[64])
{
    if (k == NULL || user == NULL)
        return KURER_EINVAL;
    return kurer__session_fingerprint(k->sess, user, device_id, text, NULL, 0, NULL);
}

int kurer__home_peer_devices_unlocked(kurer *k, const char *user, kurer_peer_device_fn fn, void *ud)
{
    uint32_t *devs = NULL;
    size_t n = 0;
    if (k == NULL || user == NULL || fn == NULL)
        return KURER_EINVAL;
    kurer_chain *chain = malloc(sizeof(*chain));
    if (chain == NULL)
        return KURER_ENOMEM;
    int rc = kurer__store_peer_devices(k->st, user, &devs, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        kurer_verified v;
        char fp[65];
        if ((rc = kurer__store_peer_device_get(k->st, user, devs[i], &data, &len)) != 0)
            break;
        rc = kurer_chain_decode(data, len, chain);
        free(data);
        if (rc != 0)
            break;
        kurer_peer_device d;
        memset(&d, 0, sizeof(d));
        const kurer_cert_body *b = &chain->certs[0].body;
        d.user = user;
        d.device_id = devs[i];
        d.status = kurer_trust_verify_chain(k->trust, chain, kurer__home_now(k), &v);
        d.crl_stale = v.crl_stale;
        d.crl_stale_since = v.crl_stale_since;
        d.serial = b->serial;
        d.clearance = d.status == 0 ? (int)v.clearance : 0;
        d.authority = kurer_user_authority(b->subject);
        d.not_before = b->not_before;
        d.not_after = b->not_after;
        kurer_cert_fingerprint(&chain->certs[0], fp);
        d.cert_fingerprint = fp;
        rc = fn(ud, &d);
    }
    free(devs);
    free(chain);
    return rc;
}
