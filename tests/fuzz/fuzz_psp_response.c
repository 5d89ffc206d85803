/*
 * libFuzzer: a PSP's answer to a registration, in every dialect.
 *
 * Input: byte 0 picks the dialect, byte 1 the HTTP status (from a table of
 * the interesting ones), the rest is the body.  Whatever the bytes, the
 * classification must hold its promises: a CREATED result has a printable
 * token and URL of bounded length and only for a 2xx; a reason is
 * printable ASCII, NUL-terminated, and never contains the credential the
 * request was sent with.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <payments/psp.h>


static const int  fz_statuses[] = {
    0, 200, 201, 202, 204, 299, 301, 400, 401, 402, 403, 404, 409, 422,
    429, 500, 502, 503, 504, 100, -1
};

static const char  fz_secret[] = "sk_test_FuzzSecret0123456789";


static void
fz_check_printable(const char *s, size_t max, int allow_space)
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
    int               status;
    pay_dialect_e     d;
    pay_psp_result_t  r;

    if (size < 2) {
        return 0;
    }

    /* 0 stands for an unknown dialect, which must be a RETRY */
    d = (pay_dialect_e) (data[0] % 4);
    status = fz_statuses[data[1] % (sizeof(fz_statuses)
                                    / sizeof(fz_statuses[0]))];

    pay_psp_parse_registration_redact(d, status, (const char *) data + 2,
                                      size - 2, fz_secret,
                                      sizeof(fz_secret) - 1, &r);

    switch (r.outcome) {

    case PAY_PSP_CREATED:
        if (d == 0 || status < 200 || status > 299
            || r.token[0] == '\0' || r.url[0] == '\0' || r.expires_at < 0)
        {
            __builtin_trap();
        }

        fz_check_printable(r.token, sizeof(r.token) - 1, 0);
        fz_check_printable(r.url, sizeof(r.url) - 1, 0);
        break;

    case PAY_PSP_REFUSED:
        if (d == 0
            || (status != 400 && status != 402 && status != 404
                && status != 422))
        {
            __builtin_trap();
        }
        /* fall through */

    case PAY_PSP_AUTH:
    case PAY_PSP_RETRY:
        if (r.token[0] != '\0' || r.url[0] != '\0') {
            __builtin_trap();
        }

        break;

    default:
        __builtin_trap();
    }

    if (d != 0
        && (r.outcome == PAY_PSP_AUTH) != (status == 401 || status == 403))
    {
        __builtin_trap();
    }

    fz_check_printable(r.reason, sizeof(r.reason) - 1, 1);

    if (memmem(r.reason, strlen(r.reason), fz_secret,
               sizeof(fz_secret) - 1) != NULL
        || strstr(r.reason, "sk_test_") != NULL)
    {
        __builtin_trap();
    }

    /* the plain entry point classifies the same way */
    {
        pay_psp_result_t  r2;

        pay_psp_parse_registration(d, status, (const char *) data + 2,
                                   size - 2, &r2);

        if (r2.outcome != r.outcome || strcmp(r2.token, r.token) != 0
            || strcmp(r2.url, r.url) != 0 || r2.expires_at != r.expires_at)
        {
            __builtin_trap();
        }
    }

    return 0;
}
