/* Private to proto/: the GroupControl body of Content (content_group.c), reached from
 * content.c. */
#ifndef KURER_CONTENT_INTERNAL_H
#define KURER_CONTENT_INTERNAL_H

#include "kurer/content.h"

#include "content.pb-c.h"

int kurer__group_control_from_pb(const Kurer__V1__GroupControl *pb, kurer_group_control *out,
                                 kurer_arena *mem);
/* Points pb's fields into c (the caller keeps c alive while packing). */
int kurer__group_control_to_pb(const kurer_group_control *c, Kurer__V1__GroupControl *pb);

#endif
