/*
 * The mock's risk provider (risk.c) against doc/RISK.md: a signed request
 * is answered a signed verdict by the buyer's e-mail, an unsigned or
 * forged one 401, and the control count says what was asked.  Signatures
 * are made and checked here with OpenSSL alone.
 */

#include "mock_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>


#define RISK_SECRET   "risk_request_secret_0123456789abcdef"
#define RISK_ANSWER   "risk_answer_secret_fedcba9876543210"


static char         risk_url[128];
static const char  *risk_key;       /* Idempotency-Key to send, or NULL */


/* a free loopback port, for --risk-port (the mock prints its URL on a
 * later stdout line, which mock_start_with does not read) */
static unsigned
free_port(void)
{
    int                 fd;
    socklen_t           len;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    len = sizeof(sin);
    cr_assert_eq(getsockname(fd, (struct sockaddr *) &sin, &len), 0);
    close(fd);

    return ntohs(sin.sin_port);
}


static void
risk_start(void)
{
    char         port[16];
    const char  *extra[] = { "--risk-port", port, "--risk-secret",
                             RISK_SECRET, "--risk-answer-secret",
                             RISK_ANSWER, NULL };
    unsigned     p;

    p = free_port();
    snprintf(port, sizeof(port), "%u", p);
    snprintf(risk_url, sizeof(risk_url), "http://127.0.0.1:%u", p);
    mock_start_with(extra);
}


/* "t=<ts>,v1=<hex>" as doc/RISK.md says: over "<ts>." body for a
 * request, "<ts>." key "." body for the answer to the request key */
static char *
sign_for(const char *secret, long ts, const char *key, const char *body)
{
    char           *msg, *out;
    unsigned int    len, i;
    unsigned char   mac[EVP_MAX_MD_SIZE];

    if (key != NULL) {
        cr_assert_gt(asprintf(&msg, "%ld.%s.%s", ts, key, body), 0);
    } else {
        cr_assert_gt(asprintf(&msg, "%ld.%s", ts, body), 0);
    }
    cr_assert_not_null(HMAC(EVP_sha256(), secret, (int) strlen(secret),
                            (unsigned char *) msg, strlen(msg), mac, &len));
    free(msg);

    out = malloc(16 + 24 + 64 + 1);
    cr_assert_not_null(out);
    i = (unsigned) sprintf(out, "t=%ld,v1=", ts);
    for (unsigned k = 0; k < len; k++) {
        i += (unsigned) sprintf(out + i, "%02x", mac[k]);
    }

    return out;
}


static char *
sign(const char *secret, long ts, const char *body)
{
    return sign_for(secret, ts, NULL, body);
}


static size_t
risk_header(char *buf, size_t size, size_t n, void *data)
{
    char  *sig = data;

    if (size * n > 20 && strncasecmp(buf, "Payments-Signature: ", 20) == 0) {
        snprintf(sig, 128, "%.*s", (int) strcspn(buf + 20, "\r\n"), buf + 20);
    }

    return size * n;
}


static size_t
risk_body(char *buf, size_t size, size_t n, void *data)
{
    char   **body = data;
    size_t   old;

    old = *body ? strlen(*body) : 0;
    *body = realloc(*body, old + size * n + 1);
    memcpy(*body + old, buf, size * n);
    (*body)[old + size * n] = '\0';

    return size * n;
}


/* POST /risk; header NULL: unsigned.  Returns the status; *answer and
 * sig (128 bytes) get the body and its Payments-Signature. */
static long
risk_post(const char *body, const char *header, char **answer, char *sig)
{
    long                status;
    CURL               *h;
    char               *line, url[160];
    struct curl_slist  *hdrs;

    h = curl_easy_init();
    hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (header) {
        cr_assert_gt(asprintf(&line, "Payments-Signature: %s", header), 0);
        hdrs = curl_slist_append(hdrs, line);
        free(line);
    }

    if (risk_key) {
        cr_assert_gt(asprintf(&line, "Idempotency-Key: %s", risk_key), 0);
        hdrs = curl_slist_append(hdrs, line);
        free(line);
    }

    *answer = NULL;
    sig[0] = '\0';

    snprintf(url, sizeof(url), "%s/risk", risk_url);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, risk_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, sig);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, risk_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);

    cr_assert_eq(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);

    return status;
}


static long
risk_asked_in(const char *checkout_id, const char *phase)
{
    long    n;
    CURL   *h;
    char   *body, url[256];
    json_t *j;

    h = curl_easy_init();
    body = NULL;
    snprintf(url, sizeof(url), "%s/_control/asked?checkout_id=%s%s%s",
             risk_url, checkout_id, phase ? "&phase=" : "",
             phase ? phase : "");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, risk_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    cr_assert_eq(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);

    j = json_loads(body, 0, NULL);
    cr_assert_not_null(j, "%s", body);
    n = (long) json_integer_value(json_object_get(j, "requests"));
    json_decref(j);
    free(body);

    return n;
}


static long
risk_asked(const char *checkout_id)
{
    return risk_asked_in(checkout_id, NULL);
}


static const char *
request_for(const char *checkout_id, const char *email)
{
    static char  buf[512];

    snprintf(buf, sizeof(buf), "{\"checkout_id\":\"%s\",\"merchant_id\":"
             "\"m_1\",\"psp\":\"stripe\",\"currency\":\"EUR\","
             "\"amount_total\":1250,\"payment_orders\":[],"
             "\"buyer\":{\"email\":\"%s\"}}", checkout_id, email);

    return buf;
}


static void
risk_test_answers(void)
{
    long         now;
    char        *answer, sig[128], *want;
    const char  *body;

    now = (long) time(NULL);

    /* without an Idempotency-Key: 400 */
    risk_key = NULL;
    body = request_for("co_k", "ann@example.com");
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 400);

    /* signed: a signed allow, bound to the request's key */
    risk_key = "m_1:co_a";
    body = request_for("co_a", "ann@example.com");
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 200);
    cr_assert_str_eq(answer, "{\"verdict\":\"allow\",\"score\":10}");
    cr_assert_neq(sig[0], '\0', "the answer is not signed");
    want = sign_for(RISK_ANSWER, atol(sig + 2), risk_key, answer);
    cr_assert_str_eq(sig, want);
    cr_assert_str_neq(sig, sign_for(RISK_ANSWER, atol(sig + 2), "m_1:co_b",
                                    answer));

    /* the knobs */
    body = request_for("co_d", "risk-deny@example.com");
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 200);
    cr_assert_not_null(strstr(answer, "\"deny\""), "%s", answer);

    body = request_for("co_u", "risk-unsigned@example.com");
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 200);
    cr_assert_eq(sig[0], '\0', "signed: %s", sig);

    body = request_for("co_f", "risk-badsig@example.com");
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 200);
    cr_assert_str_neq(sig, sign_for(RISK_ANSWER, atol(sig + 2), risk_key,
                                    answer));

    /* an allow signed for another request */
    body = request_for("co_r", "risk-replay@example.com");
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 200);
    cr_assert_str_neq(sig, sign_for(RISK_ANSWER, atol(sig + 2), risk_key,
                                    answer));
    cr_assert_str_eq(sig, sign_for(RISK_ANSWER, atol(sig + 2),
                                   "m_other:co_other", answer));

    body = request_for("co_5", "risk-500@example.com");
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 500);

    /* unsigned, forged, stale: 401, but counted */
    body = request_for("co_x", "ann@example.com");
    cr_assert_eq(risk_post(body, NULL, &answer, sig), 401);
    cr_assert_eq(risk_post(body, sign("another-secret", now, body), &answer,
                           sig), 401);
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now - 3600, body),
                           &answer, sig), 401);

    cr_assert_eq(risk_asked("co_x"), 3);
    cr_assert_eq(risk_asked("co_a"), 1);
    cr_assert_eq(risk_asked("co_none"), 0);
    risk_key = NULL;
}


/* the same request after the payment, as the gateway's sweeper asks it */
static const char *
request_after(const char *checkout_id, const char *email, long amount)
{
    static char  buf[512];

    snprintf(buf, sizeof(buf), "{\"checkout_id\":\"%s\",\"merchant_id\":"
             "\"m_1\",\"psp\":\"stripe\",\"currency\":\"EUR\","
             "\"amount_total\":%ld,\"payment_orders\":[],"
             "\"buyer\":{\"email\":\"%s\"},\"phase\":\"after_payment\","
             "\"psp_payment_ref\":\"pi_1\"}", checkout_id, amount, email);

    return buf;
}


Test(mock_psp, the_risk_provider_answers_after_the_payment_by_its_knobs,
     .init = risk_start, .fini = mock_kill, .timeout = 60)
{
    long         now;
    char        *answer, sig[128];
    const char  *body;

    now = (long) time(NULL);

    /* before the PSP the after- knobs allow */
    risk_key = "m_1:co_ad";
    body = request_for("co_ad", "risk-after-deny@example.com");
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 200);
    cr_assert_str_eq(answer, "{\"verdict\":\"allow\",\"score\":10}");

    /* after the payment: without its Idempotency-Key, a 400 */
    risk_key = NULL;
    body = request_after("co_ad", "risk-after-deny@example.com", 1250);
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 400);
    risk_key = "m_1:co_ad";
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 400);

    risk_key = "m_1:co_ad:after_payment";
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 200);
    cr_assert_str_eq(answer, "{\"verdict\":\"deny\",\"reason\":"
                             "\"mock.after_denied\",\"score\":880}");
    cr_assert_str_eq(sig, sign_for(RISK_ANSWER, atol(sig + 2), risk_key,
                                   answer));

    risk_key = "m_1:co_ar:after_payment";
    body = request_after("co_ar", "risk-after-review@example.com", 1250);
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 200);
    cr_assert_not_null(strstr(answer, "\"review\""), "%s", answer);

    risk_key = "m_1:co_a5:after_payment";
    body = request_after("co_a5", "risk-after-500@example.com", 1250);
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 500);

    risk_key = "m_1:co_am:after_payment";
    body = request_after("co_am", "ann@example.com", 667);
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 200);
    cr_assert_not_null(strstr(answer, "mock.after_amount"), "%s", answer);

    risk_key = "m_1:co_aa:after_payment";
    body = request_after("co_aa", "ann@example.com", 1250);
    cr_assert_eq(risk_post(body, sign(RISK_SECRET, now, body), &answer, sig),
                 200);
    cr_assert_str_eq(answer, "{\"verdict\":\"allow\",\"score\":10}");
    risk_key = NULL;

    /* counted in all, and apart after the payment */
    cr_assert_eq(risk_asked("co_ad"), 4);
    cr_assert_eq(risk_asked_in("co_ad", "after_payment"), 3);
    cr_assert_eq(risk_asked_in("co_aa", "after_payment"), 1);
    cr_assert_eq(risk_asked_in("co_none", "after_payment"), 0);

    mock_stop();
}


Test(mock_psp, the_risk_provider_verifies_and_signs, .init = risk_start,
     .fini = mock_kill, .timeout = 60)
{
    risk_test_answers();
    mock_stop();
}
