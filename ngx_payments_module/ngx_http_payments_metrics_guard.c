/*
 * nginx -t's warning for a /metrics that anyone can read (postconfiguration
 * calls it).
 */


#include "ngx_http_payments_module.h"


/*
 * /metrics without an access rule.  The module serves it on any listener,
 * plain HTTP too (a scraper on a private network); what may read it is the
 * configuration's to say.  nginx -t warns for each server whose location
 * for "/metrics" (found as nginx finds it for a request) says "payments"
 * and has no allow/deny rule, no auth_basic and no auth_request, set there
 * or inherited.  A warning, not a refusal: the listener may be reachable
 * from a private network only, which nginx cannot know.
 */

#define NGX_HTTP_PAYMENTS_METRICS  "/metrics"


/*
 * The location of a server that serves uri, as nginx picks it: an exact
 * location of that name, else the longest prefix location the uri starts
 * with, unless a regex location of the server matches and that prefix is
 * not "^~".  Found by visiting every static location of the server's tree
 * (nested ones too: their names are whole URIs, longer than their
 * parent's) and comparing names; NULL when none serves it.
 */

static void
ngx_http_payments_visit_static(ngx_http_location_tree_node_t *node,
    ngx_str_t *uri, ngx_http_core_loc_conf_t **exact,
    ngx_http_core_loc_conf_t **prefix)
{
    ngx_http_core_loc_conf_t  *clcf;

    for ( /* void */ ; node != NULL; node = node->right) {

        clcf = node->exact;
        if (clcf != NULL && clcf->name.len == uri->len
            && ngx_strncmp(clcf->name.data, uri->data, uri->len) == 0)
        {
            *exact = clcf;
        }

        clcf = node->inclusive;
        if (clcf != NULL && clcf->name.len <= uri->len
            && ngx_strncmp(clcf->name.data, uri->data, clcf->name.len) == 0
            && (*prefix == NULL || clcf->name.len > (*prefix)->name.len))
        {
            *prefix = clcf;
        }

        ngx_http_payments_visit_static(node->left, uri, exact, prefix);
        ngx_http_payments_visit_static(node->tree, uri, exact, prefix);
    }
}


static ngx_http_core_loc_conf_t *
ngx_http_payments_serving_location(ngx_http_core_loc_conf_t *srv,
    ngx_str_t *uri)
{
    ngx_http_core_loc_conf_t  *exact, *prefix;
#if (NGX_PCRE)
    ngx_http_core_loc_conf_t  **re;
#endif

    exact = NULL;
    prefix = NULL;

    ngx_http_payments_visit_static(srv->static_locations, uri, &exact,
                                   &prefix);

    if (exact != NULL) {
        return exact;
    }

#if (NGX_PCRE)
    if ((prefix == NULL || !prefix->noregex) && srv->regex_locations) {
        for (re = srv->regex_locations; *re != NULL; re++) {
            if (ngx_regex_exec((*re)->regex->regex, uri, NULL, 0) >= 0) {
                return *re;
            }
        }
    }
#endif

    return prefix;
}


/*
 * The first fields of the loc_conf of nginx's access, auth_basic and
 * auth_request modules, as nginx 1.x lays them out (the structures are
 * private to their files).  The modules are found by name: a build without
 * one has nothing of it to check.
 */

typedef struct {
    ngx_array_t               *rules;
#if (NGX_HAVE_INET6)
    ngx_array_t               *rules6;
#endif
#if (NGX_HAVE_UNIX_DOMAIN)
    ngx_array_t               *rules_un;
#endif
} ngx_http_payments_access_conf_t;

typedef struct {
    ngx_http_complex_value_t  *realm;
} ngx_http_payments_auth_basic_conf_t;

typedef struct {
    ngx_str_t                  uri;
} ngx_http_payments_auth_request_conf_t;


static void *
ngx_http_payments_loc_conf_of(ngx_conf_t *cf, void **loc_conf,
    const char *name)
{
    ngx_uint_t  i;

    for (i = 0; cf->cycle->modules[i]; i++) {
        if (cf->cycle->modules[i]->type == NGX_HTTP_MODULE
            && ngx_strcmp(cf->cycle->modules[i]->name, name) == 0)
        {
            return loc_conf[cf->cycle->modules[i]->ctx_index];
        }
    }

    return NULL;
}


static ngx_uint_t
ngx_http_payments_guarded(ngx_conf_t *cf, void **loc_conf)
{
    ngx_http_payments_access_conf_t        *acf;
    ngx_http_payments_auth_basic_conf_t    *bcf;
    ngx_http_payments_auth_request_conf_t  *rcf;

    acf = ngx_http_payments_loc_conf_of(cf, loc_conf,
                                        "ngx_http_access_module");
    if (acf != NULL
        && (acf->rules != NULL
#if (NGX_HAVE_INET6)
            || acf->rules6 != NULL
#endif
#if (NGX_HAVE_UNIX_DOMAIN)
            || acf->rules_un != NULL
#endif
           ))
    {
        return 1;
    }

    /* "auth_basic off" is a realm that says "off" */
    bcf = ngx_http_payments_loc_conf_of(cf, loc_conf,
                                        "ngx_http_auth_basic_module");
    if (bcf != NULL && bcf->realm != NULL
        && bcf->realm != NGX_CONF_UNSET_PTR
        && !(bcf->realm->lengths == NULL
             && bcf->realm->value.len == 3
             && ngx_strncmp(bcf->realm->value.data, "off", 3) == 0))
    {
        return 1;
    }

    /* "auth_request off" is an empty uri */
    rcf = ngx_http_payments_loc_conf_of(cf, loc_conf,
                                        "ngx_http_auth_request_module");
    if (rcf != NULL && rcf->uri.len > 0) {
        return 1;
    }

    return 0;
}


void
ngx_http_payments_metrics_guard(ngx_conf_t *cf)
{
    void                           **loc_conf;
    ngx_str_t                        uri;
    u_char                          *server;
    ngx_uint_t                       s;
    ngx_http_core_srv_conf_t       **cscfp;
    ngx_http_core_main_conf_t       *cmcf;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_payments_loc_conf_t    *plcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    cscfp = cmcf->servers.elts;

    ngx_str_set(&uri, NGX_HTTP_PAYMENTS_METRICS);

    for (s = 0; s < cmcf->servers.nelts; s++) {
        clcf = ngx_http_payments_serving_location(
                   cscfp[s]->ctx->loc_conf[ngx_http_core_module.ctx_index],
                   &uri);
        if (clcf == NULL) {
            continue;
        }

        loc_conf = clcf->loc_conf;

        plcf = loc_conf[ngx_http_payments_module.ctx_index];
        if (plcf->enable != 1 || ngx_http_payments_guarded(cf, loc_conf)) {
            continue;
        }

        /* the server by its name, or by its place when it has none; the
         * message at the "payments" that serves /metrics */
        server = ngx_http_payments_server_name(cf->pool, cscfp[s]);
        if (server == NULL) {
            return;
        }

        ngx_http_payments_conf_log(NGX_LOG_WARN, cf, &plcf->at,
                           "payments: " NGX_HTTP_PAYMENTS_METRICS " of the "
                           "%s is served by its location \"%V\", "
                           "which has no access rule (allow and deny, "
                           "auth_basic or auth_request): anyone who reaches "
                           "that listener reads every metric; give "
                           "\"location = " NGX_HTTP_PAYMENTS_METRICS "\" its "
                           "allow and deny rules", server, &clcf->name);
    }
}


/* 'server "name"', or "server at FILE:LINE" for one without server_name
 * (nginx's default server_name is ""); a C string of pool */
u_char *
ngx_http_payments_server_name(ngx_pool_t *pool, ngx_http_core_srv_conf_t *cscf)
{
    size_t   len;
    u_char  *p, *last;

    len = sizeof("server at \"\":") + cscf->server_name.len
          + (cscf->file_name ? ngx_strlen(cscf->file_name) : 0)
          + NGX_INT_T_LEN;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NULL;
    }

    if (cscf->server_name.len) {
        last = ngx_snprintf(p, len - 1, "server \"%V\"", &cscf->server_name);

    } else {
        last = ngx_snprintf(p, len - 1, "server at %s:%ui",
                            cscf->file_name ? cscf->file_name
                                            : (u_char *) "?",
                            cscf->line);
    }

    *last = '\0';

    return p;
}
