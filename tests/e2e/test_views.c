/*
 * GET /v1/payments/{payment_order_id} and GET /v1/checkouts/{checkout_id}.
 */

#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(views, .timeout = E2E_TIMEOUT);


static const char *
str_of(json_t *j, const char *name)
{
    return json_string_value(json_object_get(j, name));
}


Test(views, get_payment_answers_the_order)
{
    char        *co_id;
    resp_t      *reg, *r;
    json_t      *j;
    merchant_t   m;

    merchant_new(&m);
    co_id = uid("co");
    reg = register_ok(&m, uid("key"), body_for(co_id));

    r = api_get(&m, str_printf("/v1/payments/%s_p1", co_id));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    expect_request_id(r);

    j = resp_json(r);
    cr_assert_str_eq(str_of(j, "payment_order_id"), str_printf("%s_p1", co_id));
    cr_assert_str_eq(str_of(j, "checkout_id"), co_id);
    cr_assert_str_eq(str_of(j, "status"), "EXECUTING");
    cr_assert_str_eq(str_of(j, "amount"), "10.00");
    cr_assert_str_eq(str_of(j, "currency"), "USD");
    cr_assert_str_eq(str_of(j, "seller_account"), "seller_1");
    cr_assert_str_eq(str_of(j, "psp"), env("PAY_TEST_PSP"));
    cr_assert_str_eq(str_of(j, "psp_token"), str_of(resp_json(reg), "psp_token"));
    cr_assert(str_of(j, "created_at") != NULL && str_of(j, "updated_at") != NULL,
              "timestamps: %s", r->body);
}


Test(views, get_checkout_answers_the_201_shape_with_events)
{
    size_t       i;
    char        *co_id;
    resp_t      *reg, *r;
    json_t      *j, *reg_j, *orders, *events, *e;
    merchant_t   m;
    const char  *fields[] = {
        "checkout_id", "status", "psp", "psp_token", "expires_at", NULL
    };

    merchant_new(&m);
    co_id = uid("co");
    reg = register_ok(&m, uid("key"), body_for(co_id));
    reg_j = resp_json(reg);

    r = api_get(&m, str_printf("/v1/checkouts/%s", co_id));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    expect_request_id(r);
    j = resp_json(r);

    for (i = 0; fields[i] != NULL; i++) {
        cr_assert(str_of(j, fields[i]) != NULL
                  && strcmp(str_of(j, fields[i]), str_of(reg_j, fields[i])) == 0,
                  "%s differs from the 201's: %s", fields[i], r->body);
    }

    cr_assert(json_is_false(json_object_get(j, "is_payment_done")));
    cr_assert(json_equal(json_object_get(j, "payment_orders"),
                         json_object_get(reg_j, "payment_orders")),
              "orders differ from the 201's:\n%s\n%s", r->body, reg->body);

    /* one registration event per order: NOT_STARTED -> EXECUTING */
    orders = json_object_get(j, "payment_orders");
    events = json_object_get(j, "events");
    cr_assert(json_is_array(events), "no events: %s", r->body);
    cr_assert_eq(json_array_size(events), json_array_size(orders),
                 "%s", r->body);

    json_array_foreach(events, i, e) {
        cr_assert_not_null(str_of(e, "at"));
        cr_assert_not_null(str_of(e, "payment_order_id"));
        cr_assert_str_eq(str_of(e, "from"), "NOT_STARTED");
        cr_assert_str_eq(str_of(e, "to"), "EXECUTING");
        cr_assert_str_eq(str_of(e, "source"), "registration");
    }
}


Test(views, get_checkout_of_a_refused_registration_shows_failed)
{
    size_t       i, nfailed;
    char        *co_id;
    resp_t      *r;
    json_t      *j, *events, *e;
    merchant_t   m;

    merchant_new(&m);
    co_id = uid("co");
    mock_fault(str_printf("{\"match\":\"%s\",\"refuse_status\":402}",
                          nonce(&m, co_id)));
    r = api_post(&m, uid("key"), body_for(co_id));
    cr_assert_eq(r->status, 201, "%ld %s", r->status, r->body);

    r = api_get(&m, str_printf("/v1/checkouts/%s", co_id));
    cr_assert_eq(r->status, 200, "%ld %s", r->status, r->body);
    j = resp_json(r);
    cr_assert_str_eq(str_of(j, "status"), "FAILED");

    events = json_object_get(j, "events");
    nfailed = 0;
    json_array_foreach(events, i, e) {
        if (strcmp(str_of(e, "to"), "FAILED") == 0) {
            cr_assert_str_eq(str_of(e, "from"), "EXECUTING");
            nfailed++;
        }
    }
    cr_assert_eq(nfailed, 2, "one EXECUTING -> FAILED per order: %s", r->body);
}


Test(views, another_merchants_order_is_404)
{
    char        *co_id;
    resp_t      *r;
    merchant_t   owner, other;

    merchant_new(&owner);
    merchant_new(&other);
    co_id = uid("co");
    resp_free(register_ok(&owner, uid("key"), body_for(co_id)));

    r = api_get(&other, str_printf("/v1/payments/%s_p1", co_id));
    expect_problem(r, 404, "not_found");
}


Test(views, another_merchants_checkout_is_404)
{
    char        *co_id;
    resp_t      *r;
    merchant_t   owner, other;

    merchant_new(&owner);
    merchant_new(&other);
    co_id = uid("co");
    resp_free(register_ok(&owner, uid("key"), body_for(co_id)));

    r = api_get(&other, str_printf("/v1/checkouts/%s", co_id));
    expect_problem(r, 404, "not_found");
}


Test(views, an_unknown_order_is_404)
{
    resp_t      *r;
    merchant_t   m;

    merchant_demo(&m);
    r = api_get(&m, str_printf("/v1/payments/%s", uid("po")));
    expect_problem(r, 404, "not_found");
}


Test(views, get_payment_requires_the_api_key)
{
    resp_t  *r;

    r = gw_get(str_printf("/v1/payments/%s", uid("po")));
    expect_problem(r, 401, "unauthorized");
}
