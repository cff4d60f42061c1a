/* Fan-out sends (docs/protocol.md 3.7): FanoutSend, one part of a send of one shared ciphertext
 * to many devices, and FanoutResult, the answer to its final part. Reached from frame_media.c
 * for every body that is not the media relay's; what is not its own goes on to frame_blob.c. The
 * rules that span parts (order, a user in two parts, the total of devices) are the relay's; a part
 * is checked here on its own. */
#include <string.h>

#include "frame_internal.h"

/* A user name from the wire, copied into the arena. */
static int fo_user_from_pb(const char *s, kurer_arena *mem, const char **out)
{
    *out = "";
    if (s == NULL || strnlen(s, KURER_SUBJECT_MAX + 1) > KURER_SUBJECT_MAX ||
        kurer_user_check(s) != 0)
        return KURER_EMALFORMED;
    return kurer__arena_strdup(mem, s, KURER_SUBJECT_MAX, out);
}

/* The devices of one user: 1..KURER_USER_DEVICES_MAX, ids in range, none twice. */
static int fo_devices_from_pb(const Kurer__V1__FanoutUser *pb, kurer_fanout_user *out,
                              kurer_arena *mem)
{
    kurer_fanout_device *d;
    void *p;
    int rc;
    if (pb->n_devices == 0)
        return KURER_EMALFORMED;
    if (pb->n_devices > KURER_USER_DEVICES_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__arena_calloc(mem, pb->n_devices, sizeof(*d), &p)) != 0)
        return rc;
    d = p;
    for (size_t i = 0; i < pb->n_devices; i++) {
        uint32_t id = pb->devices[i]->device_id;
        if (id == 0 || id > KURER_DEVICE_ID_MAX)
            return KURER_EMALFORMED;
        for (size_t j = 0; j < i; j++)
            if (d[j].device_id == id)
                return KURER_EDUPLICATE;
        d[i].device_id = id;
        d[i].serial = pb->devices[i]->serial;
    }
    out->devices = d;
    out->n_devices = pb->n_devices;
    return 0;
}

/* The users of one part: at most KURER_FANOUT_DEVICES_MAX devices in all, no user twice. */
static int fo_users_from_pb(const Kurer__V1__FanoutSend *m, kurer_client_frame *out)
{
    kurer_fanout_send *fs = &out->u.fanout;
    kurer_fanout_user *users;
    size_t devices = 0;
    void *p;
    int rc;
    if (m->n_users > KURER_FANOUT_DEVICES_MAX)
        return KURER_ELIMIT;
    for (size_t i = 0; i < m->n_users; i++)
        devices += m->users[i]->n_devices;
    if (devices > KURER_FANOUT_DEVICES_MAX)
        return KURER_ELIMIT; /* before anything of the list is allocated */
    if ((rc = kurer__arena_calloc(&out->mem, m->n_users, sizeof(*users), &p)) != 0)
        return rc;
    users = p;
    for (size_t i = 0; i < m->n_users; i++) {
        if ((rc = fo_user_from_pb(m->users[i]->user, &out->mem, &users[i].user)) != 0 ||
            (rc = fo_devices_from_pb(m->users[i], &users[i], &out->mem)) != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(users[j].user, users[i].user) == 0)
                return KURER_EDUPLICATE;
    }
    fs->users = users;
    fs->n_users = m->n_users;
    return 0;
}

int kurer__fanout_client_from_pb(const Kurer__V1__ClientFrame *pb, kurer_client_frame *out)
{
    const Kurer__V1__FanoutSend *m = pb->fanout;
    kurer_fanout_send *fs = &out->u.fanout;
    int rc;
    if (pb->body_case != KURER__V1__CLIENT_FRAME__BODY_FANOUT)
        return kurer__blob_client_from_pb(pb, out); /* frame_blob.c's, else none or newer */
    out->body = KURER_CLIENT_FANOUT;
    if ((rc = kurer__bytes_fixed(&m->id, fs->id, KURER_ENVELOPE_ID_LEN)) != 0)
        return rc;
    if (m->part >= KURER_FANOUT_PARTS_MAX)
        return KURER_ELIMIT;
    fs->part = m->part;
    fs->final = m->final ? 1 : 0;
    if (m->part == 0) {
        if (m->type != KURER__V1__ENVELOPE_TYPE__SENDER_KEY || m->content.len == 0)
            return KURER_EMALFORMED; /* one shared ciphertext is a sender-key message */
        if (m->content.len > KURER_ENVELOPE_CONTENT_MAX)
            return KURER_ELIMIT;
        fs->type = KURER_ENVELOPE_SENDER_KEY;
    } else if (m->type != KURER__V1__ENVELOPE_TYPE__ENVELOPE_UNSPECIFIED || m->content.len != 0) {
        return KURER_EMALFORMED;
    }
    if (m->n_users == 0 && (m->part != 0 || m->final))
        return KURER_EMALFORMED; /* only a first part may carry the content alone */
    if ((rc = fo_users_from_pb(m, out)) != 0)
        return rc;
    /* last, so that a refused part leaves the large copy out of the arena */
    if ((rc = kurer__arena_memdup(&out->mem, m->content.data, m->content.len, &fs->content)) != 0)
        return rc;
    fs->content_len = m->content.len;
    return 0;
}

/* Allocates one sub-message in tmp, initialised from init. */
static int fo_msg(kurer_arena *tmp, const void *init, size_t size, void **out)
{
    int rc = kurer__arena_calloc(tmp, 1, size, out);
    if (rc == 0)
        memcpy(*out, init, size);
    return rc;
}

static int fo_user_to_pb(const kurer_fanout_user *u, Kurer__V1__FanoutUser **out, kurer_arena *tmp)
{
    static const Kurer__V1__FanoutUser uinit = KURER__V1__FANOUT_USER__INIT;
    static const Kurer__V1__FanoutDevice dinit = KURER__V1__FANOUT_DEVICE__INIT;
    Kurer__V1__FanoutUser *m;
    Kurer__V1__FanoutDevice *d;
    void *p;
    int rc;
    if (u->user == NULL || strnlen(u->user, KURER_SUBJECT_MAX + 1) > KURER_SUBJECT_MAX)
        return KURER_EMALFORMED;
    if (u->n_devices > KURER_USER_DEVICES_MAX)
        return KURER_ELIMIT;
    if (u->n_devices > 0 && u->devices == NULL)
        return KURER_EINVAL;
    if ((rc = fo_msg(tmp, &uinit, sizeof(uinit), &p)) != 0)
        return rc;
    m = p;
    if ((rc = kurer__arena_calloc(tmp, u->n_devices, sizeof(*m->devices), &p)) != 0)
        return rc;
    m->devices = p;
    if ((rc = kurer__arena_calloc(tmp, u->n_devices, sizeof(*d), &p)) != 0)
        return rc;
    d = p;
    for (size_t i = 0; i < u->n_devices; i++) {
        d[i] = dinit;
        d[i].device_id = u->devices[i].device_id;
        d[i].serial = u->devices[i].serial;
        m->devices[i] = &d[i];
    }
    m->n_devices = u->n_devices;
    m->user = (char *)u->user;
    *out = m;
    return 0;
}

int kurer__fanout_client_to_pb(const kurer_client_frame *f, Kurer__V1__ClientFrame *pb,
                               kurer_arena *tmp)
{
    static const Kurer__V1__FanoutSend init = KURER__V1__FANOUT_SEND__INIT;
    const kurer_fanout_send *fs = &f->u.fanout;
    Kurer__V1__FanoutSend *m;
    void *p;
    int rc;
    if (f->body != KURER_CLIENT_FANOUT)
        return kurer__blob_client_to_pb(f, pb, tmp);
    if (fs->n_users > KURER_FANOUT_DEVICES_MAX || fs->content_len > KURER_ENVELOPE_CONTENT_MAX)
        return KURER_ELIMIT;
    if ((fs->n_users > 0 && fs->users == NULL) || (fs->content_len > 0 && fs->content == NULL))
        return KURER_EINVAL;
    if ((rc = fo_msg(tmp, &init, sizeof(init), &p)) != 0)
        return rc;
    m = p;
    if ((rc = kurer__arena_calloc(tmp, fs->n_users, sizeof(*m->users), &p)) != 0)
        return rc;
    m->users = p;
    for (size_t i = 0; i < fs->n_users; i++)
        if ((rc = fo_user_to_pb(&fs->users[i], &m->users[i], tmp)) != 0)
            return rc;
    m->n_users = fs->n_users;
    m->id.data = (uint8_t *)fs->id;
    m->id.len = KURER_ENVELOPE_ID_LEN;
    m->part = fs->part;
    m->type = (Kurer__V1__EnvelopeType)fs->type;
    m->content.data = (uint8_t *)fs->content;
    m->content.len = fs->content_len;
    m->final = fs->final ? 1 : 0;
    pb->fanout = m;
    pb->body_case = KURER__V1__CLIENT_FRAME__BODY_FANOUT;
    return 0;
}

int kurer__fanout_server_from_pb(const Kurer__V1__ServerFrame *pb, kurer_server_frame *out)
{
    const Kurer__V1__FanoutResult *m = pb->fanout_result;
    Kurer__V1__SendResult sr = KURER__V1__SEND_RESULT__INIT;
    int rc;
    if (pb->body_case != KURER__V1__SERVER_FRAME__BODY_FANOUT_RESULT)
        return kurer__blob_server_from_pb(pb, out);
    if (pb->request_id == 0) /* an answer names its request */
        return KURER_EMALFORMED;
    out->body = KURER_SERVER_FANOUT_RESULT;
    uint8_t id[KURER_ENVELOPE_ID_LEN];
    if ((rc = kurer__bytes_fixed(&m->id, id, sizeof(id))) != 0)
        return rc;
    /* the per-user results as a SendResult's: the same rules and limits */
    sr.users = m->refused;
    sr.n_users = m->n_refused;
    if ((rc = kurer__send_result_from_pb(&sr, out)) != 0)
        return rc;
    const kurer_user_result *refused = out->u.send_result.users;
    size_t n = out->u.send_result.n;
    memset(&out->u, 0, sizeof(out->u));
    out->u.fanout_result.refused = refused;
    out->u.fanout_result.n_refused = n;
    for (size_t i = 0; i < n; i++) {
        if (refused[i].status == KURER_SEND_ACCEPTED)
            return KURER_EMALFORMED; /* accepted users are counted, not listed */
        for (size_t j = 0; j < i; j++)
            if (strcmp(refused[j].user, refused[i].user) == 0)
                return KURER_EMALFORMED;
    }
    memcpy(out->u.fanout_result.id, id, sizeof(id));
    out->u.fanout_result.accepted = m->accepted;
    out->u.fanout_result.lists_omitted = m->lists_omitted ? 1 : 0;
    return 0;
}

int kurer__fanout_server_to_pb(const kurer_server_frame *f, Kurer__V1__ServerFrame *pb,
                               kurer_arena *tmp)
{
    static const Kurer__V1__FanoutResult init = KURER__V1__FANOUT_RESULT__INIT;
    Kurer__V1__ServerFrame spb = KURER__V1__SERVER_FRAME__INIT;
    kurer_server_frame sf;
    Kurer__V1__FanoutResult *m;
    void *p;
    int rc;
    if (f->body != KURER_SERVER_FANOUT_RESULT)
        return kurer__blob_server_to_pb(f, pb, tmp);
    memset(&sf, 0, sizeof(sf));
    sf.body = KURER_SERVER_SEND_RESULT;
    sf.u.send_result.users = f->u.fanout_result.refused;
    sf.u.send_result.n = f->u.fanout_result.n_refused;
    if ((rc = kurer__send_result_to_pb(&sf, &spb, tmp)) != 0)
        return rc;
    if ((rc = fo_msg(tmp, &init, sizeof(init), &p)) != 0)
        return rc;
    m = p;
    m->id.data = (uint8_t *)f->u.fanout_result.id;
    m->id.len = KURER_ENVELOPE_ID_LEN;
    m->accepted = f->u.fanout_result.accepted;
    m->refused = spb.send_result->users;
    m->n_refused = spb.send_result->n_users;
    m->lists_omitted = f->u.fanout_result.lists_omitted ? 1 : 0;
    pb->fanout_result = m;
    pb->body_case = KURER__V1__SERVER_FRAME__BODY_FANOUT_RESULT;
    return 0;
}

/* ---- the stored form of a fan-out's envelope ---------------------------------------------- */

/* An envelope's encoding starts with its id (tag, length 16, the bytes) and then its `to`
 * (protobuf-c packs fields in number order): the shared form leaves `to` out. */
#define FO_ID_FIELD 18
#define FO_TO_TAG   0x12

static size_t fo_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* A varint at p[0..len): its value and size, or 0 if it is cut off or too long. */
static size_t fo_varint_read(const uint8_t *p, size_t len, uint64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if ((p[i] & 0x80) == 0)
            return i + 1;
    }
    return 0;
}

int kurer_fanout_shared_encode(const kurer_envelope *env, kurer_buf *out)
{
    kurer_buf b;
    uint64_t l;
    int rc;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    if ((rc = kurer_envelope_encode(env, &b)) != 0)
        goto out;
    rc = KURER_EMALFORMED;
    if (b.len < FO_ID_FIELD + 2 || b.data[0] != 0x0a || b.data[1] != KURER_ENVELOPE_ID_LEN ||
        b.data[FO_ID_FIELD] != FO_TO_TAG)
        goto out;
    size_t vn = fo_varint_read(b.data + FO_ID_FIELD + 1, b.len - FO_ID_FIELD - 1, &l);
    size_t rest = FO_ID_FIELD + 1 + vn + (size_t)l;
    if (vn == 0 || l > b.len || rest > b.len)
        goto out;
    size_t before = out->len;
    if ((rc = kurer_buf_put(out, b.data, FO_ID_FIELD)) != 0 ||
        (rc = kurer_buf_put(out, b.data + rest, b.len - rest)) != 0)
        out->len = before;
out:
    kurer_buf_release(&b);
    return rc;
}

int kurer_fanout_envelope(const uint8_t *shared, size_t len, const kurer_device_address *to,
                          kurer_buf *out)
{
    uint8_t field[8 + KURER_SUBJECT_MAX + 8];
    size_t ulen = strnlen(to->user, KURER_SUBJECT_MAX + 1), n = 0;
    if (shared == NULL || len < FO_ID_FIELD || shared[0] != 0x0a ||
        shared[1] != KURER_ENVELOPE_ID_LEN || ulen == 0 || ulen > KURER_SUBJECT_MAX ||
        to->device_id == 0 || to->device_id > KURER_DEVICE_ID_MAX)
        return KURER_EMALFORMED;
    uint8_t addr[4 + KURER_SUBJECT_MAX + 8];
    size_t an = 0;
    addr[an++] = 0x0a; /* DeviceAddress.user */
    an += fo_varint(addr + an, ulen);
    memcpy(addr + an, to->user, ulen);
    an += ulen;
    addr[an++] = 0x10; /* DeviceAddress.device_id */
    an += fo_varint(addr + an, to->device_id);
    field[n++] = FO_TO_TAG;
    n += fo_varint(field + n, an);
    memcpy(field + n, addr, an);
    n += an;
    if (len + n > KURER_FRAME_MAX)
        return KURER_ELIMIT;
    size_t before = out->len;
    int rc;
    if ((rc = kurer_buf_put(out, shared, FO_ID_FIELD)) != 0 ||
        (rc = kurer_buf_put(out, field, n)) != 0 ||
        (rc = kurer_buf_put(out, shared + FO_ID_FIELD, len - FO_ID_FIELD)) != 0)
        out->len = before; /* nothing appended on failure */
    return rc;
}
