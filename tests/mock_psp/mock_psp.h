/*
 * Mock PSP: a standalone HTTP server that behaves like Stripe's Checkout
 * Sessions API and can be told to fail the way real PSPs fail.
 * The command line and control API are fixed by doc/CONTRACTS.md, section 3.
 */

#ifndef MOCK_PSP_H
#define MOCK_PSP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "adyen_hmac.h"


/* Stripe's own limit on an Idempotency-Key. */
#define MOCK_MAX_KEY_LEN       255

/* Larger request bodies are answered with 413. */
#define MOCK_MAX_BODY          (1024 * 1024)

/*
 * Every in-memory map (sessions, idempotency keys, per-key counts) keeps at
 * most this many entries and forgets the oldest first: a long benchmark must
 * not grow the mock without bound.
 */
#define MOCK_MAX_ENTRIES       65536

#define MOCK_SESSION_ID_PREFIX "cs_test_"
#define MOCK_SESSION_ID_RANDOM 24


typedef struct {
    const char           *listen;
    const char           *stripe_secret;
    const char           *stripe_live_secret;   /* NULL: none */
    char                 *public_url;        /* no trailing slash */
    long                  latency_ms;
    unsigned              port;
    const char           *webhook_url;       /* NULL: events are only logged */
    const char           *stripe_webhook_secret;
    const char           *webhook_ca;        /* NULL: the system store */
    long                  webhook_retry_ms;
    const char           *adyen_secret;      /* X-API-Key; NULL: no Adyen */
    const char           *adyen_transfers_secret;   /* the Transfers API's
                                                       X-API-Key */
    unsigned              adyen_transfers_port;
    unsigned              adyen_transfers:1;        /* a port was given */
    const char           *adyen_specs;       /* Adyen's OpenAPI documents */
    unsigned char         adyen_hmac_key[32];
    unsigned              adyen_hmac_set:1;
    const char           *adyen_webhook_url;
    const char           *generic_secret;    /* Bearer; NULL: no generic */
    void                 *generic_jwt_key;   /* EVP_PKEY *, EC P-256 */
    const char           *generic_jwt_kid;
    const char           *generic_jwt_iss;   /* NULL: no iss claim */
    const char           *generic_jwt_aud;   /* NULL: no aud claim */
    const char           *generic_jwt_header;
    const char           *generic_webhook_url;
    unsigned              risk_port;         /* --risk-port (risk.c) */
    unsigned              risk:1;            /* a port was given */
    const char           *risk_secret;       /* verifies our requests */
    const char           *risk_answer_secret;   /* signs its answers;
                                                   NULL: unsigned */
    long                  risk_latency_ms;
} mock_conf_t;


/* One HTTP request in progress; lives from the first callback to the end. */
typedef struct {
    char                 *body;              /* NUL-terminated */
    size_t                len;
    size_t                cap;
    unsigned              too_large:1;
} mock_request_t;


typedef struct {
    const char           *name;
    const char           *value;
} mock_header_t;


/* What a fault rule asks of one request; a copy, owned by the request. */
typedef struct {
    uint64_t              id;                /* 0: no rule matched */
    long                  latency_ms;
    long                  hang_ms;
    long                  retry_after;       /* s, on fail_* answers */
    unsigned              refuse_status;
    char                 *hosted_url;        /* malloc'd or NULL */
} mock_fault_t;

/* Retry-After (seconds) that mock_send adds to this thread's next answer;
 * 0: none.  Set around a fault rule's failing answer. */
extern __thread long  mock_retry_after;


/*
 * What a fault rule asks of the webhooks of one session; a copy taken when
 * the shopper pays or declines.
 */
typedef struct {
    uint64_t              id;                /* 0: no rule matched */
    long                  delay_ms;          /* before the first delivery */
    long                  duplicate;         /* extra copies of each event */
    long                  async_delay_ms;
    json_int_t            amount;            /* if has_amount */
    unsigned              has_amount:1;
    unsigned              out_of_order:1;
    unsigned              bad_signature:1;
    unsigned              stale:1;
    unsigned              async_payment:1;
    unsigned              never:1;           /* webhook_never: none sent */
    unsigned              no_method:1;       /* webhook_no_method: the
                                                method is saved, its event
                                                never sent (Stripe's
                                                setup_intent.succeeded or
                                                intent's, Adyen's
                                                RECURRING_CONTRACT, generic
                                                payment_method.saved) */
    unsigned              op_failed:1;       /* webhook_op_failed: the
                                                refund or transfer fails */
    unsigned              charge_refunded:1; /* webhook_charge_refunded:
                                                Stripe's charge.refunded
                                                instead of refund.updated */
    unsigned              refund_failed_code:1;  /* webhook_refund_failed_
                                                code: Adyen's REFUND_FAILED
                                                instead of REFUND false */
    unsigned              capture_reversed:1;    /* webhook_capture_
                                                reversed: the capture's
                                                success, then its failure
                                                (Adyen CAPTURE_FAILED,
                                                generic capture.failed) */
} mock_webhook_fault_t;


typedef enum {
    MOCK_IDEM_CLAIMED = 0,                   /* new key, now in progress */
    MOCK_IDEM_REPLAY,                        /* done, same body */
    MOCK_IDEM_MISMATCH,                      /* known key, another body */
    MOCK_IDEM_IN_USE                         /* first request still running */
} mock_idem_e;


typedef struct {
    uint64_t              token;             /* identifies this claim */
    uint64_t              epoch;             /* store generation at arrival */
    unsigned              status;            /* REPLAY: the stored answer */
    char                 *body;              /* REPLAY: malloc'd copy */
} mock_claim_t;


typedef enum {
    MOCK_SESSION_NOT_FOUND = 0,
    MOCK_SESSION_OPEN,
    MOCK_SESSION_EXPIRED,
    MOCK_SESSION_COMPLETE
} mock_session_state_e;


extern mock_conf_t  mock_conf;


/* main.c */
void mock_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* risk.c: the risk provider's listener */
enum MHD_Result mock_risk_route(struct MHD_Connection *c, mock_request_t *r,
    const char *url, const char *method);
void mock_risk_reset(void);

/* http.c */
enum MHD_Result mock_send(struct MHD_Connection *c, unsigned status,
    const char *content_type, const char *body, size_t len,
    const mock_header_t *headers, size_t nheaders);
enum MHD_Result mock_send_json(struct MHD_Connection *c, unsigned status,
    json_t *json);
enum MHD_Result mock_send_html(struct MHD_Connection *c, unsigned status,
    const char *title, const char *html_body);
enum MHD_Result mock_send_redirect(struct MHD_Connection *c,
    const char *location);
int mock_sleep_ms(long ms);
int mock_sleep_init(void);
void mock_sleep_interrupt(void);
int mock_client_is_loopback(struct MHD_Connection *c);
int mock_random_alnum(char *out, size_t n);
int mock_random_digits(char *out, size_t n);
int mock_url_valid(const char *s, size_t max);
int mock_currency_valid(const char *s);
void mock_html_escape(FILE *f, const char *s);

/* store.c: every function takes the store's lock itself. */
int mock_store_init(void);
void mock_store_destroy(void);
void mock_store_reset(void);
uint64_t mock_store_arrive(const char *key, const char *api,
    mock_fault_t *fault);
mock_idem_e mock_store_claim(const char *key, const unsigned char *hash,
    mock_claim_t *claim);
void mock_store_release(const char *key, const mock_claim_t *claim);
/* key: the Idempotency-Key, under which sessions are counted; ikey: the
 * key in its API's own table (create.c: "<api>|<key>"; each PSP keeps its
 * own keys, so one nonce at two PSPs is two registrations) */
int mock_store_commit(const char *key, const char *ikey,
    const mock_claim_t *claim, json_t *session, const char *response,
    unsigned status);
unsigned mock_fault_take_fail(uint64_t id);
int mock_fault_take_drop(uint64_t id, int replay);
void mock_fault_free(mock_fault_t *fault);
uint64_t mock_fault_add(const char *match, long latency_ms, long fail_times,
    long fail_every, long retry_after, unsigned fail_status, unsigned refuse_status, long hang_ms,
    long drop_after_register, const char *hosted_url,
    const mock_webhook_fault_t *wf);
void mock_fault_counts(uint64_t id, long hang_times, long drop_replays);
void mock_fault_api(uint64_t id, const char *api);
int mock_fault_remove(uint64_t id);
json_t *mock_fault_list(void);
void mock_store_registrations(const char *key, uint64_t *sessions_created,
    uint64_t *requests);
/* forgets the finished idempotency keys that contain match: how many */
unsigned long mock_store_forget_keys(const char *match);
mock_session_state_e mock_session_get(const char *id, json_t **copy);
/* any record kept under id, a session or an operation (a copy; NULL:
 * none) */
json_t *mock_record_get(const char *id);
int mock_session_is_setup(const json_t *session);
mock_session_state_e mock_session_pay(const char *id, json_t **copy,
    mock_webhook_fault_t *wf);
mock_session_state_e mock_session_decline(const char *id, json_t **copy,
    mock_webhook_fault_t *wf);
mock_session_state_e mock_session_settle(const char *id, json_t **copy);
mock_session_state_e mock_session_expire(const char *id, json_t **copy);
/* 1 when the session was registered for manual capture (any dialect) */
int mock_session_manual(const json_t *session);
/* the paid session whose payment_ref is ref (a copy), or NULL */
json_t *mock_session_by_payment(const char *ref);
/* the ids of the off-session charges of dialect made under the nonce ref
 * (client_reference_id), newest first: a new array (empty: none), or
 * NULL out of memory */
json_t *mock_charges_by_reference(const char *dialect, const char *ref);
/* the webhook knobs of the rule matching subject (none: all zero) */
void mock_store_webhook_fault(const char *subject, mock_webhook_fault_t *wf);

/* form.c */
typedef struct {
    char                 *key;
    char                 *value;
} mock_form_pair_t;

typedef struct {
    mock_form_pair_t     *pairs;
    size_t                n;
} mock_form_t;

int mock_form_parse(const char *body, size_t len, mock_form_t *form,
    char *err, size_t errlen);
void mock_form_free(mock_form_t *form);

/* create.c: registering a session, whatever the API */

/* A 400 to answer, filled in by validation; code NULL: an internal error. */
typedef struct {
    const char           *code;
    char                  param[256];
    char                  message[512];
} mock_invalid_t;

/* generic.c: a generic request's optional "metadata" is an object of
 * strings; -1 (and inv) otherwise */
int mock_generic_metadata_ok(json_t *req, mock_invalid_t *inv);

typedef enum {
    MOCK_REFUSE_UNAUTHORIZED = 0,
    MOCK_REFUSE_KEY_INVALID,
    MOCK_REFUSE_KEY_MISMATCH,
    MOCK_REFUSE_KEY_IN_USE,
    MOCK_REFUSE_FAIL,                        /* fail_status: transient */
    MOCK_REFUSE_FAULT,                       /* refuse_status: for good */
    MOCK_REFUSE_CONTENT_TYPE,
    MOCK_REFUSE_INVALID,                     /* inv says why */
    MOCK_REFUSE_INTERNAL
} mock_refusal_e;

typedef struct {
    const char           *name;
    size_t                key_max;           /* Idempotency-Key length */
    const char           *content_type;      /* of the request body */
    unsigned              created;           /* 200 (Stripe) or 201 */
    int                 (*authorized)(struct MHD_Connection *c);
    /* status: the fault's for FAIL and FAULT, a suggestion otherwise */
    enum MHD_Result     (*refuse)(struct MHD_Connection *c,
                                  mock_refusal_e what, unsigned status,
                                  const char *key, const mock_invalid_t *inv);
    /* The session to store (the shape store.c, hosted.c and events.c
     * read: id, url, amount_total, currency, client_reference_id,
     * success_url, cancel_url, expires_at, status, payment_status and
     * "dialect") and in *response the answer to send; NULL with inv. */
    json_t             *(*build)(const char *body, size_t len,
                                 const mock_fault_t *fault,
                                 mock_invalid_t *inv, char **response);
    /* after the commit (NULL: nothing): what was stored, a copy, and the
     * Idempotency-Key (money.c sends the operation's webhook here) */
    void               (*committed)(const json_t *stored, const char *key);
} mock_api_t;

enum MHD_Result mock_create(struct MHD_Connection *c, mock_request_t *r,
    const mock_api_t *api);
void mock_utf8_trim(char *s);
void mock_invalid(mock_invalid_t *inv, const char *code, const char *param,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* stripe.c */
enum MHD_Result mock_stripe_create(struct MHD_Connection *c,
    mock_request_t *r);
enum MHD_Result mock_stripe_retrieve(struct MHD_Connection *c,
    const char *id);
/* POST /v1/checkout/sessions/{id}/expire (expire.c) */
enum MHD_Result mock_stripe_expire_call(struct MHD_Connection *c,
    const char *id);
/* Stripe's integers: ^(0|[1-9][0-9]*)$ within int64: 0, or -1 */
int mock_parse_int64(const char *s, int64_t *out);
enum MHD_Result mock_stripe_error(struct MHD_Connection *c, unsigned status,
    const char *type, const char *code, const char *param,
    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* adyen.c: POST /v71/sessions and Adyen's notifications */
enum MHD_Result mock_adyen_create(struct MHD_Connection *c,
    mock_request_t *r);
enum MHD_Result mock_adyen_lookup(struct MHD_Connection *c, const char *id);
/* Adyen's error answer {"status","errorCode","message","errorType"} */
enum MHD_Result mock_adyen_error(struct MHD_Connection *c, unsigned status,
    const char *code, const char *type, const char *message);
void mock_adyen_webhook(const json_t *session, int paid,
    const mock_webhook_fault_t *wf);

/* spec.c: requests to Adyen checked against its OpenAPI documents */
typedef enum {
    MOCK_SPEC_CHECKOUT = 0,     /* CheckoutService-v71.json, main port */
    MOCK_SPEC_TRANSFERS         /* TransferService-v4.json, its own port */
} mock_spec_api_e;

/* loads the documents from dir: 0, or -1 (said on stderr) */
int mock_spec_load(const char *dir);
void mock_spec_free(void);
/* the server URL's path of the document: "/v71", "/btl/v4" */
const char *mock_spec_base(mock_spec_api_e api);
/* 0 when the request is one the document's server takes; otherwise the
 * status to answer (404 no such path, 405 no such operation, 422 a rule
 * broken) and in why which rule */
int mock_spec_check(mock_spec_api_e api, struct MHD_Connection *c,
    const char *method, const char *url, const char *body, size_t len,
    char *why, size_t size);

/* generic.c: POST /sessions and JWT-signed webhooks */
enum MHD_Result mock_generic_create(struct MHD_Connection *c,
    mock_request_t *r);
enum MHD_Result mock_generic_lookup(struct MHD_Connection *c,
    const char *token);
/* POST /sessions/{token}/expire (expire.c) */
enum MHD_Result mock_generic_expire_call(struct MHD_Connection *c,
    const char *token);
void mock_generic_webhook(const json_t *session, int paid,
    const mock_webhook_fault_t *wf);
int mock_generic_load_key(const char *path);

/* expire.c: a session ended on demand, with the API's credentials check
 * and error answer */
enum MHD_Result mock_stripe_expire(struct MHD_Connection *c, const char *id,
    int (*authorized)(struct MHD_Connection *c));
enum MHD_Result mock_generic_expire(struct MHD_Connection *c,
    const char *token, int (*authorized)(struct MHD_Connection *c),
    enum MHD_Result (*error)(struct MHD_Connection *c, unsigned status,
                             const char *code, const char *message));

/* hosted.c */
int mock_currency_exponent(const char *currency);
int mock_psp_exponent(const char *dialect, const char *currency);
int mock_format_minor(char *out, size_t size, json_int_t amount,
    const char *currency);
int mock_format_psp(char *out, size_t size, json_int_t amount,
    const char *dialect, const char *currency);
enum MHD_Result mock_hosted(struct MHD_Connection *c, const char *method,
    const char *path);

/* control.c */
enum MHD_Result mock_control(struct MHD_Connection *c, const char *method,
    const char *path, mock_request_t *r);

/* events.c: the hosted page and the control API pay and decline here. */
mock_session_state_e mock_event_pay(const char *id, json_t **copy);
mock_session_state_e mock_event_decline(const char *id, json_t **copy);

/* The longest signature header line a dialect writes ("Name: value"). */
#define MOCK_WH_SIGNATURE_MAX  8192

/*
 * webhook.c: delivery, dialect-free.  An event is one body to POST; a
 * chain is a list of events delivered one after the other (each starts
 * when every copy of the previous one is done).  A dialect signs.
 */
typedef struct mock_wh_event_s  mock_wh_event_t;

typedef struct {
    const char           *name;
    const char *const    *url;               /* &mock_conf.…_webhook_url */
    /*
     * Writes the signature header line of one attempt ("Name: value"), or
     * an empty string.  Called per attempt: Stripe signs each attempt with
     * its own timestamp.
     */
    int                 (*sign)(const mock_wh_event_t *ev, char *line,
                                size_t size);
} mock_wh_dialect_t;

struct mock_wh_event_s {
    mock_wh_event_t          *next;          /* in its chain */
    const mock_wh_dialect_t  *dialect;
    char                      id[64];
    char                      type[64];
    char                      session[128];
    char                     *body;          /* NULL until prepared */
    /* Builds the body when the event's turn comes; -1 drops the rest. */
    int                     (*prepare)(mock_wh_event_t *ev);
    /* For mock_wh_prepare_settled: the body from the settled session. */
    char                   *(*rebuild)(const mock_wh_event_t *ev,
                                       const json_t *session);
    mock_webhook_fault_t      fault;
    long                      delay_ms;      /* after the previous event */
    unsigned                  copies;        /* 1 + duplicates */
    void                    **records;       /* one per copy, webhook.c's */
    uint64_t                  gen;
};

int mock_webhook_init(void);
void mock_webhook_shutdown(void);
void mock_webhook_wait(void);
void mock_webhook_reset(void);
mock_wh_event_t *mock_wh_event_new(const mock_wh_dialect_t *dialect,
    const char *id, const char *type, const char *session,
    const mock_webhook_fault_t *wf);
void mock_wh_chain_free(mock_wh_event_t *chain);
int mock_wh_prepare_settled(mock_wh_event_t *ev);
int mock_wh_send(mock_wh_event_t *chain);
json_t *mock_wh_list(const char *session);

/* webhook_stripe.c */
json_t *mock_stripe_pi_object(const json_t *session);
void mock_stripe_webhook_completed(const json_t *session,
    const mock_webhook_fault_t *wf);
void mock_stripe_webhook_object(const char *type, json_t *obj,
    const char *subject, const mock_webhook_fault_t *wf, long delay_ms);

/* adyen.c, generic.c: the events after "paid" */
void mock_adyen_webhook_item(const char *code, const char *psp_ref,
    const char *original_ref, const char *account, const char *merchant_ref,
    json_int_t value, const char *currency, int success, const char *subject,
    const mock_webhook_fault_t *wf, long delay_ms);
void mock_adyen_webhook_transfer(json_t *data, const char *subject,
    const mock_webhook_fault_t *wf, long delay_ms);
void mock_generic_webhook_json(const char *type, json_t *e,
    const char *subject, const mock_webhook_fault_t *wf, long delay_ms);

/* capture.c: manual capture's captures and releases; the APIs live in
 * the dialects' files, as the money's */
json_t *mock_capture_stripe_capture_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_capture_stripe_cancel_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_capture_adyen_capture_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_capture_adyen_cancel_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_capture_generic_capture_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_capture_generic_cancel_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
void mock_capture_committed(const json_t *stored, const char *key);
/* POST /_control/captures: a capture made at the PSP's own dashboard */
enum MHD_Result mock_capture_control(struct MHD_Connection *c,
    const char *method, mock_request_t *r);
enum MHD_Result mock_capture_route(struct MHD_Connection *c,
    const char *method, const char *url, mock_request_t *r, int *handled);
enum MHD_Result mock_stripe_capture(struct MHD_Connection *c,
    mock_request_t *r, int capture);
enum MHD_Result mock_adyen_capture(struct MHD_Connection *c,
    mock_request_t *r, int capture);
enum MHD_Result mock_generic_capture(struct MHD_Connection *c,
    mock_request_t *r, int capture);
/*
 * store.c: on the authorized session whose payment is ref, a capture of
 * amount (in currency when not NULL), or the release of the rest (amount
 * 0); once: the rest is released with the capture (Stripe).  0 with *copy
 * the session after, or 404 (no such payment) or 400 (not capturable so,
 * err says why).
 */
int mock_session_capture(const char *ref, json_int_t amount,
    const char *currency, int once, json_t **copy, char *err, size_t size);

/* money.c: refunds, transfers, disputes; the APIs live in the dialects'
 * files (their authentication and errors), the rest in money.c */
json_t *mock_money_stripe_refund_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_money_stripe_transfer_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_money_adyen_refund_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_money_adyen_transfer_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_money_generic_refund_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_money_generic_payout_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
void mock_money_committed(const json_t *stored, const char *key);
json_t *mock_money_ops(void);
/* the disputes' money, refund failures and transfers taken back, in
 * order, for the settlement reports (money.c) */
json_t *mock_money_moves(void);
/* the succeeded captures of a payment, in order: [{id, amount}] (books.c) */
json_t *mock_books_captures(const char *ref);
enum MHD_Result mock_stripe_refund(struct MHD_Connection *c,
    mock_request_t *r);
enum MHD_Result mock_stripe_transfer(struct MHD_Connection *c,
    mock_request_t *r);
enum MHD_Result mock_adyen_refund(struct MHD_Connection *c,
    mock_request_t *r);
enum MHD_Result mock_adyen_transfer(struct MHD_Connection *c,
    mock_request_t *r);
enum MHD_Result mock_generic_refund(struct MHD_Connection *c,
    mock_request_t *r);
enum MHD_Result mock_generic_payout(struct MHD_Connection *c,
    mock_request_t *r);
int mock_generic_decimal(const char *s, const char *currency,
    json_int_t *out);
/* the PSP API's refund and transfer paths; *handled 0: not one of them */
enum MHD_Result mock_money_route(struct MHD_Connection *c, const char *method,
    const char *url, mock_request_t *r, int *handled);
/* /_control/disputes[/{id}/close], /_control/transfers/{id}/reverse */
enum MHD_Result mock_money_control(struct MHD_Connection *c,
    const char *method, const char *path, mock_request_t *r);
void mock_money_reset(void);

/* books.c: the PSP's own books per payment and transfer, and the
 * control API's GET /_control/books and POST /_control/captures/{id}/fail
 * (a capture reversed now) */
void mock_books_reset(void);
void mock_books_paid(const json_t *session, int async);
void mock_books_settled(const json_t *session);
void mock_books_op(const json_t *stored, int failed);
void mock_books_release_rest(const char *ref);
void mock_books_dispute(const json_t *d, const char *state);
void mock_books_capture_reversed(const char *key);
int mock_refund_capture_reversed(const char *ref, json_int_t amount,
    json_int_t room);
/* a paid transfer (its id or nonce) taken back by amount (0: all that is
 * left): 0 (*out its book after, a copy) or a MOCK_REVERSE_ */
#define MOCK_REVERSE_NONE    1      /* no paid transfer of that key */
#define MOCK_REVERSE_BEYOND  2      /* more than is left of it */
#define MOCK_REVERSE_WHOLE   3      /* a part, at a PSP that takes a
                                       transfer back whole only */
#define MOCK_REVERSE_OOM     4
int mock_books_transfer_reverse(const char *key, json_int_t amount,
    json_t **out);
enum MHD_Result mock_books_control(struct MHD_Connection *c,
    const char *method, const char *path);
void mock_stripe_webhook_expired(const json_t *session,
    const mock_webhook_fault_t *wf);


/* vault.c: saved payment methods and their off-session charges */
void mock_vault_reset(void);
json_t *mock_vault_save(const json_t *session);
void mock_vault_paid(const json_t *session, const mock_webhook_fault_t *wf);
json_t *mock_vault_stripe_charge_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_vault_adyen_charge_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
json_t *mock_vault_generic_charge_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response);
void mock_vault_committed(const json_t *stored, const char *key);
enum MHD_Result mock_vault_control(struct MHD_Connection *c,
    const char *method, const char *path, mock_request_t *r);
enum MHD_Result mock_vault_detach(struct MHD_Connection *c,
    const char *dialect, const char *token);
enum MHD_Result mock_vault_retrieve(struct MHD_Connection *c,
    const char *dialect, const char *id);
enum MHD_Result mock_vault_search(struct MHD_Connection *c,
    const char *dialect, const char *reference);
json_t *mock_vault_of_reference(const char *reference);
/* Stripe's PaymentMethod object of the method the session of reference
 * saved (expanded), or NULL */
json_t *mock_vault_pm_object(const char *reference);
/* POST /_control/sessions/{id}/method_event: the held-back method event
 * sent now; 0, or -1 when the session saved none */
int mock_vault_method_event(const char *id);
void mock_vault_lookup_setup(json_t *session, const char *dialect);
/* the dialects' API keys (stripe.c, adyen.c, generic.c): 1 when the
 * request has it */
int mock_authorized(struct MHD_Connection *c);
int mock_adyen_authorized(struct MHD_Connection *c);
int mock_generic_authorized(struct MHD_Connection *c);
enum MHD_Result mock_stripe_charge(struct MHD_Connection *c,
    mock_request_t *r);
enum MHD_Result mock_adyen_charge(struct MHD_Connection *c,
    mock_request_t *r);
enum MHD_Result mock_generic_charge(struct MHD_Connection *c,
    mock_request_t *r);


#endif /* MOCK_PSP_H */
