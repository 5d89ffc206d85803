
/*
 * Copyright (C) ngx_payments authors
 *
 * The shopper's side of the gateway, as configured: payments_public_origin,
 * the origin every link to it is made on (pay links, the PSPs' return
 * URLs, the plain-HTTP redirects: never the Host header), and
 * payments_html, the pages' script and style, read at nginx -t and served
 * from memory.  The directive table of _module.c names them.
 */


#include "ngx_http_payments_module.h"


char *
ngx_http_payments_public_origin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    size_t         len;
    u_char        *url, *p;
    ngx_str_t     *value;
    pay_origin_t   o;

    if (pmcf->public_origin.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    url = ngx_http_payments_cstr(cf->pool, &value[1]);
    if (url == NULL) {
        return NGX_CONF_ERROR;
    }

    /* plain http only for a loopback test (the directive's reference) */
    if (pay_url_base((char *) url, &o, 1, &len) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_public_origin\": \"%V\" is not an "
                           "https origin (http only for a loopback host)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    /*
     * An origin, nothing after its host and port but a slash: the links are
     * the origin and the gateway's own paths (/v1/checkouts/ID/pay), which
     * nginx serves at the root; a path here would make every link one that
     * nothing serves.
     */
    p = ngx_strlcasestrn(url, url + len, (u_char *) "://", 3 - 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    for (p += 3; p < url + len; p++) {
        if (*p == '/' || *p == '?' || *p == '#') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"payments_public_origin\": \"%V\" has a "
                               "path: give the origin alone "
                               "(https://host[:port]); the gateway's links "
                               "add their own paths to it", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    pmcf->public_origin.data = value[1].data;
    pmcf->public_origin.len = len;
    pmcf->public_https = (ngx_strcmp(o.scheme, "https") == 0);

    return NGX_CONF_OK;
}


char *
ngx_http_payments_html(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    u_char     *p;
    ngx_str_t  *value, file;

    if (pmcf->html_js.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    file.len = value[1].len + sizeof("/pending.js");
    file.data = ngx_pnalloc(cf->pool, file.len);
    if (file.data == NULL) {
        return NGX_CONF_ERROR;
    }

    /* a C string: the file is opened by this name */
    p = ngx_sprintf(file.data, "%V/pending.js%Z", &value[1]);
    file.len = p - file.data - 1;

    if (ngx_http_payments_read_file(cf, &file, &cmd->name, 1,
                                    NGX_HTTP_PAYMENTS_FILE_PUBLIC,
                                    &pmcf->html_js)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    file.data = ngx_pnalloc(cf->pool, value[1].len + sizeof("/style.css"));
    if (file.data == NULL) {
        return NGX_CONF_ERROR;
    }

    /* a C string: the file is opened by this name */
    p = ngx_sprintf(file.data, "%V/style.css%Z", &value[1]);
    file.len = p - file.data - 1;

    if (ngx_http_payments_read_file(cf, &file, &cmd->name, 1,
                                    NGX_HTTP_PAYMENTS_FILE_PUBLIC,
                                    &pmcf->html_css)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
