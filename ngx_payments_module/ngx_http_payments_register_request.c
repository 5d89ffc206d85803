
/*
 * Copyright (C) ngx_payments authors
 *
 * A registration's PSP request: built once, from the checkout as it is
 * stored (ctx->co, ctx->expires_at), by the one function every path uses
 * (the first registration, a review's approval, a refresh of a resume
 * whose expires_at is too close, a routed checkout moved on to its next
 * PSP), and a stored one loaded for sending; a save's PSP customers and
 * an off-session charge's saved method kept for it.  Below every step of the registration: it calls only _util.c
 * and the core.
 */


#include "ngx_http_payments_module.h"
#include "ngx_http_payments_register.h"


static void ngx_http_payments_register_conf(ngx_http_payments_psp_t *psp,
    pay_psp_conf_t *conf);


/*
 * The gateway's reference for the shop's customer, sent to the PSP in its
 * place (Adyen's shopperReference, the generic customer): "cu_" and the
 * first 24 hex digits of a blind index of "<merchant>:<customer>" under
 * the sealing key, so the same customer is the same shopper at the PSP,
 * and nothing there names it.  NULL without a key or memory.
 */

char *
ngx_http_payments_customer_ref(ngx_http_payments_ctx_t *ctx)
{
    char                 idx[PAY_BLIND_INDEX_LEN + 1], *who, *out;
    u_char              *last;
    size_t               len;
    ngx_http_request_t  *r = ctx->request;

    len = ctx->merchant.len + 1 + ngx_strlen(ctx->co.save_customer) + 1;
    who = ngx_pnalloc(r->pool, len);
    out = ngx_pnalloc(r->pool, sizeof("cu_") + 24);

    if (who == NULL || out == NULL || ctx->pmcf->keyring == NULL) {
        return NULL;
    }

    last = ngx_sprintf((u_char *) who, "%V:%s", &ctx->merchant,
                       ctx->co.save_customer);
    *last = '\0';

    if (pay_blind_index(ctx->pmcf->keyring, 0, "customer_ref", who,
                        ngx_strlen(who), idx)
        != 0)
    {
        return NULL;
    }

    last = ngx_cpymem(out, "cu_", 3);
    last = ngx_cpymem(last, idx, 24);
    *last = '\0';

    return out;
}


/*
 * What a registration's request takes from its PSP's configuration: the
 * merchant account (Adyen's merchantAccount).  Recorded in the stored
 * request (its "conf"), compared before a resumed claim sends it again.
 */

static void
ngx_http_payments_register_conf(ngx_http_payments_psp_t *psp,
    pay_psp_conf_t *conf)
{
    ngx_memzero(conf, sizeof(pay_psp_conf_t));

    conf->merchant_account = psp->merchant_account.len
                             ? (char *) psp->merchant_account.data : NULL;
}


/*
 * The PSP request for ctx->expires_at, as stored: JSON {"path",
 * "content_type", "body", "conf"} in the request's pool, or NULL.
 */

char *
ngx_http_payments_register_build(ngx_http_payments_ctx_t *ctx)
{
    char                    *s, *out;
    ngx_uint_t               i;
    ngx_keyval_t            *kv;
    pay_psp_conf_t           conf;
    pay_psp_request_t        preq;
    ngx_http_request_t      *r = ctx->request;
    pay_psp_registration_t   reg;

    /* a save (a review's approval rebuilds one too): our reference for
     * the customer, the same every time */
    if (ctx->co.save_usage != NULL && ctx->customer_ref == NULL) {
        ctx->customer_ref = ngx_http_payments_customer_ref(ctx);
        if (ctx->customer_ref == NULL) {
            return NULL;
        }
    }

    ngx_http_payments_register_conf(ctx->psp, &conf);

    ngx_memzero(&reg, sizeof(pay_psp_registration_t));
    reg.merchant_id = (char *) ctx->merchant.data;
    reg.nonce = ctx->nonce;
    reg.co = &ctx->co;
    reg.expires_at = ctx->expires_at;
    reg.adyen_merchant_account = conf.merchant_account;
    reg.customer_ref = ctx->customer_ref;
    reg.charge_token = ctx->charge_token;
    reg.psp_customer = ctx->charge_psp_customer;
    reg.recurring = ctx->charge_recurring;
    /* the hosted page of an off-session charge that needs the shopper */
    reg.authenticate = (ctx->charge_res != NULL);

    /* a save at a PSP where the customer's earlier saves made a customer
     * of its own: under that one again */
    if (ctx->co.save_usage != NULL && ctx->save_psp_customers != NULL) {
        kv = ctx->save_psp_customers->elts;

        for (i = 0; i < ctx->save_psp_customers->nelts; i++) {
            if (kv[i].key.len == ctx->psp->name.len
                && ngx_strncmp(kv[i].key.data, ctx->psp->name.data,
                               kv[i].key.len) == 0)
            {
                reg.psp_customer = (char *) kv[i].value.data;
                break;
            }
        }
    }

    /* the shopper may come back a while after the session closed */
    reg.return_success = ngx_http_payments_link(r->pool, ctx->pmcf,
                             (char *) ctx->merchant.data, ctx->co.checkout_id,
                             &ctx->psp->name, PAY_TOKEN_RETURN_SUCCESS,
                             ctx->expires_at + 86400);
    reg.return_cancel = ngx_http_payments_link(r->pool, ctx->pmcf,
                             (char *) ctx->merchant.data, ctx->co.checkout_id,
                             &ctx->psp->name, PAY_TOKEN_RETURN_CANCEL,
                             ctx->expires_at + 86400);
    if (reg.return_success == NULL || reg.return_cancel == NULL
        || pay_psp_build_registration(ctx->psp->dialect, &reg, &preq) != 0)
    {
        return NULL;
    }

    /* stored with it, never sent: the settings it was built with */
    preq.conf = pay_psp_conf_record(&conf);

    s = preq.conf ? pay_psp_request_dump(&preq) : NULL;

    ctx->built = NULL;
    ctx->built_path = ngx_http_payments_strdup(r->pool, preq.path);
    ctx->built_content_type = ngx_http_payments_strdup(r->pool,
                                                       preq.content_type);
    ctx->built_body = ngx_http_payments_strdup(r->pool, preq.body);
    ctx->built_conf = ngx_http_payments_strdup(r->pool, preq.conf);

    pay_psp_request_free(&preq);

    if (s == NULL) {
        return NULL;
    }

    /* an off-session charge's request names the PSP's token: stored
     * sealed, as the token is */
    out = ctx->co.payment_method[0] != '\0'
          ? ngx_http_payments_seal(r->pool, ctx->pmcf,
                                   NGX_HTTP_PAYMENTS_SEALED_REQUEST,
                                   (char *) ctx->merchant.data,
                                   ctx->co.checkout_id, s)
          : ngx_http_payments_strdup(r->pool, s);
    free(s);

    if (ctx->built_path != NULL && ctx->built_content_type != NULL
        && ctx->built_body != NULL && ctx->built_conf != NULL)
    {
        ctx->built = out;
    }

    return out;
}


/*
 * A save's PSP customers (pay_method_psp_customers: psp, psp_customer),
 * kept for the request; ngx_http_payments_register_build names the one
 * of the PSP the request goes to, on whichever path builds it.
 */

ngx_int_t
ngx_http_payments_save_customers_keep(ngx_http_payments_ctx_t *ctx,
    PGresult *res)
{
    int                  i, n;
    ngx_keyval_t        *kv;
    ngx_http_request_t  *r = ctx->request;

    n = PQntuples(res);

    ctx->save_psp_customers = ngx_array_create(r->pool, n > 0 ? n : 1,
                                               sizeof(ngx_keyval_t));
    if (ctx->save_psp_customers == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        kv = ngx_array_push(ctx->save_psp_customers);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        kv->key.data = (u_char *) ngx_http_payments_strdup(r->pool,
                                                     PQgetvalue(res, i, 0));
        kv->value.data = (u_char *) ngx_http_payments_strdup(r->pool,
                                                     PQgetvalue(res, i, 1));

        if (kv->key.data == NULL || kv->value.data == NULL) {
            return NGX_ERROR;
        }

        kv->key.len = ngx_strlen(kv->key.data);
        kv->value.len = ngx_strlen(kv->value.data);
    }

    return NGX_OK;
}


/*
 * The saved method an off-session charge names (pay_method_for_charge:
 * psp, token_sealed, checkout_id, customer_ref, psp_customer, usage,
 * recurring, status), on every path that builds its request (the charge,
 * a review's approval): the merchant's (else 404, never saying whose it
 * is), still active (else 409; a charge whose key or checkout is known
 * already keeps a detached one, ctx->method_detached, for its claim to
 * replay: never sent), charged at its own PSP only (a "psp"
 * naming another is 400; without one, the method's PSP, never a route's:
 * the token is that PSP's alone).  Its token is opened here, into the
 * request's pool; it is never stored open.
 * NGX_OK: kept in ctx; NGX_DECLINED: *err and *detail are the answer;
 * NGX_ERROR: the method does not open (the store's fault: 503);
 * NGX_ABORT: no memory.
 */

ngx_int_t
ngx_http_payments_method_keep(ngx_http_payments_ctx_t *ctx, PGresult *res,
    pay_err_e *err, const char **detail)
{
    char                *psp, *token;
    ngx_http_request_t  *r = ctx->request;

    if (PQntuples(res) != 1) {
        *err = PAY_ERR_NOT_FOUND;
        *detail = "payment_method: no saved method of this merchant has "
                  "that id";
        return NGX_DECLINED;
    }

    if (ngx_strcmp(PQgetvalue(res, 0, 7), "active") != 0
        && !ctx->method_detached)
    {
        *err = PAY_ERR_METHOD_UNUSABLE;
        *detail = "payment_method: the saved method was detached and can "
                  "no longer be charged";
        return NGX_DECLINED;
    }

    psp = PQgetvalue(res, 0, 0);

    if (ctx->co.psp[0] != '\0' && ngx_strcmp(ctx->co.psp, psp) != 0) {
        *err = PAY_ERR_INVALID_REQUEST;
        *detail = "psp: a saved method is charged at the PSP that saved it "
                  "only; leave psp out";
        return NGX_DECLINED;
    }

    if (ngx_strlen(psp) >= sizeof(ctx->co.psp)
        || ngx_http_payments_unseal(r->pool, ctx->pmcf, r->connection->log,
                                    NGX_HTTP_PAYMENTS_SEALED_METHOD,
                                    (char *) ctx->merchant.data,
                                    PQgetvalue(res, 0, 2),
                                    PQgetvalue(res, 0, 1), &token)
           != NGX_OK
        || ngx_strncmp(PQgetvalue(res, 0, 1), "v1.", 3) != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "payments: saved method \"%s\" does not open: not "
                      "charged", ctx->co.payment_method);
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) ctx->co.psp, (u_char *) psp,
                sizeof(ctx->co.psp));

    /* in the request's pool: the token lives no longer than the request */
    ctx->charge_token = ngx_http_payments_strdup(r->pool, token);
    ctx->customer_ref = ngx_http_payments_strdup(r->pool,
                                                 PQgetvalue(res, 0, 3));
    ctx->charge_psp_customer = PQgetisnull(res, 0, 4)
                               ? NULL
                               : ngx_http_payments_strdup(r->pool,
                                                    PQgetvalue(res, 0, 4));
    ctx->charge_recurring = ngx_http_payments_strdup(r->pool,
                                                     PQgetvalue(res, 0, 6));

    if (ctx->charge_token == NULL || ctx->customer_ref == NULL
        || ctx->charge_recurring == NULL
        || (!PQgetisnull(res, 0, 4) && ctx->charge_psp_customer == NULL))
    {
        return NGX_ABORT;
    }

    return NGX_OK;
}


/*
 * An off-session charge its claim refused as 'merchant_account': its
 * method was saved under another merchant account (account, as the claim
 * answers it: {"merchant_account": ...}) than its PSP's merchant_account=
 * names now, changed in place.  The PSP keeps the token under the account
 * that saved it and refuses a charge under another (which would read as
 * the card's decline), and a charge under that one would be paid by a
 * webhook refused as another account's: not sent, nothing stored.
 */

ngx_int_t
ngx_http_payments_method_account_refused(ngx_http_payments_ctx_t *ctx,
    const char *account)
{
    ngx_http_request_t  *r = ctx->request;

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "payments: off-session charge \"%s\" not sent: its "
                  "saved method \"%s\" was saved under the merchant account "
                  "%s, not the one psp \"%V\"'s merchant_account= names now; "
                  "put the setting back to charge it",
                  ctx->nonce, ctx->co.payment_method, account,
                  &ctx->psp->name);

    return ngx_http_payments_problem(r, PAY_ERR_PSP_UNAVAILABLE, 0,
                                     "payment_method: the method was saved "
                                     "under another merchant account than "
                                     "its PSP's configuration names now "
                                     "(merchant_account=): not charged, "
                                     "nothing stored; retry once the "
                                     "setting is as it was");
}


/* ctx->psp_path, psp_content_type and psp_body from a stored request */

ngx_int_t
ngx_http_payments_request_load(ngx_http_payments_ctx_t *ctx,
    const char *stored)
{
    char                *plain;
    pay_psp_request_t    preq;
    ngx_http_request_t  *r = ctx->request;

    /* the text the last build made (a fresh claim answers with what it
     * was sent): its parts as built, not parsed back */
    if (ctx->built != NULL && ngx_strcmp(stored, ctx->built) == 0) {
        ctx->psp_path = ctx->built_path;
        ctx->psp_content_type = ctx->built_content_type;
        ctx->psp_body = ctx->built_body;
        ctx->psp_conf = ctx->built_conf;
        return NGX_OK;
    }

    /* sealed when it names a saved method's token; a plain one as is */
    if (ngx_http_payments_unseal(r->pool, ctx->pmcf, r->connection->log,
                                 NGX_HTTP_PAYMENTS_SEALED_REQUEST,
                                 (char *) ctx->merchant.data,
                                 ctx->co.checkout_id, stored, &plain)
        != NGX_OK
        || pay_psp_request_load(plain, ngx_strlen(plain), &preq) != 0)
    {
        return NGX_ERROR;
    }

    ctx->psp_path = ngx_http_payments_strdup(r->pool, preq.path);
    ctx->psp_content_type = ngx_http_payments_strdup(r->pool,
                                                     preq.content_type);
    ctx->psp_body = ngx_http_payments_strdup(r->pool, preq.body);
    ctx->psp_conf = ngx_http_payments_strdup(r->pool, preq.conf);

    if (ctx->psp_path == NULL || ctx->psp_content_type == NULL
        || ctx->psp_body == NULL
        || (preq.conf != NULL && ctx->psp_conf == NULL))
    {
        pay_psp_request_free(&preq);
        return NGX_ERROR;
    }

    pay_psp_request_free(&preq);

    return NGX_OK;
}


/*
 * A resumed claim sends its stored request again under the same key: the
 * PSP answers what the first attempt made for these bytes.  Its settings
 * went into the bytes (Adyen's merchantAccount): once the configuration
 * of its PSP says otherwise, the request is of an account the gateway no
 * longer is configured for (its credentials may be gone, its webhooks
 * are refused as another account's), and it is not sent; the setting put
 * back resumes it, or a person looks it up at the PSP.
 */

ngx_int_t
ngx_http_payments_request_conf_kept(ngx_http_payments_ctx_t *ctx,
    const char *what)
{
    u_char              *p, *last;
    size_t               len;
    const char          *changed, *setting;
    pay_psp_conf_t       conf;
    ngx_http_request_t  *r = ctx->request;
    static const char    fmt[] =
        "the PSP never answered this registration, and the gateway's "
        "configuration of its PSP differs in %s from when it was sent: "
        "its request is not sent again; retry with the same "
        "Idempotency-Key once the setting is as it was, or an operator "
        "looks it up at the PSP";

    /* stored by an earlier release: nothing to compare */
    if (ctx->psp_conf == NULL) {
        return NGX_OK;
    }

    ngx_http_payments_register_conf(ctx->psp, &conf);

    changed = pay_psp_conf_changed(ctx->psp_conf, ngx_strlen(ctx->psp_conf),
                                   &conf);
    if (changed == NULL) {
        return NGX_OK;
    }

    setting = ngx_http_payments_conf_setting(r->pool, changed);

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "payments: %s \"%s\" got no answer from psp \"%V\", "
                  "whose %s is no longer what it was sent with: not sent "
                  "again; put the setting back to resume it, or look it up "
                  "at the PSP by its reference", what, ctx->nonce,
                  &ctx->psp->name, setting);

    len = sizeof(fmt) + ngx_strlen(setting);
    p = ngx_pnalloc(r->pool, len);

    if (p == NULL) {
        ctx->fail_detail = "the gateway's configuration of the PSP changed "
                           "since this registration was sent: it is not "
                           "sent again";

    } else {
        last = ngx_snprintf(p, len - 1, fmt, setting);
        *last = '\0';
        ctx->fail_detail = (const char *) p;
    }

    return NGX_DECLINED;
}


/*
 * The request for the route's PSP ctx->psp, or NULL when that PSP cannot
 * take this checkout: an amount its dialect cannot carry exactly
 * (register_build), or the caller's expires_at outside the session
 * lifetimes it takes from now (it would refuse the session, and a
 * checkout moved on to it would end FAILED where staying could still be
 * paid).
 */

char *
ngx_http_payments_register_takes(ngx_http_payments_ctx_t *ctx)
{
    int64_t               now;
    const pay_dialect_t  *dl = ctx->psp->dl;

    if (ctx->co.expires_at != 0) {
        now = (int64_t) ngx_time();

        if (ctx->expires_at < now + dl->session_min
            || ctx->expires_at > now + dl->session_max)
        {
            return NULL;
        }
    }

    return ngx_http_payments_register_build(ctx);
}
