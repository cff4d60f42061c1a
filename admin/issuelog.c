#include "kurer/issuelog.h"
#include "kurer/crypto.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t log_magic[8] = {'K', 'U', 'R', 'E', 'R', 'L', 'O', 'G'};
static const uint8_t state_magic[8] = {'K', 'U', 'R', 'E', 'R', 'S', 'E', 'R'};
/* Domain separation: the issuer's key also signs certificates and revocation lists. */
static const char log_context[] = "kurer-admin issuance log v1";
#define LOG_FORMAT    1
#define ENTRY_VERSION 1
#define STATE_FORMAT  1

const char *kurer_log_kind_name(int kind)
{
    switch (kind) {
    case KURER_LOGK_ISSUE:
        return "ISSUE";
    case KURER_LOGK_REVOKE:
        return "REVOKE";
    }
    return "INVALID";
}

void kurer_log_entry_for_cert(kurer_log_entry *e, const kurer_cert *c, int64_t now)
{
    memset(e, 0, sizeof(*e));
    e->kind = KURER_LOGK_ISSUE;
    e->time = now;
    e->serial = c->body.serial;
    e->role = c->body.role;
    memcpy(e->subject, c->body.subject, sizeof(e->subject));
    e->device_id = c->body.device_id;
    e->clearance = c->body.clearance;
    e->not_after = c->body.not_after;
    kurer_hash256(e->cert_fp, c->tbs, c->tbs_len);
    if (c->body.role == KURER_ROLE_DEVICE) {
        kurer_hash256(e->key_fp, c->body.identity_key, KURER_IDENTITY_KEY_LEN);
        kurer_hash256(e->noise_fp, c->body.noise_key, KURER_X25519_LEN);
    } else {
        kurer_key_id(c->body.signing_key, e->key_fp);
    }
}

void kurer_log_entry_for_revocation(kurer_log_entry *e, const kurer_log_entry *issued,
                                    kurer_revocation_reason reason, int64_t now)
{
    memset(e, 0, sizeof(*e));
    e->kind = KURER_LOGK_REVOKE;
    e->time = now;
    e->serial = issued->serial;
    e->role = issued->role;
    memcpy(e->subject, issued->subject, sizeof(e->subject));
    e->device_id = issued->device_id;
    e->clearance = issued->clearance;
    e->not_after = issued->not_after;
    memcpy(e->key_fp, issued->key_fp, 32);
    memcpy(e->noise_fp, issued->noise_fp, 32);
    e->reason = reason;
}

static int body_encode(const kurer_log_entry *e, kurer_buf *b)
{
    size_t n = strlen(e->subject);
    if (n > KURER_SUBJECT_MAX)
        return KURER_EINVAL;
    if (kurer_buf_put_u8(b, ENTRY_VERSION) || kurer_buf_put_u8(b, (uint8_t)e->kind) ||
        kurer_buf_put_u64be(b, e->seq) || kurer_buf_put(b, e->prev, 32) ||
        kurer_buf_put_u64be(b, (uint64_t)e->time) || kurer_buf_put_u64be(b, e->serial) ||
        kurer_buf_put_u8(b, (uint8_t)e->role) || kurer_buf_put_lv16(b, e->subject, n) ||
        kurer_buf_put_u32be(b, e->device_id) || kurer_buf_put_u8(b, (uint8_t)e->clearance) ||
        kurer_buf_put_u64be(b, (uint64_t)e->not_after) || kurer_buf_put(b, e->cert_fp, 32) ||
        kurer_buf_put(b, e->key_fp, 32) || kurer_buf_put(b, e->noise_fp, 32) ||
        kurer_buf_put_u8(b, (uint8_t)e->reason))
        return KURER_ELIMIT;
    return 0;
}

static int body_decode(const uint8_t *p, size_t len, kurer_log_entry *e)
{
    kurer_reader r;
    uint8_t ver, kind, role, clearance, reason;
    uint64_t t, na;
    const uint8_t *subj;
    size_t n;
    int rc;
    memset(e, 0, sizeof(*e));
    kurer_reader_init(&r, p, len);
    if ((rc = kurer_reader_u8(&r, &ver)) != 0)
        return rc;
    if (ver != ENTRY_VERSION)
        return KURER_EVERSION;
    if ((rc = kurer_reader_u8(&r, &kind)) != 0 || (rc = kurer_reader_u64be(&r, &e->seq)) != 0 ||
        (rc = kurer_reader_copy(&r, e->prev, 32)) != 0 || (rc = kurer_reader_u64be(&r, &t)) != 0 ||
        (rc = kurer_reader_u64be(&r, &e->serial)) != 0 || (rc = kurer_reader_u8(&r, &role)) != 0 ||
        (rc = kurer_reader_lv16(&r, KURER_SUBJECT_MAX, &subj, &n)) != 0 ||
        (rc = kurer_reader_u32be(&r, &e->device_id)) != 0 ||
        (rc = kurer_reader_u8(&r, &clearance)) != 0 || (rc = kurer_reader_u64be(&r, &na)) != 0 ||
        (rc = kurer_reader_copy(&r, e->cert_fp, 32)) != 0 ||
        (rc = kurer_reader_copy(&r, e->key_fp, 32)) != 0 ||
        (rc = kurer_reader_copy(&r, e->noise_fp, 32)) != 0 ||
        (rc = kurer_reader_u8(&r, &reason)) != 0 || (rc = kurer_reader_end(&r)) != 0)
        return rc == KURER_ELIMIT ? KURER_EMALFORMED : rc;
    if (kind != KURER_LOGK_ISSUE && kind != KURER_LOGK_REVOKE)
        return KURER_EMALFORMED;
    if (role < KURER_ROLE_ROOT || role > KURER_ROLE_DEVICE ||
        clearance > KURER_LEVEL_CONFIDENTIAL || reason > KURER_REASON_LEFT_AUTHORITY ||
        memchr(subj, 0, n) != NULL)
        return KURER_EMALFORMED;
    e->kind = (kurer_log_kind)kind;
    e->time = (int64_t)t;
    e->role = (kurer_role)role;
    memcpy(e->subject, subj, n);
    e->subject[n] = '\0';
    e->clearance = (kurer_level)clearance;
    e->not_after = (int64_t)na;
    e->reason = (kurer_revocation_reason)reason;
    return 0;
}

static int signed_message(const uint8_t *body, size_t n, kurer_buf *msg)
{
    if (kurer_buf_put(msg, log_context, sizeof(log_context)) || kurer_buf_put(msg, body, n))
        return KURER_ELIMIT;
    return 0;
}

static int push(kurer_issuelog *log, const kurer_log_entry *e)
{
    if (log->n == log->cap) {
        size_t ncap = log->cap ? log->cap * 2 : 16;
        kurer_log_entry *p = realloc(log->entries, ncap * sizeof(*p));
        if (p == NULL)
            return KURER_ENOMEM;
        log->entries = p;
        log->cap = ncap;
    }
    log->entries[log->n++] = *e;
    memcpy(log->head, e->hash, 32);
    return 0;
}

static void log_reset(kurer_issuelog *log, const uint8_t issuer_pk[32])
{
    memset(log, 0, sizeof(*log));
    memcpy(log->issuer_pk, issuer_pk, 32);
    kurer_key_id(issuer_pk, log->head);
}

int kurer_issuelog_init(kurer_issuelog *log, const uint8_t issuer_pk[32], kurer_buf *out)
{
    log_reset(log, issuer_pk);
    if (kurer_buf_put(out, log_magic, sizeof(log_magic)) || kurer_buf_put_u32be(out, LOG_FORMAT))
        return KURER_ELIMIT;
    return 0;
}

int kurer_issuelog_parse(const uint8_t *data, size_t len, const uint8_t issuer_pk[32],
                         kurer_issuelog *log, size_t *bad_entry)
{
    kurer_reader r;
    uint8_t magic[8];
    uint32_t format;
    kurer_buf msg;
    int rc;

    log_reset(log, issuer_pk);
    if (bad_entry != NULL)
        *bad_entry = SIZE_MAX;
    kurer_buf_init(&msg, KURER_LOG_ENTRY_MAX + sizeof(log_context));
    kurer_reader_init(&r, data, len);
    if ((rc = kurer_reader_copy(&r, magic, sizeof(magic))) != 0 ||
        (rc = kurer_reader_u32be(&r, &format)) != 0)
        goto out;
    if (memcmp(magic, log_magic, sizeof(magic)) != 0) {
        rc = KURER_EMALFORMED;
        goto out;
    }
    if (format != LOG_FORMAT) {
        rc = KURER_EVERSION;
        goto out;
    }
    while (kurer_reader_remaining(&r) > 0) {
        const uint8_t *start = kurer_reader_ptr(&r), *rec;
        size_t n;
        kurer_log_entry e;
        if (bad_entry != NULL)
            *bad_entry = log->n;
        if ((rc = kurer_reader_lv32(&r, KURER_LOG_ENTRY_MAX, &rec, &n)) != 0) {
            rc = rc == KURER_ELIMIT ? KURER_EMALFORMED : rc;
            goto out;
        }
        if (n <= KURER_SIG_LEN) {
            rc = KURER_EMALFORMED;
            goto out;
        }
        if ((rc = body_decode(rec, n - KURER_SIG_LEN, &e)) != 0)
            goto out;
        kurer_buf_reset(&msg);
        if ((rc = signed_message(rec, n - KURER_SIG_LEN, &msg)) != 0)
            goto out;
        if ((rc = kurer_verify(issuer_pk, msg.data, msg.len, rec + n - KURER_SIG_LEN)) != 0)
            goto out;
        if (e.seq != log->n || !kurer_ct_equal(e.prev, log->head, 32)) {
            rc = KURER_ECORRUPT;
            goto out;
        }
        kurer_hash256(e.hash, start, 4 + n);
        if ((rc = push(log, &e)) != 0)
            goto out;
    }
    if (bad_entry != NULL)
        *bad_entry = SIZE_MAX;
out:
    kurer_buf_release(&msg);
    if (rc != 0)
        kurer_issuelog_release(log);
    return rc;
}

int kurer_issuelog_append(kurer_issuelog *log, kurer_log_entry *e, const kurer_signing_key *issuer,
                          kurer_buf *out)
{
    kurer_buf body, msg;
    uint8_t sig[KURER_SIG_LEN], *rec;
    size_t start = out->len;
    int rc;
    if (!kurer_ct_equal(issuer->pk, log->issuer_pk, 32))
        return KURER_EKEYMISMATCH;
    e->seq = log->n;
    memcpy(e->prev, log->head, 32);
    kurer_buf_init(&body, KURER_LOG_ENTRY_MAX - KURER_SIG_LEN);
    kurer_buf_init(&msg, KURER_LOG_ENTRY_MAX + sizeof(log_context));
    if ((rc = body_encode(e, &body)) != 0 ||
        (rc = signed_message(body.data, body.len, &msg)) != 0 ||
        (rc = kurer_sign(issuer, msg.data, msg.len, sig)) != 0)
        goto out;
    if (kurer_buf_put_u32be(out, (uint32_t)(body.len + KURER_SIG_LEN)) ||
        kurer_buf_put(out, body.data, body.len) || kurer_buf_put(out, sig, sizeof(sig))) {
        rc = KURER_ELIMIT;
        goto out;
    }
    rec = out->data + start;
    kurer_hash256(e->hash, rec, out->len - start);
    rc = push(log, e);
out:
    if (rc != 0 && out->len > start)
        out->len = start;
    kurer_buf_release(&body);
    kurer_buf_release(&msg);
    return rc;
}

void kurer_issuelog_release(kurer_issuelog *log)
{
    if (log == NULL)
        return;
    free(log->entries);
    log->entries = NULL;
    log->n = log->cap = 0;
}

uint64_t kurer_issuelog_max_serial(const kurer_issuelog *log)
{
    uint64_t m = 0;
    for (size_t i = 0; i < log->n; i++)
        if (log->entries[i].kind == KURER_LOGK_ISSUE && log->entries[i].serial > m)
            m = log->entries[i].serial;
    return m;
}

const kurer_log_entry *kurer_issuelog_find_serial(const kurer_issuelog *log, uint64_t serial)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->entries[i].kind == KURER_LOGK_ISSUE && log->entries[i].serial == serial)
            return &log->entries[i];
    return NULL;
}

int kurer_serial_state_encode(const kurer_serial_state *s, uint8_t out[KURER_SERIAL_STATE_LEN])
{
    kurer_buf b;
    kurer_buf_init_fixed(&b, out, KURER_SERIAL_STATE_LEN);
    if (kurer_buf_put(&b, state_magic, sizeof(state_magic)) ||
        kurer_buf_put_u32be(&b, STATE_FORMAT) || kurer_buf_put_u64be(&b, s->next_serial) ||
        kurer_buf_put_u64be(&b, s->log_entries))
        return KURER_EINTERNAL;
    return 0;
}

int kurer_serial_state_decode(const uint8_t *data, size_t len, kurer_serial_state *s)
{
    kurer_reader r;
    uint8_t magic[8];
    uint32_t format;
    int rc;
    memset(s, 0, sizeof(*s));
    kurer_reader_init(&r, data, len);
    if ((rc = kurer_reader_copy(&r, magic, sizeof(magic))) != 0 ||
        (rc = kurer_reader_u32be(&r, &format)) != 0)
        return rc;
    if (memcmp(magic, state_magic, sizeof(magic)) != 0)
        return KURER_EMALFORMED;
    if (format != STATE_FORMAT)
        return KURER_EVERSION;
    if ((rc = kurer_reader_u64be(&r, &s->next_serial)) != 0 ||
        (rc = kurer_reader_u64be(&r, &s->log_entries)) != 0 || (rc = kurer_reader_end(&r)) != 0) {
        memset(s, 0, sizeof(*s));
        return rc;
    }
    if (s->next_serial == 0) {
        memset(s, 0, sizeof(*s));
        return KURER_EMALFORMED;
    }
    return 0;
}
