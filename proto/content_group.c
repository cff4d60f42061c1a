/* GroupChange and GroupControl (content.proto) <-> plain structs: docs/protocol.md 4.7. Same
 * model as content.c: checked lengths before unpack and allocation, copies into the arena,
 * an encoder that re-decodes what it packs. */
#include <stdlib.h>
#include <string.h>

#include "content_internal.h"
#include "frame_internal.h"
#include "kurer/content.h"

#include "content.pb-c.h"

static int users_ok(char *const *users, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (users[i] == NULL || strnlen(users[i], KURER_SUBJECT_MAX + 1) > KURER_SUBJECT_MAX ||
            kurer_user_check(users[i]) != 0)
            return KURER_EMALFORMED;
        for (size_t j = 0; j < i; j++)
            if (strcmp(users[i], users[j]) == 0)
                return KURER_EMALFORMED; /* each once: a change means one thing */
    }
    return 0;
}

/* The fields each kind needs, and none it must not have. */
static int kind_ok(const Kurer__V1__GroupChange *pb)
{
    size_t name_len = pb->name != NULL ? strlen(pb->name) : 0;
    switch (pb->kind) {
    case KURER__V1__GROUP_CHANGE__KIND__CREATE:
        return pb->base_revision == 0 && name_len > 0 ? 0 : KURER_EMALFORMED;
    case KURER__V1__GROUP_CHANGE__KIND__ADD:
    case KURER__V1__GROUP_CHANGE__KIND__REMOVE:
    case KURER__V1__GROUP_CHANGE__KIND__PROMOTE:
        return pb->n_users > 0 ? 0 : KURER_EMALFORMED;
    case KURER__V1__GROUP_CHANGE__KIND__LEAVE:
        return pb->n_users == 0 ? 0 : KURER_EMALFORMED;
    case KURER__V1__GROUP_CHANGE__KIND__RENAME:
        return name_len > 0 ? 0 : KURER_EMALFORMED;
    case KURER__V1__GROUP_CHANGE__KIND__SET_TIMER:
        return 0;
    default:
        return KURER_EMALFORMED;
    }
}

static int change_from_pb(const Kurer__V1__GroupChange *pb, kurer_group_change *out)
{
    void *p;
    int rc;
    if ((rc = kurer__bytes_fixed(&pb->group_id, out->group_id, KURER_GROUP_ID_LEN)) != 0 ||
        (rc = kurer__address_from_pb(pb->signer, &out->signer)) != 0)
        return rc;
    if (pb->n_users > KURER_GROUP_CHANGE_USERS_MAX)
        return KURER_ELIMIT;
    if ((rc = users_ok(pb->users, pb->n_users)) != 0 || (rc = kind_ok(pb)) != 0)
        return rc;
    if ((rc = kurer__arena_strdup(&out->mem, pb->name, KURER_GROUP_NAME_MAX, &out->name)) != 0)
        return rc;
    if ((rc = kurer__arena_calloc(&out->mem, pb->n_users, sizeof(char *), &p)) != 0)
        return rc;
    const char **users = p;
    for (size_t i = 0; i < pb->n_users; i++)
        if ((rc = kurer__arena_strdup(&out->mem, pb->users[i], KURER_SUBJECT_MAX, &users[i])) != 0)
            return rc;
    out->users = users;
    out->n_users = pb->n_users;
    out->base_revision = pb->base_revision;
    out->kind = (kurer_group_change_kind)pb->kind;
    out->timestamp = pb->timestamp;
    out->expire_timer = pb->expire_timer;
    return 0;
}

void kurer_group_change_release(kurer_group_change *c)
{
    if (c == NULL)
        return;
    kurer_arena_release(&c->mem);
    memset(c, 0, sizeof(*c));
}

int kurer_group_change_decode(const uint8_t *data, size_t len, kurer_group_change *out)
{
    Kurer__V1__GroupChange *pb;
    int rc;
    if (out == NULL)
        return KURER_EINVAL;
    memset(out, 0, sizeof(*out));
    out->name = "";
    if (data == NULL)
        return KURER_EINVAL;
    if (len > KURER_GROUP_CHANGE_MAX)
        return KURER_ELIMIT;
    pb = kurer__v1__group_change__unpack(NULL, len, data);
    if (pb == NULL)
        return KURER_EMALFORMED;
    if ((rc = kurer__exact_size(&pb->base, len)) == 0)
        rc = change_from_pb(pb, out);
    kurer__v1__group_change__free_unpacked(pb, NULL);
    if (rc != 0)
        kurer_group_change_release(out);
    return rc;
}

static int change_verify(const uint8_t *data, size_t len)
{
    kurer_group_change c;
    int rc = kurer_group_change_decode(data, len, &c);
    kurer_group_change_release(&c);
    return rc;
}

int kurer_group_change_encode(const kurer_group_change *c, kurer_buf *out)
{
    Kurer__V1__GroupChange pb = KURER__V1__GROUP_CHANGE__INIT;
    Kurer__V1__DeviceAddress signer = KURER__V1__DEVICE_ADDRESS__INIT;
    int rc;
    if (c == NULL || out == NULL || (c->n_users > 0 && c->users == NULL))
        return KURER_EINVAL;
    if (c->n_users > KURER_GROUP_CHANGE_USERS_MAX)
        return KURER_ELIMIT;
    if (c->name != NULL && strnlen(c->name, KURER_GROUP_NAME_MAX + 1) > KURER_GROUP_NAME_MAX)
        return KURER_ELIMIT;
    if ((rc = kurer__address_to_pb(&c->signer, &signer)) != 0)
        return rc;
    pb.group_id.data = (uint8_t *)c->group_id;
    pb.group_id.len = KURER_GROUP_ID_LEN;
    pb.base_revision = c->base_revision;
    pb.kind = (Kurer__V1__GroupChange__Kind)c->kind;
    pb.signer = &signer;
    pb.users = (char **)c->users;
    pb.n_users = c->n_users;
    pb.name = (char *)(c->name != NULL ? c->name : "");
    pb.timestamp = c->timestamp;
    pb.expire_timer = c->expire_timer;
    return kurer__encode_verified(&pb.base, KURER_GROUP_CHANGE_MAX, change_verify, out);
}

/* ---- GroupControl inside Content (content.c calls these) ---- */

int kurer__group_control_from_pb(const Kurer__V1__GroupControl *pb, kurer_group_control *out,
                                 kurer_arena *mem)
{
    int rc;
    if (pb->change.len == 0)
        return KURER_EMALFORMED;
    if (pb->change.len > KURER_GROUP_CHANGE_MAX || pb->signer_chain.len > KURER_GROUP_CHAIN_MAX)
        return KURER_ELIMIT;
    /* Absent is carried (the receiver counts it as forged); any other length is malformed. */
    if (pb->signature.len != 0 && pb->signature.len != KURER_GROUP_SIG_LEN)
        return KURER_EMALFORMED;
    if ((rc = kurer__arena_memdup(mem, pb->change.data, pb->change.len, &out->change)) != 0 ||
        (rc = kurer__arena_memdup(mem, pb->signer_chain.data, pb->signer_chain.len,
                                  &out->signer_chain)) != 0)
        return rc;
    out->change_len = pb->change.len;
    out->signer_chain_len = pb->signer_chain.len;
    out->has_signature = pb->signature.len == KURER_GROUP_SIG_LEN;
    if (out->has_signature)
        memcpy(out->signature, pb->signature.data, KURER_GROUP_SIG_LEN);
    return 0;
}

int kurer__group_control_to_pb(const kurer_group_control *c, Kurer__V1__GroupControl *pb)
{
    if (c->change_len > KURER_GROUP_CHANGE_MAX || c->signer_chain_len > KURER_GROUP_CHAIN_MAX)
        return KURER_ELIMIT;
    if ((c->change_len > 0 && c->change == NULL) ||
        (c->signer_chain_len > 0 && c->signer_chain == NULL))
        return KURER_EINVAL;
    pb->change.data = (uint8_t *)c->change;
    pb->change.len = c->change_len;
    pb->signature.data = (uint8_t *)c->signature;
    pb->signature.len = c->has_signature ? KURER_GROUP_SIG_LEN : 0;
    pb->signer_chain.data = (uint8_t *)c->signer_chain;
    pb->signer_chain.len = c->signer_chain_len;
    return 0;
}
