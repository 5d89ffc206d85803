
/*
 * Copyright (C) ngx_payments authors
 *
 * The payments_risk directive (doc/ngx_http_payments_module.md), checked
 * whole when the configuration is read: the provider's URL, its secrets
 * (files of mode 0600), timeouts, the on_error= policy, which checkouts
 * are checked, the pins and CA, the check after the payment; and
 * payments_admin_key, the review API's key.  The check itself is _risk.c.
 */


#include "ngx_http_payments_module.h"

#include <payments/apikey.h>


static char *ngx_http_payments_risk_list(ngx_conf_t *cf, ngx_str_t *v,
    ngx_array_t **list, ngx_uint_t currency);
static char *ngx_http_payments_risk_pin(ngx_conf_t *cf,
    ngx_http_payments_risk_t *rk, ngx_str_t *v);


/* after_payment_retry= at most: the sweeper's horizon (_risk_after.c) is
 * a week of first checks */
#define NGX_HTTP_PAYMENTS_RISK_AFTER_RETRY_MAX  86400


static ngx_http_payments_range_t  ngx_http_payments_risk_ranges[] = {
    { "timeout=", "a time above 0" },
    { "connect_timeout=", "a time above 0" },
    { "review=", "a time above 0" },
    { "after_payment_retry=", "1s..1d" },
    { "after_payment=", "on or off" },
    { "on_error=", "deny, allow or review" },
    { "merchants=", "a comma-separated list of merchant ids" },
    { "currencies=", "a comma-separated list of ISO 4217 codes" },
    { "min_amount=", "an amount in minor units, 0 or more" },
    { NULL, NULL }
};


/*
 * payments_risk url=URL secret_file=FILE [answer_secret_file=FILE]
 *     [timeout=TIME] [connect_timeout=TIME] [on_error=deny|allow|review]
 *     [merchants=ID,...] [currencies=CUR,...] [min_amount=MINOR]
 *     [review=TIME] [pin=sha256//...] [ca_file=FILE] [allow_http]
 *     [after_payment=on|off] [after_payment_retry=TIME]
 */

char *
ngx_http_payments_risk_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_loc_conf_t *plcf = conf;

    u_char                    *p;
    size_t                     len;
    ngx_str_t                 *value, v, secret_file, answer_file, url, pem;
    ngx_int_t                  n;
    ngx_uint_t                 i;
    pay_origin_t               base;
    ngx_http_payments_risk_t  *rk;
    ngx_http_payments_main_conf_t  *pmcf;

    if (plcf->risk != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        plcf->risk = NULL;
        return NGX_CONF_OK;
    }

    rk = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_risk_t));
    if (rk == NULL) {
        return NGX_CONF_ERROR;
    }

    rk->timeout = 2000;
    ngx_http_payments_conf_at(cf, &rk->at);
    rk->connect_timeout = 1000;
    rk->on_error = PAY_RISK_DENY;
    rk->review = 43200;
    rk->after_retry = NGX_CONF_UNSET;
    ngx_str_null(&secret_file);
    ngx_str_null(&answer_file);
    ngx_str_null(&url);

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_strcmp(value[i].data, "allow_http") == 0) {
            rk->allow_http = 1;
        }
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "allow_http") == 0) {
            continue;
        }

        p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');
        if (p == NULL) {
            goto invalid;
        }

        len = p - value[i].data;
        v.data = p + 1;
        v.len = value[i].len - len - 1;

        if (v.len == 0) {
            goto invalid;
        }

#define ngx_http_payments_risk_param(name)                                   \
        (len == sizeof(name) - 1 && ngx_strncmp(value[i].data, name, len) == 0)

        if (ngx_http_payments_risk_param("url")) {
            url = v;

        } else if (ngx_http_payments_risk_param("secret_file")) {
            secret_file = v;

        } else if (ngx_http_payments_risk_param("answer_secret_file")) {
            answer_file = v;

        } else if (ngx_http_payments_risk_param("timeout")) {
            rk->timeout = ngx_parse_time(&v, 0);
            if (rk->timeout == (ngx_msec_t) NGX_ERROR || rk->timeout == 0) {
                goto invalid;
            }

        } else if (ngx_http_payments_risk_param("connect_timeout")) {
            rk->connect_timeout = ngx_parse_time(&v, 0);
            if (rk->connect_timeout == (ngx_msec_t) NGX_ERROR
                || rk->connect_timeout == 0)
            {
                goto invalid;
            }

        } else if (ngx_http_payments_risk_param("review")) {
            rk->review = ngx_parse_time(&v, 1);
            if (rk->review == (time_t) NGX_ERROR || rk->review == 0) {
                goto invalid;
            }

        } else if (ngx_http_payments_risk_param("after_payment")) {
            if (v.len == 2 && ngx_strncmp(v.data, "on", 2) == 0) {
                rk->after_payment = 1;

            } else if (v.len == 3 && ngx_strncmp(v.data, "off", 3) == 0) {
                rk->after_payment = 0;

            } else {
                goto invalid;
            }

        } else if (ngx_http_payments_risk_param("after_payment_retry")) {
            rk->after_retry = ngx_parse_time(&v, 1);
            if (rk->after_retry == (time_t) NGX_ERROR
                || rk->after_retry == 0
                || rk->after_retry > NGX_HTTP_PAYMENTS_RISK_AFTER_RETRY_MAX)
            {
                goto invalid;
            }

        } else if (ngx_http_payments_risk_param("on_error")) {
            if (v.len == 4 && ngx_strncmp(v.data, "deny", 4) == 0) {
                rk->on_error = PAY_RISK_DENY;

            } else if (v.len == 5 && ngx_strncmp(v.data, "allow", 5) == 0) {
                rk->on_error = PAY_RISK_ALLOW;

            } else if (v.len == 6 && ngx_strncmp(v.data, "review", 6) == 0) {
                rk->on_error = PAY_RISK_REVIEW;

            } else {
                goto invalid;
            }

        } else if (ngx_http_payments_risk_param("merchants")) {
            if (ngx_http_payments_risk_list(cf, &v, &rk->merchants, 0)
                != NGX_CONF_OK)
            {
                goto invalid;
            }

        } else if (ngx_http_payments_risk_param("currencies")) {
            if (ngx_http_payments_risk_list(cf, &v, &rk->currencies, 1)
                != NGX_CONF_OK)
            {
                goto invalid;
            }

        } else if (ngx_http_payments_risk_param("min_amount")) {
            n = ngx_atoof(v.data, v.len);
            if (n == NGX_ERROR) {
                goto invalid;
            }

            rk->min_amount = (int64_t) n;

        } else if (ngx_http_payments_risk_param("pin")) {
            if (ngx_http_payments_risk_pin(cf, rk, &v) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_risk_param("ca_file")) {
            if (ngx_http_payments_read_file(cf, &v, &cmd->name, 1,
                                            NGX_HTTP_PAYMENTS_FILE_CA, &pem)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            rk->ca = ngx_http_payments_curl_trust(cf, &pem);
            if (rk->ca == NULL) {
                return NGX_CONF_ERROR;
            }

        } else {
            goto invalid;
        }

#undef ngx_http_payments_risk_param
    }

    if (url.len == 0) {
        return "needs url= (the risk provider's endpoint)";
    }

    rk->url = (char *) ngx_http_payments_cstr(cf->pool, &url);
    if (rk->url == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the rules of a PSP's url=: https, or http to a loopback mock */
    if (pay_url_base(rk->url, &base, rk->allow_http, NULL) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_risk\": url \"%V\" is not an https "
                           "URL%s", &url,
                           rk->allow_http
                           ? ", or an http one that is not on a loopback "
                             "address (allow_http is for a mock on this "
                             "machine only)"
                           : " (http needs allow_http)");
        return NGX_CONF_ERROR;
    }

    if (rk->pins && ngx_strcmp(base.scheme, "https") != 0) {
        return "with pin= needs an https url=";
    }

    if (secret_file.len == 0) {
        return "needs secret_file= (the secret our requests are signed "
               "with)";
    }

    /* 32 bytes at least: an HMAC-SHA256 key */
    if (ngx_http_payments_read_secret(cf, &secret_file, &cmd->name, 32,
                                      &rk->secret)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (answer_file.len
        && ngx_http_payments_read_secret(cf, &answer_file, &cmd->name, 32,
                                         &rk->answer_secret)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (rk->answer_secret.len
        && rk->answer_secret.len == rk->secret.len
        && ngx_memcmp(rk->answer_secret.data, rk->secret.data,
                      rk->secret.len) == 0)
    {
        return "needs answer_secret_file= other than secret_file= (an "
               "answer signed with our own secret could be our request "
               "played back)";
    }

    if (rk->after_retry != NGX_CONF_UNSET && !rk->after_payment) {
        return "with after_payment_retry= needs after_payment=on";
    }

    if (rk->after_retry == NGX_CONF_UNSET) {
        rk->after_retry = 3600;
    }

    /* the sweeper asks after the payment, one provider for the whole
     * configuration: it cannot tell which location a checkout came in by */
    if (rk->after_payment) {
        pmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_payments_module);

        if (pmcf->risk_after != NULL) {
            return "with after_payment=on is duplicate: one payments_risk "
                   "at most asks after the payment (the sweeper asks it)";
        }

        pmcf->risk_after = rk;
    }

    plcf->risk = rk;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" of \"payments_risk\": %s",
                       &value[i],
                       ngx_http_payments_param_range(
                           &value[i], ngx_http_payments_risk_ranges));
    return NGX_CONF_ERROR;
}


/* a comma-separated list: merchant ids, or currency codes ([A-Z]{3}) */

static char *
ngx_http_payments_risk_list(ngx_conf_t *cf, ngx_str_t *v, ngx_array_t **list,
    ngx_uint_t currency)
{
    u_char     *p, *last, *comma;
    ngx_str_t  *s;
    ngx_uint_t  i;

    if (*list == NULL) {
        *list = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (*list == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    p = v->data;
    last = v->data + v->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if (comma == p || (currency && comma - p != 3)) {
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < (ngx_uint_t) (comma - p); i++) {
            if (currency ? !(p[i] >= 'A' && p[i] <= 'Z')
                         : !(isalnum(p[i]) || p[i] == '_' || p[i] == '-'))
            {
                return NGX_CONF_ERROR;
            }
        }

        s = ngx_array_push(*list);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        s->data = p;
        s->len = comma - p;

        p = comma + 1;
    }

    return NGX_CONF_OK;
}


/* pin=sha256//BASE64, as payments_psp's: any one of them must match */

static char *
ngx_http_payments_risk_pin(ngx_conf_t *cf, ngx_http_payments_risk_t *rk,
    ngx_str_t *v)
{
    ngx_int_t  rc;

    rc = ngx_http_payments_pin_add(cf, &rk->pins, v);

    if (rc == NGX_DECLINED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_risk\": pin=\"%V\" is not sha256// "
                           "and the base64 of a SHA-256 (44 characters)", v);
    }

    return rc == NGX_OK ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/* payments_admin_key_file FILE: the review API's key (32 bytes at least,
 * mode 0600); only its SHA-256 is kept */

char *
ngx_http_payments_admin_key_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    ngx_str_t  *value, key;

    if (pmcf->admin_key_hash != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_payments_read_secret(cf, &value[1], &cmd->name, 32, &key)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    pmcf->admin_key_hash = ngx_pnalloc(cf->pool, 65);
    if (pmcf->admin_key_hash == NULL) {
        return NGX_CONF_ERROR;
    }

    pay_apikey_hash((char *) key.data, key.len, pmcf->admin_key_hash);
    ngx_explicit_memzero(key.data, key.len);

    return NGX_CONF_OK;
}
