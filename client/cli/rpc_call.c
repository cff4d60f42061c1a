/* The methods call and answer (docs/client.md, "kurer daemon"): a call driven from WAV files
 * (16-bit PCM, 48 kHz, mono) in the process that holds the home: `kurer call` / `kurer answer`
 * itself, or the daemon, which then owns the call (its audio files, its 20 ms loop) while the
 * command waits for the result. The thread that runs the method plays the app's audio thread:
 * every 20 ms it hands one frame of play in and writes one frame to record; call events come
 * on the library thread and are handed over under a mutex. One call at a time per process. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "call_audio.h"
#include "kurer/text.h"
#include "kurer/util.h"
#include "rpc.h"

#define FRAME_NS  20000000L /* 20 ms */
#define TAIL_MS   1000      /* call: after play ends, this long before hanging up */
#define RING_WAIT 60        /* answer: seconds to wait for a call, unless wait */
#define CALL_MAX  86400     /* timeout: the longest a call may take in all, seconds */

static pthread_mutex_t g_call_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_call_busy; /* a call runs in this process (the call events are the handle's) */

typedef struct drive {
    uv_mutex_t mu;
    int answer_mode, delay_s, decline;
    uint64_t call_id;
    char peer[KURER_SUBJECT_MAX + 1];
    int incoming, answered, connected, done, level;
    uint64_t incoming_at; /* monotonic ms */
    kurer_call_end end;
    int err;
    kurer_refusal why;
} drive;

static const char *end_name(kurer_call_end e)
{
    static const char *const names[] = {"none",
                                        "hangup",
                                        "remote_hangup",
                                        "declined",
                                        "busy",
                                        "answered_elsewhere",
                                        "declined_elsewhere",
                                        "timeout",
                                        "glare",
                                        "refused"};
    return (unsigned)e < sizeof(names) / sizeof(names[0]) ? names[e] : "unknown";
}

static void on_call(void *ud, const kurer_call_event *e)
{
    drive *d = ud;
    uv_mutex_lock(&d->mu);
    if (e->kind == KURER_CALL_EV_INCOMING && d->answer_mode && d->call_id == 0) {
        d->call_id = e->call_id; /* the first call that rings is ours */
        d->incoming = 1;
        d->incoming_at = kurer_time_mono_ms();
    }
    if (e->call_id == d->call_id) {
        snprintf(d->peer, sizeof(d->peer), "%s", e->peer);
        d->level = e->level;
        if (e->kind == KURER_CALL_EV_ANSWERED)
            d->answered = 1;
        else if (e->kind == KURER_CALL_EV_CONNECTED)
            d->connected = 1;
        else if (e->kind == KURER_CALL_EV_ENDED && e->end == KURER_CALL_END_GLARE)
            d->call_id = e->replaced_by; /* both called: the peer's call goes on (answered) */
        else if (e->kind == KURER_CALL_EV_ENDED || e->kind == KURER_CALL_EV_FAILED) {
            d->done = 1;
            d->end = e->end;
            d->err = e->err;
            d->why = e->why;
        }
    }
    uv_mutex_unlock(&d->mu);
}

typedef struct media_files {
    kurer__wav_reader *play;
    kurer__wav_writer *record;
    int play_done;
    uint64_t play_ended_at;
} media_files;

static int open_files(const char *play, const char *play_name, const char *record,
                      const char *record_name, media_files *f)
{
    char why[KURER__WAV_WHY_MAX];
    memset(f, 0, sizeof(*f));
    why[0] = '\0';
    int rc = play != NULL ? kurer__wav_open(play, &f->play, why, sizeof(why)) : 0;
    if (rc != 0)
        return refuse(rc, "%s: %s", play_name, why[0] != '\0' ? why : kurer_strerror(rc));
    if (play == NULL)
        f->play_done = 1;
    if (record != NULL && (rc = kurer__wav_create(record, &f->record)) != 0)
        return refuse(rc, "cannot create %s: %s", record_name, kurer_strerror(rc));
    return 0;
}

/* One 20 ms step while connected: a frame of --play in (silence after its end), a frame out. */
static int step(kurer *k, uint64_t id, media_files *f)
{
    int16_t pcm[KURER_CALL_SAMPLES];
    long got = 0;
    memset(pcm, 0, sizeof(pcm));
    if (!f->play_done) {
        got = kurer__wav_read(f->play, pcm, KURER_CALL_SAMPLES);
        if (got < 0)
            return refuse(KURER_EIO, "cannot read the --play file");
        if (got < KURER_CALL_SAMPLES) {
            f->play_done = 1;
            f->play_ended_at = kurer_time_mono_ms();
        }
    }
    /* KURER_ELIMIT: the library is behind and dropped the frame (counted; the peer conceals). */
    int crc = kurer_call_capture(k, id, pcm);
    if (crc != 0 && crc != KURER_ELIMIT && crc != KURER_ENOTFOUND)
        return refuse(crc, "cannot hand audio to the call: %s", kurer_strerror(crc));
    if (kurer_call_playback(k, id, pcm) == 0 && f->record != NULL) {
        int rc = kurer__wav_write(f->record, pcm, KURER_CALL_SAMPLES);
        if (rc != 0)
            return refuse(rc, "cannot write the --record file: %s", kurer_strerror(rc));
    }
    return 0;
}

/* The next 20 ms tick. Like a sound card after an underrun, a thread that was held up more
 * than two frames starts its clock again instead of catching up in a burst (a burst of pulls
 * would drain the jitter buffer faster than packets come). */
static void next_tick(struct timespec *t)
{
    struct timespec now;
    t->tv_nsec += FRAME_NS;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_nsec -= 1000000000L;
        t->tv_sec++;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t behind = ((int64_t)now.tv_sec - t->tv_sec) * 1000000000L + (now.tv_nsec - t->tv_nsec);
    if (behind > 2 * FRAME_NS) {
        *t = now;
        return;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) != 0)
        ;
}

/* What the answering side does with a call that rings: accept (after --delay), or decline. */
static void maybe_answer(kurer *k, drive *d, uint64_t now)
{
    uv_mutex_lock(&d->mu);
    int ring = d->incoming && !d->answered && !d->done;
    uint64_t id = d->call_id, at = d->incoming_at;
    uv_mutex_unlock(&d->mu);
    if (!ring || now - at < (uint64_t)d->delay_s * 1000)
        return;
    int rc = d->decline ? kurer_call_decline(k, id) : kurer_call_accept(k, id);
    uv_mutex_lock(&d->mu);
    d->incoming = 0;           /* a decline ends with its ENDED event, once the caller was told */
    if (rc != 0 && !d->done) { /* the call ended meanwhile (its event says how), or cannot be */
        d->done = rc != KURER_ENOTFOUND;
        d->err = rc;
    }
    uv_mutex_unlock(&d->mu);
}

/* Waits up to ms for the call's end (its ENDED event: the peer was told). */
static void wait_ended(drive *d, uint64_t ms)
{
    uint64_t until = kurer_time_mono_ms() + ms;
    for (;;) {
        uv_mutex_lock(&d->mu);
        int done = d->done;
        uv_mutex_unlock(&d->mu);
        if (done || kurer_time_mono_ms() >= until)
            return;
        struct timespec t = {0, FRAME_NS};
        nanosleep(&t, NULL);
    }
}

int rpc_call_running(void)
{
    pthread_mutex_lock(&g_call_mu);
    int busy = g_call_busy;
    pthread_mutex_unlock(&g_call_mu);
    return busy;
}

/* The call runs: 20 ms steps until it ends, or until seconds of connection (or play and a
 * second) have passed, or the ring wait is over (wait_ms, 0: none), or the whole call took
 * max_ms, or the daemon stops. Its caller is told once it connects (call_connected). */
static int run_call(rpc_ctx *c, drive *d, media_files *f, int seconds, uint64_t wait_ms,
                    uint64_t max_ms)
{
    kurer *k = c->k;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    uint64_t start = kurer_time_mono_ms(), connected_at = 0;
    int rc = 0, hung = 0;
    for (;;) {
        uint64_t now = kurer_time_mono_ms();
        if (d->answer_mode)
            maybe_answer(k, d, now);
        uv_mutex_lock(&d->mu);
        int done = d->done, connected = d->connected, level = d->level;
        uint64_t id = d->call_id;
        char peer[KURER_SUBJECT_MAX + 1];
        snprintf(peer, sizeof(peer), "%s", d->peer);
        uv_mutex_unlock(&d->mu);
        if (done)
            break;
        if (id == 0 && wait_ms != 0 && now - start >= wait_ms)
            return refuse(KURER_ETIMEOUT, "no call came within %llu s",
                          (unsigned long long)(wait_ms / 1000));
        int stop = daemon_stopping(c->srv) || now - start >= max_ms;
        if (stop && !hung) {
            if (id != 0 && kurer_call_hangup(k, id) == 0)
                wait_ended(d, 1000); /* so that the peer is told before the connection goes */
            return refuse(KURER_ECANCELLED, daemon_stopping(c->srv)
                                                ? "the daemon stopped during the call"
                                                : "the call took longer than its timeout");
        }
        if (connected && connected_at == 0) {
            connected_at = now;
            if (c->notify != NULL)
                c->notify(c, "call_connected",
                          json_pack("{s:s,s:s}", "peer", peer, "level", kurer_level_name(level)));
        }
        int over =
            connected_at != 0 &&
            (seconds > 0 ? now - connected_at >= (uint64_t)seconds * 1000
                         : (!d->answer_mode && f->play_done && now - f->play_ended_at >= TAIL_MS));
        if (over && !hung) {
            hung = 1; /* the ENDED event comes on the library thread, once the peer was told */
            if ((rc = kurer_call_hangup(k, id)) != 0 && rc != KURER_ENOTFOUND)
                return refuse(rc, "cannot hang up: %s", kurer_strerror(rc));
            rc = 0;
        }
        if (connected && !hung && (rc = step(k, id, f)) != 0) {
            int hrc = kurer_call_hangup(k, id); /* the step's failure is what is said */
            (void)hrc;
            return rc;
        }
        next_tick(&t);
    }
    return 0;
}

/* The call's end: its statistics as the result, or a call that never connected (declined,
 * busy, timeout, refused, failed) refused with its reason. */
static int report(kurer *k, drive *d, json_t **result)
{
    kurer_call_stats s;
    memset(&s, 0, sizeof(s));
    if (kurer_call_get_stats(k, d->call_id, &s) != 0)
        memset(&s, 0, sizeof(s)); /* (a call that never had media: no figures) */
    char who[KURER_TEXT_TERM_MAX(KURER_SUBJECT_MAX)];
    kurer_text_term(who, sizeof(who), d->peer);
    if (d->err == 0 && (d->connected || d->end == KURER_CALL_END_LOCAL_HANGUP)) {
        char id[24]; /* a string: 64 bits are more than JSON numbers hold exactly */
        snprintf(id, sizeof(id), "%llu", (unsigned long long)d->call_id);
        *result =
            json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "call_id", id,
                      "peer", d->peer, "level", kurer_level_name(d->level), "end", end_name(d->end),
                      "duration_ms", (json_int_t)s.duration_ms, "sent", (json_int_t)s.sent,
                      "received", (json_int_t)s.received, "lost", (json_int_t)s.lost, "late",
                      (json_int_t)s.late, "concealed", (json_int_t)s.concealed, "fec_recovered",
                      (json_int_t)s.fec_recovered, "rejected", (json_int_t)s.rejected, "jitter_ms",
                      (json_int_t)s.jitter_ms, "rtt_us", (json_int_t)s.rtt_us);
        return *result != NULL ? 0 : refuse(KURER_ENOMEM, "out of memory");
    }
    if (d->err != 0) {
        int rc = explain(d->err, &d->why, d->level, d->peer);
        if (rc != 0)
            return rc;
        return refuse(d->err, "the call %s %s: %s", d->connected ? "with" : "to", who,
                      kurer_strerror(d->err));
    }
    return refuse(d->end == KURER_CALL_END_BUSY ? KURER_EBUSY : KURER_ECLOSED,
                  "the call with %s ended before it connected (%s)", who, end_name(d->end));
}

typedef struct call_opts {
    const char *user, *play, *record, *play_name, *record_name;
    int level;
    long long seconds, wait, delay, timeout;
} call_opts;

static int drive_call(rpc_ctx *c, const call_opts *o, drive *d, json_t **result)
{
    kurer *k = c->k;
    media_files f;
    int rc = open_files(o->play, o->play_name, o->record, o->record_name, &f);
    if (rc == 0) {
        kurer_call_events ev = {on_call, d};
        kurer_set_call_events(k, &ev);
        if ((rc = kurer_connect(k, NET_TIMEOUT * 1000)) != 0)
            net_error(rc, "cannot reach the relay");
    }
    uint64_t id = 0;
    if (rc == 0 && !d->answer_mode && (rc = kurer_call_start(k, o->user, o->level, &id)) != 0)
        rc = refuse(rc, "cannot call %s: %s", o->user, kurer_strerror(rc));
    if (rc == 0) {
        uv_mutex_lock(&d->mu);
        if (!d->answer_mode)
            d->call_id = id;
        uv_mutex_unlock(&d->mu);
        rc = run_call(c, d, &f, (int)o->seconds, d->answer_mode ? (uint64_t)o->wait * 1000 : 0,
                      (uint64_t)o->timeout * 1000);
        if (rc == 0)
            rc = report(k, d, result);
    }
    int frc = kurer__wav_finish(f.record);
    if (rc == 0 && frc != 0) {
        json_decref(*result);
        *result = NULL;
        rc = refuse(frc, "cannot finish %s: %s", o->record_name, kurer_strerror(frc));
    }
    kurer__wav_close(f.play);
    kurer_set_call_events(k, NULL);
    return rc;
}

/* The params both methods share: the audio files (absolute paths: the daemon's working
 * folder is not the client's; *_name how to call them in the words), seconds, timeout. */
static int common_params(json_t *params, call_opts *o)
{
    int rc;
    if ((rc = rpc_str(params, "play", 0, &o->play)) ||
        (rc = rpc_str(params, "record", 0, &o->record)) ||
        (rc = rpc_str(params, "play_name", 0, &o->play_name)) ||
        (rc = rpc_str(params, "record_name", 0, &o->record_name)) ||
        (rc = rpc_int(params, "seconds", 86400, 0, &o->seconds)) ||
        (rc = rpc_int(params, "timeout", CALL_MAX, CALL_MAX, &o->timeout)))
        return rc;
    if ((o->play != NULL && o->play[0] != '/') || (o->record != NULL && o->record[0] != '/'))
        return usage_error("'play' and 'record' must be absolute paths");
    if (o->play_name == NULL)
        o->play_name = o->play;
    if (o->record_name == NULL)
        o->record_name = o->record;
    return 0;
}

static int run_method(rpc_ctx *c, call_opts *o, drive *d, json_t **result)
{
    pthread_mutex_lock(&g_call_mu);
    int busy = g_call_busy;
    g_call_busy = 1;
    pthread_mutex_unlock(&g_call_mu);
    if (busy)
        return refuse(KURER_EBUSY, "a call is running on this home already (one at a time)");
    int rc = uv_mutex_init(&d->mu) != 0 ? refuse(KURER_ENOMEM, "out of memory")
                                        : drive_call(c, o, d, result);
    if (rc != KURER_ENOMEM)
        uv_mutex_destroy(&d->mu);
    pthread_mutex_lock(&g_call_mu);
    g_call_busy = 0;
    pthread_mutex_unlock(&g_call_mu);
    return rc;
}

static const char *const call_params[] = {
    "user", "level", "play", "record", "play_name", "record_name", "seconds", "timeout", NULL};

/* call {user, level, play?, record?, play_name?, record_name?, seconds?, timeout?}: calls user
 * at level; once it connects, a call_connected {peer, level} notification; the result when
 * it ends: {call_id (decimal string), peer, level, end, duration_ms, sent, received, lost, late,
 * concealed, fec_recovered, rejected, jitter_ms, rtt_us}. */
static int m_call(rpc_ctx *c, json_t *params, json_t **result)
{
    call_opts o;
    drive d;
    const char *lv;
    int rc;
    memset(&o, 0, sizeof(o));
    memset(&d, 0, sizeof(d));
    if ((rc = rpc_only(params, call_params)) || (rc = rpc_str(params, "user", 1, &o.user)) ||
        (rc = rpc_str(params, "level", 1, &lv)) || (rc = common_params(params, &o)) ||
        (rc = user_arg("call", o.user)) || (rc = parse_level(lv, &o.level)))
        return rc;
    return run_method(c, &o, &d, result);
}

static const char *const answer_params[] = {"play",    "record",  "play_name", "record_name",
                                            "seconds", "timeout", "wait",      "delay",
                                            "decline", NULL};

/* answer {play?, record?, play_name?, record_name?, seconds?, timeout?, wait?, delay?,
 * decline?}: waits up to wait seconds (default 60) for a call and answers it (after delay
 * seconds of ringing, or declines it); then as call. */
static int m_answer(rpc_ctx *c, json_t *params, json_t **result)
{
    call_opts o;
    drive d;
    int rc, decline;
    memset(&o, 0, sizeof(o));
    memset(&d, 0, sizeof(d));
    if ((rc = rpc_only(params, answer_params)) || (rc = common_params(params, &o)) ||
        (rc = rpc_int(params, "wait", 86400, RING_WAIT, &o.wait)) ||
        (rc = rpc_int(params, "delay", 86400, 0, &o.delay)) ||
        (rc = rpc_bool(params, "decline", 0, &decline)))
        return rc;
    if (decline && o.delay > 0)
        return usage_error("--delay and --decline: not both");
    d.answer_mode = 1;
    d.decline = decline;
    d.delay_s = (int)o.delay;
    return run_method(c, &o, &d, result);
}

const rpc_method rpc_call_methods[] = {
    {"call", m_call},
    {"answer", m_answer},
    {NULL, NULL},
};
