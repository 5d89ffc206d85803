
/*
 * Copyright (C) ngx_payments authors
 *
 * ngx_http_payments_limit_module's Redis, as the configuration names it:
 * the payments_limit_redis directive (the address, parsed and a name
 * resolved here, when the configuration is read; the ACL user and the
 * password file; the
 * check's timeout; the key prefix).  The connection that uses it is
 * _limit_redis.c's.
 */


#include "ngx_http_payments_limit.h"
#include "ngx_http_payments_limit_int.h"

#include <payments/ratelimit_redis.h>


static ngx_int_t ngx_http_payments_limit_redis_tls_param(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_payments_limit_redis_conf_t *rc,
    ngx_str_t *v);
static ngx_int_t ngx_http_payments_limit_redis_tls_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_payments_limit_redis_conf_t *rc,
    ngx_url_t *u);
#if (NGX_SSL)
static ngx_int_t ngx_http_payments_limit_redis_ssl(ngx_conf_t *cf,
    ngx_http_payments_limit_redis_conf_t *rc);
#endif


/*
 * payments_limit_redis ADDRESS [user=NAME] [password_file=FILE]
 *     [hash_key_file=FILE] [timeout=TIME] [prefix=NAME];
 *
 * ADDRESS: host:port ([IPv6]:port) or unix:/path.  A name is resolved
 * here, when the configuration is read (at start and at each reload), as
 * nginx resolves an upstream server's: a worker never looks one up.
 */

char *
ngx_http_payments_limit_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_payments_limit_main_conf_t *lmcf = conf;

    ngx_int_t                              n;
    ngx_str_t                             *value, s;
    ngx_url_t                              u;
    ngx_uint_t                             i;
    ngx_http_payments_limit_redis_conf_t  *rc;

    if (lmcf->redis) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rc = ngx_pcalloc(cf->pool, sizeof(ngx_http_payments_limit_redis_conf_t));
    if (rc == NULL) {
        return NGX_CONF_ERROR;
    }

    rc->name = value[1];
    rc->timeout = 50;
    ngx_str_set(&rc->prefix, "payments");
    pay_rl_redis_script_sha(rc->sha);

    s = value[1];

    if (s.len >= 5 && ngx_strncmp(s.data, "unix:", 5) == 0
        && (s.len == 5 || s.data[5] != '/'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": \"%V\": a unix socket's path is "
                           "absolute, e.g. unix:/run/redis/redis.sock",
                           &cmd->name, &s);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = s;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err && ngx_strcmp(u.err, "host not found") == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": host \"%V\" not found: Redis's name "
                               "is resolved when nginx reads its "
                               "configuration; give a name that resolves "
                               "now, or an address", &cmd->name, &u.host);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\" is not an address and port "
                               "(%s): write 127.0.0.1:6379, [::1]:6379, "
                               "redis.internal:6379 or "
                               "unix:/run/redis/redis.sock", &cmd->name, &s,
                               u.err ? u.err : "invalid");
        }

        return NGX_CONF_ERROR;
    }

    if (u.family != AF_UNIX && (u.no_port || u.uri.len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": \"%V\" is not an address and port: "
                           "write 127.0.0.1:6379, [::1]:6379, "
                           "redis.internal:6379 or unix:/run/redis/redis.sock",
                           &cmd->name, &s);
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": \"%V\" names no address",
                           &cmd->name, &s);
        return NGX_CONF_ERROR;
    }

    rc->addrs = u.addrs;
    rc->naddrs = u.naddrs;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            n = ngx_parse_time(&s, 0);

            if (n == NGX_ERROR || n < 1 || n > 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid \"%V\": the time a check "
                                   "may wait for Redis, 1ms to 1s, e.g. "
                                   "timeout=50ms", &cmd->name, &value[i]);
                return NGX_CONF_ERROR;
            }

            rc->timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            for (n = 0; n < (ngx_int_t) s.len; n++) {
                if (!((s.data[n] >= 'a' && s.data[n] <= 'z')
                      || (s.data[n] >= 'A' && s.data[n] <= 'Z')
                      || (s.data[n] >= '0' && s.data[n] <= '9')
                      || s.data[n] == '_' || s.data[n] == '-'
                      || s.data[n] == '.'))
                {
                    break;
                }
            }

            if (s.len == 0 || s.len > 64 || n != (ngx_int_t) s.len) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid \"%V\": 1 to 64 letters, "
                                   "digits, '_', '-' or '.', e.g. "
                                   "prefix=payments", &cmd->name, &value[i]);
                return NGX_CONF_ERROR;
            }

            rc->prefix = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            /* a Redis 6 ACL user's name: printable, no space */
            for (n = 0; n < (ngx_int_t) s.len; n++) {
                if (s.data[n] <= 0x20 || s.data[n] >= 0x7f) {
                    break;
                }
            }

            if (s.len == 0 || s.len > 128 || n != (ngx_int_t) s.len) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": invalid \"user=\": an ACL user's "
                                   "name, 1 to 128 visible characters",
                                   &cmd->name);
                return NGX_CONF_ERROR;
            }

            rc->user = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password_file=", 14) == 0) {
            s.data = value[i].data + 14;
            s.len = value[i].len - 14;

            /* mode 0600 or stricter; the password is never logged */
            if (ngx_http_payments_read_file(cf, &s, &cmd->name, 1,
                                            NGX_HTTP_PAYMENTS_FILE_SECRET,
                                            &rc->password)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "hash_key_file=", 14) == 0) {
            s.data = value[i].data + 14;
            s.len = value[i].len - 14;

            /* the same file on every gateway: the card-testing guard's
             * keys in Redis are HMACs under it; never logged, never sent */
            if (ngx_http_payments_read_file(cf, &s, &cmd->name, 1,
                                            NGX_HTTP_PAYMENTS_FILE_SECRET,
                                            &rc->hash_key)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            if (rc->hash_key.len < 32) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": the key in \"%V\" is shorter "
                                   "than 32 characters: write one of 32 "
                                   "random bytes in hex (openssl rand -hex "
                                   "32), the same on every gateway",
                                   &cmd->name, &s);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "tls", 3) == 0) {
            if (ngx_http_payments_limit_redis_tls_param(cf, cmd, rc,
                                                        &value[i])
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid parameter \"%V\": it takes "
                           "user=, password_file=, hash_key_file=, "
                           "timeout=, prefix=, tls, tls_ca_file=, "
                           "tls_name=, tls_verify=, tls_certificate= and "
                           "tls_certificate_key=",
                           &cmd->name, &value[i]);
        return NGX_CONF_ERROR;
    }

    /* AUTH user password: an ACL user always comes with its password */
    if (rc->user.len && rc->password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": user= needs password_file=, the ACL "
                           "user's password", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_payments_limit_redis_tls_conf(cf, cmd, rc, &u) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    lmcf->redis = rc;

    return NGX_CONF_OK;
}


/* tls, tls_ca_file=, tls_name=, tls_verify=, tls_certificate=,
 * tls_certificate_key= */

static ngx_int_t
ngx_http_payments_limit_redis_tls_param(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_payments_limit_redis_conf_t *rc, ngx_str_t *v)
{
    ngx_str_t  s;

    if (ngx_strcmp(v->data, "tls") == 0) {
        rc->tls = 1;
        return NGX_OK;
    }

    if (ngx_strcmp(v->data, "tls_verify=on") == 0
        || ngx_strcmp(v->data, "tls_verify=off") == 0)
    {
        rc->tls_verify = (v->data[12] == 'n');
        rc->tls_verify_set = 1;
        return NGX_OK;
    }

    if (ngx_strncmp(v->data, "tls_ca_file=", 12) == 0 && v->len > 12) {
        rc->tls_ca.data = v->data + 12;
        rc->tls_ca.len = v->len - 12;
        return NGX_OK;
    }

    if (ngx_strncmp(v->data, "tls_certificate=", 16) == 0 && v->len > 16) {
        rc->tls_cert.data = v->data + 16;
        rc->tls_cert.len = v->len - 16;
        return NGX_OK;
    }

    if (ngx_strncmp(v->data, "tls_certificate_key=", 20) == 0
        && v->len > 20)
    {
        rc->tls_key.data = v->data + 20;
        rc->tls_key.len = v->len - 20;
        return NGX_OK;
    }

    if (ngx_strncmp(v->data, "tls_name=", 9) == 0 && v->len > 9
        && v->len - 9 <= 253)
    {
        s.data = v->data + 9;
        s.len = v->len - 9;

        if (ngx_strlchr(s.data, s.data + s.len, '/') == NULL) {
            rc->tls_name = s;
            return NGX_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": invalid \"%V\": write tls, "
                       "tls_ca_file=FILE, tls_name=NAME, "
                       "tls_verify=on|off, tls_certificate=FILE or "
                       "tls_certificate_key=FILE", &cmd->name, v);
    return NGX_ERROR;
}


/*
 * TLS to Redis, with nginx's own OpenSSL layer (the link's connection is
 * nginx's: ngx_ssl_create_connection(), ngx_ssl_handshake()).  The
 * certificate is verified by default: against tls_ca_file=, for tls_name=
 * (default: the address's host).  Combinations that cannot work, or
 * would not verify what they seem to, are refused here.
 */

static ngx_int_t
ngx_http_payments_limit_redis_tls_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_payments_limit_redis_conf_t *rc, ngx_url_t *u)
{
    u_char     *p;
    ngx_str_t   key;

    if (!rc->tls) {
        if (rc->tls_ca.len || rc->tls_cert.len || rc->tls_key.len
            || rc->tls_name.len || rc->tls_verify_set)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": tls_ parameters need \"tls\"",
                               &cmd->name);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

#if !(NGX_SSL)

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": tls: this nginx is built without SSL",
                       &cmd->name);
    return NGX_ERROR;

#else

    if (!rc->tls_verify_set) {
        rc->tls_verify = 1;
    }

    if (rc->tls_verify && rc->tls_ca.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": tls needs tls_ca_file=, the CA "
                           "certificates that Redis's certificate is "
                           "verified against", &cmd->name);
        return NGX_ERROR;
    }

    if (!rc->tls_verify && (rc->tls_ca.len || rc->tls_name.len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": tls_verify=off checks no certificate: "
                           "tls_ca_file= and tls_name= would not be used",
                           &cmd->name);
        return NGX_ERROR;
    }

    if ((rc->tls_cert.len == 0) != (rc->tls_key.len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": tls_certificate= and "
                           "tls_certificate_key= go together", &cmd->name);
        return NGX_ERROR;
    }

    /* the name Redis's certificate must be for: the address's host */
    if (rc->tls_name.len == 0 && rc->tls_verify) {
        if (u->family == AF_UNIX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": a unix socket names no host: give "
                               "tls_name=, the name in Redis's "
                               "certificate", &cmd->name);
            return NGX_ERROR;
        }

        rc->tls_name = u->host;

        if (rc->tls_name.len > 2 && rc->tls_name.data[0] == '[') {
            rc->tls_name.data++;
            rc->tls_name.len -= 2;
        }
    }

    p = ngx_pnalloc(cf->pool, rc->tls_name.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, rc->tls_name.data, rc->tls_name.len);
    p[rc->tls_name.len] = '\0';
    rc->tls_name.data = p;

    rc->tls_name_ip = ngx_inet_addr(p, rc->tls_name.len) != INADDR_NONE;
#if (NGX_HAVE_INET6)
    {
    u_char  a6[16];

    if (ngx_inet6_addr(p, rc->tls_name.len, a6) == NGX_OK) {
        rc->tls_name_ip = 1;
    }
    }
#endif

    /* the client key, a secret: mode 0600 or stricter, as the others;
     * OpenSSL reads it from its path, and it is never logged */
    if (rc->tls_key.len) {
        if (ngx_http_payments_read_file(cf, &rc->tls_key, &cmd->name, 1,
                                        NGX_HTTP_PAYMENTS_FILE_SECRET, &key)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_explicit_memzero(key.data, key.len);
    }

    return ngx_http_payments_limit_redis_ssl(cf, rc);

#endif
}


#if (NGX_SSL)

/* nginx's SSL context for the link, as the proxy module makes its own */

static ngx_int_t
ngx_http_payments_limit_redis_ssl(ngx_conf_t *cf,
    ngx_http_payments_limit_redis_conf_t *rc)
{
    ngx_pool_cleanup_t  *cln;

    rc->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (rc->ssl == NULL) {
        return NGX_ERROR;
    }

    rc->ssl->log = cf->log;

    if (ngx_ssl_create(rc->ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(rc->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = rc->ssl;

    if (rc->tls_cert.len
        && ngx_ssl_certificate(cf, rc->ssl, &rc->tls_cert, &rc->tls_key,
                               NULL)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rc->tls_verify
        && ngx_ssl_trusted_certificate(cf, rc->ssl, &rc->tls_ca, 4)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}

#endif
