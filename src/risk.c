/*
 * ngx_payments core: the risk check's request, its signature and the
 * provider's answer (include/payments/risk.h, doc/RISK.md).
 */

#include <payments/json_dump.h>
#include <payments/risk.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>


const char *
pay_risk_verdict_name(pay_risk_verdict_e v)
{
    switch (v) {
    case PAY_RISK_DENY:
        return "deny";
    case PAY_RISK_REVIEW:
        return "review";
    default:
        return "allow";
    }
}


/*
 * The body both phases share, in the documented order: the checkout, its
 * orders (a JSON array of {"payment_order_id","seller_account",
 * "amount_minor"}, stolen), the buyer, the phase, and after the payment
 * the PSP's reference when known.
 */

static char *
pay_risk_body(const char *merchant_id, const char *checkout_id,
    const char *psp, const char *currency, int64_t total, json_t *orders,
    const char *buyer_email, const char *buyer_id, const char *phase,
    const char *psp_payment_ref)
{
    char    *out;
    json_t  *root, *buyer;

    root = json_object();
    buyer = json_object();
    if (root == NULL || buyer == NULL || orders == NULL) {
        goto failed;
    }

    if (json_object_set_new(root, "checkout_id",
                            json_string(checkout_id)) != 0
        || json_object_set_new(root, "merchant_id",
                               json_string(merchant_id)) != 0
        || json_object_set_new(root, "psp", json_string(psp)) != 0
        || json_object_set_new(root, "currency", json_string(currency)) != 0
        || json_object_set_new(root, "amount_total",
                               json_integer((json_int_t) total)) != 0
        || json_object_set(root, "payment_orders", orders) != 0)
    {
        goto failed;
    }

    /* what the shop sent about its buyer, and nothing else */
    if ((buyer_email
         && json_object_set_new(buyer, "email", json_string(buyer_email))
            != 0)
        || (buyer_id
            && json_object_set_new(buyer, "id", json_string(buyer_id)) != 0)
        || json_object_set(root, "buyer", buyer) != 0
        || json_object_set_new(root, "phase", json_string(phase)) != 0
        || (psp_payment_ref
            && json_object_set_new(root, "psp_payment_ref",
                                   json_string(psp_payment_ref)) != 0))
    {
        goto failed;
    }

    out = pay_json_dumps(root);

    json_decref(orders);
    json_decref(buyer);
    json_decref(root);

    return out;

failed:

    json_decref(orders);
    json_decref(buyer);
    json_decref(root);

    return NULL;
}


char *
pay_risk_request(const pay_checkout_t *co, const char *merchant_id)
{
    size_t   i;
    json_t  *orders, *o;

    if (co == NULL || merchant_id == NULL) {
        return NULL;
    }

    orders = json_array();
    if (orders == NULL) {
        return NULL;
    }

    for (i = 0; i < co->norders; i++) {
        o = json_pack("{s:s, s:s, s:I}",
                      "payment_order_id", co->orders[i].id,
                      "seller_account", co->orders[i].seller,
                      "amount_minor", (json_int_t) co->orders[i].amount);
        if (o == NULL || json_array_append_new(orders, o) != 0) {
            json_decref(orders);
            return NULL;
        }
    }

    return pay_risk_body(merchant_id, co->checkout_id, co->psp, co->currency,
                         co->total, orders, co->buyer_email, co->buyer_id,
                         "before_psp", NULL);
}


char *
pay_risk_request_paid(const pay_risk_paid_t *p)
{
    size_t       i;
    json_t      *stored, *orders, *o, *id, *seller, *amount;
    json_int_t   sum;

    if (p == NULL || p->merchant_id == NULL || p->checkout_id == NULL
        || p->psp == NULL || p->currency == NULL || p->orders == NULL
        || p->total <= 0)
    {
        return NULL;
    }

    stored = json_loads(p->orders, JSON_REJECT_DUPLICATES, NULL);
    orders = json_array();

    if (!json_is_array(stored) || json_array_size(stored) == 0
        || orders == NULL)
    {
        goto failed;
    }

    sum = 0;

    /* the members in the first request's order, whatever the database's */
    for (i = 0; i < json_array_size(stored); i++) {
        o = json_array_get(stored, i);
        id = json_object_get(o, "payment_order_id");
        seller = json_object_get(o, "seller_account");
        amount = json_object_get(o, "amount_minor");

        if (!json_is_string(id) || !json_is_string(seller)
            || !json_is_integer(amount) || json_integer_value(amount) <= 0
            || json_object_size(o) != 3)
        {
            goto failed;
        }

        sum += json_integer_value(amount);

        o = json_pack("{s:O, s:O, s:O}", "payment_order_id", id,
                      "seller_account", seller, "amount_minor", amount);
        if (o == NULL || json_array_append_new(orders, o) != 0) {
            goto failed;
        }
    }

    if (sum != (json_int_t) p->total) {
        goto failed;
    }

    json_decref(stored);

    return pay_risk_body(p->merchant_id, p->checkout_id, p->psp, p->currency,
                         p->total, orders, p->buyer_email, NULL,
                         "after_payment", p->psp_payment_ref);

failed:

    json_decref(stored);
    json_decref(orders);

    return NULL;
}


/*
 * hex HMAC-SHA256 over "<ts>." body, or "<ts>." key "." body when key is
 * given (an answer, bound to the Idempotency-Key of the request it
 * answers): 64 digits and a NUL in hex.  A key is 1..255 visible ASCII
 * characters without '.', so that where it ends is never in doubt.
 */

static int
pay_risk_mac(const unsigned char *secret, size_t slen, int64_t ts,
    const char *key, const char *body, size_t len, char hex[65])
{
    int             n;
    char           *msg;
    size_t          klen, i;
    unsigned int    mlen;
    unsigned char   mac[EVP_MAX_MD_SIZE], *ok;

    if (secret == NULL || slen == 0 || (body == NULL && len != 0)
        || len > (1u << 20))
    {
        return -1;
    }

    klen = 0;

    if (key != NULL) {
        klen = strlen(key);

        if (klen == 0 || klen > 255) {
            return -1;
        }

        for (i = 0; i < klen; i++) {
            if (key[i] <= 0x20 || key[i] >= 0x7f || key[i] == '.') {
                return -1;
            }
        }
    }

    msg = malloc(24 + klen + 1 + len);
    if (msg == NULL) {
        return -1;
    }

    n = snprintf(msg, 24, "%" PRId64 ".", ts);
    if (n <= 0 || n >= 24) {
        free(msg);
        return -1;
    }

    if (key != NULL) {
        memcpy(msg + n, key, klen);
        n += (int) klen;
        msg[n++] = '.';
    }

    if (len) {
        memcpy(msg + n, body, len);
    }

    ok = HMAC(EVP_sha256(), secret, (int) slen, (unsigned char *) msg,
              (size_t) n + len, mac, &mlen);
    free(msg);

    if (ok == NULL || mlen != 32) {
        return -1;
    }

    for (i = 0; i < 32; i++) {
        hex[2 * i] = "0123456789abcdef"[mac[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[mac[i] & 0xf];
    }

    hex[64] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));

    return 0;
}


int
pay_risk_sign(const unsigned char *secret, size_t slen, int64_t ts,
    const char *key, const char *body, size_t len, char *out, size_t cap)
{
    int   n;
    char  hex[65];

    if (ts < 0 || out == NULL
        || pay_risk_mac(secret, slen, ts, key, body, len, hex) != 0)
    {
        return -1;
    }

    n = snprintf(out, cap, "t=%" PRId64 ",v1=%s", ts, hex);

    return (n > 0 && (size_t) n < cap) ? 0 : -1;
}


int
pay_risk_verify(const unsigned char *secret, size_t slen,
    const char *header, size_t hlen, const char *key, const char *body,
    size_t len, int64_t now, int64_t tolerance)
{
    char        hex[65];
    size_t      i;
    int64_t     ts;
    const char *p, *end;

    if (header == NULL || hlen < sizeof("t=0,v1=") - 1 + 64
        || hlen > PAY_RISK_SIG_MAX - 1 || memcmp(header, "t=", 2) != 0)
    {
        return -1;
    }

    /* t=: 1..19 digits, no sign, no leading zero but "0" itself */
    p = header + 2;
    end = header + hlen;
    ts = 0;

    for (i = 0; p + i < end && isdigit((unsigned char) p[i]); i++) {
        if (i >= 18) {
            return -1;
        }
        ts = ts * 10 + (p[i] - '0');
    }

    if (i == 0 || (i > 1 && p[0] == '0')) {
        return -1;
    }

    p += i;

    /* ",v1=" and exactly 64 lowercase hex digits to the end */
    if ((size_t) (end - p) != 4 + 64 || memcmp(p, ",v1=", 4) != 0) {
        return -1;
    }

    p += 4;

    for (i = 0; i < 64; i++) {
        if (!(isdigit((unsigned char) p[i])
              || (p[i] >= 'a' && p[i] <= 'f')))
        {
            return -1;
        }
    }

    if (ts > now + tolerance || ts < now - tolerance) {
        return -1;
    }

    /* an answer is always bound to its request */
    if (key == NULL
        || pay_risk_mac(secret, slen, ts, key, body, len, hex) != 0)
    {
        return -1;
    }

    return CRYPTO_memcmp(hex, p, 64) == 0 ? 0 : -1;
}


int
pay_risk_answer_parse(const char *body, size_t len, pay_risk_answer_t *a)
{
    size_t        i, n;
    json_t       *root, *v;
    const char   *key, *s;
    json_int_t    score;
    json_error_t  err;

    if (body == NULL || a == NULL || len == 0 || len > 4096) {
        return -1;
    }

    memset(a, 0, sizeof(pay_risk_answer_t));
    a->score = -1;

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL) {
        return -1;
    }

    if (!json_is_object(root)) {
        goto invalid;
    }

    n = 0;

    json_object_foreach(root, key, v) {

        if (strcmp(key, "verdict") == 0) {
            if (!json_is_string(v)) {
                goto invalid;
            }

            s = json_string_value(v);

            if (json_string_length(v) == 5 && strcmp(s, "allow") == 0) {
                a->verdict = PAY_RISK_ALLOW;

            } else if (json_string_length(v) == 4 && strcmp(s, "deny") == 0) {
                a->verdict = PAY_RISK_DENY;

            } else if (json_string_length(v) == 6
                       && strcmp(s, "review") == 0)
            {
                a->verdict = PAY_RISK_REVIEW;

            } else {
                goto invalid;
            }

            n++;

        } else if (strcmp(key, "reason") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0
                || json_string_length(v) > PAY_RISK_REASON_MAX)
            {
                goto invalid;
            }

            s = json_string_value(v);

            /* a code, never free text: it reaches the shop and the logs */
            for (i = 0; i < json_string_length(v); i++) {
                if (!(islower((unsigned char) s[i])
                      || isdigit((unsigned char) s[i])
                      || s[i] == '_' || s[i] == '.' || s[i] == '-'))
                {
                    goto invalid;
                }
            }

            memcpy(a->reason, s, json_string_length(v));
            a->reason[json_string_length(v)] = '\0';

        } else if (strcmp(key, "score") == 0) {
            if (!json_is_integer(v)) {
                goto invalid;
            }

            score = json_integer_value(v);
            if (score < 0 || score > PAY_RISK_SCORE_MAX) {
                goto invalid;
            }

            a->score = (int) score;

        } else {
            goto invalid;
        }
    }

    json_decref(root);

    return n == 1 ? 0 : -1;

invalid:

    json_decref(root);
    return -1;
}
