/* The sqlite backend's schema (a list of migration steps) and key handling. */
#include "store_sqlite.h"

#include <stdio.h>

#include "kurer/crypto.h"
#include "kurer/error.h"
#include "kurer/log.h"
#include "kurer/util.h"

/* The store's schema as a list of steps: a store at version v (PRAGMA user_version) runs the
 * steps after v, all in one transaction, then records the new version. A released step is
 * never edited: a change is a new step at the end. Steps 1..3 use IF NOT EXISTS because the
 * first relays created those tables that way at every start. */
static const char *const MIGRATIONS[] = {
    /* 1: mailboxes and the directory */
    ("CREATE TABLE IF NOT EXISTS mailbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT "
     "NULL, device INTEGER NOT NULL, env BLOB NOT NULL);"
     "CREATE INDEX IF NOT EXISTS mailbox_dev ON mailbox(user, device, seq);"
     "CREATE TABLE IF NOT EXISTS devices(user TEXT NOT NULL, device INTEGER NOT NULL, serial "
     "INTEGER NOT NULL, chain BLOB NOT NULL, PRIMARY KEY(user, device));"),
    /* 2: prekeys, and the newest verified revocation list per issuer key id */
    ("CREATE TABLE IF NOT EXISTS prekey_devices(user TEXT NOT NULL, device INTEGER NOT NULL, "
     "registration_id INTEGER NOT NULL, spk_id INTEGER NOT NULL, spk_pub BLOB NOT NULL, "
     "spk_sig BLOB NOT NULL, spk_created INTEGER NOT NULL, PRIMARY KEY(user, device));"
     "CREATE TABLE IF NOT EXISTS one_time_prekeys(user TEXT NOT NULL, device INTEGER NOT NULL, "
     "id INTEGER NOT NULL, pub BLOB NOT NULL, PRIMARY KEY(user, device, id));"
     "CREATE TABLE IF NOT EXISTS crls(issuer_key_id BLOB PRIMARY KEY, version INTEGER NOT NULL, "
     "list BLOB NOT NULL);"),
    /* 3: seqs reserved durably: the relay assigned seqs from this range (until step 5) */
    ("CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"),
    /* 4: the sender of each envelope: each sender user has a share of a mailbox */
    ("ALTER TABLE mailbox ADD COLUMN sender TEXT NOT NULL DEFAULT '';"
     "CREATE INDEX IF NOT EXISTS mailbox_sender ON mailbox(user, device, sender);"),
    /* 5: seqs per device, from the store: a mailbox row is keyed by (device, seq), and the
     * relay-wide reservation of step 3 gives way to an epoch (meta.seq_epoch, raised at every
     * open: a device's seqs of epoch E lie above E * 2^40). The rows keep their seqs, which lie
     * below the first epoch's. */
    ("CREATE TABLE mailbox_v5(user TEXT NOT NULL, device INTEGER NOT NULL, seq INTEGER NOT NULL, "
     "sender TEXT NOT NULL, env BLOB NOT NULL, UNIQUE(user, device, seq));"
     "INSERT INTO mailbox_v5(user, device, seq, sender, env) SELECT user, device, seq, sender, "
     "env FROM mailbox;"
     "DROP TABLE mailbox;"
     "ALTER TABLE mailbox_v5 RENAME TO mailbox;"
     "CREATE INDEX mailbox_sender ON mailbox(user, device, sender);"
     "INSERT OR REPLACE INTO meta SELECT 'seq_epoch', max(ifnull((SELECT max(seq) FROM mailbox), "
     "0), ifnull((SELECT v FROM meta WHERE k = 'seq_reserved'), 0)) >> 40;"
     "DELETE FROM meta WHERE k = 'seq_reserved';"),
    /* 6: invitations for online enrolment (issue 16): the code's verifier, never the code; the
     * request and the authority's decision in the same row */
    ("CREATE TABLE invites(id BLOB PRIMARY KEY, authority BLOB NOT NULL, user TEXT NOT NULL, "
     "device INTEGER NOT NULL, verifier BLOB NOT NULL, created_at INTEGER NOT NULL, expires_at "
     "INTEGER NOT NULL, failures INTEGER NOT NULL, state INTEGER NOT NULL, request BLOB, "
     "authority_mac BLOB, submitted_at INTEGER, chain BLOB);"
     "CREATE INDEX invites_waiting ON invites(authority, state, id);"),
    /* 7: fan-out (issue 11): one row of shared bytes per send with the references left, and a
     * small reference per recipient device, keyed by the device's number (given to each device
     * of the directory) and its seq (docs/relay.md, "Fan-out") */
    ("CREATE TABLE devnums(num INTEGER PRIMARY KEY, user TEXT NOT NULL, device INTEGER NOT NULL, "
     "UNIQUE(user, device));"
     "INSERT INTO devnums(user, device) SELECT user, device FROM devices;"
     "CREATE TABLE fanout_payloads(id INTEGER PRIMARY KEY, sender TEXT NOT NULL, refs INTEGER "
     "NOT NULL, env BLOB NOT NULL);"
     "CREATE TABLE fanout_refs(dev INTEGER NOT NULL, seq INTEGER NOT NULL, payload INTEGER NOT "
     "NULL, PRIMARY KEY(dev, seq)) WITHOUT ROWID;"),
    /* 8: blobs (sealed attachments, docs/protocol.md 3.8): one row per blob with its owner
     * device, declared size, bytes received and expiry; its bytes as chunks keyed by offset */
    ("CREATE TABLE blobs(id BLOB PRIMARY KEY, user TEXT NOT NULL, device INTEGER NOT NULL, "
     "size INTEGER NOT NULL, received INTEGER NOT NULL, complete INTEGER NOT NULL, "
     "created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
     "CREATE INDEX blobs_owner ON blobs(user, device);"
     "CREATE INDEX blobs_expiry ON blobs(expires_at);"
     "CREATE TABLE blob_chunks(id BLOB NOT NULL, off INTEGER NOT NULL, data BLOB NOT NULL, "
     "PRIMARY KEY(id, off));"),
};
#define SCHEMA_VERSION ((int)(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0])))

/* The raw key through sqlite3_key, not a PRAGMA statement: SQLite's parser and prepared
 * statement would keep copies of the statement text (the key) in its heap and free them
 * unwiped; SQLCipher wipes its own copy. "x'<64 hex>'" is SQLCipher's raw-key form. */
int kurer__sqlite_apply_key(sqlite3 *db, const uint8_t key[32])
{
    const size_t len = 2 * 32 + 3;
    char *raw = kurer_secure_alloc(len + 1);
    if (raw == NULL)
        return KURER_ENOMEM;
    raw[0] = 'x';
    raw[1] = '\'';
    kurer_hex_encode(raw + 2, key, 32);
    raw[len - 1] = '\'';
    raw[len] = '\0';
    int r = sqlite3_key(db, raw, (int)len);
    kurer_secure_free(raw); /* wipes */
    return r == SQLITE_OK ? 0 : KURER_ESTORAGE;
}

/* Brings an older schema up to date in one transaction; nothing is written when it is current
 * (so that a relay starts on a full disk). KURER_EVERSION for a store of a newer relay. */
int kurer__sqlite_migrate(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (v < 0)
        return KURER_ESTORAGE;
    if (v == SCHEMA_VERSION)
        return 0;
    if (v > SCHEMA_VERSION)
        return KURER_EVERSION;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return KURER_ESTORAGE;
    int rc = SQLITE_OK;
    for (int step = v; step < SCHEMA_VERSION && rc == SQLITE_OK; step++)
        rc = sqlite3_exec(db, MIGRATIONS[step], NULL, NULL, NULL);
    char set[48];
    snprintf(set, sizeof(set), "PRAGMA user_version = %d", SCHEMA_VERSION);
    if (rc != SQLITE_OK || sqlite3_exec(db, set, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        kurer_log(KURER_LOG_ERROR, "store", "migrate_failed",
                  (kurer_log_field[]){KURER_LOG_STR("error", sqlite3_errmsg(db))}, 1);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return KURER_ESTORAGE;
    }
    return 0;
}
