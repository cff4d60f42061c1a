/* kurer-admin: the result of a command (the reason it was refused, the --json object, the text
 * on stdout), and the options every command parses the same way. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kurer/text.h"
#include "kurer/util.h"

int g_json;
const char *g_command = "";
kurer_json g_j;

static char g_err[1024];
static int g_err_code;
static kurer_buf g_fields;   /* the members of g_j */
static kurer_buf g_replaced; /* a JSON array, written by g_rj */
static kurer_json g_rj;
static int g_started;

/* g_j writes into g_fields from the first use on. */
static void start(void)
{
    if (!g_started) {
        kurer_buf_init(&g_fields, KURER_BUF_HARD_MAX);
        kurer_buf_init(&g_replaced, KURER_BUF_HARD_MAX);
        kurer_json_init_members(&g_j, &g_fields);
        kurer_json_init(&g_rj, &g_replaced);
        g_started = 1;
    }
}

int refuse(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof(g_err), fmt, ap);
    va_end(ap);
    g_err_code = rc;
    return rc;
}

int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof(g_err), fmt, ap);
    va_end(ap);
    g_err_code = KURER_EINVAL;
    return RC_USAGE;
}

void say(const char *fmt, ...)
{
    va_list ap;
    if (g_json)
        return;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

const char *term(const char *s)
{
    static char bufs[4][KURER_TEXT_TERM_MAX(KURER_NAME_MAX)];
    static unsigned next;
    char *b = bufs[next++ % 4];
    return kurer_text_term(b, sizeof(bufs[0]), s);
}

void jstr(const char *k, const char *v)
{
    start();
    kurer_json_kv_str(&g_j, k, v);
}

void jint(const char *k, int64_t v)
{
    start();
    kurer_json_kv_int(&g_j, k, v);
}

void ju64(const char *k, uint64_t v)
{
    start();
    kurer_json_kv_uint(&g_j, k, v);
}

void jbool(const char *k, int v)
{
    start();
    kurer_json_kv_bool(&g_j, k, v);
}

void replaced(const char *path)
{
    start();
    if (g_replaced.len == 0)
        kurer_json_begin_array(&g_rj);
    kurer_json_str(&g_rj, path);
}

/* {"ok":…,"command":…[,"error":…,"code":…][,"replaced":[…]], the members…} on one line. */
static void print_json(int rc)
{
    kurer_buf o;
    kurer_json j;
    kurer_buf_init(&o, KURER_BUF_HARD_MAX);
    kurer_json_init(&j, &o);
    kurer_json_begin_object(&j);
    kurer_json_kv_bool(&j, "ok", rc == 0);
    kurer_json_kv_str(&j, "command", g_command);
    if (rc != 0) {
        kurer_json_kv_str(&j, "error", g_err);
        kurer_json_kv_str(&j, "code",
                          rc == RC_USAGE ? "USAGE" : kurer_err_name(g_err_code ? g_err_code : rc));
    }
    if (g_replaced.len > 0) {
        kurer_json_end_array(&g_rj);
        kurer_json_key(&j, "replaced");
        kurer_json_raw(&j, g_replaced.data, g_replaced.len);
    }
    if (kurer_json_error(&j) == 0 && kurer_buf_put(&o, g_fields.data, g_fields.len) == 0)
        kurer_json_end_object(&j);
    if (kurer_json_error(&j) == 0 && kurer_buf_put(&o, "\n", 1) == 0)
        fwrite(o.data, 1, o.len, stdout);
    else
        printf("{\"ok\":false,\"error\":\"output too large\",\"code\":\"ELIMIT\"}\n");
    kurer_buf_release(&o);
}

int emit(int rc)
{
    int code;
    start();
    if (rc == RC_HELP)
        return 0;
    if (rc == 0 && (kurer_json_error(&g_j) != 0 || kurer_json_error(&g_rj) != 0))
        rc = refuse(KURER_ELIMIT, "output too large");
    code = rc == 0 ? 0 : rc == RC_USAGE ? EXIT_USAGE : EXIT_REFUSED;
    if (rc != 0) {
        if (g_err[0] == '\0')
            snprintf(g_err, sizeof(g_err), "%s", kurer_strerror(rc));
        /* The reason may quote a file's contents or name: never raw on a terminal. */
        fputs("kurer-admin: ", stderr);
        (void)kurer_text_fput_term(stderr, g_err);
        fputc('\n', stderr);
        if (rc == RC_USAGE)
            fprintf(stderr, "kurer-admin: try 'kurer-admin %s%s--help'\n", g_command,
                    g_command[0] ? " " : "");
    }
    if (g_json)
        print_json(rc);
    kurer_buf_release(&g_fields);
    kurer_buf_release(&g_replaced);
    if (fflush(stdout) != 0)
        return EXIT_REFUSED;
    return code;
}

const char *role_a(int role)
{
    static char buf[48];
    const char *n = kurer_role_name(role);
    snprintf(buf, sizeof(buf), "%s %s", strchr("AEIOU", n[0]) && n[0] ? "an" : "a", n);
    return buf;
}

const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

void hex(char *out, const uint8_t *p, size_t n)
{
    kurer_hex_encode(out, p, n);
}

const char *fmt_time(char *buf, size_t n, int64_t t)
{
    kurer_time_format(buf, n, t);
    return buf;
}

/* ------------------------------------------------------------------------ options */

int command_args(kurer_args *a, const kurer_opt *opts, size_t nopts, size_t min_pos, size_t max_pos,
                 const char *pos_name, const char *help, int argc, char **argv)
{
    const kurer_args_spec spec = {opts, nopts, min_pos, max_pos, pos_name};
    char err[512];
    start(); /* g_j is ready for every command */
    if (kurer_args_parse(a, &spec, argc, argv, err, sizeof(err)) != 0)
        return usage_error("%s", err);
    if (flag(a, "help")) {
        fputs(help, stdout);
        return RC_HELP;
    }
    g_json |= flag(a, "json"); /* a leading --json (before the command) counts too */
    return 0;
}

const char *opt(const kurer_args *a, const char *name)
{
    return kurer_args_value(a, name);
}

int flag(const kurer_args *a, const char *name)
{
    return kurer_args_count(a, name) > 0;
}

int need(const kurer_args *a, const char *name, const char **out)
{
    char err[128];
    if (kurer_args_require(a, name, out, err, sizeof(err)) != 0)
        return usage_error("%s", err);
    return 0;
}

/* A value that is not a variable name is refused without being echoed: it may be a passphrase
 * typed there. */
int opt_env(const kurer_args *a, const char *name, const char *def, const char **out)
{
    const char *s = opt(a, name);
    *out = def;
    if (s == NULL)
        return 0;
    int ok = (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_';
    for (size_t i = 1; ok && s[i] != '\0'; i++)
        ok = (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
             (s[i] >= '0' && s[i] <= '9') || s[i] == '_';
    if (!ok)
        return usage_error(
            "--%s needs the NAME of an environment variable ([A-Za-z_][A-Za-z0-9_]*), "
            "not a passphrase (the value given is not shown)",
            name);
    *out = s;
    return 0;
}

int opt_days(const kurer_args *a, const char *name, uint64_t def, uint64_t *out)
{
    const char *s = opt(a, name);
    *out = def;
    if (s == NULL)
        return 0;
    if (kurer_parse_u64(s, 36500, out) != 0 || *out == 0)
        return usage_error("--%s must be a number of days from 1 to 36500", name);
    return 0;
}

int opt_level(const kurer_args *a, const char *name, kurer_level *out, int *given)
{
    const char *s = opt(a, name);
    int rc;
    *given = s != NULL;
    if (s == NULL)
        return 0;
    rc = kurer_level_parse(s, out);
    if (rc == KURER_ECLEARANCE)
        return refuse(rc, "--%s %s: the system is not accredited above CONFIDENTIAL", name, s);
    if (rc != 0)
        return usage_error("--%s: unknown level '%s' (UNCLASSIFIED, RESTRICTED or CONFIDENTIAL)",
                           name, s);
    return 0;
}

int parse_reason(const char *s, kurer_revocation_reason *out)
{
    char norm[32];
    size_t i;
    for (i = 0; s[i] != '\0' && i + 1 < sizeof(norm); i++)
        norm[i] = s[i] == '_' ? '-' : (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    if (s[i] != '\0')
        return KURER_EINVAL;
    norm[i] = '\0';
    return kurer_reason_parse(norm, out);
}

int get_passphrase(const char *envname, const char *what, int is_new, kurer_secret *out)
{
    char why[700];
    int rc = kurer_secret_passphrase(envname, what, is_new, out, why, sizeof(why));
    return rc != 0 ? refuse(rc, "%s", why) : 0;
}
