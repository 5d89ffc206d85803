/*
 * ngx_payments core: what the dialects' session look-ups share (dialect.h,
 * doc/PSPS.md "Session look-up").  The request is a GET whose path carries
 * the PSP's token; the answer decides a checkout only when it is readable,
 * names the session we asked about and says something terminal.  Anything
 * else is "ask later": a look-up never fails a checkout on a doubt.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payments/dialect.h>

#include "dialect_internal.h"


static int
pay_lookup_plain(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
}


int
pay_lookup_token_ok(const char *token, int strict)
{
    size_t         i;
    unsigned char  c;

    if (token == NULL) {
        return 0;
    }

    for (i = 0; token[i] != '\0'; i++) {
        c = (unsigned char) token[i];

        if (i >= PAY_LOOKUP_TOKEN_MAX || c < 0x21 || c > 0x7e
            || (strict && !pay_lookup_plain(c)))
        {
            return 0;
        }
    }

    /* even escaped, a dot segment may be undone by the PSP's server */
    return i > 0 && strcmp(token, ".") != 0 && strcmp(token, "..") != 0;
}


void
pay_buf_escape(pay_buf_t *b, const char *s)
{
    static const char  hex[] = "0123456789ABCDEF";
    char               esc[3];
    unsigned char      c;
    size_t             run;

    while (*s != '\0') {
        for (run = 0; s[run] != '\0'
                      && pay_lookup_plain((unsigned char) s[run]); run++)
        {
            /* measure the run */
        }

        pay_buf_add(b, s, run);
        s += run;

        if (*s != '\0') {
            c = (unsigned char) *s++;
            esc[0] = '%';
            esc[1] = hex[c >> 4];
            esc[2] = hex[c & 0x0f];
            pay_buf_add(b, esc, 3);
        }
    }
}


int
pay_lookup_request(pay_buf_t *b, pay_psp_request_t *req)
{
    memset(req, 0, sizeof(*req));

    if (b->failed || b->data == NULL) {
        free(b->data);
        return -1;
    }

    /* a GET: no body, no Content-Type (psp.h) */
    req->path = b->data;

    return 0;
}


int
pay_lookup_get(const pay_psp_lookup_t *in, int strict, const char *prefix,
    const char *suffix, pay_psp_request_t *req)
{
    pay_buf_t  b;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_lookup_token_ok(in->token, strict)) {
        return -1;
    }

    memset(&b, 0, sizeof(b));
    pay_buf_str(&b, prefix);

    if (strict) {
        pay_buf_str(&b, in->token);

    } else {
        pay_buf_escape(&b, in->token);
    }

    if (suffix != NULL) {
        pay_buf_str(&b, suffix);
    }

    return pay_lookup_request(&b, req);
}


int
pay_lookup_no_token(const pay_psp_lookup_t *in)
{
    return in != NULL && (in->token == NULL || in->token[0] == '\0');
}


int
pay_lookup_nonce_get(const pay_psp_lookup_t *in, const char *prefix,
    const char *before, const char *after, pay_psp_request_t *req)
{
    pay_buf_t  b;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)) {
        return -1;
    }

    memset(&b, 0, sizeof(b));
    pay_buf_str(&b, prefix);
    pay_buf_escape(&b, before);
    pay_buf_escape(&b, in->nonce);
    pay_buf_escape(&b, after);

    return pay_lookup_request(&b, req);
}


int
pay_expire_request(pay_buf_t *b, pay_psp_request_t *req, const char *type,
    const char *body)
{
    memset(req, 0, sizeof(*req));

    if (b->failed || b->data == NULL) {
        free(b->data);
        return -1;
    }

    req->path = b->data;
    req->content_type = strdup(type);
    req->body = strdup(body);
    req->body_len = strlen(body);

    if (req->content_type == NULL || req->body == NULL) {
        pay_psp_request_free(req);
        return -1;
    }

    return 0;
}


pay_lookup_outcome_e
pay_lookup_unknown(pay_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->amount = PAY_EVT_AMOUNT_ABSENT;
    ev->livemode = -1;

    return PAY_LOOKUP_UNKNOWN;
}


int
pay_lookup_begin(const pay_psp_lookup_t *in, int status, const char *body,
    size_t len, pay_event_t *ev, json_t **root)
{
    *root = NULL;

    (void) pay_lookup_unknown(ev);

    if (status == 401 || status == 403) {
        /* never the PSP's text: it may quote the credential */
        return PAY_LOOKUP_AUTH;
    }

    /* a 404 is no proof the session is gone (a wrong base URL, a PSP
     * account mixed up): never a reason to fail a checkout */
    if (status < 200 || status > 299 || in == NULL
        || !pay_lookup_token_ok(in->token, 0))
    {
        return PAY_LOOKUP_UNKNOWN;
    }

    *root = pay_psp_json(body, len);

    return *root != NULL ? 0 : PAY_LOOKUP_UNKNOWN;
}


int
pay_lookup_begin_nonce(const pay_psp_lookup_t *in, int status,
    const char *body, size_t len, pay_event_t *ev, json_t **root)
{
    *root = NULL;

    (void) pay_lookup_unknown(ev);

    if (status == 401 || status == 403) {
        return PAY_LOOKUP_AUTH;
    }

    if (status < 200 || status > 299 || in == NULL
        || !pay_op_nonce_ok(in->nonce))
    {
        return PAY_LOOKUP_UNKNOWN;
    }

    *root = pay_psp_json(body, len);

    return *root != NULL ? 0 : PAY_LOOKUP_UNKNOWN;
}


int
pay_lookup_same(const pay_psp_lookup_t *in, const char *id, int may_lack)
{
    if (id == NULL) {
        return may_lack;
    }

    return strcmp(id, in->token) == 0;
}


pay_lookup_outcome_e
pay_lookup_open(pay_event_t *ev, const char *status)
{
    (void) pay_lookup_unknown(ev);

    ev->kind = PAY_EVT_PENDING;

    if (strlen(status) < sizeof(ev->type)) {
        strcpy(ev->type, status);
    }

    return PAY_LOOKUP_OPEN;
}


void
pay_lookup_shopper(pay_event_t *ev, const char *id)
{
    ev->shopper = 1;

    if (id != NULL && strlen(id) < sizeof(ev->token)) {
        strcpy(ev->token, id);
    }
}


pay_lookup_outcome_e
pay_lookup_decide(const pay_psp_lookup_t *in, pay_event_t *ev,
    pay_event_kind_e kind, const char *status, const char *reference)
{
    int  n;

    (void) pay_lookup_unknown(ev);

    if (reference == NULL || reference[0] == '\0') {
        reference = in->nonce != NULL ? in->nonce : "";
    }

    n = snprintf(ev->event_id, sizeof(ev->event_id), "lookup:%s:%s",
                 in->token, status);

    if (n < 0 || (size_t) n >= sizeof(ev->event_id)
        || strlen(status) >= sizeof(ev->type)
        || strlen(in->token) >= sizeof(ev->token)
        || strlen(reference) >= sizeof(ev->reference))
    {
        return pay_lookup_unknown(ev);
    }

    strcpy(ev->type, status);
    strcpy(ev->token, in->token);
    strcpy(ev->reference, reference);
    ev->kind = kind;

    return PAY_LOOKUP_DECIDED;
}


int
pay_lookup_currency(pay_event_t *ev, const char *cur)
{
    size_t  i;
    char    c;

    ev->currency[0] = '\0';

    if (cur == NULL || strlen(cur) != 3) {
        return -1;
    }

    for (i = 0; i < 3; i++) {
        c = cur[i];

        if (c >= 'a' && c <= 'z') {
            c = (char) (c - 'a' + 'A');
        }

        if (c < 'A' || c > 'Z') {
            ev->currency[0] = '\0';
            return -1;
        }

        ev->currency[i] = c;
    }

    ev->currency[3] = '\0';

    return 0;
}


void
pay_lookup_payment_ref(pay_event_t *ev, const char *ref)
{
    size_t  i;

    if (ref == NULL) {
        return;
    }

    for (i = 0; ref[i] != '\0'; i++) {
        if (i >= sizeof(ev->payment_ref) - 1
            || (unsigned char) ref[i] < 0x21 || (unsigned char) ref[i] > 0x7e)
        {
            return;
        }
    }

    memcpy(ev->payment_ref, ref, i + 1);
}


static int
pay_lookup_visible(const char *s, size_t size)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= size - 1
            || (unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e)
        {
            return 0;
        }
    }

    return i > 0;
}


int
pay_lookup_method(pay_event_t *ev, const char *token, const char *customer)
{
    ev->method[0] = '\0';
    ev->psp_customer[0] = '\0';

    if (token == NULL || !pay_lookup_visible(token, sizeof(ev->method))
        || (customer != NULL
            && !pay_lookup_visible(customer, sizeof(ev->psp_customer))))
    {
        return -1;
    }

    strcpy(ev->method, token);

    if (customer != NULL) {
        strcpy(ev->psp_customer, customer);
    }

    return 0;
}


/*
 * What an answer tells of a stored method for display, as the method's
 * event does: brand, last4, exp_month, exp_year of obj (the generic
 * answer itself; Stripe's expanded payment method's card), each kept only
 * when it fits: brand of [a-z0-9_-], last4 four digits, exp_month 1..12,
 * exp_year 2000..2200.  Anything else is left as it was ("" or 0).
 */
void
pay_lookup_display(pay_event_t *ev, const json_t *obj)
{
    size_t       i;
    json_t      *v;
    const char  *brand, *last4;

    if (!json_is_object(obj)) {
        return;
    }

    brand = pay_json_str(obj, "brand");
    last4 = pay_json_str(obj, "last4");

    if (brand != NULL && strlen(brand) < sizeof(ev->brand)) {
        for (i = 0; brand[i] != '\0'; i++) {
            if (!((brand[i] >= 'a' && brand[i] <= 'z')
                  || (brand[i] >= '0' && brand[i] <= '9')
                  || brand[i] == '_' || brand[i] == '-'))
            {
                break;
            }
        }

        if (brand[i] == '\0') {
            strcpy(ev->brand, brand);
        }
    }

    if (last4 != NULL && strlen(last4) == 4
        && strspn(last4, "0123456789") == 4)
    {
        strcpy(ev->last4, last4);
    }

    v = json_object_get(obj, "exp_month");
    if (json_is_integer(v) && json_integer_value(v) >= 1
        && json_integer_value(v) <= 12)
    {
        ev->exp_month = (int) json_integer_value(v);
    }

    v = json_object_get(obj, "exp_year");
    if (json_is_integer(v) && json_integer_value(v) >= 2000
        && json_integer_value(v) <= 2200)
    {
        ev->exp_year = (int) json_integer_value(v);
    }
}
