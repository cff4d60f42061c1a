/* The JNI binding's shared parts (mobile/android/, docs/mobile.md "Android (JNI)").
 *
 * What JNI_OnLoad caches (the JavaVM, global references to the binding's classes, method ids),
 * the per-handle state, and the helpers every native method uses to move bytes and errors across.
 * Only libkurer's public headers: the binding is an application of libkurer.so. */
#ifndef KURER_JNI_H
#define KURER_JNI_H

#include <jni.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "kurer/kurer.h"
#include "kurer/mobile.h"

/* What a Kurer object's `handle` field points to: the open kurer * and the listener, a global
 * reference (or NULL) guarded by mu, which the library thread reads for every event. */
typedef struct kurer__jni_handle {
    kurer *k;
    pthread_mutex_t mu;
    jobject listener;
} kurer__jni_handle;

/* Cached by JNI_OnLoad; valid until JNI_OnUnload. */
typedef struct kurer__jni_cache {
    JavaVM *vm;
    jclass kurer_cls, exc_cls, msg_cls, listener_cls, callback_cls;
    jmethodID exc_init, exc_set_refusal, msg_from_native, from_utf8;
    jmethodID on_message, on_refused, on_state, on_queue_empty, on_done;
} kurer__jni_cache;
extern kurer__jni_cache kurer__jni;

/* Returned where a Java exception is already pending (positive: no KURER_* code). */
#define KURER__JNI_PENDING 1

/* Loads the classes and method ids into kurer__jni (0, or -1 with an exception pending). */
int kurer__jni_cache_init(JNIEnv *env);
void kurer__jni_cache_free(JNIEnv *env);

/* Throws the KurerException for err (with why's refusal when why != NULL and it names one).
 * Never with an exception already pending: a pending one is kept instead. */
void kurer__jni_throw(JNIEnv *env, int err, const kurer_refusal *why);
/* A new KurerException object for err, or NULL with an exception pending. */
jobject kurer__jni_error(JNIEnv *env, int err);

/* A NUL-terminated malloc'd copy of a Java byte[] of UTF-8 (*out NULL for a NULL array when
 * may_be_null). 0, or KURER_EINVAL (NULL, or a NUL byte inside), KURER_ENOMEM, or
 * KURER__JNI_PENDING. Free with kurer__jni_cstr_free, which wipes it. */
int kurer__jni_cstr(JNIEnv *env, jbyteArray a, int may_be_null, char **out, size_t *len);
void kurer__jni_cstr_free(char *s, size_t len);
/* A new byte[] with the n bytes at p, or NULL with an exception pending. */
jbyteArray kurer__jni_bytes(JNIEnv *env, const void *p, size_t n);
/* A new String from a NUL-terminated UTF-8 string (through byte[] and Java's decoder, not JNI's
 * modified UTF-8), or NULL with an exception pending. */
jstring kurer__jni_string(JNIEnv *env, const char *s);

/* The JNIEnv of the calling thread, attaching it (as a daemon thread named "kurer-library") if
 * it is not attached yet; such a thread is detached when it ends (a pthread key's destructor).
 * NULL if the VM refuses. */
JNIEnv *kurer__jni_env(void);
int kurer__jni_thread_init(void);
void kurer__jni_thread_free(void);
/* 1 on a library thread inside a listener or completion. */
int kurer__jni_in_callback(void);

/* The kurer_events that forward to h->listener (ud = h). */
void kurer__jni_events(kurer__jni_handle *h, kurer_events *ev);
/* A completion for a request: ud is the global reference *cb is turned into (NULL for a NULL
 * callback, with done NULL). 0, or KURER__JNI_PENDING. Call kurer__jni_done_drop if
 * the request was refused (done never runs then). */
int kurer__jni_done(JNIEnv *env, jobject cb, kurer_done_fn *done, void **ud);
void kurer__jni_done_drop(JNIEnv *env, void *ud);
/* Delivers n synthetic messages of bytes bytes through the on_message path to l (benchmark),
 * returning the nanoseconds taken. */
jlong kurer__jni_bench_upcall(JNIEnv *env, jobject l, jint n, jint bytes);

/* memset that the compiler may not drop (plaintext, passphrases and keys). */
void kurer__jni_wipe(void *p, size_t n);
/* Nanoseconds on the monotonic clock. */
int64_t kurer__jni_now_ns(void);

#endif
