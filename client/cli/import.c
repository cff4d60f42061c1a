/* kurer import: this device's issued chain, a peer's chain, or a revocation list. */
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

static const char help_import[] =
    "usage: kurer import --home H FILE... [--json]\n"
    "       kurer import --home H --invite-status [--wait SECONDS] [--json]\n"
    "\n"
    "Imports files from the administrator, binary or armoured text (-----BEGIN KURER ...),\n"
    "each checked against the pinned root:\n"
    "  - this device's issued chain (kurer-admin issue --out), or its device certificate and\n"
    "    the authority certificate as two files: the keys must be this device's;\n"
    "  - a peer device's chain: kept as that device's certificate;\n"
    "  - a revocation list (an authority's crl): effective at once.\n"
    "After importing this device's own chain it connects to the relay once (up to 30 s), which\n"
    "uploads its prekeys: until a device has connected, nobody can send to it. It says whether\n"
    "that worked; if not, run kurer recv once the relay is reachable.\n"
    "--invite-status: after kurer init --invite, asks the relay whether the administrator\n"
    "has approved the request, and if so imports the chain it returned (then connects once);\n"
    "--wait SECONDS asks every 2 s for up to that long. Exit 3 while it waits for approval.\n"
    "--json: {\"ok\":true,\"imported\":[{\"file\",\"kind\",\"result\",...}],\"enrolled\":...,\n"
    "\"connected\":...}; kind is own_chain, own_certificate, peer_chain or revocation_list.\n";

#define MAX_FILES 8
#define FILE_MAX  ((size_t)KURER_CRL_BYTES_MAX + 65536)

/* Newly enrolled: connect once, so that the relay lists this device and holds its prekeys.
 * Until a device has connected, nobody can send to it. 0 if connected, else why not. */
int first_connect(kurer *k, const char *home)
{
    int cerr = kurer_connect(k, NET_TIMEOUT * 1000);
    if (cerr == 0) {
        if (!g_json)
            printf("connected to relay %s: prekeys uploaded; others can now send to you\n",
                   g_relay);
    } else {
        net_error(cerr, "could not connect");
        fprintf(stderr,
                "kurer: %s. Enrolled, but nobody can send to this device until it has connected "
                "once: run 'kurer recv --home %s' when the relay is reachable\n",
                reason(), home);
        clear_reason();
    }
    kurer_disconnect(k);
    return cerr;
}

/* The method's result (or the error's data: the files done before the refusal) printed. */
static void import_show(json_t *res, const char *home, int failed)
{
    size_t i;
    json_t *l;
    json_t *lines = g_json ? NULL : json_object_get(res, "lines");
    json_array_foreach(lines, i, l)
    {
        printf("%s\n", json_string_value(l));
    }
    if (failed)
        return;
    json_t *connected = json_object_get(res, "connected");
    const char *why = json_string_value(json_object_get(res, "connect_reason"));
    if (json_is_true(connected) && !g_json)
        printf("connected to relay %s: prekeys uploaded; others can now send to you\n",
               json_string_value(json_object_get(res, "relay")));
    else if (json_is_false(connected))
        fprintf(stderr,
                "kurer: %s. Enrolled, but nobody can send to this device until it has connected "
                "once: run 'kurer recv --home %s' when the relay is reachable\n",
                why != NULL ? why : "could not connect", home);
    if (!g_json)
        return;
    jline o;
    jline_ok(&o);
    kurer_json_key(&o.j, "imported");
    kurer_json_begin_array(&o.j);
    json_array_foreach(json_object_get(res, "imported"), i, l)
    {
        kurer_json_begin_object(&o.j);
        kurer_json_kv_str(&o.j, "file", json_string_value(json_object_get(l, "file")));
        kurer_json_kv_str(&o.j, "kind", json_string_value(json_object_get(l, "kind")));
        kurer_json_kv_str(&o.j, "result", json_string_value(json_object_get(l, "result")));
        if (json_object_get(l, "user") != NULL) {
            kurer_json_kv_str(&o.j, "user", json_string_value(json_object_get(l, "user")));
            kurer_json_kv_uint(&o.j, "device",
                               (uint64_t)json_integer_value(json_object_get(l, "device")));
        }
        kurer_json_end_object(&o.j);
    }
    kurer_json_end_array(&o.j);
    kurer_json_kv_bool(&o.j, "enrolled", json_is_true(json_object_get(res, "enrolled")));
    if (connected != NULL) {
        kurer_json_kv_bool(&o.j, "connected", json_is_true(connected));
        if (json_is_false(connected))
            kurer_json_kv_str(&o.j, "connect_error",
                              json_string_value(json_object_get(res, "connect_error")));
    }
    jline_end(&o);
}

/* --invite-status: the chain of an online enrolment, from the relay. */
static int import_invited(const kurer_args *a, const char *home)
{
    kurer *k = NULL;
    int wait_s = 0, rc;
    if (a->npos != 0)
        return usage_error("--invite-status takes no FILE");
    if ((rc = opt_seconds(a, "wait", 0, &wait_s)) != 0)
        return rc;
    int fd = -1;
    if (remote_connect(home, &fd)) { /* a daemon holds only enrolled homes (or rekeyed ones) */
        json_t *res = NULL;
        rc = remote_call(fd, "whoami", json_object(), NET_TIMEOUT * 1000, NULL, NULL, &res);
        int enrolled = rc == 0 && json_is_true(json_object_get(res, "enrolled"));
        json_decref(res);
        close(fd);
        if (rc != 0)
            return rc;
        if (!enrolled)
            return refuse(KURER_ESTATE,
                          "this device's keys were replaced (kurer rekey): there is no "
                          "invitation to ask about; kurer import the chain the administrator "
                          "issues for its new request");
        if (!g_json)
            printf("this device is enrolled already\n");
        return 0;
    }
    if ((rc = open_home(home, &k)) != 0)
        return rc;
    if (is_enrolled(k)) {
        if (!g_json)
            printf("this device is enrolled already\n");
        kurer_close(k);
        return 0;
    }
    rc = invite_wait(k, home, wait_s, RC_QUEUED);
    if (rc == 0 && g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_kv_bool(&o.j, "enrolled", is_enrolled(k));
        jline_end(&o);
    }
    kurer_close(k);
    return rc;
}

/* The files, read here first (so that a file that cannot be read is said before anything
 * opens the home), as the method's params: each by its absolute path and as named. */
static int import_params(const kurer_args *a, json_t **params)
{
    json_t *files = json_array();
    *params = json_pack("{s:o}", "files", files);
    if (files == NULL || *params == NULL)
        return refuse(KURER_ENOMEM, "out of memory");
    for (size_t i = 0; i < a->npos; i++) {
        uint8_t *d = NULL;
        size_t n = 0;
        int rc = kurer_file_read(a->pos[i], FILE_MAX * 2, &d, &n);
        free(d);
        if (rc != 0)
            return refuse(rc, "cannot read %s: %s", a->pos[i], kurer_strerror(rc));
        char *abs = realpath(a->pos[i], NULL);
        if (abs == NULL)
            return refuse(KURER_EIO, "cannot read %s: %s", a->pos[i], strerror(errno));
        json_array_append_new(files, json_pack("{s:s,s:s}", "path", abs, "name", a->pos[i]));
        free(abs);
    }
    return 0;
}

int cmd_import(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}, {"invite-status", 0, 0}, {"wait", V, 0}};
    kurer_args a;
    const char *home;
    json_t *params = NULL, *res = NULL;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, MAX_FILES, "FILE", help_import, argc, argv)) !=
            0 ||
        (rc = need(&a, "home", &home)) != 0)
        return rc;
    if (flag(&a, "invite-status"))
        return import_invited(&a, home);
    if (a.npos == 0)
        return usage_error("no FILE given (or --invite-status)");
    if (opt(&a, "wait") != NULL)
        return usage_error("--wait goes with --invite-status");
    if ((rc = import_params(&a, &params)) != 0) {
        json_decref(params);
        return rc;
    }
    rc = cli_call(home, "import", params, &res);
    if (rc == 0 || json_is_array(json_object_get(res, "lines")))
        import_show(res, home, rc != 0);
    json_decref(res);
    return rc;
}
