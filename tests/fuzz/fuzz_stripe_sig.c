/*
 * libFuzzer: pay_stripe_verify on outside bytes.  The first line is the
 * Stripe-Signature header, the rest the body.  When the input's length is
 * odd, a correct v1 for the header's t is appended too, so that the paths
 * after the HMAC (staleness, several v1, rotation) are reached as well.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <payments/webhook.h>


#define FS_NOW  1700000000LL


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char     *nl, *t;
    size_t          hlen, blen, i;
    char           *h, *payload;
    unsigned char   mac[32];
    unsigned int    maclen;
    pay_err_e       rc;
    pay_secret_t    secrets[2] = {
        { (const unsigned char *) "whsec_old", 9 },
        { (const unsigned char *) "whsec_test_secret_123", 21 },
    };

    nl = memchr(data, '\n', size);
    hlen = nl ? (size_t) (nl - (const char *) data) : size;
    blen = nl ? size - hlen - 1 : 0;

    rc = pay_stripe_verify((const char *) data, hlen, nl ? nl + 1 : "", blen,
                           secrets, 2, FS_NOW, 300);
    if (rc != PAY_ERR_NONE && rc != PAY_ERR_BAD_SIGNATURE
        && rc != PAY_ERR_STALE_WEBHOOK)
    {
        abort();
    }

    if (!(size & 1) || hlen > 8000) {
        return 0;
    }

    /* sign "t.body" for the first t= in the header, as Stripe would */
    t = NULL;
    for (i = 0; i + 1 < hlen; i++) {
        if (data[i] == 't' && data[i + 1] == '='
            && (i == 0 || data[i - 1] == ','))
        {
            t = (const char *) data + i + 2;
            break;
        }
    }

    if (t == NULL) {
        return 0;
    }

    for (i = 0; t + i < (const char *) data + hlen && t[i] != ','; i++) {
        /* void */
    }

    payload = malloc(i + 1 + blen + 1);
    h = malloc(hlen + 70);
    if (payload == NULL || h == NULL) {
        free(payload);
        free(h);
        return 0;
    }

    memcpy(payload, t, i);
    payload[i] = '.';
    if (blen) {
        memcpy(payload + i + 1, nl + 1, blen);
    }

    HMAC(EVP_sha256(), secrets[1].data, (int) secrets[1].len,
         (unsigned char *) payload, i + 1 + blen, mac, &maclen);

    memcpy(h, data, hlen);
    memcpy(h + hlen, ",v1=", 4);
    for (i = 0; i < 32; i++) {
        snprintf(h + hlen + 4 + 2 * i, 3, "%02x", mac[i]);
    }

    rc = pay_stripe_verify(h, hlen + 68, nl ? nl + 1 : "", blen, secrets, 2,
                           FS_NOW, 300);
    if (rc != PAY_ERR_NONE && rc != PAY_ERR_BAD_SIGNATURE
        && rc != PAY_ERR_STALE_WEBHOOK)
    {
        abort();
    }

    free(payload);
    free(h);

    return 0;
}
