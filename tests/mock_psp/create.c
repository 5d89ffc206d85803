/*
 * Mock PSP: registering a session, whatever the API.  The order of
 * decisions is the same for every PSP: a hang rule, the latency, the
 * credentials, the Idempotency-Key (replay, mismatch, in use), the fault
 * rule's failures and refusals, the body, the commit, a drop rule.  The
 * PSP's own API (mock_api_t) words every refusal and builds the session.
 * Decisions come first, then the latency, so a second request with a key
 * in use sees 409 at once, and the first one holds its key "in progress"
 * for the whole latency.
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "mock_psp.h"


/* Cuts an incomplete UTF-8 sequence off the end of s. */
void
mock_utf8_trim(char *s)
{
    size_t  len, i, need;

    len = strlen(s);
    i = len;

    while (i > 0 && ((unsigned char) s[i - 1] & 0xc0) == 0x80) {
        i--;
    }

    if (i == 0 || (unsigned char) s[i - 1] < 0xc0) {
        return;
    }

    /* s[i - 1] leads a sequence of need bytes; is it complete? */
    need = ((unsigned char) s[i - 1] >= 0xf0) ? 4
           : ((unsigned char) s[i - 1] >= 0xe0) ? 3 : 2;

    if (len - (i - 1) < need) {
        s[i - 1] = '\0';
    }
}


void
mock_invalid(mock_invalid_t *inv, const char *code, const char *param,
    const char *fmt, ...)
{
    va_list  ap;

    inv->code = code;

    snprintf(inv->param, sizeof(inv->param), "%s", param ? param : "");
    mock_utf8_trim(inv->param);

    va_start(ap, fmt);
    vsnprintf(inv->message, sizeof(inv->message), fmt, ap);
    va_end(ap);
    mock_utf8_trim(inv->message);
}


enum MHD_Result
mock_create(struct MHD_Connection *c, mock_request_t *r,
    const mock_api_t *api)
{
    long              latency;
    char             *response;
    json_t           *session, *stored;
    unsigned          status;
    size_t            n;
    char             *ikey;
    const char       *key, *ctype;
    mock_idem_e       idem;
    mock_claim_t      claim;
    mock_fault_t      fault;
    enum MHD_Result   rc;
    mock_invalid_t    inv;
    unsigned char     hash[32];
    mock_header_t     headers[2];

    key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");

    /* each PSP keeps its own Idempotency-Keys: the same nonce at Stripe
     * and at Adyen is two requests, and may be two sessions */
    ikey = NULL;
    if (key != NULL
        && asprintf(&ikey, "%s|%s", api->name, key) < 0)
    {
        return MHD_NO;
    }

    memset(&claim, 0, sizeof(claim));
    memset(&inv, 0, sizeof(inv));
    claim.epoch = mock_store_arrive(key, api->name, &fault);

    if (fault.hang_ms > 0) {
        mock_log("fault %llu: hanging %ld ms, then closing without an answer",
                 (unsigned long long) fault.id, fault.hang_ms);
        (void) mock_sleep_ms(fault.hang_ms);
        free(ikey);
        mock_fault_free(&fault);
        return MHD_NO;
    }

    latency = mock_conf.latency_ms + fault.latency_ms;
    rc = MHD_NO;

    if (!api->authorized(c)) {
        if (mock_sleep_ms(latency) == 0) {
            rc = api->refuse(c, MOCK_REFUSE_UNAUTHORIZED, 401, key, NULL);
        }
        goto done;
    }

    if (key != NULL && (key[0] == '\0' || strlen(key) > api->key_max)) {
        if (mock_sleep_ms(latency) == 0) {
            rc = api->refuse(c, MOCK_REFUSE_KEY_INVALID, 400, key, NULL);
        }
        goto done;
    }

    if (key != NULL) {
        /* the PSPs compare the parameters; byte-identical bodies suffice */
        if (EVP_Digest(r->body, r->len, hash, NULL, EVP_sha256(), NULL) != 1)
        {
            goto done;
        }

        idem = mock_store_claim(ikey, hash, &claim);

        /* "in progress" is answered at once, as the PSPs do: the attempt
         * holding the key is the one that takes its time */
        if (idem != MOCK_IDEM_CLAIMED && idem != MOCK_IDEM_IN_USE) {
            if (mock_sleep_ms(latency) != 0) {
                free(claim.body);
                goto done;
            }
        }

        switch (idem) {

        case MOCK_IDEM_REPLAY:
            if (mock_fault_take_drop(fault.id, 1)) {
                mock_log("fault %llu: replay, dropping the connection",
                         (unsigned long long) fault.id);
                free(claim.body);
                goto done;
            }

            headers[0].name = "Idempotent-Replayed";
            headers[0].value = "true";
            headers[1].name = "Idempotency-Key";
            headers[1].value = key;
            rc = mock_send(c, claim.status, "application/json", claim.body,
                           strlen(claim.body), headers, 2);
            free(claim.body);
            goto done;

        case MOCK_IDEM_MISMATCH:
            rc = api->refuse(c, MOCK_REFUSE_KEY_MISMATCH, 422, key, NULL);
            goto done;

        case MOCK_IDEM_IN_USE:
            rc = api->refuse(c, MOCK_REFUSE_KEY_IN_USE, 409, key, NULL);
            goto done;

        case MOCK_IDEM_CLAIMED:
            break;
        }
    }

    /* From here on the key, if any, is ours: release it or commit it. */

    if (mock_sleep_ms(latency) != 0) {
        goto release;
    }

    status = mock_fault_take_fail(fault.id);
    if (status != 0) {
        mock_log("fault %llu: failing with %u", (unsigned long long) fault.id,
                 status);
        mock_retry_after = fault.retry_after;
        rc = api->refuse(c, MOCK_REFUSE_FAIL, status, key, NULL);
        mock_retry_after = 0;
        goto release;
    }

    if (fault.refuse_status != 0) {
        mock_log("fault %llu: refusing with %u",
                 (unsigned long long) fault.id, fault.refuse_status);
        rc = api->refuse(c, MOCK_REFUSE_FAULT, fault.refuse_status, key,
                         NULL);
        goto release;
    }

    ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_CONTENT_TYPE);
    n = strlen(api->content_type);
    if (ctype == NULL || strncasecmp(ctype, api->content_type, n) != 0
        || (ctype[n] != '\0' && ctype[n] != ';'))
    {
        rc = api->refuse(c, MOCK_REFUSE_CONTENT_TYPE, 415, key, NULL);
        goto release;
    }

    response = NULL;
    session = api->build(r->body, r->len, &fault, &inv, &response);
    if (session == NULL) {
        rc = api->refuse(c, inv.code ? MOCK_REFUSE_INVALID
                                     : MOCK_REFUSE_INTERNAL,
                         inv.code ? 400 : 500, key, &inv);
        goto release;
    }

    /* an answer of another status the API decided (a card declined at
     * once: Stripe's 402), stored under the key as any answer */
    status = api->created;

    if (json_is_integer(json_object_get(session, "_answer_status"))) {
        status = (unsigned) json_integer_value(json_object_get(session,
                                                       "_answer_status"));
        json_object_del(session, "_answer_status");
    }

    stored = api->committed ? json_deep_copy(session) : NULL;

    if (mock_store_commit(key, ikey, &claim, session, response, status)
        != 0)
    {
        json_decref(stored);
        free(response);
        goto release;
    }

    if (stored != NULL) {
        /* the operation's webhook: sent whatever becomes of the answer */
        api->committed(stored, key);
        json_decref(stored);
    }

    if (mock_fault_take_drop(fault.id, 0)) {
        mock_log("fault %llu: session registered, dropping the connection",
                 (unsigned long long) fault.id);
        free(response);
        goto done;
    }

    headers[0].name = "Idempotency-Key";
    headers[0].value = key;
    rc = mock_send(c, status, "application/json", response,
                   strlen(response), headers, key != NULL ? 1 : 0);
    free(response);

    goto done;

release:

    if (key != NULL) {
        mock_store_release(ikey, &claim);
    }

done:

    free(ikey);
    mock_fault_free(&fault);
    return rc;
}
