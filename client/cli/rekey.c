/* kurer rekey: new device keys and a new certificate request, the history kept. */
#include <stdio.h>
#include <string.h>

#include "rpc.h"

static const char help_rekey[] =
    "usage: kurer rekey --home H [--force] [--json]\n"
    "\n"
    "Makes new keys for this device (identity key, Noise key, and at the next connection a\n"
    "signed prekey and one-time prekeys) and a new certificate request H/device.csr for the\n"
    "same user and device id, after the device's certificate was revoked (a lost or replaced\n"
    "key) or on demand. The messages stay; the sessions made with the old keys are archived in\n"
    "the store; messages still in the outbox become failed (kurer outbox retry ID sends them\n"
    "again once the new certificate is imported). Until then the device cannot connect.\n"
    "Prints the request's path, the new identity key and its fingerprint: the administrator\n"
    "compares them and issues the request (kurer-admin issue --replace, which revokes the old\n"
    "certificate in the same step); kurer import then brings the device back.\n"
    "\n"
    "  --force   also while the current certificate is still valid (it stops working)\n"
    "  --json    print the result as one JSON object\n";

static int rekey_done(json_t *r)
{
    const char *csr = json_string_value(json_object_get(r, "csr"));
    const char *user = json_string_value(json_object_get(r, "user"));
    const char *idk = json_string_value(json_object_get(r, "identity_key"));
    const char *fp = json_string_value(json_object_get(r, "key_fingerprint"));
    unsigned long long dev = (unsigned long long)json_integer_value(json_object_get(r, "device"));
    size_t archived = (size_t)json_integer_value(json_object_get(r, "sessions_archived"));
    size_t failed = (size_t)json_integer_value(json_object_get(r, "messages_failed"));
    if (csr == NULL || user == NULL || idk == NULL || fp == NULL) {
        return refuse(KURER_EMALFORMED, "rekey: a malformed answer");
    }
    if (g_json) {
        jline j;
        jline_ok(&j);
        kurer_json_kv_str(&j.j, "csr", csr);
        kurer_json_kv_str(&j.j, "user", user);
        kurer_json_kv_uint(&j.j, "device", dev);
        kurer_json_kv_str(&j.j, "identity_key", idk);
        kurer_json_kv_str(&j.j, "key_fingerprint", fp);
        kurer_json_kv_str(&j.j, "noise_key", json_string_value(json_object_get(r, "noise_key")));
        kurer_json_kv_uint(&j.j, "sessions_archived", archived);
        kurer_json_kv_uint(&j.j, "messages_failed", failed);
        jline_end(&j);
        return 0;
    }
    printf("%s\n", csr);
    printf("identity key     %s\nkey fingerprint  %s\n", idk, fp);
    printf("New keys for %s device %llu; the history is kept, %zu session%s archived.\n", user, dev,
           archived, archived == 1 ? "" : "s");
    if (failed > 0)
        printf("%zu message%s in the outbox failed: kurer outbox retry ID sends them again once "
               "the new certificate is imported.\n",
               failed, failed == 1 ? "" : "s");
    printf("Give %s to your administrator (kurer-admin issue --replace) and compare the identity\n"
           "key; then kurer import the new chain.\n",
           csr);
    return 0;
}

/* The method rekey (rpc_keys.c), here or in the daemon; its result printed. */
int cmd_rekey(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"force", 0, 0}};
    kurer_args a;
    const char *home;
    json_t *res = NULL;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_rekey, argc, argv)) != 0 ||
        (rc = need(&a, "home", &home)) != 0)
        return rc;
    rc = cli_call(home, "rekey", json_pack("{s:b}", "force", flag(&a, "force")), &res);
    if (rc == 0)
        rc = rekey_done(res);
    json_decref(res);
    return rc;
}
