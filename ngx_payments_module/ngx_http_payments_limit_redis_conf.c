
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


/*
 * payments_limit_redis ADDRESS [user=NAME] [password_file=FILE]
 *     [timeout=TIME] [prefix=NAME];
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

        if (ngx_strcmp(value[i].data, "tls") == 0
            || ngx_strncmp(value[i].data, "tls=", 4) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\": the module's connection to "
                               "Redis has no TLS: reach Redis on loopback, "
                               "a unix socket or a private network, or "
                               "through a TLS tunnel (stunnel) on loopback",
                               &cmd->name, &value[i]);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": invalid parameter \"%V\": it takes "
                           "user=, password_file=, timeout= and prefix=",
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

    lmcf->redis = rc;

    return NGX_CONF_OK;
}
