/* client_helper: what the integration tests need that an honest client never does.
 *
 *   client_helper rogue-send HOME TO LEVEL TEXT
 *       sends TEXT at LEVEL (1..3) to every device of TO without the send-side classification
 *       policy, through libkurer's internals, so that the receiving side's quarantine can be
 *       tested with real processes. The passphrase comes from KURER_PASSPHRASE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "home.h"
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
    if ((rc = kurer__store_peer_devices(st, to, &devs, &n)) != 0)
        goto out;
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
    if ((rc = kurer__store_begin(st)) != 0)
        goto out;
    rc = kurer__store_message_insert(st, &m);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = kurer__home_encrypt_for(k, m.rowid, to, level, text, m.sent_at, to, devs[i]);
    if (rc != 0) {
        kurer__store_rollback(st);
        goto out;
    }
    if ((rc = kurer__store_commit(st)) == 0)
        rc = kurer_flush(k, 20000);
out:
    free(devs);
    kurer_disconnect(k);
    kurer_close(k);
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
    fprintf(stderr, "usage: client_helper rogue-send HOME TO LEVEL TEXT\n");
    return 2;
}
