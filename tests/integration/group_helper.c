/* group_helper: what the group integration tests need that an honest client never does.
 *
 *   group_helper forge HOME GROUP MODE USER
 *       makes a group change HOME's device may not make, or may not make that way, and sends it
 *       over the pairwise sessions to every device of USER (sessions already built): MODE
 *       nonadmin (an ADD of eve@fm.dk, properly signed by HOME's device, without the local
 *       admin check), unsigned (the same without a signature), badsig (the signature of
 *       another change), unknown (signed, for a group id nobody holds), timer (a SET_TIMER
 *       of 1 second, properly signed by HOME's device, without the local admin check).
 *
 *   group_helper try-decrypt SENDER_HOME TEXT TARGET_HOME
 *       takes the sender-key ciphertext of the group message TEXT that SENDER_HOME sent (as
 *       the relay stored it for every member device) and gives it to TARGET_HOME's device as
 *       if the relay had delivered it to that device, under a fresh envelope id: prints
 *       "decrypted" or "refused NAME".
 *
 *   group_helper forge-receipt HOME GROUP_ID SENT_AT USER
 *       sends, from HOME's device (not a member of the group), a DELIVERED receipt naming group
 *       GROUP_ID (64 hex digits) for the message USER sent at SENT_AT (Unix ms), pairwise to
 *       USER's devices, as a member's device would. Passphrases from KURER_PASSPHRASE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "group_recv.h"
#include "group_send.h"
#include "home.h"
#include "kurer/crypto.h"
#include "kurer/kurer.h"
#include "kurer/signal.h"
#include "kurer/util.h"
#include "store.h"
#include "store_group.h"

static int open_home(const char *home, kurer **k)
{
    const char *pw = getenv("KURER_PASSPHRASE");
    if (pw == NULL)
        return KURER_EINVAL;
    return kurer_open(home, pw, strlen(pw), NULL, NULL, NULL, k);
}

static int forge(const char *home, const char *group, const char *mode, const char *user)
{
    kurer *k = NULL;
    kurer_group_change c;
    kurer_group_control gc;
    kurer__group_state s;
    kurer_buf ch, tbs;
    const char *eve[] = {"eve@fm.dk"};
    int rc = open_home(home, &k);
    if (rc != 0)
        return rc;
    kurer__store *st = kurer__home_store(k);
    memset(&c, 0, sizeof(c));
    memset(&gc, 0, sizeof(gc));
    memset(&s, 0, sizeof(s));
    kurer_buf_init(&ch, KURER_GROUP_CHANGE_MAX);
    kurer_buf_init(&tbs, KURER_GROUP_CHANGE_MAX + KURER_GROUP_SIG_CONTEXT_LEN);
    if ((rc = kurer__store_group_resolve(st, group, c.group_id)) != 0 ||
        (rc = kurer__store_group_get(st, c.group_id, &s)) != 0)
        goto out;
    c.base_revision = s.revision;
    c.kind = KURER_GROUP_ADD;
    c.users = eve;
    c.n_users = 1;
    c.name = "";
    snprintf(c.signer.user, sizeof(c.signer.user), "%s", k->own.user);
    c.signer.device_id = k->own.device_id;
    c.timestamp = (uint64_t)kurer_time_unix() * 1000;
    if (strcmp(mode, "unknown") == 0)
        kurer_random(c.group_id, sizeof(c.group_id));
    if (strcmp(mode, "timer") == 0) {
        c.kind = KURER_GROUP_SET_TIMER;
        c.users = NULL;
        c.n_users = 0;
        c.expire_timer = 1;
    }
    if ((rc = kurer_group_change_encode(&c, &ch)) != 0 ||
        (rc = kurer__group_signed_bytes(ch.data, ch.len, &tbs)) != 0)
        goto out;
    gc.change = ch.data;
    gc.change_len = ch.len;
    gc.signer_chain = k->own.chain;
    gc.signer_chain_len = k->own.chain_len;
    if (strcmp(mode, "unsigned") != 0) {
        if (strcmp(mode, "badsig") == 0)
            tbs.data[tbs.len - 1] ^= 1; /* a signature, but of other bytes */
        if ((rc = kurer_identity_sign(k->own.identity_priv, tbs.data, tbs.len, gc.signature)) != 0)
            goto out;
        gc.has_signature = 1;
    }
    const char *to[] = {user};
    kurer__hlock_take(k);
    if ((rc = kurer__store_begin(st)) == 0) {
        rc = kurer__group_forward(k, s.id, &gc, to, 1);
        rc = rc == 0 ? kurer__store_commit(st) : (kurer__store_rollback(st), rc);
    }
    kurer__hlock_give(k);
    if (rc == 0)
        rc = kurer_flush(k, 20000);
out:
    kurer__group_state_release(&s);
    kurer_buf_release(&ch);
    kurer_buf_release(&tbs);
    kurer_disconnect(k);
    kurer_close(k);
    return rc;
}

typedef struct find_ctx {
    const char *text;
    int64_t rowid;
} find_ctx;

static int find_sent(void *ud, const kurer__msg *m)
{
    find_ctx *f = ud;
    if (m->direction == KURER__DIR_OUT && m->body_len == strlen(f->text) &&
        memcmp(m->body, f->text, m->body_len) == 0)
        f->rowid = m->rowid;
    return 0;
}

static int try_decrypt(const char *sender_home, const char *text, const char *target_home)
{
    kurer *k = NULL;
    kurer_buf ct;
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t dev;
    find_ctx f = {text, 0};
    kurer_buf_init(&ct, KURER_ENVELOPE_CONTENT_MAX);
    int rc = open_home(sender_home, &k);
    if (rc != 0)
        return rc;
    snprintf(user, sizeof(user), "%s", kurer_own_user(k));
    dev = kurer_own_device(k);
    rc = kurer__store_message_each(kurer__home_store(k), NULL, find_sent, &f);
    if (rc == 0 && f.rowid == 0)
        rc = KURER_ENOTFOUND;
    if (rc == 0)
        rc = kurer__store_group_message_ct(kurer__home_store(k), f.rowid, &ct);
    kurer_close(k);
    k = NULL;
    if (rc == 0 && (rc = open_home(target_home, &k)) == 0) {
        uint8_t id[KURER_ENVELOPE_ID_LEN];
        int state = -1;
        kurer_random(id, sizeof(id));
        kurer__hlock_take(k);
        int r = kurer__home_receive(k, id, user, dev, KURER_ENVELOPE_SENDER_KEY, ct.data, ct.len,
                                    &state);
        kurer__hlock_give(k);
        if (r == 0)
            printf("decrypted\n");
        else
            printf("refused %s\n", kurer_err_name(r));
        kurer_close(k);
    }
    kurer_buf_release(&ct);
    return rc;
}

static int forge_receipt(const char *home, const char *group, const char *sent_at, const char *user)
{
    kurer *k = NULL;
    uint8_t gid[KURER_GROUP_ID_LEN];
    uint64_t ts = 0;
    if (kurer__group_unhex(group, gid) != 0 || kurer_parse_u64(sent_at, INT64_MAX, &ts) != 0)
        return KURER_EINVAL;
    int rc = open_home(home, &k);
    if (rc != 0)
        return rc;
    kurer__hlock_take(k);
    rc = kurer__store_receipt_queue_group(kurer__home_store(k), user, KURER__RECEIPT_DELIVERED,
                                          (int64_t)ts, gid, kurer_time_unix() * 1000);
    kurer__hlock_give(k);
    if (rc == 0) /* the receipts owed go when the relay's queue is empty */
        rc = kurer_poll(k, 20000, KURER_POLL_UNTIL_EMPTY);
    kurer_disconnect(k);
    kurer_close(k);
    return rc;
}

int main(int argc, char **argv)
{
    if (kurer_crypto_init() != 0)
        return 1;
    int rc = -1;
    if (argc == 6 && strcmp(argv[1], "forge") == 0)
        rc = forge(argv[2], argv[3], argv[4], argv[5]);
    else if (argc == 5 && strcmp(argv[1], "try-decrypt") == 0)
        rc = try_decrypt(argv[2], argv[3], argv[4]);
    else if (argc == 6 && strcmp(argv[1], "forge-receipt") == 0)
        rc = forge_receipt(argv[2], argv[3], argv[4], argv[5]);
    if (rc == -1) {
        fprintf(stderr, "usage: group_helper forge HOME GROUP MODE USER\n"
                        "       group_helper try-decrypt SENDER_HOME TEXT TARGET_HOME\n"
                        "       group_helper forge-receipt HOME GROUP_ID SENT_AT USER\n");
        return 2;
    }
    if (rc != 0)
        fprintf(stderr, "group_helper: %s\n", kurer_strerror(rc));
    return rc != 0;
}
