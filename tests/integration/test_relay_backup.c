/* kurer-relay backup and restore against a real relay (docs/relay.md, "Backup"), and copies of
 * one device's home told apart by their instance (docs/protocol.md 1.1, "Instances"). */
#define _GNU_SOURCE 1 /* memmem */
#include "relay_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MARK_LEN 32
#define MAX_SENT 20000

static uint8_t g_mark[MARK_LEN]; /* in every envelope's content: must never be in a backup */

/* Starts kurer-relay with args (NULL-terminated), stdout and stderr to W/name.out. */
static pid_t spawn_relay_cmd(world *w, const char *name, const char *const *args)
{
    char out[400];
    const char *argv[12] = {KURER_RELAY_BIN};
    size_t n = 1;
    for (; args[n - 1] != NULL && n < 11; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    snprintf(out, sizeof(out), "%s/%s.out", w->dir, name);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, KURER_RELAY_BIN, &fa, NULL, (char *const *)argv, environ),
                     0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static int wait_exit(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs kurer-relay to the end: its exit status; what it printed in *out (free it). */
static int run_relay_cmd(world *w, const char *name, const char *const *args, char **out)
{
    char path[400];
    int st = wait_exit(spawn_relay_cmd(w, name, args));
    uint8_t *data;
    size_t len;
    snprintf(path, sizeof(path), "%s/%s.out", w->dir, name);
    assert_int_equal(kurer_file_read(path, 1 << 20, &data, &len), 0);
    *out = (char *)data;
    return st;
}

/* One envelope to `to` whose content is n, the run's marker and n again. */
static uint64_t send_marked(client *cl, const device *to, uint32_t n, uint8_t id[16])
{
    kurer_client_frame f;
    kurer_envelope e;
    uint8_t content[4 + MARK_LEN + 4];
    memset(&f, 0, sizeof(f));
    memset(&e, 0, sizeof(e));
    kurer_random(e.id, sizeof(e.id));
    memcpy(id, e.id, 16);
    e.to = to->addr;
    e.type = KURER_ENVELOPE_MESSAGE;
    memcpy(content, &n, 4);
    memcpy(content + 4, g_mark, MARK_LEN);
    memcpy(content + 4 + MARK_LEN, &n, 4);
    e.content = content;
    e.content_len = sizeof(content);
    f.body = KURER_CLIENT_SEND;
    f.u.send.envelopes = &e;
    f.u.send.n = 1;
    return cl_send(cl, &f);
}

/* The status of the SendResult answering id. */
static int send_status(client *cl, uint64_t id)
{
    kurer_server_frame r;
    for (;;) {
        assert_int_equal(cl_next(cl, &r, 10000), 1);
        if (r.request_id == id)
            break;
        kurer_server_frame_release(&r);
    }
    int st =
        r.body == KURER_SERVER_SEND_RESULT ? (int)r.u.send_result.users[0].status : r.u.error.code;
    kurer_server_frame_release(&r);
    return st;
}

typedef struct sent {
    uint8_t id[16];
    int before; /* accepted before the backup command started */
    int seen;
} sent;

static uint8_t *read_all(const char *path, size_t *len)
{
    uint8_t *data;
    assert_int_equal(kurer_file_read(path, (size_t)1 << 30, &data, len), 0);
    return data;
}

/* The file is no plain SQLite database and holds no envelope content in clear. */
static void check_encrypted(const char *path)
{
    size_t len;
    uint8_t *data = read_all(path, &len);
    assert_true(len > 4096);
    assert_true(memcmp(data, "SQLite format 3", 15) != 0);
    assert_null(memmem(data, len, g_mark, MARK_LEN));
    assert_null(memmem(data, len, g_mark, 8)); /* not even a piece of it */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(data);
}

static void mode_is(const char *dir, const char *name, unsigned mode)
{
    char path[400];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, mode);
}

/* Connects b to the (restored) relay and marks what it gets delivered. */
static size_t drain(world *w, const device *b, sent *s, size_t n)
{
    client cb;
    kurer_server_frame f;
    size_t got = 0;
    assert_int_equal(cl_connect(w, &cb, b), 0);
    for (;;) {
        assert_int_equal(cl_next(&cb, &f, 10000), 1);
        if (f.body == KURER_SERVER_QUEUE_EMPTY) {
            kurer_server_frame_release(&f);
            break;
        }
        if (f.body == KURER_SERVER_DELIVER) {
            const kurer_envelope *e = &f.u.deliver.envelope;
            assert_int_equal(e->content_len, 4 + MARK_LEN + 4);
            assert_memory_equal(e->content + 4, g_mark, MARK_LEN);
            for (size_t i = 0; i < n; i++)
                if (memcmp(s[i].id, e->id, 16) == 0 && !s[i].seen) {
                    s[i].seen = 1;
                    got++;
                }
        }
        kurer_server_frame_release(&f);
    }
    cl_free(&cb);
    return got;
}

/* Backs up a relay while a sender keeps sending; every envelope accepted before the backup
 * command started is in the restored relay; the backup is encrypted. */
static void test_backup_under_load(void **state)
{
    world *w = *state;
    device a, b;
    client ca, cb;
    char file[400], relay_dir[400], keys[400], *out;
    sent *s = calloc(MAX_SENT, sizeof(*s));
    kurer_random(g_mark, sizeof(g_mark));
    snprintf(file, sizeof(file), "%s/relay.backup", w->dir);
    snprintf(relay_dir, sizeof(relay_dir), "%s/relay", w->dir);
    snprintf(keys, sizeof(keys), "%s/keys", w->dir);
    start_relay(w, NULL, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cb, &b), 0); /* in the directory; then offline */
    cl_free(&cb);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    size_t n = 0;
    for (; n < 300; n++) {
        assert_int_equal(send_status(&ca, send_marked(&ca, &b, (uint32_t)n, s[n].id)),
                         KURER_SEND_ACCEPTED);
        s[n].before = 1;
    }
    /* The backup starts now; the sender goes on (pipelined, 8 in flight) until it is done. */
    const char *bargs[] = {"backup", "--dir", relay_dir, "--out", file, NULL};
    pid_t bk = spawn_relay_cmd(w, "backup", bargs);
    uint64_t ids[8];
    size_t first = n, during = 0;
    int done = 0, st = -1;
    while (!done && n + 8 < MAX_SENT) {
        for (size_t k = 0; k < 8; k++, n++)
            ids[k] = send_marked(&ca, &b, (uint32_t)n, s[n].id);
        for (size_t k = 0; k < 8; k++)
            assert_int_equal(send_status(&ca, ids[k]), KURER_SEND_ACCEPTED);
        during += 8;
        int ws;
        if (waitpid(bk, &ws, WNOHANG) == bk) {
            done = 1;
            st = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
        }
    }
    if (!done)
        st = wait_exit(bk);
    (void)first;
    print_message("backup took %zu envelopes of load\n", during);
    assert_int_equal(st, 0);
    cl_free(&ca);
    assert_int_equal(stop_relay(w, SIGTERM), 0);
    check_encrypted(file);

    /* Restore on "another machine": the old folder gone, the keys kept apart. */
    assert_int_equal(mkdir(keys, 0700), 0);
    char cmd[2200];
    snprintf(cmd, sizeof(cmd), "cp -p %s/relay.key %s/store.key %s && mv %s %s/old", relay_dir,
             relay_dir, keys, relay_dir, w->dir);
    assert_int_equal(system(cmd), 0);
    const char *rargs[] = {"restore", "--dir", relay_dir, "--keys", keys, file, NULL};
    assert_int_equal(run_relay_cmd(w, "restore", rargs, &out), 0);
    assert_non_null(strstr(out, "restored"));
    free(out);
    mode_is(w->dir, "relay", 0700);
    mode_is(relay_dir, "relay.db", 0600);
    mode_is(relay_dir, "relay.key", 0600);
    mode_is(relay_dir, "store.key", 0600);
    start_relay(w, NULL, NULL); /* the same relay.pub: the harness's key */
    size_t got = drain(w, &b, s, n);
    size_t missing = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i].before && !s[i].seen)
            missing++;
    print_message("restored relay delivered %zu of %zu (%zu accepted before the backup)\n", got, n,
                  first);
    assert_int_equal(missing, 0);
    assert_true(got >= first);
    free(s);
}

/* With the relay stopped, backup opens the store itself; restore refuses a folder that is not
 * empty and keys of another relay; the restored relay starts. */
static void test_backup_offline_restore_refusals(void **state)
{
    world *w = *state;
    device a, b;
    client ca;
    uint8_t id[16];
    char file[400], relay_dir[400], other[400], fresh[400], *out;
    kurer_random(g_mark, sizeof(g_mark));
    snprintf(file, sizeof(file), "%s/offline.backup", w->dir);
    snprintf(relay_dir, sizeof(relay_dir), "%s/relay", w->dir);
    snprintf(other, sizeof(other), "%s/other", w->dir);
    snprintf(fresh, sizeof(fresh), "%s/fresh", w->dir);
    start_relay(w, NULL, NULL);
    make_device(w, &a, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &b, "bo@mof", 1, 11, 0, 0, 0);
    assert_int_equal(cl_connect(w, &ca, &b), 0); /* in the directory */
    cl_free(&ca);
    assert_int_equal(cl_connect(w, &ca, &a), 0);
    assert_int_equal(send_status(&ca, send_marked(&ca, &b, 1, id)), KURER_SEND_ACCEPTED);
    cl_free(&ca);
    assert_int_equal(stop_relay(w, SIGTERM), 0);
    const char *bargs[] = {"backup", "--dir", relay_dir, "--out", file, NULL};
    assert_int_equal(run_relay_cmd(w, "backup", bargs, &out), 0);
    assert_non_null(strstr(out, "not running"));
    free(out);
    check_encrypted(file);

    /* A folder that is not empty. */
    const char *r1[] = {"restore", "--dir", relay_dir, "--keys", relay_dir, file, NULL};
    assert_int_equal(run_relay_cmd(w, "restore1", r1, &out), 1);
    assert_non_null(strstr(out, "not empty"));
    free(out);
    /* Keys of another relay: the backup does not decrypt, and nothing is left behind. */
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "%s init --dir %s > /dev/null", KURER_RELAY_BIN, other);
    assert_int_equal(system(cmd), 0);
    const char *r2[] = {"restore", "--dir", fresh, "--keys", other, file, NULL};
    assert_int_equal(run_relay_cmd(w, "restore2", r2, &out), 1);
    assert_non_null(strstr(out, "does not decrypt"));
    free(out);
    assert_int_equal(rmdir(fresh), 0); /* empty again */
    /* Not a backup at all. */
    const char *r3[] = {"restore", "--dir", fresh, "--keys", relay_dir, "/etc/hostname", NULL};
    assert_int_equal(run_relay_cmd(w, "restore3", r3, &out), 1);
    free(out);
    assert_int_equal(rmdir(fresh), 0);
    /* The right keys. */
    const char *r4[] = {"restore", "--dir", fresh, "--keys", relay_dir, file, NULL};
    assert_int_equal(run_relay_cmd(w, "restore4", r4, &out), 0);
    assert_non_null(strstr(out, "1 envelopes"));
    free(out);
    mode_is(fresh, "relay.db", 0600);
    mode_is(fresh, "relay.pub", 0644);
    snprintf(cmd, sizeof(cmd), "cmp -s %s/relay.pub %s/relay.pub", fresh, relay_dir);
    assert_int_equal(system(cmd), 0);
}

/* Connects d as copy (instance, count): 0 if it became the device's connection, else the code
 * of the Error push that closed it. */
static int join(world *w, client *cl, const device *d, uint64_t instance, uint64_t count)
{
    kurer_buf b;
    kurer_handshake_init hi = {0};
    kurer_server_frame f;
    memset(cl, 0, sizeof(*cl));
    cl->next_req = 1;
    assert_int_equal(uv_loop_init(&cl->loop), 0);
    hi.protocol_version = KURER_PROTOCOL_VERSION;
    hi.chain = d->chain;
    hi.instance_id = instance;
    hi.instance_count = count;
    kurer_buf_init(&b, KURER_FRAME_MAX);
    assert_int_equal(kurer_handshake_init_encode(&hi, &b), 0);
    assert_int_equal(kurer_conn_connect(&cl->c, &cl->loop, (struct sockaddr *)&w->addr, NULL,
                                        &cl_cbs, KURER_NOISE_IK, d->sk, w->relay_pk, b.data, b.len,
                                        cl),
                     0);
    kurer_buf_release(&b);
    pump(cl, &cl->established, 10000);
    assert_true(cl->established);
    assert_false(cl->acc.has_error);
    cl_confirm(cl);
    if (!cl->closed)
        return 0;
    while (cl_next(cl, &f, 100) == 1) {
        int code = f.body == KURER_SERVER_ERROR && f.request_id == 0 ? f.u.error.code : 0;
        kurer_server_frame_release(&f);
        if (code != 0)
            return code;
    }
    return KURER_ECLOSED;
}

/* Two copies of one home: a file copy (same instance) is caught when the copies alternate, and
 * both are told; a restored copy (new instance) takes over and the old one is told. */
static void test_home_copies(void **state)
{
    world *w = *state;
    device d;
    client c1, c2, c3;
    start_relay(w, NULL, NULL);
    make_device(w, &d, "anna@mof", 1, 10, 0, 0, 0);
    const uint64_t X = 0x1111, Y = 0x2222;
    /* The same copy reconnecting (its count rising) replaces itself: EBUSY, as always. */
    assert_int_equal(join(w, &c1, &d, X, 1), 0);
    assert_int_equal(join(w, &c2, &d, X, 2), 0);
    expect_kicked(&c1, KURER_EBUSY);
    cl_free(&c1);
    /* A file copy of the home made at count 2 connects with 3 while the original (now at 3
     * too) ... the original first: */
    assert_int_equal(join(w, &c1, &d, X, 3), 0);
    expect_kicked(&c2, KURER_EBUSY);
    cl_free(&c2);
    /* ... then the copy, with a count already seen: a second copy; both are told. */
    assert_int_equal(join(w, &c2, &d, X, 3), KURER_ECLONED);
    expect_kicked(&c1, KURER_ECLONED);
    cl_free(&c1);
    cl_free(&c2);
    assert_int_equal(join(w, &c1, &d, X, 9), KURER_ECLONED); /* and stay refused */
    cl_free(&c1);
    /* A restore makes a new instance: it takes over ... */
    assert_int_equal(join(w, &c3, &d, Y, 1), 0);
    /* ... and the old copy is told, not silently taking the device back. */
    assert_int_equal(join(w, &c1, &d, X, 10), KURER_ECLONED);
    cl_free(&c1);
    assert_int_equal(join(w, &c2, &d, Y, 2), 0);
    expect_kicked(&c3, KURER_EBUSY);
    cl_free(&c3);
    /* A live connection of the old instance replaced by a new one hears ECLONED. */
    const uint64_t Z = 0x3333;
    assert_int_equal(join(w, &c3, &d, Z, 1), 0);
    expect_kicked(&c2, KURER_ECLONED);
    cl_free(&c2);
    cl_free(&c3);
    /* Clients that send no instance are never refused for it. */
    assert_int_equal(join(w, &c1, &d, 0, 0), 0);
    cl_free(&c1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backup_under_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_offline_restore_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_home_copies, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
