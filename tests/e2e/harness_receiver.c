/*
 * The e2e harness: the merchants' endpoint (harness_receiver.h).
 */

#include "harness.h"

#include <string.h>

char *
receiver_url(const char *name)
{
    return str_printf("%s/hooks/%s", env("PAY_TEST_RECEIVER"), name);
}


char *
receiver_url_on(const char *host, const char *name)
{
    const char  *r, *colon;

    r = env("PAY_TEST_RECEIVER");
    colon = strrchr(r, ':');
    cr_assert(colon != NULL && colon > r + 6, "PAY_TEST_RECEIVER %s", r);

    return str_printf("https://%s%s/hooks/%s", host, colon, name);
}


/* A control request to the receiver: its answer, 200 required. */
static resp_t *
receiver_control(const char *method, const char *path, json_t *body)
{
    req_t        rq;
    char        *s;
    resp_t      *r;
    const char  *h[] = { "Content-Type: application/json", NULL };

    s = body != NULL ? dump(body) : NULL;

    rq.method = method;
    rq.url = str_printf("%s%s", env("PAY_TEST_RECEIVER_CONTROL"), path);
    rq.headers = h;
    rq.body = s;
    rq.len = (size_t) -1;

    r = http(&rq);
    cr_assert_eq(r->status, 200, "receiver %s %s: %ld (%s) %s", method, path,
                 r->status, r->error, r->body);

    json_decref(body);
    free(s);

    return r;
}


void
receiver_mode(const char *name, const char *mode, const char *const *script)
{
    json_t  *j, *a;

    a = json_array();
    while (script != NULL && *script != NULL) {
        json_array_append_new(a, json_string(*script++));
    }

    j = json_pack("{s:s, s:s, s:o}", "path", str_printf("/hooks/%s", name),
                  "mode", mode, "script", a);
    cr_assert_not_null(j);

    resp_free(receiver_control("POST", "/_control/mode", j));
}


void
receiver_secrets(const char *name, const char *const *secrets)
{
    json_t  *j, *a;

    a = json_array();
    while (secrets != NULL && *secrets != NULL) {
        json_array_append_new(a, json_string(*secrets++));
    }

    j = json_pack("{s:s, s:o}", "path", str_printf("/hooks/%s", name),
                  "secrets", a);
    cr_assert_not_null(j);

    resp_free(receiver_control("POST", "/_control/secrets", j));
}


json_t *
receiver_deliveries(const char *name)
{
    char    *esc;
    resp_t  *r;
    json_t  *ds;

    esc = url_escape(str_printf("/hooks/%s", name));
    r = receiver_control("GET", str_printf("/_control/deliveries?path=%s",
                                           esc), NULL);
    ds = json_object_get(resp_json(r), "deliveries");
    cr_assert(json_is_array(ds), "receiver deliveries: %s", r->body);
    json_incref(ds);

    resp_free(r);
    free(esc);

    return ds;
}


json_t *
receiver_stats(void)
{
    resp_t  *r;
    json_t  *j;

    r = receiver_control("GET", "/_control/stats", NULL);
    j = json_incref(resp_json(r));
    resp_free(r);

    return j;
}


size_t
deliveries_count(const json_t *ds, const char *answer, const char *type)
{
    size_t       i, n;
    json_t      *d;
    const char  *a, *t;

    n = 0;

    json_array_foreach(ds, i, d) {
        a = json_string_value(json_object_get(d, "answer"));
        t = json_string_value(json_object_get(d, "type"));

        if ((answer == NULL || (a != NULL && strcmp(a, answer) == 0))
            && (type == NULL || (t != NULL && strcmp(t, type) == 0)))
        {
            n++;
        }
    }

    return n;
}


size_t
deliveries_distinct(const json_t *ds, const char *answer)
{
    size_t       i, n;
    json_t      *d, *seen;
    const char  *a, *id;

    seen = json_object();

    json_array_foreach(ds, i, d) {
        a = json_string_value(json_object_get(d, "answer"));
        id = json_string_value(json_object_get(d, "webhook_id"));

        if (id != NULL
            && (answer == NULL || (a != NULL && strcmp(a, answer) == 0)))
        {
            json_object_set_new(seen, id, json_true());
        }
    }

    n = json_object_size(seen);
    json_decref(seen);

    return n;
}


json_t *
receiver_wait(const char *name, const char *answer, size_t n, int seconds)
{
    int      i;
    json_t  *ds;

    for (i = 0; ; i++) {
        ds = receiver_deliveries(name);

        if (deliveries_count(ds, answer, NULL) >= n) {
            return ds;
        }

        if (i >= seconds * 10) {
            break;
        }

        json_decref(ds);
        msleep(100);
    }

    cr_assert_fail("/hooks/%s: %zu of %zu deliveries answered %s after %d s: "
                   "%s", name, deliveries_count(ds, answer, NULL), n,
                   answer ? answer : "anything", seconds, dump(ds));
    return NULL;
}


/* The first word of s that starts with prefix (at the start, or after a
 * character outside charset), made of charset's characters; 0 or -1. */
static int
word_with_prefix(const char *s, const char *prefix, const char *charset,
    char *buf, size_t cap)
{
    size_t       n;
    const char  *p;

    for (p = s; (p = strstr(p, prefix)) != NULL; p++) {
        if (p != s && strchr(charset, p[-1]) != NULL) {
            continue;
        }

        n = strspn(p, charset);
        if (n <= strlen(prefix) || n >= cap) {
            continue;
        }

        memcpy(buf, p, n);
        buf[n] = '\0';
        return 0;
    }

    return -1;
}


#define ID_CHARS      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
                      "0123456789_-"
#define SECRET_CHARS  ID_CHARS "+/="


int
endpoint_add_raw(const merchant_t *m, const char *url,
    const char *const *extra, char **out)
{
    size_t       n;
    const char  *args[20];

    n = 0;
    args[n++] = "add-endpoint";
    args[n++] = "--id";
    args[n++] = m->id;
    args[n++] = "--url";
    args[n++] = url;

    while (extra != NULL && *extra != NULL && n < 19) {
        args[n++] = *extra++;
    }

    args[n] = NULL;

    return merchant_toolv(args, out);
}


void
endpoint_add(const merchant_t *m, const char *events, endpoint_t *ep)
{
    char  *name;

    name = uid("h");
    endpoint_add_at(m, receiver_url(name), name, events, ep);
}


void
endpoint_add_at(const merchant_t *m, const char *url, const char *name,
    const char *events, endpoint_t *ep)
{
    int          rc;
    char        *out;
    const char  *extra[4], *secrets[2];

    memset(ep, 0, sizeof(endpoint_t));

    ep->name = strdup(name);
    ep->path = str_printf("/hooks/%s", ep->name);
    ep->url = strdup(url);

    extra[0] = "--allow-loopback";
    extra[1] = events != NULL ? "--events" : NULL;
    extra[2] = events;
    extra[3] = NULL;

    rc = endpoint_add_raw(m, ep->url, extra, &out);
    cr_assert_eq(rc, 0, "payments-merchant add-endpoint %s: %d %s", ep->url,
                 rc, out);

    cr_assert_eq(word_with_prefix(out, "ep_", ID_CHARS, ep->id,
                                  sizeof(ep->id)), 0,
                 "add-endpoint printed no endpoint id (ep_...): %s", out);
    cr_assert_eq(word_with_prefix(out, "whsec_", SECRET_CHARS, ep->secret,
                                  sizeof(ep->secret)), 0,
                 "add-endpoint printed no secret (whsec_...): %s", out);
    secret_used(ep->secret);

    secrets[0] = ep->secret;
    secrets[1] = NULL;
    receiver_secrets(ep->name, secrets);

    free(out);
}


char *
endpoint_rotate(endpoint_t *ep, const char *grace)
{
    int          rc;
    char        *out, *old, fresh[128];
    const char  *args[6], *secrets[3];

    args[0] = "rotate-secret";
    args[1] = "--endpoint";
    args[2] = ep->id;
    args[3] = grace != NULL ? "--grace" : NULL;
    args[4] = grace;
    args[5] = NULL;

    rc = merchant_toolv(args, &out);
    cr_assert_eq(rc, 0, "payments-merchant rotate-secret: %d %s", rc, out);
    cr_assert_eq(word_with_prefix(out, "whsec_", SECRET_CHARS, fresh,
                                  sizeof(fresh)), 0,
                 "rotate-secret printed no secret (whsec_...): %s", out);
    cr_assert_str_neq(fresh, ep->secret, "rotate-secret printed the old "
                      "secret");
    secret_used(fresh);

    old = strdup(ep->secret);
    strcpy(ep->secret, fresh);

    secrets[0] = old;
    secrets[1] = ep->secret;
    secrets[2] = NULL;
    receiver_secrets(ep->name, secrets);

    free(out);
    return old;
}


void
endpoint_command(const endpoint_t *ep, const char *command)
{
    int          rc;
    char        *out;
    const char  *args[] = { command, "--endpoint", ep->id, NULL };

    rc = merchant_toolv(args, &out);
    cr_assert_eq(rc, 0, "payments-merchant %s %s: %d %s", command, ep->id,
                 rc, out);
    free(out);
}


char *
notify_conf(const char *params)
{
    /* gateway_start's configuration has payments_encryption_key */
    return str_printf("payments_notify on %s ca=%s;\n",
                      params != NULL ? params : NOTIFY_SUITE_PARAMS,
                      env("PAY_TEST_RECEIVER_CA"));
}


