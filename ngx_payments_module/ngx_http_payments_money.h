
/*
 * Copyright (C) ngx_payments authors
 *
 * A refund's or a pay-out's operation, shared by the request's side
 * (ngx_http_payments_money.c: the body, the claim, the GET views), the
 * answers the PSP is not asked for (ngx_http_payments_money_answer.c: a
 * settled or refused claim's, one no configured PSP can send) and the
 * PSP's side (ngx_http_payments_money_call.c: the request, the call with
 * its retries and the breaker, the finish or release of the claim).
 */


#ifndef NGX_HTTP_PAYMENTS_MONEY_H_INCLUDED_
#define NGX_HTTP_PAYMENTS_MONEY_H_INCLUDED_


#include "ngx_http_payments_module.h"

#include <payments/operation.h>


typedef struct {
    unsigned                    refund:1;       /* on a payment order:
                                                   a refund, a capture or
                                                   a void */
    unsigned                    capture:1;      /* a capture or a void */
    unsigned                    cancel:1;       /* a void */
    pay_refund_request_t        rq;
    pay_payout_request_t        pq;
    char                        id[32];         /* rf_… / pyo_… */
    char                       *payment_ref;    /* refund */
    char                       *destination;    /* payout */
    int64_t                     amount;
    int64_t                     unit;           /* a capture: the PSP's
                                                   (pay_psp_unit) */
    char                        currency[4];
    char                       *reason;
    char                       *metadata;       /* the request's, JSON */
    char                       *status;         /* settled: the row's */
    char                       *psp_ref;        /* settled: the row's */
    char                       *failure;        /* settled: the row's */
    char                       *psp_name;       /* settled: the row's */
    unsigned                    stale:1;        /* older than key_window */
    unsigned                    sent:1;         /* an attempt of this
                                                   request may have reached
                                                   the PSP (a byte sent, or
                                                   not known) */
    const char                 *conf_changed;   /* the setting of its
                                                   PSP that is no longer as
                                                   recorded (as
                                                   ngx_http_payments_conf_
                                                   setting names it): not
                                                   sent; NULL: none */
    pay_err_e                   refused_err;    /* no configured PSP
                                                   can send it: a new
                                                   request's answer, when
                                                   its key is not known
                                                   (pay_op_key_answer) */
    const char                 *refused_detail;
    char                       *psp_path;
    char                       *psp_content_type;
    char                       *psp_body;
    size_t                      psp_body_len;
} ngx_http_payments_op_t;

#define ngx_http_payments_op(ctx)  ((ngx_http_payments_op_t *) (ctx)->op)


/* the settings of ctx->psp's configuration its request carries, as they
 * are now (recorded with the claim, compared when it is resumed) */
void ngx_http_payments_op_conf(ngx_http_payments_ctx_t *ctx,
    pay_psp_conf_t *conf);
/* the dialect's request for the operation (the same input, the same
 * bytes): NGX_OK, or an answer already sent */
ngx_int_t ngx_http_payments_op_build(ngx_http_payments_ctx_t *ctx);
/* the PSP call, its retries and the breaker, then finish or release */
void ngx_http_payments_op_call(ngx_http_payments_ctx_t *ctx);
/* the claim finished with the PSP's answer (registered or refused) */
void ngx_http_payments_op_finish(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t registered, const char *psp_ref, const char *failure);
/* no configured PSP can send the operation: a retry answered from what
 * its key stored, a new one refused with err and detail
 * (ngx_http_payments_money_answer.c, as the two below) */
void ngx_http_payments_op_unusable(ngx_http_payments_ctx_t *ctx,
    pay_err_e err, const char *detail);
/* a resumed claim's operation settled or known to the PSP: answered from
 * its row, stored under the key */
void ngx_http_payments_op_settled(ngx_http_payments_ctx_t *ctx,
    PGresult *res);
/* a claim refused by the database's rules (outcome): its answer */
ngx_int_t ngx_http_payments_op_refusal(ngx_http_payments_ctx_t *ctx,
    const char *outcome, PGresult *res);
/* the operation read from its row (op->status, psp_ref, failure,
 * psp_name set) answered 201, not stored under the key */
ngx_int_t ngx_http_payments_op_answer_row(ngx_http_payments_ctx_t *ctx);
/* the claim's lease given back (the PSP could not be reached): status;
 * the database told whether this request's attempts may have reached the
 * PSP (op->sent) */
void ngx_http_payments_op_release(ngx_http_payments_ctx_t *ctx,
    ngx_uint_t status);
/* a stale claim (op->stale) given up if no attempt can have reached the
 * PSP (pay_op_abandon: FAILED, 201 stored under the key), else released
 * with an alert (502, a person looks it up) */
void ngx_http_payments_op_abandon(ngx_http_payments_ctx_t *ctx);
/* "refund", "capture", "void" or "pay-out", for a log line */
const char *ngx_http_payments_op_kind(ngx_http_payments_op_t *op);


#endif /* NGX_HTTP_PAYMENTS_MONEY_H_INCLUDED_ */
