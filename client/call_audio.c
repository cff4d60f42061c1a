/* The call audio engine (call_audio.h): Opus, speexdsp's JitterBuffer, FEC and PLC, the media
 * payload, statistics. The WAV files are call_wav.c. */
#include "call_audio.h"

#include <opus.h>
#include <pthread.h>
#include <speex/speex_jitter.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kurer/crypto.h"

/* One captured frame in the ring, and how many frames the audio thread dropped just before it
 * (the ring was full): the encoder skips their sequence numbers and timestamps, so that the
 * receiver conceals the gap instead of playing the audio too early. */
typedef struct ring_slot {
    int16_t pcm[KURER__AUDIO_FRAME];
    uint32_t gap;
} ring_slot;

/* A packet the audio thread took out of the jitter buffer: what the slot at ts holds. */
typedef struct play_slot {
    int have; /* 1: a packet; 0: the slot is missing */
    uint32_t ts;
    size_t len;
    uint8_t data[KURER__AUDIO_MAX_OPUS];
} play_slot;

struct kurer__call_audio {
    /* ---- capture ring: single producer (audio thread), single consumer (transport) ---- */
    ring_slot ring[KURER__AUDIO_RING];
    _Atomic size_t ring_head; /* written by the producer */
    _Atomic size_t ring_tail; /* written by the consumer */
    uint32_t pending_gap;     /* producer only */

    /* ---- transport thread: the encoder ---- */
    OpusEncoder *enc;
    uint16_t seq;
    uint32_t ts;
    int loss_applied;
    _Atomic int loss_wanted;

    /* ---- shared under mu: the jitter buffer and the receive statistics ---- */
    pthread_mutex_t mu;
    JitterBuffer *jb;
    int jb_synced;       /* a get returned a packet: the pointer timestamp means something */
    uint32_t jb_pointer; /* the jitter buffer's pointer timestamp after the last get */
    int rx_started;      /* a packet was received */
    uint16_t rx_max_seq; /* RFC 3550 A.1: highest sequence number, wrap count, first one */
    uint32_t rx_cycles;
    uint32_t rx_base_seq;
    uint64_t rx_seen;       /* bit i: rx_max_seq - i was received (duplicate detection) */
    double rx_transit_prev; /* RFC 3550 A.8 interarrival jitter, in samples */
    double rx_jitter;
    uint64_t received, late, duplicate, malformed;

    /* ---- audio thread: the decoder and the one-frame lookahead ---- */
    OpusDecoder *dec;
    int have_pending;
    play_slot pending, next;
    uint8_t get_buf[KURER__AUDIO_MAX_OPUS];

    /* ---- counters any thread reads ---- */
    _Atomic uint64_t sent, concealed, fec_recovered, played, capture_dropped;
};

/* ---- the media payload ---- */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int kurer__media_parse(const uint8_t *p, size_t len, kurer__media *m)
{
    memset(m, 0, sizeof *m);
    if (p == NULL || len < 1)
        return KURER_ETRUNC;
    switch (p[0]) {
    case KURER__MEDIA_AUDIO:
        if (len < KURER__MEDIA_AUDIO_HDR)
            return KURER_ETRUNC;
        if (len == KURER__MEDIA_AUDIO_HDR)
            return KURER_EMALFORMED;
        if (len - KURER__MEDIA_AUDIO_HDR > KURER__AUDIO_MAX_OPUS)
            return KURER_ELIMIT;
        m->seq = get16(p + 1);
        m->ts = get32(p + 3);
        m->opus = p + KURER__MEDIA_AUDIO_HDR;
        m->opus_len = len - KURER__MEDIA_AUDIO_HDR;
        break;
    case KURER__MEDIA_RTT_PROBE:
    case KURER__MEDIA_RTT_REPLY:
        if (len < KURER__MEDIA_RTT_LEN)
            return KURER_ETRUNC;
        if (len > KURER__MEDIA_RTT_LEN)
            return KURER_ETRAILING;
        m->clock_us = (uint64_t)get32(p + 1) << 32 | get32(p + 5);
        break;
    default:
        return KURER_EMALFORMED;
    }
    m->type = p[0];
    return 0;
}

size_t kurer__media_rtt_encode(uint8_t out[KURER__MEDIA_RTT_LEN], int type, uint64_t clock_us)
{
    out[0] = (uint8_t)type;
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t)(clock_us >> (56 - 8 * i));
    return KURER__MEDIA_RTT_LEN;
}

/* ---- life cycle ---- */

static int encoder_new(kurer__call_audio *ca, int bitrate, int loss)
{
    int err = OPUS_OK;
    ca->enc = opus_encoder_create(KURER__AUDIO_RATE, 1, OPUS_APPLICATION_VOIP, &err);
    if (ca->enc == NULL || err != OPUS_OK)
        return err == OPUS_ALLOC_FAIL ? KURER_ENOMEM : KURER_EINTERNAL;
    if (opus_encoder_ctl(ca->enc, OPUS_SET_BITRATE(bitrate)) != OPUS_OK ||
        opus_encoder_ctl(ca->enc, OPUS_SET_INBAND_FEC(1)) != OPUS_OK ||
        opus_encoder_ctl(ca->enc, OPUS_SET_PACKET_LOSS_PERC(loss)) != OPUS_OK ||
        opus_encoder_ctl(ca->enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE)) != OPUS_OK ||
        opus_encoder_ctl(ca->enc, OPUS_SET_DTX(0)) != OPUS_OK)
        return KURER_EINTERNAL;
    ca->loss_applied = loss;
    atomic_init(&ca->loss_wanted, loss);
    return 0;
}

/* The engine's mutex. With priority inheritance where the platform has it: the app's audio
 * thread usually runs at real-time priority and must not wait behind a transport thread that a
 * middle-priority thread preempted while it held the mutex (priority inversion). */
static int mutex_init(pthread_mutex_t *mu)
{
    pthread_mutexattr_t attr;
    int rc;
    if (pthread_mutexattr_init(&attr) != 0)
        return -1;
#if defined(_POSIX_THREAD_PRIO_INHERIT) && _POSIX_THREAD_PRIO_INHERIT > 0
    (void)pthread_mutexattr_setprotocol(&attr, PTHREAD_PRIO_INHERIT);
#endif
    rc = pthread_mutex_init(mu, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc;
}

int kurer__call_audio_new(kurer__call_audio **out, const kurer__call_audio_config *cfg)
{
    int bitrate = cfg != NULL && cfg->bitrate != 0 ? cfg->bitrate : KURER__AUDIO_BITRATE;
    int loss = cfg != NULL && cfg->loss_perc >= 0 ? cfg->loss_perc : KURER__AUDIO_LOSS_PERC;
    kurer__call_audio *ca;
    int err = OPUS_OK, rc;
    if (out == NULL)
        return KURER_EINVAL;
    *out = NULL;
    if (bitrate < 6000 || bitrate > 128000 || loss > 100)
        return KURER_EINVAL;
    ca = calloc(1, sizeof *ca);
    if (ca == NULL)
        return KURER_ENOMEM;
    atomic_init(&ca->ring_head, 0);
    atomic_init(&ca->ring_tail, 0);
    atomic_init(&ca->sent, 0);
    atomic_init(&ca->concealed, 0);
    atomic_init(&ca->fec_recovered, 0);
    atomic_init(&ca->played, 0);
    atomic_init(&ca->capture_dropped, 0);
    if (mutex_init(&ca->mu) != 0) {
        free(ca);
        return KURER_ENOMEM;
    }
    /* Sequence numbers and timestamps start at random values (RFC 3550 section 5.1). */
    kurer_random(&ca->seq, sizeof ca->seq);
    kurer_random(&ca->ts, sizeof ca->ts);
    rc = encoder_new(ca, bitrate, loss);
    if (rc == 0) {
        ca->dec = opus_decoder_create(KURER__AUDIO_RATE, 1, &err);
        if (ca->dec == NULL || err != OPUS_OK)
            rc = err == OPUS_ALLOC_FAIL ? KURER_ENOMEM : KURER_EINTERNAL;
    }
    if (rc == 0) {
        /* Timestamps in samples, one frame per step: delays adapt in whole frames. */
        ca->jb = jitter_buffer_init(KURER__AUDIO_FRAME);
        if (ca->jb == NULL)
            rc = KURER_ENOMEM;
    }
    if (rc == 0) {
        /* The frames the prefill holds beyond the one the first get takes are the margin the
         * buffer keeps: it neither drops them as excess delay nor builds them up again by
         * insertions. */
        spx_int32_t margin = (KURER__AUDIO_PREFILL - 1) * KURER__AUDIO_FRAME;
        jitter_buffer_ctl(ca->jb, JITTER_BUFFER_SET_MARGIN, &margin);
    }
    if (rc != 0) {
        kurer__call_audio_free(ca);
        return rc;
    }
    *out = ca;
    return 0;
}

void kurer__call_audio_free(kurer__call_audio *ca)
{
    if (ca == NULL)
        return;
    if (ca->jb != NULL)
        jitter_buffer_destroy(ca->jb);
    if (ca->enc != NULL)
        opus_encoder_destroy(ca->enc);
    if (ca->dec != NULL)
        opus_decoder_destroy(ca->dec);
    pthread_mutex_destroy(&ca->mu);
    /* Audio in memory is the call's content: wiped like other plaintext. */
    kurer_memzero(ca, sizeof *ca);
    free(ca);
}

/* ---- capture (audio thread) and encoding (transport thread) ---- */

int kurer__call_audio_capture(kurer__call_audio *ca, const int16_t pcm[KURER__AUDIO_FRAME])
{
    size_t head = atomic_load_explicit(&ca->ring_head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&ca->ring_tail, memory_order_acquire);
    ring_slot *slot;
    if (head - tail >= KURER__AUDIO_RING) {
        ca->pending_gap++;
        atomic_fetch_add_explicit(&ca->capture_dropped, 1, memory_order_relaxed);
        return KURER_ELIMIT;
    }
    slot = &ca->ring[head % KURER__AUDIO_RING];
    memcpy(slot->pcm, pcm, sizeof slot->pcm);
    slot->gap = ca->pending_gap;
    ca->pending_gap = 0;
    atomic_store_explicit(&ca->ring_head, head + 1, memory_order_release);
    return 0;
}

int kurer__call_audio_encode_next(kurer__call_audio *ca, uint8_t *out, size_t cap, size_t *len)
{
    int16_t pcm[KURER__AUDIO_FRAME];
    size_t tail, head;
    uint32_t gap;
    int loss, n;
    if (ca == NULL || out == NULL || len == NULL)
        return KURER_EINVAL;
    *len = 0;
    if (cap < KURER__MEDIA_MAX)
        return KURER_EINVAL;
    tail = atomic_load_explicit(&ca->ring_tail, memory_order_relaxed);
    head = atomic_load_explicit(&ca->ring_head, memory_order_acquire);
    if (tail == head)
        return 0;
    memcpy(pcm, ca->ring[tail % KURER__AUDIO_RING].pcm, sizeof pcm);
    gap = ca->ring[tail % KURER__AUDIO_RING].gap;
    atomic_store_explicit(&ca->ring_tail, tail + 1, memory_order_release);

    loss = atomic_load_explicit(&ca->loss_wanted, memory_order_relaxed);
    if (loss != ca->loss_applied &&
        opus_encoder_ctl(ca->enc, OPUS_SET_PACKET_LOSS_PERC(loss)) == OPUS_OK)
        ca->loss_applied = loss;
    ca->seq = (uint16_t)(ca->seq + gap);
    ca->ts += gap * KURER__AUDIO_FRAME;
    n = opus_encode(ca->enc, pcm, KURER__AUDIO_FRAME, out + KURER__MEDIA_AUDIO_HDR,
                    KURER__AUDIO_MAX_OPUS);
    kurer_memzero(pcm, sizeof pcm);
    if (n <= 0) {
        /* The frame is lost; its number and time still pass, so the receiver conceals it. */
        ca->seq++;
        ca->ts += KURER__AUDIO_FRAME;
        return KURER_EINTERNAL;
    }
    out[0] = KURER__MEDIA_AUDIO;
    out[1] = (uint8_t)(ca->seq >> 8);
    out[2] = (uint8_t)ca->seq;
    for (int i = 0; i < 4; i++)
        out[3 + i] = (uint8_t)(ca->ts >> (24 - 8 * i));
    ca->seq++;
    ca->ts += KURER__AUDIO_FRAME;
    *len = KURER__MEDIA_AUDIO_HDR + (size_t)n;
    atomic_fetch_add_explicit(&ca->sent, 1, memory_order_relaxed);
    return 0;
}

int kurer__call_audio_set_loss(kurer__call_audio *ca, int loss_perc)
{
    if (ca == NULL || loss_perc < 0 || loss_perc > 100)
        return KURER_EINVAL;
    atomic_store_explicit(&ca->loss_wanted, loss_perc, memory_order_relaxed);
    return 0;
}

/* ---- receiving (transport thread) ---- */

/* Sequence bookkeeping (RFC 3550 appendix A.1, simplified: no probation, the packets were
 * authenticated by SFrame). 1 if seq is new, 0 if a duplicate. Under mu. */
static int rx_sequence(kurer__call_audio *ca, uint16_t seq)
{
    uint16_t delta;
    if (!ca->rx_started) {
        ca->rx_started = 1;
        ca->rx_max_seq = seq;
        ca->rx_base_seq = seq;
        ca->rx_seen = 1;
        return 1;
    }
    delta = (uint16_t)(seq - ca->rx_max_seq);
    if (delta != 0 && delta < 0x8000) { /* ahead of the highest */
        if (seq < ca->rx_max_seq)
            ca->rx_cycles += 1u << 16;
        ca->rx_seen = delta >= 64 ? 0 : ca->rx_seen << delta;
        ca->rx_seen |= 1;
        ca->rx_max_seq = seq;
        return 1;
    }
    delta = (uint16_t)(ca->rx_max_seq - seq); /* behind (or equal) */
    if (delta >= 64)
        return 1; /* too far back to tell; the jitter buffer will find it late */
    if ((ca->rx_seen >> delta) & 1)
        return 0;
    ca->rx_seen |= (uint64_t)1 << delta;
    return 1;
}

/* RFC 3550 appendix A.8. Under mu. */
static void rx_jitter(kurer__call_audio *ca, uint32_t ts, uint64_t now_us)
{
    double arrival = (double)(now_us % (1ull << 40)) * (KURER__AUDIO_RATE / 1e6);
    double transit = arrival - (double)ts, d;
    if (ca->received > 0) {
        d = transit - ca->rx_transit_prev;
        if (d < 0)
            d = -d;
        if (d < 10.0 * KURER__AUDIO_RATE) /* not across a clock or timestamp wrap */
            ca->rx_jitter += (d - ca->rx_jitter) / 16.0;
    }
    ca->rx_transit_prev = transit;
}

int kurer__call_audio_receive(kurer__call_audio *ca, const uint8_t *payload, size_t len,
                              uint64_t now_us)
{
    kurer__media m;
    JitterBufferPacket p;
    int rc;
    if (ca == NULL)
        return KURER_EINVAL;
    rc = kurer__media_parse(payload, len, &m);
    if (rc == 0 && m.type != KURER__MEDIA_AUDIO)
        rc = KURER_EINVAL;
    if (rc != 0) {
        pthread_mutex_lock(&ca->mu);
        ca->malformed++;
        pthread_mutex_unlock(&ca->mu);
        return rc;
    }
    memset(&p, 0, sizeof p);
    p.data = (char *)(uintptr_t)m.opus;
    p.len = (spx_uint32_t)m.opus_len;
    p.timestamp = m.ts;
    p.span = KURER__AUDIO_FRAME;
    p.sequence = m.seq;
    pthread_mutex_lock(&ca->mu);
    if (ca->jb_synced && (int32_t)(m.ts - ca->jb_pointer) < 0) {
        /* Its frame was played (or concealed) already. The jitter buffer still sees it: how late
         * packets come is what makes it grow its delay (it keeps nothing this late). */
        ca->late++;
        jitter_buffer_put(ca->jb, &p);
    } else if (!rx_sequence(ca, m.seq)) {
        ca->duplicate++;
    } else {
        rx_jitter(ca, m.ts, now_us);
        jitter_buffer_put(ca->jb, &p);
        ca->received++;
    }
    pthread_mutex_unlock(&ca->mu);
    return 0;
}

/* ---- playback (audio thread) ---- */

/* Whether an Opus packet of one 20 ms mono frame carries in-band FEC (LBRR) data: SILK and
 * hybrid packets code the VAD flag and then the LBRR flag as the first two bits of the range
 * coder, which with their uniform probabilities are the top two bits of the frame's first byte
 * (RFC 6716 section 4.2.3). CELT-only packets carry none. */
static int has_fec(const uint8_t *pkt, size_t len)
{
    const unsigned char *frames[48];
    opus_int16 sizes[48];
    unsigned char toc;
    int n = opus_packet_parse(pkt, (opus_int32)len, &toc, frames, sizes, NULL);
    if (n < 1 || sizes[0] < 1 || (toc >> 3) >= 16)
        return 0;
    return (frames[0][0] >> 6) & 1;
}

/* Whether playback may start: KURER__AUDIO_PREFILL packets were buffered. (The jitter buffer's
 * own count, JITTER_BUFFER_GET_AVAILABLE_COUNT, compares timestamps with a pointer that means
 * nothing before the first get.) Under mu. */
static int prefilled(const kurer__call_audio *ca)
{
    return ca->received >= KURER__AUDIO_PREFILL;
}

static kurer__play_kind play(kurer__call_audio *ca, int16_t pcm[KURER__AUDIO_FRAME])
{
    const play_slot *cur = &ca->pending, *nxt = &ca->next;
    int n;
    if (cur->have) {
        n = opus_decode(ca->dec, cur->data, (opus_int32)cur->len, pcm, KURER__AUDIO_FRAME, 0);
        if (n == KURER__AUDIO_FRAME) {
            atomic_fetch_add_explicit(&ca->played, 1, memory_order_relaxed);
            return KURER__PLAY_DECODED;
        }
    } else if (nxt->have && nxt->ts == cur->ts + KURER__AUDIO_FRAME &&
               has_fec(nxt->data, nxt->len)) {
        n = opus_decode(ca->dec, nxt->data, (opus_int32)nxt->len, pcm, KURER__AUDIO_FRAME, 1);
        if (n == KURER__AUDIO_FRAME) {
            atomic_fetch_add_explicit(&ca->fec_recovered, 1, memory_order_relaxed);
            return KURER__PLAY_FEC;
        }
    }
    n = opus_decode(ca->dec, NULL, 0, pcm, KURER__AUDIO_FRAME, 0);
    if (n != KURER__AUDIO_FRAME)
        memset(pcm, 0, KURER__AUDIO_FRAME * sizeof pcm[0]);
    atomic_fetch_add_explicit(&ca->concealed, 1, memory_order_relaxed);
    return KURER__PLAY_PLC;
}

kurer__play_kind kurer__call_audio_playback(kurer__call_audio *ca, int16_t pcm[KURER__AUDIO_FRAME])
{
    JitterBufferPacket p;
    kurer__play_kind kind;
    int rc;
    memset(&p, 0, sizeof p);
    p.data = (char *)ca->get_buf;
    p.len = sizeof ca->get_buf;
    pthread_mutex_lock(&ca->mu);
    if (!ca->jb_synced && !prefilled(ca)) {
        pthread_mutex_unlock(&ca->mu);
        memset(pcm, 0, KURER__AUDIO_FRAME * sizeof pcm[0]);
        return KURER__PLAY_SILENCE;
    }
    rc = jitter_buffer_get(ca->jb, &p, KURER__AUDIO_FRAME, NULL);
    jitter_buffer_tick(ca->jb);
    if (rc == JITTER_BUFFER_OK)
        ca->jb_synced = 1;
    ca->jb_pointer = (uint32_t)jitter_buffer_get_pointer_timestamp(ca->jb);
    pthread_mutex_unlock(&ca->mu);

    if (rc == JITTER_BUFFER_INSERTION || (rc != JITTER_BUFFER_OK && !ca->jb_synced)) {
        /* The buffer grows its delay (or has not started): a frame that is no slot. */
        if (!ca->have_pending) {
            memset(pcm, 0, KURER__AUDIO_FRAME * sizeof pcm[0]);
            return KURER__PLAY_SILENCE;
        }
        if (opus_decode(ca->dec, NULL, 0, pcm, KURER__AUDIO_FRAME, 0) != KURER__AUDIO_FRAME)
            memset(pcm, 0, KURER__AUDIO_FRAME * sizeof pcm[0]);
        atomic_fetch_add_explicit(&ca->concealed, 1, memory_order_relaxed);
        return KURER__PLAY_PLC;
    }
    ca->next.have = rc == JITTER_BUFFER_OK;
    ca->next.ts = p.timestamp;
    ca->next.len = rc == JITTER_BUFFER_OK ? p.len : 0;
    if (ca->next.have)
        memcpy(ca->next.data, ca->get_buf, ca->next.len);
    if (!ca->have_pending) {
        /* The first slot: it waits one frame for its successor (the FEC lookahead). */
        ca->pending = ca->next;
        ca->have_pending = 1;
        memset(pcm, 0, KURER__AUDIO_FRAME * sizeof pcm[0]);
        return KURER__PLAY_SILENCE;
    }
    kind = play(ca, pcm);
    ca->pending = ca->next;
    return kind;
}

/* ---- statistics ---- */

void kurer__call_audio_get_stats(kurer__call_audio *ca, kurer__call_audio_stats *out)
{
    uint64_t expected;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ca->mu);
    out->received = ca->received;
    out->late = ca->late;
    out->duplicate = ca->duplicate;
    out->malformed = ca->malformed;
    if (ca->rx_started) {
        expected = (uint64_t)ca->rx_cycles + ca->rx_max_seq - ca->rx_base_seq + 1;
        out->lost = expected > ca->received + ca->late ? expected - ca->received - ca->late : 0;
    }
    out->jitter_ms = ca->rx_jitter * 1000.0 / KURER__AUDIO_RATE;
    pthread_mutex_unlock(&ca->mu);
    out->sent = atomic_load_explicit(&ca->sent, memory_order_relaxed);
    out->concealed = atomic_load_explicit(&ca->concealed, memory_order_relaxed);
    out->fec_recovered = atomic_load_explicit(&ca->fec_recovered, memory_order_relaxed);
    out->played = atomic_load_explicit(&ca->played, memory_order_relaxed);
    out->capture_dropped = atomic_load_explicit(&ca->capture_dropped, memory_order_relaxed);
}
