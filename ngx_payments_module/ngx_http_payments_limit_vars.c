
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's variables ($payments_merchant,
 * $payments_psp, $payments_checkout; $payments_request_id is the answers',
 * in _response.c), and the zones' lines of /metrics.
 */


#include "ngx_http_payments_limit.h"
#include "ngx_http_payments_limit_int.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <payments/money.h>


static ngx_int_t ngx_http_payments_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static u_char *ngx_http_payments_limit_metrics_of(u_char *p, u_char *last,
    ngx_uint_t fallbacks);

#define NGX_HTTP_PAYMENTS_VAR_MERCHANT    0
#define NGX_HTTP_PAYMENTS_VAR_PSP         1
#define NGX_HTTP_PAYMENTS_VAR_CHECKOUT    2

static ngx_str_t  ngx_http_payments_limit_variables[] = {
    ngx_string("payments_merchant"),
    ngx_string("payments_psp"),
    ngx_string("payments_checkout")
};



/* variables */


ngx_int_t
ngx_http_payments_limit_add_variables(ngx_conf_t *cf)
{
    ngx_uint_t            i;
    ngx_http_variable_t  *var;

    for (i = 0; i < sizeof(ngx_http_payments_limit_variables)
                    / sizeof(ngx_str_t); i++)
    {
        var = ngx_http_add_variable(cf, &ngx_http_payments_limit_variables[i],
                                    NGX_HTTP_VAR_NOCACHEABLE);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = ngx_http_payments_limit_variable;
        var->data = i;
    }

    return NGX_OK;
}


/* the PSP and the checkout a request's URI names, before any handler ran:
 * the router's own parse of the path (pay_path_parse) */

static void
ngx_http_payments_limit_uri(ngx_http_request_t *r, ngx_str_t *psp,
    ngx_str_t *checkout)
{
    pay_path_t                      path;
    ngx_http_payments_main_conf_t  *pmcf;

    ngx_str_null(psp);
    ngx_str_null(checkout);

    if (pay_path_parse((char *) r->uri.data, r->uri.len, &path) != 0) {
        return;
    }

    switch (path.route->route) {

    case PAY_ROUTE_RETURN:
    case PAY_ROUTE_PAY:
    case PAY_ROUTE_STATUS:
    case PAY_ROUTE_CHECKOUT:
    case PAY_ROUTE_CANCEL:
        if (pay_id_valid(path.id, path.id_len)) {
            checkout->data = (u_char *) path.id;
            checkout->len = path.id_len;
        }

        break;

    default:
        break;
    }

    if (path.psp) {
        pmcf = ngx_http_get_module_main_conf(r, ngx_http_payments_module);

        if (pmcf && ngx_http_payments_find_psp(pmcf, path.psp, path.psp_len))
        {
            psp->data = (u_char *) path.psp;
            psp->len = path.psp_len;
        }
    }
}


static ngx_int_t
ngx_http_payments_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                 s, psp, checkout;
    ngx_http_payments_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_payments_module);
    ngx_str_null(&s);

    switch (data) {

    case NGX_HTTP_PAYMENTS_VAR_MERCHANT:
        /* only once authenticated (a key, or a pay/return token) */
        if (ctx) {
            s = ctx->merchant;
        }

        break;

    case NGX_HTTP_PAYMENTS_VAR_PSP:
        if (ctx && ctx->psp) {
            s = ctx->psp->name;

        } else {
            ngx_http_payments_limit_uri(r, &psp, &checkout);
            s = psp;
        }

        break;

    default: /* NGX_HTTP_PAYMENTS_VAR_CHECKOUT */
        if (ctx && ctx->co_valid) {
            s.data = (u_char *) ctx->co.checkout_id;
            s.len = ngx_strlen(ctx->co.checkout_id);

        } else {
            ngx_http_payments_limit_uri(r, &psp, &checkout);
            s = checkout;
        }

        break;
    }

    if (s.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s.data;

    return NGX_OK;
}


/* For GET /metrics: each zone's rejections, from every worker; and the
 * checks of each zone kept in Redis that were decided without it. */

u_char *
ngx_http_payments_limit_metrics(u_char *p, u_char *last)
{
    p = ngx_http_payments_limit_metrics_of(p, last, 0);

    return ngx_http_payments_limit_metrics_of(p, last, 1);
}


static u_char *
ngx_http_payments_limit_metrics_of(u_char *p, u_char *last,
    ngx_uint_t fallbacks)
{
    ngx_uint_t                       i;
    ngx_list_part_t                 *part;
    ngx_shm_zone_t                  *shm;
    ngx_http_payments_limit_zone_t  *z;

    if (fallbacks) {
        p = ngx_slprintf(p, last,
                "# HELP payments_limit_store_fallbacks_total Checks of each "
                "zone with store=redis decided without Redis (down, slow "
                "or failing), as its on_error= says.\n"
                "# TYPE payments_limit_store_fallbacks_total counter\n");

    } else {
        p = ngx_slprintf(p, last,
                "# HELP payments_rate_limited_total Requests refused with "
                "429 by each payments_limit zone.\n"
                "# TYPE payments_rate_limited_total counter\n");
    }

    part = &((ngx_cycle_t *) ngx_cycle)->shared_memory.part;
    shm = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            shm = part->elts;
            i = 0;
        }

        if (shm[i].tag != &ngx_http_payments_limit_module
            || shm[i].data == NULL)
        {
            continue;
        }

        z = shm[i].data;

        if (z->sh == NULL) {
            continue;
        }

        if (fallbacks) {
            if (z->redis) {
                p = ngx_slprintf(p, last,
                                 "payments_limit_store_fallbacks_total"
                                 "{zone=\"%V\"} %uA\n",
                                 &z->name, z->sh->fallbacks);
            }

            continue;
        }

        p = ngx_slprintf(p, last,
                         "payments_rate_limited_total{zone=\"%V\"} %uA\n",
                         &z->name, z->sh->rejected);
    }

    return p;
}
