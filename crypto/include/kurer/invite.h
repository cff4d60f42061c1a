/* One-time invitation codes for online enrolment (docs/protocol.md 3.6).
 *
 * A code is 80 random bits written as 16 characters of Crockford's base32 (0-9 and A-Z without
 * I, L, O, U) and one check character, in groups: "7QXM-2PA9-RTDH-4WEZ-K". Typing is forgiving:
 * lower case, I and L for 1, O for 0, spaces and dashes anywhere. The check character is the
 * base32 digit of the first byte of BLAKE2b-256("kurer invite check v1" 0x00 secret) mod 32: a
 * mistyped code is told apart (KURER_ECHECKDIGIT) from a wrong one with probability 31/32.
 *
 * From the 10 secret bytes s (each BLAKE2b-256 of a label, 0x00 and s; the id truncated):
 *   id            = first 16 bytes of H("kurer invite id v1")        names the invitation
 *   verifier      = H("kurer invite verifier v1")                    the relay's: checks use
 *   authority key = H("kurer invite authority v1")                   the authority's only
 * The relay gets id and verifier (it never learns s, and cannot derive the authority key from
 * them); the authority keeps the authority key (and never the code). A device proves the code
 * with MACs (keyed BLAKE2b-256 over a label, 0x00, the id and the request):
 *   relay_mac     = MAC(verifier, "kurer enrol relay mac v1" ...)      checked by the relay
 *   authority_mac = MAC(authority key, "kurer enrol authority mac v1" ...) checked at approval:
 * a relay that swaps the request cannot make the second. */
#ifndef KURER_INVITE_H
#define KURER_INVITE_H

#include <stddef.h>
#include <stdint.h>

#include "kurer/enrol.h"
#include "kurer/error.h"
#include "kurer/keys.h"

#define KURER_INVITE_SECRET_LEN 10 /* 80 bits */
#define KURER_INVITE_CODE_LEN                                                                      \
    21 /* four groups of four base32 characters, a check character, "-" between */

typedef struct kurer_invite_keys {
    uint8_t id[KURER_ENROL_ID_LEN];
    uint8_t verifier[KURER_ENROL_MAC_LEN];
    uint8_t authority_key[KURER_ENROL_MAC_LEN];
} kurer_invite_keys;

/* A new random code (NUL-terminated) and its keys. Wipe both when done (kurer_memzero). */
KURER_EXPORT void kurer_invite_new(char code[KURER_INVITE_CODE_LEN + 1], kurer_invite_keys *keys);
/* The code as typed -> its canonical form and keys. KURER_EINVAL: not 17 base32 characters;
 * KURER_ECHECKDIGIT: the check character does not match (a typing error). */
KURER_EXPORT KURER_MUST_CHECK int kurer_invite_parse(const char *typed,
                                                     char canon[KURER_INVITE_CODE_LEN + 1],
                                                     kurer_invite_keys *keys);
/* The keys of 10 secret bytes (for tests and vectors). */
KURER_EXPORT void kurer_invite_derive(const uint8_t secret[KURER_INVITE_SECRET_LEN],
                                      kurer_invite_keys *keys);

KURER_EXPORT void kurer_invite_relay_mac(const uint8_t verifier[32], const uint8_t id[16],
                                         const uint8_t *req, size_t n, uint8_t mac[32]);
KURER_EXPORT void kurer_invite_authority_mac(const uint8_t key[32], const uint8_t id[16],
                                             const uint8_t *req, size_t n, uint8_t mac[32]);
KURER_EXPORT void kurer_invite_poll_proof(const uint8_t verifier[32], const uint8_t id[16],
                                          uint8_t proof[32]);

/* Signs the invitation's fields with the authority key (inv->signature); verifies them against
 * an Ed25519 public key (KURER_EBADSIG). Signed: "kurer invitation v1" 0x00, id, verifier, the
 * user's length (2 bytes) and bytes, device id (4), created_at and expires_at (8 each), big
 * endian. */
KURER_EXPORT KURER_MUST_CHECK int kurer_invite_sign(kurer_enrol_invitation *inv,
                                                    const kurer_signing_key *k);
KURER_EXPORT KURER_MUST_CHECK int kurer_invite_verify(const kurer_enrol_invitation *inv,
                                                      const uint8_t pk[32]);
/* An administrator's proof for a list or decide request: Ed25519 over "kurer enrol admin v1"
 * 0x00, the body (1 byte), the time (8), and for LIST the cursor (0 or 16 bytes), for DECIDE
 * the id, the decision (1) and BLAKE2b-256 of the chain. Sets r->auth's time and signature (its
 * authority certificate is the caller's); verify checks them against pk. */
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_proof_sign(kurer_enrol_request *r, int64_t now,
                                                         const kurer_signing_key *k);
KURER_EXPORT KURER_MUST_CHECK int kurer_enrol_proof_verify(const kurer_enrol_request *r,
                                                           const uint8_t pk[32]);

#endif
