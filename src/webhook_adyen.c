/*
 * ngx_payments core: Adyen webhooks (PSP_FACTS.md).  Each notification item
 * carries its own HMAC over eight fields; every item must verify before any
 * is read, and events are built from those eight fields only.
 */

#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <payments/psp.h>
#include <payments/webhook.h>


/* Adyen's references are short; a longer field is not Adyen's. */
#define PAY_ADYEN_FIELD_MAX  1024
#define PAY_ADYEN_DATA_MAX   (8 * (PAY_ADYEN_FIELD_MAX + 1) + 32)


typedef enum {
    PAY_ADYEN_PSP = 0,
    PAY_ADYEN_ORIGINAL,
    PAY_ADYEN_ACCOUNT,
    PAY_ADYEN_REFERENCE,
    PAY_ADYEN_VALUE,
    PAY_ADYEN_CURRENCY,
    PAY_ADYEN_EVENT,
    PAY_ADYEN_SUCCESS,
    PAY_ADYEN_NFIELDS
} pay_adyen_field_e;


typedef struct {
    const char  *f[PAY_ADYEN_NFIELDS];
    char         value[24];             /* amount.value as decimal text */
    int64_t      amount;                /* -1 if absent */
    const char  *sig;
    size_t       siglen;
} pay_adyen_item_t;


static int
pay_hexval(int c)
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


int
pay_adyen_key_decode(const char *hex, size_t len,
    unsigned char out[PAY_ADYEN_KEY_LEN])
{
    size_t  i;
    int     hi, lo;

    if (hex == NULL || out == NULL || len != 2 * PAY_ADYEN_KEY_LEN) {
        return -1;
    }

    for (i = 0; i < PAY_ADYEN_KEY_LEN; i++) {
        hi = pay_hexval((unsigned char) hex[2 * i]);
        lo = pay_hexval((unsigned char) hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(out, PAY_ADYEN_KEY_LEN);
            return -1;
        }

        out[i] = (unsigned char) (hi << 4 | lo);
    }

    return 0;
}


int
pay_adyen_hmac_b64(const unsigned char *key, size_t klen, const char *data,
    size_t dlen, char out[PAY_ADYEN_SIG_B64_LEN + 1])
{
    unsigned char  mac[EVP_MAX_MD_SIZE];
    unsigned int   maclen;

    if (key == NULL || klen == 0 || klen > 1024 || out == NULL
        || (data == NULL && dlen != 0))
    {
        return -1;
    }

    if (HMAC(EVP_sha256(), key, (int) klen, (const unsigned char *) data,
             dlen, mac, &maclen) == NULL
        || maclen != 32)
    {
        return -1;
    }

    /* 32 bytes are 44 characters with one '=' of padding, plus NUL */
    if (EVP_EncodeBlock((unsigned char *) out, mac, 32)
        != PAY_ADYEN_SIG_B64_LEN)
    {
        return -1;
    }

    OPENSSL_cleanse(mac, sizeof(mac));

    return 0;
}


/*
 * A signed string field: absent is "" (it is signed as empty), a present
 * one must be a string without NUL and within bounds.  colon_ok is only for
 * merchantReference (our nonce is merchant_id ":" checkout_id): with ':'
 * refused in the seven others, the colon-joined data splits back into the
 * eight fields one way only, so no signature can be re-read with a field
 * boundary moved.
 */
static int
pay_adyen_str(json_t *obj, const char *name, int colon_ok, const char **out)
{
    json_t      *v;
    const char  *s;
    size_t       len;

    v = json_object_get(obj, name);
    if (v == NULL) {
        *out = "";
        return 0;
    }

    s = json_string_value(v);
    if (s == NULL) {
        return -1;
    }

    len = json_string_length(v);

    if (len > PAY_ADYEN_FIELD_MAX || strlen(s) != len
        || (!colon_ok && memchr(s, ':', len) != NULL))
    {
        return -1;
    }

    *out = s;
    return 0;
}


static int
pay_adyen_item_read(json_t *wrapper, pay_adyen_item_t *it)
{
    json_t      *item, *amount, *value, *extra, *sig;
    json_int_t   n;

    memset(it, 0, sizeof(*it));
    it->amount = -1;

    item = json_object_get(wrapper, "NotificationRequestItem");
    if (!json_is_object(wrapper) || !json_is_object(item)) {
        return -1;
    }

    if (pay_adyen_str(item, "pspReference", 0, &it->f[PAY_ADYEN_PSP]) != 0
        || pay_adyen_str(item, "originalReference", 0,
                         &it->f[PAY_ADYEN_ORIGINAL]) != 0
        || pay_adyen_str(item, "merchantAccountCode", 0,
                         &it->f[PAY_ADYEN_ACCOUNT]) != 0
        || pay_adyen_str(item, "merchantReference", 1,
                         &it->f[PAY_ADYEN_REFERENCE]) != 0
        || pay_adyen_str(item, "eventCode", 0, &it->f[PAY_ADYEN_EVENT]) != 0
        || pay_adyen_str(item, "success", 0, &it->f[PAY_ADYEN_SUCCESS]) != 0)
    {
        return -1;
    }

    it->f[PAY_ADYEN_VALUE] = "";
    it->f[PAY_ADYEN_CURRENCY] = "";

    amount = json_object_get(item, "amount");
    if (amount != NULL) {
        if (!json_is_object(amount)
            || pay_adyen_str(amount, "currency", 0,
                             &it->f[PAY_ADYEN_CURRENCY]) != 0)
        {
            return -1;
        }

        value = json_object_get(amount, "value");
        if (value != NULL) {
            /* minor units as an integer; its decimal text is what is
             * signed.  A negative one is not a payment of ours, and
             * would read as "no amount" downstream. */
            if (!json_is_integer(value)) {
                return -1;
            }

            n = json_integer_value(value);
            if (n < 0) {
                return -1;
            }

            snprintf(it->value, sizeof(it->value), "%lld", (long long) n);
            it->f[PAY_ADYEN_VALUE] = it->value;
            it->amount = (int64_t) n;
        }
    }

    extra = json_object_get(item, "additionalData");
    sig = json_object_get(extra, "hmacSignature");
    if (!json_is_object(extra) || !json_is_string(sig)) {
        return -1;
    }

    it->sig = json_string_value(sig);
    it->siglen = json_string_length(sig);

    return 0;
}


static int
pay_adyen_item_verify(const pay_adyen_item_t *it, const pay_secret_t *keys,
    size_t nkeys)
{
    int     match;
    char    data[PAY_ADYEN_DATA_MAX], b64[PAY_ADYEN_SIG_B64_LEN + 1];
    size_t  i, n, len;

    n = 0;

    for (i = 0; i < PAY_ADYEN_NFIELDS; i++) {
        len = strlen(it->f[i]);

        /* bounded by PAY_ADYEN_FIELD_MAX per field; checked all the same */
        if (n + len + 1 > sizeof(data)) {
            return -1;
        }

        if (i > 0) {
            data[n++] = ':';
        }

        memcpy(data + n, it->f[i], len);
        n += len;
    }

    if (it->siglen != PAY_ADYEN_SIG_B64_LEN) {
        return -1;
    }

    match = 0;

    for (i = 0; i < nkeys; i++) {
        if (keys[i].data == NULL || keys[i].len == 0
            || pay_adyen_hmac_b64(keys[i].data, keys[i].len, data, n, b64)
               != 0)
        {
            continue;
        }

        /* our encoding is canonical, so one spelling of the MAC passes */
        match |= (CRYPTO_memcmp(b64, it->sig, PAY_ADYEN_SIG_B64_LEN) == 0);
    }

    OPENSSL_cleanse(b64, sizeof(b64));

    return match ? 0 : -1;
}


static int
pay_adyen_copy(char *dst, size_t size, const char *s)
{
    size_t  len;

    len = strlen(s);
    if (len >= size) {
        return -1;
    }

    memcpy(dst, s, len + 1);
    return 0;
}


/* "psp:code", or "psp:code:false" */
static int
pay_adyen_event_id(pay_event_t *ev, const char *psp, const char *code,
    int failed)
{
    int  n;

    n = snprintf(ev->event_id, sizeof(ev->event_id), "%s:%s%s", psp, code,
                 failed ? ":false" : "");

    return (n < 0 || (size_t) n >= sizeof(ev->event_id)) ? -1 : 0;
}


/*
 * The codes the gateway deliberately does not act on and that are about no
 * session of ours (a report, a dispute's or a fraud case's progress, a
 * capture of a payment already paid; ISSUER_RESPONSE_TIMEFRAME_EXPIRED
 * without the originalReference that names its dispute): recorded as
 * ignored by their code, no checkout looked for.  Their merchantReference
 * is a payment's, a refund's or none, and their amount a part: looked up
 * as a session's event they were unknown_checkout or amount_mismatch,
 * which page an operator.
 */
static const char  *pay_adyen_ignored_codes[] = {
    "REPORT_AVAILABLE",
    "REQUEST_FOR_INFORMATION",
    "NOTIFICATION_OF_FRAUD",
    "DISPUTE_DEFENSE_PERIOD_ENDED",
    "INFORMATION_SUPPLIED",
    "ISSUER_COMMENTS",
    "ISSUER_RESPONSE_TIMEFRAME_EXPIRED",
    "PREARBITRATION_WON",
    NULL
};


static int
pay_adyen_ignored(const char *code)
{
    size_t  i;

    for (i = 0; pay_adyen_ignored_codes[i] != NULL; i++) {
        if (strcmp(code, pay_adyen_ignored_codes[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * The chargeback codes: 1 and *kind, or 0.  NOTIFICATION_OF_CHARGEBACK
 * opens Adyen's dispute process and deducts nothing (it may end without a
 * chargeback: ISSUER_RESPONSE_TIMEFRAME_EXPIRED, the defence accepted,
 * read in pay_adyen_event): recorded about the dispute, nothing booked.
 * CHARGEBACK is the money deducted: the dispute opens there.
 */
static int
pay_adyen_dispute(const char *code, pay_event_kind_e *kind)
{
    if (strcmp(code, "NOTIFICATION_OF_CHARGEBACK") == 0) {
        *kind = PAY_EVT_PENDING;
        return 1;
    }

    if (strcmp(code, "CHARGEBACK") == 0) {
        *kind = PAY_EVT_DISPUTE_OPENED;
        return 1;
    }

    if (strcmp(code, "CHARGEBACK_REVERSED") == 0) {
        *kind = PAY_EVT_DISPUTE_WON;
        return 1;
    }

    if (strcmp(code, "SECOND_CHARGEBACK") == 0
        || strcmp(code, "PREARBITRATION_LOST") == 0)
    {
        *kind = PAY_EVT_DISPUTE_LOST;
        return 1;
    }

    return 0;
}


static int
pay_adyen_event(const pay_adyen_item_t *it, pay_event_t *ev)
{
    int          money;
    size_t       i;
    const char  *psp, *code, *success, *cur, *orig;

    memset(ev, 0, sizeof(*ev));

    psp = it->f[PAY_ADYEN_PSP];
    orig = it->f[PAY_ADYEN_ORIGINAL];
    code = it->f[PAY_ADYEN_EVENT];
    success = it->f[PAY_ADYEN_SUCCESS];
    cur = it->f[PAY_ADYEN_CURRENCY];

    /* the event id is the dedupe key: both parts must be there; a refund
     * that failed is told apart from the same refund's success */
    if (psp[0] == '\0' || code[0] == '\0'
        || pay_adyen_event_id(ev, psp, code,
                              (strcmp(code, "REFUND") == 0
                               || strcmp(code, "CAPTURE") == 0
                               || strcmp(code, "CANCELLATION") == 0)
                              && strcmp(success, "false") == 0)
           != 0)
    {
        return -1;
    }

    if (pay_adyen_copy(ev->type, sizeof(ev->type), code) != 0
        || pay_adyen_copy(ev->reference, sizeof(ev->reference),
                          it->f[PAY_ADYEN_REFERENCE]) != 0)
    {
        return -1;
    }

    /* a currency is three letters or absent */
    if (cur[0] != '\0') {
        if (strlen(cur) != 3) {
            return -1;
        }

        for (i = 0; i < 3; i++) {
            if (cur[i] >= 'a' && cur[i] <= 'z') {
                ev->currency[i] = (char) (cur[i] - 'a' + 'A');

            } else if (cur[i] >= 'A' && cur[i] <= 'Z') {
                ev->currency[i] = cur[i];

            } else {
                return -1;
            }
        }

        ev->currency[3] = '\0';
    }

    /* Adyen's minor units are not always ISO's (CLP, CVE, IDR, ISK) */
    ev->amount = PAY_EVT_AMOUNT_ABSENT;

    if (it->amount >= 0 && ev->currency[0] != '\0') {
        if (pay_psp_amount_from_psp(PAY_DIALECT_ADYEN, ev->currency,
                                    it->amount, &ev->amount)
            != 0)
        {
            ev->amount = PAY_EVT_AMOUNT_INEXACT;
        }
    }

    ev->livemode = -1;
    ev->token[0] = '\0';

    if (pay_adyen_copy(ev->account, sizeof(ev->account),
                       it->f[PAY_ADYEN_ACCOUNT]) != 0)
    {
        return -1;
    }

    money = 0;

    if (strcmp(code, "AUTHORISATION") == 0
        && strcmp(success, "true") == 0)
    {
        /* a success that cannot be checked moves nothing (the database
         * refuses it too) */
        ev->kind = (ev->amount != PAY_EVT_AMOUNT_ABSENT
                    && ev->currency[0] != '\0')
                   ? PAY_EVT_SUCCEEDED : PAY_EVT_IGNORED;

        /* the payment a refund is registered against */
        if (pay_adyen_copy(ev->payment_ref, sizeof(ev->payment_ref), psp)
            != 0)
        {
            return -1;
        }

    } else if (strcmp(code, "PENDING") == 0) {
        /* A method that settles later: the shopper has paid, the money is
         * on its way (the AUTHORISATION follows).  Recorded for the
         * checkout, nothing moves, and the sweeper never fails it. */
        ev->kind = PAY_EVT_PENDING;

        if (pay_adyen_copy(ev->payment_ref, sizeof(ev->payment_ref), psp)
            != 0)
        {
            return -1;
        }

    } else if (strcmp(code, "AUTHORISATION") == 0
               && strcmp(success, "false") == 0)
    {
        /* One refused attempt: a hosted session stays open and the
         * shopper may pay with another card (recorded, nothing moves);
         * an off-session charge's refusal is final (its checkout FAILED).
         * Which it is, the database knows by the reference. */
        ev->kind = PAY_EVT_DECLINED;

        if (pay_adyen_copy(ev->payment_ref, sizeof(ev->payment_ref), psp)
            != 0)
        {
            return -1;
        }

    } else if (strcmp(code, "REFUND") == 0
               || strcmp(code, "REFUND_FAILED") == 0)
    {
        /* reference is our refund nonce, the payment originalReference */
        ev->kind = (strcmp(code, "REFUND") == 0
                    && strcmp(success, "true") == 0)
                   ? PAY_EVT_REFUND_SUCCEEDED : PAY_EVT_REFUND_FAILED;
        money = 1;

        if (pay_adyen_copy(ev->object_ref, sizeof(ev->object_ref), psp) != 0
            || pay_adyen_copy(ev->payment_ref, sizeof(ev->payment_ref), orig)
               != 0)
        {
            return -1;
        }

    } else if (strcmp(code, "CAPTURE") == 0
               || strcmp(code, "CAPTURE_FAILED") == 0
               || strcmp(code, "CANCELLATION") == 0)
    {
        /* a manual capture's modification: reference is its nonce,
         * pspReference its own id, originalReference the payment */
        if (code[2] == 'P') {
            ev->kind = (strcmp(code, "CAPTURE") == 0
                        && strcmp(success, "true") == 0)
                       ? PAY_EVT_CAPTURE_SUCCEEDED : PAY_EVT_CAPTURE_FAILED;
            money = 1;

        } else {
            ev->kind = strcmp(success, "true") == 0
                       ? PAY_EVT_VOID_SUCCEEDED : PAY_EVT_VOID_FAILED;
        }

        if (pay_adyen_copy(ev->object_ref, sizeof(ev->object_ref), psp) != 0
            || pay_adyen_copy(ev->payment_ref, sizeof(ev->payment_ref), orig)
               != 0)
        {
            return -1;
        }

    } else if (strcmp(code, "RECURRING_CONTRACT") == 0
               && strcmp(success, "true") == 0
               && ev->reference[0] != '\0')
    {
        /* the shopper's method stored for later payments: its
         * pspReference is the token (storedPaymentMethodId), the
         * payment it was stored with originalReference, the session's
         * merchantReference our nonce; all signed.  Adyen's unsigned
         * additionalData (card summary, expiry) is not read. */
        ev->kind = PAY_EVT_METHOD_SAVED;

        if (pay_adyen_copy(ev->method, sizeof(ev->method), psp) != 0
            || pay_adyen_copy(ev->payment_ref, sizeof(ev->payment_ref), orig)
               != 0)
        {
            return -1;
        }

        /* the token is kept only sealed: the event's id (logged, kept in
         * the inbox) is the payment's reference, or our nonce without
         * one (one method is saved per checkout), never the token */
        if (pay_adyen_event_id(ev, orig[0] != '\0' ? orig : ev->reference,
                               code, 0)
            != 0)
        {
            return -1;
        }

    } else if (strcmp(code, "ISSUER_RESPONSE_TIMEFRAME_EXPIRED") == 0
               && orig[0] != '\0')
    {
        /* the issuer accepted the defence of a NOTIFICATION_OF_CHARGEBACK
         * (or an RFI) or let it lapse: no chargeback, nothing deducted.
         * About the payment's dispute, named as its other stages name it;
         * it books nothing, but gives back what an earlier release held
         * for the notification (sql/functions/dispute_inquiry_closed.sql).
         * Without originalReference, ignored as before. */
        ev->kind = PAY_EVT_DISPUTE_INQUIRY_CLOSED;

        if (strlen(orig) + 3 >= sizeof(ev->object_ref)
            || pay_adyen_copy(ev->payment_ref, sizeof(ev->payment_ref), orig)
               != 0)
        {
            return -1;
        }

        memcpy(ev->object_ref, "cb:", 3);
        memcpy(ev->object_ref + 3, orig, strlen(orig) + 1);

    } else if (pay_adyen_dispute(code, &ev->kind)) {
        /* one dispute per payment: every stage names it the same way, and
         * the payment is how it is found */
        money = 1;

        if (orig[0] == '\0'
            || strlen(orig) + 3 >= sizeof(ev->object_ref)
            || pay_adyen_copy(ev->payment_ref, sizeof(ev->payment_ref), orig)
               != 0)
        {
            return -1;
        }

        memcpy(ev->object_ref, "cb:", 3);
        memcpy(ev->object_ref + 3, orig, strlen(orig) + 1);

    } else {
        ev->kind = PAY_EVT_IGNORED;

        /* about no session, or naming none: about its pspReference */
        if ((pay_adyen_ignored(code) || ev->reference[0] == '\0')
            && pay_adyen_copy(ev->object_ref, sizeof(ev->object_ref), psp)
               != 0)
        {
            return -1;
        }
    }

    /* refunds and disputes move money: theirs must be readable */
    if (money
        && (ev->amount == PAY_EVT_AMOUNT_ABSENT || ev->currency[0] == '\0'))
    {
        return -1;
    }

    return 0;
}


/* --- each item's own bytes ---------------------------------------------- */

/*
 * An item's HMAC covers that item alone, so the inbox keeps each item
 * alone, as the PSP wrote it: its bytes are found in the raw body.  The
 * body has already been parsed whole by jansson (strict JSON, no
 * duplicate keys), so a scanner that follows strings and nesting sees the
 * same structure; anything it does not expect leaves the spans unset (the
 * whole body is kept instead).
 */

static size_t
pay_json_ws(const char *p, size_t i, size_t n)
{
    while (i < n
           && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
    {
        i++;
    }

    return i;
}


/* one past the closing quote of the string at p[i] == '"', or 0 */
static size_t
pay_json_string_end(const char *p, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (p[i] == '\\') {
            i++;

        } else if (p[i] == '"') {
            return i + 1;
        }
    }

    return 0;
}


/* one past the value that starts at p[i], or 0 */
static size_t
pay_json_value_end(const char *p, size_t i, size_t n)
{
    size_t  depth, end;

    if (i >= n) {
        return 0;
    }

    if (p[i] == '"') {
        return pay_json_string_end(p, i, n);
    }

    if (p[i] != '{' && p[i] != '[') {
        /* a number, true, false or null */
        while (i < n && p[i] != ',' && p[i] != ']' && p[i] != '}'
               && p[i] != ' ' && p[i] != '\t' && p[i] != '\n'
               && p[i] != '\r')
        {
            i++;
        }

        return i;
    }

    depth = 0;

    for ( /* void */ ; i < n; i++) {
        if (p[i] == '"') {
            end = pay_json_string_end(p, i, n);
            if (end == 0) {
                return 0;
            }

            i = end - 1;

        } else if (p[i] == '{' || p[i] == '[') {
            depth++;

        } else if (p[i] == '}' || p[i] == ']') {
            if (--depth == 0) {
                return i + 1;
            }
        }
    }

    return 0;
}


/* events[0..n-1].evidence_off/_len: the n items of notificationItems */
static int
pay_adyen_item_spans(const char *body, size_t blen, pay_event_t *events,
    size_t n)
{
    int      is_items, found;
    size_t   i, k, end, count;
    json_t  *key;

    found = 0;

    i = pay_json_ws(body, 0, blen);
    if (i >= blen || body[i] != '{') {
        return -1;
    }

    i = pay_json_ws(body, i + 1, blen);

    while (i < blen && body[i] != '}') {
        end = (body[i] == '"') ? pay_json_string_end(body, i, blen) : 0;
        if (end == 0) {
            return -1;
        }

        /* the key as jansson reads it: an escaped spelling is the same */
        key = json_loadb(body + i, end - i, JSON_DECODE_ANY, NULL);
        is_items = json_is_string(key)
                   && json_string_length(key) == sizeof("notificationItems") - 1
                   && strcmp(json_string_value(key), "notificationItems") == 0;
        json_decref(key);

        i = pay_json_ws(body, end, blen);
        if (i >= blen || body[i] != ':') {
            return -1;
        }

        i = pay_json_ws(body, i + 1, blen);

        if (is_items) {
            if (i >= blen || body[i] != '[') {
                return -1;
            }

            count = 0;
            k = pay_json_ws(body, i + 1, blen);

            while (k < blen && body[k] != ']') {
                end = pay_json_value_end(body, k, blen);
                if (end == 0 || count == n) {
                    return -1;
                }

                events[count].evidence_off = k;
                events[count].evidence_len = end - k;
                count++;

                k = pay_json_ws(body, end, blen);
                if (k < blen && body[k] == ',') {
                    k = pay_json_ws(body, k + 1, blen);
                }
            }

            if (count != n) {
                return -1;
            }

            found = 1;
        }

        end = pay_json_value_end(body, i, blen);
        if (end == 0) {
            return -1;
        }

        i = pay_json_ws(body, end, blen);
        if (i < blen && body[i] == ',') {
            i = pay_json_ws(body, i + 1, blen);
        }
    }

    return found ? 0 : -1;
}


pay_err_e
pay_adyen_verify(const char *body, size_t blen, const pay_secret_t *keys,
    size_t nkeys, pay_event_t *events, size_t max, size_t *nevents)
{
    size_t             i, n;
    json_t            *root, *items;
    pay_err_e          rc;
    pay_adyen_item_t   it;

    if (nevents != NULL) {
        *nevents = 0;
    }

    if (body == NULL || blen == 0 || keys == NULL || nkeys == 0
        || events == NULL || max == 0 || nevents == NULL)
    {
        return PAY_ERR_BAD_SIGNATURE;
    }

    root = json_loadb(body, blen, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    rc = PAY_ERR_BAD_SIGNATURE;

    items = json_object_get(root, "notificationItems");
    n = json_array_size(items);

    if (!json_is_object(root) || !json_is_array(items) || n == 0) {
        goto done;
    }

    /* every item verifies before any event is written: Adyen sets no
     * bound on a batch, the body's size limit bounds it */
    for (i = 0; i < n; i++) {
        if (pay_adyen_item_read(json_array_get(items, i), &it) != 0
            || pay_adyen_item_verify(&it, keys, nkeys) != 0)
        {
            goto done;
        }
    }

    if (n > max) {
        /* authentic, and more than the caller can hold: how many it
         * needs, for it to call again (nothing is written) */
        rc = PAY_ERR_PAYLOAD_TOO_LARGE;
        goto done;
    }

    /* authentic from here on: an item we cannot read is unreadable,
     * not a bad signature */
    rc = PAY_ERR_INVALID_REQUEST;

    for (i = 0; i < n; i++) {
        if (pay_adyen_item_read(json_array_get(items, i), &it) != 0
            || pay_adyen_event(&it, &events[i]) != 0)
        {
            goto done;
        }
    }

    /* each item's own bytes, for the inbox; none found: the whole body */
    if (pay_adyen_item_spans(body, blen, events, n) != 0) {
        for (i = 0; i < n; i++) {
            events[i].evidence_off = 0;
            events[i].evidence_len = 0;
        }
    }

    *nevents = n;
    rc = PAY_ERR_NONE;

done:

    if (rc == PAY_ERR_PAYLOAD_TOO_LARGE) {
        *nevents = n;
    }

    if (rc != PAY_ERR_NONE) {
        /* nothing half-written is left for a caller that ignores rc */
        memset(events, 0, max * sizeof(pay_event_t));
    }

    json_decref(root);

    return rc;
}


pay_err_e
pay_adyen_evidence_verify(const char *bytes, size_t len,
    const pay_secret_t *keys, size_t nkeys)
{
    size_t             i, n;
    json_t            *root, *items;
    pay_err_e          rc;
    pay_adyen_item_t   it;

    if (bytes == NULL || len == 0 || keys == NULL || nkeys == 0) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    root = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return PAY_ERR_BAD_SIGNATURE;
    }

    rc = PAY_ERR_BAD_SIGNATURE;
    items = json_object_get(root, "notificationItems");

    if (items == NULL) {
        /* one item, {"NotificationRequestItem":{…}} */
        if (pay_adyen_item_read(root, &it) == 0
            && pay_adyen_item_verify(&it, keys, nkeys) == 0)
        {
            rc = PAY_ERR_NONE;
        }

        goto done;
    }

    n = json_array_size(items);
    if (!json_is_array(items) || n == 0) {
        goto done;
    }

    for (i = 0; i < n; i++) {
        if (pay_adyen_item_read(json_array_get(items, i), &it) != 0
            || pay_adyen_item_verify(&it, keys, nkeys) != 0)
        {
            goto done;
        }
    }

    rc = PAY_ERR_NONE;

done:

    json_decref(root);

    return rc;
}


/* --- balance-platform transfer webhooks (pay-outs) ------------------- */

pay_err_e
pay_adyen_transfer_verify(const char *sig, size_t siglen, const char *body,
    size_t blen, const pay_secret_t *keys, size_t nkeys)
{
    int     match;
    size_t  i;
    char    b64[PAY_ADYEN_SIG_B64_LEN + 1];

    if (sig == NULL || siglen != PAY_ADYEN_SIG_B64_LEN || body == NULL
        || blen == 0 || keys == NULL || nkeys == 0)
    {
        return PAY_ERR_BAD_SIGNATURE;
    }

    match = 0;

    for (i = 0; i < nkeys; i++) {
        if (keys[i].data == NULL || keys[i].len == 0
            || pay_adyen_hmac_b64(keys[i].data, keys[i].len, body, blen, b64)
               != 0)
        {
            continue;
        }

        /* every key is tried, each compared in constant time */
        match |= (CRYPTO_memcmp(b64, sig, PAY_ADYEN_SIG_B64_LEN) == 0);
    }

    OPENSSL_cleanse(b64, sizeof(b64));

    return match ? PAY_ERR_NONE : PAY_ERR_BAD_SIGNATURE;
}


/* A string member without NUL into dst: absent is "" unless required
 * (then also non-empty); too long, another type: -1. */
static int
pay_adyen_member(char *dst, size_t size, json_t *obj, const char *name,
    int required)
{
    json_t      *v;
    const char  *s;
    size_t       len;

    dst[0] = '\0';
    v = json_object_get(obj, name);

    if (v == NULL) {
        return required ? -1 : 0;
    }

    s = json_string_value(v);
    if (s == NULL) {
        return -1;
    }

    len = json_string_length(v);

    if (strlen(s) != len || len >= size || (required && len == 0)) {
        return -1;
    }

    memcpy(dst, s, len + 1);
    return 0;
}


int
pay_adyen_parse_transfer(const char *body, size_t blen, pay_event_t *ev)
{
    int           rc, n;
    size_t        i;
    json_t       *root, *data, *amount, *value;
    char          status[64], env[8], cur[4];

    if (ev == NULL) {
        return -1;
    }

    memset(ev, 0, sizeof(*ev));
    ev->amount = PAY_EVT_AMOUNT_ABSENT;
    ev->livemode = -1;

    if (body == NULL) {
        return -1;
    }

    root = json_loadb(body, blen, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL) {
        return -1;
    }

    rc = -1;
    data = json_object_get(root, "data");

    if (!json_is_object(root) || !json_is_object(data)
        || pay_adyen_member(ev->type, sizeof(ev->type), root, "type", 1)
           != 0
        || pay_adyen_member(ev->object_ref, sizeof(ev->object_ref), data,
                            "id", 1) != 0
        || pay_adyen_member(ev->reference, sizeof(ev->reference), data,
                            "reference", 0) != 0
        || pay_adyen_member(status, sizeof(status), data, "status", 0) != 0)
    {
        goto done;
    }

    /* signed with the body: which money this is */
    if (pay_adyen_member(env, sizeof(env), root, "environment", 0) == 0) {
        ev->livemode = strcmp(env, "live") == 0 ? 1
                       : strcmp(env, "test") == 0 ? 0 : -1;
    }

    if (strcmp(ev->type, "balancePlatform.transfer.updated") != 0
        && strcmp(ev->type, "balancePlatform.transfer.created") != 0)
    {
        n = snprintf(ev->event_id, sizeof(ev->event_id), "%s:%s", ev->type,
                     ev->object_ref);
        if (n > 0 && (size_t) n < sizeof(ev->event_id)) {
            ev->kind = PAY_EVT_IGNORED;
            rc = 0;
        }

        goto done;
    }

    /* a transfer's state moves money: status and amount are required */
    amount = json_object_get(data, "amount");
    value = json_object_get(amount, "value");

    if (status[0] == '\0' || !json_is_object(amount)
        || !json_is_integer(value) || json_integer_value(value) < 0
        || pay_adyen_member(cur, sizeof(cur), amount, "currency", 1) != 0
        || strlen(cur) != 3)
    {
        goto done;
    }

    for (i = 0; i < 3; i++) {
        if (cur[i] >= 'a' && cur[i] <= 'z') {
            cur[i] = (char) (cur[i] - 'a' + 'A');

        } else if (cur[i] < 'A' || cur[i] > 'Z') {
            goto done;
        }
    }

    memcpy(ev->currency, cur, 4);

    if (pay_psp_amount_from_psp(PAY_DIALECT_ADYEN, ev->currency,
                                (int64_t) json_integer_value(value),
                                &ev->amount)
        != 0)
    {
        ev->amount = PAY_EVT_AMOUNT_INEXACT;
    }

    n = snprintf(ev->event_id, sizeof(ev->event_id), "transfer:%s:%s",
                 ev->object_ref, status);
    if (n < 0 || (size_t) n >= sizeof(ev->event_id)) {
        goto done;
    }

    if (strcmp(status, "booked") == 0) {
        ev->kind = PAY_EVT_PAYOUT_PAID;

    } else if (strcmp(status, "failed") == 0
               || strcmp(status, "returned") == 0
               || strcmp(status, "refused") == 0)
    {
        ev->kind = PAY_EVT_PAYOUT_FAILED;

    } else {
        /* received, authorised, pending…: on its way */
        ev->kind = PAY_EVT_PENDING;
    }

    rc = 0;

done:

    json_decref(root);

    if (rc != 0) {
        memset(ev, 0, sizeof(*ev));
        ev->amount = PAY_EVT_AMOUNT_ABSENT;
        ev->livemode = -1;
    }

    return rc;
}


pay_err_e
pay_adyen_evidence_events(const char *bytes, size_t len,
    const pay_secret_t *keys, size_t nkeys, pay_event_t *events, size_t max,
    size_t *nevents)
{
    json_t            *root;
    pay_err_e          rc;
    pay_adyen_item_t   it;

    if (nevents != NULL) {
        *nevents = 0;
    }

    if (bytes == NULL || len == 0 || keys == NULL || nkeys == 0
        || events == NULL || max == 0 || nevents == NULL)
    {
        return PAY_ERR_BAD_SIGNATURE;
    }

    root = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return PAY_ERR_BAD_SIGNATURE;
    }

    if (json_object_get(root, "notificationItems") != NULL) {
        /* a whole notification, as kept before items were kept alone */
        json_decref(root);
        return pay_adyen_verify(bytes, len, keys, nkeys, events, max,
                                nevents);
    }

    /* one item: verified, then read as pay_adyen_verify reads each */
    rc = PAY_ERR_BAD_SIGNATURE;

    if (pay_adyen_item_read(root, &it) == 0
        && pay_adyen_item_verify(&it, keys, nkeys) == 0)
    {
        rc = PAY_ERR_INVALID_REQUEST;

        if (pay_adyen_event(&it, &events[0]) == 0) {
            events[0].evidence_off = 0;
            events[0].evidence_len = len;
            *nevents = 1;
            rc = PAY_ERR_NONE;
        }
    }

    if (rc != PAY_ERR_NONE) {
        memset(&events[0], 0, sizeof(pay_event_t));
    }

    json_decref(root);

    return rc;
}
