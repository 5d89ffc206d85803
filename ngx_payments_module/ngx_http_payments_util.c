
/*
 * Copyright (C) ngx_payments authors
 *
 * Small helpers every glue file may use: strings in a pool, the gateway's
 * signed links, files read at configuration time (secrets, public files,
 * CA bundles) and the gateway's name (its instance id).  They call nothing
 * but nginx, OpenSSL's RAND_bytes and the core.
 */


#include "ngx_http_payments_module.h"

#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>


static void ngx_http_payments_held(ngx_event_t *ev);


u_char *
ngx_http_payments_cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    /* an unset ngx_str_t is {0, NULL}: memcpy's source must not be NULL
     * even for no bytes */
    if (s->len) {
        ngx_memcpy(p, s->data, s->len);
    }
    p[s->len] = '\0';

    return p;
}


/*
 * The setting pay_psp_conf_changed named, as a log line or a problem's
 * detail names it: "merchant_account=" (the payments_psp parameter), or
 * what an unreadable record is; in pool.
 */

const char *
ngx_http_payments_conf_setting(ngx_pool_t *pool, const char *changed)
{
    u_char  *p, *last;
    size_t   len;

    if (ngx_strcmp(changed, "unreadable") == 0) {
        return "settings as recorded (the record is unreadable)";
    }

    len = ngx_strlen(changed) + sizeof("=");

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return "settings";
    }

    last = ngx_sprintf(p, "%s=", changed);
    *last = '\0';

    return (const char *) p;
}


char *
ngx_http_payments_strdup(ngx_pool_t *pool, const char *s)
{
    size_t   len;
    char    *p;

    if (s == NULL) {
        return NULL;
    }

    len = ngx_strlen(s);

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len + 1);

    return p;
}


char *
ngx_http_payments_num(ngx_pool_t *pool, int64_t n)
{
    u_char  *p, *last;

    p = ngx_pnalloc(pool, NGX_INT64_LEN + 1);
    if (p == NULL) {
        return NULL;
    }

    last = ngx_sprintf(p, "%L", n);
    *last = '\0';

    return (char *) p;
}



/*
 * A gateway link with a signed token, in pool: the pay page
 * (/v1/checkouts/{id}/pay) when psp is NULL, else that PSP's return URL
 * (/v1/return/{psp}/{id}).  The first pay_token_key signs; the same claims
 * give the same link.  NULL if memory ran out.
 */

char *
ngx_http_payments_link(ngx_pool_t *pool, ngx_http_payments_main_conf_t *pmcf,
    const char *merchant, const char *checkout, ngx_str_t *psp,
    pay_token_use_e use, int64_t exp)
{
    char             *tok;
    u_char           *p, *last;
    size_t            len;
    pay_token_key_t  *key;

    key = pmcf->token_keys->elts;

    tok = pay_token_sign(key, merchant, checkout, use, exp);
    if (tok == NULL) {
        return NULL;
    }

    len = pmcf->public_origin.len + sizeof("/v1/checkouts//pay?t=")
          + sizeof("/v1/return//?t=") + (psp ? psp->len : 0)
          + ngx_strlen(checkout) + ngx_strlen(tok);

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        free(tok);
        return NULL;
    }

    if (psp == NULL) {
        last = ngx_snprintf(p, len - 1, "%V/v1/checkouts/%s/pay?t=%s",
                            &pmcf->public_origin, checkout, tok);
    } else {
        last = ngx_snprintf(p, len - 1, "%V/v1/return/%V/%s?t=%s",
                            &pmcf->public_origin, psp, checkout, tok);
    }

    *last = '\0';
    free(tok);

    return (char *) p;
}


/* the certificates of a PEM text; 0 when any of its blocks does not
 * parse, or there is none */
static ngx_uint_t
ngx_http_payments_pem_certs(ngx_str_t *pem)
{
    BIO            *bio;
    X509           *x;
    ngx_uint_t      n;
    unsigned long   e;

    bio = BIO_new_mem_buf(pem->data, (int) pem->len);
    if (bio == NULL) {
        return 0;
    }

    n = 0;

    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_free(x);
        n++;
    }

    /* the text's end is "no start line"; anything else is a bad block */
    e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) != ERR_LIB_PEM
        || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
    {
        n = 0;
    }

    ERR_clear_error();
    BIO_free(bio);

    return n;
}


/*
 * Reads a secret from a file at configuration time.  The file must not be
 * readable by group or others; trailing white space is dropped.  The secret
 * itself is never logged.
 */

ngx_int_t
ngx_http_payments_read_secret(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *directive, size_t min, ngx_str_t *secret)
{
    return ngx_http_payments_read_file(cf, name, directive, min,
                                       NGX_HTTP_PAYMENTS_FILE_SECRET, secret);
}


ngx_int_t
ngx_http_payments_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *directive, size_t min, ngx_uint_t kind, ngx_str_t *out)
{
    ssize_t          n;
    ngx_str_t        path;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    path = *name;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = path;
    file.log = cf->log;

    file.fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\": cannot open file \"%V\"",
                           directive, &path);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        goto failed;
    }

    if (kind == NGX_HTTP_PAYMENTS_FILE_SECRET
        && (fi.st_mode & (S_IRWXG | S_IRWXO)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": secret file \"%V\" is readable by group "
                           "or others: chmod 600 it", directive, &path);
        goto failed;
    }

    if (ngx_file_size(&fi)
        > (kind == NGX_HTTP_PAYMENTS_FILE_CA ? 1024 * 1024 : 4096))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": file \"%V\" is larger than %s",
                           directive, &path,
                           kind == NGX_HTTP_PAYMENTS_FILE_CA ? "1m" : "4k");
        goto failed;
    }

    out->data = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (out->data == NULL) {
        goto failed;
    }

    n = ngx_read_file(&file, out->data, (size_t) ngx_file_size(&fi), 0);
    if (n == NGX_ERROR) {
        goto failed;
    }

    while (n > 0 && (out->data[n - 1] == '\n' || out->data[n - 1] == '\r'
                     || out->data[n - 1] == ' '))
    {
        n--;
    }

    out->data[n] = '\0';
    out->len = n;

    ngx_close_file(file.fd);

    if (out->len < min) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": secret in \"%V\" is shorter than %uz "
                           "bytes", directive, &path, min);
        return NGX_ERROR;
    }

    /* a CA file is parsed now: one curl could not use would fail every
     * handshake of the calls it is for, and only at run time */
    if (kind == NGX_HTTP_PAYMENTS_FILE_CA
        && ngx_http_payments_pem_certs(out) == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": file \"%V\" holds no PEM certificate, "
                           "or one that does not parse (a CA file is "
                           "certificates in PEM, \"-----BEGIN "
                           "CERTIFICATE-----\")", directive, &path);
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    ngx_close_file(file.fd);
    return NGX_ERROR;
}


/*
 * PSP tokens at rest (seal.h, the psp_tokens table).  A checkout's
 * token is sealed with its nonce "<merchant>:<checkout>" as associated data,
 * its PSP URL with "psp_url:<merchant>:<checkout>", a registration's stored
 * answer (it names both) with "response:<merchant>:<idempotency key>"
 * (opened by _response.c's send_stored); psp_tokens keeps the
 * token's blind index, domain "psp_token:<psp>".  A saved payment
 * method's PSP token is sealed with "payment_method:<merchant>:<the
 * checkout it was saved in>", an off-session charge's stored request
 * (which names it) with "request:<merchant>:<checkout>".  A stored value that does
 * not start with "v1." is a legacy plaintext one.
 */

static char *
ngx_http_payments_sealed_ad(ngx_pool_t *pool, ngx_uint_t what,
    const char *merchant, const char *checkout)
{
    u_char  *p, *last;
    size_t   len;

    len = sizeof("payment_method:") + ngx_strlen(merchant) + 1
          + ngx_strlen(checkout);

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NULL;
    }

    last = ngx_sprintf(p, "%s%s:%s",
                       what == NGX_HTTP_PAYMENTS_SEALED_URL ? "psp_url:"
                       : what == NGX_HTTP_PAYMENTS_SEALED_RESPONSE
                       ? "response:"
                       : what == NGX_HTTP_PAYMENTS_SEALED_METHOD
                       ? "payment_method:"
                       : what == NGX_HTTP_PAYMENTS_SEALED_REQUEST
                       ? "request:" : "",
                       merchant, checkout);
    *last = '\0';

    return (char *) p;
}


char *
ngx_http_payments_seal(ngx_pool_t *pool, ngx_http_payments_main_conf_t *pmcf,
    ngx_uint_t what, const char *merchant, const char *checkout,
    const char *value)
{
    char    *ad, *out;
    size_t   len, cap;

    if (value == NULL) {
        return NULL;
    }

    if (pmcf->keyring == NULL) {
        return ngx_http_payments_strdup(pool, value);
    }

    ad = ngx_http_payments_sealed_ad(pool, what, merchant, checkout);
    if (ad == NULL) {
        return NULL;
    }

    len = ngx_strlen(value);
    cap = pay_seal_len(len) + 1;

    out = ngx_pnalloc(pool, cap);
    if (out == NULL) {
        return NULL;
    }

    if (pay_seal(pmcf->keyring, ad, value, len, out, cap) != 0) {
        return NULL;
    }

    return out;
}


ngx_int_t
ngx_http_payments_unseal(ngx_pool_t *pool,
    ngx_http_payments_main_conf_t *pmcf, ngx_log_t *log, ngx_uint_t what,
    const char *merchant, const char *checkout, const char *stored,
    char **out)
{
    char    *ad, *p;
    size_t   slen, olen;

    slen = ngx_strlen(stored);

    if (slen < 3 || ngx_strncmp(stored, "v1.", 3) != 0) {
        /* a legacy row, stored before (or without) a key */
        *out = (char *) stored;
        return NGX_OK;
    }

    ad = ngx_http_payments_sealed_ad(pool, what, merchant, checkout);
    p = ngx_pnalloc(pool, slen + 1);
    if (ad == NULL || p == NULL) {
        return NGX_ERROR;
    }

    if (pmcf->keyring == NULL
        || pay_unseal(pmcf->keyring, ad, stored, slen, p, slen + 1, &olen)
           != 0)
    {
        /* another row's ciphertext, a key no longer in the file, or no
         * key at all: never pass it on */
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "payments: sealed token does not open (checkout "
                      "\"%s\"%s)", checkout,
                      what == NGX_HTTP_PAYMENTS_SEALED_URL
                      ? ", its psp_url" : "");
        return NGX_ERROR;
    }

    *out = p;

    return NGX_OK;
}


char *
ngx_http_payments_token_index(ngx_pool_t *pool,
    ngx_http_payments_main_conf_t *pmcf, ngx_str_t *psp, const char *token)
{
    char    *domain, *out;
    u_char  *last;

    domain = ngx_pnalloc(pool, sizeof("psp_token:") + psp->len);
    out = ngx_pnalloc(pool, PAY_BLIND_INDEX_LEN + 1);
    if (domain == NULL || out == NULL || pmcf->keyring == NULL) {
        return NULL;
    }

    last = ngx_sprintf((u_char *) domain, "psp_token:%V", psp);
    *last = '\0';

    if (pay_blind_index(pmcf->keyring, 0, domain, token, ngx_strlen(token),
                        out)
        != 0)
    {
        return NULL;
    }

    return out;
}


ngx_int_t
ngx_http_payments_token_keys(ngx_pool_t *pool,
    ngx_http_payments_main_conf_t *pmcf, ngx_str_t *psp, const char *token,
    char **keys)
{
    char        *domain;
    u_char      *p, *last;
    size_t       i, len, tlen;
    const char  *t;
    char         index[PAY_BLIND_INDEX_LEN + 1];

    *keys = NULL;

    if (pmcf->keyring == NULL || token == NULL || token[0] == '\0') {
        /* SQL NULL: the token is looked up as it is */
        return NGX_OK;
    }

    domain = ngx_pnalloc(pool, sizeof("psp_token:") + psp->len);
    if (domain == NULL) {
        return NGX_ERROR;
    }

    last = ngx_sprintf((u_char *) domain, "psp_token:%V", psp);
    *last = '\0';

    /* {"index",...,"plaintext"}: the plaintext quoted, '"' and '\' escaped */
    tlen = ngx_strlen(token);
    len = 2 + pmcf->keyring->n * (PAY_BLIND_INDEX_LEN + 3) + 2 + 2 * tlen + 1;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *keys = (char *) p;
    *p++ = '{';

    for (i = 0; i < pmcf->keyring->n; i++) {
        if (pay_blind_index(pmcf->keyring, i, domain, token, tlen, index)
            != 0)
        {
            return NGX_ERROR;
        }

        *p++ = '"';
        p = ngx_cpymem(p, index, PAY_BLIND_INDEX_LEN);
        *p++ = '"';
        *p++ = ',';
    }

    /* the legacy rows' plaintext */
    *p++ = '"';

    for (t = token; *t; t++) {
        if (*t == '"' || *t == '\\') {
            *p++ = '\\';
        }

        *p++ = *t;
    }

    *p++ = '"';
    *p++ = '}';
    *p = '\0';

    return NGX_OK;
}


/*
 * A stopping worker (nginx -s quit, the old workers of every reload) exits
 * once only cancelable timers are left; the drivers' own timers (curl's, a
 * housekeeping round's) are cancelable.  Work that must finish first holds
 * this timer, which expires harmlessly after ms.
 */
void
ngx_http_payments_hold(ngx_event_t *ev, ngx_log_t *log, ngx_msec_t ms)
{
    ngx_http_payments_timer_data(ev);
    ev->handler = ngx_http_payments_held;
    ev->log = log;
    ev->cancelable = 0;

    ngx_add_timer(ev, ms);
}


ngx_uint_t
ngx_http_payments_shard_mine(ngx_cycle_t *cycle, ngx_uint_t s)
{
    ngx_core_conf_t  *ccf;
    ngx_uint_t        workers;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);
    workers = (ccf != NULL && ccf->worker_processes > 0)
              ? (ngx_uint_t) ccf->worker_processes : 1;

    return s % workers == ngx_worker;
}


void
ngx_http_payments_timer_data(ngx_event_t *ev)
{
    static ngx_connection_t  dumb;

    dumb.fd = (ngx_socket_t) -1;
    ev->data = &dumb;
}


static void
ngx_http_payments_held(ngx_event_t *ev)
{
    /* past its bound, the work goes on, but the worker need not wait */
    (void) ev;
}


/* its ngx_event_t, also as a pool cleanup handler */
void
ngx_http_payments_unhold(void *data)
{
    ngx_event_t  *ev = data;

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }
}


/* named slots: ngx_http_payments_slot_name_t */

static ngx_int_t
ngx_http_payments_slot_named(ngx_http_payments_slot_name_t *id,
    ngx_str_t *name)
{
    return id->len == name->len
           && ngx_memcmp(id->name, name->data, id->len) == 0;
}


/* names: an array whose elements each begin with their ngx_str_t name
 * (ngx_http_payments_psp_t, ngx_http_payments_shard_t) */

static ngx_int_t
ngx_http_payments_slot_configured(ngx_http_payments_slot_name_t *id,
    ngx_array_t *names)
{
    ngx_uint_t   i;
    ngx_str_t   *name;

    if (names == NULL || id->len == 0) {
        return 0;
    }

    for (i = 0; i < names->nelts; i++) {
        name = (ngx_str_t *) ((u_char *) names->elts + i * names->size);

        if (ngx_http_payments_slot_named(id, name)) {
            return 1;
        }
    }

    return 0;
}


ngx_uint_t
ngx_http_payments_slot_assign(void *table, size_t size, ngx_uint_t n,
    ngx_str_t *name, ngx_array_t *names, ngx_array_t *old_names)
{
    ngx_uint_t                      j, k;
    ngx_http_payments_slot_name_t  *id;

    for (j = 0; j < n; j++) {
        id = (ngx_http_payments_slot_name_t *) ((u_char *) table + j * size);

        if (ngx_http_payments_slot_named(id, name)) {
            return j;
        }
    }

    /* a free slot first, then one whose name neither configuration has
     * (what it held is forgotten) */
    for (k = 0; k < 2; k++) {
        for (j = 0; j < n; j++) {
            id = (ngx_http_payments_slot_name_t *)
                     ((u_char *) table + j * size);

            if (k == 0 ? id->len == 0
                : (!ngx_http_payments_slot_configured(id, names)
                   && !ngx_http_payments_slot_configured(id, old_names)))
            {
                ngx_memzero(id, size);
                ngx_memcpy(id->name, name->data, name->len);
                id->len = name->len;
                return j;
            }
        }
    }

    return n;
}


void *
ngx_http_payments_slot_find(void *table, size_t size, ngx_uint_t n,
    ngx_str_t *name, ngx_uint_t *hint)
{
    ngx_uint_t                      j;
    ngx_http_payments_slot_name_t  *id;

    if (*hint < n) {
        id = (ngx_http_payments_slot_name_t *)
                 ((u_char *) table + *hint * size);

        if (ngx_http_payments_slot_named(id, name)) {
            return id;
        }
    }

    for (j = 0; j < n; j++) {
        id = (ngx_http_payments_slot_name_t *) ((u_char *) table + j * size);

        if (ngx_http_payments_slot_named(id, name)) {
            *hint = j;
            return id;
        }
    }

    return NULL;
}


/*
 * The gateway's name: the master's instance id, 16 hex digits, made at its
 * first configuration and kept on purpose across reloads (a reload's new
 * worker 0 must own the sweeper lease its predecessor took); a new master,
 * a binary upgrade's too, makes another.
 */
static u_char  ngx_http_payments_instance_id[17];


ngx_int_t
ngx_http_payments_instance_make(ngx_conf_t *cf)
{
    u_char  rnd[8];

    if (ngx_http_payments_instance_id[0] != '\0') {
        return NGX_OK;
    }

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "payments_sweeper: RAND_bytes() failed: no "
                           "instance id for the sweeper lease's owner");
        return NGX_ERROR;
    }

    ngx_hex_dump(ngx_http_payments_instance_id, rnd, sizeof(rnd));
    ngx_http_payments_instance_id[16] = '\0';

    return NGX_OK;
}


u_char *
ngx_http_payments_instance_owner(ngx_cycle_t *cycle, u_char *buf, size_t len)
{
    u_char  *p;

    /* in a worker ngx_parent is the master; in the master, itself */
    p = ngx_snprintf(buf, len - 1, "%V:%P:%s", &cycle->hostname,
                     ngx_process == NGX_PROCESS_WORKER ? ngx_parent : ngx_pid,
                     ngx_http_payments_instance_id);
    *p = '\0';

    return p;
}


void
ngx_http_payments_conf_at(ngx_conf_t *cf, ngx_http_payments_conf_at_t *at)
{
    /* the file's name lives as long as the cycle's configuration */
    at->file = cf->conf_file->file.name.data;
    at->line = cf->conf_file->line;
}


ngx_http_payments_conf_at_t *
ngx_http_payments_conf_first(ngx_http_payments_conf_at_t *a,
    ngx_http_payments_conf_at_t *b)
{
    if (a != NULL && a->line) {
        return a;
    }

    if (b != NULL && b->line) {
        return b;
    }

    return NULL;
}


void ngx_cdecl
ngx_http_payments_conf_log(ngx_uint_t level, ngx_conf_t *cf,
    ngx_http_payments_conf_at_t *at, const char *fmt, ...)
{
    u_char   buf[NGX_MAX_CONF_ERRSTR], *p;
    va_list  args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + NGX_MAX_CONF_ERRSTR, fmt, args);
    va_end(args);

    if (at == NULL || at->line == 0) {
        ngx_conf_log_error(level, cf, 0, "%*s", p - buf, buf);
        return;
    }

    ngx_log_error(level, cf->log, 0, "%*s in %s:%ui", p - buf, buf,
                  at->file, at->line);
}


char *
ngx_http_payments_at_post(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_payments_at_post_t    *ap = post;
    ngx_http_payments_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_payments_module);
    ngx_http_payments_conf_at(cf, &pmcf->at[ap->at]);

    return NGX_CONF_OK;
}


/* "scheme://user:password@host/": an authority with an "@" */
ngx_uint_t
ngx_http_payments_url_has_userinfo(ngx_str_t *url)
{
    u_char  *p, *end;

    end = url->data + url->len;

    p = ngx_strlcasestrn(url->data, end, (u_char *) "://", 3 - 1);
    if (p == NULL) {
        return 0;
    }

    for (p += 3; p < end; p++) {
        if (*p == '/' || *p == '?' || *p == '#') {
            return 0;
        }

        if (*p == '@') {
            return 1;
        }
    }

    return 0;
}


const char *
ngx_http_payments_param_range(ngx_str_t *param,
    const ngx_http_payments_range_t *ranges)
{
    size_t  len;

    for ( /* void */ ; ranges->name != NULL; ranges++) {
        len = ngx_strlen(ranges->name);

        if (param->len >= len
            && ngx_strncmp(param->data, ranges->name, len) == 0)
        {
            return ranges->range;
        }
    }

    return "not a parameter of the directive";
}
