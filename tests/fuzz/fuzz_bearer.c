/*
 * libFuzzer: the Authorization header and API key syntax.
 *
 * A token pay_bearer_token accepts lies inside the input, is non-empty and
 * visible ASCII; a key pay_apikey_parse accepts has the documented shape;
 * the hash of anything is 64 lower-case hex characters and equal to
 * itself, and pay_hash_equal never reads past a NUL.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <payments/apikey.h>


static void
fz_check_key(const char *key, size_t len)
{
    size_t        i;
    pay_apikey_t  k;

    if (pay_apikey_parse(key, len, &k) != 0) {
        return;
    }

    if (len != 64 || memcmp(key, "mk_", 3) != 0
        || (strcmp(k.mode, "test") != 0 && strcmp(k.mode, "live") != 0)
        || strlen(k.key_id) != PAY_APIKEY_ID_LEN
        || memcmp(k.key_id, key + 8, PAY_APIKEY_ID_LEN) != 0)
    {
        __builtin_trap();
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) key[i] < 0x21 || (unsigned char) key[i] > 0x7e) {
            __builtin_trap();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t       i, toklen;
    const char  *hdr, *tok;
    char         h1[65], h2[65], *s;

    hdr = (const char *) data;

    if (pay_bearer_token(hdr, size, &tok, &toklen) == 0) {
        if (toklen == 0 || tok < hdr || tok + toklen > hdr + size) {
            __builtin_trap();
        }

        for (i = 0; i < toklen; i++) {
            if ((unsigned char) tok[i] < 0x21
                || (unsigned char) tok[i] > 0x7e)
            {
                __builtin_trap();
            }
        }

        fz_check_key(tok, toklen);
    }

    fz_check_key(hdr, size);

    pay_apikey_hash(hdr, size, h1);
    pay_apikey_hash(hdr, size, h2);

    if (strlen(h1) != 64 || strspn(h1, "0123456789abcdef") != 64
        || !pay_hash_equal(h1, h2))
    {
        __builtin_trap();
    }

    /* the input as a NUL-terminated "hash" compared with a real one */
    s = malloc(size + 1);
    if (s == NULL) {
        return 0;
    }

    memcpy(s, data, size);
    s[size] = '\0';

    if (pay_hash_equal(s, h1) != (strcmp(s, h1) == 0)) {
        __builtin_trap();
    }

    free(s);

    return 0;
}
