/*
 * The e2e harness: HTTP exchanges (libcurl, TLS verified against
 * PAY_TEST_CA), their answers, URLs on the suite's gateway and mock, and
 * the assertions every answer of the gateway is held to.
 */
#ifndef E2E_HARNESS_HTTP_H
#define E2E_HARNESS_HTTP_H

#include <stddef.h>
#include <jansson.h>


/* -- HTTP ------------------------------------------------------------------ */

typedef struct {
    const char         *method;     /* "GET", "POST", ... */
    const char         *url;        /* absolute */
    const char *const  *headers;    /* "Name: value", NULL-terminated, or NULL;
                                       "Name:" removes a header curl adds */
    const char         *body;       /* NULL: no body */
    size_t              len;        /* (size_t) -1: strlen(body) */
} req_t;

typedef struct {
    long     status;                /* 0: no answer (see error) */
    char    *body;                  /* NUL-terminated; len bytes before it */
    size_t   len;
    size_t   nhdr;                  /* the final response's header fields */
    char   **names;
    char   **values;
    json_t  *json;                  /* resp_json()'s cache */
    char     error[256];            /* curl's error, if status is 0 */
    double   seconds;               /* total time */
} resp_t;

/* One exchange; never follows redirects.  TLS is verified against
 * PAY_TEST_CA. */
resp_t  *http(const req_t *rq);

/* The same, from the local address local (e.g. "127.0.0.2": 127.0.0.0/8 is
 * all loopback, so tests can be several senders). */
resp_t  *http_from(const req_t *rq, const char *local);

/* n copies of rq sent at the same time (libcurl multi, one connection each);
 * returns n answers. */
resp_t **http_parallel(const req_t *rq, size_t n);

/* n different requests, at most at_once of them in flight (libcurl multi,
 * keep-alive connections reused); returns their n answers, in order. */
resp_t **http_many(const req_t *rqs, size_t n, size_t at_once);

/* The first header field of that name (case-insensitive), or NULL. */
const char *resp_header(const resp_t *r, const char *name);

/* The body as JSON; fails the test when it is not JSON.  Owned by r. */
json_t  *resp_json(resp_t *r);

void     resp_free(resp_t *r);

/* PAY_TEST_GW / PAY_TEST_GW_PLAIN / PAY_TEST_MOCK followed by path. */
char    *gw_url(const char *path);
char    *gw_plain_url(const char *path);
char    *mock_url(const char *path);

/* GET an absolute URL, or a path on the gateway, without credentials. */
resp_t  *http_get(const char *url);
resp_t  *gw_get(const char *path);
/* POST /v1/webhooks/{psp} on the suite's gateway: body (JSON) with the
 * signature header line sig_header ("Name: value"). */
resp_t  *webhook_post(const char *psp, const char *sig_header,
    const char *body);
/* The same on the gateway at origin (NULL: the suite's). */
resp_t  *webhook_post_to(const char *origin, const char *psp,
    const char *sig_header, const char *body);
/* POST /v1/webhooks/<PAY_TEST_PSP> on the gateway at origin: Stripe's
 * checkout.session.completed, signed with the run's webhook secret, saying
 * session token of checkout co (merchant_id's, body_for's 15.00 USD) paid */
resp_t  *stripe_session_paid_post(const char *origin,
    const char *merchant_id, const char *co, const char *token);


/* -- assertions --------------------------------------------------------------- */

/* X-Request-Id present and non-empty. */
void     expect_request_id(const resp_t *r);

/* status, application/problem+json, its "code" and "status" members, an
 * X-Request-Id. */
void     expect_problem(resp_t *r, long status, const char *code);

/* 403 error page of a browser endpoint: no Location, an X-Request-Id. */
void     expect_forbidden_page(const resp_t *r);


#endif
