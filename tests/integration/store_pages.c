/* store_pages HOME OUT: every page of HOME/store.db and every frame of HOME/store.db-wal,
 * decrypted, written to OUT (client_receipts_expiry), so that a grep of OUT is a grep of
 * everything the two files hold: live rows, free pages, the unused space inside b-tree pages,
 * and every older page image still in the WAL.
 *
 * SQLCipher encrypts each page on its own (SQLCipher 3.4, as Debian ships it: AES-256-CBC, the
 * page's IV in its reserved tail; page 1 begins with the 16-byte salt, kept plain), in the
 * database file and in the WAL alike; a grep of the files themselves would never find any
 * text. The key is the store's: Argon2id of KURER_PASSPHRASE with the salt and parameters of
 * HOME/store.kdf, as the client derives it (the raw-key form bypasses SQLCipher's own KDF). The
 * page size and the reserved bytes are found by decrypting page 1 and checking its SQLite
 * header (page size, WAL versions, reserve): a wrong key or layout fails here, never passes as
 * "nothing found". The HMAC is not checked (not needed to read the plaintext). Exits 0 after
 * "pages N frames M", or 1 with a reason. Reads the files only: run it with no client holding
 * the home, or on a copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kurer/keys.h"
#include "kurer/util.h"

#define FILE_MAX (256L * 1024 * 1024)

static int decrypt(const uint8_t key[32], const uint8_t *iv, const uint8_t *in, size_t n,
                   uint8_t *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0,
        ok = c != NULL && EVP_DecryptInit_ex(c, EVP_aes_256_cbc(), NULL, key, iv) == 1 &&
             EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
             EVP_DecryptUpdate(c, out, &len, in, (int)n) == 1 &&
             EVP_DecryptFinal_ex(c, out + len, &fin) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok && (size_t)(len + fin) == n ? 0 : -1;
}

/* One page (pgno 1 has the salt first): its plaintext (page - reserve bytes, the salt's place
 * in page 1 left as zeros) into out. */
static int page_plain(const uint8_t key[32], const uint8_t *page, size_t size, size_t reserve,
                      int first, uint8_t *out)
{
    size_t off = first ? 16 : 0;
    memset(out, 0, size);
    return decrypt(key, page + size - reserve, page + off, size - reserve - off, out + off);
}

/* The layout in which page 1 decrypts to a valid header. */
static int layout(const uint8_t key[32], const uint8_t *db, size_t len, size_t *size,
                  size_t *reserve)
{
    static const size_t sizes[] = {1024, 4096, 2048, 8192, 16384, 32768, 65536};
    static const size_t reserves[] = {48, 80, 32, 64};
    uint8_t *p = malloc(65536);
    if (p == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        for (size_t j = 0; j < sizeof(reserves) / sizeof(reserves[0]); j++) {
            size_t s = sizes[i], r = reserves[j];
            if (len < s || page_plain(key, db, s, r, 1, p) != 0)
                continue;
            size_t hs = ((size_t)p[16] << 8 | p[17]) == 1 ? 65536 : ((size_t)p[16] << 8 | p[17]);
            if (hs == s && (p[18] == 1 || p[18] == 2) && (p[19] == 1 || p[19] == 2) && p[20] == r &&
                p[21] == 64 && p[22] == 32 && p[23] == 32) {
                *size = s;
                *reserve = r;
                free(p);
                return 0;
            }
        }
    free(p);
    return -1;
}

int main(int argc, char **argv)
{
    const char *pass = getenv("KURER_PASSPHRASE");
    char path[4096];
    uint8_t *kdf = NULL, *db = NULL, *wal = NULL, key[32], salt[KURER_SALT_LEN];
    size_t kdf_len = 0, db_len = 0, wal_len = 0, size = 0, reserve = 0;
    kurer_kdf_params p;
    if (argc != 3 || pass == NULL) {
        fprintf(stderr, "usage: KURER_PASSPHRASE=... store_pages HOME OUT\n");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/store.kdf", argv[1]);
    if (kurer_file_read(path, 4096, &kdf, &kdf_len) != 0 ||
        kurer_kdf_record_decode(kdf, kdf_len, &p, salt) != 0 ||
        kurer_kdf_derive(key, pass, strlen(pass), salt, &p) != 0) {
        fprintf(stderr, "store_pages: cannot derive the store key from %s\n", path);
        return 1;
    }
    free(kdf);
    snprintf(path, sizeof(path), "%s/store.db", argv[1]);
    if (kurer_file_read(path, FILE_MAX, &db, &db_len) != 0 ||
        layout(key, db, db_len, &size, &reserve) != 0) {
        fprintf(stderr, "store_pages: %s does not decrypt with the store key\n", path);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/store.db-wal", argv[1]);
    if (kurer_file_read(path, FILE_MAX, &wal, &wal_len) != 0)
        wal_len = 0; /* no WAL (or an empty one) */
    FILE *out = fopen(argv[2], "wb");
    uint8_t *plain = malloc(size);
    long pages = 0, frames = 0;
    int bad = out == NULL || plain == NULL;
    for (size_t off = 0; !bad && off + size <= db_len; off += size, pages++) {
        bad = page_plain(key, db + off, size, reserve, off == 0, plain) != 0;
        bad |= fwrite(plain, 1, size, out) != size;
    }
    /* WAL: a 32-byte header, then frames of a 24-byte header and one page each (the header's
     * first word is the page number). */
    for (size_t off = 32; !bad && off + 24 + size <= wal_len; off += 24 + size, frames++) {
        const uint8_t *h = wal + off;
        uint32_t pgno = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        bad = page_plain(key, h + 24, size, reserve, pgno == 1, plain) != 0;
        bad |= fwrite(plain, 1, size, out) != size;
    }
    if (out != NULL && fclose(out) != 0)
        bad = 1;
    free(plain);
    free(db);
    free(wal);
    if (bad) {
        fprintf(stderr, "store_pages: cannot decrypt or write the pages\n");
        return 1;
    }
    printf("pages %ld frames %ld\n", pages, frames);
    return 0;
}
