/* kurer verify: safety numbers and certificates of a user's devices. */
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

typedef struct verify_ctx {
    kurer *k;
    int n;
    jline o; /* with --json: the result, printed once every device is in it */
} verify_ctx;

static int verify_row(void *ud, const kurer_peer_device *d)
{
    verify_ctx *v = ud;
    char fp[64] = "", nb[64], na[64], stale[256], sd[64];
    int frc = kurer_fingerprint(v->k, d->user, d->device_id, fp);
    stale_text(d, stale, sizeof(stale));
    kurer_time_format(sd, sizeof(sd), d->crl_stale_since);
    kurer_time_format(nb, sizeof(nb), d->not_before);
    kurer_time_format(na, sizeof(na), d->not_after);
    if (g_json) {
        kurer_json *j = &v->o.j;
        kurer_json_begin_object(j);
        kurer_json_kv_uint(j, "device", d->device_id);
        kurer_json_kv_str(j, "fingerprint", frc == 0 ? fp : "");
        kurer_json_kv_uint(j, "serial", d->serial);
        kurer_json_kv_str(j, "clearance", d->clearance ? kurer_level_name(d->clearance) : "");
        kurer_json_kv_str(j, "authority", d->authority);
        kurer_json_kv_str(j, "not_before", nb);
        kurer_json_kv_str(j, "not_after", na);
        kurer_json_kv_str(j, "certificate", d->cert_fingerprint);
        kurer_json_kv_str(j, "status", d->status == 0 ? "valid" : kurer_err_name(d->status));
        kurer_json_kv_bool(j, "crl_stale", stale[0] != '\0');
        kurer_json_kv_str(j, "crl_next_update", stale[0] ? sd : "");
        kurer_json_end_object(j);
    } else {
        printf("device %u\n", d->device_id);
        if (frc == 0) {
            printf("  safety number  ");
            for (int i = 0; i < 60; i += 5)
                printf("%.5s%s", fp + i, i == 25 ? "\n                 " : " ");
            printf("\n");
        }
        printf("  certificate    serial %llu, authority %s, %s\n", (unsigned long long)d->serial,
               d->authority, d->status == 0 ? "valid" : kurer_strerror(d->status));
        if (d->clearance)
            printf("  clearance      %s\n", kurer_level_name(d->clearance));
        printf("  valid          %s to %s\n  fingerprint    %s\n", nb, na, d->cert_fingerprint);
        if (stale[0])
            printf("  warning        %s: %s\n", stale,
                   d->status == 0 ? "revocations made since may be missing"
                                  : "refused until a newer list arrives");
    }
    v->n++;
    return 0;
}

int cmd_verify(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"offline", 0, 0}};
    kurer_args a;
    const char *home;
    kurer *k = NULL;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 1, 1, "USER@AUTHORITY", help_verify, argc,
                           argv)) != 0 ||
        (rc = need(&a, "home", &home)) != 0)
        return rc;
    if ((rc = user_arg("verify", a.pos[0])) != 0)
        return rc;
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    if (!flag(&a, "offline")) {
        rc = kurer_refresh(k, a.pos[0], NET_TIMEOUT * 1000, NULL);
        if (rc != 0) {
            net_error(rc, "could not ask the relay");
            fprintf(stderr, "kurer: %s; showing what this home holds\n", reason());
            clear_reason();
        }
        kurer_disconnect(k);
    }
    verify_ctx v;
    memset(&v, 0, sizeof(v));
    v.k = k;
    if (g_json) {
        /* One object, printed only when it is whole: a refusal is the error object instead. */
        jline_ok(&v.o);
        kurer_json_kv_str(&v.o.j, "user", a.pos[0]);
        kurer_json_key(&v.o.j, "devices");
        kurer_json_begin_array(&v.o.j);
    } else {
        printf("%s\n", a.pos[0]);
    }
    rc = kurer_peer_devices(k, a.pos[0], verify_row, &v);
    if (rc == 0 && v.n == 0)
        rc = refuse(KURER_ENOTFOUND, "no device of %s is known", a.pos[0]);
    else if (rc != 0)
        refuse(rc, "cannot list the devices: %s", kurer_strerror(rc));
    if (g_json && rc == 0) {
        kurer_json_end_array(&v.o.j);
        jline_end(&v.o);
    } else if (g_json) {
        kurer_buf_release(&v.o.b);
    }
    kurer_close(k);
    return rc;
}
