/* kurer rekey: new device keys and a new certificate request, the history kept. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kurer/keys.h"

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

static int cert_status(void *ud, const kurer_peer_device *d)
{
    kurer_peer_device *out = ud;
    out->status = d->status;
    out->serial = d->serial;
    return 0;
}

static void rekey_done(const kurer *k, size_t archived, size_t failed)
{
    char idk[2 * KURER_IDENTITY_KEY_LEN + 1], fp[65], nk[65];
    own_keys(k, idk, fp, nk);
    if (g_json) {
        jline j;
        jline_ok(&j);
        kurer_json_kv_str(&j.j, "csr", kurer_csr_path(k));
        kurer_json_kv_str(&j.j, "user", kurer_own_user(k));
        kurer_json_kv_uint(&j.j, "device", kurer_own_device(k));
        kurer_json_kv_str(&j.j, "identity_key", idk);
        kurer_json_kv_str(&j.j, "key_fingerprint", fp);
        kurer_json_kv_str(&j.j, "noise_key", nk);
        kurer_json_kv_uint(&j.j, "sessions_archived", archived);
        kurer_json_kv_uint(&j.j, "messages_failed", failed);
        jline_end(&j);
        return;
    }
    printf("%s\n", kurer_csr_path(k));
    printf("identity key     %s\nkey fingerprint  %s\n", idk, fp);
    printf("New keys for %s device %u; the history is kept, %zu session%s archived.\n",
           kurer_own_user(k), kurer_own_device(k), archived, archived == 1 ? "" : "s");
    if (failed > 0)
        printf("%zu message%s in the outbox failed: kurer outbox retry ID sends them again once "
               "the new certificate is imported.\n",
               failed, failed == 1 ? "" : "s");
    printf("Give %s to your administrator (kurer-admin issue --replace) and compare the identity\n"
           "key; then kurer import the new chain.\n",
           kurer_csr_path(k));
}

int cmd_rekey(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"force", 0, 0}};
    kurer_args a;
    const char *home;
    kurer *k = NULL;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_rekey, argc, argv)) != 0 ||
        (rc = need(&a, "home", &home)) != 0 || (rc = open_home(home, &k)) != 0)
        return rc;
    kurer_peer_device cur;
    memset(&cur, 0, sizeof(cur));
    int crc = kurer_own_certificate(k, cert_status, &cur);
    if (crc == 0 && cur.status == 0 && !flag(&a, "force")) {
        kurer_close(k);
        return refuse(KURER_ESTATE,
                      "the certificate of this device (serial %llu) is still valid as far as "
                      "this home knows; rekey replaces the keys it certifies, and the device "
                      "cannot connect until a new one is imported: give --force to do it anyway "
                      "(after a revocation, kurer import the authority's revocation list first)",
                      (unsigned long long)cur.serial);
    }
    size_t archived = 0, failed = 0;
    rc = kurer_rekey(k, &archived, &failed);
    if (rc != 0)
        refuse(rc, "cannot make new keys: %s", kurer_strerror(rc));
    else
        rekey_done(k, archived, failed);
    kurer_close(k);
    return rc;
}
