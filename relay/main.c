/* kurer-relay: command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kurer/log.h"
#include "relay.h"

static const char *USAGE =
    "usage: kurer-relay init --dir DIR\n"
    "       kurer-relay run --dir DIR --listen HOST:PORT --root ROOT.crt [--root ...]\n"
    "                       [--store sqlite] [--metrics HOST:PORT] [--config FILE] [--crl FILE]\n"
    "                       [--log-level debug|info|warn|error|off]\n"
    "\n"
    "init  creates DIR with the relay's Noise static key (relay.key: a raw X25519 key, mode\n"
    "      0600, not sealed: protect the folder), the store key (store.key, mode 0600) and\n"
    "      relay.pub; prints the public key in hex.\n"
    "run   serves until SIGTERM or SIGINT; SIGHUP reloads the --crl files. With port 0 it\n"
    "      prints the bound address as 'listening HOST:PORT'. See docs/relay.md.\n";

static int need(int i, int argc, char **argv)
{
    if (i + 1 >= argc) {
        fprintf(stderr, "kurer-relay: %s needs a value\n", argv[i]);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    kurer_relay_opts o;
    const char *config = NULL;
    memset(&o, 0, sizeof(o));
    kurer_relay_config_default(&o.cfg);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (!need(i, argc, argv))
            return 2;
        const char *v = argv[++i];
        if (strcmp(a, "--dir") == 0) {
            o.dir = v;
        } else if (strcmp(a, "--listen") == 0) {
            o.listen = v;
        } else if (strcmp(a, "--metrics") == 0) {
            o.metrics = v;
        } else if (strcmp(a, "--config") == 0) {
            config = v;
        } else if (strcmp(a, "--store") == 0) {
            if (strcmp(v, "sqlite") != 0) {
                fprintf(stderr, "kurer-relay: --store %s: only sqlite is available\n", v);
                return 2;
            }
        } else if (strcmp(a, "--root") == 0) {
            if (o.n_roots == 8) {
                fprintf(stderr, "kurer-relay: at most 8 --root\n");
                return 2;
            }
            o.roots[o.n_roots++] = v;
        } else if (strcmp(a, "--crl") == 0) {
            if (o.n_crls == 8) {
                fprintf(stderr, "kurer-relay: at most 8 --crl\n");
                return 2;
            }
            o.crl_files[o.n_crls++] = v;
        } else if (strcmp(a, "--log-level") == 0) {
            kurer_log_level lvl;
            if (kurer_log_level_parse(v, &lvl) != 0) {
                fprintf(stderr, "kurer-relay: --log-level %s: unknown level\n", v);
                return 2;
            }
            kurer_log_set(stderr, lvl);
        } else {
            fprintf(stderr, "kurer-relay: unknown option %s (see --help)\n", a);
            return 2;
        }
    }
    if (o.dir == NULL) {
        fprintf(stderr, "kurer-relay: --dir is required (see --help)\n");
        return 2;
    }
    if (strcmp(cmd, "init") == 0)
        return kurer_relay_init(o.dir);
    if (strcmp(cmd, "run") != 0) {
        fprintf(stderr, "kurer-relay: unknown command %s (see --help)\n", cmd);
        return 2;
    }
    if (o.listen == NULL || o.n_roots == 0) {
        fprintf(stderr, "kurer-relay: run needs --listen and at least one --root\n");
        return 2;
    }
    if (config != NULL) {
        int line;
        int err = kurer_relay_config_load(&o.cfg, config, &line);
        if (err != 0) {
            fprintf(stderr, "kurer-relay: %s:%d: %s\n", config, line, "bad configuration line");
            return 2;
        }
    }
    return kurer_relay_run(&o) == 0 ? 0 : 1;
}
