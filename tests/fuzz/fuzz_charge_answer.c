/*
 * libFuzzer: every dialect's off-session charge answer (dialect.h
 * charge_answer, through pay_psp_parse_charge_redact) on outside bytes.
 * Byte 0 picks the dialect from the table (a new dialect is fuzzed
 * without a new harness), byte 1 the HTTP status from a table of the
 * interesting ones, the rest is the body.
 *
 * Promises checked: ACCEPTED only for a 2xx and with a printable psp_ref
 * (its webhook is found by it); AUTH exactly for 401/403; DECLINED and
 * AUTH_REQUIRED only for a 2xx or 400/402/404/422, DECLINED always with a
 * decline_code of [a-z0-9_]; the reason is printable ASCII and never holds
 * our secret; strings end within their fields.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <payments/dialect.h>


static const int  fc_statuses[] = {
    0, 200, 201, 202, 204, 299, 301, 400, 401, 402, 403, 404, 409, 422,
    429, 500, 502, 503, 504, 100, -1
};

static const char  fc_secret[] = "sk_test_FuzzSecretKey0123456";


static void
fc_printable(const char *s, size_t max, int allow_space)
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


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                       status, ok4xx, ok2xx;
    size_t                    i, ndialects;
    const pay_dialect_t      *d;
    pay_psp_charge_result_t   r;

    if (size < 2) {
        return 0;
    }

    for (ndialects = 0; pay_dialects[ndialects] != NULL; ndialects++) {
        /* count */
    }

    d = pay_dialects[data[0] % ndialects];
    status = fc_statuses[data[1] % (sizeof(fc_statuses)
                                    / sizeof(fc_statuses[0]))];

    pay_psp_parse_charge_redact(d, status, (const char *) data + 2, size - 2,
                                fc_secret, sizeof(fc_secret) - 1, &r);

    ok2xx = status >= 200 && status <= 299;
    ok4xx = status == 400 || status == 402 || status == 404 || status == 422;

    switch (r.outcome) {

    case PAY_CHARGE_ACCEPTED:
        if (!ok2xx || r.psp_ref[0] == '\0') {
            __builtin_trap();
        }

        fc_printable(r.psp_ref, sizeof(r.psp_ref) - 1, 0);
        break;

    case PAY_CHARGE_DECLINED:
        if (r.decline_code[0] == '\0') {
            __builtin_trap();
        }
        /* fall through */

    case PAY_CHARGE_AUTH_REQUIRED:
        if (!ok2xx && !ok4xx) {
            __builtin_trap();
        }
        break;

    case PAY_CHARGE_AUTH:
    case PAY_CHARGE_RETRY:
        break;

    default:
        __builtin_trap();
    }

    if ((r.outcome == PAY_CHARGE_AUTH) != (status == 401 || status == 403)) {
        __builtin_trap();
    }

    for (i = 0; r.decline_code[i] != '\0'; i++) {
        if (i >= sizeof(r.decline_code) - 1
            || !((r.decline_code[i] >= 'a' && r.decline_code[i] <= 'z')
                 || (r.decline_code[i] >= '0' && r.decline_code[i] <= '9')
                 || r.decline_code[i] == '_'))
        {
            __builtin_trap();
        }
    }

    if (memchr(r.psp_ref, '\0', sizeof(r.psp_ref)) == NULL) {
        __builtin_trap();
    }

    fc_printable(r.reason, sizeof(r.reason) - 1, 1);

    if (memmem(r.reason, strlen(r.reason), fc_secret,
               sizeof(fc_secret) - 1) != NULL)
    {
        __builtin_trap();
    }

    return 0;
}
