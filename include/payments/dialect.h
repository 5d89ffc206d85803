/*
 * ngx_payments core: the PSP dialects as a table.  One pay_dialect_t per
 * PSP API (src/dialect_<name>.c) says everything that differs between
 * PSPs: the payments_psp parameters it takes, how its credentials are
 * checked, its minor units, the registration request and the answer's
 * fields, and how its webhooks are verified and read.  The adapter looks a
 * dialect up by name and calls through the table; it names no dialect.
 *
 * Adding a PSP: CONTRIBUTING.md, "Adding a PSP".
 */
#ifndef PAYMENTS_DIALECT_H
#define PAYMENTS_DIALECT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <payments/money.h>
#include <payments/psp.h>
#include <payments/webhook.h>


/* payments_psp parameters beyond the common ones (url, secret_file, mode,
 * hosted, timeouts, pins): which a dialect takes, and which it needs. */
#define PAY_PSP_P_WEBHOOK_SECRET    0x01    /* webhook_secret_file= */
#define PAY_PSP_P_WEBHOOK_KEY       0x02    /* webhook_key=, webhook_header=,
                                               webhook_iss=, webhook_aud= */
#define PAY_PSP_P_MERCHANT_ACCOUNT  0x04    /* merchant_account= */
#define PAY_PSP_P_VERSION           0x08    /* stripe_version= */
#define PAY_PSP_P_TOLERANCE         0x10    /* webhook_tolerance= */
#define PAY_PSP_P_TRANSFERS         0x20    /* transfers_url=,
                                               transfers_secret_file=,
                                               balance_account= */

/*
 * Which of a PSP's APIs a request goes to.  MAIN: url= with the key of
 * secret_file=.  TRANSFERS: transfers_url= with the key of
 * transfers_secret_file= (Adyen serves its Transfers API on the balance
 * platform's host, with a credential of its own); a PSP configured
 * without them does not pay out.
 */
typedef enum {
    PAY_PSP_API_MAIN = 0,
    PAY_PSP_API_TRANSFERS
} pay_psp_api_e;


/* Why a webhook was refused before anything was applied. */
typedef enum {
    PAY_WH_OK = 0,
    PAY_WH_BAD_SIGNATURE,
    PAY_WH_STALE,
    PAY_WH_LIVEMODE,        /* signed test money for a live PSP, or back */
    PAY_WH_ACCOUNT,         /* signed for another merchant account */
    PAY_WH_UNREADABLE,      /* authentic, yet not an event we can read */
    PAY_WH_MORE             /* authentic, and more events than max: call
                               again with room for v->nneeded (nothing
                               refused, nothing written) */
} pay_wh_refusal_e;

/* What a PSP's configuration gives its webhook verifier. */
typedef struct {
    const pay_secret_t    *secrets;         /* after secret_decode */
    size_t                 nsecrets;
    const pay_jwt_key_t   *keys;
    size_t                 nkeys;
    const char            *header;          /* where the JWT is (generic) */
    const char            *iss;             /* NULL: not checked */
    const char            *aud;
    int64_t                tolerance;       /* seconds */
    int                    live;
    const char            *merchant_account;
} pay_webhook_conf_t;

/*
 * The request's headers, for a verifier: the value of the header name
 * (case-insensitive) in *len, and in *count how many such headers came;
 * NULL and 0 when none.
 */
typedef const char *(*pay_header_pt)(void *data, const char *name,
    size_t *len, unsigned *count);

typedef struct {
    pay_err_e          err;     /* PAY_ERR_NONE, _BAD_SIGNATURE,
                                   _STALE_WEBHOOK, _INVALID_REQUEST */
    pay_wh_refusal_e   reason;
    const char        *why;     /* static: what failed, for the log */
    size_t             nforeign;    /* PAY_WH_ACCOUNT with *nevents > 0
                                       (adyen: a batch of this account's
                                       items and another's, each verified):
                                       events[*nevents .. *nevents +
                                       nforeign) are the other account's,
                                       the first *nevents this PSP's; 0
                                       otherwise */
    size_t             nneeded;     /* PAY_WH_MORE: the events the body
                                       carries (an Adyen batch: one per
                                       item, every item verified), for an
                                       array of that many; 0 otherwise */
} pay_wh_verdict_t;

/*
 * The operations after "paid": a refund of a captured payment and a
 * pay-out (transfer) to a seller, each registered with the PSP under our
 * nonce (merchant_id ":" refund_id / payout_id, at most 64 characters of
 * [A-Za-z0-9_-] around one ':'), which is the call's Idempotency-Key and
 * the op's reference at the PSP, so its webhook names it back.
 */
typedef struct {
    const char *nonce;            /* idempotency key + reference */
    const char *payment_ref;      /* stripe pi_, adyen pspReference,
                                     generic payment_id */
    int64_t     amount;           /* ISO minor units, > 0 */
    const char *currency;         /* upper case ISO */
    const char *reason;           /* NULL or free text (<= 200 bytes of
                                     UTF-8, no control characters) */
    const char *merchant_account; /* adyen */
    const json_t *metadata;       /* the merchant's (pay_metadata_check),
                                     NULL: none; sent where the dialect's
                                     API takes it (doc/PSPS.md) */
} pay_psp_refund_t;

typedef struct {
    const char *nonce;
    const char *destination;      /* stripe acct_…, adyen balance account
                                     id, generic payee id */
    int64_t     amount;
    const char *currency;
    const char *merchant_account; /* adyen (unused by the transfer body) */
    const char *source_account;   /* adyen: the platform's balance account
                                     (balanceAccountId, balance_account=),
                                     may be NULL */
    const json_t *metadata;       /* as the refund's */
} pay_psp_payout_t;

typedef struct {
    pay_psp_outcome_e  outcome;   /* CREATED (2xx with an id), REFUSED,
                                     AUTH, RETRY: as registration */
    char               psp_ref[128];
    char               reason[256];   /* REFUSED: safe to show; our secret
                                         redacted (for logs otherwise) */
    int                key_in_use;    /* RETRY: as pay_psp_result_t's */
} pay_psp_op_result_t;


/*
 * The session look-up: what the sweeper asks a PSP about a checkout still
 * EXECUTING whose webhook never came (doc/PSPS.md, "Session look-up").
 */
typedef struct {
    const char  *token;             /* the PSP's session id we stored */
    const char  *nonce;             /* merchant_id ":" checkout_id */
    const char  *session_result;    /* adyen: sessionResult from the
                                       shopper's return, or NULL */
    const char  *merchant_account;  /* adyen merchant_account=, or NULL
                                       (not sent: Adyen's look-up takes
                                       none) */
    int          setup;             /* a save without a charge: the
                                       answer's stored method is asked for
                                       (ev->method) where the PSP names it
                                       (doc/PSPS.md, "Session look-up") */
    int          method;            /* a session paid here whose stored
                                       method was never recorded (its
                                       event lost): the look-up asks for
                                       the method with its display fields
                                       where the dialect can
                                       (method_lookup) */
} pay_psp_lookup_t;

typedef enum {
    PAY_LOOKUP_DECIDED = 1,  /* *ev holds a SUCCEEDED or FAILED event to
                                apply, as a verified webhook's */
    PAY_LOOKUP_OPEN,         /* the session is still open at the PSP (or a
                                payment in it is under way): ask later */
    PAY_LOOKUP_UNKNOWN,      /* no answer we can trust (no answer, 404,
                                4xx, 5xx, an unreadable or foreign
                                answer): ask later */
    PAY_LOOKUP_AUTH,         /* 401/403: our credentials */
    PAY_LOOKUP_PENDING       /* a payment in the session is under way (a
                                method that settles later: Adyen's
                                paymentPending, Stripe's complete but
                                unpaid): ask later, and never fail the
                                checkout because the session expired */
} pay_lookup_outcome_e;

/* A token longer than this is not looked up: "lookup:<token>:<status>"
 * must fit pay_event_t.event_id whole, or two tokens could share an id. */
#define PAY_LOOKUP_TOKEN_MAX     200
/* Adyen's sessionResult, as the shopper's browser brought it back. */
#define PAY_LOOKUP_RESULT_MAX    4096

typedef struct {
    const char      *name;              /* dialect= */
    pay_dialect_e    id;

    unsigned         params;            /* PAY_PSP_P_* taken */
    unsigned         required;          /* PAY_PSP_P_* needed */

    /* "Authorization: Bearer %s"-like: one %s, the API key */
    const char      *auth_header;

    /* nginx -t: the API key against mode= (NULL: no rule); a message
     * naming what to change, or NULL when it fits. */
    const char     *(*credential_check)(const char *key, size_t len,
                                        int live);

    /* nginx -t: a webhook secret as configured -> as verified; returns
     * 0, or -1 with *why set.  NULL: used as is. */
    int            (*secret_decode)(const unsigned char *in, size_t len,
                                    unsigned char *out, size_t *out_len,
                                    const char **why);

    /* the PSP's minor-unit exponent of an ISO currency */
    int            (*exponent)(const pay_currency_t *iso);
    /* 1 if the PSP takes this amount in its units (exponent e) */
    int            (*amount_ok)(int64_t psp_amount, int e);

    /* registration */
    const char      *registration_path;
    const char      *registration_type;
    char           *(*registration_body)(const pay_psp_registration_t *r,
                                         int64_t total);
    const char      *token_field;       /* in the 2xx answer */
    const char      *expires_field;
    /* the query parameter the PSP adds to the shopper's way back that the
     * session look-up needs (adyen: sessionResult); NULL: none */
    const char      *return_session_param;
    /* 1: the session look-up answers a snapshot that is never updated
     * (adyen's session result), so "open" past the session's expiry means
     * it expired; 0: the PSP's answer is the session's state now */
    unsigned         lookup_snapshot:1;
    /* 1: the session look-up of a paid (or set up) session names the
     * method it stored when in->method is set (ev->method, ev->psp_customer
     * and the display fields brand, last4, exp_month, exp_year where the
     * PSP tells them): the sweeper records a method whose own event was
     * lost.  0: it cannot (adyen: its session result names no method, and
     * GET /storedPaymentMethods lists the shopper's methods without the
     * payment that stored each); such checkouts are listed for a person
     * (doc/PSPS.md, "When the method's event is lost"). */
    unsigned         method_lookup:1;
    const json_t   *(*refusal_reason)(const json_t *root);
    /* 1 when a 4xx answer only says that the PSP is still working on, or
     * has already taken, a request under this Idempotency-Key (adyen:
     * errorCode 704 with HTTP 422): not a refusal, for the first request
     * may well succeed; the same key again finds out.  NULL: the dialect
     * has no such answer (stripe and generic say it with 409, which is
     * never a refusal). */
    int            (*key_in_use)(const json_t *root);

    /* webhooks: verify over the raw bytes, then read the events */
    void           (*webhook)(const pay_webhook_conf_t *conf,
                              pay_header_pt header, void *hdata,
                              const char *body, size_t blen, int64_t now,
                              pay_event_t *events, size_t max,
                              size_t *nevents, pay_wh_verdict_t *v);
    const char      *webhook_answer;    /* the body a PSP expects */

    /*
     * A kept event's evidence verified again (payments-events verify):
     * bytes as the inbox kept them (the event's pay_event_t.evidence_off
     * and _len of its body), header the header values it kept, conf's
     * secrets or keys those to try (its header= for the generic JWT; iss,
     * aud, live and merchant_account are not read), at the time it was
     * received.  Authenticity only: a signature too old by then is still
     * the PSP's (no tolerance), nothing is parsed for events.  Returns
     * PAY_ERR_NONE or PAY_ERR_BAD_SIGNATURE.
     */
    pay_err_e      (*evidence_verify)(const pay_webhook_conf_t *conf,
                                      pay_header_pt header, void *hdata,
                                      const char *bytes, size_t len,
                                      int64_t at);

    /*
     * The same kept bytes read again by the webhook's own parser, after
     * evidence_verify passed over them (payments-events verify compares
     * what they say with the fields the event's row keeps): the events
     * they carry, *nevents of at most max, as webhook read them when they
     * came (an Adyen item alone is one event; a Stripe charge.refunded
     * one per refund).  conf's secrets are the ones evidence_verify took.
     * Returns 0, or -1 with *nevents 0: not events of this dialect.
     */
    int            (*evidence_events)(const pay_webhook_conf_t *conf,
                                      pay_header_pt header, void *hdata,
                                      const char *bytes, size_t len,
                                      pay_event_t *events, size_t max,
                                      size_t *nevents);
    const char      *webhook_answer_type;

    /*
     * The sweeper's session look-up.  session_lookup builds the request
     * (a GET: req->body NULL, psp.h); returns 0, or -1 with *req empty
     * when the input is unusable or the dialect cannot ask (adyen without
     * session_result: the glue then relies on the session's expiry).  The
     * token goes into the path: stripe and adyen take [A-Za-z0-9_-] only,
     * generic percent-encodes every other byte; at most
     * PAY_LOOKUP_TOKEN_MAX characters, never "." or "..".
     *
     * session_lookup_answer classifies the PSP's answer (status 0: none)
     * and never fails.  For DECIDED, *ev is the event to apply with
     * pay_sweeper_apply(): event_id "lookup:<token>:<status word>", type
     * the PSP's status, kind SUCCEEDED or FAILED, token in->token,
     * reference the answer's (our nonce) or else in->nonce, amount in ISO
     * minor units (converted from the dialect's) or
     * PAY_EVT_AMOUNT_ABSENT / _INEXACT, currency upper case or "",
     * livemode -1, account "".  For OPEN and PENDING, ev->kind is
     * PAY_EVT_PENDING and ev->type the PSP's status, for the log; otherwise *ev is cleared
     * (kind 0, amount PAY_EVT_AMOUNT_ABSENT).  An answer about another
     * session than in->token is UNKNOWN.  now is not used by today's
     * dialects: a session is over when its PSP says so, never by our
     * clock.
     */
    int            (*session_lookup)(const pay_psp_lookup_t *in,
                                     pay_psp_request_t *req);
    pay_lookup_outcome_e
                   (*session_lookup_answer)(const pay_psp_lookup_t *in,
                                            int status, const char *body,
                                            size_t len, int64_t now,
                                            pay_event_t *ev);

    /*
     * Refunds and pay-outs (doc/PSPS.md).  refund and payout build the
     * request (a POST; the same input gives the same bytes) and return 0,
     * or -1 with *req empty on bad input: a nonce that is not ours, a
     * payment_ref or destination the PSP could not have issued (adyen's
     * payment_ref goes into the path: [A-Za-z0-9]{1,64}), an amount <= 0
     * or without an exact value in the dialect's units, an unknown
     * currency, a reason too long or not text, no merchant account
     * (adyen refund).  op_answer classifies the answer as registration
     * does (2xx with the id: CREATED; 400/402/404/422 REFUSED with the
     * PSP's reason; 401/403 AUTH; anything else, a 2xx without an id
     * included, RETRY); pay_psp_parse_op_redact() is the same with our
     * credential taken out of the reason.
     */
    int            (*refund)(const pay_psp_refund_t *in,
                             pay_psp_request_t *req);
    int            (*payout)(const pay_psp_payout_t *in,
                             pay_psp_request_t *req);
    /* the API the payout request's path is relative to (stripe, generic:
     * MAIN; adyen: TRANSFERS, whose base is .../btl/v4) */
    pay_psp_api_e    payout_api;
    void           (*op_answer)(int status, const char *body, size_t len,
                                pay_psp_op_result_t *res);
    /* the 2xx answer's id: the first of these that is present */
    const char      *op_ref_fields[3];

    /*
     * How long, in seconds, the PSP surely keeps an Idempotency-Key and
     * answers a request sent again under it with what it did the first
     * time.  A claim older than this is never sent again: the PSP could
     * take it for a new request and make a second session, refund or
     * transfer (doc/MONEY.md, "Resumed operations").
     */
    int64_t          key_window;

    /* The longest Idempotency-Key the PSP takes (Adyen: 64); 0: 255. */
    size_t           key_max;

    /*
     * The session's lifetime the PSP takes: a registration's expires_at at
     * least session_min and at most session_max seconds after the request
     * reaches the PSP (a caller's expires_at and payments_session_lifetime
     * are checked against them, with a lease's room for a resumed claim).
     */
    int64_t          session_min;
    int64_t          session_max;

    /*
     * A checkout's cancel.  session_expirable 1: the PSP expires an open
     * session on demand, and session_expire builds that request (a POST,
     * sent under the cancel's own Idempotency-Key) for in->token, taken as
     * session_lookup takes it; returns 0, or -1 with *req empty.  Its 2xx
     * answer is the session as it is after the call, which
     * session_lookup_answer reads (an expired session: FAILED; a paid one:
     * SUCCEEDED or PENDING); a 4xx other than 401, 403 and 404 says the
     * session was not open (Stripe), and the session look-up says why.
     * 0: the PSP cannot expire a session (adyen's /sessions): a cancel is
     * the gateway's alone, and the session lapses at its expiry
     * (doc/API.md, "Cancel a checkout").
     */
    unsigned         session_expirable:1;
    int            (*session_expire)(const pay_psp_lookup_t *in,
                                     pay_psp_request_t *req);

    /*
     * Routing (doc/DESIGN.md, "Routing"): which outcomes of a
     * registration prove that the PSP made no session, so that the
     * route's next PSP may be asked under the same nonce.  Not being
     * called (its circuit open) and a connection never made prove it for
     * every PSP; these say what else does.  An outcome not listed holds
     * the checkout at the PSP.  The currencies a route may send a dialect
     * are those it takes in exact minor units, every amount of them
     * (pay_dialect_currency_exact: its exponent and amount_ok above).
     */
    unsigned         no_session;            /* PAY_NOSESSION_* */
    /* 5xx statuses the PSP documents as answered before anything was
     * made; 0 ends the list */
    int              no_session_5xx[4];

    /*
     * Manual capture (doc/API.md, "Manual capture").  capture builds the
     * capture of in->amount of the authorized payment in->payment_ref,
     * cancel the release of what is not captured (in->amount unused), each
     * under in->nonce as its Idempotency-Key and reference (a POST; the
     * same input gives the same bytes); 0, or -1 with *req empty on bad
     * input.  The answer is read by op_answer.  NULL: the dialect does not
     * capture later.  capture_once: the PSP captures an authorization
     * once and releases the rest with it (Stripe), so a second capture of
     * a checkout is refused before it is sent.
     */
    int            (*capture)(const pay_psp_refund_t *in,
                              pay_psp_request_t *req);
    int            (*cancel)(const pay_psp_refund_t *in,
                             pay_psp_request_t *req);
    unsigned         capture_once:1;
    /* How long, in seconds, an authorization is held before the card
     * network releases it: the sweeper warns a day before and releases
     * (books nothing of) a hold past it.  0: never swept. */
    int64_t          auth_window;

    /*
     * Saved payment methods (doc/API.md, "Saved payment methods").  A
     * checkout with co->save_usage is registered by registration_body with
     * the dialect's save fields; one with co->payment_method is an
     * off-session charge: charge_body builds the PSP's merchant-initiated
     * payment (POST charge_path, registration_type) from r->charge_token
     * under the nonce, and charge_answer reads a 2xx, 400, 402, 404 or
     * 422 answer's JSON (pay_psp_parse_charge_redact calls it: outcome,
     * psp_ref, decline_code via pay_charge_code, reason unredacted).
     * NULL: the dialect does not charge saved methods.
     */
    const char      *charge_path;
    char           *(*charge_body)(const pay_psp_registration_t *r,
                                   int64_t total);
    void           (*charge_answer)(int status, const json_t *root,
                                    pay_psp_charge_result_t *res);

    /*
     * The sweeper's look-up of an off-session charge the PSP took (in->token
     * its payment id, in->nonce the checkout's) whose webhook never came
     * (doc/PSPS.md, "Payment look-up").  payment_lookup builds the GET as
     * session_lookup does; payment_lookup_answer reads the answer as
     * session_lookup_answer does, into the event the dialect's webhook of
     * that charge would have given: token and payment_ref the payment id,
     * a success captured, reference the answer's nonce or else ours.
     * Never FAILED but on the PSP's word that the payment failed, never by
     * a clock.  With no in->token (the charge's every answer lost, so no
     * payment id stored), payment_lookup asks for the payment made under
     * in->nonce (Stripe's search by metadata.charge, the generic
     * ?reference=) and payment_lookup_answer reads the one payment it
     * names as the look-up of its id would, ev->token its id; none found
     * is UNKNOWN.  NULL: the PSP has no look-up of a payment (Adyen's
     * Checkout API): its webhook books the charge, and past alert= the
     * overdue line lists it.
     */
    int            (*payment_lookup)(const pay_psp_lookup_t *in,
                                     pay_psp_request_t *req);
    pay_lookup_outcome_e
                   (*payment_lookup_answer)(const pay_psp_lookup_t *in,
                                            int status, const char *body,
                                            size_t len, int64_t now,
                                            pay_event_t *ev);
} pay_dialect_t;


/* An off-session charge's answer (status 0: none) as d->charge_answer,
 * every occurrence of secret taken out of res->reason; a NULL d or one
 * without charge_answer is RETRY. */
void pay_psp_parse_charge_redact(const pay_dialect_t *d, int status,
    const char *body, size_t len, const char *secret, size_t slen,
    pay_psp_charge_result_t *res);


/* pay_dialect_t.no_session */
#define PAY_NOSESSION_REFUSED    0x01   /* a refusal of the request itself
                                           (REFUSED: 400/402/404/422, never
                                           401/403, 409 or a key in use) */
#define PAY_NOSESSION_THROTTLED  0x02   /* 429: turned away before it ran */


/*
 * Why a registration attempt's outcome proves that the PSP made no
 * session: "connect_refused" (connected 0: no connection was ever made
 * and no byte of the request was sent on one that died),
 * "refused", "throttled", "psp_5xx_nothing_made"; NULL when it may have
 * made one (a timeout, a dropped answer, a 5xx, 409, a key in use, a 2xx
 * without an id) or it is the gateway's own credentials (AUTH).
 */
const char *pay_dialect_no_session(const pay_dialect_t *d, int connected,
    int status, pay_psp_outcome_e outcome, int key_in_use);

/*
 * 1 when a claim first sent age seconds ago may be sent again under its
 * key: the request reaches the PSP within in_flight seconds from now (the
 * caller's bound on its attempts), and PAY_KEY_MARGIN seconds more cover
 * what that bound does not (a risk check before it, the database's queue,
 * the clocks of the database and the PSP), all inside the dialect's
 * key_window.  0 otherwise, or for an age that cannot be (negative).
 */
#define PAY_KEY_MARGIN  600

int pay_dialect_key_kept(const pay_dialect_t *d, int64_t age,
    int64_t in_flight);

/*
 * The Idempotency-Key of a second request a nonce makes at the PSP
 * ("<nonce>:<what>": a charge's hosted session, a cancel): that text when
 * it fits the dialect's key_max, else "<what>:" and as many hex digits of
 * the nonce's SHA-256 as fit (the same nonce, the same key, every retry).
 * Written to out (size bytes); 0, or -1 when it cannot fit or fails.
 */
int pay_dialect_subkey(const pay_dialect_t *d, const char *nonce,
    const char *what, char *out, size_t size);

/* 1 when the dialect takes every amount of this ISO currency in exact
 * minor units (pay_psp_amount_supported of 1 minor unit), 0 otherwise or
 * for an unknown currency. */
int pay_dialect_currency_exact(const pay_dialect_t *d, const char *currency);


/*
 * A refund's or pay-out's answer (status 0: none), as d->op_answer, and
 * every occurrence of secret (the credential the request was sent with;
 * NULL for none) removed from res->reason before it is cut to size.
 * Never fails; a NULL d is RETRY.
 */
void pay_psp_parse_op_redact(const pay_dialect_t *d, int status,
    const char *body, size_t len, const char *secret, size_t slen,
    pay_psp_op_result_t *res);

/* By dialect= name (exact), or NULL. */
const pay_dialect_t *pay_dialect_find(const char *name, size_t len);

/* By id, or NULL. */
const pay_dialect_t *pay_dialect_get(pay_dialect_e id);

/* The table, NULL-terminated, for listing ("stripe|adyen|generic"). */
extern const pay_dialect_t *const  pay_dialects[];

/* The dialects, one file each. */
extern const pay_dialect_t  pay_dialect_stripe;
extern const pay_dialect_t  pay_dialect_adyen;
extern const pay_dialect_t  pay_dialect_generic;


/* Adyen's advice for a transfer's description: at most 140 characters */
#define PAY_ADYEN_DESCRIPTION_MAX  140

/* in as a transfer's description: every byte Adyen does not take
 * (pay_adyen_description_ok) as '-', cut to size - 1 and to
 * PAY_ADYEN_DESCRIPTION_MAX characters; always terminated (size > 0). */
void pay_adyen_description(const char *in, char *out, size_t size);

/* 1 when c is one of [a-zA-Z0-9/-?:().,'+ ], which Adyen takes in a
 * transfer's description; 0 otherwise. */
int pay_adyen_description_ok(unsigned char c);


/*
 * An application/x-www-form-urlencoded body (Stripe's), written by the one
 * encoder every form request goes through (src/psp.c): fields in order,
 * each name[key]=value.  name is the gateway's own, "seg" or
 * "seg[seg]...", each seg of [A-Za-z0-9_] (its brackets are structure);
 * key is NULL or anyone's (a merchant's metadata key), percent-encoded
 * inside one more pair of brackets; value is percent-encoded.  A decoder
 * that reads the body as Stripe does gets back exactly these fields.
 * Returns the body (malloc'd; "" for none), or NULL when a name has
 * another shape, a key is empty or holds '[' or ']' (no encoding keeps
 * a bracket out of Stripe's parse), a value is NULL, or on no memory.
 */
typedef struct {
    const char  *name;
    const char  *key;
    const char  *value;
} pay_form_field_t;

char *pay_form_encode(const pay_form_field_t *fields, size_t n);

#endif
