/*
 * ngx_payments core: the generic dialect, our own documented PSP API
 * (POST /sessions; webhooks signed with an ES256/RS256 JWT).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <payments/dialect.h>
#include <payments/webhook.h>

#include "dialect_internal.h"


/* Its amounts are ISO decimal strings. */
static int
pay_generic_exponent(const pay_currency_t *iso)
{
    return iso->exponent;
}


static char *
pay_generic_body(const pay_psp_registration_t *r, int64_t total)
{
    char                   amount[32];
    int                    failed;
    json_t                *root;
    const pay_checkout_t  *co;

    co = r->co;

    if (pay_amount_format(total, co->exponent, amount, sizeof(amount)) < 0) {
        return NULL;
    }

    root = json_object();
    if (root == NULL) {
        return NULL;
    }

    failed = 0;

    pay_json_set(root, "reference", json_string(r->nonce), &failed);
    pay_json_set(root, "amount", json_string(amount), &failed);
    pay_json_set(root, "currency", json_string(co->currency), &failed);
    pay_json_set(root, "return_url", json_string(r->return_success), &failed);
    pay_json_set(root, "cancel_url", json_string(r->return_cancel), &failed);
    pay_json_set(root, "expires_at", json_integer(r->expires_at), &failed);

    /* "manual": the payment is an authorization, announced by the
     * payment.authorized event (doc/PSPS.md) */
    if (co->manual_capture) {
        pay_json_set(root, "capture", json_string("manual"), &failed);
    }

    /* save the shopper's method for later charges: the PSP knows the
     * shopper by our reference, never the shop's id */
    if (co->save_usage != NULL) {
        pay_json_set(root, "save_payment_method",
                     json_pack("{s:s, s:s}", "customer", r->customer_ref,
                               "usage", co->save_usage), &failed);
    }

    /* a save without a charge: amount "0", said so (doc/PSPS.md) */
    if (co->setup) {
        pay_json_set(root, "mode", json_string("setup"), &failed);
    }

    /* the merchant's metadata as it is (doc/PSPS.md) */
    if (co->metadata != NULL && json_object_size(co->metadata) > 0) {
        pay_json_set(root, "metadata", json_deep_copy(co->metadata), &failed);
    }

    return pay_json_dump(root, failed);
}


/*
 * An off-session charge: POST /payments {"reference", "payment_method"
 * (the PSP's token), "customer" (our reference), "amount" (decimal
 * string), "currency", "off_session": true, "capture": "manual" (a manual
 * capture only), "metadata"}.
 */
static char *
pay_generic_charge_body(const pay_psp_registration_t *r, int64_t total)
{
    char                   amount[32];
    int                    failed;
    json_t                *root;
    const pay_checkout_t  *co = r->co;

    if (r->customer_ref == NULL
        || pay_amount_format(total, co->exponent, amount, sizeof(amount)) < 0)
    {
        return NULL;
    }

    root = json_object();
    if (root == NULL) {
        return NULL;
    }

    failed = 0;

    pay_json_set(root, "reference", json_string(r->nonce), &failed);
    pay_json_set(root, "payment_method", json_string(r->charge_token),
                 &failed);
    pay_json_set(root, "customer", json_string(r->customer_ref), &failed);
    pay_json_set(root, "amount", json_string(amount), &failed);
    pay_json_set(root, "currency", json_string(co->currency), &failed);
    pay_json_set(root, "off_session", json_true(), &failed);

    /* "manual": an authorization, captured or released later (the
     * answer's status "authorized", its event payment.authorized) */
    if (co->manual_capture) {
        pay_json_set(root, "capture", json_string("manual"), &failed);
    }

    if (co->metadata != NULL && json_object_size(co->metadata) > 0) {
        pay_json_set(root, "metadata", json_deep_copy(co->metadata), &failed);
    }

    return pay_json_dump(root, failed);
}


/*
 * 2xx {"payment_id", "status"}: succeeded, pending or authorized (a
 * manual capture's hold) taken,
 * requires_authentication the issuer asking for the shopper, declined
 * ("decline_code") refused; a 4xx {"error": {"code", "message"}} refused.
 */
static void
pay_generic_charge_answer(int status, const json_t *root,
    pay_psp_charge_result_t *res)
{
    const char    *id, *st, *code, *msg;
    const json_t  *err;

    if (status < 200 || status > 299) {
        err = json_object_get(root, "error");
        code = pay_json_str(err, "code");
        msg = pay_json_str(err, "message");
        res->outcome = PAY_CHARGE_DECLINED;
        pay_charge_code(res, code ? code : "refused");
        snprintf(res->reason, sizeof(res->reason), "%s",
                 msg ? msg : "the PSP refused the payment");
        return;
    }

    id = pay_json_str(root, "payment_id");
    st = pay_json_str(root, "status");

    if (id != NULL && strlen(id) < sizeof(res->psp_ref)) {
        strcpy(res->psp_ref, id);
    }

    if (st != NULL
        && (strcmp(st, "succeeded") == 0 || strcmp(st, "pending") == 0
            || strcmp(st, "authorized") == 0))
    {
        res->outcome = PAY_CHARGE_ACCEPTED;
        return;
    }

    if (st != NULL && strcmp(st, "requires_authentication") == 0) {
        res->outcome = PAY_CHARGE_AUTH_REQUIRED;
        pay_charge_code(res, "authentication_required");
        snprintf(res->reason, sizeof(res->reason),
                 "the card's issuer asks for the shopper");
        return;
    }

    if (st != NULL && strcmp(st, "declined") == 0) {
        code = pay_json_str(root, "decline_code");
        res->outcome = PAY_CHARGE_DECLINED;
        pay_charge_code(res, code ? code : "declined");
        snprintf(res->reason, sizeof(res->reason), "the payment was "
                 "declined (%s)", res->decline_code);
        return;
    }

    snprintf(res->reason, sizeof(res->reason), "unknown status");
    res->psp_ref[0] = '\0';
}


/* idempotency_key_reused (422: the key is another body's) or
 * idempotency_key_in_use (409): an earlier request holds the key and may
 * have moved money */
static int
pay_generic_key_in_use(const json_t *root)
{
    const json_t  *err = json_object_get(root, "error");
    const char    *code = json_is_object(err) ? pay_json_str(err, "code")
                                              : NULL;

    return code != NULL && (strcmp(code, "idempotency_key_reused") == 0
                            || strcmp(code, "idempotency_key_in_use") == 0);
}


/* {"error":"…"} or {"error":{"message"}} or {"message"} */
static const json_t *
pay_generic_reason(const json_t *root)
{
    const json_t  *err, *v;

    err = json_object_get(root, "error");

    if (json_is_string(err) && json_string_length(err) > 0) {
        return err;
    }

    if (json_is_object(err)) {
        v = pay_json_reason(err, "message", NULL);
        if (v != NULL) {
            return v;
        }
    }

    return pay_json_reason(root, "message", NULL);
}


/* The JWT in the configured header, over the raw body; then the event. */
static void
pay_generic_webhook(const pay_webhook_conf_t *conf, pay_header_pt header,
    void *hdata, const char *body, size_t blen, int64_t now,
    pay_event_t *events, size_t max, size_t *nevents, pay_wh_verdict_t *v)
{
    size_t       hlen;
    unsigned     count;
    const char  *h;

    *nevents = 0;
    v->why = conf->header;

    h = header(hdata, conf->header, &hlen, &count);

    v->err = (h == NULL || count != 1 || max == 0)
             ? PAY_ERR_BAD_SIGNATURE
             : pay_generic_verify(h, hlen, body, blen, conf->keys,
                                  conf->nkeys, conf->iss, conf->aud, now);

    if (v->err != PAY_ERR_NONE) {
        v->reason = v->err == PAY_ERR_STALE_WEBHOOK ? PAY_WH_STALE
                                                    : PAY_WH_BAD_SIGNATURE;
        return;
    }

    if (pay_generic_parse_event(body, blen, &events[0]) != 0) {
        v->err = PAY_ERR_INVALID_REQUEST;
        v->reason = PAY_WH_UNREADABLE;
        v->why = "not a readable event";
        return;
    }

    v->reason = PAY_WH_OK;
    *nevents = 1;
}


/* A kept event again: the JWT of the kept header over the bytes kept, as
 * of when it came (its exp and nbf then); iss and aud are the
 * configuration's business, not the signature's. */
static pay_err_e
pay_generic_evidence(const pay_webhook_conf_t *conf, pay_header_pt header,
    void *hdata, const char *bytes, size_t len, int64_t at)
{
    size_t       hlen;
    unsigned     count;
    pay_err_e    err;
    const char  *h;

    count = 0;
    h = (conf->header != NULL) ? header(hdata, conf->header, &hlen, &count)
                               : NULL;

    if (h == NULL || count != 1) {
        return PAY_ERR_BAD_SIGNATURE;
    }

    err = pay_generic_verify(h, hlen, bytes, len, conf->keys, conf->nkeys,
                             NULL, NULL, at);

    return (err == PAY_ERR_NONE || err == PAY_ERR_STALE_WEBHOOK)
           ? PAY_ERR_NONE : PAY_ERR_BAD_SIGNATURE;
}


/* A kept event's bytes read again by the webhook's parser. */
static int
pay_generic_evidence_events(const pay_webhook_conf_t *conf,
    pay_header_pt header, void *hdata, const char *bytes, size_t len,
    pay_event_t *events, size_t max, size_t *nevents)
{
    (void) conf;
    (void) header;
    (void) hdata;

    *nevents = 0;

    if (max == 0 || pay_generic_parse_event(bytes, len, &events[0]) != 0) {
        return -1;
    }

    *nevents = 1;

    return 0;
}


/* GET /sessions/{token}: the token percent-encoded, every byte but
 * [A-Za-z0-9_-] (a generic PSP's tokens are any visible ASCII). */
static int
pay_generic_lookup(const pay_psp_lookup_t *in, pay_psp_request_t *req)
{
    return pay_lookup_get(in, 0, "/sessions/", NULL, req);
}


/* POST /sessions/{token}/expire, {}: the session as GET /sessions/{token}
 * answers it, after the call (doc/PSPS.md, "The generic dialect") */
static int
pay_generic_expire(const pay_psp_lookup_t *in, pay_psp_request_t *req)
{
    pay_buf_t  b;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_lookup_token_ok(in->token, 0)) {
        return -1;
    }

    memset(&b, 0, sizeof(b));
    pay_buf_str(&b, "/sessions/");
    pay_buf_escape(&b, in->token);
    pay_buf_str(&b, "/expire");

    return pay_expire_request(&b, req, "application/json", "{}");
}


/*
 * {"token","reference","status","amount" (decimal string in the
 * currency's ISO exponent, as the webhooks'),"currency"}: "succeeded"
 * pays and needs amount and currency; "authorized" is a manual capture's
 * hold, as payment.authorized says it (amount and currency needed too:
 * held, nothing captured; an automatic checkout's is its capture still
 * to come); "failed" and "expired" fail; "open" and "pending" are open.
 * amount and currency come both or neither, and valid, or the answer is
 * not trusted.  payment: the answer is a payment's (its id "payment_id",
 * never open or expired).
 */
static pay_lookup_outcome_e
pay_generic_read(const pay_psp_lookup_t *in, int status, const char *body,
    size_t len, pay_event_t *ev, int payment)
{
    int                    rc, money;
    json_t                *root;
    int64_t                minor;
    const char            *st, *amount, *cur;
    pay_event_kind_e       kind;
    pay_lookup_outcome_e   out;
    const pay_currency_t  *iso;

    rc = pay_lookup_begin(in, status, body, len, ev, &root);
    if (rc != 0) {
        return (pay_lookup_outcome_e) rc;
    }

    st = pay_json_str(root, "status");

    if (!pay_lookup_same(in, pay_json_str(root, payment ? "payment_id"
                                                        : "token"), 0)
        || st == NULL)
    {
        json_decref(root);
        return pay_lookup_unknown(ev);
    }

    if (strcmp(st, "succeeded") == 0) {
        kind = PAY_EVT_SUCCEEDED;

    } else if (strcmp(st, "authorized") == 0) {
        kind = PAY_EVT_AUTHORIZED;

    } else if (strcmp(st, "failed") == 0
               || (!payment && strcmp(st, "expired") == 0))
    {
        kind = PAY_EVT_FAILED;

    } else if (!payment && strcmp(st, "open") == 0) {
        out = pay_lookup_open(ev, st);
        json_decref(root);
        return out;

    } else if (strcmp(st, "pending") == 0
               || (payment && strcmp(st, "requires_authentication") == 0))
    {
        /* paid with a method that settles later; or an off-session
         * charge whose issuer asked for the shopper, as its answer said
         * it: nothing taken, and the shop's retry of the charge makes its
         * page (doc/API.md), so nothing is decided */
        (void) pay_lookup_open(ev, st);
        if (payment && strcmp(st, "requires_authentication") == 0) {
            pay_lookup_shopper(ev, in->token);
        }
        json_decref(root);
        return PAY_LOOKUP_PENDING;

    } else {
        json_decref(root);
        return pay_lookup_unknown(ev);
    }

    out = pay_lookup_decide(in, ev, kind, st,
                            pay_json_str(root, "reference"));

    if (out == PAY_LOOKUP_DECIDED) {
        pay_lookup_payment_ref(ev, payment ? in->token
                                           : pay_json_str(root,
                                                          "payment_id"));
    }

    /* a setup's method, or (in->method) the one a paid session stored,
     * as payment_method.saved names it */
    if (out == PAY_LOOKUP_DECIDED && !payment && (in->setup || in->method)
        && (kind == PAY_EVT_SUCCEEDED || kind == PAY_EVT_AUTHORIZED)
        && pay_lookup_method(ev, pay_json_str(root, "payment_method"), NULL)
           == 0)
    {
        pay_lookup_display(ev, root);
    }

    amount = pay_json_str(root, "amount");
    cur = pay_json_str(root, "currency");
    money = json_object_get(root, "amount") != NULL
            || json_object_get(root, "currency") != NULL;
    minor = 0;

    if (out == PAY_LOOKUP_DECIDED
        && (money || kind == PAY_EVT_SUCCEEDED || kind == PAY_EVT_AUTHORIZED))
    {
        iso = pay_lookup_currency(ev, cur) == 0
              ? pay_currency_find(ev->currency, 3) : NULL;

        rc = (iso == NULL || amount == NULL)
             ? PAY_AMOUNT_SYNTAX
             : (int) pay_amount_parse(amount, strlen(amount), iso->exponent,
                                      &minor);

        /* a setup's session is of amount 0 */
        if (rc == PAY_AMOUNT_ZERO && !payment && in->setup) {
            rc = PAY_AMOUNT_OK;
            minor = 0;
        }

        if (rc != PAY_AMOUNT_OK) {
            out = pay_lookup_unknown(ev);

        } else {
            ev->amount = minor;
        }
    }

    json_decref(root);

    return out;
}


static pay_lookup_outcome_e
pay_generic_lookup_answer(const pay_psp_lookup_t *in, int status,
    const char *body, size_t len, int64_t now, pay_event_t *ev)
{
    (void) now;

    return pay_generic_read(in, status, body, len, ev, 0);
}


/* GET /payments/{payment_id}: an off-session charge, by the id its 2xx
 * answer gave, escaped as a session's token; with no id (the charge's
 * answer was lost), by its nonce: GET /payments?reference=<nonce> */
static int
pay_generic_payment_lookup(const pay_psp_lookup_t *in,
    pay_psp_request_t *req)
{
    if (pay_lookup_no_token(in)) {
        return pay_lookup_nonce_get(in, "/payments?reference=", "", "", req);
    }

    return pay_lookup_get(in, 0, "/payments/", NULL, req);
}


/*
 * {"payment_id","reference","status","amount","currency"}: "succeeded"
 * pays (amount and currency needed), "authorized" is a manual capture's
 * hold (as the charge's answer and payment.authorized say it), "failed"
 * fails, "pending" is under way; a payment is never "open" nor
 * "expired".  As payment.succeeded says it: a success, a hold when the
 * checkout is a manual capture.
 */
static pay_lookup_outcome_e
pay_generic_payment_lookup_answer(const pay_psp_lookup_t *in, int status,
    const char *body, size_t len, int64_t now, pay_event_t *ev)
{
    int                    rc;
    json_t                *root;
    const char            *ref;
    pay_psp_lookup_t       one;
    pay_lookup_outcome_e   out;

    (void) now;

    if (!pay_lookup_no_token(in)) {
        return pay_generic_read(in, status, body, len, ev, 1);
    }

    /*
     * By the charge's nonce: the payment whose "reference" is the nonce,
     * read as the look-up of its payment_id would read it (the same
     * event id, so that look-up and the webhook later are duplicates of
     * it).  Another reference, or none: nothing decided; a 404 (no
     * payment under the nonce) neither.
     */
    rc = pay_lookup_begin_nonce(in, status, body, len, ev, &root);
    if (rc != 0) {
        return (pay_lookup_outcome_e) rc;
    }

    ref = pay_json_str(root, "reference");

    one = *in;
    one.token = pay_json_str(root, "payment_id");

    if (ref == NULL || strcmp(ref, in->nonce) != 0
        || !pay_lookup_token_ok(one.token, 0))
    {
        json_decref(root);
        return PAY_LOOKUP_UNKNOWN;
    }

    /* read again on its own, as the look-up by its id */
    one.token = strdup(one.token);
    json_decref(root);

    if (one.token == NULL) {
        return PAY_LOOKUP_UNKNOWN;
    }

    out = pay_generic_read(&one, status, body, len, ev, 1);
    free((char *) one.token);

    return out;
}


/* The amount as an ISO decimal string, like the registration's. */
static int
pay_generic_op_amount(const char *currency, int64_t iso, char *out,
    size_t size)
{
    int64_t                unit;
    const pay_currency_t  *cur;

    if (pay_op_amount(&pay_dialect_generic, currency, iso, &unit) != 0) {
        return -1;
    }

    cur = pay_currency_find(currency, 3);

    return (cur == NULL
            || pay_amount_format(unit, cur->exponent, out, size) < 0)
           ? -1 : 0;
}


/* POST /refunds {"reference","payment_id","amount","currency","reason",
 * "metadata"} (reason and metadata when given) */
static int
pay_generic_refund(const pay_psp_refund_t *in, pay_psp_request_t *req)
{
    int      failed;
    char     amount[32];
    json_t  *root;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)
        || !pay_op_visible(in->payment_ref, 127)
        || !pay_op_reason_ok(in->reason)
        || pay_generic_op_amount(in->currency, in->amount, amount,
                                 sizeof(amount)) != 0)
    {
        return -1;
    }

    root = json_object();
    if (root == NULL) {
        return -1;
    }

    failed = 0;

    pay_json_set(root, "reference", json_string(in->nonce), &failed);
    pay_json_set(root, "payment_id", json_string(in->payment_ref), &failed);
    pay_json_set(root, "amount", json_string(amount), &failed);
    pay_json_set(root, "currency", json_string(in->currency), &failed);

    if (in->reason != NULL && in->reason[0] != '\0') {
        pay_json_set(root, "reason", json_string(in->reason), &failed);
    }

    if (in->metadata != NULL && json_object_size(in->metadata) > 0) {
        pay_json_set(root, "metadata", json_deep_copy(in->metadata), &failed);
    }

    return pay_op_request(req, "/refunds", "application/json",
                          pay_json_dump(root, failed));
}


/* POST /captures {"reference","payment_id","amount","currency"}: a part
 * of an authorized payment; several may follow */
static int
pay_generic_capture(const pay_psp_refund_t *in, pay_psp_request_t *req)
{
    int      failed;
    char     amount[32];
    json_t  *root;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)
        || !pay_op_visible(in->payment_ref, 127)
        || pay_generic_op_amount(in->currency, in->amount, amount,
                                 sizeof(amount)) != 0)
    {
        return -1;
    }

    root = json_object();
    if (root == NULL) {
        return -1;
    }

    failed = 0;

    pay_json_set(root, "reference", json_string(in->nonce), &failed);
    pay_json_set(root, "payment_id", json_string(in->payment_ref), &failed);
    pay_json_set(root, "amount", json_string(amount), &failed);
    pay_json_set(root, "currency", json_string(in->currency), &failed);

    return pay_op_request(req, "/captures", "application/json",
                          pay_json_dump(root, failed));
}


/* POST /voids {"reference","payment_id"}: what is not captured released */
static int
pay_generic_cancel(const pay_psp_refund_t *in, pay_psp_request_t *req)
{
    int      failed;
    json_t  *root;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)
        || !pay_op_visible(in->payment_ref, 127))
    {
        return -1;
    }

    root = json_object();
    if (root == NULL) {
        return -1;
    }

    failed = 0;

    pay_json_set(root, "reference", json_string(in->nonce), &failed);
    pay_json_set(root, "payment_id", json_string(in->payment_ref), &failed);

    return pay_op_request(req, "/voids", "application/json",
                          pay_json_dump(root, failed));
}


/* POST /payouts {"reference","destination","amount","currency","metadata"}
 * (metadata when given) */
static int
pay_generic_payout(const pay_psp_payout_t *in, pay_psp_request_t *req)
{
    int      failed;
    char     amount[32];
    json_t  *root;

    memset(req, 0, sizeof(*req));

    if (in == NULL || !pay_op_nonce_ok(in->nonce)
        || !pay_op_visible(in->destination, 127)
        || pay_generic_op_amount(in->currency, in->amount, amount,
                                 sizeof(amount)) != 0)
    {
        return -1;
    }

    root = json_object();
    if (root == NULL) {
        return -1;
    }

    failed = 0;

    pay_json_set(root, "reference", json_string(in->nonce), &failed);
    pay_json_set(root, "destination", json_string(in->destination),
                 &failed);
    pay_json_set(root, "amount", json_string(amount), &failed);
    pay_json_set(root, "currency", json_string(in->currency), &failed);

    if (in->metadata != NULL && json_object_size(in->metadata) > 0) {
        pay_json_set(root, "metadata", json_deep_copy(in->metadata), &failed);
    }

    return pay_op_request(req, "/payouts", "application/json",
                          pay_json_dump(root, failed));
}


/* {"id","status":"pending"} */
static void
pay_generic_op_answer(int status, const char *body, size_t len,
    pay_psp_op_result_t *res)
{
    pay_psp_parse_op_redact(&pay_dialect_generic, status, body, len, NULL, 0,
                            res);
}


const pay_dialect_t  pay_dialect_generic = {
    .name = "generic",
    .id = PAY_DIALECT_GENERIC,
    .params = PAY_PSP_P_WEBHOOK_KEY,
    .required = PAY_PSP_P_WEBHOOK_KEY,
    .auth_header = "Authorization: Bearer %s",
    .credential_check = NULL,
    .secret_decode = NULL,
    .exponent = pay_generic_exponent,
    .amount_ok = NULL,
    .registration_path = "/sessions",
    .registration_type = "application/json",
    .registration_body = pay_generic_body,
    .token_field = "token",
    .expires_field = "expires_at",
    .refusal_reason = pay_generic_reason,
    .key_in_use = pay_generic_key_in_use,
    .webhook = pay_generic_webhook,
    .evidence_verify = pay_generic_evidence,
    .evidence_events = pay_generic_evidence_events,
    .webhook_answer = "{\"received\":true}",
    .webhook_answer_type = "application/json",
    .session_lookup = pay_generic_lookup,
    .method_lookup = 1,
    .session_lookup_answer = pay_generic_lookup_answer,
    .payment_lookup = pay_generic_payment_lookup,
    .payment_lookup_answer = pay_generic_payment_lookup_answer,
    .refund = pay_generic_refund,
    .payout = pay_generic_payout,
    .op_answer = pay_generic_op_answer,
    .op_ref_fields = { "id", NULL, NULL },
    /* unknown: the shortest of the others */
    .key_window = 86400,
    /* expires_at: in the future, at most 24 h ahead (doc/PSPS.md) */
    .session_min = 60,
    .session_max = 86400,
    .session_expirable = 1,
    .session_expire = pay_generic_expire,
    /* doc/PSPS.md, "generic": a refusal is {"error"} and makes nothing;
     * a 5xx may have */
    .no_session = PAY_NOSESSION_REFUSED | PAY_NOSESSION_THROTTLED,
    .capture = pay_generic_capture,
    .cancel = pay_generic_cancel,
    /* generic: 7 days, assumed (doc/PSPS.md) */
    .auth_window = 7 * 86400,
    .charge_path = "/payments",
    .charge_body = pay_generic_charge_body,
    .charge_answer = pay_generic_charge_answer,
};
