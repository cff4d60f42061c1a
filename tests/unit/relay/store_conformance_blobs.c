/* The conformance suite's blob cases (relay/store.h, "blobs"): create within the quota,
 * append only at the offset held and within the declared size, finish only when complete, read
 * any range of a finished blob across chunk edges; what was appended survives a reopen (the
 * offset a client resumes from); the sweep deletes expired blobs and unfinished uploads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "store_conformance.h"

#define NOW 1000000

typedef struct blob_result {
    fx *f;
    int err;
    kurer_store_blob_res res;
    uint8_t data[KURER_BLOB_CHUNK_MAX];
} blob_result;

static void on_blob(void *arg, int err, const kurer_store_blob_res *res)
{
    blob_result *r = arg;
    r->err = err;
    if (err == 0) {
        assert_non_null(res);
        r->res = *res;
        if (res->data != NULL && res->len > 0)
            memcpy(r->data, res->data, res->len);
    } else {
        assert_null(res);
    }
    r->f->done++;
}

static int run(fx *f, const kurer_store_blob_req *q, blob_result *r)
{
    memset(r, 0, sizeof(*r));
    r->f = f;
    f->done = 0;
    assert_int_equal(kurer_store_blob_run(f->s, q, on_blob, r), 0);
    wait_done(f, 1);
    return r->err;
}

static kurer_store_blob_req req(kurer_store_blob_op op, uint8_t id, const char *user)
{
    kurer_store_blob_req q;
    memset(&q, 0, sizeof(q));
    q.op = op;
    memset(q.id, id, sizeof(q.id));
    q.owner = addr(user, 1);
    q.now = NOW;
    return q;
}

static int create(fx *f, uint8_t id, const char *user, uint64_t size, uint64_t quota,
                  int64_t expires_at)
{
    blob_result r;
    kurer_store_blob_req q = req(KURER_BLOB_CREATE, id, user);
    q.size = size;
    q.quota = quota;
    q.expires_at = expires_at;
    return run(f, &q, &r);
}

/* The byte at offset i of blob id. */
static uint8_t byte_at(uint8_t id, uint64_t i)
{
    return (uint8_t)(id * 31 + i * 7 + (i >> 8));
}

static int append(fx *f, uint8_t id, const char *user, uint64_t off, size_t len, uint64_t *recv)
{
    static uint8_t buf[KURER_BLOB_CHUNK_MAX];
    blob_result r;
    for (size_t i = 0; i < len; i++)
        buf[i] = byte_at(id, off + i);
    kurer_store_blob_req q = req(KURER_BLOB_APPEND, id, user);
    q.offset = off;
    q.data = buf;
    q.len = len;
    int rc = run(f, &q, &r);
    if (rc == 0 && recv != NULL)
        *recv = r.res.received;
    return rc;
}

static int read_range(fx *f, uint8_t id, uint64_t off, uint32_t len, int64_t now, blob_result *r)
{
    kurer_store_blob_req q = req(KURER_BLOB_READ, id, "nobody@x.dk");
    q.offset = off;
    q.length = len;
    q.now = now;
    int rc = run(f, &q, r);
    for (size_t i = 0; rc == 0 && i < r->res.len; i++)
        assert_int_equal(r->data[i], byte_at(id, off + i));
    return rc;
}

static int finish(fx *f, uint8_t id, const char *user, int64_t expires_at, blob_result *r)
{
    kurer_store_blob_req q = req(KURER_BLOB_FINISH, id, user);
    q.expires_at = expires_at;
    return run(f, &q, r);
}

void test_blobs(void **state)
{
    fx *f = *state;
    blob_result r;
    uint64_t got = 0;
    const uint64_t size = 3 * 40000 + 123;
    /* bounds of the request, refused at once */
    kurer_store_blob_req bad = req(KURER_BLOB_APPEND, 1, "anna@fm.dk");
    assert_int_equal(kurer_store_blob_run(f->s, &bad, on_blob, &r), KURER_EINVAL);
    bad = req(KURER_BLOB_READ, 1, "anna@fm.dk");
    bad.length = KURER_BLOB_CHUNK_MAX + 1;
    assert_int_equal(kurer_store_blob_run(f->s, &bad, on_blob, &r), KURER_EINVAL);

    /* the quota counts what a device's live blobs declare */
    assert_int_equal(create(f, 1, "anna@fm.dk", size, 200000, NOW + 100), 0);
    assert_int_equal(create(f, 1, "anna@fm.dk", 10, 0, NOW + 100), KURER_EEXIST);
    assert_int_equal(create(f, 2, "anna@fm.dk", 200000 - size + 1, 200000, NOW + 100),
                     KURER_EQUOTA);
    assert_int_equal(create(f, 2, "anna@fm.dk", 200000 - size, 200000, NOW + 100), 0);
    assert_int_equal(create(f, 3, "bo@fm.dk", 200000, 200000, NOW + 100), 0); /* per device */
    /* an expired blob no longer counts */
    assert_int_equal(create(f, 4, "carl@fm.dk", 1000, 1000, NOW), 0);
    assert_int_equal(create(f, 5, "carl@fm.dk", 1000, 1000, NOW + 100), 0);

    /* appends only at the offset held, only by the owner, only within the size */
    assert_int_equal(append(f, 1, "anna@fm.dk", 0, 40000, &got), 0);
    assert_int_equal(got, 40000);
    assert_int_equal(append(f, 1, "anna@fm.dk", 0, 40000, NULL), KURER_ESTATE);
    assert_int_equal(append(f, 1, "anna@fm.dk", 40001, 100, NULL), KURER_ESTATE);
    assert_int_equal(append(f, 1, "bo@fm.dk", 40000, 100, NULL), KURER_ENOTFOUND);
    assert_int_equal(append(f, 9, "anna@fm.dk", 0, 100, NULL), KURER_ENOTFOUND);
    assert_int_equal(append(f, 1, "anna@fm.dk", 40000, 40000, &got), 0);
    /* not finished: nobody reads it, and it cannot be finished */
    assert_int_equal(read_range(f, 1, 0, 100, NOW, &r), KURER_ENOTFOUND);
    assert_int_equal(finish(f, 1, "anna@fm.dk", NOW + 1000, &r), KURER_ESTATE);

    /* what is held survives a reopen: the offset a client resumes from */
    kurer_store_close(f->s);
    f->s = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->be->open(&f->s, &f->loop, f->dir, f->key), 0);
    kurer_store_blob_req st = req(KURER_BLOB_STATE, 1, "anna@fm.dk");
    assert_int_equal(run(f, &st, &r), 0);
    assert_int_equal(r.res.size, size);
    assert_int_equal(r.res.received, 80000);
    assert_int_equal(r.res.complete, 0);
    st.owner = addr("bo@fm.dk", 1); /* another device's upload is not found */
    assert_int_equal(run(f, &st, &r), KURER_ENOTFOUND);
    st.owner = addr("anna@fm.dk", 2);
    assert_int_equal(run(f, &st, &r), KURER_ENOTFOUND);

    assert_int_equal(append(f, 1, "anna@fm.dk", 80000, 40000, NULL), 0);
    assert_int_equal(append(f, 1, "anna@fm.dk", 120000, 124, NULL), KURER_ELIMIT); /* past */
    assert_int_equal(append(f, 1, "anna@fm.dk", 120000, 123, &got), 0);
    assert_int_equal(got, size);
    assert_int_equal(finish(f, 1, "anna@fm.dk", NOW + 1000, &r), 0);
    assert_int_equal(r.res.complete, 1);
    assert_int_equal(r.res.expires_at, NOW + 1000);
    /* a finish asked again answers the row as it is */
    assert_int_equal(finish(f, 1, "anna@fm.dk", NOW + 5000, &r), 0);
    assert_int_equal(r.res.expires_at, NOW + 1000);
    assert_int_equal(append(f, 1, "anna@fm.dk", size, 1, NULL), KURER_ESTATE);

    /* anyone reads any range, across chunk edges; short at the end */
    assert_int_equal(read_range(f, 1, 0, 100, NOW, &r), 0);
    assert_int_equal(r.res.len, 100);
    assert_int_equal(r.res.size, size);
    assert_int_equal(read_range(f, 1, 39990, 40020, NOW, &r), 0);
    assert_int_equal(r.res.len, 40020);
    assert_int_equal(read_range(f, 1, size - 50, KURER_BLOB_CHUNK_MAX, NOW, &r), 0);
    assert_int_equal(r.res.len, 50);
    assert_int_equal(read_range(f, 1, size, 10, NOW, &r), KURER_ELIMIT);
    /* expired: gone for readers, also before the sweep */
    assert_int_equal(read_range(f, 1, 0, 10, NOW + 1000, &r), KURER_ENOTFOUND);
}

void test_blob_sweep(void **state)
{
    fx *f = *state;
    blob_result r;
    assert_int_equal(create(f, 1, "anna@fm.dk", 1000, 0, NOW + 100), 0);
    assert_int_equal(append(f, 1, "anna@fm.dk", 0, 1000, NULL), 0);
    assert_int_equal(finish(f, 1, "anna@fm.dk", NOW + 500, &r), 0);
    assert_int_equal(create(f, 2, "anna@fm.dk", 5000, 0, NOW + 200), 0); /* never finished */
    assert_int_equal(append(f, 2, "anna@fm.dk", 0, 700, NULL), 0);
    assert_int_equal(create(f, 3, "bo@fm.dk", 10, 0, NOW + 900), 0);
    assert_int_equal(append(f, 3, "bo@fm.dk", 0, 10, NULL), 0);

    kurer_store_blob_req sw = req(KURER_BLOB_SWEEP, 0, "x@x.dk");
    sw.now = NOW + 199; /* nothing due */
    assert_int_equal(run(f, &sw, &r), 0);
    assert_int_equal(r.res.swept, 0);
    assert_int_equal(r.res.live_bytes, 1710);
    sw.now = NOW + 200; /* the unfinished upload */
    assert_int_equal(run(f, &sw, &r), 0);
    assert_int_equal(r.res.swept, 1);
    assert_int_equal(r.res.swept_bytes, 700);
    assert_int_equal(r.res.live_bytes, 1010);
    kurer_store_blob_req st = req(KURER_BLOB_STATE, 2, "anna@fm.dk");
    assert_int_equal(run(f, &st, &r), KURER_ENOTFOUND);
    assert_int_equal(read_range(f, 1, 0, 1000, NOW + 200, &r), 0);
    sw.now = NOW + 500; /* the finished one, and its chunks */
    assert_int_equal(run(f, &sw, &r), 0);
    assert_int_equal(r.res.swept, 1);
    assert_int_equal(r.res.swept_bytes, 1000);
    assert_int_equal(r.res.live_bytes, 10);
    assert_int_equal(read_range(f, 1, 0, 10, NOW, &r), KURER_ENOTFOUND);
    /* an id swept may be made again, with no chunk of its past */
    assert_int_equal(create(f, 1, "anna@fm.dk", 20, 0, NOW + 5000), 0);
    assert_int_equal(append(f, 1, "anna@fm.dk", 0, 20, NULL), 0);
    assert_int_equal(finish(f, 1, "anna@fm.dk", NOW + 5000, &r), 0);
    assert_int_equal(read_range(f, 1, 0, 100, NOW, &r), 0);
    assert_int_equal(r.res.len, 20);
}
