/* Sizes and ranges that the public API (kurer.h) shares with the certificate layer (proto/
 * certmsg.h), so that both are defined once. A public header: self-contained, installed with
 * kurer.h. */
#ifndef KURER_SIZES_H
#define KURER_SIZES_H

#define KURER_SUBJECT_MAX      128 /* a user@authority, bytes without the NUL */
#define KURER_IDENTITY_KEY_LEN 33  /* libsignal: 0x05 || X25519 public key */
#define KURER_DEVICE_ID_MAX    0x7fffffffU

#endif
