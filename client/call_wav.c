/* WAV files for calls driven from files (call_audio.h): RIFF/WAVE with 16-bit PCM, 48 kHz, mono.
 * The header is read through the bounds-checked reader (kurer/buf.h) from at most
 * WAV_HEADER_MAX bytes; every chunk must lie inside the file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "call_audio.h"
#include "kurer/buf.h"

#define WAV_HEADER_MAX (64 * 1024) /* the data chunk must start within this */
#define WAV_MAX_CHUNKS 64          /* chunks before the data chunk */
#define WAV_FMT_MAX    1024

struct kurer__wav_reader {
    FILE *f;
    kurer__wav_info info;
    uint64_t left; /* samples not read yet */
};

struct kurer__wav_writer {
    FILE *f;
    uint64_t samples;
    int failed;
};

__attribute__((format(printf, 3, 4))) static void say(char *why, size_t why_len, const char *fmt,
                                                      ...)
{
    va_list ap;
    if (why == NULL || why_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char *format_name(uint16_t format)
{
    switch (format) {
    case 1:
        return "PCM";
    case 3:
        return "IEEE float";
    case 6:
        return "A-law";
    case 7:
        return "mu-law";
    case 0x11:
        return "IMA ADPCM";
    case 0x55:
        return "MP3";
    default:
        return NULL;
    }
}

/* The fmt chunk's fields; the extensible format's sub-format replaces the format tag. */
static int parse_fmt(const uint8_t *p, size_t n, kurer__wav_info *info, char *why, size_t why_len)
{
    static const uint8_t guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                          0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71};
    uint16_t block_align;
    uint32_t byte_rate;
    if (n < 16) {
        say(why, why_len, "the WAV file's fmt chunk is %zu bytes, shorter than 16", n);
        return KURER_EMALFORMED;
    }
    info->format = le16(p);
    info->channels = le16(p + 2);
    info->rate = le32(p + 4);
    byte_rate = le32(p + 8);
    block_align = le16(p + 12);
    info->bits = le16(p + 14);
    if (info->format == 0xfffe) {
        /* WAVE_FORMAT_EXTENSIBLE: cbSize, valid bits, channel mask, then the sub-format GUID
         * whose first two bytes are the format tag. */
        if (n < 40 || le16(p + 16) < 22 || memcmp(p + 26, guid_tail, sizeof guid_tail) != 0) {
            say(why, why_len, "the WAV file's extensible fmt chunk is malformed");
            return KURER_EMALFORMED;
        }
        info->format = le16(p + 24);
    }
    if (info->channels == 0 || info->rate == 0 || info->bits == 0) {
        say(why, why_len, "the WAV file's fmt chunk says 0 channels, 0 Hz or 0 bits");
        return KURER_EMALFORMED;
    }
    if (info->format == 1 && (block_align != (uint32_t)info->channels * ((info->bits + 7u) / 8u) ||
                              byte_rate != (uint64_t)info->rate * block_align)) {
        say(why, why_len, "the WAV file's fmt chunk is inconsistent (block align %u, %u bytes/s)",
            block_align, byte_rate);
        return KURER_EMALFORMED;
    }
    return 0;
}

static int check_format(const kurer__wav_info *info, char *why, size_t why_len)
{
    const char *name = format_name(info->format);
    char fmt[32];
    if (info->format == 1 && info->bits == 16 && info->rate == KURER__AUDIO_RATE &&
        info->channels == 1)
        return 0;
    if (name != NULL)
        snprintf(fmt, sizeof fmt, "%s", name);
    else
        snprintf(fmt, sizeof fmt, "format 0x%04x", info->format);
    say(why, why_len,
        "the file is %u Hz, %u channel%s, %u-bit %s; calls need 48000 Hz, 1 channel (mono), "
        "16-bit PCM",
        info->rate, info->channels, info->channels == 1 ? "" : "s", info->bits, fmt);
    return KURER_EUNSUPPORTED;
}

/* The chunks after "RIFF" size "WAVE", up to and including the data chunk's header. */
static int parse_chunks(kurer_reader *r, size_t buf_len, uint64_t file_len, kurer__wav_info *info,
                        char *why, size_t why_len)
{
    int have_fmt = 0, rc;
    for (int i = 0; i < WAV_MAX_CHUNKS; i++) {
        const uint8_t *hdr, *body;
        uint64_t off = buf_len - kurer_reader_remaining(r), size;
        if (kurer_reader_view(r, 8, &hdr) != 0) {
            say(why, why_len, "the WAV file ends before its data chunk");
            return KURER_ETRUNC;
        }
        size = le32(hdr + 4);
        if (off + 8 + size > file_len) {
            say(why, why_len, "the WAV file's \"%.4s\" chunk (%llu bytes) runs past its end",
                (const char *)hdr, (unsigned long long)size);
            return KURER_EMALFORMED;
        }
        if (memcmp(hdr, "data", 4) == 0) {
            if (!have_fmt) {
                say(why, why_len, "the WAV file has no fmt chunk before its data");
                return KURER_EMALFORMED;
            }
            rc = check_format(info, why, why_len);
            if (rc != 0)
                return rc;
            if (size % 2 != 0) {
                say(why, why_len, "the WAV file's data chunk has an odd length");
                return KURER_EMALFORMED;
            }
            info->data_offset = off + 8;
            info->samples = size / 2;
            return 0;
        }
        if (memcmp(hdr, "fmt ", 4) == 0) {
            if (have_fmt || size > WAV_FMT_MAX) {
                say(why, why_len, "the WAV file has a second or oversized fmt chunk");
                return KURER_EMALFORMED;
            }
            if (kurer_reader_view(r, (size_t)size, &body) != 0) {
                say(why, why_len, "the WAV file ends inside its fmt chunk");
                return KURER_ETRUNC;
            }
            rc = parse_fmt(body, (size_t)size, info, why, why_len);
            if (rc != 0)
                return rc;
            have_fmt = 1;
            size = 0; /* consumed; only the pad byte is left */
        }
        /* Skip the chunk (LIST, fact, ...) and its pad byte to an even length. */
        if (kurer_reader_skip(r, (size_t)size + (le32(hdr + 4) & 1)) != 0) {
            say(why, why_len, "the WAV file's data chunk does not start in its first %d KiB",
                WAV_HEADER_MAX / 1024);
            return KURER_ETRUNC;
        }
    }
    say(why, why_len, "the WAV file has more than %d chunks before its data", WAV_MAX_CHUNKS);
    return KURER_EMALFORMED;
}

int kurer__wav_parse(const uint8_t *buf, size_t len, uint64_t file_len, kurer__wav_info *info,
                     char *why, size_t why_len)
{
    kurer_reader r;
    const uint8_t *riff;
    int rc;
    say(why, why_len, "%s", "");
    if (info == NULL || (buf == NULL && len > 0) || len > file_len)
        return KURER_EINVAL;
    memset(info, 0, sizeof *info);
    kurer_reader_init(&r, buf, len);
    if (kurer_reader_view(&r, 12, &riff) != 0) {
        say(why, why_len, "the file is too short to be a WAV file");
        return KURER_ETRUNC;
    }
    if (memcmp(riff, "RIFF", 4) != 0 || memcmp(riff + 8, "WAVE", 4) != 0) {
        say(why, why_len, "the file is not a WAV file (no RIFF/WAVE header)");
        return KURER_EMALFORMED;
    }
    if ((uint64_t)le32(riff + 4) + 8 > file_len) {
        say(why, why_len, "the WAV file's RIFF size (%u) runs past its end", le32(riff + 4));
        return KURER_EMALFORMED;
    }
    rc = parse_chunks(&r, len, file_len, info, why, why_len);
    if (rc == 0 && info->samples > KURER__WAV_MAX_SAMPLES) {
        say(why, why_len, "the WAV file is longer than an hour");
        rc = KURER_ELIMIT;
    }
    if (rc != 0)
        memset(info, 0, sizeof *info);
    return rc;
}

/* ---- reading ---- */

int kurer__wav_open(const char *path, kurer__wav_reader **out, char *why, size_t why_len)
{
    kurer__wav_reader *r = NULL;
    uint8_t *head = NULL;
    struct stat st;
    size_t n;
    int rc;
    if (out == NULL || path == NULL)
        return KURER_EINVAL;
    *out = NULL;
    r = calloc(1, sizeof *r);
    head = malloc(WAV_HEADER_MAX);
    if (r == NULL || head == NULL) {
        rc = KURER_ENOMEM;
        goto out;
    }
    r->f = fopen(path, "rbe");
    if (r->f == NULL) {
        say(why, why_len, "cannot open %s: %s", path, strerror(errno));
        rc = errno == ENOENT ? KURER_ENOENT : KURER_EIO;
        goto out;
    }
    if (fstat(fileno(r->f), &st) != 0 || !S_ISREG(st.st_mode)) {
        say(why, why_len, "%s is not a regular file", path);
        rc = KURER_EIO;
        goto out;
    }
    n = fread(head, 1, WAV_HEADER_MAX, r->f);
    if (ferror(r->f)) {
        say(why, why_len, "cannot read %s", path);
        rc = KURER_EIO;
        goto out;
    }
    rc = kurer__wav_parse(head, n, (uint64_t)st.st_size, &r->info, why, why_len);
    if (rc == 0 && fseeko(r->f, (off_t)r->info.data_offset, SEEK_SET) != 0)
        rc = KURER_EIO;
    if (rc == 0) {
        r->left = r->info.samples;
        *out = r;
        r = NULL;
    }
out:
    free(head);
    kurer__wav_close(r);
    return rc;
}

long kurer__wav_read(kurer__wav_reader *r, int16_t *pcm, size_t n)
{
    uint8_t buf[2 * 960];
    size_t done = 0;
    while (done < n && r->left > 0) {
        size_t want = n - done, got;
        if (want > sizeof buf / 2)
            want = sizeof buf / 2;
        if (want > r->left)
            want = (size_t)r->left;
        got = fread(buf, 2, want, r->f);
        for (size_t i = 0; i < got; i++)
            pcm[done + i] = (int16_t)le16(buf + 2 * i);
        done += got;
        r->left -= got;
        if (got < want)
            return ferror(r->f) ? KURER_EIO : (long)done; /* the file shrank under us */
    }
    return (long)done;
}

const kurer__wav_info *kurer__wav_reader_info(const kurer__wav_reader *r)
{
    return &r->info;
}

void kurer__wav_close(kurer__wav_reader *r)
{
    if (r == NULL)
        return;
    if (r->f != NULL)
        fclose(r->f);
    free(r);
}

/* ---- writing ---- */

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v);
    put16(p + 2, v >> 16);
}

/* The 44-byte canonical header for n samples. */
static void header(uint8_t h[44], uint64_t n)
{
    uint32_t data = (uint32_t)(2 * n);
    memcpy(h, "RIFF", 4);
    put32(h + 4, 36 + data);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put16(h + 20, 1);
    put16(h + 22, 1);
    put32(h + 24, KURER__AUDIO_RATE);
    put32(h + 28, 2 * KURER__AUDIO_RATE);
    put16(h + 32, 2);
    put16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put32(h + 40, data);
}

int kurer__wav_create(const char *path, kurer__wav_writer **out)
{
    kurer__wav_writer *w;
    uint8_t h[44];
    int fd;
    if (out == NULL || path == NULL)
        return KURER_EINVAL;
    *out = NULL;
    w = calloc(1, sizeof *w);
    if (w == NULL)
        return KURER_ENOMEM;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        free(w);
        return errno == EACCES || errno == ELOOP ? KURER_EPERM : KURER_EIO;
    }
    /* A file that existed keeps its inode: make it ours alone too (a call's audio is content). */
    if (fchmod(fd, 0600) != 0) {
        close(fd);
        free(w);
        return KURER_EPERM;
    }
    w->f = fdopen(fd, "wb");
    if (w->f == NULL) {
        close(fd);
        free(w);
        return KURER_EIO;
    }
    header(h, 0);
    if (fwrite(h, 1, sizeof h, w->f) != sizeof h) {
        fclose(w->f);
        free(w);
        return KURER_EIO;
    }
    *out = w;
    return 0;
}

int kurer__wav_write(kurer__wav_writer *w, const int16_t *pcm, size_t n)
{
    uint8_t buf[2 * 960];
    size_t done = 0;
    if (w->failed)
        return KURER_EIO;
    if (n > KURER__WAV_MAX_SAMPLES - w->samples)
        return KURER_ELIMIT;
    while (done < n) {
        size_t k = n - done > 960 ? 960 : n - done;
        for (size_t i = 0; i < k; i++)
            put16(buf + 2 * i, (uint16_t)pcm[done + i]);
        if (fwrite(buf, 2, k, w->f) != k) {
            w->failed = 1;
            return KURER_EIO;
        }
        done += k;
    }
    w->samples += n;
    return 0;
}

int kurer__wav_finish(kurer__wav_writer *w)
{
    uint8_t h[44];
    int rc = 0;
    if (w == NULL)
        return 0;
    header(h, w->samples);
    if (w->failed || fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->f) != sizeof h ||
        fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
        rc = KURER_EIO;
    if (fclose(w->f) != 0)
        rc = KURER_EIO;
    free(w);
    return rc;
}
