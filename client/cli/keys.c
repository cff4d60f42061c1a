/* kurer: a peer's key change, said once (send, recv) and listed (history). */
#include <stdio.h>

#include "cli.h"
#include "kurer/text.h"

void show_key_change(const kurer_key_change *c, const char *prefix)
{
    char who[KURER_TEXT_TERM_MAX(KURER_SUBJECT_MAX)], by[KURER_TEXT_TERM_MAX(KURER_SUBJECT_MAX)];
    if (g_json) {
        jline o;
        jline_begin(&o);
        kurer_json_kv_str(&o.j, "event", "key_change");
        kurer_json_kv_str(&o.j, "user", c->user);
        kurer_json_kv_uint(&o.j, "device", c->device_id);
        kurer_json_kv_uint(&o.j, "serial", c->serial);
        kurer_json_kv_str(&o.j, "issuer", c->issuer);
        kurer_json_kv_uint(&o.j, "old_serial", c->old_serial);
        kurer_json_kv_str(&o.j, "old_issuer", c->old_issuer);
        kurer_json_kv_str(&o.j, "key_fingerprint", c->key_fingerprint);
        kurer_json_kv_int(&o.j, "at", c->at);
        jline_end(&o);
        return;
    }
    /* The names come from a verified certificate, but reach a terminal: the safe form. */
    printf("%s%s device %u has a new key: certificate %llu issued by %s\n", prefix,
           kurer_text_term(who, sizeof(who), c->user), c->device_id, (unsigned long long)c->serial,
           kurer_text_term(by, sizeof(by), c->issuer));
    fflush(stdout);
}

void on_key_change(void *ud, const kurer_key_change *c)
{
    (void)ud;
    show_key_change(c, "");
}
