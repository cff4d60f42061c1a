/* Attachments (docs/protocol.md 4.6, docs/client.md "Attachments"): files sealed and uploaded
 * for a message, and received ones downloaded, checked and saved. For a request worker holding
 * the home lock. Internal. */
#ifndef KURER_CLIENT_ATTACH_H
#define KURER_CLIENT_ATTACH_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/content.h"
#include "kurer/kurer.h"
#include "store.h"

/* kurer__engine_queue for a message with n files (1..KURER_ATTACHMENTS_MAX paths): each is
 * sealed under a key of its own and uploaded (resumed after a lost connection or a relay
 * restart) before the message is committed; text may be "". Needs the relay (uploads):
 * transport errors as kurer_send's, nothing committed then. A file that cannot be read:
 * KURER_ENOENT / KURER_EIO; a file name that is not UTF-8 or over KURER_FILE_NAME_MAX bytes:
 * KURER_EINVAL; the relay's ELIMIT (blob_max_size) and EQUOTA. */
KURER_MUST_CHECK int kurer__attach_queue(kurer *k, const char *to, int level, const char *text,
                                         const char *const *paths, size_t n, uint64_t deadline,
                                         kurer_refusal *why, int64_t *message_id);

/* Seals and uploads n files (1..KURER_ATTACHMENTS_MAX; given[i] the name a message gives
 * paths[i], given NULL: the last part of the path): atts[i] their pointers, whose names point
 * into names[i]. Needs the relay; errors as kurer__attach_queue's. For a group message, which
 * uploads each file once for every member device. */
KURER_MUST_CHECK int kurer__attach_upload(kurer *k, const char *const *paths,
                                          const char *const *given, size_t n, uint64_t deadline,
                                          kurer_attachment *atts,
                                          char (*names)[KURER_FILE_NAME_MAX + 1]);

/* kurer__attach_queue with the names the message gives the files (names[i] instead of the last
 * part of paths[i]; names NULL: those). For tests that play a hostile sender. */
KURER_MUST_CHECK int kurer__attach_queue_named(kurer *k, const char *to, int level,
                                               const char *text, const char *const *paths,
                                               const char *const *names, size_t n,
                                               uint64_t deadline, kurer_refusal *why,
                                               int64_t *message_id);

/* Downloads attachment row, checks it (digest, every chunk's tag, the FINAL tag, the size:
 * EBLOBDIGEST, EBLOBTAG, EBLOBTRUNC, ETRAILING) and saves it in dir under the safe form of its
 * name (kurer__attach_safe_name), never over an existing file (a suffix -1, -2, ... before the
 * extension), mode 0600; nothing is left in dir on failure. path (cap bytes) gets the file's
 * path; the store records it. */
KURER_MUST_CHECK int kurer__attach_save(kurer *k, const kurer__attach_row *row, const char *dir,
                                        uint64_t deadline, char *path, size_t cap);

/* The name a peer's file_name is saved under (out: cap >= KURER_FILE_NAME_MAX + 1): what follows
 * its last '/' (directories are dropped); "attachment" instead if that is empty, "." or "..",
 * begins with '.', holds a control character or a backslash, is not UTF-8, or is longer than
 * 200 bytes. */
void kurer__attach_safe_name(const char *file_name, char *out, size_t cap);

#endif
