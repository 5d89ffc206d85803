
/*
 * Copyright (C) ngx_payments authors
 *
 * nginx -t's warnings on the TLS of the servers that say "payments"
 * (postconfiguration calls it, once every server is merged): none of them
 * with a TLS listener, where the API would answer 403 tls_required to every
 * call; a TLS server offering TLS 1.0 or 1.1, or a cipher suite without
 * AEAD.  Warnings, not refusals: a TLS terminator in front, or an old
 * client a shop must serve, is the configuration's to know.
 */


#include "ngx_http_payments_module.h"

#if (NGX_HTTP_SSL)
#include <ngx_http_ssl_module.h>
#endif


/* a location that says "payments"; closed: the first that answers 403 on
 * plain HTTP (no payments_plain_http) */
static void
ngx_http_payments_payments_at(ngx_http_payments_loc_conf_t *plcf,
    ngx_uint_t *any, ngx_http_payments_conf_at_t **closed)
{
    if (plcf->enable != 1) {
        return;
    }

    *any = 1;

    if (plcf->plain_http == NGX_HTTP_PAYMENTS_PLAIN_OFF && *closed == NULL) {
        *closed = &plcf->at;
    }
}


/* the locations of a server's tree */
static void
ngx_http_payments_visit_payments(ngx_http_location_tree_node_t *node,
    ngx_uint_t *any, ngx_http_payments_conf_at_t **closed)
{
    ngx_uint_t                     i;
    ngx_http_core_loc_conf_t      *clcf[2];
    ngx_http_payments_loc_conf_t  *plcf;

    for ( /* void */ ; node != NULL; node = node->right) {
        clcf[0] = node->exact;
        clcf[1] = node->inclusive;

        for (i = 0; i < 2; i++) {
            if (clcf[i] == NULL) {
                continue;
            }

            plcf = clcf[i]->loc_conf[ngx_http_payments_module.ctx_index];
            ngx_http_payments_payments_at(plcf, any, closed);
        }

        ngx_http_payments_visit_payments(node->left, any, closed);
        ngx_http_payments_visit_payments(node->tree, any, closed);
    }
}


static void
ngx_http_payments_server_payments(ngx_http_core_srv_conf_t *cscf,
    ngx_uint_t *any, ngx_http_payments_conf_at_t **closed)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_payments_loc_conf_t   *plcf;
#if (NGX_PCRE)
    ngx_http_core_loc_conf_t      **re;
#endif

    *any = 0;

    clcf = cscf->ctx->loc_conf[ngx_http_core_module.ctx_index];

    ngx_http_payments_visit_payments(clcf->static_locations, any, closed);

#if (NGX_PCRE)
    for (re = clcf->regex_locations; re != NULL && *re != NULL; re++) {
        plcf = (*re)->loc_conf[ngx_http_payments_module.ctx_index];
        ngx_http_payments_payments_at(plcf, any, closed);
    }
#else
    (void) plcf;
#endif
}


/* 1: one of the server's listeners says "ssl" */
static ngx_uint_t
ngx_http_payments_server_tls(ngx_http_core_main_conf_t *cmcf,
    ngx_http_core_srv_conf_t *cscf)
{
#if (NGX_HTTP_SSL)
    ngx_uint_t                  p, a, s;
    ngx_http_conf_port_t       *port;
    ngx_http_conf_addr_t       *addr;
    ngx_http_core_srv_conf_t  **server;

    if (cmcf->ports == NULL) {
        return 0;
    }

    port = cmcf->ports->elts;

    for (p = 0; p < cmcf->ports->nelts; p++) {
        addr = port[p].addrs.elts;

        for (a = 0; a < port[p].addrs.nelts; a++) {
            if (!addr[a].opt.ssl) {
                continue;
            }

            server = addr[a].servers.elts;

            for (s = 0; s < addr[a].servers.nelts; s++) {
                if (server[s] == cscf) {
                    return 1;
                }
            }
        }
    }
#endif

    return 0;
}


#if (NGX_HTTP_SSL)

/* the protocols and cipher suites of a TLS server that says "payments" */
static void
ngx_http_payments_server_ciphers(ngx_conf_t *cf,
    ngx_http_core_srv_conf_t *cscf, u_char *server)
{
    ngx_http_payments_conf_at_t  at;

    int                         i, n;
    u_char                     *p, *last, list[256];
    const SSL_CIPHER           *c;
    ngx_http_ssl_srv_conf_t    *sscf;
    STACK_OF(SSL_CIPHER)       *ciphers;

    sscf = cscf->ctx->srv_conf[ngx_http_ssl_module.ctx_index];

    /* at the server's own line */
    at.file = cscf->file_name;
    at.line = cscf->file_name ? cscf->line : 0;

    if (sscf->protocols & (NGX_SSL_TLSv1|NGX_SSL_TLSv1_1)) {
        ngx_http_payments_conf_log(NGX_LOG_WARN, cf, &at,
                           "payments: the %s serves \"payments\" over TLS "
                           "and its ssl_protocols include TLSv1 or TLSv1.1 "
                           "(nginx's default does): payments want "
                           "\"ssl_protocols TLSv1.2 TLSv1.3\"", server);
    }

    /* TLS 1.3's suites are all AEAD; the list matters below it */
    if (sscf->ssl.ctx == NULL
        || !(sscf->protocols & (NGX_SSL_TLSv1|NGX_SSL_TLSv1_1|NGX_SSL_TLSv1_2)))
    {
        return;
    }

    ciphers = SSL_CTX_get_ciphers(sscf->ssl.ctx);
    if (ciphers == NULL) {
        return;
    }

    p = list;
    last = list + sizeof(list);
    n = 0;

    for (i = 0; i < sk_SSL_CIPHER_num(ciphers); i++) {
        c = sk_SSL_CIPHER_value(ciphers, i);

        if (SSL_CIPHER_is_aead(c)) {
            continue;
        }

        /* the first three are named */
        if (n < 3) {
            p = ngx_slprintf(p, last, n ? ":%s" : "%s",
                             SSL_CIPHER_get_name(c));

        } else if (n == 3) {
            p = ngx_slprintf(p, last, ":...");
        }

        n++;
    }

    if (n == 0) {
        return;
    }

    ngx_http_payments_conf_log(NGX_LOG_WARN, cf, &at,
                       "payments: the %s serves \"payments\" over TLS and "
                       "its ssl_ciphers include %d non-AEAD suites (%*s; "
                       "nginx's default \"HIGH:!aNULL:!MD5\" does): list "
                       "ECDHE suites with AES-GCM or CHACHA20-POLY1305 only, "
                       "as the production example does", server, n,
                       p - list, list);
}

#endif


void
ngx_http_payments_tls_guard(ngx_conf_t *cf)
{
    u_char                        *server;
    ngx_uint_t                     s, any, tls;
    ngx_http_payments_conf_at_t   *closed, *first;
    ngx_http_payments_loc_conf_t  *splcf;
    ngx_http_core_srv_conf_t   **cscfp;
    ngx_http_core_main_conf_t   *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    cscfp = cmcf->servers.elts;

    first = NULL;
    tls = 0;

    for (s = 0; s < cmcf->servers.nelts; s++) {
        closed = NULL;
        ngx_http_payments_server_payments(cscfp[s], &any, &closed);
        if (!any) {
            continue;
        }

        /* what nginx refuses there before any location is chosen is
         * answered in problem+json (_response.c) */
        splcf = cscfp[s]->ctx->loc_conf[ngx_http_payments_module.ctx_index];
        splcf->server_payments = 1;

        if (!ngx_http_payments_server_tls(cmcf, cscfp[s])) {
            if (first == NULL) {
                first = closed;
            }

            continue;
        }

        tls = 1;

#if (NGX_HTTP_SSL)
        server = ngx_http_payments_server_name(cf->pool, cscfp[s]);
        if (server == NULL) {
            return;
        }

        ngx_http_payments_server_ciphers(cf, cscfp[s], server);
#else
        (void) server;
#endif
    }

    /* at the first "payments" that would answer 403 */
    if (first != NULL && !tls) {
        ngx_http_payments_conf_log(NGX_LOG_WARN, cf, first,
                           "payments: no TLS listener serves \"payments\": "
                           "the merchant API and the webhooks answer 403 "
                           "tls_required on plain HTTP (give a server that "
                           "says \"payments\" a \"listen ... ssl\"; "
                           "\"payments_plain_http loopback\" is for a "
                           "loopback test only)");
    }
}
