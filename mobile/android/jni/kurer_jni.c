/* libkurer_jni.so: the native methods of dk.kurer.Kurer (docs/mobile.md "Android (JNI)").
 *
 * Each method is a thin wrapper: convert the arguments (texts as UTF-8 byte[], keys as byte[32]
 * copied into memory that is wiped after the call), call libkurer, and turn a negative code into
 * a KurerException. A Kurer object's `handle` is a kurer__jni_handle *; dk.kurer.Kurer
 * guarantees that no call uses it once close() has begun, and that close() runs once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/error.h"
#include "kurer_jni.h"

static kurer__jni_handle *handle_of(jlong h)
{
    return (kurer__jni_handle *)(intptr_t)h;
}

static kurer *K(jlong h)
{
    return handle_of(h)->k;
}

/* Throws for rc unless it is 0; 1 if it threw (or an exception is pending). */
static int failed(JNIEnv *env, int rc)
{
    if (rc == 0)
        return 0;
    kurer__jni_throw(env, rc, NULL);
    return 1;
}

static jlong new_handle(JNIEnv *env, int rc, kurer *k)
{
    if (failed(env, rc))
        return 0;
    kurer__jni_handle *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        kurer_close(k);
        kurer__jni_throw(env, KURER_ENOMEM, NULL);
        return 0;
    }
    h->k = k;
    pthread_mutex_init(&h->mu, NULL);
    return (jlong)(intptr_t)h;
}

/* Copies a byte[] of exactly KURER_KEY_LEN bytes into key. */
static int key_of(JNIEnv *env, jbyteArray a, uint8_t key[KURER_KEY_LEN])
{
    if (a == NULL || (*env)->GetArrayLength(env, a) != KURER_KEY_LEN)
        return KURER_EINVAL;
    (*env)->GetByteArrayRegion(env, a, 0, KURER_KEY_LEN, (jbyte *)key);
    return (*env)->ExceptionCheck(env) ? KURER__JNI_PENDING : 0;
}

static jlong JNICALL n_open_key(JNIEnv *env, jclass cls, jbyteArray home, jbyteArray key)
{
    (void)cls;
    char *h = NULL;
    size_t hl = 0;
    uint8_t k32[KURER_KEY_LEN];
    kurer *k = NULL;
    int rc = kurer__jni_cstr(env, home, 0, &h, &hl);
    if (rc == 0 && (rc = key_of(env, key, k32)) == 0) {
        kurer_open_options o = {.home = h, .key = k32, .holder = "kurer-jni"};
        rc = kurer_open_with(&o, &k);
    }
    kurer__jni_wipe(k32, sizeof(k32));
    kurer__jni_cstr_free(h, hl);
    return new_handle(env, rc, k);
}

static jlong JNICALL n_open_pass(JNIEnv *env, jclass cls, jbyteArray home, jbyteArray pass)
{
    (void)cls;
    char *h = NULL, *p = NULL;
    size_t hl = 0, pl = 0;
    kurer *k = NULL;
    int rc = kurer__jni_cstr(env, home, 0, &h, &hl);
    if (rc == 0 && (rc = kurer__jni_cstr(env, pass, 0, &p, &pl)) == 0) {
        kurer_open_options o = {.home = h, .pass = p, .pass_len = pl, .holder = "kurer-jni"};
        rc = kurer_open_with(&o, &k);
    }
    kurer__jni_cstr_free(p, pl);
    kurer__jni_cstr_free(h, hl);
    return new_handle(env, rc, k);
}

static int create(JNIEnv *env, kurer_create_options *o, jbyteArray relay_key, jbyteArray root,
                  jbyteArray key, kurer **k)
{
    uint8_t k32[KURER_KEY_LEN];
    int rc;
    if ((rc = key_of(env, relay_key, o->relay_key)) != 0 || (rc = key_of(env, key, k32)) != 0)
        return rc;
    if (root == NULL)
        return KURER_EINVAL;
    jsize n = (*env)->GetArrayLength(env, root);
    uint8_t *r = malloc(n > 0 ? (size_t)n : 1);
    if (r == NULL) {
        rc = KURER_ENOMEM;
    } else {
        (*env)->GetByteArrayRegion(env, root, 0, n, (jbyte *)r);
        if ((*env)->ExceptionCheck(env)) {
            rc = KURER__JNI_PENDING;
        } else {
            o->root = r;
            o->root_len = (size_t)n;
            rc = kurer_create(o, NULL, 0, k32, k);
        }
    }
    free(r);
    kurer__jni_wipe(k32, sizeof(k32));
    return rc;
}

static jlong JNICALL n_create(JNIEnv *env, jclass cls, jbyteArray home, jbyteArray user,
                              jint device, jbyteArray relay, jbyteArray relay_key, jbyteArray root,
                              jbyteArray key)
{
    (void)cls;
    char *h = NULL, *u = NULL, *rl = NULL;
    size_t hl = 0, ul = 0, rll = 0;
    kurer *k = NULL;
    int rc;
    if ((rc = kurer__jni_cstr(env, home, 0, &h, &hl)) == 0 &&
        (rc = kurer__jni_cstr(env, user, 0, &u, &ul)) == 0 &&
        (rc = kurer__jni_cstr(env, relay, 0, &rl, &rll)) == 0) {
        kurer_create_options o;
        memset(&o, 0, sizeof(o));
        o.home = h;
        o.user = u;
        o.device_id = device > 0 ? (uint32_t)device : 0;
        o.relay = rl;
        rc = create(env, &o, relay_key, root, key, &k);
    }
    kurer__jni_cstr_free(h, hl);
    kurer__jni_cstr_free(u, ul);
    kurer__jni_cstr_free(rl, rll);
    return new_handle(env, rc, k);
}

static void JNICALL n_close(JNIEnv *env, jclass cls, jlong hv)
{
    (void)cls;
    kurer__jni_handle *h = handle_of(hv);
    if (h == NULL)
        return;
    kurer_close(h->k); /* gives what is queued (to the listener still set), joins the thread */
    if (h->listener != NULL)
        (*env)->DeleteGlobalRef(env, h->listener);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void JNICALL n_set_listener(JNIEnv *env, jclass cls, jlong hv, jobject l)
{
    (void)cls;
    kurer__jni_handle *h = handle_of(hv);
    jobject g = NULL;
    if (l != NULL && (g = (*env)->NewGlobalRef(env, l)) == NULL) {
        kurer__jni_throw(env, KURER_ENOMEM, NULL);
        return;
    }
    /* Events are set only while there is a listener: a message given to no one would have its
     * unreported mark cleared, and so never be given again. */
    if (g == NULL)
        kurer_set_events(h->k, NULL);
    pthread_mutex_lock(&h->mu);
    jobject old = h->listener;
    h->listener = g;
    pthread_mutex_unlock(&h->mu);
    if (g != NULL) {
        kurer_events ev;
        kurer__jni_events(h, &ev);
        kurer_set_events(h->k, &ev);
    }
    if (old != NULL)
        (*env)->DeleteGlobalRef(env, old);
}

static void JNICALL n_connect_async(JNIEnv *env, jclass cls, jlong h, jint timeout, jobject cb)
{
    (void)cls;
    kurer_done_fn done;
    void *ud;
    if (kurer__jni_done(env, cb, &done, &ud) != 0)
        return;
    int rc = kurer_connect_async(K(h), timeout, done, ud);
    if (rc != 0)
        kurer__jni_done_drop(env, ud);
    failed(env, rc);
}

static void JNICALL n_send_async(JNIEnv *env, jclass cls, jlong h, jbyteArray to, jint level,
                                 jbyteArray text, jint timeout, jobject cb, jboolean queue)
{
    (void)cls;
    char *t = NULL, *x = NULL;
    size_t tl = 0, xl = 0;
    kurer_done_fn done = NULL;
    void *ud = NULL;
    int rc;
    if ((rc = kurer__jni_cstr(env, to, 0, &t, &tl)) == 0 &&
        (rc = kurer__jni_cstr(env, text, 0, &x, &xl)) == 0 &&
        (rc = kurer__jni_done(env, cb, &done, &ud)) == 0) {
        rc = queue ? kurer_queue_async(K(h), t, level, x, timeout, done, ud)
                   : kurer_send_async(K(h), t, level, x, timeout, done, ud);
        if (rc != 0)
            kurer__jni_done_drop(env, ud);
    }
    kurer__jni_cstr_free(x, xl); /* the library made its own copy */
    kurer__jni_cstr_free(t, tl);
    failed(env, rc);
}

static void JNICALL n_refresh_async(JNIEnv *env, jclass cls, jlong h, jbyteArray user, jint timeout,
                                    jobject cb)
{
    (void)cls;
    char *u = NULL;
    size_t ul = 0;
    kurer_done_fn done = NULL;
    void *ud = NULL;
    int rc;
    if ((rc = kurer__jni_cstr(env, user, 0, &u, &ul)) == 0 &&
        (rc = kurer__jni_done(env, cb, &done, &ud)) == 0) {
        rc = kurer_refresh_async(K(h), u, timeout, done, ud);
        if (rc != 0)
            kurer__jni_done_drop(env, ud);
    }
    kurer__jni_cstr_free(u, ul);
    failed(env, rc);
}

static void JNICALL n_flush_async(JNIEnv *env, jclass cls, jlong h, jint timeout, jobject cb)
{
    (void)cls;
    kurer_done_fn done;
    void *ud;
    if (kurer__jni_done(env, cb, &done, &ud) != 0)
        return;
    int rc = kurer_flush_async(K(h), timeout, done, ud);
    if (rc != 0)
        kurer__jni_done_drop(env, ud);
    failed(env, rc);
}

static void JNICALL n_wake(JNIEnv *env, jclass cls, jlong h, jint timeout, jobject cb)
{
    (void)cls;
    kurer_done_fn done;
    void *ud;
    if (kurer__jni_done(env, cb, &done, &ud) != 0)
        return;
    int rc = kurer_wake(K(h), timeout, done, ud);
    if (rc != 0)
        kurer__jni_done_drop(env, ud);
    failed(env, rc);
}

static void JNICALL n_connect(JNIEnv *env, jclass cls, jlong h, jint timeout)
{
    (void)cls;
    failed(env, kurer_connect(K(h), timeout));
}

static void JNICALL n_send(JNIEnv *env, jclass cls, jlong h, jbyteArray to, jint level,
                           jbyteArray text, jint timeout)
{
    (void)cls;
    char *t = NULL, *x = NULL;
    size_t tl = 0, xl = 0;
    kurer_refusal why;
    memset(&why, 0, sizeof(why));
    int rc;
    if ((rc = kurer__jni_cstr(env, to, 0, &t, &tl)) == 0 &&
        (rc = kurer__jni_cstr(env, text, 0, &x, &xl)) == 0)
        rc = kurer_send(K(h), t, level, x, timeout, &why);
    kurer__jni_cstr_free(x, xl);
    kurer__jni_cstr_free(t, tl);
    if (rc != 0)
        kurer__jni_throw(env, rc, &why);
}

static jlong JNICALL n_refresh(JNIEnv *env, jclass cls, jlong h, jbyteArray user, jint timeout)
{
    (void)cls;
    char *u = NULL;
    size_t ul = 0;
    size_t devices = 0;
    int rc = kurer__jni_cstr(env, user, 0, &u, &ul);
    if (rc == 0)
        rc = kurer_refresh(K(h), u, timeout, &devices);
    kurer__jni_cstr_free(u, ul);
    return failed(env, rc) ? 0 : (jlong)devices;
}

static void JNICALL n_flush(JNIEnv *env, jclass cls, jlong h, jint timeout)
{
    (void)cls;
    failed(env, kurer_flush(K(h), timeout));
}

static void JNICALL n_disconnect(JNIEnv *env, jclass cls, jlong h, jboolean async)
{
    (void)env;
    (void)cls;
    if (async)
        kurer_disconnect_async(K(h));
    else
        kurer_disconnect(K(h));
}

static void JNICALL n_set_foreground(JNIEnv *env, jclass cls, jlong h, jboolean fg)
{
    (void)env;
    (void)cls;
    kurer_set_foreground(K(h), fg ? 1 : 0);
}

static void JNICALL n_network_changed(JNIEnv *env, jclass cls, jlong h)
{
    (void)env;
    (void)cls;
    kurer_network_changed(K(h));
}

static jint JNICALL n_state(JNIEnv *env, jclass cls, jlong h, jboolean reason)
{
    (void)env;
    (void)cls;
    int why = 0;
    kurer_conn_state s = kurer_state(K(h), &why);
    return reason ? (jint)why : (jint)s;
}

static void JNICALL n_import_chain(JNIEnv *env, jclass cls, jlong h, jbyteArray chain)
{
    (void)cls;
    char *c = NULL;
    size_t cl = 0;
    int rc = KURER_EINVAL;
    if (chain != NULL) {
        jsize n = (*env)->GetArrayLength(env, chain);
        c = malloc(n > 0 ? (size_t)n : 1);
        if (c == NULL) {
            rc = KURER_ENOMEM;
        } else {
            cl = (size_t)n;
            (*env)->GetByteArrayRegion(env, chain, 0, n, (jbyte *)c);
            rc = (*env)->ExceptionCheck(env) ? KURER__JNI_PENDING
                                             : kurer_import_chain(K(h), (uint8_t *)c, cl);
        }
    }
    free(c);
    failed(env, rc);
}

static jbyteArray JNICALL n_own_user(JNIEnv *env, jclass cls, jlong h)
{
    (void)cls;
    const char *u = kurer_own_user(K(h));
    return kurer__jni_bytes(env, u, strlen(u));
}

static jint JNICALL n_own_device(JNIEnv *env, jclass cls, jlong h)
{
    (void)env;
    (void)cls;
    return (jint)kurer_own_device(K(h));
}

static jint JNICALL n_outbox_size(JNIEnv *env, jclass cls, jlong h)
{
    (void)cls;
    int n = kurer_outbox_size(K(h));
    return n < 0 && failed(env, n) ? 0 : (jint)n;
}

/* The C API's cost for what state() costs through JNI: kurer_state n times in a C loop. */
static jlong JNICALL n_bench_state(JNIEnv *env, jclass cls, jlong h, jint n)
{
    (void)env;
    (void)cls;
    kurer *k = K(h);
    volatile int sink = 0;
    int64_t t0 = kurer__jni_now_ns();
    for (jint i = 0; i < n; i++)
        sink += (int)kurer_state(k, NULL);
    int64_t t = kurer__jni_now_ns() - t0;
    (void)sink;
    return (jlong)t;
}

static jlong JNICALL n_bench_upcall(JNIEnv *env, jclass cls, jobject l, jint n, jint bytes)
{
    (void)cls;
    return kurer__jni_bench_upcall(env, l, n, bytes);
}

static jstring JNICALL n_level_name(JNIEnv *env, jclass cls, jint level)
{
    (void)cls;
    return (*env)->NewStringUTF(env, kurer_level_name(level)); /* ASCII */
}

static jobject JNICALL n_error_for(JNIEnv *env, jclass cls, jint code)
{
    (void)cls;
    return kurer__jni_error(env, code);
}

static jboolean JNICALL n_in_callback(JNIEnv *env, jclass cls)
{
    (void)env;
    (void)cls;
    return kurer__jni_in_callback() ? JNI_TRUE : JNI_FALSE;
}

#define L     "Ldk/kurer/KurerListener;"
#define CB    "Ldk/kurer/KurerCallback;"
#define FN(f) ((void *)(f))
static const JNINativeMethod methods[] = {
    {"nOpenKey", "([B[B)J", FN(n_open_key)},
    {"nOpenPass", "([B[B)J", FN(n_open_pass)},
    {"nCreate", "([B[BI[B[B[B[B)J", FN(n_create)},
    {"nClose", "(J)V", FN(n_close)},
    {"nSetListener", "(J" L ")V", FN(n_set_listener)},
    {"nConnectAsync", "(JI" CB ")V", FN(n_connect_async)},
    {"nSendAsync", "(J[BI[BI" CB "Z)V", FN(n_send_async)},
    {"nRefreshAsync", "(J[BI" CB ")V", FN(n_refresh_async)},
    {"nFlushAsync", "(JI" CB ")V", FN(n_flush_async)},
    {"nWake", "(JI" CB ")V", FN(n_wake)},
    {"nConnect", "(JI)V", FN(n_connect)},
    {"nSend", "(J[BI[BI)V", FN(n_send)},
    {"nRefresh", "(J[BI)J", FN(n_refresh)},
    {"nFlush", "(JI)V", FN(n_flush)},
    {"nDisconnect", "(JZ)V", FN(n_disconnect)},
    {"nSetForeground", "(JZ)V", FN(n_set_foreground)},
    {"nNetworkChanged", "(J)V", FN(n_network_changed)},
    {"nState", "(JZ)I", FN(n_state)},
    {"nImportChain", "(J[B)V", FN(n_import_chain)},
    {"nOwnUser", "(J)[B", FN(n_own_user)},
    {"nOwnDevice", "(J)I", FN(n_own_device)},
    {"nOutboxSize", "(J)I", FN(n_outbox_size)},
    {"nBenchState", "(JI)J", FN(n_bench_state)},
    {"nBenchUpcall", "(" L "II)J", FN(n_bench_upcall)},
    {"levelName", "(I)Ljava/lang/String;", FN(n_level_name)},
    {"errorFor", "(I)Ldk/kurer/KurerException;", FN(n_error_for)},
    {"nInCallback", "()Z", FN(n_in_callback)},
};

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved)
{
    (void)reserved;
    JNIEnv *env = NULL;
    if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_6) != JNI_OK)
        return JNI_ERR;
    kurer__jni.vm = vm;
    if (kurer__jni_cache_init(env) != 0 || kurer__jni_thread_init() != 0 ||
        (*env)->RegisterNatives(env, kurer__jni.kurer_cls, methods,
                                (jint)(sizeof(methods) / sizeof(methods[0]))) != 0) {
        kurer__jni_cache_free(env);
        return JNI_ERR;
    }
    return JNI_VERSION_1_6;
}

JNIEXPORT void JNICALL JNI_OnUnload(JavaVM *vm, void *reserved)
{
    (void)reserved;
    JNIEnv *env = NULL;
    if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_6) != JNI_OK)
        return;
    kurer__jni_thread_free();
    kurer__jni_cache_free(env);
}
