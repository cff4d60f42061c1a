/* What kurer_create made, undone when it fails (home.h): a failed creation leaves the folder as
 * it was. Only the files creation makes are considered, and only those that were not there
 * before; a folder that existed keeps everything else (and gets its mode back), a folder made
 * by the creation is removed once empty. kurer_create (kurer.h) is kurer__home_create (home.c)
 * between the two. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "home.h"

/* Every name kurer_create writes in the home (the store with SQLite's side files, the KDF
 * record, the request, their temporary files, the lock). */
static int undo_name(size_t i, char *out, size_t n)
{
    static const char *const fixed[] = {KURER__STORE_DB,        KURER__STORE_DB "-wal",
                                        KURER__STORE_DB "-shm", KURER__STORE_DB "-journal",
                                        KURER__STORE_KDF,       KURER__STORE_KDF_NEW,
                                        KURER__CSR_FILE,        ".lock"};
    size_t nf = sizeof(fixed) / sizeof(fixed[0]);
    if (i < nf)
        return snprintf(out, n, "%s", fixed[i]) < (int)n ? 1 : -1;
    if (i == nf)
        return snprintf(out, n, "%s.tmp.%ld", KURER__CSR_FILE, (long)getpid()) < (int)n ? 1 : -1;
    if (i == nf + 1)
        return snprintf(out, n, "%s.tmp.%ld", KURER__STORE_KDF, (long)getpid()) < (int)n ? 1 : -1;
    return 0;
}

void kurer__home_undo_begin(kurer__home_undo *u, const char *home)
{
    struct stat st;
    memset(u, 0, sizeof(u[0]));
    if (home == NULL || strlen(home) == 0 || strlen(home) >= sizeof(u->home))
        return; /* refused before anything is made */
    memcpy(u->home, home, strlen(home) + 1);
    u->armed = 1;
    if (lstat(home, &st) != 0) {
        u->made_dir = errno == ENOENT;
        return;
    }
    u->mode = st.st_mode & 07777;
    char name[64], path[KURER__HOME_PATH_MAX + 80];
    for (size_t i = 0; i < KURER__UNDO_NAMES && undo_name(i, name, sizeof(name)) == 1; i++) {
        snprintf(path, sizeof(path), "%s/%s", home, name);
        u->had[i] = lstat(path, &st) == 0;
    }
}

void kurer__home_undo_run(const kurer__home_undo *u)
{
    struct stat st;
    char name[64], path[KURER__HOME_PATH_MAX + 80];
    if (!u->armed || lstat(u->home, &st) != 0 || !S_ISDIR(st.st_mode))
        return;
    for (size_t i = 0; i < KURER__UNDO_NAMES && undo_name(i, name, sizeof(name)) == 1; i++) {
        snprintf(path, sizeof(path), "%s/%s", u->home, name);
        if (!u->had[i] && lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            unlink(path);
    }
    if (u->made_dir)
        (void)rmdir(u->home); /* fails, and keeps it, if anyone else put a file there */
    else if ((st.st_mode & 07777) != u->mode)
        (void)chmod(u->home, u->mode);
}

int kurer_create(const kurer_create_options *o, const char *pass, size_t pass_len,
                 const uint8_t *key, kurer **out)
{
    kurer__home_undo u;
    *out = NULL;
    kurer__home_undo_begin(&u, o != NULL ? o->home : NULL);
    int rc = kurer__home_create(o, pass, pass_len, key, out);
    if (rc != 0) /* (the failed handle is closed by now: its files can go) */
        kurer__home_undo_run(&u);
    return rc;
}
