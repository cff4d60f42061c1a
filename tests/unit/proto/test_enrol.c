/* Online enrolment messages (proto/enrol.c): every body round trips, and each rule of the
 * decoder refuses with its error (through the encoder, which decodes what it packs, and through
 * bytes written by hand). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kurer/enrol.h"

static kurer_enrol_request *req_new(kurer_enrol_body body)
{
    kurer_enrol_request *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->request_id = 9;
    r->body = body;
    memset(r->id, 0xa5, sizeof(r->id));
    memset(r->mac, 0x11, sizeof(r->mac));
    memset(r->authority_mac, 0x22, sizeof(r->authority_mac));
    memcpy(r->request, "csr bytes", 9);
    r->request_len = 9;
    memcpy(r->auth.authority, "cert", 4);
    r->auth.authority_len = 4;
    r->auth.time = 1700000000;
    memset(r->auth.signature, 0x33, sizeof(r->auth.signature));
    kurer_enrol_invitation *i = &r->invite;
    memset(i->id, 1, sizeof(i->id));
    memset(i->verifier, 2, sizeof(i->verifier));
    strcpy(i->user, "anna@fm.dk");
    i->device_id = 4;
    i->created_at = 10;
    i->expires_at = 20;
    memcpy(i->authority, "cert", 4);
    i->authority_len = 4;
    memset(i->signature, 3, sizeof(i->signature));
    return r;
}

/* r encodes, decodes, and the fields its body uses came back. */
static void round_trip(kurer_enrol_request *r)
{
    kurer_buf b;
    kurer_enrol_request *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    kurer_buf_init(&b, KURER_ENROL_RECORD_MAX);
    assert_int_equal(kurer_enrol_request_encode(r, &b), 0);
    assert_int_equal(kurer_enrol_request_decode(b.data, b.len, d), 0);
    assert_int_equal(d->request_id, r->request_id);
    assert_int_equal(d->body, r->body);
    switch (r->body) {
    case KURER_ENROL_INVITE:
        assert_memory_equal(&d->invite, &r->invite, sizeof(r->invite));
        break;
    case KURER_ENROL_SUBMIT:
        assert_memory_equal(d->request, r->request, r->request_len);
        assert_int_equal(d->request_len, r->request_len);
        assert_memory_equal(d->authority_mac, r->authority_mac, sizeof(r->authority_mac));
        assert_memory_equal(d->id, r->id, sizeof(r->id));
        assert_memory_equal(d->mac, r->mac, sizeof(r->mac));
        break;
    case KURER_ENROL_POLL:
        assert_memory_equal(d->id, r->id, sizeof(r->id));
        assert_memory_equal(d->mac, r->mac, sizeof(r->mac));
        break;
    case KURER_ENROL_LIST:
    case KURER_ENROL_DECIDE:
        assert_memory_equal(&d->auth, &r->auth, sizeof(r->auth));
        assert_int_equal(d->approve, r->approve);
        assert_int_equal(d->chain_len, r->chain_len);
        break;
    }
    kurer_buf_release(&b);
    free(d);
}

static void test_round_trips(void **state)
{
    (void)state;
    for (int body = KURER_ENROL_INVITE; body <= KURER_ENROL_DECIDE; body++) {
        kurer_enrol_request *r = req_new((kurer_enrol_body)body);
        if (body == KURER_ENROL_DECIDE) {
            r->approve = 1;
            memcpy(r->chain, "chain", 5);
            r->chain_len = 5;
        }
        round_trip(r);
        free(r);
    }
}

static int encode_rc(kurer_enrol_request *r)
{
    kurer_buf b;
    kurer_buf_init(&b, KURER_ENROL_RECORD_MAX);
    int rc = kurer_enrol_request_encode(r, &b);
    if (rc != 0)
        assert_int_equal(b.len, 0);
    kurer_buf_release(&b);
    return rc;
}

static void test_request_refusals(void **state)
{
    kurer_enrol_request *r = req_new(KURER_ENROL_SUBMIT);
    (void)state;
    r->request_id = 0;
    assert_int_equal(encode_rc(r), KURER_EMALFORMED);
    r->request_id = 1;
    r->request_len = 0;
    assert_int_equal(encode_rc(r), KURER_EMALFORMED);
    r->request_len = KURER_ENROL_REQUEST_MAX + 1;
    assert_int_equal(encode_rc(r), KURER_ELIMIT);
    free(r);
    r = req_new(KURER_ENROL_INVITE);
    strcpy(r->invite.user, "Anna@fm.dk");
    assert_int_equal(encode_rc(r), KURER_EMALFORMED);
    strcpy(r->invite.user, "anna@fm.dk");
    r->invite.device_id = 0;
    assert_int_equal(encode_rc(r), KURER_EMALFORMED);
    r->invite.device_id = 1;
    r->invite.authority_len = 0;
    assert_int_equal(encode_rc(r), KURER_EMALFORMED);
    free(r);
    r = req_new(KURER_ENROL_DECIDE);
    r->approve = 1;
    r->chain_len = 0; /* an approval carries its chain */
    assert_int_equal(encode_rc(r), KURER_EMALFORMED);
    r->auth.authority_len = KURER_CERT_MAX + 1;
    r->chain_len = 5;
    assert_int_equal(encode_rc(r), KURER_ELIMIT);
    free(r);
    /* by hand: no body; a 15-byte id; bytes after the message's end */
    kurer_enrol_request *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    static const uint8_t no_body[] = {0x08, 0x01};
    assert_int_equal(kurer_enrol_request_decode(no_body, sizeof(no_body), d), KURER_EMALFORMED);
    uint8_t poll[2 + 2 + 15 + 2 + 32] = {0x08, 0x01, 0x22, 2 + 15 + 2 + 32, 0x0a, 15};
    poll[4 + 2 + 15] = 0x12;
    poll[4 + 2 + 15 + 1] = 32;
    assert_int_equal(kurer_enrol_request_decode(poll, sizeof(poll), d), KURER_EMALFORMED);
    assert_int_equal(kurer_enrol_request_decode(no_body, KURER_ENROL_RECORD_MAX + 1, d),
                     KURER_ELIMIT);
    free(d);
}

static void test_hello_and_reply(void **state)
{
    kurer_buf b;
    kurer_enrol_reply *r = calloc(1, sizeof(*r)), *d = calloc(1, sizeof(*d));
    (void)state;
    assert_non_null(r);
    assert_non_null(d);
    kurer_buf_init(&b, KURER_ENROL_RECORD_MAX);
    assert_int_equal(kurer_enrol_hello_encode(&b), 0);
    assert_int_equal(kurer_enrol_hello_decode(b.data, b.len), 0);
    static const uint8_t v2[] = {0x08, 0x02}, junk[] = {0xff, 0xff, 0xff};
    assert_int_equal(kurer_enrol_hello_decode(v2, sizeof(v2)), KURER_EVERSION);
    assert_int_equal(kurer_enrol_hello_decode(junk, sizeof(junk)), KURER_EMALFORMED);
    kurer_buf_reset(&b);
    r->request_id = 3;
    r->state = KURER_ENROL_WAITING;
    r->n_pending = 2;
    for (size_t i = 0; i < 2; i++) {
        memset(r->pending[i].id, (int)i + 1, KURER_ENROL_ID_LEN);
        strcpy(r->pending[i].user, "bo@sk.dk");
        r->pending[i].device_id = 2;
        memcpy(r->pending[i].request, "req", 3);
        r->pending[i].request_len = 3;
        r->pending[i].submitted_at = 77;
    }
    r->more = 1;
    assert_int_equal(kurer_enrol_reply_encode(r, &b), 0);
    assert_int_equal(kurer_enrol_reply_decode(b.data, b.len, d), 0);
    assert_memory_equal(d, r, sizeof(*r));
    kurer_buf_reset(&b);
    r->n_pending = KURER_ENROL_PAGE + 1;
    assert_int_equal(kurer_enrol_reply_encode(r, &b), KURER_ELIMIT);
    r->n_pending = 0;
    r->error = 5; /* errors are negative codes */
    assert_int_equal(kurer_enrol_reply_encode(r, &b), KURER_EMALFORMED);
    r->error = KURER_EINVITEUSED;
    assert_int_equal(kurer_enrol_reply_encode(r, &b), 0);
    kurer_buf_release(&b);
    free(r);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trips),
                                       cmocka_unit_test(test_request_refusals),
                                       cmocka_unit_test(test_hello_and_reply)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
