/*
 * Mock PSP: the hosted payment page a shopper's browser is sent to.
 * Plain HTML forms, no script: Pay and Decline post back here and answer
 * with a 303 to the session's success_url or cancel_url, as Stripe does.
 */

#include <stdlib.h>
#include <string.h>

#include <ctype.h>

#include "mock_psp.h"


#define MOCK_ID_TEMPLATE  "{CHECKOUT_SESSION_ID}"


static void mock_format_amount(FILE *f, json_int_t amount,
    const char *dialect, const char *currency);
static char *mock_success_location(const json_t *session);
static enum MHD_Result mock_page_state(struct MHD_Connection *c,
    mock_session_state_e state);
static enum MHD_Result mock_page(struct MHD_Connection *c, const char *id);
static enum MHD_Result mock_pay(struct MHD_Connection *c, const char *id);
static enum MHD_Result mock_decline(struct MHD_Connection *c,
    const char *id);


/* ISO 4217 minor units of a currency (either case). */
int
mock_currency_exponent(const char *currency)
{
    size_t  i;
    char    lc[4];

    for (i = 0; i < 3 && currency[i]; i++) {
        lc[i] = (char) tolower((unsigned char) currency[i]);
    }
    lc[i] = '\0';
    currency = lc;

    static const char  *zero[] = {
        "bif", "clp", "djf", "gnf", "isk", "jpy", "kmf", "krw", "pyg",
        "rwf", "ugx", "uyi", "vnd", "vuv", "xaf", "xof", "xpf"
    };
    static const char  *three[] = { "bhd", "iqd", "jod", "kwd", "lyd",
                                    "omr", "tnd" };

    for (i = 0; i < sizeof(zero) / sizeof(zero[0]); i++) {
        if (strcmp(currency, zero[i]) == 0) {
            return 0;
        }
    }

    for (i = 0; i < sizeof(three) / sizeof(three[0]); i++) {
        if (strcmp(currency, three[i]) == 0) {
            return 3;
        }
    }

    return 2;
}


/*
 * The minor units a dialect's PSP counts a currency in (either case), as
 * the gateway's include/payments/psp.h has them: Stripe 0 decimals for its
 * zero-decimal currencies (MGA among them, two in ISO), 3 for BHD JOD KWD
 * OMR TND, 2 for every other (ISK among them, none in ISO); Adyen ISO's
 * but CLP 2, CVE 0, IDR 0, ISK 2; generic ISO's.  What a session's
 * amount_total and an operation's amount_value hold.
 */
int
mock_psp_exponent(const char *dialect, const char *currency)
{
    size_t  i;
    char    lc[4];

    static const char  *stripe_zero[] = {
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg",
        "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"
    };
    static const char  *stripe_three[] = { "bhd", "jod", "kwd", "omr",
                                           "tnd" };
    static const struct { const char *cur; int e; }  adyen[] = {
        { "clp", 2 }, { "cve", 0 }, { "idr", 0 }, { "isk", 2 }
    };

    for (i = 0; i < 3 && currency[i]; i++) {
        lc[i] = (char) tolower((unsigned char) currency[i]);
    }
    lc[i] = '\0';

    if (dialect != NULL && strcmp(dialect, "stripe") == 0) {
        for (i = 0; i < sizeof(stripe_zero) / sizeof(stripe_zero[0]); i++) {
            if (strcmp(lc, stripe_zero[i]) == 0) {
                return 0;
            }
        }
        for (i = 0; i < sizeof(stripe_three) / sizeof(stripe_three[0]);
             i++)
        {
            if (strcmp(lc, stripe_three[i]) == 0) {
                return 3;
            }
        }
        return 2;
    }

    if (dialect != NULL && strcmp(dialect, "adyen") == 0) {
        for (i = 0; i < sizeof(adyen) / sizeof(adyen[0]); i++) {
            if (strcmp(lc, adyen[i].cur) == 0) {
                return adyen[i].e;
            }
        }
    }

    return mock_currency_exponent(lc);
}


/* amount in e decimals: 1050, 2 -> "10.50" */
static int
mock_format_exp(char *out, size_t size, json_int_t amount, int e)
{
    int         i, n;
    json_int_t  unit;

    for (unit = 1, i = 0; i < e; i++) {
        unit *= 10;
    }

    if (e == 0) {
        n = snprintf(out, size, "%lld", (long long) amount);
    } else {
        n = snprintf(out, size, "%lld.%0*lld", (long long) (amount / unit), e,
                     (long long) (amount % unit));
    }

    return (n > 0 && (size_t) n < size) ? 0 : -1;
}


/* amount in minor units as a decimal string in its currency's exponent */
int
mock_format_minor(char *out, size_t size, json_int_t amount,
    const char *currency)
{
    return mock_format_exp(out, size, amount,
                           mock_currency_exponent(currency));
}


/* amount in the dialect's PSP's minor units (mock_psp_exponent) as the
 * PSP writes it in its reports and pages: 50000 ISK at Stripe is
 * "500.00", 10 MGA "10" */
int
mock_format_psp(char *out, size_t size, json_int_t amount,
    const char *dialect, const char *currency)
{
    return mock_format_exp(out, size, amount,
                           mock_psp_exponent(dialect, currency));
}


static void
mock_format_amount(FILE *f, json_int_t amount, const char *dialect,
    const char *currency)
{
    int   i;
    char  num[32];

    if (mock_format_psp(num, sizeof(num), amount, dialect, currency) == 0) {
        fputs(num, f);
    }

    fputc(' ', f);

    for (i = 0; currency[i]; i++) {
        fputc(currency[i] >= 'a' && currency[i] <= 'z'
              ? currency[i] - 'a' + 'A' : currency[i], f);
    }
}


/* success_url with every {CHECKOUT_SESSION_ID} replaced, as Stripe does. */
static char *
mock_success_location(const json_t *session)
{
    FILE        *f;
    char        *out;
    size_t       len;
    const char  *url, *id, *p;

    url = json_string_value(json_object_get(session, "success_url"));
    id = json_string_value(json_object_get(session, "id"));

    out = NULL;
    f = open_memstream(&out, &len);
    if (f == NULL) {
        return NULL;
    }

    while ((p = strstr(url, MOCK_ID_TEMPLATE)) != NULL) {
        fwrite(url, 1, (size_t) (p - url), f);
        fputs(id, f);
        url = p + sizeof(MOCK_ID_TEMPLATE) - 1;
    }

    fputs(url, f);

    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }

    return out;
}


static enum MHD_Result
mock_page_state(struct MHD_Connection *c, mock_session_state_e state)
{
    if (state == MOCK_SESSION_EXPIRED) {
        return mock_send_html(c, MHD_HTTP_GONE, "Session expired",
                              "<p>This payment session has expired.</p>\n");
    }

    return mock_send_html(c, MHD_HTTP_NOT_FOUND, "Unknown session",
                          "<p>There is no such payment session.</p>\n");
}


static enum MHD_Result
mock_page(struct MHD_Connection *c, const char *id)
{
    FILE                  *f;
    char                  *html;
    const char            *d;
    size_t                 len;
    json_t                *s;
    enum MHD_Result        rc;
    mock_session_state_e   state;

    state = mock_session_get(id, &s);

    if (state != MOCK_SESSION_OPEN && state != MOCK_SESSION_COMPLETE) {
        json_decref(s);
        return mock_page_state(c, state);
    }

    if (s == NULL) {
        return MHD_NO;
    }

    html = NULL;
    f = open_memstream(&html, &len);
    if (f == NULL) {
        json_decref(s);
        return MHD_NO;
    }

    fputs("<p>Amount: <strong id=\"amount\">", f);
    /* a Stripe session has no "dialect" */
    d = json_string_value(json_object_get(s, "dialect"));
    mock_format_amount(f,
                       json_integer_value(json_object_get(s, "amount_total")),
                       d != NULL ? d : "stripe",
                       json_string_value(json_object_get(s, "currency")));
    fputs("</strong></p>\n<p>Session: <code id=\"session\">", f);
    mock_html_escape(f, id);
    fputs("</code></p>\n", f);

    if (state == MOCK_SESSION_COMPLETE) {
        fputs("<p id=\"status\">This session is already paid.</p>\n", f);

    } else {
        fputs("<form method=\"post\" action=\"/pay/", f);
        mock_html_escape(f, id);
        fputs("/pay\"><button type=\"submit\" id=\"pay\">Pay</button>"
              "</form>\n<form method=\"post\" action=\"/pay/", f);
        mock_html_escape(f, id);
        fputs("/decline\"><button type=\"submit\" id=\"decline\">Decline"
              "</button></form>\n", f);
    }

    json_decref(s);

    if (fclose(f) != 0) {
        free(html);
        return MHD_NO;
    }

    rc = mock_send_html(c, MHD_HTTP_OK, "Mock PSP checkout", html);
    free(html);

    return rc;
}


static enum MHD_Result
mock_pay(struct MHD_Connection *c, const char *id)
{
    char                  *location;
    json_t                *s;
    enum MHD_Result        rc;
    mock_session_state_e   state;

    /* paid just now, or paying again: that only redirects again */
    state = mock_event_pay(id, &s);

    if (state != MOCK_SESSION_OPEN && state != MOCK_SESSION_COMPLETE) {
        json_decref(s);
        return mock_page_state(c, state);
    }

    if (s == NULL) {
        return MHD_NO;
    }

    location = mock_success_location(s);
    json_decref(s);

    if (location == NULL) {
        return MHD_NO;
    }

    rc = mock_send_redirect(c, location);
    free(location);

    return rc;
}


/* The shopper gave up: the session expires at once (and says so). */
static enum MHD_Result
mock_decline(struct MHD_Connection *c, const char *id)
{
    json_t                *s;
    enum MHD_Result        rc;
    mock_session_state_e   state;

    state = mock_event_decline(id, &s);

    if (state == MOCK_SESSION_COMPLETE) {
        json_decref(s);
        return mock_send_html(c, MHD_HTTP_CONFLICT, "Already paid",
                              "<p>This session is already paid.</p>\n");
    }

    if (state != MOCK_SESSION_OPEN) {
        json_decref(s);
        return mock_page_state(c, state);
    }

    if (s == NULL) {
        return MHD_NO;
    }

    mock_log("session %s declined", id);

    rc = mock_send_redirect(c,
             json_string_value(json_object_get(s, "cancel_url")));
    json_decref(s);

    return rc;
}


/* path is what follows "/pay/": "{id}", "{id}/pay" or "{id}/decline". */
enum MHD_Result
mock_hosted(struct MHD_Connection *c, const char *method, const char *path)
{
    size_t       len;
    const char  *action;
    char         id[128];

    len = strcspn(path, "/");
    if (len == 0 || len >= sizeof(id)) {
        return mock_page_state(c, MOCK_SESSION_NOT_FOUND);
    }

    memcpy(id, path, len);
    id[len] = '\0';
    action = path + len;

    if (action[0] == '\0' && strcmp(method, "GET") == 0) {
        return mock_page(c, id);
    }

    if (strcmp(action, "/pay") == 0 && strcmp(method, "POST") == 0) {
        return mock_pay(c, id);
    }

    if (strcmp(action, "/decline") == 0 && strcmp(method, "POST") == 0) {
        return mock_decline(c, id);
    }

    return mock_page_state(c, MOCK_SESSION_NOT_FOUND);
}
