/* Operations (issue "Operations", items 2 and 3): the configuration file (units, FILE:LINE
 * errors, check-config, a relay from its file alone, the command line over the file, the
 * example etc/relay.conf), the privilege drop of a relay started as root, the seccomp filter and
 * sd_notify. Real kurer-relay processes on 127.0.0.1 (relay_harness.c). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "relay.h"
#include "relay_harness.h"

/* Runs a shell command; its exit status, and stdout+stderr into out. */
static int run_cmd(const char *cmd, char *out, size_t n)
{
    char full[2048];
    snprintf(full, sizeof(full), "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t len = fread(out, 1, n - 1, p);
    out[len] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_conf(world *w, const char *name, const char *text, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", w->dir, name);
    write_file(path, text, strlen(text));
}

/* A complete file: run needs nothing else. */
static void full_conf(world *w, char *path, size_t n, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "# a relay from its file alone\n"
             "dir = %s/relay\nlisten = 127.0.0.1:0\nroot = %s/root.crt\nlog_level = DEBUG\n"
             "idle_timeout_ms = 2min\nhandshake_timeout_ms = 5 s\nout_cap = 2MiB\n"
             "commit_delay_us = 1ms\nprekey_take_window_s = 1h\n%s",
             w->dir, w->dir, extra != NULL ? extra : "");
    write_conf(w, "relay.conf", text, path, n);
}

static void test_units(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(kurer_relay_config_value("idle_timeout_ms", "60s", &v), 0);
    assert_int_equal(v, 60000);
    assert_int_equal(kurer_relay_config_value("idle_timeout_ms", "60000", &v), 0);
    assert_int_equal(v, 60000); /* a bare number keeps the key's unit */
    assert_int_equal(kurer_relay_config_value("idle_timeout_ms", "2 min", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(kurer_relay_config_value("idle_timeout_ms", "1d", &v), 0);
    assert_int_equal(v, 86400000);
    assert_int_equal(kurer_relay_config_value("prekey_take_window_s", "1h", &v), 0);
    assert_int_equal(v, 3600);
    assert_int_equal(kurer_relay_config_value("commit_delay_us", "2ms", &v), 0);
    assert_int_equal(v, 2000);
    assert_int_equal(kurer_relay_config_value("upload_buffer_max", "100MiB", &v), 0);
    assert_int_equal(v, 100u << 20);
    assert_int_equal(kurer_relay_config_value("out_cap", "2MB", &v), 0);
    assert_int_equal(v, 2000000);
    assert_int_equal(kurer_relay_config_value("max_record", "65535B", &v), 0);
    assert_int_equal(v, 65535);
    /* refused: the wrong kind of unit, an unknown one, a fraction of the key's unit, a unit on a
     * plain count, out of range, past 64 bits */
    assert_int_equal(kurer_relay_config_value("idle_timeout_ms", "5MiB", &v), KURER_EINVAL);
    assert_int_equal(kurer_relay_config_value("out_cap", "2s", &v), KURER_EINVAL);
    assert_int_equal(kurer_relay_config_value("idle_timeout_ms", "1500us", &v), KURER_EINVAL);
    assert_int_equal(kurer_relay_config_value("prekey_take_window_s", "500ms", &v), KURER_EINVAL);
    assert_int_equal(kurer_relay_config_value("mailbox_max", "5k", &v), KURER_EINVAL);
    assert_int_equal(kurer_relay_config_value("mailbox_max", "x", &v), KURER_EINVAL);
    assert_int_equal(kurer_relay_config_value("max_record", "64KiB", &v), KURER_ELIMIT);
    assert_int_equal(kurer_relay_config_value("max_record", "1MiB", &v), KURER_ELIMIT);
    assert_int_equal(kurer_relay_config_value("idle_timeout_ms", "99999999999999999999", &v),
                     KURER_ELIMIT);
    assert_int_equal(kurer_relay_config_value("idle_timeout_ms", "999999999999d", &v),
                     KURER_ELIMIT);
    assert_int_equal(kurer_relay_config_value("dir", "/x", &v), KURER_ENOTFOUND);
}

/* etc/relay.conf loads as it is, and with every commented line taken in it gives exactly the
 * defaults: its comments say the truth. */
static void test_example_conf(void **state)
{
    world *w = *state;
    char path[300], line[512], *owned;
    kurer_relay_opts o, d;
    kurer_relay_opts_default(&o);
    assert_int_equal(kurer_relay_config_load(&o, KURER_EXAMPLE_CONF, 0, stderr, &owned), 0);
    assert_non_null(o.dir);
    assert_int_equal(o.n_listen, 1);
    assert_int_equal(o.n_roots, 1);
    free(owned);
    FILE *in = fopen(KURER_EXAMPLE_CONF, "r");
    snprintf(path, sizeof(path), "%s/all.conf", w->dir);
    FILE *out = fopen(path, "w");
    assert_non_null(in);
    assert_non_null(out);
    while (fgets(line, sizeof(line), in) != NULL) {
        size_t k = strspn(line + 2, "abcdefghijklmnopqrstuvwxyz_");
        if (strncmp(line, "# ", 2) == 0 && k > 0 && strncmp(line + 2 + k, " = ", 3) == 0)
            fputs(line + 2, out); /* "# key = default" */
        else if (line[0] != '#')
            fputs(line, out);
    }
    fclose(in);
    fclose(out);
    kurer_relay_opts_default(&o);
    kurer_relay_opts_default(&d);
    assert_int_equal(kurer_relay_config_load(&o, path, 0, stderr, &owned), 0);
    assert_memory_equal(&o.cfg, &d.cfg, sizeof(d.cfg));
    assert_int_equal(o.seccomp, 1);
    assert_int_equal(o.metrics_public, 0);
    assert_string_equal(o.store, "sqlite");
    assert_int_equal(o.n_listen, 2);
    free(owned);
}

static void test_check_config_ok(void **state)
{
    world *w = *state;
    char path[300], cmd[1024], out[4096], want[400];
    full_conf(w, path, sizeof(path), "listen = [::1]:0\nmetrics = 127.0.0.1:0\nseccomp = on\n");
    snprintf(cmd, sizeof(cmd), "%s check-config --config %s", KURER_RELAY_BIN, path);
    assert_int_equal(run_cmd(cmd, out, sizeof(out)), 0);
    snprintf(want, sizeof(want), "%s: ok\n", path);
    assert_string_equal(out, want);
    /* It bound nothing and opened no store. */
    snprintf(want, sizeof(want), "%s/relay/relay.db", w->dir);
    assert_int_equal(access(want, F_OK), -1);
}

static void test_check_config_errors(void **state)
{
    world *w = *state;
    char path[300], cmd[1024], out[4096], want[400];
    char text[1024];
    snprintf(text, sizeof(text),
             "dir = %s/relay\n"
             "no_such_key = 1\n"
             "idle_timeout_ms = 5MiB\n"
             "listen = 127.0.0.1:0\n"
             "dir = %s/relay\n"
             "root = %s/missing.crt\n"
             "max_record = 100000\n"
             "just words\n"
             "metrics_public = maybe\n",
             w->dir, w->dir, w->dir);
    write_conf(w, "bad.conf", text, path, sizeof(path));
    snprintf(cmd, sizeof(cmd), "%s check-config --config %s", KURER_RELAY_BIN, path);
    assert_int_equal(run_cmd(cmd, out, sizeof(out)), 1);
    static const char *const expect[] = {
        ":2: unknown key 'no_such_key'",
        ":3: idle_timeout_ms = 5MiB: unknown unit 'MiB'",
        ":5: dir given twice (first on line 1)",
        ":6: root = ",
        ":7: max_record = 100000 is out of range (128..65535)",
        ":8: 'just words' is not 'key = value'",
        ":9: metrics_public = maybe: expected yes or no",
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        snprintf(want, sizeof(want), "%s%s", path, expect[i]);
        if (strstr(out, want) == NULL)
            fail_msg("wanted '%s' in:\n%s", want, out);
    }
    assert_non_null(strstr(out, "missing.crt: No such file or directory"));
    assert_null(strstr(out, ": ok"));
    /* run refuses the same file with exit 2 before touching anything */
    snprintf(cmd, sizeof(cmd), "%s run --config %s", KURER_RELAY_BIN, path);
    assert_int_equal(run_cmd(cmd, out, sizeof(out)), 2);
    snprintf(want, sizeof(want), "%s:2: unknown key 'no_such_key'", path);
    assert_non_null(strstr(out, want));
    /* a file without a root: named as what is missing */
    snprintf(text, sizeof(text), "dir = %s/relay\nlisten = 127.0.0.1:0\n", w->dir);
    write_conf(w, "noroot.conf", text, path, sizeof(path));
    snprintf(cmd, sizeof(cmd), "%s check-config --config %s", KURER_RELAY_BIN, path);
    assert_int_equal(run_cmd(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "has no root"));
}

/* Serves a device: the handshake, then a ping. */
static void serves(world *w)
{
    device d;
    client cl;
    make_device(w, &d, "anna@mof", 1, 500, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cl, &d), 0);
    cl_free(&cl);
}

/* Starts the relay with argv; on failure shows its log. */
static void start_argv(world *w, const char *const *argv)
{
    if (try_start_relay_argv(w, argv) != 0) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "cat %s/relay.log", w->dir);
        (void)!system(cmd);
        fail_msg("%s did not start", argv[0]);
    }
}

static void test_config_only(void **state)
{
    world *w = *state;
    char path[300];
    full_conf(w, path, sizeof(path), NULL);
    const char *argv[] = {KURER_RELAY_BIN, "run", "--config", path, NULL};
    start_argv(w, argv);
    serves(w);
    int st = stop_relay(w, SIGTERM);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* The audit log: its own file (0600), security events only: the start (version, listen
 * addresses), a device authenticated, one refused (expired) with its reason, a reload, the stop;
 * no line of the main log's routine (fetches, deliveries). */
static void test_audit_log(void **state)
{
    world *w = *state;
    char path[300], audit[300], extra[400];
    snprintf(audit, sizeof(audit), "%s/audit.log", w->dir);
    snprintf(extra, sizeof(extra), "audit_log = %s\n", audit);
    full_conf(w, path, sizeof(path), extra);
    const char *argv[] = {KURER_RELAY_BIN, "run", "--config", path, NULL};
    start_argv(w, argv);
    serves(w);
    device old;
    client cx;
    make_device(w, &old, "gammel@mof", 1, 501, 0, 1, 0);
    assert_int_equal(cl_connect(w, &cx, &old), KURER_EEXPIRED);
    cl_free(&cx);
    kill(w->relay, SIGHUP);
    usleep(300 * 1000);
    int st = stop_relay(w, SIGTERM);
    assert_true(WIFEXITED(st));
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(kurer_file_read(audit, 1 << 20, &data, &len), 0);
    char *t = calloc(1, len + 1);
    assert_non_null(t);
    memcpy(t, data, len);
    free(data);
    struct stat sb;
    assert_int_equal(stat(audit, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_non_null(strstr(t, "\"component\":\"audit\",\"event\":\"started\",\"version\":\""));
    assert_non_null(strstr(t, "\"listen\":\"listening 127.0.0.1:"));
    assert_non_null(strstr(t, "\"event\":\"authenticated\",\"user\":\"anna@mof\""));
    assert_non_null(strstr(t, "\"event\":\"refused\""));
    assert_non_null(strstr(t, "\"reason\":\"EEXPIRED\""));
    assert_non_null(strstr(t, "\"event\":\"reload\""));
    assert_non_null(strstr(t, "\"event\":\"stopped\""));
    assert_null(strstr(t, "fetch")); /* routine events stay in the main log */
    assert_null(strstr(t, "deliver"));
    free(t);
}

static void test_cmdline_overrides(void **state)
{
    world *w = *state;
    char path[300], dir[300], text[600];
    /* The file's dir does not exist, its port is taken or privileged, its log level is off. */
    snprintf(text, sizeof(text),
             "dir = %s/nowhere\nlisten = 127.0.0.1:1\nroot = %s/root.crt\nlog_level = off\n",
             w->dir, w->dir);
    write_conf(w, "relay.conf", text, path, sizeof(path));
    snprintf(dir, sizeof(dir), "%s/relay", w->dir);
    const char *argv[] = {KURER_RELAY_BIN, "run",         "--config",    path,   "--dir", dir,
                          "--listen",      "127.0.0.1:0", "--log-level", "info", NULL};
    start_argv(w, argv);
    assert_int_not_equal(ntohs(((struct sockaddr_in *)&w->addr)->sin_port), 1);
    serves(w);
    stop_relay(w, SIGTERM);
    /* the relay logged at info (the file said off) */
    char log[300], *data;
    size_t len;
    snprintf(log, sizeof(log), "%s/relay.log", w->dir);
    assert_int_equal(kurer_file_read(log, 1 << 20, (uint8_t **)&data, &len), 0);
    assert_non_null(strstr(data, "\"event\":\"started\""));
    free(data);
}

/* "Seccomp:" and "Seccomp_filters:" of a process. */
static void seccomp_of(pid_t pid, int *mode, int *filters)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    *mode = *filters = -1;
    while (fgets(buf, sizeof(buf), f) != NULL) {
        if (strncmp(buf, "Seccomp:", 8) == 0)
            *mode = atoi(buf + 8);
        if (strncmp(buf, "Seccomp_filters:", 16) == 0)
            *filters = atoi(buf + 16);
    }
    fclose(f);
}

static void test_seccomp(void **state)
{
    world *w = *state;
    int mode, filters, own_mode, own_filters;
    seccomp_of(getpid(), &own_mode, &own_filters);
    start_relay(w, NULL, NULL);
    seccomp_of(w->relay, &mode, &filters);
    assert_int_equal(mode, 2);
    if (own_filters >= 0)
        assert_int_equal(filters, own_filters + 1);
    serves(w);
    int st = stop_relay(w, SIGTERM);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    start_relay(w, "--no-seccomp", NULL);
    seccomp_of(w->relay, &mode, &filters);
    assert_int_equal(filters, own_filters);
    stop_relay(w, SIGTERM);
}

/* Reads one datagram (ms at most) into buf; its length, or 0. */
static size_t recv_within(int fd, char *buf, size_t n, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return 0;
    ssize_t r = recv(fd, buf, n - 1, 0);
    buf[r > 0 ? r : 0] = '\0';
    return r > 0 ? (size_t)r : 0;
}

static void test_sd_notify(void **state)
{
    world *w = *state;
    struct sockaddr_un sun;
    char buf[512];
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    assert_true(strlen(w->dir) + 8 < sizeof(sun.sun_path));
    memcpy(sun.sun_path, w->dir, strlen(w->dir));
    memcpy(sun.sun_path + strlen(w->dir), "/notify", 8);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    setenv("NOTIFY_SOCKET", sun.sun_path, 1);
    setenv("WATCHDOG_USEC", "1000000", 1);
    start_relay(w, NULL, NULL);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    assert_true(recv_within(fd, buf, sizeof(buf), 5000) > 0);
    assert_non_null(strstr(buf, "READY=1"));
    assert_non_null(strstr(buf, "STATUS=listening 127.0.0.1:"));
    /* at half of WATCHDOG_USEC: four in 2 s (two, on a loaded machine) */
    int pets = 0;
    uint64_t end = kurer_time_mono_ms() + 2000;
    while (kurer_time_mono_ms() < end)
        if (recv_within(fd, buf, sizeof(buf), 200) > 0 && strcmp(buf, "WATCHDOG=1") == 0)
            pets++;
    assert_true(pets >= 2);
    kill(w->relay, SIGTERM);
    int stopping = 0;
    for (int i = 0; i < 10 && !stopping; i++)
        if (recv_within(fd, buf, sizeof(buf), 1000) > 0 && strcmp(buf, "STOPPING=1") == 0)
            stopping = 1;
    assert_true(stopping);
    /* it exits by itself (a second SIGTERM after its handles closed would kill it) */
    int st = -1;
    for (int i = 0; i < 1000 && waitpid(w->relay, &st, WNOHANG) != w->relay; i++)
        usleep(10000);
    w->relay = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    close(fd);
}

/* As root without KURER_RELAY_ALLOW_ROOT (which ctest sets for every other relay test). */
static void test_root_refused(void **state)
{
    world *w = *state;
    char path[300], cmd[1024], out[4096];
    if (geteuid() != 0)
        skip();
    full_conf(w, path, sizeof(path), NULL);
    snprintf(cmd, sizeof(cmd), "env -u KURER_RELAY_ALLOW_ROOT %s run --config %s", KURER_RELAY_BIN,
             path);
    assert_int_equal(run_cmd(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "refusing to run as root without a user to drop to"));
    /* nothing was created */
    snprintf(path, sizeof(path), "%s/relay/relay.db", w->dir);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_root_drops(void **state)
{
    world *w = *state;
    char path[400], dir[64], cmd[1024], text[1024], buf[4096];
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || pw == NULL)
        skip();
    uid_t uid = pw->pw_uid;
    /* A folder of nobody's own, outside the test's (which only root may enter). */
    snprintf(dir, sizeof(dir), "/tmp/kurer-relay-drop-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "%s init --dir %s/r >/dev/null && chown -R nobody %s",
             KURER_RELAY_BIN, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof(path), "%s/r/relay.pub", dir);
    uint8_t *pub;
    size_t len;
    assert_int_equal(kurer_file_read(path, 200, &pub, &len), 0);
    pub[64] = '\0';
    assert_int_equal(kurer_hex_decode(w->relay_pk, 32, (char *)pub), 0);
    free(pub);
    snprintf(text, sizeof(text),
             "dir = %s/r\nlisten = 127.0.0.1:0\nroot = %s/root.crt\n"
             "user = nobody\n",
             dir, w->dir);
    write_conf(w, "drop.conf", text, path, sizeof(path));
    unsetenv("KURER_RELAY_ALLOW_ROOT");
    const char *argv[] = {KURER_RELAY_BIN, "run", "--config", path, NULL};
    int started = try_start_relay_argv(w, argv);
    setenv("KURER_RELAY_ALLOW_ROOT", "1", 1);
    assert_int_equal(started, 0);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)w->relay);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned ids[4] = {0, 0, 0, 0};
    while (fgets(buf, sizeof(buf), f) != NULL)
        if (sscanf(buf, "Uid: %u %u %u %u", &ids[0], &ids[1], &ids[2], &ids[3]) == 4)
            break;
    fclose(f);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ids[i], uid);
    serves(w);
    stop_relay(w, SIGTERM);
    struct stat st;
    snprintf(path, sizeof(path), "%s/r/relay.db", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, uid); /* the store is the user's */
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test_setup_teardown(test_example_conf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_config_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmdline_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seccomp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sd_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_drops, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
