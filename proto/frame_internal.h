/* Private to proto/: helpers shared by frame.c, envelope.c and content.c. */
#ifndef KURER_FRAME_INTERNAL_H
#define KURER_FRAME_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/frame.h"

#include "cert.pb-c.h"
#include "wire.pb-c.h"

/* Zeroed memory for count elements of size bytes from the arena. count == 0 gives *out = NULL and
 * 0. KURER_ELIMIT if the product overflows or the arena would pass KURER_ARENA_MAX;
 * KURER_ENOMEM if malloc fails. */
int kurer__arena_calloc(kurer_arena *a, size_t count, size_t size, void **out);
/* A NUL-terminated copy of s (at most max bytes, else KURER_ELIMIT). NULL s gives "". */
int kurer__arena_strdup(kurer_arena *a, const char *s, size_t max, const char **out);
/* A copy of n bytes (n may be 0: *out = NULL). */
int kurer__arena_memdup(kurer_arena *a, const void *p, size_t n, const uint8_t **out);

/* protobuf-c's allocator for messages that carry plaintext (Content): every block is wiped
 * before it is freed, so message text does not linger in freed heap after a decode. */
extern ProtobufCAllocator kurer__wiping_allocator;

/* 0 if m, as unpacked from len bytes, packs back to exactly len bytes; KURER_EMALFORMED if not.
 * protobuf-c cuts a string at an embedded NUL and keeps the last of repeated fields: either
 * changes the size, so such input is refused instead of being read differently than sent. */
int kurer__exact_size(const ProtobufCMessage *m, size_t len);

/* Packs m into a malloc'ed buffer of at most max bytes (else KURER_ELIMIT). */
int kurer__pack(const ProtobufCMessage *m, size_t max, uint8_t **out, size_t *len);

/* Packs m (at most KURER_FRAME_MAX bytes), runs verify over the packed bytes (a decoder of this
 * module that then releases what it decoded), and appends them to out only if verify accepts. */
int kurer__encode_verified(const ProtobufCMessage *m, size_t max,
                           int (*verify)(const uint8_t *, size_t), kurer_buf *out);

/* A fixed-size bytes field: exactly n bytes, else KURER_EMALFORMED. */
int kurer__bytes_fixed(const ProtobufCBinaryData *b, uint8_t *dst, size_t n);
/* A bounded string into a fixed array of cap bytes (content at most cap-1): a syntax checker
 * for our own fixed arrays given to encoders; KURER_EMALFORMED if there is no NUL in cap. */
int kurer__fixed_str_ok(const char *s, size_t cap);

/* DeviceAddress <-> kurer_device_address. A missing address, bad user or device id:
 * KURER_EMALFORMED. to_pb points pb->user into a (the caller keeps a alive while packing). */
int kurer__address_from_pb(const Kurer__V1__DeviceAddress *pb, kurer_device_address *out);
int kurer__address_to_pb(const kurer_device_address *a, Kurer__V1__DeviceAddress *pb);

/* Envelope <-> kurer_envelope. from_required: Deliver; content is copied into mem.
 * to_pb allocates the address messages in tmp. */
int kurer__envelope_from_pb(const Kurer__V1__Envelope *pb, int from_required, kurer_envelope *out,
                            kurer_arena *mem);
int kurer__envelope_to_pb(const kurer_envelope *e, Kurer__V1__Envelope *pb, kurer_arena *tmp);

/* CertificateChain <-> kurer_chain (1..KURER_CHAIN_MAX certificates, via kurer_cert_from_parts).
 * to_pb allocates in tmp and points into c. */
int kurer__chain_from_pb(const Kurer__V1__CertificateChain *pb, kurer_chain *out);
int kurer__chain_to_pb(const kurer_chain *c, Kurer__V1__CertificateChain **pb, kurer_arena *tmp);

/* frame_media.c: the media relay's bodies, for every body frame.c does not know itself (an
 * unknown or missing body: KURER_EMALFORMED). */
int kurer__media_client_from_pb(const Kurer__V1__ClientFrame *pb, kurer_client_frame *out);
int kurer__media_client_to_pb(const kurer_client_frame *f, Kurer__V1__ClientFrame *pb,
                              kurer_arena *tmp);
int kurer__media_server_from_pb(const Kurer__V1__ServerFrame *pb, kurer_server_frame *out);
int kurer__media_server_to_pb(const kurer_server_frame *f, Kurer__V1__ServerFrame *pb,
                              kurer_arena *tmp);

/* frame.c's SendResult conversion, for the fan-out result's per-user results (frame_fanout.c):
 * from_pb fills out->u.send_result (arena out->mem); to_pb sets pb->send_result from
 * f->u.send_result. */
int kurer__send_result_from_pb(const Kurer__V1__SendResult *pb, kurer_server_frame *out);
int kurer__send_result_to_pb(const kurer_server_frame *f, Kurer__V1__ServerFrame *pb,
                             kurer_arena *tmp);

/* frame_fanout.c: FanoutSend and FanoutResult, reached from frame_media.c for every body that
 * is not the media relay's (anything else: KURER_EMALFORMED). */
int kurer__fanout_client_from_pb(const Kurer__V1__ClientFrame *pb, kurer_client_frame *out);
int kurer__fanout_client_to_pb(const kurer_client_frame *f, Kurer__V1__ClientFrame *pb,
                               kurer_arena *tmp);
int kurer__fanout_server_from_pb(const Kurer__V1__ServerFrame *pb, kurer_server_frame *out);
int kurer__fanout_server_to_pb(const kurer_server_frame *f, Kurer__V1__ServerFrame *pb,
                               kurer_arena *tmp);

/* frame_blob.c: the blob bodies (docs/protocol.md 3.8), for every body frame_media.c does not
 * know (an unknown or missing body: KURER_EMALFORMED). */
int kurer__blob_client_from_pb(const Kurer__V1__ClientFrame *pb, kurer_client_frame *out);
int kurer__blob_client_to_pb(const kurer_client_frame *f, Kurer__V1__ClientFrame *pb,
                             kurer_arena *tmp);
int kurer__blob_server_from_pb(const Kurer__V1__ServerFrame *pb, kurer_server_frame *out);
int kurer__blob_server_to_pb(const kurer_server_frame *f, Kurer__V1__ServerFrame *pb,
                             kurer_arena *tmp);

#endif
