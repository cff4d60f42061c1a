/* The binding's caches and its conversions of bytes, strings and errors (kurer_jni.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kurer/error.h"
#include "kurer_jni.h"

kurer__jni_cache kurer__jni;

void kurer__jni_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

int64_t kurer__jni_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static jclass global_class(JNIEnv *env, const char *name)
{
    jclass local = (*env)->FindClass(env, name);
    if (local == NULL)
        return NULL;
    jclass g = (*env)->NewGlobalRef(env, local);
    (*env)->DeleteLocalRef(env, local);
    return g;
}

int kurer__jni_cache_init(JNIEnv *env)
{
    kurer__jni_cache *c = &kurer__jni;
    if ((c->kurer_cls = global_class(env, "dk/kurer/Kurer")) == NULL ||
        (c->exc_cls = global_class(env, "dk/kurer/KurerException")) == NULL ||
        (c->msg_cls = global_class(env, "dk/kurer/KurerMessage")) == NULL ||
        (c->listener_cls = global_class(env, "dk/kurer/KurerListener")) == NULL ||
        (c->callback_cls = global_class(env, "dk/kurer/KurerCallback")) == NULL)
        return -1;
    const char *s = "Ljava/lang/String;";
    char sig[128];
    snprintf(sig, sizeof(sig), "(I%s%s%s)V", s, s, s);
    if ((c->exc_init = (*env)->GetMethodID(env, c->exc_cls, "<init>", sig)) == NULL ||
        (c->exc_set_refusal = (*env)->GetMethodID(env, c->exc_cls, "setRefusal",
                                                  "(ILjava/lang/String;II)V")) == NULL ||
        (c->msg_from_native = (*env)->GetStaticMethodID(
             env, c->msg_cls, "fromNative", "([BZ[BII[BJJII)Ldk/kurer/KurerMessage;")) == NULL ||
        (c->from_utf8 = (*env)->GetStaticMethodID(env, c->kurer_cls, "fromUtf8",
                                                  "([B)Ljava/lang/String;")) == NULL ||
        (c->on_message = (*env)->GetMethodID(env, c->listener_cls, "onMessage",
                                             "(Ldk/kurer/KurerMessage;)V")) == NULL ||
        (c->on_refused = (*env)->GetMethodID(env, c->listener_cls, "onRefused",
                                             "(Ljava/lang/String;II)V")) == NULL ||
        (c->on_state = (*env)->GetMethodID(env, c->listener_cls, "onState", "(II)V")) == NULL ||
        (c->on_queue_empty = (*env)->GetMethodID(env, c->listener_cls, "onQueueEmpty", "()V")) ==
            NULL ||
        (c->on_done = (*env)->GetMethodID(env, c->callback_cls, "onDone", "(IJ)V")) == NULL)
        return -1;
    return 0;
}

void kurer__jni_cache_free(JNIEnv *env)
{
    kurer__jni_cache *c = &kurer__jni;
    jclass *cls[] = {&c->kurer_cls, &c->exc_cls, &c->msg_cls, &c->listener_cls, &c->callback_cls};
    for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) {
        if (*cls[i] != NULL)
            (*env)->DeleteGlobalRef(env, *cls[i]);
        *cls[i] = NULL;
    }
}

static const char *category_name(int err)
{
    switch (kurer_err_category(err)) {
    case KURER_CAT_NONE:
        return "NONE";
    case KURER_CAT_USAGE:
        return "USAGE";
    case KURER_CAT_IO:
        return "IO";
    case KURER_CAT_PROTO:
        return "PROTO";
    case KURER_CAT_CRYPTO:
        return "CRYPTO";
    case KURER_CAT_STORAGE:
        return "STORAGE";
    case KURER_CAT_POLICY:
        return "POLICY";
    case KURER_CAT_AGAIN:
        return "AGAIN";
    }
    return "NONE";
}

jobject kurer__jni_error(JNIEnv *env, int err)
{
    /* The names, categories and messages are ASCII: NewStringUTF is exact for them. */
    jobject exc = NULL;
    jstring name = (*env)->NewStringUTF(env, kurer_err_name(err));
    jstring cat = name != NULL ? (*env)->NewStringUTF(env, category_name(err)) : NULL;
    jstring msg = cat != NULL ? (*env)->NewStringUTF(env, kurer_strerror(err)) : NULL;
    if (msg != NULL)
        exc = (*env)->NewObject(env, kurer__jni.exc_cls, kurer__jni.exc_init, (jint)err, name, cat,
                                msg);
    if (name != NULL)
        (*env)->DeleteLocalRef(env, name);
    if (cat != NULL)
        (*env)->DeleteLocalRef(env, cat);
    if (msg != NULL)
        (*env)->DeleteLocalRef(env, msg);
    return exc;
}

void kurer__jni_throw(JNIEnv *env, int err, const kurer_refusal *why)
{
    if ((*env)->ExceptionCheck(env))
        return;
    jobject exc = kurer__jni_error(env, err);
    if (exc == NULL)
        return;
    if (why != NULL && why->by != KURER_REFUSED_BY_NONE) {
        jstring user = kurer__jni_string(env, why->user);
        if (user == NULL) {
            (*env)->DeleteLocalRef(env, exc);
            return;
        }
        (*env)->CallVoidMethod(env, exc, kurer__jni.exc_set_refusal, (jint)why->by, user,
                               (jint)why->device_id, (jint)why->limit);
        (*env)->DeleteLocalRef(env, user);
        if ((*env)->ExceptionCheck(env)) {
            (*env)->DeleteLocalRef(env, exc);
            return;
        }
    }
    (*env)->Throw(env, (jthrowable)exc);
    (*env)->DeleteLocalRef(env, exc);
}

int kurer__jni_cstr(JNIEnv *env, jbyteArray a, int may_be_null, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (a == NULL)
        return may_be_null ? 0 : KURER_EINVAL;
    jsize n = (*env)->GetArrayLength(env, a);
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return KURER_ENOMEM;
    (*env)->GetByteArrayRegion(env, a, 0, n, (jbyte *)s);
    if ((*env)->ExceptionCheck(env)) {
        free(s);
        return KURER__JNI_PENDING;
    }
    s[n] = '\0';
    if (memchr(s, '\0', (size_t)n) != NULL) { /* the C API takes NUL-terminated text */
        kurer__jni_cstr_free(s, (size_t)n);
        return KURER_EINVAL;
    }
    *out = s;
    *len = (size_t)n;
    return 0;
}

void kurer__jni_cstr_free(char *s, size_t len)
{
    if (s == NULL)
        return;
    kurer__jni_wipe(s, len);
    free(s);
}

jbyteArray kurer__jni_bytes(JNIEnv *env, const void *p, size_t n)
{
    if (n > INT32_MAX) {
        kurer__jni_throw(env, KURER_ELIMIT, NULL);
        return NULL;
    }
    jbyteArray a = (*env)->NewByteArray(env, (jsize)n);
    if (a == NULL)
        return NULL;
    (*env)->SetByteArrayRegion(env, a, 0, (jsize)n, (const jbyte *)p);
    if ((*env)->ExceptionCheck(env)) {
        (*env)->DeleteLocalRef(env, a);
        return NULL;
    }
    return a;
}

jstring kurer__jni_string(JNIEnv *env, const char *s)
{
    jbyteArray b = kurer__jni_bytes(env, s, strlen(s));
    if (b == NULL)
        return NULL;
    jstring r = (*env)->CallStaticObjectMethod(env, kurer__jni.kurer_cls, kurer__jni.from_utf8, b);
    (*env)->DeleteLocalRef(env, b);
    if ((*env)->ExceptionCheck(env)) {
        if (r != NULL)
            (*env)->DeleteLocalRef(env, r);
        return NULL;
    }
    return r;
}
