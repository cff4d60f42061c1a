/* libFuzzer target for online enrolment's decoders and armoured text: every input goes through
 * the EnrolHello, EnrolRequest and EnrolReply decoders and the armour decoder. What a decoder
 * accepts must encode again to bytes that decode to the same struct (encoders decode what they
 * pack), and armour that decodes must armour again to text that decodes to the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/armor.h"
#include "kurer/enrol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kurer_enrol_request q, q2;
    static kurer_enrol_reply r, r2;
    kurer_buf b, t;
    kurer_armor_kind k, k2;
    (void)kurer_enrol_hello_decode(data, size);
    kurer_buf_init(&b, KURER_ENROL_RECORD_MAX);
    if (kurer_enrol_request_decode(data, size, &q) == 0) {
        if (kurer_enrol_request_encode(&q, &b) != 0 ||
            kurer_enrol_request_decode(b.data, b.len, &q2) != 0 || memcmp(&q, &q2, sizeof(q)))
            abort();
    }
    kurer_buf_reset(&b);
    if (kurer_enrol_reply_decode(data, size, &r) == 0) {
        if (kurer_enrol_reply_encode(&r, &b) != 0 ||
            kurer_enrol_reply_decode(b.data, b.len, &r2) != 0 || memcmp(&r, &r2, sizeof(r)))
            abort();
    }
    kurer_buf_release(&b);
    kurer_buf_init(&b, KURER_ARMOR_DATA_MAX + 4);
    kurer_buf_init(&t, 4 * KURER_ARMOR_DATA_MAX);
    if (kurer_armor_decode(data, size, &b, &k) == 0) {
        kurer_buf bin2;
        kurer_buf_init(&bin2, KURER_ARMOR_DATA_MAX + 4);
        if (kurer_armor_encode(k, b.data, b.len, &t) != 0 ||
            kurer_armor_decode(t.data, t.len, &bin2, &k2) != 0 || k2 != k || bin2.len != b.len ||
            memcmp(bin2.data, b.data, b.len) != 0)
            abort();
        kurer_buf_release(&bin2);
    }
    kurer_buf_release(&b);
    kurer_buf_release(&t);
    return 0;
}
