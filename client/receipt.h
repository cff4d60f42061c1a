/* Receipts and disappearing messages (issue 11, items 6 and 7; docs/protocol.md 4.8), internal.
 *
 * Receive side (receipt.c, inside the decrypting transaction): a Receipt from a peer device is
 * recorded per device on our messages it names; a receipt one of our own devices sent (a
 * SyncMessage ReceiptSent) is recorded on the incoming messages it names, a READ one marking
 * them read here too. A stored text message gets its timer (and the sender's countdown for a
 * sync copy); a received one owes its sender a DELIVERED receipt, queued in the same
 * transaction (never for a quarantined message, a notice or a receipt). A timer-change
 * notice sets the conversation's timer.
 *
 * Send side (receipt_send.c, the engine's workers with the home lock held): the receipts owed
 * go out at every connection's set-up, when the relay's queue is empty, and at the engine's
 * tick; each to the peer's devices and, as a sync copy, to our own other devices. Expiry runs
 * at the tick (online or not) and when the home is opened. */
#ifndef KURER_CLIENT_RECEIPT_H
#define KURER_CLIENT_RECEIPT_H

#include <stdint.h>

#include "kurer/cert.h"
#include "kurer/content.h"
#include "kurer/kurer.h"
#include "store.h"

/* A Receipt (c->body KURER_CONTENT_RECEIPT) or our own device's copy of one
 * (KURER_CONTENT_SYNC_RECEIPT) from sender: recorded. 0, KURER_EUNSUPPORTED for a sync copy
 * from another user, or a store error. */
KURER_MUST_CHECK int kurer__receipt_received(kurer *k, const kurer_verified *sender,
                                             const kurer_content *c);

/* After message m (row m->rowid) was inserted from dm: its timer, kind and countdown, the
 * conversation's timer for a notice, and the DELIVERED receipt it owes (received text only). */
KURER_MUST_CHECK int kurer__receipt_stored(kurer *k, const kurer__msg *m,
                                           const kurer_data_message *dm, int is_sync);

/* An outgoing message just inserted (row rowid, to): its timer, the notice's own, or else the
 * conversation's, counting down from now_ms. */
KURER_MUST_CHECK int kurer__receipt_queue_extra(kurer *k, int64_t rowid, const char *to,
                                                const kurer__msg_extra *notice, int64_t now_ms);

/* The extras of schema v6 in out (timer, countdown, read, notice) and, for history, the
 * receipt counts and rows (receipts non-NULL: out->receipts points into it, rows allocated
 * there; free with kurer__receipt_rows_free). */
typedef struct kurer__receipt_rows {
    kurer_message_receipt *v;
    char (*user)[KURER_SUBJECT_MAX + 1];
    size_t n, cap;
} kurer__receipt_rows;
KURER_MUST_CHECK int kurer__receipt_fill(kurer *k, int64_t rowid, kurer_message *out,
                                         kurer__receipt_rows *rows);
void kurer__receipt_rows_free(kurer__receipt_rows *rows);

/* Sends the receipts owed (online, home lock held). Errors are logged; the receipts stay owed
 * and a failed peer waits KURER__RECEIPT_BACKOFF_MS before the next try on this connection. */
#define KURER__RECEIPT_BACKOFF_MS 30000
void kurer__receipts_flush(kurer *k, uint64_t deadline);

/* Deletes the messages whose countdown has ended now (k's clock), and notes when the next one
 * ends. _due does it only when that time has come (the tick: no store access otherwise);
 * _changed says a countdown may have started (look at the next tick). */
void kurer__expire_now(kurer *k);
void kurer__expire_due(kurer *k);
void kurer__expiry_changed(kurer *k);

#endif
