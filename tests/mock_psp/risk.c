/*
 * The mock's risk provider (doc/RISK.md), on a port of its own
 * (--risk-port): POST /risk with the gateway's signed request, answered
 * with a verdict, signed with --risk-answer-secret when given, over
 * "<t>." Idempotency-Key "." body: bound to the request it answers.
 *
 * It verifies the request's Payments-Signature with --risk-secret (401
 * otherwise) and answers by the buyer's e-mail, whose local part names
 * what to do (any domain):
 *     risk-deny...       {"verdict":"deny","reason":"mock.denied","score":900}
 *     risk-review...     {"verdict":"review","reason":"mock.review","score":500}
 *     risk-slow...       allow after 3 s (longer than the e2e timeout=)
 *     risk-hang...       no answer for 60 s
 *     risk-drop...       the connection closed without an answer
 *     risk-500...        HTTP 500
 *     risk-malformed...  200 with a body that is no verdict
 *     risk-badsig...     allow, signed with another secret
 *     risk-unsigned...   allow, without a signature
 *     risk-replay...     allow, signed for another request's
 *                        Idempotency-Key (an answer played back)
 *     anything else      allow, score 10; by amount: amount_total of
 *                        999999 minor units or more is a review, exactly
 *                        666 a deny (reason mock.amount)
 * and after --risk-latency-ms (the bench's provider).
 *
 * Every request must carry an Idempotency-Key (400 otherwise); one with
 * "phase":"after_payment" (the check after the payment) exactly
 * <merchant_id>:<checkout_id>:after_payment; its knobs answer the first
 * check allow and only the
 * second one otherwise:
 *     risk-after-deny...    {"verdict":"deny","reason":"mock.after_denied",
 *                           "score":880}
 *     risk-after-review...  {"verdict":"review","reason":"mock.after_review"}
 *     risk-after-500...     HTTP 500
 *     amount 667            a deny (reason mock.after_amount)
 * the other knobs answering as they do before the PSP.
 *
 * GET /_control/asked?checkout_id=ID says how many requests (signed or
 * not) named that checkout; with &phase=after_payment, how many of them
 * were after the payment.
 */

#include "mock_psp.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>


static pthread_mutex_t  mock_risk_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t          *mock_risk_asked;     /* checkout_id -> count */


/* "t=<ts>,v1=<hex>" over "<ts>." body (a request: key NULL) or "<ts>."
 * key "." body (an answer, bound to its request's Idempotency-Key), in
 * out (at least 96 bytes) */
static int
mock_risk_sign(const char *secret, long long ts, const char *key,
    const char *body, size_t len, char *out, size_t cap)
{
    int            n;
    char          *msg, hex[65];
    size_t         klen;
    unsigned int   mlen, i;
    unsigned char  mac[EVP_MAX_MD_SIZE];

    klen = key != NULL ? strlen(key) : 0;

    msg = malloc(32 + klen + 1 + len);
    if (msg == NULL) {
        return -1;
    }

    n = snprintf(msg, 32, "%lld.", ts);

    if (key != NULL) {
        memcpy(msg + n, key, klen);
        n += (int) klen;
        msg[n++] = '.';
    }

    memcpy(msg + n, body, len);

    if (HMAC(EVP_sha256(), secret, (int) strlen(secret),
             (unsigned char *) msg, (size_t) n + len, mac, &mlen) == NULL)
    {
        free(msg);
        return -1;
    }

    free(msg);

    for (i = 0; i < mlen && i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    }

    n = snprintf(out, cap, "t=%lld,v1=%s", ts, hex);

    return (n > 0 && (size_t) n < cap) ? 0 : -1;
}


/* the request's signature, within 300 s, in constant time */
static int
mock_risk_verified(struct MHD_Connection *c, const mock_request_t *r)
{
    char         want[128];
    const char  *sig, *comma;
    long long    ts;

    sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                      "Payments-Signature");
    if (sig == NULL || strncmp(sig, "t=", 2) != 0) {
        return 0;
    }

    ts = strtoll(sig + 2, NULL, 10);
    comma = strchr(sig, ',');

    if (comma == NULL || ts <= 0 || llabs((long long) time(NULL) - ts) > 300
        || mock_risk_sign(mock_conf.risk_secret, ts, NULL, r->body, r->len,
                          want, sizeof(want)) != 0
        || strlen(want) != strlen(sig))
    {
        return 0;
    }

    return CRYPTO_memcmp(want, sig, strlen(want)) == 0;
}


static void
mock_risk_count(const char *checkout_id, int after)
{
    char     key[300];
    json_t  *n;

    pthread_mutex_lock(&mock_risk_lock);

    if (mock_risk_asked == NULL) {
        mock_risk_asked = json_object();
    }

    if (mock_risk_asked != NULL) {
        n = json_object_get(mock_risk_asked, checkout_id);
        json_object_set_new(mock_risk_asked, checkout_id,
                            json_integer(n ? json_integer_value(n) + 1 : 1));

        /* and apart, the questions after the payment */
        snprintf(key, sizeof(key), "after_payment:%s", checkout_id);

        if (after) {
            n = json_object_get(mock_risk_asked, key);
            json_object_set_new(mock_risk_asked, key,
                                json_integer(n ? json_integer_value(n) + 1
                                               : 1));
        }
    }

    pthread_mutex_unlock(&mock_risk_lock);
}


/* body, signed with secret (NULL: unsigned) as the answer to the request
 * whose Idempotency-Key is key */
static enum MHD_Result
mock_risk_answer(struct MHD_Connection *c, const char *body,
    const char *secret, const char *key)
{
    char           sig[128];
    mock_header_t  h;

    if (secret == NULL) {
        return mock_send(c, MHD_HTTP_OK, "application/json", body,
                         strlen(body), NULL, 0);
    }

    if (mock_risk_sign(secret, (long long) time(NULL), key, body,
                       strlen(body), sig, sizeof(sig)) != 0)
    {
        return MHD_NO;
    }

    h.name = "Payments-Signature";
    h.value = sig;

    return mock_send(c, MHD_HTTP_OK, "application/json", body, strlen(body),
                     &h, 1);
}


static enum MHD_Result
mock_risk_control(struct MHD_Connection *c)
{
    char         key[300];
    json_t      *n;
    json_int_t   asked;
    const char  *id, *phase;

    id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                     "checkout_id");
    if (id == NULL) {
        return mock_send(c, MHD_HTTP_BAD_REQUEST, "text/plain",
                         "checkout_id is required\n", 24, NULL, 0);
    }

    phase = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "phase");
    snprintf(key, sizeof(key), "%s%s",
             phase && strcmp(phase, "after_payment") == 0
             ? "after_payment:" : "", id);

    pthread_mutex_lock(&mock_risk_lock);
    n = mock_risk_asked ? json_object_get(mock_risk_asked, key) : NULL;
    asked = n ? json_integer_value(n) : 0;
    pthread_mutex_unlock(&mock_risk_lock);

    return mock_send_json(c, MHD_HTTP_OK,
                          json_pack("{sI}", "requests", asked));
}


enum MHD_Result
mock_risk_route(struct MHD_Connection *c, mock_request_t *r,
    const char *url, const char *method)
{
    int           after;
    char          want[300];
    json_t       *req;
    json_int_t    amount;
    const char   *email, *id, *answer, *phase, *merchant, *key;
    static const char  allow[] = "{\"verdict\":\"allow\",\"score\":10}";

    if (strcmp(method, "GET") == 0 && strcmp(url, "/_control/asked") == 0) {
        return mock_risk_control(c);
    }

    if (strcmp(method, "POST") != 0 || strcmp(url, "/risk") != 0) {
        return mock_send(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n",
                         10, NULL, 0);
    }

    req = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES,
                     NULL);

    id = json_string_value(json_object_get(req, "checkout_id"));
    email = json_string_value(json_object_get(json_object_get(req, "buyer"),
                                              "email"));
    amount = json_integer_value(json_object_get(req, "amount_total"));
    phase = json_string_value(json_object_get(req, "phase"));
    merchant = json_string_value(json_object_get(req, "merchant_id"));
    after = phase != NULL && strcmp(phase, "after_payment") == 0;

    if (id != NULL) {
        mock_risk_count(id, after);
    }

    if (!mock_risk_verified(c, r) || id == NULL) {
        mock_log("risk: a request %s: 401",
                 id == NULL ? "without a checkout_id" : "not signed right");
        json_decref(req);
        return mock_send(c, MHD_HTTP_UNAUTHORIZED, "application/json",
                         "{\"error\":\"signature\"}", 21, NULL, 0);
    }

    if (mock_conf.risk_latency_ms > 0) {
        mock_sleep_ms(mock_conf.risk_latency_ms);
    }

    /* every request names itself (a signed answer is bound to it); after
     * the payment, by <merchant_id>:<checkout_id>:after_payment exactly */
    key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    snprintf(want, sizeof(want), "%s:%s:after_payment",
             merchant ? merchant : "", id);

    if (key == NULL || key[0] == '\0' || strchr(key, '.') != NULL
        || (after && strcmp(key, want) != 0))
    {
        mock_log("risk: checkout %s without its Idempotency-Key: 400", id);
        json_decref(req);
        return mock_send(c, MHD_HTTP_BAD_REQUEST, "application/json",
                         "{\"error\":\"idempotency_key\"}", 27, NULL, 0);
    }

    if (email == NULL) {
        email = "";
    }

    mock_log("risk: checkout %s, %s, knob %.17s", id,
             after ? "after the payment" : "before its psp",
             strncmp(email, "risk-", 5) == 0 ? email : "(none)");

#define mock_risk_knob(k)  (strncmp(email, "risk-" k, sizeof(k) + 4) == 0)

    if (mock_risk_knob("after-")) {
        /* the first check allows; after the payment, the knob says */
        if (!after) {
            answer = allow;

        } else if (mock_risk_knob("after-deny")) {
            answer = "{\"verdict\":\"deny\",\"reason\":"
                     "\"mock.after_denied\",\"score\":880}";

        } else if (mock_risk_knob("after-review")) {
            answer = "{\"verdict\":\"review\",\"reason\":"
                     "\"mock.after_review\"}";

        } else if (mock_risk_knob("after-500")) {
            json_decref(req);
            return mock_send(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "application/json", "{\"error\":\"mock\"}", 16,
                             NULL, 0);

        } else {
            answer = allow;
        }

    } else if (after && amount == 667) {
        answer = "{\"verdict\":\"deny\",\"reason\":\"mock.after_amount\","
                 "\"score\":700}";

    } else if (mock_risk_knob("deny")) {
        answer = "{\"verdict\":\"deny\",\"reason\":\"mock.denied\","
                 "\"score\":900}";

    } else if (mock_risk_knob("review")) {
        answer = "{\"verdict\":\"review\",\"reason\":\"mock.review\","
                 "\"score\":500}";

    } else if (mock_risk_knob("slow")) {
        mock_sleep_ms(3000);
        answer = allow;

    } else if (mock_risk_knob("hang")) {
        mock_sleep_ms(60000);
        answer = allow;

    } else if (mock_risk_knob("drop")) {
        json_decref(req);
        return MHD_NO;

    } else if (mock_risk_knob("500")) {
        json_decref(req);
        return mock_send(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                         "application/json", "{\"error\":\"mock\"}", 16,
                         NULL, 0);

    } else if (mock_risk_knob("malformed")) {
        answer = "{\"verdict\":\"maybe\",\"score\":\"high\"}";

    } else if (mock_risk_knob("badsig")) {
        json_decref(req);
        return mock_risk_answer(c, allow,
                                "not-the-provider-secret-0123456789abcdef",
                                key);

    } else if (mock_risk_knob("unsigned")) {
        json_decref(req);
        return mock_risk_answer(c, allow, NULL, key);

    } else if (mock_risk_knob("replay")) {
        /* an allow rightly signed, but for another request: the answer
         * to another checkout, played back */
        json_decref(req);
        return mock_risk_answer(c, allow, mock_conf.risk_answer_secret,
                                "m_other:co_other");

    } else if (amount == 666) {
        answer = "{\"verdict\":\"deny\",\"reason\":\"mock.amount\","
                 "\"score\":700}";

    } else if (amount >= 999999) {
        answer = "{\"verdict\":\"review\",\"reason\":\"mock.amount\"}";

    } else {
        answer = allow;
    }

#undef mock_risk_knob

    json_decref(req);

    return mock_risk_answer(c, answer, mock_conf.risk_answer_secret, key);
}


void
mock_risk_reset(void)
{
    pthread_mutex_lock(&mock_risk_lock);
    json_decref(mock_risk_asked);
    mock_risk_asked = NULL;
    pthread_mutex_unlock(&mock_risk_lock);
}
