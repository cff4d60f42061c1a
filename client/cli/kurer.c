/* kurer: the command-line client on libkurer (client/include/kurer/kurer.h).
 *
 * Exit codes (as kurer-admin): 0 success; 1 refused or failed, with one line "kurer: <reason>"
 * on stderr; 2 usage errors; 3 (send) queued in the outbox but not yet accepted by the relay. With
 * --json, results are JSON (one object per line for messages; one object for other commands, also
 * on failure). This file only dispatches: each command is in a file of its own (cli.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rpc.h"
#include "kurer/crypto.h"
#include "kurer/log.h"

#ifndef KURER_VERSION
#define KURER_VERSION "0"
#endif

static const struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *description;
} subcommands[] = {
    {"init", cmd_init, "create a home: keys, encrypted store, certificate request"},
    {"import", cmd_import,
     "import the issued certificate chain (or a peer's chain, or a revocation list)"},
    {"send", cmd_send, "send a message with a classification level"},
    {"group", cmd_group, "create, change, list and show groups"},
    {"recv", cmd_recv, "receive new messages"},
    {"history", cmd_history, "print stored messages"},
    {"read", cmd_read, "mark received messages read (read receipts)"},
    {"timer", cmd_timer, "set a conversation's disappearing-message timer"},
    {"verify", cmd_verify, "safety numbers and certificates of a user's devices"},
    {"passwd", cmd_passwd, "change the home's passphrase"},
    {"relay", cmd_relay, "show or change the home's relay address and key"},
    {"whoami", cmd_whoami, "this device: user, keys, certificate, relay"},
    {"backup", cmd_backup, "write an encrypted copy of the home"},
    {"restore", cmd_restore, "make a home from a backup (a new instance of the device)"},
    {"call", cmd_call, "call a user at a level, audio from and to WAV files"},
    {"answer", cmd_answer, "wait for a call and answer it, audio from and to WAV files"},
    {"outbox", cmd_outbox, "list, retry or cancel messages the relay has not accepted"},
    {"contacts", cmd_contacts, "users this home knows, with their devices and last contact"},
    {"conversations", cmd_conversations, "per peer: last message and counts"},
    {"rekey", cmd_rekey, "new device keys and certificate request (the history kept)"},
    {"daemon", cmd_daemon, "hold the home and serve JSON-RPC 2.0 on a Unix socket"},
};
#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

static void help_main(FILE *f)
{
    fputs("usage: kurer COMMAND --home H [OPTIONS]\n"
          "\n"
          "The Kurér command-line client: one device home per folder.\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < NSUB; i++)
        fprintf(f, "  %-15s %s\n", subcommands[i].name, subcommands[i].description);
    fputs("\n"
          "Every command takes --home, --help and --json. The passphrase comes from " PASS_ENV "\n"
          "or a no-echo prompt on the terminal; it is never printed or logged. KURER_LOG_LEVEL\n"
          "(debug, info, warn, error; default error) sets the library's log on stderr.\n"
          "Options take their value as --name VALUE or --name=VALUE; a value never starts\n"
          "with -- (after a lone --, everything is an argument).\n"
          "Exit status: 0 success, 1 refused or failed (reason on stderr), 2 usage error,\n"
          "3 (send) queued in the outbox, not yet accepted by the relay (also outbox retry; with\n"
          "the relay out of reach, a message to someone written to before is composed offline):\n"
          "it goes out with the next kurer recv or kurer send on this home (do not send it again;\n"
          "kurer outbox lists it).\n"
          "\n"
          "One process per home: every command locks H/.lock. A command waits up to 30 s\n"
          "(" LOCK_ENV "=SECONDS) for another one on the same home, and is refused at once while\n"
          "`kurer recv --wait` holds it. While `kurer daemon` holds it, send, history, recv,\n"
          "verify, whoami, backup, outbox, contacts, conversations, import, rekey, call and\n"
          "answer go through the daemon (same output and exit status, no passphrase; a call is\n"
          "then made by the daemon); init, passwd, relay and restore are refused (stop the\n"
          "daemon first).\n",
          f);
}

int main(int argc, char **argv)
{
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        help_main(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("kurer %s\n", KURER_VERSION);
        return 0;
    }
    kurer_log_level lv = KURER_LOG_ERROR;
    const char *ls = getenv("KURER_LOG_LEVEL");
    if (ls != NULL && kurer_log_level_parse(ls, &lv) != 0)
        lv = KURER_LOG_ERROR;
    kurer_log_set(stderr, lv);
    /* So that usage errors, found while a command parses its options, are JSON too. */
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            g_json = 1;
    int rc = kurer_crypto_init();
    if (rc != 0) {
        fprintf(stderr, "kurer: cannot start the crypto library: %s\n", kurer_strerror(rc));
        return EXIT_REFUSED;
    }
    rpc_init();
    for (size_t i = 0; i < NSUB; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0) {
            g_command = subcommands[i].name;
            return emit(subcommands[i].fn(argc - 2, argv + 2));
        }
    fprintf(stderr, "kurer: unknown command '%s'\nkurer: try 'kurer --help'\n", argv[1]);
    return EXIT_USAGE;
}
