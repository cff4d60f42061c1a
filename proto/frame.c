/* ClientFrame, ServerFrame and the handshake payloads of wire.proto <-> validated structs.
 * Rules: kurer/frame.h and docs/protocol.md. Decoders check the input length before unpacking,
 * every count before allocating, and copy what they keep into the frame's arena; encoders build
 * the protobuf message over the caller's memory and let the decoder judge the packed bytes. */
#include <stdlib.h>
#include <string.h>

#include "frame_internal.h"

/* ---- Shared pieces ------------------------------------------------------------------------ */

/* A chunk of a list's bytes: 1..KURER_REVOCATION_CHUNK_MAX bytes inside total, total within
 * the list format's bound. */
static int chunk_ok(uint32_t offset, uint32_t total, size_t len)
{
    if (len == 0 || total == 0)
        return KURER_EMALFORMED;
    if (len > KURER_REVOCATION_CHUNK_MAX || total > KURER_CRL_BYTES_MAX)
        return KURER_ELIMIT;
    if ((uint64_t)offset + len > total)
        return KURER_EMALFORMED;
    return 0;
}

static int chunk_from_pb(uint32_t offset, uint32_t total, const ProtobufCBinaryData *data,
                         kurer_revocation_chunk *out, kurer_arena *mem)
{
    int rc = chunk_ok(offset, total, data->len);
    if (rc != 0)
        return rc;
    out->offset = offset;
    out->total = total;
    out->len = data->len;
    return kurer__arena_memdup(mem, data->data, data->len, &out->data);
}

static int prekey_public_ok(const ProtobufCBinaryData *b, uint8_t *dst)
{
    int rc = kurer__bytes_fixed(b, dst, KURER_PREKEY_PUBLIC_LEN);
    if (rc == 0 && dst[0] != 0x05) /* libsignal's DJB key type */
        rc = KURER_EMALFORMED;
    return rc;
}

static int signed_prekey_from_pb(const Kurer__V1__SignedPrekey *pb, kurer_signed_prekey *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if (pb == NULL)
        return KURER_EMALFORMED;
    if ((rc = prekey_public_ok(&pb->public_key, out->public_key)) != 0 ||
        (rc = kurer__bytes_fixed(&pb->signature, out->signature, KURER_PREKEY_SIG_LEN)) != 0)
        return rc;
    out->id = pb->id;
    out->created_at = pb->created_at;
    return 0;
}

static int one_time_prekey_from_pb(const Kurer__V1__OneTimePrekey *pb, kurer_one_time_prekey *out)
{
    memset(out, 0, sizeof(*out));
    if (pb == NULL)
        return KURER_EMALFORMED;
    out->id = pb->id;
    return prekey_public_ok(&pb->public_key, out->public_key);
}

static void signed_prekey_to_pb(const kurer_signed_prekey *k, Kurer__V1__SignedPrekey *pb)
{
    Kurer__V1__SignedPrekey init = KURER__V1__SIGNED_PREKEY__INIT;
    *pb = init;
    pb->id = k->id;
    pb->public_key.data = (uint8_t *)k->public_key;
    pb->public_key.len = KURER_PREKEY_PUBLIC_LEN;
    pb->signature.data = (uint8_t *)k->signature;
    pb->signature.len = KURER_PREKEY_SIG_LEN;
    pb->created_at = k->created_at;
}

static void one_time_prekey_to_pb(const kurer_one_time_prekey *k, Kurer__V1__OneTimePrekey *pb)
{
    Kurer__V1__OneTimePrekey init = KURER__V1__ONE_TIME_PREKEY__INIT;
    *pb = init;
    pb->id = k->id;
    pb->public_key.data = (uint8_t *)k->public_key;
    pb->public_key.len = KURER_PREKEY_PUBLIC_LEN;
}

/* A user name from the wire, copied into the arena. */
static int user_from_pb(const char *s, kurer_arena *mem, const char **out)
{
    *out = "";
    if (s == NULL || strnlen(s, KURER_SUBJECT_MAX + 1) > KURER_SUBJECT_MAX ||
        kurer_user_check(s) != 0)
        return KURER_EMALFORMED;
    return kurer__arena_strdup(mem, s, KURER_SUBJECT_MAX, out);
}

/* A user name from the caller, bounded so that packing never walks far. */
static int user_to_pb(const char *s)
{
    if (s == NULL || strnlen(s, KURER_SUBJECT_MAX + 1) > KURER_SUBJECT_MAX)
        return KURER_EMALFORMED;
    return 0;
}

/* A SignedRevocationList is decoded by certmsg from bytes, so the unpacked sub-message is packed
 * again. Its tbs and signatures are bytes fields and come back exactly as received. */
static int crl_from_pb(const Kurer__V1__SignedRevocationList *pb, kurer_crl *out)
{
    uint8_t *p;
    size_t n;
    int rc;
    memset(out, 0, sizeof(*out));
    if (pb == NULL)
        return KURER_EMALFORMED;
    if ((rc = kurer__pack(&pb->base, KURER_FRAME_MAX, &p, &n)) != 0)
        return rc;
    rc = kurer_crl_decode(p, n, out);
    free(p);
    return rc;
}

static int crl_to_pb(const kurer_crl *c, Kurer__V1__SignedRevocationList **out, kurer_arena *tmp)
{
    Kurer__V1__SignedRevocationList init = KURER__V1__SIGNED_REVOCATION_LIST__INIT;
    Kurer__V1__SignedCertificate cinit = KURER__V1__SIGNED_CERTIFICATE__INIT;
    Kurer__V1__SignedRevocationList *m;
    Kurer__V1__SignedCertificate *issuer;
    void *p;
    int rc;
    *out = NULL;
    if (c->tbs_len > KURER_FRAME_MAX || c->issuer_cert.tbs_len > KURER_TBS_MAX)
        return KURER_ELIMIT;
    if (c->tbs == NULL || c->tbs_len == 0)
        return KURER_EMALFORMED;
    if ((rc = kurer__arena_calloc(tmp, 1, sizeof(*m), &p)) != 0)
        return rc;
    m = p;
    if ((rc = kurer__arena_calloc(tmp, 1, sizeof(*issuer), &p)) != 0)
        return rc;
    issuer = p;
    *m = init;
    *issuer = cinit;
    m->tbs.data = c->tbs;
    m->tbs.len = c->tbs_len;
    m->signature.data = (uint8_t *)c->signature;
    m->signature.len = KURER_SIG_LEN;
    issuer->tbs.data = (uint8_t *)c->issuer_cert.tbs;
    issuer->tbs.len = c->issuer_cert.tbs_len;
    issuer->signature.data = (uint8_t *)c->issuer_cert.signature;
    issuer->signature.len = KURER_SIG_LEN;
    m->issuer_certificate = issuer;
    *out = m;
    return 0;
}

/* Allocates one zeroed sub-message in tmp and initialises it from init. */
static int tmp_msg(kurer_arena *tmp, const void *init, size_t size, void **out)
{
    int rc = kurer__arena_calloc(tmp, 1, size, out);
    if (rc == 0)
        memcpy(*out, init, size);
    return rc;
}
#define TMP_MSG(tmp, type, INIT, out)                                                              \
    do {                                                                                           \
        const type init_ = INIT;                                                                   \
        void *p_;                                                                                  \
        if ((rc = tmp_msg((tmp), &init_, sizeof(init_), &p_)) != 0)                                \
            return rc;                                                                             \
        (out) = p_;                                                                                \
    } while (0)

/* ---- Client frames ------------------------------------------------------------------------ */

static int send_from_pb(const Kurer__V1__SendRequest *pb, kurer_client_frame *out)
{
    kurer_envelope *envs;
    void *p;
    int rc;
    if (pb->n_envelopes == 0)
        return KURER_EMALFORMED;
    if (pb->n_envelopes > KURER_SEND_ENVELOPES_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(&out->mem, pb->n_envelopes, sizeof(*envs), &p)) != 0)
        return rc;
    envs = p;
    for (size_t i = 0; i < pb->n_envelopes; i++)
        if ((rc = kurer__envelope_from_pb(pb->envelopes[i], 0, &envs[i], &out->mem)) != 0)
            return rc;
    out->u.send.envelopes = envs;
    out->u.send.n = pb->n_envelopes;
    return 0;
}

static int lookup_from_pb(const Kurer__V1__DirectoryLookup *pb, kurer_client_frame *out)
{
    const char **users;
    void *p;
    int rc;
    if (pb->n_users == 0)
        return KURER_EMALFORMED;
    if (pb->n_users > KURER_LOOKUP_USERS_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(&out->mem, pb->n_users, sizeof(*users), &p)) != 0)
        return rc;
    users = p;
    for (size_t i = 0; i < pb->n_users; i++)
        if ((rc = user_from_pb(pb->users[i], &out->mem, &users[i])) != 0)
            return rc;
    out->u.lookup.users = users;
    out->u.lookup.n = pb->n_users;
    return 0;
}

static int prekeys_from_pb(const Kurer__V1__PrekeyUpload *pb, kurer_client_frame *out)
{
    kurer_prekey_upload *u = &out->u.prekeys;
    kurer_one_time_prekey *otk;
    void *p;
    int rc;
    if (pb->registration_id == 0)
        return KURER_EMALFORMED;
    if ((rc = signed_prekey_from_pb(pb->signed_prekey, &u->signed_prekey)) != 0)
        return rc;
    if (pb->n_one_time > KURER_ONE_TIME_PREKEYS_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(&out->mem, pb->n_one_time, sizeof(*otk), &p)) != 0)
        return rc;
    otk = p;
    for (size_t i = 0; i < pb->n_one_time; i++)
        if ((rc = one_time_prekey_from_pb(pb->one_time[i], &otk[i])) != 0)
            return rc;
    u->registration_id = pb->registration_id;
    u->one_time = otk;
    u->n_one_time = pb->n_one_time;
    return 0;
}

static int fetch_from_pb(const Kurer__V1__PrekeyFetch *pb, kurer_client_frame *out)
{
    kurer_prekey_fetch *f = &out->u.fetch_prekeys;
    const uint8_t *ids;
    int rc;
    if (pb->user == NULL || strnlen(pb->user, KURER_SUBJECT_MAX + 1) > KURER_SUBJECT_MAX ||
        kurer_user_check(pb->user) != 0)
        return KURER_EMALFORMED;
    if (pb->n_device_ids > KURER_USER_DEVICES_MAX)
        return KURER_ELIMIT;
    for (size_t i = 0; i < pb->n_device_ids; i++)
        if (pb->device_ids[i] == 0 || pb->device_ids[i] > KURER_DEVICE_ID_MAX)
            return KURER_EMALFORMED;
    if ((rc = kurer__arena_memdup(&out->mem, pb->device_ids, pb->n_device_ids * sizeof(uint32_t),
                                  &ids)) != 0)
        return rc;
    memcpy(f->user, pb->user, strlen(pb->user));
    f->device_ids = (const uint32_t *)(const void *)ids;
    f->n_device_ids = pb->n_device_ids;
    return 0;
}

static int client_from_pb(const Kurer__V1__ClientFrame *pb, kurer_client_frame *out)
{
    const uint8_t *seqs;
    int rc;
    if (pb->request_id == 0)
        return KURER_EMALFORMED;
    out->request_id = pb->request_id;
    switch (pb->body_case) {
    case KURER__V1__CLIENT_FRAME__BODY_SEND:
        out->body = KURER_CLIENT_SEND;
        return send_from_pb(pb->send, out);
    case KURER__V1__CLIENT_FRAME__BODY_ACK:
        out->body = KURER_CLIENT_ACK;
        if (pb->ack->n_seqs == 0)
            return KURER_EMALFORMED;
        if (pb->ack->n_seqs > KURER_ACK_SEQS_MAX)
            return KURER_ELIMIT;
        if ((rc = kurer__arena_memdup(&out->mem, pb->ack->seqs, pb->ack->n_seqs * sizeof(uint64_t),
                                      &seqs)) != 0)
            return rc;
        out->u.ack.seqs = (const uint64_t *)(const void *)seqs;
        out->u.ack.n = pb->ack->n_seqs;
        return 0;
    case KURER__V1__CLIENT_FRAME__BODY_LOOKUP:
        out->body = KURER_CLIENT_LOOKUP;
        return lookup_from_pb(pb->lookup, out);
    case KURER__V1__CLIENT_FRAME__BODY_PREKEYS:
        out->body = KURER_CLIENT_PREKEYS;
        return prekeys_from_pb(pb->prekeys, out);
    case KURER__V1__CLIENT_FRAME__BODY_FETCH_PREKEYS:
        out->body = KURER_CLIENT_FETCH_PREKEYS;
        return fetch_from_pb(pb->fetch_prekeys, out);
    case KURER__V1__CLIENT_FRAME__BODY_PING:
        out->body = KURER_CLIENT_PING;
        out->u.ping.client_time = pb->ping->client_time;
        return 0;
    case KURER__V1__CLIENT_FRAME__BODY_REVOCATION:
        out->body = KURER_CLIENT_REVOCATION;
        return crl_from_pb(pb->revocation->list, &out->u.revocation);
    case KURER__V1__CLIENT_FRAME__BODY_REVOCATIONS:
        out->body = KURER_CLIENT_REVOCATIONS;
        if (pb->revocations->after.len == 0)
            return 0;
        out->u.revocations.has_after = 1;
        return kurer__bytes_fixed(&pb->revocations->after, out->u.revocations.after,
                                  KURER_KEY_ID_LEN);
    case KURER__V1__CLIENT_FRAME__BODY_REVOCATION_CHUNK:
        out->body = KURER_CLIENT_REVOCATION_CHUNK;
        return chunk_from_pb(pb->revocation_chunk->offset, pb->revocation_chunk->total,
                             &pb->revocation_chunk->data, &out->u.revocation_chunk, &out->mem);
    case KURER__V1__CLIENT_FRAME__BODY_REVOCATION_CHUNK_FETCH: {
        const Kurer__V1__RevocationChunkFetch *m = pb->revocation_chunk_fetch;
        out->body = KURER_CLIENT_REVOCATION_CHUNK_FETCH;
        if (m->offset >= KURER_CRL_BYTES_MAX)
            return KURER_EMALFORMED;
        out->u.revocation_chunk_fetch.version = m->version;
        out->u.revocation_chunk_fetch.offset = m->offset;
        return kurer__bytes_fixed(&m->issuer_key_id, out->u.revocation_chunk_fetch.issuer_key_id,
                                  KURER_KEY_ID_LEN);
    }
    default: /* frame_media.c's, else none or a newer one (protobuf-c keeps those aside) */
        return kurer__media_client_from_pb(pb, out);
    }
}

void kurer_client_frame_release(kurer_client_frame *f)
{
    if (f == NULL)
        return;
    if (f->body == KURER_CLIENT_REVOCATION)
        kurer_crl_release(&f->u.revocation);
    kurer_arena_release(&f->mem);
    memset(f, 0, sizeof(*f));
}

int kurer_client_frame_decode(const uint8_t *data, size_t len, kurer_client_frame *out)
{
    Kurer__V1__ClientFrame *pb;
    int rc;
    if (out == NULL)
        return KURER_EINVAL;
    memset(out, 0, sizeof(*out));
    if (data == NULL)
        return KURER_EINVAL;
    if (len > KURER_FRAME_MAX)
        return KURER_ELIMIT;
    pb = kurer__v1__client_frame__unpack(NULL, len, data);
    if (pb == NULL)
        return KURER_EMALFORMED;
    if ((rc = kurer__exact_size(&pb->base, len)) == 0)
        rc = client_from_pb(pb, out);
    kurer__v1__client_frame__free_unpacked(pb, NULL);
    if (rc != 0)
        kurer_client_frame_release(out);
    return rc;
}

static int client_to_pb(const kurer_client_frame *f, Kurer__V1__ClientFrame *pb, kurer_arena *tmp)
{
    void *p;
    int rc;
    pb->request_id = f->request_id;
    switch (f->body) {
    case KURER_CLIENT_SEND: {
        Kurer__V1__Envelope *envs;
        Kurer__V1__Envelope **ptrs;
        size_t n = f->u.send.n;
        if (n > KURER_SEND_ENVELOPES_MAX)
            return KURER_ELIMIT;
        if (n > 0 && f->u.send.envelopes == NULL)
            return KURER_EINVAL;
        TMP_MSG(tmp, Kurer__V1__SendRequest, KURER__V1__SEND_REQUEST__INIT, pb->send);
        if ((rc = kurer__arena_calloc(tmp, n, sizeof(*envs), &p)) != 0)
            return rc;
        envs = p;
        if ((rc = kurer__arena_calloc(tmp, n, sizeof(*ptrs), &p)) != 0)
            return rc;
        ptrs = p;
        for (size_t i = 0; i < n; i++) {
            if ((rc = kurer__envelope_to_pb(&f->u.send.envelopes[i], &envs[i], tmp)) != 0)
                return rc;
            ptrs[i] = &envs[i];
        }
        pb->send->envelopes = ptrs;
        pb->send->n_envelopes = n;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_SEND;
        return 0;
    }
    case KURER_CLIENT_ACK:
        if (f->u.ack.n > KURER_ACK_SEQS_MAX)
            return KURER_ELIMIT;
        if (f->u.ack.n > 0 && f->u.ack.seqs == NULL)
            return KURER_EINVAL;
        TMP_MSG(tmp, Kurer__V1__Ack, KURER__V1__ACK__INIT, pb->ack);
        pb->ack->seqs = (uint64_t *)f->u.ack.seqs;
        pb->ack->n_seqs = f->u.ack.n;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_ACK;
        return 0;
    case KURER_CLIENT_LOOKUP:
        if (f->u.lookup.n > KURER_LOOKUP_USERS_MAX)
            return KURER_ELIMIT;
        if (f->u.lookup.n > 0 && f->u.lookup.users == NULL)
            return KURER_EINVAL;
        for (size_t i = 0; i < f->u.lookup.n; i++)
            if ((rc = user_to_pb(f->u.lookup.users[i])) != 0)
                return rc;
        TMP_MSG(tmp, Kurer__V1__DirectoryLookup, KURER__V1__DIRECTORY_LOOKUP__INIT, pb->lookup);
        pb->lookup->users = (char **)f->u.lookup.users;
        pb->lookup->n_users = f->u.lookup.n;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_LOOKUP;
        return 0;
    case KURER_CLIENT_PREKEYS: {
        const kurer_prekey_upload *u = &f->u.prekeys;
        Kurer__V1__OneTimePrekey *otk;
        Kurer__V1__OneTimePrekey **ptrs;
        if (u->n_one_time > KURER_ONE_TIME_PREKEYS_MAX)
            return KURER_ELIMIT;
        if (u->n_one_time > 0 && u->one_time == NULL)
            return KURER_EINVAL;
        TMP_MSG(tmp, Kurer__V1__PrekeyUpload, KURER__V1__PREKEY_UPLOAD__INIT, pb->prekeys);
        TMP_MSG(tmp, Kurer__V1__SignedPrekey, KURER__V1__SIGNED_PREKEY__INIT,
                pb->prekeys->signed_prekey);
        signed_prekey_to_pb(&u->signed_prekey, pb->prekeys->signed_prekey);
        if ((rc = kurer__arena_calloc(tmp, u->n_one_time, sizeof(*otk), &p)) != 0)
            return rc;
        otk = p;
        if ((rc = kurer__arena_calloc(tmp, u->n_one_time, sizeof(*ptrs), &p)) != 0)
            return rc;
        ptrs = p;
        for (size_t i = 0; i < u->n_one_time; i++) {
            one_time_prekey_to_pb(&u->one_time[i], &otk[i]);
            ptrs[i] = &otk[i];
        }
        pb->prekeys->registration_id = u->registration_id;
        pb->prekeys->one_time = ptrs;
        pb->prekeys->n_one_time = u->n_one_time;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_PREKEYS;
        return 0;
    }
    case KURER_CLIENT_FETCH_PREKEYS:
        if (f->u.fetch_prekeys.n_device_ids > KURER_USER_DEVICES_MAX)
            return KURER_ELIMIT;
        if (f->u.fetch_prekeys.n_device_ids > 0 && f->u.fetch_prekeys.device_ids == NULL)
            return KURER_EINVAL;
        if ((rc = kurer__fixed_str_ok(f->u.fetch_prekeys.user, sizeof(f->u.fetch_prekeys.user))) !=
            0)
            return rc;
        TMP_MSG(tmp, Kurer__V1__PrekeyFetch, KURER__V1__PREKEY_FETCH__INIT, pb->fetch_prekeys);
        pb->fetch_prekeys->user = (char *)f->u.fetch_prekeys.user;
        pb->fetch_prekeys->device_ids = (uint32_t *)f->u.fetch_prekeys.device_ids;
        pb->fetch_prekeys->n_device_ids = f->u.fetch_prekeys.n_device_ids;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_FETCH_PREKEYS;
        return 0;
    case KURER_CLIENT_PING:
        TMP_MSG(tmp, Kurer__V1__Ping, KURER__V1__PING__INIT, pb->ping);
        pb->ping->client_time = f->u.ping.client_time;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_PING;
        return 0;
    case KURER_CLIENT_REVOCATION:
        TMP_MSG(tmp, Kurer__V1__RevocationUpload, KURER__V1__REVOCATION_UPLOAD__INIT,
                pb->revocation);
        if ((rc = crl_to_pb(&f->u.revocation, &pb->revocation->list, tmp)) != 0)
            return rc;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_REVOCATION;
        return 0;
    case KURER_CLIENT_REVOCATIONS:
        TMP_MSG(tmp, Kurer__V1__RevocationFetch, KURER__V1__REVOCATION_FETCH__INIT,
                pb->revocations);
        if (f->u.revocations.has_after) {
            pb->revocations->after.data = (uint8_t *)f->u.revocations.after;
            pb->revocations->after.len = KURER_KEY_ID_LEN;
        }
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_REVOCATIONS;
        return 0;
    case KURER_CLIENT_REVOCATION_CHUNK: {
        const kurer_revocation_chunk *c = &f->u.revocation_chunk;
        if ((rc = chunk_ok(c->offset, c->total, c->len)) != 0)
            return rc;
        if (c->data == NULL)
            return KURER_EINVAL;
        TMP_MSG(tmp, Kurer__V1__RevocationUploadChunk, KURER__V1__REVOCATION_UPLOAD_CHUNK__INIT,
                pb->revocation_chunk);
        pb->revocation_chunk->offset = c->offset;
        pb->revocation_chunk->total = c->total;
        pb->revocation_chunk->data.data = (uint8_t *)c->data;
        pb->revocation_chunk->data.len = c->len;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_REVOCATION_CHUNK;
        return 0;
    }
    case KURER_CLIENT_REVOCATION_CHUNK_FETCH:
        TMP_MSG(tmp, Kurer__V1__RevocationChunkFetch, KURER__V1__REVOCATION_CHUNK_FETCH__INIT,
                pb->revocation_chunk_fetch);
        pb->revocation_chunk_fetch->issuer_key_id.data =
            (uint8_t *)f->u.revocation_chunk_fetch.issuer_key_id;
        pb->revocation_chunk_fetch->issuer_key_id.len = KURER_KEY_ID_LEN;
        pb->revocation_chunk_fetch->version = f->u.revocation_chunk_fetch.version;
        pb->revocation_chunk_fetch->offset = f->u.revocation_chunk_fetch.offset;
        pb->body_case = KURER__V1__CLIENT_FRAME__BODY_REVOCATION_CHUNK_FETCH;
        return 0;
    default:
        break;
    }
    return kurer__media_client_to_pb(f, pb, tmp);
}

static int client_verify(const uint8_t *data, size_t len)
{
    kurer_client_frame f;
    int rc = kurer_client_frame_decode(data, len, &f);
    kurer_client_frame_release(&f);
    return rc;
}

int kurer_client_frame_encode(const kurer_client_frame *f, kurer_buf *out)
{
    Kurer__V1__ClientFrame pb = KURER__V1__CLIENT_FRAME__INIT;
    kurer_arena tmp = {0};
    int rc;
    if (f == NULL || out == NULL)
        return KURER_EINVAL;
    if ((rc = client_to_pb(f, &pb, &tmp)) == 0)
        rc = kurer__encode_verified(&pb.base, KURER_FRAME_MAX, client_verify, out);
    kurer_arena_release(&tmp);
    return rc;
}

/* ---- Server frames ------------------------------------------------------------------------ */

static int user_devices_from_pb(const Kurer__V1__UserDevices *pb, kurer_user_devices *out,
                                kurer_arena *mem)
{
    kurer_chain *chains;
    void *p;
    int rc;
    memset(out, 0, sizeof(*out));
    if (pb == NULL)
        return KURER_EMALFORMED;
    if ((rc = user_from_pb(pb->user, mem, &out->user)) != 0)
        return rc;
    if (pb->n_devices > KURER_USER_DEVICES_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(mem, pb->n_devices, sizeof(*chains), &p)) != 0)
        return rc;
    chains = p;
    for (size_t i = 0; i < pb->n_devices; i++)
        if ((rc = kurer__chain_from_pb(pb->devices[i], &chains[i])) != 0)
            return rc;
    out->devices = chains;
    out->n_devices = pb->n_devices;
    return 0;
}

int kurer__send_result_from_pb(const Kurer__V1__SendResult *pb, kurer_server_frame *out)
{
    kurer_user_result *res;
    void *p;
    int rc;
    if (pb->n_users > KURER_SEND_RESULT_USERS_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(&out->mem, pb->n_users, sizeof(*res), &p)) != 0)
        return rc;
    res = p;
    for (size_t i = 0; i < pb->n_users; i++) {
        const Kurer__V1__UserResult *u = pb->users[i];
        if ((rc = user_from_pb(u->user, &out->mem, &res[i].user)) != 0)
            return rc;
        switch (u->status) {
        case KURER__V1__SEND_STATUS__ACCEPTED:
        case KURER__V1__SEND_STATUS__UNKNOWN_USER:
            if (u->current != NULL)
                return KURER_EMALFORMED;
            break;
        case KURER__V1__SEND_STATUS__STALE_DEVICES:
            if ((rc = user_devices_from_pb(u->current, &res[i].current, &out->mem)) != 0)
                return rc;
            if (strcmp(res[i].current.user, res[i].user) != 0)
                return KURER_EMALFORMED;
            break;
        default:
            return KURER_EMALFORMED;
        }
        res[i].status = (kurer_send_status)u->status;
    }
    out->u.send_result.users = res;
    out->u.send_result.n = pb->n_users;
    return 0;
}

static int directory_from_pb(const Kurer__V1__DirectoryResult *pb, kurer_server_frame *out)
{
    kurer_user_devices *users;
    void *p;
    int rc;
    if (pb->n_users > KURER_LOOKUP_USERS_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(&out->mem, pb->n_users, sizeof(*users), &p)) != 0)
        return rc;
    users = p;
    for (size_t i = 0; i < pb->n_users; i++)
        if ((rc = user_devices_from_pb(pb->users[i], &users[i], &out->mem)) != 0)
            return rc;
    out->u.directory.users = users;
    out->u.directory.n = pb->n_users;
    return 0;
}

static int bundles_from_pb(const Kurer__V1__PrekeyBundles *pb, kurer_server_frame *out)
{
    kurer_prekey_bundle *b;
    void *p;
    int rc;
    if (pb->n_bundles > KURER_USER_DEVICES_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(&out->mem, pb->n_bundles, sizeof(*b), &p)) != 0)
        return rc;
    b = p;
    for (size_t i = 0; i < pb->n_bundles; i++) {
        const Kurer__V1__PrekeyBundle *m = pb->bundles[i];
        if (m->registration_id == 0)
            return KURER_EMALFORMED;
        if ((rc = kurer__address_from_pb(m->address, &b[i].address)) != 0 ||
            (rc = signed_prekey_from_pb(m->signed_prekey, &b[i].signed_prekey)) != 0 ||
            (rc = kurer__chain_from_pb(m->chain, &b[i].chain)) != 0)
            return rc;
        if (m->one_time != NULL) {
            if ((rc = one_time_prekey_from_pb(m->one_time, &b[i].one_time)) != 0)
                return rc;
            b[i].has_one_time = 1;
        }
        b[i].registration_id = m->registration_id;
    }
    out->u.bundles.bundles = b;
    out->u.bundles.n = pb->n_bundles;
    return 0;
}

static int index_from_pb(const Kurer__V1__RevocationIndex *pb, kurer_server_frame *out)
{
    kurer_revocation_info *lists;
    void *p;
    int rc;
    if (pb->n_lists > KURER_REVOCATION_INDEX_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(&out->mem, pb->n_lists, sizeof(*lists), &p)) != 0)
        return rc;
    lists = p;
    for (size_t i = 0; i < pb->n_lists; i++) {
        const Kurer__V1__RevocationListInfo *m = pb->lists[i];
        if ((rc = kurer__bytes_fixed(&m->issuer_key_id, lists[i].issuer_key_id,
                                     KURER_KEY_ID_LEN)) != 0)
            return rc;
        if (m->size == 0 || m->size > KURER_CRL_BYTES_MAX)
            return KURER_EMALFORMED;
        /* strictly increasing key ids: a page never names one list twice */
        if (i > 0 &&
            memcmp(lists[i - 1].issuer_key_id, lists[i].issuer_key_id, KURER_KEY_ID_LEN) >= 0)
            return KURER_EMALFORMED;
        lists[i].version = m->version;
        lists[i].size = m->size;
    }
    out->u.revocation_index.lists = lists;
    out->u.revocation_index.n = pb->n_lists;
    out->u.revocation_index.more = pb->more != 0;
    return 0;
}

static int error_from_pb(const Kurer__V1__Error *pb, int *code, const char **msg, kurer_arena *mem)
{
    if (pb->code >= 0)
        return KURER_EMALFORMED;
    *code = pb->code;
    return kurer__arena_strdup(mem, pb->message, KURER_ERROR_MESSAGE_MAX, msg);
}

static int server_from_pb(const Kurer__V1__ServerFrame *pb, kurer_server_frame *out)
{
    out->request_id = pb->request_id;
    switch (pb->body_case) {
    case KURER__V1__SERVER_FRAME__BODY_DELIVER:
    case KURER__V1__SERVER_FRAME__BODY_PREKEYS_LOW:
    case KURER__V1__SERVER_FRAME__BODY_QUEUE_EMPTY:
        if (pb->request_id != 0) /* pushes answer no request */
            return KURER_EMALFORMED;
        break;
    case KURER__V1__SERVER_FRAME__BODY_OK:
    case KURER__V1__SERVER_FRAME__BODY_SEND_RESULT:
    case KURER__V1__SERVER_FRAME__BODY_DIRECTORY:
    case KURER__V1__SERVER_FRAME__BODY_BUNDLES:
    case KURER__V1__SERVER_FRAME__BODY_PONG:
    case KURER__V1__SERVER_FRAME__BODY_REVOCATION_CHUNK:
        if (pb->request_id == 0) /* answers name their request */
            return KURER_EMALFORMED;
        break;
    default: /* errors and revocation index pages come either way */
        break;
    }
    switch (pb->body_case) {
    case KURER__V1__SERVER_FRAME__BODY_ERROR:
        out->body = KURER_SERVER_ERROR;
        return error_from_pb(pb->error, &out->u.error.code, &out->u.error.message, &out->mem);
    case KURER__V1__SERVER_FRAME__BODY_OK:
        out->body = KURER_SERVER_OK;
        return 0;
    case KURER__V1__SERVER_FRAME__BODY_SEND_RESULT:
        out->body = KURER_SERVER_SEND_RESULT;
        return kurer__send_result_from_pb(pb->send_result, out);
    case KURER__V1__SERVER_FRAME__BODY_DELIVER:
        out->body = KURER_SERVER_DELIVER;
        out->u.deliver.seq = pb->deliver->seq;
        return kurer__envelope_from_pb(pb->deliver->envelope, 1, &out->u.deliver.envelope,
                                       &out->mem);
    case KURER__V1__SERVER_FRAME__BODY_DIRECTORY:
        out->body = KURER_SERVER_DIRECTORY;
        return directory_from_pb(pb->directory, out);
    case KURER__V1__SERVER_FRAME__BODY_BUNDLES:
        out->body = KURER_SERVER_BUNDLES;
        return bundles_from_pb(pb->bundles, out);
    case KURER__V1__SERVER_FRAME__BODY_PONG:
        out->body = KURER_SERVER_PONG;
        out->u.pong.client_time = pb->pong->client_time;
        out->u.pong.server_time = pb->pong->server_time;
        return 0;
    case KURER__V1__SERVER_FRAME__BODY_PREKEYS_LOW:
        out->body = KURER_SERVER_PREKEYS_LOW;
        out->u.prekeys_low.remaining = pb->prekeys_low->remaining;
        return 0;
    case KURER__V1__SERVER_FRAME__BODY_QUEUE_EMPTY:
        out->body = KURER_SERVER_QUEUE_EMPTY;
        return 0;
    case KURER__V1__SERVER_FRAME__BODY_REVOCATION_INDEX:
        out->body = KURER_SERVER_REVOCATION_INDEX;
        return index_from_pb(pb->revocation_index, out);
    case KURER__V1__SERVER_FRAME__BODY_REVOCATION_CHUNK: {
        const Kurer__V1__RevocationChunk *m = pb->revocation_chunk;
        int rc;
        out->body = KURER_SERVER_REVOCATION_CHUNK;
        out->u.revocation_chunk.version = m->version;
        if ((rc = kurer__bytes_fixed(&m->issuer_key_id, out->u.revocation_chunk.issuer_key_id,
                                     KURER_KEY_ID_LEN)) != 0)
            return rc;
        return chunk_from_pb(m->offset, m->total, &m->data, &out->u.revocation_chunk, &out->mem);
    }
    default:
        return kurer__media_server_from_pb(pb, out);
    }
}

void kurer_server_frame_release(kurer_server_frame *f)
{
    if (f == NULL)
        return;
    kurer_arena_release(&f->mem);
    memset(f, 0, sizeof(*f));
}

int kurer_server_frame_decode(const uint8_t *data, size_t len, kurer_server_frame *out)
{
    Kurer__V1__ServerFrame *pb;
    int rc;
    if (out == NULL)
        return KURER_EINVAL;
    memset(out, 0, sizeof(*out));
    if (data == NULL)
        return KURER_EINVAL;
    if (len > KURER_FRAME_MAX)
        return KURER_ELIMIT;
    pb = kurer__v1__server_frame__unpack(NULL, len, data);
    if (pb == NULL)
        return KURER_EMALFORMED;
    if ((rc = kurer__exact_size(&pb->base, len)) == 0)
        rc = server_from_pb(pb, out);
    kurer__v1__server_frame__free_unpacked(pb, NULL);
    if (rc != 0)
        kurer_server_frame_release(out);
    return rc;
}

static int user_devices_to_pb(const kurer_user_devices *u, Kurer__V1__UserDevices **out,
                              kurer_arena *tmp)
{
    Kurer__V1__UserDevices *m;
    void *p;
    int rc;
    *out = NULL;
    if ((rc = user_to_pb(u->user)) != 0)
        return rc;
    if (u->n_devices > KURER_USER_DEVICES_MAX)
        return KURER_ELIMIT;
    if (u->n_devices > 0 && u->devices == NULL)
        return KURER_EINVAL;
    TMP_MSG(tmp, Kurer__V1__UserDevices, KURER__V1__USER_DEVICES__INIT, m);
    if ((rc = kurer__arena_calloc(tmp, u->n_devices, sizeof(*m->devices), &p)) != 0)
        return rc;
    m->devices = p;
    for (size_t i = 0; i < u->n_devices; i++)
        if ((rc = kurer__chain_to_pb(&u->devices[i], &m->devices[i], tmp)) != 0)
            return rc;
    m->user = (char *)u->user;
    m->n_devices = u->n_devices;
    *out = m;
    return 0;
}

int kurer__send_result_to_pb(const kurer_server_frame *f, Kurer__V1__ServerFrame *pb,
                             kurer_arena *tmp)
{
    Kurer__V1__UserResult *res;
    void *p;
    int rc;
    size_t n = f->u.send_result.n;
    if (n > KURER_SEND_RESULT_USERS_MAX)
        return KURER_ELIMIT;
    if (n > 0 && f->u.send_result.users == NULL)
        return KURER_EINVAL;
    TMP_MSG(tmp, Kurer__V1__SendResult, KURER__V1__SEND_RESULT__INIT, pb->send_result);
    if ((rc = kurer__arena_calloc(tmp, n, sizeof(*res), &p)) != 0)
        return rc;
    res = p;
    if ((rc = kurer__arena_calloc(tmp, n, sizeof(*pb->send_result->users), &p)) != 0)
        return rc;
    pb->send_result->users = p;
    for (size_t i = 0; i < n; i++) {
        const kurer_user_result *r = &f->u.send_result.users[i];
        const Kurer__V1__UserResult init = KURER__V1__USER_RESULT__INIT;
        res[i] = init;
        if ((rc = user_to_pb(r->user)) != 0)
            return rc;
        res[i].user = (char *)r->user;
        res[i].status = (Kurer__V1__SendStatus)r->status;
        if (r->status == KURER_SEND_STALE_DEVICES) {
            kurer_user_devices cur = r->current;
            if (cur.user == NULL)
                cur.user = r->user;
            if ((rc = user_devices_to_pb(&cur, &res[i].current, tmp)) != 0)
                return rc;
        }
        pb->send_result->users[i] = &res[i];
    }
    pb->send_result->n_users = n;
    return 0;
}

static int bundles_to_pb(const kurer_server_frame *f, Kurer__V1__ServerFrame *pb, kurer_arena *tmp)
{
    Kurer__V1__PrekeyBundle *b;
    void *p;
    int rc;
    size_t n = f->u.bundles.n;
    if (n > KURER_USER_DEVICES_MAX)
        return KURER_ELIMIT;
    if (n > 0 && f->u.bundles.bundles == NULL)
        return KURER_EINVAL;
    TMP_MSG(tmp, Kurer__V1__PrekeyBundles, KURER__V1__PREKEY_BUNDLES__INIT, pb->bundles);
    if ((rc = kurer__arena_calloc(tmp, n, sizeof(*b), &p)) != 0)
        return rc;
    b = p;
    if ((rc = kurer__arena_calloc(tmp, n, sizeof(*pb->bundles->bundles), &p)) != 0)
        return rc;
    pb->bundles->bundles = p;
    for (size_t i = 0; i < n; i++) {
        const kurer_prekey_bundle *k = &f->u.bundles.bundles[i];
        const Kurer__V1__PrekeyBundle init = KURER__V1__PREKEY_BUNDLE__INIT;
        b[i] = init;
        TMP_MSG(tmp, Kurer__V1__DeviceAddress, KURER__V1__DEVICE_ADDRESS__INIT, b[i].address);
        if ((rc = kurer__address_to_pb(&k->address, b[i].address)) != 0)
            return rc;
        b[i].registration_id = k->registration_id;
        TMP_MSG(tmp, Kurer__V1__SignedPrekey, KURER__V1__SIGNED_PREKEY__INIT, b[i].signed_prekey);
        signed_prekey_to_pb(&k->signed_prekey, b[i].signed_prekey);
        if (k->has_one_time) {
            TMP_MSG(tmp, Kurer__V1__OneTimePrekey, KURER__V1__ONE_TIME_PREKEY__INIT, b[i].one_time);
            one_time_prekey_to_pb(&k->one_time, b[i].one_time);
        }
        if ((rc = kurer__chain_to_pb(&k->chain, &b[i].chain, tmp)) != 0)
            return rc;
        pb->bundles->bundles[i] = &b[i];
    }
    pb->bundles->n_bundles = n;
    return 0;
}

static int server_to_pb(const kurer_server_frame *f, Kurer__V1__ServerFrame *pb, kurer_arena *tmp)
{
    void *p;
    int rc;
    pb->request_id = f->request_id;
    switch (f->body) {
    case KURER_SERVER_ERROR:
        TMP_MSG(tmp, Kurer__V1__Error, KURER__V1__ERROR__INIT, pb->error);
        if (f->u.error.message != NULL &&
            strnlen(f->u.error.message, KURER_ERROR_MESSAGE_MAX + 1) > KURER_ERROR_MESSAGE_MAX)
            return KURER_ELIMIT;
        pb->error->code = f->u.error.code;
        pb->error->message = (char *)f->u.error.message;
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_ERROR;
        return 0;
    case KURER_SERVER_OK:
        TMP_MSG(tmp, Kurer__V1__Ok, KURER__V1__OK__INIT, pb->ok);
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_OK;
        return 0;
    case KURER_SERVER_SEND_RESULT:
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_SEND_RESULT;
        return kurer__send_result_to_pb(f, pb, tmp);
    case KURER_SERVER_DELIVER:
        TMP_MSG(tmp, Kurer__V1__Deliver, KURER__V1__DELIVER__INIT, pb->deliver);
        TMP_MSG(tmp, Kurer__V1__Envelope, KURER__V1__ENVELOPE__INIT, pb->deliver->envelope);
        pb->deliver->seq = f->u.deliver.seq;
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_DELIVER;
        return kurer__envelope_to_pb(&f->u.deliver.envelope, pb->deliver->envelope, tmp);
    case KURER_SERVER_DIRECTORY: {
        size_t n = f->u.directory.n;
        if (n > KURER_LOOKUP_USERS_MAX)
            return KURER_ELIMIT;
        if (n > 0 && f->u.directory.users == NULL)
            return KURER_EINVAL;
        TMP_MSG(tmp, Kurer__V1__DirectoryResult, KURER__V1__DIRECTORY_RESULT__INIT, pb->directory);
        if ((rc = kurer__arena_calloc(tmp, n, sizeof(*pb->directory->users), &p)) != 0)
            return rc;
        pb->directory->users = p;
        for (size_t i = 0; i < n; i++)
            if ((rc = user_devices_to_pb(&f->u.directory.users[i], &pb->directory->users[i],
                                         tmp)) != 0)
                return rc;
        pb->directory->n_users = n;
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_DIRECTORY;
        return 0;
    }
    case KURER_SERVER_BUNDLES:
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_BUNDLES;
        return bundles_to_pb(f, pb, tmp);
    case KURER_SERVER_PONG:
        TMP_MSG(tmp, Kurer__V1__Pong, KURER__V1__PONG__INIT, pb->pong);
        pb->pong->client_time = f->u.pong.client_time;
        pb->pong->server_time = f->u.pong.server_time;
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_PONG;
        return 0;
    case KURER_SERVER_PREKEYS_LOW:
        TMP_MSG(tmp, Kurer__V1__PrekeysLow, KURER__V1__PREKEYS_LOW__INIT, pb->prekeys_low);
        pb->prekeys_low->remaining = f->u.prekeys_low.remaining;
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_PREKEYS_LOW;
        return 0;
    case KURER_SERVER_QUEUE_EMPTY:
        TMP_MSG(tmp, Kurer__V1__QueueEmpty, KURER__V1__QUEUE_EMPTY__INIT, pb->queue_empty);
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_QUEUE_EMPTY;
        return 0;
    case KURER_SERVER_REVOCATION_INDEX: {
        size_t n = f->u.revocation_index.n;
        Kurer__V1__RevocationListInfo *infos;
        if (n > KURER_REVOCATION_INDEX_MAX)
            return KURER_ELIMIT;
        if (n > 0 && f->u.revocation_index.lists == NULL)
            return KURER_EINVAL;
        TMP_MSG(tmp, Kurer__V1__RevocationIndex, KURER__V1__REVOCATION_INDEX__INIT,
                pb->revocation_index);
        if ((rc = kurer__arena_calloc(tmp, n, sizeof(*pb->revocation_index->lists), &p)) != 0)
            return rc;
        pb->revocation_index->lists = p;
        if ((rc = kurer__arena_calloc(tmp, n, sizeof(*infos), &p)) != 0)
            return rc;
        infos = p;
        for (size_t i = 0; i < n; i++) {
            const kurer_revocation_info *in = &f->u.revocation_index.lists[i];
            Kurer__V1__RevocationListInfo init = KURER__V1__REVOCATION_LIST_INFO__INIT;
            infos[i] = init;
            infos[i].issuer_key_id.data = (uint8_t *)in->issuer_key_id;
            infos[i].issuer_key_id.len = KURER_KEY_ID_LEN;
            infos[i].version = in->version;
            infos[i].size = in->size;
            pb->revocation_index->lists[i] = &infos[i];
        }
        pb->revocation_index->n_lists = n;
        pb->revocation_index->more = f->u.revocation_index.more != 0;
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_REVOCATION_INDEX;
        return 0;
    }
    case KURER_SERVER_REVOCATION_CHUNK: {
        const kurer_revocation_chunk *c = &f->u.revocation_chunk;
        if ((rc = chunk_ok(c->offset, c->total, c->len)) != 0)
            return rc;
        if (c->data == NULL)
            return KURER_EINVAL;
        TMP_MSG(tmp, Kurer__V1__RevocationChunk, KURER__V1__REVOCATION_CHUNK__INIT,
                pb->revocation_chunk);
        pb->revocation_chunk->issuer_key_id.data = (uint8_t *)c->issuer_key_id;
        pb->revocation_chunk->issuer_key_id.len = KURER_KEY_ID_LEN;
        pb->revocation_chunk->version = c->version;
        pb->revocation_chunk->total = c->total;
        pb->revocation_chunk->offset = c->offset;
        pb->revocation_chunk->data.data = (uint8_t *)c->data;
        pb->revocation_chunk->data.len = c->len;
        pb->body_case = KURER__V1__SERVER_FRAME__BODY_REVOCATION_CHUNK;
        return 0;
    }
    default:
        break;
    }
    return kurer__media_server_to_pb(f, pb, tmp);
}

static int server_verify(const uint8_t *data, size_t len)
{
    kurer_server_frame f;
    int rc = kurer_server_frame_decode(data, len, &f);
    kurer_server_frame_release(&f);
    return rc;
}

int kurer_server_frame_encode(const kurer_server_frame *f, kurer_buf *out)
{
    Kurer__V1__ServerFrame pb = KURER__V1__SERVER_FRAME__INIT;
    kurer_arena tmp = {0};
    int rc;
    if (f == NULL || out == NULL)
        return KURER_EINVAL;
    if ((rc = server_to_pb(f, &pb, &tmp)) == 0)
        rc = kurer__encode_verified(&pb.base, KURER_FRAME_MAX, server_verify, out);
    kurer_arena_release(&tmp);
    return rc;
}
