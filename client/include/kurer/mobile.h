/* libkurer for phone apps: what an app needs beyond kurer.h (docs/mobile.md).
 *
 * Everything of kurer.h holds here: opaque handles (kurer *), UTF-8 strings, byte arrays with
 * explicit lengths, every callback on the handle's library thread. A phone app opens its home
 * with a raw 32-byte key from the platform keystore (Android Keystore, the iOS Keychain):
 * kurer_create and kurer_open with key != NULL and pass NULL derive nothing (no Argon2 on the
 * UI thread). It tells the library what only the app knows (foreground or not, the network
 * changed, a push arrived), and takes the library's log lines instead of stderr.
 *
 * Ownership: strings and buffers passed in are copied or used only during the call; strings
 * passed to callbacks are borrowed for the duration of the callback. */
#ifndef KURER_MOBILE_H
#define KURER_MOBILE_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/kurer.h"

KURER_ASSUME_NONNULL_BEGIN

/* Log levels of kurer_log_fn (the same as the library's own). */
#define KURER_MOBILE_LOG_DEBUG 0
#define KURER_MOBILE_LOG_INFO  1
#define KURER_MOBILE_LOG_WARN  2
#define KURER_MOBILE_LOG_ERROR 3

/* One log line: a JSON object (no newline), borrowed for the call. Lines never hold message
 * text, keys or passphrases. Called on whichever thread logs (the library thread, a worker, or
 * the caller's): keep it short and thread-safe (hand the line to the platform logger). */
typedef void (*kurer_log_fn)(void *KURER_NULLABLE ud, int level, const char *line);

/* Process-wide (every handle): sends log lines at min_level and above to fn instead of stderr;
 * fn NULL restores stderr. Call it before opening handles; the last call wins. */
KURER_EXPORT void kurer_set_log(kurer_log_fn KURER_NULLABLE fn, void *KURER_NULLABLE ud,
                                int min_level);

/* Foreground (1, the default) or background (0). In the background the library keeps the
 * connection with sparse pings: at 80 % of the relay's idle timeout less a second (which the relay
 * announces in its handshake answer; 120 s if it does not) instead of every 30 s; a lost connection
 * is retried with the same backoff. Returns at once. */
KURER_EXPORT void kurer_set_foreground(kurer *k, int foreground);

/* The device's network changed (Wi-Fi to mobile data, a new address): the current connection
 * is likely dead without knowing it. The library closes it and connects again at once (no
 * backoff), if the connection is wanted. Returns at once. */
KURER_EXPORT void kurer_network_changed(kurer *k);

/* A push said there is something to fetch: connects, takes everything the relay holds (each
 * message through on_message, as always), then disconnects, and calls done (may be NULL) with
 * r->err 0, or why it could not (KURER_ETIMEOUT after timeout_ms, a connection error). For an
 * app that is not kept connected in the background. 0 once queued, or an error at once. */
KURER_EXPORT KURER_MUST_CHECK int
kurer_wake(kurer *k, int timeout_ms, kurer_done_fn KURER_NULLABLE done, void *KURER_NULLABLE ud);

KURER_ASSUME_NONNULL_END

#endif
