/* The call audio engine: Opus encoding and decoding, the jitter buffer, loss concealment, the
 * media payload carried inside SFrame, per-call audio statistics, and 16-bit PCM WAV files
 * (docs/calls.md, "Audio"). No I/O besides the WAV files: the transport (the calls
 * engineer's media code) moves the payloads.
 *
 * Audio is 48 kHz mono, 20 ms frames of KURER__AUDIO_FRAME (960) samples, Opus in VoIP mode with
 * in-band FEC on and an expected loss percentage (OPUS_SET_PACKET_LOSS_PERC). The receive side
 * puts packets into speexdsp's JitterBuffer (timestamps in samples, one step per frame) and
 * plays one frame per pull: the decoded packet; or, if that packet is missing and the next one
 * is already buffered, the frame rebuilt from the next packet's FEC data
 * (opus_decode(..., decode_fec=1)); or else Opus packet-loss concealment (opus_decode(NULL)).
 * To have "the next packet" at hand the engine plays one frame behind the jitter buffer's
 * output: 20 ms of added delay buys FEC recovery of every single lost packet. Playback starts
 * once KURER__AUDIO_PREFILL packets arrived, and the jitter buffer keeps all but one of them as
 * its margin: 40 ms in which a stall of either side or a burst of network delay makes nothing
 * late (the jitter buffer grows its delay beyond that when packets do come late).
 *
 * Threads: three roles, each a single thread at a time.
 *   audio thread (the app's): kurer__call_audio_capture and kurer__call_audio_playback. Neither
 *     ever waits for the other roles beyond a few hundred nanoseconds: capture copies the frame
 *     into a lock-free single-producer/single-consumer ring (C11 atomics; when the ring is full
 *     the frame is dropped and counted, never waited for); playback takes the engine mutex only
 *     to copy one packet out of the jitter buffer and to tick it (O(frame), no allocation, no
 *     system call unless the mutex is contended; it inherits priority where the platform has
 *     PTHREAD_PRIO_INHERIT, so a preempted transport thread cannot hold the audio thread up),
 *     and decodes outside the mutex with a decoder that only the audio thread touches.
 *   transport thread: kurer__call_audio_encode_next (pops the ring, encodes) and
 *     kurer__call_audio_receive (parses, takes the mutex to put into the jitter buffer).
 *   any thread: kurer__call_audio_get_stats, kurer__call_audio_set_loss (atomics / the mutex).
 * Internal (kurer__*): not part of libkurer's API; the calls API exposes what it needs. */
#ifndef KURER_CLIENT_CALL_AUDIO_H
#define KURER_CLIENT_CALL_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/error.h"

#define KURER__AUDIO_RATE      48000
#define KURER__AUDIO_FRAME     960  /* samples per 20 ms frame */
#define KURER__AUDIO_MAX_OPUS  1275 /* the largest Opus packet of one frame (RFC 6716) */
#define KURER__AUDIO_RING      16   /* capture frames buffered between audio and transport */
#define KURER__AUDIO_BITRATE   32000
#define KURER__AUDIO_LOSS_PERC 10 /* expected loss the encoder plans FEC for, unless told */
/* Packets buffered before playback starts; all but the first stay as the margin the jitter
 * buffer keeps from then on: 40 ms of cushion against a stall of either side's threads or a
 * burst of network delay, before a frame is late. */
#define KURER__AUDIO_PREFILL 3

/* The media payload inside an SFrame frame (docs/calls.md): one type byte, then
 *   audio:               sequence number (16 bits) | timestamp in samples (32 bits) | Opus packet
 *   rtt_probe/rtt_reply: the sender's clock in microseconds (64 bits)
 * all big-endian. */
enum {
    KURER__MEDIA_AUDIO = 1,
    KURER__MEDIA_RTT_PROBE = 2,
    KURER__MEDIA_RTT_REPLY = 3,
};
#define KURER__MEDIA_AUDIO_HDR 7 /* type, sequence, timestamp */
#define KURER__MEDIA_RTT_LEN   9 /* type, clock */
#define KURER__MEDIA_MAX       (KURER__MEDIA_AUDIO_HDR + KURER__AUDIO_MAX_OPUS)

/* A parsed media payload; opus points into the parsed bytes. */
typedef struct kurer__media {
    int type;
    uint16_t seq;
    uint32_t ts;
    uint64_t clock_us;
    const uint8_t *opus;
    size_t opus_len;
} kurer__media;

/* Parses p[0..len). 0 with *m set, or KURER_ETRUNC (shorter than its type needs),
 * KURER_EMALFORMED (unknown type, an audio payload with no Opus bytes), KURER_ELIMIT (an Opus
 * packet over KURER__AUDIO_MAX_OPUS), KURER_ETRAILING (an RTT payload with bytes after the
 * clock). *m is zeroed on error. */
KURER_MUST_CHECK int kurer__media_parse(const uint8_t *p, size_t len, kurer__media *m);
/* Writes an RTT probe or reply (type KURER__MEDIA_RTT_PROBE or _REPLY) to out; returns
 * KURER__MEDIA_RTT_LEN. */
size_t kurer__media_rtt_encode(uint8_t out[KURER__MEDIA_RTT_LEN], int type, uint64_t clock_us);

/* What one playback pull produced. */
typedef enum kurer__play_kind {
    KURER__PLAY_SILENCE = 0, /* no packet has arrived yet (or the jitter buffer is filling) */
    KURER__PLAY_DECODED = 1, /* the frame's own packet */
    KURER__PLAY_FEC = 2,     /* rebuilt from the next packet's in-band FEC */
    KURER__PLAY_PLC = 3,     /* concealed (Opus PLC) */
} kurer__play_kind;

/* Per-call audio statistics. Counts are frames (packets) of 20 ms. */
typedef struct kurer__call_audio_stats {
    uint64_t sent;            /* packets encoded for sending */
    uint64_t received;        /* audio packets accepted into the jitter buffer */
    uint64_t lost;            /* sequence numbers never received (RFC 3550 style) */
    uint64_t late;            /* packets that arrived after their frame was played */
    uint64_t duplicate;       /* packets whose sequence number was already buffered or played */
    uint64_t concealed;       /* frames played by Opus PLC */
    uint64_t fec_recovered;   /* frames rebuilt from FEC */
    uint64_t played;          /* frames decoded from their own packet */
    uint64_t capture_dropped; /* capture frames dropped because the ring was full */
    double jitter_ms;         /* RFC 3550 interarrival jitter estimate */
    uint64_t malformed;       /* payloads kurer__call_audio_receive refused */
} kurer__call_audio_stats;

typedef struct kurer__call_audio_config {
    int bitrate;   /* bits per second, 6000 to 128000; 0 for KURER__AUDIO_BITRATE */
    int loss_perc; /* expected loss 0 to 100 for the encoder's FEC; -1 for the default */
} kurer__call_audio_config;

typedef struct kurer__call_audio kurer__call_audio;

/* A new engine (encoder, decoder, jitter buffer, ring); cfg may be NULL for the defaults.
 * 0 with *out set, or KURER_EINVAL (a setting out of range), KURER_ENOMEM, KURER_EINTERNAL (libopus
 * or speexdsp refused). *out is NULL on error. */
KURER_MUST_CHECK int kurer__call_audio_new(kurer__call_audio **out,
                                           const kurer__call_audio_config *cfg);
/* Frees ca; NULL-safe. No other thread may be using it. */
void kurer__call_audio_free(kurer__call_audio *ca);

/* Audio thread: hands in one captured frame of KURER__AUDIO_FRAME samples. 0, or KURER_ELIMIT
 * when the ring is full (the frame is dropped and counted in capture_dropped). Never blocks. */
KURER_MUST_CHECK int kurer__call_audio_capture(kurer__call_audio *ca,
                                               const int16_t pcm[KURER__AUDIO_FRAME]);
/* Audio thread: fills pcm with the next KURER__AUDIO_FRAME samples to play and returns what they
 * are (kurer__play_kind). Always fills pcm (silence if nothing can be played). Never blocks
 * beyond the brief mutex described above. */
kurer__play_kind kurer__call_audio_playback(kurer__call_audio *ca, int16_t pcm[KURER__AUDIO_FRAME]);

/* Transport thread: if a capture frame waits, encodes it into a media payload (type audio, the
 * next sequence number and timestamp) in out[0..cap) and sets *len; else sets *len to 0.
 * 0, or KURER_EINVAL (cap below KURER__MEDIA_MAX), KURER_EINTERNAL (libopus failed: the frame is
 * dropped). The payload is what the transport protects with SFrame. */
KURER_MUST_CHECK int kurer__call_audio_encode_next(kurer__call_audio *ca, uint8_t *out, size_t cap,
                                                   size_t *len);
/* Transport thread: takes an audio payload that SFrame accepted; now_us is a monotonic clock in
 * microseconds (for the jitter estimate). 0, or the errors of kurer__media_parse, or
 * KURER_EINVAL for a payload that is not audio (both counted in malformed). Late and duplicate
 * packets return 0 and are counted, not played (a late one still tells the jitter buffer how
 * late packets come, so that it grows its delay). */
KURER_MUST_CHECK int kurer__call_audio_receive(kurer__call_audio *ca, const uint8_t *payload,
                                               size_t len, uint64_t now_us);

/* Any thread: the expected loss (0 to 100) the encoder plans FEC for, from the receiver's
 * reports; applied before the next frame is encoded. KURER_EINVAL out of range. */
KURER_MUST_CHECK int kurer__call_audio_set_loss(kurer__call_audio *ca, int loss_perc);
/* Any thread: a copy of the statistics. */
void kurer__call_audio_get_stats(kurer__call_audio *ca, kurer__call_audio_stats *out);

/* ---- WAV files: 16-bit PCM, 48 kHz, mono (RIFF/WAVE, format 1 or extensible PCM) ---- */

#define KURER__WAV_MAX_SAMPLES (48000u * 60u * 60u) /* one hour */
#define KURER__WAV_WHY_MAX     160

typedef struct kurer__wav_info {
    uint16_t format; /* 1 (PCM), 3 (float), 0xfffe (extensible), ... */
    uint16_t channels;
    uint32_t rate;
    uint16_t bits;
    uint64_t data_offset; /* where the samples start */
    uint64_t samples;     /* 16-bit samples in the data chunk */
} kurer__wav_info;

/* Parses the RIFF header at buf[0..len) (at least up to the data chunk's header; the data itself
 * may be cut off) against a file of file_len bytes. 0 with *info set if the file is 16-bit PCM,
 * 48 kHz, mono; else KURER_ETRUNC / KURER_EMALFORMED (not a well-formed RIFF/WAVE header, a chunk
 * running past the file) or KURER_EUNSUPPORTED (well-formed but another format), with why set to
 * a sentence naming what the file has ("the file is 44100 Hz stereo 16-bit PCM; calls need 48000
 * Hz mono 16-bit PCM"). why may be NULL. */
KURER_MUST_CHECK int kurer__wav_parse(const uint8_t *buf, size_t len, uint64_t file_len,
                                      kurer__wav_info *info, char *why, size_t why_len);

typedef struct kurer__wav_reader kurer__wav_reader;

/* Opens path and checks its header with kurer__wav_parse. 0 with *out set, or KURER_ENOENT,
 * KURER_EIO, KURER_ENOMEM, or the errors of kurer__wav_parse; why (may be NULL) says what went
 * wrong. */
KURER_MUST_CHECK int kurer__wav_open(const char *path, kurer__wav_reader **out, char *why,
                                     size_t why_len);
/* Reads up to n samples into pcm; returns how many (0 at the end), or KURER_EIO. */
KURER_MUST_CHECK long kurer__wav_read(kurer__wav_reader *r, int16_t *pcm, size_t n);
/* The header of the open file. */
const kurer__wav_info *kurer__wav_reader_info(const kurer__wav_reader *r);
/* Closes r; NULL-safe. */
void kurer__wav_close(kurer__wav_reader *r);

typedef struct kurer__wav_writer kurer__wav_writer;

/* Creates path (mode 0600, replacing a file of that name) and writes a 48 kHz mono 16-bit PCM
 * header. 0 with *out set, or KURER_EIO / KURER_EPERM / KURER_ENOMEM. */
KURER_MUST_CHECK int kurer__wav_create(const char *path, kurer__wav_writer **out);
/* Appends n samples. 0, or KURER_EIO, or KURER_ELIMIT past KURER__WAV_MAX_SAMPLES. */
KURER_MUST_CHECK int kurer__wav_write(kurer__wav_writer *w, const int16_t *pcm, size_t n);
/* Writes the final sizes into the header, flushes and closes. 0 or KURER_EIO; w is freed
 * either way. NULL-safe (0). */
KURER_MUST_CHECK int kurer__wav_finish(kurer__wav_writer *w);

#endif
