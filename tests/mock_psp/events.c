/*
 * Mock PSP: what a payment sets off.  The hosted page and the control API
 * both pay and decline through here, so a browser and a harness without
 * one get the same session change and the same webhooks.  The webhooks
 * are sent in the session's dialect: Stripe's, Adyen's or the generic one.
 */

#include <string.h>

#include "mock_psp.h"


static void mock_event_log(const char *type, const json_t *session,
    const mock_webhook_fault_t *wf);
static int mock_event_other_dialect(const json_t *session, int paid,
    const mock_webhook_fault_t *wf);
static int mock_event_never(const char *what, const json_t *session,
    const mock_webhook_fault_t *wf);


/* Adyen's and generic sessions send their own webhooks: 1 when it was one */
static int
mock_event_other_dialect(const json_t *session, int paid,
    const mock_webhook_fault_t *wf)
{
    const char  *d;

    d = json_string_value(json_object_get(session, "dialect"));

    if (d != NULL && strcmp(d, "adyen") == 0) {
        mock_event_log(paid ? "AUTHORISATION true" : "AUTHORISATION false",
                       session, wf);
        if (mock_conf.adyen_webhook_url != NULL) {
            mock_adyen_webhook(session, paid, wf);
        }
        return 1;
    }

    if (d != NULL && strcmp(d, "generic") == 0) {
        /* a setup ("mode": "setup", amount 0) pays nothing: its one
         * event is payment_method.saved (vault.c) */
        if (paid && json_integer_value(json_object_get(session,
                                                       "amount_total")) == 0)
        {
            mock_event_log("payment_method.saved only (setup)", session, wf);
            return 1;
        }

        mock_event_log(paid ? "payment.succeeded" : "payment.failed",
                       session, wf);
        if (mock_conf.generic_webhook_url != NULL) {
            mock_generic_webhook(session, paid, wf);
        }
        return 1;
    }

    return 0;
}


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
 * webhook_never: the session changes, the look-ups tell it, and no event
 * is sent or recorded, as from a PSP whose webhook never comes.  1 when
 * the rule says so.
 */
static int
mock_event_never(const char *what, const json_t *session,
    const mock_webhook_fault_t *wf)
{
    if (!wf->never) {
        return 0;
    }

    mock_log("event %s for %s: webhook_never (fault rule %llu), not sent",
             what, json_string_value(json_object_get(session, "id")),
             (unsigned long long) wf->id);

    return 1;
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

    /* the PSP's books: authorized (and captured, unless manual or async);
     * a save without a charge moves no money */
    if (state == MOCK_SESSION_OPEN && *copy != NULL
        && !mock_session_is_setup(*copy)
        && json_integer_value(json_object_get(*copy, "amount_total")) > 0)
    {
        mock_books_paid(*copy, wf.async_payment);
    }

    if (state == MOCK_SESSION_OPEN && *copy != NULL
        && !mock_event_never("pay", *copy, &wf)
        && !mock_event_other_dialect(*copy, 1, &wf))
    {
        mock_event_log("checkout.session.completed", *copy, &wf);

        if (mock_conf.webhook_url != NULL) {
            mock_stripe_webhook_completed(*copy, &wf);
        }
    }

    /* a session that saves the method: the vault, and its event */
    if (state == MOCK_SESSION_OPEN && *copy != NULL) {
        mock_vault_paid(*copy, &wf);
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

    if (state == MOCK_SESSION_OPEN && *copy != NULL
        && !mock_event_never("decline", *copy, &wf)
        && !mock_event_other_dialect(*copy, 0, &wf))
    {
        mock_event_log("checkout.session.expired", *copy, &wf);

        if (mock_conf.webhook_url != NULL) {
            mock_stripe_webhook_expired(*copy, &wf);
        }
    }

    return state;
}
