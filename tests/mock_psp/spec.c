/*
 * Mock PSP: every request to the Adyen APIs checked against Adyen's own
 * OpenAPI documents (specs/, copied from Adyen/adyen-openapi): the path
 * must be one the document's server serves (Checkout on the main port,
 * Transfers on the transfers port, as Adyen serves them from two hosts),
 * the required query parameters there and no others, and the JSON body
 * valid against the operation's request schema: required fields, no field
 * the schema does not name, types, enums, patterns, lengths.  A request
 * Adyen would refuse is answered 422 with the rule it broke, so that the
 * gateway's tests fail here before a real Adyen refuses it.
 *
 * The walk follows the request, not the schema: only the schemas of the
 * fields a request carries are visited.  $ref is resolved within the
 * document; allOf requires every part, oneOf and anyOf one.
 */

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_psp.h"


#define MOCK_SPEC_DEPTH  32


typedef struct {
    const char  *file;
    json_t      *doc;
    char         base[64];          /* the server URL's path: "/v71" */
} mock_spec_doc_t;


/*
 * Rules Adyen states in a field's description rather than in a schema
 * keyword.  The sentence must still be in the document (the mock refuses
 * to start otherwise), so the document stays the source of truth.
 */
typedef struct {
    mock_spec_api_e   api;
    const char       *schema;       /* components/schemas/… */
    const char       *property;
    const char       *sentence;     /* quoted from its description */
    const char       *allowed;      /* besides [A-Za-z0-9] */
    const json_t     *resolved;     /* the schema object, once loaded */
} mock_spec_charset_t;


static mock_spec_doc_t  mock_spec_docs[] = {
    { "CheckoutService-v71.json", NULL, "" },
    { "TransferService-v4.json", NULL, "" },
};

static mock_spec_charset_t  mock_spec_charsets[] = {
    { MOCK_SPEC_TRANSFERS, "TransferInfo", "description",
      "Supported characters: **[a-z] [A-Z] [0-9] / - ?** "
      "**: ( ) . , ' + Space**",
      "/-?:().,'+ ", NULL },
};


static const json_t *mock_spec_resolve(const json_t *doc, const json_t *s);
static int mock_spec_value(const json_t *doc, mock_spec_api_e api,
    const json_t *schema, const json_t *v, char *where, size_t wlen,
    int depth, char *why, size_t size);


static int
mock_spec_fail(char *why, size_t size, const char *where, const char *fmt,
    ...)
{
    int      n;
    va_list  ap;

    n = snprintf(why, size, "%s: ", where[0] ? where : "body");
    if (n < 0 || (size_t) n >= size) {
        return -1;
    }

    va_start(ap, fmt);
    vsnprintf(why + n, size - (size_t) n, fmt, ap);
    va_end(ap);

    return -1;
}


int
mock_spec_load(const char *dir)
{
    size_t         i;
    char           path[4096];
    const char    *url, *p, *text;
    const json_t  *s;
    json_error_t   err;

    for (i = 0; i < sizeof(mock_spec_docs) / sizeof(mock_spec_docs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, mock_spec_docs[i].file);

        mock_spec_docs[i].doc = json_load_file(path, 0, &err);
        if (mock_spec_docs[i].doc == NULL) {
            fprintf(stderr, "mock_psp: %s: %s (line %d)\n", path, err.text,
                    err.line);
            return -1;
        }

        /* "https://checkout-test.adyen.com/v71": the path after the host */
        url = json_string_value(json_object_get(json_array_get(
                  json_object_get(mock_spec_docs[i].doc, "servers"), 0),
                  "url"));
        p = url ? strstr(url, "://") : NULL;
        p = p ? strchr(p + 3, '/') : NULL;

        if (p == NULL || strlen(p) >= sizeof(mock_spec_docs[i].base)) {
            fprintf(stderr, "mock_psp: %s names no server path\n", path);
            return -1;
        }

        strcpy(mock_spec_docs[i].base, p);
    }

    for (i = 0; i < sizeof(mock_spec_charsets) / sizeof(mock_spec_charsets[0]);
         i++)
    {
        s = json_object_get(json_object_get(json_object_get(
                mock_spec_docs[mock_spec_charsets[i].api].doc, "components"),
                "schemas"), mock_spec_charsets[i].schema);
        text = json_string_value(json_object_get(json_object_get(
                   json_object_get(s, "properties"),
                   mock_spec_charsets[i].property), "description"));

        if (text == NULL || strstr(text, mock_spec_charsets[i].sentence)
                            == NULL)
        {
            fprintf(stderr, "mock_psp: %s no longer says \"%s\" of %s.%s\n",
                    mock_spec_docs[mock_spec_charsets[i].api].file,
                    mock_spec_charsets[i].sentence,
                    mock_spec_charsets[i].schema,
                    mock_spec_charsets[i].property);
            return -1;
        }

        mock_spec_charsets[i].resolved = s;
    }

    return 0;
}


void
mock_spec_free(void)
{
    size_t  i;

    for (i = 0; i < sizeof(mock_spec_docs) / sizeof(mock_spec_docs[0]); i++) {
        json_decref(mock_spec_docs[i].doc);
        mock_spec_docs[i].doc = NULL;
    }
}


const char *
mock_spec_base(mock_spec_api_e api)
{
    return mock_spec_docs[api].base;
}


/* "#/components/schemas/Name" within the document, followed to the end */
static const json_t *
mock_spec_resolve(const json_t *doc, const json_t *s)
{
    int            n;
    const char    *ref, *p, *q;
    char           part[256];
    const json_t  *at;

    for (n = 0; n < 16 && s != NULL; n++) {
        ref = json_string_value(json_object_get(s, "$ref"));
        if (ref == NULL) {
            return s;
        }

        if (strncmp(ref, "#/", 2) != 0) {
            return NULL;
        }

        at = doc;

        for (p = ref + 2; at != NULL && *p != '\0'; p = *q ? q + 1 : q) {
            q = strchr(p, '/');
            if (q == NULL) {
                q = p + strlen(p);
            }

            if ((size_t) (q - p) >= sizeof(part)) {
                return NULL;
            }

            memcpy(part, p, (size_t) (q - p));
            part[q - p] = '\0';
            at = json_object_get(at, part);
        }

        s = at;
    }

    return NULL;
}


/* characters, not bytes: UTF-8 continuation bytes are not counted */
static size_t
mock_spec_chars(const char *s)
{
    size_t  n;

    for (n = 0; *s; s++) {
        if (((unsigned char) *s & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


static int
mock_spec_type(const char *type, const json_t *v)
{
    if (strcmp(type, "object") == 0) {
        return json_is_object(v);
    }

    if (strcmp(type, "array") == 0) {
        return json_is_array(v);
    }

    if (strcmp(type, "string") == 0) {
        return json_is_string(v);
    }

    if (strcmp(type, "integer") == 0) {
        return json_is_integer(v);
    }

    if (strcmp(type, "number") == 0) {
        return json_is_number(v);
    }

    if (strcmp(type, "boolean") == 0) {
        return json_is_boolean(v);
    }

    return 0;
}


static int
mock_spec_string(const json_t *schema, const char *s, const char *where,
    char *why, size_t size)
{
    int            rc;
    regex_t        re;
    const char    *pattern;
    const json_t  *n;

    n = json_object_get(schema, "maxLength");
    if (json_is_integer(n)
        && (json_int_t) mock_spec_chars(s) > json_integer_value(n))
    {
        return mock_spec_fail(why, size, where, "longer than maxLength %lld",
                              (long long) json_integer_value(n));
    }

    n = json_object_get(schema, "minLength");
    if (json_is_integer(n)
        && (json_int_t) mock_spec_chars(s) < json_integer_value(n))
    {
        return mock_spec_fail(why, size, where, "shorter than minLength %lld",
                              (long long) json_integer_value(n));
    }

    pattern = json_string_value(json_object_get(schema, "pattern"));
    if (pattern != NULL) {
        if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
            return mock_spec_fail(why, size, where, "pattern \"%s\" is not "
                                  "one the mock can read", pattern);
        }

        rc = regexec(&re, s, 0, NULL, 0);
        regfree(&re);

        if (rc != 0) {
            return mock_spec_fail(why, size, where,
                                  "does not match pattern \"%s\"", pattern);
        }
    }

    return 0;
}


static int
mock_spec_object(const json_t *doc, mock_spec_api_e api,
    const json_t *schema, const json_t *v, char *where, size_t wlen,
    int depth, char *why, size_t size)
{
    size_t         i, at;
    const char    *key, *name;
    const json_t  *props, *extra, *req, *sub, *field;

    props = json_object_get(schema, "properties");
    extra = json_object_get(schema, "additionalProperties");
    req = json_object_get(schema, "required");

    json_array_foreach(req, i, sub) {
        name = json_string_value(sub);
        if (name != NULL && json_object_get(v, name) == NULL) {
            return mock_spec_fail(why, size, where,
                                  "required field \"%s\" missing", name);
        }
    }

    at = strlen(where);

    json_object_foreach((json_t *) v, key, field) {
        snprintf(where + at, wlen - at, "%s%s", at ? "." : "", key);

        sub = json_object_get(props, key);

        if (sub == NULL) {
            /* a field the schema does not name: Adyen refuses it, unless
             * the schema says any field is taken */
            if (!json_is_object(extra) && !json_is_true(extra)) {
                where[at] = '\0';
                return mock_spec_fail(why, size, where,
                                      "unknown field \"%s\"", key);
            }

            sub = json_is_object(extra) ? extra : NULL;
        }

        for (i = 0; sub != NULL
                    && i < sizeof(mock_spec_charsets)
                           / sizeof(mock_spec_charsets[0]); i++)
        {
            if (mock_spec_charsets[i].api == api
                && mock_spec_charsets[i].resolved == schema
                && strcmp(mock_spec_charsets[i].property, key) == 0
                && json_is_string(field))
            {
                name = json_string_value(field);

                for ( /* void */ ; *name; name++) {
                    if (!((*name >= 'a' && *name <= 'z')
                          || (*name >= 'A' && *name <= 'Z')
                          || (*name >= '0' && *name <= '9')
                          || strchr(mock_spec_charsets[i].allowed, *name)))
                    {
                        return mock_spec_fail(why, size, where,
                                   "character '%c' (0x%02x) is not one "
                                   "Adyen supports here ([a-zA-Z0-9%s])",
                                   *name, (unsigned char) *name,
                                   mock_spec_charsets[i].allowed);
                    }
                }
            }
        }

        if (sub != NULL
            && mock_spec_value(doc, api, sub, field, where, wlen, depth + 1,
                               why, size) != 0)
        {
            return -1;
        }

        where[at] = '\0';
    }

    return 0;
}


static int
mock_spec_value(const json_t *doc, mock_spec_api_e api, const json_t *schema,
    const json_t *v, char *where, size_t wlen, int depth, char *why,
    size_t size)
{
    int            ok;
    size_t         i, at;
    const char    *type;
    const json_t  *list, *sub, *item;
    char           scratch[512];

    schema = mock_spec_resolve(doc, schema);
    if (schema == NULL || depth > MOCK_SPEC_DEPTH) {
        return mock_spec_fail(why, size, where, "no schema the mock can "
                              "follow");
    }

    if (json_is_null(v) && json_is_true(json_object_get(schema, "nullable")))
    {
        return 0;
    }

    list = json_object_get(schema, "allOf");
    json_array_foreach(list, i, sub) {
        if (mock_spec_value(doc, api, sub, v, where, wlen, depth + 1, why,
                            size) != 0)
        {
            return -1;
        }
    }

    list = json_object_get(schema, "oneOf");
    if (list == NULL) {
        list = json_object_get(schema, "anyOf");
    }

    if (json_array_size(list) > 0) {
        ok = 0;
        at = strlen(where);

        json_array_foreach(list, i, sub) {
            if (mock_spec_value(doc, api, sub, v, where, wlen, depth + 1,
                                scratch, sizeof(scratch)) == 0)
            {
                ok = 1;
                break;
            }

            where[at] = '\0';
        }

        if (!ok) {
            return mock_spec_fail(why, size, where, "matches none of its "
                                  "%zu schemas (the last: %s)",
                                  json_array_size(list), scratch);
        }
    }

    type = json_string_value(json_object_get(schema, "type"));
    if (type == NULL && json_object_get(schema, "properties") != NULL) {
        type = "object";
    }

    if (type != NULL && !mock_spec_type(type, v)) {
        return mock_spec_fail(why, size, where, "not of type %s", type);
    }

    list = json_object_get(schema, "enum");
    if (json_is_array(list)) {
        ok = 0;

        json_array_foreach(list, i, item) {
            if (json_equal(item, (json_t *) v)) {
                ok = 1;
                break;
            }
        }

        if (!ok) {
            return mock_spec_fail(why, size, where, "not one of its enum's "
                                  "%zu values", json_array_size(list));
        }
    }

    if (json_is_string(v)) {
        return mock_spec_string(schema, json_string_value(v), where, why,
                                size);
    }

    if (json_is_object(v) && type != NULL && strcmp(type, "object") == 0) {
        return mock_spec_object(doc, api, schema, v, where, wlen, depth, why,
                                size);
    }

    if (json_is_array(v)) {
        sub = json_object_get(schema, "items");
        at = strlen(where);

        json_array_foreach(v, i, item) {
            snprintf(where + at, wlen - at, "[%zu]", i);
            if (sub != NULL
                && mock_spec_value(doc, api, sub, item, where, wlen,
                                   depth + 1, why, size) != 0)
            {
                return -1;
            }
        }

        where[at] = '\0';
    }

    return 0;
}


/* path against a template of the document: "{x}" takes one segment */
static int
mock_spec_path_match(const char *tmpl, const char *path)
{
    const char  *t, *p;

    for (t = tmpl, p = path; *t && *p; ) {
        if (*t == '{') {
            t = strchr(t, '}');
            if (t == NULL || *p == '/') {
                return 0;
            }

            t++;
            p += strcspn(p, "/");
            continue;
        }

        if (*t++ != *p++) {
            return 0;
        }
    }

    return *t == '\0' && *p == '\0';
}


typedef struct {
    const json_t  *params;
    const char    *unknown;
} mock_spec_query_t;


static enum MHD_Result
mock_spec_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
    size_t              i;
    const json_t       *p;
    mock_spec_query_t  *q = cls;

    (void) kind;
    (void) value;

    json_array_foreach(q->params, i, p) {
        if (strcmp(json_string_value(json_object_get(p, "in")) ?: "",
                   "query") == 0
            && strcmp(json_string_value(json_object_get(p, "name")) ?: "",
                      key) == 0)
        {
            return MHD_YES;
        }
    }

    q->unknown = key;

    return MHD_NO;
}


int
mock_spec_check(mock_spec_api_e api, struct MHD_Connection *c,
    const char *method, const char *url, const char *body, size_t len,
    char *why, size_t size)
{
    size_t              i, blen;
    char                lower[8], where[512];
    json_t             *v;
    const char         *tmpl, *name;
    const json_t       *doc, *paths, *item, *op, *params, *p, *rb, *schema;
    json_error_t        err;
    mock_spec_query_t   q;

    doc = mock_spec_docs[api].doc;
    blen = strlen(mock_spec_docs[api].base);
    why[0] = '\0';

    if (doc == NULL || strncmp(url, mock_spec_docs[api].base, blen) != 0
        || url[blen] != '/')
    {
        snprintf(why, size, "%s is not served here (%s serves %s/...)", url,
                 mock_spec_docs[api].file, mock_spec_docs[api].base);
        return 404;
    }

    paths = json_object_get(doc, "paths");
    op = NULL;

    json_object_foreach((json_t *) paths, tmpl, item) {
        if (mock_spec_path_match(tmpl, url + blen)) {
            break;
        }
    }

    if (tmpl == NULL) {
        snprintf(why, size, "%s: no such path in %s", url,
                 mock_spec_docs[api].file);
        return 404;
    }

    for (i = 0; method[i] && i < sizeof(lower) - 1; i++) {
        lower[i] = (char) (method[i] | 0x20);
    }
    lower[i] = '\0';

    op = json_object_get(item, lower);
    if (op == NULL) {
        snprintf(why, size, "%s %s: no such operation in %s", method, url,
                 mock_spec_docs[api].file);
        return 405;
    }

    /* the query: the required parameters there, no other */
    params = json_object_get(op, "parameters");

    json_array_foreach(params, i, p) {
        p = mock_spec_resolve(doc, p);
        name = json_string_value(json_object_get(p, "name"));

        if (name != NULL
            && strcmp(json_string_value(json_object_get(p, "in")) ?: "",
                      "query") == 0
            && json_is_true(json_object_get(p, "required"))
            && MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name)
               == NULL)
        {
            snprintf(why, size, "query: required parameter \"%s\" missing",
                     name);
            return 422;
        }
    }

    q.params = params;
    q.unknown = NULL;
    (void) MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND,
                                     mock_spec_query_arg, &q);
    if (q.unknown != NULL) {
        snprintf(why, size, "query: unknown parameter \"%s\"", q.unknown);
        return 422;
    }

    rb = mock_spec_resolve(doc, json_object_get(op, "requestBody"));
    schema = json_object_get(json_object_get(json_object_get(rb, "content"),
                                             "application/json"), "schema");

    if (schema == NULL) {
        if (len != 0) {
            snprintf(why, size, "%s %s takes no body", method, url);
            return 422;
        }

        return 0;
    }

    v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (v == NULL) {
        snprintf(why, size, "body: not JSON (%s)", err.text);
        return 422;
    }

    where[0] = '\0';

    if (mock_spec_value(doc, api, schema, v, where, sizeof(where), 0, why,
                        size) != 0)
    {
        json_decref(v);
        return 422;
    }

    json_decref(v);

    return 0;
}
