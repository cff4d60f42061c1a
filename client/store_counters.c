/* The store's named counters (store.h), moved out of store.c, which may not grow
 * (tests/size_exceptions.txt). */
#include "store.h"

#include <string.h>

#include <sqlite3.h>

static int failed(int r)
{
    return r == SQLITE_BUSY || r == SQLITE_LOCKED  ? KURER_EBUSY
           : r == SQLITE_FULL || r == SQLITE_IOERR ? KURER_EIO
                                                   : KURER_ESTORAGE;
}

int kurer__store_counter_get(kurer__store *st, const char *name, uint64_t *v)
{
    sqlite3_stmt *s = NULL;
    *v = 0;
    int r = sqlite3_prepare_v2(kurer__store_sqlite(st),
                               "SELECT value FROM counters WHERE name = ?;", -1, &s, NULL);
    if (r != SQLITE_OK)
        return failed(r);
    sqlite3_bind_text(s, 1, name, (int)strlen(name), SQLITE_TRANSIENT);
    r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        *v = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : failed(r);
}

int kurer__store_counter_set(kurer__store *st, const char *name, uint64_t v)
{
    sqlite3_stmt *s = NULL;
    if (v > INT64_MAX)
        return KURER_EINVAL;
    int r = sqlite3_prepare_v2(kurer__store_sqlite(st),
                               "INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?);", -1,
                               &s, NULL);
    if (r != SQLITE_OK)
        return failed(r);
    if ((sqlite3_bind_text(s, 1, name, (int)strlen(name), SQLITE_TRANSIENT) |
         sqlite3_bind_int64(s, 2, (sqlite3_int64)v)) != SQLITE_OK) {
        sqlite3_finalize(s);
        return KURER_ESTORAGE;
    }
    r = sqlite3_step(s);
    sqlite3_finalize(s);
    return r == SQLITE_DONE ? 0 : failed(r);
}
