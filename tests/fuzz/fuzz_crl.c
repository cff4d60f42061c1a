/* libFuzzer target for the revocation list parser and its verification: the bytes a relay takes
 * in a RevocationUpload and a client in a RevocationChunk. Each input is one
 * SignedRevocationList: kurer_crl_decode, kurer_crl_verify against the pinned test root, then
 * kurer_trust_add_crl into a fresh trust store that pins that root and already holds mof's
 * version-1 list (fuzz_pki.h), so that a newer list replaces it and an older one is ESTALE.
 * (fuzz_cert also decodes revocation lists, one case among six, but never verifies or stores
 * one.)
 *
 * The seeds (tests/fuzz/corpus/crl, from fuzz_seeds) are lists signed by the test PKI's
 * authorities, by the root itself (a root-signed list of authority serials), by an unpinned
 * root's authority, and by the wrong key, so that mutations reach every verification step.
 *
 * The trust store lives for one input and the clock is FUZZ_NOW: nothing carries over between
 * inputs. Properties (abort otherwise): a decoded list is sorted and unique and
 * kurer_crl_contains agrees with it; it encodes and decodes back to the same list;
 * kurer_trust_add_crl fails exactly as the decoder does on bytes that do not decode; a list it
 * keeps is the one held for its issuer, cannot be added twice, and the device chain [anna@mof,
 * mof] is revoked exactly when the list held for mof names the device (or, once roots may sign
 * lists, when a list of the root names mof). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fuzz_pki pki;
static uint8_t root_id[KURER_KEY_ID_LEN], mof_id[KURER_KEY_ID_LEN];

static void check_entries(const kurer_crl *c)
{
    for (size_t i = 0; i < c->n_revoked; i++) {
        uint64_t s = c->revoked[i].serial;
        fuzz_check(s != 0 && (i == 0 || s > c->revoked[i - 1].serial));
        fuzz_check(kurer_crl_contains(c, s));
        if (s < UINT64_MAX && (i + 1 == c->n_revoked || c->revoked[i + 1].serial != s + 1))
            fuzz_check(!kurer_crl_contains(c, s + 1));
    }
    fuzz_check(!kurer_crl_contains(c, 0));
}

static int same_list(const kurer_crl *a, const kurer_crl *b)
{
    return strcmp(a->issuer, b->issuer) == 0 &&
           memcmp(a->issuer_key_id, b->issuer_key_id, KURER_KEY_ID_LEN) == 0 &&
           a->version == b->version && a->issued_at == b->issued_at &&
           a->next_update == b->next_update && a->n_revoked == b->n_revoked &&
           (a->n_revoked == 0 ||
            memcmp(a->revoked, b->revoked, a->n_revoked * sizeof(*a->revoked)) == 0) &&
           a->tbs_len == b->tbs_len && memcmp(a->tbs, b->tbs, a->tbs_len) == 0 &&
           memcmp(a->signature, b->signature, KURER_SIG_LEN) == 0 &&
           a->issuer_cert.tbs_len == b->issuer_cert.tbs_len &&
           memcmp(a->issuer_cert.tbs, b->issuer_cert.tbs, a->issuer_cert.tbs_len) == 0 &&
           memcmp(a->issuer_cert.signature, b->issuer_cert.signature, KURER_SIG_LEN) == 0;
}

static void round_trip(const kurer_crl *c)
{
    kurer_crl again;
    kurer_buf b;
    kurer_buf_init(&b, KURER_CRL_BYTES_MAX);
    fuzz_check(kurer_crl_encode(c, &b) == 0);
    fuzz_check(kurer_crl_decode(b.data, b.len, &again) == 0);
    fuzz_check(same_list(c, &again));
    kurer_crl_release(&again);
    kurer_buf_release(&b);
}

static const kurer_crl *held_for(const kurer_trust *t, const uint8_t *issuer_key_id)
{
    for (size_t i = 0; i < kurer_trust_crl_count(t); i++) {
        const kurer_crl *h = kurer_trust_crl(t, i);
        if (memcmp(h->issuer_key_id, issuer_key_id, KURER_KEY_ID_LEN) == 0)
            return h;
    }
    return NULL;
}

static void store(const uint8_t *data, size_t size, const kurer_crl *c)
{
    int is_mof = memcmp(c->issuer_key_id, mof_id, KURER_KEY_ID_LEN) == 0;
    int is_root = memcmp(c->issuer_key_id, root_id, KURER_KEY_ID_LEN) == 0;
    int verified = kurer_crl_verify(c, &pki.root);
    const kurer_crl *held;
    kurer_verified v;
    kurer_trust *t;
    uint64_t version;
    int rc, revoked;

    fuzz_check(kurer_trust_new(&t) == 0);
    fuzz_check(kurer_trust_add_root(t, &pki.root, FUZZ_NOW) == 0);
    fuzz_check(kurer_trust_add_crl(t, pki.crl_v1.data, pki.crl_v1.len, NULL) == 0);

    rc = kurer_trust_add_crl(t, data, size, &version);
    fuzz_check(rc <= 0);
    if (verified == 0) /* an authority's list under the pinned root */
        fuzz_check(rc == (is_mof && c->version <= 1 ? KURER_ESTALE : 0));
    if (rc == 0) {
        fuzz_check(version == c->version);
        if (c->issuer_cert.body.role == KURER_ROLE_AUTHORITY) {
            /* (How a store keeps a root's list is not this target's business.) */
            fuzz_check(verified == 0);
            fuzz_check(kurer_trust_crl_count(t) == (is_mof ? 1u : 2u));
            held = held_for(t, c->issuer_key_id);
            fuzz_check(held != NULL && same_list(held, c));
        }
        fuzz_check(kurer_trust_add_crl(t, data, size, &version) == KURER_ESTALE && version == 0);
    } else {
        fuzz_check(version == 0 && kurer_trust_crl_count(t) == 1);
    }

    /* mof's newest list decides for mof's devices; a root's list (when roots may sign lists)
     * decides for the root's authorities. */
    held = held_for(t, mof_id);
    fuzz_check(held != NULL);
    fuzz_check(kurer_trust_is_revoked(t, mof_id, FUZZ_REVOKED_SERIAL) ==
               kurer_crl_contains(held, FUZZ_REVOKED_SERIAL));
    revoked = kurer_crl_contains(held, FUZZ_DEVICE_SERIAL) ||
              (rc == 0 && is_root && kurer_crl_contains(c, FUZZ_AUTH_SERIAL));
    rc = kurer_trust_verify_chain(t, &pki.chain, FUZZ_NOW, &v);
    fuzz_check(rc == (revoked ? KURER_EREVOKED : 0));
    kurer_trust_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    kurer_crl crl;
    int rc;
    if (!ready) {
        fuzz_pki_init(&pki);
        kurer_cert_key_id(&pki.root, root_id);
        kurer_cert_key_id(&pki.auth, mof_id);
        ready = 1;
    }
    rc = kurer_crl_decode(data, size, &crl);
    if (rc != 0) {
        /* The store decodes with the same decoder: it must fail the same way, and keep nothing
         * (the shared store is only read: nothing is added to it). */
        uint64_t version = 1;
        fuzz_check(rc < 0);
        fuzz_check(kurer_trust_add_crl(pki.trust, data, size, &version) == rc && version == 0);
        fuzz_check(kurer_trust_crl_count(pki.trust) == 1);
        return 0;
    }
    check_entries(&crl);
    round_trip(&crl);
    store(data, size, &crl);
    kurer_crl_release(&crl);
    return 0;
}
