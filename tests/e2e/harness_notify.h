/*
 * The e2e harness: the gateway's notifications API (doc/NOTIFICATIONS.md).
 * The merchants' endpoint (the receiver) is harness_receiver.h's.
 */
#ifndef E2E_HARNESS_NOTIFY_H
#define E2E_HARNESS_NOTIFY_H

#include <jansson.h>

#include "harness_http.h"
#include "harness_merchants.h"


/* -- notifications (doc/NOTIFICATIONS.md) ------------------------------------ */

/* GET /v1/notifications?query on origin (NULL: the suite's gateway): its
 * "items" (or the top-level array), the caller's. */
json_t  *notifications_list(const char *origin, const merchant_t *m,
    const char *query);

/* The merchant's notification of that webhook-id in the list, or NULL. */
json_t  *notification_find(const char *origin, const merchant_t *m,
    const char *id);

/* Polls the list until the notification of that id has status want
 * ("DELIVERED", "FAILED", "PENDING"); returns it.  Fails after seconds. */
json_t  *notification_wait(const char *origin, const merchant_t *m,
    const char *id, const char *want, int seconds);

/* POST /v1/notifications/{id}/replay on origin (NULL: the suite's). */
resp_t  *notification_replay(const char *origin, const merchant_t *m,
    const char *id);


#endif
