/*
 * Mock PSP: its own books, in the PSP's terms, kept apart from the
 * sessions' working fields so that a test can compare the gateway's
 * ledger with what the PSP actually did.
 *
 * Per payment (the paid session's payment_ref): what was authorized, what
 * was captured (a capture whose outcome failed, or that the PSP reversed
 * later, is not), what was released, what was refunded (a refund whose
 * outcome failed is not), and each dispute with its state (open, won,
 * lost); with every operation on it (capture, void, refund) under the
 * Idempotency-Key it came with.  Per transfer (pay-out): its amount,
 * whether it was paid or failed, and what the PSP took back of it after
 * paying it (reversed; paid_out what it still paid out).  Written where
 * the PSP decides: the payment (events.c), its settlement (webhook.c), an
 * operation's outcome (capture.c, money.c), a dispute (money.c), and the
 * two contrary events the PSP decides by itself (capture.c: a capture at
 * its dashboard, POST /_control/captures, and the
 * webhook_capture_reversed knob), and two only the control API makes:
 *
 *   POST /_control/captures/{id}/fail: a capture that succeeded is
 *        reversed now (Adyen's CAPTURE_FAILED after CAPTURE; generic
 *        capture.failed): no longer captured
 *
 *   POST /_control/transfers/{id}/reverse: a paid transfer taken back
 *        by the PSP, in part (Stripe) or whole (money.c sends the
 *        event): what it still paid out less
 *
 *   GET /_control/books?reference=PREFIX: the books of every payment whose
 *        session reference starts with PREFIX, and every transfer whose
 *        Idempotency-Key does (README.md, "Books")
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mock_psp.h"


#define MOCK_BOOKS_MAX  65536


static pthread_mutex_t  mock_books_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t          *mock_books_payments;    /* payment_ref -> book */
static json_t          *mock_books_transfers;   /* [transfer] */


void
mock_books_reset(void)
{
    pthread_mutex_lock(&mock_books_lock);
    json_decref(mock_books_payments);
    json_decref(mock_books_transfers);
    mock_books_payments = NULL;
    mock_books_transfers = NULL;
    pthread_mutex_unlock(&mock_books_lock);
}


static json_int_t
mock_books_int(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}


static void
mock_books_add(json_t *o, const char *k, json_int_t d)
{
    json_object_set_new(o, k, json_integer(mock_books_int(o, k) + d));
}


/* the book of ref (borrowed; under the lock), NULL when unknown */
static json_t *
mock_books_find(const char *ref)
{
    if (mock_books_payments == NULL || ref == NULL) {
        return NULL;
    }

    return json_object_get(mock_books_payments, ref);
}


void
mock_books_paid(const json_t *session, int async)
{
    int          manual;
    json_t      *b;
    json_int_t   total;
    const char  *ref, *d, *reference;

    ref = json_string_value(json_object_get(session, "payment_ref"));
    if (ref == NULL) {
        return;
    }

    manual = mock_session_manual(session);
    total = mock_books_int(session, "amount_total");
    d = json_string_value(json_object_get(session, "dialect"));
    reference = json_string_value(json_object_get(session,
                                                  "client_reference_id"));

    b = json_pack("{ss sO ss ss* ss sI sI sI sI sI sI sI sI s[] s[]}",
                  "payment_ref", ref,
                  "session", json_object_get(session, "id"),
                  "dialect", d ? d : "stripe",
                  "reference", reference,
                  "capture", manual ? "manual" : "automatic",
                  "authorized", total,
                  "captured", (json_int_t) (manual || async ? 0 : total),
                  "released", (json_int_t) 0,
                  "refunded", (json_int_t) 0,
                  "disputed_open", (json_int_t) 0,
                  "disputed_lost", (json_int_t) 0,
                  "disputed_won", (json_int_t) 0,
                  "pending_settlement", (json_int_t) (async && !manual),
                  "ops", "disputes");
    if (b == NULL) {
        return;
    }

    json_object_set(b, "currency", json_object_get(session, "currency"));

    pthread_mutex_lock(&mock_books_lock);

    if (mock_books_payments == NULL) {
        mock_books_payments = json_object();
    }

    if (json_object_size(mock_books_payments) < MOCK_BOOKS_MAX
        && mock_books_find(ref) == NULL)
    {
        json_object_set(mock_books_payments, ref, b);
    }

    pthread_mutex_unlock(&mock_books_lock);

    json_decref(b);
}


void
mock_books_settled(const json_t *session)
{
    json_t      *b;
    const char  *ref;

    ref = json_string_value(json_object_get(session, "payment_ref"));

    pthread_mutex_lock(&mock_books_lock);

    b = mock_books_find(ref);
    if (b != NULL && mock_books_int(b, "pending_settlement")) {
        json_object_set_new(b, "pending_settlement", json_integer(0));
        json_object_set_new(b, "captured",
                            json_integer(mock_books_int(b, "authorized")));
    }

    pthread_mutex_unlock(&mock_books_lock);
}


/*
 * An operation's outcome, as the PSP decided it: stored is what capture.c
 * or money.c kept (kind capture, void, refund or transfer, id, nonce,
 * amount_value, payment_ref_of).  A void releases what is not captured.
 */
void
mock_books_op(const json_t *stored, int failed)
{
    json_t      *b, *op;
    json_int_t   amount, rest;
    const char  *kind, *ref;

    kind = json_string_value(json_object_get(stored, "kind"));
    ref = json_string_value(json_object_get(stored, "payment_ref_of"));
    amount = mock_books_int(stored, "amount_value");

    if (kind == NULL) {
        return;
    }

    op = json_pack("{ss sO sO sI ss}", "kind", kind,
                   "id", json_object_get(stored, "id"),
                   "nonce", json_object_get(stored, "nonce"),
                   "amount", amount,
                   "state", failed ? "failed" : "succeeded");
    if (op == NULL) {
        return;
    }

    pthread_mutex_lock(&mock_books_lock);

    if (strcmp(kind, "transfer") == 0) {
        if (mock_books_transfers == NULL) {
            mock_books_transfers = json_array();
        }

        json_object_set(op, "currency",
                        json_object_get(stored, "currency_code"));
        json_object_set(op, "dialect", json_object_get(stored, "dialect"));
        json_object_set_new(op, "state",
                            json_string(failed ? "failed" : "paid"));
        /* what the PSP took back of it after paying it, in all, and what
         * it still paid out (POST /_control/transfers/{id}/reverse) */
        json_object_set_new(op, "reversed", json_integer(0));
        json_object_set_new(op, "paid_out",
                            json_integer(failed ? 0 : amount));

        if (json_array_size(mock_books_transfers) < MOCK_BOOKS_MAX) {
            json_array_append(mock_books_transfers, op);
        }

    } else if ((b = mock_books_find(ref)) != NULL) {
        json_array_append(json_object_get(b, "ops"), op);

        if (!failed && strcmp(kind, "capture") == 0) {
            mock_books_add(b, "captured", amount);

        } else if (!failed && strcmp(kind, "refund") == 0) {
            mock_books_add(b, "refunded", amount);

        } else if (!failed && strcmp(kind, "void") == 0) {
            /* what is neither captured nor released yet */
            rest = mock_books_int(b, "authorized")
                   - mock_books_int(b, "captured")
                   - mock_books_int(b, "released");
            mock_books_add(b, "released", rest > 0 ? rest : 0);
        }
    }

    pthread_mutex_unlock(&mock_books_lock);

    json_decref(op);
}


/* A Stripe capture releases the rest of the authorization with it. */
void
mock_books_release_rest(const char *ref)
{
    json_t      *b;
    json_int_t   rest;

    pthread_mutex_lock(&mock_books_lock);

    b = mock_books_find(ref);
    if (b != NULL) {
        rest = mock_books_int(b, "authorized") - mock_books_int(b, "captured")
               - mock_books_int(b, "released");
        mock_books_add(b, "released", rest > 0 ? rest : 0);
    }

    pthread_mutex_unlock(&mock_books_lock);
}


/* A dispute opened ("opened"), won or lost; d is money.c's record. */
void
mock_books_dispute(const json_t *d, const char *state)
{
    size_t       i;
    json_t      *b, *list, *e;
    json_int_t   amount;
    const char  *id, *was;

    id = json_string_value(json_object_get(d, "id"));
    amount = mock_books_int(d, "amount");

    pthread_mutex_lock(&mock_books_lock);

    b = mock_books_find(json_string_value(json_object_get(d,
                                                          "payment_ref")));
    if (b == NULL || id == NULL) {
        pthread_mutex_unlock(&mock_books_lock);
        return;
    }

    list = json_object_get(b, "disputes");
    e = NULL;

    json_array_foreach(list, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "id")), id) == 0) {
            break;
        }
        e = NULL;
    }

    if (e == NULL) {
        e = json_pack("{ss sI ss}", "id", id, "amount", amount,
                      "state", "open");
        json_array_append_new(list, e);
        mock_books_add(b, "disputed_open", amount);
    }

    if (e != NULL && strcmp(state, "opened") != 0) {
        was = json_string_value(json_object_get(e, "state"));

        mock_books_add(b, strcmp(was, "open") == 0 ? "disputed_open"
                          : strcmp(was, "won") == 0 ? "disputed_won"
                          : "disputed_lost", -amount);
        mock_books_add(b, strcmp(state, "won") == 0 ? "disputed_won"
                                                    : "disputed_lost",
                       amount);
        json_object_set_new(e, "state", json_string(state));
    }

    pthread_mutex_unlock(&mock_books_lock);
}


/* --- the control API ------------------------------------------------------ */

static enum MHD_Result
mock_books_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return mock_send_json(c, status, json_pack("{ss}", "error", msg));
}


static int
mock_books_prefixed(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}


static enum MHD_Result
mock_books_get(struct MHD_Connection *c)
{
    size_t       i;
    json_t      *payments, *transfers, *b, *t;
    const char  *prefix, *ref;

    prefix = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                         "reference");
    if (prefix == NULL || prefix[0] == '\0') {
        return mock_books_error(c, MHD_HTTP_BAD_REQUEST,
                                "reference=PREFIX is required");
    }

    payments = json_array();
    transfers = json_array();

    pthread_mutex_lock(&mock_books_lock);

    if (mock_books_payments != NULL) {
        json_object_foreach(mock_books_payments, ref, b) {
            if (mock_books_prefixed(json_string_value(json_object_get(b,
                                                          "reference")),
                                    prefix))
            {
                json_array_append_new(payments, json_deep_copy(b));
            }
        }
    }

    json_array_foreach(mock_books_transfers, i, t) {
        if (mock_books_prefixed(json_string_value(json_object_get(t,
                                                                  "nonce")),
                                prefix))
        {
            json_array_append_new(transfers, json_deep_copy(t));
        }
    }

    pthread_mutex_unlock(&mock_books_lock);

    return mock_send_json(c, MHD_HTTP_OK,
                          json_pack("{so so}", "payments", payments,
                                    "transfers", transfers));
}


/* The contrary webhook of a capture the PSP reversed; nonce: the
 * capture's reference as its first event named it ("": made at the
 * dashboard, the session's) */
static void
mock_books_capture_event(const json_t *s, const char *id, json_int_t amount,
    const char *nonce)
{
    char                   cur[4], minor[32];
    size_t                 i;
    json_t                *obj;
    const char            *d, *ref, *reference, *c;
    mock_webhook_fault_t   wf;

    d = json_string_value(json_object_get(s, "dialect"));
    ref = json_string_value(json_object_get(s, "payment_ref"));
    reference = nonce != NULL && nonce[0] != '\0'
                ? nonce
                : json_string_value(json_object_get(s, "client_reference_id"));
    c = json_string_value(json_object_get(s, "currency"));

    for (i = 0; c != NULL && i < 3 && c[i]; i++) {
        cur[i] = (char) (c[i] >= 'a' && c[i] <= 'z' ? c[i] - 'a' + 'A'
                                                    : c[i]);
    }
    cur[i] = '\0';

    mock_store_webhook_fault(reference, &wf);
    wf.never = 0;
    wf.op_failed = 0;

    if (d != NULL && strcmp(d, "adyen") == 0) {
        /* Adyen's CAPTURE_FAILED is sent with success true */
        mock_adyen_webhook_item("CAPTURE_FAILED", id,
            ref, json_string_value(json_object_get(s, "merchant_account")),
            reference, amount, cur, 1, reference, &wf, 50);

    } else if (d != NULL && strcmp(d, "generic") == 0) {
        if (mock_format_minor(minor, sizeof(minor), amount, cur) != 0) {
            return;
        }
        obj = json_pack("{ss ss ss ss ss}", "reference", reference,
                        "capture_id", id, "payment_id", ref,
                        "amount", minor, "currency", cur);
        mock_generic_webhook_json("capture.failed", obj, reference, &wf, 50);
    }
}


/* the succeeded capture whose id or nonce is key (borrowed; under the
 * lock), its payment's book in *book */
static json_t *
mock_books_capture_find(const char *key, json_t **book)
{
    size_t       i;
    json_t      *b, *op;
    const char  *k;

    if (mock_books_payments == NULL) {
        return NULL;
    }

    json_object_foreach(mock_books_payments, k, b) {
        json_array_foreach(json_object_get(b, "ops"), i, op) {
            if (strcmp(json_string_value(json_object_get(op, "kind")),
                       "capture") == 0
                && strcmp(json_string_value(json_object_get(op, "state")),
                          "succeeded") == 0
                && (strcmp(json_string_value(json_object_get(op, "id")),
                           key) == 0
                    || strcmp(json_string_value(json_object_get(op,
                                                                "nonce")),
                              key) == 0))
            {
                *book = b;
                return op;
            }
        }
    }

    return NULL;
}


/* The capture id (or nonce) reversed in the books, its event sent by the
 * caller (capture.c's webhook_capture_reversed). */
void
mock_books_capture_reversed(const char *key)
{
    json_t  *b, *op;

    pthread_mutex_lock(&mock_books_lock);
    op = key ? mock_books_capture_find(key, &b) : NULL;
    if (op != NULL) {
        json_object_set_new(op, "state", json_string("reversed"));
        mock_books_add(b, "captured", -mock_books_int(op, "amount"));
        /* decided with its success: nothing was refunded of it yet */
        (void) mock_refund_capture_reversed(
            json_string_value(json_object_get(b, "payment_ref")),
            mock_books_int(op, "amount"), (json_int_t) 1 << 62);
    }
    pthread_mutex_unlock(&mock_books_lock);
}


/* POST /_control/captures/{id or nonce}/fail: Adyen and generic only
 * (Stripe sends no contrary event for a capture) */
static enum MHD_Result
mock_books_reverse(struct MHD_Connection *c, const char *key)
{
    char         ref[128], id[128], nonce[256];
    json_t      *b, *op, *s;
    json_int_t   amount;

    nonce[0] = '\0';

    pthread_mutex_lock(&mock_books_lock);
    op = mock_books_capture_find(key, &b);
    if (op != NULL) {
        snprintf(ref, sizeof(ref), "%s",
                 json_string_value(json_object_get(b, "payment_ref")));
    }
    pthread_mutex_unlock(&mock_books_lock);

    if (op == NULL) {
        return mock_books_error(c, MHD_HTTP_NOT_FOUND,
                                "no succeeded capture of that id or nonce");
    }

    s = mock_session_by_payment(ref);
    if (s == NULL || json_object_get(s, "dialect") == NULL) {
        json_decref(s);
        return mock_books_error(c, MHD_HTTP_BAD_REQUEST, "Stripe sends no "
                                "contrary event for a capture");
    }

    amount = 0;
    id[0] = '\0';

    pthread_mutex_lock(&mock_books_lock);
    op = mock_books_capture_find(key, &b);

    /* the PSP keeps one book per payment: a capture is reversed only
     * while what the payment's other captures hold covers its refunds
     * (those paid and those under way) and its chargebacks; else what it
     * captured is paid back or charged back already, and the PSP would
     * have refused those first */
    if (op != NULL
        && (mock_books_int(b, "captured") - mock_books_int(op, "amount")
            - mock_books_int(b, "disputed_open")
            - mock_books_int(b, "disputed_lost")
            < mock_books_int(b, "refunded")
            || mock_refund_capture_reversed(ref, mock_books_int(op, "amount"),
                   mock_books_int(b, "captured")
                   - mock_books_int(op, "amount")
                   - mock_books_int(b, "disputed_open")
                   - mock_books_int(b, "disputed_lost")) != 0))
    {
        pthread_mutex_unlock(&mock_books_lock);
        json_decref(s);
        return mock_books_error(c, MHD_HTTP_CONFLICT, "what it captured "
                                "is refunded or disputed already");
    }

    if (op != NULL) {
        amount = mock_books_int(op, "amount");
        snprintf(id, sizeof(id), "%s",
                 json_string_value(json_object_get(op, "id")));
        snprintf(nonce, sizeof(nonce), "%s",
                 json_string_value(json_object_get(op, "nonce")));
        json_object_set_new(op, "state", json_string("reversed"));
        mock_books_add(b, "captured", -amount);
    }
    pthread_mutex_unlock(&mock_books_lock);

    if (op == NULL) {
        json_decref(s);
        return mock_books_error(c, MHD_HTTP_CONFLICT, "reversed meanwhile");
    }

    mock_log("capture %s of %s (%lld) reversed after it succeeded", id, ref,
             (long long) amount);
    mock_books_capture_event(s, id, amount, nonce);
    json_decref(s);

    return mock_send_json(c, MHD_HTTP_OK, json_pack("{ss}", "id", id));
}


/*
 * amount more of the paid transfer whose id or nonce is key taken back by
 * the PSP (amount 0: all that is left of it): recorded in its book, its
 * state "reversed" once nothing of it is left paid out.  Only Stripe
 * takes a part back (transfer.reversed with amount_reversed); Adyen
 * returns a transfer whole, the generic PSP fails a pay-out whole.  0
 * with *out a copy of its book after (id, nonce, dialect, amount,
 * currency, reversed, paid_out, state), or a MOCK_REVERSE_ (mock_psp.h).
 */
int
mock_books_transfer_reverse(const char *key, json_int_t amount,
    json_t **out)
{
    int          rc;
    size_t       i;
    json_t      *t, *op;
    json_int_t   left;
    const char  *d;

    *out = NULL;

    pthread_mutex_lock(&mock_books_lock);

    t = NULL;
    json_array_foreach(mock_books_transfers, i, op) {
        if (strcmp(json_string_value(json_object_get(op, "state")), "paid")
            == 0
            && (strcmp(json_string_value(json_object_get(op, "id")), key)
                == 0
                || strcmp(json_string_value(json_object_get(op, "nonce")),
                          key) == 0))
        {
            t = op;
            break;
        }
    }

    left = t != NULL ? mock_books_int(t, "amount")
                       - mock_books_int(t, "reversed")
                     : 0;
    amount = amount > 0 ? amount : left;
    d = t != NULL ? json_string_value(json_object_get(t, "dialect")) : NULL;

    if (t == NULL) {
        rc = MOCK_REVERSE_NONE;

    } else if (amount > left) {
        rc = MOCK_REVERSE_BEYOND;

    } else if (amount != left && (d == NULL || strcmp(d, "stripe") != 0)) {
        rc = MOCK_REVERSE_WHOLE;

    } else {
        mock_books_add(t, "reversed", amount);
        mock_books_add(t, "paid_out", -amount);
        if (amount == left) {
            json_object_set_new(t, "state", json_string("reversed"));
        }
        *out = json_deep_copy(t);
        rc = *out != NULL ? 0 : MOCK_REVERSE_OOM;
    }

    pthread_mutex_unlock(&mock_books_lock);

    return rc;
}


enum MHD_Result
mock_books_control(struct MHD_Connection *c, const char *method,
    const char *path)
{
    size_t  n;
    char    key[128];

    if (strcmp(path, "books") == 0) {
        if (strcmp(method, "GET") != 0) {
            return mock_books_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                                    "GET only");
        }
        return mock_books_get(c);
    }

    if (strcmp(method, "POST") != 0) {
        return mock_books_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only");
    }

    n = strlen(path);

    if (strncmp(path, "captures/", 9) == 0 && n > 9 + 5
        && strcmp(path + n - 5, "/fail") == 0 && n - 9 - 5 < sizeof(key))
    {
        memcpy(key, path + 9, n - 9 - 5);
        key[n - 9 - 5] = '\0';
        return mock_books_reverse(c, key);
    }

    return mock_books_error(c, MHD_HTTP_NOT_FOUND, "unknown endpoint");
}


/* The succeeded captures of the payment ref, in the order they were made
 * (a capture that failed or that the PSP reversed is none): [{id, amount}],
 * a copy; empty for an automatic capture's payment or an unknown one. */
json_t *
mock_books_captures(const char *ref)
{
    size_t   i;
    json_t  *b, *op, *a;

    a = json_array();

    pthread_mutex_lock(&mock_books_lock);

    b = mock_books_find(ref);
    json_array_foreach(b != NULL ? json_object_get(b, "ops") : NULL, i, op) {
        if (strcmp(json_string_value(json_object_get(op, "kind")), "capture")
            == 0
            && strcmp(json_string_value(json_object_get(op, "state")),
                      "succeeded") == 0)
        {
            json_array_append_new(a, json_pack("{sO sO}",
                                  "id", json_object_get(op, "id"),
                                  "amount", json_object_get(op, "amount")));
        }
    }

    pthread_mutex_unlock(&mock_books_lock);

    return a;
}
