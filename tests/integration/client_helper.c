/* client_helper: what the integration tests need that an honest client never does.
 *
 *   client_helper rogue-send HOME TO LEVEL TEXT
 *       sends TEXT at LEVEL (1..3) to every device of TO without the send-side classification
 *       policy, through libkurer's internals, so that the receiving side's quarantine can be
 *       tested with real processes. The passphrase comes from KURER_PASSPHRASE.
 *
 *   client_helper big-crl AUTHDIR CHAIN N OUT
 *       writes to OUT a revocation list of AUTHDIR's authority (its key opened with
 *       KURER_ADMIN_PASSPHRASE) holding N serials: the leaf serial of the certificate chain file
 *       CHAIN and N-1 others, with a version above that of AUTHDIR/crl. What kurer-admin
 *       revoke would take N runs to build; the format's bound is 100,000 entries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "home.h"
#include "kurer/cert.h"
#include "kurer/crypto.h"
#include "kurer/kurer.h"
#include "kurer/util.h"

static int rogue_send(const char *home, const char *to, int level, const char *text)
{
    const char *pw = getenv("KURER_PASSPHRASE");
    kurer *k = NULL;
    uint32_t *devs = NULL;
    size_t n = 0;
    if (pw == NULL)
        return KURER_EINVAL;
    int rc = kurer_open(home, pw, strlen(pw), NULL, NULL, NULL, &k);
    if (rc != 0)
        return rc;
    /* An allowed message first: it builds the sessions (directory, bundles, X3DH). */
    if ((rc = kurer_send(k, to, KURER_LEVEL_UNCLASSIFIED, "(test setup)", 20000, NULL)) != 0)
        goto out;
    kurer__store *st = kurer__home_store(k);
    /* The handle's own threads work on the store too (deliveries, receipts owed, the outbox):
     * the home lock, as every worker holds it, while this touches the store and libsignal. */
    kurer__hlock_take(k);
    if ((rc = kurer__store_peer_devices(st, to, &devs, &n)) != 0) {
        kurer__hlock_give(k);
        goto out;
    }
    kurer__msg m;
    memset(&m, 0, sizeof(m));
    kurer_random(m.envelope_id, sizeof(m.envelope_id));
    m.direction = KURER__DIR_OUT;
    snprintf(m.peer, sizeof(m.peer), "%s", to);
    /* The row says UNCLASSIFIED, so that the outbox's own send-time policy check lets the
     * items go; the encrypted content carries the real level. */
    m.level = KURER_LEVEL_UNCLASSIFIED;
    m.body = text;
    m.body_len = strlen(text);
    m.sent_at = m.received_at = kurer__home_now(k) * 1000;
    m.state = KURER__MSG_PENDING;
    if ((rc = kurer__store_begin(st)) == 0) {
        rc = kurer__store_message_insert(st, &m);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = kurer__home_encrypt_for(k, m.rowid, to, level, text, m.sent_at, to, devs[i]);
        if (rc != 0)
            kurer__store_rollback(st);
        else
            rc = kurer__store_commit(st);
    }
    kurer__hlock_give(k);
    if (rc == 0)
        rc = kurer_flush(k, 20000);
out:
    free(devs);
    kurer_disconnect(k);
    kurer_close(k);
    return rc;
}

static int big_crl(const char *authdir, const char *chain_path, size_t n, const char *out)
{
    const char *pw = getenv("KURER_ADMIN_PASSPHRASE");
    char path[4096];
    uint8_t *data = NULL;
    size_t len;
    kurer_signing_key key;
    kurer_cert auth;
    kurer_chain chain;
    kurer_crl crl, old;
    kurer_buf b;
    memset(&key, 0, sizeof(key));
    memset(&crl, 0, sizeof(crl));
    if (pw == NULL || n == 0 || n > KURER_CRL_MAX_ENTRIES)
        return KURER_EINVAL;
    snprintf(path, sizeof(path), "%s/authority.key", authdir);
    int rc = kurer_signing_key_load(&key, path, pw, strlen(pw));
    snprintf(path, sizeof(path), "%s/authority.crt", authdir);
    if (rc == 0 && (rc = kurer_file_read(path, KURER_CERT_MAX, &data, &len)) == 0) {
        rc = kurer_cert_decode(data, len, &auth);
        free(data);
    }
    if (rc == 0 && (rc = kurer_file_read(chain_path, KURER_CHAIN_BYTES_MAX, &data, &len)) == 0) {
        rc = kurer_chain_decode(data, len, &chain);
        free(data);
    }
    snprintf(path, sizeof(path), "%s/crl", authdir);
    if (rc == 0 && (rc = kurer_file_read(path, KURER_CRL_BYTES_MAX, &data, &len)) == 0) {
        rc = kurer_crl_decode(data, len, &old);
        free(data);
        crl.version = old.version + 1;
        kurer_crl_release(&old);
    }
    if (rc == 0 && (crl.revoked = calloc(n, sizeof(*crl.revoked))) == NULL)
        rc = KURER_ENOMEM;
    if (rc == 0) {
        /* sorted and unique: serials far above any issued, and the chain's own */
        uint64_t mine = chain.certs[0].body.serial;
        size_t k = 0;
        for (uint64_t s = 1u << 30; k + 1 < n; s += 7)
            crl.revoked[k++].serial = s;
        crl.revoked[k++].serial = mine;
        for (size_t i = 0; i < k; i++) {
            crl.revoked[i].revoked_at = kurer_time_unix();
            crl.revoked[i].reason = KURER_REASON_KEY_COMPROMISE;
        }
        crl.n_revoked = k;
        for (size_t i = k - 1; i > 0 && crl.revoked[i].serial < crl.revoked[i - 1].serial; i--) {
            kurer_revoked t = crl.revoked[i];
            crl.revoked[i] = crl.revoked[i - 1];
            crl.revoked[i - 1] = t;
        }
        crl.issued_at = kurer_time_unix();
        crl.next_update = crl.issued_at + 30 * 86400;
        rc = kurer_crl_sign(&crl, &key, &auth);
    }
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    if (rc == 0)
        rc = kurer_crl_encode(&crl, &b);
    if (rc == 0)
        rc = kurer_file_write(out, b.data, b.len, 0644, 0);
    kurer_buf_release(&b);
    kurer_crl_release(&crl);
    kurer_signing_key_release(&key);
    return rc;
}

int main(int argc, char **argv)
{
    if (kurer_crypto_init() != 0)
        return 1;
    if (argc == 6 && strcmp(argv[1], "rogue-send") == 0) {
        int rc = rogue_send(argv[2], argv[3], atoi(argv[4]), argv[5]);
        if (rc != 0)
            fprintf(stderr, "client_helper: %s\n", kurer_strerror(rc));
        return rc != 0;
    }
    if (argc == 6 && strcmp(argv[1], "big-crl") == 0) {
        int rc = big_crl(argv[2], argv[3], strtoul(argv[4], NULL, 10), argv[5]);
        if (rc != 0)
            fprintf(stderr, "client_helper: %s\n", kurer_strerror(rc));
        return rc != 0;
    }
    fprintf(stderr, "usage: client_helper rogue-send HOME TO LEVEL TEXT\n"
                    "       client_helper big-crl AUTHDIR CHAIN N OUT\n");
    return 2;
}
