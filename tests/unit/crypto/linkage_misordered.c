/* Fixture for tests/check_linkage.sh: linkage.c linked with libsignal-protocol-c before
 * libsodium and protobuf-c (see tests/unit/crypto/CMakeLists.txt), the order
 * docs/libraries.md forbids. Prints the result of the linkage check and, for the log, where
 * the clashing names resolved. Exit status 0 when it ran; the script judges the output. */
#define _GNU_SOURCE 1

#include <dlfcn.h>
#include <stdio.h>

#include "kurer/error.h"
#include "linkage.h"

static const char *where(const char *name)
{
    Dl_info di;
    void *p = dlsym(RTLD_DEFAULT, name);
    if (p == NULL || dladdr(p, &di) == 0 || di.dli_fname == NULL)
        return "(unresolved)";
    return di.dli_fname;
}

int main(void)
{
    printf("crypto_hash_sha512 -> %s\n", where("crypto_hash_sha512"));
    printf("protobuf_c_message_unpack -> %s\n", where("protobuf_c_message_unpack"));
    int rc = kurer__linkage_check();
    printf("kurer__linkage_check: %s\n", rc == 0 ? "OK" : kurer_err_name(rc));
    return 0;
}
