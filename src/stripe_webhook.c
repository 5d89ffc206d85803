/*
 * ngx_payments core: Stripe webhooks (PSP_FACTS.md).  The signature is
 * checked over the raw bytes before the body is parsed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <payments/psp.h>
#include <payments/time.h>
#include <payments/webhook.h>


#define PAY_STRIPE_HEADER_MAX  8192
#define PAY_STRIPE_V1_MAX      8


static int
pay_hex32(const char *s, size_t len, unsigned char out[32])
{
    size_t  i;
    int     hi, lo;

    if (len != 64) {
        return -1;
    }

    for (i = 0; i < 32; i++) {
        hi = s[2 * i];
        lo = s[2 * i + 1];

        /* Stripe writes lower-case hex; anything else is not its signature */
        hi = (hi >= '0' && hi <= '9') ? hi - '0'
             : (hi >= 'a' && hi <= 'f') ? hi - 'a' + 10 : -1;
        lo = (lo >= '0' && lo <= '9') ? lo - '0'
             : (lo >= 'a' && lo <= 'f') ? lo - 'a' + 10 : -1;

        if (hi < 0 || lo < 0) {
            return -1;
        }

        out[i] = (unsigned char) (hi << 4 | lo);
    }

    return 0;
}


pay_err_e
pay_stripe_verify(const char *header, size_t hlen, const char *body,
    size_t blen, const pay_secret_t *secrets, size_t nsecrets, int64_t now,
    int64_t tolerance)
{
    int             have_t, match;
    size_t          i, j, nv1, klen;
    int64_t         t;
    const char     *p, *end, *item, *comma, *v;
    unsigned int    maclen;
    unsigned char   v1[PAY_STRIPE_V1_MAX][32], mac[32], *signed_payload;
    char            tbuf[24];
    int             tlen;

    if (header == NULL || hlen == 0 || hlen > PAY_STRIPE_HEADER_MAX
        || nsecrets == 0)
    {
        return PAY_ERR_BAD_SIGNATURE;
    }

    have_t = 0;
    t = 0;
    nv1 = 0;
    end = header + hlen;

    for (item = header; item < end; item = comma + 1) {
        comma = memchr(item, ',', (size_t) (end - item));
        if (comma == NULL) {
            comma = end;
        }

        p = memchr(item, '=', (size_t) (comma - item));
        if (p == NULL) {
            return PAY_ERR_BAD_SIGNATURE;
        }

        klen = (size_t) (p - item);
        v = p + 1;

        if (klen == 1 && item[0] == 't') {
            /* epoch seconds, written as they are signed: "t.body" is
             * rebuilt from the number below */
            if (have_t) {
                return PAY_ERR_BAD_SIGNATURE;
            }

            t = pay_time_parse(v, (size_t) (comma - v), PAY_TIME_EPOCH);
            if (t < 0) {
                return PAY_ERR_BAD_SIGNATURE;
            }

            have_t = 1;

        } else if (klen == 2 && item[0] == 'v' && item[1] == '1') {
            /* several v1 while a secret is rolled; others are ignored */
            if (nv1 < PAY_STRIPE_V1_MAX
                && pay_hex32(v, (size_t) (comma - v), v1[nv1]) == 0)
            {
                nv1++;
            }
        }

        /* v0 and unknown schemes do not count */

        if (comma == end) {
            break;
        }
    }

    if (!have_t || nv1 == 0) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    /* the signed payload is "t.body" */
    tlen = snprintf(tbuf, sizeof(tbuf), "%lld.", (long long) t);

    signed_payload = malloc((size_t) tlen + blen + 1);
    if (signed_payload == NULL) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    memcpy(signed_payload, tbuf, (size_t) tlen);
    if (blen) {
        memcpy(signed_payload + tlen, body, blen);
    }

    match = 0;

    for (i = 0; i < nsecrets; i++) {
        if (secrets[i].data == NULL || secrets[i].len == 0
            || HMAC(EVP_sha256(), secrets[i].data, (int) secrets[i].len,
                    signed_payload, (size_t) tlen + blen, mac, &maclen)
               == NULL)
        {
            continue;
        }

        /* every candidate is compared, in constant time */
        for (j = 0; j < nv1; j++) {
            match |= (CRYPTO_memcmp(mac, v1[j], 32) == 0);
        }
    }

    free(signed_payload);

    if (!match) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    /* authentic; now fresh, in either direction */
    if (t > now + tolerance || now > t + tolerance) {
        return PAY_ERR_STALE_WEBHOOK;
    }

    return PAY_ERR_NONE;
}


static int
pay_copy(char *dst, size_t size, json_t *v)
{
    const char  *s;

    s = json_string_value(v);
    if (s == NULL) {
        dst[0] = '\0';
        return -1;
    }

    if (strlen(s) >= size) {
        return -1;
    }

    strcpy(dst, s);
    return 0;
}


int
pay_stripe_parse_event(const char *body, size_t blen, pay_event_t *ev)
{
    size_t        i;
    json_t       *root, *obj, *live, *amount;
    json_error_t  err;
    const char   *type, *status;

    memset(ev, 0, sizeof(pay_event_t));
    ev->amount = -1;
    ev->livemode = -1;

    root = json_loadb(body, blen, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return -1;
    }

    obj = json_object_get(json_object_get(root, "data"), "object");

    if (pay_copy(ev->event_id, sizeof(ev->event_id),
                 json_object_get(root, "id")) != 0
        || ev->event_id[0] == '\0'
        || pay_copy(ev->type, sizeof(ev->type),
                    json_object_get(root, "type")) != 0
        || !json_is_object(obj))
    {
        json_decref(root);
        return -1;
    }

    live = json_object_get(root, "livemode");
    ev->livemode = json_is_boolean(live) ? json_is_true(live) : -1;

    /* the session: its id is our stored token, client_reference_id our
     * nonce; both optional here, the database decides what they match */
    (void) pay_copy(ev->token, sizeof(ev->token), json_object_get(obj, "id"));
    (void) pay_copy(ev->reference, sizeof(ev->reference),
                    json_object_get(obj, "client_reference_id"));

    if (pay_copy(ev->currency, sizeof(ev->currency),
                 json_object_get(obj, "currency")) == 0)
    {
        for (i = 0; ev->currency[i]; i++) {
            if (ev->currency[i] >= 'a' && ev->currency[i] <= 'z') {
                ev->currency[i] = (char) (ev->currency[i] - 'a' + 'A');
            }
        }

    } else {
        ev->currency[0] = '\0';
    }

    /* amount_total is in Stripe's minor units (ISK has two decimals
     * there, MGA none): read it in its currency, as ISO minor units */
    amount = json_object_get(obj, "amount_total");
    if (json_is_integer(amount) && json_integer_value(amount) >= 0
        && ev->currency[0] != '\0')
    {
        if (pay_psp_amount_from_psp(PAY_DIALECT_STRIPE, ev->currency,
                                    (int64_t) json_integer_value(amount),
                                    &ev->amount)
            != 0)
        {
            ev->amount = PAY_EVT_AMOUNT_INEXACT;
        }
    }

    type = ev->type;
    status = json_string_value(json_object_get(obj, "payment_status"));

    if (strcmp(type, "checkout.session.completed") == 0) {
        /* "unpaid": an asynchronous method is still on its way */
        ev->kind = (status && strcmp(status, "paid") == 0)
                   ? PAY_EVT_SUCCEEDED : PAY_EVT_PENDING;

    } else if (strcmp(type, "checkout.session.async_payment_succeeded") == 0)
    {
        ev->kind = PAY_EVT_SUCCEEDED;

    } else if (strcmp(type, "checkout.session.async_payment_failed") == 0
               || strcmp(type, "checkout.session.expired") == 0)
    {
        ev->kind = PAY_EVT_FAILED;

    } else {
        ev->kind = PAY_EVT_IGNORED;
    }

    json_decref(root);
    return 0;
}
