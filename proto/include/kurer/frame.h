/* Client <-> relay frames, version 1, as validated plain structs.
 *
 * This is the decode layer for proto/wire.proto: the only code that touches its generated types.
 * Field-by-field rules: docs/protocol.md. Nothing above proto/ sees protobuf-c.
 *
 * Ownership. A decoded message owns one kurer_arena: a list of heap blocks that every pointer
 * inside the decoded struct points into (strings, byte fields, arrays). The struct's _release
 * function frees the arena (and any kurer_crl inside), zeroes the struct, and accepts a zeroed or
 * already released struct. Nothing in a decoded struct points into the input bytes: the input
 * may be freed as soon as decode returns. A decode function overwrites its out-param (it does not
 * release what was there); on failure the out-param is left zeroed and owns nothing.
 *
 * Encoding. Encoders take the same structs (pointers may point anywhere the caller likes; the
 * arena is not used), build the protobuf message, pack it, and decode the packed bytes again with
 * the decoder of this file: whatever an encoder emits, the decoder accepts, and a struct the
 * decoder would refuse is refused with the same error. Bytes are appended to a kurer_buf only on
 * success; on failure the buffer is unchanged.
 *
 * Errors. Missing or unknown oneof body, missing required sub-message, wrong fixed size, enum out
 * of range, bad address syntax: KURER_EMALFORMED. A count or length over a limit below, or input
 * longer than the frame limit: KURER_ELIMIT (checked before anything is unpacked or allocated).
 * Wrong protocol version in a handshake: KURER_EVERSION. Certificates and revocation lists inside
 * frames fail with the codes of certmsg.h.
 *
 * Thread safety: none needed; every function works only on its arguments. */
#ifndef KURER_FRAME_H
#define KURER_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/certmsg.h"
#include "kurer/error.h"

/* ---- Limits ------------------------------------------------------------------------------- */

/* A Noise transport message is at most 65535 bytes, 16 of which are the AEAD tag. */
#define KURER_NOISE_MSG_MAX 65535
#define KURER_FRAME_MAX     (KURER_NOISE_MSG_MAX - 16) /* a serialized frame or handshake payload */
/* Room for everything in a Deliver frame except the envelope content (addresses of maximal
 * length, 10-byte varints everywhere, tags and length prefixes): 341 bytes, rounded up. */
#define KURER_ENVELOPE_OVERHEAD_MAX 512
#define KURER_ENVELOPE_CONTENT_MAX  (KURER_FRAME_MAX - KURER_ENVELOPE_OVERHEAD_MAX) /* 65007 */
#define KURER_ENVELOPE_ID_LEN       16
#define KURER_SEND_ENVELOPES_MAX    1024 /* envelopes per SendRequest */
#define KURER_ACK_SEQS_MAX          1024 /* seqs per Ack */
#define KURER_LOOKUP_USERS_MAX      64   /* users per DirectoryLookup and per DirectoryResult */
#define KURER_ONE_TIME_PREKEYS_MAX  200  /* one-time prekeys per PrekeyUpload */
#define KURER_USER_DEVICES_MAX      32 /* devices of one user: UserDevices, PrekeyFetch, bundles */
#define KURER_SEND_RESULT_USERS_MAX 1024  /* users per SendResult (at most one per envelope) */
#define KURER_REVOCATION_INDEX_MAX  512   /* lists per RevocationIndex page */
#define KURER_REVOCATION_CHUNK_MAX  60000 /* bytes of list per RevocationChunk / upload chunk */
/* What uploaders send per RevocationUploadChunk: small enough for a relay's pre-authentication
 * record bound (max_preauth_record, at least 4608), since NK sessions never authenticate. */
#define KURER_REVOCATION_UPLOAD_CHUNK 4096
#define KURER_ERROR_MESSAGE_MAX       256 /* bytes of Error.message */
/* Fan-out sends (docs/protocol.md 3.7): recipient devices of one send, all parts together (and
 * so users too: each has one device at least), and the parts one send may take. */
#define KURER_FANOUT_DEVICES_MAX 4000
#define KURER_FANOUT_PARTS_MAX   64
#define KURER_PREKEY_PUBLIC_LEN  33 /* 0x05 || X25519 */
#define KURER_PREKEY_SIG_LEN     64 /* XEdDSA */
/* Blobs (docs/protocol.md 3.8): a blob's id, the largest chunk one frame carries (with room for
 * the rest of a BlobData frame in KURER_FRAME_MAX), and the largest blob the protocol can name
 * (a relay's blob_max_size is lower). */
#define KURER_BLOB_ID_LEN    16
#define KURER_BLOB_CHUNK_MAX 65280
#define KURER_BLOB_SIZE_MAX  ((uint64_t)1 << 32)
/* Everything one decoded message may allocate (a guard: valid input stays far below it). */
#define KURER_ARENA_MAX ((size_t)16 * 1024 * 1024)

#define KURER_PROTOCOL_VERSION 1

/* ---- Arena -------------------------------------------------------------------------------- */

/* The memory a decoded message points into. Zero-initialise; never touch the fields. */
typedef struct kurer_arena {
    void *head;   /* private: a list of blocks */
    size_t total; /* private: bytes held */
} kurer_arena;

/* Frees every block and zeroes the arena. NULL-safe; a zeroed arena is empty. */
KURER_EXPORT void kurer_arena_release(kurer_arena *a);

/* ---- Addresses and envelopes -------------------------------------------------------------- */

/* user@authority (kurer_user_check syntax) and a device id in 1..KURER_DEVICE_ID_MAX. */
typedef struct kurer_device_address {
    char user[KURER_SUBJECT_MAX + 1];
    uint32_t device_id;
} kurer_device_address;

typedef enum kurer_envelope_type {
    KURER_ENVELOPE_PREKEY = 1,     /* libsignal pre-key message */
    KURER_ENVELOPE_MESSAGE = 2,    /* libsignal whisper message */
    KURER_ENVELOPE_SENDER_KEY = 3, /* libsignal sender-key message (groups) */
} kurer_envelope_type;

typedef struct kurer_envelope {
    uint8_t id[KURER_ENVELOPE_ID_LEN]; /* random, set by the sender: the dedup key */
    kurer_device_address to;
    int has_from;              /* required in Deliver; optional in SendRequest (relay sets it) */
    kurer_device_address from; /* valid only if has_from */
    kurer_envelope_type type;
    const uint8_t *content; /* 1..KURER_ENVELOPE_CONTENT_MAX bytes of ciphertext */
    size_t content_len;
    int64_t server_ts;  /* set by the relay, Unix milliseconds */
    uint64_t to_serial; /* SendRequest: the recipient certificate's serial encrypted for (0: not
                         * said); not stored or delivered by the relay */
} kurer_envelope;

/* Envelope bytes (as a relay stores them) -> *out. out->content points into *mem, which the
 * caller owns and frees with kurer_arena_release (zero-initialise it; several decodes may
 * share one arena). has_from follows the bytes. Input over KURER_FRAME_MAX: KURER_ELIMIT. */
KURER_EXPORT KURER_MUST_CHECK int kurer_envelope_decode(const uint8_t *data, size_t len,
                                                        kurer_envelope *out, kurer_arena *mem);
KURER_EXPORT KURER_MUST_CHECK int kurer_envelope_encode(const kurer_envelope *env, kurer_buf *out);

/* A fan-out's envelope as a relay stores it once for all its recipients: env's encoding
 * (kurer_envelope_encode, so env->to must be valid) without its `to` field, appended to out.
 * kurer_fanout_envelope gives one recipient's envelope back: shared with `to` put in its place,
 * the bytes kurer_envelope_encode gives for the envelope with that `to` (appended to out).
 * KURER_EMALFORMED for shared bytes not made by kurer_fanout_shared_encode; KURER_ELIMIT when
 * the result would pass KURER_FRAME_MAX. Not exported (the relay's). */
KURER_MUST_CHECK int kurer_fanout_shared_encode(const kurer_envelope *env, kurer_buf *out);
KURER_MUST_CHECK int kurer_fanout_envelope(const uint8_t *shared, size_t len,
                                           const kurer_device_address *to, kurer_buf *out);

/* ---- Handshake payloads ------------------------------------------------------------------- */

/* First Noise IK payload, initiator -> relay. protocol_version must be KURER_PROTOCOL_VERSION
 * (else KURER_EVERSION); the chain holds 1..KURER_CHAIN_MAX certificates, leaf first, each
 * decoded with kurer_cert_from_parts (no signature checked here). No heap: nothing to release. */
typedef struct kurer_handshake_init {
    uint32_t protocol_version;
    kurer_chain chain;
    uint64_t instance_id;    /* this copy of the home (0: not sent; docs/protocol.md 1.1) */
    uint64_t instance_count; /* connections this copy has begun, this one included */
} kurer_handshake_init;

KURER_EXPORT KURER_MUST_CHECK int kurer_handshake_init_decode(const uint8_t *data, size_t len,
                                                              kurer_handshake_init *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_handshake_init_encode(const kurer_handshake_init *hs,
                                                              kurer_buf *out);

/* Second Noise IK payload, relay -> initiator. With has_error the relay refuses the device and
 * closes; error_code is negative (possibly a code newer than this build: see kurer_err_known) and
 * the other fields carry nothing. No heap. */
typedef struct kurer_handshake_accept {
    uint32_t protocol_version;
    int64_t server_time;      /* Unix milliseconds */
    uint32_t queued;          /* envelopes waiting */
    uint32_t idle_timeout_ms; /* the relay's idle timeout (0: none, or not said) */
    int has_error;
    int error_code;
    char error_message[KURER_ERROR_MESSAGE_MAX + 1];
} kurer_handshake_accept;

KURER_EXPORT KURER_MUST_CHECK int kurer_handshake_accept_decode(const uint8_t *data, size_t len,
                                                                kurer_handshake_accept *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_handshake_accept_encode(const kurer_handshake_accept *hs,
                                                                kurer_buf *out);

/* ---- Client frames ------------------------------------------------------------------------ */

/* The values are the protobuf field numbers of the oneof. */
typedef enum kurer_client_body {
    KURER_CLIENT_NONE = 0, /* never in a valid frame */
    KURER_CLIENT_SEND = 10,
    KURER_CLIENT_ACK = 11,
    KURER_CLIENT_LOOKUP = 12,
    KURER_CLIENT_PREKEYS = 13,
    KURER_CLIENT_FETCH_PREKEYS = 14,
    KURER_CLIENT_PING = 15,
    KURER_CLIENT_REVOCATION = 16,             /* upload one whole signed list */
    KURER_CLIENT_REVOCATIONS = 17,            /* a page of the index of lists held */
    KURER_CLIENT_REVOCATION_CHUNK = 18,       /* upload a chunk of a large list */
    KURER_CLIENT_REVOCATION_CHUNK_FETCH = 19, /* ask for a chunk of one held list */
    KURER_CLIENT_MEDIA_ALLOCATE = 20,         /* a call on the relay's media relay (no fields) */
    KURER_CLIENT_FANOUT = 21,                 /* one part of a fan-out send */
    KURER_CLIENT_BLOB_START = 22,             /* start (or resume) a blob upload */
    KURER_CLIENT_BLOB_CHUNK = 23,             /* a chunk of an upload at its offset */
    KURER_CLIENT_BLOB_FINISH = 24,            /* the upload is complete */
    KURER_CLIENT_BLOB_DOWNLOAD = 25,          /* a range of a finished blob */
} kurer_client_body;

/* A recipient device of a fan-out: its id, and the serial of its certificate the content was
 * encrypted for (0: not said; as kurer_envelope.to_serial). */
typedef struct kurer_fanout_device {
    uint32_t device_id; /* 1..KURER_DEVICE_ID_MAX */
    uint64_t serial;
} kurer_fanout_device;

typedef struct kurer_fanout_user {
    const char *user;                   /* user@authority */
    const kurer_fanout_device *devices; /* 1..KURER_USER_DEVICES_MAX, no device id twice */
    size_t n_devices;
} kurer_fanout_user;

/* One part of a fan-out send. Part 0 carries type (KURER_ENVELOPE_SENDER_KEY only) and content
 * (1..KURER_ENVELOPE_CONTENT_MAX bytes); later parts carry neither (type 0, no content). Every
 * part but a non-final part 0 names 1 or more users; a part names at most
 * KURER_FANOUT_DEVICES_MAX devices, no user twice; part < KURER_FANOUT_PARTS_MAX. Decoding
 * refuses a user or a device of a user named twice with KURER_EDUPLICATE (other rules: as for
 * every frame, KURER_EMALFORMED or KURER_ELIMIT). What spans parts (a user in two parts, the
 * total of devices, the order of parts) is the relay's to check. */
typedef struct kurer_fanout_send {
    uint8_t id[KURER_ENVELOPE_ID_LEN];
    uint32_t part;
    kurer_envelope_type type; /* part 0 only (0 in later parts) */
    const uint8_t *content;   /* part 0 only */
    size_t content_len;
    const kurer_fanout_user *users;
    size_t n_users;
    int final;
} kurer_fanout_send;

/* BlobUploadStart: size 1..KURER_BLOB_SIZE_MAX (0: KURER_EMALFORMED, above: KURER_ELIMIT);
 * has_id: resume that upload (the id is 16 bytes or absent, else KURER_EMALFORMED). */
typedef struct kurer_blob_start {
    uint64_t size;
    int has_id;
    uint8_t blob_id[KURER_BLOB_ID_LEN];
} kurer_blob_start;

/* A chunk of a blob: BlobUploadChunk (size unused) and BlobData (size: the whole blob's).
 * Decoders check 1 <= len <= KURER_BLOB_CHUNK_MAX (0: KURER_EMALFORMED, over: KURER_ELIMIT),
 * offset + len <= KURER_BLOB_SIZE_MAX (KURER_ELIMIT) and, for BlobData, 1 <= size and
 * offset + len <= size (KURER_EMALFORMED). */
typedef struct kurer_blob_chunk {
    uint8_t blob_id[KURER_BLOB_ID_LEN];
    uint64_t size;
    uint64_t offset;
    const uint8_t *data;
    size_t len;
} kurer_blob_chunk;

/* BlobDownload: length 1..KURER_BLOB_CHUNK_MAX (0: KURER_EMALFORMED, over: KURER_ELIMIT). */
typedef struct kurer_blob_download {
    uint8_t blob_id[KURER_BLOB_ID_LEN];
    uint64_t offset;
    uint32_t length;
} kurer_blob_download;

/* A chunk of a SignedRevocationList's bytes: data[0..len) sits at offset of total. Decoders
 * check 1 <= len <= KURER_REVOCATION_CHUNK_MAX, total <= KURER_CRL_BYTES_MAX and
 * offset + len <= total. */
typedef struct kurer_revocation_chunk {
    uint8_t issuer_key_id[KURER_KEY_ID_LEN]; /* server chunks only */
    uint64_t version;                        /* server chunks only */
    uint32_t offset, total;
    const uint8_t *data;
    size_t len;
} kurer_revocation_chunk;

typedef struct kurer_revocation_info {
    uint8_t issuer_key_id[KURER_KEY_ID_LEN];
    uint64_t version;
    uint32_t size; /* bytes of the SignedRevocationList, 1..KURER_CRL_BYTES_MAX */
} kurer_revocation_info;

typedef struct kurer_signed_prekey {
    uint32_t id;
    uint8_t public_key[KURER_PREKEY_PUBLIC_LEN]; /* first byte 0x05 */
    uint8_t signature[KURER_PREKEY_SIG_LEN];
    int64_t created_at;
} kurer_signed_prekey;

typedef struct kurer_one_time_prekey {
    uint32_t id;
    uint8_t public_key[KURER_PREKEY_PUBLIC_LEN]; /* first byte 0x05 */
} kurer_one_time_prekey;

typedef struct kurer_prekey_upload {
    uint32_t registration_id; /* libsignal registration id, != 0 */
    kurer_signed_prekey signed_prekey;
    const kurer_one_time_prekey *one_time; /* 0..KURER_ONE_TIME_PREKEYS_MAX */
    size_t n_one_time;
} kurer_prekey_upload;

typedef struct kurer_prekey_fetch {
    char user[KURER_SUBJECT_MAX + 1];
    const uint32_t *device_ids; /* 0..KURER_USER_DEVICES_MAX, each 1..KURER_DEVICE_ID_MAX;
                                   none: every current device */
    size_t n_device_ids;
} kurer_prekey_fetch;

typedef struct kurer_client_frame {
    uint64_t request_id; /* != 0 */
    kurer_client_body body;
    union {
        struct {
            const kurer_envelope *envelopes; /* 1..KURER_SEND_ENVELOPES_MAX */
            size_t n;
        } send;
        struct {
            const uint64_t *seqs; /* 1..KURER_ACK_SEQS_MAX */
            size_t n;
        } ack;
        struct {
            const char *const *users; /* 1..KURER_LOOKUP_USERS_MAX, each user@authority */
            size_t n;
        } lookup;
        kurer_prekey_upload prekeys;
        kurer_prekey_fetch fetch_prekeys;
        struct {
            int64_t client_time;
        } ping;
        kurer_crl revocation; /* owns heap (kurer_crl_release via the frame's release) */
        kurer_revocation_chunk revocation_chunk; /* offset, total, data, len */
        struct {
            int has_after;
            uint8_t after[KURER_KEY_ID_LEN];
        } revocations;
        struct {
            uint8_t issuer_key_id[KURER_KEY_ID_LEN];
            uint64_t version; /* 0: whatever is held */
            uint32_t offset;
        } revocation_chunk_fetch;
        kurer_fanout_send fanout;
        kurer_blob_start blob_start;
        kurer_blob_chunk blob_chunk; /* blob_id, offset, data, len */
        struct {
            uint8_t blob_id[KURER_BLOB_ID_LEN];
        } blob_finish;
        kurer_blob_download blob_download;
    } u;
    kurer_arena mem; /* set by decode; encoders ignore it */
} kurer_client_frame;

KURER_EXPORT KURER_MUST_CHECK int kurer_client_frame_decode(const uint8_t *data, size_t len,
                                                            kurer_client_frame *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_client_frame_encode(const kurer_client_frame *f,
                                                            kurer_buf *out);
/* Frees what decode allocated and zeroes *f. NULL-safe. Never call it on a struct the caller
 * built for encoding with its own pointers. */
KURER_EXPORT void kurer_client_frame_release(kurer_client_frame *f);

/* ---- Server frames ------------------------------------------------------------------------ */

typedef enum kurer_server_body {
    KURER_SERVER_NONE = 0, /* never in a valid frame */
    KURER_SERVER_ERROR = 9,
    KURER_SERVER_OK = 10,
    KURER_SERVER_SEND_RESULT = 11,
    KURER_SERVER_DELIVER = 12, /* push: request_id 0 */
    KURER_SERVER_DIRECTORY = 13,
    KURER_SERVER_BUNDLES = 14,
    KURER_SERVER_PONG = 15,
    KURER_SERVER_PREKEYS_LOW = 16,      /* push: request_id 0 */
    KURER_SERVER_QUEUE_EMPTY = 17,      /* push: request_id 0 */
    KURER_SERVER_REVOCATION_INDEX = 19, /* answer, or push naming one new list */
    KURER_SERVER_REVOCATION_CHUNK = 20,
    KURER_SERVER_MEDIA_ALLOCATION = 21, /* the answer to MediaAllocate */
    KURER_SERVER_FANOUT_RESULT = 22,    /* the answer to a fan-out send's final part */
    KURER_SERVER_BLOB_STATE = 23,       /* BlobUploadStart and BlobUploadChunk answered */
    KURER_SERVER_BLOB_STORED = 24,      /* BlobUploadFinish answered */
    KURER_SERVER_BLOB_DATA = 25,        /* BlobDownload answered */
} kurer_server_body;

/* Where an upload stands: offset (<= size, else KURER_EMALFORMED) bytes are held durably;
 * chunk_max 1..KURER_BLOB_CHUNK_MAX is the largest chunk the relay takes. */
typedef struct kurer_blob_state {
    uint8_t blob_id[KURER_BLOB_ID_LEN];
    uint64_t size;
    uint64_t offset;
    uint32_t chunk_max;
} kurer_blob_state;

typedef struct kurer_blob_stored {
    uint8_t blob_id[KURER_BLOB_ID_LEN];
    uint64_t size;
    int64_t expires_at; /* Unix seconds */
} kurer_blob_stored;

/* A media relay call (docs/calls.md): its id, one ticket per leg (opaque to clients), the UDP
 * port, how long the tickets bind a leg and how often a leg sends KEEPALIVE. */
#define KURER_MEDIA_RELAY_TICKET_MAX                                                               \
    64 /* (CallMessage.media_ticket may carry up to KURER_MEDIA_TICKET_MAX) */
typedef struct kurer_media_allocation {
    uint64_t call_id;
    uint8_t ticket_a[KURER_MEDIA_RELAY_TICKET_MAX], ticket_b[KURER_MEDIA_RELAY_TICKET_MAX];
    size_t ticket_a_len, ticket_b_len; /* 1..KURER_MEDIA_RELAY_TICKET_MAX each */
    uint32_t udp_port;                 /* 1..65535 */
    uint32_t ticket_ttl_ms;
    uint32_t keepalive_ms;
} kurer_media_allocation;

typedef enum kurer_send_status {
    KURER_SEND_ACCEPTED = 1,
    KURER_SEND_UNKNOWN_USER = 2,
    KURER_SEND_STALE_DEVICES = 3,
} kurer_send_status;

typedef struct kurer_user_devices {
    const char *user;
    const kurer_chain *devices; /* 0..KURER_USER_DEVICES_MAX chains */
    size_t n_devices;
} kurer_user_devices;

typedef struct kurer_user_result {
    const char *user;
    kurer_send_status status;
    /* With KURER_SEND_STALE_DEVICES (and only then): the current devices; current.user equals
     * user. Otherwise zeroed. */
    kurer_user_devices current;
} kurer_user_result;

typedef struct kurer_prekey_bundle {
    kurer_device_address address;
    uint32_t registration_id;
    kurer_signed_prekey signed_prekey;
    int has_one_time;
    kurer_one_time_prekey one_time;
    kurer_chain chain;
} kurer_prekey_bundle;

typedef struct kurer_server_frame {
    uint64_t request_id; /* 0 for pushes (deliver, prekeys_low, queue_empty), else != 0 */
    kurer_server_body body;
    union {
        struct {
            int code;            /* < 0; perhaps newer than this build (kurer_err_known) */
            const char *message; /* 0..KURER_ERROR_MESSAGE_MAX bytes; never NULL */
        } error;
        struct {
            const kurer_user_result *users; /* 0..KURER_SEND_RESULT_USERS_MAX */
            size_t n;
        } send_result;
        struct {
            uint64_t seq;
            kurer_envelope envelope; /* has_from is always set */
        } deliver;
        struct {
            const kurer_user_devices *users; /* 0..KURER_LOOKUP_USERS_MAX */
            size_t n;
        } directory;
        struct {
            const kurer_prekey_bundle *bundles; /* 0..KURER_USER_DEVICES_MAX */
            size_t n;
        } bundles;
        struct {
            int64_t client_time;
            int64_t server_time;
        } pong;
        struct {
            uint32_t remaining;
        } prekeys_low;
        struct {
            const kurer_revocation_info *lists; /* 0..KURER_REVOCATION_INDEX_MAX, key id order */
            size_t n;
            int more; /* more pages after the last key id */
        } revocation_index;
        kurer_revocation_chunk revocation_chunk;
        kurer_media_allocation media_allocation; /* no heap */
        /* The users of a fan-out whose status is not ACCEPTED (each as in send_result, at most
         * KURER_FANOUT_DEVICES_MAX, no user twice); every other user of the send is accepted
         * (accepted says how many). lists_omitted: some STALE_DEVICES results come with an
         * empty current list (they did not fit the record): look those users up. */
        struct {
            const kurer_user_result *refused;
            size_t n_refused;
            uint8_t id[KURER_ENVELOPE_ID_LEN];
            uint32_t accepted;
            int lists_omitted;
        } fanout_result;
        kurer_blob_state blob_state;   /* no heap */
        kurer_blob_stored blob_stored; /* no heap */
        kurer_blob_chunk blob_data;    /* data in the arena */
    } u;
    kurer_arena mem; /* set by decode; encoders ignore it */
} kurer_server_frame;

KURER_EXPORT KURER_MUST_CHECK int kurer_server_frame_decode(const uint8_t *data, size_t len,
                                                            kurer_server_frame *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_server_frame_encode(const kurer_server_frame *f,
                                                            kurer_buf *out);
/* Frees what decode allocated and zeroes *f. NULL-safe. Same caveat as the client's. */
KURER_EXPORT void kurer_server_frame_release(kurer_server_frame *f);

#endif
