/*
 * Mock PSP: what a payment sets off.  The hosted page and the control API
 * both pay and decline through here, so a browser and a harness without
 * one get the same session change and the same webhooks.  The webhooks
 * are sent in the PSP's dialect; today that is Stripe's.
 */

#include "mock_psp.h"


static void mock_event_log(const char *type, const json_t *session,
    const mock_webhook_fault_t *wf);


static void
mock_event_log(const char *type, const json_t *session,
    const mock_webhook_fault_t *wf)
{
    mock_log("event %s for %s (payment_status %s)%s%s", type,
             json_string_value(json_object_get(session, "id")),
             json_string_value(json_object_get(session, "payment_status")),
             wf->id != 0 ? ", fault rule " : "",
             wf->id != 0 ? "applies to its webhooks" : "");
}


/*
 * Returns the state before paying (OPEN: paid just now, events sent) and
 * in *copy the session after; NULL with OPEN or COMPLETE is out of memory.
 */
mock_session_state_e
mock_event_pay(const char *id, json_t **copy)
{
    mock_session_state_e  state;
    mock_webhook_fault_t  wf;

    state = mock_session_pay(id, copy, &wf);

    if (state == MOCK_SESSION_OPEN && *copy != NULL) {
        mock_event_log("checkout.session.completed", *copy, &wf);

        if (mock_conf.webhook_url != NULL) {
            mock_stripe_webhook_completed(*copy, &wf);
        }
    }

    return state;
}


/* As mock_event_pay(): OPEN means it expired just now. */
mock_session_state_e
mock_event_decline(const char *id, json_t **copy)
{
    mock_session_state_e  state;
    mock_webhook_fault_t  wf;

    state = mock_session_decline(id, copy, &wf);

    if (state == MOCK_SESSION_OPEN && *copy != NULL) {
        mock_event_log("checkout.session.expired", *copy, &wf);

        if (mock_conf.webhook_url != NULL) {
            mock_stripe_webhook_expired(*copy, &wf);
        }
    }

    return state;
}
