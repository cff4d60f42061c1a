/* The arena of decoded messages: a list of separately allocated blocks. One malloc per block
 * keeps each allocation visible to AddressSanitizer, and the lists are short (bounded by the
 * limits in frame.h). Blocks are wiped when released. */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame_internal.h"

typedef union arena_hdr {
    struct {
        union arena_hdr *next;
        size_t size;
    } h;
    max_align_t align;
} arena_hdr;

void kurer_arena_release(kurer_arena *a)
{
    arena_hdr *h;
    if (a == NULL)
        return;
    h = a->head;
    while (h != NULL) {
        arena_hdr *next = h->h.next;
        /* Decoded content is plaintext: leave none of it in freed memory. */
        kurer_wipe(h + 1, h->h.size);
        free(h);
        h = next;
    }
    a->head = NULL;
    a->total = 0;
}

int kurer__arena_calloc(kurer_arena *a, size_t count, size_t size, void **out)
{
    arena_hdr *h;
    size_t n;
    *out = NULL;
    if (count == 0 || size == 0)
        return 0;
    if (count > (KURER_ARENA_MAX / size))
        return KURER_ELIMIT;
    n = count * size;
    if (n > KURER_ARENA_MAX - a->total)
        return KURER_ELIMIT;
    h = calloc(1, sizeof(*h) + n);
    if (h == NULL)
        return KURER_ENOMEM;
    h->h.next = a->head;
    h->h.size = n;
    a->head = h;
    a->total += n;
    *out = h + 1;
    return 0;
}

int kurer__arena_strdup(kurer_arena *a, const char *s, size_t max, const char **out)
{
    size_t n;
    void *p;
    int rc;
    *out = "";
    if (s == NULL)
        return 0;
    n = strnlen(s, max + 1);
    if (n > max)
        return KURER_ELIMIT;
    if (n == 0)
        return 0;
    if ((rc = kurer__arena_calloc(a, n + 1, 1, &p)) != 0)
        return rc;
    memcpy(p, s, n);
    *out = p;
    return 0;
}

int kurer__arena_memdup(kurer_arena *a, const void *src, size_t n, const uint8_t **out)
{
    void *p;
    int rc;
    *out = NULL;
    if (n == 0)
        return 0;
    if ((rc = kurer__arena_calloc(a, n, 1, &p)) != 0)
        return rc;
    memcpy(p, src, n);
    *out = p;
    return 0;
}

/* Each block carries its size in a header of max_align_t, so that the block stays aligned for
 * anything protobuf-c puts in it and free knows how much to wipe. */
static void *wiping_alloc(void *ud, size_t n)
{
    (void)ud;
    if (n > SIZE_MAX - sizeof(arena_hdr))
        return NULL;
    arena_hdr *h = malloc(sizeof(*h) + n);
    if (h == NULL)
        return NULL;
    h->h.next = NULL;
    h->h.size = n;
    return h + 1;
}

static void wiping_free(void *ud, void *p)
{
    (void)ud;
    if (p == NULL)
        return;
    arena_hdr *h = (arena_hdr *)p - 1;
    kurer_wipe(p, h->h.size);
    free(h);
}

ProtobufCAllocator kurer__wiping_allocator = {wiping_alloc, wiping_free, NULL};

int kurer__exact_size(const ProtobufCMessage *m, size_t len)
{
    return protobuf_c_message_get_packed_size(m) == len ? 0 : KURER_EMALFORMED;
}
