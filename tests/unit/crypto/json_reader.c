/* A tiny JSON reader for the known-answer vector tests (json_reader.h). Test code only. */
#include "json_reader.h"

#include <stdlib.h>
#include <string.h>

typedef struct jparser {
    const char *p, *end;
    int depth;
} jparser;

void jfree(jval *v)
{
    size_t i;
    if (v == NULL)
        return;
    for (i = 0; i < v->n; i++) {
        jfree(v->items[i]);
        if (v->keys != NULL)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

static void jskip_ws(jparser *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A string at j->p (which is at the opening quote); NULL on a syntax error. */
static char *jparse_string(jparser *j)
{
    size_t cap = 16, len = 0;
    char *s = malloc(cap);
    j->p++;
    while (s != NULL && j->p < j->end && *j->p != '"') {
        unsigned cp;
        int k;
        if (len + 5 > cap) {
            char *ns = realloc(s, cap * 2);
            if (ns == NULL)
                break;
            s = ns;
            cap *= 2;
        }
        if ((unsigned char)*j->p < 0x20)
            break;
        if (*j->p != '\\') {
            s[len++] = *j->p++;
            continue;
        }
        if (++j->p >= j->end)
            break;
        switch (*j->p++) {
        case '"':
            s[len++] = '"';
            continue;
        case '\\':
            s[len++] = '\\';
            continue;
        case '/':
            s[len++] = '/';
            continue;
        case 'b':
            s[len++] = '\b';
            continue;
        case 'f':
            s[len++] = '\f';
            continue;
        case 'n':
            s[len++] = '\n';
            continue;
        case 'r':
            s[len++] = '\r';
            continue;
        case 't':
            s[len++] = '\t';
            continue;
        case 'u':
            if (j->end - j->p < 4)
                goto bad;
            cp = 0;
            for (k = 0; k < 4; k++) {
                int h = hexval(j->p[k]);
                if (h < 0)
                    goto bad;
                cp = cp * 16 + (unsigned)h;
            }
            j->p += 4;
            /* Enough for this file: the basic plane, without surrogate pairs. */
            if (cp < 0x80) {
                s[len++] = (char)cp;
            } else if (cp < 0x800) {
                s[len++] = (char)(0xc0 | (cp >> 6));
                s[len++] = (char)(0x80 | (cp & 0x3f));
            } else {
                s[len++] = (char)(0xe0 | (cp >> 12));
                s[len++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                s[len++] = (char)(0x80 | (cp & 0x3f));
            }
            continue;
        default:
            goto bad;
        }
    }
    if (s == NULL || j->p >= j->end || *j->p != '"')
        goto bad;
    j->p++;
    s[len] = '\0';
    return s;
bad:
    free(s);
    return NULL;
}

static jval *jparse_value(jparser *j);

static int jappend(jval *v, char *key, jval *item)
{
    jval **ni = realloc(v->items, (v->n + 1) * sizeof(*ni));
    if (ni == NULL)
        return -1;
    v->items = ni;
    if (v->type == J_OBJ) {
        char **nk = realloc(v->keys, (v->n + 1) * sizeof(*nk));
        if (nk == NULL)
            return -1;
        v->keys = nk;
        v->keys[v->n] = key;
    }
    v->items[v->n++] = item;
    return 0;
}

static jval *jparse_container(jparser *j, jval *v, char close)
{
    j->p++;
    jskip_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        jval *item;
        jskip_ws(j);
        if (v->type == J_OBJ) {
            if (j->p >= j->end || *j->p != '"' || (key = jparse_string(j)) == NULL)
                goto bad;
            jskip_ws(j);
            if (j->p >= j->end || *j->p != ':') {
                free(key);
                goto bad;
            }
            j->p++;
        }
        item = jparse_value(j);
        if (item == NULL || jappend(v, key, item) != 0) {
            free(key);
            jfree(item);
            goto bad;
        }
        jskip_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return v;
        }
        goto bad;
    }
bad:
    jfree(v);
    return NULL;
}

static jval *jparse_value(jparser *j)
{
    jval *v;
    const char *start;
    jskip_ws(j);
    if (j->p >= j->end || j->depth > 64)
        return NULL;
    v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    switch (*j->p) {
    case '{':
    case '[':
        v->type = *j->p == '{' ? J_OBJ : J_ARR;
        j->depth++;
        v = jparse_container(j, v, v->type == J_OBJ ? '}' : ']');
        j->depth--;
        return v;
    case '"':
        v->type = J_STR;
        if ((v->str = jparse_string(j)) == NULL)
            break;
        return v;
    default:
        start = j->p;
        while (j->p < j->end && strchr("+-0123456789.eE", *j->p) != NULL && *j->p != '\0')
            j->p++;
        if (j->p > start) {
            v->type = J_NUM;
            v->str = strndup(start, (size_t)(j->p - start));
            if (v->str == NULL)
                break;
            return v;
        }
        if (j->end - j->p >= 4 && memcmp(j->p, "true", 4) == 0) {
            v->type = J_BOOL;
            v->b = 1;
            j->p += 4;
            return v;
        }
        if (j->end - j->p >= 5 && memcmp(j->p, "false", 5) == 0) {
            v->type = J_BOOL;
            j->p += 5;
            return v;
        }
        if (j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) {
            v->type = J_NULL;
            j->p += 4;
            return v;
        }
        break;
    }
    jfree(v);
    return NULL;
}

jval *jparse(const char *text, size_t len)
{
    jparser j = {text, text + len, 0};
    jval *v = jparse_value(&j);
    jskip_ws(&j);
    if (v != NULL && j.p != j.end) {
        jfree(v);
        return NULL;
    }
    return v;
}

const jval *jget(const jval *obj, const char *key)
{
    size_t i;
    if (obj == NULL || obj->type != J_OBJ)
        return NULL;
    for (i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return obj->items[i];
    return NULL;
}

const char *jget_str(const jval *obj, const char *key)
{
    const jval *v = jget(obj, key);
    return v != NULL && v->type == J_STR ? v->str : NULL;
}
