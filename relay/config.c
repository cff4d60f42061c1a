/* Configuration: defaults, the table of keys with their ranges, and the config file parser. */
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
#include "store_config.h"

void kurer_relay_config_default(kurer_relay_config *c)
{
    c->max_record = KURER_NET_RECORD_MAX;
    c->max_envelope = KURER_ENVELOPE_CONTENT_MAX;
    c->max_send_envelopes = 256;
    c->mailbox_max = 10000;
    c->handshake_timeout_ms = 10000;
    c->idle_timeout_ms = 120000;
    c->send_rate = 200;
    c->out_cap = (uint64_t)1 << 20;
    c->out_max = (uint64_t)4 << 20;
    c->deliver_batch = 64;
    c->prekeys_low = 20;
    c->max_connections = 0; /* derived from the open-file limit */
    c->max_handshakes = 1024;
    c->commit_delay_us = 1000;
    c->prekeys_max = 1000;
    c->fetch_rate = 20;
    c->ack_hold_us = 50000;
    c->max_preauth_record = KURER_NET_PREAUTH_RECORD;
    c->max_preauth_per_address = 32;
    c->nk_rate = 4;
    c->handshake_rate = 100;
    c->upload_buffer_max = (uint64_t)8 << 20;
    c->lookup_rate = 20;
    c->ping_rate = 2;
    c->mailbox_sender_max = 2000;
    c->prekey_take_max = 10;
    c->prekey_take_window_s = 3600;
    c->store_postgres = 0; /* sqlite */
    c->pg_conninfo[0] = '\0';
}

static const struct {
    const char *key;
    size_t off;
    uint64_t min, max;
} keys[] = {
#define K(name, lo, hi)                                                                            \
    {                                                                                              \
#name, offsetof(kurer_relay_config, name), lo, hi                                          \
    }
    K(max_record, 128, 65535),
    K(max_envelope, 1, KURER_ENVELOPE_CONTENT_MAX),
    K(max_send_envelopes, 1, KURER_SEND_ENVELOPES_MAX),
    K(mailbox_max, 1, 100000000),
    K(handshake_timeout_ms, 50, 600000),
    K(idle_timeout_ms, 0, 86400000),
    K(send_rate, 0, 1000000),
    K(out_cap, 65536, (uint64_t)1 << 30),
    K(out_max, 65536, (uint64_t)1 << 30),
    K(deliver_batch, 1, 1024),
    K(prekeys_low, 1, 100000),
    K(max_connections, 0, 10000000),
    K(max_handshakes, 1, 1000000),
    K(commit_delay_us, 0, 1000000),
    K(prekeys_max, 1, 1000000),
    K(fetch_rate, 0, 1000000),
    K(ack_hold_us, 0, 10000000),
    K(max_preauth_record, 1024, 65535),
    K(max_preauth_per_address, 1, 1000000),
    K(nk_rate, 0, 1000000),
    K(handshake_rate, 0, 10000000),
    K(upload_buffer_max, 65536, (uint64_t)1 << 32),
    K(lookup_rate, 0, 1000000),
    K(ping_rate, 0, 1000000),
    K(mailbox_sender_max, 0, 100000000),
    K(prekey_take_max, 0, 1000000),
    K(prekey_take_window_s, 1, 86400 * 30),
#undef K
};

int kurer_relay_config_load(kurer_relay_config *c, const char *path, int *line)
{
    uint8_t *data;
    size_t len;
    *line = 0;
    int err = kurer_file_read(path, 1 << 20, &data, &len);
    if (err != 0)
        return err;
    char *rest = (char *)data;
    int ln = 0;
    err = 0;
    /* strsep, not strtok: empty lines count, so the line number reported is the file's. */
    for (char *l; (l = strsep(&rest, "\n")) != NULL;) {
        ln++;
        char k[64], v[64];
        while (*l == ' ' || *l == '\t')
            l++;
        if (*l == '#' || *l == '\0' || *l == '\r')
            continue;
        int sk = kurer__config_store_line(c, l); /* store, pg_conninfo */
        if (sk < 0) {
            err = KURER_EINVAL;
            break;
        }
        if (sk > 0)
            continue;
        if (sscanf(l, "%63[a-z_] = %63s", k, v) != 2) {
            err = KURER_EINVAL;
            break;
        }
        size_t i;
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (strcmp(keys[i].key, k) == 0)
                break;
        uint64_t val;
        if (i == sizeof(keys) / sizeof(keys[0]) || kurer_parse_u64(v, keys[i].max, &val) != 0 ||
            val < keys[i].min) {
            err = KURER_EINVAL;
            break;
        }
        *(uint64_t *)((char *)c + keys[i].off) = val;
    }
    if (err != 0)
        *line = ln;
    kurer_memzero(data, len); /* pg_conninfo may hold a password */
    free(data);
    return err;
}

int kurer_relay_config_range(const char *key, uint64_t *min, uint64_t *max)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].key, key) == 0) {
            *min = keys[i].min;
            *max = keys[i].max;
            return 0;
        }
    return KURER_ENOTFOUND;
}
