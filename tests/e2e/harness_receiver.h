/*
 * The e2e harness: the merchants' endpoint, ci/receiver.sh's receiver
 * (tests/notify_receiver), and endpoints registered on it
 * (harness_receiver.c): what the notification and storefront suites use.
 */
#ifndef E2E_HARNESS_RECEIVER_H
#define E2E_HARNESS_RECEIVER_H

#include <jansson.h>

#include "harness_merchants.h"


/* --- the merchants' endpoint: the receiver (doc/NOTIFICATIONS.md) ----------
 *
 * The merchants' endpoint is ci/receiver.sh's receiver (tests/notify_receiver):
 * HTTPS on loopback, every delivery checked with the standardwebhooks
 * package.  A test takes a path of its own, /hooks/<name> (name from uid()),
 * so tests running beside each other never see each other's deliveries.
 * A delivery's record is a JSON object: path, webhook_id, type, sequence,
 * checkout_id, object_id, merchant_id, data, verified, verified_by (indices
 * into the path's secrets that verified it), signatures, attempt (the
 * how-manieth arrival of that webhook-id), arrived_ms, answer ("204", "500",
 * "hang", "drop", "302", "400"), gave_up_ms, error.
 */

typedef struct {
    char   id[64];                  /* ep_... */
    char   secret[128];             /* whsec_..., the current one */
    char  *name;                    /* the receiver's /hooks/<name> */
    char  *path;                    /* "/hooks/<name>" */
    char  *url;                     /* the URL registered */
} endpoint_t;

/* PAY_TEST_RECEIVER "/hooks/" name; the same on another host name
 * ("localhost", "[::1]") and the receiver's port. */
char    *receiver_url(const char *name);
char    *receiver_url_on(const char *host, const char *name);

/* How /hooks/<name> answers a verified delivery: mode "ok", "status N",
 * "hang", "drop", "redirect", "slow N"; script (NULL-terminated, or NULL):
 * modes used first, one per verified delivery. */
void     receiver_mode(const char *name, const char *mode,
    const char *const *script);

/* The secrets /hooks/<name> verifies with (NULL-terminated): any of them. */
void     receiver_secrets(const char *name, const char *const *secrets);

/* Every delivery to /hooks/<name> so far (a JSON array, the caller's). */
json_t  *receiver_deliveries(const char *name);

/* The receiver's counters (a JSON object, the caller's): connections (TCP,
 * to its HTTPS port), tls_handshakes, tls_errors, requests, verified,
 * unverified, delivered (2xx answers), delivered_ids, hung, ... */
json_t  *receiver_stats(void);

/* Polls until /hooks/<name> has seen at least n deliveries answered answer
 * ("204"; NULL: any answer, unverified ones included); returns them all.
 * Fails the test after seconds. */
json_t  *receiver_wait(const char *name, const char *answer, size_t n,
    int seconds);

/* How many of ds have that answer and type (NULL: any). */
size_t   deliveries_count(const json_t *ds, const char *answer,
    const char *type);

/* How many distinct webhook-ids among ds answered answer (NULL: any). */
size_t   deliveries_distinct(const json_t *ds, const char *answer);

/* bin/payments-merchant add-endpoint --id m->id --url url, then the extra
 * arguments (NULL-terminated, or NULL); its exit status, its output in *out. */
int      endpoint_add_raw(const merchant_t *m, const char *url,
    const char *const *extra, char **out);

/* An endpoint of m on the receiver's /hooks/<fresh name> (--allow-loopback;
 * events NULL: every type): its id and secret from the tool's output; the
 * receiver is given the secret. */
void     endpoint_add(const merchant_t *m, const char *events,
    endpoint_t *ep);

/* The same with the URL given (on the receiver, say receiver_url_on()),
 * whose path is /hooks/<name>. */
void     endpoint_add_at(const merchant_t *m, const char *url,
    const char *name, const char *events, endpoint_t *ep);

/* payments-merchant rotate-secret --endpoint ep->id [--grace grace]: the new
 * secret into ep->secret; the receiver verifies with the old and the new
 * (indices 0 and 1).  Returns the old one. */
char    *endpoint_rotate(endpoint_t *ep, const char *grace);

/* payments-merchant <command> --endpoint ep->id (disable-endpoint,
 * enable-endpoint); fails the test unless it exits 0. */
void     endpoint_command(const endpoint_t *ep, const char *command);

/* The http {} lines a gateway_start() gateway needs to deliver
 * notifications: payments_encryption_key (the suite's key file) and
 * "payments_notify on <params> ca=<the receiver's CA>"; params NULL: the
 * suite's own (NOTIFY_SUITE_PARAMS). */
#define NOTIFY_SUITE_PARAMS  "interval=200ms batch=32 timeout=2s " \
    "connect_timeout=1s lease=5s disable_after=8s backoff_scale=1000 " \
    "allow_loopback=on"
char    *notify_conf(const char *params);


#endif
