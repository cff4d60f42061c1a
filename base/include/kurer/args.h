/* The command-line parser of kurer, kurer-admin and kurer-relay: one set of rules for all three.
 *
 *   - Options are long: --name, or --name=value. "-h" is --help when the command declares a
 *     "help" option; any other argument that starts with '-' (but "-" alone) is an unknown
 *     option.
 *   - An option that takes a value takes the next argument, or what follows '='. The next
 *     argument is never taken when it starts with "--": `--out --json` is "--out needs a
 *     value" (write --out=--odd for a value that really starts with "--").
 *   - An option is given once, unless it is declared repeatable with a maximum.
 *   - "--" ends the options: everything after it is positional.
 *   - The positional arguments are counted against a declared minimum and maximum (the
 *     minimum is not checked when --help is given, so that `CMD --help` always works).
 *
 * Every broken rule is a usage error with a one-line message that names the option or the
 * argument. Positional counts are checked last, so that a caller may look at the options of
 * an argument list whose positionals are wrong (to say what was meant). No state of its own:
 * the parsed arguments borrow argv and the option declarations. */
#ifndef KURER_ARGS_H
#define KURER_ARGS_H

#include <stddef.h>

#include "kurer/error.h"

#define KURER_ARGS_OPTS_MAX   32 /* options a command may declare */
#define KURER_ARGS_VALUES_MAX 64 /* options given on one command line, repeats included */
#define KURER_ARGS_POS_MAX    16 /* positional arguments kept (a larger max_pos is capped) */

#define KURER_OPT_VALUE 1u /* the option takes a value */

typedef struct kurer_opt {
    const char *name; /* without the leading "--" */
    unsigned flags;   /* KURER_OPT_VALUE, or 0 for a flag */
    unsigned max;     /* how many times it may be given; 0 (or 1) means once */
} kurer_opt;

typedef struct kurer_args_spec {
    const kurer_opt *opts;
    size_t nopts;
    size_t min_pos, max_pos;
    const char *pos_name; /* the positional arguments in messages ("FILE"); NULL: "argument" */
} kurer_args_spec;

/* Which rule an argument list broke. */
typedef enum kurer_args_error {
    KURER_ARGS_OK = 0,
    KURER_ARGS_UNKNOWN,        /* "unknown option '--x'" */
    KURER_ARGS_NEEDS_VALUE,    /* "--x needs a value" (none, or the next starts with "--") */
    KURER_ARGS_TAKES_NO_VALUE, /* "option '--x' takes no value" */
    KURER_ARGS_REPEATED,       /* "option '--x' given twice" */
    KURER_ARGS_TOO_OFTEN,      /* "--x may be given at most N times" */
    KURER_ARGS_TOO_MANY,       /* "unexpected argument 'y'" */
    KURER_ARGS_TOO_FEW,        /* "missing FILE" */
} kurer_args_error;

typedef struct kurer_args {
    kurer_args_spec spec; /* a copy: the declarations it points to must outlive the parse */
    kurer_args_error error;
    unsigned count[KURER_ARGS_OPTS_MAX]; /* times each declared option was given */
    unsigned opt_of[KURER_ARGS_VALUES_MAX];
    const char *value[KURER_ARGS_VALUES_MAX]; /* "" for a flag */
    size_t nvalues;
    const char *pos[KURER_ARGS_POS_MAX];
    size_t npos;
} kurer_args;

/* Parses the argc arguments at argv (without the program and command names) against spec.
 * 0, or KURER_EINVAL with a->error saying which rule was broken and err (errlen bytes, may be
 * 0) the one-line message. a borrows argv and spec's options (not spec itself). KURER_ELIMIT
 * if spec declares more than
 * KURER_ARGS_OPTS_MAX options (a bug of the caller). */
KURER_EXPORT KURER_MUST_CHECK int kurer_args_parse(kurer_args *a, const kurer_args_spec *spec,
                                                   int argc, char *const *argv, char *err,
                                                   size_t errlen);
/* How many times the option called name was given (0 if never). name must be declared: an
 * undeclared name is a bug and aborts. */
KURER_EXPORT size_t kurer_args_count(const kurer_args *a, const char *name);
/* The i-th value (from 0, in command-line order) of the option called name, or NULL. */
KURER_EXPORT const char *kurer_args_nth(const kurer_args *a, const char *name, size_t i);
/* The first value of name, or NULL when it was not given. */
KURER_EXPORT const char *kurer_args_value(const kurer_args *a, const char *name);
/* The value of an option the command cannot do without: 0 with *out set, or KURER_EINVAL with
 * "missing --name" in err when it was not given or given empty (--name=). */
KURER_EXPORT KURER_MUST_CHECK int kurer_args_require(const kurer_args *a, const char *name,
                                                     const char **out, char *err, size_t errlen);

#endif
