
/*
 * Copyright (C) ngx_payments authors
 *
 * Merchant notifications: their directives (payments_notify,
 * payments_notify_allow_host) and what nginx -t refuses of them.  The
 * delivery itself is _notify.c's; the settings' meaning is
 * doc/NOTIFICATIONS.md's.
 */


#include "ngx_http_payments_module.h"


static ngx_http_payments_range_t  ngx_http_payments_notify_ranges[] = {
    { "batch=", "1..1000" },
    { "per_endpoint=", "1..1000" },
    { "disable_after=", "a time above 0 with its unit, or off" },
    { "backoff_scale=", "1..100000" },
    { "allow_loopback=", "on or off" },
    { "ca=", "a file of PEM certificates" },
    { "interval=", "50ms..1h" },
    { "timeout=", "50ms..1h" },
    { "connect_timeout=", "50ms..1h" },
    { "lease=", "50ms..1h" },
    { NULL, NULL }
};


/* payments_notify on|off [interval= batch= timeout= connect_timeout= lease=
 * disable_after= backoff_scale= allow_loopback= ca=] */
char *
ngx_http_payments_notify_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    ngx_str_t                        *value, v, name, s, pem;
    ngx_int_t                         n;
    ngx_uint_t                        i;
    ngx_msec_t                       *ms, t;
    ngx_http_payments_notify_conf_t  *nc;

    nc = &pmcf->notify;

    if (nc->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    ngx_http_payments_conf_at(cf, &pmcf->at[NGX_HTTP_PAYMENTS_AT_NOTIFY]);

    if (ngx_strcmp(value[1].data, "on") == 0) {
        nc->enable = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        nc->enable = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"%V\": on or off",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "batch=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n < 1 || n > 1000) {
                goto invalid;
            }

            nc->batch = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "per_endpoint=", 13) == 0) {
            n = ngx_atoi(value[i].data + 13, value[i].len - 13);
            if (n < 1 || n > 1000) {
                goto invalid;
            }

            nc->per_endpoint = (ngx_uint_t) n;
            continue;
        }

        /* a time spent failing (3d), or 0 or off: never; a bare count,
         * its meaning before, is refused rather than read as seconds */
        if (ngx_strncmp(value[i].data, "disable_after=", 14) == 0) {
            s.data = value[i].data + 14;
            s.len = value[i].len - 14;

            if ((s.len == 1 && s.data[0] == '0')
                || (s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0))
            {
                nc->disable_after = 0;
                continue;
            }

            if (s.len == 0 || s.data[s.len - 1] < 'a'
                || s.data[s.len - 1] > 'z')
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": disable_after= is the time an "
                                   "endpoint's deliveries fail before it is "
                                   "disabled, with its unit (3d, 12h), or "
                                   "off", &value[i]);
                return NGX_CONF_ERROR;
            }

            t = ngx_parse_time(&s, 0);
            if (t == (ngx_msec_t) NGX_ERROR || t == 0) {
                goto invalid;
            }

            nc->disable_after = t;
            continue;
        }

        if (ngx_strncmp(value[i].data, "backoff_scale=", 14) == 0) {
            n = ngx_atoi(value[i].data + 14, value[i].len - 14);
            if (n < 1 || n > 100000) {
                goto invalid;
            }

            nc->backoff_scale = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "allow_loopback=", 15) == 0) {
            if (ngx_strcmp(value[i].data + 15, "on") == 0) {
                nc->allow_loopback = 1;

            } else if (ngx_strcmp(value[i].data + 15, "off") == 0) {
                nc->allow_loopback = 0;

            } else {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "ca=", 3) == 0) {
            name.data = value[i].data + 3;
            name.len = value[i].len - 3;

            if (name.len == 0
                || ngx_http_payments_read_file(cf, &name, &cmd->name, 1,
                                               NGX_HTTP_PAYMENTS_FILE_CA,
                                               &pem)
                   != NGX_OK)
            {
                goto invalid;
            }

            nc->ca = ngx_http_payments_curl_trust(cf, &pem);
            if (nc->ca == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            ms = &nc->interval;
            v.data = value[i].data + 9;
            v.len = value[i].len - 9;

        } else if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            ms = &nc->timeout;
            v.data = value[i].data + 8;
            v.len = value[i].len - 8;

        } else if (ngx_strncmp(value[i].data, "connect_timeout=", 16) == 0) {
            ms = &nc->connect_timeout;
            v.data = value[i].data + 16;
            v.len = value[i].len - 16;

        } else if (ngx_strncmp(value[i].data, "lease=", 6) == 0) {
            ms = &nc->lease;
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

        } else {
            goto invalid;
        }

        *ms = ngx_parse_time(&v, 0);
        if (*ms == (ngx_msec_t) NGX_ERROR || *ms < 50
            || *ms > 3600 * 1000)
        {
            goto invalid;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\": %s",
                       &value[i], &cmd->name,
                       ngx_http_payments_param_range(
                           &value[i], ngx_http_payments_notify_ranges));
    return NGX_CONF_ERROR;
}


/* payments_notify_allow_host name ...: exact host names, lower case */
char *
ngx_http_payments_notify_allow_host(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    ngx_str_t   *value, *h;
    ngx_uint_t   i, j;

    if (pmcf->notify.allow_hosts == NULL) {
        pmcf->notify.allow_hosts = ngx_array_create(cf->pool, 4,
                                                    sizeof(ngx_str_t));
        if (pmcf->notify.allow_hosts == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0 || value[i].len > 253) {
            goto invalid;
        }

        for (j = 0; j < value[i].len; j++) {
            u_char c = value[i].data[j];

            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                  || c == '.' || c == '-'))
            {
                goto invalid;
            }
        }

        h = ngx_array_push(pmcf->notify.allow_hosts);
        if (h == NULL) {
            return NGX_CONF_ERROR;
        }

        *h = value[i];
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid host \"%V\" in \"%V\": a DNS name in lower "
                       "case", &value[i], &cmd->name);
    return NGX_CONF_ERROR;
}


/* init_main_conf: the defaults, and what nginx -t refuses */
char *
ngx_http_payments_notify_merge(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf)
{
    ngx_http_payments_notify_conf_t  *nc = &pmcf->notify;
    ngx_http_payments_conf_at_t      *at;

    at = &pmcf->at[NGX_HTTP_PAYMENTS_AT_NOTIFY];

    ngx_conf_init_value(nc->enable, 0);
    ngx_conf_init_msec_value(nc->interval, 1000);
    ngx_conf_init_uint_value(nc->batch, 32);
    ngx_conf_init_msec_value(nc->timeout, 10000);
    ngx_conf_init_msec_value(nc->connect_timeout, 3000);
    ngx_conf_init_msec_value(nc->lease, 60000);
    ngx_conf_init_msec_value(nc->disable_after, 3 * 86400 * 1000);
    ngx_conf_init_uint_value(nc->per_endpoint, 8);
    ngx_conf_init_uint_value(nc->backoff_scale, 1);
    ngx_conf_init_value(nc->allow_loopback, 0);

    /* a test rig's setting: a merchant's endpoint could then make the
     * gateway post to services listening on this machine */
    if (nc->allow_loopback) {
        ngx_http_payments_conf_log(NGX_LOG_WARN, cf, at,
                                   "payments_notify allow_loopback=on: "
                                   "notifications may be delivered to this "
                                   "machine's loopback addresses, which is "
                                   "for tests only; a merchant's endpoint "
                                   "could reach local services");
    }

    if (!nc->enable) {
        return NGX_CONF_OK;
    }

    if (pmcf->keyring == NULL) {
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf, at,
                                   "payments_notify on needs "
                                   "payments_encryption_key: the endpoints' "
                                   "signing secrets are sealed with it");
        return NGX_CONF_ERROR;
    }

    if (nc->lease <= nc->timeout + 1000) {
        ngx_http_payments_conf_log(NGX_LOG_EMERG, cf, at,
                           "payments_notify: lease=%M must exceed timeout=%M "
                           "by more than 1s: a delivery may not outlive its "
                           "claim", nc->lease, nc->timeout);
        return NGX_CONF_ERROR;
    }

    if (nc->connect_timeout > nc->timeout) {
        nc->connect_timeout = nc->timeout;
    }

    return NGX_CONF_OK;
}
