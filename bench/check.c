/* bench_check: reads a benchmark's output on stdin and checks that every line starting with '{'
 * is one flat JSON object whose "bench" names one of the expected benchmarks and that carries
 * that benchmark's fixed keys (issue 6), and that each expected benchmark printed at least one
 * line. Lines starting with '#' (summaries) are passed over. Exit 0 or 1.
 *   bench_check relay_throughput,forward_limit,durable_limit < output */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A line's entry: its "bench" and, where given, its "backend" (an entry without a backend
 * takes lines that have none or "sqlite"). */
static const struct {
    const char *bench;
    const char *backend;
    const char *keys[10];
} fixed[] = {
    {"relay_throughput",
     "postgres",
     {"nodes", "senders", "envelopes_per_s", "p99_accept_ms", "ratio_to_pg_limit", "cmd"}},
    {"pg_limit", "postgres", {"senders", "envelopes_per_s", "p99_accept_ms", "cmd"}},
    {"relay_throughput",
     NULL,
     {"senders", "envelopes_per_s", "p50_accept_ms", "p99_accept_ms", "p99_deliver_ms",
      "ratio_to_limit", "ratio_to_durable", "cmd"}},
    {"forward_limit", NULL, {"senders", "envelopes_per_s", "cmd"}},
    {"durable_limit", NULL, {"senders", "envelopes_per_s", "cmd"}},
    {"idle_connections",
     NULL,
     {"connections", "handshakes_per_s", "rss_bytes_per_conn", "p99_deliver_ms", "cmd"}},
    {"crypto",
     NULL,
     {"noise_ik_handshakes_per_s", "chain_verifications_per_s", "ratchet_encrypt_per_s",
      "ratchet_decrypt_per_s", "argon2id_ms", "cmd"}},
    {"store", NULL, {"commits_per_s", "open_ms", "bytes_per_message", "cmd"}},
    {"media_relay",
     NULL,
     {"calls", "pps", "loss", "cpu_s_per_mpkt", "coturn_pps", "coturn_loss",
      "coturn_cpu_s_per_mpkt", "cmd"}},
    {"sframe", NULL, {"protect_per_s", "unprotect_per_s", "aes_gcm_per_s", "ratio", "cmd"}},
    {"attachment",
     NULL,
     {"mib", "upload_mib_s", "download_mib_s", "tcp_copy_mib_s", "ratio_upload", "ratio_download",
      "cmd"}},
    {"group",
     NULL,
     {"members", "client_ms", "relay_accept_ms", "stored_bytes", "deliver_all_ms", "msgs_per_s",
      "cmd"}},
    {"preauth_memory",
     NULL,
     {"kind", "connections", "rss_before_kib", "rss_after_kib", "bytes_per_conn", "kept",
      "handshaking", "refused_max_handshakes", "cmd"}},
    {"lookup_cpu",
     NULL,
     {"kind", "lookups", "cpu_us_per_lookup", "request_bytes", "answer_bytes",
      "peak_rss_growth_kib", "cmd"}},
};

#define MAXK 64

typedef struct kv {
    char key[64];
    char val[512];
    int is_num;
} kv;

static const char *ws(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static const char *str(const char *p, char *out, size_t cap)
{
    size_t n = 0;
    if (*p != '"')
        return NULL;
    for (p++; *p != '"'; p++) {
        if (*p == '\0' || (unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i]))
                        return NULL;
                p += 4;
            } else if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') {
                return NULL;
            }
        }
        if (n + 1 < cap)
            out[n++] = *p;
    }
    out[n] = '\0';
    return p + 1;
}

/* Parses one flat object; returns the number of pairs or -1. */
static int parse(const char *p, kv *kvs)
{
    int n = 0;
    p = ws(p);
    if (*p++ != '{')
        return -1;
    p = ws(p);
    if (*p == '}')
        return *ws(p + 1) == '\0' ? 0 : -1;
    for (;;) {
        if (n == MAXK)
            return -1;
        kv *e = &kvs[n++];
        p = str(ws(p), e->key, sizeof(e->key));
        if (p == NULL)
            return -1;
        p = ws(p);
        if (*p++ != ':')
            return -1;
        p = ws(p);
        e->is_num = 0;
        if (*p == '"') {
            p = str(p, e->val, sizeof(e->val));
            if (p == NULL)
                return -1;
        } else if (strncmp(p, "null", 4) == 0 || strncmp(p, "true", 4) == 0) {
            p += 4;
        } else if (strncmp(p, "false", 5) == 0) {
            p += 5;
        } else {
            char *end;
            strtod(p, &end);
            if (end == p || (*p != '-' && !isdigit((unsigned char)*p)))
                return -1;
            e->is_num = 1;
            p = end;
        }
        p = ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p != '}')
            return -1;
        return *ws(p + 1) == '\0' ? n : -1;
    }
}

int main(int argc, char **argv)
{
    static char line[65536];
    static kv kvs[MAXK];
    int seen[16] = {0}, bad = 0, lines = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: bench_check NAME[,NAME...] < output\n");
        return 2;
    }
    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] != '{')
            continue;
        lines++;
        int n = parse(line, kvs);
        if (n < 0) {
            printf("bench_check: not a flat JSON object: %s\n", line);
            bad = 1;
            continue;
        }
        const char *bench = NULL, *backend = "sqlite";
        for (int i = 0; i < n; i++) {
            if (strcmp(kvs[i].key, "bench") == 0 && !kvs[i].is_num)
                bench = kvs[i].val;
            if (strcmp(kvs[i].key, "backend") == 0 && !kvs[i].is_num)
                backend = kvs[i].val;
        }
        size_t f;
        for (f = 0; bench != NULL && f < sizeof(fixed) / sizeof(fixed[0]); f++)
            if (strcmp(fixed[f].bench, bench) == 0 &&
                strcmp(fixed[f].backend != NULL ? fixed[f].backend : "sqlite", backend) == 0)
                break;
        if (bench == NULL || f == sizeof(fixed) / sizeof(fixed[0])) {
            printf("bench_check: no known \"bench\": %s\n", line);
            bad = 1;
            continue;
        }
        char want[256];
        snprintf(want, sizeof(want), ",%s,", argv[1]);
        char needle[80];
        snprintf(needle, sizeof(needle), ",%s,", bench);
        if (strstr(want, needle) == NULL) {
            printf("bench_check: unexpected bench %s\n", bench);
            bad = 1;
        }
        seen[f] = 1;
        for (int k = 0; k < 10 && fixed[f].keys[k] != NULL; k++) {
            int found = 0;
            for (int i = 0; i < n; i++)
                if (strcmp(kvs[i].key, fixed[f].keys[k]) == 0) {
                    /* every fixed figure is a number (or null when it cannot be measured) */
                    found = strcmp(fixed[f].keys[k], "cmd") == 0 ? !kvs[i].is_num : 1;
                }
            if (!found) {
                printf("bench_check: %s line lacks \"%s\": %s\n", bench, fixed[f].keys[k], line);
                bad = 1;
            }
        }
    }
    char *list = strdup(argv[1]);
    for (char *tok = strtok(list, ","); tok != NULL; tok = strtok(NULL, ",")) {
        size_t f;
        int any = 0;
        for (f = 0; f < sizeof(fixed) / sizeof(fixed[0]); f++)
            if (strcmp(fixed[f].bench, tok) == 0 && seen[f])
                any = 1;
        if (!any) {
            printf("bench_check: no %s line\n", tok);
            bad = 1;
        }
    }
    free(list);
    printf("bench_check: %d JSON lines, %s\n", lines, bad ? "FAILED" : "ok");
    return bad;
}
