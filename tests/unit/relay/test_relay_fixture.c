/* The relay unit tests' fixture: a relay struct without loop, store or sockets, and directory
 * entries with real (decodable, not verified) chains. */
#include "relay_units.h"

#include <stdlib.h>
#include <string.h>

#include "kurer/cert.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

relay *fx_relay_new(void)
{
    relay *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    kurer_relay_config_default(&r->cfg);
    r->lim.max_record = (size_t)r->cfg.max_record;
    assert_int_equal(kurer_trust_new(&r->trust), 0);
    assert_int_equal(htab_init(&r->dir), 0);
    return r;
}

void fx_relay_free(relay *r)
{
    kurer__dir_free(r);
    kurer_trust_free(r->trust);
    free(r);
}

kurer_device_address fx_addr(const char *user, uint32_t device_id)
{
    kurer_device_address a;
    memset(&a, 0, sizeof(a));
    assert_true(strlen(user) < sizeof(a.user));
    strcpy(a.user, user);
    a.device_id = device_id;
    return a;
}

rconn fx_conn(relay *r, const char *user, uint32_t device_id)
{
    rconn rc;
    memset(&rc, 0, sizeof(rc));
    rc.r = r;
    rc.refs = 1;
    rc.authed = 1;
    rc.addr = fx_addr(user, device_id);
    kurer__buckets_init(r, rc.own);
    return rc;
}

size_t fx_dir_add(relay *r, const char *user, uint32_t device_id, int64_t not_after)
{
    kurer_signing_key k;
    kurer_cert_body b;
    kurer_chain ch;
    kurer_buf buf;
    memset(&b, 0, sizeof(b));
    b.version = 1;
    b.serial = 1000 + device_id;
    b.role = KURER_ROLE_DEVICE;
    strcpy(b.subject, user);
    strcpy(b.display_name, "Test");
    b.clearance = KURER_LEVEL_RESTRICTED;
    b.device_id = device_id;
    b.not_before = not_after - FX_YEAR;
    b.not_after = not_after;
    b.identity_key[0] = 0x05;
    kurer_random(b.identity_key + 1, 32);
    kurer_random(b.noise_key, 32);
    assert_int_equal(kurer_signing_key_generate(&k), 0);
    memset(&ch, 0, sizeof(ch));
    assert_int_equal(kurer_cert_sign(&b, &k, &ch.certs[0]), 0);
    ch.n = 1;
    kurer_buf_init(&buf, KURER_FRAME_MAX);
    assert_int_equal(kurer_chain_encode(&ch, &buf), 0);
    kurer_verified v;
    memset(&v, 0, sizeof(v));
    strcpy(v.user, user);
    v.device_id = device_id;
    v.serial = b.serial;
    v.not_after = not_after;
    kurer_device_address a = fx_addr(user, device_id);
    assert_int_equal(kurer__dir_put(r, &a, &v, buf.data, buf.len), 0);
    size_t len = buf.len;
    kurer_buf_release(&buf);
    return len;
}
