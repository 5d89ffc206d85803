/*
 * ngx_payments core: the merchant API's JSON bodies (view.h).
 *
 * Every body is built field by field from known values, never by passing
 * the database's JSON through: an internal column added to a SQL function
 * cannot leak into an answer, and a shape the code does not expect is a
 * NULL (a 500 for the adapter) rather than a half-right answer.  Bodies
 * are dumped compact in insertion order, so the same inputs give the same
 * bytes (the 201 is stored and replayed byte for byte).
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <payments/json_dump.h>
#include <payments/money.h>
#include <payments/time.h>
#include <payments/view.h>


#define PAY_VIEW_DB_MAX   (4 * 1024 * 1024)


/* A builder that remembers the first failure, checked once at the end. */
typedef struct {
    int  failed;
} pay_view_t;


static void
pay_view_set(pay_view_t *vw, json_t *obj, const char *key, json_t *v)
{
    if (obj == NULL || v == NULL || json_object_set_new(obj, key, v) != 0) {
        if (obj == NULL) {
            json_decref(v);
        }

        vw->failed = 1;
    }
}


static void
pay_view_append(pay_view_t *vw, json_t *arr, json_t *v)
{
    if (arr == NULL || v == NULL || json_array_append_new(arr, v) != 0) {
        if (arr == NULL) {
            json_decref(v);
        }

        vw->failed = 1;
    }
}


static char *
pay_view_dump(pay_view_t *vw, json_t *root)
{
    char  *s;

    s = NULL;

    if (!vw->failed && root != NULL) {
        s = pay_json_dumps(root);
    }

    json_decref(root);

    return s;
}


static int
pay_status_valid(const char *s)
{
    return strcmp(s, "NOT_STARTED") == 0 || strcmp(s, "EXECUTING") == 0
           || strcmp(s, "AUTHORIZED") == 0 || strcmp(s, "SUCCESS") == 0
           || strcmp(s, "FAILED") == 0 || strcmp(s, "REVIEW") == 0;
}


/* the stored risk verdict as the checkout's view shows it: verdict,
 * score, reason, source and review, and after_payment (the verdict asked
 * again once paid: verdict, score, reason, source, decided_at) when there
 * is one; nulls and any other member left out */

static json_t *
pay_view_risk_members(json_t *in, const char *const *keys, size_t n)
{
    size_t   i;
    json_t  *out, *v;

    out = json_object();
    if (out == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        v = json_object_get(in, keys[i]);

        if ((json_is_string(v) || json_is_integer(v))
            && json_object_set(out, keys[i], v) != 0)
        {
            json_decref(out);
            return NULL;
        }
    }

    return out;
}


static json_t *
pay_view_risk(json_t *in)
{
    json_t  *out, *after, *v;

    static const char  *keys[] = { "verdict", "score", "reason", "source",
                                   "review" };
    static const char  *after_keys[] = { "verdict", "score", "reason",
                                         "source", "decided_at" };

    out = pay_view_risk_members(in, keys, sizeof(keys) / sizeof(keys[0]));
    if (out == NULL) {
        return NULL;
    }

    v = json_object_get(in, "after_payment");

    if (json_is_object(v)
        && json_string_length(json_object_get(v, "verdict")) > 0)
    {
        after = pay_view_risk_members(v, after_keys,
                                      sizeof(after_keys)
                                      / sizeof(after_keys[0]));

        if (after == NULL
            || json_object_set_new(out, "after_payment", after) != 0)
        {
            json_decref(out);
            return NULL;
        }
    }

    return out;
}


/* "10.00" from minor units and a currency code; NULL if either is off. */
static json_t *
pay_view_amount(int64_t minor, const char *currency)
{
    char                   buf[32];
    const pay_currency_t  *cur;

    cur = pay_currency_find(currency, strlen(currency));

    if (cur == NULL || minor <= 0
        || pay_amount_format(minor, cur->exponent, buf, sizeof(buf)) < 0)
    {
        return NULL;
    }

    return json_string(buf);
}


static json_t *
pay_view_time(int64_t t)
{
    char  buf[21];

    if (t <= 0 || pay_time_format(t, buf) != 0) {
        return NULL;
    }

    return json_string(buf);
}


/* metadata as the answers show it: a copy of an object of strings, {}
 * when absent or null; NULL (the view fails) for anything else */
static json_t *
pay_view_metadata(const json_t *md)
{
    const char  *key;
    json_t      *val;

    if (md == NULL || json_is_null(md)) {
        return json_object();
    }

    if (!json_is_object(md)) {
        return NULL;
    }

    json_object_foreach((json_t *) md, key, val) {
        if (!json_is_string(val)) {
            return NULL;
        }
    }

    return json_deep_copy(md);
}


char *
pay_registration_json(const pay_registration_view_t *v)
{
    size_t                 i;
    json_t                *root, *orders, *o;
    pay_view_t             vw;
    const pay_checkout_t  *co;

    if (v == NULL || v->co == NULL || v->status == NULL
        || (strcmp(v->status, "EXECUTING") != 0
            && strcmp(v->status, "FAILED") != 0
            && strcmp(v->status, "REVIEW") != 0))
    {
        return NULL;
    }

    co = v->co;

    /* a save without a charge has no orders */
    if ((co->setup ? co->norders != 0
                   : (co->norders == 0 || co->orders == NULL))
        || strnlen(co->currency, sizeof(co->currency)) != 3)
    {
        return NULL;
    }

    vw.failed = 0;
    root = json_object();

    pay_view_set(&vw, root, "checkout_id", json_string(co->checkout_id));
    pay_view_set(&vw, root, "status", json_string(v->status));

    if (co->setup) {
        pay_view_set(&vw, root, "mode", json_string("setup"));
        pay_view_set(&vw, root, "currency", json_string(co->currency));
    }

    pay_view_set(&vw, root, "is_payment_done", json_false());
    pay_view_set(&vw, root, "psp", json_string(co->psp));
    pay_view_set(&vw, root, "capture",
                 json_string(co->manual_capture ? "manual" : "automatic"));

    if (v->psp_token != NULL) {
        pay_view_set(&vw, root, "psp_token", json_string(v->psp_token));
    }

    pay_view_set(&vw, root, "expires_at", pay_view_time(v->expires_at));

    if (v->pay_url != NULL) {
        pay_view_set(&vw, root, "pay_url", json_string(v->pay_url));
    }

    /* as GET /v1/checkouts/{id} shows it (checkout_failure.sql) */
    if (strcmp(v->status, "FAILED") == 0) {
        pay_view_set(&vw, root, "failure",
                     json_pack("{s:s, s:s}", "code", "registration_refused",
                               "message",
                               v->failure != NULL && v->failure[0] != '\0'
                               ? v->failure : "the PSP refused the checkout"));
    }

    orders = json_array();

    for (i = 0; i < co->norders; i++) {
        o = json_object();
        pay_view_set(&vw, o, "payment_order_id",
                     json_string(co->orders[i].id));
        pay_view_set(&vw, o, "seller_account",
                     json_string(co->orders[i].seller));
        pay_view_set(&vw, o, "amount",
                     pay_view_amount(co->orders[i].amount, co->currency));
        pay_view_set(&vw, o, "currency", json_string(co->currency));
        pay_view_set(&vw, o, "status", json_string(v->status));
        pay_view_append(&vw, orders, o);
    }

    pay_view_set(&vw, root, "metadata", pay_view_metadata(co->metadata));

    /* a save asked for (the method shows in GET /v1/payment_methods once
     * the PSP stored it), or a saved method charged off-session */
    if (co->save_usage != NULL) {
        pay_view_set(&vw, root, "save_payment_method",
                     json_pack("{s:s, s:s}", "customer", co->save_customer,
                               "usage", co->save_usage));
    }

    if (co->payment_method[0] != '\0') {
        pay_view_set(&vw, root, "payment_method",
                     json_string(co->payment_method));
        pay_view_set(&vw, root, "off_session", json_true());
    }

    /* the shopper is needed (an off-session charge their card's issuer
     * wants them to authenticate): at pay_url */
    if (v->next_action != NULL) {
        pay_view_set(&vw, root, "next_action", json_string(v->next_action));
    }

    pay_view_set(&vw, root, "payment_orders", orders);

    return pay_view_dump(&vw, root);
}


/* Reading the database's JSON --------------------------------------------- */


static json_t *
pay_db_load(const char *db_json, size_t len)
{
    json_t  *root;

    if (db_json == NULL || len == 0 || len > PAY_VIEW_DB_MAX) {
        return NULL;
    }

    root = json_loadb(db_json, len, JSON_REJECT_DUPLICATES, NULL);

    if (root != NULL && !json_is_object(root)) {
        json_decref(root);
        return NULL;
    }

    return root;
}


/* A non-empty string member (no NUL inside), or NULL. */
static const char *
pay_db_str(const json_t *obj, const char *key)
{
    json_t  *v;

    v = json_object_get(obj, key);

    if (!json_is_string(v) || json_string_length(v) == 0
        || strlen(json_string_value(v)) != json_string_length(v))
    {
        return NULL;
    }

    return json_string_value(v);
}


/* json_string() of a string found, NULL (a failure) when it was not. */
static json_t *
pay_jstr(const char *s)
{
    return s != NULL ? json_string(s) : NULL;
}


/* A status member, one of the four. */
static const char *
pay_db_status(const json_t *obj, const char *key)
{
    const char  *s;

    s = pay_db_str(obj, key);

    return (s != NULL && pay_status_valid(s)) ? s : NULL;
}


/* Copies a string-or-null member: 1 for a string, 0 for null or absent
 * (nothing set), -1 for anything else. */
static int
pay_db_opt_str(pay_view_t *vw, const json_t *obj, const char *key,
    json_t *out, const char *out_key, int keep_null)
{
    json_t  *v;

    v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v)) {
        if (keep_null) {
            pay_view_set(vw, out, out_key, json_null());
        }

        return 0;
    }

    if (pay_db_str(obj, key) == NULL) {
        return -1;
    }

    pay_view_set(vw, out, out_key, json_string(json_string_value(v)));

    return 1;
}


/* A timestamp: epoch seconds become RFC 3339, a string (the database's
 * own rendering) is kept. */
static json_t *
pay_db_time(const json_t *obj, const char *key)
{
    json_t  *v;

    v = json_object_get(obj, key);

    if (json_is_integer(v)) {
        return pay_view_time(json_integer_value(v));
    }

    if (pay_db_str(obj, key) != NULL) {
        return json_string(json_string_value(v));
    }

    return NULL;
}


/* amount_minor + currency -> "amount" and "currency" on out. */
static void
pay_db_amount(pay_view_t *vw, const json_t *obj, json_t *out)
{
    json_t      *v;
    const char  *cur;

    v = json_object_get(obj, "amount_minor");
    cur = pay_db_str(obj, "currency");

    if (!json_is_integer(v) || cur == NULL) {
        vw->failed = 1;
        return;
    }

    pay_view_set(vw, out, "amount",
                 pay_view_amount(json_integer_value(v), cur));
    pay_view_set(vw, out, "currency", json_string(cur));
}


static void pay_db_order_money(pay_view_t *vw, const json_t *db,
    json_t *root);


char *
pay_order_view_json(const char *db_json, size_t len)
{
    json_t      *db, *root;
    pay_view_t   vw;

    db = pay_db_load(db_json, len);
    if (db == NULL) {
        return NULL;
    }

    vw.failed = 0;
    root = json_object();

    pay_view_set(&vw, root, "payment_order_id",
                 pay_jstr(pay_db_str(db, "payment_order_id")));
    pay_view_set(&vw, root, "checkout_id",
                 pay_jstr(pay_db_str(db, "checkout_id")));
    pay_view_set(&vw, root, "status",
                 pay_jstr(pay_db_status(db, "status")));
    pay_db_amount(&vw, db, root);
    pay_view_set(&vw, root, "seller_account",
                 pay_jstr(pay_db_str(db, "seller_account")));
    pay_view_set(&vw, root, "psp",
                 pay_jstr(pay_db_str(db, "psp")));

    /* null before the PSP answered or when it refused */
    if (pay_db_opt_str(&vw, db, "psp_token", root, "psp_token", 1) < 0) {
        vw.failed = 1;
    }

    pay_view_set(&vw, root, "created_at", pay_db_time(db, "created_at"));
    pay_view_set(&vw, root, "updated_at", pay_db_time(db, "updated_at"));

    pay_db_order_money(&vw, db, root);

    json_decref(db);

    return pay_view_dump(&vw, root);
}


static json_t *
pay_db_checkout_orders(pay_view_t *vw, const json_t *db, int setup)
{
    size_t   i;
    json_t  *in, *ord, *out, *o;

    in = json_object_get(db, "payment_orders");

    /* a save without a charge has none, every other checkout some */
    if (!json_is_array(in) || (json_array_size(in) == 0) != setup) {
        vw->failed = 1;
        return NULL;
    }

    out = json_array();

    json_array_foreach(in, i, ord) {
        if (!json_is_object(ord)) {
            vw->failed = 1;
            break;
        }

        o = json_object();
        pay_view_set(vw, o, "payment_order_id",
                     pay_jstr(pay_db_str(ord, "payment_order_id")));
        pay_view_set(vw, o, "seller_account",
                     pay_jstr(pay_db_str(ord, "seller_account")));
        pay_db_amount(vw, ord, o);
        pay_view_set(vw, o, "status", pay_jstr(pay_db_status(ord, "status")));
        pay_view_append(vw, out, o);
    }

    return out;
}


/*
 * The saved methods' fields of a checkout, as its 201 has them:
 * "save_payment_method" {customer, usage}; "payment_method" with
 * "off_session": true; "next_action": "authenticate" while such a charge
 * is EXECUTING with a pay link.  An older database's answer has none.
 */
static void
pay_db_checkout_methods(pay_view_t *vw, const json_t *db, json_t *root,
    const char *status, const char *pay_url)
{
    json_t      *v;
    const char  *customer, *usage, *pm;

    v = json_object_get(db, "save_payment_method");

    if (v != NULL && !json_is_null(v)) {
        customer = json_is_object(v) ? pay_db_str(v, "customer") : NULL;
        usage = json_is_object(v) ? pay_db_str(v, "usage") : NULL;

        if (customer == NULL || usage == NULL) {
            vw->failed = 1;

        } else {
            pay_view_set(vw, root, "save_payment_method",
                         json_pack("{s:s, s:s}", "customer", customer,
                                   "usage", usage));
        }
    }

    v = json_object_get(db, "payment_method");

    if (v == NULL || json_is_null(v)) {
        return;
    }

    pm = pay_db_str(db, "payment_method");

    if (pm == NULL) {
        vw->failed = 1;
        return;
    }

    pay_view_set(vw, root, "payment_method", json_string(pm));
    pay_view_set(vw, root, "off_session", json_true());

    if (pay_url != NULL && status != NULL
        && strcmp(status, "EXECUTING") == 0)
    {
        pay_view_set(vw, root, "next_action", json_string("authenticate"));
    }
}


/*
 * A routed checkout's route and the PSPs it was bound to, in order:
 * {"route", "psps": [{"psp", "moved_on" (why it left it; absent for the
 * one that holds the session), "at"}]}; NULL when it was not routed.
 */
static json_t *
pay_db_checkout_routing(pay_view_t *vw, const json_t *db)
{
    size_t   i;
    json_t  *in, *list, *p, *out, *psps, *o;

    in = json_object_get(db, "routing");

    if (in == NULL || json_is_null(in)) {
        return NULL;
    }

    list = json_object_get(in, "psps");

    if (!json_is_object(in) || pay_db_str(in, "route") == NULL
        || !json_is_array(list) || json_array_size(list) == 0)
    {
        vw->failed = 1;
        return NULL;
    }

    psps = json_array();

    json_array_foreach(list, i, p) {
        if (!json_is_object(p) || pay_db_str(p, "psp") == NULL) {
            vw->failed = 1;
            break;
        }

        o = json_object();
        pay_view_set(vw, o, "psp", pay_jstr(pay_db_str(p, "psp")));

        if (pay_db_opt_str(vw, p, "moved_on", o, "moved_on", 0) < 0) {
            vw->failed = 1;
        }

        pay_view_set(vw, o, "at", pay_db_time(p, "at"));
        pay_view_append(vw, psps, o);
    }

    out = json_object();
    pay_view_set(vw, out, "route", pay_jstr(pay_db_str(in, "route")));
    pay_view_set(vw, out, "psps", psps);

    return out;
}


static json_t *
pay_db_checkout_events(pay_view_t *vw, const json_t *db)
{
    size_t       i;
    json_t      *in, *ev, *out, *o, *from;
    const char  *s;

    in = json_object_get(db, "events");

    /* a checkout that never moved has no events: null or absent is [] */
    if (in == NULL || json_is_null(in)) {
        return json_array();
    }

    if (!json_is_array(in)) {
        vw->failed = 1;
        return NULL;
    }

    out = json_array();

    json_array_foreach(in, i, ev) {
        if (!json_is_object(ev)) {
            vw->failed = 1;
            break;
        }

        o = json_object();
        pay_view_set(vw, o, "at", pay_db_time(ev, "at"));

        /* an event may concern the checkout as a whole */
        if (pay_db_opt_str(vw, ev, "payment_order_id", o, "payment_order_id",
                           1) < 0)
        {
            vw->failed = 1;
        }

        /* "from" is null for a row's first state */
        from = json_object_get(ev, "from");
        s = pay_db_status(ev, "from");

        if (s != NULL) {
            pay_view_set(vw, o, "from", json_string(s));

        } else if (from == NULL || json_is_null(from)) {
            pay_view_set(vw, o, "from", json_null());

        } else {
            vw->failed = 1;
        }

        pay_view_set(vw, o, "to", pay_jstr(pay_db_status(ev, "to")));
        pay_view_set(vw, o, "source", pay_jstr(pay_db_str(ev, "source")));
        pay_view_append(vw, out, o);
    }

    return out;
}


char *
pay_checkout_view_json(const char *db_json, size_t len, const char *pay_url)
{
    int          setup;
    json_t      *db, *root, *v;
    pay_view_t   vw;
    const char  *status, *cur;

    db = pay_db_load(db_json, len);
    if (db == NULL) {
        return NULL;
    }

    vw.failed = 0;
    root = json_object();

    status = pay_db_status(db, "status");

    /* the top-level currency is not part of the answer (each order has
     * its own), but when present it must be one */
    v = json_object_get(db, "currency");
    cur = pay_db_str(db, "currency");

    if (v != NULL && !json_is_null(v)
        && (cur == NULL || pay_currency_find(cur, strlen(cur)) == NULL))
    {
        vw.failed = 1;
    }

    /* the fields of the 201 body, in its order */
    pay_view_set(&vw, root, "checkout_id",
                 pay_jstr(pay_db_str(db, "checkout_id")));
    pay_view_set(&vw, root, "status", pay_jstr(status));
    pay_view_set(&vw, root, "is_payment_done",
                 json_boolean(status != NULL
                              && strcmp(status, "SUCCESS") == 0));
    pay_view_set(&vw, root, "psp", pay_jstr(pay_db_str(db, "psp")));

    /* a save without a charge says so, with its currency (it has no
     * orders to carry one); an older database's answer has no mode */
    v = json_object_get(db, "mode");
    setup = json_is_string(v) && strcmp(json_string_value(v), "setup") == 0;

    if (setup) {
        pay_view_set(&vw, root, "mode", json_string("setup"));
        pay_view_set(&vw, root, "currency", pay_jstr(cur));
    }

    /* how it is captured; an older database's answer has no such field */
    v = json_object_get(db, "capture");

    if (v == NULL || json_is_null(v)) {
        pay_view_set(&vw, root, "capture", json_string("automatic"));

    } else if (json_is_string(v)
               && (strcmp(json_string_value(v), "automatic") == 0
                   || strcmp(json_string_value(v), "manual") == 0))
    {
        pay_view_set(&vw, root, "capture", json_string(json_string_value(v)));

    } else {
        vw.failed = 1;
    }

    if (pay_db_opt_str(&vw, db, "psp_token", root, "psp_token", 0) < 0) {
        vw.failed = 1;
    }

    v = json_object_get(db, "expires_at");

    if (v != NULL && !json_is_null(v)) {
        pay_view_set(&vw, root, "expires_at", pay_db_time(db, "expires_at"));
    }

    if (pay_url != NULL) {
        pay_view_set(&vw, root, "pay_url", json_string(pay_url));
    }

    /* why it failed, {code, message}, as in the 201 and checkout.failed;
     * a failure recorded for a checkout that is not FAILED (paid after
     * it) is not shown */
    v = json_object_get(db, "failure");

    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v)
            || json_string_length(json_object_get(v, "code")) == 0
            || !json_is_string(json_object_get(v, "message")))
        {
            vw.failed = 1;

        } else if (status != NULL && strcmp(status, "FAILED") == 0) {
            pay_view_set(&vw, root, "failure",
                         json_pack("{s:O, s:O}",
                                   "code", json_object_get(v, "code"),
                                   "message", json_object_get(v, "message")));
        }
    }

    /* paid after it had failed (the PSP's success came last): said only
     * when so, beside its FAILED -> SUCCESS events */
    v = json_object_get(db, "paid_after_failure");

    if (v != NULL && !json_is_null(v) && !json_is_boolean(v)) {
        vw.failed = 1;

    } else if (json_is_true(v) && status != NULL
               && strcmp(status, "SUCCESS") == 0)
    {
        pay_view_set(&vw, root, "paid_after_failure", json_true());
    }

    /* the risk check's verdict: {verdict, score, reason, source, review},
     * nulls left out */
    v = json_object_get(db, "risk");

    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v)
            || json_string_length(json_object_get(v, "verdict")) == 0)
        {
            vw.failed = 1;

        } else {
            pay_view_set(&vw, root, "risk", pay_view_risk(v));
        }
    }

    pay_view_set(&vw, root, "metadata",
                 pay_view_metadata(json_object_get(db, "metadata")));

    /* as the 201 said: a save asked for, a saved method charged
     * off-session, and the shopper wanted at the pay link (an off-session
     * charge their card's issuer wants them to authenticate) */
    pay_db_checkout_methods(&vw, db, root, status, pay_url);

    pay_view_set(&vw, root, "payment_orders",
                 pay_db_checkout_orders(&vw, db, setup));
    pay_view_set(&vw, root, "events", pay_db_checkout_events(&vw, db));

    /* routed: the route and each PSP tried, with why it moved on */
    v = pay_db_checkout_routing(&vw, db);
    if (v != NULL) {
        pay_view_set(&vw, root, "routing", v);
    }

    json_decref(db);

    return pay_view_dump(&vw, root);
}


char *
pay_status_view_json(const char *checkout_id, const char *status)
{
    json_t      *root;
    pay_view_t   vw;
    const char  *s;

    if (checkout_id == NULL || status == NULL) {
        return NULL;
    }

    /* the pending page learns the outcome and nothing else; an
     * authorization (manual capture) is the shopper's payment done */
    if (strcmp(status, "SUCCESS") == 0 || strcmp(status, "AUTHORIZED") == 0) {
        s = "paid";

    } else if (strcmp(status, "FAILED") == 0) {
        s = "failed";

    } else if (strcmp(status, "EXECUTING") == 0
               || strcmp(status, "NOT_STARTED") == 0
               || strcmp(status, "REVIEW") == 0)
    {
        s = "pending";

    } else {
        return NULL;
    }

    vw.failed = 0;
    root = json_object();

    pay_view_set(&vw, root, "checkout_id", json_string(checkout_id));
    pay_view_set(&vw, root, "status", json_string(s));
    pay_view_set(&vw, root, "is_payment_done",
                 json_boolean(strcmp(s, "paid") == 0));

    return pay_view_dump(&vw, root);
}


/* The money after "paid" ------------------------------------------------- */


static int
pay_word_in(const char *s, const char *const *words)
{
    for ( /* void */ ; s != NULL && *words != NULL; words++) {
        if (strcmp(s, *words) == 0) {
            return 1;
        }
    }

    return 0;
}


static const char *const  pay_refund_statuses[] =
    { "PENDING", "SUCCEEDED", "FAILED", NULL };
static const char *const  pay_dispute_statuses[] =
    { "OPEN", "WON", "LOST", NULL };
static const char *const  pay_payout_statuses[] =
    { "PENDING", "PAID", "FAILED", NULL };


/* "-3.00", "0.00", "12.50": any sign, for balances and commissions. */
static json_t *
pay_view_amount_signed(int64_t minor, const char *currency)
{
    char                   buf[40];
    const pay_currency_t  *cur;

    cur = pay_currency_find(currency, strlen(currency));

    if (cur == NULL || minor == INT64_MIN) {
        return NULL;
    }

    buf[0] = '-';

    if (pay_amount_format(minor < 0 ? -minor : minor, cur->exponent,
                          buf + 1, sizeof(buf) - 1) < 0)
    {
        return NULL;
    }

    return json_string(minor < 0 ? buf : buf + 1);
}


/* key_minor (an integer) in currency as out_key */
static void
pay_db_signed(pay_view_t *vw, const json_t *obj, const char *key,
    const char *currency, json_t *out, const char *out_key)
{
    json_t  *v;

    v = json_object_get(obj, key);

    if (!json_is_integer(v) || currency == NULL) {
        vw->failed = 1;
        return;
    }

    pay_view_set(vw, out, out_key,
                 pay_view_amount_signed(json_integer_value(v), currency));
}


static json_t *
pay_db_word(const json_t *obj, const char *key, const char *const *words)
{
    const char  *s;

    s = pay_db_str(obj, key);

    return pay_word_in(s, words) ? json_string(s) : NULL;
}


/* an array member of objects: each through one, into a new array */
static json_t *
pay_db_list(pay_view_t *vw, const json_t *db, const char *key,
    json_t *(*one)(pay_view_t *vw, const json_t *in))
{
    size_t   i;
    json_t  *in, *item, *out;

    in = json_object_get(db, key);

    if (in == NULL || json_is_null(in)) {
        return json_array();
    }

    if (!json_is_array(in)) {
        vw->failed = 1;
        return NULL;
    }

    out = json_array();

    json_array_foreach(in, i, item) {
        if (!json_is_object(item)) {
            vw->failed = 1;
            break;
        }

        pay_view_append(vw, out, one(vw, item));
    }

    return out;
}


static json_t *
pay_db_refund(pay_view_t *vw, const json_t *in)
{
    json_t  *o;

    o = json_object();
    pay_view_set(vw, o, "refund_id", pay_jstr(pay_db_str(in, "refund_id")));
    pay_view_set(vw, o, "status",
                 pay_db_word(in, "status", pay_refund_statuses));
    pay_db_amount(vw, in, o);

    if (pay_db_opt_str(vw, in, "reason", o, "reason", 0) < 0
        || pay_db_opt_str(vw, in, "psp_refund_id", o, "psp_refund_id", 1) < 0)
    {
        vw->failed = 1;
    }

    pay_view_set(vw, o, "metadata",
                 pay_view_metadata(json_object_get(in, "metadata")));

    pay_view_set(vw, o, "created_at", pay_db_time(in, "created_at"));
    pay_view_set(vw, o, "updated_at", pay_db_time(in, "updated_at"));

    return o;
}


static json_t *
pay_db_dispute(pay_view_t *vw, const json_t *in)
{
    json_t  *o;

    o = json_object();
    pay_view_set(vw, o, "dispute_id", pay_jstr(pay_db_str(in, "dispute_id")));
    pay_view_set(vw, o, "status",
                 pay_db_word(in, "status", pay_dispute_statuses));
    /* the order's part of the dispute; 0 when it took none */
    pay_db_signed(vw, in, "amount_minor", pay_db_str(in, "currency"), o,
                  "amount");
    pay_view_set(vw, o, "currency", pay_jstr(pay_db_str(in, "currency")));
    pay_view_set(vw, o, "psp_dispute_id",
                 pay_jstr(pay_db_str(in, "psp_dispute_id")));
    pay_view_set(vw, o, "created_at", pay_db_time(in, "created_at"));
    pay_view_set(vw, o, "updated_at", pay_db_time(in, "updated_at"));

    return o;
}


static json_t *
pay_db_capture(pay_view_t *vw, const json_t *in)
{
    json_t  *o;

    static const char *const  kinds[] = { "capture", "void", NULL };

    o = json_object();
    pay_view_set(vw, o, "capture_id", pay_jstr(pay_db_str(in, "capture_id")));
    pay_view_set(vw, o, "kind", pay_db_word(in, "kind", kinds));
    pay_view_set(vw, o, "status",
                 pay_db_word(in, "status", pay_refund_statuses));
    pay_db_amount(vw, in, o);

    if (pay_db_opt_str(vw, in, "psp_ref", o, "psp_ref", 1) < 0) {
        vw->failed = 1;
    }

    pay_view_set(vw, o, "created_at", pay_db_time(in, "created_at"));
    pay_view_set(vw, o, "updated_at", pay_db_time(in, "updated_at"));

    return o;
}


static void
pay_db_order_money(pay_view_t *vw, const json_t *db, json_t *root)
{
    json_t  *v;

    /* a manual-capture order: what is captured of it, and its captures
     * and voids */
    v = json_object_get(db, "captured_minor");

    if (v != NULL && !json_is_null(v)) {
        pay_db_signed(vw, db, "captured_minor", pay_db_str(db, "currency"),
                      root, "captured");
        pay_view_set(vw, root, "captures", pay_db_list(vw, db, "captures",
                                                       pay_db_capture));
    }

    /* booked with a SUCCESS: what the platform keeps of the order */
    v = json_object_get(db, "commission_minor");

    if (v != NULL && !json_is_null(v)) {
        pay_db_signed(vw, db, "commission_minor", pay_db_str(db, "currency"),
                      root, "commission");
    }

    pay_view_set(vw, root, "refunds", pay_db_list(vw, db, "refunds",
                                                  pay_db_refund));
    pay_view_set(vw, root, "disputes", pay_db_list(vw, db, "disputes",
                                                   pay_db_dispute));
}


char *
pay_payout_view_json(const char *db_json, size_t len)
{
    json_t      *db, *root, *v;
    pay_view_t   vw;

    db = pay_db_load(db_json, len);
    if (db == NULL) {
        return NULL;
    }

    vw.failed = 0;
    root = json_object();

    pay_view_set(&vw, root, "payout_id", pay_jstr(pay_db_str(db, "payout_id")));
    pay_view_set(&vw, root, "seller_account",
                 pay_jstr(pay_db_str(db, "seller_account")));
    pay_view_set(&vw, root, "psp", pay_jstr(pay_db_str(db, "psp")));
    pay_view_set(&vw, root, "status",
                 pay_db_word(db, "status", pay_payout_statuses));
    pay_db_amount(&vw, db, root);

    /* what the PSP took back of it so far (a whole reversal: all of it,
     * and FAILED); absent from an older database's answer: left out */
    v = json_object_get(db, "amount_reversed_minor");

    if (json_is_integer(v) && json_integer_value(v) < 0) {
        vw.failed = 1;

    } else if (v != NULL) {
        pay_db_signed(&vw, db, "amount_reversed_minor",
                      pay_db_str(db, "currency"), root, "amount_reversed");
    }

    if (pay_db_opt_str(&vw, db, "psp_payout_id", root, "psp_payout_id", 1) < 0
        || pay_db_opt_str(&vw, db, "failure", root, "failure", 0) < 0)
    {
        vw.failed = 1;
    }

    pay_view_set(&vw, root, "metadata",
                 pay_view_metadata(json_object_get(db, "metadata")));

    pay_view_set(&vw, root, "created_at", pay_db_time(db, "created_at"));
    pay_view_set(&vw, root, "updated_at", pay_db_time(db, "updated_at"));

    json_decref(db);

    return pay_view_dump(&vw, root);
}


static json_t *
pay_db_balance(pay_view_t *vw, const json_t *in)
{
    json_t      *o;
    const char  *cur;

    cur = pay_db_str(in, "currency");

    o = json_object();
    pay_view_set(vw, o, "currency", pay_jstr(cur));
    pay_db_signed(vw, in, "wallet_minor", cur, o, "wallet");
    pay_db_signed(vw, in, "pending_payouts_minor", cur, o, "pending_payouts");
    pay_db_signed(vw, in, "open_disputes_minor", cur, o, "open_disputes");
    pay_db_signed(vw, in, "available_minor", cur, o, "available");

    /* held by authorizations (manual capture): absent from an older
     * database's answer, shown as 0 */
    if (json_object_get(in, "authorized_minor") != NULL || cur == NULL) {
        pay_db_signed(vw, in, "authorized_minor", cur, o, "authorized");

    } else {
        pay_view_set(vw, o, "authorized", pay_view_amount_signed(0, cur));
    }

    return o;
}


char *
pay_balance_view_json(const char *db_json, size_t len)
{
    json_t      *db, *root;
    pay_view_t   vw;

    db = pay_db_load(db_json, len);
    if (db == NULL) {
        return NULL;
    }

    vw.failed = 0;
    root = json_object();

    pay_view_set(&vw, root, "seller_account",
                 pay_jstr(pay_db_str(db, "seller_account")));
    pay_view_set(&vw, root, "balances",
                 pay_db_list(&vw, db, "balances", pay_db_balance));

    json_decref(db);

    return pay_view_dump(&vw, root);
}


char *
pay_operation_json(const pay_operation_view_t *v)
{
    json_t      *root, *md;
    pay_view_t   vw;

    if (v == NULL || v->kind == NULL || v->id == NULL || v->status == NULL
        || v->currency == NULL)
    {
        return NULL;
    }

    vw.failed = 0;
    root = json_object();

    if (strcmp(v->kind, "refund") == 0) {
        pay_view_set(&vw, root, "refund_id", json_string(v->id));
        pay_view_set(&vw, root, "payment_order_id",
                     pay_jstr(v->payment_order_id));

    } else if (strcmp(v->kind, "capture") == 0
               || strcmp(v->kind, "void") == 0)
    {
        pay_view_set(&vw, root, "capture_id", json_string(v->id));
        pay_view_set(&vw, root, "kind", json_string(v->kind));
        pay_view_set(&vw, root, "payment_order_id",
                     pay_jstr(v->payment_order_id));

    } else {
        pay_view_set(&vw, root, "payout_id", json_string(v->id));
        pay_view_set(&vw, root, "seller_account", pay_jstr(v->seller_account));
        pay_view_set(&vw, root, "psp", pay_jstr(v->psp));
    }

    pay_view_set(&vw, root, "status", json_string(v->status));
    pay_view_set(&vw, root, "amount", pay_view_amount(v->amount, v->currency));
    pay_view_set(&vw, root, "currency", json_string(v->currency));

    if (v->reason != NULL && v->reason[0] != '\0') {
        pay_view_set(&vw, root, "reason", json_string(v->reason));
    }

    md = v->metadata != NULL ? json_loads(v->metadata, 0, NULL) : NULL;
    pay_view_set(&vw, root, "metadata",
                 v->metadata != NULL && md == NULL ? NULL
                                                   : pay_view_metadata(md));
    json_decref(md);

    pay_view_set(&vw, root, v->kind[0] == 'r' ? "psp_refund_id"
                            : (v->kind[0] == 'c' || v->kind[0] == 'v')
                            ? "psp_ref" : "psp_payout_id",
                 v->psp_ref != NULL && v->psp_ref[0] != '\0'
                 ? json_string(v->psp_ref) : json_null());

    if (v->failure != NULL) {
        pay_view_set(&vw, root, "failure", json_string(v->failure));
    }

    return pay_view_dump(&vw, root);
}
