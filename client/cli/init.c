/* kurer init: a new device home (keys, encrypted store, certificate request). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kurer/armor.h"
#include "kurer/crypto.h"
#include "kurer/keys.h"
#include "kurer/util.h"

static const char help_init[] =
    "usage: kurer init --home H --user USER@AUTH --device N --relay HOST:PORT --relay-key KEY\n"
    "                  --root ROOT.crt [--name NAME] [--qr-png PATH [--force]] [--kdf-min]\n"
    "                  [--invite CODE [--wait SECONDS]] [--json]\n"
    "\n"
    "Creates a device home: the encrypted store, this device's keys, and the certificate\n"
    "request for the administrator, as H/device.csr (binary) and H/device.csr.txt (the same as\n"
    "armoured text, for mail or chat). Prints their paths, the comparison code (12 digits: read\n"
    "them to the administrator, whose kurer-admin issue prints the request's), the identity key,\n"
    "its fingerprint and, on a terminal, the request's fingerprint as a QR code (kurer whoami\n"
    "shows them again). The passphrase comes from " PASS_ENV "\n"
    "or a no-echo prompt (at least 12 characters).\n"
    "\n"
    "  --home H           the home folder (made 0700, or an existing one of yours set to\n"
    "                     0700, which is said on stderr; must not hold a store yet)\n"
    "  --user USER@AUTH   this device's user\n"
    "  --device N         this device's id (1..2147483647)\n"
    "  --relay HOST:PORT  the relay: an IP address, [IPv6] or a host name (kept as typed, "
    "resolved\n"
    "                     at every connect; change it later with kurer relay)\n"
    "  --relay-key KEY    the relay's public key: 64 hex digits, or the path of relay.pub\n"
    "  --root ROOT.crt    the pinned root certificate\n"
    "  --name NAME        display name (default: the user)\n"
    "  --qr-png PATH      also write the QR code as a PNG file (mode 0644)\n"
    "  --force            replace an existing --qr-png file\n"
    "  --invite CODE      online enrolment: send the request through the relay, bound to\n"
    "                     this one-time invitation code from the administrator (kurer-admin\n"
    "                     invite); it is checked before anything is created\n"
    "  --wait SECONDS     with --invite: wait up to this long for the approval, then import\n"
    "                     the chain (default 0: 'kurer import --invite-status' fetches it)\n"
    "  --kdf-min          the smallest Argon2id parameters accepted (for tests)\n"
    "  --json             print the result as one JSON object\n";

/* The request's paths and the codes to compare with what kurer-admin prints for it. */
static int init_done(const kurer *k, const kurer_args *a)
{
    char idk[2 * KURER_IDENTITY_KEY_LEN + 1], fp[65], nk[65];
    request_info r;
    own_keys(k, idk, fp, nk);
    request_codes(k, &r);
    if (g_json) {
        jline j;
        jline_ok(&j);
        kurer_json_kv_str(&j.j, "csr", kurer_csr_path(k));
        kurer_json_kv_str(&j.j, "csr_text", kurer_csr_text_path(k));
        kurer_json_kv_str(&j.j, "comparison_code", r.code);
        kurer_json_kv_str(&j.j, "request_fingerprint", r.fingerprint);
        kurer_json_kv_str(&j.j, "user", kurer_own_user(k));
        kurer_json_kv_uint(&j.j, "device", kurer_own_device(k));
        kurer_json_kv_str(&j.j, "identity_key", idk);
        kurer_json_kv_str(&j.j, "key_fingerprint", fp);
        kurer_json_kv_str(&j.j, "noise_key", nk);
        jline_end(&j);
    } else {
        printf("%s\n%s\n", kurer_csr_path(k), kurer_csr_text_path(k));
        printf("comparison code  %s\n", r.code);
        printf("identity key     %s\nkey fingerprint  %s\n", idk, fp);
        printf("request          fingerprint %s\n", r.fingerprint);
        printf("Give %s (or the text of %s, by mail) to your administrator and\n"
               "read the comparison code to them (by phone or in person): kurer-admin issue\n"
               "prints the request's. 'kurer whoami' shows it again.\n",
               kurer_csr_path(k), kurer_csr_text_path(k));
    }
    return show_request_qr(&r, opt(a, "qr-png"), flag(a, "force"));
}

int cmd_init(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0},   {"json", 0, 0},      {"home", V, 0},   {"user", V, 0}, {"device", V, 0},
        {"relay", V, 0},  {"relay-key", V, 0}, {"root", V, 0},   {"name", V, 0}, {"kdf-min", 0, 0},
        {"qr-png", V, 0}, {"force", 0, 0},     {"invite", V, 0}, {"wait", V, 0}};
    kurer_args a;
    const char *home, *user, *dev_s, *relay, *key_s, *root_path;
    uint64_t dev = 0;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_init, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) || (rc = need(&a, "user", &user)) ||
        (rc = need(&a, "device", &dev_s)) || (rc = need(&a, "relay", &relay)) ||
        (rc = need(&a, "relay-key", &key_s)) || (rc = need(&a, "root", &root_path)))
        return rc;
    if (kurer_parse_u64(dev_s, KURER_DEVICE_ID_MAX, &dev) != 0 || dev == 0)
        return usage_error("--device must be a number from 1 to %u", KURER_DEVICE_ID_MAX);
    if ((rc = user_arg("--user", user)) != 0)
        return rc;
    /* The code is checked before anything is created. */
    char code[KURER_INVITE_CODE_LEN + 1];
    kurer_invite_keys keys;
    int wait_s = 0, invited = opt(&a, "invite") != NULL;
    if (invited && (rc = invite_check_code(opt(&a, "invite"), code, &keys)) != 0)
        return rc;
    if ((rc = opt_seconds(&a, "wait", 0, &wait_s)) != 0)
        return rc;
    if (!invited && opt(&a, "wait") != NULL)
        return usage_error("--wait goes with --invite");
    kurer_create_options o;
    memset(&o, 0, sizeof(o));
    if ((rc = relay_args(relay, key_s, o.relay_key)) != 0)
        return rc;
    uint8_t *root = NULL;
    size_t root_len = 0;
    if ((rc = kurer_file_read(root_path, KURER_CERT_MAX * 2, &root, &root_len)) != 0)
        return refuse(rc, "cannot read %s: %s", root_path, kurer_strerror(rc));
    kurer_armor_kind armor;
    if ((rc = kurer_armor_unwrap(&root, &root_len, &armor)) != 0 ||
        (armor != KURER_ARMOR_NONE && armor != KURER_ARMOR_CERTIFICATE) ||
        root_len > KURER_CERT_MAX) {
        free(root);
        rc = rc != 0 ? rc : root_len > KURER_CERT_MAX ? KURER_ELIMIT : KURER_EARMORLABEL;
        return refuse(rc, "%s is not a root certificate: %s", root_path, kurer_strerror(rc));
    }
    o.home = home;
    o.user = user;
    o.device_id = (uint32_t)dev;
    o.display_name = opt(&a, "name");
    o.relay = relay;
    o.root = root;
    o.root_len = root_len;
    if (flag(&a, "kdf-min")) {
        kurer_kdf_params p = kurer_kdf_minimum();
        o.kdf_ops = p.opslimit;
        o.kdf_mem = p.memlimit;
    }
    kurer_secret pw;
    char what[300];
    snprintf(what, sizeof(what), "the new device home %s", home);
    if ((rc = get_passphrase(PASS_ENV, what, 1, &pw)) != 0) {
        free(root);
        return rc;
    }
    kurer *k = NULL;
    struct stat hst;
    mode_t before = stat(home, &hst) == 0 && S_ISDIR(hst.st_mode) ? hst.st_mode & 0777 : 0;
    rc = kurer_create(&o, pw.p, pw.n, NULL, &k);
    kurer_secret_free(&pw);
    free(root);
    if (rc == KURER_EEXIST)
        return refuse(rc, "%s already holds a device home", home);
    if (rc == KURER_EPERM)
        return refuse(rc, "cannot create %s: not a folder of yours that can be made 0700", home);
    if (rc != 0)
        return refuse(rc, "cannot create %s: %s", home, kurer_strerror(rc));
    if ((before & 077) != 0)
        fprintf(stderr, "kurer: %s had mode %04o; set to 0700 (owner only)\n", home,
                (unsigned)before);
    /* With --json and --invite, the one object comes once the relay has answered. */
    rc = invited && g_json ? 0 : init_done(k, &a);
    g_relay = kurer_relay_address(k);
    if (rc == 0 && invited && (rc = invite_submit(k, code)) == 0)
        rc = invite_wait(k, home, wait_s, 0);
    if (rc == 0 && invited && g_json)
        rc = init_done(k, &a);
    kurer_memzero(code, sizeof(code));
    kurer_close(k);
    return rc;
}
