/* The library thread's side of the binding: attaching it to the VM, and forwarding events and
 * completions to Java (kurer_jni.h).
 *
 * A library thread is attached the first time it calls back (as a daemon, so that a handle left
 * open does not keep the VM from exiting) and detached when it ends, by the destructor of a
 * pthread key: the thread belongs to libkurer, so the binding cannot detach it at any other
 * point. An attached native thread has no Java frame to free local references, so every callback
 * runs inside a local frame of its own (PushLocalFrame/PopLocalFrame), and an exception thrown by
 * the application's code is printed and cleared before the callback returns to C. */
#include <stdlib.h>
#include <string.h>

#include "kurer_jni.h"

/* Android's jni.h takes JNIEnv ** where the JDK's takes void **. */
#ifdef __ANDROID__
#define ENV_OUT(p) (p)
#else
#define ENV_OUT(p) ((void **)(p))
#endif

static pthread_key_t detach_key;
static _Thread_local int in_callback;

static void detach(void *v)
{
    JavaVM *vm = v;
    (*vm)->DetachCurrentThread(vm);
}

int kurer__jni_thread_init(void)
{
    return pthread_key_create(&detach_key, detach) == 0 ? 0 : -1;
}

void kurer__jni_thread_free(void)
{
    pthread_key_delete(detach_key);
}

int kurer__jni_in_callback(void)
{
    return in_callback > 0;
}

JNIEnv *kurer__jni_env(void)
{
    JavaVM *vm = kurer__jni.vm;
    JNIEnv *env = NULL;
    jint r = (*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_6);
    if (r == JNI_OK)
        return env;
    if (r != JNI_EDETACHED)
        return NULL;
    JavaVMAttachArgs args = {JNI_VERSION_1_6, (char *)"kurer-library", NULL};
    if ((*vm)->AttachCurrentThreadAsDaemon(vm, ENV_OUT(&env), &args) != JNI_OK)
        return NULL;
    /* The key's value is what makes the destructor run at the thread's end. */
    if (pthread_setspecific(detach_key, vm) != 0) {
        (*vm)->DetachCurrentThread(vm);
        return NULL;
    }
    return env;
}

/* One callback into Java: the thread's env, a local frame, and a local reference to the
 * listener taken under the handle's mutex (setListener may replace it meanwhile). */
typedef struct upcall {
    JNIEnv *env;
    jobject l;
} upcall;

static int upcall_begin(kurer__jni_handle *h, upcall *c)
{
    JNIEnv *env = c->env = kurer__jni_env();
    if (env == NULL)
        return -1;
    if ((*env)->PushLocalFrame(env, 16) != 0) {
        (*env)->ExceptionClear(env);
        return -1;
    }
    pthread_mutex_lock(&h->mu);
    c->l = h->listener != NULL ? (*env)->NewLocalRef(env, h->listener) : NULL;
    pthread_mutex_unlock(&h->mu);
    if (c->l == NULL) {
        (*env)->PopLocalFrame(env, NULL);
        return -1;
    }
    in_callback++;
    return 0;
}

static void clear_exception(JNIEnv *env)
{
    if ((*env)->ExceptionCheck(env)) {
        (*env)->ExceptionDescribe(env); /* to stderr: the application's code threw */
        (*env)->ExceptionClear(env);
    }
}

static void upcall_end(upcall *c)
{
    in_callback--;
    clear_exception(c->env);
    (*c->env)->PopLocalFrame(c->env, NULL);
}

/* A KurerMessage for m, or NULL with an exception pending (inside the caller's frame). */
static jobject new_message(JNIEnv *env, const kurer_message *m)
{
    jbyteArray id = kurer__jni_bytes(env, m->id, sizeof(m->id));
    jbyteArray peer = id != NULL ? kurer__jni_bytes(env, m->peer, strlen(m->peer)) : NULL;
    jbyteArray body = peer != NULL ? kurer__jni_bytes(env, m->body, strlen(m->body)) : NULL;
    if (body == NULL)
        return NULL;
    jobject r = (*env)->CallStaticObjectMethod(
        env, kurer__jni.msg_cls, kurer__jni.msg_from_native, id, (jboolean)(m->outgoing != 0), peer,
        (jint)m->peer_device, (jint)m->level, body, (jlong)m->sent_at, (jlong)m->received_at,
        (jint)m->state, (jint)m->reason);
    return (*env)->ExceptionCheck(env) ? NULL : r;
}

static void ev_message(void *ud, const kurer_message *m)
{
    upcall c;
    if (upcall_begin(ud, &c) != 0)
        return;
    jobject msg = new_message(c.env, m);
    if (msg != NULL)
        (*c.env)->CallVoidMethod(c.env, c.l, kurer__jni.on_message, msg);
    upcall_end(&c);
}

static void ev_refused(void *ud, const char *from, uint32_t device_id, int err)
{
    upcall c;
    if (upcall_begin(ud, &c) != 0)
        return;
    jstring f = kurer__jni_string(c.env, from);
    if (f != NULL)
        (*c.env)->CallVoidMethod(c.env, c.l, kurer__jni.on_refused, f, (jint)device_id, (jint)err);
    upcall_end(&c);
}

static void ev_state(void *ud, kurer_conn_state state, int reason)
{
    upcall c;
    if (upcall_begin(ud, &c) != 0)
        return;
    (*c.env)->CallVoidMethod(c.env, c.l, kurer__jni.on_state, (jint)state, (jint)reason);
    upcall_end(&c);
}

static void ev_queue_empty(void *ud)
{
    upcall c;
    if (upcall_begin(ud, &c) != 0)
        return;
    (*c.env)->CallVoidMethod(c.env, c.l, kurer__jni.on_queue_empty);
    upcall_end(&c);
}

void kurer__jni_events(kurer__jni_handle *h, kurer_events *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->on_message = ev_message;
    ev->on_refused = ev_refused;
    ev->on_state = ev_state;
    ev->on_queue_empty = ev_queue_empty;
    ev->ud = h;
}

/* A request's completion: ud is the callback's global reference, dropped here (the completion
 * runs exactly once). value: the message id (send, queue) or the devices listed (refresh). */
static void done_fn(void *ud, const kurer_result *r)
{
    JNIEnv *env = kurer__jni_env();
    if (env == NULL)
        return; /* the VM refused to attach: nothing can be called, nor freed */
    if ((*env)->PushLocalFrame(env, 4) != 0) {
        (*env)->ExceptionClear(env);
        (*env)->DeleteGlobalRef(env, ud);
        return;
    }
    jlong value = r->message_id != 0 ? (jlong)r->message_id : (jlong)r->devices;
    in_callback++;
    (*env)->CallVoidMethod(env, (jobject)ud, kurer__jni.on_done, (jint)r->err, value);
    in_callback--;
    clear_exception(env);
    (*env)->DeleteGlobalRef(env, ud);
    (*env)->PopLocalFrame(env, NULL);
}

int kurer__jni_done(JNIEnv *env, jobject cb, kurer_done_fn *done, void **ud)
{
    *done = NULL;
    *ud = NULL;
    if (cb == NULL)
        return 0;
    jobject g = (*env)->NewGlobalRef(env, cb);
    if (g == NULL) {
        kurer__jni_throw(env, KURER_ENOMEM, NULL);
        return KURER__JNI_PENDING;
    }
    *done = done_fn;
    *ud = g;
    return 0;
}

void kurer__jni_done_drop(JNIEnv *env, void *ud)
{
    if (ud != NULL)
        (*env)->DeleteGlobalRef(env, ud);
}

jlong kurer__jni_bench_upcall(JNIEnv *env, jobject l, jint n, jint bytes)
{
    if (l == NULL || n < 0 || bytes < 0 || bytes > KURER_TEXT_MAX) {
        kurer__jni_throw(env, KURER_EINVAL, NULL);
        return -1;
    }
    char *body = malloc((size_t)bytes + 1);
    if (body == NULL) {
        kurer__jni_throw(env, KURER_ENOMEM, NULL);
        return -1;
    }
    memset(body, 'x', (size_t)bytes);
    body[bytes] = '\0';
    kurer__jni_handle h;
    memset(&h, 0, sizeof(h));
    pthread_mutex_init(&h.mu, NULL);
    h.listener = l;
    kurer_message m;
    memset(&m, 0, sizeof(m));
    m.peer = "bench@example.dk";
    m.peer_device = 1;
    m.level = KURER_LEVEL_UNCLASSIFIED;
    m.body = body;
    m.state = KURER_MESSAGE_RECEIVED;
    int64_t t0 = kurer__jni_now_ns();
    for (jint i = 0; i < n; i++)
        ev_message(&h, &m);
    int64_t t = kurer__jni_now_ns() - t0;
    pthread_mutex_destroy(&h.mu);
    free(body);
    return (jlong)t;
}
