#include "kurer/secret.h"

#include <stdio.h>

#include "kurer/crypto.h"
#include "kurer/tty.h"

void kurer_secret_free(kurer_secret *s)
{
    if (s == NULL)
        return;
    if (s->p != NULL) {
        kurer_memzero(s->p, KURER_PASSPHRASE_MAX + 1);
        kurer_secure_free(s->p);
    }
    s->p = NULL;
    s->n = 0;
}

int kurer_secret_passphrase(const char *envname, const char *what, int is_new, kurer_secret *out,
                            char *why, size_t whylen)
{
    char *again;
    int rc;
    out->n = 0;
    out->p = kurer_secure_alloc(KURER_PASSPHRASE_MAX + 1);
    again = kurer_secure_alloc(KURER_PASSPHRASE_MAX + 1);
    if (out->p == NULL || again == NULL) {
        kurer_secure_free(again);
        kurer_secret_free(out);
        snprintf(why, whylen, "cannot allocate protected memory for a passphrase");
        return KURER_ENOMEM;
    }
    rc = kurer_passphrase_get(envname, what, is_new, out->p, again, &out->n, why, whylen);
    kurer_secure_free(again); /* wiped by kurer_passphrase_get and again by the free */
    if (rc != 0)
        kurer_secret_free(out);
    return rc;
}
