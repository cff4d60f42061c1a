/* Methods on the home itself: backup (docs/client.md, "Backup and restore"). */
#include <string.h>

#include "rpc.h"

static const char *const backup_params[] = {"file", NULL};

/* backup {file}: {file} once the encrypted copy is written (kurer_backup: FILE.tmp, fsync,
 * rename, mode 0600). file must be an absolute path: the daemon's working folder is not the
 * client's. */
static int m_backup(rpc_ctx *c, json_t *params, json_t **result)
{
    const char *file;
    int rc;
    if ((rc = rpc_only(params, backup_params)) || (rc = rpc_str(params, "file", 1, &file)))
        return rc;
    if (file[0] != '/')
        return usage_error("parameter 'file' must be an absolute path");
    if ((rc = kurer_backup(c->k, file)) != 0)
        return refuse(rc, "backup not written: %s: %s", file, kurer_strerror(rc));
    *result = json_pack("{s:s}", "file", file);
    return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
}

const rpc_method rpc_home_methods[] = {
    {"backup", m_backup},
    {NULL, NULL},
};
