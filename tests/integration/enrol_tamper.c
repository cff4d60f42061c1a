/* A device that is not ours, for client_invite: hands a relay a request bound to an invitation
 * code, altered after the binding, the way someone between the device and the approval queue
 * would. usage: enrol_tamper MODE HOST:PORT RELAY_KEY_HEX CODE REQUEST_FILE
 *   flip   one byte of the request changed after both MACs were made: the relay must refuse it
 *          (EINVITEMAC) and keep the invitation unused;
 *   swap   what a hostile relay could do: a request of its own choosing with a relay MAC it can
 *          make (it holds the verifier), the authority MAC of the real one: the relay takes it,
 *          and kurer-admin pending / approve must find it not bound;
 *   poll   (no REQUEST_FILE) a poll with a wrong proof for the code's id, as a third party who
 *          learnt the id would send: the relay must refuse it (EINVITEMAC) without locking the
 *          device out of its chain.
 * Prints the relay's answer as an error name ("OK" for none) and exits 0 if it answered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/crypto.h"
#include "kurer/enrol_call.h"
#include "kurer/invite.h"
#include "kurer/util.h"

int main(int argc, char **argv)
{
    char canon[KURER_INVITE_CODE_LEN + 1];
    uint8_t key[32], *d = NULL;
    size_t n = 0;
    kurer_invite_keys k;
    static kurer_enrol_request q;
    static kurer_enrol_reply rep;
    if (argc == 5 && strcmp(argv[1], "poll") == 0) {
        if (kurer_crypto_init() != 0 || kurer_hex_decode(key, 32, argv[3]) != 0 ||
            kurer_invite_parse(argv[4], canon, &k) != 0)
            return 2;
        q.request_id = 8;
        q.body = KURER_ENROL_POLL;
        memcpy(q.id, k.id, sizeof(q.id));
        kurer_invite_poll_proof(k.verifier, k.id, q.mac);
        q.mac[0] ^= 0x01; /* the id known, the code not */
        int prc = kurer_enrol_call(argv[2], key, &q, &rep, 10000);
        if (prc != 0) {
            printf("no answer: %s\n", kurer_err_name(prc));
            return 1;
        }
        printf("%s\n", rep.error == 0 ? "OK" : kurer_err_name(rep.error));
        return 0;
    }
    if (argc < 6 || argc > 7 || kurer_crypto_init() != 0 ||
        kurer_hex_decode(key, 32, argv[3]) != 0 || kurer_invite_parse(argv[4], canon, &k) != 0 ||
        kurer_file_read(argv[5], KURER_ENROL_REQUEST_MAX, &d, &n) != 0 || n < 8) {
        fprintf(
            stderr,
            "usage: enrol_tamper flip|swap HOST:PORT KEY CODE REQUEST | poll HOST:PORT KEY CODE\n");
        return 2;
    }
    q.request_id = 7;
    q.body = KURER_ENROL_SUBMIT;
    memcpy(q.id, k.id, sizeof(q.id));
    memcpy(q.request, d, n);
    q.request_len = n;
    kurer_invite_relay_mac(k.verifier, k.id, d, n, q.mac);
    kurer_invite_authority_mac(k.authority_key, k.id, d, n, q.authority_mac);
    if (strcmp(argv[1], "swap") == 0 && argc == 7) {
        uint8_t *o = NULL;
        size_t on = 0;
        if (kurer_file_read(argv[6], KURER_ENROL_REQUEST_MAX, &o, &on) != 0)
            return 2;
        memcpy(q.request, o, on);
        q.request_len = on;
        kurer_invite_relay_mac(k.verifier, k.id, o, on, q.mac);
        free(o);
    } else if (strcmp(argv[1], "flip") == 0 && argc == 6) {
        q.request[n / 2] ^= 0x01; /* after the binding */
    } else {
        return 2;
    }
    int rc = kurer_enrol_call(argv[2], key, &q, &rep, 10000);
    free(d);
    if (rc != 0) {
        printf("no answer: %s\n", kurer_err_name(rc));
        return 1;
    }
    printf("%s\n", rep.error == 0 ? "OK" : kurer_err_name(rep.error));
    return 0;
}
