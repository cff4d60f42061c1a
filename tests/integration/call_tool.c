/* call_tool: what the call tests (call_flow.sh) and make demo need around kurer call/answer.
 *   sweep OUT.wav SECONDS F0 F1          a logarithmic tone sweep, 48 kHz mono 16-bit
 *   resample IN.wav OUT.wav              16-bit mono WAV at any rate -> 48 kHz (espeak-ng's)
 *   reference IN.wav REF.wav PACKETS     the codec alone: IN.wav through the call engine's
 *                                        encoder, every packet decoded by a plain libopus
 *                                        decoder into REF.wav; the Opus packets into PACKETS
 *   compare REC.wav REF.wav MIN_FRAMES   REC (what kurer recorded at 0 % loss) equals REF
 *                                        frame for frame once aligned (bit-exact)
 *   scan CAPTURE PACKETS                 no Opus packet (no 16-byte run of one) in CAPTURE
 *   segsnr REC.wav SENT.wav MIN_DB       segmental SNR of REC against SENT, aligned, >= MIN_DB
 *   shim LISTEN UPSTREAM LOSS JITTER SEED CAPTURE
 *                                        a UDP relay in the media path (call_shim.c)
 * Exit 0 on success, 1 when a check fails (with the figures on stdout), 2 on bad usage. */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opus.h>

#include "call_audio.h"
#include "call_tool.h"

#define FRAME KURER__AUDIO_FRAME

int read_wav_any(const char *path, int16_t **pcm, size_t *n, uint32_t *rate)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    uint8_t h[12];
    int rc = -1;
    *pcm = NULL;
    if (fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) != 0 || memcmp(h + 8, "WAVE", 4) != 0)
        goto out;
    uint16_t channels = 0, bits = 0;
    for (;;) {
        uint8_t c[8];
        if (fread(c, 1, 8, f) != 8)
            goto out;
        uint32_t len =
            (uint32_t)c[4] | (uint32_t)c[5] << 8 | (uint32_t)c[6] << 16 | (uint32_t)c[7] << 24;
        if (memcmp(c, "fmt ", 4) == 0) {
            uint8_t fm[16];
            if (len < 16 || fread(fm, 1, 16, f) != 16 || fseek(f, (long)(len - 16), SEEK_CUR))
                goto out;
            channels = (uint16_t)(fm[2] | fm[3] << 8);
            *rate = (uint32_t)fm[4] | (uint32_t)fm[5] << 8 | (uint32_t)fm[6] << 16 |
                    (uint32_t)fm[7] << 24;
            bits = (uint16_t)(fm[14] | fm[15] << 8);
        } else if (memcmp(c, "data", 4) == 0) {
            if (channels != 1 || bits != 16)
                goto out;
            /* espeak-ng writes 0x7fffffff when it streams to a file: the rest of the file */
            *pcm = malloc(len > 1u << 30 ? 1u << 30 : len + 2);
            if (*pcm == NULL)
                goto out;
            *n = fread(*pcm, 2, (len > 1u << 30 ? 1u << 30 : len) / 2, f);
            rc = 0;
            goto out;
        } else if (fseek(f, (long)(len + (len & 1)), SEEK_CUR) != 0) {
            goto out;
        }
    }
out:
    fclose(f);
    return rc;
}

int write_wav(const char *path, const int16_t *pcm, size_t n)
{
    kurer__wav_writer *w = NULL;
    if (kurer__wav_create(path, &w) != 0)
        return -1;
    int rc = kurer__wav_write(w, pcm, n);
    return kurer__wav_finish(w) != 0 || rc != 0 ? -1 : 0;
}

static int cmd_sweep(char **argv)
{
    double secs = atof(argv[1]), f0 = atof(argv[2]), f1 = atof(argv[3]);
    size_t n = (size_t)(secs * 48000);
    if (n == 0 || f0 <= 0 || f1 <= 0)
        return 2;
    int16_t *pcm = calloc(n, sizeof(*pcm));
    if (pcm == NULL)
        return 1;
    double phase = 0, k = log(f1 / f0) / (double)n;
    for (size_t i = 0; i < n; i++) {
        double f = f0 * exp(k * (double)i);
        phase += 2 * M_PI * f / 48000.0;
        double env = i < 2400 ? (double)i / 2400 : i > n - 2400 ? (double)(n - i) / 2400 : 1;
        pcm[i] = (int16_t)lrint(12000.0 * env * sin(phase));
    }
    int rc = write_wav(argv[0], pcm, n);
    free(pcm);
    return rc == 0 ? 0 : 1;
}

/* Linear interpolation after a 4-tap box filter when downsampling; enough for speech. */
static int cmd_resample(char **argv)
{
    int16_t *in = NULL;
    size_t n = 0;
    uint32_t rate = 0;
    if (read_wav_any(argv[0], &in, &n, &rate) != 0 || rate == 0 || n == 0) {
        fprintf(stderr, "call_tool: %s: not a 16-bit mono WAV\n", argv[0]);
        free(in);
        return 1;
    }
    size_t m = (size_t)((double)n * 48000.0 / rate);
    int16_t *out = calloc(m + 1, sizeof(*out));
    if (out == NULL) {
        free(in);
        return 1;
    }
    for (size_t i = 0; i < m; i++) {
        double pos = (double)i * rate / 48000.0;
        size_t j = (size_t)pos;
        double fr = pos - (double)j;
        double a = in[j < n ? j : n - 1], b = in[j + 1 < n ? j + 1 : n - 1];
        out[i] = (int16_t)lrint(a + (b - a) * fr);
    }
    int rc = write_wav(argv[1], out, m);
    free(in);
    free(out);
    return rc == 0 ? 0 : 1;
}

/* IN.wav through the engine's encoder (the settings kurer uses), every packet through a plain
 * libopus decoder. */
static int cmd_reference(char **argv)
{
    int16_t *in = NULL, *ref = NULL;
    size_t n = 0;
    uint32_t rate = 0;
    kurer__call_audio *ca = NULL;
    FILE *pk = fopen(argv[2], "wb");
    int err = 0, rc = 1;
    OpusDecoder *dec = opus_decoder_create(48000, 1, &err);
    if (pk == NULL || dec == NULL || read_wav_any(argv[0], &in, &n, &rate) != 0 || rate != 48000 ||
        kurer__call_audio_new(&ca, NULL) != 0)
        goto out;
    size_t frames = n / FRAME;
    ref = calloc(frames * FRAME + 1, sizeof(*ref));
    if (ref == NULL)
        goto out;
    for (size_t i = 0; i < frames; i++) {
        uint8_t p[KURER__MEDIA_MAX];
        size_t len = 0;
        if (kurer__call_audio_capture(ca, in + i * FRAME) != 0 ||
            kurer__call_audio_encode_next(ca, p, sizeof(p), &len) != 0 ||
            len <= KURER__MEDIA_AUDIO_HDR)
            goto out;
        const uint8_t *op = p + KURER__MEDIA_AUDIO_HDR;
        int32_t olen = (int32_t)(len - KURER__MEDIA_AUDIO_HDR);
        uint8_t l2[2] = {(uint8_t)(olen >> 8), (uint8_t)olen};
        if (fwrite(l2, 1, 2, pk) != 2 || fwrite(op, 1, (size_t)olen, pk) != (size_t)olen)
            goto out;
        if (opus_decode(dec, op, olen, ref + i * FRAME, FRAME, 0) != FRAME)
            goto out;
    }
    rc = write_wav(argv[1], ref, frames * FRAME) == 0 ? 0 : 1;
out:
    if (pk != NULL && fclose(pk) != 0)
        rc = 1;
    if (dec != NULL)
        opus_decoder_destroy(dec);
    kurer__call_audio_free(ca);
    free(in);
    free(ref);
    return rc;
}

static size_t first_loud_frame(const int16_t *p, size_t frames)
{
    for (size_t f = 0; f < frames; f++)
        for (size_t i = 0; i < FRAME; i++)
            if (abs(p[f * FRAME + i]) > 64)
                return f;
    return frames;
}

static int all_zero(const int16_t *p)
{
    for (size_t i = 0; i < FRAME; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/* After aligning the first loud frames, every frame of REF must come next in REC, bit for bit.
 * A frame of digital silence in REC that REF does not have is the jitter buffer growing its
 * delay (a slot with no packet played, the decoder not run): skipped and counted, since the
 * decoder's state is untouched and the next frame must still match exactly. */
static int cmd_compare(char **argv)
{
    int16_t *rec = NULL, *ref = NULL;
    size_t nr = 0, nf = 0;
    uint32_t r1 = 0, r2 = 0;
    long min_frames = atol(argv[2]);
    if (read_wav_any(argv[0], &rec, &nr, &r1) != 0 || read_wav_any(argv[1], &ref, &nf, &r2) != 0) {
        printf("compare: cannot read the files\n");
        return 1;
    }
    size_t fr = nr / FRAME, ff = nf / FRAME;
    size_t a = first_loud_frame(rec, fr), b = first_loud_frame(ref, ff);
    size_t same = 0, inserted = 0, i = b, j = a, first_diff = (size_t)-1;
    while (i < ff && j < fr) {
        if (memcmp(rec + j * FRAME, ref + i * FRAME, FRAME * 2) == 0) {
            same++;
            i++;
            j++;
        } else if (all_zero(rec + j * FRAME)) {
            inserted++;
            j++;
        } else {
            first_diff = i;
            break;
        }
    }
    printf("compare: recorded frame %zu aligned with reference frame %zu; %zu frames bit-exact, "
           "%zu silent frames inserted by the jitter buffer",
           a, b, same, inserted);
    if (first_diff != (size_t)-1)
        printf(", first difference at reference frame %zu", first_diff);
    printf("\n");
    free(rec);
    free(ref);
    return first_diff == (size_t)-1 && same >= (size_t)min_frames ? 0 : 1;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    uint8_t *b = malloc(cap);
    while (b != NULL) {
        size_t got = fread(b + len, 1, cap - len, f);
        len += got;
        if (len < cap)
            break;
        uint8_t *nb = realloc(b, cap * 2);
        if (nb == NULL) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    fclose(f);
    *n = len;
    return b;
}

/* Every 16-byte run at the start of each Opus packet (>= 16 bytes) is looked for in the capture:
 * plaintext media would carry it unchanged. */
static int cmd_scan(char **argv)
{
    size_t nc = 0, np = 0, packets = 0, found = 0;
    uint8_t *cap = slurp(argv[0], &nc), *pk = slurp(argv[1], &np);
    if (cap == NULL || pk == NULL || nc == 0) {
        printf("scan: nothing captured\n");
        free(cap);
        free(pk);
        return 1;
    }
    for (size_t off = 0; off + 2 <= np;) {
        size_t len = (size_t)pk[off] << 8 | pk[off + 1];
        off += 2;
        if (off + len > np)
            break;
        if (len >= 16) {
            packets++;
            if (memmem(cap, nc, pk + off, 16) != NULL)
                found++;
        }
        off += len;
    }
    printf("scan: %zu bytes captured, %zu Opus packets looked for, %zu found in plaintext\n", nc,
           packets, found);
    free(cap);
    free(pk);
    return packets > 0 && found == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "sweep") == 0)
        return cmd_sweep(argv + 2);
    if (argc >= 4 && strcmp(argv[1], "resample") == 0)
        return cmd_resample(argv + 2);
    if (argc >= 5 && strcmp(argv[1], "reference") == 0)
        return cmd_reference(argv + 2);
    if (argc >= 5 && strcmp(argv[1], "compare") == 0)
        return cmd_compare(argv + 2);
    if (argc >= 4 && strcmp(argv[1], "scan") == 0)
        return cmd_scan(argv + 2);
    if (argc >= 5 && strcmp(argv[1], "segsnr") == 0)
        return call_tool_segsnr(argv + 2);
    if (argc >= 8 && strcmp(argv[1], "shim") == 0)
        return call_tool_shim(argv + 2);
    fprintf(stderr, "usage: call_tool sweep|resample|reference|compare|scan|segsnr|shim ...\n");
    return 2;
}
