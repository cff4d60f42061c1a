/* libFuzzer target for the handshake payloads: what a relay does with the payload of IK
 * message 1 (kurer_handshake_init_decode, then kurer_trust_verify_chain against a pinned root
 * and a held revocation list, as relay.c does), and what a client does with message 2
 * (kurer_handshake_accept_decode). Every input goes through both decoders.
 *
 * The trust store is the fixed test PKI of fuzz_pki.h, built once and only read afterwards, and
 * the clock is FUZZ_NOW, so a run is deterministic. The seeds (tests/fuzz/corpus/handshake, from
 * fuzz_seeds) carry chains signed by that PKI, so that mutations reach the signature, validity,
 * clearance and revocation checks instead of dying on the first signature.
 *
 * Properties (abort otherwise): a decoded HandshakeInit encodes again to bytes that decode to
 * the same chain; a chain that verifies is [device, authority] of the pinned root, not revoked,
 * valid at FUZZ_NOW, and what kurer_verified reports is what the leaf says; a decoded
 * HandshakeAccept encodes to bytes that decode to the same struct. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_pki.h"
#include "kurer/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fuzz_pki pki;

static int same_chain(const kurer_chain *a, const kurer_chain *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->certs[i].tbs_len != b->certs[i].tbs_len ||
            memcmp(a->certs[i].tbs, b->certs[i].tbs, a->certs[i].tbs_len) != 0 ||
            memcmp(a->certs[i].signature, b->certs[i].signature, KURER_SIG_LEN) != 0)
            return 0;
    return 1;
}

static void check_verified(const kurer_chain *ch, const kurer_verified *v)
{
    const kurer_cert *dev = &ch->certs[0], *auth = &ch->certs[1];
    uint8_t root_id[KURER_KEY_ID_LEN];
    fuzz_check(ch->n == 2);
    fuzz_check(dev->body.role == KURER_ROLE_DEVICE && auth->body.role == KURER_ROLE_AUTHORITY);
    kurer_cert_key_id(&pki.root, root_id);
    fuzz_check(memcmp(auth->body.issuer_key_id, root_id, KURER_KEY_ID_LEN) == 0);
    fuzz_check(strcmp(v->user, dev->body.subject) == 0);
    fuzz_check(strcmp(v->authority, auth->body.subject) == 0);
    fuzz_check(v->device_id == dev->body.device_id && v->serial == dev->body.serial);
    fuzz_check(memcmp(v->noise_key, dev->body.noise_key, KURER_X25519_LEN) == 0);
    fuzz_check(memcmp(v->identity_key, dev->body.identity_key, KURER_IDENTITY_KEY_LEN) == 0);
    fuzz_check(memcmp(v->authority_key_id, dev->body.issuer_key_id, KURER_KEY_ID_LEN) == 0);
    fuzz_check(v->clearance <= auth->body.clearance && auth->body.clearance <= v->ceiling);
    fuzz_check(v->ceiling == pki.root.body.clearance);
    fuzz_check(v->not_after >= FUZZ_NOW && v->not_after <= dev->body.not_after &&
               v->not_after <= auth->body.not_after && v->not_after <= pki.root.body.not_after);
    fuzz_check(!kurer_trust_is_revoked(pki.trust, v->authority_key_id, v->serial));
}

static void handshake_init(const uint8_t *data, size_t size)
{
    static kurer_handshake_init hi, again;
    kurer_verified v;
    kurer_buf b;
    int rc;
    if (kurer_handshake_init_decode(data, size, &hi) != 0)
        return;
    fuzz_check(hi.protocol_version == KURER_PROTOCOL_VERSION);
    fuzz_check(hi.chain.n >= 1 && hi.chain.n <= KURER_CHAIN_MAX);
    kurer_buf_init(&b, KURER_FRAME_MAX);
    fuzz_check(kurer_handshake_init_encode(&hi, &b) == 0);
    fuzz_check(kurer_handshake_init_decode(b.data, b.len, &again) == 0);
    fuzz_check(same_chain(&hi.chain, &again.chain));
    kurer_buf_release(&b);

    rc = kurer_trust_verify_chain(pki.trust, &hi.chain, FUZZ_NOW, &v);
    fuzz_check(rc <= 0);
    if (rc == 0)
        check_verified(&hi.chain, &v);
}

static void handshake_accept(const uint8_t *data, size_t size)
{
    kurer_handshake_accept ha, again;
    kurer_buf b;
    if (kurer_handshake_accept_decode(data, size, &ha) != 0)
        return;
    fuzz_check(ha.protocol_version == KURER_PROTOCOL_VERSION);
    fuzz_check(!ha.has_error || ha.error_code < 0);
    fuzz_check(strnlen(ha.error_message, sizeof(ha.error_message)) < sizeof(ha.error_message));
    kurer_buf_init(&b, KURER_FRAME_MAX);
    fuzz_check(kurer_handshake_accept_encode(&ha, &b) == 0);
    fuzz_check(kurer_handshake_accept_decode(b.data, b.len, &again) == 0);
    fuzz_check(again.protocol_version == ha.protocol_version &&
               again.server_time == ha.server_time && again.queued == ha.queued &&
               again.has_error == ha.has_error && again.error_code == ha.error_code &&
               strcmp(again.error_message, ha.error_message) == 0);
    kurer_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        fuzz_pki_init(&pki);
        ready = 1;
    }
    handshake_init(data, size);
    handshake_accept(data, size);
    return 0;
}
