/* Key changes (keychange.c, internal): a peer device's new identity key told to the application
 * once, and listed for it (kurer_key_changes). The record itself is made by the session engine
 * when it stores a chain with a new key (session.h, kurer__session_peer_add). */
#ifndef KURER_CLIENT_KEYCHANGE_H
#define KURER_CLIENT_KEYCHANGE_H

#include <stdint.h>

#include "kurer/kurer.h"

/* Engine threads, home lock held: queues an on_key_change event for every key change not yet
 * told, when the session engine recorded one since the last call (or always, with all: at
 * kurer_set_events). Failures are logged: the records stay unreported for the next time. */
void kurer__keychange_report(kurer *k, int all);
/* Library thread (takes the home lock itself): 1 if rowid is still unreported (0, or an
 * error), and marks it reported. */
int kurer__key_change_unreported(kurer *k, int64_t rowid);
void kurer__key_change_reported(kurer *k, int64_t rowid);

#endif
