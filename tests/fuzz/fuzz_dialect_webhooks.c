/*
 * libFuzzer: every dialect's webhook entry point (dialect.h), as the
 * adapter calls it, on outside bytes: a header value and a body.  The
 * first byte picks the dialect from the table (a new dialect is fuzzed
 * without a new harness), the second the header's length.  Secrets are
 * fixed, so this fuzzes the refusal paths and what runs before a
 * signature is known to be bad; the event readers have fuzz_webhook_events.
 * The header lookup answers every name with the header: for adyen, a body
 * without notificationItems takes the HmacSignature (transfer) way.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <payments/dialect.h>


typedef struct {
    const char  *value;
    size_t       len;
} fd_header_t;


static const char *
fd_lookup(void *data, const char *name, size_t *len, unsigned *count)
{
    fd_header_t  *h = data;

    (void) name;

    *len = h->len;
    *count = 1;

    return h->value;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t               n, hlen, i, ndialects, max;
    char                *header, *body;
    fd_header_t          h;
    pay_secret_t         sec;
    pay_event_t          ev[PAY_WEBHOOK_MAX_ITEMS], *all;
    pay_wh_verdict_t     v;
    pay_webhook_conf_t   conf;
    const pay_dialect_t *d;
    static const unsigned char  key[32] = { 1, 2, 3, 4 };

    if (size < 2) {
        return 0;
    }

    for (ndialects = 0; pay_dialects[ndialects] != NULL; ndialects++) {
        /* count */
    }

    d = pay_dialects[data[0] % ndialects];
    hlen = data[1];
    data += 2;
    size -= 2;

    if (hlen > size) {
        hlen = size;
    }

    header = malloc(hlen + 1);
    body = malloc(size - hlen + 1);
    if (header == NULL || body == NULL) {
        free(header);
        free(body);
        return 0;
    }

    memcpy(header, data, hlen);
    header[hlen] = '\0';
    memcpy(body, data + hlen, size - hlen);
    body[size - hlen] = '\0';

    memset(&conf, 0, sizeof(conf));
    sec.data = key;
    sec.len = sizeof(key);
    conf.secrets = &sec;
    conf.nsecrets = 1;
    conf.header = "Payments-Verification";
    conf.tolerance = 300;
    conf.merchant_account = "TestMerchant";

    h.value = header;
    h.len = hlen;

    memset(&v, 0, sizeof(v));
    all = ev;
    max = PAY_WEBHOOK_MAX_ITEMS;
    d->webhook(&conf, fd_lookup, &h, body, size - hlen, 1700000000, ev,
               max, &n, &v);

    /* more events than the array (an authentic Adyen batch): none, the
     * count past it; read again with room for all, as the glue does */
    if (v.reason == PAY_WH_MORE) {
        if (n != 0 || v.err != PAY_ERR_NONE
            || v.nneeded <= PAY_WEBHOOK_MAX_ITEMS)
        {
            abort();
        }

        max = v.nneeded;
        all = malloc(max * sizeof(pay_event_t));
        if (all == NULL) {
            free(header);
            free(body);
            return 0;
        }

        memset(&v, 0, sizeof(v));
        d->webhook(&conf, fd_lookup, &h, body, size - hlen, 1700000000, all,
                   max, &n, &v);

        if (v.reason == PAY_WH_MORE) {
            abort();
        }
    }

    /* a refusal never comes with events, an acceptance always does; but a
     * batch of this account's items and another's: both, counted apart */
    if (v.reason == PAY_WH_ACCOUNT && n != 0) {
        if (v.nforeign == 0 || n + v.nforeign > max) {
            abort();
        }

    } else if ((v.err != PAY_ERR_NONE) != (n == 0)
               || n > max
               || (v.reason != PAY_WH_ACCOUNT && v.nforeign != 0))
    {
        abort();
    }

    for (i = 0; i < n + (v.reason == PAY_WH_ACCOUNT ? v.nforeign : 0); i++) {
        if (strlen(all[i].event_id) >= sizeof(all[i].event_id)
            || strlen(all[i].payment_ref) >= sizeof(all[i].payment_ref)
            || strlen(all[i].object_ref) >= sizeof(all[i].object_ref)
            || all[i].kind < PAY_EVT_SUCCEEDED
            || all[i].kind > PAY_EVT_KIND_MAX)
        {
            abort();
        }
    }

    if (all != ev) {
        free(all);
    }

    free(header);
    free(body);

    return 0;
}
