
/*
 * Copyright (C) ngx_payments authors
 *
 * payments_psp's parameters that differ by dialect, checked at nginx -t
 * against the dialect's table entry (include/payments/dialect.h,
 * PAY_PSP_P_*): one it does not take is refused, one it needs must be
 * there; the webhook secrets made what its verifier takes, the webhook
 * keys' kids unique.  The messages name the dialects from the table.
 * _psp_conf.c, which reads the directive, calls it; it calls no other
 * glue file.
 */


#include "ngx_http_payments_module.h"


static const char *ngx_http_payments_dialects_taking(ngx_conf_t *cf,
    unsigned bit);


/*
 * The dialect's own parameters (dialect.h's PAY_PSP_P_*): one it does not
 * take is refused, one it needs must be there.  The messages name the
 * parameters; the dialects that take them come from the table.
 */

static const struct {
    unsigned     bit;
    const char  *names;
    const char  *needs;
} ngx_http_payments_psp_param_names[] = {
    { PAY_PSP_P_WEBHOOK_SECRET, "webhook_secret_file=",
      "needs webhook_secret_file= (the webhook signing secret; repeat it to "
      "roll the secret)" },
    { PAY_PSP_P_WEBHOOK_KEY,
      "webhook_key=, webhook_header=, webhook_iss= and webhook_aud=",
      "needs webhook_key=KID:es256|rs256:FILE (the PSP's public key; repeat "
      "it to roll keys)" },
    { PAY_PSP_P_MERCHANT_ACCOUNT, "merchant_account=",
      "needs merchant_account= (the PSP's merchant account)" },
    { PAY_PSP_P_VERSION, "stripe_version=", NULL },
    { PAY_PSP_P_TOLERANCE, "webhook_tolerance=", NULL },
    { PAY_PSP_P_TRANSFERS,
      "transfers_url=, transfers_secret_file= and balance_account=", NULL },
};


/* "stripe|adyen|generic": the table's names, for messages */
const char *
ngx_http_payments_dialect_names(ngx_conf_t *cf)
{
    return ngx_http_payments_dialects_taking(cf, 0);
}


/* the names of the dialects that take bit (0: all), "|"-separated */
static const char *
ngx_http_payments_dialects_taking(ngx_conf_t *cf, unsigned bit)
{
    u_char      *buf, *p, *last;
    ngx_uint_t   i;

    buf = ngx_pnalloc(cf->pool, 256);
    if (buf == NULL) {
        return "?";
    }

    p = buf;
    last = buf + 255;

    for (i = 0; pay_dialects[i] != NULL; i++) {
        if (bit && !(pay_dialects[i]->params & bit)) {
            continue;
        }

        p = ngx_slprintf(p, last, "%s%s", p == buf ? "" : "|",
                         pay_dialects[i]->name);
    }

    *p = '\0';

    return (const char *) buf;
}


char *
ngx_http_payments_psp_params(ngx_conf_t *cf, ngx_http_payments_psp_t *psp,
    unsigned given)
{
    size_t          len;
    u_char         *key;
    ngx_uint_t      i, j;
    const char     *why;
    pay_secret_t   *sec;
    pay_jwt_key_t  *keys;

    for (i = 0; i < sizeof(ngx_http_payments_psp_param_names)
                    / sizeof(ngx_http_payments_psp_param_names[0]); i++)
    {
        if ((given & ngx_http_payments_psp_param_names[i].bit)
            && !(psp->dl->params & ngx_http_payments_psp_param_names[i].bit))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                "\"payments_psp\" %V: %s: not a parameter of dialect=%s "
                "(only of dialect=%s)", &psp->name,
                ngx_http_payments_psp_param_names[i].names, psp->dl->name,
                ngx_http_payments_dialects_taking(cf,
                    ngx_http_payments_psp_param_names[i].bit));
            return NGX_CONF_ERROR;
        }

        if ((psp->dl->required & ngx_http_payments_psp_param_names[i].bit)
            && !(given & ngx_http_payments_psp_param_names[i].bit))
        {
            /* fail closed: a PSP whose webhooks cannot be verified */
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"payments_psp\" %V: with dialect=%s %s",
                               &psp->name, psp->dl->name,
                               ngx_http_payments_psp_param_names[i].needs);
            return NGX_CONF_ERROR;
        }
    }

    /* the secrets as the verifier takes them (Adyen's: hex-decoded) */
    if (psp->dl->secret_decode != NULL) {
        sec = psp->webhook_secrets->elts;

        for (i = 0; i < psp->webhook_secrets->nelts; i++) {
            key = ngx_pnalloc(cf->pool, sec[i].len);
            if (key == NULL) {
                return NGX_CONF_ERROR;
            }

            if (psp->dl->secret_decode(sec[i].data, sec[i].len, key, &len,
                                       &why)
                != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"payments_psp\" %V: %s", &psp->name,
                                   why);
                return NGX_CONF_ERROR;
            }

            sec[i].data = key;
            sec[i].len = len;
        }
    }

    if (psp->dl->params & PAY_PSP_P_WEBHOOK_KEY) {
        keys = psp->webhook_keys->elts;

        for (i = 0; i < psp->webhook_keys->nelts; i++) {
            for (j = 0; j < i; j++) {
                if (ngx_strcmp(keys[i].kid, keys[j].kid) == 0) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "\"payments_psp\" %V: webhook_key "
                                       "kid \"%s\" is defined twice",
                                       &psp->name, keys[i].kid);
                    return NGX_CONF_ERROR;
                }
            }
        }

        if (psp->webhook_header.len == 0) {
            ngx_str_set(&psp->webhook_header, "Payments-Verification");
        }
    }

    return NGX_CONF_OK;
}
