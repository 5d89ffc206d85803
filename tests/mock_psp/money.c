/*
 * Mock PSP: the money after "paid" in the three dialects.
 *
 *   Stripe   POST /v1/refunds, POST /v1/transfers (form)
 *   Adyen    POST /v71/payments/{pspReference}/refunds,
 *            POST /btl/v4/transfers (JSON, on the transfers port)
 *   generic  POST /refunds, POST /payouts (JSON)
 *
 * They go through mock_create() like the sessions: the same
 * authentication, Idempotency-Key replays, fault rules (latency, fail,
 * refuse, hang, drop after the commit) and per-key counts
 * (/_control/registrations?key=<nonce>).  After the commit each sends its
 * outcome as the dialect's signed webhook: succeeded (paid), or failed when
 * the key's rule says webhook_op_failed; webhook_never, _delay_ms,
 * _duplicate and _bad_signature apply as to payments.
 *
 * Refunds are checked against the payment: it must be a paid session's
 * (payment_ref), in its currency, and all refunds of it together at most
 * its amount.  Disputes are opened and closed from the control API
 * (/_control/disputes).  README.md documents all of it.
 */

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mock_psp.h"


#define MOCK_OP_DELAY_MS  50    /* the outcome comes after the answer */


static pthread_mutex_t  mock_money_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t          *mock_refunded;     /* payment_ref -> amount */
static json_t          *mock_reversed;     /* payment_ref -> what the PSP
                                            * reversed of its captures */
static json_t          *mock_disputes;     /* id -> dispute */
static json_t          *mock_ops;          /* the refunds and transfers the
                                            * mock processed, in order, for
                                            * the settlement reports */
static json_t          *mock_moves;        /* the money the PSP moved back
                                            * or took after them, in order:
                                            * disputes and their reversals,
                                            * refund failures, transfers
                                            * taken back (for the reports) */
static __thread const char  *mock_money_path_ref;   /* Adyen's {ref} */


void
mock_money_reset(void)
{
    pthread_mutex_lock(&mock_money_lock);
    json_decref(mock_refunded);
    json_decref(mock_reversed);
    json_decref(mock_disputes);
    json_decref(mock_ops);
    json_decref(mock_moves);
    mock_moves = NULL;
    mock_refunded = NULL;
    mock_reversed = NULL;
    mock_disputes = NULL;
    mock_ops = NULL;
    pthread_mutex_unlock(&mock_money_lock);
}


/* Reserves amount of the payment's capture: 0, or -1 when it would go
 * beyond it (what was refunded before in *before). */
static int
mock_refund_reserve(const char *ref, json_int_t amount, json_int_t total,
    json_int_t *before)
{
    int          rc;
    json_int_t   done;

    pthread_mutex_lock(&mock_money_lock);

    if (mock_refunded == NULL) {
        mock_refunded = json_object();
    }

    done = json_integer_value(json_object_get(mock_refunded, ref));
    *before = done;
    rc = -1;

    /* what the PSP reversed of the payment's captures is not refundable */
    total -= json_integer_value(json_object_get(mock_reversed, ref));

    if (amount > 0 && done + amount <= total) {
        json_object_set_new(mock_refunded, ref, json_integer(done + amount));
        rc = 0;
    }

    pthread_mutex_unlock(&mock_money_lock);

    return rc;
}


/*
 * A capture of amount of the payment reversed, decided with its refunds:
 * refused (-1) when what the payment's refunds took or are taking (those
 * accepted and not failed) is more than room, what the payment would
 * still hold captured, less its disputes; else recorded, and refunds are
 * bounded by what stays captured from now on.
 */
int
mock_refund_capture_reversed(const char *ref, json_int_t amount,
    json_int_t room)
{
    int          rc;
    json_int_t   done;

    pthread_mutex_lock(&mock_money_lock);

    if (mock_reversed == NULL) {
        mock_reversed = json_object();
    }

    done = json_integer_value(json_object_get(mock_refunded, ref));
    rc = -1;

    if (ref != NULL && done <= room) {
        json_object_set_new(mock_reversed, ref, json_integer(
            json_integer_value(json_object_get(mock_reversed, ref))
            + amount));
        rc = 0;
    }

    pthread_mutex_unlock(&mock_money_lock);

    return rc;
}


static void
mock_refund_unreserve(const char *ref, json_int_t amount)
{
    json_int_t  done;

    pthread_mutex_lock(&mock_money_lock);

    done = json_integer_value(json_object_get(mock_refunded, ref));
    if (mock_refunded != NULL && done >= amount) {
        json_object_set_new(mock_refunded, ref, json_integer(done - amount));
    }

    pthread_mutex_unlock(&mock_money_lock);
}


static char *
mock_id(const char *prefix, size_t n)
{
    char  *id;

    id = malloc(strlen(prefix) + n + 1);
    if (id == NULL) {
        return NULL;
    }

    strcpy(id, prefix);

    if (mock_random_alnum(id + strlen(prefix), n) != 0) {
        free(id);
        return NULL;
    }

    return id;
}


static const char *
mock_form_get(const mock_form_t *f, const char *key)
{
    size_t  i;

    for (i = 0; i < f->n; i++) {
        if (strcmp(f->pairs[i].key, key) == 0) {
            return f->pairs[i].value;
        }
    }

    return NULL;
}


/* A positive Stripe integer (stripe.c's rule). */
static int
mock_positive(const char *s, json_int_t *out)
{
    int64_t  v;

    if (s == NULL || mock_parse_int64(s, &v) != 0 || v <= 0) {
        return -1;
    }

    *out = (json_int_t) v;
    return 0;
}


/*
 * The paid session of the payment (a copy), with amount reserved of its
 * capture; currency NULL: the payment's.  NULL with inv set otherwise.
 */
static json_t *
mock_paid_payment(const char *ref, const char *currency, json_int_t amount,
    mock_invalid_t *inv, const char *param)
{
    json_t      *s;
    json_int_t   before, total;
    const char  *cur, *paid;

    s = ref ? mock_session_by_payment(ref) : NULL;
    paid = s ? json_string_value(json_object_get(s, "payment_status")) : NULL;

    if (s == NULL || paid == NULL || strcmp(paid, "paid") != 0) {
        json_decref(s);
        mock_invalid(inv, "resource_missing", param, "No such payment: '%s'",
                     ref ? ref : "");
        return NULL;
    }

    cur = json_string_value(json_object_get(s, "currency"));

    if (cur == NULL || (currency != NULL && strcasecmp(cur, currency) != 0)) {
        json_decref(s);
        mock_invalid(inv, "currency_mismatch", "currency",
                     "The refund's currency is not the payment's.");
        return NULL;
    }

    /* a manual capture's payment: what was captured of it */
    total = json_integer_value(json_object_get(s,
                                   json_object_get(s, "amount_captured")
                                   ? "amount_captured" : "amount_total"));

    if (mock_refund_reserve(ref, amount, total, &before) != 0) {
        json_decref(s);
        mock_invalid(inv, "amount_too_large", "amount",
                     "Refund amount (%lld) is greater than the unrefunded "
                     "amount on the payment (%lld).", (long long) amount,
                     (long long) (total - before));
        return NULL;
    }

    return s;
}


/* Stores what the webhook needs beside the answer's object. */
static json_t *
mock_op_stored(json_t *obj, const char *kind, const char *dialect,
    const char *nonce, const char *payment_ref, json_int_t amount,
    const char *currency, const json_t *payment, char **response)
{
    json_t  *stored;

    *response = json_dumps(obj, JSON_COMPACT);

    stored = json_pack("{ss ss so ss sI ss}",
                       "kind", kind, "dialect", dialect, "object", obj,
                       "nonce", nonce ? nonce : "",
                       "amount_value", amount, "currency_code", currency);

    if (stored == NULL || *response == NULL) {
        json_decref(stored);
        free(*response);
        *response = NULL;
        return NULL;
    }

    /* the store keys it by "id"; sessions' fields stay absent */
    json_object_set(stored, "id", json_object_get(obj, "id"));

    if (payment_ref != NULL) {
        json_object_set_new(stored, "payment_ref_of", json_string(payment_ref));
    }

    if (payment != NULL) {
        json_object_set(stored, "account",
                        json_object_get(payment, "merchant_account"));
        json_object_set(stored, "merchant_reference",
                        json_object_get(payment, "client_reference_id"));
    }

    return stored;
}


/* Stripe's metadata[KEY] fields of a form, as the object it echoes back */
static json_t *
mock_form_metadata(const mock_form_t *form)
{
    size_t   i, n;
    json_t  *md;

    md = json_object();

    for (i = 0; md != NULL && i < form->n; i++) {
        n = strlen(form->pairs[i].key);

        if (n > 10 && strncmp(form->pairs[i].key, "metadata[", 9) == 0
            && form->pairs[i].key[n - 1] == ']')
        {
            json_object_setn_new(md, form->pairs[i].key + 9, n - 10,
                                 json_string(form->pairs[i].value));
        }
    }

    return md;
}


json_t *
mock_money_stripe_refund_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    char         err[256], *id;
    json_t      *pay, *obj, *stored;
    json_int_t   amount;
    const char  *pi, *nonce, *reason, *cur;
    mock_form_t  form;

    (void) fault;

    if (mock_form_parse(body, len, &form, err, sizeof(err)) != 0) {
        mock_invalid(inv, "parameter_invalid", "", "%s", err);
        return NULL;
    }

    stored = NULL;
    pi = mock_form_get(&form, "payment_intent");
    nonce = mock_form_get(&form, "metadata[nonce]");
    reason = mock_form_get(&form, "reason");

    if (pi == NULL) {
        mock_invalid(inv, "parameter_missing", "payment_intent",
                     "Missing required param: payment_intent.");
        goto done;
    }

    if (mock_positive(mock_form_get(&form, "amount"), &amount) != 0) {
        mock_invalid(inv, "parameter_invalid_integer", "amount",
                     "Invalid positive integer");
        goto done;
    }

    pay = mock_paid_payment(pi, NULL, amount, inv, "payment_intent");
    if (pay == NULL) {
        goto done;
    }

    cur = json_string_value(json_object_get(pay, "currency"));
    id = mock_id("re_", 24);

    obj = id ? json_pack("{ss ss sI ss ss ss so}", "id", id,
                         "object", "refund", "amount", amount,
                         "currency", cur, "payment_intent", pi,
                         "status", "pending",
                         "metadata", mock_form_metadata(&form))
             : NULL;
    free(id);

    if (obj != NULL && reason != NULL) {
        json_object_set_new(obj, "reason", json_string(reason));
    }

    stored = obj ? mock_op_stored(obj, "refund", "stripe", nonce, pi, amount,
                                  cur, pay, response)
                 : NULL;

    if (stored == NULL) {
        mock_refund_unreserve(pi, amount);
        mock_invalid(inv, NULL, "", "out of memory");
    }

    json_decref(pay);

done:

    mock_form_free(&form);
    return stored;
}


json_t *
mock_money_stripe_transfer_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    char         err[256], *id;
    json_t      *obj, *stored;
    json_int_t   amount;
    const char  *dest, *nonce, *cur, *group;
    mock_form_t  form;

    (void) fault;

    if (mock_form_parse(body, len, &form, err, sizeof(err)) != 0) {
        mock_invalid(inv, "parameter_invalid", "", "%s", err);
        return NULL;
    }

    stored = NULL;
    dest = mock_form_get(&form, "destination");
    nonce = mock_form_get(&form, "metadata[nonce]");
    cur = mock_form_get(&form, "currency");
    group = mock_form_get(&form, "transfer_group");

    if (dest == NULL || strncmp(dest, "acct_", 5) != 0 || dest[5] == '\0') {
        mock_invalid(inv, "resource_missing", "destination",
                     "No such destination: '%s'", dest ? dest : "");
        goto done;
    }

    /* Stripe writes currencies in lower case */
    if (cur == NULL || strlen(cur) != 3
        || !islower((unsigned char) cur[0]) || !islower((unsigned char) cur[1])
        || !islower((unsigned char) cur[2]))
    {
        mock_invalid(inv, "parameter_invalid", "currency",
                     "Invalid currency");
        goto done;
    }

    if (mock_positive(mock_form_get(&form, "amount"), &amount) != 0) {
        mock_invalid(inv, "parameter_invalid_integer", "amount",
                     "Invalid positive integer");
        goto done;
    }

    id = mock_id("tr_", 24);
    obj = id ? json_pack("{ss ss sI ss ss ss so}", "id", id,
                         "object", "transfer", "amount", amount,
                         "currency", cur, "destination", dest,
                         "transfer_group", group ? group : "",
                         "metadata", mock_form_metadata(&form))
             : NULL;
    free(id);

    stored = obj ? mock_op_stored(obj, "transfer", "stripe", nonce, NULL,
                                  amount, cur, NULL, response)
                 : NULL;
    if (stored == NULL) {
        mock_invalid(inv, NULL, "", "out of memory");
    }

done:

    mock_form_free(&form);
    return stored;
}


/* --- Adyen ---------------------------------------------------------------- */

static json_t *
mock_json_body(const char *body, size_t len, mock_invalid_t *inv)
{
    json_t  *root;

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(root)) {
        json_decref(root);
        mock_invalid(inv, "invalid_json", "", "the body is not a JSON "
                     "object");
        return NULL;
    }

    return root;
}


/* {"value": N, "currency": "EUR"} */
static int
mock_adyen_amount(const json_t *root, json_int_t *value, const char **cur)
{
    json_t  *a;

    a = json_object_get(root, "amount");
    *cur = json_string_value(json_object_get(a, "currency"));

    if (!json_is_integer(json_object_get(a, "value")) || *cur == NULL
        || !mock_currency_valid(*cur))
    {
        return -1;
    }

    *value = json_integer_value(json_object_get(a, "value"));

    return *value > 0 ? 0 : -1;
}


json_t *
mock_money_adyen_refund_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    char         ref[17];
    json_t      *root, *pay, *obj, *stored;
    json_int_t   value;
    const char  *cur, *reference, *account, *pref;

    (void) fault;

    pref = mock_money_path_ref;

    root = mock_json_body(body, len, inv);
    if (root == NULL) {
        return NULL;
    }

    stored = NULL;
    reference = json_string_value(json_object_get(root, "reference"));
    account = json_string_value(json_object_get(root, "merchantAccount"));

    if (mock_adyen_amount(root, &value, &cur) != 0 || reference == NULL
        || account == NULL)
    {
        mock_invalid(inv, "validation", "amount", "Required field "
                     "'amount', 'reference' or 'merchantAccount' is not "
                     "provided or not valid.");
        goto done;
    }

    pay = mock_paid_payment(pref, cur, value, inv, "paymentPspReference");
    if (pay == NULL) {
        goto done;
    }

    if (mock_random_digits(ref, 16) != 0) {
        mock_refund_unreserve(pref, value);
        json_decref(pay);
        goto done;
    }

    obj = json_pack("{ss ss ss ss ss s{sIss}}", "merchantAccount", account,
                    "paymentPspReference", pref, "pspReference", ref,
                    "reference", reference, "status", "received",
                    "amount", "value", value, "currency", cur);

    stored = obj ? mock_op_stored(obj, "refund", "adyen", reference, pref,
                                  value, cur, pay, response)
                 : NULL;

    if (stored != NULL) {
        json_object_set_new(stored, "id", json_string(ref));
        json_object_set_new(stored, "account", json_string(account));

    } else {
        mock_refund_unreserve(pref, value);
        mock_invalid(inv, NULL, "", "out of memory");
    }

    json_decref(pay);

done:

    json_decref(root);
    return stored;
}


json_t *
mock_money_adyen_transfer_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    char        *id;
    json_t      *root, *obj, *stored;
    json_int_t   value;
    const char  *cur, *reference, *dest;

    (void) fault;

    root = mock_json_body(body, len, inv);
    if (root == NULL) {
        return NULL;
    }

    stored = NULL;
    reference = json_string_value(json_object_get(root, "reference"));
    dest = json_string_value(json_object_get(json_object_get(root,
                                                             "counterparty"),
                                             "balanceAccountId"));

    if (mock_adyen_amount(root, &value, &cur) != 0 || reference == NULL
        || dest == NULL || dest[0] == '\0')
    {
        mock_invalid(inv, "validation", "counterparty", "Required field "
                     "'amount', 'reference' or 'counterparty' is not "
                     "provided or not valid.");
        goto done;
    }

    id = mock_id("", 20);
    obj = id ? json_pack("{ss ss ss s{sIss} s{ss}}", "id", id,
                         "status", "authorised", "reference", reference,
                         "amount", "value", value, "currency", cur,
                         "counterparty", "balanceAccountId", dest)
             : NULL;
    free(id);

    stored = obj ? mock_op_stored(obj, "transfer", "adyen", reference, NULL,
                                  value, cur, NULL, response)
                 : NULL;
    if (stored == NULL) {
        mock_invalid(inv, NULL, "", "out of memory");
    }

done:

    json_decref(root);
    return stored;
}


/* --- generic -------------------------------------------------------------- */

json_t *
mock_money_generic_refund_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    char        *id;
    json_t      *root, *pay, *obj, *stored;
    json_int_t   amount;
    const char  *cur, *reference, *payment;

    (void) fault;

    root = mock_json_body(body, len, inv);
    if (root == NULL) {
        return NULL;
    }

    stored = NULL;
    reference = json_string_value(json_object_get(root, "reference"));
    payment = json_string_value(json_object_get(root, "payment_id"));
    cur = json_string_value(json_object_get(root, "currency"));

    if (reference == NULL || payment == NULL || cur == NULL
        || mock_generic_decimal(json_string_value(json_object_get(root,
                                                                 "amount")),
                                cur, &amount) != 0)
    {
        mock_invalid(inv, "invalid_request", "amount", "reference, "
                     "payment_id, amount and currency are required");
        goto done;
    }

    if (mock_generic_metadata_ok(root, inv) != 0) {
        goto done;
    }

    pay = mock_paid_payment(payment, cur, amount, inv, "payment_id");
    if (pay == NULL) {
        goto done;
    }

    id = mock_id("grf_", 20);
    obj = id ? json_pack("{ss ss}", "id", id, "status", "pending") : NULL;
    free(id);

    stored = obj ? mock_op_stored(obj, "refund", "generic", reference,
                                  payment, amount, cur, pay, response)
                 : NULL;

    if (stored != NULL && json_object_get(root, "metadata") != NULL) {
        json_object_set(stored, "metadata", json_object_get(root, "metadata"));
    }

    if (stored == NULL) {
        mock_refund_unreserve(payment, amount);
        mock_invalid(inv, NULL, "", "out of memory");
    }

    json_decref(pay);

done:

    json_decref(root);
    return stored;
}


json_t *
mock_money_generic_payout_build(const char *body, size_t len,
    const mock_fault_t *fault, mock_invalid_t *inv, char **response)
{
    char        *id;
    json_t      *root, *obj, *stored;
    json_int_t   amount;
    const char  *cur, *reference, *dest;

    (void) fault;

    root = mock_json_body(body, len, inv);
    if (root == NULL) {
        return NULL;
    }

    stored = NULL;
    reference = json_string_value(json_object_get(root, "reference"));
    dest = json_string_value(json_object_get(root, "destination"));
    cur = json_string_value(json_object_get(root, "currency"));

    if (reference == NULL || dest == NULL || cur == NULL
        || mock_generic_decimal(json_string_value(json_object_get(root,
                                                                 "amount")),
                                cur, &amount) != 0)
    {
        mock_invalid(inv, "invalid_request", "amount", "reference, "
                     "destination, amount and currency are required");
        goto done;
    }

    if (mock_generic_metadata_ok(root, inv) != 0) {
        goto done;
    }

    id = mock_id("gpo_", 20);
    obj = id ? json_pack("{ss ss}", "id", id, "status", "pending") : NULL;
    free(id);

    stored = obj ? mock_op_stored(obj, "transfer", "generic", reference,
                                  NULL, amount, cur, NULL, response)
                 : NULL;

    if (stored != NULL && json_object_get(root, "metadata") != NULL) {
        json_object_set(stored, "metadata", json_object_get(root, "metadata"));
    }
    if (stored == NULL) {
        mock_invalid(inv, NULL, "", "out of memory");
    }

done:

    json_decref(root);
    return stored;
}


/* --- the outcomes ----------------------------------------------------------- */

static void
mock_upper(char *out, const char *in, size_t size)
{
    size_t  i;

    for (i = 0; i + 1 < size && in[i]; i++) {
        out[i] = (char) toupper((unsigned char) in[i]);
    }

    out[i] = '\0';
}


/* The refunds and transfers processed (not the failed ones), a copy:
 * [{kind, dialect, id, nonce, amount_value, currency_code,
 *   payment_ref_of?}] in the order they were committed. */
json_t *
mock_money_ops(void)
{
    json_t  *a;

    pthread_mutex_lock(&mock_money_lock);
    a = mock_ops ? json_deep_copy(mock_ops) : json_array();
    pthread_mutex_unlock(&mock_money_lock);

    return a;
}


/* The moves (mock_moves), a copy: [{kind: dispute, dispute_won,
 * refund_failure or payout_failure, dialect, id (the dispute's, refund's or
 * transfer's id at the PSP), nonce (ours: the payment's, refund's or
 * transfer's), payment_ref?, amount (the PSP's minor units, positive),
 * currency, n (its sequence number of the object: 1, 2, ...)}] in the order
 * the PSP made them. */
json_t *
mock_money_moves(void)
{
    json_t  *a;

    pthread_mutex_lock(&mock_money_lock);
    a = mock_moves ? json_deep_copy(mock_moves) : json_array();
    pthread_mutex_unlock(&mock_money_lock);

    return a;
}


static void
mock_money_move(const char *kind, const char *dialect, const char *id,
    const char *nonce, const char *pref, json_int_t amount,
    const char *currency)
{
    size_t       i, n;
    json_t      *m, *e;

    if (kind == NULL || dialect == NULL || id == NULL || currency == NULL) {
        return;
    }

    pthread_mutex_lock(&mock_money_lock);
    if (mock_moves == NULL) {
        mock_moves = json_array();
    }
    n = 1;
    json_array_foreach(mock_moves, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "id")), id) == 0) {
            n++;
        }
    }
    m = json_pack("{ss ss ss ss sI ss sI}", "kind", kind, "dialect", dialect,
                  "id", id, "nonce", nonce ? nonce : "", "amount", amount,
                  "currency", currency, "n", (json_int_t) n);
    if (m != NULL && pref != NULL) {
        json_object_set_new(m, "payment_ref", json_string(pref));
    }
    if (m != NULL) {
        json_array_append_new(mock_moves, m);
    }
    pthread_mutex_unlock(&mock_money_lock);
}


/* What the moves of the object id moved so far, in all. */
static json_int_t
mock_money_moved(const char *id)
{
    size_t       i;
    json_t      *e;
    json_int_t   sum = 0;

    pthread_mutex_lock(&mock_money_lock);
    json_array_foreach(mock_moves, i, e) {
        if (id != NULL
            && strcmp(json_string_value(json_object_get(e, "id")), id) == 0)
        {
            sum += json_integer_value(json_object_get(e, "amount"));
        }
    }
    pthread_mutex_unlock(&mock_money_lock);

    return sum;
}


/* A dispute's money at the PSP as it goes to state: its withdrawal when
 * it opens (or an inquiry is escalated), back when it is won, withdrawn
 * again when it is lost after a win (Adyen's SecondChargeback); a loss of
 * an open dispute moves nothing (the money was withdrawn as it opened). */
static void
mock_dispute_move(json_t *d, const char *state)
{
    const char  *was, *kind;

    pthread_mutex_lock(&mock_money_lock);
    was = json_string_value(json_object_get(d, "money_state"));
    kind = NULL;
    if (strcmp(state, "opened") == 0) {
        kind = was == NULL ? "dispute" : NULL;
        state = "open";
    } else if (was != NULL && strcmp(state, "won") == 0
               && strcmp(was, "won") != 0)
    {
        kind = "dispute_won";
    } else if (was != NULL && strcmp(state, "lost") == 0
               && strcmp(was, "won") == 0)
    {
        kind = "dispute";
    }
    if (was == NULL || strcmp(was, state) != 0) {
        json_object_set_new(d, "money_state", json_string(state));
    }
    pthread_mutex_unlock(&mock_money_lock);

    if (kind != NULL) {
        mock_money_move(kind, json_string_value(json_object_get(d, "dialect")),
            json_string_value(json_object_get(d, "id")),
            json_string_value(json_object_get(d, "merchant_reference")),
            json_string_value(json_object_get(d, "payment_ref")),
            json_integer_value(json_object_get(d, "amount")),
            json_string_value(json_object_get(d, "currency")));
    }
}


static void
mock_money_op_record(const json_t *stored)
{
    json_t  *op;

    op = json_pack("{sO sO sO sO sO sO}",
                   "kind", json_object_get(stored, "kind"),
                   "dialect", json_object_get(stored, "dialect"),
                   "id", json_object_get(stored, "id"),
                   "nonce", json_object_get(stored, "nonce"),
                   "amount_value", json_object_get(stored, "amount_value"),
                   "currency_code", json_object_get(stored, "currency_code"));
    if (op == NULL) {
        return;
    }
    if (json_object_get(stored, "payment_ref_of") != NULL) {
        json_object_set(op, "payment_ref_of",
                        json_object_get(stored, "payment_ref_of"));
    }

    pthread_mutex_lock(&mock_money_lock);
    if (mock_ops == NULL) {
        mock_ops = json_array();
    }
    json_array_append_new(mock_ops, op);
    pthread_mutex_unlock(&mock_money_lock);
}


/* The operation committed: its outcome as the dialect's signed webhook. */
void
mock_money_committed(const json_t *stored, const char *key)
{
    int                    failed, refund;
    char                   cur[4], amount[32];
    json_t                *obj;
    json_int_t             value;
    const char            *dialect, *id, *nonce, *pref;
    mock_webhook_fault_t   wf;

    mock_store_webhook_fault(key, &wf);

    dialect = json_string_value(json_object_get(stored, "dialect"));
    refund = strcmp(json_string_value(json_object_get(stored, "kind")),
                    "refund") == 0;
    id = json_string_value(json_object_get(stored, "id"));
    nonce = json_string_value(json_object_get(stored, "nonce"));
    pref = json_string_value(json_object_get(stored, "payment_ref_of"));
    value = json_integer_value(json_object_get(stored, "amount_value"));
    mock_upper(cur, json_string_value(json_object_get(stored,
                                                      "currency_code")),
               sizeof(cur));
    failed = wf.op_failed;

    if (failed && refund && pref != NULL) {
        mock_refund_unreserve(pref, value);
    }

    /* processed at the PSP (a lost webhook does not change that).  A
     * refund that failed was taken from the balance and given back: Stripe
     * and the generic PSP report the refund and its failure, Adyen (its
     * REFUND_FAILED; a refund refused with success false moved nothing)
     * Refunded and RefundedReversed */
    if (!failed) {
        mock_money_op_record(stored);
    } else if (refund && (strcmp(dialect, "adyen") != 0
                          || wf.refund_failed_code))
    {
        mock_money_op_record(stored);
        mock_money_move("refund_failure", dialect, id, nonce, pref, value,
                        json_string_value(json_object_get(stored,
                                                          "currency_code")));
    }

    mock_books_op(stored, failed);

    if (wf.never) {
        mock_log("%s %s: no webhook (webhook_never)",
                 refund ? "refund" : "transfer", id);
        return;
    }

    if (strcmp(dialect, "stripe") == 0) {
        obj = json_deep_copy(json_object_get(stored, "object"));

        if (refund && wf.charge_refunded) {
            /* the charge, with its refunds listed */
            char  *ch;

            json_object_set_new(obj, "status",
                                json_string(failed ? "failed" : "succeeded"));
            ch = mock_id("ch_", 24);
            mock_stripe_webhook_object("charge.refunded",
                json_pack("{ss ss ss sI s{ss s[o]}}", "id", ch ? ch : "ch_x",
                          "object", "charge", "payment_intent", pref,
                          "amount_refunded", value, "refunds",
                          "object", "list", "data", obj),
                nonce, &wf, MOCK_OP_DELAY_MS);
            free(ch);

        } else if (refund) {
            json_object_set_new(obj, "status",
                                json_string(failed ? "failed" : "succeeded"));
            mock_stripe_webhook_object("refund.updated", obj, nonce, &wf,
                                       MOCK_OP_DELAY_MS);
        } else {
            if (failed) {
                json_object_set_new(obj, "reversed", json_true());
            }
            mock_stripe_webhook_object(failed ? "transfer.failed"
                                              : "transfer.created",
                                       obj, nonce, &wf, MOCK_OP_DELAY_MS);
        }

    } else if (strcmp(dialect, "adyen") == 0) {
        if (refund) {
            /* a failure: REFUND success false, or REFUND_FAILED (which
             * Adyen sends with success true) */
            mock_adyen_webhook_item(failed && wf.refund_failed_code
                                    ? "REFUND_FAILED" : "REFUND", id, pref,
                json_string_value(json_object_get(stored, "account")),
                nonce, value, cur, !failed || wf.refund_failed_code, nonce,
                &wf, MOCK_OP_DELAY_MS);
        } else {
            obj = json_deep_copy(json_object_get(stored, "object"));
            json_object_set_new(obj, "status",
                                json_string(failed ? "failed" : "booked"));
            mock_adyen_webhook_transfer(obj, nonce, &wf, MOCK_OP_DELAY_MS);
        }

    } else {
        if (mock_format_minor(amount, sizeof(amount), value, cur) != 0) {
            return;
        }

        obj = json_pack("{ss ss ss ss}", "reference", nonce,
                        refund ? "refund_id" : "payout_id", id,
                        "amount", amount, "currency", cur);
        if (obj != NULL && refund && pref != NULL) {
            json_object_set_new(obj, "payment_id", json_string(pref));
        }

        mock_generic_webhook_json(refund ? (failed ? "refund.failed"
                                                   : "refund.succeeded")
                                         : (failed ? "payout.failed"
                                                   : "payout.paid"),
                                  obj, nonce, &wf, MOCK_OP_DELAY_MS);
    }
}


/* --- routes ----------------------------------------------------------------- */

enum MHD_Result
mock_money_route(struct MHD_Connection *c, const char *method,
    const char *url, mock_request_t *r, int *handled)
{
    size_t           n;
    char             ref[80];
    enum MHD_Result  rc;

    *handled = 0;

    if (strcmp(method, "POST") != 0) {
        return MHD_NO;
    }

    *handled = 1;

    if (strcmp(url, "/v1/refunds") == 0) {
        return mock_stripe_refund(c, r);
    }

    if (strcmp(url, "/v1/transfers") == 0) {
        return mock_stripe_transfer(c, r);
    }

    if (mock_conf.adyen_secret != NULL) {
        n = strlen(url);

        if (strncmp(url, "/v71/payments/", 14) == 0 && n > 14 + 8
            && strcmp(url + n - 8, "/refunds") == 0
            && n - 14 - 8 < sizeof(ref))
        {
            memcpy(ref, url + 14, n - 14 - 8);
            ref[n - 14 - 8] = '\0';

            mock_money_path_ref = ref;
            rc = mock_adyen_refund(c, r);
            mock_money_path_ref = NULL;

            return rc;
        }
    }

    if (mock_conf.generic_secret != NULL) {
        if (strcmp(url, "/refunds") == 0) {
            return mock_generic_refund(c, r);
        }

        if (strcmp(url, "/payouts") == 0) {
            return mock_generic_payout(c, r);
        }
    }

    *handled = 0;
    return MHD_NO;
}


/* --- disputes --------------------------------------------------------------- */

static enum MHD_Result
mock_money_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return mock_send_json(c, status, json_pack("{ss}", "error", msg));
}


/*
 * Sends the dispute's event(s) for state: "opened", "won" or "lost"; for an
 * inquiry (d's "inquiry": Stripe's warning_needs_response, Adyen's
 * NOTIFICATION_OF_CHARGEBACK alone; no money withdrawn), "inquiry",
 * "escalated" (the chargeback: Stripe's charge.dispute.updated and
 * charge.dispute.funds_withdrawn with status needs_response, Adyen's
 * CHARGEBACK) or "inquiry_closed" (Stripe's charge.dispute.closed with
 * warning_closed, Adyen's ISSUER_RESPONSE_TIMEFRAME_EXPIRED).
 */
static void
mock_dispute_send(const json_t *d, const char *state)
{
    char                   cur[4], amount[32];
    json_t                *obj;
    json_int_t             value;
    const char            *dialect, *id, *pref, *subject;
    mock_webhook_fault_t   wf;

    dialect = json_string_value(json_object_get(d, "dialect"));
    id = json_string_value(json_object_get(d, "id"));
    pref = json_string_value(json_object_get(d, "payment_ref"));
    subject = json_string_value(json_object_get(d, "merchant_reference"));
    value = json_integer_value(json_object_get(d, "amount"));
    mock_upper(cur, json_string_value(json_object_get(d, "currency")),
               sizeof(cur));

    mock_store_webhook_fault(subject ? subject : "", &wf);
    wf.never = 0;
    wf.op_failed = 0;

    if (strcmp(dialect, "stripe") == 0) {
        const char  *status, *type, *cur_l;

        cur_l = json_string_value(json_object_get(d, "currency"));

        /* a chargeback's money is withdrawn as it opens: Stripe sends
         * created and funds_withdrawn */
        status = strcmp(state, "opened") == 0 ? "needs_response"
                 : strcmp(state, "inquiry") == 0 ? "warning_needs_response"
                 : strcmp(state, "escalated") == 0 ? "needs_response"
                 : strcmp(state, "inquiry_closed") == 0 ? "warning_closed"
                 : state;
        type = strcmp(state, "opened") == 0
               || strcmp(state, "inquiry") == 0 ? "charge.dispute.created"
               : strcmp(state, "escalated") == 0 ? "charge.dispute.updated"
               : "charge.dispute.closed";

        obj = json_pack("{ss ss sI ss ss ss ss}", "id", id,
                        "object", "dispute", "amount", value,
                        "currency", cur_l, "payment_intent", pref,
                        "status", status, "reason", "fraudulent");
        mock_stripe_webhook_object(type, obj, id, &wf, 0);

        if (strcmp(state, "opened") == 0 || strcmp(state, "escalated") == 0)
        {
            obj = json_pack("{ss ss sI ss ss ss ss}", "id", id,
                            "object", "dispute", "amount", value,
                            "currency", cur_l, "payment_intent", pref,
                            "status", "needs_response",
                            "reason", "fraudulent");
            mock_stripe_webhook_object("charge.dispute.funds_withdrawn", obj,
                                       id, &wf, 100);
        }

    } else if (strcmp(dialect, "adyen") == 0) {
        const char  *account, *mref;

        account = json_string_value(json_object_get(d, "account"));
        mref = json_string_value(json_object_get(d, "merchant_reference"));

        if (strcmp(state, "inquiry") == 0) {
            mock_adyen_webhook_item("NOTIFICATION_OF_CHARGEBACK", NULL, pref,
                                    account, mref, value, cur, 1, id, &wf, 0);

        } else if (strcmp(state, "escalated") == 0) {
            mock_adyen_webhook_item("CHARGEBACK", NULL, pref, account, mref,
                                    value, cur, 1, id, &wf, 0);

        } else if (strcmp(state, "inquiry_closed") == 0) {
            mock_adyen_webhook_item("ISSUER_RESPONSE_TIMEFRAME_EXPIRED",
                                    NULL, pref, account, mref, value, cur, 1,
                                    id, &wf, 0);

        } else if (strcmp(state, "opened") == 0) {
            mock_adyen_webhook_item("NOTIFICATION_OF_CHARGEBACK", NULL, pref,
                                    account, mref, value, cur, 1, id, &wf, 0);
            mock_adyen_webhook_item("CHARGEBACK", NULL, pref, account, mref,
                                    value, cur, 1, id, &wf, 300);
        } else {
            mock_adyen_webhook_item(strcmp(state, "won") == 0
                                    ? "CHARGEBACK_REVERSED"
                                    : "SECOND_CHARGEBACK",
                                    NULL, pref, account, mref, value, cur, 1,
                                    id, &wf, 0);
        }

    } else {
        if (mock_format_minor(amount, sizeof(amount), value, cur) != 0) {
            return;
        }

        obj = json_pack("{ss ss ss ss ss}", "dispute_id", id,
                        "payment_id", pref,
                        "reference", subject ? subject : "",
                        "amount", amount, "currency", cur);
        mock_generic_webhook_json(strcmp(state, "opened") == 0
                                  ? "dispute.opened"
                                  : strcmp(state, "won") == 0
                                  ? "dispute.won" : "dispute.lost",
                                  obj, id, &wf, 0);
    }
}


/* --- a transfer taken back ---------------------------------------------- */

/*
 * The event of a paid transfer the PSP took back (t: its book after, with
 * reversed the total taken back so far), about the transfer as it was
 * made: Stripe transfer.reversed (the transfer with amount_reversed, and
 * reversed true once whole), Adyen balancePlatform.transfer.updated with
 * status returned, generic payout.failed.  The knobs of the rule matching
 * its nonce apply (delay, duplicates, a bad signature), as to the
 * transfer's own outcome; never its webhook_never or webhook_op_failed.
 */
static void
mock_transfer_reversed_send(const json_t *t)
{
    char                   cur[4], amount[32];
    json_t                *rec, *obj;
    json_int_t             value, reversed;
    const char            *dialect, *id, *nonce;
    mock_webhook_fault_t   wf;

    dialect = json_string_value(json_object_get(t, "dialect"));
    id = json_string_value(json_object_get(t, "id"));
    nonce = json_string_value(json_object_get(t, "nonce"));
    value = json_integer_value(json_object_get(t, "amount"));
    reversed = json_integer_value(json_object_get(t, "reversed"));
    mock_upper(cur, json_string_value(json_object_get(t, "currency")),
               sizeof(cur));

    if (dialect == NULL || id == NULL || nonce == NULL) {
        return;
    }

    mock_store_webhook_fault(nonce, &wf);
    wf.never = 0;
    wf.op_failed = 0;

    if (strcmp(dialect, "generic") == 0) {
        if (mock_format_minor(amount, sizeof(amount), value, cur) != 0) {
            return;
        }
        obj = json_pack("{ss ss ss ss}", "reference", nonce,
                        "payout_id", id, "amount", amount, "currency", cur);
        mock_generic_webhook_json("payout.failed", obj, nonce, &wf,
                                  MOCK_OP_DELAY_MS);
        return;
    }

    rec = mock_record_get(id);
    obj = json_deep_copy(json_object_get(rec, "object"));
    json_decref(rec);

    if (obj == NULL) {
        mock_log("transfer %s: not kept, no event for its reversal", id);
        return;
    }

    if (strcmp(dialect, "stripe") == 0) {
        json_object_set_new(obj, "amount_reversed", json_integer(reversed));
        json_object_set_new(obj, "reversed",
                            json_boolean(reversed >= value));
        mock_stripe_webhook_object("transfer.reversed", obj, nonce, &wf,
                                   MOCK_OP_DELAY_MS);
    } else {
        json_object_set_new(obj, "status", json_string("returned"));
        mock_adyen_webhook_transfer(obj, nonce, &wf, MOCK_OP_DELAY_MS);
    }
}


/*
 * POST /_control/transfers/{id or nonce}/reverse {"amount": N (the PSP's
 * minor units; default all that is left)}: a paid transfer taken back,
 * in part (Stripe only) or whole; booked, then its event sent.
 */
static enum MHD_Result
mock_transfer_reverse(struct MHD_Connection *c, const char *key,
    const json_t *root)
{
    int          rc;
    json_t      *t, *a;
    json_int_t   amount;

    a = json_object_get(root, "amount");
    if (a != NULL && (!json_is_integer(a) || json_integer_value(a) <= 0)) {
        return mock_money_error(c, MHD_HTTP_BAD_REQUEST,
                                "amount is a positive integer (minor "
                                "units)");
    }
    amount = a != NULL ? json_integer_value(a) : 0;

    rc = mock_books_transfer_reverse(key, amount, &t);

    switch (rc) {
    case 0:
        break;
    case MOCK_REVERSE_NONE:
        return mock_money_error(c, MHD_HTTP_NOT_FOUND, "no paid transfer of "
                                "that id or nonce");
    case MOCK_REVERSE_BEYOND:
        return mock_money_error(c, MHD_HTTP_BAD_REQUEST, "more than is left "
                                "of the transfer");
    case MOCK_REVERSE_WHOLE:
        return mock_money_error(c, MHD_HTTP_BAD_REQUEST, "this PSP takes a "
                                "transfer back whole only (Adyen returns "
                                "it, the generic PSP fails it): no amount, "
                                "or all that is left");
    default:
        return mock_money_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "out of memory");
    }

    mock_log("transfer %s (%s) reversed: %lld of %lld in all",
             json_string_value(json_object_get(t, "id")),
             json_string_value(json_object_get(t, "nonce")),
             (long long) json_integer_value(json_object_get(t, "reversed")),
             (long long) json_integer_value(json_object_get(t, "amount")));

    /* what this reversal took back: what the total taken back grew by */
    mock_money_move("payout_failure",
        json_string_value(json_object_get(t, "dialect")),
        json_string_value(json_object_get(t, "id")),
        json_string_value(json_object_get(t, "nonce")), NULL,
        json_integer_value(json_object_get(t, "reversed"))
        - mock_money_moved(json_string_value(json_object_get(t, "id"))),
        json_string_value(json_object_get(t, "currency")));
    mock_transfer_reversed_send(t);

    return mock_send_json(c, MHD_HTTP_OK, t);
}


/*
 * POST /_control/disputes {"payment_ref": "...", "amount": N (the PSP's
 * minor units; default the payment's whole amount)} -> {"id": "..."}: the
 * opening event(s) are sent.  POST /_control/disputes/{id}/close
 * {"outcome": "won" | "lost"}: the closing event.  POST
 * /_control/transfers/{id or nonce}/reverse: mock_transfer_reverse.
 */
enum MHD_Result
mock_money_control(struct MHD_Connection *c, const char *method,
    const char *path, mock_request_t *r)
{
    char          *id;
    json_t        *root, *pay, *d;
    json_int_t     amount;
    int            inquiry;
    const char    *ref, *outcome, *dialect;
    char           did[256];
    size_t         n;
    enum MHD_Result  rc_send;

    if (strcmp(method, "POST") != 0) {
        return mock_money_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only");
    }

    /* transfers/{id or nonce}/reverse: the body may be empty */
    n = strlen(path);
    if (strncmp(path, "transfers/", 10) == 0) {
        if (n < 10 + 9 || strcmp(path + n - 8, "/reverse") != 0
            || n - 10 - 8 >= sizeof(did))
        {
            return mock_money_error(c, MHD_HTTP_NOT_FOUND,
                                    "unknown endpoint");
        }
        memcpy(did, path + 10, n - 10 - 8);
        did[n - 10 - 8] = '\0';

        root = r->len > 0 ? json_loadb(r->body, r->len, 0, NULL)
                          : json_object();
        if (!json_is_object(root)) {
            json_decref(root);
            return mock_money_error(c, MHD_HTTP_BAD_REQUEST,
                                    "a JSON object, or no body");
        }

        rc_send = mock_transfer_reverse(c, did, root);
        json_decref(root);
        return rc_send;
    }

    root = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return mock_money_error(c, MHD_HTTP_BAD_REQUEST, "a JSON object");
    }

    if (strcmp(path, "disputes") == 0) {
        ref = json_string_value(json_object_get(root, "payment_ref"));
        pay = ref ? mock_session_by_payment(ref) : NULL;

        if (pay == NULL) {
            json_decref(root);
            return mock_money_error(c, MHD_HTTP_NOT_FOUND, "no such payment");
        }

        amount = json_is_integer(json_object_get(root, "amount"))
                 ? json_integer_value(json_object_get(root, "amount"))
                 : json_integer_value(json_object_get(pay, "amount_total"));

        dialect = json_string_value(json_object_get(pay, "dialect"));
        dialect = dialect ? dialect : "stripe";

        id = mock_id(strcmp(dialect, "stripe") == 0 ? "dp_"
                     : strcmp(dialect, "adyen") == 0 ? "cb_" : "gdp_", 20);

        inquiry = json_is_true(json_object_get(root, "inquiry"));

        if (inquiry && strcmp(dialect, "generic") == 0) {
            free(id);
            json_decref(pay);
            json_decref(root);
            return mock_money_error(c, MHD_HTTP_BAD_REQUEST,
                                    "no inquiries in the generic dialect");
        }

        /* Stripe and generic sessions have no merchant account */
        d = id ? json_pack("{ss ss ss sI sO sO sO* sb}", "id", id,
                           "dialect", dialect, "payment_ref", ref,
                           "amount", amount,
                           "currency", json_object_get(pay, "currency"),
                           "merchant_reference",
                           json_object_get(pay, "client_reference_id"),
                           "account", json_object_get(pay,
                                                      "merchant_account"),
                           "inquiry", inquiry)
               : NULL;
        free(id);
        json_decref(pay);
        json_decref(root);

        if (d == NULL) {
            return mock_money_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                    "out of memory");
        }

        pthread_mutex_lock(&mock_money_lock);
        if (mock_disputes == NULL) {
            mock_disputes = json_object();
        }
        json_object_set(mock_disputes,
                        json_string_value(json_object_get(d, "id")), d);
        pthread_mutex_unlock(&mock_money_lock);

        /* an inquiry withdraws nothing until it is escalated */
        if (!inquiry) {
            mock_books_dispute(d, "opened");
            mock_dispute_move(d, "opened");
        }

        mock_dispute_send(d, inquiry ? "inquiry" : "opened");

        root = json_pack("{sO}", "id", json_object_get(d, "id"));
        json_decref(d);

        return mock_send_json(c, MHD_HTTP_OK, root);
    }

    /* disputes/{id}/close */
    n = strlen(path);

    if (strncmp(path, "disputes/", 9) != 0 || n < 9 + 7
        || strcmp(path + n - 6, "/close") != 0 || n - 9 - 6 >= sizeof(did))
    {
        json_decref(root);
        return mock_money_error(c, MHD_HTTP_NOT_FOUND, "unknown endpoint");
    }

    memcpy(did, path + 9, n - 9 - 6);
    did[n - 9 - 6] = '\0';

    outcome = json_string_value(json_object_get(root, "outcome"));

    pthread_mutex_lock(&mock_money_lock);
    d = json_incref(json_object_get(mock_disputes, did));
    pthread_mutex_unlock(&mock_money_lock);

    if (d == NULL) {
        json_decref(root);
        return mock_money_error(c, MHD_HTTP_NOT_FOUND, "no such dispute");
    }

    /* an inquiry: "escalate" (the chargeback, withdrawn now; a dispute
     * won or lost later) or "inquiry_closed" (nothing ever withdrawn) */
    if (json_is_true(json_object_get(d, "inquiry"))) {
        if (outcome == NULL
            || (strcmp(outcome, "escalate") != 0
                && strcmp(outcome, "inquiry_closed") != 0))
        {
            json_decref(d);
            json_decref(root);
            return mock_money_error(c, MHD_HTTP_BAD_REQUEST,
                                    "an inquiry's outcome is escalate or "
                                    "inquiry_closed");
        }

        if (strcmp(outcome, "escalate") == 0) {
            pthread_mutex_lock(&mock_money_lock);
            json_object_set_new(d, "inquiry", json_false());
            pthread_mutex_unlock(&mock_money_lock);
            mock_books_dispute(d, "opened");
            mock_dispute_move(d, "opened");
            mock_dispute_send(d, "escalated");

        } else {
            mock_dispute_send(d, "inquiry_closed");
        }

        json_decref(d);
        json_decref(root);

        return mock_send_json(c, MHD_HTTP_OK, json_pack("{sb}", "ok", 1));
    }

    if (outcome == NULL
        || (strcmp(outcome, "won") != 0 && strcmp(outcome, "lost") != 0))
    {
        json_decref(d);
        json_decref(root);
        return mock_money_error(c, MHD_HTTP_BAD_REQUEST,
                                "outcome is won or lost");
    }

    mock_books_dispute(d, outcome);
    mock_dispute_move(d, outcome);
    mock_dispute_send(d, outcome);
    json_decref(d);
    json_decref(root);

    return mock_send_json(c, MHD_HTTP_OK, json_pack("{sb}", "ok", 1));
}
