/*
 * libFuzzer: the risk provider's answer (risk.h) on outside bytes.
 *
 * The whole input is an answer's body, through pay_risk_answer_parse and
 * pay_risk_verify (its first line, up to a newline, as the signature
 * header; the rest as the body).
 *
 * Promises checked: a parsed answer has one of the three verdicts, a
 * score of -1 or 0..1000, and a reason of [a-z0-9_.-] only (it reaches the
 * shop's answer and the logs); a signature made with the secret over the
 * body always verifies, and a header of outside bytes never verifies
 * under a secret it was not made with.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <payments/risk.h>


static const unsigned char  fr_secret[] = "fuzz_risk_answer_secret_0123456789";


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               sig[PAY_RISK_SIG_MAX];
    size_t             i, hl;
    const char        *nl;
    pay_risk_answer_t  a;

    if (pay_risk_answer_parse((const char *) data, size, &a) == 0) {
        if (a.verdict != PAY_RISK_ALLOW && a.verdict != PAY_RISK_DENY
            && a.verdict != PAY_RISK_REVIEW)
        {
            abort();
        }

        if (a.score < -1 || a.score > PAY_RISK_SCORE_MAX) {
            abort();
        }

        for (i = 0; a.reason[i] != '\0'; i++) {
            if (i >= PAY_RISK_REASON_MAX
                || !((a.reason[i] >= 'a' && a.reason[i] <= 'z')
                     || (a.reason[i] >= '0' && a.reason[i] <= '9')
                     || a.reason[i] == '_' || a.reason[i] == '.'
                     || a.reason[i] == '-'))
            {
                abort();
            }
        }
    }

    /* a signature of our own over these bytes, as the answer to the
     * request m_1:co_1, verifies for that request and no other */
    if (pay_risk_sign(fr_secret, sizeof(fr_secret) - 1, 1767225600,
                      "m_1:co_1", (const char *) data, size, sig,
                      sizeof(sig)) != 0
        || pay_risk_verify(fr_secret, sizeof(fr_secret) - 1, sig,
                           strlen(sig), "m_1:co_1", (const char *) data,
                           size, 1767225600, 300) != 0
        || pay_risk_verify(fr_secret, sizeof(fr_secret) - 1, sig,
                           strlen(sig), "m_1:co_2", (const char *) data,
                           size, 1767225600, 300) == 0)
    {
        abort();
    }

    /* a header of outside bytes over the rest: a forgery never passes */
    nl = memchr(data, '\n', size);
    if (nl != NULL) {
        hl = (size_t) (nl - (const char *) data);
        if (pay_risk_verify(fr_secret, sizeof(fr_secret) - 1,
                            (const char *) data, hl, "m_1:co_1", nl + 1,
                            size - hl - 1, 1767225600, 300) == 0)
        {
            abort();
        }
    }

    return 0;
}
