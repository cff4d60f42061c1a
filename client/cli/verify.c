/* kurer verify: safety numbers and certificates of a user's devices. */
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

static const char help_verify[] =
    "usage: kurer verify --home H USER@AUTH [--offline] [--json]\n"
    "\n"
    "Shows, for every device of USER@AUTH, the safety number to compare with that person and\n"
    "the device certificate (serial, clearance, authority, validity, status). The device list\n"
    "is refreshed from the relay's directory first (each chain verified against the root and\n"
    "the revocation lists); --offline shows what the home holds.\n"
    "\n"
    "A revocation list (the authority's, or the root's list of authorities) past its next\n"
    "update is shown as a warning: for 7 days the device stays valid, then it is refused\n"
    "(status ECRLSTALE, 'revocation list is past its next update') until the relay hands out\n"
    "a newer list. JSON: \"crl_stale\" and \"crl_next_update\".\n";

static const char *str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

static uint64_t num(json_t *o, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(o, key));
}

static void device_json(kurer_json *j, json_t *d)
{
    kurer_json_begin_object(j);
    kurer_json_kv_uint(j, "device", num(d, "device"));
    kurer_json_kv_str(j, "fingerprint", str(d, "safety_number"));
    kurer_json_kv_uint(j, "serial", num(d, "serial"));
    kurer_json_kv_str(j, "clearance", str(d, "clearance"));
    kurer_json_kv_str(j, "authority", str(d, "authority"));
    kurer_json_kv_str(j, "not_before", str(d, "not_before"));
    kurer_json_kv_str(j, "not_after", str(d, "not_after"));
    kurer_json_kv_str(j, "certificate", str(d, "fingerprint"));
    kurer_json_kv_str(j, "status", str(d, "status"));
    kurer_json_kv_bool(j, "crl_stale", json_is_true(json_object_get(d, "crl_stale")));
    kurer_json_kv_str(j, "crl_next_update", str(d, "crl_next_update"));
    kurer_json_end_object(j);
}

static void device_text(json_t *d)
{
    const char *fp = str(d, "safety_number"), *warning = str(d, "crl_warning");
    int valid = strcmp(str(d, "status"), "valid") == 0;
    printf("device %llu\n", (unsigned long long)num(d, "device"));
    if (strlen(fp) == 60) {
        printf("  safety number  ");
        for (int i = 0; i < 60; i += 5)
            printf("%.5s%s", fp + i, i == 25 ? "\n                 " : " ");
        printf("\n");
    }
    printf("  certificate    serial %llu, authority %s, %s\n", (unsigned long long)num(d, "serial"),
           str(d, "authority"), str(d, "status_text"));
    if (str(d, "clearance")[0])
        printf("  clearance      %s\n", str(d, "clearance"));
    printf("  valid          %s to %s\n  fingerprint    %s\n", str(d, "not_before"),
           str(d, "not_after"), str(d, "fingerprint"));
    if (warning[0])
        printf("  warning        %s: %s\n", warning,
               valid ? "revocations made since may be missing"
                     : "refused until a newer list arrives");
}

/* The method verify (rpc_device.c), here or in the daemon; its result printed. */
int cmd_verify(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"offline", 0, 0}};
    kurer_args a;
    const char *home;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 1, 1, "USER@AUTHORITY", help_verify, argc,
                           argv)) != 0 ||
        (rc = need(&a, "home", &home)) != 0)
        return rc;
    if ((rc = user_arg("verify", a.pos[0])) != 0)
        return rc;
    json_t *r = NULL,
           *params = json_pack("{s:s,s:b}", "user", a.pos[0], "offline", flag(&a, "offline"));
    if (params == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    if ((rc = cli_call(home, "verify", params, &r)) != 0) {
        json_decref(r);
        return rc;
    }
    if (json_object_get(r, "refresh_error") != NULL)
        fprintf(stderr, "kurer: %s; showing what this home holds\n", str(r, "refresh_error"));
    json_t *devs = json_object_get(r, "devices"), *d;
    size_t i;
    if (g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_kv_str(&o.j, "user", a.pos[0]);
        kurer_json_key(&o.j, "devices");
        kurer_json_begin_array(&o.j);
        json_array_foreach(devs, i, d)
        {
            device_json(&o.j, d);
        }
        kurer_json_end_array(&o.j);
        jline_end(&o);
    } else {
        printf("%s\n", a.pos[0]);
        json_array_foreach(devs, i, d)
        {
            device_text(d);
        }
    }
    json_decref(r);
    return 0;
}
