/*
 * ngx_payments core: the Idempotency-Key header and request fingerprints.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <payments/idempotency.h>


/*
 * An sf-string (RFC 8941 3.3.3) or a bare run of visible ASCII.  The
 * quoted form allows space and only the \" and \\ escapes; anything after
 * the closing quote (parameters, a second member) is refused rather than
 * ignored, so that two different headers never name the same key by
 * accident.
 */
int
pay_idem_key_parse(const char *hdr, size_t len, char *out, size_t *outlen)
{
    size_t         i, n;
    unsigned char  c;

    if (hdr == NULL || out == NULL) {
        return -1;
    }

    out[0] = '\0';

    /* Optional whitespace around a field value is not part of it (RFC
     * 9110 5.5); nginx normally strips it, other callers may not. */
    while (len > 0 && (hdr[0] == ' ' || hdr[0] == '\t')) {
        hdr++;
        len--;
    }

    while (len > 0 && (hdr[len - 1] == ' ' || hdr[len - 1] == '\t')) {
        len--;
    }

    if (len == 0) {
        return -1;
    }

    n = 0;

    if (hdr[0] == '"') {

        for (i = 1; i < len; i++) {
            c = (unsigned char) hdr[i];

            if (c == '"') {
                break;
            }

            if (c == '\\') {
                if (++i == len) {
                    return -1;
                }

                c = (unsigned char) hdr[i];

                if (c != '"' && c != '\\') {
                    return -1;
                }

            } else if (c < 0x20 || c > 0x7e) {
                return -1;
            }

            if (n == PAY_IDEM_KEY_MAX) {
                return -1;
            }

            out[n++] = (char) c;
        }

        /* the closing quote must be the last character */
        if (i != len - 1) {
            return -1;
        }

    } else {

        if (len > PAY_IDEM_KEY_MAX) {
            return -1;
        }

        for (i = 0; i < len; i++) {
            c = (unsigned char) hdr[i];

            if (c < 0x21 || c > 0x7e) {
                return -1;
            }

            out[n++] = (char) c;
        }
    }

    if (n == 0) {
        out[0] = '\0';
        return -1;
    }

    out[n] = '\0';

    if (outlen != NULL) {
        *outlen = n;
    }

    return 0;
}


/*
 * The canonical form is part of what is stored: a fingerprint computed by
 * one release must match the same request's fingerprint in the next one, or
 * every retry across an upgrade would be refused as idempotency_key_reused.
 * So the flags are fixed here and never change:
 *
 *   JSON_COMPACT      no insignificant whitespace
 *   JSON_SORT_KEYS    member order does not matter (bytewise key order)
 *   JSON_ENSURE_ASCII every non-ASCII character as \uXXXX: "\u00e9" and a
 *                     raw "é" in the body already decode to the same
 *                     string, and an ASCII-only form does not depend on
 *                     how any later layer handles UTF-8
 *   JSON_ENCODE_ANY   a non-object root still has a form
 *
 * Numbers keep jansson's formatting: the bodies we fingerprint carry none
 * (amounts are strings).
 */
#define PAY_CANONICAL_FLAGS \
    (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY)


char *
pay_json_canonical(const json_t *root)
{
    if (root == NULL) {
        return NULL;
    }

    return json_dumps(root, PAY_CANONICAL_FLAGS);
}


int
pay_fingerprint(const char *method, const char *path, const json_t *body,
    char hex[65])
{
    static const char  digits[] = "0123456789abcdef";

    int            rc;
    char          *canon;
    unsigned int   mdlen, i;
    EVP_MD_CTX    *ctx;
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (method == NULL || path == NULL || hex == NULL) {
        return -1;
    }

    hex[0] = '\0';

    /* "\n" separates the parts: a method or path holding one could make
     * two different requests hash the same bytes. */
    if (strchr(method, '\n') != NULL || strchr(path, '\n') != NULL) {
        return -1;
    }

    /* No body hashes as an empty third part. */
    canon = NULL;
    if (body != NULL) {
        canon = pay_json_canonical(body);
        if (canon == NULL) {
            return -1;
        }
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        free(canon);
        return -1;
    }

    rc = -1;
    mdlen = 0;

    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
        && EVP_DigestUpdate(ctx, method, strlen(method)) == 1
        && EVP_DigestUpdate(ctx, "\n", 1) == 1
        && EVP_DigestUpdate(ctx, path, strlen(path)) == 1
        && EVP_DigestUpdate(ctx, "\n", 1) == 1
        && (canon == NULL
            || EVP_DigestUpdate(ctx, canon, strlen(canon)) == 1)
        && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1
        && mdlen == 32)
    {
        for (i = 0; i < mdlen; i++) {
            hex[2 * i] = digits[md[i] >> 4];
            hex[2 * i + 1] = digits[md[i] & 0x0f];
        }

        hex[64] = '\0';
        rc = 0;
    }

    EVP_MD_CTX_free(ctx);
    free(canon);

    return rc;
}
