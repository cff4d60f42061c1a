/* Nullability of the public API's pointers (kurer.h and the headers it includes, mobile.h).
 * A public header: self-contained, installed with kurer.h.
 *
 * Between KURER_ASSUME_NONNULL_BEGIN and KURER_ASSUME_NONNULL_END every pointer is non-NULL
 * unless marked KURER_NULLABLE (a pointer to a pointer, and an array parameter, say both
 * explicitly: KURER_NONNULL). With clang these are its nullability annotations: Swift imports
 * kurer * as OpaquePointer rather than OpaquePointer!, Objective-C sees _Nullable, and clang
 * warns (-Wnonnull) where a NULL is passed for a non-NULL parameter. With other compilers they
 * are empty. They are a contract, not a check: the library still refuses NULL where it can
 * (KURER_EINVAL). */
#ifndef KURER_ANNOT_H
#define KURER_ANNOT_H

#if defined(__clang__)
#if __has_feature(nullability)
#define KURER_NULLABLE _Nullable
#define KURER_NONNULL  _Nonnull
/* _Nullable is a clang extension: the push keeps -pedantic quiet about our headers only. */
#define KURER_ASSUME_NONNULL_BEGIN                                                                 \
    _Pragma("clang diagnostic push")                                                               \
        _Pragma("clang diagnostic ignored \"-Wnullability-extension\"")                            \
            _Pragma("clang assume_nonnull begin")
#define KURER_ASSUME_NONNULL_END _Pragma("clang assume_nonnull end") _Pragma("clang diagnostic pop")
#endif
#endif

#ifndef KURER_NULLABLE
#define KURER_NULLABLE
#define KURER_NONNULL
#define KURER_ASSUME_NONNULL_BEGIN
#define KURER_ASSUME_NONNULL_END
#endif

#endif
