/* Attachments (attach.h): sealing with crypto/blobseal (only crypto/ touches libsodium), the
 * transfers in blob.c, and the careful saving of what peers send. */
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "engine.h"
#include "home.h"
#include "kurer/blobseal.h"
#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/text.h"
#include "kurer/util.h"
#include "net.h"

#define SAFE_NAME_MAX 200
#define SUFFIX_TRIES  1000

/* An anonymous temporary file in folder (created and unlinked at once): nothing is left behind
 * whatever happens to the process. */
static int anon_tmp(const char *folder, int *fd)
{
    char path[KURER__HOME_PATH_MAX + 32];
    if (snprintf(path, sizeof(path), "%s/.kurer-blob-XXXXXX", folder) >= (int)sizeof(path))
        return KURER_ELIMIT;
    *fd = mkstemp(path);
    if (*fd < 0)
        return KURER_EIO;
    (void)unlink(path);
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return KURER_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return KURER_EIO;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static const char *content_type_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".txt", "text/plain"},      {".pdf", "application/pdf"}, {".png", "image/png"},
        {".jpg", "image/jpeg"},      {".jpeg", "image/jpeg"},     {".csv", "text/csv"},
        {".zip", "application/zip"}, {".xml", "application/xml"}, {".json", "application/json"}};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* Seals the file in into out (a temporary file): the pointer's key, size and digest. */
static int seal_file(int in, uint64_t size, int out, kurer_attachment *a)
{
    uint8_t header[KURER_SEAL_HEADER_LEN];
    kurer_blobseal *s = NULL;
    uint8_t *pt = malloc(KURER_SEAL_CHUNK), *ct = malloc(KURER_SEAL_SEALED_CHUNK);
    int rc = pt == NULL || ct == NULL ? KURER_ENOMEM : 0;
    kurer_random(a->key, sizeof(a->key));
    if (rc == 0)
        rc = kurer_blobseal_push_new(a->key, size, header, &s);
    if (rc == 0)
        rc = write_all(out, header, sizeof(header));
    for (size_t n = 0; rc == 0 && s != NULL;) {
        n = kurer_blobseal_next_len(s);
        size_t len = 0;
        if ((rc = read_full(in, pt, n)) != 0)
            break; /* shorter than it was: changed while we read it */
        if ((rc = kurer_blobseal_push(s, pt, n, ct, &len)) == 0)
            rc = write_all(out, ct, len);
        if (kurer_blobseal_next_len(s) == 0)
            break;
    }
    if (rc == 0)
        rc = kurer_blobseal_digest(s, a->digest);
    a->size = size;
    kurer_blobseal_free(s);
    if (pt != NULL)
        kurer_memzero(pt, KURER_SEAL_CHUNK);
    free(pt);
    free(ct);
    return rc;
}

/* One file sealed and uploaded: the pointer a, its names in names (a's strings point there). */
static int prepare_one(kurer *k, const char *path, const char *given, uint64_t deadline,
                       kurer_attachment *a, char *name, size_t name_cap)
{
    const char *base = strrchr(path, '/');
    base = given != NULL ? given : base != NULL ? base + 1 : path;
    if (*base == '\0' || strlen(base) > KURER_FILE_NAME_MAX || kurer_utf8_check(base) != 0)
        return KURER_EINVAL;
    snprintf(name, name_cap, "%s", base);
    memset(a, 0, sizeof(*a));
    a->file_name = name;
    a->content_type = content_type_of(name);
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno == ENOENT ? KURER_ENOENT : errno == EACCES ? KURER_EPERM : KURER_EIO;
    struct stat sb;
    int out = -1, rc = 0;
    if (fstat(in, &sb) != 0 || !S_ISREG(sb.st_mode))
        rc = KURER_EINVAL; /* a regular file only */
    else if ((uint64_t)sb.st_size > KURER_BLOB_SIZE_MAX ||
             kurer_seal_size((uint64_t)sb.st_size) > KURER_BLOB_SIZE_MAX)
        rc = KURER_ELIMIT;
    if (rc == 0)
        rc = anon_tmp(k->home, &out);
    if (rc == 0)
        rc = seal_file(in, (uint64_t)sb.st_size, out, a);
    close(in);
    if (rc == 0)
        rc = kurer__blob_upload(k, out, kurer_seal_size(a->size), a->blob_id, deadline);
    if (out >= 0)
        close(out);
    if (rc == 0)
        kurer_log(KURER_LOG_INFO, "client", "attachment_uploaded",
                  (kurer_log_field[]){KURER_LOG_INT("bytes", a->size)}, 1);
    return rc;
}

int kurer__attach_upload(kurer *k, const char *const *paths, const char *const *given, size_t n,
                         uint64_t deadline, kurer_attachment *atts,
                         char (*names)[KURER_FILE_NAME_MAX + 1])
{
    int rc = 0;
    memset(atts, 0, n * sizeof(*atts));
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = prepare_one(k, paths[i], given != NULL ? given[i] : NULL, deadline, &atts[i], names[i],
                         KURER_FILE_NAME_MAX + 1);
    return rc;
}

int kurer__attach_queue(kurer *k, const char *to, int level, const char *text,
                        const char *const *paths, size_t n, uint64_t deadline, kurer_refusal *why,
                        int64_t *message_id)
{
    return kurer__attach_queue_named(k, to, level, text, paths, NULL, n, deadline, why, message_id);
}

int kurer__attach_queue_named(kurer *k, const char *to, int level, const char *text,
                              const char *const *paths, const char *const *given, size_t n,
                              uint64_t deadline, kurer_refusal *why, int64_t *message_id)
{
    kurer_attachment atts[KURER_ATTACHMENTS_MAX];
    char(*names)[KURER_FILE_NAME_MAX + 1] = NULL;
    kurer_refusal pre;
    if (n == 0 || n > KURER_ATTACHMENTS_MAX || paths == NULL)
        return KURER_EINVAL;
    /* the refusals that need no network come before any upload */
    int rc = kurer_check_send(k, to, level, &pre);
    if (rc != 0 && (pre.by == KURER_REFUSED_BY_SENDER || pre.by == KURER_REFUSED_BY_CEILING ||
                    pre.by == KURER_REFUSED_BY_NONE)) {
        if (why != NULL)
            *why = pre;
        return rc;
    }
    if ((names = calloc(n, sizeof(*names))) == NULL)
        return KURER_ENOMEM;
    if ((rc = kurer__net_wait_online(k, deadline, 0)) == 0)
        rc = kurer__engine_prepare(k, to, deadline, why);
    if (rc == 0)
        rc = kurer__attach_upload(k, paths, given, n, deadline, atts, names);
    if (rc == 0)
        rc = kurer__home_queue_atts(k, to, level, text, atts, n, why, message_id);
    kurer_memzero(atts, sizeof(atts));
    free(names);
    return rc;
}

/* ---- receiving ---- */

void kurer__attach_safe_name(const char *file_name, char *out, size_t cap)
{
    const char *base = strrchr(file_name, '/');
    base = base != NULL ? base + 1 : file_name;
    size_t n = strlen(base);
    int ok = n > 0 && n <= SAFE_NAME_MAX && base[0] != '.' && kurer_utf8_check(base) == 0;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)base[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            ok = 0;
    }
    snprintf(out, cap, "%s", ok ? base : "attachment");
}

/* Opens the sealed blob in fd (size sealed bytes, read from offset 0) into out. */
static int open_sealed(int fd, const kurer_attachment *a, int out)
{
    uint8_t header[KURER_SEAL_HEADER_LEN];
    kurer_blobseal *s = NULL;
    uint8_t *ct = malloc(KURER_SEAL_SEALED_CHUNK), *pt = malloc(KURER_SEAL_CHUNK);
    int rc = ct == NULL || pt == NULL ? KURER_ENOMEM : 0;
    if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0)
        rc = KURER_EIO;
    if (rc == 0)
        rc = read_full(fd, header, sizeof(header));
    if (rc == 0)
        rc = kurer_blobseal_pull_new(a->key, a->size, kurer_seal_size(a->size), header, &s);
    while (rc == 0) {
        size_t n = kurer_blobseal_next_len(s), len = 0;
        if (n == 0)
            break;
        if ((rc = read_full(fd, ct, n)) == 0 && (rc = kurer_blobseal_pull(s, ct, n, pt, &len)) == 0)
            rc = write_all(out, pt, len);
    }
    if (rc == 0)
        rc = kurer_blobseal_verify(s, a->digest);
    kurer_blobseal_free(s);
    if (pt != NULL)
        kurer_memzero(pt, KURER_SEAL_CHUNK);
    free(pt);
    free(ct);
    return rc;
}

/* name with -i before its extension (i > 0), or as it is (i == 0). */
static int suffixed(char *dst, size_t cap, const char *dir, const char *name, int i)
{
    const char *dot = strrchr(name, '.');
    int w;
    if (i == 0)
        w = snprintf(dst, cap, "%s/%s", dir, name);
    else if (dot != NULL && dot != name)
        w = snprintf(dst, cap, "%s/%.*s-%d%s", dir, (int)(dot - name), name, i, dot);
    else
        w = snprintf(dst, cap, "%s/%s-%d", dir, name, i);
    return w < 0 || (size_t)w >= cap ? KURER_ELIMIT : 0;
}

/* The checked plaintext file tmp (in dir) gets its name: a link never replaces a file, so an
 * existing name (or a symbolic link there) is skipped for the next suffix. */
static int place(const char *tmp, const char *dir, const char *name, char *path, size_t cap)
{
    for (int i = 0; i < SUFFIX_TRIES; i++) {
        int rc = suffixed(path, cap, dir, name, i);
        if (rc != 0)
            return rc;
        if (link(tmp, path) == 0)
            return 0;
        if (errno != EEXIST)
            return KURER_EIO;
    }
    return KURER_EEXIST;
}

int kurer__attach_save(kurer *k, const kurer__attach_row *row, const char *dir, uint64_t deadline,
                       char *path, size_t cap)
{
    const kurer_attachment *a = &row->a;
    char name[KURER_FILE_NAME_MAX + 1], tmp[KURER__SAVED_PATH_MAX + 32];
    int sealed = -1, out = -1;
    struct stat sb;
    if (a->size > KURER_BLOB_SIZE_MAX || kurer_seal_size(a->size) > KURER_BLOB_SIZE_MAX)
        return KURER_ELIMIT;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return KURER_ENOENT;
    kurer__attach_safe_name(a->file_name, name, sizeof(name));
    if (snprintf(tmp, sizeof(tmp), "%s/.kurer-partial-XXXXXX", dir) >= (int)sizeof(tmp))
        return KURER_ELIMIT;
    int rc = anon_tmp(k->home, &sealed);
    if (rc == 0)
        rc = kurer__blob_download(k, a->blob_id, kurer_seal_size(a->size), sealed, deadline);
    if (rc == 0 && (out = mkstemp(tmp)) < 0)
        rc = KURER_EIO;
    if (rc == 0 && fchmod(out, 0600) != 0)
        rc = KURER_EIO;
    if (rc == 0)
        rc = open_sealed(sealed, a, out);
    if (rc == 0 && fsync(out) != 0)
        rc = KURER_EIO;
    if (rc == 0)
        rc = place(tmp, dir, name, path, cap);
    if (out >= 0) {
        close(out);
        (void)unlink(tmp); /* the plaintext stays only under its final name, if it passed */
    }
    if (sealed >= 0)
        close(sealed);
    if (rc == 0)
        rc = kurer__store_attach_saved(k->st, row->message_rowid, row->idx, path);
    if (rc != 0 && rc != KURER_ETIMEOUT && !kurer__blob_transport(rc))
        kurer_log(KURER_LOG_WARN, "client", "attachment_refused",
                  (kurer_log_field[]){KURER_LOG_STR("reason", kurer_err_name(rc))}, 1);
    return rc;
}
