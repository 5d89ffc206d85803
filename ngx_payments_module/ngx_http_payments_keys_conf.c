/*
 * The key directives: payments_pay_token_key and payments_encryption_key,
 * and the rule that a reload may seal only under a key the running
 * configuration already had.
 */


#include "ngx_http_payments_module.h"


static char *ngx_http_payments_keyring_rolled(ngx_conf_t *cf,
    ngx_command_t *cmd, const pay_keyring_t *kr);
static void ngx_http_payments_keyring_cleanup(void *data);


/*
 * The keys of the configuration this master runs, and of the one being
 * read: fingerprints (a blind index of nothing under each key), never the
 * keys.  A reload may make a key the sealing one only once the running
 * configuration had it (ngx_http_payments_keyring_rolled).
 */
typedef char  ngx_http_payments_key_fp_t[PAY_BLIND_INDEX_LEN + 1];

static ngx_http_payments_key_fp_t  ngx_http_payments_ring_fp[PAY_SEAL_KEYS_MAX];
static size_t                      ngx_http_payments_ring_n;
static ngx_http_payments_key_fp_t  ngx_http_payments_ring_next[PAY_SEAL_KEYS_MAX];
static size_t                      ngx_http_payments_ring_next_n;


void
ngx_http_payments_keys_reading(void)
{
    ngx_http_payments_ring_next_n = 0;
}


void
ngx_http_payments_keys_running(void)
{
    ngx_memcpy(ngx_http_payments_ring_fp, ngx_http_payments_ring_next,
               sizeof(ngx_http_payments_ring_fp));
    ngx_http_payments_ring_n = ngx_http_payments_ring_next_n;
}


char *
ngx_http_payments_pay_token_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    size_t            i, n;
    ngx_str_t        *value, secret, kid;
    pay_token_key_t  *k;

    value = cf->args->elts;

    ngx_str_set(&kid, "k1");

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "kid=", 4) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"payments_pay_token_key\": unknown "
                               "parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        kid.data = value[2].data + 4;
        kid.len = value[2].len - 4;
    }

    if (kid.len == 0 || kid.len > 32) {
        return "kid must be 1..32 characters";
    }

    for (i = 0; i < kid.len; i++) {
        if (!isalnum(kid.data[i]) && kid.data[i] != '_'
            && kid.data[i] != '-')
        {
            return "kid must be [A-Za-z0-9_-]";
        }
    }

    k = pmcf->token_keys->elts;
    for (n = 0; n < pmcf->token_keys->nelts; n++) {
        if (ngx_strlen(k[n].kid) == kid.len
            && ngx_strncmp(k[n].kid, kid.data, kid.len) == 0)
        {
            return "has a duplicate kid";
        }
    }

    if (ngx_http_payments_read_secret(cf, &value[1], &cmd->name,
                                      PAY_TOKEN_KEY_MIN, &secret)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    k = ngx_array_push(pmcf->token_keys);
    if (k == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(k, sizeof(pay_token_key_t));
    ngx_memcpy(k->kid, kid.data, kid.len);
    k->key = secret.data;
    k->len = secret.len;

    return NGX_CONF_OK;
}


/*
 * payments_encryption_key FILE: the keyring that seals secrets at rest
 * (seal.h; doc/NOTIFICATIONS.md "Secrets at rest").  A secret file (mode
 * 0600); a bad line is named by its number, never by its content, and the
 * file's text is wiped once parsed.
 */

char *
ngx_http_payments_encryption_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_payments_main_conf_t *pmcf = conf;

    int                  rc;
    size_t               bad_line;
    ngx_str_t           *value, text;
    pay_keyring_t       *kr;
    ngx_pool_cleanup_t  *cln;

    if (pmcf->keyring != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_payments_read_file(cf, &value[1], &cmd->name, 1,
                                    NGX_HTTP_PAYMENTS_FILE_SECRET, &text)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    kr = ngx_pcalloc(cf->pool, sizeof(pay_keyring_t));
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (kr == NULL || cln == NULL) {
        ngx_explicit_memzero(text.data, text.len);
        return NGX_CONF_ERROR;
    }

    /* the keys go with the cycle's pool */
    cln->handler = ngx_http_payments_keyring_cleanup;
    cln->data = kr;

    bad_line = 0;
    rc = pay_keyring_parse(kr, (const char *) text.data, text.len, &bad_line);

    ngx_explicit_memzero(text.data, text.len);

    if (rc != 0) {
        pay_keyring_wipe(kr);

        if (bad_line == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\" holds no key",
                               &cmd->name, &value[1]);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"%V\" line %uz is not "
                               "\"<kid> <base64 of 32 bytes>\" (or the "
                               "kid is repeated, or there are more than %d "
                               "keys)", &cmd->name, &value[1], bad_line,
                               PAY_SEAL_KEYS_MAX);
        }

        return NGX_CONF_ERROR;
    }

    if (ngx_http_payments_keyring_rolled(cf, cmd, kr) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    pmcf->keyring = kr;

    return NGX_CONF_OK;
}


/*
 * A key rotation across several gateways is two reloads on each: the new
 * key added second (every gateway then opens and finds what any of them
 * seals and indexes under it), then moved first.  A gateway sealing under a
 * key another gateway lacks makes tokens that gateway cannot find or open.
 * What one master can see is refused: a reload whose sealing key was not in
 * the configuration it replaces.  A first start cannot tell.
 */

static char *
ngx_http_payments_keyring_rolled(ngx_conf_t *cf, ngx_command_t *cmd,
    const pay_keyring_t *kr)
{
    size_t       i;
    ngx_str_t   *value;

    for (i = 0; i < kr->n; i++) {
        if (pay_blind_index(kr, i, "ngx_payments key fingerprint", "", 0,
                            ngx_http_payments_ring_next[i])
            != 0)
        {
            return NGX_CONF_ERROR;
        }
    }

    ngx_http_payments_ring_next_n = kr->n;

    if (ngx_http_payments_ring_n == 0) {
        return NGX_CONF_OK;
    }

    for (i = 0; i < ngx_http_payments_ring_n; i++) {
        if (ngx_strcmp(ngx_http_payments_ring_fp[i],
                       ngx_http_payments_ring_next[0])
            == 0)
        {
            return NGX_CONF_OK;
        }
    }

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\": the first key of \"%V\" (kid \"%s\"), which "
                       "seals, is not in the keys it replaces: add it "
                       "second on every gateway and reload them all, then "
                       "move it first and reload again",
                       &cmd->name, &value[1], kr->keys[0].kid);

    return NGX_CONF_ERROR;
}


static void
ngx_http_payments_keyring_cleanup(void *data)
{
    pay_keyring_wipe(data);
}


/* payments_html DIR: the pending page's script and the pages' style */
