/* kurer whoami: this device (user, keys, certificate, relay); offline. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rpc.h"
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

static const char *str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

/* The certificate (the method's "certificate") on the line that shows it. */
static void cert_line(json_t *c)
{
    const char *clearance = str(c, "clearance"), *warning = str(c, "crl_warning");
    printf("certificate      %s, serial %" JSON_INTEGER_FORMAT ", authority %s%s%s, valid %s to "
           "%s\n                 fingerprint %s%s%s\n",
           str(c, "status_text"), json_integer_value(json_object_get(c, "serial")),
           str(c, "authority"), clearance[0] ? ", cleared for " : "", clearance,
           str(c, "not_before"), str(c, "not_after"), str(c, "fingerprint"),
           warning[0] ? "\n                 warning: " : "", warning);
}

static void whoami_json(json_t *r)
{
    jline o;
    json_t *c = json_object_get(r, "certificate");
    jline_ok(&o);
    kurer_json_kv_str(&o.j, "user", str(r, "user"));
    kurer_json_kv_uint(&o.j, "device", (uint64_t)json_integer_value(json_object_get(r, "device")));
    kurer_json_kv_str(&o.j, "comparison_code", str(r, "comparison_code"));
    kurer_json_kv_str(&o.j, "request_fingerprint", str(r, "request_fingerprint"));
    kurer_json_kv_str(&o.j, "identity_key", str(r, "identity_key"));
    kurer_json_kv_str(&o.j, "key_fingerprint", str(r, "key_fingerprint"));
    kurer_json_kv_str(&o.j, "noise_key", str(r, "noise_key"));
    kurer_json_kv_bool(&o.j, "enrolled", json_is_object(c));
    kurer_json_key(&o.j, "certificate");
    if (json_is_object(c)) {
        kurer_json_begin_object(&o.j);
        kurer_json_kv_str(&o.j, "status", str(c, "status"));
        kurer_json_kv_uint(&o.j, "serial",
                           (uint64_t)json_integer_value(json_object_get(c, "serial")));
        kurer_json_kv_str(&o.j, "clearance", str(c, "clearance"));
        kurer_json_kv_str(&o.j, "not_before", str(c, "not_before"));
        kurer_json_kv_str(&o.j, "not_after", str(c, "not_after"));
        kurer_json_kv_str(&o.j, "fingerprint", str(c, "fingerprint"));
        kurer_json_kv_bool(&o.j, "crl_stale", json_is_true(json_object_get(c, "crl_stale")));
        kurer_json_kv_str(&o.j, "crl_next_update", str(c, "crl_next_update"));
        kurer_json_end_object(&o.j);
    } else {
        kurer_json_null(&o.j);
    }
    kurer_json_kv_str(&o.j, "relay", str(r, "relay"));
    jline_end(&o);
}

/* The method whoami (rpc_device.c), here or in the daemon; its result printed. */
int cmd_whoami(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"qr-png", V, 0}, {"force", 0, 0}};
    kurer_args a;
    const char *home;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_whoami, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    json_t *r = NULL;
    if ((rc = cli_call(home, "whoami", json_object(), &r)) != 0) {
        json_decref(r);
        return rc;
    }
    if (g_json) {
        whoami_json(r);
    } else {
        printf("user             %s\n", str(r, "user"));
        printf("device           %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(r, "device")));
        printf("comparison code  %s\n", str(r, "comparison_code"));
        printf("identity key     %s\nkey fingerprint  %s\nnoise key        %s\n",
               str(r, "identity_key"), str(r, "key_fingerprint"), str(r, "noise_key"));
        if (str(r, "request_fingerprint")[0])
            printf("request          fingerprint %s\n", str(r, "request_fingerprint"));
        if (json_is_object(json_object_get(r, "certificate")))
            cert_line(json_object_get(r, "certificate"));
        else
            printf("certificate      none: not enrolled yet (give %s to the administrator, then "
                   "kurer import the chain)\n",
                   str(r, "csr"));
        printf("relay            %s\n", str(r, "relay"));
    }
    request_info q; /* the QR code is drawn (or written) here, where the user is */
    snprintf(q.code, sizeof(q.code), "%s", str(r, "comparison_code"));
    snprintf(q.fingerprint, sizeof(q.fingerprint), "%s", str(r, "request_fingerprint"));
    snprintf(q.qr, sizeof(q.qr), "%s", str(r, "request_qr"));
    json_decref(r);
    return show_request_qr(&q, opt(&a, "qr-png"), flag(&a, "force"));
}
