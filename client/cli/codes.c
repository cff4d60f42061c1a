/* What kurer init and kurer whoami show for enrolment: the comparison code the user reads to
 * the administrator, the request's fingerprint, its QR code (in a terminal, or as PNG). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "kurer/compare.h"
#include "kurer/qr.h"
#include "kurer/util.h"

int request_codes(const kurer *k, request_info *r)
{
    uint8_t *d = NULL;
    size_t n = 0;
    kurer_own_comparison_code(k, r->code);
    r->fingerprint[0] = r->qr[0] = '\0';
    /* The request is in the home until the device is enrolled (and after: it is never removed);
     * a home without it shows the code alone. */
    if (kurer_file_read(kurer_csr_path(k), KURER_CHAIN_BYTES_MAX, &d, &n) != 0)
        return 0;
    kurer_request_fingerprint(d, n, r->fingerprint, r->qr);
    free(d);
    return 0;
}

int show_request_qr(const request_info *r, const char *png, int force)
{
    int rc;
    if (r->qr[0] == '\0')
        return png != NULL ? refuse(KURER_ENOENT, "this home has no certificate request") : 0;
    if (png != NULL) {
        rc = kurer_qr_png(r->qr, png, 0644, force) /* a fingerprint, no secret */;
        if (rc == KURER_EEXIST)
            return refuse(rc, "%s already exists (--force replaces it)", png);
        if (rc != 0)
            return refuse(rc, "cannot write %s: %s", png, kurer_strerror(rc));
    }
    /* Drawn only on a terminal: its colour codes mean nothing in a file or a pipe. */
    if (g_json || !isatty(STDOUT_FILENO))
        return 0;
    kurer_buf b;
    kurer_buf_init(&b, 1 << 20);
    if (kurer_qr_terminal(r->qr, &b) == 0) {
        printf("the request's fingerprint as a QR code:\n");
        fwrite(b.data, 1, b.len, stdout);
    }
    kurer_buf_release(&b);
    return 0;
}
