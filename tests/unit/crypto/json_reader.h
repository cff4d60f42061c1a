/* A tiny JSON reader for the known-answer vector tests (tests/vectors/): objects, arrays,
 * strings, numbers (kept as their literal text), true/false/null. There is no JSON library among
 * our dependencies. Test code only. */
#ifndef KURER_TEST_JSON_READER_H
#define KURER_TEST_JSON_READER_H

#include <stddef.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
    jtype type;
    char *str;           /* J_STR: the decoded string; J_NUM: the literal text */
    char **keys;         /* J_OBJ: keys[i] names items[i] */
    struct jval **items; /* J_ARR and J_OBJ */
    size_t n;
    int b;
} jval;

/* The document text[0..len), or NULL on a syntax error. Free with jfree. */
jval *jparse(const char *text, size_t len);
void jfree(jval *v);
/* The member key of obj, or NULL (also when obj is not an object). */
const jval *jget(const jval *obj, const char *key);
/* The string member key of obj, or NULL. */
const char *jget_str(const jval *obj, const char *key);

#endif
