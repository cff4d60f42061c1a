#include "kurer/util.h"
#include "kurer/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void kurer_hex_encode(char *out, const void *in, size_t n)
{
    const uint8_t *p = in;
    for (size_t i = 0; i < n; i++) {
        /* Branch-free nibble to digit: c + 87 for a..f, c + 48 for 0..9. */
        unsigned hi = p[i] >> 4, lo = p[i] & 0xf;
        out[2 * i] = (char)(87U + hi + (((hi - 10U) >> 8) & ~38U));
        out[2 * i + 1] = (char)(87U + lo + (((lo - 10U) >> 8) & ~38U));
    }
    out[2 * n] = '\0';
}

/* The value of a hex digit, or -1, without branches on the digit (hex may carry keys). Each
 * range test yields an all-ones mask when c is in the range. */
static int hex_nibble(int c)
{
    int digit = ((('0' - 1 - c) & (c - ('9' + 1))) >> 8) & (c - '0' + 1);
    int lower = ((('a' - 1 - c) & (c - ('f' + 1))) >> 8) & (c - 'a' + 11);
    int upper = ((('A' - 1 - c) & (c - ('F' + 1))) >> 8) & (c - 'A' + 11);
    return (digit | lower | upper) - 1;
}

int kurer_hex_decode(void *out, size_t n, const char *hex)
{
    uint8_t *o = out;
    int bad = 0;
    if (hex == NULL || strlen(hex) != 2 * n) {
        memset(out, 0, n);
        return KURER_EMALFORMED;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
        bad |= (hi < 0) | (lo < 0);
        o[i] = (uint8_t)((hi & 0xf) << 4 | (lo & 0xf));
    }
    if (bad) {
        kurer_wipe(out, n);
        return KURER_EMALFORMED;
    }
    return 0;
}

int64_t kurer_time_unix(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

uint64_t kurer_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t kurer_time_mono_ms(void)
{
    return kurer_time_mono_ns() / 1000000ULL;
}

void kurer_time_format(char *out, size_t outlen, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outlen, "%lld", (long long)t);
}

int kurer_file_read(const char *path, size_t max, uint8_t **data, size_t *len)
{
    int fd, rc = 0;
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;

    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? KURER_ENOENT : errno == EACCES ? KURER_EPERM : KURER_EIO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = KURER_EIO;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = KURER_ELIMIT;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = KURER_ENOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = KURER_EIO;
            goto out;
        }
        got += (size_t)n;
    }
    buf[got] = 0;
    *data = buf;
    *len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int kurer_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? 0 : KURER_ENOENT;
}

int kurer_path_join(char *out, size_t outlen, const char *dir, const char *name)
{
    int n = snprintf(out, outlen, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= outlen ? KURER_ELIMIT : 0;
}

int kurer_file_write(const char *path, const void *data, size_t len, unsigned mode, int overwrite)
{
    char tmp[4096], dirbuf[4096];
    const uint8_t *p = data;
    int fd = -1, rc = 0;
    size_t off = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return KURER_ELIMIT;
    if (!overwrite && kurer_file_exists(path) == 0)
        return KURER_EEXIST;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return errno == EACCES ? KURER_EPERM : errno == ENOENT ? KURER_ENOENT : KURER_EIO;
    if (fchmod(fd, (mode_t)mode) != 0) {
        /* FAT and similar file systems cannot hold Unix permissions: say so, not "I/O". */
        rc = errno == EPERM || errno == ENOSYS || errno == EOPNOTSUPP ? KURER_EUNSUPPORTED
                                                                      : KURER_EIO;
        goto out;
    }
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = KURER_EIO;
            goto out;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        rc = KURER_EIO;
        goto out;
    }
    close(fd);
    fd = -1;
    if (!overwrite) {
        /* link() fails if the target appeared meanwhile: no silent overwrite in a race. */
        if (link(tmp, path) != 0) {
            if (errno == EEXIST) {
                rc = KURER_EEXIST;
                goto out;
            }
            if (errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS) {
                rc = KURER_EIO;
                goto out;
            }
            /* A file system without hard links (vfat on a USB stick): check, then rename. The
             * window between the two is the price; the check above already refused the usual
             * case. */
            if (kurer_file_exists(path) == 0) {
                rc = KURER_EEXIST;
                goto out;
            }
            if (rename(tmp, path) != 0) {
                rc = KURER_EIO;
                goto out;
            }
        } else {
            unlink(tmp);
        }
    } else if (rename(tmp, path) != 0) {
        rc = KURER_EIO;
        goto out;
    }
    snprintf(dirbuf, sizeof(dirbuf), "%s", path);
    fd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        (void)fsync(fd);
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int kurer_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    *out = 0;
    if (s == NULL || *s == '\0')
        return KURER_EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return KURER_EINVAL;
        unsigned d = (unsigned)(*s - '0');
        /* d > max first: max - d would wrap and let any digit through. */
        if (d > max || v > (max - d) / 10)
            return KURER_ELIMIT;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
