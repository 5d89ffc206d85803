/*
 * libFuzzer: refunds and pay-outs (dialect.h) on outside bytes.
 *
 * Byte 0 picks the dialect from the table and the mode (bit 7): 0 is a
 * PSP's answer to an operation, byte 1 the HTTP status (from a table of
 * the interesting ones) and the rest the body, through op_answer and
 * pay_psp_parse_op_redact; 1 is the request builders, the rest split on
 * NUL bytes into nonce, payment_ref/destination, currency, reason and
 * source account, with the amount from byte 1.
 *
 * Promises checked: CREATED only for a 2xx and with a printable psp_ref;
 * AUTH exactly for 401/403; REFUSED only for 400/402/404/422; a reason is
 * printable ASCII and never holds our secret; a builder either refuses
 * with *req empty or gives a POST whose bytes are the same twice and whose
 * path is one of the dialect's.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <payments/dialect.h>


static const int  fo_statuses[] = {
    0, 200, 201, 202, 204, 299, 301, 400, 401, 402, 403, 404, 409, 422,
    429, 500, 502, 503, 504, 100, -1
};

static const char  fo_secret[] = "AQEyhmfxK4FuzzSecretKey0123";


static void
fo_printable(const char *s, size_t max, int allow_space)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= max || (unsigned char) s[i] > 0x7e
            || (unsigned char) s[i] < (allow_space ? 0x20 : 0x21))
        {
            __builtin_trap();
        }
    }
}


static void
fo_answer(const pay_dialect_t *d, const uint8_t *data, size_t size)
{
    int                   status;
    pay_psp_op_result_t   r, plain;

    status = fo_statuses[data[0] % (sizeof(fo_statuses)
                                    / sizeof(fo_statuses[0]))];

    pay_psp_parse_op_redact(d, status, (const char *) data + 1, size - 1,
                            fo_secret, sizeof(fo_secret) - 1, &r);

    switch (r.outcome) {

    case PAY_PSP_CREATED:
        if (status < 200 || status > 299 || r.psp_ref[0] == '\0') {
            __builtin_trap();
        }

        fo_printable(r.psp_ref, sizeof(r.psp_ref) - 1, 0);
        break;

    case PAY_PSP_REFUSED:
        if (status != 400 && status != 402 && status != 404
            && status != 422)
        {
            __builtin_trap();
        }
        /* fall through */

    case PAY_PSP_AUTH:
    case PAY_PSP_RETRY:
        if (r.psp_ref[0] != '\0') {
            __builtin_trap();
        }
        break;

    default:
        __builtin_trap();
    }

    if ((r.outcome == PAY_PSP_AUTH) != (status == 401 || status == 403)) {
        __builtin_trap();
    }

    fo_printable(r.reason, sizeof(r.reason) - 1, 1);

    if (memmem(r.reason, strlen(r.reason), fo_secret,
               sizeof(fo_secret) - 1) != NULL)
    {
        __builtin_trap();
    }

    /* the dialect's own entry point classifies the same way */
    d->op_answer(status, (const char *) data + 1, size - 1, &plain);

    if (plain.outcome != r.outcome || strcmp(plain.psp_ref, r.psp_ref) != 0) {
        __builtin_trap();
    }
}


/* The next NUL-terminated field of the input, or "" past its end. */
static const char *
fo_field(char **p, char *end)
{
    char  *s;

    if (*p >= end) {
        return "";
    }

    s = *p;
    *p += strlen(s) + 1;

    return s;
}


static void
fo_same(const pay_psp_request_t *a, const pay_psp_request_t *b)
{
    if (a->path == NULL || b->path == NULL || a->body == NULL
        || b->body == NULL || a->content_type == NULL
        || strcmp(a->path, b->path) != 0 || strcmp(a->body, b->body) != 0
        || a->body_len != strlen(a->body) || a->body_len != b->body_len)
    {
        __builtin_trap();
    }
}


static void
fo_empty(const pay_psp_request_t *req)
{
    if (req->path != NULL || req->body != NULL
        || req->content_type != NULL || req->body_len != 0)
    {
        __builtin_trap();
    }
}


static void
fo_build(const pay_dialect_t *d, const uint8_t *data, size_t size)
{
    char               *buf, *p, *end;
    int64_t             amount;
    pay_psp_refund_t    r;
    pay_psp_payout_t    o;
    pay_psp_request_t   a, b;

    amount = (int64_t) data[0] * 37 - 100;

    buf = malloc(size + 1);
    if (buf == NULL) {
        return;
    }

    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    p = buf;
    end = buf + size - 1;

    memset(&r, 0, sizeof(r));
    r.nonce = fo_field(&p, end);
    r.payment_ref = fo_field(&p, end);
    r.currency = fo_field(&p, end);
    r.reason = fo_field(&p, end);
    r.merchant_account = fo_field(&p, end);
    r.amount = amount;

    memset(&o, 0, sizeof(o));
    o.nonce = r.nonce;
    o.destination = r.payment_ref;
    o.currency = r.currency;
    o.source_account = r.reason[0] != '\0' ? r.reason : NULL;
    o.merchant_account = r.merchant_account;
    o.amount = amount;

    if (d->refund(&r, &a) == 0) {
        if (amount <= 0 || d->refund(&r, &b) != 0) {
            __builtin_trap();
        }

        fo_same(&a, &b);
        pay_psp_request_free(&a);
        pay_psp_request_free(&b);

    } else {
        fo_empty(&a);
    }

    if (d->payout(&o, &a) == 0) {
        if (amount <= 0 || d->payout(&o, &b) != 0) {
            __builtin_trap();
        }

        fo_same(&a, &b);
        pay_psp_request_free(&a);
        pay_psp_request_free(&b);

    } else {
        fo_empty(&a);
    }

    free(buf);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                ndialects;
    const pay_dialect_t  *d;

    if (size < 2) {
        return 0;
    }

    for (ndialects = 0; pay_dialects[ndialects] != NULL; ndialects++) {
        /* count */
    }

    d = pay_dialects[(data[0] & 0x7f) % ndialects];

    if (data[0] & 0x80) {
        fo_build(d, data + 1, size - 1);

    } else {
        fo_answer(d, data + 1, size - 1);
    }

    return 0;
}
