/* The metrics page (Prometheus text): every counter and gauge from one descriptor table. */
#include "relay_internal.h"

#include <dirent.h>
#include <errno.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/signal.h"
#include "kurer/util.h"

static const struct {
    const char *name, *help;
    size_t off;
} counters[] = {
#define KURER__COUNTER_ROW(field, name, help) {name, help, offsetof(relay, field)},
    KURER__RELAY_COUNTERS(KURER__COUNTER_ROW)
#undef KURER__COUNTER_ROW
};

/* Values the relay and its store hold rather than count. */
typedef struct view {
    relay *r;
    kurer_store_stats st;
    uint64_t live;
} view;

static uint64_t g_live(const view *v)
{
    return v->live;
}
static uint64_t g_handshaking(const view *v)
{
    return v->r->n_preauth;
}
static uint64_t g_nk(const view *v)
{
    return v->r->n_nk;
}
static uint64_t g_dir(const view *v)
{
    return v->r->n_dir;
}
static uint64_t g_crls(const view *v)
{
    return kurer_trust_crl_count(v->r->trust);
}
static uint64_t g_upload(const view *v)
{
    return v->r->upload_bytes;
}
static uint64_t g_commits(const view *v)
{
    return v->st.commits;
}
static uint64_t g_batch(const view *v)
{
    return v->st.last_batch;
}
static uint64_t g_in_flight(const view *v)
{
    return v->st.rounds_in_flight_max;
}
static uint64_t g_queue(const view *v)
{
    return v->st.queued_ops;
}
static uint64_t g_full(const view *v)
{
    return v->st.refused_full;
}
static uint64_t g_share(const view *v)
{
    return v->st.refused_share;
}

static const struct {
    const char *name, *type, *help;
    uint64_t (*get)(const view *v);
} values[] = {
    {"connections", "gauge", "Live connections.", g_live},
    {"connections_handshaking", "gauge",
     "Connections not authenticated: in their handshake, waiting for their first record, NK.",
     g_handshaking},
    {"nk_sessions", "gauge", "Live NK sessions.", g_nk},
    {"directory_devices", "gauge", "Devices in the directory.", g_dir},
    {"revocation_lists", "gauge", "Revocation lists held.", g_crls},
    {"upload_buffer_bytes", "gauge", "Bytes held by chunked revocation uploads in progress.",
     g_upload},
    {"store_commits_total", "counter", "Store transactions committed.", g_commits},
    {"store_commit_batch", "gauge", "Operations in the last store transaction.", g_batch},
    {"store_queue_depth", "gauge", "Store operations submitted, not completed.", g_queue},
    {"store_rounds_in_flight_max", "gauge",
     "Store transactions running at once, at most since start (postgres: up to pg_pool).",
     g_in_flight},
    {"mailbox_full_refused_total", "counter", "Sends refused: a mailbox at mailbox_max.", g_full},
    {"mailbox_share_refused_total", "counter",
     "Sends refused: a sender at its share of a mailbox (mailbox_sender_max).", g_share},
};

/* A histogram in seconds: cumulative buckets, +Inf, sum and count. */
static size_t put_hist(char *s, size_t cap, size_t len, const char *name, const char *help,
                       const kurer__hist *h)
{
    uint64_t cum = 0;
    if (len < cap)
        len +=
            (size_t)snprintf(s + len, cap - len, "# HELP kurer_%s %s\n# TYPE kurer_%s histogram\n",
                             name, help, name);
    for (size_t i = 0; i < KURER__HIST_N && len < cap; i++) {
        cum += h->bucket[i];
        len += (size_t)snprintf(s + len, cap - len, "kurer_%s_bucket{le=\"%g\"} %llu\n", name,
                                (double)kurer__hist_le_us[i] / 1e6, (unsigned long long)cum);
    }
    if (len < cap)
        len += (size_t)snprintf(s + len, cap - len,
                                "kurer_%s_bucket{le=\"+Inf\"} %llu\nkurer_%s_sum %.6f\n"
                                "kurer_%s_count %llu\n",
                                name, (unsigned long long)h->count, name, (double)h->sum_us / 1e6,
                                name, (unsigned long long)h->count);
    return len;
}

/* The process: build, resident memory, open files, CPU time (from /proc and getrusage). */
static size_t put_process(char *s, size_t cap, size_t len)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    uint64_t fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        for (struct dirent *e; (e = readdir(d)) != NULL;)
            fds += e->d_name[0] != '.';
        closedir(d);
        fds = fds > 0 ? fds - 1 : 0; /* less the one opendir holds */
    }
    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (len < cap)
        len += (size_t)snprintf(
            s + len, cap - len,
            "# HELP kurer_build_info The relay's version (always 1).\n# TYPE kurer_build_info "
            "gauge\n"
            "kurer_build_info{version=\"%s\",protocol=\"%d\"} 1\n"
            "# HELP process_resident_memory_bytes Resident memory.\n"
            "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %lld\n"
            "# HELP process_open_fds Open file descriptors.\n# TYPE process_open_fds gauge\n"
            "process_open_fds %llu\n"
            "# HELP process_cpu_seconds_total User and system CPU time.\n"
            "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.3f\n",
            KURER__RELAY_VERSION, KURER_PROTOCOL_VERSION,
            (long long)rss * (long long)sysconf(_SC_PAGESIZE), (unsigned long long)fds, cpu);
    return len;
}

char *kurer__metrics_text(relay *r)
{
    size_t cap = 32768, len = 0; /* the page is about 12 KiB */
    char *s = malloc(cap);
    view v;
    if (s == NULL)
        return NULL;
    memset(&v, 0, sizeof(v));
    v.r = r;
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        v.live++;
    kurer_store_get_stats(r->store, &v.st);
#define LINE(name, type, help, val)                                                                \
    if (len < cap)                                                                                 \
    len += (size_t)snprintf(s + len, cap - len,                                                    \
                            "# HELP kurer_%s %s\n# TYPE kurer_%s %s\nkurer_%s %llu\n", name, help, \
                            name, type, name, (unsigned long long)(val))
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        LINE(counters[i].name, "counter", counters[i].help,
             *(const uint64_t *)(const void *)((const char *)r + counters[i].off));
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        LINE(values[i].name, values[i].type, values[i].help, values[i].get(&v));
#undef LINE
    if (len < cap)
        len += (size_t)snprintf(s + len, cap - len,
                                "# HELP kurer_connections_refused_total Connections closed at "
                                "once, by the bound that refused them.\n"
                                "# TYPE kurer_connections_refused_total counter\n"
                                "kurer_connections_refused_total{reason=\"max_connections\"} %llu\n"
                                "kurer_connections_refused_total{reason=\"max_handshakes\"} %llu\n"
                                "kurer_connections_refused_total{reason=\"per_address\"} %llu\n"
                                "kurer_connections_refused_total{reason=\"handshake_rate\"} %llu\n",
                                (unsigned long long)r->refused_max_conns,
                                (unsigned long long)r->refused_max_handshakes,
                                (unsigned long long)r->refused_per_address,
                                (unsigned long long)r->refused_handshake_rate);
    if (len < cap)
        len +=
            (size_t)snprintf(s + len, cap - len,
                             "# HELP kurer_rejections_total Refusals (typed errors and closes), by "
                             "error.\n# TYPE kurer_rejections_total counter\n");
    for (int i = 1; i < NERR && len + 128 < cap; i++)
        if (r->rejects[i] != 0)
            len +=
                (size_t)snprintf(s + len, cap - len, "kurer_rejections_total{reason=\"%s\"} %llu\n",
                                 kurer_err_name(-i), (unsigned long long)r->rejects[i]);
    len = put_hist(s, cap, len, "send_accept_seconds",
                   "From a SendRequest's arrival to its SendResult (accepted: durable or acked).",
                   &r->send_accept);
    len = put_hist(s, cap, len, "fanout_accept_seconds",
                   "From a fan-out send's final part to its FanoutResult (accepted).",
                   &r->fanout_accept);
    len = put_hist(s, cap, len, "store_commit_seconds", "Duration of each store transaction.",
                   &v.st.commit_hist);
    len = kurer__media_metrics(r, s, cap, len);
    len = kurer__blob_metrics(r, s, cap, len);
    len = put_process(s, cap, len);
    (void)len;
    return s;
}
