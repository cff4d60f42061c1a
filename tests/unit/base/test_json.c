/* The JSON writer and the terminal sanitiser (base/json.c, base/text.c): the nasty inputs of
 * client_escapes and their kin, escaped the same way in JSON and on a terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/json.h"
#include "kurer/text.h"

/* What client_escapes sends: ESC, C1 CSI and NEL as UTF-8, a raw 0x9b (not UTF-8), RLO, a
 * backslash and a newline. */
static const char nasty[] = "a\x1b[2Jb\xc2\x9b"
                            "c\xc2\x85"
                            "d\x9b"
                            "e\xe2\x80\xae"
                            "f\\g\nh";

/* The quoted JSON form of s. */
static char *json_of(const char *s)
{
    static char out[1024];
    kurer_buf b;
    kurer_buf_init_fixed(&b, out, sizeof(out) - 1);
    assert_int_equal(kurer_json_put_string(&b, s), 0);
    out[b.len] = '\0';
    return out;
}

static char *term_of(const char *s)
{
    static char out[1024];
    return (char *)kurer_text_term(out, sizeof(out), s);
}

static void test_json_escapes(void **state)
{
    (void)state;
    assert_string_equal(json_of(nasty),
                        "\"a\\u001b[2Jb\\u009bc\\u0085d\\ufffde\\u202ef\\\\g\\nh\"");
    assert_string_equal(json_of("say \"hi\"\t\r\x7f"), "\"say \\\"hi\\\"\\u0009\\u000d\\u007f\"");
    /* Every bidirectional override and isolate, the marks, the separators. */
    assert_string_equal(json_of("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad"),
                        "\"\\u202a\\u202b\\u202c\\u202d\"");
    assert_string_equal(json_of("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9"),
                        "\"\\u2066\\u2067\\u2068\\u2069\"");
    assert_string_equal(json_of("\xd8\x9c\xe2\x80\x8e\xe2\x80\x8f\xe2\x80\xa8\xe2\x80\xa9"),
                        "\"\\u061c\\u200e\\u200f\\u2028\\u2029\"");
    /* All of C1. */
    for (unsigned c = 0x80; c <= 0x9f; c++) {
        char in[3] = {(char)0xc2, (char)c, 0}, want[16];
        snprintf(want, sizeof(want), "\"\\u%04x\"", c);
        assert_string_equal(json_of(in), want);
    }
    /* Not UTF-8: overlong, surrogate, above U+10FFFF, a stray continuation, cut short. */
    assert_string_equal(json_of("\xc0\xaf"), "\"\\ufffd\\ufffd\"");
    assert_string_equal(json_of("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
    assert_string_equal(json_of("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    assert_string_equal(json_of("\x80x"), "\"\\ufffdx\"");
    assert_string_equal(json_of("x\xe2\x82"), "\"x\\ufffd\\ufffd\"");
    /* Text that is safe stays as it is. */
    assert_string_equal(json_of("Rigsr\xc3\xa5"
                                "d \xf0\x9f\x98\x80 \xe2\x82\xac"),
                        "\"Rigsr\xc3\xa5"
                        "d \xf0\x9f\x98\x80 \xe2\x82\xac\"");
    assert_string_equal(json_of(""), "\"\"");
}

static void test_term_escapes(void **state)
{
    (void)state;
    assert_string_equal(term_of(nasty), "a\\x1b[2Jb\\u{009b}c\\u{0085}d\\x9be\\u{202e}f\\\\g\\nh");
    assert_string_equal(term_of("\t\x7f\xe2\x81\xa6\xe2\x80\xa8"), "\\x09\\x7f\\u{2066}\\u{2028}");
    assert_string_equal(term_of("\xc0\xaf"), "\\xc0\\xaf");
    assert_string_equal(term_of("x\xe2\x82"), "x\\xe2\\x82");
    assert_string_equal(term_of("fm.dk \"\xc3\xa6\xc3\xb8\xc3\xa5\""),
                        "fm.dk \"\xc3\xa6\xc3\xb8\xc3\xa5\"");
    /* Cut at a whole escape when it does not fit; at most 4 bytes out per byte in. */
    char small[6];
    assert_string_equal(kurer_text_term(small, sizeof(small), "ab\x1b"), "ab");
    char big[KURER_TEXT_TERM_MAX(3)];
    assert_string_equal(kurer_text_term(big, sizeof(big), "\x1b\x1b\x9b"), "\\x1b\\x1b\\x9b");
    /* And to a FILE. */
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    assert_non_null(f);
    assert_int_equal(kurer_text_fput_term(f, nasty), 0);
    fclose(f);
    assert_string_equal(mem, "a\\x1b[2Jb\\u{009b}c\\u{0085}d\\x9be\\u{202e}f\\\\g\\nh");
    free(mem);
}

static void test_utf8(void **state)
{
    uint32_t cp = 0;
    (void)state;
    assert_int_equal(kurer_utf8_decode("\xe2\x80\xae", &cp), 3);
    assert_int_equal(cp, 0x202e);
    assert_int_equal(kurer_utf8_decode("\xf4\x8f\xbf\xbf", &cp), 4);
    assert_int_equal(cp, 0x10ffff);
    assert_int_equal(kurer_utf8_decode("\xe0\x80\x80", &cp), 0);
    assert_int_equal(kurer_utf8_check("caf\xc3\xa9"), 0);
    assert_int_equal(kurer_utf8_check("caf\xe9"), KURER_EMALFORMED);
    assert_true(kurer_text_unsafe(0x1b));
    assert_true(kurer_text_unsafe(0x85));
    assert_true(kurer_text_unsafe(0x202e));
    assert_false(kurer_text_unsafe(0xa0));
    assert_false(kurer_text_unsafe(0x202f));
}

static char out[1024];

static void writer(kurer_json *j, kurer_buf *b)
{
    kurer_buf_init_fixed(b, out, sizeof(out) - 1);
    kurer_json_init(j, b);
}

static const char *text(const kurer_buf *b)
{
    out[b->len] = '\0';
    return out;
}

static void test_writer(void **state)
{
    kurer_buf b;
    kurer_json j;
    (void)state;
    writer(&j, &b);
    kurer_json_begin_object(&j);
    kurer_json_kv_bool(&j, "ok", 1);
    kurer_json_kv_str(&j, "text", nasty);
    kurer_json_key(&j, "list");
    kurer_json_begin_array(&j);
    kurer_json_int(&j, -1);
    kurer_json_uint(&j, UINT64_MAX);
    kurer_json_null(&j);
    kurer_json_begin_object(&j);
    kurer_json_end_object(&j);
    kurer_json_begin_array(&j);
    kurer_json_end_array(&j);
    kurer_json_raw(&j, "{\"a\":1}", 7);
    kurer_json_end_array(&j);
    kurer_json_kv_int(&j, "n", 7);
    kurer_json_kv_uint(&j, "u", 8);
    kurer_json_end_object(&j);
    assert_int_equal(kurer_json_error(&j), 0);
    assert_string_equal(text(&b), "{\"ok\":true,\"text\":\"a\\u001b[2Jb\\u009bc\\u0085d\\ufffde"
                                  "\\u202ef\\\\g\\nh\",\"list\":[-1,18446744073709551615,null,{},"
                                  "[],{\"a\":1}],\"n\":7,\"u\":8}");
    /* Members after an object's first ones, written elsewhere. */
    kurer_buf_init_fixed(&b, out, sizeof(out) - 1);
    kurer_json_init_members(&j, &b);
    kurer_json_kv_str(&j, "file", "x");
    kurer_json_kv_bool(&j, "valid", 0);
    assert_int_equal(kurer_json_error(&j), 0);
    assert_string_equal(text(&b), ",\"file\":\"x\",\"valid\":false");
}

static void test_writer_errors(void **state)
{
    kurer_buf b;
    kurer_json j;
    (void)state;
    /* A value without its key, a key in an array, an end that does not match. */
    writer(&j, &b);
    kurer_json_begin_object(&j);
    kurer_json_str(&j, "v");
    assert_int_equal(kurer_json_error(&j), KURER_ESTATE);
    assert_string_equal(text(&b), "{");
    writer(&j, &b);
    kurer_json_begin_array(&j);
    kurer_json_key(&j, "k");
    assert_int_equal(kurer_json_error(&j), KURER_ESTATE);
    writer(&j, &b);
    kurer_json_begin_array(&j);
    kurer_json_end_object(&j);
    assert_int_equal(kurer_json_error(&j), KURER_ESTATE);
    writer(&j, &b);
    kurer_json_end_array(&j);
    assert_int_equal(kurer_json_error(&j), KURER_ESTATE);
    /* Too deep. */
    writer(&j, &b);
    for (int i = 0; i <= KURER_JSON_DEPTH_MAX; i++)
        kurer_json_begin_array(&j);
    assert_int_equal(kurer_json_error(&j), KURER_ELIMIT);
    /* Full: the error sticks and nothing more is written. */
    char small[8];
    kurer_buf_init_fixed(&b, small, sizeof(small));
    kurer_json_init(&j, &b);
    kurer_json_begin_array(&j);
    kurer_json_str(&j, "too long for it");
    kurer_json_int(&j, 1);
    assert_int_equal(kurer_json_error(&j), KURER_ELIMIT);
    assert_int_equal(b.len, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escapes),  cmocka_unit_test(test_term_escapes),
        cmocka_unit_test(test_utf8),          cmocka_unit_test(test_writer),
        cmocka_unit_test(test_writer_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
