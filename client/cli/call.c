/* kurer call and kurer answer: a call driven from WAV files (16-bit PCM, 48 kHz, mono), so
 * that calls can be tested and shown without a sound card. The methods call and answer
 * (rpc_call.c) run the call where the home is held: in this process, or in the daemon, which
 * then owns the call while this command waits and prints the same lines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kurer/text.h"
#include "kurer/util.h"
#include "rpc.h"

#define RING_WAIT 60    /* kurer answer: seconds to wait for a call, unless --wait */
#define CALL_MAX  86400 /* the longest a call may take in all (the method's timeout) */

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
    "busy, not answered within 45 s, refused or fails. While kurer daemon holds the home, the\n"
    "daemon makes the call (it reads IN.wav and writes OUT.wav) and this command prints the\n"
    "same.\n";

static const char help_answer[] =
    "usage: kurer answer --home H [--play IN.wav] [--record OUT.wav] [--wait SECONDS]\n"
    "                    [--delay SECONDS | --decline] [--seconds N] [--json]\n"
    "\n"
    "Waits up to SECONDS (default 60) for a call and answers it (after --delay SECONDS of\n"
    "ringing; --decline declines it instead). Plays IN.wav into the call and records into\n"
    "OUT.wav (16-bit PCM, 48 kHz, mono) until the caller hangs up, or hangs up itself N\n"
    "seconds after connecting; then prints the call statistics as kurer call does.\n"
    "Exits 1 if no call comes, or it is answered on another of your devices, or fails.\n"
    "While kurer daemon holds the home, the daemon answers the call and this command prints\n"
    "the same.\n";

/* The call connected (the method's notification): said on stderr, so that --json keeps one
 * object on stdout; the level holds for the whole call. */
static void connected_note(void *ud, const char *method, json_t *params)
{
    (void)ud;
    if (strcmp(method, "call_connected") != 0)
        return;
    char who[KURER_TEXT_TERM_MAX(KURER_SUBJECT_MAX)];
    const char *peer = json_string_value(json_object_get(params, "peer"));
    const char *level = json_string_value(json_object_get(params, "level"));
    kurer_text_term(who, sizeof(who), peer != NULL ? peer : "");
    fprintf(stderr, "kurer: call connected with %s [%s]\n", who, level != NULL ? level : "");
}

static unsigned long long num(json_t *r, const char *k)
{
    json_int_t v = json_integer_value(json_object_get(r, k));
    return v > 0 ? (unsigned long long)v : 0;
}

static void report(json_t *r)
{
    const char *peer = json_string_value(json_object_get(r, "peer"));
    const char *level = json_string_value(json_object_get(r, "level"));
    const char *end = json_string_value(json_object_get(r, "end"));
    static const char *const figures[] = {"duration_ms", "sent",      "received",      "lost",
                                          "late",        "concealed", "fec_recovered", "rejected",
                                          "jitter_ms",   "rtt_us"};
    if (g_json) {
        jline o;
        jline_ok(&o);
        uint64_t id = 0;
        const char *ids = json_string_value(json_object_get(r, "call_id"));
        if (ids == NULL || kurer_parse_u64(ids, UINT64_MAX, &id) != 0)
            id = 0;
        kurer_json_kv_uint(&o.j, "call_id", id);
        kurer_json_kv_str(&o.j, "peer", peer != NULL ? peer : "");
        kurer_json_kv_str(&o.j, "level", level != NULL ? level : "");
        kurer_json_kv_str(&o.j, "end", end != NULL ? end : "");
        for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++)
            kurer_json_kv_uint(&o.j, figures[i], num(r, figures[i]));
        jline_end(&o);
        return;
    }
    char who[KURER_TEXT_TERM_MAX(KURER_SUBJECT_MAX)];
    kurer_text_term(who, sizeof(who), peer != NULL ? peer : "");
    printf("call with %s [%s] ended (%s) after %.1f s\n", who, level != NULL ? level : "",
           end != NULL ? end : "", (double)num(r, "duration_ms") / 1000.0);
    printf("sent %llu received %llu lost %llu late %llu concealed %llu fec %llu rejected %llu "
           "jitter %llu ms rtt %.1f ms\n",
           num(r, "sent"), num(r, "received"), num(r, "lost"), num(r, "late"), num(r, "concealed"),
           num(r, "fec_recovered"), num(r, "rejected"), num(r, "jitter_ms"),
           (double)num(r, "rtt_us") / 1000.0);
    fflush(stdout);
}

/* An audio file's path for the method: absolute (the daemon's working folder is not ours),
 * and the name as given for the words. */
static int audio_param(json_t *params, const char *key, const char *path)
{
    char key_name[32], cwd[4096], *abs = NULL;
    if (path == NULL)
        return 0;
    snprintf(key_name, sizeof(key_name), "%s_name", key);
    if (path[0] == '/') {
        abs = strdup(path);
    } else if (getcwd(cwd, sizeof(cwd)) != NULL) {
        size_t n = strlen(cwd) + strlen(path) + 2;
        abs = malloc(n);
        if (abs != NULL)
            snprintf(abs, n, "%s/%s", cwd, path);
    } else {
        return refuse(KURER_EIO, "cannot tell the working folder: %s", strerror(errno));
    }
    if (abs == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    json_object_set_new(params, key, json_string(abs));
    json_object_set_new(params, key_name, json_string(path));
    free(abs);
    return 0;
}

/* The options as the method's params (NULL with the usage error said). */
static int call_params(int argc, char **argv, int answer_mode, const char **home, json_t **out)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0},   {"json", 0, 0},    {"home", V, 0}, {"level", V, 0}, {"play", V, 0},
        {"record", V, 0}, {"seconds", V, 0}, {"wait", V, 0}, {"delay", V, 0}, {"decline", 0, 0}};
    kurer_args a;
    int rc, seconds = 0, wait = RING_WAIT, delay = 0, level = 0;
    const char *user = NULL;
    if ((rc = command_args(&a, opts, NOPTS(opts), answer_mode ? 0 : 1, answer_mode ? 0 : 1, "USER",
                           answer_mode ? help_answer : help_call, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", home)) || (rc = opt_seconds(&a, "seconds", 0, &seconds)))
        return rc;
    if (answer_mode) {
        if (opt(&a, "level") != NULL)
            return usage_error("--level is the caller's: kurer answer takes the call's level");
        if ((rc = opt_seconds(&a, "wait", RING_WAIT, &wait)) ||
            (rc = opt_seconds(&a, "delay", 0, &delay)))
            return rc;
        if (flag(&a, "decline") && opt(&a, "delay") != NULL)
            return usage_error("--delay and --decline: not both");
    } else {
        const char *lv;
        user = a.pos[0];
        if (opt(&a, "wait") != NULL || opt(&a, "delay") != NULL || flag(&a, "decline"))
            return usage_error("--wait, --delay and --decline are kurer answer's");
        if ((rc = user_arg("call", user)) || (rc = need(&a, "level", &lv)) ||
            (rc = parse_level(lv, &level)))
            return rc;
    }
    /* timeout: how long the command waits for the daemon's answer (the call's whole length) */
    json_t *p = answer_mode
                    ? json_pack("{s:i,s:i,s:i,s:b,s:i}", "seconds", seconds, "wait", wait, "delay",
                                delay, "decline", flag(&a, "decline"), "timeout", CALL_MAX)
                    : json_pack("{s:s,s:s,s:i,s:i}", "user", user, "level", kurer_level_name(level),
                                "seconds", seconds, "timeout", CALL_MAX);
    if (p == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    if ((rc = audio_param(p, "play", opt(&a, "play"))) != 0 ||
        (rc = audio_param(p, "record", opt(&a, "record"))) != 0) {
        json_decref(p);
        return rc;
    }
    *out = p;
    return 0;
}

static int call_common(int argc, char **argv, int answer_mode)
{
    const char *home = NULL;
    json_t *params = NULL, *res = NULL;
    cli_target t;
    int rc = call_params(argc, argv, answer_mode, &home, &params);
    if (rc != 0)
        return rc;
    if ((rc = cli_open(home, &t)) != 0) {
        json_decref(params);
        return rc;
    }
    t.on_note = connected_note;
    rc = cli_run(&t, answer_mode ? "answer" : "call", params, &res);
    cli_close(&t);
    if (rc == 0)
        report(res);
    json_decref(res);
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
