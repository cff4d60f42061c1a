/* What travels inside an envelope's ciphertext (proto/content.proto), as validated plain structs.
 *
 * Same ownership and encoding model as kurer/frame.h: a decoded kurer_content owns one arena that
 * all its pointers point into, freed by kurer_content_release; encoders re-decode what they pack,
 * so they refuse exactly what the decoder refuses.
 *
 * Classification: every DataMessage (also the one inside a SyncMessage) must carry a level.
 * SECRET (4) and TOP_SECRET (5): KURER_ECLEARANCE, because the system is not accredited for them.
 * Missing (0) or any other value outside 1..5: KURER_EMALFORMED (the rule of certmsg.h). This
 * checks the level only; whether sender and recipient may use it is policy, above this layer. */
#ifndef KURER_CONTENT_H
#define KURER_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/buf.h"
#include "kurer/certmsg.h"
#include "kurer/error.h"
#include "kurer/frame.h"
#include "kurer/padding.h"

/* Padded Content must fit an envelope with room for the Signal message around it (version,
 * ratchet key, counters, MAC, the pre-key header, and up to 16 bytes of CBC padding). */
#define KURER_SIGNAL_OVERHEAD_MAX 1024
#define KURER_CONTENT_PADDED_MAX                                                                   \
    (((KURER_ENVELOPE_CONTENT_MAX - KURER_SIGNAL_OVERHEAD_MAX) / KURER_PAD_BLOCK) *                \
     KURER_PAD_BLOCK)                                               /* 63840 */
#define KURER_CONTENT_MAX            (KURER_CONTENT_PADDED_MAX - 1) /* serialized Content */
#define KURER_ATTACHMENTS_MAX        32
#define KURER_ATTACHMENT_KEY_LEN     32
#define KURER_ATTACHMENT_DIGEST_LEN  32
#define KURER_CONTENT_TYPE_MAX       128
#define KURER_FILE_NAME_MAX          255
#define KURER_GROUP_ID_LEN           32
#define KURER_QUOTE_TEXT_MAX         2048
#define KURER_RECEIPT_TIMESTAMPS_MAX 256
#define KURER_SFRAME_KEY_LEN         32
#define KURER_MEDIA_TICKET_MAX       64
#define KURER_SENDER_KEY_DIST_MAX    1024
#define KURER_GROUP_NAME_MAX         128
#define KURER_GROUP_CHANGE_USERS_MAX 256   /* users named by one change */
#define KURER_GROUP_CHANGE_MAX       24576 /* a serialized GroupChange */
#define KURER_GROUP_CHAIN_MAX        8192  /* the signer's CertificateChain */
#define KURER_GROUP_SIG_LEN          64
/* What a group change's signature covers: this context (with its NUL), then the change bytes. */
#define KURER_GROUP_SIG_CONTEXT     "kurer group change v1"
#define KURER_GROUP_SIG_CONTEXT_LEN 22

typedef struct kurer_attachment {
    uint8_t blob_id[KURER_BLOB_ID_LEN];
    uint8_t key[KURER_ATTACHMENT_KEY_LEN]; /* secretstream key: wipe when done */
    uint64_t size;                         /* plaintext bytes */
    uint8_t digest[KURER_ATTACHMENT_DIGEST_LEN];
    const char *content_type; /* 0..KURER_CONTENT_TYPE_MAX bytes, never NULL */
    const char *file_name;    /* 0..KURER_FILE_NAME_MAX bytes, never NULL */
} kurer_attachment;

typedef struct kurer_group_context {
    uint8_t group_id[KURER_GROUP_ID_LEN];
    uint32_t revision;
} kurer_group_context;

typedef struct kurer_quote {
    uint8_t envelope_id[KURER_ENVELOPE_ID_LEN];
    kurer_device_address author;
    const char *text; /* 0..KURER_QUOTE_TEXT_MAX bytes, never NULL */
} kurer_quote;

typedef struct kurer_data_message {
    const char *body; /* may be empty (attachments only), never NULL */
    kurer_level classification;
    uint64_t timestamp;                  /* sender's clock, Unix milliseconds */
    const kurer_attachment *attachments; /* 0..KURER_ATTACHMENTS_MAX */
    size_t n_attachments;
    int has_group;
    kurer_group_context group;
    uint32_t expire_timer; /* seconds, 0: never */
    int timer_change;      /* a timer-change notice: expire_timer is the new timer (4.8) */
    int has_quote;
    kurer_quote quote;
} kurer_data_message;

typedef enum kurer_receipt_type {
    KURER_RECEIPT_DELIVERED = 1,
    KURER_RECEIPT_READ = 2,
} kurer_receipt_type;

typedef struct kurer_receipt {
    kurer_receipt_type type;
    const uint64_t *timestamps; /* 1..KURER_RECEIPT_TIMESTAMPS_MAX */
    size_t n_timestamps;
    int has_group; /* the timestamps name messages of this group (sent by the receipt's peer) */
    uint8_t group_id[KURER_GROUP_ID_LEN];
} kurer_receipt;

typedef enum kurer_call_kind {
    KURER_CALL_OFFER = 1,
    KURER_CALL_ANSWER = 2,
    KURER_CALL_HANGUP = 3,
    KURER_CALL_BUSY = 4,
} kurer_call_kind;

/* Why a call ended (HANGUP only); the values are the protobuf enum's. */
typedef enum kurer_call_reason {
    KURER_CALL_REASON_NONE = 0, /* never in a HANGUP */
    KURER_CALL_REASON_NORMAL = 1,
    KURER_CALL_REASON_DECLINED = 2,
    KURER_CALL_REASON_ANSWERED_ELSEWHERE = 3,
    KURER_CALL_REASON_DECLINED_ELSEWHERE = 4,
    KURER_CALL_REASON_TIMEOUT = 5,
    KURER_CALL_REASON_FAILED = 6,
    KURER_CALL_REASON_GLARE = 7,
    KURER_CALL_REASON_REFUSED = 8,
} kurer_call_reason;

#define KURER_CALL_VERSION 1 /* the call signalling version this code speaks */

typedef struct kurer_call_message {
    uint64_t call_id;
    kurer_call_kind kind;
    /* OFFER and ANSWER carry exactly KURER_SFRAME_KEY_LEN bytes; HANGUP and BUSY none. */
    int has_sframe_key;
    uint8_t sframe_key[KURER_SFRAME_KEY_LEN]; /* secret: wipe when done */
    const uint8_t *media_ticket;              /* 0..KURER_MEDIA_TICKET_MAX bytes */
    size_t media_ticket_len;
    /* OFFER and ANSWER: the level (required, 1..3; 4 and 5 ECLEARANCE) and the signalling
     * version (any value is carried; the receiver judges it). HANGUP and BUSY: level 0. */
    kurer_level level;
    uint32_t version;
    kurer_call_reason reason; /* HANGUP: required; others: NONE */
    uint32_t answered_device; /* HANGUP ANSWERED_ELSEWHERE / DECLINED_ELSEWHERE */
    uint64_t timestamp;       /* sender's clock, Unix ms */
    uint32_t media_port;      /* OFFER: 1..65535 (required there); others: 0 */
} kurer_call_message;

typedef struct kurer_sync_sent {
    char destination[KURER_SUBJECT_MAX + 1]; /* user@authority */
    uint64_t timestamp;
    kurer_data_message message;
} kurer_sync_sent;

/* A receipt one of our devices sent to destination, copied to our other devices. */
typedef struct kurer_sync_receipt {
    char destination[KURER_SUBJECT_MAX + 1]; /* user@authority */
    kurer_receipt receipt;
} kurer_sync_receipt;

typedef struct kurer_sender_key_distribution {
    uint8_t group_id[KURER_GROUP_ID_LEN];
    const uint8_t *distribution; /* 1..KURER_SENDER_KEY_DIST_MAX bytes */
    size_t distribution_len;
} kurer_sender_key_distribution;

/* Group changes (docs/protocol.md 4.7); the values are the protobuf enum's. */
typedef enum kurer_group_change_kind {
    KURER_GROUP_CREATE = 1,
    KURER_GROUP_ADD = 2,
    KURER_GROUP_REMOVE = 3,
    KURER_GROUP_LEAVE = 4,
    KURER_GROUP_PROMOTE = 5,
    KURER_GROUP_RENAME = 6,
    KURER_GROUP_SET_TIMER = 7,
} kurer_group_change_kind;

/* A decoded GroupChange. Decoding checks the form only: a 32-byte id, a known kind, a valid
 * signer address, users that are valid user names, each once, and the fields each kind needs
 * (CREATE: base 0 and a name; ADD, REMOVE, PROMOTE: at least one user; RENAME: a name; LEAVE:
 * no users). Whether the signer may make it is the group state machine's question. */
typedef struct kurer_group_change {
    uint8_t group_id[KURER_GROUP_ID_LEN];
    uint32_t base_revision;
    kurer_group_change_kind kind;
    kurer_device_address signer;
    const char *const *users; /* 0..KURER_GROUP_CHANGE_USERS_MAX */
    size_t n_users;
    const char *name; /* 0..KURER_GROUP_NAME_MAX bytes, never NULL */
    uint64_t timestamp;
    uint32_t expire_timer;
    kurer_arena mem; /* set by decode; the encoder ignores it */
} kurer_group_change;

/* The GroupControl content: the change's bytes as signed, the signature (absent: has_signature
 * 0, which the receiver counts as a forgery) and the signer's chain. */
typedef struct kurer_group_control {
    const uint8_t *change; /* 1..KURER_GROUP_CHANGE_MAX bytes */
    size_t change_len;
    int has_signature;
    uint8_t signature[KURER_GROUP_SIG_LEN];
    const uint8_t *signer_chain; /* 0..KURER_GROUP_CHAIN_MAX bytes */
    size_t signer_chain_len;
} kurer_group_control;

/* Serialized GroupChange <-> kurer_group_change (same model as kurer_content). */
KURER_EXPORT KURER_MUST_CHECK int kurer_group_change_decode(const uint8_t *data, size_t len,
                                                            kurer_group_change *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_group_change_encode(const kurer_group_change *c,
                                                            kurer_buf *out);
/* Frees the arena and zeroes *c. NULL-safe. */
KURER_EXPORT void kurer_group_change_release(kurer_group_change *c);

/* The values are the protobuf field numbers of the oneof. */
typedef enum kurer_content_body {
    KURER_CONTENT_NONE = 0, /* never in valid content */
    KURER_CONTENT_DATA = 1,
    KURER_CONTENT_RECEIPT = 2,
    KURER_CONTENT_CALL = 3,
    KURER_CONTENT_SYNC = 4, /* a SyncMessage with its Sent part (required) */
    KURER_CONTENT_SENDER_KEY = 5,
    KURER_CONTENT_GROUP_CONTROL = 6,
    /* Not a oneof number: a SyncMessage (4) with its ReceiptSent part (2). */
    KURER_CONTENT_SYNC_RECEIPT = 0x402,
} kurer_content_body;

typedef struct kurer_content {
    kurer_content_body body;
    union {
        kurer_data_message data;
        kurer_receipt receipt;
        kurer_call_message call;
        kurer_sync_sent sync;
        kurer_sync_receipt sync_receipt;
        kurer_sender_key_distribution sender_key;
        kurer_group_control group_control;
    } u;
    kurer_arena mem; /* set by decode; encoders ignore it */
} kurer_content;

/* Serialized Content (at most KURER_CONTENT_MAX bytes, else KURER_ELIMIT) <-> kurer_content. */
KURER_EXPORT KURER_MUST_CHECK int kurer_content_decode(const uint8_t *data, size_t len,
                                                       kurer_content *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_content_encode(const kurer_content *c, kurer_buf *out);

/* The same around padding: encode, then kurer_pad, appended to out (a multiple of
 * KURER_PAD_BLOCK, at most KURER_CONTENT_PADDED_MAX); and kurer_unpad, then decode. Bad padding
 * is KURER_EMALFORMED; padded input over KURER_CONTENT_PADDED_MAX is KURER_ELIMIT. */
KURER_EXPORT KURER_MUST_CHECK int kurer_content_encode_padded(const kurer_content *c,
                                                              kurer_buf *out);
KURER_EXPORT KURER_MUST_CHECK int kurer_content_decode_padded(const uint8_t *data, size_t len,
                                                              kurer_content *out);

/* Wipes the attachment keys and SFrame key, frees the arena, zeroes *c. NULL-safe. */
KURER_EXPORT void kurer_content_release(kurer_content *c);

#endif
