/* The issuance log and serial state parsers: a round trip, and each kind of damage refused with
 * its exact error. (Lives beside the admin integration test; it is a unit test of kurer_admin.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/crypto.h"
#include "kurer/issuelog.h"
#include "kurer/keys.h"

static kurer_signing_key key, other;

/* A log of three entries in img. */
static void make_log(kurer_buf *img)
{
    kurer_issuelog log;
    kurer_buf_init(img, KURER_LOG_FILE_MAX);
    assert_int_equal(kurer_issuelog_init(&log, key.pk, img), 0);
    for (int i = 1; i <= 3; i++) {
        kurer_log_entry e;
        memset(&e, 0, sizeof(e));
        e.kind = i == 3 ? KURER_LOGK_REVOKE : KURER_LOGK_ISSUE;
        e.time = 1700000000 + i;
        e.serial = i == 3 ? 1 : (uint64_t)i;
        e.role = KURER_ROLE_DEVICE;
        strcpy(e.subject, "alice@fm.dk");
        e.device_id = (uint32_t)i;
        e.clearance = KURER_LEVEL_RESTRICTED;
        e.key_fp[0] = (uint8_t)i;
        assert_int_equal(kurer_issuelog_append(&log, &e, &key, img), 0);
    }
    kurer_issuelog_release(&log);
}

static size_t entry_offset(const kurer_buf *img, size_t idx)
{
    size_t off = 12;
    for (size_t i = 0; i < idx; i++)
        off += 4 + ((size_t)img->data[off] << 24 | (size_t)img->data[off + 1] << 16 |
                    (size_t)img->data[off + 2] << 8 | img->data[off + 3]);
    return off;
}

static int parse(const uint8_t *d, size_t n, const uint8_t *pk, size_t *bad)
{
    kurer_issuelog log;
    int rc = kurer_issuelog_parse(d, n, pk, &log, bad);
    if (rc == 0)
        kurer_issuelog_release(&log);
    return rc;
}

static void test_roundtrip(void **state)
{
    kurer_buf img;
    kurer_issuelog log;
    size_t bad;
    (void)state;
    make_log(&img);
    assert_int_equal(kurer_issuelog_parse(img.data, img.len, key.pk, &log, &bad), 0);
    assert_int_equal(log.n, 3);
    assert_int_equal(kurer_issuelog_max_serial(&log), 2);
    assert_non_null(kurer_issuelog_find_serial(&log, 2));
    assert_null(kurer_issuelog_find_serial(&log, 3));
    assert_string_equal(log.entries[2].subject, "alice@fm.dk");
    assert_int_equal(log.entries[2].kind, KURER_LOGK_REVOKE);
    kurer_issuelog_release(&log);
    kurer_buf_release(&img);
}

static void test_damage(void **state)
{
    kurer_buf img;
    uint8_t copy[4096];
    size_t bad, e1, e2;
    (void)state;
    make_log(&img);
    assert_true(img.len < sizeof(copy));
    e1 = entry_offset(&img, 1);
    e2 = entry_offset(&img, 2);

    /* Another issuer's key: the first entry's signature fails. */
    assert_int_equal(parse(img.data, img.len, other.pk, &bad), KURER_EBADSIG);
    assert_int_equal(bad, 0);
    /* A flipped byte in entry 1's body. */
    memcpy(copy, img.data, img.len);
    copy[e1 + 20] ^= 1;
    assert_int_equal(parse(copy, img.len, key.pk, &bad), KURER_EBADSIG);
    assert_int_equal(bad, 1);
    /* Entry 1 removed: entry 2 no longer follows entry 0. */
    memcpy(copy, img.data, e1);
    memcpy(copy + e1, img.data + e2, img.len - e2);
    assert_int_equal(parse(copy, e1 + img.len - e2, key.pk, &bad), KURER_ECORRUPT);
    assert_int_equal(bad, 1);
    /* Cut inside the last entry. */
    assert_int_equal(parse(img.data, img.len - 10, key.pk, &bad), KURER_ETRUNC);
    assert_int_equal(bad, 2);
    /* An entry length above the limit. */
    memcpy(copy, img.data, img.len);
    copy[e1] = 0x7f;
    assert_int_equal(parse(copy, img.len, key.pk, &bad), KURER_EMALFORMED);
    /* Header: empty, wrong magic, future format. */
    assert_int_equal(parse(img.data, 0, key.pk, &bad), KURER_ETRUNC);
    assert_int_equal(bad, SIZE_MAX);
    memcpy(copy, img.data, img.len);
    copy[0] = 'X';
    assert_int_equal(parse(copy, img.len, key.pk, &bad), KURER_EMALFORMED);
    memcpy(copy, img.data, img.len);
    copy[11] = 2;
    assert_int_equal(parse(copy, img.len, key.pk, &bad), KURER_EVERSION);
    /* The header alone is a valid, empty log. */
    assert_int_equal(parse(img.data, 12, key.pk, &bad), 0);
    kurer_buf_release(&img);
}

static void test_serial_state(void **state)
{
    kurer_serial_state s = {42, 7}, back;
    uint8_t img[KURER_SERIAL_STATE_LEN + 1];
    (void)state;
    assert_int_equal(kurer_serial_state_encode(&s, img), 0);
    assert_int_equal(kurer_serial_state_decode(img, KURER_SERIAL_STATE_LEN, &back), 0);
    assert_int_equal(back.next_serial, 42);
    assert_int_equal(back.log_entries, 7);
    assert_int_equal(kurer_serial_state_decode(img, KURER_SERIAL_STATE_LEN - 1, &back),
                     KURER_ETRUNC);
    img[KURER_SERIAL_STATE_LEN] = 0;
    assert_int_equal(kurer_serial_state_decode(img, KURER_SERIAL_STATE_LEN + 1, &back),
                     KURER_ETRAILING);
    s.next_serial = 0;
    assert_int_equal(kurer_serial_state_encode(&s, img), 0);
    assert_int_equal(kurer_serial_state_decode(img, KURER_SERIAL_STATE_LEN, &back),
                     KURER_EMALFORMED);
    img[0] = 'X';
    assert_int_equal(kurer_serial_state_decode(img, KURER_SERIAL_STATE_LEN, &back),
                     KURER_EMALFORMED);
}

static int setup(void **state)
{
    (void)state;
    if (kurer_crypto_init() != 0 || kurer_signing_key_generate(&key) != 0 ||
        kurer_signing_key_generate(&other) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kurer_signing_key_release(&key);
    kurer_signing_key_release(&other);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_serial_state),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
