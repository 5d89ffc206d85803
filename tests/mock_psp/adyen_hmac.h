/*
 * Mock PSP: Adyen's notification HMAC (PSP_FACTS.md), on its own so that
 * the mock's tests can link it and check it against Adyen's vectors.
 * Nothing here but OpenSSL.
 */

#ifndef MOCK_ADYEN_HMAC_H
#define MOCK_ADYEN_HMAC_H

#include <stddef.h>


/* base64 of 32 bytes, and its NUL */
#define MOCK_ADYEN_HMAC_LEN  45


int mock_adyen_hmac_key(const char *hex, unsigned char key[32]);
char *mock_adyen_hmac_data(const char *psp_reference,
    const char *original_reference, const char *merchant_account,
    const char *merchant_reference, long long value, const char *currency,
    const char *event_code, const char *success);
int mock_adyen_hmac_sign(const unsigned char key[32], const char *data,
    size_t len, char out[MOCK_ADYEN_HMAC_LEN]);


#endif /* MOCK_ADYEN_HMAC_H */
