#ifndef KURER_CRYPTO_LINKAGE_H
#define KURER_CRYPTO_LINKAGE_H

/* Checks how libsodium, protobuf-c and SQLite symbols were bound in this process (see
 * docs/libraries.md). 0 or KURER_ELINKAGE. */
int kurer__linkage_check(void);

#endif
