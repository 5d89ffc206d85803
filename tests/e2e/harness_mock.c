/*
 * End-to-end test harness: the mock PSP's control API.
 * What it offers: harness_mock.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"


/* -- the mock PSP ------------------------------------------------------------- */

resp_t *
mock_post(const char *path, const char *json)
{
    req_t        rq;
    const char  *h[] = { "Content-Type: application/json", NULL };

    rq.method = "POST";
    rq.url = mock_url(path);
    rq.headers = h;
    rq.body = json ? json : "";
    rq.len = (size_t) -1;

    return http(&rq);
}


long
mock_fault(const char *json)
{
    long         id;
    resp_t      *r;
    json_t      *j;

    r = mock_post("/_control/faults", json);
    cr_assert(r->status == 200 || r->status == 201,
              "mock fault %s: %ld (%s) %s", json, r->status, r->error,
              r->body);

    j = resp_json(r);
    cr_assert(json_is_integer(json_object_get(j, "id")),
              "mock fault: no id: %s", r->body);
    id = (long) json_integer_value(json_object_get(j, "id"));

    resp_free(r);
    return id;
}


void
mock_fault_remove(long id)
{
    req_t    rq;
    resp_t  *r;

    rq.method = "DELETE";
    rq.url = mock_url(str_printf("/_control/faults/%ld", id));
    rq.headers = NULL;
    rq.body = NULL;
    rq.len = 0;

    r = http(&rq);
    cr_assert_eq(r->status, 200, "mock fault %ld not removed: %ld (%s) %s",
                 id, r->status, r->error, r->body);
    resp_free(r);
}


void
mock_registrations(const char *key, long *sessions, long *requests)
{
    char    *esc, *url;
    resp_t  *r;
    json_t  *j, *s, *q;

    esc = url_escape(key);
    url = str_printf("%s/_control/registrations?key=%s", env("PAY_TEST_MOCK"),
                     esc);
    free(esc);

    r = http_get(url);
    cr_assert_eq(r->status, 200, "mock registrations: %ld (%s) %s",
                 r->status, r->error, r->body);

    j = resp_json(r);
    s = json_object_get(j, "sessions_created");
    q = json_object_get(j, "requests");
    cr_assert(json_is_integer(s) && json_is_integer(q),
              "mock registrations: %s", r->body);

    if (sessions != NULL) {
        *sessions = (long) json_integer_value(s);
    }

    if (requests != NULL) {
        *requests = (long) json_integer_value(q);
    }

    resp_free(r);
    free(url);
}


void
mock_reset(void)
{
    req_t    rq = { "POST", mock_url("/_control/reset"), NULL, "{}", 2 };
    resp_t  *r;

    r = http(&rq);
    cr_assert(r->status >= 200 && r->status < 300, "mock reset: %ld",
              r->status);
    resp_free(r);
}
