/* A hostile relay operator, for client_invite_hostile_relay: rewrites the user and device of an
 * invitation in a stopped relay's own store (relay.db under store.key), as a relay that holds
 * its store can. usage: relay_store_edit RELAYDIR ID_HEX USER DEVICE
 * Exits 0 if exactly one invitation row was changed. */
#define SQLITE_HAS_CODEC 1 /* declares sqlite3_key (SQLCipher) */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "kurer/util.h"

static int open_store(const char *dir, sqlite3 **db)
{
    char path[4096];
    uint8_t *key = NULL;
    size_t n = 0;
    char raw[2 * 32 + 4];
    if (snprintf(path, sizeof(path), "%s/store.key", dir) >= (int)sizeof(path) ||
        kurer_file_read(path, 64, &key, &n) != 0 || n != 32)
        return 1;
    raw[0] = 'x';
    raw[1] = '\'';
    kurer_hex_encode(raw + 2, key, 32);
    raw[2 + 64] = '\'';
    raw[2 + 65] = '\0';
    kurer_memzero(key, n);
    free(key);
    snprintf(path, sizeof(path), "%s/relay.db", dir);
    int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
             sqlite3_key(*db, raw, (int)strlen(raw)) != SQLITE_OK;
    kurer_memzero(raw, sizeof(raw));
    return rc;
}

int main(int argc, char **argv)
{
    uint8_t id[16];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (argc != 5 || kurer_hex_decode(id, sizeof(id), argv[2]) != 0) {
        fprintf(stderr, "usage: relay_store_edit RELAYDIR ID_HEX USER DEVICE\n");
        return 2;
    }
    if (open_store(argv[1], &db) != 0 ||
        sqlite3_prepare_v2(db, "UPDATE invites SET user = ?, device = ? WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "relay_store_edit: %s\n", db != NULL ? sqlite3_errmsg(db) : "no store");
        sqlite3_close(db);
        return 1;
    }
    sqlite3_bind_text(st, 1, argv[3], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, strtoll(argv[4], NULL, 10));
    sqlite3_bind_blob(st, 3, id, sizeof(id), SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db) == 1 ? 0 : 1;
    if (rc != 0)
        fprintf(stderr, "relay_store_edit: no such invitation (%s)\n", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
