#include "kurer/args.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 5, 6))) static int
fail(kurer_args *a, kurer_args_error why, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    a->error = why;
    if (errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return KURER_EINVAL;
}

/* The declaration of the option spelled s (nlen bytes), or nopts if there is none. */
static size_t find(const kurer_args_spec *spec, const char *s, size_t nlen)
{
    for (size_t d = 0; d < spec->nopts; d++)
        if (strlen(spec->opts[d].name) == nlen && strncmp(spec->opts[d].name, s, nlen) == 0)
            return d;
    return spec->nopts;
}

/* One option at argv[*i] ("--name", "--name=value"; s is past the dashes). */
static int take_option(kurer_args *a, int argc, char *const *argv, int *i, const char *s, char *err,
                       size_t errlen)
{
    const kurer_args_spec *spec = &a->spec;
    const char *eq = strchr(s, '='), *v;
    size_t nlen = eq != NULL ? (size_t)(eq - s) : strlen(s);
    size_t d = find(spec, s, nlen);
    if (d == spec->nopts)
        return fail(a, KURER_ARGS_UNKNOWN, err, errlen, "unknown option '--%.*s'", (int)nlen, s);
    const kurer_opt *o = &spec->opts[d];
    unsigned max = o->max > 1 ? o->max : 1;
    if ((o->flags & KURER_OPT_VALUE) != 0) {
        if (eq != NULL)
            v = eq + 1;
        else if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0)
            v = argv[++*i];
        else
            return fail(a, KURER_ARGS_NEEDS_VALUE, err, errlen, "--%s needs a value", o->name);
    } else {
        if (eq != NULL)
            return fail(a, KURER_ARGS_TAKES_NO_VALUE, err, errlen, "option '--%s' takes no value",
                        o->name);
        v = "";
    }
    if (a->count[d] > 0 && max == 1)
        return fail(a, KURER_ARGS_REPEATED, err, errlen, "option '--%s' given twice", o->name);
    if (a->count[d] == max || a->nvalues == KURER_ARGS_VALUES_MAX)
        return fail(a, KURER_ARGS_TOO_OFTEN, err, errlen, "--%s may be given at most %u times",
                    o->name, a->count[d]);
    a->count[d]++;
    a->opt_of[a->nvalues] = (unsigned)d;
    a->value[a->nvalues++] = v;
    return 0;
}

int kurer_args_parse(kurer_args *a, const kurer_args_spec *spec, int argc, char *const *argv,
                     char *err, size_t errlen)
{
    int only_pos = 0, rc;
    size_t max_pos = spec->max_pos < KURER_ARGS_POS_MAX ? spec->max_pos : KURER_ARGS_POS_MAX;
    const char *extra = NULL; /* the first positional argument past max_pos */
    memset(a, 0, sizeof(*a));
    a->spec = *spec;
    if (errlen > 0)
        err[0] = '\0';
    if (spec->nopts > KURER_ARGS_OPTS_MAX)
        return KURER_ELIMIT;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (only_pos || s[0] != '-' || s[1] == '\0') {
            if (a->npos < max_pos)
                a->pos[a->npos++] = s;
            else if (extra == NULL)
                extra = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(s, "-h") == 0 && find(spec, "help", 4) < spec->nopts)
            s = "--help";
        if (s[1] != '-')
            return fail(a, KURER_ARGS_UNKNOWN, err, errlen, "unknown option '%s'", s);
        if ((rc = take_option(a, argc, argv, &i, s + 2, err, errlen)) != 0)
            return rc;
    }
    /* Positional counts last: the options are all known by now. */
    if (extra != NULL)
        return fail(a, KURER_ARGS_TOO_MANY, err, errlen, "unexpected argument '%s'", extra);
    size_t help = find(spec, "help", 4);
    if (a->npos < spec->min_pos && (help == spec->nopts || a->count[help] == 0))
        return fail(a, KURER_ARGS_TOO_FEW, err, errlen, "missing %s",
                    spec->pos_name != NULL ? spec->pos_name : "argument");
    return 0;
}

static size_t index_of(const kurer_args *a, const char *name)
{
    size_t d = find(&a->spec, name, strlen(name));
    if (d == a->spec.nopts)
        abort(); /* a bug: the command asks for an option it does not declare */
    return d;
}

size_t kurer_args_count(const kurer_args *a, const char *name)
{
    return a->count[index_of(a, name)];
}

const char *kurer_args_nth(const kurer_args *a, const char *name, size_t i)
{
    size_t d = index_of(a, name);
    for (size_t k = 0; k < a->nvalues; k++)
        if (a->opt_of[k] == d && i-- == 0)
            return a->value[k];
    return NULL;
}

const char *kurer_args_value(const kurer_args *a, const char *name)
{
    return kurer_args_nth(a, name, 0);
}

int kurer_args_require(const kurer_args *a, const char *name, const char **out, char *err,
                       size_t errlen)
{
    *out = kurer_args_value(a, name);
    if (*out == NULL || **out == '\0') {
        if (errlen > 0)
            snprintf(err, errlen, "missing --%s", name);
        return KURER_EINVAL;
    }
    return 0;
}
