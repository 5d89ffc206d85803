/*
 * libFuzzer: pay_adyen_verify on outside bytes (a notification body), and
 * pay_adyen_key_decode on its first 64.  Whatever passes must have produced
 * bounded, terminated events and nothing when refused.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <payments/webhook.h>


static const char  fa_hex[] =
    "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00";


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          n, i;
    pay_err_e       rc;
    unsigned char   key[PAY_ADYEN_KEY_LEN], other[PAY_ADYEN_KEY_LEN];
    pay_secret_t    keys[2];
    pay_event_t     ev[PAY_WEBHOOK_MAX_ITEMS];

    if (size >= 64) {
        (void) pay_adyen_key_decode((const char *) data, 64, other);
    }

    if (pay_adyen_key_decode(fa_hex, 64, key) != 0) {
        abort();
    }

    keys[0].data = key;
    keys[0].len = sizeof(key);
    keys[1].data = (const unsigned char *) "";
    keys[1].len = 0;

    n = 12345;
    rc = pay_adyen_verify((const char *) data, size, keys, 2, ev,
                          PAY_WEBHOOK_MAX_ITEMS, &n);

    if (rc == PAY_ERR_PAYLOAD_TOO_LARGE) {
        /* every item authentic, more of them than the array: only the
         * count, and only past it */
        if (n <= PAY_WEBHOOK_MAX_ITEMS) {
            abort();
        }

        return 0;
    }

    if (rc != PAY_ERR_NONE) {
        /* refused, or authentic and unreadable: never with events */
        if ((rc != PAY_ERR_BAD_SIGNATURE && rc != PAY_ERR_INVALID_REQUEST)
            || n != 0)
        {
            abort();
        }

        return 0;
    }

    if (n == 0 || n > PAY_WEBHOOK_MAX_ITEMS) {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (strlen(ev[i].event_id) >= sizeof(ev[i].event_id)
            || ev[i].event_id[0] == '\0'
            || strlen(ev[i].currency) >= sizeof(ev[i].currency)
            || ev[i].token[0] != '\0' || ev[i].livemode != -1)
        {
            abort();
        }
    }

    return 0;
}
