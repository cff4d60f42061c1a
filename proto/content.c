/* Content (content.proto) <-> kurer_content, and the padding around it. Same model as frame.c:
 * checked lengths before unpack and allocation, copies into the arena, encoders that re-decode. */
#include <stdlib.h>
#include <string.h>

#include "content_internal.h"
#include "frame_internal.h"
#include "kurer/content.h"

#include "content.pb-c.h"

/* ---- Decoding ----------------------------------------------------------------------------- */

static int level_from_pb(int level)
{
    if (level >= KURER_LEVEL_UNCLASSIFIED && level <= KURER_LEVEL_CONFIDENTIAL)
        return 0;
    /* SECRET and TOP_SECRET are named on the wire only to be refused (as in certmsg). */
    if (level == 4 || level == 5)
        return KURER_ECLEARANCE;
    return KURER_EMALFORMED;
}

static int attachment_from_pb(const Kurer__V1__AttachmentPointer *pb, kurer_attachment *out,
                              kurer_arena *mem)
{
    int rc;
    if ((rc = kurer__bytes_fixed(&pb->blob_id, out->blob_id, KURER_BLOB_ID_LEN)) != 0 ||
        (rc = kurer__bytes_fixed(&pb->key, out->key, KURER_ATTACHMENT_KEY_LEN)) != 0 ||
        (rc = kurer__bytes_fixed(&pb->digest, out->digest, KURER_ATTACHMENT_DIGEST_LEN)) != 0 ||
        (rc = kurer__arena_strdup(mem, pb->content_type, KURER_CONTENT_TYPE_MAX,
                                  &out->content_type)) != 0 ||
        (rc = kurer__arena_strdup(mem, pb->file_name, KURER_FILE_NAME_MAX, &out->file_name)) != 0)
        return rc;
    out->size = pb->size;
    return 0;
}

static int data_from_pb(const Kurer__V1__DataMessage *pb, kurer_data_message *out, kurer_arena *mem)
{
    kurer_attachment *att;
    void *p;
    int rc;
    memset(out, 0, sizeof(*out));
    out->body = "";
    if (pb == NULL)
        return KURER_EMALFORMED;
    if ((rc = level_from_pb((int)pb->classification)) != 0)
        return rc;
    out->classification = (kurer_level)pb->classification;
    out->timestamp = pb->timestamp;
    out->expire_timer = pb->expire_timer;
    out->timer_change = pb->timer_change != 0;
    if (out->timer_change && (pb->body[0] != '\0' || pb->n_attachments > 0))
        return KURER_EMALFORMED; /* a notice carries nothing else */
    if ((rc = kurer__arena_strdup(mem, pb->body, KURER_CONTENT_MAX, &out->body)) != 0)
        return rc;
    if (pb->n_attachments > KURER_ATTACHMENTS_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(mem, pb->n_attachments, sizeof(*att), &p)) != 0)
        return rc;
    att = p;
    out->attachments = att;
    out->n_attachments = pb->n_attachments; /* zeroed entries are harmless to wipe */
    for (size_t i = 0; i < pb->n_attachments; i++)
        if ((rc = attachment_from_pb(pb->attachments[i], &att[i], mem)) != 0)
            return rc;
    if (pb->group != NULL) {
        if ((rc = kurer__bytes_fixed(&pb->group->group_id, out->group.group_id,
                                     KURER_GROUP_ID_LEN)) != 0)
            return rc;
        out->group.revision = pb->group->revision;
        out->has_group = 1;
    }
    if (pb->quote != NULL) {
        if ((rc = kurer__bytes_fixed(&pb->quote->envelope_id, out->quote.envelope_id,
                                     KURER_ENVELOPE_ID_LEN)) != 0 ||
            (rc = kurer__address_from_pb(pb->quote->author, &out->quote.author)) != 0 ||
            (rc = kurer__arena_strdup(mem, pb->quote->text, KURER_QUOTE_TEXT_MAX,
                                      &out->quote.text)) != 0)
            return rc;
        out->has_quote = 1;
    }
    return 0;
}

static int receipt_from_pb(const Kurer__V1__Receipt *pb, kurer_receipt *out, kurer_arena *mem)
{
    const uint8_t *ts;
    int rc;
    if (pb->type != KURER__V1__RECEIPT__TYPE__DELIVERED &&
        pb->type != KURER__V1__RECEIPT__TYPE__READ)
        return KURER_EMALFORMED;
    if (pb->n_timestamps == 0)
        return KURER_EMALFORMED;
    if (pb->n_timestamps > KURER_RECEIPT_TIMESTAMPS_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_memdup(mem, pb->timestamps, pb->n_timestamps * sizeof(uint64_t), &ts)) !=
        0)
        return rc;
    out->type = (kurer_receipt_type)pb->type;
    out->timestamps = (const uint64_t *)(const void *)ts;
    out->n_timestamps = pb->n_timestamps;
    if (pb->group_id.len > 0) {
        if ((rc = kurer__bytes_fixed(&pb->group_id, out->group_id, KURER_GROUP_ID_LEN)) != 0)
            return rc;
        out->has_group = 1;
    }
    return 0;
}

static int call_from_pb(const Kurer__V1__CallMessage *pb, kurer_call_message *out, kurer_arena *mem)
{
    int rc;
    switch (pb->kind) {
    case KURER__V1__CALL_MESSAGE__KIND__OFFER:
    case KURER__V1__CALL_MESSAGE__KIND__ANSWER:
        if ((rc = kurer__bytes_fixed(&pb->sframe_key, out->sframe_key, KURER_SFRAME_KEY_LEN)) != 0)
            return rc;
        if ((rc = level_from_pb((int)pb->level)) != 0)
            return rc;
        if (pb->reason != KURER__V1__CALL_MESSAGE__REASON__REASON_UNSPECIFIED)
            return KURER_EMALFORMED;
        /* An offer names the relay's media port and carries the callee leg's ticket. */
        if ((pb->kind == KURER__V1__CALL_MESSAGE__KIND__OFFER) !=
                (pb->media_port >= 1 && pb->media_port <= 65535) ||
            (pb->kind == KURER__V1__CALL_MESSAGE__KIND__OFFER) != (pb->media_ticket.len > 0))
            return KURER_EMALFORMED;
        out->has_sframe_key = 1;
        break;
    case KURER__V1__CALL_MESSAGE__KIND__HANGUP:
    case KURER__V1__CALL_MESSAGE__KIND__BUSY:
        if (pb->sframe_key.len != 0 || pb->level != 0 || pb->media_port != 0 ||
            pb->media_ticket.len != 0)
            return KURER_EMALFORMED;
        if ((pb->kind == KURER__V1__CALL_MESSAGE__KIND__HANGUP) !=
            (pb->reason != KURER__V1__CALL_MESSAGE__REASON__REASON_UNSPECIFIED))
            return KURER_EMALFORMED; /* a hangup says why; a busy has no reason */
        if ((int)pb->reason < 0 || (int)pb->reason > KURER_CALL_REASON_REFUSED)
            return KURER_EMALFORMED;
        break;
    default:
        return KURER_EMALFORMED;
    }
    if (pb->media_ticket.len > KURER_MEDIA_TICKET_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_memdup(mem, pb->media_ticket.data, pb->media_ticket.len,
                                  &out->media_ticket)) != 0)
        return rc;
    out->media_ticket_len = pb->media_ticket.len;
    out->call_id = pb->call_id;
    out->kind = (kurer_call_kind)pb->kind;
    out->level = (kurer_level)pb->level;
    out->version = pb->version;
    out->reason = (kurer_call_reason)pb->reason;
    out->answered_device = pb->answered_device;
    out->timestamp = pb->timestamp;
    out->media_port = pb->media_port;
    return 0;
}

static int destination_from_pb(const char *d, char out[KURER_SUBJECT_MAX + 1])
{
    if (d == NULL)
        return KURER_EMALFORMED;
    size_t n = strnlen(d, KURER_SUBJECT_MAX + 1);
    if (n > KURER_SUBJECT_MAX || kurer_user_check(d) != 0)
        return KURER_EMALFORMED;
    memcpy(out, d, n);
    return 0;
}

/* A SyncMessage carries exactly one of its parts. */
static int sync_from_pb(const Kurer__V1__SyncMessage *pb, kurer_content *out)
{
    int rc;
    if ((pb->sent == NULL) == (pb->receipt == NULL))
        return KURER_EMALFORMED;
    if (pb->receipt != NULL) {
        const Kurer__V1__SyncMessage__ReceiptSent *r = pb->receipt;
        out->body = KURER_CONTENT_SYNC_RECEIPT;
        if (r->receipt == NULL ||
            (rc = destination_from_pb(r->destination, out->u.sync_receipt.destination)) != 0)
            return KURER_EMALFORMED;
        return receipt_from_pb(r->receipt, &out->u.sync_receipt.receipt, &out->mem);
    }
    const Kurer__V1__SyncMessage__Sent *s = pb->sent;
    out->body = KURER_CONTENT_SYNC;
    if ((rc = destination_from_pb(s->destination, out->u.sync.destination)) != 0)
        return rc;
    out->u.sync.timestamp = s->timestamp;
    return data_from_pb(s->message, &out->u.sync.message, &out->mem);
}

static int sender_key_from_pb(const Kurer__V1__SenderKeyDistribution *pb,
                              kurer_sender_key_distribution *out, kurer_arena *mem)
{
    int rc;
    if ((rc = kurer__bytes_fixed(&pb->group_id, out->group_id, KURER_GROUP_ID_LEN)) != 0)
        return rc;
    if (pb->distribution.len == 0)
        return KURER_EMALFORMED;
    if (pb->distribution.len > KURER_SENDER_KEY_DIST_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_memdup(mem, pb->distribution.data, pb->distribution.len,
                                  &out->distribution)) != 0)
        return rc;
    out->distribution_len = pb->distribution.len;
    return 0;
}

static int content_from_pb(const Kurer__V1__Content *pb, kurer_content *out)
{
    switch (pb->body_case) {
    case KURER__V1__CONTENT__BODY_DATA:
        out->body = KURER_CONTENT_DATA;
        return data_from_pb(pb->data, &out->u.data, &out->mem);
    case KURER__V1__CONTENT__BODY_RECEIPT:
        out->body = KURER_CONTENT_RECEIPT;
        return receipt_from_pb(pb->receipt, &out->u.receipt, &out->mem);
    case KURER__V1__CONTENT__BODY_CALL:
        out->body = KURER_CONTENT_CALL;
        return call_from_pb(pb->call, &out->u.call, &out->mem);
    case KURER__V1__CONTENT__BODY_SYNC:
        return sync_from_pb(pb->sync, out);
    case KURER__V1__CONTENT__BODY_SENDER_KEY:
        out->body = KURER_CONTENT_SENDER_KEY;
        return sender_key_from_pb(pb->sender_key, &out->u.sender_key, &out->mem);
    case KURER__V1__CONTENT__BODY_GROUP_CONTROL:
        out->body = KURER_CONTENT_GROUP_CONTROL;
        return kurer__group_control_from_pb(pb->group_control, &out->u.group_control, &out->mem);
    default:
        return KURER_EMALFORMED;
    }
}

void kurer_content_release(kurer_content *c)
{
    if (c == NULL)
        return;
    /* The arena wipes itself; the union's fixed-size keys are wiped with the struct. */
    kurer_arena_release(&c->mem);
    kurer_wipe(c, sizeof(*c));
    memset(c, 0, sizeof(*c));
}

int kurer_content_decode(const uint8_t *data, size_t len, kurer_content *out)
{
    Kurer__V1__Content *pb;
    int rc;
    if (out == NULL)
        return KURER_EINVAL;
    memset(out, 0, sizeof(*out));
    if (data == NULL)
        return KURER_EINVAL;
    if (len > KURER_CONTENT_MAX)
        return KURER_ELIMIT;
    pb = kurer__v1__content__unpack(&kurer__wiping_allocator, len, data);
    if (pb == NULL)
        return KURER_EMALFORMED;
    if ((rc = kurer__exact_size(&pb->base, len)) == 0)
        rc = content_from_pb(pb, out);
    kurer__v1__content__free_unpacked(pb, &kurer__wiping_allocator);
    if (rc != 0)
        kurer_content_release(out);
    return rc;
}

int kurer_content_decode_padded(const uint8_t *data, size_t len, kurer_content *out)
{
    size_t n;
    int rc;
    if (out == NULL)
        return KURER_EINVAL;
    memset(out, 0, sizeof(*out));
    if (data == NULL)
        return KURER_EINVAL;
    if (len > KURER_CONTENT_PADDED_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer_unpad(data, len, &n)) != 0)
        return rc;
    return kurer_content_decode(data, n, out);
}

/* ---- Encoding ----------------------------------------------------------------------------- */

#define TMP_MSG(tmp, type, INIT, out)                                                              \
    do {                                                                                           \
        const type init_ = INIT;                                                                   \
        void *p_;                                                                                  \
        if ((rc = kurer__arena_calloc((tmp), 1, sizeof(init_), &p_)) != 0)                         \
            return rc;                                                                             \
        memcpy(p_, &init_, sizeof(init_));                                                         \
        (out) = p_;                                                                                \
    } while (0)

static void bin(ProtobufCBinaryData *b, const uint8_t *p, size_t n)
{
    b->data = (uint8_t *)p;
    b->len = n;
}

static int str_ok(const char *s, size_t max)
{
    if (s != NULL && strnlen(s, max + 1) > max)
        return KURER_ELIMIT;
    return 0;
}

static int data_to_pb(const kurer_data_message *d, Kurer__V1__DataMessage **out, kurer_arena *tmp)
{
    Kurer__V1__DataMessage *m;
    Kurer__V1__AttachmentPointer *att;
    void *p;
    int rc;
    if (d->n_attachments > KURER_ATTACHMENTS_MAX)
        return KURER_ELIMIT;
    if (d->n_attachments > 0 && d->attachments == NULL)
        return KURER_EINVAL;
    if ((rc = str_ok(d->body, KURER_CONTENT_MAX)) != 0)
        return rc;
    TMP_MSG(tmp, Kurer__V1__DataMessage, KURER__V1__DATA_MESSAGE__INIT, m);
    m->body = (char *)d->body;
    m->classification = (Kurer__V1__Level)d->classification;
    m->timestamp = d->timestamp;
    m->expire_timer = d->expire_timer;
    m->timer_change = d->timer_change != 0;
    if ((rc = kurer__arena_calloc(tmp, d->n_attachments, sizeof(*att), &p)) != 0)
        return rc;
    att = p;
    if ((rc = kurer__arena_calloc(tmp, d->n_attachments, sizeof(*m->attachments), &p)) != 0)
        return rc;
    m->attachments = p;
    for (size_t i = 0; i < d->n_attachments; i++) {
        const kurer_attachment *a = &d->attachments[i];
        const Kurer__V1__AttachmentPointer init = KURER__V1__ATTACHMENT_POINTER__INIT;
        if ((rc = str_ok(a->content_type, KURER_CONTENT_TYPE_MAX)) != 0 ||
            (rc = str_ok(a->file_name, KURER_FILE_NAME_MAX)) != 0)
            return rc;
        att[i] = init;
        bin(&att[i].blob_id, a->blob_id, KURER_BLOB_ID_LEN);
        bin(&att[i].key, a->key, KURER_ATTACHMENT_KEY_LEN);
        bin(&att[i].digest, a->digest, KURER_ATTACHMENT_DIGEST_LEN);
        att[i].size = a->size;
        att[i].content_type = (char *)a->content_type;
        att[i].file_name = (char *)a->file_name;
        m->attachments[i] = &att[i];
    }
    m->n_attachments = d->n_attachments;
    if (d->has_group) {
        TMP_MSG(tmp, Kurer__V1__GroupContext, KURER__V1__GROUP_CONTEXT__INIT, m->group);
        bin(&m->group->group_id, d->group.group_id, KURER_GROUP_ID_LEN);
        m->group->revision = d->group.revision;
    }
    if (d->has_quote) {
        if ((rc = str_ok(d->quote.text, KURER_QUOTE_TEXT_MAX)) != 0)
            return rc;
        TMP_MSG(tmp, Kurer__V1__Quote, KURER__V1__QUOTE__INIT, m->quote);
        TMP_MSG(tmp, Kurer__V1__DeviceAddress, KURER__V1__DEVICE_ADDRESS__INIT, m->quote->author);
        if ((rc = kurer__address_to_pb(&d->quote.author, m->quote->author)) != 0)
            return rc;
        bin(&m->quote->envelope_id, d->quote.envelope_id, KURER_ENVELOPE_ID_LEN);
        m->quote->text = (char *)d->quote.text;
    }
    *out = m;
    return 0;
}

static int receipt_to_pb(const kurer_receipt *r, Kurer__V1__Receipt **out, kurer_arena *tmp)
{
    int rc;
    if (r->n_timestamps > KURER_RECEIPT_TIMESTAMPS_MAX)
        return KURER_ELIMIT;
    if (r->n_timestamps > 0 && r->timestamps == NULL)
        return KURER_EINVAL;
    TMP_MSG(tmp, Kurer__V1__Receipt, KURER__V1__RECEIPT__INIT, *out);
    (*out)->type = (Kurer__V1__Receipt__Type)r->type;
    (*out)->timestamps = (uint64_t *)r->timestamps;
    (*out)->n_timestamps = r->n_timestamps;
    if (r->has_group)
        bin(&(*out)->group_id, r->group_id, KURER_GROUP_ID_LEN);
    return 0;
}

static int content_to_pb(const kurer_content *c, Kurer__V1__Content *pb, kurer_arena *tmp)
{
    int rc;
    switch (c->body) {
    case KURER_CONTENT_DATA:
        pb->body_case = KURER__V1__CONTENT__BODY_DATA;
        return data_to_pb(&c->u.data, &pb->data, tmp);
    case KURER_CONTENT_RECEIPT:
        pb->body_case = KURER__V1__CONTENT__BODY_RECEIPT;
        return receipt_to_pb(&c->u.receipt, &pb->receipt, tmp);
    case KURER_CONTENT_SYNC_RECEIPT: {
        const kurer_sync_receipt *s = &c->u.sync_receipt;
        if ((rc = kurer__fixed_str_ok(s->destination, sizeof(s->destination))) != 0)
            return rc;
        TMP_MSG(tmp, Kurer__V1__SyncMessage, KURER__V1__SYNC_MESSAGE__INIT, pb->sync);
        TMP_MSG(tmp, Kurer__V1__SyncMessage__ReceiptSent,
                KURER__V1__SYNC_MESSAGE__RECEIPT_SENT__INIT, pb->sync->receipt);
        pb->sync->receipt->destination = (char *)s->destination;
        pb->body_case = KURER__V1__CONTENT__BODY_SYNC;
        return receipt_to_pb(&s->receipt, &pb->sync->receipt->receipt, tmp);
    }
    case KURER_CONTENT_CALL: {
        const kurer_call_message *k = &c->u.call;
        if (k->media_ticket_len > KURER_MEDIA_TICKET_MAX)
            return KURER_ELIMIT;
        if (k->media_ticket_len > 0 && k->media_ticket == NULL)
            return KURER_EINVAL;
        TMP_MSG(tmp, Kurer__V1__CallMessage, KURER__V1__CALL_MESSAGE__INIT, pb->call);
        pb->call->call_id = k->call_id;
        pb->call->kind = (Kurer__V1__CallMessage__Kind)k->kind;
        if (k->has_sframe_key)
            bin(&pb->call->sframe_key, k->sframe_key, KURER_SFRAME_KEY_LEN);
        bin(&pb->call->media_ticket, k->media_ticket, k->media_ticket_len);
        pb->call->level = (Kurer__V1__Level)k->level;
        pb->call->version = k->version;
        pb->call->reason = (Kurer__V1__CallMessage__Reason)k->reason;
        pb->call->answered_device = k->answered_device;
        pb->call->timestamp = k->timestamp;
        pb->call->media_port = k->media_port;
        pb->body_case = KURER__V1__CONTENT__BODY_CALL;
        return 0;
    }
    case KURER_CONTENT_SYNC: {
        const kurer_sync_sent *s = &c->u.sync;
        if ((rc = kurer__fixed_str_ok(s->destination, sizeof(s->destination))) != 0)
            return rc;
        TMP_MSG(tmp, Kurer__V1__SyncMessage, KURER__V1__SYNC_MESSAGE__INIT, pb->sync);
        TMP_MSG(tmp, Kurer__V1__SyncMessage__Sent, KURER__V1__SYNC_MESSAGE__SENT__INIT,
                pb->sync->sent);
        pb->sync->sent->destination = (char *)s->destination;
        pb->sync->sent->timestamp = s->timestamp;
        pb->body_case = KURER__V1__CONTENT__BODY_SYNC;
        return data_to_pb(&s->message, &pb->sync->sent->message, tmp);
    }
    case KURER_CONTENT_SENDER_KEY: {
        const kurer_sender_key_distribution *k = &c->u.sender_key;
        if (k->distribution_len > KURER_SENDER_KEY_DIST_MAX)
            return KURER_ELIMIT;
        if (k->distribution_len > 0 && k->distribution == NULL)
            return KURER_EINVAL;
        TMP_MSG(tmp, Kurer__V1__SenderKeyDistribution, KURER__V1__SENDER_KEY_DISTRIBUTION__INIT,
                pb->sender_key);
        bin(&pb->sender_key->group_id, k->group_id, KURER_GROUP_ID_LEN);
        bin(&pb->sender_key->distribution, k->distribution, k->distribution_len);
        pb->body_case = KURER__V1__CONTENT__BODY_SENDER_KEY;
        return 0;
    }
    case KURER_CONTENT_GROUP_CONTROL:
        TMP_MSG(tmp, Kurer__V1__GroupControl, KURER__V1__GROUP_CONTROL__INIT, pb->group_control);
        pb->body_case = KURER__V1__CONTENT__BODY_GROUP_CONTROL;
        return kurer__group_control_to_pb(&c->u.group_control, pb->group_control);
    case KURER_CONTENT_NONE:
        break;
    }
    return KURER_EMALFORMED;
}

static int content_verify(const uint8_t *data, size_t len)
{
    kurer_content c;
    int rc = kurer_content_decode(data, len, &c);
    kurer_content_release(&c);
    return rc;
}

int kurer_content_encode(const kurer_content *c, kurer_buf *out)
{
    Kurer__V1__Content pb = KURER__V1__CONTENT__INIT;
    kurer_arena tmp = {0};
    int rc;
    if (c == NULL || out == NULL)
        return KURER_EINVAL;
    if ((rc = content_to_pb(c, &pb, &tmp)) == 0)
        rc = kurer__encode_verified(&pb.base, KURER_CONTENT_MAX, content_verify, out);
    kurer_arena_release(&tmp);
    return rc;
}

int kurer_content_encode_padded(const kurer_content *c, kurer_buf *out)
{
    kurer_buf plain;
    int rc;
    if (c == NULL || out == NULL)
        return KURER_EINVAL;
    kurer_buf_init_secret(&plain, KURER_CONTENT_MAX);
    if ((rc = kurer_content_encode(c, &plain)) == 0)
        rc = kurer_pad(out, plain.data, plain.len);
    kurer_buf_release(&plain);
    return rc;
}
