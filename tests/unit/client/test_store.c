/* client_store: the SQLCipher device store. One ctest entry per case (client_store_<case>). */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "kurer/crypto.h"
#include "kurer/util.h"
#include "store.h"

typedef struct fixture {
    char home[256];
    kurer_kdf_params kdf;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(kurer_crypto_init(), 0);
    strcpy(f->home, "/tmp/kurer-store-XXXXXX");
    assert_non_null(mkdtemp(f->home));
    f->kdf = kurer_kdf_minimum();
    *state = f;
    return 0;
}

static void rm_home(const char *home)
{
    const char *names[] = {"store.db", "store.db-wal", "store.db-shm", "store.kdf",
                           "store.kdf.new"};
    char p[512];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", home, names[i]);
        unlink(p);
    }
    rmdir(home);
}

static int teardown(void **state)
{
    fixture *f = *state;
    rm_home(f->home);
    free(f);
    return 0;
}

static void file_hash(const char *home, const char *name, uint8_t out[32])
{
    char p[512];
    uint8_t *data = NULL;
    size_t len = 0;
    snprintf(p, sizeof(p), "%s/%s", home, name);
    assert_int_equal(kurer_file_read(p, 64 * 1024 * 1024, &data, &len), 0);
    kurer_hash256(out, data, len);
    free(data);
}

static int file_exists(const char *home, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", home, name);
    return kurer_file_exists(p) == 0;
}

#define PASS  "correct horse battery staple"
#define PASS2 "tr0ub4dor&3"

static void test_open_close(void **state)
{
    fixture *f = *state;
    kurer__store *st = NULL;
    int v = 0;
    assert_int_equal(kurer__store_open_pass(f->home, PASS, strlen(PASS), &st), KURER_ENOENT);
    assert_null(st);
    assert_int_equal(kurer__store_create_pass(f->home, PASS, strlen(PASS), &f->kdf, &st), 0);
    assert_int_equal(kurer__store_schema_version(st, &v), 0);
    assert_int_equal(v, KURER__STORE_SCHEMA_VERSION);
    assert_int_equal(kurer__store_counter_set(st, "x", 42), 0);
    kurer__store_close(st);
    /* Creating twice is refused; the first store survives. */
    assert_int_equal(kurer__store_create_pass(f->home, PASS, strlen(PASS), &f->kdf, &st),
                     KURER_EEXIST);
    assert_int_equal(kurer__store_open_pass(f->home, PASS, strlen(PASS), &st), 0);
    uint64_t x = 0;
    assert_int_equal(kurer__store_counter_get(st, "x", &x), 0);
    assert_int_equal(x, 42);
    kurer__store_close(st);
    kurer__store_close(NULL);

    /* The file is encrypted: no SQLite header, and plain SQLite (SQLCipher without a key) cannot
     * read it. */
    char p[512];
    uint8_t *data = NULL;
    size_t len = 0;
    snprintf(p, sizeof(p), "%s/store.db", f->home);
    assert_int_equal(kurer_file_read(p, 64 * 1024 * 1024, &data, &len), 0);
    assert_true(len >= 16);
    assert_memory_not_equal(data, "SQLite format 3", 15);
    free(data);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM sqlite_master;", NULL, NULL, NULL),
                     SQLITE_NOTADB);
    sqlite3_close(db);
}

static void test_wrong_passphrase(void **state)
{
    fixture *f = *state;
    kurer__store *st = NULL;
    uint8_t before[32], after[32], kdf_before[32], kdf_after[32];
    assert_int_equal(kurer__store_create_pass(f->home, PASS, strlen(PASS), &f->kdf, &st), 0);
    assert_int_equal(kurer__store_counter_set(st, "x", 7), 0);
    kurer__store_close(st);
    file_hash(f->home, "store.db", before);
    file_hash(f->home, "store.kdf", kdf_before);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(kurer__store_open_pass(f->home, "wrong", 5, &st), KURER_EPASSPHRASE);
        assert_null(st);
    }
    uint8_t key[32] = {1};
    assert_int_equal(kurer__store_open_key(f->home, key, &st), KURER_EPASSPHRASE);
    file_hash(f->home, "store.db", after);
    file_hash(f->home, "store.kdf", kdf_after);
    assert_memory_equal(before, after, 32);
    assert_memory_equal(kdf_before, kdf_after, 32);
    assert_false(file_exists(f->home, "store.db-wal"));

    /* And the right one still works. */
    assert_int_equal(kurer__store_open_pass(f->home, PASS, strlen(PASS), &st), 0);
    kurer__store_close(st);
}

static void test_rekey(void **state)
{
    fixture *f = *state;
    kurer__store *st = NULL;
    uint8_t kdf1[32], kdf2[32];
    assert_int_equal(kurer__store_create_pass(f->home, PASS, strlen(PASS), &f->kdf, &st), 0);
    assert_int_equal(kurer__store_counter_set(st, "x", 9), 0);
    file_hash(f->home, "store.kdf", kdf1);
    /* Not inside a transaction. */
    assert_int_equal(kurer__store_begin(st), 0);
    assert_int_equal(kurer__store_rekey_pass(st, PASS2, strlen(PASS2), &f->kdf), KURER_ESTATE);
    kurer__store_rollback(st);
    assert_int_equal(kurer__store_rekey_pass(st, PASS2, strlen(PASS2), &f->kdf), 0);
    /* The open handle keeps working under the new key. */
    assert_int_equal(kurer__store_counter_set(st, "y", 10), 0);
    kurer__store_close(st);
    file_hash(f->home, "store.kdf", kdf2);
    assert_memory_not_equal(kdf1, kdf2, 32); /* new salt */
    assert_false(file_exists(f->home, "store.kdf.new"));

    assert_int_equal(kurer__store_open_pass(f->home, PASS, strlen(PASS), &st), KURER_EPASSPHRASE);
    assert_int_equal(kurer__store_open_pass(f->home, PASS2, strlen(PASS2), &st), 0);
    uint64_t x = 0, y = 0;
    assert_int_equal(kurer__store_counter_get(st, "x", &x), 0);
    assert_int_equal(kurer__store_counter_get(st, "y", &y), 0);
    assert_int_equal(x, 9);
    assert_int_equal(y, 10);
    kurer__store_close(st);
}

static void test_raw_key(void **state)
{
    fixture *f = *state;
    kurer__store *st = NULL;
    uint8_t k1[32], k2[32];
    kurer_random(k1, 32);
    kurer_random(k2, 32);
    assert_int_equal(kurer__store_create_key(f->home, k1, &st), 0);
    assert_false(file_exists(f->home, "store.kdf"));
    assert_int_equal(kurer__store_rekey_key(st, k2), 0);
    kurer__store_close(st);
    assert_int_equal(kurer__store_open_key(f->home, k1, &st), KURER_EPASSPHRASE);
    assert_int_equal(kurer__store_open_key(f->home, k2, &st), 0);
    kurer__store_close(st);
    /* No parameters file: a passphrase cannot open it. */
    assert_int_equal(kurer__store_open_pass(f->home, PASS, strlen(PASS), &st), KURER_ENOENT);
}

/* SQLite's allocator, wrapped: every block is searched for the hex form of the store key when
 * it is freed or moved, because a freed copy stays readable in the process (core dumps, a
 * later heap bug). The key may live only in SQLCipher's own (wiped) memory. */
typedef struct mem_hdr {
    size_t n;
    size_t pad;
} mem_hdr;

static char g_needle[2 * 32 + 1];
static int g_key_left;

static void mem_scan(const void *p, size_t n)
{
    if (g_needle[0] != '\0' && memmem(p, n, g_needle, 64) != NULL)
        g_key_left = 1;
}

static void *mem_malloc(int n)
{
    mem_hdr *h = malloc(sizeof(*h) + (size_t)n);
    if (h == NULL)
        return NULL;
    h->n = (size_t)n;
    return h + 1;
}

static void mem_free(void *p)
{
    if (p == NULL)
        return;
    mem_hdr *h = (mem_hdr *)p - 1;
    mem_scan(p, h->n);
    free(h);
}

static int mem_size(void *p)
{
    return p != NULL ? (int)((mem_hdr *)p - 1)->n : 0;
}

static void *mem_realloc(void *p, int n)
{
    void *q = mem_malloc(n);
    if (q != NULL && p != NULL) {
        size_t old = (size_t)mem_size(p);
        memcpy(q, p, old < (size_t)n ? old : (size_t)n);
        mem_free(p);
    }
    return q;
}

static int mem_roundup(int n)
{
    return (n + 7) & ~7;
}

static int mem_init(void *ud)
{
    (void)ud;
    return SQLITE_OK;
}

static void mem_shutdown(void *ud)
{
    (void)ud;
}

static void test_key_not_in_heap(void **state)
{
    fixture *f = *state;
    static const sqlite3_mem_methods mm = {mem_malloc,  mem_free, mem_realloc,  mem_size,
                                           mem_roundup, mem_init, mem_shutdown, NULL};
    kurer__store *st = NULL;
    uint8_t k1[32], k2[32];
    assert_int_equal(sqlite3_shutdown(), SQLITE_OK);
    assert_int_equal(sqlite3_config(SQLITE_CONFIG_MALLOC, &mm), SQLITE_OK);
    assert_int_equal(sqlite3_initialize(), SQLITE_OK);
    kurer_random(k1, 32);
    kurer_random(k2, 32);

    kurer_hex_encode(g_needle, k1, 32);
    assert_int_equal(kurer__store_create_key(f->home, k1, &st), 0);
    kurer__store_close(st);
    assert_int_equal(kurer__store_open_key(f->home, k1, &st), 0);
    kurer_hex_encode(g_needle, k2, 32);
    assert_int_equal(kurer__store_rekey_key(st, k2), 0);
    kurer__store_close(st);
    assert_int_equal(kurer__store_open_key(f->home, k2, &st), 0);
    kurer__store_close(st);
    assert_int_equal(sqlite3_shutdown(), SQLITE_OK);
    assert_false(g_key_left);
    g_needle[0] = '\0';
}

/* A crash between PRAGMA rekey and the rename: store.kdf is old, store.kdf.new is right. And a
 * crash before the rekey: store.kdf.new is stale and goes away. */
static void test_rekey_interrupted(void **state)
{
    fixture *f = *state;
    kurer__store *st = NULL;
    char kdf[512], kdf_new[512], saved[512];
    snprintf(kdf, sizeof(kdf), "%s/store.kdf", f->home);
    snprintf(kdf_new, sizeof(kdf_new), "%s/store.kdf.new", f->home);
    snprintf(saved, sizeof(saved), "%s/saved", f->home);

    assert_int_equal(kurer__store_create_pass(f->home, PASS, strlen(PASS), &f->kdf, &st), 0);
    kurer__store_close(st);
    assert_int_equal(link(kdf, saved), 0); /* the old parameters */
    assert_int_equal(kurer__store_open_pass(f->home, PASS, strlen(PASS), &st), 0);
    assert_int_equal(kurer__store_rekey_pass(st, PASS2, strlen(PASS2), &f->kdf), 0);
    kurer__store_close(st);
    /* Put the world back to "rekeyed, not renamed". */
    assert_int_equal(rename(kdf, kdf_new), 0);
    assert_int_equal(rename(saved, kdf), 0);

    assert_int_equal(kurer__store_open_pass(f->home, PASS, strlen(PASS), &st), KURER_EPASSPHRASE);
    assert_true(file_exists(f->home, "store.kdf.new"));
    assert_int_equal(kurer__store_open_pass(f->home, PASS2, strlen(PASS2), &st), 0);
    kurer__store_close(st);
    assert_false(file_exists(f->home, "store.kdf.new"));
    assert_int_equal(kurer__store_open_pass(f->home, PASS2, strlen(PASS2), &st), 0);
    kurer__store_close(st);

    /* Stale: a store.kdf.new for a passphrase the database never got. */
    assert_int_equal(link(kdf, saved), 0);
    assert_int_equal(kurer__store_open_pass(f->home, PASS2, strlen(PASS2), &st), 0);
    assert_int_equal(kurer__store_rekey_pass(st, "third", 5, &f->kdf), 0);
    kurer__store_close(st);
    /* now store.kdf = "third"; make store.kdf.new hold PASS2's (stale for this database) */
    assert_int_equal(rename(saved, kdf_new), 0);
    assert_int_equal(kurer__store_open_pass(f->home, PASS2, strlen(PASS2), &st), KURER_EPASSPHRASE);
    assert_int_equal(kurer__store_open_pass(f->home, "third", 5, &st), 0);
    kurer__store_close(st);
    assert_false(file_exists(f->home, "store.kdf.new"));
}

static void test_migrations(void **state)
{
    fixture *f = *state;
    kurer__store *st = NULL;
    int v = 0;
    assert_int_equal(kurer__store_create_pass(f->home, PASS, strlen(PASS), &f->kdf, &st), 0);
    assert_int_equal(kurer__store_counter_set(st, "keep", 5), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(kurer__store_migrate(st), 0);
        assert_int_equal(kurer__store_schema_version(st, &v), 0);
        assert_int_equal(v, KURER__STORE_SCHEMA_VERSION);
    }
    kurer__store_close(st);
    assert_int_equal(kurer__store_open_pass(f->home, PASS, strlen(PASS), &st), 0);
    uint64_t x = 0;
    assert_int_equal(kurer__store_counter_get(st, "keep", &x), 0);
    assert_int_equal(x, 5);
    kurer__store_close(st);
}

/* Signed prekeys older than the cutoff go, but the newest always stays. */
static void test_signed_prekey_prune(void **state)
{
    fixture *f = *state;
    kurer__store *st = NULL;
    const uint8_t rec[4] = {1, 2, 3, 4};
    assert_int_equal(kurer__store_create_pass(f->home, PASS, strlen(PASS), &f->kdf, &st), 0);
    for (uint32_t id = 1; id <= 3; id++)
        assert_int_equal(kurer__store_prekey_put(st, KURER__SIGNED_PREKEY, id, rec, sizeof(rec)),
                         0);
    /* A cutoff in the past deletes nothing. */
    assert_int_equal(kurer__store_signed_prekeys_prune(st, 0), 0);
    assert_int_equal(kurer__store_prekey_count(st, KURER__SIGNED_PREKEY), 3);
    /* A cutoff after all of them keeps only the newest. */
    assert_int_equal(
        kurer__store_signed_prekeys_prune(st, (kurer_time_unix() + 86400) * (int64_t)1000), 0);
    assert_int_equal(kurer__store_prekey_count(st, KURER__SIGNED_PREKEY), 1);
    assert_int_equal(kurer__store_prekey_contains(st, KURER__SIGNED_PREKEY, 3), 1);
    kurer__store_close(st);
}

static int count_msgs(void *ud, const kurer__msg *m)
{
    (void)m;
    (*(int *)ud)++;
    return 0;
}

static void test_messages_outbox(void **state)
{
    fixture *f = *state;
    kurer__store *st = NULL;
    assert_int_equal(kurer__store_create_pass(f->home, PASS, strlen(PASS), &f->kdf, &st), 0);

    kurer__msg m;
    memset(&m, 0, sizeof(m));
    kurer_random(m.envelope_id, sizeof(m.envelope_id));
    m.direction = KURER__DIR_IN;
    strcpy(m.peer, "anna@mof");
    m.peer_device = 1;
    m.level = 2;
    m.body = "hej";
    m.body_len = 3;
    m.state = KURER__MSG_RECEIVED;
    assert_int_equal(kurer__store_message_insert(st, &m), 0);
    assert_int_equal(kurer__store_message_insert(st, &m), KURER_EDUPLICATE);
    assert_int_equal(kurer__store_message_exists(st, m.envelope_id), 1);
    m.envelope_id[0] ^= 1;
    m.level = 4; /* refused by the schema */
    assert_int_equal(kurer__store_message_insert(st, &m), KURER_EINVAL);

    /* A rolled-back transaction leaves nothing; nested rollback poisons the outer commit. */
    m.level = 1;
    assert_int_equal(kurer__store_begin(st), 0);
    assert_int_equal(kurer__store_message_insert(st, &m), 0);
    kurer__store_rollback(st);
    assert_int_equal(kurer__store_message_exists(st, m.envelope_id), 0);
    assert_int_equal(kurer__store_begin(st), 0);
    assert_int_equal(kurer__store_begin(st), 0);
    assert_int_equal(kurer__store_message_insert(st, &m), 0);
    kurer__store_rollback(st);
    assert_int_equal(kurer__store_commit(st), KURER_ESTORAGE);
    assert_int_equal(kurer__store_message_exists(st, m.envelope_id), 0);
    assert_int_equal(kurer__store_commit(st), KURER_ESTATE);

    /* An outgoing message with two envelopes: SENT when both are accepted. */
    m.direction = KURER__DIR_OUT;
    m.state = KURER__MSG_PENDING;
    assert_int_equal(kurer__store_message_insert(st, &m), 0);
    kurer__outbox_item a, b;
    memset(&a, 0, sizeof(a));
    kurer_random(a.envelope_id, 16);
    a.message_rowid = m.rowid;
    strcpy(a.to_user, "bob@mof");
    a.to_device = 1;
    a.type = 2;
    a.content = (const uint8_t *)"ct";
    a.content_len = 2;
    b = a;
    kurer_random(b.envelope_id, 16);
    b.to_device = 2;
    assert_int_equal(kurer__store_outbox_add(st, &a), 0);
    assert_int_equal(kurer__store_outbox_add(st, &b), 0);
    assert_int_equal(kurer__store_outbox_count(st), 2);
    assert_int_equal(kurer__store_outbox_retry_later(st, a.rowid, 0), 0);
    assert_int_equal(kurer__store_outbox_done(st, b.rowid), 0);
    int n = 0;
    assert_int_equal(kurer__store_message_each(st, "bob@mof", count_msgs, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(kurer__store_message_each(st, NULL, count_msgs, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(kurer__store_outbox_done(st, a.rowid), 0);
    assert_int_equal(kurer__store_outbox_count(st), 0);
    assert_int_equal(kurer__store_outbox_done(st, a.rowid), KURER_ENOTFOUND);
    kurer__store_close(st);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_passphrase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_not_in_heap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signed_prekey_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_outbox, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
