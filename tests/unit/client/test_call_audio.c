/* client/call_audio.c and client/call_wav.c: the call audio engine and the WAV files. One ctest
 * entry per case (client_call_audio_<case>). */
#define _GNU_SOURCE /* M_PI, usleep, mkdtemp, memmem */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <opus.h>

#include "call_audio.h"
#include "kurer/crypto.h"
#include "kurer/sframe.h"

#define FRAMES 250 /* five seconds */

/* A test signal: a tone sweep with some harmonics, speech-like enough for Opus's SILK mode. */
static void signal_frame(int k, int16_t pcm[KURER__AUDIO_FRAME])
{
    for (int i = 0; i < KURER__AUDIO_FRAME; i++) {
        double t = (double)(k * KURER__AUDIO_FRAME + i) / KURER__AUDIO_RATE;
        double f = 200.0 + 600.0 * fmod(t, 2.0);
        double v = 0.4 * sin(2 * M_PI * f * t) + 0.15 * sin(2 * M_PI * 2.5 * f * t) +
                   0.05 * sin(2 * M_PI * 7 * f * t);
        pcm[i] = (int16_t)lrint(v * 32767 * (0.6 + 0.4 * sin(2 * M_PI * 3 * t)));
    }
}

/* Encodes FRAMES frames of the signal with a fresh engine: payloads[k] of lens[k] bytes. */
static void encode_all(uint8_t payloads[FRAMES][KURER__MEDIA_MAX], size_t lens[FRAMES])
{
    kurer__call_audio *tx;
    int16_t pcm[KURER__AUDIO_FRAME];
    kurer__call_audio_stats st;
    assert_int_equal(kurer__call_audio_new(&tx, NULL), 0);
    for (int k = 0; k < FRAMES; k++) {
        signal_frame(k, pcm);
        assert_int_equal(kurer__call_audio_capture(tx, pcm), 0);
        assert_int_equal(kurer__call_audio_encode_next(tx, payloads[k], KURER__MEDIA_MAX, &lens[k]),
                         0);
        assert_true(lens[k] > KURER__MEDIA_AUDIO_HDR);
    }
    size_t none = 1;
    assert_int_equal(kurer__call_audio_encode_next(tx, payloads[0], KURER__MEDIA_MAX, &none), 0);
    assert_int_equal(none, 0); /* the ring is empty */
    kurer__call_audio_get_stats(tx, &st);
    assert_true(st.sent == FRAMES);
    kurer__call_audio_free(tx);
}

static uint8_t (*payloads)[KURER__MEDIA_MAX];
static size_t lens[FRAMES];

static int setup(void **state)
{
    (void)state;
    if (kurer_crypto_init() != 0)
        return -1;
    payloads = calloc(FRAMES, sizeof *payloads);
    if (payloads == NULL)
        return -1;
    encode_all(payloads, lens);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(payloads);
    return 0;
}

static void test_media_payload(void **state)
{
    kurer__media m;
    uint8_t rtt[KURER__MEDIA_RTT_LEN + 1], big[KURER__MEDIA_MAX + 1];
    (void)state;
    assert_int_equal(kurer__media_parse(payloads[3], lens[3], &m), 0);
    assert_int_equal(m.type, KURER__MEDIA_AUDIO);
    assert_int_equal(m.opus_len, lens[3] - KURER__MEDIA_AUDIO_HDR);
    assert_ptr_equal(m.opus, payloads[3] + KURER__MEDIA_AUDIO_HDR);
    kurer__media m4;
    assert_int_equal(kurer__media_parse(payloads[4], lens[4], &m4), 0);
    assert_int_equal((uint16_t)(m4.seq - m.seq), 1);
    assert_int_equal((uint32_t)(m4.ts - m.ts), KURER__AUDIO_FRAME);
    assert_int_equal(kurer__media_rtt_encode(rtt, KURER__MEDIA_RTT_PROBE, 0x0102030405060708ull),
                     KURER__MEDIA_RTT_LEN);
    assert_int_equal(kurer__media_parse(rtt, KURER__MEDIA_RTT_LEN, &m), 0);
    assert_true(m.type == KURER__MEDIA_RTT_PROBE && m.clock_us == 0x0102030405060708ull);
    assert_int_equal(kurer__media_parse(rtt, KURER__MEDIA_RTT_LEN - 1, &m), KURER_ETRUNC);
    assert_int_equal(kurer__media_parse(rtt, KURER__MEDIA_RTT_LEN + 1, &m), KURER_ETRAILING);
    assert_int_equal(kurer__media_parse(rtt, 0, &m), KURER_ETRUNC);
    rtt[0] = 4;
    assert_int_equal(kurer__media_parse(rtt, KURER__MEDIA_RTT_LEN, &m), KURER_EMALFORMED);
    assert_int_equal(m.type, 0);
    assert_int_equal(kurer__media_parse(payloads[0], KURER__MEDIA_AUDIO_HDR - 1, &m), KURER_ETRUNC);
    assert_int_equal(kurer__media_parse(payloads[0], KURER__MEDIA_AUDIO_HDR, &m), KURER_EMALFORMED);
    memset(big, 0, sizeof big);
    big[0] = KURER__MEDIA_AUDIO;
    assert_int_equal(kurer__media_parse(big, KURER__MEDIA_MAX, &m), 0);
    assert_int_equal(kurer__media_parse(big, KURER__MEDIA_MAX + 1, &m), KURER_ELIMIT);
}

/* At 0 % loss the engine plays exactly what a plain Opus decoder makes of the same packets:
 * after the prefill and the FEC lookahead (silence), every frame decoded, bit for bit. */
static void test_roundtrip_exact(void **state)
{
    kurer__call_audio *rx;
    OpusDecoder *plain;
    int16_t got[KURER__AUDIO_FRAME], want[KURER__AUDIO_FRAME];
    kurer__call_audio_stats st;
    int err, k, j = 0, silence = 0;
    (void)state;
    plain = opus_decoder_create(KURER__AUDIO_RATE, 1, &err);
    assert_non_null(plain);
    assert_int_equal(kurer__call_audio_new(&rx, NULL), 0);
    assert_int_equal(kurer__call_audio_playback(rx, got), KURER__PLAY_SILENCE);
    for (k = 0; k < FRAMES + KURER__AUDIO_PREFILL; k++) {
        kurer__play_kind kind;
        if (k < FRAMES)
            assert_int_equal(
                kurer__call_audio_receive(rx, payloads[k], lens[k], 20000u * (unsigned)k), 0);
        kind = kurer__call_audio_playback(rx, got);
        if (kind == KURER__PLAY_SILENCE) {
            assert_int_equal(j, 0);
            silence++;
            continue;
        }
        assert_int_equal(kind, KURER__PLAY_DECODED);
        assert_int_equal(opus_decode(plain, payloads[j] + KURER__MEDIA_AUDIO_HDR,
                                     (opus_int32)(lens[j] - KURER__MEDIA_AUDIO_HDR), want,
                                     KURER__AUDIO_FRAME, 0),
                         KURER__AUDIO_FRAME);
        assert_memory_equal(got, want, sizeof got);
        j++;
    }
    assert_int_equal(silence, KURER__AUDIO_PREFILL); /* the prefill, then the FEC lookahead */
    assert_int_equal(j, FRAMES);
    kurer__call_audio_get_stats(rx, &st);
    assert_true(st.received == FRAMES && st.played == FRAMES);
    assert_true(st.lost == 0 && st.late == 0 && st.concealed == 0 && st.fec_recovered == 0);
    assert_true(st.jitter_ms < 0.01);
    kurer__call_audio_free(rx);
    opus_decoder_destroy(plain);
}

/* The LBRR (in-band FEC) flag of a 20 ms mono SILK or hybrid packet: the second bit of its first
 * frame (RFC 6716 section 4.2.3). */
static int lbrr(const uint8_t *payload, size_t len)
{
    const uint8_t *p = payload + KURER__MEDIA_AUDIO_HDR;
    assert_true(len > KURER__MEDIA_AUDIO_HDR + 1);
    assert_int_equal(p[0] & 3, 0); /* code 0: one frame */
    return (p[0] >> 3) < 16 && ((p[1] >> 6) & 1);
}

/* Single losses are rebuilt from the next packet's FEC, a burst of three is concealed (its last
 * frame from FEC), and the statistics count each. */
static void test_lossy(void **state)
{
    kurer__call_audio *rx;
    int16_t pcm[KURER__AUDIO_FRAME];
    kurer__call_audio_stats st;
    int dropped = 0, singles = 0, fec = 0, plc = 0, with_lbrr = 0;
    (void)state;
    assert_int_equal(kurer__call_audio_new(&rx, NULL), 0);
    for (int k = 0; k < FRAMES + KURER__AUDIO_PREFILL; k++) {
        int burst = k >= 100 && k < 103;
        int single = k >= 20 && k % 10 == 5 && !(k >= 95 && k < 110);
        if (k < FRAMES && !burst && !single)
            assert_int_equal(
                kurer__call_audio_receive(rx, payloads[k], lens[k], 20000u * (unsigned)k), 0);
        else if (k < FRAMES)
            dropped++, singles += single;
        if ((single || k == 102) && lbrr(payloads[k + 1], lens[k + 1]))
            with_lbrr++;
        switch (kurer__call_audio_playback(rx, pcm)) {
        case KURER__PLAY_FEC:
            fec++;
            break;
        case KURER__PLAY_PLC:
            plc++;
            break;
        default:
            break;
        }
    }
    kurer__call_audio_get_stats(rx, &st);
    print_message("dropped %d (%d single): fec %llu, concealed %llu\n", dropped, singles,
                  (unsigned long long)st.fec_recovered, (unsigned long long)st.concealed);
    assert_true(st.lost == (uint64_t)dropped);
    assert_true(st.received == (uint64_t)(FRAMES - dropped));
    assert_true(st.fec_recovered == (uint64_t)fec && st.concealed == (uint64_t)plc);
    assert_true(st.fec_recovered + st.concealed == (uint64_t)dropped);
    /* Each lost frame whose successor arrived with LBRR data is rebuilt from it (the singles and
     * the burst's last frame); SILK codes LBRR only for frames it finds active, so not all
     * successors carry it, but with FEC on most must. */
    assert_true(st.fec_recovered == (uint64_t)with_lbrr);
    assert_true(with_lbrr * 4 >= (singles + 1) * 3);
    assert_true(st.concealed >= 2);
    kurer__call_audio_free(rx);
}

/* The prefill's cushion: a sender that stalls for 40 ms (two packets held, then sent with the
 * third) and a receiver whose audio thread stalls for 40 ms (three pulls at once afterwards)
 * lose nothing: no frame late, none concealed, everything played. */
static void test_stall(void **state)
{
    kurer__call_audio *rx;
    int16_t pcm[KURER__AUDIO_FRAME];
    kurer__call_audio_stats st;
    (void)state;
    assert_int_equal(kurer__call_audio_new(&rx, NULL), 0);
    for (int k = 0; k < FRAMES + KURER__AUDIO_PREFILL; k++) {
        int held = (k >= 100 && k < 102) || (k >= 150 && k < 152);
        if (k < FRAMES && !held)
            for (int i = (k == 102 || k == 152) ? k - 2 : k; i <= k; i++)
                assert_int_equal(
                    kurer__call_audio_receive(rx, payloads[i], lens[i], 20000u * (unsigned)k), 0);
        if (k == 102) { /* two packets 40 and 20 ms late: RFC 3550's estimate jumps */
            kurer__call_audio_get_stats(rx, &st);
            assert_true(st.jitter_ms > 3.0);
        }
        if (k >= 200 && k < 202)
            continue; /* the audio thread stalls */
        for (int pulls = k == 202 ? 3 : 1; pulls > 0; pulls--)
            (void)kurer__call_audio_playback(rx, pcm);
    }
    kurer__call_audio_get_stats(rx, &st);
    print_message("played %llu late %llu concealed %llu jitter %.1f ms\n",
                  (unsigned long long)st.played, (unsigned long long)st.late,
                  (unsigned long long)st.concealed, st.jitter_ms);
    assert_true(st.late == 0 && st.concealed == 0 && st.fec_recovered == 0);
    assert_true(st.played == FRAMES && st.received == FRAMES && st.lost == 0);
    assert_true(st.jitter_ms < 0.5); /* and decays once arrivals are regular again */
    kurer__call_audio_free(rx);
}

/* A packet after its frame was played is late; one received twice is a duplicate. Neither is
 * played. */
static void test_late_duplicate(void **state)
{
    kurer__call_audio *rx;
    int16_t pcm[KURER__AUDIO_FRAME];
    kurer__call_audio_stats st;
    (void)state;
    assert_int_equal(kurer__call_audio_new(&rx, NULL), 0);
    for (int k = 0; k < 40; k++) {
        if (k != 10)
            assert_int_equal(
                kurer__call_audio_receive(rx, payloads[k], lens[k], 20000u * (unsigned)k), 0);
        if (k == 20) /* packet 10, ten frames late */
            assert_int_equal(
                kurer__call_audio_receive(rx, payloads[10], lens[10], 20000u * (unsigned)k), 0);
        if (k == 30) /* packet 30 again */
            assert_int_equal(
                kurer__call_audio_receive(rx, payloads[30], lens[30], 20000u * (unsigned)k), 0);
        (void)kurer__call_audio_playback(rx, pcm);
    }
    kurer__call_audio_get_stats(rx, &st);
    assert_true(st.late == 1 && st.duplicate == 1);
    assert_true(st.received == 39 && st.lost == 0);
    /* Slot 10 was rebuilt or concealed; having seen a packet that late, the jitter buffer grows
     * its delay (insertions, played as concealment) and so keeps every later frame. */
    print_message("played %llu fec %llu concealed %llu\n", (unsigned long long)st.played,
                  (unsigned long long)st.fec_recovered, (unsigned long long)st.concealed);
    assert_true(st.fec_recovered + st.concealed >= 2);
    /* Not audio, or not a payload at all. */
    uint8_t rtt[KURER__MEDIA_RTT_LEN];
    kurer__media_rtt_encode(rtt, KURER__MEDIA_RTT_REPLY, 1);
    assert_int_equal(kurer__call_audio_receive(rx, rtt, sizeof rtt, 0), KURER_EINVAL);
    assert_int_equal(kurer__call_audio_receive(rx, rtt, 3, 0), KURER_ETRUNC);
    kurer__call_audio_get_stats(rx, &st);
    assert_true(st.malformed == 2 && st.received == 39);
    kurer__call_audio_free(rx);
}

/* A full ring drops the capture frame (never waits) and the gap reaches the receiver as lost
 * sequence numbers and time. */
static void test_capture_ring(void **state)
{
    kurer__call_audio *tx;
    int16_t pcm[KURER__AUDIO_FRAME] = {0};
    uint8_t out[KURER__MEDIA_MAX];
    size_t len;
    kurer__media a, b;
    kurer__call_audio_stats st;
    uint16_t seq = 0;
    uint32_t ts = 0;
    (void)state;
    assert_int_equal(kurer__call_audio_new(&tx, NULL), 0);
    for (int i = 0; i < KURER__AUDIO_RING; i++)
        assert_int_equal(kurer__call_audio_capture(tx, pcm), 0);
    assert_int_equal(kurer__call_audio_capture(tx, pcm), KURER_ELIMIT);
    assert_int_equal(kurer__call_audio_capture(tx, pcm), KURER_ELIMIT);
    for (int i = 0; i < KURER__AUDIO_RING; i++) {
        assert_int_equal(kurer__call_audio_encode_next(tx, out, sizeof out, &len), 0);
        assert_int_equal(kurer__media_parse(out, len, &a), 0);
        seq = a.seq;
        ts = a.ts;
    }
    assert_int_equal(kurer__call_audio_capture(tx, pcm), 0);
    assert_int_equal(kurer__call_audio_encode_next(tx, out, sizeof out, &len), 0);
    assert_int_equal(kurer__media_parse(out, len, &b), 0);
    assert_int_equal((uint16_t)(b.seq - seq), 3); /* two dropped frames skipped */
    assert_int_equal(b.ts - ts, 3 * KURER__AUDIO_FRAME);
    kurer__call_audio_get_stats(tx, &st);
    assert_true(st.capture_dropped == 2 && st.sent == KURER__AUDIO_RING + 1);
    assert_int_equal(kurer__call_audio_encode_next(tx, out, KURER__MEDIA_MAX - 1, &len),
                     KURER_EINVAL);
    assert_int_equal(kurer__call_audio_set_loss(tx, 101), KURER_EINVAL);
    assert_int_equal(kurer__call_audio_set_loss(tx, 25), 0);
    kurer__call_audio_free(tx);
    kurer__call_audio_config bad = {.bitrate = 5000, .loss_perc = -1};
    assert_int_equal(kurer__call_audio_new(&tx, &bad), KURER_EINVAL);
    assert_null(tx);
}

/* The three roles on three threads (the app's audio thread, the transport), looped back: the
 * counts add up and nothing is lost on the way. Under TSan this checks the ring and the mutex. */
typedef struct threads {
    kurer__call_audio *ca;
    _Atomic int stop;
    int captured, pulled;
} threads;

static void *audio_thread(void *arg)
{
    threads *t = arg;
    int16_t pcm[KURER__AUDIO_FRAME];
    for (int k = 0; k < 300; k++) {
        signal_frame(k, pcm);
        if (kurer__call_audio_capture(t->ca, pcm) == 0)
            t->captured++;
        (void)kurer__call_audio_playback(t->ca, pcm);
        t->pulled++;
        usleep(500);
    }
    atomic_store(&t->stop, 1);
    return NULL;
}

static void test_threads(void **state)
{
    threads t = {0};
    pthread_t th;
    uint8_t out[KURER__MEDIA_MAX];
    size_t len;
    kurer__call_audio_stats st;
    uint64_t now = 0;
    (void)state;
    assert_int_equal(kurer__call_audio_new(&t.ca, NULL), 0);
    assert_int_equal(pthread_create(&th, NULL, audio_thread, &t), 0);
    for (int idle = 0; idle < 2;) {
        if (atomic_load(&t.stop))
            idle++; /* one more pass empties the ring */
        for (;;) {
            assert_int_equal(kurer__call_audio_encode_next(t.ca, out, sizeof out, &len), 0);
            if (len == 0)
                break;
            assert_int_equal(kurer__call_audio_receive(t.ca, out, len, now += 20000), 0);
        }
        usleep(300);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    kurer__call_audio_get_stats(t.ca, &st);
    assert_true(st.sent == (uint64_t)t.captured);
    assert_true(st.capture_dropped == (uint64_t)(300 - t.captured));
    assert_true(st.received + st.late + st.duplicate == st.sent);
    assert_int_equal(t.pulled, 300);
    kurer__call_audio_free(t.ca);
}

/* The whole media path of one direction without the network: capture, encode, SFrame protect
 * under the call's keys, unprotect on the other side, receive, play. The frames carry no byte
 * run of the Opus packets, and what plays is still bit-exact with a plain decoder. */
static void test_sframe_pipeline(void **state)
{
    uint8_t caller[32], callee[32], frame[KURER__MEDIA_MAX + KURER_SFRAME_MAX_OVERHEAD];
    uint8_t back[KURER__MEDIA_MAX];
    kurer_sframe_send *send, *unused_send;
    kurer_sframe_recv *recv, *unused_recv;
    kurer__call_audio *rx;
    OpusDecoder *plain;
    int16_t got[KURER__AUDIO_FRAME], want[KURER__AUDIO_FRAME];
    int err, j = 0;
    (void)state;
    kurer_random(caller, sizeof caller);
    kurer_random(callee, sizeof callee);
    assert_int_equal(kurer_sframe_call_contexts(77, caller, callee, 1, &send, &unused_recv), 0);
    assert_int_equal(kurer_sframe_call_contexts(77, caller, callee, 0, &unused_send, &recv), 0);
    assert_int_equal(kurer__call_audio_new(&rx, NULL), 0);
    plain = opus_decoder_create(KURER__AUDIO_RATE, 1, &err);
    assert_non_null(plain);
    for (int k = 0; k < FRAMES + KURER__AUDIO_PREFILL; k++) {
        if (k < FRAMES) {
            size_t flen = 0, blen = 0;
            assert_int_equal(kurer_sframe_protect(send, NULL, 0, payloads[k], lens[k], frame,
                                                  sizeof frame, &flen),
                             0);
            /* No 8-byte run of the payload (header or Opus bytes) is on the wire. */
            for (size_t o = 0; o + 8 <= lens[k]; o++)
                assert_null(memmem(frame, flen, payloads[k] + o, 8));
            assert_int_equal(
                kurer_sframe_unprotect(recv, NULL, 0, frame, flen, back, sizeof back, &blen, NULL),
                0);
            assert_int_equal(kurer__call_audio_receive(rx, back, blen, 20000u * (unsigned)k), 0);
        }
        if (kurer__call_audio_playback(rx, got) == KURER__PLAY_SILENCE)
            continue;
        assert_int_equal(opus_decode(plain, payloads[j] + KURER__MEDIA_AUDIO_HDR,
                                     (opus_int32)(lens[j] - KURER__MEDIA_AUDIO_HDR), want,
                                     KURER__AUDIO_FRAME, 0),
                         KURER__AUDIO_FRAME);
        assert_memory_equal(got, want, sizeof got);
        j++;
    }
    assert_int_equal(j, FRAMES);
    opus_decoder_destroy(plain);
    kurer__call_audio_free(rx);
    kurer_sframe_send_free(send);
    kurer_sframe_send_free(unused_send);
    kurer_sframe_recv_free(recv);
    kurer_sframe_recv_free(unused_recv);
}

/* ---- WAV ---- */

static char dir[64];

static const char *tmp_path(const char *name)
{
    static char path[128];
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/tmp/kurer-wav-XXXXXX");
        assert_non_null(mkdtemp(dir));
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void test_wav_roundtrip(void **state)
{
    kurer__wav_writer *w;
    kurer__wav_reader *r;
    int16_t pcm[KURER__AUDIO_FRAME], back[KURER__AUDIO_FRAME + 7];
    char why[KURER__WAV_WHY_MAX];
    struct stat st;
    const char *path = tmp_path("a.wav");
    long n, total = 0;
    (void)state;
    assert_int_equal(kurer__wav_create(path, &w), 0);
    for (int k = 0; k < 10; k++) {
        signal_frame(k, pcm);
        assert_int_equal(kurer__wav_write(w, pcm, k == 9 ? 100 : KURER__AUDIO_FRAME), 0);
    }
    assert_int_equal(kurer__wav_finish(w), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 44 + 2 * (9 * KURER__AUDIO_FRAME + 100));
    assert_int_equal(kurer__wav_open(path, &r, why, sizeof why), 0);
    assert_true(kurer__wav_reader_info(r)->samples == 9 * KURER__AUDIO_FRAME + 100);
    for (int k = 0; (n = kurer__wav_read(r, back, KURER__AUDIO_FRAME)) > 0; k++) {
        signal_frame(k, pcm);
        assert_memory_equal(back, pcm, (size_t)n * sizeof pcm[0]);
        total += n;
    }
    assert_int_equal(n, 0);
    assert_int_equal(total, 9 * KURER__AUDIO_FRAME + 100);
    kurer__wav_close(r);
    assert_int_equal(kurer__wav_open(tmp_path("none.wav"), &r, why, sizeof why), KURER_ENOENT);
    assert_null(r);
    unlink(path);
    rmdir(dir);
}

/* A 44-byte header (fmt of 16 bytes, or 40 for the extensible format) and data bytes. */
static size_t make_wav(uint8_t *b, uint16_t format, uint16_t ch, uint32_t rate, uint16_t bits,
                       uint16_t sub, uint32_t data)
{
    size_t fmt = format == 0xfffe ? 40 : 16, n = 0;
    uint16_t align = (uint16_t)(ch * ((bits + 7) / 8));
#define P16(v) (b[n] = (uint8_t)(v), b[n + 1] = (uint8_t)((v) >> 8), n += 2)
#define P32(v) (P16((v)&0xffff), P16((uint32_t)(v) >> 16))
    memcpy(b, "RIFF", 4), n = 4;
    P32((uint32_t)(4 + 8 + fmt + 8 + data));
    memcpy(b + n, "WAVEfmt ", 8), n += 8;
    P32((uint32_t)fmt);
    P16(format), P16(ch), P32(rate), P32(rate * align), P16(align), P16(bits);
    if (fmt == 40) {
        static const uint8_t tail[14] = {0, 0, 0,    0, 0x10, 0,    0x80,
                                         0, 0, 0xaa, 0, 0x38, 0x9b, 0x71};
        P16(22), P16(bits), P32(4);
        P16(sub);
        memcpy(b + n, tail, 14), n += 14;
    }
    memcpy(b + n, "data", 4), n += 4;
    P32(data);
#undef P16
#undef P32
    memset(b + n, 0, data);
    return n + data;
}

/* b[0..n) as the first bytes of a file of file_len bytes is refused with rc, saying phrase. */
static void expect_cut(const uint8_t *b, size_t n, size_t file_len, int rc, const char *phrase)
{
    kurer__wav_info info;
    char why[KURER__WAV_WHY_MAX];
    assert_int_equal(kurer__wav_parse(b, n, file_len, &info, why, sizeof why), rc);
    if (strstr(why, phrase) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", phrase, why);
    assert_true(info.samples == 0);
}

static void expect_refusal(const uint8_t *b, size_t n, int rc, const char *phrase)
{
    expect_cut(b, n, n, rc, phrase);
}

static void test_wav_refusals(void **state)
{
    uint8_t b[512];
    size_t n;
    kurer__wav_info info;
    (void)state;
    n = make_wav(b, 1, 1, 48000, 16, 0, 100);
    assert_int_equal(kurer__wav_parse(b, n, n, &info, NULL, 0), 0);
    assert_true(info.samples == 50 && info.data_offset == 44);
    n = make_wav(b, 0xfffe, 1, 48000, 16, 1, 100);
    assert_int_equal(kurer__wav_parse(b, n, n, &info, NULL, 0), 0); /* extensible PCM */
    n = make_wav(b, 1, 2, 44100, 16, 0, 100);
    expect_refusal(b, n, KURER_EUNSUPPORTED,
                   "the file is 44100 Hz, 2 channels, 16-bit PCM; calls need 48000 Hz, 1 channel");
    n = make_wav(b, 1, 1, 48000, 8, 0, 100);
    expect_refusal(b, n, KURER_EUNSUPPORTED, "48000 Hz, 1 channel, 8-bit PCM;");
    n = make_wav(b, 1, 1, 16000, 16, 0, 100);
    expect_refusal(b, n, KURER_EUNSUPPORTED, "16000 Hz");
    n = make_wav(b, 3, 1, 48000, 32, 0, 100);
    expect_refusal(b, n, KURER_EUNSUPPORTED, "32-bit IEEE float");
    n = make_wav(b, 7, 1, 8000, 8, 0, 100);
    expect_refusal(b, n, KURER_EUNSUPPORTED, "mu-law");
    n = make_wav(b, 0xfffe, 1, 48000, 32, 3, 100);
    expect_refusal(b, n, KURER_EUNSUPPORTED, "IEEE float");
    n = make_wav(b, 0x1234, 1, 48000, 16, 0, 100);
    expect_refusal(b, n, KURER_EUNSUPPORTED, "format 0x1234");
}

static void test_wav_malformed(void **state)
{
    uint8_t b[600], c[600];
    size_t n;
    kurer__wav_info info;
    (void)state;
    n = make_wav(b, 1, 1, 48000, 16, 0, 100);
    /* Every cut before the data chunk's header ends is refused; the data may be cut. */
    for (size_t cut = 0; cut < 44; cut++)
        assert_int_equal(kurer__wav_parse(b, cut, n, &info, NULL, 0), KURER_ETRUNC);
    assert_int_equal(kurer__wav_parse(b, 44, n, &info, NULL, 0), 0);
    expect_refusal(b, 10, KURER_ETRUNC, "too short");
    expect_cut(b, 40, n, KURER_ETRUNC, "ends before its data chunk");
    expect_cut(b, 30, n, KURER_ETRUNC, "ends inside its fmt chunk");
    memcpy(c, b, n), c[4] = (uint8_t)(n - 2 - 8);
    expect_refusal(c, n - 2, KURER_EMALFORMED, "\"data\" chunk (100 bytes) runs past its end");
    memcpy(c, b, n), memcpy(c, "RIFX", 4);
    expect_refusal(c, n, KURER_EMALFORMED, "not a WAV file");
    memcpy(c, b, n), c[4] = 0xff;
    expect_refusal(c, n, KURER_EMALFORMED, "RIFF size");
    memcpy(c, b, n), c[16] = 12; /* fmt chunk of 12 bytes */
    expect_refusal(c, n, KURER_EMALFORMED, "shorter than 16");
    memcpy(c, b, n), c[32] = 4; /* block align 4 for mono 16-bit */
    expect_refusal(c, n, KURER_EMALFORMED, "inconsistent");
    memcpy(c, b, n), c[22] = 0; /* no channels */
    expect_refusal(c, n, KURER_EMALFORMED, "0 channels");
    memcpy(c, b, n), memcpy(c + 12, "junk", 4); /* the fmt chunk renamed: data before fmt */
    expect_refusal(c, n, KURER_EMALFORMED, "no fmt chunk before its data");
    n = make_wav(b, 1, 1, 48000, 16, 0, 99);
    expect_refusal(b, n, KURER_EMALFORMED, "odd length");
    /* Many small chunks before the data. */
    memcpy(c, b, 36);
    n = 36;
    for (int i = 0; i < 70; i++, n += 8)
        memcpy(c + n, "LIST\0\0\0\0", 8);
    c[4] = (uint8_t)(n - 8), c[5] = (uint8_t)((n - 8) >> 8);
    expect_refusal(c, n, KURER_EMALFORMED, "more than 64 chunks");
    /* An extensible header with a wrong GUID. */
    n = make_wav(b, 0xfffe, 1, 48000, 16, 1, 100);
    b[50] ^= 1;
    expect_refusal(b, n, KURER_EMALFORMED, "extensible fmt chunk is malformed");
    /* A file that claims more than its length, through kurer__wav_open. */
    const char *path = tmp_path("short.wav");
    kurer__wav_reader *r;
    char why[KURER__WAV_WHY_MAX];
    n = make_wav(b, 1, 1, 48000, 16, 0, 100);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, n - 10), (ssize_t)(n - 10));
    close(fd);
    assert_int_equal(kurer__wav_open(path, &r, why, sizeof why), KURER_EMALFORMED);
    assert_null(r);
    assert_non_null(strstr(why, "runs past its end"));
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_media_payload),  cmocka_unit_test(test_roundtrip_exact),
        cmocka_unit_test(test_lossy),          cmocka_unit_test(test_stall),
        cmocka_unit_test(test_late_duplicate), cmocka_unit_test(test_capture_ring),
        cmocka_unit_test(test_threads),        cmocka_unit_test(test_sframe_pipeline),
        cmocka_unit_test(test_wav_roundtrip),  cmocka_unit_test(test_wav_refusals),
        cmocka_unit_test(test_wav_malformed),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
