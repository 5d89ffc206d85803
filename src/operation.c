/*
 * ngx_payments core: refund and pay-out requests (operation.h).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include <payments/checkout.h>
#include <payments/idempotency.h>
#include <payments/money.h>
#include <payments/operation.h>


/* metadata's 50 values of 500 characters included; the module's
 * payments_max_body (64k by default) bounds it too */
#define PAY_OP_BODY_MAX  (64 * 1024)


/* A JSON object of at most PAY_OP_BODY_MAX bytes, no duplicate keys, and
 * only the members named in allowed. */
static json_t *
pay_op_load(const char *body, size_t len, const char *const *allowed,
    pay_verdict_t *v)
{
    size_t       i;
    json_t      *root, *val;
    const char  *key;

    if (body == NULL || len == 0) {
        pay_verdict(v, PAY_ERR_INVALID_REQUEST, "the body must be a JSON "
                    "object");
        return NULL;
    }

    if (len > PAY_OP_BODY_MAX) {
        pay_verdict(v, PAY_ERR_INVALID_REQUEST, "the body is longer than "
                    "%d bytes", PAY_OP_BODY_MAX);
        return NULL;
    }

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(root)) {
        json_decref(root);
        pay_verdict(v, PAY_ERR_INVALID_REQUEST, "the body must be a JSON "
                    "object without duplicate members");
        return NULL;
    }

    /* card data anywhere in the body first (a seller_account too, as in
     * a checkout), before any other rule could name or echo it */
    if (pay_json_body_contains_card(root)) {
        json_decref(root);
        pay_verdict(v, PAY_ERR_CARD_DATA, "the body holds what looks like a "
                    "card number");
        return NULL;
    }

    json_object_foreach(root, key, val) {
        for (i = 0; allowed[i] != NULL; i++) {
            if (strcmp(key, allowed[i]) == 0) {
                break;
            }
        }

        if (allowed[i] == NULL) {
            json_decref(root);
            /* the member's name is not echoed: it may be anything */
            pay_verdict(v, PAY_ERR_INVALID_REQUEST, "unknown member in the "
                        "body");
            return NULL;
        }
    }

    return root;
}


/* "metadata" (optional): checked as on a checkout, card data first, and
 * kept as compact JSON ("{}" when absent).  0, or -1 with *v. */
static int
pay_op_metadata(json_t *root, char **out, pay_verdict_t *v)
{
    json_t  *md;

    *out = NULL;
    md = json_object_get(root, "metadata");

    if (md != NULL && pay_json_contains_card(md)) {
        return pay_verdict(v, PAY_ERR_CARD_DATA, "metadata holds what looks "
                           "like a card number");
    }

    if (md != NULL && pay_metadata_check(md, v) != 0) {
        return -1;
    }

    /* its keys sorted: a retry that lists them in another order has the
     * same fingerprint and resumes the first, whose bytes the PSP must
     * get again */
    *out = md != NULL ? json_dumps(md, JSON_COMPACT | JSON_SORT_KEYS)
                      : strdup("{}");

    if (*out == NULL) {
        return pay_verdict(v, PAY_ERR_INVALID_REQUEST, "out of memory");
    }

    return 0;
}


void
pay_op_request_free(char **metadata)
{
    free(*metadata);
    *metadata = NULL;
}


/* A string member of 1..max bytes without NUL or control characters:
 * 1 copied, 0 absent (when optional), -1 otherwise. */
static int
pay_op_str(const json_t *root, const char *key, char *out, size_t max,
    int optional)
{
    size_t       i, n;
    json_t      *val;
    const char  *s;

    val = json_object_get(root, key);

    if (val == NULL && optional) {
        out[0] = '\0';
        return 0;
    }

    if (!json_is_string(val)) {
        return -1;
    }

    s = json_string_value(val);
    n = json_string_length(val);

    if (n == 0 || n > max || strlen(s) != n) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            return -1;
        }
    }

    memcpy(out, s, n + 1);

    return 1;
}


static int
pay_op_currency(const char *code, pay_verdict_t *v)
{
    if (pay_currency_find(code, strlen(code)) == NULL) {
        return pay_verdict(v, PAY_ERR_UNSUPPORTED_CURRENCY,
                           "currency must be an upper-case ISO 4217 code");
    }

    return 0;
}


static int
pay_op_amount(const char *text, const char *currency, int64_t *minor,
    pay_verdict_t *v)
{
    const pay_currency_t  *cur;

    cur = pay_currency_find(currency, strlen(currency));

    if (cur == NULL
        || pay_amount_parse(text, strlen(text), cur->exponent, minor)
           != PAY_AMOUNT_OK)
    {
        return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                           "amount must be a positive decimal string with "
                           "at most %d decimals in %s",
                           cur ? cur->exponent : 0, currency);
    }

    return 0;
}


int
pay_refund_request_parse(const char *body, size_t len, const char *order_id,
    pay_refund_request_t *rq, pay_verdict_t *v)
{
    int      rc;
    char     path[128];
    json_t  *root;

    static const char *const  allowed[] = { "amount", "currency", "reason",
                                            "metadata", NULL };

    memset(rq, 0, sizeof(pay_refund_request_t));

    if (order_id == NULL || !pay_id_valid(order_id, strlen(order_id))) {
        return pay_verdict(v, PAY_ERR_NOT_FOUND, NULL);
    }

    root = pay_op_load(body, len, allowed, v);
    if (root == NULL) {
        return -1;
    }

    rc = -1;

    /* card data first, whatever else is wrong */
    if (pay_op_metadata(root, &rq->metadata, v) != 0) {
        goto done;
    }

    if (pay_op_str(root, "amount", rq->amount_text,
                   sizeof(rq->amount_text) - 1, 0) < 0)
    {
        pay_verdict(v, PAY_ERR_INVALID_AMOUNT, "amount must be a decimal "
                    "string, e.g. \"4.00\"");
        goto done;
    }

    if (pay_op_str(root, "currency", rq->currency, 3, 1) < 0
        || (rq->currency[0] != '\0' && pay_op_currency(rq->currency, v) < 0))
    {
        pay_verdict(v, PAY_ERR_UNSUPPORTED_CURRENCY, "currency must be an "
                    "upper-case ISO 4217 code");
        goto done;
    }

    if (pay_op_str(root, "reason", rq->reason, PAY_REASON_MAX, 1) < 0) {
        pay_verdict(v, PAY_ERR_INVALID_REQUEST, "reason must be a string of "
                    "1 to %d characters without control characters",
                    PAY_REASON_MAX);
        goto done;
    }

    if (pay_contains_card_number(rq->reason, strlen(rq->reason))) {
        /* never stored, never echoed */
        rq->reason[0] = '\0';
        pay_verdict(v, PAY_ERR_CARD_DATA, "reason looks like a card number");
        goto done;
    }

    if (rq->currency[0] != '\0'
        && pay_op_amount(rq->amount_text, rq->currency, &rq->amount, v) < 0)
    {
        goto done;
    }

    snprintf(path, sizeof(path), "/v1/payments/%s/refunds", order_id);

    if (pay_fingerprint("POST", path, root, rq->fingerprint) != 0) {
        pay_verdict(v, PAY_ERR_INVALID_REQUEST, NULL);
        goto done;
    }

    rc = 0;

done:

    if (rc != 0) {
        pay_op_request_free(&rq->metadata);
    }

    json_decref(root);

    return rc;
}


int
pay_capture_request_parse(const char *body, size_t len, const char *order_id,
    int is_void, pay_refund_request_t *rq, pay_verdict_t *v)
{
    int      rc;
    char     path[128];
    json_t  *root;

    static const char *const  capture[] = { "amount", "currency", "metadata",
                                            NULL };
    static const char *const  release[] = { "metadata", NULL };

    memset(rq, 0, sizeof(pay_refund_request_t));

    if (order_id == NULL || !pay_id_valid(order_id, strlen(order_id))) {
        return pay_verdict(v, PAY_ERR_NOT_FOUND, NULL);
    }

    root = pay_op_load(body, len, is_void ? release : capture, v);
    if (root == NULL) {
        return -1;
    }

    rc = -1;

    if (pay_op_metadata(root, &rq->metadata, v) != 0) {
        goto done;
    }

    /* the amount is optional: none is all that is left to capture */
    if (pay_op_str(root, "amount", rq->amount_text,
                   sizeof(rq->amount_text) - 1, 1) < 0)
    {
        pay_verdict(v, PAY_ERR_INVALID_AMOUNT, "amount must be a decimal "
                    "string, e.g. \"4.00\"");
        goto done;
    }

    if (pay_op_str(root, "currency", rq->currency, 3, 1) < 0
        || (rq->currency[0] != '\0' && pay_op_currency(rq->currency, v) < 0))
    {
        pay_verdict(v, PAY_ERR_UNSUPPORTED_CURRENCY, "currency must be an "
                    "upper-case ISO 4217 code");
        goto done;
    }

    if (rq->currency[0] != '\0' && rq->amount_text[0] != '\0'
        && pay_op_amount(rq->amount_text, rq->currency, &rq->amount, v) < 0)
    {
        goto done;
    }

    snprintf(path, sizeof(path), "/v1/payments/%s/%s", order_id,
             is_void ? "void" : "capture");

    if (pay_fingerprint("POST", path, root, rq->fingerprint) != 0) {
        pay_verdict(v, PAY_ERR_INVALID_REQUEST, NULL);
        goto done;
    }

    rc = 0;

done:

    if (rc != 0) {
        pay_op_request_free(&rq->metadata);
    }

    json_decref(root);

    return rc;
}


int
pay_refund_amount(pay_refund_request_t *rq, const char *order_currency,
    pay_verdict_t *v)
{
    if (rq->currency[0] != '\0' && strcmp(rq->currency, order_currency) != 0)
    {
        return pay_verdict(v, PAY_ERR_CURRENCY_MISMATCH, "the order is in %s",
                           order_currency);
    }

    /* a capture without an amount: the rest, decided by the database */
    if (rq->amount_text[0] == '\0') {
        rq->amount = 0;
        return 0;
    }

    return pay_op_amount(rq->amount_text, order_currency, &rq->amount, v);
}


int
pay_payout_request_parse(const char *body, size_t len,
    pay_payout_request_t *rq, pay_verdict_t *v)
{
    int      rc;
    char     amount[32];
    json_t  *root;

    static const char *const  allowed[] = { "seller_account", "amount",
                                            "currency", "psp", "metadata",
                                            NULL };

    memset(rq, 0, sizeof(pay_payout_request_t));

    root = pay_op_load(body, len, allowed, v);
    if (root == NULL) {
        return -1;
    }

    rc = -1;

    if (pay_op_metadata(root, &rq->metadata, v) != 0) {
        goto done;
    }

    if (pay_op_str(root, "seller_account", rq->seller_account, 64, 0) < 0
        || !pay_seller_valid(rq->seller_account, strlen(rq->seller_account)))
    {
        pay_verdict(v, PAY_ERR_INVALID_REQUEST, "seller_account must match "
                    "[A-Za-z0-9_.-]{1,64}");
        goto done;
    }

    if (pay_op_str(root, "psp", rq->psp, 32, 0) < 0) {
        pay_verdict(v, PAY_ERR_INVALID_REQUEST, "psp must name one of the "
                    "gateway's PSPs");
        goto done;
    }

    if (pay_op_str(root, "currency", rq->currency, 3, 0) < 0
        || pay_op_currency(rq->currency, v) < 0)
    {
        pay_verdict(v, PAY_ERR_UNSUPPORTED_CURRENCY, "currency must be an "
                    "upper-case ISO 4217 code");
        goto done;
    }

    if (pay_op_str(root, "amount", amount, sizeof(amount) - 1, 0) < 0) {
        pay_verdict(v, PAY_ERR_INVALID_AMOUNT, "amount must be a decimal "
                    "string, e.g. \"25.00\"");
        goto done;
    }

    if (pay_op_amount(amount, rq->currency, &rq->amount, v) < 0) {
        goto done;
    }

    if (pay_fingerprint("POST", "/v1/payouts", root, rq->fingerprint) != 0) {
        pay_verdict(v, PAY_ERR_INVALID_REQUEST, NULL);
        goto done;
    }

    rc = 0;

done:

    if (rc != 0) {
        pay_op_request_free(&rq->metadata);
    }

    json_decref(root);

    return rc;
}


int
pay_operation_id(const char *prefix, char *out, size_t size)
{
    size_t         i, plen;
    unsigned char  rnd[12];

    static const char  hex[] = "0123456789abcdef";

    plen = strlen(prefix);

    if (size < plen + 2 * sizeof(rnd) + 1
        || RAND_bytes(rnd, (int) sizeof(rnd)) != 1)
    {
        return -1;
    }

    memcpy(out, prefix, plen);

    for (i = 0; i < sizeof(rnd); i++) {
        out[plen + 2 * i] = hex[rnd[i] >> 4];
        out[plen + 2 * i + 1] = hex[rnd[i] & 0x0f];
    }

    out[plen + 2 * sizeof(rnd)] = '\0';

    return 0;
}
