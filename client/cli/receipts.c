/* A message's timer and receipts as kurer history and recv show them (cli.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kurer/text.h"

void fmt_duration(char *out, size_t n, uint32_t s)
{
    if (s % 86400 == 0)
        snprintf(out, n, "%ud", (unsigned)(s / 86400));
    else if (s % 3600 == 0)
        snprintf(out, n, "%uh", (unsigned)(s / 3600));
    else if (s % 60 == 0)
        snprintf(out, n, "%um", (unsigned)(s / 60));
    else
        snprintf(out, n, "%us", (unsigned)s);
}

void receipts_text(const kurer_message *m)
{
    char d[32];
    if (m->timer_change) {
        if (m->expire_timer > 0) {
            fmt_duration(d, sizeof(d), m->expire_timer);
            printf(": %s", d);
        }
        return;
    }
    if (m->group_members > 0 && m->delivered_devices > 0) {
        /* Our group message (sent here or by another of our devices): counted per member. */
        printf(" (delivered to %u of %u member%s", (unsigned)m->delivered_users,
               (unsigned)m->group_members, m->group_members == 1 ? "" : "s");
        if (m->read_users > 0)
            printf(", read by %u", (unsigned)m->read_users);
        printf(")");
    } else if (m->outgoing && m->delivered_devices > 0) {
        printf(" (delivered to %u device%s", (unsigned)m->delivered_devices,
               m->delivered_devices == 1 ? "" : "s");
        if (m->delivered_users > 1)
            printf(" of %u users", (unsigned)m->delivered_users);
        if (m->read_devices > 0)
            printf(", read on %u", (unsigned)m->read_devices);
        printf(")");
    } else if (!m->outgoing && m->read_at != 0) {
        printf(" (read)");
    }
    if (m->expire_timer > 0) {
        fmt_duration(d, sizeof(d), m->expire_timer);
        if (m->expires_at > 0) {
            char t[64];
            fmt_ms(t, sizeof(t), m->expires_at);
            printf(" (disappears %s)", t);
        } else {
            printf(" (disappears %s after reading)", d);
        }
    }
}

void receipts_json(jline *o, const kurer_message *m)
{
    if (m->expire_timer > 0 || m->timer_change) {
        kurer_json_kv_uint(&o->j, "expire_timer", m->expire_timer);
        kurer_json_kv_int(&o->j, "expires_at", m->expires_at);
    }
    if (m->timer_change)
        kurer_json_kv_bool(&o->j, "timer_change", 1);
    if (m->read_at != 0)
        kurer_json_kv_int(&o->j, "read_at", m->read_at);
    if (m->group_members > 0)
        kurer_json_kv_uint(&o->j, "members", m->group_members);
    if (m->delivered_devices == 0)
        return;
    kurer_json_kv_uint(&o->j, "delivered_devices", m->delivered_devices);
    kurer_json_kv_uint(&o->j, "read_devices", m->read_devices);
    kurer_json_kv_uint(&o->j, "delivered_users", m->delivered_users);
    kurer_json_kv_uint(&o->j, "read_users", m->read_users);
}

void receipts_devices(const kurer_message *m)
{
    char who[KURER_TEXT_TERM_MAX(KURER_SUBJECT_MAX)], t[64];
    if (!g_json && !m->outgoing)
        printf("    sent_at %lld\n", (long long)m->sent_at);
    for (size_t i = 0; !g_json && i < m->n_receipts; i++) {
        const kurer_message_receipt *r = &m->receipts[i];
        printf("    %s device %u:", kurer_text_term(who, sizeof(who), r->user),
               (unsigned)r->device_id);
        if (r->delivered_at != 0)
            printf(" delivered %s", fmt_ms(t, sizeof(t), r->delivered_at));
        if (r->read_at != 0)
            printf(" read %s", fmt_ms(t, sizeof(t), r->read_at));
        printf("\n");
    }
}
