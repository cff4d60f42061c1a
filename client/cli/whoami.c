/* kurer whoami: this device (user, keys, certificate, relay); offline. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

static const char help_whoami[] =
    "usage: kurer whoami --home H [--qr-png PATH [--force]] [--json]\n"
    "\n"
    "Shows this device: user, device id, the comparison code (12 digits, as kurer-admin issue\n"
    "prints them for the request), identity key (as 'kurer-admin show' prints it for the\n"
    "request) and its fingerprint (BLAKE2b-256, as 'kurer-admin log' prints it), Noise key,\n"
    "the request's fingerprint (and on a terminal its QR code; --qr-png PATH writes it as\n"
    "PNG, --force replacing PATH),\n"
    "the certificate (serial, clearance, validity, status now) or that it is not enrolled yet,\n"
    "and the relay. Works offline.\n";

typedef struct whoami_ctx {
    int have;
    char line[512]; /* the certificate as text */
    kurer_buf json; /* or as a JSON object */
} whoami_ctx;

static int whoami_cert(void *ud, const kurer_peer_device *d)
{
    whoami_ctx *w = ud;
    char nb[64], na[64];
    kurer_time_format(nb, sizeof(nb), d->not_before);
    kurer_time_format(na, sizeof(na), d->not_after);
    char stale[256], sd[64];
    stale_text(d, stale, sizeof(stale));
    kurer_time_format(sd, sizeof(sd), d->crl_stale_since);
    w->have = 1;
    if (g_json) {
        kurer_json j;
        kurer_buf_reset(&w->json);
        kurer_json_init(&j, &w->json);
        kurer_json_begin_object(&j);
        kurer_json_kv_str(&j, "status", d->status == 0 ? "valid" : kurer_err_name(d->status));
        kurer_json_kv_uint(&j, "serial", d->serial);
        kurer_json_kv_str(&j, "clearance", d->clearance ? kurer_level_name(d->clearance) : "");
        kurer_json_kv_str(&j, "not_before", nb);
        kurer_json_kv_str(&j, "not_after", na);
        kurer_json_kv_str(&j, "fingerprint", d->cert_fingerprint);
        kurer_json_kv_bool(&j, "crl_stale", stale[0] != '\0');
        kurer_json_kv_str(&j, "crl_next_update", stale[0] ? sd : "");
        kurer_json_end_object(&j);
        return kurer_json_error(&j);
    }
    snprintf(w->line, sizeof(w->line),
             "%s, serial %llu, authority %s%s%s, valid %s to %s\n"
             "                 fingerprint %s%s%s",
             d->status == 0 ? "valid" : kurer_strerror(d->status), (unsigned long long)d->serial,
             d->authority, d->clearance ? ", cleared for " : "",
             d->clearance ? kurer_level_name(d->clearance) : "", nb, na, d->cert_fingerprint,
             stale[0] ? "\n                 warning: " : "", stale);
    return 0;
}

int cmd_whoami(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"qr-png", V, 0}, {"force", 0, 0}};
    kurer_args a;
    const char *home;
    kurer *k = NULL;
    request_info r;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_whoami, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    char idk[2 * KURER_IDENTITY_KEY_LEN + 1], fp[65], nk[65];
    own_keys(k, idk, fp, nk);
    request_codes(k, &r);
    whoami_ctx w;
    memset(&w, 0, sizeof(w));
    kurer_buf_init(&w.json, 4096);
    rc = kurer_own_certificate(k, whoami_cert, &w);
    if (rc != 0 && rc != KURER_ESTATE) {
        refuse(rc, "cannot read this device's certificate: %s", kurer_strerror(rc));
        kurer_buf_release(&w.json);
        kurer_close(k);
        return rc;
    }
    if (g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_kv_str(&o.j, "user", kurer_own_user(k));
        kurer_json_kv_uint(&o.j, "device", kurer_own_device(k));
        kurer_json_kv_str(&o.j, "comparison_code", r.code);
        kurer_json_kv_str(&o.j, "request_fingerprint", r.fingerprint);
        kurer_json_kv_str(&o.j, "identity_key", idk);
        kurer_json_kv_str(&o.j, "key_fingerprint", fp);
        kurer_json_kv_str(&o.j, "noise_key", nk);
        kurer_json_kv_bool(&o.j, "enrolled", w.have);
        kurer_json_key(&o.j, "certificate");
        if (w.have)
            kurer_json_raw(&o.j, w.json.data, w.json.len);
        else
            kurer_json_null(&o.j);
        kurer_json_kv_str(&o.j, "relay", kurer_relay_address(k));
        jline_end(&o);
    } else {
        printf("user             %s\n", kurer_own_user(k));
        printf("device           %u\n", kurer_own_device(k));
        printf("comparison code  %s\n", r.code);
        printf("identity key     %s\nkey fingerprint  %s\nnoise key        %s\n", idk, fp, nk);
        if (r.fingerprint[0])
            printf("request          fingerprint %s\n", r.fingerprint);
        if (w.have)
            printf("certificate      %s\n", w.line);
        else
            printf("certificate      none: not enrolled yet (give %s to the administrator, then "
                   "kurer import the chain)\n",
                   kurer_csr_path(k));
        printf("relay            %s\n", kurer_relay_address(k));
    }
    rc = show_request_qr(&r, opt(&a, "qr-png"), flag(&a, "force"));
    kurer_buf_release(&w.json);
    kurer_close(k);
    return rc;
}
