/* The device's certificate request, written by kurer init and kurer rekey: binary
 * (H/device.csr) and as armoured text for mail (H/device.csr.txt, docs/protocol.md 2.6). */
#include <stdlib.h>
#include <string.h>

#include "home.h"
#include "kurer/armor.h"
#include "kurer/buf.h"
#include "kurer/csr.h"
#include "kurer/util.h"

/* The request, binary (device.csr) and as armoured text for mail (device.csr.txt). */
int kurer__home_write_csr(kurer *k, const uint8_t *identity_priv)
{
    kurer_csr_body body;
    kurer_csr *csr = malloc(sizeof(*csr));
    kurer_buf b, t;
    if (csr == NULL)
        return KURER_ENOMEM;
    memset(&body, 0, sizeof(body));
    body.version = 1;
    memcpy(body.subject, k->own.user, sizeof(body.subject));
    body.device_id = k->own.device_id;
    memcpy(body.display_name, k->own.display_name, sizeof(body.display_name));
    memcpy(body.identity_key, k->own.identity_pub, sizeof(body.identity_key));
    memcpy(body.noise_key, k->own.noise_pub, sizeof(body.noise_key));
    body.created_at = kurer__home_now(k);
    kurer_buf_init(&b, KURER_TBS_MAX * 2);
    kurer_buf_init(&t, KURER_TBS_MAX * 4);
    int rc = kurer_csr_sign(&body, identity_priv, csr);
    if (rc == 0)
        rc = kurer_csr_encode(csr, &b);
    if (rc == 0)
        rc = kurer_armor_encode(KURER_ARMOR_REQUEST, b.data, b.len, &t);
    if (rc == 0)
        rc = kurer_file_write(k->csr_path, b.data, b.len, 0644, 1);
    if (rc == 0)
        rc = kurer_file_write(k->csr_text_path, t.data, t.len, 0644, 1);
    kurer_buf_release(&b);
    kurer_buf_release(&t);
    free(csr);
    return rc;
}
