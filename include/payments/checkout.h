/*
 * ngx_payments core: the POST /v1/payments body, validated (API.md).
 */
#ifndef PAYMENTS_CHECKOUT_H
#define PAYMENTS_CHECKOUT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <payments/error.h>

#define PAY_ID_MAX          40      /* [A-Za-z0-9_-]{1,40} */
#define PAY_SELLER_MAX      64      /* [A-Za-z0-9_.-]{1,64} */
#define PAY_PSP_NAME_MAX    32
#define PAY_ORDERS_MAX      100
#define PAY_URL_MAX         2048
#define PAY_EMAIL_MAX       254
#define PAY_CUSTOMER_MAX    64      /* [A-Za-z0-9_.-]{1,64} */
#define PAY_METHOD_ID_LEN   27      /* "pm_" and 24 letters a-p */

/* metadata: Stripe's limits (characters are UTF-8 code points) */
#define PAY_METADATA_KEYS_MAX   50
#define PAY_METADATA_KEY_MAX    40
#define PAY_METADATA_VALUE_MAX  500

typedef struct {
    char     id[PAY_ID_MAX + 1];
    char     seller[PAY_SELLER_MAX + 1];
    int64_t  amount;                        /* minor units, > 0 */
} pay_order_t;

typedef struct {
    json_t       *root;             /* the core's own (the parsed body):
                                       the adapter reads the fields below
                                       and pay_checkout_fingerprint() */
    char          checkout_id[PAY_ID_MAX + 1];
    char          psp[PAY_PSP_NAME_MAX + 1];
    char          currency[4];
    int           exponent;
    int64_t       total;            /* sum of the orders, checked for overflow */
    const char   *success_url;      /* borrowed from root */
    const char   *cancel_url;       /* borrowed from root */
    const char   *buyer_email;      /* borrowed from root; may be NULL */
    const char   *buyer_id;         /* borrowed from root; may be NULL */
    json_t       *metadata;         /* borrowed from root; NULL when absent
                                       or empty */
    int64_t       expires_at;       /* epoch seconds the caller asked the
                                       session to end at; 0: absent (the
                                       PSP's limits are the adapter's) */
    unsigned      manual_capture:1; /* "capture": "manual": the payment is
                                       an authorization, captured later */
    unsigned      setup:1;          /* "mode": "setup": a save without a
                                       charge (no orders, total 0) */
    /*
     * "save_payment_method": the shopper's method is saved at the PSP for
     * later charges.  save_customer is the shop's id for the shopper ("":
     * no save); save_usage "off_session" or "on_session" (Stripe's
     * setup_future_usage words); save_recurring Adyen's
     * recurringProcessingModel it implies: CardOnFile (on_session),
     * Subscription ("schedule": "subscription") or UnscheduledCardOnFile.
     */
    char          save_customer[PAY_CUSTOMER_MAX + 1];
    const char   *save_usage;       /* static */
    const char   *save_recurring;   /* static */
    /* "payment_method": a saved method (pm_…) charged now without the
     * shopper ("off_session": true); "" otherwise */
    char          payment_method[PAY_METHOD_ID_LEN + 1];
    size_t        norders;
    pay_order_t  *orders;           /* owned, malloc'd */
} pay_checkout_t;

/*
 * Validates a request body in the contract's order: JSON (duplicate keys
 * refused, an object), card data anywhere (card_data_forbidden), fields and
 * types (unknown fields refused), ids, currency (unsupported_currency),
 * amounts (invalid_amount), one currency (mixed_currency), unique order ids,
 * return URLs well-formed https (forbidden_return_url).  The merchant's
 * origin allow-list is checked separately (pay_origin_*).
 * Returns 0 and fills *co (free with pay_checkout_free), or -1 with *v set;
 * on -1 nothing needs freeing.
 */
int  pay_checkout_parse(const char *body, size_t len, pay_checkout_t *co,
    pay_verdict_t *v);
void pay_checkout_free(pay_checkout_t *co);

/* The Idempotency-Key fingerprint of a parsed body (idempotency.h's
 * pay_fingerprint over it).  Returns 0, or -1. */
int pay_checkout_fingerprint(const pay_checkout_t *co, const char *method,
    const char *path, char hex[65]);

/* The orders as pay_claim takes them (p_orders): a JSON array of
 * {"payment_order_id", "seller_account", "amount_minor"}, compact,
 * malloc'd, or NULL. */
char *pay_checkout_orders_json(const pay_checkout_t *co);

/*
 * A "metadata" member (checkouts, refunds, pay-outs): a JSON object of at
 * most PAY_METADATA_KEYS_MAX members, each key 1 to PAY_METADATA_KEY_MAX
 * characters without '[' or ']' (Stripe's form fields name them), each
 * value a string of at most PAY_METADATA_VALUE_MAX characters.  Card data
 * is the body scan's (every key and value, by the text rule).  Returns 0,
 * or -1 with *v (invalid_request naming the rule; never the key or value).
 */
int pay_metadata_check(const json_t *md, pay_verdict_t *v);

/* Card data anywhere in j (keys, strings, integers, at any depth), every
 * string by the free-text rule.  1 or 0. */
int pay_json_contains_card(json_t *j);

/* The same over a request's whole body: its identifier members
 * (checkout_id, payment_order_id, seller_account, customer, id) by the
 * identifier rule, metadata and everything else by the free-text rule.
 * 1 or 0. */
int pay_json_body_contains_card(json_t *j);

/*
 * Card data: any run of 13-19 digits (single spaces or dashes allowed
 * between digits) passing the Luhn check, or 13-19 digits in groups of 3
 * to 6 with the same 1 to 3 non-alphanumerics between every two, whole
 * groups passing it.  Digits are any Unicode decimal digit and the
 * superscript, subscript and circled ones (src/checkout.c says which);
 * s is read as UTF-8.  Returns 1 if s contains one.
 */
int pay_contains_card_number(const char *s, size_t len);

/*
 * Card data in an identifier (checkout_id, payment_order_id,
 * seller_account, buyer_info.id): a whole run of digits (single spaces or
 * dashes allowed between them), or a sequence of whole groups as above,
 * that passes the Luhn check AND has the
 * length and issuer prefix of a card brand (Visa, Mastercard, American
 * Express, Discover, JCB, Diners Club, UnionPay, Maestro, Mir).  The text
 * rule above refuses about two random 16-digit ids in three (one of their
 * 13-19 digit windows passes Luhn); this one about three in a hundred, and
 * none that start with 1, 7, 8 (but UnionPay's 81), 9 or 0: sequential
 * and snowflake ids.  Every real card number is still refused.
 */
int pay_id_contains_card_number(const char *s, size_t len);

/* [A-Za-z0-9_-]{1,40} */
int pay_id_valid(const char *s, size_t len);
/* [A-Za-z0-9_.-]{1,64} */
int pay_seller_valid(const char *s, size_t len);
/* "pm_" and 24 letters a-p: a saved method's id (no digits, so never
 * taken for a card number) */
int pay_method_id_valid(const char *s, size_t len);

#endif
