/* Blob transfers with the relay (docs/protocol.md 3.8), for a request worker holding the home
 * lock (given up while it waits for an answer, kurer__rpc). Both resume by themselves: after a
 * lost connection, a relay restart or a refused offset they connect again and go on from where
 * the relay stands, until the deadline (monotonic ms). Internal. */
#ifndef KURER_CLIENT_BLOB_H
#define KURER_CLIENT_BLOB_H

#include <stdint.h>

#include "kurer/frame.h"
#include "kurer/kurer.h"

/* Uploads the size sealed bytes of fd (read with pread from offset 0) as a new blob: *id is its
 * id once the relay has stored it all. The relay's refusals (ELIMIT: over its blob_max_size,
 * EQUOTA) end it; transport errors are retried until the deadline (then the last one). */
KURER_MUST_CHECK int kurer__blob_upload(kurer *k, int fd, uint64_t size,
                                        uint8_t id[KURER_BLOB_ID_LEN], uint64_t deadline);

/* Downloads blob id, which should be size sealed bytes, into fd (pwrite from offset 0).
 * ENOTFOUND: the relay no longer has it (expired); EBLOBTRUNC / ETRAILING: the relay holds
 * fewer / more bytes than the pointer says; transport errors retried until the deadline. */
KURER_MUST_CHECK int kurer__blob_download(kurer *k, const uint8_t id[KURER_BLOB_ID_LEN],
                                          uint64_t size, int fd, uint64_t deadline);

/* 1 for the errors that a new connection may cure. */
int kurer__blob_transport(int rc);

#endif
