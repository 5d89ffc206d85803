/*
 * A table of hostile return and redirect URLs, every one refused against a
 * merchant whose only origin is https://shop.example (issue #4: compared by
 * parsed components, never by prefix).
 */

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <payments/url.h>

#include "../hostile_urls.h"


/* values, not pointers: Criterion hands parameters to a new process */
typedef struct {
    char  url[96];
} hostile_t;

#define PAY_HOSTILE(u)  { u },

static hostile_t hostile[] = {
    PAY_HOSTILE_URLS(PAY_HOSTILE)
};


ParameterizedTestParameters(url_hostile, every_hostile_url_is_refused)
{
    return cr_make_param_array(hostile_t, hostile,
                               sizeof(hostile) / sizeof(hostile[0]));
}


ParameterizedTest(hostile_t *h, url_hostile, every_hostile_url_is_refused)
{
    pay_origin_t  shop;

    cr_assert_eq(pay_origin_parse("https://shop.example", &shop, 0), 0);
    cr_assert_not(pay_origin_allowed(h->url, &shop, 1, 0),
                  "accepted a hostile URL: \"%s\"", h->url);
}


Test(url_hostile, the_table_holds_at_least_30_urls)
{
    cr_assert_geq(sizeof(hostile) / sizeof(hostile[0]), 30);
}


Test(url_hostile, the_genuine_origin_is_still_accepted)
{
    pay_origin_t  shop;

    cr_assert_eq(pay_origin_parse("https://shop.example", &shop, 0), 0);
    cr_assert(pay_origin_allowed("https://shop.example/thanks?x=1", &shop, 1,
                                 0));
    cr_assert(pay_origin_allowed("https://SHOP.example:443/cart", &shop, 1,
                                 0));
}
