
/*
 * Copyright (C) ngx_payments authors
 *
 * The sweeper's round, shared by its files: _sweeper.c, the driver, takes
 * the lease and runs the round's steps in order; _sweeper_lookups.c asks
 * the PSPs about the checkouts due, one at a time; _sweeper_alerts.c
 * reports what needs a person (checkouts overdue, manual-capture holds
 * near or past their end, risk reviews past their deadline); _risk_after.c
 * asks the risk provider again about the checkouts paid since (payments_risk
 * after_payment=on); _sweeper_inbox.c applies the events the inbox keeps
 * pending, alerts those never matched and, on the home shard of several,
 * forwards those another shard owns.  Every step reports back through
 * ngx_http_payments_sweep_step_done; _sweeper_detach.c sends again the
 * saved methods' detaches their PSP has not confirmed; _sweeper_methods.c
 * asks the PSPs for the methods paid checkouts saved whose own events
 * were lost, and lists those it cannot find.  What they all use is
 * _sweeper_round.c,
 * below them.  One sweeper per shard, in the shard's worker (shard i in
 * worker i mod worker_processes), one round at a time, each against its
 * own shard only.
 */


#ifndef _NGX_HTTP_PAYMENTS_SWEEPER_H_INCLUDED_
#define _NGX_HTTP_PAYMENTS_SWEEPER_H_INCLUDED_


#include "ngx_http_payments_module.h"


typedef struct {
    char                           *merchant_id;
    char                           *checkout_id;
    char                           *psp;
    char                           *token;
    char                           *nonce;
    char                           *session_result;     /* NULL: none */
    int64_t                         expires;     /* epoch seconds */
    int64_t                         age;         /* seconds */
    ngx_uint_t                      payment;     /* token: an off-session
                                                    charge's payment id */
    ngx_uint_t                      setup;       /* a save without a
                                                    charge: done when its
                                                    method is saved */
    ngx_uint_t                      failed;      /* FAILED here, its
                                                    session still payable
                                                    at the PSP: only a
                                                    payment is applied */
} ngx_http_payments_sweep_item_t;


typedef enum {
    NGX_HTTP_PAYMENTS_SWEEP_IDLE = 0,
    NGX_HTTP_PAYMENTS_SWEEP_LEASE,
    NGX_HTTP_PAYMENTS_SWEEP_DUE,
    NGX_HTTP_PAYMENTS_SWEEP_ITEMS,
    NGX_HTTP_PAYMENTS_SWEEP_METHODS,
    NGX_HTTP_PAYMENTS_SWEEP_RENEW,
    NGX_HTTP_PAYMENTS_SWEEP_OVERDUE,
    NGX_HTTP_PAYMENTS_SWEEP_HOLDS,
    NGX_HTTP_PAYMENTS_SWEEP_RISK_AFTER,
    NGX_HTTP_PAYMENTS_SWEEP_INBOX,
    NGX_HTTP_PAYMENTS_SWEEP_DETACH
} ngx_http_payments_sweep_state_e;

/* unusable answers remembered, so that each is logged at error once */
#define NGX_HTTP_PAYMENTS_SWEEP_SEEN  1024

/* a saved method's detach its PSP has not confirmed after this many of
 * the sweeper's tries is logged at alert each try, and counted in
 * /metrics (_sweeper_detach.c) */
#define NGX_HTTP_PAYMENTS_DETACH_ALERT  5

/* how long before an authorization's end the sweeper warns */
#define NGX_HTTP_PAYMENTS_HOLD_WARN  86400
/* a hold past its end this long, its release still postponed by a capture
 * or void in flight, is logged at alert */
#define NGX_HTTP_PAYMENTS_HOLD_STUCK  3600


typedef struct ngx_http_payments_sweeper_s  ngx_http_payments_sweeper_t;

/* a step of the round: it runs, then ngx_http_payments_sweep_step_done or
 * ngx_http_payments_sweep_end */
typedef void (*ngx_http_payments_sweep_step_pt)(
    ngx_http_payments_sweeper_t *sw);


struct ngx_http_payments_sweeper_s {
    ngx_event_t                         timer;      /* the next round */
    ngx_event_t                         next;       /* posted: the next step */
    ngx_log_t                          *log;
    ngx_http_payments_main_conf_t      *pmcf;
    ngx_uint_t                          shard;      /* in pmcf->shards:
                                                       every query's */
    ngx_http_payments_shard_t          *shard_conf; /* its gauges' (NULL:
                                                       one shard) */
    ngx_pool_t                         *pool;       /* the round's */

    ngx_http_payments_sweep_state_e     state;
    ngx_uint_t                          leader;
    ngx_msec_t                          leased_at;  /* the lease last taken
                                                       or renewed */
    char                               *ttl;        /* the lease's, s */
    ngx_array_t                        *items;      /* of sweep_item_t */
    ngx_uint_t                          current;
    ngx_http_payments_psp_t            *psp;        /* current's */
    ngx_uint_t                          probe;      /* its look-up is the
                                                       breaker's probe */
    pay_psp_lookup_t                    in;
    pay_event_t                         ev;

    /* two queries: a handler may not reuse the one it was called for */
    ngx_http_payments_pg_query_t        queries[2];
    ngx_uint_t                          nquery;
    const char                         *params[14];
    ngx_http_payments_fetch_t           fetch;

    /* the risk check after the payment (_risk_after.c) */
    ngx_array_t                        *risk_items;
    ngx_uint_t                          risk_current;
    ngx_http_payments_risk_sig_t        risk_sig;

    char                                owner[NGX_MAXHOSTNAMELEN + 64];
    char                               *psps;       /* "{a,b}": ours */
    char                               *payment_psps;   /* those whose
                                                       dialect looks a
                                                       payment up */
    char                               *method_psps;    /* those whose
                                                       dialect names a
                                                       paid session's
                                                       stored method */
    char                               *open_psps;  /* those whose
                                                       sessions a cancel
                                                       cannot expire */
    char                               *windows;    /* "{604800,…}": their
                                                       auth_window, in
                                                       psps' order */
    char                               *units;      /* {"adyen":{"IDR":
                                                       100,…},…}: their
                                                       units coarser than
                                                       ISO's */

    /* the checkouts whose PSP gave no usable answer, logged at error
     * once, then at info (a PSP that forgot a session would otherwise
     * repeat the error every retry=); a ring of hashes of checkout and
     * answer, lost on a reload, so the error comes once again then */
    uint32_t                            unusable[NGX_HTTP_PAYMENTS_SWEEP_SEEN];
    ngx_uint_t                          unusable_next;

    /* the detaches the PSPs have not confirmed (_sweeper_detach.c) */
    ngx_array_t                        *detaches;
    ngx_uint_t                          detach_current;
    const char                         *detach_why;

    /* the home shard's events kept for want of an owner
     * (_sweeper_inbox.c): rows of NGX_HTTP_PAYMENTS_HOMELESS_FIELDS
     * values, forwarded one at a time */
    ngx_array_t                        *homeless;
    ngx_uint_t                          homeless_current;
    ngx_uint_t                          locate_shard;   /* asked now */
    ngx_uint_t                          owner_shard;    /* the shard that
                                                           said "mine" */
    ngx_uint_t                          owners;
    ngx_uint_t                          unanswered;

    ngx_uint_t                          step;       /* the driver's next */
    ngx_http_payments_sweep_step_pt     resume;     /* the driver: the next
                                                       step, or the end */
};


/* _sweeper_round.c, below every step.  The round's queries: two in turn
 * (a handler may not reuse the one it was called for), sw->params as their
 * values */
ngx_int_t ngx_http_payments_sweep_query(ngx_http_payments_sweeper_t *sw,
    const char *sql, int nparams, ngx_http_payments_pg_handler_pt handler);
/* the same query sent to another shard than the sweeper's own (the home
 * shard's forwarding asks the others) */
ngx_int_t ngx_http_payments_sweep_query_on(ngx_http_payments_sweeper_t *sw,
    ngx_uint_t shard, const char *sql, int nparams,
    ngx_http_payments_pg_handler_pt handler);
/* a query's answer: NGX_OK with rows to read, else logged */
ngx_int_t ngx_http_payments_sweep_ok(ngx_http_payments_sweeper_t *sw,
    PGresult *res, const char *function);
/* a mid-round renewal's answer: NGX_OK while the lease is this gateway's,
 * else the round logged as stopped after done of total what, and ended */
ngx_int_t ngx_http_payments_sweep_lease_kept(ngx_http_payments_sweeper_t *sw,
    PGresult *res, const char *what, ngx_uint_t done, ngx_uint_t total);
/* a step has done its part: the driver's next step (sw->resume) */
void ngx_http_payments_sweep_step_done(ngx_http_payments_sweeper_t *sw);
/* the steps that ask about sw->items one at a time: the next one (the
 * current one's open method token wiped; sw->next, the step's handler,
 * posted) */
void ngx_http_payments_sweep_next(ngx_http_payments_sweeper_t *sw);
/* what the PSP said about the current item when nothing moved
 * (pay_sweeper_note), then the next item */
void ngx_http_payments_sweep_note(ngx_http_payments_sweeper_t *sw,
    const char *answer);
/* the current item made ready to be asked about (sw->psp, its token
 * opened, sw->in); NGX_DECLINED: it cannot be, noted and counted */
ngx_int_t ngx_http_payments_sweep_item_open(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_sweep_item_t *it);
/* the dialect's look-up request (freed) sent to sw->psp, its answer to
 * handler; an open circuit noted and counted instead */
void ngx_http_payments_sweep_ask(ngx_http_payments_sweeper_t *sw,
    pay_psp_request_t *req, ngx_http_payments_fetch_handler_pt handler,
    const char *what);
/* sw->ev's "lookup:<token>:..." event id with the token's blind index
 * for the token, with a keyring; NGX_ERROR on no memory */
ngx_int_t ngx_http_payments_sweep_event_id(ngx_http_payments_sweeper_t *sw);
/* the round ends: its pool destroyed, the next one timed */
void ngx_http_payments_sweep_end(ngx_http_payments_sweeper_t *sw);

/* The steps, in the driver's order (_sweeper.c) */
/* _sweeper_lookups.c: the lease holder's look-ups of the checkouts due */
void ngx_http_payments_sweep_lookups(ngx_http_payments_sweeper_t *sw);
/* _sweeper_methods.c: the lease holder's: the paid checkouts whose saved
 * method's event was lost, asked about one at a time, and those still
 * without one past alert= listed (pay_sweeper_methods_unsaved) */
void ngx_http_payments_sweep_methods(ngx_http_payments_sweeper_t *sw);
/* _sweeper_methods.c: the stored method sw->ev names, sealed and recorded
 * by pay_sweeper_method_saved as the PSP's event would record it, then the
 * next item (the look-ups' too) */
void ngx_http_payments_sweep_method(ngx_http_payments_sweeper_t *sw,
    ngx_http_payments_sweep_item_t *it);
/* _sweeper_alerts.c: pay_sweeper_overdue, pay_holds_sweep,
 * pay_review_expire */
void ngx_http_payments_sweep_overdue(ngx_http_payments_sweeper_t *sw);
void ngx_http_payments_sweep_holds(ngx_http_payments_sweeper_t *sw);
void ngx_http_payments_sweep_reviews(ngx_http_payments_sweeper_t *sw);
/* _risk_after.c: the lease holder's, with a payments_risk after_payment=on:
 * the paid checkouts asked again, one at a time */
void ngx_http_payments_sweep_risk_after(ngx_http_payments_sweeper_t *sw);
/* _sweeper_inbox.c: the lease holder's: the inbox's partitions made ahead,
 * its pending events applied again or found unmatched */
void ngx_http_payments_sweep_inbox(ngx_http_payments_sweeper_t *sw);
/* _sweeper_detach.c: the lease holder's: the saved methods' detaches their
 * PSP has not confirmed, sent again one at a time */
void ngx_http_payments_sweep_detaches(ngx_http_payments_sweeper_t *sw);


#endif /* _NGX_HTTP_PAYMENTS_SWEEPER_H_INCLUDED_ */
