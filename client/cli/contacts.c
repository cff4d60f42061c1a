/* kurer contacts (who one holds certificates of or has written with, with their devices) and
 * kurer conversations (per peer: the last message and the counts): the methods contacts and
 * conversations (rpc_day.c), here or in the daemon, and their results printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

static const char help_contacts[] =
    "usage: kurer contacts --home H [--json]\n"
    "\n"
    "Lists the users this home knows: those whose device certificates it holds (looked up\n"
    "when writing to them, or imported with kurer import) and those it has messages with.\n"
    "For each: the last contact (the newest message either way, or never), the number of\n"
    "messages, and every device held with its certificate (serial, clearance, status now).\n"
    "No network: kurer verify USER refreshes a user's devices from the relay.\n";

static const char help_conversations[] =
    "usage: kurer conversations --home H [--json]\n"
    "\n"
    "Lists, per peer, the time of the last message and how many there are: received (of\n"
    "which quarantined), sent and accepted by the relay, pending in the outbox, failed. The\n"
    "most recent conversation first; kurer history --with USER shows one. The home does not\n"
    "record what has been read, so there is no unread count.\n";

static const char *str_of(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

static unsigned long long num_of(json_t *o, const char *k)
{
    json_int_t v = json_integer_value(json_object_get(o, k));
    return v > 0 ? (unsigned long long)v : 0;
}

static void device_row(kurer_json *j, json_t *d)
{
    const char *clear = str_of(d, "clearance");
    if (j == NULL) {
        printf("  device %-4llu %-13s serial %-6llu %s\n", num_of(d, "device"),
               clear[0] ? clear : "-", num_of(d, "serial"), str_of(d, "status"));
        return;
    }
    kurer_json_begin_object(j);
    kurer_json_kv_uint(j, "device", num_of(d, "device"));
    kurer_json_kv_uint(j, "serial", num_of(d, "serial"));
    kurer_json_kv_str(j, "clearance", clear);
    kurer_json_kv_str(j, "authority", str_of(d, "authority"));
    kurer_json_kv_str(j, "status", str_of(d, "status"));
    kurer_json_end_object(j);
}

static void show_contacts(json_t *v)
{
    jline o;
    char t[64];
    size_t i, n;
    json_t *c, *d;
    if (g_json) {
        jline_ok(&o);
        kurer_json_key(&o.j, "contacts");
        kurer_json_begin_array(&o.j);
    } else if (json_array_size(v) == 0) {
        printf("no contacts yet\n");
    }
    json_array_foreach(v, i, c)
    {
        long long at = (long long)json_integer_value(json_object_get(c, "last_contact"));
        const char *last = at != 0 ? fmt_ms(t, sizeof(t), at) : "";
        json_t *certs = json_object_get(c, "certificates");
        unsigned long long msgs = num_of(c, "messages"), devs = num_of(c, "devices");
        if (g_json) {
            kurer_json_begin_object(&o.j);
            kurer_json_kv_str(&o.j, "user", str_of(c, "user"));
            kurer_json_kv_str(&o.j, "last_contact", last);
            kurer_json_kv_uint(&o.j, "messages", msgs);
            kurer_json_key(&o.j, "devices");
            kurer_json_begin_array(&o.j);
            json_array_foreach(certs, n, d)
            {
                device_row(&o.j, d);
            }
            kurer_json_end_array(&o.j);
            kurer_json_end_object(&o.j);
        } else {
            printf("%s  last contact %s  %llu message%s  %llu device%s\n", str_of(c, "user"),
                   last[0] ? last : "never", msgs, msgs == 1 ? "" : "s", devs,
                   devs == 1 ? "" : "s");
            json_array_foreach(certs, n, d)
            {
                device_row(NULL, d);
            }
        }
    }
    if (g_json) {
        kurer_json_end_array(&o.j);
        jline_end(&o);
    }
}

static void show_conversations(json_t *v)
{
    jline o;
    char t[64];
    size_t i;
    json_t *c;
    static const char *const counts[] = {"messages", "received", "quarantined",
                                         "sent",     "pending",  "failed"};
    if (g_json) {
        jline_ok(&o);
        kurer_json_key(&o.j, "conversations");
        kurer_json_begin_array(&o.j);
    } else if (json_array_size(v) == 0) {
        printf("no conversations yet\n");
    }
    json_array_foreach(v, i, c)
    {
        fmt_ms(t, sizeof(t), (int64_t)json_integer_value(json_object_get(c, "last_at")));
        if (g_json) {
            kurer_json_begin_object(&o.j);
            kurer_json_kv_str(&o.j, "peer", str_of(c, "peer"));
            kurer_json_kv_str(&o.j, "last_at", t);
            for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++)
                kurer_json_kv_uint(&o.j, counts[k], num_of(c, counts[k]));
            kurer_json_end_object(&o.j);
            continue;
        }
        unsigned long long m = num_of(c, "messages");
        printf("%s  last %s  %llu message%s: %llu received (%llu quarantined), %llu sent, %llu "
               "pending, %llu failed\n",
               str_of(c, "peer"), t, m, m == 1 ? "" : "s", num_of(c, "received"),
               num_of(c, "quarantined"), num_of(c, "sent"), num_of(c, "pending"),
               num_of(c, "failed"));
    }
    if (g_json) {
        kurer_json_end_array(&o.j);
        jline_end(&o);
    }
}

/* The method called like the command, through the daemon or on the home; its list shown. */
static int list_command(int argc, char **argv, const char *help, const char *method)
{
    static const kurer_opt opts[] = {{"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}};
    kurer_args a;
    const char *home;
    json_t *res = NULL;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help, argc, argv)) != 0 ||
        (rc = need(&a, "home", &home)) != 0 || (rc = cli_call(home, method, json_object(), &res)))
        return rc;
    json_t *v = json_object_get(res, method);
    if (!json_is_array(v)) {
        json_decref(res);
        return refuse(KURER_EMALFORMED, "cannot read the %s: a malformed answer", method);
    }
    if (strcmp(method, "contacts") == 0)
        show_contacts(v);
    else
        show_conversations(v);
    if (json_is_true(json_object_get(res, "truncated")))
        fprintf(stderr, "kurer: there are more: the first %zu are shown\n", json_array_size(v));
    json_decref(res);
    return 0;
}

int cmd_contacts(int argc, char **argv)
{
    return list_command(argc, argv, help_contacts, "contacts");
}

int cmd_conversations(int argc, char **argv)
{
    return list_command(argc, argv, help_conversations, "conversations");
}
