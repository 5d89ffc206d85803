/*
 * ngx_payments core: what the dialect files (src/dialect_*.c) share with
 * src/psp.c, the dialect-neutral part of a PSP call.  Not a public header.
 */
#ifndef PAYMENTS_DIALECT_INTERNAL_H
#define PAYMENTS_DIALECT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <payments/dialect.h>
#include <payments/json_dump.h>


/* A growable string; one failed allocation poisons it (checked once):
 * json_dump.h's, which writes JSON into the same kind of buffer. */
typedef pay_json_buf_t  pay_buf_t;

static inline void
pay_buf_add(pay_buf_t *b, const char *s, size_t n)
{
    pay_json_buf_add(b, s, n);
}

void pay_buf_str(pay_buf_t *b, const char *s);

/* application/x-www-form-urlencoded fields, in the order added, written
 * by one encoder (psp.c; dialect.h pay_form_encode): name is ours,
 * "seg[seg]..." of [A-Za-z0-9_]; key, anyone's, is one more segment,
 * escaped (name[key]).  A name of another shape, an empty key or a key
 * with a bracket fails the buffer. */
void pay_form_field(pay_buf_t *b, const char *name, const char *value);
void pay_form_field_key(pay_buf_t *b, const char *name, const char *key,
    const char *value);
void pay_form_field_int(pay_buf_t *b, const char *name, int64_t value);

/* json_object_set_new that remembers a failure (NULL value or OOM) */
void pay_json_set(json_t *obj, const char *key, json_t *v, int *failed);
/* compact, in insertion order (the same inputs give the same bytes);
 * root is released; NULL when failed */
char *pay_json_dump(json_t *root, int failed);

/* ISO minor units -> the dialect's (psp.h pay_psp_amount_to_psp) */
int pay_dialect_to_psp(const pay_dialect_t *d, const char *currency,
    int64_t iso, int64_t *psp);

/* The HTTP status answers every dialect's refusal reason reads:
 * root.key when a non-empty string, else root.alt (NULL: none). */
const json_t *pay_json_reason(const json_t *root, const char *key,
    const char *alt);

/* A PSP's JSON answer: an object of at most 256 KiB, no duplicate keys;
 * NULL otherwise. */
json_t *pay_psp_json(const char *body, size_t len);

/* A string member as a C string, or NULL (absent, other type, a NUL). */
const char *pay_json_str(const json_t *obj, const char *key);


/* --- refunds and pay-outs (dialect.h), src/psp.c --------------------- */

#define PAY_OP_REASON_MAX  200

/* merchant_id ":" op id: [A-Za-z0-9_-] around exactly one ':', neither
 * side empty, at most 64 characters.  1 or 0. */
int pay_op_nonce_ok(const char *nonce);

/* 1..max characters of [A-Za-z0-9_-], or of [A-Za-z0-9] when
 * alnum_only.  1 or 0 (NULL: 0). */
int pay_op_id_ok(const char *s, size_t max, int alnum_only);

/* 1..max visible ASCII characters (NULL: 0). */
int pay_op_visible(const char *s, size_t max);

/* NULL, or at most PAY_OP_REASON_MAX bytes of UTF-8 without control
 * characters.  1 or 0. */
int pay_op_reason_ok(const char *reason);

/* iso (> 0, in an upper-case ISO currency the dialect takes exactly, as
 * pay_psp_amount_supported) in the dialect's units: 0, or -1. */
int pay_op_amount(const pay_dialect_t *d, const char *currency, int64_t iso,
    int64_t *psp);

/* *req as a POST of body (taken, NULL: -1) to path; 0, or -1 with *req
 * empty. */
int pay_op_request(pay_psp_request_t *req, const char *path,
    const char *type, char *body);


/* A PSP's decline reason as a code: lower case, every byte but [a-z0-9]
 * as '_', cut to the field; "" for NULL. */
void pay_charge_code(pay_psp_charge_result_t *res, const char *s);


/* --- the session look-up (dialect.h), src/lookup.c ------------------- */

/* The token as a path segment: 1..PAY_LOOKUP_TOKEN_MAX visible ASCII
 * characters, not "." or ".."; strict: [A-Za-z0-9_-] only.  1 or 0. */
int pay_lookup_token_ok(const char *token, int strict);

/* s percent-encoded: every byte but [A-Za-z0-9_-] as %XX. */
void pay_buf_escape(pay_buf_t *b, const char *s);

/* *req as a GET of the path in b (taken); returns 0, or -1 with *req
 * empty (b failed or out of memory). */
int pay_lookup_request(pay_buf_t *b, pay_psp_request_t *req);
/* *req as a GET of prefix, in->token, then suffix (NULL: none): a strict
 * token (pay_lookup_token_ok) as it is, any other percent-encoded; 0, or
 * -1 with *req empty (no token, a token refused, out of memory). */
int pay_lookup_get(const pay_psp_lookup_t *in, int strict,
    const char *prefix, const char *suffix, pay_psp_request_t *req);
/* 1 when in asks by its nonce alone (no token: an off-session charge
 * whose every answer was lost), else 0. */
int pay_lookup_no_token(const pay_psp_lookup_t *in);
/* *req as a GET of prefix, then before, in->nonce and after, each
 * percent-encoded (a query value); 0, or -1 with *req empty (a nonce not
 * ours, out of memory). */
int pay_lookup_nonce_get(const pay_psp_lookup_t *in, const char *prefix,
    const char *before, const char *after, pay_psp_request_t *req);
/* b as the path of a POST with body (copied) of type: 0, or -1 with *req
 * empty (b freed either way) */
int pay_expire_request(pay_buf_t *b, pay_psp_request_t *req,
    const char *type, const char *body);

/*
 * What every dialect does first: clears *ev; an HTTP status other than
 * 2xx is the outcome (401/403 AUTH, anything else UNKNOWN); a 2xx returns
 * 0 with *root the answer's JSON object, or UNKNOWN when it is not one.
 */
int pay_lookup_begin(const pay_psp_lookup_t *in, int status,
    const char *body, size_t len, pay_event_t *ev, json_t **root);

/* The same for a look-up by the nonce alone (in->token empty: an
 * off-session charge whose every answer was lost): in->nonce must be
 * ours. */
int pay_lookup_begin_nonce(const pay_psp_lookup_t *in, int status,
    const char *body, size_t len, pay_event_t *ev, json_t **root);

/* The answer names the session asked about: id (NULL: absent, allowed
 * when may_lack) equals in->token.  1 or 0. */
int pay_lookup_same(const pay_psp_lookup_t *in, const char *id,
    int may_lack);

/* OPEN: ev->kind PAY_EVT_PENDING, ev->type the PSP's status. */
pay_lookup_outcome_e pay_lookup_open(pay_event_t *ev, const char *status);

/* After pay_lookup_open: the payment failed asking for the shopper
 * (ev->shopper), id the PSP's id of it as ev->token (left "" when NULL or
 * too long). */
void pay_lookup_shopper(pay_event_t *ev, const char *id);

/*
 * DECIDED: event_id "lookup:<token>:<status>", type status, kind, token,
 * reference (the answer's, or in->nonce when NULL or empty); amount and
 * currency are left to the caller.  UNKNOWN (and *ev cleared) when a
 * field does not fit.
 */
pay_lookup_outcome_e pay_lookup_decide(const pay_psp_lookup_t *in,
    pay_event_t *ev, pay_event_kind_e kind, const char *status,
    const char *reference);

/* ev->currency from three ASCII letters, upper-cased: 0; else -1 and
 * ev->currency "". */
int pay_lookup_currency(pay_event_t *ev, const char *cur);

/* ev->payment_ref = ref when it is 1..127 visible ASCII characters;
 * otherwise left "". */
void pay_lookup_payment_ref(pay_event_t *ev, const char *ref);

/* A setup's stored method: ev->method = token and ev->psp_customer =
 * customer (NULL: none) when each is 1..size-1 visible ASCII characters;
 * 0, else -1 with both "" (the method unknown). */
int pay_lookup_method(pay_event_t *ev, const char *token,
    const char *customer);

/* A stored method's display fields from obj (brand, last4, exp_month,
 * exp_year, each only when it fits) into ev; a NULL or non-object obj
 * sets nothing. */
void pay_lookup_display(pay_event_t *ev, const json_t *obj);

/* Clears *ev and says UNKNOWN: for an answer we cannot trust. */
pay_lookup_outcome_e pay_lookup_unknown(pay_event_t *ev);

#endif
