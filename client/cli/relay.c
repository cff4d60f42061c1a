/* kurer relay: the relay this home connects to, shown or changed. */
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

static const char help_relay[] =
    "usage: kurer relay --home H [--relay HOST:PORT] [--relay-key KEY] [--json]\n"
    "\n"
    "Shows the relay this home connects to or, with --relay and/or --relay-key, changes it (the\n"
    "passphrase is needed either way). HOST may be an IP address, [IPv6] or a host name, kept as\n"
    "typed and resolved at every connect, so a relay that moves keeps working. KEY is 64 hex\n"
    "digits or the path of the relay's relay.pub.\n";

int cmd_relay(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"relay", V, 0}, {"relay-key", V, 0}};
    kurer_args a;
    const char *home, *relay, *key_s;
    kurer *k = NULL;
    uint8_t key[32];
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_relay, argc, argv)) != 0)
        return rc;
    if ((rc = need(&a, "home", &home)) != 0)
        return rc;
    relay = opt(&a, "relay");
    key_s = opt(&a, "relay-key");
    if ((relay != NULL || key_s != NULL) &&
        (rc = relay_args(relay != NULL ? relay : "0.0.0.0:1", key_s, key)) != 0)
        return rc;
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    int changed = relay != NULL || key_s != NULL;
    if (changed) {
        rc = kurer_set_relay(k, relay != NULL ? relay : kurer_relay_address(k),
                             key_s != NULL ? key : NULL);
        if (rc != 0) {
            refuse(rc, "cannot change the relay: %s", kurer_strerror(rc));
            kurer_close(k);
            return rc;
        }
    }
    if (g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_kv_bool(&o.j, "changed", changed);
        kurer_json_kv_str(&o.j, "relay", kurer_relay_address(k));
        jline_end(&o);
    } else {
        printf("%s%s\n", changed ? "relay set to " : "relay ", kurer_relay_address(k));
    }
    kurer_close(k);
    return 0;
}
