
/*
 * Copyright (C) ngx_payments authors
 *
 * The stuck-checkout sweeper: its directive (payments_sweeper), the
 * defaults and what nginx -t refuses of them.  The sweeping itself is
 * _sweeper.c's; the settings' meaning is in
 * doc/ngx_http_payments_module.md.
 */


#include "ngx_http_payments_module.h"


static ngx_http_payments_range_t  ngx_http_payments_sweeper_ranges[] = {
    /* a busy round keeps a quarter of its batch, at least one, for the
     * sessions asked about before: a batch of one would keep none */
    { "batch=", "2..1000" },
    { "interval=", "100ms or more" },
    { "after=", "1s..30d" },
    { "retry=", "1s..30d" },
    { "alert=", "1s..30d" },
    { "grace=", "1s..30d" },
    { NULL, NULL }
};


char *
ngx_http_payments_sweeper_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    time_t                             *t;
    ngx_str_t                          *value, v;
    ngx_int_t                           n;
    ngx_uint_t                          i;
    ngx_http_payments_sweeper_conf_t   *sc;

    sc = &pmcf->sweeper;

    if (sc->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    ngx_http_payments_conf_at(cf, &pmcf->at[NGX_HTTP_PAYMENTS_AT_SWEEPER]);

    if (ngx_strcmp(value[1].data, "on") == 0) {
        sc->enable = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        sc->enable = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\": on or off",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "batch=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n < 2 || n > 1000) {
                goto invalid;
            }

            sc->batch = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "inbox_months=", 13) == 0) {
            n = ngx_atoi(value[i].data + 13, value[i].len - 13);
            if (n < 1 || n > 1200) {
                goto invalid;
            }

            sc->inbox_months = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            v.data = value[i].data + 9;
            v.len = value[i].len - 9;
            sc->interval = ngx_parse_time(&v, 0);
            if (sc->interval == (ngx_msec_t) NGX_ERROR
                || sc->interval < 100)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "after=", 6) == 0) {
            t = &sc->after;
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

        } else if (ngx_strncmp(value[i].data, "retry=", 6) == 0) {
            t = &sc->retry;
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

        } else if (ngx_strncmp(value[i].data, "alert=", 6) == 0) {
            t = &sc->alert;
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

        } else if (ngx_strncmp(value[i].data, "grace=", 6) == 0) {
            t = &sc->grace;
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

        } else if (ngx_strncmp(value[i].data, "unmatched=", 10) == 0) {
            t = &sc->unmatched;
            v.data = value[i].data + 10;
            v.len = value[i].len - 10;

        } else {
            goto invalid;
        }

        *t = ngx_parse_time(&v, 1);
        if (*t == (time_t) NGX_ERROR || *t < 1 || *t > 30 * 86400) {
            goto invalid;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\": %s",
                       &value[i], &cmd->name,
                       ngx_http_payments_param_range(
                           &value[i], ngx_http_payments_sweeper_ranges));
    return NGX_CONF_ERROR;
}


/* init_main_conf: the defaults, and what nginx -t refuses */
char *
ngx_http_payments_sweeper_merge(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf)
{
    ngx_msec_t                         lease, most;
    ngx_uint_t                         i;
    ngx_http_payments_psp_t           *psp;
    ngx_http_payments_sweeper_conf_t  *sc = &pmcf->sweeper;

    ngx_conf_init_value(sc->enable, 1);
    ngx_conf_init_msec_value(sc->interval, 60000);
    ngx_conf_init_value(sc->after, 15 * 60);
    ngx_conf_init_value(sc->retry, 5 * 60);
    ngx_conf_init_value(sc->alert, 3600);
    ngx_conf_init_value(sc->grace, 15 * 60);
    ngx_conf_init_value(sc->unmatched, 3600);
    ngx_conf_init_uint_value(sc->batch, 50);
    ngx_conf_init_uint_value(sc->inbox_months, 13);

    if (sc->alert <= sc->after) {
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
                                   &pmcf->at[NGX_HTTP_PAYMENTS_AT_SWEEPER],
                                   "payments_sweeper: alert=%T must be "
                                   "longer than after=%T: a checkout is "
                                   "alerted only once the sweeper has asked "
                                   "about it", sc->alert, sc->after);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_payments_instance_make(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (!sc->enable || pmcf->psps == NULL) {
        return NGX_CONF_OK;
    }

    /*
     * The lease lasts 3 x interval + 2 s (_sweeper.c) and is renewed
     * before a look-up once interval has passed since it was last taken:
     * a look-up that starts just before that may end interval + timeout
     * after it, and the queries around it want a second.  One that could
     * end after the lease lets another gateway take it and sweep beside
     * this one.  The look-up is one attempt, never retried.
     */
    lease = ((sc->interval * 3 + 999) / 1000 + 2) * 1000;
    most = lease - sc->interval - 1000;
    psp = pmcf->psps->elts;

    for (i = 0; i < pmcf->psps->nelts; i++) {
        if (psp[i].timeout <= most) {
            continue;
        }

        /* the sweeper's line, else the PSP's (the sweeper is on by
         * default) */
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
                           ngx_http_payments_conf_first(
                               &pmcf->at[NGX_HTTP_PAYMENTS_AT_SWEEPER],
                               &psp[i].at),
                           "payments_sweeper: a session look-up at psp "
                           "\"%V\" may take its timeout=%Mms, longer than "
                           "the sweeper's lease allows: the lease is "
                           "3 x interval + 2 s = %Mms, renewed every "
                           "interval=%Mms, so one look-up must end within "
                           "%Mms; raise the sweeper's interval= to at least "
                           "%Mms, or lower the psp's timeout= to at most "
                           "%Mms", &psp[i].name, psp[i].timeout, lease,
                           sc->interval, most, (psp[i].timeout + 1) / 2,
                           most);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
