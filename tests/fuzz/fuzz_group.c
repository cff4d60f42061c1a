/* libFuzzer target for group changes (proto/content_group.c) and the fold over them
 * (client/group_state.c): the input as a GroupChange, and as a Content whose GroupControl
 * carries one. What decodes must encode to the same bytes; a decoded change (with a CREATE of
 * its group before it) goes through the fold, which must keep its own invariants. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "kurer/content.h"
#include "kurer/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fold_one(const kurer_group_change *c, const uint8_t *data, size_t size)
{
    kurer_group_change create;
    kurer__group_entry e[2];
    kurer__group_state s;
    memset(&create, 0, sizeof(create));
    memcpy(create.group_id, c->group_id, KURER_GROUP_ID_LEN);
    create.kind = KURER_GROUP_CREATE;
    create.signer = c->signer;
    create.name = "g";
    memset(e, 0, sizeof(e));
    e[0].change = &create;
    e[0].hash[0] = 1;
    e[1].change = c;
    kurer_hash256(e[1].hash, data, size); /* as a receiver hashes the change bytes */
    if (kurer__group_fold(c->group_id, e, 2, &s) != 0)
        abort();
    if (s.applied + s.ignored + s.pending != 2 || s.n_members > KURER__GROUP_MEMBERS_MAX)
        abort();
    for (size_t i = 1; i < s.n_members; i++)
        if (strcmp(s.members[i - 1].user, s.members[i].user) >= 0)
            abort();
    kurer__group_state_release(&s);
}

static void change(const uint8_t *data, size_t size)
{
    kurer_group_change c, d;
    kurer_buf b;
    if (kurer_group_change_decode(data, size, &c) != 0)
        return;
    kurer_buf_init(&b, KURER_GROUP_CHANGE_MAX);
    if (kurer_group_change_encode(&c, &b) != 0 || kurer_group_change_decode(b.data, b.len, &d) != 0)
        abort();
    kurer_group_change_release(&d);
    kurer_buf_release(&b);
    fold_one(&c, data, size);
    kurer_group_change_release(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kurer_content ct;
    change(data, size);
    if (kurer_content_decode(data, size, &ct) == 0) {
        if (ct.body == KURER_CONTENT_GROUP_CONTROL)
            change(ct.u.group_control.change, ct.u.group_control.change_len);
        kurer_content_release(&ct);
    }
    return 0;
}
