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

/* A BIND, then nothing comes back within 300 ms (the datagram was dropped unanswered). */
static void bind_refused(world *w, int fd, const uint8_t *ticket, size_t len)
{
    uint8_t msg[1 + 128], in[256];
    assert_true(len <= 128);
    msg[0] = 0x01;
    memcpy(msg + 1, ticket, len);
    media_send(w, fd, msg, 1 + len);
    assert_int_equal(media_recv(fd, in, sizeof(in), 300), -1);
}

/* The counter of reason reaches want within 2 s (datagrams are counted as the relay reads them). */
static void expect_dropped(world *w, const char *reason, uint64_t want)
{
    uint64_t got = 0;
    for (int i = 0; i < 100 && (got = dropped(w, reason)) < want; i++)
        usleep(20000);
    assert_int_equal(got, want);
}

/* One MEDIA datagram of len bytes from `from` arrives unchanged at `to`. */
static void expect_through(world *w, int from, int to, size_t len, uint32_t seed)
{
    uint8_t out[1500], in[2048];
    media_frame(out, len, seed);
    media_send(w, from, out, len);
    assert_int_equal(media_recv(to, in, sizeof(in), 2000), (int)len);
    assert_memory_equal(in, out, len);
}

/* A stranger with a forged ticket, a truncated one, an expired one, another call's ticket or no
 * ticket reaches neither leg, gets no answer and is counted; malformed datagrams are counted by
 * their reason; the legs keep talking. */
static void test_strangers(void **state)
{
    world *w = *state;
    device d;
    client cl;
    kurer_media_allocation old, a, other;
    uint8_t t[64], in[2048], dg[1500];
    start_media_relay(w, "media_ticket_lifetime_s = 2\n");
    make_device(w, &d, "anna@mof", 1, 10, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cl, &d), 0);
    assert_int_equal(media_allocate(&cl, &old), 0);
    int fo = media_socket();
    media_bind(w, fo, old.ticket_a, old.ticket_a_len, 0); /* keeps that call open */
    usleep(2200 * 1000);                                  /* its tickets expire */
    assert_int_equal(media_allocate(&cl, &a), 0);
    assert_int_equal(media_allocate(&cl, &other), 0);
    assert_true(a.call_id != other.call_id && a.call_id != old.call_id);
    int fa = media_socket(), fb = media_socket(), fs = media_socket(), fn = media_socket();
    media_bind(w, fa, a.ticket_a, a.ticket_a_len, 0);
    media_bind(w, fb, a.ticket_b, a.ticket_b_len, 1);

    memcpy(t, a.ticket_a, a.ticket_a_len); /* forged: one bit of the MAC */
    t[a.ticket_a_len - 1] ^= 1;
    bind_refused(w, fs, t, a.ticket_a_len);
    memcpy(t, a.ticket_b, a.ticket_b_len); /* forged: the leg byte changed, MAC kept */
    t[9] ^= 1;
    bind_refused(w, fs, t, a.ticket_b_len);
    bind_refused(w, fs, a.ticket_a, 20); /* truncated */
    bind_refused(w, fs, t, 0);           /* none */
    expect_dropped(w, "bad_ticket", 4);
    bind_refused(w, fs, old.ticket_b, old.ticket_b_len); /* expired */
    expect_dropped(w, "expired_ticket", 1);
    /* another call's ticket binds that call's leg, whose peer is not there: no one */
    media_bind(w, fs, other.ticket_a, other.ticket_a_len, 0);
    media_frame(dg, 120, 1);
    media_send(w, fs, dg, 120);
    expect_dropped(w, "no_peer", 1);
    /* no ticket at all: MEDIA and KEEPALIVE from an address no leg holds */
    media_send(w, fn, dg, 120);
    uint8_t ka[5] = {0x04, 1, 2, 3, 4};
    media_send(w, fn, ka, sizeof(ka));
    assert_int_equal(media_recv(fn, in, sizeof(in), 300), -1);
    expect_dropped(w, "unlocked_address", 2);
    /* malformed, even from a locked leg: unknown kinds, too short, too long */
    uint8_t bound[2] = {0x02, 0}, junk[3] = {0x07, 1, 2}, one = 0x03;
    media_send(w, fn, bound, sizeof(bound));
    media_send(w, fa, junk, sizeof(junk));
    media_send(w, fa, &one, 1);
    media_send(w, fa, "", 0);
    media_frame(dg, 1401, 2);
    media_send(w, fa, dg, 1401);
    uint8_t long_ka[18] = {0x04};
    media_send(w, fa, long_ka, sizeof(long_ka));
    expect_dropped(w, "unknown_kind", 2);
    expect_dropped(w, "too_short", 2);
    expect_dropped(w, "too_long", 2);
    /* nothing reached either leg or was answered; the legs (not the stranger) still talk */
    assert_int_equal(media_drain(fa, 200), 0);
    assert_int_equal(media_drain(fb, 0), 0);
    assert_int_equal(media_drain(fs, 0), 0);
    expect_through(w, fa, fb, 120, 3);
    expect_through(w, fb, fa, 1400, 4); /* the longest MEDIA */
    assert_int_equal(media_drain(fs, 200), 0);
    assert_int_equal(metric_now(w, "kurer_media_relocks_total"), 0);
    close(fo);
    close(fa);
    close(fb);
    close(fs);
    close(fn);
    cl_free(&cl);
}

/* A leg that moves to a new source port with its valid ticket continues there; the old address
 * is no longer forwarded (to or from). */
static void test_relock(void **state)
{
    world *w = *state;
    device d;
    client cl;
    kurer_media_allocation a;
    uint8_t dg[200];
    start_media_relay(w, "");
    make_device(w, &d, "anna@mof", 1, 10, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cl, &d), 0);
    assert_int_equal(media_allocate(&cl, &a), 0);
    int fa = media_socket(), fb = media_socket(), fa2 = media_socket();
    media_bind(w, fa, a.ticket_a, a.ticket_a_len, 0);
    media_bind(w, fb, a.ticket_b, a.ticket_b_len, 1);
    expect_through(w, fa, fb, 120, 1);
    media_bind(w, fa2, a.ticket_a, a.ticket_a_len, 0); /* Wi-Fi to LTE: a new address */
    assert_int_equal(metric_now(w, "kurer_media_relocks_total"), 1);
    expect_through(w, fa2, fb, 120, 2);
    expect_through(w, fb, fa2, 120, 3);
    assert_int_equal(media_drain(fa, 200), 0); /* the old address gets nothing */
    media_frame(dg, 120, 4);
    media_send(w, fa, dg, 120); /* and what it sends goes nowhere */
    expect_dropped(w, "unlocked_address", 1);
    assert_int_equal(media_drain(fb, 200), 0);
    /* and back again: the ticket still binds */
    media_bind(w, fa, a.ticket_a, a.ticket_a_len, 0);
    expect_through(w, fb, fa, 120, 5);
    assert_int_equal(media_drain(fa2, 200), 0);
    assert_int_equal(metric_now(w, "kurer_media_relocks_total"), 2);
    close(fa);
    close(fa2);
    close(fb);
    cl_free(&cl);
}

/* Sends n MEDIA datagrams of len bytes from `from` as fast as it can; returns how many reached
 * `to` (unchanged). */
static int burst(world *w, int from, int to, int n, size_t len)
{
    uint8_t dg[1500], in[2048];
    int got = 0;
    for (int i = 0; i < n; i++) {
        media_frame(dg, len, (uint32_t)i);
        media_send(w, from, dg, len);
        while (media_recv(to, in, sizeof(in), 0) >= 0)
            got++;
    }
    while (media_recv(to, in, sizeof(in), 300) >= 0)
        got++;
    return got;
}

/* A leg's packet and byte rates are capped: the excess is dropped and counted, nothing is lost
 * below the caps. */
static void test_caps(void **state)
{
    world *w = *state;
    device d;
    client cl;
    kurer_media_allocation a;
    start_media_relay(w, "media_leg_packet_rate = 20\nmedia_leg_byte_rate = 4000\n");
    make_device(w, &d, "anna@mof", 1, 10, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cl, &d), 0);
    assert_int_equal(media_allocate(&cl, &a), 0);
    int fa = media_socket(), fb = media_socket();
    media_bind(w, fa, a.ticket_a, a.ticket_a_len, 0);
    media_bind(w, fb, a.ticket_b, a.ticket_b_len, 1);
    /* packets: a burst of 4 x 20 (the BIND took one), plus 20/s while it runs */
    uint64_t t0 = kurer_time_mono_ms();
    int got = burst(w, fa, fb, 300, 120);
    uint64_t ms = kurer_time_mono_ms() - t0;
    assert_true(got >= 60);
    assert_true((uint64_t)got <= 80 + ms * 20 / 1000 + 1);
    expect_dropped(w, "rate_capped", (uint64_t)(300 - got));
    assert_int_equal(metric_now(w, "kurer_media_datagrams_forwarded_total"), (uint64_t)got);
    /* bytes: 4 x 4000 bytes of burst is 16 datagrams of 1000 (B's packets are plenty) */
    t0 = kurer_time_mono_ms();
    int got2 = burst(w, fb, fa, 50, 1000);
    ms = kurer_time_mono_ms() - t0;
    assert_true(got2 >= 12);
    assert_true((uint64_t)got2 <= 16 + ms * 4 / 1000 + 1);
    expect_dropped(w, "rate_capped", (uint64_t)(300 - got + 50 - got2));
    close(fa);
    close(fb);
    cl_free(&cl);
}

/* A call with no datagram for media_idle_timeout_ms is closed and freed (bound or not); one
 * kept alive by KEEPALIVEs stays; the closed call's tickets bind nothing. */
static void test_idle(void **state)
{
    world *w = *state;
    device d;
    client cl;
    kurer_media_allocation quiet, alive, never;
    uint8_t in[64], dg[200];
    start_media_relay(w, "media_idle_timeout_ms = 1000\nmedia_keepalive_ms = 300\n");
    make_device(w, &d, "anna@mof", 1, 10, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cl, &d), 0);
    assert_int_equal(media_allocate(&cl, &quiet), 0);
    assert_int_equal(media_allocate(&cl, &alive), 0);
    assert_int_equal(media_allocate(&cl, &never), 0);
    assert_int_equal(alive.keepalive_ms, 300);
    int qa = media_socket(), qb = media_socket(), la = media_socket(), lb = media_socket();
    media_bind(w, qa, quiet.ticket_a, quiet.ticket_a_len, 0);
    media_bind(w, qb, quiet.ticket_b, quiet.ticket_b_len, 1);
    media_bind(w, la, alive.ticket_a, alive.ticket_a_len, 0);
    media_bind(w, lb, alive.ticket_b, alive.ticket_b_len, 1);
    uint8_t ka[3] = {0x04, 9, 9};
    for (int i = 0; i < 12; i++) { /* 2.4 s of keepalives every 200 ms from one leg */
        media_send(w, la, ka, sizeof(ka));
        assert_int_equal(media_recv(la, in, sizeof(in), 1000), (int)sizeof(ka));
        usleep(200 * 1000);
    }
    assert_int_equal(metric_now(w, "kurer_media_calls"), 1);
    assert_int_equal(metric_now(w, "kurer_media_calls_closed_idle_total"), 2);
    expect_through(w, la, lb, 120, 1);
    expect_through(w, lb, la, 120, 2);
    media_frame(dg, 120, 3);
    media_send(w, qa, dg, 120); /* the closed call's legs are unlocked */
    expect_dropped(w, "unlocked_address", 1);
    assert_int_equal(media_drain(qb, 200), 0);
    bind_refused(w, qa, quiet.ticket_a, quiet.ticket_a_len); /* its ticket is of no call now */
    expect_dropped(w, "unknown_call", 1);
    close(qa);
    close(qb);
    close(la);
    close(lb);
    cl_free(&cl);
}

/* Calls per device and in total are capped with ELIMIT (the connection stays); closed calls
 * free their places. */
static void test_call_caps(void **state)
{
    world *w = *state;
    device d1, d2, d3;
    client c1, c2, c3;
    kurer_media_allocation a;
    start_media_relay(w, "media_calls_per_device = 2\nmedia_calls_max = 3\n"
                         "media_idle_timeout_ms = 1000\nmedia_keepalive_ms = 300\n");
    make_device(w, &d1, "anna@mof", 1, 10, 0, 0, 0);
    make_device(w, &d2, "anna@mof", 2, 11, 0, 0, 0);
    make_device(w, &d3, "bob@mof", 1, 12, 0, 0, 0);
    assert_int_equal(cl_connect(w, &c1, &d1), 0);
    assert_int_equal(cl_connect(w, &c2, &d2), 0);
    assert_int_equal(cl_connect(w, &c3, &d3), 0);
    assert_int_equal(media_allocate(&c1, &a), 0);
    assert_int_equal(media_allocate(&c1, &a), 0);
    assert_int_equal(media_allocate(&c1, &a), KURER_ELIMIT); /* per device */
    assert_int_equal(media_allocate(&c2, &a), 0); /* the same user's other device: its own */
    assert_int_equal(media_allocate(&c3, &a), KURER_ELIMIT); /* in total */
    assert_int_equal(metric_now(w, "kurer_media_allocations_refused_total{reason=\"per_device\"}"),
                     1);
    assert_int_equal(metric_now(w, "kurer_media_allocations_refused_total{reason=\"total\"}"), 1);
    assert_int_equal(metric_now(w, "kurer_media_calls"), 3);
    cl_confirm(&c1); /* the connections stay */
    cl_confirm(&c3);
    usleep(1500 * 1000); /* never bound: closed idle */
    assert_int_equal(metric_now(w, "kurer_media_calls"), 0);
    assert_int_equal(media_allocate(&c3, &a), 0);
    assert_int_equal(media_allocate(&c1, &a), 0);
    assert_int_equal(metric_now(w, "kurer_media_calls"), 2);
    cl_free(&c1);
    cl_free(&c2);
    cl_free(&c3);
}

/* The calls of a device revoked while connected close with its connection: neither leg is
 * forwarded any more. */
static void test_revoked(void **state)
{
    world *w = *state;
    device d, other;
    client cd, co, nk;
    kurer_media_allocation a, kept;
    kurer_buf crl;
    uint8_t dg[200];
    uint64_t serial = 66;
    g_keep_pushes = 1;
    start_media_relay(w, "");
    make_device(w, &d, "anna@mof", 1, 66, 0, 0, 0);
    make_device(w, &other, "bob@mof", 1, 67, 0, 0, 0);
    assert_int_equal(cl_connect(w, &cd, &d), 0);
    assert_int_equal(cl_connect(w, &co, &other), 0);
    assert_int_equal(media_allocate(&cd, &a), 0);
    assert_int_equal(media_allocate(&co, &kept), 0);
    int fa = media_socket(), fb = media_socket(), ka = media_socket(), kb = media_socket();
    media_bind(w, fa, a.ticket_a, a.ticket_a_len, 0);
    media_bind(w, fb, a.ticket_b, a.ticket_b_len, 1);
    media_bind(w, ka, kept.ticket_a, kept.ticket_a_len, 0);
    media_bind(w, kb, kept.ticket_b, kept.ticket_b_len, 1);
    expect_through(w, fa, fb, 120, 1);
    make_crl(w, 1, &serial, 1, NULL, &crl);
    assert_int_equal(cl_connect_nk(w, &nk), 0);
    assert_int_equal(upload_crl(&nk, &crl), 0);
    kurer_buf_release(&crl);
    cl_free(&nk);
    expect_kicked(&cd, KURER_EREVOKED);
    cl_free(&cd);
    assert_int_equal(metric_now(w, "kurer_media_calls_closed_revoked_total"), 1);
    assert_int_equal(metric_now(w, "kurer_media_calls"), 1);
    media_frame(dg, 120, 2);
    media_send(w, fa, dg, 120);
    media_send(w, fb, dg, 120);
    expect_dropped(w, "unlocked_address", 2);
    assert_int_equal(media_drain(fa, 200), 0);
    assert_int_equal(media_drain(fb, 0), 0);
    expect_through(w, ka, kb, 120, 3); /* another device's call goes on */
    close(fa);
    close(fb);
    close(ka);
    close(kb);
    cl_free(&co);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest all[] = {
        cmocka_unit_test_setup_teardown(test_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strangers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(all, NULL, NULL);
}
