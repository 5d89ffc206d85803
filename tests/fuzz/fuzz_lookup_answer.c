/*
 * libFuzzer: every dialect's session look-up (dialect.h) on outside
 * bytes: the PSP's answer to session_lookup_answer, and a token and an
 * Adyen sessionResult to session_lookup.  The first byte picks the
 * dialect from the table (a new dialect is fuzzed without a new harness)
 * and, in its bits 0x40 and 0x80, a setup's look-up and one asked for
 * the stored method (in->setup, in->method: the method's token and its
 * display fields read from the answer),
 * the second the HTTP status, the third the length of a token taken from
 * the input (0: "tok_1", which the seeds' answers name), the fourth the
 * length of the sessionResult.  The same answer goes to the dialect's
 * look-up of an off-session charge's payment (payment_lookup_answer,
 * where it has one), by the token and, as when the charge's answer was
 * lost, by the nonce alone (no token: Stripe's search, the generic
 * ?reference=).  What it checks besides memory: a decision is one the
 * glue can apply (its id names the token -- by the nonce, the payment id
 * it found --, strings end, the kind is terminal), and the path never
 * carries a byte that could leave its segment or query value.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <payments/dialect.h>


static const int  fl_statuses[] = {
    200, 201, 204, 299, 0, 301, 400, 401, 403, 404, 409, 410, 422, 429,
    500, 502, 503, -1
};


static void
fl_check_path(const pay_psp_request_t *req)
{
    size_t          i;
    unsigned char   c;
    int             query;

    if (req->path == NULL || req->body != NULL || req->content_type != NULL
        || req->path[0] != '/')
    {
        abort();
    }

    query = 0;

    for (i = 0; req->path[i] != '\0'; i++) {
        c = (unsigned char) req->path[i];

        if (c == '?') {
            if (query) {
                abort();
            }
            query = 1;
            continue;
        }

        /* escaped bytes, the dialect's own "/" and "=" before the query
         * value; never a raw blank, control, "#", "&" or non-ASCII */
        if (c <= 0x20 || c >= 0x7f || c == '#' || c == '&'
            || (query && c == '/'))
        {
            abort();
        }
    }
}


static void
fl_check_event(const pay_event_t *ev, const char *token)
{
    size_t  n;

    if (memchr(ev->event_id, '\0', sizeof(ev->event_id)) == NULL
        || memchr(ev->type, '\0', sizeof(ev->type)) == NULL
        || memchr(ev->token, '\0', sizeof(ev->token)) == NULL
        || memchr(ev->reference, '\0', sizeof(ev->reference)) == NULL
        || memchr(ev->currency, '\0', sizeof(ev->currency)) == NULL)
    {
        abort();
    }

    n = strlen(token);

    /* decided: paid, failed, or a manual capture's hold (the generic
     * "authorized"), which names its amount as a success must */
    if ((ev->kind != PAY_EVT_SUCCEEDED && ev->kind != PAY_EVT_FAILED
         && ev->kind != PAY_EVT_AUTHORIZED)
        || (ev->kind == PAY_EVT_AUTHORIZED
            && (ev->amount < 0 || strlen(ev->currency) != 3))
        || strncmp(ev->event_id, "lookup:", 7) != 0
        || strncmp(ev->event_id + 7, token, n) != 0
        || ev->event_id[7 + n] != ':'
        || strcmp(ev->event_id + 8 + n, ev->type) != 0
        || strcmp(ev->token, token) != 0
        || ev->amount < PAY_EVT_AMOUNT_INEXACT)
    {
        abort();
    }

    /* a stored method: its token and display terminated, visible ASCII,
     * the display only beside a token */
    if (memchr(ev->method, '\0', sizeof(ev->method)) == NULL
        || memchr(ev->psp_customer, '\0', sizeof(ev->psp_customer)) == NULL
        || memchr(ev->brand, '\0', sizeof(ev->brand)) == NULL
        || memchr(ev->last4, '\0', sizeof(ev->last4)) == NULL
        || (ev->last4[0] != '\0' && strlen(ev->last4) != 4)
        || ev->exp_month < 0 || ev->exp_month > 12
        || (ev->method[0] == '\0'
            && (ev->brand[0] != '\0' || ev->last4[0] != '\0'
                || ev->exp_month != 0 || ev->exp_year != 0)))
    {
        abort();
    }

    for (n = 0; ev->method[n] != '\0'; n++) {
        if ((unsigned char) ev->method[n] < 0x21
            || (unsigned char) ev->method[n] > 0x7e)
        {
            abort();
        }
    }
}


static void
fl_check_outcome(pay_lookup_outcome_e out, const pay_event_t *ev,
    const char *token)
{
    switch (out) {
    case PAY_LOOKUP_DECIDED:
        fl_check_event(ev, token);
        break;
    case PAY_LOOKUP_OPEN:
    case PAY_LOOKUP_PENDING:
        if (ev->kind != PAY_EVT_PENDING || ev->event_id[0] != '\0') {
            abort();
        }
        break;
    case PAY_LOOKUP_UNKNOWN:
    case PAY_LOOKUP_AUTH:
        if (ev->kind != 0 || ev->event_id[0] != '\0') {
            abort();
        }
        break;
    default:
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    status, i;
    size_t                 ndialects, tlen, rlen, blen;
    char                  *token, *result, *body;
    pay_event_t            ev;
    pay_psp_request_t      req;
    pay_psp_lookup_t       in;
    pay_lookup_outcome_e   out;
    const pay_dialect_t   *d;

    if (size < 4) {
        return 0;
    }

    for (ndialects = 0; pay_dialects[ndialects] != NULL; ndialects++) {
        /* count */
    }

    memset(&in, 0, sizeof(in));
    d = pay_dialects[(data[0] & 0x3f) % ndialects];
    in.setup = (data[0] & 0x40) != 0;
    in.method = (data[0] & 0x80) != 0;
    status = fl_statuses[data[1] % (sizeof(fl_statuses)
                                    / sizeof(fl_statuses[0]))];
    in.merchant_account = "TestMerchant";
    in.nonce = "m1:co_1";

    tlen = data[2];
    rlen = data[3];
    data += 4;
    size -= 4;

    tlen = tlen > size ? size : tlen;
    rlen = rlen > size - tlen ? size - tlen : rlen;

    token = malloc(tlen + 1);
    result = malloc(rlen + 1);
    blen = size - tlen - rlen;
    /* exactly the answer's bytes: no NUL after them */
    body = malloc(blen > 0 ? blen : 1);

    if (token == NULL || result == NULL || body == NULL) {
        goto done;
    }

    memcpy(token, data, tlen);
    token[tlen] = '\0';
    memcpy(result, data + tlen, rlen);
    result[rlen] = '\0';
    memcpy(body, data + tlen + rlen, blen);

    in.token = tlen > 0 ? token : "tok_1";
    in.session_result = rlen > 0 ? result : NULL;

    if (d->session_lookup(&in, &req) == 0) {
        fl_check_path(&req);
        pay_psp_request_free(&req);

    } else if (req.path != NULL || req.body != NULL) {
        abort();
    }

    out = d->session_lookup_answer(&in, status, blen > 0 ? body : NULL,
                                   blen, 1700000000, &ev);
    fl_check_outcome(out, &ev, in.token);

    if (d->payment_lookup == NULL) {
        goto done;
    }

    in.setup = 0;
    in.method = 0;
    in.session_result = NULL;

    for (i = 0; i < 2; i++) {
        /* by its payment id, then by the nonce alone */
        in.token = i == 0 ? (tlen > 0 ? token : "tok_1") : "";

        if (d->payment_lookup(&in, &req) == 0) {
            fl_check_path(&req);
            pay_psp_request_free(&req);

        } else if (req.path != NULL || req.body != NULL) {
            abort();
        }

        out = d->payment_lookup_answer(&in, status, blen > 0 ? body : NULL,
                                       blen, 1700000000, &ev);

        /* by the nonce, the event names the payment found: an id of at
         * least one byte, and never the nonce itself */
        if (in.token[0] == '\0' && out == PAY_LOOKUP_DECIDED
            && (ev.token[0] == '\0' || strcmp(ev.token, in.nonce) == 0))
        {
            abort();
        }

        fl_check_outcome(out, &ev, in.token[0] != '\0' ? in.token : ev.token);
    }

done:

    free(token);
    free(result);
    free(body);

    return 0;
}
