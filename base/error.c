#include "kurer/error.h"

const char *kurer_strerror(int err)
{
    switch (err) {
#define KURER__ERR_MSG(name, value, cat, msg)                                                      \
    case value:                                                                                    \
        return msg;
        KURER_ERRORS(KURER__ERR_MSG)
#undef KURER__ERR_MSG
    }
    return "unknown error";
}

const char *kurer_err_name(int err)
{
    switch (err) {
#define KURER__ERR_NAME(name, value, cat, msg)                                                     \
    case value:                                                                                    \
        return #name;
        KURER_ERRORS(KURER__ERR_NAME)
#undef KURER__ERR_NAME
    }
    return "EUNKNOWN";
}

kurer_error_category kurer_err_category(int err)
{
    switch (err) {
#define KURER__ERR_CAT(name, value, cat, msg)                                                      \
    case value:                                                                                    \
        return KURER_CAT_##cat;
        KURER_ERRORS(KURER__ERR_CAT)
#undef KURER__ERR_CAT
    }
    return KURER_CAT_NONE;
}

int kurer_err_known(int err)
{
    switch (err) {
#define KURER__ERR_KNOWN(name, value, cat, msg)                                                    \
    case value:                                                                                    \
        return 1;
        KURER_ERRORS(KURER__ERR_KNOWN)
#undef KURER__ERR_KNOWN
    }
    return 0;
}
