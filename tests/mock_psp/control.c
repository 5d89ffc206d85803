/*
 * Mock PSP: the control API the test harnesses drive (CONTRACTS.md, 3).
 * JSON in and out, no authentication, loopback clients only.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mock_psp.h"


#define MOCK_MAX_MS          (3600L * 1000)
#define MOCK_MAX_DUPLICATES  20


static enum MHD_Result mock_control_error(struct MHD_Connection *c,
    unsigned status, const char *message);
static int mock_json_long(json_t *v, long min, long max, long *out);
static enum MHD_Result mock_control_add_fault(struct MHD_Connection *c,
    mock_request_t *r);
static enum MHD_Result mock_control_registrations(struct MHD_Connection *c);
static enum MHD_Result mock_control_webhooks(struct MHD_Connection *c);
static enum MHD_Result mock_control_session(struct MHD_Connection *c,
    const char *method, const char *path);
static enum MHD_Result mock_control_expire(struct MHD_Connection *c,
    const char *id);


static enum MHD_Result
mock_control_error(struct MHD_Connection *c, unsigned status,
    const char *message)
{
    return mock_send_json(c, status, json_pack("{ss}", "error", message));
}


static int
mock_json_long(json_t *v, long min, long max, long *out)
{
    json_int_t  n;

    if (!json_is_integer(v)) {
        return -1;
    }

    n = json_integer_value(v);
    if (n < min || n > max) {
        return -1;
    }

    *out = (long) n;
    return 0;
}


/*
 * POST /_control/faults.  Unknown fields are refused: a harness that
 * misspells "fail_times" must not get a rule that silently does nothing.
 */
static enum MHD_Result
mock_control_add_fault(struct MHD_Connection *c, mock_request_t *r)
{
    long                  latency_ms, fail_times, fail_every, retry_after,
                          hang_times, fail_status,
                          refuse_status, hang_ms, drop, drop_replays;
    json_t               *root, *v;
    uint64_t              id;
    const char           *name, *match, *hosted_url, *api;
    json_error_t          jerr;
    mock_webhook_fault_t  wf;
    char                  msg[256];

    root = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(msg, sizeof(msg), "invalid JSON: %s", jerr.text);
        return mock_control_error(c, MHD_HTTP_BAD_REQUEST, msg);
    }

    if (!json_is_object(root)) {
        json_decref(root);
        return mock_control_error(c, MHD_HTTP_BAD_REQUEST,
                                  "the body must be a JSON object");
    }

    match = "";
    api = "";
    hosted_url = NULL;
    latency_ms = 0;
    fail_times = 0;
    fail_every = 0;
    retry_after = 0;
    hang_times = 0;
    fail_status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    refuse_status = 0;
    hang_ms = 0;
    drop = 0;
    drop_replays = 0;
    memset(&wf, 0, sizeof(wf));

    json_object_foreach(root, name, v) {

        if (strcmp(name, "match") == 0) {
            if (!json_is_string(v)) {
                goto invalid;
            }
            match = json_string_value(v);

        } else if (strcmp(name, "latency_ms") == 0) {
            if (mock_json_long(v, 0, MOCK_MAX_MS, &latency_ms) != 0) {
                goto invalid;
            }

        } else if (strcmp(name, "fail_times") == 0) {
            if (mock_json_long(v, 0, 1000000000L, &fail_times) != 0) {
                goto invalid;
            }

        } else if (strcmp(name, "fail_every") == 0) {
            /* 0: off; 1 would fail every attempt, which is fail_times */
            if (mock_json_long(v, 0, 1000000L, &fail_every) != 0
                || fail_every == 1)
            {
                goto invalid;
            }

        } else if (strcmp(name, "retry_after") == 0) {
            if (mock_json_long(v, 0, 86400L, &retry_after) != 0) {
                goto invalid;
            }

        } else if (strcmp(name, "fail_status") == 0) {
            if (mock_json_long(v, 400, 599, &fail_status) != 0) {
                goto invalid;
            }

        } else if (strcmp(name, "refuse_status") == 0) {
            /* 0 is "no refusal", so a rule can be written out in full */
            if (mock_json_long(v, 0, 599, &refuse_status) != 0
                || (refuse_status != 0 && refuse_status < 400))
            {
                goto invalid;
            }

        } else if (strcmp(name, "hang_times") == 0) {
            /* 0: every request (the default) */
            if (mock_json_long(v, 0, 1000000000L, &hang_times) != 0) {
                goto invalid;
            }

        } else if (strcmp(name, "hang_ms") == 0) {
            if (mock_json_long(v, 0, MOCK_MAX_MS, &hang_ms) != 0) {
                goto invalid;
            }

        } else if (strcmp(name, "api") == 0) {
            if (!json_is_string(v)
                || (strcmp(json_string_value(v), "stripe") != 0
                    && strcmp(json_string_value(v), "adyen") != 0
                    && strcmp(json_string_value(v), "generic") != 0))
            {
                goto invalid;
            }

            api = json_string_value(v);

        } else if (strcmp(name, "drop_after_register") == 0) {
            if (mock_json_long(v, 0, 1000000000L, &drop) != 0) {
                goto invalid;
            }

        } else if (strcmp(name, "drop_replays") == 0) {
            if (mock_json_long(v, 0, 1000000000L, &drop_replays) != 0) {
                goto invalid;
            }

        } else if (strcmp(name, "hosted_url") == 0) {
            if (json_is_null(v)) {
                hosted_url = NULL;
            } else if (json_is_string(v) && json_string_length(v) > 0) {
                hosted_url = json_string_value(v);
            } else {
                goto invalid;
            }

        } else if (strcmp(name, "webhook_delay_ms") == 0) {
            if (mock_json_long(v, 0, MOCK_MAX_MS, &wf.delay_ms) != 0) {
                goto invalid;
            }

        } else if (strcmp(name, "webhook_duplicate") == 0) {
            /* each copy is a thread and a connection to the gateway */
            if (mock_json_long(v, 0, MOCK_MAX_DUPLICATES, &wf.duplicate)
                != 0)
            {
                goto invalid;
            }

        } else if (strcmp(name, "async_delay_ms") == 0) {
            if (mock_json_long(v, 0, MOCK_MAX_MS, &wf.async_delay_ms) != 0) {
                goto invalid;
            }

        } else if (strcmp(name, "webhook_amount") == 0) {
            if (json_is_null(v)) {
                wf.has_amount = 0;
            } else if (json_is_integer(v) && json_integer_value(v) >= 0) {
                wf.has_amount = 1;
                wf.amount = json_integer_value(v);
            } else {
                goto invalid;
            }

        } else if (strcmp(name, "webhook_out_of_order") == 0
                   || strcmp(name, "webhook_op_failed") == 0
                   || strcmp(name, "webhook_charge_refunded") == 0
                   || strcmp(name, "webhook_refund_failed_code") == 0
                   || strcmp(name, "webhook_capture_reversed") == 0
                   || strcmp(name, "webhook_bad_signature") == 0
                   || strcmp(name, "webhook_stale") == 0
                   || strcmp(name, "webhook_never") == 0
                   || strcmp(name, "webhook_no_method") == 0
                   || strcmp(name, "async_payment") == 0)
        {
            if (!json_is_boolean(v)) {
                goto invalid;
            }

            if (strcmp(name, "async_payment") == 0) {
                wf.async_payment = json_is_true(v);
            } else if (strcmp(name, "webhook_never") == 0) {
                wf.never = json_is_true(v);
            } else if (strcmp(name, "webhook_no_method") == 0) {
                wf.no_method = json_is_true(v);
            } else if (strcmp(name, "webhook_out_of_order") == 0) {
                wf.out_of_order = json_is_true(v);
            } else if (strcmp(name, "webhook_op_failed") == 0) {
                wf.op_failed = json_is_true(v);
            } else if (strcmp(name, "webhook_charge_refunded") == 0) {
                wf.charge_refunded = json_is_true(v);
            } else if (strcmp(name, "webhook_refund_failed_code") == 0) {
                wf.refund_failed_code = json_is_true(v);
            } else if (strcmp(name, "webhook_capture_reversed") == 0) {
                wf.capture_reversed = json_is_true(v);
            } else if (strcmp(name, "webhook_bad_signature") == 0) {
                wf.bad_signature = json_is_true(v);
            } else {
                wf.stale = json_is_true(v);
            }

        } else {
            snprintf(msg, sizeof(msg), "unknown field \"%s\"", name);
            json_decref(root);
            return mock_control_error(c, MHD_HTTP_BAD_REQUEST, msg);
        }
    }

    if (wf.async_delay_ms != 0 && !wf.async_payment) {
        json_decref(root);
        return mock_control_error(c, MHD_HTTP_BAD_REQUEST,
                                  "async_delay_ms needs \"async_payment\": "
                                  "true");
    }

    /* an async payment settles when its first event is done: with no
     * event it would stay unpaid for good, which is no PSP's behaviour */
    if (wf.never && wf.async_payment) {
        json_decref(root);
        return mock_control_error(c, MHD_HTTP_BAD_REQUEST,
                                  "webhook_never and async_payment do not "
                                  "go together");
    }

    id = mock_fault_add(match, latency_ms, fail_times, fail_every,
                        retry_after, (unsigned) fail_status,
                        (unsigned) refuse_status, hang_ms, drop, hosted_url,
                        &wf);

    if (id == 0) {
        json_decref(root);
        return mock_control_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  "out of memory");
    }

    mock_fault_counts(id, hang_times, drop_replays);

    if (api[0] != '\0') {
        mock_fault_api(id, api);
    }

    mock_log("fault %llu added: match \"%s\" latency_ms %ld fail_times %ld "
             "fail_every %ld "
             "fail_status %ld refuse_status %ld hang_ms %ld "
             "drop_after_register %ld drop_replays %ld hosted_url %s "
             "webhook_delay_ms %ld "
             "webhook_duplicate %ld webhook_out_of_order %d "
             "webhook_bad_signature %d webhook_stale %d async_payment %d "
             "async_delay_ms %ld webhook_amount %lld%s webhook_never %d",
             (unsigned long long) id, match, latency_ms, fail_times,
             fail_every, fail_status, refuse_status, hang_ms, drop,
             drop_replays, hosted_url ? hosted_url : "-", wf.delay_ms,
             wf.duplicate,
             (int) wf.out_of_order, (int) wf.bad_signature, (int) wf.stale,
             (int) wf.async_payment, wf.async_delay_ms,
             (long long) wf.amount, wf.has_amount ? "" : " (off)",
             (int) wf.never);

    json_decref(root);

    return mock_send_json(c, MHD_HTTP_OK,
                          json_pack("{sI}", "id", (json_int_t) id));

invalid:

    snprintf(msg, sizeof(msg), "bad value for \"%s\"", name);
    json_decref(root);
    return mock_control_error(c, MHD_HTTP_BAD_REQUEST, msg);
}


/* GET /_control/registrations?key=K */
static enum MHD_Result
mock_control_registrations(struct MHD_Connection *c)
{
    json_t      *j;
    uint64_t     created, requests;
    const char  *key;

    key = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key");
    if (key == NULL) {
        return mock_control_error(c, MHD_HTTP_BAD_REQUEST,
                                  "the key query parameter is required");
    }

    mock_store_registrations(key, &created, &requests);

    j = json_pack("{ss sI sI}", "key", key,
                  "sessions_created", (json_int_t) created,
                  "requests", (json_int_t) requests);
    if (j == NULL) {
        return mock_control_error(c, MHD_HTTP_BAD_REQUEST,
                                  "the key is not valid UTF-8");
    }

    return mock_send_json(c, MHD_HTTP_OK, j);
}


/* POST /_control/keys/forget {"match":"m1:rf_"}: the PSP forgets the keys
 * of its finished requests ({"forgotten":N}) */
static enum MHD_Result
mock_control_forget_keys(struct MHD_Connection *c, mock_request_t *r)
{
    json_t        *root, *v;
    unsigned long  n;

    root = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
    v = json_object_get(root, "match");

    if (!json_is_object(root) || !json_is_string(v)
        || json_object_size(root) != 1 || json_string_length(v) == 0)
    {
        json_decref(root);
        return mock_control_error(c, MHD_HTTP_BAD_REQUEST,
                                  "the body must be {\"match\": a non-empty "
                                  "string}");
    }

    n = mock_store_forget_keys(json_string_value(v));
    mock_log("forgot %lu idempotency key(s) matching \"%s\"", n,
             json_string_value(v));
    json_decref(root);

    return mock_send_json(c, MHD_HTTP_OK,
                          json_pack("{sI}", "forgotten", (json_int_t) n));
}

/* GET /_control/webhooks?session=ID */
static enum MHD_Result
mock_control_webhooks(struct MHD_Connection *c)
{
    json_t      *j, *events;
    const char  *session;

    session = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                          "session");
    if (session == NULL) {
        return mock_control_error(c, MHD_HTTP_BAD_REQUEST,
                                  "the session query parameter is required");
    }

    events = mock_wh_list(session);
    if (events == NULL) {
        return mock_control_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  "out of memory");
    }

    j = json_pack("{ss so}", "session", session, "events", events);
    if (j == NULL) {
        return mock_control_error(c, MHD_HTTP_BAD_REQUEST,
                                  "the session is not valid UTF-8");
    }

    return mock_send_json(c, MHD_HTTP_OK, j);
}


/*
 * POST /_control/sessions/{id}/pay and .../decline: what the hosted page's
 * buttons do, for harnesses without a browser; .../expire: the session's
 * time runs out now (no webhook, as a natural expiry).  path follows
 * "sessions/".  GET /_control/sessions/{id}: the stored session.
 */
static enum MHD_Result
mock_control_session(struct MHD_Connection *c, const char *method,
    const char *path)
{
    int                    pay, expire;
    size_t                 len;
    json_t                *s;
    const char            *action;
    mock_session_state_e   state;
    mock_header_t          header;
    char                   id[128];

    len = strcspn(path, "/");
    action = path + len;

    /* GET /_control/sessions/{id}: the session as the mock stored it,
     * with what it was sent (metadata); a refund's or transfer's id
     * gives the operation as stored (its PSP object and what it was
     * sent) */
    if (len > 0 && len < sizeof(id) && action[0] == '\0'
        && strcmp(method, "GET") == 0)
    {
        memcpy(id, path, len);
        id[len] = '\0';

        s = mock_record_get(id);
        if (s == NULL) {
            return mock_control_error(c, MHD_HTTP_NOT_FOUND,
                                      "no such session");
        }

        return mock_send_json(c, MHD_HTTP_OK, s);
    }

    if (len == 0 || len >= sizeof(id)
        || (strcmp(action, "/pay") != 0 && strcmp(action, "/decline") != 0
            && strcmp(action, "/expire") != 0
            && strcmp(action, "/method_event") != 0))
    {
        return mock_control_error(c, MHD_HTTP_NOT_FOUND,
                                  "unknown control endpoint");
    }

    if (strcmp(method, "POST") != 0) {
        header.name = MHD_HTTP_HEADER_ALLOW;
        header.value = "POST";
        return mock_send(c, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                         "{\"error\":\"method not allowed\"}", 30,
                         &header, 1);
    }

    memcpy(id, path, len);
    id[len] = '\0';
    pay = (strcmp(action, "/pay") == 0);
    expire = (strcmp(action, "/expire") == 0);

    if (expire) {
        return mock_control_expire(c, id);
    }

    /* the method's event, held back by webhook_no_method, sent now */
    if (strcmp(action, "/method_event") == 0) {
        if (mock_vault_method_event(id) != 0) {
            return mock_control_error(c, MHD_HTTP_CONFLICT,
                                      "the session is not paid or saved "
                                      "no method");
        }

        return mock_send_json(c, MHD_HTTP_OK, json_pack("{sb}", "sent", 1));
    }

    state = pay ? mock_event_pay(id, &s) : mock_event_decline(id, &s);

    switch (state) {

    case MOCK_SESSION_NOT_FOUND:
        json_decref(s);
        return mock_control_error(c, MHD_HTTP_NOT_FOUND, "no such session");

    case MOCK_SESSION_EXPIRED:
        json_decref(s);
        return mock_control_error(c, MHD_HTTP_GONE,
                                  "the session has expired");

    case MOCK_SESSION_COMPLETE:
        if (!pay) {
            json_decref(s);
            return mock_control_error(c, MHD_HTTP_CONFLICT,
                                      "the session is already paid");
        }
        /* paying again changes nothing and sends nothing, as the page */
        break;

    case MOCK_SESSION_OPEN:
        break;
    }

    if (s == NULL) {
        return mock_control_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  "out of memory");
    }

    return mock_send_json(c, MHD_HTTP_OK, s);
}


/* POST /_control/sessions/{id}/expire */
static enum MHD_Result
mock_control_expire(struct MHD_Connection *c, const char *id)
{
    json_t                *s;
    mock_session_state_e   state;

    state = mock_session_expire(id, &s);

    switch (state) {

    case MOCK_SESSION_NOT_FOUND:
        return mock_control_error(c, MHD_HTTP_NOT_FOUND, "no such session");

    case MOCK_SESSION_COMPLETE:
        return mock_control_error(c, MHD_HTTP_CONFLICT,
                                  "the session is already paid");

    case MOCK_SESSION_OPEN:
        mock_log("session %s expired by the control API", id);
        break;

    case MOCK_SESSION_EXPIRED:
        /* already: nothing changes */
        break;
    }

    if (s == NULL) {
        return mock_control_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  "out of memory");
    }

    return mock_send_json(c, MHD_HTTP_OK, s);
}


/* report.c: GET /_control/reports/{dialect}, the settlement reports */
enum MHD_Result mock_report(struct MHD_Connection *c, const char *method,
    const char *path);


/* DELETE /_control/faults/{id}: the rule removed, its requests answered
 * as any again (the outage over); 404 when there is no such rule. */
static enum MHD_Result
mock_control_remove_fault(struct MHD_Connection *c, const char *id)
{
    char                *end;
    unsigned long long   n;

    errno = 0;
    n = strtoull(id, &end, 10);

    if (id[0] < '1' || id[0] > '9' || *end != '\0' || errno != 0
        || !mock_fault_remove((uint64_t) n))
    {
        return mock_control_error(c, MHD_HTTP_NOT_FOUND, "no such fault");
    }

    mock_log("fault %llu: removed", n);

    return mock_send_json(c, MHD_HTTP_OK, json_pack("{sb}", "ok", 1));
}


/* path is what follows "/_control/". */
enum MHD_Result
mock_control(struct MHD_Connection *c, const char *method, const char *path,
    mock_request_t *r)
{
    int            get, post;
    const char    *allow;
    mock_header_t  header;

    if (!mock_client_is_loopback(c)) {
        return mock_control_error(c, MHD_HTTP_FORBIDDEN,
                                  "the control API answers loopback "
                                  "clients only");
    }

    get = (strcmp(method, "GET") == 0);
    post = (strcmp(method, "POST") == 0);

    if (strcmp(path, "health") == 0) {
        if (get) {
            return mock_send_json(c, MHD_HTTP_OK, json_pack("{sb}", "ok", 1));
        }
        allow = "GET";

    } else if (strcmp(path, "reset") == 0) {
        if (post) {
            mock_store_reset();
            mock_webhook_reset();
            mock_money_reset();
            mock_books_reset();
            mock_vault_reset();
            mock_log("reset");
            return mock_send_json(c, MHD_HTTP_OK, json_pack("{sb}", "ok", 1));
        }
        allow = "POST";

    } else if (strcmp(path, "faults") == 0) {
        if (post) {
            return mock_control_add_fault(c, r);
        }
        if (get) {
            return mock_send_json(c, MHD_HTTP_OK,
                                  json_pack("{so}", "faults",
                                            mock_fault_list()));
        }
        allow = "GET, POST";

    } else if (strncmp(path, "faults/", 7) == 0) {
        if (strcmp(method, "DELETE") == 0) {
            return mock_control_remove_fault(c, path + 7);
        }
        allow = "DELETE";

    } else if (strcmp(path, "registrations") == 0) {
        if (get) {
            return mock_control_registrations(c);
        }
        allow = "GET";

    } else if (strcmp(path, "webhooks") == 0) {
        if (get) {
            return mock_control_webhooks(c);
        }
        allow = "GET";

    } else if (strcmp(path, "keys/forget") == 0) {
        if (post) {
            return mock_control_forget_keys(c, r);
        }
        allow = "POST";

    } else if (strncmp(path, "sessions/", 9) == 0) {
        return mock_control_session(c, method, path + 9);

    } else if (strncmp(path, "reports/", 8) == 0) {
        return mock_report(c, method, path + 8);

    } else if (strcmp(path, "books") == 0
               || strncmp(path, "captures/", 9) == 0)
    {
        return mock_books_control(c, method, path);

    } else if (strncmp(path, "disputes", 8) == 0
               || strncmp(path, "transfers/", 10) == 0)
    {
        return mock_money_control(c, method, path, r);

    } else if (strcmp(path, "captures") == 0) {
        return mock_capture_control(c, method, r);

    } else if (strcmp(path, "charges") == 0
               || strncmp(path, "payment_methods", 15) == 0)
    {
        return mock_vault_control(c, method, path, r);

    } else {
        return mock_control_error(c, MHD_HTTP_NOT_FOUND,
                                  "unknown control endpoint");
    }

    header.name = MHD_HTTP_HEADER_ALLOW;
    header.value = allow;

    return mock_send(c, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                     "{\"error\":\"method not allowed\"}", 30, &header, 1);
}
