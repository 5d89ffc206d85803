/*
 * Mock PSP: what a payment sets off.  Today it is recorded in the log; the
 * signed webhook delivery (a later issue) starts here, so that the hosted
 * page and any future trigger share one path.  Called without the store's
 * lock, with a copy of the session as it is after the change.
 */

#include "mock_psp.h"


void
mock_event_session_completed(const json_t *session)
{
    mock_log("event checkout.session.completed for %s (payment_status %s)",
             json_string_value(json_object_get(session, "id")),
             json_string_value(json_object_get(session, "payment_status")));
}
