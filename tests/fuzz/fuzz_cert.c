/* Fuzzes every decoder of identity material: certificates, chains, requests, revocation lists,
 * key files and KDF records. The first byte picks the decoder. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kurer/certmsg.h"
#include "kurer/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kurer_cert cert;
    static kurer_chain chain;
    static kurer_csr csr;
    kurer_crl crl;
    kurer_buf out;
    uint8_t pub[64], salt[KURER_SALT_LEN];
    kurer_key_kind kind;
    kurer_kdf_params p;
    size_t publen;

    if (size < 1)
        return 0;
    kurer_buf_init(&out, KURER_CRL_BYTES_MAX);
    switch (data[0] % 6) {
    case 0:
        /* A decoded certificate must encode back to bytes that decode to the same thing. */
        if (kurer_cert_decode(data + 1, size - 1, &cert) == 0) {
            kurer_cert again;
            if (kurer_cert_encode(&cert, &out) != 0 ||
                kurer_cert_decode(out.data, out.len, &again) != 0 ||
                memcmp(again.tbs, cert.tbs, cert.tbs_len) != 0)
                __builtin_trap();
        }
        break;
    case 1:
        if (kurer_chain_decode(data + 1, size - 1, &chain) == 0 &&
            (chain.n == 0 || chain.n > KURER_CHAIN_MAX || kurer_chain_encode(&chain, &out) != 0))
            __builtin_trap();
        break;
    case 2:
        if (kurer_csr_decode(data + 1, size - 1, &csr) == 0 && kurer_csr_encode(&csr, &out) != 0)
            __builtin_trap();
        break;
    case 3:
        if (kurer_crl_decode(data + 1, size - 1, &crl) == 0) {
            for (size_t i = 1; i < crl.n_revoked; i++)
                if (crl.revoked[i].serial <= crl.revoked[i - 1].serial)
                    __builtin_trap();
            (void)kurer_crl_contains(&crl, 1);
            kurer_crl_release(&crl);
        }
        break;
    case 4:
        (void)kurer_keyfile_peek(data + 1, size - 1, &kind, pub, sizeof(pub), &publen);
        break;
    case 5:
        (void)kurer_kdf_record_decode(data + 1, size - 1, &p, salt);
        break;
    }
    kurer_buf_release(&out);
    return 0;
}
