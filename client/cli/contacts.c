/* kurer contacts (who one holds certificates of or has written with, with their devices) and
 * kurer conversations (per peer: the last message and the counts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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

typedef struct contact_list {
    kurer_contact *v; /* user strings copied */
    size_t n, cap;
} contact_list;

static int collect(void *ud, const kurer_contact *c)
{
    contact_list *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        kurer_contact *nv = realloc(l->v, cap * sizeof(*nv));
        if (nv == NULL)
            return KURER_ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    char *u = strdup(c->user);
    if (u == NULL)
        return KURER_ENOMEM;
    l->v[l->n] = *c;
    l->v[l->n++].user = u;
    return 0;
}

static void list_free(contact_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free((char *)(uintptr_t)l->v[i].user);
    free(l->v);
}

static int device_row(void *ud, const kurer_peer_device *d)
{
    kurer_json *j = ud;
    const char *clear = d->clearance ? kurer_level_name(d->clearance) : "-";
    const char *status = d->status == 0 ? "valid" : kurer_err_name(d->status);
    if (j == NULL) {
        printf("  device %-4u %-13s serial %-6llu %s\n", d->device_id, clear,
               (unsigned long long)d->serial, status);
        return 0;
    }
    kurer_json_begin_object(j);
    kurer_json_kv_uint(j, "device", d->device_id);
    kurer_json_kv_uint(j, "serial", d->serial);
    kurer_json_kv_str(j, "clearance", d->clearance ? kurer_level_name(d->clearance) : "");
    kurer_json_kv_str(j, "authority", d->authority);
    kurer_json_kv_str(j, "status", status);
    kurer_json_end_object(j);
    return 0;
}

static int show_contacts(kurer *k, const contact_list *l)
{
    jline o;
    int rc = 0;
    char t[64];
    if (g_json) {
        jline_ok(&o);
        kurer_json_key(&o.j, "contacts");
        kurer_json_begin_array(&o.j);
    } else if (l->n == 0) {
        printf("no contacts yet\n");
    }
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        const kurer_contact *c = &l->v[i];
        const char *last = c->last_contact != 0 ? fmt_ms(t, sizeof(t), c->last_contact) : "";
        if (g_json) {
            kurer_json_begin_object(&o.j);
            kurer_json_kv_str(&o.j, "user", c->user);
            kurer_json_kv_str(&o.j, "last_contact", last);
            kurer_json_kv_uint(&o.j, "messages", c->messages);
            kurer_json_key(&o.j, "devices");
            kurer_json_begin_array(&o.j);
            rc = kurer_peer_devices(k, c->user, device_row, &o.j);
            kurer_json_end_array(&o.j);
            kurer_json_end_object(&o.j);
        } else {
            printf("%s  last contact %s  %llu message%s  %u device%s\n", c->user,
                   last[0] ? last : "never", (unsigned long long)c->messages,
                   c->messages == 1 ? "" : "s", c->devices, c->devices == 1 ? "" : "s");
            rc = kurer_peer_devices(k, c->user, device_row, NULL);
        }
    }
    if (g_json) {
        kurer_json_end_array(&o.j);
        if (rc == 0)
            jline_end(&o);
        else
            kurer_buf_release(&o.b);
    }
    return rc;
}

static int open_for(int argc, char **argv, const char *help, kurer **k)
{
    static const kurer_opt opts[] = {{"help", 0, 0}, {"json", 0, 0}, {"home", V, 0}};
    kurer_args a;
    const char *home;
    int rc;
    if ((rc = command_args(&a, opts, NOPTS(opts), 0, 0, NULL, help, argc, argv)) != 0 ||
        (rc = need(&a, "home", &home)) != 0)
        return rc;
    return open_home(home, k);
}

int cmd_contacts(int argc, char **argv)
{
    kurer *k = NULL;
    contact_list l;
    memset(&l, 0, sizeof(l));
    int rc = open_for(argc, argv, help_contacts, &k);
    if (rc != 0)
        return rc;
    if ((rc = kurer_contacts(k, collect, &l)) == 0)
        rc = show_contacts(k, &l);
    if (rc != 0)
        refuse(rc, "cannot read the contacts: %s", kurer_strerror(rc));
    list_free(&l);
    kurer_close(k);
    return rc;
}

static int conversation_row(void *ud, const kurer_conversation *c)
{
    char t[64];
    size_t *n = ud;
    fmt_ms(t, sizeof(t), c->last_at);
    (*n)++;
    if (g_json)
        return 0;
    printf("%s  last %s  %llu message%s: %llu received (%llu quarantined), %llu sent, %llu "
           "pending, %llu failed\n",
           c->peer, t, (unsigned long long)c->messages, c->messages == 1 ? "" : "s",
           (unsigned long long)c->received, (unsigned long long)c->quarantined,
           (unsigned long long)c->sent, (unsigned long long)c->pending,
           (unsigned long long)c->failed);
    return 0;
}

static int conversation_json(void *ud, const kurer_conversation *c)
{
    kurer_json *j = ud;
    char t[64];
    kurer_json_begin_object(j);
    kurer_json_kv_str(j, "peer", c->peer);
    kurer_json_kv_str(j, "last_at", fmt_ms(t, sizeof(t), c->last_at));
    kurer_json_kv_uint(j, "messages", c->messages);
    kurer_json_kv_uint(j, "received", c->received);
    kurer_json_kv_uint(j, "quarantined", c->quarantined);
    kurer_json_kv_uint(j, "sent", c->sent);
    kurer_json_kv_uint(j, "pending", c->pending);
    kurer_json_kv_uint(j, "failed", c->failed);
    kurer_json_end_object(j);
    return 0;
}

int cmd_conversations(int argc, char **argv)
{
    kurer *k = NULL;
    size_t n = 0;
    int rc = open_for(argc, argv, help_conversations, &k);
    if (rc != 0)
        return rc;
    rc = kurer_conversations(k, conversation_row, &n);
    if (rc == 0 && g_json) {
        jline o;
        jline_ok(&o);
        kurer_json_key(&o.j, "conversations");
        kurer_json_begin_array(&o.j);
        rc = kurer_conversations(k, conversation_json, &o.j);
        kurer_json_end_array(&o.j);
        jline_end(&o);
    } else if (rc == 0 && n == 0) {
        printf("no conversations yet\n");
    }
    if (rc != 0)
        refuse(rc, "cannot read the conversations: %s", kurer_strerror(rc));
    kurer_close(k);
    return rc;
}
