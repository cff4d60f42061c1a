/* Classification levels: the one vocabulary the certificates (proto/), the policy checks and the
 * public API (kurer.h) share. A public header: self-contained, installed with kurer.h. */
#ifndef KURER_LEVEL_H
#define KURER_LEVEL_H

#include "kurer/error.h"

KURER_ASSUME_NONNULL_BEGIN

/* Only the levels the system is accredited for. SECRET (4) and TOP_SECRET (5) exist on the wire
 * only to be refused with KURER_ECLEARANCE. */
typedef enum kurer_level {
    KURER_LEVEL_UNCLASSIFIED = 1,
    KURER_LEVEL_RESTRICTED = 2,
    KURER_LEVEL_CONFIDENTIAL = 3,
} kurer_level;

/* "UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL"; "INVALID" otherwise. Static strings; any thread. */
KURER_EXPORT const char *kurer_level_name(int level);
/* The Danish marking: "IKKE KLASSIFICERET", "TIL TJENESTEBRUG", "FORTROLIGT"; "UGYLDIG"
 * otherwise. */
KURER_EXPORT const char *kurer_level_name_da(int level);
/* Parses a level name (either language, case-insensitive). SECRET, TOP_SECRET (and HEMMELIGT,
 * YDERST HEMMELIGT) are KURER_ECLEARANCE; anything else is KURER_EINVAL (*out is then
 * KURER_LEVEL_UNCLASSIFIED). */
KURER_EXPORT KURER_MUST_CHECK int kurer_level_parse(const char *s, kurer_level *out);

KURER_ASSUME_NONNULL_END

#endif
