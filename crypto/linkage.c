/* The linkage check: how libsodium, protobuf-c and SQLite symbols were bound in this process.
 *
 * libsignal-protocol-c 2.3.3 exports its own `crypto_hash_sha512` and an old private copy of
 * protobuf-c, all unversioned. The dynamic linker binds a reference to the first object in the
 * lookup scope that defines the name, and glibc lets an unversioned definition satisfy a versioned
 * reference (`protobuf_c_message_unpack@LIBPROTOBUF_C_1.0.0`), so symbol versions do not save
 * us: only the load order does, and that follows the link order. With libsignal first, our calls,
 * libsodium's own calls (it reaches crypto_hash_sha512 through its PLT) and libprotobuf-c's own
 * calls land in libsignal's copies.
 *
 * Two views are checked for each name:
 *  - the address as our code sees it (taken here, through our GOT): where our calls go;
 *  - the global lookup (dlsym(RTLD_DEFAULT)): where the libraries' own PLT calls go.
 * If an address lands in the main program (a canonical PLT entry of a non-PIE executable, or a
 * sanitizer interceptor linked into it) or in a sanitizer runtime, it is not the definition: we
 * then look for the first loaded object that defines the name, in load order, which is where
 * the stub or interceptor forwards to. */
#define _GNU_SOURCE 1

#include "linkage.h"
#include "kurer/error.h"

#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>
#include <sodium.h>

typedef void (*any_fn)(void);

struct expected {
    const char *name;
    any_fn ours; /* the address as taken from our code */
    const char *lib;
};

#define SODIUM    "libsodium.so"
#define PROTOBUFC "libprotobuf-c.so"

/* The libsodium calls that clash or that the crypto provider relies on, and the protobuf-c
 * entry points proto/ and libsignal call. */
static const struct expected expected[] = {
    {"crypto_hash_sha512", (any_fn)crypto_hash_sha512, SODIUM},
    {"crypto_hash_sha512_init", (any_fn)crypto_hash_sha512_init, SODIUM},
    {"crypto_auth_hmacsha256_init", (any_fn)crypto_auth_hmacsha256_init, SODIUM},
    {"crypto_sign_ed25519_detached", (any_fn)crypto_sign_ed25519_detached, SODIUM},
    {"randombytes_buf", (any_fn)randombytes_buf, SODIUM},
    {"sodium_init", (any_fn)sodium_init, SODIUM},
    {"protobuf_c_message_unpack", (any_fn)protobuf_c_message_unpack, PROTOBUFC},
    {"protobuf_c_message_pack", (any_fn)protobuf_c_message_pack, PROTOBUFC},
    {"protobuf_c_message_get_packed_size", (any_fn)protobuf_c_message_get_packed_size, PROTOBUFC},
    {"protobuf_c_message_free_unpacked", (any_fn)protobuf_c_message_free_unpacked, PROTOBUFC},
};

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Sanitizer runtimes interpose libc functions; if one ever interposed ours, the definition we
 * care about is behind it. */
static int is_sanitizer_runtime(const char *path)
{
    const char *b = base_name(path);
    return has_prefix(b, "libasan.so") || has_prefix(b, "libubsan.so") ||
           has_prefix(b, "libtsan.so") || has_prefix(b, "liblsan.so") ||
           has_prefix(b, "libclang_rt.");
}

/* ---- the loaded objects, in load order ---- */

struct objects {
    char **names; /* names[0] is the main program ("") */
    size_t n, cap;
    const void *addr; /* for in_main: an address to place */
    int addr_in_main;
    int plain_sqlite;
};

static int collect_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct objects *o = data;
    const char *name = info->dlpi_name != NULL ? info->dlpi_name : "";

    if (o->n == 0 && o->addr != NULL) {
        /* The first object is the main program: is addr inside one of its segments? */
        uintptr_t a = (uintptr_t)o->addr;
        for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
            uintptr_t lo = (uintptr_t)info->dlpi_addr + ph->p_vaddr;
            if (ph->p_type == PT_LOAD && a >= lo && a - lo < ph->p_memsz)
                o->addr_in_main = 1;
        }
    }
    /* SQLCipher and plain SQLite export the same sqlite3_* names; both in one process means
     * some calls may reach the unencrypted one. */
    if (has_prefix(base_name(name), "libsqlite3.so"))
        o->plain_sqlite = 1;

    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 32;
        char **nn = realloc(o->names, cap * sizeof(*nn));
        if (nn == NULL)
            return -1;
        o->names = nn;
        o->cap = cap;
    }
    o->names[o->n] = strdup(name);
    if (o->names[o->n] == NULL)
        return -1;
    o->n++;
    return 0;
}

static void objects_free(struct objects *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->names[i]);
    free(o->names);
    memset(o, 0, sizeof(*o));
}

/* Collected outside the callback: dlopen inside dl_iterate_phdr would take the loader's locks
 * in the opposite order from a concurrent dlopen. */
static int objects_collect(struct objects *o, const void *addr)
{
    memset(o, 0, sizeof(*o));
    o->addr = addr;
    if (dl_iterate_phdr(collect_cb, o) != 0) {
        objects_free(o);
        return KURER_ENOMEM;
    }
    return 0;
}

/* The first loaded object after the main program (and not a sanitizer runtime) that defines
 * name itself: where a canonical PLT entry or an interceptor ends up. NULL if none. */
static const char *first_definer(const struct objects *o, const char *name)
{
    for (size_t i = 1; i < o->n; i++) {
        const char *path = o->names[i];
        if (path[0] == '\0' || is_sanitizer_runtime(path))
            continue;
        void *h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
        if (h == NULL)
            continue;
        void *p = dlsym(h, name);
        Dl_info di;
        /* dlsym on a handle also searches that object's dependencies: keep only a definition in
         * the object itself. */
        int here = p != NULL && dladdr(p, &di) != 0 && di.dli_fname != NULL &&
                   strcmp(di.dli_fname, path) == 0;
        dlclose(h);
        if (here)
            return path;
    }
    return NULL;
}

/* 1 if a call through addr reaches name in a library whose file name starts with lib. */
static int lands_in(const void *addr, const char *name, const char *lib)
{
    if (addr == NULL)
        return 0;
    struct objects o;
    if (objects_collect(&o, addr) != 0)
        return 0;
    const char *where = NULL;
    Dl_info di;
    if (o.addr_in_main) {
        where = first_definer(&o, name);
    } else if (dladdr(addr, &di) != 0 && di.dli_fname != NULL) {
        where = is_sanitizer_runtime(di.dli_fname) ? first_definer(&o, name) : di.dli_fname;
    }
    int ok = where != NULL && has_prefix(base_name(where), lib);
    objects_free(&o);
    return ok;
}

/* Any exported sqlite3_* must come from a library that has SQLCipher's sqlite3_key. This
 * catches a plain SQLite under another file name (bundled into some other library). */
static int sqlite_is_sqlcipher(void)
{
    void *ver = dlsym(RTLD_DEFAULT, "sqlite3_libversion");
    if (ver == NULL)
        return 1;
    void *key = dlsym(RTLD_DEFAULT, "sqlite3_key");
    Dl_info a, b;
    if (key == NULL || dladdr(ver, &a) == 0 || dladdr(key, &b) == 0 || a.dli_fname == NULL ||
        b.dli_fname == NULL)
        return 0;
    return strcmp(a.dli_fname, b.dli_fname) == 0;
}

int kurer__linkage_check(void)
{
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const struct expected *e = &expected[i];
        /* Our calls. */
        if (!lands_in((const void *)e->ours, e->name, e->lib))
            return KURER_ELINKAGE;
        /* The libraries' own calls (libsodium calls crypto_hash_sha512 through its PLT). */
        if (!lands_in(dlsym(RTLD_DEFAULT, e->name), e->name, e->lib))
            return KURER_ELINKAGE;
    }

    struct objects o;
    if (objects_collect(&o, NULL) != 0)
        return KURER_ENOMEM;
    int plain = o.plain_sqlite;
    objects_free(&o);
    if (plain || !sqlite_is_sqlcipher())
        return KURER_ELINKAGE;
    return 0;
}
