/* The record parser: every truncation point, oversize and zero lengths, several records in one
 * buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <netdb.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/net.h"

static void test_truncation_every_offset(void **state)
{
    (void)state;
    uint8_t buf[2 + 300];
    buf[0] = 0x01;
    buf[1] = 0x2c; /* 300 */
    for (size_t i = 0; i < 300; i++)
        buf[2 + i] = (uint8_t)i;
    for (size_t cut = 0; cut < sizeof(buf); cut++) {
        kurer_reader r;
        const uint8_t *rec = (const uint8_t *)1;
        size_t n = 7;
        kurer_reader_init(&r, buf, cut);
        assert_int_equal(kurer_net_record_next(&r, KURER_NET_RECORD_MAX, &rec, &n), KURER_ETRUNC);
        assert_int_equal(r.off, 0);
        assert_null(rec);
        assert_int_equal(n, 0);
    }
    kurer_reader r;
    const uint8_t *rec;
    size_t n;
    kurer_reader_init(&r, buf, sizeof(buf));
    assert_int_equal(kurer_net_record_next(&r, KURER_NET_RECORD_MAX, &rec, &n), 0);
    assert_int_equal(n, 300);
    assert_ptr_equal(rec, buf + 2);
    assert_int_equal(kurer_reader_end(&r), 0);
}

static void test_oversize(void **state)
{
    (void)state;
    uint8_t hdr[2] = {0x10, 0x01}; /* 4097 */
    kurer_reader r;
    const uint8_t *rec;
    size_t n;
    /* Refused from the two length bytes alone, before any body arrives. */
    kurer_reader_init(&r, hdr, 2);
    assert_int_equal(kurer_net_record_next(&r, 4096, &rec, &n), KURER_ELIMIT);
    assert_int_equal(r.off, 0);
    kurer_reader_init(&r, hdr, 1);
    assert_int_equal(kurer_net_record_next(&r, 4096, &rec, &n), KURER_ETRUNC);
    uint8_t max[2] = {0xff, 0xff};
    kurer_reader_init(&r, max, 2);
    assert_int_equal(kurer_net_record_next(&r, 65534, &rec, &n), KURER_ELIMIT);
    kurer_reader_init(&r, max, 2);
    assert_int_equal(kurer_net_record_next(&r, KURER_NET_RECORD_MAX, &rec, &n), KURER_ETRUNC);
}

static void test_zero_length(void **state)
{
    (void)state;
    uint8_t z[3] = {0, 0, 9};
    kurer_reader r;
    const uint8_t *rec;
    size_t n;
    kurer_reader_init(&r, z, sizeof(z));
    assert_int_equal(kurer_net_record_next(&r, KURER_NET_RECORD_MAX, &rec, &n), KURER_EMALFORMED);
}

static void test_many_records(void **state)
{
    (void)state;
    kurer_buf b;
    kurer_buf_init(&b, 1 << 20);
    for (size_t i = 1; i <= 50; i++) {
        uint8_t body[64];
        memset(body, (int)i, sizeof(body));
        assert_int_equal(kurer_buf_put_lv16(&b, body, i), 0);
    }
    /* Parse the stream fed in uneven slices, as reads would deliver it. */
    size_t fed = 0, done = 0, seen = 0;
    while (done < b.len) {
        fed += 7;
        if (fed > b.len)
            fed = b.len;
        kurer_reader r;
        const uint8_t *rec;
        size_t n;
        kurer_reader_init(&r, b.data + done, fed - done);
        while (kurer_net_record_next(&r, 64, &rec, &n) == 0) {
            seen++;
            assert_int_equal(n, seen);
            assert_int_equal(rec[0], (uint8_t)seen);
        }
        done += r.off;
    }
    assert_int_equal(seen, 50);
    kurer_buf_release(&b);
}

static void test_parse_addr(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    assert_int_equal(kurer_net_parse_addr("127.0.0.1:0", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(kurer_net_parse_addr("[::1]:8443", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(kurer_net_parse_addr("127.0.0.1", &ss), KURER_EINVAL);
    assert_int_equal(kurer_net_parse_addr("127.0.0.1:70000", &ss), KURER_EINVAL);
    assert_int_equal(kurer_net_parse_addr("host:1", &ss), KURER_EINVAL);
}

/* Host names: syntax without resolving, the numeric fast path, and getaddrinfo for names
 * (localhost is in /etc/hosts; .invalid never resolves, RFC 6761). */
static void test_resolve(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    assert_int_equal(kurer_net_addr_check("relay.example.dk:7443"), 0);
    assert_int_equal(kurer_net_addr_check("localhost:4000"), 0);
    assert_int_equal(kurer_net_addr_check("127.0.0.1:4000"), 0);
    assert_int_equal(kurer_net_addr_check("[::1]:4000"), 0);
    assert_int_equal(kurer_net_addr_check("relay.example.dk"), KURER_EINVAL);
    assert_int_equal(kurer_net_addr_check("relay example:1"), KURER_EINVAL);
    assert_int_equal(kurer_net_addr_check("relay:dk:4000"), KURER_EINVAL);
    assert_int_equal(kurer_net_addr_check("[relay.dk]:1"), KURER_EINVAL);
    assert_int_equal(kurer_net_addr_check(":4000"), KURER_EINVAL);
    assert_int_equal(kurer_net_addr_check("host:65536"), KURER_EINVAL);
    assert_int_equal(kurer_net_resolve("127.0.0.1:4000", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 4000);
    assert_int_equal(kurer_net_resolve("[::1]:4001", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    /* Names go through the system's resolver: only where it knows localhost (a bare chroot
     * without /etc/hosts does not). */
    struct addrinfo *ai = NULL;
    if (getaddrinfo("localhost", NULL, NULL, &ai) == 0) {
        freeaddrinfo(ai);
        assert_int_equal(kurer_net_resolve("localhost:4002", &ss), 0);
        assert_true(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
        if (ss.ss_family == AF_INET)
            assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 4002);
    } else {
        print_message("localhost does not resolve here: name resolution not tested\n");
    }
    assert_int_equal(kurer_net_resolve("no-such-host.invalid:1", &ss), KURER_ERESOLVE);
    assert_int_equal(kurer_net_resolve("bad host:1", &ss), KURER_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncation_every_offset),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_zero_length),
        cmocka_unit_test(test_many_records),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
