/*
 * libFuzzer: the event readers on outside bytes.  The first byte picks
 * one: 0 pay_stripe_parse_events (refunds, charge.refunded's several
 * events, disputes, transfers included), 1 pay_generic_parse_event, 2 the
 * Adyen reader behind pay_adyen_verify, and the byte 3 exactly the Adyen
 * balance-platform transfer reader (pay_adyen_parse_transfer; other
 * multiples of 3 stay Stripe's, so older seeds keep their meaning).
 * Adyen's events are only read once every item verifies, so for 2 the
 * harness first signs each item of the input (when it is JSON at all) as
 * Adyen would; the verifier then reads whatever else the fuzzer put in
 * the items.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <payments/money.h>
#include <payments/webhook.h>


static const unsigned char  fe_key[PAY_ADYEN_KEY_LEN] = {
    0x44, 0x78, 0x2d, 0xef, 0x54, 0x7a, 0xaa, 0x06,
    0xc9, 0x10, 0xc4, 0x39, 0x32, 0xb1, 0xeb, 0x0c,
    0x71, 0xfc, 0x68, 0xd9, 0xd0, 0xc0, 0x57, 0x55,
    0x0c, 0x48, 0xec, 0x2a, 0xcf, 0x6b, 0xa0, 0x56
};


static void
fe_event_check(const pay_event_t *ev)
{
    if (strlen(ev->event_id) >= sizeof(ev->event_id)
        || ev->event_id[0] == '\0'
        || strlen(ev->type) >= sizeof(ev->type)
        || strlen(ev->token) >= sizeof(ev->token)
        || strlen(ev->reference) >= sizeof(ev->reference)
        || strlen(ev->currency) >= sizeof(ev->currency)
        || strlen(ev->payment_ref) >= sizeof(ev->payment_ref)
        || strlen(ev->object_ref) >= sizeof(ev->object_ref)
        || ev->amount < PAY_EVT_AMOUNT_INEXACT
        || ev->kind < PAY_EVT_SUCCEEDED || ev->kind > PAY_EVT_KIND_MAX)
    {
        abort();
    }

    /* an amount read is read in its currency */
    if (ev->amount >= 0 && strlen(ev->currency) != 3) {
        abort();
    }
}


/* Stripe's and Adyen's readers: the money after "paid" is never read
 * without its amount; a void releases what is left of a hold and names
 * no amount, nor does an inquiry's end or a refused attempt need one
 * (nothing moves by either).  (The generic reader keeps such an event
 * with its amount absent or inexact, for the database to refuse.) */
static void
fe_event_check_money(const pay_event_t *ev)
{
    fe_event_check(ev);

    if (ev->kind >= PAY_EVT_REFUND_SUCCEEDED
        && ev->kind != PAY_EVT_VOID_SUCCEEDED && ev->kind != PAY_EVT_VOID_FAILED
        && ev->kind != PAY_EVT_DISPUTE_INQUIRY_CLOSED
        && ev->kind != PAY_EVT_DECLINED
        && (ev->amount == PAY_EVT_AMOUNT_ABSENT
            || strlen(ev->currency) != 3))
    {
        abort();
    }
}


static const char *
fe_str(json_t *obj, const char *name)
{
    const char  *s;

    s = json_string_value(json_object_get(obj, name));

    return s ? s : "";
}


/* The item's signed string as the harness reads it; divergence from the
 * verifier only costs coverage. */
static void
fe_sign_item(json_t *wrapper)
{
    json_t  *item, *extra, *value;
    char     data[16384], val[32], sig[PAY_ADYEN_SIG_B64_LEN + 1];
    int      n;

    item = json_object_get(wrapper, "NotificationRequestItem");
    if (!json_is_object(item)) {
        return;
    }

    value = json_object_get(json_object_get(item, "amount"), "value");
    val[0] = '\0';
    if (json_is_integer(value)) {
        snprintf(val, sizeof(val), "%lld",
                 (long long) json_integer_value(value));
    }

    n = snprintf(data, sizeof(data), "%s:%s:%s:%s:%s:%s:%s:%s",
                 fe_str(item, "pspReference"),
                 fe_str(item, "originalReference"),
                 fe_str(item, "merchantAccountCode"),
                 fe_str(item, "merchantReference"), val,
                 fe_str(json_object_get(item, "amount"), "currency"),
                 fe_str(item, "eventCode"), fe_str(item, "success"));
    if (n < 0 || (size_t) n >= sizeof(data)
        || pay_adyen_hmac_b64(fe_key, sizeof(fe_key), data, (size_t) n, sig)
           != 0)
    {
        return;
    }

    extra = json_object_get(item, "additionalData");
    if (!json_is_object(extra)) {
        extra = json_object();
        json_object_set_new(item, "additionalData", extra);
    }

    json_object_set_new(extra, "hmacSignature", json_string(sig));
}


static void
fe_adyen(const char *data, size_t size)
{
    size_t         i, n, max;
    char          *body;
    json_t        *root, *items;
    pay_err_e      rc;
    pay_secret_t   key = { fe_key, sizeof(fe_key) };
    pay_event_t    ev[PAY_WEBHOOK_MAX_ITEMS], *all;

    root = json_loadb(data, size, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL) {
        return;
    }

    items = json_object_get(root, "notificationItems");
    for (i = 0; i < json_array_size(items); i++) {
        fe_sign_item(json_array_get(items, i));
    }

    body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (body == NULL) {
        return;
    }

    n = 0;
    all = ev;
    rc = pay_adyen_verify(body, strlen(body), &key, 1, ev,
                          PAY_WEBHOOK_MAX_ITEMS, &n);

    if (rc == PAY_ERR_PAYLOAD_TOO_LARGE) {
        /* authentic, more items than that: read again with room for all */
        if (n <= PAY_WEBHOOK_MAX_ITEMS) {
            abort();
        }

        max = n;
        all = malloc(max * sizeof(pay_event_t));
        if (all == NULL) {
            free(body);
            return;
        }

        rc = pay_adyen_verify(body, strlen(body), &key, 1, all, max, &n);
        if (rc == PAY_ERR_NONE && n != max) {
            abort();
        }
    }

    free(body);

    if (rc == PAY_ERR_NONE) {
        if (n == 0) {
            abort();
        }

        for (i = 0; i < n; i++) {
            fe_event_check_money(&all[i]);
            if (all[i].livemode != -1 || all[i].token[0] != '\0') {
                abort();
            }
        }

    } else if (n != 0 || rc == PAY_ERR_PAYLOAD_TOO_LARGE) {
        abort();
    }

    if (all != ev) {
        free(all);
    }
}


static void
fe_stripe(const char *data, size_t size)
{
    size_t       i, n;
    pay_event_t  ev[PAY_WEBHOOK_MAX_ITEMS], one;

    n = 12345;

    if (pay_stripe_parse_events(data, size, ev, PAY_WEBHOOK_MAX_ITEMS, &n)
        != 0)
    {
        /* (the first event alone may still be readable: not checked) */
        if (n != 0 || ev[0].event_id[0] != '\0') {
            abort();
        }

        return;
    }

    if (n == 0 || n > PAY_STRIPE_REFUNDS_MAX) {
        abort();
    }

    for (i = 0; i < n; i++) {
        fe_event_check_money(&ev[i]);

        /* one body, one signed livemode */
        if (ev[i].livemode != ev[0].livemode) {
            abort();
        }
    }

    /* the single-event entry point reads the first */
    if (pay_stripe_parse_event(data, size, &one) != 0
        || strcmp(one.event_id, ev[0].event_id) != 0
        || one.kind != ev[0].kind)
    {
        abort();
    }
}


static void
fe_transfer(const char *data, size_t size)
{
    pay_event_t  ev;

    if (pay_adyen_parse_transfer(data, size, &ev) != 0) {
        if (ev.event_id[0] != '\0' || ev.amount != PAY_EVT_AMOUNT_ABSENT) {
            abort();
        }

        return;
    }

    fe_event_check_money(&ev);

    if (ev.token[0] != '\0' || ev.account[0] != '\0'
        || ev.object_ref[0] == '\0'
        || (ev.livemode != -1 && ev.livemode != 0 && ev.livemode != 1))
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pay_event_t  ev;

    if (size == 0) {
        return 0;
    }

    switch (data[0] == 3 ? 3 : data[0] % 3) {

    case 0:
        fe_stripe((const char *) data + 1, size - 1);
        break;

    case 3:
        fe_transfer((const char *) data + 1, size - 1);
        break;

    case 1:
        if (pay_generic_parse_event((const char *) data + 1, size - 1, &ev)
            == 0)
        {
            /* every authentic event is read, its money as far as it
             * can be: a currency kept is an ISO 4217 code */
            fe_event_check(&ev);
            if (ev.currency[0] != '\0'
                && pay_currency_find(ev.currency, 3) == NULL)
            {
                abort();
            }

        } else if (ev.amount != -1) {
            abort();
        }
        break;

    default:
        fe_adyen((const char *) data + 1, size - 1);
        break;
    }

    return 0;
}
