/*
 * ngx_payments core: merchant API keys (include/payments/apikey.h).
 *
 * Only syntax is checked here: whether a key exists is the database's
 * answer (pay_auth by key id), whether it is the right key is the
 * constant-time comparison of its SHA-256 with the stored hash.
 */

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <payments/apikey.h>


#define PAY_APIKEY_SECRET_LEN  43
#define PAY_APIKEY_LEN         (3 + 4 + 1 + PAY_APIKEY_ID_LEN + 1           \
                                + PAY_APIKEY_SECRET_LEN)
#define PAY_HASH_HEX_LEN       64


static int
pay_is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
           || (c >= 'a' && c <= 'z');
}


static int
pay_is_b64url(unsigned char c)
{
    return pay_is_alnum(c) || c == '-' || c == '_';
}


int
pay_bearer_token(const char *hdr, size_t len, const char **tok,
    size_t *toklen)
{
    size_t  i, start, end;

    if (hdr == NULL || tok == NULL || toklen == NULL) {
        return -1;
    }

    /* "Bearer" followed by at least one space: a scheme like "Bearerx"
     * or a bare "Bearer" is not a bearer credential. */
    if (len < 7 || strncasecmp(hdr, "Bearer", 6) != 0 || hdr[6] != ' ') {
        return -1;
    }

    for (i = 7; i < len && hdr[i] == ' '; i++) {
        /* skip the separating spaces */
    }

    start = i;
    end = len;

    /* Trailing whitespace is OWS around the field value, not part of the
     * token; nginx usually strips it already. */
    while (end > start && (hdr[end - 1] == ' ' || hdr[end - 1] == '\t')) {
        end--;
    }

    if (end == start) {
        return -1;
    }

    /* The token is visible ASCII only: control characters (a NUL could
     * truncate the key later on), spaces inside and non-ASCII bytes are
     * refused outright rather than passed on to a database lookup. */
    for (i = start; i < end; i++) {
        unsigned char c = (unsigned char) hdr[i];

        if (c < 0x21 || c > 0x7e) {
            return -1;
        }
    }

    *tok = hdr + start;
    *toklen = end - start;

    return 0;
}


int
pay_apikey_parse(const char *key, size_t len, pay_apikey_t *k)
{
    size_t       i;
    const char  *p;

    if (k != NULL) {
        memset(k, 0, sizeof(*k));
    }

    if (key == NULL || k == NULL || len != PAY_APIKEY_LEN) {
        return -1;
    }

    if (memcmp(key, "mk_", 3) != 0) {
        return -1;
    }

    p = key + 3;

    if (memcmp(p, "test_", 5) != 0 && memcmp(p, "live_", 5) != 0) {
        return -1;
    }

    p += 5;

    for (i = 0; i < PAY_APIKEY_ID_LEN; i++) {
        if (!pay_is_alnum((unsigned char) p[i])) {
            return -1;
        }
    }

    if (p[PAY_APIKEY_ID_LEN] != '_') {
        return -1;
    }

    /* The secret's last character is not checked for canonical padding
     * bits: a non-canonical key simply hashes to something the database
     * does not hold, and refusing it here would only make key generators
     * that draw 43 random characters fail in confusing ways. */
    for (i = PAY_APIKEY_ID_LEN + 1; i < PAY_APIKEY_ID_LEN + 1
                                         + PAY_APIKEY_SECRET_LEN; i++)
    {
        if (!pay_is_b64url((unsigned char) p[i])) {
            return -1;
        }
    }

    memcpy(k->mode, key + 3, 4);
    k->mode[4] = '\0';
    memcpy(k->key_id, p, PAY_APIKEY_ID_LEN);
    k->key_id[PAY_APIKEY_ID_LEN] = '\0';

    return 0;
}


void
pay_apikey_hash(const char *key, size_t len, char hex[65])
{
    static const char  digits[] = "0123456789abcdef";
    unsigned char      md[EVP_MAX_MD_SIZE];
    unsigned int       mdlen, i;

    /* An empty string never equals a stored hash (pay_hash_equal wants
     * 64 characters), so a failure here fails closed. */
    hex[0] = '\0';

    if (key == NULL) {
        return;
    }

    if (EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL) != 1
        || mdlen != PAY_HASH_HEX_LEN / 2)
    {
        return;
    }

    for (i = 0; i < mdlen; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0x0f];
    }

    hex[PAY_HASH_HEX_LEN] = '\0';
}


int
pay_hash_equal(const char *a, const char *b)
{
    /* The lengths are public (every hash has 64 characters); only the
     * contents are compared in constant time. */
    if (a == NULL || b == NULL
        || strnlen(a, PAY_HASH_HEX_LEN + 1) != PAY_HASH_HEX_LEN
        || strnlen(b, PAY_HASH_HEX_LEN + 1) != PAY_HASH_HEX_LEN)
    {
        return 0;
    }

    return CRYPTO_memcmp(a, b, PAY_HASH_HEX_LEN) == 0;
}
