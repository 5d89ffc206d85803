
/*
 * Copyright (C) ngx_payments authors
 *
 * Merchant shards, configuration only: payments_shard and
 * payments_shard_directory, the checks of a libpq connection string that
 * payments_database shares (and what each worker adds to it once, at its
 * start: conninfo_worker), and what nginx -t refuses of the shards once
 * http{} is read.  The design: doc/plans/shards.md.
 *
 * What runs on them lives elsewhere: each shard's pool in each worker,
 * with its breaker (_pg.c), the directory that API keys and merchants find
 * their shard by (_shard.c), and the routing of webhooks, pay links,
 * reviews and background work to a merchant's shard (_webhook.c,
 * _shard.c, the sweeper's files).
 */


#include "ngx_http_payments_module.h"

#include <payments/shard.h>


static ngx_uint_t ngx_http_payments_conninfo_local(const char *list,
    ngx_uint_t addrs);
static size_t ngx_http_payments_conninfo_len(const char *keyword,
    const char *val);
static u_char *ngx_http_payments_conninfo_put(u_char *p, const char *keyword,
    const char *val);


static ngx_http_payments_range_t  ngx_http_payments_shard_ranges[] = {
    { "pool=", "1..256" },
    { "timeout=", "1ms or more" },
    { "queue=", "0 or more" },
    { "breaker=", "0..1000 (0: no breaker)" },
    { "breaker_open=", "100ms..10m" },
    { NULL, NULL }
};


static ngx_http_payments_range_t  ngx_http_payments_shard_dir_ranges[] = {
    { "size=", "64k or more" },
    { "refresh=", "100ms..60s" },
    { NULL, NULL }
};


char *
ngx_http_payments_shard_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    u_char                     *who;
    ngx_int_t                   n;
    ngx_str_t                  *value, v;
    ngx_uint_t                  i;
    const char                 *why;
    ngx_http_payments_shard_t  *shard, *other;

    value = cf->args->elts;

    if (pmcf->conninfo.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_shard\" and \"payments_database\" "
                           "do not mix: give every database as a "
                           "\"payments_shard\" line, or one "
                           "\"payments_database\"");
        return NGX_CONF_ERROR;
    }

    if (pay_shard_name_check((char *) value[1].data, value[1].len, &why)
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_shard\" \"%V\": %s", &value[1], why);
        return NGX_CONF_ERROR;
    }

    other = pmcf->shards->elts;

    for (i = 0; i < pmcf->shards->nelts; i++) {
        if (other[i].name.len == value[1].len
            && ngx_strncmp(other[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"payments_shard\" \"%V\" is duplicate "
                               "(first in %s:%ui)", &value[1],
                               other[i].at.file, other[i].at.line);
            return NGX_CONF_ERROR;
        }
    }

    if (pmcf->shards->nelts == PAY_SHARD_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"payments_shard\": at most %d shards",
                           PAY_SHARD_MAX);
        return NGX_CONF_ERROR;
    }

    shard = ngx_array_push(pmcf->shards);
    if (shard == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(shard, sizeof(ngx_http_payments_shard_t));
    shard->name = value[1];
    shard->pool_size = NGX_CONF_UNSET_UINT;
    shard->db_timeout = NGX_CONF_UNSET_MSEC;
    shard->db_queue = NGX_CONF_UNSET_UINT;
    shard->breaker = NGX_CONF_UNSET_UINT;
    shard->breaker_open = NGX_CONF_UNSET_MSEC;
    ngx_http_payments_conf_at(cf, &shard->at);

    who = ngx_pnalloc(cf->pool, sizeof("\"payments_shard\" \"\"")
                                + value[1].len);
    if (who == NULL) {
        return NGX_CONF_ERROR;
    }

    *ngx_sprintf(who, "\"payments_shard\" \"%V\"", &value[1]) = '\0';

    if (ngx_http_payments_conninfo_check(cf, (char *) who, &value[2],
                                         &shard->conninfo)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "home") == 0) {
            shard->home = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "pool=", 5) == 0) {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);
            if (n < 1 || n > 256) {
                goto invalid;
            }

            shard->pool_size = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "queue=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n == NGX_ERROR) {
                goto invalid;
            }

            shard->db_queue = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            v.data = value[i].data + 8;
            v.len = value[i].len - 8;
            shard->db_timeout = ngx_parse_time(&v, 0);
            if (shard->db_timeout == (ngx_msec_t) NGX_ERROR
                || shard->db_timeout == 0)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "breaker=", 8) == 0) {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);
            if (n == NGX_ERROR || n > 1000) {
                goto invalid;
            }

            shard->breaker = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "breaker_open=", 13) == 0) {
            v.data = value[i].data + 13;
            v.len = value[i].len - 13;
            shard->breaker_open = ngx_parse_time(&v, 0);
            if (shard->breaker_open == (ngx_msec_t) NGX_ERROR
                || shard->breaker_open < 100
                || shard->breaker_open > 600000)
            {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\": %s",
                       &value[i], &cmd->name,
                       ngx_http_payments_param_range(
                           &value[i], ngx_http_payments_shard_ranges));
    return NGX_CONF_ERROR;
}


char *
ngx_http_payments_shard_directory_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    ssize_t      size;
    ngx_str_t   *value, v;
    ngx_uint_t   i;

    if (pmcf->shard_dir_size != NGX_CONF_UNSET_SIZE
        || pmcf->shard_dir_refresh != NGX_CONF_UNSET_MSEC)
    {
        return "is duplicate";
    }

    value = cf->args->elts;
    ngx_http_payments_conf_at(cf,
                        &pmcf->at[NGX_HTTP_PAYMENTS_AT_SHARD_DIRECTORY]);

    /* both set, whatever the line says: a second line is a duplicate */
    pmcf->shard_dir_size = 8 * 1024 * 1024;
    pmcf->shard_dir_refresh = 2000;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            v.data = value[i].data + 5;
            v.len = value[i].len - 5;
            size = ngx_parse_size(&v);
            if (size == NGX_ERROR || size < 64 * 1024) {
                goto invalid;
            }

            pmcf->shard_dir_size = (size_t) size;
            continue;
        }

        if (ngx_strncmp(value[i].data, "refresh=", 8) == 0) {
            v.data = value[i].data + 8;
            v.len = value[i].len - 8;
            pmcf->shard_dir_refresh = ngx_parse_time(&v, 0);
            if (pmcf->shard_dir_refresh == (ngx_msec_t) NGX_ERROR
                || pmcf->shard_dir_refresh < 100
                || pmcf->shard_dir_refresh > 60000)
            {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\": %s",
                       &value[i], &cmd->name,
                       ngx_http_payments_param_range(
                           &value[i], ngx_http_payments_shard_dir_ranges));
    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_payments_conninfo_check(ngx_conf_t *cf, const char *who,
    ngx_str_t *value, ngx_str_t *conninfo)
{
    int                  entry;
    char                *err;
    size_t               len;
    u_char              *p;
    ngx_uint_t           has_gss, no_tls;
    const char          *host, *hostaddr, *attrs;
    PQconninfoOption    *opts, *o;

    err = NULL;
    opts = PQconninfoParse((char *) value->data, &err);
    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s: invalid connection string: %s", who,
                           err ? err : "out of memory");
        if (err) {
            PQfreemem(err);
        }
        return NGX_ERROR;
    }

    host = NULL;
    hostaddr = NULL;
    attrs = NULL;
    has_gss = 0;
    no_tls = 0;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL || o->val[0] == '\0') {
            continue;
        }

        if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            hostaddr = o->val;

        } else if (ngx_strcmp(o->keyword, "host") == 0) {
            host = o->val;

        } else if (ngx_strcmp(o->keyword, "target_session_attrs") == 0) {
            attrs = o->val;

        } else if (ngx_strcmp(o->keyword, "gssencmode") == 0) {
            has_gss = 1;

        } else if (ngx_strcmp(o->keyword, "sslmode") == 0) {
            no_tls = (ngx_strcmp(o->val, "disable") == 0);

        } else if (ngx_strcmp(o->keyword, "password") == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s: do not put a password in nginx.conf; "
                               "use passfile=", who);
            PQconninfoFree(opts);
            return NGX_ERROR;
        }
    }

    /*
     * A host name would be resolved on the worker's thread: refuse it, in
     * every entry of a list (libpq tries them in turn); no host at all is
     * libpq's default socket directory.
     */
    entry = pay_conninfo_lookup_entry(host, hostaddr);

    /* the payments and the merchants' keys' hashes in clear on a network */
    if (no_tls && entry == 0
        && !ngx_http_payments_conninfo_local(hostaddr ? hostaddr : host,
                                             hostaddr != NULL))
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "%s: sslmode=disable to a server that is not on "
                           "a loopback address or a unix socket: every "
                           "query and answer crosses the network in clear; "
                           "use sslmode=verify-full", who);
    }

    if (entry != 0 || (host == NULL && hostaddr == NULL)) {
        PQconninfoFree(opts);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s needs a numeric \"hostaddr=\" or a unix "
                           "socket \"host=/dir\" for every server (entry %d "
                           "has neither): resolving a host name would "
                           "block nginx", who, entry ? entry : 1);
        return NGX_ERROR;
    }

    /*
     * Several servers: libpq takes the first that answers, a standby or a
     * fenced primary too, unless told to take a writable one; the pool
     * opens a connection again when its server turns read-only, and only
     * target_session_attrs then leads it to the writable one.
     */
    if (pay_conninfo_servers(host, hostaddr) > 1
        && (attrs == NULL
            || (ngx_strcmp(attrs, "read-write") != 0
                && ngx_strcmp(attrs, "primary") != 0)))
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "%s: %d servers without "
                           "target_session_attrs=read-write: libpq may "
                           "choose a standby or a read-only primary, where "
                           "every write fails (503) until it takes writes; "
                           "add target_session_attrs=read-write", who,
                           pay_conninfo_servers(host, hostaddr));
    }

    /*
     * Written again as keyword='value' pairs, so that a URI
     * ("postgresql://...") takes words after it as the pairs do: the
     * worker adds its own (ngx_http_payments_conninfo_worker).
     */
    len = sizeof(" gssencmode=disable");

    for (o = opts; o->keyword; o++) {
        if (o->val != NULL && o->val[0] != '\0') {
            len += ngx_http_payments_conninfo_len(o->keyword, o->val);
        }
    }

    conninfo->data = ngx_pnalloc(cf->pool, len);
    if (conninfo->data == NULL) {
        PQconninfoFree(opts);
        return NGX_ERROR;
    }

    p = conninfo->data;

    for (o = opts; o->keyword; o++) {
        if (o->val != NULL && o->val[0] != '\0') {
            p = ngx_http_payments_conninfo_put(p, o->keyword, o->val);
        }
    }

    PQconninfoFree(opts);

    if (!has_gss) {
        /* GSSAPI negotiation may block on a credentials cache */
        p = ngx_cpymem(p, " gssencmode=disable",
                       sizeof(" gssencmode=disable") - 1);
    }

    *p = '\0';
    conninfo->len = p - conninfo->data;

    return NGX_OK;
}


/* the room " keyword='value'" takes, quoted as libpq reads it */
static size_t
ngx_http_payments_conninfo_len(const char *keyword, const char *val)
{
    /* every byte of the value escaped at worst */
    return sizeof(" ='") + ngx_strlen(keyword) + 2 * ngx_strlen(val);
}


static u_char *
ngx_http_payments_conninfo_put(u_char *p, const char *keyword,
    const char *val)
{
    *p++ = ' ';
    p = ngx_cpymem(p, keyword, ngx_strlen(keyword));
    *p++ = '=';
    *p++ = '\'';

    for ( /* void */ ; *val; val++) {
        if (*val == '\'' || *val == '\\') {
            *p++ = '\\';
        }

        *p++ = (u_char) *val;
    }

    *p++ = '\'';

    return p;
}


/*
 * libpq asks the system's user database (NSS: nscd's socket,
 * /etc/passwd, or LDAP and sssd where nsswitch.conf says so) at every
 * connection it starts, on the reconnect timer's path: the OS user's name
 * when the string has no user=, and its home directory (nginx clears
 * HOME in a worker) for ~/.pgpass, and for ~/.postgresql's certificate,
 * key, root certificate and revocation list when TLS is negotiated.  A
 * directory server slow to answer would hold the event loop.  Once in
 * each worker, after nginx made it its user, those become words of each
 * shard's string, with the values libpq would have found: its behaviour
 * is the same, and a connection looks nothing up.  What the environment
 * nginx passes (env PGUSER; and the like) still says is libpq's to read.
 */
ngx_int_t
ngx_http_payments_conninfo_worker(ngx_cycle_t *cycle,
    ngx_http_payments_main_conf_t *pmcf)
{
    char                       *err, buf[4096];
    size_t                      len;
    u_char                     *p, *end;
    ngx_uint_t                  i, k;
    const char                 *home, *user, *mode, *service, *have[6];
    struct passwd               pw, *pwp;
    PQconninfoOption           *opts, *o;
    ngx_http_payments_shard_t  *shard;
    u_char                      path[6][NGX_MAX_PATH];

    /* libpq's word, its environment variable, and the file under ~ */
    static const char  *words[6][3] = {
        { "user", "PGUSER", NULL },
        { "passfile", "PGPASSFILE", ".pgpass" },
        { "sslcert", "PGSSLCERT", ".postgresql/postgresql.crt" },
        { "sslkey", "PGSSLKEY", ".postgresql/postgresql.key" },
        { "sslrootcert", "PGSSLROOTCERT", ".postgresql/root.crt" },
        { "sslcrl", "PGSSLCRL", ".postgresql/root.crl" }
    };

    if (pmcf->shards == NULL) {
        return NGX_OK;
    }

    /* as libpq looks them up: the effective user, $HOME before its home */
    pwp = NULL;
    if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &pwp) != 0) {
        pwp = NULL;
    }

    user = pwp ? pwp->pw_name : NULL;
    home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        home = pwp ? pwp->pw_dir : NULL;
    }

    shard = pmcf->shards->elts;

    for (i = 0; i < pmcf->shards->nelts; i++) {
        err = NULL;
        opts = PQconninfoParse((char *) shard[i].conninfo.data, &err);
        if (opts == NULL) {
            /* parsed when the configuration was read: out of memory */
            if (err) {
                PQfreemem(err);
            }
            return NGX_ERROR;
        }

        for (k = 0; k < 6; k++) {
            have[k] = getenv(words[k][1]);
        }

        mode = getenv("PGSSLMODE");
        service = getenv("PGSERVICE");

        for (o = opts; o->keyword; o++) {
            if (o->val == NULL || o->val[0] == '\0') {
                continue;
            }

            if (ngx_strcmp(o->keyword, "service") == 0) {
                service = o->val;
            }

            for (k = 0; k < 6; k++) {
                if (ngx_strcmp(o->keyword, words[k][0]) == 0) {
                    have[k] = o->val;
                }
            }

            if (ngx_strcmp(o->keyword, "sslmode") == 0) {
                mode = o->val;

            } else if (ngx_strcmp(o->keyword, "sslcrldir") == 0) {
                /* a list's directory: libpq wants no home for it */
                have[5] = o->val;
            }
        }

        /* a service file's words fill only what the string leaves unset:
         * libpq reads it at every connection, and what it names (or
         * leaves to the user database) is libpq's */
        if (service != NULL && service[0] != '\0') {
            PQconninfoFree(opts);
            continue;
        }

        /* the words to add, and their room */
        len = shard[i].conninfo.len + 1;

        for (k = 0; k < 6; k++) {
            path[k][0] = '\0';

            if (have[k] != NULL && have[k][0] != '\0') {
                continue;
            }

            if (k == 0) {
                if (user != NULL) {
                    ngx_cpystrn(path[0], (u_char *) user, NGX_MAX_PATH);
                }

            } else if (home != NULL
                       && (k == 1
                           || mode == NULL
                           || ngx_strcmp(mode, "disable") != 0))
            {
                end = ngx_snprintf(path[k], NGX_MAX_PATH - 1, "%s/%s",
                                   home, words[k][2]);
                *end = '\0';
            }

            if (path[k][0] != '\0') {
                len += ngx_http_payments_conninfo_len(words[k][0],
                                                      (char *) path[k]);
            }
        }

        PQconninfoFree(opts);

        p = ngx_pnalloc(cycle->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        /* the worker's own copy of the configuration */
        end = ngx_cpymem(p, shard[i].conninfo.data, shard[i].conninfo.len);

        for (k = 0; k < 6; k++) {
            if (path[k][0] != '\0') {
                end = ngx_http_payments_conninfo_put(end, words[k][0],
                                                     (char *) path[k]);
            }
        }

        *end = '\0';
        shard[i].conninfo.data = p;
        shard[i].conninfo.len = end - p;
    }

    return NGX_OK;
}


/*
 * Every entry of a libpq list (comma-separated) on this machine: a
 * loopback hostaddr, or a host that is a unix socket's directory ("/dir",
 * "@abstract").
 */
static ngx_uint_t
ngx_http_payments_conninfo_local(const char *list, ngx_uint_t addrs)
{
    size_t       len;
    const char  *p, *end;

    if (list == NULL) {
        /* libpq's default: its unix socket directory */
        return 1;
    }

    for (p = list; *p; p = *end ? end + 1 : end) {
        end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }

        len = end - p;

        if (addrs) {
            if (!((len >= 4 && ngx_strncmp(p, "127.", 4) == 0)
                  || (len == 3 && ngx_strncmp(p, "::1", 3) == 0)))
            {
                return 0;
            }

        } else if (len == 0 || (p[0] != '/' && p[0] != '@')) {
            return 0;
        }
    }

    return 1;
}


/*
 * Once http{} is read (init_main_conf, after payments_database_pool,
 * _timeout and _queue have their values): payments_database becomes
 * shard 0 "default"; each payments_shard takes those three where it did
 * not set its own; one home; and what nginx -t refuses or warns of.
 * pmcf->db_timeout becomes the longest shard's, so that the checks of the
 * lease and the graceful stop's hold (three database round trips) hold
 * for every shard.
 */
char *
ngx_http_payments_shard_merge(ngx_conf_t *cf,
    ngx_http_payments_main_conf_t *pmcf)
{
    ngx_int_t                   workers;
    ngx_uint_t                  i, homes;
    ngx_core_conf_t            *ccf;
    ngx_http_payments_shard_t  *shard;

    if (pmcf->conninfo.len) {
        /* payments_shard refuses a payments_database before it, and
         * payments_database one after it: none here */
        shard = ngx_array_push(pmcf->shards);
        if (shard == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(shard, sizeof(ngx_http_payments_shard_t));
        ngx_str_set(&shard->name, PAY_SHARD_DEFAULT);
        shard->conninfo = pmcf->conninfo;
        shard->pool_size = pmcf->pool_size;
        shard->db_timeout = pmcf->db_timeout;
        shard->db_queue = pmcf->db_queue;
        shard->home = 1;
        pmcf->shard_home = 0;

        if (pmcf->shard_dir_size != NGX_CONF_UNSET_SIZE) {
            ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
                &pmcf->at[NGX_HTTP_PAYMENTS_AT_SHARD_DIRECTORY],
                "\"payments_shard_directory\" needs \"payments_shard\" "
                "lines: with \"payments_database\" there is nothing to "
                "look up");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (pmcf->shards->nelts == 0) {
        if (pmcf->shard_dir_size != NGX_CONF_UNSET_SIZE) {
            ngx_http_payments_conf_log(NGX_LOG_EMERG, cf,
                &pmcf->at[NGX_HTTP_PAYMENTS_AT_SHARD_DIRECTORY],
                "\"payments_shard_directory\" needs \"payments_shard\" "
                "lines");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    ngx_conf_init_size_value(pmcf->shard_dir_size, 8 * 1024 * 1024);
    ngx_conf_init_msec_value(pmcf->shard_dir_refresh, 2000);

    /* worker_processes, when read before http{} ("auto" is the cores) */
    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);
    workers = (ccf != NULL && ccf->worker_processes != NGX_CONF_UNSET)
              ? ccf->worker_processes : 1;

    shard = pmcf->shards->elts;
    homes = 0;
    pmcf->shard_home = 0;

    for (i = 0; i < pmcf->shards->nelts; i++) {
        ngx_conf_init_uint_value(shard[i].pool_size, pmcf->pool_size);
        ngx_conf_init_msec_value(shard[i].db_timeout, pmcf->db_timeout);
        ngx_conf_init_uint_value(shard[i].db_queue, pmcf->db_queue);
        ngx_conf_init_uint_value(shard[i].breaker, 5);
        ngx_conf_init_msec_value(shard[i].breaker_open, 5000);

        if (shard[i].home) {
            if (homes++) {
                ngx_http_payments_conf_log(NGX_LOG_EMERG, cf, &shard[i].at,
                    "\"payments_shard\" \"%V\" is a second \"home\" (the "
                    "first is \"%V\"): one shard keeps the events no "
                    "shard claims", &shard[i].name,
                    &shard[pmcf->shard_home].name);
                return NGX_CONF_ERROR;
            }

            pmcf->shard_home = i;
        }

        /* PostgreSQL's default max_connections */
        if (shard[i].pool_size * (ngx_uint_t) workers > 100) {
            ngx_http_payments_conf_log(NGX_LOG_WARN, cf, &shard[i].at,
                "\"payments_shard\" \"%V\": pool=%ui times %i workers is "
                "%ui connections from this gateway alone, more than "
                "PostgreSQL's default max_connections (100)",
                &shard[i].name, shard[i].pool_size, workers,
                shard[i].pool_size * (ngx_uint_t) workers);
        }
    }

    /* the first line is home unless one says so */
    if (homes == 0) {
        shard[0].home = 1;
    }

    /* the checks below bound three round trips with the slowest shard */
    for (i = 0; i < pmcf->shards->nelts; i++) {
        if (shard[i].db_timeout > pmcf->db_timeout) {
            pmcf->db_timeout = shard[i].db_timeout;
        }
    }

    return NGX_CONF_OK;
}
