/* Sender keys (session_group.h) over libsignal's group_session_builder and group_cipher; the
 * records go through the sender key store callbacks of session.c. */
#include "session_group.h"

#include <string.h>

#include <group_cipher.h>
#include <group_session_builder.h>
#include <protocol.h>
#include <sender_key_record.h>

#include "group.h"
#include "session_internal.h"

typedef struct name {
    char hex[KURER__GROUP_HEX_LEN + 1];
    signal_protocol_sender_key_name n;
} name;

/* The name libsignal keys the record by; user must outlive it. */
static void make_name(name *nm, const uint8_t gid[KURER_GROUP_ID_LEN], const char *user,
                      uint32_t device_id)
{
    kurer__group_hex(gid, nm->hex);
    nm->n.group_id = nm->hex;
    nm->n.group_id_len = KURER__GROUP_HEX_LEN;
    nm->n.sender.name = user;
    nm->n.sender.name_len = strlen(user);
    nm->n.sender.device_id = (int32_t)device_id;
}

int kurer__session_group_distribution(kurer__session *s, const uint8_t gid[KURER_GROUP_ID_LEN],
                                      kurer_buf *out, uint32_t *key_id)
{
    name nm;
    group_session_builder *b = NULL;
    sender_key_distribution_message *d = NULL;
    make_name(&nm, gid, s->own->user, s->own->device_id);
    s->store_err = 0;
    int rc = kurer__sg_to_kurer(s, group_session_builder_create(&b, s->store, s->ctx));
    if (rc == 0)
        rc = kurer__sg_to_kurer(s, group_session_builder_create_session(b, &d, &nm.n));
    if (rc == 0) {
        signal_buffer *ser = ciphertext_message_get_serialized((ciphertext_message *)d);
        if (signal_buffer_len(ser) > KURER_SENDER_KEY_DIST_MAX)
            rc = KURER_ELIMIT;
        else
            rc = kurer_buf_put(out, signal_buffer_data(ser), signal_buffer_len(ser));
        *key_id = sender_key_distribution_message_get_id(d);
    }
    if (d != NULL)
        SIGNAL_UNREF(d);
    group_session_builder_free(b);
    return rc;
}

int kurer__session_group_process(kurer__session *s, const uint8_t gid[KURER_GROUP_ID_LEN],
                                 const char *user, uint32_t device_id, const uint8_t *dist,
                                 size_t n)
{
    name nm;
    group_session_builder *b = NULL;
    sender_key_distribution_message *d = NULL;
    make_name(&nm, gid, user, device_id);
    if (sender_key_distribution_message_deserialize(&d, dist, n, s->ctx) != 0)
        return KURER_EDECRYPT;
    s->store_err = 0;
    int rc = kurer__sg_to_kurer(s, group_session_builder_create(&b, s->store, s->ctx));
    if (rc == 0)
        rc = kurer__sg_to_kurer(s, group_session_builder_process_session(b, &nm.n, d));
    SIGNAL_UNREF(d);
    group_session_builder_free(b);
    return rc;
}

int kurer__session_group_encrypt(kurer__session *s, const uint8_t gid[KURER_GROUP_ID_LEN],
                                 const uint8_t *pt, size_t n, kurer_buf *ct)
{
    name nm;
    group_cipher *c = NULL;
    ciphertext_message *msg = NULL;
    make_name(&nm, gid, s->own->user, s->own->device_id);
    s->store_err = 0;
    int rc = kurer__sg_to_kurer(s, group_cipher_create(&c, s->store, &nm.n, s->ctx));
    if (rc == 0)
        rc = kurer__sg_to_kurer(s, group_cipher_encrypt(c, pt, n, &msg));
    if (rc == 0) {
        signal_buffer *ser = ciphertext_message_get_serialized(msg);
        rc = signal_buffer_len(ser) > KURER__CIPHERTEXT_MAX
                 ? KURER_ELIMIT
                 : kurer_buf_put(ct, signal_buffer_data(ser), signal_buffer_len(ser));
    }
    if (msg != NULL)
        SIGNAL_UNREF(msg);
    group_cipher_free(c);
    return rc;
}

int kurer__session_group_has_key(kurer__session *s, const uint8_t gid[KURER_GROUP_ID_LEN],
                                 const char *user, uint32_t device_id, const uint8_t *ct, size_t n)
{
    name nm;
    sender_key_message *m = NULL;
    sender_key_record *rec = NULL;
    sender_key_state *state = NULL;
    if (sender_key_message_deserialize(&m, ct, n, s->ctx) != 0)
        return 0;
    uint32_t key_id = sender_key_message_get_key_id(m);
    SIGNAL_UNREF(m);
    make_name(&nm, gid, user, device_id);
    s->store_err = 0;
    int rc = signal_protocol_sender_key_load_key(s->store, &rec, &nm.n);
    if (rc < 0)
        return kurer__sg_to_kurer(s, rc);
    int has = rec != NULL && !sender_key_record_is_empty(rec) &&
              sender_key_record_get_sender_key_state_by_id(rec, &state, key_id) == 0;
    if (rec != NULL)
        SIGNAL_UNREF(rec);
    return has;
}

int kurer__session_group_decrypt(kurer__session *s, const uint8_t gid[KURER_GROUP_ID_LEN],
                                 const char *user, uint32_t device_id, const uint8_t *ct, size_t n,
                                 kurer_buf *pt)
{
    name nm;
    group_cipher *c = NULL;
    sender_key_message *m = NULL;
    signal_buffer *plain = NULL;
    if (sender_key_message_deserialize(&m, ct, n, s->ctx) != 0)
        return KURER_EDECRYPT;
    make_name(&nm, gid, user, device_id);
    s->store_err = 0;
    int rc = kurer__sg_to_kurer(s, group_cipher_create(&c, s->store, &nm.n, s->ctx));
    if (rc == 0)
        rc = kurer__sg_to_kurer(s, group_cipher_decrypt(c, m, NULL, &plain));
    if (rc == 0)
        rc = kurer_buf_put(pt, signal_buffer_data(plain), signal_buffer_len(plain));
    signal_buffer_bzero_free(plain);
    SIGNAL_UNREF(m);
    group_cipher_free(c);
    return rc;
}
