/* Objective-C through the Kurer module (ctest mobile_objc_module): `@import Kurer;` and nothing
 * else, then the calls an iOS app makes, with plain C callbacks (no blocks, no Foundation).
 * Compiled -fsyntax-only with -Werror and the nullability warnings: it must be clean. */
@import Kurer;

typedef struct app {
    kurer *_Nullable k;
    int online;
} app;

static void on_done(void *_Nullable ud, const kurer_result *r)
{
    app *a = ud;
    if (a != NULL && r->err != 0)
        a->online = 0;
}

static void on_message(void *_Nullable ud, const kurer_message *m)
{
    (void)ud;
    (void)kurer_level_name(m->level);
}

static void on_state(void *_Nullable ud, kurer_conn_state state, int reason)
{
    app *a = ud;
    if (a != NULL)
        a->online = state == KURER_CONN_ONLINE && reason == 0;
}

static void on_log(void *_Nullable ud, int level, const char *line)
{
    (void)ud;
    (void)level;
    (void)line;
}

int kurer_ios_use(app *a, const char *home, const uint8_t key[_Nonnull KURER_KEY_LEN]);

int kurer_ios_use(app *a, const char *home, const uint8_t key[_Nonnull KURER_KEY_LEN])
{
    kurer_set_log(on_log, a, KURER_MOBILE_LOG_INFO);
    kurer_open_options o = {.home = home, .pass = NULL, .key = key, .clock = NULL, .holder = "ios"};
    kurer *k = NULL;
    int rc = kurer_open_with(&o, &k);
    if (rc != 0 || k == NULL)
        return rc;
    a->k = k;

    kurer_events ev = {.on_message = on_message, .on_state = on_state, .ud = a};
    kurer_set_events(k, &ev);
    kurer_set_foreground(k, 0);
    kurer_network_changed(k);
    rc = kurer_wake(k, 25000, on_done, a);
    if (rc == 0)
        rc = kurer_send_async(k, "bob@example.dk", KURER_LEVEL_RESTRICTED, "hello", 10000, on_done,
                              a);
    if (rc == 0)
        rc = kurer_queue_async(k, "bob@example.dk", KURER_LEVEL_UNCLASSIFIED, "later", 10000, NULL,
                               NULL);
    int reason = 0;
    (void)kurer_state(k, &reason);
    (void)kurer_state(k, NULL);
    if (rc != 0)
        (void)kurer_strerror(rc);
    (void)kurer_err_name(rc);
    (void)kurer_own_user(k);
    kurer_set_events(k, NULL);
    kurer_disconnect_async(k);
    kurer_close(k);
    kurer_close(NULL);
    a->k = NULL;
    return rc;
}
