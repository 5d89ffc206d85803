
/*
 * Copyright (C) ngx_payments authors
 *
 * payments_psp: one PSP account and its dialect, checked at nginx -t from
 * the dialect's table entry (include/payments/dialect.h): its parameters
 * (those that differ by dialect checked in _psp_params.c), credential
 * rule, webhook secrets or keys, pins and CA.
 */


#include "ngx_http_payments_module.h"


/* prototypes */
static char *ngx_http_payments_psp_webhook_secret(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *file);
static char *ngx_http_payments_psp_webhook_key(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *v);
static char *ngx_http_payments_psp_pin(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *v);
static char *ngx_http_payments_psp_transfers(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *secret_file, ngx_str_t *cmd);
static char *ngx_http_payments_psp_auth(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *secret);



/* what each bounded parameter takes, said when one is refused */
static ngx_http_payments_range_t  ngx_http_payments_psp_ranges[] = {
    { "timeout=", "a time above 0 (10s)" },
    { "connect_timeout=", "a time above 0 (3s)" },
    { "webhook_tolerance=", "1s..1h" },
    { "mode=", "live or test" },
    { "retries=", "0..10" },
    { "retry_base=", "1ms..60s" },
    { "retry_max=", "1ms..60s" },
    { "breaker_open=", "1s..1h" },
    { "breaker=", "0..1000" },
    { "balance_account=", "up to 64 letters and digits" },
    { "webhook_header=", "a header name" },
    { "dialect=", "a dialect's name" },
    { "url=", "an https URL" },
    { "hosted=", "an https origin" },
    { NULL, NULL }
};


char *
ngx_http_payments_psp(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    u_char                   *url, *p;
    size_t                    len;
    ngx_str_t                *value, v, secret_file, transfers_secret_file, pem;
    ngx_int_t                 n;
    unsigned                  given;
    const char               *msg;
    ngx_uint_t                i;
    pay_origin_t              base, tbase, *ho;
    ngx_http_payments_psp_t  *psp;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > PAY_PSP_NAME_MAX) {
        return "needs a name of 1..32 characters";
    }

    for (i = 0; i < value[1].len; i++) {
        if (!(islower(value[1].data[i]) || isdigit(value[1].data[i])
              || value[1].data[i] == '_' || value[1].data[i] == '-'))
        {
            return "name must be [a-z0-9_-]";
        }
    }

    if (ngx_http_payments_find_psp(pmcf, (char *) value[1].data,
                                   value[1].len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_psp\": \"%V\" is defined twice",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    psp = ngx_array_push(pmcf->psps);
    if (psp == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(psp, sizeof(ngx_http_payments_psp_t));
    psp->name = value[1];
    ngx_http_payments_conf_at(cf, &psp->at);
    psp->timeout = 10000;
    psp->connect_timeout = 3000;
    psp->retries = 2;
    psp->retry_base = 100;
    psp->retry_max = 2000;
    psp->breaker = 5;
    psp->breaker_open = 30000;
    psp->webhook_tolerance = 300;
    ngx_str_null(&secret_file);
    ngx_str_null(&transfers_secret_file);
    ngx_memzero(&tbase, sizeof(pay_origin_t));
    given = 0;

    psp->webhook_secrets = ngx_array_create(cf->pool, 2,
                                            sizeof(pay_secret_t));
    psp->webhook_keys = ngx_array_create(cf->pool, 2, sizeof(pay_jwt_key_t));
    if (psp->webhook_secrets == NULL || psp->webhook_keys == NULL) {
        return NGX_CONF_ERROR;
    }

    psp->hosted = ngx_array_create(cf->pool, 2, sizeof(pay_origin_t));
    if (psp->hosted == NULL) {
        return NGX_CONF_ERROR;
    }

    /* allow_http first: it decides how the URLs are checked */
    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strcmp(value[i].data, "allow_http") == 0) {
            psp->allow_http = 1;
        }
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "allow_http") == 0) {
            continue;
        }

        /* no new checkout (a PSP being retired): its webhooks, refunds,
         * captures, disputes and pay-outs go on */
        if (ngx_strcmp(value[i].data, "closed") == 0) {
            psp->closed = 1;
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

#define ngx_http_payments_param(name)                                        \
        (len == sizeof(name) - 1 && ngx_strncmp(value[i].data, name, len) == 0)

        if (ngx_http_payments_param("dialect")) {
            psp->dl = pay_dialect_find((char *) v.data, v.len);
            if (psp->dl == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_psp\": unknown dialect "
                                   "\"%V\" (%s)", &v,
                                   ngx_http_payments_dialect_names(cf));
                return NGX_CONF_ERROR;
            }

            psp->dialect = psp->dl->id;

        } else if (ngx_http_payments_param("url")) {
            if (ngx_http_payments_url_has_userinfo(&v)) {
                goto userinfo;
            }

            url = ngx_http_payments_cstr(cf->pool, &v);
            if (url == NULL) {
                return NGX_CONF_ERROR;
            }

            if (pay_url_base((char *) url, &base, psp->allow_http, &len)
                != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_psp\" %V: url \"%V\" is not "
                                   "an https URL%s", &psp->name, &v,
                                   psp->allow_http
                                   ? ", or an http one that is not on a "
                                     "loopback address (allow_http is for "
                                     "a mock on this machine only)"
                                   : " (http needs allow_http)");
                return NGX_CONF_ERROR;
            }

            v.len = len;
            psp->url = v;

        } else if (ngx_http_payments_param("secret_file")) {
            secret_file = v;

        } else if (ngx_http_payments_param("transfers_url")) {
            given |= PAY_PSP_P_TRANSFERS;
            if (ngx_http_payments_url_has_userinfo(&v)) {
                goto userinfo;
            }

            url = ngx_http_payments_cstr(cf->pool, &v);
            if (url == NULL) {
                return NGX_CONF_ERROR;
            }

            /* the rules of url=: https, or http to a loopback mock */
            if (pay_url_base((char *) url, &tbase, psp->allow_http, &len)
                != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_psp\" %V: transfers_url "
                                   "\"%V\" is not an https URL%s",
                                   &psp->name, &v,
                                   psp->allow_http
                                   ? ", or an http one that is not on a "
                                     "loopback address (allow_http is for "
                                     "a mock on this machine only)"
                                   : " (http needs allow_http)");
                return NGX_CONF_ERROR;
            }

            v.len = len;
            psp->transfers_url = v;

        } else if (ngx_http_payments_param("transfers_secret_file")) {
            given |= PAY_PSP_P_TRANSFERS;
            transfers_secret_file = v;

        } else if (ngx_http_payments_param("balance_account")) {
            given |= PAY_PSP_P_TRANSFERS;
            /* an Adyen id: [A-Za-z0-9], as the dialect sends it */
            if (v.len > 64) {
                goto invalid;
            }

            for (n = 0; n < (ngx_int_t) v.len; n++) {
                if (!isalnum(v.data[n])) {
                    goto invalid;
                }
            }

            psp->balance_account =
                (char *) ngx_http_payments_cstr(cf->pool, &v);
            if (psp->balance_account == NULL) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("hosted")) {
            url = ngx_http_payments_cstr(cf->pool, &v);
            ho = ngx_array_push(psp->hosted);
            if (url == NULL || ho == NULL) {
                return NGX_CONF_ERROR;
            }

            if (pay_url_base((char *) url, ho, psp->allow_http, NULL) != 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_psp\" %V: hosted \"%V\" is "
                                   "not an https origin (allow_http admits "
                                   "loopback ones only)", &psp->name, &v);
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("stripe_version")) {
            given |= PAY_PSP_P_VERSION;
            psp->stripe_version = v;

        } else if (ngx_http_payments_param("merchant_account")) {
            given |= PAY_PSP_P_MERCHANT_ACCOUNT;
            psp->merchant_account = v;

        } else if (ngx_http_payments_param("timeout")) {
            psp->timeout = ngx_parse_time(&v, 0);
            if (psp->timeout == (ngx_msec_t) NGX_ERROR || psp->timeout == 0) {
                goto invalid;
            }

        } else if (ngx_http_payments_param("connect_timeout")) {
            psp->connect_timeout = ngx_parse_time(&v, 0);
            if (psp->connect_timeout == (ngx_msec_t) NGX_ERROR
                || psp->connect_timeout == 0)
            {
                goto invalid;
            }

        } else if (ngx_http_payments_param("webhook_secret_file")) {
            given |= PAY_PSP_P_WEBHOOK_SECRET;
            if (ngx_http_payments_psp_webhook_secret(cf, psp, &v)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("pin")) {
            if (ngx_http_payments_psp_pin(cf, psp, &v) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("ca_file")) {
            /* read and parsed now, so no worker opens or parses a file
             * during a handshake */
            if (ngx_http_payments_read_file(cf, &v, &cmd->name, 1,
                                            NGX_HTTP_PAYMENTS_FILE_CA, &pem)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            psp->ca = ngx_http_payments_curl_trust(cf, &pem);
            if (psp->ca == NULL) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("webhook_key")) {
            given |= PAY_PSP_P_WEBHOOK_KEY;
            if (ngx_http_payments_psp_webhook_key(cf, psp, &v)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("webhook_header")) {
            given |= PAY_PSP_P_WEBHOOK_KEY;
            for (n = 0; n < (ngx_int_t) v.len; n++) {
                /* an RFC 9110 token */
                if (!(isalnum(v.data[n])
                      || (v.data[n] != '\0'
                          && ngx_strchr("!#$%&'*+-.^_`|~", v.data[n]))))
                {
                    goto invalid;
                }
            }
            psp->webhook_header = v;

        } else if (ngx_http_payments_param("webhook_iss")) {
            given |= PAY_PSP_P_WEBHOOK_KEY;
            psp->webhook_iss = (char *) ngx_http_payments_cstr(cf->pool, &v);
            if (psp->webhook_iss == NULL) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("webhook_aud")) {
            given |= PAY_PSP_P_WEBHOOK_KEY;
            psp->webhook_aud = (char *) ngx_http_payments_cstr(cf->pool, &v);
            if (psp->webhook_aud == NULL) {
                return NGX_CONF_ERROR;
            }

        } else if (ngx_http_payments_param("webhook_tolerance")) {
            given |= PAY_PSP_P_TOLERANCE;
            psp->webhook_tolerance = ngx_parse_time(&v, 1);
            if (psp->webhook_tolerance == (time_t) NGX_ERROR
                || psp->webhook_tolerance < 1
                || psp->webhook_tolerance > 3600)
            {
                goto invalid;
            }

        } else if (ngx_http_payments_param("mode")) {
            if (v.len == 4 && ngx_strncmp(v.data, "live", 4) == 0) {
                psp->live = 1;
            } else if (!(v.len == 4 && ngx_strncmp(v.data, "test", 4) == 0)) {
                goto invalid;
            }

        } else if (ngx_http_payments_param("retries")) {
            n = ngx_atoi(v.data, v.len);
            if (n == NGX_ERROR || n > 10) {
                goto invalid;
            }
            psp->retries = n;

        } else if (ngx_http_payments_param("retry_base")) {
            psp->retry_base = ngx_parse_time(&v, 0);
            if (psp->retry_base == (ngx_msec_t) NGX_ERROR
                || psp->retry_base == 0 || psp->retry_base > 60000)
            {
                goto invalid;
            }

        } else if (ngx_http_payments_param("retry_max")) {
            psp->retry_max = ngx_parse_time(&v, 0);
            if (psp->retry_max == (ngx_msec_t) NGX_ERROR
                || psp->retry_max == 0 || psp->retry_max > 60000)
            {
                goto invalid;
            }

        } else if (ngx_http_payments_param("breaker")) {
            n = ngx_atoi(v.data, v.len);
            if (n == NGX_ERROR || n > 1000) {
                goto invalid;
            }
            psp->breaker = n;

        } else if (ngx_http_payments_param("breaker_open")) {
            psp->breaker_open = ngx_parse_time(&v, 0);
            if (psp->breaker_open == (ngx_msec_t) NGX_ERROR
                || psp->breaker_open < 1000 || psp->breaker_open > 3600000)
            {
                goto invalid;
            }

        } else {
            goto invalid;
        }

#undef ngx_http_payments_param
    }

    if (psp->dl == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_psp\" %V: needs dialect=%s",
                           &psp->name, ngx_http_payments_dialect_names(cf));
        return NGX_CONF_ERROR;
    }

    /* the dialect's own parameters, from its table entry */
    if (ngx_http_payments_psp_params(cf, psp, given) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (psp->url.len == 0) {
        return "needs url=";
    }

    if (psp->retry_base > psp->retry_max) {
        return "needs retry_base= at most retry_max=";
    }

    if (psp->hosted->nelts == 0) {
        return "needs at least one hosted= origin (the PSP's payment page)";
    }

    if (psp->allow_http && psp->live) {
        return "with mode=live refuses allow_http: live money goes over "
               "https only";
    }

    if (psp->pins && ngx_strcmp(base.scheme, "https") != 0) {
        return "with pin= needs an https url=";
    }

    if (psp->pins && psp->transfers_url.len
        && ngx_strcmp(tbase.scheme, "https") != 0)
    {
        return "with pin= needs an https transfers_url= (the pins are "
               "checked on every call of the PSP: list the keys of both "
               "hosts)";
    }

    if (secret_file.len == 0) {
        return "needs secret_file= (the PSP API key)";
    }

    if (ngx_http_payments_read_secret(cf, &secret_file, &cmd->name, 8,
                                      &psp->secret)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* A key may say which money it moves (Stripe's sk_test_/sk_live_): a
     * test key on a live PSP, or the reverse, would fail every payment or
     * move real money from a test setup.  The key is never printed. */
    if (psp->dl->credential_check != NULL) {
        msg = psp->dl->credential_check((char *) psp->secret.data,
                                        psp->secret.len, (int) psp->live);
        if (msg != NULL) {
            return (char *) msg;
        }
    }

    psp->auth_header = ngx_http_payments_psp_auth(cf, psp, &psp->secret);
    if (psp->auth_header == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_payments_psp_transfers(cf, psp, &transfers_secret_file,
                                        &cmd->name)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* what the webhook verifier is given, once */
    psp->wconf.secrets = psp->webhook_secrets->elts;
    psp->wconf.nsecrets = psp->webhook_secrets->nelts;
    psp->wconf.keys = psp->webhook_keys->elts;
    psp->wconf.nkeys = psp->webhook_keys->nelts;
    psp->wconf.header = (char *) ngx_http_payments_cstr(cf->pool,
                                                        &psp->webhook_header);
    psp->wconf.iss = psp->webhook_iss;
    psp->wconf.aud = psp->webhook_aud;
    psp->wconf.tolerance = psp->webhook_tolerance;
    psp->wconf.live = (int) psp->live;
    psp->wconf.merchant_account =
        psp->merchant_account.len
        ? (char *) ngx_http_payments_cstr(cf->pool, &psp->merchant_account)
        : NULL;

    if (psp->wconf.header == NULL
        || (psp->merchant_account.len && psp->wconf.merchant_account == NULL))
    {
        return NGX_CONF_ERROR;
    }

    if (psp->stripe_version.len) {
        len = psp->stripe_version.len + sizeof("Stripe-Version: ");
        psp->version_header = ngx_pnalloc(cf->pool, len);
        if (psp->version_header == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_snprintf((u_char *) psp->version_header, len,
                     "Stripe-Version: %V%Z", &psp->stripe_version);
    }

    return NGX_CONF_OK;

userinfo:

    /* the URL is not repeated: what precedes the "@" may be a password */
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"payments_psp\" %V: %*s has user info "
                       "(user:password@ before the host): the PSP's "
                       "credential goes in secret_file=, never in a URL",
                       &value[1], len + 1, value[i].data);
    return NGX_CONF_ERROR;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"payments_psp\" %V: invalid parameter \"%V\": %s",
                       &value[1], &value[i],
                       ngx_http_payments_param_range(
                           &value[i], ngx_http_payments_psp_ranges));
    return NGX_CONF_ERROR;
}


/* the dialect's "Name: prefix%s" with the key in place of %s (a secret:
 * never logged), or NULL */

static char *
ngx_http_payments_psp_auth(ngx_conf_t *cf, ngx_http_payments_psp_t *psp,
    ngx_str_t *secret)
{
    char        *header;
    size_t       len;
    const char  *fmt, *p;

    fmt = psp->dl->auth_header;
    p = ngx_strstr(fmt, "%s");
    if (p == NULL) {
        return NULL;
    }

    len = ngx_strlen(fmt) - 2 + secret->len + 1;
    header = ngx_pnalloc(cf->pool, len);
    if (header == NULL) {
        return NULL;
    }

    ngx_snprintf((u_char *) header, len, "%*s%V%s%Z", (size_t) (p - fmt),
                 fmt, secret, p + 2);

    return header;
}


/*
 * transfers_url=, transfers_secret_file=, balance_account= (a dialect
 * whose pay-outs go to an API of their own: Adyen's Transfers API, on the
 * balance platform's host, with an API credential of its own).  All three
 * or none: without them the PSP does not pay out, with only some of them
 * every pay-out would fail at the PSP.
 */

static char *
ngx_http_payments_psp_transfers(ngx_conf_t *cf, ngx_http_payments_psp_t *psp,
    ngx_str_t *secret_file, ngx_str_t *cmd)
{
    if (psp->dl->payout_api != PAY_PSP_API_TRANSFERS) {
        return NGX_CONF_OK;
    }

    if (psp->transfers_url.len == 0 && secret_file->len == 0
        && psp->balance_account == NULL)
    {
        return NGX_CONF_OK;
    }

    if (psp->transfers_url.len == 0 || secret_file->len == 0
        || psp->balance_account == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_psp\" %V: pay-outs with dialect=%s "
                           "need transfers_url= (the Transfers API: "
                           "https://balanceplatform-api-live.adyen.com/btl/v4"
                           ", -test for test), transfers_secret_file= (its "
                           "own API key, not secret_file=) and "
                           "balance_account= (the platform's balance "
                           "account they are paid from); %s missing",
                           &psp->name, psp->dl->name,
                           psp->transfers_url.len == 0 ? "transfers_url= is"
                           : secret_file->len == 0
                             ? "transfers_secret_file= is"
                             : "balance_account= is");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_payments_read_secret(cf, secret_file, cmd, 8,
                                      &psp->transfers_secret)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    psp->transfers_auth_header = ngx_http_payments_psp_auth(cf, psp,
                                                  &psp->transfers_secret);
    if (psp->transfers_auth_header == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * pin=sha256//BASE64: the SHA-256 of the PSP's TLS public key
 * (SubjectPublicKeyInfo, DER), as curl's CURLOPT_PINNEDPUBLICKEY takes it.
 * Repeat it to roll the key: any one of them must match.
 */

static char *
ngx_http_payments_psp_pin(ngx_conf_t *cf, ngx_http_payments_psp_t *psp,
    ngx_str_t *v)
{
    ngx_int_t  rc;

    rc = ngx_http_payments_pin_add(cf, &psp->pins, v);

    if (rc == NGX_DECLINED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_psp\" %V: pin=\"%V\" is not sha256// "
                           "and the base64 of a SHA-256 (44 characters); "
                           "doc/ngx_http_payments_module.md, payments_psp, "
                           "has the openssl command that makes one",
                           &psp->name, v);
    }

    return rc == NGX_OK ? NGX_CONF_OK : NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_payments_pin_add(ngx_conf_t *cf, char **pins, ngx_str_t *v)
{
    u_char      *p, *all;
    size_t       old;
    ngx_uint_t   i;

    /* "sha256//" and base64 of 32 bytes: 43 characters and one "=" */
    if (v->len != 8 + 44 || ngx_strncmp(v->data, "sha256//", 8) != 0
        || v->data[8 + 43] != '=')
    {
        return NGX_DECLINED;
    }

    for (i = 8; i < 8 + 43; i++) {
        if (!isalnum(v->data[i]) && v->data[i] != '+' && v->data[i] != '/') {
            return NGX_DECLINED;
        }
    }

    old = *pins ? ngx_strlen(*pins) : 0;

    all = ngx_pnalloc(cf->pool, old + 1 + v->len + 1);
    if (all == NULL) {
        return NGX_ERROR;
    }

    p = all;

    if (old) {
        p = ngx_cpymem(p, *pins, old);
        *p++ = ';';
    }

    p = ngx_cpymem(p, v->data, v->len);
    *p = '\0';

    *pins = (char *) all;

    return NGX_OK;
}


/*
 * webhook_key=KID:ALG:FILE (generic): a public key in PEM, pinned to one
 * algorithm; the token's kid picks it, the token's alg must equal ALG.
 */

static char *
ngx_http_payments_psp_webhook_key(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *v)
{
    u_char         *c1, *c2, *last;
    ngx_str_t       kid, alg, file, pem, name;
    pay_jwt_key_t  *key;

    last = v->data + v->len;
    c1 = ngx_strlchr(v->data, last, ':');
    c2 = c1 ? ngx_strlchr(c1 + 1, last, ':') : NULL;

    if (c2 == NULL || c1 == v->data || c2 == c1 + 1 || c2 + 1 == last) {
        goto invalid;
    }

    kid.data = v->data;
    kid.len = c1 - v->data;
    alg.data = c1 + 1;
    alg.len = c2 - c1 - 1;
    file.data = c2 + 1;
    file.len = last - c2 - 1;

    key = ngx_array_push(psp->webhook_keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(key, sizeof(pay_jwt_key_t));

    if (alg.len == 5 && ngx_strncasecmp(alg.data, (u_char *) "es256", 5) == 0)
    {
        key->alg = PAY_JWT_ES256;

    } else if (alg.len == 5
               && ngx_strncasecmp(alg.data, (u_char *) "rs256", 5) == 0)
    {
        key->alg = PAY_JWT_RS256;

    } else {
        goto invalid;
    }

    key->kid = (const char *) ngx_http_payments_cstr(cf->pool, &kid);
    if (key->kid == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&name, "payments_psp");

    /* a public key: it need not be private, only well-formed */
    if (ngx_http_payments_read_file(cf, &file, &name, 1,
                                    NGX_HTTP_PAYMENTS_FILE_PUBLIC, &pem)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    key->pem = (const char *) pem.data;
    key->pem_len = pem.len;

    if (pay_jwt_key_check(key) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_psp\" %V: webhook_key \"%V\": the "
                           "file is not a %s public key in PEM (an EC P-256 "
                           "key for es256, RSA of 2048 bits or more for "
                           "rs256), or the kid is not usable",
                           &psp->name, &kid,
                           key->alg == PAY_JWT_ES256 ? "ES256" : "RS256");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"payments_psp\" %V: webhook_key=\"%V\" is not "
                       "KID:es256|rs256:FILE", &psp->name, v);
    return NGX_CONF_ERROR;
}


/* webhook_secret_file=FILE: read as is; the dialect decides what it is */

static char *
ngx_http_payments_psp_webhook_secret(ngx_conf_t *cf,
    ngx_http_payments_psp_t *psp, ngx_str_t *file)
{
    ngx_str_t      content, name;
    pay_secret_t  *sec;

    ngx_str_set(&name, "payments_psp");

    if (ngx_http_payments_read_secret(cf, file, &name, 16, &content)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    sec = ngx_array_push(psp->webhook_secrets);
    if (sec == NULL) {
        return NGX_CONF_ERROR;
    }

    sec->data = content.data;
    sec->len = content.len;

    return NGX_CONF_OK;
}


ngx_http_payments_psp_t *
ngx_http_payments_find_psp(ngx_http_payments_main_conf_t *pmcf,
    const char *name, size_t len)
{
    ngx_uint_t                i;
    ngx_http_payments_psp_t  *psp;

    psp = pmcf->psps->elts;

    for (i = 0; i < pmcf->psps->nelts; i++) {
        if (psp[i].name.len == len
            && ngx_strncmp(psp[i].name.data, name, len) == 0)
        {
            return &psp[i];
        }
    }

    return NULL;
}


/*
 * The PSPs configured in the other mode than the API key's, a text[]
 * literal ("{a,b}"; names are [a-z0-9_-]): a checkout or a saved method of
 * theirs is not this key's to cancel or detach (test money never reaches
 * a live PSP, nor the reverse).  NULL on no memory.
 */

char *
ngx_http_payments_psps_other_mode(ngx_http_payments_ctx_t *ctx)
{
    u_char                   *p, *s;
    size_t                    len;
    ngx_uint_t                i;
    ngx_http_payments_psp_t  *psp;

    psp = ctx->pmcf->psps->elts;
    len = sizeof("{}");

    for (i = 0; i < ctx->pmcf->psps->nelts; i++) {
        len += psp[i].name.len + 1;
    }

    s = ngx_pnalloc(ctx->request->pool, len);
    if (s == NULL) {
        return NULL;
    }

    p = s;
    *p++ = '{';

    for (i = 0; i < ctx->pmcf->psps->nelts; i++) {
        if ((ngx_uint_t) psp[i].live == (ngx_uint_t) ctx->key_live) {
            continue;
        }

        if (p[-1] != '{') {
            *p++ = ',';
        }

        p = ngx_cpymem(p, psp[i].name.data, psp[i].name.len);
    }

    *p++ = '}';
    *p = '\0';

    return (char *) s;
}
