/* The store's configuration keys (store_config.h). */
#include "store_config.h"

#include <stdio.h>
#include <string.h>

#include "kurer/error.h"
#include "store.h"

/* The value of `key = value` when the line's key is key (trimmed), or NULL. */
static const char *value_of(const char *line, const char *key, size_t *len)
{
    size_t k = strlen(key);
    if (strncmp(line, key, k) != 0)
        return NULL;
    const char *v = line + k;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v != '=')
        return NULL;
    v++;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strcspn(v, "\r\n");
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    *len = n;
    return v;
}

int kurer__config_store_line(kurer_relay_config *c, const char *line)
{
    size_t n;
    const char *v;
    if ((v = value_of(line, "store", &n)) != NULL) {
        if (n == 6 && memcmp(v, "sqlite", 6) == 0)
            c->store_postgres = 0;
        else if (n == 8 && memcmp(v, "postgres", 8) == 0)
            c->store_postgres = 1;
        else
            return KURER_EINVAL;
        return 1;
    }
    if ((v = value_of(line, "pg_conninfo", &n)) != NULL) {
        if (n >= sizeof(c->pg_conninfo))
            return KURER_EINVAL;
        memcpy(c->pg_conninfo, v, n);
        c->pg_conninfo[n] = '\0';
        return 1;
    }
    return 0;
}

int kurer_relay_init_store(const kurer_relay_config *c)
{
    if (!c->store_postgres)
        return 0;
    int err = kurer_store_init_postgres(c->pg_conninfo);
    if (err == 0) {
        printf("postgres schema current\n");
        return 0;
    }
    fprintf(stderr,
            "kurer-relay: init: the postgres schema: %s (see the log and docs/scale-out.md)\n",
            kurer_strerror(err));
    return 1;
}
