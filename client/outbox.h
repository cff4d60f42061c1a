/* The outbox as the user sees it (outbox.c, internal): the size limit for the devices a
 * message goes to, which failures are permanent for a message, composing without the relay,
 * and the procedures behind kurer_outbox_retry and kurer_outbox_cancel. Everything here runs
 * with the home lock held, like engine.h. */
#ifndef KURER_CLIENT_OUTBOX_H
#define KURER_CLIENT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/kurer.h"

/* 0 if a text of len bytes fits n_to devices of to and n_own of our own other devices in one
 * SendRequest; else KURER_ELIMIT with *why (may be NULL): by NONE, user to, device_id the
 * number of devices, limit the most bytes allowed (kurer_text_limit). */
KURER_MUST_CHECK int kurer__outbox_size_check(const char *to, size_t n_to, size_t n_own, size_t len,
                                              kurer_refusal *why);

/* 1 if the relay's (or the encoder's) answer to a SendRequest refuses the message for good:
 * it is marked FAILED, not retried. */
int kurer__outbox_send_permanent(int rc);

/* Records a permanent refusal: the message FAILED with reason rc and why (may be NULL), its
 * items dropped (one transaction). */
KURER_MUST_CHECK int kurer__outbox_fail(kurer *k, int64_t message_rowid, int rc,
                                        const kurer_refusal *why);

/* kurer__outbox_fail for a SendRequest of n_devices envelopes refused for its size (rc): why
 * (may be NULL) gets the number of devices and the limit for them. */
KURER_MUST_CHECK int kurer__outbox_fail_size(kurer *k, int64_t message_rowid, int rc,
                                             size_t n_devices, kurer_refusal *why);

/* kurer_queue when the relay cannot be reached (net_rc, a transport error): commits the
 * message with the devices the home holds, if every one has a session; the next connection
 * sends it. Returns 0 with *message_id, or net_rc (nothing committed) with why naming the
 * recipient that has never been written to (by RECIPIENT, device 0), or a policy error. Any
 * other net_rc is returned as it is. */
KURER_MUST_CHECK int kurer__outbox_queue_offline(kurer *k, int net_rc, const char *to, int level,
                                                 const char *text, kurer_refusal *why,
                                                 int64_t *message_id);

/* Request workers (a job each; home lock held). */
KURER_MUST_CHECK int kurer__outbox_retry(kurer *k, int64_t message_id, uint64_t deadline,
                                         kurer_refusal *why);
KURER_MUST_CHECK int kurer__outbox_cancel(kurer *k, int64_t message_id, uint64_t deadline);

#endif
