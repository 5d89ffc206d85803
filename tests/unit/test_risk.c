/*
 * Unit tests: the risk check (src/risk.c): the request built from a
 * checkout, its signature (doc/RISK.md's test vectors, computed with
 * `openssl dgst -sha256 -hmac`), the answer's verification and its strict
 * parser.
 */

#include <string.h>

#include <criterion/criterion.h>

#include <payments/risk.h>


#define REQ_SECRET  "risk_request_secret_0123456789abcdef"
#define ANS_SECRET  "risk_answer_secret_fedcba9876543210"

/* doc/RISK.md, "Test vectors" */
#define REQ_BODY                                                             \
    "{\"checkout_id\":\"co_1\",\"merchant_id\":\"m_1\",\"psp\":\"stripe\","  \
    "\"currency\":\"EUR\",\"amount_total\":1250,\"payment_orders\":"         \
    "[{\"payment_order_id\":\"po_1\",\"seller_account\":\"s_1\","            \
    "\"amount_minor\":1250}],\"buyer\":{\"email\":\"a@example.com\"},"     \
    "\"phase\":\"before_psp\"}"
#define REQ_SIG                                                              \
    "t=1767225600,v1="                                                       \
    "4a0d1033a1dab2e20f4a71061f180325da30009b812068521279e6b8a605e610"
/* the same checkout asked again once paid */
#define PAID_BODY                                                            \
    "{\"checkout_id\":\"co_1\",\"merchant_id\":\"m_1\",\"psp\":\"stripe\","  \
    "\"currency\":\"EUR\",\"amount_total\":1250,\"payment_orders\":"         \
    "[{\"payment_order_id\":\"po_1\",\"seller_account\":\"s_1\","            \
    "\"amount_minor\":1250}],\"buyer\":{\"email\":\"a@example.com\"},"     \
    "\"phase\":\"after_payment\",\"psp_payment_ref\":\"pi_1\"}"
#define PAID_SIG                                                             \
    "t=1767225600,v1="                                                       \
    "6b2a809698025d1494e063f23dfa388e86f9573cb5341d387d0d2e9e7ab28e1e"
/* the request's Idempotency-Key, which the answer's signature covers */
#define ANS_KEY  "m_1:co_1"
#define ANS_BODY                                                             \
    "{\"verdict\":\"deny\",\"reason\":\"aml.sanctions\",\"score\":930}"
#define ANS_SIG                                                              \
    "t=1767225601,v1="                                                       \
    "fc8b9cace43dbafb0a6968725c2f4422045d3d12399025f55cc6f6be2a869d29"


static const char  checkout[] =
    "{\"checkout_id\": \"co_1\","
    " \"buyer_info\": {\"email\": \"a@example.com\"},"
    " \"payment_orders\": [{\"payment_order_id\": \"po_1\","
    " \"seller_account\": \"s_1\", \"amount\": \"12.50\","
    " \"currency\": \"EUR\"}],"
    " \"success_url\": \"https://shop.example/thanks\","
    " \"cancel_url\": \"https://shop.example/cart\","
    " \"psp\": \"stripe\"}";


/* an answer to the request whose Idempotency-Key is ANS_KEY */
static int
verify(const char *secret, const char *sig, const char *body, int64_t now)
{
    return pay_risk_verify((const unsigned char *) secret, strlen(secret),
                           sig, strlen(sig), ANS_KEY, body, strlen(body), now,
                           300);
}


static int
parse(const char *body, pay_risk_answer_t *a)
{
    return pay_risk_answer_parse(body, strlen(body), a);
}


Test(risk, request_is_the_documented_json_without_urls_or_card_data)
{
    char            *req;
    pay_verdict_t    v;
    pay_checkout_t   co;

    cr_assert_eq(pay_checkout_parse(checkout, strlen(checkout), &co, &v), 0);

    req = pay_risk_request(&co, "m_1");
    cr_assert_not_null(req);
    cr_assert_str_eq(req, REQ_BODY);

    /* the return URLs are the shop's business, not the provider's */
    cr_assert_null(strstr(req, "shop.example"));

    free(req);
    pay_checkout_free(&co);
}


Test(risk, request_without_buyer_fields_has_an_empty_buyer)
{
    char            *req;
    const char      *body;
    pay_verdict_t    v;
    pay_checkout_t   co;

    body = "{\"checkout_id\": \"co_2\", \"payment_orders\": ["
           "{\"payment_order_id\": \"po_1\", \"seller_account\": \"s\","
           " \"amount\": \"100\", \"currency\": \"JPY\"}],"
           " \"success_url\": \"https://shop.example/a\","
           " \"cancel_url\": \"https://shop.example/b\", \"psp\": \"x\"}";

    cr_assert_eq(pay_checkout_parse(body, strlen(body), &co, &v), 0);

    req = pay_risk_request(&co, "m_2");
    cr_assert_not_null(req);
    cr_assert_not_null(strstr(req, "\"amount_total\":100,"));
    cr_assert_not_null(strstr(req, "\"buyer\":{}"));

    free(req);
    pay_checkout_free(&co);
}


Test(risk, request_after_payment_is_the_first_one_with_its_phase)
{
    char             *req, sig[PAY_RISK_SIG_MAX];
    pay_risk_paid_t   p;

    memset(&p, 0, sizeof(pay_risk_paid_t));
    p.merchant_id = "m_1";
    p.checkout_id = "co_1";
    p.psp = "stripe";
    p.currency = "EUR";
    p.total = 1250;
    /* as the database gives it: jsonb orders its members its own way */
    p.orders = "[{\"amount_minor\": 1250, \"seller_account\": \"s_1\", "
               "\"payment_order_id\": \"po_1\"}]";
    p.buyer_email = "a@example.com";
    p.psp_payment_ref = "pi_1";

    req = pay_risk_request_paid(&p);
    cr_assert_not_null(req);
    cr_assert_str_eq(req, PAID_BODY);

    cr_assert_eq(pay_risk_sign((const unsigned char *) REQ_SECRET,
                               strlen(REQ_SECRET), 1767225600, NULL, req,
                               strlen(req), sig, sizeof(sig)), 0);
    cr_assert_str_eq(sig, PAID_SIG);
    free(req);

    /* no reference yet, no e-mail kept */
    p.psp_payment_ref = NULL;
    p.buyer_email = NULL;
    req = pay_risk_request_paid(&p);
    cr_assert_not_null(req);
    cr_assert_not_null(strstr(req, "\"buyer\":{},\"phase\":"
                                   "\"after_payment\"}"));
    free(req);
}


Test(risk, request_after_payment_refuses_orders_that_do_not_add_up)
{
    pay_risk_paid_t  p;

    memset(&p, 0, sizeof(pay_risk_paid_t));
    p.merchant_id = "m_1";
    p.checkout_id = "co_1";
    p.psp = "stripe";
    p.currency = "EUR";
    p.total = 1250;

    p.orders = "[{\"payment_order_id\":\"po_1\",\"seller_account\":\"s\","
               "\"amount_minor\":1000}]";
    cr_expect_null(pay_risk_request_paid(&p));

    p.orders = "[]";
    cr_expect_null(pay_risk_request_paid(&p));

    p.orders = "[{\"payment_order_id\":\"po_1\",\"seller_account\":\"s\","
               "\"amount_minor\":1250,\"card\":\"4242\"}]";
    cr_expect_null(pay_risk_request_paid(&p));

    p.orders = "{\"payment_order_id\":\"po_1\"}";
    cr_expect_null(pay_risk_request_paid(&p));

    p.orders = NULL;
    cr_expect_null(pay_risk_request_paid(&p));
}


Test(risk, signature_matches_the_documented_vectors)
{
    char  sig[PAY_RISK_SIG_MAX];

    cr_assert_eq(pay_risk_sign((const unsigned char *) REQ_SECRET,
                               strlen(REQ_SECRET), 1767225600, NULL,
                               REQ_BODY, strlen(REQ_BODY), sig, sizeof(sig)),
                 0);
    cr_assert_str_eq(sig, REQ_SIG);

    cr_assert_eq(pay_risk_sign((const unsigned char *) ANS_SECRET,
                               strlen(ANS_SECRET), 1767225601, ANS_KEY,
                               ANS_BODY, strlen(ANS_BODY), sig, sizeof(sig)),
                 0);
    cr_assert_str_eq(sig, ANS_SIG);
}


Test(risk, verify_accepts_the_vector_and_refuses_every_change)
{
    char  sig[sizeof(ANS_SIG)];

    cr_assert_eq(verify(ANS_SECRET, ANS_SIG, ANS_BODY, 1767225601), 0);
    cr_assert_eq(verify(ANS_SECRET, ANS_SIG, ANS_BODY, 1767225601 + 300), 0);

    /* another secret, another body, a stale or future timestamp */
    cr_assert_eq(verify(REQ_SECRET, ANS_SIG, ANS_BODY, 1767225601), -1);
    cr_assert_eq(verify(ANS_SECRET, ANS_SIG,
                        "{\"verdict\":\"allow\"}", 1767225601), -1);
    cr_assert_eq(verify(ANS_SECRET, ANS_SIG, ANS_BODY, 1767225601 + 301), -1);
    cr_assert_eq(verify(ANS_SECRET, ANS_SIG, ANS_BODY, 1767225601 - 301), -1);

    /* one digit of the MAC, the timestamp, the form */
    memcpy(sig, ANS_SIG, sizeof(sig));
    sig[sizeof(sig) - 2] = sig[sizeof(sig) - 2] == '1' ? '2' : '1';
    cr_assert_eq(verify(ANS_SECRET, sig, ANS_BODY, 1767225601), -1);

    cr_assert_eq(verify(ANS_SECRET, "t=1767225602,v1=fc8b9cace43dbafb0a6968"
                        "725c2f4422045d3d12399025f55cc6f6be2a869d29",
                        ANS_BODY, 1767225601), -1);
    cr_assert_eq(verify(ANS_SECRET, "t=1767225601,v1=FC8B9CACE43DBAFB0A6968"
                        "725C2F4422045D3D12399025F55CC6F6BE2A869D29",
                        ANS_BODY, 1767225601), -1);
    cr_assert_eq(verify(ANS_SECRET, "t=01767225601,v1=fc8b9cace43dbafb0a696"
                        "8725c2f4422045d3d12399025f55cc6f6be2a869d29",
                        ANS_BODY, 1767225601), -1);
    cr_assert_eq(verify(ANS_SECRET, ANS_SIG ",v1=00", ANS_BODY, 1767225601),
                 -1);
    cr_assert_eq(verify(ANS_SECRET, "", ANS_BODY, 1767225601), -1);
    cr_assert_eq(pay_risk_verify((const unsigned char *) ANS_SECRET,
                                 strlen(ANS_SECRET), NULL, 0, ANS_KEY,
                                 ANS_BODY, strlen(ANS_BODY), 1767225601, 300),
                 -1);
}


/* An answer is bound to its request's Idempotency-Key: a signed allow
 * played back for another checkout, or for the same checkout's other
 * question, does not verify. */
Test(risk, answer_bound_to_its_requests_idempotency_key)
{
    static const char *const  others[] = {
        "m_1:co_2", "m_2:co_1", "m_1:co_1:after_payment", "m_1:co_1x", ""
    };
    size_t                    i;

    cr_assert_eq(pay_risk_verify((const unsigned char *) ANS_SECRET,
                                 strlen(ANS_SECRET), ANS_SIG,
                                 strlen(ANS_SIG), ANS_KEY, ANS_BODY,
                                 strlen(ANS_BODY), 1767225601, 300), 0);

    for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        cr_expect_eq(pay_risk_verify((const unsigned char *) ANS_SECRET,
                                     strlen(ANS_SECRET), ANS_SIG,
                                     strlen(ANS_SIG), others[i], ANS_BODY,
                                     strlen(ANS_BODY), 1767225601, 300), -1,
                     "the answer to %s verified for \"%s\"", ANS_KEY,
                     others[i]);
    }

    /* an answer always names its request: no key, no answer */
    cr_expect_eq(pay_risk_verify((const unsigned char *) ANS_SECRET,
                                 strlen(ANS_SECRET), ANS_SIG,
                                 strlen(ANS_SIG), NULL, ANS_BODY,
                                 strlen(ANS_BODY), 1767225601, 300), -1);
}


Test(risk, answer_parses_the_three_verdicts)
{
    pay_risk_answer_t  a;

    cr_assert_eq(parse(ANS_BODY, &a), 0);
    cr_assert_eq(a.verdict, PAY_RISK_DENY);
    cr_assert_str_eq(a.reason, "aml.sanctions");
    cr_assert_eq(a.score, 930);

    cr_assert_eq(parse("{\"verdict\":\"allow\"}", &a), 0);
    cr_assert_eq(a.verdict, PAY_RISK_ALLOW);
    cr_assert_str_eq(a.reason, "");
    cr_assert_eq(a.score, -1);

    cr_assert_eq(parse(" {\"score\":0,\"verdict\":\"review\"} ", &a), 0);
    cr_assert_eq(a.verdict, PAY_RISK_REVIEW);
    cr_assert_eq(a.score, 0);

    cr_assert_str_eq(pay_risk_verdict_name(PAY_RISK_ALLOW), "allow");
    cr_assert_str_eq(pay_risk_verdict_name(PAY_RISK_DENY), "deny");
    cr_assert_str_eq(pay_risk_verdict_name(PAY_RISK_REVIEW), "review");
}


Test(risk, answer_refuses_anything_malformed)
{
    size_t              i;
    pay_risk_answer_t   a;
    static const char  *bad[] = {
        "",
        "null",
        "[]",
        "\"allow\"",
        "{}",
        "{\"verdict\":\"ALLOW\"}",
        "{\"verdict\":\"allowed\"}",
        "{\"verdict\":\"allo\"}",
        "{\"verdict\":true}",
        "{\"verdict\":\"allow\",\"verdict\":\"deny\"}",
        "{\"verdict\":\"deny\",\"reason\":\"\"}",
        "{\"verdict\":\"deny\",\"reason\":\"Has Spaces\"}",
        "{\"verdict\":\"deny\",\"reason\":\"a@b.c\"}",
        "{\"verdict\":\"deny\",\"reason\":7}",
        "{\"verdict\":\"deny\",\"reason\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        "{\"verdict\":\"allow\",\"score\":-1}",
        "{\"verdict\":\"allow\",\"score\":1001}",
        "{\"verdict\":\"allow\",\"score\":1.5}",
        "{\"verdict\":\"allow\",\"score\":\"5\"}",
        "{\"verdict\":\"allow\",\"extra\":1}",
        "{\"verdict\":\"allow\"} x",
        "{\"verdict\":\"allow\"",
        "{\"verdict\":\"al\\u0000low\"}",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(parse(bad[i], &a), -1, "accepted: %s", bad[i]);
    }

    cr_assert_eq(pay_risk_answer_parse(NULL, 0, &a), -1);
}
