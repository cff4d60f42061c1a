/* kurer-admin: roots, authorities, device certificates, revocation, issuance logs.
 *
 * Exit codes: 0 success; 1 refused (invalid input, failed check, I/O), with one line
 * "kurer-admin: <reason>" on stderr; 2 usage errors. With --json, stdout carries exactly one
 * JSON object for the command, whether it succeeded or not.
 *
 * Every command that writes checks everything first (files, signatures, policy, passphrase)
 * and writes only after that, so a refused command changes nothing in the directories.
 * File names and formats: docs/admin.md. This file only dispatches: each command is in a file
 * of its own (cli.h lists them). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/crypto.h"

#ifndef KURER_VERSION
#define KURER_VERSION "0"
#endif

/* Two-word names ("root init") are a group and its subcommand. */
static const struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *description;
    const char *usage; /* the command's --help, printed for `GROUP --help` too */
} subcommands[] = {
    {"root init", cmd_root_init, "create a root key and self-signed root certificate",
     help_root_init},
    {"root revoke", cmd_root_revoke, "revoke an authority (the root's revocation list)",
     help_root_revoke},
    {"authority init", cmd_authority_init,
     "create an authority key and certificate signed by the root", help_authority_init},
    {"issue", cmd_issue, "issue a device certificate (--replace: supersede the current one)",
     help_issue},
    {"revoke", cmd_revoke, "revoke a device certificate (new revocation list)", help_revoke},
    {"crl renew", cmd_crl_renew, "re-sign a revocation list before its next update",
     help_crl_renew},
    {"verify", cmd_verify, "verify a chain, certificate or revocation list against the root",
     help_verify},
    {"show", cmd_show, "print any Kurér certificate, request, list or key file", help_show},
    {"log", cmd_log, "print and verify an issuance log", help_log},
    {"publish", cmd_publish, "push a revocation list to a relay (Noise NK)", help_publish},
    {"invite", cmd_invite, "make a one-time invitation code for online enrolment", help_invite},
    {"pending", cmd_pending, "list the requests waiting in the approval queue on the relay",
     help_pending},
    {"approve", cmd_approve, "issue a waiting request's certificate and return it via the relay",
     help_approve},
    {"reject", cmd_reject, "reject a waiting request", help_reject},
};
#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

static void help_main(FILE *f)
{
    fputs("usage: kurer-admin COMMAND [OPTIONS]\n"
          "\n"
          "Provisions Kurér identities: a national root, authorities under it, and device\n"
          "certificates issued from the devices' requests; revocation and issuance logs.\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < NSUB; i++)
        fprintf(f, "  %-17s%s\n", subcommands[i].name, subcommands[i].description);
    fputs("\n"
          "Every command takes --help and --json. Passphrases come from the environment variable\n"
          "named by --passphrase-env (default " DEFAULT_PASS ") or a no-echo prompt on the\n"
          "terminal; they are never printed or logged. Options take their value as --name VALUE\n"
          "or --name=VALUE; a value never starts with --.\n"
          "Exit status: 0 success, 1 refused (reason on stderr), 2 usage error.\n",
          f);
}

/* 1 if name is "group sub..." (a subcommand of group). */
static int in_group(const char *name, const char *group)
{
    size_t n = strlen(group);
    return strncmp(name, group, n) == 0 && name[n] == ' ';
}

/* argv[1] names a group but no subcommand of it: its helps, or a usage error listing them. */
static int group_only(int argc, char **argv)
{
    char subs[128] = "";
    size_t n = 0, k = 0;
    for (size_t i = 0; i < NSUB; i++)
        n += in_group(subcommands[i].name, argv[1]) != 0;
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        for (size_t i = 0; i < NSUB; i++)
            if (in_group(subcommands[i].name, argv[1]))
                printf("%s%s", k++ ? "\n" : "", subcommands[i].usage);
        return 0;
    }
    k = 0;
    for (size_t i = 0; i < NSUB; i++) {
        if (!in_group(subcommands[i].name, argv[1]))
            continue;
        snprintf(subs + strlen(subs), sizeof(subs) - strlen(subs), "%s%s",
                 k == 0       ? ""
                 : k + 1 == n ? " or "
                              : ", ",
                 subcommands[i].name + strlen(argv[1]) + 1);
        k++;
    }
    g_command = argv[1];
    return emit(usage_error("'%s' needs a subcommand: %s", argv[1], subs));
}

int main(int argc, char **argv)
{
    int rc;
    umask(077);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        help_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    /* --json before the command applies to it (and to an unknown command's error). */
    while (argc >= 2 && strcmp(argv[1], "--json") == 0) {
        g_json = 1;
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    if (argc < 2)
        return emit(usage_error("no command given (kurer-admin --help lists them)"));
    if (strcmp(argv[1], "--version") == 0) {
        printf("kurer-admin %s\n", KURER_VERSION);
        return 0;
    }
    /* So that usage errors, found before a command has parsed its options, are JSON too. */
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            g_json = 1;
    if ((rc = kurer_crypto_init()) != 0) {
        fprintf(stderr, "kurer-admin: cannot start the crypto library: %s\n", kurer_strerror(rc));
        return EXIT_REFUSED;
    }
    int group = 0;
    for (size_t i = 0; i < NSUB; i++) {
        const char *name = subcommands[i].name;
        if (strcmp(name, argv[1]) == 0) {
            g_command = name;
            return emit(subcommands[i].fn(argc - 2, argv + 2));
        }
        if (in_group(name, argv[1])) {
            group = 1;
            if (argc >= 3 && strcmp(name + strlen(argv[1]) + 1, argv[2]) == 0) {
                g_command = name;
                return emit(subcommands[i].fn(argc - 3, argv + 3));
            }
        }
    }
    if (group)
        return group_only(argc, argv);
    return emit(usage_error("unknown command '%s'", argv[1]));
}
