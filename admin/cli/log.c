/* kurer-admin log: an issuance log, printed and verified. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kurer/crypto.h"
#include "kurer/util.h"

const char help_log[] =
    "usage: kurer-admin log (--authority AUTHDIR | --root ROOTDIR) [--json]\n"
    "\n"
    "Prints the issuance log of an authority (or of the root) and verifies it: every entry's\n"
    "signature by the issuer key, every link to the entry before it, and the serial state.\n"
    "Exits 1 naming the first bad entry. Note the printed head hash somewhere else: a log cut\n"
    "back together with its serial state cannot be told from an older copy.\n";

/* One entry as a line of text. */
static void entry_text(const kurer_log_entry *e)
{
    char t[32], h1[65], h2[65], h3[65];
    hex(h1, e->cert_fp, 32);
    hex(h2, e->key_fp, 32);
    hex(h3, e->noise_fp, 32);
    say("#%llu %s %-6s serial %llu %s %s", (unsigned long long)e->seq,
        fmt_time(t, sizeof(t), e->time), kurer_log_kind_name((int)e->kind),
        (unsigned long long)e->serial, kurer_role_name((int)e->role), e->subject);
    if (e->role == KURER_ROLE_DEVICE)
        say(" device %u", e->device_id);
    if (e->kind == KURER_LOGK_ISSUE)
        say(" %s until %s cert %.16s key %.16s", kurer_level_name((int)e->clearance),
            fmt_time(t, sizeof(t), e->not_after), h1, h2);
    else
        say(" reason %s", kurer_reason_name((int)e->reason));
    if (e->role == KURER_ROLE_DEVICE && e->kind == KURER_LOGK_ISSUE)
        say(" noise %.16s", h3);
    say("\n");
}

/* One entry as a JSON object in the result's "entries". */
static void entry_json(const kurer_log_entry *e)
{
    char h[65];
    kurer_json_begin_object(&g_j);
    kurer_json_kv_uint(&g_j, "seq", e->seq);
    kurer_json_kv_str(&g_j, "kind", kurer_log_kind_name((int)e->kind));
    kurer_json_kv_int(&g_j, "time", e->time);
    kurer_json_kv_uint(&g_j, "serial", e->serial);
    kurer_json_kv_str(&g_j, "role", kurer_role_name((int)e->role));
    kurer_json_kv_str(&g_j, "subject", e->subject);
    kurer_json_kv_int(&g_j, "device_id", e->device_id);
    if (e->kind == KURER_LOGK_ISSUE) {
        kurer_json_kv_str(&g_j, "clearance", kurer_level_name((int)e->clearance));
        kurer_json_kv_int(&g_j, "not_after", e->not_after);
        hex(h, e->cert_fp, 32);
        kurer_json_kv_str(&g_j, "cert_fingerprint", h);
    } else {
        kurer_json_kv_str(&g_j, "reason", kurer_reason_name((int)e->reason));
    }
    hex(h, e->key_fp, 32);
    kurer_json_kv_str(&g_j, "key_fingerprint", h);
    if (e->role == KURER_ROLE_DEVICE) {
        hex(h, e->noise_fp, 32);
        kurer_json_kv_str(&g_j, "noise_fingerprint", h);
    }
    kurer_json_end_object(&g_j);
}

int cmd_log(int argc, char **argv)
{
    static const kurer_opt opts[] = {
        {"help", 0, 0}, {"json", 0, 0}, {"authority", V, 0}, {"root", V, 0}};
    kurer_args a;
    const char *adir, *rdir;
    issuer is;
    int rc;
    char head[65];

    memset(&is, 0, sizeof(is));
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help_log, argc, argv)) != 0)
        return rc;
    adir = opt(&a, "authority");
    rdir = opt(&a, "root");
    if ((adir == NULL) == (rdir == NULL))
        return usage_error("give exactly one of --authority and --root");
    if ((rc = issuer_load(&is, adir ? adir : rdir, adir == NULL, 0, kurer_time_unix())) != 0)
        goto out;
    say("issuance log of %s %s: %zu %s\n", adir ? "authority" : "root", is.cert.body.subject,
        is.log.n, plural(is.log.n, "entry", "entries"));
    for (size_t i = 0; i < is.log.n; i++)
        entry_text(&is.log.entries[i]);
    hex(head, is.log.head, 32);
    say("verified: every signature and link; next serial %llu; head %s\n",
        (unsigned long long)is.st.next_serial, head);
    jstr("issuer", is.cert.body.subject);
    ju64("next_serial", is.st.next_serial);
    jstr("head", head);
    jbool("verified", 1);
    kurer_json_key(&g_j, "entries");
    kurer_json_begin_array(&g_j);
    for (size_t i = 0; i < is.log.n; i++)
        entry_json(&is.log.entries[i]);
    kurer_json_end_array(&g_j);
out:
    issuer_release(&is);
    return rc;
}
