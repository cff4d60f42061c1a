/* The relay's input files that may be binary or armoured text (--root, --crl): read, and
 * dearmoured when the first line says so (crypto/armor.c). */
#include <stdlib.h>

#include "kurer/armor.h"
#include "kurer/util.h"
#include "relay_internal.h"

int kurer__read_input(const char *path, size_t max, kurer_armor_kind want, uint8_t **d, size_t *n)
{
    kurer_armor_kind got;
    /* armoured text is about a third larger than its bytes, and has its lines */
    int rc = kurer_file_read(path, max / 3 * 4 + max / 48 + 256, d, n);
    if (rc != 0)
        return rc;
    rc = kurer_armor_unwrap(d, n, &got);
    if (rc == 0 && got != KURER_ARMOR_NONE && got != want)
        rc = KURER_EARMORLABEL;
    if (rc == 0 && *n > max)
        rc = KURER_ELIMIT;
    if (rc != 0) {
        free(*d);
        *d = NULL;
        *n = 0;
    }
    return rc;
}
