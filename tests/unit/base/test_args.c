/* The one argument parser (base/args.c): every rule has a negative test that expects the exact
 * error, kind and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/args.h"

static const kurer_opt opts[] = {
    {"help", 0, 0}, {"json", 0, 0}, {"out", KURER_OPT_VALUE, 0}, {"crl", KURER_OPT_VALUE, 2}};
static const kurer_args_spec spec = {opts, sizeof(opts) / sizeof(opts[0]), 1, 2, "FILE"};

static kurer_args a;
static char err[256];

/* Parses the NULL-terminated list of arguments against spec. */
static int parse_with(const kurer_args_spec *s, const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *p = first; p != NULL; p = va_arg(ap, const char *))
        argv[argc++] = (char *)p;
    va_end(ap);
    memset(err, 'x', sizeof(err));
    return kurer_args_parse(&a, s, argc, argv, err, sizeof(err));
}
#define PARSE(...) parse_with(&spec, __VA_ARGS__, (const char *)NULL)

static void expect_error(int rc, kurer_args_error why, const char *msg)
{
    assert_int_equal(rc, KURER_EINVAL);
    assert_int_equal(a.error, why);
    assert_string_equal(err, msg);
}

static void test_accepts(void **state)
{
    (void)state;
    assert_int_equal(PARSE("--out", "x.chain", "--json", "a", "--crl=one", "--crl", "two", "b"), 0);
    assert_string_equal(err, "");
    assert_int_equal(a.error, KURER_ARGS_OK);
    assert_string_equal(kurer_args_value(&a, "out"), "x.chain");
    assert_int_equal(kurer_args_count(&a, "json"), 1);
    assert_string_equal(kurer_args_value(&a, "json"), "");
    assert_int_equal(kurer_args_count(&a, "crl"), 2);
    assert_string_equal(kurer_args_nth(&a, "crl", 0), "one");
    assert_string_equal(kurer_args_nth(&a, "crl", 1), "two");
    assert_null(kurer_args_nth(&a, "crl", 2));
    assert_null(kurer_args_value(&a, "help"));
    assert_int_equal(a.npos, 2);
    assert_string_equal(a.pos[0], "a");
    assert_string_equal(a.pos[1], "b");
    /* A value may start with one dash, or with two after '='; "-" alone is positional. */
    assert_int_equal(PARSE("--out", "-x", "-"), 0);
    assert_string_equal(kurer_args_value(&a, "out"), "-x");
    assert_string_equal(a.pos[0], "-");
    assert_int_equal(PARSE("--out=--odd", "f"), 0);
    assert_string_equal(kurer_args_value(&a, "out"), "--odd");
    assert_int_equal(PARSE("--out=", "f"), 0);
    assert_string_equal(kurer_args_value(&a, "out"), "");
    /* "-h" is --help, and --help waives the minimum of positionals. */
    assert_int_equal(PARSE("-h"), 0);
    assert_int_equal(kurer_args_count(&a, "help"), 1);
}

static void test_double_dash_ends_options(void **state)
{
    (void)state;
    assert_int_equal(PARSE("--", "--json", "-h"), 0);
    assert_int_equal(kurer_args_count(&a, "json"), 0);
    assert_int_equal(kurer_args_count(&a, "help"), 0);
    assert_int_equal(a.npos, 2);
    assert_string_equal(a.pos[0], "--json");
    assert_string_equal(a.pos[1], "-h");
}

static void test_unknown_option(void **state)
{
    (void)state;
    expect_error(PARSE("f", "--bogus"), KURER_ARGS_UNKNOWN, "unknown option '--bogus'");
    expect_error(PARSE("f", "--bogus=1"), KURER_ARGS_UNKNOWN, "unknown option '--bogus'");
    expect_error(PARSE("f", "-x"), KURER_ARGS_UNKNOWN, "unknown option '-x'");
    /* No abbreviations. */
    expect_error(PARSE("f", "--js"), KURER_ARGS_UNKNOWN, "unknown option '--js'");
    /* "-h" is only --help where a command declares one. */
    static const kurer_opt plain[] = {{"json", 0, 0}};
    const kurer_args_spec s = {plain, 1, 0, 0, NULL};
    expect_error(parse_with(&s, "-h", (const char *)NULL), KURER_ARGS_UNKNOWN,
                 "unknown option '-h'");
}

static void test_missing_value(void **state)
{
    (void)state;
    expect_error(PARSE("f", "--out"), KURER_ARGS_NEEDS_VALUE, "--out needs a value");
}

static void test_value_never_starts_with_dashes(void **state)
{
    (void)state;
    /* The stricter rule of all three programs: --out never swallows the next option. */
    expect_error(PARSE("f", "--out", "--json"), KURER_ARGS_NEEDS_VALUE, "--out needs a value");
    expect_error(PARSE("f", "--out", "--"), KURER_ARGS_NEEDS_VALUE, "--out needs a value");
    expect_error(PARSE("f", "--crl", "--crl", "x"), KURER_ARGS_NEEDS_VALUE, "--crl needs a value");
}

static void test_flag_takes_no_value(void **state)
{
    (void)state;
    expect_error(PARSE("f", "--json=yes"), KURER_ARGS_TAKES_NO_VALUE,
                 "option '--json' takes no value");
}

static void test_repeated(void **state)
{
    (void)state;
    expect_error(PARSE("f", "--out", "a", "--out=b"), KURER_ARGS_REPEATED,
                 "option '--out' given twice");
    expect_error(PARSE("f", "--json", "--json"), KURER_ARGS_REPEATED,
                 "option '--json' given twice");
}

static void test_too_often(void **state)
{
    (void)state;
    expect_error(PARSE("f", "--crl", "1", "--crl", "2", "--crl", "3"), KURER_ARGS_TOO_OFTEN,
                 "--crl may be given at most 2 times");
}

static void test_too_many_positionals(void **state)
{
    (void)state;
    expect_error(PARSE("a", "b", "c", "d"), KURER_ARGS_TOO_MANY, "unexpected argument 'c'");
    /* Counted last: a bad option after them is what is reported, and the options before
     * are parsed, for a caller that wants to say what was meant. */
    expect_error(PARSE("a", "b", "c", "--bogus"), KURER_ARGS_UNKNOWN, "unknown option '--bogus'");
    expect_error(PARSE("a", "b", "c", "--out", "o"), KURER_ARGS_TOO_MANY,
                 "unexpected argument 'c'");
    assert_string_equal(kurer_args_value(&a, "out"), "o");
}

static void test_too_few_positionals(void **state)
{
    (void)state;
    expect_error(PARSE("--json"), KURER_ARGS_TOO_FEW, "missing FILE");
    static const kurer_opt none[] = {{"help", 0, 0}};
    const kurer_args_spec s = {none, 1, 2, 2, NULL};
    expect_error(parse_with(&s, "one", (const char *)NULL), KURER_ARGS_TOO_FEW, "missing argument");
}

static void test_require(void **state)
{
    const char *v = "unchanged";
    (void)state;
    assert_int_equal(PARSE("f", "--out", "o"), 0);
    assert_int_equal(kurer_args_require(&a, "out", &v, err, sizeof(err)), 0);
    assert_string_equal(v, "o");
    assert_int_equal(PARSE("f"), 0);
    assert_int_equal(kurer_args_require(&a, "out", &v, err, sizeof(err)), KURER_EINVAL);
    assert_null(v);
    assert_string_equal(err, "missing --out");
    assert_int_equal(PARSE("f", "--out="), 0);
    assert_int_equal(kurer_args_require(&a, "out", &v, err, sizeof(err)), KURER_EINVAL);
    assert_string_equal(err, "missing --out");
}

static void test_limits(void **state)
{
    static kurer_opt many[KURER_ARGS_OPTS_MAX + 1];
    char *argv[1] = {(char *)"x"};
    (void)state;
    for (size_t i = 0; i < KURER_ARGS_OPTS_MAX + 1; i++)
        many[i].name = "o";
    const kurer_args_spec s = {many, KURER_ARGS_OPTS_MAX + 1, 0, 1, NULL};
    assert_int_equal(kurer_args_parse(&a, &s, 1, argv, NULL, 0), KURER_ELIMIT);
    /* No room for a message: the error is still said by the code and the kind. */
    assert_int_equal(kurer_args_parse(&a, &spec, 0, argv, NULL, 0), KURER_EINVAL);
    assert_int_equal(a.error, KURER_ARGS_TOO_FEW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_double_dash_ends_options),
        cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_value_never_starts_with_dashes),
        cmocka_unit_test(test_flag_takes_no_value),
        cmocka_unit_test(test_repeated),
        cmocka_unit_test(test_too_often),
        cmocka_unit_test(test_too_many_positionals),
        cmocka_unit_test(test_too_few_positionals),
        cmocka_unit_test(test_require),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
