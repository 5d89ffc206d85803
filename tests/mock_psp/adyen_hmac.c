/*
 * Mock PSP: Adyen's notification HMAC.  Each NotificationRequestItem is
 * signed on its own: base64(HMAC-SHA256(key, data)), the key being the
 * 64-hex-digit HMAC key decoded, data the eight fields
 * pspReference:originalReference:merchantAccountCode:merchantReference:
 * amount.value:amount.currency:eventCode:success, a missing one empty, no
 * escaping.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "adyen_hmac.h"


static int mock_hex_digit(char c);


static int
mock_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* 64 hex digits, either case, into 32 bytes; -1 otherwise. */
int
mock_adyen_hmac_key(const char *hex, unsigned char key[32])
{
    int     hi, lo;
    size_t  i;

    if (strlen(hex) != 64) {
        return -1;
    }

    for (i = 0; i < 32; i++) {
        hi = mock_hex_digit(hex[2 * i]);
        lo = mock_hex_digit(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        key[i] = (unsigned char) (hi << 4 | lo);
    }

    return 0;
}


/* The signed string (malloc'd), NULL fields empty; NULL if out of memory. */
char *
mock_adyen_hmac_data(const char *psp_reference,
    const char *original_reference, const char *merchant_account,
    const char *merchant_reference, long long value, const char *currency,
    const char *event_code, const char *success)
{
    char  *data;

#define MOCK_S(s)  ((s) != NULL ? (s) : "")

    if (asprintf(&data, "%s:%s:%s:%s:%lld:%s:%s:%s", MOCK_S(psp_reference),
                 MOCK_S(original_reference), MOCK_S(merchant_account),
                 MOCK_S(merchant_reference), value, MOCK_S(currency),
                 MOCK_S(event_code), MOCK_S(success))
        < 0)
    {
        return NULL;
    }

#undef MOCK_S

    return data;
}


int
mock_adyen_hmac_sign(const unsigned char key[32], const char *data,
    size_t len, char out[MOCK_ADYEN_HMAC_LEN])
{
    unsigned       n;
    unsigned char  mac[EVP_MAX_MD_SIZE];

    if (HMAC(EVP_sha256(), key, 32, (const unsigned char *) data, len, mac,
             &n)
        == NULL || n != 32)
    {
        return -1;
    }

    return EVP_EncodeBlock((unsigned char *) out, mac, 32) == 44 ? 0 : -1;
}
