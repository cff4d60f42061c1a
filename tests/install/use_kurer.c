/* ctest install_check builds this against an installed libkurer, with nothing but what
 * `pkg-config --cflags --libs kurer` gives: proof that kurer.h is self-contained and that the
 * shared library links and loads. Usage: use_kurer MISSING_HOME */
#include <kurer/kurer.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: use_kurer MISSING_HOME\n");
        return 2;
    }
    kurer *k = NULL;
    int rc = kurer_open(argv[1], "passphrase", strlen("passphrase"), NULL, NULL, NULL, &k);
    if (rc != KURER_ENOENT || k != NULL) {
        fprintf(stderr, "use_kurer: kurer_open(%s) gave %d (%s), expected ENOENT\n", argv[1], rc,
                kurer_err_name(rc));
        kurer_close(k);
        return 1;
    }
    if (strcmp(kurer_err_name(rc), "ENOENT") != 0 ||
        strcmp(kurer_strerror(rc), "no such file or object") != 0 ||
        kurer_err_category(rc) != KURER_CAT_IO ||
        strcmp(kurer_level_name(KURER_LEVEL_RESTRICTED), "RESTRICTED") != 0) {
        fprintf(stderr, "use_kurer: unexpected names from the library\n");
        return 1;
    }
    /* A struct of the public API that needs a size from kurer/sizes.h. */
    kurer_refusal why;
    memset(&why, 0, sizeof(why));
    printf("use_kurer: kurer_open on a missing home: %s (%s); refusal user field %zu bytes\n",
           kurer_strerror(rc), kurer_err_name(rc), sizeof(why.user));
    return 0;
}
