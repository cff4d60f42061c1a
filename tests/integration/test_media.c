/* The media relay (issue 14, item 3): real kurer-relay processes on 127.0.0.1, devices
 * authenticated over Noise IK (relay_harness.c), allocation over their connection, then UDP
 * legs on loopback (media_client.c). Metrics are read from the relay's page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "media_client.h"

/* A relay with the media relay on 127.0.0.1:0, metrics, and conf (more key = value lines). */
static void start_media_relay(world *w, const char *conf)
{
    char path[300], text[1024];
    snprintf(path, sizeof(path), "%s/media.conf", w->dir);
    snprintf(text, sizeof(text), "media_listen = 127.0.0.1:0\n%s", conf);
    write_file(path, text, strlen(text));
    const char *extra[] = {"--config", path, "--metrics", "127.0.0.1:0"};
    w->want_media = 1;
    start_relay_v(w, extra, 4);
}

static uint64_t dropped(world *w, const char *reason)
{
    char name[128];
    snprintf(name, sizeof(name), "kurer_media_dropped_total{reason=\"%s\"}", reason);
    return metric_now(w, name);
}

/* Two legs bind and exchange datagrams both ways, unchanged; KEEPALIVE comes back as sent. */
static void test_forward(void **state)
{
    world *w = *state;
    device d;
    client cl;
    kurer_media_allocation a;
    uint8_t out[200], in[2048];
    start_media_relay(w, "");
    make_device(w, &d, "anna@mof", 1, 10, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cl, &d), 0);
    assert_int_equal(media_allocate(&cl, &a), 0);
    assert_int_equal(a.udp_port, ntohs(((struct sockaddr_in *)&w->media)->sin_port));
    assert_true(a.ticket_a_len > 0 && a.ticket_a_len <= 64);
    assert_int_equal(a.keepalive_ms, 15000);
    assert_true(a.ticket_ttl_ms > 0);
    int fa = media_socket(), fb = media_socket();
    media_bind(w, fa, a.ticket_a, a.ticket_a_len, 0);
    media_bind(w, fb, a.ticket_b, a.ticket_b_len, 1);
    for (uint32_t i = 0; i < 50; i++) {
        media_frame(out, 120, i);
        media_send(w, i % 2 ? fb : fa, out, 120);
        int n = media_recv(i % 2 ? fa : fb, in, sizeof(in), 2000);
        assert_int_equal(n, 120);
        assert_memory_equal(in, out, 120);
    }
    uint8_t ka[17] = {0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    media_send(w, fa, ka, sizeof(ka));
    assert_int_equal(media_recv(fa, in, sizeof(in), 2000), (int)sizeof(ka));
    assert_memory_equal(in, ka, sizeof(ka));
    assert_int_equal(media_drain(fb, 200), 0); /* the echo went to its sender only */
    assert_int_equal(metric_now(w, "kurer_media_datagrams_forwarded_total"), 50);
    assert_int_equal(metric_now(w, "kurer_media_bytes_forwarded_total"), 50 * 120);
    assert_int_equal(metric_now(w, "kurer_media_calls"), 1);
    assert_int_equal(metric_now(w, "kurer_media_calls_allocated_total"), 1);
    assert_int_equal(metric_now(w, "kurer_media_keepalives_total"), 1);
    assert_true(metric_now(w, "kurer_media_binds_total") >= 2);
    assert_int_equal(dropped(w, "no_peer"), 0);
    close(fa);
    close(fb);
    cl_free(&cl);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest all[] = {
        cmocka_unit_test_setup_teardown(test_forward, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(all, NULL, NULL);
}
