/* The metrics page (Prometheus text): every counter and gauge from one descriptor table. */
#include "relay_internal.h"

#include <errno.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "kurer/crypto.h"
#include "kurer/log.h"
#include "kurer/signal.h"
#include "kurer/util.h"

char *kurer__metrics_text(relay *r)
{
    size_t cap = 16384, len = 0;
    char *s = malloc(cap);
    kurer_store_stats st;
    uint64_t live = 0;
    if (s == NULL)
        return NULL;
    for (rconn *rc = r->conns; rc != NULL; rc = rc->next)
        live++;
    kurer_store_get_stats(r->store, &st);
#define M(name, type, val)                                                                         \
    len += (size_t)snprintf(s + len, cap - len, "# TYPE kurer_%s %s\nkurer_%s %llu\n", name, type, \
                            name, (unsigned long long)(val))
    M("connections_total", "counter", r->connections);
    M("connections", "gauge", live);
    M("connections_handshaking", "gauge", r->n_preauth);
    M("handshakes_ok_total", "counter", r->handshakes_ok);
    M("handshakes_failed_total", "counter", r->handshakes_failed);
    M("envelopes_accepted_total", "counter", r->env_accepted);
    M("envelopes_delivered_total", "counter", r->env_delivered);
    M("envelopes_acked_total", "counter", r->env_acked);
    M("envelopes_accepted_by_ack_total", "counter", r->env_accepted_by_ack);
    M("envelopes_write_skipped_total", "counter", r->env_write_skipped);
    M("connections_replaced_total", "counter", r->replaced);
    M("store_commits_total", "counter", st.commits);
    M("store_commit_batch", "gauge", st.last_batch);
    M("store_commit_latency_us", "gauge", st.last_commit_us);
    M("store_queue_depth", "gauge", st.queued_ops);
    M("directory_devices", "gauge", r->n_dir);
    M("nk_sessions_total", "counter", r->nk_sessions);
    M("prekey_uploads_total", "counter", r->prekey_uploads);
    M("prekeys_handed_out_total", "counter", r->prekeys_handed_out);
    M("prekey_bundles_without_one_time_total", "counter", r->bundles_without_one_time);
    M("prekeys_low_pushed_total", "counter", r->prekeys_low_pushed);
    M("prekey_uploads_over_max_total", "counter", r->prekey_uploads_over_max);
    M("prekey_fetches_rate_limited_total", "counter", r->prekey_fetches_rate_limited);
    M("revocation_lists_accepted_total", "counter", r->crl_accepted);
    M("revocation_lists", "gauge", kurer_trust_crl_count(r->trust));
    M("handshakes_unconfirmed_total", "counter", r->handshakes_unconfirmed);
    M("connections_expired_total", "counter", r->conns_expired);
    M("nk_sessions", "gauge", r->n_nk);
    M("lookups_rate_limited_total", "counter", r->lookups_rate_limited);
    M("pings_rate_limited_total", "counter", r->pings_rate_limited);
    M("sends_rate_limited_total", "counter", r->sends_rate_limited);
    M("prekeys_withheld_total", "counter", r->prekeys_withheld);
    M("send_results_too_large_total", "counter", r->send_results_too_large);
    M("mailbox_full_refused_total", "counter", st.refused_full);
    M("mailbox_share_refused_total", "counter", st.refused_share);
    M("upload_buffer_bytes", "gauge", r->upload_bytes);
#undef M
    len += (size_t)snprintf(s + len, cap - len,
                            "# TYPE kurer_connections_refused_total counter\n"
                            "kurer_connections_refused_total{reason=\"max_connections\"} %llu\n"
                            "kurer_connections_refused_total{reason=\"max_handshakes\"} %llu\n"
                            "kurer_connections_refused_total{reason=\"per_address\"} %llu\n",
                            (unsigned long long)r->refused_max_conns,
                            (unsigned long long)r->refused_max_handshakes,
                            (unsigned long long)r->refused_per_address);
    len += (size_t)snprintf(s + len, cap - len, "# TYPE kurer_rejections_total counter\n");
    for (int i = 1; i < NERR && len < cap - 128; i++)
        if (r->rejects[i] != 0)
            len +=
                (size_t)snprintf(s + len, cap - len, "kurer_rejections_total{reason=\"%s\"} %llu\n",
                                 kurer_err_name(-i), (unsigned long long)r->rejects[i]);
    return s;
}
