/*
 * Mock PSP: a session ended on demand, the call a checkout's cancel makes.
 * Stripe: POST /v1/checkout/sessions/{id}/expire answers the session, now
 * "expired", and sends checkout.session.expired; a session no longer open
 * is a 400 ("Only Checkout Sessions with a status in [\"open\"] can be
 * expired"), as Stripe answers.  Generic: POST /sessions/{token}/expire
 * answers the session as GET /sessions/{token} does, after the call (an
 * open one "expired", any other as it was), and sends nothing.  Adyen has
 * no such call.  The fault rules apply as to registration, matched on the
 * Idempotency-Key: latency_ms, hang_ms (hang_times), fail_times /
 * fail_every, refuse_status, and drop_after_register (the session ends,
 * the answer is dropped).
 */

#include <string.h>

#include "mock_psp.h"


/*
 * The rule's part before the work.  Returns 0 to go on (the caller frees
 * *fault), or -1: the connection is closed without an answer.
 */
static int
mock_expire_arrive(struct MHD_Connection *c, const char *api,
    mock_fault_t *fault)
{
    const char  *key;

    key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");

    (void) mock_store_arrive(key, api, fault);

    if (fault->hang_ms > 0) {
        mock_log("fault %llu: expire hanging %ld ms, then closing without "
                 "an answer", (unsigned long long) fault->id,
                 fault->hang_ms);
        (void) mock_sleep_ms(fault->hang_ms);
        mock_fault_free(fault);
        return -1;
    }

    if (mock_sleep_ms(mock_conf.latency_ms + fault->latency_ms) != 0) {
        mock_fault_free(fault);
        return -1;
    }

    return 0;
}


/* the session's dialect is d (NULL: Stripe's, which names none) */
static int
mock_expire_dialect(const char *id, const char *d)
{
    int                    same;
    json_t                *s;
    const char            *sd;
    mock_session_state_e   state;

    state = mock_session_get(id, &s);
    sd = json_string_value(json_object_get(s, "dialect"));

    same = state != MOCK_SESSION_NOT_FOUND
           && (d == NULL ? sd == NULL : sd != NULL && strcmp(sd, d) == 0);

    json_decref(s);

    return same;
}


enum MHD_Result
mock_stripe_expire(struct MHD_Connection *c, const char *id,
    int (*authorized)(struct MHD_Connection *c))
{
    json_t                *copy;
    unsigned               status;
    mock_fault_t           fault;
    enum MHD_Result        rc;
    mock_webhook_fault_t   wf;
    mock_session_state_e   state;

    if (mock_expire_arrive(c, "stripe", &fault) != 0) {
        return MHD_NO;
    }

    if (!authorized(c)) {
        rc = mock_stripe_error(c, MHD_HTTP_UNAUTHORIZED,
                               "invalid_request_error", NULL, NULL,
                               "Invalid API Key provided");
        goto done;
    }

    status = mock_fault_take_fail(fault.id);
    if (status != 0 || fault.refuse_status != 0) {
        mock_log("fault %llu: expire %s with %u",
                 (unsigned long long) fault.id,
                 status ? "failing" : "refused",
                 status ? status : fault.refuse_status);
        mock_retry_after = status ? fault.retry_after : 0;
        rc = mock_stripe_error(c, status ? status : fault.refuse_status,
                               status ? "api_error" : "invalid_request_error",
                               NULL, NULL, "mock fault");
        mock_retry_after = 0;
        goto done;
    }

    if (!mock_expire_dialect(id, NULL)) {
        rc = mock_stripe_error(c, MHD_HTTP_NOT_FOUND, "invalid_request_error",
                               "resource_missing", "session",
                               "No such checkout.session: '%s'", id);
        goto done;
    }

    state = mock_session_expire(id, &copy);

    if (state != MOCK_SESSION_OPEN || copy == NULL) {
        json_decref(copy);
        rc = mock_stripe_error(c, MHD_HTTP_BAD_REQUEST,
                               "invalid_request_error", NULL, NULL,
                               "Only Checkout Sessions with a status in "
                               "[\"open\"] can be expired.");
        goto done;
    }

    mock_log("session %s expired by the expire call", id);

    /* Stripe says so with its webhook too, as for any expiry */
    if (mock_conf.webhook_url != NULL) {
        mock_store_webhook_fault(json_string_value(json_object_get(
                                     copy, "client_reference_id")), &wf);

        if (!wf.never) {
            mock_stripe_webhook_expired(copy, &wf);
        }
    }

    if (mock_fault_take_drop(fault.id, 0)) {
        mock_log("fault %llu: session expired, dropping the connection",
                 (unsigned long long) fault.id);
        json_decref(copy);
        rc = MHD_NO;
        goto done;
    }

    rc = mock_send_json(c, MHD_HTTP_OK, copy);

done:

    mock_fault_free(&fault);
    return rc;
}


enum MHD_Result
mock_generic_expire(struct MHD_Connection *c, const char *token,
    int (*authorized)(struct MHD_Connection *c),
    enum MHD_Result (*error)(struct MHD_Connection *c, unsigned status,
                             const char *code, const char *message))
{
    json_t                *copy;
    unsigned               status;
    mock_fault_t           fault;
    enum MHD_Result        rc;
    mock_session_state_e   state;

    if (mock_expire_arrive(c, "generic", &fault) != 0) {
        return MHD_NO;
    }

    if (!authorized(c)) {
        rc = error(c, 401, "unauthorized", "bad API key");
        goto done;
    }

    status = mock_fault_take_fail(fault.id);
    if (status != 0 || fault.refuse_status != 0) {
        mock_log("fault %llu: expire %s with %u",
                 (unsigned long long) fault.id,
                 status ? "failing" : "refused",
                 status ? status : fault.refuse_status);
        mock_retry_after = status ? fault.retry_after : 0;
        rc = error(c, status ? status : fault.refuse_status,
                   status ? "unavailable" : "refused", "mock fault");
        mock_retry_after = 0;
        goto done;
    }

    if (!mock_expire_dialect(token, "generic")) {
        rc = error(c, 404, "not_found", "no such session");
        goto done;
    }

    state = mock_session_expire(token, &copy);
    json_decref(copy);

    if (state == MOCK_SESSION_OPEN) {
        mock_log("session %s expired by the expire call", token);
    }

    if (mock_fault_take_drop(fault.id, 0)) {
        mock_log("fault %llu: session expired, dropping the connection",
                 (unsigned long long) fault.id);
        rc = MHD_NO;
        goto done;
    }

    /* the session as it is now, as the look-up answers it */
    rc = mock_generic_lookup(c, token);

done:

    mock_fault_free(&fault);
    return rc;
}
