/* The device store's schema, as migrations (store.h): kurer__store_migrations[i] takes the
 * schema from version i to i+1. */
#include "store.h"

/* MIGRATIONS[i] takes the schema from version i to i+1. Append only; never edit a shipped one. */
const char *const kurer__store_migrations[KURER__STORE_SCHEMA_VERSION] = {
    /* v1 */
    "CREATE TABLE identity ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  user TEXT NOT NULL, device_id INTEGER NOT NULL, display_name TEXT NOT NULL,"
    "  registration_id INTEGER NOT NULL,"
    "  identity_pub BLOB NOT NULL, identity_priv BLOB NOT NULL,"
    "  noise_pub BLOB NOT NULL, noise_priv BLOB NOT NULL,"
    "  relay TEXT NOT NULL, relay_key BLOB NOT NULL,"
    "  root_cert BLOB NOT NULL, chain BLOB,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE sessions ("
    "  name TEXT NOT NULL, device_id INTEGER NOT NULL, record BLOB NOT NULL,"
    "  updated_at INTEGER NOT NULL, PRIMARY KEY (name, device_id));"
    "CREATE TABLE prekeys (id INTEGER PRIMARY KEY, record BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE signed_prekeys (id INTEGER PRIMARY KEY, record BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    /* A peer device's certificate chain as last verified; the libsignal identity key that the
     * certificate binds is checked against it, never trusted on first use. */
    "CREATE TABLE peer_devices ("
    "  user TEXT NOT NULL, device_id INTEGER NOT NULL, serial INTEGER NOT NULL,"
    "  chain BLOB NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (user, device_id));"
    "CREATE TABLE peer_identities ("
    "  user TEXT NOT NULL, device_id INTEGER NOT NULL, identity_key BLOB NOT NULL,"
    "  PRIMARY KEY (user, device_id),"
    "  FOREIGN KEY (user, device_id) REFERENCES peer_devices (user, device_id)"
    "    ON DELETE CASCADE);"
    "CREATE TABLE sender_keys ("
    "  group_id TEXT NOT NULL, user TEXT NOT NULL, device_id INTEGER NOT NULL,"
    "  record BLOB NOT NULL, PRIMARY KEY (group_id, user, device_id));"
    "CREATE TABLE crls (authority_key_id BLOB PRIMARY KEY, version INTEGER NOT NULL,"
    "  data BLOB NOT NULL);"
    "CREATE TABLE messages ("
    "  id INTEGER PRIMARY KEY,"
    "  envelope_id BLOB NOT NULL UNIQUE CHECK (length(envelope_id) = 16),"
    "  direction INTEGER NOT NULL CHECK (direction IN (0, 1)),"
    "  peer TEXT NOT NULL, peer_device INTEGER NOT NULL,"
    "  level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 3),"
    "  body TEXT NOT NULL, sent_at INTEGER NOT NULL, received_at INTEGER NOT NULL,"
    "  state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4), reason INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX messages_peer ON messages (peer, id);"
    "CREATE TABLE outbox ("
    "  id INTEGER PRIMARY KEY,"
    "  message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,"
    "  envelope_id BLOB NOT NULL UNIQUE CHECK (length(envelope_id) = 16),"
    "  to_user TEXT NOT NULL, to_device INTEGER NOT NULL, type INTEGER NOT NULL,"
    "  content BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE INDEX outbox_due ON outbox (next_attempt_at, id);"
    "CREATE INDEX outbox_message ON outbox (message_id);",
    /* v2: the unreported mark (received, not yet given to the application) */
    "ALTER TABLE messages ADD COLUMN unreported INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX messages_unreported ON messages (id) WHERE unreported = 1;",
    /* v3: key changes (issue 16): a peer device's new identity key, the old one kept as history
     * after its session is deleted; told to the application once (unreported until then).
     * Outbox items encrypted for the old key are marked key_stale, to be encrypted again. */
    "CREATE TABLE key_changes ("
    "  id INTEGER PRIMARY KEY,"
    "  user TEXT NOT NULL, device_id INTEGER NOT NULL,"
    "  serial INTEGER NOT NULL, issuer TEXT NOT NULL, identity_key BLOB NOT NULL,"
    "  old_serial INTEGER NOT NULL, old_issuer TEXT NOT NULL, old_identity_key BLOB NOT NULL,"
    "  at INTEGER NOT NULL, unreported INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX key_changes_user ON key_changes (user, device_id, id);"
    "ALTER TABLE outbox ADD COLUMN key_stale INTEGER NOT NULL DEFAULT 0;",
    /* v4: the outbox as the user sees it (issue 16): who refused a FAILED message and why
     * (the kurer_refusal: by, user, device, limit), whether the relay accepted any of it
     * already (then it can no longer be cancelled), and the sessions of an identity given up
     * by kurer rekey, kept archived rather than deleted. */
    "ALTER TABLE messages ADD COLUMN refusal_by INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN refusal_user TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE messages ADD COLUMN refusal_device INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN refusal_limit INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN accepted INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX messages_outgoing_open ON messages (id) WHERE direction = 1 AND state IN (2, 4);"
    "CREATE TABLE archived_sessions ("
    "  id INTEGER PRIMARY KEY, identity_pub BLOB NOT NULL, name TEXT NOT NULL,"
    "  device_id INTEGER NOT NULL, record BLOB NOT NULL, archived_at INTEGER NOT NULL);",
    /* v5: the high-water mark of each peer device (issue 16, H2): the newest certificate ever
     * accepted for the address (not_before, then serial) and the identity key it bound. Never
     * deleted, not when a directory answer leaves the device out either (peer_devices goes,
     * with its session): rollback and key change are judged against it. Homes from v4 have
     * none until a chain arrives; the held chain stands in for it until then. */
    "CREATE TABLE peer_marks ("
    "  user TEXT NOT NULL, device_id INTEGER NOT NULL,"
    "  not_before INTEGER NOT NULL, serial INTEGER NOT NULL, identity_key BLOB NOT NULL,"
    "  updated_at INTEGER NOT NULL, PRIMARY KEY (user, device_id));",
    /* v6: groups (issue 11, docs/protocol.md 4.7). Every verified change held (the fold's
     * input, kept to fold again when a late or concurrent one arrives) and what the fold made
     * of each; the folded state (groups, group_members); our own current sender key per group
     * (its libsignal key id, age and use) and the member devices that have had it; which
     * stored messages belong to a group (kind 0 a message, 1 a change we sent), with the one
     * sender-key ciphertext of a message we sent (for devices a stale answer adds). */
    "CREATE TABLE group_changes ("
    "  id INTEGER PRIMARY KEY, group_id BLOB NOT NULL, hash BLOB NOT NULL,"
    "  change BLOB NOT NULL, signature BLOB NOT NULL, signer_chain BLOB NOT NULL,"
    "  applied INTEGER NOT NULL DEFAULT 0, reason INTEGER NOT NULL DEFAULT 0,"
    "  received_at INTEGER NOT NULL, UNIQUE (group_id, hash));"
    "CREATE TABLE groups ("
    "  group_id BLOB PRIMARY KEY CHECK (length(group_id) = 32), name TEXT NOT NULL,"
    "  revision INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE group_members ("
    "  group_id BLOB NOT NULL REFERENCES groups (group_id) ON DELETE CASCADE,"
    "  user TEXT NOT NULL, admin INTEGER NOT NULL, PRIMARY KEY (group_id, user));"
    "CREATE TABLE group_own_keys ("
    "  group_id BLOB PRIMARY KEY, key_id INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    "  messages INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE group_key_shared ("
    "  group_id BLOB NOT NULL, user TEXT NOT NULL, device_id INTEGER NOT NULL,"
    "  key_id INTEGER NOT NULL, PRIMARY KEY (group_id, user, device_id));"
    "CREATE TABLE group_messages ("
    "  message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,"
    "  group_id BLOB NOT NULL, kind INTEGER NOT NULL, ciphertext BLOB);",
    /* v7: receipts and disappearing messages (issue 11, items 6 and 7). A message's timer
     * (seconds; 0: never) and when it goes (Unix ms; 0: the countdown has not started), when
     * it was read here (incoming), and whether it is a timer-change notice (kind 1). Receipts
     * per message and device that sent one (type 1 delivered, 2 read); the receipts this
     * device owes (sent at the next connection); each conversation's timer. */
    "ALTER TABLE messages ADD COLUMN expire_timer INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN read_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at > 0;"
    "CREATE INDEX messages_peer_sent ON messages (peer, sent_at);"
    "CREATE TABLE receipts ("
    "  message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,"
    "  user TEXT NOT NULL, device_id INTEGER NOT NULL,"
    "  type INTEGER NOT NULL CHECK (type IN (1, 2)), at INTEGER NOT NULL,"
    "  PRIMARY KEY (message_id, user, device_id, type));"
    "CREATE TABLE receipts_out ("
    "  id INTEGER PRIMARY KEY, peer TEXT NOT NULL,"
    "  type INTEGER NOT NULL CHECK (type IN (1, 2)), sent_at INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL, UNIQUE (peer, type, sent_at));"
    "CREATE TABLE timers ("
    "  conversation TEXT PRIMARY KEY, seconds INTEGER NOT NULL, updated_at INTEGER NOT NULL);",
    /* v8: attachments (issue 11, item 5): each message's AttachmentPointers in order (the key
     * stays in the encrypted store: it opens the blob), and where a received one was saved */
    "CREATE TABLE attachments ("
    "  message INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL, blob_id BLOB NOT NULL CHECK (length(blob_id) = 16),"
    "  key BLOB NOT NULL CHECK (length(key) = 32), size INTEGER NOT NULL,"
    "  digest BLOB NOT NULL CHECK (length(digest) = 32), content_type TEXT NOT NULL,"
    "  file_name TEXT NOT NULL, saved_path TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY (message, idx));",
    /* v9: group receipts (issue 11, item 6): a receipt owed names the group of the messages it
     * is for (empty for one-to-one ones), so it is kept apart from a one-to-one receipt for the
     * same peer and time; a group message keeps how many members besides its sender the group
     * had when it was sent (what its receipts are counted against). */
    "CREATE TABLE receipts_out_v9 ("
    "  id INTEGER PRIMARY KEY, peer TEXT NOT NULL,"
    "  type INTEGER NOT NULL CHECK (type IN (1, 2)), sent_at INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL, group_id BLOB NOT NULL DEFAULT x'',"
    "  UNIQUE (peer, type, sent_at, group_id));"
    "INSERT INTO receipts_out_v9 (id, peer, type, sent_at, created_at)"
    "  SELECT id, peer, type, sent_at, created_at FROM receipts_out;"
    "DROP TABLE receipts_out;"
    "ALTER TABLE receipts_out_v9 RENAME TO receipts_out;"
    "ALTER TABLE group_messages ADD COLUMN members INTEGER NOT NULL DEFAULT 0;",
    /* v10: a group's disappearing-message timer (seconds; 0: off), folded from its SET_TIMER
     * changes (docs/protocol.md 4.7) */
    "ALTER TABLE groups ADD COLUMN expire_timer INTEGER NOT NULL DEFAULT 0;",
};
