/* libFuzzer target for the call audio engine's parsers (client/call_audio.c, call_wav.c): what a
 * peer puts inside its SFrame frames, and WAV headers. The first input byte picks the mode:
 *   0: kurer__media_parse of the rest; what parses has the lengths its type says;
 *   1: kurer__wav_parse of the rest as the start of a file of that length; an accepted header
 *      is 16-bit PCM 48 kHz mono with its data inside the file;
 *   2: the rest as a stream of payloads (each a 2-byte length, then the bytes) into a receiving
 *      engine, one playback pull after each: the jitter buffer and the Opus decoder on hostile
 *      packets; every pull gives a known kind and the counts stay consistent.
 * Seeds (tests/fuzz/corpus/call_media): an encoded audio payload, RTT payloads, WAV headers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "call_audio.h"
#include "kurer/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

static void media(const uint8_t *p, size_t n)
{
    kurer__media m;
    if (kurer__media_parse(p, n, &m) != 0) {
        check(m.type == 0 && m.opus == NULL);
        return;
    }
    if (m.type == KURER__MEDIA_AUDIO)
        check(m.opus == p + KURER__MEDIA_AUDIO_HDR && m.opus_len == n - KURER__MEDIA_AUDIO_HDR &&
              m.opus_len >= 1 && m.opus_len <= KURER__AUDIO_MAX_OPUS);
    else
        check((m.type == KURER__MEDIA_RTT_PROBE || m.type == KURER__MEDIA_RTT_REPLY) &&
              n == KURER__MEDIA_RTT_LEN);
}

static void wav(const uint8_t *p, size_t n)
{
    kurer__wav_info info;
    char why[KURER__WAV_WHY_MAX];
    int rc = kurer__wav_parse(p, n, n, &info, why, sizeof why);
    check(memchr(why, '\0', sizeof why) != NULL);
    if (rc != 0) {
        check(info.samples == 0 && why[0] != '\0');
        return;
    }
    check(info.format == 1 && info.bits == 16 && info.rate == 48000 && info.channels == 1);
    check(info.data_offset <= n && info.samples * 2 <= n - info.data_offset);
}

static void stream(const uint8_t *p, size_t n)
{
    kurer__call_audio *ca = NULL;
    kurer__call_audio_stats st;
    int16_t pcm[KURER__AUDIO_FRAME];
    uint64_t now = 0, pulls = 0;
    check(kurer__call_audio_new(&ca, NULL) == 0);
    while (n >= 2 && pulls < 400) {
        size_t len = (size_t)p[0] << 8 | p[1];
        p += 2, n -= 2;
        if (len > n)
            len = n;
        (void)kurer__call_audio_receive(ca, p, len, now += 20000);
        p += len, n -= len;
        kurer__play_kind k = kurer__call_audio_playback(ca, pcm);
        check(k == KURER__PLAY_SILENCE || k == KURER__PLAY_DECODED || k == KURER__PLAY_FEC ||
              k == KURER__PLAY_PLC);
        pulls++;
    }
    kurer__call_audio_get_stats(ca, &st);
    check(st.played + st.fec_recovered + st.concealed <= pulls);
    check(st.sent == 0 && st.capture_dropped == 0);
    kurer__call_audio_free(ca);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int started;
    if (!started) {
        check(kurer_crypto_init() == 0);
        started = 1;
    }
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        media(data + 1, size - 1);
        break;
    case 1:
        wav(data + 1, size - 1);
        break;
    default:
        stream(data + 1, size - 1);
        break;
    }
    return 0;
}
