/* Classification level names: English and Danish markings, and the parser that refuses the levels
 * the system is not accredited for. */
#include "kurer/level.h"

#include <stddef.h>
#include <strings.h>

const char *kurer_level_name(int level)
{
    switch (level) {
    case KURER_LEVEL_UNCLASSIFIED:
        return "UNCLASSIFIED";
    case KURER_LEVEL_RESTRICTED:
        return "RESTRICTED";
    case KURER_LEVEL_CONFIDENTIAL:
        return "CONFIDENTIAL";
    }
    return "INVALID";
}

const char *kurer_level_name_da(int level)
{
    switch (level) {
    case KURER_LEVEL_UNCLASSIFIED:
        return "IKKE KLASSIFICERET";
    case KURER_LEVEL_RESTRICTED:
        return "TIL TJENESTEBRUG";
    case KURER_LEVEL_CONFIDENTIAL:
        return "FORTROLIGT";
    }
    return "UGYLDIG";
}

int kurer_level_parse(const char *s, kurer_level *out)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {
        {"UNCLASSIFIED", 1},     {"IKKE KLASSIFICERET", 1}, {"IKKE_KLASSIFICERET", 1},
        {"RESTRICTED", 2},       {"TIL TJENESTEBRUG", 2},   {"TIL_TJENESTEBRUG", 2},
        {"CONFIDENTIAL", 3},     {"FORTROLIGT", 3},         {"SECRET", 4},
        {"HEMMELIGT", 4},        {"TOP_SECRET", 5},         {"TOP SECRET", 5},
        {"YDERST HEMMELIGT", 5}, {"YDERST_HEMMELIGT", 5},
    };
    *out = KURER_LEVEL_UNCLASSIFIED;
    if (s == NULL)
        return KURER_EINVAL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            if (names[i].level > KURER_LEVEL_CONFIDENTIAL)
                return KURER_ECLEARANCE;
            *out = (kurer_level)names[i].level;
            return 0;
        }
    }
    return KURER_EINVAL;
}
