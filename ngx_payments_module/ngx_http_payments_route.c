
/*
 * Copyright (C) ngx_payments authors
 *
 * payments_route: which PSPs a checkout registered without "psp" goes to,
 * in which order (doc/ngx_http_payments_module.md, "Routing").  Checked at
 * nginx -t: every PSP named is configured, and its dialect takes each of
 * the route's currencies in exact minor units (the dialect table's
 * answer, pay_dialect_currency_exact).
 *
 *   payments_route [name=NAME] [currency=EUR,GBP] [amount>=N] [amount<=N]
 *                  [merchant=ID,...] psps=PSP[:WEIGHT],...;
 */


#include "ngx_http_payments_module.h"


static char *ngx_http_payments_route_list(ngx_conf_t *cf, ngx_str_t *v,
    ngx_array_t **list);
static char *ngx_http_payments_route_psps(ngx_conf_t *cf,
    ngx_http_payments_route_t *rt, ngx_str_t *v);
static ngx_uint_t ngx_http_payments_route_valid_name(ngx_str_t *s);


char *
ngx_http_payments_route(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    char                       *rv;
    ngx_str_t                  *value, v;
    ngx_int_t                   n;
    ngx_uint_t                  i;
    ngx_http_payments_route_t  *rt;

    value = cf->args->elts;

    rt = ngx_array_push(pmcf->routes);
    if (rt == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rt, sizeof(ngx_http_payments_route_t));
    rt->amount_min = -1;
    rt->amount_max = -1;
    rt->line = cf->conf_file->line;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "name=", 5) == 0) {
            v.data = value[i].data + 5;
            v.len = value[i].len - 5;

            if (!ngx_http_payments_route_valid_name(&v)) {
                return "name= must be [a-z0-9_-]{1,32}";
            }

            rt->name = v;
            continue;
        }

        if (ngx_strncmp(value[i].data, "currency=", 9) == 0) {
            v.data = value[i].data + 9;
            v.len = value[i].len - 9;

            rv = ngx_http_payments_route_list(cf, &v, &rt->currencies);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "merchant=", 9) == 0) {
            v.data = value[i].data + 9;
            v.len = value[i].len - 9;

            rv = ngx_http_payments_route_list(cf, &v, &rt->merchants);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "amount<=", 8) == 0
            || ngx_strncmp(value[i].data, "amount>=", 8) == 0)
        {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);
            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_route\": \"%V\": the bound "
                                   "is a whole number of minor units",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[6] == '<') {
                rt->amount_max = n;

            } else {
                rt->amount_min = n;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "psps=", 5) == 0) {
            v.data = value[i].data + 5;
            v.len = value[i].len - 5;

            rv = ngx_http_payments_route_psps(cf, rt, &v);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_route\": unknown parameter \"%V\" "
                           "(name=, currency=, amount<=, amount>=, "
                           "merchant=, psps=)", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (rt->npsps == 0) {
        return "needs psps=";
    }

    if (rt->amount_min >= 0 && rt->amount_max >= 0
        && rt->amount_min > rt->amount_max)
    {
        return "has amount>= above amount<=: it matches nothing";
    }

    if (rt->name.len == 0) {
        if (rt->currencies == NULL && rt->merchants == NULL
            && rt->amount_min < 0 && rt->amount_max < 0)
        {
            ngx_str_set(&rt->name, "default");

        } else {
            rt->name.data = ngx_pnalloc(cf->pool, NGX_INT_T_LEN + 6);
            if (rt->name.data == NULL) {
                return NGX_CONF_ERROR;
            }

            /* NUL-terminated, as the arguments' names are: a query
             * parameter */
            rt->name.len = ngx_sprintf(rt->name.data, "route%ui%Z",
                                       pmcf->routes->nelts)
                           - rt->name.data - 1;
        }
    }

    return NGX_CONF_OK;
}


/* "A,B,C" -> an array of ngx_str_t, none empty */

static char *
ngx_http_payments_route_list(ngx_conf_t *cf, ngx_str_t *v,
    ngx_array_t **list)
{
    u_char     *p, *last, *comma;
    ngx_str_t  *item;

    if (*list == NULL) {
        *list = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (*list == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    p = v->data;
    last = v->data + v->len;

    while (p <= last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (comma == p) {
            return "has an empty item in a list";
        }

        item = ngx_array_push(*list);
        if (item == NULL) {
            return NGX_CONF_ERROR;
        }

        item->data = p;
        item->len = comma - p;

        p = comma + 1;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_payments_route_psps(ngx_conf_t *cf, ngx_http_payments_route_t *rt,
    ngx_str_t *v)
{
    u_char       *colon;
    ngx_int_t     w;
    ngx_str_t    *item;
    ngx_uint_t    i, j;
    ngx_array_t  *list;

    list = NULL;

    if (ngx_http_payments_route_list(cf, v, &list) != NGX_CONF_OK) {
        return "psps= must be PSP[:WEIGHT],...";
    }

    if (list->nelts > PAY_ROUTE_PSPS_MAX) {
        return "names at most 8 PSPs";
    }

    item = list->elts;

    for (i = 0; i < list->nelts; i++) {
        colon = ngx_strlchr(item[i].data, item[i].data + item[i].len, ':');

        rt->psp_names[i] = item[i];
        rt->weights[i] = 0;

        if (colon != NULL) {
            rt->psp_names[i].len = colon - item[i].data;
            w = ngx_atoi(colon + 1, item[i].data + item[i].len - colon - 1);
            if (w == NGX_ERROR || w > PAY_ROUTE_WEIGHT_MAX) {
                return "psps= weights must be 0..10000";
            }

            rt->weights[i] = (unsigned) w;
        }

        for (j = 0; j < i; j++) {
            if (rt->psp_names[j].len == rt->psp_names[i].len
                && ngx_strncmp(rt->psp_names[j].data, rt->psp_names[i].data,
                               rt->psp_names[i].len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_route\": psps= names \"%V\" "
                                   "twice: each PSP sees a checkout at "
                                   "most once", &rt->psp_names[i]);
                return NGX_CONF_ERROR;
            }
        }
    }

    rt->npsps = list->nelts;

    return NGX_CONF_OK;
}


static ngx_uint_t
ngx_http_payments_route_valid_name(ngx_str_t *s)
{
    ngx_uint_t  i;

    if (s->len == 0 || s->len > 32) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (!(islower(s->data[i]) || isdigit(s->data[i])
              || s->data[i] == '_' || s->data[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * nginx -t, once every payments_psp is known: each PSP of a route exists,
 * and its dialect takes every currency of the route exactly; a route after
 * one that matches everything is never used; names are unique.
 */

char *
ngx_http_payments_route_check(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf)
{
    u_char                     *cur;
    ngx_str_t                  *c;
    ngx_uint_t                  i, j, k;
    ngx_http_payments_psp_t    *psp, *all;
    ngx_http_payments_route_t  *rt;

    rt = pmcf->routes->elts;
    all = pmcf->psps->elts;

    for (i = 0; i < pmcf->routes->nelts; i++) {

        for (j = 0; j < i; j++) {
            if (rt[j].name.len == rt[i].name.len
                && ngx_strncmp(rt[j].name.data, rt[i].name.data,
                               rt[i].name.len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_route\" \"%V\" (line %ui) "
                                   "is named twice", &rt[i].name,
                                   rt[i].line);
                return NGX_CONF_ERROR;
            }

            if (rt[j].currencies == NULL && rt[j].merchants == NULL
                && rt[j].amount_min < 0 && rt[j].amount_max < 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_route\" \"%V\" (line %ui) "
                                   "comes after \"%V\", which matches "
                                   "every checkout: it is never used",
                                   &rt[i].name, rt[i].line, &rt[j].name);
                return NGX_CONF_ERROR;
            }
        }

        for (k = 0; k < rt[i].npsps; k++) {
            psp = ngx_http_payments_find_psp(pmcf,
                                             (char *) rt[i].psp_names[k].data,
                                             rt[i].psp_names[k].len);
            if (psp == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_route\" \"%V\" (line %ui) "
                                   "names \"%V\", which no payments_psp "
                                   "defines", &rt[i].name, rt[i].line,
                                   &rt[i].psp_names[k]);
                return NGX_CONF_ERROR;
            }

            rt[i].psp_index[k] = psp - all;

            if (rt[i].currencies == NULL) {
                continue;
            }

            c = rt[i].currencies->elts;

            for (j = 0; j < rt[i].currencies->nelts; j++) {
                cur = ngx_pnalloc(cf->pool, c[j].len + 1);
                if (cur == NULL) {
                    return NGX_CONF_ERROR;
                }

                ngx_cpystrn(cur, c[j].data, c[j].len + 1);

                if (pay_currency_find((char *) cur, c[j].len) == NULL) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "\"payments_route\" \"%V\" (line "
                                       "%ui): \"%V\" is not an ISO 4217 "
                                       "currency (upper case)", &rt[i].name,
                                       rt[i].line, &c[j]);
                    return NGX_CONF_ERROR;
                }

                if (!pay_dialect_currency_exact(psp->dl, (char *) cur)) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "\"payments_route\" \"%V\" (line "
                                       "%ui): the %s dialect of \"%V\" "
                                       "cannot take every %V amount in "
                                       "exact minor units",
                                       &rt[i].name, rt[i].line,
                                       psp->dl->name, &psp->name, &c[j]);
                    return NGX_CONF_ERROR;
                }
            }
        }
    }

    return NGX_CONF_OK;
}


ngx_http_payments_route_t *
ngx_http_payments_route_find(ngx_http_payments_main_conf_t *pmcf,
    ngx_str_t *merchant, const char *currency, int64_t total)
{
    size_t                      clen;
    ngx_str_t                  *s;
    ngx_uint_t                  i, j, hit;
    ngx_http_payments_route_t  *rt;

    rt = pmcf->routes->elts;
    clen = ngx_strlen(currency);

    for (i = 0; i < pmcf->routes->nelts; i++) {

        if (rt[i].amount_min >= 0 && total < rt[i].amount_min) {
            continue;
        }

        if (rt[i].amount_max >= 0 && total > rt[i].amount_max) {
            continue;
        }

        if (rt[i].currencies != NULL) {
            s = rt[i].currencies->elts;
            hit = 0;

            for (j = 0; j < rt[i].currencies->nelts; j++) {
                if (s[j].len == clen
                    && ngx_strncmp(s[j].data, currency, clen) == 0)
                {
                    hit = 1;
                    break;
                }
            }

            if (!hit) {
                continue;
            }
        }

        if (rt[i].merchants != NULL) {
            s = rt[i].merchants->elts;
            hit = 0;

            for (j = 0; j < rt[i].merchants->nelts; j++) {
                if (s[j].len == merchant->len
                    && ngx_strncmp(s[j].data, merchant->data,
                                   merchant->len) == 0)
                {
                    hit = 1;
                    break;
                }
            }

            if (!hit) {
                continue;
            }
        }

        return &rt[i];
    }

    return NULL;
}
