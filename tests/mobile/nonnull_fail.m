/* The negative case of ctest mobile_objc_module: each call passes NULL where the public headers
 * say a pointer must not be NULL, so each must be an error under -Werror (-Wnonnull). The test
 * expects one error per marker below (NONNULL, the parameter): one missing means an annotation was
 * lost. */
@import Kurer;

int kurer_ios_misuse(kurer *k);

int kurer_ios_misuse(kurer *k)
{
    kurer *out = NULL;
    const char *to = "bob@example.dk";
    int rc = kurer_open_with(NULL, &out);                   /* NONNULL o (kurer.h) */
    rc |= kurer_send_async(k, to, 1, NULL, 10, NULL, NULL); /* NONNULL text */
    rc |= kurer_history(k, NULL, NULL, NULL);               /* NONNULL fn */
    rc |= kurer_wake(NULL, 1000, NULL, NULL);               /* NONNULL k (mobile.h) */
    rc |= kurer_level_parse(NULL, NULL);                    /* NONNULL s, NONNULL out (level.h) */
    kurer_set_foreground(NULL, 1);                          /* NONNULL k */
    return rc;
}
