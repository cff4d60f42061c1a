/* kurer call and kurer answer: a call driven from WAV files (16-bit PCM, 48 kHz, mono), so
 * that calls can be tested and shown without a sound card. This thread plays the app's audio
 * thread: every 20 ms it hands one frame of --play in and writes one frame to --record; call
 * events come on the library thread and are handed over under a mutex. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "call_audio.h"
#include "cli.h"
#include "kurer/text.h"
#include "kurer/util.h"

#define FRAME_NS  20000000L /* 20 ms */
#define TAIL_MS   1000      /* kurer call: after --play ends, this long before hanging up */
#define RING_WAIT 60        /* kurer answer: seconds to wait for a call, unless --wait */

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

static int open_files(const char *play, const char *record, media_files *f)
{
    char why[KURER__WAV_WHY_MAX];
    memset(f, 0, sizeof(*f));
    why[0] = '\0';
    int rc = play != NULL ? kurer__wav_open(play, &f->play, why, sizeof(why)) : 0;
    if (rc != 0)
        return refuse(rc, "%s: %s", play, why[0] != '\0' ? why : kurer_strerror(rc));
    if (play == NULL)
        f->play_done = 1;
    if (record != NULL && (rc = kurer__wav_create(record, &f->record)) != 0)
        return refuse(rc, "cannot create %s: %s", record, kurer_strerror(rc));
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

/* On stderr, so that --json keeps one object on stdout: the level holds for the whole call. */
static void say_connected(drive *d)
{
    char who[KURER_TEXT_TERM_MAX(KURER_SUBJECT_MAX)];
    uv_mutex_lock(&d->mu);
    kurer_text_term(who, sizeof(who), d->peer);
    int level = d->level;
    uv_mutex_unlock(&d->mu);
    fprintf(stderr, "kurer: call connected with %s [%s]\n", who, kurer_level_name(level));
}

/* The call runs: 20 ms steps until it ends, or until --seconds of connection (or --play and a
 * second) have passed, or the ring wait is over (wait_ms, 0: none). */
static int run_call(kurer *k, drive *d, media_files *f, int seconds, uint64_t wait_ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    uint64_t start = kurer_time_mono_ms(), connected_at = 0;
    int rc = 0, hung = 0;
    for (;;) {
        uint64_t now = kurer_time_mono_ms();
        if (d->answer_mode)
            maybe_answer(k, d, now);
        uv_mutex_lock(&d->mu);
        int done = d->done, connected = d->connected;
        uint64_t id = d->call_id;
        uv_mutex_unlock(&d->mu);
        if (done)
            break;
        if (id == 0 && wait_ms != 0 && now - start >= wait_ms)
            return refuse(KURER_ETIMEOUT, "no call came within %llu s",
                          (unsigned long long)(wait_ms / 1000));
        if (connected && connected_at == 0) {
            connected_at = now;
            say_connected(d);
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
            int hrc = kurer_call_hangup(k, id);
            if (hrc != 0 && hrc != KURER_ENOTFOUND)
                fprintf(stderr, "kurer: cannot hang up: %s\n", kurer_strerror(hrc));
            return rc;
        }
        next_tick(&t);
    }
    return 0;
}

static void stats_json(const drive *d, const kurer_call_stats *s, int failed)
{
    jline o;
    jline_ok(&o);
    kurer_json_kv_uint(&o.j, "call_id", d->call_id);
    kurer_json_kv_str(&o.j, "peer", d->peer);
    kurer_json_kv_str(&o.j, "level", kurer_level_name(d->level));
    kurer_json_kv_str(&o.j, "end", failed ? "failed" : end_name(d->end));
    if (failed)
        kurer_json_kv_str(&o.j, "error", kurer_err_name(d->err));
    kurer_json_kv_uint(&o.j, "duration_ms", s->duration_ms);
    kurer_json_kv_uint(&o.j, "sent", s->sent);
    kurer_json_kv_uint(&o.j, "received", s->received);
    kurer_json_kv_uint(&o.j, "lost", s->lost);
    kurer_json_kv_uint(&o.j, "late", s->late);
    kurer_json_kv_uint(&o.j, "concealed", s->concealed);
    kurer_json_kv_uint(&o.j, "fec_recovered", s->fec_recovered);
    kurer_json_kv_uint(&o.j, "rejected", s->rejected);
    kurer_json_kv_uint(&o.j, "jitter_ms", s->jitter_ms);
    kurer_json_kv_uint(&o.j, "rtt_us", s->rtt_us);
    jline_end(&o);
}

/* The call's end as the exit: its statistics printed (or JSON), and a call that never
 * connected (declined, busy, timeout, refused, failed) refused with its reason. */
static int report(kurer *k, drive *d)
{
    kurer_call_stats s;
    memset(&s, 0, sizeof(s));
    if (kurer_call_get_stats(k, d->call_id, &s) != 0)
        memset(&s, 0, sizeof(s)); /* (a call that never had media: no figures) */
    int failed = d->err != 0;
    char who[KURER_TEXT_TERM_MAX(KURER_SUBJECT_MAX)];
    kurer_text_term(who, sizeof(who), d->peer);
    if (!failed && (d->connected || d->end == KURER_CALL_END_LOCAL_HANGUP)) {
        if (g_json) {
            stats_json(d, &s, 0);
        } else {
            printf("call with %s [%s] ended (%s) after %.1f s\n", who, kurer_level_name(d->level),
                   end_name(d->end), s.duration_ms / 1000.0);
            printf("sent %llu received %llu lost %llu late %llu concealed %llu fec %llu "
                   "rejected %llu jitter %u ms rtt %.1f ms\n",
                   (unsigned long long)s.sent, (unsigned long long)s.received,
                   (unsigned long long)s.lost, (unsigned long long)s.late,
                   (unsigned long long)s.concealed, (unsigned long long)s.fec_recovered,
                   (unsigned long long)s.rejected, s.jitter_ms, s.rtt_us / 1000.0);
            fflush(stdout);
        }
        return 0;
    }
    if (failed) {
        int rc = explain(d->err, &d->why, d->level, d->peer);
        if (rc != 0)
            return rc;
        return refuse(d->err, "the call %s %s: %s", d->connected ? "with" : "to", who,
                      kurer_strerror(d->err));
    }
    return refuse(d->end == KURER_CALL_END_BUSY ? KURER_EBUSY : KURER_ECLOSED,
                  "the call with %s ended before it connected (%s)", who, end_name(d->end));
}

static const char help_call[] =
    "usage: kurer call --home H USER --level LEVEL [--play IN.wav] [--record OUT.wav]\n"
    "                  [--seconds N] [--json]\n"
    "\n"
    "Calls USER (every device of USER rings) at LEVEL (UNCLASSIFIED, RESTRICTED or\n"
    "CONFIDENTIAL: refused unless your certificate, every device of USER and the root allow\n"
    "it; the level holds for the whole call). When the call connects it plays IN.wav into\n"
    "the call and records what it hears into OUT.wav (16-bit PCM, 48 kHz, mono; other formats\n"
    "are refused), then hangs up N seconds after connecting (without --seconds: a second\n"
    "after IN.wav ends) and prints the call statistics (sent, received, lost, late,\n"
    "concealed, FEC, rejected, jitter, round-trip time). Exits 1 if the call is declined,\n"
    "busy, not answered within 45 s, refused or fails.\n";

static const char help_answer[] =
    "usage: kurer answer --home H [--play IN.wav] [--record OUT.wav] [--wait SECONDS]\n"
    "                    [--delay SECONDS | --decline] [--seconds N] [--json]\n"
    "\n"
    "Waits up to SECONDS (default 60) for a call and answers it (after --delay SECONDS of\n"
    "ringing; --decline declines it instead). Plays IN.wav into the call and records into\n"
    "OUT.wav (16-bit PCM, 48 kHz, mono) until the caller hangs up, or hangs up itself N\n"
    "seconds after connecting; then prints the call statistics as kurer call does.\n"
    "Exits 1 if no call comes, or it is answered on another of your devices, or fails.\n";

typedef struct call_opts {
    const char *home, *user, *play, *record;
    int level, seconds, wait, delay;
} call_opts;

static int drive_call(call_opts *o, drive *d)
{
    kurer *k = NULL;
    media_files f;
    int rc = open_files(o->play, o->record, &f);
    if (rc == 0)
        rc = open_home(o->home, &k);
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
        rc = run_call(k, d, &f, o->seconds, d->answer_mode ? (uint64_t)o->wait * 1000 : 0);
        if (rc == 0)
            rc = report(k, d);
    }
    int frc = kurer__wav_finish(f.record);
    if (rc == 0 && frc != 0)
        rc = refuse(frc, "cannot finish %s: %s", o->record, kurer_strerror(frc));
    kurer__wav_close(f.play);
    if (k != NULL) {
        kurer_set_call_events(k, NULL);
        kurer_disconnect(k);
        kurer_close(k);
    }
    return rc;
}

static int call_common(int argc, char **argv, int answer_mode)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0},   {"json", 0, 0},    {"home", V, 0}, {"level", V, 0}, {"play", V, 0},
        {"record", V, 0}, {"seconds", V, 0}, {"wait", V, 0}, {"delay", V, 0}, {"decline", 0, 0}};
    kurer_args a;
    call_opts o;
    drive d;
    memset(&o, 0, sizeof(o));
    memset(&d, 0, sizeof(d));
    int rc = command_args(&a, opts, NOPTS(opts), answer_mode ? 0 : 1, answer_mode ? 0 : 1, "USER",
                          answer_mode ? help_answer : help_call, argc, argv);
    if (rc != 0)
        return rc;
    if ((rc = need(&a, "home", &o.home)) || (rc = opt_seconds(&a, "seconds", 0, &o.seconds)))
        return rc;
    o.play = opt(&a, "play");
    o.record = opt(&a, "record");
    if (answer_mode) {
        if (opt(&a, "level") != NULL)
            return usage_error("--level is the caller's: kurer answer takes the call's level");
        if ((rc = opt_seconds(&a, "wait", RING_WAIT, &o.wait)) ||
            (rc = opt_seconds(&a, "delay", 0, &o.delay)))
            return rc;
        if (flag(&a, "decline") && opt(&a, "delay") != NULL)
            return usage_error("--delay and --decline: not both");
        d.decline = flag(&a, "decline");
        d.delay_s = o.delay;
    } else {
        const char *lv;
        o.user = a.pos[0];
        if (opt(&a, "wait") != NULL || opt(&a, "delay") != NULL || flag(&a, "decline"))
            return usage_error("--wait, --delay and --decline are kurer answer's");
        if ((rc = user_arg("call", o.user)) || (rc = need(&a, "level", &lv)) ||
            (rc = parse_level(lv, &o.level)))
            return rc;
    }
    d.answer_mode = answer_mode;
    if (uv_mutex_init(&d.mu) != 0)
        return refuse(KURER_ENOMEM, "out of memory");
    rc = drive_call(&o, &d);
    uv_mutex_destroy(&d.mu);
    return rc;
}

int cmd_call(int argc, char **argv)
{
    return call_common(argc, argv, 0);
}

int cmd_answer(int argc, char **argv)
{
    return call_common(argc, argv, 1);
}
