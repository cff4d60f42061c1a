#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/buf.h"

/* A message in the shape our parsers see: u8 tag, u16 length-prefixed bytes, u32, varint. */
static size_t build_sample(uint8_t *out, size_t cap)
{
    kurer_buf b;
    kurer_buf_init_fixed(&b, out, cap);
    assert_int_equal(kurer_buf_put_u8(&b, 7), 0);
    assert_int_equal(kurer_buf_put_lv16(&b, "hello", 5), 0);
    assert_int_equal(kurer_buf_put_u32be(&b, 0xdeadbeef), 0);
    assert_int_equal(kurer_buf_put_varint(&b, 300), 0);
    assert_int_equal(kurer_buf_put_u64be(&b, 0x0102030405060708ULL), 0);
    return b.len;
}

static int parse_sample(const uint8_t *p, size_t n)
{
    kurer_reader r;
    uint8_t tag;
    const uint8_t *s;
    size_t slen;
    uint32_t u32;
    uint64_t v, u64;
    int rc;
    kurer_reader_init(&r, p, n);
    if ((rc = kurer_reader_u8(&r, &tag)) != 0 || (rc = kurer_reader_lv16(&r, 16, &s, &slen)) != 0 ||
        (rc = kurer_reader_u32be(&r, &u32)) != 0 || (rc = kurer_reader_varint(&r, &v)) != 0 ||
        (rc = kurer_reader_u64be(&r, &u64)) != 0)
        return rc;
    if (tag != 7 || slen != 5 || memcmp(s, "hello", 5) != 0 || u32 != 0xdeadbeef || v != 300 ||
        u64 != 0x0102030405060708ULL)
        return -1000;
    return kurer_reader_end(&r);
}

static void test_roundtrip(void **state)
{
    (void)state;
    uint8_t m[64];
    size_t n = build_sample(m, sizeof(m));
    assert_int_equal(parse_sample(m, n), 0);
}

static void test_truncation_at_every_offset(void **state)
{
    (void)state;
    uint8_t m[64];
    size_t n = build_sample(m, sizeof(m));
    for (size_t cut = 0; cut < n; cut++) {
        int rc = parse_sample(m, cut);
        assert_int_equal(rc, KURER_ETRUNC);
    }
}

static void test_trailing(void **state)
{
    (void)state;
    uint8_t m[64];
    size_t n = build_sample(m, sizeof(m) - 1);
    m[n] = 0;
    assert_int_equal(parse_sample(m, n + 1), KURER_ETRAILING);
}

static void test_failed_read_does_not_move(void **state)
{
    (void)state;
    const uint8_t m[3] = {0x00, 0x05, 'a'};
    kurer_reader r;
    const uint8_t *s;
    size_t n;
    uint32_t v;
    kurer_reader_init(&r, m, sizeof(m));
    assert_int_equal(kurer_reader_lv16(&r, 100, &s, &n), KURER_ETRUNC);
    assert_null(s);
    assert_int_equal(n, 0);
    assert_int_equal(kurer_reader_remaining(&r), 3);
    assert_int_equal(kurer_reader_u32be(&r, &v), KURER_ETRUNC);
    assert_int_equal(kurer_reader_remaining(&r), 3);
}

static void test_length_limit_before_read(void **state)
{
    (void)state;
    /* Claims 0xffff bytes: refused by the limit even though only 2 follow. */
    const uint8_t m[4] = {0xff, 0xff, 'a', 'b'};
    kurer_reader r;
    const uint8_t *s;
    size_t n;
    kurer_reader_init(&r, m, sizeof(m));
    assert_int_equal(kurer_reader_lv16(&r, 1024, &s, &n), KURER_ELIMIT);
    assert_int_equal(kurer_reader_remaining(&r), 4);
    const uint8_t big[6] = {0x80, 0x00, 0x00, 0x00, 'a', 'b'};
    kurer_reader_init(&r, big, sizeof(big));
    assert_int_equal(kurer_reader_lv32(&r, 1 << 20, &s, &n), KURER_ELIMIT);
}

static void test_varint_malformed(void **state)
{
    (void)state;
    kurer_reader r;
    uint64_t v;
    const uint8_t overlong[2] = {0x80, 0x00};
    kurer_reader_init(&r, overlong, sizeof(overlong));
    assert_int_equal(kurer_reader_varint(&r, &v), KURER_EMALFORMED);
    const uint8_t toobig[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    kurer_reader_init(&r, toobig, sizeof(toobig));
    assert_int_equal(kurer_reader_varint(&r, &v), KURER_EMALFORMED);
    const uint8_t max[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    kurer_reader_init(&r, max, sizeof(max));
    assert_int_equal(kurer_reader_varint(&r, &v), 0);
    assert_true(v == UINT64_MAX);
    const uint8_t eleven[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    kurer_reader_init(&r, eleven, sizeof(eleven));
    assert_int_equal(kurer_reader_varint(&r, &v), KURER_EMALFORMED);
    const uint8_t cut[2] = {0x80, 0x80};
    kurer_reader_init(&r, cut, sizeof(cut));
    assert_int_equal(kurer_reader_varint(&r, &v), KURER_ETRUNC);
    assert_int_equal(kurer_reader_remaining(&r), 2);
}

static void test_writer_limits(void **state)
{
    (void)state;
    kurer_buf b;
    uint8_t *p;
    kurer_buf_init(&b, 10);
    assert_int_equal(kurer_buf_put(&b, "0123456789", 10), 0);
    assert_int_equal(kurer_buf_put_u8(&b, 1), KURER_ELIMIT);
    assert_int_equal(b.len, 10);
    assert_int_equal(kurer_buf_reserve(&b, SIZE_MAX, &p), KURER_ELIMIT);
    assert_null(p);
    kurer_buf_consume(&b, 4);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "456789", 6);
    assert_int_equal(kurer_buf_put_lv16(&b, "ab", 2), 0);
    assert_int_equal(kurer_buf_put_lv16(&b, "a", 1), KURER_ELIMIT);
    kurer_buf_release(&b);
    assert_null(b.data);
    kurer_buf_release(NULL);

    kurer_buf_init(&b, SIZE_MAX);
    assert_int_equal(b.max, KURER_BUF_HARD_MAX);
    kurer_buf_release(&b);

    uint8_t fixed[4];
    kurer_buf_init_fixed(&b, fixed, sizeof(fixed));
    assert_int_equal(kurer_buf_put_u32be(&b, 1), 0);
    assert_int_equal(kurer_buf_put_u8(&b, 1), KURER_ELIMIT);
}

static void test_secret_buffer(void **state)
{
    (void)state;
    kurer_buf b;
    size_t n;
    kurer_buf_init_secret(&b, 1 << 16);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(kurer_buf_put_u32be(&b, (uint32_t)i), 0);
    assert_int_equal(b.len, 4000);
    uint8_t *p = kurer_buf_steal(&b, &n);
    assert_non_null(p);
    assert_int_equal(n, 4000);
    assert_null(b.data);
    kurer_wipe(p, n);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_truncation_at_every_offset),
        cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_failed_read_does_not_move),
        cmocka_unit_test(test_length_limit_before_read),
        cmocka_unit_test(test_varint_malformed),
        cmocka_unit_test(test_writer_limits),
        cmocka_unit_test(test_secret_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
