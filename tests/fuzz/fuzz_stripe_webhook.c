/*
 * libFuzzer: the Stripe-Signature header and the event parser, on outside
 * bytes.  The first line is the header, the rest the body.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <payments/webhook.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char   *nl;
    size_t        hlen;
    pay_event_t   ev;
    pay_secret_t  secret = { (const unsigned char *) "whsec_fuzz", 10 };

    nl = memchr(data, '\n', size);
    hlen = nl ? (size_t) (nl - (const char *) data) : size;

    (void) pay_stripe_verify((const char *) data, hlen,
                             nl ? nl + 1 : "", nl ? size - hlen - 1 : 0,
                             &secret, 1, 1700000000, 300);

    if (pay_stripe_parse_event((const char *) data, size, &ev) == 0) {
        /* what is read is bounded and terminated */
        if (strlen(ev.event_id) >= sizeof(ev.event_id)
            || strlen(ev.currency) >= sizeof(ev.currency))
        {
            abort();
        }
    }

    return 0;
}
