/*
 * ngx_payments core: PSP dialects (psp.h).
 *
 * The registration request is built once, stored when the idempotency key
 * is claimed, and re-sent byte for byte on every retry; so every builder
 * here is a pure function of its inputs with a fixed field order.  The
 * answer's classifier decides between "created", "refused for good",
 * "our credentials" and "try again", and extracts a refusal reason that is
 * safe to show the merchant.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <payments/json_dump.h>
#include <payments/money.h>
#include <payments/psp.h>
#include <payments/time.h>
#include <payments/view.h>

#include "dialect_internal.h"


#define PAY_PSP_BODY_MAX     (256 * 1024)   /* a PSP answer we read at all */
#define PAY_PSP_NONCE_MAX    64             /* API.md */
#define PAY_PSP_REDACTED     "[redacted]"
#define PAY_PSP_KEYISH_RUN   32


void
pay_buf_str(pay_buf_t *b, const char *s)
{
    pay_buf_add(b, s, strlen(s));
}


/*
 * application/x-www-form-urlencoded, as Stripe reads it: a body is
 * "name=value" pairs joined by '&'; the name and the value are each
 * percent-decoded whole ('+' is a space) and only then is the name split
 * at its brackets, "metadata[key]" into metadata / key.  So '&', '=',
 * '%' and '+' in anything we were given must be escaped, and a bracket
 * cannot be escaped at all: "%5B" is as much a bracket as "[".  This is
 * the one place a form body is written (registrations, refunds, captures,
 * cancels and transfers alike):
 *
 *   - a name is the gateway's own, "seg" or "seg[seg]...", every seg of
 *     [A-Za-z0-9_]; its brackets are structure and go as they are (as
 *     Stripe's own clients send them), which keeps stored requests
 *     readable;
 *   - a key (may be NULL) is anyone's, a merchant's metadata key: it
 *     becomes one more "[key]" segment, escaped as a value is; an empty
 *     key or one holding a bracket cannot be one segment and fails the
 *     whole body (the API refuses both, pay_metadata_check);
 *   - a value is escaped: everything but the unreserved characters
 *     ALPHA / DIGIT / "-" / "." / "_" / "~" is percent-encoded, space as
 *     %20 (never "+", which some decoders leave alone).
 *
 * Anything else fails the body (b->failed), never a field silently.
 */
static void
pay_buf_form_escape(pay_buf_t *b, const char *s)
{
    static const char  hex[] = "0123456789ABCDEF";
    char               esc[3];
    unsigned char      c;
    size_t             run;

    while (*s != '\0') {
        for (run = 0; s[run] != '\0'; run++) {
            c = (unsigned char) s[run];

            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || (c >= '0' && c <= '9') || c == '-' || c == '.'
                  || c == '_' || c == '~'))
            {
                break;
            }
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


/* seg ("[" seg "]")*, seg of [A-Za-z0-9_]: 1 or 0 */
static int
pay_form_name_ok(const char *name)
{
    size_t  seg;
    int     open;

    seg = 0;
    open = 0;

    for ( ;; name++) {
        switch (*name) {

        case '\0':
            return seg > 0 && !open;

        case '[':
            if (seg == 0 || open) {
                return 0;
            }
            open = 1;
            seg = 0;
            break;

        case ']':
            if (seg == 0 || !open) {
                return 0;
            }
            open = 0;
            /* the next is '[' or the end */
            if (name[1] != '\0' && name[1] != '[') {
                return 0;
            }
            break;

        default:
            if (!((*name >= 'A' && *name <= 'Z')
                  || (*name >= 'a' && *name <= 'z')
                  || (*name >= '0' && *name <= '9') || *name == '_'))
            {
                return 0;
            }
            seg++;
        }
    }
}


static void
pay_form_write(pay_buf_t *b, const char *name, const char *key,
    const char *value)
{
    if (name == NULL || value == NULL || !pay_form_name_ok(name)
        || (key != NULL && (key[0] == '\0' || strpbrk(key, "[]") != NULL)))
    {
        b->failed = 1;
        return;
    }

    if (b->len > 0) {
        pay_buf_add(b, "&", 1);
    }

    pay_buf_str(b, name);

    if (key != NULL) {
        pay_buf_add(b, "[", 1);
        pay_buf_form_escape(b, key);
        pay_buf_add(b, "]", 1);
    }

    pay_buf_add(b, "=", 1);
    pay_buf_form_escape(b, value);
}


void
pay_form_field(pay_buf_t *b, const char *name, const char *value)
{
    pay_form_write(b, name, NULL, value);
}


void
pay_form_field_key(pay_buf_t *b, const char *name, const char *key,
    const char *value)
{
    pay_form_write(b, name, key, value);
}


char *
pay_form_encode(const pay_form_field_t *fields, size_t n)
{
    size_t     i;
    pay_buf_t  b;

    memset(&b, 0, sizeof(b));

    for (i = 0; i < n; i++) {
        pay_form_write(&b, fields[i].name, fields[i].key, fields[i].value);
    }

    /* no field: an empty body, as an empty form is */
    if (!b.failed && b.data == NULL) {
        pay_buf_add(&b, "", 0);
    }

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    return b.data;
}


void
pay_form_field_int(pay_buf_t *b, const char *name, int64_t value)
{
    char  num[24];

    snprintf(num, sizeof(num), "%" PRId64, value);
    pay_form_field(b, name, num);
}


pay_dialect_e
pay_dialect_parse(const char *name, size_t len)
{
    const pay_dialect_t  *dl;

    dl = pay_dialect_find(name, len);

    return dl != NULL ? dl->id : 0;
}


int
pay_psp_exponent(pay_dialect_e d, const char *currency)
{
    const pay_dialect_t   *dl;
    const pay_currency_t  *iso;

    dl = pay_dialect_get(d);

    if (dl == NULL || currency == NULL) {
        return -1;
    }

    iso = pay_currency_find(currency, strnlen(currency, 4));

    return iso != NULL ? dl->exponent(iso) : -1;
}


/* v from the dialect's exponent to ISO's (to_psp 0) or back (1). */
static int
pay_psp_convert(const pay_dialect_t *dl, const char *currency, int64_t v,
    int to_psp, int64_t *out)
{
    int                    e;
    const pay_currency_t  *iso;

    if (dl == NULL || currency == NULL) {
        return -1;
    }

    iso = pay_currency_find(currency, strnlen(currency, 4));
    if (iso == NULL) {
        return -1;
    }

    e = dl->exponent(iso);

    return to_psp ? pay_amount_rescale(v, iso->exponent, e, out)
                  : pay_amount_rescale(v, e, iso->exponent, out);
}


int
pay_dialect_to_psp(const pay_dialect_t *d, const char *currency, int64_t iso,
    int64_t *psp)
{
    return pay_psp_convert(d, currency, iso, 1, psp);
}


int
pay_psp_amount_to_psp(pay_dialect_e d, const char *currency, int64_t iso,
    int64_t *psp)
{
    return pay_psp_convert(pay_dialect_get(d), currency, iso, 1, psp);
}


int
pay_psp_amount_from_psp(pay_dialect_e d, const char *currency, int64_t psp,
    int64_t *iso)
{
    return pay_psp_convert(pay_dialect_get(d), currency, psp, 0, iso);
}


int
pay_psp_amount_supported(pay_dialect_e d, const char *currency,
    int64_t minor)
{
    int64_t               psp;
    const pay_dialect_t  *dl;

    dl = pay_dialect_get(d);

    if (dl == NULL || minor <= 0
        || pay_psp_convert(dl, currency, minor, 1, &psp) != 0)
    {
        return 0;
    }

    return dl->amount_ok == NULL
           || dl->amount_ok(psp, pay_psp_exponent(d, currency));
}


int64_t
pay_psp_unit(pay_dialect_e d, const char *currency)
{
    int      i;
    int64_t  u;

    /* the dialects' rules (an exact conversion, Stripe's trailing 0) take
     * every multiple of the smallest amount they take: it is a power of
     * ten, at most 10^18 */
    u = 1;

    for (i = 0; i <= 18; i++) {
        if (pay_psp_amount_supported(d, currency, u)) {
            return u;
        }

        if (i < 18) {
            u *= 10;
        }
    }

    return -1;
}


/*
 * Why one amount cannot go to the PSP: -1 when it can; else 0 (fewer
 * decimals there: no exact value), 1 (the dialect's own rule: Stripe's
 * three-decimal amounts end in 0) or 2 (beyond 2^63 - 1 in its units).
 * The conversion only overflows where the PSP has more decimals than ISO
 * (Adyen's ISK, Stripe's ISK and IQD...), and only loses digits where it
 * has fewer, so the exponents tell the two apart.
 */
static int
pay_psp_amount_why(pay_dialect_e d, const char *currency, int64_t minor)
{
    int                    e;
    int64_t                psp;
    const pay_dialect_t   *dl;
    const pay_currency_t  *iso;

    dl = pay_dialect_get(d);
    iso = pay_currency_find(currency, strnlen(currency, 4));

    if (dl == NULL || iso == NULL || minor <= 0) {
        return 0;
    }

    e = dl->exponent(iso);

    if (pay_psp_convert(dl, currency, minor, 1, &psp) != 0) {
        return e > iso->exponent ? 2 : 0;
    }

    if (dl->amount_ok != NULL && !dl->amount_ok(psp, e)) {
        return 1;
    }

    return -1;
}


int
pay_psp_checkout_amounts(pay_dialect_e d, const pay_checkout_t *co,
    pay_verdict_t *v)
{
    int      why, e, over;
    size_t   i;
    int64_t  sum;

    e = pay_psp_exponent(d, co->currency);
    sum = 0;
    over = 0;

    for (i = 0; i < co->norders; i++) {
        why = pay_psp_amount_why(d, co->currency, co->orders[i].amount);

        /* recomputed as the builder does, not taken from co->total */
        if (co->orders[i].amount > INT64_MAX - sum) {
            over = 1;

        } else {
            sum += co->orders[i].amount;
        }

        switch (why) {

        case -1:
            continue;

        case 1:
            return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                               "payment_orders[%zu].amount: this PSP needs "
                               "%s amounts to end in 0", i, co->currency);

        case 2:
            return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                               "payment_orders[%zu].amount is too large for "
                               "this PSP, which counts %s with %d decimals "
                               "(at most %" PRId64 " of its minor units)",
                               i, co->currency, e, INT64_MAX);

        default:
            return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                               "payment_orders[%zu].amount has no exact "
                               "value at this PSP, which counts %s with %d "
                               "decimals", i, co->currency, e);
        }
    }

    /* each order converts exactly, so their sum does unless it passes
     * 2^63 - 1 in the PSP's units: the total a session or a charge
     * carries, checked here rather than found when the request is built
     * (after the claim, a 500) */
    if (co->norders > 0
        && (over || pay_psp_amount_why(d, co->currency, sum) == 2))
    {
        return pay_verdict(v, PAY_ERR_INVALID_AMOUNT,
                           "the sum of payment_orders amounts is too large "
                           "for this PSP, which counts %s with %d decimals "
                           "(at most %" PRId64 " of its minor units)",
                           co->currency, e, INT64_MAX);
    }

    return 0;
}


int
pay_dialect_currency_exact(const pay_dialect_t *d, const char *currency)
{
    if (d == NULL || currency == NULL) {
        return 0;
    }

    return pay_psp_amount_supported(d->id, currency, 1);
}


static int
pay_visible(const char *s, size_t min, size_t max)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= max || (unsigned char) s[i] < 0x21
            || (unsigned char) s[i] > 0x7e)
        {
            return 0;
        }
    }

    return i >= min;
}


/* Everything a builder relies on; the sum is recomputed, not trusted. */
static int
pay_psp_registration_valid(pay_dialect_e d, const pay_psp_registration_t *r,
    int64_t *total)
{
    size_t                 i;
    int64_t                sum;
    pay_verdict_t          v;
    const pay_checkout_t  *co;

    if (r == NULL || r->co == NULL
        || r->merchant_id == NULL || !pay_visible(r->merchant_id, 1, 64)
        || r->nonce == NULL || !pay_visible(r->nonce, 1, PAY_PSP_NONCE_MAX)
        || r->return_success == NULL
        || !pay_visible(r->return_success, 1, PAY_URL_MAX)
        || r->return_cancel == NULL
        || !pay_visible(r->return_cancel, 1, PAY_URL_MAX)
        || r->expires_at <= 0 || r->expires_at > PAY_TIME_MAX)
    {
        return -1;
    }

    co = r->co;

    /* a save without a charge has no orders, and saves */
    if (co->setup
        ? (co->norders != 0 || co->save_usage == NULL
           || co->payment_method[0] != '\0' || co->manual_capture)
        : (co->norders == 0 || co->orders == NULL))
    {
        return -1;
    }

    if (co->norders > PAY_ORDERS_MAX
        || !pay_visible(co->checkout_id, 1, PAY_ID_MAX)
        || pay_currency_find(co->currency, strnlen(co->currency, 4)) == NULL)
    {
        return -1;
    }

    sum = 0;

    for (i = 0; i < co->norders; i++) {
        if (!pay_visible(co->orders[i].id, 1, PAY_ID_MAX)
            || co->orders[i].amount > INT64_MAX - sum)
        {
            return -1;
        }

        sum += co->orders[i].amount;
    }

    /* every order and the total in the PSP's units (the adapter checked
     * them before the claim) */
    if (pay_psp_checkout_amounts(d, co, &v) != 0) {
        return -1;
    }

    /* an off-session charge needs the PSP's token; a save, our
     * reference for the customer */
    if (co->payment_method[0] != '\0'
        && (r->charge_token == NULL || !pay_visible(r->charge_token, 1, 255)
            || r->recurring == NULL || co->save_usage != NULL))
    {
        return -1;
    }

    if (co->save_usage != NULL
        && (r->customer_ref == NULL || !pay_visible(r->customer_ref, 3, 64)))
    {
        return -1;
    }

    if ((pay_dialect_get(d)->required & PAY_PSP_P_MERCHANT_ACCOUNT)
        && (r->adyen_merchant_account == NULL
            || !pay_visible(r->adyen_merchant_account, 1, 255)))
    {
        return -1;
    }

    *total = sum;

    return 0;
}


/* json_object_set_new that remembers a failure (NULL value or OOM). */
void
pay_json_set(json_t *obj, const char *key, json_t *v, int *failed)
{
    if (v == NULL || json_object_set_new(obj, key, v) != 0) {
        *failed = 1;
    }
}


char *
pay_json_dump(json_t *root, int failed)
{
    char  *s;

    s = NULL;

    /* Insertion order, compact: the same inputs give the same bytes. */
    if (!failed) {
        s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);
    }

    json_decref(root);

    return s;
}


int
pay_psp_build_registration(pay_dialect_e d,
    const pay_psp_registration_t *reg, pay_psp_request_t *req)
{
    int                   charge;
    char                 *body;
    int64_t               total;
    const pay_dialect_t  *dl;

    if (req == NULL) {
        return -1;
    }

    memset(req, 0, sizeof(*req));

    dl = pay_dialect_get(d);

    if (dl == NULL || pay_psp_registration_valid(d, reg, &total) != 0) {
        return -1;
    }

    charge = (reg->co->payment_method[0] != '\0' && !reg->authenticate);

    if (charge && dl->charge_body == NULL) {
        return -1;
    }

    body = charge ? dl->charge_body(reg, total)
                  : dl->registration_body(reg, total);

    if (body == NULL) {
        return -1;
    }

    req->body = body;
    req->body_len = strlen(body);
    req->path = strdup(charge ? dl->charge_path : dl->registration_path);
    req->content_type = strdup(dl->registration_type);

    if (req->path == NULL || req->content_type == NULL) {
        pay_psp_request_free(req);
        return -1;
    }

    return 0;
}


void
pay_psp_request_free(pay_psp_request_t *req)
{
    if (req == NULL) {
        return;
    }

    free(req->path);
    free(req->content_type);
    free(req->body);
    free(req->conf);
    memset(req, 0, sizeof(*req));
}


/* A string member as a C string, or NULL (absent, other type, a NUL). */
const char *
pay_json_str(const json_t *obj, const char *key)
{
    json_t  *v;

    v = json_object_get(obj, key);

    if (!json_is_string(v)
        || strlen(json_string_value(v)) != json_string_length(v))
    {
        return NULL;
    }

    return json_string_value(v);
}


/*
 * {"path":...,"content_type":...,"body":...}: the bytes jansson's
 * json_dumps (compact, in this order) wrote for it, written here (held in
 * a JSON object and dumped, a registration's request cost six times as
 * much: bench/RESULTS.md); the unit test and fuzz_psp_request compare the
 * two.
 */
char *
pay_psp_request_dump(const pay_psp_request_t *req)
{
    pay_json_buf_t  b;

    if (req == NULL || req->path == NULL || req->content_type == NULL
        || req->body == NULL)
    {
        return NULL;
    }

    memset(&b, 0, sizeof(b));
    pay_json_buf_add(&b, "{\"path\":", 8);
    pay_json_buf_string(&b, req->path, strlen(req->path));
    pay_json_buf_add(&b, ",\"content_type\":", 16);
    pay_json_buf_string(&b, req->content_type, strlen(req->content_type));
    pay_json_buf_add(&b, ",\"body\":", 8);
    pay_json_buf_string(&b, req->body, strlen(req->body));

    /* the record as pay_psp_conf_record wrote it: an object, compact */
    if (req->conf != NULL) {
        pay_json_buf_add(&b, ",\"conf\":", 8);
        pay_json_buf_add(&b, req->conf, strlen(req->conf));
    }

    pay_json_buf_add(&b, "}", 1);

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    return b.data;
}


int
pay_psp_request_load(const char *stored, size_t len, pay_psp_request_t *req)
{
    int          bad;
    json_t      *o, *conf;
    const char  *path, *ct, *body;

    if (req == NULL) {
        return -1;
    }

    memset(req, 0, sizeof(*req));

    if (stored == NULL) {
        return -1;
    }

    o = json_loadb(stored, len, JSON_REJECT_DUPLICATES, NULL);
    if (o == NULL) {
        return -1;
    }

    path = pay_json_str(o, "path");
    ct = pay_json_str(o, "content_type");
    body = pay_json_str(o, "body");
    conf = json_object_get(o, "conf");
    bad = 0;

    if (path != NULL && ct != NULL && body != NULL) {
        req->path = strdup(path);
        req->content_type = strdup(ct);
        req->body = strdup(body);
        req->body_len = strlen(body);
    }

    /* a request stored before configurations were recorded has none */
    if (conf != NULL) {
        req->conf = json_is_object(conf) ? pay_json_dumps(conf) : NULL;
        bad = (req->conf == NULL);
    }

    json_decref(o);

    if (bad || req->path == NULL || req->content_type == NULL
        || req->body == NULL)
    {
        pay_psp_request_free(req);
        return -1;
    }

    return 0;
}


/* the settings a record may hold, in its order */
static const char  *pay_psp_conf_names[] = {
    "merchant_account", "balance_account"
};


static const char *
pay_psp_conf_value(const pay_psp_conf_t *conf, size_t i)
{
    return i == 0 ? conf->merchant_account : conf->balance_account;
}


char *
pay_psp_conf_record(const pay_psp_conf_t *conf)
{
    size_t          i, n;
    const char     *v;
    pay_json_buf_t  b;

    if (conf == NULL) {
        return NULL;
    }

    memset(&b, 0, sizeof(b));
    pay_json_buf_add(&b, "{", 1);

    for (i = 0, n = 0;
         i < sizeof(pay_psp_conf_names) / sizeof(pay_psp_conf_names[0]);
         i++)
    {
        v = pay_psp_conf_value(conf, i);
        if (v == NULL) {
            continue;
        }

        if (n++ > 0) {
            pay_json_buf_add(&b, ",", 1);
        }

        pay_json_buf_string(&b, pay_psp_conf_names[i],
                            strlen(pay_psp_conf_names[i]));
        pay_json_buf_add(&b, ":", 1);
        pay_json_buf_string(&b, v, strlen(v));
    }

    pay_json_buf_add(&b, "}", 1);

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    return b.data;
}


const char *
pay_psp_conf_changed(const char *recorded, size_t len,
    const pay_psp_conf_t *now)
{
    size_t       i, known;
    json_t      *o, *m;
    const char  *v, *changed;

    if (recorded == NULL || now == NULL) {
        return "unreadable";
    }

    o = json_loadb(recorded, len, JSON_REJECT_DUPLICATES, NULL);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        return "unreadable";
    }

    changed = NULL;
    known = 0;

    for (i = 0;
         changed == NULL
         && i < sizeof(pay_psp_conf_names) / sizeof(pay_psp_conf_names[0]);
         i++)
    {
        m = json_object_get(o, pay_psp_conf_names[i]);
        v = pay_psp_conf_value(now, i);

        if (m == NULL) {
            changed = v != NULL ? pay_psp_conf_names[i] : NULL;
            continue;
        }

        known++;

        /* a string with a NUL is no value a configuration has */
        if (!json_is_string(m)
            || strlen(json_string_value(m)) != json_string_length(m))
        {
            changed = "unreadable";

        } else if (v == NULL || strcmp(v, json_string_value(m)) != 0) {
            changed = pay_psp_conf_names[i];
        }
    }

    /* a member this release does not know: a setting it cannot compare */
    if (changed == NULL && json_object_size(o) != known) {
        changed = "unreadable";
    }

    json_decref(o);

    return changed;
}


/* expires_at as epoch seconds (integer) or ISO 8601 (string); 0 if
 * absent or unusable: the adapter then keeps the one it asked for. */
static int64_t
pay_json_time(const json_t *obj, const char *key)
{
    json_t      *v;
    json_int_t   i;
    int64_t      t;

    v = json_object_get(obj, key);

    if (json_is_integer(v)) {
        i = json_integer_value(v);
        return (i > 0 && i <= PAY_TIME_MAX) ? (int64_t) i : 0;
    }

    if (json_is_string(v)) {
        t = pay_time_parse(json_string_value(v), json_string_length(v),
                           PAY_TIME_RFC3339);
        return t > 0 ? t : 0;
    }

    return 0;
}


json_t *
pay_psp_json(const char *body, size_t len)
{
    json_t  *root;

    if (body == NULL || len == 0 || len > PAY_PSP_BODY_MAX) {
        return NULL;
    }

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);

    if (root != NULL && !json_is_object(root)) {
        json_decref(root);
        return NULL;
    }

    return root;
}


static int
pay_psp_created(const pay_dialect_t *dl, const json_t *root,
    pay_psp_result_t *res)
{
    const char  *token, *url;

    token = pay_json_str(root, dl->token_field);
    url = pay_json_str(root, "url");

    if (token == NULL || !pay_visible(token, 1, sizeof(res->token) - 1)
        || url == NULL || !pay_visible(url, 1, sizeof(res->url) - 1))
    {
        return -1;
    }

    strcpy(res->token, token);
    strcpy(res->url, url);
    res->expires_at = pay_json_time(root, dl->expires_field);

    return 0;
}


/* memmem() without relying on _GNU_SOURCE, which nginx's build of the
 * core does not define on the command line. */
static const char *
pay_find(const char *hay, size_t n, const char *needle, size_t m)
{
    size_t  i;

    if (m == 0 || m > n) {
        return NULL;
    }

    for (i = 0; i <= n - m; i++) {
        if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0) {
            return hay + i;
        }
    }

    return NULL;
}


static int
pay_keyish(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='
           || c == '_' || c == '-';
}


static int
pay_run_has_prefix(const char *s, size_t n)
{
    static const char  *prefixes[] = {
        "sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"
    };
    size_t              i, pl;

    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        pl = strlen(prefixes[i]);

        if (n >= pl && pay_find(s, n, prefixes[i], pl) != NULL) {
            return 1;
        }
    }

    return 0;
}


/*
 * The PSP's words, made safe to store and show the merchant:
 *   - every occurrence of our credential (when the adapter passes it) is
 *     replaced first, over the whole message, so truncation cannot leave
 *     half of it;
 *   - control characters become spaces, non-ASCII characters "?" (one per
 *     UTF-8 sequence), runs of spaces collapse;
 *   - anything that looks like a credential is replaced too: a run of 32
 *     or more base64-ish characters, or one containing a Stripe secret,
 *     restricted or webhook key prefix;
 *   - at most 255 bytes, "..." marking a cut.
 */
static void
pay_reason_set(char *reason, size_t size, const char *msg, size_t len,
    const char *secret, size_t secret_len)
{
    size_t          i, j, run, max;
    unsigned char   c;
    const char     *hit;
    pay_buf_t       a, b;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));

    if (secret != NULL && secret_len > 0) {
        i = 0;

        while (i < len) {
            hit = pay_find(msg + i, len - i, secret, secret_len);
            if (hit == NULL) {
                pay_buf_add(&a, msg + i, len - i);
                break;
            }

            pay_buf_add(&a, msg + i, (size_t) (hit - (msg + i)));
            pay_buf_str(&a, PAY_PSP_REDACTED);
            i = (size_t) (hit - msg) + secret_len;
        }

    } else {
        pay_buf_add(&a, msg, len);
    }

    if (a.failed || a.data == NULL) {
        goto done;
    }

    for (i = 0; i < a.len; i++) {
        c = (unsigned char) a.data[i];

        if (c < 0x20 || c == 0x7f) {
            a.data[i] = ' ';

        } else if (c >= 0x80) {
            /* a lead byte stands for its character; continuations go */
            a.data[i] = (c & 0xc0) == 0x80 ? '\0' : '?';
        }
    }

    for (i = 0; i < a.len; /* void */) {
        c = (unsigned char) a.data[i];

        if (c == '\0') {
            i++;
            continue;
        }

        if (c == ' ') {
            if (b.len > 0 && b.data[b.len - 1] != ' ') {
                pay_buf_add(&b, " ", 1);
            }

            i++;
            continue;
        }

        for (run = 0; i + run < a.len
                      && pay_keyish((unsigned char) a.data[i + run]); run++)
        {
            /* measure the run */
        }

        if (run == 0) {
            pay_buf_add(&b, &a.data[i], 1);
            i++;
            continue;
        }

        if (run >= PAY_PSP_KEYISH_RUN
            || pay_run_has_prefix(a.data + i, run))
        {
            pay_buf_str(&b, PAY_PSP_REDACTED);

        } else {
            pay_buf_add(&b, a.data + i, run);
        }

        i += run;
    }

    if (b.failed || b.data == NULL) {
        goto done;
    }

    while (b.len > 0 && b.data[b.len - 1] == ' ') {
        b.data[--b.len] = '\0';
    }

    max = size - 1;

    if (b.len > max) {
        j = max - 3;

        while (j > 0 && b.data[j - 1] == ' ') {
            j--;
        }

        memcpy(reason, b.data, j);
        memcpy(reason + j, "...", 4);

    } else {
        memcpy(reason, b.data, b.len + 1);
    }

done:

    free(a.data);
    free(b.data);
}


const json_t *
pay_json_reason(const json_t *root, const char *key, const char *alt)
{
    const json_t  *v;

    v = json_object_get(root, key);
    if (json_is_string(v) && json_string_length(v) > 0) {
        return v;
    }

    if (alt == NULL) {
        return NULL;
    }

    v = json_object_get(root, alt);

    return json_is_string(v) ? v : NULL;
}


/* A 4xx that only says an earlier attempt holds the Idempotency-Key, still
 * running or with other bytes (the dialect's key_in_use): no refusal, as
 * that attempt may have acted.  1 with the reason set, else 0. */
static int
pay_psp_key_in_use(const pay_dialect_t *dl, const json_t *root, int status,
    char *reason, size_t size)
{
    if (root == NULL || dl->key_in_use == NULL || !dl->key_in_use(root)) {
        return 0;
    }

    snprintf(reason, size, "the PSP holds this idempotency key for an "
             "earlier request (HTTP %d)", status);
    return 1;
}


void
pay_psp_parse_registration_redact(pay_dialect_e d, int status,
    const char *body, size_t len, const char *secret, size_t secret_len,
    pay_psp_result_t *res)
{
    json_t               *root;
    const json_t         *v;
    const pay_dialect_t  *dl;

    if (res == NULL) {
        return;
    }

    memset(res, 0, sizeof(*res));
    res->outcome = PAY_PSP_RETRY;

    dl = pay_dialect_get(d);

    if (dl == NULL) {
        snprintf(res->reason, sizeof(res->reason), "unknown PSP dialect");
        return;
    }

    if (status >= 200 && status <= 299) {
        root = pay_psp_json(body, len);

        if (root != NULL && pay_psp_created(dl, root, res) == 0) {
            res->outcome = PAY_PSP_CREATED;

        } else {
            /* The PSP may well have created the session: retrying with
             * the same idempotency key finds out without a duplicate. */
            memset(res->token, 0, sizeof(res->token));
            memset(res->url, 0, sizeof(res->url));
            res->expires_at = 0;
            snprintf(res->reason, sizeof(res->reason),
                     "unusable answer from the PSP (HTTP %d)", status);
        }

        json_decref(root);
        return;
    }

    switch (status) {

    case 400:
    case 402:
    case 404:
    case 422:
        root = pay_psp_json(body, len);

        if (pay_psp_key_in_use(dl, root, status, res->reason,
                               sizeof(res->reason)))
        {
            json_decref(root);
            res->key_in_use = 1;
            return;
        }

        res->outcome = PAY_PSP_REFUSED;
        v = root ? dl->refusal_reason(root) : NULL;

        if (v != NULL) {
            pay_reason_set(res->reason, sizeof(res->reason),
                           json_string_value(v), json_string_length(v),
                           secret, secret_len);
        }

        if (res->reason[0] == '\0') {
            snprintf(res->reason, sizeof(res->reason),
                     "the PSP refused the registration (HTTP %d)", status);
        }

        json_decref(root);
        return;

    case 401:
    case 403:
        /* Never the PSP's text: it may quote the credential. */
        res->outcome = PAY_PSP_AUTH;
        snprintf(res->reason, sizeof(res->reason),
                 "the PSP refused our credentials (HTTP %d)", status);
        return;

    case 0:
        snprintf(res->reason, sizeof(res->reason), "no answer from the PSP");
        return;

    default:
        snprintf(res->reason, sizeof(res->reason),
                 "the PSP answered HTTP %d", status);
        return;
    }
}


void
pay_psp_parse_registration(pay_dialect_e d, int status, const char *body,
    size_t len, pay_psp_result_t *res)
{
    pay_psp_parse_registration_redact(d, status, body, len, NULL, 0, res);
}


/* --- refunds and pay-outs (dialect.h) -------------------------------- */

static int
pay_op_plain(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
}


int
pay_op_nonce_ok(const char *nonce)
{
    size_t  i, colon, ncolons;

    if (nonce == NULL) {
        return 0;
    }

    colon = 0;
    ncolons = 0;

    for (i = 0; nonce[i] != '\0'; i++) {
        if (i >= PAY_PSP_NONCE_MAX) {
            return 0;
        }

        if (nonce[i] == ':') {
            ncolons++;
            colon = i;

        } else if (!pay_op_plain((unsigned char) nonce[i])) {
            return 0;
        }
    }

    /* merchant_id ":" op id, neither empty */
    return ncolons == 1 && colon > 0 && colon < i - 1;
}


int
pay_op_id_ok(const char *s, size_t max, int alnum_only)
{
    size_t         i;
    unsigned char  c;

    if (s == NULL) {
        return 0;
    }

    for (i = 0; s[i] != '\0'; i++) {
        c = (unsigned char) s[i];

        if (i >= max
            || (alnum_only ? !(pay_op_plain(c) && c != '_' && c != '-')
                           : !pay_op_plain(c)))
        {
            return 0;
        }
    }

    return i > 0;
}


int
pay_op_visible(const char *s, size_t max)
{
    return s != NULL && pay_visible(s, 1, max);
}


int
pay_op_reason_ok(const char *reason)
{
    size_t   i, len;
    json_t  *t;

    if (reason == NULL) {
        return 1;
    }

    len = strnlen(reason, PAY_OP_REASON_MAX + 1);
    if (len > PAY_OP_REASON_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) reason[i] < 0x20 || reason[i] == 0x7f) {
            return 0;
        }
    }

    /* text: valid UTF-8, as a JSON string must be */
    t = json_string(reason);
    json_decref(t);

    return t != NULL;
}


int
pay_op_amount(const pay_dialect_t *d, const char *currency, int64_t iso,
    int64_t *psp)
{
    if (d == NULL || currency == NULL || iso <= 0
        || pay_currency_find(currency, strnlen(currency, 4)) == NULL
        || !pay_psp_amount_supported(d->id, currency, iso))
    {
        return -1;
    }

    return pay_dialect_to_psp(d, currency, iso, psp);
}


int
pay_op_request(pay_psp_request_t *req, const char *path, const char *type,
    char *body)
{
    memset(req, 0, sizeof(*req));

    if (body == NULL) {
        return -1;
    }

    req->body = body;
    req->body_len = strlen(body);
    req->path = strdup(path);
    req->content_type = strdup(type);

    if (req->path == NULL || req->content_type == NULL) {
        pay_psp_request_free(req);
        return -1;
    }

    return 0;
}


void
pay_psp_parse_op_redact(const pay_dialect_t *d, int status,
    const char *body, size_t len, const char *secret, size_t slen,
    pay_psp_op_result_t *res)
{
    size_t         i;
    json_t        *root;
    const char    *id;
    const json_t  *v;

    if (res == NULL) {
        return;
    }

    memset(res, 0, sizeof(*res));
    res->outcome = PAY_PSP_RETRY;

    if (d == NULL) {
        snprintf(res->reason, sizeof(res->reason), "unknown PSP dialect");
        return;
    }

    if (status >= 200 && status <= 299) {
        root = pay_psp_json(body, len);
        id = NULL;

        for (i = 0; root != NULL && i < 3 && d->op_ref_fields[i] != NULL;
             i++)
        {
            if (json_object_get(root, d->op_ref_fields[i]) != NULL) {
                id = pay_json_str(root, d->op_ref_fields[i]);
                break;
            }
        }

        if (id != NULL && pay_visible(id, 1, sizeof(res->psp_ref) - 1)) {
            res->outcome = PAY_PSP_CREATED;
            strcpy(res->psp_ref, id);

        } else {
            /* the PSP may well have done it: the same nonce again finds
             * out without doing it twice */
            snprintf(res->reason, sizeof(res->reason),
                     "unusable answer from the PSP (HTTP %d)", status);
        }

        json_decref(root);
        return;
    }

    switch (status) {

    case 400:
    case 402:
    case 404:
    case 422:
        root = pay_psp_json(body, len);

        if (pay_psp_key_in_use(d, root, status, res->reason,
                               sizeof(res->reason)))
        {
            json_decref(root);
            res->key_in_use = 1;
            return;
        }

        res->outcome = PAY_PSP_REFUSED;
        v = root ? d->refusal_reason(root) : NULL;

        if (v != NULL) {
            pay_reason_set(res->reason, sizeof(res->reason),
                           json_string_value(v), json_string_length(v),
                           secret, slen);
        }

        if (res->reason[0] == '\0') {
            snprintf(res->reason, sizeof(res->reason),
                     "the PSP refused the operation (HTTP %d)", status);
        }

        json_decref(root);
        return;

    case 401:
    case 403:
        /* never the PSP's text: it may quote the credential */
        res->outcome = PAY_PSP_AUTH;
        snprintf(res->reason, sizeof(res->reason),
                 "the PSP refused our credentials (HTTP %d)", status);
        return;

    case 0:
        snprintf(res->reason, sizeof(res->reason), "no answer from the PSP");
        return;

    default:
        snprintf(res->reason, sizeof(res->reason),
                 "the PSP answered HTTP %d", status);
        return;
    }
}


void
pay_charge_code(pay_psp_charge_result_t *res, const char *s)
{
    size_t  i;

    for (i = 0; s != NULL && s[i] != '\0'
                && i < sizeof(res->decline_code) - 1; i++)
    {
        res->decline_code[i] = (s[i] >= 'A' && s[i] <= 'Z')
                               ? (char) (s[i] | 0x20)
                               : ((s[i] >= 'a' && s[i] <= 'z')
                                  || (s[i] >= '0' && s[i] <= '9'))
                                 ? s[i] : '_';
    }

    res->decline_code[i] = '\0';
}


void
pay_psp_parse_charge_redact(const pay_dialect_t *d, int status,
    const char *body, size_t len, const char *secret, size_t slen,
    pay_psp_charge_result_t *res)
{
    char     raw[sizeof(res->reason)];
    json_t  *root;

    if (res == NULL) {
        return;
    }

    memset(res, 0, sizeof(*res));
    res->outcome = PAY_CHARGE_RETRY;

    if (d == NULL || d->charge_answer == NULL) {
        snprintf(res->reason, sizeof(res->reason), "unknown PSP dialect");
        return;
    }

    switch (status) {

    case 0:
        snprintf(res->reason, sizeof(res->reason), "no answer from the PSP");
        return;

    case 401:
    case 403:
        /* never the PSP's text: it may quote the credential */
        res->outcome = PAY_CHARGE_AUTH;
        snprintf(res->reason, sizeof(res->reason),
                 "the PSP refused our credentials (HTTP %d)", status);
        return;

    case 400:
    case 402:
    case 404:
    case 422:
        break;

    default:
        if (status >= 200 && status <= 299) {
            break;
        }

        snprintf(res->reason, sizeof(res->reason),
                 "the PSP answered HTTP %d", status);
        return;
    }

    root = pay_psp_json(body, len);

    if (status >= 400
        && pay_psp_key_in_use(d, root, status, res->reason,
                              sizeof(res->reason)))
    {
        json_decref(root);
        res->key_in_use = 1;
        return;
    }

    if (root == NULL) {
        /* a 2xx we cannot read may have charged: the same nonce finds
         * out; a 4xx we cannot read refused it */
        if (status >= 400) {
            res->outcome = PAY_CHARGE_DECLINED;
            pay_charge_code(res, "refused");
        }

        snprintf(res->reason, sizeof(res->reason),
                 "unreadable answer from the PSP (HTTP %d)", status);
        return;
    }

    d->charge_answer(status, root, res);
    json_decref(root);

    memcpy(raw, res->reason, sizeof(raw));
    raw[sizeof(raw) - 1] = '\0';
    res->reason[0] = '\0';
    pay_reason_set(res->reason, sizeof(res->reason), raw, strlen(raw),
                   secret, slen);

    if (res->outcome == PAY_CHARGE_DECLINED && res->decline_code[0] == '\0')
    {
        pay_charge_code(res, "declined");
    }

    if (res->outcome == PAY_CHARGE_ACCEPTED
        && !pay_visible(res->psp_ref, 1, sizeof(res->psp_ref) - 1))
    {
        /* taken, yet no id to find its webhook by: ask again */
        res->outcome = PAY_CHARGE_RETRY;
        snprintf(res->reason, sizeof(res->reason),
                 "the PSP's answer names no payment (HTTP %d)", status);
    }
}


/* unreserved bytes as they are, every other one %XX (RFC 3986) */
static char *
pay_detach_escape(char *p, const char *s)
{
    static const char  hex[] = "0123456789ABCDEF";

    for ( /* void */ ; *s != '\0'; s++) {
        unsigned char  c = (unsigned char) *s;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
            || c == '~')
        {
            *p++ = (char) c;

        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0x0f];
        }
    }

    *p = '\0';

    return p;
}


int
pay_psp_detach_request(pay_dialect_e d, const char *token,
    const char *shopper_ref, const char *merchant_account,
    pay_psp_detach_t *out)
{
    char    *p;
    size_t   len;

    if (out == NULL) {
        return -1;
    }

    memset(out, 0, sizeof(*out));

    if (token == NULL || token[0] == '\0'
        || (d == PAY_DIALECT_ADYEN
            && (shopper_ref == NULL || shopper_ref[0] == '\0'
                || merchant_account == NULL || merchant_account[0] == '\0')))
    {
        return -1;
    }

    len = sizeof("/v71/storedPaymentMethods/?shopperReference="
                 "&merchantAccount=/detach")
          + 3 * strlen(token)
          + (shopper_ref ? 3 * strlen(shopper_ref) : 0)
          + (merchant_account ? 3 * strlen(merchant_account) : 0);

    out->path = malloc(len);
    if (out->path == NULL) {
        return -1;
    }

    switch (d) {

    case PAY_DIALECT_STRIPE:
        /* POST /v1/payment_methods/{id}/detach, no parameters */
        out->method = "POST";
        p = pay_detach_escape(out->path
                              + sprintf(out->path, "/v1/payment_methods/"),
                              token);
        strcpy(p, "/detach");

        out->content_type = "application/x-www-form-urlencoded";
        out->body = "";
        return 0;

    case PAY_DIALECT_ADYEN:
        /* DELETE /storedPaymentMethods/{id}?shopperReference=
         * &merchantAccount=, both required by Checkout v71 */
        out->method = "DELETE";
        p = pay_detach_escape(out->path
                              + sprintf(out->path,
                                        "/v71/storedPaymentMethods/"),
                              token);
        p = pay_detach_escape(p + sprintf(p, "?shopperReference="),
                              shopper_ref);
        (void) pay_detach_escape(p + sprintf(p, "&merchantAccount="),
                                 merchant_account);
        return 0;

    case PAY_DIALECT_GENERIC:
        /* DELETE /payment_methods/{id} */
        out->method = "DELETE";
        (void) pay_detach_escape(out->path
                                 + sprintf(out->path, "/payment_methods/"),
                                 token);
        return 0;

    default:
        free(out->path);
        out->path = NULL;
        return -1;
    }
}


pay_detach_outcome_e
pay_psp_detach_answer(pay_dialect_e d, int status)
{
    if (status >= 200 && status <= 299) {
        return PAY_DETACH_DONE;
    }

    switch (status) {

    case 401:
    case 403:
        return PAY_DETACH_AUTH;

    case 404:
        /* the PSP has no such method (left or removed there) */
        return PAY_DETACH_GONE;

    case 400:
        /* Stripe: "not attached to a customer", a detach already done */
        return d == PAY_DIALECT_STRIPE ? PAY_DETACH_GONE : PAY_DETACH_REFUSED;

    case 422:
        /* Adyen: no such stored method for this shopper (already gone) */
        return d == PAY_DIALECT_ADYEN ? PAY_DETACH_GONE : PAY_DETACH_REFUSED;

    case 408:
    case 409:
    case 429:
        return PAY_DETACH_RETRY;

    default:
        return (status >= 400 && status <= 499) ? PAY_DETACH_REFUSED
                                                : PAY_DETACH_RETRY;
    }
}
