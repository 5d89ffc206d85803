/*
 * End-to-end test harness: the notifications API.
 * What it offers: harness_notify.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"


/* -- notifications ------------------------------------------------------------ */

static resp_t *
origin_send(const char *origin, const char *method, const char *path,
    const merchant_t *m)
{
    req_t        rq;
    resp_t      *r;
    char        *auth;
    const char  *h[2];

    auth = str_printf("Authorization: Bearer %s", m->key);
    h[0] = auth;
    h[1] = NULL;

    rq.method = method;
    rq.url = str_printf("%s%s", origin != NULL ? origin : env("PAY_TEST_GW"),
                        path);
    rq.headers = h;
    rq.body = NULL;
    rq.len = 0;

    r = http(&rq);
    free(auth);

    return r;
}


json_t *
notifications_list(const char *origin, const merchant_t *m,
    const char *query)
{
    resp_t  *r;
    json_t  *j, *items;

    r = origin_send(origin, "GET", str_printf("/v1/notifications%s%s",
                                              query ? "?" : "",
                                              query ? query : ""), m);
    cr_assert_eq(r->status, 200, "GET /v1/notifications?%s: %ld (%s) %s",
                 query ? query : "", r->status, r->error, r->body);

    j = resp_json(r);
    items = json_is_array(j) ? j : json_object_get(j, "items");
    cr_assert(json_is_array(items), "GET /v1/notifications: no items: %s",
              r->body);
    json_incref(items);
    resp_free(r);

    return items;
}


json_t *
notification_find(const char *origin, const merchant_t *m, const char *id)
{
    size_t       i;
    json_t      *items, *it;
    const char  *v;

    items = notifications_list(origin, m, "limit=100");

    json_array_foreach(items, i, it) {
        v = json_string_value(json_object_get(it, "id"));
        if (v != NULL && strcmp(v, id) == 0) {
            json_incref(it);
            json_decref(items);
            return it;
        }
    }

    json_decref(items);
    return NULL;
}


json_t *
notification_wait(const char *origin, const merchant_t *m, const char *id,
    const char *want, int seconds)
{
    int          i;
    json_t      *it;
    const char  *st;

    it = NULL;

    for (i = 0; i <= seconds * 5; i++) {
        json_decref(it);
        it = notification_find(origin, m, id);
        st = it ? json_string_value(json_object_get(it, "status")) : NULL;

        if (st != NULL && strcmp(st, want) == 0) {
            return it;
        }

        msleep(200);
    }

    cr_assert_fail("notification %s is not %s after %d s: %s", id, want,
                   seconds, it ? dump(it) : "not listed");
    return NULL;
}


resp_t *
notification_replay(const char *origin, const merchant_t *m, const char *id)
{
    char    *esc;
    resp_t  *r;

    esc = url_escape(id);
    r = origin_send(origin, "POST",
                    str_printf("/v1/notifications/%s/replay", esc), m);
    free(esc);

    return r;
}
